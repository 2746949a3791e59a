/*
 * The admin socket: what the stint CLI does. Only root, stintd's own uid
 * and operators get this far (server.c checks SO_PEERCRED at accept);
 * operators only into the ops ops.c marks STINTD_OP_OPERATOR, whose
 * handlers check the agent (operator.h). Field tables: docs/protocol.md.
 */

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "attest/agents_dir.h"
#include "attest/audit_pending.h"
#include "attest/ca.h"
#include "attest/audit_anchor.h"
#include "attest/daemon.h"
#include "attest/delegate.h"
#include "attest/operator.h"
#include "attest/ops.h"
#include "attest/task.h"
#include "attest/task_info.h"
#include "attest/watch.h"
#include "common/ident.h"
#include "common/log.h"
#include "common/mechanism.h"
#include "common/msg.h"

#define TASK_PAGE   64
#define KILL_REASON "kill switch"
#define TAIL_MAX    1000

static int
ok_reply(struct stint_reply *rep, struct stint_msg *m, int r)
{
	if (r != 0) {
		stint_msg_free(m);
		return -1;
	}
	return stintd_msg_reply(rep, m);
}

/* -1 when the log refuses the record (the caller undoes what it did). */
static int
audit_admin(struct stintd *d, const char *event, const char *agent,
	    const char *task, const struct stint_peer *peer, const char *detail)
{
	struct stint_audit_event ev = {.event = event,
				       .agent = agent,
				       .task = task,
				       .peer = peer,
				       .decision = "allow",
				       .detail = detail};

	if (stint_audit_append_in_order(d->audit, &ev) == 0)
		return 0;
	log_err("audit log write failed for %s", event);
	return -1;
}

/* A success whose record (or state.db entry) is still pending says so
 * in its note (stint_done_rep); the CLI prints it as a warning. */
static int
ok_note_reply(struct stint_reply *rep, struct stint_msg *m, const char *note)
{
	struct stint_done_rep done;

	if (m == NULL)
		return -1;
	memset(&done, 0, sizeof(done));
	snprintf(done.note, sizeof(done.note), "%s", note);
	return ok_reply(rep, m, stint_put_done_rep(m, &done));
}

/* ident: the selectors of an AGENT_ADD, checked; NULL or why not. */
static const char *
agent_selectors(const struct stintd *d, struct stint_agent_add_req *ar,
		struct stint_agent *a)
{
	const char *why = stint_selectors_check(&ar->sel);

	(void)d;
	if (why != NULL)
		return why;
	if ((ar->sel.exe[0] != '\0' || ar->sel.exe_sha256[0] != '\0') &&
	    !stint_peer_can_read_exe(ar->uid))
		return "stintd cannot read the executables of other uids' "
		       "processes (it is not root and lacks CAP_SYS_PTRACE), "
		       "so --exe and --exe-sha256 could never match: grant "
		       "CAP_SYS_PTRACE in stintd's unit (docs/identity.md) "
		       "or use --cgroup/--unit";
	a->sel = ar->sel;
	return NULL;
}

/* deleg: a delegate_to name that is no agent (yet), a typo perhaps,
 * delegates to nobody until such an agent is added. */
static int
unknown_delegates(struct stintd *d, const struct stint_agent *a, char *buf,
		  size_t cap, int n)
{
	char list[STINT_DELEGATE_TO_MAX + 1], *tok, *save = NULL;
	struct stint_agent *other = malloc(sizeof(*other));

	snprintf(list, sizeof(list), "%s", a->delegate_to);
	for (tok = strtok_r(list, ",", &save); tok != NULL && other != NULL;
	     tok = strtok_r(NULL, ",", &save))
		if (n >= 0 && (size_t)n < cap && strcmp(tok, a->name) != 0 &&
		    stint_store_agent_get(d->store, tok, other) ==
			    STINT_STORE_NOT_FOUND)
			n += snprintf(buf + n, cap - (size_t)n,
				      "%s--delegate-to names '%s', which is "
				      "not a registered agent",
				      n > 0 ? "; " : "", tok);
	free(other);
	return n;
}

/* Warnings for the operator: uid alone is weak; overlapping agents;
 * delegate_to naming no agent. */
static void
agent_add_note(struct stintd *d, const struct stint_agent *a,
	       const char *overlap, char *buf, size_t cap)
{
	int n = 0;

	buf[0] = '\0';
	if (stint_selectors_empty(&a->sel))
		n = snprintf(buf, cap,
			     "any process of uid %u%s can act as agent '%s' "
			     "(pin it with --exe, --exe-sha256, --cgroup, "
			     "--unit or --lsm-label, or use 'stint run')",
			     a->uid, a->gid >= 0 ? " and its gid" : "",
			     a->name);
	if (overlap[0] != '\0' && n >= 0 && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n,
			      "%sagent '%s' can match the same processes as "
			      "agent '%s': a process that matches both sees a "
			      "token for each",
			      n > 0 ? "; " : "", a->name, overlap);
	(void)unknown_delegates(d, a, buf, cap, n);
}

