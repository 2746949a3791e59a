#!/bin/bash
# stintd as user `stint`, confined as etc/systemd/stintd.service confines
# it: a mount namespace where everything is read-only (ProtectSystem=strict)
# except the state and runtime directories, with SOFTHSM2_CONF naming
# Stint's own SoftHSM2 config (the unit's Environment=), whose token
# directory is state_dir/tokens (0700 stint, as tmpfiles.d makes
# /var/lib/stint/tokens), and the ambient CAP_SYS_PTRACE the unit grants.
# It starts, signs with and ends more tasks than the key pool holds, of two
# key types, and the audit log names each agent's executable. Negative
# controls show what each piece is for: Debian's shared token directory
# layout (2770 root:softhsm) is refused at start, naming the path; with the
# token directory read-only, starts past the pool and rsa starts fail;
# without CAP_SYS_PTRACE the audit records "exe":"?" and stintd says why.
#
# Then the TPM backend (swtpm over TCP) under the same confinement: only
# state_dir is writable, and start, sign, end work there too.
#
# The user `stint` is created with etc/sysusers.d/stint.conf when missing,
# and removed at the end if this test created it.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv unshare findmnt softhsm2-util flock
[ "$STINT_TEST_BACKEND" = softhsm ] || skip "SoftHSM2 only (the TPM backend writes nothing outside state_dir)"
stint_tmpdir
need_p11client
[ -f "$SOFTHSM_MODULE" ] || skip "no SoftHSM2 module at $SOFTHSM_MODULE"

# --- the unit grants what this run needs ---------------------------------------
UNIT=$top_srcdir/etc/systemd/stintd.service
grep -Eq '^Environment=SOFTHSM2_CONF=/etc/stint/softhsm2.conf$' "$UNIT" ||
	fail "the unit does not point SOFTHSM2_CONF at Stint's own config"
grep -Eq '^StateDirectory=stint$' "$UNIT" ||
	fail "the unit does not make /var/lib/stint (and its tokens) writable"
grep -Eq '^d /var/lib/stint/tokens 0700 stint stint' "$top_srcdir/etc/tmpfiles.d/stint.conf" ||
	fail "tmpfiles.d does not create /var/lib/stint/tokens 0700 stint"
grep -Eq '^AmbientCapabilities=.*CAP_SYS_PTRACE' "$UNIT" ||
	fail "the unit does not grant CAP_SYS_PTRACE (exe of peers)"
grep -Eq '^User=stint$' "$UNIT" || fail "the unit does not run as stint"

# --- user stint (lib.sh; ci/quickstart.sh makes it too: one at a time) ------
stint_user_get
note "user stint: uid $SU gid $SG"

runas_exit()
{
	local rc=$?

	stint_user_put
	(exit "$rc")
	_cleanup
}
trap runas_exit EXIT

