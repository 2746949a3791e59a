#!/bin/bash
# A slow token is never serialised by stintd (issue 14): with stintd's
# [backend] module set to tests/bench/slowtoken.so (SoftHSM2 behind a shim
# that holds every C_Sign 20 ms, like a network HSM), 4 client processes
# signing with one task key at once have more than one signature in the
# token at the same time. The shim counts them (SLOWTOKEN_STATS); no clock
# is asserted: a stintd that signed one at a time would leave the count at 1
# however fast or slow the machine is.
. "$(dirname "$0")/lib.sh"
slowtoken_config
export SLOWTOKEN_SIGN_US=20000
SLOWTOKEN_STATS=$T/inflight stintd_start
p11_env
agent_add alpha "$(id -u)"
id=$(task_start alpha) || exit 1

CLIENTS=4 COUNT=50
pids=()
for ((i = 0; i < CLIENTS; i++)); do
	p11client --token alpha --label "$id" --mech ecdsa --count "$COUNT" \
		>"$T/c.$i.out" 2>&1 &
	pids+=($!)
	bg_track "$!"
done
for ((i = 0; i < CLIENTS; i++)); do
	wait "${pids[$i]}" || { cat "$T/c.$i.out"; fail "client $i failed"; }
	grep -qx "ok=$COUNT" "$T/c.$i.out" ||
		{ cat "$T/c.$i.out"; fail "client $i did not get $COUNT signatures"; }
done

max=$(sed -n 's/^max_in_flight=//p' "$T/inflight" 2>/dev/null)
note "most signatures in the token at once: ${max:-none} ($CLIENTS clients)"
[ -n "$max" ] || fail "the shim counted no signature: stintd did not sign through it"
[ "$max" -ge 2 ] ||
	fail "stintd held at most one signature in the slow token at a time: it serialises signing"
note "more than one signature in the slow token at once through stintd"
stintd_stop
