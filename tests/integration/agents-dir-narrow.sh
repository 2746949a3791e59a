#!/bin/bash
# Issue 15 (prov): narrowing an agent in agents.d applies at once to its
# live tasks. After SIGHUP, a task the new definition would not allow (TTL
# above the new max_ttl, a mechanism no longer allowed, an audience no
# longer declared, a changed uid) is ended, audited with the reason, and
# cannot sign; a task the new definition allows stays live and signs.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
stint_tmpdir
agents_dir_init
cat >"$AD/ci.conf" <<'EOF2'
[agent ci]
uid = 62301
max_ttl = 1h
mechanisms = ecdsa, rsa-pkcs
audiences = a, b

[agent mover]
uid = 62302
EOF2
stintd_start
signer_setup
# rsa-pkcs signs a DigestInfo (the TPM accepts nothing else): SHA-256's.
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; cat "$T/digest"; } >"$T/digestinfo"
chmod 0644 "$T/digest" "$T/digestinfo"
sign_as()
{
	local in=$T/digest

	[ "$4" = rsa-pkcs ] && in=$T/digestinfo
	as_uid "$1" "$T/bin/p11client" --module "$T/bin/$(basename "$STINT_MODULE")" \
		--token "$2" --label "$3" --mech "$4" --in "$in" --count 1 >"$T/sign.out" 2>&1
}
state() { stint task show "$1" --json | json_get state; }
ended() { [ "$(state "$1")" != live ]; }

long=$(task_start ci --ttl 30m --audience a)      # TTL: ended
keep=$(task_start ci --ttl 5m --audience a)       # allowed: stays
audb=$(task_start ci --ttl 5m --audience b)       # audience b: ended
rsa=$(task_start ci --ttl 5m --audience a --key rsa-2048) # rsa-pkcs: ended
mover=$(task_start mover --ttl 5m)                # uid changed: ended
for t in "$long" "$keep" "$audb"; do
	sign_as 62301 ci "$t" ecdsa || { cat "$T/sign.out"; fail "task $t cannot sign before the reload"; }
done
sign_as 62301 ci "$rsa" rsa-pkcs || { cat "$T/sign.out"; fail "rsa task cannot sign before"; }

cat >"$AD/ci.conf" <<'EOF2'
[agent ci]
uid = 62301
max_ttl = 10m
mechanisms = ecdsa
audiences = a

[agent mover]
uid = 62303
EOF2
kill -HUP "$STINTD_PID"
wait_for 10 ended "$mover" || fail "mover's task still live after the uid changed"
for t in "$long" "$audb" "$rsa"; do
	wait_for 10 ended "$t" || fail "task $t still live after narrowing"
done
[ "$(state "$keep")" = live ] || fail "the task the new definition allows was ended"
sign_as 62301 ci "$keep" ecdsa || { cat "$T/sign.out"; fail "unaffected task cannot sign"; }
sign_as 62301 ci "$long" ecdsa && fail "task above the new max_ttl still signs"
sign_as 62301 ci "$audb" ecdsa && fail "task for a removed audience still signs"
sign_as 62301 ci "$rsa" rsa-pkcs && fail "task with a removed mechanism still signs"

reason() { stint task show "$1" --json | json_get reason; }
reason "$long" | grep -q "task TTL 1[78][0-9][0-9]s above max_ttl 600s" || fail "TTL reason: $(reason "$long")"
reason "$audb" | grep -q "audience b no longer allowed" || fail "audience reason: $(reason "$audb")"
reason "$rsa" | grep -q "mechanism rsa-pkcs no longer allowed" || fail "mechanism reason: $(reason "$rsa")"
reason "$mover" | grep -q "its uid changed" || fail "uid reason: $(reason "$mover")"
"$PYTHON" - "$AUDIT_LOG" "$long" <<'PY' || fail "no task-end audit record with the reason"
import glob, json, sys
for p in glob.glob(sys.argv[1] + "*"):
    for line in open(p, "rb"):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("event") == "task-end" and r.get("task") == sys.argv[2] and \
                "above max_ttl" in json.dumps(r):
            sys.exit(0)
sys.exit(1)
PY
stintd_stop
note "narrowing: TTL, mechanism, audience and uid changes end the tasks they forbid; others sign"
