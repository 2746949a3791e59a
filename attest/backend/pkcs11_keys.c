/*
 * PKCS#11 backend: key specs, the task-key marker, public keys as
 * SubjectPublicKeyInfo, and key pair generation. See pkcs11_int.h.
 */

#include "attest/backend/pkcs11_int.h"

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
				   0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

const struct p11_key_spec p11_key_specs[] = {
	{STINT_KEY_EC_P256, "ec-p256", true, NID_X9_62_prime256v1, oid_p256,
	 sizeof(oid_p256), 256},
	{STINT_KEY_EC_P384, "ec-p384", true, NID_secp384r1, oid_p384,
	 sizeof(oid_p384), 384},
	{STINT_KEY_RSA_2048, "rsa-2048", false, 0, NULL, 0, 2048},
	{STINT_KEY_RSA_3072, "rsa-3072", false, 0, NULL, 0, 3072},
};

const CK_BYTE p11_key_mark[28] = {0x30, 0x1a, 0x31, 0x18, 0x30, 0x16, 0x06,
				  0x03, 0x55, 0x04, 0x03, 0x0c, 0x0f, 's',
				  't',  'i',  'n',  't',  'd',  ' ',  't',
				  'a',  's',  'k',  ' ',  'k',  'e',  'y'};

/* --- SubjectPublicKeyInfo ------------------------------------------------ */

/* The SPKI of pkey (consumed) if it has the spec's size. */
static int
spki_of_bits(EVP_PKEY *pkey, int want_bits, struct stint_bytes *spki)
{
	int r = -1;

	if (pkey != NULL && EVP_PKEY_get_bits(pkey) == want_bits)
		r = stint_backend_spki_der(pkey, spki);
	EVP_PKEY_free(pkey);
	return r;
}

static int
spki_ec(const struct p11_key_spec *spec, struct stint_pubkey *pub, char *why,
	size_t whylen)
{
	const unsigned char *p;
	ASN1_OBJECT *oid = NULL;
	ASN1_OCTET_STRING *os = NULL;
	EVP_PKEY *pkey = NULL;
	const uint8_t *point;
	size_t point_len;
	int r = -1;

	p = pub->ec_params.ptr;
	oid = d2i_ASN1_OBJECT(NULL, &p, (long)pub->ec_params.len);
	if (oid == NULL || p != pub->ec_params.ptr + pub->ec_params.len ||
	    OBJ_obj2nid(oid) != spec->nid) {
		snprintf(why, whylen, "CKA_EC_PARAMS is not the %s curve OID",
			 spec->name);
		goto out;
	}
	/* PKCS#11 says CKA_EC_POINT is a DER OCTET STRING; some tokens give
	 * the raw point, which is accepted too. */
	p = pub->ec_point.ptr;
	os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)pub->ec_point.len);
	if (os != NULL && p == pub->ec_point.ptr + pub->ec_point.len) {
		point = os->data;
		point_len = (size_t)os->length;
	} else {
		point = pub->ec_point.ptr;
		point_len = pub->ec_point.len;
	}
	(void)stint_backend_pkey_ec(OBJ_nid2sn(spec->nid), point, point_len,
				    &pkey);
	if (spki_of_bits(pkey, (int)spec->bits, &pub->spki) != 0) {
		snprintf(why, whylen, "CKA_EC_POINT is not a %s point",
			 spec->name);
		goto out;
	}
	r = 0;
out:
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
	return r;
}

