#!/bin/bash
# Installs the Debian 12 packages only the benchmarks need, on top of
# ci/install-deps.sh: tpm2-pkcs11 (the module, and tpm2_ptool to make its
# store) and tpm2-abrmd with its TCTI, which tpm2_ptool's tpm2-tools need
# while the store is made (tests/bench/bench_tpm.sh, `make bench-tpm`).
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(libtpm2-pkcs11-1 libtpm2-pkcs11-tools tpm2-abrmd
	libtss2-tcti-tabrmd0 dbus strace)

missing=()
for p in "${packages[@]}"; do
	if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != \
		"install ok installed" ]; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