/* prov: an agent an agents.d file declares is changed in that file only,
 * and with [stintd] agents = files-only every agent is; true (why set)
 * when the CLI may not add or remove name. */
static bool
file_agent(struct stintd *d, const char *name, char *why, size_t cap)
{
	struct stint_agent a;

	if (d->cfg.agents_files_only) {
		snprintf(why, cap,
			 "agents are declared in files only ([stintd] agents "
			 "= files-only in stint.conf): declare or remove "
			 "agent '%s' in %.256s, then run 'stint reload'",
			 name, d->cfg.agents_dir);
		return true;
	}
	if (stint_store_agent_get(d->store, name, &a) != STINT_STORE_OK ||
	    a.source[0] == '\0')
		return false;
	snprintf(why, cap,
		 "agent '%s' is declared in %s: change or remove it there, "
		 "then reload stintd (SIGHUP)",
		 name, a.source);
	return true;
}

int
stintd_op_agent_add(struct stintd *d, const struct stint_peer *peer,
		    const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_agent_add_req ar;
	struct stint_agent a;
	const struct stint_mech *all;
	char err[512], detail[4096], note[512], overlap[STINT_NAME_MAX + 1];
	const char *why;
	uint64_t bad;
	size_t n, i;
	int r, dec;

	memset(&a, 0, sizeof(a));
	dec = stint_dec_agent_add_req(req, &ar, &bad);
	if (!stint_name_ok(ar.name))
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "agent name must be 1-64 characters "
					  "of A-Z a-z 0-9 . _ -");
	if (dec != 0 && bad == STINT_K_UID)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "agent needs a uid");
	if (dec != 0 && bad == STINT_K_GID)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST, "bad gid");
	if (dec != 0 && bad == STINT_K_MAX_TTL)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "bad max_ttl");
	memcpy(a.name, ar.name, sizeof(a.name));
	a.uid = ar.uid;
	a.gid = ar.has_gid ? (int64_t)ar.gid : -1;
	a.max_ttl = ar.has_max_ttl ? ar.max_ttl : d->cfg.max_ttl;
	if (a.max_ttl > d->cfg.max_ttl)
		return stintd_error_reply(
			rep, STINT_E_LIMIT,
			"max TTL %llus is above stintd's max_ttl "
			"(%llus)",
			(unsigned long long)a.max_ttl,
			(unsigned long long)d->cfg.max_ttl);
	if (dec != 0 && bad == STINT_K_AUDIENCES) /* aud */
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "audiences: too long");
	if (dec != 0 &&
	    (bad == STINT_K_DELEGATE_TO || bad == STINT_K_MAX_DEPTH))
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "bad delegate-to or max-depth");
	if (dec != 0 && bad != STINT_K_MECHS)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "bad selector (too long?)");
	if (dec != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "bad mechanism list");
	if ((why = agent_selectors(d, &ar, &a)) != NULL)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST, "%s", why);
	if ((why = stint_audiences_check(ar.audiences)) != NULL) /* aud */
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "audiences: %s", why);
	memcpy(a.audiences, ar.audiences, sizeof(a.audiences));
	if ((why = stint_delegate_agent_set(&ar, &a)) != NULL) /* deleg */
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST, "%s", why);
	if (ar.n_mechs > 0) {
		memcpy(a.mechs, ar.mechs, sizeof(a.mechs));
		a.n_mechs = ar.n_mechs;
		for (i = 0; i < a.n_mechs; i++)
			if (stint_mech_find(a.mechs[i]) == NULL)
				return stintd_error_reply(
					rep, STINT_E_MECHANISM,
					"mechanism 0x%llx is not supported",
					(unsigned long long)a.mechs[i]);
	} else {
		all = stint_mech_all(&n);
		for (i = 0; i < n && i < STINT_MECHS_MAX; i++)
			a.mechs[i] = all[i].mech;
		a.n_mechs = i;
	}
	a.created = stintd_now();
	if (d->cfg.agents_files_only && file_agent(d, a.name, err, sizeof(err)))
		return stintd_error_reply(rep, STINT_E_DENIED, "%s", err);
	r = stint_store_agent_add(d->store, &a, overlap, err, sizeof(err));
	if (r == STINT_STORE_EXISTS && file_agent(d, a.name, err, sizeof(err)))
		return stintd_error_reply(rep, STINT_E_DENIED, "%s", err);
	if (r == STINT_STORE_EXISTS)
		return stintd_error_reply(rep, STINT_E_EXISTS, "%s", err);
	if (r != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_INTERNAL, "%s", err);
	stintd_agent_detail(&a, detail, sizeof(detail));
	/* No record, no agent. */
	if (audit_admin(d, "agent-add", a.name, NULL, peer, detail) != 0) {
		if (stint_store_agent_remove(d->store, a.name) !=
		    STINT_STORE_OK)
			log_err("agent %s: added without its audit record and "
				"cannot be removed again",
				a.name);
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "the audit log refuses records: "
					  "agent '%s' not added",
					  a.name);
	}
	log_info("agent %s added (uid %u)", a.name, a.uid);
	agent_add_note(d, &a, overlap, note, sizeof(note));
	return ok_note_reply(rep, stint_msg_reply_ok(), note);
}

