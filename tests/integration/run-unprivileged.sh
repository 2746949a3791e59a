#!/bin/bash
# stint run with stintd as user `stint`, the way the shipped unit runs it
# (User=stint, Delegate=yes; issue 12 §4): stintd owns a delegated cgroup
# parent (a cgroup chown'ed to stint, as systemd's Delegate=yes does) but
# may not move root's `stint run` child out of root's cgroup (cgroup v2
# needs write access to the common ancestor's cgroup.procs). So RUN_PREPARE
# makes the cgroup, stint run (root) moves its own waiting child in, and
# TASK_START binds the task to the cgroup once stintd has checked the child
# is in it. Checked here:
# - a grandchild of stint run (the command's child) signs: the task is
#   bound to the run's cgroup (task show, the task-start audit record), not
#   to the command's pid as before, when the grandchild was refused;
# - the task ends when the command's processes exit, also after kill -9 of
#   stint run while the command runs (stintd watches the cgroup);
# - a start that fails after RUN_PREPARE (TTL above the limit) leaves no
#   cgroup behind and never runs the command; a RUN_PREPARE never followed
#   by its TASK_START is removed when stintd stops;
# - an operator's stint run (not root: it cannot move the child either) is
#   bound to the command's pid, and both stint run and stintd say why;
# - stintd checks the hand-off: a prepared cgroup that holds another process
#   besides the command is not bound (the pid is), and a TASK_START naming a
#   cgroup not prepared for this caller and child is refused;
# - no run-* cgroup is left at the end;
# - no [run] cgroup_parent in the file, stintd (as stint) running in its own
#   delegated cgroup (as under the shipped unit): stintd picks that cgroup
#   + /runs, logs it, and a grandchild of stint run signs.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv flock
[ -x "$PYTHON" ] || skip "python3 not installed"
stint_tmpdir
need_p11client
cg_test_tree stint-test-rununpriv
PARENT=$CGTEST

# --- user stint (lib.sh; one test at a time uses it) ----------------------
stint_user_get

unpriv_exit()
{
	local rc=$?

	stint_user_put cg_test_cleanup
	(exit "$rc")
	_cleanup
}
trap unpriv_exit EXIT

# --- Delegate=yes, emulated: the parent cgroup and its files are stint's ---
chown -R "$SU:$SG" "$CG2$PARENT" || skip "cannot chown a cgroup to stint here"
# stintd as stint, with the unit's one capability (exe facts of peers).
cat >"$T/stintd-as-stint" <<EOF
#!/bin/sh
exec setpriv --reuid $SU --regid $SG --init-groups --inh-caps +sys_ptrace \\
	--ambient-caps +sys_ptrace --bounding-set -all,+sys_ptrace -- "$STINTD" "\$@"
EOF
chmod 0755 "$T/stintd-as-stint"
STINTD=$T/stintd-as-stint

backend_init
stintd_config
printf '\n[run]\ncgroup_parent = %s\n' "$PARENT" >>"$STINTD_CONF"
chmod 0644 "$STINTD_CONF"
chown -R "$SU:$SG" "$T/state" "$T/run"
[ -d "$T/tokens" ] && chown -R "$SU:$SG" "$T/tokens"
[ -n "${HSM_PIN_FILE:-}" ] && chown "$SU:$SG" "$HSM_PIN_FILE"
stintd_start
[ "$(ps -o user= -p "$STINTD_PID" | tr -d ' ')" = stint ] ||
	fail "stintd does not run as stint: $(ps -o user=,pid= -p "$STINTD_PID")"
# The premise: stintd may not move a root process out of root's cgroup.
if setpriv --reuid "$SU" --regid "$SG" --init-groups -- sh -c \
	"mkdir '$CG2$PARENT/probe' && echo $$ >'$CG2$PARENT/probe/cgroup.procs'" 2>/dev/null; then
	echo $$ >"$CG2/cgroup.procs"
	rmdir "$CG2$PARENT/probe"
	skip "user stint may move root's processes here: nothing to test"
