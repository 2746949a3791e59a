#!/bin/bash
# A slow token must never be serialised by stintd (issue 14). Prints numbers;
# it is not a pass/fail test. Run from an optimized (non-sanitizer) build:
#
#	make bench-slowtoken          (also part of make bench)
#	top_builddir=/tmp/build tests/bench/slowtoken.sh
#
# The token is tests/bench/slowtoken.so: SoftHSM2 behind a shim that sleeps
# SLOWTOKEN_SIGN_US (2000 µs) after every C_Sign, like a network HSM with
# many operations in flight. One EC P-256 task key, C_SignInit + C_Sign
# (CKM_ECDSA, 32 bytes) per signature, N concurrent signers:
#   (a) in-process: one p11client process, N threads (one session each)
#       loading slowtoken.so directly, logged in with the PIN;
#   (b) stint: N p11client processes through stint-pkcs11.so -> stintd,
#       whose [backend] module is slowtoken.so;
#   (bt) stint, one p11client process with N threads (the module keeps one
#       connection per thread).
# Target: (b) >= 0.9 x (a) with 16. Each figure is the median of
# SLOWTOKEN_RUNS rounds of SLOWTOKEN_SECONDS s, the paths interleaved in
# every round. The shim also counts the signatures it holds in flight at
# once inside stintd (SLOWTOKEN_STATS): a load-independent check that
# stintd signs concurrently (1 would mean serialised).
#
# Knobs: SLOWTOKEN_RUNS (5), SLOWTOKEN_SECONDS (3), SLOWTOKEN_CLIENTS
# ("1 4 16"), SLOWTOKEN_SIGN_US (2000), SLOWTOKEN_PREPARED_AB (unset; e.g.
# "0 64": also (b) with stintd restarted with [backend] prepared_ops = each
# value, in every round, against the default).

. "$(cd "$(dirname "$0")/../integration" && pwd)/lib.sh"
. "$top_srcdir/tests/bench/stats.sh"

RUNS=${SLOWTOKEN_RUNS:-5}
SECS=${SLOWTOKEN_SECONDS:-3}
CLIENTS=${SLOWTOKEN_CLIENTS:-1 4 16}
AB=${SLOWTOKEN_PREPARED_AB:-}
export SLOWTOKEN_SIGN_US=${SLOWTOKEN_SIGN_US:-2000}
export SLOWTOKEN_MODULE=$SOFTHSM_MODULE
SHIM=$top_builddir/tests/bench/.libs/slowtoken.so
AGENT=slow

need_cmd softhsm2-util awk sort
need_p11client
[ -f "$SHIM" ] || skip "no $SHIM (make tests/bench/slowtoken.la)"
[ -x "$STINTD" ] || skip "no stintd in $top_builddir (build first)"
for b in "$STINTD" "$STINT_MODULE" "$P11CLIENT"; do
	if ldd "$b" 2>/dev/null | grep -qE 'libasan|libubsan'; then
		echo "slowtoken: $b is a sanitizer build; benchmark an" \
			"optimized build" >&2
		exit 1
	fi
done
stint_tmpdir

# run_path PATH N: one run of N signers on PATH; prints the summed rate.
run_path()
{
	local path=$1 n=$2 i procs=1 threads pids=() sum=0 rate
	local cmd=("$P11CLIENT" --module "$SHIM" --token "$HSM_LABEL"
		--pin-env BENCH_PIN)

	threads=$n
	case $path in
	b)
		procs=$n threads=1
		cmd=("$P11CLIENT" --module "$STINT_MODULE" --token "$AGENT")
		;;
	bt) cmd=("$P11CLIENT" --module "$STINT_MODULE" --token "$AGENT") ;;
	esac
	for ((i = 0; i < procs; i++)); do
		timeout $((SECS + 60)) "${cmd[@]}" --label "$TASK" --mech ecdsa \
			--seconds "$SECS" --threads "$threads" >"$T/m.$i.out" 2>&1 &
		pids+=($!)
	done
	for ((i = 0; i < procs; i++)); do
		rate=
		wait "${pids[$i]}" &&
			rate=$(sed -n 's/.*rate=\([0-9.]*\)\/s.*/\1/p' "$T/m.$i.out")
		if [ -z "$rate" ]; then
			echo "slowtoken: ($path) x$n client $i failed:" \
				"$(tr '\n' ' ' <"$T/m.$i.out" | cut -c1-200)" >&2
			return 1
		fi
		sum=$(awk -v s="$sum" -v r="$rate" 'BEGIN { print s + r }')
	done
	echo "$sum"
}

# stintd's CPU time so far (user + system, clock ticks).
stintd_ticks()
{
	awk '{ print $14 + $15 }' "/proc/$STINTD_PID/stat"
}

# measure PATH N [NAME]: one run into R[NAME] (default PATH N), and the
# CPU time per signature (clients, plus stintd on b paths) into C[NAME].
declare -A R C Q
measure()
{
	local v name=${3:-$1$2} t0 t1 cpu hz

	hz=$(getconf CLK_TCK)
	for _ in 1 2 3; do
		t0=$(stintd_ticks)
		TIMEFORMAT='%U %S'
		if { time v=$(run_path "$1" "$2"); } 2>"$T/time"; then
			t1=$(stintd_ticks)
			[ "$1" = a ] && t1=$t0
			cpu=$(awk -v t="$(tail -n 1 "$T/time")" -v d=$((t1 - t0)) \
				-v hz="$hz" -v r="$v" -v s="$SECS" 'BEGIN {
				split(t, u, " ")
				printf "%.0f", (u[1] + u[2] + d / hz) * 1e6 / (r * s) }')
			R[$name]="${R[$name]:-} $v"
			C[$name]="${C[$name]:-} $cpu"
			printf '.'
			return 0
		fi
		printf 'x'
	done
}

