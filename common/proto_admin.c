/*
 * The admin protocol's codecs (common/proto.h), shared by the stint CLI
 * and stintd's admin handlers so that both read and write each message
 * the same way. Field tables: docs/protocol.md.
 */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/msg.h"
#include "common/proto.h"

/* --- AGENT_ADD ------------------------------------------------------- */

/* The selectors (ident): each as text under its key, when set. */
static const struct sel_key {
	uint64_t key;
	size_t off, cap;
} sel_keys[] = {
#define SEL(k, f)                                                              \
	{                                                                      \
		k, offsetof(struct stint_selectors, f),                        \
			sizeof(((struct stint_selectors *)0)->f)               \
	}
	SEL(STINT_K_EXE, exe),
	SEL(STINT_K_EXE_SHA256, exe_sha256),
	SEL(STINT_K_CGROUP, cgroup),
	SEL(STINT_K_UNIT, unit),
	SEL(STINT_K_LSM_LABEL, lsm_label),
#undef SEL
};

static int
put_selectors(struct stint_msg *m, const struct stint_selectors *sel)
{
	const char *v;
	size_t i;

	for (i = 0; i < sizeof(sel_keys) / sizeof(sel_keys[0]); i++) {
		v = (const char *)sel + sel_keys[i].off;
		if (v[0] != '\0' &&
		    stint_msg_put_text(m, sel_keys[i].key, v) != 0)
			return -1;
	}
	return 0;
}

/* 0, or the key of the first selector that is not text that fits. */
static uint64_t
get_selectors(const struct stint_msg *m, struct stint_selectors *sel)
{
	char *v;
	size_t i;

	for (i = 0; i < sizeof(sel_keys) / sizeof(sel_keys[0]); i++) {
		v = (char *)sel + sel_keys[i].off;
		if (stint_msg_has(m, sel_keys[i].key) &&
		    stint_msg_get_text(m, sel_keys[i].key, v,
				       sel_keys[i].cap) != 0) {
			v[0] = '\0';
			return sel_keys[i].key;
		}
	}
	return 0;
}

/* deleg: an agent's delegate-to list and max depth (absent: none, 0). */
static int
put_delegation(struct stint_msg *m, const char *to, uint32_t depth)
{
	int e = 0;

	if (to[0] != '\0')
		e = stint_msg_put_text(m, STINT_K_DELEGATE_TO, to);
	if (e == 0 && depth != 0)
		e = stint_msg_put_uint(m, STINT_K_MAX_DEPTH, depth);
	return e;
}

static int
get_delegation(const struct stint_msg *m, char *to, size_t cap, uint32_t *depth,
	       uint64_t *bad)
{
	uint64_t v = 0;

	to[0] = '\0';
	*depth = 0;
	if (stint_msg_has(m, STINT_K_DELEGATE_TO) &&
	    stint_msg_get_text(m, STINT_K_DELEGATE_TO, to, cap) != 0) {
		to[0] = '\0';
		*bad = STINT_K_DELEGATE_TO;
		return STINT_WIRE_RANGE;
	}
	if (stint_msg_has(m, STINT_K_MAX_DEPTH) &&
	    (stint_msg_get_uint(m, STINT_K_MAX_DEPTH, &v) != 0 ||
	     v > STINT_DEPTH_MAX)) {
		*bad = STINT_K_MAX_DEPTH;
		return STINT_WIRE_RANGE;
	}
	*depth = (uint32_t)v;
	return 0;
}

int
stint_enc_agent_add_req(struct stint_msg *m,
			const struct stint_agent_add_req *r)
{
	int e = stint_msg_put_text(m, STINT_K_AGENT, r->name);

	if (e == 0)
		e = stint_msg_put_uint(m, STINT_K_UID, r->uid);
	if (e == 0 && r->has_gid)
		e = stint_msg_put_uint(m, STINT_K_GID, r->gid);
	if (e == 0 && r->has_max_ttl)
		e = stint_msg_put_uint(m, STINT_K_MAX_TTL, r->max_ttl);
	if (e == 0 && r->n_mechs > 0)
		e = stint_msg_put_uint_array(m, STINT_K_MECHS, r->mechs,
					     r->n_mechs);
	if (e == 0)
		e = put_selectors(m, &r->sel);
	if (e == 0 && r->audiences[0] != '\0') /* aud */
		e = stint_msg_put_text(m, STINT_K_AUDIENCES, r->audiences);
	if (e == 0)
		e = put_delegation(m, r->delegate_to, r->max_depth);
	return e;
}

/* A uint below UINT32_MAX under key. */
static int
get_id32(const struct stint_msg *m, uint64_t key, uint32_t *v)
{
	uint64_t u;

	if (stint_msg_get_uint(m, key, &u) != 0 || u >= UINT32_MAX)
		return STINT_WIRE_RANGE;
	*v = (uint32_t)u;
	return 0;
}

static int
bad_field(uint64_t *bad, uint64_t key)
{
	*bad = key;
	return STINT_WIRE_RANGE;
}

/* aud: the audiences, if present: text that fits ("" when absent). */
static int
get_audiences(const struct stint_msg *m, char *buf, size_t cap)
{
	buf[0] = '\0';
	if (stint_msg_has(m, STINT_K_AUDIENCES) &&
	    stint_msg_get_text(m, STINT_K_AUDIENCES, buf, cap) != 0) {
		buf[0] = '\0';
		return -1;
	}
	return 0;
}

int
stint_dec_agent_add_req(const struct stint_msg *m,
			struct stint_agent_add_req *r, uint64_t *bad)
{
	uint64_t key;

