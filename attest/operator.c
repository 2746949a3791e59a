/*
 * Who may do what on admin.sock (operator.h): root and stintd's own uid
 * administer; a registered operator may act for the agents it names, for
 * the ops the op table marks STINTD_OP_OPERATOR; nobody else gets past
 * accept. Every refusal past accept is audited as "operator-denied".
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/audit_pending.h"
#include "attest/daemon.h"
#include "attest/operator.h"
#include "attest/ops.h"
#include "common/ident.h"
#include "common/log.h"
#include "common/msg.h"

/* The operator uids, for the accept loop (which never waits for the
 * store). The store stays the truth for what an operator may do. */
static struct {
	pthread_mutex_t lock;
	uid_t *uids;
	size_t n, cap;
} set = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool
set_has_locked(uid_t uid)
{
	size_t i;

	for (i = 0; i < set.n; i++)
		if (set.uids[i] == uid)
			return true;
	return false;
}

static int
set_add(uid_t uid)
{
	uid_t *grown;
	int r = 0;

	pthread_mutex_lock(&set.lock);
	if (!set_has_locked(uid)) {
		if (set.n == set.cap) {
			size_t cap = set.cap ? set.cap * 2 : 8;

			if ((grown = realloc(set.uids, cap * sizeof(*grown))) ==
			    NULL) {
				r = -1;
				goto out;
			}
			set.uids = grown;
			set.cap = cap;
		}
		set.uids[set.n++] = uid;
	}
out:
	pthread_mutex_unlock(&set.lock);
	return r;
}

static void
set_del(uid_t uid)
{
	size_t i;

	pthread_mutex_lock(&set.lock);
	for (i = 0; i < set.n; i++) {
		if (set.uids[i] == uid) {
			set.uids[i] = set.uids[--set.n];
			break;
		}
	}
	pthread_mutex_unlock(&set.lock);
}

