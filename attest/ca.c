/*
 * The Stint CA (ca.h): certificates built with OpenSSL's X509 API and
 * signed through an EVP_PKEY whose signing happens in the backend.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "attest/ca.h"
#include "attest/cert_ext.h"
#include "common/fileio.h"
#include "common/hex.h"
#include "common/ident.h"
#include "common/log.h"

/* ca.pem and evidence files are read whole, up to this size. */
#define CA_FILE_MAX (1024 * 1024)

struct stint_ca {
	struct stint_backend *backend;
	char state_dir[PATH_MAX];
	char trust_domain[256];
	EVP_PKEY *ca_key; /* signs in the backend */
	EVP_PKEY *ak;     /* signs in the backend */
	EVP_PKEY *ak_pub; /* the enrolled public key, for the verifier */
	struct stint_bytes ak_spki;
	uint32_t ca_key_type; /* [ca] key: used when the CA key is created */
	int64_t skew;         /* [ca] skew, seconds */
	char ext_oid[STINT_OID_TEXT_MAX]; /* [ca] extension_oid, "" default */
	pthread_rwlock_t lock;            /* guards chain: install swaps it */
	STACK_OF(X509) * chain;
};

/* --- builders --------------------------------------------------------- */

/* SHA-256 for P-256 keys, SHA-384 for P-384 (the usual pairing). */
static const EVP_MD *
sign_md(EVP_PKEY *key)
{
	return EVP_PKEY_get_bits(key) > 256 ? EVP_sha384() : EVP_sha256();
}

static int
random_serial(X509 *x)
{
	uint8_t rnd[16];
	BIGNUM *bn = NULL;
	ASN1_INTEGER *ai = NULL;
	int r = -1;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	/* Positive, and never zero: 127 random bits with one forced. */
	rnd[0] = (uint8_t)((rnd[0] & 0x7f) | 0x40);
	if ((bn = BN_bin2bn(rnd, sizeof(rnd), NULL)) != NULL &&
	    (ai = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
	    X509_set_serialNumber(x, ai) == 1)
		r = 0;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return r;
}

static X509_NAME *
cn_name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	if (n != NULL && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
						    (const unsigned char *)cn,
						    -1, -1, 0) != 1) {
		X509_NAME_free(n);
		n = NULL;
	}
	return n;
}

/* One extension from its OpenSSL config form, e.g. "critical,CA:FALSE". */
static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = e != NULL && X509_add_ext(x, e, -1) == 1;

	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

static void
ca_name(char *buf, size_t cap, const char *trust_domain)
{
	snprintf(buf, cap, "Stint CA %s", trust_domain);
}

int
stint_ca_root_build(EVP_PKEY *key, const char *trust_domain, int64_t now,
		    int days, X509 **out, char *err, size_t errlen)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	X509V3_CTX ctx;
	char cn[300];
	int r = -1;

	*out = NULL;
	ca_name(cn, sizeof(cn), trust_domain);
	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1 ||
	    random_serial(x) != 0 || (name = cn_name(cn)) == NULL ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, name) != 1 ||
	    X509_set_pubkey(x, key) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x),
			  (time_t)(now - STINT_CA_SKEW)) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x),
			  (time_t)(now + (int64_t)days * 86400)) == NULL) {
		snprintf(err, errlen, "cannot build the CA certificate");
		goto out;
	}
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") !=
		    0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0) {
		snprintf(err, errlen, "cannot add the CA extensions");
		goto out;
	}
	if (X509_sign(x, key, sign_md(key)) <= 0) {
		snprintf(err, errlen,
			 "the CA key could not sign its "
			 "certificate");
		goto out;
	}
	*out = x;
	x = NULL;
	r = 0;
out:
	X509_NAME_free(name);
	X509_free(x);
	return r;
}