static int
spki_rsa(const struct p11_key_spec *spec, struct stint_pubkey *pub, char *why,
	 size_t whylen)
{
	BIGNUM *n = NULL, *e = NULL;
	EVP_PKEY *pkey = NULL;
	int r = -1;

	if ((n = BN_bin2bn(pub->modulus.ptr, (int)pub->modulus.len, NULL)) ==
		    NULL ||
	    (e = BN_bin2bn(pub->exponent.ptr, (int)pub->exponent.len, NULL)) ==
		    NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	(void)stint_backend_pkey_rsa(n, e, &pkey);
	if (spki_of_bits(pkey, (int)spec->bits, &pub->spki) != 0) {
		snprintf(why, whylen, "CKA_MODULUS is not a %s modulus",
			 spec->name);
		goto out;
	}
	r = 0;
out:
	BN_free(e);
	BN_free(n);
	return r;
}

int
p11_pubkey_read(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
		const struct p11_key_spec *spec, struct stint_pubkey *pub,
		char *err, size_t errlen)
{
	char why[128];
	CK_RV rv;

	if (spec->ec) {
		if ((rv = p11_attr_read(b, s, h, CKA_EC_PARAMS,
					&pub->ec_params)) != CKR_OK ||
		    (rv = p11_attr_read(b, s, h, CKA_EC_POINT,
					&pub->ec_point)) != CKR_OK) {
			p11_ck_err(err, errlen, "cannot read the EC public key",
				   rv);
			return -1;
		}
		if (spki_ec(spec, pub, why, sizeof(why)) != 0)
			goto bad;
	} else {
		if ((rv = p11_attr_read(b, s, h, CKA_MODULUS, &pub->modulus)) !=
			    CKR_OK ||
		    (rv = p11_attr_read(b, s, h, CKA_PUBLIC_EXPONENT,
					&pub->exponent)) != CKR_OK) {
			p11_ck_err(err, errlen,
				   "cannot read the RSA public key", rv);
			return -1;
		}
		if (spki_rsa(spec, pub, why, sizeof(why)) != 0)
			goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "token '%s' returned an unusable public key: %s",
		 b->token, why);
	return -1;
}

/* --- what a failed generation left --------------------------------------- */

#define HANDLE_BATCH 128

static int
handle_cmp(const void *x, const void *y)
{
	CK_OBJECT_HANDLE a = *(const CK_OBJECT_HANDLE *)x;
	CK_OBJECT_HANDLE c = *(const CK_OBJECT_HANDLE *)y;

	return a < c ? -1 : a > c;
}

static CK_RV
handles_grow(struct p11_handles *l, size_t more)
{
	CK_OBJECT_HANDLE *grown;
	size_t cap = l->cap ? l->cap : 64;

	while (cap < l->n + more)
		cap *= 2;
	if (cap == l->cap)
		return CKR_OK;
	if ((grown = realloc(l->h, cap * sizeof(*grown))) == NULL)
		return CKR_HOST_MEMORY;
	l->h = grown;
	l->cap = cap;
	return CKR_OK;
}

/* Every object of the token that session s sees (an empty template), its
 * handles sorted into l (free l->h). */
static CK_RV
handles_list(struct p11_backend *b, CK_SESSION_HANDLE s, struct p11_handles *l)
{
	CK_OBJECT_HANDLE h[HANDLE_BATCH];
	CK_ULONG n;
	CK_RV rv, rv2;

	memset(l, 0, sizeof(*l));
	if ((rv = P11(b, C_FindObjectsInit, s, NULL, 0)) != CKR_OK)
		return rv;
	while ((rv = P11(b, C_FindObjects, s, h, HANDLE_BATCH, &n)) == CKR_OK &&
	       n > 0) {
		if ((rv = handles_grow(l, n)) != CKR_OK)
			break;
		memcpy(l->h + l->n, h, n * sizeof(*h));
		l->n += n;
	}
	rv2 = P11(b, C_FindObjectsFinal, s);
	if (rv == CKR_OK)
		rv = rv2;
	if (rv != CKR_OK) {
		free(l->h);
		memset(l, 0, sizeof(*l));
		return rv;
	}
	l->valid = true;
	return CKR_OK;
}

static void
handles_sort(struct p11_handles *l)
{
	if (!l->sorted && l->n > 1)
		qsort(l->h, l->n, sizeof(*l->h), handle_cmp);
	l->sorted = true;
}

static bool
handles_has(struct p11_handles *l, CK_OBJECT_HANDLE h)
{
	handles_sort(l);
	return l->n > 0 &&
	       bsearch(&h, l->h, l->n, sizeof(*l->h), handle_cmp) != NULL;
}

static void
handles_reset(struct p11_handles *l)
{
	free(l->h);
	memset(l, 0, sizeof(*l));
}

/*
 * The token's objects as a failed generation is judged against (b->known,
 * write_lock held): listed in full only before the first generation, after
 * a failed one, and every KNOWN_MAX handles; in between each pair stintd
 * makes is added. A full listing passes over every object (in SoftHSM2's
 * file store: each object's file opened and read), which before every
 * generation made a task start at 5,000 live tasks cost hundreds of
 * milliseconds. What the snapshot misses: an object another process made
 * since the last listing counts as new, so an id-less key of its that
 * appeared just as a generation failed would be removed with the failed
 * pair's; the token belongs to one stintd (see the sweep).
 */
static bool
known_ready(struct p11_backend *b, CK_SESSION_HANDLE s, CK_RV *rv)
{
	*rv = CKR_OK;
	if (b->known.valid && b->known.n < KNOWN_MAX)
		return true;
	handles_reset(&b->known);
	*rv = handles_list(b, s, &b->known);
	return b->known.valid;
}

static void
known_add(struct p11_backend *b, CK_OBJECT_HANDLE hpub, CK_OBJECT_HANDLE hpriv)
{
	if (!b->known.valid)
		return;
	if (handles_grow(&b->known, 2) != CKR_OK) {
		handles_reset(&b->known); /* listed again next time */
		return;
	}
	b->known.h[b->known.n++] = hpub;
	b->known.h[b->known.n++] = hpriv;
	b->known.sorted = false;
}

/* True when h is a private or public key whose CKA_ID is missing or
 * empty; false when that cannot be read. */
static bool
key_idless(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_ATTRIBUTE a[2] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, NULL, 0}};
	CK_RV rv;

	rv = P11(b, C_GetAttributeValue, s, h, a, 2);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID)
		return false;
	if (a[0].ulValueLen != sizeof(cls) ||
	    (cls != CKO_PRIVATE_KEY && cls != CKO_PUBLIC_KEY))
		return false;
	return a[1].ulValueLen == 0 ||
	       a[1].ulValueLen == CK_UNAVAILABLE_INFORMATION;
}

