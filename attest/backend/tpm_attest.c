/*
 * TPM backend: the NV counters (the kill switch's, the audit anchor's),
 * the host attestation key and EK certificate, TPM2_Certify evidence,
 * checkpoint signing, and the optional backend ops built on them. See
 * tpm_int.h.
 */

#include "attest/backend/tpm_int.h"

/* One NV counter: where its ESYS_TR lives, its index, the file in
 * <state_dir>/tpm holding its auth, and its name for messages. */
struct nv_counter {
	ESYS_TR *tr;
	uint32_t index;
	const char *auth_file;
	const char *what;
	const char *config_key;
};

static struct nv_counter
nv_kill(struct tpm_backend *b)
{
	return (struct nv_counter){&b->nv, b->nv_index, "nv.auth",
				   "kill-switch counter", "kill_switch_index"};
}

static struct nv_counter
nv_audit(struct tpm_backend *b)
{
	return (struct nv_counter){&b->anv, b->anv_index, "audit-nv.auth",
				   "audit counter", "audit_counter_index"};
}

static void
nv_err(char *err, size_t errlen, const char *what, const struct nv_counter *c,
       TSS2_RC rc)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "%s %s", what, c->what);
	tpm_tss_err(err, errlen, msg, rc);
}

/* Refreshes the ESYS_TR of a counter from the TPM, so its Name (which
 * includes TPMA_NV_WRITTEN) is the TPM's. */
static int
nv_refresh(struct tpm_backend *b, const struct nv_counter *c, char *err,
	   size_t errlen)
{
	TSS2_RC rc;

	if (*c->tr != ESYS_TR_NONE)
		(void)Esys_TR_Close(b->esys, c->tr);
	*c->tr = ESYS_TR_NONE;
	rc = Esys_TR_FromTPMPublic(b->esys, c->index, ESYS_TR_NONE,
				   ESYS_TR_NONE, ESYS_TR_NONE, c->tr);
	if (rc != TSS2_RC_SUCCESS) {
		*c->tr = ESYS_TR_NONE;
		nv_err(err, errlen, "cannot find the NV index of the", c, rc);
		return -1;
	}
	return 0;
}

static int
nv_read(struct tpm_backend *b, const struct nv_counter *c, uint64_t *value,
	char *err, size_t errlen)
{
	TPM2B_MAX_NV_BUFFER *data = NULL;
	size_t off = 0;
	TSS2_RC rc;
	int r = -1;

	rc = Esys_NV_Read(b->esys, ESYS_TR_RH_OWNER, *c->tr, ESYS_TR_PASSWORD,
			  ESYS_TR_NONE, ESYS_TR_NONE, 8, 0, &data);
	if (rc != TSS2_RC_SUCCESS) {
		nv_err(err, errlen, "cannot read the", c, rc);
		return -1;
	}
	if (data->size == 8 &&
	    Tss2_MU_UINT64_Unmarshal(data->buffer, 8, &off, value) ==
		    TSS2_RC_SUCCESS)
		r = 0;
	else
		snprintf(err, errlen, "the %s is not 8 bytes", c->what);
	Esys_Free(data);
	return r;
}

int
tpm_nv_read_counter(struct tpm_backend *b, uint64_t *value, char *err,
		    size_t errlen)
{
	struct nv_counter c = nv_kill(b);

	return nv_read(b, &c, value, err, errlen);
}

int
tpm_nv_name(struct tpm_backend *b, TPM2B_NAME *name, char *err, size_t errlen)
{
	TPM2B_NAME *n = NULL;
	TSS2_RC rc;

	rc = Esys_TR_GetName(b->esys, b->nv, &n);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_tss_err(err, errlen, "cannot get the NV index Name", rc);
		return -1;
	}
	*name = *n;
	Esys_Free(n);
	return 0;
}