int
stint_ca_csr_build(EVP_PKEY *key, const char *trust_domain, X509_REQ **out,
		   char *err, size_t errlen)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *e;
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	X509V3_CTX ctx;
	char cn[300];
	int r = -1;

	*out = NULL;
	ca_name(cn, sizeof(cn), trust_domain);
	if ((req = X509_REQ_new()) == NULL ||
	    X509_REQ_set_version(req, 0) != 1 || (name = cn_name(cn)) == NULL ||
	    X509_REQ_set_subject_name(req, name) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1 ||
	    (exts = sk_X509_EXTENSION_new_null()) == NULL)
		goto fail;
	X509V3_set_ctx(&ctx, NULL, NULL, req, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
				     "critical,CA:TRUE")) == NULL ||
	    !sk_X509_EXTENSION_push(exts, e)) {
		X509_EXTENSION_free(e);
		goto fail;
	}
	if ((e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
				     "critical,keyCertSign,cRLSign")) == NULL ||
	    !sk_X509_EXTENSION_push(exts, e)) {
		X509_EXTENSION_free(e);
		goto fail;
	}
	if (X509_REQ_add_extensions(req, exts) != 1)
		goto fail;
	if (X509_REQ_sign(req, key, sign_md(key)) <= 0) {
		snprintf(err, errlen, "the CA key could not sign the CSR");
		goto out;
	}
	*out = req;
	req = NULL;
	r = 0;
	goto out;
fail:
	snprintf(err, errlen, "cannot build the CSR");
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return r;
}

static bool
label_ok(const char *s)
{
	return s[0] != '\0' && stint_ident_chars_ok(s);
}

static const char *
or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* The binding block's facts; -1 when a field does not fit. */
static int
leaf_binding(const struct stint_leaf_req *req, struct stint_task_facts *f)
{
	const char *kind = or_empty(req->bind_kind);

	if (kind[0] == '\0' && req->exe_sha256 != NULL)
		kind = "none";
	if (kind[0] == '\0')
		return 0;
	if (strlen(kind) >= sizeof(f->bind_kind) ||
	    strlen(or_empty(req->bind_cgroup)) >= sizeof(f->bind_cgroup) ||
	    strlen(or_empty(req->bind_unit)) >= sizeof(f->bind_unit))
		return -1;
	snprintf(f->bind_kind, sizeof(f->bind_kind), "%s", kind);
	snprintf(f->bind_cgroup, sizeof(f->bind_cgroup), "%s",
		 or_empty(req->bind_cgroup));
	snprintf(f->bind_unit, sizeof(f->bind_unit), "%s",
		 or_empty(req->bind_unit));
	if (req->exe_sha256 != NULL) {
		memcpy(f->exe_sha256, req->exe_sha256, 32);
		f->has_exe_sha256 = true;
	}
	return 0;
}

/* deleg: the delegation block's facts; -1 with err when absent fields
 * are missing, do not fit, or break the invariants. */
static int
leaf_delegation(const struct stint_leaf_req *req, struct stint_task_facts *f,
		char *err, size_t errlen)
{
	char why[300];

	if (or_empty(req->root_task)[0] == '\0')
		return 0;
	if (req->parent_cert_sha256 == NULL || req->deleg_path == NULL ||
	    strlen(req->root_task) >= sizeof(f->root_task) ||
	    strlen(req->deleg_path) >= sizeof(f->path)) {
		snprintf(err, errlen, "bad delegation in the leaf request");
		return -1;
	}
	f->has_delegation = true;
	snprintf(f->root_task, sizeof(f->root_task), "%s", req->root_task);
	snprintf(f->path, sizeof(f->path), "%s", req->deleg_path);
	f->depth = req->deleg_depth;
	memcpy(f->parent_cert_sha256, req->parent_cert_sha256, 32);
	if (stint_task_deleg_check(f, req->agent, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "bad delegation in the leaf request: %s",
			 why);
		return -1;
	}
	return 0;
}

