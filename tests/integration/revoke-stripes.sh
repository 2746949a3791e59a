#!/bin/bash
# A task end waits for the signatures of the tasks it ends, and only those
# (issue 14). stintd's [backend] module is tests/bench/slowtoken.so with
# its hold: a C_Sign whose input starts with "stint-hold-sign" waits in the
# token while $T/hold exists, so one signature of task A is in flight for
# as long as the test wants. Then:
# - `stint task end A` runs in the background and has not returned while
#   A's signature is held;
# - meanwhile task B (another key, on another stripe of the revoke lock)
#   signs 5 times within 10 s (a bound for a loaded machine, not a timing
#   claim): with one lock for all tasks B queued behind A's end;
# - the hold is released: A's signature completes, then A's end returns
#   (the shim's log and the test's share one file, in order), A signs
#   nothing more, and the audit log has exactly the one signature of A;
# - the same for a tree: a signature held on a grandchild keeps the root's
#   `task end` waiting while a sibling tree keeps signing.
. "$(dirname "$0")/lib.sh"
slowtoken_config
HOLD=$T/hold
LOG=$T/order.log
export SLOWTOKEN_SIGN_US=0
SLOWTOKEN_HOLD_FILE=$HOLD SLOWTOKEN_HOLD_PREFIX=stint-hold-sign \
	SLOWTOKEN_HOLD_LOG=$LOG stintd_start
p11_env
signer_setup
SUB=$(free_uid 4411)
GRAND=$(free_uid $((SUB + 1)))
agent_add lead "$(id -u)" --delegate-to sub --max-depth 3
agent_add sub "$SUB" --delegate-to grand --max-depth 3
agent_add grand "$GRAND"
{ printf 'stint-hold-sign'; head -c 17 /dev/zero; } >"$T/held"
head -c 32 /dev/urandom >"$T/free"
chmod 0644 "$T/held" "$T/free"

# sign UID P11CLIENT-ARGS: p11client as UID ("": the test's own).
sign()
{
	local uid=$1

	shift
	if [ -z "$uid" ]; then
		p11client "$@"
	else
		as_uid "$uid" "$T/bin/p11client" --module "$MOD" "$@"
	fi
}

