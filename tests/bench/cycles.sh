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
# BENCH_CYCLE_PACE_MS (1: pause after each task end, lets the key pool refill).
. "$(cd "$(dirname "$0")/../integration" && pwd)/lib.sh"

N=${BENCH_CYCLES:-10000}
STEPS=${BENCH_CYCLE_STEPS:-5}
PACE=${BENCH_CYCLE_PACE_MS:-1}
RET=${BENCH_CYCLE_RETENTION:-}
ADMIN_BENCH=${ADMIN_BENCH:-$top_builddir/tests/bench/admin_bench}
[ -x "$ADMIN_BENCH" ] || skip "no $ADMIN_BENCH (make tests/bench/admin_bench)"
[ "$STEPS" -ge 1 ] && [ "$N" -ge "$STEPS" ] || fail "BENCH_CYCLES must be >= BENCH_CYCLE_STEPS >= 1"
stint_tmpdir
backend_init
stintd_config ${RET:+retention=$RET}
stintd_start
agent_add bench "$(id -u)"

kb() { du -k "$1" 2>/dev/null | cut -f1; }
report()
{
	printf '  %6s cycles: VmRSS %6s kB  state.db %7s kB  WAL %6s kB  evidence files %6s  (%s s)\n' \
		"$1" "$(awk '/^VmRSS/ {print $2}' "/proc/$STINTD_PID/status")" \
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
	"$ADMIN_BENCH" --socket "$T/run/admin.sock" --agent bench \
		--count "$per" --pace "$PACE" >"$T/cycles.out" 2>&1 ||
		{ cat "$T/cycles.out" >&2; fail "admin_bench failed after $done_n cycles"; }
	done_n=$((done_n + per))
	report "$done_n"
done
grep '^start\|^end' "$T/cycles.out" | sed 's/^/  last step: /'
stintd_stop
