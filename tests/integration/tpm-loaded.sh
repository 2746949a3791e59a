#!/bin/bash
#
# TPM task keys kept loaded between signatures, and one policy session kept
# open (issue 14): fewer TPM commands per signature, while the TPM still
# checks the deadline and the kill switch on every signature, within
# swtpm's three object slots, and the TPM is left clean.
#
# 1. Through the backend library (tpm_probe loaded): 5 keys, more than
#    the slots, sign in turn; the TPM then holds the primary plus
#    tpm_loaded_keys keys and one session; a loaded key whose task ends is
#    flushed and refused; a loaded key is refused by the TPM's
#    PolicyCounterTimer after a ClockSet forward and by its PolicyNV after
#    the kill switch is used from outside the backend.
# 2. Through stintd and the module: 5 tasks sign in turn; task end
#    flushes; kill -9 leaves keys in the TPM, the next start flushes them,
#    and a clean stop leaves nothing.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tpm_lib.sh"
tpm_test_init

handles()
{
	"$TPM_PROBE" handles "$TCTI" || fail "cannot count TPM handles"
}

# --- 1. the backend library -----------------------------------------------------
out=$("$TPM_PROBE" loaded "$STINTD_CONF" "$TCTI" 5 2>"$T/probe.err")
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "loaded keys: exit $rc: $(grep FAIL <<<"$out") $(tail -n 3 "$T/probe.err")"
grep -q "^after the signatures: transient 3 sessions 1$" <<<"$out" ||
	fail "the default (2 keys + primary, 1 session) is not what stays loaded"
grep -q "^refused ld-short: .*deadline passed in TPM clock" <<<"$out" ||
	fail "loaded key past its deadline not refused by PolicyCounterTimer"
grep -q "^refused ld-2: .*kill switch used" <<<"$out" ||
	fail "loaded key not refused by PolicyNV after the kill switch"
[ "$(handles)" = "transient 0 sessions 0" ] || fail "TPM left with $(handles)"

# The knob: with tpm_loaded_keys = 0 nothing but the primary stays loaded.
sed -i 's/^type = tpm$/type = tpm\ntpm_loaded_keys = 0/' "$STINTD_CONF"
out=$("$TPM_PROBE" loaded "$STINTD_CONF" "$TCTI" 4 2>"$T/probe.err")
rc=$?
[ "$rc" -eq 0 ] || fail "tpm_loaded_keys = 0: exit $rc: $(grep FAIL <<<"$out")"
grep -q "^after the signatures: transient 1 sessions 1$" <<<"$out" ||
	fail "tpm_loaded_keys = 0 still keeps keys loaded: $out"
[ "$(handles)" = "transient 0 sessions 0" ] || fail "TPM left with $(handles)"
sed -i '/^tpm_loaded_keys = 0$/d' "$STINTD_CONF"

# --- 2. through stintd ---------------------------------------------------------------
need_p11client
stintd_start
p11_env
agent_add alpha "$(id -u)"
head -c 32 /dev/urandom >"$T/digest"
sign()
{
	p11client --token alpha --label "$1" --mech ecdsa --in "$T/digest" --count "${2:-1}"
}
ids=()
for i in 1 2 3 4 5; do
	ids+=("$(task_start alpha --ttl 30m)") || exit 1
done
for round in 1 2; do
	for id in "${ids[@]}"; do
		sign "$id" 3 >"$T/out" 2>&1 || fail "task $id: $(cat "$T/out")"
	done
done
h=$(handles)
note "stintd with 5 tasks signing in turn: TPM holds $h"
[ "$h" = "transient 3 sessions 1" ] || fail "stintd keeps $h loaded, wanted transient 3 sessions 1"
# The last signer is loaded: ending its task flushes it, and it cannot sign.
last=${ids[4]}
stint task end "$last" >/dev/null || fail "task end $last"
[ "$(handles)" = "transient 2 sessions 1" ] || fail "task end left its key loaded: $(handles)"
if sign "$last" >"$T/out" 2>&1; then
	fail "an ended task's loaded key signed"
fi
sign "${ids[3]}" >"$T/out" 2>&1 || fail "a live task after another ended: $(cat "$T/out")"
# kill -9 leaves the primary, keys and session in the TPM; the next start
# flushes them and signs; a clean stop leaves nothing.
stintd_kill9
h=$(handles)
note "after kill -9 the TPM holds: $h"
[ "$h" != "transient 0 sessions 0" ] || fail "nothing loaded before kill -9?"
stintd_start
for id in "${ids[@]:0:4}"; do
	sign "$id" >"$T/out" 2>&1 || fail "task $id after kill -9: $(cat "$T/out")"
done
stintd_stop
[ "$(handles)" = "transient 0 sessions 0" ] || fail "stintd stop left $(handles)"
exit 0
