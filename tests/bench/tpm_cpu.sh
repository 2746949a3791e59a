#!/bin/bash
# stintd's CPU per TPM signature, A/B against another build (issue 14, the
# TPM path). Prints numbers; not a pass/fail test. Run from an optimized
# (non-sanitizer) build:
#
#	top_builddir=BUILD [TPMCPU_BASE=OTHER_BUILD] tests/bench/tpm_cpu.sh
#
# One swtpm (tests/integration/tpm_lib.sh), one task key (EC P-256) per
# build, the same client as bench_tpm.sh (tpm_probe bench-p11: C_SignInit +
# C_Sign of 32 bytes). Each round, for each build in turn (this one, then
# TPMCPU_BASE's if set): start stintd, one unmeasured signature, then
# TPMCPU_SIGNS signatures; the figures are stintd's utime + stime (from
# /proc) and swtpm's, per signature, and the client's p50 latency. The
# CPU counts barely depend on the machine's load (the latency does): the
# figure per build is the median over TPMCPU_RUNS rounds, the builds
# alternating within each round.
#
# TPMCPU_PROFILE=perf|callgrind|strace profiles this build's stintd over
# one extra run instead (perf record -g, valgrind --tool=callgrind, strace
# -f -c) and prints the top of the report.
#
# Knobs: TPMCPU_RUNS (5), TPMCPU_SIGNS (1000), TPMCPU_BASE, TPMCPU_PROFILE,
# TPMCPU_OUT (a directory to keep the profile in), TPMCPU_UNIX=1 (swtpm on
# Unix sockets, see below), TPMCPU_LOADED=N ([backend] tpm_loaded_keys).

INTEG=$(cd "$(dirname "$0")/../integration" && pwd)
. "$INTEG/lib.sh"
. "$INTEG/tpm_lib.sh"

RUNS=${TPMCPU_RUNS:-5}
NSIGN=${TPMCPU_SIGNS:-1000}
BASE=${TPMCPU_BASE:-}
AGENT=cpu

command -v swtpm >/dev/null 2>&1 || skip "swtpm is not installed"
stint_tmpdir
[ -x "$STINTD" ] || skip "no stintd in $top_builddir (build first)"
[ -x "$TPM_PROBE" ] || skip "no tpm_probe (configure found no tpm2-tss)"
if [ -n "$BASE" ] && ! [ -x "$BASE/stintd" ]; then
	fail "TPMCPU_BASE=$BASE has no stintd"
fi

median()
{
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
	END {
		if (NR == 0) { print "n/a"; exit }
		if (NR % 2) printf "%.0f\n", v[(NR + 1) / 2]
		else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
	}'
}

