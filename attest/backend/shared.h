/*
 * Helpers both backends (pkcs11_*.c, tpm_*.c) share. Private to
 * attest/backend/.
 */
#ifndef STINT_ATTEST_BACKEND_SHARED_H
#define STINT_ATTEST_BACKEND_SHARED_H

#include <stddef.h>
#include <stdint.h>

/* The host attestation key's id (ca.h's STINT_AK_KEY_ID: the same key). */
#define STINT_BACKEND_AK_ID "stint-ak"

/* A raw ECDSA signature r || s (len bytes, the halves equally long) as a
 * DER ECDSA-Sig-Value in der; *der_len is the capacity in, the length
 * out. -1 when it does not fit or len is odd. */
int stint_backend_ecdsa_der(const uint8_t *rs, size_t len, uint8_t *der,
			    size_t *der_len);

#endif