	memset(r, 0, sizeof(*r));
	*bad = 0;
	if (stint_msg_get_text(m, STINT_K_AGENT, r->name, sizeof(r->name)) !=
	    0) {
		r->name[0] = '\0';
		return bad_field(bad, STINT_K_AGENT);
	}
	if (get_id32(m, STINT_K_UID, &r->uid) != 0)
		return bad_field(bad, STINT_K_UID);
	if (stint_msg_has(m, STINT_K_GID)) {
		if (get_id32(m, STINT_K_GID, &r->gid) != 0)
			return bad_field(bad, STINT_K_GID);
		r->has_gid = true;
	}
	if (stint_msg_has(m, STINT_K_MAX_TTL)) {
		if (stint_msg_get_uint(m, STINT_K_MAX_TTL, &r->max_ttl) != 0 ||
		    r->max_ttl == 0)
			return bad_field(bad, STINT_K_MAX_TTL);
		r->has_max_ttl = true;
	}
	if (stint_msg_has(m, STINT_K_MECHS) &&
	    (stint_msg_get_uint_array(m, STINT_K_MECHS, r->mechs,
				      STINT_MECHS_MAX, &r->n_mechs) != 0 ||
	     r->n_mechs == 0)) {
		r->n_mechs = 0;
		return bad_field(bad, STINT_K_MECHS);
	}
	if ((key = get_selectors(m, &r->sel)) != 0)
		return bad_field(bad, key);
	if (get_audiences(m, r->audiences, sizeof(r->audiences)) != 0)
		return bad_field(bad, STINT_K_AUDIENCES);
	return get_delegation(m, r->delegate_to, sizeof(r->delegate_to),
			      &r->max_depth, bad);
}

/* --- AGENT_LIST ------------------------------------------------------ */

int
stint_put_agent_list_entry(struct stint_msg *m,
			   const struct stint_agent_info *a)
{
	struct stint_msg *e;
	int r = 0;

	if ((e = stint_msg_new()) == NULL)
		return STINT_WIRE_NOMEM;
	r |= stint_msg_put_text(e, STINT_K_AGENT, a->name);
	r |= stint_msg_put_uint(e, STINT_K_UID, a->uid);
	if (a->has_gid)
		r |= stint_msg_put_uint(e, STINT_K_GID, a->gid);
	r |= stint_msg_put_uint(e, STINT_K_MAX_TTL, a->max_ttl);
	r |= stint_msg_put_uint_array(e, STINT_K_MECHS, a->mechs, a->n_mechs);
	r |= stint_msg_put_uint(e, STINT_K_CREATED, a->created);
	r |= put_selectors(e, &a->sel);
	if (a->audiences[0] != '\0') /* aud */
		r |= stint_msg_put_text(e, STINT_K_AUDIENCES, a->audiences);
	if (a->source[0] != '\0')
		r |= stint_msg_put_text(e, STINT_K_SOURCE, a->source);
	r |= put_delegation(e, a->delegate_to, a->max_depth); /* deleg */
	r |= stint_msg_append_map(m, STINT_K_AGENTS, e);
	return r ? -1 : 0;
}

int
stint_put_agent_list_end(struct stint_msg *m, size_t n)
{
	return n == 0 ? stint_msg_put_uint_array(m, STINT_K_AGENTS, NULL, 0)
		      : 0;
}

static int
get_agent_info(const struct stint_msg *m, struct stint_agent_info *a)
{
	uint64_t uid = 0, gid = 0, bad = 0;

	memset(a, 0, sizeof(*a));
	if (stint_msg_get_text(m, STINT_K_AGENT, a->name, sizeof(a->name)) !=
		    0 ||
	    stint_msg_get_uint(m, STINT_K_UID, &uid) != 0)
		return STINT_WIRE_MISSING;
	a->uid = (uint32_t)uid;
	(void)stint_msg_get_uint(m, STINT_K_MAX_TTL, &a->max_ttl);
	(void)stint_msg_get_uint(m, STINT_K_CREATED, &a->created);
	if (stint_msg_has(m, STINT_K_GID) &&
	    stint_msg_get_uint(m, STINT_K_GID, &gid) == 0) {
		a->has_gid = true;
		a->gid = (uint32_t)gid;
	}
	if (stint_msg_get_uint_array(m, STINT_K_MECHS, a->mechs,
				     STINT_MECHS_MAX, &a->n_mechs) != 0)
		a->n_mechs = 0;
	if (get_selectors(m, &a->sel) != 0 ||
	    get_audiences(m, a->audiences, sizeof(a->audiences)) != 0)
		return STINT_WIRE_MALFORMED;
	if (stint_msg_has(m, STINT_K_SOURCE) &&
	    stint_msg_get_text(m, STINT_K_SOURCE, a->source,
			       sizeof(a->source)) != 0)
		return STINT_WIRE_MALFORMED;
	if (get_delegation(m, a->delegate_to, sizeof(a->delegate_to),
			   &a->max_depth, &bad) != 0)
		return STINT_WIRE_MALFORMED;
	return 0;
}

int
stint_get_agent_list_rep(const struct stint_msg *m,
			 struct stint_agent_info **out, size_t *n)
{
	const struct stint_msg *child;
	size_t i;

