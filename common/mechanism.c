/*
 * The signing mechanisms Stint offers. One table drives the module's
 * mechanism list, stintd's policy names and the backend's raw operation.
 */
#include <string.h>

#include "common/mechanism.h"
#include "stint/wire.h"

static const struct stint_mech mechs[] = {
	{CKM_ECDSA, "CKM_ECDSA", "ecdsa", true, CKM_ECDSA, 0, false},
	{CKM_ECDSA_SHA256, "CKM_ECDSA_SHA256", "ecdsa-sha256", true, CKM_ECDSA,
	 CKM_SHA256, false},
	{CKM_ECDSA_SHA384, "CKM_ECDSA_SHA384", "ecdsa-sha384", true, CKM_ECDSA,
	 CKM_SHA384, false},
	{CKM_ECDSA_SHA512, "CKM_ECDSA_SHA512", "ecdsa-sha512", true, CKM_ECDSA,
	 CKM_SHA512, false},
	{CKM_RSA_PKCS, "CKM_RSA_PKCS", "rsa-pkcs", false, CKM_RSA_PKCS, 0,
	 false},
	{CKM_RSA_PKCS_PSS, "CKM_RSA_PKCS_PSS", "rsa-pss", false,
	 CKM_RSA_PKCS_PSS, 0, true},
	{CKM_SHA256_RSA_PKCS, "CKM_SHA256_RSA_PKCS", "sha256-rsa-pkcs", false,
	 CKM_RSA_PKCS, CKM_SHA256, false},
	{CKM_SHA384_RSA_PKCS, "CKM_SHA384_RSA_PKCS", "sha384-rsa-pkcs", false,
	 CKM_RSA_PKCS, CKM_SHA384, false},
	{CKM_SHA512_RSA_PKCS, "CKM_SHA512_RSA_PKCS", "sha512-rsa-pkcs", false,
	 CKM_RSA_PKCS, CKM_SHA512, false},
	{CKM_SHA256_RSA_PKCS_PSS, "CKM_SHA256_RSA_PKCS_PSS", "sha256-rsa-pss",
	 false, CKM_RSA_PKCS_PSS, CKM_SHA256, true},
	{CKM_SHA384_RSA_PKCS_PSS, "CKM_SHA384_RSA_PKCS_PSS", "sha384-rsa-pss",
	 false, CKM_RSA_PKCS_PSS, CKM_SHA384, true},
	{CKM_SHA512_RSA_PKCS_PSS, "CKM_SHA512_RSA_PKCS_PSS", "sha512-rsa-pss",
	 false, CKM_RSA_PKCS_PSS, CKM_SHA512, true},
};

#define N_MECHS (sizeof(mechs) / sizeof(mechs[0]))

const struct stint_mech *
stint_mech_find(CK_MECHANISM_TYPE mech)
{
	for (size_t i = 0; i < N_MECHS; i++)
		if (mechs[i].mech == mech)
			return &mechs[i];
	return NULL;
}

const struct stint_mech *
stint_mech_by_name(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < N_MECHS; i++)
		if (strcmp(mechs[i].name, name) == 0 ||
		    strcmp(mechs[i].short_name, name) == 0)
			return &mechs[i];
	return NULL;
}

const struct stint_mech *
stint_mech_all(size_t *n)
{
	*n = N_MECHS;
	return mechs;
}

bool
stint_mech_fits_key(const struct stint_mech *m, uint32_t key_type)
{
	if (m == NULL)
		return false;
	switch (key_type) {
	case STINT_KEY_EC_P256:
	case STINT_KEY_EC_P384:
		return m->ec;
	case STINT_KEY_RSA_2048:
	case STINT_KEY_RSA_3072:
		return !m->ec;
	default:
		return false;
	}
}

/* SHA-1 and SHA-224 are known (names, lengths) but never PSS hashes:
 * stintd's backends sign PSS with SHA-256/384/512 only. */
static const struct stint_hash hashes[] = {
	{CKM_SHA_1, CKG_MGF1_SHA1, 20, "SHA1", false},
	{CKM_SHA224, CKG_MGF1_SHA224, 28, "SHA224", false},
	{CKM_SHA256, CKG_MGF1_SHA256, 32, "SHA256", true},
	{CKM_SHA384, CKG_MGF1_SHA384, 48, "SHA384", true},
	{CKM_SHA512, CKG_MGF1_SHA512, 64, "SHA512", true},
};

const struct stint_hash *
stint_hash_find(CK_MECHANISM_TYPE hash)
{
	for (size_t i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++)
		if (hashes[i].hash == hash)
			return &hashes[i];
	return NULL;
}

size_t
stint_hash_len(CK_MECHANISM_TYPE hash)
{
	const struct stint_hash *h = stint_hash_find(hash);

	return h != NULL ? h->len : 0;
}

const char *
stint_pss_params_check(const struct stint_mech *m, CK_MECHANISM_TYPE hash,
		       CK_RSA_PKCS_MGF_TYPE mgf, uint64_t salt)
{
	const struct stint_hash *h = stint_hash_find(hash);

	if (m == NULL || !m->pss)
		return "not a PSS mechanism";
	if (m->hash != 0 && hash != m->hash)
		return "PSS hashAlg does not match the mechanism";
	if (h == NULL || !h->pss || mgf != h->mgf)
		return "unsupported PSS hash or MGF";
	if (salt > STINT_PSS_SALT_MAX)
		return "PSS salt length out of range";
	return NULL;
}

/* DER of DigestInfo { AlgorithmIdentifier { oid, NULL }, OCTET STRING }
 * up to the digest itself (RFC 8017, section 9.2, note 1). */
static const uint8_t di_sha1[] = {0x30, 0x21, 0x30, 0x09, 0x06,
				  0x05, 0x2b, 0x0e, 0x03, 0x02,
				  0x1a, 0x05, 0x00, 0x04, 0x14};
static const uint8_t di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
				    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
				    0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t di_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
				    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
				    0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
				    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
				    0x03, 0x05, 0x00, 0x04, 0x40};

const uint8_t *
stint_digestinfo_prefix(CK_MECHANISM_TYPE hash, size_t *len)
{
	switch (hash) {
	case CKM_SHA_1:
		*len = sizeof(di_sha1);
		return di_sha1;
	case CKM_SHA256:
		*len = sizeof(di_sha256);
		return di_sha256;
	case CKM_SHA384:
		*len = sizeof(di_sha384);
		return di_sha384;
	case CKM_SHA512:
		*len = sizeof(di_sha512);
		return di_sha512;
	default:
		*len = 0;
		return NULL;
	}
}
