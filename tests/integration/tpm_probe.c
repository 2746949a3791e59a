/*
 * tpm_probe: drives the TPM backend for tests/integration/tpm.sh.
 *
 * Raw commands talk to the TPM with their own ESAPI code, bypassing stintd
 * and the backend entirely, as root on the host could:
 *   raw-sign TCTI KEYFILE    load the stored blob under a freshly made
 *                            storage primary, satisfy the policy in a policy
 *                            session, sign, verify the signature.
 *                            Exit 0 signed, 2 the TPM refused the policy.
 *   clock-forward TCTI MS    TPM2_ClockSet (owner) MS milliseconds ahead.
 *   handles TCTI             prints "transient N sessions M".
 * Backend commands open the backend library with a stint.conf:
 *   gen CONF KEYID TTL_S | sign CONF KEYID | destroy CONF KEYID |
 *   kill CONF | evidence CONF KEYID | stress CONF NSIGN NCYCLE |
 *   loaded CONF TCTI NKEYS   keys kept loaded (tests/integration/tpm-loaded.sh)
 * Benchmark commands (tests/bench/bench_tpm.sh), each printing
 * "n=N median_us=M p99_us=P mean_us=A" for N signatures:
 *   bench TCTI KEYFILE N     the raw ESAPI loop: Load, policy session,
 *                            PolicyCounterTimer, PolicyNV, Sign, flushes.
 *   bench-p11 MODULE TOKEN LABEL N   C_SignInit+C_Sign through a module;
 *                            with TPM_PROBE_P11_PIN set, C_Login as user
 *                            first (tpm2-pkcs11 needs it, Stint does not).
 */

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "attest/backend.h"
#include "attest/backend_tpm.h"
#include "attest/config.h"
#include "attest/tpm_evidence.h"

static int
fail(const char *what, TSS2_RC rc)
{
	fprintf(stderr, "tpm_probe: %s: %s\n", what, Tss2_RC_Decode(rc));
	return 1;
}

/* --- raw ESAPI ----------------------------------------------------------- */

static int
raw_open(const char *tcti_conf, TSS2_TCTI_CONTEXT **tcti, ESYS_CONTEXT **esys)
{
	TSS2_RC rc;

	if ((rc = Tss2_TctiLdr_Initialize(tcti_conf, tcti)) != 0)
		return fail("tcti", rc);
	if ((rc = Esys_Initialize(esys, *tcti, NULL)) != 0)
		return fail("Esys_Initialize", rc);
	return 0;
}

static void
raw_close(TSS2_TCTI_CONTEXT **tcti, ESYS_CONTEXT **esys)
{
	if (*esys != NULL)
		Esys_Finalize(esys);
	if (*tcti != NULL)
		Tss2_TctiLdr_Finalize(tcti);
}

/* The standard ECC storage primary, written out here on purpose rather
 * than shared with the backend. */
static TSS2_RC
raw_primary(ESYS_CONTEXT *esys, ESYS_TR *primary)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION pcrs = {0};
	TPM2B_PUBLIC t = {0};

	t.publicArea.type = TPM2_ALG_ECC;
	t.publicArea.nameAlg = TPM2_ALG_SHA256;
	t.publicArea.objectAttributes =
		TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
		TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
		TPMA_OBJECT_NODA | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	t.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	t.publicArea.parameters.eccDetail.symmetric.keyBits.aes = 128;
	t.publicArea.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	t.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	t.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	t.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	return Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
				  ESYS_TR_NONE, ESYS_TR_NONE, &sens, &t,
				  &outside, &pcrs, primary, NULL, NULL, NULL,
				  NULL);
}

static void
be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static int
verify_ecdsa(const TPM2B_PUBLIC *pub, const uint8_t dgst[32],
	     const TPMT_SIGNATURE *s)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	ECDSA_SIG *es = ECDSA_SIG_new();
	unsigned char *der = NULL;
	int len, ok = 0;

	if (es == NULL ||
	    !ECDSA_SIG_set0(es,
			    BN_bin2bn(s->signature.ecdsa.signatureR.buffer,
				      s->signature.ecdsa.signatureR.size, NULL),
			    BN_bin2bn(s->signature.ecdsa.signatureS.buffer,
				      s->signature.ecdsa.signatureS.size,
				      NULL)) ||
	    (len = i2d_ECDSA_SIG(es, &der)) <= 0 ||
	    stint_tpm_pkey_from_public(&pub->publicArea, &pkey) != 0 ||
	    (ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL ||
	    EVP_PKEY_verify_init(ctx) != 1)
		goto out;
	ok = EVP_PKEY_verify(ctx, der, (size_t)len, dgst, 32) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return ok;
}

/* TPM2_Sign as stintd sends it (attest/backend/tpm_ops.c, sign_sys):
 * through SAPI, the policy session with an empty HMAC. */
static TSS2_RC
sys_sign_nohmac(ESYS_CONTEXT *esys, ESYS_TR key, ESYS_TR session,
		TPM2B_DIGEST *digest, TPMT_SIG_SCHEME *scheme,
		TPMT_SIGNATURE *sig)
{
	TPMT_TK_HASHCHECK ticket = {.tag = TPM2_ST_HASHCHECK,
				    .hierarchy = TPM2_RH_NULL};
	TSS2L_SYS_AUTH_COMMAND cmd = {.count = 1};
	TSS2L_SYS_AUTH_RESPONSE rsp = {.count = 0};
	TSS2_SYS_CONTEXT *sys;
	TPM2_HANDLE kh;
	TSS2_RC rc;

	cmd.auths[0].sessionAttributes = TPMA_SESSION_CONTINUESESSION;
	cmd.auths[0].nonce.size = 32;
	memset(cmd.auths[0].nonce.buffer, 0x11, 32);
	if ((rc = Esys_GetSysContext(esys, &sys)) != 0 ||
	    (rc = Esys_TR_GetTpmHandle(esys, key, &kh)) != 0 ||
	    (rc = Esys_TR_GetTpmHandle(esys, session,
				       &cmd.auths[0].sessionHandle)) != 0)
		return rc;
	return Tss2_Sys_Sign(sys, kh, &cmd, digest, scheme, &ticket, sig, &rsp);
}

