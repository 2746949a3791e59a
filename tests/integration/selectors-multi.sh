#!/bin/bash
# A process that matches several agents sees one token per agent (issue 12
# §2). Real processes, one uid: agent "ant" is uid-only, agent "bee" is the
# same uid plus --exe (a copy of pkcs11-tool), so that copy matches both:
#  - pkcs11-tool --list-slots shows two tokens, labelled ant and bee;
#  - each token lists its own agent's task only, and each signs through
#    its own slot; a task of ant cannot be signed through bee's slot;
#  - a process that matches ant only (p11client) still sees one token,
#    slot 1, labelled ant;
#  - raw wire: HELLO of a one-agent process carries no key 150; a SIGN or
#    LIST naming (key 151) an agent the process does not match gets status
#    3 (NO_AGENT); naming its own agent works;
#  - exec on a kept connection, requests naming agent "cow" (an --exe agent
#    on a copy of python): the new program must match the named agent
#    (refused, status 11, when it does not), and the connection must have
#    matched it when opened (a process that matched ant only and execs into
#    cow's program is refused); exec'ing cow's program again is served.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv pkcs11-tool
[ -x "$PYTHON" ] || skip "python3 not installed"
stint_tmpdir
stint_setup
need_p11client
wire_py
chmod 0644 "$T/wire.py"

