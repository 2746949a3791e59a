#!/bin/bash
# stint run (issue 12 §4): the command runs in a fresh cgroup stintd made
# for its task, with STINT_TASK, STINT_KEY_URI, STINT_CERT_URI and
# STINT_SOCKET; its children sign; a process of the same uid outside the
# cgroup is refused and cannot move itself in; stint run forwards signals
# and exits with the command's status; the task is ended before stint run
# returns; when stint run is SIGKILLed the task still ends once the
# command exits; a run survives a stintd restart; with no writable cgroup
# stintd binds the task to the command's pid and says so.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
[ -x "$PYTHON" ] || skip "python3 not installed"
stint_tmpdir
cg_test_tree stint-test-run
PARENT=$CGTEST

backend_init
stintd_config
printf '\n[run]\ncgroup_parent = %s\n' "$PARENT" >>"$STINTD_CONF"
stintd_start
p11_env
need_p11client
wire_py
alpha_setup 61201
export MOD CLI A T

field() { stint task show "$1" --json | json_get "$2"; }
ended() { [ "$(field "$1" state)" = ended ]; }
ms() { echo $(($(date +%s%N) / 1000000)); }
# An array, not a function: in the background, $! is stint run itself.
run=("$STINT" --socket "$T/run/admin.sock" run)

# --- a run: environment, a child signs, outsiders refused ------------------
mkfifo -m 0600 "$T/go"
"${run[@]}" --agent alpha --ttl 5m --intent "run test" -- sh -c '
env | grep "^STINT_" | sort >"$T/env"
cat /proc/self/cgroup >"$T/cgroup"
# a child of the command (another process, uid A) signs
setpriv --reuid="$A" --regid="$A" --clear-groups -- "$CLI" --module "$MOD" \
	--token alpha --label "$STINT_TASK" --mech ecdsa --in "$T/digest" \
	--count 1 >"$T/child.out" 2>&1 && echo signed >>"$T/child.out"
read x <"$T/go"
exit 7' >"$T/run.out" 2>&1 &
RUN=$!
bg_track "$RUN"
wait_for 30 test -s "$T/env" || { cat "$T/run.out"; fail "the command did not start"; }
wait_for 30 grep -q signed "$T/child.out" || { cat "$T/child.out" "$T/run.out"; fail "a child of the run command could not sign"; }
note "a child of the stint run command signed"
cat "$T/env"
tid=$(sed -n 's/^STINT_TASK=//p' "$T/env")
[ -n "$tid" ] || fail "no STINT_TASK"
grep -qx "STINT_KEY_URI=pkcs11:token=alpha;object=$tid;type=private" "$T/env" || fail "STINT_KEY_URI"
grep -qx "STINT_CERT_URI=pkcs11:token=alpha;object=$tid;type=cert" "$T/env" || fail "STINT_CERT_URI"
grep -qx "STINT_SOCKET=$STINT_SOCKET" "$T/env" || fail "STINT_SOCKET"
cg=$(stint task show "$tid" --json | json_get bound_to.cgroup)
case $cg in "$PARENT"/run-*) ;; *) fail "task bound to '$cg', not a cgroup under $PARENT" ;; esac
grep -qx "0::$cg" "$T/cgroup" || { cat "$T/cgroup"; fail "the command did not start inside $cg"; }
[ "$(stint task show "$tid" --json | json_get bound_to.run)" = true ] || fail "bound_to.run is not true"
# The leaf records the binding (issue 12 §6): a relying party sees the run's cgroup.
stint task show "$tid" --cert >"$T/leaf.pem" || fail "task show --cert"
stint verify-peer "$T/leaf.pem" --json >"$T/vp" || { cat "$T/vp"; fail "verify-peer refused the run's leaf"; }
[ "$(json_get binding.kind <"$T/vp")" = cgroup ] || { cat "$T/vp"; fail "the run's leaf is not bound to a cgroup"; }
[ "$(json_get binding.cgroup <"$T/vp")" = "$cg" ] || { cat "$T/vp"; fail "the run's leaf does not name $cg"; }
stint verify-peer "$T/leaf.pem" >"$T/vpt" || fail "verify-peer (text)"
grep -qx "bound_cgroup $cg" "$T/vpt" || { cat "$T/vpt"; fail "verify-peer does not print the bound cgroup"; }

