#!/bin/bash
# Issue 8 item 9: SoftHSM2's C_GenerateKeyPair occasionally fails with
# CKR_GENERAL_ERROR and leaves a key pair without CKA_ID and label; the
# start-up sweep selected keys by the shape of their id and never removed
# those. Now every key stintd makes for a task carries a marker
# (CKA_SUBJECT = DER "CN=stintd task key") and the sweep selects by it: a
# marked pair without id is destroyed and audited at the next start; keys
# without the marker (an operator's own, even one whose id looks like a task
# id) are never touched.
. "$(dirname "$0")/lib.sh"
[ "$STINT_TEST_BACKEND" = softhsm ] || skip "PKCS#11 only (the TPM backend keeps key blobs, see docs/architecture.md)"
stint_tmpdir
ok() { echo "ok $*"; }
ORPHAN_KEY=$top_builddir/tests/integration/orphan_key
[ -x "$ORPHAN_KEY" ] || skip "no $ORPHAN_KEY (make check builds it)"
stint_setup
agent_add alpha "$(id -u)"
live=$(task_start alpha --ttl 30m) || exit 1

okey()
{
	"$ORPHAN_KEY" "$SOFTHSM_MODULE" "$HSM_LABEL" "$HSM_PIN_FILE" "$@"
}

# stintd's own keys carry the marker.
okey list >"$T/list0" || fail "orphan_key list"
grep -qx "priv marked id=$live" "$T/list0" || { cat "$T/list0"; fail "task key $live has no marker"; }
# Its public half was a session object (docs/performance.md "Token size"):
# one token object per task key.
! grep -q "^pub .*id=$live\$" "$T/list0" || { cat "$T/list0"; fail "public key of $live is a token object"; }
grep -q "^priv plain id=stint-ca$" "$T/list0" || fail "the CA key carries the task-key marker"
ok "task keys carry the marker, the CA key does not"

stintd_stop
# What a failed generation leaves: a marked pair with neither id nor label.
okey make marked >/dev/null || fail "make a marked id-less pair"
okey make marked >/dev/null || fail "make a second marked id-less pair"
# An operator's own keys in the same token: no marker, no id; no marker and
# a task-shaped id; and one made by pkcs11-tool.
okey make plain >/dev/null || fail "make a plain id-less pair"
lookalike="t-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
okey make plain "$lookalike" >/dev/null || fail "make a plain pair with a task-shaped id"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$HSM_LABEL" --login \
	--pin "$HSM_PIN" --keypairgen --key-type EC:prime256v1 --id 6f70 \
	--label operator-key >/dev/null 2>&1 || fail "pkcs11-tool --keypairgen"
okey list >"$T/list1" || fail "orphan_key list"
[ "$(grep -c '^p[a-z]* marked id=$' "$T/list1")" -eq 4 ] || { cat "$T/list1"; fail "expected 4 marked id-less objects"; }

stintd_start
okey list >"$T/list2" || fail "orphan_key list after the restart"
[ "$(grep -c '^p[a-z]* marked id=$' "$T/list2")" -eq 0 ] || { cat "$T/list2"; fail "marked id-less keys survived the restart sweep"; }
grep -q "removed 4 keys that no live task owns\|removed [4-9] keys\|removed [1-9][0-9]* keys" "$STINTD_LOG" || fail "the sweep did not report the id-less keys"
after=$(grep -c '"reason":"orphan key without id, left by a failed key generation"' "$AUDIT_LOG")
[ "$after" -eq 4 ] || fail "expected 4 key-destroy records for id-less keys, got $after"
ok "marked keys without id destroyed at start, each audited"

# At least the operator's two: a loaded SoftHSM2 has been seen to leave an
# extra id-less, unmarked object behind a failed generation of its own.
[ "$(grep -c '^p[a-z]* plain id=$' "$T/list2")" -ge 2 ] || { cat "$T/list2"; fail "the operator's id-less pair was touched"; }
[ "$(grep -c "^p[a-z]* plain id=$lookalike\$" "$T/list2")" -eq 2 ] || fail "an unmarked key with a task-shaped id was touched"
softhsm_has_label operator-key || fail "the operator's pkcs11-tool key was touched"
backend_has_key "$live" || fail "the live task's key was destroyed"
ok "keys without the marker untouched (id-less, task-shaped id, pkcs11-tool); the live task's key kept"

stintd_stop
