#!/bin/bash
# Stint performance benchmark (issue 2, section 8). Prints numbers; it is not
# a pass/fail test. Run from a configured, optimized (non-sanitizer) build:
#
#	make bench
#	top_builddir=/tmp/build tests/bench/bench.sh
#
# Everything runs side by side on one SoftHSM2 token in a temporary directory
# (removed at exit), over Unix sockets only:
#   (a) SoftHSM2 loaded in-process by the client (p11client --module
#       libsofthsm2.so, logged in with the PIN);
#   (b) stint-pkcs11.so -> agent.sock -> stintd -> SoftHSM2 (no PIN);
#   (c) p11-kit-client.so -> p11-kit server -> SoftHSM2 (logged in).
# All three sign with the very same key object: the task key stintd generated
# (CKA_LABEL = task id), so key type and template are identical by
# construction. Each figure is the median of BENCH_RUNS runs of
# BENCH_SECONDS seconds; the paths are interleaved within each round so that
# background noise spreads over all of them alike. ECDSA P-256 and RSA-2048
# run with 1, 2, 4 and 8 client processes (a rate is then the sum of the
# processes' rates), and b/a and b/c are printed for each count.
#
# Knobs (environment): BENCH_RUNS (5), BENCH_SECONDS (3), BENCH_TASKS (200,
# task start/end latency in a burst), BENCH_PACED_TASKS (100, started
# BENCH_PACE_MS = 250 ms apart), BENCH_CLI_TASKS (50), BENCH_LIVE_TASKS
# (1000), BENCH_QUICK=1 (2 runs of 1 s, 50/30/20/100 tasks: a smoke run),
# BENCH_SIGN_ONLY=1 (signatures per second only: no task latency, mutual
# TLS, audit modes or live tasks).

# lib.sh names its temporary directory and messages after the script.
. "$(cd "$(dirname "$0")/../integration" && pwd)/lib.sh"
. "$top_srcdir/tests/bench/stats.sh"

RUNS=${BENCH_RUNS:-5}
SECS=${BENCH_SECONDS:-3}
NTASKS=${BENCH_TASKS:-200}
NCLI=${BENCH_CLI_TASKS:-50}
NLIVE=${BENCH_LIVE_TASKS:-1000}
NPACED=${BENCH_PACED_TASKS:-100}
PACE_MS=${BENCH_PACE_MS:-250}
if [ -n "${BENCH_QUICK:-}" ]; then
	RUNS=2 SECS=1 NTASKS=50 NCLI=20 NLIVE=100 NPACED=30
fi
P11KIT_CLIENT=${P11KIT_CLIENT:-/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so}
AGENT=bench

need_cmd softhsm2-util p11-kit awk sort
need_p11client
[ -f "$P11KIT_CLIENT" ] || skip "no $P11KIT_CLIENT (package p11-kit-modules)"
stint_tmpdir

# --- refuse a build that would measure the wrong thing -----------------------

[ -x "$STINTD" ] || skip "no stintd in $top_builddir (build first)"
[ -f "$STINT_MODULE" ] || skip "no stint-pkcs11.so in $top_builddir/.libs"
for b in "$STINTD" "$STINT_MODULE" "$P11CLIENT"; do
	if ldd "$b" 2>/dev/null | grep -qE 'libasan|libubsan'; then
		echo "bench: $b is a sanitizer build; benchmark an optimized" \
			"build (./configure without --enable-sanitizers)" >&2
		exit 1
	fi
done
BUILD_CFLAGS=$(sed -n 's/^CFLAGS = //p' "$top_builddir/Makefile" 2>/dev/null)
case " $BUILD_CFLAGS " in
*" -O0 "*) echo "bench: warning: build uses -O0 ($BUILD_CFLAGS)" >&2 ;;
esac

# --- helpers ----------------------------------------------------------------

rss_kb()
{
	awk -v k="${2:-VmRSS}:" '$1 == k { print $2 }' "/proc/$1/status"
}

now_ns()
{
	date +%s%N
}

# path_env PATH: the environment and module for one path, as words for env.
path_cmd()
{
	case $1 in
	a) echo "env $P11CLIENT --module $SOFTHSM_MODULE --token $HSM_LABEL --pin-env BENCH_PIN" ;;
	b) echo "env STINT_SOCKET=$T/run/agent.sock $P11CLIENT --module $STINT_MODULE --token $AGENT" ;;
	c) echo "env P11_KIT_SERVER_ADDRESS=unix:path=$T/p11kit.sock $P11CLIENT --module $P11KIT_CLIENT --token $HSM_LABEL --pin-env BENCH_PIN" ;;
	esac
}

