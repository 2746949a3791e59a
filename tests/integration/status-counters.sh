#!/bin/bash
# `stint status --json` counts what a monitoring system wants: signatures
# allowed and refused by reason, task starts, ends and expiries, audit bytes
# and errors. Signs N times, is refused M times (another agent's task, an
# ended task, a bad mechanism), starts and ends K tasks, lets one expire,
# and checks the exact counts (issue 13).
. "$(dirname "$0")/lib.sh"
stint_tmpdir
stint_setup
wire_py
chmod 0644 "$T/wire.py"
sock=$T/run/agent.sock
other_uid=64123
agent_add alpha "$(id -u)"
agent_add beta "$other_uid"

st() { stint status --json >"$T/status.json" || fail "stint status --json"; }
get() { json_get "$1" <"$T/status.json"; }
expect() {
	local v
	v=$(get "$1") || { cat "$T/status.json"; fail "no $1 in stint status --json"; }
	[ "$v" = "$2" ] || { cat "$T/status.json"; fail "$1 is $v, expected $2"; }
}
sign() { # sign TASK [uid] -> status=N ...
	if [ -n "${2:-}" ]; then
		as_uid "$2" "$PYTHON" "$T/wire.py" sign "$sock" "$1"
	else
		"$PYTHON" "$T/wire.py" sign "$sock" "$1"
	fi
}

st
for k in sign_allowed sign_refused task_starts task_ends task_expires \
	backend_errors audit_write_failures audit_pending; do
	expect "$k" 0
done
expect sign_refused_by_reason.not_yours 0
bytes0=$(get audit_bytes)

K=3 N=5 M_OTHER=2 M_ENDED=3
ids=()
for ((i = 0; i < K; i++)); do
	ids+=("$(task_start alpha --ttl 10m)") || exit 1
done
for ((i = 0; i < N; i++)); do
	out=$(sign "${ids[0]}")
	[ "$out" != "${out#status=0 }" ] || fail "sign $i: $out"
done
# Another agent's task: not_yours.
for ((i = 0; i < M_OTHER; i++)); do
	out=$(sign "${ids[0]}" "$other_uid")
	[ "$out" != "${out#status=4 }" ] || fail "beta signing alpha's task: $out"
done
# An unsupported mechanism: mechanism.
out=$("$PYTHON" "$T/wire.py" sign "$sock" "${ids[0]}" 0x7777)
[ "$out" != "${out#status=6 }" ] || fail "unsupported mechanism: $out"
for id in "${ids[@]}"; do
	stint task end "$id" >/dev/null || fail "task end $id"
done
stint task end "${ids[0]}" >/dev/null || fail "second task end" # not counted
for ((i = 0; i < M_ENDED; i++)); do
	out=$(sign "${ids[1]}")
	[ "$out" != "${out#status=5 }" ] || fail "signing with an ended task: $out"
done

# One task expires at its deadline.
ttl=2
[ "$STINT_TEST_BACKEND" = tpm ] && ttl=4
exp=$(task_start alpha --ttl "${ttl}s") || exit 1
wait_for 30 sh -c "stint task show '$exp' --json | grep -q '\"expired\"'" ||
	note "task $exp not reported expired yet"
expired() { st && [ "$(get task_expires)" = 1 ]; }
wait_for 30 expired || { cat "$T/status.json"; fail "the expiry was not counted"; }

st
cat "$T/status.json"
expect sign_allowed "$N"
expect sign_refused "$((M_OTHER + M_ENDED + 1))"
expect sign_refused_by_reason.not_yours "$M_OTHER"
expect sign_refused_by_reason.not_live "$M_ENDED"
expect sign_refused_by_reason.mechanism 1
expect sign_refused_by_reason.no_agent 0
expect task_starts "$((K + 1))"
expect task_ends "$K"
expect task_expires 1
expect backend_errors 0
expect audit_write_failures 0
expect audit_pending 0
expect live_tasks 0
bytes=$(get audit_bytes)
size=$(stat -c %s "$(get audit_path)")
[ "$bytes" -gt "$bytes0" ] || fail "audit_bytes did not grow: $bytes0 -> $bytes"
[ "$bytes" -le "$size" ] || fail "audit_bytes $bytes is more than the file's $size bytes"

# The text form carries them too.
stint status >"$T/status.txt" || fail "stint status"
cat "$T/status.txt"
grep -q "^signatures *$N allowed, $((M_OTHER + M_ENDED + 1)) refused (not_yours $M_OTHER, not_live $M_ENDED, mechanism 1)\$" "$T/status.txt" ||
	fail "stint status has no signatures line with the counts"
grep -q "^tasks *$((K + 1)) started, $K ended, 1 expired\$" "$T/status.txt" ||
	fail "stint status has no tasks line with the counts"
# docs/operations.md's Prometheus textfile collector, run as written (only
# its output directory changed): the counters as a monitoring system sees
# them.
mkdir "$T/prom"
"$PYTHON" - "$top_srcdir/docs/operations.md" "$T/prom" >"$T/prom.sh" <<'PY' ||
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"\*\*Prometheus\*\*.*?\n( *)```sh\n(.*?)\n\1```", text, re.S)
if not m:
    sys.exit("docs/operations.md: no sh block under **Prometheus**")
lines = [l[len(m.group(1)):] for l in m.group(2).split("\n")]
assert lines[0].startswith("dir="), lines[0]
print("\n".join(["dir=" + sys.argv[2]] + lines[1:]))
PY
	fail "cannot extract the Prometheus snippet from docs/operations.md"
(. "$T/prom.sh") || { cat "$T/prom.sh"; fail "the documented Prometheus snippet failed"; }
prom=$T/prom/stint.prom
[ -s "$prom" ] || fail "the Prometheus snippet wrote no $prom"
cat "$prom"
! grep -vE '^stint_[a-z_]+(\{reason="[a-z_]+"\})? [0-9]+$' "$prom" ||
	fail "lines that are not Prometheus text format"
for m in "stint_sign_allowed_total $N" "stint_task_starts_total $((K + 1))" \
	"stint_task_ends_total $K" "stint_task_expires_total 1" "stint_live_tasks 0" \
	'stint_sign_refused_total{reason="not_yours"} '"$M_OTHER" \
	'stint_sign_refused_total{reason="not_live"} '"$M_ENDED" \
	'stint_sign_refused_total{reason="mechanism"} 1' "stint_audit_pending 0" \
	"stint_backend_errors_total 0" "stint_audit_write_failures_total 0"; do
	grep -qxF "$m" "$prom" || fail "stint.prom lacks '$m'"
done
echo "ok: status counters"
