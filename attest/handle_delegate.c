/*
 * DELEGATE (agent.sock), TASK_DELEGATE and TASK_TREE (admin.sock) (deleg):
 * a child task of a task the caller may use, narrower than its parent by
 * the rules of delegate.c, started through stint_task_start; a task's live
 * tree.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/audit_pending.h"
#include "attest/clock.h"
#include "attest/daemon.h"
#include "attest/delegate.h"
#include "attest/gate.h"
#include "attest/operator.h"
#include "attest/ops.h"
#include "attest/refusals.h"
#include "attest/task.h"
#include "attest/task_info.h"
#include "attest/watch.h"
#include "common/log.h"
#include "common/msg.h"
#include "common/proto.h"

/* A decoded DELEGATE / TASK_DELEGATE request: TASK_START's fields (no
 * binding), the parent and the mechanisms asked for. */
struct delegate_req {
	struct stint_task_start_req sr;
	char parent[STINT_TASK_ID_MAX + 1];
	uint64_t mechs[STINT_MECHS_MAX];
	size_t n_mechs; /* 0: the parent's */
	/* agent.sock: any local process may ask, so its refusals are
	 * audited at a bounded rate (refusals.c), as refused SIGNs are */
	bool agent_sock;
};

static const char *
delegate_decode(const struct stint_msg *m, struct delegate_req *r)
{
	uint64_t bad;

	memset(r, 0, sizeof(*r));
	if (stint_dec_task_start_req(m, &r->sr, &bad) != 0)
		return bad == STINT_K_AGENT ? "DELEGATE needs a child agent"
					    : "bad ttl, key type, max_sigs, "
					      "intent or audiences";
	if (stint_msg_get_text(m, STINT_K_PARENT, r->parent,
			       sizeof(r->parent)) != 0)
		return "DELEGATE needs a parent task id";
	if (stint_msg_has(m, STINT_K_MECHS) &&
	    (stint_msg_get_uint_array(m, STINT_K_MECHS, r->mechs,
				      STINT_MECHS_MAX, &r->n_mechs) != 0 ||
	     r->n_mechs == 0))
		return "bad mechanism list";
	return NULL;
}

static void
audit_delegate(struct stintd *d, const char *agent, const char *task,
	       const struct stint_peer *by, const char *decision,
	       const char *reason, const char *detail)
{
	struct stint_audit_event ev = {.event = "task-delegate",
				       .agent = agent,
				       .task = task,
				       .peer = by,
				       .decision = decision,
				       .reason = reason,
				       .detail = detail};

	if (stint_audit_append_in_order(d->audit, &ev) != 0) {
		stintd_count(d, STINT_C_AUDIT_FAILURES);
		log_err("audit log write failed for task-delegate");
	}
}

/* A refusal, audited with the check that failed. */
static int
refuse(struct stintd *d, const struct stint_peer *by,
       const struct delegate_req *r, const char *agent, int status,
       const char *check, const char *why, struct stint_reply *rep)
{
	char detail[STINT_TASK_ID_MAX + STINT_NAME_MAX + 600];
	/* check: a static name, which the rate limit tells repeats by */
	struct stint_audit_event ev = {.event = "task-delegate",
				       .agent = agent,
				       .task = r->parent,
				       .peer = by,
				       .decision = "deny",
				       .reason = check,
				       .detail = detail};

	snprintf(detail, sizeof(detail),
		 "check=%s parent=%s child_agent=%s why=%.500s", check,
		 r->parent, r->sr.agent, why);
	if (r->agent_sock)
		(void)stint_refusals_audit(d->audit, &ev, stintd_now());
	else
		audit_delegate(d, agent, r->parent, by, "deny", check, detail);
	return stintd_error_reply(rep, status, "delegation refused: %s", why);
}

/* agent.sock: the caller must be allowed to use the parent exactly as a
 * SIGN with it would be judged (identity, selectors, binding, live,
 * deadline, budget), without a signature counted. */
static bool
may_use_parent(struct stintd *d, const struct stint_peer *peer,
	       const struct delegate_req *r, struct stint_reply *rep, int *ret)
{
	struct stint_gate_req gr = {
		.peer = peer, .task_id = r->parent, .check_only = true};
	struct stint_gate_result g;
	unsigned stripe;

	stintd_realtime(&gr.now);
	stripe = stint_revoke_read(d->revoke, r->parent);
	if (stint_gate_sign(d->store, &gr, &g) != STINT_STORE_OK) {
		g.decision = STINT_E_INTERNAL;
		g.reason = "task store unavailable";
	}
	stint_revoke_read_unlock(d->revoke, stripe);
	if (g.decision == STINT_OK)
		return true;
	*ret = refuse(d, peer, r, g.agent.name[0] ? g.agent.name : NULL,
		      g.decision, "use", g.reason, rep);
	return false;
}

