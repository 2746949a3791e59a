/*
 * Reconciling state.db's agents with what agents.d declares (prov): the
 * daemon half of agents_dir.h (the parser is agents_dir.c).
 */

#include <pthread.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/agent_narrow.h"
#include "attest/agents_dir.h"
#include "attest/audit.h"
#include "attest/audit_pending.h"
#include "attest/clock.h"
#include "attest/daemon.h"
#include "attest/task.h"
#include "common/log.h"

void
stintd_agent_detail(const struct stint_agent *a, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "uid=%u gid=%lld max_ttl=%llus", a->uid,
			 (long long)a->gid, (unsigned long long)a->max_ttl);
	const struct {
		const char *name, *v;
	} sel[] = {{"exe", a->sel.exe},
		   {"exe_sha256", a->sel.exe_sha256},
		   {"cgroup", a->sel.cgroup},
		   {"unit", a->sel.unit},
		   {"lsm_label", a->sel.lsm_label},
		   {"audiences", a->audiences},      /* aud */
		   {"delegate_to", a->delegate_to}}; /* deleg */

	for (size_t i = 0; i < sizeof(sel) / sizeof(sel[0]); i++)
		if (n >= 0 && (size_t)n < cap && sel[i].v[0] != '\0')
			n += snprintf(buf + n, cap - (size_t)n, " %s=%s",
				      sel[i].name, sel[i].v);
	if (n >= 0 && (size_t)n < cap && a->max_depth != 0)
		snprintf(buf + n, cap - (size_t)n, " max_depth=%u",
			 a->max_depth);
}

static int
audit_reconcile(struct stintd *d, const struct stint_agent *a, const char *what)
{
	char detail[STINT_SOURCE_MAX + 4096];
	struct stint_audit_event ev = {.event = "agent-reconcile",
				       .agent = a->name,
				       .decision = "allow",
				       .detail = detail};
	int n = snprintf(detail, sizeof(detail), "%s file=%s ", what,
			 a->source);

	if (n > 0 && (size_t)n < sizeof(detail))
		stintd_agent_detail(a, detail + n, sizeof(detail) - (size_t)n);
	if (stint_audit_append_in_order(d->audit, &ev) == 0)
		return 0;
	log_err("audit log write failed for agent-reconcile (%s)", a->name);
	return -1;
}

static bool
agent_same(const struct stint_agent *a, const struct stint_agent *b)
{
	return a->uid == b->uid && a->gid == b->gid &&
	       a->max_ttl == b->max_ttl && a->n_mechs == b->n_mechs &&
	       memcmp(a->mechs, b->mechs, a->n_mechs * sizeof(a->mechs[0])) ==
		       0 &&
	       strcmp(a->sel.exe, b->sel.exe) == 0 &&
	       strcmp(a->sel.exe_sha256, b->sel.exe_sha256) == 0 &&
	       strcmp(a->sel.cgroup, b->sel.cgroup) == 0 &&
	       strcmp(a->sel.unit, b->sel.unit) == 0 &&
	       strcmp(a->sel.lsm_label, b->sel.lsm_label) == 0 &&
	       strcmp(a->audiences, b->audiences) == 0 &&
	       strcmp(a->delegate_to, b->delegate_to) == 0 &&
	       a->max_depth == b->max_depth &&
	       strcmp(a->source, b->source) == 0;
}

/* One reconcile: the daemon, whether it only looks, what it reports. */
struct rc {
	struct stintd *d;
	bool dry;
	struct stint_reconcile_report *rep;
	size_t changed;
};

const char *
stint_reconcile_action_str(enum stint_reconcile_action a)
{
	static const char *const names[] = {"unchanged", "added", "updated",
					    "removed", "skipped"};

	return (size_t)a < sizeof(names) / sizeof(names[0]) ? names[a] : "?";
}

void
stint_reconcile_report_free(struct stint_reconcile_report *rep)
{
	if (rep == NULL)
		return;
	free(rep->agents);
	free(rep->tasks);
	memset(rep, 0, sizeof(*rep));
}

void
stint_reconcile_report_add(struct stint_reconcile_report *rep, bool operator,
			   const char * name, const char *source,
			   enum stint_reconcile_action action)
{
	struct stint_reconcile_agent *v;

	if (rep == NULL ||
	    (v = realloc(rep->agents, (rep->n_agents + 1) * sizeof(*v))) ==
		    NULL)
		return;
	rep->agents = v;
	v += rep->n_agents++;
	memset(v, 0, sizeof(*v));
	v->operator= operator;
	snprintf(v->name, sizeof(v->name), "%s", name);
	snprintf(v->source, sizeof(v->source), "%s", source);
	v->action = action;
}

static void
rep_agent(struct rc *c, const char *name, const char *source,
	  enum stint_reconcile_action action)
{
	if (action != STINT_RC_UNCHANGED && action != STINT_RC_SKIPPED)
		c->changed++;
	stint_reconcile_report_add(c->rep, false, name, source, action);
}

