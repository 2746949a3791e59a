/*
 * Private to the audit log writer (audit.c, audit_recover.c,
 * audit_rotate.c): the writer's state and the helpers the files share.
 */
#ifndef STINT_ATTEST_AUDIT_INT_H
#define STINT_ATTEST_AUDIT_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "attest/audit.h"
#include "attest/audit_forward.h"

/* The hash member closes every line: ,"hash":"<64 hex>"}\n */
#define HASH_PREFIX ",\"hash\":\""
/* Longest line stint_audit_open reads back; audit_verify.c uses the same. */
#define AUDIT_MAX_LINE (1024 * 1024)

struct stint_audit {
	int fd;
	enum stint_audit_sync sync;
	char path[PATH_MAX];
	/* Held shared around an fdatasync done outside `lock`, exclusively
	 * (with `lock`) while rotation swaps and closes the descriptor. */
	pthread_rwlock_t fd_lock;

	/* Signs checkpoints (stint_audit_set_signer); NULL: none. */
	stint_audit_sign_fn sign;
	void *sign_ctx;
	char sign_key[65];     /* hex SHA-256 of the signer's SPKI */
	uint64_t checkpointed; /* seq the last checkpoint covered */
	/* nv: the hardware counter each checkpoint advances; NULL: none */
	stint_audit_counter_fn advance;
	void *advance_ctx;
	uint64_t nv_unwritten; /* advanced, but in no checkpoint yet */
	/* [audit] forward: a copy of each record written; NULL: none. */
	struct stint_audit_fwd *fwd;

	pthread_mutex_t lock;  /* seq, prev, size, dirty, failed, buf, when */
	uint64_t seq;          /* of the next record */
	uint8_t prev[32];      /* hash of the last record written */
	off_t size;            /* file length after the last record */
	off_t synced;          /* file length the last good fdatasync covered */
	unsigned generation;   /* bumped when rotation swaps the file */
	int failed;            /* errno that made the log unusable, or 0 */
	struct timespec retry; /* while failed: no recovery before this */
	char *tail;            /* while failed: bytes [synced, size) */
	size_t tail_len;

	/* BATCH: the sync thread waits on wake while nothing is dirty. */
	pthread_cond_t wake;
	pthread_t syncer;
	bool syncer_running;
	bool dirty;
	bool stop;

	/* The line being built (lock held), reused from record to record. */
	char *buf;
	size_t cap, used;
	/* format_time's cache: when[0..when_len] is the time of when_sec
	 * up to the seconds; when_len == 0 while empty. */
	time_t when_sec;
	size_t when_len;
	char when[20];
};

/* audit.c */
void audit_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Reads into a fresh buffer exactly len bytes at off. */
char *audit_read_at(int fd, off_t off, size_t len);
/* Reads the line that ends (with its "\n") at offset end, or the first line
 * when end is 0; checks its hash and reads its seq and prev. */
int audit_record_at(struct stint_audit *a, off_t end, uint64_t *seq,
		    uint8_t hash[32], uint8_t prev[32]);
/* Writes a checkpoint of the current head (lock held). */
int audit_checkpoint_locked(struct stint_audit *a, bool *wake, char *err,
			    size_t errlen);
/* Builds and writes one record, advancing seq and prev (lock held). */
int audit_append_locked(struct stint_audit *a,
			const struct stint_audit_event *ev, bool *wake);
/* fdatasync with the lock held on entry and released on return. */
int audit_sync_unlock(struct stint_audit *a);

/* audit_recover.c: after a failed fdatasync (lock held in each). */
void audit_mark_failed(struct stint_audit *a, int e);
void audit_synced_to(struct stint_audit *a, off_t upto, unsigned gen);
int audit_recover_locked(struct stint_audit *a);

#endif
