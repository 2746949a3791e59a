/*
 * PKCS#11 backend: its attestation key and the ops built on it
 * (evidence, ak_spki, ak_sign). See pkcs11_int.h.
 *
 * The attestation key is the host key "stint-ak" (STINT_BACKEND_AK_ID, the
 * token key the CA has always loaded under that id): an ECDSA P-256 key pair
 * made like a task key (sensitive, never extractable, sign-only), found or
 * generated on first use. A token has no Certify, so the evidence is a
 * statement of the facts generate() or key_take() read back from the token
 * (evidence.h, kind "pkcs11"), signed by that key.
 */

#include "attest/backend/pkcs11_int.h"

#include <openssl/sha.h>

#include "common/bytes.h"

/* The attestation key's SPKI DER, found (or made) once and kept: it does
 * not change while stintd runs. */
static int
ak_spki_get(struct p11_backend *b, struct stint_bytes *out, char *err,
	    size_t errlen)
{
	struct stint_key_facts facts;
	struct stint_pubkey pub;
	bool created;
	int r = 0;

	pthread_mutex_lock(&b->lock);
	if (b->ak_spki.len > 0)
		r = stint_bytes_dup(out, &b->ak_spki);
	pthread_mutex_unlock(&b->lock);
	if (out->len > 0 || r != 0)
		goto done;
	if (p11_ops.host_key(&b->base, STINT_BACKEND_AK_ID, STINT_KEY_EC_P256,
			     &pub, &facts, &created, err, errlen) != 0)
		return -1;
	pthread_mutex_lock(&b->lock);
	if (b->ak_spki.len == 0) {
		b->ak_spki = pub.spki; /* moved */
		pub.spki = (struct stint_bytes){NULL, 0};
	}
	r = stint_bytes_dup(out, &b->ak_spki);
	pthread_mutex_unlock(&b->lock);
	stint_pubkey_free(&pub);
done:
	if (r != 0)
		snprintf(err, errlen, "out of memory");
	return r;
}

/* ECDSA by the attestation key over SHA-256(data): a DER ECDSA-Sig-Value
 * in sig (*sig_len the capacity in, the length out), as EVP_DigestSign
 * makes it. */
static int
ak_sign_sha256(struct p11_backend *b, const uint8_t *data, size_t len,
	       uint8_t *sig, size_t *sig_len, char *err, size_t errlen)
{
	uint8_t digest[SHA256_DIGEST_LENGTH], rs[STINT_SIG_MAX];
	struct stint_backend_sig out = {rs, sizeof(rs), 0};
	const struct stint_backend_sign_req req = {.key_id =
							   STINT_BACKEND_AK_ID,
						   .raw = CKM_ECDSA,
						   .in = digest,
						   .in_len = sizeof(digest)};

	SHA256(data, len, digest);
	if (p11_ops.sign(&b->base, &req, &out, err, errlen) != 0)
		return -1;
	if (stint_backend_ecdsa_der(rs, out.len, sig, sig_len) != 0) {
		snprintf(err, errlen, "cannot encode the signature");
		return -1;
	}
	return 0;
}

int
p11_ak_spki(struct stint_backend *base, struct stint_bytes *spki, char *err,
	    size_t errlen)
{
	*spki = (struct stint_bytes){NULL, 0};
	return ak_spki_get((struct p11_backend *)base, spki, err, errlen);
}

int
p11_ak_sign(struct stint_backend *base, const uint8_t *data, size_t len,
	    uint8_t *sig, size_t *sig_len, char *err, size_t errlen)
{
	return ak_sign_sha256((struct p11_backend *)base, data, len, sig,
			      sig_len, err, errlen);
}

/* The statement about req's key (evidence.h), signed by the attestation
 * key and wrapped into an evidence document. */
int
p11_evidence(struct stint_backend *base,
	     const struct stint_backend_evidence_req *req,
	     struct stint_bytes *doc, char *err, size_t errlen)
{
	struct p11_backend *b = (struct p11_backend *)base;
	struct stint_evidence_claims c;
	uint8_t sig[STINT_SIG_MAX], *stmt = NULL;
	size_t sig_len = sizeof(sig), stmt_len = 0;
	int r = -1;

	*doc = (struct stint_bytes){NULL, 0};
	if (req->nonce_len != STINT_NONCE_LEN || req->facts == NULL ||
	    req->spki == NULL || strlen(req->task_id) >= sizeof(c.task)) {
		snprintf(err, errlen,
			 "evidence needs a %d-byte nonce, the task id, the "
			 "key's SPKI and facts",
			 STINT_NONCE_LEN);
		return -1;
	}
	memset(&c, 0, sizeof(c));
	memcpy(c.task, req->task_id, strlen(req->task_id));
	memcpy(c.nonce, req->nonce, STINT_NONCE_LEN);
	c.time = (uint64_t)req->time;
	c.spki = *req->spki;
	c.key_type = req->key_type;
	c.local = req->facts->local;
	c.never_extractable = req->facts->never_extractable;
	c.sensitive = req->facts->sensitive;
	c.extractable = req->facts->extractable;
	if (ak_spki_get(b, &c.ak_spki, err, errlen) != 0)
		return -1;
	if (stint_evidence_encode_statement(&c, &stmt, &stmt_len) != 0) {
		snprintf(err, errlen, "cannot encode the statement");
		goto out;
	}
	if (ak_sign_sha256(b, stmt, stmt_len, sig, &sig_len, err, errlen) != 0)
		goto out;
	if (stint_evidence_wrap(stmt, stmt_len, sig, sig_len, &doc->ptr,
				&doc->len) != 0) {
		snprintf(err, errlen, "cannot encode the evidence");
		goto out;
	}
	r = 0;
out:
	free(stmt);
	stint_bytes_clear(&c.ak_spki);
	return r;
}
