#!/bin/bash
# stintd's PKCS#11 backend against a real SoftHSM2 token in a temporary
# directory: backend_probe generates, signs, verifies and destroys keys of
# every type; SoftHSM's own view (pkcs11-tool) confirms no key is left; the
# key pool hands out ready keys under their own task ids and the sweep
# removes keys no task owns (also through stintd across a kill -9); the
# error paths (wrong PIN, unknown token, bad module, readable PIN file) say
# what to fix. Exit 0 pass, 1 fail, 77 skip.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
# This test's pipelines end in `grep -q`, which may leave the writer a
# SIGPIPE: only the last command's status counts here.
set +o pipefail
tmp=$T
probe="$top_builddir/tests/integration/backend_probe"

ok() {
	echo "ok $*"
}

command -v softhsm2-util >/dev/null 2>&1 || skip "softhsm2-util not installed (apt install softhsm2)"
command -v pkcs11-tool >/dev/null 2>&1 || skip "pkcs11-tool not installed (apt install opensc)"
[ -r "$SOFTHSM_MODULE" ] || skip "SoftHSM module $SOFTHSM_MODULE not found"
[ -x "$probe" ] || fail "$probe not built (run make check)"

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
# One token object per task key: its public half was a session object,
# read and destroyed at generation (docs/performance.md "Token size").
n=$(grep -c "$keep" "$tmp/objects")
[ "$n" -eq 1 ] || {
	cat "$tmp/objects" >&2
	fail "pkcs11-tool does not show exactly one object (the private key) of $keep"
}
grep -q 'Private Key Object' "$tmp/objects" || fail "no private key listed"
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" destroy "$keep" >/dev/null ||
	fail "destroy $keep"
list_objects >"$tmp/objects"
if grep -q "$keep" "$tmp/objects"; then
	fail "$keep still in the token after destroy"
fi
ok "generated key visible to pkcs11-tool, gone after destroy"

# --- key pool ---------------------------------------------------------------
# Task-shaped ids ("t-" and 32 lowercase hex) in the token, one line per
# object; `uniq` makes it one per key.
task_labels() {
	list_objects | sed -n 's/^ *label: *\(t-[0-9a-f]\{32\}\) *$/\1/p' | sort
}
label_count() {
	list_objects | grep -c "label: *$1 *\$"
}
hex() {
	printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}
rand32() {
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}
# The ids of the keys a pool run printed ("key ID ready|fresh").
probe_keys() {
	sed -n 's/^key \([^ ]*\) .*$/\1/p' "$1"
}
# Each task key the probe printed is one token object, the private key (its
# public half was a session object), whose CKA_LABEL and CKA_ID are the
# task id.
task_keys_ok() {
	list_objects >"$tmp/objects"
	for id in $(probe_keys "$1"); do
		n=$(grep -c "label: *$id *\$" "$tmp/objects")
		[ "$n" -eq 1 ] || fail "task key $id: $n objects labelled, not 1"
		n=$(grep -ci "ID: *$(hex "$id") *\$" "$tmp/objects")
		[ "$n" -eq 1 ] || fail "task key $id: $n objects with its CKA_ID, not 1"
	done
}
# Polls (0.2 s) until command $2... succeeds, for at most $1 seconds.
wait_until() {
	secs=$1
	shift
	i=0
	while ! "$@"; do
		i=$((i + 1))
		[ "$i" -le $((secs * 5)) ] || return 1
		sleep 0.2
	done
}
n_task_keys_is() {
	[ "$(task_labels | uniq | wc -l)" -eq "$1" ]
}

[ -z "$(task_labels)" ] || fail "task-shaped keys in the token before the pool test"

# key_pool = 2. The first key starts the refill thread; while the probe
# waits, the token holds that key and the two ready ones, each a pair
# labelled with the task id it will be handed out under. Then three more
# keys back to back: the ready ones come first, without a token call.
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" pool 2 4 0 "$tmp/go" \
	>"$tmp/pool1" &
pool_pid=$!
wait_until 120 grep -q '^ready$' "$tmp/pool1" || {
	kill "$pool_pid" 2>/dev/null
	fail "pool probe never got ready"
}
if ! wait_until 120 n_task_keys_is 3; then
	task_labels >&2
	kill "$pool_pid" 2>/dev/null
	fail "the refill thread did not make 2 ready keys next to the first key"
fi
task_labels | uniq >"$tmp/open1"
for id in $(cat "$tmp/open1"); do
	[ "$(label_count "$id")" -eq 1 ] || fail "ready key $id is not one key object"
done
touch "$tmp/go"
wait "$pool_pid" || fail "pool run with key_pool = 2"
grep '^ok pool' "$tmp/pool1"
grep -qx "$(probe_keys "$tmp/pool1" | head -n 1)" "$tmp/open1" ||
	fail "the first key is not in the token"
