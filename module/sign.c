/*
 * C_SignInit, C_Sign, C_SignUpdate, C_SignFinal.
 *
 * Hash-and-sign mechanisms (CKM_ECDSA_SHA256, CKM_SHA256_RSA_PKCS_PSS, ...)
 * are hashed here and the digest goes to stintd with the application's
 * mechanism; raw mechanisms (CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS)
 * send the data as given. Either way a signature costs one SIGN round trip,
 * made without the state lock so threads sign in parallel.
 *
 * stintd's refusals become these return values:
 *
 *   NOT_LIVE, NOT_YOURS, NO_AGENT, BUDGET  CKR_KEY_FUNCTION_NOT_PERMITTED
 *        (the key exists but may not sign: task ended or expired, another
 *        agent's task, no agent, signature budget spent)
 *   MECHANISM                              CKR_MECHANISM_INVALID
 *   BAD_REQUEST                            CKR_DATA_INVALID
 *        (the module checks everything else, so the data is what stintd
 *        found wrong for the mechanism)
 *   TOO_LARGE                              CKR_DATA_LEN_RANGE
 *   BACKEND, INTERNAL, anything else       CKR_DEVICE_ERROR
 *        (nothing was signed)
 *   no answer (stintd absent, timeout)     CKR_DEVICE_ERROR
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/log.h"
#include "common/mechanism.h"
#include "module/module.h"

/* Raw input is a digest or a DigestInfo (mechanism.h). */
#define RAW_MAX STINT_RAW_INPUT_MAX

struct sign_op {
	struct sign_key key;
	const struct stint_mech *mech;
	CK_RSA_PKCS_PSS_PARAMS pss;
	EVP_MD_CTX *md; /* hash-and-sign mechanisms */
	uint8_t raw[RAW_MAX];
	size_t raw_len;
	bool busy;   /* a thread is hashing or waiting for stintd */
	bool orphan; /* its session closed meanwhile: that thread frees it */
};

void
sign_op_free(struct sign_op *op)
{
	if (op == NULL)
		return;
	EVP_MD_CTX_free(op->md);
	OPENSSL_cleanse(op, sizeof(*op));
	free(op);
}

void
sign_op_abandon(struct sign_op *op)
{
	if (op->busy)
		op->orphan = true;
	else
		sign_op_free(op);
}

static const EVP_MD *
md_of(CK_MECHANISM_TYPE hash)
{
	const struct stint_hash *h = stint_hash_find(hash);

	return h != NULL ? EVP_get_digestbyname(h->md_name) : NULL;
}

static CK_RV
check_params(const CK_MECHANISM *mech, const struct stint_mech *m,
	     struct sign_op *op)
{
	size_t hlen;

