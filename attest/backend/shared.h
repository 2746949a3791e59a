/*
 * Helpers both backends (pkcs11_*.c, tpm_*.c) share. Private to
 * attest/backend/.
 */
#ifndef STINT_ATTEST_BACKEND_SHARED_H
#define STINT_ATTEST_BACKEND_SHARED_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>
#include <openssl/evp.h>

#include "stint/wire.h"

/* The host attestation key's id (ca.h's STINT_AK_KEY_ID: the same key). */
#define STINT_BACKEND_AK_ID "stint-ak"

/* A raw ECDSA signature r || s (len bytes, the halves equally long) as a
 * DER ECDSA-Sig-Value in der; *der_len is the capacity in, the length
 * out. -1 when it does not fit or len is odd. */
int stint_backend_ecdsa_der(const uint8_t *rs, size_t len, uint8_t *der,
			    size_t *der_len);

/* Public keys from their parts, as both backends read them (a token's
 * attributes, a TPM public area): an EC point (uncompressed, on the curve
 * OpenSSL calls group), or an RSA modulus and exponent. 0 or -1. */
int stint_backend_pkey_ec(const char *group, const uint8_t *point, size_t len,
			  EVP_PKEY **out);
int stint_backend_pkey_rsa(const BIGNUM *n, const BIGNUM *e, EVP_PKEY **out);
/* pkey's SubjectPublicKeyInfo DER in *out (malloc'ed, free with
 * stint_bytes_clear). 0 or -1. */
int stint_backend_spki_der(EVP_PKEY *pkey, struct stint_bytes *out);

#endif