/*
 * The empty-HMAC form signs only after the whole policy: with
 * PolicyCounterTimer alone (no PolicyNV) the TPM refuses; with both, the
 * signature verifies. 0 when both hold.
 */
static int
nohmac_check(ESYS_CONTEXT *esys, ESYS_TR key, ESYS_TR nv,
	     const struct stint_tpm_keyfile *kf, TPM2B_DIGEST *digest,
	     TPMT_SIG_SCHEME *scheme)
{
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	TPM2B_OPERAND op = {.size = 8};
	ESYS_TR session = ESYS_TR_NONE;
	TPMT_SIGNATURE sig;
	TSS2_RC rc;
	int r = 1;

	if (Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE,
				  ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				  NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256,
				  &session) != 0)
		return 1;
	be64(op.buffer, kf->deadline);
	if (Esys_PolicyCounterTimer(esys, session, ESYS_TR_NONE, ESYS_TR_NONE,
				    ESYS_TR_NONE, &op, 8,
				    TPM2_EO_UNSIGNED_LT) != 0)
		goto out;
	if (sys_sign_nohmac(esys, key, session, digest, scheme, &sig) == 0) {
		fprintf(stderr, "tpm_probe: empty-HMAC sign without PolicyNV "
				"succeeded\n");
		goto out;
	}
	if (Esys_PolicyRestart(esys, session, ESYS_TR_NONE, ESYS_TR_NONE,
			       ESYS_TR_NONE) != 0 ||
	    Esys_PolicyCounterTimer(esys, session, ESYS_TR_NONE, ESYS_TR_NONE,
				    ESYS_TR_NONE, &op, 8,
				    TPM2_EO_UNSIGNED_LT) != 0)
		goto out;
	be64(op.buffer, kf->counter);
	if (Esys_PolicyNV(esys, ESYS_TR_RH_OWNER, nv, session, ESYS_TR_PASSWORD,
			  ESYS_TR_NONE, ESYS_TR_NONE, &op, 0, TPM2_EO_EQ) != 0)
		goto out;
	if ((rc = sys_sign_nohmac(esys, key, session, digest, scheme, &sig)) !=
	    0) {
		r = fail("empty-HMAC Sign", rc);
		goto out;
	}
	if (!verify_ecdsa(&kf->pub, digest->buffer, &sig)) {
		fprintf(stderr, "tpm_probe: empty-HMAC signature does not "
				"verify\n");
		goto out;
	}
	r = 0;
out:
	Esys_FlushContext(esys, session);
	return r;
}

static int
cmd_raw_sign(const char *tcti_conf, const char *keyfile)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	ESYS_TR primary = ESYS_TR_NONE, key = ESYS_TR_NONE;
	ESYS_TR session = ESYS_TR_NONE, nv = ESYS_TR_NONE;
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_ECDSA};
	TPMT_TK_HASHCHECK ticket = {.tag = TPM2_ST_HASHCHECK,
				    .hierarchy = TPM2_RH_NULL};
	TPMT_SIGNATURE *sig = NULL;
	struct stint_tpm_keyfile kf;
	TPM2B_OPERAND op = {.size = 8};
	TPM2B_DIGEST digest = {.size = 32};
	char err[256];
	TSS2_RC rc;
	int r = 1;

	if (stint_tpm_keyfile_read(keyfile, &kf, err, sizeof(err)) != 0) {
		fprintf(stderr, "tpm_probe: %s\n", err);
		return 1;
	}
	if (raw_open(tcti_conf, &tcti, &esys) != 0)
		goto out;
	if ((rc = raw_primary(esys, &primary)) != 0) {
		r = fail("CreatePrimary", rc);
		goto out;
	}
	if ((rc = Esys_Load(esys, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			    ESYS_TR_NONE, &kf.priv, &kf.pub, &key)) != 0) {
		r = fail("Load", rc);
		goto out;
	}
	/* Without the policy, the key must be unusable: try a password. */
	memset(digest.buffer, 0x5a, 32);
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	rc = Esys_Sign(esys, key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
		       &digest, &scheme, &ticket, &sig);
	if (rc == 0) {
		fprintf(stderr, "tpm_probe: key signed without its policy\n");
		Esys_Free(sig);
		sig = NULL;
		goto out;
	}
	if ((rc = Esys_TR_FromTPMPublic(esys, kf.nv_index, ESYS_TR_NONE,
					ESYS_TR_NONE, ESYS_TR_NONE, &nv)) !=
	    0) {
		r = fail("NV index", rc);
		goto out;
	}
	if ((rc = Esys_StartAuthSession(
		     esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
		     ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym,
		     TPM2_ALG_SHA256, &session)) != 0) {
		r = fail("StartAuthSession", rc);
		goto out;
	}
	be64(op.buffer, kf.deadline);
	rc = Esys_PolicyCounterTimer(esys, session, ESYS_TR_NONE, ESYS_TR_NONE,
				     ESYS_TR_NONE, &op, 8, TPM2_EO_UNSIGNED_LT);
	if (rc != 0) {
		printf("refused: PolicyCounterTimer: %s\n", Tss2_RC_Decode(rc));
		r = 2;
		goto out;
	}
	be64(op.buffer, kf.counter);
	rc = Esys_PolicyNV(esys, ESYS_TR_RH_OWNER, nv, session,
			   ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &op, 0,
			   TPM2_EO_EQ);
	if (rc != 0) {
		printf("refused: PolicyNV: %s\n", Tss2_RC_Decode(rc));
		r = 2;
		goto out;
	}
	rc = Esys_Sign(esys, key, session, ESYS_TR_NONE, ESYS_TR_NONE, &digest,
		       &scheme, &ticket, &sig);
	if (rc != 0) {
		r = fail("Sign", rc);
		goto out;
	}
	if (!verify_ecdsa(&kf.pub, digest.buffer, sig)) {
		fprintf(stderr, "tpm_probe: signature does not verify\n");
		goto out;
	}
	if (nohmac_check(esys, key, nv, &kf, &digest, &scheme) != 0)
		goto out;
	printf("signed\n");
	r = 0;