/* The smallest max-depth along the parent's path (an agent gone: 0). */
static uint32_t
chain_depth(struct stintd *d, const struct stint_task *p)
{
	const char *s = p->path[0] ? p->path : p->agent, *comma;
	struct stint_agent a;
	char name[STINT_NAME_MAX + 1];
	uint32_t m = UINT32_MAX;
	size_t len;

	while (s != NULL && *s != '\0') {
		comma = strchr(s, ',');
		len = comma != NULL ? (size_t)(comma - s) : strlen(s);
		if (len == 0 || len >= sizeof(name))
			return 0;
		memcpy(name, s, len);
		name[len] = '\0';
		if (stint_store_agent_get(d->store, name, &a) != STINT_STORE_OK)
			return 0;
		if (a.max_depth < m)
			m = a.max_depth;
		s = comma != NULL ? comma + 1 : NULL;
	}
	return m == UINT32_MAX ? 0 : m;
}

static int
reply_task(struct stint_reply *rep, const struct stint_task *t,
	   const char *note)
{
	struct stint_msg *m = stint_msg_reply_ok();
	struct stint_task_info ti;

	if (m == NULL)
		return -1;
	/* The caller may use the child: counters, audiences and the tree */
	stintd_task_info(t, STINTD_TASK_FULL, &ti);
	if (stint_put_task_start_rep(m, &ti, note) != 0) {
		stint_msg_free(m);
		return -1;
	}
	return stintd_msg_reply(rep, m);
}

/* The rules, then the start. */
static int
delegate_start(struct stintd *d, const struct stint_peer *peer,
	       struct delegate_req *r, const struct stint_task *parent,
	       struct stint_reply *rep)
{
	struct stint_agent delegator, child;
	struct stint_bind_start bs;
	struct stint_delegate_refusal no;
	struct stint_delegate_facts f = {
		.parent = parent, .delegator = &delegator, .child = &child};
	struct stint_delegate_ask ask = {
		.agent = r->sr.agent,
		.mechs = r->n_mechs ? r->mechs : NULL,
		.n_mechs = r->n_mechs,
		.max_sigs = r->sr.max_sigs,
		.audiences = r->sr.has_audiences ? r->sr.audiences : NULL};
	struct stint_task_request tr = {.agent = r->sr.agent,
					.ttl = r->sr.ttl,
					.key_type = r->sr.key_type,
					.max_sigs = r->sr.max_sigs,
					.parent = parent,
					.mechs = ask.mechs,
					.n_mechs = r->n_mechs};
	char aud[STINT_AUDIENCES_TEXT_MAX + 1], err[512];
	char detail[STINT_DPATH_MAX + 3 * STINT_TASK_ID_MAX + 64];
	struct stint_task t;
	const char *stage = "start";
	int status, ret;

	if (stint_store_agent_get(d->store, parent->agent, &delegator) !=
	    STINT_STORE_OK)
		return refuse(d, peer, r, parent->agent, STINT_E_NOT_FOUND,
			      "agent", "the parent task's agent is gone", rep);
	if (stint_store_agent_get(d->store, r->sr.agent, &child) !=
	    STINT_STORE_OK)
		return refuse(d, peer, r, parent->agent, STINT_E_NOT_FOUND,
			      "agent", "no such child agent", rep);
	f.chain_max_depth = chain_depth(d, parent);
	ask.not_after = r->sr.ttl ? stintd_now() + (int64_t)r->sr.ttl
				  : parent->not_after;
	if (stint_delegate_check(&f, &ask, &no) != STINT_OK)
		return refuse(d, peer, r, parent->agent, no.status, no.check,
			      no.why, rep);
	if (!r->sr.has_audiences)
		stint_delegate_audiences(parent->audiences, child.audiences,
					 aud, sizeof(aud));
	tr.audiences = r->sr.has_audiences ? r->sr.audiences : aud;
	tr.intent = r->sr.has_intent ? r->sr.intent : NULL;
	/* A binding as TASK_START makes it (stint run --parent) */
	status = stint_task_start_bound(d, &tr, &r->sr, peer, &bs, &t, err,
					sizeof(err), &stage);
	if (status != STINT_OK)
		return refuse(d, peer, r, parent->agent, status, stage, err,
			      rep);
	snprintf(detail, sizeof(detail),
		 "child=%s parent=%s root=%s depth=%u path=%s reserved=%llu",
		 t.id, t.parent_id, t.root_id, t.depth, t.path,
		 (unsigned long long)t.reserved);
	audit_delegate(d, parent->agent, parent->id, peer, "allow", NULL,
		       detail);
	ret = reply_task(rep, &t, bs.note);
	stint_task_clear(&t);
	return ret;
}