int
stint_cert_issue(EVP_PKEY *ca_key, X509 *issuer,
		 const struct stint_leaf_req *req, X509 **out, char *err,
		 size_t errlen)
{
	struct stint_task_facts facts;
	const unsigned char *p = req->spki->ptr;
	EVP_PKEY *subject_key = NULL;
	X509_EXTENSION *task_ext = NULL;
	X509_NAME *name = NULL;
	X509 *x = NULL;
	X509V3_CTX ctx;
	char san[600];
	int r = -1;

	*out = NULL;
	/* The SAN goes through OpenSSL's config syntax: only plain names. */
	if (!label_ok(req->agent) || !label_ok(req->trust_domain) ||
	    !label_ok(req->task_id) || req->not_after <= req->not_before ||
	    strlen(req->task_id) >= sizeof(facts.task_id) ||
	    strlen(req->parent_task) >= sizeof(facts.parent_task) ||
	    strlen(req->attestation_kind) >= sizeof(facts.attestation_kind)) {
		snprintf(err, errlen, "bad leaf certificate request");
		return -1;
	}
	subject_key = d2i_PUBKEY(NULL, &p, (long)req->spki->len);
	if (subject_key == NULL) {
		snprintf(err, errlen, "the task key's SPKI does not parse");
		return -1;
	}
	memset(&facts, 0, sizeof(facts));
	snprintf(facts.task_id, sizeof(facts.task_id), "%s", req->task_id);
	snprintf(facts.parent_task, sizeof(facts.parent_task), "%s",
		 req->parent_task);
	snprintf(facts.attestation_kind, sizeof(facts.attestation_kind), "%s",
		 req->attestation_kind);
	SHA256((const unsigned char *)req->intent, strlen(req->intent),
	       facts.intent_digest);
	memcpy(facts.evidence_digest, req->evidence_digest, 32);
	if (leaf_binding(req, &facts) != 0) {
		snprintf(err, errlen, "bad binding in the leaf request");
		EVP_PKEY_free(subject_key);
		return -1;
	}
	if (req->audiences != NULL && /* aud */
	    (strlen(req->audiences) >= sizeof(facts.audiences) ||
	     stint_audiences_check(req->audiences) != NULL)) {
		EVP_PKEY_free(subject_key);
		snprintf(err, errlen, "bad audiences for the leaf");
		return -1;
	}
	snprintf(facts.audiences, sizeof(facts.audiences), "%s",
		 req->audiences != NULL ? req->audiences : "");
	if (leaf_delegation(req, &facts, err, errlen) != 0) { /* deleg */
		EVP_PKEY_free(subject_key);
		return -1;
	}
	snprintf(san, sizeof(san), "URI:spiffe://%s/agent/%s",
		 req->trust_domain, req->agent);

	if ((x = X509_new()) == NULL || X509_set_version(x, 2) != 1 ||
	    random_serial(x) != 0 || (name = cn_name(req->agent)) == NULL ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1 ||
	    X509_set_pubkey(x, subject_key) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)req->not_before) ==
		    NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)req->not_after) ==
		    NULL) {
		snprintf(err, errlen, "cannot build the leaf certificate");
		goto out;
	}
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
	    add_ext(x, &ctx, NID_ext_key_usage, "clientAuth") != 0 ||
	    add_ext(x, &ctx, NID_subject_alt_name, san) != 0 ||
	    add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
	    add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") !=
		    0 ||
	    (task_ext = stint_task_ext_build(&facts, req->ext_oid)) == NULL ||
	    X509_add_ext(x, task_ext, -1) != 1) {
		snprintf(err, errlen, "cannot add the leaf extensions");
		goto out;
	}
	if (X509_sign(x, ca_key, sign_md(ca_key)) <= 0) {
		snprintf(err, errlen, "the CA key could not sign the leaf");
		goto out;
	}
	*out = x;
	x = NULL;
	r = 0;
out:
	X509_EXTENSION_free(task_ext);
	X509_NAME_free(name);
	X509_free(x);
	EVP_PKEY_free(subject_key);
	return r;
}

static bool
valid_at(X509 *x, int64_t now)
{
	time_t t = (time_t)now;

	return X509_cmp_time(X509_get0_notBefore(x), &t) < 0 &&
	       X509_cmp_time(X509_get0_notAfter(x), &t) > 0;
}

