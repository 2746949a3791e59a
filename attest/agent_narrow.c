/*
 * Whether a live task outlives a change of its agent (prov): the rules
 * of agent_narrow.h.
 */

#include <stdio.h>
#include <string.h>

#include "attest/agent_narrow.h"
#include "attest/delegate.h"
#include "common/mechanism.h"

/* A selector now sets that was not set, or set otherwise: a process that
 * matched before may not match now. */
static const char *
principal_changed(const struct stint_agent *was, const struct stint_agent *now)
{
	const struct {
		const char *name, *was, *now;
	} sel[] = {
		{"exe", was->sel.exe, now->sel.exe},
		{"exe_sha256", was->sel.exe_sha256, now->sel.exe_sha256},
		{"cgroup", was->sel.cgroup, now->sel.cgroup},
		{"unit", was->sel.unit, now->sel.unit},
		{"lsm_label", was->sel.lsm_label, now->sel.lsm_label},
	};
	size_t i;

	if (was->uid != now->uid)
		return "uid";
	if (now->gid != -1 && now->gid != was->gid)
		return "gid";
	for (i = 0; i < sizeof(sel) / sizeof(sel[0]); i++)
		if (sel[i].now[0] != '\0' &&
		    strcmp(sel[i].now, sel[i].was) != 0)
			return sel[i].name;
	return NULL;
}

static bool
mech_allowed(const struct stint_agent *a, uint64_t mech)
{
	for (size_t i = 0; i < a->n_mechs; i++)
		if (a->mechs[i] == mech)
			return true;
	return false;
}

bool
stint_agent_allows_task(const struct stint_agent *was,
			const struct stint_agent *now,
			const struct stint_task *t, char *why, size_t whylen)
{
	char missing[STINT_AUDIENCE_MAX + 1];
	const struct stint_mech *m;
	const char *changed;
	uint64_t ttl;
	size_t i;

	if ((changed = principal_changed(was, now)) != NULL) {
		snprintf(why, whylen,
			 "agent narrowed: its %s changed, so the task's "
			 "holder may no longer match",
			 changed);
		return false;
	}
	for (i = 0; i < t->n_mechs; i++)
		if (!mech_allowed(now, t->mechs[i])) {
			m = stint_mech_find(t->mechs[i]);
			snprintf(why, whylen,
				 "agent narrowed: mechanism %s no longer "
				 "allowed",
				 m != NULL ? m->short_name : "?");
			return false;
		}
	ttl = t->not_after > t->created ? (uint64_t)(t->not_after - t->created)
					: 0;
	if (ttl > now->max_ttl) {
		snprintf(why, whylen,
			 "agent narrowed: task TTL %llus above max_ttl %llus",
			 (unsigned long long)ttl,
			 (unsigned long long)now->max_ttl);
		return false;
	}
	/* An agent that named no audience now names some: its tasks were
	 * started unrestricted. (A delegated child may name none while its
	 * agent names some: that is narrower, not a change.) */
	if (was->audiences[0] == '\0' && now->audiences[0] != '\0' &&
	    t->audiences[0] == '\0') {
		snprintf(why, whylen,
			 "agent narrowed: audiences now limited to %s",
			 now->audiences);
		return false;
	}
	if (!stint_audiences_subset(t->audiences, now->audiences, missing,
				    sizeof(missing))) {
		snprintf(why, whylen,
			 "agent narrowed: audience %s no longer allowed",
			 missing);
		return false;
	}
	return true;
}

bool
stint_agent_allows_child(const struct stint_agent *now,
			 const struct stint_task *t, char *why, size_t whylen)
{
	const char *p = t->path, *comma;
	size_t len, nlen = strlen(now->name);
	uint32_t i;

	for (i = 0; i < t->depth && p != NULL && *p != '\0'; i++) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len == nlen && memcmp(p, now->name, len) == 0) {
			if (now->max_depth < t->depth) {
				snprintf(why, whylen,
					 "agent narrowed: agent %s's "
					 "max_depth %u is below the task's "
					 "depth %u",
					 now->name, now->max_depth, t->depth);
				return false;
			}
			if (i + 1 == t->depth &&
			    !stint_delegate_to_has(now->delegate_to,
						   t->agent)) {
				snprintf(why, whylen,
					 "agent narrowed: agent %s may no "
					 "longer delegate to agent %s",
					 now->name, t->agent);
				return false;
			}
		}
		p = comma != NULL ? comma + 1 : NULL;
	}
	return true;
}