# Keys 2 and 3 are the two listed ready keys; key 4 may be a refilled one,
# made after the listing.
n=0
for id in $(sed -n 's/^key \(.*\) ready$/\1/p' "$tmp/pool1"); do
	grep -qx "$id" "$tmp/open1" && n=$((n + 1))
done
[ "$n" -ge 2 ] || fail "$n ready keys handed out that were in the token under their id before, not 2"
ok "refill thread made 2 ready keys under their task ids; handed out as they were"
task_keys_ok "$tmp/pool1"
probe_keys "$tmp/pool1" | sort >"$tmp/handed1"
task_labels | uniq >"$tmp/after1"
cmp -s "$tmp/handed1" "$tmp/after1" || {
	diff "$tmp/handed1" "$tmp/after1" >&2
	fail "after close the token holds task-shaped keys not handed out (unused ready keys left)"
}
ok "4 distinct keys verified; close destroyed the unused ready keys"
# Destroyed now: the next pool run sweeps, keeping only its own keys.
for id in $(probe_keys "$tmp/pool1"); do
	"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" destroy "$id" \
		>/dev/null || fail "destroy $id"
done

# key_pool = 0: every key is generated under a minted task id.
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" pool 0 2 0 >"$tmp/pool2" ||
	fail "pool run with key_pool = 0"
grep -q '^ok pool: 2 distinct task keys, 0 ready' "$tmp/pool2" ||
	fail "key_pool = 0 handed out ready keys"
task_keys_ok "$tmp/pool2"
ok "key_pool = 0 generates every key"

for id in $(probe_keys "$tmp/pool2"); do
	"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" destroy "$id" \
		>/dev/null || fail "destroy $id"
done
[ -z "$(task_labels)" ] || fail "pool test keys left in the token"
ok "pool test keys destroyed"

# --- sweep ------------------------------------------------------------------
# Task keys A, B, C; D a lone public key (half a pair); a legacy pool pair;
# and keys the sweep must never touch: host keys and ids that are not
# exactly "t-" and 32 lowercase hex (or "pool-" and 32).
ka="t-$(rand32)"
kb="t-$(rand32)"
kc="t-$(rand32)"
kd="t-$(rand32)"
legacy="pool-$(rand32)"
others="stint-ca stint-ak t-$(rand32 | tr a-f A-F) t-$(rand32)0 t-short pool-$(rand32)0"
for id in "$ka" "$kb" "$kc" "$legacy" $others; do
	"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" generate "$id" \
		>/dev/null || fail "generate $id"
done
# A marked pair with a token public key, as earlier versions made them.
"$top_builddir/tests/integration/orphan_key" "$SOFTHSM_MODULE" "$label" \
	"$tmp/pin" make marked "$kd" >/dev/null || fail "make the pair $kd"
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$label" --login \
	--pin "$pin" --delete-object --type privkey --label "$kd" \
	>/dev/null 2>&1 || fail "pkcs11-tool delete-object"
[ "$(label_count "$kd")" -eq 1 ] || fail "half pair $kd not made"
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" sweep "$ka" >"$tmp/sweep" ||
	fail "sweep keeping $ka"
grep -qx 'ok sweep: destroyed 4' "$tmp/sweep" || {
	cat "$tmp/sweep" >&2
	fail "sweep did not report 4 keys destroyed"
}
[ "$(label_count "$ka")" -eq 1 ] || fail "sweep destroyed the kept key $ka"
for id in "$kb" "$kc" "$kd" "$legacy"; do
	[ "$(label_count "$id")" -eq 0 ] || fail "sweep left $id"
	grep -qx "destroyed $id" "$tmp/sweep" || fail "sweep did not report $id"
done
for id in $others; do
	[ "$(label_count "$id")" -eq 1 ] || fail "sweep touched $id"
done
ok "sweep: kept key stays; orphans, a half pair and a legacy pool key go; others untouched"
"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" sweep >"$tmp/sweep" ||
	fail "sweep keeping nothing"
grep -qx 'ok sweep: destroyed 1' "$tmp/sweep" || fail "second sweep: $(cat "$tmp/sweep")"
[ "$(label_count "$ka")" -eq 0 ] || fail "sweep keeping nothing left $ka"
for id in $others; do
	"$probe" "$SOFTHSM_MODULE" "$label" "$tmp/pin" destroy "$id" \
		>/dev/null || fail "destroy $id"
done
ok "sweep keeping nothing removes the last task key"

# --- stintd: task start takes a ready key; a restart sweeps --------------------
stintd_bin="$top_builddir/stintd"
stint_bin="$top_builddir/stint"
if [ ! -x "$stintd_bin" ] || [ ! -x "$stint_bin" ]; then
	echo "note: no stintd/stint in $top_builddir; stintd pool checks skipped"
