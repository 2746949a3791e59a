#!/bin/bash
# The Stint CA against a real SoftHSM2 token and a real stintd: task start
# gives an attested, certified key; the leaf verifies for TLS clients and
# carries the SPIFFE ID, the deadline and the task extension; evidence
# verifies offline and every tampering is refused with the check named; the
# CA key and attestation key live only in the token and survive restarts;
# a CSR signed by an outside root is installed and later leaves chain to it;
# a start whose evidence fails creates no task and leaves no key.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd openssl pkcs11-tool
stint_setup
agent_add alpha "$(id -u)"
TD=test.example

# --- CA key and attestation key, in the token only --------------------------
softhsm_objects >"$T/objs"
for id in stint-ca stint-ak; do
	grep -A12 "Private Key Object" "$T/objs" | grep -q "label: *$id\$" ||
		fail "no private key '$id' in the token"
done
# Non-extractable and sensitive, as SoftHSM reports them.
awk '/Private Key Object/{p=1} p&&/label:/{l=$2} p&&/Access:/{print l": "$0; p=0}' \
	"$T/objs" >"$T/access"
grep -q "stint-ca: .*sensitive.*never extractable" "$T/access" ||
	{ cat "$T/access"; fail "CA key is not sensitive/never extractable"; }
grep -q "stint-ak: .*sensitive.*never extractable" "$T/access" ||
	{ cat "$T/access"; fail "attestation key is not sensitive/never extractable"; }
grep -q "stint-ca: .*extractable" "$T/access" &&
	grep "stint-ca:" "$T/access" | grep -qv "never extractable" &&
	fail "CA key extractable"
CA_PEM=$T/state/ca.pem
[ -f "$CA_PEM" ] || fail "no ca.pem in the state directory"
grep -q "PRIVATE" "$CA_PEM" && fail "ca.pem holds a private key"
stint ca cert >"$T/bundle.pem" || fail "stint ca cert"
cmp -s "$T/bundle.pem" "$CA_PEM" || fail "stint ca cert differs from ca.pem"
openssl x509 -in "$T/bundle.pem" -noout -text >"$T/ca.txt" || fail "CA does not parse"
grep -q "Subject: CN = Stint CA $TD" "$T/ca.txt" || fail "CA subject"
grep -A1 "Basic Constraints: critical" "$T/ca.txt" | grep -q "CA:TRUE" || fail "CA basicConstraints"
grep -A1 "Key Usage: critical" "$T/ca.txt" | grep -q "Certificate Sign" || fail "CA keyUsage"
ca_pub1=$(openssl x509 -in "$CA_PEM" -noout -pubkey)

# --- a task's leaf ---------------------------------------------------------------
id=$(task_start alpha --ttl 10m --intent "refund order 1234")
stint task show "$id" --cert >"$T/leaf.pem" || fail "task show --cert"
openssl verify -purpose sslclient -CAfile "$T/bundle.pem" "$T/leaf.pem" >"$T/v" 2>&1 ||
	{ cat "$T/v"; fail "openssl verify -purpose sslclient refused the leaf"; }
openssl x509 -in "$T/leaf.pem" -noout -text >"$T/leaf.txt"
grep -q "Subject: CN = alpha" "$T/leaf.txt" || fail "leaf subject is not CN=alpha"
san=$(grep -A1 "Subject Alternative Name" "$T/leaf.txt" | tail -1 | sed 's/^ *//')
[ "$san" = "URI:spiffe://$TD/agent/alpha" ] || fail "leaf SAN is '$san'"
grep -A1 "Key Usage: critical" "$T/leaf.txt" | grep -q "^ *Digital Signature$" ||
	fail "leaf keyUsage is not digitalSignature (critical)"
grep -A1 "Extended Key Usage" "$T/leaf.txt" | grep -q "TLS Web Client Authentication" ||
	fail "leaf EKU lacks clientAuth"
grep -A1 "Basic Constraints: critical" "$T/leaf.txt" | grep -q "CA:FALSE" ||
	fail "leaf basicConstraints is not CA:FALSE critical"
grep -q "Subject Key Identifier" "$T/leaf.txt" || fail "leaf lacks SKI"
grep -q "Authority Key Identifier" "$T/leaf.txt" || fail "leaf lacks AKI"
grep -q "1.2.840.113556.1.8000.2554.4942.2577.40273.17186.42876.2743747.4203423" "$T/leaf.txt" ||
	fail "leaf lacks the task extension"