static int
delegate_op(struct stintd *d, const struct stint_peer *peer,
	    const struct stint_msg *req, struct stint_reply *rep, bool admin)
{
	struct delegate_req *r;
	struct stintd_actor actor;
	struct stint_task parent;
	const char *bad;
	int ret;

	if ((r = malloc(sizeof(*r))) == NULL)
		return -1;
	memset(&parent, 0, sizeof(parent));
	if ((bad = delegate_decode(req, r)) != NULL) {
		ret = stintd_error_reply(rep, STINT_E_BAD_REQUEST, "%s", bad);
		goto out;
	}
	r->agent_sock = !admin;
	/* admin.sock: an operator must serve both agents */
	if (admin ? !stintd_may_act_for_task(d, peer, r->parent,
					     "task delegate", rep, &ret) ||
			    !stintd_may_act_for_agent(d, peer, r->sr.agent,
						      "task delegate", &actor,
						      rep, &ret)
		  : !may_use_parent(d, peer, r, rep, &ret))
		goto out;
	if (stint_store_task_get(d->store, r->parent, &parent) !=
	    STINT_STORE_OK) {
		ret = refuse(d, peer, r, NULL, STINT_E_NOT_FOUND, "use",
			     "no such parent task", rep);
		goto out;
	}
	if (parent.state != STINT_TASK_LIVE ||
	    stintd_now() >= parent.not_after) {
		ret = refuse(d, peer, r, parent.agent, STINT_E_NOT_LIVE, "use",
			     "the parent task is not live", rep);
		goto out;
	}
	ret = delegate_start(d, peer, r, &parent, rep);
out:
	stint_task_clear(&parent);
	free(r);
	return ret;
}

int
stintd_op_delegate(struct stintd *d, const struct stint_peer *peer,
		   const struct stint_msg *req, struct stint_reply *rep)
{
	return delegate_op(d, peer, req, rep, false);
}

int
stintd_op_task_delegate(struct stintd *d, const struct stint_peer *peer,
			const struct stint_msg *req, struct stint_reply *rep)
{
	return delegate_op(d, peer, req, rep, true);
}

int
stintd_op_task_tree(struct stintd *d, const struct stint_peer *peer,
		    const struct stint_msg *req, struct stint_reply *rep)
{
	char id[STINT_TASK_ID_MAX + 1];
	struct stint_task *tasks = NULL;
	struct stint_task_info ti;
	struct stint_msg *m;
	size_t n = 0, i, put = 0;
	int r = 0, ret;

	if (stint_dec_name_req(req, STINT_K_TASK, id, sizeof(id)) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "TASK_TREE needs a task id");
	if (!stintd_may_act_for_task(d, peer, id, "task tree", rep, &ret))
		return ret;
	r = stint_store_task_tree(d->store, id, &tasks, &n);
	if (r == STINT_STORE_NOT_FOUND)
		return stintd_error_reply(rep, STINT_E_NOT_FOUND,
					  "no task '%s'", id);
	if (r != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "task store unavailable");
	if ((m = stint_msg_reply_ok()) == NULL) {
		stint_store_task_list_free(tasks, n);
		return -1;
	}
	/* The task asked for, and its live descendants. */
	for (i = 0; i < n && r == 0; i++) {
		if (i > 0 && tasks[i].state != STINT_TASK_LIVE)
			continue;
		stintd_task_info(&tasks[i], STINTD_TASK_FULL, &ti);
		if (stint_put_task_list_entry(m, &ti) != 0)
			r = -1;
		put++;
	}
	if (r == 0 && put == 0)
		r = stint_msg_put_uint_array(m, STINT_K_TASKS, NULL, 0);
	stint_store_task_list_free(tasks, n);
	if (r != 0) {
		stint_msg_free(m);
		return -1;
	}
	return stintd_msg_reply(rep, m);
}

