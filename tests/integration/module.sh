#!/bin/bash
# stint-pkcs11.so conformance against a real stintd on a real SoftHSM2
# token: what pkcs11-tool and OpenSSL see (slots, token flags, mechanisms,
# objects, signatures that verify), PKCS#11 semantics (C_GetAttributeValue,
# length queries, multi-part, writes refused, login, fork), threads, STINT_DEBUG
# tracing, and the module's behaviour when stintd stops, hangs and comes
# back: no token, failures in bounded time, then signing again, also in a
# process that kept its session across the restart.
. "$(dirname "$0")/lib.sh"
need_cmd pkcs11-tool openssl timeout
stint_tmpdir
stint_setup
need_p11client
agent_add alpha "$(id -u)"

head -c 1000 /dev/urandom >"$T/data"
openssl dgst -sha256 -binary "$T/data" >"$T/digest"
ec=$(task_start alpha --key ec-p256 --ttl 10m)
p384=$(task_start alpha --key ec-p384 --ttl 10m)
rsa=$(task_start alpha --key rsa-2048 --ttl 10m)

# --- slot, token, mechanisms ------------------------------------------------
p11tool --list-slots >"$T/slots" 2>&1 || { cat "$T/slots"; fail "--list-slots"; }
grep -Eq 'token label *: *alpha$' "$T/slots" || { cat "$T/slots"; fail "no token 'alpha'"; }
grep -Eq 'token manufacturer *: *Stint$' "$T/slots" || { cat "$T/slots"; fail "manufacturer is not Stint"; }
grep -Eq 'token flags *: .*readonly' "$T/slots" || { cat "$T/slots"; fail "token not write-protected"; }
grep -Eq 'token flags *: .*login required' "$T/slots" &&
	{ cat "$T/slots"; fail "token requires a login (no PIN may reach the agent)"; }
p11tool -M >"$T/mechs" 2>&1 || { cat "$T/mechs"; fail "--list-mechanisms"; }
for m in ECDSA ECDSA-SHA256 ECDSA-SHA384 RSA-PKCS SHA256-RSA-PKCS RSA-PKCS-PSS SHA256-RSA-PKCS-PSS; do
	grep -Eq "^ *$m, .*sign" "$T/mechs" || { cat "$T/mechs"; fail "mechanism $m not listed"; }
done

# --- objects --------------------------------------------------------------------
p11tool --list-objects >"$T/objects" 2>&1 || { cat "$T/objects"; fail "--list-objects"; }
for id in "$ec" "$p384" "$rsa"; do
	[ "$(grep -Ec "label: *$id\$" "$T/objects")" -ge 2 ] ||
		{ cat "$T/objects"; fail "task $id: no private and public key objects"; }
done
grep -q 'Access: *sensitive, always sensitive, never extractable, local' "$T/objects" ||
	{ cat "$T/objects"; fail "private keys are not sensitive/never extractable/local"; }
p11client --list >"$T/list" 2>&1 || { cat "$T/list"; fail "p11client --list"; }
grep -q "class=private-key label=$ec id=$ec\$" "$T/list" || { cat "$T/list"; fail "p11client --list: $ec"; }

# --- signatures that OpenSSL verifies -----------------------------------------
sign_tool()
{
	local id=$1 out=$2

	shift 2
	p11tool --sign --id "$(hex_of "$id")" -o "$out" "$@" </dev/null >"$T/out" 2>&1 ||
		{ cat "$T/out"; fail "pkcs11-tool --sign $* with $id"; }
}
# The public key as the module reports it (CKA_PUBLIC_KEY_INFO). (pkcs11-tool
# 0.23's --read-object of EC keys reads freed memory under ASan.)
for k in "$ec ecdsa" "$p384 ecdsa" "$rsa rsa-pkcs"; do
	set -- $k
	p11client --label "$1" --mech "$2" --pubkey "$T/$1.der" --count 1 >"$T/out" 2>&1 ||
		{ cat "$T/out"; fail "p11client --pubkey $1"; }
done
sign_tool "$ec" "$T/s1" -m ECDSA --signature-format openssl -i "$T/digest"
openssl dgst -sha256 -verify "$T/$ec.der" -keyform DER -signature "$T/s1" "$T/data" >/dev/null ||
	fail "CKM_ECDSA signature does not verify"
sign_tool "$ec" "$T/s2" -m ECDSA-SHA256 --signature-format openssl -i "$T/data"
openssl dgst -sha256 -verify "$T/$ec.der" -keyform DER -signature "$T/s2" "$T/data" >/dev/null ||
	fail "CKM_ECDSA_SHA256 signature does not verify"
sign_tool "$rsa" "$T/s3" -m RSA-PKCS -i "$T/digest"
openssl pkeyutl -verifyrecover -pubin -keyform DER -inkey "$T/$rsa.der" -in "$T/s3" \
	-out "$T/recovered" 2>/dev/null && cmp -s "$T/recovered" "$T/digest" ||
	fail "CKM_RSA_PKCS signature does not verify"
