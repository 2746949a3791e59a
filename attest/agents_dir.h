/*
 * Provisioning as code (prov): agents declared in [stintd] agents_dir
 * (default agents.d beside stint.conf), one "[agent NAME]" section each in
 * *.conf files, reconciled into state.db at start and on SIGHUP. Format:
 * stint-agents.d(5) in stint.conf(5); docs/provisioning.md.
 */
#ifndef STINT_ATTEST_AGENTS_DIR_H
#define STINT_ATTEST_AGENTS_DIR_H

#include <stdbool.h>
#include <stddef.h>

#include "attest/config.h"
#include "attest/store.h"

struct stintd;

/* The agents the files declare; a.source is the file's path. */
struct stint_agents_decl {
	struct stint_agent *v;
	int *line; /* the [agent NAME] line of each */
	size_t n;
};

/* Reads and validates every *.conf in cfg->agents_dir (sorted by name; a
 * missing directory declares nothing). 0, or -1 with err "FILE:LINE: what
 * is wrong: what to do"; out is then empty. */
int stint_agents_dir_load(const struct stint_config *cfg,
			  struct stint_agents_decl *out, char *err,
			  size_t errlen);
void stint_agents_decl_free(struct stint_agents_decl *decl);
/* The declaration of name; at (may be NULL) gets its index. */
struct stint_agent *stint_agents_decl_find(const struct stint_agents_decl *decl,
					   const char *name, size_t *at);

/* agents_reconcile.c (stintd): makes state.db's file-declared agents what the
 * files say: adds the missing, updates the changed, removes (ending their
 * tasks, as `agent remove`) those no longer declared; one agent-reconcile audit
 * record per change. CLI agents are left alone (a file declaring one's name is
 * reported and skipped); an update ends the live tasks it forbids. -1 with
 * err when the files are invalid: nothing changes. *changed (may be NULL)
 * counts the changes. */
int stintd_agents_reconcile(struct stintd *d, size_t *changed, char *err,
			    size_t errlen);

/* The detail of an agent-add or agent-reconcile audit record: uid, gid,
 * max TTL, the selectors, audiences, delegate_to and max_depth (those
 * set). */
void stintd_agent_detail(const struct stint_agent *a, char *buf, size_t cap);

/* What a reconcile did, or would do (dry run): `stint reload`. */
enum stint_reconcile_action {
	STINT_RC_UNCHANGED = 0,
	STINT_RC_ADDED = 1,
	STINT_RC_UPDATED = 2,
	STINT_RC_REMOVED = 3,
	STINT_RC_SKIPPED =
		4, /* a CLI agent has the name, or the store refused */
};
struct stint_reconcile_agent {
	bool operator; /* an operators.d operator, not an agent */
	char name[STINT_NAME_MAX + 1];
	char source[STINT_SOURCE_MAX + 1];
	enum stint_reconcile_action action;
};
struct stint_reconcile_task {
	char id[STINT_TASK_ID_MAX + 1];
	char agent[STINT_NAME_MAX + 1];
	char reason[STINT_REASON_MAX + 1];
};
struct stint_reconcile_report {
	struct stint_reconcile_agent *agents;
	size_t n_agents;
	struct stint_reconcile_task *tasks; /* live tasks ended (or to be) */
	size_t n_tasks;
};
const char *stint_reconcile_action_str(enum stint_reconcile_action a);
void stint_reconcile_report_free(struct stint_reconcile_report *rep);
/* Appends one entry (rep may be NULL: nothing). */
void stint_reconcile_report_add(struct stint_reconcile_report *rep,
				bool operator, const char * name,
				const char *source,
				enum stint_reconcile_action action);

/* operators_dir.c: operators declared in [stintd] operators_dir, "[operator
 * NAME]" sections (uid, agents, max_ttl). check: 0 or -1 with err
 * "FILE:LINE: ...". reconcile (after the agents; rep may be NULL): adds,
 * updates and removes file operators as agents are, one
 * operator-reconcile audit record each, then rebuilds the admin.sock uid
 * set; the number of changes or -1. */
int stint_operators_dir_check(const struct stint_config *cfg, char *err,
			      size_t errlen);
int stintd_operators_reconcile(struct stintd *d, bool dry,
			       struct stint_reconcile_report *rep, char *err,
			       size_t errlen);
/* stintd_agents_reconcile with a report (rep may be NULL, else freed with
 * stint_reconcile_report_free): the number of changes, or -1 with err.
 * Updates also end the live tasks the new definition forbids
 * (agent_narrow.h). dry_run changes nothing and reports what would be. */
int stintd_agents_reconcile_report(struct stintd *d, bool dry_run,
				   struct stint_reconcile_report *rep,
				   char *err, size_t errlen);

#endif