# --- files as the README's "Running as user stint" lays them out -----------
mkdir -m 0755 "$T/bin"
cp "$STINTD" "$STINT" "$STINT_MODULE" "$P11CLIENT" "$T/bin/"
chmod 0755 "$T/bin"/*
# /etc/stint 0750 root:stint, the configs 0640, the PIN file stint's own.
install -d -m 0750 -o root -g stint "$T/etc"
# StateDirectory= and RuntimeDirectory= (0700 and 0755, owned by stint),
# and the token directory inside the state directory (tmpfiles.d).
install -d -m 0700 -o stint -g stint "$T/state"
install -d -m 0700 -o stint -g stint "$T/state/tokens"
install -d -m 0755 -o stint -g stint "$T/run"
# /etc/stint/softhsm2.conf, as the README writes it (the unit's Environment=).
export SOFTHSM2_CONF=$T/etc/softhsm2.conf
printf '%s\n' "directories.tokendir = $T/state/tokens" 'objectstore.backend = file' \
	'log.level = ERROR' 'slots.removable = false' >"$SOFTHSM2_CONF"
chown root:stint "$SOFTHSM2_CONF"
chmod 0640 "$SOFTHSM2_CONF"
PIN=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
(umask 077 && printf '%s' "$PIN" >"$T/etc/hsm.pin")
chown stint:stint "$T/etc/hsm.pin"
STINTD_CONF=$T/etc/stint.conf
RUN=$T/run
AUDIT_LOG=$T/state/audit.log
cat >"$STINTD_CONF" <<EOF
[stintd]
state_dir = $T/state
runtime_dir = $T/run
trust_domain = test.example
default_ttl = 10m
max_ttl = 1h

[backend]
type = pkcs11
module = $SOFTHSM_MODULE
token = stint
pin_file = $T/etc/hsm.pin
key_pool = 2

[audit]
path = $AUDIT_LOG
sync = batch
EOF
chown root:stint "$STINTD_CONF"
chmod 0640 "$STINTD_CONF"

as_stint()
{
	setpriv --reuid "$SU" --regid "$SG" --init-groups -- "$@"
}

# The token, initialised by stintd's user so its files are stintd's.
as_stint softhsm2-util --init-token --free --label stint --pin "$PIN" \
	--so-pin "so-$PIN" >"$T/init.log" 2>&1 ||
	{ cat "$T/init.log" >&2; fail "softhsm2-util --init-token as stint failed"; }

# --- stintd in a read-only namespace -----------------------------------------
# ro_stintd CAPS PATH...: every mount read-only (ProtectSystem=strict),
# then each PATH writable again, or read-only again if written ro:PATH
# (inside a writable one); stintd as stint with CAPS ("ptrace" or "none").
ro_stintd()
{
	local caps=$1 i

	shift
	STINTD_STARTS=$((STINTD_STARTS + 1))
	# stderr goes to the journal under systemd; here to $T/logs.
	[ -d "$T/logs" ] || install -d -m 0755 -o stint "$T/logs"
	STINTD_LOG=$T/logs/stintd.$STINTD_STARTS.log
	: >"$STINTD_LOG"
	chown stint "$STINTD_LOG"
	unshare -m --propagation private -- /bin/bash -c '
		set -e
		caps=$1; log=$2; conf=$3; su=$4; sg=$5; bin=$6; shift 6
		findmnt -rno TARGET | while read -r m; do
			case $m in /proc* | /sys* | /dev*) continue ;; esac
			mount -o remount,bind,ro "$m" 2>/dev/null || true
		done
		for p in "$@"; do
			rw=rw
			case $p in ro:*) p=${p#ro:}; rw=ro ;; esac
			mount --bind "$p" "$p"
			mount -o remount,bind,$rw "$p"
		done
		# The proof that the rest is read-only.
		if touch "$(dirname "$conf")/probe" 2>/dev/null; then
			echo "namespace is not read-only" >"$log"; exit 97
		fi
		set -- setpriv --reuid "$su" --regid "$sg" --init-groups
		[ "$caps" = ptrace ] && set -- "$@" --inh-caps +sys_ptrace \
			--ambient-caps +sys_ptrace --bounding-set -all,+sys_ptrace
		exec "$@" -- "$bin/stintd" --config "$conf" --foreground >>"$log" 2>&1
	' ro "$caps" "$STINTD_LOG" "$STINTD_CONF" "$SU" "$SG" \
		"$T/bin" "$T/logs" "$@" 9>&- &
	STINTD_PID=$!
	for ((i = 0; i < 300; i++)); do
		"$STINT" --socket "$RUN/admin.sock" status >/dev/null 2>&1 && return 0
		if ! kill -0 "$STINTD_PID" 2>/dev/null; then
			wait "$STINTD_PID"
			echo "stintd exited $?:" >&2
			cat "$STINTD_LOG" >&2
			STINTD_PID=
			return 1
		fi
		sleep 0.1
	done
	cat "$STINTD_LOG" >&2
	fail "stintd did not answer within 30 s"
}

stint_user()
{
	[ "$(ps -o user= -p "$STINTD_PID" | tr -d ' ')" = stint ] ||
		fail "stintd does not run as stint: $(ps -o user=,pid= -p "$STINTD_PID")"
}

# An agent uid that signs through agent.sock.
A=$(for u in $(seq 62201 62300); do
	getent passwd "$u" >/dev/null || pgrep -U "$u" >/dev/null || { echo "$u"; break; }
done)
head -c 32 /dev/urandom >"$T/digest"
chmod 0644 "$T/digest"
agent_sign()
{
	as_uid "$A" env STINT_SOCKET="$RUN/agent.sock" "$T/bin/p11client" \
		--module "$T/bin/$(basename "$STINT_MODULE")" --token ra \
		--label "$1" --mech "$2" --in "$T/digest" --count 1 >"$T/out" 2>&1
}

# --- the unit's confinement: works ------------------------------------------
ro_stintd ptrace "$T/state" "$T/run" || fail "stintd as stint did not start"
stint_user
agent_add ra "$A"
n=0
for key in ec-p256 ec-p256 ec-p256 ec-p256 ec-p256 rsa-2048; do
	id=$(stint task start --agent ra --key "$key" --ttl 5m -q 2>"$T/err") ||
		{ cat "$T/err" "$STINTD_LOG" >&2; fail "task start $((n + 1)) ($key) failed as stint in the read-only namespace"; }
	mech=ecdsa
	[ "$key" = rsa-2048 ] && mech=rsa-pkcs
	agent_sign "$id" "$mech" || { cat "$T/out" >&2; fail "agent cannot sign with $key task $id"; }
	stint task end "$id" >/dev/null 2>"$T/err" ||
		{ cat "$T/err" "$STINTD_LOG" >&2; fail "task end $id failed as stint"; }
	n=$((n + 1))
done
note "as stint, read-only root: $n tasks (pool 2) started, signed, ended"
exe=$("$PYTHON" -c 'import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "sign-allowed":
        print(r["peer"]["exe"]); break' "$AUDIT_LOG")
case $exe in
*/p11client) note "audit names the agent's executable: $exe" ;;
*) fail "with CAP_SYS_PTRACE the audit shows exe '$exe', not p11client" ;;
esac
"$STINT" --socket "$T/run/admin.sock" audit verify >/dev/null || fail "audit verify"
# stint run under the shipped unit (issue 12 §4) with no cgroup_parent:
# neither /stint nor stintd's own cgroup is delegated to stint here (no
# Delegate=yes emulated; that is run-unprivileged.sh): stintd cannot make
# the run's cgroup, so the task is bound to the command's pid, stint run
# says so, and the task ends with the command (a delegated parent:
# run-unprivileged.sh).
"$STINT" --socket "$T/run/admin.sock" run --agent ra --ttl 5m -- \
	sh -c 'echo "$STINT_TASK" >"$0"' "$T/runtask" 2>"$T/run.err" ||
	{ cat "$T/run.err" "$STINTD_LOG" >&2; fail "stint run with stintd as stint"; }
