/*
 * The task-facts extension (cert_ext.h), with OpenSSL ASN.1 templates.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include "attest/cert_ext.h"
#include "common/ident.h"
#include "stint/wire.h"

/* The templates (clang-format cannot lay out their macros). */
/* clang-format off */
ASN1_SEQUENCE(STINT_TASK_BINDING) = {
	ASN1_SIMPLE(STINT_TASK_BINDING, kind, ASN1_UTF8STRING),
	ASN1_IMP_OPT(STINT_TASK_BINDING, cgroup, ASN1_UTF8STRING, 0),
	ASN1_IMP_OPT(STINT_TASK_BINDING, unit, ASN1_UTF8STRING, 1),
	ASN1_IMP_OPT(STINT_TASK_BINDING, exe_sha256, ASN1_OCTET_STRING, 2),
} ASN1_SEQUENCE_END(STINT_TASK_BINDING)

IMPLEMENT_ASN1_FUNCTIONS(STINT_TASK_BINDING)

/* deleg: the delegation block */
ASN1_SEQUENCE(STINT_TASK_DELEGATION) = {
	ASN1_SIMPLE(STINT_TASK_DELEGATION, root_task, ASN1_UTF8STRING),
	ASN1_SIMPLE(STINT_TASK_DELEGATION, depth, ASN1_INTEGER),
	ASN1_SEQUENCE_OF(STINT_TASK_DELEGATION, path, ASN1_UTF8STRING),
	ASN1_SIMPLE(STINT_TASK_DELEGATION, parent_cert_sha256,
		    ASN1_OCTET_STRING),
} ASN1_SEQUENCE_END(STINT_TASK_DELEGATION)

IMPLEMENT_ASN1_FUNCTIONS(STINT_TASK_DELEGATION)

ASN1_SEQUENCE(STINT_TASK_EXT) = {
	ASN1_SIMPLE(STINT_TASK_EXT, task_id, ASN1_UTF8STRING),
	ASN1_SIMPLE(STINT_TASK_EXT, intent_digest, ASN1_OCTET_STRING),
	ASN1_SIMPLE(STINT_TASK_EXT, parent_task, ASN1_UTF8STRING),
	ASN1_SIMPLE(STINT_TASK_EXT, attestation_kind, ASN1_UTF8STRING),
	ASN1_SIMPLE(STINT_TASK_EXT, evidence_digest, ASN1_OCTET_STRING),
	ASN1_EXP_OPT(STINT_TASK_EXT, binding, STINT_TASK_BINDING, 0),
	/* deleg: delegation */
	ASN1_EXP_OPT(STINT_TASK_EXT, delegation, STINT_TASK_DELEGATION, 1),
	/* aud: audiences */
	ASN1_EXP_SEQUENCE_OF_OPT(STINT_TASK_EXT, audiences, ASN1_UTF8STRING,
				 10),
} ASN1_SEQUENCE_END(STINT_TASK_EXT)

IMPLEMENT_ASN1_FUNCTIONS(STINT_TASK_EXT)

static pthread_once_t oid_once = PTHREAD_ONCE_INIT;
/* clang-format on */
static ASN1_OBJECT *oid_default, *oid_legacy;

static void
oid_init(void)
{
	/* Not OBJ_create: the OIDs stay out of OpenSSL's global table, so a
	 * server that loads this code is not changed by it. */
	oid_default = OBJ_txt2obj(STINT_TASK_EXT_OID, 1);
	oid_legacy = OBJ_txt2obj(STINT_TASK_EXT_OID_LEGACY, 1);
}

const ASN1_OBJECT *
stint_task_ext_oid(void)
{
	pthread_once(&oid_once, oid_init);
	return oid_default;
}

static const ASN1_OBJECT *
legacy_oid(void)
{
	pthread_once(&oid_once, oid_init);
	return oid_legacy;
}

/* One decimal arc at *p, canonical (no leading zero) and below 2^63. */
static int
parse_arc(const char **p, uint64_t *arc)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] >= '0' && s[1] <= '9'))
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (INT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*arc = v;
	return 0;
}

