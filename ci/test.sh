#!/bin/bash
# The full Stint test suite, as CI runs it (.ci/run calls this):
#   1. install missing Debian packages (ci/install-deps.sh)
#   2. default build, `make check` (unit + integration tests)
#   3. ASan+UBSan build (--enable-sanitizers), `make check`
#   4. libFuzzer build (CC=clang --enable-fuzzing), each fuzzer for
#      FUZZ_SECONDS (default 60) on a copy of its seed corpus
#   5. `make check-style` (clang-format)
# and prints one summary line, "N passed, M failed, K skipped", counting the
# tests of both `make check` runs plus one item per fuzzer and the style
# check. Exits non-zero if anything failed, after printing the logs of what
# failed. Build trees go to $STINT_CI_DIR (default _ci/ in the source tree).
# Run it as root on Debian 12: the identity tests switch uids.
set -uo pipefail

srcdir=$(cd "$(dirname "$0")/.." && pwd)
ci_dir=${STINT_CI_DIR:-$srcdir/_ci}
fuzz_seconds=${FUZZ_SECONDS:-60}
export JOBS=${JOBS:-2}

passed=0
failed=0
skipped=0
failures=()

stage()
{
	echo
	echo "=== $* ($(date -u +%H:%M:%S))"
}

record_fail()
{
	failed=$((failed + 1))
	failures+=("$1")
	echo "*** FAILED: $1"
}

# Adds the totals of an automake test-suite.log to the counters.
count_suite()
{
	local log=$1 name=$2 total pass skip xfail fail xpass error

	if [ ! -f "$log" ]; then
		record_fail "$name: no test-suite.log (make check did not run)"
		return
	fi
	total=$(sed -n 's/^# TOTAL: *//p' "$log")
	pass=$(sed -n 's/^# PASS: *//p' "$log")
	skip=$(sed -n 's/^# SKIP: *//p' "$log")
	xfail=$(sed -n 's/^# XFAIL: *//p' "$log")
	fail=$(sed -n 's/^# FAIL: *//p' "$log")
	xpass=$(sed -n 's/^# XPASS: *//p' "$log")
	error=$(sed -n 's/^# ERROR: *//p' "$log")
	echo "$name: total ${total:-?}, pass ${pass:-0}, skip ${skip:-0}," \
		"fail ${fail:-0}, error ${error:-0}"
	passed=$((passed + ${pass:-0} + ${xfail:-0}))
	skipped=$((skipped + ${skip:-0}))
	failed=$((failed + ${fail:-0} + ${xpass:-0} + ${error:-0}))
	if [ $((${fail:-0} + ${xpass:-0} + ${error:-0})) -gt 0 ]; then
		failures+=("$name: $((${fail:-0} + ${xpass:-0} + ${error:-0})) test(s), see $log")
		echo "--- $log"
		cat "$log"
	fi
	# Skips in CI usually mean a missing dependency: make them visible.
	grep -h '^SKIP: ' "$log" 2>/dev/null || true
}

# build_and_check NAME DIR CONFIGURE-ARGS...
build_and_check()
{
	local name=$1 dir=$2

	shift 2
	stage "$name build"
	if ! STINT_NO_AUTORECONF=1 "$srcdir/ci/build.sh" "$dir" "$@"; then
		record_fail "$name: build failed"
		return
	fi
	stage "$name make check"
	rm -f "$dir/test-suite.log"
	(cd "$dir" && make -j"$JOBS" check) || true
	count_suite "$dir/test-suite.log" "$name"
}

