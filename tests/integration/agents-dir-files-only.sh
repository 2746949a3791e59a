#!/bin/bash
# Issue 15 (prov): [stintd] agents = files-only makes agents.d the only
# source of agents: `stint agent add` and `agent remove` are refused with a
# message naming the setting, and nothing changes; the declared agents
# work; a bad value is refused by --check with the line.
. "$(dirname "$0")/lib.sh"
need_root
stint_tmpdir
agents_dir_init
printf '[agent web]\nuid = 62501\n' >"$AD/web.conf"

sed -i '/^\[stintd\]/a agents = maybe' "$STINTD_CONF"
"$STINTD" --config "$STINTD_CONF" --check >"$T/check.out" 2>&1
[ $? = 1 ] || { cat "$T/check.out"; fail "--check accepted agents = maybe"; }
grep -q "bad agents value 'maybe': use files-only or both" "$T/check.out" ||
	{ cat "$T/check.out"; fail "--check does not explain the agents value"; }
sed -i 's/^agents = maybe/agents = files-only/' "$STINTD_CONF"
stintd_start

out=$(stint agent add cli1 --uid 62502 2>&1) && fail "agent add succeeded with agents = files-only"
grep -q "agents = files-only" <<<"$out" || fail "agent add refusal does not name the setting: $out"
stint agent list --json | grep -q '"cli1"' && fail "refused agent add still added cli1"
out=$(stint agent remove web 2>&1) && fail "agent remove succeeded with agents = files-only"
grep -q "agents = files-only" <<<"$out" || fail "agent remove refusal does not name the setting: $out"
stint agent list --json | grep -q '"web"' || fail "agent web gone after a refused remove"
t=$(task_start web --ttl 5m)
[ -n "$t" ] || fail "no task for the declared agent"
# Files still reconcile.
printf '[agent api]\nuid = 62503\n' >"$AD/api.conf"
stint reload >/dev/null || fail "reload failed with agents = files-only"
stint agent list --json | grep -q '"api"' || fail "api not added by reload"
stintd_stop
note "agents = files-only: CLI add/remove refused naming the setting; files reconcile"
