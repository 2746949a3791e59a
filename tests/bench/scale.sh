#!/bin/bash
# Token size (issue 14): task start and task end as the token fills. One
# stintd (SoftHSM2, key_pool 4) and two agents: "fill" holds L live tasks
# (L = each of BENCH_SCALE_SIZES in turn, the token growing between sizes),
# "probe" is timed at that size. At each L:
#
#   start/end in a row: admin_bench --count N (N starts one after another,
#     then their N ends): the ready keys run out after 4, so the starts are
#     mostly key generations;
#   paced: admin_bench --count N --pace 300 (each start ended at once, 300 ms
#     apart): a ready key is there for every start;
#   token calls per task (BENCH_SCALE_TRACE=1, default): the same paced run
#     once more under strace -f -c on stintd: syscalls per start+end cycle,
#     which do not depend on the machine's load.
#
# At the last size it times `stint agent remove fill`: ending the agent's L
# tasks and destroying their keys. Prints a table with the ratios against
# the first size. `make bench` runs it; by hand:
#
#	top_builddir=/tmp/build tests/bench/scale.sh
#
# Knobs (environment): BENCH_SCALE_SIZES ("10 1000 5000"; filling 5,000 with
# a slow build takes long, e.g. "10 500 2000"), BENCH_SCALE_N (30),
# BENCH_SCALE_TRACE (1), BENCH_SCALE_STRACE_DIR (unset; a directory to keep
# strace's table for each L in), BENCH_SCALE_REMOVE (1: time the agent
# removal), BENCH_SCALE_REMOVE_MAX (3600 s: give up waiting for it),
# BENCH_SCALE_REMOVE_TRACE (0; 1: count stintd's syscalls per removed task
# with strace, which slows the removal down).
. "$(cd "$(dirname "$0")/../integration" && pwd)/lib.sh"

SIZES=${BENCH_SCALE_SIZES:-10 1000 5000}
N=${BENCH_SCALE_N:-30}
TRACE=${BENCH_SCALE_TRACE:-1}
REMOVE=${BENCH_SCALE_REMOVE:-1}
REMOVE_MAX=${BENCH_SCALE_REMOVE_MAX:-3600}
ADMIN_BENCH=${ADMIN_BENCH:-$top_builddir/tests/bench/admin_bench}
[ -x "$ADMIN_BENCH" ] || skip "no $ADMIN_BENCH (make tests/bench/admin_bench)"
[ "$STINT_TEST_BACKEND" = softhsm ] || skip "token size is a SoftHSM2 bench"
[ "$TRACE" = 1 ] && { command -v strace >/dev/null 2>&1 || TRACE=0; }
stint_tmpdir
backend_init
stintd_config max_ttl=24h default_ttl=24h
stintd_start
agent_add fill "$(id -u)"
agent_add probe "$(free_uid 47000)"

