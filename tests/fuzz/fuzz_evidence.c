/*
 * libFuzzer target for the evidence decoders (attest/evidence.c): the
 * document a verifier receives (`stint ca evidence`, relying parties), in
 * DER or PEM armour, through kind, decode and the full verifier (with a
 * fixed attestation key: the signature fails, the parsing before it runs).
 * TPM documents are dispatched to attest/tpm_evidence.c from here too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "attest/evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *
fuzz_ak(void)
{
	static EVP_PKEY *ak;

	if (ak == NULL)
		ak = EVP_EC_gen("P-256");
	return ak;
}

static void
one(const uint8_t *doc, size_t len)
{
	struct stint_evidence_claims c;
	struct stint_evidence_expect want = {.task = "t-fuzz"};
	char kind[16], err[256];

	(void)stint_evidence_kind(doc, len, kind, sizeof(kind));
	memset(&c, 0, sizeof(c));
	if (stint_evidence_decode(doc, len, &c, err, sizeof(err)) == 0 &&
	    strnlen(c.task, sizeof(c.task)) == sizeof(c.task))
		abort();
	stint_evidence_claims_free(&c);
	memset(&c, 0, sizeof(c));
	(void)stint_evidence_verify(doc, len, fuzz_ak(), &want, &c, err,
				    sizeof(err));
	stint_evidence_claims_free(&c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *doc = NULL;
	size_t len = 0;

	if (size > 2 * STINT_EVIDENCE_MAX)
		return 0;
	one(data, size);
	if (stint_evidence_read(data, size, &doc, &len) == 0) {
		if (len > STINT_EVIDENCE_MAX)
			abort();
		one(doc, len);
		free(doc);
	}
	return 0;
}