/* AUDIT_TREE: the replies stay well under a frame. */
#define TREE_LINES_MAX 1000
#define TREE_BYTES_MAX (48 * 1024)

/* Whether a record is a SIGN record (sign-allowed, sign-refused,
 * sign-error) of one of the tasks (the log's own format: the fields are
 * written by stintd, a quote inside a value is escaped). */
static bool
sign_of(const char *line, const struct stint_task *tasks, size_t n)
{
	const char *p = strstr(line, "\"task\":\"");
	size_t i, len;

	if (strstr(line, "\"event\":\"sign-") == NULL || p == NULL ||
	    strstr(line, "\"event\":\"sign-refused-aggregate\"") != NULL)
		return false;
	p += strlen("\"task\":\"");
	for (i = 0; i < n; i++) {
		len = strlen(tasks[i].id);
		if (strncmp(p, tasks[i].id, len) == 0 && p[len] == '"')
			return true;
	}
	return false;
}

/* The last count SIGN records of the tree in the current log, oldest
 * first, kept in a ring of malloc'ed lines. */
static int
tree_lines(const char *path, const struct stint_task *tasks, size_t n,
	   char **ring, size_t count, size_t *first, size_t *got)
{
	char *line = NULL;
	size_t cap = 0, k;
	ssize_t len;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL)
		return -1;
	*first = *got = 0;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (!sign_of(line, tasks, n))
			continue;
		k = (*first + *got) % count;
		if (*got == count) {
			free(ring[*first]);
			*first = (*first + 1) % count;
		} else {
			(*got)++;
		}
		if ((ring[k] = strdup(line)) == NULL) {
			free(line);
			fclose(f);
			return -1;
		}
	}
	free(line);
	fclose(f);
	return 0;
}

int
stintd_op_audit_tree(struct stintd *d, const struct stint_peer *peer,
		     const struct stint_msg *req, struct stint_reply *rep)
{
	char id[STINT_TASK_ID_MAX + 1], **ring;
	struct stint_task *tasks = NULL;
	struct stint_msg *m = NULL;
	uint64_t count = 100;
	size_t n = 0, first = 0, got = 0, i, skip = 0, bytes = 0;
	int r, ret = -1;

	(void)peer;
	if (stint_dec_name_req(req, STINT_K_TASK, id, sizeof(id)) != 0 ||
	    (stint_msg_has(req, STINT_K_COUNT) &&
	     (stint_msg_get_uint(req, STINT_K_COUNT, &count) != 0 ||
	      count == 0 || count > TREE_LINES_MAX)))
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "AUDIT_TREE needs a task id and a "
					  "count of 1..%d",
					  TREE_LINES_MAX);
	r = stint_store_task_tree(d->store, id, &tasks, &n);
	if (r == STINT_STORE_NOT_FOUND)
		return stintd_error_reply(rep, STINT_E_NOT_FOUND,
					  "no task '%s'", id);
	if (r != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "task store unavailable");
	if ((ring = calloc(count, sizeof(*ring))) == NULL)
		goto out;
	if (tree_lines(d->cfg.audit.path, tasks, n, ring, count, &first,
		       &got) != 0) {
		ret = stintd_error_reply(rep, STINT_E_INTERNAL,
					 "cannot read the audit log %s",
					 d->cfg.audit.path);
		goto out;
	}
	/* The newest that fit a frame. */
	for (i = got; i > 0; i--) {
		bytes += strlen(ring[(first + i - 1) % count]) + 8;
		if (bytes > TREE_BYTES_MAX) {
			skip = i;
			break;
		}
	}
	if ((m = stint_msg_reply_ok()) == NULL)
		goto out;
	r = stint_msg_put_text(m, STINT_K_PATH, d->cfg.audit.path);
	for (i = skip; i < got && r == 0; i++)
		r = stint_msg_append_text(m, STINT_K_LINES,
					  ring[(first + i) % count]);
	if (r == 0 && got == skip)
		r = stint_msg_put_uint_array(m, STINT_K_LINES, NULL, 0);
	if (r == 0) {
		ret = stintd_msg_reply(rep, m);
		m = NULL;
	}
out:
	stint_msg_free(m);
	for (i = 0; ring != NULL && i < got; i++)
		free(ring[(first + i) % count]);
	free(ring);
	stint_store_task_list_free(tasks, n);
	return ret;
}
