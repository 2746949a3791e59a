/*
 * A fake key-store backend for the handler unit tests (fake_backend.c):
 * its ops record every call and fail when told to, so a test can assert
 * what the daemon asked of the backend (and what it never asked).
 */
#ifndef STINT_TESTS_UNIT_FAKE_BACKEND_H
#define STINT_TESTS_UNIT_FAKE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/backend.h"

#define FAKE_SIG_LEN 64

struct fake_backend {
	struct stint_backend base; /* first: a fake_backend is a backend */
	/* Calls, by op. */
	unsigned generate_calls, sign_calls, destroy_calls;
	/* Set to make the op fail (return -1 with an err text). */
	bool fail_sign, fail_destroy; /* generate always fails */
	/* The last sign call. */
	char sign_key[STINT_TASK_ID_MAX + 1];
	CK_MECHANISM_TYPE sign_raw;
	bool sign_has_pss;
	CK_RSA_PKCS_PSS_PARAMS sign_pss;
	uint8_t sign_in[2048];
	size_t sign_in_len;
	/* The last destroy call. */
	char destroy_key[STINT_TASK_ID_MAX + 1];
};

/* Zeroes fb and points its base at the fake op table. */
void fake_backend_init(struct fake_backend *fb);

#endif