int
stint_task_ext_oid_check(const char *dotted, char *err, size_t errlen)
{
	const char *p = dotted;
	uint64_t arc, first = 0;
	int n = 0;

	if (strlen(dotted) >= STINT_OID_TEXT_MAX) {
		snprintf(err, errlen, "OID longer than %d characters",
			 STINT_OID_TEXT_MAX - 1);
		return -1;
	}
	for (;;) {
		if (parse_arc(&p, &arc) != 0) {
			snprintf(err, errlen,
				 "'%s' is not a dotted OID of decimal arcs, "
				 "each below 2^63 (9223372036854775808)",
				 dotted);
			return -1;
		}
		if ((n == 0 && arc > 2) || (n == 1 && first < 2 && arc > 39) ||
		    (n == 1 && arc > (uint64_t)INT64_MAX - 80)) {
			snprintf(err, errlen,
				 "'%s' has no valid root: it starts 0.N or "
				 "1.N with N < 40, or 2.N",
				 dotted);
			return -1;
		}
		if (n++ == 0)
			first = arc;
		if (*p == '\0')
			break;
		if (*p++ != '.') {
			snprintf(err, errlen,
				 "'%s' is not a dotted OID of decimal arcs",
				 dotted);
			return -1;
		}
	}
	if (n < 3) {
		snprintf(err, errlen, "'%s' is too short to be your own arc",
			 dotted);
		return -1;
	}
	if (OBJ_txt2nid(dotted) != NID_undef) {
		snprintf(err, errlen, "'%s' is a registered OID (%s)", dotted,
			 OBJ_nid2sn(OBJ_txt2nid(dotted)));
		return -1;
	}
	return 0;
}

static int
set_text(ASN1_UTF8STRING *s, const char *v)
{
	return ASN1_STRING_set(s, v, (int)strlen(v));
}

/* The dotted OID as an object of its own (NULL or "": the default). */
static ASN1_OBJECT *
oid_dup(const char *dotted)
{
	char err[200];

	if (dotted == NULL || dotted[0] == '\0')
		return OBJ_dup(stint_task_ext_oid());
	if (stint_task_ext_oid_check(dotted, err, sizeof(err)) != 0)
		return NULL;
	return OBJ_txt2obj(dotted, 1);
}

/* An optional text: absent when empty. */
static int
set_opt_text(ASN1_UTF8STRING **s, const char *v)
{
	if (v[0] == '\0')
		return 1;
	return (*s = ASN1_UTF8STRING_new()) != NULL && set_text(*s, v);
}

/* The binding block, when there is something to record. */
static int
binding_build(const struct stint_task_facts *f, STINT_TASK_EXT *e)
{
	STINT_TASK_BINDING *b;

	if (f->bind_kind[0] == '\0')
		return 1;
	if (memchr(f->bind_cgroup, 0, sizeof(f->bind_cgroup)) == NULL ||
	    memchr(f->bind_unit, 0, sizeof(f->bind_unit)) == NULL ||
	    memchr(f->bind_kind, 0, sizeof(f->bind_kind)) == NULL ||
	    (b = e->binding = STINT_TASK_BINDING_new()) == NULL)
		return 0;
	if (!set_text(b->kind, f->bind_kind) ||
	    !set_opt_text(&b->cgroup, f->bind_cgroup) ||
	    !set_opt_text(&b->unit, f->bind_unit))
		return 0;
	if (f->has_exe_sha256 &&
	    ((b->exe_sha256 = ASN1_OCTET_STRING_new()) == NULL ||
	     !ASN1_OCTET_STRING_set(b->exe_sha256, f->exe_sha256, 32)))
		return 0;
	return 1;
}

/* --- aud: the audiences field ---------------------------------------- */

/* The comma-separated set as a SEQUENCE OF UTF8String; none when "". */
static int
audiences_put(STINT_TASK_EXT *e, const char *list)
{
	const char *p = list, *comma;
	ASN1_UTF8STRING *s;
	size_t len;

	if (list == NULL || list[0] == '\0')
		return 0;
	if (stint_audiences_check(list) != NULL ||
	    (e->audiences = sk_ASN1_UTF8STRING_new_null()) == NULL)
		return -1;
	for (; *p != '\0'; p += len + (comma != NULL)) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if ((s = ASN1_UTF8STRING_new()) == NULL ||
		    !ASN1_STRING_set(s, p, (int)len) ||
		    !sk_ASN1_UTF8STRING_push(e->audiences, s)) {
			ASN1_UTF8STRING_free(s);
			return -1;
		}
	}
	return 0;
}

