#!/bin/bash
# The Stint demo: one task key, from birth to death, with an unmodified
# OpenSSL as the agent. Run it through ci/demo.sh (which installs packages
# and builds first), or by hand on a built tree:
#	top_builddir=/path/to/build tests/demo.sh
#
# Everything happens in a temporary directory that is removed at the end:
# a SoftHSM2 token, stintd's config, state, sockets and audit log.
. "$(dirname "$0")/integration/lib.sh"
TEST_NAME=demo
need_cmd openssl softhsm2-util curl
stint_tmpdir
# stint run makes each run's cgroup under this parent (removed at the end);
# with no writable cgroup v2 it binds the run's task to the command's pid.
CG2=$(findmnt -n -t cgroup2 -o TARGET 2>/dev/null | head -n 1)
RUN_PARENT=/stint-demo-$$
trap 'rc=$?; [ -n "$CG2" ] && rmdir "$CG2$RUN_PARENT" 2>/dev/null; (exit $rc); _cleanup' EXIT

say()
{
	if [ -t 1 ]; then
		printf '\n\033[1m== %s\033[0m\n' "$*"
	else
		printf '\n== %s\n' "$*"
	fi
}

# Prints "$ CMD ARGS", quoting arguments with spaces.
show()
{
	local a line='$'

	for a in "$@"; do
		case $a in
		*' '*) line="$line '$a'" ;;
		*) line="$line $a" ;;
		esac
	done
	# On stderr, so that piping a command's output captures only that.
	echo "$line" >&2
}

# Shows a command, then runs it.
run()
{
	show "$@"
	"$@"
}

# The same for the stint CLI (shown without the --socket of this demo).
run_stint()
{
	show stint "$@"
	stint "$@"
}

say "A SoftHSM2 token and stintd, in $T"
softhsm_token stint
stintd_config default_ttl=10m
printf '\n[run]\ncgroup_parent = %s\n' "$RUN_PARENT" >>"$STINTD_CONF"
cat "$STINTD_CONF"
stintd_start
p11_env
echo "stintd is running (pid $STINTD_PID)"

me=$(id -u)
say "Register agent 'demo' for uid $me (the platform team does this once)"
run_stint agent add demo --uid "$me" --max-ttl 30m ||
	fail "agent add"

say "Start a task (the orchestrator does this per task)"
run_stint task start --agent demo --ttl 10m --intent "demo: sign one digest" \
	--json | tee "$T/task.json" || fail "task start"
task=$(json_get id <"$T/task.json")
uri=$(json_get uri <"$T/task.json")
deadline=$(json_get not_after <"$T/task.json")

say "The agent signs with the task key: OpenSSL + libp11 engine, no PIN"
head -c 256 /dev/urandom >"$T/request"
openssl dgst -sha256 -binary -out "$T/digest" "$T/request"
echo "(OPENSSL_CONF enables the libp11 engine with MODULE_PATH=stint-pkcs11.so;"
echo " the module finds stintd at STINT_SOCKET=$STINT_SOCKET)"
printf "\$ openssl pkeyutl -engine pkcs11 -keyform engine -sign -inkey '%s' -in digest -out sig\n" "$uri"
engine_openssl pkeyutl -engine pkcs11 -keyform engine -sign -inkey "$uri" \
	-in "$T/digest" -out "$T/sig" </dev/null 2>"$T/engine.err" ||
	{ cat "$T/engine.err"; fail "the engine could not sign"; }
echo "signature: $(stat -c %s "$T/sig") bytes"

say "Anyone can verify it with the task's public key"
run_stint task show "$task" --pem | tee "$T/pub.pem" ||
	fail "task show --pem"
run openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" -in "$T/digest" \
	-sigfile "$T/sig" || fail "the signature does not verify"

say "The agent calls a TLS server that requires client certificates: stint run + curl"
# The server: a throwaway key and certificate, made without the engine; it
# trusts only the Stint CA bundle and refuses clients without a certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$T/srv.key" -out "$T/srv.pem" -days 1 -subj "/CN=localhost" \
	-addext "subjectAltName=IP:127.0.0.1" 2>/dev/null ||
	fail "cannot make the server certificate"
run_stint ca cert >"$T/bundle.pem" || fail "stint ca cert"
echo "(the trust bundle relying parties configure: $(grep -c 'BEGIN CERT' "$T/bundle.pem") certificate(s))"
PORT=$(free_port)
openssl s_server -accept "127.0.0.1:$PORT" -cert "$T/srv.pem" \
	-key "$T/srv.key" -CAfile "$T/bundle.pem" -Verify 1 \
	-verify_return_error -www </dev/null >"$T/s_server.log" 2>&1 &
bg_track $!
for ((i = 0; i < 100; i++)); do
	curl -sk -o /dev/null "https://127.0.0.1:$PORT/" 2>/dev/null
	[ $? -ne 7 ] && break
	sleep 0.1
done
echo "openssl s_server on 127.0.0.1:$PORT (-Verify 1 -verify_return_error)"
echo "(stint run starts a task of its own, bound to a fresh cgroup with curl in it,"
echo " and gives curl STINT_KEY_URI and STINT_CERT_URI; PKCS11_MODULE_PATH names"
echo " stint-pkcs11.so for curl's libp11 engine)"
curl_env
cd "$T" || fail "cd $T"
mtls='curl -sS --cacert srv.pem --cert "$STINT_CERT_URI" --key "$STINT_KEY_URI" https://127.0.0.1:'$PORT/
show stint run --agent demo --ttl 10m --intent "demo: call the API" -- sh -c "$mtls"
timeout 60 "$STINT" --socket "$T/run/admin.sock" run --agent demo --ttl 10m \
	--intent "demo: call the API" -- "${CURL_ENV[@]}" \
	PKCS11_MODULE_PATH="$STINT_MODULE" sh -c "$mtls" \
	</dev/null >"$T/page" 2>"$T/curl.err" ||
	{ cat "$T/curl.err" "$T/s_server.log"; fail "curl in stint run could not authenticate"; }