deadline=$(date -u -d "$(stint task show "$id" --json | json_get not_after)" +%s)
end=$(openssl x509 -in "$T/leaf.pem" -noout -enddate | cut -d= -f2)
[ "$(date -u -d "$end" +%s)" = "$deadline" ] ||
	fail "notAfter $end is not the task deadline $deadline"
stint verify-peer "$T/leaf.pem" --agent alpha --trust-domain "$TD" --json >"$T/vp" ||
	{ cat "$T/vp"; fail "stint verify-peer refused the leaf"; }
[ "$(json_get task <"$T/vp")" = "$id" ] || fail "task extension does not decode to $id"
[ "$(json_get agent <"$T/vp")" = alpha ] || fail "verify-peer agent"
[ "$(json_get not_after <"$T/vp")" = "$deadline" ] || fail "verify-peer not_after"
stint verify-peer "$T/leaf.pem" --ca "$T/bundle.pem" >/dev/null ||
	fail "verify-peer --ca (offline)"
! stint verify-peer "$T/leaf.pem" --agent beta >"$T/out" 2>&1 || fail "verify-peer accepted another agent"
grep -q "check agent failed" "$T/out" || { cat "$T/out"; fail "verify-peer did not name the agent check"; }
echo -n "refund order 1234" | sha256sum | cut -d' ' -f1 >"$T/ih"
[ "$(json_get intent_sha256 <"$T/vp")" = "$(cat "$T/ih")" ] || fail "intent digest"

# The binding block (issue 12 §6): a plain task of an agent that pins no
# executable has none, so its task extension is encoded exactly as by
# earlier versions, and verifies; a pid-bound task's leaf says "pid"; an
# agent with --exe-sha256 has the pinned hash in its leaves (its cgroup
# binding is checked in run.sh).
[ "$(json_get binding <"$T/vp")" = None ] || { cat "$T/vp"; fail "a plain task's leaf has a binding"; }
stint verify-peer "$T/leaf.pem" --ca "$T/bundle.pem" >"$T/vpt" || fail "verify-peer (text)"
grep -Eq "^(binding|bound_|exe_sha256)" "$T/vpt" && { cat "$T/vpt"; fail "a plain task's leaf prints a binding"; }
sleep 600 &
holder=$!
bg_track "$holder"
idp=$(task_start alpha --ttl 10m --bind-pid "$holder")
stint task show "$idp" --cert >"$T/leaf-pid.pem" || fail "task show --cert (pid-bound)"
stint verify-peer "$T/leaf-pid.pem" --json >"$T/vpb" || { cat "$T/vpb"; fail "verify-peer (pid-bound)"; }
[ "$(json_get binding.kind <"$T/vpb")" = pid ] || { cat "$T/vpb"; fail "a pid-bound task's leaf does not say pid"; }
grep -q '"exe_sha256"' "$T/vpb" && fail "exe_sha256 in the leaf of an agent that pins none"
kill "$holder"
pin=$(sha256sum "$(readlink -f /bin/sleep)" | cut -d' ' -f1)
agent_add pinned "$(id -u)" --exe-sha256 "$pin"
idx=$(task_start pinned --ttl 10m)
stint task show "$idx" --cert >"$T/leaf-pin.pem" || fail "task show --cert (pinned)"
stint verify-peer "$T/leaf-pin.pem" --json >"$T/vpb" || { cat "$T/vpb"; fail "verify-peer (pinned)"; }
[ "$(json_get binding.kind <"$T/vpb")" = none ] || { cat "$T/vpb"; fail "binding kind of an unbound pinned task"; }
[ "$(json_get binding.exe_sha256 <"$T/vpb")" = "$pin" ] || { cat "$T/vpb"; fail "the leaf lacks the agent's exe SHA-256"; }
stint verify-peer "$T/leaf-pin.pem" >"$T/vpt" || fail "verify-peer (pinned, text)"
grep -qx "exe_sha256 $pin" "$T/vpt" || { cat "$T/vpt"; fail "verify-peer does not print exe_sha256"; }
stint task end "$idx" >/dev/null || fail "task end $idx"
stint agent remove pinned >/dev/null 2>&1 || fail "agent remove pinned"

# The module shows the certificate next to the key.
p11tool --token-label alpha --list-objects >"$T/p11" 2>&1 || { cat "$T/p11"; fail "pkcs11-tool --list-objects"; }
grep -q "Certificate Object" "$T/p11" || { cat "$T/p11"; fail "no certificate object through stint-pkcs11.so"; }
grep -q "Private Key Object" "$T/p11" || fail "no key object through stint-pkcs11.so"

