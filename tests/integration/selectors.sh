#!/bin/bash
# Agent selectors (issue 12 §1, §2, §6): several agents under one uid told
# apart by executable or cgroup. Real processes, real uids:
#  - two agents, one uid, two copies of p11client: each sees and signs with
#    its own task only; a third copy sees nothing; a raw SIGN from the same
#    uid with another agent's exe is refused (the gate matches selectors);
#  - a binary replaced in place at the same path (same inode): the next
#    connection's exe_sha256 in the audit is the new file's;
#  - --exe-sha256 that does not match: nothing visible, nothing signed;
#  - two agents, one uid, two cgroups under the unified hierarchy;
#  - the audit peer block carries exe_sha256, cgroup, pidfd_ino, and which
#    of the agent's selectors matched ("matched":["uid","exe"]);
#  - the pidfd_open() fallback (kernels without SO_PEERPIDFD) gives the same
#    answers; `stint audit verify` passes.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd setpriv sha256sum
[ -x "$PYTHON" ] || skip "python3 not installed"
stint_tmpdir
stint_setup
need_p11client
wire_py
chmod 0644 "$T/wire.py"

U=$(free_uid 62001)
U2=$(free_uid $((U + 1)))
U3=$(free_uid $((U2 + 1)))
note "uids: shared=$U pinned=$U2 cgroups=$U3"

mkdir -m 0755 "$T/bin" "$T/bin/a" "$T/bin/b" "$T/bin/c"
cp "$STINT_MODULE" "$T/bin/"
MOD=$T/bin/$(basename "$STINT_MODULE")
for d in a b c; do cp "$P11CLIENT" "$T/bin/$d/p11client"; done
chmod 0755 "$T/bin"/* "$T/bin"/*/p11client
head -c 32 /dev/urandom >"$T/digest"
chmod 0644 "$T/digest"
PY=$(readlink -f "$PYTHON")

# Runs copy $2 of p11client as uid $1; the rest are p11client options.
run_as()
{
	local uid=$1 copy=$2

	shift 2
	as_uid "$uid" "$T/bin/$copy/p11client" --module "$MOD" "$@"
}
sign_as()
{
	run_as "$1" "$2" --label "$3" --mech ecdsa --in "$T/digest" --count 1
}
# The peer block of the last sign-allowed record of task $1, as JSON.
last_peer()
{
	"$PYTHON" - "$1" "$AUDIT_LOG" <<'EOF'
import json, sys
peer = None
for line in open(sys.argv[2]):
    r = json.loads(line)
    if r.get("event") == "sign-allowed" and r.get("task") == sys.argv[1]:
        peer = r.get("peer")
print(json.dumps(peer))
EOF
}
# The "matched" list of a peer block on stdin, comma-separated.
matched_of()
{
	"$PYTHON" -c 'import json, sys
print(",".join((json.load(sys.stdin) or {}).get("matched", [])))'
}

# --- two agents, one uid, told apart by executable -----------------------
stint agent add alpha --uid "$U" --exe "$T/bin/a/p11client" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "agent add --exe"; }
stint agent add beta --uid "$U" --exe "$T/bin/b/p11client" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "a second agent on the same uid with another --exe was refused"; }
grep -q "warning" "$T/out" && { cat "$T/out"; fail "agents told apart by --exe warned of an overlap"; }
stint agent add py --uid "$U" --exe "$PY" >/dev/null 2>&1 || fail "agent add py"
# The same selectors again: refused, and a uid-only agent warns.
! stint agent add alpha2 --uid "$U" --exe "$T/bin/a/p11client" >"$T/out" 2>&1 ||
	fail "an agent identical to another was added"
stint agent add loose --uid "$U3" >"$T/out" 2>&1 || fail "uid-only agent add"
grep -q "any process of uid $U3 can act as agent 'loose'" "$T/out" ||
	{ cat "$T/out"; fail "uid-only agent add did not warn"; }
stint agent remove loose >/dev/null
stint agent show alpha --json >"$T/show" || fail "agent show --json"
[ "$(json_get selectors.exe <"$T/show")" = "$T/bin/a/p11client" ] ||
	{ cat "$T/show"; fail "agent show does not show the exe selector"; }
stint agent list | grep -q "exe=$T/bin/b/p11client" || fail "agent list does not show beta's selector"

ta=$(task_start alpha --ttl 10m) || exit 1
tb=$(task_start beta --ttl 10m) || exit 1
tp=$(task_start py --ttl 10m) || exit 1

