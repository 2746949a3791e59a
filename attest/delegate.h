/*
 * Delegation rules (deleg): what an agent may hand a sub-agent. Pure
 * functions of facts the caller read from the store, unit-testable
 * (tests/unit/test_delegate.c). The DELEGATE op (handle_delegate.c) runs
 * them, then starts the child through stint_task_start with a parent.
 */
#ifndef STINT_ATTEST_DELEGATE_H
#define STINT_ATTEST_DELEGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/store.h"
#include "common/proto.h"

/* What a child task asks for. */
struct stint_delegate_ask {
	const char *agent;     /* the child's agent */
	int64_t not_after;     /* the child's deadline (now + TTL) */
	const uint64_t *mechs; /* NULL: the parent's (that the child's
				  agent allows) */
	size_t n_mechs;
	uint64_t max_sigs;     /* 0: unlimited */
	const char *audiences; /* NULL: the parent's */
};

/* The facts the rules read. */
struct stint_delegate_facts {
	const struct stint_task *parent;
	const struct stint_agent *delegator; /* the parent's agent */
	const struct stint_agent *child;     /* the child's agent */
	/* the smallest max-depth of the agents along the parent's path */
	uint32_t chain_max_depth;
};

/* A refusal: the wire status, its check's name (audited as check=NAME)
 * and the reason. */
struct stint_delegate_refusal {
	int status;
	const char *check;
	char why[STINT_AUDIENCES_TEXT_MAX + 256];
};

/* STINT_OK, or the first rule the request breaks (in this order: agent,
 * depth, deadline, mechanism, audience, budget) in *no. */
int stint_delegate_check(const struct stint_delegate_facts *f,
			 const struct stint_delegate_ask *ask,
			 struct stint_delegate_refusal *no);
/* The budget the child reserves from its parent: its own when the
 * parent's is limited, 0 when the parent's is unlimited. */
uint64_t stint_delegate_reserve(const struct stint_task *parent,
				uint64_t child_max_sigs);
/* The smallest max_depth of n agents (0 when n is 0). */
uint32_t stint_delegate_min_depth(const struct stint_agent *agents, size_t n);
/* Whether list (names joined by commas) names agent. */
bool stint_delegate_to_has(const char *list, const char *agent);
/* A child's default audiences: the parent task's that the child's agent
 * also has, into buf. */
void stint_delegate_audiences(const char *parent, const char *agent, char *buf,
			      size_t cap);
/* An AGENT_ADD's delegation fields into the agent: NULL, or why not. */
const char *stint_delegate_agent_set(const struct stint_agent_add_req *ar,
				     struct stint_agent *a);
/* An agent's delegation fields into an AGENT_LIST entry. */
void stint_delegate_agent_info(const struct stint_agent *a,
			       struct stint_agent_info *info);

#endif
