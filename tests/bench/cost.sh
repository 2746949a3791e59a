#!/bin/bash
# Cost per signature (issue 14): CPU time and instructions, for
#   (a) SoftHSM2 in-process: the client alone;
#   (b) stint-pkcs11.so -> stintd: the client + every thread of stintd;
#   (c) p11-kit-client.so -> p11-kit server: the client + the
#       p11-kit-remote process that serves the connection.
# ECDSA P-256 (CKM_ECDSA on a 32-byte digest), one client, one session,
# C_SignInit + C_Sign per signature. It is a measurement, not a test: it
# prints numbers and never fails on a large one.
#
# 1. CPU time (user + system, kernel included), native: one client signs
#    BENCH_CPU_N times; the client's time from /usr/bin/time, stintd's from
#    /proc/PID/stat (all threads), p11-kit's from the server's
#    /proc/PID/stat children fields once it has reaped the connection's
#    p11-kit-remote. Median of BENCH_CPU_RUNS runs, paths interleaved.
#    Then system calls per signature of (a) and (b) (client, and stintd's
#    threads together) with strace -c over 1,000 signatures, if strace is
#    installed; and context switches per signature, voluntary (the thread
#    slept: a wait for the peer) and non-voluntary (preempted), of (a)
#    and (b): the client's from /usr/bin/time (%w, %c: all its threads),
#    stintd's summed over /proc/PID/task/*/status, sampled every 20 ms
#    while the client runs so that the connection thread, which exits
#    with its connection, is counted up to its last sample. Median of
#    BENCH_CPU_RUNS runs of BENCH_CTX_N signatures.
# 2. Instructions (user space only), under valgrind's callgrind: the count
#    is the same for the same inputs whatever else the machine does, so this
#    is the reproducible figure. A figure is
#      (count for N2 signatures - count for N1 signatures) / (N2 - N1),
#    so that start-up (dlopen, C_Initialize, login, finding the key)
#    cancels out. stintd is counted between `callgrind_control -z` before
#    the client starts and `callgrind_control -d` after it exits.
# stintd runs with `key_pool = 0`, so that no background key generation
# falls into a window, and `sync = batch` as in the throughput runs.
#
#	make bench-cost
#	top_builddir=/tmp/build tests/bench/cost.sh
#
# Knobs: BENCH_CPU_N (20000), BENCH_CPU_RUNS (3), BENCH_CTX_N (5000),
# BENCH_INSTR_N1 (50),
# BENCH_INSTR_N2 (550), BENCH_INSTR_PATHS ("a b c"; a is always counted,
# as the reference), BENCH_QUICK=1 (fewer signatures).
# With BENCH_INSTR_KEEP=DIR the callgrind files of the (b) runs are copied
# to DIR for callgrind_annotate (the profile in docs/performance.md).

. "$(cd "$(dirname "$0")/../integration" && pwd)/lib.sh"
. "$top_srcdir/tests/bench/stats.sh"

N1=${BENCH_INSTR_N1:-50}
N2=${BENCH_INSTR_N2:-550}
CPU_N=${BENCH_CPU_N:-20000}
CPU_RUNS=${BENCH_CPU_RUNS:-3}
CTX_N=${BENCH_CTX_N:-5000}
if [ -n "${BENCH_QUICK:-}" ]; then
	N1=20 N2=120 CPU_N=3000 CPU_RUNS=1 CTX_N=1000
fi
P11KIT_CLIENT=${P11KIT_CLIENT:-/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so}
P11KIT_SERVER=/usr/libexec/p11-kit/p11-kit-server
AGENT=bench

need_cmd softhsm2-util valgrind callgrind_control awk
need_p11client
[ -x /usr/bin/time ] || skip "no /usr/bin/time (package time)"
[ "$N2" -gt "$N1" ] || fail "BENCH_INSTR_N2 must be above BENCH_INSTR_N1"
[ -x "$STINTD" ] || skip "no stintd in $top_builddir (build first)"
for b in "$STINTD" "$STINT_MODULE" "$P11CLIENT"; do
	if ldd "$b" 2>/dev/null | grep -qE 'libasan|libubsan'; then
		echo "bench: $b is a sanitizer build; count an optimized build" >&2
		exit 1
	fi
