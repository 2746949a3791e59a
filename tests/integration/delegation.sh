#!/bin/bash
# Delegation (issue 10): an agent hands a sub-agent a narrower child task
# over agent.sock, and ending the parent ends the whole tree at once.
# - registration: --delegate-to and --max-depth, shown by agent show/list;
# - a table of the attenuation rules, each broken once: refused with its
#   own reason, audited as a task-delegate deny with check=NAME;
# - a sub-agent (another uid) cannot sign with its parent's task nor a
#   sibling's, only with its own;
# - budget: a child's budget is reserved from its parent's, parent and
#   child signing at once never exceed the parent's budget, and what a
#   child leaves unused goes back when it ends;
# - cascade race: four processes sign with a grandchild's key while the
#   root is ended: zero signatures after `task end` returned, keys gone;
# - expiry cascade; an orphan left by a crash is ended at restart and its
#   key destroyed; kill -9 in the middle of ending a tree.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
stint_setup
need_p11client
wire_py
me=$(id -u)
SUB=4301 SIB=4302 GRAND=4303 OTHER=4304
agent_add lead "$me" --delegate-to sub,sib --max-depth 3 --audiences a,b
agent_add sub $SUB --delegate-to grand --max-depth 3 --audiences a,b
agent_add sib $SIB --audiences a
agent_add grand $GRAND --audiences a
agent_add other $OTHER
agent_add shallow 4305 --delegate-to sub --max-depth 1 --gid 4305

# --- registration -----------------------------------------------------------
[ "$(stint agent show lead --json | json_get delegate_to)" = sub,sib ] ||
	fail "agent show does not list delegate_to sub,sib"
[ "$(stint agent show lead --json | json_get max_depth)" = 3 ] ||
	fail "agent show does not list max_depth 3"
[ "$(stint agent show sib --json | json_get max_depth)" = 0 ] ||
	fail "max_depth does not default to 0"
stint agent list --json | grep -q '"delegate_to": "sub,sib"' ||
	fail "agent list --json lacks delegate_to"
if stint agent add bad --uid 4399 --delegate-to 'x y' >"$T/out" 2>&1; then
	fail "agent add accepted a bad --delegate-to"
fi
if stint agent add bad --uid 4399 --max-depth 99 >"$T/out" 2>&1; then
	fail "agent add accepted --max-depth 99"
fi

# delegate PARENT SUB [options]: as the lead (this uid) over agent.sock;
# prints the child id.
delegate()
{
	local parent=$1 agent=$2 out

	shift 2
	out=$(stint delegate --parent "$parent" --agent "$agent" --json "$@") ||
		fail "stint delegate --parent $parent --agent $agent $* failed"
	json_get id <<<"$out"
}

# task-delegate deny records of parent $1 with check=$2
denied()
{
	"$PYTHON" - "$1" "$2" "$AUDIT_LOG" <<'PY'
import json, sys
task, check, path = sys.argv[1:4]
n = 0
for line in open(path, "rb"):
    r = json.loads(line)
    if (r.get("event") == "task-delegate" and r.get("decision") == "deny"
            and r.get("task") == task
            and ("check=%s " % check) in (r.get("detail") or "")):
        n += 1
print(n)
PY
}

# refused CHECK REASON-TEXT PARENT SUB [options]: the rule CHECK refuses.
refused()
{
	local check=$1 why=$2 parent=$3 agent=$4 before

	shift 4
	before=$(denied "$parent" "$check")
	if stint delegate --parent "$parent" --agent "$agent" "$@" >"$T/out" 2>&1; then
		cat "$T/out"
		fail "rule $check: delegation to $agent $* was allowed"
	fi
	grep -q -- "$why" "$T/out" || { cat "$T/out"; fail "rule $check: reason '$why' missing"; }
	[ "$(denied "$parent" "$check")" -eq $((before + 1)) ] ||
		fail "rule $check: refusal not audited with check=$check"
	note "rule $check refused: $(tail -n1 "$T/out")"
}

# --- a first child, and its facts -------------------------------------------
root=$(task_start lead --ttl 30m --max-signatures 100 --audience a)
child=$(delegate "$root" sub --max-sigs 10)
stint task show "$child" --json >"$T/child.json"
[ "$(json_get agent <"$T/child.json")" = sub ] || fail "child is not sub's"
[ "$(json_get audiences <"$T/child.json")" = a ] ||
	fail "child did not get the parent's audiences by default"
