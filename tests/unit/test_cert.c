/* The Stint CA's certificates, built with software keys: the root, the
 * CSR, the leaf with its task extension, chain checks, the relying-party
 * check, and the EVP_PKEY that signs through a backend (with a fake
 * backend that signs in software, so backend_sign.c is tested too). */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "attest/ca.h"
#include "attest/cert_ext.h"
#include "common/audience.h"
#include "stint/verify.h"

#define NOW 1900000000 /* fixed, so the checks do not depend on the clock */

struct fixture {
	EVP_PKEY *ca_key, *task_key;
	X509 *root;
	uint8_t *task_der;
	struct stint_bytes spki;
	uint8_t ev_digest[32];
	struct stint_leaf_req req;
	X509_STORE *store;
	char err[300];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	int n;

	assert_non_null(f);
	assert_non_null(f->ca_key = EVP_EC_gen("P-256"));
	assert_non_null(f->task_key = EVP_EC_gen("P-256"));
	assert_int_equal(stint_ca_root_build(f->ca_key, "example.org", NOW,
					     3650, &f->root, f->err,
					     sizeof(f->err)),
			 0);
	n = i2d_PUBKEY(f->task_key, &f->task_der);
	assert_true(n > 0);
	f->spki.ptr = f->task_der;
	f->spki.len = (size_t)n;
	memset(f->ev_digest, 0x5a, sizeof(f->ev_digest));
	f->req.trust_domain = "example.org";
	f->req.agent = "billing";
	f->req.task_id = "t-00112233445566778899aabbccddeeff";
	f->req.intent = "refund order 1234";
	f->req.parent_task = "";
	f->req.attestation_kind = "pkcs11";
	f->req.evidence_digest = f->ev_digest;
	f->req.spki = &f->spki;
	f->req.not_before = NOW - STINT_CA_SKEW;
	f->req.not_after = NOW + 600;
	assert_non_null(f->store = X509_STORE_new());
	assert_int_equal(X509_STORE_add_cert(f->store, f->root), 1);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	X509_STORE_free(f->store);
	X509_free(f->root);
	EVP_PKEY_free(f->ca_key);
	EVP_PKEY_free(f->task_key);
	OPENSSL_free(f->task_der);
	free(f);
	return 0;
}

static X509 *
issue(struct fixture *f)
{
	X509 *x = NULL;

	assert_int_equal(stint_cert_issue(f->ca_key, f->root, &f->req, &x,
					  f->err, sizeof(f->err)),
			 0);
	assert_non_null(x);
	return x;
}

static void
test_root(void **state)
{
	struct fixture *f = *state;
	char cn[128];
	BASIC_CONSTRAINTS *bc;
	int crit = -1;

	assert_int_equal(X509_check_ca(f->root), 1);
	assert_int_equal(X509_verify(f->root, f->ca_key), 1);
	bc = X509_get_ext_d2i(f->root, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_true(bc->ca);
	assert_int_equal(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(X509_get_key_usage(f->root) & KU_KEY_CERT_SIGN);
	assert_non_null(X509_get0_subject_key_id(f->root));
	X509_NAME_get_text_by_NID(X509_get_subject_name(f->root),
				  NID_commonName, cn, sizeof(cn));
	assert_string_equal(cn, "Stint CA example.org");
}

static void
test_leaf_fields(void **state)
{
	struct fixture *f = *state;
	X509 *x = issue(f);
	struct stint_task_facts facts;
	GENERAL_NAMES *san;
	const GENERAL_NAME *gn;
	BASIC_CONSTRAINTS *bc;
	ASN1_TIME *want;
	BIGNUM *serial;
	uint8_t intent[32];
	char cn[128];
	int crit = -1;

	assert_int_equal(X509_get_version(x), 2);
	assert_int_equal(X509_verify(x, f->ca_key), 1);
	/* Exactly one URI SAN with the SPIFFE ID. */
	san = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	assert_non_null(san);
	assert_int_equal(sk_GENERAL_NAME_num(san), 1);
	gn = sk_GENERAL_NAME_value(san, 0);
	assert_int_equal(gn->type, GEN_URI);
	assert_string_equal((const char *)ASN1_STRING_get0_data(
				    gn->d.uniformResourceIdentifier),
			    "spiffe://example.org/agent/billing");
	GENERAL_NAMES_free(san);
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
				  sizeof(cn));
	assert_string_equal(cn, "billing");
	/* CA:FALSE, critical; keyUsage digitalSignature only, critical. */
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_false(bc->ca);
	assert_int_equal(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(
				 x, X509_get_ext_by_NID(x, NID_key_usage, -1))),
			 1);
	assert_int_equal(X509_get_extended_key_usage(x), XKU_SSL_CLIENT);
	/* SKI and AKI = the root's SKI. */
	assert_non_null(X509_get0_subject_key_id(x));
	assert_int_equal(
		ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
				      X509_get0_subject_key_id(f->root)),
		0);
	/* notAfter is the deadline exactly; notBefore allows the skew. */
	want = ASN1_TIME_set(NULL, NOW + 600);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(x), want), 0);
	ASN1_TIME_set(want, NOW - STINT_CA_SKEW);
	assert_int_equal(ASN1_TIME_compare(X509_get0_notBefore(x), want), 0);
	ASN1_TIME_free(want);
	/* Random positive serial of at least 64 bits. */
	serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	assert_non_null(serial);
	assert_false(BN_is_negative(serial));
	assert_true(BN_num_bits(serial) >= 64);
	BN_free(serial);
	/* The task extension decodes to the facts. */
	assert_int_equal(
		stint_task_ext_get(x, NULL, &facts, f->err, sizeof(f->err)), 0);
	assert_string_equal(facts.task_id, f->req.task_id);
	assert_string_equal(facts.parent_task, "");
	assert_string_equal(facts.attestation_kind, "pkcs11");
	SHA256((const uint8_t *)f->req.intent, strlen(f->req.intent), intent);
	assert_memory_equal(facts.intent_digest, intent, 32);
	assert_memory_equal(facts.evidence_digest, f->ev_digest, 32);
	assert_int_equal(
		X509_EXTENSION_get_critical(X509_get_ext(
			x, X509_get_ext_by_OBJ(x, stint_task_ext_oid(), -1))),
		0);
	X509_free(x);
}

