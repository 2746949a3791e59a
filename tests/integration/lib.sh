# shellcheck shell=bash
#
# lib.sh: shared helpers for Stint's integration tests (bash).
#
# Every tests/integration/NN-*.sh script starts with
#
#	. "$(dirname "$0")/lib.sh"
#	stint_tmpdir
#
# and then uses the helpers below. `make check` exports top_srcdir,
# top_builddir, SOFTHSM_MODULE and STINT_SANITIZERS; run by hand, set
# top_builddir (or STINT_BUILDDIR) to a configured and built tree, e.g.
#	top_builddir=/tmp/build tests/integration/30-revoke.sh
# A test exits 0 (pass), 1 (fail, via `fail`) or 77 (skipped, via `skip`).
#
# One suite, run per backend: STINT_TEST_BACKEND=softhsm (the default) runs
# stintd on a SoftHSM2 token, STINT_TEST_BACKEND=tpm on swtpm (tpm_lib.sh;
# the test skips with 77 when swtpm is missing). make check runs the core
# tests that way as tests/tpm/NAME.tpm (the driver on-tpm.sh; Makefile.am,
# TPM_SUITE_TESTS); by hand, e.g.
#	STINT_TEST_BACKEND=tpm top_builddir=/tmp/build tests/integration/30-revoke.sh
# Tests ask backend_has_key / backend_key_types instead of SoftHSM, and
# branch on $STINT_TEST_BACKEND only where the backend is the point.
#
# Environment and paths, after stint_tmpdir / softhsm_token / stintd_config:
#   T               the test's private directory (0755; secrets inside are
#                   in 0700 directories or 0600 files); removed on exit
#   STINTD STINT    the daemon and CLI binaries of the build tree
#   STINT_MODULE    $top_builddir/.libs/stint-pkcs11.so
#   P11CLIENT       $top_builddir/tests/integration/p11client
#   STINT_TEST_BACKEND  softhsm | tpm
#   SOFTHSM2_CONF   private SoftHSM2 config (exported), tokens in $T/tokens
#   HSM_LABEL HSM_PIN HSM_PIN_FILE   the backend token stintd logs in to
#                   (softhsm only)
#   TCTI SWTPM_PID  swtpm's TCTI string and pid (tpm only; state in $T/swtpm)
#   TPM_KEYS        $T/state/tpm, stintd's TPM key blobs (tpm only)
#   STINTD_CONF     $T/stint.conf;  state in $T/state, sockets in $T/run
#   STINT_SOCKET    $T/run/agent.sock (exported by p11_env)
#   STINT_ADMIN_SOCKET  $T/run/admin.sock (exported)
#   AUDIT_LOG       $T/state/audit.log
#   STINTD_PID STINTD_LOG   the running daemon and its stderr
#   FOREIGN         array prefix for programs that load our module but are
#                   not built with the sanitizers (pkcs11-tool, openssl,
#                   curl): `"${FOREIGN[@]}" pkcs11-tool ...` or `foreign ...`
#
# Helpers:
#   stint_tmpdir            create $T and the EXIT trap that cleans up
#   fail MSG / skip MSG / note MSG / need_root / need_cmd CMD...
#   free_port               a free TCP port on 127.0.0.1
#   backend_init            the backend for stintd: a SoftHSM2 token, or
#                           swtpm started (stopped by the EXIT trap)
#   backend_has_key ID      true while the backend holds task ID's key
#                           (SoftHSM object label / TPM key blob)
#   backend_key_types       the --key types the backend supports
#   softhsm_token [LABEL]   init a SoftHSM2 token in $T, PIN file 0600
#   softhsm_objects [LABEL] list SoftHSM objects (as root, with the PIN)
#   softhsm_has_label ID    true when SoftHSM holds an object labelled ID
#   stintd_config [KEY=VAL...]  write $STINTD_CONF for the backend (keys: sync,
#                           default_ttl, max_ttl, trust_domain, token)
#   stintd_start / stintd_stop / stintd_kill9 / stintd_alive
#   stint_setup [KEY=VAL...]  backend_init + config + stintd_start + p11_env
#   agent_add NAME UID [ARGS]  stint agent add, failing the test on error
#   stint ARGS...           the CLI on $T/run/admin.sock
#   task_start AGENT [ARGS] start a task, print its id
#   p11_env                 export STINT_SOCKET; check the module exists
#   need_p11client          skip unless tests/integration/p11client is built
#   p11client ARGS...       tests/integration/p11client --module $STINT_MODULE
#   p11tool ARGS...         pkcs11-tool --module $STINT_MODULE (FOREIGN env)
#   engine_openssl ARGS...  openssl with the libp11 engine on our module, in
#                           a process of its own (private OPENSSL_CONF)
#   as_uid UID CMD...       run CMD with uid=gid=UID, no groups
#   hex_of STRING           lowercase hex of a string's bytes (CKA_ID)
#   audit_count TASK EVENT  records of EVENT (sign-allowed, ...) for TASK
#   json_get KEY            read JSON on stdin, print member KEY
#   bg_track PID            remember a background pid to kill at exit
#   wait_for SECONDS CMD... poll CMD every 0.1 s until it succeeds
#   wire_py                 write $T/wire.py, a raw agent-socket client
#                           ($PYTHON $T/wire.py sign|hello SOCKET [TASK])
#   san_check_log FILE      fail-report ASan/UBSan errors found in FILE
#   tls_server_cert PREFIX  a throwaway server key and certificate for
#                           localhost/127.0.0.1: PREFIX.key, PREFIX.pem
#   s_server_start PREFIX CAFILE  openssl s_server -www with PREFIX.pem
#                           that requires a client certificate chaining to
#                           CAFILE; sets PORT and SRV_PID ($T/s_server.log)
#   s_server_stop           stop it
#   org_root_signs_ca       an outside root ($T/org.key, $T/org.pem) signs
#                           `stint ca csr`: $T/inter.pem, and $T/chain.pem
#                           (inter + root) for `stint ca install`
#   curl_env                CURL_ENV: the FOREIGN prefix for curl, plus its
#                           setlocale shim in sanitizer builds
#
# Sanitizer builds: stintd runs with ASan leak checking and halt on error;
# its logs are scanned at stintd_stop and at exit, and any report fails the
# test.