# measure NAME PATH PROCS KEYLABEL MECH [p11client args]: starts PROCS
# clients at once, each signing for $SECS s, and appends the sum of their
# rates to the list R[NAME]. A run in which a client fails is noted in
# ERRORS and run again, at most twice (several processes opening one SoftHSM
# token at once occasionally fail at start-up, before any signing).
declare -A R
ERRORS=()
measure()
{
	local attempt

	for attempt in 1 2 3; do
		measure_once "$@" && return 0
	done
	return 0
}

measure_once()
{
	local name=$1 path=$2 procs=$3 label=$4 mech=$5 i pids=() sum=0 rate bad=

	shift 5
	for ((i = 0; i < procs; i++)); do
		# shellcheck disable=SC2046
		timeout $((SECS + 60)) $(path_cmd "$path") --label "$label" \
			--mech "$mech" --seconds "$SECS" "$@" \
			>"$T/m.$i.out" 2>&1 &
		pids+=($!)
	done
	for ((i = 0; i < procs; i++)); do
		rate=
		if wait "${pids[$i]}"; then
			rate=$(sed -n 's/.*rate=\([0-9.]*\)\/s.*/\1/p' "$T/m.$i.out")
		fi
		if [ -z "$rate" ]; then
			bad="$bad [client $i: $(tr '\n' ' ' <"$T/m.$i.out" | cut -c1-160)]"
			continue
		fi
		sum=$(awk -v s="$sum" -v r="$rate" 'BEGIN { print s + r }')
	done
	if [ -n "$bad" ]; then
		ERRORS+=("$name:$bad")
		printf 'x'
		return 1
	fi
	R[$name]="${R[$name]:-} $sum"
	printf '.'
	return 0
}

# Median of a series, or n/a.
med()
{
	# shellcheck disable=SC2086
	median ${R[$1]:-}
}

row()
{
	# label, series name
	local n

	n=$(echo ${R[$2]:-} | wc -w)
	[ "$n" -gt 0 ] || return 0
	printf '  %-46s %9s   %-13s %s\n' "$1" "$(med "$2")" \
		"$(minmax ${R[$2]:-})" "$n"
}

# The signature rates and their ratios (issue 14 targets: b/a >= 0.65 at 2
# and 4 processes, >= 0.85 at one; b/c >= 1.3 at 1, 2, 4 and 8).
report_rates()
{
	local n s

	echo
	echo "== Signatures per second (median of $RUNS x ${SECS}s; min-max) =="
	printf '  %-46s %9s   %-13s %s\n' "path" "sig/s" "range" "runs"
	row "ECDSA P-256, 1 client: (a) SoftHSM2 direct" ec1a
	row "ECDSA P-256, 1 client: (b) stint, sync=batch" ec1b
	row "  (b) with CKM_ECDSA_SHA256" ec1bh
	row "ECDSA P-256, 1 client: (c) p11-kit RPC" ec1c
	row "  (b) sync=batch (after restart)" sync_batch
	row "  (b) sync=always (after restart)" sync_always
	row "  (b) sync=none (after restart)" sync_none
	row "  (b) sync=batch, ${N_LIVE:-?} live tasks" live_b
	for n in 2 4 8; do
		row "ECDSA P-256, $n procs: (a) SoftHSM2 direct" "ec${n}a"
		row "ECDSA P-256, $n procs: (b) stint, sync=batch" "ec${n}b"
		row "ECDSA P-256, $n procs: (c) p11-kit RPC" "ec${n}c"
	done
	for n in 1 2 4 8; do
		row "RSA-2048 PKCS#1 v1.5, $n procs: (a) direct" "rsa${n}a"
		row "RSA-2048 PKCS#1 v1.5, $n procs: (b) stint" "rsa${n}b"
		row "RSA-2048 PKCS#1 v1.5, $n procs: (c) p11-kit" "rsa${n}c"
	done

	echo
	echo "== Ratios (targets: b/a >= 0.85 one client, >= 0.65 at 2 and 4; b/c >= 1.30) =="
	for s in ec1 ec2 ec4 ec8 rsa1 rsa2 rsa4 rsa8; do
		printf '  %-6s b/a = %-5s  b/c = %-5s\n' "$s" \
			"$(ratio "$(med "${s}b")" "$(med "${s}a")")" \
			"$(ratio "$(med "${s}b")" "$(med "${s}c")")"
	done
}

