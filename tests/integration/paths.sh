#!/bin/bash
# Issue 8 item 6, as the attack: with state_dir mode 0777 stintd started
# silently, and an unprivileged user replaced audit.log with its own file (and
# could delete state.db). Now stintd checks state_dir, the audit log and its
# directory, the PIN file and SoftHSM's token directory like sshd checks
# authorized_keys: owned by stintd's uid or root, not group/world-writable,
# no such directory above them (a root-owned sticky one like /tmp is fine),
# or it refuses to start naming the path and the fix.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
ok() { echo "ok $*"; }
backend_init
stintd_config
stranger=65534

expect_refusal()
{
	local what=$1 want=$2 rc

	timeout 60 "$STINTD" --config "$STINTD_CONF" --foreground \
		>"$T/refused.log" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
		cat "$T/refused.log" >&2
		fail "$what: stintd did not refuse to start (exit $rc)"
	fi
	grep -qF -- "$want" "$T/refused.log" || {
		cat "$T/refused.log" >&2
		fail "$what: the refusal does not say '$want'"
	}
	san_check_log "$T/refused.log" || fail "sanitizer error in stintd"
	note "$what: $(tail -n 1 "$T/refused.log")"
}

set_conf()
{
	sed -i "s|^$1 = .*|$1 = $2|" "$STINTD_CONF"
}

# --- state_dir world-writable --------------------------------------------------
chmod 0777 "$T/state"
expect_refusal "state_dir 0777" "$T/state is group- or world-writable (mode 0777): chmod go-w $T/state"
[ ! -e "$T/state/state.db" ] || fail "state_dir 0777: state.db created before the refusal"
chmod 0700 "$T/state"
ok "state_dir mode 0777 refused"

# --- state_dir owned by another uid ------------------------------------------
chown "$stranger" "$T/state"
expect_refusal "state_dir owned by $stranger" "$T/state is owned by uid $stranger"
chown 0 "$T/state"
ok "state_dir owned by another uid refused"

# --- a writable directory above state_dir ------------------------------------
mkdir -m 0777 "$T/pub"
mkdir -m 0700 "$T/pub/state"
chmod 0777 "$T/pub" # mkdir -m is subject to nothing, but be explicit
set_conf state_dir "$T/pub/state"
expect_refusal "world-writable parent" "$T/pub (a directory above it) is group- or world-writable"
ok "a world-writable directory above state_dir refused"
set_conf state_dir "$T/state"
# Root-owned and sticky, like /tmp: nobody else can swap our entry in it.
# (Checked with the audit log's directory: a second state_dir would give the
# TPM backend a second kill-switch NV index owner.)
chmod 1777 "$T/pub"
mkdir -m 0700 "$T/pub/audit"
sed -i "s|^path = .*|path = $T/pub/audit/audit.log|" "$STINTD_CONF"
timeout 60 "$STINTD" --config "$STINTD_CONF" --check >"$T/check.log" 2>&1 ||
	{ cat "$T/check.log" >&2; fail "a root-owned sticky parent (like /tmp) was refused"; }
ok "a root-owned sticky parent (like /tmp) is allowed"

# --- the audit log's directory group-writable; a swapped audit.log -----------
mkdir -m 0770 "$T/audit"
sed -i "s|^path = .*|path = $T/audit/audit.log|" "$STINTD_CONF"
expect_refusal "audit dir 0770" "audit log directory $T/audit: $T/audit is group- or world-writable (mode 0770)"
chmod 0700 "$T/audit"
ok "a group-writable audit log directory refused"
# The attack's end state: audit.log is a file of another uid.
touch "$T/audit/audit.log"
chown "$stranger" "$T/audit/audit.log"
expect_refusal "audit.log owned by $stranger" "audit log $T/audit/audit.log: $T/audit/audit.log is owned by uid $stranger"
rm -f "$T/audit/audit.log"
ok "an audit.log owned by another uid refused"
# A symlink to a file elsewhere is judged where it leads, too.
mkdir -m 0777 "$T/elsewhere"
touch "$T/elsewhere/audit.log"
ln -s "$T/elsewhere/audit.log" "$T/audit/audit.log"
expect_refusal "audit.log symlinked into a world-writable dir" "$T/elsewhere (a directory above it) is group- or world-writable"
rm -f "$T/audit/audit.log"
ok "an audit.log symlink into a world-writable directory refused"

if [ "$STINT_TEST_BACKEND" = softhsm ]; then
	# --- PIN file --------------------------------------------------------
	chmod 0644 "$HSM_PIN_FILE"
	expect_refusal "PIN file 0644" "PIN file $HSM_PIN_FILE is group- or world-accessible (mode 0644)"
	chmod 0600 "$HSM_PIN_FILE"
	chown "$stranger" "$HSM_PIN_FILE"
	expect_refusal "PIN file owned by $stranger" "PIN file $HSM_PIN_FILE: $HSM_PIN_FILE is owned by uid $stranger"
	chown 0 "$HSM_PIN_FILE"
	ok "PIN file mode 0644 or owned by another uid refused"

	# --- SoftHSM token directory ------------------------------------------
	chmod 0770 "$T/tokens"
	expect_refusal "token dir 0770" "SoftHSM2 token directory $T/tokens: $T/tokens is group- or world-writable"
	chmod 0700 "$T/tokens"
	ok "a group-writable SoftHSM2 token directory refused"
fi

# --- all fixed: it starts ------------------------------------------------------
# (on the audit log the --check above began, which the store may remember)
sed -i "s|^path = .*|path = $T/pub/audit/audit.log|" "$STINTD_CONF"
stintd_start
agent_add alpha "$(id -u)"
task_start alpha --ttl 5m >/dev/null || exit 1
stintd_stop
ok "with every path fixed stintd starts and serves"