out:
	Esys_Free(sig);
	if (esys != NULL) {
		if (session != ESYS_TR_NONE)
			Esys_FlushContext(esys, session);
		if (key != ESYS_TR_NONE)
			Esys_FlushContext(esys, key);
		if (primary != ESYS_TR_NONE)
			Esys_FlushContext(esys, primary);
	}
	raw_close(&tcti, &esys);
	return r;
}

static int
cmd_clock_forward(const char *tcti_conf, const char *ms)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	TPMS_TIME_INFO *ti = NULL;
	TSS2_RC rc;
	int r = 1;

	if (raw_open(tcti_conf, &tcti, &esys) != 0)
		goto out;
	if ((rc = Esys_ReadClock(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				 &ti)) != 0) {
		r = fail("ReadClock", rc);
		goto out;
	}
	rc = Esys_ClockSet(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
			   ESYS_TR_NONE, ESYS_TR_NONE,
			   ti->clockInfo.clock + strtoull(ms, NULL, 10));
	if (rc != 0) {
		r = fail("ClockSet", rc);
		goto out;
	}
	/* Backwards is refused: the deadline cannot be undone this way. */
	rc = Esys_ClockSet(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
			   ESYS_TR_NONE, ESYS_TR_NONE, ti->clockInfo.clock);
	if (rc == 0) {
		fprintf(stderr, "tpm_probe: ClockSet backwards accepted\n");
		goto out;
	}
	r = 0;
out:
	Esys_Free(ti);
	raw_close(&tcti, &esys);
	return r;
}

static int
count_handles(ESYS_CONTEXT *esys, TPM2_HANDLE first, UINT32 *n)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	TSS2_RC rc;

	rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				TPM2_CAP_HANDLES, first, 64, &more, &cap);
	if (rc != 0)
		return fail("GetCapability", rc);
	*n = cap->data.handles.count;
	Esys_Free(cap);
	return 0;
}

static int
cmd_handles(const char *tcti_conf)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	UINT32 t = 0, s = 0;
	int r = 1;

	if (raw_open(tcti_conf, &tcti, &esys) == 0 &&
	    count_handles(esys, 0x80000000U, &t) == 0 &&
	    count_handles(esys, 0x02000000U, &s) == 0) {
		printf("transient %u sessions %u\n", (unsigned)t, (unsigned)s);
		r = 0;
	}
	raw_close(&tcti, &esys);
	return r;
}

/* --- through the backend library -------------------------------------------
 */

static struct stint_backend *
backend_open(const char *conf)
{
	struct stint_config cfg;
	struct stint_backend *b;
	char err[512];

	if (stint_config_load(conf, &cfg, err, sizeof(err)) != 0 ||
	    stint_backend_open(&cfg, &b, err, sizeof(err)) != 0) {
		fprintf(stderr, "tpm_probe: %s\n", err);
		return NULL;
	}
	return b;
}

static int
b_gen(struct stint_backend *b, const char *id, long ttl)
{
	struct stint_pubkey pub;
	struct stint_key_facts facts;
	char err[512];

	if (b->ops->generate(b, STINT_KEY_EC_P256, id,
			     (int64_t)time(NULL) + ttl, &pub, &facts, err,
			     sizeof(err)) != 0) {
		fprintf(stderr, "tpm_probe: generate: %s\n", err);
		return 1;
	}
	if (pub.spki.len == 0 || pub.ec_point.len != 67 || !facts.local ||
	    !facts.never_extractable || !facts.sensitive || facts.extractable ||
	    !facts.sign || facts.decrypt) {
		fprintf(stderr, "tpm_probe: generate: bad public key or "
				"facts\n");
		stint_pubkey_free(&pub);
		return 1;
	}
	stint_pubkey_free(&pub);
	return 0;
}

static int
b_sign(struct stint_backend *b, const char *id, int quiet)
{
	uint8_t dgst[32], sig[STINT_SIG_MAX];
	struct stint_backend_sig out = {sig, sizeof(sig), 0};
	const struct stint_backend_sign_req req = {
		.key_id = id, .raw = CKM_ECDSA, .in = dgst, .in_len = 32};
	char err[512];

	memset(dgst, 0xa5, sizeof(dgst));
	if (b->ops->sign(b, &req, &out, err, sizeof(err)) != 0) {
		if (quiet < 2)
			printf("refused: %s\n", err);
		return 2;
	}
	if (out.len != 64)
		return 1;
	if (!quiet)
		printf("signed\n");
	return 0;
}

/* Re-encodes a document after changing one part. */
static int
reencode(const struct stint_tpm_evidence *ev, struct stint_bytes *out)
{
	return stint_tpm_evidence_encode(ev, out);
}

static int
expect_refused(const struct stint_bytes *doc, const char *ak, size_t ak_len,
	       const uint8_t *nonce, const char *task, const char *what,
	       const char *check)
{
	char err[512];
	int r;

	r = stint_tpm_evidence_verify(doc->ptr, doc->len, (const uint8_t *)ak,
				      ak_len, nonce, 16, task, NULL, err,
				      sizeof(err));
	if (r == 0 || strncmp(err, check, strlen(check)) != 0) {
		printf("FAIL %s: %s\n", what, r == 0 ? "accepted" : err);
		return 1;
	}
	printf("refused %s: %s\n", what, err);
	return 0;
}