ticks()
{
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

MY_STINTD=$STINTD MY_MODULE=$STINT_MODULE
use_build()
{
	STINTD=$1/stintd STINT_MODULE=$1/.libs/stint-pkcs11.so
}

echo "tpm_cpu: $(date -u +%H:%M:%SZ), load $(cut -d' ' -f1-3 /proc/loadavg)," \
	"$RUNS rounds x $NSIGN signatures"
# TPMCPU_UNIX=1: swtpm on Unix sockets (TCTI swtpm:path=..., control
# channel at path.ctrl) instead of loopback TCP.
swtpm_start_unix()
{
	local i

	mkdir -m 0700 "$T/swtpm"
	swtpm socket --tpm2 \
		--server type=unixio,path="$T/swtpm/sock" \
		--ctrl type=unixio,path="$T/swtpm/sock.ctrl" \
		--tpmstate dir="$T/swtpm" --flags not-need-init,startup-clear \
		>>"$T/swtpm.log" 2>&1 &
	SWTPM_PID=$!
	bg_track "$SWTPM_PID"
	TCTI="swtpm:path=$T/swtpm/sock"
	for ((i = 0; i < 50; i++)); do
		"$TPM_PROBE" handles "$TCTI" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	cat "$T/swtpm.log" >&2
	fail "swtpm on Unix sockets does not answer"
}

if [ -n "${TPMCPU_UNIX:-}" ]; then
	swtpm_start_unix
else
	swtpm_start
fi
echo "tcti: $TCTI"
tpm_config
# TPMCPU_LOADED=N: [backend] tpm_loaded_keys (0: load and flush per signature)
if [ -n "${TPMCPU_LOADED:-}" ]; then
	sed -i "s/^\[backend\]\$/[backend]\ntpm_loaded_keys = $TPMCPU_LOADED/" "$STINTD_CONF"
fi
stintd_start
p11_env
agent_add "$AGENT" "$(id -u)"
TASK=$(task_start "$AGENT" --key ec-p256 --ttl 1h) || fail "task start"
stintd_stop

sign()
{
	"$TPM_PROBE" bench-p11 "$STINT_MODULE" "$AGENT" "$TASK" "$1" \
		>"$T/sign.out" 2>&1 || { cat "$T/sign.out" >&2; fail "signing failed"; }
}

HZ=$(getconf CLK_TCK)
# round TAG: one measured run of the current build; appends to TAG_CPU,
# TAG_TPM, TAG_P50
round()
{
	local -n cpu=$1_CPU tpm=$1_TPM p50=$1_P50
	local s0 w0 s1 w1

	stintd_start
	sign 1
	s0=$(ticks "$STINTD_PID") w0=$(ticks "$SWTPM_PID")
	sign "$NSIGN"
	s1=$(ticks "$STINTD_PID") w1=$(ticks "$SWTPM_PID")
	stintd_stop
	cpu+=("$(((s1 - s0) * 1000000 / HZ / NSIGN))")
	tpm+=("$(((w1 - w0) * 1000000 / HZ / NSIGN))")
	p50+=("$(sed -n 's/.*median_us=\([0-9]*\).*/\1/p' "$T/sign.out")")
}

profile()
{
	local out=${TPMCPU_OUT:-$T/prof}

	mkdir -p "$out"
	case "$TPMCPU_PROFILE" in
	perf)
		stintd_start
		sign 1
		perf record -q -g -o "$out/perf.data" -p "$STINTD_PID" \
			>/dev/null 2>&1 &
		local pp=$!
		sleep 1
		sign "$NSIGN"
		kill -INT "$pp"
		wait "$pp"
		stintd_stop
		perf report -i "$out/perf.data" --no-children --sort dso,sym \
			--stdio 2>/dev/null | grep -v '^$' | head -80
		;;
	callgrind)
		valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" ${TPMCPU_VGARGS:-} \
			"$STINTD" --config "$STINTD_CONF" --foreground \
			>"$T/vg.log" 2>&1 &
		STINTD_PID=$!
		bg_track "$STINTD_PID"
		wait_for 600 "$STINT" --socket "$T/run/admin.sock" status ||
			fail "stintd under valgrind did not start"
		sign "$NSIGN"
		kill -TERM "$STINTD_PID"
		wait "$STINTD_PID"
		STINTD_PID=
		callgrind_annotate --inclusive=yes "$out/cg.out" 2>/dev/null |
			head -70
		;;
	strace)
		stintd_start
		sign 1
		strace -f -c -o "$out/strace.txt" -p "$STINTD_PID" &
		local sp=$!
		sleep 1
		sign "$NSIGN"
		kill -INT "$sp"
		wait "$sp"
		stintd_stop
		head -40 "$out/strace.txt"
		;;
	*) fail "TPMCPU_PROFILE: perf, callgrind or strace" ;;
	esac
}

if [ -n "${TPMCPU_PROFILE:-}" ]; then
	profile
	exit 0
fi

A_CPU=() A_TPM=() A_P50=() B_CPU=() B_TPM=() B_P50=()
for ((r = 0; r < RUNS; r++)); do
	round A
	printf 'a'
	if [ -n "$BASE" ]; then
		use_build "$BASE"
		round B
		use_build "${MY_STINTD%/stintd}"
		printf 'b'
	fi
done
echo
echo "stintd CPU us/sig (utime+stime), swtpm CPU us/sig, client p50 us;" \
	"median of $RUNS rounds (per round)"
echo "  (a) $top_builddir: $(median "${A_CPU[@]}") / $(median "${A_TPM[@]}")" \
	"/ $(median "${A_P50[@]}")   (${A_CPU[*]})"
[ -n "$BASE" ] &&
	echo "  (b) $BASE: $(median "${B_CPU[@]}") / $(median "${B_TPM[@]}")" \
		"/ $(median "${B_P50[@]}")   (${B_CPU[*]})"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
