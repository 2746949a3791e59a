#!/bin/bash
# Integration test 2: an unmodified OpenSSL with the libp11 engine signs with
# the task key named by its pkcs11: URI, with no PIN configured anywhere, and
# the signature verifies in a process without the engine.
. "$(dirname "$0")/lib.sh"
need_cmd openssl
stint_tmpdir
stint_setup
agent_add alpha "$(id -u)"

head -c 4096 /dev/urandom >"$T/data"
openssl dgst -sha256 -binary "$T/data" >"$T/digest"
head -c 32 /dev/urandom >"$T/other-digest"

for key in ec-p256 rsa-2048; do
	id=$(task_start alpha --key "$key" --ttl 10m) || exit 1
	uri=$(stint task show "$id" --json | json_get uri) || fail "task show $id --json"
	[ "$uri" = "pkcs11:token=alpha;object=$id" ] ||
		fail "task show gives uri '$uri', expected pkcs11:token=alpha;object=$id"
	note "$key: $uri"

	opts=()
	[ "$key" = rsa-2048 ] && opts=(-pkeyopt digest:sha256)

	# No PIN in the URI, the config or the environment; stdin closed so a
	# PIN prompt would fail instead of hanging.
	env >"$T/env"
	cut -d= -f1 "$T/env" | grep 'PIN' && fail "a PIN variable is set in the environment"
	grep -Eiq '^[[:space:]]*pin' "$T/engine-openssl.cnf" 2>/dev/null && fail "engine config mentions a PIN"
	rm -f "$T/sig"
	engine_openssl pkeyutl -engine pkcs11 -keyform engine -sign \
		-inkey "$uri" "${opts[@]}" -in "$T/digest" -out "$T/sig" \
		</dev/null >"$T/engine.out" 2>&1 ||
		{ cat "$T/engine.out"; fail "$key: the libp11 engine could not sign"; }
	grep -q 'PIN' "$T/engine.out" && { cat "$T/engine.out"; fail "$key: the engine asked for a PIN"; }
	[ -s "$T/sig" ] || fail "$key: empty signature"

	# Verified in a process without the engine, with the task's public key.
	stint task show "$id" --pem >"$T/pub.pem" || fail "$key: task show --pem"
	openssl pkey -pubin -in "$T/pub.pem" -noout || fail "$key: task show --pem is no public key"
	openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" "${opts[@]}" \
		-in "$T/digest" -sigfile "$T/sig" >/dev/null ||
		fail "$key: the engine's signature does not verify"
	! openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" "${opts[@]}" \
		-in "$T/other-digest" -sigfile "$T/sig" >/dev/null 2>&1 ||
		fail "$key: the signature verified for another digest"
	[ "$(audit_count "$id" sign-allowed)" -ge 1 ] ||
		fail "$key: no sign-allowed audit record for $id"
done

stintd_stop
note "libp11 engine signed with ec-p256 and rsa-2048 task keys, no PIN"
