#!/bin/bash
# libstint-verify as a library (issue 11, item 8): the example relying
# party examples/verify_peer.c, built by make check against
# libstint-verify.la, accepts a real task certificate and refuses it for
# another agent and against another CA; installed with DESTDIR, the
# library, <stint/verify.h> and stint-verify.pc build the same example
# with nothing but `pkg-config --cflags --libs stint-verify`.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd openssl pkg-config gcc
EXAMPLE=$top_builddir/examples/verify_peer
[ -x "$EXAMPLE" ] || skip "no $EXAMPLE (make check builds it)"
stint_setup
agent_add alpha "$(id -u)"

id=$(task_start alpha --ttl 10m)
stint task show "$id" --cert >"$T/leaf.pem" || fail "task show --cert"
stint ca cert >"$T/ca.pem" || fail "stint ca cert"
deadline=$(stint task show "$id" --json | json_get not_after_unix)

"$EXAMPLE" "$T/leaf.pem" "$T/ca.pem" alpha >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "the example refused a real leaf"; }
[ "$(cat "$T/out")" = "agent alpha task $id not_after $deadline" ] ||
	{ cat "$T/out"; fail "the example printed the wrong identity"; }
"$EXAMPLE" "$T/leaf.pem" "$T/ca.pem" beta >"$T/out" 2>&1
[ $? -eq 1 ] || fail "the example accepted the leaf for agent beta"
grep -q "refused, check agent:" "$T/out" || { cat "$T/out"; fail "agent refusal not named"; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$T/o.key" -out "$T/other-ca.pem" -days 1 -subj "/CN=Other" 2>/dev/null
"$EXAMPLE" "$T/leaf.pem" "$T/other-ca.pem" >"$T/out" 2>&1
[ $? -eq 1 ] || fail "the example accepted a leaf of another CA"
grep -q "refused, check chain:" "$T/out" || { cat "$T/out"; fail "chain refusal not named"; }
note "examples/verify_peer accepts the leaf and names each refusal"

# --- installed: library, header and pkg-config file ----------------------------
if [ "$STINT_SANITIZERS" = yes ]; then
	note "sanitizer build: not building against the installed library"
	exit 0
fi
make -s --no-print-directory -C "$top_builddir" install-libLTLIBRARIES \
	install-stintincludeHEADERS install-pkgconfigDATA DESTDIR="$T/inst" \
	>"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "make install DESTDIR"; }
pc=$(find "$T/inst" -name stint-verify.pc) && [ -n "$pc" ] || fail "stint-verify.pc not installed"
flags=$(PKG_CONFIG_SYSROOT_DIR=$T/inst PKG_CONFIG_PATH=$(dirname "$pc") \
	pkg-config --cflags --libs stint-verify) || fail "pkg-config stint-verify"
note "pkg-config --cflags --libs stint-verify: $flags"
# shellcheck disable=SC2086
gcc -std=c11 -Wall -Wextra -Werror -o "$T/verify_peer" \
	"$top_srcdir/examples/verify_peer.c" $flags >"$T/cc.log" 2>&1 ||
	{ cat "$T/cc.log"; fail "the example does not build from the installed files"; }
# The soname: .so.1 since struct stint_peer_identity grew (delegation).
libdir=$(dirname "$(find "$T/inst" -name 'libstint-verify.so.1' | head -1)")
LD_LIBRARY_PATH=$libdir "$T/verify_peer" "$T/leaf.pem" "$T/ca.pem" alpha >"$T/out" 2>&1 ||
	{ cat "$T/out"; fail "the installed example refused the leaf"; }
LD_LIBRARY_PATH=$libdir ldd "$T/verify_peer" >"$T/ldd"
grep -q "libstint-verify.so.1 => $libdir/" "$T/ldd" ||
	{ cat "$T/ldd"; fail "the example did not use the installed library"; }
exit 0
