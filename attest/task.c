/*
 * Task lifecycle. A task is born with its key (generated in the backend,
 * attributes checked; or made ahead by the backend's key pool under a fresh
 * task id, which the task then takes as its own) and dies with it: ending
 * marks it in the store under the exclusive revoke lock, so no SIGN is in
 * flight or can start for it, then destroys the key. The reaper does the
 * same for tasks that reach their deadline, and retries destruction that
 * failed.
 */

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "attest/agent_narrow.h"
#include "attest/audit_pending.h"
#include "attest/ca.h"
#include "attest/delegate.h"
#include "attest/evidence.h"
#include "attest/task.h"
#include "attest/bind.h"
#include "common/cgroup.h"
#include "common/hex.h"
#include "common/log.h"
#include "common/mechanism.h"

#define REAP_INTERVAL_MS 1000

const char *
stint_task_state_str(int state)
{
	switch (state) {
	case STINT_TASK_LIVE:
		return "live";
	case STINT_TASK_ENDED:
		return "ended";
	case STINT_TASK_EXPIRED:
		return "expired";
	default:
		return "unknown";
	}
}

void
stint_task_uri(const struct stint_task *t, char *buf, size_t cap)
{
	/* Agent names and task ids are URI-safe by construction. */
	snprintf(buf, cap, "pkcs11:token=%s;object=%s", t->agent, t->id);
}

/* A record a start depends on: -1 when the log refuses it. */
static int
audit(struct stintd *d, const char *event, const char *agent, const char *task,
      const struct stint_peer *by, const char *decision, const char *reason,
      const char *detail)
{
	struct stint_audit_event ev = {.event = event,
				       .agent = agent,
				       .task = task,
				       .peer = by,
				       .decision = decision,
				       .reason = reason,
				       .detail = detail};

	if (stint_audit_append_in_order(d->audit, &ev) == 0)
		return 0;
	stintd_count(d, STINT_C_AUDIT_FAILURES);
	log_err("audit log write failed for %s of task %s", event,
		task ? task : "-");
	return -1;
}

/* The record of a revocation, which happens whether or not the log takes
 * it: written now (0) or kept until the log accepts it (1; -1 lost). */
static int
audit_revoke(struct stintd *d, const char *event, const char *agent,
	     const char *task, const struct stint_peer *by, const char *reason,
	     const char *detail)
{
	struct stint_audit_event ev = {.event = event,
				       .agent = agent,
				       .task = task,
				       .peer = by,
				       .decision = "allow",
				       .reason = reason,
				       .detail = detail};

	return stint_audit_pending_append(d->audit, &ev);
}

/* The task may use what its agent allows and its key type can do. */
static void
task_mechs(const struct stint_agent *a, uint32_t key_type, struct stint_task *t)
{
	const struct stint_mech *m;
	size_t i;

	t->n_mechs = 0;
	for (i = 0; i < a->n_mechs; i++) {
		m = stint_mech_find(a->mechs[i]);
		if (m != NULL && stint_mech_fits_key(m, key_type))
			t->mechs[t->n_mechs++] = a->mechs[i];
	}
}

/* The backend makes the evidence with its attestation key (the TPM:
 * TPM2_Certify of the task key, qualifying data SHA-256(nonce || task id);
 * PKCS#11: a signed statement of the facts generate reported); verified
 * against that key as the backend reports it (what `stint ca
 * attestation-key` enrols). */
static int
evidence_backend(struct stintd *d, const struct stint_task *t,
		 const struct stint_key_facts *facts,
		 const uint8_t nonce[STINT_NONCE_LEN], uint8_t **doc,
		 size_t *len, EVP_PKEY **ak, char *why, size_t whylen)
{
	const struct stint_backend_ops *ops = d->backend->ops;
	struct stint_bytes ev = {NULL, 0}, spki = {NULL, 0};
	const unsigned char *p;
	const struct stint_backend_evidence_req req = {
		.key_id = t->id,
		.task_id = t->id,
		.nonce = nonce,
		.nonce_len = STINT_NONCE_LEN,
		.key_type = t->key_type,
		.spki = &t->pub.spki,
		.facts = facts,
		.time = stintd_now(),
	};

	if (ops->evidence(d->backend, &req, &ev, why, whylen) != 0)
		return -1;
	if (ops->ak_spki(d->backend, &spki, why, whylen) != 0)
		goto fail;
	p = spki.ptr;
	if ((*ak = d2i_PUBKEY(NULL, &p, (long)spki.len)) == NULL) {
		snprintf(why, whylen,
			 "cannot read the backend's attestation key");
		goto fail;
	}
	stint_bytes_clear(&spki);
	*doc = ev.ptr;
	*len = ev.len;
	return 0;
fail:
	stint_bytes_clear(&spki);
	stint_bytes_clear(&ev);
	return -1;
}

/*
 * The leaf's notAfter for a key whose deadline the hardware enforces (the
 * TPM): the wall time of its TPM deadline,
 * from the TPM clock the AK signed at certification (`since` is a wall
 * time taken before certifying, so this errs early), never later than
 * stintd's mapping in the evidence nor the task deadline.
 */
static int
hw_not_after(const struct stint_evidence_claims *c, int64_t since,
	     int64_t task_deadline, int64_t *out)
{
	int64_t na = task_deadline;
	uint64_t left_ms;

	if (c->tpm_deadline <= c->tpm_clock)
		return -1;
	left_ms = c->tpm_deadline - c->tpm_clock;
	if (left_ms / 1000 < (uint64_t)(task_deadline - since))
		na = since + (int64_t)(left_ms / 1000);
	if (c->not_after < na)
		na = c->not_after;
	*out = na;
	return 0;
}