int
stintd_operators_load(struct stintd *d, char *err, size_t errlen)
{
	stint_operator *ops = NULL;
	size_t n = 0, i;

	if (stint_store_operator_list(d->store, &ops, &n) != STINT_STORE_OK) {
		snprintf(err, errlen, "cannot read the operators table");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (set_add(ops[i].uid) != 0) {
			free(ops);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if (n > 0)
		log_info("%zu operator(s) may use admin.sock for their agents",
			 n);
	free(ops);
	return 0;
}

/* prov: the set becomes the store's operators (after operators.d was
 * reconciled), in one swap. */
int
stintd_operators_sync(struct stintd *d)
{
	stint_operator *ops = NULL;
	size_t n = 0, i;
	uid_t *uids, *old;

	if (stint_store_operator_list(d->store, &ops, &n) != STINT_STORE_OK)
		return -1;
	if ((uids = calloc(n ? n : 1, sizeof(*uids))) == NULL) {
		free(ops);
		return -1;
	}
	for (i = 0; i < n; i++)
		uids[i] = ops[i].uid;
	free(ops);
	pthread_mutex_lock(&set.lock);
	old = set.uids;
	set.uids = uids;
	set.n = n;
	set.cap = n ? n : 1;
	pthread_mutex_unlock(&set.lock);
	free(old);
	return 0;
}

enum stintd_role
stintd_uid_role(const struct stintd *d, uid_t uid)
{
	bool op;

	if (uid == 0 || uid == d->uid)
		return STINTD_ROLE_ADMIN;
	pthread_mutex_lock(&set.lock);
	op = set_has_locked(uid);
	pthread_mutex_unlock(&set.lock);
	return op ? STINTD_ROLE_OPERATOR : STINTD_ROLE_NONE;
}

int
stintd_actor_of(struct stintd *d, const struct stint_peer *peer,
		struct stintd_actor *a)
{
	int r;

	memset(a, 0, sizeof(*a));
	if (stintd_uid_role(d, peer->uid) == STINTD_ROLE_ADMIN) {
		a->role = STINTD_ROLE_ADMIN;
		return 0;
	}
	r = stint_store_operator_by_uid(d->store, peer->uid, &a->op);
	if (r == STINT_STORE_OK)
		a->role = STINTD_ROLE_OPERATOR;
	else
		a->role = STINTD_ROLE_NONE;
	return r == STINT_STORE_OK || r == STINT_STORE_NOT_FOUND ? 0 : -1;
}

bool
stintd_actor_may(const struct stintd_actor *a, const char *agent)
{
	size_t i;

	if (a->role == STINTD_ROLE_ADMIN)
		return true;
	if (a->role != STINTD_ROLE_OPERATOR || agent == NULL)
		return false;
	for (i = 0; i < a->op.n_agents; i++)
		if (strcmp(a->op.agents[i], agent) == 0)
			return true;
	return false;
}

void
stintd_operator_audit_deny(struct stintd *d, const struct stint_peer *peer,
			   const char *who, const char *agent, const char *task,
			   const char *reason)
{
	char detail[STINT_NAME_MAX + 16];
	struct stint_audit_event ev = {.event = "operator-denied",
				       .agent = agent,
				       .task = task,
				       .peer = peer,
				       .decision = "deny",
				       .reason = reason,
				       .detail = detail};

	snprintf(detail, sizeof(detail), "operator=%s", who ? who : "-");
	if (stint_audit_pending_append(d->audit, &ev) < 0)
		log_err("audit log write failed for operator-denied");
	log_warn("admin.sock: uid %ld (pid %ld): %s", (long)peer->uid,
		 (long)peer->pid, reason);
}

/* The refusal for a peer that is no operator (any more). */
static bool
deny_none(struct stintd *d, const struct stint_peer *peer, const char *agent,
	  struct stint_reply *rep, int *ret)
{
	char why[160];

	snprintf(why, sizeof(why),
		 "uid %ld is not an operator: only root, stintd's user and "
		 "registered operators may use admin.sock",
		 (long)peer->uid);
	stintd_operator_audit_deny(d, peer, NULL, agent, NULL, why);
	*ret = stintd_error_reply(rep, STINT_E_DENIED, "%s", why);
	return false;
}

static bool
store_down(struct stint_reply *rep, int *ret)
{
	*ret = stintd_error_reply(rep, STINT_E_INTERNAL,
				  "operator store unavailable");
	return false;
}

bool
stintd_may_act_for_agent(struct stintd *d, const struct stint_peer *peer,
			 const char *agent, const char *what,
			 struct stintd_actor *out, struct stint_reply *rep,
			 int *ret)
{
	struct stintd_actor local, *a = out ? out : &local;
	char why[256];

	if (stintd_actor_of(d, peer, a) != 0)
		return store_down(rep, ret);
	if (stintd_actor_may(a, agent))
		return true;
	if (a->role == STINTD_ROLE_NONE)
		return deny_none(d, peer, agent, rep, ret);
	snprintf(why, sizeof(why),
		 "operator '%s' may not act for agent '%s' (%s)", a->op.name,
		 agent ? agent : "?", what);
	stintd_operator_audit_deny(d, peer, a->op.name, agent, NULL, why);
	*ret = stintd_error_reply(rep, STINT_E_DENIED, "%s", why);
	return false;
}

bool
stintd_may_call(struct stintd *d, const struct stint_peer *peer,
		const struct stintd_op *e, struct stint_reply *rep, int *ret)
{
	struct stintd_actor a;
	char why[256];

	if (stintd_uid_role(d, peer->uid) == STINTD_ROLE_ADMIN)
		return true;
	if (stintd_actor_of(d, peer, &a) != 0)
		return store_down(rep, ret);
	if (a.role == STINTD_ROLE_NONE)
		return deny_none(d, peer, NULL, rep, ret);
	if (e->flags & STINTD_OP_OPERATOR)
		return true;
	snprintf(why, sizeof(why),
		 "operator '%s' may not use %s: only root and stintd's user "
		 "may",
		 a.op.name, e->name);
	stintd_operator_audit_deny(d, peer, a.op.name, NULL, NULL, why);
	*ret = stintd_error_reply(rep, STINT_E_DENIED, "%s", why);
	return false;
}

bool
stintd_may_act_for_task(struct stintd *d, const struct stint_peer *peer,
			const char *task_id, const char *what,
			struct stint_reply *rep, int *ret)
{
	struct stint_task t;
	bool ok;
	int r;

	if (stintd_uid_role(d, peer->uid) == STINTD_ROLE_ADMIN)
		return true;
	memset(&t, 0, sizeof(t));
	r = stint_store_task_get(d->store, task_id, &t);
	if (r == STINT_STORE_NOT_FOUND)
		return true; /* the handler says "no task" */
	if (r != STINT_STORE_OK)
		return store_down(rep, ret);
	ok = stintd_may_act_for_agent(d, peer, t.agent, what, NULL, rep, ret);
	stint_task_clear(&t);
	return ok;
}

bool
stintd_operator_ttl(struct stintd *d, const struct stint_peer *peer,
		    const struct stintd_actor *a, const char *agent,
		    uint64_t *ttl, struct stint_reply *rep, int *ret)
{
	char why[256];

	if (a->role != STINTD_ROLE_OPERATOR || a->op.max_ttl == 0)
		return true;
	if (*ttl == 0) {
		*ttl = d->cfg.default_ttl < a->op.max_ttl ? d->cfg.default_ttl
							  : a->op.max_ttl;
		return true;
	}
	if (*ttl <= a->op.max_ttl)
		return true;
	snprintf(why, sizeof(why),
		 "ttl %llus is above operator '%s''s max TTL (%llus)",
		 (unsigned long long)*ttl, a->op.name,
		 (unsigned long long)a->op.max_ttl);
	stintd_operator_audit_deny(d, peer, a->op.name, agent, NULL, why);
	*ret = stintd_error_reply(rep, STINT_E_LIMIT, "%s", why);
	return false;
}

/* --- OPERATOR_ADD / OPERATOR_LIST / OPERATOR_REMOVE (admins only) ------ */

static int
audit_op(struct stintd *d, const struct stint_peer *peer, const char *event,
	 const char *detail)
{
	struct stint_audit_event ev = {.event = event,
				       .peer = peer,
				       .decision = "allow",
				       .detail = detail};

	return stint_audit_append_in_order(d->audit, &ev);
}

/* Names: the agents' charset; no duplicates; each agent registered. */
static int
check_operator(struct stintd *d, const stint_operator *o,
	       struct stint_reply *rep, bool *bad)
{
	struct stint_agent ag;
	size_t i, j;
	int r;

	*bad = true;
	if (!stint_name_ok(o->name))
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "operator name must be 1-64 "
					  "characters of A-Z a-z 0-9 . _ -");
	if (o->uid == 0 || o->uid == d->uid)
		return stintd_error_reply(
			rep, STINT_E_BAD_REQUEST,
			"uid %u administers stintd already: an operator "
			"needs a uid of its own",
			o->uid);
	for (i = 0; i < o->n_agents; i++) {
		if (!stint_name_ok(o->agents[i]))
			return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
						  "bad agent name '%s'",
						  o->agents[i]);
		for (j = 0; j < i; j++)
			if (strcmp(o->agents[i], o->agents[j]) == 0)
				return stintd_error_reply(
					rep, STINT_E_BAD_REQUEST,
					"agent '%s' is named twice",
					o->agents[i]);
		r = stint_store_agent_get(d->store, o->agents[i], &ag);
		if (r == STINT_STORE_NOT_FOUND)
			return stintd_error_reply(rep, STINT_E_NOT_FOUND,
						  "no agent named '%s'",
						  o->agents[i]);
		if (r != STINT_STORE_OK)
			return stintd_error_reply(rep, STINT_E_INTERNAL,
						  "agent store unavailable");
	}
	if (o->max_ttl > d->cfg.max_ttl)
		return stintd_error_reply(
			rep, STINT_E_LIMIT,
			"max TTL %llus is above stintd's max_ttl (%llus)",
			(unsigned long long)o->max_ttl,
			(unsigned long long)d->cfg.max_ttl);
	*bad = false;
	return 0;
}

