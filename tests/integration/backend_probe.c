/*
 * Drives stintd's PKCS#11 backend against a real token (backend.sh makes a
 * SoftHSM2 one) and checks every answer with OpenSSL.
 *
 *   backend_probe MODULE TOKEN PIN_FILE            full run (below)
 *   backend_probe MODULE TOKEN PIN_FILE open [N]   open (key_pool = N,
 *                                                  default 0) and close
 *   backend_probe MODULE TOKEN PIN_FILE generate ID
 *   backend_probe MODULE TOKEN PIN_FILE destroy ID
 *   backend_probe MODULE TOKEN PIN_FILE pool N COUNT SETTLE_MS [GO_FILE]
 *   backend_probe MODULE TOKEN PIN_FILE sweep [KEEP_ID...]
 *
 * The pool mode opens with key_pool = N and gets COUNT ec-p256 task keys
 * the way task start does: a ready key from key_take() with the id it comes
 * with, else a fresh one generated under a minted task id. The first key
 * starts the refill thread; the probe then waits SETTLE_MS, and with
 * GO_FILE prints "ready" and waits until that file exists (backend.sh lists
 * the token meanwhile); a sweep keeping only the first key must then
 * destroy nothing (ready keys in memory are spared, and the token must hold
 * no other task-shaped keys); then it gets the rest back to back. Every key's
 * facts, SPKI and a signature are checked, its id must be task-shaped, and
 * no two keys may share an id or a public key (a ready key handed out
 * twice would). It prints "key ID ready|fresh" per key (left in the token
 * for backend.sh to inspect) and the times; close then destroys the ready
 * keys still in the pool.
 *
 * The sweep mode (key_pool = 0) runs the backend's sweep with keep() true
 * exactly for the KEEP_IDs, prints "destroyed ID" per key and the count.
 *
 * The full run generates one key of every type, checks the facts and the
 * SubjectPublicKeyInfo against the raw public attributes, signs with every
 * raw mechanism and verifies each signature, destroys the key and checks
 * that signing then fails and a second destroy succeeds; then it signs from
 * four threads at once while a fifth generates and destroys keys. It also
 * asks the attestation ops (evidence, ak_spki, ak_sign) about a fresh key
 * and checks their answers with the one evidence verifier and OpenSSL. Any
 * failure prints "backend_probe: FAIL: ..." and exits 1; a backend error
 * goes to stderr so that backend.sh can check its wording.
 */

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "attest/backend.h"
#include "attest/backend/pkcs11_int.h" /* copy_session_lost */
#include "attest/config.h"
#include "attest/evidence.h"
#include "common/clock.h"

#define N_THREADS  4
#define EC_ROUNDS  200
#define RSA_ROUNDS 10
#define ERRLEN     512

static struct stint_backend *backend;

static void __attribute__((noreturn, format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "backend_probe: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			fail(__VA_ARGS__);                                     \
	} while (0)

static const uint8_t sha256_digestinfo[19] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
	0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

static const CK_RSA_PKCS_PSS_PARAMS pss_sha256 = {CKM_SHA256, CKG_MGF1_SHA256,
						  32};

static const char *
type_name(uint32_t t)
{
	switch (t) {
	case STINT_KEY_EC_P256:
		return "ec-p256";
	case STINT_KEY_EC_P384:
		return "ec-p384";
	case STINT_KEY_RSA_2048:
		return "rsa-2048";
	default:
		return "rsa-3072";
	}
}

static int
type_bits(uint32_t t)
{
	switch (t) {
	case STINT_KEY_EC_P256:
		return 256;
	case STINT_KEY_EC_P384:
		return 384;
	case STINT_KEY_RSA_2048:
		return 2048;
	default:
		return 3072;
	}
}

static bool
type_ec(uint32_t t)
{
	return t == STINT_KEY_EC_P256 || t == STINT_KEY_EC_P384;
}

static void
key_id_make(char *id, size_t cap, const char *what)
{
	uint8_t rnd[8];
	char hex[17];
	size_t i;

	CHECK(RAND_bytes(rnd, sizeof(rnd)) == 1, "RAND_bytes");
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	snprintf(id, cap, "probe-%s-%s", what, hex);
}

static EVP_PKEY *
spki_parse(const struct stint_pubkey *pub)
{
	const unsigned char *p = pub->spki.ptr;
	EVP_PKEY *pkey;

	pkey = d2i_PUBKEY(NULL, &p, (long)pub->spki.len);
	CHECK(pkey != NULL && p == pub->spki.ptr + pub->spki.len,
	      "SPKI does not parse as one SubjectPublicKeyInfo");
	return pkey;
}

/* The SPKI must hold exactly the public values the token reported. */
static void
spki_matches_attrs(EVP_PKEY *pkey, uint32_t t, const struct stint_pubkey *pub)
{
	uint8_t point[200];
	size_t point_len = 0;
	BIGNUM *n = NULL, *e = NULL, *tn, *te;

	CHECK(EVP_PKEY_get_bits(pkey) == type_bits(t), "%s: SPKI has %d bits",
	      type_name(t), EVP_PKEY_get_bits(pkey));
	if (type_ec(t)) {
		CHECK(EVP_PKEY_is_a(pkey, "EC"), "SPKI is not an EC key");
		CHECK(pub->ec_params.len > 0 && pub->ec_point.len > 0 &&
			      pub->modulus.len == 0,
		      "%s: EC attributes missing", type_name(t));
		CHECK(EVP_PKEY_get_octet_string_param(
			      pkey, OSSL_PKEY_PARAM_PUB_KEY, point,
			      sizeof(point), &point_len) == 1,
		      "cannot read the SPKI point");
		/* SoftHSM gives CKA_EC_POINT as a DER OCTET STRING: 04 len pt
		 */
		CHECK(pub->ec_point.len == point_len + 2 &&
			      pub->ec_point.ptr[0] == 0x04 &&
			      pub->ec_point.ptr[1] == point_len &&
			      memcmp(pub->ec_point.ptr + 2, point, point_len) ==
				      0,
		      "%s: SPKI point differs from CKA_EC_POINT", type_name(t));
		return;
	}
	CHECK(EVP_PKEY_is_a(pkey, "RSA"), "SPKI is not an RSA key");
	CHECK(pub->modulus.len > 0 && pub->exponent.len > 0 &&
		      pub->ec_point.len == 0,
	      "%s: RSA attributes missing", type_name(t));
	CHECK(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) == 1 &&
		      EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) ==
			      1,
	      "cannot read the SPKI modulus");
	tn = BN_bin2bn(pub->modulus.ptr, (int)pub->modulus.len, NULL);
	te = BN_bin2bn(pub->exponent.ptr, (int)pub->exponent.len, NULL);
	CHECK(tn != NULL && te != NULL && BN_cmp(n, tn) == 0 &&
		      BN_cmp(e, te) == 0 && BN_get_word(te) == 65537,
	      "%s: SPKI differs from CKA_MODULUS/CKA_PUBLIC_EXPONENT",
	      type_name(t));
	BN_free(n);
	BN_free(e);
	BN_free(tn);
	BN_free(te);
}