set -u
set -o pipefail

# --- locations --------------------------------------------------------------

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
if [ -z "${top_builddir:-}" ]; then
	if [ -n "${STINT_BUILDDIR:-}" ]; then
		top_builddir=$STINT_BUILDDIR
	else
		top_builddir=$top_srcdir
	fi
fi
: "${SOFTHSM_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
STINTD=$top_builddir/stintd
STINT=$top_builddir/stint
STINT_MODULE=$top_builddir/.libs/stint-pkcs11.so
P11CLIENT=$top_builddir/tests/integration/p11client
TEST_NAME=$(basename "$0" .sh)
STINT_TEST_BACKEND=${STINT_TEST_BACKEND:-softhsm}
case $STINT_TEST_BACKEND in
softhsm) ;;
tpm) TEST_NAME="$TEST_NAME (tpm)" ;;
*)
	echo "FAIL: $TEST_NAME: STINT_TEST_BACKEND='$STINT_TEST_BACKEND' (softhsm or tpm)" >&2
	exit 1
	;;
esac
# The system python, not a per-user shim: other uids run it too.
PYTHON=python3
[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3

T=
STINTD_PID=
STINTD_LOG=
STINTD_STARTS=0
_BG_PIDS=()

# --- reporting --------------------------------------------------------------

fail()
{
	echo "FAIL: $TEST_NAME: $*" >&2
	exit 1
}

skip()
{
	echo "SKIP: $TEST_NAME: $*" >&2
	exit 77
}

note()
{
	echo "# $*"
}

need_root()
{
	[ "$(id -u)" -eq 0 ] ||
		skip "needs root (runs processes as other uids); CI runs as root"
}

need_cmd()
{
	local c

	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			skip "'$c' not installed (ci/install-deps.sh installs it)"
	done
}

# --- sanitizers ---------------------------------------------------------------

# The sanitizer build instruments our binaries but not pkcs11-tool, openssl
# or curl: when they load stint-pkcs11.so the ASan runtime must come first,
# so those (and only those) get it preloaded, without leak checking.
#
# A preloaded libasan initialises lazily, on the first intercepted call.
# In curl, wget and p11tool (which link libp11-kit) that call is the
# malloc inside libp11-kit's constructor's newlocale(), made while glibc
# holds __libc_setlocale_lock for writing. ASan's init then calls
# dlsym(RTLD_DEFAULT, "swift_demangle"), fails, and clears the error with
# dlerror(), whose gettext read-locks the same lock (EDEADLK, ignored) and
# unlocks it: the lock ends up with a reader count of -1 and curl's first
# setlocale() in main() blocks forever, before it prints anything. A
# preloaded swift_demangle (returning NULL, "not Swift") makes that dlsym
# succeed, so dlerror() has nothing to translate. Prints ":PATH" or nothing.
_asan_shim()
{
	local so=$T/asan-swift-demangle.so

	[ -n "$T" ] || return 0
	[ -f "$so" ] || printf '%s\n' '#include <stddef.h>' \
		'char *swift_demangle(const char *, size_t, char *, size_t *, unsigned);' \
		'char *swift_demangle(const char *n, size_t l, char *b, size_t *bl, unsigned f)' \
		'{ (void)n; (void)l; (void)b; (void)bl; (void)f; return NULL; }' |
		gcc -shared -fPIC -nostdlib -x c -o "$so" - 2>/dev/null || return 0
	printf ':%s' "$so"
}

_sanitizers_detect()
{
	if [ -z "${STINT_SANITIZERS:-}" ]; then
		STINT_SANITIZERS=no
		# Captured first: with pipefail, `ldd | grep -q` can fail when
		# grep exits early and ldd gets SIGPIPE.
		case $(ldd "$STINT_MODULE" 2>/dev/null) in
		*libasan*) STINT_SANITIZERS=yes ;;
		esac
	fi
	FOREIGN=(env)
	if [ "$STINT_SANITIZERS" = yes ]; then
		local asan

		asan=$(gcc -print-file-name=libasan.so 2>/dev/null || true)
		[ -n "$asan" ] && [ -e "$asan" ] ||
			fail "sanitizer build but no libasan.so (install libgcc-12-dev)"
		asan=$(readlink -f "$asan")
		FOREIGN=(env "LD_PRELOAD=$asan$(_asan_shim)"
			"ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0")
	fi
	# Our own instrumented programs: stop at the first error.
	export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:halt_on_error=1}"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
}

