#!/bin/bash
# Operators (issue 12 §5): an orchestrator's uid, registered with
# `stint operator add ci --uid U --agents A`, uses admin.sock without root
# to start, list, show and end tasks of its own agents only. It is refused
# (with the reason, audited as operator-denied) for another agent's tasks
# and for every admin-only op; its --max-ttl caps the tasks it starts. A
# uid that is no operator is refused at accept and cannot hold admin.sock
# connections; once the operator is removed its uid is refused again, on
# new connections and on one it still holds. Root keeps everything.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
stint_tmpdir
# stint run by the operator: runs under a test cgroup tree where one is
# writable, else bound to the command's pid (a parent that cannot exist).
RUN_PARENT=/cgroup.procs/x
CG2=$(findmnt -n -t cgroup2 -o TARGET 2>/dev/null | head -n 1)
if [ -n "$CG2" ] && [ -w "$CG2" ]; then
	cg_test_tree stint-test-operators
	RUN_PARENT=$CGTEST
fi
backend_init
stintd_config
printf '\n[run]\ncgroup_parent = %s\n' "$RUN_PARENT" >>"$STINTD_CONF"
stintd_start
p11_env
wire_py
chmod 0644 "$T/wire.py"

free_uids()
{
	local u n=0
	for u in $(seq 62301 62400); do
		getent passwd "$u" >/dev/null || pgrep -U "$u" >/dev/null && continue
		echo "$u"
		n=$((n + 1))
		[ "$n" -ge "$1" ] && return
	done
}
read -r OP AGENT_A AGENT_B STRANGER OP2 AGENT_C <<<"$(free_uids 6 | tr '\n' ' ')"
[ -n "$AGENT_C" ] || skip "no six free uids in 62301-62400"
mkdir -m 0755 "$T/bin"
cp "$STINT" "$T/bin/"
chmod 0755 "$T/bin/stint"
# Run the CLI as a uid, on the test's admin socket.
as_stint()
{
	local uid=$1

	shift
	as_uid "$uid" env -u STINT_SOCKET STINT_SOCKET="$T/run/agent.sock" \
		"$T/bin/stint" --socket "$T/run/admin.sock" "$@"
}
op() { as_stint "$OP" "$@"; }
denied_count() { grep -c '"event":"operator-denied"' "$AUDIT_LOG" || true; }
# expect_refused WHAT TEXT CMD...: CMD exits 1 and says TEXT.
expect_refused()
{
	local what=$1 text=$2

	shift 2
	if "$@" >"$T/out" 2>&1; then
		cat "$T/out" >&2
		fail "$what: allowed"
	fi
	grep -qF -- "$text" "$T/out" ||
		{ cat "$T/out" >&2; fail "$what: refused without saying '$text'"; }
}

agent_add ci-agent "$AGENT_A"
agent_add billing "$AGENT_B"

# --- registration: strict, admin-only ----------------------------------------
expect_refused "operator add with a bad name" "bad operator name" \
	stint operator add 'c i' --uid "$OP" --agents ci-agent
expect_refused "operator add for root" "uid 0" \
	stint operator add ci --uid 0 --agents ci-agent
expect_refused "operator add for an unknown agent" "no agent named 'nope'" \
	stint operator add ci --uid "$OP" --agents ci-agent,nope
expect_refused "operator add with a bad agent list" "named twice" \
	stint operator add ci --uid "$OP" --agents ci-agent,ci-agent
expect_refused "operator add without agents" "--agents is required" \
	stint operator add ci --uid "$OP"
stint operator add ci --uid "$OP" --agents ci-agent --max-ttl 10m >/dev/null ||
	fail "stint operator add ci"
expect_refused "a second operator on the same uid" "already operator 'ci'" \
	stint operator add ci2 --uid "$OP" --agents billing
stint operator list --json >"$T/ops.json" || fail "operator list --json"
"$PYTHON" - "$T/ops.json" "$OP" <<'PY' || fail "operator list --json is wrong"
import json, sys
ops = json.load(open(sys.argv[1]))
assert len(ops) == 1, ops
o = ops[0]
assert o["name"] == "ci" and o["uid"] == int(sys.argv[2]), o
assert o["agents"] == ["ci-agent"] and o["max_ttl"] == 600, o
PY
stint operator list | grep -q "^ci .*ci-agent$" || fail "operator list lacks ci"
grep -q '"event":"operator-add"' "$AUDIT_LOG" || fail "operator add was not audited"
note "operator ci (uid $OP) registered for ci-agent, max TTL 10m"

