/*
 * Audit log recovery after a failed fdatasync: the records written since
 * the last good sync are kept (audit_mark_failed), written again and synced
 * (audit_recover_locked) before the log accepts records again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "attest/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hex.h"
#include "common/log.h"

/* Longest in-doubt tail kept for audit_recover_locked (the records written
 * since the last good sync: one window in batch mode, one record in always). */
#define AUDIT_TAIL_MAX (64L * 1024 * 1024)

/* The log refuses records from now on (audit_recover_locked lifts it). The
 * records since the last good sync are read back at once, while the page
 * cache still holds them: a failed writeback may have left them nowhere
 * else (ext4 then reads them back as zeros once the pages are gone). Lock
 * held. */
void
audit_mark_failed(struct stint_audit *a, int e)
{
	if (a->failed != 0)
		return;
	a->failed = e;
	if (a->size > a->synced && a->size - a->synced <= AUDIT_TAIL_MAX) {
		a->tail_len = (size_t)(a->size - a->synced);
		a->tail = audit_read_at(a->fd, a->synced, a->tail_len);
	}
}

/* A sync that began when the file was upto bytes long succeeded. Lock
 * held. */
void
audit_synced_to(struct stint_audit *a, off_t upto, unsigned gen)
{
	if (gen == a->generation && a->failed == 0 && upto > a->synced)
		a->synced = upto;
}

/* Writes the kept tail again after the last good sync: into blocks the
 * file system allocates afresh (rewriting in place can leave ext4 with
 * an extent it still reads as zeros). */
static int
rewrite_tail(struct stint_audit *a)
{
	size_t done = 0;
	ssize_t n;

	if (ftruncate(a->fd, a->synced) != 0)
		return -1;
	while (done < a->tail_len) {
		n = write(a->fd, a->tail + done, a->tail_len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			(void)ftruncate(a->fd, a->synced);
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/*
 * The log refuses records after a failed fdatasync (records written since
 * the last good sync may not be on the disk) or a partial record it could
 * not cut off. Each later append tries this first: cut the file back to the
 * last good sync and write the records since then again (or, when they
 * could not be kept, cut it back to the end of the last record), sync, and
 * check that the file ends with the record the chain continues from. Only then
 * are records accepted again, so every record is either wholly in the chain or
 * not in the file. Lock held.
 */
int
audit_recover_locked(struct stint_audit *a)
{
	uint8_t hash[32], prev[32];
	struct stat st;
	struct timespec now;
	uint64_t seq;
	int e;

	/* Every refused append would otherwise cost a sync. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec < a->retry.tv_sec ||
	    (now.tv_sec == a->retry.tv_sec && now.tv_nsec < a->retry.tv_nsec))
		return -1;
	a->retry = now;
	a->retry.tv_nsec += 100L * 1000000L;
	a->retry.tv_sec += a->retry.tv_nsec / 1000000000L;
	a->retry.tv_nsec %= 1000000000L;
	if (a->tail != NULL) {
		if (rewrite_tail(a) != 0)
			return -1;
	} else {
		if (fstat(a->fd, &st) != 0)
			return -1;
		if (st.st_size < a->size)
			goto lost; /* records we wrote are gone */
		if (st.st_size > a->size && ftruncate(a->fd, a->size) != 0)
			return -1;
	}
	pthread_rwlock_rdlock(&a->fd_lock);
	e = fdatasync(a->fd) == 0 ? 0 : errno;
	pthread_rwlock_unlock(&a->fd_lock);
	if (e != 0)
		return -1;
	if (a->size > 0 &&
	    (audit_record_at(a, a->size, &seq, hash, prev) != 0 ||
	     seq != a->seq - 1 || memcmp(hash, a->prev, 32) != 0))
		goto lost;
	log_info("audit log: writable again after %s; records accepted",
		 strerror(a->failed));
	a->failed = 0;
	a->synced = a->size;
	free(a->tail);
	a->tail = NULL;
	return 0;
lost:
	/* Nothing to chain onto: stay closed for good (say it once). */
	log_err("audit log %s no longer ends with the head of the chain (seq "
		"%llu): refusing records; restart stintd",
		a->path, (unsigned long long)(a->seq - 1));
	a->retry.tv_sec = (time_t)INT64_MAX;
	return -1;
}
