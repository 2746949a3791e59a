/*
 * TPM2_Certify evidence: encoding, and the offline verification a CA runs.
 * Nothing here talks to a TPM; the verifier needs only the document, the
 * enrolled AK public key, its nonce and the task id. Structures are parsed
 * with tss2-mu, signatures checked with OpenSSL.
 */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include "attest/backend_tpm.h"
#include "attest/tpm_evidence.h"
#include "attest/backend/shared.h"
#include "common/bytes.h"

#define BLOB_MAX 65536

static const char doc_magic[8] = {'S', 'T', 'I', 'N', 'T', 'T', 'P', 'M'};

/* --- encoding ----------------------------------------------------------- */

static void
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static uint32_t
get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t
get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

#define HEAD_LEN (8 + 2 + 8 + 8 + 8)
#define N_BLOBS  6

/* The document's byte strings, in their order on the wire. */
static void
blobs_of(struct stint_tpm_evidence *ev, struct stint_bytes *b[N_BLOBS])
{
	b[0] = &ev->attest;
	b[1] = &ev->signature;
	b[2] = &ev->key_public;
	b[3] = &ev->ak_public;
	b[4] = &ev->nv_public;
	b[5] = &ev->ek_cert;
}

int
stint_tpm_evidence_encode(const struct stint_tpm_evidence *ev,
			  struct stint_bytes *out)
{
	struct stint_tpm_evidence v = *ev; /* shallow: only read */
	struct stint_bytes *b[N_BLOBS];
	size_t len = HEAD_LEN, off;
	uint8_t *p;
	int i;

	blobs_of(&v, b);
	for (i = 0; i < N_BLOBS; i++) {
		if (b[i]->len > BLOB_MAX)
			return -1;
		len += 4 + b[i]->len;
	}
	if ((p = malloc(len)) == NULL)
		return -1;
	memcpy(p, doc_magic, 8);
	p[8] = 0;
	p[9] = STINT_TPM_EVIDENCE_VERSION;
	put_u64(p + 10, ev->deadline);
	put_u64(p + 18, ev->counter);
	put_u64(p + 26, (uint64_t)ev->not_after);
	off = HEAD_LEN;
	for (i = 0; i < N_BLOBS; i++) {
		put_u32(p + off, (uint32_t)b[i]->len);
		if (b[i]->len > 0)
			memcpy(p + off + 4, b[i]->ptr, b[i]->len);
		off += 4 + b[i]->len;
	}
	out->ptr = p;
	out->len = len;
	return 0;
}

int
stint_tpm_evidence_decode(const uint8_t *doc, size_t len,
			  struct stint_tpm_evidence *ev, char *err,
			  size_t errlen)
{
	struct stint_bytes *b[N_BLOBS];
	size_t off = HEAD_LEN;
	uint32_t n;
	int i;

	memset(ev, 0, sizeof(*ev));
	blobs_of(ev, b);
	if (len < HEAD_LEN || memcmp(doc, doc_magic, 8) != 0 || doc[8] != 0 ||
	    doc[9] != STINT_TPM_EVIDENCE_VERSION) {
		snprintf(err, errlen,
			 "document: not a Stint TPM evidence document "
			 "(version %d)",
			 STINT_TPM_EVIDENCE_VERSION);
		return -1;
	}
	ev->deadline = get_u64(doc + 10);
	ev->counter = get_u64(doc + 18);
	ev->not_after = (int64_t)get_u64(doc + 26);
	for (i = 0; i < N_BLOBS; i++) {
		if (len - off < 4 || (n = get_u32(doc + off)) > len - off - 4) {
			snprintf(err, errlen, "document: truncated");
			memset(ev, 0, sizeof(*ev));
			return -1;
		}
		b[i]->ptr = (uint8_t *)(doc + off + 4);
		b[i]->len = n;
		off += 4 + n;
	}
	if (off != len) {
		snprintf(err, errlen, "document: trailing bytes");
		memset(ev, 0, sizeof(*ev));
		return -1;
	}
	return 0;
}