U=$(free_uid 63001)
note "uid $U"
mkdir -m 0755 "$T/bin"
cp "$STINT_MODULE" "$T/bin/"
MOD=$T/bin/$(basename "$STINT_MODULE")
cp "$(command -v pkcs11-tool)" "$T/bin/tool"
cp "$P11CLIENT" "$T/bin/p11client"
chmod 0755 "$T/bin"/*
head -c 32 /dev/urandom >"$T/digest"
chmod 0644 "$T/digest"
mkdir -m 0700 "$T/sigs"
chown "$U" "$T/sigs"

tool() { as_uid "$U" "${FOREIGN[@]}" "$T/bin/tool" --module "$MOD" "$@"; }

stint agent add ant --uid "$U" >/dev/null 2>&1 || fail "agent add ant"
stint agent add bee --uid "$U" --exe "$T/bin/tool" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "agent add bee"; }
grep -q "agent 'bee' can match the same processes as agent 'ant': a process that matches both sees a token for each" "$T/out" ||
	{ cat "$T/out"; fail "agent add bee does not warn of the overlap with ant"; }
ta=$(task_start ant --ttl 10m) || exit 1
tb=$(task_start bee --ttl 10m) || exit 1
note "ant: $ta bee: $tb"

# --- two tokens, labelled by agent -----------------------------------------
tool --list-slots >"$T/slots" 2>&1 || { cat "$T/slots"; fail "--list-slots"; }
grep -Eq 'token label *: *ant$' "$T/slots" || { cat "$T/slots"; fail "no token labelled ant"; }
grep -Eq 'token label *: *bee$' "$T/slots" || { cat "$T/slots"; fail "no token labelled bee"; }
[ "$(grep -c 'token label' "$T/slots")" = 2 ] || { cat "$T/slots"; fail "not exactly two tokens"; }
# The lowest name is seen first, so it keeps slot 1 as for one agent.
slot_of()
{
	awk -v want="$1" '/^Slot [0-9]+ \(0x/ { s = $3 } /token label/ && $NF == want { print s; exit }' "$T/slots"
}
[ "$(slot_of ant)" = "(0x1):" ] || { cat "$T/slots"; fail "ant's token is not slot 1"; }
[ "$(slot_of bee)" = "(0x2):" ] || { cat "$T/slots"; fail "bee's token is not slot 2"; }

# --- each token lists its own task ------------------------------------------
tool --token-label ant --list-objects >"$T/oa" 2>&1 || { cat "$T/oa"; fail "list ant's objects"; }
tool --token-label bee --list-objects >"$T/ob" 2>&1 || { cat "$T/ob"; fail "list bee's objects"; }
grep -Eq "label: *$ta\$" "$T/oa" || { cat "$T/oa"; fail "ant's token does not list ant's task"; }
grep -Eq "label: *$tb\$" "$T/oa" && { cat "$T/oa"; fail "ant's token lists bee's task"; }
grep -Eq "label: *$tb\$" "$T/ob" || { cat "$T/ob"; fail "bee's token does not list bee's task"; }
grep -Eq "label: *$ta\$" "$T/ob" && { cat "$T/ob"; fail "bee's token lists ant's task"; }

# --- each signs through its own slot -----------------------------------------
sign_in()
{
	rm -f "$T/sigs/sig"
	# pkcs11-tool --sign picks the key by CKA_ID (the task id bytes).
	tool --token-label "$1" --sign --mechanism ECDSA --id "$(hex_of "$2")" \
		--input-file "$T/digest" --output-file "$T/sigs/sig" >"$T/out" 2>&1 &&
		[ -s "$T/sigs/sig" ]
}
sign_in ant "$ta" || { cat "$T/out"; fail "cannot sign with ant's task through ant's slot"; }
sign_in bee "$tb" || { cat "$T/out"; fail "cannot sign with bee's task through bee's slot"; }
! sign_in bee "$ta" || { cat "$T/out"; fail "signed with ant's task through bee's slot"; }
! sign_in ant "$tb" || fail "signed with bee's task through ant's slot"
# The audit names the agent each signature was made as.
"$PYTHON" - "$AUDIT_LOG" "$ta" "$tb" <<'EOF' || fail "audit does not name ant and bee for their signatures"
import json, sys
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "sign-allowed":
        seen[r.get("task")] = r.get("agent")
sys.exit(0 if seen.get(sys.argv[2]) == "ant" and seen.get(sys.argv[3]) == "bee" else 1)
EOF

# --- a process that matches ant only: one token, slot 1 ---------------------
as_uid "$U" "$T/bin/p11client" --module "$MOD" --list >"$T/lp" 2>&1 ||
	{ cat "$T/lp"; fail "p11client --list"; }
grep -q '^slots with a token: 1$' "$T/lp" || { cat "$T/lp"; fail "a one-agent process does not see exactly one token"; }
grep -q '^slot 1: token "ant"' "$T/lp" || { cat "$T/lp"; fail "a one-agent process's token is not slot 1 labelled ant"; }
grep -q "$tb" "$T/lp" && { cat "$T/lp"; fail "a process that does not match bee sees bee's task"; }

# --- raw wire ------------------------------------------------------------------
cat >"$T/multi.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import wire
s = wire.connect(sys.argv[2])
cmd = sys.argv[3]
if cmd == "hello":
    s.sendall(wire.frame({1: 1, 4: 1}))
    rep = wire.read_reply(s)
    print("status=%d agent=%s names=%s" % (rep.get(2, -1), rep.get(5, ""), ",".join(rep.get(150, []))))
elif cmd == "sign":
    s.sendall(wire.frame({1: 3, 6: sys.argv[4], 7: 0x1041, 8: b"x" * 32, 151: sys.argv[5]}))
    wire.show(wire.read_reply(s))
elif cmd == "list":
    s.sendall(wire.frame({1: 2, 151: sys.argv[4]}))
    wire.show(wire.read_reply(s))
EOF
chmod 0644 "$T/multi.py"
raw() { as_uid "$U" "$PYTHON" "$T/multi.py" "$T" "$STINT_SOCKET" "$@"; }
raw hello >"$T/out" 2>&1
grep -q '^status=0 agent=ant names=$' "$T/out" || { cat "$T/out"; fail "one-agent HELLO is not plain (agent ant, no key 150)"; }
raw sign "$tb" bee >"$T/out" 2>&1
grep -q '^status=3 ' "$T/out" || { cat "$T/out"; fail "raw SIGN naming bee from a process that does not match bee: expected status 3"; }
grep -q 'does not match the agent the request names' "$T/out" ||
	{ cat "$T/out"; fail "the NO_AGENT refusal does not say the named agent does not match"; }
raw sign "$tb" nosuch >"$T/out" 2>&1
grep -q '^status=3 ' "$T/out" || { cat "$T/out"; fail "raw SIGN naming an unknown agent: expected status 3"; }
raw list bee >"$T/out" 2>&1
grep -q '^status=3 ' "$T/out" || { cat "$T/out"; fail "raw LIST naming bee: expected status 3"; }
raw sign "$ta" ant >"$T/out" 2>&1
grep -q '^status=0 ' "$T/out" || { cat "$T/out"; fail "raw SIGN naming its own agent ant was refused"; }
# --- exec on a kept connection, requests naming an agent --------------------
PY=$(readlink -f "$PYTHON")
cp "$PY" "$T/bin/py2"
chmod 0755 "$T/bin/py2"
"$T/bin/py2" -c pass || skip "a copy of python does not run from $T/bin"
stint agent add cow --uid "$U" --exe "$T/bin/py2" >/dev/null 2>&1 || fail "agent add cow"
tc=$(task_start cow --ttl 10m) || exit 1
# mclient.py TASK AS NEXT SOCK [FD]: SIGN as AS on a fresh connection, then
# exec NEXT keeping it; NEXT signs as AS again on it.
cat >"$T/mclient.py" <<'EOF'
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire
task, as_agent, nxt, sock = sys.argv[1:5]
req = {1: 3, 6: task, 7: 0x1041, 8: b"x" * 32, 151: as_agent}
if len(sys.argv) > 5:
    import socket
    s = socket.socket(fileno=int(sys.argv[5]))
    s.settimeout(10)
    s.sendall(wire.frame(req))
    sys.stdout.write("after: ")
    wire.show(wire.read_reply(s))
    sys.exit(0)
s = wire.connect(sock)
s.sendall(wire.frame(req))
sys.stdout.write("before: ")
wire.show(wire.read_reply(s))
sys.stdout.flush()
os.set_inheritable(s.fileno(), True)
os.execv(nxt, [nxt, os.path.abspath(__file__), task, as_agent, nxt, sock, str(s.fileno())])
EOF
chmod 0644 "$T/mclient.py"
mrun() { as_uid "$U" "$1" "$T/mclient.py" "$tc" cow "$2" "$STINT_SOCKET"; }
mrun "$T/bin/py2" "$PY" >"$T/e1" 2>&1
grep -q '^before: status=0 ' "$T/e1" || { cat "$T/e1"; fail "cow's program cannot sign as cow"; }
grep -q '^after: status=11 ' "$T/e1" ||
	{ cat "$T/e1"; fail "after exec into a program that does not match cow, a SIGN naming cow was not refused"; }
mrun "$PY" "$T/bin/py2" >"$T/e2" 2>&1
grep -q '^before: status=3 ' "$T/e2" || { cat "$T/e2"; fail "a process matching ant only signed as cow"; }
grep -q '^after: status=11 ' "$T/e2" ||
	{ cat "$T/e2"; fail "a connection opened as ant only signed as cow after exec'ing cow's program"; }
mrun "$T/bin/py2" "$T/bin/py2" >"$T/e3" 2>&1
grep -q '^after: status=0 ' "$T/e3" || { cat "$T/e3"; fail "exec'ing cow's program again was refused"; }
note "ok"
