#!/bin/bash
# Rotating the audit log without a stop (issue 13 item 7). Sign; rotate as
# logrotate does (rename, then SIGHUP); sign; rotate with `stint audit
# rotate`; sign. The three files verify as one chain (seq continues, each
# new file's first record links to the previous file's head), each rotated
# file ends with a signed checkpoint, and a changed byte in the middle file
# fails verification naming that file and line.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_p11client
stint_setup
agent_add alpha "$(id -u)"
head -c 32 /dev/urandom >"$T/digest"
t=$(task_start alpha --ttl 10m) || exit 1
sign()
{
	p11client --token alpha --label "$t" --mech ecdsa --in "$T/digest" --count 3 >/dev/null 2>&1 ||
		fail "signing with $t"
}
first_event()
{
	head -n 1 "$AUDIT_LOG" 2>/dev/null | grep -q '"event":"audit-rotate"'
}
sign
# logrotate: rename, then SIGHUP.
mv "$AUDIT_LOG" "$T/state/audit.log.1"
kill -HUP "$STINTD_PID"
wait_for 20 first_event || fail "no new log with an audit-rotate record within 20 s of SIGHUP"
stintd_alive || fail "stintd died on SIGHUP"
grep -q 'continues audit.log.1: seq=' "$AUDIT_LOG" || { head -n 1 "$AUDIT_LOG"; fail "the link record does not name audit.log.1"; }
tail -n 1 "$T/state/audit.log.1" | grep -q '"audit-checkpoint"' || fail "the SIGHUP-rotated file does not end with a checkpoint"
sign
# The CLI: stintd moves the file aside itself.
stint audit rotate >"$T/rot.out" || { cat "$T/rot.out"; fail "stint audit rotate"; }
cat "$T/rot.out"
f2=$(sed -n 's/.* are in \(.*\)$/\1/p' "$T/rot.out")
[ -f "$f2" ] || fail "stint audit rotate named no existing file ('$f2')"
first_event || fail "no audit-rotate record after stint audit rotate"
sign
stint ca attestation-key >"$T/ak.pem" || fail "stint ca attestation-key"
# Online verify works on the new file (it continues an earlier one).
stint audit verify >"$T/out" 2>&1 || { cat "$T/out"; fail "online verify of the rotated log"; }
stintd_stop
f1=$T/state/audit.log.1

verify()
{
	"$STINT" audit verify "$@" >"$T/out" 2>&1
	local rc=$?
	cat "$T/out"
	return $rc
}
verify "$f1" "$f2" "$AUDIT_LOG" || fail "the three files do not verify as one chain"
total=$(($(wc -l <"$f1") + $(wc -l <"$f2") + $(wc -l <"$AUDIT_LOG")))
grep -q "OK: $total records" "$T/out" || fail "verify did not count all $total records"
verify "$f1" "$f2" "$AUDIT_LOG" --attestation-key "$T/ak.pem" || fail "checkpoints across rotated files"
verify "$AUDIT_LOG" || fail "the newest file alone does not verify"
grep -q "continues an earlier file" "$T/out" || fail "verify did not say the file continues an earlier one"
! verify "$f2" "$f1" "$AUDIT_LOG" || fail "files out of order verified"
# Seq continues across files.
s1=$(tail -n 1 "$f1" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["seq"])')
s2=$(head -n 1 "$f2" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["seq"])')
[ "$s2" -eq $((s1 + 1)) ] || fail "seq does not continue: $s1 then $s2"

# One byte changed in the middle file.
cp "$f2" "$T/f2.orig"
n2=$(wc -l <"$f2")
line=$(((n2 + 1) / 2))
"$PYTHON" - "$f2" "$line" <<'PY'
import re, sys
path, i = sys.argv[1], int(sys.argv[2]) - 1
lines = open(path, "rb").read().split(b"\n")
m = re.search(rb'"time":"[0-9-]+T[0-9:]+\.([0-9])', lines[i])
d = lines[i][m.start(1)]
lines[i] = lines[i][: m.start(1)] + (b"1" if d != ord("1") else b"2") + lines[i][m.start(1) + 1 :]
open(path, "wb").write(b"\n".join(lines))
PY
! verify "$f1" "$f2" "$AUDIT_LOG" || fail "a changed byte in the middle file verified"
grep -q "line $line of .*$(basename "$f2"):" "$T/out" || fail "verify did not name $(basename "$f2") line $line"
cp "$T/f2.orig" "$f2"
# stintd restarts on the rotated log (its anchor is in the new file).
stintd_start
stintd_stop
exit 0
