#!/bin/bash
#
# TPM backend on swtpm, bypassing stintd where the point is that the TPM
# itself refuses: hardware expiry, kill switch, evidence tampering, resource
# discipline, and restarts of swtpm with its state kept.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tpm_lib.sh"
tpm_test_init
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
# A here-string, not `echo "$out" | grep -q`: bash's echo writes a
# line at a time, and when grep -q exits at its match before the
# next line is written, echo dies of SIGPIPE and pipefail (lib.sh)
# fails the check although the line is there.
for what in "wrong nonce" "flipped attest byte" "flipped signature byte" \
	"public area with userWithAuth" "later deadline" \
	"attest signed by another key" "another key posing as the AK" \
	"wrong magic" "wrong type" "public area of another key"; do
	grep -q "^refused $what: " <<<"$out" || fail "no refusal for $what"
done
grep -q "^accepted genuine evidence" <<<"$out" || fail "genuine evidence"
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
# stintd keeps objects and a session loaded in swtpm's few slots (the TCTI
# connects per command, the slots are the limit), so the probe's raw
# commands run only after it stops.
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

# --- 8. TPM2_Certify evidence at task start, and the certificate -------------
id=$(task_start billing --ttl 10m)
stint task evidence "$id" >"$T/ev.pem" || fail "stint task evidence $id"
stint ca attestation-key >"$T/ak.pem" || fail "stint ca attestation-key"
cmp -s <(openssl pkey -pubin -in "$KEYS/ak.pub.pem" -outform DER) \
	<(openssl pkey -pubin -in "$T/ak.pem" -outform DER) ||
	fail "ca attestation-key is not the TPM AK (ak.pub.pem)"
stint attest verify "$T/ev.pem" --attestation-key "$KEYS/ak.pub.pem" \
	--task "$id" --json >"$T/ev.json" 2>"$T/err" ||
	fail "attest verify refused genuine TPM evidence: $(cat "$T/err")"
[ "$(json_get kind <"$T/ev.json")" = tpm ] || fail "evidence kind: $(cat "$T/ev.json")"
[ "$(json_get task <"$T/ev.json")" = "$id" ] || fail "evidence task id"
stint attest verify "$T/ev.pem" --attestation-key "$T/ak.pem" >"$T/out" 2>&1 ||
	fail "attest verify (text) refused: $(cat "$T/out")"
grep -q "certified by the TPM attestation key" "$T/out" || fail "text output: $(cat "$T/out")"
# Another key as the enrolled AK.
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
	openssl pkey -pubout >"$T/other.pem" || fail "cannot make a software key"
if stint attest verify "$T/ev.pem" --attestation-key "$T/other.pem" >"$T/out" 2>&1; then
	fail "attest verify accepted evidence with the wrong AK"
fi
grep -q "check attestation-key failed" "$T/out" || fail "wrong AK: $(cat "$T/out")"
# A flipped byte inside the attest structure the AK signed.
openssl base64 -d -in <(sed '/-----/d' "$T/ev.pem") -out "$T/ev.der" ||
	fail "cannot decode the evidence PEM"
"$PYTHON" - "$T/ev.der" "$T/ev.flip" <<'PY' || fail "cannot flip a byte"
import sys
d = bytearray(open(sys.argv[1], "rb").read())
i = d.find(b"STINTTPM")
assert i >= 0
# header: magic 8, version 2, deadline 8, counter 8, not_after 8, then
# u32 length and the attest bytes; byte 10 is in qualifiedSigner.
d[i + 34 + 4 + 10] ^= 1
open(sys.argv[2], "wb").write(d)
PY
if stint attest verify "$T/ev.flip" --attestation-key "$KEYS/ak.pub.pem" >"$T/out" 2>&1; then
	fail "attest verify accepted a flipped attest byte"
