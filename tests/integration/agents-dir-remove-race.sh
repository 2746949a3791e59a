#!/bin/bash
# Issue 15 (prov): a removed agents.d file ends the agent's tasks with
# signers running: four processes sign with the agent's task key while its
# file is removed and `stint reload` runs. Zero signatures are made with a
# request sent after the reload returned, the task is ended and its key
# destroyed, the agent is gone; another file's agent keeps signing.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv
stint_tmpdir
backend_init
stintd_config
AD=$T/agents.d
mkdir -m 0755 "$AD"
GONE=62701 STAY=62702
printf '[agent stay]\nuid = %s\n' $STAY >"$AD/stay.conf"
stintd_start
p11_env
need_p11client
mkdir -m 0755 "$T/bin"
cp "$STINT_MODULE" "$P11CLIENT" "$T/bin/"
chmod 0755 "$T/bin"/*
MOD=$T/bin/$(basename "$STINT_MODULE")
head -c 32 /dev/urandom >"$T/digest"
chmod 0644 "$T/digest"
clients=4
keep=$(task_start stay --ttl 30m)
for round in 1 2; do
	printf '[agent gone]\nuid = %s\n' $GONE >"$AD/gone.conf"
	stint reload >"$T/add.out" 2>&1 || { cat "$T/add.out"; fail "round $round: reload adding gone"; }
	t=$(task_start gone --ttl 30m)
	marker=$T/reloaded.$round
	pids=()
	for ((k = 0; k < clients; k++)); do
		as_uid $GONE "$T/bin/p11client" --module "$MOD" --token gone --label "$t" \
			--mech ecdsa --in "$T/digest" --until-refused --after-file "$marker" \
			--seconds 60 >"$T/race.$round.$k.out" 2>&1 &
		pids+=($!)
		bg_track $!
	done
	sleep 1.5
	for p in "${pids[@]}"; do
		kill -0 "$p" 2>/dev/null || { cat "$T"/race.$round.*.out; fail "a signer stopped before the reload"; }
	done
	rm "$AD/gone.conf"
	stint reload >"$T/reload.out" 2>&1 || { cat "$T/reload.out"; fail "round $round: reload under load"; }
	touch "$marker"
	for ((k = 0; k < clients; k++)); do
		wait "${pids[$k]}"
		out=$T/race.$round.$k.out
		ok=$(sed -n 's/^after_marker_ok=//p' "$out")
		[ -n "$ok" ] || { cat "$out"; fail "signer $k did not report after_marker_ok"; }
		[ "$ok" -eq 0 ] || { cat "$out"; fail "round $round: signer $k got $ok signatures after the reload returned"; }
	done
	before=$(audit_count "$t" sign-allowed)
	[ "$before" -gt 0 ] || fail "round $round: no signature before the reload (no race)"
	[ "$(stint task show "$t" --json | json_get state)" != live ] || fail "round $round: task $t live"
	backend_has_key "$t" && fail "round $round: key of $t left after the reload returned"
	stint agent list --json | grep -q '"gone"' && fail "round $round: agent gone still listed"
	note "round $round: $before signatures before the file was removed, 0 after the reload returned"
done
[ "$(stint task show "$keep" --json | json_get state)" = live ] || fail "the other file's task was ended"
as_uid $STAY "$T/bin/p11client" --module "$MOD" --token stay --label "$keep" --mech ecdsa \
	--in "$T/digest" --count 1 >"$T/keep.out" 2>&1 || { cat "$T/keep.out"; fail "the other agent cannot sign"; }
stintd_stop
note "removed agents.d file: zero signatures after stint reload returned, with $clients signers running"