# --- evidence -------------------------------------------------------------------
stint task evidence "$id" >"$T/ev" || fail "stint task evidence"
grep -q "BEGIN STINT EVIDENCE" "$T/ev" || fail "evidence is not PEM armoured"
stint ca attestation-key >"$T/ak.pem" || fail "stint ca attestation-key"
stint attest verify "$T/ev" --attestation-key "$T/ak.pem" --task "$id" --json >"$T/av" ||
	{ cat "$T/av"; fail "evidence does not verify"; }
nonce=$(json_get nonce <"$T/av")
stint attest verify "$T/ev" --attestation-key "$T/ak.pem" --task "$id" --nonce "$nonce" >/dev/null ||
	fail "evidence does not verify with its nonce"
# The leaf's task extension names this very document by its digest.
openssl base64 -d -in "$T/ev" >"$T/ev.der"
[ "$(json_get evidence_sha256 <"$T/vp")" = "$(sha256sum <"$T/ev.der" | cut -d' ' -f1)" ] ||
	fail "the leaf's evidence digest is not that of the exported evidence"
[ "$(json_get attestation <"$T/vp")" = pkcs11 ] || fail "attestation kind in the leaf"

refused()
{
	local what=$1 check=$2

	shift 2
	if stint attest verify "$@" >"$T/out" 2>&1; then
		fail "$what: attest verify accepted it"
	fi
	grep -q "check $check failed" "$T/out" ||
		{ cat "$T/out"; fail "$what: refused without naming the $check check"; }
}