/*
 * After a failed C_GenerateKeyPair (write_lock held, before = the token's
 * handles listed just before it): destroys every key object that is new
 * and has no CKA_ID. SoftHSM2 under load has been seen to fail with
 * CKR_GENERAL_ERROR and leave such a pair, made without the template (no
 * id, no label, no marker, not even CKA_SENSITIVE), which neither the
 * sweep (it selects by the marker) nor a task end (by id) would ever
 * remove. An object that existed before, or one with an id, is never
 * touched. Uses a session of its own: the failed one may be unusable.
 */
static void
genfail_cleanup(struct p11_backend *b, struct p11_handles *before,
		const struct p11_key_spec *spec)
{
	struct p11_handles after;
	CK_SESSION_HANDLE s;
	size_t i, found = 0, done = 0;
	CK_RV rv;

	if ((rv = p11_session_get(b, &s)) != CKR_OK) {
		log_warn("backend: cannot open a session on token '%s' (%s) "
			 "to remove what a failed key generation left",
			 b->token, p11_ckr_str(rv));
		return;
	}
	if ((rv = handles_list(b, s, &after)) != CKR_OK) {
		log_warn("backend: cannot list token '%s' (%s) after a failed "
			 "key generation; id-less keys it left stay",
			 b->token, p11_ckr_str(rv));
		p11_session_put(b, s, !p11_session_broken(rv));
		return;
	}
	for (i = 0; i < after.n; i++) {
		if (handles_has(before, after.h[i]) ||
		    !key_idless(b, s, after.h[i]))
			continue;
		found++;
		rv = P11(b, C_DestroyObject, s, after.h[i]);
		if (rv == CKR_OK)
			done++;
		else
			log_warn("backend: cannot destroy key object %lu "
				 "without id in token '%s' (%s)",
				 (unsigned long)after.h[i], b->token,
				 p11_ckr_str(rv));
	}
	p11_session_put(b, s, !p11_session_broken(rv));
	free(after.h);
	if (found == 0)
		return;
	b->genfail_destroyed += done;
	log_warn("backend: a failed key generation (%s) left %zu key objects "
		 "without id in token '%s': %zu destroyed (%zu since start)",
		 spec->name, found, b->token, done, b->genfail_destroyed);
}

