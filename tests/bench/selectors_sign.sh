#!/bin/bash
# SIGN throughput with agent selectors against uid alone (issue 12 §8:
# "SIGN throughput with selectors equals today's within noise"). Prints
# numbers and their ratio; not a pass/fail test (times are never asserted).
# Run from an optimized build:
#
#	make bench            (runs this after connect_cost.sh)
#	top_builddir=/tmp/build tests/bench/selectors_sign.sh
#
# Two agents on one stintd, each with its own uid and an EC task:
#   plain   --uid U1                                  (today's agent)
#   pinned  --uid U2 --gid U2 --exe P --exe-sha256 H  (+ --cgroup C when a
#           writable cgroup v2 hierarchy exists; the client runs inside C)
# Each client is one p11client process signing through stint-pkcs11.so for
# SELBENCH_SECONDS s. Every request is judged on its sender (SCM_CREDENTIALS,
# the selectors re-checked against cached facts), so any per-request cost of
# selectors shows here. The rows are interleaved within each round so that
# background noise spreads over both alike; figures are medians of
# SELBENCH_RUNS rounds (5 rounds of 3 s by default).

. "$(cd "$(dirname "$0")/../integration" && pwd)/lib.sh"
. "$top_srcdir/tests/bench/stats.sh"

RUNS=${SELBENCH_RUNS:-5}
SECS=${SELBENCH_SECONDS:-3}
need_root
need_cmd setpriv sha256sum awk sort
need_p11client
stint_tmpdir
stint_setup

U1=$(free_uid 63001)
U2=$(free_uid $((U1 + 1)))
mkdir -m 0755 "$T/bin"
cp "$STINT_MODULE" "$P11CLIENT" "$T/bin/"
MOD=$T/bin/$(basename "$STINT_MODULE")
CLI=$T/bin/$(basename "$P11CLIENT")
chmod 0755 "$T/bin"/*
head -c 32 /dev/urandom >"$T/digest"
chmod 0644 "$T/digest"
chmod 0755 "$T"

SEL="--gid $U2 --exe $CLI --exe-sha256 $(sha256sum "$CLI" | cut -d' ' -f1)"
CGROOT=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
CG=
if [ -n "$CGROOT" ] && mkdir "$CGROOT/stint-selbench-$$" 2>/dev/null; then
	CG=/stint-selbench-$$
	cg_done()
	{
		local rc=$? p

		for p in $(cat "$CGROOT$CG/cgroup.procs" 2>/dev/null); do
			kill -9 "$p"
		done
		sleep 0.2
		rmdir "$CGROOT$CG" 2>/dev/null
		(exit $rc)
		_cleanup
	}
	trap cg_done EXIT
	SEL="$SEL --cgroup $CG"
fi
agent_add plain "$U1"
# shellcheck disable=SC2086
agent_add pinned "$U2" $SEL
TP=$(task_start plain --key ec-p256 --ttl 1h)
TS=$(task_start pinned --key ec-p256 --ttl 1h)

# sign_rate UID TOKEN TASK: one client's signatures per second, or nothing.
sign_rate()
{
	local uid=$1 tok=$2 task=$3 pre=()

	[ "$tok" = pinned ] && [ -n "$CG" ] &&
		pre=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGROOT$CG")
	timeout $((SECS + 60)) "${pre[@]}" setpriv --reuid="$uid" \
		--regid="$uid" --clear-groups -- env STINT_SOCKET="$STINT_SOCKET" \
		"$CLI" --module "$MOD" --token "$tok" --label "$task" \
		--mech ecdsa --in "$T/digest" --seconds "$SECS" 2>&1 |
		sed -n 's/.*rate=\([0-9.]*\)\/s.*/\1/p'
}

# Both must sign at all before anything is measured.
for row in "$U1 plain $TP" "$U2 pinned $TS"; do
	# shellcheck disable=SC2086
	set -- $row
	r=$(SECS=1 sign_rate "$@")
	[ -n "$r" ] || fail "agent $2 cannot sign (selectors: ${SEL})"
done

RP=() RS=()
printf 'rounds: '
for ((i = 0; i < RUNS; i++)); do
	r=$(sign_rate "$U1" plain "$TP") && [ -n "$r" ] && RP+=("$r")
	r=$(sign_rate "$U2" pinned "$TS") && [ -n "$r" ] && RS+=("$r")
	printf '.'
done
echo
mp=$(median "${RP[@]}")
ms=$(median "${RS[@]}")
echo "SIGN throughput, ecdsa P-256, 1 client, median of $RUNS x ${SECS} s:"
printf '  %-44s %8s sig/s  (%s)\n' "uid only (--uid)" "$mp" "${RP[*]}"
printf '  %-44s %8s sig/s  (%s)\n' "selectors (uid gid exe exe-sha256${CG:+ cgroup})" \
	"$ms" "${RS[*]}"
echo "  ratio selectors / uid only: $(ratio "$ms" "$mp")"
[ -n "$CG" ] || echo "  (no writable cgroup v2 hierarchy: --cgroup not in the selector row)"