# --- machine and versions ----------------------------------------------------

echo "Stint benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine:  $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
	"$(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
echo "kernel:   $(uname -sr)"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, at start)"
echo "versions: SoftHSM $(softhsm2-util --version 2>/dev/null)," \
	"$(openssl version 2>/dev/null | cut -d' ' -f1-2)," \
	"p11-kit $(dpkg-query -W -f '${Version}' p11-kit 2>/dev/null || echo '?')," \
	"SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1 || echo '?')"
echo "build:    $top_builddir (CFLAGS: ${BUILD_CFLAGS:-?})"
echo "method:   median of $RUNS runs x ${SECS}s per figure; C_SignInit+C_Sign per signature"
echo

# --- setup -------------------------------------------------------------------

softhsm_token stint
stintd_config sync=batch max_ttl=2h default_ttl=1h
stintd_start
export BENCH_PIN=$HSM_PIN
RSS_START=$(rss_kb "$STINTD_PID")
agent_add "$AGENT" "$(id -u)"
EC_TASK=$(task_start "$AGENT" --key ec-p256 --ttl 1h)
RSA_TASK=$(task_start "$AGENT" --key rsa-2048 --ttl 1h)

# The p11-kit command runs the server as a child process: start the server
# binary itself where it is, so that the pid we track is the server.
P11KIT_SERVER=/usr/libexec/p11-kit/p11-kit-server
[ -x "$P11KIT_SERVER" ] || P11KIT_SERVER="p11-kit server"
# shellcheck disable=SC2086
$P11KIT_SERVER -f -n "$T/p11kit.sock" --provider "$SOFTHSM_MODULE" \
	"pkcs11:token=$HSM_LABEL" >"$T/p11kit.out" 2>&1 &
P11KIT_PID=$!
wait_for 10 test -S "$T/p11kit.sock" ||
	{ cat "$T/p11kit.out" >&2; fail "p11-kit server did not start"; }
# lib.sh kills the pids it tracks at exit (and the wrapper's child, if any).
for p in "$P11KIT_PID" $(pgrep -P "$P11KIT_PID" 2>/dev/null); do
	if declare -F bg_track >/dev/null; then
		bg_track "$p"
	else
		_BG_PIDS+=("$p")
	fi
done

# 32 bytes (a SHA-256 digest) for CKM_ECDSA; a SHA-256 DigestInfo (51 bytes)
# for CKM_RSA_PKCS, which is what TLS 1.2 clients hand the token.
head -c 32 /dev/urandom >"$T/digest"
{
	printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'
	cat "$T/digest"
} >"$T/digestinfo"

# One signature on every path first: a broken path fails here, not as a 0.
for p in a b c; do
	# shellcheck disable=SC2046
	$(path_cmd "$p") --label "$EC_TASK" --mech ecdsa --in "$T/digest" \
		>"$T/smoke.out" 2>&1 || { cat "$T/smoke.out" >&2; fail "path ($p) cannot sign"; }
done

# --- signatures per second ---------------------------------------------------

printf 'ECDSA P-256, 1 client '
for ((r = 0; r < RUNS; r++)); do
	measure ec1a a 1 "$EC_TASK" ecdsa --in "$T/digest"
	measure ec1b b 1 "$EC_TASK" ecdsa --in "$T/digest"
	measure ec1bh b 1 "$EC_TASK" ecdsa-sha256 --in "$T/digest"
	measure ec1c c 1 "$EC_TASK" ecdsa --in "$T/digest"
done
echo
for n in 2 4 8; do
	printf 'ECDSA P-256, %d client processes ' "$n"
	for ((r = 0; r < RUNS; r++)); do
		for p in a b c; do
			measure "ec$n$p" "$p" "$n" "$EC_TASK" ecdsa --in "$T/digest"
		done
	done
	echo
done
for n in 1 2 4 8; do
	printf 'RSA-2048, %d client processes ' "$n"
	for ((r = 0; r < RUNS; r++)); do
		for p in a b c; do
			measure "rsa$n$p" "$p" "$n" "$RSA_TASK" rsa-pkcs --in "$T/digestinfo"
		done
	done
	echo
done
# The runs that failed and were retried (left out of the medians).
report_errors()
{
	[ "${#ERRORS[@]}" -gt 0 ] || return 0
	echo
	echo "== Failed runs (retried; left out of the medians) =="
	printf '  %s\n' "${ERRORS[@]}"
}

