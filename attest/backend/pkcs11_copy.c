/*
 * PKCS#11 backend: session copies of task keys. See pkcs11_int.h.
 *
 * SoftHSM2's file store re-checks a token object's file on every
 * C_SignInit and C_Sign (getpid, fcntl locks, openat, read, fstat, close:
 * about 20 system calls per signature), inside the library's global lock.
 * A session object lives in memory only. So the first signature with a
 * key makes a copy of its private key with C_CopyObject and CKA_TOKEN =
 * FALSE, and every later one (prepared operations included) signs with the
 * copy. The copy keeps the original's CKA_SENSITIVE = TRUE and
 * CKA_EXTRACTABLE = FALSE (read back and checked; SoftHSM refuses to
 * change either in a copy, CKR_ATTRIBUTE_READ_ONLY).
 *
 * The copies live in one session of their own (copy_session), opened at
 * the first copy and closed at p11_close: session objects die with the
 * session that made them, and the session pool may close its sessions.
 * The handle cache holds each copy's handle next to the token object's;
 * whatever removes a key's cache entry (task end, the sweep, a stale
 * handle) destroys its copy before it returns. A copy whose handle turns
 * invalid (its session closed behind stintd's back) is forgotten and made
 * again. A token that refuses the copy signs with the token object, as
 * before, and says so once per key.
 */

#include "attest/backend/pkcs11_int.h"

/* Caller holds copy_lock. */
static CK_RV
copy_session_locked(struct p11_backend *b, CK_SESSION_HANDLE *s)
{
	CK_RV rv;

	if (!b->has_copy_session) {
		rv = P11(b, C_OpenSession, b->slot,
			 CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
			 &b->copy_session);
		if (rv != CKR_OK)
			return rv;
		b->has_copy_session = true;
	}
	*s = b->copy_session;
	return CKR_OK;
}

/* A session copy of private key h, checked to be a sensitive,
 * non-extractable session object (else destroyed and refused). */
static CK_RV
copy_make(struct p11_backend *b, CK_OBJECT_HANDLE h, CK_OBJECT_HANDLE *out)
{
	CK_BBOOL no = CK_FALSE, token = CK_TRUE, sens = CK_FALSE, ext = CK_TRUE;
	CK_ATTRIBUTE t = {CKA_TOKEN, &no, sizeof(no)};
	CK_ATTRIBUTE q[3] = {{CKA_TOKEN, &token, sizeof(token)},
			     {CKA_SENSITIVE, &sens, sizeof(sens)},
			     {CKA_EXTRACTABLE, &ext, sizeof(ext)}};
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int attempt;

	pthread_mutex_lock(&b->copy_lock);
	for (attempt = 0; attempt < 2; attempt++) {
		if ((rv = copy_session_locked(b, &s)) != CKR_OK)
			break;
		rv = P11(b, C_CopyObject, s, h, &t, 1, out);
		if (rv != CKR_SESSION_HANDLE_INVALID &&
		    rv != CKR_SESSION_CLOSED)
			break;
		/* Closed behind our back: its copies died with it. */
		b->has_copy_session = false;
	}
	if (rv == CKR_OK) {
		rv = P11(b, C_GetAttributeValue, s, *out, q, 3);
		if (rv == CKR_OK &&
		    (token != CK_FALSE || sens != CK_TRUE || ext != CK_FALSE))
			rv = CKR_ATTRIBUTE_VALUE_INVALID;
		if (rv != CKR_OK)
			(void)P11(b, C_DestroyObject, s, *out);
	}
	pthread_mutex_unlock(&b->copy_lock);
	return rv;
}

/* Caller holds b->lock: whether k (the token object found for id) may get
 * a copy now, or already has one (k then points at it). */
static bool
copy_wanted_locked(struct p11_backend *b, const char *id,
		   struct p11_key_found *k)
{
	struct p11_key_entry *e = p11_cache_find_locked(b, id);

	if (e == NULL || e->dup || e->priv != k->h || e->copy_failed)
		return false;
	if (e->copy != CK_INVALID_HANDLE) {
		k->h = e->copy;
		k->copy = true;
		return false;
	}
	return true;
}

/*
 * k holds the token object of key id: points it at the key's session copy,
 * made now if there is none. Without a cache entry for the key, or when
 * the token refuses, k stays as it is. A copy made while the key's entry
 * went away (its task ended meanwhile) is destroyed at once.
 */
void
p11_copy_get(struct p11_backend *b, const char *id, struct p11_key_found *k)
{
	CK_OBJECT_HANDLE c = CK_INVALID_HANDLE;
	struct p11_key_entry *e;
	bool logit = false;
	CK_RV rv;

	pthread_mutex_lock(&b->lock);
	if (!copy_wanted_locked(b, id, k)) {
		pthread_mutex_unlock(&b->lock);
		return;
	}
	pthread_mutex_unlock(&b->lock);

	rv = copy_make(b, k->h, &c);

	pthread_mutex_lock(&b->lock);
	e = p11_cache_find_locked(b, id);
	if (e == NULL || e->dup || e->priv != k->h) {
		/* Ended or replaced meanwhile: c goes below. */
	} else if (rv != CKR_OK) {
		logit = !e->copy_failed;
		e->copy_failed = true;
	} else if (e->copy == CK_INVALID_HANDLE) {
		e->copy = c;
		b->n_copies++;
		k->h = c;
		k->copy = true;
		c = CK_INVALID_HANDLE;
	} else { /* another thread's copy came first */
		k->h = e->copy;
		k->copy = true;
	}
	pthread_mutex_unlock(&b->lock);
	if (rv == CKR_OK)
		p11_copy_destroy(b, c);
	if (logit)
		log_info("backend: token '%s' made no session copy of key "
			 "'%s' (%s); it signs with the token object",
			 b->token, id, p11_ckr_str(rv));
}

/* The copy of id's key turned out invalid (its session closed): forget it,
 * so that the next signature makes another. */
void
p11_copy_forget(struct p11_backend *b, const char *id, CK_OBJECT_HANDLE copy)
{
	struct p11_key_entry *e;

	pthread_mutex_lock(&b->lock);
	e = p11_cache_find_locked(b, id);
	if (e != NULL && e->copy == copy) {
		e->copy = CK_INVALID_HANDLE;
		b->n_copies--;
	}
	pthread_mutex_unlock(&b->lock);
}

/* Destroys a session copy (CK_INVALID_HANDLE: nothing). One whose session
 * is gone is gone with it. */
void
p11_copy_destroy(struct p11_backend *b, CK_OBJECT_HANDLE copy)
{
	if (copy == CK_INVALID_HANDLE)
		return;
	pthread_mutex_lock(&b->copy_lock);
	if (b->has_copy_session)
		(void)P11(b, C_DestroyObject, b->copy_session, copy);
	pthread_mutex_unlock(&b->copy_lock);
}

/* At close: every copy dies with its session. */
void
p11_copy_close(struct p11_backend *b)
{
	pthread_mutex_lock(&b->copy_lock);
	if (b->has_copy_session)
		(void)P11(b, C_CloseSession, b->copy_session);
	b->has_copy_session = false;
	pthread_mutex_unlock(&b->copy_lock);
	pthread_mutex_lock(&b->lock);
	b->n_copies = 0;
	pthread_mutex_unlock(&b->lock);
}
