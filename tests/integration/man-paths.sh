#!/bin/bash
# The installed man pages name configure's real paths (issue 13,
# operations docs): stint(1), stintd(8), stint.conf(5) and stint-pkcs11(8)
# are made from man/ with configure's sysconfdir, localstatedir,
# runstatedir and pkcs11dir in place of the FHS defaults the sources show
# (/etc/stint, /var/lib/stint, /run/stint, @pkcs11dir@). For this build
# tree, each generated page names its configured directories, and none of
# the defaults is left where configure chose another directory (the test
# build's prefix is /usr/local, so they differ there). The example config
# that `make install` writes gets the same paths.
. "$(dirname "$0")/lib.sh"
stint_tmpdir
need_cmd make sed grep

# mkvar NAME: a Makefile variable of the build tree, fully expanded.
mkvar()
{
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory \
		-C "$top_builddir" -f Makefile -f - "print-$1" <<EOF
print-$1:
	@echo \$($1)
EOF
}
sysconf=$(mkvar sysconfdir) && localstate=$(mkvar localstatedir) &&
	runstate=$(mkvar runstatedir) && pkcs11=$(mkvar pkcs11dir) ||
	fail "cannot read the directories from $top_builddir/Makefile"
note "configure: sysconfdir=$sysconf localstatedir=$localstate runstatedir=$runstate pkcs11dir=$pkcs11"
[ -n "$sysconf" ] && [ -n "$localstate" ] && [ -n "$runstate" ] && [ -n "$pkcs11" ] ||
	fail "an empty directory variable"

pages=(gen/man/stint.1 gen/man/stintd.8 gen/man/stint.conf.5 gen/man/stint-pkcs11.8)
make -s --no-print-directory -C "$top_builddir" "${pages[@]}" >"$T/make.log" 2>&1 ||
	{ cat "$T/make.log"; fail "make ${pages[*]}"; }

# roff PATH: the path as the pages spell it ('-' is '\-' in roff).
roff() { printf '%s' "$1" | sed 's/-/\\-/g'; }
# default_left FILE DEFAULT: DEFAULT where it starts a path (not inside a
# longer one such as /usr/local/etc/stint).
default_left()
{
	grep -nE "(^|[^[:alnum:]_./\\-])$1([^[:alnum:]_-]|$)" "$2"
}

for p in "${pages[@]}"; do
	f=$top_builddir/$p
	[ -s "$f" ] || fail "no $f"
	! grep -n '@pkcs11dir@' "$f" || fail "$p still has @pkcs11dir@"
	for pair in "/etc/stint $sysconf/stint" "/var/lib/stint $localstate/lib/stint" \
		"/run/stint $runstate/stint"; do
		set -- $pair
		if [ "$1" != "$2" ]; then
			! default_left "$1" "$f" ||
				fail "$p names $1, not configure's $2"
		fi
	done
done
# Each configured directory appears where the pages name it.
grep -qF "$(roff "$sysconf/stint/stint.conf")" "$top_builddir/gen/man/stintd.8" ||
	fail "stintd(8) does not name $sysconf/stint/stint.conf"
grep -qF "$(roff "$localstate/lib/stint/audit.log")" "$top_builddir/gen/man/stint.conf.5" ||
	fail "stint.conf(5) does not name $localstate/lib/stint/audit.log"
grep -qF "$(roff "$runstate/stint/admin.sock")" "$top_builddir/gen/man/stint.1" ||
	fail "stint(1) does not name $runstate/stint/admin.sock"
grep -qF "$(roff "$pkcs11/stint-pkcs11.so")" "$top_builddir/gen/man/stint-pkcs11.8" ||
	fail "stint-pkcs11(8) does not name $pkcs11/stint-pkcs11.so"
grep -qF "$(roff "$pkcs11/stint-pkcs11.so")" "$top_builddir/gen/man/stint.1" ||
	fail "stint(1) does not name $pkcs11/stint-pkcs11.so"
note "man pages name $sysconf/stint, $localstate/lib/stint, $runstate/stint, $pkcs11"

# The config make install writes (only when none is installed): the same.
make -s --no-print-directory -C "$top_builddir" install-data-hook DESTDIR="$T/inst" \
	>"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "make install-data-hook DESTDIR"; }
conf=$T/inst$sysconf/stint/stint.conf
[ -s "$conf" ] || fail "no $conf after make install-data-hook"
grep -qE "^(; *)?pin_file = $sysconf/stint/hsm.pin\$" "$conf" ||
	{ grep -n pin_file "$conf"; fail "the installed stint.conf does not name $sysconf/stint/hsm.pin"; }
for d in /etc/stint /var/lib/stint /run/stint; do
	case " $sysconf/stint $localstate/lib/stint $runstate/stint " in
	*" $d "*) continue ;;
	esac
	! default_left "$d" "$conf" || fail "the installed stint.conf names $d"
done
note "the installed stint.conf names configure's paths"
exit 0
