#!/bin/bash
# Integration test 6: abuse of agent.sock by a raw client. Garbage, an
# oversize length prefix, a truncated frame, a SIGN for an unknown task, an
# unknown op, wrong-typed fields and a flood of connections held open: each
# gets an error reply or is closed, stintd stays up, and a well-behaved
# PKCS#11 client keeps signing successfully throughout.
. "$(dirname "$0")/lib.sh"
[ -x "$PYTHON" ] || skip "python3 not installed"
stint_tmpdir
stint_setup
need_p11client
wire_py
agent_add alpha "$(id -u)"
id=$(task_start alpha --ttl 10m) || exit 1
head -c 32 /dev/urandom >"$T/digest"

# The well-behaved client: short signing runs back to back until told to
# stop; every run must succeed.
(
	n=0
	while [ ! -e "$T/stop" ]; do
		n=$((n + 1))
		# Traced, so a stall shows where it waits.
		if ! STINT_DEBUG=1 p11client --token alpha --label "$id" \
			--mech ecdsa --in "$T/digest" --count 20 >"$T/good.out" 2>&1; then
			echo "run $n failed at $(date +%T.%N)" >>"$T/good.failed"
			cat "$T/good.out" >>"$T/good.failed"
		fi
		echo "$n" >"$T/good.runs"
	done
) &
good=$!
bg_track "$good"
wait_for 30 test -s "$T/good.runs" || fail "the well-behaved client never completed a run"

"$PYTHON" - "$STINT_SOCKET" "$id" <<PY || fail "raw-socket abuse (see above)"
import os, socket, struct, sys, time
sys.path.insert(0, "$T")
import wire

path, task = sys.argv[1], sys.argv[2]
bad = []

def expect(name, rep, statuses):
    """rep: a decoded reply, None (closed), or an exception."""
    if rep is None:
        print("%-28s closed" % name)
        return
    if isinstance(rep, Exception):
        if isinstance(rep, (ConnectionResetError, BrokenPipeError)):
            print("%-28s reset" % name)
            return
        bad.append("%s: %r" % (name, rep))
        return
    st = rep.get(2)
    print("%-28s status=%s error=%s" % (name, st, rep.get(3, "")))
    if st not in statuses:
        bad.append("%s: status %s, expected one of %s" % (name, st, statuses))
    elif st != 0 and not rep.get(3):
        bad.append("%s: error status without an error message" % name)

def exchange(raw, timeout=10):
    s = wire.connect(path, timeout)
    try:
        s.sendall(raw)
        return wire.read_reply(s)
    except socket.timeout:
        return TimeoutError("no reply and not closed within %ds" % timeout)
    except OSError as e:
        return e
    finally:
        s.close()

BAD_REQUEST, VERSION, NOT_YOURS, TOO_LARGE, UNKNOWN_OP = 1, 2, 4, 13, 15

# Garbage: a length prefix followed by bytes that are not CBOR.
junk = os.urandom(64)
expect("garbage frame", exchange(struct.pack(">I", 64) + junk), [BAD_REQUEST])
# Garbage with no framing at all (the first 4 bytes read as a length).
expect("unframed text", exchange(b"GET / HTTP/1.0\r\n\r\n"), [BAD_REQUEST, TOO_LARGE])
# A length far over the 64 KiB limit: refused without reading 2 GiB.
t0 = time.time()
expect("oversize length 0x7fffffff", exchange(struct.pack(">I", 0x7fffffff)), [TOO_LARGE, BAD_REQUEST])
if time.time() - t0 > 5:
    bad.append("oversize length: took %.1fs" % (time.time() - t0))
expect("length 64 KiB + 1", exchange(struct.pack(">I", 65537) + b"\0" * 1024), [TOO_LARGE, BAD_REQUEST])
# A zero-length frame.
expect("empty frame", exchange(struct.pack(">I", 0)), [BAD_REQUEST])
# A truncated frame, then close: nothing to answer, the daemon must cope.
s = wire.connect(path)
s.sendall(struct.pack(">I", 100) + b"\xa1\x01")
s.close()
# A valid SIGN for a task that does not exist.
expect("SIGN unknown task", exchange(wire.frame({1: 3, 6: "t-deadbeef", 7: 0x1041, 8: b"x" * 32})), [NOT_YOURS])
# Well-formed CBOR, wrong shapes.
expect("SIGN task as int", exchange(wire.frame({1: 3, 6: 5, 7: 0x1041, 8: b"x" * 32})), [BAD_REQUEST])
expect("SIGN missing data", exchange(wire.frame({1: 3, 6: task, 7: 0x1041})), [BAD_REQUEST])
expect("SIGN data as text", exchange(wire.frame({1: 3, 6: task, 7: 0x1041, 8: "x" * 32})), [BAD_REQUEST])
expect("not a map", exchange(wire.frame([1, 2, 3])), [BAD_REQUEST])
expect("trailing garbage", exchange(struct.pack(">I", len(wire.enc({1: 1, 4: 1})) + 3) + wire.enc({1: 1, 4: 1}) + b"\0\0\0"), [BAD_REQUEST])
expect("unknown op 99", exchange(wire.frame({1: 99})), [UNKNOWN_OP, BAD_REQUEST])
# Every admin-only op, the newer ones (25-29, 45) too, is refused as such
# on agent.sock, not as an unknown op (the op table, attest/ops.c).
for op in (16, 17, 18, 19, 20, 21, 23, 24, 26, 27, 28, 29, 45):
    expect("admin op %d on agent.sock" % op, exchange(wire.frame({1: op, 5: "alpha"})), [11])
