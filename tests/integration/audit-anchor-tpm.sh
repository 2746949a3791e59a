#!/bin/bash
# The TPM anchor of the audit chain (issue 8, item 10, last part). Root on
# the host stops stintd, keeps a copy of its state_dir (state.db, the audit
# log, the TPM key files: a consistent pair the hash chain and the head in
# state.db both accept), lets stintd run on, then puts the old copy back.
# On the TPM backend every signed checkpoint first advances an NV counter
# (never goes back) and carries its value; start compares the TPM with the
# last checkpoint:
#   - a fresh TPM: the counter is defined at first start and pinned by a
#     checkpoint at once; each checkpoint advances it by one;
#   - the restored older copy: start refused, naming the rollback;
#   - the counter one ahead (a crash between advancing it and writing the
#     checkpoint, made with tpm2_nvincrement, and for real with the
#     test-only stintd-fault killing itself right after the increment):
#     start accepted, the daemon-start record says so, the next checkpoint
#     takes that value; a plain kill -9 is no rollback;
#   - two ahead: refused; --reset-audit-anchor continues;
#   - stint audit verify and stint status --json report the counter.
export STINT_TEST_BACKEND=tpm
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd tpm2_nvread
need_cmd tpm2_nvincrement
backend_init
stintd_config
NV=0x01500101

# The nv= values of the checkpoints in the given files, one a line.
log_nv()
{
	grep -h '"event":"audit-checkpoint"' "$@" | grep -o ' nv=[0-9]*' | cut -d= -f2
}

