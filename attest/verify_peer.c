/*
 * stint_verify_peer (include/stint/verify.h): what a relying party checks
 * on a presented Stint certificate, in one function.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "attest/cert_ext.h"
#include "common/audience.h"
#include "stint/verify.h"

#define SPIFFE_PREFIX "spiffe://"
#define AGENT_PATH    "/agent/"

const char *
stint_verify_strerror(int result)
{
	switch (result) {
	case STINT_VERIFY_OK:
		return "ok";
	case STINT_VERIFY_ERR_ARGS:
		return "bad arguments";
	case STINT_VERIFY_ERR_CHAIN:
		return "chain";
	case STINT_VERIFY_ERR_VALIDITY:
		return "validity";
	case STINT_VERIFY_ERR_SAN:
		return "spiffe-id";
	case STINT_VERIFY_ERR_TRUST_DOMAIN:
		return "trust-domain";
	case STINT_VERIFY_ERR_AGENT:
		return "agent";
	case STINT_VERIFY_ERR_CA:
		return "basic-constraints";
	case STINT_VERIFY_ERR_USAGE:
		return "key-usage";
	case STINT_VERIFY_ERR_TASK_EXT:
		return "task-extension";
	case STINT_VERIFY_ERR_AUDIENCE:
		return "audience";
	case STINT_VERIFY_ERR_DELEGATION:
		return "delegation";
	case STINT_VERIFY_ERR_PARENT:
		return "parent";
	default:
		return "out of memory";
	}
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static bool
name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* spiffe://<td>/agent/<name>, both parts plain names. */
static int
parse_spiffe(const char *uri, size_t len, struct stint_peer_identity *id)
{
	const char *td, *slash, *name;
	size_t i, td_len, name_len;

	if (len >= sizeof(id->spiffe_id) || memchr(uri, 0, len) != NULL ||
	    strncmp(uri, SPIFFE_PREFIX, strlen(SPIFFE_PREFIX)) != 0)
		return -1;
	memcpy(id->spiffe_id, uri, len);
	id->spiffe_id[len] = '\0';
	td = id->spiffe_id + strlen(SPIFFE_PREFIX);
	if ((slash = strchr(td, '/')) == NULL ||
	    strncmp(slash, AGENT_PATH, strlen(AGENT_PATH)) != 0)
		return -1;
	td_len = (size_t)(slash - td);
	name = slash + strlen(AGENT_PATH);
	name_len = strlen(name);
	if (td_len == 0 || td_len >= sizeof(id->trust_domain) ||
	    name_len == 0 || name_len >= sizeof(id->agent))
		return -1;
	for (i = 0; i < td_len; i++)
		if (!name_char(td[i]))
			return -1;
	for (i = 0; i < name_len; i++)
		if (!name_char(name[i]))
			return -1;
	memcpy(id->trust_domain, td, td_len);
	id->trust_domain[td_len] = '\0';
	memcpy(id->agent, name, name_len + 1);
	return 0;
}

static int
check_san(X509 *leaf, struct stint_peer_identity *id, char *err, size_t errlen)
{
	GENERAL_NAMES *names;
	const GENERAL_NAME *gn;
	int r = STINT_VERIFY_OK, crit = 0;

	names = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
	if (names == NULL)
		return fail(err, errlen, STINT_VERIFY_ERR_SAN,
			    "no subjectAltName%s", "");
	if (sk_GENERAL_NAME_num(names) != 1) {
		r = fail(err, errlen, STINT_VERIFY_ERR_SAN,
			 "subjectAltName must hold exactly one URI%s", "");
		goto out;
	}
	gn = sk_GENERAL_NAME_value(names, 0);
	if (gn->type != GEN_URI ||
	    parse_spiffe(
		    (const char *)ASN1_STRING_get0_data(
			    gn->d.uniformResourceIdentifier),
		    (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier),
		    id) != 0)
		r = fail(
			err, errlen, STINT_VERIFY_ERR_SAN,
			"the SAN is not a spiffe://<trust domain>/agent/<name> "
			"URI%s",
			"");
out:
	GENERAL_NAMES_free(names);
	return r;
}