# Same uid, outside the cgroup: refused and audited, and cannot move in.
setpriv --reuid="$A" --regid="$A" --clear-groups -- "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$tid" >"$T/out" 2>&1
grep -q '^status=4 ' "$T/out" || { cat "$T/out"; fail "a process outside the run's cgroup: expected status 4"; }
grep -q "\"sign-refused\".*\"task\":\"$tid\".*outside the task's bound cgroup" "$AUDIT_LOG" ||
	fail "no audited refusal for the outsider"
if setpriv --reuid="$A" --regid="$A" --clear-groups -- sh -c "echo \$\$ >'$CG2$cg/cgroup.procs'" 2>"$T/out"; then
	fail "a non-root process moved itself into the run's cgroup"
fi
grep -Eq "Permission denied|Operation not permitted" "$T/out" || { cat "$T/out"; fail "moving in failed, but not with EACCES/EPERM"; }
note "uid $A outside the run: refused, audited, cannot join ($(tr -d '\n' <"$T/out"))"

# The command exits (status 7): the task is ended before stint run returns.
echo go >"$T/go"
wait "$RUN"
rc=$?
[ "$rc" -eq 7 ] || { cat "$T/run.out"; fail "stint run exited $rc, not the command's 7"; }
ended "$tid" || fail "task still $(field "$tid" state) when stint run returned"
[ "$(field "$tid" reason)" = "bound cgroup empty" ] || fail "reason: $(field "$tid" reason)"
! backend_has_key "$tid" || fail "key of $tid still in the backend"
wait_for 10 test ! -d "$CG2$cg" || fail "stintd did not remove the run's cgroup $cg"

# --- signals are forwarded ---------------------------------------------------
"${run[@]}" --agent alpha -- sh -c 'trap "exit 42" TERM; echo up >"$T/up"; while :; do sleep 0.1; done' >"$T/run.out" 2>&1 &
RUN=$!
bg_track "$RUN"
wait_for 30 test -s "$T/up" || { cat "$T/run.out"; fail "the command did not start"; }
kill -TERM "$RUN"
wait "$RUN"
rc=$?
[ "$rc" -eq 42 ] || { cat "$T/run.out"; fail "SIGTERM not forwarded (stint run exited $rc)"; }

# --- stint run SIGKILLed: the task ends when the command exits ----------------
rm -f "$T/env"
"${run[@]}" --agent alpha -- sh -c 'env | grep "^STINT_TASK=" >"$T/env"; read x <"$T/go"' >"$T/run.out" 2>&1 &
RUN=$!
bg_track "$RUN"
wait_for 30 test -s "$T/env" || { cat "$T/run.out"; fail "the command did not start"; }
tid=$(sed -n 's/^STINT_TASK=//p' "$T/env")
kill -KILL "$RUN"
wait "$RUN" 2>/dev/null
sleep 0.5
[ "$(field "$tid" state)" = live ] || fail "the task ended while its command still runs"
t0=$(ms)
echo go >"$T/go"
wait_for 10 ended "$tid" || fail "stint run SIGKILLed: task still live 10 s after the command exited"
note "stint run SIGKILLed, command exited -> task ended within $(($(ms) - t0)) ms"
[ "$(field "$tid" reason)" = "bound cgroup empty" ] || fail "reason: $(field "$tid" reason)"

# --- stintd restarted while a run is alive ------------------------------------
rm -f "$T/env"
"${run[@]}" --agent alpha -- sh -c 'env | grep "^STINT_TASK=" >"$T/env"; read x <"$T/go"' >"$T/run.out" 2>&1 &
RUN=$!
bg_track "$RUN"
wait_for 30 test -s "$T/env" || { cat "$T/run.out"; fail "the command did not start"; }
tid=$(sed -n 's/^STINT_TASK=//p' "$T/env")
stintd_stop
stintd_start
[ "$(field "$tid" state)" = live ] || fail "a live run's task ended at stintd restart"
echo go >"$T/go"
wait "$RUN" || { cat "$T/run.out"; fail "stint run failed across a stintd restart"; }
ended "$tid" || fail "after a restart, the task still $(field "$tid" state) when stint run returned"
note "stintd restarted during a run: the task still ended with the command"

