#!/bin/bash
# nginx as a relying party (issue 3, section 5, test 2): Debian's nginx with
# the documented configuration (etc/nginx-stint.conf.example, only paths
# and ports replaced) requires a client certificate from the Stint CA and
# passes the verified certificate to an upstream, which extracts the
# SPIFFE ID and task id with `stint verify-peer`. curl with the task's
# pkcs11: URIs succeeds while the task is live; after `stint task end` a
# new connection fails.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] ||
	skip "nginx not installed (apt-get install nginx-light)"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
need_cmd openssl curl
engine_path >/dev/null || skip "libp11 engine not installed (libengine-pkcs11-openssl)"
EXAMPLE=$top_srcdir/etc/nginx-stint.conf.example
[ -f "$EXAMPLE" ] || fail "no $EXAMPLE"
stint_setup
agent_add alpha "$(id -u)"
TD=test.example

# Sanitizer builds: curl needs a setlocale shim (lib.sh, curl_env).
curl_env

N=$T/nginx
mkdir -p "$N/stint" "$N/logs" "$N/tmp"
tls_server_cert "$N/stint/server"
stint ca cert >"$N/stint/stint-ca.pem" || fail "stint ca cert"

# --- the upstream: extracts the agent's identity with stint verify-peer -----
UP_PORT=$(free_port)
cat >"$T/upstream.py" <<'EOF'
import http.server, json, os, subprocess, sys, tempfile, urllib.parse

STINT, BUNDLE, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        pem = urllib.parse.unquote(self.headers.get("X-Stint-Cert", ""))
        out = {"verify": self.headers.get("X-Stint-Verify", ""),
               "subject": self.headers.get("X-Stint-Subject", ""),
               "serial": self.headers.get("X-Stint-Serial", "")}
        code = 403
        if out["verify"] == "SUCCESS" and pem:
            with tempfile.NamedTemporaryFile("w", suffix=".pem") as f:
                f.write(pem)
                f.flush()
                p = subprocess.run([STINT, "verify-peer", f.name, "--ca",
                                    BUNDLE, "--json"], capture_output=True,
                                   text=True)
            if p.returncode == 0:
                out["peer"] = json.loads(p.stdout)
                code = 200
            else:
                out["error"] = p.stdout + p.stderr
        body = json.dumps(out).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.HTTPServer(("127.0.0.1", PORT), H).serve_forever()
EOF
"$PYTHON" "$T/upstream.py" "$STINT" "$N/stint/stint-ca.pem" "$UP_PORT" \
	>"$T/upstream.log" 2>&1 &
bg_track $!

# --- nginx with the documented server block -------------------------------------
PORT=$(free_port)
sed -e "s|/etc/nginx/stint/|$N/stint/|g" \
	-e "s|127.0.0.1:8443|127.0.0.1:$PORT|" \
	-e "s|http://127.0.0.1:8080|http://127.0.0.1:$UP_PORT|" \
	"$EXAMPLE" >"$N/stint.conf"
# Everything the example does not change must be identical.
diff <(sed -e "s|$N/stint/|/etc/nginx/stint/|g" -e "s|:$PORT |:8443 |" \
	-e "s|:$UP_PORT;|:8080;|" "$N/stint.conf") "$EXAMPLE" >/dev/null ||
	fail "the test's nginx config differs from the example beyond paths and ports"
user=
[ "$(id -u)" -eq 0 ] && user="user root;"
cat >"$N/nginx.conf" <<EOF
$user
worker_processes 1;
pid $N/nginx.pid;
error_log $N/logs/error.log info;
events { worker_connections 64; }
http {
	access_log $N/logs/access.log;
	client_body_temp_path $N/tmp/body;
	proxy_temp_path $N/tmp/proxy;
	fastcgi_temp_path $N/tmp/fastcgi;
	uwsgi_temp_path $N/tmp/uwsgi;
	scgi_temp_path $N/tmp/scgi;
	include $N/stint.conf;
}
EOF
"$NGINX" -t -p "$N/" -e "$N/logs/error.log" -c "$N/nginx.conf" >"$T/nginx-t.log" 2>&1 ||
	{ cat "$T/nginx-t.log"; fail "nginx -t refused the documented configuration"; }
"$NGINX" -p "$N/" -e "$N/logs/error.log" -c "$N/nginx.conf" -g 'daemon off;' \
	>"$T/nginx.out" 2>&1 &
bg_track $!
wait_for 10 curl -sk -o /dev/null "https://127.0.0.1:$PORT/" ||
	{ cat "$T/nginx.out" "$N/logs/error.log"; fail "nginx did not listen on $PORT"; }
wait_for 10 curl -s -o /dev/null "http://127.0.0.1:$UP_PORT/" ||
	{ cat "$T/upstream.log"; fail "the upstream did not listen on $UP_PORT"; }