grep -q "bound to the command's pid" "$T/run.err" ||
	{ cat "$T/run.err" >&2; fail "stint run as stint: no word about the pid binding"; }
rtid=$(cat "$T/runtask")
[ -n "$rtid" ] || fail "stint run as stint: the command got no STINT_TASK"
run_ended() { [ "$(stint task show "$rtid" --json | json_get state)" = ended ]; }
wait_for 10 run_ended ||
	fail "stint run as stint: task $rtid not ended after the command exited"
note "stint run, stintd as stint: $(head -n 1 "$T/run.err")"
# The read-only run below hands out the ready keys this stintd keeps at
# its clean stop: let the pool refill first (on a loaded machine the
# refill after the last start may still be running).
pool_full()
{
	local s

	s=$("$STINT" --socket "$T/run/admin.sock" status --json) &&
		[ "$(json_get ready_keys <<<"$s")" -ge 1 ] &&
		[ "$(json_get ready_keys <<<"$s")" = "$(json_get ready_keys_target <<<"$s")" ]
}
wait_for 120 pool_full ||
	fail "the key pool did not refill within 120 s: $("$STINT" --socket "$T/run/admin.sock" status --json)"
stintd_stop

# --- negative controls ------------------------------------------------------
# Debian's shared token directory layout (2770 root:softhsm, what the
# README and the unit used before): stintd refuses to start and names it.
if getent group softhsm >/dev/null; then
	chown root:softhsm "$T/state/tokens"
	chmod 2770 "$T/state/tokens"
	if ro_stintd ptrace "$T/state" "$T/run" 2>"$T/err"; then
		fail "stintd started on a group-writable SoftHSM2 token directory"
	fi
	grep -q "SoftHSM2 token directory $T/state/tokens" "$STINTD_LOG" ||
		{ cat "$STINTD_LOG" >&2; fail "stintd did not name the group-writable token directory"; }
	note "a 2770 root:softhsm token directory is refused: $(grep -m1 'token directory' "$STINTD_LOG")"
	chown stint:stint "$T/state/tokens"
	chmod 0700 "$T/state/tokens"
fi
# The token directory read-only (a unit without it writable): past the
# ready keys (kept across the clean stop) ec-p256 starts fail, rsa at once.
# And no CAP_SYS_PTRACE: exe "?".
: >"$AUDIT_LOG.mark"
ro_stintd none "$T/state" "$T/run" "ro:$T/state/tokens" ||
	fail "stintd did not start with a read-only token"
stint_user
failed=0
ok_id=
for key in ec-p256 ec-p256 ec-p256 rsa-2048; do
	if id=$(stint task start --agent ra --key "$key" --ttl 5m -q 2>/dev/null); then
		ok_id=${ok_id:-$id}
	else
		failed=$((failed + 1))
	fi
