/*
 * PKCS#11 backend: the orphan sweep (own_keys, sweep). See pkcs11_int.h.
 */

#include "attest/backend/pkcs11_int.h"

/* --- sweep --------------------------------------------------------------- */

static int
sweep_id_cmp(const void *x, const void *y)
{
	return strcmp(x, y);
}

/* Keeps the first of each run of equal ids in a sorted list. */
static size_t
sweep_ids_unique(char (*ids)[STINT_TASK_ID_MAX + 1], size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		if (k == 0 || strcmp(ids[k - 1], ids[i]) != 0)
			memmove(ids[k++], ids[i], sizeof(ids[i]));
	return k;
}

/* What the sweep considers: the marked objects of the token (p11_key_mark). */
struct sweep_list {
	char (*ids)[STINT_TASK_ID_MAX + 1]; /* task-shaped or legacy pool */
	size_t n, cap;
	CK_OBJECT_HANDLE *idless; /* marked objects with an empty CKA_ID */
	size_t n_idless, cap_idless;
};

static void
sweep_list_free(struct sweep_list *l)
{
	free(l->ids);
	free(l->idless);
	memset(l, 0, sizeof(*l));
}

static CK_RV
sweep_add_idless(struct sweep_list *l, CK_OBJECT_HANDLE h)
{
	CK_OBJECT_HANDLE *grown;
	size_t cap;

	if (l->n_idless == l->cap_idless) {
		cap = l->cap_idless ? 2 * l->cap_idless : 16;
		grown = realloc(l->idless, cap * sizeof(*grown));
		if (grown == NULL)
			return CKR_HOST_MEMORY;
		l->idless = grown;
		l->cap_idless = cap;
	}
	l->idless[l->n_idless++] = h;
	return CKR_OK;
}

static CK_RV
sweep_add_id(struct sweep_list *l, const char *buf)
{
	char(*grown)[STINT_TASK_ID_MAX + 1];
	size_t cap;

	if (l->n == l->cap) {
		cap = l->cap ? 2 * l->cap : 64;
		grown = realloc(l->ids, cap * sizeof(*grown));
		if (grown == NULL)
			return CKR_HOST_MEMORY;
		l->ids = grown;
		l->cap = cap;
	}
	memcpy(l->ids[l->n++], buf, sizeof(l->ids[0]));
	return CKR_OK;
}

/* Keeps the handle of a marked object in the key handle cache, so that
 * ending its task (or the sweep destroying it) needs no search of the
 * token: this listing is the one pass over every object a start makes. */
static void
sweep_note(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
	   const char *id)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_KEY_TYPE type = CKK_VENDOR_DEFINED;
	CK_ATTRIBUTE a[2] = {{CKA_CLASS, &cls, sizeof(cls)},
			     {CKA_KEY_TYPE, &type, sizeof(type)}};

	if (P11(b, C_GetAttributeValue, s, h, a, 2) == CKR_OK &&
	    (type == CKK_EC || type == CKK_RSA))
		p11_cache_note(b, id, h, cls, type);
}

/* Sorts one marked object: an empty CKA_ID (a failed generation) goes to
 * idless, a task-shaped or legacy pool id to ids; any other id (or one that
 * cannot be read, or is longer than a task id) is none of the sweep's. */
static CK_RV
sweep_one(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
	  struct sweep_list *l)
{
	char buf[STINT_TASK_ID_MAX + 1];
	CK_ATTRIBUTE a;
	CK_RV rv;

	a.type = CKA_ID;
	a.pValue = buf;
	a.ulValueLen = STINT_TASK_ID_MAX;
	rv = P11(b, C_GetAttributeValue, s, h, &a, 1);
	if (rv != CKR_OK) /* a broken session would hide every key */
		return p11_session_broken(rv) ? rv : CKR_OK;
	if (a.ulValueLen == 0)
		return sweep_add_idless(l, h);
	if (!stint_task_id_shaped(buf, a.ulValueLen) &&
	    !p11_legacy_pool_id(buf, a.ulValueLen))
		return CKR_OK;
	buf[a.ulValueLen] = '\0';
	sweep_note(b, s, h, buf);
	return sweep_add_id(l, buf);
}

/* The marked objects in the token: distinct ids sorted, id-less handles. */
static CK_RV
sweep_ids(struct p11_backend *b, CK_SESSION_HANDLE s, struct sweep_list *l)
{
	CK_OBJECT_HANDLE h[FIND_BATCH];
	CK_ATTRIBUTE t = {CKA_SUBJECT, (void *)p11_key_mark,
			  sizeof(p11_key_mark)};
	CK_ULONG n, i;
	CK_RV rv, rv2;

	memset(l, 0, sizeof(*l));
	if ((rv = P11(b, C_FindObjectsInit, s, &t, 1)) != CKR_OK)
		return rv;
	while ((rv = P11(b, C_FindObjects, s, h, FIND_BATCH, &n)) == CKR_OK &&
	       n > 0) {
		for (i = 0; i < n && rv == CKR_OK; i++)
			rv = sweep_one(b, s, h[i], l);
		if (rv != CKR_OK)
			break;
	}
	rv2 = P11(b, C_FindObjectsFinal, s);
	if (rv == CKR_OK)
		rv = rv2;
	if (rv != CKR_OK) {
		sweep_list_free(l);
		return rv;
	}
	if (l->n > 0)
		qsort(l->ids, l->n, sizeof(*l->ids), sweep_id_cmp);
	l->n = sweep_ids_unique(l->ids, l->n);
	return CKR_OK;
}

/* Destroys the marked objects without an id that keep(ctx, "") does not
 * keep: what a C_GenerateKeyPair that failed half-way left behind. */
