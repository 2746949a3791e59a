/*
 * The audit log's anchor (audit_anchor.c): the head stintd last wrote is
 * kept in state.db, checked at start, and pinned by signed checkpoints;
 * SIGHUP and `stint audit rotate` rotate the log.
 */
#ifndef STINT_ATTEST_AUDIT_ANCHOR_H
#define STINT_ATTEST_AUDIT_ANCHOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stintd;

/* Blocks SIGHUP and SIGUSR2 in the calling thread and every thread it
 * creates from then on: the anchor thread takes them with sigtimedwait. */
void stintd_anchor_block_signals(void);
/* Checks that the log holds the head recorded in state.db (reset: accept
 * that it does not, and say so in *reset_done). Sets the checkpoint
 * signer (the host attestation key). */
int stintd_anchor_open(struct stintd *d, bool reset, bool *reset_done,
		       char *err, size_t errlen);
/* nv: the TPM audit counter now; -1 when the backend has none. */
int stintd_anchor_nv(struct stintd *d, uint64_t *value);
/* nv: what the daemon-start record says about the TPM counter ("" or
 * "; ..."). */
const char *stintd_anchor_note(void);
/* Records the current head in state.db. */
void stintd_anchor_store(struct stintd *d);
/* The thread: stores the head about once a second while it moves, writes
 * a checkpoint every [audit] checkpoint, rotates on SIGHUP. */
int stintd_anchor_start(struct stintd *d);
/* Stops the thread; a last checkpoint and head store. */
void stintd_anchor_stop(struct stintd *d);
/* `stint audit rotate` and SIGHUP. */
int stintd_anchor_rotate(struct stintd *d, char *old, size_t cap, char *err,
			 size_t errlen);

#endif
