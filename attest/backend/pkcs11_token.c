/*
 * PKCS#11 key-store backend (SoftHSM2 or a real HSM).
 *
 * stintd loads the configured module, finds its token by label (SoftHSM
 * moves a token to a random slot id, so slot ids mean nothing), logs in
 * once and keeps that login alive with one session that is never used for
 * anything else: PKCS#11 logs the application out when its last session
 * closes. Signing threads borrow R/W sessions from a small pool and look up
 * private key handles in a cache, since token object handles stay valid
 * across sessions of one application.
 *
 * Prepared operations ([backend] prepared_ops = N, p11_prep.c): after a
 * signature, C_SignInit for the next one with the same key and mechanism
 * runs on a spare session in a background thread, so a SIGN usually costs
 * only C_Sign. destroy() and generate() drop them for their key id.
 *
 * Key pool ([backend] key_pool = N): SoftHSM's file store takes tens of
 * milliseconds to generate a key pair (it writes the new objects attribute
 * by attribute), and any change to an object rewrites its file. So a
 * background thread keeps N ec-p256 key pairs ready, each made under its
 * final name: it mints a task id (stint_task_id_new), checks that no object
 * has that id, generates the pair with the task-key template and id and
 * label = the task id, and reads the facts and the public key back, all off
 * the task start's path. key_take() pops one from memory and the task gets
 * the key's id: no call into the token at all. generate() always makes a
 * fresh key under the caller's id. A ready key looks like any task key in
 * the token, so a listing shows up to N keys named after tasks that do not
 * exist yet. At close the ready keys are listed in <state_dir>/ready-keys
 * (or destroyed when that cannot be written) and the next sweep() adopts
 * them; after a crash there is no list and sweep() removes them with every
 * other key no task owns (it removes any task-shaped key it is not told to
 * keep: one token per stintd). The refill thread starts with the first
 * key_take() or at the end of sweep(), never at open: stintd forks to daemonize
 * after opening the backend, and a thread does not survive a fork.
 */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "attest/backend.h"
#include "attest/config.h"
#include "attest/evidence.h"
#include "attest/backend/pkcs11_prep.h"
#include "common/log.h"

#define PIN_MAX       256
#define POOL_MAX      32 /* idle sessions kept open for reuse */
#define CACHE_BUCKETS 256
#define CACHE_MAX     8192 /* cached key handles before the cache is reset */
#define FIND_BATCH    16
#define KEY_ID_MAX    255
#define SIGN_IN_MAX   1024 /* largest raw input: RSA-4096 PKCS#1 block */
#define POOL_RETRY_S  5    /* refill pause after a failed generation */
/* The refill waits until the token has been left alone this long (at most
 * POOL_QUIET_MAX_MS in all): a generation holds write_lock for tens of
 * milliseconds, and a task end that came right after its start would
 * otherwise wait for the replacement key behind it. */
#define POOL_QUIET_MS     100
#define POOL_QUIET_MAX_MS 1000

#define LEGACY_POOL_PREFIX "pool-" /* ready keys of earlier versions */

/*
 * The marker on every task key (and ready key) stintd generates: CKA_SUBJECT
 * on both halves of the pair, the DER Name "CN=stintd task key". The sweep
 * finds stintd's keys by it, not by the shape of their id, so it also finds
 * a pair a failed C_GenerateKeyPair left without CKA_ID and label, and it
 * never touches a key without it (an operator's own key, the CA and
 * attestation keys). CKA_SUBJECT is a standard attribute of public and
 * private keys that SoftHSM2 stores as given; keys made by versions before
 * the marker are not swept (their live and ended tasks' keys are still
 * destroyed by id when their task ends).
 */
static const CK_BYTE key_mark[] = {0x30, 0x1a, 0x31, 0x18, 0x30, 0x16, 0x06,
				   0x03, 0x55, 0x04, 0x03, 0x0c, 0x0f, 's',
				   't',  'i',  'n',  't',  'd',  ' ',  't',
				   'a',  's',  'k',  ' ',  'k',  'e',  'y'};

struct key_entry {
	struct key_entry *next;
	CK_OBJECT_HANDLE priv;
	CK_KEY_TYPE type;
	char id[];
};

struct p11_backend {
	struct stint_backend base; /* first: the ops see a stint_backend */
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	bool finalize; /* we initialised the module, so we finalise it */
	bool logout;   /* we logged in, so we log out */
	CK_SLOT_ID slot;
	bool has_login_session;
	CK_SESSION_HANDLE login_session;
	char module[PATH_MAX];
	char token[33];
	char pin_file[PATH_MAX];

	pthread_mutex_t lock; /* guards idle[] and cache[] */
	CK_SESSION_HANDLE idle[POOL_MAX];
	size_t n_idle;
	struct key_entry *cache[CACHE_BUCKETS];
	size_t n_cached;

	/* C_SignInit done ahead for the next signature (p11_prep.h); NULL
	 * with [backend] prepared_ops = 0. */
	struct p11_prep *prep;

	/* Held around every call that creates, changes or removes a token
	 * object (never while signing): SoftHSM's file store guards its
	 * object files with fcntl locks, which do not exclude threads of
	 * one process, and a key generated while another thread destroys
	 * one fails with CKR_GENERAL_ERROR. The refill thread made that
	 * overlap common. */
	pthread_mutex_t write_lock;

	/* Ready ec-p256 key pairs (see the top of this file), each with the
	 * facts and public key read back when it was made. pool_lock guards
	 * everything below; key_take() removes a key from pool[] under it,
	 * so no two callers get the same key. */
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	pthread_t pool_thread;
	bool pool_started, pool_stop;
	struct timespec pool_quiet; /* CLOCK_REALTIME: refill not before */
	size_t pool_target, n_pool;
	char pool_making[STINT_TASK_ID_MAX + 1]; /* "" or the id being made */
	struct pool_key {
		CK_OBJECT_HANDLE priv, pub;
		char id[STINT_TASK_ID_MAX + 1];
		struct stint_pubkey pubkey;
		struct stint_key_facts facts;
	} pool[STINT_KEY_POOL_MAX];
	/* <state_dir>/ready-keys: the ready keys' ids, written at a clean
	 * stop for the next start to adopt. Empty: destroy them at stop. */
	char ready_path[PATH_MAX];
};

struct key_spec {
	uint32_t type;
	const char *name;
	bool ec;
	int nid;            /* EC curve */
	const uint8_t *oid; /* DER of the curve OID, for CKA_EC_PARAMS */
	size_t oid_len;
	CK_ULONG bits;
};

static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
				   0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

static const struct key_spec key_specs[] = {
	{STINT_KEY_EC_P256, "ec-p256", true, NID_X9_62_prime256v1, oid_p256,
	 sizeof(oid_p256), 256},
	{STINT_KEY_EC_P384, "ec-p384", true, NID_secp384r1, oid_p384,
	 sizeof(oid_p384), 384},
	{STINT_KEY_RSA_2048, "rsa-2048", false, 0, NULL, 0, 2048},
	{STINT_KEY_RSA_3072, "rsa-3072", false, 0, NULL, 0, 3072},
};

static void p11_close(struct stint_backend *base);
static int p11_destroy(struct stint_backend *base, const char *key_id,
		       char *err, size_t errlen);
static void *pool_main(void *arg);

/* --- return codes ------------------------------------------------------- */

