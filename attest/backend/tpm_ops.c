/*
 * TPM backend: key templates, TPM plumbing (primary, create, load,
 * clock), public keys, the ops (generate, host_key, sign, destroy), the
 * ops table, open and close. See tpm_int.h.
 */

#include "attest/backend/tpm_int.h"

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
				   0xce, 0x3d, 0x03, 0x01, 0x07};

/* --- templates ------------------------------------------------------------ */

/* What every template here shares: SHA-256 names, the given attributes,
 * no symmetric algorithm and no fixed scheme (the sign call names it). */
static void
template_base(TPM2B_PUBLIC *t, TPMI_ALG_PUBLIC type, TPMA_OBJECT attrs)
{
	memset(t, 0, sizeof(*t));
	t->publicArea.type = type;
	t->publicArea.nameAlg = TPM2_ALG_SHA256;
	t->publicArea.objectAttributes = attrs;
	if (type == TPM2_ALG_ECC) {
		t->publicArea.parameters.eccDetail.symmetric.algorithm =
			TPM2_ALG_NULL;
		t->publicArea.parameters.eccDetail.scheme.scheme =
			TPM2_ALG_NULL;
		t->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
		t->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	} else {
		t->publicArea.parameters.rsaDetail.symmetric.algorithm =
			TPM2_ALG_NULL;
		t->publicArea.parameters.rsaDetail.scheme.scheme =
			TPM2_ALG_NULL;
		t->publicArea.parameters.rsaDetail.keyBits = 2048;
		t->publicArea.parameters.rsaDetail.exponent = 0; /* 65537 */
	}
}

/* The TCG-style ECC P-256 storage key: deterministic for one owner seed,
 * so it is recreated at each start instead of being persisted. */
static void
template_primary(TPM2B_PUBLIC *t)
{
	template_base(t, TPM2_ALG_ECC,
		      TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
			      TPMA_OBJECT_SENSITIVEDATAORIGIN |
			      TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA |
			      TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT);
	t->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	t->publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
	t->publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
}

/* The host attestation key: a restricted ECDSA P-256 signing key, the only
 * kind TPM2_Certify accepts as signer. */
void
tpm_template_ak(TPM2B_PUBLIC *t)
{
	template_base(t, TPM2_ALG_ECC,
		      TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
			      TPMA_OBJECT_SENSITIVEDATAORIGIN |
			      TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA |
			      TPMA_OBJECT_RESTRICTED |
			      TPMA_OBJECT_SIGN_ENCRYPT);
	t->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	t->publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg =
		TPM2_ALG_SHA256;
}

/* --- TPM plumbing ----------------------------------------------------------
 */

static int
create_primary(struct tpm_backend *b, char *err, size_t errlen)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_PUBLIC tmpl;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TSS2_RC rc;

	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	template_primary(&tmpl);
	rc = Esys_CreatePrimary(b->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
				ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
				&outside, &pcrs, &b->primary, NULL, NULL, NULL,
				NULL);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_tss_err(
			err, errlen,
			"cannot create the storage primary key under the owner "
			"hierarchy (is the owner auth empty?)",
			rc);
		b->primary = ESYS_TR_NONE;
		return -1;
	}
	return 0;
}

/* Creates a key under the primary; the caller saves the blobs. */
int
tpm_create_key(struct tpm_backend *b, const TPM2B_PUBLIC *tmpl,
	       TPM2B_PUBLIC *pub, TPM2B_PRIVATE *priv, char *err, size_t errlen)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside;
	TPML_PCR_SELECTION pcrs;
	TPM2B_PRIVATE *opriv = NULL;
	TPM2B_PUBLIC *opub = NULL;
	TSS2_RC rc;

	memset(&sens, 0, sizeof(sens));
	memset(&outside, 0, sizeof(outside));
	memset(&pcrs, 0, sizeof(pcrs));
	do
		rc = Esys_Create(b->esys, b->primary, ESYS_TR_PASSWORD,
				 ESYS_TR_NONE, ESYS_TR_NONE, &sens, tmpl,
				 &outside, &pcrs, &opriv, &opub, NULL, NULL,
				 NULL);
	while (rc == TPM2_RC_OBJECT_MEMORY && tpm_loaded_evict(b));
	if (rc != TSS2_RC_SUCCESS) {
		tpm_tss_err(err, errlen, "TPM2_Create failed", rc);
		return -1;
	}
	*pub = *opub;
	*priv = *opriv;
	Esys_Free(opub);
	Esys_Free(opriv);
	return 0;
}

