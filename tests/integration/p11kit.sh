#!/bin/bash
# p11-kit registration (issue 11, item 3): `make install` puts stint.module
# into p11-kit's module config directory (honouring DESTDIR); registered,
# the Stint token is found with no module path by `p11-kit list-modules`,
# `p11tool --list-tokens` and the libp11 engine (whose default module is
# p11-kit-proxy.so). Loading it is quick and silent in a process that maps
# to no agent and while stintd is down: one empty slot, nothing on stderr.
#
# p11-kit reads ~/.config/pkcs11/modules only for non-root users, so the
# agents here are unprivileged uids with a private HOME: the system
# directory, which every other program on the machine reads, is never
# touched.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd p11-kit p11tool openssl pkg-config
engine_path >/dev/null || skip "libp11 engine not installed (libengine-pkcs11-openssl)"
stint_setup
AGENT_UID=42731
OTHER_UID=42732
agent_add alpha "$AGENT_UID"

# --- make install (DESTDIR) --------------------------------------------------
configs=$(sed -n 's/^P11_MODULE_CONFIGS = //p' "$top_builddir/Makefile")
[ "$configs" = "$(pkg-config --variable=p11_module_configs p11-kit-1)" ] ||
	fail "configure chose '$configs', not p11-kit's module config directory"
pkcs11dir=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$top_builddir" -f Makefile -f - print-pkcs11dir <<'EOF'
print-pkcs11dir:
	@echo $(pkcs11dir)
EOF
) || fail "cannot read pkcs11dir from the Makefile"
make -s --no-print-directory -C "$top_builddir" install-p11kitmoduleDATA DESTDIR="$T/inst" >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log"; fail "make install-p11kitmoduleDATA DESTDIR=..."; }
installed=$T/inst$configs/stint.module
[ -f "$installed" ] || fail "no $installed after make install DESTDIR=$T/inst"
[ ! -e "$configs/stint.module" ] || [ "$configs/stint.module" -ef "$installed" ] ||
	note "(a stint.module is also installed system-wide in $configs)"
grep -qx "module: $pkcs11dir/stint-pkcs11.so" "$installed" ||
	{ cat "$installed"; fail "stint.module does not name $pkcs11dir/stint-pkcs11.so"; }
grep -qx "critical: no" "$installed" || fail "stint.module is critical"
note "make install put $configs/stint.module under DESTDIR"

# --- registered for two unprivileged users --------------------------------
# The installed file, with the module path pointing at this build's module.
cp "$STINT_MODULE" "$T/stint-pkcs11.so"
chmod 0755 "$T/stint-pkcs11.so"
for u in "$AGENT_UID" "$OTHER_UID"; do
	mkdir -p "$T/home-$u/.config/pkcs11/modules"
	sed "s|^module: .*|module: $T/stint-pkcs11.so|" "$installed" \
		>"$T/home-$u/.config/pkcs11/modules/stint.module"
	chown -R "$u:$u" "$T/home-$u"
done
# SoftHSM's own registration is loaded too: keep stintd's token config away.
as_agent()
{
	local u=$1

	shift
	as_uid "$u" env -u SOFTHSM2_CONF HOME="$T/home-$u" "${FOREIGN[@]}" \
		timeout 60 "$@" </dev/null
}

id=$(task_start alpha --ttl 10m)
as_agent "$AGENT_UID" p11-kit list-modules >"$T/modules" 2>"$T/modules.err" ||
	{ cat "$T/modules" "$T/modules.err"; fail "p11-kit list-modules"; }
grep -A6 "^stint: $T/stint-pkcs11.so" "$T/modules" | grep -q "token: alpha" ||
	{ cat "$T/modules"; fail "p11-kit list-modules shows no Stint token 'alpha'"; }
as_agent "$AGENT_UID" p11tool --list-tokens >"$T/p11tokens" 2>&1 ||
	{ cat "$T/p11tokens"; fail "p11tool --list-tokens"; }
grep -q "URL: pkcs11:model=stint-pkcs11;.*token=alpha" "$T/p11tokens" ||
	{ cat "$T/p11tokens"; fail "p11tool --list-tokens does not list the Stint token"; }
as_agent "$AGENT_UID" p11tool --list-privkeys "pkcs11:token=alpha" >"$T/keys" 2>&1 ||
	{ cat "$T/keys"; fail "p11tool --list-privkeys"; }
grep -q "object=$id;type=private" "$T/keys" || { cat "$T/keys"; fail "p11tool: no key $id"; }
note "p11-kit list-modules and p11tool find the token with no module path"

# The libp11 engine with no MODULE_PATH: its default is p11-kit-proxy.so.
cat >"$T/engine.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $(engine_path)
init = 0
EOF
grep -q MODULE_PATH "$T/engine.cnf" && fail "the engine config names a module"
head -c 32 /dev/urandom >"$T/digest"
chmod 0644 "$T/digest" "$T/engine.cnf"
as_agent "$AGENT_UID" env OPENSSL_CONF="$T/engine.cnf" openssl pkeyutl -engine pkcs11 \
	-keyform engine -sign -inkey "pkcs11:token=alpha;object=$id;type=private" \
	-in "$T/digest" >"$T/sig" 2>"$T/engine.err" ||
	{ cat "$T/engine.err"; fail "the libp11 engine without MODULE_PATH could not sign"; }
stint task show "$id" --pem >"$T/pub.pem"
openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" -in "$T/digest" -sigfile "$T/sig" >/dev/null ||
	fail "the engine's signature (through p11-kit-proxy) does not verify"
note "libp11 engine, default module p11-kit-proxy.so: signed with $id"

# --- quick and silent where there is nothing to show ---------------------------
quiet_empty()
{
	local what=$1 u=$2 t0 t1

	t0=$(date +%s%N)
	as_agent "$u" p11-kit list-modules >"$T/modules" 2>"$T/modules.err" ||
		{ cat "$T/modules.err"; fail "$what: p11-kit list-modules failed"; }
	t1=$(date +%s%N)
	grep -q "^stint: " "$T/modules" || { cat "$T/modules"; fail "$what: module not loaded"; }
	grep -A6 "^stint: " "$T/modules" | grep -q "token:" &&
		{ cat "$T/modules"; fail "$what: a Stint token is shown"; }
	grep -i "stint" "$T/modules.err" && fail "$what: the module wrote to stderr"
	[ $(((t1 - t0) / 1000000)) -lt 10000 ] || fail "$what: list-modules took $(((t1 - t0) / 1000000)) ms"
	note "$what: empty slot, silent, p11-kit list-modules took $(((t1 - t0) / 1000000)) ms"
}
quiet_empty "a uid that is no agent" "$OTHER_UID"
stintd_stop
quiet_empty "stintd down" "$AGENT_UID"
# The engine fails cleanly (no key) rather than hanging or crashing.
! as_agent "$AGENT_UID" env OPENSSL_CONF="$T/engine.cnf" openssl pkeyutl -engine pkcs11 \
	-keyform engine -sign -inkey "pkcs11:token=alpha;object=$id;type=private" \
	-in "$T/digest" -out /dev/null >"$T/engine.err" 2>&1 ||
	fail "the engine signed with stintd down"
exit 0
