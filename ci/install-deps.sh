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
)

missing=()
for p in "${packages[@]}"; do
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
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
