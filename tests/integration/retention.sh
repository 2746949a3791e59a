#!/bin/bash
# Issue 8 item 11: nothing was ever pruned; after 12,000 start/end cycles
# state.db was 92 MB with 12,000 evidence files. Now `[stintd] retention`
# prunes ended and expired tasks (rows and evidence files) once they ended
# longer ago than that, at start and periodically, while live tasks stay and
# the audit log keeps every record of the pruned ones.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
ok() { echo "ok $*"; }
stint_setup retention=3s
agent_add alpha "$(id -u)"

live=$(task_start alpha --ttl 30m) || exit 1
gone1=$(task_start alpha --ttl 30m) || exit 1
gone2=$(task_start alpha --ttl 30m) || exit 1
expiring=$(task_start alpha --ttl 2s) || exit 1
for id in "$live" "$gone1" "$gone2" "$expiring"; do
	[ -f "$T/state/evidence/$id.ev" ] || fail "no evidence file for $id"
done
stint task end "$gone1" >/dev/null || fail "task end $gone1"
stint task end "$gone2" >/dev/null || fail "task end $gone2"

# The retention thread runs every min(1h, retention / 2) = 1 s here.
pruned()
{
	! stint task show "$gone1" >/dev/null 2>&1 &&
		! stint task show "$gone2" >/dev/null 2>&1 &&
		! stint task show "$expiring" >/dev/null 2>&1
}
t0=$SECONDS
wait_for 30 pruned || fail "ended tasks still in the store 30 s after they ended (retention 3s)"
note "ended and expired tasks pruned $((SECONDS - t0)) s after the ends"
for id in "$gone1" "$gone2" "$expiring"; do
	stint task show "$id" >"$T/show" 2>&1 && fail "task show $id still answers"
	grep -qi "unknown\|not found\|no task" "$T/show" || { cat "$T/show"; fail "task show $id: not 'unknown'"; }
	[ ! -e "$T/state/evidence/$id.ev" ] || fail "evidence file of pruned task $id left"
	[ "$(audit_count "$id" task-start)" -eq 1 ] || fail "the audit log lost task-start of pruned task $id"
done
ok "ended and expired tasks pruned: rows and evidence files gone, audit records kept"

[ "$(stint task show "$live" --json | json_get state)" = live ] || fail "live task pruned"
[ -f "$T/state/evidence/$live.ev" ] || fail "the live task's evidence file was removed"
backend_has_key "$live" || fail "the live task's key is gone"
grep -q '"event":"task-prune"' "$AUDIT_LOG" || fail "no task-prune audit record"
ok "the live task, its evidence and key untouched; the prune is audited"

# At start too: end a task, stop, let it age, start with a long period.
gone3=$(task_start alpha --ttl 30m) || exit 1
stint task end "$gone3" >/dev/null || fail "task end $gone3"
stintd_stop
sleep 4
stintd_start
stint task show "$gone3" >/dev/null 2>&1 && fail "a task ended 4 s before a start with retention 3s survived the start"
[ ! -e "$T/state/evidence/$gone3.ev" ] || fail "evidence of $gone3 left after the start"
[ "$(stint task show "$live" --json | json_get state)" = live ] || fail "live task pruned at start"
ok "prune at start"
stintd_stop