static void
facts_check(const struct stint_key_facts *f, uint32_t t)
{
	CHECK(f->local && f->never_extractable && f->sensitive && f->sign,
	      "%s: facts local/never_extractable/sensitive/sign not all true",
	      type_name(t));
	CHECK(!f->extractable && !f->decrypt && !f->unwrap && !f->derive,
	      "%s: facts extractable/decrypt/unwrap/derive not all false",
	      type_name(t));
}

/* PKCS#11 ECDSA gives r || s; OpenSSL verifies DER. */
static int
ecdsa_verify(EVP_PKEY *pkey, const uint8_t *sig, size_t sig_len,
	     const uint8_t *digest, size_t dlen)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r, *s;
	unsigned char *der = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	int der_len, ok = 0;

	if (es == NULL || sig_len % 2 != 0)
		goto out;
	r = BN_bin2bn(sig, (int)sig_len / 2, NULL);
	s = BN_bin2bn(sig + sig_len / 2, (int)sig_len / 2, NULL);
	if (r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	if ((der_len = i2d_ECDSA_SIG(es, &der)) <= 0)
		goto out;
	ctx = EVP_PKEY_CTX_new(pkey, NULL);
	ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
	     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
	     EVP_PKEY_verify(ctx, der, (size_t)der_len, digest, dlen) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return ok;
}

static int
rsa_verify(EVP_PKEY *pkey, bool pss, const uint8_t *sig, size_t sig_len,
	   const uint8_t *digest, size_t dlen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	int ok;

	ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
	     EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1;
	if (ok && pss)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) ==
			     1 &&
		     EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) == 1;
	else if (ok)
		ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
	ok = ok && EVP_PKEY_verify(ctx, sig, sig_len, digest, dlen) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

enum sign_kind { SIGN_ECDSA, SIGN_PKCS1, SIGN_PSS };

/* Signs SHA-256(msg) the way the kind says; returns 0 or -1 with err. */
static int
sign_digest(const char *id, enum sign_kind kind, const uint8_t digest[32],
	    uint8_t *sig, size_t *sig_len, char *err)
{
	uint8_t di[sizeof(sha256_digestinfo) + 32];
	struct stint_backend_sign_req req = {
		.key_id = id, .raw = CKM_ECDSA, .in = digest, .in_len = 32};
	struct stint_backend_sig out = {sig, *sig_len, 0};
	int r;

	err[0] = '\0';
	if (kind == SIGN_PKCS1) {
		memcpy(di, sha256_digestinfo, sizeof(sha256_digestinfo));
		memcpy(di + sizeof(sha256_digestinfo), digest, 32);
		req.raw = CKM_RSA_PKCS;
		req.in = di;
		req.in_len = sizeof(di);
	} else if (kind == SIGN_PSS) {
		req.raw = CKM_RSA_PKCS_PSS;
		req.pss = &pss_sha256;
	}
	r = backend->ops->sign(backend, &req, &out, err, ERRLEN);
	*sig_len = out.len;
	return r;
}

static int
verify_digest(EVP_PKEY *pkey, enum sign_kind kind, const uint8_t *sig,
	      size_t sig_len, const uint8_t digest[32])
{
	if (kind == SIGN_ECDSA)
		return ecdsa_verify(pkey, sig, sig_len, digest, 32);
	return rsa_verify(pkey, kind == SIGN_PSS, sig, sig_len, digest, 32);
}

/* Sign, verify, and check that a changed digest does not verify. */
static void
sign_and_verify(const char *id, uint32_t t, EVP_PKEY *pkey, enum sign_kind kind)
{
	uint8_t digest[32], sig[STINT_SIG_MAX];
	size_t sig_len = sizeof(sig), want;
	char err[ERRLEN];

	SHA256((const unsigned char *)id, strlen(id), digest);
	CHECK(sign_digest(id, kind, digest, sig, &sig_len, err) == 0,
	      "%s: sign (kind %d): %s", type_name(t), (int)kind, err);
	want = type_ec(t) ? 2 * (size_t)((type_bits(t) + 7) / 8)
			  : (size_t)type_bits(t) / 8;
	CHECK(sig_len == want, "%s: signature is %zu bytes, want %zu",
	      type_name(t), sig_len, want);
	CHECK(verify_digest(pkey, kind, sig, sig_len, digest),
	      "%s: signature (kind %d) does not verify with the SPKI",
	      type_name(t), (int)kind);
	digest[0] ^= 1;
	CHECK(!verify_digest(pkey, kind, sig, sig_len, digest),
	      "%s: signature verifies over a different digest", type_name(t));
}

