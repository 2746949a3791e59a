#!/bin/bash
# Stint TPM backend benchmark (issue 4, section 5). Prints numbers; it is not
# a pass/fail test. Run from a configured, optimized (non-sanitizer) build:
#
#	make bench-tpm
#	top_builddir=/tmp/build tests/bench/bench_tpm.sh
#
# Starts its own swtpm on free loopback ports (tests/integration/tpm_lib.sh,
# no resource manager) and its own stintd with [backend] type = tpm, in a
# temporary directory removed at exit. Skips (77) without swtpm or without
# a TPM-enabled build.
#
# (1) Signature latency, ECDSA P-256, against tpm2-pkcs11 on the same swtpm,
#   through the same client (tpm_probe bench-p11: C_SignInit + C_Sign of 32
#   bytes per signature, timed each):
#   (s) stint: stint-pkcs11.so -> agent.sock -> stintd -> TPM; stintd keeps
#       the task key loaded and one policy session open, and runs
#       PolicyCounterTimer + PolicyNV + Sign per signature, then writes the
#       audit record;
#   (p) tpm2-pkcs11 (libtpm2_pkcs11.so, Debian libtpm2-pkcs11-1) with its
#       own ecc256 key, TPM2_PKCS11_TCTI = the same swtpm; its store is set
#       up once with tpm2_ptool through tpm2-abrmd on a private D-Bus
#       session bus (ci/install-bench-deps.sh). Skipped with a note when
#       those are missing.
#   swtpm has 3 object slots, both users keep objects loaded, so each round
#   runs (s) with stintd up, stops stintd, then runs (p); BENCH_RUNS rounds
#   of BENCH_SIGNS signatures; the figure per path is the median of the
#   rounds' medians. Target: rate s/p >= 1.0, p50 s/p <= 1.1.
#   TPM commands per signature: tpm2-tss 3.2.1's swtpm TCTI opens one TCP
#   connection to the TPM port per command, so strace counts connect()s to
#   that port over two runs (10 and 10 + BENCH_COUNT signatures) and divides
#   the difference (setup cancels out).
# (2) task start on the TPM backend (key creation in the TPM, policy digest,
#   TPM2_Certify, evidence verification, certificate issuance by the
#   TPM-held CA key) over the admin protocol: tests/bench/admin_bench,
#   BENCH_TASKS tasks in a row, p50/p90/p99.
#
# With BENCH_BASE=DIR (another build, e.g. main's) its stintd and module
# run as a third path (b) in each round, on the same state, TPM and client:
# the A/B of a change.
#
# Knobs: BENCH_RUNS (5), BENCH_SIGNS (500), BENCH_TASKS (100), BENCH_COUNT
# (100 signatures for the command count), BENCH_BASE,
# BENCH_QUICK=1 (2 rounds of 100 signatures, 20 tasks).

INTEG=$(cd "$(dirname "$0")/../integration" && pwd)
. "$INTEG/lib.sh"
. "$INTEG/tpm_lib.sh"
. "$top_srcdir/tests/bench/stats.sh"

RUNS=${BENCH_RUNS:-5}
NSIGN=${BENCH_SIGNS:-500}
NTASKS=${BENCH_TASKS:-100}
if [ -n "${BENCH_QUICK:-}" ]; then
	RUNS=2 NSIGN=100 NTASKS=20
fi
AGENT=bench

command -v swtpm >/dev/null 2>&1 ||
	skip "swtpm is not installed (apt-get install swtpm swtpm-tools)"
need_cmd awk sort
stint_tmpdir
[ -x "$STINTD" ] || skip "no stintd in $top_builddir (build first)"
[ -f "$STINT_MODULE" ] || skip "no stint-pkcs11.so in $top_builddir/.libs"
[ -x "$TPM_PROBE" ] || skip "no tpm_probe (configure found no tpm2-tss)"
ADMIN_BENCH=$top_builddir/tests/bench/admin_bench
[ -x "$ADMIN_BENCH" ] || skip "no admin_bench (make tests/bench/admin_bench)"
for b in "$STINTD" "$STINT_MODULE" "$TPM_PROBE"; do
	if ldd "$b" 2>/dev/null | grep -qE 'libasan|libubsan'; then
		echo "bench_tpm: $b is a sanitizer build; benchmark an" \
			"optimized build (./configure without" \
			"--enable-sanitizers)" >&2
		exit 1
	fi
done
BUILD_CFLAGS=$(sed -n 's/^CFLAGS = //p' "$top_builddir/Makefile" 2>/dev/null)

# field NAME: the value of NAME=... in the line on stdin
field()
{
	sed -n "s/.*\\<$1=\\([0-9.]*\\).*/\\1/p"
}

