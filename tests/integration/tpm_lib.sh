# shellcheck shell=bash
#
# tpm_lib.sh: swtpm for the TPM backend tests, on top of lib.sh.
#
#   swtpm_start      start swtpm on two free consecutive loopback ports with its state
#                    in $T/swtpm (kept across restarts); sets TCTI, SWTPM_PID
#   swtpm_stop       orderly: TPM2_Shutdown(CLEAR), then stop swtpm
#   swtpm_kill       unorderly: SIGKILL (the TPM clock may fall back)
#   tpm_config       write $STINTD_CONF with [backend] type = tpm
#   tpm_test_init    a TPM test's start: stint_tmpdir, swtpm_start (skips
#                    without swtpm), tpm_config, tpm2-tss's logging off
#   TPM_PROBE        tests/integration/tpm_probe
#
# swtpm runs without a resource manager, as facts.md describes: three
# transient object slots shared by every user (tpm2-tss 3.2.1's swtpm TCTI
# connects once per command, so users interleave between commands).

TPM_PROBE=$top_builddir/tests/integration/tpm_probe
SWTPM_PID=
TCTI=

# Below the kernel's ephemeral range, so that no outgoing connection (curl,
# the TCTI itself) takes the port between this check and swtpm's bind.
free_port_pair()
{
	"$PYTHON" -c 'import socket, random
lo = 20000
try:
    lo_eph = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    lo_eph = 32768
hi = max(lo + 1000, lo_eph - 2)
for _ in range(200):
    p = random.randint(lo, hi)
    try:
        a = socket.socket(); a.bind(("127.0.0.1", p))
        b = socket.socket(); b.bind(("127.0.0.1", p + 1))
    except OSError:
        continue
    print(p)
    break
else:
    raise SystemExit(1)'
}

swtpm_start()
{
	local try

	need_cmd swtpm
	[ -x "$TPM_PROBE" ] || skip "no tpm_probe (configure found no tpm2-tss)"
	[ -d "$T/swtpm" ] || mkdir -m 0700 "$T/swtpm"
	# Tests run in parallel: another one may bind the pair first, so a
	# swtpm that exits at once is tried again on other ports.
	for ((try = 0; try < 5; try++)); do
		swtpm_try && return 0
	done
	cat "$T/swtpm.log" >&2
	fail "swtpm did not start"
}

# One attempt: 0 once swtpm answers, 1 if it exited (e.g. a port taken).
swtpm_try()
{
	local port ctrl i

	# tcti-swtpm finds the control channel at port + 1.
	port=$(free_port_pair) || fail "no two free consecutive ports"
	ctrl=$((port + 1))
	swtpm socket --tpm2 \
		--server type=tcp,port="$port",bindaddr=127.0.0.1 \
		--ctrl type=tcp,port="$ctrl",bindaddr=127.0.0.1 \
		--tpmstate dir="$T/swtpm" --flags not-need-init,startup-clear \
		>>"$T/swtpm.log" 2>&1 &
	SWTPM_PID=$!
	bg_track "$SWTPM_PID"
	TCTI="swtpm:host=127.0.0.1,port=$port"
	for ((i = 0; i < 50; i++)); do
		if "$TPM_PROBE" handles "$TCTI" >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$SWTPM_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$SWTPM_PID" 2>/dev/null; then
		# Running but not answering in 5 s: not a port clash.
		cat "$T/swtpm.log" >&2
		fail "swtpm runs but does not answer on $TCTI"
	fi
	wait "$SWTPM_PID" 2>/dev/null
	SWTPM_PID=
	echo "note: swtpm exited at start (port $port taken?); trying other ports" >>"$T/swtpm.log"
	return 1
}

swtpm_stop()
{
	if command -v tpm2_shutdown >/dev/null 2>&1; then
		TPM2TOOLS_TCTI=$TCTI tpm2_shutdown >/dev/null 2>&1 ||
			fail "tpm2_shutdown failed"
	fi
	kill -TERM "$SWTPM_PID" 2>/dev/null
	wait "$SWTPM_PID" 2>/dev/null
	SWTPM_PID=
}

swtpm_kill()
{
	kill -KILL "$SWTPM_PID" 2>/dev/null
	wait "$SWTPM_PID" 2>/dev/null
	SWTPM_PID=
}

tpm_config()
{
	[ -d "$T/state" ] || mkdir -m 0700 "$T/state"
	[ -d "$T/run" ] || mkdir -m 0755 "$T/run"
	STINTD_CONF=$T/stint.conf
	AUDIT_LOG=$T/state/audit.log
	export STINT_ADMIN_SOCKET=$T/run/admin.sock
	cat >"$STINTD_CONF" <<CONF
[stintd]
state_dir = $T/state
runtime_dir = $T/run
trust_domain = test.example
default_ttl = 15m
max_ttl = 1h

[backend]
type = tpm
tcti = $TCTI

[audit]
path = $AUDIT_LOG
sync = batch
CONF
}

tpm_test_init()
{
	stint_tmpdir
	command -v swtpm >/dev/null 2>&1 ||
		skip "swtpm is not installed (apt-get install swtpm swtpm-tools)"
	swtpm_start
	tpm_config
	export TSS2_LOG=all+none
}
