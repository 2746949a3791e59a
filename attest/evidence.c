/*
 * Evidence for the PKCS#11 backend (evidence.h, docs/attestation.md).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/evidence.h"
#include "common/msg.h"

#define PEM_NAME "STINT EVIDENCE"

enum { D_VERSION = 1, D_KIND = 2, D_STATEMENT = 3, D_SIGNATURE = 4 };
enum {
	S_TASK = 1,
	S_NONCE = 2,
	S_TIME = 3,
	S_SPKI = 4,
	S_KEY_TYPE = 5,
	S_AK_SPKI = 6,
	S_LOCAL = 7,
	S_NEVER_EXTRACTABLE = 8,
	S_SENSITIVE = 9,
	S_EXTRACTABLE = 10,
};

const char *
stint_evidence_check_str(int check)
{
	switch (check) {
	case STINT_EV_OK:
		return "ok";
	case STINT_EV_MALFORMED:
		return "well-formedness";
	case STINT_EV_SIGNATURE:
		return "signature";
	case STINT_EV_AK:
		return "attestation-key";
	case STINT_EV_TASK:
		return "task";
	case STINT_EV_NONCE:
		return "nonce";
	case STINT_EV_KEY_TYPE:
		return "key-type";
	case STINT_EV_KEY:
		return "key";
	case STINT_EV_ATTRIBUTES:
		return "attributes";
	default:
		return "internal";
	}
}

int
stint_evidence_encode_statement(const struct stint_evidence_claims *c,
				uint8_t **out, size_t *len)
{
	struct stint_msg *m = stint_msg_new();
	int r = 0;

	if (m == NULL)
		return -1;
	r |= stint_msg_put_text(m, S_TASK, c->task);
	r |= stint_msg_put_bytes(m, S_NONCE, c->nonce, sizeof(c->nonce));
	r |= stint_msg_put_uint(m, S_TIME, c->time);
	r |= stint_msg_put_bytes(m, S_SPKI, c->spki.ptr, c->spki.len);
	r |= stint_msg_put_uint(m, S_KEY_TYPE, c->key_type);
	r |= stint_msg_put_bytes(m, S_AK_SPKI, c->ak_spki.ptr, c->ak_spki.len);
	r |= stint_msg_put_bool(m, S_LOCAL, c->local);
	r |= stint_msg_put_bool(m, S_NEVER_EXTRACTABLE, c->never_extractable);
	r |= stint_msg_put_bool(m, S_SENSITIVE, c->sensitive);
	r |= stint_msg_put_bool(m, S_EXTRACTABLE, c->extractable);
	if (r == 0)
		r = stint_msg_serialize(m, out, len);
	stint_msg_free(m);
	return r == 0 ? 0 : -1;
}

int
stint_evidence_wrap(const uint8_t *stmt, size_t stmt_len, const uint8_t *sig,
		    size_t sig_len, uint8_t **doc, size_t *len)
{
	struct stint_msg *m = stint_msg_new();
	int r = 0;

	if (m == NULL)
		return -1;
	r |= stint_msg_put_uint(m, D_VERSION, STINT_EVIDENCE_VERSION);
	r |= stint_msg_put_text(m, D_KIND, STINT_EVIDENCE_KIND);
	r |= stint_msg_put_bytes(m, D_STATEMENT, stmt, stmt_len);
	r |= stint_msg_put_bytes(m, D_SIGNATURE, sig, sig_len);
	if (r == 0)
		r = stint_msg_serialize(m, doc, len);
	stint_msg_free(m);
	return r == 0 ? 0 : -1;
}

int
stint_evidence_create(const struct stint_evidence_claims *c, EVP_PKEY *ak,
		      uint8_t **doc, size_t *len, char *err, size_t errlen)
{
	EVP_MD_CTX *ctx = NULL;
	uint8_t *stmt = NULL, *sig = NULL;
	size_t stmt_len = 0, sig_len = 0;
	int r = -1;

	*doc = NULL;
	*len = 0;
	if (stint_evidence_encode_statement(c, &stmt, &stmt_len) != 0) {
		snprintf(err, errlen, "cannot encode the statement");
		goto out;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, ak) != 1 ||
	    EVP_DigestSign(ctx, NULL, &sig_len, stmt, stmt_len) != 1 ||
	    (sig = malloc(sig_len)) == NULL ||
	    EVP_DigestSign(ctx, sig, &sig_len, stmt, stmt_len) != 1) {
		snprintf(err, errlen,
			 "the attestation key could not sign the statement");
		goto out;
	}
	if (stint_evidence_wrap(stmt, stmt_len, sig, sig_len, doc, len) != 0) {
		snprintf(err, errlen, "cannot encode the evidence");
		goto out;
	}
	r = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(stmt);
	free(sig);
	return r;
}

void
stint_evidence_claims_free(struct stint_evidence_claims *c)
{
	stint_bytes_free(&c->spki);
	stint_bytes_free(&c->ak_spki);
	memset(c, 0, sizeof(*c));
}

static int
dup_bytes(const struct stint_msg *m, uint64_t key, struct stint_bytes *b)
{
	const uint8_t *p;
	size_t n;

	if (stint_msg_get_bytes(m, key, &p, &n) != 0 || n == 0)
		return -1;
	if ((b->ptr = malloc(n)) == NULL)
		return -1;
	memcpy(b->ptr, p, n);
	b->len = n;
	return 0;
}

/* The outer document: version, kind, and borrowed statement/signature. */
static int
decode_doc(const uint8_t *doc, size_t len, struct stint_msg **m,
	   const uint8_t **stmt, size_t *stmt_len, const uint8_t **sig,
	   size_t *sig_len, char *err, size_t errlen)
{
	char kind[32];
	uint64_t v;

	*m = NULL;
	if (len == 0 || len > STINT_EVIDENCE_MAX ||
	    stint_msg_parse(doc, len, m) != 0) {
		snprintf(err, errlen, "not a CBOR evidence document");
		return -1;
	}
	if (stint_msg_get_uint(*m, D_VERSION, &v) != 0 ||
	    v != STINT_EVIDENCE_VERSION) {
		snprintf(err, errlen, "evidence version missing or not %d",
			 STINT_EVIDENCE_VERSION);
		return -1;
	}
	if (stint_msg_get_text(*m, D_KIND, kind, sizeof(kind)) != 0 ||
	    strcmp(kind, STINT_EVIDENCE_KIND) != 0) {
		snprintf(err, errlen, "evidence kind missing or not '%s'",
			 STINT_EVIDENCE_KIND);
		return -1;
	}
	if (stint_msg_get_bytes(*m, D_STATEMENT, stmt, stmt_len) != 0 ||
	    *stmt_len == 0 ||
	    stint_msg_get_bytes(*m, D_SIGNATURE, sig, sig_len) != 0 ||
	    *sig_len == 0) {
		snprintf(err, errlen,
			 "evidence lacks its statement or "
			 "signature");
		return -1;
	}
	return 0;
}

