#!/bin/sh
# 90-restart.sh on the TPM backend (swtpm): one suite, run per backend (lib.sh).
command -v swtpm >/dev/null 2>&1 ||
	{ echo "SKIP: tpm-90-restart: swtpm is not installed" >&2; exit 77; }
STINT_TEST_BACKEND=tpm exec bash "$(dirname "$0")/90-restart.sh" "$@"