run_as "$U" a --list >"$T/la" 2>&1 || { cat "$T/la"; fail "alpha's copy cannot list"; }
grep -q "$ta" "$T/la" || { cat "$T/la"; fail "alpha does not see its task"; }
grep -q "$tb" "$T/la" && { cat "$T/la"; fail "alpha sees beta's task (same uid, other exe)"; }
run_as "$U" b --list >"$T/lb" 2>&1 || { cat "$T/lb"; fail "beta's copy cannot list"; }
grep -q "$tb" "$T/lb" || { cat "$T/lb"; fail "beta does not see its task"; }
grep -q "$ta" "$T/lb" && { cat "$T/lb"; fail "beta sees alpha's task"; }
run_as "$U" c --list >"$T/lc" 2>&1
grep -Eq "$ta|$tb|$tp" "$T/lc" && { cat "$T/lc"; fail "a third copy of the same binary (no agent) sees a task"; }

sign_as "$U" a "$ta" >"$T/out" 2>&1 || { cat "$T/out"; fail "alpha cannot sign with its task"; }
sign_as "$U" b "$tb" >"$T/out" 2>&1 || { cat "$T/out"; fail "beta cannot sign with its task"; }
! sign_as "$U" a "$tb" >"$T/out" 2>&1 || fail "alpha signed with beta's task"
! sign_as "$U" c "$ta" >"$T/out" 2>&1 || fail "an unmatched copy signed with alpha's task"
# Raw SIGN from the same uid, another executable (python: agent py): the
# gate refuses alpha's task, allows py's own.
as_uid "$U" "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$ta" >"$T/out" 2>&1
grep -q '^status=4 ' "$T/out" || { cat "$T/out"; fail "raw SIGN of alpha's task by agent py: expected status 4 (not yours)"; }
as_uid "$U" "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$tp" >"$T/out" 2>&1
grep -q '^status=0 ' "$T/out" || { cat "$T/out"; fail "agent py cannot sign with its own task"; }

# --- the audit peer block ---------------------------------------------------
last_peer "$ta" >"$T/peer"
sum_a=$(sha256sum "$T/bin/a/p11client" | cut -d' ' -f1)
[ "$(json_get exe_sha256 <"$T/peer")" = "$sum_a" ] ||
	{ cat "$T/peer"; fail "audit exe_sha256 is not the binary's SHA-256"; }
[ "$(json_get exe <"$T/peer")" = "$T/bin/a/p11client" ] || { cat "$T/peer"; fail "audit exe"; }
if [ -r /proc/self/cgroup ] && grep -q '^0::' /proc/self/cgroup; then
	json_get cgroup <"$T/peer" >/dev/null 2>&1 || { cat "$T/peer"; fail "audit peer has no cgroup"; }
fi
[ "$(matched_of <"$T/peer")" = "uid,exe" ] ||
	{ cat "$T/peer"; fail "audit peer matched is not uid,exe for agent alpha (--uid --exe)"; }
[ "$(last_peer "$tp" | matched_of)" = "uid,exe" ] ||
	{ last_peer "$tp"; fail "audit peer matched of agent py (raw SIGN)"; }
# A refusal of a peer that maps to an agent says what it matched too.
"$PYTHON" - "$AUDIT_LOG" "$ta" >"$T/ref" <<'EOF'
import json, sys
peer = None
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "sign-refused" and r.get("task") == sys.argv[2] and r.get("agent") == "py":
        peer = r.get("peer")
print(json.dumps(peer))
EOF
[ "$(matched_of <"$T/ref")" = "uid,exe" ] ||
	{ cat "$T/ref"; fail "sign-refused of agent py has no matched list"; }
kv=$(uname -r | awk -F. '{print $1 * 1000 + $2}')
if [ "$kv" -ge 6009 ]; then
	[ "$(json_get pidfd_ino <"$T/peer")" -gt 0 ] 2>/dev/null ||
		{ cat "$T/peer"; fail "no pidfd_ino on a kernel with pidfs"; }
fi

# --- a binary replaced in place: the next connection's hash is the new one --
ino=$(stat -c %i "$T/bin/a/p11client")
{ cat "$P11CLIENT"; printf 'stint-selectors-test\n'; } >"$T/variant"
cp "$T/variant" "$T/bin/a/p11client" # same path, same inode, new bytes
[ "$(stat -c %i "$T/bin/a/p11client")" = "$ino" ] || note "cp changed the inode"
sum_new=$(sha256sum "$T/bin/a/p11client" | cut -d' ' -f1)
[ "$sum_new" != "$sum_a" ] || fail "the variant has the same hash"
sign_as "$U" a "$ta" >"$T/out" 2>&1 || { cat "$T/out"; fail "alpha cannot sign after its binary changed"; }
[ "$(last_peer "$ta" | json_get exe_sha256)" = "$sum_new" ] ||
	{ last_peer "$ta"; fail "audit still shows the old exe_sha256 after an in-place replacement"; }
