#!/bin/bash
# Issue 15 (prov): `stint reload [--dry-run] [--json]` reconciles agents.d
# on request and reports per agent added/updated/removed/unchanged and the
# live tasks ended. --dry-run changes nothing: agents, tasks and the audit
# log are the same before and after, and the task it would end still signs.
# An invalid file makes reload exit 1 naming FILE:LINE, nothing changed.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
stint_tmpdir
agents_dir_init
cat >"$AD/ci.conf" <<'EOF2'
[agent ci]
uid = 62401
max_ttl = 1h
mechanisms = ecdsa
EOF2
cat >"$AD/old.conf" <<'EOF2'
[agent old]
uid = 62402
EOF2
cat >"$AD/same.conf" <<'EOF2'
[agent same]
uid = 62403
EOF2
stintd_start
signer_setup
sign_ci()
{
	as_uid 62401 "$T/bin/p11client" --module "$T/bin/$(basename "$STINT_MODULE")" \
		--token ci --label "$1" --mech ecdsa --in "$T/digest" --count 1 >"$T/sign.out" 2>&1
}
snapshot()
{
	{
		stint agent list --json
		stint task list --all --json
		cat "$AUDIT_LOG"*
	} >"$1"
}
long=$(task_start ci --ttl 30m)
short=$(task_start ci --ttl 5m)
oldt=$(task_start old --ttl 5m)
sign_ci "$long" || { cat "$T/sign.out"; fail "ci's task cannot sign"; }

sed -i 's/^max_ttl = 1h/max_ttl = 10m/' "$AD/ci.conf"
rm "$AD/old.conf"
printf '[agent new]\nuid = 62404\n' >"$AD/new.conf"

snapshot "$T/before"
stint reload --dry-run --json >"$T/dry.json" || fail "reload --dry-run failed"
snapshot "$T/after"
cmp -s "$T/before" "$T/after" ||
	{ diff "$T/before" "$T/after"; fail "reload --dry-run changed the state"; }
sign_ci "$long" || { cat "$T/sign.out"; fail "the task a dry run would end no longer signs"; }

# report FILE EXPR: evaluates a Python expression over the JSON report r
report()
{
	"$PYTHON" -c '
import json, sys
r = json.load(open(sys.argv[1]))
act = {a["name"]: a["action"] for a in r["agents"]}
ended = {t["id"]: t["reason"] for t in r["tasks"]}
sys.exit(0 if eval(sys.argv[2]) else 1)' "$@"
}
report "$T/dry.json" 'r["dry_run"] and act == {"ci": "updated", "old": "removed", "new": "added", "same": "unchanged"}' ||
	{ cat "$T/dry.json"; fail "dry run: wrong per-agent report"; }
report "$T/dry.json" "sorted(ended) == sorted(['$long', '$oldt']) and 'above max_ttl' in ended['$long'] and ended['$oldt'] == 'agent removed'" ||
	{ cat "$T/dry.json"; fail "dry run: wrong tasks to end"; }
stint reload --dry-run >"$T/dry.txt" || fail "reload --dry-run (text) failed"
grep -q "would be ended" "$T/dry.txt" && grep -q "dry run: nothing changed" "$T/dry.txt" ||
	{ cat "$T/dry.txt"; fail "dry run text report"; }

# The real thing.
stint reload --json >"$T/real.json" || fail "reload failed"
report "$T/real.json" 'not r["dry_run"] and act == {"ci": "updated", "old": "removed", "new": "added", "same": "unchanged"} and r["changes"] == 3' ||
	{ cat "$T/real.json"; fail "reload: wrong per-agent report"; }
report "$T/real.json" "'$long' in ended and '$short' not in ended" ||
	{ cat "$T/real.json"; fail "reload: wrong tasks ended"; }
sign_ci "$long" && fail "the narrowed-out task still signs after reload"
sign_ci "$short" || { cat "$T/sign.out"; fail "the allowed task no longer signs"; }
[ "$(stint task show "$oldt" --json | json_get state)" != live ] || fail "removed agent's task is live"
[ -n "$(stint agent list --json | grep '"new"')" ] || fail "new agent not added"

# An invalid file: exit 1, FILE:LINE, nothing changed.
printf '[agent bad]\nuid = 62405\nmechanisms = nonsense\n' >"$AD/bad.conf"
rm "$AD/new.conf"
snapshot "$T/before"
out=$(stint reload 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "reload with an invalid file exited $rc, not 1"
grep -q "bad.conf:3: unknown mechanism" <<<"$out" || fail "reload error does not name FILE:LINE: $out"
stint agent list --json | grep -q '"new"' || fail "an invalid file let reload remove agent new"
stint reload --bogus >/dev/null 2>&1
[ $? = 2 ] || fail "reload --bogus is not a usage error (2)"
stintd_stop
note "stint reload: per-agent report, dry run changes nothing, invalid file exit 1"
