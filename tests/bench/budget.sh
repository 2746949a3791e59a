#!/bin/bash
# Budgeted against unbudgeted signing (issue 14: "budgeted tasks within 10%
# of unbudgeted ones"). ECDSA P-256 on SoftHSM2 through stintd, one client
# process and two, for BENCH_SECONDS each; in every round the budgeted and
# the unbudgeted task take turns (order swapped every round, so drift in
# the machine's load spreads over both), and the round's ratio is
# budgeted / unbudgeted. Prints per-round lines, then the medians. Also
# stintd's CPU time per signature (/proc/PID/stat, all threads) for each.
# A measurement, not a test: it fails only when signing fails.
#
#	make bench
#	top_builddir=/tmp/build tests/bench/budget.sh
#	BENCH_AB_BUILD=/tmp/main/_build tests/bench/budget.sh
#
# With BENCH_AB_BUILD, the same rounds run alternately against that build
# (e.g. the one before budget blocks) and this one, each round in a fresh
# stintd, and the medians are given per build.
#
# Knobs: BENCH_SECONDS (3), BENCH_ROUNDS (5), BENCH_QUICK=1 (1 s, 2 rounds).

. "$(cd "$(dirname "$0")/../integration" && pwd)/lib.sh"
. "$top_srcdir/tests/bench/stats.sh"

SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-5}
if [ -n "${BENCH_QUICK:-}" ]; then
	SECS=1 ROUNDS=2
fi

# col_median DIGITS FILE N: the median of the values (the part after "=")
# in column N of the round lines in FILE.
col_median()
{
	# shellcheck disable=SC2046
	median_p "$1" $(awk -v n="$3" '{ v = $n; sub(/.*=/, "", v); print v }' "$2")
}

# medians FILE: the medians of the round lines in FILE, each to the
# decimals of its per-round figure.
medians()
{
	printf 'median: unbudgeted=%s/s budgeted=%s/s ratio=%s cpu_us unbudgeted=%s budgeted=%s\n' \
		"$(col_median 0 "$1" 4)" "$(col_median 0 "$1" 5)" \
		"$(col_median 3 "$1" 6)" "$(col_median 1 "$1" 7)" \
		"$(col_median 1 "$1" 8)"
}

# --- A/B: rounds alternating between two builds, each its own run -----------
if [ -n "${BENCH_AB_BUILD:-}" ] && [ -z "${BENCH_ONE:-}" ]; then
	self=$0
	out=$(mktemp -d "${TMPDIR:-/tmp}/stint-bench-budget.XXXXXX")
	trap 'rm -rf "$out"' EXIT
	echo "Budget blocks A/B, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "A: $BENCH_AB_BUILD"
	echo "B: $top_builddir"
	echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (at start)"
	for ((r = 1; r <= ROUNDS; r++)); do
		for b in A B; do
			[ $b = A ] && d=$BENCH_AB_BUILD || d=$top_builddir
			BENCH_ONE=1 BENCH_ROUNDS=1 BENCH_ROUND_NO=$r \
				top_builddir=$d bash "$self" >"$out/$b.$r" 2>&1 ||
				{ cat "$out/$b.$r"; exit 1; }
			sed -n "s/^round /$b round /p" "$out/$b.$r"
		done
	done
	echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (at end)"
	for b in A B; do
		# shellcheck disable=SC2046
		printf '%s state.db writes per 500 budgeted signatures: %s\n' $b \
			"$(median $(cat "$out"/$b.* | sed -n 's/.*state_db_writes_per_500_budgeted=//p'))"
	done
	for b in A B; do
		for c in 1 2; do
			cat "$out"/$b.* | awk -v c=$c '$1 == "round" && $3 == "clients=" c' >"$out/$b.c$c"
			echo "$b clients=$c $(medians "$out/$b.c$c")"
		done
	done
	exit 0
fi

# --- one build ----------------------------------------------------------------
export STINT_TEST_BACKEND=softhsm
need_p11client
stint_tmpdir
stint_setup max_ttl=2h default_ttl=1h
agent_add bench "$(id -u)" >/dev/null
head -c 32 /dev/urandom >"$T/digest"
free_t=$(task_start bench --ttl 1h) || exit 1
budget_t=$(task_start bench --ttl 1h --max-signatures 1000000000) || exit 1

# stintd's CPU time so far, in clock ticks (utime + stime, every thread).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$STINTD_PID/stat"; }

# run TASK CLIENTS: prints "RATE CPU_US_PER_SIGNATURE".
run()
{
	local t=$1 c=$2 i c0 c1 sum=0 n=0 pids=()

	c0=$(cpu_ticks)
	for ((i = 0; i < c; i++)); do
		p11client --token bench --label "$t" --mech ecdsa \
			--in "$T/digest" --seconds "$SECS" >"$T/r$i" 2>&1 &
		pids+=($!)
	done
	for ((i = 0; i < c; i++)); do
		wait "${pids[$i]}" || { cat "$T/r$i" >&2; fail "signing failed"; }
		sum=$(awk -v s="$sum" -v r="$(sed -n 's/.*rate=\([0-9.]*\).*/\1/p' "$T/r$i")" \
			'BEGIN { print s + r }')
		n=$((n + $(sed -n 's/^ok=//p' "$T/r$i")))
	done
	c1=$(cpu_ticks)
	awk -v s="$sum" -v d=$((c1 - c0)) -v n="$n" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.0f %.1f\n", s, n ? d * 1e6 / hz / n : 0 }'
}

# Warm up both tasks (prepared operations, caches).
run "$free_t" 1 >/dev/null
run "$budget_t" 1 >/dev/null
[ -n "${BENCH_ONE:-}" ] || {
	echo "Budgeted vs unbudgeted signing, $(date -u +%Y-%m-%dT%H:%M:%SZ), $top_builddir"
	echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (at start)"
}
for ((r = 1; r <= ROUNDS; r++)); do
	no=${BENCH_ROUND_NO:-$r}
	for c in 1 2; do
		if ((no % 2)); then
			run "$free_t" $c >"$T/f" && run "$budget_t" $c >"$T/b"
		else
			run "$budget_t" $c >"$T/b" && run "$free_t" $c >"$T/f"
		fi
		read -r fu fc <"$T/f"
		read -r bu bc <"$T/b"
		echo "round $no clients=$c unbudgeted=$fu budgeted=$bu" \
			"ratio=$(ratio "$bu" "$fu" 3)" \
			"cpu_us_unbudgeted=$fc cpu_us_budgeted=$bc" \
			"load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$T/rounds"
	done
done
# Writes to state.db and its WAL over 500 budgeted signatures (strace;
# the same whatever the load): once per block, or per signature before.
if command -v strace >/dev/null 2>&1; then
	strace -f -qq -y -e trace=pwrite64,write,fdatasync,fsync \
		-o "$T/strace.out" -p "$STINTD_PID" 2>/dev/null &
	st=$!
	sleep 1
	p11client --token bench --label "$budget_t" --mech ecdsa \
		--in "$T/digest" --count 500 >/dev/null 2>&1 || fail "500 signatures under strace"
	sleep 0.5
	kill -INT "$st"
	wait "$st" 2>/dev/null
	echo "round ${BENCH_ROUND_NO:-0} state_db_writes_per_500_budgeted=$(grep -c 'state\.db' "$T/strace.out")"
fi
if [ -z "${BENCH_ONE:-}" ]; then
	for c in 1 2; do
		awk -v c=$c '$3 == "clients=" c' "$T/rounds" >"$T/c"
		echo "clients=$c $(medians "$T/c")"
	done
	echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (at end)"
fi
stintd_stop