static void
one_key_type(uint32_t t)
{
	struct stint_pubkey pub, pub2;
	struct stint_key_facts facts;
	uint8_t digest[32], sig[STINT_SIG_MAX];
	size_t sig_len;
	char id[64], err[ERRLEN];
	EVP_PKEY *pkey;

	key_id_make(id, sizeof(id), type_name(t));
	err[0] = '\0';
	CHECK(backend->ops->generate(backend, t, id, 0, &pub, &facts, err,
				     sizeof(err)) == 0,
	      "%s: generate: %s", type_name(t), err);
	facts_check(&facts, t);
	pkey = spki_parse(&pub);
	spki_matches_attrs(pkey, t, &pub);

	/* A second key under the same id is refused. */
	CHECK(backend->ops->generate(backend, t, id, 0, &pub2, &facts, err,
				     sizeof(err)) != 0 &&
		      strstr(err, "already exists") != NULL,
	      "%s: second generate with one id: '%s'", type_name(t), err);

	SHA256((const unsigned char *)id, strlen(id), digest);
	if (type_ec(t)) {
		sign_and_verify(id, t, pkey, SIGN_ECDSA);
		/* The wrong mechanism for the key is an error, not a crash. */
		sig_len = sizeof(sig);
		CHECK(sign_digest(id, SIGN_PSS, digest, sig, &sig_len, err) !=
				      0 &&
			      err[0] != '\0',
		      "%s: PSS with an EC key did not fail", type_name(t));
	} else {
		sign_and_verify(id, t, pkey, SIGN_PKCS1);
		sign_and_verify(id, t, pkey, SIGN_PSS);
		sig_len = sizeof(sig);
		CHECK(sign_digest(id, SIGN_ECDSA, digest, sig, &sig_len, err) !=
				      0 &&
			      err[0] != '\0',
		      "%s: ECDSA with an RSA key did not fail", type_name(t));
	}

	/* Too small a buffer fails; the discarded session must not spoil
	 * the next signature. */
	sig_len = 8;
	CHECK(sign_digest(id, type_ec(t) ? SIGN_ECDSA : SIGN_PKCS1, digest, sig,
			  &sig_len, err) != 0,
	      "%s: signing into 8 bytes succeeded", type_name(t));
	sign_and_verify(id, t, pkey, type_ec(t) ? SIGN_ECDSA : SIGN_PSS);

	CHECK(backend->ops->destroy(backend, id, err, sizeof(err)) == 0,
	      "%s: destroy: %s", type_name(t), err);
	sig_len = sizeof(sig);
	err[0] = '\0';
	CHECK(sign_digest(id, type_ec(t) ? SIGN_ECDSA : SIGN_PKCS1, digest, sig,
			  &sig_len, err) != 0,
	      "%s: signing after destroy succeeded", type_name(t));
	CHECK(strstr(err, id) != NULL, "%s: error does not name the key: '%s'",
	      type_name(t), err);
	CHECK(backend->ops->destroy(backend, id, err, sizeof(err)) == 0,
	      "%s: second destroy: %s", type_name(t), err);
	printf("ok %s: generate, facts, SPKI, sign+verify, destroy\n",
	       type_name(t));
	EVP_PKEY_free(pkey);
	stint_pubkey_free(&pub);
}

/* --- attestation ---------------------------------------------------------- */

/* The backend's attestation key: evidence about a fresh key that the one
 * verifier accepts against ak_spki (and refuses for another nonce), and a
 * checkpoint signature that verifies as ECDSA with SHA-256. */