fi
rmdir "$CG2$PARENT/probe" 2>/dev/null
p11_env
wire_py
alpha_setup 61401
export MOD CLI A T

field() { stint task show "$1" --json | json_get "$2"; }
ended() { [ "$(field "$1" state)" = ended ]; }
runs_left() { ls -d "$CG2$PARENT"/run-* 2>/dev/null; }
run=("$STINT" --socket "$T/run/admin.sock" run)

# --- a run: the command's child (a grandchild of stint run) signs ------------
"${run[@]}" --agent alpha --ttl 5m -- sh -c '
echo "$STINT_TASK" >"$T/task"
cat /proc/self/cgroup >"$T/cgroup"
setpriv --reuid="$A" --regid="$A" --clear-groups -- "$CLI" --module "$MOD" \
	--token alpha --label "$STINT_TASK" --mech ecdsa --in "$T/digest" \
	--count 1 >"$T/child.out" 2>&1 && echo signed >>"$T/child.out"
exit 0' >"$T/run.out" 2>&1 ||
	{ cat "$T/run.out"; fail "stint run with stintd as stint failed"; }
tid=$(cat "$T/task")
[ -n "$tid" ] || { cat "$T/run.out"; fail "the command got no STINT_TASK"; }
grep -q signed "$T/child.out" ||
	{ cat "$T/child.out" "$T/run.out"; fail "a child of the stint run command could not sign (the task is not bound to the run's cgroup)"; }
note "stintd as stint: a child of the stint run command signed"
! grep -q "bound to the command's pid" "$T/run.out" ||
	{ cat "$T/run.out"; fail "stint run fell back to the pid binding"; }
cg=$(field "$tid" bound_to.cgroup)
case $cg in "$PARENT"/run-*) ;; *) fail "task bound to '$cg', not to a cgroup under $PARENT" ;; esac
grep -qx "0::$cg" "$T/cgroup" || { cat "$T/cgroup"; fail "the command did not start inside $cg"; }
[ "$(field "$tid" bound_to.run)" = true ] || fail "bound_to.run is not true"
grep "\"task-start\"" "$AUDIT_LOG" | grep "\"task\":\"$tid\"" | grep -q "$cg" ||
	fail "the task-start record of $tid does not name the cgroup $cg"
# The command exited: the task ended before stint run returned.
ended "$tid" || fail "task still $(field "$tid" state) when stint run returned"
[ "$(field "$tid" reason)" = "bound cgroup empty" ] || fail "reason: $(field "$tid" reason)"
wait_for 10 test ! -d "$CG2$cg" || fail "stintd did not remove the run's cgroup $cg"

# --- stint run SIGKILLed: the task ends when the command exits ---------------
mkfifo -m 0666 "$T/go"
rm -f "$T/task"
"${run[@]}" --agent alpha -- sh -c 'echo "$STINT_TASK" >"$T/task"; read x <"$T/go"' >"$T/run.out" 2>&1 &
RUN=$!
bg_track "$RUN"
wait_for 30 test -s "$T/task" || { cat "$T/run.out"; fail "the command did not start"; }
tid=$(cat "$T/task")
case $(field "$tid" bound_to.cgroup) in "$PARENT"/run-*) ;; *) fail "SIGKILL run: not bound to a run cgroup" ;; esac
kill -KILL "$RUN"
wait "$RUN" 2>/dev/null
sleep 0.5
[ "$(field "$tid" state)" = live ] || fail "the task ended while its command still runs"
echo go >"$T/go"
wait_for 10 ended "$tid" || fail "stint run SIGKILLed: task still live 10 s after the command exited"
[ "$(field "$tid" reason)" = "bound cgroup empty" ] || fail "reason: $(field "$tid" reason)"
note "stint run SIGKILLed: the task ended with the command (stintd as stint watches the cgroup)"

# --- a start refused after RUN_PREPARE: no cgroup left, the command never ran -
rm -f "$T/ran"
! "${run[@]}" --agent alpha --ttl 5h -- touch "$T/ran" 2>"$T/out" ||
	fail "stint run with a TTL above max_ttl succeeded"
