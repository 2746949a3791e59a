#!/bin/bash
# on-tpm.sh: runs one core integration test on the TPM backend (swtpm).
# One suite, run per backend (lib.sh): `make check` lists each TPM run as
# a test of its own, tests/tpm/NAME.tpm (Makefile.am, TPM_SUITE_TESTS), and
# runs this driver with that name (TPM_LOG_COMPILER); it runs
# tests/integration/NAME.sh with STINT_TEST_BACKEND=tpm. By hand:
#	top_builddir=/tmp/build tests/integration/on-tpm.sh 30-revoke
# Exit status is the test's; 77 (skip) when swtpm is not installed.
set -u
[ $# -ge 1 ] || { echo "usage: $0 NAME|tests/tpm/NAME.tpm [ARGS...]" >&2; exit 99; }
name=$(basename "$1")
shift
name=${name%.tpm}
name=${name%.sh}
script=$(dirname "$0")/$name.sh
[ -f "$script" ] || { echo "FAIL: $name (tpm): no test $script" >&2; exit 99; }
command -v swtpm >/dev/null 2>&1 ||
	{ echo "SKIP: $name (tpm): swtpm is not installed" >&2; exit 77; }
echo "# $name on the TPM backend (STINT_TEST_BACKEND=tpm)"
STINT_TEST_BACKEND=tpm exec bash "$script" "$@"