# Again with the same size (same path, inode and size, other bytes): the
# cache must notice by mtime/ctime, not only by size.
size=$(stat -c %s "$T/bin/a/p11client")
{ cat "$P11CLIENT"; printf 'stint-selectors-TEST\n'; } >"$T/variant"
cp "$T/variant" "$T/bin/a/p11client"
[ "$(stat -c %s "$T/bin/a/p11client")" = "$size" ] || fail "the second variant changed size"
sum_new2=$(sha256sum "$T/bin/a/p11client" | cut -d' ' -f1)
[ "$sum_new2" != "$sum_new" ] || fail "the second variant has the same hash"
sign_as "$U" a "$ta" >"$T/out" 2>&1 || { cat "$T/out"; fail "alpha cannot sign after a same-size replacement"; }
[ "$(last_peer "$ta" | json_get exe_sha256)" = "$sum_new2" ] ||
	{ last_peer "$ta"; fail "audit shows a stale exe_sha256 after a same-size in-place replacement"; }

# --- --exe-sha256 that does not match: nothing --------------------------------
cp "$P11CLIENT" "$T/bin/pinned"
chmod 0755 "$T/bin/pinned"
sum_true=$(sha256sum "$(readlink -f /bin/true)" | cut -d" " -f1)
stint agent add pinned --uid "$U2" --exe-sha256 "$sum_true" >/dev/null 2>&1 || fail "agent add --exe-sha256"
tpin=$(task_start pinned --ttl 10m) || exit 1
as_uid "$U2" "$T/bin/pinned" --module "$MOD" --list >"$T/lp" 2>&1
grep -q "$tpin" "$T/lp" && { cat "$T/lp"; fail "a process whose hash does not match --exe-sha256 sees the task"; }
! as_uid "$U2" "$T/bin/pinned" --module "$MOD" --label "$tpin" --in "$T/digest" >"$T/out" 2>&1 ||
	fail "a process whose hash does not match --exe-sha256 signed"
# ...and the right hash (upper case accepted) matches.
sum_pin=$(sha256sum "$T/bin/pinned" | cut -d' ' -f1 | tr a-f A-F)
stint agent add pinned2 --uid "$U2" --exe-sha256 "$sum_pin" >/dev/null 2>&1 || fail "agent add pinned2"
tpin2=$(task_start pinned2 --ttl 10m) || exit 1
as_uid "$U2" "$T/bin/pinned" --module "$MOD" --label "$tpin2" --in "$T/digest" >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "the process with the pinned hash cannot sign"; }
[ "$(last_peer "$tpin2" | matched_of)" = "uid,exe_sha256" ] ||
	{ last_peer "$tpin2"; fail "audit peer matched is not uid,exe_sha256 for agent pinned2"; }
# The leaf records the pin (issue 12 §6), on either backend.
stint task show "$tpin2" --cert >"$T/leaf-pin2.pem" || fail "task show --cert (pinned2)"
stint verify-peer "$T/leaf-pin2.pem" --json >"$T/vp-pin2" || { cat "$T/vp-pin2"; fail "verify-peer (pinned2)"; }
[ "$(json_get binding.exe_sha256 <"$T/vp-pin2")" = "$(echo "$sum_pin" | tr A-F a-f)" ] ||
	{ cat "$T/vp-pin2"; fail "the leaf of pinned2 lacks the agent's exe SHA-256"; }

