#!/bin/bash
# Integration test 8: revocation is synchronous under load. Four (or more)
# processes sign in a loop while `stint task end` runs; the test creates a
# marker file right after `task end` returns, and each client counts the
# signatures that succeeded for requests sent after the marker existed:
# every count must be zero. stintd keeps running and the key is gone.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
stint_setup
need_p11client
agent_add alpha "$(id -u)"
head -c 32 /dev/urandom >"$T/digest"
clients=${RACE_CLIENTS:-6}
# On the TPM (~10 ms a signature, one at a time) four clients keep a SIGN
# in flight at every moment: task end must still get the revoke lock (it
# starved when the lock preferred readers).
if [ "$STINT_TEST_BACKEND" = tpm ] && [ -z "${RACE_CLIENTS:-}" ]; then
	clients=4
fi

# True once TASK has sign-allowed records from N different client pids.
signers_ge()
{
	"$PYTHON" - "$1" "$2" "$AUDIT_LOG" <<'PY'
import json, sys
task, want, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pids = set()
for line in open(path, "rb"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("task") == task and r.get("event") == "sign-allowed":
        pids.add((r.get("peer") or {}).get("pid"))
sys.exit(0 if len(pids) >= want else 1)
PY
}
for round in 1 2 3; do
	id=$(task_start alpha --ttl 10m) || exit 1
	marker=$T/ended.$round
	pids=()
	for ((c = 0; c < clients; c++)); do
		p11client --token alpha --label "$id" --mech ecdsa --in "$T/digest" \
			--until-refused --after-file "$marker" --seconds 60 \
			>"$T/client.$round.$c.out" 2>&1 &
		pids+=($!)
		bg_track $!
	done
	# Let them get going, then end the task in the middle of the traffic:
	# once every client has signed, not after a fixed time (a loaded
	# machine can take seconds to start a client, which then finds no key).
	wait_for 60 signers_ge "$id" "$clients" ||
		{ cat "$T"/client.$round.*.out; fail "round $round: not all $clients clients signed within 60 s"; }
	for p in "${pids[@]}"; do
		kill -0 "$p" 2>/dev/null || { cat "$T"/client.$round.*.out; fail "a client stopped before task end"; }
	done
	before=$(audit_count "$id" sign-allowed)
	stint task end "$id" >"$T/end.out" 2>&1 || { cat "$T/end.out"; fail "task end under load"; }
	touch "$marker"
	for ((c = 0; c < clients; c++)); do
		wait "${pids[$c]}"
		rc=$?
		out=$T/client.$round.$c.out
		ok=$(sed -n 's/^after_marker_ok=//p' "$out")
		[ -n "$ok" ] || { cat "$out"; fail "client $c (exit $rc) did not report after_marker_ok"; }
		[ "$ok" -eq 0 ] || { cat "$out"; fail "round $round: client $c got $ok signatures after task end returned"; }
		grep -q 'CKR_KEY_FUNCTION_NOT_PERMITTED' "$out" ||
			{ cat "$out"; fail "client $c was not refused with CKR_KEY_FUNCTION_NOT_PERMITTED"; }
	done
	stintd_alive || fail "stintd died during the race"
	backend_has_key "$id" && fail "round $round: key of ended task still in the backend"
	after=$(audit_count "$id" sign-allowed)
	note "round $round: $clients clients, $before signatures before task end, $after in all, 0 after"
	[ "$before" -gt 0 ] || fail "round $round: no signature before task end (the race did not happen)"
	# Identical refusals of one uid are counted into an aggregate record
	# written at the end of its interval (docs/audit.md): one of their
	# own at least.
	[ "$(audit_count "$id" sign-refused)" -ge 1 ] ||
		fail "round $round: the refusals after task end were not audited"
done

stintd_stop
