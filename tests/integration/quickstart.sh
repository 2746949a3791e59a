#!/bin/bash
# README.md's Quick start, run verbatim by ci/quickstart.sh: it builds from a
# fresh copy of the tree, installs to /usr and /etc, creates a SoftHSM token,
# the user alice and /tmp/rp, checks the first signature verifies and the
# mTLS request succeeds, runs the "Running as user stint" commands (user
# stint, stintd under setpriv) and signs again, and removes all of it. Because it installs
# system-wide it runs only as root and only when asked: ci/test.sh sets
# STINT_QUICKSTART=1 for its default build. By hand:
#	sudo STINT_QUICKSTART=1 make check TESTS=tests/integration/quickstart.sh
#	sudo ci/quickstart.sh
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
if [ "${STINT_QUICKSTART:-}" != 1 ]; then
	echo "SKIP: quickstart: set STINT_QUICKSTART=1 to run README.md's Quick start (installs to /usr and /etc as root; ci/test.sh does)" >&2
	exit 77
fi
exec "$top_srcdir/ci/quickstart.sh" "$top_srcdir"
