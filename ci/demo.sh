#!/bin/bash
# The Stint demo on a fresh Debian 12 machine: installs missing packages,
# builds (in $STINT_CI_DIR/default, default _ci/default), runs tests/demo.sh.
set -euo pipefail

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=${STINT_CI_DIR:-$srcdir/_ci}/default
log=${TMPDIR:-/tmp}/stint-demo-build.log

"$srcdir/ci/install-deps.sh"
echo "demo: building in $builddir (log: $log)"
"$srcdir/ci/build.sh" "$builddir" >"$log" 2>&1 || {
	tail -n 60 "$log" >&2
	echo "demo: the build failed (end of $log above)" >&2
	exit 1
}
top_builddir=$builddir exec bash "$srcdir/tests/demo.sh"
