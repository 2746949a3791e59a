#include "attest/revoke_lock.h"

#include <stdint.h>
#include <stdlib.h>

/* Writers first: glibc's default rwlock favours readers, so with clients
 * signing back to back a drain (or the kill switch) would wait for the
 * signing on its stripe to stop. No path takes a stripe shared while it
 * holds another lock of this file, so writer preference cannot deadlock. */
static int
rwlock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;
	int r;

	if (pthread_rwlockattr_init(&attr) != 0)
		return -1;
	r = pthread_rwlockattr_setkind_np(
		&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	if (r == 0)
		r = pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	return r == 0 ? 0 : -1;
}

/* Aligned: each lock on its own cache line. */
struct stint_revoke_lock *
stint_revoke_lock_new(void)
{
	struct stint_revoke_lock *rl;
	unsigned i;

	rl = aligned_alloc(_Alignof(struct stint_revoke_lock), sizeof(*rl));
	if (rl == NULL)
		return NULL;
	if (rwlock_init(&rl->start.l) != 0) {
		free(rl);
		return NULL;
	}
	for (i = 0; i < STINT_REVOKE_STRIPES; i++) {
		if (rwlock_init(&rl->stripe[i].l) != 0) {
			while (i-- > 0)
				pthread_rwlock_destroy(&rl->stripe[i].l);
			pthread_rwlock_destroy(&rl->start.l);
			free(rl);
			return NULL;
		}
	}
	return rl;
}

void
stint_revoke_lock_free(struct stint_revoke_lock *rl)
{
	unsigned i;

	if (rl == NULL)
		return;
	for (i = 0; i < STINT_REVOKE_STRIPES; i++)
		pthread_rwlock_destroy(&rl->stripe[i].l);
	pthread_rwlock_destroy(&rl->start.l);
	free(rl);
}

unsigned
stint_revoke_stripe(const char *task_id)
{
	uint32_t h = 2166136261u;
	const unsigned char *p;

	for (p = (const unsigned char *)task_id; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return h % STINT_REVOKE_STRIPES;
}

unsigned
stint_revoke_read(struct stint_revoke_lock *rl, const char *task_id)
{
	unsigned s = stint_revoke_stripe(task_id);

	pthread_rwlock_rdlock(&rl->stripe[s].l);
	return s;
}

void
stint_revoke_read_unlock(struct stint_revoke_lock *rl, unsigned stripe)
{
	pthread_rwlock_unlock(&rl->stripe[stripe].l);
}

void
stint_revoke_start_read(struct stint_revoke_lock *rl)
{
	pthread_rwlock_rdlock(&rl->start.l);
}

void
stint_revoke_start_unlock(struct stint_revoke_lock *rl)
{
	pthread_rwlock_unlock(&rl->start.l);
}

/* Waits for the readers in a stripe when it was taken: each stripe once. */
static void
drain_stripe(struct stint_revoke_lock *rl, uint64_t *done, unsigned s)
{
	if (*done & (UINT64_C(1) << s))
		return;
	*done |= UINT64_C(1) << s;
	pthread_rwlock_wrlock(&rl->stripe[s].l);
	pthread_rwlock_unlock(&rl->stripe[s].l);
}

_Static_assert(STINT_REVOKE_STRIPES <= 64, "drain's bitmap is 64 bits");

void
stint_revoke_drain(struct stint_revoke_lock *rl, const char *id,
		   char (*ids)[STINT_TASK_ID_MAX + 1], size_t n)
{
	uint64_t done = 0;
	size_t i;

	if (id != NULL)
		drain_stripe(rl, &done, stint_revoke_stripe(id));
	for (i = 0; i < n; i++)
		drain_stripe(rl, &done, stint_revoke_stripe(ids[i]));
}

void
stint_revoke_drain_all(struct stint_revoke_lock *rl)
{
	uint64_t done = 0;
	unsigned s;

	for (s = 0; s < STINT_REVOKE_STRIPES; s++)
		drain_stripe(rl, &done, s);
}

void
stint_revoke_lock_all(struct stint_revoke_lock *rl)
{
	unsigned s;

	pthread_rwlock_wrlock(&rl->start.l);
	for (s = 0; s < STINT_REVOKE_STRIPES; s++)
		pthread_rwlock_wrlock(&rl->stripe[s].l);
}

void
stint_revoke_unlock_all(struct stint_revoke_lock *rl)
{
	unsigned s = STINT_REVOKE_STRIPES;

	while (s-- > 0)
		pthread_rwlock_unlock(&rl->stripe[s].l);
	pthread_rwlock_unlock(&rl->start.l);
}
