#!/bin/bash
# Audit floods are bounded (issue 8, item 3): two unprivileged processes
# (uids 65530 and 65531, which map to no agent) send refused SIGNs as fast
# as they can for 5 s while the task's agent signs. The log may grow by
# the agent's sign-allowed records (each still has its own) plus less than
# 16 KiB (refusal_interval = 2s); the refusals are counted in sign-refused-aggregate records whose
# counts, with the refusals written on their own, add up to what was sent;
# the chain verifies. Before the fix every refusal had its own record
# (tens of MB per 10 s).
. "$(dirname "$0")/lib.sh"
[ -x "$PYTHON" ] || skip "python3 not installed"
need_root
need_cmd setpriv
stint_tmpdir
backend_init
stintd_config
# [audit] is the config's last section: aggregates every 2 s.
echo "refusal_interval = 2s" >>"$STINTD_CONF"
stintd_start
p11_env
wire_py
chmod 0644 "$T/wire.py"
AGENT_UID=4242
agent_add worker "$AGENT_UID"
id=$(task_start worker --ttl 10m) || exit 1
id2=$(task_start worker --ttl 10m) || exit 1
mkdir -m 1777 "$T/out"

# Sends SIGNs on one connection until $3 exists; prints the number of
# replies of each kind: "<signed> <refused>". Distinct digests.
cat >"$T/flood.py" <<'PY'
import os, sys, time
sys.path.insert(0, os.path.dirname(sys.argv[0]))
import wire
path, task, stop = sys.argv[1], sys.argv[2], sys.argv[3]
limit = int(sys.argv[4]) if len(sys.argv) > 4 else 0
s = wire.connect(path, 30)
ok = refused = 0
while not os.path.exists(stop) and (limit == 0 or ok + refused < limit):
    s.sendall(wire.frame({1: 3, 6: task, 7: 0x1041, 8: os.urandom(32)}))
    rep = wire.read_reply(s)
    if rep is None:
        raise SystemExit("closed")
    if rep.get(2) == 0:
        ok += 1
    else:
        refused += 1
print(ok, refused)
PY
chmod 0644 "$T/flood.py"

size0=$(stat -c %s "$AUDIT_LOG")
pids=()
for u in 65530 65531; do
	setpriv --reuid="$u" --regid="$u" --clear-groups -- \
		"$PYTHON" "$T/flood.py" "$STINT_SOCKET" "$id" "$T/stop" >"$T/out/$u" 2>&1 &
	pids+=("$!")
done
bg_track "${pids[@]}"
# The agent signs 300 times during the flood.
setpriv --reuid="$AGENT_UID" --regid="$AGENT_UID" --clear-groups -- \
	"$PYTHON" "$T/flood.py" "$STINT_SOCKET" "$id" "$T/stop" 300 >"$T/out/agent" 2>&1 ||
	{ cat "$T/out/agent"; fail "the agent's signer failed"; }
# Revocation during the flood.
t0=$(date +%s%N)
timeout 30 "$STINT" --socket "$T/run/admin.sock" task end "$id2" >"$T/end.out" 2>&1 ||
	{ cat "$T/end.out"; fail "stint task end failed during the flood"; }
note "stint task end took $((($(date +%s%N) - t0) / 1000000)) ms during the flood"
out=$(setpriv --reuid="$AGENT_UID" --regid="$AGENT_UID" --clear-groups -- \
	"$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$id2" 2>&1)
[[ $out == status=5* ]] || fail "SIGN after task end during the flood: $out"
sleep 4
touch "$T/stop"
for p in "${pids[@]}"; do
	wait "$p" || { cat "$T"/out/*; fail "a flooding process failed"; }
done
read -r agent_ok agent_refused <"$T/out/agent"
sent=0
for u in 65530 65531; do
	read -r ok refused <"$T/out/$u"
	[ "$ok" -eq 0 ] || fail "uid $u got $ok signatures"
	sent=$((sent + refused))
done
note "flood: $sent refused SIGNs sent by two uids; the agent signed $agent_ok times"
[ "$agent_ok" -eq 300 ] || fail "the agent signed $agent_ok of 300 times during the flood"
[ "$sent" -gt 100 ] || fail "only $sent refusals sent: no flood to test"

# Aggregates are written when their interval ends, not only at stop.
aggregates()
{
	[ "$(grep -c '"event":"sign-refused-aggregate"' "$AUDIT_LOG")" -ge 2 ]
}
wait_for 10 aggregates || fail "no sign-refused-aggregate record 10 s after the flood"
# At stop the open aggregates are written.
stintd_stop
"$PYTHON" - "$AUDIT_LOG" "$size0" "$id" "$sent" "$agent_ok" <<'PY' || fail "audit flood bounds (above)"
import json, sys
path, size0, task, sent, agent_ok = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
data = open(path, "rb").read()
grown = len(data) - size0
allowed_bytes = own = counted = allowed = aggs = 0
for line in data[size0:].splitlines(keepends=True):
    r = json.loads(line)
    uid = r.get("peer", {}).get("uid")
    if r["event"] == "sign-allowed" and r.get("task") == task:
        allowed += 1
        allowed_bytes += len(line)
    elif uid in (65530, 65531) and r["event"] == "sign-refused":
        own += 1
    elif uid in (65530, 65531) and r["event"] == "sign-refused-aggregate":
        aggs += 1
        counted += int(r["detail"].split()[0].split("=")[1])
other = grown - allowed_bytes
print("# log grew %d bytes: %d for %d sign-allowed records, %d for the rest; "
      "flood: %d own sign-refused records + %d counted in %d aggregates (sent %d)"
      % (grown, allowed_bytes, allowed, other, own, counted, aggs, sent))
bad = []
if allowed != agent_ok:
    bad.append("%d sign-allowed records for %d signatures" % (allowed, agent_ok))
if other >= 16384:
    bad.append("the flood grew the log by %d bytes (bound 16384)" % other)
if counted <= 0 or own + counted != sent:
    bad.append("refusals recorded %d + %d, sent %d" % (own, counted, sent))
if bad:
    print("\n".join("BAD: " + b for b in bad))
    sys.exit(1)
PY
stint audit verify "$AUDIT_LOG" >/dev/null || fail "stint audit verify failed after the flood"
