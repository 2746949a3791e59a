#!/bin/bash
# Tasks bound to a cgroup or a process (issue 12 §3): a process of the
# agent's uid outside the bound cgroup is refused (and audited) and does
# not see the task; one inside signs. A task bound to a pid is usable by
# that process only, and ends when it exits; a recycled pid (same pid,
# later start time) is refused, and a pid-bound task whose process exited
# while stintd was down ends at its next start. A cgroup-bound task ends
# once the cgroup is empty.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
[ -x "$PYTHON" ] || skip "python3 not installed"
stint_tmpdir
cg_test_tree stint-test-bind
TESTCG=$CGTEST
stint_setup
need_p11client
wire_py
alpha_setup 61101

field() { stint task show "$1" --json | json_get "$2"; }
ended() { [ "$(field "$1" state)" = ended ]; }
# A process of uid A, first moved into cgroup $1 ("" = stay), runs the rest
# (a script, not a function: in the background $! is that process).
cat >"$T/incg" <<'EOF'
#!/bin/sh
uid=$1 cg=$2
shift 2
if [ -n "$cg" ]; then echo $$ >"$cg/cgroup.procs" || exit 99; fi
exec setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@"
EOF
chmod 0755 "$T/incg"
in_cgroup_as_a() { local cg=$1; shift; "$T/incg" "$A" "${cg:+$CG2$cg}" "$@"; }
refused_with() # TASK REASON: a sign-refused record for TASK with REASON
{
	"$PYTHON" - "$AUDIT_LOG" "$1" "$2" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "sign-refused" and r.get("task") == sys.argv[2] \
            and sys.argv[3] in json.dumps(r):
        sys.exit(0)
sys.exit(1)
EOF
}

# --- bound to a cgroup ------------------------------------------------------
mkdir "$CG2$TESTCG/work"
"$T/incg" "$A" "$CG2$TESTCG/work" sleep 600 &
keeper=$!
bg_track "$keeper"
wait_for 10 grep -qx "$keeper" "$CG2$TESTCG/work/cgroup.procs" || fail "keeper did not enter the cgroup"
tc=$(task_start alpha --ttl 10m --bind-cgroup "$TESTCG/work")
stint task show "$tc" >"$T/show" || fail "task show $tc"
grep -q "^bound to    cgroup $TESTCG/work\$" "$T/show" || { cat "$T/show"; fail "task show does not show the binding"; }
stint task list >"$T/list" || fail "task list"
grep -q "$tc .*cgroup $TESTCG/work" "$T/list" || { cat "$T/list"; fail "task list does not show the binding"; }

# Inside (a child cgroup too): signs and sees the task.
mkdir "$CG2$TESTCG/work/sub"
in_cgroup_as_a "$TESTCG/work/sub" "$CLI" --module "$MOD" --token alpha --label "$tc" \
	--mech ecdsa --in "$T/digest" --count 1 >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "a process of uid $A inside the bound cgroup cannot sign"; }
# Outside, same uid: the task is not listed, and a SIGN naming it is refused.
in_cgroup_as_a "" "$CLI" --module "$MOD" --list >"$T/out" 2>&1
grep -q "$tc" "$T/out" && { cat "$T/out"; fail "a process outside the bound cgroup lists the task"; }
in_cgroup_as_a "" "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$tc" >"$T/out" 2>&1
grep -q '^status=4 ' "$T/out" || { cat "$T/out"; fail "SIGN from outside the bound cgroup: expected status 4"; }
refused_with "$tc" "outside the task's bound cgroup" || fail "no audited refusal for the outsider"
note "outside the bound cgroup: refused and audited"

# The cgroup empties: the task ends by itself.
kill -KILL "$keeper"
start=$(date +%s.%N)
wait_for 10 ended "$tc" || fail "task bound to an emptied cgroup still $(field "$tc" state) after 10 s"
note "cgroup empty -> task ended in $(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo '?') s"
[ "$(field "$tc" reason)" = "bound cgroup empty" ] || fail "reason: $(field "$tc" reason)"
! backend_has_key "$tc" || fail "key of $tc still in the backend"
[ -d "$CG2$TESTCG/work" ] || fail "stintd removed a cgroup it did not make"
grep -q "\"event\":\"task-end\".*\"task\":\"$tc\".*bound cgroup empty" "$AUDIT_LOG" ||
	grep -q "\"task\":\"$tc\".*\"event\":\"task-end\".*bound cgroup empty" "$AUDIT_LOG" ||
	fail "the end of $tc (cgroup empty) was not audited with its reason"

# The cgroup empties while stintd is down: ended at the next start.
mkdir "$CG2$TESTCG/gone"
"$T/incg" "$A" "$CG2$TESTCG/gone" sleep 600 &
keeper=$!
bg_track "$keeper"
wait_for 10 grep -qx "$keeper" "$CG2$TESTCG/gone/cgroup.procs" || fail "keeper did not enter cgroup gone"
tg=$(task_start alpha --ttl 10m --bind-cgroup "$TESTCG/gone")
stintd_stop
kill -KILL "$keeper"
wait "$keeper" 2>/dev/null
stintd_start
wait_for 10 ended "$tg" || fail "task bound to a cgroup emptied while stintd was down: still $(field "$tg" state)"
[ "$(field "$tg" reason)" = "bound cgroup empty" ] || fail "reason: $(field "$tg" reason)"
! backend_has_key "$tg" || fail "key of $tg still in the backend"
note "cgroup emptied while stintd was down -> task ended at start"

