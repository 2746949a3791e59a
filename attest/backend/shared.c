/*
 * Helpers both backends share (shared.h).
 */

#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include "attest/backend/shared.h"

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
