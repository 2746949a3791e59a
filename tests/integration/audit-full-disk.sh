#!/bin/bash
# Issue 8 item 7, as the attack: the audit log on a filesystem that fills up
# (state_dir elsewhere). Lifecycle events must not happen unrecorded: task
# start and agent add fail and leave nothing behind (no task, no key, no
# agent); task end and agent remove still revoke (fail closed), say that
# their record is pending, and the records appear once the log has space;
# the chain verifies afterwards. (Before the fix start and end succeeded
# with no record at all.)
. "$(dirname "$0")/lib.sh"
need_root
need_cmd mount umount dd
stint_tmpdir
need_p11client

AFS=$T/auditfs
mkdir -m 0700 "$AFS"
mount -t tmpfs -o size=1m,mode=0700 tmpfs "$AFS" 2>/dev/null ||
	skip "cannot mount a tmpfs here (mount not permitted)"
_fs_cleanup()
{
	local rc=$?

	if [ -n "$STINTD_PID" ] && kill -0 "$STINTD_PID" 2>/dev/null; then
		kill -TERM "$STINTD_PID"
		_wait_pid "$STINTD_PID" 20
		kill -KILL "$STINTD_PID" 2>/dev/null
		wait "$STINTD_PID" 2>/dev/null
	fi
	umount -l "$AFS" 2>/dev/null
	(exit "$rc")
	_cleanup
}
trap _fs_cleanup EXIT

backend_init
stintd_config
AUDIT_LOG=$AFS/audit.log
sed -i "s|^path = .*|path = $AUDIT_LOG|" "$STINTD_CONF"
# No ready keys: every key in the backend belongs to a task (or the CA).
[ "$STINT_TEST_BACKEND" = tpm ] || sed -i '/^\[backend\]/a key_pool = 0' "$STINTD_CONF"
stintd_start
p11_env
agent_add alpha "$(id -u)"
agent_add gone "$(($(id -u) + 7001))"
head -c 32 /dev/urandom >"$T/digest"

sign()
{
	p11client --token alpha --label "$1" --mech ecdsa --in "$T/digest" \
		--count 1 >"$T/sign.out" 2>&1
}
# Keys in the backend: SoftHSM objects, or TPM key blobs.
key_count()
{
	case $STINT_TEST_BACKEND in
	softhsm) softhsm_objects | grep -c '^Private Key Object' ;;
	tpm) find "$TPM_KEYS" -name '*.key' | wc -l ;;
	esac
}
task_count()
{
	stint task list --all --json | "$PYTHON" -c 'import json, sys
v = json.load(sys.stdin)
print(len(v if isinstance(v, list) else v.get("tasks", [])))'
}

id=$(task_start alpha --ttl 10m) || exit 1
gone_task=$(task_start gone --ttl 10m) || exit 1
sign "$id" || { cat "$T/sign.out"; fail "task $id cannot sign before the disk fills"; }
keys=$(key_count)
tasks=$(task_count)

dd if=/dev/zero of="$AFS/fill" bs=16k >/dev/null 2>&1
# The log's last page may still have room for a few records: sign until
# the log refuses (SIGN fails closed then).
for ((i = 0; i < 100; i++)); do
	sign "$id" || break
done
[ "$i" -lt 100 ] || fail "SIGN kept succeeding on a full audit filesystem"
note "the audit log took $i more signatures before it was full"
! sign "$id" || fail "a SIGN succeeded while the audit log cannot be written"

# task start: refused, nothing created.
! stint task start --agent alpha --ttl 10m >"$T/start.out" 2>&1 ||
	{ cat "$T/start.out"; fail "task start succeeded with no audit record"; }
cat "$T/start.out"
grep -q "audit log" "$T/start.out" || fail "task start did not blame the audit log"
[ "$(task_count)" -eq "$tasks" ] || fail "a failed task start left a task behind"
[ "$(key_count)" -eq "$keys" ] || fail "a failed task start left a key behind ($(key_count) keys, $keys before)"

# agent add: refused, no agent.
! stint agent add late --uid "$(($(id -u) + 7002))" >"$T/add.out" 2>&1 ||
	{ cat "$T/add.out"; fail "agent add succeeded with no audit record"; }
stint agent list >"$T/agents" || fail "agent list"
grep -qw late "$T/agents" && fail "a refused agent add left the agent behind"

# task end and agent remove: revoked anyway, the records pending.
stint task end "$id" >"$T/end.out" 2>"$T/end.err" ||
	{ cat "$T/end.out" "$T/end.err"; fail "task end failed while the audit log is full"; }
cat "$T/end.err"
grep -q "record is pending" "$T/end.err" || fail "task end did not say its record is pending"
backend_has_key "$id" && fail "key of ended task $id still in the backend"
state=$(stint task show "$id" --json | json_get state) || fail "task show $id"
[ "$state" = ended ] || fail "task $id is '$state' after task end"
stint agent remove gone >"$T/rm.out" 2>"$T/rm.err" ||
	{ cat "$T/rm.out" "$T/rm.err"; fail "agent remove failed while the audit log is full"; }
grep -q "record is pending" "$T/rm.err" || fail "agent remove did not say its record is pending"
state=$(stint task show "$gone_task" --json | json_get state) || fail "task show $gone_task"
[ "$state" = ended ] || fail "task $gone_task of the removed agent is '$state'"
backend_has_key "$gone_task" && fail "key of $gone_task still in the backend"
[ "$(audit_count "$id" task-end)" -eq 0 ] || fail "a task-end record was written to a full disk?"

# Space again: the pending records appear, in a chain that verifies.
rm -f "$AFS/fill"
recorded()
{
	[ "$(audit_count "$1" task-end)" -eq 1 ]
}
wait_for 30 recorded "$id" || fail "the task-end record of $id never appeared"
wait_for 30 recorded "$gone_task" ||
	fail "the task-end record of $gone_task never appeared"
[ "$(audit_count "$id" key-destroy)" -ge 1 ] || fail "no key-destroy record for $id"
grep -q '"event":"agent-remove"' "$AUDIT_LOG" || fail "no agent-remove record"
grep '"event":"task-end"' "$AUDIT_LOG" | grep -q pending_since ||
	fail "the late task-end record does not say it was pending"
stint audit verify >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; fail "stint audit verify (online)"; }
# And everything works again.
again=$(task_start alpha --ttl 10m) || exit 1
sign "$again" || { cat "$T/sign.out"; fail "cannot sign once the log has space again"; }
stintd_stop
"$STINT" audit verify "$AUDIT_LOG" >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; fail "stint audit verify (offline)"; }
note "audit log full: start/add refused cleanly, end/remove revoked, records written late"
