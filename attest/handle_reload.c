/*
 * RELOAD (prov): `stint reload [--dry-run]` reconciles agents.d now, as
 * SIGHUP does, and says per agent what changed (added, updated, removed,
 * unchanged, skipped) and which live tasks were ended, or with DRY_RUN
 * what would be, changing nothing. Invalid files: BAD_REQUEST with the
 * FILE:LINE error, and nothing changes.
 */

#include <stdbool.h>
#include <stdio.h>

#include "attest/agents_dir.h"
#include "attest/daemon.h"
#include "attest/ops.h"
#include "attest/reply.h"
#include "common/log.h"
#include "common/msg.h"

static int
put_agent(struct stint_msg *m, const struct stint_reconcile_agent *a)
{
	struct stint_msg *e = stint_msg_new();

	if (e == NULL || stint_msg_put_text(e, STINT_K_AGENT, a->name) != 0 ||
	    stint_msg_put_text(e, STINT_K_SOURCE, a->source) != 0 ||
	    stint_msg_put_text(e, STINT_K_RELOAD_ACTION,
			       stint_reconcile_action_str(a->action)) != 0 ||
	    stint_msg_put_text(e, STINT_K_RELOAD_KIND,
			       a->operator? "operator" : "agent") != 0) {
		stint_msg_free(e);
		return -1;
	}
	return stint_msg_append_map(m, STINT_K_RELOAD_AGENTS, e);
}

static int
put_task(struct stint_msg *m, const struct stint_reconcile_task *t)
{
	struct stint_msg *e = stint_msg_new();

	if (e == NULL || stint_msg_put_text(e, STINT_K_TASK, t->id) != 0 ||
	    stint_msg_put_text(e, STINT_K_AGENT, t->agent) != 0 ||
	    stint_msg_put_text(e, STINT_K_REASON, t->reason) != 0) {
		stint_msg_free(e);
		return -1;
	}
	return stint_msg_append_map(m, STINT_K_RELOAD_TASKS, e);
}

static struct stint_msg *
report_msg(const struct stint_reconcile_report *rep, bool dry)
{
	struct stint_msg *m = stint_msg_reply_ok();
	int r = 0;
	size_t i;

	if (m == NULL)
		return NULL;
	r = stint_msg_put_bool(m, STINT_K_DRY_RUN, dry);
	for (i = 0; i < rep->n_agents && r == 0; i++)
		r = put_agent(m, &rep->agents[i]);
	for (i = 0; i < rep->n_tasks && r == 0; i++)
		r = put_task(m, &rep->tasks[i]);
	if (r != 0) {
		stint_msg_free(m);
		return NULL;
	}
	return m;
}

int
stintd_op_reload(struct stintd *d, const struct stint_peer *peer,
		 const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_reconcile_report report;
	struct stint_msg *m;
	char err[1024];
	bool dry = false;
	int n;

	(void)peer;
	if (stint_msg_has(req, STINT_K_DRY_RUN) &&
	    stint_msg_get_bool(req, STINT_K_DRY_RUN, &dry) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "RELOAD: dry run is not a boolean");
	n = stintd_agents_reconcile_report(d, dry, &report, err, sizeof(err));
	if (n < 0) {
		log_err("agents.d not reconciled (reload): %s", err);
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "%s (nothing changed)", err);
	}
	if (!dry)
		log_info("agents.d reconciled on request: %d change(s)", n);
	m = report_msg(&report, dry);
	stint_reconcile_report_free(&report);
	if (m == NULL)
		return -1;
	return stintd_msg_reply(rep, m);
}