foreign()
{
	"${FOREIGN[@]}" "$@"
}

# Prints sanitizer reports found in FILE and returns 1 if there are any.
san_check_log()
{
	local f=$1

	[ -f "$f" ] || return 0
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f"; then
		echo "--- sanitizer report in $f:" >&2
		cat "$f" >&2
		return 1
	fi
	return 0
}

# --- temporary directory and cleanup ----------------------------------------

bg_track()
{
	_BG_PIDS+=("$@")
}

# _stintd_kill: SIGTERM to a running stintd, SIGKILL after 20 s.
_stintd_kill()
{
	if [ -n "$STINTD_PID" ] && kill -0 "$STINTD_PID" 2>/dev/null; then
		kill -TERM "$STINTD_PID"
		_wait_pid "$STINTD_PID" 20
		kill -KILL "$STINTD_PID" 2>/dev/null
		wait "$STINTD_PID" 2>/dev/null
	fi
}

_cleanup()
{
	local rc=$? p

	set +e
	# stintd first: on the TPM backend it still talks to swtpm (a
	# background pid) while it shuts down.
	_stintd_kill
	for p in "${_BG_PIDS[@]}"; do
		# A background subshell's children first (by parent pid).
		pkill -P "$p" 2>/dev/null
		kill "$p" 2>/dev/null
	done
	for p in "${_BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	if [ -n "$T" ] && [ -d "$T" ]; then
		for p in "$T"/stintd.*.log; do
			if ! san_check_log "$p"; then
				echo "FAIL: $TEST_NAME: sanitizer error in stintd" >&2
				[ "$rc" -eq 0 ] && rc=1
			fi
		done
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
			for p in "$T"/stintd.*.log; do
				[ -f "$p" ] || continue
				echo "--- $p (last 40 lines):" >&2
				tail -n 40 "$p" >&2
			done
		fi
		if [ -n "${STINT_KEEP_TMP:-}" ]; then
			echo "# kept $T" >&2
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}

stint_tmpdir()
{
	T=$(mktemp -d "${TMPDIR:-/tmp}/stint-$(basename "$0" .sh)-$STINT_TEST_BACKEND.XXXXXX") ||
		fail "mktemp -d failed"
	# Other uids (the identity test) must reach agent.sock and the
	# copies of our binaries; secrets live in 0700 subdirectories.
	chmod 0755 "$T"
	trap _cleanup EXIT
	trap 'exit 130' INT TERM
	_sanitizers_detect
}

_wait_pid()
{
	local pid=$1 secs=$2 i

	for ((i = 0; i < secs * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

wait_for()
{
	local secs=$1 i

	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# --- small utilities ----------------------------------------------------------

free_port()
{
	if command -v "$PYTHON" >/dev/null 2>&1; then
		"$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
		return
	fi
	# No python: pick a random high port nobody listens on.
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		[ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ] && break
	done
	echo "$p"
}

hex_of()
{
	printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'
}

# Reads JSON on stdin, prints member $1 (top level; "a.b" for nested).
json_get()
{
	"$PYTHON" -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v if not isinstance(v, bool) else str(v).lower())' "$1"
}

as_uid()
{
	local uid=$1

	shift
	setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"
}

# --- SoftHSM2 ---------------------------------------------------------------

softhsm_token()
{
	HSM_LABEL=${1:-stint}
	need_cmd softhsm2-util
	[ -f "$SOFTHSM_MODULE" ] || skip "no SoftHSM2 module at $SOFTHSM_MODULE"
	mkdir -m 0700 "$T/tokens"
	export SOFTHSM2_CONF=$T/softhsm2.conf
	cat >"$SOFTHSM2_CONF" <<EOF
directories.tokendir = $T/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
	HSM_PIN=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	HSM_PIN_FILE=$T/hsm.pin
	(umask 077 && printf '%s' "$HSM_PIN" >"$HSM_PIN_FILE")
	softhsm2-util --init-token --free --label "$HSM_LABEL" \
		--pin "$HSM_PIN" --so-pin "so-$HSM_PIN" >"$T/softhsm-init.log" 2>&1 ||
		{ cat "$T/softhsm-init.log" >&2; fail "softhsm2-util --init-token failed"; }
}

# Objects on the backend token, read straight from SoftHSM with the PIN
# (what root could see; the agent cannot).
softhsm_objects()
{
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "${1:-$HSM_LABEL}" \
		--login --pin "$HSM_PIN" --list-objects 2>&1
}

# True when SoftHSM holds an object labelled $1 (a task id). Fails the
# test if SoftHSM cannot be listed, so "gone" is never a listing error.
softhsm_has_label()
{
	local out

	out=$(softhsm_objects) || { echo "$out" >&2; fail "cannot list the SoftHSM token"; }
	grep -q "label: *$1\$" <<<"$out"
}

# --- the backend, per STINT_TEST_BACKEND ---------------------------------------

backend_init()
{
	case $STINT_TEST_BACKEND in
	softhsm) softhsm_token stint ;;
	tpm)
		command -v swtpm >/dev/null 2>&1 ||
			skip "swtpm is not installed (apt-get install swtpm swtpm-tools)"
		# shellcheck source=tpm_lib.sh
		. "$top_srcdir/tests/integration/tpm_lib.sh"
		swtpm_start
		TPM_KEYS=$T/state/tpm
		;;
	esac
}

# True while the backend holds the key of task $1. SoftHSM: an object
# labelled with the id (a listing error fails the test); TPM: the key blob
# <state_dir>/tpm/<id>.key, without which the key cannot be loaded.
backend_has_key()
{
	case $STINT_TEST_BACKEND in
	softhsm) softhsm_has_label "$1" ;;
	tpm)
		[ -d "$TPM_KEYS" ] || fail "no TPM key directory $TPM_KEYS"
		[ -e "$TPM_KEYS/$1.key" ]
		;;
	esac
}