int
stintd_op_agent_list(struct stintd *d, const struct stint_peer *peer,
		     const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_agent *agents = NULL;
	struct stint_agent_info info;
	struct stint_msg *m;
	size_t n = 0, i;
	int r = 0;

	(void)peer;
	(void)req;
	if (stint_store_agent_list(d->store, &agents, &n) != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "agent store unavailable");
	if ((m = stint_msg_reply_ok()) == NULL) {
		free(agents);
		return -1;
	}
	for (i = 0; i < n && r == 0; i++) {
		memset(&info, 0, sizeof(info));
		memcpy(info.name, agents[i].name, sizeof(info.name));
		info.uid = agents[i].uid;
		info.has_gid = agents[i].gid >= 0;
		info.gid = info.has_gid ? (uint32_t)agents[i].gid : 0;
		info.max_ttl = agents[i].max_ttl;
		memcpy(info.mechs, agents[i].mechs, sizeof(info.mechs));
		info.n_mechs = agents[i].n_mechs;
		info.created = (uint64_t)agents[i].created;
		info.sel = agents[i].sel;
		memcpy(info.audiences, agents[i].audiences,
		       sizeof(info.audiences)); /* aud */
		memcpy(info.source, agents[i].source, sizeof(info.source));
		stint_delegate_agent_info(&agents[i], &info); /* deleg */
		r = stint_put_agent_list_entry(m, &info);
	}
	if (r == 0)
		r = stint_put_agent_list_end(m, n);
	free(agents);
	return ok_reply(rep, m, r);
}

int
stintd_op_agent_remove(struct stintd *d, const struct stint_peer *peer,
		       const struct stint_msg *req, struct stint_reply *rep)
{
	char name[STINT_NAME_MAX + 1], note[512];
	struct stint_done_rep done = {0};
	struct stint_msg *m;
	size_t n = 0;
	int r;

	if (stint_dec_name_req(req, STINT_K_AGENT, name, sizeof(name)) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "AGENT_REMOVE needs an agent");
	if (file_agent(d, name, note, sizeof(note)))
		return stintd_error_reply(rep, STINT_E_DENIED, "%s", note);
	/* Its tasks die with it, atomically with respect to task start,
	 * keys included, before we answer. */
	r = stint_task_remove_agent(d, name, peer, &n, note, sizeof(note));
	if (r == STINT_STORE_NOT_FOUND)
		return stintd_error_reply(rep, STINT_E_NOT_FOUND,
					  "no agent named '%s'", name);
	if (r != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "agent store unavailable: the agent "
					  "stays, its %zu live task(s) were "
					  "ended",
					  n);
	log_info("agent %s removed, %zu live task(s) ended", name, n);
	done.has_count = true;
	done.count = n;
	snprintf(done.note, sizeof(done.note), "%s", note);
	if ((m = stint_msg_reply_ok()) == NULL)
		return -1;
	return ok_reply(rep, m, stint_put_done_rep(m, &done));
}

