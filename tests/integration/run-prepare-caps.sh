#!/bin/bash
# RUN_PREPARE's limits (op 90, stint run's first step; docs/identity.md):
# a prepared cgroup waits 60 s for its TASK_START, at most 16 per caller
# uid and 64 in all. Raw RUN_PREPAREs (no TASK_START) from root and three
# operators, each for a waiting child of its own:
# - root's 17th is refused (STINT_E_LIMIT) naming the per-uid limit, while
#   an operator of another uid still gets one;
# - with 64 waiting (16 each for root and three operators), a fourth
#   operator's first is refused naming the limit in all;
# - a refused RUN_PREPARE leaves no cgroup once its child is gone; the 64
#   waiting cgroups outlive their (killed) children, and the deadline
#   removes them all (about 60 s: the deadline is fixed, this test waits
#   once), after which root gets one again (its entries left the list).
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
[ -x "$PYTHON" ] || skip "python3 not installed"
stint_tmpdir
cg_test_tree stint-test-runcaps
PARENT=$CGTEST

backend_init
stintd_config
printf '\n[run]\ncgroup_parent = %s\n' "$PARENT" >>"$STINTD_CONF"
stintd_start
wire_py
chmod 0644 "$T/wire.py"
A=$(free_uid 62501)
agent_add alpha "$A"
OPS=()
u=$A
for i in 1 2 3 4; do
	u=$(free_uid $((u + 1)))
	OPS+=("$u")
	stint operator add "op$i" --uid "$u" --agents alpha >/dev/null ||
		fail "operator add op$i (uid $u)"
done

# prepare UID N NAME: N RUN_PREPAREs as UID, each for a new child of the
# caller that sleeps; one line each in $T/NAME: "pid=P status=S cgroup=CG
# error=E".
cat >"$T/prepare.py" <<'EOF'
import os, sys, time
exec(open(sys.argv[1]).read().split("if __name__")[0])
sock, n = sys.argv[2], int(sys.argv[3])
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    s = connect(sock)
    s.sendall(frame({1: 90, 5: "alpha", 94: pid}))  # RUN_PREPARE, RUN_PID
    rep = read_reply(s) or {}
    s.close()
    print("pid=%d status=%s cgroup=%s error=%s" % (pid, rep.get(2), rep.get(180, ""), rep.get(3, "")), flush=True)
EOF
chmod 0644 "$T/prepare.py"
prepare()
{
	as_uid "$1" "$PYTHON" "$T/prepare.py" "$T/wire.py" "$T/run/admin.sock" \
		"$2" >"$T/$3" 2>&1 || { cat "$T/$3"; fail "$3: prepare.py failed"; }
}
# ok FILE N: exactly N lines, all prepared with a cgroup under PARENT.
ok()
{
	[ "$(grep -c "^pid=[0-9]* status=0 cgroup=$PARENT/run-" "$T/$1")" -eq "$2" ] &&
		[ "$(wc -l <"$T/$1")" -eq "$2" ] || { cat "$T/$1"; fail "$1: not $2 prepared cgroups"; }
}
runs() { find "$CG2$PARENT" -mindepth 1 -maxdepth 1 -type d -name 'run-*' | wc -l; }

# --- 16 per uid ------------------------------------------------------------------
prepare 0 16 root
ok root 16
prepare 0 1 root17
grep -q "^pid=[0-9]* status=14 cgroup= error=too many stint runs of uid 0 are waiting for their task already (at most 16 per uid" "$T/root17" ||
	{ cat "$T/root17"; fail "root's 17th RUN_PREPARE was not refused by the per-uid limit"; }
note "root's 17th: $(sed 's/^.* cgroup= //' "$T/root17")"
prepare "${OPS[0]}" 1 op1a
ok op1a 1
note "another uid (operator op1) still gets one"

# --- 64 in all -----------------------------------------------------------------------
prepare "${OPS[0]}" 15 op1
ok op1 15
prepare "${OPS[1]}" 16 op2
ok op2 16
prepare "${OPS[2]}" 16 op3
ok op3 16
prepare "${OPS[3]}" 1 op4
grep -q "^pid=[0-9]* status=14 cgroup= error=too many stint runs are waiting for their task already (at most 64 in all" "$T/op4" ||
	{ cat "$T/op4"; fail "the 65th RUN_PREPARE (a fourth operator's first) was not refused by the limit in all"; }
note "the 65th: $(sed 's/^.* cgroup= //' "$T/op4")"

# --- the deadline removes what waits ---------------------------------------------
# The children go; the two refused cgroups go with them, the 64 waiting
# ones stay until their deadline.
kids() { sed -n 's/^pid=\([0-9]*\) .*/\1/p' "$@"; }
kids "$T"/root* "$T"/op* | xargs -r kill -KILL
wait_for 10 sh -c "[ \$(find '$CG2$PARENT' -mindepth 1 -maxdepth 1 -type d -name 'run-*' | wc -l) -eq 64 ]" ||
	fail "$(runs) run cgroups after the children died, wanted the 64 waiting ones"
sleep 2
[ "$(runs)" -eq 64 ] || fail "$(runs) run cgroups: waiting ones went before their deadline"
t0=$(date +%s)
wait_for 90 sh -c "[ \$(find '$CG2$PARENT' -mindepth 1 -maxdepth 1 -type d -name 'run-*' | wc -l) -eq 0 ]" ||
	fail "$(runs) prepared cgroups left 90 s after their deadline"
note "the 64 waiting cgroups were removed $(($(date +%s) - t0)) s after their children died (deadline 60 s after RUN_PREPARE)"
[ "$(grep -c 'prepared for stint run.*was not used: removed' "$STINTD_LOG")" -ge 64 ] ||
	fail "stintd did not log the removal of the 64 unused cgroups"
prepare 0 1 again
ok again 1
note "after the deadline root gets one again: its entries left the list"
# stintd removes a waiting cgroup when it stops, once its child is gone.
cg=$(sed -n 's/.* cgroup=\([^ ]*\) .*/\1/p' "$T/again")
kids "$T/again" | xargs -r kill -KILL
wait_for 10 sh -c "[ -z \"\$(cat '$CG2$cg/cgroup.procs')\" ]" || fail "the child in $cg did not die"
stintd_stop
[ "$(runs)" -eq 0 ] || fail "run cgroups left after stintd stopped: $(runs)"
exit 0
