/*
 * Narrowing an agent (prov): which live tasks a new definition of their
 * agent would not allow. agents_reconcile.c ends them after an agents.d
 * update; task.c checks a task it just stored against the agent as it is
 * now, so a start racing an update cannot keep a task the update forbids.
 */
#ifndef STINT_ATTEST_AGENT_NARROW_H
#define STINT_ATTEST_AGENT_NARROW_H

#include <stdbool.h>
#include <stddef.h>

#include "attest/store.h"

/* Whether task t, started for agent was, is allowed by now (the agent's new
 * definition): its mechanisms, TTL and audiences within now's, and every
 * process that matched was still matches now (same uid; gid and each
 * selector unset in now or unchanged). If not, why gets the reason.
 * deleg: delegation limits (depth, delegate_to) are to be checked here. */
bool stint_agent_allows_task(const struct stint_agent *was,
			     const struct stint_agent *now,
			     const struct stint_task *t, char *why,
			     size_t whylen);

#endif
