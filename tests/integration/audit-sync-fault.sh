#!/bin/bash
# The audit log recovers from a failed fdatasync without a restart and
# without breaking its chain: the deterministic twin of audit-sync-fail.sh
# (which needs a real disk whose writeback fails, and so is run by hand).
# The test-only stintd (stintd-fault, linked with --wrap=fdatasync; see
# tests/integration/sync_fault.c) fails every fdatasync of audit.log, with
# ENOSPC, while the switch file $T/sync-fault exists, so the test decides
# exactly which sync fails.
#
# With sync = always: the SIGN whose record cannot be synced fails, and so
# does every later one (fail closed); task end still revokes and says its
# record is pending; with the fault gone the log takes records again within
# seconds, the pending task-end record is written once, signing resumes,
# and the chain verifies online, offline and at a restart (the anchor in
# state.db matches the file). The same with sync = batch, where the
# background syncer's fdatasync fails; and a rotation whose final sync of
# the old file fails is refused (the log stays where it was, closed until
# it recovers) instead of chaining a new file onto records that may not be
# on the disk. Before the recovery
# (attest/audit_recover.c) the log refused records until stintd restarted.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_p11client
STINTD=$top_builddir/tests/integration/stintd-fault
[ -x "$STINTD" ] || skip "no $STINTD (make check builds it)"
SWITCH=$T/sync-fault
export STINT_TEST_SYNC_FAULT=$SWITCH

backend_init
stintd_config sync=always
stintd_start
p11_env
agent_add alpha "$(id -u)"
head -c 32 /dev/urandom >"$T/digest"
sign()
{
	p11client --token alpha --label "$1" --mech ecdsa --in "$T/digest" \
		--count 1 >"$T/sign.out" 2>&1
}
injected()
{
	grep -c "STINT_TEST_SYNC_FAULT: fdatasync" "$STINTD_LOG"
}
recorded()
{
	[ "$(audit_count "$1" task-end)" -eq 1 ]
}
signs_again()
{
	sign "$1"
}

# --- sync = always: the failing sync is the SIGN's own --------------------
id=$(task_start alpha --ttl 10m) || exit 1
sign "$id" || { cat "$T/sign.out"; fail "task $id cannot sign before the fault"; }
[ "$(injected)" -eq 0 ] || fail "a fault was injected before the switch existed"

echo "$AUDIT_LOG" >"$SWITCH"
! sign "$id" || fail "SIGN succeeded although its audit record could not be synced (sync = always)"
[ "$(injected)" -ge 1 ] || { cat "$STINTD_LOG"; fail "no fdatasync failure was injected"; }
grep -q "fdatasync failed: No space left on device" "$STINTD_LOG" ||
	{ cat "$STINTD_LOG"; fail "stintd did not report the failed fdatasync"; }
for i in 1 2 3; do
	! sign "$id" || fail "SIGN $i succeeded while the audit log cannot be synced"
done

# task end revokes anyway; its record waits for the log.
stint task end "$id" >"$T/end.out" 2>"$T/end.err" ||
	{ cat "$T/end.out" "$T/end.err"; fail "task end failed while the audit log cannot be synced"; }
grep -q "record is pending" "$T/end.err" || { cat "$T/end.err"; fail "task end did not say its record is pending"; }
! sign "$id" || fail "task $id signed after task end"
[ "$(audit_count "$id" task-end)" -eq 0 ] || fail "the task-end record is in the file although the log is closed"

# The fault goes: records flow again without a restart.
rm -f "$SWITCH"
start=$SECONDS
wait_for 30 recorded "$id" ||
	{ tail -n 20 "$STINTD_LOG"; fail "the pending task-end record never appeared once fdatasync worked again (the log stays closed)"; }
