/* Evidence: create and verify with software keys, and every tampering the
 * verifier must catch, each named by its check. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/evidence.h"

struct fixture {
	EVP_PKEY *ak, *other, *task_key;
	uint8_t *ak_der, *task_der;
	int ak_len, task_len;
	struct stint_evidence_claims c;
	uint8_t *doc;
	size_t len;
	char err[300];
};

static EVP_PKEY *
ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->ak = ec_key();
	f->other = ec_key();
	f->task_key = ec_key();
	f->ak_len = i2d_PUBKEY(f->ak, &f->ak_der);
	f->task_len = i2d_PUBKEY(f->task_key, &f->task_der);
	assert_true(f->ak_len > 0 && f->task_len > 0);
	snprintf(f->c.task, sizeof(f->c.task), "t-0123456789abcdef");
	memset(f->c.nonce, 0xa5, sizeof(f->c.nonce));
	f->c.time = 1700000000;
	f->c.spki.ptr = f->task_der;
	f->c.spki.len = (size_t)f->task_len;
	f->c.key_type = STINT_KEY_EC_P256;
	f->c.ak_spki.ptr = f->ak_der;
	f->c.ak_spki.len = (size_t)f->ak_len;
	f->c.local = f->c.never_extractable = f->c.sensitive = true;
	f->c.extractable = false;
	assert_int_equal(stint_evidence_create(&f->c, f->ak, &f->doc, &f->len,
					       f->err, sizeof(f->err)),
			 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	EVP_PKEY_free(f->ak);
	EVP_PKEY_free(f->other);
	EVP_PKEY_free(f->task_key);
	OPENSSL_free(f->ak_der);
	OPENSSL_free(f->task_der);
	free(f->doc);
	free(f);
	return 0;
}

static int
verify(struct fixture *f, const uint8_t *doc, size_t len, EVP_PKEY *ak,
       const char *task, const uint8_t *nonce)
{
	struct stint_evidence_expect want = {.task = task,
					     .nonce = nonce,
					     .key_type = STINT_KEY_EC_P256,
					     .spki = &f->c.spki};

	f->err[0] = '\0';
	return stint_evidence_verify(doc, len, ak, &want, NULL, f->err,
				     sizeof(f->err));
}

static void
test_good(void **state)
{
	struct fixture *f = *state;
	struct stint_evidence_expect want = {.task = f->c.task,
					     .nonce = f->c.nonce};
	struct stint_evidence_claims out;

	assert_int_equal(stint_evidence_verify(f->doc, f->len, f->ak, &want,
					       &out, f->err, sizeof(f->err)),
			 STINT_EV_OK);
	assert_string_equal(out.task, f->c.task);
	assert_memory_equal(out.nonce, f->c.nonce, STINT_NONCE_LEN);
	assert_int_equal(out.time, 1700000000);
	assert_int_equal(out.key_type, STINT_KEY_EC_P256);
	assert_int_equal(out.spki.len, f->c.spki.len);
	assert_memory_equal(out.spki.ptr, f->c.spki.ptr, out.spki.len);
	assert_true(out.local && out.never_extractable && out.sensitive);
	assert_false(out.extractable);
	stint_evidence_claims_free(&out);
}

/* Every single flipped byte is caught; none passes. */
static void
test_every_flipped_byte(void **state)
{
	struct fixture *f = *state;
	uint8_t *copy = malloc(f->len);
	size_t i;
	int r;

	assert_non_null(copy);
	for (i = 0; i < f->len; i++) {
		memcpy(copy, f->doc, f->len);
		copy[i] ^= 0x01;
		r = verify(f, copy, f->len, f->ak, f->c.task, f->c.nonce);
		if (r == STINT_EV_OK)
			fail_msg("flipping byte %zu went unnoticed", i);
		assert_true(r == STINT_EV_MALFORMED || r == STINT_EV_SIGNATURE);
	}
	/* A byte in the middle of the statement: the signature check. */
	memcpy(copy, f->doc, f->len);
	copy[f->len / 3] ^= 0x80;
	assert_int_equal(verify(f, copy, f->len, f->ak, f->c.task, f->c.nonce),
			 STINT_EV_SIGNATURE);
	assert_non_null(strstr(f->err, "signature"));
	/* Truncated and extended documents are not well-formed. */
	assert_int_equal(verify(f, f->doc, f->len - 1, f->ak, NULL, NULL),
			 STINT_EV_MALFORMED);
	free(copy);
}

static void
test_wrong_nonce(void **state)
{
	struct fixture *f = *state;
	uint8_t nonce[STINT_NONCE_LEN];

	memcpy(nonce, f->c.nonce, sizeof(nonce));
	nonce[31] ^= 1;
	assert_int_equal(verify(f, f->doc, f->len, f->ak, f->c.task, nonce),
			 STINT_EV_NONCE);
	assert_string_equal(stint_evidence_check_str(STINT_EV_NONCE), "nonce");
}

