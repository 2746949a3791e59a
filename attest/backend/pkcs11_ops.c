/*
 * PKCS#11 backend: the ops (generate, sign, destroy, host_key, stats)
 * and the ops table. See pkcs11_int.h.
 */

#include "attest/backend/pkcs11_int.h"

#include "common/mechanism.h"

/* --- generate ------------------------------------------------------------ */

/* A fresh task key under key_id (ready keys are handed out only by
 * key_take(), under their own ids). */
static int
key_generate(struct p11_backend *b, uint32_t key_type, const char *key_id,
	     bool mark, struct stint_pubkey *pub, struct stint_key_facts *facts,
	     char *err, size_t errlen)
{
	const struct p11_key_spec *spec;
	struct p11_keypair_req req;
	struct p11_keypair kp;
	CK_SESSION_HANDLE s;
	bool clean = true;
	CK_RV rv;
	int r = -1;

	memset(pub, 0, sizeof(*pub));
	memset(facts, 0, sizeof(*facts));
	if ((spec = p11_key_spec_find(key_type)) == NULL) {
		snprintf(err, errlen,
			 "unknown key type %u (use ec-p256, ec-p384, rsa-2048 "
			 "or rsa-3072)",
			 (unsigned)key_type);
		return -1;
	}
	if (!p11_key_id_ok(key_id)) {
		snprintf(err, errlen, "key id must be 1 to %d bytes",
			 KEY_ID_MAX);
		return -1;
	}
	/* An operation prepared for an earlier key of this id (destroyed
	 * behind our back) must not sign for the new one. */
	p11_prep_drop(b->prep, key_id);
	p11_pool_busy(b);
	if ((rv = p11_session_get(b, &s)) != CKR_OK) {
		p11_ck_err(err, errlen, "cannot open a token session", rv);
		return -1;
	}
	req.spec = spec;
	req.key_id = key_id;
	req.mark = mark;
	req.session_pub = mark; /* task keys; host keys keep theirs */
	kp.pub = pub;
	kp.facts = facts;
	kp.clean = true;
	if (p11_keypair_make(b, s, &req, &kp, err, errlen) != 0) {
		clean = kp.clean;
		goto out;
	}
	p11_cache_put_pair(b, key_id, kp.hpriv, kp.hpub,
			   spec->ec ? CKK_EC : CKK_RSA);
	r = 0;
out:
	p11_session_put(b, s, clean);
	return r;
}

static int
p11_generate(struct stint_backend *base, uint32_t key_type, const char *key_id,
	     int64_t not_after, struct stint_pubkey *pub,
	     struct stint_key_facts *facts, char *err, size_t errlen)
{
	(void)not_after; /* a PKCS#11 key cannot bind it */
	return key_generate((struct p11_backend *)base, key_type, key_id, true,
			    pub, facts, err, errlen);
}

/* Raw PSS signs a digest: its length must be the hash's. */
static int
pss_check(const CK_RSA_PKCS_PSS_PARAMS *pss, size_t in_len, char *err,
	  size_t errlen)
{
	const struct stint_hash *h = stint_hash_find(pss->hashAlg);
	size_t want = h != NULL ? h->len : 0;

	if (h == NULL) {
		snprintf(err, errlen,
			 "PSS hash 0x%lx is not SHA-1/224/256/"
			 "384/512",
			 (unsigned long)pss->hashAlg);
		return -1;
	}
	if (pss->mgf != h->mgf) {
		snprintf(err, errlen,
			 "PSS MGF1 hash differs from the message "
			 "hash");
		return -1;
	}
	if (in_len != want) {
		snprintf(err, errlen,
			 "PSS input is %zu bytes, not the %zu-byte digest",
			 in_len, want);
		return -1;
	}
	if (pss->sLen > 512) {
		snprintf(err, errlen, "PSS salt length %lu is too long",
			 (unsigned long)pss->sLen);
		return -1;
	}
	return 0;
}

/* What the token may be asked to sign at all: the mechanism, its
 * parameters, the key id and the input's length. */