static size_t
sweep_idless(struct p11_backend *b, const struct sweep_list *l,
	     bool (*keep)(void *ctx, const char *id),
	     void (*gone)(void *ctx, const char *id), void *ctx, size_t *failed,
	     char *err, size_t errlen)
{
	CK_SESSION_HANDLE s;
	size_t i, done = 0;
	CK_RV rv;

	if (l->n_idless == 0 || keep(ctx, ""))
		return 0;
	if ((rv = p11_session_get(b, &s)) != CKR_OK) {
		if ((*failed)++ == 0)
			p11_ck_err(err, errlen, "cannot open a token session",
				   rv);
		return 0;
	}
	for (i = 0; i < l->n_idless; i++) {
		rv = p11_obj_destroy(b, s, l->idless[i]);
		if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID) {
			if ((*failed)++ == 0)
				p11_ck_err(err, errlen,
					   "cannot destroy a key without id",
					   rv);
			if (p11_session_broken(rv))
				break;
			continue;
		}
		done++;
		if (gone != NULL)
			gone(ctx, "");
	}
	p11_session_put(b, s, i == l->n_idless);
	return done;
}

/* The number of marked objects in the token (keys this or an earlier
 * stintd made for tasks), for the check that a new state.db is not
 * replacing one in use. */
int
p11_own_keys(struct stint_backend *base, size_t *count, char *err,
	     size_t errlen)
{
	struct p11_backend *b = (struct p11_backend *)base;
	CK_OBJECT_HANDLE h[FIND_BATCH];
	CK_ATTRIBUTE t = {CKA_SUBJECT, (void *)p11_key_mark,
			  sizeof(p11_key_mark)};
	CK_SESSION_HANDLE s;
	CK_ULONG n;
	CK_RV rv, rv2;

	*count = 0;
	if ((rv = p11_session_get(b, &s)) != CKR_OK) {
		p11_ck_err(err, errlen, "cannot open a token session", rv);
		return -1;
	}
	if ((rv = P11(b, C_FindObjectsInit, s, &t, 1)) == CKR_OK) {
		while ((rv = P11(b, C_FindObjects, s, h, FIND_BATCH, &n)) ==
			       CKR_OK &&
		       n > 0)
			*count += n;
		rv2 = P11(b, C_FindObjectsFinal, s);
		if (rv == CKR_OK)
			rv = rv2;
	}
	p11_session_put(b, s, !p11_session_broken(rv));
	if (rv != CKR_OK) {
		p11_ck_err(err, errlen, "cannot list the objects in the token",
			   rv);
		return -1;
	}
	return 0;
}

/*
 * Removes keys no task owns: ready keys and fresh task keys a crashed
 * stintd left between generation and storing the task, keys of tasks lost
 * with the state, and keys under the pool ids of earlier versions. Ready
 * keys in memory are spared. When done it starts the refill thread (this
 * runs after stintd has forked), so the pool is full before the first
 * task start.
 */
int
p11_sweep(struct stint_backend *base, bool (*keep)(void *ctx, const char *id),
	  void (*gone)(void *ctx, const char *id), void *ctx, size_t *destroyed,
	  char *err, size_t errlen)
{
	struct p11_backend *b = (struct p11_backend *)base;
	struct sweep_list l;
	char(*ids)[STINT_TASK_ID_MAX + 1];
	char(*saved)[STINT_TASK_ID_MAX + 1];
	char why[256];
	CK_SESSION_HANDLE s;
	size_t n, n_saved, i, failed = 0, adopted = 0;
	CK_RV rv;
	int r = -1;

	*destroyed = 0;
	memset(&l, 0, sizeof(l));
	saved = p11_ready_load(b, &n_saved);
	if ((rv = p11_session_get(b, &s)) != CKR_OK) {
		p11_ck_err(err, errlen, "cannot open a token session", rv);
		goto out;
	}
	rv = sweep_ids(b, s, &l);
	p11_session_put(b, s, !p11_session_broken(rv));
	if (rv != CKR_OK) {
		p11_ck_err(err, errlen, "cannot list the objects in the token",
			   rv);
		goto out;
	}
	ids = l.ids;
	n = l.n;
	*destroyed +=
		sweep_idless(b, &l, keep, gone, ctx, &failed, err, errlen);
	for (i = 0; i < n; i++) {
		if (p11_pool_holds(b, ids[i]))
			continue;
		if (p11_legacy_pool_id(ids[i], strlen(ids[i])))
			goto destroy;
		if (keep(ctx, ids[i]))
			continue;
		if (p11_ready_listed(saved, n_saved, ids[i]) &&
		    p11_pool_adopt(b, ids[i])) {
			adopted++;
			continue;
		}
	destroy:
		if (p11_destroy(base, ids[i], why, sizeof(why)) != 0) {
			if (failed++ == 0)
				snprintf(err, errlen, "%s", why);
			continue;
		}
		(*destroyed)++;
		if (gone != NULL)
			gone(ctx, ids[i]);
	}
	if (failed > 1)
		snprintf(err + strlen(err), errlen - strlen(err),
			 " (and %zu more keys not removed)", failed - 1);
	r = failed > 0 ? -1 : 0;
	if (n_saved > 0)
		log_info("backend: %zu of %zu ready keys kept from the last "
			 "stop adopted",
			 adopted, n_saved);
out:
	sweep_list_free(&l);
	free(saved);
	pthread_mutex_lock(&b->pool_lock);
	p11_pool_start_locked(b);
	pthread_mutex_unlock(&b->pool_lock);
	return r;
}
