/*
 * Evidence (evidence.h, docs/attestation.md): the PKCS#11 statement, and
 * the envelope around TPM2_Certify evidence (tpm_evidence.h). One
 * verifier dispatches on the kind.
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
#ifdef HAVE_TPM
#include "attest/tpm_evidence.h"
#endif

#define PEM_NAME "STINT EVIDENCE"

enum {
	D_VERSION = 1,
	D_KIND = 2,
	D_STATEMENT = 3, /* the TPM document for kind "tpm" */
	D_SIGNATURE = 4,
	D_NONCE = 5, /* kind "tpm" */
	D_TASK = 6,  /* kind "tpm" */
};
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
	case STINT_EV_ATTEST:
		return "attest";
	case STINT_EV_POLICY:
		return "policy";
	case STINT_EV_NAME:
		return "name";
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
stint_evidence_tpm_wrap(const uint8_t *tpm_doc, size_t tpm_len,
			const uint8_t nonce[STINT_NONCE_LEN], const char *task,
			uint8_t **doc, size_t *len)
{
	struct stint_msg *m = stint_msg_new();
	int r = 0;

	if (m == NULL)
		return -1;
	r |= stint_msg_put_uint(m, D_VERSION, STINT_EVIDENCE_VERSION);
	r |= stint_msg_put_text(m, D_KIND, STINT_EVIDENCE_KIND_TPM);
	r |= stint_msg_put_bytes(m, D_STATEMENT, tpm_doc, tpm_len);
	r |= stint_msg_put_bytes(m, D_NONCE, nonce, STINT_NONCE_LEN);
	r |= stint_msg_put_text(m, D_TASK, task);
	if (r == 0)
		r = stint_msg_serialize(m, doc, len);
	stint_msg_free(m);
	return r == 0 ? 0 : -1;
}

int
stint_evidence_kind(const uint8_t *doc, size_t len, char *kind, size_t cap)
{
	struct stint_msg *m = NULL;
	int r = -1;

	if (len > 0 && len <= STINT_EVIDENCE_MAX &&
	    stint_msg_parse(doc, len, &m) == 0 &&
	    stint_msg_get_text(m, D_KIND, kind, cap) == 0)
		r = 0;
	stint_msg_free(m);
	return r;
}

static bool
is_tpm(const uint8_t *doc, size_t len)
{
	char kind[32];

	return stint_evidence_kind(doc, len, kind, sizeof(kind)) == 0 &&
	       strcmp(kind, STINT_EVIDENCE_KIND_TPM) == 0;
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
	stint_bytes_clear(&c->spki);
	stint_bytes_clear(&c->ak_spki);
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

static int decode_tpm(const struct stint_msg *m, const uint8_t **tdoc,
		      size_t *tlen, struct stint_evidence_claims *c, char *err,
		      size_t errlen);

/* A TPM document's envelope and unverified figures, to show it. */
static int
decode_tpm_show(const uint8_t *doc, size_t len,
		struct stint_evidence_claims *out, char *err, size_t errlen)
{
	struct stint_msg *m = NULL;
	const uint8_t *tdoc;
	size_t tlen;
	int r = -1;
#ifdef HAVE_TPM
	struct stint_tpm_evidence ev;
#endif

	if (stint_msg_parse(doc, len, &m) != 0 ||
	    decode_tpm(m, &tdoc, &tlen, out, err, errlen) != 0)
		goto out;
#ifdef HAVE_TPM
	if (stint_tpm_evidence_decode(tdoc, tlen, &ev, err, errlen) != 0)
		goto out;
	out->tpm_deadline = ev.deadline;
	out->tpm_counter = ev.counter;
	out->not_after = ev.not_after;
#endif
	r = 0;
out:
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
	if (is_tpm(doc, len))
		return decode_tpm_show(doc, len, out, err, errlen);
	r = decode_doc(doc, len, &m, &stmt, &stmt_len, &sig, &sig_len, err,
		       errlen);
	if (r == 0)
		r = decode_statement(stmt, stmt_len, out, err, errlen);
	if (r == 0)
		snprintf(out->kind, sizeof(out->kind), "%s",
			 STINT_EVIDENCE_KIND);
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

/* --- kind "tpm": the envelope around a TPM2_Certify document ----------- */

static int
decode_tpm(const struct stint_msg *m, const uint8_t **tdoc, size_t *tlen,
	   struct stint_evidence_claims *c, char *err, size_t errlen)
{
	const uint8_t *nonce;
	size_t nonce_len;
	uint64_t v;

	if (stint_msg_get_uint(m, D_VERSION, &v) != 0 ||
	    v != STINT_EVIDENCE_VERSION) {
		snprintf(err, errlen, "evidence version missing or not %d",
			 STINT_EVIDENCE_VERSION);
		return -1;
	}
	if (stint_msg_get_bytes(m, D_STATEMENT, tdoc, tlen) != 0 ||
	    *tlen == 0 ||
	    stint_msg_get_bytes(m, D_NONCE, &nonce, &nonce_len) != 0 ||
	    nonce_len != STINT_NONCE_LEN ||
	    stint_msg_get_text(m, D_TASK, c->task, sizeof(c->task)) != 0 ||
	    c->task[0] == '\0') {
		snprintf(err, errlen,
			 "TPM evidence lacks its document, a 32-byte nonce "
			 "or the task id");
		return -1;
	}
	memcpy(c->nonce, nonce, STINT_NONCE_LEN);
	snprintf(c->kind, sizeof(c->kind), "%s", STINT_EVIDENCE_KIND_TPM);
	return 0;
}

#ifdef HAVE_TPM
/* The TPM verifier names its check as the message's first word. */
static int
tpm_check(const char *err)
{
	static const struct {
		const char *prefix;
		int check;
	} map[] = {
		{"document:", STINT_EV_MALFORMED},
		{"attest:", STINT_EV_MALFORMED},
		{"AK:", STINT_EV_AK},
		{"signature:", STINT_EV_SIGNATURE},
		{"magic:", STINT_EV_ATTEST},
		{"type:", STINT_EV_ATTEST},
		{"nonce:", STINT_EV_NONCE},
		{"key:", STINT_EV_KEY},
		{"attributes:", STINT_EV_ATTRIBUTES},
		{"nv:", STINT_EV_POLICY},
		{"policy:", STINT_EV_POLICY},
		{"name:", STINT_EV_NAME},
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(err, map[i].prefix, strlen(map[i].prefix)) == 0)
			return map[i].check;
	return STINT_EV_MALFORMED;
}

/* The TPM backend makes EC P-256 and RSA-2048 keys. */
static uint32_t
key_type_of(const struct stint_bytes *spki)
{
	const unsigned char *p = spki->ptr;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)spki->len);
	uint32_t t = 0;

	if (k == NULL)
		return 0;
	if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	    EVP_PKEY_get_bits(k) == 256)
		t = STINT_KEY_EC_P256;
	else if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA &&
		 EVP_PKEY_get_bits(k) == 2048)
		t = STINT_KEY_RSA_2048;
	EVP_PKEY_free(k);
	return t;
}

