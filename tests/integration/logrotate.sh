#!/bin/bash
# The logrotate snippet Stint installs (etc/logrotate.d/stint, issue 13:
# log rotation without a stop), run by a real logrotate with only the log's
# path changed: each forced rotation renames the log, its postrotate
# `stint audit rotate` makes stintd continue the chain in a new file, and
# after two rotations (the older one compressed by delaycompress) the
# files, oldest first, verify as one chain, as the snippet's comment says.
# Signing goes on throughout; stintd never stops.
. "$(dirname "$0")/lib.sh"
need_cmd logrotate gzip
stint_tmpdir
need_p11client
SNIPPET=$top_srcdir/etc/logrotate.d/stint
[ -f "$SNIPPET" ] || fail "no $SNIPPET"
stint_setup
agent_add alpha "$(id -u)"
head -c 32 /dev/urandom >"$T/digest"
t=$(task_start alpha --ttl 10m) || exit 1
sign()
{
	p11client --token alpha --label "$t" --mech ecdsa --in "$T/digest" --count 3 >/dev/null 2>&1 ||
		fail "signing with $t"
}

# The snippet's postrotate runs `stint` from PATH as root: here a stint
# that talks to this test's admin.sock.
mkdir -m 0755 "$T/bin"
printf '#!/bin/sh\nexec %s --socket %s "$@"\n' "$STINT" "$T/run/admin.sock" >"$T/bin/stint"
chmod 0755 "$T/bin/stint"
sed "s|^/var/lib/stint/audit.log {|$AUDIT_LOG {|" "$SNIPPET" >"$T/logrotate.conf"
chmod 0644 "$T/logrotate.conf"
diff <(sed "s|^$AUDIT_LOG {|/var/lib/stint/audit.log {|" "$T/logrotate.conf") "$SNIPPET" >/dev/null ||
	fail "the test's logrotate config differs from the snippet beyond the path"
grep -q "^$AUDIT_LOG {" "$T/logrotate.conf" || fail "the snippet names no /var/lib/stint/audit.log"

rotate()
{
	PATH=$T/bin:$PATH logrotate -f -s "$T/logrotate.state" "$T/logrotate.conf" \
		>"$T/logrotate.out" 2>&1 || { cat "$T/logrotate.out"; fail "logrotate failed"; }
	[ ! -s "$T/logrotate.out" ] || { cat "$T/logrotate.out"; fail "logrotate complained"; }
}
first_is_link()
{
	head -n 1 "$AUDIT_LOG" 2>/dev/null | grep -q '"event":"audit-rotate"'
}

sign
rotate
[ -f "$AUDIT_LOG.1" ] || fail "logrotate made no $AUDIT_LOG.1"
first_is_link || { head -n 1 "$AUDIT_LOG"; fail "the new log does not start with an audit-rotate record"; }
grep -q 'continues audit.log.1: seq=' "$AUDIT_LOG" || { head -n 1 "$AUDIT_LOG"; fail "the link record does not name audit.log.1"; }
tail -n 1 "$AUDIT_LOG.1" | grep -q '"audit-checkpoint"' || fail "the rotated file does not end with a checkpoint"
stintd_alive || fail "stintd died during rotation"
sign
rotate
[ -f "$AUDIT_LOG.2.gz" ] || { ls -l "$T/state"; fail "delaycompress: no $AUDIT_LOG.2.gz after the second rotation"; }
[ -f "$AUDIT_LOG.1" ] || fail "no uncompressed $AUDIT_LOG.1 after the second rotation"
first_is_link || fail "no audit-rotate record after the second rotation"
sign
stint audit verify >"$T/out" 2>&1 || { cat "$T/out"; fail "online verify after two rotations"; }
[ "$(audit_count "$t" sign-allowed)" -eq 3 ] || fail "the live log lacks the last 3 signatures"
stint ca attestation-key >"$T/ak.pem" || fail "stint ca attestation-key"
stintd_stop

# Oldest first, as the snippet's comment says (the compressed one unpacked).
gzip -dc "$AUDIT_LOG.2.gz" >"$T/audit.log.2"
"$STINT" audit verify "$T/audit.log.2" "$AUDIT_LOG.1" "$AUDIT_LOG" \
	--attestation-key "$T/ak.pem" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "the logrotated files do not verify as one chain"; }
cat "$T/out"
total=$(($(wc -l <"$T/audit.log.2") + $(wc -l <"$AUDIT_LOG.1") + $(wc -l <"$AUDIT_LOG")))
grep -q "OK: $total records" "$T/out" || fail "verify did not count all $total records"
signed=$(cat "$T/audit.log.2" "$AUDIT_LOG.1" "$AUDIT_LOG" | grep -c "\"event\":\"sign-allowed\".*\"task\":\"$t\"")
[ "$signed" -eq 9 ] || fail "$signed sign-allowed records across the files, expected 9"
! "$STINT" audit verify "$AUDIT_LOG.1" "$T/audit.log.2" "$AUDIT_LOG" >/dev/null 2>&1 ||
	fail "the files verified out of order"
note "logrotate twice (delaycompress): 3 files, $total records, one chain"
exit 0