RSS_LOAD=$(rss_kb "$STINTD_PID")
if [ -n "${BENCH_SIGN_ONLY:-}" ]; then
	report_rates
	report_errors
	echo
	echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
	exit 0
fi

# --- task start / end latency --------------------------------------------------

ADMIN_BENCH=$top_builddir/tests/bench/admin_bench
if [ ! -x "$ADMIN_BENCH" ]; then
	# Not built by make (yet): compile it against the build's common code.
	ADMIN_BENCH=$T/admin_bench
	${CC:-cc} -std=c11 -O2 -D_GNU_SOURCE -I"$top_srcdir" -I"$top_srcdir/include" \
		$(pkg-config --cflags p11-kit-1 2>/dev/null) \
		-o "$ADMIN_BENCH" "$top_srcdir/tests/bench/admin_bench.c" \
		"$top_builddir/.libs/libstint-common.a" -lcbor \
		>"$T/cc.out" 2>&1 || { cat "$T/cc.out" >&2; ADMIN_BENCH=; }
fi
printf 'task start/end latency '
LAT_START= LAT_END= LAT_PACED_START= LAT_PACED_END=
if [ -n "$ADMIN_BENCH" ]; then
	timeout 600 "$ADMIN_BENCH" --socket "$T/run/admin.sock" --agent "$AGENT" \
		--count "$NTASKS" >"$T/lat.out" 2>&1 ||
		{ cat "$T/lat.out" >&2; fail "admin_bench failed"; }
	LAT_START=$(grep '^start ' "$T/lat.out")
	LAT_END=$(grep '^end ' "$T/lat.out")
	# Tasks that start when agents need them: each ended at once, the
	# next one PACE_MS later, so ready keys ([backend] key_pool) refill.
	timeout 600 "$ADMIN_BENCH" --socket "$T/run/admin.sock" --agent "$AGENT" \
		--count "$NPACED" --pace "$PACE_MS" >"$T/paced.out" 2>&1 ||
		{ cat "$T/paced.out" >&2; fail "admin_bench --pace failed"; }
	LAT_PACED_START=$(grep '^start ' "$T/paced.out")
	LAT_PACED_END=$(grep '^end ' "$T/paced.out")
fi
printf '. '
# The CLI, for comparison: process spawn and exit included.
: >"$T/cli.start"
: >"$T/cli.end"
for ((i = 0; i < NCLI; i++)); do
	t0=$(now_ns)
	id=$(stint task start --agent "$AGENT" -q) || fail "stint task start failed"
	t1=$(now_ns)
	echo "$id" >>"$T/cli.ids"
	echo $(((t1 - t0) / 1000)) >>"$T/cli.start"
done
while read -r id; do
	t0=$(now_ns)
	stint task end "$id" >/dev/null || fail "stint task end $id failed"
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000)) >>"$T/cli.end"
done <"$T/cli.ids"
echo .
CLI_START=$(pcts "$T/cli.start")
CLI_END=$(pcts "$T/cli.end")

# --- mutual TLS handshakes: client key through Stint vs SoftHSM2 direct -------

