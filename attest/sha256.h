/*
 * SHA-256 for the per-signature path (issue 14): the input's digest for the
 * audit record and the record's hash chain. OpenSSL 3 fetches the
 * algorithm from its provider on every EVP_DigestInit_ex(EVP_sha256()),
 * which cost more than hashing a record; here it is fetched once.
 */
#ifndef STINT_ATTEST_SHA256_H
#define STINT_ATTEST_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* out = SHA-256(a || b); b may be NULL when bn is 0. Returns 0 or -1. */
int stint_sha256(const void *a, size_t an, const void *b, size_t bn,
		 uint8_t out[32]);

#endif