void
stint_tpm_evidence_free(struct stint_tpm_evidence *ev)
{
	struct stint_bytes *b[N_BLOBS];
	int i;

	blobs_of(ev, b);
	for (i = 0; i < N_BLOBS; i++)
		stint_bytes_clear(b[i]);
}

void
stint_tpm_evidence_info_free(struct stint_tpm_evidence_info *info)
{
	if (info == NULL)
		return;
	stint_bytes_clear(&info->key_spki);
	stint_bytes_clear(&info->ek_cert);
}

/* --- crypto helpers ----------------------------------------------------------
 */

static int
sha256(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int n = 0;
	int ok;

	ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(md, a, alen) == 1 &&
	     (blen == 0 || EVP_DigestUpdate(md, b, blen) == 1) &&
	     EVP_DigestFinal_ex(md, out, &n) == 1 && n == 32;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

/* One policy step: new = H(old || cc || args_hash [|| name]). */
static int
policy_extend(uint8_t digest[32], uint32_t cc, const uint8_t args[32],
	      const uint8_t *name, size_t name_len)
{
	uint8_t buf[32 + 4 + 32 + sizeof(TPMU_NAME)];
	size_t off = 0;

	if (name_len > sizeof(TPMU_NAME))
		return -1;
	memcpy(buf, digest, 32);
	off = 32;
	put_u32(buf + off, cc);
	off += 4;
	memcpy(buf + off, args, 32);
	off += 32;
	if (name_len > 0)
		memcpy(buf + off, name, name_len);
	off += name_len;
	return sha256(buf, off, NULL, 0, digest);
}

/* args = H(operandB || offset || operation), Part 3 PolicyCounterTimer and
 * PolicyNV. */
static int
policy_args(uint64_t operand, uint16_t offset, uint16_t op, uint8_t out[32])
{
	uint8_t buf[12];

	put_u64(buf, operand);
	buf[8] = (uint8_t)(offset >> 8);
	buf[9] = (uint8_t)offset;
	buf[10] = (uint8_t)(op >> 8);
	buf[11] = (uint8_t)op;
	return sha256(buf, sizeof(buf), NULL, 0, out);
}

int
stint_tpm_policy_digest(uint64_t deadline, uint64_t counter,
			const uint8_t *nv_name, size_t nv_name_len,
			uint8_t out[32])
{
	uint8_t args[32];

	memset(out, 0, 32);
	if (policy_args(deadline, 8, TPM2_EO_UNSIGNED_LT, args) != 0 ||
	    policy_extend(out, TPM2_CC_PolicyCounterTimer, args, NULL, 0) !=
		    0 ||
	    policy_args(counter, 0, TPM2_EO_EQ, args) != 0 ||
	    policy_extend(out, TPM2_CC_PolicyNV, args, nv_name, nv_name_len) !=
		    0)
		return -1;
	return 0;
}

/* Name = nameAlg || H(marshalled public area); SHA-256 only. */
static int
name_of(uint16_t name_alg, const uint8_t *area, size_t area_len,
	uint8_t out[34])
{
	if (name_alg != TPM2_ALG_SHA256)
		return -1;
	out[0] = (uint8_t)(name_alg >> 8);
	out[1] = (uint8_t)name_alg;
	return sha256(area, area_len, NULL, 0, out + 2);
}

int
stint_tpm_pkey_from_public(const TPMT_PUBLIC *pub, EVP_PKEY **out)
{
	const TPMS_ECC_POINT *p = &pub->unique.ecc;
	uint32_t exp = pub->parameters.rsaDetail.exponent;
	BIGNUM *n = NULL, *e = NULL;
	uint8_t point[65];
	int r = -1;

	*out = NULL;
	if (pub->type == TPM2_ALG_ECC) {
		if (pub->parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 ||
		    p->x.size > 32 || p->y.size > 32)
			return -1;
		memset(point, 0, sizeof(point));
		point[0] = 0x04;
		memcpy(point + 1 + 32 - p->x.size, p->x.buffer, p->x.size);
		memcpy(point + 1 + 64 - p->y.size, p->y.buffer, p->y.size);
		return stint_backend_pkey_ec("prime256v1", point, sizeof(point),
					     out);
	}
	if (pub->type != TPM2_ALG_RSA)
		return -1;
	if ((n = BN_bin2bn(pub->unique.rsa.buffer, pub->unique.rsa.size,
			   NULL)) != NULL &&
	    (e = BN_new()) != NULL && BN_set_word(e, exp != 0 ? exp : 65537))
		r = stint_backend_pkey_rsa(n, e, out);
	BN_free(n);
	BN_free(e);
	return r;
}

static int
public_parse(const struct stint_bytes *b, TPM2B_PUBLIC *pub)
{
	size_t off = 0;

	memset(pub, 0, sizeof(*pub));
	return Tss2_MU_TPM2B_PUBLIC_Unmarshal(b->ptr, b->len, &off, pub) ==
				       TSS2_RC_SUCCESS &&
			       off == b->len
		       ? 0
		       : -1;
}

/* The enrolled AK: PEM SubjectPublicKeyInfo, or a marshalled TPM2B_PUBLIC. */
static int
expected_ak(const uint8_t *ak, size_t ak_len, EVP_PKEY **out)
{
	struct stint_bytes b = {(uint8_t *)ak, ak_len};
	TPM2B_PUBLIC pub;
	BIO *bio;

	*out = NULL;
	if (ak_len > 10 && memcmp(ak, "-----BEGIN", 10) == 0) {
		if ((bio = BIO_new_mem_buf(ak, (int)ak_len)) == NULL)
			return -1;
		*out = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
		BIO_free(bio);
		return *out != NULL ? 0 : -1;
	}
	if (public_parse(&b, &pub) != 0)
		return -1;
	return stint_tpm_pkey_from_public(&pub.publicArea, out);
}

static int
ecdsa_verify(EVP_PKEY *key, const TPMT_SIGNATURE *sig, const uint8_t *msg,
	     size_t msg_len)
{
	const TPMS_SIGNATURE_ECC *e = &sig->signature.ecdsa;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	EVP_MD_CTX *md = NULL;
	int len, ok = 0;

	if (sig->sigAlg != TPM2_ALG_ECDSA || e->hash != TPM2_ALG_SHA256)
		return 0;
	if ((r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL)) ==
		    NULL ||
	    (s = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL)) ==
		    NULL ||
	    (es = ECDSA_SIG_new()) == NULL || !ECDSA_SIG_set0(es, r, s))
		goto out;
	r = s = NULL; /* owned by es */
	if ((len = i2d_ECDSA_SIG(es, &der)) <= 0 ||
	    (md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1)
		goto out;
	ok = EVP_DigestVerify(md, der, (size_t)len, msg, msg_len) == 1;
out:
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	BN_free(r);
	BN_free(s);
	return ok;
}

