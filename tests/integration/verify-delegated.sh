#!/bin/bash
# The delegation block of the task extension (issue 10 §5), as a relying
# party sees it. deleg_certs issues a top-level leaf, its child and its
# grandchild through the CA code (stint_cert_issue with the delegation
# fields set, as stintd does for a DELEGATE), plus leaves a broken issuer
# could sign. `stint verify-peer` prints the chain (text and --json),
# refuses a leaf whose path does not end with its own agent, whose depth
# does not match its path, or whose root is not its parent at depth 1;
# with --parent-cert it accepts the real parent and refuses any other
# certificate and a child that outlives its parent. certtool (GnuTLS)
# and python3-cryptography parse the delegated leaf (issue 11), and a few
# lines of Python read the block from the DER.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd openssl certtool
MAKE_CERTS=$top_builddir/tests/integration/deleg_certs
[ -x "$MAKE_CERTS" ] || skip "no $MAKE_CERTS (make check builds it)"
"$PYTHON" -c 'import cryptography.x509' 2>/dev/null ||
	skip "python3-cryptography not installed"
OID=1.2.840.113556.1.8000.2554.4942.2577.40273.17186.42876.2743747.4203423

mkdir "$T/c"
"$MAKE_CERTS" "$T/c" || fail "deleg_certs could not issue the leaves"
{ read -r PARENT; read -r CHILD; read -r GRAND; } <"$T/c/ids.txt"

vp()
{
	"$STINT" verify-peer --ca "$T/c/ca.pem" "$@"
}

# --- a top-level leaf: no delegation lines, "delegation": null -----------
vp "$T/c/parent.pem" >"$T/out" 2>&1 || { cat "$T/out"; fail "verify-peer refused the top-level leaf"; }
grep -q "^depth\|^root_task\|^delegation_path" "$T/out" &&
	{ cat "$T/out"; fail "a top-level leaf printed a delegation chain"; }
vp "$T/c/parent.pem" --json >"$T/out.json" || fail "verify-peer --json (top level)"
[ "$("$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["delegation"])' <"$T/out.json")" = None ] ||
	{ cat "$T/out.json"; fail "a top-level leaf has a delegation in --json"; }

# --- the grandchild: its chain printed, text and JSON ----------------------
vp "$T/c/grand.pem" --agent sub >"$T/out" 2>&1 || { cat "$T/out"; fail "verify-peer refused the grandchild"; }
for want in "task $GRAND" "parent_task $CHILD" "root_task $PARENT" "depth 2" \
	"delegation_path lead,worker,sub"; do
	grep -qx "$want" "$T/out" || { cat "$T/out"; fail "verify-peer did not print '$want'"; }
done
want_hash=$(openssl x509 -in "$T/c/child.pem" -outform DER | sha256sum | cut -d' ' -f1)
grep -qx "parent_cert_sha256 $want_hash" "$T/out" ||
	{ cat "$T/out"; fail "verify-peer did not print the child's certificate hash $want_hash"; }
grep -q "^parent_cert ok" "$T/out" && fail "parent_cert ok printed without --parent-cert"
vp "$T/c/grand.pem" --json >"$T/out.json" || fail "verify-peer --json (grandchild)"
"$PYTHON" - "$T/out.json" "$PARENT" "$CHILD" "$want_hash" <<'EOF' || { cat "$T/out.json"; fail "--json delegation wrong"; }
import json, sys
d = json.load(open(sys.argv[1]))["delegation"]
assert d["parent_task"] == sys.argv[3], d
assert d["root_task"] == sys.argv[2], d
assert d["depth"] == 2 and d["path"] == ["lead", "worker", "sub"], d
assert d["parent_cert_sha256"] == sys.argv[4], d
assert d["parent_cert_checked"] is False, d
EOF
note "verify-peer prints the chain: root $PARENT, depth 2, lead > worker > sub"

# --- --parent-cert: the real parent, then wrong ones ------------------------
vp "$T/c/grand.pem" --parent-cert "$T/c/child.pem" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "verify-peer refused the grandchild's real parent"; }
grep -qx "parent_cert ok" "$T/out" || { cat "$T/out"; fail "no 'parent_cert ok'"; }
vp "$T/c/child.pem" --parent-cert "$T/c/parent.pem" --json >"$T/out.json" ||
	fail "verify-peer refused the child's real (top-level) parent"