static void
operator_detail(const stint_operator *o, char *buf, size_t cap)
{
	size_t i, off;

	off = (size_t)snprintf(
		buf, cap, "operator=%s uid=%u max_ttl=%llus agents=", o->name,
		o->uid, (unsigned long long)o->max_ttl);
	for (i = 0; i < o->n_agents && off < cap; i++)
		off += (size_t)snprintf(buf + off, cap - off, "%s%s",
					i ? "," : "", o->agents[i]);
}

/* prov: an operator an operators.d file declares is changed there only;
 * true (why set) for one. */
static bool
file_operator(struct stintd *d, const char *name, char *why, size_t cap)
{
	stint_operator *ops = NULL;
	size_t n = 0, i;
	bool found = false;

	if (stint_store_operator_list(d->store, &ops, &n) != STINT_STORE_OK)
		return false;
	for (i = 0; i < n && !found; i++)
		if (strcmp(ops[i].name, name) == 0 &&
		    ops[i].source[0] != '\0') {
			snprintf(why, cap,
				 "operator '%s' is declared in %s: change or "
				 "remove it there, then run 'stint reload'",
				 name, ops[i].source);
			found = true;
		}
	free(ops);
	return found;
}

int
stintd_op_operator_add(struct stintd *d, const struct stint_peer *peer,
		       const struct stint_msg *req, struct stint_reply *rep)
{
	char err[256], detail[STINT_OPERATOR_AGENTS_MAX * 66 + 128];
	stint_operator o;
	uint64_t bad;
	bool refused;
	int r;

	if (stint_dec_operator_add_req(req, &o, &bad) != 0)
		return stintd_error_reply(
			rep, STINT_E_BAD_REQUEST, "%s",
			bad == STINT_K_OPERATOR  ? "OPERATOR_ADD needs a name"
			: bad == STINT_K_UID     ? "operator needs a uid"
			: bad == STINT_K_MAX_TTL ? "bad max_ttl"
						 : "operator needs 1-32 "
						   "agent names");
	if ((r = check_operator(d, &o, rep, &refused)) != 0 || refused)
		return r;
	o.created = (uint64_t)stintd_now();
	r = stint_store_operator_add(d->store, &o, err, sizeof(err));
	if (r == STINT_STORE_EXISTS &&
	    file_operator(d, o.name, err, sizeof(err)))
		return stintd_error_reply(rep, STINT_E_DENIED, "%s", err);
	if (r == STINT_STORE_EXISTS)
		return stintd_error_reply(rep, STINT_E_EXISTS, "%s", err);
	if (r != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_INTERNAL, "%s", err);
	operator_detail(&o, detail, sizeof(detail));
	if (audit_op(d, peer, "operator-add", detail) != 0) {
		stint_operator gone;

		(void)stint_store_operator_remove(d->store, o.name, &gone);
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "the audit log refuses records: "
					  "operator '%s' not added",
					  o.name);
	}
	if (set_add(o.uid) != 0)
		log_err("operator %s: out of memory: its uid cannot connect "
			"until stintd restarts",
			o.name);
	log_info("operator %s added (uid %u)", o.name, o.uid);
	return stintd_msg_reply(rep, stint_msg_reply_ok());
}