	*out = NULL;
	*n = 0;
	if (stint_msg_has(m, STINT_K_AGENTS) &&
	    stint_msg_get_array_len(m, STINT_K_AGENTS, n) != 0)
		return STINT_WIRE_MALFORMED;
	if (*n == 0)
		return 0;
	if ((*out = calloc(*n, sizeof(**out))) == NULL) {
		*n = 0;
		return STINT_WIRE_NOMEM;
	}
	for (i = 0; i < *n; i++) {
		if (stint_msg_get_map_at(m, STINT_K_AGENTS, i, &child) != 0 ||
		    get_agent_info(child, &(*out)[i]) != 0) {
			free(*out);
			*out = NULL;
			*n = 0;
			return STINT_WIRE_MALFORMED;
		}
	}
	return 0;
}

/* --- requests naming one thing, replies that end things -------------- */

int
stint_enc_name_req(struct stint_msg *m, uint64_t key, const char *name)
{
	return stint_msg_put_text(m, key, name);
}

int
stint_dec_name_req(const struct stint_msg *m, uint64_t key, char *buf,
		   size_t cap)
{
	return stint_msg_get_text(m, key, buf, cap);
}

int
stint_put_done_rep(struct stint_msg *m, const struct stint_done_rep *r)
{
	int e = 0;

	if (r->has_counter)
		e |= stint_msg_put_uint(m, STINT_K_COUNTER, r->counter);
	if (r->has_count)
		e |= stint_msg_put_uint(m, STINT_K_COUNT, r->count);
	if (e == 0 && r->note[0] != '\0')
		e = stint_msg_put_text(m, STINT_K_REASON, r->note);
	return e ? -1 : 0;
}

void
stint_get_done_rep(const struct stint_msg *m, struct stint_done_rep *r)
{
	memset(r, 0, sizeof(*r));
	r->has_count = stint_msg_get_uint(m, STINT_K_COUNT, &r->count) == 0;
	r->has_counter =
		stint_msg_get_uint(m, STINT_K_COUNTER, &r->counter) == 0;
	if (stint_msg_get_text(m, STINT_K_REASON, r->note, sizeof(r->note)) !=
	    0)
		r->note[0] = '\0';
}

/* --- TASK_START, TASK_END, TASK_LIST requests ------------------------ */

int
stint_enc_task_start_req(struct stint_msg *m,
			 const struct stint_task_start_req *r)
{
	int e = stint_msg_put_text(m, STINT_K_AGENT, r->agent);

	if (e == 0 && r->has_ttl)
		e = stint_msg_put_uint(m, STINT_K_TTL, r->ttl);
	if (e == 0 && r->has_key_type)
		e = stint_msg_put_uint(m, STINT_K_KEY_TYPE, r->key_type);
	if (e == 0 && r->max_sigs != 0)
		e = stint_msg_put_uint(m, STINT_K_MAX_SIGS, r->max_sigs);
	if (e == 0 && r->has_intent)
		e = stint_msg_put_text(m, STINT_K_INTENT, r->intent);
	if (e == 0 && r->bind_pid != 0)
		e = stint_msg_put_uint(m, STINT_K_BIND_PID, r->bind_pid);
	if (e == 0 && r->bind_cgroup[0] != '\0')
		e = stint_msg_put_text(m, STINT_K_BIND_CGROUP, r->bind_cgroup);
	if (e == 0 && r->run_pid != 0)
		e = stint_msg_put_uint(m, STINT_K_RUN_PID, r->run_pid);
	if (e == 0 && r->run_cgroup[0] != '\0') /* runcg */
		e = stint_msg_put_text(m, STINT_K_RUN_CGROUP, r->run_cgroup);
	if (e == 0 && r->has_audiences) /* aud: "" asks for none */
		e = stint_msg_put_text(m, STINT_K_AUDIENCES, r->audiences);
	return e;
}

/* bind: a pid field, if present: 1..INT32_MAX. */
static int
get_pid(const struct stint_msg *m, uint64_t key, uint32_t *pid)
{
	uint64_t v;

	if (!stint_msg_has(m, key))
		return 0;
	if (stint_msg_get_uint(m, key, &v) != 0 || v == 0 || v > INT32_MAX)
		return -1;
	*pid = (uint32_t)v;
	return 0;
}

/* bind: the binding fields of TASK_START. */
static int
dec_task_bind(const struct stint_msg *m, struct stint_task_start_req *r,
	      uint64_t *bad)
{
	if (get_pid(m, STINT_K_BIND_PID, &r->bind_pid) != 0)
		return bad_field(bad, STINT_K_BIND_PID);
	if (stint_msg_has(m, STINT_K_BIND_CGROUP) &&
	    (stint_msg_get_text(m, STINT_K_BIND_CGROUP, r->bind_cgroup,
				sizeof(r->bind_cgroup)) != 0 ||
	     r->bind_cgroup[0] != '/')) {
		r->bind_cgroup[0] = '\0';
		return bad_field(bad, STINT_K_BIND_CGROUP);
	}
	if (get_pid(m, STINT_K_RUN_PID, &r->run_pid) != 0 ||
	    (r->bind_pid != 0) + (r->bind_cgroup[0] != '\0') +
			    (r->run_pid != 0) >
		    1)
		return bad_field(bad, STINT_K_RUN_PID);
	/* runcg: the prepared cgroup, only for stint run's command */
	if (stint_msg_has(m, STINT_K_RUN_CGROUP) &&
	    (stint_msg_get_text(m, STINT_K_RUN_CGROUP, r->run_cgroup,
				sizeof(r->run_cgroup)) != 0 ||
	     r->run_cgroup[0] != '/' || r->run_pid == 0)) {
		r->run_cgroup[0] = '\0';
		return bad_field(bad, STINT_K_RUN_CGROUP);
	}
	return 0;
}