static int
decode_statement(const uint8_t *stmt, size_t len,
		 struct stint_evidence_claims *c, char *err, size_t errlen)
{
	struct stint_msg *m = NULL;
	const uint8_t *nonce;
	size_t nonce_len;
	uint64_t kt;
	int r = -1;

	memset(c, 0, sizeof(*c));
	if (stint_msg_parse(stmt, len, &m) != 0) {
		snprintf(err, errlen, "the statement is not a CBOR map");
		goto out;
	}
	if (stint_msg_get_text(m, S_TASK, c->task, sizeof(c->task)) != 0 ||
	    c->task[0] == '\0' ||
	    stint_msg_get_bytes(m, S_NONCE, &nonce, &nonce_len) != 0 ||
	    nonce_len != STINT_NONCE_LEN ||
	    stint_msg_get_uint(m, S_TIME, &c->time) != 0 ||
	    stint_msg_get_uint(m, S_KEY_TYPE, &kt) != 0 || kt > UINT32_MAX ||
	    dup_bytes(m, S_SPKI, &c->spki) != 0 ||
	    dup_bytes(m, S_AK_SPKI, &c->ak_spki) != 0 ||
	    stint_msg_get_bool(m, S_LOCAL, &c->local) != 0 ||
	    stint_msg_get_bool(m, S_NEVER_EXTRACTABLE, &c->never_extractable) !=
		    0 ||
	    stint_msg_get_bool(m, S_SENSITIVE, &c->sensitive) != 0 ||
	    stint_msg_get_bool(m, S_EXTRACTABLE, &c->extractable) != 0) {
		snprintf(err, errlen,
			 "the statement lacks a field or has one of the wrong "
			 "type or size");
		goto out;
	}
	memcpy(c->nonce, nonce, STINT_NONCE_LEN);
	c->key_type = (uint32_t)kt;
	r = 0;
out:
	if (r != 0)
		stint_evidence_claims_free(c);
	stint_msg_free(m);
	return r;
}

