#!/bin/bash
# Certificates every parser reads (issue 11, item 1): GnuTLS (certtool,
# gnutls-cli, gnutls-serv) and Debian's python3-cryptography parse Stint's
# leaf, CA certificate and CSR, whose OIDs all have arcs below 2^63 (the
# task extension's old 2.25 OID had a 128-bit arc that both refuse).
# gnutls-cli does mutual TLS with the task key and certificate through
# stint-pkcs11.so against `openssl s_server -Verify 1`; a GnuTLS server
# verifies a curl client holding a task key; after `task end` both fail.
# With `[ca] extension_oid` the leaf carries the configured OID, which the
# parsers read too and `stint verify-peer --extension-oid` accepts.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd openssl curl certtool gnutls-cli gnutls-serv unshare ip
"$PYTHON" -c 'import cryptography.x509' 2>/dev/null ||
	skip "python3-cryptography not installed"
engine_path >/dev/null || skip "libp11 engine not installed (libengine-pkcs11-openssl)"
stint_setup
agent_add alpha "$(id -u)"
TD=test.example
OID=1.2.840.113556.1.8000.2554.4942.2577.40273.17186.42876.2743747.4203423

# certtool prints every extension it parsed; "Unknown extension OID" for ours.
certtool_reads()
{
	local what=$1 oid=$2

	shift 2
	certtool "$@" >"$T/certtool.out" 2>&1 ||
		{ cat "$T/certtool.out"; fail "certtool cannot parse the $what"; }
	[ -z "$oid" ] || grep -q "Unknown extension $oid (not critical)" "$T/certtool.out" ||
		{ cat "$T/certtool.out"; fail "certtool: no task extension $oid in the $what"; }
}

# Python's cryptography loads the leaf and reads the task id from the
# extension (StintTask starts with the taskId UTF8String).
python_reads()
{
	local pem=$1 oid=$2 task=$3 got

	got=$("$PYTHON" - "$pem" "$oid" <<'EOF'
import sys
from cryptography import x509
cert = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(sys.argv[2]))
der = ext.value.value
assert not ext.critical and der[0] == 0x30 and der[2] == 0x0C, der[:4].hex()
print(der[4:4 + der[3]].decode())
EOF
	) || fail "python3-cryptography cannot read the task extension $oid"
	[ "$got" = "$task" ] || fail "python3-cryptography read task '$got', not $task"
}

stint ca cert >"$T/ca.pem" || fail "stint ca cert"
stint ca csr >"$T/ca.csr" || fail "stint ca csr"
certtool_reads "CA certificate" "" -i --infile "$T/ca.pem"
certtool_reads "CSR" "" --crq-info --infile "$T/ca.csr"
"$PYTHON" -c 'import sys; from cryptography import x509
x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
x509.load_pem_x509_csr(open(sys.argv[2], "rb").read())' "$T/ca.pem" "$T/ca.csr" ||
	fail "python3-cryptography cannot load the CA certificate or the CSR"

id_ec=$(task_start alpha --ttl 10m --key ec-p256)
id_rsa=$(task_start alpha --ttl 10m --key rsa-2048)
for id in "$id_ec" "$id_rsa"; do
	stint task show "$id" --cert >"$T/$id.pem" || fail "task show --cert"
	certtool_reads "leaf" "$OID" -i --infile "$T/$id.pem"
	python_reads "$T/$id.pem" "$OID" "$id"
done
note "certtool and python3-cryptography read the leaf, the CA and the CSR"

# --- gnutls-cli with the task key, against openssl s_server -Verify 1 --------
tls_server_cert "$T/srv"
s_server_start "$T/srv" "$T/ca.pem"

gnutls_client()
{
	local task=$1

	printf 'GET / HTTP/1.0\r\n\r\n' |
		timeout 60 "${FOREIGN[@]}" gnutls-cli --provider "$STINT_MODULE" \
			--x509cafile "$T/srv.pem" \
			--x509certfile "pkcs11:token=alpha;object=$task;type=cert" \
			--x509keyfile "pkcs11:token=alpha;object=$task;type=private" \
			-p "$PORT" 127.0.0.1
}

for id in "$id_ec" "$id_rsa"; do
	gnutls_client "$id" >"$T/page" 2>&1 ||
		{ cat "$T/page" "$T/s_server.log"; fail "gnutls-cli with task $id failed"; }
	grep -q "^Client certificate" "$T/page" ||
		{ cat "$T/page"; fail "s_server saw no client certificate from gnutls-cli"; }
	sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' \
		"$T/page" >"$T/seen.pem"
	stint verify-peer "$T/seen.pem" --ca "$T/ca.pem" --agent alpha --json >"$T/vp" ||
		{ cat "$T/vp"; fail "the certificate gnutls-cli sent does not verify"; }
	[ "$(json_get task <"$T/vp")" = "$id" ] || fail "gnutls-cli sent another task's certificate"