done
[ "$failed" -ge 2 ] || fail "with a read-only token directory only $failed of 4 starts failed: the namespace does not confine stintd"
note "read-only token directory: $failed of 4 starts failed"
[ -n "$ok_id" ] || fail "no ready key was handed out"
agent_sign "$ok_id" ecdsa || { cat "$T/out" >&2; fail "sign with a ready key"; }
grep -q 'CAP_SYS_PTRACE' "$STINTD_LOG" || fail "stintd did not say why exe is unknown"
last=$("$PYTHON" -c 'import json, sys
e = None
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "sign-allowed":
        e = r["peer"]["exe"]
print(e)' "$AUDIT_LOG")
[ "$last" = "?" ] || fail "without CAP_SYS_PTRACE the audit shows exe '$last'"
note "without CAP_SYS_PTRACE: exe \"?\" and a warning naming the capability"
# ...and an agent pinned by executable is refused, saying why (issue 12 §1).
for sel in "--exe /bin/true" "--exe-sha256 $(printf '%064d' 0)"; do
	# shellcheck disable=SC2086
	if stint agent add rx --uid "$A" $sel >"$T/err" 2>&1; then
		fail "agent add $sel accepted by a stintd that cannot read exes"
	fi
	grep -q "cannot read the executables" "$T/err" ||
		{ cat "$T/err" >&2; fail "agent add $sel: refusal does not say why"; }
done
note "without CAP_SYS_PTRACE: agent add --exe refused: $(head -n 1 "$T/err")"
stintd_stop

# --- the TPM backend, same confinement (swtpm over TCP) -------------------------
# Its key blobs live in state_dir: nothing outside it is written.
if ! command -v swtpm >/dev/null 2>&1 || [ ! -x "$top_builddir/tests/integration/tpm_probe" ]; then
	note "TPM part skipped: no swtpm or no tpm2-tss build"
	exit 0
fi
TPM_PROBE=$top_builddir/tests/integration/tpm_probe
# shellcheck source=tpm_lib.sh
. "$top_srcdir/tests/integration/tpm_lib.sh"
swtpm_start
install -d -m 0700 -o stint -g stint "$T/tstate"
install -d -m 0755 -o stint -g stint "$T/trun"
STINTD_CONF=$T/etc/tpm.conf
RUN=$T/trun
AUDIT_LOG=$T/tstate/audit.log
cat >"$STINTD_CONF" <<EOF2
[stintd]
state_dir = $T/tstate
runtime_dir = $RUN
trust_domain = test.example

[backend]
type = tpm
tcti = $TCTI

[audit]
path = $AUDIT_LOG
EOF2
chown root:stint "$STINTD_CONF"
chmod 0640 "$STINTD_CONF"
ro_stintd ptrace "$T/tstate" "$RUN" || fail "stintd (tpm) as stint did not start"
stint_user
"$STINT" --socket "$RUN/admin.sock" agent add ra --uid "$A" >/dev/null || fail "agent add (tpm)"
n=0
for key in ec-p256 ec-p256 ec-p256 rsa-2048; do
	id=$("$STINT" --socket "$RUN/admin.sock" task start --agent ra --key "$key" --ttl 5m -q 2>"$T/err") ||
		{ cat "$T/err" "$STINTD_LOG" >&2; fail "tpm task start $((n + 1)) ($key) failed as stint"; }
	mech=ecdsa
	[ "$key" = rsa-2048 ] && mech=sha256-rsa-pkcs
	agent_sign "$id" "$mech" || { cat "$T/out" >&2; fail "agent cannot sign with tpm $key task $id"; }
	"$STINT" --socket "$RUN/admin.sock" task end "$id" >/dev/null 2>"$T/err" ||
		{ cat "$T/err" "$STINTD_LOG" >&2; fail "tpm task end $id failed as stint"; }
	[ ! -e "$T/tstate/tpm/$id.key" ] || fail "tpm key blob of $id left after end"
	n=$((n + 1))
done
note "TPM backend as stint, read-only root: $n tasks started, signed, ended"
kill -TERM "$STINTD_PID"
_wait_pid "$STINTD_PID" 30 || fail "stintd (tpm) did not stop"
wait "$STINTD_PID"
rc=$?
STINTD_PID=
[ "$rc" -eq 0 ] || { cat "$STINTD_LOG" >&2; fail "stintd (tpm) exited $rc"; }
san_check_log "$STINTD_LOG" || fail "sanitizer error in stintd (tpm)"