int
stint_evidence_decode(const uint8_t *doc, size_t len,
		      struct stint_evidence_claims *out, char *err,
		      size_t errlen)
{
	struct stint_msg *m;
	const uint8_t *stmt, *sig;
	size_t stmt_len, sig_len;
	int r;

	memset(out, 0, sizeof(*out));
	r = decode_doc(doc, len, &m, &stmt, &stmt_len, &sig, &sig_len, err,
		       errlen);
	if (r == 0)
		r = decode_statement(stmt, stmt_len, out, err, errlen);
	stint_msg_free(m);
	return r;
}

static int
spki_of(EVP_PKEY *k, struct stint_bytes *b)
{
	unsigned char *der = NULL;
	int n;

	if ((n = i2d_PUBKEY(k, &der)) <= 0)
		return -1;
	b->ptr = der;
	b->len = (size_t)n;
	return 0;
}

static bool
bytes_eq(const struct stint_bytes *a, const uint8_t *p, size_t n)
{
	return a->len == n && CRYPTO_memcmp(a->ptr, p, n) == 0;
}

/* The checks on the decoded claims, in the order a reader expects them. */
static int
check_claims(const struct stint_evidence_claims *c, EVP_PKEY *ak,
	     const struct stint_evidence_expect *want, char *err, size_t errlen)
{
	struct stint_bytes ak_spki = {NULL, 0};
	bool same;

	if (spki_of(ak, &ak_spki) != 0) {
		snprintf(err, errlen, "cannot encode the attestation key");
		return STINT_EV_INTERNAL;
	}
	same = bytes_eq(&c->ak_spki, ak_spki.ptr, ak_spki.len);
	OPENSSL_free(ak_spki.ptr);
	if (!same) {
		snprintf(err, errlen,
			 "the statement names another attestation key than "
			 "the one that signed it");
		return STINT_EV_AK;
	}
	if (want->task != NULL && strcmp(want->task, c->task) != 0) {
		snprintf(err, errlen, "the evidence is for task '%s', not '%s'",
			 c->task, want->task);
		return STINT_EV_TASK;
	}
	if (want->nonce != NULL &&
	    CRYPTO_memcmp(want->nonce, c->nonce, STINT_NONCE_LEN) != 0) {
		snprintf(err, errlen,
			 "the nonce is not the expected one (replayed or "
			 "for another request)");
		return STINT_EV_NONCE;
	}
	if (stint_key_type_str(c->key_type) == NULL ||
	    (want->key_type != 0 && want->key_type != c->key_type)) {
		snprintf(err, errlen, "the key type %u is not the expected %u",
			 (unsigned)c->key_type, (unsigned)want->key_type);
		return STINT_EV_KEY_TYPE;
	}
	if (want->spki != NULL &&
	    !bytes_eq(&c->spki, want->spki->ptr, want->spki->len)) {
		snprintf(err, errlen,
			 "the attested public key is not the expected key");
		return STINT_EV_KEY;
	}
	if (!c->local || !c->never_extractable || !c->sensitive ||
	    c->extractable) {
		snprintf(err, errlen,
			 "the key attributes do not prove a key born in the "
			 "token that cannot leave it (local=%d "
			 "never_extractable=%d sensitive=%d extractable=%d)",
			 c->local, c->never_extractable, c->sensitive,
			 c->extractable);
		return STINT_EV_ATTRIBUTES;
	}
	return STINT_EV_OK;
}