int
stint_ca_chain_check(EVP_PKEY *ca_key, STACK_OF(X509) * chain, int64_t now,
		     char *err, size_t errlen)
{
	X509 *x, *up;
	EVP_PKEY *k;
	int i, n = sk_X509_num(chain);

	if (n < 1) {
		snprintf(err, errlen, "the chain holds no certificate");
		return -1;
	}
	x = sk_X509_value(chain, 0);
	if ((k = X509_get0_pubkey(x)) == NULL || EVP_PKEY_eq(k, ca_key) != 1) {
		snprintf(err, errlen,
			 "the first certificate is not for Stint's CA key "
			 "(sign the CSR from 'stint ca csr')");
		return -1;
	}
	if (X509_check_ca(x) != 1 ||
	    ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) &&
	     !(X509_get_key_usage(x) & KU_KEY_CERT_SIGN))) {
		snprintf(err, errlen,
			 "the first certificate is not a CA certificate "
			 "(needs basicConstraints CA:TRUE and keyCertSign)");
		return -1;
	}
	for (i = 0; i < n; i++) {
		x = sk_X509_value(chain, i);
		if (!valid_at(x, now)) {
			snprintf(err, errlen,
				 "certificate %d of the chain is not valid "
				 "now",
				 i + 1);
			return -1;
		}
		up = i + 1 < n ? sk_X509_value(chain, i + 1) : NULL;
		if (up == NULL)
			break;
		if (X509_check_issued(up, x) != X509_V_OK ||
		    X509_verify(x, X509_get0_pubkey(up)) != 1) {
			snprintf(err, errlen,
				 "certificate %d of the chain is not issued by "
				 "certificate %d",
				 i + 1, i + 2);
			return -1;
		}
	}
	return 0;
}

STACK_OF(X509) * stint_ca_chain_parse(const char *buf, size_t len, char *err,
				      size_t errlen)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	BIO *bio = BIO_new_mem_buf(buf, (int)len);
	X509 *x;

	if (chain == NULL || bio == NULL || len > INT_MAX) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(chain, x)) {
			X509_free(x);
			goto fail;
		}
	}
	/* The loop ends at the end of the input or at a bad certificate. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE ||
	    sk_X509_num(chain) == 0) {
		snprintf(err, errlen,
			 "not a list of PEM certificates (or a bad one in it)");
		goto fail;
	}
	ERR_clear_error();
	BIO_free(bio);
	return chain;
fail:
	ERR_clear_error();
	BIO_free(bio);
	sk_X509_pop_free(chain, X509_free);
	return NULL;
}

/* --- the CA in stintd ------------------------------------------------- */

static const char *
ec_type_name(uint32_t type)
{
	return type == STINT_KEY_EC_P384 ? "ec-p384" : "ec-p256";
}

/* An existing host key of another EC type than asked for: the backend
 * refuses the type mismatch, so look for the other type. A CA key in use
 * is kept (leaves chain to it; relying parties trust it), never replaced
 * because the configuration changed. */
static int
host_key_other_type(struct stint_ca *ca, const char *id, uint32_t type,
		    struct stint_pubkey *pub, struct stint_key_facts *facts)
{
	uint32_t other = type == STINT_KEY_EC_P256 ? STINT_KEY_EC_P384
						   : STINT_KEY_EC_P256;
	char berr[256];
	bool created;

	if (ca->backend->ops->host_key(ca->backend, id, other, pub, facts,
				       &created, berr, sizeof(berr)) != 0)
		return -1;
	if (created) {
		/* There was no key after all: do not leave one of a type
		 * nobody configured. */
		if (ca->backend->ops->destroy != NULL)
			ca->backend->ops->destroy(ca->backend, id, berr,
						  sizeof(berr));
		stint_pubkey_free(pub);
		return -1;
	}
	log_warn("host key '%s' is %s but [ca] key = %s: keeping the existing "
		 "key (remove it from the token to make a new CA)",
		 id, ec_type_name(other), ec_type_name(type));
	return 0;
}

static int
host_key(struct stint_ca *ca, const char *id, uint32_t type, EVP_PKEY **key,
	 struct stint_bytes *spki_out, char *err, size_t errlen)
{
	struct stint_pubkey pub;
	struct stint_key_facts facts;
	char berr[256];
	bool created;

	if (ca->backend->ops->host_key == NULL) {
		snprintf(err, errlen, "the %s backend cannot hold a CA key",
			 ca->backend->ops->name);
		return -1;
	}
	if (ca->backend->ops->host_key(ca->backend, id, type, &pub, &facts,
				       &created, berr, sizeof(berr)) != 0) {
		if (host_key_other_type(ca, id, type, &pub, &facts) != 0) {
			snprintf(err, errlen, "host key '%s': %s", id, berr);
			return -1;
		}
		created = false;
	}
	if (created)
		log_info("created host key '%s' in the backend", id);
	*key = stint_backend_pkey(ca->backend, id, &pub.spki, err, errlen);
	if (*key != NULL && spki_out != NULL) {
		*spki_out = pub.spki;
		pub.spki.ptr = NULL;
		pub.spki.len = 0;
	}
	stint_pubkey_free(&pub);
	return *key != NULL ? 0 : -1;
}

