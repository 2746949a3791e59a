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
# a --delegate-to name that is no agent: added, with a warning
stint agent add typo --uid 4398 --delegate-to sub,nosuch >"$T/out" 2>"$T/err" ||
	{ cat "$T/err"; fail "agent add with an unknown --delegate-to name failed"; }
grep -q "warning: .*--delegate-to names 'nosuch', which is not a registered agent" "$T/err" ||
	{ cat "$T/err"; fail "agent add does not warn about --delegate-to nosuch"; }
grep -q "'sub'" "$T/err" && fail "agent add warns about sub, a registered agent"
stint agent remove typo >/dev/null || fail "agent remove typo failed"

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
stint task show "$child" --cert >"$T/child.pem" || fail "task show --cert of the child"
[ "$(stint verify-peer "$T/child.pem" --json | json_get parent_task)" = "$root" ] ||
	fail "the child's certificate does not name its parent task"
# §5: the child's leaf carries its own agent's SPIFFE ID, not the parent's
[ "$(stint verify-peer "$T/child.pem" --json | json_get spiffe_id)" = "spiffe://test.example/agent/sub" ] ||
	fail "the child's leaf does not carry sub's SPIFFE ID: $(stint verify-peer "$T/child.pem" --json | json_get spiffe_id 2>&1)"
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
refused use "task belongs to another agent" "$child" grand --max-sigs 1
# (an identical repeat of the last refusal would be counted, not recorded:
# refusals on agent.sock are audited at a bounded rate, as refused SIGNs)
refused budget "the child needs one too" "$root" sub

# A flood of refused DELEGATEs from an agent's uid does not flood the log.
before=$(grep -c '"event":"task-delegate"' "$AUDIT_LOG")
for ((k = 0; k < 40; k++)); do
	as_uid $SUB "$STINT" --socket "$T/run/admin.sock" delegate --parent "$root" \
		--agent sib --max-sigs 1 >/dev/null 2>&1 && fail "sub delegated from the root"
done
after=$(grep -c '"event":"task-delegate"' "$AUDIT_LOG")
[ $((after - before)) -le 8 ] || fail "40 refused DELEGATEs wrote $((after - before)) records"
note "40 refused DELEGATEs from one uid: $((after - before)) own record(s), the rest counted"

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
# The issued leaves carry the delegation block (cert_ext.h [1]) and hold
# together with their parents' leaves (verify-peer --parent-cert).
stint task show "$root" --cert >"$T/root.pem" || fail "task show --cert of the root"
stint task show "$gc" --cert >"$T/gc.pem" || fail "task show --cert of the grandchild"
stint verify-peer "$T/gc.pem" --json >"$T/gc.json" || fail "verify-peer of the grandchild"
"$PYTHON" - "$T/gc.json" "$root" "$child" "$(openssl x509 -in "$T/child.pem" -outform DER | sha256sum | cut -d' ' -f1)" <<'PY' ||
import json, sys
d = json.load(open(sys.argv[1]))["delegation"]
assert d["root_task"] == sys.argv[2] and d["parent_task"] == sys.argv[3], d
assert d["depth"] == 2 and d["path"] == ["lead", "sub", "grand"], d
assert d["parent_cert_sha256"] == sys.argv[4], d
PY
	{ cat "$T/gc.json"; fail "the grandchild's leaf lacks its delegation block"; }
stint verify-peer "$T/child.pem" --parent-cert "$T/root.pem" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "the child's leaf does not hold with its parent's"; }
stint verify-peer "$T/gc.pem" --parent-cert "$T/child.pem" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "the grandchild's leaf does not hold with its parent's"; }
if stint verify-peer "$T/gc.pem" --parent-cert "$T/root.pem" >"$T/out" 2>&1; then
	fail "the grandchild's leaf held with its grandparent's as parent"
fi

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

# --- which agent did what, for which root task -------------------------------
p11client --token lead --label "$schild" --count 1 >/dev/null 2>&1 # another tree: not listed
stint audit tail --root-task "$root" --json >"$T/tree-audit.json" || fail "audit tail --root-task"
"$PYTHON" - "$root" "$child" "$gc" "$sib1" "$T/tree-audit.json" <<'PY' || fail "audit tail --root-task lists the wrong records"
import json, sys
root, child, gc, sib1, path = sys.argv[1:6]
recs = json.load(open(path))
tree = {root, child, gc, sib1}
assert recs, "no record"
assert all(r["event"].startswith("sign-") for r in recs), recs
assert all(r["task"] in tree for r in recs), [r["task"] for r in recs]
allowed = [(r["agent"], r["task"]) for r in recs if r["event"] == "sign-allowed"]
assert ("sub", child) in allowed, allowed
PY
note "audit tail --root-task: $(grep -c '"event"' "$T/tree-audit.json") SIGN records of the tree"