# --- two agents, one uid, told apart by cgroup --------------------------------
CGROOT=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
CG=
if [ -n "$CGROOT" ] && mkdir "$CGROOT/stint-sel-$$" 2>/dev/null; then
	CG=stint-sel-$$
	UNITN=stint-sel-$$.service
	mkdir "$CGROOT/$CG/x" "$CGROOT/$CG/y" "$CGROOT/$CG/$UNITN"
	cg_cleanup()
	{
		local d

		for d in x y "$UNITN"; do
			[ -d "$CGROOT/$CG/$d" ] || continue
			# shellcheck disable=SC2013
			for p in $(cat "$CGROOT/$CG/$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
			rmdir "$CGROOT/$CG/$d" 2>/dev/null
		done
		rmdir "$CGROOT/$CG" 2>/dev/null
	}
	trap 'rc=$?; cg_cleanup; (exit $rc); _cleanup' EXIT
	# in_cg X CMD...: CMD as uid U3, inside cgroup X from its first
	# instruction on (moved before the exec).
	in_cg()
	{
		local cg=$1

		shift
		sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGROOT/$CG/$cg" \
			setpriv --reuid="$U3" --regid="$U3" --clear-groups -- "$@"
	}
	stint agent add cgx --uid "$U3" --cgroup "/$CG/x" >/dev/null 2>&1 || fail "agent add --cgroup x"
	stint agent add cgy --uid "$U3" --cgroup "/$CG/y" >"$T/out" 2>&1 || { cat "$T/out"; fail "agent add --cgroup y"; }
	tx=$(task_start cgx --ttl 10m) || exit 1
	ty=$(task_start cgy --ttl 10m) || exit 1
	in_cg x "$T/bin/c/p11client" --module "$MOD" --list >"$T/lx" 2>&1
	grep -q "$tx" "$T/lx" || { cat "$T/lx"; fail "cgroup x does not see cgx's task"; }
	grep -q "$ty" "$T/lx" && { cat "$T/lx"; fail "cgroup x sees cgy's task"; }
	in_cg x "$T/bin/c/p11client" --module "$MOD" --label "$tx" --in "$T/digest" >"$T/out" 2>&1 ||
		{ cat "$T/out"; fail "cgroup x cannot sign with its task"; }
	! in_cg y "$T/bin/c/p11client" --module "$MOD" --label "$tx" --in "$T/digest" >"$T/out" 2>&1 ||
		fail "cgroup y signed with cgroup x's task"
	in_cg y "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$tx" >"$T/out" 2>&1
	grep -q '^status=4 ' "$T/out" || { cat "$T/out"; fail "raw SIGN of cgx's task from cgroup y: expected status 4"; }
	# Outside both cgroups: no agent at all.
	as_uid "$U3" "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$tx" >"$T/out" 2>&1
	grep -q '^status=3 ' "$T/out" || { cat "$T/out"; fail "raw SIGN from outside both cgroups: expected status 3"; }
	[ "$(last_peer "$tx" | json_get cgroup)" = "/$CG/x" ] ||
		{ last_peer "$tx"; fail "audit peer cgroup is not /$CG/x"; }
	[ "$(last_peer "$tx" | matched_of)" = "uid,cgroup" ] ||
		{ last_peer "$tx"; fail "audit peer matched is not uid,cgroup for agent cgx"; }
	# --unit: the systemd unit nearest the leaf of the process's cgroup.
	stint agent add unitw --uid "$U3" --unit "$UNITN" >"$T/out" 2>&1 || { cat "$T/out"; fail "agent add --unit"; }
	tw=$(task_start unitw --ttl 10m) || exit 1
	in_cg "$UNITN" "$T/bin/c/p11client" --module "$MOD" --label "$tw" --in "$T/digest" >"$T/out" 2>&1 ||
		{ cat "$T/out"; fail "a process in $UNITN cannot sign with unitw's task"; }
	[ "$(last_peer "$tw" | json_get unit)" = "$UNITN" ] || { last_peer "$tw"; fail "audit peer unit is not $UNITN"; }
	[ "$(last_peer "$tw" | matched_of)" = "uid,unit" ] ||
		{ last_peer "$tw"; fail "audit peer matched is not uid,unit for agent unitw"; }
	in_cg x "$PYTHON" "$T/wire.py" sign "$STINT_SOCKET" "$tw" >"$T/out" 2>&1
	grep -q '^status=4 ' "$T/out" || { cat "$T/out"; fail "raw SIGN of unitw's task from outside $UNITN: expected status 4"; }
else
	note "no writable cgroup v2 hierarchy: cgroup part skipped"
fi

# --- the pidfd_open() fallback (kernels without SO_PEERPIDFD) -------------------
stintd_stop
STINT_PEER_FALLBACK=1 stintd_start
sign_as "$U" b "$tb" >"$T/out" 2>&1 || { cat "$T/out"; fail "fallback: beta cannot sign"; }
! sign_as "$U" b "$ta" >"$T/out" 2>&1 || fail "fallback: beta signed with alpha's task"
[ "$(last_peer "$tb" | json_get exe_sha256)" = "$(sha256sum "$T/bin/b/p11client" | cut -d' ' -f1)" ] ||
	{ last_peer "$tb"; fail "fallback: audit exe_sha256"; }

stint audit verify "$AUDIT_LOG" >"$T/out" 2>&1 || { cat "$T/out"; fail "audit verify"; }
exit 0
