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
agents_dir_init
GONE=62701 STAY=62702
printf '[agent stay]\nuid = %s\n' $STAY >"$AD/stay.conf"
stintd_start
signer_setup
clients=4
keep=$(task_start stay --ttl 30m)
for round in 1 2; do
	printf '[agent gone]\nuid = %s\n' $GONE >"$AD/gone.conf"
	stint reload >"$T/add.out" 2>&1 || { cat "$T/add.out"; fail "round $round: reload adding gone"; }
	t=$(task_start gone --ttl 30m)
	marker=$T/reloaded.$round
	race_signers_start $GONE gone "$t" "$marker" "the reload"
	rm "$AD/gone.conf"
	stint reload >"$T/reload.out" 2>&1 || { cat "$T/reload.out"; fail "round $round: reload under load"; }
	race_signers_end "$marker" "round $round: the reload"
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