# --- cascade race: a grandchild's key in use while the root ends -------------
signer_setup
for round in 1 2; do
	r=$(task_start lead --ttl 30m)
	c=$(delegate "$r" sub)
	g=$(as_uid $SUB "$STINT" --socket "$T/run/admin.sock" delegate --parent "$c" --agent grand --json | json_get id) ||
		fail "round $round: grandchild"
	marker=$T/race-ended.$round
	race_signers_start $GRAND grand "$g" "$marker" "task end"
	stint task end "$r" >"$T/end.out" 2>&1 || { cat "$T/end.out"; fail "task end of the root under load"; }
	race_signers_end "$marker" "round $round: the root's task end (grandchild key)"
	before=$(audit_count "$g" sign-allowed)
	[ "$before" -gt 0 ] || fail "round $round: no grandchild signature before task end (no race)"
	for t in "$c" "$g"; do
		backend_has_key "$t" && fail "round $round: key of descendant $t left after task end returned"
	done
	note "cascade race round $round: $before grandchild signatures before the root ended, 0 after"
done

# --- budget under concurrency -------------------------------------------------
r=$(task_start lead --ttl 30m --max-signatures 40)
c=$(delegate "$r" sub --max-sigs 15)
p11client --token lead --label "$r" --mech ecdsa --in "$T/digest" --until-refused \
	--seconds 60 >"$T/bp.out" 2>&1 &
pp=$!
bg_track $pp
as_uid $SUB "$T/bin/p11client" --module "$MOD" --token sub --label "$c" --mech ecdsa \
	--in "$T/digest" --until-refused --seconds 60 >"$T/bc.out" 2>&1 &
pc=$!
bg_track $pc
wait $pp
wait $pc
np=$(audit_count "$r" sign-allowed)
nc=$(audit_count "$c" sign-allowed)
note "budget 40: parent signed $np, child (reserved 15) signed $nc"
[ $((np + nc)) -le 40 ] || fail "parent and child made $((np + nc)) signatures on a budget of 40"
[ "$nc" -eq 15 ] || fail "the child made $nc signatures of its 15"
[ "$np" -eq 25 ] || fail "the parent made $np signatures, not the 25 left after the reservation"
stint task end "$c" >/dev/null || fail "end child"
[ "$(stint task show "$r" --json | json_get signatures_used)" = 40 ] ||
	fail "a spent child gave budget back"
stint task end "$r" >/dev/null

not_live()
{
	[ "$(stint task show "$1" --json | json_get state)" != live ]
}
no_key()
{
	! backend_has_key "$1"
}

# --- expiry cascade -------------------------------------------------------------
r=$(task_start lead --ttl 8s) # TPM: each level may lose a second
c=$(delegate "$r" sub)
g=$(as_uid $SUB "$STINT" --socket "$T/run/admin.sock" delegate --parent "$c" --agent grand --json | json_get id) ||
	fail "expiry: grandchild"
wait_for 30 not_live "$g" ||
	fail "the grandchild outlived its root's expiry"
wait_for 30 no_key "$c" && wait_for 30 no_key "$g" ||
	fail "descendant keys left after the root expired"
# (a child's deadline is never after its parent's: on the TPM, where each
# level may lose a second, children may expire on their own first)
wait_for 30 not_live "$r" || fail "root did not expire"
[ "$(stint task show "$r" --json | json_get state)" = expired ] || fail "root not expired"
for t in "$c" "$g"; do
	stint task show "$t" --json | json_get state | grep -qx 'ended\|expired' ||
		fail "descendant $t neither ended nor expired"
done

# --- crash safety ----------------------------------------------------------------
# An orphan: the store says the parent ended and the child live (what a crash
# between two state.db commits could leave). At restart, before anything is
# served, the child (and its subtree) ends and its key is destroyed.
r=$(task_start lead --ttl 30m)
c=$(delegate "$r" sub)
g=$(as_uid $SUB "$STINT" --socket "$T/run/admin.sock" delegate --parent "$c" --agent grand --json | json_get id) ||
	fail "orphan: grandchild"
