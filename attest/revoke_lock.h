/*
 * The revoke lock: `task end` (expiry, tree end, agent removal) returns
 * only once no signature of the tasks it ended is in flight, without
 * pausing the signatures of any other task.
 *
 * STINT_REVOKE_STRIPES writer-preferring rwlocks, one chosen per task by a
 * hash of its id (32-bit FNV-1a of the id's bytes, modulo the count: tests
 * compute it too). A SIGN holds its task's stripe shared from the gate
 * decision until the backend has signed. A revocation first marks its
 * tasks ended (the gate refuses them from then on), then drains their
 * stripes: it takes each one exclusively and lets it go at once, which
 * waits for every SIGN that passed the gate before the end. A revoker
 * holds at most one stripe at a time, a SIGN holds one, so nothing waits
 * while holding: no deadlock, and tasks that share a stripe only share a
 * wait (one signature's latency), never a wrong answer.
 *
 * The kill switch takes every stripe and the start lane exclusively
 * (lowest first): no SIGN and no task start (which binds the switch's
 * state into its key) is in flight while the hardware counter moves.
 */
#ifndef STINT_ATTEST_REVOKE_LOCK_H
#define STINT_ATTEST_REVOKE_LOCK_H

#include <pthread.h>
#include <stddef.h>

#include "stint/wire.h"

#define STINT_REVOKE_STRIPES 64

struct stint_revoke_lock {
	struct {
		_Alignas(64) pthread_rwlock_t l; /* one cache line each */
	} stripe[STINT_REVOKE_STRIPES], start;
};

/* NULL when out of memory or a lock cannot be made. */
struct stint_revoke_lock *stint_revoke_lock_new(void);
void stint_revoke_lock_free(struct stint_revoke_lock *rl);

/* The stripe of a task id (any string). */
unsigned stint_revoke_stripe(const char *task_id);

/* SIGN (and DELEGATE's check of its parent): shared, one at a time. */
unsigned stint_revoke_read(struct stint_revoke_lock *rl, const char *task_id);
void stint_revoke_read_unlock(struct stint_revoke_lock *rl, unsigned stripe);

/* Task start on a kill-switch backend: shared against the kill switch. */
void stint_revoke_start_read(struct stint_revoke_lock *rl);
void stint_revoke_start_unlock(struct stint_revoke_lock *rl);

/* After id and ids[0..n) are marked ended: returns once no SIGN that
 * passed the gate for any of them is in flight (id may be NULL). */
void stint_revoke_drain(struct stint_revoke_lock *rl, const char *id,
			char (*ids)[STINT_TASK_ID_MAX + 1], size_t n);
/* The same for every task (when the ended set is not known). */
void stint_revoke_drain_all(struct stint_revoke_lock *rl);

/* The kill switch: everything exclusive, then released. */
void stint_revoke_lock_all(struct stint_revoke_lock *rl);
void stint_revoke_unlock_all(struct stint_revoke_lock *rl);

#endif
