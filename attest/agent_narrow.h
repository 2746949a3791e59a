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
 * Delegation limits are stint_agent_allows_child's. */
bool stint_agent_allows_task(const struct stint_agent *was,
			     const struct stint_agent *now,
			     const struct stint_task *t, char *why,
			     size_t whylen);

/* deleg: whether live task t (a child, depth >= 1, of any agent) is still
 * allowed by agent now's delegation rights when now is on t's path above
 * t: t's parent's agent must still name t's agent in delegate_to, and
 * every agent above t must have a max_depth of at least t's depth (as
 * the DELEGATE op checks them, delegate.c). A task now is not above, a
 * root task, is allowed. If not, why gets the reason. */
bool stint_agent_allows_child(const struct stint_agent *now,
			      const struct stint_task *t, char *why,
			      size_t whylen);

#endif
