#!/bin/bash
# Connect cost with a cold and a warm exe-hash cache (issue 12 §8). Prints
# numbers; not a pass/fail test. Run from an optimized build:
#
#	make bench            (runs this after bench.sh)
#	top_builddir=/tmp/build tests/bench/connect_cost.sh
#
# Each connection is one process that connects to agent.sock, says HELLO,
# reads the reply and exits. stintd hashes a peer's executable once per file
# version (attest/exe_hash.c): "warm" runs the same binary N times, "cold"
# runs N copies of it (each a new inode, so each is hashed). Two binaries:
# python3 (about 7 MB: the hash dominates) and p11client (about 100 KB).
# Figures: stintd's CPU per connection (utime+stime from /proc/PID/stat
# over the run, 10 ms ticks: the count is large enough to resolve it) and
# the client's wall time per connection (process start included, so only
# the difference between cold and warm says something).
#
# Knobs: CONNECT_N (100 connections per row; copies for the cold rows).

. "$(cd "$(dirname "$0")/../integration" && pwd)/lib.sh"

N=${CONNECT_N:-100}
need_p11client
[ -x "$PYTHON" ] || skip "python3 not installed"
stint_tmpdir
stint_setup
wire_py
stint agent add bench --uid 0 >/dev/null 2>&1 || fail "agent add" # uid only

HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$STINTD_PID/stat"; }
now_ns() { date +%s%N; }

# row LABEL CMD...: N connections; CMD gets the connection number as $1
# after its own arguments are expanded by the caller's function.
row()
{
	local label=$1 fn=$2 i c0 c1 t0 t1

	c0=$(cpu_ticks)
	t0=$(now_ns)
	for ((i = 0; i < N; i++)); do
		"$fn" "$i" >/dev/null 2>&1 || fail "$label: connection $i failed"
	done
	t1=$(now_ns)
	c1=$(cpu_ticks)
	awk -v l="$label" -v n="$N" -v c=$((c1 - c0)) -v hz="$HZ" \
		-v w=$((t1 - t0)) 'BEGIN {
		printf "%-28s stintd CPU %8.0f us/conn   client wall %8.0f us/conn\n",
		       l, c / hz / n * 1e6, w / n / 1000 }'
}

PY=$(readlink -f "$PYTHON")
mkdir "$T/py" "$T/p11"
for ((i = 0; i < N; i++)); do
	cp "$PY" "$T/py/$i"
	cp "$P11CLIENT" "$T/p11/$i"
done
py_warm() { "$PY" "$T/wire.py" hello "$STINT_SOCKET"; }
py_cold() { "$T/py/$1" "$T/wire.py" hello "$STINT_SOCKET"; }
p11_warm() { "$P11CLIENT" --module "$STINT_MODULE" --list; }
p11_cold() { "$T/p11/$1" --module "$STINT_MODULE" --list; }

echo "connect cost, $N connections per row ($(stat -c %s "$PY") B python3," \
	"$(stat -c %s "$P11CLIENT") B p11client)"
py_warm >/dev/null 2>&1 # the warm rows start warm
p11_warm >/dev/null 2>&1
row "python3, warm cache" py_warm
row "python3, cold (new inode)" py_cold
row "p11client, warm cache" p11_warm
row "p11client, cold (new inode)" p11_cold