[ ! -e "$T/ran" ] || fail "the command ran although the task was refused"
wait_for 10 sh -c "! ls -d '$CG2$PARENT'/run-* 2>/dev/null" ||
	fail "refused start: cgroups left behind: $(runs_left)"
note "a refused start leaves no cgroup: $(head -n 1 "$T/out")"

# --- an operator (not root) cannot move its child: pid binding, said so -----
OP=$(free_uid $((A + 1)))
stint operator add ops --uid "$OP" --agents alpha >/dev/null || fail "operator add"
mkdir -m 0777 "$T/op"
as_uid "$OP" "$STINT" --socket "$T/run/admin.sock" run --agent alpha -- \
	sh -c 'echo "$STINT_TASK" >"$0"' "$T/op/task" 2>"$T/op.err" ||
	{ cat "$T/op.err"; fail "an operator's stint run failed"; }
grep -q "neither stintd nor stint run may move the command" "$T/op.err" ||
	{ cat "$T/op.err"; fail "stint run did not say it could not move the command"; }
grep -q "bound to the command's pid" "$T/op.err" ||
	{ cat "$T/op.err"; fail "no word about the pid binding"; }
tid=$(cat "$T/op/task")
[ -n "$(field "$tid" bound_to.pid)" ] || fail "the operator's run is not bound to a pid"
wait_for 10 ended "$tid" || fail "the operator's pid-bound task is still live"
wait_for 10 sh -c "! ls -d '$CG2$PARENT'/run-* 2>/dev/null" ||
	fail "operator run: cgroups left behind: $(runs_left)"
note "operator's run: $(grep -m1 'neither' "$T/op.err")"

# --- stintd checks what the caller did, not what it says --------------------
# A caller that puts another process into the prepared cgroup with its
# command gets the pid binding (and a note), not the cgroup; a TASK_START
# naming a cgroup nobody prepared for this caller and child is refused.
"$PYTHON" - "$T/wire.py" "$T/run/admin.sock" "$CG2" >"$T/out" 2>&1 <<'EOF2'
import os, sys, time
exec(open(sys.argv[1]).read().split("if __name__")[0])
def child():
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    return pid
pid, other = child(), child()
s = connect(sys.argv[2])
s.sendall(frame({1: 90, 5: "alpha", 94: pid}))  # RUN_PREPARE
cg = read_reply(s)[180]
for p in (pid, other):
    with open(sys.argv[3] + cg + "/cgroup.procs", "w") as f:
        f.write("%d\n" % p)
s = connect(sys.argv[2])
s.sendall(frame({1: 19, 5: "alpha", 94: pid, 180: cg}))  # TASK_START
rep = read_reply(s)
print("smuggled: status=%s bind_pid=%s self=%s bind_cgroup=%s note=%s" % (
    rep.get(2), rep.get(90), rep.get(90) == pid, rep.get(92, ""), rep.get(95, "")))
s = connect(sys.argv[2])
s.sendall(frame({1: 19, 5: "alpha", 94: pid, 180: cg + "x"}))
print("unprepared: status=%s " % read_reply(s).get(2))
for p in (pid, other):
    os.kill(p, 9)
    os.waitpid(p, 0)
EOF2
grep -q "^smuggled: status=0 bind_pid=[0-9]* self=True bind_cgroup= note=.*does not hold the command alone" "$T/out" ||
	{ cat "$T/out"; fail "a prepared cgroup holding another process was bound"; }
grep -q "^unprepared: status=9 " "$T/out" ||
	{ cat "$T/out"; fail "a TASK_START naming an unprepared cgroup was not refused (NOT_FOUND)"; }
note "another process in the prepared cgroup: bound to the command's pid instead; an unprepared cgroup: NOT_FOUND"
wait_for 10 sh -c "! ls -d '$CG2$PARENT'/run-* 2>/dev/null" ||
	fail "cgroups left behind after the checks: $(runs_left)"