/* The field back as a checked set in buf; -1 when malformed. */
static int
audiences_get(const STINT_TASK_EXT *e, char *buf, size_t cap)
{
	const ASN1_UTF8STRING *s;
	char name[STINT_AUDIENCE_MAX + 1];
	int i, n;

	buf[0] = '\0';
	if (e->audiences == NULL)
		return 0;
	n = sk_ASN1_UTF8STRING_num(e->audiences);
	if (n < 1 || n > STINT_AUDIENCES_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		s = sk_ASN1_UTF8STRING_value(e->audiences, i);
		if (ASN1_STRING_length(s) < 1 ||
		    ASN1_STRING_length(s) > STINT_AUDIENCE_MAX ||
		    memchr(ASN1_STRING_get0_data(s), ',',
			   (size_t)ASN1_STRING_length(s)) != NULL)
			return -1;
		memcpy(name, ASN1_STRING_get0_data(s),
		       (size_t)ASN1_STRING_length(s));
		name[ASN1_STRING_length(s)] = '\0';
		if (stint_audiences_add(buf, cap, name) != 0)
			return -1;
	}
	return stint_audiences_check(buf) == NULL ? 0 : -1;
}

/* --- end aud --------------------------------------------------------- */

static int
get_text(const ASN1_UTF8STRING *s, char *buf, size_t cap)
{
	int n = ASN1_STRING_length(s);

	if (n < 0 || (size_t)n >= cap ||
	    memchr(ASN1_STRING_get0_data(s), 0, (size_t)n) != NULL)
		return -1;
	memcpy(buf, ASN1_STRING_get0_data(s), (size_t)n);
	buf[n] = '\0';
	return 0;
}

static int
get_digest(const ASN1_OCTET_STRING *s, uint8_t out[32])
{
	if (ASN1_STRING_length(s) != 32)
		return -1;
	memcpy(out, ASN1_STRING_get0_data(s), 32);
	return 0;
}

/* --- deleg: the delegation block ------------------------------------- */

/* The comma-joined path's names, each an agent name; their count, or -1
 * when one is not a name or there are more than STINT_DELEG_DEPTH_MAX + 1.
 * Each name is pushed onto sk when sk is not NULL. */
static int
path_split(const char *path, STACK_OF(ASN1_UTF8STRING) * sk)
{
	char name[STINT_NAME_MAX + 1];
	const char *p = path, *comma;
	ASN1_UTF8STRING *s;
	size_t len;
	int n = 0;

	do {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || len > STINT_NAME_MAX ||
		    ++n > STINT_DELEG_DEPTH_MAX + 1)
			return -1;
		memcpy(name, p, len);
		name[len] = '\0';
		if (!stint_name_ok(name))
			return -1;
		if (sk != NULL &&
		    ((s = ASN1_UTF8STRING_new()) == NULL ||
		     !set_text(s, name) || !sk_ASN1_UTF8STRING_push(sk, s))) {
			ASN1_UTF8STRING_free(s);
			return -1;
		}
		p += len + 1; /* past the comma; unused after the last */
	} while (comma != NULL);
	return n;
}

/* The delegation fields are well formed: a parent and a root that are
 * task ids, depth 1..STINT_DELEG_DEPTH_MAX, and depth + 1 agent names. */
static bool
deleg_shape_ok(const struct stint_task_facts *f)
{
	return memchr(f->root_task, 0, sizeof(f->root_task)) != NULL &&
	       memchr(f->path, 0, sizeof(f->path)) != NULL &&
	       stint_task_id_ok(f->root_task) &&
	       stint_task_id_ok(f->parent_task) && f->depth >= 1 &&
	       f->depth <= STINT_DELEG_DEPTH_MAX &&
	       path_split(f->path, NULL) == f->depth + 1;
}

int
stint_task_deleg_check(const struct stint_task_facts *f, const char *agent,
		       char *err, size_t errlen)
{
	const char *last;

	if (!f->has_delegation)
		return 0;
	if (!deleg_shape_ok(f)) {
		snprintf(err, errlen,
			 "the delegation block is malformed (depth %d, path "
			 "'%.200s')",
			 f->depth, f->path);
		return -1;
	}
	last = strrchr(f->path, ',') + 1; /* at least two names */
	if (agent != NULL && strcmp(last, agent) != 0) {
		snprintf(err, errlen,
			 "the delegation path ends with agent '%s', not this "
			 "certificate's agent '%s'",
			 last, agent);
		return -1;
	}
	if (f->depth == 1 && strcmp(f->root_task, f->parent_task) != 0) {
		snprintf(err, errlen,
			 "depth 1 but the root task %s is not the parent %s",
			 f->root_task, f->parent_task);
		return -1;
	}
	if (f->depth > 1 && strcmp(f->root_task, f->parent_task) == 0) {
		snprintf(err, errlen,
			 "depth %d but the root task is the parent %s",
			 f->depth, f->parent_task);
		return -1;
	}
	if (strcmp(f->task_id, f->parent_task) == 0 ||
	    strcmp(f->task_id, f->root_task) == 0) {
		snprintf(err, errlen, "task %s delegates from itself",
			 f->task_id);
		return -1;
	}
	return 0;
}

