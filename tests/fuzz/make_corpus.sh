#!/bin/bash
#
# Regenerates the seed corpora of the attest/ fuzzers from a running stintd
# (real samples, not hand-made bytes): a leaf certificate and its task
# extension, an audit log with a signed checkpoint, evidence documents, TPM
# key files (STINT_TEST_BACKEND=tpm) and the configs stintd ran with.
#   top_builddir=_build tests/fuzz/make_corpus.sh          # SoftHSM
#   STINT_TEST_BACKEND=tpm top_builddir=_build tests/fuzz/make_corpus.sh
# Writes into tests/fuzz/corpus/fuzz_*/ in the source tree. Not run by make
# check; the seeds it made are committed.

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/lib.sh"
stint_tmpdir
out=$here/corpus
b=$STINT_TEST_BACKEND

stint_setup
agent_add fuzzer "$(id -u)"
id=$(task_start fuzzer --ttl 10m)
id2=$(task_start fuzzer --ttl 10m)
stint task end "$id2" >/dev/null 2>&1 || true

mkdir -p "$out/fuzz_cert_ext" "$out/fuzz_evidence" "$out/fuzz_audit_line" \
	"$out/fuzz_config"
# The leaf (DER) and its task extension's value (DER of STINT_TASK_EXT).
stint task show "$id" --cert | openssl x509 -outform DER >"$out/fuzz_cert_ext/leaf-$b.der" ||
	fail "no leaf for $id"
python3 - "$out/fuzz_cert_ext/leaf-$b.der" "$out/fuzz_cert_ext/ext-$b.der" <<'PY' ||
import sys
der = open(sys.argv[1], "rb").read()
# The extension's OCTET STRING follows the last arc of its OID (DER of
# the default OID ends with 0x80 0xe4 0x46 ... and an 8-digit last arc).
import subprocess
txt = subprocess.run(["openssl", "asn1parse", "-inform", "DER", "-in", sys.argv[1]],
                     capture_output=True, text=True).stdout.splitlines()
for i, line in enumerate(txt):
    if "1.2.840.113556.1.8000.2554" in line or ":2.25." in line:
        nxt = txt[i + 1]
        off = int(nxt.split(":")[0].strip())
        hl = int(nxt.split("hl=")[1].split()[0])
        ln = int(nxt.split("l=")[2].split()[0]) if nxt.count("l=") > 2 else int(nxt.split(" l=")[1].split()[0])
        open(sys.argv[2], "wb").write(der[off + hl:off + hl + ln])
        break
else:
    sys.exit(1)
PY
	fail "no task extension in the leaf"
# Evidence, PEM and DER.
stint task evidence "$id" >"$out/fuzz_evidence/evidence-$b.pem" || fail "stint task evidence"
sed -e '/-----/d' "$out/fuzz_evidence/evidence-$b.pem" | base64 -d >"$out/fuzz_evidence/evidence-$b.der"
# The audit log, with a checkpoint: ask for one by restarting.
stintd_stop
stintd_start
stintd_stop
cp "$AUDIT_LOG" "$out/fuzz_audit_line/log-$b.jsonl"
head -n 1 "$AUDIT_LOG" >"$out/fuzz_audit_line/line-$b.jsonl"
grep -m1 checkpoint "$AUDIT_LOG" >"$out/fuzz_audit_line/checkpoint-$b.jsonl" || true
cp "$STINTD_CONF" "$out/fuzz_config/stint-$b.conf"
if [ "$b" = tpm ]; then
	mkdir -p "$out/fuzz_tpm_keyfile" "$out/fuzz_tpm_evidence"
	cp "$T/state/tpm/$id.key" "$out/fuzz_tpm_keyfile/task.key" || fail "no key file"
	# The TPM document inside the outer evidence (stint_evidence_tpm_wrap).
	python3 - "$out/fuzz_evidence/evidence-$b.der" >"$out/fuzz_tpm_evidence/certify.bin" <<'PY' ||
import sys
# The outer document is a CBOR map {uint: value}; key 3 holds the TPM
# document (attest/evidence.c, D_STATEMENT).
d = open(sys.argv[1], "rb").read()
pos = 0
def head():
    global pos
    b = d[pos]; pos += 1
    mt, ai = b >> 5, b & 31
    if ai < 24: return mt, ai
    n = {24: 1, 25: 2, 26: 4, 27: 8}[ai]
    v = int.from_bytes(d[pos:pos + n], "big"); pos += n
    return mt, v
def item():
    global pos
    mt, v = head()
    if mt in (2, 3):
        s = d[pos:pos + v]; pos += v; return s
    if mt == 4: return [item() for _ in range(v)]
    if mt == 5: return {item(): item() for _ in range(v)}
    return v
m = item()
sys.stdout.buffer.write(m[3])
PY
		fail "no TPM document in the evidence"
fi
cp "$top_srcdir/etc/stint.conf" "$out/fuzz_config/etc-stint.conf" 2>/dev/null || true
echo "seeds in $out"
