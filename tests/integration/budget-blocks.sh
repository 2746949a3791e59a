#!/bin/bash
# Signature budgets reserved in blocks (issue 14, [stintd] budget_block):
#  - a task with --max-signatures N signs exactly N, one client or several
#    concurrent processes, and the N+1th is refused; task show reports the
#    actual count inside a block, and a clean restart gives the unused
#    reservation back;
#  - state.db is written once per block, not once per signature: strace
#    counts the writes stintd makes to state.db and its WAL over 500
#    signatures (fails before blocks: two or more per signature);
#  - kill -9 in the middle of signing, restart: the signatures the clients
#    received, and the sign-allowed records in the audit log, never exceed
#    N across both runs, and the task still refuses past N;
#  - budget_block = 1 behaves as before (a write per signature, exact N).
. "$(dirname "$0")/lib.sh"
need_cmd strace
stint_tmpdir
backend_init
stintd_config
need_p11client

block() { # block B: [stintd] budget_block = B from the next start
	sed -i '/^budget_block = /d' "$STINTD_CONF"
	sed -i "/^\[stintd\]/a budget_block = $1" "$STINTD_CONF"
}
block 64
stintd_start
p11_env
agent_add alpha "$(id -u)"
head -c 32 /dev/urandom >"$T/digest"

sign() { # sign TASK [p11client options]
	local t=$1
	shift
	p11client --token alpha --label "$t" --mech ecdsa --in "$T/digest" "$@"
}
ok_of() { sed -n 's/^ok=//p' "$1" | tail -n 1; }
used_of() { stint task show "$1" --json | json_get signatures_used; }

# Exactly N, one client (N not a multiple of the block).
exact_one()
{
	local n=$1 t got

	t=$(task_start alpha --ttl 30m --max-signatures "$n") || exit 1
	sign "$t" --count "$n" >"$T/out" 2>&1 || { cat "$T/out"; fail "$n signatures within a budget of $n"; }
	! sign "$t" >"$T/out" 2>&1 || fail "signature $((n + 1)) of a budget of $n allowed"
	got=$(used_of "$t")
	[ "$got" = "$n" ] || fail "task show: signatures_used $got, expected $n"
}
exact_one 100

# Exactly N, four concurrent processes of two threads each.
exact_many()
{
	local n=$1 t i pids=() total=0 got

	t=$(task_start alpha --ttl 30m --max-signatures "$n") || exit 1
	for i in 1 2 3 4; do
		sign "$t" --threads 2 --until-refused >"$T/c$i.out" 2>&1 &
		pids+=($!)
		bg_track $!
	done
	for i in 1 2 3 4; do
		wait "${pids[$((i - 1))]}" || { cat "$T/c$i.out"; fail "client $i was not refused at the end of the budget"; }
		total=$((total + $(ok_of "$T/c$i.out")))
	done
	note "concurrent: budget $n, the four clients received $total signatures"
	[ "$total" -eq "$n" ] || fail "concurrent clients received $total signatures of a budget of $n"
	got=$(audit_count "$t" sign-allowed)
	[ "$got" -eq "$n" ] || fail "audit has $got sign-allowed records for a budget of $n"
	got=$(used_of "$t")
	[ "$got" = "$n" ] || fail "task show: signatures_used $got, expected $n"
}
exact_many 300

# The actual count inside a block, and back after a clean restart.
mid=$(task_start alpha --ttl 30m --max-signatures 100) || exit 1
sign "$mid" --count 10 >"$T/out" 2>&1 || { cat "$T/out"; fail "10 signatures"; }
[ "$(used_of "$mid")" = 10 ] || fail "task show inside a block: $(used_of "$mid"), expected 10"
stintd_stop
stintd_start
[ "$(used_of "$mid")" = 10 ] || fail "after a clean restart: $(used_of "$mid") used, expected 10"
sign "$mid" --count 90 >"$T/out" 2>&1 || { cat "$T/out"; fail "the 90 left after a clean restart"; }
! sign "$mid" >/dev/null 2>&1 || fail "signature 101 of 100 allowed after a clean restart"

# Writes to state.db (and its WAL, whose writes are the commits) over 500
# signatures of a budgeted task, counted with strace.
state_writes()
{
	local n=$1 t st

	t=$(task_start alpha --ttl 30m --max-signatures $((n * 2))) || exit 1
	sign "$t" >/dev/null 2>&1 || fail "first signature"
	# Attach messages on (quiet=exit, not -qq): sign only once strace
	# traces every thread, or uncounted writes pass "fewer than 150".
	strace -f -e quiet=exit -y -e trace=pwrite64,write,fdatasync,fsync \
		-o "$T/strace.out" -p "$STINTD_PID" 2>"$T/strace.err" &
	st=$!
	bg_track "$st"
	strace_attach_wait "$STINTD_PID" "$st" "$T/strace.err"
	sign "$t" --count "$n" >"$T/out" 2>&1 || { cat "$T/out"; fail "$n signatures under strace"; }
	sleep 0.5
	kill -INT "$st"
	wait "$st" 2>/dev/null
	grep -c 'state\.db' "$T/strace.out" || true
}
writes=$(state_writes 500) || exit 1
note "budget_block 64: $writes writes to state.db over 500 signatures"
[ "$writes" -lt 150 ] || fail "$writes writes to state.db over 500 budgeted signatures (block 64: expected fewer than 150)"

# kill -9 in the middle of signing.
n=4000
victim=$(task_start alpha --ttl 30m --max-signatures $n) || exit 1
for i in 1 2; do
	sign "$victim" --threads 2 --until-refused >"$T/k$i.out" 2>&1 &
	bg_track $!
	kp[i]=$!
done
audited_ge() { [ "$(audit_count "$1" sign-allowed)" -ge "$2" ]; }
wait_for 30 audited_ge "$victim" 300 || fail "no signatures before the kill"
stintd_kill9
before=0
for i in 1 2; do
	wait "${kp[i]}"
	before=$((before + $(ok_of "$T/k$i.out")))
done
[ "$before" -lt "$n" ] || fail "the clients spent the budget before the kill: make n larger"
stintd_start
after_start=$(used_of "$victim")
sign "$victim" --threads 2 --until-refused >"$T/k3.out" 2>&1 ||
	{ cat "$T/k3.out"; fail "not refused at the end of the budget after the restart"; }
after=$(ok_of "$T/k3.out")
audited=$(audit_count "$victim" sign-allowed)
note "kill -9: clients received $before, the restart began at $after_start used, then $after more; audit $audited sign-allowed"
[ $((before + after)) -le "$n" ] || fail "clients received $((before + after)) signatures of a budget of $n"
[ "$audited" -le "$n" ] || fail "audit has $audited sign-allowed records of a budget of $n"
# What the crash lost: at most the block being used, and the signatures
# in flight at the kill (audited, not received).
[ "$audited" -gt $((n - 64 - 8)) ] || fail "the crash lost $((n - audited)) signatures (more than a block)"
! sign "$victim" >/dev/null 2>&1 || fail "signature past the budget after kill -9 and restart"
[ "$(used_of "$victim")" = "$n" ] || fail "task show after the budget: $(used_of "$victim"), expected $n"

# budget_block = 1: as before blocks, a write per signature.
stintd_stop
block 1
stintd_start
exact_one 50
exact_many 60
writes=$(state_writes 100) || exit 1
note "budget_block 1: $writes writes to state.db over 100 signatures"
[ "$writes" -ge 100 ] || fail "budget_block 1: $writes writes over 100 signatures, expected one or more each"
stintd_stop