static int
copy_bytes(struct stint_bytes *dst, const uint8_t *p, size_t n)
{
	if ((dst->ptr = malloc(n ? n : 1)) == NULL)
		return -1;
	memcpy(dst->ptr, p, n);
	dst->len = n;
	return 0;
}
#endif

/* The envelope's nonce and task id are checked against want first (so a
 * wrong one is named as such), then the TPM verifier checks extraData
 * against them, and everything else (tpm_evidence.h). */
static int
verify_tpm(const struct stint_msg *m, EVP_PKEY *ak,
	   const struct stint_evidence_expect *want,
	   struct stint_evidence_claims *c, char *err, size_t errlen)
{
	const uint8_t *tdoc;
	size_t tlen;
#ifdef HAVE_TPM
	struct stint_tpm_evidence_info info;
	struct stint_bytes ak_spki = {NULL, 0};
	BIO *bio = NULL;
	char *pem;
	long pem_len;
	int r;
#endif

	if (decode_tpm(m, &tdoc, &tlen, c, err, errlen) != 0)
		return STINT_EV_MALFORMED;
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
#ifdef HAVE_TPM
	memset(&info, 0, sizeof(info));
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, ak) != 1 ||
	    (pem_len = BIO_get_mem_data(bio, &pem)) <= 0) {
		snprintf(err, errlen, "cannot encode the attestation key");
		r = STINT_EV_INTERNAL;
		goto out;
	}
	if (stint_tpm_evidence_verify(
		    tdoc, tlen, (const uint8_t *)pem, (size_t)pem_len, c->nonce,
		    STINT_NONCE_LEN, c->task, &info, err, errlen) != 0) {
		r = tpm_check(err);
		goto out;
	}
	c->key_type = key_type_of(&info.key_spki);
	if (c->key_type == 0 ||
	    (want->key_type != 0 && want->key_type != c->key_type)) {
		snprintf(err, errlen, "the key type %u is not the expected %u",
			 (unsigned)c->key_type, (unsigned)want->key_type);
		r = STINT_EV_KEY_TYPE;
		goto out;
	}
	if (want->spki != NULL &&
	    !bytes_eq(&info.key_spki, want->spki->ptr, want->spki->len)) {
		snprintf(err, errlen,
			 "the certified public key is not the expected key");
		r = STINT_EV_KEY;
		goto out;
	}
	if (spki_of(ak, &ak_spki) != 0 ||
	    copy_bytes(&c->ak_spki, ak_spki.ptr, ak_spki.len) != 0) {
		snprintf(err, errlen, "out of memory");
		r = STINT_EV_INTERNAL;
		goto out;
	}
	c->spki = info.key_spki;
	info.key_spki.ptr = NULL;
	info.key_spki.len = 0;
	/* fixedTPM, fixedParent, sensitiveDataOrigin, no userWithAuth:
	 * verified above, and stronger than the PKCS#11 flags. */
	c->local = c->never_extractable = c->sensitive = true;
	c->extractable = false;
	c->tpm_deadline = info.deadline;
	c->tpm_counter = info.counter;
	c->tpm_clock = info.clock;
	c->not_after = info.not_after;
	c->nv_index = info.nv_index;
	r = STINT_EV_OK;
out:
	OPENSSL_free(ak_spki.ptr);
	BIO_free(bio);
	stint_tpm_evidence_info_free(&info);
	return r;
#else
	(void)ak;
	(void)tdoc;
	(void)tlen;
	snprintf(err, errlen,
		 "TPM evidence: this stint was built without tpm2-tss");
	return STINT_EV_INTERNAL;
#endif
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
	if (is_tpm(doc, len)) {
		if (stint_msg_parse(doc, len, &m) != 0) {
			snprintf(err, errlen, "not a CBOR evidence document");
			r = STINT_EV_MALFORMED;
			goto out;
		}
		r = verify_tpm(m, ak, want, &c, err, errlen);
		goto done;
	}
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
	snprintf(c.kind, sizeof(c.kind), "%s", STINT_EVIDENCE_KIND);
	r = check_claims(&c, ak, want, err, errlen);
done:
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
