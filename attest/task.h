/*
 * Task lifecycle: start (key generation, store, audit), end (synchronous
 * revocation, then key destruction), expiry (the reaper thread).
 */
#ifndef STINT_ATTEST_TASK_H
#define STINT_ATTEST_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "attest/daemon.h"
#include "attest/watch.h"

struct stint_task_request {
	const char *agent;
	uint64_t ttl;       /* seconds; 0 = the daemon's default_ttl */
	uint32_t key_type;  /* 0 = ec-p256 */
	uint64_t max_sigs;  /* 0 = unlimited */
	const char *intent; /* may be NULL */
	/* bind: what the task is bound to; NULL: unbound */
	const struct stint_task_bind *bind;
	/* aud: comma-separated, a subset of the agent's; NULL: all of them */
	const char *audiences;
	/* deleg: a child task of parent (NULL: a root task), whose rules
	 * the caller checked (delegate.c); mechs (NULL: the parent's) are
	 * what the child asks for, narrowed to what its agent and key type
	 * allow; its deadline never passes the parent's. */
	const struct stint_task *parent;
	const uint64_t *mechs;
	size_t n_mechs;
};

/* Return a wire status (STINT_OK or the refusal) and err for the reply. */
int stint_task_start(struct stintd *d, const struct stint_task_request *req,
		     const struct stint_peer *by, struct stint_task *out,
		     char *err, size_t errlen);
/* A task with the binding sr asks for (--bind-pid, --bind-cgroup, stint
 * run's command; none: unbound), for TASK_START and TASK_DELEGATE alike:
 * stint_watch_prepare(), then stint_task_start() (req->bind pointed at
 * bs->bind) under the revoke lock's read side when the backend has a
 * hardware kill switch, then the watch armed, or the binding undone when
 * the start failed. bs->note gets a fallback the CLI prints. On a failure
 * *stage (may be NULL) says which half refused: "bind" or "start". */
int stint_task_start_bound(struct stintd *d, struct stint_task_request *req,
			   const struct stint_task_start_req *sr,
			   const struct stint_peer *by,
			   struct stint_bind_start *bs, struct stint_task *out,
			   char *err, size_t errlen, const char **stage);
/* note (may be NULL) gets what is pending after a success: the end not
 * yet in state.db (full disk) or its record not yet in the audit log;
 * empty when nothing is. */
int stint_task_end(struct stintd *d, const char *id, const char *reason,
		   const struct stint_peer *by, char *err, size_t errlen,
		   char *note, size_t notelen);
/* Removes an agent and ends its live tasks atomically with respect to
 * task start (one store transaction under the exclusive revoke lock), then
 * destroys their keys. Returns a store status (NOT_FOUND: no such agent);
 * *n tasks ended; note as for stint_task_end. When state.db cannot remove
 * the agent, its live tasks are ended one by one all the same. */
int stint_task_remove_agent(struct stintd *d, const char *agent,
			    const struct stint_peer *by, size_t *n, char *note,
			    size_t notelen);
/* The same, audited as event with detail (prov: "agent-reconcile"). */
int stint_task_remove_agent_as(struct stintd *d, const char *agent,
			       const struct stint_peer *by, const char *event,
			       const char *detail, size_t *n, char *note,
			       size_t notelen);
/* One reaper pass: expire live tasks past their deadline and destroy keys
 * of ended tasks still in the backend. */
void stint_task_reap(struct stintd *d);
/* deleg: ends live tasks whose parent is not live (and their subtrees). */
void stint_task_reap_orphans(struct stintd *d);
/* Destroys the key of a task that is no longer live, once: 0 destroyed
 * (now or before, by another path), -1 the backend failed (retried). */
int stint_task_destroy_key(struct stintd *d, const char *id, const char *agent,
			   const struct stint_peer *by, char *err,
			   size_t errlen);
/* "pkcs11:token=<agent>;object=<task>" into buf. */
void stint_task_uri(const struct stint_task *t, char *buf, size_t cap);
const char *stint_task_state_str(int state);

int stint_reaper_start(struct stintd *d);
void stint_reaper_stop(void);

#endif