static void
attestation(void)
{
	static const uint8_t msg[] = "checkpoint 1";
	struct stint_backend_evidence_req req;
	struct stint_evidence_expect want;
	struct stint_evidence_claims got;
	struct stint_bytes doc = {NULL, 0}, spki = {NULL, 0};
	struct stint_key_facts facts;
	struct stint_pubkey pub;
	uint8_t nonce[STINT_NONCE_LEN], sig[STINT_SIG_MAX];
	size_t sig_len = sizeof(sig);
	char id[64], err[ERRLEN];
	const unsigned char *p;
	EVP_MD_CTX *md;
	EVP_PKEY *ak;

	key_id_make(id, sizeof(id), "attest");
	CHECK(backend->ops->generate(backend, STINT_KEY_EC_P256, id, 0, &pub,
				     &facts, err, sizeof(err)) == 0,
	      "attest: generate: %s", err);
	CHECK(RAND_bytes(nonce, sizeof(nonce)) == 1, "no randomness");
	req = (struct stint_backend_evidence_req){.key_id = id,
						  .task_id = id,
						  .nonce = nonce,
						  .nonce_len = sizeof(nonce),
						  .key_type = STINT_KEY_EC_P256,
						  .spki = &pub.spki,
						  .facts = &facts,
						  .time = time(NULL)};
	CHECK(backend->ops->evidence != NULL && backend->ops->ak_spki != NULL &&
		      backend->ops->ak_sign != NULL,
	      "attest: the backend lacks an attestation op");
	CHECK(backend->ops->evidence(backend, &req, &doc, err, sizeof(err)) ==
		      0,
	      "attest: evidence: %s", err);
	CHECK(backend->ops->ak_spki(backend, &spki, err, sizeof(err)) == 0,
	      "attest: ak_spki: %s", err);
	p = spki.ptr;
	CHECK((ak = d2i_PUBKEY(NULL, &p, (long)spki.len)) != NULL,
	      "attest: ak_spki is not an SPKI");
	memset(&want, 0, sizeof(want));
	want.task = id;
	want.nonce = nonce;
	want.key_type = STINT_KEY_EC_P256;
	want.spki = &pub.spki;
	CHECK(stint_evidence_verify(doc.ptr, doc.len, ak, &want, &got, err,
				    sizeof(err)) == STINT_EV_OK,
	      "attest: evidence does not verify: %s", err);
	CHECK(strcmp(got.kind, STINT_EVIDENCE_KIND) == 0 && got.local &&
		      got.never_extractable && got.sensitive &&
		      !got.extractable,
	      "attest: evidence claims kind %s, local %d, never extractable "
	      "%d, sensitive %d, extractable %d",
	      got.kind, got.local, got.never_extractable, got.sensitive,
	      got.extractable);
	stint_evidence_claims_free(&got);
	nonce[0] ^= 1; /* want.nonce now differs from the document's */
	CHECK(stint_evidence_verify(doc.ptr, doc.len, ak, &want, NULL, err,
				    sizeof(err)) == STINT_EV_NONCE,
	      "attest: evidence verified for another nonce");

	CHECK(backend->ops->ak_sign(backend, msg, sizeof(msg) - 1, sig,
				    &sig_len, err, sizeof(err)) == 0,
	      "attest: ak_sign: %s", err);
	CHECK((md = EVP_MD_CTX_new()) != NULL &&
		      EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, ak) ==
			      1 &&
		      EVP_DigestVerify(md, sig, sig_len, msg,
				       sizeof(msg) - 1) == 1,
	      "attest: the checkpoint signature does not verify");
	EVP_MD_CTX_free(md);
	/* The host key "stint-ak" the ops made goes too: backend.sh later
	 * makes a task-marked key under that id for the sweep test. */
	CHECK(backend->ops->destroy(backend, id, err, sizeof(err)) == 0 &&
		      backend->ops->destroy(backend, "stint-ak", err,
					    sizeof(err)) == 0,
	      "attest: destroy: %s", err);
	printf("ok attestation: evidence and checkpoint signature verify "
	       "against ak_spki\n");
	EVP_PKEY_free(ak);
	stint_bytes_clear(&spki);
	stint_bytes_clear(&doc);
	stint_pubkey_free(&pub);
}

/* --- concurrency --------------------------------------------------------- */

struct signer {
	pthread_t thread;
	const char *ec_id, *rsa_id;
	EVP_PKEY *ec_key, *rsa_key;
	int failures;
	char err[ERRLEN];
};

static void *
signer_run(void *arg)
{
	struct signer *w = arg;
	uint8_t digest[32], sig[STINT_SIG_MAX];
	size_t sig_len;
	int i;

	for (i = 0; i < EC_ROUNDS + RSA_ROUNDS; i++) {
		bool ec = i < EC_ROUNDS;
		enum sign_kind kind =
			ec ? SIGN_ECDSA : (i % 2 ? SIGN_PSS : SIGN_PKCS1);

		CHECK(RAND_bytes(digest, sizeof(digest)) == 1, "RAND_bytes");
		sig_len = sizeof(sig);
		if (sign_digest(ec ? w->ec_id : w->rsa_id, kind, digest, sig,
				&sig_len, w->err) != 0 ||
		    !verify_digest(ec ? w->ec_key : w->rsa_key, kind, sig,
				   sig_len, digest))
			w->failures++;
	}
	return NULL;
}

/* Generates and destroys keys while the signers run. */
static void *
churn_run(void *arg)
{
	int *failures = arg;
	struct stint_pubkey pub;
	struct stint_key_facts facts;
	char id[64], err[ERRLEN];
	int i;

	for (i = 0; i < 5; i++) {
		key_id_make(id, sizeof(id), "churn");
		if (backend->ops->generate(backend, STINT_KEY_EC_P256, id, 0,
					   &pub, &facts, err,
					   sizeof(err)) != 0) {
			fprintf(stderr, "churn generate: %s\n", err);
			(*failures)++;
			continue;
		}
		stint_pubkey_free(&pub);
		if (backend->ops->destroy(backend, id, err, sizeof(err)) != 0) {
			fprintf(stderr, "churn destroy: %s\n", err);
			(*failures)++;
		}
	}
	return NULL;
}

static EVP_PKEY *
gen_for_threads(uint32_t t, char *id, size_t cap, struct stint_pubkey *pub)
{
	struct stint_key_facts facts;
	char err[ERRLEN];

	key_id_make(id, cap, "mt");
	CHECK(backend->ops->generate(backend, t, id, 0, pub, &facts, err,
				     sizeof(err)) == 0,
	      "generate for threads: %s", err);
	return spki_parse(pub);
}