else
	dlabel=stintd-pool
	softhsm2-util --init-token --free --label "$dlabel" --pin "$pin" \
		--so-pin 12345678 >/dev/null || fail "softhsm2-util --init-token $dlabel"
	mkdir -m 0700 "$tmp/state"
	mkdir -m 0755 "$tmp/run"
	audit_log=$tmp/state/audit.log
	cat >"$tmp/stint.conf" <<EOF
[stintd]
state_dir = $tmp/state
runtime_dir = $tmp/run
trust_domain = test.example

[backend]
type = pkcs11
module = $SOFTHSM_MODULE
token = $dlabel
pin_file = $tmp/pin
key_pool = 2

[audit]
path = $audit_log
sync = batch
EOF
	dlist() {
		pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$dlabel" \
			--login --pin "$pin" --list-objects 2>&1
	}
	dlabel_count() {
		dlist | grep -c "label: *$1 *\$"
	}
	dtask_labels() {
		dlist | sed -n 's/^ *label: *\(t-[0-9a-f]\{32\}\) *$/\1/p' | sort | uniq
	}
	dn_task_keys_is() {
		[ "$(dtask_labels | wc -l)" -eq "$1" ]
	}
	adm() {
		"$stint_bin" --socket "$tmp/run/admin.sock" "$@"
	}
	starts=0
	stintd_pid=
	stintd_up() {
		starts=$((starts + 1))
		"$stintd_bin" --config "$tmp/stint.conf" --foreground \
			>"$tmp/stintd.$starts.log" 2>&1 &
		stintd_pid=$!
		bg_track "$stintd_pid" # killed at exit (lib.sh)
		# After kill -9 the old socket files are still there.
		wait_until 60 adm status >/dev/null 2>&1 || {
			cat "$tmp/stintd.$starts.log" >&2
			fail "stintd did not start"
		}
	}
	# A record of event $2 for task $1 in the audit log that has $3.
	audit_has() {
		grep -F "\"task\":\"$1\"" "$audit_log" |
			grep -F "\"event\":\"$2\"" | grep -qF -- "$3"
	}
	# The sweep at start begins the refill: 2 ready keys before any task.
	stintd_up
	wait_until 120 dn_task_keys_is 2 || fail "stintd made no 2 ready keys after start"
	dtask_labels >"$tmp/ready1"
	adm agent add pool-agent --uid "$(id -u)" >/dev/null || fail "agent add"
	t1=$(adm task start --agent pool-agent -q) || fail "task start"
	grep -qx "$t1" "$tmp/ready1" ||
		fail "task $t1 did not get one of the ready keys: $(cat "$tmp/ready1")"
	audit_has "$t1" key-generate '"detail":"ec-p256 ready"' ||
		fail "no key-generate record with detail 'ec-p256 ready' for $t1"
	ok "task start took a ready key: the task id is the key's id in the token"

	# stint status shows the pool refilled and the operations prepared
	# for the CA and attestation keys, which signed for t1.
	status_ready() {
		adm status --json >"$tmp/status.json" &&
			python3 - "$tmp/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if s["ready_keys"] == 2 and s["ready_keys_target"] == 2 and
         s["prepared_ops"] >= 1 and s["prepared_ops_max"] == 16 else 1)