int
stintd_op_task_start(struct stintd *d, const struct stint_peer *peer,
		     const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_task_start_req sr;
	struct stint_task_request tr = {.agent = sr.agent};
	struct stintd_actor actor;
	struct stint_bind_start bs;
	struct stint_task_info ti;
	struct stint_task t;
	struct stint_msg *m;
	uint64_t bad;
	char err[256];
	int status, r;

	if (stint_dec_task_start_req(req, &sr, &bad) != 0) {
		switch (bad) {
		case STINT_K_AGENT:
			return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
						  "TASK_START needs an agent");
		case STINT_K_TTL:
			return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
						  "bad ttl");
		case STINT_K_KEY_TYPE:
			return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
						  "unknown key type");
		case STINT_K_MAX_SIGS:
			return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
						  "bad max_sigs");
		case STINT_K_BIND_PID:
		case STINT_K_RUN_PID:
			return stintd_error_reply(
				rep, STINT_E_BAD_REQUEST,
				"bad pid, or more than one binding");
		case STINT_K_AUDIENCES: /* aud */
			return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
						  "audiences: too long");
		case STINT_K_BIND_CGROUP:
			return stintd_error_reply(
				rep, STINT_E_BAD_REQUEST,
				"bind cgroup must be an absolute cgroup path "
				"of at most %d bytes",
				STINT_CGROUP_MAX);
		default:
			return stintd_error_reply(
				rep, STINT_E_BAD_REQUEST,
				"intent must be text of at most %d bytes",
				STINT_INTENT_MAX);
		}
	}
	if (!stintd_may_act_for_agent(d, peer, sr.agent, "task start", &actor,
				      rep, &r))
		return r;
	tr.ttl = sr.ttl;
	if (!stintd_operator_ttl(d, peer, &actor, sr.agent, &tr.ttl, rep, &r))
		return r;
	tr.key_type = sr.key_type;
	tr.max_sigs = sr.max_sigs;
	tr.intent = sr.has_intent ? sr.intent : NULL;
	tr.audiences = sr.has_audiences ? sr.audiences : NULL; /* aud */
	status = stint_task_start_bound(d, &tr, &sr, peer, &bs, &t, err,
					sizeof(err), NULL);
	if (status != STINT_OK)
		return stintd_error_reply(rep, status, "%s", err);
	if ((m = stint_msg_reply_ok()) == NULL) {
		stint_task_clear(&t);
		return -1;
	}
	stintd_task_info(&t, STINTD_TASK_FULL, &ti);
	r = stint_put_task_start_rep(m, &ti, bs.note);
	stint_task_clear(&t);
	return ok_reply(rep, m, r);
}

/* runcg: stint run's first step (watch.h): a cgroup for its waiting
 * command, which the TASK_START that follows binds the task to. */
int
stintd_op_run_prepare(struct stintd *d, const struct stint_peer *peer,
		      const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_run_prepare_req pr;
	struct stint_run_prepare_rep out;
	struct stintd_actor actor;
	struct stint_agent a;
	struct stint_msg *m;
	uint64_t bad;
	char err[256];
	int status, r;

	if (stint_dec_run_prepare_req(req, &pr, &bad) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  bad == STINT_K_AGENT
						  ? "RUN_PREPARE needs an agent"
						  : "RUN_PREPARE needs the "
						    "command's pid");
	if (!stintd_may_act_for_agent(d, peer, pr.agent, "run prepare", &actor,
				      rep, &r))
		return r;
	if (stint_store_agent_get(d->store, pr.agent, &a) != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_NOT_FOUND,
					  "no agent named '%s' (register it "
					  "with stint agent add)",
					  pr.agent);
	status = stint_watch_run_prepare(d, peer, (pid_t)pr.run_pid, &out, err,
					 sizeof(err));
	if (status != STINT_OK)
		return stintd_error_reply(rep, status, "%s", err);
	if ((m = stint_msg_reply_ok()) == NULL)
		return -1;
	return ok_reply(rep, m, stint_put_run_prepare_rep(m, &out));
}

int
stintd_op_task_end(struct stintd *d, const struct stint_peer *peer,
		   const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_task_end_req er;
	char err[256], note[512];
	uint64_t bad;
	int status, r;

	if (stint_dec_task_end_req(req, &er, &bad) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  bad == STINT_K_TASK
						  ? "TASK_END needs a task id"
						  : "bad reason");
	if (!stintd_may_act_for_task(d, peer, er.task, "task end", rep, &r))
		return r;
	status = stint_task_end(d, er.task,
				er.reason[0] ? er.reason : "ended by admin",
				peer, err, sizeof(err), note, sizeof(note));
	if (status != STINT_OK)
		return stintd_error_reply(rep, status, "%s", err);
	return ok_note_reply(rep, stint_msg_reply_ok(), note);
}

