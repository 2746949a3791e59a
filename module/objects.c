/*
 * Task keys as PKCS#11 objects. Each live task from LIST becomes a private
 * key, a public key and, once it has one, an X.509 certificate, sharing
 * CKA_ID (the task id bytes) and CKA_LABEL (the task id).
 *
 * Tasks keep their slot in the table for the module's lifetime, so an
 * object handle always names the same task: handle = epoch << 24 |
 * index << 2 | kind. A task that leaves LIST stays as a tombstone: finding
 * and reading it fail as for any unknown object, but a signature with a
 * handle the application kept still goes to stintd, which refuses it as
 * not live and audits the attempt.
 *
 * Attribute values are built once per task, in the byte form PKCS#11
 * returns them, so C_GetAttributeValue and C_FindObjects compare bytes.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "module/module.h"

#define MAX_TASKS (1u << 22)

struct attr {
	CK_ATTRIBUTE_TYPE type;
	void *val;
	CK_ULONG len;
};

struct attrs {
	struct attr *a;
	size_t n, cap;
};

struct task_obj {
	struct stint_task_key key; /* owned */
	CK_SLOT_ID slot;           /* its agent's slot (slots.c) */
	bool live;
	bool has_cert;
	size_t sig_len;
	struct attrs obj[3]; /* indexed by enum obj_kind - 1 */
};

static struct task_obj *g_tasks;
static size_t g_n_tasks, g_cap_tasks;

/* Secret parts of a private key: never readable (CKR_ATTRIBUTE_SENSITIVE). */
static const CK_ATTRIBUTE_TYPE ec_secret[] = {CKA_VALUE};
static const CK_ATTRIBUTE_TYPE rsa_secret[] = {
	CKA_VALUE,      CKA_PRIVATE_EXPONENT, CKA_PRIME_1,     CKA_PRIME_2,
	CKA_EXPONENT_1, CKA_EXPONENT_2,       CKA_COEFFICIENT,
};

static bool
is_ec(uint32_t key_type)
{
	return key_type == STINT_KEY_EC_P256 || key_type == STINT_KEY_EC_P384;
}

/* --- attribute lists ------------------------------------------------ */

static void
attrs_clear(struct attrs *as)
{
	size_t i;

	for (i = 0; i < as->n; i++)
		free(as->a[i].val);
	free(as->a);
	memset(as, 0, sizeof(*as));
}

static int
add(struct attrs *as, CK_ATTRIBUTE_TYPE type, const void *val, size_t len)
{
	struct attr *grown;
	void *copy = NULL;

	if (as->n == as->cap) {
		grown = realloc(as->a, (as->cap + 16) * sizeof(*grown));
		if (grown == NULL)
			return -1;
		as->a = grown;
		as->cap += 16;
	}
	if (len > 0) {
		if ((copy = malloc(len)) == NULL)
			return -1;
		memcpy(copy, val, len);
	}
	as->a[as->n].type = type;
	as->a[as->n].val = copy;
	as->a[as->n].len = len;
	as->n++;
	return 0;
}

static int
add_bool(struct attrs *as, CK_ATTRIBUTE_TYPE type, bool v)
{
	CK_BBOOL b = v ? CK_TRUE : CK_FALSE;

	return add(as, type, &b, sizeof(b));
}

static int
add_ulong(struct attrs *as, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	return add(as, type, &v, sizeof(v));
}

static int
add_bytes(struct attrs *as, CK_ATTRIBUTE_TYPE type, const struct stint_bytes *b)
{
	return add(as, type, b->ptr, b->len);
}

static int
add_date(struct attrs *as, CK_ATTRIBUTE_TYPE type, const struct tm *tm)
{
	char buf[16];
	CK_DATE d;

	snprintf(buf, sizeof(buf), "%04d%02d%02d", (tm->tm_year + 1900) % 10000,
		 (tm->tm_mon + 1) % 100, tm->tm_mday % 100);
	memcpy(d.year, buf, 4);
	memcpy(d.month, buf + 4, 2);
	memcpy(d.day, buf + 6, 2);
	return add(as, type, &d, sizeof(d));
}

static const struct attr *
attr_find(const struct attrs *as, CK_ATTRIBUTE_TYPE type)
{
	size_t i;

	for (i = 0; i < as->n; i++)
		if (as->a[i].type == type)
			return &as->a[i];
	return NULL;
}

