/*
 * Key attestation evidence for the PKCS#11 (HSM) backend: a statement
 * about a new task key, signed by the host attestation key (AK). One
 * verifier, stint_evidence_verify, serves task start inside stintd and
 * `stint attest verify` on any other host. Format: docs/attestation.md.
 *
 *   evidence  = CBOR map {1: version (1), 2: kind ("pkcs11"),
 *                         3: statement (bytes), 4: signature (bytes)}
 *   statement = CBOR map {1: task id, 2: nonce (32 bytes), 3: time,
 *                         4: task key SPKI, 5: key type, 6: AK SPKI,
 *                         7: CKA_LOCAL, 8: CKA_NEVER_EXTRACTABLE,
 *                         9: CKA_SENSITIVE, 10: CKA_EXTRACTABLE}
 *   signature = ECDSA (DER) by the AK over SHA-256(statement bytes)
 *
 * The signature covers the statement's exact bytes, which the verifier
 * checks before it decodes them; nothing is re-encoded.
 */
#ifndef STINT_ATTEST_EVIDENCE_H
#define STINT_ATTEST_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "stint/wire.h"

#define STINT_EVIDENCE_VERSION  1
#define STINT_EVIDENCE_KIND     "pkcs11"
#define STINT_EVIDENCE_KIND_TPM "tpm"
#define STINT_NONCE_LEN         32
#define STINT_EVIDENCE_MAX      (16u * 1024u)

/* What the AK vouches for. Byte strings are borrowed when creating and
 * owned (malloc'ed) after decoding. */
struct stint_evidence_claims {
	char task[STINT_TASK_ID_MAX + 1];
	uint8_t nonce[STINT_NONCE_LEN];
	uint64_t time; /* seconds since the epoch */
	struct stint_bytes spki;
	uint32_t key_type;
	struct stint_bytes ak_spki;
	bool local, never_extractable, sensitive, extractable;
	/* Kind "tpm" (TPM2_Certify, tpm_evidence.h): time is 0, the
	 * attributes above are implied by the certified ones, and: */
	char kind[8];          /* "pkcs11" or "tpm" */
	uint64_t tpm_deadline; /* TPM clock ms the key's policy ends at */
	uint64_t tpm_counter;  /* kill-switch counter value bound */
	uint64_t tpm_clock;    /* TPM clock when certified (signed) */
	int64_t not_after;     /* stintd's wall mapping of the deadline */
	uint32_t nv_index;
};

/* Which check failed; stint_evidence_check_str names it. */
enum stint_evidence_check {
	STINT_EV_OK = 0,
	STINT_EV_MALFORMED,  /* not a well-formed evidence document */
	STINT_EV_SIGNATURE,  /* not signed by the given attestation key */
	STINT_EV_AK,         /* statement names another attestation key */
	STINT_EV_TASK,       /* task id differs from the expected one */
	STINT_EV_NONCE,      /* nonce differs from the expected one */
	STINT_EV_KEY_TYPE,   /* key type unknown or not the expected one */
	STINT_EV_KEY,        /* SPKI differs from the expected key */
	STINT_EV_ATTRIBUTES, /* the key may be extractable or not local */
	STINT_EV_INTERNAL,   /* out of memory */
	/* TPM2_Certify evidence only (the TPM verifier names the detail): */
	STINT_EV_ATTEST, /* attest: magic or type not a TPM certification */
	STINT_EV_POLICY, /* authPolicy or NV counter not as recomputed */
	STINT_EV_NAME,   /* certified Name is not the key's public area */
};
const char *stint_evidence_check_str(int check);

/* What the verifier expects; NULL / 0 fields are not checked (the nonce
 * and task should be given whenever the verifier knows them). */
struct stint_evidence_expect {
	const char *task;
	const uint8_t *nonce; /* STINT_NONCE_LEN bytes */
	uint32_t key_type;
	const struct stint_bytes *spki;
};

/* Encodes the statement, signs it with ak (EVP_DigestSign, SHA-256) and
 * wraps both into a document (malloc'ed). */
int stint_evidence_create(const struct stint_evidence_claims *c, EVP_PKEY *ak,
			  uint8_t **doc, size_t *len, char *err, size_t errlen);
/* The pieces, for tests and tools that build documents by hand. */
int stint_evidence_encode_statement(const struct stint_evidence_claims *c,
				    uint8_t **out, size_t *len);
int stint_evidence_wrap(const uint8_t *stmt, size_t stmt_len,
			const uint8_t *sig, size_t sig_len, uint8_t **doc,
			size_t *len);

/*
 * TPM evidence (kind "tpm") wraps a stint_tpm_evidence document with the
 * nonce and task id its qualifying data hashes:
 *   {1: 1, 2: "tpm", 3: bstr TPM document, 5: bstr nonce, 6: task id}
 * The nonce and task id are not trusted: extraData is checked against
 * them, and against want's when given.
 */
int stint_evidence_tpm_wrap(const uint8_t *tpm_doc, size_t tpm_len,
			    const uint8_t nonce[STINT_NONCE_LEN],
			    const char *task, uint8_t **doc, size_t *len);
/* The kind of a document ("pkcs11" or "tpm"); -1 if it has none. */
int stint_evidence_kind(const uint8_t *doc, size_t len, char *kind, size_t cap);

/* The one verifier, for every kind: dispatches on the document's kind.
 * Verifies doc against the enrolled attestation key ak (a public key) and
 * want. Returns STINT_EV_OK or the first failed check, with err saying
 * what exactly. On STINT_EV_OK and when out is non-NULL, fills out (free
 * with stint_evidence_claims_free). */
int stint_evidence_verify(const uint8_t *doc, size_t len, EVP_PKEY *ak,
			  const struct stint_evidence_expect *want,
			  struct stint_evidence_claims *out, char *err,
			  size_t errlen);
/* Decodes without verifying (to show a document). */
int stint_evidence_decode(const uint8_t *doc, size_t len,
			  struct stint_evidence_claims *out, char *err,
			  size_t errlen);
void stint_evidence_claims_free(struct stint_evidence_claims *c);

/* PEM armour: "-----BEGIN STINT EVIDENCE-----". read accepts PEM or the
 * raw CBOR document. */
int stint_evidence_pem_write(FILE *f, const uint8_t *doc, size_t len);
int stint_evidence_read(const uint8_t *buf, size_t buflen, uint8_t **doc,
			size_t *len);

#endif
