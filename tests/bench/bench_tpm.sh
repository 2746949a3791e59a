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
# (1) Signature latency, ECDSA P-256, one task key, the same blob both ways:
#   (s) stint: tpm_probe bench-p11 -> stint-pkcs11.so -> agent.sock ->
#       stintd -> TPM: C_SignInit + C_Sign per signature; stintd loads the
#       key, runs a policy session (PolicyCounterTimer + PolicyNV), signs,
#       flushes both, and writes the audit record;
#   (r) raw: tpm_probe bench, in-process ESAPI doing the very same TPM
#       commands (Load, StartAuthSession, PolicyCounterTimer, PolicyNV,
#       Sign, FlushContext x2) on the stored blob.
#   swtpm serves one client at a time and stintd holds the connection, so
#   each round runs (s) with stintd up, then stops stintd and runs (r);
#   BENCH_RUNS rounds of BENCH_SIGNS signatures; the figure per path is the
#   median of the rounds' medians. Target: s/r <= 1.15.
# (2) task start on the TPM backend (key creation in the TPM, policy digest,
#   TPM2_Certify, evidence verification, certificate issuance by the
#   TPM-held CA key) over the admin protocol: tests/bench/admin_bench,
#   BENCH_TASKS tasks in a row, p50/p90/p99.
#
# Knobs: BENCH_RUNS (5), BENCH_SIGNS (500), BENCH_TASKS (100),
# BENCH_QUICK=1 (2 rounds of 100 signatures, 20 tasks).

INTEG=$(cd "$(dirname "$0")/../integration" && pwd)
. "$INTEG/lib.sh"
. "$INTEG/tpm_lib.sh"

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

# median of numbers (one per argument), or n/a
median()
{
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
	END {
		if (NR == 0) { print "n/a"; exit }
		if (NR % 2) printf "%.0f\n", v[(NR + 1) / 2]
		else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
	}'
}

minmax()
{
	printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 }
	END { if (NR) printf "%.0f-%.0f", lo, hi }'
}

ratio()
{
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
}

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

# --- (1) signature latency ----------------------------------------------------

S_MED=() S_P99=() S_MEAN=() R_MED=() R_P99=() R_MEAN=()
printf 'signature latency '
for ((r = 0; r < RUNS; r++)); do
	stintd_alive || stintd_start
	timeout 600 "$TPM_PROBE" bench-p11 "$STINT_MODULE" "$AGENT" "$TASK" \
		"$NSIGN" >"$T/s.out" 2>&1 ||
		{ cat "$T/s.out" >&2; fail "stint path failed"; }
	S_MED+=("$(field median_us <"$T/s.out")")
	S_P99+=("$(field p99_us <"$T/s.out")")
	S_MEAN+=("$(field mean_us <"$T/s.out")")
	printf 's'
	stintd_stop
	timeout 600 "$TPM_PROBE" bench "$TCTI" "$KEYFILE" "$NSIGN" \
		>"$T/r.out" 2>&1 ||
		{ cat "$T/r.out" >&2; fail "raw ESAPI path failed"; }
	R_MED+=("$(field median_us <"$T/r.out")")
	R_P99+=("$(field p99_us <"$T/r.out")")
	R_MEAN+=("$(field mean_us <"$T/r.out")")
	printf 'r'
done
echo
# The TPM must be left clean by both paths (no resource manager).
h=$("$TPM_PROBE" handles "$TCTI") || fail "cannot count TPM handles"
[ "$h" = "transient 0 sessions 0" ] || fail "TPM left with $h"

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
printf '  %-44s %8s %-11s %8s %-11s %8s\n' path median range p99 range mean
printf '  %-44s %8s %-11s %8s %-11s %8s\n' \
	"(s) stint: module -> stintd -> TPM, policy" \
	"$(median "${S_MED[@]}")" "$(minmax "${S_MED[@]}")" \
	"$(median "${S_P99[@]}")" "$(minmax "${S_P99[@]}")" \
	"$(median "${S_MEAN[@]}")"
printf '  %-44s %8s %-11s %8s %-11s %8s\n' \
	"(r) raw ESAPI in-process, same commands" \
	"$(median "${R_MED[@]}")" "$(minmax "${R_MED[@]}")" \
	"$(median "${R_P99[@]}")" "$(minmax "${R_P99[@]}")" \
	"$(median "${R_MEAN[@]}")"
echo "  ratio s/r: median $(ratio "$(median "${S_MED[@]}")" "$(median "${R_MED[@]}")")," \
	"p99 $(ratio "$(median "${S_P99[@]}")" "$(median "${R_P99[@]}")")," \
	"mean $(ratio "$(median "${S_MEAN[@]}")" "$(median "${R_MEAN[@]}")")" \
	"(target <= 1.15)"
echo "  per round s/r medians: $(for ((r = 0; r < RUNS; r++)); do
	printf '%s ' "$(ratio "${S_MED[$r]}" "${R_MED[$r]}")"
done)"
echo
echo "== task on the TPM backend (admin protocol, $NTASKS in a row, ms) =="
echo "  start (TPM key, certify, verify, issue): ${LAT_START#start }"
echo "  end:                                      ${LAT_END#end }"
echo
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