int
tpm_load_key(struct tpm_backend *b, const TPM2B_PUBLIC *pub,
	     const TPM2B_PRIVATE *priv, ESYS_TR *out, char *err, size_t errlen)
{
	TSS2_RC rc;

	do
		rc = Esys_Load(b->esys, b->primary, ESYS_TR_PASSWORD,
			       ESYS_TR_NONE, ESYS_TR_NONE, priv, pub, out);
	while (rc == TPM2_RC_OBJECT_MEMORY && tpm_loaded_evict(b));
	if (rc != TSS2_RC_SUCCESS) {
		*out = ESYS_TR_NONE;
		tpm_tss_err(err, errlen, "cannot load the key into the TPM",
			    rc);
		return -1;
	}
	return 0;
}

static int
read_clock(struct tpm_backend *b, TPMS_TIME_INFO *ti, char *err, size_t errlen)
{
	TPMS_TIME_INFO *t = NULL;
	TSS2_RC rc;

	rc = Esys_ReadClock(b->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
			    &t);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_tss_err(err, errlen, "cannot read the TPM clock", rc);
		return -1;
	}
	*ti = *t;
	Esys_Free(t);
	return 0;
}

/* --- SPKI -------------------------------------------------------------------
 */

static int
pubkey_fill(const TPM2B_PUBLIC *tp, struct stint_pubkey *pub, char *err,
	    size_t errlen)
{
	static const uint8_t e65537[] = {0x01, 0x00, 0x01};
	const TPMT_PUBLIC *p = &tp->publicArea;
	EVP_PKEY *pkey = NULL;
	uint8_t point[2 + 65];
	int r = -1;

	memset(pub, 0, sizeof(*pub));
	if (stint_tpm_pkey_from_public(p, &pkey) != 0 ||
	    stint_backend_spki_der(pkey, &pub->spki) != 0)
		goto fail;
	if (p->type == TPM2_ALG_ECC) {
		point[0] = 0x04; /* DER OCTET STRING of 65 bytes */
		point[1] = 65;
		point[2] = 0x04;
		memset(point + 3, 0, 64);
		memcpy(point + 3 + 32 - p->unique.ecc.x.size,
		       p->unique.ecc.x.buffer, p->unique.ecc.x.size);
		memcpy(point + 3 + 64 - p->unique.ecc.y.size,
		       p->unique.ecc.y.buffer, p->unique.ecc.y.size);
		if (stint_bytes_copy(&pub->ec_params, oid_p256,
				     sizeof(oid_p256)) ||
		    stint_bytes_copy(&pub->ec_point, point, sizeof(point)))
			goto fail;
	} else {
		if (stint_bytes_copy(&pub->modulus, p->unique.rsa.buffer,
				     p->unique.rsa.size) ||
		    stint_bytes_copy(&pub->exponent, e65537, sizeof(e65537)))
			goto fail;
	}
	r = 0;
	goto out;
fail:
	snprintf(err, errlen, "the TPM returned an unusable public key");
	stint_pubkey_free(pub);
out:
	EVP_PKEY_free(pkey);
	return r;
}

/* fixedTPM and fixedParent: the private part never leaves this TPM except
 * wrapped by its parent; sensitiveDataOrigin: the TPM made it. In PKCS#11
 * terms that is local, sensitive, never extractable; sign is the only
 * usage attribute set. */
static void
facts_fill(const TPM2B_PUBLIC *tp, struct stint_key_facts *facts)
{
	TPMA_OBJECT a = tp->publicArea.objectAttributes;

	memset(facts, 0, sizeof(*facts));
	facts->local = (a & TPMA_OBJECT_SENSITIVEDATAORIGIN) != 0;
	facts->never_extractable = facts->sensitive =
		(a & TPMA_OBJECT_FIXEDTPM) && (a & TPMA_OBJECT_FIXEDPARENT);
	facts->extractable = !facts->never_extractable;
	facts->sign = (a & TPMA_OBJECT_SIGN_ENCRYPT) != 0;
	facts->decrypt = (a & TPMA_OBJECT_DECRYPT) != 0;
}

/* --- operations
 * ----------------------------------------------------------------- */

static int
key_type_template(uint32_t key_type, TPMA_OBJECT attrs, TPM2B_PUBLIC *t)
{
	switch (key_type) {
	case STINT_KEY_EC_P256:
		template_base(t, TPM2_ALG_ECC, attrs);
		return 0;
	case STINT_KEY_RSA_2048:
		template_base(t, TPM2_ALG_RSA, attrs);
		return 0;
	default:
		return -1;
	}
}

