/*
 * libFuzzer target for the TPM evidence decoder (attest/tpm_evidence.c):
 * a TPM2_Certify document split into its parts, then the whole verifier
 * (TPMS_ATTEST, TPMT_SIGNATURE and TPM2B_PUBLIC unmarshalling, policy
 * recomputation) against a fixed attestation key and nonce.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attest/tpm_evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t ak[] = {0x00, 0x23, 0x00, 0x0b};
	static const uint8_t nonce[32];
	struct stint_tpm_evidence ev;
	struct stint_tpm_evidence_info info;
	char err[256];

	if (size > 64 * 1024)
		return 0;
	memset(&ev, 0, sizeof(ev));
	if (stint_tpm_evidence_decode(data, size, &ev, err, sizeof(err)) == 0) {
		/* The parts point into the document. */
		if (ev.attest.len > size || ev.signature.len > size ||
		    ev.key_public.len > size || ev.ak_public.len > size)
			abort();
		/* Verify against the document's own AK: the parsing of every
		 * part runs, whatever the signature says. */
		memset(&info, 0, sizeof(info));
		(void)stint_tpm_evidence_verify(
			data, size, ev.ak_public.ptr, ev.ak_public.len, nonce,
			sizeof(nonce), "t-fuzz", &info, err, sizeof(err));
		stint_tpm_evidence_info_free(&info);
	}
	memset(&info, 0, sizeof(info));
	(void)stint_tpm_evidence_verify(data, size, ak, sizeof(ak), nonce,
					sizeof(nonce), "t-fuzz", &info, err,
					sizeof(err));
	stint_tpm_evidence_info_free(&info);
	return 0;
}
