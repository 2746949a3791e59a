/*
 * libFuzzer target for the TPM key-file decoder (attest/backend_tpm.c,
 * stint_tpm_keyfile_parse): the files stintd keeps per task key in its
 * state directory, read back at start and by `stint tpm`.
 */
#include <stdint.h>
#include <stdlib.h>

#include "attest/backend_tpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stint_tpm_keyfile kf;

	if (size > 64 * 1024)
		return 0;
	if (stint_tpm_keyfile_parse(data, size, &kf) == 0 &&
	    kf.priv.size > sizeof(kf.priv.buffer))
		abort();
	return 0;
}