static void
concurrent(void)
{
	struct signer w[N_THREADS];
	struct stint_pubkey ec_pub, rsa_pub;
	char ec_id[64], rsa_id[64], err[ERRLEN];
	pthread_t churn;
	int i, churn_failures = 0, total = 0;
	EVP_PKEY *ec_key, *rsa_key;

	ec_key = gen_for_threads(STINT_KEY_EC_P256, ec_id, sizeof(ec_id),
				 &ec_pub);
	rsa_key = gen_for_threads(STINT_KEY_RSA_2048, rsa_id, sizeof(rsa_id),
				  &rsa_pub);
	for (i = 0; i < N_THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].ec_id = ec_id;
		w[i].rsa_id = rsa_id;
		w[i].ec_key = ec_key;
		w[i].rsa_key = rsa_key;
		CHECK(pthread_create(&w[i].thread, NULL, signer_run, &w[i]) ==
			      0,
		      "pthread_create");
	}
	CHECK(pthread_create(&churn, NULL, churn_run, &churn_failures) == 0,
	      "pthread_create");
	for (i = 0; i < N_THREADS; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].failures > 0)
			fprintf(stderr, "thread %d: %d failures, last: %s\n", i,
				w[i].failures, w[i].err);
		total += w[i].failures;
	}
	pthread_join(churn, NULL);
	CHECK(total == 0 && churn_failures == 0,
	      "%d signatures and %d generate/destroy failed under concurrency",
	      total, churn_failures);
	CHECK(backend->ops->destroy(backend, ec_id, err, sizeof(err)) == 0 &&
		      backend->ops->destroy(backend, rsa_id, err,
					    sizeof(err)) == 0,
	      "destroy after threads: %s", err);
	printf("ok concurrency: %d threads x %d signatures verified, keys "
	       "generated and destroyed meanwhile\n",
	       N_THREADS, EC_ROUNDS + RSA_ROUNDS);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(rsa_key);
	stint_pubkey_free(&ec_pub);
	stint_pubkey_free(&rsa_pub);
}

/* --- stale cache, odd requests ------------------------------------------- */

/*
 * A second backend in this process shares the token login; it destroys a
 * key whose handle the first one has cached. The first must then report
 * the key gone, not sign with or crash on the stale handle.
 */
static void
stale_handle(const struct stint_config *cfg)
{
	struct stint_backend *other = NULL;
	struct stint_pubkey pub;
	struct stint_key_facts facts;
	uint8_t digest[32] = {1}, sig[STINT_SIG_MAX];
	size_t sig_len = sizeof(sig);
	char id[64], err[ERRLEN];

	key_id_make(id, sizeof(id), "stale");
	CHECK(backend->ops->generate(backend, STINT_KEY_EC_P256, id, 0, &pub,
				     &facts, err, sizeof(err)) == 0,
	      "stale: generate: %s", err);
	stint_pubkey_free(&pub);
	CHECK(sign_digest(id, SIGN_ECDSA, digest, sig, &sig_len, err) == 0,
	      "stale: first sign: %s", err);
	usleep(200 * 1000); /* the next operation is prepared meanwhile */
	CHECK(stint_backend_open(cfg, &other, err, sizeof(err)) == 0,
	      "stale: second open: %s", err);
	CHECK(other->ops->destroy(other, id, err, sizeof(err)) == 0,
	      "stale: destroy through the second backend: %s", err);
	other->ops->close(other);
	/* The key vanished behind our back, but this backend signs with its
	 * session copy of it (pkcs11_copy.c), which the other instance's
	 * destroy does not reach (documented: only destroy() through this
	 * backend revokes). That destroy() removes the copy, finds no token
	 * object and succeeds; the signature after it is refused and names
	 * the key, with no crash on the stale handles. */
	sig_len = sizeof(sig);
	CHECK(sign_digest(id, SIGN_ECDSA, digest, sig, &sig_len, err) == 0,
	      "stale: signing with the session copy: '%s'", err);
	CHECK(backend->ops->destroy(backend, id, err, sizeof(err)) == 0,
	      "stale: destroy of a key destroyed elsewhere: %s", err);
	sig_len = sizeof(sig);
	CHECK(sign_digest(id, SIGN_ECDSA, digest, sig, &sig_len, err) != 0 &&
		      strstr(err, id) != NULL,
	      "stale: signing with a key destroyed elsewhere: '%s'", err);
	/* The first backend keeps working after the second one closed. */
	CHECK(backend->ops->generate(backend, STINT_KEY_EC_P256, id, 0, &pub,
				     &facts, err, sizeof(err)) == 0,
	      "stale: generate after the second backend closed: %s", err);
	stint_pubkey_free(&pub);
	sig_len = sizeof(sig);
	CHECK(sign_digest(id, SIGN_ECDSA, digest, sig, &sig_len, err) == 0,
	      "stale: sign after the second backend closed: %s", err);
	CHECK(backend->ops->destroy(backend, id, err, sizeof(err)) == 0,
	      "stale: destroy: %s", err);
	printf("ok stale handle: key destroyed elsewhere reported, no crash\n");
}

/* Session copies of signing keys the backend holds (stats). */
static uint64_t
session_copies(void)
{
	struct stint_backend_stats st = {0};

	if (backend->ops->stats != NULL)
		backend->ops->stats(backend, &st);
	return st.session_copies;
}

/*
 * Session copies (pkcs11_copy.c): a key's first signature makes one (the
 * stats count it), later ones reuse it; when the session that holds the
 * copies closes behind the backend's back (closed here through the
 * backend's own module instance), the copy is made again and signing goes
 * on; destroy() removes it, and signing then fails.
 */