fi
grep -q "check signature failed" "$T/out" || fail "flipped byte: $(cat "$T/out")"
if stint attest verify "$T/ev.pem" --attestation-key "$KEYS/ak.pub.pem" \
	--task t-00000000000000000000000000000000 >"$T/out" 2>&1; then
	fail "attest verify accepted evidence for another task"
fi
grep -q "check task failed" "$T/out" || fail "wrong task: $(cat "$T/out")"
# The leaf: kind tpm, notAfter no later than the task deadline.
stint task show "$id" --cert >"$T/leaf.pem" || fail "task show --cert"
stint task show "$id" --json >"$T/task.json" || fail "task show --json"
stint verify-peer "$T/leaf.pem" --json >"$T/peer.json" 2>"$T/err" ||
	fail "verify-peer refused the TPM task leaf: $(cat "$T/err")"
[ "$(json_get attestation <"$T/peer.json")" = tpm ] ||
	fail "leaf attestation kind: $(cat "$T/peer.json")"
na=$(json_get not_after <"$T/peer.json")
dl=$(json_get not_after_unix <"$T/task.json")
[ "$na" -le "$dl" ] || fail "leaf notAfter $na is after the task deadline $dl"
[ "$na" -ge $((dl - 2)) ] || fail "leaf notAfter $na is far before the deadline $dl"
ev_sha=$(sha256sum "$T/ev.der" | cut -d' ' -f1)
[ "$(json_get evidence_sha256 <"$T/peer.json")" = "$ev_sha" ] ||
	fail "leaf evidence digest is not SHA-256 of the exported evidence"

# --- 9. the kill switch, end to end ------------------------------------------
sign_id()
{
	"${FOREIGN[@]}" pkcs11-tool --module "$STINT_MODULE" --sign -m ECDSA-SHA256 \
		--id "$(hex_of "$1")" -i "$T/in" -o "$T/sig.$1" >"$T/p11.out" 2>&1
}
stint kill-switch >"$T/out" 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "kill-switch without --confirm: exit $rc, wanted 2"
grep -q -- "--confirm" "$T/out" || fail "kill-switch without --confirm does not explain: $(cat "$T/out")"
grep -q "unusable in" "$T/out" || fail "kill-switch without --confirm does not say what it does"
sign_id "$id" || fail "task started before the kill switch could not sign before it"
cp "$KEYS/$id.key" "$T/before.key" || fail "no key file for $id"
stint kill-switch --confirm --json >"$T/ks.json" 2>"$T/err" ||
	fail "kill-switch --confirm: $(cat "$T/err")"
counter=$(json_get counter <"$T/ks.json")
[ "$(json_get tasks_ended <"$T/ks.json")" -ge 1 ] || fail "kill switch ended no task: $(cat "$T/ks.json")"
if sign_id "$id"; then
	fail "a task started before the kill switch still signs"
fi
stint task show "$id" --json >"$T/task.json" || fail "task show after kill switch"
[ "$(json_get state <"$T/task.json")" = ended ] || fail "task not ended by the kill switch"
[ "$(json_get reason <"$T/task.json")" = "kill switch" ] || fail "end reason: $(cat "$T/task.json")"
[ ! -e "$KEYS/$id.key" ] || fail "kill switch left the key file of $id"
after=$(task_start billing --ttl 10m)
sign_id "$after" || fail "a task started after the kill switch cannot sign"
[ "$(stat -c %s "$T/sig.$after")" = 64 ] || fail "signature after the kill switch is not 64 bytes"
stint task evidence "$after" >"$T/ev2.pem" || fail "evidence after kill switch"
stint attest verify "$T/ev2.pem" --attestation-key "$KEYS/ak.pub.pem" --json >"$T/ev2.json" ||
	fail "evidence after the kill switch refused"
[ "$(json_get kill_switch_counter <"$T/ev2.json")" = "$counter" ] ||
	fail "new key does not bind counter $counter: $(cat "$T/ev2.json")"