stint task tree "$root" --json >"$T/tree.json" || fail "task tree"
"$PYTHON" - "$root" "$child" "$T/tree.json" <<'PY' || fail "task tree is wrong"
import json, sys
root, child, path = sys.argv[1:4]
t = json.load(open(path))
assert [x["id"] for x in t] == [root, child], t
c = t[1]
assert c["parent"] == root and c["root"] == root and c["depth"] == 1, c
assert c["path"] == "lead,sub" and c["reserved"] == 10, c
assert t[0]["depth"] == 0 and t[0]["parent"] is None, t[0]
PY
[ "$(stint task show "$root" --json | json_get signatures_used)" = 10 ] ||
	fail "the child's budget was not reserved from the parent's"
grep '"event":"task-delegate"' "$AUDIT_LOG" | grep -q "child=$child parent=$root root=$root depth=1 path=lead,sub" ||
	fail "no task-delegate record linking child, parent and root"

# --- the attenuation table --------------------------------------------------
refused agent "may not delegate to agent 'other'" "$root" other
sroot=$(task_start shallow --ttl 30m)
schild=$(stint task delegate "$sroot" --agent sub --json | json_get id) ||
	fail "task delegate (admin) failed"
# depth 2 below shallow (max-depth 1): refused, though sub allows 3
if stint task delegate "$schild" --agent grand >"$T/out" 2>&1; then
	fail "rule depth: allowed"
fi
grep -q "depth 2 is above the max-depth 1" "$T/out" || { cat "$T/out"; fail "rule depth: reason"; }
[ "$(denied "$schild" depth)" -eq 1 ] || fail "rule depth: not audited"
refused deadline "after the parent's deadline" "$root" sub --ttl 59m
refused mechanism "not one of the parent task's mechanisms" "$root" sub --mechanisms rsa-pkcs --max-sigs 1
refused audience "audience 'b' is not one of the parent task's audiences" "$root" sub --audience b --max-sigs 1
refused budget "above the parent's remaining budget 90" "$root" sub --max-sigs 91
refused budget "the child needs one too" "$root" sub
refused use "task belongs to another agent" "$child" grand --max-sigs 1

# --- who may sign with what ---------------------------------------------------
sib1=$(delegate "$root" sib --max-sigs 5)
sign_as()
{
	as_uid "$1" "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$2"
}
sign_as $SUB "$child" | grep -q "status=0" || fail "sub cannot sign with its own child task"
sign_as $SUB "$root" | grep -q "status=4" || fail "sub signed with its parent's task"
sign_as $SUB "$sib1" | grep -q "status=4" || fail "sub signed with its sibling's task"
sign_as $SIB "$child" | grep -q "status=4" || fail "sib signed with its sibling's task"
# DELEGATE as another uid with a task that is not its own is refused
if as_uid $SUB "$STINT" --socket "$T/run/admin.sock" delegate --parent "$root" --agent sib --max-sigs 1 >"$T/out" 2>&1; then
	fail "sub delegated from its parent's task"
fi
grep -q "task belongs to another agent" "$T/out" || { cat "$T/out"; fail "sub's DELEGATE of the root: reason"; }
# ... and a sub-agent delegates from its own task without root or admin.sock
gc=$(as_uid $SUB "$STINT" --socket "$T/run/admin.sock" delegate --parent "$child" --agent grand --max-sigs 2 --json | json_get id) ||
	fail "sub could not delegate to grand"
[ "$(stint task show "$gc" --json | json_get agent)" = grand ] || fail "grandchild"

# --- ending a child leaves the parent live and gives its budget back --------
used=$(stint task show "$root" --json | json_get signatures_used)
stint task end "$sib1" >/dev/null || fail "task end sib1"
[ "$(stint task show "$root" --json | json_get state)" = live ] || fail "ending a child ended its parent"
[ "$(stint task show "$root" --json | json_get signatures_used)" = $((used - 5)) ] ||
	fail "the ended child's unused budget did not return to the parent"

# --- ending the root ends the tree --------------------------------------------
stint task end "$root" >/dev/null || fail "task end root"
for t in "$child" "$gc"; do
	[ "$(stint task show "$t" --json | json_get state)" = ended ] || fail "descendant $t still live"
	stint task show "$t" --json | json_get reason | grep -q "ancestor $root ended" ||
		fail "descendant $t: reason does not name the ancestor"
	backend_has_key "$t" && fail "descendant $t: key left in the backend"
	grep '"event":"task-end"' "$AUDIT_LOG" | grep "\"task\":\"$t\"" | grep -q "cascade ancestor=$root root=$root" ||
		fail "no cascade task-end record for $t naming the ancestor"
done
note "tree of 3 ended with its root"
