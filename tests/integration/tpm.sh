#!/bin/bash
#
# TPM backend on swtpm, bypassing stintd where the point is that the TPM
# itself refuses: hardware expiry, kill switch, evidence tampering, resource
# discipline, and restarts of swtpm with its state kept.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tpm_lib.sh"
stint_tmpdir
command -v swtpm >/dev/null 2>&1 ||
	skip "swtpm is not installed (apt-get install swtpm swtpm-tools)"
swtpm_start
tpm_config
export TSS2_LOG=all+none
KEYS=$T/state/tpm

probe()
{
	"$TPM_PROBE" "$@" 2>>"$T/probe.err"
}

# raw_sign KEYID EXPECT: the probe's own ESAPI code, not the backend's.
raw_sign()
{
	local out rc

	out=$(probe raw-sign "$TCTI" "$KEYS/$1.key")
	rc=$?
	[ "$rc" -eq "$2" ] ||
		fail "raw sign with $1: exit $rc, wanted $2 ($out; $(tail -n 3 "$T/probe.err"))"
	echo "$out"
}

handles_clean()
{
	local h

	h=$(probe handles "$TCTI") || fail "cannot count TPM handles"
	[ "$h" = "transient 0 sessions 0" ] || fail "TPM left with $h"
}

# --- 1. hardware expiry, bypassing stintd ------------------------------------
probe gen "$STINTD_CONF" short 30 || fail "generate (30 s) failed"
probe gen "$STINTD_CONF" long 600 || fail "generate (600 s) failed"
[ "$(stat -c %a "$KEYS/short.key")" = 600 ] || fail "key file is not 0600"
[ "$(stat -c %a "$KEYS/nv.auth")" = 600 ] || fail "nv.auth is not 0600"
raw_sign short 0 >/dev/null
probe sign "$STINTD_CONF" short >/dev/null || fail "backend sign before deadline"
handles_clean
# Forward only: the probe also checks ClockSet backwards is refused.
probe clock-forward "$TCTI" 60000 || fail "ClockSet forward failed"
out=$(raw_sign short 2)
case $out in *PolicyCounterTimer*) ;; *) fail "expiry not refused by PolicyCounterTimer: $out" ;; esac
out=$(probe sign "$STINTD_CONF" short)
case $out in *"deadline passed in TPM clock"*) ;; *) fail "backend: $out" ;; esac
raw_sign long 0 >/dev/null
handles_clean

# --- 2. kill switch, bypassing stintd ------------------------------------------
probe kill "$STINTD_CONF" || fail "kill switch failed"
out=$(raw_sign long 2)
case $out in *PolicyNV*) ;; *) fail "kill switch not refused by PolicyNV: $out" ;; esac
out=$(probe sign "$STINTD_CONF" long)
case $out in *"kill switch"*) ;; *) fail "backend after kill switch: $out" ;; esac
probe gen "$STINTD_CONF" after 600 || fail "generate after kill switch"
raw_sign after 0 >/dev/null
handles_clean

# --- 3. evidence and its tampering -----------------------------------------------
out=$(probe evidence "$STINTD_CONF" after) ||
	fail "evidence checks failed: $(echo "$out" | grep FAIL)"
for what in "wrong nonce" "flipped attest byte" "flipped signature byte" \
	"public area with userWithAuth" "later deadline" \
	"attest signed by another key" "another key posing as the AK" \
	"wrong magic" "wrong type" "public area of another key"; do
	echo "$out" | grep -q "^refused $what: " || fail "no refusal for $what"
done
echo "$out" | grep -q "^accepted genuine evidence" || fail "genuine evidence"
handles_clean

# --- 4. destroy ---------------------------------------------------------------------
probe destroy "$STINTD_CONF" after || fail "destroy failed"
[ ! -e "$KEYS/after.key" ] || fail "key file left after destroy"
probe destroy "$STINTD_CONF" after || fail "destroy of a gone key is not 0"
out=$(probe sign "$STINTD_CONF" after)
case $out in *"no TPM key"*) ;; *) fail "destroyed key: $out" ;; esac

# --- 5. resource discipline without a resource manager ------------------------
n_sign=1000 n_cycle=100
out=$(probe stress "$STINTD_CONF" $n_sign $n_cycle) ||
	fail "stress: $out $(tail -n 3 "$T/probe.err")"
handles_clean

# --- 6. swtpm restarts with its state kept -------------------------------------
probe gen "$STINTD_CONF" live 600 || fail "generate before restart"
swtpm_stop
swtpm_start
tpm_config
raw_sign live 0 >/dev/null
probe sign "$STINTD_CONF" live >/dev/null ||
	fail "live key refused after an orderly TPM restart"
# An unorderly stop: the clock may fall back, so keys made before the
# reset are refused by the backend, and new keys work.
swtpm_kill
swtpm_start
tpm_config
out=$(probe sign "$STINTD_CONF" live)
case $out in *"clock was not safe"*) ;; *) fail "key kept after an unsafe reset: $out" ;; esac
probe gen "$STINTD_CONF" fresh 600 || fail "generate after unsafe reset"
probe sign "$STINTD_CONF" fresh >/dev/null || fail "new key after unsafe reset"
handles_clean

# --- 7. stintd on the TPM: task start, SIGN through the module, task end ----
# stintd holds the TPM connection (swtpm serves one client), so the probe
# runs only after it stops.
stintd_start
p11_env
agent_add billing "$(id -u)"
id=$(task_start billing --ttl 5m)
[ -f "$KEYS/$id.key" ] || fail "no TPM key file for task $id"
printf 'hello' >"$T/in"
"${FOREIGN[@]}" pkcs11-tool --module "$STINT_MODULE" --sign -m ECDSA-SHA256 \
	--id "$(hex_of "$id")" -i "$T/in" -o "$T/sig" >/dev/null 2>&1 ||
	fail "pkcs11-tool could not sign with the TPM task key"
[ "$(stat -c %s "$T/sig")" = 64 ] || fail "ECDSA signature is not 64 bytes"
stint task end "$id" >/dev/null || fail "task end failed"
[ ! -e "$KEYS/$id.key" ] || fail "task end left the key file"
if "${FOREIGN[@]}" pkcs11-tool --module "$STINT_MODULE" --sign -m ECDSA-SHA256 \
	--id "$(hex_of "$id")" -i "$T/in" -o "$T/sig2" >/dev/null 2>&1; then
	fail "signed after task end"
fi
stintd_stop
handles_clean
exit 0