backend_key_types()
{
	case $STINT_TEST_BACKEND in
	softhsm) echo ec-p256 ec-p384 rsa-2048 ;;
	tpm) echo ec-p256 rsa-2048 ;;
	esac
}

# --- stintd -----------------------------------------------------------------

stintd_config()
{
	local kv k v sync=batch default_ttl=15m max_ttl=1h trust=test.example
	local token=${HSM_LABEL:-stint} retention=

	for kv in "$@"; do
		k=${kv%%=*}
		v=${kv#*=}
		case $k in
		sync) sync=$v ;;
		default_ttl) default_ttl=$v ;;
		max_ttl) max_ttl=$v ;;
		trust_domain) trust=$v ;;
		token) token=$v ;;
		retention) retention="retention = $v" ;;
		*) fail "stintd_config: unknown key '$k'" ;;
		esac
	done
	[ -d "$T/state" ] || mkdir -m 0700 "$T/state"
	[ -d "$T/run" ] || mkdir -m 0755 "$T/run"
	STINTD_CONF=$T/stint.conf
	AUDIT_LOG=$T/state/audit.log
	export STINT_ADMIN_SOCKET=$T/run/admin.sock
	cat >"$STINTD_CONF" <<EOF
[stintd]
state_dir = $T/state
runtime_dir = $T/run
trust_domain = $trust
default_ttl = $default_ttl
max_ttl = $max_ttl
$retention
EOF
	case $STINT_TEST_BACKEND in
	softhsm)
		cat >>"$STINTD_CONF" <<EOF

[backend]
type = pkcs11
module = $SOFTHSM_MODULE
token = $token
pin_file = $HSM_PIN_FILE
EOF
		;;
	tpm)
		[ -n "${TCTI:-}" ] || fail "stintd_config: swtpm not started (backend_init)"
		cat >>"$STINTD_CONF" <<EOF

[backend]
type = tpm
tcti = $TCTI
EOF
		;;
	esac
	cat >>"$STINTD_CONF" <<EOF

[audit]
path = $AUDIT_LOG
sync = $sync
EOF
}

stintd_alive()
{
	[ -n "$STINTD_PID" ] && kill -0 "$STINTD_PID" 2>/dev/null
}

stintd_start()
{
	local i limit=100

	[ -x "$STINTD" ] || skip "no stintd in $top_builddir (build first)"
	[ -x "$STINT" ] || skip "no stint CLI in $top_builddir (build first)"
	[ -n "${STINTD_CONF:-}" ] || stintd_config
	[ "$STINT_SANITIZERS" = yes ] && limit=300
	STINTD_STARTS=$((STINTD_STARTS + 1))
	STINTD_LOG=$T/stintd.$STINTD_STARTS.log
	# shellcheck disable=SC2086 # STINTD_ARGS: extra words, e.g. --init
	"$STINTD" --config "$STINTD_CONF" --foreground ${STINTD_ARGS:-} \
		>"$STINTD_LOG" 2>&1 &
	STINTD_PID=$!
	# After kill -9 the old sockets are still there: wait until the new
	# daemon answers on admin.sock, not merely until the files exist.
	for ((i = 0; i < limit; i++)); do
		if [ -S "$T/run/agent.sock" ] && [ -S "$T/run/admin.sock" ] &&
			"$STINT" --socket "$T/run/admin.sock" status >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$STINTD_PID" 2>/dev/null; then
			wait "$STINTD_PID"
			echo "stintd exited with status $?; its log:" >&2
			cat "$STINTD_LOG" >&2
			STINTD_PID=
			fail "stintd did not start"
		fi
		sleep 0.1
	done
	cat "$STINTD_LOG" >&2
	fail "stintd did not create its sockets within $((limit / 10)) s"
}