static int
tpm_generate(struct stint_backend *base, uint32_t key_type, const char *key_id,
	     int64_t not_after, struct stint_pubkey *pub,
	     struct stint_key_facts *facts, char *err, size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	char path[PATH_MAX + 160];
	TPMS_TIME_INFO ti;
	struct tpm_keyfile f;
	struct stat st;
	time_t now;
	uint64_t ttl_ms;
	int r = -1;

	memset(pub, 0, sizeof(*pub));
	memset(facts, 0, sizeof(*facts));
	err[0] = '\0';
	memset(&f, 0, sizeof(f));
	/* Sign only, and only through the policy: no userWithAuth. */
	if (key_type_template(key_type,
			      TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
				      TPMA_OBJECT_SENSITIVEDATAORIGIN |
				      TPMA_OBJECT_SIGN_ENCRYPT,
			      &f.k.pub) != 0) {
		snprintf(err, errlen,
			 "key type %u is not available on the TPM backend "
			 "(use ec-p256 or rsa-2048)",
			 (unsigned)key_type);
		return -1;
	}
	if (!tpm_key_id_ok(key_id) ||
	    tpm_path_for(b, "", key_id, path, sizeof(path)) != 0) {
		snprintf(err, errlen,
			 "key id must be 1 to %d bytes of [A-Za-z0-9._-]",
			 KEY_ID_MAX);
		return -1;
	}
	if (stat(path, &st) == 0) {
		snprintf(err, errlen, "a TPM key with id '%s' already exists",
			 key_id);
		return -1;
	}
	now = time(NULL);
	if (not_after <= (int64_t)now) {
		snprintf(err, errlen, "the task deadline is already past");
		return -1;
	}
	ttl_ms = (uint64_t)(not_after - (int64_t)now) * 1000;

	pthread_mutex_lock(&b->lock);
	if (read_clock(b, &ti, err, errlen) != 0 ||
	    tpm_clock_observe(b, &ti, false, err, errlen) != 0)
		goto out;
	if (ti.clockInfo.clock > UINT64_MAX - ttl_ms) {
		snprintf(err, errlen, "TPM clock too close to wrapping");
		goto out;
	}
	f.kind = KIND_TASK;
	f.k.key_type = key_type;
	f.k.deadline = ti.clockInfo.clock + ttl_ms;
	f.k.nv_index = b->nv_index;
	f.k.clock = ti.clockInfo.clock;
	f.k.reset_count = ti.clockInfo.resetCount;
	f.k.restart_count = ti.clockInfo.restartCount;
	f.k.safe = ti.clockInfo.safe;
	f.k.not_after = not_after;
	if (tpm_nv_read_counter(b, &f.k.counter, err, errlen) != 0 ||
	    tpm_policy_digest(b, f.k.deadline, f.k.counter,
			      &f.k.pub.publicArea.authPolicy, err,
			      errlen) != 0 ||
	    tpm_create_key(b, &f.k.pub, &f.k.pub, &f.k.priv, err, errlen) != 0)
		goto out;
	if (tpm_keyfile_save(path, &f, err, errlen) != 0)
		goto out;
	if (pubkey_fill(&f.k.pub, pub, err, errlen) != 0) {
		(void)unlink(path);
		goto out;
	}
	facts_fill(&f.k.pub, facts);
	stint_debug(
		"tpm", "key %s: deadline %llu ms (clock %llu), counter %llu",
		key_id, (unsigned long long)f.k.deadline,
		(unsigned long long)f.k.clock, (unsigned long long)f.k.counter);
	r = 0;
out:
	pthread_mutex_unlock(&b->lock);
	OPENSSL_cleanse(&f.k.priv, sizeof(f.k.priv));
	return r;
}

/* Long-lived host keys (CA, statement signing): userWithAuth with an empty
 * auth, no deadline; only stintd can reach the TPM and the blobs. */
