/*
 * The agent socket: HELLO, LIST, SIGN. Nothing here trusts the peer's
 * words about who it is; identity is the connection's SO_PEERCRED.
 *
 * SIGN, in order: decode and shape-check the request; under the shared
 * revoke lock, run the gate against the store (peer → agent, task live and
 * before its deadline, mechanism, budget; the budget is charged in the same
 * transaction); write the audit record; sign in the backend; reply.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "attest/audit_pending.h"
#include "attest/bind.h"
#include "attest/daemon.h"
#include "attest/gate.h"
#include "attest/ops.h"
#include "attest/refusals.h"
#include "attest/sha256.h"
#include "common/log.h"
#include "common/mechanism.h"
#include "common/msg.h"

#define LIST_PAGE 16 /* keeps a page of RSA-3072 tasks with certs < 64 KiB */

int
stintd_op_hello(struct stintd *d, const struct stint_peer *peer,
		const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_hello_rep hello = {.version = STINT_WIRE_VERSION};
	struct stint_agent *agents = NULL;
	uint64_t version;
	size_t n = 0, i;
	int r;

	if (stint_dec_hello_req(req, &version) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "HELLO needs a version");
	if (version != STINT_WIRE_VERSION)
		return stintd_error_reply(rep, STINT_E_VERSION,
					  "protocol version %llu is not "
					  "supported (stintd speaks %d)",
					  (unsigned long long)version,
					  STINT_WIRE_VERSION);
	/* One token per agent the peer matches; key 5 stays the lowest. */
	if (stint_store_agents_for_peer(d->store, peer, &agents, &n) ==
	    STINT_STORE_OK) {
		memcpy(hello.agent, agents[0].name, sizeof(hello.agent));
		if (n > STINT_HELLO_AGENTS_MAX)
			log_warn("pid %ld matches %zu agents; its HELLO names "
				 "the first %d",
				 (long)peer->pid, n, STINT_HELLO_AGENTS_MAX);
		for (i = 0; n > 1 && i < n && i < STINT_HELLO_AGENTS_MAX; i++)
			memcpy(hello.names[i], agents[i].name,
			       sizeof(hello.names[i]));
		hello.n_names = i;
	}
	free(agents);
	r = stint_enc_hello_rep(&hello, &rep->buf, &rep->len) == 0 ? 0 : -1;
	return r;
}

static void
task_key_from_task(struct stint_task_key *k, const struct stint_task *t)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->id, t->id, sizeof(k->id));
	k->key_type = t->key_type;
	k->not_after = (uint64_t)t->not_after;
	memcpy(k->mechs, t->mechs, sizeof(k->mechs));
	k->n_mechs = t->n_mechs;
	/* Borrowed: the encoder only reads them. */
	k->spki = t->pub.spki;
	k->ec_params = t->pub.ec_params;
	k->ec_point = t->pub.ec_point;
	k->modulus = t->pub.modulus;
	k->exponent = t->pub.exponent;
	k->cert = t->cert;
}

/* Up to LIST_PAGE + 1 live tasks of agent after cursor that the peer may
 * use (bind): a task bound to another process or cgroup is not shown. The
 * extra one tells whether another page follows. */
static int
list_visible(struct stintd *d, const struct stint_peer *peer, const char *agent,
	     const char *cursor, struct stint_task **out, size_t *n)
{
	struct stint_task *page = NULL, *keep;
	char after[STINT_TASK_ID_MAX + 1];
	size_t got, i, cap = LIST_PAGE + 1;

	*n = 0;
	if ((*out = calloc(cap, sizeof(**out))) == NULL)
		return -1;
	snprintf(after, sizeof(after), "%s", cursor);
	do {
		if (stint_store_task_list(d->store, agent, true, stintd_now(),
					  after, cap, &page,
					  &got) != STINT_STORE_OK) {
			stint_store_task_list_free(*out, *n);
			*out = NULL;
			*n = 0;
			return -1;
		}
		for (i = 0; i < got; i++) {
			keep = &page[i];
			snprintf(after, sizeof(after), "%s", keep->id);
			if (*n < cap &&
			    stint_bind_refuses(&keep->bind, peer->pid,
					       peer->start_time,
					       peer->cgroup) == NULL) {
				(*out)[(*n)++] = *keep; /* takes its blobs */
				memset(keep, 0, sizeof(*keep));
			}
		}
		stint_store_task_list_free(page, got);
	} while (got == cap && *n < cap);
	return 0;
}