/* The block, when the task was delegated. */
static int
deleg_build(const struct stint_task_facts *f, STINT_TASK_EXT *e)
{
	STINT_TASK_DELEGATION *d;

	if (!f->has_delegation)
		return 1;
	if (!deleg_shape_ok(f) ||
	    (d = e->delegation = STINT_TASK_DELEGATION_new()) == NULL)
		return 0;
	return set_text(d->root_task, f->root_task) &&
	       ASN1_INTEGER_set_int64(d->depth, f->depth) &&
	       path_split(f->path, d->path) == f->depth + 1 &&
	       ASN1_OCTET_STRING_set(d->parent_cert_sha256,
				     f->parent_cert_sha256, 32);
}

/* The block back into f, strictly (absent: has_delegation false). */
static int
deleg_get(const STINT_TASK_DELEGATION *d, struct stint_task_facts *f)
{
	const ASN1_UTF8STRING *s;
	char name[STINT_NAME_MAX + 1];
	int64_t depth;
	int i, n;

	if (d == NULL)
		return 0;
	n = sk_ASN1_UTF8STRING_num(d->path);
	if (get_text(d->root_task, f->root_task, sizeof(f->root_task)) != 0 ||
	    ASN1_INTEGER_get_int64(&depth, d->depth) != 1 || depth < 1 ||
	    depth > STINT_DELEG_DEPTH_MAX || n != depth + 1 ||
	    get_digest(d->parent_cert_sha256, f->parent_cert_sha256) != 0)
		return -1;
	f->depth = (int)depth;
	for (i = 0; i < n; i++) {
		s = sk_ASN1_UTF8STRING_value(d->path, i);
		if (get_text(s, name, sizeof(name)) != 0 ||
		    !stint_name_ok(name))
			return -1;
		if (i > 0)
			strcat(f->path, ",");
		strcat(f->path, name); /* 16 names of 64 bytes fit */
	}
	f->has_delegation = true;
	return deleg_shape_ok(f) ? 0 : -1;
}

/* --- end deleg ------------------------------------------------------- */

