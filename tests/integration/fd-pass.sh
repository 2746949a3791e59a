#!/bin/bash
# Identity per request, not per connection (issue 12 §1, §7). A connection
# belongs to the process that opened it: every request on it must be sent
# by that process, whoever else gets hold of the descriptor.
#   a. the agent passes its connected socket (SCM_RIGHTS) to a process of
#      another uid, which sends a SIGN on it: refused, audit names it;
#   b. the same with a process of the agent's own uid: refused, audited;
#   c. connect as the agent, setuid() to another uid, then send (c1) or
#      exec a program that sends on the inherited descriptor (c2): refused;
#   d. the module's connection is close-on-exec: after exec no descriptor
#      of it is left, and the new image connects afresh and is audited as
#      itself (a guard: main already had SOCK_CLOEXEC);
#   e. a frame whose first half the agent sends and whose rest another
#      process sends: refused; the agent's own frame split over several
#      writes still signs;
#   f. root passes an admin.sock connection to another uid: refused;
#   g. the agent passes its descriptor on and exits; a new process of its
#      uid gets its pid (ns_last_pid) and sends: refused (another process
#      with the same pid, uid and gid).
# Real processes throughout (python3 forks, setuid()s and passes the
# descriptors); the SIGNs go to a real stintd and token.
. "$(dirname "$0")/lib.sh"
need_root
[ -x "$PYTHON" ] || skip "python3 not installed"
stint_tmpdir
stint_setup
need_p11client
wire_py

free_uid()
{
	local u=$1

	while getent passwd "$u" >/dev/null || getent group "$u" >/dev/null ||
		pgrep -U "$u" >/dev/null; do
		u=$((u + 1))
	done
	echo "$u"
}
A=$(free_uid 62001)
O1=$(free_uid $((A + 1)))
O2=$(free_uid $((O1 + 1)))
O3=$(free_uid $((O2 + 1)))
O4=$(free_uid $((O3 + 1)))
note "uids: agent alpha=$A others=$O1 $O2 $O3 $O4"
agent_add alpha "$A"
id=$(task_start alpha --ttl 10m) || exit 1