static int
nv_auth_read(struct tpm_backend *b, const struct nv_counter *c,
	     TPM2B_AUTH *auth, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	char *buf;
	size_t len;
	int r;

	snprintf(path, sizeof(path), "%s/%s", b->dir, c->auth_file);
	r = stint_file_read(path, NV_AUTH_LEN, &buf, &len, err, errlen);
	if (r == 1)
		snprintf(err, errlen, "%s is missing", path);
	if (r != 0)
		return -1;
	if (len != NV_AUTH_LEN) {
		OPENSSL_cleanse(buf, len);
		free(buf);
		snprintf(err, errlen, "%s is not %d bytes", path, NV_AUTH_LEN);
		return -1;
	}
	auth->size = NV_AUTH_LEN;
	memcpy(auth->buffer, buf, NV_AUTH_LEN);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return 0;
}

/* Increments a counter with the index's own auth, then forgets it. */
static int
nv_increment(struct tpm_backend *b, const struct nv_counter *c, char *err,
	     size_t errlen)
{
	TPM2B_AUTH auth, empty;
	TSS2_RC rc;

	memset(&auth, 0, sizeof(auth));
	memset(&empty, 0, sizeof(empty));
	if (nv_auth_read(b, c, &auth, err, errlen) != 0)
		return -1;
	rc = Esys_TR_SetAuth(b->esys, *c->tr, &auth);
	if (rc == TSS2_RC_SUCCESS)
		rc = Esys_NV_Increment(b->esys, *c->tr, *c->tr,
				       ESYS_TR_PASSWORD, ESYS_TR_NONE,
				       ESYS_TR_NONE);
	(void)Esys_TR_SetAuth(b->esys, *c->tr, &empty);
	OPENSSL_cleanse(&auth, sizeof(auth));
	if (rc != TSS2_RC_SUCCESS) {
		nv_err(err, errlen, "cannot increment the", c, rc);
		return -1;
	}
	return nv_refresh(b, c, err, errlen);
}

/*
 * A counter: TPM_NT_COUNTER, written only with its own auth (random, in
 * <state_dir>/tpm/<auth_file>), read with owner authorisation (empty on
 * hosts where stintd can create keys at all), NO_DA so nobody can lock
 * stintd out by guessing. Defined on first start, and incremented once
 * then when write (a counter reads only once written); the audit counter
 * is first written by the first checkpoint, so "never written" is a fact
 * the TPM keeps, not the disk.
 */