int
stintd_op_operator_list(struct stintd *d, const struct stint_peer *peer,
			const struct stint_msg *req, struct stint_reply *rep)
{
	stint_operator *ops = NULL;
	struct stint_msg *m;
	size_t n = 0, i;
	int r = 0;

	(void)peer;
	(void)req;
	if (stint_store_operator_list(d->store, &ops, &n) != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "operator store unavailable");
	if ((m = stint_msg_reply_ok()) == NULL) {
		free(ops);
		return -1;
	}
	for (i = 0; i < n && r == 0; i++)
		r = stint_put_operator_list_entry(m, &ops[i]);
	if (r == 0)
		r = stint_put_operator_list_end(m, n);
	free(ops);
	if (r != 0) {
		stint_msg_free(m);
		return -1;
	}
	return stintd_msg_reply(rep, m);
}

int
stintd_op_operator_remove(struct stintd *d, const struct stint_peer *peer,
			  const struct stint_msg *req, struct stint_reply *rep)
{
	char name[STINT_NAME_MAX + 1],
		detail[STINT_OPERATOR_AGENTS_MAX * 66 + 128];
	stint_operator o;
	int r;

	if (stint_dec_name_req(req, STINT_K_OPERATOR, name, sizeof(name)) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "OPERATOR_REMOVE needs a name");
	if (file_operator(d, name, detail, sizeof(detail)))
		return stintd_error_reply(rep, STINT_E_DENIED, "%s", detail);
	r = stint_store_operator_remove(d->store, name, &o);
	if (r == STINT_STORE_NOT_FOUND)
		return stintd_error_reply(rep, STINT_E_NOT_FOUND,
					  "no operator named '%s'", name);
	if (r != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "operator store unavailable");
	/* From now on its uid is refused at accept, and at its next request
	 * on a connection it still holds (the store says NONE). */
	set_del(o.uid);
	operator_detail(&o, detail, sizeof(detail));
	if (audit_op(d, peer, "operator-remove", detail) != 0)
		log_err("operator %s removed without its audit record", name);
	log_info("operator %s removed (uid %u)", o.name, o.uid);
	return stintd_msg_reply(rep, stint_msg_reply_ok());
}
