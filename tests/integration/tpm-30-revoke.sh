#!/bin/sh
# 30-revoke.sh on the TPM backend (swtpm): one suite, run per backend (lib.sh).
command -v swtpm >/dev/null 2>&1 ||
	{ echo "SKIP: tpm-30-revoke: swtpm is not installed" >&2; exit 77; }
STINT_TEST_BACKEND=tpm exec bash "$(dirname "$0")/30-revoke.sh" "$@"
