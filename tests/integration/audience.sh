#!/bin/bash
# Audiences (issue 10 §3): the destination systems a task may authenticate
# to. An agent registered with --audiences a,b gives its tasks a subset
# (default: all of them); the leaf's task extension names them, and
# `stint verify-peer --audience NAME` accepts only a relying party the task
# names. A task asking for an audience its agent lacks is refused at start
# and the refusal is audited; a task of an agent without audiences names
# none, and a relying party that asks for one refuses it.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd openssl
stint_setup
me=$(id -u)
agent_add alpha "$me" --audiences a,b
agent_add plain 4242
stint agent show alpha --json | json_get audiences | grep -qx "a,b" ||
	fail "agent show does not list audiences a,b"

leaf()
{
	stint task show "$1" --cert >"$T/$1.pem" || fail "task show --cert $1"
	echo "$T/$1.pem"
}
accepts()
{
	stint verify-peer "$1" --audience "$2" >"$T/vp" 2>&1 ||
		{ cat "$T/vp"; fail "verify-peer --audience $2 refused $1"; }
}
refuses()
{
	if stint verify-peer "$1" --audience "$2" >"$T/vp" 2>&1; then
		cat "$T/vp"
		fail "verify-peer --audience $2 accepted $1"
	fi
	grep -q "check audience failed" "$T/vp" ||
		{ cat "$T/vp"; fail "verify-peer --audience $2: not the audience check"; }
}

# --- a task for audience a only ---------------------------------------------
ta=$(task_start alpha --audience a)
pa=$(leaf "$ta")
accepts "$pa" a
refuses "$pa" b
refuses "$pa" c
stint verify-peer "$pa" >"$T/vp" || fail "verify-peer without --audience refused"
grep -qx "audiences a" "$T/vp" || { cat "$T/vp"; fail "verify-peer does not print the leaf's audiences"; }
[ "$(stint verify-peer "$pa" --json | "$PYTHON" -c 'import json,sys; print(",".join(json.load(sys.stdin)["audiences"]))')" = a ] ||
	fail "verify-peer --json does not list the leaf's audiences"
[ "$(stint task show "$ta" --json | json_get audiences)" = a ] ||
	fail "task show does not say audiences a"

# --- the default: all of the agent's ---------------------------------------
td=$(task_start alpha)
pd=$(leaf "$td")
accepts "$pd" a
accepts "$pd" b
refuses "$pd" c
[ "$(stint task show "$td" --json | json_get audiences)" = a,b ] ||
	fail "default task does not get audiences a,b"

# --- repeatable --audience -------------------------------------------------
tr=$(task_start alpha --audience b --audience a)
pr=$(leaf "$tr")
accepts "$pr" a
accepts "$pr" b

# --- widening is refused, with its reason, and audited ---------------------
if stint task start --agent alpha --audience c -q >"$T/out" 2>"$T/err"; then
	fail "task start --audience c (not the agent's) was accepted"
fi
grep -q "audience 'c' is not one of agent 'alpha''s audiences" "$T/err" ||
	{ cat "$T/err"; fail "refusal does not name the audience"; }
if stint task start --agent alpha --audience a --audience c -q >"$T/out" 2>"$T/err"; then
	fail "task start --audience a --audience c was accepted"
fi
"$PYTHON" - "$AUDIT_LOG" <<'PY' || fail "the audience refusal is not audited"
import json, sys
n = 0
for line in open(sys.argv[1], "rb"):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if (r.get("event") == "task-start" and r.get("decision") == "deny"
            and "audience 'c'" in (r.get("reason") or "")):
        n += 1
sys.exit(0 if n == 2 else 1)
PY
stint task list --agent alpha --json | grep -c '"id"' | grep -qx 3 ||
	fail "a refused start left a task behind"

# --- bad names are refused before stintd ------------------------------------
stint task start --agent alpha --audience 'x y' -q >/dev/null 2>&1 &&
	fail "an audience with a space was accepted"
stint agent add bad --uid "$me" --gid 1 --audiences 'a,,b' >/dev/null 2>&1 &&
	fail "an empty audience name was accepted"

# --- an agent without audiences: its tasks name none ------------------------
tp=$(task_start plain)
pp=$(leaf "$tp")
stint verify-peer "$pp" >"$T/vp" || fail "verify-peer refused a task without audiences"
! grep -q "^audiences" "$T/vp" || { cat "$T/vp"; fail "verify-peer printed audiences for a leaf that names none"; }
refuses "$pp" a
grep -q "names no audience" "$T/vp" || { cat "$T/vp"; fail "no-audience refusal reason"; }
stint task start --agent plain --audience a -q >/dev/null 2>&1 &&
	fail "a task of an agent without audiences got audience a"

# --- the C example relying party (libstint-verify) ---------------------------
EXAMPLE=$top_builddir/examples/verify_peer
if [ -x "$EXAMPLE" ]; then
	stint ca cert >"$T/bundle.pem" || fail "stint ca cert"
	"$EXAMPLE" "$pa" "$T/bundle.pem" alpha a >/dev/null ||
		fail "examples/verify_peer refused audience a"
	"$EXAMPLE" "$pa" "$T/bundle.pem" "" b >/dev/null 2>"$T/ex" &&
		fail "examples/verify_peer accepted audience b"
	grep -q "check audience" "$T/ex" || { cat "$T/ex"; fail "example: not the audience check"; }
else
	note "no $EXAMPLE (make check builds it): C example not run"
fi

# --- state.db keeps them across a restart -----------------------------------
stintd_stop
stintd_start
[ "$(stint task show "$td" --json | json_get audiences)" = a,b ] ||
	fail "audiences lost across a restart"
t2=$(task_start alpha)
refuses "$(leaf "$t2")" c
accepts "$T/$t2.pem" b
echo "ok"
