#!/bin/bash
# Java (issue 11, docs/clients.md): SunPKCS11 configured with
# stint-pkcs11.so loads the KeyStore with no password, finds the task's key
# and certificate under the task id, and signs (EC and RSA; verified with
# the certificate by another provider); after `stint task end` the key is
# gone from the KeyStore.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd java
[ "$STINT_SANITIZERS" = yes ] &&
	skip "sanitizer build: the JVM does not run with the ASan runtime preloaded"
stint_setup
agent_add alpha "$(id -u)"
printf '%s\n' "name = Stint" "library = $STINT_MODULE" "slotListIndex = 0" >"$T/stint.cfg"

java_sign()
{
	timeout 120 java "$top_srcdir/tests/integration/JavaSign.java" "$T/stint.cfg" "$1" </dev/null
}

for key in ec-p256 rsa-2048; do
	id=$(task_start alpha --key "$key" --ttl 10m)
	java_sign "$id" >"$T/out" 2>&1 || { cat "$T/out"; fail "$key: SunPKCS11 could not sign"; }
	grep -qx verified "$T/out" || { cat "$T/out"; fail "$key: no verified signature"; }
	[ "$(audit_count "$id" sign-allowed)" -ge 1 ] || fail "$key: no sign-allowed record"
	note "$key: SunPKCS11 KeyStore.load(null, null), signed and verified"
done
stint task end "$id" >/dev/null || fail "stint task end"
java_sign "$id" >"$T/out" 2>&1
rc=$?
[ "$rc" -eq 3 ] || { cat "$T/out"; fail "after task end: exit $rc, expected no key (3)"; }
note "after task end the KeyStore has no entry $id"
exit 0