static void
rep_task(struct rc *c, const char *id, const char *agent, const char *reason)
{
	struct stint_reconcile_task *v;
	struct stint_reconcile_report *rep = c->rep;

	if (rep == NULL ||
	    (v = realloc(rep->tasks, (rep->n_tasks + 1) * sizeof(*v))) == NULL)
		return;
	rep->tasks = v;
	v += rep->n_tasks++;
	memset(v, 0, sizeof(*v));
	snprintf(v->id, sizeof(v->id), "%s", id);
	snprintf(v->agent, sizeof(v->agent), "%s", agent);
	snprintf(v->reason, sizeof(v->reason), "%s", reason);
}

/* The live tasks of agent was that now no longer allows (now NULL: the
 * agent goes, all of them) are reported and, unless dry, ended as `task
 * end` ends them, each audited with the reason. Called after the store has
 * the new definition: a start that stores its task later checks it against
 * that (task.c), so no task the new definition forbids stays live. */
static void
narrow_tasks(struct rc *c, const struct stint_agent *was,
	     const struct stint_agent *now)
{
	struct stint_task *tasks = NULL;
	char why[STINT_REASON_MAX + 1], err[256];
	size_t n = 0, i;

	if (stint_store_task_list(c->d->store, was->name, true, stintd_now(),
				  "", SIZE_MAX, &tasks, &n) != STINT_STORE_OK) {
		log_err("agents.d: cannot list the live tasks of agent %s",
			was->name);
		return;
	}
	for (i = 0; i < n; i++) {
		if (now == NULL)
			snprintf(why, sizeof(why), "agent removed");
		else if (stint_agent_allows_task(was, now, &tasks[i], why,
						 sizeof(why)))
			continue;
		rep_task(c, tasks[i].id, was->name, why);
		if (c->dry || now == NULL)
			continue;
		if (stint_task_end(c->d, tasks[i].id, why, NULL, err,
				   sizeof(err), NULL, 0) != STINT_OK)
			log_err("agents.d: task %s of agent %s not ended: %s",
				tasks[i].id, was->name, err);
		else
			log_info("agents.d: task %s of agent %s ended: %s",
				 tasks[i].id, was->name, why);
	}
	stint_store_task_list_free(tasks, n);
}

/* deleg: the live child tasks below agent now's tasks that its new
 * delegation rights (delegate_to, max_depth) forbid are reported and,
 * unless dry, ended with their subtrees. task.c re-checks a child it just
 * stored the same way, so a delegation racing this keeps nothing. */
static void
narrow_children(struct rc *c, const struct stint_agent *was,
		const struct stint_agent *now)
{
	struct stint_task *tasks = NULL;
	char why[STINT_REASON_MAX + 1], err[256];
	size_t n = 0, i;

	if (strcmp(was->delegate_to, now->delegate_to) == 0 &&
	    was->max_depth <= now->max_depth)
		return;
	if (stint_store_task_list(c->d->store, NULL, true, stintd_now(), "",
				  SIZE_MAX, &tasks, &n) != STINT_STORE_OK) {
		log_err("agents.d: cannot list the live tasks below agent %s",
			now->name);
		return;
	}
	for (i = 0; i < n; i++) {
		if (tasks[i].depth == 0 ||
		    stint_agent_allows_child(now, &tasks[i], why, sizeof(why)))
			continue;
		rep_task(c, tasks[i].id, tasks[i].agent, why);
		if (c->dry)
			continue;
		if (stint_task_end(c->d, tasks[i].id, why, NULL, err,
				   sizeof(err), NULL, 0) != STINT_OK)
			log_err("agents.d: task %s of agent %s not ended: %s",
				tasks[i].id, tasks[i].agent, err);
		else
			log_info("agents.d: task %s of agent %s ended: %s",
				 tasks[i].id, tasks[i].agent, why);
	}
	stint_store_task_list_free(tasks, n);
}

/* File agents no longer declared go, their tasks ended and keys
 * destroyed, through `agent remove`'s race-free path. */
static void
reconcile_removed(struct rc *c, const struct stint_agent *have, size_t n,
		  const struct stint_agents_decl *decl)
{
	char detail[STINT_SOURCE_MAX + 32], note[512];
	size_t i, ended;

	for (i = 0; i < n; i++) {
		if (have[i].source[0] == '\0' ||
		    stint_agents_decl_find(decl, have[i].name, NULL) != NULL)
			continue;
		/* What it ends, for the report (the removal ends them all,
		 * a task started meanwhile included). */
		narrow_tasks(c, &have[i], NULL);
		if (c->dry) {
			rep_agent(c, have[i].name, have[i].source,
				  STINT_RC_REMOVED);
			continue;
		}
		snprintf(detail, sizeof(detail), "removed file=%s",
			 have[i].source);
		ended = 0;
		if (stint_task_remove_agent_as(
			    c->d, have[i].name, NULL, "agent-reconcile", detail,
			    &ended, note, sizeof(note)) != STINT_STORE_OK) {
			log_err("agents.d: cannot remove agent %s (%s)",
				have[i].name, have[i].source);
			rep_agent(c, have[i].name, have[i].source,
				  STINT_RC_SKIPPED);
			continue;
		}
		log_info("agents.d: agent %s removed (%s), %zu live task(s) "
			 "ended",
			 have[i].name, have[i].source, ended);
		rep_agent(c, have[i].name, have[i].source, STINT_RC_REMOVED);
	}
}

