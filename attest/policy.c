/*
 * The SIGN decision. The checks run in a fixed order so that a refusal
 * leaks nothing to a stranger: a peer that is not the task's agent learns
 * only "not yours", never whether that task is live, expired or spent.
 */

#include <stddef.h>
#include <string.h>

#include "attest/policy.h"

static bool
mech_allowed(const struct stint_task *task, uint64_t mech)
{
	size_t i;

	for (i = 0; i < task->n_mechs && i < STINT_MECHS_MAX; i++)
		if (task->mechs[i] == mech)
			return true;
	return false;
}

int
stint_policy_sign(const struct stint_agent *agent,
		  const struct stint_task *task, uint64_t mech, int64_t now,
		  const char **reason)
{
	const char *why = "allowed";
	int status = STINT_OK;

	if (agent == NULL) {
		status = STINT_E_NO_AGENT;
		why = "peer maps to no agent";
	} else if (task == NULL || task->id[0] == '\0') {
		status = STINT_E_NOT_YOURS;
		why = "unknown task";
	} else if (strcmp(task->agent, agent->name) != 0) {
		status = STINT_E_NOT_YOURS;
		why = "task belongs to another agent";
	} else if (task->state != STINT_TASK_LIVE) {
		status = STINT_E_NOT_LIVE;
		why = task->state == STINT_TASK_EXPIRED ? "task expired"
							: "task ended";
	} else if (now >= task->not_after) {
		status = STINT_E_NOT_LIVE;
		why = "task past its deadline";
	} else if (!mech_allowed(task, mech)) {
		status = STINT_E_MECHANISM;
		why = "mechanism not allowed for this key";
	} else if (task->max_sigs != 0 && task->used_sigs >= task->max_sigs) {
		status = STINT_E_BUDGET;
		why = "signature budget spent";
	}
	if (reason != NULL)
		*reason = why;
	return status;
}