int
stintd_op_list(struct stintd *d, const struct stint_peer *peer,
	       const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_list_rep list = {0};
	struct stint_agent agent;
	struct stint_task *tasks = NULL;
	char cursor[STINT_TASK_ID_MAX + 1], as[STINT_NAME_MAX + 1];
	size_t n = 0, i;
	int r;

	if (stint_dec_list_req(req, cursor) != 0 ||
	    stint_dec_as_agent(req, as) != 0)
		return stintd_error_reply(rep, STINT_E_BAD_REQUEST,
					  "malformed LIST request");
	r = stint_store_agent_as(d->store, peer, as, &agent);
	if (r == STINT_STORE_ERROR)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "task store unavailable");
	/* Named: the peer must match that agent. */
	if (r != STINT_STORE_OK && as[0] != '\0')
		return stintd_error_reply(rep, STINT_E_NO_AGENT,
					  "this process does not match agent "
					  "%s",
					  as);
	/* A peer that maps to no agent sees an empty token. */
	if (r != STINT_STORE_OK)
		return stint_enc_list_rep(&list, &rep->buf, &rep->len) == 0
			       ? 0
			       : -1;
	if (list_visible(d, peer, agent.name, cursor, &tasks, &n) != 0)
		return stintd_error_reply(rep, STINT_E_INTERNAL,
					  "task store unavailable");
	list.more = n > LIST_PAGE;
	list.n_tasks = list.more ? LIST_PAGE : n;
	list.tasks = calloc(list.n_tasks + 1, sizeof(*list.tasks));
	if (list.tasks == NULL) {
		stint_store_task_list_free(tasks, n);
		return -1;
	}
	for (i = 0; i < list.n_tasks; i++)
		task_key_from_task(&list.tasks[i], &tasks[i]);
	r = stint_enc_list_rep(&list, &rep->buf, &rep->len) == 0 ? 0 : -1;
	free(list.tasks); /* entries borrow from tasks */
	stint_store_task_list_free(tasks, n);
	return r;
}

struct sign_ctx {
	struct stintd *d;
	const struct stint_peer *peer;
	const struct stint_sign_req *req;
	const struct stint_mech *mech;
	uint8_t input_sha256[32];
	const char *agent;       /* as found by the gate, may be NULL */
	unsigned matched;        /* its selectors the peer matched */
	struct timespec decided; /* the clock the gate compared with */
};

static int
audit_sign(struct sign_ctx *s, const char *event, const char *decision,
	   const char *reason)
{
	struct stint_audit_event ev = {
		.event = event,
		.agent = s->agent,
		.task = s->req->task[0] ? s->req->task : NULL,
		.peer = s->peer,
		.matched = s->matched,
		.mechanism = s->mech ? s->mech->name : NULL,
		.input_sha256 = s->input_sha256,
		.decision = decision,
		.reason = reason,
		.when = s->decided.tv_sec != 0 ? &s->decided : NULL,
	};

	return stint_audit_append_in_order(s->d->audit, &ev);
}

/* A refusal's record: its own, or counted into its peer's aggregate
 * (refusals.h), so that refusals cannot flood the log. */
static int
audit_refusal(struct sign_ctx *s, const char *reason)
{
	struct timespec now;
	struct stint_audit_event ev = {
		.event = "sign-refused",
		.agent = s->agent,
		.task = s->req->task[0] ? s->req->task : NULL,
		.peer = s->peer,
		.matched = s->matched,
		.mechanism = s->mech ? s->mech->name : NULL,
		.input_sha256 = s->input_sha256,
		.decision = "deny",
		.reason = reason,
		.when = s->decided.tv_sec != 0 ? &s->decided : NULL,
	};

	if (s->decided.tv_sec != 0)
		now = s->decided;
	else
		stintd_realtime(&now);
	return stint_refusals_audit(s->d->audit, &ev, (int64_t)now.tv_sec);
}

static int
refuse(struct sign_ctx *s, struct stint_reply *rep, int status,
       const char *reason)
{
	stintd_count_refused(s->d, status);
	if (audit_refusal(s, reason) != 0) {
		stintd_count(s->d, STINT_C_AUDIT_FAILURES);
		log_err("audit log write failed while refusing a signature");
	}
	stint_debug("sign", "refused task %s for pid %ld: %s", s->req->task,
		    (long)s->peer->pid, reason);
	return stintd_error_reply(rep, status, "%s", reason);
}

/* The bytes the backend signs with mech->raw, checked for shape. */
static const char *
raw_input(const struct stint_mech *m, const struct stint_sign_req *r,
	  uint8_t *buf, size_t cap, size_t *len, CK_RSA_PKCS_PSS_PARAMS *pss)
{
	const uint8_t *prefix;
	const char *why;
	size_t plen = 0;

	if (m->pss) {
		if (!r->has_pss)
			return "PSS mechanism without PSS parameters";
		why = stint_pss_params_check(m, r->pss_hash, r->pss_mgf,
					     r->pss_salt);
		if (why != NULL)
			return why;
		if (r->data.len != stint_hash_len(r->pss_hash))
			return "PSS input is not a digest of hashAlg";
		pss->hashAlg = r->pss_hash;
		pss->mgf = r->pss_mgf;
		pss->sLen = r->pss_salt;
	} else if (m->hash != 0) {
		if (r->data.len != stint_hash_len(m->hash))
			return "input is not a digest of the mechanism's hash";
	}
	if (m->hash != 0 && m->raw == CKM_RSA_PKCS) {
		prefix = stint_digestinfo_prefix(m->hash, &plen);
		if (prefix == NULL)
			return "unsupported hash";
		memcpy(buf, prefix, plen);
	}
	if (r->data.len == 0 || plen + r->data.len > cap)
		return "input length out of range";
	memcpy(buf + plen, r->data.ptr, r->data.len);
	*len = plen + r->data.len;
	return NULL;
}

