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

/* NULL when unsupported. */
const struct stint_mech *stint_mech_find(CK_MECHANISM_TYPE mech);
const struct stint_mech *stint_mech_by_name(const char *name); /* either name */
/* All supported mechanisms, in a stable order. */
const struct stint_mech *stint_mech_all(size_t *n);
/* Is mech usable with a key of this enum stint_key_type? */
bool stint_mech_fits_key(const struct stint_mech *m, uint32_t key_type);
/* Digest length of CKM_SHA256/384/512 (and CKM_SHA_1), else 0. */
size_t stint_hash_len(CK_MECHANISM_TYPE hash);
/* DER DigestInfo prefix for PKCS#1 v1.5 over that hash; NULL if unknown. */
const uint8_t *stint_digestinfo_prefix(CK_MECHANISM_TYPE hash, size_t *len);

#endif
