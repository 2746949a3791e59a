#!/bin/bash
# Issue 8 item 2, as the attack: state_dir on a filesystem that fills up.
# `stint task end` must still revoke: the task is refused at once, its key
# is destroyed, the end is kept in the revocation journal and lands in
# state.db once there is space; neither a restart while the disk is still
# full nor one after it revives the task. (Before the fix the end failed
# with "task store unavailable", the task kept signing and its key stayed.)
. "$(dirname "$0")/lib.sh"
need_root
need_cmd mount umount dd sqlite3
stint_tmpdir
need_p11client

STATE=$T/state
mkdir -m 0700 "$STATE"
mount -t tmpfs -o size=2m,mode=0700 tmpfs "$STATE" 2>/dev/null ||
	skip "cannot mount a tmpfs here (mount not permitted)"
# Unmount after stintd is gone (lazily: a failing test may leave it up).
_fs_cleanup()
{
	local rc=$?

	if [ -n "$STINTD_PID" ] && kill -0 "$STINTD_PID" 2>/dev/null; then
		kill -TERM "$STINTD_PID"
		_wait_pid "$STINTD_PID" 20
		kill -KILL "$STINTD_PID" 2>/dev/null
		wait "$STINTD_PID" 2>/dev/null
	fi
	umount -l "$STATE" 2>/dev/null
	(exit "$rc")
	_cleanup
}
trap _fs_cleanup EXIT

backend_init
stintd_config
# The audit log lives elsewhere: only state.db's filesystem fills up.
mkdir -m 0700 "$T/audit"
AUDIT_LOG=$T/audit/audit.log
sed -i "s|^path = .*|path = $AUDIT_LOG|" "$STINTD_CONF"
stintd_start
p11_env
agent_add alpha "$(id -u)"
head -c 32 /dev/urandom >"$T/digest"

sign()
{
	p11client --token alpha --label "$1" --mech ecdsa --in "$T/digest" \
		--count 1 >"$T/sign.out" 2>&1
}
# The row as state.db has it (not stintd's view).
db_state()
{
	sqlite3 -readonly "$STATE/state.db" \
		"SELECT state FROM tasks WHERE id = '$1'" 2>/dev/null
}
# stintd_start, but a daemon that refuses to start is an answer too.
try_start()
{
	local i

	STINTD_STARTS=$((STINTD_STARTS + 1))
	STINTD_LOG=$T/stintd.$STINTD_STARTS.log
	"$STINTD" --config "$STINTD_CONF" --foreground >"$STINTD_LOG" 2>&1 &
	STINTD_PID=$!
	for ((i = 0; i < 300; i++)); do
		stint status >/dev/null 2>&1 && return 0
		if ! kill -0 "$STINTD_PID" 2>/dev/null; then
			wait "$STINTD_PID"
			STINTD_PID=
			return 1
		fi
		sleep 0.1
	done
	fail "stintd neither started nor exited within 30 s"
}

db_ended()
{
	[ "$(db_state "$1")" = ended ]
}
# Fill the filesystem; task starts then fail (evidence, state.db).
fill()
{
	local i

	dd if=/dev/zero of="$STATE/fill" bs=16k >/dev/null 2>&1
	for ((i = 0; i < 200; i++)); do
		stint task start --agent alpha -q --ttl 10m >"$T/start.out" 2>&1 || break
	done
	[ "$i" -lt 200 ] || fail "task starts still succeed on a full filesystem"
	note "the full disk refuses a task start after $i more: $(cat "$T/start.out")"
}
# The attack: end a task while state.db cannot record it.
end_on_full_disk()
{
	local id=$1 state

	[ "$(db_state "$id")" = live ] || fail "task $id is not live in state.db before the end"
	stint task end "$id" >"$T/end.out" 2>"$T/end.err" ||
		{ cat "$T/end.out" "$T/end.err"; fail "task end failed on a full state disk (fails open)"; }
	cat "$T/end.err"
	grep -q "state.db cannot record the end" "$T/end.err" ||
		fail "task end did not say that recording the end is pending"
	[ "$(db_state "$id")" = live ] || fail "state.db recorded the end on a full disk?"
	! sign "$id" || fail "task $id signed after task end on a full state disk"
	backend_has_key "$id" && fail "key of ended task $id still in the backend"
	state=$(stint task show "$id" --json | json_get state) || fail "task show $id"
	[ "$state" = ended ] || fail "task show says '$state' after the end"
	stint task list --json | grep -q "$id" && fail "the ended task is still listed as live"
	sign "$keep" || { cat "$T/sign.out"; fail "the other task stopped signing"; }
}

id1=$(task_start alpha --ttl 10m) || exit 1
id2=$(task_start alpha --ttl 10m) || exit 1
keep=$(task_start alpha --ttl 10m) || exit 1
sign "$id1" || { cat "$T/sign.out"; fail "task $id1 cannot sign before the end"; }

# 1. The running stintd writes the end once there is space (the reaper).
fill
end_on_full_disk "$id1"
rm -f "$STATE/fill"
wait_for 30 db_ended "$id1" ||
	fail "state.db never recorded the end of $id1 (it says '$(db_state "$id1")')"
! sign "$id1" || fail "task $id1 signed after its end was recorded"

# 2. A restart while the disk is still full: the journal keeps the task
# ended; after it, space again, and the end lands.
fill
end_on_full_disk "$id2"
stintd_stop
if try_start; then
	note "stintd restarted on the full disk"
	! sign "$id2" || fail "task $id2 signed after a restart on the full disk"
	state=$(stint task show "$id2" --json | json_get state) || fail "task show $id2"
	[ "$state" = ended ] || fail "a restart on the full disk revived task $id2 ('$state')"
	stint task list --json | grep -q "$id2" && fail "a restart on the full disk lists $id2 live"
else
	note "stintd refused to start on the full disk: $(tail -n 1 "$STINTD_LOG")"
fi
rm -f "$STATE/fill"
[ -n "$STINTD_PID" ] || stintd_start
wait_for 30 db_ended "$id2" ||
	fail "state.db never recorded the end of $id2 (it says '$(db_state "$id2")')"
for id in "$id1" "$id2"; do
	! sign "$id" || fail "task $id signed after the end was recorded"
	backend_has_key "$id" && fail "key of ended task $id came back"
	[ "$(audit_count "$id" task-end)" -eq 1 ] || fail "expected one task-end record for $id"
done

# And a normal restart keeps them ended.
stintd_stop
stintd_start
for id in "$id1" "$id2"; do
	state=$(stint task show "$id" --json | json_get state) || fail "task show $id"
	[ "$state" = ended ] || fail "task $id is '$state' after a restart"
	! sign "$id" || fail "task $id signed after a restart"
done
sign "$keep" || { cat "$T/sign.out"; fail "the other task cannot sign after the restarts"; }
stint audit verify >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; fail "audit verify"; }
stintd_stop
note "task end on a full state disk revoked at once; the end landed once there was space"
