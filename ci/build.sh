#!/bin/bash
# Builds Stint out of tree.
#   ci/build.sh [BUILDDIR [CONFIGURE-ARGS...]]
# BUILDDIR defaults to _ci/default in the source tree. Runs autoreconf -fi
# first (skip with STINT_NO_AUTORECONF=1 when the caller already did).
# Environment: CC and friends go to configure as usual; JOBS (default: the
# number of CPUs) for make.
set -euo pipefail

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=${1:-$srcdir/_ci/default}
[ $# -gt 0 ] && shift
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

if [ -z "${STINT_NO_AUTORECONF:-}" ]; then
	echo "build: autoreconf -fi in $srcdir"
	(cd "$srcdir" && autoreconf -fi)
fi

mkdir -p "$builddir"
cd "$builddir"
echo "build: configure $* in $builddir"
"$srcdir/configure" "$@"
echo "build: make -j$jobs"
make -j"$jobs"