/* --- building a task's objects -------------------------------------- */

/* DER pieces of the certificate that PKCS#11 exposes as attributes. */
struct cert_facts {
	uint8_t *subject, *issuer, *serial;
	int subject_len, issuer_len, serial_len;
	struct tm not_before, not_after;
	uint8_t check[3];
};

static void
cert_facts_clear(struct cert_facts *cf)
{
	OPENSSL_free(cf->subject);
	OPENSSL_free(cf->issuer);
	OPENSSL_free(cf->serial);
	memset(cf, 0, sizeof(*cf));
}

static int
cert_parse(const struct stint_bytes *der, struct cert_facts *cf)
{
	const unsigned char *p = der->ptr;
	unsigned char md[SHA_DIGEST_LENGTH];
	X509 *x;
	int r = -1;

	memset(cf, 0, sizeof(*cf));
	if (der->len == 0 || der->len > STINT_FRAME_MAX)
		return -1;
	if ((x = d2i_X509(NULL, &p, (long)der->len)) == NULL)
		return -1;
	if (p != der->ptr + der->len)
		goto out;
	cf->subject_len = i2d_X509_NAME(X509_get_subject_name(x), &cf->subject);
	cf->issuer_len = i2d_X509_NAME(X509_get_issuer_name(x), &cf->issuer);
	cf->serial_len =
		i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &cf->serial);
	if (cf->subject_len <= 0 || cf->issuer_len <= 0 || cf->serial_len <= 0)
		goto out;
	if (!ASN1_TIME_to_tm(X509_get0_notBefore(x), &cf->not_before) ||
	    !ASN1_TIME_to_tm(X509_get0_notAfter(x), &cf->not_after))
		goto out;
	/* CKA_CHECK_VALUE of a certificate: first 3 bytes of SHA-1(value). */
	SHA1(der->ptr, der->len, md);
	memcpy(cf->check, md, sizeof(cf->check));
	r = 0;
out:
	if (r != 0)
		cert_facts_clear(cf);
	X509_free(x);
	return r;
}

/* Attributes every object of the task has. */
static int
add_storage(struct attrs *as, CK_OBJECT_CLASS cls, const char *id)
{
	size_t id_len = strlen(id);

	return add_ulong(as, CKA_CLASS, cls) || add_bool(as, CKA_TOKEN, true) ||
	       add_bool(as, CKA_PRIVATE, false) ||
	       add_bool(as, CKA_MODIFIABLE, false) ||
	       add_bool(as, CKA_COPYABLE, false) ||
	       add_bool(as, CKA_DESTROYABLE, false) ||
	       add(as, CKA_LABEL, id, id_len) || add(as, CKA_ID, id, id_len);
}

static int
add_key_common(struct attrs *as, const struct stint_task_key *k,
	       const struct cert_facts *cf)
{
	CK_MECHANISM_TYPE mechs[STINT_MECHS_MAX];
	time_t t = (time_t)k->not_after;
	struct tm tm;
	size_t i;

	for (i = 0; i < k->n_mechs && i < STINT_MECHS_MAX; i++)
		mechs[i] = (CK_MECHANISM_TYPE)k->mechs[i];
	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	return add_ulong(as, CKA_KEY_TYPE,
			 is_ec(k->key_type) ? CKK_EC : CKK_RSA) ||
	       add(as, CKA_START_DATE, NULL, 0) ||
	       add_date(as, CKA_END_DATE, &tm) ||
	       add_bool(as, CKA_DERIVE, false) ||
	       add_bool(as, CKA_LOCAL, true) ||
	       add_ulong(as, CKA_KEY_GEN_MECHANISM,
			 is_ec(k->key_type) ? CKM_EC_KEY_PAIR_GEN
					    : CKM_RSA_PKCS_KEY_PAIR_GEN) ||
	       add(as, CKA_ALLOWED_MECHANISMS, mechs, i * sizeof(mechs[0])) ||
	       add(as, CKA_SUBJECT, cf->subject,
		   cf->subject_len > 0 ? (size_t)cf->subject_len : 0) ||
	       add_bytes(as, CKA_PUBLIC_KEY_INFO, &k->spki);
}

