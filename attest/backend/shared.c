/*
 * Helpers both backends share (shared.h).
 */

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "attest/backend/shared.h"
#include "common/bytes.h"

/* Builds *out from bld's parameters as a public key of alg. */
static int
pkey_from_bld(const char *alg, OSSL_PARAM_BLD *bld, EVP_PKEY **out)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = NULL;
	int r = -1;

	*out = NULL;
	if (params != NULL &&
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL)) != NULL &&
	    EVP_PKEY_fromdata_init(ctx) > 0 &&
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) > 0)
		r = 0;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return r;
}

int
stint_backend_pkey_ec(const char *group, const uint8_t *point, size_t len,
		      EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	int r = -1;

	*out = NULL;
	if (bld != NULL &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					    group, 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
					     point, len))
		r = pkey_from_bld("EC", bld, out);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

int
stint_backend_pkey_rsa(const BIGNUM *n, const BIGNUM *e, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	int r = -1;

	*out = NULL;
	if (bld != NULL &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
		r = pkey_from_bld("RSA", bld, out);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

int
stint_backend_spki_der(EVP_PKEY *pkey, struct stint_bytes *out)
{
	unsigned char *der = NULL;
	int len = i2d_PUBKEY(pkey, &der), r = -1;

	*out = (struct stint_bytes){NULL, 0};
	/* stint_bytes are freed with free(), not OPENSSL_free(). */
	if (len > 0)
		r = stint_bytes_copy(out, der, (size_t)len);
	OPENSSL_free(der);
	return r;
}

int
stint_backend_ecdsa_der(const uint8_t *rs, size_t len, uint8_t *der,
			size_t *der_len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = NULL, *ss = NULL;
	unsigned char *p = der;
	int n = -1;

	if (s == NULL || len % 2 != 0)
		goto out;
	r = BN_bin2bn(rs, (int)(len / 2), NULL);
	ss = BN_bin2bn(rs + len / 2, (int)(len / 2), NULL);
	if (r == NULL || ss == NULL || ECDSA_SIG_set0(s, r, ss) != 1)
		goto out;
	r = ss = NULL;
	if (i2d_ECDSA_SIG(s, NULL) > (int)*der_len)
		goto out;
	n = i2d_ECDSA_SIG(s, &p);
out:
	BN_free(r);
	BN_free(ss);
	ECDSA_SIG_free(s);
	if (n <= 0)
		return -1;
	*der_len = (size_t)n;
	return 0;
}
