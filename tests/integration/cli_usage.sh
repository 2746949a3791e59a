#!/bin/bash
# stint CLI without a daemon: help, usage errors (exit 2), connection
# errors (exit 1), offline `stint audit verify` on a hand-built log (the hash
# rule of attest/audit.h, computed by python3), tamper/delete/cut detection.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
tmp=$T
[ -x "$STINT" ] || skip "no stint CLI in $top_builddir (build first)"
fails=0
check() { # expected-rc description command...
	want=$1; what=$2; shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"; rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "FAIL: $what: exit $rc, want $want"; cat "$tmp/out" "$tmp/err"
		fails=$((fails + 1))
	else
		echo "ok: $what"
	fi
}
grep_out() { # file pattern description
	if grep -q -- "$2" "$tmp/$1"; then echo "ok: $3"; else
		echo "FAIL: $3: no '$2' in $1:"; cat "$tmp/$1"; fails=$((fails + 1)); fi
}

check 0 "--help" "$STINT" --help
grep_out out "usage: stint" "--help prints usage"
check 0 "--version" "$STINT" --version
for v in agent task audit status; do
	check 0 "help $v" "$STINT" help "$v"
	check 0 "$v --help" "$STINT" "$v" --help
done
for sub in "agent add" "agent list" "agent remove" "task start" "task end" \
    "task list" "task show" "audit verify" "audit tail"; do
	# shellcheck disable=SC2086
	check 0 "$sub --help" "$STINT" $sub --help
done

check 2 "no command" "$STINT"
check 2 "unknown command" "$STINT" frobnicate
check 2 "unknown global option" "$STINT" --frob status
check 2 "unknown option" "$STINT" task list --frob
grep_out err "try 'stint task list --help'" "usage error says what to try"
check 2 "missing argument" "$STINT" task start --agent
check 2 "bad duration" "$STINT" task start --agent a --ttl 10x
grep_out err "bad duration" "bad duration named"
check 2 "bad key type" "$STINT" task start --agent a --key dsa
check 2 "bad agent name" "$STINT" agent add 'a/b' --uid 0
check 2 "missing --uid" "$STINT" agent add a
check 2 "unknown user" "$STINT" agent add a --uid no-such-user-stint
check 2 "unknown mechanism" "$STINT" agent add a --uid 0 --mechanisms ecdsa,md5
check 2 "task end without id" "$STINT" task end
check 2 "bad -n" "$STINT" audit tail -n 0
check 2 "bad --head" "$STINT" audit verify x --head 1:xyz

check 1 "no daemon" "$STINT" --socket "$tmp/none.sock" status
grep_out err "cannot connect to $tmp/none.sock" "connect error names the socket"
grep_out err "is stintd running" "connect error says what to do"
STINT_ADMIN_SOCKET="$tmp/env.sock" "$STINT" agent list 2>"$tmp/err"
grep_out err "$tmp/env.sock" "STINT_ADMIN_SOCKET is used"

# A three-record log built by the documented rule: hash = SHA-256 of the
# line without its "hash" member; prev = previous hash, zeros first.
python3 - "$tmp/audit.log" <<'PY' >"$tmp/head" || exit 99
import hashlib, json, sys
prev = "0" * 64
with open(sys.argv[1], "w") as f:
    for seq, ev in enumerate(["daemon-start", "agent-add", "task-start"], 1):
        body = json.dumps({"seq": seq, "time": "2026-01-01T00:00:00.000000Z",
                           "event": ev, "prev": prev}, separators=(",", ":"))
        h = hashlib.sha256(body.encode()).hexdigest()
        f.write(body[:-1] + ',"hash":"%s"}\n' % h)
        prev = h
print("3:%s" % prev)
PY
check 0 "offline verify" "$STINT" audit verify "$tmp/audit.log"
grep_out out "audit log OK: 3 records, last seq 3" "verify summary"
check 0 "offline verify with head" "$STINT" audit verify "$tmp/audit.log" --head "$(cat "$tmp/head")"
check 0 "offline verify --json" "$STINT" audit verify "$tmp/audit.log" --json
grep_out out '"ok": true' "json ok"

sed '2s/agent-add/agent-del/' "$tmp/audit.log" >"$tmp/t.log"
check 1 "changed byte" "$STINT" audit verify "$tmp/t.log"
grep_out out "BROKEN at line 2" "changed byte: line named"
sed '2d' "$tmp/audit.log" >"$tmp/t.log"
check 1 "deleted line" "$STINT" audit verify "$tmp/t.log"
grep_out out "BROKEN at line 2" "deleted line: line named"
head -n 2 "$tmp/audit.log" >"$tmp/t.log"
check 1 "cut tail against head" "$STINT" audit verify "$tmp/t.log" --head "$(cat "$tmp/head")"
grep_out out "BROKEN" "cut tail reported"
check 1 "missing file" "$STINT" audit verify "$tmp/nope.log"

[ "$fails" -eq 0 ] || fail "$fails failures"
echo "all passed"
