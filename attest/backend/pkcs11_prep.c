/*
 * Prepared signing operations: see p11_prep.h.
 *
 * Each slot of the table goes FREE -> QUEUED (asked for) -> ARMING (the
 * thread is in C_SignInit) -> READY (parked) -> INUSE (a signer is in
 * C_Sign) -> QUEUED again, or back to FREE when anything fails or the key
 * is dropped. The lock is never held across a PKCS#11 call; a drop that
 * meets a slot in ARMING or INUSE marks it cancelled and the thread that
 * owns the slot closes its session.
 *
 * A signer whose caller answers first and then calls p11_prep_after_reply
 * on the same thread (a connection thread) parks its slot DEFER instead of
 * QUEUED and arms it itself after the reply: no wake-up of the prepare
 * thread and no hand-off between threads per signature. A drop closes a
 * DEFER slot at once (it is in no PKCS#11 call); the slot's generation,
 * bumped by every release, tells the signer it is no longer its own.
 *
 * The slot a connection thread armed after its reply stays that thread's
 * (reserved, still READY): its next SIGN takes it back first, and other
 * threads take unreserved READY slots before they take a reserved one.
 * With several clients on one key each connection thus signs on its own
 * slot instead of waiting for one another thread is arming (a sleep and a
 * wake-up per signature); a drop or an eviction releases a reserved slot
 * as any READY one, and the generation tells the thread.
 */

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attest/backend/pkcs11_int.h"
#include "attest/backend/pkcs11_prep.h"
#include "common/log.h"

/* Prepared ops per key and mechanism: one per connection thread signing on
 * the key, up to 8 (with 8 clients on one key, 4 left threads taking each
 * other's slots: stintd futex calls per signature 11.0 -> 7.1 with 8,
 * docs/performance.md "Session copy of the signing key"). */
#define PREP_PER_KEY    8
#define PREP_WAIT_MS    50 /* longest wait for one being prepared */
#define PREP_KEY_ID_MAX 255
/* Prepared ops kept for a key that signs repeatedly: with two, one is
 * being prepared while the other waits, so a client signing back to back
 * finds one ready instead of waiting for C_SignInit. A key that signed
 * once gets one. */
#define PREP_DEPTH 2

enum prep_state { P_FREE, P_QUEUED, P_ARMING, P_READY, P_INUSE, P_DEFER };

struct prep_op {
	enum prep_state state;
	bool cancelled;
	bool has_session;
	bool has_pss;
	bool reserved; /* READY, armed by `owned`'s thread for itself */
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_MECHANISM_TYPE mech;
	CK_RSA_PKCS_PSS_PARAMS pss;
	uint64_t used; /* for evicting the least recently used */
	uint64_t gen;  /* bumped on every release (see deferred) */
	char key_id[PREP_KEY_ID_MAX + 1];
};

struct p11_prep {
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;
	pthread_mutex_t lock;
	pthread_cond_t work;  /* a slot became QUEUED, or stop */
	pthread_cond_t ready; /* a slot left ARMING */
	pthread_t thread;
	bool started, stop;
	uint64_t clock;
	size_t n;
	struct prep_op ops[];
};

/* The slot this thread parked DEFER, to arm after its reply. */
static _Thread_local struct {
	struct p11_prep *p;
	struct prep_op *op;
	uint64_t gen;
} deferred;

/* The slot this thread armed after its last reply: its next SIGN takes it
 * first. Valid while op->gen == gen (a release bumps gen). */
static _Thread_local struct {
	struct p11_prep *p;
	struct prep_op *op;
	uint64_t gen;
} owned;

struct p11_prep *
p11_prep_new(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, size_t max)
{
	struct p11_prep *p;
	pthread_condattr_t ca;

	if (max == 0)
		return NULL;
	if (max > STINT_PREP_MAX)
		max = STINT_PREP_MAX;
	if ((p = calloc(1, sizeof(*p) + max * sizeof(p->ops[0]))) == NULL) {
		log_warn("backend: out of memory for prepared operations; "
			 "signing without them");
		return NULL;
	}
	p->f = f;
	p->slot = slot;
	p->n = max;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->work, &ca);
	pthread_cond_init(&p->ready, &ca);
	pthread_condattr_destroy(&ca);
	return p;
}

static void
close_sessions(struct p11_prep *p, const CK_SESSION_HANDLE *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		(void)P11(p, C_CloseSession, s[i]);
}

