#!/bin/bash
# pycurl with task keys (issue 11, item 4): examples/pycurl_mtls.py, given
# only $STINT_KEY_URI and $STINT_CERT_URI, does mutual TLS with `openssl
# s_server -Verify 1`, for EC and RSA task keys; after `stint task end` it
# fails cleanly. Debian's python3-pycurl is built on libcurl-gnutls, which
# opens pkcs11: URIs through the modules p11-kit knows: the agent is an
# unprivileged uid with stint.module in its ~/.config/pkcs11/modules (p11-kit
# ignores that directory for root), as p11kit.sh does.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd openssl
"$PYTHON" -c 'import pycurl' 2>/dev/null || skip "python3-pycurl not installed"
engine_path >/dev/null || skip "libp11 engine not installed (libengine-pkcs11-openssl)"
[ "$STINT_SANITIZERS" = yes ] &&
	skip "sanitizer build: python loads the instrumented module (see module.sh)"
stint_setup
AGENT_UID=42741
agent_add alpha "$AGENT_UID"
EXAMPLE=$T/pycurl_mtls.py
cp "$top_srcdir/examples/pycurl_mtls.py" "$EXAMPLE"
cp "$STINT_MODULE" "$T/stint-pkcs11.so"
chmod 0755 "$T/stint-pkcs11.so" "$EXAMPLE"
mkdir -p "$T/home/.config/pkcs11/modules"
sed "s|^module: .*|module: $T/stint-pkcs11.so|" "$top_builddir/etc/stint.module" \
	>"$T/home/.config/pkcs11/modules/stint.module" || fail "no etc/stint.module in the build"
chown -R "$AGENT_UID:$AGENT_UID" "$T/home"

tls_server_cert "$T/srv"
stint ca cert >"$T/ca.pem"
s_server_start "$T/srv" "$T/ca.pem"

example()
{
	as_uid "$AGENT_UID" env -u SOFTHSM2_CONF HOME="$T/home" \
		PKCS11_MODULE_PATH="$T/stint-pkcs11.so" \
		STINT_KEY_URI="pkcs11:token=alpha;object=$1;type=private" \
		STINT_CERT_URI="pkcs11:token=alpha;object=$1;type=cert" \
		timeout 60 "$PYTHON" "$EXAMPLE" "https://127.0.0.1:$PORT/" "$T/srv.pem" </dev/null
}

for key in ec-p256 rsa-2048; do
	id=$(task_start alpha --key "$key" --ttl 10m)
	# stderr apart: other PKCS#11 modules p11-kit loads (tpm2-pkcs11 on a
	# host without a TPM) may print there, and the page is checked line by line
	example "$id" >"$T/page" 2>"$T/page.err" ||
		{ cat "$T/page" "$T/page.err" "$T/s_server.log"; fail "$key: pycurl example failed"; }
	[ "$(head -1 "$T/page")" = 200 ] || { cat "$T/page"; fail "$key: no HTTP 200"; }
	grep -q "^Client certificate" "$T/page" || { cat "$T/page"; fail "$key: s_server saw no client certificate"; }
	sed -n '/^Client certificate/,/-----END CERTIFICATE-----/p' "$T/page" |
		sed -n '/-----BEGIN/,/-----END/p' >"$T/seen.pem"
	stint verify-peer "$T/seen.pem" --ca "$T/ca.pem" --json >"$T/vp" ||
		{ cat "$T/vp"; fail "$key: the certificate pycurl sent does not verify"; }
	[ "$(json_get task <"$T/vp")" = "$id" ] || fail "$key: pycurl sent another task's certificate"
	note "$key: pycurl mutual TLS with \$STINT_KEY_URI / \$STINT_CERT_URI"
done

stint task end "$id" >/dev/null || fail "stint task end"
example "$id" >"$T/page" 2>&1
rc=$?
[ "$rc" -eq 1 ] || { cat "$T/page"; fail "pycurl after task end: exit $rc, not a clean failure"; }
grep -q "^Client certificate" "$T/page" && fail "s_server got a certificate after task end"
note "after task end: $(head -1 "$T/page")"
exit 0