int
stintd_op_task_show(struct stintd *d, const struct stint_peer *peer,
		    const struct stint_msg *req, struct stint_reply *rep)
{
	char id[STINT_TASK_ID_MAX + 1];
	struct stint_task_info ti;
	struct stint_task t;
	struct stint_msg *m;
	int r;

	if (stint_dec_name_req(req, STINT_K_TASK, id, sizeof(id)) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "TASK_SHOW needs a task id");
	if (!stintd_may_act_for_task(d, peer, id, "task show", rep, &r))
		return r;
	memset(&t, 0, sizeof(t));
	r = stint_store_task_get(d->store, id, &t);
	if (r == STINT_STORE_NOT_FOUND)
		return stintd_error_reply(rep, STINT_E_NOT_FOUND,
					  "no task '%s'", id);
	if (r != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "task store unavailable");
	if ((m = stint_msg_reply_ok()) == NULL) {
		stint_task_clear(&t);
		return -1;
	}
	stintd_task_info(&t, STINTD_TASK_FULL, &ti);
	r = stint_put_task_info(m, &ti);
	stint_task_clear(&t);
	return ok_reply(rep, m, r);
}

/* TASK_LIST for an operator without --agent: the tasks of its agents, in
 * id order from lr->cursor, at most TASK_PAGE + 1 (the extra one says
 * "more"), read LIST_CHUNK at a time. */
#define LIST_CHUNK 256
static int
list_for_operator(struct stintd *d, const struct stintd_actor *a,
		  const struct stint_task_list_req *lr, struct stint_task **out,
		  size_t *n)
{
	char cursor[STINT_TASK_ID_MAX + 1];
	struct stint_task *page, *got;
	size_t np, k = 0, i;

	*out = NULL;
	*n = 0;
	if ((got = calloc(TASK_PAGE + 1, sizeof(*got))) == NULL)
		return STINT_STORE_ERROR;
	snprintf(cursor, sizeof(cursor), "%s", lr->cursor);
	for (;;) {
		if (stint_store_task_list(d->store, NULL, !lr->all,
					  stintd_now(), cursor, LIST_CHUNK,
					  &page, &np) != STINT_STORE_OK) {
			stint_store_task_list_free(got, k);
			return STINT_STORE_ERROR;
		}
		if (np > 0)
			snprintf(cursor, sizeof(cursor), "%s", page[np - 1].id);
		for (i = 0; i < np && k <= TASK_PAGE; i++) {
			if (!stintd_actor_may(a, page[i].agent))
				continue;
			got[k++] = page[i];
			memset(&page[i], 0, sizeof(page[i]));
		}
		stint_store_task_list_free(page, np);
		if (np < LIST_CHUNK || k > TASK_PAGE)
			break;
	}
	*out = got;
	*n = k;
	return STINT_STORE_OK;
}

int
stintd_op_task_list(struct stintd *d, const struct stint_peer *peer,
		    const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_task_list_req lr;
	struct stint_task *tasks = NULL;
	struct stint_task_info ti;
	struct stintd_actor actor;
	struct stint_msg *m;
	size_t n = 0, i, shown;
	int r = 0;

	if (stint_dec_task_list_req(req, &lr) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "malformed TASK_LIST request");
	/* An operator sees its agents' tasks only. */
	if (lr.agent[0] != '\0' &&
	    !stintd_may_act_for_agent(d, peer, lr.agent, "task list", &actor,
				      rep, &r))
		return r;
	if (lr.agent[0] == '\0' && stintd_actor_of(d, peer, &actor) != 0)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "operator store unavailable");
	if (lr.agent[0] == '\0' && actor.role != STINTD_ROLE_ADMIN)
		r = list_for_operator(d, &actor, &lr, &tasks, &n);
	else
		r = stint_store_task_list(
			d->store, lr.agent[0] ? lr.agent : NULL, !lr.all,
			stintd_now(), lr.cursor, TASK_PAGE + 1, &tasks, &n);
	if (r != STINT_STORE_OK)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "task store unavailable");
	if ((m = stint_msg_reply_ok()) == NULL) {
		stint_store_task_list_free(tasks, n);
		return -1;
	}
	shown = n > TASK_PAGE ? TASK_PAGE : n;
	for (i = 0; i < shown && r == 0; i++) {
		/* No certificates in a list: a page of 64 RSA tasks with
		 * them would not fit a frame (TASK_SHOW has the cert). */
		stintd_task_info(&tasks[i], STINTD_TASK_LIST, &ti);
		r = stint_put_task_list_entry(m, &ti);
	}
	if (r == 0)
		r = stint_put_task_list_end(m, shown, n > TASK_PAGE);
	stint_store_task_list_free(tasks, n);
	return ok_reply(rep, m, r);
}