/* --- operations ---------------------------------------------------------- */

const struct p11_key_spec *
p11_key_spec_find(uint32_t type)
{
	size_t i;

	for (i = 0; i < sizeof(p11_key_specs) / sizeof(p11_key_specs[0]); i++)
		if (p11_key_specs[i].type == type)
			return &p11_key_specs[i];
	return NULL;
}

bool
p11_key_id_ok(const char *key_id)
{
	size_t n = strlen(key_id);

	return n > 0 && n <= KEY_ID_MAX;
}

/*
 * Generates a key pair of spec under id with the task-key template in
 * session s and reads it back: the facts must be sign-only and
 * non-extractable, the public key must parse. On failure nothing is left in
 * the token and *clean says whether s may be reused: that includes key
 * objects without id that a failed C_GenerateKeyPair left behind
 * (genfail_cleanup, against the snapshot of known_ready).
 *
 * SoftHSM makes objects CKA_MODIFIABLE by default. Only a holder of the
 * user PIN could change a key's attributes, and only stintd has it; agents
 * reach keys only through stintd, which never sets attributes on keys.
 */
/* What names both halves of a pair: CKA_ID = CKA_LABEL = the key id, and
 * the task-key marker when asked for. */
static void
name_attrs(CK_ATTRIBUTE *t, CK_ULONG *n, const struct p11_keypair_req *req)
{
	CK_ULONG id_len = strlen(req->key_id);

	p11_attr_add(t, n, CKA_ID, (void *)req->key_id, id_len);
	p11_attr_add(t, n, CKA_LABEL, (void *)req->key_id, id_len);
	if (req->mark)
		p11_attr_add(t, n, CKA_SUBJECT, (void *)p11_key_mark,
			     sizeof(p11_key_mark));
}

/* 0 when stintd knows no key under id: a second key under one id would
 * make every later lookup a guess. The token is not searched (a search
 * passes over every object; see known_ready): every id given here was
 * minted just before from 128 random bits (stint_task_id_new, for a task
 * start or a ready key), or is a host key's that p11_host_key searched the
 * token for first; the cache knows every key stintd made since its start
 * and every marked key the sweep listed at start. */
static int
id_unused(struct p11_backend *b, const char *id, char *err, size_t errlen)
{
	if (p11_cache_has(b, id)) {
		snprintf(err, errlen,
			 "a key with id '%s' already exists in token '%s'", id,
			 b->token);
		return -1;
	}
	return 0;
}