done
HAVE_C=yes
[ -x "$P11KIT_SERVER" ] && [ -f "$P11KIT_CLIENT" ] || HAVE_C=
stint_tmpdir
CG=$T/cg
mkdir -p "$CG"
VG=(valgrind --tool=callgrind --dump-instr=no --compress-strings=no)
paths=${BENCH_INSTR_PATHS:-a b c}
case " $paths " in *" a "*) ;; *) paths="a $paths" ;; esac
[ -z "$HAVE_C" ] && paths=${paths//c/}

# Total instructions (Ir) of a callgrind output file.
cg_total()
{
	awk '$1 == "summary:" || $1 == "totals:" { print $2; exit }' "$1"
}

# CPU ticks (user + system) of a process, all its threads; with a second
# argument, of the children it has reaped.
ticks()
{
	awk -v c="${2:-}" '{ sub(/^.*\) /, ""); print c == "" ? $12 + $13 : $14 + $15 }' \
		"/proc/$1/stat"
}

# p11kit_start [valgrind words...]: the p11-kit server (P11KIT_PID). Per
# connection it forks and execs p11-kit-remote.
p11kit_start()
{
	rm -f "$T/p11kit.sock"
	"$@" "$P11KIT_SERVER" -f -n "$T/p11kit.sock" --provider "$SOFTHSM_MODULE" \
		"pkcs11:token=$HSM_LABEL" >"$T/p11kit.out" 2>&1 &
	P11KIT_PID=$!
	bg_track "$P11KIT_PID"
	wait_for 60 test -S "$T/p11kit.sock" ||
		{ cat "$T/p11kit.out" >&2; fail "p11-kit server did not start"; }
}

p11kit_stop()
{
	kill -TERM "$P11KIT_PID" 2>/dev/null
	wait "$P11KIT_PID" 2>/dev/null
}

# client_env PATH: environment words for env, before the client command.
client_env()
{
	case $1 in
	b) echo "STINT_SOCKET=$T/run/agent.sock" ;;
	c) echo "P11_KIT_SERVER_ADDRESS=unix:path=$T/p11kit.sock" ;;
	esac
}

client_args()
{
	case $1 in
	a) echo "$P11CLIENT --module $SOFTHSM_MODULE --token $HSM_LABEL --pin-env BENCH_PIN" ;;
	b) echo "$P11CLIENT --module $STINT_MODULE --token $AGENT" ;;
	c) echo "$P11CLIENT --module $P11KIT_CLIENT --token $HSM_LABEL --pin-env BENCH_PIN" ;;
	esac
}

# --- setup: token, agent and task ----------------------------------------------

softhsm_token stint
stintd_config sync=batch max_ttl=2h default_ttl=1h
sed -i 's/^\[backend\]$/[backend]\nkey_pool = 0/' "$STINTD_CONF"
stintd_start
export BENCH_PIN=$HSM_PIN
agent_add "$AGENT" "$(id -u)"
EC_TASK=$(task_start "$AGENT" --key ec-p256 --ttl 1h)
head -c 32 /dev/urandom >"$T/digest"
HZ=$(getconf CLK_TCK)

# --- 1. CPU time per signature, native ------------------------------------------

[ -n "$HAVE_C" ] && p11kit_start
# cpu PATH: appends client and server CPU microseconds per signature.
declare -A CPU_C CPU_S
cpu()
{
	local path=$1 s0 s1 t i

	case $path in
	b) s0=$(ticks "$STINTD_PID") ;;
	c) s0=$(ticks "$P11KIT_PID" children) ;;
	*) s0=0 ;;
	esac
	# shellcheck disable=SC2046
	env $(client_env "$path") /usr/bin/time -f 'cpu %U %S' -o "$T/time.out" \
		$(client_args "$path") --label "$EC_TASK" --mech ecdsa \
		--in "$T/digest" --count "$CPU_N" >"$T/client.out" 2>&1 ||
		{ cat "$T/client.out" >&2; fail "path ($path): client failed"; }
	case $path in
	b) s1=$(ticks "$STINTD_PID") ;;
	c)
		# Once the server has reaped p11-kit-remote, its time is there.
		for ((i = 0; i < 50; i++)); do
			pgrep -P "$P11KIT_PID" >/dev/null || break
			sleep 0.1
		done
		s1=$(ticks "$P11KIT_PID" children)
		;;
	*) s1=0 ;;
	esac
	t=$(awk '$1 == "cpu" { print ($2 + $3) * 1e6 }' "$T/time.out")
	CPU_C[$path]="${CPU_C[$path]:-} $(awk -v t="$t" -v n="$CPU_N" 'BEGIN { printf "%.2f", t / n }')"
	CPU_S[$path]="${CPU_S[$path]:-} $(awk -v d="$((s1 - s0))" -v hz="$HZ" -v n="$CPU_N" \
		'BEGIN { printf "%.2f", d / hz * 1e6 / n }')"
}