expect("HELLO version 999", exchange(wire.frame({1: 1, 4: 999})), [VERSION])
# The task's own SIGN, well formed, must still work from a raw client.
expect("SIGN own task", exchange(wire.frame({1: 3, 6: task, 7: 0x1041, 8: b"y" * 32})), [0])

# A flood: 200 connections held open, some with half a frame sent.
def flood(n):
    held = []
    for i in range(n):
        try:
            c = wire.connect(path, 5)
            if i % 4 == 0:
                c.sendall(struct.pack(">I", 50) + b"\xa3")
            held.append(c)
        except OSError as e:
            print("flood connection %d: %s" % (i, e))
            break
    return held

held = flood(200)
print("flood: %d connections open" % len(held))
if len(held) < 200:
    bad.append("only %d of 200 flood connections were made" % len(held))
# While they are held, a fresh raw client still gets answers.
expect("SIGN own task during flood", exchange(wire.frame({1: 3, 6: task, 7: 0x1041, 8: b"z" * 32})), [0])
time.sleep(3)
for c in held:
    c.close()

if bad:
    print("\n".join("BAD: " + b for b in bad))
    sys.exit(1)
PY

# Another uid floods harder (past stintd's per-uid cap) while the
# well-behaved client, of a different uid, keeps signing.
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	chmod 0644 "$T/wire.py"
	as_uid 65534 "$PYTHON" - "$STINT_SOCKET" <<PY || fail "flood from uid 65534"
import sys, time
sys.path.insert(0, "$T")
import wire
held = []
for i in range(400):
    try:
        held.append(wire.connect(sys.argv[1], 5))
    except OSError as e:
        print("uid 65534 flood stopped at %d: %s" % (i, e))
        break
print("uid 65534 flood: %d connections" % len(held))
time.sleep(4)
PY
	# An outsider cannot flood the log: refusals past the per-uid cap
	# are logged a few times per 10 s, with a count of the rest.
	n=$(grep -c 'too many connections (uid 65534)' "$STINTD_LOG" || true)
	[ "$n" -ge 1 ] && [ "$n" -le 10 ] ||
		fail "$n refusal lines logged for the uid 65534 flood (want 1-10)"
	note "flood refusals logged $n times"
fi

# The daemon survived and the good client never failed.
stintd_alive || fail "stintd died during the abuse"
runs_before=$(cat "$T/good.runs")
progressed()
{
	[ "$(cat "$T/good.runs")" -gt "$runs_before" ]
}
wait_for 30 progressed || {
	echo "--- the client run in flight (STINT_DEBUG trace, last 30 lines):"
	tail -n 30 "$T/good.out"
	fail "the well-behaved client made no progress for 30 s after the abuse"
}
touch "$T/stop"
wait "$good"
[ -e "$T/good.failed" ] && { cat "$T/good.failed"; fail "the well-behaved client failed during the abuse"; }
note "well-behaved client completed $(cat "$T/good.runs") runs of 20 signatures"
# Raw PSS: stintd applies the module's rule (common/mechanism.c) up front,
# so an MGF1 hash that differs from hashAlg is a bad request, refused
# before the backend is asked (it used to get as far as the backend).
case " $(backend_key_types) " in
*" rsa-2048 "*)
	rsa=$(task_start alpha --ttl 10m --key rsa-2048) || exit 1
	"$PYTHON" - "$STINT_SOCKET" "$rsa" <<PY || fail "raw PSS parameters (see above)"
import sys
sys.path.insert(0, "$T")
import wire
path, task = sys.argv[1], sys.argv[2]
PSS, SHA256, MGF1_SHA256, MGF1_SHA384 = 0x0D, 0x250, 2, 3
def sign(mgf):
    s = wire.connect(path, 10)
    try:
        s.sendall(wire.frame({1: 3, 6: task, 7: PSS, 8: b"d" * 32,
                              10: SHA256, 11: mgf, 12: 32}))
        return wire.read_reply(s)
    finally:
        s.close()
ok, mixed = sign(MGF1_SHA256), sign(MGF1_SHA384)
print("PSS SHA-256/MGF1-SHA-256: status=%s" % ok.get(2))
print("PSS SHA-256/MGF1-SHA-384: status=%s error=%s" % (mixed.get(2), mixed.get(3)))
if ok.get(2) != 0 or mixed.get(2) != 1:
    sys.exit(1)
PY
	;;
*) note "backend has no rsa-2048 keys: raw PSS case skipped" ;;
esac

[ "$(audit_count t-deadbeef sign-refused)" -ge 1 ] || fail "the SIGN for an unknown task was not audited"

stintd_stop