/* The leaf's binding block (issue 12 §6): what holds the key, so a
 * relying party sees it. unit and pin are the caller's buffers. */
static void
leaf_binding(const struct stint_task *t, const struct stint_agent *a,
	     struct stint_leaf_req *leaf, char *unit, size_t unit_cap,
	     uint8_t pin[32])
{
	unit[0] = '\0';
	if (t->bind.kind == STINT_BIND_PID) {
		leaf->bind_kind = "pid";
	} else if (t->bind.kind == STINT_BIND_CGROUP) {
		leaf->bind_kind = "cgroup";
		leaf->bind_cgroup = t->bind.cgroup;
		if (stint_cgroup_unit(t->bind.cgroup, unit, unit_cap) != 0)
			unit[0] = '\0';
		leaf->bind_unit = unit;
	}
	if (a->sel.exe_sha256[0] != '\0' &&
	    stint_hex_decode(a->sel.exe_sha256, pin, 32) == 0)
		leaf->exe_sha256 = pin;
}

/* deleg: the leaf's delegation block (cert_ext.h [1]): the tree's root,
 * depth and path, and the SHA-256 of the parent's leaf, so a relying party
 * can hold a child's certificate to its parent's. Nothing for a root task.
 * -1 with err when the parent or its certificate cannot be read. */
static int
leaf_delegation(struct stintd *d, const struct stint_task *t,
		struct stint_leaf_req *leaf, uint8_t parent_sha256[32],
		char *err, size_t errlen)
{
	struct stint_task p;
	int r = -1;

	if (t->parent_id[0] == '\0')
		return 0;
	memset(&p, 0, sizeof(p));
	if (stint_store_task_get(d->store, t->parent_id, &p) !=
	    STINT_STORE_OK) {
		snprintf(err, errlen, "cannot read the parent task %s",
			 t->parent_id);
		return -1;
	}
	if (p.cert.len == 0) {
		snprintf(err, errlen, "the parent task %s has no certificate",
			 t->parent_id);
	} else {
		SHA256(p.cert.ptr, p.cert.len, parent_sha256);
		leaf->root_task = t->root_id;
		leaf->deleg_depth = t->depth;
		leaf->deleg_path = t->path;
		leaf->parent_cert_sha256 = parent_sha256;
		r = 0;
	}
	stint_task_clear(&p);
	return r;
}

/* Attestation before issuance: evidence about the new key, checked by the
 * same verifier a remote CA would run (signature by the enrolled key,
 * fresh nonce, task id, attributes; on the TPM also the certified Name and
 * the policy that enforces the deadline and the kill switch), and only
 * then is the leaf issued, for at most the task's lifetime. */