static int
sign_check(const struct stint_backend_sign_req *req, char *err, size_t errlen)
{
	CK_MECHANISM_TYPE raw = req->raw;

	if (raw != CKM_ECDSA && raw != CKM_RSA_PKCS &&
	    raw != CKM_RSA_PKCS_PSS) {
		snprintf(err, errlen,
			 "mechanism 0x%lx is not CKM_ECDSA, CKM_RSA_PKCS or "
			 "CKM_RSA_PKCS_PSS",
			 (unsigned long)raw);
		return -1;
	}
	if ((raw == CKM_RSA_PKCS_PSS) != (req->pss != NULL)) {
		snprintf(err, errlen,
			 "PSS parameters go with CKM_RSA_PKCS_PSS "
			 "and only with it");
		return -1;
	}
	if (!p11_key_id_ok(req->key_id)) {
		snprintf(err, errlen, "key id must be 1 to %d bytes",
			 KEY_ID_MAX);
		return -1;
	}
	if (req->in_len == 0 || req->in_len > SIGN_IN_MAX) {
		snprintf(err, errlen, "input to sign must be 1 to %d bytes",
			 SIGN_IN_MAX);
		return -1;
	}
	if (req->pss != NULL && pss_check(req->pss, req->in_len, err, errlen))
		return -1;
	return 0;
}

/* C_SignInit for key_id in s, with the key's session copy (made at its
 * first signature, pkcs11_copy.c) when the token allows one. A cached
 * handle can be stale if the key was destroyed behind our back; then it is
 * looked up once more in the token. A stale copy (its session closed) is
 * made again. *key gets the handle used; *clean false when s is unusable. */
static int
sign_init(struct p11_backend *b, CK_SESSION_HANDLE s,
	  const struct stint_backend_sign_req *req, CK_MECHANISM *mech,
	  CK_OBJECT_HANDLE *key, bool *clean, char *err, size_t errlen)
{
	struct p11_key_found k;
	CK_RV rv = CKR_OK;
	int attempt;

	for (attempt = 0; attempt < 3; attempt++) {
		if (p11_key_lookup(b, s, req->key_id, &k, err, errlen) != 0) {
			*clean = !p11_session_broken(k.rv);
			return -1;
		}
		/* SoftHSM 2.6 crashes in C_Sign when an RSA mechanism is used
		 * with an EC key, so the token is not asked. */
		if (k.type != (req->raw == CKM_ECDSA ? CKK_EC : CKK_RSA)) {
			snprintf(err, errlen,
				 "key '%s' is not an %s key: mechanism does "
				 "not fit",
				 req->key_id,
				 req->raw == CKM_ECDSA ? "EC" : "RSA");
			return -1;
		}
		if (!k.copy)
			p11_copy_get(b, req->key_id, &k);
		rv = P11(b, C_SignInit, s, mech, k.h);
		if (rv != CKR_KEY_HANDLE_INVALID &&
		    rv != CKR_OBJECT_HANDLE_INVALID)
			break;
		if (k.copy)
			p11_copy_forget(b, req->key_id, k.h);
		else if (k.cached)
			p11_cache_drop(b, req->key_id);
		else
			break;
	}
	if (rv != CKR_OK) {
		*clean = !p11_session_broken(rv);
		if (rv == CKR_KEY_HANDLE_INVALID ||
		    rv == CKR_OBJECT_HANDLE_INVALID)
			p11_cache_drop(b, req->key_id);
		snprintf(err, errlen, "cannot sign with key '%s'", req->key_id);
		p11_ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		return -1;
	}
	*key = k.h;
	return 0;
}

static int
p11_sign(struct stint_backend *base, const struct stint_backend_sign_req *req,
	 struct stint_backend_sig *sig, char *err, size_t errlen)
{
	struct p11_backend *b = (struct p11_backend *)base;
	CK_RSA_PKCS_PSS_PARAMS pss_params;
	CK_MECHANISM mech = {req->raw, NULL, 0};
	struct p11_prep_sign_req prep;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_ULONG len;
	CK_RV rv;
	bool clean = true;
	int r = -1;