static void
copy_session_lost(void)
{
	struct p11_backend *b = (struct p11_backend *)backend;
	struct stint_pubkey pub;
	struct stint_key_facts facts;
	uint8_t digest[32] = {4}, sig[STINT_SIG_MAX];
	size_t sig_len;
	uint64_t c0;
	char id[64], err[ERRLEN];
	int i;

	key_id_make(id, sizeof(id), "copy");
	CHECK(backend->ops->generate(backend, STINT_KEY_EC_P256, id, 0, &pub,
				     &facts, err, sizeof(err)) == 0,
	      "copy: generate: %s", err);
	stint_pubkey_free(&pub);
	c0 = session_copies();
	for (i = 0; i < 3; i++) {
		sig_len = sizeof(sig);
		CHECK(sign_digest(id, SIGN_ECDSA, digest, sig, &sig_len, err) ==
			      0,
		      "copy: sign %d: %s", i, err);
	}
	CHECK(session_copies() == c0 + 1, "copy: %llu copies, want %llu",
	      (unsigned long long)session_copies(), (unsigned long long)c0 + 1);
	CHECK(b->has_copy_session &&
		      b->f->C_CloseSession(b->copy_session) == CKR_OK,
	      "copy: cannot close the copy session");
	for (i = 0; i < 3; i++) {
		sig_len = sizeof(sig);
		CHECK(sign_digest(id, SIGN_ECDSA, digest, sig, &sig_len, err) ==
			      0,
		      "copy: sign %d after the copy session closed: %s", i,
		      err);
		usleep(50 * 1000); /* prepared ops are armed meanwhile */
	}
	/* Copies of other keys (the attestation key's) died too; each is
	 * counted until its next signature finds it gone. */
	CHECK(session_copies() == c0 + 1,
	      "copy: %llu copies after the session closed, want %llu",
	      (unsigned long long)session_copies(), (unsigned long long)c0 + 1);
	CHECK(backend->ops->destroy(backend, id, err, sizeof(err)) == 0,
	      "copy: destroy: %s", err);
	CHECK(session_copies() == c0, "copy: %llu copies after destroy",
	      (unsigned long long)session_copies());
	sig_len = sizeof(sig);
	CHECK(sign_digest(id, SIGN_ECDSA, digest, sig, &sig_len, err) != 0 &&
		      strstr(err, id) != NULL,
	      "copy: signing after destroy: '%s'", err);
	printf("ok session copy: made once, remade after its session "
	       "closed, gone with destroy\n");
}

/* Operations ready to sign now (stats). */
static uint64_t
prepared_ready(void)
{
	struct stint_backend_stats st = {0};

	if (backend->ops->stats != NULL)
		backend->ops->stats(backend, &st);
	return st.prepared;
}

/* Waits up to 10 s (a loaded machine) for want operations to be ready. */
static uint64_t
prepared_wait(uint64_t want)
{
	uint64_t got = prepared_ready();

	for (int i = 0; i < 1000 && got != want; i++) {
		usleep(10 * 1000);
		got = prepared_ready();
	}
	return got;
}

/* An ECDSA signature whose next operation this thread prepares in
 * after_reply (as a connection thread does after its reply). */
static int
sign_defer(const char *id, const uint8_t digest[32], char *err)
{
	uint8_t sig[STINT_SIG_MAX];
	struct stint_backend_sign_req req = {.key_id = id,
					     .raw = CKM_ECDSA,
					     .in = digest,
					     .in_len = 32,
					     .after_reply = true};
	struct stint_backend_sig out = {sig, sizeof(sig), 0};

	err[0] = '\0';
	return backend->ops->sign(backend, &req, &out, err, ERRLEN);
}

/*
 * The next operation prepared on the signing thread after its reply
 * (after_reply): it is ready afterwards; one left unprepared goes to the
 * prepare thread at the thread's next signature; and a key destroyed
 * between the signature and after_reply gets no operation prepared.
 */
static void
deferred_prep(const struct stint_config *cfg)
{
	struct stint_pubkey pub;
	struct stint_key_facts facts;
	uint8_t digest[32] = {3};
	uint64_t base, r0;
	char id[64], err[ERRLEN];
	int i;

	if (cfg->backend.prepared_ops == 0 || backend->ops->after_reply == NULL)
		return;
	key_id_make(id, sizeof(id), "defer");
	CHECK(backend->ops->generate(backend, STINT_KEY_EC_P256, id, 0, &pub,
				     &facts, err, sizeof(err)) == 0,
	      "defer: generate: %s", err);
	stint_pubkey_free(&pub);
	base = prepared_ready();
	for (i = 0; i < 10; i++) {
		CHECK(sign_defer(id, digest, err) == 0, "defer: sign %d: %s", i,
		      err);
		backend->ops->after_reply(backend);
		usleep(50 * 1000); /* the first one's is the prepare thread's */
	}
	CHECK((r0 = prepared_wait(base + 2)) == base + 2,
	      "defer: %llu operations ready after signing, want %llu",
	      (unsigned long long)r0, (unsigned long long)base + 2);
	/* Two signatures without after_reply between them: the first one's
	 * next operation goes to the prepare thread, none stays parked. */
	CHECK(sign_defer(id, digest, err) == 0 &&
		      sign_defer(id, digest, err) == 0,
	      "defer: two in a row: %s", err);
	backend->ops->after_reply(backend);
	CHECK((r0 = prepared_wait(base + 2)) == base + 2,
	      "defer: %llu ready after two in a row, want %llu",
	      (unsigned long long)r0, (unsigned long long)base + 2);
	/* Destroyed between the signature and after_reply. */
	CHECK(sign_defer(id, digest, err) == 0, "defer: last sign: %s", err);
	CHECK(backend->ops->destroy(backend, id, err, sizeof(err)) == 0,
	      "defer: destroy: %s", err);
	r0 = prepared_ready();
	backend->ops->after_reply(backend);
	usleep(100 * 1000);
	CHECK(r0 == base && prepared_ready() == base,
	      "defer: %llu then %llu ready after destroy, want %llu",
	      (unsigned long long)r0, (unsigned long long)prepared_ready(),
	      (unsigned long long)base);
	CHECK(sign_defer(id, digest, err) != 0 && strstr(err, id) != NULL,
	      "defer: signing after destroy: '%s'", err);
	printf("ok deferred preparation: prepared after the reply, none "
	       "after destroy\n");
}