static int
attest_and_certify(struct stintd *d, struct stint_task *t,
		   const struct stint_agent *a,
		   const struct stint_key_facts *facts,
		   const struct stint_peer *by, char *err, size_t errlen)
{
	char unit[STINT_SEL_UNIT_MAX + 1];
	uint8_t pin[32], parent_sha256[32];
	struct stint_evidence_claims got;
	struct stint_evidence_expect want;
	uint8_t nonce[STINT_NONCE_LEN], wrong[STINT_NONCE_LEN];
	uint8_t digest[32], *doc = NULL;
	const char *fault = stint_ca_test_fault(d->ca);
	struct stint_leaf_req leaf;
	char why[256], detail[200], serial[80], dl[32];
	bool hw = stint_backend_has(d->backend, STINT_BACKEND_HW_DEADLINE);
	EVP_PKEY *ak = NULL;
	int64_t since = stintd_now(), not_after = t->not_after;
	size_t len = 0;
	int check, r = STINT_E_INTERNAL;

	memset(&got, 0, sizeof(got));
	if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
		snprintf(err, errlen, "no randomness for a nonce");
		return STINT_E_INTERNAL;
	}
	if (evidence_backend(d, t, facts, nonce, &doc, &len, &ak, why,
			     sizeof(why)) != 0) {
		audit(d, "evidence-verify", t->agent, t->id, by, "deny", why,
		      NULL);
		snprintf(err, errlen, "attestation failed: %s", why);
		return STINT_E_BACKEND;
	}
	memset(&want, 0, sizeof(want));
	want.task = t->id;
	want.nonce = nonce;
	want.key_type = t->key_type;
	want.spki = &t->pub.spki;
	/* Test hook (ca.h): only ever makes verification fail. */
	if (fault != NULL && strcmp(fault, "nonce") == 0) {
		memcpy(wrong, nonce, sizeof(wrong));
		wrong[0] ^= 1;
		want.nonce = wrong;
	} else if (fault != NULL) {
		doc[len / 2] ^= 1;
	}
	check = stint_evidence_verify(doc, len, ak, &want, &got, why,
				      sizeof(why));
	if (check == STINT_EV_OK && hw &&
	    hw_not_after(&got, since, t->not_after, &not_after) != 0) {
		snprintf(why, sizeof(why),
			 "the TPM deadline is not after the certification");
		check = STINT_EV_POLICY;
	}
	if (check != STINT_EV_OK) {
		snprintf(detail, sizeof(detail), "check=%s",
			 stint_evidence_check_str(check));
		audit(d, "evidence-verify", t->agent, t->id, by, "deny", why,
		      detail);
		snprintf(err, errlen,
			 "evidence for the new key failed the %s check: %s",
			 stint_evidence_check_str(check), why);
		r = STINT_E_BACKEND;
		goto out;
	}
	if (hw)
		snprintf(detail, sizeof(detail),
			 "kind=%s tpm_deadline=%llu tpm_clock=%llu "
			 "counter=%llu",
			 got.kind, (unsigned long long)got.tpm_deadline,
			 (unsigned long long)got.tpm_clock,
			 (unsigned long long)got.tpm_counter);
	else
		snprintf(detail, sizeof(detail), "kind=%s", got.kind);
	audit(d, "evidence-verify", t->agent, t->id, by, "allow", NULL, detail);
	if (not_after <= t->created) {
		snprintf(err, errlen, "the TPM deadline leaves no lifetime");
		r = STINT_E_BACKEND;
		goto out;
	}
	SHA256(doc, len, digest);
	memset(&leaf, 0, sizeof(leaf));
	leaf.trust_domain = d->cfg.trust_domain;
	leaf.agent = t->agent;
	leaf.task_id = t->id;
	leaf.intent = t->intent;
	leaf.parent_task = t->parent_id; /* deleg: "" for a root task */
	leaf.audiences = t->audiences;   /* aud */
	leaf.attestation_kind = got.kind;
	leaf.evidence_digest = digest;
	leaf.spki = &t->pub.spki;
	leaf.not_before = t->created - stint_ca_skew(d->ca);
	leaf.not_after = not_after;
	leaf_binding(t, a, &leaf, unit, sizeof(unit), pin);
	if (leaf_delegation(d, t, &leaf, parent_sha256, why, sizeof(why)) !=
	    0) {
		audit(d, "cert-issue", t->agent, t->id, by, "deny", why, NULL);
		snprintf(err, errlen, "certificate issuance failed: %s", why);
		goto out;
	}
	if (stint_ca_issue(d->ca, &leaf, &t->cert, serial, sizeof(serial), why,
			   sizeof(why)) != 0) {
		audit(d, "cert-issue", t->agent, t->id, by, "deny", why, NULL);
		snprintf(err, errlen, "certificate issuance failed: %s", why);
		goto out;
	}
	if (stint_ca_evidence_save(d->ca, t->id, doc, len, why, sizeof(why)) !=
	    0) {
		audit(d, "cert-issue", t->agent, t->id, by, "deny", why, NULL);
		snprintf(err, errlen, "cannot keep the evidence: %s", why);
		stint_bytes_clear(&t->cert);
		goto out;
	}
	/* The task ends when its certificate does (never later than asked;
	 * on the TPM at most a second earlier). */
	t->not_after = not_after;
	snprintf(dl, sizeof(dl), "%lld", (long long)t->not_after);
	snprintf(detail, sizeof(detail), "serial=%s not_after=%s", serial, dl);
	audit(d, "cert-issue", t->agent, t->id, by, "allow", NULL, detail);
	r = STINT_OK;
out:
	stint_evidence_claims_free(&got);
	EVP_PKEY_free(ak);
	free(doc);
	return r;
}

/* aud: the task's audiences, a subset of the agent's (all of them when
 * none are asked for). A refusal is audited with its reason. */
