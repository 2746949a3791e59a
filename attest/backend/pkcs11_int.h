/*
 * PKCS#11 key-store backend (SoftHSM2 or a real HSM): what its files
 * (attest/backend/pkcs11_*.c) share. Private to them.
 *
 * Files: pkcs11_token.c module, token, login, the traced P11() wrapper,
 * session pool and key handle cache, open and close; pkcs11_keys.c key
 * specs, objects' public keys (SPKI) and key pair generation;
 * pkcs11_pool.c the key pool and the ready-keys file; pkcs11_sweep.c the
 * orphan sweep; pkcs11_ops.c the backend ops; pkcs11_prep.c prepared
 * signing operations; pkcs11_copy.c session copies of signing keys (a
 * key signs with a CKA_TOKEN = FALSE copy of its private key, made at its
 * first signature and destroyed with its cache entry); pkcs11_attest.c the
 * attestation key ("stint-ak") and the evidence, ak_spki and ak_sign ops.
 *
 *
 * stintd loads the configured module, finds its token by label (SoftHSM
 * moves a token to a random slot id, so slot ids mean nothing), logs in
 * once and keeps that login alive with one session that is never used for
 * anything else: PKCS#11 logs the application out when its last session
 * closes. Signing threads borrow R/W sessions from a small pool and look up
 * private key handles in a cache, since token object handles stay valid
 * across sessions of one application.
 *
 * Token size (docs/performance.md "Token size"): SoftHSM2's file store has
 * no index. Every C_FindObjectsInit passes over all objects (each object's
 * file opened and read for each attribute it compares), and removing an
 * object's file re-reads the whole token directory (a stat per file). So
 * nothing on the task start and end paths searches the token: the handle
 * cache keeps each task key's handles from its generation (or from the
 * sweep's one listing at start), a task end destroys by handle after
 * checking CKA_ID (p11_destroy_known), the duplicate-id check asks the
 * cache (ids are minted fresh), the failed-generation snapshot is listed
 * once and then extended (known_ready), and the public half of a task key
 * is a session object, read and destroyed at generation (session_pub), so
 * a task costs one token object. What still grows with the token is
 * SoftHSM's own directory re-read on each destroyed object.
 *
 * Prepared operations ([backend] prepared_ops = N, pkcs11_prep.c): after a
 * signature, C_SignInit for the next one with the same key and mechanism
 * runs on a spare session, so a SIGN usually costs only C_Sign: on the
 * connection thread after its reply (after_reply) once the key signs
 * repeatedly, else in a background thread. destroy() and generate() drop
 * them for their key id.
 *
 * Key pool ([backend] key_pool = N): SoftHSM's file store takes tens of
 * milliseconds to generate a key pair (it writes the new objects attribute
 * by attribute), and any change to an object rewrites its file. So a
 * background thread keeps N ec-p256 key pairs ready, each made under its
 * final name: it mints a task id (stint_task_id_new), checks that no key
 * stintd knows has that id, generates the pair with the task-key template and
 * id and label = the task id, and reads the facts and the public key back, all
 * off the task start's path. key_take() pops one from memory and the task gets
 * the key's id: no call into the token at all. generate() always makes a
 * fresh key under the caller's id. A ready key looks like any task key in
 * the token, so a listing shows up to N keys named after tasks that do not
 * exist yet. At close each ready key gets a token public key object again
 * (its public half was a session object), the ready keys are listed in
 * <state_dir>/ready-keys (or destroyed when that cannot be done) and the
 * next sweep() adopts them, reading and then destroying those objects; after a
 * crash there is no list and sweep() removes them with every other key no task
 * owns (it removes any task-shaped key it is not told to keep: one token per
 * stintd). The refill thread starts with the first key_take() or at the end of
 * sweep(), never at open: stintd forks to daemonize after opening the backend,
 * and a thread does not survive a fork.
 */
#ifndef STINT_ATTEST_BACKEND_PKCS11_INT_H
#define STINT_ATTEST_BACKEND_PKCS11_INT_H

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
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "attest/backend.h"
#include "attest/config.h"
#include "attest/evidence.h"
#include "attest/backend/pkcs11_prep.h"
#include "attest/backend/shared.h"
#include "common/log.h"

#define PIN_MAX       256
#define POOL_MAX      32 /* idle sessions kept open for reuse */
#define CACHE_BUCKETS 4096
#define CACHE_MAX     (1u << 20) /* cached keys; beyond, lookups use finds */
/* Handles in the generation snapshot (known) before it is listed afresh. */
#define KNOWN_MAX    (1u << 18)
#define FIND_BATCH   16
#define KEY_ID_MAX   255
#define SIGN_IN_MAX  1024 /* largest raw input: RSA-4096 PKCS#1 block */
#define POOL_RETRY_S 5    /* refill pause after a failed generation */
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
extern const CK_BYTE p11_key_mark[28];

