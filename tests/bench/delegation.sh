#!/bin/bash
# Delegation benchmark (issue 10 §7). Prints numbers; not a pass/fail test
# (it fails only when an operation fails). Run from an optimized build:
#
#	make bench            (runs this after the other benches)
#	top_builddir=/tmp/build tests/bench/delegation.sh
#
# On SoftHSM2, in one stintd, in the same run:
#  1. latency of DELEGATE over agent.sock (a child task of a live parent)
#     next to TASK_START over admin.sock, both through admin_bench (one
#     fresh connection per request, EC P-256 key generation and certificate
#     issuance included), in ABBA order so that drift in the machine's load
#     spreads over both; the target is DELEGATE p50 within 1.2x of start;
#  2. the same through the CLI (`stint delegate` next to `stint task
#     start`, interleaved; process spawn included);
#  3. `stint task end ROOT` on a tree of 100 live tasks (the root, 9
#     children, 90 grandchildren), built over admin.sock with `stint task
#     delegate`: the time until the command returns, and per task. Every
#     task of the tree is checked ended afterwards.
#
# Knobs: DELEG_N (100 requests per latency round), DELEG_CLI (30 CLI pairs),
# DELEG_TREES (3 trees ended), BENCH_QUICK=1 (30 / 10 / 1: a smoke run).

. "$(cd "$(dirname "$0")/../integration" && pwd)/lib.sh"
. "$top_srcdir/tests/bench/stats.sh"

N=${DELEG_N:-100}
NCLI=${DELEG_CLI:-30}
NTREES=${DELEG_TREES:-3}
if [ -n "${BENCH_QUICK:-}" ]; then
	N=30 NCLI=10 NTREES=1
fi
ADMIN_BENCH=$top_builddir/tests/bench/admin_bench
[ -x "$ADMIN_BENCH" ] || skip "no $ADMIN_BENCH (make bench builds it)"
export STINT_TEST_BACKEND=softhsm
stint_tmpdir
stint_setup max_ttl=2h default_ttl=1h
me=$(id -u)
# lead delegates to sub, sub to leaf: root, children, grandchildren.
agent_add lead "$me" --delegate-to sub --max-depth 2
agent_add sub 4401 --delegate-to leaf --max-depth 2
agent_add leaf 4402

now_ns() { date +%s%N; }

# field KEY LINE: the value of KEY=value in an admin_bench line.
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

echo "Stint delegation benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine:  $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, at start)"
echo "backend:  SoftHSM $(softhsm2-util --version 2>/dev/null), EC P-256 keys"
echo

# --- 1. DELEGATE vs task start, admin_bench, ABBA ---------------------------

# start_round: N task starts over admin.sock, then N task ends (their
# latency appended to $T/end.lines).
start_round()
{
	"$ADMIN_BENCH" --socket "$T/run/admin.sock" --agent lead --ttl 1800 \
		--count "$N" >"$T/ab.out" 2>&1 ||
		{ cat "$T/ab.out" >&2; fail "admin_bench task start failed"; }
	grep '^end ' "$T/ab.out" >>"$T/end.lines"
	grep '^start ' "$T/ab.out"
}

# delegate_round: N children of a fresh parent over agent.sock, as the
# parent's agent (this uid); the parent is ended afterwards (cascade of N
# flat children), and that end is timed into $T/flat.ms.
delegate_round()
{
	local parent t0 t1

	parent=$(task_start lead --ttl 1h)
	"$ADMIN_BENCH" --socket "$T/run/agent.sock" --agent sub --ttl 1800 \
		--parent "$parent" --count "$N" >"$T/ab.out" 2>&1 ||
		{ cat "$T/ab.out" >&2; fail "admin_bench delegate failed"; }
	t0=$(now_ns)
	stint task end "$parent" >/dev/null || fail "task end $parent failed"
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000000)) >>"$T/flat.ms"
	grep '^start ' "$T/ab.out"
}

printf 'protocol latency (ABBA, %d each) ' "$N"
S1=$(start_round)
printf .
D1=$(delegate_round)
printf .
D2=$(delegate_round)
printf .
S2=$(start_round)
echo .

# --- 2. the CLI, interleaved -------------------------------------------------

