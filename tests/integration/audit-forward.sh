#!/bin/bash
# [audit] forward (issue 11 item 7): with forward = syslog, a real rsyslogd
# (private config, private socket, output in $T) receives every audit
# record as RFC 5424 with structured data, and the chain rebuilt from what
# it received verifies and equals the file byte for byte. With forward =
# journal, a fake journald socket receives the native field format
# (STINT_SEQ, STINT_EVENT, STINT_AGENT, STINT_TASK, STINT_HASH, MESSAGE = the
# record). A receiver that never reads, or none at all, never blocks or
# fails a signature: copies are dropped and counted, the file is complete.
. "$(dirname "$0")/lib.sh"
need_cmd rsyslogd
stint_tmpdir
need_p11client
backend_init
stintd_config
p11_env
cp "$STINTD_CONF" "$T/base.conf"
head -c 32 /dev/urandom >"$T/digest"

# forward_conf KIND SOCKET: the test config with forwarding on ([audit] is
# the config's last section).
forward_conf()
{
	cp "$T/base.conf" "$STINTD_CONF"
	printf 'forward = %s\nforward_socket = %s\n' "$1" "$2" >>"$STINTD_CONF"
}

# some_history AGENT: for an agent added before, a task, three signatures, a refusal after its end;
# prints the task id.
some_history()
{
	local t

	t=$(task_start "$1" --ttl 10m) || exit 1
	p11client --token "$1" --label "$t" --mech ecdsa --in "$T/digest" --count 3 >/dev/null 2>&1 ||
		fail "signing with forward on"
	stint task end "$t" >/dev/null || fail "task end"
	! p11client --token "$1" --label "$t" --mech ecdsa --in "$T/digest" --count 1 >/dev/null 2>&1 ||
		fail "signed after task end"
	echo "$t"
}

# lines_at_least FILE N
lines_at_least()
{
	[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]
}

# --- syslog, through a real rsyslogd ---------------------------------------
mkdir "$T/rsyslog"
cat >"$T/rsyslog.conf" <<RSYSLOG
global(workDirectory="$T/rsyslog" maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="$T/log.sock" UseSpecialParser="off"
      ParseHostname="on" RateLimit.Interval="0")
template(name="msgonly" type="string" string="%msg%\n")
template(name="sd" type="string" string="%msgid% %structured-data%\n")
action(type="omfile" file="$T/received.log" template="msgonly")
action(type="omfile" file="$T/received-sd.log" template="sd")
RSYSLOG
rsyslogd -n -f "$T/rsyslog.conf" -i "$T/rsyslogd.pid" >"$T/rsyslogd.out" 2>&1 &
rsyslog_pid=$!
bg_track "$rsyslog_pid"
wait_for 10 test -S "$T/log.sock" || { cat "$T/rsyslogd.out"; fail "rsyslogd did not create its socket"; }

forward_conf syslog "$T/log.sock"
stintd_start
agent_add alpha "$(id -u)"
t=$(some_history alpha) || exit 1
stintd_stop
n=$(wc -l <"$AUDIT_LOG")
wait_for 10 lines_at_least "$T/received.log" "$n" ||
	fail "rsyslog received $(cat "$T/received.log" 2>/dev/null | wc -l) of $n records"
cmp "$AUDIT_LOG" "$T/received.log" || fail "the records rsyslog received differ from the file"
"$STINT" audit verify "$T/received.log" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "the chain rebuilt from rsyslog does not verify"; }
cat "$T/out"
# Structured data: seq, event, agent, task, hash of a sign-allowed record.
line=$(grep -m1 '"event":"sign-allowed"' "$AUDIT_LOG")
seq=$(json_get seq <<<"$line")
hash=$(json_get hash <<<"$line")
grep -q "^sign-allowed \[stint@32473 seq=\"$seq\" event=\"sign-allowed\" agent=\"alpha\" task=\"$t\" decision=\"allow\" hash=\"$hash\"\]" \
	"$T/received-sd.log" || { head -5 "$T/received-sd.log"; fail "structured data of record $seq"; }

# rsyslogd gone: signing goes on, the copies are dropped and counted.
kill "$rsyslog_pid"
wait "$rsyslog_pid" 2>/dev/null
rm -f "$T/log.sock"
stintd_start
some_history alpha >/dev/null || exit 1
stintd_stop
grep -q "audit forward to $T/log.sock: .*dropping copies" "$STINTD_LOG" ||
	{ cat "$STINTD_LOG"; fail "dropped copies not reported"; }
