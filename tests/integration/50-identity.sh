#!/bin/bash
# Integration test 5: the OS identity of the calling process is the only
# credential. A process of an unregistered uid sees no token and cannot
# sign; agent A cannot sign with agent B's task; only stintd's uid and root
# reach admin.sock; and the agent's uid cannot read the backend's secrets
# (SoftHSM token directory and PIN file, or the TPM key blobs and NV auth),
# the state database or the audit log.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv pkcs11-tool
[ -x "$PYTHON" ] || skip "python3 not installed"
stint_tmpdir
stint_setup
need_p11client
wire_py

# Three uids with no passwd entry and no processes: A, B (agents) and X
# (registered as nothing).
free_uid()
{
	local u=$1

	while getent passwd "$u" >/dev/null || getent group "$u" >/dev/null ||
		pgrep -U "$u" >/dev/null; do
		u=$((u + 1))
	done
	echo "$u"
}
A=$(free_uid 61001)
B=$(free_uid $((A + 1)))
X=$(free_uid $((B + 1)))
note "uids: alpha=$A beta=$B unregistered=$X"

# Binaries other uids can run, wherever the build tree lives.
mkdir -m 0755 "$T/bin"
cp "$STINT_MODULE" "$P11CLIENT" "$STINT" "$T/bin/"
chmod 0755 "$T/bin"/*
MOD=$T/bin/$(basename "$STINT_MODULE")
CLI=$T/bin/p11client
ADMIN=$T/bin/stint
chmod 0644 "$T/wire.py"

agent_add alpha "$A"
agent_add beta "$B"
ta=$(task_start alpha --ttl 10m) || exit 1
tb=$(task_start beta --ttl 10m) || exit 1
head -c 32 /dev/urandom >"$T/digest"
chmod 0644 "$T/digest"

sign_as()
{
	local uid=$1 token=$2 task=$3

	as_uid "$uid" "$CLI" --module "$MOD" ${token:+--token "$token"} \
		--label "$task" --mech ecdsa --in "$T/digest" --count 1
}

# Positive controls: each agent signs with its own task.
sign_as "$A" alpha "$ta" >"$T/out" 2>&1 || { cat "$T/out"; fail "alpha (uid $A) cannot sign with its own task"; }
sign_as "$B" beta "$tb" >"$T/out" 2>&1 || { cat "$T/out"; fail "beta (uid $B) cannot sign with its own task"; }
as_uid "$A" "${FOREIGN[@]}" pkcs11-tool --module "$MOD" --list-slots >"$T/slots" 2>&1 ||
	{ cat "$T/slots"; fail "pkcs11-tool --list-slots as alpha"; }
grep -Eq 'token label *: *alpha$' "$T/slots" || { cat "$T/slots"; fail "alpha does not see its token"; }

# --- an unregistered uid ------------------------------------------------
as_uid "$X" "${FOREIGN[@]}" pkcs11-tool --module "$MOD" --list-slots >"$T/slots" 2>&1
grep -q 'token label' "$T/slots" && { cat "$T/slots"; fail "unregistered uid $X sees a token"; }
grep -Eq 'alpha|beta' "$T/slots" && { cat "$T/slots"; fail "unregistered uid sees an agent name"; }
as_uid "$X" "$CLI" --module "$MOD" --list >"$T/out" 2>&1
grep -Eq "$ta|$tb" "$T/out" && { cat "$T/out"; fail "unregistered uid lists task keys"; }
! sign_as "$X" "" "$ta" >"$T/out" 2>&1 || { cat "$T/out"; fail "unregistered uid $X signed with alpha's task"; }
as_uid "$X" "$PYTHON" "$T/wire.py" hello "$STINT_SOCKET" >"$T/out" 2>&1
grep -q '^status=0 .*agent=$' "$T/out" || { cat "$T/out"; fail "HELLO from an unregistered uid did not say 'no agent'"; }
as_uid "$X" "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$ta" >"$T/out" 2>&1
grep -q '^status=3 ' "$T/out" || { cat "$T/out"; fail "raw SIGN from an unregistered uid: expected status 3 (no agent)"; }

# --- one agent, another agent's task -------------------------------------
! sign_as "$A" alpha "$tb" >"$T/out" 2>&1 || { cat "$T/out"; fail "alpha signed with beta's task via token alpha"; }
! sign_as "$A" "" "$tb" >"$T/out" 2>&1 || { cat "$T/out"; fail "alpha signed with beta's task"; }
as_uid "$A" "${FOREIGN[@]}" pkcs11-tool --module "$MOD" --list-objects >"$T/objects" 2>&1
grep -q "$tb" "$T/objects" && { cat "$T/objects"; fail "alpha sees beta's task key"; }
grep -q "$ta" "$T/objects" || { cat "$T/objects"; fail "alpha does not see its own task key"; }
as_uid "$A" "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$tb" >"$T/out" 2>&1
grep -q '^status=4 ' "$T/out" || { cat "$T/out"; fail "raw SIGN of beta's task by alpha: expected status 4 (not yours)"; }
[ "$(audit_count "$tb" sign-refused)" -ge 1 ] || fail "alpha's attempt on beta's task was not audited"
[ "$(audit_count "$ta" sign-refused)" -ge 1 ] || fail "the unregistered uid's attempt was not audited"

# --- admin.sock: only root and stintd's uid ----------------------------------
as_uid "$A" "$ADMIN" --socket "$T/run/admin.sock" status >"$T/out" 2>&1
rc=$?
[ "$rc" -eq 1 ] || { cat "$T/out"; fail "stint status as uid $A exited $rc, expected 1"; }
grep -Eiq 'permission denied|not permitted|denied|not allowed' "$T/out" ||
	{ cat "$T/out"; fail "stint as uid $A failed without saying access was denied"; }
as_uid "$A" "$ADMIN" --socket "$T/run/admin.sock" agent add evil --uid "$A" >"$T/out" 2>&1 &&
	fail "uid $A registered an agent through admin.sock"
# Admin operations on the agent socket are refused too.
as_uid "$A" "$PYTHON" - "$STINT_SOCKET" "$A" >"$T/out" 2>&1 <<PY
import sys
sys.path.insert(0, "$T")
import wire
s = wire.connect(sys.argv[1])
s.sendall(wire.frame({1: 16, 5: "evil", 25: int(sys.argv[2])}))
wire.show(wire.read_reply(s))
PY
grep -Eq '^(closed|status=(11|15|1) )' "$T/out" || { cat "$T/out"; fail "AGENT_ADD on agent.sock was not refused"; }
stint agent list >"$T/agents" || fail "stint agent list"
grep -q evil "$T/agents" && fail "an agent was added from an agent's uid"

# --- secrets out of the agent's reach ----------------------------------------
# The backend's secrets: SoftHSM's PIN file and token directory, or the
# TPM backend's key blobs and kill-switch NV auth (stintd has no PIN there).
case $STINT_TEST_BACKEND in
softhsm)
	[ "$(stat -c %a "$HSM_PIN_FILE")" = 600 ] || fail "PIN file is not 0600"
	secrets=("$HSM_PIN_FILE")
	keydir=$T/tokens
	;;
tpm)
	[ -f "$TPM_KEYS/$ta.key" ] || fail "no TPM key blob for $ta"
	[ -f "$TPM_KEYS/nv.auth" ] || fail "no nv.auth in $TPM_KEYS"
	for f in "$TPM_KEYS/nv.auth" "$TPM_KEYS/$ta.key"; do
		[ "$(stat -c %a "$f")" = 600 ] || fail "$f is not 0600"
	done
	secrets=("$TPM_KEYS/nv.auth" "$TPM_KEYS/$ta.key" "$TPM_KEYS/$tb.key")
	keydir=$TPM_KEYS
	;;
esac
[ -f "$T/state/state.db" ] || fail "no state.db in state_dir"
[ -f "$AUDIT_LOG" ] || fail "no audit log at $AUDIT_LOG"
for f in "${secrets[@]}" "$T/state/state.db" "$AUDIT_LOG"; do
	as_uid "$A" cat "$f" >/dev/null 2>&1 && fail "uid $A can read $f"
done
as_uid "$A" ls "$keydir" >/dev/null 2>&1 && fail "uid $A can list the backend's key directory $keydir"
as_uid "$A" find "$keydir" -type f -exec cat {} + >/dev/null 2>&1 &&
	fail "uid $A can read the backend's key files in $keydir"
# The daemon's own files do not rely on the directory alone.
m=$(stat -c %a "$AUDIT_LOG")
[ $((0$m & 077)) -eq 0 ] || fail "audit.log is mode $m, expected no group/other access"
m=$(stat -c %a "$T/state/state.db")
[ $((0$m & 007)) -eq 0 ] || note "WARNING: state.db is mode $m (protected only by state_dir 0700)"
case $STINT_TEST_BACKEND in
softhsm)
	# Loading SoftHSM directly gets the agent nothing either.
	as_uid "$A" "${FOREIGN[@]}" pkcs11-tool --module "$SOFTHSM_MODULE" --list-objects \
		>"$T/out" 2>&1
	grep -q "$ta" "$T/out" && { cat "$T/out"; fail "uid $A sees task keys through SoftHSM directly"; }
	;;
tpm)
	# swtpm's state (its NV, hence the seeds) is out of reach too. Its
	# TCP port is not: any local uid can send it commands, a test-rig
	# artefact (a real host's /dev/tpmrm0 is root/tss only), and without
	# the blobs above no task key can be loaded.
	as_uid "$A" ls "$T/swtpm" >/dev/null 2>&1 && fail "uid $A can list swtpm's state directory"
	note "tpm: swtpm's loopback port is reachable by any uid (test rig only); not checked"
	;;
esac

stintd_stop
note "identity: unregistered uid, cross-agent, admin socket and file access all refused"
