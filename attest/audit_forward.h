/*
 * [audit] forward: after a record is written to the audit log (the source
 * of truth), a copy goes to the journal (native protocol, one datagram of
 * fields) or to syslog (RFC 5424 with structured data, one datagram).
 * Sending never blocks and never fails the record: when the receiver is
 * missing or its queue is full, the copy is dropped and counted.
 */
#ifndef STINT_ATTEST_AUDIT_FORWARD_H
#define STINT_ATTEST_AUDIT_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "attest/audit.h"
#include "attest/config.h"

#define STINT_JOURNAL_SOCKET "/run/systemd/journal/socket"
#define STINT_SYSLOG_SOCKET  "/dev/log"

struct stint_audit_fwd;

/* kind NONE: *out = NULL. socket_path NULL or "": the kind's default. The
 * receiver need not exist yet. */
int stint_audit_fwd_open(enum stint_audit_fwd_kind kind,
			 const char *socket_path, struct stint_audit_fwd **out,
			 char *err, size_t errlen);
/* One record: line[0..len] as written to the file (its "\n" included),
 * seq and hash as in it. Callers serialise (the audit log's lock). */
void stint_audit_fwd_send(struct stint_audit_fwd *f,
			  const struct stint_audit_event *ev, uint64_t seq,
			  const uint8_t hash[32], const char *line, size_t len);
/* Copies dropped so far. */
uint64_t stint_audit_fwd_dropped(const struct stint_audit_fwd *f);
void stint_audit_fwd_close(struct stint_audit_fwd *f);

#endif