/* --- RUN_PREPARE (runcg) ----------------------------------------------- */

int
stint_enc_run_prepare_req(struct stint_msg *m,
			  const struct stint_run_prepare_req *r)
{
	int e = stint_msg_put_text(m, STINT_K_AGENT, r->agent);

	if (e == 0)
		e = stint_msg_put_uint(m, STINT_K_RUN_PID, r->run_pid);
	return e;
}

int
stint_dec_run_prepare_req(const struct stint_msg *m,
			  struct stint_run_prepare_req *r, uint64_t *bad)
{
	memset(r, 0, sizeof(*r));
	*bad = 0;
	if (stint_msg_get_text(m, STINT_K_AGENT, r->agent, sizeof(r->agent)) !=
	    0)
		return bad_field(bad, STINT_K_AGENT);
	if (!stint_msg_has(m, STINT_K_RUN_PID) ||
	    get_pid(m, STINT_K_RUN_PID, &r->run_pid) != 0)
		return bad_field(bad, STINT_K_RUN_PID);
	return 0;
}

int
stint_put_run_prepare_rep(struct stint_msg *m,
			  const struct stint_run_prepare_rep *r)
{
	int e = 0;

	if (r->cgroup[0] != '\0')
		e = stint_msg_put_text(m, STINT_K_RUN_CGROUP, r->cgroup);
	if (e == 0 && r->cgroup[0] != '\0')
		e = stint_msg_put_bool(m, STINT_K_RUN_MOVED, r->moved);
	if (e == 0 && r->note[0] != '\0')
		e = stint_msg_put_text(m, STINT_K_NOTE, r->note);
	return e;
}

int
stint_dec_task_start_req(const struct stint_msg *m,
			 struct stint_task_start_req *r, uint64_t *bad)
{
	uint64_t v;

	memset(r, 0, sizeof(*r));
	*bad = 0;
	if (stint_msg_get_text(m, STINT_K_AGENT, r->agent, sizeof(r->agent)) !=
	    0)
		return bad_field(bad, STINT_K_AGENT);
	if (stint_msg_has(m, STINT_K_TTL)) {
		if (stint_msg_get_uint(m, STINT_K_TTL, &r->ttl) != 0 ||
		    r->ttl == 0)
			return bad_field(bad, STINT_K_TTL);
		r->has_ttl = true;
	}
	if (stint_msg_has(m, STINT_K_KEY_TYPE)) {
		if (stint_msg_get_uint(m, STINT_K_KEY_TYPE, &v) != 0 ||
		    stint_key_type_str((uint32_t)v) == NULL || v > UINT32_MAX)
			return bad_field(bad, STINT_K_KEY_TYPE);
		r->has_key_type = true;
		r->key_type = (uint32_t)v;
	}
	if (stint_msg_has(m, STINT_K_MAX_SIGS) &&
	    stint_msg_get_uint(m, STINT_K_MAX_SIGS, &r->max_sigs) != 0)
		return bad_field(bad, STINT_K_MAX_SIGS);
	if (stint_msg_has(m, STINT_K_INTENT)) {
		if (stint_msg_get_text(m, STINT_K_INTENT, r->intent,
				       sizeof(r->intent)) != 0)
			return bad_field(bad, STINT_K_INTENT);
		r->has_intent = true;
	}
	r->has_audiences = stint_msg_has(m, STINT_K_AUDIENCES);
	if (get_audiences(m, r->audiences, sizeof(r->audiences)) != 0)
		return bad_field(bad, STINT_K_AUDIENCES);
	return dec_task_bind(m, r, bad);
}

int
stint_enc_task_end_req(struct stint_msg *m, const struct stint_task_end_req *r)
{
	int e = stint_msg_put_text(m, STINT_K_TASK, r->task);

	if (e == 0 && r->has_reason)
		e = stint_msg_put_text(m, STINT_K_REASON, r->reason);
	return e;
}

int
stint_dec_task_end_req(const struct stint_msg *m, struct stint_task_end_req *r,
		       uint64_t *bad)
{
	memset(r, 0, sizeof(*r));
	*bad = 0;
	if (stint_msg_get_text(m, STINT_K_TASK, r->task, sizeof(r->task)) != 0)
		return bad_field(bad, STINT_K_TASK);
	if (stint_msg_has(m, STINT_K_REASON)) {
		if (stint_msg_get_text(m, STINT_K_REASON, r->reason,
				       sizeof(r->reason)) != 0) {
			r->reason[0] = '\0';
			return bad_field(bad, STINT_K_REASON);
		}
		r->has_reason = true;
	}
	return 0;
}

int
stint_enc_task_list_req(struct stint_msg *m,
			const struct stint_task_list_req *r)
{
	int e = 0;

	if (r->has_agent)
		e = stint_msg_put_text(m, STINT_K_AGENT, r->agent);
	if (e == 0 && r->all)
		e = stint_msg_put_bool(m, STINT_K_ALL, true);
	if (e == 0 && r->cursor[0] != '\0')
		e = stint_msg_put_text(m, STINT_K_CURSOR, r->cursor);
	return e;
}

