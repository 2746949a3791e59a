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

# --- key pool -----------------------------------------------------------------
# Distinct pool ids in the token, and how many objects carry each label.
pool_ids() {
	list_objects | sed -n 's/^ *label: *\(pool-[0-9a-f]*\) *$/\1/p' | sort -u
}
label_count() {
	list_objects | grep -c "label: *$1 *\$"
}
hex() {
	printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}
# Each task key the probe printed is a private and a public object whose
# CKA_LABEL and CKA_ID are the task id.
task_keys_ok() {
	list_objects >"$tmp/objects"
	for id in $(sed -n 's/^key //p' "$1"); do
		n=$(grep -c "label: *$id *\$" "$tmp/objects")
		[ "$n" -eq 2 ] || fail "task key $id: $n objects labelled, not 2"
		n=$(grep -ci "ID: *$(hex "$id") *\$" "$tmp/objects")
		[ "$n" -eq 2 ] || fail "task key $id: $n objects with its CKA_ID, not 2"
	done
}

# key_pool = 2: one task key starts the refill thread, which fills the pool
# before close; the ready keys stay in the token.
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" pool 2 1 4000 >"$tmp/pool1" ||
	fail "pool run 1"
task_keys_ok "$tmp/pool1"
pool_ids >"$tmp/ids1"
[ "$(wc -l <"$tmp/ids1")" -eq 2 ] || {
	cat "$tmp/ids1" >&2
	fail "pool of 2 left $(wc -l <"$tmp/ids1") pool ids, not 2"
}
for id in $(cat "$tmp/ids1"); do
	[ "$(label_count "$id")" -eq 2 ] || fail "pool key $id is not one pair"
done
ok "refill thread filled a pool of 2; pool keys stay in the token after close"

# Reopen: the leftovers are adopted, neither destroyed nor duplicated.
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" open 2 >/dev/null ||
	fail "open with key_pool = 2"
pool_ids >"$tmp/ids1b"
cmp -s "$tmp/ids1" "$tmp/ids1b" || fail "pool keys changed across a reopen"
ok "reopen adopts the pool keys left by the previous run"

# Five task keys back to back: the two adopted pool keys are handed out
# (relabelled to task ids), each once; the rest are generated or refilled.
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" pool 2 5 4000 >"$tmp/pool2" ||
	fail "pool run 2"
grep '^ok pool' "$tmp/pool2"
task_keys_ok "$tmp/pool2"
pool_ids >"$tmp/ids2"
[ "$(wc -l <"$tmp/ids2")" -eq 2 ] || fail "pool not refilled to 2"
if [ -n "$(comm -12 "$tmp/ids1" "$tmp/ids2")" ]; then
	fail "an adopted pool key was not handed out to a task"
fi
n=$(list_objects | grep -c 'label: *t-pool-')
[ "$n" -eq 12 ] || fail "$n task key objects, not 12 (6 keys)"
ok "adopted pool keys became task keys (label and id = task id), pool refilled"

# Stale pool objects that fail the checks are destroyed at open: an RSA
# pair and a lone public EC key under pool ids.
bad1="pool-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
bad2="pool-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$label" --login \
	--pin "$pin" --keypairgen --key-type rsa:2048 --label "$bad1" \
	--id "$(hex "$bad1")" >/dev/null 2>&1 || fail "pkcs11-tool keypairgen rsa"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$label" --login \
	--pin "$pin" --keypairgen --key-type EC:prime256v1 --label "$bad2" \
	--id "$(hex "$bad2")" >/dev/null 2>&1 || fail "pkcs11-tool keypairgen ec"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$label" --login \
	--pin "$pin" --delete-object --type privkey --label "$bad2" \
	>/dev/null 2>&1 || fail "pkcs11-tool delete-object"
[ "$(label_count "$bad1")" -eq 2 ] && [ "$(label_count "$bad2")" -eq 1 ] ||
	fail "stale pool objects not made"
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" open 2 >/dev/null ||
	fail "open with stale pool objects"
[ "$(label_count "$bad1")" -eq 0 ] && [ "$(label_count "$bad2")" -eq 0 ] ||
	fail "stale pool objects survived an open"
pool_ids >"$tmp/ids2b"
cmp -s "$tmp/ids2" "$tmp/ids2b" || fail "good pool keys lost with the stale"
ok "pool objects failing the checks destroyed at open, good ones kept"

# key_pool = 0: generation still works, and leftover pool keys are removed.
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" pool 0 2 0 >"$tmp/pool3" ||
	fail "pool run with key_pool = 0"
task_keys_ok "$tmp/pool3"
[ -z "$(pool_ids)" ] || fail "pool keys left with key_pool = 0"
ok "key_pool = 0 generates task keys and removes leftover pool keys"

for id in $(sed -n 's/^key //p' "$tmp/pool1" "$tmp/pool2" "$tmp/pool3"); do
	"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" destroy "$id" \
		>/dev/null || fail "destroy $id"
done
if list_objects | grep -q -e 't-pool-' -e 'pool-'; then
	fail "pool test objects left in the token"
fi
ok "pool test keys destroyed"

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
