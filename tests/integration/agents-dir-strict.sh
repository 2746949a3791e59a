#!/bin/bash
# Issue 15 (prov): agents.d declares audiences (`audiences = a, b`, tasks
# may ask only for a subset), and files are refused like sshd's StrictModes:
# a declaration or its directory writable by anyone but root or stintd's
# user (group/other write, or another owner) stops --check and the start
# with the file and the reason, and a SIGHUP with such a file changes nothing.
. "$(dirname "$0")/lib.sh"
need_root
stint_tmpdir
agents_dir_init
cat >"$AD/10-web.conf" <<'EOF2'
[agent web]
uid = 62201
audiences = api.example, db.example
EOF2
chmod 0644 "$AD/10-web.conf"

check()
{
	"$STINTD" --config "$STINTD_CONF" --check >"$T/check.out" 2>&1
}
check || { cat "$T/check.out"; fail "--check refuses a valid file"; }

# Group-writable file: refused with the file and the reason.
chmod 0664 "$AD/10-web.conf"
check && fail "--check accepted a group-writable agents.d file"
grep -q "10-web.conf: mode 0664 lets others write it" "$T/check.out" ||
	{ cat "$T/check.out"; fail "--check does not say why the file is refused"; }
chmod 0644 "$AD/10-web.conf"
# World-writable directory.
chmod 0777 "$AD"
check && fail "--check accepted a world-writable agents.d"
grep -q "agents.d: mode 0777" "$T/check.out" ||
	{ cat "$T/check.out"; fail "--check does not name the directory"; }
chmod 0755 "$AD"
# Owned by someone else.
chown 62201 "$AD/10-web.conf"
check && fail "--check accepted a file owned by uid 62201"
grep -q "owned by uid 62201" "$T/check.out" ||
	{ cat "$T/check.out"; fail "--check does not name the owner"; }
# stintd refuses to start with it.
"$STINTD" --config "$STINTD_CONF" --foreground >"$T/start.out" 2>&1 &&
	fail "stintd started with an agents.d file owned by another user"
grep -q "owned by uid 62201" "$T/start.out" || { cat "$T/start.out"; fail "start error"; }
chown 0 "$AD/10-web.conf"

# A bad audience names FILE:LINE.
printf '[agent bad]\nuid = 62202\naudiences = a b!\n' >"$AD/20-bad.conf"
check && fail "--check accepted a bad audience"
grep -q "20-bad.conf:3: bad audiences" "$T/check.out" ||
	{ cat "$T/check.out"; fail "bad audience: no FILE:LINE"; }
rm "$AD/20-bad.conf"

stintd_start
[ "$(stint agent show web --json | json_get audiences)" = "api.example,db.example" ] ||
	{ stint agent show web; fail "web's audiences are not the file's"; }
grep '"event":"agent-reconcile"' "$AUDIT_LOG" | grep '"agent":"web"' |
	grep -q 'audiences=api.example,db.example' ||
	fail "the agent-reconcile record of web lacks its audiences"
ta=$(task_start web --audience api.example)
[ "$(stint task show "$ta" --json | json_get audiences)" = api.example ] ||
	fail "task of web does not carry its audience"
stint task start --agent web --audience other.example -q >"$T/out" 2>&1 &&
	fail "a task for an audience the file does not declare started"

# SIGHUP with a world-writable file: nothing changes.
sed -i 's/^uid = .*/uid = 62203/' "$AD/10-web.conf"
chmod 0666 "$AD/10-web.conf"
kill -HUP "$STINTD_PID"
wait_for 10 grep -q "lets others write it" "$STINTD_LOG" ||
	fail "SIGHUP with a world-writable file: no error in the log"
[ "$(stint agent show web --json | json_get uid)" = 62201 ] ||
	fail "a world-writable file changed agent web"
stintd_stop
note "agents.d: audiences declared; unsafe owner/mode refused (file, dir, owner)"
