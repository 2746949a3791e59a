#!/bin/bash
# stintd creates state_dir and runtime_dir itself, with exactly the modes
# the documentation states (state 0700; runtime 0755 with agent.sock 0666
# and admin.sock 0666, checked per connection: operators reach it) whatever the umask it was started with, so an agent
# of another uid reaches agent.sock and signs with no help from the
# installer. (stintd used to set umask 077 before mkdir(runtime_dir, 0755):
# the directory came out 0700 and every agent saw an empty slot.)
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
stint_tmpdir
backend_init
stintd_config
need_p11client
# Start from directories that do not exist.
rmdir "$T/state" "$T/run"

mode_of()
{
	stat -c '%a' "$1"
}

for um in 077 022 000; do
	# Each round starts from directories that do not exist. The token
	# keeps the keys of the round before (the ready keys), and a fresh
	# state_dir beside a token with keys is what the store guard refuses
	# (issue 8 item 5): say that a new store is wanted, as an operator
	# starting over would (stintd --init).
	if [ -d "$T/run" ]; then
		stintd_stop
		rm -rf "$T/state" "$T/run"
		STINTD_ARGS=--init
	fi
	umask "$um"
	stintd_start
	umask 022
	[ "$(mode_of "$T/run")" = 755 ] || fail "umask $um: runtime_dir is $(mode_of "$T/run"), not 755"
	[ "$(mode_of "$T/state")" = 700 ] || fail "umask $um: state_dir is $(mode_of "$T/state"), not 700"
	[ "$(mode_of "$T/run/agent.sock")" = 666 ] || fail "umask $um: agent.sock is $(mode_of "$T/run/agent.sock")"
	[ "$(mode_of "$T/run/admin.sock")" = 666 ] || fail "umask $um: admin.sock is $(mode_of "$T/run/admin.sock")"
	note "umask $um: run 755, state 700, agent.sock 666, admin.sock 666"
done
STINTD_ARGS=

# An unprivileged uid signs through the directory stintd made.
p11_env
U=$(for u in $(seq 62001 62100); do
	getent passwd "$u" >/dev/null || pgrep -U "$u" >/dev/null || { echo "$u"; break; }
done)
mkdir -m 0755 "$T/bin"
cp "$STINT_MODULE" "$P11CLIENT" "$T/bin/"
chmod 0755 "$T/bin"/*
head -c 32 /dev/urandom >"$T/digest"
chmod 0644 "$T/digest"
agent_add rd "$U"
id=$(task_start rd --ttl 5m)
as_uid "$U" env STINT_SOCKET="$STINT_SOCKET" "$T/bin/p11client" \
	--module "$T/bin/$(basename "$STINT_MODULE")" --token rd --label "$id" \
	--mech ecdsa --in "$T/digest" --count 1 >"$T/out" 2>&1 ||
	{ cat "$T/out" >&2; fail "uid $U cannot sign through the runtime_dir stintd created"; }
note "uid $U signed through $T/run/agent.sock"
stintd_stop