/* Public key material. libp11 reads it on the private key as well. */
static int
add_key_material(struct attrs *as, const struct stint_task_key *k)
{
	if (is_ec(k->key_type))
		return add_bytes(as, CKA_EC_PARAMS, &k->ec_params) ||
		       add_bytes(as, CKA_EC_POINT, &k->ec_point);
	return add_bytes(as, CKA_MODULUS, &k->modulus) ||
	       add_bytes(as, CKA_PUBLIC_EXPONENT, &k->exponent);
}

static int
build_private(struct attrs *as, const struct stint_task_key *k,
	      const struct cert_facts *cf)
{
	return add_storage(as, CKO_PRIVATE_KEY, k->id) ||
	       add_key_common(as, k, cf) || add_key_material(as, k) ||
	       add_bool(as, CKA_SENSITIVE, true) ||
	       add_bool(as, CKA_DECRYPT, false) ||
	       add_bool(as, CKA_SIGN, true) ||
	       add_bool(as, CKA_SIGN_RECOVER, false) ||
	       add_bool(as, CKA_UNWRAP, false) ||
	       add_bool(as, CKA_EXTRACTABLE, false) ||
	       add_bool(as, CKA_ALWAYS_SENSITIVE, true) ||
	       add_bool(as, CKA_NEVER_EXTRACTABLE, true) ||
	       add_bool(as, CKA_WRAP_WITH_TRUSTED, false) ||
	       add_bool(as, CKA_ALWAYS_AUTHENTICATE, false);
}

static CK_ULONG
modulus_bits(const struct stint_bytes *m)
{
	size_t i = 0;
	CK_ULONG bits;
	uint8_t top;

	while (i < m->len && m->ptr[i] == 0)
		i++;
	if (i == m->len)
		return 0;
	bits = (CK_ULONG)(m->len - i) * 8;
	for (top = m->ptr[i]; !(top & 0x80); top <<= 1)
		bits--;
	return bits;
}

static int
build_public(struct attrs *as, const struct stint_task_key *k,
	     const struct cert_facts *cf)
{
	if (add_storage(as, CKO_PUBLIC_KEY, k->id) ||
	    add_key_common(as, k, cf) || add_key_material(as, k) ||
	    add_bool(as, CKA_ENCRYPT, false) ||
	    add_bool(as, CKA_VERIFY, true) ||
	    add_bool(as, CKA_VERIFY_RECOVER, false) ||
	    add_bool(as, CKA_WRAP, false) || add_bool(as, CKA_TRUSTED, false))
		return -1;
	if (!is_ec(k->key_type))
		return add_ulong(as, CKA_MODULUS_BITS,
				 modulus_bits(&k->modulus));
	return 0;
}

static int
build_cert(struct attrs *as, const struct stint_task_key *k,
	   const struct cert_facts *cf)
{
	return add_storage(as, CKO_CERTIFICATE, k->id) ||
	       add_ulong(as, CKA_CERTIFICATE_TYPE, CKC_X_509) ||
	       add_bool(as, CKA_TRUSTED, false) ||
	       /* 1: the token user's own certificate */
	       add_ulong(as, CKA_CERTIFICATE_CATEGORY, 1) ||
	       add(as, CKA_CHECK_VALUE, cf->check, sizeof(cf->check)) ||
	       add_date(as, CKA_START_DATE, &cf->not_before) ||
	       add_date(as, CKA_END_DATE, &cf->not_after) ||
	       add_bytes(as, CKA_PUBLIC_KEY_INFO, &k->spki) ||
	       add(as, CKA_SUBJECT, cf->subject, (size_t)cf->subject_len) ||
	       add(as, CKA_ISSUER, cf->issuer, (size_t)cf->issuer_len) ||
	       add(as, CKA_SERIAL_NUMBER, cf->serial, (size_t)cf->serial_len) ||
	       add_bytes(as, CKA_VALUE, &k->cert) ||
	       add(as, CKA_URL, NULL, 0) ||
	       add_ulong(as, CKA_JAVA_MIDP_SECURITY_DOMAIN, 0);
}

static size_t
signature_len(const struct stint_task_key *k)
{
	switch (k->key_type) {
	case STINT_KEY_EC_P256:
		return 64;
	case STINT_KEY_EC_P384:
		return 96;
	default:
		return (modulus_bits(&k->modulus) + 7) / 8;
	}
}