/* A software P-256 key dressed as a TPM AK, to sign forged attests. */
static int
soft_ak(EVP_PKEY **key, TPM2B_PUBLIC *pub, char **pem)
{
	BIGNUM *x = BN_new(), *y = BN_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int r = -1;

	memset(pub, 0, sizeof(*pub));
	if ((*key = EVP_EC_gen("P-256")) == NULL || x == NULL || y == NULL ||
	    bio == NULL || !EVP_PKEY_get_bn_param(*key, "qx", &x) ||
	    !EVP_PKEY_get_bn_param(*key, "qy", &y))
		goto out;
	pub->publicArea.type = TPM2_ALG_ECC;
	pub->publicArea.nameAlg = TPM2_ALG_SHA256;
	pub->publicArea.objectAttributes =
		TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
		TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
		TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
	pub->publicArea.parameters.eccDetail.symmetric.algorithm =
		TPM2_ALG_NULL;
	pub->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	pub->publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg =
		TPM2_ALG_SHA256;
	pub->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	pub->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	pub->publicArea.unique.ecc.x.size = 32;
	pub->publicArea.unique.ecc.y.size = 32;
	BN_bn2binpad(x, pub->publicArea.unique.ecc.x.buffer, 32);
	BN_bn2binpad(y, pub->publicArea.unique.ecc.y.buffer, 32);
	if (PEM_write_bio_PUBKEY(bio, *key) != 1 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0 ||
	    (*pem = strndup(data, (size_t)n)) == NULL)
		goto out;
	r = 0;
out:
	BIO_free(bio);
	BN_free(x);
	BN_free(y);
	return r;
}

/* TPMT_SIGNATURE (ECDSA, SHA-256) over msg by a software key. */
static int
soft_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t *out,
	  size_t *out_len)
{
	TPMT_SIGNATURE s = {.sigAlg = TPM2_ALG_ECDSA};
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80];
	const unsigned char *p = der;
	size_t dlen = sizeof(der), off = 0;
	ECDSA_SIG *es = NULL;
	int r = -1;

	if (md == NULL ||
	    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, der, &dlen, msg, len) != 1 ||
	    (es = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) == NULL)
		goto out;
	s.signature.ecdsa.hash = TPM2_ALG_SHA256;
	s.signature.ecdsa.signatureR.size = 32;
	s.signature.ecdsa.signatureS.size = 32;
	BN_bn2binpad(ECDSA_SIG_get0_r(es), s.signature.ecdsa.signatureR.buffer,
		     32);
	BN_bn2binpad(ECDSA_SIG_get0_s(es), s.signature.ecdsa.signatureS.buffer,
		     32);
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&s, out, *out_len, &off) != 0)
		goto out;
	*out_len = off;
	r = 0;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return r;
}

static int
b_evidence(struct stint_backend *b, const char *id)
{
	const char *task = "t-0123456789abcdef0123456789abcdef";
	uint8_t nonce[16], bad_nonce[16], attest[sizeof(TPMS_ATTEST) + 64];
	uint8_t pubbuf[sizeof(TPM2B_PUBLIC) + 8], sigbuf[256];
	struct stint_bytes doc = {0}, t = {0};
	struct stint_backend_evidence_req ereq;
	struct stint_tpm_evidence ev, mod;
	struct stint_tpm_evidence_info info;
	TPM2B_PUBLIC kp, sp;
	TPMS_ATTEST att;
	EVP_PKEY *soft = NULL;
	char *ak = NULL, *soft_pem = NULL, err[512];
	size_t off, len, ak_len;
	int bad = 0;

	RAND_bytes(nonce, sizeof(nonce));
	memcpy(bad_nonce, nonce, sizeof(nonce));
	bad_nonce[0] ^= 1;
	ereq = (struct stint_backend_evidence_req){.key_id = id,
						   .task_id = task,
						   .nonce = nonce,
						   .nonce_len = sizeof(nonce)};
	if (stint_backend_tpm_evidence(b, &ereq, &doc, err, sizeof(err)) != 0 ||
	    stint_backend_tpm_ak_pem(b, &ak, err, sizeof(err)) != 0) {
		fprintf(stderr, "tpm_probe: evidence: %s\n", err);
		return 1;
	}
	ak_len = strlen(ak);
	if (stint_tpm_evidence_verify(doc.ptr, doc.len, (uint8_t *)ak, ak_len,
				      nonce, sizeof(nonce), task, &info, err,
				      sizeof(err)) != 0) {
		printf("FAIL genuine evidence refused: %s\n", err);
		bad++;
	} else {
		printf("accepted genuine evidence: deadline %llu counter %llu "
		       "nv 0x%08x\n",
		       (unsigned long long)info.deadline,
		       (unsigned long long)info.counter,
		       (unsigned)info.nv_index);
		stint_tpm_evidence_info_free(&info);
	}
	if (stint_tpm_evidence_decode(doc.ptr, doc.len, &ev, err,
				      sizeof(err)) != 0)
		return 1;

	bad += expect_refused(&doc, ak, ak_len, bad_nonce, task, "wrong nonce",
			      "nonce:");
	bad += expect_refused(&doc, ak, ak_len, nonce, "t-other",
			      "wrong task id", "nonce:");

	/* Flipped byte in the attest structure. */
	mod = ev;
	memcpy(attest, ev.attest.ptr, ev.attest.len);
	attest[ev.attest.len / 2] ^= 0x01;
	mod.attest.ptr = attest;
	reencode(&mod, &t);
	bad += expect_refused(&t, ak, ak_len, nonce, task,
			      "flipped attest byte", "signature:");
	free(t.ptr);

	/* Flipped byte in the signature (inside r). */
	mod = ev;
	memcpy(sigbuf, ev.signature.ptr, ev.signature.len);
	sigbuf[10] ^= 0x01;
	mod.signature.ptr = sigbuf;
	reencode(&mod, &t);
	bad += expect_refused(&t, ak, ak_len, nonce, task,
			      "flipped signature byte", "signature:");
	free(t.ptr);

	/* Key public area with userWithAuth set. */
	off = 0;
	Tss2_MU_TPM2B_PUBLIC_Unmarshal(ev.key_public.ptr, ev.key_public.len,
				       &off, &kp);
	kp.publicArea.objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
	len = 0;
	Tss2_MU_TPM2B_PUBLIC_Marshal(&kp, pubbuf, sizeof(pubbuf), &len);
	mod = ev;
	mod.key_public.ptr = pubbuf;
	mod.key_public.len = len;
	reencode(&mod, &t);
	bad += expect_refused(&t, ak, ak_len, nonce, task,
			      "public area with userWithAuth",
			      "attributes: userWithAuth");
	free(t.ptr);

	/* Another key's public area (same attributes and policy). */
	kp.publicArea.objectAttributes &= ~TPMA_OBJECT_USERWITHAUTH;
	kp.publicArea.unique.ecc.x.buffer[0] ^= 1;
	len = 0;
	Tss2_MU_TPM2B_PUBLIC_Marshal(&kp, pubbuf, sizeof(pubbuf), &len);
	mod.key_public.len = len;
	reencode(&mod, &t);
	bad += expect_refused(&t, ak, ak_len, nonce, task,
			      "public area of another key", "name:");
	free(t.ptr);

	/* A later deadline than the policy binds. */
	mod = ev;
	mod.deadline += 60000;
	reencode(&mod, &t);
	bad += expect_refused(&t, ak, ak_len, nonce, task, "later deadline",
			      "policy:");
	free(t.ptr);
	/* A counter value other than the one bound. */
	mod = ev;
	mod.counter += 1;
	reencode(&mod, &t);
	bad += expect_refused(&t, ak, ak_len, nonce, task, "other counter",
			      "policy:");
	free(t.ptr);

	/* Attest signed by a key other than the AK. */
	if (soft_ak(&soft, &sp, &soft_pem) != 0)
		return 1;
	mod = ev;
	len = sizeof(sigbuf);
	soft_sign(soft, ev.attest.ptr, ev.attest.len, sigbuf, &len);
	mod.signature.ptr = sigbuf;
	mod.signature.len = len;
	reencode(&mod, &t);
	bad += expect_refused(&t, ak, ak_len, nonce, task,
			      "attest signed by another key", "signature:");
	free(t.ptr);
	len = 0;
	Tss2_MU_TPM2B_PUBLIC_Marshal(&sp, pubbuf, sizeof(pubbuf), &len);
	mod.ak_public.ptr = pubbuf;
	mod.ak_public.len = len;
	reencode(&mod, &t);
	bad += expect_refused(&t, ak, ak_len, nonce, task,
			      "another key posing as the AK", "AK:");
	free(t.ptr);

	/* Forged attests, verified against the forger's own key, reach the
	 * magic and type checks. */
	off = 0;
	Tss2_MU_TPMS_ATTEST_Unmarshal(ev.attest.ptr, ev.attest.len, &off, &att);
	att.magic ^= 1;
	len = 0;
	Tss2_MU_TPMS_ATTEST_Marshal(&att, attest, sizeof(attest), &len);
	mod.attest.ptr = attest;
	mod.attest.len = len;
	off = sizeof(sigbuf);
	soft_sign(soft, attest, len, sigbuf, &off);
	mod.signature.len = off;
	reencode(&mod, &t);
	bad += expect_refused(&t, soft_pem, strlen(soft_pem), nonce, task,
			      "wrong magic", "magic:");
	free(t.ptr);
	att.magic ^= 1;
	att.type = TPM2_ST_ATTEST_QUOTE; /* an empty quote */
	memset(&att.attested, 0, sizeof(att.attested));
	len = 0;
	Tss2_MU_TPMS_ATTEST_Marshal(&att, attest, sizeof(attest), &len);
	mod.attest.len = len;
	off = sizeof(sigbuf);
	soft_sign(soft, attest, len, sigbuf, &off);
	mod.signature.len = off;
	reencode(&mod, &t);
	bad += expect_refused(&t, soft_pem, strlen(soft_pem), nonce, task,
			      "wrong type", "type:");
	free(t.ptr);

	/* Truncation. */
	t.ptr = doc.ptr;
	t.len = doc.len - 1;
	bad += expect_refused(&t, ak, ak_len, nonce, task, "truncated",
			      "document:");

	EVP_PKEY_free(soft);
	free(soft_pem);
	free(ak);
	free(doc.ptr);
	return bad == 0 ? 0 : 1;
}

