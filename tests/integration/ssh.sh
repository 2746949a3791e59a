#!/bin/bash
# OpenSSH with task keys (issue 11, item 4): `ssh -I stint-pkcs11.so` logs
# in to a throwaway sshd on 127.0.0.1 with a task key and is refused after
# `stint task end`. The quirks docs/clients.md describes: with several live
# tasks and a low MaxAuthTries, IdentitiesOnly=yes plus the task's .pub via
# -i picks the right key; ssh-agent loads the module only when its
# allow-list (-P) names it, and ssh-add -s takes any PIN.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_root
need_cmd ssh ssh-keygen ssh-agent ssh-add
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
[ -x "$SSHD" ] || skip "sshd not installed (openssh-server)"
stint_setup
agent_add alpha "$(id -u)"

# --- a throwaway sshd: 127.0.0.1 only, keys from $T, no PAM, no passwords ---
ssh-keygen -q -t ed25519 -N '' -f "$T/host_key" || fail "host key"
ssh-keygen -q -t ed25519 -N '' -f "$T/unused_key" || fail "client key"
[ -d /run/sshd ] || mkdir -m 0755 /run/sshd # privilege separation directory
PORT=$(free_port)
printf '%s\n' "ListenAddress 127.0.0.1" "Port $PORT" "HostKey $T/host_key" \
	"PidFile $T/sshd.pid" "AuthorizedKeysFile $T/authorized_keys" \
	"StrictModes no" "PermitRootLogin prohibit-password" \
	"PubkeyAuthentication yes" "PasswordAuthentication no" \
	"KbdInteractiveAuthentication no" "UsePAM no" "MaxAuthTries 2" \
	"LogLevel VERBOSE" >"$T/sshd_config"
: >"$T/authorized_keys"
"$SSHD" -D -e -f "$T/sshd_config" 2>"$T/sshd.log" &
bg_track $!
wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null ||
	{ cat "$T/sshd.log"; fail "sshd did not listen on 127.0.0.1:$PORT"; }

# The task's public key in OpenSSH form, from `stint task show --pem`.
ssh_pub()
{
	stint task show "$1" --pem >"$T/$1.pem" || fail "task show --pem"
	ssh-keygen -i -m PKCS8 -f "$T/$1.pem" >"$T/$1.pub" || fail "ssh-keygen -i"
	echo "$T/$1.pub"
}

# ssh as an agent runs it: no prompts, no user config, no agent unless
# asked, a known_hosts of its own, and only the identities named.
agent_ssh()
{
	timeout 60 "${FOREIGN[@]}" ssh -F /dev/null -p "$PORT" \
		-o BatchMode=yes -o UserKnownHostsFile="$T/known_hosts" \
		-o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes \
		"$@" root@127.0.0.1 echo logged-in </dev/null
}

id=$(task_start alpha --ttl 10m)
pub=$(ssh_pub "$id")
cat "$pub" >>"$T/authorized_keys"
# Other live tasks: more keys than MaxAuthTries for the module to offer.
for i in 1 2 3; do task_start alpha --ttl 10m >/dev/null; done

agent_ssh -o IdentityAgent=none -I "$STINT_MODULE" -i "$pub" >"$T/out" 2>&1 ||
	{ cat "$T/out" "$T/sshd.log"; fail "ssh -I with the task key could not log in"; }
grep -qx logged-in "$T/out" || { cat "$T/out"; fail "ssh ran no command"; }
grep -q "Accepted publickey for root" "$T/sshd.log" || fail "sshd did not log the key login"
[ "$(audit_count "$id" sign-allowed)" -ge 1 ] || fail "no signature audited for the login"
note "ssh -I stint-pkcs11.so -o IdentitiesOnly=yes -i task.pub: logged in (4 live tasks, MaxAuthTries 2)"

# --- ssh-agent: only with the module on its allow-list ------------------------
printf '#!/bin/sh\necho any-pin\n' >"$T/askpass"
chmod 0755 "$T/askpass"
agent_add_module()
{
	SSH_AUTH_SOCK=$1 SSH_ASKPASS="$T/askpass" SSH_ASKPASS_REQUIRE=force \
		DISPLAY=none timeout 60 "${FOREIGN[@]}" ssh-add -s "$STINT_MODULE" </dev/null
}
AGENT_PID=
start_agent()
{
	local out

	out=$(timeout 10 "${FOREIGN[@]}" ssh-agent -s "$@") || fail "ssh-agent $*"
	AGENT_PID=$(printf '%s\n' "$out" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
	[ -n "$AGENT_PID" ] || fail "ssh-agent printed no pid"
	bg_track "$AGENT_PID"
}
start_agent -a "$T/agent-default.sock"
! agent_add_module "$T/agent-default.sock" >"$T/out" 2>&1 ||
	fail "ssh-agent loaded a module outside its default allow-list"
note "ssh-agent without -P: $(head -1 "$T/out")"
start_agent -P "$(dirname "$STINT_MODULE")/*" -a "$T/agent.sock"
agent_add_module "$T/agent.sock" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "ssh-add -s with the module on the allow-list"; }
SSH_AUTH_SOCK=$T/agent.sock ssh-add -L >"$T/agent-keys" || fail "ssh-add -L"
grep -qF "$(cut -d' ' -f2 "$pub")" "$T/agent-keys" || fail "the agent does not hold the task key"
agent_ssh -o IdentityAgent="$T/agent.sock" -i "$pub" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "ssh through ssh-agent could not log in"; }
note "ssh-agent -P allow-list, ssh-add -s with any PIN: logged in"

# --- after task end ------------------------------------------------------------
allowed=$(audit_count "$id" sign-allowed)
stint task end "$id" >/dev/null || fail "stint task end"
! agent_ssh -o IdentityAgent=none -I "$STINT_MODULE" -i "$pub" >"$T/out" 2>&1 ||
	fail "ssh logged in after task end"
grep -q "Permission denied" "$T/out" || { cat "$T/out"; fail "no clean refusal after task end"; }
note "after task end: $(grep -m1 'Permission denied' "$T/out")"
! agent_ssh -o IdentityAgent="$T/agent.sock" -i "$pub" >"$T/out" 2>&1 ||
	fail "ssh through ssh-agent logged in after task end"
grep -q "Permission denied" "$T/out" || { cat "$T/out"; fail "ssh-agent: no clean refusal"; }
# Neither signed: ssh's PKCS#11 code looks the key up by CKA_ID for each
# signature, and an ended task's key is no longer listed.
[ "$(audit_count "$id" sign-allowed)" -eq "$allowed" ] || fail "a signature was allowed after task end"
exit 0