int
stint_dec_task_list_req(const struct stint_msg *m,
			struct stint_task_list_req *r)
{
	memset(r, 0, sizeof(*r));
	if (stint_msg_has(m, STINT_K_AGENT)) {
		if (stint_msg_get_text(m, STINT_K_AGENT, r->agent,
				       sizeof(r->agent)) != 0)
			return STINT_WIRE_RANGE;
		r->has_agent = true;
	}
	if (stint_msg_has(m, STINT_K_ALL) &&
	    stint_msg_get_bool(m, STINT_K_ALL, &r->all) != 0)
		return STINT_WIRE_TYPE;
	if (stint_msg_has(m, STINT_K_CURSOR) &&
	    stint_msg_get_text(m, STINT_K_CURSOR, r->cursor,
			       sizeof(r->cursor)) != 0)
		return STINT_WIRE_RANGE;
	return 0;
}

/* --- AUDIT_TAIL ------------------------------------------------------ */

int
stint_enc_audit_tail_req(struct stint_msg *m,
			 const struct stint_audit_tail_req *r)
{
	return r->has_count ? stint_msg_put_uint(m, STINT_K_COUNT, r->count)
			    : 0;
}

int
stint_dec_audit_tail_req(const struct stint_msg *m,
			 struct stint_audit_tail_req *r)
{
	memset(r, 0, sizeof(*r));
	if (!stint_msg_has(m, STINT_K_COUNT))
		return 0;
	if (stint_msg_get_uint(m, STINT_K_COUNT, &r->count) != 0)
		return STINT_WIRE_TYPE;
	r->has_count = true;
	return 0;
}

int
stint_put_audit_tail_rep(struct stint_msg *m, const char *path,
			 const char *const *lines, size_t n)
{
	size_t i;
	int e;

	e = stint_msg_put_text(m, STINT_K_PATH, path);
	for (i = 0; e == 0 && i < n; i++)
		e = stint_msg_append_text(m, STINT_K_LINES, lines[i]);
	if (e == 0 && n == 0)
		e = stint_msg_put_uint_array(m, STINT_K_LINES, NULL, 0);
	return e ? -1 : 0;
}

int
stint_get_audit_tail_n(const struct stint_msg *m, size_t *n)
{
	*n = 0;
	if (!stint_msg_has(m, STINT_K_LINES))
		return 0;
	return stint_msg_get_array_len(m, STINT_K_LINES, n) != 0
		       ? STINT_WIRE_TYPE
		       : 0;
}

int
stint_get_audit_tail_line(const struct stint_msg *m, size_t i, char *buf,
			  size_t cap)
{
	return stint_msg_get_text_at(m, STINT_K_LINES, i, buf, cap) != 0
		       ? STINT_WIRE_TYPE
		       : 0;
}

/* --- TASK_EVIDENCE --------------------------------------------------- */

int
stint_put_evidence_rep(struct stint_msg *m, const struct stint_evidence_rep *r)
{
	int e = 0;

	e |= stint_msg_put_bytes(m, STINT_K_EVIDENCE, r->doc, r->doc_len);
	e |= stint_msg_put_bytes(m, STINT_K_AK_SPKI, r->ak_spki, r->ak_len);
	return e ? -1 : 0;
}

int
stint_get_evidence_rep(const struct stint_msg *m, struct stint_evidence_rep *r)
{
	int e;

	memset(r, 0, sizeof(*r));
	if ((e = stint_msg_get_bytes(m, STINT_K_EVIDENCE, &r->doc,
				     &r->doc_len)) != 0)
		return e;
	if (stint_msg_get_bytes(m, STINT_K_AK_SPKI, &r->ak_spki, &r->ak_len) !=
	    0) {
		r->ak_spki = NULL;
		r->ak_len = 0;
	}
	return 0;
}

/* --- The task map (TASK_START, TASK_SHOW, TASK_LIST) ------------------ */

static int
put_bytes_if(struct stint_msg *m, uint64_t key, const uint8_t *p, size_t len)
{
	return len > 0 ? stint_msg_put_bytes(m, key, p, len) : 0;
}

/* bind: what a task is bound to. */
static int
put_task_bind(struct stint_msg *m, const struct stint_task_info *t)
{
	int r = 0;

	if (t->bind_pid != 0) {
		r |= stint_msg_put_uint(m, STINT_K_BIND_PID, t->bind_pid);
		r |= stint_msg_put_uint(m, STINT_K_BIND_START, t->bind_start);
	} else if (t->bind_cgroup[0] != '\0') {
		r |= stint_msg_put_text(m, STINT_K_BIND_CGROUP, t->bind_cgroup);
		r |= stint_msg_put_bool(m, STINT_K_BIND_OWNED, t->bind_owned);
	}
	return r;
}

/* deleg: where a task sits in its tree; nothing when root is "". */
static int
put_task_tree(struct stint_msg *m, const struct stint_task_info *t)
{
	int r = 0;

	if (t->root[0] == '\0')
		return 0;
	if (t->parent[0] != '\0')
		r |= stint_msg_put_text(m, STINT_K_PARENT, t->parent);
	r |= stint_msg_put_text(m, STINT_K_ROOT, t->root);
	r |= stint_msg_put_uint(m, STINT_K_DEPTH, t->depth);
	r |= stint_msg_put_text(m, STINT_K_DPATH, t->dpath);
	r |= stint_msg_put_uint(m, STINT_K_RESERVED, t->reserved);
	return r;
}

