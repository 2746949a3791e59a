/* Delegation rules (delegate.h): pure functions, no I/O. */

#include <stdio.h>
#include <string.h>

#include "attest/delegate.h"
#include "common/audience.h"
#include "common/ident.h"

bool
stint_delegate_to_has(const char *list, const char *agent)
{
	/* Agent names are audience names too: the same set helpers. */
	return list != NULL && agent != NULL && agent[0] != '\0' &&
	       stint_audience_in(list, agent);
}

uint32_t
stint_delegate_min_depth(const struct stint_agent *agents, size_t n)
{
	uint32_t m = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (i == 0 || agents[i].max_depth < m)
			m = agents[i].max_depth;
	return m;
}

uint64_t
stint_delegate_reserve(const struct stint_task *parent, uint64_t child_max_sigs)
{
	return parent->max_sigs != 0 ? child_max_sigs : 0;
}

static int
refuse(struct stint_delegate_refusal *no, int status, const char *check)
{
	no->status = status;
	no->check = check;
	return status;
}

static bool
mech_in(const uint64_t *mechs, size_t n, uint64_t m)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (mechs[i] == m)
			return true;
	return false;
}

static int
check_agent(const struct stint_delegate_facts *f,
	    const struct stint_delegate_ask *ask,
	    struct stint_delegate_refusal *no)
{
	if (!stint_delegate_to_has(f->delegator->delegate_to, ask->agent)) {
		snprintf(no->why, sizeof(no->why),
			 "agent '%s' may not delegate to agent '%s' (its "
			 "delegate-to list: %s)",
			 f->delegator->name, ask->agent,
			 f->delegator->delegate_to[0]
				 ? f->delegator->delegate_to
				 : "none");
		return refuse(no, STINT_E_DENIED, "agent");
	}
	if (f->parent->depth + 1 > f->chain_max_depth ||
	    f->parent->depth + 1 > STINT_DEPTH_MAX) {
		snprintf(no->why, sizeof(no->why),
			 "depth %u is above the max-depth %u of the "
			 "delegation chain",
			 f->parent->depth + 1, f->chain_max_depth);
		return refuse(no, STINT_E_LIMIT, "depth");
	}
	return STINT_OK;
}

static int
check_deadline(const struct stint_delegate_facts *f,
	       const struct stint_delegate_ask *ask,
	       struct stint_delegate_refusal *no)
{
	if (ask->not_after > f->parent->not_after) {
		snprintf(no->why, sizeof(no->why),
			 "child deadline %lld is after the parent's deadline "
			 "%lld",
			 (long long)ask->not_after,
			 (long long)f->parent->not_after);
		return refuse(no, STINT_E_LIMIT, "deadline");
	}
	return STINT_OK;
}

static int
check_mechs(const struct stint_delegate_facts *f,
	    const struct stint_delegate_ask *ask,
	    struct stint_delegate_refusal *no)
{
	size_t i;

	for (i = 0; ask->mechs != NULL && i < ask->n_mechs; i++) {
		if (!mech_in(f->parent->mechs, f->parent->n_mechs,
			     ask->mechs[i])) {
			snprintf(no->why, sizeof(no->why),
				 "mechanism 0x%llx is not one of the parent "
				 "task's mechanisms",
				 (unsigned long long)ask->mechs[i]);
			return refuse(no, STINT_E_MECHANISM, "mechanism");
		}
	}
	return STINT_OK;
}

static int
check_audiences(const struct stint_delegate_facts *f,
		const struct stint_delegate_ask *ask,
		struct stint_delegate_refusal *no)
{
	char missing[STINT_AUDIENCE_MAX + 1];

	if (ask->audiences == NULL)
		return STINT_OK;
	if (!stint_audiences_subset(ask->audiences, f->parent->audiences,
				    missing, sizeof(missing))) {
		snprintf(no->why, sizeof(no->why),
			 "audience '%s' is not one of the parent task's "
			 "audiences (%s)",
			 missing,
			 f->parent->audiences[0] ? f->parent->audiences
						 : "none");
		return refuse(no, STINT_E_LIMIT, "audience");
	}
	return STINT_OK;
}

static int
check_budget(const struct stint_delegate_facts *f,
	     const struct stint_delegate_ask *ask,
	     struct stint_delegate_refusal *no)
{
	const struct stint_task *p = f->parent;
	uint64_t left;

	if (p->max_sigs == 0)
		return STINT_OK;
	left = p->used_sigs < p->max_sigs ? p->max_sigs - p->used_sigs : 0;
	if (ask->max_sigs == 0) {
		snprintf(no->why, sizeof(no->why),
			 "the parent task has a signature budget (%llu "
			 "left): the child needs one too",
			 (unsigned long long)left);
		return refuse(no, STINT_E_BUDGET, "budget");
	}
	if (ask->max_sigs > left) {
		snprintf(no->why, sizeof(no->why),
			 "child budget %llu is above the parent's remaining "
			 "budget %llu",
			 (unsigned long long)ask->max_sigs,
			 (unsigned long long)left);
		return refuse(no, STINT_E_BUDGET, "budget");
	}
	return STINT_OK;
}

int
stint_delegate_check(const struct stint_delegate_facts *f,
		     const struct stint_delegate_ask *ask,
		     struct stint_delegate_refusal *no)
{
	int (*const rules[])(const struct stint_delegate_facts *,
			     const struct stint_delegate_ask *,
			     struct stint_delegate_refusal *) = {
		check_agent, check_deadline, check_mechs, check_audiences,
		check_budget};
	size_t i;
	int r;

	memset(no, 0, sizeof(*no));
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if ((r = rules[i](f, ask, no)) != STINT_OK)
			return r;
	no->status = STINT_OK;
	return STINT_OK;
}

const char *
stint_delegate_agent_set(const struct stint_agent_add_req *ar,
			 struct stint_agent *a)
{
	const char *p = ar->delegate_to, *comma;
	char name[STINT_NAME_MAX + 1];
	size_t len;

	while (*p != '\0') {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len == 0 || len > STINT_NAME_MAX)
			return "delegate-to: agent names joined by commas";
		memcpy(name, p, len);
		name[len] = '\0';
		if (!stint_name_ok(name))
			return "delegate-to: agent names must be 1-64 "
			       "characters of A-Z a-z 0-9 . _ -";
		p += len + (comma != NULL);
		if (comma != NULL && *p == '\0')
			return "delegate-to: agent names joined by commas";
	}
	if (ar->max_depth > STINT_DEPTH_MAX)
		return "max-depth is above 15";
	memcpy(a->delegate_to, ar->delegate_to, sizeof(a->delegate_to));
	a->max_depth = ar->max_depth;
	return NULL;
}

void
stint_delegate_agent_info(const struct stint_agent *a,
			  struct stint_agent_info *info)
{
	memcpy(info->delegate_to, a->delegate_to, sizeof(info->delegate_to));
	info->max_depth = a->max_depth;
}

void
stint_delegate_audiences(const char *parent, const char *agent, char *buf,
			 size_t cap)
{
	const char *p = parent, *comma;
	char name[STINT_AUDIENCE_MAX + 1];
	size_t len;

	buf[0] = '\0';
	while (p != NULL && *p != '\0') {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len > 0 && len < sizeof(name)) {
			memcpy(name, p, len);
			name[len] = '\0';
			if (stint_audience_in(agent, name))
				(void)stint_audiences_add(buf, cap, name);
		}
		p = comma != NULL ? comma + 1 : NULL;
	}
}
