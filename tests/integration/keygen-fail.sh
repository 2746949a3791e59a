#!/bin/bash
# Issue 8 item 9: a loaded SoftHSM2 has been seen to fail C_GenerateKeyPair
# with CKR_GENERAL_ERROR and leave key objects made WITHOUT the template (no
# CKA_ID, no label, no task-key marker): the start-up sweep selects by the
# marker and a task end by id, so nothing ever removed them. Now
# p11_keypair_make lists the token's objects before generating and, after a
# failure, destroys every new key object without an id (never an object
# that was there before, never one with an id).
#
# Attack/fault: stintd runs on gen_fail_shim.so, a PKCS#11 module that
# forwards to SoftHSM2 but, while $T/fail exists, generates the pair with
# CKA_ID, CKA_LABEL and CKA_SUBJECT stripped and returns CKR_GENERAL_ERROR.
. "$(dirname "$0")/lib.sh"
[ "$STINT_TEST_BACKEND" = softhsm ] || skip "PKCS#11 only (the shim wraps SoftHSM2)"
stint_tmpdir
ok() { echo "ok $*"; }
SHIM=$top_builddir/tests/integration/.libs/gen_fail_shim.so
[ -f "$SHIM" ] || skip "no $SHIM (make check builds it)"
need_cmd pkcs11-tool

# The id-less key objects in the token, read straight from SoftHSM with the
# PIN (what root sees): one line per object, "Private Key Object; EC" etc.,
# with " 384" appended for a P-384 public key.
idless_keys()
{
	softhsm_objects >"$T/objects" || { cat "$T/objects" >&2; fail "cannot list the SoftHSM token"; }
	awk '
	function flush() { if (hdr != "" && !id) print hdr (p384 ? " 384" : "") }
	/^[A-Z]/ { flush(); hdr = ""; id = 0; p384 = 0
		   if ($0 ~ /Key Object/) { hdr = $0; sub(/ *EC_POINT.*/, "", hdr) }
		   if ($0 ~ /384 bits/) p384 = 1; next }
	/^ +ID:/ { id = 1 }
	END { flush() }' "$T/objects"
}

backend_init
# An operator's own key pair without id or label, made before stintd runs:
# P-384, so it can be told from what the shim leaves (P-256).
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$HSM_LABEL" --login \
	--pin "$HSM_PIN" --keypairgen --key-type EC:secp384r1 >"$T/op.log" 2>&1 ||
	{ cat "$T/op.log" >&2; fail "pkcs11-tool --keypairgen"; }
idless_keys >"$T/idless0"
[ "$(wc -l <"$T/idless0")" -eq 2 ] && grep -q "^Public Key Object; EC 384$" "$T/idless0" ||
	{ cat "$T/idless0" "$T/objects" >&2; fail "expected the operator's id-less P-384 pair only"; }

stintd_config
# The shim as the module, no key pool: every task start generates a key.
sed -i "s|^module = .*|module = $SHIM\nkey_pool = 0|" "$STINTD_CONF"
export STINT_SHIM_MODULE=$SOFTHSM_MODULE STINT_SHIM_FAIL_FILE=$T/fail \
	STINT_SHIM_LOG=$T/shim.log
stintd_start
p11_env
need_p11client
agent_add alpha "$(id -u)"
first=$(task_start alpha --ttl 30m) || exit 1
backend_has_key "$first" || fail "no key for the first task"
ok "stintd on the shim starts tasks"

touch "$T/fail"
for i in 1 2 3; do
	if out=$(stint task start --agent alpha -q --ttl 30m 2>&1); then
		fail "task start $i succeeded while generation fails: $out"
	fi
	grep -qi "generat\|key" <<<"$out" || fail "task start $i failed without naming the key: $out"
	stintd_alive || fail "stintd died on a failed generation"
done
[ "$(grep -c CKR_GENERAL_ERROR "$T/shim.log" 2>/dev/null)" -eq 3 ] ||
	fail "the shim did not inject 3 faults"
stint status >/dev/null || fail "stint status after failed starts"
ok "3 task starts fail cleanly (the fault fired 3 times), stintd stays up: $out"

idless_keys >"$T/idless1"
if ! cmp -s "$T/idless0" "$T/idless1"; then
	echo "id-less key objects before (the operator's) and now:" >&2
	cat "$T/idless0" "$T/idless1" >&2
	fail "a failed generation left id-less keys in the token (or the operator's was touched)"
fi
n=$(grep -c "left 2 key objects without id in token 'stint': 2 destroyed" "$STINTD_LOG")
[ "$n" -eq 3 ] || { cat "$STINTD_LOG" >&2; fail "expected 3 log lines on the destroyed pairs, got $n"; }
grep -q "2 destroyed (6 since start)" "$STINTD_LOG" || fail "the destroyed keys are not counted"
ok "no id-less keys left; the operator's id-less pair untouched; each cleanup logged and counted"

rm -f "$T/fail"
second=$(task_start alpha --ttl 30m) || exit 1
backend_has_key "$second" || fail "no key for the task started after the fault"
backend_has_key "$first" || fail "the first task's key was destroyed"
head -c 32 /dev/urandom >"$T/digest"
p11client --token alpha --label "$second" --mech ecdsa --in "$T/digest" \
	>"$T/sign.out" 2>&1 || { cat "$T/sign.out" >&2; fail "the new task's key does not sign"; }
idless_keys >"$T/idless2"
cmp -s "$T/idless0" "$T/idless2" || fail "id-less keys after the fault was turned off"
ok "after the fault is off starts work again; keys with ids untouched"
stintd_stop