# One curl process makes NHS full handshakes (no session reuse: s_server -www
# closes each connection, --no-sessionid forbids resumption), so the engine
# and module start-up is paid once and the figure is handshakes per second.
# (s_time cannot use engine keys.) Path (b): the task's key and certificate
# through stint-pkcs11.so; path (a): a key of the same type generated in the
# SoftHSM2 token directly, with its certificate, through the same libp11
# engine with the PIN in the URI.
NHS=${BENCH_HANDSHAKES:-200}
[ -n "${BENCH_QUICK:-}" ] && NHS=50
MTLS_A= MTLS_B=
declare -A HS
mtls_setup()
{
	local id=0d01 pub

	command -v curl >/dev/null 2>&1 && command -v pkcs11-tool >/dev/null 2>&1 ||
		return 1
	engine_path >/dev/null || return 1
	# Server and the direct key's CA: software keys, made without the engine.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$T/srv.key" -out "$T/srv.pem" -days 2 -subj /CN=localhost \
		-addext subjectAltName=IP:127.0.0.1 2>/dev/null || return 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$T/dca.key" -out "$T/dca.pem" -days 2 -subj "/CN=Direct CA" \
		2>/dev/null || return 1
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$HSM_LABEL" --login \
		--pin "$HSM_PIN" --keypairgen --key-type EC:prime256v1 --id "$id" \
		--label direct --usage-sign >/dev/null 2>&1 || return 1
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$HSM_LABEL" --login \
		--pin "$HSM_PIN" --read-object --type pubkey --id "$id" \
		-o "$T/direct.pub.der" >/dev/null 2>&1 || return 1
	openssl pkey -pubin -inform DER -in "$T/direct.pub.der" -out "$T/direct.pub.pem" ||
		return 1
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$T/junk.key" -subj /CN=direct -out "$T/direct.csr" 2>/dev/null ||
		return 1
	printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >"$T/direct.ext"
	openssl x509 -req -in "$T/direct.csr" -force_pubkey "$T/direct.pub.pem" \
		-CA "$T/dca.pem" -CAkey "$T/dca.key" -CAcreateserial -days 1 \
		-extfile "$T/direct.ext" -outform DER -out "$T/direct.der" 2>/dev/null ||
		return 1
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$HSM_LABEL" --login \
		--pin "$HSM_PIN" --write-object "$T/direct.der" --type cert --id "$id" \
		--label direct >/dev/null 2>&1 || return 1
	{ stint ca cert; cat "$T/dca.pem"; } >"$T/clients-ca.pem"
	HS_PORT=$(free_port)
	openssl s_server -accept "127.0.0.1:$HS_PORT" -cert "$T/srv.pem" \
		-key "$T/srv.key" -CAfile "$T/clients-ca.pem" -Verify 1 \
		-verify_return_error -no_cache -num_tickets 0 -www -quiet \
		</dev/null >"$T/s_server.log" 2>&1 &
	bg_track $!
	wait_for 10 curl -sk -o /dev/null "https://127.0.0.1:$HS_PORT/" 
	return 0
}

# mtls_run NAME MODULE CERT-URI KEY-URI: appends handshakes/s to HS[NAME].
mtls_run()
{
	local name=$1 module=$2 cert=$3 key=$4 t0 t1 n

	t0=$(now_ns)
	env PKCS11_MODULE_PATH="$module" STINT_SOCKET="$T/run/agent.sock" \
		timeout 300 curl -sS --no-sessionid "${MTLS_OPTS[@]}" --cacert "$T/srv.pem" \
		--cert "$cert" --key "$key" -o /dev/null -w '%{http_code}\n' \
		"https://127.0.0.1:$HS_PORT/?[1-$NHS]" </dev/null >"$T/hs.out" 2>&1
	t1=$(now_ns)
	n=$(grep -c '^200$' "$T/hs.out")
	if [ "$n" -ne "$NHS" ]; then
		ERRORS+=("mtls $name: $n of $NHS requests succeeded: $(grep -v '^200$' "$T/hs.out" | head -2 | tr '\n' ' ')")
		printf 'x'
		return 1
	fi
	HS[$name]="${HS[$name]:-} $(awk -v n="$n" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", n / (ns / 1e9) }')"
	printf '.'
}

printf 'mutual TLS handshakes (curl, %d per run) ' "$NHS"
if mtls_setup; then
	for tls in 13 12; do
		v=(--tlsv1.3)
		[ "$tls" = 12 ] && v=(--tlsv1.2 --tls-max 1.2)
		for ((r = 0; r < RUNS; r++)); do
			MTLS_OPTS=("${v[@]}")
			mtls_run "a$tls" "$SOFTHSM_MODULE" \
				"pkcs11:token=$HSM_LABEL;object=direct;type=cert" \
				"pkcs11:token=$HSM_LABEL;object=direct;type=private;pin-value=$HSM_PIN"
			mtls_run "b$tls" "$STINT_MODULE" \
				"pkcs11:token=$AGENT;object=$EC_TASK;type=cert" \
				"pkcs11:token=$AGENT;object=$EC_TASK;type=private"
		done
	done
	echo
else
	echo "skipped (needs curl, pkcs11-tool and the libp11 engine)"
fi

# --- audit sync modes (path b, one client) -------------------------------------

# Restart per run, the modes interleaved, so that drift in the machine's
# load does not favour one mode; batch is measured again the same way.
printf 'ECDSA P-256, 1 client, sync=batch|always|none '
for ((r = 0; r < RUNS; r++)); do
	for mode in batch always none; do
		stintd_stop
		stintd_config sync="$mode" max_ttl=2h default_ttl=1h
		stintd_start
		measure "sync_$mode" b 1 "$EC_TASK" ecdsa --in "$T/digest"
	done