stintd_stop()
{
	local rc

	[ -n "$STINTD_PID" ] || fail "stintd_stop: stintd not running"
	kill -TERM "$STINTD_PID" || fail "stintd (pid $STINTD_PID) already gone"
	if ! _wait_pid "$STINTD_PID" 30; then
		kill -KILL "$STINTD_PID"
		fail "stintd did not exit within 30 s of SIGTERM"
	fi
	wait "$STINTD_PID"
	rc=$?
	STINTD_PID=
	[ "$rc" -eq 0 ] || { cat "$STINTD_LOG" >&2; fail "stintd exited $rc on SIGTERM"; }
	[ ! -e "$T/run/agent.sock" ] || fail "agent.sock left behind after SIGTERM"
	[ ! -e "$T/run/admin.sock" ] || fail "admin.sock left behind after SIGTERM"
	san_check_log "$STINTD_LOG" || fail "sanitizer error in stintd"
}

# kill -9: no cleanup; the sockets stay behind and the next start must cope.
stintd_kill9()
{
	kill -KILL "$STINTD_PID"
	wait "$STINTD_PID" 2>/dev/null
	STINTD_PID=
}

stint()
{
	"$STINT" --socket "$T/run/admin.sock" "$@"
}

# The usual start of a test: a backend (token or swtpm), a config, a running
# daemon, and the module's environment.
stint_setup()
{
	backend_init
	stintd_config "$@"
	stintd_start
	p11_env
}

agent_add()
{
	local name=$1 uid=$2

	shift 2
	stint agent add "$name" --uid "$uid" "$@" >/dev/null ||
		fail "stint agent add $name --uid $uid $* failed"
}

# task_start AGENT [stint task start options]: prints the new task id.
task_start()
{
	local agent=$1 id

	shift
	id=$(stint task start --agent "$agent" -q "$@") ||
		fail "stint task start --agent $agent $* failed"
	[ -n "$id" ] || fail "stint task start -q printed no task id"
	echo "$id"
}

# Number of audit records with event $2 for task $1 (in $3, default the log).
audit_count()
{
	"$PYTHON" - "$1" "$2" "${3:-$AUDIT_LOG}" <<'EOF'
import json, sys
task, event, path = sys.argv[1:4]
n = 0
with open(path, "rb") as f:
    for line in f:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("task") == task and r.get("event") == event:
            n += 1
print(n)
EOF
}

# --- the PKCS#11 module -------------------------------------------------------

p11_env()
{
	[ -f "$STINT_MODULE" ] || skip "no stint-pkcs11.so in $top_builddir/.libs"
	export STINT_SOCKET=$T/run/agent.sock
}

need_p11client()
{
	[ -x "$P11CLIENT" ] ||
		skip "no $P11CLIENT (make check builds it; by hand: make tests/integration/p11client)"
}

p11client()
{
	"$P11CLIENT" --module "$STINT_MODULE" "$@"
}

# (A hung module must fail the test, not stall it: hence the timeouts.)
p11tool()
{
	timeout 120 "${FOREIGN[@]}" pkcs11-tool --module "$STINT_MODULE" "$@"
}