X509_EXTENSION *
stint_task_ext_build(const struct stint_task_facts *f, const char *oid)
{
	STINT_TASK_EXT *e = NULL;
	X509_EXTENSION *ext = NULL;
	ASN1_OCTET_STRING *os = NULL;
	ASN1_OBJECT *obj = NULL;
	unsigned char *der = NULL;
	int len;

	if (stint_task_ext_oid() == NULL || (obj = oid_dup(oid)) == NULL ||
	    memchr(f->task_id, 0, sizeof(f->task_id)) == NULL) {
		ASN1_OBJECT_free(obj);
		return NULL;
	}
	if ((e = STINT_TASK_EXT_new()) == NULL ||
	    !set_text(e->task_id, f->task_id) ||
	    !ASN1_OCTET_STRING_set(e->intent_digest, f->intent_digest, 32) ||
	    !set_text(e->parent_task, f->parent_task) ||
	    !set_text(e->attestation_kind, f->attestation_kind) ||
	    !ASN1_OCTET_STRING_set(e->evidence_digest, f->evidence_digest,
				   32) ||
	    !binding_build(f, e))
		goto out;
	if (audiences_put(e, f->audiences) != 0 || /* aud */
	    !deleg_build(f, e))                    /* deleg */
		goto out;
	if ((len = i2d_STINT_TASK_EXT(e, &der)) <= 0)
		goto out;
	if ((os = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(os, der, len))
		goto out;
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
out:
	ASN1_OBJECT_free(obj);
	ASN1_OCTET_STRING_free(os);
	OPENSSL_free(der);
	STINT_TASK_EXT_free(e);
	return ext;
}

/* No control characters: verify-peer prints these as lines. */
static bool
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* The binding block into f (absent: all empty). */
static int
binding_get(const STINT_TASK_BINDING *b, struct stint_task_facts *f)
{
	if (b == NULL)
		return 0;
	if (get_text(b->kind, f->bind_kind, sizeof(f->bind_kind)) != 0 ||
	    f->bind_kind[0] == '\0' ||
	    (b->cgroup != NULL && get_text(b->cgroup, f->bind_cgroup,
					   sizeof(f->bind_cgroup)) != 0) ||
	    (b->unit != NULL &&
	     get_text(b->unit, f->bind_unit, sizeof(f->bind_unit)) != 0) ||
	    !printable(f->bind_kind) || !printable(f->bind_cgroup) ||
	    !printable(f->bind_unit))
		return -1;
	if (b->exe_sha256 != NULL) {
		if (get_digest(b->exe_sha256, f->exe_sha256) != 0)
			return -1;
		f->has_exe_sha256 = true;
	}
	return 0;
}

static bool
accepted(const ASN1_OBJECT *o, const ASN1_OBJECT *extra)
{
	return OBJ_cmp(o, stint_task_ext_oid()) == 0 ||
	       (legacy_oid() != NULL && OBJ_cmp(o, legacy_oid()) == 0) ||
	       (extra != NULL && OBJ_cmp(o, extra) == 0);
}

/* The index of the one task extension, or -1 with err. */
static int
find_ext(const X509 *cert, const char *extra_oid, char *err, size_t errlen)
{
	ASN1_OBJECT *extra = NULL;
	int i, n = X509_get_ext_count(cert), found = -1, count = 0;

	if (extra_oid != NULL && extra_oid[0] != '\0' &&
	    (extra = oid_dup(extra_oid)) == NULL) {
		snprintf(err, errlen, "bad task extension OID '%s'", extra_oid);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (accepted(X509_EXTENSION_get_object(X509_get_ext(cert, i)),
			     extra)) {
			found = i;
			count++;
		}
	ASN1_OBJECT_free(extra);
	if (count == 0)
		snprintf(err, errlen, "no Stint task extension (%s%s%s)",
			 STINT_TASK_EXT_OID,
			 extra_oid != NULL && extra_oid[0] != '\0' ? " or "
								   : "",
			 extra_oid != NULL ? extra_oid : "");
	else if (count > 1)
		snprintf(err, errlen, "more than one Stint task extension");
	return count == 1 ? found : -1;
}

int
stint_task_ext_get(const X509 *cert, const char *extra_oid,
		   struct stint_task_facts *f, char *err, size_t errlen)
{
	const X509_EXTENSION *ext;
	const ASN1_OCTET_STRING *os;
	const unsigned char *p;
	STINT_TASK_EXT *e = NULL;
	int i, r = -1;

	memset(f, 0, sizeof(*f));
	if (stint_task_ext_oid() == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((i = find_ext(cert, extra_oid, err, errlen)) < 0)
		return -1;
	ext = X509_get_ext(cert, i);
	os = X509_EXTENSION_get_data((X509_EXTENSION *)ext);
	p = ASN1_STRING_get0_data(os);
	e = d2i_STINT_TASK_EXT(NULL, &p, ASN1_STRING_length(os));
	if (e == NULL ||
	    p != ASN1_STRING_get0_data(os) + ASN1_STRING_length(os)) {
		snprintf(err, errlen,
			 "the Stint task extension is not a "
			 "well-formed StintTask");
		goto out;
	}
	if (get_text(e->task_id, f->task_id, sizeof(f->task_id)) != 0 ||
	    f->task_id[0] == '\0' ||
	    get_text(e->parent_task, f->parent_task, sizeof(f->parent_task)) !=
		    0 ||
	    get_text(e->attestation_kind, f->attestation_kind,
		     sizeof(f->attestation_kind)) != 0 ||
	    get_digest(e->intent_digest, f->intent_digest) != 0 ||
	    get_digest(e->evidence_digest, f->evidence_digest) != 0 ||
	    binding_get(e->binding, f) != 0 ||
	    audiences_get(e, f->audiences, sizeof(f->audiences)) != 0 ||
	    deleg_get(e->delegation, f) != 0) {
		snprintf(err, errlen,
			 "the Stint task extension has a field out of range");
		goto out;
	}
	r = 0;
out:
	STINT_TASK_EXT_free(e);
	return r;
}