static int
check_chain(X509 *leaf, STACK_OF(X509) * untrusted, X509_STORE *trust,
	    time_t now, char *err, size_t errlen)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int r = STINT_VERIFY_OK, e;

	if (ctx == NULL ||
	    X509_STORE_CTX_init(ctx, trust, leaf, untrusted) != 1)
		return fail(err, errlen, STINT_VERIFY_ERR_NOMEM,
			    "out of memory%s", "");
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	if (now != 0)
		X509_STORE_CTX_set_time(ctx, 0, now);
	if (X509_verify_cert(ctx) != 1) {
		e = X509_STORE_CTX_get_error(ctx);
		if (e == X509_V_ERR_CERT_HAS_EXPIRED ||
		    e == X509_V_ERR_CERT_NOT_YET_VALID)
			r = fail(err, errlen, STINT_VERIFY_ERR_VALIDITY,
				 "certificate not valid now: %s",
				 X509_verify_cert_error_string(e));
		else if (e == X509_V_ERR_INVALID_PURPOSE)
			r = fail(err, errlen, STINT_VERIFY_ERR_USAGE,
				 "not a TLS client certificate: %s",
				 X509_verify_cert_error_string(e));
		else
			r = fail(err, errlen, STINT_VERIFY_ERR_CHAIN,
				 "does not chain to the Stint CA: %s",
				 X509_verify_cert_error_string(e));
	}
	X509_STORE_CTX_free(ctx);
	return r;
}

static void
serial_hex(X509 *leaf, char *buf, size_t cap)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

	snprintf(buf, cap, "%s", hex != NULL ? hex : "");
	OPENSSL_free(hex);
	BN_free(bn);
}

/* A certificate's notAfter as epoch seconds (the difference from the
 * epoch); -1 when it cannot be read. */
static int
not_after_epoch(const X509 *x, int64_t *out)
{
	ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
	int day, sec, r = -1;

	if (epoch != NULL &&
	    ASN1_TIME_diff(&day, &sec, epoch, X509_get0_notAfter(x)) == 1) {
		*out = (int64_t)day * 86400 + sec;
		r = 0;
	}
	ASN1_TIME_free(epoch);
	return r;
}

int
stint_verify_peer(X509 *leaf, STACK_OF(X509) * untrusted, X509_STORE *trust,
		  const char *trust_domain, const char *agent, time_t now,
		  struct stint_peer_identity *out, char *err, size_t errlen)
{
	return stint_verify_peer_oid(leaf, untrusted, trust, trust_domain,
				     agent, NULL, now, out, err, errlen);
}

int
stint_verify_peer_oid(X509 *leaf, STACK_OF(X509) * untrusted, X509_STORE *trust,
		      const char *trust_domain, const char *agent,
		      const char *task_oid, time_t now,
		      struct stint_peer_identity *out, char *err, size_t errlen)
{
	return stint_verify_peer_audience(leaf, untrusted, trust, trust_domain,
					  agent, task_oid, NULL, now, out, err,
					  errlen);
}

/* aud: the relying party must be one of the task's audiences; a task that
 * names none is refused too (it was not meant for anyone in particular). */
static int
check_audience(const struct stint_task_facts *f, const char *audience,
	       char *err, size_t errlen)
{
	if (audience == NULL || stint_audience_in(f->audiences, audience))
		return STINT_VERIFY_OK;
	if (f->audiences[0] == '\0')
		return fail(err, errlen, STINT_VERIFY_ERR_AUDIENCE,
			    "task %s names no audience, so not '%s'",
			    f->task_id, audience);
	return fail(err, errlen, STINT_VERIFY_ERR_AUDIENCE,
		    "task %s is not for audience '%s' (it names: %s)",
		    f->task_id, audience, f->audiences);
}

/* --- deleg: delegated tasks ----------------------------------------- */

static void
deleg_copy(const struct stint_task_facts *f, struct stint_peer_identity *id)
{
	if (!f->has_delegation)
		return;
	id->delegated = 1;
	snprintf(id->root_task, sizeof(id->root_task), "%s", f->root_task);
	id->depth = f->depth;
	snprintf(id->delegation_path, sizeof(id->delegation_path), "%s",
		 f->path);
	memcpy(id->parent_cert_sha256, f->parent_cert_sha256, 32);
}