/* The last count lines of the audit log, read backwards from its end. */
int
stintd_op_audit_tail(struct stintd *d, const struct stint_peer *peer,
		     const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_audit_tail_req tr;
	uint64_t count = 10;
	struct stint_msg *m;
	char *buf = NULL, *p, *start;
	const char **recs;
	long size, from;
	size_t got, lines = 0;
	FILE *f;
	int r;

	(void)peer;
	if (stint_dec_audit_tail_req(req, &tr) != 0 ||
	    (tr.has_count && (tr.count == 0 || tr.count > TAIL_MAX)))
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "count must be 1..%d", TAIL_MAX);
	if (tr.has_count)
		count = tr.count;
	if ((f = fopen(d->cfg.audit.path, "re")) == NULL)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "cannot read %s: %s",
					  d->cfg.audit.path, strerror(errno));
	/* Records are a few hundred bytes; the reply must stay < 64 KiB. */
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	from = size > 48 * 1024 ? size - 48 * 1024 : 0;
	fseek(f, from, SEEK_SET);
	buf = calloc(1, (size_t)(size - from) + 1);
	got = buf ? fread(buf, 1, (size_t)(size - from), f) : 0;
	fclose(f);
	if (buf == NULL)
		return -1;
	buf[got] = '\0';
	start = buf;
	if (from > 0 && (p = strchr(buf, '\n')) != NULL)
		start = p + 1; /* drop the partial first line */
	/* Walk back count newlines from the end. */
	p = buf + got;
	if (p > start && p[-1] == '\n')
		p--;
	while (p > start && lines < count) {
		p--;
		if (*p == '\n')
			lines++;
	}
	if (lines == count || p < start)
		p++;
	if (p < start)
		p = start;
	if ((recs = calloc(count, sizeof(*recs))) == NULL ||
	    (m = stint_msg_reply_ok()) == NULL) {
		free(recs);
		free(buf);
		return -1;
	}
	lines = 0;
	while (*p != '\0' && lines < count) {
		char *nl = strchr(p, '\n');

		if (nl == NULL)
			break; /* a torn last line is not a record */
		*nl = '\0';
		recs[lines++] = p;
		p = nl + 1;
	}
	r = stint_put_audit_tail_rep(m, d->cfg.audit.path, recs, lines);
	free(recs);
	free(buf);
	return ok_reply(rep, m, r);
}

/* The counters, and the gauges read now: the audit file's size and the
 * records waiting for the log. */
static void
status_counters(struct stintd *d, struct stint_status_rep *st)
{
	struct stat sb;
	size_t i;

	st->has_counters = true;
	for (i = 0; i < STINT_C_N; i++)
		st->counters[i] = atomic_load_explicit(&d->count[i],
						       memory_order_relaxed);
	for (i = 0; i < STINT_REFUSED_N; i++)
		st->refused[i] = atomic_load_explicit(&d->refused[i],
						      memory_order_relaxed);
	if (stat(stint_audit_path(d->audit), &sb) == 0)
		st->counters[STINT_C_AUDIT_BYTES] = (uint64_t)sb.st_size;
	st->counters[STINT_C_AUDIT_PENDING] = stint_audit_pending_count();
}

int
stintd_op_status(struct stintd *d, const struct stint_peer *peer,
		 const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_backend_stats bs;
	struct stint_status_rep st;
	struct stint_msg *m;
	size_t agents = 0, live = 0, all = 0;

	(void)peer;
	(void)req;
	memset(&st, 0, sizeof(st));
	(void)stint_store_count(d->store, &agents, &live, &all);
	stint_audit_head(d->audit, &st.audit_seq, st.audit_hash);
	st.has_head = true;
	st.has_nv = stintd_anchor_nv(d, &st.audit_nv) == 0; /* nv */
	snprintf(st.backend, sizeof(st.backend), "%s (token '%s')",
		 d->backend->ops->name, d->cfg.backend.token);
	st.version = STINT_WIRE_VERSION;
	st.pid = (uint64_t)getpid();
	st.uptime = (uint64_t)(stintd_now() - d->started);
	snprintf(st.trust_domain, sizeof(st.trust_domain), "%s",
		 d->cfg.trust_domain);
	st.n_agents = agents;
	st.n_live = live;
	snprintf(st.path, sizeof(st.path), "%s", d->cfg.audit.path);
	snprintf(st.sync, sizeof(st.sync), "%s",
		 stint_sync_str(d->cfg.audit.sync));
	if (d->backend->ops->stats != NULL) {
		d->backend->ops->stats(d->backend, &bs);
		st.has_ready = true;
		st.ready_keys = bs.ready_keys;
		st.ready_target = bs.ready_target;
		st.prepared = bs.prepared;
		st.prepared_max = bs.prepared_max;
		st.session_copies = bs.session_copies;
	}
	status_counters(d, &st);
	if ((m = stint_msg_reply_ok()) == NULL)
		return -1;
	return ok_reply(rep, m, stint_put_status_rep(m, &st));
}

/* The trust bundle relying parties configure, and the attestation key a
 * remote verifier enrolls. */