static void
ca_path(const struct stint_ca *ca, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/ca.pem", ca->state_dir);
}

static char *
chain_to_pem(STACK_OF(X509) * chain)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL, *data;
	long n;
	int i;

	if (bio == NULL)
		return NULL;
	for (i = 0; i < sk_X509_num(chain); i++)
		if (PEM_write_bio_X509(bio, sk_X509_value(chain, i)) != 1)
			goto out;
	n = BIO_get_mem_data(bio, &data);
	if (n > 0 && (pem = malloc((size_t)n + 1)) != NULL) {
		memcpy(pem, data, (size_t)n);
		pem[n] = '\0';
	}
out:
	BIO_free(bio);
	return pem;
}

/* Public, so 0644; written to a temporary file and renamed into place. */
/* durable: fsync before the rename (the CA chain). Evidence skips it: an
 * fsync per task start costs milliseconds on a busy disk, and the
 * evidence is a record for later checks, not state anything depends on. */
static int
write_public(const char *path, const void *buf, size_t len, bool durable,
	     char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || fchmod(fd, 0644) != 0 ||
	    write(fd, buf, len) != (ssize_t)len ||
	    (durable && fsync(fd) != 0)) {
		snprintf(err, errlen, "cannot write %s: %s", tmp,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot rename %s: %s", tmp,
			 strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int
save_chain(struct stint_ca *ca, STACK_OF(X509) * chain, char *err,
	   size_t errlen)
{
	char path[PATH_MAX + 16], *pem = chain_to_pem(chain);
	int r;

	if (pem == NULL) {
		snprintf(err, errlen, "cannot encode the CA chain");
		return -1;
	}
	ca_path(ca, path, sizeof(path));
	r = write_public(path, pem, strlen(pem), true, err, errlen);
	free(pem);
	return r;
}

static bool
self_signed(X509 *x)
{
	return X509_check_issued(x, x) == X509_V_OK;
}

/* ca.pem when it belongs to the CA key; a fresh root otherwise. */
static int
load_chain(struct stint_ca *ca, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], *buf = NULL, why[PATH_MAX + 64];
	STACK_OF(X509) *chain = NULL;
	X509 *root = NULL;
	size_t len;

	ca_path(ca, path, sizeof(path));
	if (stint_file_read(path, CA_FILE_MAX, &buf, &len, why, sizeof(why)) ==
	    0) {
		chain = stint_ca_chain_parse(buf, len, err, errlen);
		free(buf);
		if (chain == NULL) {
			snprintf(err, errlen,
				 "%s is not a PEM certificate chain: restore "
				 "it or remove it to make a new root",
				 path);
			return -1;
		}
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(chain, 0)),
				ca->ca_key) == 1) {
			ca->chain = chain;
			return 0;
		}
		/* A root of ours for a key the token no longer has (the
		 * token was re-initialised): make a new one. Anything else
		 * was installed by someone and is not silently replaced. */
		if (sk_X509_num(chain) != 1 ||
		    !self_signed(sk_X509_value(chain, 0))) {
			sk_X509_pop_free(chain, X509_free);
			snprintf(err, errlen,
				 "%s is not for the CA key in the token: "
				 "install a chain for the current key or "
				 "remove the file",
				 path);
			return -1;
		}
		log_warn("%s is for another CA key; making a new root", path);
		sk_X509_pop_free(chain, X509_free);
	} else if (errno != ENOENT) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		return -1;
	}
	/* The root allows the same skew as the leaves it will sign. */
	if (stint_ca_root_build(ca->ca_key, ca->trust_domain,
				time(NULL) - ca->skew + STINT_CA_SKEW,
				STINT_CA_ROOT_DAYS, &root, err, errlen) != 0)
		return -1;
	if ((chain = sk_X509_new_null()) == NULL ||
	    !sk_X509_push(chain, root)) {
		X509_free(root);
		sk_X509_free(chain);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (save_chain(ca, chain, err, errlen) != 0) {
		sk_X509_pop_free(chain, X509_free);
		return -1;
	}
	log_info("made a self-signed root 'Stint CA %s' in %s",
		 ca->trust_domain, path);
	ca->chain = chain;
	return 0;
}

