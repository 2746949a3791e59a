/*
 * stintd's process-wide state and the request handlers. The path of a SIGN
 * request: server.c (accept, peer identity, frames) → handle_agent.c
 * (decode, gate, audit, sign) → gate.c (stint_gate_sign, which runs
 * policy.c) → audit.c → the backend.
 */
#ifndef STINT_ATTEST_DAEMON_H
#define STINT_ATTEST_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "attest/audit.h"
#include "attest/backend.h"
#include "attest/clock.h"
#include "attest/config.h"
#include "attest/peer.h"
#include "attest/reply.h"
#include "attest/revoke_lock.h"
#include "attest/store.h"
#include "common/proto.h"

struct stint_msg;
struct stint_ca;

struct stintd {
	struct stint_config cfg;
	struct stint_store *store;
	struct stint_audit *audit;
	struct stint_backend *backend;
	struct stint_ca *ca; /* ca.h: CA key, attestation key, chain */
	/* revoke_lock.h: SIGN holds its task's stripe shared from the gate
	 * until the backend has signed; ending a task marks it ended, then
	 * drains its stripe. So once `task end` returns, no signature for it
	 * is in flight, and other tasks sign on meanwhile. */
	struct stint_revoke_lock *revoke;
	uid_t uid;       /* stintd's own uid: may use admin.sock */
	int64_t started; /* seconds since the epoch */
	/* STATUS counters (proto.h's enum stint_counter; the gauges are
	 * read at STATUS time) and refused SIGNs by wire status. Atomics:
	 * counting takes no lock. */
	_Atomic uint64_t count[STINT_C_N];
	_Atomic uint64_t refused[STINT_REFUSED_N];
};

/* Counts one event; relaxed, lock-free. */
static inline void
stintd_count(struct stintd *d, enum stint_counter c)
{
	atomic_fetch_add_explicit(&d->count[c], 1, memory_order_relaxed);
}

static inline void
stintd_count_refused(struct stintd *d, int status)
{
	if (status > 0 && status < STINT_REFUSED_N)
		atomic_fetch_add_explicit(&d->refused[status], 1,
					  memory_order_relaxed);
}

/* The handlers and the op table that routes to them: ops.h. */

/* server.c: listens on agent.sock and admin.sock until *stop is set or a
 * byte arrives on wake_fd; returns 0 on a clean stop. */
int stintd_serve(struct stintd *d, int wake_fd, char *err, size_t errlen);

#endif
