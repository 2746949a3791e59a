#!/bin/bash
# Issue 15 (prov), first slice: agents declared in agents.d (beside
# stint.conf) exist after start with their file as source; after the files
# change, SIGHUP reconciles: a narrowed agent is updated, a new one added,
# one whose file is gone removed with its live task ended and key destroyed,
# each change one agent-reconcile audit record. A broken file changes
# nothing and `stintd --check` names FILE:LINE; the CLI refuses to remove or
# re-add a file agent.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
stint_tmpdir
agents_dir_init
cat >"$AD/10-billing.conf" <<'EOF2'
# billing's agent
[agent billing]
uid = 62101
max_ttl = 1h   ; inline comment
mechanisms = ecdsa
exe = /usr/bin/true
EOF2
cat >"$AD/20-ci.conf" <<'EOF2'
[agent ci]
uid = 62102
EOF2
stintd_start

# agent NAME FIELD: one field of `agent list --json` ("" when no agent)
agent_field()
{
	stint agent list --json | "$PYTHON" -c '
import json, sys
for a in json.load(sys.stdin):
    if a["name"] == sys.argv[1]:
        print(a[sys.argv[2]])' "$1" "$2"
}
reconcile_records()
{
	# SIGHUP also rotates the log: count over every file of the chain.
	"$PYTHON" - "$AUDIT_LOG" "$1" <<'PY'
import glob, json, sys
n = 0
for line in (l for p in glob.glob(sys.argv[1] + "*") for l in open(p, "rb")):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("event") == "agent-reconcile" and \
            (r.get("detail") or "").startswith(sys.argv[2] + " "):
        n += 1
print(n)
PY
}

[ "$(agent_field billing source)" = "$AD/10-billing.conf" ] ||
	{ stint agent list; fail "billing not added from its file at start"; }
[ "$(agent_field ci source)" = "$AD/20-ci.conf" ] ||
	{ stint agent list; fail "ci not added from its file at start"; }
[ "$(agent_field billing max_ttl)" = 3600 ] || fail "billing max_ttl is not 1h"
stint agent list | grep -q "source=$AD/10-billing.conf" ||
	fail "agent list does not show the source"
[ "$(reconcile_records added)" = 2 ] || fail "expected 2 'added' agent-reconcile records"

# The CLI leaves file agents alone and names the file.
out=$(stint agent remove billing 2>&1) && fail "agent remove of a file agent succeeded"
grep -q "10-billing.conf" <<<"$out" || fail "refusal does not name the file: $out"
out=$(stint agent add ci --uid 62109 2>&1) && fail "agent add over a file agent succeeded"
grep -q "20-ci.conf" <<<"$out" || fail "refusal does not name the file: $out"
[ -n "$(agent_field billing name)" ] || fail "billing is gone after the refused remove"

signer_setup
sign_as_ci()
{
	as_uid 62102 "$T/bin/p11client" --module "$T/bin/$(basename "$STINT_MODULE")" \
		--token ci --label "$1" --mech ecdsa --in "$T/digest" --count 1
}

ci_task=$(task_start ci --ttl 30m)
backend_has_key "$ci_task" || fail "ci's task has no key"
sign_as_ci "$ci_task" >"$T/sign.out" 2>&1 ||
	{ cat "$T/sign.out"; fail "ci cannot sign with its task before the reload"; }

# A broken file: --check names FILE:LINE and exits 1; SIGHUP changes nothing.
cat >"$AD/30-bad.conf" <<'EOF2'
[agent broken]
uid = 62104
max_ttl = 5 parsecs
EOF2
"$STINTD" --config "$STINTD_CONF" --check >"$T/check.out" 2>&1
rc=$?
[ "$rc" = 1 ] || { cat "$T/check.out"; fail "stintd --check exited $rc on a bad file, not 1"; }
grep -q "30-bad.conf:3: bad max_ttl" "$T/check.out" ||
	{ cat "$T/check.out"; fail "stintd --check does not name FILE:LINE"; }
rm "$AD/20-ci.conf"
kill -HUP "$STINTD_PID"
wait_for 10 grep -q "agents.d not reconciled" "$STINTD_LOG" ||
	fail "SIGHUP with a bad file: no error in the log"
[ -n "$(agent_field ci name)" ] || fail "a bad file let reconcile remove ci"
[ "$(stint task show "$ci_task" --json | json_get state)" = live ] ||
	fail "a bad file let reconcile end ci's task"

# Fixed: narrow billing, add deploy, ci's file is (still) gone.
rm "$AD/30-bad.conf"
sed -i 's/^max_ttl = 1h.*/max_ttl = 10m/' "$AD/10-billing.conf"
cat >"$AD/40-deploy.conf" <<'EOF2'
[agent deploy]
uid = 62103
gid = 62103
mechanisms = ecdsa, rsa-pkcs
EOF2
"$STINTD" --config "$STINTD_CONF" --check >"$T/check.out" 2>&1 ||
	{ cat "$T/check.out"; fail "stintd --check refuses valid files"; }
t0=$(date +%s.%N)
kill -HUP "$STINTD_PID"
# (functions: wait_for re-runs them; "$(...)" in its arguments would be
# read once, before the reload)
ci_gone() { [ -z "$(agent_field ci name)" ]; }
deploy_added() { [ -n "$(agent_field deploy name)" ]; }
wait_for 10 ci_gone || fail "ci not removed on SIGHUP"
wait_for 10 deploy_added || fail "deploy not added on SIGHUP"
note "reconciled in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s"
[ "$(agent_field billing max_ttl)" = 600 ] || fail "billing not narrowed to 10m"
[ "$(agent_field deploy source)" = "$AD/40-deploy.conf" ] || fail "deploy's source"
sign_as_ci "$ci_task" >"$T/sign.out" 2>&1 &&
	{ cat "$T/sign.out"; fail "ci still signs after its file was removed"; }
state=$(stint task show "$ci_task" --json | json_get state)
[ "$state" != live ] || fail "removed agent's task is still live"
for ((i = 0; i < 50; i++)); do
	backend_has_key "$ci_task" || break
	sleep 0.2
done
backend_has_key "$ci_task" && fail "removed agent's task key is still in the backend"
[ "$(reconcile_records added)" = 3 ] || fail "expected 3 'added' records"
[ "$(reconcile_records updated)" = 1 ] || fail "expected 1 'updated' record"
[ "$(reconcile_records removed)" = 1 ] || fail "expected 1 'removed' record"

# Nothing changed: another SIGHUP writes no record. A reconcile that
# changes nothing logs nothing either, so wait for proof it ran: one thread
# takes SIGHUPs one at a time (audit_anchor.c), each logs its rotation of
# the audit log and then reconciles; the rotation line of a second SIGHUP,
# sent once the first's is there, comes after the first's reconcile.
rotations() { grep -c "audit log rotat" "$STINTD_LOG"; }
r0=$(rotations)
rotated_to() { [ "$(rotations)" -ge "$1" ]; }
kill -HUP "$STINTD_PID"
wait_for 30 rotated_to $((r0 + 1)) || fail "SIGHUP not handled within 30 s (no rotation logged)"
kill -HUP "$STINTD_PID"
wait_for 30 rotated_to $((r0 + 2)) || fail "second SIGHUP not handled within 30 s (no rotation logged)"
[ "$(reconcile_records updated)" = 1 ] || fail "an unchanged file was 'updated' again"
stintd_stop
note "agents.d: added, narrowed, removed (task ended, key gone), bad file refused"