# The TPM counter, read with tpm2-tools (only while stintd is stopped:
# swtpm serves one client).
tpm_nv()
{
	local hex

	hex=$(TPM2TOOLS_TCTI=$TCTI tpm2_nvread -C o -s 8 "$NV" 2>>"$T/tools.err" |
		od -An -v -tx1 | tr -d ' \n') || return 1
	[ ${#hex} -eq 16 ] || return 1
	echo $((16#$hex))
}

# Start expected to fail: stintd's exit status and output in $T/refused.
start_refused()
{
	"$STINTD" --config "$STINTD_CONF" --foreground >"$T/refused" 2>&1 &
	local pid=$!
	_wait_pid "$pid" 30 || { kill -KILL "$pid"; fail "stintd neither started nor refused within 30 s"; }
	wait "$pid" && fail "stintd started on the restored older copy: $(cat "$T/refused")"
	return 0
}

# 1. A fresh TPM: the counter does not exist before the first start.
TPM2TOOLS_TCTI=$TCTI tpm2_getcap handles-nv-index 2>/dev/null | grep -qi "0x0*1500101" &&
	fail "the fresh swtpm already has NV index $NV"
stintd_start
grep -q "audit counter defined at NV index $NV" "$STINTD_LOG" ||
	fail "first start did not define the audit counter: $(cat "$STINTD_LOG")"
grep '"event":"daemon-start"' "$AUDIT_LOG" | grep -q "TPM audit counter (NV index $NV) not advanced yet" ||
	fail "daemon-start does not record the new counter"
stint status --json >"$T/status.json" || fail "stint status --json"
c0=$(json_get audit_nv_counter <"$T/status.json")
[ "$c0" -ge 1 ] 2>/dev/null || fail "status --json audit_nv_counter is '$c0'"
[ "$(log_nv "$AUDIT_LOG" | tail -n 1)" = "$c0" ] ||
	fail "no checkpoint pins the fresh counter $c0 at start: $(log_nv "$AUDIT_LOG" | tr '\n' ' ')"

# 2. Each checkpoint advances it by one: rotation writes one before and
# one after, the stop one more.
agent_add alpha "$(id -u)"
t=$(task_start alpha --ttl 10m --intent "nv anchor") || exit 1
stint audit rotate >/dev/null || fail "stint audit rotate"
stint status --json >"$T/status.json" || fail "stint status --json"
[ "$(json_get audit_nv_counter <"$T/status.json")" = $((c0 + 2)) ] ||
	fail "after a rotation (two checkpoints) the counter is $(json_get audit_nv_counter <"$T/status.json"), not $((c0 + 2))"
stint audit verify >"$T/verify.out" || fail "online verify: $(cat "$T/verify.out")"
grep -q "TPM audit counter: .*stintd's TPM holds $((c0 + 2))" "$T/verify.out" ||
	fail "audit verify does not report the counter: $(cat "$T/verify.out")"
stint task end "$t" >/dev/null || fail "task end"
stint ca attestation-key >"$T/ak.pem" || fail "stint ca attestation-key"
stintd_stop
c1=$((c0 + 3))
[ "$(tpm_nv)" = "$c1" ] || fail "TPM counter after stop is $(tpm_nv), not $c1"
rotated=$(ls "$T"/state/audit.log.2* | head -n 1)
[ "$(log_nv "$rotated" "$AUDIT_LOG" | tr '\n' ' ')" = "$c0 $((c0 + 1)) $((c0 + 2)) $c1 " ] ||
	fail "checkpoints carry $(log_nv "$rotated" "$AUDIT_LOG" | tr '\n' ' '), not $c0..$c1 one each"
"$STINT" audit verify --attestation-key "$T/ak.pem" "$rotated" "$AUDIT_LOG" >"$T/verify.out" ||
	fail "offline verify: $(cat "$T/verify.out")"
grep -q "TPM audit counter: 4 checkpoints carry it, from $c0 to $c1" "$T/verify.out" ||
	fail "offline verify does not report the counter values: $(cat "$T/verify.out")"

cp -a "$T/state" "$T/old"

# 3. Work on, then restore the older copy.
stintd_start
t=$(task_start alpha --ttl 10m --intent "after the copy") || exit 1
stint task end "$t" >/dev/null || fail "task end"
stint audit rotate >/dev/null || fail "stint audit rotate"
stintd_stop
c2=$(tpm_nv) || fail "cannot read the TPM counter"
[ "$c2" -ge $((c1 + 2)) ] || fail "the counter moved only from $c1 to $c2"
mv "$T/state" "$T/new"
cp -a "$T/old" "$T/state"
start_refused
grep -q "audit log rollback: the TPM audit counter (NV index $NV) is at $c2, but the last checkpoint in $AUDIT_LOG (seq [0-9]*) carries $c1" "$T/refused" ||
	fail "start on the restored copy not refused for the rollback: $(cat "$T/refused")"
note "refused: $(grep -o 'audit log rollback[^;]*' "$T/refused" | head -n 1)"
# --check refuses it the same way.
"$STINTD" --config "$STINTD_CONF" --check >"$T/check.out" 2>&1 &&
	fail "stintd --check accepted the restored copy"
grep -q "audit log rollback" "$T/check.out" || fail "--check: $(cat "$T/check.out")"

# 4. The newest state again, with the TPM one ahead of its last checkpoint:
# stintd died after advancing the counter, before writing the checkpoint.
rm -rf "$T/state"
mv "$T/new" "$T/state"
auth=$(od -An -v -tx1 "$T/state/tpm/audit-nv.auth" | tr -d ' \n')
TPM2TOOLS_TCTI=$TCTI tpm2_nvincrement -C "$NV" -P "hex:$auth" "$NV" 2>>"$T/tools.err" ||
	fail "tpm2_nvincrement: $(tail -n 3 "$T/tools.err")"
[ "$(tpm_nv)" = $((c2 + 1)) ] || fail "tpm2_nvincrement did not move the counter"
stintd_start
grep '"event":"daemon-start"' "$AUDIT_LOG" | tail -n 1 | grep -q "TPM audit counter $((c2 + 1)) is one ahead of the last checkpoint's $c2" ||
	fail "the crash case is not audited in daemon-start: $(grep daemon-start "$AUDIT_LOG" | tail -n 1)"
stint status --json >"$T/status.json" || fail "stint status --json"
[ "$(json_get audit_nv_counter <"$T/status.json")" = $((c2 + 1)) ] ||
	fail "the counter moved again at start: $(json_get audit_nv_counter <"$T/status.json")"
[ "$(log_nv "$AUDIT_LOG" | tail -n 1)" = $((c2 + 1)) ] ||
	fail "no checkpoint took the value the crash left: $(log_nv "$AUDIT_LOG" | tr '\n' ' ')"

# A plain crash (kill -9 with no checkpoint in flight) is no rollback.
t=$(task_start alpha --ttl 10m --intent "before kill -9") || exit 1
stintd_kill9
stintd_start
stint task end "$t" >/dev/null || fail "task end after kill -9"

# The same crash for real: the test-only stintd-fault kills itself right
# after the TPM incremented the counter for the rotation's checkpoint.
stintd_stop
STINTD_REAL=$STINTD
STINTD=$top_builddir/tests/integration/stintd-fault
[ -x "$STINTD" ] || fail "no $STINTD (make check builds it)"
STINT_TEST_NV_CRASH=$T/nv-crash
export STINT_TEST_NV_CRASH
stintd_start
c4=$(stint status --json | json_get audit_nv_counter)
[ "$(log_nv "$AUDIT_LOG" | tail -n 1)" = "$c4" ] || fail "the counter and the log disagree before the crash"
touch "$T/nv-crash"
stint audit rotate >/dev/null 2>&1 && fail "stint audit rotate survived the injected crash"
_wait_pid "$STINTD_PID" 10 || fail "stintd-fault did not die after the NV increment"
wait "$STINTD_PID" 2>/dev/null
STINTD_PID=
rm -f "$T/nv-crash"
unset STINT_TEST_NV_CRASH
STINTD=$STINTD_REAL
[ "$(tpm_nv)" = $((c4 + 1)) ] || fail "the TPM counter is $(tpm_nv) after the crash, not $((c4 + 1))"
[ "$(log_nv "$T"/state/audit.log* | sort -n | tail -n 1)" = "$c4" ] ||
	fail "a checkpoint with the new value was written before the crash"
stintd_start
grep '"event":"daemon-start"' "$AUDIT_LOG" | tail -n 1 | grep -q "TPM audit counter $((c4 + 1)) is one ahead of the last checkpoint's $c4" ||
	fail "the real crash is not audited in daemon-start: $(grep daemon-start "$AUDIT_LOG" | tail -n 1)"

# 5. Two ahead is not a crash: refused (a copy one checkpoint old cannot be
# told from a crash; two can).
stintd_stop
c3=$(tpm_nv)
TPM2TOOLS_TCTI=$TCTI tpm2_nvincrement -C "$NV" -P "hex:$auth" "$NV" 2>>"$T/tools.err" ||
	fail "tpm2_nvincrement"
TPM2TOOLS_TCTI=$TCTI tpm2_nvincrement -C "$NV" -P "hex:$auth" "$NV" 2>>"$T/tools.err" ||
	fail "tpm2_nvincrement"
start_refused
grep -q "is at $((c3 + 2)), but the last checkpoint .* carries $c3" "$T/refused" ||
	fail "two ahead not refused: $(cat "$T/refused")"
# The operator who kept the evidence continues from the TPM's counter.
STINTD_ARGS=--reset-audit-anchor stintd_start
stint status --json >"$T/status.json" || fail "stint status --json"
[ "$(log_nv "$AUDIT_LOG" | tail -n 1)" = "$(json_get audit_nv_counter <"$T/status.json")" ] ||
	fail "after --reset-audit-anchor no checkpoint pins the counter"
stintd_stop
stintd_start
stintd_stop
echo "PASS: $TEST_NAME"