grep -q '"event":"kill-switch"' "$AUDIT_LOG" || fail "no kill-switch audit record"
grep '"event":"kill-switch"' "$AUDIT_LOG" | grep -q "counter=$counter" ||
	fail "kill-switch audit record lacks the counter"
stint audit verify >"$T/out" 2>&1 || fail "audit verify after the kill switch: $(cat "$T/out")"

# --- 10. curl mutual TLS with TPM task keys ------------------------------------
# An unmodified curl given only the task's pkcs11: URIs authenticates to
# `openssl s_server -Verify 1 -verify_return_error` trusting `stint ca
# cert`: libp11 reads the TPM key's EC point through the module and the
# TLS CertificateVerify is signed in the TPM under the task's policy.
# (In sanitizer builds this once hung at curl's first setlocale(): see
# _asan_shim in lib.sh; `timeout` turns any hang into a failure.)
if ! command -v curl >/dev/null 2>&1 || ! engine_path >/dev/null; then
	note "curl or the libp11 engine missing: TPM mutual TLS skipped"
else
	tls_server_cert "$T/srv"
	stint ca cert >"$T/bundle.pem" || fail "stint ca cert"
	s_server_start "$T/srv" "$T/bundle.pem"
	tpm_curl()
	{
		local task=$1

		shift
		timeout 60 "${FOREIGN[@]}" PKCS11_MODULE_PATH="$STINT_MODULE" \
			curl -sS --cacert "$T/srv.pem" \
			--cert "pkcs11:token=billing;object=$task;type=cert" \
			--key "pkcs11:token=billing;object=$task;type=private" \
			"$@" "https://127.0.0.1:$PORT/" </dev/null
	}
	for key in ec-p256 rsa-2048; do
		tid=$(task_start billing --key "$key" --ttl 10m) || exit 1
		for tls in 1.3 1.2; do
			opts=(--tlsv1.3)
			[ "$tls" = 1.2 ] && opts=(--tlsv1.2 --tls-max 1.2)
			tpm_curl "$tid" "${opts[@]}" >"$T/page" 2>"$T/err"
			rc=$?
			[ "$rc" -eq 0 ] || fail "$key TLS $tls: curl exit $rc: $(cat "$T/err")"
			grep -q "^ *Protocol *: TLSv$tls\$" "$T/page" ||
				fail "$key TLS $tls: session is not TLSv$tls"
			grep -q "^Client certificate" "$T/page" ||
				fail "$key TLS $tls: s_server saw no client certificate"
			sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' \
				"$T/page" >"$T/seen.pem"
			stint verify-peer "$T/seen.pem" --json >"$T/vp" 2>&1 ||
				fail "$key TLS $tls: verify-peer: $(cat "$T/vp")"
			[ "$(json_get task <"$T/vp")" = "$tid" ] ||
				fail "$key TLS $tls: the server saw another task's certificate"
			[ "$(json_get attestation <"$T/vp")" = tpm ] ||
				fail "$key TLS $tls: leaf attestation kind is not tpm"
			note "TPM $key TLS $tls: mutual TLS with the task's pkcs11: URIs"
		done
		[ "$(audit_count "$tid" sign-allowed)" -ge 2 ] ||
			fail "$key: fewer than two sign-allowed records for $tid"
	done
	stint task end "$tid" >/dev/null || fail "task end $tid"
	if tpm_curl "$tid" >"$T/page" 2>"$T/err"; then
		fail "curl connected with an ended TPM task's key"
	fi
	s_server_stop
fi

stintd_stop
# Bypassing stintd: the TPM itself refuses the blob kept from before.
out=$(probe raw-sign "$TCTI" "$T/before.key")
rc=$?
[ "$rc" -eq 2 ] || fail "raw sign of a pre-kill-switch blob: exit $rc ($out)"
case $out in *PolicyNV*) ;; *) fail "pre-kill-switch blob not refused by PolicyNV: $out" ;; esac
raw_sign "$after" 0 >/dev/null
handles_clean
exit 0