/* The parent's own delegation facts against the child's: a top-level
 * parent is the root of a depth-1 child; a delegated one has the child's
 * root, one level less, and the child's path without its last name. */
static int
parent_level_ok(const struct stint_peer_identity *child,
		const struct stint_task_facts *pf, char *err, size_t errlen)
{
	size_t prefix = (size_t)(strrchr(child->delegation_path, ',') -
				 child->delegation_path);

	if (!pf->has_delegation) {
		if (child->depth == 1 &&
		    strcmp(child->root_task, pf->task_id) == 0)
			return STINT_VERIFY_OK;
		return fail(err, errlen, STINT_VERIFY_ERR_PARENT,
			    "the parent %s is a top-level task, but the child "
			    "is at depth %d of root %s",
			    pf->task_id, child->depth, child->root_task);
	}
	if (strcmp(pf->root_task, child->root_task) != 0 ||
	    pf->depth != child->depth - 1 || strlen(pf->path) != prefix ||
	    strncmp(pf->path, child->delegation_path, prefix) != 0)
		return fail(err, errlen, STINT_VERIFY_ERR_PARENT,
			    "the parent's chain (root %s, depth %d, path %s) "
			    "is not the child's one level up",
			    pf->root_task, pf->depth, pf->path);
	return STINT_VERIFY_OK;
}

/* The name before the last in the child's path: the parent's agent. */
static void
parent_agent(const struct stint_peer_identity *child, char *out, size_t cap)
{
	const char *end = strrchr(child->delegation_path, ','), *start = end;

	while (start > child->delegation_path && start[-1] != ',')
		start--;
	snprintf(out, cap, "%.*s", (int)(end - start), start);
}

int
stint_verify_parent(const struct stint_peer_identity *child, X509 *parent,
		    const char *task_oid, char *err, size_t errlen)
{
	struct stint_peer_identity pid;
	struct stint_task_facts pf;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	char why[200], want_agent[65];
	int64_t parent_na;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (child == NULL || parent == NULL || !child->delegated ||
	    strchr(child->delegation_path, ',') == NULL)
		return fail(err, errlen, STINT_VERIFY_ERR_ARGS,
			    "a delegated child identity and a parent "
			    "certificate are required%s",
			    "");
	if (X509_digest(parent, EVP_sha256(), md, &md_len) != 1 || md_len != 32)
		return fail(err, errlen, STINT_VERIFY_ERR_NOMEM,
			    "cannot hash the parent certificate%s", "");
	if (memcmp(md, child->parent_cert_sha256, 32) != 0)
		return fail(err, errlen, STINT_VERIFY_ERR_PARENT,
			    "its SHA-256 is not the parentCertSha256 of task "
			    "%s",
			    child->task);
	if (stint_task_ext_get(parent, task_oid, &pf, why, sizeof(why)) != 0)
		return fail(err, errlen, STINT_VERIFY_ERR_PARENT,
			    "the parent's task extension: %s", why);
	if (strcmp(pf.task_id, child->parent_task) != 0)
		return fail(err, errlen, STINT_VERIFY_ERR_PARENT,
			    "it is the certificate of task %s, not of the "
			    "parent %s",
			    pf.task_id, child->parent_task);
	if (not_after_epoch(parent, &parent_na) != 0 ||
	    parent_na < child->not_after)
		return fail(err, errlen, STINT_VERIFY_ERR_PARENT,
			    "the child %s outlives its parent %s", child->task,
			    pf.task_id);
	memset(&pid, 0, sizeof(pid));
	parent_agent(child, want_agent, sizeof(want_agent));
	if (check_san(parent, &pid, why, sizeof(why)) != 0 ||
	    strcmp(pid.agent, want_agent) != 0 ||
	    strcmp(pid.trust_domain, child->trust_domain) != 0)
		return fail(err, errlen, STINT_VERIFY_ERR_PARENT,
			    "the parent's SPIFFE ID is not "
			    "spiffe://%s/agent/%s",
			    child->trust_domain, want_agent);
	if (!stint_audiences_subset(child->audiences, pf.audiences, why,
				    sizeof(why)))
		return fail(err, errlen, STINT_VERIFY_ERR_PARENT,
			    "the child names audience '%s', which its parent "
			    "does not",
			    why);
	if (stint_task_deleg_check(&pf, pid.agent, why, sizeof(why)) != 0)
		return fail(err, errlen, STINT_VERIFY_ERR_PARENT,
			    "the parent's own delegation: %s", why);
	return parent_level_ok(child, &pf, err, errlen);
}