int
stintd_op_ca_cert(struct stintd *d, const struct stint_peer *peer,
		  const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_ca_cert_rep cr;
	struct stint_bytes ak;
	struct stint_msg *m;
	char *pem, err[256];
	int r;

	(void)peer;
	(void)req;
	if (d->backend->ops->ak_spki(d->backend, &ak, err, sizeof(err)) != 0)
		return stintd_error_reply(rep, STINT_E_BACKEND, "%s", err);
	if ((pem = stint_ca_chain_pem(d->ca)) == NULL) {
		stint_bytes_clear(&ak);
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "cannot encode the CA chain");
	}
	if ((m = stint_msg_reply_ok()) == NULL) {
		stint_bytes_clear(&ak);
		free(pem);
		return -1;
	}
	memset(&cr, 0, sizeof(cr));
	cr.pem = (const uint8_t *)pem;
	cr.pem_len = strlen(pem);
	cr.ak_spki = ak.ptr;
	cr.ak_len = ak.len;
	snprintf(cr.trust_domain, sizeof(cr.trust_domain), "%s",
		 d->cfg.trust_domain);
	r = stint_put_ca_cert_rep(m, &cr);
	stint_bytes_clear(&ak);
	free(pem);
	return ok_reply(rep, m, r);
}

int
stintd_op_ca_csr(struct stintd *d, const struct stint_peer *peer,
		 const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_pem_msg csr;
	struct stint_msg *m;
	char err[256], *pem;
	int r;

	(void)peer;
	(void)req;
	if ((pem = stint_ca_csr_pem(d->ca, err, sizeof(err))) == NULL)
		return stintd_error_reply(rep, STINT_E_BACKEND, "%s", err);
	if ((m = stint_msg_reply_ok()) == NULL) {
		free(pem);
		return -1;
	}
	csr = (struct stint_pem_msg){.pem = (const uint8_t *)pem,
				     .len = strlen(pem)};
	r = stint_put_pem_msg(m, &csr);
	free(pem);
	return ok_reply(rep, m, r);
}

int
stintd_op_ca_install(struct stintd *d, const struct stint_peer *peer,
		     const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_pem_msg in;
	char err[256];

	if (stint_get_pem_msg(req, &in) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "CA_INSTALL needs the PEM chain");
	if (stint_ca_install(d->ca, (const char *)in.pem, in.len, err,
			     sizeof(err)) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "chain refused: %s", err);
	audit_admin(d, "ca-install", NULL, NULL, peer,
		    "CA chain installed; new leaves chain to it");
	log_info("CA chain installed");
	return ok_reply(rep, stint_msg_reply_ok(), 0);
}

int
stintd_op_task_evidence(struct stintd *d, const struct stint_peer *peer,
			const struct stint_msg *req, struct stint_reply *rep)
{
	char id[STINT_TASK_ID_MAX + 1], err[256];
	struct stint_bytes ak;
	struct stint_msg *m;
	uint8_t *doc;
	struct stint_evidence_rep er;
	size_t len;
	int r;

	(void)peer;
	if (stint_dec_name_req(req, STINT_K_TASK, id, sizeof(id)) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "TASK_EVIDENCE needs a task id");
	if (stint_ca_evidence_load(d->ca, id, &doc, &len) != 0)
		return stintd_error_reply(rep, STINT_E_NOT_FOUND,
					  "no evidence for task '%s'", id);
	if (d->backend->ops->ak_spki(d->backend, &ak, err, sizeof(err)) != 0) {
		free(doc);
		return stintd_error_reply(rep, STINT_E_BACKEND, "%s", err);
	}
	if ((m = stint_msg_reply_ok()) == NULL) {
		stint_bytes_clear(&ak);
		free(doc);
		return -1;
	}
	er = (struct stint_evidence_rep){.doc = doc,
					 .doc_len = len,
					 .ak_spki = ak.ptr,
					 .ak_len = ak.len};
	r = stint_put_evidence_rep(m, &er);
	stint_bytes_clear(&ak);
	free(doc);
	return ok_reply(rep, m, r);
}

static int
audit_kill(struct stintd *d, const struct stint_peer *peer, const char *event,
	   const struct stint_task *t, const char *decision, const char *reason,
	   const char *detail)
{
	struct stint_audit_event ev = {.event = event,
				       .agent = t ? t->agent : NULL,
				       .task = t ? t->id : NULL,
				       .peer = peer,
				       .decision = decision,
				       .reason = reason,
				       .detail = detail};

	/* The kill switch acts whether or not the log takes its records;
	 * they wait until it does. */
	return stint_audit_pending_append(d->audit, &ev);
}

