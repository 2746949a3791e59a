#!/bin/bash
# Integration test 3: after `stint task end` returns, every way of signing
# with the task key is refused: pkcs11-tool and the libp11 engine fail, a
# process that held the key handle across the end gets
# CKR_KEY_FUNCTION_NOT_PERMITTED, the key is gone from the backend (checked
# against SoftHSM directly, or the TPM key blob), and the refusal is in the
# audit log.
. "$(dirname "$0")/lib.sh"
need_cmd pkcs11-tool openssl
stint_tmpdir
stint_setup
need_p11client
agent_add alpha "$(id -u)"

head -c 32 /dev/urandom >"$T/digest"
id=$(task_start alpha --ttl 10m) || exit 1
hexid=$(hex_of "$id")
uri="pkcs11:token=alpha;object=$id"
other=$(task_start alpha --ttl 10m) || exit 1

backend_has_key "$id" || fail "the task key is not in the backend ($STINT_TEST_BACKEND)"

# Before the end: everything signs.
p11tool --token-label alpha --sign --id "$hexid" -m ECDSA -i "$T/digest" \
	-o "$T/sig" </dev/null >"$T/out" 2>&1 || { cat "$T/out"; fail "pkcs11-tool could not sign before the end"; }
engine_openssl pkeyutl -engine pkcs11 -keyform engine -sign -inkey "$uri" \
	-in "$T/digest" -out "$T/sig" </dev/null >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "the engine could not sign before the end"; }

# A process that keeps its session and key handle across the end.
p11client --token alpha --label "$id" --mech ecdsa --in "$T/digest" \
	--wait-file "$T/go" >"$T/held.out" 2>&1 &
held=$!
bg_track "$held"
# Ended only once the handle is held and has signed (not after a fixed
# sleep: a loaded machine can take longer to load the module and sign).
wait_for 60 grep -q '^first=' "$T/held.out" ||
	{ cat "$T/held.out"; fail "p11client --wait-file did not sign within 60 s"; }
grep -q '^first=CKR_OK$' "$T/held.out" || { cat "$T/held.out"; fail "the held handle could not sign before the end"; }
kill -0 "$held" 2>/dev/null || { cat "$T/held.out"; fail "p11client --wait-file exited before the end"; }

stint task end "$id" >"$T/end.out" 2>&1 || { cat "$T/end.out"; fail "stint task end $id"; }
touch "$T/go"
wait "$held"
rc=$?
cat "$T/held.out"
grep -q '^second=CKR_KEY_FUNCTION_NOT_PERMITTED$' "$T/held.out" ||
	fail "a held handle was not refused with CKR_KEY_FUNCTION_NOT_PERMITTED after task end"
[ "$rc" -ne 0 ] || note "p11client --wait-file exit 0 (refusal was expected and reported)"

# After the end: fresh processes fail too.
! p11tool --token-label alpha --sign --id "$hexid" -m ECDSA -i "$T/digest" \
	-o "$T/sig" </dev/null >"$T/out" 2>&1 || { cat "$T/out"; fail "pkcs11-tool signed after task end"; }
! engine_openssl pkeyutl -engine pkcs11 -keyform engine -sign -inkey "$uri" \
	-in "$T/digest" -out "$T/sig" </dev/null >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "the engine signed after task end"; }
! p11client --token alpha --label "$id" --mech ecdsa --in "$T/digest" \
	--count 1 >"$T/out" 2>&1 || { cat "$T/out"; fail "p11client signed after task end"; }
p11tool --token-label alpha --list-objects >"$T/objects" 2>&1
grep -q "$id" "$T/objects" && { cat "$T/objects"; fail "the ended task is still listed by the module"; }

# The other task of the same agent is untouched.
p11client --token alpha --label "$other" --mech ecdsa --in "$T/digest" \
	--count 1 >"$T/out" 2>&1 || { cat "$T/out"; fail "ending one task broke another"; }

# The key is destroyed in the backend token, the other key is not.
backend_has_key "$id" && fail "key of ended task $id still in the backend ($STINT_TEST_BACKEND)"
backend_has_key "$other" || fail "key of live task $other missing from the backend ($STINT_TEST_BACKEND)"

state=$(stint task show "$id" --json | json_get state) || fail "task show $id"
[ "$state" = ended ] || fail "task $id is '$state' after task end"

# The audit log: end, destroy and the refusal.
[ "$(audit_count "$id" task-end)" -eq 1 ] || fail "no task-end record for $id"
[ "$(audit_count "$id" key-destroy)" -eq 1 ] || fail "no key-destroy record for $id"
[ "$(audit_count "$id" sign-refused)" -ge 1 ] || fail "no sign-refused record for $id"
stint audit tail -n 50 >"$T/tail" || fail "stint audit tail"
grep "$id" "$T/tail" | grep 'sign-refused' >/dev/null || { cat "$T/tail"; fail "audit tail shows no sign-refused for $id"; }

stintd_stop
note "task end refused held handles, pkcs11-tool and the engine; key destroyed; audited"