note "pending task-end record written $((SECONDS - start)) s after the fault went"
grep -q "writable again" "$STINTD_LOG" || fail "stintd did not say the log recovered"
again=$(task_start alpha --ttl 10m) || exit 1
sign "$again" || { cat "$T/sign.out"; fail "cannot sign once fdatasync works again"; }
[ "$(audit_count "$again" sign-allowed)" -eq 1 ] || fail "no single sign-allowed record for $again"
stint audit verify >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; fail "stint audit verify (online) after recovery"; }

# --- sync = batch: the background syncer's fdatasync fails ---------------
stintd_stop
stintd_config sync=batch
stintd_start
id=$(task_start alpha --ttl 10m) || exit 1
sign "$id" || { cat "$T/sign.out"; fail "task $id cannot sign (sync = batch)"; }
n0=$(injected)
echo "$AUDIT_LOG" >"$SWITCH"
# A signature's record is synced within milliseconds after its reply; that
# sync fails, and from then on the log refuses records.
sign "$id" || true
refused()
{
	[ "$(injected)" -gt "$n0" ] && ! sign "$id"
}
wait_for 30 refused || { tail -n 20 "$STINTD_LOG"; fail "SIGN kept succeeding after the syncer's fdatasync failed (sync = batch)"; }
! sign "$id" || fail "a SIGN succeeded while the audit log is closed (sync = batch)"
stint task end "$id" >"$T/end.out" 2>"$T/end.err" ||
	{ cat "$T/end.out" "$T/end.err"; fail "task end failed while the audit log is closed (sync = batch)"; }
grep -q "record is pending" "$T/end.err" || { cat "$T/end.err"; fail "task end did not say its record is pending (sync = batch)"; }
rm -f "$SWITCH"
wait_for 30 recorded "$id" || { tail -n 20 "$STINTD_LOG"; fail "the pending task-end record never appeared (sync = batch)"; }
again=$(task_start alpha --ttl 10m) || exit 1
wait_for 10 signs_again "$again" || { cat "$T/sign.out"; fail "cannot sign once fdatasync works again (sync = batch)"; }
stint audit verify >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; fail "stint audit verify (online, sync = batch)"; }

# --- rotation: the old file's final sync fails ----------------------------
# Before the fix the rotation ignored it and chained a new file onto
# records that may not be on the disk. An empty switch file fails every
# fdatasync: the old file already has its rotated name when it is synced.
: >"$SWITCH"
if stint audit rotate >"$T/rot.out" 2>&1; then
	cat "$T/rot.out"
	fail "stint audit rotate succeeded although the old file could not be synced"
fi
[ -z "$(find "$T/state" -name 'audit.log.*' -print -quit)" ] ||
	fail "the log was rotated although its last records could not be synced: $(ls "$T/state")"
[ -s "$AUDIT_LOG" ] || fail "a failed rotation left no log at $AUDIT_LOG"
grep -q "cannot sync .* before rotating" "$T/rot.out" || { cat "$T/rot.out"; fail "rotate did not say the sync failed"; }
! sign "$again" || fail "a SIGN succeeded after the rotation's sync failed"
rm -f "$SWITCH"
wait_for 10 signs_again "$again" || { cat "$T/sign.out"; fail "cannot sign once fdatasync works again (after a failed rotation)"; }
stint audit rotate >"$T/rot.out" 2>&1 || { cat "$T/rot.out"; fail "stint audit rotate once fdatasync works again"; }
rotated=$(find "$T/state" -name 'audit.log.*' -print -quit)
[ -n "$rotated" ] || fail "stint audit rotate left no rotated file"
sign "$again" || { cat "$T/sign.out"; fail "cannot sign after the rotation"; }

# What is in the file: offline verification, and a restart that checks the
# anchor in state.db against the file.
stintd_stop
"$STINT" audit verify "$rotated" "$AUDIT_LOG" >"$T/verify.out" 2>&1 ||
	{ cat "$T/verify.out"; fail "stint audit verify (offline, both files) after three recoveries"; }
stintd_start
stint audit verify >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; fail "stint audit verify after a restart"; }
stintd_stop
note "failed fdatasync (always, batch): SIGN refused, end pending; fault gone: records flow, chain intact"
