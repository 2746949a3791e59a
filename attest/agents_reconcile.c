/*
 * Reconciling state.db's agents with what agents.d declares (prov): the
 * daemon half of agents_dir.h (the parser is agents_dir.c).
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/agents_dir.h"
#include "attest/audit.h"
#include "attest/audit_pending.h"
#include "attest/clock.h"
#include "attest/daemon.h"
#include "attest/task.h"
#include "common/log.h"

static int
audit_reconcile(struct stintd *d, const struct stint_agent *a, const char *what)
{
	char detail[STINT_SOURCE_MAX + 128];
	struct stint_audit_event ev = {.event = "agent-reconcile",
				       .agent = a->name,
				       .decision = "allow",
				       .detail = detail};

	snprintf(detail, sizeof(detail),
		 "%s file=%s uid=%u gid=%lld max_ttl=%llus", what, a->source,
		 a->uid, (long long)a->gid, (unsigned long long)a->max_ttl);
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
	       strcmp(a->source, b->source) == 0;
}

/* File agents no longer declared go, their tasks ended and keys
 * destroyed, through `agent remove`'s race-free path. */
static size_t
reconcile_removed(struct stintd *d, const struct stint_agent *have, size_t n,
		  const struct stint_agents_decl *decl)
{
	char detail[STINT_SOURCE_MAX + 32], note[512];
	size_t i, ended, changed = 0;

	for (i = 0; i < n; i++) {
		if (have[i].source[0] == '\0' ||
		    stint_agents_decl_find(decl, have[i].name, NULL) != NULL)
			continue;
		snprintf(detail, sizeof(detail), "removed file=%s",
			 have[i].source);
		ended = 0;
		if (stint_task_remove_agent_as(
			    d, have[i].name, NULL, "agent-reconcile", detail,
			    &ended, note, sizeof(note)) != STINT_STORE_OK) {
			log_err("agents.d: cannot remove agent %s (%s)",
				have[i].name, have[i].source);
			continue;
		}
		log_info("agents.d: agent %s removed (%s), %zu live task(s) "
			 "ended",
			 have[i].name, have[i].source, ended);
		changed++;
	}
	return changed;
}

/* One declared agent: added, updated, or left as it is. */
static bool
reconcile_one(struct stintd *d, struct stint_agent *want, int line,
	      const struct stint_agent *have)
{
	char err[512], overlap[STINT_NAME_MAX + 1];

	if (have != NULL && have->source[0] == '\0') {
		log_err("%s:%d: agent '%s' exists and was added with the CLI: "
			"remove it ('stint agent remove %s') to have the file "
			"manage it, or rename it here",
			want->source, line, want->name, want->name);
		return false;
	}
	if (have != NULL && agent_same(want, have))
		return false;
	if (have == NULL) {
		want->created = stintd_now();
		if (stint_store_agent_add(d->store, want, overlap, err,
					  sizeof(err)) != STINT_STORE_OK) {
			log_err("%s:%d: agent '%s' not added: %s", want->source,
				line, want->name, err);
			return false;
		}
		/* No record, no agent (as `agent add`). */
		if (audit_reconcile(d, want, "added") != 0) {
			(void)stint_store_agent_remove(d->store, want->name);
			return false;
		}
		log_info("agents.d: agent %s added (%s)", want->name,
			 want->source);
		return true;
	}
	if (stint_store_agent_update(d->store, want, err, sizeof(err)) !=
	    STINT_STORE_OK) {
		log_err("%s:%d: agent '%s' not updated: %s", want->source, line,
			want->name, err);
		return false;
	}
	(void)audit_reconcile(d, want, "updated");
	log_info("agents.d: agent %s updated (%s)", want->name, want->source);
	return true;
}

int
stintd_agents_reconcile(struct stintd *d, size_t *changed, char *err,
			size_t errlen)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct stint_agents_decl decl;
	struct stint_agent *have = NULL;
	const struct stint_agent *cur;
	size_t n = 0, i, j, count = 0;
	int r = -1;

	if (changed != NULL)
		*changed = 0;
	pthread_mutex_lock(&lock);
	/* Invalid files change nothing: the previous state stays. */
	if (stint_agents_dir_load(&d->cfg, &decl, err, errlen) != 0)
		goto out;
	if (stint_store_agent_list(d->store, &have, &n) != STINT_STORE_OK) {
		snprintf(err, errlen, "agent store unavailable");
		goto out_decl;
	}
	/* Removals first: a principal moved to another name is free. */
	count = reconcile_removed(d, have, n, &decl);
	for (i = 0; i < decl.n; i++) {
		for (cur = NULL, j = 0; j < n && cur == NULL; j++)
			if (strcmp(have[j].name, decl.v[i].name) == 0)
				cur = &have[j];
		count += reconcile_one(d, &decl.v[i], decl.line[i], cur);
	}
	if (changed != NULL)
		*changed = count;
	r = 0;
	free(have);
out_decl:
	stint_agents_decl_free(&decl);
out:
	pthread_mutex_unlock(&lock);
	return r;
}
