#!/bin/bash
# Issue 8 item 4, as the attack: `stint agent remove` while 20 `task start`s
# for that agent are in flight, then the name added again for another uid.
# After the remove returns (and the starts have answered), no task of the
# removed agent may be live, none of their keys may be left, and the new
# principal behind the old name cannot sign with any of the old task ids.
# (Before the fix starts that had read the agent stored their tasks after
# the removal, live, and the re-added name inherited them.)
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
stint_tmpdir
stint_setup
need_p11client

free_uid()
{
	local u=$1

	while getent passwd "$u" >/dev/null || getent group "$u" >/dev/null ||
		pgrep -U "$u" >/dev/null; do
		u=$((u + 1))
	done
	echo "$u"
}
OLD=$(free_uid 62001)
NEW=$(free_uid $((OLD + 1)))
signer_setup

sign_as()
{
	as_uid "$1" "$T/bin/p11client" --module "$MOD" --token demo \
		--label "$2" --mech ecdsa --in "$T/digest" --count 1
}

starts=${RACE_STARTS:-20}
rounds=${RACE_ROUNDS:-4}
: >"$T/ids"
raced=0
for ((round = 1; round <= rounds; round++)); do
	agent_add demo "$OLD"
	pids=()
	for ((i = 0; i < starts; i++)); do
		stint task start --agent demo -q --ttl 10m \
			>"$T/start.$round.$i" 2>&1 &
		pids+=($!)
		bg_track $!
	done
	# Let some starts get going (reading the agent, making keys).
	sleep "0.$((round * 2))"
	stint agent remove demo >"$T/remove.$round" 2>&1 ||
		{ cat "$T/remove.$round"; fail "agent remove demo (round $round)"; }
	# Right after the remove returned: nothing of demo is live.
	stint task list --json >"$T/live.$round" || fail "task list"
	"$PYTHON" - "$T/live.$round" <<'PY' || fail "a task of the removed agent is live right after agent remove (round $round)"
import json, sys
tasks = json.load(open(sys.argv[1]))
tasks = tasks.get("tasks", tasks) if isinstance(tasks, dict) else tasks
live = [t["task"] if "task" in t else t.get("id") for t in tasks
        if t.get("agent") == "demo" and t.get("state") == "live"]
if live:
    print("live:", live)
    sys.exit(1)
PY
	ok=0
	for ((i = 0; i < starts; i++)); do
		wait "${pids[$i]}" && { ok=$((ok + 1)); cat "$T/start.$round.$i" >>"$T/ids"; }
	done
	[ "$ok" -gt 0 ] && [ "$ok" -lt "$starts" ] && raced=$((raced + 1))
	note "round $round: $ok of $starts starts succeeded around the remove"
done
[ -s "$T/ids" ] || fail "no task start succeeded at all"
[ "$raced" -gt 0 ] || note "no round split the starts (the race window was missed)"

# Every task that was started is ended, its key gone.
while read -r id; do
	state=$(stint task show "$id" --json | json_get state) || fail "task show $id"
	[ "$state" != live ] || fail "task $id of the removed agent is still live"
	backend_has_key "$id" && fail "key of task $id of the removed agent is still in the backend"
done <"$T/ids"
stint task list --json >"$T/live" || fail "task list"
grep -q '"demo"' "$T/live" && { cat "$T/live"; fail "a live task of demo remains"; }

# The name again, for another principal: it inherits nothing.
agent_add demo "$NEW"
while read -r id; do
	! sign_as "$NEW" "$id" >"$T/out" 2>&1 ||
		{ cat "$T/out"; fail "uid $NEW signed with old task $id of the re-added name"; }
done <"$T/ids"
# A positive control: the new principal signs with a task of its own.
fresh=$(task_start demo --ttl 10m) || exit 1
sign_as "$NEW" "$fresh" >"$T/out" 2>&1 || { cat "$T/out"; fail "uid $NEW cannot sign with its own new task"; }
stintd_stop
note "$(wc -l <"$T/ids") tasks started around agent remove: none live, no key left, none inherited"