static int
b_stress(struct stint_backend *b, long nsign, long ncycle)
{
	char id[64], err[512];
	long i;

	if (b_gen(b, "stress-sign", 600) != 0)
		return 1;
	for (i = 0; i < nsign; i++)
		if (b_sign(b, "stress-sign", 1) != 0) {
			fprintf(stderr, "tpm_probe: signature %ld failed\n", i);
			return 1;
		}
	if (b->ops->destroy(b, "stress-sign", err, sizeof(err)) != 0)
		return 1;
	for (i = 0; i < ncycle; i++) {
		snprintf(id, sizeof(id), "stress-%ld", i);
		if (b_gen(b, id, 600) != 0 || b_sign(b, id, 1) != 0 ||
		    b->ops->destroy(b, id, err, sizeof(err)) != 0) {
			fprintf(stderr, "tpm_probe: cycle %ld failed\n", i);
			return 1;
		}
		if (b_sign(b, id, 2) != 2) {
			fprintf(stderr, "tpm_probe: destroyed key signed\n");
			return 1;
		}
	}
	printf("stress ok: %ld signatures, %ld cycles\n", nsign, ncycle);
	return 0;
}

/* --- keys kept loaded (tests/integration/tpm-loaded.sh) ------------------ */

static int
raw_counts(const char *tcti_conf, UINT32 *t, UINT32 *s)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	int r = -1;

	if (raw_open(tcti_conf, &tcti, &esys) == 0 &&
	    count_handles(esys, 0x80000000U, t) == 0 &&
	    count_handles(esys, 0x02000000U, s) == 0)
		r = 0;
	raw_close(&tcti, &esys);
	return r;
}

/* The kill switch used by someone else than this backend: NV_Increment
 * with the counter's own auth from <state_dir>/tpm/nv.auth. */