	if (!m->pss)
		return mech->ulParameterLen == 0 ? CKR_OK
						 : CKR_MECHANISM_PARAM_INVALID;
	if (mech->pParameter == NULL ||
	    mech->ulParameterLen != sizeof(CK_RSA_PKCS_PSS_PARAMS))
		return CKR_MECHANISM_PARAM_INVALID;
	memcpy(&op->pss, mech->pParameter, sizeof(op->pss));
	/* stintd's rule (common/mechanism.c), so that what it would refuse
	 * is refused here, without a round trip. */
	if (stint_pss_params_check(m, op->pss.hashAlg, op->pss.mgf,
				   op->pss.sLen) != NULL)
		return CKR_MECHANISM_PARAM_INVALID;
	hlen = stint_hash_len(op->pss.hashAlg);
	if (op->key.sig_len < hlen + 2 ||
	    op->pss.sLen > op->key.sig_len - hlen - 2)
		return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

static bool
mech_allowed(const struct sign_key *k, CK_MECHANISM_TYPE mech)
{
	size_t i;

	for (i = 0; i < k->n_mechs; i++)
		if (k->mechs[i] == mech)
			return true;
	return false;
}

static CK_RV
op_new(const CK_MECHANISM *mech, CK_OBJECT_HANDLE hKey, struct sign_op **opp)
{
	struct sign_op *op;
	CK_RV rv;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return CKR_HOST_MEMORY;
	if ((rv = objects_sign_key(hKey, &op->key)) != CKR_OK)
		goto fail;
	rv = CKR_MECHANISM_INVALID;
	if ((op->mech = stint_mech_find(mech->mechanism)) == NULL)
		goto fail;
	rv = CKR_KEY_TYPE_INCONSISTENT;
	if (!stint_mech_fits_key(op->mech, op->key.key_type))
		goto fail;
	/* CKA_ALLOWED_MECHANISMS: stintd would refuse it anyway. */
	rv = CKR_MECHANISM_INVALID;
	if (!mech_allowed(&op->key, mech->mechanism))
		goto fail;
	if ((rv = check_params(mech, op->mech, op)) != CKR_OK)
		goto fail;
	if (op->mech->hash != 0) {
		rv = CKR_HOST_MEMORY;
		if ((op->md = EVP_MD_CTX_new()) == NULL)
			goto fail;
		rv = CKR_MECHANISM_INVALID;
		if (md_of(op->mech->hash) == NULL ||
		    !EVP_DigestInit_ex(op->md, md_of(op->mech->hash), NULL))
			goto fail;
	}
	*opp = op;
	return CKR_OK;
fail:
	sign_op_free(op);
	return rv;
}

CK_RV
C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
	   CK_OBJECT_HANDLE hKey)
{
	struct session *s;
	struct sign_op *op = NULL;
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	if (pMechanism == NULL)
		return TRACE(CKR_ARGUMENTS_BAD);
	mod_lock();
	if ((s = session_get(hSession)) == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (s->sign != NULL)
		rv = CKR_OPERATION_ACTIVE;
	else if ((rv = op_new(pMechanism, hKey, &op)) == CKR_OK)
		s->sign = op;
	mod_unlock();
	return TRACE(rv);
}

/* Claims the session's operation for this thread (op->busy). */
static CK_RV
op_take(CK_SESSION_HANDLE h, struct sign_op **opp)
{
	struct session *s;

	if ((s = session_get(h)) == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	if (s->sign == NULL)
		return CKR_OPERATION_NOT_INITIALIZED;
	/* Another thread is inside this session's operation: PKCS#11 asks
	 * applications not to do that; refuse rather than corrupt it. */
	if (s->sign->busy)
		return CKR_OPERATION_ACTIVE;
	s->sign->busy = true;
	*opp = s->sign;
	return CKR_OK;
}

/* Gives the operation back; end: it is over (finished or failed). */
static void
op_release(CK_SESSION_HANDLE h, struct sign_op *op, bool end)
{
	struct session *s;

	mod_lock();
	if (op->orphan) {
		sign_op_free(op);
	} else if (end) {
		if ((s = session_get(h)) != NULL && s->sign == op)
			s->sign = NULL;
		sign_op_free(op);
	} else {
		op->busy = false;
	}
	mod_unlock();
}

static CK_RV
feed(struct sign_op *op, const uint8_t *data, size_t len)
{
	if (op->md != NULL)
		return EVP_DigestUpdate(op->md, data, len)
			       ? CKR_OK
			       : CKR_FUNCTION_FAILED;
	if (len > RAW_MAX - op->raw_len)
		return CKR_DATA_LEN_RANGE;
	if (len > 0)
		memcpy(op->raw + op->raw_len, data, len);
	op->raw_len += len;
	return CKR_OK;
}

/* What the raw mechanisms accept, checked before stintd is asked. */
static CK_RV
check_raw(const struct sign_op *op)
{
	if (op->raw_len == 0)
		return CKR_DATA_LEN_RANGE;
	switch (op->mech->mech) {
	case CKM_RSA_PKCS:
		/* PKCS#1 v1.5 padding needs 11 bytes. */
		return op->raw_len + 11 <= op->key.sig_len ? CKR_OK
							   : CKR_DATA_LEN_RANGE;
	case CKM_RSA_PKCS_PSS:
		return op->raw_len == stint_hash_len(op->pss.hashAlg)
			       ? CKR_OK
			       : CKR_DATA_LEN_RANGE;
	default:
		return CKR_OK;
	}
}

static CK_RV
status_rv(uint64_t status)
{
	switch (status) {
	case STINT_OK:
		return CKR_OK;
	case STINT_E_NOT_LIVE:
	case STINT_E_NOT_YOURS:
	case STINT_E_NO_AGENT:
	case STINT_E_BUDGET:
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	case STINT_E_MECHANISM:
		return CKR_MECHANISM_INVALID;
	case STINT_E_BAD_REQUEST:
		return CKR_DATA_INVALID;
	case STINT_E_TOO_LARGE:
		return CKR_DATA_LEN_RANGE;
	default:
		return CKR_DEVICE_ERROR;
	}
}

/* The SIGN round trip; sig has room for *sig_len bytes. */
static CK_RV
finish(struct sign_op *op, uint8_t *sig, CK_ULONG_PTR sig_len)
{
	struct stint_sign_req req;
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	size_t len = *sig_len;
	uint64_t status = STINT_OK;
	CK_RV rv;
	int r;

	memset(&req, 0, sizeof(req));
	memcpy(req.task, op->key.task, sizeof(req.task));
	memcpy(req.as_agent, op->key.as_agent, sizeof(req.as_agent));
	req.mech = op->mech->mech;
	if (op->mech->pss) {
		req.has_pss = true;
		req.pss_hash = op->pss.hashAlg;
		req.pss_mgf = op->pss.mgf;
		req.pss_salt = op->pss.sLen;
	}
	if (op->md != NULL) {
		if (!EVP_DigestFinal_ex(op->md, digest, &dlen))
			return CKR_FUNCTION_FAILED;
		req.data.ptr = digest;
		req.data.len = dlen;
	} else {
		if ((rv = check_raw(op)) != CKR_OK)
			return rv;
		req.data.ptr = op->raw;
		req.data.len = op->raw_len;
	}
	r = client_sign(&req, &status, sig, &len);
	if (r == STINT_WIRE_TOO_LARGE)
		return CKR_DATA_LEN_RANGE;
	if (r != 0)
		return CKR_DEVICE_ERROR;
	if ((rv = status_rv(status)) != CKR_OK)
		return rv;
	*sig_len = len;
	return CKR_OK;
}

/*
 * The signature length is known before signing (EC r||s, RSA modulus), so
 * a length query or a short buffer is answered without a round trip and
 * leaves the operation active, as PKCS#11 requires.
 */
static CK_RV
sign_common(CK_SESSION_HANDLE h, const CK_BYTE *data, CK_ULONG data_len,
	    bool single, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	struct sign_op *op;
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return rv;
	if (sig_len == NULL || (single && data == NULL && data_len > 0))
		return CKR_ARGUMENTS_BAD;
	mod_lock();
	if ((rv = op_take(h, &op)) != CKR_OK) {
		mod_unlock();
		return rv;
	}
	if (sig == NULL || *sig_len < op->key.sig_len) {
		rv = sig == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
		*sig_len = op->key.sig_len;
		op->busy = false;
		mod_unlock();
		return rv;
	}
	mod_unlock();
	if (single)
		rv = feed(op, data, data_len);
	if (rv == CKR_OK)
		rv = finish(op, sig, sig_len);
	op_release(h, op, true);
	return rv;
}

CK_RV
C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
       CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	return TRACE(sign_common(hSession, pData, ulDataLen, true, pSignature,
				 pulSignatureLen));
}

CK_RV
C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
	    CK_ULONG_PTR pulSignatureLen)
{
	return TRACE(sign_common(hSession, NULL, 0, false, pSignature,
				 pulSignatureLen));
}

CK_RV
C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
	struct sign_op *op;
	CK_RV rv;

	if ((rv = mod_check()) != CKR_OK)
		return TRACE(rv);
	if (pPart == NULL && ulPartLen > 0)
		return TRACE(CKR_ARGUMENTS_BAD);
	mod_lock();
	rv = op_take(hSession, &op);
	mod_unlock();
	if (rv != CKR_OK)
		return TRACE(rv);
	rv = feed(op, pPart, ulPartLen);
	/* Any failure ends the operation. */
	op_release(hSession, op, rv != CKR_OK);
	return TRACE(rv);
}