static int
task_audiences(struct stintd *d, const struct stint_agent *a, const char *asked,
	       const struct stint_peer *by, struct stint_task *t, char *err,
	       size_t errlen)
{
	char missing[STINT_AUDIENCE_MAX + 1], why[STINT_AUDIENCE_MAX + 200];
	const char *bad;

	if (asked == NULL) {
		memcpy(t->audiences, a->audiences, sizeof(t->audiences));
		return STINT_OK;
	}
	if ((bad = stint_audiences_check(asked)) != NULL) {
		snprintf(err, errlen, "audiences: %s", bad);
		return STINT_E_BAD_REQUEST;
	}
	if (!stint_audiences_subset(asked, a->audiences, missing,
				    sizeof(missing))) {
		snprintf(why, sizeof(why),
			 "audience '%s' is not one of agent '%s''s audiences",
			 missing, a->name);
		audit(d, "task-start", a->name, NULL, by, "deny", why,
		      "check=audience");
		snprintf(err, errlen, "%s (%s)", why,
			 a->audiences[0] ? a->audiences : "none");
		return STINT_E_LIMIT;
	}
	snprintf(t->audiences, sizeof(t->audiences), "%s", asked);
	return STINT_OK;
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

/* deleg: a child's place in its parent's tree, its mechanisms narrowed to
 * what it asked for (the parent's by default) and its budget's share of
 * the parent's. */
static void
task_child(const struct stint_task_request *req, struct stint_task *t)
{
	const struct stint_task *p = req->parent;
	const uint64_t *want = req->mechs != NULL ? req->mechs : p->mechs;
	size_t n_want = req->mechs != NULL ? req->n_mechs : p->n_mechs;
	size_t i, k = 0;

	for (i = 0; i < t->n_mechs; i++)
		if (mech_in(want, n_want, t->mechs[i]) &&
		    mech_in(p->mechs, p->n_mechs, t->mechs[i]))
			t->mechs[k++] = t->mechs[i];
	t->n_mechs = k;
	memcpy(t->parent_id, p->id, sizeof(t->parent_id));
	memcpy(t->root_id, p->root_id[0] ? p->root_id : p->id,
	       sizeof(t->root_id));
	t->depth = p->depth + 1;
	/* depth is bounded (STINT_DEPTH_MAX), so the names fit */
	(void)stint_audiences_add(t->path, sizeof(t->path),
				  p->path[0] ? p->path : p->agent);
	(void)stint_audiences_add(t->path, sizeof(t->path), t->agent);
	t->reserved = stint_delegate_reserve(p, req->max_sigs);
}

/*
 * A start that cannot complete leaves nothing usable: its row (when it was
 * stored) is deleted, or failing that ended; the key is destroyed (a key the
 * backend cannot destroy now has no task, so the next start-up sweep
 * removes it); the evidence is removed. Called under the shared revoke lock
 * on the TPM (handle_admin.c), so it takes no lock itself: nobody knows the
 * new task id yet.
 */
static void
start_undo(struct stintd *d, struct stint_task *t, const struct stint_peer *by,
	   bool stored, const char *why)
{
	char berr[256];

	if (stored &&
	    stint_store_task_delete(d->store, t->id) == STINT_STORE_ERROR)
		(void)stint_store_task_end(d->store, t->id, STINT_TASK_ENDED,
					   why, stintd_now());
	if (d->backend->ops->destroy(d->backend, t->id, berr, sizeof(berr)) !=
	    0)
		log_err("task %s did not start (%s) and its key could not be "
			"destroyed: %s",
			t->id, why, berr);
	(void)audit_revoke(d, "key-destroy", t->agent, t->id, by, why, NULL);
	if (d->ca != NULL)
		stint_ca_evidence_remove(d->ca, t->id);
	stint_task_clear(t);
}

/* The task-start record's detail; a child's names its tree (deleg). */
static void
task_start_detail(const struct stint_task *t, uint64_t ttl, const char *bound,
		  char *detail, size_t cap)
{
	char tree[STINT_DPATH_MAX + 2 * STINT_TASK_ID_MAX + 80] = "";

	if (t->parent_id[0] != '\0')
		snprintf(tree, sizeof(tree),
			 " parent=%s root=%s depth=%u path=%s reserved=%llu",
			 t->parent_id, t->root_id, t->depth, t->path,
			 (unsigned long long)t->reserved);
	snprintf(detail, cap,
		 "key=%s ttl=%llus max_signatures=%llu%s%s%s%s%s intent=%s",
		 stint_key_type_str(t->key_type), (unsigned long long)ttl,
		 (unsigned long long)t->max_sigs, bound[0] ? " bound=" : "",
		 bound, t->audiences[0] ? " audiences=" : "", t->audiences,
		 tree, t->intent);
}

/* deleg: the agents above a child, re-read: their delegation rights as
 * they are now still allow it (agent_narrow.h). */
static bool
above_allow(struct stintd *d, const struct stint_task *t, char *why,
	    size_t whylen)
{
	const char *p = t->path, *comma;
	char name[STINT_NAME_MAX + 1];
	struct stint_agent a;
	uint32_t i;
	size_t len;

	for (i = 0; i < t->depth && p != NULL && *p != '\0'; i++) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (len > 0 && len < sizeof(name)) {
			memcpy(name, p, len);
			name[len] = '\0';
			if (stint_store_agent_get(d->store, name, &a) ==
				    STINT_STORE_OK &&
			    !stint_agent_allows_child(&a, t, why, whylen))
				return false;
		}
		p = comma != NULL ? comma + 1 : NULL;
	}
	return true;
}

/* The agent the task was started for, re-read: NOT_FOUND is left to the
 * store (agent removal ends the task), a change to agent_narrow.h. */
static bool
still_allowed(struct stintd *d, const struct stint_agent *was,
	      const struct stint_task *t, char *why, size_t whylen)
{
	struct stint_agent now;

	if (!above_allow(d, t, why, whylen))
		return false;
	if (stint_store_agent_get(d->store, was->name, &now) !=
		    STINT_STORE_OK ||
	    now.id != was->id)
		return true;
	return stint_agent_allows_task(was, &now, t, why, whylen);
}