static int
raw_kill(const char *tcti_conf, const struct stint_config *cfg)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	TPM2B_AUTH auth = {0};
	char path[PATH_MAX + 16];
	ESYS_TR nv = ESYS_TR_NONE;
	TSS2_RC rc;
	FILE *f;
	int r = 1;

	snprintf(path, sizeof(path), "%s/tpm/nv.auth", cfg->state_dir);
	if ((f = fopen(path, "re")) == NULL)
		return 1;
	auth.size = (UINT16)fread(auth.buffer, 1, sizeof(auth.buffer), f);
	fclose(f);
	if (raw_open(tcti_conf, &tcti, &esys) != 0)
		goto out;
	if ((rc = Esys_TR_FromTPMPublic(esys, cfg->backend.kill_switch_index,
					ESYS_TR_NONE, ESYS_TR_NONE,
					ESYS_TR_NONE, &nv)) != 0 ||
	    (rc = Esys_TR_SetAuth(esys, nv, &auth)) != 0 ||
	    (rc = Esys_NV_Increment(esys, nv, nv, ESYS_TR_PASSWORD,
				    ESYS_TR_NONE, ESYS_TR_NONE)) != 0) {
		r = fail("NV_Increment", rc);
		goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(&auth, sizeof(auth));
	raw_close(&tcti, &esys);
	return r;
}

/* b_sign into a string: 0 signed, 2 refused (msg holds why), 1 error. */
static int
b_sign_msg(struct stint_backend *b, const char *id, char *msg, size_t cap)
{
	uint8_t dgst[32], sig[STINT_SIG_MAX];
	struct stint_backend_sig out = {sig, sizeof(sig), 0};
	const struct stint_backend_sign_req req = {
		.key_id = id, .raw = CKM_ECDSA, .in = dgst, .in_len = 32};

	memset(dgst, 0x3c, sizeof(dgst));
	msg[0] = '\0';
	if (b->ops->sign(b, &req, &out, msg, cap) != 0)
		return 2;
	return out.len == 64 ? 0 : 1;
}

/* The TPM's transient objects and sessions now must be t and s. */
static int
expect_handles(const char *tcti, UINT32 t, UINT32 s, const char *when)
{
	UINT32 gt = 0, gs = 0;

	if (raw_counts(tcti, &gt, &gs) != 0)
		return 1;
	printf("%s: transient %u sessions %u\n", when, (unsigned)gt,
	       (unsigned)gs);
	if (gt != t || gs != s) {
		printf("FAIL %s: wanted transient %u sessions %u\n", when,
		       (unsigned)t, (unsigned)s);
		return 1;
	}
	return 0;
}

/* sign ID and expect: 0 signed, or refused with WHY in the message */
static int
expect_sign(struct stint_backend *b, const char *id, const char *why)
{
	char msg[512];
	int r = b_sign_msg(b, id, msg, sizeof(msg));

	if (why == NULL && r == 0)
		return 0;
	if (why != NULL && r == 2 && strstr(msg, why) != NULL) {
		printf("refused %s: %s\n", id, msg);
		return 0;
	}
	printf("FAIL sign %s: exit %d (%s), wanted %s\n", id, r, msg,
	       why != NULL ? why : "a signature");
	return 1;
}

/*
 * NKEYS task keys (more than the TPM's slots) sign in turn through one
 * backend; the keys stay loaded (at most tpm_loaded_keys) and the policy
 * session is kept; a loaded key whose task ends is flushed and refused; a
 * loaded key is still refused by the TPM after its deadline (ClockSet
 * forward) and after the kill switch used from outside this backend.
 */
static int
b_loaded(struct stint_backend *b, const char *conf, const char *tcti,
	 long nkeys)
{
	struct stint_config cfg;
	char id[32], err[512];
	UINT32 cap, want;
	long i, round;

	if (stint_config_load(conf, &cfg, err, sizeof(err)) != 0 || nkeys < 3 ||
	    nkeys > 50)
		return 1;
	cap = cfg.backend.tpm_loaded_keys;
	want = 1 + (cap < (UINT32)nkeys ? cap : (UINT32)nkeys);
	for (i = 0; i < nkeys; i++) {
		snprintf(id, sizeof(id), "ld-%ld", i);
		if (b_gen(b, id, 600) != 0)
			return 1;
	}
	if (b_gen(b, "ld-short", 30) != 0)
		return 1;
	for (round = 0; round < 3; round++)
		for (i = 0; i < nkeys; i++) {
			snprintf(id, sizeof(id), "ld-%ld", i);
			if (expect_sign(b, id, NULL) != 0)
				return 1;
		}
	printf("signed %ld keys in turn 3 times\n", nkeys);
	if (expect_handles(tcti, want, 1, "after the signatures") != 0)
		return 1;
	/* task end of a loaded key */
	if (expect_sign(b, "ld-0", NULL) != 0 ||
	    b->ops->destroy(b, "ld-0", err, sizeof(err)) != 0 ||
	    expect_handles(tcti, want - (cap > 0), 1,
			   "after destroying a loaded key") != 0 ||
	    expect_sign(b, "ld-0", "no TPM key") != 0)
		return 1;
	/* the deadline, in the TPM, for a loaded key; others still sign */
	if (expect_sign(b, "ld-short", NULL) != 0 ||
	    expect_handles(tcti, want, 1, "with ld-short loaded") != 0 ||
	    cmd_clock_forward(tcti, "60000") != 0 ||
	    expect_sign(b, "ld-short", "deadline passed in TPM clock") != 0 ||
	    expect_sign(b, "ld-1", NULL) != 0)
		return 1;
	/* the kill switch, used outside this backend, for a loaded key */
	if (expect_sign(b, "ld-2", NULL) != 0 || raw_kill(tcti, &cfg) != 0 ||
	    expect_sign(b, "ld-2", "kill switch used") != 0 ||
	    expect_sign(b, "ld-1", "kill switch used") != 0 ||
	    b_gen(b, "ld-new", 600) != 0 || expect_sign(b, "ld-new", NULL) != 0)
		return 1;
	/* remove the keys: the command can run again on the same state */
	for (i = 0; i < nkeys; i++) {
		snprintf(id, sizeof(id), "ld-%ld", i);
		(void)b->ops->destroy(b, id, err, sizeof(err));
	}
	(void)b->ops->destroy(b, "ld-short", err, sizeof(err));
	(void)b->ops->destroy(b, "ld-new", err, sizeof(err));
	printf("loaded ok\n");
	return 0;
}