static int
nv_setup(struct tpm_backend *b, const struct nv_counter *c, bool write,
	 char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	TPM2B_NV_PUBLIC pubinfo;
	TPM2B_AUTH auth;
	struct stat st;
	bool have_auth, have_index;
	TSS2_RC rc;
	int r = -1;

	snprintf(path, sizeof(path), "%s/%s", b->dir, c->auth_file);
	have_auth = stat(path, &st) == 0;
	rc = Esys_TR_FromTPMPublic(b->esys, c->index, ESYS_TR_NONE,
				   ESYS_TR_NONE, ESYS_TR_NONE, c->tr);
	have_index = rc == TSS2_RC_SUCCESS;
	if (!have_index)
		*c->tr = ESYS_TR_NONE;
	if (have_index && have_auth)
		return 0;
	if (have_index) {
		snprintf(err, errlen,
			 "NV index 0x%08x exists but %s is missing: another "
			 "install owns it; set [backend] %s to a free index, "
			 "or remove the old one (tpm2_nvundefine 0x%08x) if it "
			 "is yours",
			 c->index, path, c->config_key, c->index);
		return -1;
	}
	if (have_auth) {
		/* Never silently replace: keys bound to the old counter
		 * cannot be used anyway, and the operator should know. */
		snprintf(err, errlen,
			 "the %s's NV index 0x%08x is gone from the TPM but %s "
			 "exists (TPM cleared?): remove %s and the task key "
			 "files in %s to start afresh",
			 c->what, c->index, path, path, b->dir);
		return -1;
	}

	memset(&auth, 0, sizeof(auth));
	auth.size = NV_AUTH_LEN;
	if (RAND_bytes(auth.buffer, NV_AUTH_LEN) != 1) {
		snprintf(err, errlen, "RAND_bytes failed");
		return -1;
	}
	memset(&pubinfo, 0, sizeof(pubinfo));
	pubinfo.nvPublic.nvIndex = c->index;
	pubinfo.nvPublic.nameAlg = TPM2_ALG_SHA256;
	pubinfo.nvPublic.attributes =
		(TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_AUTHWRITE |
		TPMA_NV_AUTHREAD | TPMA_NV_OWNERREAD | TPMA_NV_NO_DA;
	pubinfo.nvPublic.dataSize = 8;
	/* The auth goes to disk first: a counter whose auth is lost could
	 * never be incremented again. */
	if (tpm_write_file(path, auth.buffer, NV_AUTH_LEN, err, errlen) != 0)
		goto out;
	rc = Esys_NV_DefineSpace(b->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
				 ESYS_TR_NONE, ESYS_TR_NONE, &auth, &pubinfo,
				 c->tr);
	if (rc != TSS2_RC_SUCCESS) {
		*c->tr = ESYS_TR_NONE;
		(void)unlink(path);
		nv_err(err, errlen, "cannot define the NV index of the", c, rc);
		goto out;
	}
	if (write && nv_increment(b, c, err, errlen) != 0)
		goto out;
	log_info("TPM: %s defined at NV index 0x%08x", c->what, c->index);
	r = 0;
out:
	OPENSSL_cleanse(&auth, sizeof(auth));
	return r;
}

/* The kill-switch counter and the audit anchor's counter. */
int
tpm_nv_setup(struct tpm_backend *b, char *err, size_t errlen)
{
	struct nv_counter k = nv_kill(b), a = nv_audit(b);

	if (nv_setup(b, &k, true, err, errlen) != 0)
		return -1;
	return nv_setup(b, &a, false, err, errlen);
}

/* Whether the counter was ever written (TPMA_NV_WRITTEN). */
static int
nv_written(struct tpm_backend *b, const struct nv_counter *c, bool *written,
	   char *err, size_t errlen)
{
	TPM2B_NV_PUBLIC *pub = NULL;
	TSS2_RC rc;

	rc = Esys_NV_ReadPublic(b->esys, *c->tr, ESYS_TR_NONE, ESYS_TR_NONE,
				ESYS_TR_NONE, &pub, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		nv_err(err, errlen, "cannot read the public area of the", c,
		       rc);
		return -1;
	}
	*written = (pub->nvPublic.attributes & TPMA_NV_WRITTEN) != 0;
	Esys_Free(pub);
	return 0;
}

/*
 * The audit anchor (backend op audit_counter): reads the audit counter,
 * after incrementing it when advance; 0 while it was never written.
 */
int
tpm_audit_counter(struct stint_backend *base, bool advance, uint64_t *value,
		  char *err, size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	struct nv_counter c = nv_audit(b);
	bool written = true;
	int r = -1;

	*value = 0;
	pthread_mutex_lock(&b->lock);
	if (advance)
		r = nv_increment(b, &c, err, errlen);
	else
		r = nv_written(b, &c, &written, err, errlen);
	if (r == 0 && written)
		r = nv_read(b, &c, value, err, errlen);
	pthread_mutex_unlock(&b->lock);
	return r;
}

/* --- attestation key --------------------------------------------------------
 */

int
tpm_ak_setup(struct tpm_backend *b, char *err, size_t errlen)
{
	char path[PATH_MAX + 16];
	struct tpm_keyfile f;
	TPM2B_PUBLIC tmpl;
	char *pem = NULL;
	int r;

	snprintf(path, sizeof(path), "%s/ak.blob", b->dir);
	r = tpm_keyfile_load(path, &f, err, errlen);
	if (r < 0)
		return -1;
	if (r == 1) {
		memset(&f, 0, sizeof(f));
		f.kind = KIND_HOST;
		f.k.key_type = STINT_KEY_EC_P256;
		tpm_template_ak(&tmpl);
		if (tpm_create_key(b, &tmpl, &f.k.pub, &f.k.priv, err,
				   errlen) != 0 ||
		    tpm_keyfile_save(path, &f, err, errlen) != 0)
			return -1;
		log_info("TPM: host attestation key created");
	}
	if (stint_backend_tpm_ak_pem(&b->base, &pem, err, errlen) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/ak.pub.pem", b->dir);
	r = tpm_write_file(path, (const uint8_t *)pem, strlen(pem), err,
			   errlen);
	free(pem);
	return r;
}

/* Reads the EK certificate from its TCG NV index, when there is one. */
void
tpm_ek_cert_record(struct tpm_backend *b)
{
	static const uint32_t idx[] = {EK_CERT_ECC, EK_CERT_RSA};
	char path[PATH_MAX + 16], err[256];
	TPM2B_NV_PUBLIC *pubinfo = NULL;
	TPM2B_MAX_NV_BUFFER *chunk = NULL;
	uint8_t cert[EK_CERT_MAX];
	ESYS_TR tr = ESYS_TR_NONE;
	uint16_t size, off, n;
	size_t i;
	TSS2_RC rc;

	for (i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
		rc = Esys_TR_FromTPMPublic(b->esys, idx[i], ESYS_TR_NONE,
					   ESYS_TR_NONE, ESYS_TR_NONE, &tr);
		if (rc != TSS2_RC_SUCCESS)
			continue;
		rc = Esys_NV_ReadPublic(b->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE,
					ESYS_TR_NONE, &pubinfo, NULL);
		if (rc != TSS2_RC_SUCCESS)
			goto next;
		size = pubinfo->nvPublic.dataSize;
		Esys_Free(pubinfo);
		pubinfo = NULL;
		if (size == 0 || size > sizeof(cert))
			goto next;
		for (off = 0; off < size; off += n) {
			n = size - off > 512 ? 512 : size - off;
			rc = Esys_NV_Read(b->esys, tr, tr, ESYS_TR_PASSWORD,
					  ESYS_TR_NONE, ESYS_TR_NONE, n, off,
					  &chunk);
			if (rc != TSS2_RC_SUCCESS || chunk->size != n)
				break;
			memcpy(cert + off, chunk->buffer, n);
			Esys_Free(chunk);
			chunk = NULL;
		}
		Esys_Free(chunk);
		chunk = NULL;
		if (off < size)
			goto next;
		snprintf(path, sizeof(path), "%s/ek.cert", b->dir);
		if (tpm_write_file(path, cert, size, err, sizeof(err)) == 0) {
			b->have_ek_cert = true;
			log_info("TPM: EK certificate recorded from NV 0x%08x",
				 idx[i]);
		}
		(void)Esys_TR_Close(b->esys, &tr);
		return;
	next:
		(void)Esys_TR_Close(b->esys, &tr);
		tr = ESYS_TR_NONE;
	}
}

int
stint_backend_tpm_kill_switch(struct stint_backend *base, char *err,
			      size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	uint64_t before = 0, after = 0;
	struct nv_counter kc;
	int r = -1;

	if (base == NULL || base->ops->close != tpm_close) {
		snprintf(err, errlen, "the kill switch needs the TPM backend");
		return -1;
	}
	pthread_mutex_lock(&b->lock);
	kc = nv_kill(b);
	if (tpm_nv_read_counter(b, &before, err, errlen) != 0 ||
	    nv_increment(b, &kc, err, errlen) != 0 ||
	    tpm_nv_read_counter(b, &after, err, errlen) != 0)
		goto out;
	if (after <= before) {
		snprintf(err, errlen, "the kill-switch counter did not move");
		goto out;
	}
	tpm_loaded_flush_all(b); /* the TPM refuses them all from now on */
	log_warn("TPM: kill switch used: counter %llu -> %llu, every task key "
		 "made before is refused by the TPM",
		 (unsigned long long)before, (unsigned long long)after);
	r = 0;
out:
	pthread_mutex_unlock(&b->lock);
	return r;
}

int
stint_backend_tpm_counter(struct stint_backend *base, uint64_t *value,
			  char *err, size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	int r;

	if (base == NULL || base->ops->close != tpm_close) {
		snprintf(err, errlen, "the kill switch needs the TPM backend");
		return -1;
	}
	pthread_mutex_lock(&b->lock);
	r = tpm_nv_read_counter(b, value, err, errlen);
	pthread_mutex_unlock(&b->lock);
	return r;
}

int
stint_backend_tpm_ak_pem(struct stint_backend *base, char **pem, char *err,
			 size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	char path[PATH_MAX + 16];
	EVP_PKEY *pkey = NULL;
	struct tpm_keyfile f;
	BIO *bio = NULL;
	char *data;
	long n;
	int r = -1;

	*pem = NULL;
	snprintf(path, sizeof(path), "%s/ak.blob", b->dir);
	if (tpm_keyfile_load(path, &f, err, errlen) != 0)
		return -1;
	if (stint_tpm_pkey_from_public(&f.k.pub.publicArea, &pkey) != 0 ||
	    (bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, pkey) != 1 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0 ||
	    (*pem = malloc((size_t)n + 1)) == NULL) {
		snprintf(err, errlen, "cannot encode the AK public key");
		goto out;
	}
	memcpy(*pem, data, (size_t)n);
	(*pem)[n] = '\0';
	r = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return r;
}

static int
marshal_bytes(struct stint_bytes *out, const void *src,
	      TSS2_RC (*fn)(const void *, uint8_t *, size_t, size_t *))
{
	uint8_t buf[4096];
	size_t off = 0;

	if (fn(src, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
		return -1;
	return stint_bytes_copy(out, buf, off);
}

static TSS2_RC
mu_public(const void *p, uint8_t *b, size_t n, size_t *o)
{
	return Tss2_MU_TPM2B_PUBLIC_Marshal(p, b, n, o);
}

static TSS2_RC
mu_nvpublic(const void *p, uint8_t *b, size_t n, size_t *o)
{
	return Tss2_MU_TPM2B_NV_PUBLIC_Marshal(p, b, n, o);
}

static TSS2_RC
mu_signature(const void *p, uint8_t *b, size_t n, size_t *o)
{
	return Tss2_MU_TPMT_SIGNATURE_Marshal(p, b, n, o);
}

int
stint_backend_tpm_evidence(struct stint_backend *base,
			   const struct stint_backend_evidence_req *req,
			   struct stint_bytes *doc, char *err, size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	const char *key_id = req->key_id, *task_id = req->task_id;
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_ECDSA};
	ESYS_TR key = ESYS_TR_NONE, ak = ESYS_TR_NONE;
	char path[PATH_MAX + 16];
	struct stint_tpm_evidence ev;
	TPM2B_NV_PUBLIC *nvpub = NULL;
	TPM2B_ATTEST *attest = NULL;
	TPMT_SIGNATURE *sig = NULL;
	struct tpm_keyfile f, akf;
	TPM2B_DATA qual;
	EVP_MD_CTX *md = NULL;
	unsigned int qlen = 0;
	char *ek = NULL;
	size_t ek_len = 0;
	TSS2_RC rc;
	int r = -1;

	memset(&ev, 0, sizeof(ev));
	memset(doc, 0, sizeof(*doc));
	if (base == NULL || base->ops->close != tpm_close) {
		snprintf(err, errlen, "TPM evidence needs the TPM backend");
		return -1;
	}
	if (tpm_key_find(b, key_id, &f, err, errlen) != 0)
		return -1;
	if (f.kind != KIND_TASK) {
		snprintf(err, errlen, "'%s' is not a task key", key_id);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/ak.blob", b->dir);
	if (tpm_keyfile_load(path, &akf, err, errlen) != 0)
		return -1;
	memset(&qual, 0, sizeof(qual));
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, req->nonce, req->nonce_len) != 1 ||
	    EVP_DigestUpdate(md, task_id, strlen(task_id)) != 1 ||
	    EVP_DigestFinal_ex(md, qual.buffer, &qlen) != 1) {
		EVP_MD_CTX_free(md);
		snprintf(err, errlen, "SHA-256 failed");
		return -1;
	}
	EVP_MD_CTX_free(md);
	qual.size = (UINT16)qlen;
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;

	pthread_mutex_lock(&b->lock);
	if (tpm_load_key(b, &f.k.pub, &f.k.priv, &key, err, errlen) != 0 ||
	    tpm_load_key(b, &akf.k.pub, &akf.k.priv, &ak, err, errlen) != 0)
		goto out;
	/* The task key's ADMIN role: its (empty) auth value, since the key
	 * is not adminWithPolicy. Certify reveals nothing secret. */
	rc = Esys_Certify(b->esys, key, ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
			  ESYS_TR_NONE, &qual, &scheme, &attest, &sig);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_tss_err(err, errlen, "TPM2_Certify failed", rc);
		goto out;
	}
	rc = Esys_NV_ReadPublic(b->esys, b->nv, ESYS_TR_NONE, ESYS_TR_NONE,
				ESYS_TR_NONE, &nvpub, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_tss_err(err, errlen, "cannot read the NV index public area",
			    rc);
		goto out;
	}
	tpm_flush(b, &key);
	tpm_flush(b, &ak);
	pthread_mutex_unlock(&b->lock);

	if (b->have_ek_cert) {
		snprintf(path, sizeof(path), "%s/ek.cert", b->dir);
		if (stint_file_read(path, EK_CERT_MAX, &ek, &ek_len, err,
				    errlen) < 0)
			goto done;
	}
	ev.deadline = f.k.deadline;
	ev.counter = f.k.counter;
	ev.not_after = f.k.not_after;
	if (stint_bytes_copy(&ev.attest, attest->attestationData,
			     attest->size) ||
	    marshal_bytes(&ev.signature, sig, mu_signature) ||
	    marshal_bytes(&ev.key_public, &f.k.pub, mu_public) ||
	    marshal_bytes(&ev.ak_public, &akf.k.pub, mu_public) ||
	    marshal_bytes(&ev.nv_public, nvpub, mu_nvpublic) ||
	    stint_bytes_copy(&ev.ek_cert, (const uint8_t *)ek, ek_len) ||
	    stint_tpm_evidence_encode(&ev, doc) != 0) {
		snprintf(err, errlen, "cannot encode the TPM evidence");
		goto done;
	}
	r = 0;
	goto done;
out:
	tpm_flush(b, &key);
	tpm_flush(b, &ak);
	pthread_mutex_unlock(&b->lock);
done:
	free(ek);
	stint_tpm_evidence_free(&ev);
	Esys_Free(attest);
	Esys_Free(sig);
	Esys_Free(nvpub);
	OPENSSL_cleanse(&f.k.priv, sizeof(f.k.priv));
	OPENSSL_cleanse(&akf.k.priv, sizeof(akf.k.priv));
	return r;
}

/* --- the optional ops: evidence, attestation key, kill switch ----------- */

/* TPM2_Certify by the host AK, in the evidence envelope (evidence.h). */
int
tpm_evidence(struct stint_backend *base,
	     const struct stint_backend_evidence_req *req,
	     struct stint_bytes *doc, char *err, size_t errlen)
{
	struct stint_bytes tdoc = {NULL, 0};
	int r = 0;

	doc->ptr = NULL;
	doc->len = 0;
	if (req->nonce_len != STINT_NONCE_LEN) {
		snprintf(err, errlen, "the nonce must be %d bytes",
			 STINT_NONCE_LEN);
		return -1;
	}
	if (stint_backend_tpm_evidence(base, req, &tdoc, err, errlen) != 0)
		return -1;
	if (stint_evidence_tpm_wrap(tdoc.ptr, tdoc.len, req->nonce,
				    req->task_id, &doc->ptr, &doc->len) != 0) {
		snprintf(err, errlen, "cannot encode the TPM evidence");
		r = -1;
	}
	stint_bytes_clear(&tdoc);
	return r;
}

/* The AK's SPKI DER, from its public area in ak.blob. */
int
tpm_ak_spki(struct stint_backend *base, struct stint_bytes *spki, char *err,
	    size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	char path[PATH_MAX + 16];
	EVP_PKEY *pkey = NULL;
	struct tpm_keyfile f;
	int r = -1;

	spki->ptr = NULL;
	spki->len = 0;
	snprintf(path, sizeof(path), "%s/ak.blob", b->dir);
	if (tpm_keyfile_load(path, &f, err, errlen) != 0)
		return -1;
	OPENSSL_cleanse(&f.k.priv, sizeof(f.k.priv));
	if (stint_tpm_pkey_from_public(&f.k.pub.publicArea, &pkey) == 0 &&
	    stint_backend_spki_der(pkey, spki) == 0)
		r = 0;
	else
		snprintf(err, errlen, "cannot encode the TPM AK");
	EVP_PKEY_free(pkey);
	return r;
}

int
tpm_ak_sign_der(struct stint_backend *base, const uint8_t *data, size_t len,
		uint8_t *sig, size_t *sig_len, char *err, size_t errlen)
{
	uint8_t rs[128];
	size_t rs_len = sizeof(rs);

	if (stint_backend_tpm_ak_sign(base, data, len, rs, &rs_len, err,
				      errlen) != 0)
		return -1;
	if (stint_backend_ecdsa_der(rs, rs_len, sig, sig_len) != 0) {
		snprintf(err, errlen, "cannot encode the signature");
		return -1;
	}
	return 0;
}

int
tpm_kill_switch(struct stint_backend *base, uint64_t *counter, char *err,
		size_t errlen)
{
	if (stint_backend_tpm_kill_switch(base, err, errlen) != 0)
		return -1;
	return stint_backend_tpm_counter(base, counter, err, errlen);
}

/*
 * Signs data with the restricted host AK (audit checkpoints): the TPM
 * hashes the data itself (TPM2_Hash), and its ticket lets the restricted
 * key sign that digest; data starting with TPM_GENERATED_VALUE is refused
 * by TPM2_Hash, so nothing signed here can pass for a TPM attestation.
 * sig gets r || s (64 bytes).
 */
int
stint_backend_tpm_ak_sign(struct stint_backend *base, const uint8_t *data,
			  size_t len, uint8_t *sig, size_t *sig_len, char *err,
			  size_t errlen)
{
	struct tpm_backend *b = (struct tpm_backend *)base;
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_ECDSA};
	TPMT_TK_HASHCHECK *ticket = NULL;
	TPMT_SIGNATURE *s = NULL;
	TPM2B_DIGEST *digest = NULL;
	TPM2B_MAX_BUFFER buf;
	ESYS_TR ak = ESYS_TR_NONE;
	char path[PATH_MAX + 16];
	struct tpm_keyfile akf;
	TSS2_RC rc;
	int r = -1;

	if (base == NULL || base->ops->close != tpm_close) {
		snprintf(err, errlen, "needs the TPM backend");
		return -1;
	}
	if (len == 0 || len > sizeof(buf.buffer)) {
		snprintf(err, errlen, "data to sign must be 1 to %zu bytes",
			 sizeof(buf.buffer));
		return -1;
	}
	memcpy(buf.buffer, data, len);
	buf.size = (UINT16)len;
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	snprintf(path, sizeof(path), "%s/ak.blob", b->dir);
	if (tpm_keyfile_load(path, &akf, err, errlen) != 0)
		return -1;
	pthread_mutex_lock(&b->lock);
	rc = Esys_Hash(b->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &buf,
		       TPM2_ALG_SHA256, ESYS_TR_RH_OWNER, &digest, &ticket);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_tss_err(err, errlen, "TPM2_Hash failed", rc);
		goto out;
	}
	if (tpm_load_key(b, &akf.k.pub, &akf.k.priv, &ak, err, errlen) != 0)
		goto out;
	rc = Esys_Sign(b->esys, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		       ESYS_TR_NONE, digest, &scheme, ticket, &s);
	if (rc != TSS2_RC_SUCCESS) {
		tpm_tss_err(err, errlen, "the TPM refused to sign with the AK",
			    rc);
		goto out;
	}
	r = tpm_sig_out(s, sig, sig_len, err, errlen);
out:
	Esys_Free(s);
	Esys_Free(digest);
	Esys_Free(ticket);
	tpm_flush(b, &ak);
	pthread_mutex_unlock(&b->lock);
	OPENSSL_cleanse(&akf.k.priv, sizeof(akf.k.priv));
	return r;
}