static void
task_obj_clear(struct task_obj *t)
{
	int i;

	for (i = 0; i < 3; i++)
		attrs_clear(&t->obj[i]);
	stint_bytes_clear(&t->key.spki);
	stint_bytes_clear(&t->key.ec_params);
	stint_bytes_clear(&t->key.ec_point);
	stint_bytes_clear(&t->key.modulus);
	stint_bytes_clear(&t->key.exponent);
	stint_bytes_clear(&t->key.cert);
}

/* Takes ownership of *k (its byte strings) on success and failure. */
static int
task_obj_build(struct task_obj *t, struct stint_task_key *k)
{
	struct cert_facts cf;
	int r = -1;

	memset(t, 0, sizeof(*t));
	t->key = *k;
	memset(k, 0, sizeof(*k));
	if (t->key.cert.len > 0 && cert_parse(&t->key.cert, &cf) == 0) {
		t->has_cert = true;
	} else {
		if (t->key.cert.len > 0)
			stint_debug("module", "task %s: unreadable certificate",
				    t->key.id);
		memset(&cf, 0, sizeof(cf));
	}
	t->sig_len = signature_len(&t->key);
	if (build_private(&t->obj[0], &t->key, &cf) != 0 ||
	    build_public(&t->obj[1], &t->key, &cf) != 0 ||
	    (t->has_cert && build_cert(&t->obj[2], &t->key, &cf) != 0))
		goto out;
	t->live = true;
	r = 0;
out:
	cert_facts_clear(&cf);
	if (r != 0)
		task_obj_clear(t);
	return r;
}

static bool
bytes_eq(const struct stint_bytes *a, const struct stint_bytes *b)
{
	return a->len == b->len &&
	       (a->len == 0 || !memcmp(a->ptr, b->ptr, a->len));
}

/* Does the table entry still describe this listed task? */
static bool
task_same(const struct stint_task_key *a, const struct stint_task_key *b)
{
	return a->key_type == b->key_type && a->not_after == b->not_after &&
	       a->n_mechs == b->n_mechs &&
	       !memcmp(a->mechs, b->mechs, a->n_mechs * sizeof(a->mechs[0])) &&
	       bytes_eq(&a->spki, &b->spki) && bytes_eq(&a->cert, &b->cert);
}

/* --- the table ------------------------------------------------------ */

static int
merge_one(struct stint_task_key *k, CK_SLOT_ID slot)
{
	struct task_obj fresh, *grown;
	size_t i;

	for (i = 0; i < g_n_tasks; i++)
		if (!strcmp(g_tasks[i].key.id, k->id))
			break;
	if (i < g_n_tasks && task_same(&g_tasks[i].key, k)) {
		g_tasks[i].live = true;
		g_tasks[i].slot = slot;
		return 0;
	}
	if (i == g_n_tasks && g_n_tasks == g_cap_tasks) {
		if (g_cap_tasks >= MAX_TASKS)
			return -1;
		grown = realloc(g_tasks, (g_cap_tasks + 64) * sizeof(*g_tasks));
		if (grown == NULL)
			return -1;
		g_tasks = grown;
		g_cap_tasks += 64;
	}
	if (task_obj_build(&fresh, k) != 0)
		return -1;
	if (i < g_n_tasks)
		task_obj_clear(&g_tasks[i]);
	else
		g_n_tasks++;
	fresh.slot = slot;
	g_tasks[i] = fresh;
	return 0;
}

/* The agent a slot's LIST names (always: should the agents this process
 * matches change between probes, a slot never lists another agent's
 * tasks). CKR_TOKEN_NOT_PRESENT when the slot has no token. */
static CK_RV
slot_list_agent(CK_SLOT_ID slot, char as[STINT_NAME_MAX + 1])
{
	if (!slot_agent(slot, as, NULL) &&
	    (slots_probe() != CKR_OK || !slot_agent(slot, as, NULL)))
		return CKR_TOKEN_NOT_PRESENT;
	return CKR_OK;
}