static enum stint_reconcile_action
add_one(struct rc *c, struct stint_agent *want, int line)
{
	char err[512], overlap[STINT_NAME_MAX + 1];
	struct stintd *d = c->d;

	if (c->dry)
		return STINT_RC_ADDED;
	want->created = stintd_now();
	if (stint_store_agent_add(d->store, want, overlap, err, sizeof(err)) !=
	    STINT_STORE_OK) {
		log_err("%s:%d: agent '%s' not added: %s", want->source, line,
			want->name, err);
		return STINT_RC_SKIPPED;
	}
	/* No record, no agent (as `agent add`). */
	if (audit_reconcile(d, want, "added") != 0) {
		(void)stint_store_agent_remove(d->store, want->name);
		return STINT_RC_SKIPPED;
	}
	log_info("agents.d: agent %s added (%s)", want->name, want->source);
	return STINT_RC_ADDED;
}

static enum stint_reconcile_action
update_one(struct rc *c, struct stint_agent *want, int line,
	   const struct stint_agent *have)
{
	char err[512];

	if (!c->dry &&
	    stint_store_agent_update(c->d->store, want, err, sizeof(err)) !=
		    STINT_STORE_OK) {
		log_err("%s:%d: agent '%s' not updated: %s", want->source, line,
			want->name, err);
		return STINT_RC_SKIPPED;
	}
	if (!c->dry) {
		(void)audit_reconcile(c->d, want, "updated");
		log_info("agents.d: agent %s updated (%s)", want->name,
			 want->source);
	}
	narrow_tasks(c, have, want);
	narrow_children(c, have, want);
	return STINT_RC_UPDATED;
}

/* One declared agent: added, updated, or left as it is. */
static void
reconcile_one(struct rc *c, struct stint_agent *want, int line,
	      const struct stint_agent *have)
{
	enum stint_reconcile_action act;

	if (have != NULL && have->source[0] == '\0') {
		log_err("%s:%d: agent '%s' exists and was added with the CLI: "
			"remove it ('stint agent remove %s') to have the file "
			"manage it, or rename it here",
			want->source, line, want->name, want->name);
		act = STINT_RC_SKIPPED;
	} else if (have == NULL)
		act = add_one(c, want, line);
	else if (agent_same(want, have))
		act = STINT_RC_UNCHANGED;
	else
		act = update_one(c, want, line, have);
	rep_agent(c, want->name, want->source, act);
}

int
stintd_agents_reconcile_report(struct stintd *d, bool dry_run,
			       struct stint_reconcile_report *rep, char *err,
			       size_t errlen)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct rc c = {.d = d, .dry = dry_run, .rep = rep};
	struct stint_agents_decl decl;
	struct stint_agent *have = NULL;
	const struct stint_agent *cur;
	size_t n = 0, i, j;
	int r = -1;

	if (rep != NULL)
		memset(rep, 0, sizeof(*rep));
	pthread_mutex_lock(&lock);
	/* Invalid files change nothing: the previous state stays. */
	if (stint_operators_dir_check(&d->cfg, err, errlen) != 0)
		goto out;
	if (stint_agents_dir_load(&d->cfg, &decl, err, errlen) != 0)
		goto out;
	if (stint_store_agent_list(d->store, &have, &n) != STINT_STORE_OK) {
		snprintf(err, errlen, "agent store unavailable");
		goto out_decl;
	}
	/* Removals first: a principal moved to another name is free. */
	reconcile_removed(&c, have, n, &decl);
	for (i = 0; i < decl.n; i++) {
		for (cur = NULL, j = 0; j < n && cur == NULL; j++)
			if (strcmp(have[j].name, decl.v[i].name) == 0)
				cur = &have[j];
		reconcile_one(&c, &decl.v[i], decl.line[i], cur);
	}
	/* Operators after the agents they name (operators_dir.c). */
	r = stintd_operators_reconcile(d, dry_run, rep, err, errlen);
	if (r < 0) {
		free(have);
		goto out_decl;
	}
	c.changed += (size_t)r;
	r = (int)(c.changed > (size_t)INT32_MAX ? INT32_MAX : c.changed);
	free(have);
out_decl:
	stint_agents_decl_free(&decl);
out:
	pthread_mutex_unlock(&lock);
	return r;
}

int
stintd_agents_reconcile(struct stintd *d, size_t *changed, char *err,
			size_t errlen)
{
	int r = stintd_agents_reconcile_report(d, false, NULL, err, errlen);

	if (changed != NULL)
		*changed = r > 0 ? (size_t)r : 0;
	return r < 0 ? -1 : 0;
}