int
stint_task_start(struct stintd *d, const struct stint_task_request *req,
		 const struct stint_peer *by, struct stint_task *t, char *err,
		 size_t errlen)
{
	struct stint_key_facts facts;
	struct stint_agent a;
	char detail[STINT_INTENT_MAX + STINT_CGROUP_MAX +
		    STINT_AUDIENCES_TEXT_MAX + STINT_DPATH_MAX + 300],
		berr[256];
	char kdetail[64], bound[STINT_CGROUP_MAX + 32];
	const struct stint_backend_ops *ops = d->backend->ops;
	bool ready;
	uint64_t ttl;
	int r;

	memset(t, 0, sizeof(*t));
	r = stint_store_agent_get(d->store, req->agent, &a);
	if (r == STINT_STORE_NOT_FOUND) {
		snprintf(err, errlen,
			 "no agent named '%s' (register it with stint agent "
			 "add)",
			 req->agent);
		return STINT_E_NOT_FOUND;
	}
	if (r != STINT_STORE_OK) {
		snprintf(err, errlen, "agent store unavailable");
		return STINT_E_INTERNAL;
	}
	ttl = req->ttl ? req->ttl : d->cfg.default_ttl;
	/* deleg: by default a child lives as long as its parent may */
	if (req->parent != NULL && req->ttl == 0 &&
	    req->parent->not_after - stintd_now() < (int64_t)ttl)
		ttl = req->parent->not_after > stintd_now()
			      ? (uint64_t)(req->parent->not_after -
					   stintd_now())
			      : 1;
	if (ttl > a.max_ttl || ttl > d->cfg.max_ttl) {
		snprintf(err, errlen,
			 "TTL %llus is above the limit (agent '%s' max %llus, "
			 "stintd max %llus)",
			 (unsigned long long)ttl, a.name,
			 (unsigned long long)a.max_ttl,
			 (unsigned long long)d->cfg.max_ttl);
		return STINT_E_LIMIT;
	}
	if ((r = task_audiences(d, &a, req->audiences, by, t, err, errlen)) !=
	    STINT_OK)
		return r;
	t->key_type = req->key_type ? req->key_type : STINT_KEY_EC_P256;
	task_mechs(&a, t->key_type, t);
	if (req->parent != NULL) {
		memcpy(t->agent, a.name, sizeof(t->agent));
		task_child(req, t);
	}
	if (t->n_mechs == 0) {
		snprintf(err, errlen,
			 "agent '%s' allows no mechanism usable with a %s key",
			 a.name, stint_key_type_str(t->key_type));
		return STINT_E_MECHANISM;
	}
	/* A ready key comes with its id, which becomes the task's. */
	ready = ops->key_take != NULL &&
		ops->key_take(d->backend, t->key_type, t->id, &t->pub,
			      &facts) == 0;
	if (!ready && stint_task_id_new(t->id) != 0) {
		snprintf(err, errlen, "no randomness for a task id");
		return STINT_E_INTERNAL;
	}
	memcpy(t->agent, a.name, sizeof(t->agent));
	t->agent_id = a.id;
	t->state = STINT_TASK_LIVE;
	t->created = stintd_now();
	t->not_after = t->created + (int64_t)ttl;
	/* deleg: never past the parent's deadline (the rules checked it; a
	 * second may have ticked since), so the key's is not either (TPM) */
	if (req->parent != NULL && t->not_after > req->parent->not_after)
		t->not_after = req->parent->not_after;
	t->max_sigs = req->max_sigs;
	if (req->intent)
		snprintf(t->intent, sizeof(t->intent), "%s", req->intent);
	if (req->bind != NULL)
		t->bind = *req->bind;

	if (!ready &&
	    ops->generate(d->backend, t->key_type, t->id, t->not_after, &t->pub,
			  &facts, berr, sizeof(berr)) != 0) {
		audit(d, "key-generate", a.name, t->id, by, "deny", berr,
		      stint_key_type_str(t->key_type));
		snprintf(err, errlen, "key generation failed: %s", berr);
		stint_task_clear(t);
		return STINT_E_BACKEND;
	}
	/* "ready": made ahead by the backend's pool, facts read back then. */
	snprintf(kdetail, sizeof(kdetail), "%s%s",
		 stint_key_type_str(t->key_type), ready ? " ready" : "");
	if (audit(d, "key-generate", a.name, t->id, by, "allow", NULL,
		  kdetail) != 0) {
		start_undo(d, t, by, false, "audit log unavailable");
		snprintf(err, errlen,
			 "the audit log refuses records: no task started");
		return STINT_E_INTERNAL;
	}
	if (d->ca != NULL && (r = attest_and_certify(d, t, &a, &facts, by, err,
						     errlen)) != STINT_OK) {
		start_undo(d, t, by, false, "task not created");
		return r;
	}
	r = stint_store_task_insert(d->store, t, berr, sizeof(berr));
	if (r != STINT_STORE_OK) {
		/* NOT_FOUND: the agent was removed while its key was made. */
		if (r == STINT_STORE_NOT_FOUND && t->parent_id[0] != '\0')
			snprintf(err, errlen, "%s", berr); /* deleg */
		else if (r == STINT_STORE_NOT_FOUND)
			snprintf(err, errlen, "agent '%s' was removed", a.name);
		else
			snprintf(err, errlen, "task store unavailable");
		start_undo(d, t, by, false, "task could not be stored");
		return r == STINT_STORE_NOT_FOUND ? STINT_E_NOT_FOUND
						  : STINT_E_INTERNAL;
	}
	/* prov: an agents.d reload that narrowed the agent meanwhile ended
	 * the live tasks it forbids, but not this one if it was not stored
	 * yet: check it against the agent as it is now. */
	if (!still_allowed(d, &a, t, berr, sizeof(berr))) {
		snprintf(err, errlen,
			 "agent '%s' changed while the task "
			 "started: %s",
			 a.name, berr);
		start_undo(d, t, by, true, berr);
		return STINT_E_LIMIT;
	}
	stint_bind_describe(&t->bind, bound, sizeof(bound));
	task_start_detail(t, ttl, bound, detail, sizeof(detail));
	/* No record, no task. */
	if (audit(d, "task-start", a.name, t->id, by, "allow", NULL, detail) !=
	    0) {
		start_undo(d, t, by, true, "audit log unavailable");
		snprintf(err, errlen,
			 "the audit log refuses records: no task started");
		return STINT_E_INTERNAL;
	}
	stintd_count(d, STINT_C_TASK_STARTS);
	log_info("task %s started for agent %s (%s, ttl %llus)", t->id, a.name,
		 stint_key_type_str(t->key_type), (unsigned long long)ttl);
	return STINT_OK;
}