/* The attributes that make the key TPM-bound, TPM-made, sign-only and
 * usable only through its policy. */
static const char *
attributes_violation(TPMA_OBJECT a)
{
	if (!(a & TPMA_OBJECT_FIXEDTPM))
		return "fixedTPM is clear";
	if (!(a & TPMA_OBJECT_FIXEDPARENT))
		return "fixedParent is clear";
	if (!(a & TPMA_OBJECT_SENSITIVEDATAORIGIN))
		return "sensitiveDataOrigin is clear";
	if (!(a & TPMA_OBJECT_SIGN_ENCRYPT))
		return "sign is clear";
	if (a & TPMA_OBJECT_USERWITHAUTH)
		return "userWithAuth is set (the key would be usable without "
		       "its policy)";
	if (a & TPMA_OBJECT_DECRYPT)
		return "decrypt is set";
	if (a & TPMA_OBJECT_RESTRICTED)
		return "restricted is set";
	return NULL;
}

/* --- verification
 * --------------------------------------------------------------- */

int
stint_tpm_evidence_verify(const uint8_t *doc, size_t len, const uint8_t *ak,
			  size_t ak_len, const uint8_t *nonce, size_t nonce_len,
			  const char *task_id,
			  struct stint_tpm_evidence_info *info, char *err,
			  size_t errlen)
{
	struct stint_tpm_evidence ev;
	TPM2B_PUBLIC key_pub, ak_pub;
	TPM2B_NV_PUBLIC nv_pub;
	TPMT_SIGNATURE sig;
	TPMS_ATTEST att;
	EVP_PKEY *want_ak = NULL, *doc_ak = NULL, *task_key = NULL;
	uint8_t area[sizeof(TPMT_PUBLIC) + 64], qual[32], name[34];
	uint8_t nv_name[34], policy[32];
	unsigned char *spki = NULL;
	const char *why;
	size_t off;
	int n, r = -1;

	if (info != NULL)
		memset(info, 0, sizeof(*info));
	if (stint_tpm_evidence_decode(doc, len, &ev, err, errlen) != 0)
		return -1;

	/* 1. The signer is the enrolled attestation key. */
	if (expected_ak(ak, ak_len, &want_ak) != 0) {
		snprintf(err, errlen,
			 "AK: the enrolled attestation key is not a PEM public "
			 "key or TPM2B_PUBLIC");
		goto out;
	}
	if (public_parse(&ev.ak_public, &ak_pub) != 0 ||
	    stint_tpm_pkey_from_public(&ak_pub.publicArea, &doc_ak) != 0) {
		snprintf(err, errlen,
			 "AK: the document's AK public area "
			 "does not parse");
		goto out;
	}
	if (EVP_PKEY_eq(want_ak, doc_ak) != 1) {
		snprintf(err, errlen,
			 "AK: the document names an attestation "
			 "key other than the enrolled one");
		goto out;
	}

	/* 2. The AK signed exactly these attest bytes. */
	off = 0;
	memset(&sig, 0, sizeof(sig));
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(ev.signature.ptr, ev.signature.len,
					     &off, &sig) != TSS2_RC_SUCCESS ||
	    off != ev.signature.len ||
	    !ecdsa_verify(want_ak, &sig, ev.attest.ptr, ev.attest.len)) {
		snprintf(err, errlen,
			 "signature: the AK signature over the "
			 "attest structure does not verify");
		goto out;
	}

	/* 3. A TPM-made certification of one object. */
	off = 0;
	memset(&att, 0, sizeof(att));
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(ev.attest.ptr, ev.attest.len, &off,
					  &att) != TSS2_RC_SUCCESS ||
	    off != ev.attest.len) {
		snprintf(err, errlen, "attest: the TPMS_ATTEST does not parse");
		goto out;
	}
	if (att.magic != TPM2_GENERATED_VALUE) {
		snprintf(err, errlen,
			 "magic: 0x%08x is not TPM_GENERATED_VALUE",
			 (unsigned)att.magic);
		goto out;
	}
	if (att.type != TPM2_ST_ATTEST_CERTIFY) {
		snprintf(err, errlen,
			 "type: 0x%04x is not TPM_ST_ATTEST_CERTIFY",
			 (unsigned)att.type);
		goto out;
	}

	/* 4. Fresh, and for this task. */
	if (sha256(nonce, nonce_len, task_id, strlen(task_id), qual) != 0 ||
	    att.extraData.size != 32 ||
	    CRYPTO_memcmp(att.extraData.buffer, qual, 32) != 0) {
		snprintf(err, errlen,
			 "nonce: extraData is not SHA-256(nonce || task id)");
		goto out;
	}

	/* 5. The key's attributes. */
	if (public_parse(&ev.key_public, &key_pub) != 0) {
		snprintf(err, errlen, "key: the public area does not parse");
		goto out;
	}
	if ((why = attributes_violation(key_pub.publicArea.objectAttributes)) !=
	    NULL) {
		snprintf(err, errlen, "attributes: %s", why);
		goto out;
	}

	/* 6. The kill-switch index is a counter that has been written. */
	off = 0;
	memset(&nv_pub, 0, sizeof(nv_pub));
	if (Tss2_MU_TPM2B_NV_PUBLIC_Unmarshal(ev.nv_public.ptr,
					      ev.nv_public.len, &off,
					      &nv_pub) != TSS2_RC_SUCCESS ||
	    off != ev.nv_public.len) {
		snprintf(err, errlen,
			 "nv: the NV index public area does not parse");
		goto out;
	}
	if (((nv_pub.nvPublic.attributes & TPMA_NV_TPM2_NT_MASK) >>
	     TPMA_NV_TPM2_NT_SHIFT) != TPM2_NT_COUNTER ||
	    !(nv_pub.nvPublic.attributes & TPMA_NV_WRITTEN)) {
		snprintf(err, errlen,
			 "nv: index 0x%08x is not a written NV counter",
			 (unsigned)nv_pub.nvPublic.nvIndex);
		goto out;
	}
	off = 0;
	if (Tss2_MU_TPMS_NV_PUBLIC_Marshal(&nv_pub.nvPublic, area, sizeof(area),
					   &off) != TSS2_RC_SUCCESS ||
	    name_of(nv_pub.nvPublic.nameAlg, area, off, nv_name) != 0) {
		snprintf(err, errlen, "nv: cannot compute the index Name");
		goto out;
	}

	/* 7. The policy binds the deadline and the counter value. */
	if (stint_tpm_policy_digest(ev.deadline, ev.counter, nv_name,
				    sizeof(nv_name), policy) != 0 ||
	    key_pub.publicArea.nameAlg != TPM2_ALG_SHA256 ||
	    key_pub.publicArea.authPolicy.size != 32 ||
	    CRYPTO_memcmp(key_pub.publicArea.authPolicy.buffer, policy, 32) !=
		    0) {
		snprintf(err, errlen,
			 "policy: authPolicy is not PolicyCounterTimer(clock < "
			 "%llu) AND PolicyNV(0x%08x == %llu)",
			 (unsigned long long)ev.deadline,
			 (unsigned)nv_pub.nvPublic.nvIndex,
			 (unsigned long long)ev.counter);
		goto out;
	}

	/* 8. The certified object is this public area. */
	off = 0;
	if (Tss2_MU_TPMT_PUBLIC_Marshal(&key_pub.publicArea, area, sizeof(area),
					&off) != TSS2_RC_SUCCESS ||
	    name_of(key_pub.publicArea.nameAlg, area, off, name) != 0 ||
	    att.attested.certify.name.size != sizeof(name) ||
	    memcmp(att.attested.certify.name.name, name, sizeof(name)) != 0) {
		snprintf(
			err, errlen,
			"name: the certified Name is not the Name of the key's "
			"public area");
		goto out;
	}

	if (stint_tpm_pkey_from_public(&key_pub.publicArea, &task_key) != 0 ||
	    (n = i2d_PUBKEY(task_key, &spki)) <= 0) {
		snprintf(err, errlen, "key: unusable public key");
		goto out;
	}
	if (info != NULL) {
		info->deadline = ev.deadline;
		info->counter = ev.counter;
		info->clock = att.clockInfo.clock;
		info->not_after = ev.not_after;
		info->nv_index = nv_pub.nvPublic.nvIndex;
		if (stint_bytes_copy(&info->key_spki, spki, (size_t)n) != 0 ||
		    stint_bytes_dup(&info->ek_cert, &ev.ek_cert) != 0) {
			stint_tpm_evidence_info_free(info);
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	r = 0;
out:
	OPENSSL_free(spki);
	EVP_PKEY_free(task_key);
	EVP_PKEY_free(doc_ak);
	EVP_PKEY_free(want_ak);
	return r;
}