# An empty cgroup, an unknown one, a bad path: refused at start.
mkdir "$CG2$TESTCG/empty"
! stint task start --agent alpha --bind-cgroup "$TESTCG/empty" >"$T/out" 2>&1 || fail "bound to an empty cgroup"
grep -q "has no process" "$T/out" || { cat "$T/out"; fail "empty cgroup: no clear reason"; }
! stint task start --agent alpha --bind-cgroup "$TESTCG/nope" >"$T/out" 2>&1 || fail "bound to a missing cgroup"
! stint task start --agent alpha --bind-cgroup "$TESTCG/../x" >"$T/out" 2>&1 || fail "bound to a path with .."

# --- bound to a pid ----------------------------------------------------------
# P waits for "go", then (same pid, exec) signs with the task named in a file.
mkfifo -m 0666 "$T/go"
setpriv --reuid="$A" --regid="$A" --clear-groups -- sh -c \
	'read x <"$1"; exec "$2" --module "$3" --token alpha --label "$(cat "$4")" --mech ecdsa --in "$5" --count 1' \
	sh "$T/go" "$CLI" "$MOD" "$T/task" "$T/digest" >"$T/p.out" 2>&1 &
P=$!
bg_track "$P"
tp=$(task_start alpha --ttl 10m --bind-pid "$P")
echo "$tp" >"$T/task"
chmod 0644 "$T/task"
[ "$(stint task show "$tp" --json | json_get bound_to.pid)" = "$P" ] || fail "task show: not bound to pid $P"
# The start time is /proc/PID/stat's field 22 (comm is "sh": no spaces).
st=$(awk '{print $22}' "/proc/$P/stat")
[ "$(stint task show "$tp" --json | json_get bound_to.start_time)" = "$st" ] || fail "bound start time is not field 22 ($st)"
# Another process of the same uid: refused.
in_cgroup_as_a "" "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$tp" >"$T/out" 2>&1
grep -q '^status=4 ' "$T/out" || { cat "$T/out"; fail "another process signed with a pid-bound task"; }
refused_with "$tp" "bound to another process" || fail "no audited refusal for the other process"
echo go >"$T/go"
wait "$P" || { cat "$T/p.out"; fail "the bound process could not sign"; }
start=$(date +%s.%N)
wait_for 10 ended "$tp" || fail "task bound to exited pid $P still $(field "$tp" state) after 10 s"
note "bound process exited -> task ended in $(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo '?') s"
[ "$(field "$tp" reason)" = "bound process exited" ] || fail "reason: $(field "$tp" reason)"
! backend_has_key "$tp" || fail "key of $tp still in the backend"

# --- pid reuse ---------------------------------------------------------------
# A process Q is bound, then exits while stintd is down; a new process gets
# Q's pid (ns_last_pid). At start stintd sees a later start time: the task
# ends at once, and the new process is refused.
reuse_pid() # PID OUT CMD...: CMD in the background with pid PID (>OUT)
{
	local want=$1 out=$2 i

	shift 2
	REUSED=
	for ((i = 0; i < 200; i++)); do
		echo $((want - 1)) >/proc/sys/kernel/ns_last_pid 2>/dev/null || return 1
		"$@" </dev/null >"$out" 2>&1 &
		[ "$!" = "$want" ] && { REUSED=$!; return 0; }
		kill -KILL "$!" 2>/dev/null
		wait "$!" 2>/dev/null
	done
	return 1
}
"$T/incg" "$A" "" sleep 600 &
Q=$!
bg_track "$Q"
tq=$(task_start alpha --ttl 10m --bind-pid "$Q")
stintd_stop
kill -KILL "$Q"
wait "$Q" 2>/dev/null
if reuse_pid "$Q" /dev/null "$T/incg" "$A" "" sleep 600; then
	R=$REUSED
	bg_track "$R"
	note "pid $Q recycled for a new process"
	stintd_start
	ended "$tq" || fail "task bound to a recycled pid is still $(field "$tq" state) after restart"
	[ "$(field "$tq" reason)" = "bound process exited" ] || fail "reason: $(field "$tq" reason)"
	# The recycled pid, connecting itself, is refused.
	kill -KILL "$R"
	wait "$R" 2>/dev/null
	if reuse_pid "$Q" "$T/out" "$T/incg" "$A" "" "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$tq"; then
		wait "$REUSED"
		grep -Eq '^status=(4|5) ' "$T/out" || { cat "$T/out"; fail "recycled pid $Q: SIGN not refused"; }
		note "recycled pid $Q: SIGN refused"
	fi
else
	note "could not recycle pid $Q (busy machine): checking the restart path only"
	stintd_start
	ended "$tq" || fail "task bound to a dead pid is still live after restart"
fi
! backend_has_key "$tq" || fail "key of $tq still in the backend"

# While stintd runs, a recycled pid cannot use a bound task either: the
# gate compares the start time (a task bound to a live process, a second
# process presenting the same pid is impossible, so check the field).
tl=$(task_start alpha --ttl 10m --bind-pid $$)
[ "$(stint task show "$tl" --json | json_get bound_to.start_time)" != 0 ] || fail "no start time recorded"
stint task end "$tl" >/dev/null || fail "task end of a pid-bound task"

# A bound task survives a restart while its process lives, and still ends
# when the process exits.
"$T/incg" "$A" "" sleep 600 &
V=$!
bg_track "$V"
tv=$(task_start alpha --ttl 10m --bind-pid "$V")
stintd_stop
stintd_start
[ "$(field "$tv" state)" = live ] || fail "pid-bound task with a live process ended at restart"
kill -KILL "$V"
wait_for 10 ended "$tv" || fail "after restart, task bound to exited pid still live"
note "bound tasks: ok"