printf 'CLI latency (%d pairs) ' "$NCLI"
CLI_PARENT=$(task_start lead --ttl 1h)
: >"$T/cli.start"
: >"$T/cli.deleg"
: >"$T/cli.end"
for ((i = 0; i < NCLI; i++)); do
	t0=$(now_ns)
	id=$(stint task start --agent lead --ttl 30m -q) || fail "task start"
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000)) >>"$T/cli.start"
	t0=$(now_ns)
	stint task end "$id" >/dev/null || fail "task end $id"
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000)) >>"$T/cli.end"
	t0=$(now_ns)
	stint delegate --parent "$CLI_PARENT" --agent sub --ttl 30m --json \
		>/dev/null || fail "stint delegate"
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000)) >>"$T/cli.deleg"
done
stint task end "$CLI_PARENT" >/dev/null || fail "task end $CLI_PARENT"
echo .

# --- 3. ending a tree of 100 tasks --------------------------------------------

# build_tree: prints the root; 9 children of it, 10 grandchildren each.
build_tree()
{
	local root child j k

	root=$(task_start lead --ttl 1h)
	for ((j = 0; j < 9; j++)); do
		child=$(stint task delegate "$root" --agent sub --ttl 50m --json |
			json_get id) || fail "task delegate $root"
		for ((k = 0; k < 10; k++)); do
			stint task delegate "$child" --agent leaf --ttl 40m \
				--json >/dev/null || fail "task delegate $child"
		done
	done
	echo "$root"
}

# tree_ids ROOT: the ids of the live tree, one a line.
tree_ids()
{
	stint task tree "$1" --json | "$PYTHON" -c '
import json, sys
for t in json.load(sys.stdin):
    print(t["id"])'
}

TREE_MS=()
for ((r = 0; r < NTREES; r++)); do
	printf 'tree %d: building ' "$((r + 1))"
	root=$(build_tree)
	tree_ids "$root" >"$T/tree.ids"
	size=$(wc -l <"$T/tree.ids")
	[ "$size" -eq 100 ] || fail "the tree has $size live tasks, not 100"
	printf 'ending '
	t0=$(now_ns)
	stint task end "$root" >/dev/null || fail "task end $root (tree)"
	t1=$(now_ns)
	TREE_MS+=($(((t1 - t0) / 1000)))
	# Every task of the tree is ended once the command has returned.
	while read -r id; do
		st=$(stint task show "$id" --json | json_get state)
		[ "$st" = ended ] || fail "tree task $id is '$st' after task end"
	done <"$T/tree.ids"
	echo "done (all 100 ended)"
done

# --- report -------------------------------------------------------------------

echo
echo "== DELEGATE (agent.sock) vs task start (admin.sock), admin_bench, $N per round =="
echo "  A task start:  ${S1#start }"
echo "  B delegate:    ${D1#start }"
echo "  B delegate:    ${D2#start }"
echo "  A task start:  ${S2#start }"
for k in p50_ms p99_ms; do
	a=$(awk -v x="$(field "$k" "$S1")" -v y="$(field "$k" "$S2")" \
		'BEGIN { printf "%.2f", (x + y) / 2 }')
	b=$(awk -v x="$(field "$k" "$D1")" -v y="$(field "$k" "$D2")" \
		'BEGIN { printf "%.2f", (x + y) / 2 }')
	printf '  %s: task start %s, delegate %s, delegate/start = %s (target <= 1.20)\n' \
		"${k%_ms}" "$a" "$b" "$(ratio "$b" "$a")"
done
while read -r l; do
	echo "  (task end of one task, admin_bench: ${l#end })"
done <"$T/end.lines"
echo "  stint task end of a parent with $N flat children (ms): $(tr '\n' ' ' <"$T/flat.ms")"
echo
echo "== the same through the CLI (process spawn included), $NCLI interleaved pairs =="
CS=$(pcts "$T/cli.start")
CD=$(pcts "$T/cli.deleg")
echo "  stint task start: $CS"
echo "  stint delegate:   $CD"
printf '  p50 delegate/start = %s\n' \
	"$(ratio "$(field p50_ms "$CD")" "$(field p50_ms "$CS")")"
echo
echo "== stint task end ROOT, tree of 100 live tasks (1 + 9 + 90, depth 2) =="
for us in "${TREE_MS[@]}"; do
	awk -v us="$us" 'BEGIN {
		printf "  %.1f ms for 100 tasks, %.2f ms per task\n", us / 1000, us / 100000 }'
done
echo "  (compare: stint task end of one task through the CLI: $(pcts "$T/cli.end"))"
echo
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