/* --- benchmark (tests/bench/bench_tpm.sh) -------------------------------- */

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Prints "n=N median_us=M p99_us=P mean_us=A" (p99: nearest rank). */
static void
lat_print(double *us, long n)
{
	double sum = 0;
	long i, i99;

	qsort(us, (size_t)n, sizeof(*us), cmp_double);
	for (i = 0; i < n; i++)
		sum += us[i];
	i99 = (long)((double)n * 0.99 + 0.999999) - 1;
	if (i99 < 0)
		i99 = 0;
	printf("n=%ld median_us=%.0f p99_us=%.0f mean_us=%.0f\n", n,
	       n % 2 ? us[n / 2] : (us[n / 2 - 1] + us[n / 2]) / 2, us[i99],
	       sum / (double)n);
}

static long
bench_count(const char *s)
{
	long n = strtol(s, NULL, 10);

	if (n < 1 || n > 1000000) {
		fprintf(stderr, "tpm_probe: count must be 1 to 1000000\n");
		return -1;
	}
	return n;
}

/*
 * One signature the way stintd makes one, minus stintd: load the blob,
 * policy session, PolicyCounterTimer, PolicyNV, Sign, flush both. The
 * primary and the NV index's ESYS_TR are made once, as stintd keeps them.
 */
static TSS2_RC
bench_sign_once(ESYS_CONTEXT *esys, ESYS_TR primary, ESYS_TR nv,
		const struct stint_tpm_keyfile *kf, const TPM2B_DIGEST *digest)
{
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_ECDSA};
	TPMT_TK_HASHCHECK ticket = {.tag = TPM2_ST_HASHCHECK,
				    .hierarchy = TPM2_RH_NULL};
	ESYS_TR key = ESYS_TR_NONE, session = ESYS_TR_NONE;
	TPMT_SIGNATURE *sig = NULL;
	TPM2B_OPERAND op = {.size = 8};
	TSS2_RC rc;

	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	if ((rc = Esys_Load(esys, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			    ESYS_TR_NONE, &kf->priv, &kf->pub, &key)) != 0)
		goto out;
	if ((rc = Esys_StartAuthSession(
		     esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
		     ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym,
		     TPM2_ALG_SHA256, &session)) != 0) {
		session = ESYS_TR_NONE;
		goto out;
	}
	be64(op.buffer, kf->deadline);
	if ((rc = Esys_PolicyCounterTimer(esys, session, ESYS_TR_NONE,
					  ESYS_TR_NONE, ESYS_TR_NONE, &op, 8,
					  TPM2_EO_UNSIGNED_LT)) != 0)
		goto out;
	be64(op.buffer, kf->counter);
	if ((rc = Esys_PolicyNV(esys, ESYS_TR_RH_OWNER, nv, session,
				ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
				&op, 0, TPM2_EO_EQ)) != 0)
		goto out;
	rc = Esys_Sign(esys, key, session, ESYS_TR_NONE, ESYS_TR_NONE, digest,
		       &scheme, &ticket, &sig);
out:
	Esys_Free(sig);
	if (session != ESYS_TR_NONE)
		Esys_FlushContext(esys, session);
	if (key != ESYS_TR_NONE)
		Esys_FlushContext(esys, key);
	return rc;
}

static int
cmd_bench(const char *tcti_conf, const char *keyfile, const char *count)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *esys = NULL;
	ESYS_TR primary = ESYS_TR_NONE, nv = ESYS_TR_NONE;
	struct stint_tpm_keyfile kf;
	TPM2B_DIGEST digest = {.size = 32};
	double *us = NULL, t0;
	long n, i;
	char err[256];
	TSS2_RC rc;
	int r = 1;

	if ((n = bench_count(count)) < 0)
		return 1;
	if (stint_tpm_keyfile_read(keyfile, &kf, err, sizeof(err)) != 0) {
		fprintf(stderr, "tpm_probe: %s\n", err);
		return 1;
	}
	if ((us = calloc((size_t)n, sizeof(*us))) == NULL)
		return 1;
	memset(digest.buffer, 0x5a, 32);
	if (raw_open(tcti_conf, &tcti, &esys) != 0)
		goto out;
	if ((rc = raw_primary(esys, &primary)) != 0) {
		r = fail("CreatePrimary", rc);
		goto out;
	}
	if ((rc = Esys_TR_FromTPMPublic(esys, kf.nv_index, ESYS_TR_NONE,
					ESYS_TR_NONE, ESYS_TR_NONE, &nv)) !=
	    0) {
		r = fail("NV index", rc);
		goto out;
	}
	/* One unmeasured signature: connection and caches warm, as stintd's. */
	if ((rc = bench_sign_once(esys, primary, nv, &kf, &digest)) != 0) {
		r = fail("sign", rc);
		goto out;
	}
	for (i = 0; i < n; i++) {
		t0 = now_us();
		if ((rc = bench_sign_once(esys, primary, nv, &kf, &digest)) !=
		    0) {
			r = fail("sign", rc);
			goto out;
		}
		us[i] = now_us() - t0;
	}
	lat_print(us, n);
	r = 0;
out:
	if (esys != NULL && primary != ESYS_TR_NONE)
		Esys_FlushContext(esys, primary);
	raw_close(&tcti, &esys);
	free(us);
	OPENSSL_cleanse(&kf.priv, sizeof(kf.priv));
	return r;
}

/*
 * The same measurement through a PKCS#11 module (stint-pkcs11.so): one
 * C_SignInit + C_Sign (CKM_ECDSA, 32 bytes) per signature, timed each.
 */
