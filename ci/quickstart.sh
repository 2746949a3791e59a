#!/bin/bash
# Runs README.md's Quick start verbatim, as a new user would on a fresh
# Debian 12 machine: every ```sh block of the "## Quick start" section, in
# order, in one root shell (variables carry from block to block, as in a
# terminal), from a fresh copy of the source tree. Then checks what the
# reader is told to expect (the first signature verifies, the mTLS request
# is accepted with the task's certificate, the signature after the end is
# refused). Then the blocks of README.md's "Running as user stint" on that
# installation (without the systemctl line: no systemd as pid 1): user
# stint from sysusers.d, tmpfiles.d, stintd under setpriv as stint, and a
# new task's signature verified. Finally it undoes the installation: make
# uninstall, the agent user, user stint (when it made it), /etc/stint,
# /var/lib/stint (with the SoftHSM token directory the README makes
# there), /run/stint, /tmp/rp.
#
# Conventions the README follows (and this script relies on):
#   - a block whose first line is "# as USER, with VAR=<...>" is typed in
#     USER's shell: it runs as USER (runuser), in its own bash, with each
#     VAR named that way copied from the root shell;
#   - the one line that runs "[VAR=value ...] stintd ... --foreground" (a
#     second terminal,
#     says the README) runs in the background here, and the next block
#     waits for stintd's sockets;
#   - commands the README puts in the background (&) are stopped at the end.
#
# It installs to /usr and /etc, so it runs only as root, and refuses to
# start on a machine where Stint or the names it creates already exist.
# Usage: ci/quickstart.sh [SRCDIR]   (exit 0 pass, 1 fail, 77 skipped)
set -uo pipefail

srcdir=$(cd "${1:-$(dirname "$0")/..}" && pwd)
name=quickstart
AGENT_USER=alice
RP_DIR=/tmp/rp
RP_PORT=8443

say()
{
	echo "# $*"
}

skip()
{
	echo "SKIP: $name: $*" >&2
	exit 77
}

