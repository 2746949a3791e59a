/*
 * PKCS#11 backend: the module, its token and login, the traced P11()
 * wrapper and return codes, the session pool, the key handle cache, object
 * helpers, open and close. See pkcs11_int.h.
 */

#include "attest/backend/pkcs11_int.h"

#include "common/p11names.h"

/* --- return codes ------------------------------------------------------- */

/* The name of rv (common/p11names.c), never NULL. */
const char *
p11_ckr_str(CK_RV rv)
{
	const char *name = stint_ckr_name(rv);

	return name != NULL ? name : "CKR_(unknown)";
}

/* What an operator can do about a failure, where there is something. */
static const char *
ckr_hint(CK_RV rv)
{
	switch (rv) {
	case CKR_USER_NOT_LOGGED_IN:
		return ": the token login was lost; restart stintd";
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
		return ": the token is gone; reconnect it and restart stintd";
	case CKR_DEVICE_MEMORY:
		return ": the token is full; end tasks or free space";
	case CKR_MECHANISM_INVALID:
		return ": the token does not support this mechanism";
	case CKR_MECHANISM_PARAM_INVALID:
		return ": bad mechanism parameters";
	case CKR_KEY_TYPE_INCONSISTENT:
		return ": mechanism does not fit the key type";
	case CKR_DATA_LEN_RANGE:
	case CKR_DATA_INVALID:
		return ": input does not fit the mechanism and key size";
	case CKR_BUFFER_TOO_SMALL:
		return ": signature buffer too small";
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
		return ": the key no longer exists";
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
		return ": the key may not sign";
	default:
		return "";
	}
}

void
p11_ck_err(char *err, size_t errlen, const char *what, CK_RV rv)
{
	snprintf(err, errlen, "%s: %s%s", what, p11_ckr_str(rv), ckr_hint(rv));
}

/* A session that failed this way cannot be trusted for the next caller. */
bool
p11_session_broken(CK_RV rv)
{
	switch (rv) {
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_GENERAL_ERROR:
	case CKR_OPERATION_ACTIVE:
		return true;
	default:
		return false;
	}
}

/*
 * Every call into the module goes through P11(): one debug line naming the
 * call and its return code. Arguments are never logged (PINs, data).
 */
CK_RV
p11_traced(CK_RV rv, const char *call)
{
	stint_debug("backend", "%s: %s", call, p11_ckr_str(rv));
	return rv;
}

/* --- key handle cache ---------------------------------------------------- */

static size_t
cache_bucket(const char *id)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *id != '\0'; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	return h % CACHE_BUCKETS;
}