done
[ "$(audit_count "$id_ec" sign-allowed)" -ge 1 ] || fail "no signature audited for gnutls-cli"
note "gnutls-cli: mutual TLS with EC and RSA task keys through stint-pkcs11.so"

# --- a GnuTLS server verifying curl's task certificate ------------------------
# gnutls-serv cannot bind to one address: it runs, with curl, in a network
# namespace of its own whose only interface is a private loopback.
cat >"$T/gnutls-serv.sh" <<EOF
ip link set lo up || exit 3
gnutls-serv --http -p $PORT --x509cafile '$T/ca.pem' --x509certfile '$T/srv.pem' \
	--x509keyfile '$T/srv.key' --require-client-cert --verify-client-cert \
	</dev/null >'$T/gnutls-serv.log' 2>&1 &
srv=\$!
for i in \$(seq 100); do
	(exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
	sleep 0.1
done
rc=0
for task in "\$@"; do
	echo "== \$task" >>'$T/gnutls-serv.log'
	timeout 60 ${FOREIGN[*]} PKCS11_MODULE_PATH='$STINT_MODULE' curl -sS \
		--cacert '$T/srv.pem' \
		--cert "pkcs11:token=alpha;object=\$task;type=cert" \
		--key "pkcs11:token=alpha;object=\$task;type=private" \
		https://127.0.0.1:$PORT/ </dev/null >'$T/'\$task.page 2>&1 || rc=1
	sleep 0.2
done
kill \$srv
exit \$rc
EOF
unshare --net true 2>/dev/null || skip "cannot create a network namespace (unshare --net)"
unshare --net bash "$T/gnutls-serv.sh" "$id_ec" "$id_rsa" ||
	{ cat "$T/gnutls-serv.log" "$T"/*.page; fail "curl to gnutls-serv failed"; }
[ "$(grep -c "Status: The certificate is trusted" "$T/gnutls-serv.log")" -eq 2 ] ||
	{ cat "$T/gnutls-serv.log"; fail "gnutls-serv did not verify both task certificates"; }
grep -q "Unknown extension $OID" "$T/gnutls-serv.log" ||
	{ cat "$T/gnutls-serv.log"; fail "gnutls-serv did not parse the task extension"; }
note "gnutls-serv verified curl's EC and RSA task certificates"

# --- after task end ----------------------------------------------------------
stint task end "$id_ec" >/dev/null || fail "stint task end"
! gnutls_client "$id_ec" >"$T/page" 2>&1 || fail "gnutls-cli connected after task end"
grep -q "^Client certificate" "$T/page" && fail "s_server got a certificate after task end"
note "after task end gnutls-cli fails: $(grep -m1 -iE 'error|fail' "$T/page")"

# --- an organisation's own OID ------------------------------------------------
stintd_stop
ORG_OID=1.3.6.1.4.1.32473.7.1
cat >>"$STINTD_CONF" <<EOF

[ca]
extension_oid = $ORG_OID
EOF
stintd_start
id=$(task_start alpha --ttl 10m)
stint task show "$id" --cert >"$T/org-leaf.pem" || fail "task show --cert"
certtool_reads "leaf with [ca] extension_oid" "$ORG_OID" -i --infile "$T/org-leaf.pem"
python_reads "$T/org-leaf.pem" "$ORG_OID" "$id"
! stint verify-peer "$T/org-leaf.pem" --ca "$T/ca.pem" >"$T/out" 2>&1 ||
	fail "verify-peer accepted an unknown extension OID without --extension-oid"
grep -q "check task-extension failed" "$T/out" || { cat "$T/out"; fail "verify-peer: wrong refusal"; }
stint verify-peer "$T/org-leaf.pem" --ca "$T/ca.pem" --extension-oid "$ORG_OID" --json >"$T/vp" ||
	{ cat "$T/vp"; fail "verify-peer --extension-oid refused the leaf"; }
[ "$(json_get task <"$T/vp")" = "$id" ] || fail "verify-peer --extension-oid: task"
# The leaf issued before the change still verifies.
stint verify-peer "$T/$id_rsa.pem" --ca "$T/ca.pem" --extension-oid "$ORG_OID" >/dev/null ||
	fail "a default-OID leaf no longer verifies"
note "[ca] extension_oid = $ORG_OID: parsed by GnuTLS and Python, verified"

# An OID with an arc of 2^63 or more is refused at start, naming the line.
stintd_stop
sed -i "s/^extension_oid = .*/extension_oid = 2.25.25660535294541303970547870080947987359/" "$STINTD_CONF"
! "$STINTD" --config "$STINTD_CONF" --foreground >"$T/bad.log" 2>&1 ||
	fail "stintd started with an extension_oid arc of 128 bits"
grep -q "extension_oid" "$T/bad.log" || { cat "$T/bad.log"; fail "the refusal does not name extension_oid"; }
exit 0