int
stint_ca_open(struct stint_backend *b, const char *state_dir,
	      const char *trust_domain, uint32_t ca_key_type, int64_t skew,
	      const char *ext_oid, struct stint_ca **out, char *err,
	      size_t errlen)
{
	struct stint_ca *ca;
	const unsigned char *p;
	char path[PATH_MAX + 16];
	struct stat st;

	*out = NULL;
	if ((ca = calloc(1, sizeof(*ca))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ca->backend = b;
	if (ext_oid != NULL && ext_oid[0] != '\0') {
		if (stint_task_ext_oid_check(ext_oid, err, errlen) != 0) {
			free(ca);
			return -1;
		}
		snprintf(ca->ext_oid, sizeof(ca->ext_oid), "%s", ext_oid);
	}
	ca->ca_key_type = ca_key_type == STINT_KEY_EC_P384 ? STINT_KEY_EC_P384
							   : STINT_KEY_EC_P256;
	ca->skew =
		skew >= 0 && skew <= STINT_CA_SKEW_MAX ? skew : STINT_CA_SKEW;
	pthread_rwlock_init(&ca->lock, NULL);
	snprintf(ca->state_dir, sizeof(ca->state_dir), "%s", state_dir);
	snprintf(ca->trust_domain, sizeof(ca->trust_domain), "%s",
		 trust_domain);
	/* The attestation key stays P-256: the evidence format names
	 * ECDSA P-256 (docs/attestation.md). */
	if (host_key(ca, STINT_CA_KEY_ID, ca->ca_key_type, &ca->ca_key, NULL,
		     err, errlen) != 0 ||
	    host_key(ca, STINT_AK_KEY_ID, STINT_KEY_EC_P256, &ca->ak,
		     &ca->ak_spki, err, errlen) != 0)
		goto fail;
	p = ca->ak_spki.ptr;
	if ((ca->ak_pub = d2i_PUBKEY(NULL, &p, (long)ca->ak_spki.len)) ==
	    NULL) {
		snprintf(err, errlen, "the attestation key does not parse");
		goto fail;
	}
	if (load_chain(ca, err, errlen) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/evidence", state_dir);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path,
			 strerror(errno));
		goto fail;
	}
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", path);
		goto fail;
	}
	*out = ca;
	return 0;
fail:
	stint_ca_close(ca);
	return -1;
}

int64_t
stint_ca_skew(const struct stint_ca *ca)
{
	return ca->skew;
}

void
stint_ca_close(struct stint_ca *ca)
{
	if (ca == NULL)
		return;
	sk_X509_pop_free(ca->chain, X509_free);
	EVP_PKEY_free(ca->ca_key);
	EVP_PKEY_free(ca->ak);
	EVP_PKEY_free(ca->ak_pub);
	stint_bytes_clear(&ca->ak_spki);
	pthread_rwlock_destroy(&ca->lock);
	free(ca);
}

char *
stint_ca_chain_pem(struct stint_ca *ca)
{
	char *pem;

	pthread_rwlock_rdlock(&ca->lock);
	pem = chain_to_pem(ca->chain);
	pthread_rwlock_unlock(&ca->lock);
	return pem;
}

char *
stint_ca_csr_pem(struct stint_ca *ca, char *err, size_t errlen)
{
	X509_REQ *req = NULL;
	BIO *bio = NULL;
	char *pem = NULL, *data;
	long n;

	if (stint_ca_csr_build(ca->ca_key, ca->trust_domain, &req, err,
			       errlen) != 0)
		return NULL;
	if ((bio = BIO_new(BIO_s_mem())) != NULL &&
	    PEM_write_bio_X509_REQ(bio, req) == 1 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0 &&
	    (pem = malloc((size_t)n + 1)) != NULL) {
		memcpy(pem, data, (size_t)n);
		pem[n] = '\0';
	} else {
		snprintf(err, errlen, "cannot encode the CSR");
	}
	BIO_free(bio);
	X509_REQ_free(req);
	return pem;
}

