#!/bin/bash
# Daemon mode (no --foreground): stintd forks before it opens anything, so
# the audit log's sync thread runs in the daemon. The test signs with
# sync = batch and watches the daemon fdatasync the log (strace), then
# sends SIGTERM: the daemon must exit (it used to hang in
# stint_audit_close) and remove its --pid-file. A start-up error reaches
# the terminal and the exit status.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_p11client
backend_init
stintd_config sync=batch
pidf=$T/run/stintd.pid

# A start-up failure in the daemon is reported by the process that forked.
cp "$STINTD_CONF" "$T/bad.conf"
sed -i "s|^path = .*|path = $T/no/such/dir/audit.log|" "$T/bad.conf"
if "$STINTD" --config "$T/bad.conf" --pid-file "$pidf" >"$T/bad.out" 2>&1; then
	fail "stintd in daemon mode exited 0 although its audit log cannot be opened"
fi
grep -q "audit log" "$T/bad.out" || { cat "$T/bad.out"; fail "the daemon's start-up error did not reach stderr"; }
[ ! -e "$pidf" ] || fail "a failed start left a pid file"

# The daemon's stderr is /dev/null: sanitizer reports go to files.
ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$T/daemon-asan" \
	UBSAN_OPTIONS="$UBSAN_OPTIONS:log_path=$T/daemon-ubsan" \
	"$STINTD" --config "$STINTD_CONF" --pid-file "$pidf" >"$T/start.out" 2>&1 ||
	{ cat "$T/start.out"; fail "stintd (daemon mode) exited non-zero"; }
[ -s "$pidf" ] || fail "no pid file after stintd returned"
pid=$(cat "$pidf")
kill -0 "$pid" 2>/dev/null || fail "pid file names $pid, which is not running"
STINTD_PID=$pid # the EXIT trap stops it if the test fails
[ "$(stat -c %a "$pidf")" = 644 ] || fail "pid file mode $(stat -c %a "$pidf"), expected 644"
wait_for 30 stint status || fail "the daemon does not answer on admin.sock"
p11_env
agent_add alpha "$(id -u)"
t=$(task_start alpha --ttl 10m) || exit 1
head -c 32 /dev/urandom >"$T/digest"

if command -v strace >/dev/null 2>&1; then
	# -y names each fd's file: the fdatasync must be the audit log's (the
	# store's SQLite syncs are not the batch sync thread's).
	# Attach messages on (quiet=exit, not -qq): sign only once strace
	# traces every thread, or the batch sync may happen unseen.
	strace -f -e quiet=exit -y -e trace=fdatasync,fsync -o "$T/strace.out" -p "$pid" 2>"$T/strace.err" &
	spid=$!
	bg_track "$spid"
	strace_attach_wait "$pid" "$spid" "$T/strace.err"
	p11client --token alpha --label "$t" --mech ecdsa --in "$T/digest" --count 20 >/dev/null 2>&1 ||
		fail "signing with $t in daemon mode"
	synced="fdatasync\([0-9]+<$AUDIT_LOG>\)"
	wait_for 10 grep -qE "$synced" "$T/strace.out"
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	grep -qE "$synced" "$T/strace.out" ||
		{ cat "$T/strace.err" "$T/strace.out"; fail "sync = batch in daemon mode: no fdatasync of $AUDIT_LOG after 20 signatures"; }
	note "daemon fdatasyncs of the audit log: $(grep -cE "$synced" "$T/strace.out")"
else
	note "strace not installed: fdatasync not observed (ci/install-deps.sh installs it)"
	p11client --token alpha --label "$t" --mech ecdsa --in "$T/digest" --count 20 >/dev/null 2>&1 ||
		fail "signing with $t in daemon mode"
fi
[ "$(audit_count "$t" sign-allowed)" -eq 20 ] || fail "expected 20 sign-allowed records"

# The daemon is not our child: it is gone once it is a zombie (whoever
# adopted it may reap it late) or no longer exists.
gone()
{
	local st

	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
	[ "$st" = Z ]
}
start=$(date +%s%N)
kill -TERM "$pid"
wait_for 20 gone "$pid" || fail "stintd in daemon mode did not exit within 20 s of SIGTERM"
STINTD_PID=
end=$(date +%s%N)
note "daemon exited $(((end - start) / 1000000)) ms after SIGTERM"
[ ! -e "$pidf" ] || fail "pid file left behind after SIGTERM"
[ ! -e "$T/run/admin.sock" ] || fail "admin.sock left behind after SIGTERM"
tail -n 2 "$AUDIT_LOG" | grep -q '"daemon-stop"' || fail "no daemon-stop record"
"$STINT" audit verify "$AUDIT_LOG" || fail "audit log does not verify after the daemon stopped"
for f in "$T"/daemon-asan* "$T"/daemon-ubsan*; do
	[ -e "$f" ] || continue
	san_check_log "$f" || fail "sanitizer error in the daemon"
done
exit 0