/* A key the cache knows: its private and public key objects' handles
 * (CK_INVALID_HANDLE when not known). dup: the sweep saw two objects of
 * one class under this id; the entry then answers nothing and every
 * lookup and destruction searches the token. */
struct p11_key_entry {
	struct p11_key_entry *next;
	CK_OBJECT_HANDLE priv, pub;
	CK_KEY_TYPE type;
	bool dup;
	/* priv and pub are all the token holds under id (pub
	 * CK_INVALID_HANDLE: no public key object): set for pairs stintd
	 * made or took from the pool and for keys the sweep listed, not for
	 * a handle a lookup found. */
	bool complete;
	/* The private key's session copy (pkcs11_copy.c) that signs in its
	 * place, CK_INVALID_HANDLE while there is none; copy_failed: the
	 * token refused one, sign with priv (logged once). */
	CK_OBJECT_HANDLE copy;
	bool copy_failed;
	char id[];
};

/* Object handles of a token, sorted when sorted is true. */
struct p11_handles {
	CK_OBJECT_HANDLE *h;
	size_t n, cap;
	bool sorted, valid;
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
	struct p11_key_entry *cache[CACHE_BUCKETS];
	size_t n_cached;

	/* Session copies of task keys (pkcs11_copy.c): made and destroyed in
	 * copy_session (opened at the first copy, under copy_lock); n_copies
	 * (under lock) counts the copies the cache holds. */
	pthread_mutex_t copy_lock;
	bool has_copy_session;
	CK_SESSION_HANDLE copy_session;
	size_t n_copies;

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
	/* Under write_lock: every object of the token as of its last full
	 * listing (taken before the first generation and after a failed one)
	 * plus the key objects generated since: what a failed
	 * C_GenerateKeyPair is compared against (pkcs11_keys.c). */
	struct p11_handles known;
	/* Id-less key objects a failed C_GenerateKeyPair left and
	 * p11_keypair_make destroyed (under write_lock). */
	size_t genfail_destroyed;

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

	/* The attestation key's SPKI once found (pkcs11_attest.c); lock. */
	struct stint_bytes ak_spki;
};

struct p11_key_spec {
	uint32_t type;
	const char *name;
	bool ec;
	int nid;            /* EC curve */
	const uint8_t *oid; /* DER of the curve OID, for CKA_EC_PARAMS */
	size_t oid_len;
	CK_ULONG bits;
};

/* A key pair to generate (p11_keypair_make). */
struct p11_keypair_req {
	const struct p11_key_spec *spec;
	const char *key_id; /* its CKA_ID and CKA_LABEL */
	bool mark;          /* add the task-key marker (p11_key_mark) */
	/* The public key as a session object, read and destroyed at once:
	 * one token object per task key (task and ready keys). */
	bool session_pub;
};

/* What p11_keypair_make made (hpub CK_INVALID_HANDLE with session_pub).
 * pub and facts point at the caller's structs
 * and are filled in (pub's parts malloc'ed, the caller's); clean starts
 * true and is false after a failure that leaves the session unusable. */
struct p11_keypair {
	CK_OBJECT_HANDLE hpub, hpriv;
	struct stint_pubkey *pub;
	struct stint_key_facts *facts;
	bool clean;
};

/* The key types this backend makes, ec-p256 first (pkcs11_keys.c). */
extern const struct p11_key_spec p11_key_specs[];
extern const struct stint_backend_ops p11_ops;

/* Every call into the module goes through P11(): one debug line naming
 * the call and its return code (pkcs11_token.c). b is anything with the
 * module's function list in b->f (the backend, pkcs11_prep.c's table). */
CK_RV p11_traced(CK_RV rv, const char *call);
#define P11(b, fn, ...) p11_traced((b)->f->fn(__VA_ARGS__), #fn)

/* pkcs11_token.c: return codes, handle cache, session pool, objects. */
const char *p11_ckr_str(CK_RV rv);
void p11_ck_err(char *err, size_t errlen, const char *what, CK_RV rv);
bool p11_session_broken(CK_RV rv);
struct p11_key_entry *p11_cache_find_locked(struct p11_backend *b,
					    const char *id);
void p11_cache_drop(struct p11_backend *b, const char *id);
void p11_cache_put(struct p11_backend *b, const char *id, CK_OBJECT_HANDLE h,
		   CK_KEY_TYPE type);
void p11_cache_put_pair(struct p11_backend *b, const char *id,
			CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub,
			CK_KEY_TYPE type);
void p11_cache_note(struct p11_backend *b, const char *id, CK_OBJECT_HANDLE h,
		    CK_OBJECT_CLASS cls, CK_KEY_TYPE type);
bool p11_cache_has(struct p11_backend *b, const char *id);
bool p11_cache_take(struct p11_backend *b, const char *id,
		    CK_OBJECT_HANDLE *priv, CK_OBJECT_HANDLE *pub);
int p11_destroy_known(struct p11_backend *b, CK_SESSION_HANDLE s,
		      const char *id, CK_OBJECT_HANDLE priv,
		      CK_OBJECT_HANDLE pub, CK_RV *rv);
