/*
 * An EVP_PKEY whose private operation signs in the backend, so that
 * X509_sign, X509_REQ_sign and EVP_DigestSign work on the CA key and the
 * attestation key while those keys stay in the token.
 *
 * Why the deprecated EC_KEY_METHOD: OpenSSL 3.0 would want a provider for
 * this, and Debian 12 has none for PKCS#11 (pkcs11-provider is not
 * packaged); the libp11 engine must not be loaded into stintd (libp11
 * #456 breaks OpenSSL's own EC operations in the same process). An EC_KEY
 * with its own method is a "foreign" key that OpenSSL 3 still signs with
 * through the legacy path: OpenSSL hashes, then calls our sign_sig with the
 * digest, and we ask the backend for a raw CKM_ECDSA signature. The
 * deprecated calls stay in this one file; a provider is the long-term
 * answer.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/ca.h"
#include "common/log.h"

struct backend_key {
	struct stint_backend *backend;
	char key_id[64];
};

static pthread_once_t method_once = PTHREAD_ONCE_INIT;
static EC_KEY_METHOD *method;
static int ex_index = -1;

static void
backend_key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		 long argl, void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

/* dgst is the digest OpenSSL computed; the token signs it as is. */
static ECDSA_SIG *
backend_sign_sig(const unsigned char *dgst, int dgst_len, const BIGNUM *kinv,
		 const BIGNUM *rp, EC_KEY *ec)
{
	struct backend_key *k = EC_KEY_get_ex_data(ec, ex_index);
	uint8_t sig[STINT_SIG_MAX];
	struct stint_backend_sig got = {sig, sizeof(sig), 0};
	size_t sig_len, half;
	char err[256];
	BIGNUM *r = NULL, *s = NULL;
	ECDSA_SIG *out = NULL;
	struct stint_backend_sign_req req = {.raw = CKM_ECDSA, .in = dgst};

	(void)kinv;
	(void)rp;
	if (k == NULL || dgst_len <= 0)
		return NULL;
	req.key_id = k->key_id;
	req.in_len = (size_t)dgst_len;
	if (k->backend->ops->sign(k->backend, &req, &got, err, sizeof(err)) !=
	    0) {
		log_err("signing with host key %s failed: %s", k->key_id, err);
		return NULL;
	}
	sig_len = got.len;
	/* PKCS#11 ECDSA signatures are r || s, each half the length. */
	if (sig_len == 0 || sig_len % 2 != 0)
		return NULL;
	half = sig_len / 2;
	if ((r = BN_bin2bn(sig, (int)half, NULL)) == NULL ||
	    (s = BN_bin2bn(sig + half, (int)half, NULL)) == NULL ||
	    (out = ECDSA_SIG_new()) == NULL || !ECDSA_SIG_set0(out, r, s)) {
		ECDSA_SIG_free(out);
		BN_free(r);
		BN_free(s);
		return NULL;
	}
	return out;
}

static void
method_init(void)
{
	int (*sign)(int, const unsigned char *, int, unsigned char *,
		    unsigned int *, const BIGNUM *, const BIGNUM *, EC_KEY *);
	int (*setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **);

	ex_index =
		EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, backend_key_free);
	if (ex_index < 0 ||
	    (method = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) == NULL)
		return;
	/* The default sign (DER output) calls sign_sig; setup is unused. */
	EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), &sign, &setup, NULL);
	EC_KEY_METHOD_set_sign(method, sign, NULL, backend_sign_sig);
}

EVP_PKEY *
stint_backend_pkey(struct stint_backend *b, const char *key_id,
		   const struct stint_bytes *spki, char *err, size_t errlen)
{
	const unsigned char *p = spki->ptr;
	struct backend_key *k = NULL;
	EVP_PKEY *pub = NULL, *pkey = NULL;
	EC_KEY *ec = NULL;

	pthread_once(&method_once, method_init);
	if (method == NULL) {
		snprintf(err, errlen, "cannot set up OpenSSL's EC key method");
		return NULL;
	}
	if (strlen(key_id) >= sizeof(k->key_id)) {
		snprintf(err, errlen, "host key id too long");
		return NULL;
	}
	pub = d2i_PUBKEY(NULL, &p, (long)spki->len);
	if (pub == NULL || EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC) {
		snprintf(err, errlen,
			 "host key '%s' is not an EC key (only EC host keys "
			 "are supported)",
			 key_id);
		goto fail;
	}
	/* A copy of the public key in the legacy form, with our method. */
	if ((ec = EC_KEY_dup(EVP_PKEY_get0_EC_KEY(pub))) == NULL ||
	    !EC_KEY_set_method(ec, method) ||
	    (k = calloc(1, sizeof(*k))) == NULL)
		goto nomem;
	k->backend = b;
	snprintf(k->key_id, sizeof(k->key_id), "%s", key_id);
	if (!EC_KEY_set_ex_data(ec, ex_index, k))
		goto nomem;
	k = NULL; /* owned by ec now */
	if ((pkey = EVP_PKEY_new()) == NULL ||
	    !EVP_PKEY_assign_EC_KEY(pkey, ec))
		goto nomem;
	EVP_PKEY_free(pub);
	return pkey;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	/* Reached only before ec was assigned to pkey. */
	free(k);
	EC_KEY_free(ec);
	EVP_PKEY_free(pkey);
	EVP_PKEY_free(pub);
	return NULL;
}