/*
 * The kill switch (backends with STINT_BACKEND_KILL_SWITCH, the TPM):
 * with every stripe of the revoke lock and its start lane held
 * exclusively, so no SIGN is in flight and no task start is between
 * reading the counter and storing its task, the
 * hardware counter moves on and every live task is marked ended: their
 * keys are dead in hardware, so they should stop being listed and SIGN
 * should say NOT_LIVE, not a backend error. The keys are destroyed after
 * the lock is released.
 */
static int
kill_switch_hw(struct stintd *d, const struct stint_peer *peer,
	       struct stint_reply *rep)
{
	struct stint_task *tasks = NULL;
	struct stint_done_rep done;
	struct stint_msg *m;
	uint64_t counter = 0;
	size_t n = 0, ended = 0, i;
	char err[256], detail[64];
	bool *mine = NULL, pending = false;
	int r;

	stint_revoke_lock_all(d->revoke);
	if (d->backend->ops->kill_switch(d->backend, &counter, err,
					 sizeof(err)) != 0) {
		stint_revoke_unlock_all(d->revoke);
		audit_kill(d, peer, "kill-switch", NULL, "deny", err, NULL);
		return stintd_error_reply(rep, STINT_E_BACKEND,
					  "kill switch failed: %s", err);
	}
	if (stint_store_task_list(d->store, NULL, true, stintd_now(), "",
				  SIZE_MAX, &tasks, &n) != STINT_STORE_OK) {
		tasks = NULL;
		n = 0;
		log_err("kill switch: cannot list live tasks (their keys are "
			"dead in the TPM anyway)");
	}
	if (n > 0 && (mine = calloc(n, sizeof(*mine))) == NULL)
		n = 0;
	for (i = 0; i < n; i++) {
		r = stint_store_task_end(d->store, tasks[i].id,
					 STINT_TASK_ENDED, KILL_REASON,
					 stintd_now());
		mine[i] = r == STINT_STORE_OK || r == STINT_STORE_PENDING;
	}
	stint_revoke_unlock_all(d->revoke);

	snprintf(detail, sizeof(detail), "counter=%llu",
		 (unsigned long long)counter);
	pending |= audit_kill(d, peer, "kill-switch", NULL, "allow", NULL,
			      detail) != 0;
	for (i = 0; i < n; i++) {
		if (!mine[i])
			continue; /* ended meanwhile by someone else */
		ended++;
		pending |= audit_kill(d, peer, "task-end", &tasks[i], "allow",
				      KILL_REASON, NULL) != 0;
		if (!tasks[i].key_destroyed)
			(void)stint_task_destroy_key(d, tasks[i].id,
						     tasks[i].agent, peer, err,
						     sizeof(err));
	}
	free(mine);
	stint_store_task_list_free(tasks, n);
	log_warn("kill switch: TPM counter now %llu, %zu live task(s) ended",
		 (unsigned long long)counter, ended);
	done = (struct stint_done_rep){.has_counter = true,
				       .counter = counter,
				       .has_count = true,
				       .count = ended};
	if (pending)
		snprintf(done.note, sizeof(done.note), "%s",
			 "the audit log refuses records: the kill switch's "
			 "records are pending and are written as soon as the "
			 "log accepts them");
	if ((m = stint_msg_reply_ok()) == NULL)
		return -1;
	return ok_reply(rep, m, stint_put_done_rep(m, &done));
}

int
stintd_op_kill_switch(struct stintd *d, const struct stint_peer *peer,
		      const struct stint_msg *req, struct stint_reply *rep)
{
	(void)req;
	if (d->backend->ops->kill_switch == NULL)
		return stintd_error_reply(
			rep, STINT_E_BACKEND,
			"the kill switch needs the TPM backend ([backend] "
			"type = tpm); on '%s' end tasks with 'stint task "
			"end', or remove their agent",
			d->backend->ops->name);
	return kill_switch_hw(d, peer, rep);
}

/* `stint audit rotate` (audit_anchor.c): replies with the old file's
 * path and the seq the new file starts at. */
int
stintd_op_audit_rotate(struct stintd *d, const struct stint_peer *peer,
		       const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_audit_rotate_rep rr;
	struct stint_msg *m;
	char err[512];

	(void)peer;
	(void)req;
	memset(&rr, 0, sizeof(rr));
	if (stintd_anchor_rotate(d, rr.path, sizeof(rr.path), err,
				 sizeof(err)) != 0)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "audit rotate: %s", err);
	stint_audit_head(d->audit, &rr.seq, NULL);
	if ((m = stint_msg_reply_ok()) == NULL)
		return -1;
	return ok_reply(rep, m, stint_put_audit_rotate_rep(m, &rr));
}
