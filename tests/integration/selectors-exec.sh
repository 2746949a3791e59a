#!/bin/bash
# Exec after connect, same uid (issue 12 §1, §7): a raw client that keeps its
# agent.sock connection across exec() (FD_CLOEXEC cleared) without changing
# uid keeps its pid and credentials, so the per-request sender check passes;
# its requests must be judged on the executable it runs now.
#  a. agent pinned by --exe-sha256 to copy A of python: A connects and signs
#     (allowed), then execs the system python (other bytes) keeping the
#     connection, which sends SIGN on it: refused (status 11), audited as
#     request-refused naming the new executable, matched ["uid"];
#  b. the same, exec'ing A itself again: still served;
#  c. an agent by uid alone: exec'ing another program still matches, and
#     the sign-allowed record names the new executable;
#  d. the cost of the per-request check: stintd's CPU per SIGN over one
#     connection (printed, never asserted).
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv sha256sum
[ -x "$PYTHON" ] || skip "python3 not installed"
stint_tmpdir
stint_setup
wire_py
chmod 0644 "$T/wire.py"

U=$(free_uid 62101)
U2=$(free_uid $((U + 1)))

PY=$(readlink -f "$PYTHON")
mkdir -m 0755 "$T/bin" "$T/bin/a"
A=$T/bin/a/python3
# Copy A: python with a trailer, so its SHA-256 differs from the system's.
{ cat "$PY"; printf 'stint-selectors-exec\n'; } >"$A"
chmod 0755 "$A"
"$A" -c 'pass' || skip "a copy of python does not run from $T/bin/a"
sum_a=$(sha256sum "$A" | cut -d' ' -f1)

stint agent add pinned --uid "$U" --exe-sha256 "$sum_a" >/dev/null 2>&1 || fail "agent add --exe-sha256"
stint agent add loose --uid "$U2" >/dev/null 2>&1 || fail "agent add loose"
tp=$(task_start pinned --ttl 10m) || exit 1
tl=$(task_start loose --ttl 10m) || exit 1

# client.py TASK NEXT: signs on a fresh connection, then execs NEXT (a
# python) with the connection kept open; NEXT signs again on it and prints
# both answers and its pid.
cat >"$T/client.py" <<'EOF'
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire
task, nxt, sock = sys.argv[1], sys.argv[2], sys.argv[3]
if len(sys.argv) > 4:
    fd = int(sys.argv[4])
    import socket
    s = socket.socket(fileno=fd)
    s.settimeout(10)
    s.sendall(wire.frame({1: 3, 6: task, 7: 0x1041, 8: b"x" * 32}))
    print("after exec pid=%d exe=%s" % (os.getpid(), os.path.realpath("/proc/self/exe")))
    sys.stdout.write("after: ")
    wire.show(wire.read_reply(s))
    sys.exit(0)
s = wire.connect(sock)
s.sendall(wire.frame({1: 3, 6: task, 7: 0x1041, 8: b"x" * 32}))
sys.stdout.write("before: ")
wire.show(wire.read_reply(s))
sys.stdout.flush()
os.set_inheritable(s.fileno(), True)
os.execv(nxt, [nxt, os.path.abspath(__file__), task, nxt, sock, str(s.fileno())])
EOF
chmod 0644 "$T/client.py"

# The last record of event $1 with task $2 (or "" for any), as JSON.
last_rec()
{
	"$PYTHON" - "$AUDIT_LOG" "$1" "$2" <<'EOF'
import json, sys
rec = None
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == sys.argv[2] and (not sys.argv[3] or r.get("task") == sys.argv[3] or r.get("agent") == sys.argv[3]):
        rec = r
print(json.dumps(rec))
EOF
}

# --- a. exec into another executable: refused --------------------------------
as_uid "$U" "$A" "$T/client.py" "$tp" "$PY" "$STINT_SOCKET" >"$T/a" 2>&1
cat "$T/a"
grep -q '^before: status=0 ' "$T/a" || fail "a: copy A cannot sign with its agent's task"
grep -q '^after: status=11 ' "$T/a" ||
	fail "a: after exec into $PY (another SHA-256) the SIGN on the kept connection was not refused"
grep -q "^after: status=11 error=.*exec'd" "$T/a" || fail "a: the refusal does not say the process exec'd"
last_rec request-refused pinned >"$T/rec"
[ "$(json_get peer.exe <"$T/rec")" = "$PY" ] ||
	{ cat "$T/rec"; fail "a: request-refused does not name the new executable"; }
json_get reason <"$T/rec" | grep -q 'exec' || { cat "$T/rec"; fail "a: request-refused reason"; }
json_get detail <"$T/rec" | grep -q "$A" || { cat "$T/rec"; fail "a: request-refused detail does not name the old executable"; }
[ "$(json_get peer.matched <"$T/rec")" = "['uid']" ] ||
	{ cat "$T/rec"; fail "a: request-refused matched should be uid only"; }

# --- b. exec into the same executable: still served --------------------------
as_uid "$U" "$A" "$T/client.py" "$tp" "$A" "$STINT_SOCKET" >"$T/b" 2>&1
grep -q '^after: status=0 ' "$T/b" || { cat "$T/b"; fail "b: exec of the same executable was refused"; }

# --- c. an agent by uid alone: another program still matches ------------------
as_uid "$U2" "$A" "$T/client.py" "$tl" "$PY" "$STINT_SOCKET" >"$T/c" 2>&1
grep -q '^after: status=0 ' "$T/c" || { cat "$T/c"; fail "c: a uid-only agent's exec'd program was refused"; }
last_rec sign-allowed "$tl" >"$T/rec"
[ "$(json_get peer.exe <"$T/rec")" = "$PY" ] ||
	{ cat "$T/rec"; fail "c: the SIGN after exec is audited with the old executable"; }

# --- d. the cost per request (printed) ----------------------------------------
cat >"$T/many.py" <<'EOF'
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire
task, sock, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = wire.connect(sock)
req = wire.frame({1: 3, 6: task, 7: 0x1041, 8: b"x" * 32})
for _ in range(n):
    s.sendall(req)
    r = wire.read_reply(s)
    if r is None or r.get(2, 0) != 0:
        sys.exit("SIGN failed: %r" % (r,))
EOF
chmod 0644 "$T/many.py"
stintd_cpu()
{
	awk '{print $14 + $15}' "/proc/$STINTD_PID/stat"
}
N=${SELECTORS_EXEC_N:-3000}
as_uid "$U" "$A" "$T/many.py" "$tp" "$STINT_SOCKET" 200 || fail "d: warm-up"
t0=$(stintd_cpu)
as_uid "$U" "$A" "$T/many.py" "$tp" "$STINT_SOCKET" "$N" || fail "d: $N SIGNs on one connection"
t1=$(stintd_cpu)
hz=$(getconf CLK_TCK)
note "stintd CPU per SIGN over one connection: $(((t1 - t0) * 1000000 / hz / N)) µs ($N SIGNs)"

stint audit verify "$AUDIT_LOG" >"$T/out" 2>&1 || { cat "$T/out"; fail "audit verify"; }
exit 0