static void
test_serials_differ(void **state)
{
	struct fixture *f = *state;
	X509 *a = issue(f), *b = issue(f);

	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a),
					      X509_get0_serialNumber(b)),
			     0);
	X509_free(a);
	X509_free(b);
}

static void
test_verify_peer(void **state)
{
	struct fixture *f = *state;
	struct stint_peer_identity id;
	X509 *x = issue(f);

	assert_int_equal(stint_verify_peer(x, NULL, f->store, "example.org",
					   "billing", NOW, &id, f->err,
					   sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_string_equal(id.agent, "billing");
	assert_string_equal(id.trust_domain, "example.org");
	assert_string_equal(id.spiffe_id, "spiffe://example.org/agent/billing");
	assert_string_equal(id.task, f->req.task_id);
	assert_int_equal(id.not_after, NOW + 600);
	/* Any agent and trust domain when none is asked for. */
	assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL, NULL, NOW,
					   &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_int_equal(stint_verify_peer(x, NULL, f->store, "example.org",
					   "payroll", NOW, &id, f->err,
					   sizeof(f->err)),
			 STINT_VERIFY_ERR_AGENT);
	assert_int_equal(stint_verify_peer(x, NULL, f->store, "other.org", NULL,
					   NOW, &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_ERR_TRUST_DOMAIN);
	/* After the deadline, and before notBefore. */
	assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL, NULL,
					   NOW + 601, &id, f->err,
					   sizeof(f->err)),
			 STINT_VERIFY_ERR_VALIDITY);
	assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL, NULL,
					   NOW - 3600, &id, f->err,
					   sizeof(f->err)),
			 STINT_VERIFY_ERR_VALIDITY);
	X509_free(x);
}

/* The binding block (issue 12 §6): a cgroup binding with its unit and the
 * agent's exe pin round-trip through stint_verify_peer; a leaf without
 * the block (as earlier versions issued) verifies with all fields empty;
 * a control character in a bound path is refused. */
static void
test_binding(void **state)
{
	struct fixture *f = *state;
	struct stint_peer_identity id;
	uint8_t pin[32];
	X509 *x = issue(f);

	assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL, NULL, NOW,
					   &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_string_equal(id.bind_kind, "");
	assert_string_equal(id.bind_cgroup, "");
	assert_false(id.has_exe_sha256);
	X509_free(x);

	memset(pin, 0xab, sizeof(pin));
	f->req.bind_kind = "cgroup";
	f->req.bind_cgroup = "/system.slice/billing.service/worker";
	f->req.bind_unit = "billing.service";
	f->req.exe_sha256 = pin;
	x = issue(f);
	assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL, NULL, NOW,
					   &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_string_equal(id.bind_kind, "cgroup");
	assert_string_equal(id.bind_cgroup,
			    "/system.slice/billing.service/worker");
	assert_string_equal(id.bind_unit, "billing.service");
	assert_true(id.has_exe_sha256);
	assert_memory_equal(id.exe_sha256, pin, 32);
	X509_free(x);

	/* A pin alone: kind "none". A pid binding: no cgroup, no unit. */
	f->req.bind_kind = NULL;
	f->req.bind_cgroup = NULL;
	f->req.bind_unit = NULL;
	x = issue(f);
	assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL, NULL, NOW,
					   &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_string_equal(id.bind_kind, "none");
	assert_true(id.has_exe_sha256);
	X509_free(x);
	f->req.bind_kind = "pid";
	f->req.exe_sha256 = NULL;
	x = issue(f);
	assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL, NULL, NOW,
					   &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_string_equal(id.bind_kind, "pid");
	assert_string_equal(id.bind_cgroup, "");
	assert_false(id.has_exe_sha256);
	X509_free(x);

	f->req.bind_kind = "cgroup";
	f->req.bind_cgroup = "/a\nbinding pid";
	x = issue(f);
	assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL, NULL, NOW,
					   &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_ERR_TASK_EXT);
	X509_free(x);
}

static void
test_verify_peer_other_ca(void **state)
{
	struct fixture *f = *state;
	struct stint_peer_identity id;
	EVP_PKEY *k2 = EVP_EC_gen("P-256");
	X509 *root2 = NULL, *x = issue(f);
	X509_STORE *st2 = X509_STORE_new();

	assert_non_null(k2);
	assert_int_equal(stint_ca_root_build(k2, "example.org", NOW, 10, &root2,
					     f->err, sizeof(f->err)),
			 0);
	X509_STORE_add_cert(st2, root2);
	assert_int_equal(stint_verify_peer(x, NULL, st2, NULL, NULL, NOW, &id,
					   f->err, sizeof(f->err)),
			 STINT_VERIFY_ERR_CHAIN);
	/* The root itself is no client leaf. */
	assert_int_not_equal(stint_verify_peer(f->root, NULL, f->store, NULL,
					       NULL, NOW, &id, f->err,
					       sizeof(f->err)),
			     STINT_VERIFY_OK);
	X509_STORE_free(st2);
	X509_free(root2);
	X509_free(x);
	EVP_PKEY_free(k2);
}

