#!/bin/bash
# Installs every Debian 12 package Stint's build, tests, demo and CI need.
# Idempotent, and quick when everything is already there (no apt at all).
# Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
	# build
	autoconf automake libtool pkg-config make gcc clang clang-format
	libssl-dev libp11-kit-dev libtss2-dev libsqlite3-dev libcbor-dev
	libjansson-dev libinih-dev libcmocka-dev
	# tests and demo
	softhsm2 opensc p11-kit p11-kit-modules libengine-pkcs11-openssl
	openssl curl gnutls-bin python3 python3-pykcs11 libclang-rt-14-dev procps util-linux
	passwd swtpm swtpm-tools tpm2-tools nginx-light git ca-certificates strace
	python3-cryptography iproute2 openssh-client openssh-server python3-pycurl
	openjdk-17-jre-headless
	# audit-forward.sh: a private rsyslogd receives forwarded records;
	# systemd.sh: systemd-analyze and systemd-socket-activate (the package
	# only, systemd need not be pid 1)
	rsyslog systemd
	# logrotate.sh: the snippet etc/logrotate.d/stint, run by logrotate
	logrotate
	# agents-dir-ansible.sh: examples/ansible, ansible-playbook -c local
	ansible-core
)
# The OpenSSL 3 provider (docs/clients.md) is not in Debian 12 itself:
# it comes from bookworm-backports, pinned so that nothing else does.
backports=(pkcs11-provider)
BACKPORTS_LIST=/etc/apt/sources.list.d/stint-bookworm-backports.sources
BACKPORTS_PIN=/etc/apt/preferences.d/stint-bookworm-backports

missing=()
for p in "${packages[@]}" "${backports[@]}"; do
	# "install ok installed" only: a removed package leaves config behind.
	if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != \
		"install ok installed" ]; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages already installed"
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || {
		echo "install-deps: missing packages and not root: run as root" >&2
		exit 1
	}
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# Backports is enabled for the packages in $backports only: priority -1
# for everything else in it, 500 (as main) for those.
if [ ! -f "$BACKPORTS_PIN" ] || [ ! -f "$BACKPORTS_LIST" ]; then
	printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' \
		'Suites: bookworm-backports' 'Components: main' \
		'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
		$sudo tee "$BACKPORTS_LIST" >/dev/null
	{
		printf '%s\n' 'Package: *' 'Pin: release n=bookworm-backports' \
			'Pin-Priority: -1' ''
		printf '%s\n' "Package: ${backports[*]}" \
			'Pin: release n=bookworm-backports' 'Pin-Priority: 500'
	} | $sudo tee "$BACKPORTS_PIN" >/dev/null
fi
$sudo apt-get update -q
# Installing openssh-server must not start a system sshd (the tests run
# their own on 127.0.0.1): no service starts during this install.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 0755 "$policy"
	trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