run_fuzzers()
{
	local dir=$ci_dir/fuzz fz name corpus work out rc n=0

	stage "fuzzing build (clang, --enable-fuzzing)"
	if ! CC=clang STINT_NO_AUTORECONF=1 "$srcdir/ci/build.sh" "$dir" \
		--enable-fuzzing; then
		record_fail "fuzzing: build failed"
		return
	fi
	for fz in "$dir"/tests/fuzz/fuzz_*; do
		[ -x "$fz" ] && [ -f "$fz" ] || continue
		case $fz in *.o | *.log) continue ;; esac
		name=$(basename "$fz")
		n=$((n + 1))
		work=$(mktemp -d)
		mkdir "$work/corpus"
		for corpus in "$srcdir/tests/fuzz/corpus/$name" \
			"$srcdir/tests/fuzz/corpus/${name#fuzz_}"; do
			if [ -d "$corpus" ]; then
				cp -R "$corpus/." "$work/corpus/"
				break
			fi
		done
		stage "fuzz $name for ${fuzz_seconds}s ($(find "$work/corpus" -type f | wc -l) seeds)"
		out=$work/fuzz.log
		(cd "$work" && "$fz" -max_total_time="$fuzz_seconds" \
			-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix="$work/" corpus >"$out" 2>&1)
		rc=$?
		tail -n 12 "$out"
		if [ "$rc" -eq 0 ]; then
			passed=$((passed + 1))
		else
			echo "--- $name log (last 80 lines):"
			tail -n 80 "$out"
			for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
				[ -f "$a" ] && echo "artifact $(basename "$a"): $(od -An -tx1 "$a" | head -c 600)"
			done
			record_fail "fuzz $name exited $rc"
		fi
		rm -rf "$work"
	done
	[ "$n" -gt 0 ] || record_fail "fuzzing: no fuzzer was built"
}

# make install into a DESTDIR puts every piece where the docs say.
check_install()
{
	local dest f missing=0

	stage "make install DESTDIR"
	dest=$(mktemp -d)
	if ! (cd "$ci_dir/default" && make install DESTDIR="$dest" \
		prefix=/usr sysconfdir=/etc >/dev/null); then
		record_fail "install: make install failed"
		rm -rf "$dest"
		return
	fi
	for f in usr/sbin/stintd usr/bin/stint usr/lib/pkcs11/stint-pkcs11.so \
		usr/include/stint/wire.h usr/include/stint/verify.h \
		etc/stint/stint.conf usr/share/man/man1/stint.1 \
		usr/share/man/man8/stintd.8 usr/share/man/man5/stint.conf.5 \
		usr/share/man/man8/stint-pkcs11.8 usr/share/man/man5/stint-agents.d.5 \
		usr/lib/systemd/system/stintd.service \
		usr/lib/sysusers.d/stint.conf usr/lib/tmpfiles.d/stint.conf \
		usr/lib/systemd/system/stintd.socket \
		usr/lib/systemd/system/stintd-admin.socket \
		etc/logrotate.d/stint usr/lib/libstint-verify.so.1 \
		usr/lib/pkgconfig/stint-verify.pc \
		usr/share/man/man3/stint_verify_peer.3 \
		usr/share/doc/stint/clients.md usr/share/doc/stint/operations.md \
		usr/share/doc/stint/relying-party.md usr/share/doc/stint/tpm.md \
		"$(pkg-config --variable=p11_module_configs p11-kit-1)/stint.module"; do
		if [ ! -e "$dest/$f" ]; then
			echo "install: missing $f"
			missing=1
		fi
	done
	rm -rf "$dest"
	if [ "$missing" -eq 0 ]; then
		passed=$((passed + 1))
	else
		record_fail "install: files missing from make install"
	fi
}

check_style()
{
	stage "make check-style"
	if ! command -v clang-format >/dev/null 2>&1; then
		record_fail "check-style: clang-format not installed"
		return
	fi
	if (cd "$ci_dir/default" && make check-style); then
		passed=$((passed + 1))
	else
		record_fail "check-style: run 'make format'"
	fi
}

start=$(date +%s)
stage "dependencies"
"$srcdir/ci/install-deps.sh" || { echo "ci: installing dependencies failed" >&2; exit 1; }

stage "autoreconf -fi"
(cd "$srcdir" && autoreconf -fi) || { echo "ci: autoreconf failed" >&2; exit 1; }

# The default build's make check also runs README.md's Quick start verbatim
# (tests/integration/quickstart.sh: installs to /usr and /etc, then undoes it).
STINT_QUICKSTART=1 build_and_check default "$ci_dir/default"
build_and_check sanitizers "$ci_dir/asan" --enable-sanitizers
check_install
run_fuzzers
check_style

stage "summary ($(($(date +%s) - start)) s)"
for f in "${failures[@]}"; do
	echo "failed: $f"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