done
echo

# --- memory with many live tasks ------------------------------------------------

stintd_stop
stintd_config sync=batch max_ttl=2h default_ttl=1h
stintd_start
RSS_RESTART=$(rss_kb "$STINTD_PID")
printf '%d live tasks ' "$NLIVE"
LAT_LIVE=
if [ -n "$ADMIN_BENCH" ]; then
	timeout 1200 "$ADMIN_BENCH" --socket "$T/run/admin.sock" --agent "$AGENT" \
		--count "$NLIVE" --keep >"$T/live.out" 2>&1 ||
		{ cat "$T/live.out" >&2; fail "admin_bench --keep failed"; }
	LAT_LIVE=$(grep '^start ' "$T/live.out")
else
	for ((i = 0; i < NLIVE; i++)); do
		stint task start --agent "$AGENT" -q >/dev/null ||
			fail "stint task start failed"
	done
fi
echo .
N_LIVE=$(stint status --json 2>/dev/null | json_get live_tasks 2>/dev/null || echo '?')
RSS_LIVE=$(rss_kb "$STINTD_PID")
HWM_LIVE=$(rss_kb "$STINTD_PID" VmHWM)
# One more signing run with that many keys in the token and the store.
for ((r = 0; r < RUNS; r++)); do
	measure live_b b 1 "$EC_TASK" ecdsa --in "$T/digest"
done

# --- report ------------------------------------------------------------------

report_rates
printf '  audit: always/batch = %s  none/batch = %s\n' \
	"$(ratio "$(med sync_always)" "$(med sync_batch)")" \
	"$(ratio "$(med sync_none)" "$(med sync_batch)")"

echo
echo "== Task latency (EC P-256 key generation included) =="
if [ -n "$LAT_START" ]; then
	echo "  admin protocol, task start, $NTASKS in a row: ${LAT_START#start }"
	echo "  admin protocol, task end,   $NTASKS in a row: ${LAT_END#end }"
	echo "  admin protocol, task start, paced ${PACE_MS} ms: ${LAT_PACED_START#start }"
	echo "  admin protocol, task end,   paced ${PACE_MS} ms: ${LAT_PACED_END#end }"
else
	echo "  admin protocol: admin_bench could not be built (see above)"
fi
echo "  stint CLI,      task start: $CLI_START"
echo "  stint CLI,      task end:   $CLI_END"
[ -n "$LAT_LIVE" ] && echo "  admin protocol, start of $NLIVE tasks in a row: ${LAT_LIVE#start }"

if [ -n "$LAT_START" ]; then
	echo "  task start includes key generation, evidence (attestation key" \
		"signs), its verification and certificate issuance (CA key signs)"
	echo "  tasks/s (one client, in sequence): $(echo "$LAT_START" |
		sed -n 's/.*mean_ms=\([0-9.]*\).*/\1/p' |
		awk '{ if ($1 > 0) printf "%.0f", 1000 / $1; else print "n/a" }')"
fi

echo
echo "== Mutual TLS full handshakes per second (curl + libp11 engine, EC P-256 client key) =="
if [ "${#HS[@]}" -gt 0 ]; then
	printf '  %-46s %9s   %-13s %s\n' "client key" "hs/s" "range" "runs"
	for tls in 13 12; do
		for p in a b; do
			# shellcheck disable=SC2086
			printf '  %-46s %9s   %-13s %s\n' \
				"TLS 1.${tls#1}: ($p) $([ $p = a ] && echo SoftHSM2 direct || echo stint)" \
				"$(median ${HS[$p$tls]:-})" "$(minmax ${HS[$p$tls]:-})" \
				"$(echo ${HS[$p$tls]:-} | wc -w)"
		done
		# shellcheck disable=SC2086
		printf '  TLS 1.%s ratio b/a = %s (target >= 0.80)\n' "${tls#1}" \
			"$(ratio "$(median ${HS[b$tls]:-})" "$(median ${HS[a$tls]:-})")"
	done
else
	echo "  not measured"
fi

echo
echo "== stintd resident memory (VmRSS) =="
echo "  idle after start:              ${RSS_START} kB"
echo "  after the signing runs:        ${RSS_LOAD} kB"
echo "  after restart (2 live tasks):  ${RSS_RESTART} kB"
echo "  with $N_LIVE live tasks:          ${RSS_LIVE} kB (VmHWM ${HWM_LIVE} kB)"

report_errors
echo
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit 0