"$PYTHON" -c 'import json,sys; assert json.load(sys.stdin)["delegation"]["parent_cert_checked"] is True' \
	<"$T/out.json" || { cat "$T/out.json"; fail "--json: parent_cert_checked not true"; }

refused()
{
	local what=$1 check=$2 pattern=$3

	shift 3
	if vp "$@" >"$T/out" 2>&1; then
		cat "$T/out"
		fail "verify-peer accepted $what"
	fi
	grep -q "check $check failed: .*$pattern" "$T/out" ||
		{ cat "$T/out"; fail "$what: not refused by check $check ($pattern)"; }
	note "refused $what: $(grep -o "check $check failed.*" "$T/out")"
}
refused "the root as the grandchild's parent" parent "SHA-256" \
	"$T/c/grand.pem" --parent-cert "$T/c/parent.pem"
refused "a sibling as the child's parent" parent "SHA-256" \
	"$T/c/child.pem" --parent-cert "$T/c/late.pem"
refused "a child that outlives its parent" parent "outlives" \
	"$T/c/late.pem" --parent-cert "$T/c/parent.pem"
refused "--parent-cert for a top-level leaf" parent "top-level" \
	"$T/c/parent.pem" --parent-cert "$T/c/child.pem"

echo "not a certificate" >"$T/junk.pem"
if vp "$T/c/child.pem" --parent-cert "$T/junk.pem" >"$T/out" 2>&1; then
	fail "verify-peer accepted a --parent-cert file without a certificate"
fi
grep -q "no PEM certificate in '$T/junk.pem'" "$T/out" || { cat "$T/out"; fail "junk --parent-cert not named"; }

# --- forged blocks (signed by the CA, inconsistent) --------------------------
refused "a path that ends with another agent" delegation "ends with agent 'other'" \
	"$T/c/forged-path.pem"
refused "depth 2 with a path of two agents" task-extension "" \
	"$T/c/forged-depth.pem"
refused "depth 1 whose root is not its parent" delegation "not the parent" \
	"$T/c/forged-root.pem"
vp "$T/c/forged-path.pem" --json >"$T/out.json" 2>/dev/null && fail "--json accepted the forged path"
grep -q '"check": *"delegation"' "$T/out.json" || { cat "$T/out.json"; fail "--json: check not 'delegation'"; }

# --- every parser reads a delegated leaf (issue 11) ------------------------
certtool -i --infile "$T/c/grand.pem" >"$T/certtool.out" 2>&1 ||
	{ cat "$T/certtool.out"; fail "certtool cannot parse the delegated leaf"; }
grep -q "Unknown extension $OID (not critical)" "$T/certtool.out" ||
	{ cat "$T/certtool.out"; fail "certtool: no task extension in the delegated leaf"; }
"$PYTHON" - "$T/c/grand.pem" "$OID" "$GRAND" "$CHILD" "$PARENT" "$want_hash" <<'EOF' ||
import sys
from cryptography import x509

def tlv(b, i):
    """(tag, start of value, end of value) of the DER element at i."""
    tag, n = b[i], b[i + 1]
    i += 2
    if n & 0x80:
        k, n = n & 0x7F, int.from_bytes(b[i:i + (n & 0x7F)], "big")
        i += k
    return tag, i, i + n

def children(b, start, end):
    out, i = [], start
    while i < end:
        t, s, e = tlv(b, i)
        out.append((t, s, e))
        i = e
    return out

pem, oid, task, parent, root, parent_hash = sys.argv[1:]
cert = x509.load_pem_x509_certificate(open(pem, "rb").read())
ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid))
der = ext.value.value
t, s, e = tlv(der, 0)
fields = children(der, s, e)
text = lambda f: der[f[1]:f[2]].decode()
assert text(fields[0]) == task and text(fields[2]) == parent, fields
deleg = [f for f in fields if f[0] == 0xA1]  # delegation [1] EXPLICIT
assert len(deleg) == 1, fields
(seq,) = children(der, deleg[0][1], deleg[0][2])
rt, depth, path, digest = children(der, seq[1], seq[2])
assert text(rt) == root
assert der[depth[1]:depth[2]] == b"\x02"
assert [text(p) for p in children(der, path[1], path[2])] == ["lead", "worker", "sub"]
assert der[digest[1]:digest[2]].hex() == parent_hash
EOF
	fail "python3-cryptography could not read the delegation block"
note "certtool and python3-cryptography read the delegated leaf and its block"