int
stint_evidence_verify(const uint8_t *doc, size_t len, EVP_PKEY *ak,
		      const struct stint_evidence_expect *want,
		      struct stint_evidence_claims *out, char *err,
		      size_t errlen)
{
	struct stint_evidence_claims c;
	struct stint_msg *m = NULL;
	EVP_MD_CTX *ctx = NULL;
	const uint8_t *stmt, *sig;
	size_t stmt_len, sig_len;
	int r, v;

	memset(&c, 0, sizeof(c));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (decode_doc(doc, len, &m, &stmt, &stmt_len, &sig, &sig_len, err,
		       errlen) != 0) {
		r = STINT_EV_MALFORMED;
		goto out;
	}
	/* The exact statement bytes, before anything in them is believed. */
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, ak) != 1) {
		snprintf(err, errlen, "cannot use the attestation key");
		r = STINT_EV_INTERNAL;
		goto out;
	}
	v = EVP_DigestVerify(ctx, sig, sig_len, stmt, stmt_len);
	if (v != 1) {
		snprintf(err, errlen,
			 "the signature over the statement is not by the "
			 "given attestation key, or the statement was altered");
		r = STINT_EV_SIGNATURE;
		goto out;
	}
	if (decode_statement(stmt, stmt_len, &c, err, errlen) != 0) {
		r = STINT_EV_MALFORMED;
		goto out;
	}
	r = check_claims(&c, ak, want, err, errlen);
	if (r == STINT_EV_OK && out != NULL) {
		*out = c;
		memset(&c, 0, sizeof(c));
	}
out:
	stint_evidence_claims_free(&c);
	EVP_MD_CTX_free(ctx);
	stint_msg_free(m);
	return r;
}

int
stint_evidence_pem_write(FILE *f, const uint8_t *doc, size_t len)
{
	return PEM_write(f, PEM_NAME, "", doc, (long)len) > 0 ? 0 : -1;
}

int
stint_evidence_read(const uint8_t *buf, size_t buflen, uint8_t **doc,
		    size_t *len)
{
	static const char begin[] = "-----BEGIN " PEM_NAME "-----";
	char *name = NULL, *header = NULL;
	unsigned char *data = NULL;
	long n = 0;
	BIO *bio;
	int r = -1;

	*doc = NULL;
	*len = 0;
	if (buflen >= sizeof(begin) - 1 &&
	    memmem(buf, buflen, begin, sizeof(begin) - 1) != NULL) {
		if ((bio = BIO_new_mem_buf(buf, (int)buflen)) == NULL)
			return -1;
		if (PEM_read_bio(bio, &name, &header, &data, &n) == 1 &&
		    strcmp(name, PEM_NAME) == 0 && n > 0 &&
		    (*doc = malloc((size_t)n)) != NULL) {
			memcpy(*doc, data, (size_t)n);
			*len = (size_t)n;
			r = 0;
		}
		BIO_free(bio);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		return r;
	}
	if (buflen == 0 || (*doc = malloc(buflen)) == NULL)
		return -1;
	memcpy(*doc, buf, buflen);
	*len = buflen;
	return 0;
}
