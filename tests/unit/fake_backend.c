/*
 * The fake backend: each op counts its calls, keeps its arguments for the
 * test to read and fails on request. sign answers FAKE_SIG_LEN bytes of
 * 0x5a; destroy succeeds for any key (as the contract says, "0 also when
 * already gone"). Ops the handlers under test do not reach are NULL, as
 * backend.h allows for the optional ones.
 */
#include <stdio.h>
#include <string.h>

#include "tests/unit/fake_backend.h"

static struct fake_backend *
fake(struct stint_backend *b)
{
	return (struct fake_backend *)b;
}

static int
fake_generate(struct stint_backend *b, uint32_t key_type, const char *key_id,
	      int64_t not_after, struct stint_pubkey *pub,
	      struct stint_key_facts *facts, char *err, size_t errlen)
{
	struct fake_backend *fb = fake(b);

	(void)key_type;
	(void)key_id;
	(void)not_after;
	(void)pub;
	(void)facts;
	fb->generate_calls++;
	/* The handler tests put tasks in the store themselves: a start needs
	 * a CA and evidence, which this fake cannot make. */
	snprintf(err, errlen, "fake: makes no keys");
	return -1;
}

static int
fake_sign(struct stint_backend *b, const struct stint_backend_sign_req *req,
	  struct stint_backend_sig *sig, char *err, size_t errlen)
{
	struct fake_backend *fb = fake(b);
	const CK_RSA_PKCS_PSS_PARAMS *pss = req->pss;
	const char *key_id = req->key_id;
	CK_MECHANISM_TYPE raw = req->raw;
	size_t in_len = req->in_len;
	const uint8_t *in = req->in;

	fb->sign_calls++;
	snprintf(fb->sign_key, sizeof(fb->sign_key), "%s", key_id);
	fb->sign_raw = raw;
	fb->sign_has_pss = pss != NULL;
	if (pss != NULL)
		fb->sign_pss = *pss;
	fb->sign_in_len = in_len;
	if (in_len <= sizeof(fb->sign_in))
		memcpy(fb->sign_in, in, in_len);
	if (fb->fail_sign) {
		snprintf(err, errlen, "fake: sign told to fail");
		return -1;
	}
	if (sig->cap < FAKE_SIG_LEN) {
		snprintf(err, errlen, "fake: signature buffer too small");
		return -1;
	}
	memset(sig->ptr, 0x5a, FAKE_SIG_LEN);
	sig->len = FAKE_SIG_LEN;
	return 0;
}

static int
fake_destroy(struct stint_backend *b, const char *key_id, char *err,
	     size_t errlen)
{
	struct fake_backend *fb = fake(b);

	fb->destroy_calls++;
	snprintf(fb->destroy_key, sizeof(fb->destroy_key), "%s", key_id);
	if (fb->fail_destroy) {
		snprintf(err, errlen, "fake: destroy told to fail");
		return -1;
	}
	return 0;
}

static void
fake_close(struct stint_backend *b)
{
	(void)b; /* the test owns the struct */
}

static const struct stint_backend_ops fake_ops = {
	.name = "fake",
	.caps = 0,
	.evidence_kind = "pkcs11",
	.generate = fake_generate,
	.sign = fake_sign,
	.destroy = fake_destroy,
	.close = fake_close,
};

void
fake_backend_init(struct fake_backend *fb)
{
	memset(fb, 0, sizeof(*fb));
	fb->base.ops = &fake_ops;
}