/* In the order of docs/protocol.md's task map. */
int
stint_put_task_info(struct stint_msg *m, const struct stint_task_info *t)
{
	int r = 0;

	r |= stint_msg_put_text(m, STINT_K_TASK, t->id);
	r |= stint_msg_put_text(m, STINT_K_AGENT, t->agent);
	r |= stint_msg_put_uint(m, STINT_K_KEY_TYPE, t->key_type);
	r |= stint_msg_put_text(m, STINT_K_STATE, t->state);
	r |= stint_msg_put_uint(m, STINT_K_CREATED, t->created);
	r |= stint_msg_put_uint(m, STINT_K_NOT_AFTER, t->not_after);
	if (t->has_ended)
		r |= stint_msg_put_uint(m, STINT_K_ENDED, t->ended);
	if (t->reason[0] != '\0')
		r |= stint_msg_put_text(m, STINT_K_REASON, t->reason);
	if (t->has_sigs) {
		r |= stint_msg_put_uint(m, STINT_K_MAX_SIGS, t->max_sigs);
		r |= stint_msg_put_uint(m, STINT_K_SIGS_USED, t->used_sigs);
	}
	if (t->intent[0] != '\0')
		r |= stint_msg_put_text(m, STINT_K_INTENT, t->intent);
	r |= stint_msg_put_uint_array(m, STINT_K_MECHS, t->mechs, t->n_mechs);
	r |= stint_msg_put_text(m, STINT_K_URI, t->uri);
	r |= put_bytes_if(m, STINT_K_SPKI, t->spki, t->spki_len);
	r |= put_bytes_if(m, STINT_K_CERT, t->cert, t->cert_len);
	r |= put_task_bind(m, t);
	if (t->audiences[0] != '\0') /* aud */
		r |= stint_msg_put_text(m, STINT_K_AUDIENCES, t->audiences);
	r |= put_task_tree(m, t);
	return r ? -1 : 0;
}

/* Text under key, "" when absent or not text that fits. */
static void
get_text_lenient(const struct stint_msg *m, uint64_t key, char *buf, size_t cap)
{
	if (stint_msg_get_text(m, key, buf, cap) != 0)
		buf[0] = '\0';
}

void
stint_get_run_prepare_rep(const struct stint_msg *m,
			  struct stint_run_prepare_rep *r)
{
	memset(r, 0, sizeof(*r));
	get_text_lenient(m, STINT_K_RUN_CGROUP, r->cgroup, sizeof(r->cgroup));
	if (r->cgroup[0] != '/')
		r->cgroup[0] = '\0';
	if (stint_msg_get_bool(m, STINT_K_RUN_MOVED, &r->moved) != 0)
		r->moved = false;
	get_text_lenient(m, STINT_K_NOTE, r->note, sizeof(r->note));
}

static void
get_task_bind(const struct stint_msg *m, struct stint_task_info *t)
{
	if (stint_msg_get_uint(m, STINT_K_BIND_PID, &t->bind_pid) == 0) {
		(void)stint_msg_get_uint(m, STINT_K_BIND_START, &t->bind_start);
		return;
	}
	t->bind_pid = 0;
	if (stint_msg_get_text(m, STINT_K_BIND_CGROUP, t->bind_cgroup,
			       sizeof(t->bind_cgroup)) == 0)
		(void)stint_msg_get_bool(m, STINT_K_BIND_OWNED, &t->bind_owned);
	else
		t->bind_cgroup[0] = '\0';
}

static void
get_task_tree(const struct stint_msg *m, struct stint_task_info *t)
{
	uint64_t depth = 0;

	get_text_lenient(m, STINT_K_PARENT, t->parent, sizeof(t->parent));
	get_text_lenient(m, STINT_K_ROOT, t->root, sizeof(t->root));
	if (stint_msg_get_uint(m, STINT_K_DEPTH, &depth) == 0 &&
	    depth <= UINT32_MAX)
		t->depth = (uint32_t)depth;
	get_text_lenient(m, STINT_K_DPATH, t->dpath, sizeof(t->dpath));
	if (stint_msg_get_uint(m, STINT_K_RESERVED, &t->reserved) != 0)
		t->reserved = 0;
}

int
stint_get_task_info(const struct stint_msg *m, struct stint_task_info *t)
{
	uint64_t kt = 0;

	memset(t, 0, sizeof(*t));
	if (stint_msg_get_text(m, STINT_K_TASK, t->id, sizeof(t->id)) != 0 ||
	    stint_msg_get_text(m, STINT_K_AGENT, t->agent, sizeof(t->agent)) !=
		    0 ||
	    stint_msg_get_uint(m, STINT_K_NOT_AFTER, &t->not_after) != 0) {
		memset(t, 0, sizeof(*t));
		return STINT_WIRE_MISSING;
	}
	(void)stint_msg_get_uint(m, STINT_K_KEY_TYPE, &kt);
	t->key_type = (uint32_t)kt;
	get_text_lenient(m, STINT_K_STATE, t->state, sizeof(t->state));
	(void)stint_msg_get_uint(m, STINT_K_CREATED, &t->created);
	t->has_ended = stint_msg_get_uint(m, STINT_K_ENDED, &t->ended) == 0;
	get_text_lenient(m, STINT_K_REASON, t->reason, sizeof(t->reason));
	if (stint_msg_has(m, STINT_K_SIGS_USED)) {
		t->has_sigs = true;
		(void)stint_msg_get_uint(m, STINT_K_MAX_SIGS, &t->max_sigs);
		(void)stint_msg_get_uint(m, STINT_K_SIGS_USED, &t->used_sigs);
	}
	get_text_lenient(m, STINT_K_INTENT, t->intent, sizeof(t->intent));
	if (stint_msg_get_uint_array(m, STINT_K_MECHS, t->mechs,
				     STINT_MECHS_MAX, &t->n_mechs) != 0)
		t->n_mechs = 0;
	get_text_lenient(m, STINT_K_URI, t->uri, sizeof(t->uri));
	if (stint_msg_get_bytes(m, STINT_K_SPKI, &t->spki, &t->spki_len) != 0) {
		t->spki = NULL;
		t->spki_len = 0;
	}
	if (stint_msg_get_bytes(m, STINT_K_CERT, &t->cert, &t->cert_len) != 0) {
		t->cert = NULL;
		t->cert_len = 0;
	}
	get_task_bind(m, t);
	get_text_lenient(m, STINT_K_AUDIENCES, t->audiences,
			 sizeof(t->audiences));
	get_task_tree(m, t);
	return 0;
}

