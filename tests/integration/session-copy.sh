#!/bin/bash
# Session copies of signing keys (issue 14, pkcs11_copy.c): stintd signs
# with a session-object copy of a task's private key (CKA_TOKEN false), made
# at the key's first signature, so that SoftHSM2 does not re-check the key's
# object file on every C_SignInit and C_Sign.
#  - `stint status --json` counts the copies: one more per task that signed,
#    none left of a task once it ended (task end, agent removal);
#  - after a restart, copies are made again from the token objects and a
#    live task signs; expiry destroys a task's copy;
#  - with strace available: signing with a task key opens none of the
#    token's object files in stintd (the token object did, twice per
#    signature).
. "$(dirname "$0")/lib.sh"
need_cmd python3
[ "$STINT_TEST_BACKEND" = softhsm ] ||
	skip "session copies are a PKCS#11 backend feature"
stint_tmpdir
stint_setup
need_p11client
agent_add alpha "$(id -u)"

copies()
{
	stint status --json | json_get session_copies
}
# copies_are N: poll (a task end returns after its copy is gone; the poll
# only absorbs status reads racing the signer's last reply).
copies_are()
{
	[ "$(copies)" = "$1" ]
}
sign()
{
	p11client --token alpha --label "$1" --mech ecdsa --count "${2:-5}" \
		>"$T/sign.out" 2>&1 || { cat "$T/sign.out"; fail "${3:-sign with $1}"; }
}

t1=$(task_start alpha --ttl 10m) || exit 1
t2=$(task_start alpha --ttl 10m) || exit 1
base=$(copies)
[ -n "$base" ] || fail "stint status --json has no session_copies"
note "copies after two task starts (CA and attestation keys): $base"

sign "$t1"
sign "$t2"
[ "$(copies)" -eq $((base + 2)) ] ||
	fail "2 tasks signed: expected $((base + 2)) session copies, status says $(copies)"
sign "$t1" 20
[ "$(copies)" -eq $((base + 2)) ] ||
	fail "more signatures made more copies: $(copies), not $((base + 2))"
note "ok: one session copy per signing task ($((base + 2)))"

stint task end "$t1" >/dev/null || fail "task end $t1"
copies_are $((base + 1)) ||
	fail "task end returned with the task's session copy still counted: $(copies)"
p11client --token alpha --label "$t1" --mech ecdsa >"$T/late.out" 2>&1 &&
	fail "ended task $t1 still signs"
note "ok: task end destroys the session copy before it returns"

# A third task, ended below by removing its agent.
t3=$(task_start alpha --ttl 10m) || exit 1
sign "$t3"
[ "$(copies)" -eq $((base + 2)) ] || fail "t3 signed: $(copies) copies"

# After a restart the copies are made again from the token objects.
stintd_stop
stintd_start
base2=$(copies)
sign "$t2" 5 "task $t2 does not sign after a restart"
sign "$t3" 5 "task $t3 does not sign after a restart"
[ "$(copies)" -eq $((base2 + 2)) ] ||
	fail "after a restart 2 tasks signed: $(copies) copies, not $((base2 + 2))"
note "ok: copies made again after a restart"

# Expiry ends a task through the same destroy: its copy goes with it.
# (n4: after the start, whose certificate and evidence signed with the CA
# and attestation keys, copied at their first signature since the restart)
t4=$(task_start alpha --ttl 8s) || exit 1
n4=$(copies)
sign "$t4" 2 "task $t4 (8 s TTL) does not sign"
[ "$(copies)" -eq $((n4 + 1)) ] || fail "t4 signed: $(copies) copies, not $((n4 + 1))"
wait_for 40 copies_are "$n4" ||
	fail "task $t4 expired and left its session copy: $(copies), not $n4"
[ "$(stint task show "$t4" --json | json_get state)" = expired ] ||
	fail "task $t4 is not expired: $(stint task show "$t4" --json)"
note "ok: expiry destroys the session copy"

# strace: a signature with a copy opens no object file of the token
# (SoftHSM re-reads a token object's file on each C_SignInit and C_Sign).
if command -v strace >/dev/null 2>&1 && [ "$STINT_SANITIZERS" != yes ]; then
	sign "$t2" 2 # its copy exists and an operation is prepared
	strace -f -e quiet=exit -e trace=openat -o "$T/strace.out" \
		-p "$STINTD_PID" 2>"$T/strace.err" &
	spid=$!
	bg_track "$spid"
	strace_attach_wait "$STINTD_PID" "$spid" "$T/strace.err"
	sign "$t2" 50
	kill -INT "$spid"
	wait "$spid" 2>/dev/null
	n=$(grep -c '\.object"' "$T/strace.out" || true)
	[ "$n" -eq 0 ] || {
		grep '\.object"' "$T/strace.out" | head -5
		fail "50 signatures opened token object files $n times"
	}
	note "ok: 50 signatures with the session copy opened no token object file"
else
	note "no strace (or sanitizer build): object file check skipped"
fi

# Left after the removal: n4 less the copies of t2 and t3 (the CA's and
# the attestation key's stay).
stint agent remove alpha >/dev/null || fail "agent remove alpha"
copies_are $((n4 - 2)) ||
	fail "agent removal left session copies: $(copies), not $((n4 - 2))"
note "ok: agent removal destroyed its tasks' session copies"
exit 0