static int
tpm_host_key(struct stint_backend *base, const char *key_id, uint32_t key_type,
	     struct stint_pubkey *pub, struct stint_key_facts *facts,
	     bool *created, char *err, size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	char path[PATH_MAX + 160];
	struct tpm_keyfile f;
	int r = -1, lr;

	memset(pub, 0, sizeof(*pub));
	memset(facts, 0, sizeof(*facts));
	*created = false;
	if (!tpm_key_id_ok(key_id) ||
	    tpm_path_for(b, "host-", key_id, path, sizeof(path)) != 0) {
		snprintf(err, errlen, "bad host key id '%s'", key_id);
		return -1;
	}
	pthread_mutex_lock(&b->lock);
	lr = tpm_keyfile_load(path, &f, err, errlen);
	if (lr < 0)
		goto out;
	if (lr == 0 && (f.kind != KIND_HOST || f.k.key_type != key_type)) {
		snprintf(err, errlen, "%s holds another kind of key", path);
		goto out;
	}
	if (lr == 1) {
		memset(&f, 0, sizeof(f));
		f.kind = KIND_HOST;
		f.k.key_type = key_type;
		if (key_type_template(
			    key_type,
			    TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
				    TPMA_OBJECT_SENSITIVEDATAORIGIN |
				    TPMA_OBJECT_USERWITHAUTH |
				    TPMA_OBJECT_NODA | TPMA_OBJECT_SIGN_ENCRYPT,
			    &f.k.pub) != 0) {
			snprintf(err, errlen,
				 "key type %u is not available on the TPM "
				 "backend",
				 (unsigned)key_type);
			goto out;
		}
		if (tpm_create_key(b, &f.k.pub, &f.k.pub, &f.k.priv, err,
				   errlen) != 0 ||
		    tpm_keyfile_save(path, &f, err, errlen) != 0)
			goto out;
		*created = true;
	}
	if (pubkey_fill(&f.k.pub, pub, err, errlen) != 0)
		goto out;
	facts_fill(&f.k.pub, facts);
	r = 0;
out:
	pthread_mutex_unlock(&b->lock);
	return r;
}

static TPMI_ALG_HASH
hash_for_len(size_t n)
{
	switch (n) {
	case 20:
		return TPM2_ALG_SHA1;
	case 32:
		return TPM2_ALG_SHA256;
	case 48:
		return TPM2_ALG_SHA384;
	case 64:
		return TPM2_ALG_SHA512;
	default:
		return TPM2_ALG_NULL;
	}
}

static TPMI_ALG_HASH
hash_for_ck(CK_MECHANISM_TYPE m)
{
	switch (m) {
	case CKM_SHA_1:
		return TPM2_ALG_SHA1;
	case CKM_SHA256:
		return TPM2_ALG_SHA256;
	case CKM_SHA384:
		return TPM2_ALG_SHA384;
	case CKM_SHA512:
		return TPM2_ALG_SHA512;
	default:
		return TPM2_ALG_NULL;
	}
}

/* CKM_RSA_PKCS signs a DigestInfo; the TPM adds that itself, so split it
 * into hash and digest. The prefixes are fixed DER. */