stintd_kill9
sqlite3 "$T/state/state.db" "UPDATE tasks SET state = 'ended', ended = 1, reason = 'test' WHERE id = '$r'" ||
	fail "cannot edit state.db"
stintd_start
for t in "$c" "$g"; do
	[ "$(stint task show "$t" --json | json_get state)" = ended ] || fail "orphan $t live after restart"
	wait_for 30 no_key "$t" || fail "orphan $t: key left in the backend after restart"
done
sign_as $SUB "$c" | grep -q "status=5" || fail "orphan child signs after restart"

# kill -9 while a tree of 20 ends: afterwards no descendant of an ended task is
# live and none of their keys is left.
r=$(task_start lead --ttl 30m)
ids=()
for ((k = 0; k < 10; k++)); do
	c=$(delegate "$r" sub)
	ids+=("$c")
	ids+=("$(as_uid $SUB "$STINT" --socket "$T/run/admin.sock" delegate --parent "$c" --agent grand --json | json_get id)")
done
stint task end "$r" >/dev/null 2>&1 &
endpid=$!
sleep 0.05
stintd_kill9
wait $endpid 2>/dev/null
stintd_start
rstate=$(stint task show "$r" --json | json_get state)
[ "$rstate" = live ] && stint task end "$r" >/dev/null
for t in "${ids[@]}"; do
	[ "$(stint task show "$t" --json | json_get state)" = ended ] || fail "descendant $t live after kill -9 and restart (root was $rstate)"
done
for t in "${ids[@]}"; do
	wait_for 30 no_key "$t" || fail "descendant $t: key left after kill -9 and restart"
done
if [ "$STINT_TEST_BACKEND" = softhsm ]; then
	softhsm_objects >"$T/objects" || fail "cannot list the token"
	for t in "${ids[@]}"; do
		grep -q "$t" "$T/objects" && fail "token still lists $t"
	done
fi
note "kill -9 while ending a tree of 20 (root $rstate at restart): no live descendant, no key"

# --- the kill switch (TPM) ends the tree ------------------------------------
if [ "$STINT_TEST_BACKEND" = tpm ]; then
	# 10m, below default_ttl (15m): the children default to the parent's
	# remaining time, so their TPM deadlines are at the edge of the rule
	r=$(task_start lead --ttl 10m)
	c=$(delegate "$r" sub)
	g=$(as_uid $SUB "$STINT" --socket "$T/run/admin.sock" delegate --parent "$c" --agent grand --json | json_get id) ||
		fail "kill switch: grandchild"
	# Each key's own hardware deadline (its TPM policy's clock bound, as
	# TPM2_Certify evidence proves it) is no later than its parent's.
	stint ca attestation-key >"$T/ak.pem" || fail "stint ca attestation-key"
	tpm_deadline()
	{
		stint task evidence "$1" >"$T/ev.pem" || fail "task evidence $1"
		stint attest verify "$T/ev.pem" --attestation-key "$T/ak.pem" \
			--task "$1" --json | json_get tpm_deadline_ms
	}
	dr=$(tpm_deadline "$r") dc=$(tpm_deadline "$c") dg=$(tpm_deadline "$g")
	[ -n "$dr" ] && [ -n "$dc" ] && [ -n "$dg" ] || fail "no TPM deadline in the evidence"
	[ "$dc" -le "$dr" ] || fail "the child's TPM deadline $dc ms is after its parent's $dr ms"
	[ "$dg" -le "$dc" ] || fail "the grandchild's TPM deadline $dg ms is after its parent's $dc ms"
	note "TPM deadlines (ms on the TPM clock): root $dr, child $dc, grandchild $dg"
	stint kill-switch --confirm >"$T/ks.out" 2>&1 || { cat "$T/ks.out"; fail "kill-switch"; }
	for t in "$r" "$c" "$g"; do
		[ "$(stint task show "$t" --json | json_get state)" = ended ] || fail "kill switch: $t still live"
		backend_has_key "$t" && fail "kill switch: key of $t left"
	done
	sign_as $GRAND "$g" | grep -q "status=5" || fail "kill switch: the grandchild still signs"
	note "kill switch: root, child and grandchild ended, keys gone"
fi
stintd_stop