static const char *
ckr_str(CK_RV rv)
{
#define R(x)                                                                   \
	case x:                                                                \
		return #x
	switch (rv) {
		R(CKR_OK);
		R(CKR_HOST_MEMORY);
		R(CKR_SLOT_ID_INVALID);
		R(CKR_GENERAL_ERROR);
		R(CKR_FUNCTION_FAILED);
		R(CKR_ARGUMENTS_BAD);
		R(CKR_CANT_LOCK);
		R(CKR_ATTRIBUTE_SENSITIVE);
		R(CKR_ATTRIBUTE_TYPE_INVALID);
		R(CKR_ATTRIBUTE_VALUE_INVALID);
		R(CKR_DATA_INVALID);
		R(CKR_DATA_LEN_RANGE);
		R(CKR_DEVICE_ERROR);
		R(CKR_DEVICE_MEMORY);
		R(CKR_DEVICE_REMOVED);
		R(CKR_FUNCTION_CANCELED);
		R(CKR_FUNCTION_NOT_SUPPORTED);
		R(CKR_KEY_HANDLE_INVALID);
		R(CKR_KEY_SIZE_RANGE);
		R(CKR_KEY_TYPE_INCONSISTENT);
		R(CKR_KEY_FUNCTION_NOT_PERMITTED);
		R(CKR_MECHANISM_INVALID);
		R(CKR_MECHANISM_PARAM_INVALID);
		R(CKR_OBJECT_HANDLE_INVALID);
		R(CKR_OPERATION_ACTIVE);
		R(CKR_OPERATION_NOT_INITIALIZED);
		R(CKR_PIN_INCORRECT);
		R(CKR_PIN_INVALID);
		R(CKR_PIN_LEN_RANGE);
		R(CKR_PIN_EXPIRED);
		R(CKR_PIN_LOCKED);
		R(CKR_SESSION_CLOSED);
		R(CKR_SESSION_COUNT);
		R(CKR_SESSION_HANDLE_INVALID);
		R(CKR_SESSION_READ_ONLY);
		R(CKR_SESSION_EXISTS);
		R(CKR_SESSION_READ_WRITE_SO_EXISTS);
		R(CKR_TEMPLATE_INCOMPLETE);
		R(CKR_TEMPLATE_INCONSISTENT);
		R(CKR_TOKEN_NOT_PRESENT);
		R(CKR_TOKEN_NOT_RECOGNIZED);
		R(CKR_TOKEN_WRITE_PROTECTED);
		R(CKR_USER_ALREADY_LOGGED_IN);
		R(CKR_USER_NOT_LOGGED_IN);
		R(CKR_USER_PIN_NOT_INITIALIZED);
		R(CKR_USER_TYPE_INVALID);
		R(CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
		R(CKR_DOMAIN_PARAMS_INVALID);
		R(CKR_CURVE_NOT_SUPPORTED);
		R(CKR_BUFFER_TOO_SMALL);
		R(CKR_CRYPTOKI_NOT_INITIALIZED);
		R(CKR_CRYPTOKI_ALREADY_INITIALIZED);
		R(CKR_FUNCTION_REJECTED);
	default:
		return "CKR_(unknown)";
	}
#undef R
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

static void
ck_err(char *err, size_t errlen, const char *what, CK_RV rv)
{
	snprintf(err, errlen, "%s: %s%s", what, ckr_str(rv), ckr_hint(rv));
}

/* A session that failed this way cannot be trusted for the next caller. */
static bool
session_broken(CK_RV rv)
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
static CK_RV
p11_traced(CK_RV rv, const char *call)
{
	stint_debug("backend", "%s: %s", call, ckr_str(rv));
	return rv;
}

#define P11(b, fn, ...) p11_traced((b)->f->fn(__VA_ARGS__), #fn)

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
	struct key_entry *e, *next;
	size_t i;

	for (i = 0; i < CACHE_BUCKETS; i++) {
		for (e = b->cache[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
		b->cache[i] = NULL;
	}
	b->n_cached = 0;
}

static bool
cache_get(struct p11_backend *b, const char *id, CK_OBJECT_HANDLE *h,
	  CK_KEY_TYPE *type)
{
	struct key_entry *e;
	bool found = false;

	pthread_mutex_lock(&b->lock);
	for (e = b->cache[cache_bucket(id)]; e != NULL; e = e->next) {
		if (strcmp(e->id, id) == 0) {
			*h = e->priv;
			*type = e->type;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return found;
}

static void
cache_drop(struct p11_backend *b, const char *id)
{
	struct key_entry **pp, *e;

	pthread_mutex_lock(&b->lock);
	for (pp = &b->cache[cache_bucket(id)]; (e = *pp) != NULL;
	     pp = &e->next) {
		if (strcmp(e->id, id) == 0) {
			*pp = e->next;
			free(e);
			b->n_cached--;
			break;
		}
	}
	pthread_mutex_unlock(&b->lock);
}

/* Best effort: a cache that cannot grow only costs a find. */
static void
cache_put(struct p11_backend *b, const char *id, CK_OBJECT_HANDLE h,
	  CK_KEY_TYPE type)
{
	struct key_entry *e;
	size_t n = strlen(id), i;

	pthread_mutex_lock(&b->lock);
	i = cache_bucket(id);
	for (e = b->cache[i]; e != NULL; e = e->next) {
		if (strcmp(e->id, id) == 0) {
			e->priv = h;
			e->type = type;
			goto out;
		}
	}
	if (b->n_cached >= CACHE_MAX)
		cache_clear_locked(b);
	if ((e = malloc(sizeof(*e) + n + 1)) == NULL)
		goto out;
	memcpy(e->id, id, n + 1);
	e->priv = h;
	e->type = type;
	e->next = b->cache[i];
	b->cache[i] = e;
	b->n_cached++;
out:
	pthread_mutex_unlock(&b->lock);
}

/* --- session pool -------------------------------------------------------- */

static CK_RV
session_get(struct p11_backend *b, CK_SESSION_HANDLE *s)
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
static void
session_put(struct p11_backend *b, CK_SESSION_HANDLE s, bool clean)
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

static void
attr_add(CK_ATTRIBUTE *t, CK_ULONG *n, CK_ATTRIBUTE_TYPE type, void *value,
	 CK_ULONG len)
{
	t[*n].type = type;
	t[*n].pValue = value;
	t[*n].ulValueLen = len;
	(*n)++;
}

static CK_RV
obj_destroy(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_RV rv;

	pthread_mutex_lock(&b->write_lock);
	rv = P11(b, C_DestroyObject, s, h);
	pthread_mutex_unlock(&b->write_lock);
	return rv;
}

/* Handles of up to max objects with CKA_ID = id (and CKA_CLASS = *cls). */
static CK_RV
find_by_id(struct p11_backend *b, CK_SESSION_HANDLE s, const char *id,
	   const CK_OBJECT_CLASS *cls, CK_OBJECT_HANDLE *out, CK_ULONG max,
	   CK_ULONG *n)
{
	CK_OBJECT_CLASS c = cls != NULL ? *cls : 0;
	CK_ATTRIBUTE t[2];
	CK_ULONG nt = 0;
	CK_RV rv, rv2;

	*n = 0;
	attr_add(t, &nt, CKA_ID, (void *)id, strlen(id));
	if (cls != NULL)
		attr_add(t, &nt, CKA_CLASS, &c, sizeof(c));
	if ((rv = P11(b, C_FindObjectsInit, s, t, nt)) != CKR_OK)
		return rv;
	rv = P11(b, C_FindObjects, s, out, max, n);
	rv2 = P11(b, C_FindObjectsFinal, s);
	return rv != CKR_OK ? rv : rv2;
}

/* The private key of key_id and its CKK_*, from the cache or the token. */
static int
key_lookup(struct p11_backend *b, CK_SESSION_HANDLE s, const char *key_id,
	   CK_OBJECT_HANDLE *h, CK_KEY_TYPE *type, bool *cached, CK_RV *rvp,
	   char *err, size_t errlen)
{
	static const CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
	CK_OBJECT_HANDLE found[2];
	CK_ATTRIBUTE a = {CKA_KEY_TYPE, type, sizeof(*type)};
	CK_ULONG n;
	CK_RV rv;

	*rvp = CKR_OK;
	if ((*cached = cache_get(b, key_id, h, type)))
		return 0;
	if ((rv = find_by_id(b, s, key_id, &priv, found, 2, &n)) != CKR_OK) {
		*rvp = rv;
		ck_err(err, errlen, "cannot search the token for the key", rv);
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
	*h = found[0];
	if ((rv = P11(b, C_GetAttributeValue, s, *h, &a, 1)) != CKR_OK) {
		*rvp = rv;
		snprintf(err, errlen, "cannot read the type of key '%s'",
			 key_id);
		ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		return -1;
	}
	cache_put(b, key_id, *h, *type);
	return 0;
}

/* Reads one attribute into a malloc'ed buffer. */
static CK_RV
attr_read(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
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

static CK_RV
facts_read(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
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
		attr_add(t, &nt, types[i], &v[i], sizeof(v[i]));
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
static const char *
facts_violation(const struct stint_key_facts *f)
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

/* --- SubjectPublicKeyInfo ------------------------------------------------ */

static int
spki_from_params(const char *alg, OSSL_PARAM *params, struct stint_bytes *spki,
		 int want_bits)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	unsigned char *der = NULL;
	int len, r = -1;

	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	if (EVP_PKEY_get_bits(pkey) != want_bits)
		goto out;
	if ((len = i2d_PUBKEY(pkey, &der)) <= 0)
		goto out;
	/* stint_bytes are freed with free(), not OPENSSL_free(). */
	if ((spki->ptr = malloc((size_t)len)) == NULL)
		goto out;
	memcpy(spki->ptr, der, (size_t)len);
	spki->len = (size_t)len;
	r = 0;
out:
	OPENSSL_free(der);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return r;
}

static int
spki_ec(const struct key_spec *spec, struct stint_pubkey *pub, char *why,
	size_t whylen)
{
	const unsigned char *p;
	ASN1_OBJECT *oid = NULL;
	ASN1_OCTET_STRING *os = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	const uint8_t *point;
	size_t point_len;
	int r = -1;

	p = pub->ec_params.ptr;
	oid = d2i_ASN1_OBJECT(NULL, &p, (long)pub->ec_params.len);
	if (oid == NULL || p != pub->ec_params.ptr + pub->ec_params.len ||
	    OBJ_obj2nid(oid) != spec->nid) {
		snprintf(why, whylen, "CKA_EC_PARAMS is not the %s curve OID",
			 spec->name);
		goto out;
	}
	/* PKCS#11 says CKA_EC_POINT is a DER OCTET STRING; some tokens give
	 * the raw point, which is accepted too. */
	p = pub->ec_point.ptr;
	os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)pub->ec_point.len);
	if (os != NULL && p == pub->ec_point.ptr + pub->ec_point.len) {
		point = os->data;
		point_len = (size_t)os->length;
	} else {
		point = pub->ec_point.ptr;
		point_len = pub->ec_point.len;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					     OBJ_nid2sn(spec->nid), 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
					      point, point_len) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	if (spki_from_params("EC", params, &pub->spki, (int)spec->bits) != 0) {
		snprintf(why, whylen, "CKA_EC_POINT is not a %s point",
			 spec->name);
		goto out;
	}
	r = 0;
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(oid);
	return r;
}

static int
spki_rsa(const struct key_spec *spec, struct stint_pubkey *pub, char *why,
	 size_t whylen)
{
	BIGNUM *n = NULL, *e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	int r = -1;

	if ((n = BN_bin2bn(pub->modulus.ptr, (int)pub->modulus.len, NULL)) ==
		    NULL ||
	    (e = BN_bin2bn(pub->exponent.ptr, (int)pub->exponent.len, NULL)) ==
		    NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	if (spki_from_params("RSA", params, &pub->spki, (int)spec->bits) != 0) {
		snprintf(why, whylen, "CKA_MODULUS is not a %s modulus",
			 spec->name);
		goto out;
	}
	r = 0;
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(e);
	BN_free(n);
	return r;
}

static int
pubkey_read(struct p11_backend *b, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
	    const struct key_spec *spec, struct stint_pubkey *pub, char *err,
	    size_t errlen)
{
	char why[128];
	CK_RV rv;

	if (spec->ec) {
		if ((rv = attr_read(b, s, h, CKA_EC_PARAMS, &pub->ec_params)) !=
			    CKR_OK ||
		    (rv = attr_read(b, s, h, CKA_EC_POINT, &pub->ec_point)) !=
			    CKR_OK) {
			ck_err(err, errlen, "cannot read the EC public key",
			       rv);
			return -1;
		}
		if (spki_ec(spec, pub, why, sizeof(why)) != 0)
			goto bad;
	} else {
		if ((rv = attr_read(b, s, h, CKA_MODULUS, &pub->modulus)) !=
			    CKR_OK ||
		    (rv = attr_read(b, s, h, CKA_PUBLIC_EXPONENT,
				    &pub->exponent)) != CKR_OK) {
			ck_err(err, errlen, "cannot read the RSA public key",
			       rv);
			return -1;
		}
		if (spki_rsa(spec, pub, why, sizeof(why)) != 0)
			goto bad;
	}
	return 0;
bad:
	snprintf(err, errlen, "token '%s' returned an unusable public key: %s",
		 b->token, why);
	return -1;
}

/* --- operations ---------------------------------------------------------- */

static const struct key_spec *
key_spec_find(uint32_t type)
{
	size_t i;

	for (i = 0; i < sizeof(key_specs) / sizeof(key_specs[0]); i++)
		if (key_specs[i].type == type)
			return &key_specs[i];
	return NULL;
}

static bool
key_id_ok(const char *key_id)
{
	size_t n = strlen(key_id);

	return n > 0 && n <= KEY_ID_MAX;
}

/*
 * Generates a key pair of spec under id with the task-key template in
 * session s and reads it back: the facts must be sign-only and
 * non-extractable, the public key must parse. On failure nothing is left in
 * the token and *clean says whether s may be reused.
 *
 * SoftHSM makes objects CKA_MODIFIABLE by default. Only a holder of the
 * user PIN could change a key's attributes, and only stintd has it; agents
 * reach keys only through stintd, which never sets attributes on keys.
 */
static int
keypair_make(struct p11_backend *b, CK_SESSION_HANDLE s,
	     const struct key_spec *spec, const char *key_id, bool mark,
	     CK_OBJECT_HANDLE *hpubp, CK_OBJECT_HANDLE *hprivp,
	     struct stint_pubkey *pub, struct stint_key_facts *facts,
	     bool *clean, char *err, size_t errlen)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_BYTE exponent[] = {0x01, 0x00, 0x01};
	CK_ULONG bits, id_len, npub = 0, npriv = 0;
	CK_ATTRIBUTE pubt[10], privt[12];
	CK_MECHANISM mech = {0, NULL, 0};
	CK_OBJECT_HANDLE hpub = 0, hpriv = 0;
	const char *violation;
	bool have_keys = false;
	CK_RV rv;
	int r = -1;

	id_len = strlen(key_id);
	bits = spec->bits;
	attr_add(pubt, &npub, CKA_TOKEN, &yes, sizeof(yes));
	attr_add(pubt, &npub, CKA_VERIFY, &yes, sizeof(yes));
	attr_add(pubt, &npub, CKA_ENCRYPT, &no, sizeof(no));
	attr_add(pubt, &npub, CKA_WRAP, &no, sizeof(no));
	attr_add(pubt, &npub, CKA_ID, (void *)key_id, id_len);
	attr_add(pubt, &npub, CKA_LABEL, (void *)key_id, id_len);
	if (spec->ec) {
		mech.mechanism = CKM_EC_KEY_PAIR_GEN;
		attr_add(pubt, &npub, CKA_EC_PARAMS, (void *)spec->oid,
			 spec->oid_len);
	} else {
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		attr_add(pubt, &npub, CKA_MODULUS_BITS, &bits, sizeof(bits));
		attr_add(pubt, &npub, CKA_PUBLIC_EXPONENT, exponent,
			 sizeof(exponent));
	}
	attr_add(privt, &npriv, CKA_TOKEN, &yes, sizeof(yes));
	attr_add(privt, &npriv, CKA_PRIVATE, &yes, sizeof(yes));
	attr_add(privt, &npriv, CKA_SENSITIVE, &yes, sizeof(yes));
	attr_add(privt, &npriv, CKA_EXTRACTABLE, &no, sizeof(no));
	attr_add(privt, &npriv, CKA_SIGN, &yes, sizeof(yes));
	attr_add(privt, &npriv, CKA_DECRYPT, &no, sizeof(no));
	attr_add(privt, &npriv, CKA_UNWRAP, &no, sizeof(no));
	attr_add(privt, &npriv, CKA_DERIVE, &no, sizeof(no));
	attr_add(privt, &npriv, CKA_ID, (void *)key_id, id_len);
	attr_add(privt, &npriv, CKA_LABEL, (void *)key_id, id_len);
	if (mark) {
		attr_add(pubt, &npub, CKA_SUBJECT, (void *)key_mark,
			 sizeof(key_mark));
		attr_add(privt, &npriv, CKA_SUBJECT, (void *)key_mark,
			 sizeof(key_mark));
	}

	pthread_mutex_lock(&b->write_lock);
	rv = P11(b, C_GenerateKeyPair, s, &mech, pubt, npub, privt, npriv,
		 &hpub, &hpriv);
	pthread_mutex_unlock(&b->write_lock);
	if (rv != CKR_OK) {
		*clean = !session_broken(rv);
		snprintf(err, errlen,
			 "cannot generate a key (%s) in token '%s'", spec->name,
			 b->token);
		ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		goto out;
	}
	have_keys = true;

	if ((rv = facts_read(b, s, hpriv, facts)) != CKR_OK) {
		*clean = !session_broken(rv);
		ck_err(err, errlen,
		       "cannot read back the new key's attributes; key refused",
		       rv);
		goto out;
	}
	if ((violation = facts_violation(facts)) != NULL) {
		snprintf(err, errlen,
			 "token '%s' made a key (%s) that is not sign-only and "
			 "non-extractable (%s); key refused and destroyed",
			 b->token, spec->name, violation);
		goto out;
	}
	if (pubkey_read(b, s, hpub, spec, pub, err, errlen) != 0)
		goto out;
	*hpubp = hpub;
	*hprivp = hpriv;
	r = 0;
out:
	if (r != 0 && have_keys) {
		obj_destroy(b, s, hpriv);
		obj_destroy(b, s, hpub);
		stint_pubkey_free(pub);
	}
	return r;
}

/* --- key pool ------------------------------------------------------------ */

static const struct key_spec *
pool_spec(void)
{
	return &key_specs[0]; /* ec-p256 */
}

/* "pool-" and 32 lowercase hex digits: the ids under which earlier versions
 * kept ready keys before relabelling them. The sweep removes any left. */
static bool
legacy_pool_id(const char *id, size_t len)
{
	size_t i, n = strlen(LEGACY_POOL_PREFIX);

	if (len != n + 32 || memcmp(id, LEGACY_POOL_PREFIX, n) != 0)
		return false;
	for (i = n; i < len; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

/* Starts the refill thread once; caller holds pool_lock. Not at open:
 * stintd forks after opening the backend, and threads do not survive it. */
static void
pool_start_locked(struct p11_backend *b)
{
	if (b->pool_target == 0 || b->pool_started || b->pool_stop)
		return;
	if (pthread_create(&b->pool_thread, NULL, pool_main, b) != 0) {
		log_warn("backend: cannot start the key pool thread; "
			 "generating every key at task start");
		b->pool_target = 0;
		return;
	}
	b->pool_started = true;
}

/* Makes one ready key under a fresh task id and adds it to the pool. Runs
 * in the refill thread, holding neither lock while the token works: the
 * duplicate-id search, the generation and the read-back of the facts and
 * the public key all happen here, off the task start's path. */
static int
pool_fill_one(struct p11_backend *b, char *err, size_t errlen)
{
	struct pool_key k;
	CK_OBJECT_HANDLE existing;
	CK_SESSION_HANDLE s;
	CK_ULONG n;
	bool clean = true, kept = false;
	CK_RV rv;
	int r = -1;

	memset(&k, 0, sizeof(k));
	if (stint_task_id_new(k.id) != 0) {
		snprintf(err, errlen, "no randomness for a task id");
		return -1;
	}
	/* From here until the key is in pool[], the sweep must spare it. */
	pthread_mutex_lock(&b->pool_lock);
	memcpy(b->pool_making, k.id, sizeof(k.id));
	pthread_mutex_unlock(&b->pool_lock);
	if ((rv = session_get(b, &s)) != CKR_OK) {
		ck_err(err, errlen, "cannot open a token session", rv);
		goto done;
	}
	/* As in generate(): a second key under one id would make every later
	 * lookup a guess. */
	if ((rv = find_by_id(b, s, k.id, NULL, &existing, 1, &n)) != CKR_OK) {
		clean = !session_broken(rv);
		ck_err(err, errlen, "cannot search the token", rv);
		goto out;
	}
	if (n > 0) {
		snprintf(err, errlen, "id %s is taken in token '%s'", k.id,
			 b->token);
		goto out;
	}
	if (keypair_make(b, s, pool_spec(), k.id, true, &k.pub, &k.priv,
			 &k.pubkey, &k.facts, &clean, err, errlen) != 0)
		goto out;
	pthread_mutex_lock(&b->pool_lock);
	if (b->n_pool < b->pool_target) {
		b->pool[b->n_pool++] = k;
		kept = true;
	}
	pthread_mutex_unlock(&b->pool_lock);
	if (!kept) { /* not wanted any more */
		obj_destroy(b, s, k.priv);
		obj_destroy(b, s, k.pub);
		stint_pubkey_free(&k.pubkey);
	}
	r = 0;
out:
	session_put(b, s, clean);
done:
	pthread_mutex_lock(&b->pool_lock);
	b->pool_making[0] = '\0';
	pthread_mutex_unlock(&b->pool_lock);
	return r;
}

static void
timespec_add_ms(struct timespec *t, long ms)
{
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/* Caller holds pool_lock: the token is busy for a task now. */
static void
pool_busy_locked(struct p11_backend *b)
{
	clock_gettime(CLOCK_REALTIME, &b->pool_quiet);
	timespec_add_ms(&b->pool_quiet, POOL_QUIET_MS);
}

static void
pool_busy(struct p11_backend *b)
{
	pthread_mutex_lock(&b->pool_lock);
	pool_busy_locked(b);
	pthread_mutex_unlock(&b->pool_lock);
}

/* Caller holds pool_lock: waits for POOL_QUIET_MS without a task start or
 * end, or POOL_QUIET_MAX_MS, or stop. */
static void
pool_wait_quiet(struct p11_backend *b)
{
	struct timespec now, limit, until;

	clock_gettime(CLOCK_REALTIME, &limit);
	timespec_add_ms(&limit, POOL_QUIET_MAX_MS);
	while (!b->pool_stop) {
		clock_gettime(CLOCK_REALTIME, &now);
		until = b->pool_quiet;
		if (until.tv_sec > limit.tv_sec ||
		    (until.tv_sec == limit.tv_sec &&
		     until.tv_nsec > limit.tv_nsec))
			until = limit;
		if (now.tv_sec > until.tv_sec || (now.tv_sec == until.tv_sec &&
						  now.tv_nsec >= until.tv_nsec))
			return;
		pthread_cond_timedwait(&b->pool_cond, &b->pool_lock, &until);
	}
}

static void *
pool_main(void *arg)
{
	struct p11_backend *b = arg;
	struct timespec until;
	char err[256];
	bool failing = false;

	pthread_mutex_lock(&b->pool_lock);
	for (;;) {
		while (!b->pool_stop && b->n_pool >= b->pool_target)
			pthread_cond_wait(&b->pool_cond, &b->pool_lock);
		pool_wait_quiet(b);
		if (b->pool_stop)
			break;
		pthread_mutex_unlock(&b->pool_lock);
		err[0] = '\0';
		if (pool_fill_one(b, err, sizeof(err)) == 0) {
			failing = false;
			pthread_mutex_lock(&b->pool_lock);
			continue;
		}
		/* Task start still works by generating; retry later. */
		if (!failing)
			log_warn("backend: cannot refill the key pool: %s; "
				 "retrying every %d s",
				 err, POOL_RETRY_S);
		failing = true;
		pthread_mutex_lock(&b->pool_lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += POOL_RETRY_S;
		while (!b->pool_stop &&
		       pthread_cond_timedwait(&b->pool_cond, &b->pool_lock,
					      &until) == 0)
			;
	}
	pthread_mutex_unlock(&b->pool_lock);
	return NULL;
}

/*
 * Hands out a ready key: a pop under pool_lock, no call into the token.
 * The facts read back when the key was made still hold: CKA_SENSITIVE can
 * only be changed to true and CKA_EXTRACTABLE only to false (PKCS#11
 * 2.40, 4.9), CKA_LOCAL and CKA_NEVER_EXTRACTABLE are read-only, and key
 * material cannot be modified, so the public key read back then is still
 * the private key's. The usage flags could be changed, but only by a
 * holder of the user PIN, which only stintd has, and stintd never sets
 * attributes on keys.
 */
static int
p11_key_take(struct stint_backend *base, uint32_t key_type,
	     char id[STINT_TASK_ID_MAX + 1], struct stint_pubkey *pub,
	     struct stint_key_facts *facts)
{
	struct p11_backend *b = (struct p11_backend *)base;
	struct pool_key k;
	bool got = false;

	if (key_spec_find(key_type) != pool_spec())
		return -1;
	pthread_mutex_lock(&b->pool_lock);
	pool_start_locked(b);
	if (b->n_pool > 0) {
		k = b->pool[--b->n_pool];
		memset(&b->pool[b->n_pool], 0, sizeof(b->pool[b->n_pool]));
		pool_busy_locked(b);
		pthread_cond_signal(&b->pool_cond); /* refill */
		got = true;
	}
	pthread_mutex_unlock(&b->pool_lock);
	if (!got)
		return -1;
	cache_put(b, k.id, k.priv, CKK_EC);
	memcpy(id, k.id, sizeof(k.id));
	*pub = k.pubkey;
	*facts = k.facts;
	return 0;
}

/* True while id is a ready key in memory or being made as one. */
static bool
pool_holds(struct p11_backend *b, const char *id)
{
	bool held;
	size_t i;

	pthread_mutex_lock(&b->pool_lock);
	held = strcmp(b->pool_making, id) == 0;
	for (i = 0; i < b->n_pool && !held; i++)
		held = strcmp(b->pool[i].id, id) == 0;
	pthread_mutex_unlock(&b->pool_lock);
	return held;
}

static void
pool_stop(struct p11_backend *b)
{
	bool started;

	pthread_mutex_lock(&b->pool_lock);
	b->pool_stop = true;
	started = b->pool_started;
	pthread_cond_broadcast(&b->pool_cond);
	pthread_mutex_unlock(&b->pool_lock);
	if (started)
		pthread_join(b->pool_thread, NULL);
}

/*
 * Ready keys across a clean restart: at stop their ids go to
 * <state_dir>/ready-keys (0600, written whole and renamed into place); the
 * next start reads the file, removes it, and adopts those of its keys that
 * no task owns and that pass the task-key checks again. Only a clean stop
 * writes the file and every start removes it, so after a crash nothing is
 * adopted and the sweep destroys the keys instead: a key handed out to a
 * task start that never finished is never handed out twice.
 */
static int
ready_save(struct p11_backend *b)
{
	char tmp[PATH_MAX + 8], line[STINT_TASK_ID_MAX + 2];
	size_t i, len;
	int fd, ok = 1;

	if (b->ready_path[0] == '\0' ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", b->ready_path) >=
		    sizeof(tmp))
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	for (i = 0; i < b->n_pool && ok; i++) {
		len = (size_t)snprintf(line, sizeof(line), "%s\n",
				       b->pool[i].id);
		ok = write(fd, line, len) == (ssize_t)len;
	}
	ok = ok && fsync(fd) == 0;
	if (close(fd) != 0 || !ok || rename(tmp, b->ready_path) != 0) {
		log_warn("backend: cannot keep the ready keys in %s (%s); "
			 "destroying them",
			 b->ready_path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* The ids saved by the last clean stop (malloc'ed, n entries), and the file
 * removed: nothing when it cannot be removed, so it is never read twice. */
static char (*ready_load(struct p11_backend *b,
			 size_t *n))[STINT_TASK_ID_MAX + 1]
{
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	char line[128];
	size_t len;
	FILE *f;

	*n = 0;
	if (b->ready_path[0] == '\0' ||
	    (f = fopen(b->ready_path, "re")) == NULL)
		return NULL;
	if (unlink(b->ready_path) != 0) {
		log_warn("backend: cannot remove %s (%s); not adopting the "
			 "ready keys it lists",
			 b->ready_path, strerror(errno));
		fclose(f);
		return NULL;
	}
	ids = calloc(STINT_KEY_POOL_MAX, sizeof(*ids));
	while (ids != NULL && *n < STINT_KEY_POOL_MAX &&
	       fgets(line, sizeof(line), f) != NULL) {
		len = strcspn(line, "\n");
		line[len] = '\0';
		if (stint_task_id_shaped(line, len))
			memcpy(ids[(*n)++], line, len + 1);
	}
	fclose(f);
	return ids;
}

static bool
ready_listed(char (*ids)[STINT_TASK_ID_MAX + 1], size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

/* Adopts the key pair under id as a ready key if it still is one: one
 * private and one public ec-p256 key, sign-only, never extractable. */
static bool
pool_adopt(struct p11_backend *b, const char *id)
{
	static const CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY;
	static const CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY;
	CK_OBJECT_HANDLE hpriv[2], hpub[2];
	CK_KEY_TYPE type = 0;
	CK_ATTRIBUTE a = {CKA_KEY_TYPE, &type, sizeof(type)};
	struct pool_key k;
	CK_SESSION_HANDLE s;
	CK_ULONG npriv, npub;
	char why[256];
	bool ok;

	memset(&k, 0, sizeof(k));
	if (session_get(b, &s) != CKR_OK)
		return false;
	ok = find_by_id(b, s, id, &priv_cls, hpriv, 2, &npriv) == CKR_OK &&
	     find_by_id(b, s, id, &pub_cls, hpub, 2, &npub) == CKR_OK &&
	     npriv == 1 && npub == 1 &&
	     P11(b, C_GetAttributeValue, s, hpriv[0], &a, 1) == CKR_OK &&
	     type == CKK_EC && facts_read(b, s, hpriv[0], &k.facts) == CKR_OK &&
	     facts_violation(&k.facts) == NULL &&
	     pubkey_read(b, s, hpub[0], pool_spec(), &k.pubkey, why,
			 sizeof(why)) == 0;
	session_put(b, s, true);
	if (!ok) {
		stint_pubkey_free(&k.pubkey);
		return false;
	}
	k.priv = hpriv[0];
	k.pub = hpub[0];
	memcpy(k.id, id, strlen(id) + 1);
	pthread_mutex_lock(&b->pool_lock);
	ok = b->n_pool < b->pool_target;
	if (ok)
		b->pool[b->n_pool++] = k;
	pthread_mutex_unlock(&b->pool_lock);
	if (!ok)
		stint_pubkey_free(&k.pubkey);
	return ok;
}

/* At close, after pool_stop(): a stopped stintd leaves no unused ready key
 * in the token (the sweep at the next start covers a crash). */
static void
pool_drain(struct p11_backend *b)
{
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	bool have_session;
	size_t i;

	if (b->n_pool == 0)
		return;
	if (b->f != NULL && ready_save(b) == 0) {
		stint_debug("backend",
			    "key pool: %zu ready keys kept for the "
			    "next start",
			    b->n_pool);
		for (i = 0; i < b->n_pool; i++)
			stint_pubkey_free(&b->pool[i].pubkey);
		b->n_pool = 0;
		return;
	}
	have_session = b->f != NULL && (rv = session_get(b, &s)) == CKR_OK;
	for (i = 0; i < b->n_pool; i++) {
		if (have_session &&
		    ((rv = obj_destroy(b, s, b->pool[i].priv)) == CKR_OK ||
		     rv == CKR_OBJECT_HANDLE_INVALID))
			rv = obj_destroy(b, s, b->pool[i].pub);
		if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID)
			log_warn("backend: cannot remove unused ready key %s "
				 "(%s); the next start removes it",
				 b->pool[i].id, ckr_str(rv));
		stint_pubkey_free(&b->pool[i].pubkey);
	}
	if (have_session)
		session_put(b, s, !session_broken(rv));
	stint_debug("backend", "key pool: %zu unused ready keys removed",
		    b->n_pool);
	b->n_pool = 0;
}

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

/* What the sweep considers: the marked objects of the token (key_mark). */
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
		return session_broken(rv) ? rv : CKR_OK;
	if (a.ulValueLen == 0)
		return sweep_add_idless(l, h);
	if (!stint_task_id_shaped(buf, a.ulValueLen) &&
	    !legacy_pool_id(buf, a.ulValueLen))
		return CKR_OK;
	buf[a.ulValueLen] = '\0';
	return sweep_add_id(l, buf);
}

/* The marked objects in the token: distinct ids sorted, id-less handles. */
static CK_RV
sweep_ids(struct p11_backend *b, CK_SESSION_HANDLE s, struct sweep_list *l)
{
	CK_OBJECT_HANDLE h[FIND_BATCH];
	CK_ATTRIBUTE t = {CKA_SUBJECT, (void *)key_mark, sizeof(key_mark)};
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
	if ((rv = session_get(b, &s)) != CKR_OK) {
		if ((*failed)++ == 0)
			ck_err(err, errlen, "cannot open a token session", rv);
		return 0;
	}
	for (i = 0; i < l->n_idless; i++) {
		rv = obj_destroy(b, s, l->idless[i]);
		if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID) {
			if ((*failed)++ == 0)
				ck_err(err, errlen,
				       "cannot destroy a key without id", rv);
			if (session_broken(rv))
				break;
			continue;
		}
		done++;
		if (gone != NULL)
			gone(ctx, "");
	}
	session_put(b, s, i == l->n_idless);
	return done;
}

/* The number of marked objects in the token (keys this or an earlier
 * stintd made for tasks), for the check that a new state.db is not
 * replacing one in use. */
static int
p11_own_keys(struct stint_backend *base, size_t *count, char *err,
	     size_t errlen)
{
	struct p11_backend *b = (struct p11_backend *)base;
	CK_OBJECT_HANDLE h[FIND_BATCH];
	CK_ATTRIBUTE t = {CKA_SUBJECT, (void *)key_mark, sizeof(key_mark)};
	CK_SESSION_HANDLE s;
	CK_ULONG n;
	CK_RV rv, rv2;

	*count = 0;
	if ((rv = session_get(b, &s)) != CKR_OK) {
		ck_err(err, errlen, "cannot open a token session", rv);
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
	session_put(b, s, !session_broken(rv));
	if (rv != CKR_OK) {
		ck_err(err, errlen, "cannot list the objects in the token", rv);
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
static int
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
	saved = ready_load(b, &n_saved);
	if ((rv = session_get(b, &s)) != CKR_OK) {
		ck_err(err, errlen, "cannot open a token session", rv);
		goto out;
	}
	rv = sweep_ids(b, s, &l);
	session_put(b, s, !session_broken(rv));
	if (rv != CKR_OK) {
		ck_err(err, errlen, "cannot list the objects in the token", rv);
		goto out;
	}
	ids = l.ids;
	n = l.n;
	*destroyed +=
		sweep_idless(b, &l, keep, gone, ctx, &failed, err, errlen);
	for (i = 0; i < n; i++) {
		if (pool_holds(b, ids[i]))
			continue;
		if (legacy_pool_id(ids[i], strlen(ids[i])))
			goto destroy;
		if (keep(ctx, ids[i]))
			continue;
		if (ready_listed(saved, n_saved, ids[i]) &&
		    pool_adopt(b, ids[i])) {
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
	pool_start_locked(b);
	pthread_mutex_unlock(&b->pool_lock);
	return r;
}

/* --- generate ------------------------------------------------------------ */

/* A fresh task key under key_id (ready keys are handed out only by
 * key_take(), under their own ids). */
static int
key_generate(struct p11_backend *b, uint32_t key_type, const char *key_id,
	     bool mark, struct stint_pubkey *pub, struct stint_key_facts *facts,
	     char *err, size_t errlen)
{
	const struct key_spec *spec;
	CK_OBJECT_HANDLE hpub, hpriv, existing;
	CK_SESSION_HANDLE s;
	CK_ULONG n;
	bool clean = true;
	CK_RV rv;
	int r = -1;

	memset(pub, 0, sizeof(*pub));
	memset(facts, 0, sizeof(*facts));
	if ((spec = key_spec_find(key_type)) == NULL) {
		snprintf(err, errlen,
			 "unknown key type %u (use ec-p256, ec-p384, rsa-2048 "
			 "or rsa-3072)",
			 (unsigned)key_type);
		return -1;
	}
	if (!key_id_ok(key_id)) {
		snprintf(err, errlen, "key id must be 1 to %d bytes",
			 KEY_ID_MAX);
		return -1;
	}
	/* An operation prepared for an earlier key of this id (destroyed
	 * behind our back) must not sign for the new one. */
	p11_prep_drop(b->prep, key_id);
	pool_busy(b);
	if ((rv = session_get(b, &s)) != CKR_OK) {
		ck_err(err, errlen, "cannot open a token session", rv);
		return -1;
	}
	/* A second key under one id would make every later lookup a guess. */
	if ((rv = find_by_id(b, s, key_id, NULL, &existing, 1, &n)) != CKR_OK) {
		clean = !session_broken(rv);
		ck_err(err, errlen, "cannot search the token", rv);
		goto out;
	}
	if (n > 0) {
		snprintf(err, errlen,
			 "a key with id '%s' already exists in "
			 "token '%s'",
			 key_id, b->token);
		goto out;
	}
	if (keypair_make(b, s, spec, key_id, mark, &hpub, &hpriv, pub, facts,
			 &clean, err, errlen) != 0)
		goto out;
	cache_put(b, key_id, hpriv, spec->ec ? CKK_EC : CKK_RSA);
	r = 0;
out:
	session_put(b, s, clean);
	return r;
}

static int
p11_generate(struct stint_backend *base, uint32_t key_type, const char *key_id,
	     int64_t not_after, struct stint_pubkey *pub,
	     struct stint_key_facts *facts, char *err, size_t errlen)
{
	(void)not_after; /* a PKCS#11 key cannot bind it */
	return key_generate((struct p11_backend *)base, key_type, key_id, true,
			    pub, facts, err, errlen);
}

static size_t
hash_len(CK_MECHANISM_TYPE hash)
{
	switch (hash) {
	case CKM_SHA_1:
		return 20;
	case CKM_SHA224:
		return 28;
	case CKM_SHA256:
		return 32;
	case CKM_SHA384:
		return 48;
	case CKM_SHA512:
		return 64;
	default:
		return 0;
	}
}

static CK_RSA_PKCS_MGF_TYPE
mgf_for(CK_MECHANISM_TYPE hash)
{
	switch (hash) {
	case CKM_SHA_1:
		return CKG_MGF1_SHA1;
	case CKM_SHA224:
		return CKG_MGF1_SHA224;
	case CKM_SHA256:
		return CKG_MGF1_SHA256;
	case CKM_SHA384:
		return CKG_MGF1_SHA384;
	default:
		return CKG_MGF1_SHA512;
	}
}

/* Raw PSS signs a digest: its length must be the hash's. */
static int
pss_check(const CK_RSA_PKCS_PSS_PARAMS *pss, size_t in_len, char *err,
	  size_t errlen)
{
	size_t want = hash_len(pss->hashAlg);

	if (want == 0) {
		snprintf(err, errlen,
			 "PSS hash 0x%lx is not SHA-1/224/256/"
			 "384/512",
			 (unsigned long)pss->hashAlg);
		return -1;
	}
	if (pss->mgf != mgf_for(pss->hashAlg)) {
		snprintf(err, errlen,
			 "PSS MGF1 hash differs from the message "
			 "hash");
		return -1;
	}
	if (in_len != want) {
		snprintf(err, errlen,
			 "PSS input is %zu bytes, not the %zu-byte digest",
			 in_len, want);
		return -1;
	}
	if (pss->sLen > 512) {
		snprintf(err, errlen, "PSS salt length %lu is too long",
			 (unsigned long)pss->sLen);
		return -1;
	}
	return 0;
}

static int
p11_sign(struct stint_backend *base, const char *key_id, CK_MECHANISM_TYPE raw,
	 const CK_RSA_PKCS_PSS_PARAMS *pss, const uint8_t *in, size_t in_len,
	 uint8_t *sig, size_t *sig_len, char *err, size_t errlen)
{
	struct p11_backend *b = (struct p11_backend *)base;
	CK_RSA_PKCS_PSS_PARAMS pss_params;
	CK_MECHANISM mech = {raw, NULL, 0};
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_KEY_TYPE type;
	CK_ULONG len;
	CK_RV rv = CKR_OK;
	bool cached, clean = true;
	int attempt, r = -1;

	if (raw != CKM_ECDSA && raw != CKM_RSA_PKCS &&
	    raw != CKM_RSA_PKCS_PSS) {
		snprintf(err, errlen,
			 "mechanism 0x%lx is not CKM_ECDSA, CKM_RSA_PKCS or "
			 "CKM_RSA_PKCS_PSS",
			 (unsigned long)raw);
		return -1;
	}
	if ((raw == CKM_RSA_PKCS_PSS) != (pss != NULL)) {
		snprintf(err, errlen,
			 "PSS parameters go with CKM_RSA_PKCS_PSS "
			 "and only with it");
		return -1;
	}
	if (!key_id_ok(key_id)) {
		snprintf(err, errlen, "key id must be 1 to %d bytes",
			 KEY_ID_MAX);
		return -1;
	}
	if (in_len == 0 || in_len > SIGN_IN_MAX) {
		snprintf(err, errlen, "input to sign must be 1 to %d bytes",
			 SIGN_IN_MAX);
		return -1;
	}
	if (pss != NULL && pss_check(pss, in_len, err, errlen) != 0)
		return -1;
	if (pss != NULL) {
		pss_params = *pss;
		mech.pParameter = &pss_params;
		mech.ulParameterLen = sizeof(pss_params);
	}
	len = *sig_len;
	if (p11_prep_sign(b->prep, key_id, &mech, in, in_len, sig, &len)) {
		*sig_len = len;
		return 0;
	}
	if ((rv = session_get(b, &s)) != CKR_OK) {
		ck_err(err, errlen, "cannot open a token session", rv);
		return -1;
	}
	/* A cached handle can be stale if the key was destroyed behind our
	 * back; then look it up once more in the token. */
	for (attempt = 0; attempt < 2; attempt++) {
		if (key_lookup(b, s, key_id, &key, &type, &cached, &rv, err,
			       errlen) != 0) {
			clean = !session_broken(rv);
			goto out;
		}
		/* SoftHSM 2.6 crashes in C_Sign when an RSA mechanism is used
		 * with an EC key, so the token is not asked. */
		if (type != (raw == CKM_ECDSA ? CKK_EC : CKK_RSA)) {
			snprintf(err, errlen,
				 "key '%s' is not an %s key: mechanism does "
				 "not fit",
				 key_id, raw == CKM_ECDSA ? "EC" : "RSA");
			goto out;
		}
		rv = P11(b, C_SignInit, s, &mech, key);
		if ((rv == CKR_KEY_HANDLE_INVALID ||
		     rv == CKR_OBJECT_HANDLE_INVALID) &&
		    cached) {
			cache_drop(b, key_id);
			continue;
		}
		break;
	}
	if (rv != CKR_OK) {
		clean = !session_broken(rv);
		if (rv == CKR_KEY_HANDLE_INVALID ||
		    rv == CKR_OBJECT_HANDLE_INVALID)
			cache_drop(b, key_id);
		snprintf(err, errlen, "cannot sign with key '%s'", key_id);
		ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		goto out;
	}
	len = *sig_len;
	rv = P11(b, C_Sign, s, (CK_BYTE_PTR)in, in_len, sig, &len);
	if (rv != CKR_OK) {
		clean = false;
		snprintf(err, errlen, "signing with key '%s' failed", key_id);
		ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		goto out;
	}
	*sig_len = len;
	r = 0;
out:
	session_put(b, s, clean);
	if (r == 0)
		p11_prep_request(b->prep, key_id, key, &mech);
	return r;
}

static int
p11_destroy(struct stint_backend *base, const char *key_id, char *err,
	    size_t errlen)
{
	struct p11_backend *b = (struct p11_backend *)base;
	CK_OBJECT_HANDLE h[FIND_BATCH];
	CK_SESSION_HANDLE s;
	CK_ULONG n, i;
	CK_RV rv = CKR_OK;
	bool clean = true;
	int round, r = -1;

	if (!key_id_ok(key_id)) {
		snprintf(err, errlen, "key id must be 1 to %d bytes",
			 KEY_ID_MAX);
		return -1;
	}
	cache_drop(b, key_id);
	p11_prep_drop(b->prep, key_id);
	pool_busy(b);
	if ((rv = session_get(b, &s)) != CKR_OK) {
		ck_err(err, errlen, "cannot open a token session", rv);
		return -1;
	}
	/* Bounded: each round destroys what it found or fails. */
	for (round = 0; round < 64; round++) {
		if ((rv = find_by_id(b, s, key_id, NULL, h, FIND_BATCH, &n)) !=
		    CKR_OK) {
			clean = !session_broken(rv);
			snprintf(err, errlen, "cannot search for key '%s'",
				 key_id);
			ck_err(err + strlen(err), errlen - strlen(err), "", rv);
			goto out;
		}
		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			rv = obj_destroy(b, s, h[i]);
			/* Gone already: another thread got there first. */
			if (rv == CKR_OK || rv == CKR_OBJECT_HANDLE_INVALID)
				continue;
			clean = !session_broken(rv);
			snprintf(err, errlen, "cannot destroy key '%s'",
				 key_id);
			ck_err(err + strlen(err), errlen - strlen(err), "", rv);
			goto out;
		}
	}
	if (round == 64) {
		snprintf(err, errlen,
			 "key '%s' keeps reappearing in token '%s'", key_id,
			 b->token);
		goto out;
	}
	r = 0;
out:
	/* A signer may have cached the handle, or asked for an operation to
	 * be prepared, while we were destroying. */
	cache_drop(b, key_id);
	p11_prep_drop(b->prep, key_id);
	session_put(b, s, clean);
	return r;
}

/* Finds the host key key_id (a private key and its public key sharing the
 * CKA_ID), or generates it. A host key that is found is held to the same
 * attribute rules as a fresh one: an extractable CA key is refused. */
static int
p11_host_key(struct stint_backend *base, const char *key_id, uint32_t key_type,
	     struct stint_pubkey *pub, struct stint_key_facts *facts,
	     bool *created, char *err, size_t errlen)
{
	struct p11_backend *b = (struct p11_backend *)base;
	static const CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY;
	static const CK_OBJECT_CLASS pub_cls = CKO_PUBLIC_KEY;
	const struct key_spec *spec;
	CK_OBJECT_HANDLE hpriv[2], hpub[2];
	CK_SESSION_HANDLE s;
	const char *violation;
	CK_ULONG n, npub;
	bool clean = true;
	CK_RV rv;
	int r = -1;

	*created = false;
	memset(pub, 0, sizeof(*pub));
	memset(facts, 0, sizeof(*facts));
	if ((spec = key_spec_find(key_type)) == NULL || !key_id_ok(key_id)) {
		snprintf(err, errlen, "bad host key type or id");
		return -1;
	}
	if ((rv = session_get(b, &s)) != CKR_OK) {
		ck_err(err, errlen, "cannot open a token session", rv);
		return -1;
	}
	if ((rv = find_by_id(b, s, key_id, &priv_cls, hpriv, 2, &n)) !=
		    CKR_OK ||
	    (rv = find_by_id(b, s, key_id, &pub_cls, hpub, 2, &npub)) !=
		    CKR_OK) {
		clean = !session_broken(rv);
		ck_err(err, errlen, "cannot search the token", rv);
		goto out;
	}
	if (n == 0 && npub == 0) {
		session_put(b, s, clean);
		/* Unmarked: the sweep never considers host keys. */
		r = key_generate(b, key_type, key_id, false, pub, facts, err,
				 errlen);
		*created = r == 0;
		return r;
	}
	if (n != 1 || npub != 1) {
		snprintf(err, errlen,
			 "token '%s' holds %lu private and %lu public keys "
			 "with id '%s', not one of each: remove the strays",
			 b->token, (unsigned long)n, (unsigned long)npub,
			 key_id);
		goto out;
	}
	if ((rv = facts_read(b, s, hpriv[0], facts)) != CKR_OK) {
		clean = !session_broken(rv);
		ck_err(err, errlen, "cannot read the host key's attributes",
		       rv);
		goto out;
	}
	if ((violation = facts_violation(facts)) != NULL) {
		snprintf(err, errlen,
			 "host key '%s' in token '%s' is not sign-only and "
			 "non-extractable (%s): refusing to use it",
			 key_id, b->token, violation);
		goto out;
	}
	if (pubkey_read(b, s, hpub[0], spec, pub, err, errlen) != 0)
		goto out;
	r = 0;
out:
	if (r != 0)
		stint_pubkey_free(pub);
	session_put(b, s, clean);
	return r;
}

static void
p11_stats(struct stint_backend *base, struct stint_backend_stats *st)
{
	struct p11_backend *b = (struct p11_backend *)base;
	size_t ready, max;

	pthread_mutex_lock(&b->pool_lock);
	st->ready_keys = b->n_pool;
	st->ready_target = b->pool_target;
	pthread_mutex_unlock(&b->pool_lock);
	p11_prep_stats(b->prep, &ready, &max);
	st->prepared = ready;
	st->prepared_max = max;
}

static const struct stint_backend_ops p11_ops = {
	.name = "pkcs11",
	.evidence_kind = STINT_EVIDENCE_KIND,
	.generate = p11_generate,
	.sign = p11_sign,
	.destroy = p11_destroy,
	.host_key = p11_host_key,
	.key_take = p11_key_take,
	.sweep = p11_sweep,
	.own_keys = p11_own_keys,
	.stats = p11_stats,
	.close = p11_close,
};

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
			 b->module, ckr_str(rv));
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
		ck_err(err + strlen(err), errlen - strlen(err), "", rv);
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
		ck_err(err + strlen(err), errlen - strlen(err), "", rv);
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
			 b->pin_file, b->token, ckr_str(rv));
		goto out;
	case CKR_PIN_LOCKED:
		snprintf(err, errlen,
			 "the user PIN of token '%s' is locked after too many "
			 "wrong PINs: unlock it with the SO PIN",
			 b->token);
		goto out;
	default:
		snprintf(err, errlen, "cannot log in to token '%s'", b->token);
		ck_err(err + strlen(err), errlen - strlen(err), "", rv);
		goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(pin, sizeof(pin));
	return r;
}

static void
p11_close(struct stint_backend *base)
{
	struct p11_backend *b = (struct p11_backend *)base;

	if (b == NULL)
		return;
	/* Unused ready keys do not outlive this stintd. */
	pool_stop(b);
	pool_drain(b);
	p11_prep_free(b->prep);
	b->prep = NULL;
	if (b->f != NULL) {
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
	pthread_mutex_lock(&b->lock);
	cache_clear_locked(b);
	pthread_mutex_unlock(&b->lock);
	if (b->dl != NULL)
		dlclose(b->dl);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->pool_cond);
	pthread_mutex_destroy(&b->pool_lock);
	pthread_mutex_destroy(&b->write_lock);
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
		ck_err(err + strlen(err), errlen - strlen(err), "", rv);
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
