#!/bin/bash
# Task start/end cycles (issue 8 item 11): stintd's resident memory and the
# size of state.db (and its WAL) and of the evidence directory after every
# N / STEPS cycles, so growth shows as a trend. `make bench` runs it after
# bench.sh; by hand:
#
#	top_builddir=/tmp/build tests/bench/cycles.sh
#
# Knobs (environment): BENCH_CYCLES (10000), BENCH_CYCLE_STEPS (5),
# BENCH_CYCLE_RETENTION (unset: the default 30d, so nothing is pruned during
# the run; e.g. 1s to measure with retention pruning as it goes),
# BENCH_CYCLE_PACE_MS (1: pause after each task end, lets the key pool refill),
# BENCH_CYCLE_SOFTHSM (1: afterwards, the same number of EC P-256 key pair
# generations and destructions straight against SoftHSM2, in one process
# with nothing else loaded (tests/integration/orphan_key churn), so its own
# growth per cycle can be set against stintd's; 0 skips it),
# BENCH_CYCLE_MASSIF (0; 1: run stintd under valgrind's massif, take a heap
# snapshot after the first step and after the last, and print the heap's
# growth per cycle by owner: stintd's own code, SoftHSM2, SQLite
# (tests/bench/massif_owners.py); exits 1 if stintd's own heap grew by more
# than BENCH_CYCLE_MAX_OWN_B (64) bytes per cycle. Slow: use e.g.
# BENCH_CYCLES=500).
#
# SoftHSM2's C_GenerateKeyPair sometimes fails (CKR_GENERAL_ERROR); a step
# then goes on with the cycles it still owes, and the failures are counted
# (up to 5).
. "$(cd "$(dirname "$0")/../integration" && pwd)/lib.sh"

N=${BENCH_CYCLES:-10000}
STEPS=${BENCH_CYCLE_STEPS:-5}
PACE=${BENCH_CYCLE_PACE_MS:-1}
RET=${BENCH_CYCLE_RETENTION:-}
HSM_ALONE=${BENCH_CYCLE_SOFTHSM:-1}
MASSIF=${BENCH_CYCLE_MASSIF:-0}
MAX_OWN_B=${BENCH_CYCLE_MAX_OWN_B:-64}
ADMIN_BENCH=${ADMIN_BENCH:-$top_builddir/tests/bench/admin_bench}
ORPHAN_KEY=$top_builddir/tests/integration/orphan_key
[ -x "$ADMIN_BENCH" ] || skip "no $ADMIN_BENCH (make tests/bench/admin_bench)"
[ "$STEPS" -ge 2 ] && [ "$N" -ge "$STEPS" ] || fail "BENCH_CYCLES must be >= BENCH_CYCLE_STEPS >= 2"
stint_tmpdir
backend_init
stintd_config ${RET:+retention=$RET}
if [ "$MASSIF" = 1 ]; then
	need_cmd valgrind vgdb
	cat >"$T/massif.sh" <<EOF
#!/bin/sh
exec valgrind --tool=massif --threshold=0 --depth=40 --vgdb=yes \
	--massif-out-file="$T/massif.out" "$STINTD" "\$@"
EOF
	chmod 0755 "$T/massif.sh"
	STINTD=$T/massif.sh
	STINT_SANITIZERS=yes # stintd_start: wait longer for a slow start
fi
stintd_start
agent_add bench "$(id -u)"

failed_starts=0
# run_cycles N: N start/end cycles; carries on after SoftHSM2's sporadic
# CKR_GENERAL_ERROR (the failed start created nothing).
run_cycles()
{
	local left=$1 k

	while [ "$left" -gt 0 ]; do
		"$ADMIN_BENCH" --socket "$T/run/admin.sock" --agent bench \
			--count "$left" --pace "$PACE" >"$T/cycles.out" 2>&1 && return 0
		k=$(sed -n 's/^admin_bench: task start \([0-9]*\) failed$/\1/p' "$T/cycles.out")
		if [ -z "$k" ] || ! grep -q "CKR_GENERAL_ERROR" "$T/cycles.out" ||
			[ "$failed_starts" -ge 5 ]; then
			cat "$T/cycles.out" >&2
			return 1
		fi
		failed_starts=$((failed_starts + 1))
		left=$((left - k))
	done
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$STINTD_PID/status"; }

kb() { du -k "$1" 2>/dev/null | cut -f1; }
report()
{
	printf '  %6s cycles: VmRSS %6s kB  state.db %7s kB  WAL %6s kB  evidence files %6s  (%s s)\n' \
		"$1" "$(rss_kb)" \
		"$(kb "$T/state/state.db")" "$(kb "$T/state/state.db-wal")" \
		"$(find "$T/state/evidence" -type f | wc -l)" "$((SECONDS - t0))"
}

echo "== stintd after $N task start/end cycles (EC P-256, pace ${PACE} ms, retention ${RET:-30d (default)}) =="
t0=$SECONDS
report 0
per=$((N / STEPS))
done_n=0
for ((s = 1; s <= STEPS; s++)); do
	[ "$s" -eq "$STEPS" ] && per=$((N - done_n))
	run_cycles "$per" || fail "admin_bench failed after $done_n cycles"
	done_n=$((done_n + per))
	report "$done_n"
	if [ "$s" -eq 1 ]; then
		first_n=$done_n
		first_rss=$(rss_kb)
		[ "$MASSIF" = 1 ] && vgdb --pid="$STINTD_PID" detailed_snapshot "$T/massif.first" >/dev/null 2>&1
	fi
done
grep '^start\|^end' "$T/cycles.out" | sed 's/^/  last step: /'
[ "$failed_starts" -eq 0 ] || echo "  ($failed_starts task starts failed with SoftHSM2's CKR_GENERAL_ERROR and were not counted)"
measured=$((done_n - first_n))
echo "  stintd VmRSS growth after the first step: $(((($(rss_kb) - first_rss) * 1000) / measured)) B/cycle over $measured cycles"
own=0
if [ "$MASSIF" = 1 ]; then
	vgdb --pid="$STINTD_PID" detailed_snapshot "$T/massif.last" >/dev/null 2>&1
	"$PYTHON" "$top_srcdir/tests/bench/massif_owners.py" "$top_srcdir" \
		"$T/massif.first" "$T/massif.last" "$measured" "$MAX_OWN_B" || own=1
fi
stintd_stop
[ "$own" -eq 0 ] || fail "stintd's own heap grows with every task start/end cycle (a leak in our code)"

[ "$HSM_ALONE" = 1 ] && [ "$STINT_TEST_BACKEND" = softhsm ] || exit 0
[ -x "$ORPHAN_KEY" ] || skip "no $ORPHAN_KEY (make tests/integration/orphan_key)"
echo "== SoftHSM2 alone: $N EC P-256 key pairs generated and destroyed in one process =="
"$ORPHAN_KEY" "$SOFTHSM_MODULE" "$HSM_LABEL" "$HSM_PIN_FILE" churn "$N" >"$T/churn.out" 2>&1 ||
	{ cat "$T/churn.out" >&2; fail "orphan_key churn failed"; }
sed 's/^/  /' "$T/churn.out"
awk '/^churn/ { c[++k] = $2 + 0; r[k] = $4 }
	END { if (k >= 2) printf "  SoftHSM2 VmRSS growth after the first quarter: %d B/cycle over %d cycles\n", (r[k] - r[1]) * 1000 / (c[k] - c[1]), c[k] - c[1] }' "$T/churn.out"
