#!/bin/bash
# The audit log recovers from a failed fdatasync once the disk has space
# again, without breaking the chain. The log is on ext4 on a loop device
# whose backing file lives on a small tmpfs: ext4 believes it has space,
# write(2) succeeds into the page cache, and the writeback fails when the
# tmpfs is full, so fdatasync returns ENOSPC (as on a thin-provisioned
# disk). stintd then refuses records (SIGN fails closed; task end revokes
# with its record pending). Before the fix the log refused records until
# stintd restarted, even after space came back, and the pending task-end
# record was never written. Now: space back → signatures and the pending
# record flow again, the chain verifies online and, after a remount that
# drops the page cache, offline from what is on the disk (the records
# whose writeback failed were written again).
. "$(dirname "$0")/lib.sh"
need_root
need_cmd mount umount losetup mkfs.ext4 dd
stint_tmpdir
need_p11client

BACK=$T/backing
AFS=$T/auditfs
mkdir -m 0700 "$BACK" "$AFS"
mount -t tmpfs -o size=4m,mode=0700 tmpfs "$BACK" 2>/dev/null ||
	skip "cannot mount a tmpfs here (mount not permitted)"
LOOP=
_fs_cleanup()
{
	local rc=$?

	if [ -n "$STINTD_PID" ] && kill -0 "$STINTD_PID" 2>/dev/null; then
		kill -TERM "$STINTD_PID"
		_wait_pid "$STINTD_PID" 20
		kill -KILL "$STINTD_PID" 2>/dev/null
		wait "$STINTD_PID" 2>/dev/null
	fi
	mountpoint -q "$AFS" && umount "$AFS" 2>/dev/null
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	umount -l "$BACK" 2>/dev/null
	(exit "$rc")
	_cleanup
}
trap _fs_cleanup EXIT

truncate -s 32m "$BACK/img"
# Metadata written at mkfs time (no lazy init, no journal): later only data
# blocks need space in the backing file.
mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 -O ^has_journal \
	"$BACK/img" >"$T/mkfs.log" 2>&1 || { cat "$T/mkfs.log"; fail "mkfs.ext4"; }
LOOP=$(losetup -f --show "$BACK/img" 2>/dev/null) ||
	skip "no free loop device (losetup not permitted here)"
mount -o errors=continue "$LOOP" "$AFS" 2>/dev/null || skip "cannot mount ext4 on $LOOP"
chmod 0700 "$AFS"

backend_init
stintd_config sync=always
AUDIT_LOG=$AFS/audit.log
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

id=$(task_start alpha --ttl 10m) || exit 1
sign "$id" || { cat "$T/sign.out"; fail "task $id cannot sign before the disk fills"; }

# Fill the backing store: the next data block of audit.log cannot be
# written back, and its fdatasync fails.
dd if=/dev/zero of="$BACK/fill" bs=64k >/dev/null 2>&1
for ((i = 0; i < 300; i++)); do
	sign "$id" || break
done
[ "$i" -lt 300 ] || fail "SIGN kept succeeding while the log's writeback fails"
grep -q "fdatasync failed" "$STINTD_LOG" || { cat "$STINTD_LOG"; fail "stintd did not report the failed fdatasync"; }
note "fdatasync failed after $i more signatures: $(grep -m1 'fdatasync failed' "$STINTD_LOG")"
! sign "$id" || fail "a SIGN succeeded while the audit log cannot be synced"

# task end still revokes; its record waits for the log.
stint task end "$id" >"$T/end.out" 2>"$T/end.err" ||
	{ cat "$T/end.out" "$T/end.err"; fail "task end failed while the audit log cannot be synced"; }
grep -q "record is pending" "$T/end.err" || { cat "$T/end.err"; fail "task end did not say its record is pending"; }
! sign "$id" || fail "task $id signed after task end"

# Space again: the log accepts records without a restart.
rm -f "$BACK/fill"
start=$(date +%s)
recorded()
{
	[ "$(audit_count "$id" task-end)" -eq 1 ]
}
wait_for 30 recorded || { tail -n 20 "$STINTD_LOG"; fail "the pending task-end record never appeared once the disk had space (the log stays closed)"; }
note "the pending task-end record was written $(($(date +%s) - start)) s after space came back"
grep -q "writable again" "$STINTD_LOG" || fail "stintd did not say the log recovered"
again=$(task_start alpha --ttl 10m) || exit 1
sign "$again" || { cat "$T/sign.out"; fail "cannot sign once the log has space again"; }
[ "$(audit_count "$again" sign-allowed)" -eq 1 ] || fail "no sign-allowed record for $again"
stint audit verify >"$T/verify.out" 2>&1 || { cat "$T/verify.out"; fail "stint audit verify (online)"; }
stintd_stop

# What is on the disk, not in the page cache: remount, verify offline.
umount "$AFS" || fail "umount $AFS"
mount -o errors=continue "$LOOP" "$AFS" || fail "remount $AFS"
"$STINT" audit verify "$AUDIT_LOG" >"$T/verify.out" 2>&1 ||
	{ cat "$T/verify.out"; fail "stint audit verify (offline, after remount): records lost on the disk"; }
note "full writeback: SIGN refused, end pending; space back: records flow, chain intact on disk"