static CK_RV
p11_find_key(CK_FUNCTION_LIST_PTR f, const char *token, const char *label,
	     CK_SESSION_HANDLE *s, CK_OBJECT_HANDLE *key)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_LABEL, (void *)label, strlen(label)},
	};
	CK_SLOT_ID slots[16];
	CK_ULONG ns = 16, i, found = 0;
	CK_TOKEN_INFO ti;
	const char *pin = getenv("TPM_PROBE_P11_PIN");
	size_t tl = strlen(token);
	CK_RV rv;

	if ((rv = f->C_GetSlotList(CK_TRUE, slots, &ns)) != CKR_OK)
		return rv;
	for (i = 0; i < ns; i++) {
		if (f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    tl > sizeof(ti.label) || memcmp(ti.label, token, tl) != 0 ||
		    (tl < sizeof(ti.label) && ti.label[tl] != ' '))
			continue;
		if ((rv = f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL,
					   NULL, s)) != CKR_OK)
			return rv;
		if (pin != NULL &&
		    (rv = f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin,
				     strlen(pin))) != CKR_OK)
			return rv;
		if ((rv = f->C_FindObjectsInit(*s, tmpl, 2)) != CKR_OK)
			return rv;
		rv = f->C_FindObjects(*s, key, 1, &found);
		f->C_FindObjectsFinal(*s);
		if (rv != CKR_OK)
			return rv;
		return found == 1 ? CKR_OK : CKR_KEY_HANDLE_INVALID;
	}
	return CKR_TOKEN_NOT_PRESENT;
}

static CK_RV
p11_sign_once(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key,
	      CK_BYTE *in)
{
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	CK_BYTE sig[256];
	CK_ULONG sl = sizeof(sig);
	CK_RV rv;

	if ((rv = f->C_SignInit(s, &mech, key)) != CKR_OK)
		return rv;
	rv = f->C_Sign(s, in, 32, sig, &sl);
	if (rv == CKR_OK && sl != 64)
		rv = CKR_GENERAL_ERROR;
	return rv;
}

static int
cmd_bench_p11(const char *module, const char *token, const char *label,
	      const char *count)
{
	CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR);
	CK_FUNCTION_LIST_PTR f = NULL;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE key;
	CK_BYTE in[32];
	double *us = NULL, t0;
	void *dl;
	long n, i;
	CK_RV rv;
	int r = 1;

	if ((n = bench_count(count)) < 0)
		return 1;
	if ((dl = dlopen(module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "tpm_probe: %s\n", dlerror());
		return 1;
	}
	*(void **)&get = dlsym(dl, "C_GetFunctionList");
	if (get == NULL || get(&f) != CKR_OK ||
	    (rv = f->C_Initialize(NULL)) != CKR_OK) {
		fprintf(stderr, "tpm_probe: cannot initialise %s\n", module);
		dlclose(dl);
		return 1;
	}
	memset(in, 0x5a, sizeof(in));
	if ((us = calloc((size_t)n, sizeof(*us))) == NULL)
		goto out;
	if ((rv = p11_find_key(f, token, label, &s, &key)) != CKR_OK ||
	    (rv = p11_sign_once(f, s, key, in)) != CKR_OK) {
		fprintf(stderr, "tpm_probe: %s/%s: CK_RV 0x%lx\n", token, label,
			(unsigned long)rv);
		goto out;
	}
	for (i = 0; i < n; i++) {
		t0 = now_us();
		if ((rv = p11_sign_once(f, s, key, in)) != CKR_OK) {
			fprintf(stderr, "tpm_probe: sign: CK_RV 0x%lx\n",
				(unsigned long)rv);
			goto out;
		}
		us[i] = now_us() - t0;
	}
	lat_print(us, n);
	r = 0;
out:
	if (s != CK_INVALID_HANDLE)
		f->C_CloseSession(s);
	f->C_Finalize(NULL);
	dlclose(dl);
	free(us);
	return r;
}

static int
usage(void)
{
	fprintf(stderr, "usage: tpm_probe raw-sign TCTI KEYFILE | "
			"clock-forward TCTI MS | handles TCTI | gen CONF ID "
			"TTL | sign CONF ID | destroy CONF ID | kill CONF | "
			"evidence CONF ID | stress CONF NSIGN NCYCLE | "
			"loaded CONF TCTI NKEYS | "
			"bench TCTI KEYFILE N | "
			"bench-p11 MODULE TOKEN LABEL N\n");
	return 1;
}

int
main(int argc, char **argv)
{
	struct stint_backend *b;
	const char *cmd;
	char err[512];
	int r = 1;

	if (argc < 3)
		return usage();
	cmd = argv[1];
	if (strcmp(cmd, "raw-sign") == 0 && argc == 4)
		return cmd_raw_sign(argv[2], argv[3]);
	if (strcmp(cmd, "clock-forward") == 0 && argc == 4)
		return cmd_clock_forward(argv[2], argv[3]);
	if (strcmp(cmd, "handles") == 0 && argc == 3)
		return cmd_handles(argv[2]);
	if (strcmp(cmd, "bench") == 0 && argc == 5)
		return cmd_bench(argv[2], argv[3], argv[4]);
	if (strcmp(cmd, "bench-p11") == 0 && argc == 6)
		return cmd_bench_p11(argv[2], argv[3], argv[4], argv[5]);
	if ((b = backend_open(argv[2])) == NULL)
		return 1;
	if (strcmp(cmd, "gen") == 0 && argc == 5)
		r = b_gen(b, argv[3], strtol(argv[4], NULL, 10));
	else if (strcmp(cmd, "sign") == 0 && argc == 4)
		r = b_sign(b, argv[3], 0);
	else if (strcmp(cmd, "destroy") == 0 && argc == 4) {
		r = b->ops->destroy(b, argv[3], err, sizeof(err));
		if (r != 0)
			fprintf(stderr, "tpm_probe: %s\n", err);
	} else if (strcmp(cmd, "kill") == 0 && argc == 3) {
		r = stint_backend_tpm_kill_switch(b, err, sizeof(err));
		if (r != 0)
			fprintf(stderr, "tpm_probe: %s\n", err);
	} else if (strcmp(cmd, "evidence") == 0 && argc == 4)
		r = b_evidence(b, argv[3]);
	else if (strcmp(cmd, "loaded") == 0 && argc == 5)
		r = b_loaded(b, argv[2], argv[3], strtol(argv[4], NULL, 10));
	else if (strcmp(cmd, "stress") == 0 && argc == 5)
		r = b_stress(b, strtol(argv[3], NULL, 10),
			     strtol(argv[4], NULL, 10));
	else
		r = usage();
	b->ops->close(b);
	return r;
}