	if (sign_check(req, err, errlen) != 0)
		return -1;
	if (req->pss != NULL) {
		pss_params = *req->pss;
		mech.pParameter = &pss_params;
		mech.ulParameterLen = sizeof(pss_params);
	}
	prep = (struct p11_prep_sign_req){.key_id = req->key_id,
					  .mech = &mech,
					  .in = req->in,
					  .in_len = req->in_len,
					  .after_reply = req->after_reply};
	len = sig->cap;
	if (p11_prep_sign(b->prep, &prep, sig->ptr, &len)) {
		sig->len = len;
		return 0;
	}
	if ((rv = p11_session_get(b, &s)) != CKR_OK) {
		p11_ck_err(err, errlen, "cannot open a token session", rv);
		return -1;
	}
	if (sign_init(b, s, req, &mech, &key, &clean, err, errlen) != 0)
		goto out;
	len = sig->cap;
	rv = P11(b, C_Sign, s, (CK_BYTE_PTR)req->in, req->in_len, sig->ptr,
		 &len);
	if (rv != CKR_OK) {
		clean = false;
		snprintf(err, errlen, "signing with key '%s' failed",
			 req->key_id);
		p11_ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		goto out;
	}
	sig->len = len;
	r = 0;
out:
	p11_session_put(b, s, clean);
	if (r == 0)
		p11_prep_request(b->prep, req->key_id, key, &mech);
	return r;
}

int
p11_destroy(struct stint_backend *base, const char *key_id, char *err,
	    size_t errlen)
{
	struct p11_backend *b = (struct p11_backend *)base;
	CK_OBJECT_HANDLE h[FIND_BATCH], kpriv, kpub;
	CK_SESSION_HANDLE s;
	CK_ULONG n, i;
	CK_RV rv = CKR_OK;
	bool clean = true, known;
	int round, r = -1;

	if (!p11_key_id_ok(key_id)) {
		snprintf(err, errlen, "key id must be 1 to %d bytes",
			 KEY_ID_MAX);
		return -1;
	}
	known = p11_cache_take(b, key_id, &kpriv, &kpub);
	p11_prep_drop(b->prep, key_id);
	p11_pool_busy(b);
	if ((rv = p11_session_get(b, &s)) != CKR_OK) {
		p11_ck_err(err, errlen, "cannot open a token session", rv);
		return -1;
	}
	/* By the handles kept since the pair was made: no search. */
	if (known && p11_destroy_known(b, s, key_id, kpriv, kpub, &rv) == 0) {
		r = 0;
		goto out;
	}
	if (p11_session_broken(rv)) {
		p11_session_put(b, s, false);
		if ((rv = p11_session_get(b, &s)) != CKR_OK) {
			p11_ck_err(err, errlen, "cannot open a token session",
				   rv);
			return -1;
		}
	}
	/* Bounded: each round destroys what it found or fails. */
	for (round = 0; round < 64; round++) {
		if ((rv = p11_find_by_id(b, s, key_id, NULL, h, FIND_BATCH,
					 &n)) != CKR_OK) {
			clean = !p11_session_broken(rv);
			snprintf(err, errlen, "cannot search for key '%s'",
				 key_id);
			p11_ck_err(err + strlen(err), errlen - strlen(err), "",
				   rv);
			goto out;
		}
		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			rv = p11_obj_destroy(b, s, h[i]);
			/* Gone already: another thread got there first. */
			if (rv == CKR_OK || rv == CKR_OBJECT_HANDLE_INVALID)
				continue;
			clean = !p11_session_broken(rv);
			snprintf(err, errlen, "cannot destroy key '%s'",
				 key_id);
			p11_ck_err(err + strlen(err), errlen - strlen(err), "",
				   rv);
			goto out;
		}
	}
	if (round == 64) {
		snprintf(err, errlen,
			 "key '%s' keeps reappearing in token '%s'", key_id,
			 b->token);
		goto out;
	}
	r = 0;
out:
	/* A signer may have cached the handle, or asked for an operation to
	 * be prepared, while we were destroying. */
	p11_cache_drop(b, key_id);
	p11_prep_drop(b->prep, key_id);
	p11_session_put(b, s, clean);
	return r;
}

/* Finds the host key key_id (a private key and its public key sharing the
 * CKA_ID), or generates it. A host key that is found is held to the same
 * attribute rules as a fresh one: an extractable CA key is refused. */