sign_tool "$rsa" "$T/s4" -m SHA256-RSA-PKCS-PSS --mgf MGF1-SHA256 --salt-len 32 -i "$T/data"
openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
	-verify "$T/$rsa.der" -keyform DER -signature "$T/s4" "$T/data" >/dev/null ||
	fail "CKM_SHA256_RSA_PKCS_PSS signature does not verify"
# p11client: hash-and-sign on P-384, DER output.
p11client --label "$p384" --mech ecdsa-sha384 --in "$T/data" --out "$T/s5" --der >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "p11client ecdsa-sha384"; }
openssl dgst -sha384 -verify "$T/$p384.der" -keyform DER -signature "$T/s5" "$T/data" >/dev/null ||
	fail "CKM_ECDSA_SHA384 signature does not verify"

# --- PKCS#11 semantics --------------------------------------------------------
check()
{
	local id=$1 mech=$2

	p11client --label "$id" --mech "$mech" --in "$T/data" --check >"$T/check" 2>&1
	rc=$?
	cat "$T/check"
	[ "$rc" -eq 0 ] || fail "p11client --check on $id ($mech)"
	for c in create set-attribute copy generate destroy; do
		grep -q "^check refuse-$c: ok (CKR_TOKEN_WRITE_PROTECTED)" "$T/check" ||
			fail "$c was not refused with CKR_TOKEN_WRITE_PROTECTED"
	done
	grep -q '^check sign-multi-part: ok' "$T/check" || fail "no multi-part check for $mech"
	grep -q '^check login-twice: ok' "$T/check" || fail "no login checks (token requires login?)"
	# Argument checks first; digests unknown; CKU_SO refused by the
	# spec's code for the session state; any user PIN accepted.
	for c in null-generate-key null-generate-key-pair null-generate-random \
		null-seed-random null-generate-random-bad-session digest-init-unknown \
		digest-init-sha256 login-so-ro-session login-so-rw-session \
		login-any-pin login-so-user-logged-in interface-fork-safe fork-child-signs; do
		grep -q "^check $c: ok" "$T/check" || fail "p11client check $c failed or missing"
	done
	grep -q '^check login-so-rw-session: ok (CKR_PIN_LOCKED)' "$T/check" ||
		fail "CKU_SO with only R/W sessions is not CKR_PIN_LOCKED"
}
check "$ec" ecdsa-sha256
check "$rsa" sha256-rsa-pss
# PSS parameters stintd would refuse are refused by the module at
# C_SignInit (one mechanism table, common/mechanism.c).
for c in sign-init-pss-mgf-sha1 sign-init-pss-mgf-sha224 sign-init-pss-mgf-other-hash; do
	grep -q "^check $c: ok (CKR_MECHANISM_PARAM_INVALID)" "$T/check" ||
		fail "p11client check $c: the module accepted PSS parameters stintd refuses"
done
# Mechanism against the key type, and against CKA_ALLOWED_MECHANISMS.
p11client --label "$ec" --mech sha256-rsa-pkcs >"$T/out" 2>&1 && fail "an RSA mechanism signed with an EC key"
grep -q '^error=CKR_KEY_TYPE_INCONSISTENT$' "$T/out" || { cat "$T/out"; fail "RSA mechanism on EC key: wrong error"; }
# A raw PSS input that is not a digest of the stated hash.
p11client --label "$rsa" --mech rsa-pss --in "$T/data" >"$T/out" 2>&1 && fail "CKM_RSA_PKCS_PSS signed 1000 bytes"
grep -q '^error=CKR_DATA_LEN_RANGE$' "$T/out" || { cat "$T/out"; fail "raw PSS on non-digest: wrong error"; }
# Writes through pkcs11-tool.
! p11tool --keypairgen --key-type EC:prime256v1 --label evil </dev/null >"$T/out" 2>&1 ||
	fail "pkcs11-tool generated a key on the Stint token"
! p11tool --delete-object --type privkey --id "$(hex_of "$ec")" </dev/null >"$T/out" 2>&1 ||
	fail "pkcs11-tool deleted a task key"
p11client --label "$ec" --count 1 >/dev/null 2>&1 || fail "the task key is gone after a refused delete"
p11tool --test-fork </dev/null >"$T/fork" 2>&1 || { cat "$T/fork"; fail "pkcs11-tool --test-fork"; }

# --- threads, tracing ---------------------------------------------------------
p11client --label "$ec" --threads 4 --count 400 --in "$T/digest" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "4 threads signing"; }
grep -q '^ok=400$' "$T/out" || { cat "$T/out"; fail "4 threads: not 400 signatures"; }
STINT_DEBUG=module p11client --label "$ec" --count 1 --in "$T/digest" >/dev/null 2>"$T/trace" ||
	{ cat "$T/trace"; fail "signing with STINT_DEBUG=module"; }
grep -q 'C_Sign: CKR_OK' "$T/trace" || { cat "$T/trace"; fail "STINT_DEBUG=module does not trace C_Sign"; }
digest_hex=$(od -An -v -tx1 "$T/digest" | tr -d ' \n')
grep -qi "${digest_hex:0:16}" "$T/trace" && fail "STINT_DEBUG logged the data signed"