# --- --cert-dir -----------------------------------------------------------------
"${run[@]}" --agent alpha --cert-dir "$T/certs" -- sh -c 'ls "$T/certs" >"$T/ls"' || fail "stint run --cert-dir"
for f in cert.pem chain.pem ca.pem; do grep -qx "$f" "$T/ls" || fail "--cert-dir: no $f"; done
openssl verify -CAfile "$T/certs/chain.pem" "$T/certs/cert.pem" >/dev/null ||
	fail "--cert-dir: cert.pem does not verify against chain.pem"

# --- the README's one-liner: curl with the run's key, as another user --------
if command -v curl >/dev/null && getent passwd nobody >/dev/null; then
	agent_add web "$(id -u nobody)"
	stint ca cert >"$T/bundle.pem" || fail "stint ca cert"
	tls_server_cert "$T/srv"
	chmod 0644 "$T/srv.pem"
	s_server_start "$T/srv" "$T/bundle.pem"
	curl_env
	"${run[@]}" --agent web --user nobody --ttl 10m -- "${CURL_ENV[@]}" PKCS11_MODULE_PATH="$MOD" \
		sh -c 'curl -sS --cacert "$0" --cert "$STINT_CERT_URI" --key "$STINT_KEY_URI" "https://127.0.0.1:$1/"' \
		"$T/srv.pem" "$PORT" >"$T/page" 2>"$T/curl.err" </dev/null ||
		{ cat "$T/curl.err" "$T/s_server.log"; fail "curl in stint run --user nobody could not authenticate"; }
	grep -q "BEGIN CERTIFICATE" "$T/page" || { cat "$T/page"; fail "the server saw no client certificate"; }
	note "curl --cert \$STINT_CERT_URI --key \$STINT_KEY_URI in stint run --user nobody: mTLS ok"
else
	note "no curl or no user nobody: mTLS one-liner not checked"
fi

# --- refusals: unknown agent; the command never runs ------------------------
rm -f "$T/ran"
! "${run[@]}" --agent nobody-here -- touch "$T/ran" 2>"$T/out" || fail "stint run for an unknown agent succeeded"
[ ! -e "$T/ran" ] || fail "the command ran although the task was refused"
# Its cgroup was undone, and every earlier run's is gone too.
wait_for 10 sh -c "! ls -d '$CG2$PARENT'/run-* 2>/dev/null" ||
	fail "run cgroups left behind: $(ls -d "$CG2$PARENT"/run-*)"
# Only stint run's own child can be moved: a TASK_START naming another
# process (here: stintd's test shell) is refused.
sleep 600 &
other=$!
bg_track "$other"
"$PYTHON" - "$T/wire.py" "$T/run/admin.sock" "$other" >"$T/out" 2>&1 <<'EOF'
import sys
exec(open(sys.argv[1]).read().split("if __name__")[0])
s = connect(sys.argv[2])
s.sendall(frame({1: 19, 5: "alpha", 94: int(sys.argv[3])}))  # TASK_START, RUN_PID
show(read_reply(s))
EOF
grep -q "^status=11 " "$T/out" || { cat "$T/out"; fail "TASK_START moved a process that is not the caller's child"; }
! grep -q "$PARENT" "/proc/$other/cgroup" || fail "the other process was moved into a run cgroup"
kill "$other"

# --- no writable cgroup: bound to the command's pid, and said so -------------
stintd_stop
sed -i "s|^cgroup_parent = .*|cgroup_parent = /cgroup.procs/x|" "$STINTD_CONF"
stintd_start
rm -f "$T/env"
"${run[@]}" --agent alpha -- sh -c 'env | grep "^STINT_TASK=" >"$T/env"' 2>"$T/run.err" ||
	{ cat "$T/run.err"; fail "stint run without a usable cgroup"; }
grep -q "bound to the command's pid" "$T/run.err" || { cat "$T/run.err"; fail "no warning about the pid binding"; }
tid=$(sed -n 's/^STINT_TASK=//p' "$T/env")
ended "$tid" || fail "pid-bound run: task still live after stint run returned"
note "no writable cgroup: $(head -n 1 "$T/run.err")"
note "stint run: ok"
