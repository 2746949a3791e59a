/*
 * TPM 2.0 backend (tpm2-tss ESAPI): what stintd and the tests need beyond
 * the generic backend ops.
 *
 * Files in <state_dir>/tpm/ (directory 0700, files 0600):
 *   ak.blob     the host attestation key: TPM2B_PUBLIC || TPM2B_PRIVATE
 *   ak.pub.pem  its public key, to enrol with the CA
 *   nv.auth     the kill-switch counter's index auth (random, 32 bytes)
 *   clock       last TPM resetCount seen, and the first reset after which
 *               the TPM clock was not safe (text: "last_reset min_reset")
 *   ek.cert     the EK certificate (DER), when the TPM holds one
 *   <key_id>.key  one task key, see below
 *
 * A task key file (all integers big-endian, marshalled with Tss2_MU):
 *   "STINTKEY" | u16 version (1) | u32 key_type | u64 deadline |
 *   u64 counter | u32 nv_index | u64 clock | u32 resetCount |
 *   u32 restartCount | u8 safe | i64 not_after |
 *   TPM2B_PUBLIC | TPM2B_PRIVATE
 */
#ifndef STINT_ATTEST_BACKEND_TPM_H
#define STINT_ATTEST_BACKEND_TPM_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

#include "attest/backend.h"
#include "attest/tpm_evidence.h"

#define STINT_TPM_KEYFILE_VERSION 1

struct stint_tpm_keyfile {
	uint32_t key_type;
	uint64_t deadline; /* TPM clock ms: the key is refused from here on */
	uint64_t counter;  /* kill-switch counter value it is bound to */
	uint32_t nv_index;
	uint64_t clock; /* TPM clock at creation */
	uint32_t reset_count, restart_count;
	uint8_t safe;
	int64_t not_after;
	TPM2B_PUBLIC pub;
	TPM2B_PRIVATE priv;
};

int stint_tpm_keyfile_parse(const uint8_t *buf, size_t len,
			    struct stint_tpm_keyfile *kf);
int stint_tpm_keyfile_read(const char *path, struct stint_tpm_keyfile *kf,
			   char *err, size_t errlen);

/*
 * Kill switch: increments the NV counter. From then on the TPM refuses
 * every task key made before (PolicyNV(counter == old value) fails); keys
 * made afterwards bind the new value. Cannot be undone.
 */
int stint_backend_tpm_kill_switch(struct stint_backend *b, char *err,
				  size_t errlen);
/* The kill-switch counter's current value (what new keys bind). */
int stint_backend_tpm_counter(struct stint_backend *b, uint64_t *value,
			      char *err, size_t errlen);

/*
 * Evidence for the task key req->key_id: TPM2_Certify by the host AK with
 * qualifyingData = SHA-256(req->nonce || req->task_id) (the request's
 * other fields are not used). *doc is malloc'ed, in the stint_tpm_evidence
 * format; check it with stint_tpm_evidence_verify().
 */
int stint_backend_tpm_evidence(struct stint_backend *b,
			       const struct stint_backend_evidence_req *req,
			       struct stint_bytes *doc, char *err,
			       size_t errlen);

/* The AK's public key as PEM (malloc'ed, NUL-terminated), for enrolment. */
int stint_backend_tpm_ak_pem(struct stint_backend *b, char **pem, char *err,
			     size_t errlen);

/* Helpers shared with the verifier (tpm_evidence.c). */
/* An OpenSSL public key from a TPM public area (ECC P-256 or RSA). */
int stint_tpm_pkey_from_public(const TPMT_PUBLIC *pub, EVP_PKEY **out);

/* Signs data with the restricted host AK (TPM2_Hash ticket, ECDSA with
 * SHA-256); sig gets r || s. For audit checkpoints. */
int stint_backend_tpm_ak_sign(struct stint_backend *b, const uint8_t *data,
			      size_t len, uint8_t *sig, size_t *sig_len,
			      char *err, size_t errlen);

#endif
