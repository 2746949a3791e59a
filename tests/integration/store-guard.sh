#!/bin/bash
# Issue 8 item 5, as the attack: `: > state.db` or `rm state.db`, then a
# restart. stintd used to start with no agents and no tasks and its start-up
# sweep destroyed every live task's key. Now it refuses to start (non-zero
# exit, a message naming state.db and what to do) while the audit log, ca.pem
# or the backend's task keys show it has run before, and the keys stay; an
# explicit `stintd --init` creates a new store (never over an existing one),
# and its first start destroys nothing.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
ok() { echo "ok $*"; }
backend_init
stintd_config

# Runs stintd on the current config and expects it to refuse to start.
expect_refusal()
{
	local what=$1 rc

	shift
	timeout 60 "$STINTD" --config "$STINTD_CONF" --foreground "$@" \
		>"$T/refused.log" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
		cat "$T/refused.log" >&2
		fail "$what: stintd did not refuse to start (exit $rc)"
	fi
	san_check_log "$T/refused.log" || fail "sanitizer error in stintd"
	note "$what: stintd exited $rc: $(tail -n 1 "$T/refused.log")"
}

keys_present()
{
	local id

	for id in "$@"; do
		backend_has_key "$id" || fail "$1: key of live task $id gone from the backend"
	done
}

# --- a genuinely fresh host: --init works (and so does a plain first start,
# which every other test uses) ------------------------------------------------
STINTD_ARGS=--init stintd_start
grep -q 'first start: creating' "$STINTD_LOG" || fail "--init on a fresh host: no 'first start' in the log"
ok "--init on a fresh host starts"
agent_add alpha "$(id -u)"
t1=$(task_start alpha --ttl 30m) || exit 1
t2=$(task_start alpha --ttl 30m) || exit 1
stintd_stop

expect_refusal "--init over an existing store" --init
grep -q 'already holds a store' "$T/refused.log" || fail "--init over a store: unclear message"
[ "$(stat -c %s "$T/state/state.db")" -gt 0 ] || fail "--init emptied state.db"
ok "--init never replaces an existing state.db"

cp "$T/state/state.db" "$T/state.db.bak"

# --- the attack: an emptied state.db ----------------------------------------
: >"$T/state/state.db"
expect_refusal "emptied state.db"
grep -q "$T/state/state.db is missing or empty" "$T/refused.log" || fail "emptied state.db: message does not name the file"
grep -q -- '--init' "$T/refused.log" || fail "emptied state.db: message does not say what to do"
grep -q 'audit log holds records' "$T/refused.log" || fail "emptied state.db: message does not say why"
keys_present "$t1" "$t2"
[ ! -s "$T/state/state.db" ] || fail "the refused start wrote a store"
ok "emptied state.db: refused, keys kept"

# --- a deleted state.db -------------------------------------------------------
rm -f "$T/state/state.db" "$T/state/state.db-wal" "$T/state/state.db-shm"
expect_refusal "deleted state.db"
grep -q "state.db is missing or empty" "$T/refused.log" || fail "deleted state.db: unclear message"
[ ! -e "$T/state/state.db" ] || fail "the refused start created state.db"
keys_present "$t1" "$t2"
ok "deleted state.db: refused, keys kept"

# --- state.db, audit log and ca.pem all gone: the backend's keys still tell --
mkdir "$T/aside"
mv "$AUDIT_LOG" "$T/state/ca.pem" "$T/aside/"
expect_refusal "state.db, audit.log and ca.pem deleted"
case $STINT_TEST_BACKEND in
softhsm) grep -q "holds [0-9]* task key objects" "$T/refused.log" ;;
tpm) grep -q "task key blobs" "$T/refused.log" ;;
esac || fail "no state, no audit log: the refusal does not name the backend's keys"
keys_present "$t1" "$t2"
mv "$T/aside/audit.log" "$AUDIT_LOG"
mv "$T/aside/ca.pem" "$T/state/ca.pem"
ok "with only the backend's task keys left: refused, keys kept"

# --- restoring the backup brings everything back ------------------------------
cp "$T/state.db.bak" "$T/state/state.db"
stintd_start
[ "$(stint task show "$t1" --json | json_get state)" = live ] || fail "restored store: $t1 not live"
keys_present "$t1" "$t2"
stintd_stop
ok "restored state.db: tasks live again"

# --- --init on a host that ran before: an empty store, nothing destroyed ------
rm -f "$T/state/state.db" "$T/state/state.db-wal" "$T/state/state.db-shm"
STINTD_ARGS=--init stintd_start
grep -q -- '--init: creating an empty' "$STINTD_LOG" || fail "--init: no warning in the log"
stint agent list >"$T/agents" || fail "agent list after --init"
! grep -q alpha "$T/agents" || fail "--init: agent alpha still there"
keys_present "$t1" "$t2"
stintd_stop
ok "--init after a lost store: empty store, the first start destroyed no key"

# The next start sweeps what no task of the new store owns.
stintd_start
if [ "$STINT_TEST_BACKEND" = softhsm ]; then
	backend_has_key "$t1" && fail "the start after --init did not sweep $t1"
	backend_has_key "$t2" && fail "the start after --init did not sweep $t2"
	[ "$(audit_count "$t1" key-destroy)" -ge 1 ] || fail "sweep of $t1 not audited"
	ok "the start after --init sweeps the old keys (audited)"
fi
stintd_stop
