/*
 * Refused SIGNs, audited at a bounded rate. Any local process can ask for
 * signatures it will not get, so writing one record per refusal would let
 * an unprivileged uid grow the audit log (and its fsyncs) without limit.
 * Per peer uid and interval, the first refusals get their own record
 * (REFUSALS_BURST_AGENT for a peer that maps to an agent, one for a peer
 * that maps to none) and an identical repeat of the last one never does;
 * the rest are counted, and at the end of the interval (or at stop) one
 * sign-refused-aggregate record carries their count. Allowed signatures
 * never pass through here: each keeps its own record.
 */
#ifndef STINT_ATTEST_REFUSALS_H
#define STINT_ATTEST_REFUSALS_H

#include <stdbool.h>
#include <stdint.h>

#include "attest/audit.h"

#define REFUSALS_BURST_AGENT 8

/* The interval in seconds ([audit] refusal_interval, default 10). */
void stint_refusals_init(uint64_t interval);
/* Audits the refusal ev (ev->peer set): its own record, or a count in its
 * peer's aggregate. Returns what stint_audit_append returned, 0 when
 * counted. Thread-safe. */
int stint_refusals_audit(struct stint_audit *a,
			 const struct stint_audit_event *ev, int64_t now);
/* Writes the aggregates of intervals that have ended by now, or all of
 * them when all is true (at stop). */
void stint_refusals_flush(struct stint_audit *a, int64_t now, bool all);

#endif