/* Caller holds b->lock. */
static void
cache_clear_locked(struct p11_backend *b)
{
	struct p11_key_entry *e, *next;
	size_t i;

	for (i = 0; i < CACHE_BUCKETS; i++) {
		for (e = b->cache[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
		b->cache[i] = NULL;
	}
	b->n_cached = 0;
	b->n_copies = 0; /* they die with the copy session */
}

/* Caller holds b->lock. */
struct p11_key_entry *
p11_cache_find_locked(struct p11_backend *b, const char *id)
{
	struct p11_key_entry *e;

	for (e = b->cache[cache_bucket(id)]; e != NULL; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

/* Caller holds b->lock: a new entry for id (no handles), or NULL when the
 * cache is full or out of memory. */
static struct p11_key_entry *
cache_add_locked(struct p11_backend *b, const char *id)
{
	struct p11_key_entry *e;
	size_t n = strlen(id), i = cache_bucket(id);

	if (b->n_cached >= CACHE_MAX ||
	    (e = calloc(1, sizeof(*e) + n + 1)) == NULL)
		return NULL;
	memcpy(e->id, id, n + 1);
	e->priv = CK_INVALID_HANDLE;
	e->pub = CK_INVALID_HANDLE;
	e->copy = CK_INVALID_HANDLE;
	e->next = b->cache[i];
	b->cache[i] = e;
	b->n_cached++;
	return e;
}

/* The key's session copy when it has one, else its token object. */
static bool
p11_cache_get(struct p11_backend *b, const char *id, struct p11_key_found *out)
{
	struct p11_key_entry *e;
	bool found = false;

	pthread_mutex_lock(&b->lock);
	e = p11_cache_find_locked(b, id);
	if (e != NULL && !e->dup && e->priv != CK_INVALID_HANDLE) {
		out->copy = e->copy != CK_INVALID_HANDLE;
		out->h = out->copy ? e->copy : e->priv;
		out->type = e->type;
		found = true;
	}
	pthread_mutex_unlock(&b->lock);
	return found;
}

/* True when the cache knows a key under id (stintd made it, took it from
 * the pool, or the sweep saw it at start). */
bool
p11_cache_has(struct p11_backend *b, const char *id)
{
	bool found;

	pthread_mutex_lock(&b->lock);
	found = p11_cache_find_locked(b, id) != NULL;
	pthread_mutex_unlock(&b->lock);
	return found;
}

/* Caller holds b->lock: unlinks and frees *pp; returns its session copy
 * (CK_INVALID_HANDLE if none), for the caller to destroy after unlocking. */
static CK_OBJECT_HANDLE
cache_unlink_locked(struct p11_backend *b, struct p11_key_entry **pp)
{
	struct p11_key_entry *e = *pp;
	CK_OBJECT_HANDLE copy = e->copy;

	*pp = e->next;
	if (copy != CK_INVALID_HANDLE)
		b->n_copies--;
	free(e);
	b->n_cached--;
	return copy;
}

/* Removes id's entry, destroying its session copy; true when it knows
 * every object of the key (the private key's handle, and the public
 * key's when there is one). */
bool
p11_cache_take(struct p11_backend *b, const char *id, CK_OBJECT_HANDLE *priv,
	       CK_OBJECT_HANDLE *pub)
{
	CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
	struct p11_key_entry **pp, *e;
	bool both = false;

	pthread_mutex_lock(&b->lock);
	for (pp = &b->cache[cache_bucket(id)]; (e = *pp) != NULL;
	     pp = &e->next) {
		if (strcmp(e->id, id) != 0)
			continue;
		both = !e->dup && e->complete && e->priv != CK_INVALID_HANDLE;
		*priv = e->priv;
		*pub = e->pub;
		copy = cache_unlink_locked(b, pp);
		break;
	}
	pthread_mutex_unlock(&b->lock);
	p11_copy_destroy(b, copy);
	return both;
}

/* Forgets id's handles and destroys its session copy. */
void
p11_cache_drop(struct p11_backend *b, const char *id)
{
	CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
	struct p11_key_entry **pp, *e;

	pthread_mutex_lock(&b->lock);
	for (pp = &b->cache[cache_bucket(id)]; (e = *pp) != NULL;
	     pp = &e->next) {
		if (strcmp(e->id, id) == 0) {
			copy = cache_unlink_locked(b, pp);
			break;
		}
	}
	pthread_mutex_unlock(&b->lock);
	p11_copy_destroy(b, copy);
}

/* Caller holds b->lock: e's private key becomes priv; a session copy of
 * another private key is returned for the caller to destroy. */
static CK_OBJECT_HANDLE
cache_set_priv_locked(struct p11_backend *b, struct p11_key_entry *e,
		      CK_OBJECT_HANDLE priv)
{
	CK_OBJECT_HANDLE stale = CK_INVALID_HANDLE;

	if (e->copy != CK_INVALID_HANDLE && e->priv != priv) {
		stale = e->copy;
		e->copy = CK_INVALID_HANDLE;
		b->n_copies--;
	}
	e->priv = priv;
	return stale;
}

/* Best effort: a cache that cannot grow only costs a find. The public
 * key's handle, when known, is kept. */
void
p11_cache_put(struct p11_backend *b, const char *id, CK_OBJECT_HANDLE h,
	      CK_KEY_TYPE type)
{
	CK_OBJECT_HANDLE stale = CK_INVALID_HANDLE;
	struct p11_key_entry *e;

	pthread_mutex_lock(&b->lock);
	if ((e = p11_cache_find_locked(b, id)) != NULL ||
	    (e = cache_add_locked(b, id)) != NULL) {
		stale = cache_set_priv_locked(b, e, h);
		e->type = type;
	}
	pthread_mutex_unlock(&b->lock);
	p11_copy_destroy(b, stale);
}

/* Both halves of a pair stintd made or took from the pool. */
void
p11_cache_put_pair(struct p11_backend *b, const char *id, CK_OBJECT_HANDLE priv,
		   CK_OBJECT_HANDLE pub, CK_KEY_TYPE type)
{
	CK_OBJECT_HANDLE stale = CK_INVALID_HANDLE;
	struct p11_key_entry *e;

	pthread_mutex_lock(&b->lock);
	if ((e = p11_cache_find_locked(b, id)) != NULL ||
	    (e = cache_add_locked(b, id)) != NULL) {
		stale = cache_set_priv_locked(b, e, priv);
		e->pub = pub;
		e->type = type;
		e->dup = false;
		e->complete = true;
	}
	pthread_mutex_unlock(&b->lock);
	p11_copy_destroy(b, stale);
}

/* One object the sweep listed under id: a second object of the same class
 * makes the entry dup (answers nothing; lookups search the token). */
void
p11_cache_note(struct p11_backend *b, const char *id, CK_OBJECT_HANDLE h,
	       CK_OBJECT_CLASS cls, CK_KEY_TYPE type)
{
	struct p11_key_entry *e;
	CK_OBJECT_HANDLE *slot;

	if (cls != CKO_PRIVATE_KEY && cls != CKO_PUBLIC_KEY)
		return;
	pthread_mutex_lock(&b->lock);
	if ((e = p11_cache_find_locked(b, id)) == NULL &&
	    (e = cache_add_locked(b, id)) != NULL)
		e->complete = true;
	if (e != NULL) {
		slot = cls == CKO_PRIVATE_KEY ? &e->priv : &e->pub;
		if (*slot != CK_INVALID_HANDLE && *slot != h)
			e->dup = true;
		*slot = h;
		if (cls == CKO_PRIVATE_KEY)
			e->type = type;
	}
	pthread_mutex_unlock(&b->lock);
}

/* --- session pool -------------------------------------------------------- */

CK_RV
p11_session_get(struct p11_backend *b, CK_SESSION_HANDLE *s)
{
	pthread_mutex_lock(&b->lock);
	if (b->n_idle > 0) {
		*s = b->idle[--b->n_idle];
		pthread_mutex_unlock(&b->lock);
		return CKR_OK;
	}
	pthread_mutex_unlock(&b->lock);
	return P11(b, C_OpenSession, b->slot,
		   CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
}

/*
 * A session whose operation failed may still hold an active operation
 * (C_Sign keeps it on CKR_BUFFER_TOO_SMALL), so it is closed rather than
 * handed to the next signer.
 */
void
p11_session_put(struct p11_backend *b, CK_SESSION_HANDLE s, bool clean)
{
	if (clean) {
		pthread_mutex_lock(&b->lock);
		if (b->n_idle < POOL_MAX) {
			b->idle[b->n_idle++] = s;
			pthread_mutex_unlock(&b->lock);
			return;
		}
		pthread_mutex_unlock(&b->lock);
	}
	P11(b, C_CloseSession, s);
}

/* --- objects ------------------------------------------------------------- */

void
p11_attr_add(CK_ATTRIBUTE *t, CK_ULONG *n, CK_ATTRIBUTE_TYPE type, void *value,
	     CK_ULONG len)
{
	t[*n].type = type;
	t[*n].pValue = value;
	t[*n].ulValueLen = len;
	(*n)++;
}

CK_RV
p11_obj_destroy(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_RV rv;

	if (h == CK_INVALID_HANDLE) /* no such object (session_pub) */
		return CKR_OK;
	pthread_mutex_lock(&b->write_lock);
	rv = P11(b, C_DestroyObject, s, h);
	pthread_mutex_unlock(&b->write_lock);
	return rv;
}

/* Destroys object h if its CKA_ID is still id: CKR_OK, or what failed
 * (CKR_OBJECT_HANDLE_INVALID also when the object has another id). */
static CK_RV
destroy_if_id(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
	      const char *id)
{
	char buf[KEY_ID_MAX + 1];
	CK_ATTRIBUTE a = {CKA_ID, buf, sizeof(buf)};
	size_t n = strlen(id);
	CK_RV rv;

	if ((rv = P11(b, C_GetAttributeValue, s, h, &a, 1)) != CKR_OK)
		return rv;
	if (a.ulValueLen != n || memcmp(buf, id, n) != 0)
		return CKR_OBJECT_HANDLE_INVALID;
	return p11_obj_destroy(b, s, h);
}

/*
 * Task end without a search: destroys the key of id by the handles the
 * cache kept since stintd made it (or the sweep listed it), each one
 * checked to still carry CKA_ID = id first; pub is CK_INVALID_HANDLE for a
 * key whose public half was a session object (session_pub). 0 when both are
 * gone; -1 (*rv the module's code) when the caller must search the token
 * instead. A search costs a pass over every object in SoftHSM2's file store
 * (each object's file opened and read for each attribute compared), so a task
 * end at 5,000 live tasks cost about 0.5 s with two of them; this costs
 * four calls whatever the token holds. The id was unused when the pair was
 * made (p11_keypair_make) and only stintd holds the PIN, so the pair is all
 * there is under it.
 */
int
p11_destroy_known(struct p11_backend *b, CK_SESSION_HANDLE s, const char *id,
		  CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub, CK_RV *rv)
{
	if ((*rv = destroy_if_id(b, s, priv, id)) != CKR_OK)
		return -1;
	if (pub != CK_INVALID_HANDLE &&
	    (*rv = destroy_if_id(b, s, pub, id)) != CKR_OK)
		return -1;
	return 0;
}

/* Handles of up to max objects with CKA_ID = id (and CKA_CLASS = *cls). */
CK_RV
p11_find_by_id(struct p11_backend *b, CK_SESSION_HANDLE s, const char *id,
	       const CK_OBJECT_CLASS *cls, CK_OBJECT_HANDLE *out, CK_ULONG max,
	       CK_ULONG *n)
{
	CK_OBJECT_CLASS c = cls != NULL ? *cls : 0;
	CK_ATTRIBUTE t[2];
	CK_ULONG nt = 0;
	CK_RV rv, rv2;

	*n = 0;
	p11_attr_add(t, &nt, CKA_ID, (void *)id, strlen(id));
	if (cls != NULL)
		p11_attr_add(t, &nt, CKA_CLASS, &c, sizeof(c));
	if ((rv = P11(b, C_FindObjectsInit, s, t, nt)) != CKR_OK)
		return rv;
	rv = P11(b, C_FindObjects, s, out, max, n);
	rv2 = P11(b, C_FindObjectsFinal, s);
	return rv != CKR_OK ? rv : rv2;
}

/* The private key of key_id and its CKK_*, from the cache or the token. */
int
p11_key_lookup(struct p11_backend *b, CK_SESSION_HANDLE s, const char *key_id,
	       struct p11_key_found *out, char *err, size_t errlen)
{
	static const CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
	CK_OBJECT_HANDLE found[2];
	CK_ATTRIBUTE a = {CKA_KEY_TYPE, &out->type, sizeof(out->type)};
	CK_ULONG n;

	out->rv = CKR_OK;
	out->copy = false;
	if ((out->cached = p11_cache_get(b, key_id, out)))
		return 0;
	out->rv = p11_find_by_id(b, s, key_id, &priv, found, 2, &n);
	if (out->rv != CKR_OK) {
		p11_ck_err(err, errlen, "cannot search the token for the key",
			   out->rv);
		return -1;
	}
	if (n == 0) {
		snprintf(err, errlen,
			 "no key '%s' in token '%s' (destroyed or never "
			 "generated)",
			 key_id, b->token);
		return -1;
	}
	if (n > 1) {
		snprintf(err, errlen,
			 "more than one private key with id '%s' in token "
			 "'%s'; refusing to guess",
			 key_id, b->token);
		return -1;
	}
	out->h = found[0];
	if ((out->rv = P11(b, C_GetAttributeValue, s, out->h, &a, 1)) !=
	    CKR_OK) {
		snprintf(err, errlen, "cannot read the type of key '%s'",
			 key_id);
		p11_ck_err(err + strlen(err), errlen - strlen(err), "",
			   out->rv);
		return -1;
	}
	p11_cache_put(b, key_id, out->h, out->type);
	return 0;
}

/* Reads one attribute into a malloc'ed buffer. */
CK_RV
p11_attr_read(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
	      CK_ATTRIBUTE_TYPE type, struct stint_bytes *out)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_RV rv;

	if ((rv = P11(b, C_GetAttributeValue, s, h, &a, 1)) != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen == 0 ||
	    a.ulValueLen > 65536)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	if ((a.pValue = malloc(a.ulValueLen)) == NULL)
		return CKR_HOST_MEMORY;
	if ((rv = P11(b, C_GetAttributeValue, s, h, &a, 1)) != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	out->ptr = a.pValue;
	out->len = a.ulValueLen;
	return CKR_OK;
}

CK_RV
p11_facts_read(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
	       struct stint_key_facts *facts)
{
	static const CK_ATTRIBUTE_TYPE types[8] = {
		CKA_LOCAL,     CKA_NEVER_EXTRACTABLE,
		CKA_SENSITIVE, CKA_EXTRACTABLE,
		CKA_SIGN,      CKA_DECRYPT,
		CKA_UNWRAP,    CKA_DERIVE};
	CK_BBOOL v[8];
	CK_ATTRIBUTE t[8];
	CK_ULONG nt = 0;
	CK_RV rv;
	size_t i;

	memset(v, 0, sizeof(v));
	for (i = 0; i < 8; i++)
		p11_attr_add(t, &nt, types[i], &v[i], sizeof(v[i]));
	if ((rv = P11(b, C_GetAttributeValue, s, h, t, nt)) != CKR_OK)
		return rv;
	for (i = 0; i < 8; i++)
		if (t[i].ulValueLen != sizeof(CK_BBOOL))
			return CKR_ATTRIBUTE_VALUE_INVALID;
	facts->local = v[0] == CK_TRUE;
	facts->never_extractable = v[1] == CK_TRUE;
	facts->sensitive = v[2] == CK_TRUE;
	facts->extractable = v[3] != CK_FALSE;
	facts->sign = v[4] == CK_TRUE;
	facts->decrypt = v[5] != CK_FALSE;
	facts->unwrap = v[6] != CK_FALSE;
	facts->derive = v[7] != CK_FALSE;
	return CKR_OK;
}

/* NULL when the key is sign-only and cannot leave the token. */
const char *
p11_facts_violation(const struct stint_key_facts *f)
{
	if (!f->local)
		return "CKA_LOCAL is not true";
	if (!f->never_extractable)
		return "CKA_NEVER_EXTRACTABLE is not true";
	if (!f->sensitive)
		return "CKA_SENSITIVE is not true";
	if (!f->sign)
		return "CKA_SIGN is not true";
	if (f->extractable)
		return "CKA_EXTRACTABLE is not false";
	if (f->decrypt)
		return "CKA_DECRYPT is not false";
	if (f->unwrap)
		return "CKA_UNWRAP is not false";
	if (f->derive)
		return "CKA_DERIVE is not false";
	return NULL;
}

/* --- open and close ------------------------------------------------------ */

static int
module_load(struct p11_backend *b, char *err, size_t errlen)
{
	CK_C_GetFunctionList get_list;
	CK_RV rv;

	if ((b->dl = dlopen(b->module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		if (strchr(b->module, '/') != NULL &&
		    access(b->module, F_OK) != 0)
			snprintf(err, errlen,
				 "PKCS#11 module '%s' not found: fix [backend] "
				 "module",
				 b->module);
		else
			snprintf(err, errlen,
				 "cannot load PKCS#11 module '%s' (%s): fix "
				 "[backend] module",
				 b->module, dlerror());
		return -1;
	}
	get_list = (CK_C_GetFunctionList)dlsym(b->dl, "C_GetFunctionList");
	if (get_list == NULL) {
		snprintf(err, errlen,
			 "'%s' is not a PKCS#11 module (no C_GetFunctionList): "
			 "fix [backend] module",
			 b->module);
		return -1;
	}
	rv = p11_traced(get_list(&b->f), "C_GetFunctionList");
	if (rv != CKR_OK || b->f == NULL) {
		b->f = NULL;
		snprintf(err, errlen,
			 "'%s' is not a usable PKCS#11 module "
			 "(C_GetFunctionList: %s): fix [backend] module",
			 b->module, p11_ckr_str(rv));
		return -1;
	}
	return 0;
}

/* Appends a token label, trimmed and printable, to a "found" list. */
static void
label_append(char *list, size_t cap, const CK_UTF8CHAR label[32])
{
	size_t len = 32, used = strlen(list), i;

	while (len > 0 && label[len - 1] == ' ')
		len--;
	if (used + 2 + len + 4 >= cap) {
		if (used + 4 < cap && strstr(list, "...") == NULL)
			strcat(list, ", ...");
		return;
	}
	if (used > 0) {
		strcat(list, ", ");
		used += 2;
	}
	for (i = 0; i < len; i++)
		list[used++] = (label[i] >= 0x20 && label[i] < 0x7f)
				       ? (char)label[i]
				       : '?';
	list[used] = '\0';
}

static int
token_find(struct p11_backend *b, char *err, size_t errlen)
{
	CK_SLOT_ID *slots = NULL;
	CK_TOKEN_INFO ti, match_ti;
	CK_ULONG n = 0, i;
	CK_RV rv;
	CK_UTF8CHAR want[32];
	char found[256] = "";
	int matches = 0, r = -1;

	memset(&match_ti, 0, sizeof(match_ti));
	memset(want, ' ', sizeof(want));
	memcpy(want, b->token, strlen(b->token));
	/* The slot list can grow between the two calls. */
	for (i = 0; i < 3; i++) {
		if ((rv = P11(b, C_GetSlotList, CK_TRUE, NULL, &n)) != CKR_OK)
			break;
		free(slots);
		if ((slots = calloc(n + 1, sizeof(*slots))) == NULL) {
			rv = CKR_HOST_MEMORY;
			break;
		}
		rv = P11(b, C_GetSlotList, CK_TRUE, slots, &n);
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
	}
	if (rv != CKR_OK) {
		snprintf(err, errlen, "cannot list the slots of '%s'",
			 b->module);
		p11_ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (P11(b, C_GetTokenInfo, slots[i], &ti) != CKR_OK)
			continue; /* removed in between */
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (memcmp(ti.label, want, sizeof(want)) == 0) {
			if (matches++ == 0) {
				b->slot = slots[i];
				match_ti = ti;
			}
		} else {
			label_append(found, sizeof(found), ti.label);
		}
	}
	if (matches == 0) {
		snprintf(err, errlen,
			 "no token labelled '%s' in '%s' (found: %s): fix "
			 "[backend] token, or create the token",
			 b->token, b->module, found[0] ? found : "none");
		goto out;
	}
	if (matches > 1) {
		snprintf(err, errlen,
			 "%d tokens are labelled '%s' in '%s': give each token "
			 "a unique label",
			 matches, b->token, b->module);
		goto out;
	}
	if (!(match_ti.flags & CKF_USER_PIN_INITIALIZED)) {
		snprintf(err, errlen,
			 "token '%s' has no user PIN yet: initialise it",
			 b->token);
		goto out;
	}
	r = 0;
out:
	free(slots);
	return r;
}

static int
token_login(struct p11_backend *b, char *err, size_t errlen)
{
	char pin[PIN_MAX];
	CK_RV rv;
	int r = -1;

	rv = P11(b, C_OpenSession, b->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
		 NULL, NULL, &b->login_session);
	if (rv != CKR_OK) {
		snprintf(err, errlen, "cannot open a session on token '%s'",
			 b->token);
		p11_ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		return -1;
	}
	b->has_login_session = true;
	if (stint_config_read_pin(b->pin_file, pin, sizeof(pin), err, errlen) !=
	    0)
		goto out;
	rv = P11(b, C_Login, b->login_session, CKU_USER, (CK_UTF8CHAR_PTR)pin,
		 strnlen(pin, sizeof(pin)));
	OPENSSL_cleanse(pin, sizeof(pin));
	switch (rv) {
	case CKR_OK:
		b->logout = true;
		break;
	case CKR_USER_ALREADY_LOGGED_IN:
		/* Another backend in this process holds the login. */
		break;
	case CKR_PIN_INCORRECT:
		snprintf(err, errlen,
			 "wrong PIN in %s for token '%s': put the token's user "
			 "PIN in that file",
			 b->pin_file, b->token);
		goto out;
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_INVALID:
		snprintf(err, errlen,
			 "the PIN in %s is not a valid PIN for token '%s' "
			 "(%s): fix the file",
			 b->pin_file, b->token, p11_ckr_str(rv));
		goto out;
	case CKR_PIN_LOCKED:
		snprintf(err, errlen,
			 "the user PIN of token '%s' is locked after too many "
			 "wrong PINs: unlock it with the SO PIN",
			 b->token);
		goto out;
	default:
		snprintf(err, errlen, "cannot log in to token '%s'", b->token);
		p11_ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(pin, sizeof(pin));
	return r;
}

void
p11_close(struct stint_backend *base)
{
	struct p11_backend *b = (struct p11_backend *)base;

	if (b == NULL)
		return;
	/* Unused ready keys do not outlive this stintd. */
	p11_pool_stop(b);
	p11_pool_drain(b);
	p11_prep_free(b->prep);
	b->prep = NULL;
	if (b->f != NULL) {
		p11_copy_close(b);
		pthread_mutex_lock(&b->lock);
		while (b->n_idle > 0)
			P11(b, C_CloseSession, b->idle[--b->n_idle]);
		pthread_mutex_unlock(&b->lock);
		if (b->logout)
			P11(b, C_Logout, b->login_session);
		if (b->has_login_session)
			P11(b, C_CloseSession, b->login_session);
		if (b->finalize)
			P11(b, C_Finalize, NULL);
	}
	free(b->known.h);
	pthread_mutex_lock(&b->lock);
	cache_clear_locked(b);
	stint_bytes_clear(&b->ak_spki);
	pthread_mutex_unlock(&b->lock);
	if (b->dl != NULL)
		dlclose(b->dl);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->pool_cond);
	pthread_mutex_destroy(&b->pool_lock);
	pthread_mutex_destroy(&b->write_lock);
	pthread_mutex_destroy(&b->copy_lock);
	free(b);
}

static int
copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

int
stint_backend_pkcs11_open(const struct stint_config *cfg,
			  struct stint_backend **out, char *err, size_t errlen)
{
	struct p11_backend *b = NULL;
	CK_C_INITIALIZE_ARGS init;
	CK_RV rv;
	int r = -1;

	*out = NULL;
	if (cfg->backend.module[0] == '\0') {
		snprintf(err, errlen,
			 "no PKCS#11 module configured: set [backend] module "
			 "(e.g. /usr/lib/softhsm/libsofthsm2.so)");
		return -1;
	}
	if (cfg->backend.token[0] == '\0') {
		snprintf(err, errlen,
			 "no token configured: set [backend] "
			 "token to the token's label");
		return -1;
	}
	if (strlen(cfg->backend.token) > 32) {
		snprintf(err, errlen,
			 "token label '%s' is longer than 32 bytes: fix "
			 "[backend] token",
			 cfg->backend.token);
		return -1;
	}
	if (cfg->backend.pin_file[0] == '\0') {
		snprintf(err, errlen,
			 "no PIN file configured: set [backend] "
			 "pin_file");
		return -1;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	b->base.ops = &p11_ops;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->write_lock, NULL);
	pthread_mutex_init(&b->copy_lock, NULL);
	pthread_mutex_init(&b->pool_lock, NULL);
	pthread_cond_init(&b->pool_cond, NULL);
	if (cfg->state_dir[0] != '\0' &&
	    (size_t)snprintf(b->ready_path, sizeof(b->ready_path),
			     "%s/ready-keys",
			     cfg->state_dir) >= sizeof(b->ready_path))
		b->ready_path[0] = '\0';
	b->pool_target = cfg->backend.key_pool < STINT_KEY_POOL_MAX
				 ? cfg->backend.key_pool
				 : STINT_KEY_POOL_MAX;
	if (copy_str(b->module, sizeof(b->module), cfg->backend.module) != 0 ||
	    copy_str(b->token, sizeof(b->token), cfg->backend.token) != 0 ||
	    copy_str(b->pin_file, sizeof(b->pin_file), cfg->backend.pin_file) !=
		    0) {
		snprintf(err, errlen, "backend path too long");
		goto out;
	}
	if (module_load(b, err, errlen) != 0)
		goto out;

	/* stintd signs from many threads and brings no mutex callbacks. */
	memset(&init, 0, sizeof(init));
	init.flags = CKF_OS_LOCKING_OK;
	rv = P11(b, C_Initialize, &init);
	if (rv == CKR_OK) {
		b->finalize = true;
	} else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		snprintf(err, errlen, "cannot initialise PKCS#11 module '%s'",
			 b->module);
		p11_ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		b->f = NULL; /* nothing to finalise or close */
		goto out;
	}
	if (token_find(b, err, errlen) != 0 || token_login(b, err, errlen) != 0)
		goto out;
	b->prep = p11_prep_new(b->f, b->slot, cfg->backend.prepared_ops);
	stint_debug("backend", "token '%s' ready", b->token);
	*out = &b->base;
	r = 0;
out:
	if (r != 0)
		p11_close(&b->base);
	return r;
}