/* One key destruction at a time: `task end`, the kill switch and the
 * reaper (which destroys the keys of ended tasks) may reach the same ended
 * task at once; the second finds the key recorded destroyed and neither
 * destroys nor audits it again. */
static pthread_mutex_t destroy_lock = PTHREAD_MUTEX_INITIALIZER;

int
stint_task_start_bound(struct stintd *d, struct stint_task_request *req,
		       const struct stint_task_start_req *sr,
		       const struct stint_peer *by, struct stint_bind_start *bs,
		       struct stint_task *t, char *err, size_t errlen,
		       const char **stage)
{
	bool kill_switch =
		stint_backend_has(d->backend, STINT_BACKEND_KILL_SWITCH);
	int status;

	memset(t, 0, sizeof(*t));
	status = stint_watch_prepare(d, by, sr, bs, err, errlen);
	if (status != STINT_OK) {
		if (stage != NULL)
			*stage = "bind";
		return status;
	}
	req->bind = &bs->bind;
	/* With a hardware kill switch (the TPM) the key binds the switch's
	 * state when it is made: the kill switch waits for starts in
	 * flight, so none slips past it with a dead key and a live task.
	 * (Its own lane: a start never delays a task end.) */
	if (kill_switch)
		stint_revoke_start_read(d->revoke);
	status = stint_task_start(d, req, by, t, err, errlen);
	if (kill_switch)
		stint_revoke_start_unlock(d->revoke);
	if (status != STINT_OK) {
		stint_watch_abandon(d, bs);
		if (stage != NULL)
			*stage = "start";
		return status;
	}
	stint_watch_arm(d, t->id, bs);
	return STINT_OK;
}

int
stint_task_destroy_key(struct stintd *d, const char *id, const char *agent,
		       const struct stint_peer *by, char *err, size_t errlen)
{
	struct stint_task t;
	int r = 0;

	pthread_mutex_lock(&destroy_lock);
	memset(&t, 0, sizeof(t));
	if (stint_store_task_get(d->store, id, &t) == STINT_STORE_OK &&
	    t.key_destroyed)
		goto out; /* someone else did it */
	if (d->backend->ops->destroy(d->backend, id, err, errlen) != 0) {
		log_err("destroying the key of task %s failed: %s (will "
			"retry)",
			id, err);
		r = -1;
		goto out;
	}
	(void)stint_store_task_key_destroyed(d->store, id);
	(void)audit_revoke(d, "key-destroy", agent, id, by, NULL, NULL);
out:
	pthread_mutex_unlock(&destroy_lock);
	stint_task_clear(&t);
	return r;
}

/* deleg: the descendants a revocation ended with its task. */
struct cascade {
	char (*ids)[STINT_TASK_ID_MAX + 1];
	size_t n;
	char reason[STINT_REASON_MAX + 1];
};

/* Live → state, with every live descendant (deleg: one transaction, so
 * the gate refuses the whole tree from then on), then drains the stripes
 * of the tasks ended: once it returns no signature of the tree is in
 * flight, while other tasks sign on. A child's insert commits only while
 * its parent is live, so no child escapes the transaction. A store error
 * may have ended tasks it does not name: then every stripe is drained.
 * STINT_STORE_PENDING counts as ended: the store refuses the task already
 * and lands the end later. */
static int
revoke(struct stintd *d, const char *id, enum stint_task_state state,
       const char *reason, struct cascade *c)
{
	int r;

	snprintf(c->reason, sizeof(c->reason), "ancestor %s %s", id,
		 state == STINT_TASK_EXPIRED ? "expired" : "ended");
	r = stint_store_tree_end(d->store, id, state, reason, c->reason,
				 stintd_now(), &c->ids, &c->n);
	if (r == STINT_STORE_OK || r == STINT_STORE_NOT_FOUND ||
	    r == STINT_STORE_PENDING)
		stint_revoke_drain(d->revoke, id, c->ids, c->n);
	else
		stint_revoke_drain_all(d->revoke);
	return r;
}

/* deleg: the descendants' records (naming the ancestor that ended them)
 * and their keys, before the revocation's caller returns. */
static bool
cascade_finish(struct stintd *d, const char *ancestor, struct cascade *c,
	       const struct stint_peer *by)
{
	char detail[STINT_TASK_ID_MAX * 2 + 40], err[256];
	bool record_pending = false;
	struct stint_task t;
	size_t i;

	for (i = 0; i < c->n; i++) {
		memset(&t, 0, sizeof(t));
		(void)stint_store_task_get(d->store, c->ids[i], &t);
		snprintf(detail, sizeof(detail), "cascade ancestor=%s root=%s",
			 ancestor, t.root_id);
		record_pending |=
			audit_revoke(d, "task-end", t.agent, c->ids[i], by,
				     c->reason, detail) != 0;
		stintd_count(d, STINT_C_TASK_ENDS);
		if (!t.key_destroyed)
			(void)stint_task_destroy_key(d, c->ids[i], t.agent, by,
						     err, sizeof(err));
		stint_task_clear(&t);
	}
	if (c->n > 0)
		log_info("task %s: %zu descendant task(s) ended with it",
			 ancestor, c->n);
	free(c->ids);
	c->ids = NULL;
	c->n = 0;
	return record_pending;
}

#define NOTE_STORE                                                             \
	"state.db cannot record the end now (is its filesystem full?): the "   \
	"task is refused and its key destroyed; the end is kept in the "       \
	"revocation journal and written to state.db once it accepts it"