cd - >/dev/null || fail "cd back"
grep -m1 -E "^ *Protocol *:" "$T/page" | sed 's/^ */server: /'
# What the server saw, checked as a relying party would.
sed -n '/^-----BEGIN CERTIFICATE-----/,/^-----END CERTIFICATE-----/p' \
	"$T/page" | sed -n '1,/^-----END/p' >"$T/client.pem"
[ -s "$T/client.pem" ] || { cat "$T/page"; fail "the server saw no client certificate"; }
run_stint verify-peer "$T/client.pem" --ca "$T/bundle.pem" --json |
	tee "$T/peer.json" || fail "verify-peer"
spiffe=$(json_get spiffe_id <"$T/peer.json") || fail "verify-peer gave no SPIFFE ID"
run_task=$(json_get task <"$T/peer.json") || fail "verify-peer gave no task"
binding=$(json_get binding.kind <"$T/peer.json") || fail "the run's certificate records no binding"
[ "$binding" = cgroup ] && binding="cgroup $(json_get binding.cgroup <"$T/peer.json")"
expires=$(openssl x509 -noout -enddate -in "$T/client.pem" | cut -d= -f2)
run_uri=${uri/$task/$run_task}

say "curl exited, so the run's task ended by itself: its key is destroyed"
run_stint task show "$run_task" --json >"$T/run_task.json" || fail "task show $run_task"
[ "$(json_get state <"$T/run_task.json")" = ended ] ||
	{ cat "$T/run_task.json"; fail "the run's task did not end when curl exited"; }
echo "task $run_task: $(json_get state <"$T/run_task.json") ($(json_get reason <"$T/run_task.json"))"

say "The orchestrator ends the first task: its key is destroyed"
run_stint task end "$task" --reason "demo done" ||
	fail "task end"

say "The next signature, and curl with the run's ended key, are refused"
printf "\$ openssl pkeyutl -engine pkcs11 -keyform engine -sign -inkey '%s' ...\n" "$uri"
if engine_openssl pkeyutl -engine pkcs11 -keyform engine -sign -inkey "$uri" \
	-in "$T/digest" -out "$T/sig2" </dev/null >"$T/refused.out" 2>&1; then
	fail "a signature was produced after the task ended"
fi
refused=$(grep -m1 -iE 'error|fail|not found|cannot' "$T/refused.out" || head -n 1 "$T/refused.out")
echo "openssl failed: $refused"
printf '$ curl ... --key "%s;type=private" https://127.0.0.1:%s/    # the ended run'"'"'s key\n' "$run_uri" "$PORT"
if timeout 60 "${CURL_ENV[@]}" PKCS11_MODULE_PATH="$STINT_MODULE" \
	curl -sS --cacert "$T/srv.pem" --cert "$run_uri;type=cert" \
	--key "$run_uri;type=private" "https://127.0.0.1:$PORT/" \
	</dev/null >"$T/page2" 2>"$T/curl2.err"; then
	fail "curl authenticated with an ended task's key"
fi
echo "curl failed: $(head -n 1 "$T/curl2.err")"
echo "(the key is gone from the token; a process still holding its handle gets"
echo " CKR_KEY_FUNCTION_NOT_PERMITTED from stintd, see tests/integration/30-revoke.sh)"

say "The audit log: every step, hash-chained"
printf '$ stint audit tail -n 30    # JSON lines; here one line per record:\n'
stint audit tail -n 30 >"$T/tail" || fail "audit tail"
python3 - "$T/tail" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    peer = r.get("peer", {})
    print("  #%-3s %-13s %-6s %-36s %s" % (r["seq"], r["event"], r.get("agent", ""),
          r.get("task", ""), peer.get("exe", "")))
PY
run_stint audit verify >"$T/verify.out" ||
	{ cat "$T/verify.out"; fail "audit verify"; }
cat "$T/verify.out"
records=$(wc -l <"$AUDIT_LOG")
allowed=$(($(audit_count "$task" sign-allowed) + $(audit_count "$run_task" sign-allowed)))

stintd_stop

say "What happened"
cat <<EOF
1. Created a SoftHSM2 token and started stintd on it; only stintd knows the
   token PIN.
2. Registered agent 'demo' for uid $me: processes of that uid see a PKCS#11
   token named 'demo' through stint-pkcs11.so, with no PIN.
3. Started task $task (EC P-256, until $deadline);
   stintd generated its key inside the token (not extractable).
   Before issuing it a certificate, stintd had the host attestation key sign
   evidence of the key's attributes and verified it; the certificate
   expires with the task ($expires).
4. OpenSSL signed through the libp11 engine with $uri;
   the signature verified with the task's public key.
5. 'stint run' started task $run_task for curl,
   bound to $binding; curl, given only \$STINT_CERT_URI and
   \$STINT_KEY_URI, did mutual TLS with a server trusting the Stint CA, which
   saw $spiffe; the certificate records the binding.
   When curl exited, the run's task ended and its key was destroyed.
6. Ended task $task: stintd destroyed the key; its next signature, and a
   TLS connection with the run's ended key, were refused.
7. The audit log ($records records, hash-chained, $allowed signature(s)) verified
   with 'stint audit verify'.
EOF