ab() { "$ADMIN_BENCH" --socket "$T/run/admin.sock" "$@"; }
# field NAME LINE: the value of NAME=... in an admin_bench line.
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
live=0
# fill L: start tasks for agent fill until L are live (retries SoftHSM2's
# sporadic CKR_GENERAL_ERROR at generation: the failed start left nothing).
fill()
{
	local want=$1 tries=0 before

	while [ "$live" -lt "$want" ]; do
		ab --agent fill --keep --count $((want - live)) >"$T/fill.out" 2>&1
		before=$live
		live=$(stint task list --json 2>/dev/null | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
t = d["tasks"] if isinstance(d, dict) else d
print(sum(1 for x in t if x.get("agent") == "fill" and x.get("state") == "live"))')
		[ "$live" -gt "$before" ] || tries=$((tries + 1))
		[ "$tries" -lt 5 ] || { cat "$T/fill.out" >&2; fail "cannot fill the token to $want"; }
	done
}

# cycles_syscalls: syscalls stintd makes per paced start+end (strace -c).
cycles_syscalls()
{
	local sp n=10

	strace -f -c -o "$T/strace.out" -p "$STINTD_PID" 2>/dev/null &
	sp=$!
	sleep 1
	ab --agent probe --count $n --pace 300 >/dev/null 2>&1
	sleep 0.5
	kill -INT "$sp" 2>/dev/null
	wait "$sp" 2>/dev/null
	[ -z "${BENCH_SCALE_STRACE_DIR:-}" ] || cp "$T/strace.out" "$BENCH_SCALE_STRACE_DIR/strace-$1.txt"
	# all syscalls / pread64 (SQLite reading state.db) per cycle
	awk -v n=$n '$NF == "total" { t = $4 } $NF == "pread64" { p = $4 }
		END { printf "%d / %d", t / n, p / n }' "$T/strace.out"
}

rows=()
first_s= first_e= first_p=
echo "== token size: task start/end with L live tasks (SoftHSM2 file store, EC P-256, key_pool 4, N=$N) =="
echo "   load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for L in $SIZES; do
	t0=$SECONDS
	fill "$L"
	tf=$((SECONDS - t0))
	row=$(ab --agent probe --count "$N" 2>&1) || { echo "$row" >&2; fail "admin_bench at L=$L failed"; }
	s=$(field p50_ms "$(grep '^start' <<<"$row")")
	e=$(field p50_ms "$(grep '^end' <<<"$row")")
	row=$(ab --agent probe --count "$N" --pace 300 2>&1) || { echo "$row" >&2; fail "paced admin_bench at L=$L failed"; }
	ps=$(field p50_ms "$(grep '^start' <<<"$row")")
	pe=$(field p50_ms "$(grep '^end' <<<"$row")")
	sc=-
	[ "$TRACE" = 1 ] && sc=$(cycles_syscalls "$L")
	: "${first_s:=$s}" "${first_e:=$e}" "${first_p:=$pe}"
	rows+=("$(printf '| %6s | %8s | %8s | %8s | %8s | %5.1fx | %5.1fx | %5.1fx | %13s | %5s s | %s |' \
		"$L" "$s" "$e" "$ps" "$pe" \
		"$(echo "$s / $first_s" | bc -l)" "$(echo "$e / $first_e" | bc -l)" \
		"$(echo "$pe / $first_p" | bc -l)" "$sc" "$tf" "$(cut -d' ' -f1 /proc/loadavg)")")
done
echo "| live L | start p50 ms (in a row) | end p50 ms | paced start p50 | paced end p50 | start vs first | end vs first | paced end vs first | syscalls / pread64 per paced start+end | fill time | load |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
# destroyed_fill: key-destroy records for agent fill so far.
destroyed_fill() { grep '"event":"key-destroy"' "$AUDIT_LOG" | grep -c '"agent":"fill"'; }
if [ "$REMOVE" = 1 ]; then
	# The CLI gives up after 30 s; stintd goes on destroying the keys
	# (each audited as key-destroy), so the time is taken from the audit
	# log: until the last of the agent's keys is gone.
	d0=$(destroyed_fill)
	# BENCH_SCALE_REMOVE_TRACE=1: stintd's syscalls during the removal
	# (strace -f -c; slows it down, so the time is then not comparable)
	if [ "${BENCH_SCALE_REMOVE_TRACE:-0}" = 1 ]; then
		strace -f -c -o "$T/strace-remove.out" -p "$STINTD_PID" 2>/dev/null &
		rsp=$!
		sleep 1
	fi
	t0=$(date +%s.%N)
	stint agent remove fill >"$T/remove.out" 2>&1
	until [ "$(($(destroyed_fill) - d0))" -ge "$live" ]; do
		[ "$(echo "$(date +%s.%N) - $t0 > $REMOVE_MAX" | bc)" = 0 ] ||
			fail "the keys of agent fill not destroyed within $REMOVE_MAX s ($(($(destroyed_fill) - d0)) of $live)"
		sleep 0.2
	done
	t1=$(date +%s.%N)
	if [ -n "${rsp:-}" ]; then
		kill -INT "$rsp" 2>/dev/null
		wait "$rsp" 2>/dev/null
		echo "  stintd's syscalls during the removal, per task:"
		awk -v n="$live" '$4 ~ /^[0-9]+$/ && $4 / n >= 1 {
			printf "    %-16s %8.1f\n", $NF, $4 / n }' "$T/strace-remove.out"
		[ -z "${BENCH_SCALE_STRACE_DIR:-}" ] || cp "$T/strace-remove.out" "$BENCH_SCALE_STRACE_DIR/strace-remove.txt"
	fi
	printf '  stint agent remove fill: %s live tasks ended and their keys destroyed in %.1f s, %.1f ms per task\n' \
		"$live" "$(echo "$t1 - $t0" | bc -l)" "$(echo "($t1 - $t0) * 1000 / $live" | bc -l)"
fi
echo "   load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
stintd_stop