# --- the operator acts for its own agent -------------------------------------
id=$(op task start --agent ci-agent --ttl 5m --intent "ci build 7" -q 2>"$T/err") ||
	{ cat "$T/err" >&2; fail "operator: task start for its own agent"; }
[ "$(stint task show "$id" --json | json_get state)" = live ] || fail "the operator's task is not live"
op task list >"$T/list" 2>&1 || { cat "$T/list" >&2; fail "operator: task list"; }
grep -q "$id" "$T/list" || fail "operator's task list lacks its task"
op task list --agent ci-agent >/dev/null 2>&1 || fail "operator: task list --agent ci-agent"
op task show "$id" >"$T/show" 2>&1 || { cat "$T/show" >&2; fail "operator: task show of its own task"; }
grep -q "ci build 7" "$T/show" || fail "operator's task show lacks its task's intent"
# --max-ttl: no --ttl gets at most 10m; more is refused.
id2=$(op task start --agent ci-agent -q) || fail "operator: task start without --ttl"
stint task show "$id2" --json >"$T/t2.json"
"$PYTHON" - "$T/t2.json" <<'PY' || fail "a task the operator started without --ttl outlives its max TTL"
import json, sys, datetime
t = json.load(open(sys.argv[1]))
def ts(v):
    if isinstance(v, int):
        return v
    return int(datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp())
ttl = ts(t["not_after"]) - ts(t["created"])
assert 0 < ttl <= 600, ttl
PY
expect_refused "operator: --ttl above its max TTL" "above operator 'ci''s max TTL" \
	op task start --agent ci-agent --ttl 1h
note "operator: task start/list/show for ci-agent; --max-ttl caps the TTL"
# stint run (issue 12 §5): for its own agent, yes; for another, refused
# before the command runs.
op run --agent ci-agent --ttl 5m -- sh -c 'echo "task=$STINT_TASK"' >"$T/oprun" 2>&1 ||
	{ cat "$T/oprun" >&2; fail "operator: stint run for its own agent"; }
rid=$(sed -n 's/^task=//p' "$T/oprun")
[ -n "$rid" ] || { cat "$T/oprun" >&2; fail "operator's stint run: the command got no STINT_TASK"; }
[ "$(stint task show "$rid" --json | json_get agent)" = ci-agent ] || fail "operator's run task is not ci-agent's"
[ "$(stint task show "$rid" --json | json_get state)" = ended ] || fail "operator's run task not ended when stint run returned"
expect_refused "operator: stint run for another agent" \
	"operator 'ci' may not act for agent 'billing'" \
	op run --agent billing -- sh -c 'echo command-ran'
! grep -q command-ran "$T/out" || fail "the refused run's command ran"
note "operator: stint run for ci-agent ($(grep -c . "$T/oprun") lines), refused for billing"

# --- ...and for nothing else -------------------------------------------------
idb=$(task_start billing --ttl 5m --intent "billing secret")
d0=$(denied_count)
expect_refused "operator: task start for another agent" \
	"operator 'ci' may not act for agent 'billing'" op task start --agent billing
expect_refused "operator: task end of another agent's task" \
	"operator 'ci' may not act for agent 'billing'" op task end "$idb"
[ "$(stint task show "$idb" --json | json_get state)" = live ] || fail "the operator ended billing's task"
expect_refused "operator: task list --agent billing" \
	"operator 'ci' may not act for agent 'billing'" op task list --agent billing
op task list --all >"$T/list" 2>&1 || fail "operator: task list --all"
! grep -q "$idb" "$T/list" || fail "operator's task list shows billing's task"
# task show: admin.sock refuses (audited); the CLI then shows only the
# public facts agent.sock gives anyone, never the intent.
op task show "$idb" >"$T/show" 2>&1 || true
! grep -q "billing secret" "$T/show" || fail "operator saw billing's task intent"
grep -q "operator 'ci' may not act for agent 'billing' (task show)" "$AUDIT_LOG" ||
	fail "operator's task show of billing's task was not refused and audited"
expect_refused "operator: agent add" "operator 'ci' may not use AGENT_ADD" \
	op agent add evil --uid "$OP"
