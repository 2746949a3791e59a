/*
 * The revocation journal: a small file next to state.db, allocated in full
 * when it is created, so that a task end can be made durable when the
 * filesystem is full and SQLite cannot commit. Each slot holds one task
 * end that state.db has not recorded yet; stintd replays the slots at start
 * (a restart never revives a task ended on a full disk) and clears a slot
 * once state.db has the end. Writing a slot rewrites bytes the file already
 * owns, then fdatasyncs: no new blocks are needed.
 */
#ifndef STINT_ATTEST_REVOKE_JOURNAL_H
#define STINT_ATTEST_REVOKE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "stint/wire.h"

#define STINT_RJ_SLOTS 512

struct stint_rj_entry {
	char id[STINT_TASK_ID_MAX + 1];
	int state; /* enum stint_task_state: ended or expired */
	int64_t when;
	char reason[64]; /* truncated */
};

struct stint_rj;

/* Opens or creates (0600, allocated in full) path. -1 with err set when
 * the file cannot be created or its space reserved. */
int stint_rj_open(const char *path, struct stint_rj **out, char *err,
		  size_t errlen);
void stint_rj_close(struct stint_rj *j);
/* The entries in use: fn is called for each (ctx passed through). */
void stint_rj_each(struct stint_rj *j,
		   void (*fn)(void *ctx, const struct stint_rj_entry *e),
		   void *ctx);
/* Records an end durably (fdatasync). 0, or -1 when every slot is in use
 * or the write fails. */
int stint_rj_add(struct stint_rj *j, const struct stint_rj_entry *e);
/* Frees the slot of a task id (state.db has recorded its end). */
int stint_rj_remove(struct stint_rj *j, const char *id);

#endif