# One flipped byte in the statement.
"$PYTHON" - "$T/ev.der" "$T/flip.der" <<'PY'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[len(d) // 3] ^= 0x01
open(sys.argv[2], 'wb').write(d)
PY
refused "flipped byte" signature "$T/flip.der" --attestation-key "$T/ak.pem"
refused "wrong nonce" nonce "$T/ev" --attestation-key "$T/ak.pem" --nonce "$(printf '%064d' 0)"
refused "wrong task" task "$T/ev" --attestation-key "$T/ak.pem" --task t-00000000000000000000000000000000
openssl ecparam -name prime256v1 -genkey -noout -out "$T/other.key" 2>/dev/null
openssl ec -in "$T/other.key" -pubout -out "$T/other.pem" 2>/dev/null
refused "another key" signature "$T/ev" --attestation-key "$T/other.pem"

# Attributes claiming an extractable key, re-signed by the real attestation
# key in the token (with the token PIN, which only the test has): only the
# attribute check can refuse it.
"$PYTHON" - "$T/ev.der" "$T/stmt" "$T/rest" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
def head(b, i):
    ib = b[i]; mt, ai = ib >> 5, ib & 31
    if ai < 24: return mt, ai, i + 1
    n = {24: 1, 25: 2, 26: 4, 27: 8}[ai]
    return mt, int.from_bytes(b[i+1:i+1+n], 'big'), i + 1 + n
mt, n, i = head(d, 0)
assert mt == 5
for _ in range(n):
    _, k, i = head(d, i)
    mt, v, j = head(d, i)
    if mt in (2, 3):
        val = d[j:j+v]; i = j + v
    else:
        val = v; i = j
    if k == 3:
        stmt = bytearray(val)
assert stmt[-2:] == b'\x0a\xf4', stmt[-2:].hex()   # 10: extractable false
stmt[-1] = 0xf5
open(sys.argv[2], 'wb').write(stmt)
PY
openssl dgst -sha256 -binary "$T/stmt" >"$T/stmt.hash"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$HSM_LABEL" --login --pin "$HSM_PIN" \
	--sign --id "$(hex_of stint-ak)" -m ECDSA --signature-format openssl \
	--input-file "$T/stmt.hash" --output-file "$T/stmt.sig" >/dev/null 2>&1 ||
	fail "cannot sign the forged statement with the attestation key"
"$PYTHON" - "$T/stmt" "$T/stmt.sig" "$T/forged.der" <<'PY'
import sys
def head(mt, n):
    if n < 24: return bytes([mt << 5 | n])
    for ai, w in ((24, 1), (25, 2), (26, 4)):
        if n < 1 << (8 * w): return bytes([mt << 5 | ai]) + n.to_bytes(w, 'big')
stmt = open(sys.argv[1], 'rb').read(); sig = open(sys.argv[2], 'rb').read()
doc = head(5, 4) + head(0, 1) + head(0, 1) + head(0, 2) + head(3, 6) + b'pkcs11' \
    + head(0, 3) + head(2, len(stmt)) + stmt + head(0, 4) + head(2, len(sig)) + sig
open(sys.argv[3], 'wb').write(doc)
PY
refused "extractable attributes" attributes "$T/forged.der" --attestation-key "$T/ak.pem"

# --- restart: same CA key, same ca.pem ---------------------------------------------
stintd_stop
stintd_start
ca_pub2=$(stint ca cert | openssl x509 -noout -pubkey)
[ "$ca_pub1" = "$ca_pub2" ] || fail "the CA key changed across a restart"
cmp -s "$CA_PEM" "$T/bundle.pem" || fail "ca.pem changed across a restart"
id2=$(task_start alpha --ttl 5m)
stint task show "$id2" --cert | openssl verify -purpose sslclient -CAfile "$T/bundle.pem" >/dev/null 2>&1 ||
	fail "a leaf after the restart does not verify against the same CA"

# --- a failed verification creates no task and leaves no key ------------------------
stintd_stop
# The test-only stintd (Makefile.am: stintd-fault) injects the fault.
REAL_STINTD=$STINTD
STINTD=$top_builddir/tests/integration/stintd-fault
STINT_TEST_EVIDENCE_FAULT=flip stintd_start
n_before=$(stint task list --all --json | "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')
! stint task start --agent alpha --ttl 5m >"$T/out" 2>&1 || fail "a start with bad evidence succeeded"
grep -q "signature check" "$T/out" || { cat "$T/out"; fail "the refusal does not name the check"; }
n_after=$(stint task list --all --json | "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n_before" = "$n_after" ] || fail "a task was created despite failed evidence"
grep -q '"event":"evidence-verify".*"decision":"deny"' "$AUDIT_LOG" ||
	grep '"evidence-verify"' "$AUDIT_LOG" | grep -q deny || fail "the failure is not audited"
bad=$(grep '"evidence-verify"' "$AUDIT_LOG" | grep deny | tail -1 |
	"$PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.read())["task"])')
softhsm_has_label "$bad" && fail "the key of the refused task is still in the token"
stintd_stop
unset STINT_TEST_EVIDENCE_FAULT
STINTD=$REAL_STINTD
stintd_start

# --- an outside PKI: csr, sign, install ------------------------------------------
org_root_signs_ca # stint ca csr >$T/ca.csr, signed by $T/org.pem
openssl req -in "$T/ca.csr" -noout -verify 2>&1 | grep -q "verify OK" || fail "CSR signature"
openssl req -in "$T/ca.csr" -noout -subject | grep -q "Stint CA $TD" || fail "CSR subject"
# A chain for another key is refused.
! stint ca install "$T/org.pem" >"$T/out" 2>&1 || fail "installed a chain for another key"
grep -q "not for Stint's CA key" "$T/out" || { cat "$T/out"; fail "wrong-key refusal not explained"; }
stint ca install "$T/chain.pem" >/dev/null || fail "stint ca install"
id3=$(task_start alpha --ttl 5m)
stint task show "$id3" --cert >"$T/leaf3.pem"
openssl verify -purpose sslclient -CAfile "$T/org.pem" -untrusted "$T/inter.pem" "$T/leaf3.pem" >/dev/null 2>&1 ||
	fail "a leaf after install does not chain to the org root"
# (It also verifies against the old self-signed root: same CA key, same
# name. Relying parties that should trust only the org root configure only
# that root.)
! openssl verify -purpose sslclient -CAfile "$T/org.pem" "$T/leaf3.pem" >/dev/null 2>&1 ||
	fail "a leaf verified against the org root without its intermediate"
stint ca cert >"$T/bundle2.pem"
grep -c "BEGIN CERTIFICATE" "$T/bundle2.pem" | grep -q '^2$' || fail "ca cert does not print the installed chain"
stint verify-peer "$T/leaf3.pem" --ca "$T/org.pem" >/dev/null 2>&1 ||
	true # the leaf alone does not carry the intermediate
cat "$T/leaf3.pem" "$T/inter.pem" >"$T/leaf3-chain.pem"
stint verify-peer "$T/leaf3-chain.pem" --ca "$T/org.pem" --agent alpha >/dev/null ||
	fail "verify-peer with the intermediate against the org root"
# The installed chain survives a restart.
stintd_stop
stintd_start
stint ca cert | cmp -s - "$T/bundle2.pem" || fail "installed chain lost in a restart"
exit 0