echo "Stint TPM benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine:  $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, at start)"
echo "versions: $(swtpm --version 2>/dev/null | head -1)," \
	"tpm2-tss $(pkg-config --modversion tss2-esys 2>/dev/null || echo '?')"
echo "build:    $top_builddir (CFLAGS: ${BUILD_CFLAGS:-?})"
echo "method:   $RUNS rounds x $NSIGN signatures per path; $NTASKS task starts"
echo

swtpm_start
tpm_config
stintd_start
p11_env
agent_add "$AGENT" "$(id -u)"
TASK=$(task_start "$AGENT" --key ec-p256 --ttl 1h) || fail "task start"
KEYFILE=$T/state/tpm/$TASK.key
[ -f "$KEYFILE" ] || fail "no TPM key file $KEYFILE"

# --- tpm2-pkcs11 store ----------------------------------------------------------

PORT=${TCTI##*port=}
P11_LIB=
for f in /usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so \
	/usr/lib/*/pkcs11/libtpm2_pkcs11.so /usr/lib/pkcs11/libtpm2_pkcs11.so; do
	[ -f "$f" ] && P11_LIB=$f && break
done
P11_NOTE=
if [ -z "$P11_LIB" ]; then
	P11_NOTE="libtpm2_pkcs11.so not found"
else
	for c in tpm2_ptool tpm2-abrmd dbus-daemon; do
		command -v "$c" >/dev/null 2>&1 || P11_NOTE="$c not found"
	done
fi
# tpm2_ptool runs tpm2-tools, which need a resource manager: tpm2-abrmd on
# a private session bus, only while the store is made; stintd is stopped.
p11_store()
{
	local bus dpid apid rc=0

	mkdir -m 0700 "$T/p11store" || return 1
	bus=$(dbus-daemon --session --fork --print-address=1 --print-pid=1) ||
		return 1
	dpid=$(echo "$bus" | sed -n 2p)
	bg_track "$dpid"
	DBUS_SESSION_BUS_ADDRESS=$(echo "$bus" | sed -n 1p) \
		tpm2-abrmd --session --allow-root --tcti="$TCTI" \
		>"$T/abrmd.log" 2>&1 &
	apid=$!
	bg_track "$apid"
	sleep 1
	(
		export DBUS_SESSION_BUS_ADDRESS=$(echo "$bus" | sed -n 1p)
		export TPM2TOOLS_TCTI=tabrmd:bus_type=session
		tpm2_ptool init --path="$T/p11store" &&
			tpm2_ptool addtoken --pid=1 --label=p11bench \
				--userpin=1234 --sopin=5678 --path="$T/p11store" &&
			tpm2_ptool addkey --label=p11bench --key-label=k1 \
				--userpin=1234 --algorithm=ecc256 \
				--path="$T/p11store"
	) >"$T/ptool.log" 2>&1 || rc=1
	kill "$apid" "$dpid" 2>/dev/null
	wait "$apid" 2>/dev/null
	return $rc
}
if [ -z "$P11_NOTE" ]; then
	stintd_stop
	p11_store || P11_NOTE="tpm2_ptool setup failed: $(tail -n 2 "$T/ptool.log")"
	stintd_start
fi
[ -n "$P11_NOTE" ] && echo "note: tpm2-pkcs11 path skipped: $P11_NOTE" \
	"(ci/install-bench-deps.sh installs it)"

# p11_run N OUT [strace-file]: the tpm2-pkcs11 path, N signatures
p11_run()
{
	local pre=()

	[ -n "${3:-}" ] && pre=(strace -f -e trace=connect -o "$3")
	TPM2_PKCS11_TCTI=$TCTI TPM2_PKCS11_STORE=$T/p11store \
		TPM2_PKCS11_LOG_LEVEL=0 TPM_PROBE_P11_PIN=1234 \
		timeout 600 "${pre[@]}" "$TIMEIT" "$TPM_PROBE" bench-p11 \
		"$P11_LIB" p11bench k1 "$1" >"$2" 2>&1
}

# s_run N OUT: the Stint path (stintd up)
s_run()
{
	timeout 600 "$TIMEIT" "$TPM_PROBE" bench-p11 "$STINT_MODULE" "$AGENT" \
		"$TASK" "$1" >"$2" 2>&1
}

# CPU time, load-independent: ticks (utime + stime) of a process, and the
# client's own from /usr/bin/time (TIMEIT prints "cpu_s=U+S" last).
TIMEIT=$T/timeit
cat >"$TIMEIT" <<'SH'
#!/bin/sh
exec /usr/bin/time -f 'cpu_s=%U+%S' "$@"
SH
chmod +x "$TIMEIT"
[ -x /usr/bin/time ] || { printf '#!/bin/sh\nexec "$@"\n' >"$TIMEIT"; }
ticks()
{
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
# cpu_us OUT N SERVER_TICKS SWTPM_TICKS: "client+server swtpm" us/signature
cpu_us()
{
	local c

	c=$(sed -n 's/^cpu_s=//p' "$1" | tail -n 1)
	awk -v c="${c:-0}" -v n="$2" -v s="$3" -v w="$4" \
		-v hz="$(getconf CLK_TCK)" 'BEGIN {
		split(c, a, "+")
		printf "%.0f %.0f", ((a[1] + a[2]) + s / hz) * 1e6 / n, w / hz * 1e6 / n }'
}

# with_build DIR CMD...: CMD with DIR's stintd and module (BENCH_BASE)
MY_STINTD=$STINTD MY_MODULE=$STINT_MODULE
with_build()
{
	local dir=$1 rc

	shift
	STINTD=$dir/stintd STINT_MODULE=$dir/.libs/stint-pkcs11.so
	"$@"
	rc=$?
	STINTD=$MY_STINTD STINT_MODULE=$MY_MODULE
	return $rc
}

# connects FILE: connect() calls to the TPM port in an strace log
connects()
{
	grep -c "htons($PORT)" "$1"
}

# s_count: TPM commands per signature of the running stintd
s_count()
{
	local n spid

	for n in 10 $((10 + NCOUNT)); do
		strace -f -e trace=connect -o "$T/st.$n" -p "$STINTD_PID" \
			2>/dev/null &
		spid=$!
		sleep 0.5
		s_run "$n" "$T/sc.out" || { cat "$T/sc.out" >&2; fail "count run"; }
		kill "$spid"
		wait "$spid" 2>/dev/null
	done
	awk -v a="$(connects "$T/st.10")" \
		-v b="$(connects "$T/st.$((10 + NCOUNT))")" -v n="$NCOUNT" \
		'BEGIN { printf "%.2f", (b - a) / n }'
}

# s_round TAG: one round of the Stint path with the current build; appends
# to TAG_MED, TAG_P99, TAG_MEAN
s_round()
{
	local -n med=$1_MED p99=$1_P99 mean=$1_MEAN cpu=$1_CPU tpm=$1_TPM
	local s0 w0 s1 w1 c

	stintd_start
	s0=$(ticks "$STINTD_PID") w0=$(ticks "$SWTPM_PID")
	s_run "$NSIGN" "$T/s.out" || { cat "$T/s.out" >&2; fail "$1 path failed"; }
	s1=$(ticks "$STINTD_PID") w1=$(ticks "$SWTPM_PID")
	stintd_stop
	c=$(cpu_us "$T/s.out" "$NSIGN" $((s1 - s0)) $((w1 - w0)))
	cpu+=("${c% *}")
	tpm+=("${c#* }")
	med+=("$(field median_us <"$T/s.out")")
	p99+=("$(field p99_us <"$T/s.out")")
	mean+=("$(field mean_us <"$T/s.out")")
}

BASE=${BENCH_BASE:-}
if [ -n "$BASE" ] && ! [ -x "$BASE/stintd" ]; then
	echo "note: BENCH_BASE=$BASE has no stintd; base path skipped"
	BASE=
fi

# --- (0) TPM commands per signature ------------------------------------------------

NCOUNT=${BENCH_COUNT:-100}
S_CMDS=n/a P_CMDS=n/a B_CMDS=n/a
stintd_alive && stintd_stop
if command -v strace >/dev/null 2>&1; then
	stintd_start
	S_CMDS=$(s_count)
	stintd_stop
	if [ -n "$BASE" ]; then
		with_build "$BASE" stintd_start
		B_CMDS=$(with_build "$BASE" s_count)
		stintd_stop
	fi
	if [ -z "$P11_NOTE" ]; then
		for n in 10 $((10 + NCOUNT)); do
			p11_run "$n" "$T/pc.out" "$T/pt.$n" ||
				{ cat "$T/pc.out" >&2; fail "tpm2-pkcs11 count run"; }
		done
		P_CMDS=$(awk -v a="$(connects "$T/pt.10")" \
			-v b="$(connects "$T/pt.$((10 + NCOUNT))")" -v n="$NCOUNT" \
			'BEGIN { printf "%.2f", (b - a) / n }')
	fi
else
	echo "note: no strace: TPM commands per signature not counted"
fi

# --- (1) signature latency ----------------------------------------------------
# Each round: stint, base (if any), tpm2-pkcs11, one at a time on the TPM.

S_MED=() S_P99=() S_MEAN=() P_MED=() P_P99=() P_MEAN=() B_MED=() B_P99=() B_MEAN=()
S_CPU=() S_TPM=() B_CPU=() B_TPM=() P_CPU=() P_TPM=()
printf 'signature latency '
for ((r = 0; r < RUNS; r++)); do
	s_round S
	printf 's'
	if [ -n "$BASE" ]; then
		with_build "$BASE" s_round B
		printf 'b'
	fi
	[ -n "$P11_NOTE" ] && continue
	w0=$(ticks "$SWTPM_PID")
	p11_run "$NSIGN" "$T/p.out" ||
		{ cat "$T/p.out" >&2; fail "tpm2-pkcs11 path failed"; }
	c=$(cpu_us "$T/p.out" "$NSIGN" 0 $(($(ticks "$SWTPM_PID") - w0)))
	P_CPU+=("${c% *}")
	P_TPM+=("${c#* }")
	P_MED+=("$(field median_us <"$T/p.out")")
	P_P99+=("$(field p99_us <"$T/p.out")")
	P_MEAN+=("$(field mean_us <"$T/p.out")")
	printf 'p'
done
echo
# All users gone: the TPM must be left clean (no resource manager).
h=$("$TPM_PROBE" handles "$TCTI") || fail "cannot count TPM handles"
echo "TPM after all paths: $h"

# --- (2) task start -------------------------------------------------------------

stintd_start
printf 'task start/end '
timeout 1800 "$ADMIN_BENCH" --socket "$STINT_ADMIN_SOCKET" --agent "$AGENT" \
	--count "$NTASKS" --key ec-p256 >"$T/lat.out" 2>&1 ||
	{ cat "$T/lat.out" >&2; fail "admin_bench failed"; }
echo .
LAT_START=$(grep '^start ' "$T/lat.out")
LAT_END=$(grep '^end ' "$T/lat.out")
stintd_stop

# --- report -----------------------------------------------------------------------

echo
echo "== ECDSA P-256 signature latency on swtpm (us; median of $RUNS rounds; range) =="
printf '  %-44s %8s %-11s %8s %-11s %8s %6s\n' path median range p99 range mean sig/s
row()
{
	local -n med=$2 p99=$3 mean=$4

	printf '  %-44s %8s %-11s %8s %-11s %8s %6s\n' "$1" \
		"$(median "${med[@]}")" "$(minmax "${med[@]}")" \
		"$(median "${p99[@]}")" "$(minmax "${p99[@]}")" \
		"$(median "${mean[@]}")" \
		"$(ratio 1000000 "$(median "${mean[@]}")" 0)"
}
row "(s) stint: module -> stintd -> TPM, policy" S_MED S_P99 S_MEAN
[ -n "$BASE" ] && row "(b) base build $BASE" B_MED B_P99 B_MEAN
[ -z "$P11_NOTE" ] && row "(p) tpm2-pkcs11 on the same swtpm" P_MED P_P99 P_MEAN
if [ -z "$P11_NOTE" ]; then
	echo "  rate s/p (1/mean): $(ratio "$(median "${P_MEAN[@]}")" "$(median "${S_MEAN[@]}")") (target >= 1.0)," \
		"p50 s/p: $(ratio "$(median "${S_MED[@]}")" "$(median "${P_MED[@]}")") (target <= 1.1)"
	echo "  per round p50 s/p: $(for ((r = 0; r < RUNS; r++)); do
		printf '%s ' "$(ratio "${S_MED[$r]}" "${P_MED[$r]}")"
	done)"
fi
echo "  CPU per signature (us, median of rounds; load-independent): client +" \
	"stintd / swtpm: stint $(median "${S_CPU[@]}") / $(median "${S_TPM[@]}")," \
	"tpm2-pkcs11 $(median "${P_CPU[@]}") / $(median "${P_TPM[@]}")${BASE:+, base $(median "${B_CPU[@]}") / $(median "${B_TPM[@]}")}"
echo "  TPM commands per signature (strace, connect()s to the TPM port):" \
	"stint $S_CMDS, tpm2-pkcs11 $P_CMDS${BASE:+, base $B_CMDS}"
if [ -n "$BASE" ]; then
	echo "  base/stint: p50 $(ratio "$(median "${B_MED[@]}")" "$(median "${S_MED[@]}")")," \
		"mean $(ratio "$(median "${B_MEAN[@]}")" "$(median "${S_MEAN[@]}")")"
fi
echo
echo "== task on the TPM backend (admin protocol, $NTASKS in a row, ms) =="
echo "  start (TPM key, certify, verify, issue): ${LAT_START#start }"
echo "  end:                                      ${LAT_END#end }"
echo
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