static int
p11_host_key(struct stint_backend *base, const char *key_id, uint32_t key_type,
	     struct stint_pubkey *pub, struct stint_key_facts *facts,
	     bool *created, char *err, size_t errlen)
{
	struct p11_backend *b = (struct p11_backend *)base;
	static const CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY;
	static const CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY;
	const struct p11_key_spec *spec;
	CK_OBJECT_HANDLE hpriv[2], hpub[2];
	CK_SESSION_HANDLE s;
	const char *violation;
	CK_ULONG n, npub;
	bool clean = true;
	CK_RV rv;
	int r = -1;

	*created = false;
	memset(pub, 0, sizeof(*pub));
	memset(facts, 0, sizeof(*facts));
	if ((spec = p11_key_spec_find(key_type)) == NULL ||
	    !p11_key_id_ok(key_id)) {
		snprintf(err, errlen, "bad host key type or id");
		return -1;
	}
	if ((rv = p11_session_get(b, &s)) != CKR_OK) {
		p11_ck_err(err, errlen, "cannot open a token session", rv);
		return -1;
	}
	if ((rv = p11_find_by_id(b, s, key_id, &priv_cls, hpriv, 2, &n)) !=
		    CKR_OK ||
	    (rv = p11_find_by_id(b, s, key_id, &pub_cls, hpub, 2, &npub)) !=
		    CKR_OK) {
		clean = !p11_session_broken(rv);
		p11_ck_err(err, errlen, "cannot search the token", rv);
		goto out;
	}
	if (n == 0 && npub == 0) {
		p11_session_put(b, s, clean);
		/* Unmarked: the sweep never considers host keys. */
		r = key_generate(b, key_type, key_id, false, pub, facts, err,
				 errlen);
		*created = r == 0;
		return r;
	}
	if (n != 1 || npub != 1) {
		snprintf(err, errlen,
			 "token '%s' holds %lu private and %lu public keys "
			 "with id '%s', not one of each: remove the strays",
			 b->token, (unsigned long)n, (unsigned long)npub,
			 key_id);
		goto out;
	}
	if ((rv = p11_facts_read(b, s, hpriv[0], facts)) != CKR_OK) {
		clean = !p11_session_broken(rv);
		p11_ck_err(err, errlen, "cannot read the host key's attributes",
			   rv);
		goto out;
	}
	if ((violation = p11_facts_violation(facts)) != NULL) {
		snprintf(err, errlen,
			 "host key '%s' in token '%s' is not sign-only and "
			 "non-extractable (%s): refusing to use it",
			 key_id, b->token, violation);
		goto out;
	}
	if (p11_pubkey_read(b, s, hpub[0], spec, pub, err, errlen) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		stint_pubkey_free(pub);
	p11_session_put(b, s, clean);
	return r;
}

static void
p11_after_reply(struct stint_backend *base)
{
	p11_prep_after_reply(((struct p11_backend *)base)->prep);
}

static void
p11_stats(struct stint_backend *base, struct stint_backend_stats *st)
{
	struct p11_backend *b = (struct p11_backend *)base;
	size_t ready, max;

	pthread_mutex_lock(&b->pool_lock);
	st->ready_keys = b->n_pool;
	st->ready_target = b->pool_target;
	pthread_mutex_unlock(&b->pool_lock);
	p11_prep_stats(b->prep, &ready, &max);
	st->prepared = ready;
	st->prepared_max = max;
	pthread_mutex_lock(&b->lock);
	st->session_copies = b->n_copies;
	pthread_mutex_unlock(&b->lock);
}

const struct stint_backend_ops p11_ops = {
	.name = "pkcs11",
	.evidence_kind = STINT_EVIDENCE_KIND,
	.generate = p11_generate,
	.sign = p11_sign,
	.destroy = p11_destroy,
	.host_key = p11_host_key,
	.key_take = p11_key_take,
	.sweep = p11_sweep,
	.own_keys = p11_own_keys,
	.evidence = p11_evidence,
	.ak_spki = p11_ak_spki,
	.ak_sign = p11_ak_sign,
	.after_reply = p11_after_reply,
	.stats = p11_stats,
	.close = p11_close,
};