PY
	}
	wait_until 120 status_ready || {
		cat "$tmp/status.json" >&2
		fail "stint status --json does not show 2 of 2 ready keys and prepared operations"
	}
	adm status >"$tmp/status.txt" || fail "stint status"
	grep -q '^ready keys    2 of 2 (key_pool)$' "$tmp/status.txt" &&
		grep -q '^prepared ops  [1-9][0-9]* of 16 (prepared_ops)$' "$tmp/status.txt" || {
		cat "$tmp/status.txt" >&2
		fail "stint status does not show the ready keys and prepared operations"
	}
	ok "stint status reports ready keys and prepared operations"

	# kill -9 with a full pool, plus an orphan key of a task never stored
	# (a crash between generation and storing): the next start sweeps both.
	wait_until 120 dn_task_keys_is 3 || fail "pool not refilled to 2"
	dtask_labels | grep -vx "$t1" >"$tmp/ready2"
	kill -9 "$stintd_pid"
	wait "$stintd_pid" 2>/dev/null
	stintd_pid=
	orphan="t-$(rand32)"
	"$probe" "$SOFTHSM_MODULE" "$dlabel" "$tmp/pin" generate "$orphan" \
		>/dev/null || fail "generate $orphan"
	stintd_up
	for id in $(cat "$tmp/ready2") "$orphan"; do
		[ "$(dlabel_count "$id")" -eq 0 ] ||
			fail "key $id survived the restart sweep"
		audit_has "$id" key-destroy '"reason":"no live task: orphan or unused ready key"' ||
			fail "no key-destroy record for the swept key $id"
	done
	[ "$(dlabel_count "$t1")" -eq 1 ] ||
		fail "the restart sweep destroyed the live task's key $t1"
	! audit_has "$t1" key-destroy '' || fail "key-destroy record for the live task $t1"
	grep -q 'key sweep: removed 3 keys' "$tmp/stintd.$starts.log" || {
		cat "$tmp/stintd.$starts.log" >&2
		fail "stintd did not log the 3 keys it swept"
	}
	ok "restart after kill -9: ready keys and an orphan swept and audited, the live task's key kept"

	# A clean stop keeps the ready keys for the next start, which adopts
	# them: same keys, nothing destroyed, the list file consumed.
	wait_until 120 dn_task_keys_is 3 || fail "pool not refilled after the restart"
	dtask_labels | grep -vx "$t1" >"$tmp/ready3"
	kill -TERM "$stintd_pid"
	wait "$stintd_pid" || fail "stintd exited $? on SIGTERM"
	stintd_pid=
	dtask_labels >"$tmp/after_stop"
	sort "$tmp/ready3" <(echo "$t1") | cmp -s - "$tmp/after_stop" ||
		fail "after a clean stop the token holds $(tr '\n' ' ' <"$tmp/after_stop"), not the task key and the 2 ready keys"
	sort "$tmp/state/ready-keys" | cmp -s - "$tmp/ready3" ||
		fail "state/ready-keys does not list the 2 ready keys: $(cat "$tmp/state/ready-keys" 2>&1)"
	[ "$(stat -c %a "$tmp/state/ready-keys")" = 600 ] || fail "state/ready-keys is not 0600"
	destroys_before=$(grep -c '"event":"key-destroy"' "$audit_log")
	# Someone who can write the state directory lists the live task's
	# key as ready, hoping it is handed out to a second task: a key whose
	# task the store knows is never adopted (nor destroyed).
	echo "$t1" >>"$tmp/state/ready-keys"
	stintd_up
	[ ! -e "$tmp/state/ready-keys" ] || fail "state/ready-keys left after the start read it"
	grep -q 'backend: 2 of 3 ready keys kept from the last stop adopted' "$tmp/stintd.$starts.log" || {
		cat "$tmp/stintd.$starts.log" >&2
		fail "stintd did not adopt exactly the 2 ready keys (of 3 listed)"
	}
	[ "$(dlabel_count "$t1")" -eq 1 ] || fail "the live task's key $t1 listed as ready was destroyed"
	[ "$(grep -c '"event":"key-destroy"' "$audit_log")" -eq "$destroys_before" ] ||
		fail "the start after a clean stop destroyed keys"
	adm status --json >"$tmp/status.json" || fail "stint status --json"
	python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["ready_keys"] != 2)' \
		"$tmp/status.json" || fail "adopted keys not ready: $(cat "$tmp/status.json")"
	t2=$(adm task start --agent pool-agent -q) || fail "task start after the restart"
	grep -qx "$t2" "$tmp/ready3" || fail "task $t2 did not get an adopted ready key"
	t3=$(adm task start --agent pool-agent -q) || fail "second task start after the restart"
	[ "$t3" != "$t1" ] && [ "$t3" != "$t2" ] || fail "a key was handed out twice ($t3)"
	ok "clean stop keeps the ready keys; the next start adopts and hands them out"

	# The file is read once: a stop that cannot be clean (kill -9) leaves
	# none, so the next start destroys the unused ready keys.
	wait_until 120 dn_task_keys_is 5 || fail "pool not refilled to 2 after t2 and t3"
	dtask_labels | grep -vx -e "$t1" -e "$t2" -e "$t3" >"$tmp/ready4"
	kill -9 "$stintd_pid"
	wait "$stintd_pid" 2>/dev/null
	stintd_pid=
	[ ! -e "$tmp/state/ready-keys" ] || fail "kill -9 left a ready-keys file"
	stintd_up
	for id in $(cat "$tmp/ready4"); do
		[ "$(dlabel_count "$id")" -eq 0 ] || fail "ready key $id survived a restart after kill -9"
	done
	kill -TERM "$stintd_pid"
	wait "$stintd_pid" || fail "stintd exited $? on SIGTERM"
	stintd_pid=
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
		"$tmp"/stintd.*.log; then
		cat "$tmp"/stintd.*.log >&2
		fail "sanitizer error in stintd"
	fi
	ok "after kill -9 the unused ready keys are destroyed, not adopted"
fi

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