static void
odd_requests(const struct stint_config *cfg)
{
	struct stint_config bad = *cfg;
	struct stint_backend *b = NULL;
	struct stint_pubkey pub;
	struct stint_key_facts facts;
	uint8_t digest[32] = {2}, sig[STINT_SIG_MAX];
	size_t sig_len = sizeof(sig);
	char err[ERRLEN];

	err[0] = '\0';
	CHECK(backend->ops->generate(backend, 99, "probe-bad-type", 0, &pub,
				     &facts, err, sizeof(err)) != 0 &&
		      strstr(err, "key type") != NULL,
	      "unknown key type: '%s'", err);
	CHECK(sign_digest("probe-never-made", SIGN_ECDSA, digest, sig, &sig_len,
			  err) != 0 &&
		      strstr(err, "probe-never-made") != NULL,
	      "sign with an unknown key: '%s'", err);
	CHECK(backend->ops->destroy(backend, "probe-never-made", err,
				    sizeof(err)) == 0,
	      "destroy of an unknown key: %s", err);
	snprintf(bad.backend.type, sizeof(bad.backend.type), "tpm9");
	CHECK(stint_backend_open(&bad, &b, err, sizeof(err)) != 0 &&
		      b == NULL && strstr(err, "tpm9") != NULL,
	      "unknown backend type: '%s'", err);
	printf("ok odd requests: unknown type, key, backend refused\n");
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Lets the refill thread work; with go_file, until backend.sh says go. */
static void
pool_settle(unsigned settle_ms, const char *go_file)
{
	int i;

	fflush(stdout);
	usleep(settle_ms * 1000u);
	if (go_file == NULL)
		return;
	printf("ready\n");
	fflush(stdout);
	for (i = 0; i < 1200 && access(go_file, F_OK) != 0; i++)
		usleep(100 * 1000);
	CHECK(access(go_file, F_OK) == 0, "pool: %s did not appear in 120 s",
	      go_file);
}

struct held_ids {
	char (*ids)[STINT_TASK_ID_MAX + 1];
	size_t n;
};

static bool
held_keep(void *ctx, const char *id)
{
	const struct held_ids *h = ctx;
	size_t i;

	for (i = 0; i < h->n; i++)
		if (strcmp(h->ids[i], id) == 0)
			return true;
	return false;
}

/* A task key as task start gets one: ready from the pool, else fresh. */
static bool
pool_key_get(char id[STINT_TASK_ID_MAX + 1], struct stint_pubkey *pub,
	     struct stint_key_facts *facts)
{
	char err[ERRLEN];

	if (backend->ops->key_take(backend, STINT_KEY_EC_P256, id, pub,
				   facts) == 0)
		return true;
	CHECK(stint_task_id_new(id) == 0, "pool: no task id");
	err[0] = '\0';
	CHECK(backend->ops->generate(backend, STINT_KEY_EC_P256, id, 0, pub,
				     facts, err, sizeof(err)) == 0,
	      "pool: generate %s: %s", id, err);
	return false;
}

static void
pool_run(size_t count, unsigned settle_ms, const char *go_file)
{
	char(*ids)[STINT_TASK_ID_MAX + 1];
	struct stint_pubkey *pubs, other;
	struct stint_key_facts facts;
	char other_id[STINT_TASK_ID_MAX + 1], err[ERRLEN];
	struct held_ids held;
	double *ms, t0;
	EVP_PKEY *pkey;
	size_t i, j, ready = 0, swept = 0;
	bool took;

	CHECK(count > 0 && count <= 1000, "pool COUNT must be 1 to 1000");
	CHECK(backend->ops->key_take != NULL, "pool: no key_take");
	pubs = calloc(count, sizeof(*pubs));
	ids = calloc(count, sizeof(*ids));
	ms = calloc(count, sizeof(*ms));
	CHECK(pubs != NULL && ids != NULL && ms != NULL, "out of memory");
	for (i = 0; i < count; i++) {
		if (i == 1) {
			pool_settle(settle_ms, go_file);
			/* The pool holds ec-p256 keys only. */
			CHECK(backend->ops->key_take(backend, STINT_KEY_EC_P384,
						     other_id, &other,
						     &facts) != 0,
			      "pool: key_take handed out an ec-p384 key");
			/* Keeping only the key handed out, a sweep spares
			 * the ready keys (they are handed out below). */
			held.ids = ids;
			held.n = 1;
			err[0] = '\0';
			CHECK(backend->ops->sweep(backend, held_keep, NULL,
						  &held, &swept, err,
						  sizeof(err)) == 0 &&
				      swept == 0,
			      "pool: sweep destroyed %zu keys (%s)", swept,
			      err);
		}
		t0 = stint_mono_ms_frac();
		took = pool_key_get(ids[i], &pubs[i], &facts);
		ms[i] = stint_mono_ms_frac() - t0;
		ready += took;
		CHECK(stint_task_id_shaped(ids[i], strlen(ids[i])),
		      "pool: key id '%s' is not a task id", ids[i]);
		facts_check(&facts, STINT_KEY_EC_P256);
		pkey = spki_parse(&pubs[i]);
		spki_matches_attrs(pkey, STINT_KEY_EC_P256, &pubs[i]);
		sign_and_verify(ids[i], STINT_KEY_EC_P256, pkey, SIGN_ECDSA);
		EVP_PKEY_free(pkey);
		for (j = 0; j < i; j++) {
			CHECK(strcmp(ids[j], ids[i]) != 0,
			      "pool: keys %zu and %zu share the id %s", j, i,
			      ids[i]);
			CHECK(pubs[j].spki.len != pubs[i].spki.len ||
				      memcmp(pubs[j].spki.ptr, pubs[i].spki.ptr,
					     pubs[i].spki.len) != 0,
			      "pool: keys %zu and %zu share a public key", j,
			      i);
		}
		printf("key %s %s\n", ids[i], took ? "ready" : "fresh");
	}
	for (i = 0; i < count; i++)
		stint_pubkey_free(&pubs[i]);
	qsort(ms, count, sizeof(*ms), cmp_double);
	printf("ok pool: %zu distinct task keys, %zu ready from the pool; "
	       "take or generate min %.3f ms p50 %.3f ms max %.3f ms\n",
	       count, ready, ms[0], ms[count / 2], ms[count - 1]);
	free(ms);
	free(ids);
	free(pubs);
}

struct keep_list {
	char **ids;
	int n;
};

/* The sweep asks only about task-shaped ids ("" for marked keys without
 * an id). */
static bool
probe_keep(void *ctx, const char *id)
{
	const struct keep_list *k = ctx;
	int i;

	CHECK(id[0] == '\0' || stint_task_id_shaped(id, strlen(id)),
	      "sweep: keep() asked about '%s', not a task id", id);
	for (i = 0; i < k->n; i++)
		if (strcmp(k->ids[i], id) == 0)
			return true;
	return false;
}

static void
probe_gone(void *ctx, const char *id)
{
	(void)ctx;
	printf("destroyed %s\n", id);
}

static void
sweep_run(char **keep, int n)
{
	struct keep_list k = {keep, n};
	char err[ERRLEN];
	size_t destroyed = 0;

	CHECK(backend->ops->sweep != NULL, "sweep: no sweep op");
	err[0] = '\0';
	CHECK(backend->ops->sweep(backend, probe_keep, probe_gone, &k,
				  &destroyed, err, sizeof(err)) == 0,
	      "sweep: %s", err);
	printf("ok sweep: destroyed %zu\n", destroyed);
}

int
main(int argc, char **argv)
{
	static const uint32_t types[] = {STINT_KEY_EC_P256, STINT_KEY_EC_P384,
					 STINT_KEY_RSA_2048,
					 STINT_KEY_RSA_3072};
	struct stint_config cfg;
	struct stint_pubkey pub;
	struct stint_key_facts facts;
	const char *mode = argc > 4 ? argv[4] : "full";
	char err[ERRLEN];
	size_t i;

	if (argc < 4) {
		fprintf(stderr, "usage: backend_probe MODULE TOKEN PIN_FILE "
				"[open [N] | generate ID | destroy ID | "
				"pool N COUNT SETTLE_MS [GO_FILE] | "
				"sweep [KEEP_ID...]]\n");
		return 2;
	}
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.backend.type, sizeof(cfg.backend.type), "pkcs11");
	snprintf(cfg.backend.module, sizeof(cfg.backend.module), "%s", argv[1]);
	snprintf(cfg.backend.token, sizeof(cfg.backend.token), "%s", argv[2]);
	snprintf(cfg.backend.pin_file, sizeof(cfg.backend.pin_file), "%s",
		 argv[3]);
	cfg.backend.prepared_ops = STINT_PREPARED_OPS_DEFAULT;
	if ((strcmp(mode, "pool") == 0 || strcmp(mode, "open") == 0) &&
	    argc > 5)
		cfg.backend.key_pool = (uint32_t)strtoul(argv[5], NULL, 10);

	err[0] = '\0';
	if (stint_backend_open(&cfg, &backend, err, sizeof(err)) != 0) {
		/* backend.sh reads this line to check the wording. */
		fprintf(stderr, "backend_probe: open: %s\n", err);
		return 1;
	}
	CHECK(strcmp(backend->ops->name, "pkcs11") == 0, "backend name");

	if (strcmp(mode, "open") == 0) {
		printf("ok open\n");
	} else if (strcmp(mode, "generate") == 0 && argc > 5) {
		CHECK(backend->ops->generate(backend, STINT_KEY_EC_P256,
					     argv[5], 0, &pub, &facts, err,
					     sizeof(err)) == 0,
		      "generate %s: %s", argv[5], err);
		stint_pubkey_free(&pub);
		printf("ok generate %s\n", argv[5]);
	} else if (strcmp(mode, "destroy") == 0 && argc > 5) {
		CHECK(backend->ops->destroy(backend, argv[5], err,
					    sizeof(err)) == 0,
		      "destroy %s: %s", argv[5], err);
		printf("ok destroy %s\n", argv[5]);
	} else if (strcmp(mode, "pool") == 0 && argc > 7) {
		pool_run(strtoul(argv[6], NULL, 10),
			 (unsigned)strtoul(argv[7], NULL, 10),
			 argc > 8 ? argv[8] : NULL);
	} else if (strcmp(mode, "sweep") == 0) {
		sweep_run(argv + 5, argc - 5);
	} else if (strcmp(mode, "full") == 0) {
		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			one_key_type(types[i]);
		attestation();
		odd_requests(&cfg);
		stale_handle(&cfg);
		copy_session_lost();
		deferred_prep(&cfg);
		concurrent();
	} else {
		fprintf(stderr, "backend_probe: unknown mode '%s'\n", mode);
		backend->ops->close(backend);
		return 2;
	}
	backend->ops->close(backend);
	return 0;
}