# The stripe of a task id, as attest/revoke_lock.c computes it (32-bit
# FNV-1a of the id's bytes, modulo 64); test_revoke_lock checks the C side
# gives the same value for this id.
stripe()
{
	local s=$1 h=2166136261 i c

	for ((i = 0; i < ${#s}; i++)); do
		printf -v c %d "'${s:i:1}"
		h=$(((h ^ c) * 16777619 & 0xffffffff))
	done
	echo $((h % 64))
}
[ "$(stripe t-0123456789abcdef0123456789abcdef)" = 42 ] ||
	fail "the test's stripe() differs from revoke_lock.c's"

# other_task AGENT ID...: a new task of AGENT on none of the IDs' stripes.
other_task()
{
	local agent=$1 id k s taken=" "

	shift
	for id in "$@"; do taken+="$(stripe "$id") "; done
	for ((k = 0; k < 20; k++)); do
		id=$(task_start "$agent" --ttl 10m) || return 1
		s=$(stripe "$id")
		[[ $taken == *" $s "* ]] || { echo "$id"; return 0; }
		stint task end "$id" >/dev/null
	done
	fail "20 tasks in a row on the stripes of $*"
}

# A failure lets the held signature go first: stintd then stops cleanly.
hfail()
{
	rm -f "$HOLD"
	fail "$@"
}

state()
{
	stint task show "$1" --json | json_get state
}
is_ended() { [ "$(state "$1")" = ended ]; }

# held_end UID TOKEN HELD END OTHER WHAT: holds a signature of task HELD
# (agent TOKEN, signed as UID), ends task END in the background, checks
# OTHER (a task of lead) signs meanwhile and END's end waits for HELD's
# signature, then releases it.
held_end()
{
	local uid=$1 token=$2 held=$3 end=$4 other=$5 what=$6 endpid hpid t0

	: >"$LOG"
	touch "$HOLD"
	t0=$SECONDS
	# (the module's reply timeout, 10 s by default, must outlast the hold)
	STINT_TIMEOUT_MS=300000 sign "$uid" --token "$token" --label "$held" \
		--mech ecdsa --in "$T/held" --count 1 >"$T/held.out" 2>&1 &
	hpid=$!
	bg_track "$hpid"
	wait_for 10 grep -qx held "$LOG" ||
		{ cat "$T/held.out"; hfail "$what: the signature never reached the token"; }
	{
		stint task end "$end" >"$T/end.out" 2>&1
		echo "rc=$?" >"$T/end.rc"
		echo end-returned >>"$LOG"
	} &
	endpid=$!
	bg_track "$endpid"
	# The end marks the tasks ended before it waits: wait for that (a
	# build that locks first never gets there; go on after 10 s anyway).
	wait_for 10 is_ended "$held" ||
		note "$what: $held not marked ended while its signature is held"
	kill -0 "$endpid" 2>/dev/null ||
		{ cat "$T/end.out"; hfail "$what: task end returned while a signature of $held was in the token"; }
	timeout 10 "$P11CLIENT" --module "$STINT_MODULE" --token lead \
		--label "$other" --mech ecdsa \
		--in "$T/free" --count 5 >"$T/other.out" 2>&1 ||
		{ cat "$T/other.out"; hfail "$what: $other could not sign 5 times within 10 s while $end's end waited"; }
	grep -qx ok=5 "$T/other.out" || { cat "$T/other.out"; hfail "$what: $other did not sign 5 times"; }
	note "$what: $other signed 5 times while $end's end waited for $held" \
		"($((SECONDS - t0)) s after the hold began)"
	kill -0 "$endpid" 2>/dev/null && ! grep -q end-returned "$LOG" ||
		{ cat "$T/end.out"; hfail "$what: task end returned while a signature of $held was in the token"; }
	rm -f "$HOLD"
	wait "$endpid"
	grep -qx rc=0 "$T/end.rc" || { cat "$T/end.out"; hfail "$what: task end $end failed"; }
	wait "$hpid" || { cat "$T/held.out"; hfail "$what: the held signature (before the end) failed"; }
	grep -qx ok=1 "$T/held.out" || { cat "$T/held.out"; hfail "$what: no held signature"; }
	[ "$(tr '\n' ' ' <"$LOG")" = "held signed end-returned " ] ||
		{ cat "$LOG"; hfail "$what: the held signature did not complete before task end returned"; }
	if sign "$uid" --token "$token" --label "$held" --mech ecdsa \
		--in "$T/free" --count 1 >"$T/after.out" 2>&1; then
		cat "$T/after.out"
		hfail "$what: $held signed after its end"
	fi
	[ "$(audit_count "$held" sign-allowed)" = 1 ] ||
		hfail "$what: $held has $(audit_count "$held" sign-allowed) sign-allowed records, not 1"
	note "$what: the held signature completed, then task end returned; $held signs nothing more"
}

a=$(task_start lead --ttl 10m) || exit 1
b=$(other_task lead "$a") || exit 1
held_end "" lead "$a" "$a" "$b" "one task"
[ "$(state "$b")" = live ] || fail "task B was ended too"

# A tree: root → child → grandchild (held); a sibling tree signs.
r=$(task_start lead --ttl 10m) || exit 1
c=$(stint task delegate "$r" --agent sub --json | json_get id) ||
	fail "task delegate $r failed"
g=$(stint task delegate "$c" --agent grand --json | json_get id) ||
	fail "task delegate $c failed"
s=$(other_task lead "$r" "$c" "$g") || exit 1
held_end "$GRAND" grand "$g" "$r" "$s" "cascade"
[ "$(state "$c")" = ended ] || fail "the child was not ended with the root"
[ "$(state "$s")" = live ] || fail "the sibling tree was ended too"
stintd_stop