expect_refused "operator: agent remove" "operator 'ci' may not use AGENT_REMOVE" \
	op agent remove billing
expect_refused "operator: agent list" "operator 'ci' may not use AGENT_LIST" op agent list
expect_refused "operator: operator add" "operator 'ci' may not use OPERATOR_ADD" \
	op operator add ci3 --uid "$STRANGER" --agents billing
expect_refused "operator: operator list" "operator 'ci' may not use OPERATOR_LIST" \
	op operator list
expect_refused "operator: operator remove" "operator 'ci' may not use OPERATOR_REMOVE" \
	op operator remove ci
expect_refused "operator: kill switch" "operator 'ci' may not use KILL_SWITCH" \
	op kill-switch --confirm
expect_refused "operator: audit tail" "operator 'ci' may not use AUDIT_TAIL" op audit tail
expect_refused "operator: audit rotate" "operator 'ci' may not use AUDIT_ROTATE" op audit rotate
expect_refused "operator: status" "operator 'ci' may not use STATUS" op status
expect_refused "operator: ca csr" "operator 'ci' may not use CA_CSR" op ca csr
expect_refused "operator: task evidence" "operator 'ci' may not use TASK_EVIDENCE" \
	op task evidence "$idb"
# audit verify reads the log itself: the operator cannot read it.
if op audit verify >"$T/out" 2>&1; then fail "operator: audit verify read the audit log"; fi
[ "$(stint agent list --json | "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] ||
	fail "the agents changed"
[ "$(stint operator list --json | "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1 ] ||
	fail "the operators changed"
d1=$(denied_count)
[ $((d1 - d0)) -ge 17 ] || fail "only $((d1 - d0)) operator-denied records for 17 refusals"
"$PYTHON" - "$AUDIT_LOG" "$OP" <<'PY' || fail "operator-denied records lack peer, reason or decision"
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") != "operator-denied":
        continue
    assert r.get("decision") == "deny", r
    assert "operator 'ci'" in r.get("reason", ""), r
    assert str(r["peer"]["uid"]) == sys.argv[2], r
    assert "operator=ci" in r.get("detail", ""), r
    n += 1
assert n >= 17, n
PY
stint audit verify >/dev/null || fail "audit verify after the refusals"
note "operator: refused for billing and every admin-only op ($((d1 - d0)) refusals audited)"

# --- the operator ends its own task ------------------------------------------
op task end "$id" >/dev/null 2>"$T/err" || { cat "$T/err" >&2; fail "operator: task end of its own task"; }
[ "$(stint task show "$id" --json | json_get state)" = ended ] || fail "the operator's task did not end"

# --- a stranger uid gets nothing, and holds nothing ---------------------------
expect_refused "stranger: status" "permission denied" as_stint "$STRANGER" status
expect_refused "stranger: task start" "permission denied" \
	as_stint "$STRANGER" task start --agent ci-agent
expect_refused "stranger: task end" "permission denied" as_stint "$STRANGER" task end "$idb"
as_stint "$STRANGER" task show "$idb" >"$T/show" 2>&1 || { cat "$T/show" >&2; fail "stranger: public task show"; }
! grep -q "billing secret" "$T/show" || fail "the stranger saw billing's intent"
grep -q "refused admin connection from uid $STRANGER" "$STINTD_LOG" ||
	fail "the stranger's admin connections were not logged"
# 300 connections at once: each is answered DENIED and closed by stintd at
# accept, so none is held and root still gets in.
as_uid "$STRANGER" "$PYTHON" - "$T/run/admin.sock" "$T" >"$T/flood" 2>&1 <<'PY' &
import socket, sys, time
sys.path.insert(0, sys.argv[2])
import wire
socks = []
for _ in range(300):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])  # blocking: waits while the backlog is full
    s.settimeout(10)
    socks.append(s)
closed = denied = 0
for s in socks:
    r = wire.read_reply(s)
    if r is not None and r.get(2) == 11:
        denied += 1
    try:
        if s.recv(1) == b"":
            closed += 1
    except OSError:
        closed += 1
print("denied=%d closed=%d" % (denied, closed))
PY
flood=$!
stint status >/dev/null || fail "root: status while a stranger floods admin.sock"
wait "$flood" || { cat "$T/flood" >&2; fail "the stranger's connections were not answered"; }
grep -q "denied=300 closed=300" "$T/flood" || { cat "$T/flood" >&2; fail "a stranger's admin.sock connection was kept open"; }
note "stranger uid $STRANGER: refused at accept, 300 connections answered DENIED and closed"

