#!/bin/sh
# 40-ttl.sh on the TPM backend (swtpm): one suite, run per backend (lib.sh).
command -v swtpm >/dev/null 2>&1 ||
	{ echo "SKIP: tpm-40-ttl: swtpm is not installed" >&2; exit 77; }
STINT_TEST_BACKEND=tpm exec bash "$(dirname "$0")/40-ttl.sh" "$@"