static void
test_wrong_task(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(
		verify(f, f->doc, f->len, f->ak, "t-ffffffffffffffff", NULL),
		STINT_EV_TASK);
	assert_non_null(strstr(f->err, "t-ffffffffffffffff"));
}

static void
test_other_signer(void **state)
{
	struct fixture *f = *state;
	uint8_t *doc;
	size_t len;

	/* Verified against another key than the one that signed. */
	assert_int_equal(verify(f, f->doc, f->len, f->other, f->c.task, NULL),
			 STINT_EV_SIGNATURE);
	/* Signed by another key that claims to be the AK. */
	assert_int_equal(stint_evidence_create(&f->c, f->other, &doc, &len,
					       f->err, sizeof(f->err)),
			 0);
	assert_int_equal(verify(f, doc, len, f->ak, f->c.task, NULL),
			 STINT_EV_SIGNATURE);
	/* Signed and verified with another key, but the statement names
	 * the enrolled AK: the attestation-key check. */
	assert_int_equal(verify(f, doc, len, f->other, f->c.task, NULL),
			 STINT_EV_AK);
	free(doc);
}

/* Re-signed by the real AK, so only the attribute check can refuse. */
static void
resigned(struct fixture *f, void (*mutate)(struct stint_evidence_claims *),
	 int want)
{
	struct stint_evidence_claims c = f->c;
	uint8_t *doc;
	size_t len;

	mutate(&c);
	assert_int_equal(stint_evidence_create(&c, f->ak, &doc, &len, f->err,
					       sizeof(f->err)),
			 0);
	assert_int_equal(verify(f, doc, len, f->ak, f->c.task, f->c.nonce),
			 want);
	free(doc);
}

static void
set_extractable(struct stint_evidence_claims *c)
{
	c->extractable = true;
}

static void
clear_local(struct stint_evidence_claims *c)
{
	c->local = false;
}

static void
clear_never_extractable(struct stint_evidence_claims *c)
{
	c->never_extractable = false;
}

static void
clear_sensitive(struct stint_evidence_claims *c)
{
	c->sensitive = false;
}

static void
rsa_type(struct stint_evidence_claims *c)
{
	c->key_type = STINT_KEY_RSA_2048;
}

static void
unknown_type(struct stint_evidence_claims *c)
{
	c->key_type = 99;
}

static void
test_attributes(void **state)
{
	struct fixture *f = *state;

	resigned(f, set_extractable, STINT_EV_ATTRIBUTES);
	assert_non_null(strstr(f->err, "extractable=1"));
	resigned(f, clear_local, STINT_EV_ATTRIBUTES);
	resigned(f, clear_never_extractable, STINT_EV_ATTRIBUTES);
	resigned(f, clear_sensitive, STINT_EV_ATTRIBUTES);
	assert_string_equal(stint_evidence_check_str(STINT_EV_ATTRIBUTES),
			    "attributes");
}

static void
test_key_type_and_key(void **state)
{
	struct fixture *f = *state;
	struct stint_evidence_expect want = {.spki = &f->c.ak_spki};

	resigned(f, rsa_type, STINT_EV_KEY_TYPE);
	resigned(f, unknown_type, STINT_EV_KEY_TYPE);
	/* Evidence for one key presented for another. */
	assert_int_equal(stint_evidence_verify(f->doc, f->len, f->ak, &want,
					       NULL, f->err, sizeof(f->err)),
			 STINT_EV_KEY);
}

static void
test_pem_round_trip(void **state)
{
	struct fixture *f = *state;
	char *buf = NULL;
	size_t buflen = 0, len;
	uint8_t *doc;
	FILE *mem = open_memstream(&buf, &buflen);

	assert_non_null(mem);
	assert_int_equal(stint_evidence_pem_write(mem, f->doc, f->len), 0);
	fclose(mem);
	assert_non_null(strstr(buf, "-----BEGIN STINT EVIDENCE-----"));
	assert_int_equal(
		stint_evidence_read((uint8_t *)buf, buflen, &doc, &len), 0);
	assert_int_equal(len, f->len);
	assert_memory_equal(doc, f->doc, len);
	free(doc);
	/* The raw document is accepted as it is. */
	assert_int_equal(stint_evidence_read(f->doc, f->len, &doc, &len), 0);
	assert_int_equal(len, f->len);
	free(doc);
	free(buf);
}

static void
test_garbage(void **state)
{
	struct fixture *f = *state;
	static const uint8_t not_cbor[] = {0xff, 0x00, 0x01};
	static const uint8_t empty_map[] = {0xa0};

	assert_int_equal(
		verify(f, not_cbor, sizeof(not_cbor), f->ak, NULL, NULL),
		STINT_EV_MALFORMED);
	assert_int_equal(
		verify(f, empty_map, sizeof(empty_map), f->ak, NULL, NULL),
		STINT_EV_MALFORMED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_flipped_byte, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_wrong_nonce, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_wrong_task, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_other_signer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_attributes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_key_type_and_key, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pem_round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
