#!/bin/bash
# Integration test 7: the audit log of a real run verifies, online and
# offline on a copy; changing one byte, deleting a middle line, swapping two
# lines, cutting the tail mid-line, or dropping the last record (against the
# head the daemon reports) each make offline verification fail (exit 1) and
# name the right line.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
stint_setup
need_p11client
agent_add alpha "$(id -u)"
head -c 32 /dev/urandom >"$T/digest"
# CKM_RSA_PKCS input: SoftHSM pads any bytes; the TPM signs only a
# DigestInfo (as TLS 1.2 sends), so on the TPM it gets a SHA-256 one.
rsa_in=$T/digest
if [ "$STINT_TEST_BACKEND" = tpm ]; then
	rsa_in=$T/digestinfo
	{
		printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65'
		printf '\x03\x04\x02\x01\x05\x00\x04\x20'
		cat "$T/digest"
	} >"$rsa_in"
fi

# Some history: tasks, signatures, a refusal, an end.
t1=$(task_start alpha --ttl 10m --intent "audit test: first task") || exit 1
t2=$(task_start alpha --ttl 10m --key rsa-2048 --max-signatures 2) || exit 1
p11client --token alpha --label "$t1" --mech ecdsa --in "$T/digest" --count 5 >/dev/null 2>&1 ||
	fail "signing with $t1"
p11client --token alpha --label "$t2" --mech rsa-pkcs --in "$rsa_in" --count 2 >/dev/null 2>&1 ||
	fail "signing with $t2"
# The budget of 2 is spent: the third is refused and audited.
! p11client --token alpha --label "$t2" --mech rsa-pkcs --in "$rsa_in" --count 1 >/dev/null 2>&1 ||
	fail "a task with --max-signatures 2 signed a third time"
[ "$(audit_count "$t2" sign-refused)" -ge 1 ] || fail "the budget refusal was not audited"
stint task end "$t1" >/dev/null || fail "task end"

# Online: the CLI asks the daemon for the log and its head.
# On a failure, also the head stintd reports now and the log's last records
# (to tell a torn read from a head the log does not hold).
stint audit verify >"$T/out" 2>&1 || {
	cat "$T/out"
	stint status --json
	tail -n 3 "$AUDIT_LOG"
	fail "online audit verify failed on a good log"
}
cat "$T/out"
stint status --json >"$T/status.json" || fail "stint status --json"
seq=$(json_get audit_seq <"$T/status.json")
hash=$(json_get audit_hash <"$T/status.json")
stintd_stop

n=$(wc -l <"$AUDIT_LOG")
[ "$n" -ge 12 ] || fail "only $n audit records after a whole run"
cp "$AUDIT_LOG" "$T/good.log"
[ "$(tail -c 1 "$T/good.log" | od -An -c | tr -d ' ')" = '\n' ] || fail "audit log does not end with a newline"

# Offline, on a copy; the daemon is stopped, so no socket is involved.
verify()
{
	"$STINT" audit verify "$@"
}
verify "$T/good.log" >"$T/out" 2>&1 || { cat "$T/out"; fail "offline verify failed on a good log"; }
grep -q "$n" "$T/out" || { cat "$T/out"; fail "verify did not report the number of records ($n)"; }
# expect_bad FILE LINE WHAT [verify options]
expect_bad()
{
	local f=$1 line=$2 what=$3 rc

	shift 3
	verify "$f" "$@" >"$T/out" 2>&1
	rc=$?
	cat "$T/out"
	[ "$rc" -eq 1 ] || fail "$what: verify exited $rc, expected 1"
	grep -Eiq "line:? *$line([^0-9]|\$)|:$line:" "$T/out" ||
		fail "$what: verify did not name line $line"
}

mid=$((n / 2))

# One byte changed (a digit of the time on the middle line: still JSON).
python3 - "$T/good.log" "$T/byte.log" "$mid" <<'PY'
import re, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
i = int(sys.argv[3]) - 1
m = re.search(rb'"time":"[0-9-]+T[0-9:]+\.([0-9])', lines[i])
pos = m.start(1) if m else 20
b = bytearray(lines[i])
b[pos] = ord("7") if b[pos] != ord("7") else ord("3")
lines[i] = bytes(b)
open(sys.argv[2], "wb").write(b"\n".join(lines))
PY
cmp -s "$T/good.log" "$T/byte.log" && fail "byte change produced the same file"
expect_bad "$T/byte.log" "$mid" "one byte changed on line $mid"

# A middle line deleted: the line after it no longer chains.
sed "${mid}d" "$T/good.log" >"$T/deleted.log"
expect_bad "$T/deleted.log" "$mid" "line $mid deleted"

# Two lines swapped.
python3 - "$T/good.log" "$T/swapped.log" "$mid" <<'PY'
import sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
i = int(sys.argv[3]) - 1
lines[i], lines[i + 1] = lines[i + 1], lines[i]
open(sys.argv[2], "wb").write(b"\n".join(lines))
PY
expect_bad "$T/swapped.log" "$mid" "lines $mid and $((mid + 1)) swapped"

# The tail cut in the middle of the last record.
size=$(stat -c %s "$T/good.log")
last=$(tail -n 1 "$T/good.log" | wc -c)
cp "$T/good.log" "$T/cut.log"
truncate -s $((size - last / 2)) "$T/cut.log"
expect_bad "$T/cut.log" "$n" "tail cut mid-line"

# Whole records dropped from the end are only detectable against a head
# kept elsewhere: the one `stint status` reported.
[ -n "$seq" ] && [ -n "$hash" ] || fail "stint status --json has no audit_seq/audit_hash"
head_line=$(python3 - "$T/good.log" "$seq" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1], "rb"), 1):
    if json.loads(line)["seq"] == int(sys.argv[2]):
        print(i)
PY
)
[ -n "$head_line" ] || fail "no record with seq $seq (the head status reported)"
head -n "$head_line" "$T/good.log" >"$T/head.log"
# On a failure: the head status reported and the records around it.
show_head()
{
	cat "$T/out" "$T/status.json"
	sed -n "$((head_line > 1 ? head_line - 1 : 1)),$((head_line + 1))p" "$T/good.log"
}
verify "$T/head.log" --head "$seq:$hash" >"$T/out" 2>&1 ||
	{ show_head; fail "verify --head $seq:$hash failed on the log up to that record"; }
head -n $((head_line - 1)) "$T/good.log" >"$T/short.log"
verify "$T/short.log" >/dev/null 2>&1 || fail "a prefix of a good log must verify without --head"
verify "$T/short.log" --head "$seq:$hash" >"$T/out" 2>&1 &&
	{ show_head; fail "verify --head passed on a log missing its last record"; }
cat "$T/out"

# The CLI checks the line count reported is the real one.
[ "$(verify "$T/good.log" --json 2>/dev/null | json_get records)" = "$n" ] ||
	fail "verify --json does not report records=$n"
note "audit chain of $n records verified; tampering detected and located"
