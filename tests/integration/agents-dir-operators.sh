#!/bin/bash
# Issue 15 (prov): operators declared in operators.d ([operator NAME]: uid,
# agents, max_ttl) exist after start with their file as source and may use
# admin.sock for their agents; `stint reload` updates (max_ttl) and removes
# them (the uid is refused again), one operator-reconcile record each; the
# CLI refuses to remove a file operator and names the file; a bad file
# names FILE:LINE and changes nothing.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
stint_tmpdir
backend_init
stintd_config
OP=62602
mkdir -m 0755 "$T/agents.d" "$T/operators.d"
printf '[agent web]\nuid = 62601\n' >"$T/agents.d/web.conf"
cat >"$T/operators.d/orch.conf" <<EOF2
[operator orch]
uid = $OP
agents = web
max_ttl = 10m
EOF2
stintd_start
mkdir -m 0755 "$T/bin"
cp "$STINT" "$T/bin/"
chmod 0755 "$T/bin/stint"
as_stint()
{
	as_uid "$OP" env STINT_SOCKET="$T/run/agent.sock" \
		"$T/bin/stint" --socket "$T/run/admin.sock" "$@"
}
op_field()
{
	stint operator list --json | "$PYTHON" -c '
import json, sys
for o in json.load(sys.stdin):
    if o["name"] == sys.argv[1]:
        print(o[sys.argv[2]])' "$1" "$2"
}

[ "$(op_field orch source)" = "$T/operators.d/orch.conf" ] ||
	{ stint operator list --json; fail "orch not added from its file"; }
t=$(as_stint task start --agent web --ttl 5m -q) || fail "file operator cannot start a task for web"
[ -n "$t" ] || fail "no task id"
as_stint task start --agent web --ttl 20m -q >/dev/null 2>&1 &&
	fail "file operator's max_ttl 10m not applied"

out=$(stint operator remove orch 2>&1) && fail "CLI removed a file operator"
grep -q "operators.d/orch.conf" <<<"$out" || fail "refusal does not name the file: $out"

# A bad file: FILE:LINE, nothing changes.
printf '[operator bad]\nuid = 62603\nagents = web\ncolour = blue\n' >"$T/operators.d/bad.conf"
"$STINTD" --config "$STINTD_CONF" --check >"$T/check.out" 2>&1 && fail "--check accepted a bad operators.d file"
grep -q "bad.conf:4: unknown key 'colour'" "$T/check.out" || { cat "$T/check.out"; fail "no FILE:LINE"; }
stint reload >/dev/null 2>&1 && fail "reload accepted a bad operators.d file"
rm "$T/operators.d/bad.conf"

# Update: max_ttl 30m now allows a 20m task.
sed -i 's/^max_ttl = 10m/max_ttl = 30m/' "$T/operators.d/orch.conf"
stint reload --json >"$T/r.json" || fail "reload failed"
"$PYTHON" -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if [(o["name"],o["action"]) for o in r["operators"]] == [("orch","updated")] else 1)' "$T/r.json" ||
	{ cat "$T/r.json"; fail "reload does not report orch updated"; }
as_stint task start --agent web --ttl 20m -q >/dev/null || fail "updated max_ttl not applied"

# Remove: the uid is refused again.
rm "$T/operators.d/orch.conf"
stint reload >"$T/r.txt" || fail "reload failed"
grep -q "^operator orch  removed" "$T/r.txt" || { cat "$T/r.txt"; fail "reload does not report orch removed"; }
[ -z "$(op_field orch name)" ] || fail "orch still listed"
as_stint task list >/dev/null 2>&1 && fail "removed operator's uid still uses admin.sock"
n=$(grep -c '"event":"operator-reconcile"' "$AUDIT_LOG"* | awk -F: '{ s += $NF } END { print s }')
[ "$n" = 3 ] || fail "expected 3 operator-reconcile records (added, updated, removed), got $n"
stintd_stop
note "operators.d: added with source, max_ttl updated, removed (uid refused), CLI refused, bad file"
