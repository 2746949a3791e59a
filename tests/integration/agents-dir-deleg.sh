#!/bin/bash
# Issue 15 (prov): delegation rights declared in agents.d (delegate_to,
# max_depth), validated as `agent add --delegate-to/--max-depth` is, and
# narrowed on reload: removing a name from delegate_to ends the live
# children its tasks handed that agent, lowering max_depth ends the live
# tasks now too deep below it (with their subtrees); --dry-run only shows
# them; a bad value is refused with FILE:LINE and nothing changes.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
stint_tmpdir
agents_dir_init
me=$(id -u)
SUB=62501 SIB=62502 GRAND=62503
cat >"$AD/lead.conf" <<EOF2
[agent lead]
uid = $me
delegate_to = sub, sib
max_depth = 3

[agent sub]
uid = $SUB
delegate_to = grand
max_depth = 3

[agent sib]
uid = $SIB

[agent grand]
uid = $GRAND
EOF2
stintd_start

[ "$(stint agent show lead --json | json_get delegate_to)" = sub,sib ] ||
	fail "agents.d delegate_to not applied: $(stint agent show lead --json)"
[ "$(stint agent show lead --json | json_get max_depth)" = 3 ] ||
	fail "agents.d max_depth not applied"
grep '"event":"agent-reconcile"' "$AUDIT_LOG" | grep '"agent":"lead"' |
	grep -q 'delegate_to=sub,sib max_depth=3' ||
	fail "the agent-reconcile record of lead lacks delegate_to and max_depth"

delegate_as()
{
	local uid=$1 parent=$2 agent=$3

	as_uid "$uid" "$STINT" --socket "$T/run/admin.sock" delegate \
		--parent "$parent" --agent "$agent" --json | json_get id
}
state() { stint task show "$1" --json | json_get state; }
reason() { stint task show "$1" --json | json_get reason; }

root=$(task_start lead --ttl 10m)
sub=$(delegate_as "$me" "$root" sub) || fail "lead could not delegate to sub"
sib=$(delegate_as "$me" "$root" sib) || fail "lead could not delegate to sib"
grand=$(delegate_as $SUB "$sub" grand) || fail "sub could not delegate to grand"
for t in "$root" "$sub" "$sib" "$grand"; do
	[ "$(state "$t")" = live ] || fail "task $t not live before the reload"
done

# Validation: as strict as the CLI's, FILE:LINE, the previous state stays.
cp "$AD/lead.conf" "$T/lead.good"
sed -i '0,/^max_depth = 3$/s//max_depth = 99/' "$AD/lead.conf"
out=$(stint reload 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "reload with max_depth = 99 exited $rc, not 1: $out"
grep -q "lead.conf:4: bad max_depth '99'" <<<"$out" || fail "max_depth error lacks FILE:LINE: $out"
sed -i 's/^max_depth = 99$/max_depth = 3/' "$AD/lead.conf"
sed -i '0,/^delegate_to = sub, sib$/s//delegate_to = sub, s\/b/' "$AD/lead.conf"
out=$(stint reload 2>&1) && fail "reload accepted delegate_to = sub, s/b"
grep -q "lead.conf:3: bad delegate_to" <<<"$out" || fail "delegate_to error lacks FILE:LINE: $out"
[ "$(stint agent show lead --json | json_get max_depth)" = 3 ] || fail "an invalid file changed lead"
cp "$T/lead.good" "$AD/lead.conf"

# Narrow: lead no longer delegates to sib, and nothing below it may be
# deeper than 1 (grand is at depth 2).
sed -i 's/^delegate_to = sub, sib$/delegate_to = sub/;0,/^max_depth = 3$/s//max_depth = 1/' "$AD/lead.conf"
stint reload --dry-run --json >"$T/dry.json" || fail "reload --dry-run failed"
"$PYTHON" - "$T/dry.json" "$sib" "$grand" <<'PY' || { cat "$T/dry.json"; fail "dry run: wrong tasks to end"; }
import json, sys
r = json.load(open(sys.argv[1]))
ended = {t["id"]: t["reason"] for t in r["tasks"]}
assert sorted(ended) == sorted(sys.argv[2:4]), ended
assert "may no longer delegate to agent sib" in ended[sys.argv[2]], ended
assert "max_depth 1 is below the task's depth 2" in ended[sys.argv[3]], ended
PY
for t in "$sib" "$grand"; do
	[ "$(state "$t")" = live ] || fail "dry run ended task $t"
done

stint reload --json >"$T/real.json" || { cat "$T/real.json"; fail "reload failed"; }
[ "$(state "$sib")" != live ] || fail "sib's task live after lead stopped delegating to sib"
[ "$(state "$grand")" != live ] || fail "grand's task live at depth 2 after max_depth 1"
[ "$(state "$root")" = live ] || fail "the root task was ended"
[ "$(state "$sub")" = live ] || fail "sub's task (still allowed) was ended"
reason "$sib" | grep -q "may no longer delegate to agent sib" || fail "sib reason: $(reason "$sib")"
reason "$grand" | grep -q "max_depth 1 is below" || fail "grand reason: $(reason "$grand")"
[ "$(stint agent show lead --json | json_get delegate_to)" = sub ] || fail "delegate_to not updated"
# The new rules hold for new delegations too.
delegate_as "$me" "$root" sib >/dev/null 2>&1 && fail "lead still delegates to sib"
delegate_as $SUB "$sub" grand >/dev/null 2>&1 && fail "a depth-2 child is still allowed"
stintd_stop
note "agents.d delegation rights: validated with FILE:LINE, narrowing ends forbidden children"
