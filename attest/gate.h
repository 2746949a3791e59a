/*
 * The SIGN gate: for a peer (uid, gid, facts) asking to sign with a task's key,
 * finds the agent the peer acts as and the task, runs stint_policy_sign
 * (policy.c), and when it allows, counts the signature before returning; a
 * budgeted task's count is covered by a reservation committed first, a
 * block at a time (budget.h: a crash only loses unused reservations, it
 * never gives a spent budget back). The decision and reason are those of
 * the database; they are decided from the store's in-memory index of
 * agents and live tasks when it can (no SQLite call for an unbudgeted
 * task, nor for a budgeted one inside its reservation), and from the
 * database for a task that is not live, a budgeted one at the end of its
 * reservation, or while the index is unavailable. Thread-safe: runs under the
 * store's mutex.
 */
#ifndef STINT_ATTEST_GATE_H
#define STINT_ATTEST_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "attest/store.h"

struct stint_gate_req {
	/* The peer (uid and gid from SO_PEERCRED, and the facts its agent's
	 * selectors are matched against; its pid, start time and cgroup for
	 * tasks bound to a process or cgroup, bind.h: pid 0 or cgroup "" is
	 * refused by a bound task). */
	const struct stint_peer *peer;
	const char *task_id; /* NULL: no task named */
	uint64_t mech;       /* CKM_* asked for */
	/* The agent the request acts as (STINT_K_AS_AGENT): the peer must
	 * match it; NULL or "": the lowest name the peer matches. */
	const char *as_agent;
	/* The decision time (CLOCK_REALTIME). Deadlines are whole seconds:
	 * a task is refused from not_after.000000000 on. */
	struct timespec now;
	/* deleg: judge whether the peer may use the task, as for a SIGN,
	 * without counting a signature; the mechanism is then not asked
	 * (DELEGATE, whose child mechanisms the rules check). */
	bool check_only;
};

/* budget_left of a task without a signature budget. */
#define STINT_GATE_UNLIMITED UINT64_MAX

struct stint_gate_result {
	int decision;       /* STINT_OK or the refusal's wire status */
	const char *reason; /* static text for the audit log */
	/* The agent the peer acts as, completely (name "" when none). */
	struct stint_agent agent;
	/* The task when it was found: id, agent, key_type, state, created,
	 * not_after, max_sigs, used_sigs (after this count), mechs,
	 * key_destroyed; never intent, reason, pub or cert, so it owns no
	 * memory. id "" when unknown, and possibly when the peer maps to no
	 * agent and the task is not live. */
	struct stint_task task;
	/* Signatures the task may still make after this one:
	 * STINT_GATE_UNLIMITED without a budget, 0 when the task was not
	 * found. */
	uint64_t budget_left;
	bool from_index; /* decided from memory, no SQLite call */
};

/* Fills *res completely. Returns STINT_STORE_OK, or STINT_STORE_ERROR only
 * when the database fails (or memory to count runs out): then decision is
 * STINT_E_INTERNAL and nothing was counted. */
int stint_gate_sign(struct stint_store *s, const struct stint_gate_req *req,
		    struct stint_gate_result *res);

/* The gate's index (on by default). Off: every gate reads the database, as
 * a diagnostic and for tests that compare both; on: rebuilt from the
 * database (STINT_STORE_ERROR when that fails; the gate then reads the
 * database and retries). */
int stint_gate_index(struct stint_store *s, bool on);

struct stint_gate_stats {
	bool index_valid;
	size_t agents, tasks; /* in the index */
	uint64_t fast;        /* gates decided from memory */
	uint64_t sql;         /* gates that read the database */
};
void stint_gate_stats_get(struct stint_store *s, struct stint_gate_stats *st);

#endif