fail()
{
	echo "FAIL: $name: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || skip "runs as root (it installs to /usr and /etc)"
for p in /etc/stint /var/lib/stint /run/stint /usr/sbin/stintd /usr/bin/stint \
	/usr/lib/pkcs11/stint-pkcs11.so "$RP_DIR"; do
	[ ! -e "$p" ] || skip "$p exists: not a fresh machine (remove it first)"
done
! getent passwd "$AGENT_USER" >/dev/null ||
	skip "user $AGENT_USER exists: the quick start creates it"
if command -v ss >/dev/null 2>&1 && [ -n "$(ss -Htln "sport = :$RP_PORT")" ]; then
	skip "port $RP_PORT is in use"
fi

# README's "Running as user stint" (after the Quick start) creates the user
# stint with systemd-sysusers: removed at the end if this script made it.
STINT_USER_MADE=
W=$(mktemp -d /tmp/stint-quickstart.XXXXXX) || fail "mktemp failed"
chmod 0755 "$W"
LOG=$W/quickstart.log
# Directories make install may create; removed at the end if they were
# not there before and are empty again.
new_dirs=()
for d in /usr/lib/pkcs11 /usr/include/stint /usr/share/doc/stint/examples \
	/usr/share/doc/stint /usr/share/man/man5 /usr/lib/systemd/system; do
	[ -e "$d" ] || new_dirs+=("$d")
done

cleanup()
{
	local rc=$? d

	set +e
	say "undoing the installation"
	if [ -f "$W/src/build/Makefile" ]; then
		make -C "$W/src/build" uninstall >"$W/uninstall.log" 2>&1 ||
			{ cat "$W/uninstall.log"; echo "make uninstall failed" >&2; rc=1; }
	fi
	getent passwd "$AGENT_USER" >/dev/null && userdel -r "$AGENT_USER" 2>/dev/null
	if [ -n "$STINT_USER_MADE" ] && getent passwd stint >/dev/null; then
		userdel stint 2>/dev/null
		getent group stint >/dev/null && groupdel stint 2>/dev/null
	fi
	rm -rf /etc/stint /var/lib/stint /run/stint "$RP_DIR"
	for d in "${new_dirs[@]}"; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	for p in /usr/sbin/stintd /usr/bin/stint /usr/lib/pkcs11/stint-pkcs11.so \
		/etc/stint /home/"$AGENT_USER"; do
		[ ! -e "$p" ] || { echo "left behind: $p" >&2; rc=1; }
	done
	if [ -n "${STINT_KEEP_TMP:-}" ]; then
		echo "# kept $W" >&2
	else
		rm -rf "$W"
	fi
	[ "$rc" -eq 0 ] && echo "PASS: $name"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fresh copy of the checkout (tracked and untracked files, no build trees).
say "copying $srcdir"
mkdir "$W/src"
if git -C "$srcdir" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$srcdir" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 tar -cf - 2>/dev/null) | tar -xf - -C "$W/src" ||
		fail "cannot copy the source tree"
else
	cp -a "$srcdir/." "$W/src/"
fi
# Shared with the agent blocks, which run as another user.
chmod -R a+rX "$W/src"

# --- the README's Quick start, as a script --------------------------------
"${PYTHON:-python3}" - "$srcdir/README.md" "$W" <<'EOF' || fail "cannot extract the Quick start from README.md"
import re, sys

readme, work = sys.argv[1], sys.argv[2]
text = open(readme).read()
m = re.search(r"^## Quick start\n(.*?)(?=^## )", text, re.S | re.M)
if not m:
    sys.exit("README.md has no '## Quick start' section")
blocks = re.findall(r"^```sh\n(.*?)^```", m.group(1), re.S | re.M)
if not blocks:
    sys.exit("the Quick start has no ```sh blocks")

out = ["#!/bin/bash", "set -euo pipefail",
       "qs_jobs() { local p; for p in $(jobs -p); do kill $p 2>/dev/null; done; wait; }",
       "trap qs_jobs EXIT",
       "qs_wait_stintd() { local i; for i in $(seq 300); do",
       "  [ -S /run/stint/agent.sock ] && stint status >/dev/null 2>&1 && return 0;",
       "  kill -0 $QS_STINTD 2>/dev/null || { cat %s/stintd.log; return 1; }; sleep 0.1; done;" % work,
       "  echo 'stintd did not start' >&2; return 1; }"]
for n, b in enumerate(blocks, 1):
    lines = b.splitlines()
    who = re.match(r"# as ([a-z_][a-z0-9_-]*)\b(.*)", lines[0]) if lines else None
    out.append("echo '### block %d%s'" % (n, " (as %s)" % who.group(1) if who else ""))
    if who:
        agent = "%s/block%d.sh" % (work, n)
        with open(agent, "w") as f:
            f.write("set -euo pipefail\n" + b)
        names = re.findall(r"\b([A-Z_][A-Z0-9_]*)=<", who.group(2))
        env = " ".join('%s="$%s"' % (v, v) for v in names)
        out.append("runuser -u %s -- env %s bash %s" % (who.group(1), env, agent))
        continue
    for line in lines:
        if re.match(r"\s*(?:[A-Z_][A-Z0-9_]*=\S+\s+)*stintd\b.*--foreground", line):
            out.append("%s >%s/stintd.log 2>&1 &" % (line.split("#")[0].rstrip(), work))
            out.append("QS_STINTD=$!; qs_wait_stintd")
        else:
            out.append(line)
open(work + "/quickstart-run.sh", "w").write("\n".join(out) + "\n")
print("# %d blocks" % len(blocks))
EOF
chmod 0644 "$W"/block*.sh 2>/dev/null

say "running the Quick start (log: $LOG)"
start=$(date +%s)
(cd "$W/src" && env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 TERM=dumb bash "$W/quickstart-run.sh") >"$LOG" 2>&1
rc=$?
say "ran in $(($(date +%s) - start)) s, exit $rc"
if [ "$rc" -ne 0 ]; then
	tail -n 80 "$LOG" >&2
	[ -f "$W/stintd.log" ] && { echo "--- stintd.log" >&2; tail -n 30 "$W/stintd.log" >&2; }
	fail "the Quick start failed (exit $rc)"
fi

# What the reader is told to expect.
grep -q '^Signature Verified Successfully' "$LOG" ||
	{ tail -n 40 "$LOG" >&2; fail "the first signature did not verify"; }
grep -q '^Client certificate' "$LOG" ||
	{ tail -n 40 "$LOG" >&2; fail "the mTLS request did not show a client certificate"; }
grep -Eq '^ *Protocol *: TLSv1\.[23]' "$LOG" ||
	{ tail -n 40 "$LOG" >&2; fail "the mTLS request did not complete a TLS session"; }
grep -q 'signed after the task ended' "$LOG" &&
	fail "a signature succeeded after the task ended"
say "first signature verified; mTLS request accepted; signature after the end refused"

# --- README's "Running as user stint", on the quick start's installation ----
# Its blocks in order, in one root shell: the systemctl line is left out
# (CI has no systemd as pid 1), the stintd line (under setpriv, as user
# stint) runs in the background. Then, as the reader would check: stintd
# runs as stint, answers root and user stint, and alice signs with a new
# task, verified.
"${PYTHON:-python3}" - "$srcdir/README.md" "$W" <<'EOF' || fail "cannot extract 'Running as user stint' from README.md"
import re, sys

readme, work = sys.argv[1], sys.argv[2]
text = open(readme).read()
m = re.search(r"^## Running as user stint\n(.*?)(?=^## )", text, re.S | re.M)
if not m:
    sys.exit("README.md has no '## Running as user stint' section")
blocks = re.findall(r"^```sh\n(.*?)^```", m.group(1), re.S | re.M)
if len(blocks) < 2:
    sys.exit("'Running as user stint' has fewer than two ```sh blocks")
out = ["#!/bin/bash", "set -euo pipefail",
       "qs_jobs() { local p; for p in $(jobs -p); do kill $p 2>/dev/null; done; wait; }",
       "trap qs_jobs EXIT"]
started = False
for n, b in enumerate(blocks, 1):
    out.append("echo '### block %d'" % n)
    for line in b.replace("\\\n", "").splitlines():
        if re.match(r"\s*systemctl\b", line):
            out.append("echo 'skipped (no systemd as pid 1): %s'" % line.replace("'", ""))
        elif re.search(r"\bstintd\b.*--foreground", line):
            out.append("%s >%s/stintd-stint.log 2>&1 &" % (line.split("#")[0].rstrip(), work))
            out.append("QS_STINTD=$!")
            out.append("for i in $(seq 300); do stint status >/dev/null 2>&1 && break; "
                       "kill -0 $QS_STINTD || { cat %s/stintd-stint.log; exit 1; }; sleep 0.1; done"
                       % work)
            started = True
        else:
            out.append(line)
if not started:
    sys.exit("'Running as user stint' starts no stintd --foreground")
out += ['[ "$(ps -o user= -p $QS_STINTD | tr -d " ")" = stint ] || { echo "stintd does not run as stint"; exit 1; }',
        "runuser -u stint -- stint status >/dev/null",
        'TASK=$(stint task start --agent billing --ttl 10m --quiet)',
        "runuser -u alice -- env TASK=\"$TASK\" bash -c 'set -e; cd; "
        "OPENSSL_CONF=stint-engine.cnf openssl pkeyutl -engine pkcs11 -keyform engine "
        "-sign -inkey \"pkcs11:token=billing;object=$TASK\" -in digest -out sig-stint; "
        "stint task show \"$TASK\" --pem > task-stint.pub; "
        "openssl pkeyutl -verify -pubin -inkey task-stint.pub -in digest -sigfile sig-stint'",
        'stint task end "$TASK"',
        "stint audit verify"]
open(work + "/runas-run.sh", "w").write("\n".join(out) + "\n")
EOF
# tests/integration/runas.sh makes and removes user stint too: one at a
# time (the lock is held until this script exits, after the cleanup). The
# lock is on /tmp itself, a directory always there: no lock file is left.
exec 9</tmp
flock -w 600 9 || fail "user stint is still in use by another test after 10 minutes"
getent passwd stint >/dev/null || STINT_USER_MADE=yes
say "running 'Running as user stint' (log: $W/runas.log)"
(cd "$W/src" && env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 TERM=dumb bash "$W/runas-run.sh") >"$W/runas.log" 2>&1 9>&-
rc=$?
if [ "$rc" -ne 0 ]; then
	tail -n 40 "$W/runas.log" >&2
	[ -f "$W/stintd-stint.log" ] && { echo "--- stintd-stint.log" >&2; tail -n 30 "$W/stintd-stint.log" >&2; }
	fail "README's 'Running as user stint' failed (exit $rc)"
fi
grep -q '^Signature Verified Successfully' "$W/runas.log" ||
	{ tail -n 40 "$W/runas.log" >&2; fail "as user stint: the signature did not verify"; }
say "stintd as user stint (README's commands): signed, verified, audit log verifies"