int
stintd_op_sign(struct stintd *d, const struct stint_peer *peer,
	       const struct stint_msg *req, struct stint_reply *rep)
{
	struct stint_sign_req sr;
	struct sign_ctx s = {.d = d, .peer = peer, .req = &sr};
	struct stint_gate_req gate_req;
	struct stint_gate_result gate;
	CK_RSA_PKCS_PSS_PARAMS pss = {0};
	uint8_t in[STINT_RAW_INPUT_MAX], sig[STINT_SIG_MAX];
	size_t in_len = 0;
	struct stint_backend_sig out = {sig, sizeof(sig), 0};
	struct stint_backend_sign_req breq;
	const char *reason;
	char err[256];
	unsigned stripe;
	int r;

	memset(&sr, 0, sizeof(sr));
	if (stint_dec_sign_req(req, &sr) != 0) {
		memset(&sr, 0, sizeof(sr));
		memset(s.input_sha256, 0, sizeof(s.input_sha256));
		r = refuse(&s, rep, STINT_E_BAD_REQUEST,
			   "malformed SIGN request");
		goto out;
	}
	if (stint_sha256(sr.data.ptr, sr.data.len, NULL, 0, s.input_sha256) !=
	    0) {
		memset(s.input_sha256, 0, sizeof(s.input_sha256));
		r = refuse(&s, rep, STINT_E_INTERNAL, "cannot hash the input");
		goto out;
	}
	if ((s.mech = stint_mech_find(sr.mech)) == NULL) {
		r = refuse(&s, rep, STINT_E_MECHANISM, "unsupported mechanism");
		goto out;
	}
	if ((reason = raw_input(s.mech, &sr, in, sizeof(in), &in_len, &pss)) !=
	    NULL) {
		r = refuse(&s, rep, STINT_E_BAD_REQUEST, reason);
		goto out;
	}

	stripe = stint_revoke_read(d->revoke, sr.task);
	/* Read once: the gate decides with it and the record carries it, so
	 * every sign-allowed record's time is before the task's deadline. */
	stintd_realtime(&s.decided);
	gate_req = (struct stint_gate_req){.peer = peer,
					   .task_id = sr.task,
					   .mech = sr.mech,
					   .as_agent = sr.as_agent,
					   .now = s.decided};
	if (stint_gate_sign(d->store, &gate_req, &gate) != STINT_STORE_OK) {
		gate.decision = STINT_E_INTERNAL;
		gate.reason = "task store unavailable";
	}
	if (gate.decision == STINT_E_NO_AGENT && sr.as_agent[0] != '\0')
		gate.reason = "peer does not match the agent the request names";
	s.agent = gate.agent.name[0] ? gate.agent.name : NULL;
	if (s.agent != NULL)
		s.matched = stint_agent_matched(&gate.agent, peer);
	if (gate.decision != STINT_OK) {
		stint_revoke_read_unlock(d->revoke, stripe);
		r = refuse(&s, rep, gate.decision, gate.reason);
		goto out;
	}
	/* No signature without its record. */
	if (audit_sign(&s, "sign-allowed", "allow", NULL) != 0) {
		stint_revoke_read_unlock(d->revoke, stripe);
		stintd_count(d, STINT_C_AUDIT_FAILURES);
		log_err("audit log write failed: refusing to sign");
		r = stintd_error_reply(rep, STINT_E_INTERNAL,
				       "audit log unavailable; nothing signed");
		goto out;
	}
	breq = (struct stint_backend_sign_req){.key_id = sr.task,
					       .raw = s.mech->raw,
					       .pss = s.mech->pss ? &pss : NULL,
					       .in = in,
					       .in_len = in_len,
					       .after_reply = true};
	r = d->backend->ops->sign(d->backend, &breq, &out, err, sizeof(err));
	stint_revoke_read_unlock(d->revoke, stripe);
	if (r != 0) {
		log_err("backend failed to sign for task %s: %s", sr.task, err);
		stintd_count(d, STINT_C_BACKEND_ERRORS);
		if (audit_sign(&s, "sign-error", "deny", err) != 0)
			stintd_count(d, STINT_C_AUDIT_FAILURES);
		r = stintd_error_reply(rep, STINT_E_BACKEND,
				       "backend failed to sign: %s", err);
		goto out;
	}
	stintd_count(d, STINT_C_SIGN_ALLOWED);
	r = stint_enc_sign_rep(sig, out.len, &rep->buf, &rep->len) == 0 ? 0
									: -1;
out:
	OPENSSL_cleanse(in, sizeof(in));
	stint_bytes_clear(&sr.data);
	return r;
}