# --- an operator delegates for its own agents (issue 10 §1) -----------------
# Operator dl serves lead and sub; lead may delegate to sub and to billing.
agent_add dl-lead "$AGENT_C" --delegate-to dl-sub,billing --max-depth 1
agent_add dl-sub "$AGENT_C" --exe /nonexistent/dl-sub
stint operator add dl --uid "$OP2" --agents dl-lead,dl-sub >/dev/null ||
	fail "stint operator add dl"
dl() { as_stint "$OP2" "$@"; }
dparent=$(dl task start --agent dl-lead --ttl 5m --max-signatures 10 -q) ||
	fail "operator dl: task start for dl-lead"
dchild=$(dl task delegate "$dparent" --agent dl-sub --max-sigs 4 --json |
	"$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["id"])') ||
	fail "operator dl: task delegate to its own agent dl-sub"
dl task tree "$dparent" --json | grep -q "$dchild" ||
	fail "operator dl: task tree lacks the child it delegated"
# billing is in dl-lead's delegate-to list, but not dl's agent: refused.
expect_refused "operator: task delegate to another operator's agent" \
	"operator 'dl' may not act for agent 'billing'" \
	dl task delegate "$dparent" --agent billing --max-sigs 1
# ci does not serve dl-lead: it may not delegate from its task.
expect_refused "operator: task delegate from another agent's task" \
	"may not act for" op task delegate "$dparent" --agent dl-sub --max-sigs 1
dl task end "$dparent" >/dev/null || fail "operator dl: task end"
[ "$(stint task show "$dchild" --json | json_get state)" = ended ] ||
	fail "ending the operator's parent task left its child live"
stint operator remove dl >/dev/null || fail "operator remove dl"
stint agent remove dl-sub >/dev/null && stint agent remove dl-lead >/dev/null ||
	fail "agent remove dl-*"
note "operator: delegates for its own agents only; ending the parent ends the child"

# --- restart: operators persist ----------------------------------------------
stintd_stop
stintd_start
op task list >/dev/null 2>&1 || fail "operator refused after a restart"

# --- operator remove: the uid is a stranger again ------------------------------
# A connection the operator holds across its removal is refused too.
as_uid "$OP" "$PYTHON" - "$T/run/admin.sock" "$T" "$T/held.go" >"$T/held" 2>&1 <<'PY' &
import os, socket, sys, time
sys.path.insert(0, sys.argv[2])
import wire
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(wire.frame({1: 21}))  # TASK_LIST while an operator
print("before", wire.read_reply(s).get(2), flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
s.sendall(wire.frame({1: 21}))
r = wire.read_reply(s)
print("after", r.get(2), r.get(3), flush=True)
PY
held=$!
wait_for 10 grep -q "^before 0" "$T/held" || { cat "$T/held" >&2; fail "held operator connection: no TASK_LIST"; }
stint operator remove ci >/dev/null || fail "operator remove ci"
touch "$T/held.go"
wait "$held" || { cat "$T/held" >&2; fail "held connection script failed"; }
grep -q "^after 11 uid $OP is not an operator" "$T/held" ||
	{ cat "$T/held" >&2; fail "a connection held across operator remove still worked"; }
grep -q '"event":"operator-remove"' "$AUDIT_LOG" || fail "operator remove was not audited"
expect_refused "removed operator: task list" "permission denied" op task list
expect_refused "removed operator: task start" "permission denied" \
	op task start --agent ci-agent
expect_refused "operator remove of an unknown name" "no operator named 'ci'" \
	stint operator remove ci
[ "$(stint operator list --json)" = "[]" ] || fail "operator list is not empty"
note "operator removed: its uid is refused again (new and held connections)"

# --- root keeps everything -----------------------------------------------------
stint agent list >/dev/null || fail "root: agent list"
stint task list >/dev/null || fail "root: task list"
stint audit tail -n 3 >/dev/null || fail "root: audit tail"
stint status >/dev/null || fail "root: status"
stint task end "$idb" >/dev/null || fail "root: task end"
stint audit verify >/dev/null || fail "audit verify"
note "root: everything still works"