void
p11_prep_free(struct p11_prep *p)
{
	CK_SESSION_HANDLE close[STINT_PREP_MAX];
	size_t i, n = 0;
	bool started;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	started = p->started;
	pthread_cond_broadcast(&p->work);
	pthread_cond_broadcast(&p->ready);
	pthread_mutex_unlock(&p->lock);
	if (started)
		pthread_join(p->thread, NULL);
	for (i = 0; i < p->n; i++) {
		if (p->ops[i].has_session)
			close[n++] = p->ops[i].s;
	}
	close_sessions(p, close, n);
	pthread_cond_destroy(&p->ready);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Only CKM_RSA_PKCS_PSS carries parameters in the backend's calls. */
static bool
mech_ok(const CK_MECHANISM *m)
{
	if (m->pParameter == NULL)
		return m->ulParameterLen == 0;
	return m->mechanism == CKM_RSA_PKCS_PSS &&
	       m->ulParameterLen == sizeof(CK_RSA_PKCS_PSS_PARAMS);
}

static bool
op_matches(const struct prep_op *op, const char *key_id, const CK_MECHANISM *m)
{
	const CK_RSA_PKCS_PSS_PARAMS *pss = m->pParameter;

	if (op->state == P_FREE || op->cancelled || op->mech != m->mechanism ||
	    strcmp(op->key_id, key_id) != 0)
		return false;
	if (pss == NULL)
		return !op->has_pss;
	return op->has_pss && op->pss.hashAlg == pss->hashAlg &&
	       op->pss.mgf == pss->mgf && op->pss.sLen == pss->sLen;
}

/* Caller holds the lock. The slot goes FREE; its session, if any, is
 * added to close[] for the caller to close after unlocking. */
static void
op_release(struct prep_op *op, CK_SESSION_HANDLE *close, size_t *n)
{
	uint64_t gen = op->gen;

	if (op->has_session)
		close[(*n)++] = op->s;
	memset(op, 0, sizeof(*op));
	op->gen = gen + 1;
}

/* Caller holds the lock and has set op ARMING, which nobody else touches
 * (a drop only marks it cancelled), so its fields are read without the
 * lock around the PKCS#11 calls. Leaves op READY, or FREE on failure. */
static void
arm_locked(struct p11_prep *p, struct prep_op *op)
{
	CK_MECHANISM m;
	CK_SESSION_HANDLE s, close[1];
	CK_RV rv = CKR_OK;
	size_t n = 0;

	m.mechanism = op->mech;
	m.pParameter = op->has_pss ? &op->pss : NULL;
	m.ulParameterLen = op->has_pss ? sizeof(op->pss) : 0;
	s = op->s;
	pthread_mutex_unlock(&p->lock);

	if (!op->has_session)
		rv = P11(p, C_OpenSession, p->slot, CKF_SERIAL_SESSION, NULL,
			 NULL, &s);
	if (rv == CKR_OK) {
		op->s = s;
		op->has_session = true;
		rv = P11(p, C_SignInit, s, &m, op->key);
	}

	pthread_mutex_lock(&p->lock);
	if (rv == CKR_OK && !op->cancelled && !p->stop) {
		op->state = P_READY;
	} else {
		op_release(op, close, &n);
		pthread_mutex_unlock(&p->lock);
		close_sessions(p, close, n);
		pthread_mutex_lock(&p->lock);
	}
	pthread_cond_broadcast(&p->ready);
}

static void *
prep_main(void *arg)
{
	struct p11_prep *p = arg;
	struct prep_op *op;
	size_t i;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		/* Oldest request first, so that no key's turn is skipped. */
		for (op = NULL, i = 0; i < p->n; i++) {
			if (p->ops[i].state == P_QUEUED &&
			    (op == NULL || p->ops[i].used < op->used))
				op = &p->ops[i];
		}
		if (op == NULL) {
			pthread_cond_wait(&p->work, &p->lock);
			continue;
		}
		op->state = P_ARMING;
		arm_locked(p, op);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Caller holds the lock: this thread's own READY slot for key_id and m,
 * if it still has one. */
static struct prep_op *
take_owned(struct p11_prep *p, const char *key_id, const CK_MECHANISM *m)
{
	struct prep_op *op = owned.op;

	if (op == NULL || owned.p != p)
		return NULL;
	owned.op = NULL;
	if (op->gen != owned.gen || op->state != P_READY ||
	    !op_matches(op, key_id, m))
		return NULL;
	return op;
}

/* Caller holds the lock: a READY slot to take (this thread's own, else an
 * unreserved one, else another thread's), or NULL after waiting at most
 * PREP_WAIT_MS for one being prepared. *grow says the key is short of
 * slots: this thread took another's or waited. */
static struct prep_op *
take_ready(struct p11_prep *p, const char *key_id, const CK_MECHANISM *m,
	   bool *grow)
{
	struct prep_op *other;
	struct timespec until;
	bool arming;
	size_t i;

	*grow = false;
	if ((other = take_owned(p, key_id, m)) != NULL)
		return other;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += PREP_WAIT_MS * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	for (;;) {
		arming = false;
		other = NULL;
		for (i = 0; i < p->n; i++) {
			if (!op_matches(&p->ops[i], key_id, m))
				continue;
			if (p->ops[i].state == P_READY && !p->ops[i].reserved)
				return &p->ops[i];
			if (p->ops[i].state == P_READY)
				other = &p->ops[i];
			arming |= p->ops[i].state == P_ARMING;
		}
		if (other != NULL) {
			*grow = true;
			return other;
		}
		*grow = true;
		if (!arming || p->stop ||
		    pthread_cond_timedwait(&p->ready, &p->lock, &until) != 0)
			return NULL;
	}
}

/* Caller holds the lock: a FREE slot, evicting the least recently used
 * READY one when the table is full; NULL when every slot is busy. */
static struct prep_op *
free_slot(struct p11_prep *p, CK_SESSION_HANDLE *close, size_t *n)
{
	struct prep_op *lru = NULL;
	size_t i;

	for (i = 0; i < p->n; i++) {
		if (p->ops[i].state == P_FREE)
			return &p->ops[i];
		if (p->ops[i].state == P_READY &&
		    (lru == NULL || p->ops[i].used < lru->used))
			lru = &p->ops[i];
	}
	if (lru != NULL)
		op_release(lru, close, n);
	return lru;
}

/* Caller holds the lock. */
static bool
thread_running(struct p11_prep *p)
{
	if (p->started)
		return true;
	if (pthread_create(&p->thread, NULL, prep_main, p) != 0) {
		log_warn("backend: cannot start the thread that prepares "
			 "signing operations; signing without them");
		p->stop = true;
		return false;
	}
	p->started = true;
	return true;
}

/*
 * Caller holds the lock. Queues operations for key_id until it has
 * `depth` (at most PREP_PER_KEY), evicting least recently used ready ones
 * of other keys when the table is full; evicted sessions go to close[]
 * (room for one per call).
 */
static void
queue_locked(struct p11_prep *p, const char *key_id, CK_OBJECT_HANDLE key,
	     const CK_MECHANISM *mech, size_t depth, CK_SESSION_HANDLE *close,
	     size_t *n)
{
	struct prep_op *op;
	size_t i, have = 0;

	for (i = 0; i < p->n; i++)
		have += op_matches(&p->ops[i], key_id, mech);
	if (have >= depth || have >= PREP_PER_KEY ||
	    (op = free_slot(p, close, n)) == NULL)
		return;
	op->state = P_QUEUED;
	op->key = key;
	op->mech = mech->mechanism;
	if (mech->pParameter != NULL) {
		op->has_pss = true;
		memcpy(&op->pss, mech->pParameter, sizeof(op->pss));
	}
	memcpy(op->key_id, key_id, strlen(key_id) + 1);
	op->used = ++p->clock;
	pthread_cond_signal(&p->work);
}

/* Caller holds the lock. The slot this thread parked DEFER and has not
 * armed yet, if it is still its own, goes to the prepare thread. */
static void
undefer_locked(struct p11_prep *p)
{
	struct prep_op *op = deferred.op;

	if (op == NULL || deferred.p != p)
		return;
	deferred.op = NULL;
	if (op->state == P_DEFER && op->gen == deferred.gen) {
		op->state = P_QUEUED;
		pthread_cond_signal(&p->work);
	}
}

/* Caller holds the lock; op was just used to sign. Parks it DEFER for
 * this thread to arm after its reply, or QUEUED for the prepare thread. */
static void
defer_locked(struct p11_prep *p, struct prep_op *op, bool after_reply)
{
	undefer_locked(p); /* at most one per thread */
	if (after_reply && deferred.op == NULL) {
		op->state = P_DEFER;
		deferred.p = p;
		deferred.op = op;
		deferred.gen = op->gen;
		return;
	}
	op->state = P_QUEUED;
	pthread_cond_signal(&p->work);
}

void
p11_prep_after_reply(struct p11_prep *p)
{
	struct prep_op *op = deferred.op;

	if (p == NULL || op == NULL || deferred.p != p)
		return;
	deferred.op = NULL;
	pthread_mutex_lock(&p->lock);
	if (op->state == P_DEFER && op->gen == deferred.gen && !p->stop) {
		op->state = P_ARMING;
		arm_locked(p, op);
		if (op->state == P_READY) {
			op->reserved = true;
			owned.p = p;
			owned.op = op;
			owned.gen = op->gen;
		}
	}
	pthread_mutex_unlock(&p->lock);
}

bool
p11_prep_sign(struct p11_prep *p, const struct p11_prep_sign_req *req,
	      CK_BYTE *sig, CK_ULONG *sig_len)
{
	const CK_MECHANISM *mech = req->mech;
	const char *key_id = req->key_id;
	CK_SESSION_HANDLE close[2];
	CK_OBJECT_HANDLE key;
	struct prep_op *op;
	CK_ULONG len = *sig_len;
	size_t n = 0;
	bool grow;
	CK_RV rv;

	if (p == NULL || !mech_ok(mech))
		return false;
	pthread_mutex_lock(&p->lock);
	if ((op = take_ready(p, key_id, mech, &grow)) == NULL) {
		pthread_mutex_unlock(&p->lock);
		return false;
	}
	op->state = P_INUSE;
	op->reserved = false;
	pthread_mutex_unlock(&p->lock);

	rv = P11(p, C_Sign, op->s, (CK_BYTE_PTR)req->in, req->in_len, sig,
		 &len);

	pthread_mutex_lock(&p->lock);
	if (rv == CKR_OK && !op->cancelled && !p->stop) {
		/* Same session, same key: prepare the next one, on this
		 * thread after its reply when the caller says it will call
		 * p11_prep_after_reply, else on the prepare thread. A key
		 * that signs again gets a second, so that one is ready while
		 * the other is being prepared; a thread that had to take
		 * another connection's slot or wait for one, one more, up to
		 * PREP_PER_KEY, so that each connection can have its own. */
		op->used = ++p->clock;
		key = op->key;
		defer_locked(p, op, req->after_reply);
		queue_locked(p, key_id, key, mech,
			     grow && req->after_reply ? PREP_PER_KEY
						      : PREP_DEPTH,
			     close, &n);
	} else {
		/* Failed (or dropped meanwhile): the session may still hold
		 * the operation, so it is closed, never reused. */
		op_release(op, close, &n);
	}
	pthread_mutex_unlock(&p->lock);
	close_sessions(p, close, n);
	if (rv != CKR_OK) {
		stint_debug("backend",
			    "prepared C_Sign failed (0x%lx); "
			    "signing afresh",
			    (unsigned long)rv);
		return false;
	}
	*sig_len = len;
	return true;
}

void
p11_prep_request(struct p11_prep *p, const char *key_id, CK_OBJECT_HANDLE key,
		 const CK_MECHANISM *mech)
{
	CK_SESSION_HANDLE close[1];
	size_t n = 0;

	if (p == NULL || !mech_ok(mech) || strlen(key_id) > PREP_KEY_ID_MAX)
		return;
	pthread_mutex_lock(&p->lock);
	if (!p->stop && thread_running(p))
		queue_locked(p, key_id, key, mech, 1, close, &n);
	pthread_mutex_unlock(&p->lock);
	close_sessions(p, close, n);
}

void
p11_prep_drop(struct p11_prep *p, const char *key_id)
{
	CK_SESSION_HANDLE close[STINT_PREP_MAX];
	struct prep_op *op;
	size_t i, n = 0;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->n; i++) {
		op = &p->ops[i];
		if (op->state == P_FREE || strcmp(op->key_id, key_id) != 0)
			continue;
		if (op->state == P_ARMING || op->state == P_INUSE)
			op->cancelled = true; /* its owner closes it */
		else
			op_release(op, close, &n);
	}
	pthread_mutex_unlock(&p->lock);
	close_sessions(p, close, n);
}

void
p11_prep_stats(struct p11_prep *p, size_t *ready, size_t *max)
{
	size_t i;

	*ready = *max = 0;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->n; i++)
		*ready += p->ops[i].state == P_READY;
	*max = p->n;
	pthread_mutex_unlock(&p->lock);
}