grep -q "record(s) were not forwarded" "$STINTD_LOG" || fail "dropped count not reported at stop"

# --- journal, native protocol, to a fake journald --------------------------
# mode "read" decodes each datagram into one JSON object per line; mode
# "stall" binds and never reads (a full queue: sends get EAGAIN).
cat >"$T/journal.py" <<'PY'
import json, socket, struct, sys, time
path, mode, out = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
if mode == "stall":
    while True:
        time.sleep(60)
f = open(out, "a", buffering=1)
while True:
    d = s.recv(1 << 20)
    fields, i = {}, 0
    while i < len(d):
        nl = d.index(b"\n", i)
        head = d[i:nl]
        if b"=" in head:
            k, v = head.split(b"=", 1)
            i = nl + 1
        else:  # NAME\n, 64-bit LE length, value, \n
            k = head
            (n,) = struct.unpack("<Q", d[nl + 1:nl + 9])
            v = d[nl + 9:nl + 9 + n]
            assert d[nl + 9 + n:nl + 10 + n] == b"\n", "binary field not ended by \\n"
            i = nl + 10 + n
        fields[k.decode()] = v.decode()
    f.write(json.dumps(fields) + "\n")
PY
"$PYTHON" "$T/journal.py" "$T/journal.sock" read "$T/journal.jsonl" &
bg_track $!
wait_for 10 test -S "$T/journal.sock" || fail "fake journal did not start"
forward_conf journal "$T/journal.sock"
before=$(wc -l <"$AUDIT_LOG")
stintd_start
t=$(some_history alpha) || exit 1
stintd_stop
n=$(($(wc -l <"$AUDIT_LOG") - before))
wait_for 10 lines_at_least "$T/journal.jsonl" "$n" ||
	fail "the fake journal received $(cat "$T/journal.jsonl" 2>/dev/null | wc -l) of $n records"
"$PYTHON" - "$AUDIT_LOG" "$T/journal.jsonl" "$before" "$t" <<'PY' || fail "journal fields"
import json, sys
log, got, before, task = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lines = open(log).read().splitlines()[before:]
recs = [json.loads(l) for l in open(got)]
assert len(recs) == len(lines), (len(recs), len(lines))
for line, r in zip(lines, recs):
    rec = json.loads(line)
    assert r["MESSAGE"] == line, "MESSAGE is not the record"
    assert r["STINT_SEQ"] == str(rec["seq"]) and r["STINT_EVENT"] == rec["event"]
    assert r["STINT_HASH"] == rec["hash"]
    assert r["SYSLOG_IDENTIFIER"] == "stintd" and r["PRIORITY"] in ("5", "6")
    for k in ("agent", "task", "decision"):
        assert r.get("STINT_" + k.upper()) == rec.get(k), (k, r, rec)
signs = [r for r in recs if r["STINT_EVENT"] == "sign-allowed"]
assert len(signs) == 3, len(signs)
assert all(r["STINT_TASK"] == task and r["STINT_AGENT"] == "alpha" for r in signs)
print("journal: %d records with their fields" % len(recs))
PY

# A receiver that never reads: its queue fills, sends would block; they
# are dropped instead and every signature still succeeds.
"$PYTHON" "$T/journal.py" "$T/stall.sock" stall /dev/null &
bg_track $!
wait_for 10 test -S "$T/stall.sock" || fail "stalled receiver did not start"
forward_conf journal "$T/stall.sock"
stintd_start
t=$(task_start alpha --ttl 10m) || exit 1
start=$(date +%s)
p11client --token alpha --label "$t" --mech ecdsa --in "$T/digest" --count 1500 >/dev/null 2>&1 ||
	fail "signing failed while the forward receiver was stalled"
note "1500 signatures with a stalled receiver: $(($(date +%s) - start)) s"
[ "$(audit_count "$t" sign-allowed)" -eq 1500 ] || fail "records missing from the file"
stintd_stop
grep -q "audit forward to $T/stall.sock: Resource temporarily unavailable; dropping" "$STINTD_LOG" ||
	{ cat "$STINTD_LOG"; fail "EAGAIN drops not reported"; }
"$STINT" audit verify "$AUDIT_LOG" >/dev/null 2>&1 || fail "the file's chain broke"
echo "PASS: $TEST_NAME"
