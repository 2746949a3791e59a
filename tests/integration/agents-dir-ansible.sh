#!/bin/bash
# Issue 15 (prov): examples/ansible run against this machine with Debian's
# ansible (ansible-playbook -c local -i localhost,). The role installs the
# built tree (make install into a DESTDIR here), ships one agents.d file
# per agent, validates with stintd --check and reloads with stint reload.
# Then: the declared agents exist with their file as source; a second run
# that narrows an agent (max_ttl 1h -> 10m) and drops another ends, by the
# time the play returns, the live task the new rule forbids and the
# dropped agent's task; a third, identical run changes nothing; a bad
# value fails the play at the check with FILE:LINE and changes nothing.
. "$(dirname "$0")/lib.sh"
need_cmd ansible-playbook
stint_tmpdir
agents_dir_init
stintd_start
ROLE_DIR=$top_srcdir/examples/ansible
[ -f "$ROLE_DIR/site.yml" ] || fail "no $ROLE_DIR/site.yml"

# vars FILE BUILD_DIR BILLING_TTL [EXTRA-AGENT-JSON]: the play's variables.
vars()
{
	cat >"$1" <<EOF2
{"ansible_python_interpreter": "$PYTHON",
 "stint_build_dir": "$2", "stint_make_install_args": "DESTDIR=$T/inst",
 "stint_confdir": "$T", "stint_config": "$STINTD_CONF",
 "stint_agents_dir": "$AD", "stint_admin_socket": "$T/run/admin.sock",
 "stintd": "$STINTD", "stint_cli": "$STINT",
 "stint_agents": [
   {"name": "billing", "uid": 62601, "max_ttl": "$3", "mechanisms": ["ecdsa"],
    "audiences": ["pay.example", "ops.example"]}${4:+, $4}]}
EOF2
}
# play N VARS: runs the role; output in $T/play.N.log
play()
{
	mkdir -p "$T/ansible-tmp"
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL ANSIBLE_LOCAL_TEMP="$T/ansible-tmp" \
		ANSIBLE_REMOTE_TEMP="$T/ansible-tmp" ANSIBLE_NOCOLOR=1 \
		ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_HOME="$T/ansible-home" \
		ansible-playbook -c local -i localhost, "$ROLE_DIR/site.yml" \
		-e "@$2" >"$T/play.$1.log" 2>&1
}

vars "$T/v1.json" "$top_builddir" 1h '{"name": "deploy", "uid": 62602}'
play 1 "$T/v1.json" || { cat "$T/play.1.log"; fail "the first play failed"; }
[ -n "$(find "$T/inst" -name stintd -type f -perm -u+x)" ] ||
	{ cat "$T/play.1.log"; fail "the role did not make install stintd"; }
stint agent list --json >"$T/agents.json"
"$PYTHON" - "$T/agents.json" "$AD" <<'PY' || { cat "$T/agents.json"; fail "the declared agents are not there"; }
import json, sys
v = json.load(open(sys.argv[1]))
agents = {a["name"]: a for a in (v["agents"] if isinstance(v, dict) else v)}
assert sorted(agents) == ["billing", "deploy"], agents
assert agents["billing"]["source"] == sys.argv[2] + "/billing.conf", agents
assert agents["billing"]["uid"] == 62601 and agents["billing"]["max_ttl"] == 3600, agents
PY
long=$(task_start billing --ttl 30m --audience pay.example)
short=$(task_start billing --ttl 5m --audience pay.example)
dep=$(task_start deploy --ttl 5m)

# Narrow billing, drop deploy: done when the play returns.
vars "$T/v2.json" "" 10m
play 2 "$T/v2.json" || { cat "$T/play.2.log"; fail "the narrowing play failed"; }
grep -q "RUNNING HANDLER \[stint : Reload stintd\]" "$T/play.2.log" ||
	{ cat "$T/play.2.log"; fail "the narrowing play did not reload"; }
state() { stint task show "$1" --json | json_get state; }
[ "$(state "$long")" != live ] || fail "the 30m task is live after max_ttl 10m was played"
[ "$(state "$dep")" != live ] || fail "the dropped agent's task is live after the play"
[ "$(state "$short")" = live ] || fail "the task the new rule allows was ended"
stint task show "$long" --json | json_get reason | grep -q "above max_ttl 600s" ||
	fail "reason: $(stint task show "$long" --json | json_get reason)"
[ ! -e "$AD/deploy.conf" ] || fail "deploy.conf left behind"
stint agent list --json | grep -q '"deploy"' && fail "agent deploy still exists"

# The same again: nothing to do.
play 3 "$T/v2.json" || { cat "$T/play.3.log"; fail "the third play failed"; }
grep -Eq "localhost +: ok=[0-9]+ +changed=0 " "$T/play.3.log" ||
	{ cat "$T/play.3.log"; fail "an identical play changed something"; }

# A bad value fails at the check, FILE:LINE; stintd keeps what it has.
vars "$T/v4.json" "" 99x
play 4 "$T/v4.json" && { cat "$T/play.4.log"; fail "a play with max_ttl 99x succeeded"; }
grep -q "billing.conf:[0-9]*: bad max_ttl '99x'" "$T/play.4.log" ||
	{ cat "$T/play.4.log"; fail "the failed play does not name FILE:LINE"; }
[ "$(stint agent show billing --json | json_get max_ttl)" = 600 ] || fail "a bad file changed billing"
[ "$(state "$short")" = live ] || fail "a bad file ended a task"
stintd_stop
note "ansible: role installs, declares, narrows (task ended when the play returns), idempotent, refuses a bad file"