# Binaries and the wire codec, readable by the other uids.
mkdir -m 0755 "$T/bin"
cp "$STINT_MODULE" "$P11CLIENT" "$T/bin/"
chmod 0755 "$T/bin"/*
chmod 0644 "$T/wire.py"
head -c 32 /dev/urandom >"$T/digest"
chmod 0644 "$T/digest"
MOD=$T/bin/$(basename "$STINT_MODULE")

"$PYTHON" - "$STINT_SOCKET" "$T/run/admin.sock" "$id" "$A" "$O1" "$O2" "$O3" \
	"$O4" "$AUDIT_LOG" "$MOD" "$T/bin/p11client" "$T/digest" <<PY || fail "see above"
import ctypes, json, os, socket, struct, sys, time
sys.path.insert(0, "$T")
import wire

(path, admin_path, task, A, O1, O2, O3, O4, audit, mod, p11client,
 digest) = sys.argv[1:13]
A, O1, O2, O3, O4 = int(A), int(O1), int(O2), int(O3), int(O4)
PY_EXE = os.path.realpath(sys.executable)
DENIED = 11
bad = []

def become(uid, saved=None):
    os.setgroups([])
    if saved is None:
        os.setgid(uid)
        os.setuid(uid)
    else:
        os.setresgid(uid, uid, saved)
        os.setresuid(uid, uid, saved)

def sign_frame():
    return wire.frame({1: 3, 6: task, 7: 0x1041, 8: b"x" * 32})

def sign_on(s):
    s.sendall(sign_frame())
    return wire.read_reply(s)

def status(rep):
    return None if rep is None else rep.get(2)

def child(fn, *args):
    """Runs fn(*args) in a child; returns (pid, its JSON result)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = fn(*args)
        except Exception as e:
            out = {"error": repr(e)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    return pid, r

def result(pid, r):
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    try:
        return json.loads(data or b"{}")
    except ValueError:
        return {"error": "bad child output %r" % data}

def agent_side(sp, split_body=False):
    """The agent: connects, signs once itself, passes the descriptor on,
    waits for the other side to finish, then tries again."""
    become(A)
    s = wire.connect(path)
    own = status(sign_on(s))
    if split_body:
        f = sign_frame()
        s.sendall(f[:len(f) // 2])
    socket.send_fds(sp, [b"fd"], [s.fileno()])
    sp.recv(1)  # the other side is done
    try:
        again = status(sign_on(s)) if not split_body else None
    except OSError as e:
        again = repr(e)
    return {"pid": os.getpid(), "own": own, "again": again}

def other_side(sp, uid, rest=None):
    """Receives the agent's descriptor as uid and sends on it."""
    become(uid)
    _, fds, _, _ = socket.recv_fds(sp, 16, 1)
    s = socket.socket(fileno=fds[0])
    s.settimeout(10)
    try:
        if rest is not None:
            s.sendall(rest)
            rep = wire.read_reply(s)
        else:
            rep = sign_on(s)
    except OSError as e:
        rep = {2: repr(e)}
    sp.send(b"k")
    return {"pid": os.getpid(), "uid": os.getuid(), "status": status(rep),
            "error": (rep or {}).get(3, "")}

def passed(name, uid, split=False):
    a_end, o_end = socket.socketpair()
    rest = None
    if split:
        f = sign_frame()
        rest = f[len(f) // 2:]
    ap, ar = child(agent_side, a_end, split)
    op, orr = child(other_side, o_end, uid, rest)
    a_end.close()
    o_end.close()
    agent, other = result(ap, ar), result(op, orr)
    print("%-34s agent %s -> other %s" % (name, agent, other))
    if agent.get("own") != 0:
        bad.append("%s: the agent could not sign on its own connection" % name)
    if other.get("status") != DENIED:
        bad.append("%s: a SIGN sent by pid %s uid %s on the agent's "
                   "connection got status %s, not %d (refused)"
                   % (name, other.get("pid"), uid, other.get("status"), DENIED))
    return other

# c: connect as the agent (saved uid 0 keeps the right to change), then
# become another uid and send, or exec a program that sends.
def setuid_side(uid, w, do_exec):
    become(A, saved=0)
    s = wire.connect(path)
    own = status(sign_on(s))
    os.setresuid(0, 0, 0)
    become(uid)
    if not do_exec:
        rep = sign_on(s) or {}
        out = {"pid": os.getpid(), "own": own, "status": rep.get(2),
               "error": rep.get(3, "")}
        os.write(w, json.dumps(out).encode())
        return
    # The same process, a new image: it sends on the inherited descriptor
    # and reports through w.
    os.set_inheritable(s.fileno(), True)
    os.set_inheritable(w, True)
    code = ("import os, socket, sys, json; sys.path.insert(0, %r); import wire\n"
            "s = socket.socket(fileno=%d); s.settimeout(10)\n"
            "s.sendall(wire.frame({1: 3, 6: %r, 7: 0x1041, 8: b'x' * 32}))\n"
            "rep = wire.read_reply(s) or {}\n"
            "os.write(%d, json.dumps({'pid': os.getpid(), 'own': %d, "
            "'status': rep.get(2), 'error': rep.get(3, '')}).encode())\n"
            % ("$T", s.fileno(), task, w, own))
    os.execv(PY_EXE, [PY_EXE, "-c", code])

def setuid_case(name, uid, do_exec):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            setuid_side(uid, w, do_exec)
        finally:
            os._exit(1)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    out = json.loads(data or b"{}")
    print("%-34s %s" % (name, out))
    if out.get("pid") != pid:
        bad.append("%s: the sender was pid %s, not the connecting pid %d"
                   % (name, out.get("pid"), pid))
    if out.get("own") != 0:
        bad.append("%s: the agent could not sign before setuid()" % name)
    if out.get("status") != DENIED:
        bad.append("%s: a SIGN sent as uid %d on the agent's connection got "
                   "status %s, not %d" % (name, uid, out.get("status"), DENIED))
    out["uid"] = uid
    return out

# a, b: the descriptor passed to another uid and to the agent's own uid.
a = passed("a. passed to another uid", O1)
b = passed("b. passed to the agent's uid", A)
# c1: same pid, another uid; c2: same, across exec.
c1 = setuid_case("c1. setuid() then send", O2, False)
c2 = setuid_case("c2. setuid() then exec and send", O3, True)
# e: one frame, two senders. The same split from the agent alone signs.
e = passed("e. frame finished by another pid", O2, split=True)
pid = os.fork()
if pid == 0:
    become(A)
    s2 = wire.connect(path)
    f = sign_frame()
    s2.sendall(f[:2]); time.sleep(0.2)
    s2.sendall(f[2:7]); time.sleep(0.2)
    s2.sendall(f[7:])
    os._exit(0 if status(wire.read_reply(s2)) == 0 else 1)
_, st = os.waitpid(pid, 0)
print("%-34s exit %d" % ("e. agent's own split frame", os.waitstatus_to_exitcode(st)))
if os.waitstatus_to_exitcode(st) != 0:
    bad.append("the agent's own frame split over three writes did not sign")

# f: admin.sock, passed from root to uid O4. (Each case's sender has its
# own uid or reason: an identical repeat from one uid is only counted in
# the refusals aggregate, attest/refusals.h.)
def admin_root(sp):
    s = wire.connect(admin_path)
    s.sendall(wire.frame({1: 17}))
    own = status(wire.read_reply(s))
    socket.send_fds(sp, [b"fd"], [s.fileno()])
    sp.recv(1)
    return {"own": own}

def admin_other(sp, uid):
    become(uid)
    _, fds, _, _ = socket.recv_fds(sp, 16, 1)
    s = socket.socket(fileno=fds[0])
    s.settimeout(10)
    s.sendall(wire.frame({1: 17}))
    rep = wire.read_reply(s)
    sp.send(b"k")
    return {"pid": os.getpid(), "uid": uid, "status": status(rep),
            "error": (rep or {}).get(3, "")}

a_end, o_end = socket.socketpair()
rp, rr = child(admin_root, a_end)
op, orr = child(admin_other, o_end, O4)
a_end.close(); o_end.close()
fr, f = result(rp, rr), result(op, orr)
print("%-34s root %s -> other %s" % ("f. admin.sock passed on", fr, f))
if fr.get("own") != 0:
    bad.append("f: root could not list agents on its own admin connection")
if f.get("status") != DENIED:
    bad.append("f: agent list sent by uid %d on root's admin connection got "
               "status %s, not %d" % (O4, f.get("status"), DENIED))

# g: pid reuse. The agent passes its descriptor to root and exits; a new
# process is given the agent's pid (ns_last_pid) and uid and sends on it:
# same pid, uid and gid as the connection's, another process. Refused.
def reuse_agent(sp):
    become(A)
    s = wire.connect(path)
    own = status(sign_on(s))
    socket.send_fds(sp, [b"fd"], [s.fileno()])
    return {"pid": os.getpid(), "own": own}

def reuse_case():
    a_end, r_end = socket.socketpair()
    ap, ar = child(reuse_agent, a_end)
    _, fds, _, _ = socket.recv_fds(r_end, 16, 1)
    agent = result(ap, ar)  # the agent has exited and is reaped
    fd = fds[0]
    if agent.get("own") != 0:
        bad.append("g: the agent could not sign before it exited")
        return None
    target = agent["pid"]
    for attempt in range(200):
        try:
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(target - 1))
        except OSError as e:
            print("g. pid reuse: cannot set ns_last_pid (%s): case skipped" % e)
            return None
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            if os.getpid() != target:
                os._exit(3)
            become(A)
            s = socket.socket(fileno=fd)
            s.settimeout(10)
            rep = sign_on(s) or {}
            os.write(w, json.dumps({"pid": os.getpid(), "uid": A,
                                    "status": rep.get(2),
                                    "error": rep.get(3, "")}).encode())
            os._exit(0)
        os.close(w)
        data = os.read(r, 65536)
        os.close(r)
        os.waitpid(pid, 0)
        if pid == target:
            out = json.loads(data or b"{}")
            print("g. pid %d reused after %d tries: %s" % (target, attempt + 1, out))
            if out.get("status") != DENIED:
                bad.append("g: a process that took the exited agent's pid %d "
                           "signed on its connection (status %s)"
                           % (target, out.get("status")))
            return out
    print("g. pid reuse: pid %d not obtained in 200 forks: case skipped" % target)
    return None

g = reuse_case()

# The audit names the real sender of each refused request.
time.sleep(0.5)
recs = []
with open(audit) as fh:
    for line in fh:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("event") == "request-refused":
            recs.append(r)
for name, who, exe in (("a", a, PY_EXE), ("b", b, PY_EXE), ("c1", c1, PY_EXE),
                       ("c2", c2, PY_EXE), ("e", e, PY_EXE), ("f", f, PY_EXE),
                       ("g", g, PY_EXE)):
    if who is None:
        continue
    hit = [r for r in recs if r.get("peer", {}).get("pid") == who.get("pid")
           and r["peer"].get("uid") == who.get("uid")]
    if not hit:
        bad.append("%s: no request-refused record names pid %s uid %s"
                   % (name, who.get("pid"), who.get("uid")))
        continue
    r = hit[0]
    print("%-3s audit: peer=%s reason=%r detail=%r"
          % (name, r["peer"], r.get("reason"), r.get("detail")))
    if r["peer"].get("exe") != exe:
        bad.append("%s: audit names exe %s, not %s" % (name, r["peer"].get("exe"), exe))
    if name != "f" and r.get("agent") != "alpha":
        bad.append("%s: audit names agent %s, not alpha" % (name, r.get("agent")))

if bad:
    print("\n".join("BAD: " + x for x in bad))
    sys.exit(1)
PY

# d: the module's connection does not survive exec. A process of the
# agent's uid loads the module and signs (so a connection is open and
# pooled); every socket descriptor it holds is close-on-exec; after exec
# the new image holds none of them, and its own SIGN (a fresh connection)
# is audited with its own executable and the same pid.
# (foreign: python3 loads the module, which under sanitizers needs the
# runtime preloaded; lib.sh.)
chmod 0755 "$T"
foreign "$PYTHON" - "$MOD" "$A" "$T/bin/p11client" "$id" "$T/digest" "$AUDIT_LOG" <<'PY' || fail "see above (d)"
import ctypes, json, os, stat, sys
mod, A, p11client, task, digest, audit = sys.argv[1:7]
A = int(A)
os.setgroups([]); os.setgid(A); os.setuid(A)
# The module exports C_GetFunctionList only: call through the list.
CK_ULONG = ctypes.c_ulong
class FunctionList(ctypes.Structure):
    _fields_ = [("version", ctypes.c_ubyte * 2),
                ("C_Initialize", ctypes.CFUNCTYPE(CK_ULONG, ctypes.c_void_p)),
                ("C_Finalize", ctypes.c_void_p),
                ("C_GetInfo", ctypes.c_void_p),
                ("C_GetFunctionList", ctypes.c_void_p),
                ("C_GetSlotList", ctypes.CFUNCTYPE(CK_ULONG, ctypes.c_ubyte,
                                                   ctypes.c_void_p,
                                                   ctypes.POINTER(CK_ULONG)))]
lib = ctypes.CDLL(mod)
fl = ctypes.POINTER(FunctionList)()
if lib.C_GetFunctionList(ctypes.byref(fl)) != 0:
    sys.exit("C_GetFunctionList failed")
if fl.contents.C_Initialize(None) != 0:
    sys.exit("C_Initialize failed")
n = CK_ULONG(0)
rv = fl.contents.C_GetSlotList(1, None, ctypes.byref(n))
print("d. module: C_GetSlotList rv=%d slots=%d" % (rv, n.value))
if rv != 0 or n.value < 1:
    sys.exit("the module found no token for the agent")
socks = []
for fd in os.listdir("/proc/self/fd"):
    fd = int(fd)
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            socks.append((fd, os.get_inheritable(fd)))
    except OSError:
        pass
print("d. socket descriptors (fd, inheritable): %s" % socks)
if not socks:
    sys.exit("the module holds no connection after C_GetSlotList")
if any(inh for _, inh in socks):
    sys.exit("the module's connection is not close-on-exec")
# The new image: list its sockets, then sign through the module anew.
pid = os.getpid()
os.write(1, ("d. exec from pid %d\n" % pid).encode())
os.execv("/bin/sh", ["sh", "-c",
    'for f in /proc/self/fd/*; do l=$(readlink "$f"); case $l in socket:*) echo "d. after exec: fd $f is $l"; exit 1;; esac; done; '
    'echo "d. after exec: no socket descriptor"; exec "$0" "$@"',
    p11client, "--module", mod, "--token", "alpha", "--label", task,
    "--mech", "ecdsa", "--in", digest, "--count", "1"])
PY
# The exec'd p11client's SIGN: audited with p11client as the executable.
"$PYTHON" - "$AUDIT_LOG" "$id" <<'PY' || fail "d: the new image's SIGN was not audited as itself"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
signs = [r for r in recs if r.get("event") == "sign-allowed" and r.get("task") == sys.argv[2]]
last = signs[-1]["peer"]
print("d. last SIGN audited with peer %s" % last)
sys.exit(0 if last.get("exe", "").endswith("/p11client") else 1)
PY

stintd_alive || fail "stintd died"
stintd_stop
