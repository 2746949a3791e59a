#!/bin/bash
# Relying parties and agents need the trust bundle and a task's public key
# and certificate without root: `stint ca cert` and `stint task show ID
# --pem/--cert` work for any uid (through agent.sock, which answers these
# two read-only requests for anyone), give the same bytes root gets, and
# leave out what only administrators see (the task's intent). Everything
# else stays on admin.sock. And `stint task end` on a task already over
# says when it ended (or expired), exit 0.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv openssl
stint_tmpdir
stint_setup
U=$(for u in $(seq 62101 62200); do
	getent passwd "$u" >/dev/null || pgrep -U "$u" >/dev/null || { echo "$u"; break; }
done)
mkdir -m 0755 "$T/bin"
cp "$STINT" "$T/bin/"
chmod 0755 "$T/bin/stint"
# Another uid, with the same admin socket path (which it may not use).
user_stint()
{
	as_uid "$U" env -u STINT_SOCKET "$T/bin/stint" --socket "$T/run/admin.sock" "$@"
}

agent_add pub 0
id=$(task_start pub --ttl 5m --intent "secret intent text")

stint ca cert >"$T/ca.root.pem" || fail "root: stint ca cert"
user_stint ca cert >"$T/ca.user.pem" 2>"$T/err" ||
	{ cat "$T/err" >&2; fail "uid $U: stint ca cert failed"; }
cmp -s "$T/ca.root.pem" "$T/ca.user.pem" || fail "uid $U got another CA bundle than root"
note "uid $U: stint ca cert = root's bundle"

for f in pem cert; do
	stint task show "$id" --$f >"$T/$f.root" || fail "root: task show --$f"
	user_stint task show "$id" --$f >"$T/$f.user" 2>"$T/err" ||
		{ cat "$T/err" >&2; fail "uid $U: stint task show --$f failed"; }
	cmp -s "$T/$f.root" "$T/$f.user" || fail "uid $U: task show --$f differs from root's"
done
openssl x509 -in "$T/cert.user" -noout -pubkey >"$T/cert.pub" || fail "not a certificate"
cmp -s "$T/cert.pub" "$T/pem.user" || fail "the certificate is not for the task's public key"
openssl verify -CAfile "$T/ca.user.pem" "$T/cert.user" >/dev/null ||
	fail "the task certificate does not verify against the bundle uid $U fetched"
note "uid $U: task show --pem/--cert = root's, and chain to the bundle"

user_stint task show "$id" >"$T/show.user" 2>"$T/err" ||
	{ cat "$T/err" >&2; fail "uid $U: stint task show failed"; }
grep -q "$id" "$T/show.user" || fail "task show lacks the id"
! grep -q "secret intent" "$T/show.user" || fail "task show gave uid $U the task's intent"
! grep -q "^signatures" "$T/show.user" || fail "task show made up signature counters for uid $U"
grep -q "^state *live" "$T/show.user" || { cat "$T/show.user" >&2; fail "task show lacks the state"; }
stint task show "$id" | grep -q "secret intent" || fail "root no longer sees the intent"

# Unknown tasks are reported, and nothing else opens up.
! user_stint task show t-00000000000000000000000000000000 >/dev/null 2>"$T/err" ||
	fail "an unknown task showed"
grep -q "no task" "$T/err" || { cat "$T/err" >&2; fail "unknown task: no clear error"; }
! user_stint task list >/dev/null 2>&1 || fail "uid $U listed tasks"
! user_stint ca csr >/dev/null 2>&1 || fail "uid $U got a CA CSR"
! user_stint task end "$id" >/dev/null 2>&1 || fail "uid $U ended a task"
[ "$(stint task show "$id" --json | json_get state)" = live ] || fail "the task is no longer live"
! STINT_SOCKET=$T/run/agent.sock "$STINT" --socket "$T/run/agent.sock" task list >/dev/null 2>&1 ||
	fail "agent.sock answered TASK_LIST"
note "agent.sock still refuses TASK_LIST, CA_CSR, TASK_END"

# `stint task end` on a task that is already over says so, and still exits 0.
out=$(stint task end "$id" --reason first) || fail "task end"
[ "$out" = "task $id ended" ] || fail "first end printed '$out'"
sleep 2.1
out=$(stint task end "$id" --reason again) || fail "a second task end exited non-zero"
case $out in
"task $id already ended at "*"(first)") note "second end: $out" ;;
*) fail "second end printed '$out', not 'already ended at … (first)'" ;;
esac
short=$(task_start pub --ttl 2s)
sleep 3
out=$(stint task end "$short") || fail "task end of an expired task exited non-zero"
case $out in
"task $short already expired at "*) note "end after expiry: $out" ;;
*) fail "end after expiry printed '$out'" ;;
esac