# The libp11 engine (OpenSSL 3's engine API on Debian 12).
engine_path()
{
	local d

	d=$(openssl version -e 2>/dev/null | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
	for p in "$d/pkcs11.so" /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so \
		/usr/lib/*/engines-3/pkcs11.so; do
		[ -f "$p" ] && { echo "$p"; return 0; }
	done
	return 1
}

# Runs openssl with the engine configured for MODULE (default our module).
# Only this process sees the config: libp11 0.4.12 breaks OpenSSL's own EC
# operations in a process that loaded it (OpenSC/libp11 #456), so keys are
# generated and signatures verified elsewhere.
engine_openssl()
{
	local cnf=$T/engine-openssl.cnf eng

	if [ ! -f "$cnf" ] || [ "${_ENGINE_MODULE:-}" != "${ENGINE_MODULE:-$STINT_MODULE}" ]; then
		eng=$(engine_path) ||
			skip "libp11 engine not installed (libengine-pkcs11-openssl)"
		_ENGINE_MODULE=${ENGINE_MODULE:-$STINT_MODULE}
		cat >"$cnf" <<EOF
openssl_conf = openssl_init

[openssl_init]
engines = engine_section

[engine_section]
pkcs11 = pkcs11_section

[pkcs11_section]
engine_id = pkcs11
dynamic_path = $eng
MODULE_PATH = $_ENGINE_MODULE
init = 0
EOF
	fi
	OPENSSL_CONF=$cnf timeout 120 "${FOREIGN[@]}" openssl "$@"
}

# --- uids, binaries and cgroups for the identity tests -----------------------

# free_uid N: the first uid from N up that no user, group or process uses.
free_uid()
{
	local u=$1

	while getent passwd "$u" >/dev/null || getent group "$u" >/dev/null ||
		pgrep -U "$u" >/dev/null; do
		u=$((u + 1))
	done
	echo "$u"
}

# alpha_setup N: agent alpha of uid A (the first free uid from N), and what
# uid A needs to use it: copies of the module and p11client in $T/bin (MOD,
# CLI), $T/digest (32 random bytes) and $T/wire.py readable. Call after
# stintd runs, need_p11client and wire_py.
alpha_setup()
{
	A=$(free_uid "$1")
	mkdir -m 0755 "$T/bin"
	cp "$STINT_MODULE" "$P11CLIENT" "$T/bin/"
	chmod 0755 "$T/bin"/*
	MOD=$T/bin/$(basename "$STINT_MODULE")
	CLI=$T/bin/p11client
	chmod 0644 "$T/wire.py"
	head -c 32 /dev/urandom >"$T/digest"
	chmod 0644 "$T/digest"
	agent_add alpha "$A"
}

# cg_test_tree NAME: the test's own cgroup in the cgroup v2 hierarchy, CG2
# being where that is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on
# a hybrid host) and CGTEST the new cgroup's path from its root
# (/NAME-PID). At exit whatever runs in the tree is killed and the tree
# removed, before lib.sh's cleanup. Skips (77) without a writable
# hierarchy. Call after stint_tmpdir.
cg_test_tree()
{
	need_cmd findmnt
	CG2=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
	[ -n "$CG2" ] || skip "no cgroup v2 hierarchy mounted"
	CGTEST=/$1-$$
	mkdir "$CG2$CGTEST" 2>/dev/null ||
		skip "cannot create a cgroup in $CG2 (not writable here)"
	trap 'rc=$?; cg_test_cleanup; (exit $rc); _cleanup' EXIT
}

cg_test_cleanup()
{
	local d

	[ -n "${CGTEST:-}" ] && [ -d "$CG2$CGTEST" ] || return 0
	for d in $(find "$CG2$CGTEST" -depth -type d 2>/dev/null); do
		xargs -r kill -KILL <"$d/cgroup.procs" 2>/dev/null
	done
	sleep 0.2
	find "$CG2$CGTEST" -depth -type d -exec rmdir {} \; 2>/dev/null
}

# --- raw agent-socket client (python3), for the abuse and identity tests -----

# Writes $T/wire.py: a minimal CBOR codec for Stint frames. Usage:
#   $PYTHON $T/wire.py sign SOCKET TASK [MECH]  -> prints "status=N error=..."
#   $PYTHON $T/wire.py hello SOCKET             -> prints "status=N agent=..."
wire_py()
{
	cat >"$T/wire.py" <<'EOF'
import socket, struct, sys

def enc_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | ai]) + struct.pack(fmt, n)

def enc(v):
    if isinstance(v, bool):
        return bytes([0xf5 if v else 0xf4])
    if isinstance(v, int):
        return enc_head(0, v)
    if isinstance(v, bytes):
        return enc_head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return enc_head(3, len(b)) + b
    if isinstance(v, list):
        return enc_head(4, len(v)) + b"".join(enc(x) for x in v)
    if isinstance(v, dict):
        return enc_head(5, len(v)) + b"".join(enc(k) + enc(x) for k, x in v.items())
    raise TypeError(v)

def dec(b, i=0):
    ib = b[i]; major = ib >> 5; ai = ib & 31; i += 1
    if ai < 24:
        n = ai
    elif ai in (24, 25, 26, 27):
        size = 1 << (ai - 24)
        n = int.from_bytes(b[i:i + size], "big"); i += size
    else:
        n = ai
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major == 2:
        return bytes(b[i:i + n]), i + n
    if major == 3:
        return b[i:i + n].decode(), i + n
    if major == 4:
        out = []
        for _ in range(n):
            x, i = dec(b, i); out.append(x)
        return out, i
    if major == 5:
        out = {}
        for _ in range(n):
            k, i = dec(b, i); x, i = dec(b, i); out[k] = x
        return out, i
    if major == 7:
        return {20: False, 21: True, 22: None}.get(ai), i
    raise ValueError("cbor major %d" % major)

def frame(m):
    body = enc(m)
    return struct.pack(">I", len(body)) + body

def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf

def read_reply(s):
    head = recv_exact(s, 4)
    if head is None:
        return None
    n = struct.unpack(">I", head)[0]
    body = recv_exact(s, n)
    if body is None:
        return None
    return dec(body)[0]

def connect(path, timeout=10):
    # A blocking connect: with a timeout set, Python connects non-blocking
    # and a full listen backlog gives EAGAIN at once instead of waiting.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(timeout)
    return s

def show(rep):
    if rep is None:
        print("closed")
    else:
        print("status=%d error=%s agent=%s" % (rep.get(2, -1), rep.get(3, ""), rep.get(5, "")))

if __name__ == "__main__":
    cmd, path = sys.argv[1], sys.argv[2]
    s = connect(path)
    if cmd == "sign":
        mech = int(sys.argv[4], 0) if len(sys.argv) > 4 else 0x1041
        s.sendall(frame({1: 3, 6: sys.argv[3], 7: mech, 8: b"x" * 32}))
    elif cmd == "hello":
        s.sendall(frame({1: 1, 4: 1}))
    else:
        raise SystemExit("usage: wire.py sign|hello SOCKET [TASK [MECH]]")
    show(read_reply(s))
EOF
}

# --- TLS peers: server certificates, s_server, an outside root, curl ---------

# A throwaway EC P-256 key and self-signed certificate for a TLS server on
# 127.0.0.1 (PREFIX.key, PREFIX.pem), made without the engine.
tls_server_cert()
{
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=localhost" \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null ||
		fail "cannot make the server certificate $1.pem"
}

# openssl s_server on a free port ($PORT, pid $SRV_PID) with the key and
# certificate PREFIX.key/.pem; it requires a client certificate that
# chains to CAFILE and answers with its session report (-www).
SRV_PID=
s_server_start()
{
	local prefix=$1 cafile=$2

	PORT=$(free_port)
	openssl s_server -accept "127.0.0.1:$PORT" -cert "$prefix.pem" \
		-key "$prefix.key" -CAfile "$cafile" -Verify 1 \
		-verify_return_error -www </dev/null >"$T/s_server.log" 2>&1 &
	SRV_PID=$!
	bg_track "$SRV_PID"
	wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null ||
		{ cat "$T/s_server.log" >&2; fail "s_server did not listen on port $PORT"; }
}

s_server_stop()
{
	kill "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=
}

# An outside PKI: a root CA ($T/org.key, $T/org.pem) signs Stint's CSR as
# an intermediate ($T/inter.pem); $T/chain.pem (intermediate, then root)
# is what `stint ca install` takes.
org_root_signs_ca()
{
	stint ca csr >"$T/ca.csr" || fail "stint ca csr"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$T/org.key" -out "$T/org.pem" -days 2 -subj "/CN=Org Root" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
		fail "cannot make the org root"
	printf '%s\n' 'basicConstraints=critical,CA:TRUE' \
		'keyUsage=critical,keyCertSign,cRLSign' 'subjectKeyIdentifier=hash' \
		'authorityKeyIdentifier=keyid' >"$T/ext.cnf"
	openssl x509 -req -in "$T/ca.csr" -CA "$T/org.pem" -CAkey "$T/org.key" \
		-CAcreateserial -days 1 -extfile "$T/ext.cnf" -out "$T/inter.pem" \
		2>/dev/null || fail "cannot sign the CSR"
	cat "$T/inter.pem" "$T/org.pem" >"$T/chain.pem"
}

# Sanitizer builds: curl with libasan preloaded deadlocks in its first
# setlocale() and, at exit, in p11-kit's freelocale() (glibc 2.36's
# locale lock is left held under ASan's interceptors), so curl, and only
# curl, also gets a setlocale that keeps the C locale and a freelocale
# that leaks at exit. Sets CURL_ENV, the prefix to run curl with.
curl_env()
{
	local e

	CURL_ENV=("${FOREIGN[@]}")
	[ "$STINT_SANITIZERS" = yes ] || return 0
	printf '%s\n' '#include <locale.h>' \
		'char *setlocale(int c, const char *l) { (void)c; (void)l; return (char *)"C"; }' \
		'void freelocale(locale_t l) { (void)l; }' >"$T/nolocale.c"
	gcc -shared -fPIC -o "$T/nolocale.so" "$T/nolocale.c" ||
		fail "cannot build the setlocale shim for curl"
	CURL_ENV=()
	for e in "${FOREIGN[@]}"; do
		case $e in
		LD_PRELOAD=*) e="$e $T/nolocale.so" ;;
		esac
		CURL_ENV+=("$e")
	done
}

# --- review: shared setup of the agents.d and race tests --------------------

# A backend, a config (stintd_config's arguments) and an empty agents.d
# beside it ($AD): write the declarations, then stintd_start.
agents_dir_init()
{
	backend_init
	stintd_config "$@"
	AD=$T/agents.d
	mkdir -m 0755 "$AD"
}

# What a signer of another uid runs: the module and p11client copied to
# $T/bin ($MOD: the module) and a 32-byte digest ($T/digest), all readable.
signer_setup()
{
	p11_env
	need_p11client
	mkdir -m 0755 "$T/bin"
	cp "$STINT_MODULE" "$P11CLIENT" "$T/bin/"
	chmod 0755 "$T/bin"/*
	MOD=$T/bin/$(basename "$STINT_MODULE")
	head -c 32 /dev/urandom >"$T/digest"
	chmod 0644 "$T/digest"
}

# race_signers_start UID TOKEN LABEL MARKER WHAT: $clients (default 4)
# processes of UID sign with the task key until refused, counting what
# they sign once MARKER exists (outputs MARKER.K.out, pids RACE_PIDS);
# fails unless all still sign 1.5 s later. Then do WHAT (e.g. "the
# reload") and call race_signers_end.
race_signers_start()
{
	local uid=$1 token=$2 label=$3 marker=$4 what=$5 k p

	RACE_PIDS=()
	for ((k = 0; k < ${clients:-4}; k++)); do
		as_uid "$uid" "$T/bin/p11client" --module "$MOD" --token "$token" \
			--label "$label" --mech ecdsa --in "$T/digest" --until-refused \
			--after-file "$marker" --seconds 60 >"$marker.$k.out" 2>&1 &
		RACE_PIDS+=($!)
		bg_track $!
	done
	sleep 1.5
	for p in "${RACE_PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null ||
			{ cat "$marker".*.out; fail "a signer stopped before $what"; }
	done
}

# race_signers_end MARKER WHAT: WHAT has returned: touches MARKER and
# fails when a signer got a signature after it.
race_signers_end()
{
	local marker=$1 what=$2 k out ok

	touch "$marker"
	for ((k = 0; k < ${#RACE_PIDS[@]}; k++)); do
		wait "${RACE_PIDS[$k]}"
		out=$marker.$k.out
		ok=$(sed -n 's/^after_marker_ok=//p' "$out")
		[ -n "$ok" ] || { cat "$out"; fail "signer $k did not report after_marker_ok"; }
		[ "$ok" -eq 0 ] ||
			{ cat "$out"; fail "signer $k got $ok signatures after $what returned"; }
	done
}

# stint_user_get: the system user `stint`, for a test that runs stintd as
# stint (SU, SG: its uid and gid), made with etc/sysusers.d/stint.conf (or
# useradd) when missing. One test (or ci/quickstart.sh) at a time makes
# and removes it: the lock, on /tmp itself so that no lock file is left,
# is fd 9, held until the test exits. Call stint_user_put from the test's
# EXIT trap.
stint_user_get()
{
	exec 9</tmp
	flock -w 600 9 ||
		fail "user stint is still in use by another test (or ci/quickstart.sh) after 10 minutes"
	STINT_USER_MADE=
	if ! getent passwd stint >/dev/null; then
		if command -v systemd-sysusers >/dev/null 2>&1; then
			systemd-sysusers "$top_srcdir/etc/sysusers.d/stint.conf" ||
				fail "systemd-sysusers etc/sysusers.d/stint.conf failed"
		else
			useradd --system --no-create-home --shell /usr/sbin/nologin stint ||
				fail "useradd stint failed"
		fi
		STINT_USER_MADE=yes
		getent passwd stint >/dev/null || fail "no user stint after sysusers"
	fi
	SU=$(id -u stint)
	SG=$(id -g stint)
}

# stint_user_put [CMD...]: from the EXIT trap: stops stintd (it runs as
# stint), runs CMD (e.g. cg_test_cleanup), then removes user stint if
# stint_user_get made it.
stint_user_put()
{
	set +e
	_stintd_kill
	STINTD_PID=
	[ $# -eq 0 ] || "$@"
	if [ -n "${STINT_USER_MADE:-}" ]; then
		userdel stint 2>/dev/null
		getent group stint >/dev/null && groupdel stint 2>/dev/null
		getent passwd stint >/dev/null && echo "# could not remove user stint" >&2
	fi
	return 0
}

# slowtoken_config: a test's stintd config whose [backend] module is the
# bench shim tests/bench/slowtoken.so over SoftHSM2 (skips on another
# backend or without the shim); sets SHIM, exports SLOWTOKEN_MODULE. The
# caller sets the shim's other SLOWTOKEN_* variables and starts stintd.
slowtoken_config()
{
	[ "$STINT_TEST_BACKEND" = softhsm ] ||
		skip "the slow token (and its hold) is a PKCS#11 shim over SoftHSM2"
	SHIM=$top_builddir/tests/bench/.libs/slowtoken.so
	[ -f "$SHIM" ] || skip "no $SHIM (make check builds it)"
	need_p11client
	stint_tmpdir
	backend_init
	stintd_config
	sed -i "s|^module = .*|module = $SHIM|" "$STINTD_CONF"
	export SLOWTOKEN_MODULE=$SOFTHSM_MODULE
}

# strace_attach_wait PID STRACE_PID ERRFILE: waits until `strace -f -p PID`
# (pid STRACE_PID, stderr in ERRFILE, attach messages not quieted: no -q)
# traces every thread of PID; fails the test when it does not within 30 s.
# strace prints "Process PID attached" once it has seized and interrupted
# every thread, so each later syscall is traced (TracerPid alone is set
# before the interrupt); threads created since are traced from clone (-f).
strace_attach_wait()
{
	local pid=$1 spid=$2 errf=$3 st tp

	wait_for 30 grep -q "Process $pid attached" "$errf" ||
		{ cat "$errf" >&2; fail "strace (pid $spid) did not attach to $pid within 30 s"; }
	for st in /proc/"$pid"/task/*/status; do
		tp=$(awk '$1 == "TracerPid:" { print $2 }' "$st" 2>/dev/null) || continue
		# (a thread that has exited meanwhile is no thread to trace)
		[ "$tp" = "$spid" ] || [ ! -e "$st" ] ||
			{ cat "$errf" >&2; fail "strace (pid $spid) does not trace thread ${st%/status} of $pid (TracerPid '$tp')"; }
	done
}