CK_RV
objects_refresh(CK_SLOT_ID slot)
{
	struct stint_task_key *tasks;
	char as[STINT_NAME_MAX + 1];
	uint64_t status;
	size_t n, i;
	CK_RV rv;

	if ((rv = slot_list_agent(slot, as)) != CKR_OK)
		return rv;
	if (client_list(as, &tasks, &n, &status) != 0)
		return CKR_DEVICE_ERROR;
	if (status == STINT_OK)
		stint_debug("module",
			    "stintd lists %zu live task(s) for slot %lu", n,
			    (unsigned long)slot);
	if (status == STINT_E_NO_AGENT) {
		rv = CKR_TOKEN_NOT_PRESENT;
		slot_gone(slot);
	} else if (status != STINT_OK) {
		rv = CKR_DEVICE_ERROR;
	}
	mod_lock();
	if (rv == CKR_OK || rv == CKR_TOKEN_NOT_PRESENT)
		for (i = 0; i < g_n_tasks; i++)
			if (g_tasks[i].slot == slot)
				g_tasks[i].live = false;
	for (i = 0; rv == CKR_OK && i < n; i++)
		if (merge_one(&tasks[i], slot) != 0)
			rv = CKR_HOST_MEMORY;
	mod_unlock();
	client_tasks_free(tasks, n);
	return rv;
}

void
objects_reset(void)
{
	size_t i;

	for (i = 0; i < g_n_tasks; i++)
		task_obj_clear(&g_tasks[i]);
	free(g_tasks);
	g_tasks = NULL;
	g_n_tasks = g_cap_tasks = 0;
}

static CK_OBJECT_HANDLE
handle_of(size_t idx, enum obj_kind kind)
{
	return ((CK_OBJECT_HANDLE)mod_epoch() << 24) | (idx << 2) | kind;
}

/* The task behind a handle this module issued in this epoch, or NULL. */
static struct task_obj *
lookup(CK_OBJECT_HANDLE h, enum obj_kind *kind)
{
	size_t idx;

	if ((h >> 24) != mod_epoch())
		return NULL;
	*kind = (enum obj_kind)(h & 3);
	idx = (size_t)((h & 0xffffff) >> 2);
	if (*kind == 0 || idx >= g_n_tasks)
		return NULL;
	if (*kind == OBJ_CERT && !g_tasks[idx].has_cert)
		return NULL;
	return &g_tasks[idx];
}

static bool
is_secret(const struct task_obj *t, enum obj_kind kind, CK_ATTRIBUTE_TYPE type)
{
	const CK_ATTRIBUTE_TYPE *list = rsa_secret;
	size_t n = sizeof(rsa_secret) / sizeof(rsa_secret[0]), i;

	if (kind != OBJ_PRIVATE)
		return false;
	if (is_ec(t->key.key_type)) {
		list = ec_secret;
		n = sizeof(ec_secret) / sizeof(ec_secret[0]);
	}
	for (i = 0; i < n; i++)
		if (list[i] == type)
			return true;
	return false;
}

/*
 * Every attribute is processed even after one fails (PKCS#11 2.40 5.7);
 * when several fail differently, SENSITIVE is reported before
 * TYPE_INVALID before BUFFER_TOO_SMALL, which the specification allows.
 */
