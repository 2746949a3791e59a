#!/bin/bash
# The OpenSSL 3 provider path (issue 11, item 2): latchset's pkcs11-provider
# with PKCS11_PROVIDER_MODULE=stint-pkcs11.so and `-provider pkcs11
# -provider default` signs with task keys named by pkcs11: URIs (EC and
# RSA, verified without the provider), makes a CSR with `req -new`, and does
# mutual TLS with s_client against `s_server -Verify 1`; nothing asks for a
# PIN. After `task end` it fails cleanly, also in a long-lived process that
# cached the key and its session (provider_probe), and a forked child of
# such a process signs with another live key.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd openssl
modules=$(openssl version -m | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
[ -f "$modules/pkcs11.so" ] ||
	skip "pkcs11-provider not installed ($modules/pkcs11.so; ci/install-deps.sh)"
PROBE=$top_builddir/tests/integration/provider_probe
# pkcs11-provider dlopens the module with RTLD_DEEPBIND, which the ASan
# runtime refuses (google/sanitizers#611).
[ "$STINT_SANITIZERS" = yes ] &&
	skip "sanitizer build: pkcs11-provider loads modules with RTLD_DEEPBIND"
[ -x "$PROBE" ] || skip "no $PROBE (make check builds it)"
stint_setup
agent_add alpha "$(id -u)"

# Only this process sees the provider; stdin closed so a PIN prompt fails.
prov()
{
	PKCS11_PROVIDER_MODULE=$STINT_MODULE timeout 120 "${FOREIGN[@]}" \
		openssl "$@" </dev/null
}
P=(-provider pkcs11 -provider default)
key_uri() { echo "pkcs11:token=alpha;object=$1;type=private"; }

head -c 32 /dev/urandom >"$T/digest"
head -c 32 /dev/urandom >"$T/other"
for key in ec-p256 rsa-2048; do
	id=$(task_start alpha --key "$key" --ttl 10m)
	opts=()
	[ "$key" = rsa-2048 ] && opts=(-pkeyopt digest:sha256)
	prov pkeyutl "${P[@]}" -sign -inkey "$(key_uri "$id")" "${opts[@]}" \
		-in "$T/digest" -out "$T/sig" >"$T/out" 2>&1 ||
		{ cat "$T/out"; fail "$key: pkeyutl -sign through pkcs11-provider"; }
	grep -qi 'PIN' "$T/out" && { cat "$T/out"; fail "$key: the provider asked for a PIN"; }
	stint task show "$id" --pem >"$T/pub.pem"
	openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" "${opts[@]}" \
		-in "$T/digest" -sigfile "$T/sig" >/dev/null ||
		fail "$key: the provider's signature does not verify"
	! openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" "${opts[@]}" \
		-in "$T/other" -sigfile "$T/sig" >/dev/null 2>&1 ||
		fail "$key: the signature verifies for another digest"
	[ "$(audit_count "$id" sign-allowed)" -ge 1 ] || fail "$key: no sign-allowed record"
	note "$key: pkeyutl -sign with $(key_uri "$id")"
done
rsa=$id

# --- req -new with the task key ------------------------------------------------
id=$(task_start alpha --ttl 10m)
prov req "${P[@]}" -new -key "$(key_uri "$id")" -subj "/CN=alpha" -out "$T/req.pem" \
	>"$T/out" 2>&1 || { cat "$T/out"; fail "req -new with the task key"; }
openssl req -in "$T/req.pem" -noout -verify 2>&1 | grep -q "verify OK" ||
	fail "the CSR's self-signature does not verify"
[ "$(openssl req -in "$T/req.pem" -noout -pubkey)" = "$(stint task show "$id" --pem)" ] ||
	fail "the CSR is not for the task key"
note "req -new: a CSR signed by the task key"

# --- mutual TLS: s_client against s_server -Verify 1 ----------------------------
# pkcs11-provider 1.0 loads the module lazily and, in s_client, finalizes
# it between loading the key and signing with it ("Provided key has
# invalid handle"; pkcs11-provider issues #352 and #419, with any PKCS#11
# module): TLS clients load it early, from a configuration file.
cat >"$T/provider.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
pkcs11 = pkcs11_sect
[default_sect]
activate = 1
[pkcs11_sect]
module = $modules/pkcs11.so
pkcs11-module-load-behavior = early
activate = 1
EOF
tls_server_cert "$T/srv"
stint ca cert >"$T/ca.pem"
s_server_start "$T/srv" "$T/ca.pem"
for task in "$id" "$rsa"; do
	stint task show "$task" --cert >"$T/leaf.pem"
	printf 'GET / HTTP/1.0\r\n\r\n' |
		OPENSSL_CONF=$T/provider.cnf PKCS11_PROVIDER_MODULE=$STINT_MODULE \
			timeout 120 "${FOREIGN[@]}" openssl s_client "${P[@]}" -connect "127.0.0.1:$PORT" \
			-CAfile "$T/srv.pem" -verify_return_error -cert "$T/leaf.pem" \
			-key "$(key_uri "$task")" -ign_eof >"$T/page" 2>&1 ||
		{ cat "$T/page" "$T/s_server.log"; fail "s_client with $task"; }
	grep -q "^Client certificate" "$T/page" ||
		{ cat "$T/page"; fail "s_server saw no client certificate from $task"; }
	sed -n '/^Client certificate/,/-----END CERTIFICATE-----/p' "$T/page" |
		sed -n '/-----BEGIN/,/-----END/p' >"$T/seen.pem"
	stint verify-peer "$T/seen.pem" --ca "$T/ca.pem" --json >"$T/vp" ||
		{ cat "$T/vp"; fail "the certificate s_client sent does not verify"; }
	[ "$(json_get task <"$T/vp")" = "$task" ] || fail "s_client sent another task's certificate"
done
note "s_client: mutual TLS with EC and RSA task keys through the provider"

# --- after task end ----------------------------------------------------------
stint task end "$id" >/dev/null
rm -f "$T/sig"
prov pkeyutl "${P[@]}" -sign -inkey "$(key_uri "$id")" -in "$T/digest" -out "$T/sig" \
	>"$T/out" 2>&1
rc=$?
[ "$rc" -ne 0 ] || fail "pkeyutl signed with an ended task's key"
[ "$rc" -lt 124 ] || { cat "$T/out"; fail "pkeyutl after task end: exit $rc (crash or hang)"; }
[ ! -s "$T/sig" ] || fail "a signature was written after task end"
grep -qi 'PIN' "$T/out" && { cat "$T/out"; fail "the provider asked for a PIN after task end"; }
note "after task end pkeyutl fails cleanly: $(head -1 "$T/out")"

# --- a long-lived process: cached key and session, then fork --------------------
a=$(task_start alpha --ttl 10m)
b=$(task_start alpha --ttl 10m)
PKCS11_PROVIDER_MODULE=$STINT_MODULE timeout 300 "${FOREIGN[@]}" "$PROBE" \
	"$(key_uri "$a")" "$(key_uri "$b")" "$T/ended" </dev/null >"$T/probe" 2>&1 &
probe=$!
bg_track "$probe"
wait_for 60 grep -q '^first=' "$T/probe" || { cat "$T/probe"; fail "provider_probe did not sign"; }
stint task end "$a" >/dev/null
touch "$T/ended"
wait "$probe"
rc=$?
cat "$T/probe"
[ "$rc" -eq 0 ] || fail "provider_probe exited $rc"
grep -qx 'first=ok' "$T/probe" || fail "provider_probe: first signature"
grep -qx 'after-end=refused' "$T/probe" || fail "the provider signed with a cached key after task end"
grep -qx 'fork-child=ok' "$T/probe" || fail "a forked child could not sign through the provider"
grep -qx 'fork-child-exit=0' "$T/probe" || fail "the forked child crashed"
grep -qx 'fork-parent=ok' "$T/probe" || fail "the parent could not sign after fork"
[ "$(audit_count "$a" sign-refused)" -ge 1 ] || fail "the refused signature was not audited"
note "long-lived process: refused after task end, fork child and parent sign"
exit 0