#define NOTE_AUDIT                                                             \
	"the audit log refuses records: the record is pending and is written " \
	"as soon as the log accepts it"

/* What the admin is told besides success (empty: nothing pending). */
static void
pending_note(char *note, size_t notelen, bool store, bool record)
{
	if (note == NULL || notelen == 0)
		return;
	snprintf(note, notelen, "%s%s%s", store ? NOTE_STORE : "",
		 store && record ? "; " : "", record ? NOTE_AUDIT : "");
}

int
stint_task_end(struct stintd *d, const char *id, const char *reason,
	       const struct stint_peer *by, char *err, size_t errlen,
	       char *note, size_t notelen)
{
	struct stint_task t;
	struct cascade c = {NULL, 0, ""};
	bool store_pending = false, record_pending = false;
	int r;

	pending_note(note, notelen, false, false);
	memset(&t, 0, sizeof(t));
	r = stint_store_task_get(d->store, id, &t);
	if (r == STINT_STORE_NOT_FOUND) {
		snprintf(err, errlen, "no task '%s'", id);
		return STINT_E_NOT_FOUND;
	}
	if (r != STINT_STORE_OK) {
		snprintf(err, errlen, "task store unavailable");
		return STINT_E_INTERNAL;
	}
	if (t.state != STINT_TASK_LIVE) {
		/* deleg: an ended task leaves no live descendant behind */
		(void)revoke(d, id, STINT_TASK_ENDED, reason, &c);
		record_pending |= cascade_finish(d, id, &c, by);
	} else {
		r = revoke(d, id, STINT_TASK_ENDED, reason, &c);
		if (r == STINT_STORE_OK || r == STINT_STORE_PENDING) {
			store_pending = r == STINT_STORE_PENDING;
			stintd_count(d, STINT_C_TASK_ENDS);
			record_pending =
				audit_revoke(d, "task-end", t.agent, id, by,
					     reason,
					     store_pending ? "store=pending"
							   : NULL) != 0;
			log_info("task %s ended: %s%s", id, reason,
				 store_pending ? " (state.db: pending)" : "");
			record_pending |= cascade_finish(d, id, &c, by);
		} else if (r != STINT_STORE_NOT_FOUND) {
			(void)cascade_finish(d, id, &c, by);
			/* Not even pending: the key goes all the same. */
			r = stint_task_destroy_key(d, id, t.agent, by, err,
						   errlen);
			snprintf(err, errlen,
				 "task store unavailable; the task's key %s",
				 r == 0 ? "is destroyed, so it signs nothing "
					  "more"
					: "could NOT be destroyed");
			stint_task_clear(&t);
			return STINT_E_INTERNAL;
		} else {
			record_pending |= cascade_finish(d, id, &c, by);
		}
	}
	/* Ending an ended task is not an error, and it retries a key
	 * destruction that failed before. */
	r = STINT_OK;
	if (!t.key_destroyed &&
	    stint_task_destroy_key(d, id, t.agent, by, err, errlen) != 0)
		r = STINT_E_BACKEND;
	pending_note(note, notelen, store_pending, record_pending);
	stint_task_clear(&t);
	return r;
}

/* state.db cannot remove the agent: end each of its live tasks on its own
 * (a pending end where state.db cannot record it). */
static void
end_agent_tasks(struct stintd *d, const char *agent,
		const struct stint_peer *by, size_t *n)
{
	struct stint_task *tasks = NULL;
	size_t count = 0, i;
	char err[256];

	if (stint_store_task_list(d->store, agent, true, stintd_now(), "",
				  SIZE_MAX, &tasks, &count) != STINT_STORE_OK)
		return;
	for (i = 0; i < count; i++)
		if (stint_task_end(d, tasks[i].id, "agent removed", by, err,
				   sizeof(err), NULL, 0) == STINT_OK)
			(*n)++;
	stint_store_task_list_free(tasks, count);
}

int
stint_task_remove_agent(struct stintd *d, const char *agent,
			const struct stint_peer *by, size_t *n, char *note,
			size_t notelen)
{
	return stint_task_remove_agent_as(d, agent, by, "agent-remove", NULL, n,
					  note, notelen);
}

int
stint_task_remove_agent_as(struct stintd *d, const char *agent,
			   const struct stint_peer *by, const char *event,
			   const char *detail, size_t *n, char *note,
			   size_t notelen)
{
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	struct cascade c = {NULL, 0, ""};
	bool record_pending;
	size_t count = 0, i;
	char err[256];
	int r;

	*n = 0;
	pending_note(note, notelen, false, false);
	/* One transaction ends the tasks and removes the agent (a start
	 * that read the agent before cannot store its task afterwards: its
	 * insert names the removed agent), then their stripes are drained:
	 * no SIGN for them is in flight. */
	r = stint_store_agent_remove_tasks(d->store, agent, "agent removed",
					   stintd_now(), &ids, &count);
	if (r == STINT_STORE_OK)
		stint_revoke_drain(d->revoke, NULL, ids, count);
	else if (r != STINT_STORE_NOT_FOUND)
		stint_revoke_drain_all(d->revoke);
	if (r == STINT_STORE_ERROR)
		end_agent_tasks(d, agent, by, n);
	if (r != STINT_STORE_OK)
		return r;
	record_pending =
		audit_revoke(d, event, agent, NULL, by, NULL, detail) != 0;
	for (i = 0; i < count; i++) {
		record_pending |= audit_revoke(d, "task-end", agent, ids[i], by,
					       "agent removed", NULL) != 0;
		/* deleg: their descendants (other agents' tasks) too */
		(void)revoke(d, ids[i], STINT_TASK_ENDED, "agent removed", &c);
		record_pending |= cascade_finish(d, ids[i], &c, by);
		(void)stint_task_destroy_key(d, ids[i], agent, by, err,
					     sizeof(err));
	}
	*n = count;
	free(ids);
	pending_note(note, notelen, false, record_pending);
	return STINT_STORE_OK;
}