int
stint_put_task_start_rep(struct stint_msg *m, const struct stint_task_info *t,
			 const char *note)
{
	int r = stint_put_task_info(m, t);

	if (r == 0 && note != NULL && note[0] != '\0')
		r = stint_msg_put_text(m, STINT_K_NOTE, note);
	return r;
}

int
stint_get_task_start_rep(const struct stint_msg *m, struct stint_task_info *t,
			 char *note, size_t cap)
{
	get_text_lenient(m, STINT_K_NOTE, note, cap);
	return stint_get_task_info(m, t);
}

int
stint_put_task_list_entry(struct stint_msg *m, const struct stint_task_info *t)
{
	struct stint_msg *e;

	if ((e = stint_msg_new()) == NULL)
		return -1;
	if (stint_put_task_info(e, t) != 0) {
		stint_msg_free(e);
		return -1;
	}
	return stint_msg_append_map(m, STINT_K_TASKS, e);
}

int
stint_put_task_list_end(struct stint_msg *m, size_t n, bool more)
{
	int r = 0;

	if (n == 0)
		r = stint_msg_put_uint_array(m, STINT_K_TASKS, NULL, 0);
	if (r == 0)
		r = stint_msg_put_bool(m, STINT_K_MORE, more);
	return r;
}

int
stint_get_task_list_rep(const struct stint_msg *m, size_t *n, bool *more)
{
	*n = 0;
	*more = false;
	if (stint_msg_has(m, STINT_K_MORE) &&
	    stint_msg_get_bool(m, STINT_K_MORE, more) != 0)
		return STINT_WIRE_TYPE;
	if (stint_msg_has(m, STINT_K_TASKS) &&
	    stint_msg_get_array_len(m, STINT_K_TASKS, n) != 0)
		return STINT_WIRE_TYPE;
	return 0;
}

int
stint_get_task_list_entry(const struct stint_msg *m, size_t i,
			  struct stint_task_info *t)
{
	const struct stint_msg *e;

	if (stint_msg_get_map_at(m, STINT_K_TASKS, i, &e) != 0) {
		memset(t, 0, sizeof(*t));
		return STINT_WIRE_TYPE;
	}
	return stint_get_task_info(e, t);
}

/* --- CA_CERT, CA_CSR, CA_INSTALL --------------------------------------- */

int
stint_put_ca_cert_rep(struct stint_msg *m, const struct stint_ca_cert_rep *r)
{
	int e = 0;

	e |= stint_msg_put_bytes(m, STINT_K_PEM, r->pem, r->pem_len);
	e |= put_bytes_if(m, STINT_K_AK_SPKI, r->ak_spki, r->ak_len);
	e |= stint_msg_put_text(m, STINT_K_TRUST_DOMAIN, r->trust_domain);
	return e ? -1 : 0;
}

int
stint_get_ca_cert_rep(const struct stint_msg *m, struct stint_ca_cert_rep *r)
{
	int e;

	memset(r, 0, sizeof(*r));
	if ((e = stint_msg_get_bytes(m, STINT_K_PEM, &r->pem, &r->pem_len)) !=
	    0) {
		memset(r, 0, sizeof(*r));
		return e;
	}
	if (stint_msg_get_bytes(m, STINT_K_AK_SPKI, &r->ak_spki, &r->ak_len) !=
	    0) {
		r->ak_spki = NULL;
		r->ak_len = 0;
	}
	get_text_lenient(m, STINT_K_TRUST_DOMAIN, r->trust_domain,
			 sizeof(r->trust_domain));
	return 0;
}

int
stint_put_pem_msg(struct stint_msg *m, const struct stint_pem_msg *r)
{
	return stint_msg_put_bytes(m, STINT_K_PEM, r->pem, r->len) ? -1 : 0;
}

int
stint_get_pem_msg(const struct stint_msg *m, struct stint_pem_msg *r)
{
	int e = stint_msg_get_bytes(m, STINT_K_PEM, &r->pem, &r->len);

	if (e == 0 && r->len == 0)
		e = STINT_WIRE_RANGE;
	if (e != 0) {
		r->pem = NULL;
		r->len = 0;
	}
	return e;
}

/* --- AUDIT_ROTATE ---------------------------------------------------- */

int
stint_put_audit_rotate_rep(struct stint_msg *m,
			   const struct stint_audit_rotate_rep *r)
{
	int e = 0;

	e |= stint_msg_put_text(m, STINT_K_PATH, r->path);
	e |= stint_msg_put_uint(m, STINT_K_AUDIT_SEQ, r->seq);
	return e ? -1 : 0;
}

void
stint_get_audit_rotate_rep(const struct stint_msg *m,
			   struct stint_audit_rotate_rep *r)
{
	memset(r, 0, sizeof(*r));
	if (stint_msg_get_text(m, STINT_K_PATH, r->path, sizeof(r->path)) != 0)
		snprintf(r->path, sizeof(r->path), "?");
	(void)stint_msg_get_uint(m, STINT_K_AUDIT_SEQ, &r->seq);
}

