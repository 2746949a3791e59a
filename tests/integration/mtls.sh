#!/bin/bash
# Mutual TLS with task keys (issue 3, section 5, tests 1, 5 and the curl
# half of 6): an unmodified curl, given nothing but the task's pkcs11: URIs,
# authenticates to `openssl s_server -Verify 1 -verify_return_error` that
# trusts `stint ca cert`, over TLS 1.3 and 1.2 with EC P-256 and RSA-2048
# task keys; after `stint task end` a new connection fails. pkcs11-tool and
# p11tool see the certificate object next to the key. After `stint ca csr`
# is signed by an outside root and installed, a new task's curl succeeds
# against a server that trusts only that root.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd openssl curl pkcs11-tool
engine_path >/dev/null || skip "libp11 engine not installed (libengine-pkcs11-openssl)"
stint_setup
agent_add alpha "$(id -u)"
TD=test.example

# --- the server: a throwaway key and certificate, made without the engine ---
tls_server_cert "$T/srv"
stint ca cert >"$T/bundle.pem" || fail "stint ca cert"
curl_env

# curl with the task's URIs only; the module chosen by PKCS11_MODULE_PATH
# (libp11's default module is p11-kit-proxy, which would not know Stint).
# $CURL_CACERT trusts the server; stdin closed so a PIN prompt fails.
CURL_CACERT=$T/srv.pem
agent_curl()
{
	local task=$1

	shift
	timeout 60 "${CURL_ENV[@]}" PKCS11_MODULE_PATH="$STINT_MODULE" \
		curl -sS --cacert "$CURL_CACERT" \
		--cert "pkcs11:token=alpha;object=$task;type=cert" \
		--key "pkcs11:token=alpha;object=$task;type=private" \
		"$@" "https://127.0.0.1:$PORT/" </dev/null
}

s_server_start "$T/srv" "$T/bundle.pem"

# Without a client certificate the server refuses: the assertions below
# therefore mean client authentication took place.
! curl -sS --cacert "$T/srv.pem" "https://127.0.0.1:$PORT/" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "s_server accepted a client without a certificate"; }

# --- test 1: two key types, two TLS versions ----------------------------------
for key in ec-p256 rsa-2048; do
	id=$(task_start alpha --key "$key" --ttl 10m) || exit 1
	for tls in 1.3 1.2; do
		opts=(--tlsv1.3)
		[ "$tls" = 1.2 ] && opts=(--tlsv1.2 --tls-max 1.2)
		agent_curl "$id" "${opts[@]}" >"$T/page" 2>"$T/err" ||
			{ cat "$T/err" "$T/s_server.log"; fail "$key TLS $tls: curl failed"; }
		grep -Eq "^ *Protocol *: TLSv$tls\b" "$T/page" ||
			{ cat "$T/page"; fail "$key TLS $tls: session is not TLSv$tls"; }
		grep -q "^Client certificate" "$T/page" ||
			{ cat "$T/page"; fail "$key TLS $tls: s_server saw no client certificate"; }
		# The client's CertificateVerify: ECDSA, or RSA-PSS for RSA in
		# TLS 1.3 (PKCS#1 v1.5 is not allowed there).
		want=ECDSA
		[ "$key" = rsa-2048 ] && want=RSA
		[ "$key" = rsa-2048 ] && [ "$tls" = 1.3 ] && want=RSA-PSS
		grep -Eq "^Peer signature type: $want\b" "$T/page" ||
			{ grep "Peer sig" "$T/page"; fail "$key TLS $tls: client signature is not $want"; }
		# The certificate it saw is this task's leaf.
		sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' \
			"$T/page" >"$T/seen.pem"
		stint verify-peer "$T/seen.pem" --agent alpha --trust-domain "$TD" \
			--json >"$T/vp" || { cat "$T/vp"; fail "$key TLS $tls: verify-peer"; }
		[ "$(json_get task <"$T/vp")" = "$id" ] ||
			fail "$key TLS $tls: the server saw another task's certificate"
		[ "$(json_get spiffe_id <"$T/vp")" = "spiffe://$TD/agent/alpha" ] ||
			fail "$key TLS $tls: SPIFFE ID"
		note "$key TLS $tls: mutual TLS with the task's pkcs11: URIs"
	done
	[ "$(audit_count "$id" sign-allowed)" -ge 2 ] ||
		fail "$key: fewer than two sign-allowed records for $id"
done

# --- test 5: the certificate object, as other PKCS#11 tools see it ----------
p11tool --token-label alpha --list-objects >"$T/p11" 2>&1 ||
	{ cat "$T/p11"; fail "pkcs11-tool --list-objects"; }
grep -A4 "Certificate Object" "$T/p11" | grep -q "label: *$id\$" ||
	{ cat "$T/p11"; fail "pkcs11-tool: no certificate object labelled $id"; }
grep -A4 "Private Key Object" "$T/p11" | grep -q "label: *$id\$" ||
	{ cat "$T/p11"; fail "pkcs11-tool: no key object labelled $id"; }
if command -v p11tool >/dev/null 2>&1; then
	timeout 60 "${FOREIGN[@]}" p11tool --provider "$STINT_MODULE" \
		--list-all "pkcs11:token=alpha" </dev/null >"$T/gnutls" 2>&1 ||
		{ cat "$T/gnutls"; fail "p11tool --list-all"; }
	grep -q "object=$id;type=cert" "$T/gnutls" ||
		{ cat "$T/gnutls"; fail "p11tool: no certificate for $id"; }
	grep -q "object=$id;type=private" "$T/gnutls" ||
		{ cat "$T/gnutls"; fail "p11tool: no private key for $id"; }
	note "p11tool lists the certificate and the key"
else
	note "p11tool (gnutls-bin) not installed: its half of test 5 skipped"
fi

# --- ending the task: no new connection ---------------------------------------
stint task end "$id" >/dev/null || fail "stint task end"
if agent_curl "$id" >"$T/page" 2>"$T/err"; then
	fail "curl connected with an ended task's key"
fi
note "after task end curl fails: $(head -1 "$T/err")"

# --- test 6: an outside root signs the CA; the server trusts only it ----------
org_root_signs_ca
stint ca install "$T/chain.pem" >/dev/null || fail "stint ca install"
s_server_stop
s_server_start "$T/srv" "$T/org.pem"
id=$(task_start alpha --ttl 10m) || exit 1
# The leaf alone does not chain to the org root: the client sends the
# intermediate. curl cannot name extra chain certificates for a pkcs11:
# key, but OpenSSL completes the client's chain from the certificates curl
# trusts, so the agent's CA file holds the server's CA and `stint ca cert`.
CURL_CACERT=$T/srv.pem
! agent_curl "$id" >"$T/page" 2>"$T/err" ||
	fail "the server accepted a leaf without its intermediate"
cat "$T/srv.pem" "$T/chain.pem" >"$T/agent-ca.pem"
CURL_CACERT=$T/agent-ca.pem
agent_curl "$id" >"$T/page" 2>"$T/err" ||
	{ cat "$T/err" "$T/s_server.log"; fail "curl failed against a server trusting only the org root"; }
grep -q "^Client certificate" "$T/page" ||
	fail "org root: s_server saw no client certificate"
sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' \
	"$T/page" >"$T/seen.pem"
openssl verify -purpose sslclient -CAfile "$T/org.pem" -untrusted "$T/inter.pem" \
	"$T/seen.pem" >/dev/null 2>&1 || fail "the leaf the server saw does not chain to the org root"
note "installed CA: curl authenticated to a server trusting only the org root"
s_server_stop
stintd_stop
exit 0