/* --- end deleg ------------------------------------------------------- */

int
stint_verify_peer_audience(X509 *leaf, STACK_OF(X509) * untrusted,
			   X509_STORE *trust, const char *trust_domain,
			   const char *agent, const char *task_oid,
			   const char *audience, time_t now,
			   struct stint_peer_identity *out, char *err,
			   size_t errlen)
{
	struct stint_peer_identity id;
	struct stint_task_facts facts;
	uint32_t flags;
	int r;
	char why[200];

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (leaf == NULL || trust == NULL || out == NULL)
		return fail(err, errlen, STINT_VERIFY_ERR_ARGS,
			    "leaf, trust store and out are required%s", "");
	memset(out, 0, sizeof(*out));
	memset(&id, 0, sizeof(id));
	if ((r = check_chain(leaf, untrusted, trust, now, err, errlen)) != 0)
		return r;
	flags = X509_get_extension_flags(leaf);
	if (X509_check_ca(leaf) != 0 || !(flags & EXFLAG_BCONS) ||
	    (flags & EXFLAG_CA))
		return fail(err, errlen, STINT_VERIFY_ERR_CA,
			    "not a leaf: basicConstraints must be CA:FALSE%s",
			    "");
	if (!(flags & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT) ||
	    !(flags & EXFLAG_KUSAGE) ||
	    !(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE))
		return fail(err, errlen, STINT_VERIFY_ERR_USAGE,
			    "needs extendedKeyUsage clientAuth and keyUsage "
			    "digitalSignature%s",
			    "");
	if ((r = check_san(leaf, &id, err, errlen)) != 0)
		return r;
	if (trust_domain != NULL && strcmp(trust_domain, id.trust_domain) != 0)
		return fail(err, errlen, STINT_VERIFY_ERR_TRUST_DOMAIN,
			    "SPIFFE ID %s is of another trust domain",
			    id.spiffe_id);
	if (agent != NULL && strcmp(agent, id.agent) != 0)
		return fail(err, errlen, STINT_VERIFY_ERR_AGENT,
			    "SPIFFE ID %s is of another agent", id.spiffe_id);
	if (stint_task_ext_get(leaf, task_oid, &facts, why, sizeof(why)) != 0)
		return fail(err, errlen, STINT_VERIFY_ERR_TASK_EXT, "%s", why);
	if ((r = check_audience(&facts, audience, err, errlen)) != 0)
		return r;
	if (stint_task_deleg_check(&facts, id.agent, why, sizeof(why)) != 0)
		return fail(err, errlen, STINT_VERIFY_ERR_DELEGATION,
			    "task %s: %s", facts.task_id, why);
	snprintf(id.task, sizeof(id.task), "%s", facts.task_id);
	snprintf(id.parent_task, sizeof(id.parent_task), "%s",
		 facts.parent_task);
	snprintf(id.attestation_kind, sizeof(id.attestation_kind), "%s",
		 facts.attestation_kind);
	memcpy(id.intent_digest, facts.intent_digest, 32);
	memcpy(id.evidence_digest, facts.evidence_digest, 32);
	memcpy(id.bind_kind, facts.bind_kind, sizeof(id.bind_kind));
	memcpy(id.bind_cgroup, facts.bind_cgroup, sizeof(id.bind_cgroup));
	memcpy(id.bind_unit, facts.bind_unit, sizeof(id.bind_unit));
	id.has_exe_sha256 = facts.has_exe_sha256;
	memcpy(id.exe_sha256, facts.exe_sha256, 32);
	snprintf(id.audiences, sizeof(id.audiences), "%s", facts.audiences);
	deleg_copy(&facts, &id); /* deleg */
	if (not_after_epoch(leaf, &id.not_after) != 0)
		return fail(err, errlen, STINT_VERIFY_ERR_NOMEM,
			    "cannot read notAfter%s", "");
	serial_hex(leaf, id.serial, sizeof(id.serial));
	*out = id;
	return STINT_VERIFY_OK;
}