static int
digest_info_split(const uint8_t *in, size_t len, TPMI_ALG_HASH *hash,
		  const uint8_t **digest, size_t *dlen)
{
	static const struct {
		TPMI_ALG_HASH alg;
		size_t dlen;
		uint8_t prefix[19];
		size_t plen;
	} di[] = {
		{TPM2_ALG_SHA1,
		 20,
		 {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02,
		  0x1a, 0x05, 0x00, 0x04, 0x14},
		 15},
		{TPM2_ALG_SHA256,
		 32,
		 {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
		 19},
		{TPM2_ALG_SHA384,
		 48,
		 {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
		 19},
		{TPM2_ALG_SHA512,
		 64,
		 {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
		 19},
	};
	size_t i;

	for (i = 0; i < sizeof(di) / sizeof(di[0]); i++) {
		if (len == di[i].plen + di[i].dlen &&
		    memcmp(in, di[i].prefix, di[i].plen) == 0) {
			*hash = di[i].alg;
			*digest = in + di[i].plen;
			*dlen = di[i].dlen;
			return 0;
		}
	}
	return -1;
}

/* Maps the raw mechanism and input onto a TPM scheme and digest. */
static int
sign_scheme(const struct tpm_keyfile *f,
	    const struct stint_backend_sign_req *req, TPMT_SIG_SCHEME *scheme,
	    TPM2B_DIGEST *digest, char *err, size_t errlen)
{
	bool ec = f->k.pub.publicArea.type == TPM2_ALG_ECC;
	const CK_RSA_PKCS_PSS_PARAMS *pss = req->pss;
	CK_MECHANISM_TYPE raw = req->raw;
	const uint8_t *d = req->in;
	size_t dlen = req->in_len;
	TPMI_ALG_HASH hash;

	if ((raw == CKM_ECDSA) != ec) {
		snprintf(err, errlen,
			 "key is not an %s key: mechanism does not fit",
			 raw == CKM_ECDSA ? "EC" : "RSA");
		return -1;
	}
	if ((raw == CKM_RSA_PKCS_PSS) != (pss != NULL)) {
		snprintf(err, errlen,
			 "PSS parameters go with CKM_RSA_PKCS_PSS "
			 "and only with it");
		return -1;
	}
	switch (raw) {
	case CKM_ECDSA:
		scheme->scheme = TPM2_ALG_ECDSA;
		hash = hash_for_len(req->in_len);
		break;
	case CKM_RSA_PKCS:
		scheme->scheme = TPM2_ALG_RSASSA;
		if (digest_info_split(req->in, req->in_len, &hash, &d, &dlen) !=
		    0) {
			snprintf(err, errlen,
				 "CKM_RSA_PKCS input is not a SHA-1/256/384/"
				 "512 DigestInfo: the TPM signs digests only");
			return -1;
		}
		break;
	case CKM_RSA_PKCS_PSS:
		scheme->scheme = TPM2_ALG_RSAPSS;
		hash = hash_for_ck(pss->hashAlg);
		if (hash != hash_for_len(req->in_len) ||
		    pss->sLen != (CK_ULONG)req->in_len) {
			snprintf(err, errlen,
				 "the TPM signs PSS with a salt as long as the "
				 "digest, over a SHA-1/256/384/512 digest");
			return -1;
		}
		break;
	default:
		snprintf(err, errlen,
			 "mechanism 0x%lx is not CKM_ECDSA, CKM_RSA_PKCS or "
			 "CKM_RSA_PKCS_PSS",
			 (unsigned long)raw);
		return -1;
	}
	if (hash == TPM2_ALG_NULL) {
		snprintf(err, errlen,
			 "input of %zu bytes is not a SHA-1/256/384/512 "
			 "digest",
			 req->in_len);
		return -1;
	}
	scheme->details.any.hashAlg = hash;
	digest->size = (UINT16)dlen;
	memcpy(digest->buffer, d, dlen);
	return 0;
}

int
tpm_sig_out(const TPMT_SIGNATURE *s, uint8_t *sig, size_t *sig_len, char *err,
	    size_t errlen)
{
	const TPM2B_ECC_PARAMETER *rr, *ss;

	if (s->sigAlg == TPM2_ALG_ECDSA) {
		rr = &s->signature.ecdsa.signatureR;
		ss = &s->signature.ecdsa.signatureS;
		if (*sig_len < 64 || rr->size > 32 || ss->size > 32) {
			snprintf(err, errlen, "signature buffer too small");
			return -1;
		}
		memset(sig, 0, 64);
		memcpy(sig + 32 - rr->size, rr->buffer, rr->size);
		memcpy(sig + 64 - ss->size, ss->buffer, ss->size);
		*sig_len = 64;
		return 0;
	}
	/* RSASSA and RSAPSS share the layout. */
	if (*sig_len < s->signature.rsassa.sig.size) {
		snprintf(err, errlen, "signature buffer too small");
		return -1;
	}
	memcpy(sig, s->signature.rsassa.sig.buffer,
	       s->signature.rsassa.sig.size);
	*sig_len = s->signature.rsassa.sig.size;
	return 0;
}

/* Finds the key file: a task key, else a host key. */
int
tpm_key_find(struct tpm_backend *b, const char *key_id, struct tpm_keyfile *f,
	     char *err, size_t errlen)
{
	char path[PATH_MAX + 160];
	int r;

	if (!tpm_key_id_ok(key_id) ||
	    tpm_path_for(b, "", key_id, path, sizeof(path)) != 0) {
		snprintf(err, errlen, "no TPM key '%s'", key_id);
		return -1;
	}
	r = tpm_keyfile_load(path, f, err, errlen);
	if (r == 1) {
		if (tpm_path_for(b, "host-", key_id, path, sizeof(path)) != 0)
			return -1;
		r = tpm_keyfile_load(path, f, err, errlen);
	}
	if (r == 1)
		snprintf(err, errlen,
			 "no TPM key '%s' (ended, or never made here)", key_id);
	return r == 0 ? 0 : -1;
}

/*
 * TPM2_Sign through SAPI (ESAPI's own SYS context), not Esys_Sign. With a
 * policy or HMAC session in the authorisation area, tpm2-tss 3.2.1's
 * ESAPI computes a cpHash, an HMAC, an rpHash and a second HMAC per
 * command, and makes a new OpenSSL library context (OSSL_LIB_CTX_new,
 * which loads a provider and builds a name map from scratch) for each of
 * them and for the nonce: ~20 million instructions per signature
 * (callgrind), about 80% of stintd's CPU per TPM signature. Those HMACs
 * protect nothing here: the session is neither bound nor salted and the
 * policy has no PolicyAuthValue, so the HMAC key is empty; the TPM then
 * accepts an empty HMAC (Part 1, "a NULL string HMAC is allowed"), and
 * an empty-key response HMAC is one anyone could forge. The policy, the
 * checks and the session are the TPM's as before: only the host-side
 * arithmetic is gone. ESAPI never uses this session in an authorisation
 * area again (the policy commands take it as a handle), so its record
 * of the session's nonceTPM going stale does not matter.
 */
static TSS2_RC
sign_sys(struct tpm_backend *b, ESYS_TR key, ESYS_TR session,
	 const TPM2B_DIGEST *digest, const TPMT_SIG_SCHEME *scheme,
	 TPMT_SIGNATURE *out)
{
	TPMT_TK_HASHCHECK ticket = {.tag = TPM2_ST_HASHCHECK,
				    .hierarchy = TPM2_RH_NULL};
	TSS2L_SYS_AUTH_COMMAND cmd = {.count = 1};
	TSS2L_SYS_AUTH_RESPONSE rsp = {.count = 0};
	TPMS_AUTH_COMMAND *a = &cmd.auths[0];
	TSS2_SYS_CONTEXT *sys = NULL;
	TPM2_HANDLE key_h;
	TSS2_RC rc;

	a->sessionHandle = TPM2_RS_PW; /* host keys: empty password */
	if ((rc = Esys_GetSysContext(b->esys, &sys)) != TSS2_RC_SUCCESS ||
	    (rc = Esys_TR_GetTpmHandle(b->esys, key, &key_h)) !=
		    TSS2_RC_SUCCESS)
		return rc;
	if (session != ESYS_TR_PASSWORD) {
		rc = Esys_TR_GetTpmHandle(b->esys, session, &a->sessionHandle);
		if (rc != TSS2_RC_SUCCESS)
			return rc;
		a->sessionAttributes = TPMA_SESSION_CONTINUESESSION;
		a->nonce.size = 32; /* the session's hash size, as ESAPI */
		if (RAND_bytes(a->nonce.buffer, a->nonce.size) != 1)
			return TSS2_ESYS_RC_GENERAL_FAILURE;
	}
	memset(out, 0, sizeof(*out));
	return Tss2_Sys_Sign(sys, key_h, &cmd, digest, scheme, &ticket, out,
			     &rsp);
}

static int
tpm_sign(struct stint_backend *base, const struct stint_backend_sign_req *req,
	 struct stint_backend_sig *sig, char *err, size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	const char *key_id = req->key_id;
	ESYS_TR key = ESYS_TR_NONE, session = ESYS_TR_NONE;
	enum tpm_policy_step step = STEP_NONE;
	TPMT_SIGNATURE s;
	bool cached = false;
	TPMT_SIG_SCHEME scheme;
	TPM2B_DIGEST digest;
	struct tpm_keyfile f;
	TSS2_RC rc;
	int r = -1;

	if (req->in_len == 0 || req->in_len > SIGN_IN_MAX) {
		snprintf(err, errlen, "input to sign must be 1 to %d bytes",
			 SIGN_IN_MAX);
		return -1;
	}
	if (tpm_key_find(b, key_id, &f, err, errlen) != 0)
		return -1;
	memset(&scheme, 0, sizeof(scheme));
	memset(&digest, 0, sizeof(digest));
	if (sign_scheme(&f, req, &scheme, &digest, err, errlen) != 0)
		return -1;

	pthread_mutex_lock(&b->lock);
	if (f.kind == KIND_TASK && f.k.reset_count < b->min_reset) {
		snprintf(err, errlen,
			 "key '%s' predates a TPM reset after which the TPM "
			 "clock was not safe: its hardware deadline cannot be "
			 "trusted; end the task and start a new one",
			 key_id);
		goto out;
	}
	if (tpm_loaded_get(b, key_id, &f, &key, &cached, err, errlen) != 0)
		goto out;
	if (f.kind == KIND_TASK) {
		if (tpm_psession_get(b, &session, err, errlen) != 0)
			goto out;
		rc = tpm_policy_run(b, session, f.k.deadline, f.k.counter,
				    &step);
		if (rc != TSS2_RC_SUCCESS) {
			tpm_psession_reset(b);
			if (rc != TPM2_RC_POLICY) { /* not a refusal */
				tpm_tss_err(err, errlen,
					    "a policy command failed", rc);
				goto out;
			}
			snprintf(err, errlen,
				 "the TPM refused key '%s': policy %s (%s)",
				 key_id,
				 step == STEP_CLOCK
					 ? "deadline passed in TPM clock"
					 : "kill switch used since the key was "
					   "made",
				 Tss2_RC_Decode(rc));
			goto out;
		}
	}
	rc = sign_sys(b, key, f.kind == KIND_TASK ? session : ESYS_TR_PASSWORD,
		      &digest, &scheme, &s);
	if (rc != TSS2_RC_SUCCESS) {
		if (f.kind == KIND_TASK)
			tpm_psession_reset(b);
		tpm_tss_err(err, errlen, "the TPM refused to sign", rc);
		goto out;
	}
	sig->len = sig->cap;
	r = tpm_sig_out(&s, sig->ptr, &sig->len, err, errlen);
out:
	if (!cached)
		tpm_flush(b, &key);
	else if (r != 0)
		tpm_loaded_drop(b, key_id); /* refused: likely to stay so */
	pthread_mutex_unlock(&b->lock);
	OPENSSL_cleanse(&f.k.priv, sizeof(f.k.priv));
	return r;
}

/*
 * The key exists in the TPM only while loaded (tpm_loaded.c); the blob
 * file is the only way to load it, so flushing it and removing the file
 * destroys the key. The encrypted private part is useless without this
 * TPM's storage primary, and the key's policy expires anyway.
 */
static int
tpm_destroy(struct stint_backend *base, const char *key_id, char *err,
	    size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	char path[PATH_MAX + 160];

	if (!tpm_key_id_ok(key_id) ||
	    tpm_path_for(b, "", key_id, path, sizeof(path)) != 0)
		return 0; /* no such file can exist */
	pthread_mutex_lock(&b->lock);
	tpm_loaded_drop(b, key_id);
	pthread_mutex_unlock(&b->lock);
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot delete %s: %s", path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

void
tpm_close(struct stint_backend *base)
{
	struct tpm_backend *b = (struct tpm_backend *)base;

	if (b == NULL)
		return;
	if (b->esys != NULL) {
		tpm_psession_close(b);
		tpm_loaded_flush_all(b);
		tpm_flush(b, &b->primary);
		if (b->nv != ESYS_TR_NONE)
			(void)Esys_TR_Close(b->esys, &b->nv);
		if (b->anv != ESYS_TR_NONE)
			(void)Esys_TR_Close(b->esys, &b->anv);
		Esys_Finalize(&b->esys);
	}
	if (b->tcti != NULL)
		Tss2_TctiLdr_Finalize(&b->tcti);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static const struct stint_backend_ops tpm_ops = {
	.name = "tpm",
	.caps = STINT_BACKEND_HW_DEADLINE | STINT_BACKEND_KILL_SWITCH,
	.evidence_kind = STINT_EVIDENCE_KIND_TPM,
	.generate = tpm_generate,
	.sign = tpm_sign,
	.destroy = tpm_destroy,
	.host_key = tpm_host_key,
	.evidence = tpm_evidence,
	.ak_spki = tpm_ak_spki,
	.ak_sign = tpm_ak_sign_der,
	.kill_switch = tpm_kill_switch,
	.audit_counter = tpm_audit_counter,
	.close = tpm_close,
};

/*
 * stintd is meant to be the TPM's only user. Without a resource manager
 * (swtpm, /dev/tpm0) the objects and sessions of a stintd that died stay
 * loaded and fill the TPM's few slots, so every later load fails with
 * TPM_RC_OBJECT_MEMORY: flush whatever is loaded before starting.
 */
static void
flush_stale(struct tpm_backend *b)
{
	static const TPM2_HANDLE firsts[] = {TPM2_TRANSIENT_FIRST,
					     TPM2_LOADED_SESSION_FIRST};
	TPMS_CAPABILITY_DATA *cap;
	TPMI_YES_NO more;
	ESYS_TR tr;
	TSS2_RC rc;
	size_t i, j, n = 0;

	for (i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++) {
		cap = NULL;
		rc = Esys_GetCapability(b->esys, ESYS_TR_NONE, ESYS_TR_NONE,
					ESYS_TR_NONE, TPM2_CAP_HANDLES,
					firsts[i], TPM2_MAX_CAP_HANDLES, &more,
					&cap);
		if (rc != TSS2_RC_SUCCESS || cap == NULL) {
			Esys_Free(cap);
			continue;
		}
		for (j = 0; j < cap->data.handles.count; j++) {
			if (Esys_TR_FromTPMPublic(
				    b->esys, cap->data.handles.handle[j],
				    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				    &tr) != TSS2_RC_SUCCESS)
				continue;
			if (Esys_FlushContext(b->esys, tr) == TSS2_RC_SUCCESS)
				n++;
			else
				(void)Esys_TR_Close(b->esys, &tr);
		}
		Esys_Free(cap);
	}
	if (n > 0)
		log_warn("TPM: flushed %zu object(s) and session(s) left "
			 "loaded by a previous run",
			 n);
}

int
stint_backend_tpm_open(const struct stint_config *cfg,
		       struct stint_backend **out, char *err, size_t errlen)
{
	struct tpm_backend *b;
	TPMS_TIME_INFO ti;
	TSS2_RC rc;
	int n, cs;

	*out = NULL;
	err[0] = '\0';
	/* ESAPI logs every TPM error to stderr; this backend reports the
	 * ones that matter itself. TSS2_LOG set by the user still wins. */
	(void)setenv("TSS2_LOG", "all+none", 0);
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	b->base.ops = &tpm_ops;
	b->primary = ESYS_TR_NONE;
	b->psession = ESYS_TR_NONE;
	for (n = 0; n < LOADED_MAX; n++)
		b->loaded[n].tr = ESYS_TR_NONE;
	b->loaded_cap = cfg->backend.tpm_loaded_keys < LOADED_MAX
				? cfg->backend.tpm_loaded_keys
				: LOADED_MAX;
	b->nv = ESYS_TR_NONE;
	b->nv_index = cfg->backend.kill_switch_index;
	b->anv = ESYS_TR_NONE;
	b->anv_index = cfg->backend.audit_counter_index;
	pthread_mutex_init(&b->lock, NULL);
	n = snprintf(b->dir, sizeof(b->dir), "%s/tpm", cfg->state_dir);
	if (n < 0 || (size_t)n >= sizeof(b->dir) - 160) {
		snprintf(err, errlen, "state_dir is too long");
		goto fail;
	}
	if (stint_dir_make(cfg->state_dir, 0700, err, errlen) != 0 ||
	    stint_dir_make(b->dir, 0700, err, errlen) != 0)
		goto fail;
	rc = Tss2_TctiLdr_Initialize(cfg->backend.tcti, &b->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		b->tcti = NULL;
		tpm_tss_err(err, errlen, "cannot open the TPM", rc);
		snprintf(err + strlen(err), errlen - strlen(err),
			 " with tcti '%s': check [backend] tcti",
			 cfg->backend.tcti);
		goto fail;
	}
	rc = Esys_Initialize(&b->esys, b->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		b->esys = NULL;
		tpm_tss_err(err, errlen, "cannot initialise ESAPI", rc);
		goto fail;
	}
	rc = Esys_Startup(b->esys, TPM2_SU_CLEAR);
	if (rc != TSS2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE) {
		tpm_tss_err(err, errlen, "TPM2_Startup failed", rc);
		goto fail;
	}
	flush_stale(b);
	if (create_primary(b, err, errlen) != 0 ||
	    tpm_ak_setup(b, err, errlen) != 0 ||
	    tpm_nv_setup(b, err, errlen) != 0)
		goto fail;
	cs = tpm_clock_state_load(b);
	if (cs < 0) {
		snprintf(err, errlen, "%s/clock is unreadable", b->dir);
		goto fail;
	}
	if (read_clock(b, &ti, err, errlen) != 0 ||
	    tpm_clock_observe(b, &ti, cs == 1, err, errlen) != 0)
		goto fail;
	if (!ti.clockInfo.safe)
		log_warn("TPM: clock not safe (it may have fallen back after "
			 "an unorderly reset)");
	tpm_ek_cert_record(b);
	*out = &b->base;
	return 0;
fail:
	tpm_close(&b->base);
	return -1;
}