printf 'CPU time per ECDSA P-256 signature (%d runs of %d signatures) ' "$CPU_RUNS" "$CPU_N"
for ((r = 0; r < CPU_RUNS; r++)); do
	for p in $paths; do
		cpu "$p"
		printf '.'
	done
done
echo
[ -n "$HAVE_C" ] && p11kit_stop

# --- 1b. system calls per signature (strace -c; a and b) -------------------------

# syscalls FILE: "name calls/N, ..." for calls made at least N/2 times.
syscalls()
{
	awk -v n="$SYS_N" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" && $4 >= n / 2 {
		printf "%s %.1f, ", $NF, $4 / n }' "$1" | sed 's/, $//'
}
SYS_N=1000
SYS_A= SYS_B= SYS_D=
if command -v strace >/dev/null 2>&1; then
	# shellcheck disable=SC2046
	strace -f -c -o "$T/strace.a" $(client_args a) --label "$EC_TASK" \
		--mech ecdsa --in "$T/digest" --count "$SYS_N" >/dev/null 2>&1 &&
		SYS_A=$(syscalls "$T/strace.a")
	strace -f -c -o "$T/strace.d" -p "$STINTD_PID" 2>"$T/strace.d.err" &
	STRACE_PID=$!
	wait_for 10 grep -q attached "$T/strace.d.err"
	# shellcheck disable=SC2046
	env $(client_env b) strace -f -c -o "$T/strace.b" $(client_args b) \
		--label "$EC_TASK" --mech ecdsa --in "$T/digest" --count "$SYS_N" \
		>/dev/null 2>&1 && SYS_B=$(syscalls "$T/strace.b")
	kill -INT "$STRACE_PID" 2>/dev/null
	wait "$STRACE_PID" 2>/dev/null
	SYS_D=$(syscalls "$T/strace.d")
fi

# --- 1c. context switches per signature (a and b) --------------------------------

# ctx_poll PID: the voluntary and non-voluntary switches of each of PID's
# threads into CTX_V[tid] and CTX_N[tid] (builtins only: no process per
# sample). A thread that exits keeps its last sample.
declare -A CTX_V CTX_NV
ctx_poll()
{
	local f t k v

	for f in /proc/"$1"/task/*/status; do
		t=${f%/status}
		t=${t##*/}
		while read -r k v; do
			case $k in
			voluntary_ctxt_switches:) CTX_V[$t]=$v ;;
			nonvoluntary_ctxt_switches:) CTX_NV[$t]=$v ;;
			esac
		done 2>/dev/null <"$f"
	done
}

# ctx_sum: "voluntary non-voluntary" over every thread sampled.
ctx_sum()
{
	local t v=0 n=0

	for t in "${!CTX_V[@]}"; do
		v=$((v + CTX_V[$t]))
		n=$((n + ${CTX_NV[$t]:-0}))
	done
	echo "$v $n"
}