int
p11_keypair_make(struct p11_backend *b, CK_SESSION_HANDLE s,
		 const struct p11_keypair_req *req, struct p11_keypair *out,
		 char *err, size_t errlen)
{
	const struct p11_key_spec *spec = req->spec;
	struct stint_pubkey *pub = out->pub;
	struct stint_key_facts *facts = out->facts;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_BYTE exponent[] = {0x01, 0x00, 0x01};
	CK_ULONG bits, npub = 0, npriv = 0;
	CK_ATTRIBUTE pubt[10], privt[12];
	CK_MECHANISM mech = {0, NULL, 0};
	CK_OBJECT_HANDLE hpub = 0, hpriv = 0;
	const char *violation;
	bool have_keys = false, known;
	CK_RV rv, known_rv;
	int r = -1;

	if (id_unused(b, req->key_id, err, errlen) != 0)
		return -1;
	bits = spec->bits;
	p11_attr_add(pubt, &npub, CKA_TOKEN, req->session_pub ? &no : &yes,
		     sizeof(yes));
	p11_attr_add(pubt, &npub, CKA_VERIFY, &yes, sizeof(yes));
	p11_attr_add(pubt, &npub, CKA_ENCRYPT, &no, sizeof(no));
	p11_attr_add(pubt, &npub, CKA_WRAP, &no, sizeof(no));
	if (spec->ec) {
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		p11_attr_add(pubt, &npub, CKA_EC_PARAMS, (void *)spec->oid,
			     spec->oid_len);
	} else {
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		p11_attr_add(pubt, &npub, CKA_MODULUS_BITS, &bits,
			     sizeof(bits));
		p11_attr_add(pubt, &npub, CKA_PUBLIC_EXPONENT, exponent,
			     sizeof(exponent));
	}
	p11_attr_add(privt, &npriv, CKA_TOKEN, &yes, sizeof(yes));
	p11_attr_add(privt, &npriv, CKA_PRIVATE, &yes, sizeof(yes));
	p11_attr_add(privt, &npriv, CKA_SENSITIVE, &yes, sizeof(yes));
	p11_attr_add(privt, &npriv, CKA_EXTRACTABLE, &no, sizeof(no));
	p11_attr_add(privt, &npriv, CKA_SIGN, &yes, sizeof(yes));
	p11_attr_add(privt, &npriv, CKA_DECRYPT, &no, sizeof(no));
	p11_attr_add(privt, &npriv, CKA_UNWRAP, &no, sizeof(no));
	p11_attr_add(privt, &npriv, CKA_DERIVE, &no, sizeof(no));
	name_attrs(pubt, &npub, req);
	name_attrs(privt, &npriv, req);

	pthread_mutex_lock(&b->write_lock);
	known = known_ready(b, s, &known_rv);
	rv = P11(b, C_GenerateKeyPair, s, &mech, pubt, npub, privt, npriv,
		 &hpub, &hpriv);
	if (rv == CKR_OK) {
		known_add(b, hpub, hpriv);
	} else if (known) {
		genfail_cleanup(b, &b->known, spec);
		handles_reset(&b->known); /* listed afresh next time */
	} else {
		log_warn("backend: cannot list token '%s' (%s) before a key "
			 "generation that failed; id-less keys it left stay",
			 b->token, p11_ckr_str(known_rv));
	}
	pthread_mutex_unlock(&b->write_lock);
	if (rv != CKR_OK) {
		out->clean = !p11_session_broken(rv);
		snprintf(err, errlen,
			 "cannot generate a key (%s) in token '%s'", spec->name,
			 b->token);
		p11_ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		goto out;
	}
	have_keys = true;

	if ((rv = p11_facts_read(b, s, hpriv, facts)) != CKR_OK) {
		out->clean = !p11_session_broken(rv);
		p11_ck_err(err, errlen,
			   "cannot read back the new key's attributes; key "
			   "refused",
			   rv);
		goto out;
	}
	if ((violation = p11_facts_violation(facts)) != NULL) {
		snprintf(err, errlen,
			 "token '%s' made a key (%s) that is not sign-only and "
			 "non-extractable (%s); key refused and destroyed",
			 b->token, spec->name, violation);
		goto out;
	}
	if (p11_pubkey_read(b, s, hpub, spec, pub, err, errlen) != 0)
		goto out;
	/* Read: a session object is not needed any more (and goes with its
	 * session anyway). Nothing is written to the token for it. */
	if (req->session_pub && P11(b, C_DestroyObject, s, hpub) == CKR_OK)
		hpub = CK_INVALID_HANDLE;
	out->hpub = hpub;
	out->hpriv = hpriv;
	r = 0;
out:
	if (r != 0 && have_keys) {
		p11_obj_destroy(b, s, hpriv);
		p11_obj_destroy(b, s, hpub);
		stint_pubkey_free(pub);
	}
	return r;
}
