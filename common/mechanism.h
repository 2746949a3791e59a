/*
 * PKCS#11 signing mechanisms Stint supports, and how each maps to the raw
 * operation the backend performs. The module hashes locally for the
 * hash-and-sign mechanisms and sends the digest; stintd signs the digest
 * with the raw mechanism (SoftHSM 2.6 has no CKM_ECDSA_SHA256).
 */
#ifndef STINT_COMMON_MECHANISM_H
#define STINT_COMMON_MECHANISM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

struct stint_mech {
	CK_MECHANISM_TYPE mech;
	const char *name;       /* "CKM_ECDSA_SHA256" */
	const char *short_name; /* "ecdsa-sha256" (CLI, config) */
	bool ec;                /* EC key mechanism, else RSA */
	CK_MECHANISM_TYPE raw;  /* CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS */
	CK_MECHANISM_TYPE hash; /* CKM_SHA256.. for hash-and-sign, else 0 */
	bool pss;
};

/* A hash as the mechanisms and PSS parameters name it. */
struct stint_hash {
	CK_MECHANISM_TYPE hash;   /* CKM_SHA256 */
	CK_RSA_PKCS_MGF_TYPE mgf; /* its MGF1: CKG_MGF1_SHA256 */
	size_t len;               /* digest length, bytes */
	const char *md_name;      /* OpenSSL digest name, "SHA256" */
	bool pss;                 /* allowed as a PSS hashAlg (and its MGF1) */
};

/* Longest raw input the module buffers and stintd accepts (a digest, a
 * DigestInfo: RSA-3072 takes at most 373 bytes). */
#define STINT_RAW_INPUT_MAX 1024
/* Longest PSS salt stintd accepts (sLen). */
#define STINT_PSS_SALT_MAX 64

/* NULL when unsupported. */
const struct stint_mech *stint_mech_find(CK_MECHANISM_TYPE mech);
const struct stint_mech *stint_mech_by_name(const char *name); /* either name */
/* All supported mechanisms, in a stable order. */
const struct stint_mech *stint_mech_all(size_t *n);
/* Is mech usable with a key of this enum stint_key_type? */
bool stint_mech_fits_key(const struct stint_mech *m, uint32_t key_type);
/* SHA-1, SHA-224, SHA-256, SHA-384, SHA-512; NULL otherwise. */
const struct stint_hash *stint_hash_find(CK_MECHANISM_TYPE hash);
/* Digest length of those hashes, else 0. */
size_t stint_hash_len(CK_MECHANISM_TYPE hash);
/* The one PSS parameter rule, for the module (C_SignInit) and stintd (SIGN
 * request): hashAlg is the mechanism's own hash when it has one, a hash
 * allowed for PSS (SHA-256/384/512), mgf is MGF1 with that same hash and
 * sLen at most STINT_PSS_SALT_MAX. NULL when the parameters are good, else
 * why not. */
const char *stint_pss_params_check(const struct stint_mech *m,
				   CK_MECHANISM_TYPE hash,
				   CK_RSA_PKCS_MGF_TYPE mgf, uint64_t salt);
/* DER DigestInfo prefix for PKCS#1 v1.5 over that hash; NULL if unknown. */
const uint8_t *stint_digestinfo_prefix(CK_MECHANISM_TYPE hash, size_t *len);

#endif
