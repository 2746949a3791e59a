#!/bin/bash
# stint run --parent (issue 10 §1): a sub-agent runs in its own run with a
# child task of the parent, bound to the run's cgroup: its processes sign
# with the child's key and cannot use the parent's; the child ends when the
# run does and the parent stays live; ending the parent during a run ends
# the child too. A --parent that breaks a delegation rule starts nothing.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv findmnt
[ -x "$PYTHON" ] || skip "python3 not installed"
CG2=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
[ -n "$CG2" ] || skip "no cgroup v2 hierarchy mounted"
stint_tmpdir
PARENT=/stint-test-drun-$$
mkdir "$CG2$PARENT" 2>/dev/null || skip "cannot create a cgroup in $CG2 (not writable here)"
cg_cleanup()
{
	local d

	for d in $(find "$CG2$PARENT" -depth -type d 2>/dev/null); do
		xargs -r kill -KILL <"$d/cgroup.procs" 2>/dev/null
	done
	sleep 0.2
	find "$CG2$PARENT" -depth -type d -exec rmdir {} \; 2>/dev/null
}
trap 'rc=$?; cg_cleanup; (exit $rc); _cleanup' EXIT

backend_init
stintd_config
printf '\n[run]\ncgroup_parent = %s\n' "$PARENT" >>"$STINTD_CONF"
stintd_start
p11_env
need_p11client
wire_py

A=61301
while getent passwd "$A" >/dev/null || pgrep -U "$A" >/dev/null; do A=$((A + 1)); done
mkdir -m 0755 "$T/bin"
cp "$STINT_MODULE" "$P11CLIENT" "$T/bin/"
chmod 0755 "$T/bin"/*
export MOD=$T/bin/$(basename "$STINT_MODULE") CLI=$T/bin/p11client A T PYTHON
chmod 0644 "$T/wire.py"
head -c 32 /dev/urandom >"$T/digest"
chmod 0644 "$T/digest"
agent_add lead "$(id -u)" --delegate-to sub --max-depth 1
agent_add sub "$A"
field() { stint task show "$1" --json | json_get "$2"; }
run=("$STINT" --socket "$T/run/admin.sock" run)

root=$(task_start lead --ttl 30m --max-signatures 50)
export ROOT=$root
mkfifo -m 0600 "$T/go"
"${run[@]}" --parent "$root" --agent sub --max-signatures 5 -- sh -c '
env | grep "^STINT_" | sort >"$T/env"
setpriv --reuid="$A" --regid="$A" --clear-groups -- "$CLI" --module "$MOD" \
	--token sub --label "$STINT_TASK" --mech ecdsa --in "$T/digest" \
	--count 1 >"$T/child.out" 2>&1 && echo signed >>"$T/child.out"
setpriv --reuid="$A" --regid="$A" --clear-groups -- "$PYTHON" "$T/wire.py" \
	sign "$STINT_SOCKET" "$ROOT" >"$T/parent.out" 2>&1
read x <"$T/go"
exit 3' >"$T/run.out" 2>&1 &
RUN=$!
bg_track "$RUN"
wait_for 30 test -s "$T/parent.out" || { cat "$T/run.out"; fail "the run did not start"; }
grep -q signed "$T/child.out" || { cat "$T/child.out" "$T/run.out"; fail "the sub-agent's run could not sign with its child task"; }
grep -q "^status=4 " "$T/parent.out" || { cat "$T/parent.out"; fail "the sub-agent's run used the parent's task"; }
tid=$(sed -n 's/^STINT_TASK=//p' "$T/env")
[ -n "$tid" ] || fail "no STINT_TASK"
[ "$(field "$tid" agent)" = sub ] || fail "the run's task is not sub's"
stint task tree "$root" --json | grep -q "\"id\": \"$tid\"" || fail "the run's task is not in the parent's tree"
case $(field "$tid" bound_to.cgroup) in "$PARENT"/run-*) ;; *) fail "the child is not bound to the run's cgroup" ;; esac
[ "$(field "$root" signatures_used)" = 5 ] || fail "the run's budget was not reserved from the parent"
echo go >"$T/go"
wait "$RUN"
rc=$?
[ "$rc" -eq 3 ] || { cat "$T/run.out"; fail "stint run exited $rc, not the command's 3"; }
[ "$(field "$tid" state)" = ended ] || fail "the child is still $(field "$tid" state) after the run"
[ "$(field "$root" state)" = live ] || fail "the run's end ended the parent"
[ "$(field "$root" signatures_used)" = 1 ] || fail "the run's unused budget did not return to the parent ($(field "$root" signatures_used))"
note "stint run --parent: child signed, parent refused, child ended with the run, 4 of 5 signatures returned"

# The parent ends during a run: the run's task ends with it.
"${run[@]}" --parent "$root" --agent sub --max-signatures 1 -- sh -c '
env | grep "^STINT_" | sort >"$T/env2"
sleep 60' >"$T/run2.out" 2>&1 &
RUN=$!
bg_track "$RUN"
wait_for 30 test -s "$T/env2" || { cat "$T/run2.out"; fail "the second run did not start"; }
tid2=$(sed -n 's/^STINT_TASK=//p' "$T/env2")
stint task end "$root" >/dev/null || fail "task end of the parent"
[ "$(field "$tid2" state)" = ended ] || fail "the run's child outlived its parent"
backend_has_key "$tid2" && fail "the run's child key outlived its parent"
kill -TERM "$RUN" 2>/dev/null
wait "$RUN"

# A rule broken: nothing runs.
r=$(task_start lead --ttl 5m)
if "${run[@]}" --parent "$r" --agent sub --ttl 10m -- touch "$T/ran" >"$T/run3.out" 2>&1; then
	fail "stint run --parent with a TTL past the parent's ran"
fi
grep -q "after the parent's deadline" "$T/run3.out" || { cat "$T/run3.out"; fail "no deadline reason"; }
[ ! -e "$T/ran" ] || fail "the command ran though its task was refused"
stintd_stop