CK_RV p11_session_get(struct p11_backend *b, CK_SESSION_HANDLE *s);
void p11_session_put(struct p11_backend *b, CK_SESSION_HANDLE s, bool clean);
void p11_attr_add(CK_ATTRIBUTE *t, CK_ULONG *n, CK_ATTRIBUTE_TYPE type,
		  void *value, CK_ULONG len);
CK_RV p11_obj_destroy(struct p11_backend *b, CK_SESSION_HANDLE s,
		      CK_OBJECT_HANDLE h);
CK_RV p11_find_by_id(struct p11_backend *b, CK_SESSION_HANDLE s, const char *id,
		     const CK_OBJECT_CLASS *cls, CK_OBJECT_HANDLE *out,
		     CK_ULONG max, CK_ULONG *n);
/* A private key p11_key_lookup found. */
struct p11_key_found {
	CK_OBJECT_HANDLE h;
	CK_KEY_TYPE type; /* CKK_EC or CKK_RSA */
	bool cached;      /* from the handle cache: may be stale */
	bool copy;        /* h is the key's session copy (pkcs11_copy.c) */
	CK_RV rv;         /* the module's code when it failed, else CKR_OK */
};
int p11_key_lookup(struct p11_backend *b, CK_SESSION_HANDLE s,
		   const char *key_id, struct p11_key_found *out, char *err,
		   size_t errlen);
CK_RV p11_attr_read(struct p11_backend *b, CK_SESSION_HANDLE s,
		    CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
		    struct stint_bytes *out);
CK_RV p11_facts_read(struct p11_backend *b, CK_SESSION_HANDLE s,
		     CK_OBJECT_HANDLE h, struct stint_key_facts *facts);
const char *p11_facts_violation(const struct stint_key_facts *f);
void p11_close(struct stint_backend *base);

/* pkcs11_copy.c: session copies of task keys. */
void p11_copy_get(struct p11_backend *b, const char *id,
		  struct p11_key_found *k);
void p11_copy_forget(struct p11_backend *b, const char *id,
		     CK_OBJECT_HANDLE copy);
void p11_copy_destroy(struct p11_backend *b, CK_OBJECT_HANDLE copy);
void p11_copy_close(struct p11_backend *b);

/* pkcs11_keys.c: public keys, key specs, key pair generation. */
int p11_pubkey_read(struct p11_backend *b, CK_SESSION_HANDLE s,
		    CK_OBJECT_HANDLE h, const struct p11_key_spec *spec,
		    struct stint_pubkey *pub, char *err, size_t errlen);
const struct p11_key_spec *p11_key_spec_find(uint32_t type);
bool p11_key_id_ok(const char *key_id);
int p11_keypair_make(struct p11_backend *b, CK_SESSION_HANDLE s,
		     const struct p11_keypair_req *req, struct p11_keypair *out,
		     char *err, size_t errlen);

/* pkcs11_pool.c: the key pool and the ready-keys file. */
bool p11_legacy_pool_id(const char *id, size_t len);
void p11_pool_start_locked(struct p11_backend *b);
void p11_pool_busy(struct p11_backend *b);
int p11_key_take(struct stint_backend *base, uint32_t key_type,
		 char id[STINT_TASK_ID_MAX + 1], struct stint_pubkey *pub,
		 struct stint_key_facts *facts);
bool p11_pool_holds(struct p11_backend *b, const char *id);
void p11_pool_stop(struct p11_backend *b);
bool p11_ready_listed(char (*ids)[STINT_TASK_ID_MAX + 1], size_t n,
		      const char *id);
bool p11_pool_adopt(struct p11_backend *b, const char *id);
/* The ids the last clean stop saved (malloc'ed, *n of them). */
char (*p11_ready_load(struct p11_backend *b, size_t *n))[STINT_TASK_ID_MAX + 1];
void p11_pool_drain(struct p11_backend *b);

/* pkcs11_sweep.c */
int p11_own_keys(struct stint_backend *base, size_t *count, char *err,
		 size_t errlen);
int p11_sweep(struct stint_backend *base,
	      bool (*keep)(void *ctx, const char *id),
	      void (*gone)(void *ctx, const char *id), void *ctx,
	      size_t *destroyed, char *err, size_t errlen);

/* pkcs11_ops.c */
int p11_destroy(struct stint_backend *base, const char *key_id, char *err,
		size_t errlen);

/* pkcs11_attest.c: the attestation key's ops. */
int p11_evidence(struct stint_backend *base,
		 const struct stint_backend_evidence_req *req,
		 struct stint_bytes *doc, char *err, size_t errlen);
int p11_ak_spki(struct stint_backend *base, struct stint_bytes *spki, char *err,
		size_t errlen);
int p11_ak_sign(struct stint_backend *base, const uint8_t *data, size_t len,
		uint8_t *sig, size_t *sig_len, char *err, size_t errlen);

#endif
