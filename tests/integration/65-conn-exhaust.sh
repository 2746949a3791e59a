#!/bin/bash
# Revocation has its own lane (issue 8, item 1): four unprivileged uids
# (65530-65533) each hold 300 idle connections on agent.sock, once with
# stintd's open-file limit at 1,024 (soft and hard, so it cannot raise it)
# and once with the machine's high limit. While they hold them:
#   - stintd does not spin (under 0.5 s of CPU over 2 s),
#   - `stint status` answers,
#   - the task's agent (uid 4242, a registered agent: connections of peers
#     that map to no agent have a cap of their own) connects and signs,
#   - `stint task end` succeeds (time printed; asserted under 30 s),
#   - and the next SIGN for the ended task is refused.
# Before the fix, at 1,024 descriptors stintd spun at 100% CPU on accept()
# failing with EMFILE and the admin commands hung; with a high limit the
# 1,024-connection cap counted admin connections too and refused them.
. "$(dirname "$0")/lib.sh"
[ -x "$PYTHON" ] || skip "python3 not installed"
need_root
need_cmd setpriv
stint_tmpdir
backend_init
stintd_config
wire_py
chmod 0644 "$T/wire.py"

HOLDERS="65530 65531 65532 65533"
PER_HOLDER=300
AGENT_UID=4242

# Holds up to N connections open until $T/release exists; writes how many
# it got to its ready file. Connections stintd refuses are closed by it.
cat >"$T/hold.py" <<'PY'
import os, signal, socket, sys, time
path, n, ready, release = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]

class Slow(Exception):
    pass

def on_alarm(sig, frame):
    raise Slow()

# A blocking connect waits while the listen backlog is full (a timeout
# would make it fail at once with EAGAIN); give each one 2 s.
signal.signal(signal.SIGALRM, on_alarm)
held = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    signal.setitimer(signal.ITIMER_REAL, 2)
    try:
        s.connect(path)
        held.append(s)
    except (OSError, Slow):
        s.close()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
# stintd answers a connection it refuses with an error frame and closes it.
time.sleep(1)
kept = 0
for s in held:
    s.setblocking(False)
    try:
        if s.recv(1, socket.MSG_PEEK) == b"":
            continue
    except BlockingIOError:
        kept += 1
        continue
    except OSError:
        continue
with open(ready + ".tmp", "w") as f:
    f.write("%d %d\n" % (len(held), kept))
os.rename(ready + ".tmp", ready)
while not os.path.exists(release):
    time.sleep(0.1)
PY
chmod 0644 "$T/hold.py"
mkdir -m 1777 "$T/hold"

cpu_ticks()
{
	awk '{ print $14 + $15 }' "/proc/$STINTD_PID/stat"
}

# One SIGN as the agent's uid on a fresh connection: prints "status=N ...".
agent_sign()
{
	timeout 30 setpriv --reuid="$AGENT_UID" --regid="$AGENT_UID" --clear-groups -- \
		"$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$1" 2>/dev/null ||
		echo "no reply (connection closed or reset, rc=$?)"
}

ms_since()
{
	echo $((($(date +%s%N) - $1) / 1000000))
}

scenario()
{
	local what=$1 starved=${2:-no} id t0 out ticks0 ticks1 u got kept total=0 held=0 pids=()

	note "--- $what: open-file limit $(awk '/Max open files/ { print $4 "/" $5 }' "/proc/$STINTD_PID/limits")"
	[ "$STINTD_STARTS" -eq 1 ] && agent_add worker "$AGENT_UID"
	id=$(task_start worker --ttl 10m) || exit 1
	out=$(agent_sign "$id")
	[[ $out == status=0* ]] || fail "$what: the agent cannot sign before the flood: $out"

	rm -f "$T/release" "$T"/hold/ready.*
	for u in $HOLDERS; do
		setpriv --reuid="$u" --regid="$u" --clear-groups -- \
			"$PYTHON" "$T/hold.py" "$STINT_SOCKET" "$PER_HOLDER" \
			"$T/hold/ready.$u" "$T/release" &
		pids+=("$!")
		bg_track "$!"
	done
	for u in $HOLDERS; do
		wait_for 120 test -e "$T/hold/ready.$u" || fail "$what: holder $u never finished connecting"
		read -r got kept <"$T/hold/ready.$u"
		total=$((total + got))
		held=$((held + kept))
	done
	note "$what: the holders connected $total times ($PER_HOLDER tried each), $held held open"
	[ "$held" -ge 200 ] || fail "$what: only $held connections held: no exhaustion to test"

	ticks0=$(cpu_ticks)
	sleep 2
	ticks1=$(cpu_ticks)
	note "$what: stintd used $(((ticks1 - ticks0) * 10)) ms of CPU in 2 s while held"
	[ $((ticks1 - ticks0)) -lt 50 ] ||
		fail "$what: stintd spins ($((ticks1 - ticks0)) ticks of CPU in 2 s)"

	t0=$(date +%s%N)
	timeout 30 "$STINT" --socket "$T/run/admin.sock" status >"$T/status.out" 2>&1 ||
		{ cat "$T/status.out"; fail "$what: stint status failed while the connections were held"; }
	note "$what: stint status answered in $(ms_since "$t0") ms"

	t0=$(date +%s%N)
	out=$(agent_sign "$id")
	note "$what: the agent's SIGN: $out ($(ms_since "$t0") ms)"
	# With no descriptor left (scenario 3) agent connections are closed.
	[[ $out == status=0* ]] || [ "$starved" = yes ] ||
		fail "$what: the agent could not sign while strangers held connections"

	t0=$(date +%s%N)
	timeout 30 "$STINT" --socket "$T/run/admin.sock" task end "$id" >"$T/end.out" 2>&1 ||
		{ cat "$T/end.out"; fail "$what: stint task end failed while the connections were held"; }
	note "$what: stint task end succeeded in $(ms_since "$t0") ms"

	out=$(agent_sign "$id")
	note "$what: the agent's SIGN after task end: $out"
	[[ $out == status=5* ]] || { [ "$starved" = yes ] && [[ $out != status=0* ]]; } ||
		fail "$what: SIGN after task end was not refused as not live: $out"

	touch "$T/release"
	for u in "${pids[@]}"; do
		wait "$u"
	done
	if [ "$starved" = yes ]; then
		sleep 1
		out=$(agent_sign "$id")
		note "$what: the agent's SIGN after the holders left: $out"
		[[ $out == status=5* ]] || fail "$what: SIGN after task end was not refused as not live: $out"
	fi
	stintd_alive || fail "$what: stintd died"
}

# 1. stintd confined to 1,024 descriptors (soft and hard): it cannot raise
# the limit and must budget within it.
REAL_STINTD=$STINTD
STINTD=$T/stintd-1024
printf '#!/bin/sh\nulimit -n 1024 || exit 1\nexec %s "$@"\n' "$REAL_STINTD" >"$STINTD"
chmod 0755 "$STINTD"
stintd_start
p11_env
scenario "limit 1024"
stintd_stop

# 2. The machine's limit (high): the connection caps are the point.
STINTD=$REAL_STINTD
stintd_start
scenario "high limit"

# 3. The limit lowered under a running stintd (prlimit), so its budget is
# wrong and accept() fails with EMFILE: it must back off, not spin, and
# still take admin connections.
if command -v prlimit >/dev/null; then
	prlimit --pid "$STINTD_PID" --nofile=400:400 ||
		fail "prlimit --nofile=400:400 on stintd"
	scenario "limit lowered to 400" yes
fi
stint audit verify >/dev/null || fail "stint audit verify failed"
stintd_stop
