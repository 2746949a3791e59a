/*
 * TPM2_Certify evidence for a TPM task key: a self-contained document that
 * a CA checks offline, on this host or another (no TPM needed to verify).
 *
 * Document (all integers big-endian):
 *   "STINTTPM" | u16 version (1) |
 *   u64 deadline (TPM clock ms) | u64 counter (kill switch at creation) |
 *   i64 not_after (wall seconds, stintd's mapping; informational) |
 *   then length-prefixed (u32) blobs, in this order:
 *   attest (TPMS_ATTEST as signed), signature (TPMT_SIGNATURE, marshalled),
 *   key public (TPM2B_PUBLIC), AK public (TPM2B_PUBLIC),
 *   NV public of the kill-switch counter (TPM2B_NV_PUBLIC),
 *   EK certificate (DER, empty when the TPM has none).
 */
#ifndef STINT_ATTEST_TPM_EVIDENCE_H
#define STINT_ATTEST_TPM_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "stint/wire.h"

#define STINT_TPM_EVIDENCE_VERSION 1

/* The raw parts, as the backend collects them. */
struct stint_tpm_evidence {
	uint64_t deadline; /* TPM clock milliseconds */
	uint64_t counter;  /* kill-switch counter value bound in the policy */
	int64_t not_after; /* wall time of the deadline, seconds */
	struct stint_bytes attest, signature, key_public, ak_public, nv_public,
		ek_cert;
};

/* What a successful verification establishes. All malloc'ed. */
struct stint_tpm_evidence_info {
	uint64_t deadline, counter;
	uint64_t clock; /* TPM clock when the AK certified (signed data) */
	int64_t not_after;
	uint32_t nv_index;
	struct stint_bytes key_spki; /* DER SubjectPublicKeyInfo of the key */
	struct stint_bytes ek_cert;  /* copied; not verified here */
};

int stint_tpm_evidence_encode(const struct stint_tpm_evidence *ev,
			      struct stint_bytes *out);
/* Splits a document into its parts; they point into doc (no copies). */
int stint_tpm_evidence_decode(const uint8_t *doc, size_t len,
			      struct stint_tpm_evidence *ev, char *err,
			      size_t errlen);

/*
 * Verifies a document against the enrolled attestation key (ak: a PEM
 * SubjectPublicKeyInfo, or a marshalled TPM2B_PUBLIC), the nonce the
 * verifier chose and the task id. Checks, in order, each failure named:
 * document syntax; AK public equals the enrolled AK; AK signature over the
 * attest bytes (ECDSA P-256, SHA-256); magic TPM_GENERATED_VALUE; type
 * TPM_ST_ATTEST_CERTIFY; extraData == SHA-256(nonce || task id); key
 * attributes (fixedTPM, fixedParent, sensitiveDataOrigin, sign set;
 * userWithAuth, decrypt, restricted clear); NV index is an NV counter that
 * has been written; authPolicy == the digest recomputed from the deadline,
 * the counter value and the NV index Name; certified Name == Name of the
 * key's public area. On success fills info (may be NULL).
 */
int stint_tpm_evidence_verify(const uint8_t *doc, size_t len, const uint8_t *ak,
			      size_t ak_len, const uint8_t *nonce,
			      size_t nonce_len, const char *task_id,
			      struct stint_tpm_evidence_info *info, char *err,
			      size_t errlen);
void stint_tpm_evidence_info_free(struct stint_tpm_evidence_info *info);
/* Frees the parts of an ev filled by the backend (not by decode). */
void stint_tpm_evidence_free(struct stint_tpm_evidence *ev);

/*
 * The task-key policy, computed in software (SHA-256 policy hash):
 *   d1 = H(0^32 || TPM_CC_PolicyCounterTimer ||
 *          H(u64 deadline || u16 8 || u16 TPM_EO_UNSIGNED_LT))
 *   d2 = H(d1 || TPM_CC_PolicyNV || H(u64 counter || u16 0 || u16 TPM_EO_EQ)
 *          || nvName)
 */
int stint_tpm_policy_digest(uint64_t deadline, uint64_t counter,
			    const uint8_t *nv_name, size_t nv_name_len,
			    uint8_t out[32]);

#endif
