#!/bin/sh
# stintd's PKCS#11 backend against a real SoftHSM2 token in a temporary
# directory: backend_probe generates, signs, verifies and destroys keys of
# every type; SoftHSM's own view (pkcs11-tool) confirms no key is left; the
# error paths (wrong PIN, unknown token, bad module, readable PIN file) say
# what to fix. Exit 0 pass, 1 fail, 77 skip.
set -u

here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
: "${SOFTHSM_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
probe="$top_builddir/tests/integration/backend_probe"

skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
ok() {
	echo "ok $*"
}

command -v softhsm2-util >/dev/null 2>&1 || skip "softhsm2-util not installed (apt install softhsm2)"
command -v pkcs11-tool >/dev/null 2>&1 || skip "pkcs11-tool not installed (apt install opensc)"
[ -r "$SOFTHSM_MODULE" ] || skip "SoftHSM module $SOFTHSM_MODULE not found"
[ -x "$probe" ] || fail "$probe not built (run make check)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/stint-backend.XXXXXX") || fail "mktemp"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

label=stint-test
other=other-token
pin=123456
mkdir "$tmp/tokens"
cat >"$tmp/softhsm2.conf" <<EOF
directories.tokendir = $tmp/tokens
objectstore.backend = file
log.level = ERROR
EOF
SOFTHSM2_CONF="$tmp/softhsm2.conf"
export SOFTHSM2_CONF

for l in "$label" "$other"; do
	softhsm2-util --init-token --free --label "$l" --pin "$pin" \
		--so-pin 12345678 >/dev/null || fail "softhsm2-util --init-token $l"
done

umask 077
printf '%s\n' "$pin" >"$tmp/pin"
chmod 600 "$tmp/pin"

# Objects in the token as SoftHSM itself sees them.
list_objects() {
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$label" \
		--login --pin "$pin" --list-objects 2>&1
}

# Runs the probe's open mode, which must fail; its stderr goes to $tmp/err.
open_fails() {
	if "$probe" "$1" "$2" "$3" open >"$tmp/out" 2>"$tmp/err"; then
		fail "backend opened with $*"
	fi
}

# $1 must appear in the error text.
err_has() {
	grep -qF -- "$1" "$tmp/err" || {
		cat "$tmp/err" >&2
		fail "error does not mention '$1'"
	}
}

# --- the full probe ---------------------------------------------------------
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" || fail "backend_probe"

list_objects >"$tmp/objects" || fail "pkcs11-tool --list-objects"
if grep -q 'probe-' "$tmp/objects"; then
	cat "$tmp/objects" >&2
	fail "task objects left in the token after the probe"
fi
ok "no probe objects left in the token (pkcs11-tool)"

# Positive control: the listing does see a key that is there, and destroy
# removes it as SoftHSM sees it.
keep="keep-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" generate "$keep" >/dev/null ||
	fail "generate $keep"
list_objects >"$tmp/objects"
n=$(grep -c "$keep" "$tmp/objects")
[ "$n" -ge 2 ] || {
	cat "$tmp/objects" >&2
	fail "pkcs11-tool does not show the private and public key of $keep"
}
grep -q 'Private Key Object' "$tmp/objects" || fail "no private key listed"
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" destroy "$keep" >/dev/null ||
	fail "destroy $keep"
list_objects >"$tmp/objects"
if grep -q "$keep" "$tmp/objects"; then
	fail "$keep still in the token after destroy"
fi
ok "generated key visible to pkcs11-tool, gone after destroy"

# --- error paths --------------------------------------------------------------
open_fails "$SOFTHSM_MODULE" nope "$tmp/pin"
err_has "no token labelled 'nope'"
err_has "$label"
err_has "$other"
ok "unknown token label named, with the labels found"

# A prefix of a label is not that label (labels are space-padded to 32).
open_fails "$SOFTHSM_MODULE" stint "$tmp/pin"
err_has "no token labelled 'stint'"
ok "label prefix does not match"

open_fails "$tmp/no-such-module.so" "$label" "$tmp/pin"
err_has "$tmp/no-such-module.so"
err_has "not found"
ok "missing module named"

notmod=$(ldd "$probe" | awk '/libcrypto/ { print $3; exit }')
if [ -n "$notmod" ] && [ -r "$notmod" ]; then
	open_fails "$notmod" "$label" "$tmp/pin"
	err_has "is not a PKCS#11 module"
	err_has "$notmod"
	ok "library without C_GetFunctionList refused"
else
	echo "note: no libcrypto path from ldd; not-a-module case skipped"
fi

if grep -q placeholder "$top_srcdir/attest/config.c" 2>/dev/null; then
	echo "note: attest/config.c not written yet; readable PIN file case skipped"
else
	printf '%s\n' "$pin" >"$tmp/pin-readable"
	chmod 640 "$tmp/pin-readable"
	open_fails "$SOFTHSM_MODULE" "$label" "$tmp/pin-readable"
	err_has "$tmp/pin-readable"
	ok "group-readable PIN file refused"
fi

open_fails "$SOFTHSM_MODULE" "$label" "$tmp/no-such-pin"
err_has "$tmp/no-such-pin"
ok "missing PIN file named"

printf '654321\n' >"$tmp/pin-wrong"
chmod 600 "$tmp/pin-wrong"
open_fails "$SOFTHSM_MODULE" "$label" "$tmp/pin-wrong"
err_has "wrong PIN in $tmp/pin-wrong"
if grep -q -e 654321 -e "$pin" "$tmp/err"; then
	fail "a PIN appears in the error text"
fi
ok "wrong PIN names the PIN file, shows no PIN"

# The right PIN still works afterwards (no lockout from one wrong try).
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" open >/dev/null ||
	fail "open with the right PIN after a wrong one"
ok "right PIN still opens"
exit 0