# --- a RUN_PREPARE without its TASK_START: removed when stintd stops --------
"$PYTHON" - "$T/wire.py" "$T/run/admin.sock" >"$T/out" 2>&1 <<'EOF'
import os, sys, time
exec(open(sys.argv[1]).read().split("if __name__")[0])
pid = os.fork()
if pid == 0:
    time.sleep(30)
    os._exit(0)
s = connect(sys.argv[2])
s.sendall(frame({1: 90, 5: "alpha", 94: pid}))  # RUN_PREPARE, RUN_PID
rep = read_reply(s)
print("status=%s cgroup=%s moved=%s" % (rep.get(2), rep.get(180, ""), rep.get(181)))
os.kill(pid, 9)
os.waitpid(pid, 0)
EOF
grep -q "^status=0 cgroup=$PARENT/run-" "$T/out" || { cat "$T/out"; fail "RUN_PREPARE made no cgroup"; }
grep -q "moved=False" "$T/out" || { cat "$T/out"; fail "stintd as stint says it moved root's process itself"; }
pcg=$(sed -n 's/.* cgroup=\([^ ]*\) .*/\1/p' "$T/out")
[ -d "$CG2$pcg" ] || fail "the prepared cgroup $pcg does not exist"
stintd_stop
[ ! -d "$CG2$pcg" ] || fail "stintd stopped and left the unused prepared cgroup $pcg"
note "an unused prepared cgroup is removed when stintd stops"
[ -z "$(runs_left)" ] || fail "run cgroups left behind: $(runs_left)"
# --- no cgroup_parent set: stintd picks its own (delegated) cgroup + /runs ---
# As systemd's Delegate=yes: stintd's own process sits in a cgroup whose
# directory and files are stint's; /stint (the old default) is not writable
# for stint, so before the default changed the run was bound to the pid
# and the grandchild was refused.
UNIT=$PARENT/unit
mkdir "$CG2$UNIT" && chown -R "$SU:$SG" "$CG2$UNIT" || fail "cannot make $UNIT"
cat >"$T/stintd-in-unit" <<EOF
#!/bin/sh
echo \$\$ >"$CG2$UNIT/cgroup.procs" || exit 1
exec "$T/stintd-as-stint" "\$@"
EOF
chmod 0755 "$T/stintd-in-unit"
STINTD=$T/stintd-in-unit
sed -i '/^cgroup_parent = /d' "$STINTD_CONF"
stintd_start
grep -qx "0::$UNIT" "/proc/$STINTD_PID/cgroup" ||
	fail "stintd is not in $UNIT: $(cat "/proc/$STINTD_PID/cgroup")"
rm -f "$T/task" "$T/child.out"
"${run[@]}" --agent alpha --ttl 5m -- sh -c '
echo "$STINT_TASK" >"$T/task"
setpriv --reuid="$A" --regid="$A" --clear-groups -- "$CLI" --module "$MOD" \
	--token alpha --label "$STINT_TASK" --mech ecdsa --in "$T/digest" \
	--count 1 >"$T/child.out" 2>&1 && echo signed >>"$T/child.out"
exit 0' >"$T/run.out" 2>&1 ||
	{ cat "$T/run.out"; fail "stint run (default cgroup_parent) failed"; }
tid=$(cat "$T/task")
grep -q signed "$T/child.out" ||
	{ cat "$T/child.out" "$T/run.out" "$STINTD_LOG"; fail "default cgroup_parent: a child of the stint run command could not sign"; }
cg=$(field "$tid" bound_to.cgroup)
case $cg in "$UNIT/runs"/run-*) ;; *) fail "default cgroup_parent: task bound to '$cg', not under $UNIT/runs" ;; esac
grep -q "stint run cgroups under $UNIT/runs" "$STINTD_LOG" ||
	{ cat "$STINTD_LOG"; fail "stintd did not log that it chose $UNIT/runs"; }
note "no cgroup_parent: stintd chose $UNIT/runs, a grandchild signed"
stintd_stop
[ -z "$(ls -d "$CG2$UNIT/runs"/run-* 2>/dev/null)" ] || fail "run cgroups left in $UNIT/runs"
note "stint run, stintd as stint: ok"
