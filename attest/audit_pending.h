/*
 * Lifecycle records that must not be lost while the audit log refuses
 * writes (a full disk, an I/O error): task end, agent removal, the kill
 * switch and key destruction revoke whether or not their record can be
 * written (fail closed), and their records wait here, in order, until the
 * log accepts them. A record written late says so in its detail
 * ("pending_since=<epoch seconds>"). In memory only: a record still
 * pending when stintd stops is logged to syslog/stderr as lost.
 */
#ifndef STINT_ATTEST_AUDIT_PENDING_H
#define STINT_ATTEST_AUDIT_PENDING_H

#include <stddef.h>

#include "attest/audit.h"

/* Writes ev now (0) or, when the log refuses it or older records are still
 * waiting, keeps a copy to write later (1); -1 when not even that was
 * possible (out of memory, or more than STINT_AUDIT_PENDING_MAX waiting). */
int stint_audit_pending_append(struct stint_audit *a,
			       const struct stint_audit_event *ev);
/* A record an action depends on (a SIGN, a task start, an agent add):
 * written only after every waiting record is, so the log keeps its order
 * and a short record cannot slip into room a waiting one did not fit in.
 * 0 written; -1 refused (the caller fails closed). */
int stint_audit_append_in_order(struct stint_audit *a,
				const struct stint_audit_event *ev);
/* Writes what is waiting, oldest first, until the log refuses one. */
void stint_audit_pending_flush(struct stint_audit *a);
size_t stint_audit_pending_count(void);
/* At stop: flushes, then drops (and logs) what is left. */
void stint_audit_pending_close(struct stint_audit *a);

#define STINT_AUDIT_PENDING_MAX 65536

#endif