# ctx PATH: appends per-signature switches of the client (CS_CV, CS_CN)
# and, for (b), of stintd (CS_SV, CS_SN).
declare -A CS_CV CS_CN CS_SV CS_SN
ctx()
{
	local path=$1 cpid s0 s1

	CTX_V=() CTX_NV=()
	[ "$path" = b ] && ctx_poll "$STINTD_PID"
	s0=$(ctx_sum)
	# shellcheck disable=SC2046
	env $(client_env "$path") /usr/bin/time -f 'cs %w %c' -o "$T/ctx.out" \
		$(client_args "$path") --label "$EC_TASK" --mech ecdsa \
		--in "$T/digest" --count "$CTX_N" >"$T/client.out" 2>&1 &
	cpid=$!
	while kill -0 "$cpid" 2>/dev/null; do
		[ "$path" = b ] && ctx_poll "$STINTD_PID"
		read -rt 0.02 -u "$SLEEP_FD" || true
	done
	wait "$cpid" || { cat "$T/client.out" >&2; fail "path ($path): client failed"; }
	[ "$path" = b ] && ctx_poll "$STINTD_PID"
	s1=$(ctx_sum)
	CS_CV[$path]="${CS_CV[$path]:-} $(awk -v n="$CTX_N" '$1 == "cs" { printf "%.3f", $2 / n }' "$T/ctx.out")"
	CS_CN[$path]="${CS_CN[$path]:-} $(awk -v n="$CTX_N" '$1 == "cs" { printf "%.3f", $3 / n }' "$T/ctx.out")"
	# shellcheck disable=SC2086
	set -- $s0 $s1
	CS_SV[$path]="${CS_SV[$path]:-} $(awk -v a="$1" -v b="$3" -v n="$CTX_N" 'BEGIN { printf "%.3f", (b - a) / n }')"
	CS_SN[$path]="${CS_SN[$path]:-} $(awk -v a="$2" -v b="$4" -v n="$CTX_N" 'BEGIN { printf "%.3f", (b - a) / n }')"
}

# A descriptor that never has data: read -t on it sleeps without a process.
exec {SLEEP_FD}<> <(:)
printf 'context switches per ECDSA P-256 signature (%d runs of %d signatures) ' "$CPU_RUNS" "$CTX_N"
for ((r = 0; r < CPU_RUNS; r++)); do
	for p in a b; do
		ctx "$p"
		printf '.'
	done
done
echo

# --- 2. instructions per signature, callgrind -----------------------------------

stintd_stop
# lib.sh starts "$STINTD": point it at a wrapper (exec keeps the pid, so
# STINTD_PID is the valgrind'ed stintd).
printf '#!/bin/sh\nexec %s --callgrind-out-file=%s "%s" "$@"\n' \
	"${VG[*]}" "$CG/stintd.%p" "$STINTD" >"$T/stintd-cg"
chmod +x "$T/stintd-cg"
REAL_STINTD=$STINTD
STINTD=$T/stintd-cg
STINT_SANITIZERS=yes stintd_start # (the longer start-up limit)
STINTD=$REAL_STINTD
# p11-kit-remote, traced (--trace-children), writes its own file (%p) when
# the client disconnects.
[ -n "$HAVE_C" ] && p11kit_start "${VG[@]}" --trace-children=yes \
	--callgrind-out-file="$CG/p11kit.%p"

# count PATH N: sets CLIENT_IR and SERVER_IR for N signatures on PATH.
count()
{
	local path=$1 n=$2 out=$CG/client.$1.$2 before f i

	SERVER_IR=0
	[ "$path" = b ] && callgrind_control -z "$STINTD_PID" >/dev/null 2>&1
	before=$(ls "$CG")
	# shellcheck disable=SC2046
	env $(client_env "$path") "${VG[@]}" --callgrind-out-file="$out" \
		$(client_args "$path") --label "$EC_TASK" --mech ecdsa \
		--in "$T/digest" --count "$n" >"$T/client.out" 2>&1 ||
		{ cat "$T/client.out" >&2; fail "path ($path): client failed"; }
	CLIENT_IR=$(cg_total "$out")
	case $path in
	b)
		callgrind_control -d "$STINTD_PID" >/dev/null 2>&1
		# The latest dump by its number (ls -t ties within a second).
		f=$(ls -v "$CG"/stintd."$STINTD_PID".* 2>/dev/null | tail -1)
		[ -n "$f" ] || fail "no callgrind dump of stintd"
		SERVER_IR=$(cg_total "$f")
		if [ -n "${BENCH_INSTR_KEEP:-}" ]; then
			cp "$f" "$BENCH_INSTR_KEEP/stintd.$n"
			cp "$out" "$BENCH_INSTR_KEEP/client.b.$n"
		fi
		;;
	c)
		for ((i = 0; i < 600; i++)); do
			f=$(comm -13 <(echo "$before") <(ls "$CG") | grep '^p11kit\.' | head -1)
			if [ -n "$f" ] && grep -q '^totals:\|^summary:' "$CG/$f" 2>/dev/null; then
				break
			fi
			f=
			sleep 0.1
		done
		[ -n "$f" ] || fail "no callgrind file of p11-kit-remote"
		SERVER_IR=$(cg_total "$CG/$f")
		;;
	esac
	[ -n "$CLIENT_IR" ] && [ -n "$SERVER_IR" ] || fail "path ($path): no count"
}