# --- one process while tasks start and end (PyKCS11, when installed) -----------------
# (Not in the sanitizer build: the preloaded ASan runtime trips over
# PyKCS11's C++ exceptions.)
if [ "$STINT_SANITIZERS" = yes ]; then
	note "sanitizer build: skipping the PyKCS11 running-process refresh check"
elif "$PYTHON" -c 'import PyKCS11' 2>/dev/null; then
	"$PYTHON" - "$STINT_MODULE" "$STINT" "$T/run/admin.sock" <<'PY' ||
import subprocess, sys
import PyKCS11 as P

module, cli, admin = sys.argv[1:4]
def stint(*args):
    return subprocess.run([cli, "--socket", admin] + list(args), check=True,
                          capture_output=True, text=True).stdout.strip()
lib = P.PyKCS11Lib()
lib.load(module)
s = lib.openSession(lib.getSlotList(tokenPresent=True)[0])
def keys():
    objs = s.findObjects([(P.CKA_CLASS, P.CKO_PRIVATE_KEY)])
    return {s.getAttributeValue(o, [P.CKA_LABEL])[0]: o for o in objs}
before = keys()
new = stint("task", "start", "--agent", "alpha", "--ttl", "10m", "-q")
after = keys()
assert new not in before and new in after, "a new task did not appear in a running process"
k = after[new]
assert len(s.sign(k, b"d" * 32, P.Mechanism(P.CKM_ECDSA))) == 64
stint("task", "end", new)
assert new not in keys(), "an ended task is still listed in a running process"
for what, call, want in (
        ("attribute", lambda: s.getAttributeValue(k, [P.CKA_LABEL]), P.CKR_OBJECT_HANDLE_INVALID),
        ("sign", lambda: s.sign(k, b"d" * 32, P.Mechanism(P.CKM_ECDSA)), P.CKR_KEY_FUNCTION_NOT_PERMITTED)):
    try:
        call()
        raise AssertionError("%s on an ended task's handle succeeded" % what)
    except P.PyKCS11Error as e:
        assert e.value == want, "%s on an ended task's handle: %s" % (what, e)
print("pykcs11: new task appeared, ended task vanished, its handle refused")
PY
		fail "object refresh in a running process (PyKCS11)"
else
	note "python3-pykcs11 not installed: skipping the running-process refresh check"
fi

# --- stintd stops, hangs, comes back ----------------------------------------------
# A process that keeps its session and key handle across the restart.
p11client --label "$ec" --in "$T/digest" --wait-file "$T/go" >"$T/held.out" 2>&1 &
held=$!
bg_track "$held"
wait_for 10 grep -q '^first=' "$T/held.out" || { cat "$T/held.out"; fail "held client did not sign"; }
stintd_stop

bounded()
{
	local limit=$1 t0 rc

	shift
	t0=$(date +%s%N)
	timeout 30 "$@"
	rc=$?
	[ "$rc" -ne 124 ] || fail "'$*' hung (killed after 30 s)"
	[ $((($(date +%s%N) - t0) / 1000000)) -le $((limit * 1000)) ] ||
		fail "'$*' took more than $limit s"
	return "$rc"
}
bounded 5 "${FOREIGN[@]}" pkcs11-tool --module "$STINT_MODULE" --list-slots >"$T/slots" 2>&1
grep -q 'token label' "$T/slots" && { cat "$T/slots"; fail "a token is present while stintd is stopped"; }
bounded 5 "$P11CLIENT" --module "$STINT_MODULE" --label "$ec" --count 1 >"$T/out" 2>&1 &&
	fail "signed while stintd is stopped"

# A daemon that accepts and never answers: every call still returns.
"$PYTHON" - "$T/run/agent.sock" <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(64)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
PY
mute=$!
bg_track "$mute"
wait_for 10 test -S "$T/run/agent.sock" || fail "mute server did not start"
STINT_TIMEOUT_MS=1000 bounded 8 "$P11CLIENT" --module "$STINT_MODULE" --list >"$T/out" 2>&1
grep -q '^slots with a token: 0$' "$T/out" || { cat "$T/out"; fail "a mute daemon shows a token"; }
STINT_TIMEOUT_MS=1000 bounded 8 "$P11CLIENT" --module "$STINT_MODULE" --label "$ec" --count 1 \
	>"$T/out" 2>&1 && fail "signed against a mute daemon"
kill "$mute"
wait "$mute" 2>/dev/null
rm -f "$T/run/agent.sock"

stintd_start
p11client --label "$ec" --count 3 --in "$T/digest" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "no signing after stintd came back"; }
touch "$T/go"
wait "$held"
cat "$T/held.out"
grep -q '^second=CKR_OK$' "$T/held.out" || fail "a session held across the restart did not sign again"

stintd_stop
note "module: token, objects, signatures, semantics, threads, fork, stop/hang/restart"