/* Ends state.db could not record: land them; destroy keys not known to
 * be destroyed (an end replayed from the journal after a restart). */
static void
reap_pending_ends(struct stintd *d)
{
	char(*keys)[STINT_TASK_ID_MAX + 1] = NULL;
	size_t left = 0, n = 0, i;
	char err[256];

	if (stint_store_ends_retry(d->store, &left, &keys, &n) !=
	    STINT_STORE_OK)
		return;
	for (i = 0; i < n; i++)
		(void)stint_task_destroy_key(d, keys[i], NULL, NULL, err,
					     sizeof(err));
	free(keys);
}

void
stint_task_reap_orphans(struct stintd *d)
{
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	struct cascade c = {NULL, 0, ""};
	struct stint_task t;
	char err[256], reason[STINT_REASON_MAX + 1];
	size_t n = 0, i;

	if (stint_store_tree_orphans(d->store, &ids, &n) != STINT_STORE_OK)
		return;
	for (i = 0; i < n; i++) {
		memset(&t, 0, sizeof(t));
		if (stint_store_task_get(d->store, ids[i], &t) !=
		    STINT_STORE_OK)
			continue;
		snprintf(reason, sizeof(reason), "parent %s is not live",
			 t.parent_id);
		if (revoke(d, t.id, STINT_TASK_ENDED, reason, &c) ==
		    STINT_STORE_OK)
			(void)audit_revoke(d, "task-end", t.agent, t.id, NULL,
					   reason, "orphan");
		(void)cascade_finish(d, t.id, &c, NULL);
		if (!t.key_destroyed)
			(void)stint_task_destroy_key(d, t.id, t.agent, NULL,
						     err, sizeof(err));
		stint_task_clear(&t);
	}
	free(ids);
}

void
stint_task_reap(struct stintd *d)
{
	char(*ids)[STINT_TASK_ID_MAX + 1] = NULL;
	struct cascade c = {NULL, 0, ""};
	struct stint_task t;
	char err[256];
	size_t n = 0, i;
	int r;

	stint_audit_pending_flush(d->audit);
	reap_pending_ends(d);
	stint_task_reap_orphans(d);
	if (stint_store_tasks_due(d->store, stintd_now(), &ids, &n) !=
	    STINT_STORE_OK)
		return;
	for (i = 0; i < n; i++) {
		memset(&t, 0, sizeof(t));
		if (stint_store_task_get(d->store, ids[i], &t) !=
		    STINT_STORE_OK)
			continue;
		if (t.state == STINT_TASK_LIVE &&
		    ((r = revoke(d, t.id, STINT_TASK_EXPIRED,
				 "deadline reached", &c)) == STINT_STORE_OK ||
		     r == STINT_STORE_PENDING)) {
			(void)audit_revoke(d, "task-expire", t.agent, t.id,
					   NULL, "deadline reached",
					   r == STINT_STORE_PENDING
						   ? "store=pending"
						   : NULL);
			stintd_count(d, STINT_C_TASK_EXPIRES);
			log_info("task %s expired", t.id);
		}
		(void)cascade_finish(d, t.id, &c, NULL);
		if (!t.key_destroyed)
			(void)stint_task_destroy_key(d, t.id, t.agent, NULL,
						     err, sizeof(err));
		stint_task_clear(&t);
	}
	free(ids);
}

static pthread_t reaper;
static struct stintd *reaper_d;
static pthread_mutex_t reaper_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reaper_cv = PTHREAD_COND_INITIALIZER;
static bool reaper_stop, reaper_running;

static void *
reaper_main(void *arg)
{
	struct stintd *d = arg;
	struct timespec until;

	pthread_mutex_lock(&reaper_lock);
	while (!reaper_stop) {
		pthread_mutex_unlock(&reaper_lock);
		stint_task_reap(d);
		pthread_mutex_lock(&reaper_lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)REAP_INTERVAL_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		if (!reaper_stop)
			pthread_cond_timedwait(&reaper_cv, &reaper_lock,
					       &until);
	}
	pthread_mutex_unlock(&reaper_lock);
	return NULL;
}

int
stint_reaper_start(struct stintd *d)
{
	reaper_stop = false;
	reaper_d = d;
	/* deleg: before anything is served, no task outlives its parent
	 * (a crash in the middle of a cascade that state.db could not
	 * commit at once) */
	stint_task_reap_orphans(d);
	if (pthread_create(&reaper, NULL, reaper_main, d) != 0)
		return -1;
	reaper_running = true;
	return 0;
}

void
stint_reaper_stop(void)
{
	if (!reaper_running)
		return;
	pthread_mutex_lock(&reaper_lock);
	reaper_stop = true;
	pthread_cond_signal(&reaper_cv);
	pthread_mutex_unlock(&reaper_lock);
	pthread_join(reaper, NULL);
	reaper_running = false;
	/* Records still waiting get a last chance before daemon-stop. */
	stint_audit_pending_close(reaper_d->audit);
}