/* --- STATUS ---------------------------------------------------------- */

int
stint_put_status_rep(struct stint_msg *m, const struct stint_status_rep *s)
{
	int r = 0;

	r |= stint_msg_put_uint(m, STINT_K_VERSION, s->version);
	r |= stint_msg_put_uint(m, STINT_K_PID, s->pid);
	r |= stint_msg_put_uint(m, STINT_K_UPTIME, s->uptime);
	r |= stint_msg_put_text(m, STINT_K_BACKEND, s->backend);
	r |= stint_msg_put_text(m, STINT_K_TRUST_DOMAIN, s->trust_domain);
	r |= stint_msg_put_uint(m, STINT_K_N_AGENTS, s->n_agents);
	r |= stint_msg_put_uint(m, STINT_K_N_LIVE, s->n_live);
	r |= stint_msg_put_text(m, STINT_K_PATH, s->path);
	r |= stint_msg_put_text(m, STINT_K_SYNC, s->sync);
	if (s->has_head) {
		r |= stint_msg_put_uint(m, STINT_K_AUDIT_SEQ, s->audit_seq);
		r |= stint_msg_put_bytes(m, STINT_K_AUDIT_HASH, s->audit_hash,
					 sizeof(s->audit_hash));
	}
	if (s->has_nv)
		r |= stint_msg_put_uint(m, STINT_K_AUDIT_NV, s->audit_nv);
	if (s->has_ready) {
		r |= stint_msg_put_uint(m, STINT_K_READY_KEYS, s->ready_keys);
		r |= stint_msg_put_uint(m, STINT_K_READY_TARGET,
					s->ready_target);
		r |= stint_msg_put_uint(m, STINT_K_PREPARED, s->prepared);
		r |= stint_msg_put_uint(m, STINT_K_PREPARED_MAX,
					s->prepared_max);
		r |= stint_msg_put_uint(m, STINT_K_SESSION_COPIES,
					s->session_copies);
	}
	if (s->has_counters) {
		r |= stint_msg_put_uint_array(m, STINT_K_COUNTERS, s->counters,
					      STINT_C_N);
		r |= stint_msg_put_uint_array(m, STINT_K_REFUSED, s->refused,
					      STINT_REFUSED_N);
	}
	return r ? -1 : 0;
}

static void
get_text_or(const struct stint_msg *m, uint64_t key, char *buf, size_t cap,
	    const char *dflt)
{
	if (stint_msg_get_text(m, key, buf, cap) != 0)
		snprintf(buf, cap, "%s", dflt);
}

/* Takes the counters this build knows; a newer stintd may send more. */
static void
get_counters(const struct stint_msg *m, struct stint_status_rep *st)
{
	uint64_t v[64];
	size_t n = 0, i;

	if (stint_msg_get_uint_array(m, STINT_K_COUNTERS, v, 64, &n) != 0)
		return;
	for (i = 0; i < n && i < STINT_C_N; i++)
		st->counters[i] = v[i];
	st->has_counters = true;
	if (stint_msg_get_uint_array(m, STINT_K_REFUSED, v, 64, &n) != 0)
		return;
	for (i = 0; i < n && i < STINT_REFUSED_N; i++)
		st->refused[i] = v[i];
}

void
stint_get_status_rep(const struct stint_msg *m, struct stint_status_rep *st)
{
	const uint8_t *hash;
	size_t len;

	memset(st, 0, sizeof(*st));
	(void)stint_msg_get_uint(m, STINT_K_VERSION, &st->version);
	(void)stint_msg_get_uint(m, STINT_K_PID, &st->pid);
	(void)stint_msg_get_uint(m, STINT_K_UPTIME, &st->uptime);
	(void)stint_msg_get_uint(m, STINT_K_N_AGENTS, &st->n_agents);
	(void)stint_msg_get_uint(m, STINT_K_N_LIVE, &st->n_live);
	st->has_ready =
		stint_msg_get_uint(m, STINT_K_READY_KEYS, &st->ready_keys) ==
			0 &&
		stint_msg_get_uint(m, STINT_K_READY_TARGET,
				   &st->ready_target) == 0 &&
		stint_msg_get_uint(m, STINT_K_PREPARED, &st->prepared) == 0 &&
		stint_msg_get_uint(m, STINT_K_PREPARED_MAX,
				   &st->prepared_max) == 0;
	(void)stint_msg_get_uint(m, STINT_K_SESSION_COPIES,
				 &st->session_copies);
	get_text_or(m, STINT_K_BACKEND, st->backend, sizeof(st->backend),
		    "unknown");
	get_text_or(m, STINT_K_TRUST_DOMAIN, st->trust_domain,
		    sizeof(st->trust_domain), "unknown");
	get_text_or(m, STINT_K_SYNC, st->sync, sizeof(st->sync), "unknown");
	get_text_or(m, STINT_K_PATH, st->path, sizeof(st->path), "");
	if (stint_msg_get_uint(m, STINT_K_AUDIT_SEQ, &st->audit_seq) == 0 &&
	    stint_msg_get_bytes(m, STINT_K_AUDIT_HASH, &hash, &len) == 0 &&
	    len == sizeof(st->audit_hash)) {
		memcpy(st->audit_hash, hash, len);
		st->has_head = true;
	}
	st->has_nv =
		stint_msg_get_uint(m, STINT_K_AUDIT_NV, &st->audit_nv) == 0;
	get_counters(m, st);
}