agent_curl()
{
	local task=$1

	timeout 60 "${CURL_ENV[@]}" PKCS11_MODULE_PATH="$STINT_MODULE" \
		curl -sS -f --cacert "$N/stint/server.pem" \
		--cert "pkcs11:token=alpha;object=$task;type=cert" \
		--key "pkcs11:token=alpha;object=$task;type=private" \
		"https://127.0.0.1:$PORT/" </dev/null
}

# Without a client certificate nginx answers 400, never the upstream.
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$N/stint/server.pem" \
	"https://127.0.0.1:$PORT/")
[ "$code" = 400 ] || fail "nginx answered $code to a client without a certificate"

id=$(task_start alpha --ttl 10m) || exit 1
agent_curl "$id" >"$T/resp" 2>"$T/err" ||
	{ cat "$T/err" "$T/resp" "$N/logs/error.log"; fail "curl through nginx failed"; }
[ "$(json_get verify <"$T/resp")" = SUCCESS ] || { cat "$T/resp"; fail "ssl_client_verify"; }
[ "$(json_get subject <"$T/resp")" = CN=alpha ] || { cat "$T/resp"; fail "ssl_client_s_dn"; }
[ "$(json_get peer.spiffe_id <"$T/resp")" = "spiffe://$TD/agent/alpha" ] ||
	{ cat "$T/resp"; fail "the upstream did not get the SPIFFE ID"; }
[ "$(json_get peer.task <"$T/resp")" = "$id" ] ||
	{ cat "$T/resp"; fail "the upstream did not get the task id"; }
serial=$(stint task show "$id" --cert | openssl x509 -noout -serial | cut -d= -f2)
[ "$(json_get serial <"$T/resp")" = "$serial" ] || fail "ssl_client_serial"
note "nginx passed $(json_get peer.spiffe_id <"$T/resp") task $id upstream"

# The OpenSSL 3 provider path (pkcs11-provider, issue 11) to the same
# nginx: s_client with the task key by URI. The provider is loaded early
# from a config file (provider.sh says why); not in sanitizer builds
# (pkcs11-provider's RTLD_DEEPBIND).
modules=$(openssl version -m | sed -n 's/^MODULESDIR: "\(.*\)"$/\1/p')
if [ -f "$modules/pkcs11.so" ] && [ "$STINT_SANITIZERS" != yes ]; then
	printf '%s\n' 'openssl_conf = openssl_init' '[openssl_init]' \
		'providers = provider_sect' '[provider_sect]' 'default = default_sect' \
		'pkcs11 = pkcs11_sect' '[default_sect]' 'activate = 1' '[pkcs11_sect]' \
		"module = $modules/pkcs11.so" 'pkcs11-module-load-behavior = early' \
		'activate = 1' >"$T/provider.cnf"
	stint task show "$id" --cert >"$T/leaf.pem"
	printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' |
		OPENSSL_CONF=$T/provider.cnf PKCS11_PROVIDER_MODULE=$STINT_MODULE \
			timeout 60 openssl s_client -provider pkcs11 -provider default \
			-connect "127.0.0.1:$PORT" -CAfile "$N/stint/server.pem" \
			-verify_return_error -cert "$T/leaf.pem" \
			-key "pkcs11:token=alpha;object=$id;type=private" -ign_eof -quiet \
			>"$T/presp" 2>"$T/perr" ||
		{ cat "$T/perr" "$T/presp"; fail "s_client through pkcs11-provider to nginx failed"; }
	grep -q "^HTTP/1.1 200" "$T/presp" || { cat "$T/presp"; fail "provider s_client: no 200 from nginx"; }
	grep -q "\"task\": \"$id\"" "$T/presp" ||
		{ cat "$T/presp"; fail "provider s_client: the upstream did not get the task id"; }
	note "pkcs11-provider s_client through nginx: task $id upstream"
else
	note "pkcs11-provider not installed or sanitizer build: provider half skipped"
fi

# A certificate from another CA is refused by nginx itself.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$T/rogue.key" -out "$T/rogue.pem" -days 1 -subj "/CN=alpha" \
	2>/dev/null || fail "rogue cert"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$N/stint/server.pem" \
	--cert "$T/rogue.pem" --key "$T/rogue.key" "https://127.0.0.1:$PORT/")
[ "$code" = 400 ] || fail "nginx answered $code to a certificate from another CA"

stint task end "$id" >/dev/null || fail "stint task end"
if agent_curl "$id" >"$T/resp" 2>"$T/err"; then
	cat "$T/resp"
	fail "a new connection succeeded after task end"
fi
note "after task end: $(head -1 "$T/err")"
stintd_stop
exit 0