static void
test_bad_requests(void **state)
{
	struct fixture *f = *state;
	X509 *x = NULL;

	f->req.agent = "bill,URI:evil";
	assert_int_equal(stint_cert_issue(f->ca_key, f->root, &f->req, &x,
					  f->err, sizeof(f->err)),
			 -1);
	assert_null(x);
	f->req.agent = "billing";
	f->req.not_after = f->req.not_before;
	assert_int_equal(stint_cert_issue(f->ca_key, f->root, &f->req, &x,
					  f->err, sizeof(f->err)),
			 -1);
}

/* csr → sign with an outside root as an intermediate → chain_check. */
static void
test_csr_and_chain(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *org_key = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	X509 *org_root = NULL, *inter = X509_new();
	X509_REQ *csr = NULL;
	STACK_OF(X509_EXTENSION) * exts;
	STACK_OF(X509) *chain = sk_X509_new_null();
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	int i;

	assert_int_equal(stint_ca_csr_build(f->ca_key, "example.org", &csr,
					    f->err, sizeof(f->err)),
			 0);
	assert_int_equal(X509_REQ_verify(csr, f->ca_key), 1);
	exts = X509_REQ_get_extensions(csr);
	assert_int_equal(sk_X509_EXTENSION_num(exts), 2);
	assert_int_equal(stint_ca_root_build(org_key, "corp", NOW, 100,
					     &org_root, f->err, sizeof(f->err)),
			 0);
	/* What `openssl x509 -req -copy_extensions copy` would do. */
	X509_set_version(inter, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(inter), 7);
	X509_set_subject_name(inter, X509_REQ_get_subject_name(csr));
	X509_set_issuer_name(inter, X509_get_subject_name(org_root));
	X509_set_pubkey(inter, X509_REQ_get0_pubkey(csr));
	ASN1_TIME_set(X509_getm_notBefore(inter), NOW - 10);
	ASN1_TIME_set(X509_getm_notAfter(inter), NOW + 86400);
	for (i = 0; i < sk_X509_EXTENSION_num(exts); i++)
		X509_add_ext(inter, sk_X509_EXTENSION_value(exts, i), -1);
	X509V3_set_ctx(&ctx, inter, inter, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	X509_add_ext(inter, e, -1);
	X509_EXTENSION_free(e);
	assert_true(X509_sign(inter, org_key, EVP_sha256()) > 0);
	sk_X509_push(chain, inter);
	sk_X509_push(chain, org_root);
	assert_int_equal(stint_ca_chain_check(f->ca_key, chain, NOW, f->err,
					      sizeof(f->err)),
			 0);
	/* Not for the CA key. */
	assert_int_equal(
		stint_ca_chain_check(other, chain, NOW, f->err, sizeof(f->err)),
		-1);
	assert_non_null(strstr(f->err, "CA key"));
	sk_X509_pop_free(chain, X509_free);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(csr);
	EVP_PKEY_free(org_key);
	EVP_PKEY_free(other);
}

static void
test_chain_parse(void **state)
{
	struct fixture *f = *state;
	static const char junk[] = "-----BEGIN CERTIFICATE-----\nAAAA\n"
				   "-----END CERTIFICATE-----\n";
	STACK_OF(X509) * chain;

	assert_null(stint_ca_chain_parse("hello", 5, f->err, sizeof(f->err)));
	assert_null(stint_ca_chain_parse(junk, sizeof(junk) - 1, f->err,
					 sizeof(f->err)));
	{
		BIO *b = BIO_new(BIO_s_mem());
		char *data;
		long n;

		PEM_write_bio_X509(b, f->root);
		PEM_write_bio_X509(b, f->root);
		n = BIO_get_mem_data(b, &data);
		chain = stint_ca_chain_parse(data, (size_t)n, f->err,
					     sizeof(f->err));
		assert_non_null(chain);
		assert_int_equal(sk_X509_num(chain), 2);
		sk_X509_pop_free(chain, X509_free);
		BIO_free(b);
	}
}

/* --- backend_sign.c with a fake backend ------------------------------- */

struct fake_backend {
	struct stint_backend base;
	EVP_PKEY *key;
	int signs;
	char last_id[64];
};

static int
fake_sign(struct stint_backend *b, const struct stint_backend_sign_req *req,
	  struct stint_backend_sig *sig, char *err, size_t errlen)
{
	struct fake_backend *fb = (struct fake_backend *)b;
	const char *key_id = req->key_id;
	size_t in_len = req->in_len;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(fb->key, NULL);
	uint8_t der[128];
	size_t der_len = sizeof(der);
	const unsigned char *p = der;
	ECDSA_SIG *s;

	(void)err;
	(void)errlen;
	assert_int_equal(req->raw, CKM_ECDSA);
	assert_int_equal(in_len, 32); /* the digest, never the message */
	snprintf(fb->last_id, sizeof(fb->last_id), "%s", key_id);
	fb->signs++;
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	assert_int_equal(EVP_PKEY_sign(ctx, der, &der_len, req->in, in_len), 1);
	EVP_PKEY_CTX_free(ctx);
	/* PKCS#11 returns r || s. */
	s = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	assert_non_null(s);
	assert_true(sig->cap >= 64);
	BN_bn2binpad(ECDSA_SIG_get0_r(s), sig->ptr, 32);
	BN_bn2binpad(ECDSA_SIG_get0_s(s), sig->ptr + 32, 32);
	sig->len = 64;
	ECDSA_SIG_free(s);
	return 0;
}

static const struct stint_backend_ops fake_ops = {
	.name = "fake",
	.sign = fake_sign,
};

static void
test_backend_pkey(void **state)
{
	struct fixture *f = *state;
	struct fake_backend fb = {.base = {&fake_ops}};
	struct stint_bytes spki;
	uint8_t *der = NULL;
	EVP_PKEY *pk;
	X509 *root = NULL, *leaf = NULL;
	int n;

	fb.key = f->ca_key;
	n = i2d_PUBKEY(f->ca_key, &der);
	spki.ptr = der;
	spki.len = (size_t)n;
	pk = stint_backend_pkey(&fb.base, "stint-ca", &spki, f->err,
				sizeof(f->err));
	assert_non_null(pk);
	/* The root and a leaf signed through the backend verify with the
	 * software public key: one backend signature each. */
	assert_int_equal(stint_ca_root_build(pk, "example.org", NOW, 10, &root,
					     f->err, sizeof(f->err)),
			 0);
	assert_int_equal(fb.signs, 1);
	assert_string_equal(fb.last_id, "stint-ca");
	assert_int_equal(X509_verify(root, f->ca_key), 1);
	assert_int_equal(stint_cert_issue(pk, root, &f->req, &leaf, f->err,
					  sizeof(f->err)),
			 0);
	assert_int_equal(fb.signs, 2);
	assert_int_equal(X509_verify(leaf, f->ca_key), 1);
	X509_free(leaf);
	X509_free(root);
	EVP_PKEY_free(pk);
	OPENSSL_free(der);
}

/* Every arc of o below 2^63: what libtasn1 and python-cryptography read. */
static void
assert_arcs_fit(const ASN1_OBJECT *o)
{
	char txt[256], *p, *end;
	unsigned long long v;

	assert_true(OBJ_obj2txt(txt, sizeof(txt), o, 1) > 0);
	for (p = txt;; p = end + 1) {
		errno = 0;
		v = strtoull(p, &end, 10);
		assert_int_equal(errno, 0);
		assert_true(end != p);
		assert_true(v <= (unsigned long long)INT64_MAX);
		if (*end == '\0')
			break;
		assert_int_equal(*end, '.');
	}
}

/* The leaf (every extension, the signature and key algorithms) and the
 * root use only OIDs with small arcs; the task extension is under the
 * default OID. */
static void
test_oid_arcs_fit(void **state)
{
	struct fixture *f = *state;
	const X509_ALGOR *alg;
	const ASN1_OBJECT *o;
	X509 *certs[2] = {issue(f), f->root};
	X509_PUBKEY *pk;
	char txt[128];
	int c, i;

	for (c = 0; c < 2; c++) {
		for (i = 0; i < X509_get_ext_count(certs[c]); i++)
			assert_arcs_fit(X509_EXTENSION_get_object(
				X509_get_ext(certs[c], i)));
		X509_get0_signature(NULL, &alg, certs[c]);
		X509_ALGOR_get0(&o, NULL, NULL, alg);
		assert_arcs_fit(o);
		pk = X509_get_X509_PUBKEY(certs[c]);
		assert_int_equal(X509_PUBKEY_get0_param((ASN1_OBJECT **)&o,
							NULL, NULL, NULL, pk),
				 1);
		assert_arcs_fit(o);
	}
	i = X509_get_ext_by_OBJ(certs[0], stint_task_ext_oid(), -1);
	assert_true(i >= 0);
	OBJ_obj2txt(txt, sizeof(txt),
		    X509_EXTENSION_get_object(X509_get_ext(certs[0], i)), 1);
	assert_string_equal(txt, STINT_TASK_EXT_OID);
	X509_free(certs[0]);
}

/* A leaf issued under an organisation's OID: decoded when the verifier is
 * given that OID, refused (naming the extension) when it is not. */
static void
test_ext_oid_configured(void **state)
{
	struct fixture *f = *state;
	struct stint_peer_identity id;
	X509 *x;

	f->req.ext_oid = "1.3.6.1.4.1.32473.7.1";
	x = issue(f);
	assert_true(X509_get_ext_by_OBJ(x, stint_task_ext_oid(), -1) < 0);
	assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL, NULL, NOW,
					   &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_ERR_TASK_EXT);
	assert_int_equal(stint_verify_peer_oid(x, NULL, f->store, NULL, NULL,
					       "1.3.6.1.4.1.32473.7.1", NOW,
					       &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_string_equal(id.task, f->req.task_id);
	X509_free(x);
	/* An OID that does not fit is never issued. */
	f->req.ext_oid = STINT_TASK_EXT_OID_LEGACY;
	x = NULL;
	assert_int_equal(stint_cert_issue(f->ca_key, f->root, &f->req, &x,
					  f->err, sizeof(f->err)),
			 -1);
	assert_null(x);
}

/* Re-signs x with its task extension moved to (or added under) the
 * legacy 2.25 OID. */
static void
with_legacy_ext(struct fixture *f, X509 *x, int keep_default)
{
	int i = X509_get_ext_by_OBJ(x, stint_task_ext_oid(), -1);
	X509_EXTENSION *e = X509_get_ext(x, i), *old;
	ASN1_OBJECT *legacy = OBJ_txt2obj(STINT_TASK_EXT_OID_LEGACY, 1);

	assert_non_null(legacy);
	old = X509_EXTENSION_create_by_OBJ(NULL, legacy, 0,
					   X509_EXTENSION_get_data(e));
	assert_non_null(old);
	if (!keep_default)
		X509_EXTENSION_free(X509_delete_ext(x, i));
	assert_int_equal(X509_add_ext(x, old, -1), 1);
	assert_true(X509_sign(x, f->ca_key, EVP_sha256()) > 0);
	X509_EXTENSION_free(old);
	ASN1_OBJECT_free(legacy);
}

/* Leaves of earlier versions (the 2.25 OID) still verify; a leaf with
 * the extension twice, under two accepted OIDs, does not. */
static void
test_ext_oid_legacy(void **state)
{
	struct fixture *f = *state;
	struct stint_peer_identity id;
	X509 *x = issue(f), *y = issue(f);

	with_legacy_ext(f, x, 0);
	assert_true(X509_get_ext_by_OBJ(x, stint_task_ext_oid(), -1) < 0);
	assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL, NULL, NOW,
					   &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_string_equal(id.task, f->req.task_id);
	with_legacy_ext(f, y, 1);
	assert_int_equal(stint_verify_peer(y, NULL, f->store, NULL, NULL, NOW,
					   &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_ERR_TASK_EXT);
	assert_non_null(strstr(f->err, "more than one"));
	X509_free(x);
	X509_free(y);
}

static void
test_oid_check(void **state)
{
	static const char *const good[] = {
		"1.3.6.1.4.1.32473.1",
		"2.999.1",
		"1.3.9223372036854775807",
		STINT_TASK_EXT_OID,
	};
	static const char *const bad[] = {
		STINT_TASK_EXT_OID_LEGACY, /* a 128-bit arc */
		"1.3.9223372036854775808",
		"1.2",
		"3.1.2",
		"1.40.1",
		"1.3.06.1",
		"1.3..6",
		"",
		"1.3.6.",
		"1.3.6.1.5.5.7.1.1",
		"1.3.6.1.4.1.x",
		" 1.3.6.1",
	};
	size_t i;
	char err[256];

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(
			stint_task_ext_oid_check(good[i], err, sizeof(err)), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(
			stint_task_ext_oid_check(bad[i], err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
}

/* --- aud: audiences in the task extension ------------------------------ */

static int
verify_aud(struct fixture *f, X509 *x, const char *audience)
{
	struct stint_peer_identity id;

	return stint_verify_peer_audience(x, NULL, f->store, NULL, NULL, NULL,
					  audience, NOW, &id, f->err,
					  sizeof(f->err));
}

static void
test_ext_audiences(void **state)
{
	struct fixture *f = *state;
	struct stint_task_facts facts;
	X509 *x;

	f->req.audiences = "a,https://api.example.org/v1";
	x = issue(f);
	assert_int_equal(
		stint_task_ext_get(x, NULL, &facts, f->err, sizeof(f->err)), 0);
	assert_string_equal(facts.audiences, "a,https://api.example.org/v1");
	assert_int_equal(verify_aud(f, x, "a"), STINT_VERIFY_OK);
	assert_int_equal(verify_aud(f, x, "https://api.example.org/v1"),
			 STINT_VERIFY_OK);
	assert_int_equal(verify_aud(f, x, "b"), STINT_VERIFY_ERR_AUDIENCE);
	assert_non_null(strstr(f->err, "not for audience 'b'"));
	/* A prefix or a list is not a member. */
	assert_int_equal(verify_aud(f, x, "https://api.example.org"),
			 STINT_VERIFY_ERR_AUDIENCE);
	assert_int_equal(verify_aud(f, x, "a,b"), STINT_VERIFY_ERR_AUDIENCE);
	assert_int_equal(verify_aud(f, x, NULL), STINT_VERIFY_OK);
	assert_string_equal(stint_verify_strerror(STINT_VERIFY_ERR_AUDIENCE),
			    "audience");
	X509_free(x);

	/* None: the field is absent, and an audience check refuses. */
	f->req.audiences = "";
	x = issue(f);
	assert_int_equal(
		stint_task_ext_get(x, NULL, &facts, f->err, sizeof(f->err)), 0);
	assert_string_equal(facts.audiences, "");
	assert_int_equal(verify_aud(f, x, "a"), STINT_VERIFY_ERR_AUDIENCE);
	assert_non_null(strstr(f->err, "names no audience"));
	assert_int_equal(verify_aud(f, x, NULL), STINT_VERIFY_OK);
	X509_free(x);

	/* Never issued: a bad name. */
	f->req.audiences = "a,,b";
	x = NULL;
	assert_int_equal(stint_cert_issue(f->ca_key, f->root, &f->req, &x,
					  f->err, sizeof(f->err)),
			 -1);
	assert_null(x);
}

/* A forged extension whose one audience hides a comma ("a,b") must not
 * decode as two audiences. */
static void
test_ext_audience_comma(void **state)
{
	struct stint_task_facts facts;
	STINT_TASK_EXT *e = STINT_TASK_EXT_new();
	ASN1_UTF8STRING *s = ASN1_UTF8STRING_new();
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	unsigned char *der = NULL, zero[32] = {0};
	X509_EXTENSION *ext;
	X509 *x = X509_new();
	char err[200];
	int len;

	(void)state;
	assert_non_null(e);
	ASN1_STRING_set(e->task_id, "t-1", 3);
	ASN1_OCTET_STRING_set(e->intent_digest, zero, 32);
	ASN1_STRING_set(e->attestation_kind, "pkcs11", 6);
	ASN1_OCTET_STRING_set(e->evidence_digest, zero, 32);
	e->audiences = sk_ASN1_UTF8STRING_new_null();
	ASN1_STRING_set(s, "a,b", 3);
	sk_ASN1_UTF8STRING_push(e->audiences, s);
	assert_true((len = i2d_STINT_TASK_EXT(e, &der)) > 0);
	ASN1_OCTET_STRING_set(os, der, len);
	ext = X509_EXTENSION_create_by_OBJ(NULL, stint_task_ext_oid(), 0, os);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	assert_int_equal(stint_task_ext_get(x, NULL, &facts, err, sizeof(err)),
			 -1);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	OPENSSL_free(der);
	STINT_TASK_EXT_free(e);
	X509_free(x);
}

static void
test_audience_sets(void **state)
{
	char buf[64] = "", miss[16];

	(void)state;
	assert_null(stint_audiences_check(""));
	assert_null(stint_audiences_check("a,b.c,spiffe://x/y"));
	assert_non_null(stint_audiences_check("a,"));
	assert_non_null(stint_audiences_check(",a"));
	assert_non_null(stint_audiences_check("a,a"));
	assert_non_null(stint_audiences_check("a b"));
	assert_non_null(stint_audiences_check(
		"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"));
	assert_true(stint_audience_in("a,bb", "bb"));
	assert_false(stint_audience_in("a,bb", "b"));
	assert_false(stint_audience_in("", "a"));
	assert_false(stint_audience_in("a", ""));
	assert_true(stint_audiences_subset("b", "a,b", miss, sizeof(miss)));
	assert_true(stint_audiences_subset("", "", miss, sizeof(miss)));
	assert_false(stint_audiences_subset("a,c", "a,b", miss, sizeof(miss)));
	assert_string_equal(miss, "c");
	assert_false(stint_audiences_subset("a", "", miss, sizeof(miss)));
	assert_int_equal(stint_audiences_add(buf, sizeof(buf), "a"), 0);
	assert_int_equal(stint_audiences_add(buf, sizeof(buf), "b,c"), 0);
	assert_string_equal(buf, "a,b,c");
}

/* --- deleg: the delegation block [1] ----------------------------------- */

#define PARENT_ID "t-00112233445566778899aabbccddeeff"
#define CHILD_ID  "t-11111111111111111111111111111111"
#define GRAND_ID  "t-22222222222222222222222222222222"

/* A child of the fixture's top-level leaf (agent billing) for agent
 * "worker", its request pointing at parent's certificate. */
static void
child_req(struct fixture *f, X509 *parent, uint8_t hash[32])
{
	unsigned int n = 0;

	assert_int_equal(X509_digest(parent, EVP_sha256(), hash, &n), 1);
	assert_int_equal(n, 32);
	f->req.agent = "worker";
	f->req.task_id = CHILD_ID;
	f->req.parent_task = PARENT_ID;
	f->req.root_task = PARENT_ID;
	f->req.deleg_depth = 1;
	f->req.deleg_path = "billing,worker";
	f->req.parent_cert_sha256 = hash;
	f->req.not_after = NOW + 300;
}

static void
test_deleg_round_trip(void **state)
{
	struct fixture *f = *state;
	struct stint_peer_identity id, cid;
	struct stint_task_facts facts;
	uint8_t h1[32], h2[32];
	X509 *parent, *child, *grand;

	f->req.audiences = "api,db";
	parent = issue(f);
	f->req.audiences = "db";

	/* A top-level task: no block, and nothing to check a parent of. */
	assert_int_equal(stint_task_ext_get(parent, NULL, &facts, f->err,
					    sizeof(f->err)),
			 0);
	assert_false(facts.has_delegation);
	assert_int_equal(stint_verify_peer(parent, NULL, f->store, NULL, NULL,
					   NOW, &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_int_equal(id.delegated, 0);
	assert_string_equal(id.root_task, "");
	assert_int_equal(
		stint_verify_parent(&id, parent, NULL, f->err, sizeof(f->err)),
		STINT_VERIFY_ERR_ARGS);

	child_req(f, parent, h1);
	child = issue(f);
	assert_int_equal(
		stint_task_ext_get(child, NULL, &facts, f->err, sizeof(f->err)),
		0);
	assert_true(facts.has_delegation);
	assert_string_equal(facts.parent_task, PARENT_ID);
	assert_string_equal(facts.root_task, PARENT_ID);
	assert_int_equal(facts.depth, 1);
	assert_string_equal(facts.path, "billing,worker");
	assert_memory_equal(facts.parent_cert_sha256, h1, 32);
	assert_int_equal(stint_verify_peer(child, NULL, f->store, NULL,
					   "worker", NOW, &cid, f->err,
					   sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_int_equal(cid.delegated, 1);
	assert_string_equal(cid.parent_task, PARENT_ID);
	assert_string_equal(cid.root_task, PARENT_ID);
	assert_int_equal(cid.depth, 1);
	assert_string_equal(cid.delegation_path, "billing,worker");
	assert_memory_equal(cid.parent_cert_sha256, h1, 32);
	assert_int_equal(
		stint_verify_parent(&cid, parent, NULL, f->err, sizeof(f->err)),
		STINT_VERIFY_OK);

	/* A grandchild: its parent is the child, its root the top task. */
	assert_int_equal(X509_digest(child, EVP_sha256(), h2, NULL), 1);
	f->req.agent = "sub";
	f->req.task_id = GRAND_ID;
	f->req.parent_task = CHILD_ID;
	f->req.deleg_depth = 2;
	f->req.deleg_path = "billing,worker,sub";
	f->req.parent_cert_sha256 = h2;
	f->req.not_after = NOW + 200;
	grand = issue(f);
	assert_int_equal(stint_verify_peer(grand, NULL, f->store, NULL, "sub",
					   NOW, &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_int_equal(id.depth, 2);
	assert_string_equal(id.root_task, PARENT_ID);
	assert_string_equal(id.parent_task, CHILD_ID);
	assert_string_equal(id.delegation_path, "billing,worker,sub");
	assert_int_equal(
		stint_verify_parent(&id, child, NULL, f->err, sizeof(f->err)),
		STINT_VERIFY_OK);
	/* The root is not its parent: another hash. */
	assert_int_equal(
		stint_verify_parent(&id, parent, NULL, f->err, sizeof(f->err)),
		STINT_VERIFY_ERR_PARENT);
	assert_non_null(strstr(f->err, "SHA-256"));
	assert_string_equal(stint_verify_strerror(STINT_VERIFY_ERR_PARENT),
			    "parent");
	X509_free(grand);
	X509_free(child);
	X509_free(parent);
}

/* stint_verify_parent refuses a parent that matches the hash but not the
 * rest: another task id, an agent off the path, a shorter life. */
static void
test_deleg_parent_mismatch(void **state)
{
	struct fixture *f = *state;
	struct stint_peer_identity id;
	uint8_t h[32];
	X509 *parent = issue(f), *child;

	child_req(f, parent, h);
	f->req.parent_task = f->req.root_task =
		"t-99999999999999999999999999999999";
	child = issue(f);
	assert_int_equal(stint_verify_peer(child, NULL, f->store, NULL, NULL,
					   NOW, &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_int_equal(
		stint_verify_parent(&id, parent, NULL, f->err, sizeof(f->err)),
		STINT_VERIFY_ERR_PARENT);
	assert_non_null(strstr(f->err, "not of the parent"));
	X509_free(child);

	child_req(f, parent, h);
	f->req.deleg_path = "payroll,worker";
	child = issue(f);
	assert_int_equal(stint_verify_peer(child, NULL, f->store, NULL, NULL,
					   NOW, &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_int_equal(
		stint_verify_parent(&id, parent, NULL, f->err, sizeof(f->err)),
		STINT_VERIFY_ERR_PARENT);
	assert_non_null(strstr(f->err, "agent/payroll"));
	X509_free(child);

	/* A child cannot name an audience its parent does not. */
	child_req(f, parent, h);
	f->req.audiences = "api";
	child = issue(f);
	assert_int_equal(stint_verify_peer(child, NULL, f->store, NULL, NULL,
					   NOW, &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_int_equal(
		stint_verify_parent(&id, parent, NULL, f->err, sizeof(f->err)),
		STINT_VERIFY_ERR_PARENT);
	assert_non_null(strstr(f->err, "audience 'api'"));
	X509_free(child);
	f->req.audiences = NULL;

	child_req(f, parent, h);
	f->req.not_after = NOW + 601; /* the parent's is NOW + 600 */
	child = issue(f);
	assert_int_equal(stint_verify_peer(child, NULL, f->store, NULL, NULL,
					   NOW, &id, f->err, sizeof(f->err)),
			 STINT_VERIFY_OK);
	assert_int_equal(
		stint_verify_parent(&id, parent, NULL, f->err, sizeof(f->err)),
		STINT_VERIFY_ERR_PARENT);
	assert_non_null(strstr(f->err, "outlives"));
	X509_free(child);
	X509_free(parent);
}

/* The CA never issues a block that breaks the invariants. */
static void
test_deleg_bad_requests(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *parent, *root, *path;
		int depth;
	} bad[] = {
		{PARENT_ID, PARENT_ID, "billing,other", 1}, /* not the agent */
		{PARENT_ID, CHILD_ID, "billing,worker", 1}, /* root != parent */
		{PARENT_ID, PARENT_ID, "a,billing,worker",
		 2},                                         /* root==parent */
		{PARENT_ID, PARENT_ID, "billing,worker", 2}, /* 3 names */
		{PARENT_ID, PARENT_ID, "worker", 0},
		{PARENT_ID, PARENT_ID, "bill ing,worker", 1},
		{PARENT_ID, PARENT_ID, "billing,,worker", 2},
		{"", PARENT_ID, "billing,worker", 1}, /* no parent */
		{PARENT_ID, "t/x", "billing,worker", 1},
		{PARENT_ID, PARENT_ID, "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,worker",
		 16},
		{CHILD_ID, CHILD_ID, "billing,worker", 1}, /* its own parent */
	};
	uint8_t h[32];
	X509 *parent = issue(f), *x;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		child_req(f, parent, h);
		f->req.parent_task = bad[i].parent;
		f->req.root_task = bad[i].root;
		f->req.deleg_path = bad[i].path;
		f->req.deleg_depth = bad[i].depth;
		x = NULL;
		assert_int_equal(stint_cert_issue(f->ca_key, f->root, &f->req,
						  &x, f->err, sizeof(f->err)),
				 -1);
		assert_null(x);
		assert_non_null(strstr(f->err, "delegation"));
	}
	child_req(f, parent, h);
	f->req.parent_cert_sha256 = NULL;
	x = NULL;
	assert_int_equal(stint_cert_issue(f->ca_key, f->root, &f->req, &x,
					  f->err, sizeof(f->err)),
			 -1);
	X509_free(parent);
}

/* A task extension with a delegation block built by hand (what a broken
 * or forged issuer could sign); depth, path and digest as given, path
 * names comma-separated ("" none). */
struct forged {
	const char *root, *path;
	long depth;
	int digest_len;
};

static STINT_TASK_EXT *
forged_ext(const char *task, const char *parent, const struct forged *fg)
{
	STINT_TASK_EXT *e = STINT_TASK_EXT_new();
	STINT_TASK_DELEGATION *d = STINT_TASK_DELEGATION_new();
	unsigned char zero[40] = {0};
	const char *p = fg->path, *comma;
	ASN1_UTF8STRING *s;
	size_t len;

	assert_non_null(e);
	assert_non_null(d);
	ASN1_STRING_set(e->task_id, task, -1);
	ASN1_OCTET_STRING_set(e->intent_digest, zero, 32);
	ASN1_STRING_set(e->parent_task, parent, -1);
	ASN1_STRING_set(e->attestation_kind, "pkcs11", 6);
	ASN1_OCTET_STRING_set(e->evidence_digest, zero, 32);
	ASN1_STRING_set(d->root_task, fg->root, -1);
	ASN1_INTEGER_set(d->depth, fg->depth);
	for (; *p != '\0'; p += len + (comma != NULL)) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		s = ASN1_UTF8STRING_new();
		ASN1_STRING_set(s, p, (int)len);
		sk_ASN1_UTF8STRING_push(d->path, s);
	}
	ASN1_OCTET_STRING_set(d->parent_cert_sha256, zero, fg->digest_len);
	e->delegation = d;
	return e;
}

/* Replaces x's task extension with e's encoding and re-signs it with the
 * CA key. */
static void
replace_ext(struct fixture *f, X509 *x, STINT_TASK_EXT *e)
{
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	unsigned char *der = NULL;
	X509_EXTENSION *ext;
	int len, i = X509_get_ext_by_OBJ(x, stint_task_ext_oid(), -1);

	assert_true(i >= 0);
	X509_EXTENSION_free(X509_delete_ext(x, i));
	assert_true((len = i2d_STINT_TASK_EXT(e, &der)) > 0);
	ASN1_OCTET_STRING_set(os, der, len);
	ext = X509_EXTENSION_create_by_OBJ(NULL, stint_task_ext_oid(), 0, os);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	assert_true(X509_sign(x, f->ca_key, EVP_sha256()) > 0);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	OPENSSL_free(der);
}

/* Strict decode: every malformed block is refused; the invariants that
 * need the certificate's agent are refused by stint_verify_peer. */
static void
test_deleg_forged(void **state)
{
	struct fixture *f = *state;
	static const char long_name[] =
		"a123456789012345678901234567890123456789012345678901234567890"
		"1234";
	static const struct forged malformed[] = {
		{PARENT_ID, "billing,worker", 0, 32},   /* depth 0 */
		{PARENT_ID, "billing,worker", -1, 32},  /* negative */
		{PARENT_ID, "billing,worker", 2, 32},   /* 2 != 3 names */
		{PARENT_ID, "billing,x,worker", 1, 32}, /* 3 != 2 names */
		{PARENT_ID, "billing,worker", 1, 31},   /* short digest */
		{PARENT_ID, "billing,worker", 1, 33},   /* long digest */
		{PARENT_ID, "worker", 0, 32},           /* one name */
		{PARENT_ID, "", 1, 32},                 /* no path */
		{PARENT_ID, "billing,wor ker", 1, 32},  /* not a name */
		{"", "billing,worker", 1, 32},          /* no root */
		{"t/x", "billing,worker", 1, 32},       /* bad root id */
		{PARENT_ID, "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,worker", 16, 32},
		{PARENT_ID, "billing,worker", 1L << 40, 32}, /* huge depth */
	};
	static const struct forged inconsistent[] = {
		{PARENT_ID, "billing,other", 1, 32}, /* agent not last */
		{CHILD_ID, "billing,worker", 1,
		 32}, /* depth 1, root != parent */
		{PARENT_ID, "a,billing,worker", 2,
		 32}, /* depth 2, root parent */
	};
	struct stint_task_facts facts;
	struct stint_peer_identity id;
	STINT_TASK_EXT *e;
	char path[200];
	uint8_t h[32];
	X509 *parent = issue(f), *x;
	size_t i;

	child_req(f, parent, h);
	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		x = issue(f);
		e = forged_ext(CHILD_ID, PARENT_ID, &malformed[i]);
		replace_ext(f, x, e);
		assert_int_equal(stint_task_ext_get(x, NULL, &facts, f->err,
						    sizeof(f->err)),
				 -1);
		assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL,
						   NULL, NOW, &id, f->err,
						   sizeof(f->err)),
				 STINT_VERIFY_ERR_TASK_EXT);
		STINT_TASK_EXT_free(e);
		X509_free(x);
	}
	/* A path name of 65 bytes does not fit; one of 64 does. */
	for (i = 0; i < 2; i++) {
		struct forged fg = {PARENT_ID, path, 1, 32};

		snprintf(path, sizeof(path), "%.*s,worker", 64 + (int)!i,
			 long_name);
		x = issue(f);
		e = forged_ext(CHILD_ID, PARENT_ID, &fg);
		replace_ext(f, x, e);
		assert_int_equal(stint_task_ext_get(x, NULL, &facts, f->err,
						    sizeof(f->err)),
				 i == 0 ? -1 : 0);
		STINT_TASK_EXT_free(e);
		X509_free(x);
	}
	for (i = 0; i < sizeof(inconsistent) / sizeof(inconsistent[0]); i++) {
		x = issue(f);
		e = forged_ext(CHILD_ID, PARENT_ID, &inconsistent[i]);
		replace_ext(f, x, e);
		assert_int_equal(stint_task_ext_get(x, NULL, &facts, f->err,
						    sizeof(f->err)),
				 0);
		assert_int_equal(stint_verify_peer(x, NULL, f->store, NULL,
						   NULL, NOW, &id, f->err,
						   sizeof(f->err)),
				 STINT_VERIFY_ERR_DELEGATION);
		STINT_TASK_EXT_free(e);
		X509_free(x);
	}
	assert_string_equal(stint_verify_strerror(STINT_VERIFY_ERR_DELEGATION),
			    "delegation");
	X509_free(parent);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leaf_fields, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_serials_differ, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_verify_peer, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_binding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_peer_other_ca,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_csr_and_chain, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_chain_parse, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_backend_pkey, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_oid_arcs_fit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ext_oid_configured, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ext_oid_legacy, setup,
						teardown),
		cmocka_unit_test(test_oid_check),
		cmocka_unit_test_setup_teardown(test_ext_audiences, setup,
						teardown),
		cmocka_unit_test(test_ext_audience_comma),
		cmocka_unit_test(test_audience_sets),
		cmocka_unit_test_setup_teardown(test_deleg_round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deleg_parent_mismatch,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleg_bad_requests, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deleg_forged, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
