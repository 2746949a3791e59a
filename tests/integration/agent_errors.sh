#!/bin/bash
# An agent whose signature fails learns why: with STINT_DEBUG=1 the module
# says which of these happened, in words it can act on: stintd not running
# (no socket: ENOENT; a stale socket: ECONNREFUSED, with strerror), the
# socket not reachable by its uid (EACCES, with strerror), its uid not
# registered, the task ended (with when), expired (with when), unknown, or
# another agent's. (It used to print only "connect ... failed (-6)".)
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
stint_tmpdir
stint_setup
need_p11client
U=$(for u in $(seq 62301 62400); do
	getent passwd "$u" >/dev/null || pgrep -U "$u" >/dev/null || { echo "$u"; break; }
done)
X=$((U + 100))
signer_setup
agent_add errs "$U"
agent_add other 0

# sign_dbg UID SOCKET TASK: a signature attempt with STINT_DEBUG=1; its
# stderr in $T/dbg. Must fail.
sign_dbg()
{
	if as_uid "$1" env STINT_DEBUG=1 STINT_SOCKET="$2" STINT_TIMEOUT_MS=3000 \
		"$T/bin/p11client" --module "$MOD" --label "$3" --mech ecdsa \
		--in "$T/digest" --count 1 >"$T/dbg" 2>&1; then
		cat "$T/dbg" >&2
		fail "signing with $3 as uid $1 succeeded"
	fi
}

expect()
{
	local what=$1 re=$2

	grep -Eq "$re" "$T/dbg" || { cat "$T/dbg" >&2; fail "$what: the module did not say /$re/"; }
	note "$what: $(grep -Eo "$re.*" "$T/dbg" | head -n 1)"
}

live=$(task_start errs --ttl 10m)

# Not registered.
sign_dbg "$X" "$STINT_SOCKET" "$live"
expect "uid not registered" "uid $X \(gid $X\) is not registered with stintd"

# Unknown task, and another agent's.
sign_dbg "$U" "$STINT_SOCKET" t-0123456789abcdef0123456789abcdef
expect "unknown task" "task t-0123456789abcdef0123456789abcdef is unknown to stintd"
theirs=$(task_start other --ttl 10m)
sign_dbg "$U" "$STINT_SOCKET" "$theirs"
expect "another agent's task" "task $theirs belongs to agent 'other'"

# Ended, with when.
ended=$(task_start errs --ttl 10m)
stint task end "$ended" >/dev/null || fail "task end"
sign_dbg "$U" "$STINT_SOCKET" "$ended"
expect "ended task" "task $ended ended at 20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z"

# Expired, with when.
short=$(task_start errs --ttl 2s)
sleep 3
sign_dbg "$U" "$STINT_SOCKET" "$short"
expect "expired task" "task $short expired at 20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z"

# Socket not reachable by this uid: runtime_dir 0700.
chmod 0700 "$T/run"
sign_dbg "$U" "$STINT_SOCKET" "$live"
chmod 0755 "$T/run"
expect "unreachable socket" "$T/run/agent.sock is not reachable by uid $U: Permission denied"

# stintd not running: no socket at all, then a stale one.
sign_dbg "$U" "$T/run/nothing.sock" "$live"
expect "no socket" "stintd is not running: cannot connect to $T/run/nothing.sock: No such file or directory"
stintd_kill9
[ -S "$T/run/agent.sock" ] || fail "kill -9 left no stale socket"
sign_dbg "$U" "$STINT_SOCKET" "$live"
expect "stale socket" "stintd is not running: cannot connect to $STINT_SOCKET: Connection refused"