declare -A C S
printf 'instructions per ECDSA P-256 signature (callgrind, %d and %d signatures) ' "$N1" "$N2"
for p in $paths; do
	for n in "$N1" "$N2"; do
		count "$p" "$n"
		C[$p$n]=$CLIENT_IR
		S[$p$n]=$SERVER_IR
		printf '.'
	done
done
echo
stintd_stop
[ -n "$HAVE_C" ] && p11kit_stop

# --- report ----------------------------------------------------------------------

per()
{
	awk -v a="$1" -v b="$2" -v n="$((N2 - N1))" 'BEGIN { printf "%.0f", (b - a) / n }'
}

label()
{
	case $1 in
	a) echo "(a) SoftHSM2 in-process" ;;
	b) echo "(b) stint module -> stintd" ;;
	c) echo "(c) p11-kit client -> server" ;;
	esac
}

echo
echo "== CPU time per signature, ECDSA P-256, one client (us, user + system; median of $CPU_RUNS) =="
printf '  %-34s %10s %10s %10s %8s\n' path client server total "x (a)"
declare -A CT
for p in $paths; do
	# shellcheck disable=SC2086
	c=$(median_p 1 ${CPU_C[$p]:-}) s=$(median_p 1 ${CPU_S[$p]:-})
	CT[$p]=n/a
	[ "$c" != n/a ] && [ "$s" != n/a ] &&
		CT[$p]=$(awk -v c="$c" -v s="$s" 'BEGIN { printf "%.1f", c + s }')
done
for p in $paths; do
	# shellcheck disable=SC2086
	printf '  %-34s %10s %10s %10s %8s\n' "$(label "$p")" \
		"$(median_p 1 ${CPU_C[$p]:-})" "$(median_p 1 ${CPU_S[$p]:-})" "${CT[$p]}" \
		"$(ratio "${CT[$p]}" "${CT[a]}")"
done

if [ -n "$SYS_B" ]; then
	echo
	echo "== System calls per signature (strace -c, $SYS_N signatures; those made at least every other signature) =="
	echo "  (a) client:  $SYS_A"
	echo "  (b) client:  $SYS_B"
	echo "  (b) stintd:  $SYS_D"
fi

echo
echo "== Context switches per signature, ECDSA P-256, one client (median of $CPU_RUNS x $CTX_N; voluntary / non-voluntary) =="
printf '  %-34s %17s   %s\n' path "client vol / nonvol" "stintd (all threads) vol / nonvol"
for p in a b; do
	# shellcheck disable=SC2086
	printf '  %-34s %8s / %-8s %8s / %s\n' "$(label "$p")" \
		"$(median_p 3 ${CS_CV[$p]:-})" "$(median_p 3 ${CS_CN[$p]:-})" \
		"$([ "$p" = b ] && median_p 3 ${CS_SV[$p]:-} || echo -)" \
		"$([ "$p" = b ] && median_p 3 ${CS_SN[$p]:-} || echo -)"
done

echo
echo "== Instructions per signature, ECDSA P-256, one client (callgrind, user space) =="
printf '  %-34s %10s %10s %10s %8s\n' path client server total "x (a)"
declare -A TOT
for p in $paths; do
	TOT[$p]=$(($(per "${C[$p$N1]}" "${C[$p$N2]}") + $(per "${S[$p$N1]}" "${S[$p$N2]}")))
done
for p in $paths; do
	printf '  %-34s %10s %10s %10s %8s\n' "$(label "$p")" \
		"$(per "${C[$p$N1]}" "${C[$p$N2]}")" \
		"$(per "${S[$p$N1]}" "${S[$p$N2]}")" "${TOT[$p]}" \
		"$(ratio "${TOT[$p]}" "${TOT[a]}")"
done
echo "  target: (b) <= 1.40 x (a), CPU per signature, client + stintd"
if [ -n "${TOT[c]:-}" ]; then
	echo "  (b)/(c): CPU $(ratio "${CT[b]}" "${CT[c]}")," \
		"instructions $(ratio "${TOT[b]}" "${TOT[c]}")"
fi
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