# restart_prepared N: stintd again, with [backend] prepared_ops = N
# ("" for the default of stint.conf).
restart_prepared()
{
	stintd_stop
	sed -i '/^prepared_ops = /d' "$STINTD_CONF"
	[ -z "$1" ] ||
		sed -i "s|^\[backend\]|&\nprepared_ops = $1|" "$STINTD_CONF"
	SLOWTOKEN_STATS=$T/stintd.inflight stintd_start
}

cmed()
{
	# shellcheck disable=SC2086
	median ${C[$1]:-}
}

med()
{
	# shellcheck disable=SC2086
	median ${R[$1]:-}
}

echo "Stint slow-token benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine: $(nproc) CPUs; load: $(cut -d' ' -f1-3 /proc/loadavg) (at start)"
echo "token:   SoftHSM2 behind slowtoken.so, +${SLOWTOKEN_SIGN_US} µs per C_Sign"
echo "method:  median of $RUNS rounds x ${SECS}s, paths interleaved; C_SignInit+C_Sign ECDSA P-256"

softhsm_token stint
export BENCH_PIN=$HSM_PIN
stintd_config sync=batch max_ttl=2h default_ttl=1h
# The shim is stintd's token module; SLOWTOKEN_STATS counts, in stintd
# alone, how many signatures the token held at once.
sed -i "s|^module = .*|module = $SHIM|" "$STINTD_CONF"
SLOWTOKEN_STATS=$T/stintd.inflight stintd_start
export STINT_SOCKET=$T/run/agent.sock
agent_add "$AGENT" "$(id -u)"
TASK=$(task_start "$AGENT" --key ec-p256 --ttl 1h)

for p in a b; do
	run_path "$p" 1 >/dev/null || fail "path ($p) cannot sign through the shim"
done

for n in $CLIENTS; do
	printf '%2d signers ' "$n"
	for ((r = 0; r < RUNS; r++)); do
		measure a "$n"
		measure b "$n"
		[ "$n" -gt 1 ] && measure bt "$n"
		# b/a within the round: both ran under the same load.
		Q[$n]="${Q[$n]:-} $(ratio "${R[b$n]##* }" "${R[a$n]##* }")"
		for v in $AB; do
			restart_prepared "$v"
			measure b "$n" "bp$v.$n"
			restart_prepared ""
		done
	done
	echo
done

echo
echo "== Signatures per second through a ${SLOWTOKEN_SIGN_US} µs token (median of $RUNS x ${SECS}s; min-max) =="
printf '  %-8s %-9s %-13s %-9s %-13s %-9s %-13s %-6s %s\n' signers "(a)" range \
	"(b)" range "(bt)" range "b/a" "bt/a"
for n in $CLIENTS; do
	# shellcheck disable=SC2086
	printf '  %-8s %-9s %-13s %-9s %-13s %-9s %-13s %-6s %s\n' "$n" \
		"$(med "a$n")" "$(minmax ${R[a$n]:-})" \
		"$(med "b$n")" "$(minmax ${R[b$n]:-})" \
		"$(med "bt$n")" "$(minmax ${R[bt$n]:-})" \
		"$(ratio "$(med "b$n")" "$(med "a$n")")" \
		"$(ratio "$(med "bt$n")" "$(med "a$n")")"
done
for n in $CLIENTS; do
	for v in $AB; do
		# shellcheck disable=SC2086
		printf '  %-8s (b) with prepared_ops = %-4s %-9s %-13s b/a %s\n' \
			"$n" "$v" "$(med "bp$v.$n")" "$(minmax ${R[bp$v.$n]:-})" \
			"$(ratio "$(med "bp$v.$n")" "$(med "a$n")")"
	done
done
echo
echo "== CPU per signature, µs (clients' user+sys, plus stintd's on (b); median) =="
printf '  %-8s %-9s %-9s %-9s %s\n' signers "(a)" "(b)" "(bt)" "$(for v in $AB; do
	printf '%-9s ' "(b) p=$v"; done)"
for n in $CLIENTS; do
	printf '  %-8s %-9s %-9s %-9s %s\n' "$n" "$(cmed "a$n")" "$(cmed "b$n")" \
		"$(cmed "bt$n")" "$(for v in $AB; do printf '%-9s ' "$(cmed "bp$v.$n")"; done)"
done
for n in $CLIENTS; do
	echo "  $n signers, b/a per round:${Q[$n]:-}"
done
echo "  ceiling (sleep alone): N x $((1000000 / SLOWTOKEN_SIGN_US)) /s"
echo "  target: (b)/(a) >= 0.9 with 16 signers"
echo "  most signatures in flight at once inside stintd:" \
	"$(sed -n 's/^max_in_flight=//p' "$T/stintd.inflight" 2>/dev/null || echo '?')"
echo "  stintd prepared operations: $(stint status --json 2>/dev/null |
	tr ',' '\n' | grep -i prepared | tr '\n' ' ')"
echo
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