CK_RV
objects_get_attrs(CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR templ, CK_ULONG n)
{
	const struct attr *a;
	struct task_obj *t;
	enum obj_kind kind;
	bool sensitive = false, invalid = false, small = false;
	CK_ULONG i;

	if ((t = lookup(h, &kind)) == NULL || !t->live)
		return CKR_OBJECT_HANDLE_INVALID;
	if (templ == NULL && n > 0)
		return CKR_ARGUMENTS_BAD;
	for (i = 0; i < n; i++) {
		a = attr_find(&t->obj[kind - 1], templ[i].type);
		if (a == NULL) {
			templ[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			if (is_secret(t, kind, templ[i].type))
				sensitive = true;
			else
				invalid = true;
		} else if (templ[i].pValue == NULL) {
			templ[i].ulValueLen = a->len;
		} else if (templ[i].ulValueLen < a->len) {
			templ[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			small = true;
		} else {
			if (a->len > 0)
				memcpy(templ[i].pValue, a->val, a->len);
			templ[i].ulValueLen = a->len;
		}
	}
	if (sensitive)
		return CKR_ATTRIBUTE_SENSITIVE;
	if (invalid)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	if (small)
		return CKR_BUFFER_TOO_SMALL;
	return CKR_OK;
}

CK_RV
objects_size(CK_OBJECT_HANDLE h, CK_ULONG_PTR size)
{
	const struct attrs *as;
	struct task_obj *t;
	enum obj_kind kind;
	CK_ULONG total = 0;
	size_t i;

	if ((t = lookup(h, &kind)) == NULL || !t->live)
		return CKR_OBJECT_HANDLE_INVALID;
	as = &t->obj[kind - 1];
	for (i = 0; i < as->n; i++)
		total += sizeof(CK_ATTRIBUTE) + as->a[i].len;
	*size = total;
	return CKR_OK;
}

static bool
matches(const struct attrs *as, const CK_ATTRIBUTE *templ, CK_ULONG n)
{
	const struct attr *a;
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		if ((a = attr_find(as, templ[i].type)) == NULL ||
		    a->len != templ[i].ulValueLen)
			return false;
		if (a->len > 0 && (templ[i].pValue == NULL ||
				   memcmp(a->val, templ[i].pValue, a->len)))
			return false;
	}
	return true;
}

/* STINT_DEBUG: a search by task id (CKA_LABEL or CKA_ID) that found
 * nothing gets stintd's account of that task (ended at, expired at,
 * unknown, another agent's). */
static void
explain_miss(const CK_ATTRIBUTE *templ, CK_ULONG n)
{
	char id[STINT_TASK_ID_MAX + 1];
	CK_ULONG i;

	if (!stint_debug_enabled("module"))
		return;
	for (i = 0; i < n; i++) {
		if ((templ[i].type != CKA_LABEL && templ[i].type != CKA_ID) ||
		    templ[i].pValue == NULL || templ[i].ulValueLen < 3 ||
		    templ[i].ulValueLen > STINT_TASK_ID_MAX ||
		    memcmp(templ[i].pValue, "t-", 2) != 0)
			continue;
		memcpy(id, templ[i].pValue, templ[i].ulValueLen);
		id[templ[i].ulValueLen] = '\0';
		stint_debug("module", "no live task object matches '%s'", id);
		client_explain_task(id, "");
		return;
	}
}

CK_RV
objects_find(CK_SLOT_ID slot, CK_ATTRIBUTE_PTR templ, CK_ULONG n,
	     CK_OBJECT_HANDLE **out, size_t *n_out)
{
	CK_OBJECT_HANDLE *found;
	size_t i, m = 0;
	int k;

	*out = NULL;
	*n_out = 0;
	if (templ == NULL && n > 0)
		return CKR_ARGUMENTS_BAD;
	if (g_n_tasks == 0) {
		explain_miss(templ, n);
		return CKR_OK;
	}
	if ((found = calloc(g_n_tasks * 3, sizeof(*found))) == NULL)
		return CKR_HOST_MEMORY;
	for (i = 0; i < g_n_tasks; i++) {
		if (!g_tasks[i].live || g_tasks[i].slot != slot)
			continue;
		for (k = OBJ_PRIVATE; k <= OBJ_CERT; k++) {
			if (k == OBJ_CERT && !g_tasks[i].has_cert)
				continue;
			if (matches(&g_tasks[i].obj[k - 1], templ, n))
				found[m++] = handle_of(i, (enum obj_kind)k);
		}
	}
	if (m == 0)
		explain_miss(templ, n);
	*out = found;
	*n_out = m;
	return CKR_OK;
}

CK_RV
objects_sign_key(CK_OBJECT_HANDLE h, struct sign_key *key)
{
	struct task_obj *t;
	enum obj_kind kind;
	bool multi = false;

	if ((t = lookup(h, &kind)) == NULL || kind == OBJ_CERT)
		return CKR_KEY_HANDLE_INVALID;
	if (kind == OBJ_PUBLIC)
		return CKR_KEY_TYPE_INCONSISTENT;
	memset(key, 0, sizeof(*key));
	memcpy(key->task, t->key.id, sizeof(key->task));
	key->key_type = t->key.key_type;
	key->n_mechs = t->key.n_mechs;
	memcpy(key->mechs, t->key.mechs, sizeof(key->mechs));
	key->sig_len = t->sig_len;
	/* Several agents: the request names the task's (key 151). */
	if (slot_agent_locked(t->slot, key->as_agent, &multi) && !multi)
		key->as_agent[0] = '\0';
	return CKR_OK;
}