int
stint_ca_install(struct stint_ca *ca, const char *pem, size_t len, char *err,
		 size_t errlen)
{
	STACK_OF(X509) * chain, *old;

	if ((chain = stint_ca_chain_parse(pem, len, err, errlen)) == NULL)
		return -1;
	if (stint_ca_chain_check(ca->ca_key, chain, time(NULL), err, errlen) !=
		    0 ||
	    save_chain(ca, chain, err, errlen) != 0) {
		sk_X509_pop_free(chain, X509_free);
		return -1;
	}
	pthread_rwlock_wrlock(&ca->lock);
	old = ca->chain;
	ca->chain = chain;
	pthread_rwlock_unlock(&ca->lock);
	sk_X509_pop_free(old, X509_free);
	return 0;
}

EVP_PKEY *
stint_ca_ak(struct stint_ca *ca)
{
	return ca->ak;
}

const struct stint_bytes *
stint_ca_ak_spki(struct stint_ca *ca)
{
	return &ca->ak_spki;
}

/* Always NULL in stintd: the test build tests/integration/stintd-fault
 * replaces this function at link time (-Wl,--wrap). */
const char *
stint_ca_test_fault(const struct stint_ca *ca)
{
	(void)ca;
	return NULL;
}

int
stint_ca_issue(struct stint_ca *ca, const struct stint_leaf_req *req,
	       struct stint_bytes *der, char *serial, size_t serial_cap,
	       char *err, size_t errlen)
{
	struct stint_leaf_req leaf = *req;
	const ASN1_INTEGER *sn;
	unsigned char *buf = NULL;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	X509 *x = NULL;
	int n, r;

	der->ptr = NULL;
	der->len = 0;
	leaf.ext_oid = ca->ext_oid;
	pthread_rwlock_rdlock(&ca->lock);
	r = stint_cert_issue(ca->ca_key, sk_X509_value(ca->chain, 0), &leaf, &x,
			     err, errlen);
	pthread_rwlock_unlock(&ca->lock);
	if (r != 0)
		return -1;
	r = -1;
	if ((n = i2d_X509(x, &buf)) <= 0 ||
	    (der->ptr = malloc((size_t)n)) == NULL) {
		snprintf(err, errlen, "cannot encode the leaf");
		goto out;
	}
	memcpy(der->ptr, buf, (size_t)n);
	der->len = (size_t)n;
	sn = X509_get0_serialNumber(x);
	if ((bn = ASN1_INTEGER_to_BN(sn, NULL)) != NULL &&
	    (hex = BN_bn2hex(bn)) != NULL)
		snprintf(serial, serial_cap, "%s", hex);
	else
		snprintf(serial, serial_cap, "?");
	r = 0;
out:
	OPENSSL_free(hex);
	BN_free(bn);
	OPENSSL_free(buf);
	X509_free(x);
	return r;
}

/* --- evidence files --------------------------------------------------- */

static int
evidence_path(const struct stint_ca *ca, const char *task, char *buf,
	      size_t cap)
{
	/* Task ids are [A-Za-z0-9._-]: no '/' can escape the directory. */
	if (!label_ok(task) || task[0] == '.')
		return -1;
	snprintf(buf, cap, "%s/evidence/%s.ev", ca->state_dir, task);
	return 0;
}

int
stint_ca_evidence_save(struct stint_ca *ca, const char *task,
		       const uint8_t *doc, size_t len, char *err, size_t errlen)
{
	char path[PATH_MAX + 64];

	if (evidence_path(ca, task, path, sizeof(path)) != 0) {
		snprintf(err, errlen, "bad task id");
		return -1;
	}
	return write_public(path, doc, len, false, err, errlen);
}

int
stint_ca_evidence_load(struct stint_ca *ca, const char *task, uint8_t **doc,
		       size_t *len)
{
	char path[PATH_MAX + 64], *buf, why[PATH_MAX + 128];

	*doc = NULL;
	if (evidence_path(ca, task, path, sizeof(path)) != 0 ||
	    stint_file_read(path, CA_FILE_MAX, &buf, len, why, sizeof(why)) !=
		    0)
		return -1;
	*doc = (uint8_t *)buf;
	return 0;
}

void
stint_ca_evidence_remove(struct stint_ca *ca, const char *task)
{
	char path[PATH_MAX + 64];

	if (evidence_path(ca, task, path, sizeof(path)) == 0)
		(void)unlink(path);
}
