/*
 * Admin codecs (common/proto_admin.c): each encoder writes the same bytes
 * as the key-by-key requests it replaced, each decoder reads back what its
 * encoder wrote, and request decoders name the first bad field in the
 * order the handlers check them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/msg.h"
#include "common/proto.h"

static void
same_bytes(struct stint_msg *a, struct stint_msg *b)
{
	uint8_t *x, *y;
	size_t nx, ny;

	assert_int_equal(stint_msg_serialize(a, &x, &nx), 0);
	assert_int_equal(stint_msg_serialize(b, &y, &ny), 0);
	assert_int_equal(nx, ny);
	assert_memory_equal(x, y, nx);
	free(x);
	free(y);
	stint_msg_free(a);
	stint_msg_free(b);
}

/* Serialises and parses m back, as the wire would. */
static struct stint_msg *
wire(struct stint_msg *m)
{
	struct stint_msg *out = NULL;
	uint8_t *buf;
	size_t len;

	assert_int_equal(stint_msg_serialize(m, &buf, &len), 0);
	assert_int_equal(stint_msg_parse(buf, len, &out), 0);
	free(buf);
	stint_msg_free(m);
	return out;
}

static void
test_agent_add(void **state)
{
	struct stint_agent_add_req r = {.name = "alpha",
					.uid = 1001,
					.has_gid = true,
					.gid = 1002,
					.has_max_ttl = true,
					.max_ttl = 3600,
					.mechs = {0x1041, 0x1044},
					.n_mechs = 2},
				   back;
	struct stint_msg *old = stint_msg_new(), *m = stint_msg_new();
	uint64_t bad;

	(void)state;
	stint_msg_put_text(old, STINT_K_AGENT, "alpha");
	stint_msg_put_uint(old, STINT_K_UID, 1001);
	stint_msg_put_uint(old, STINT_K_GID, 1002);
	stint_msg_put_uint(old, STINT_K_MAX_TTL, 3600);
	stint_msg_put_uint_array(old, STINT_K_MECHS, r.mechs, 2);
	assert_int_equal(stint_enc_agent_add_req(m, &r), 0);
	m = wire(m);
	assert_int_equal(stint_dec_agent_add_req(m, &back, &bad), 0);
	assert_memory_equal(&back, &r, sizeof(r));
	same_bytes(old, m);

	/* The first bad field is named; fields before it are filled. */
	m = stint_msg_new();
	stint_msg_put_text(m, STINT_K_AGENT, "alpha");
	stint_msg_put_uint(m, STINT_K_UID, 1001);
	stint_msg_put_uint(m, STINT_K_MAX_TTL, 60);
	stint_msg_put_uint_array(m, STINT_K_MECHS, NULL, 0);
	assert_int_not_equal(stint_dec_agent_add_req(m, &back, &bad), 0);
	assert_int_equal(bad, STINT_K_MECHS);
	assert_true(back.has_max_ttl);
	assert_int_equal(back.max_ttl, 60);
	stint_msg_put_uint(m, STINT_K_MAX_TTL, 0);
	assert_int_not_equal(stint_dec_agent_add_req(m, &back, &bad), 0);
	assert_int_equal(bad, STINT_K_MAX_TTL);
	stint_msg_put_uint(m, STINT_K_UID, UINT32_MAX);
	assert_int_not_equal(stint_dec_agent_add_req(m, &back, &bad), 0);
	assert_int_equal(bad, STINT_K_UID);
	assert_string_equal(back.name, "alpha");
	stint_msg_put_uint(m, STINT_K_AGENT, 7);
	assert_int_not_equal(stint_dec_agent_add_req(m, &back, &bad), 0);
	assert_int_equal(bad, STINT_K_AGENT);
	assert_string_equal(back.name, "");
	stint_msg_free(m);
}

static void
test_agent_list(void **state)
{
	struct stint_agent_info a = {.name = "a",
				     .uid = 5,
				     .max_ttl = 10,
				     .mechs = {0x1041},
				     .n_mechs = 1,
				     .created = 99},
				b = {.name = "b",
				     .uid = 6,
				     .has_gid = true,
				     .gid = 7},
				*out;
	struct stint_msg *m = stint_msg_reply_ok();
	size_t n;

	(void)state;
	assert_int_equal(stint_put_agent_list_entry(m, &a), 0);
	assert_int_equal(stint_put_agent_list_entry(m, &b), 0);
	assert_int_equal(stint_put_agent_list_end(m, 2), 0);
	m = wire(m);
	assert_int_equal(stint_get_agent_list_rep(m, &out, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(&out[0], &a, sizeof(a));
	assert_memory_equal(&out[1], &b, sizeof(b));
	free(out);
	stint_msg_free(m);
	/* An empty list is an empty array, not an absent key. */
	m = stint_msg_reply_ok();
	assert_int_equal(stint_put_agent_list_end(m, 0), 0);
	assert_true(stint_msg_has(m, STINT_K_AGENTS));
	m = wire(m);
	assert_int_equal(stint_get_agent_list_rep(m, &out, &n), 0);
	assert_int_equal(n, 0);
	assert_null(out);
	stint_msg_free(m);
}

static void
test_task_requests(void **state)
{
	struct stint_task_start_req s = {.agent = "alpha",
					 .has_ttl = true,
					 .ttl = 900,
					 .has_key_type = true,
					 .key_type = STINT_KEY_EC_P256,
					 .max_sigs = 3,
					 .has_intent = true,
					 .intent = "deploy"},
				    sb;
	struct stint_task_end_req e = {.task = "t-1",
				       .has_reason = true,
				       .reason = "done"},
				  eb;
	struct stint_task_list_req l = {.has_agent = true,
					.agent = "alpha",
					.all = true,
					.cursor = "t-9"},
				   lb;
	struct stint_msg *m, *old;
	uint64_t bad;

	(void)state;
	m = stint_msg_new();
	assert_int_equal(stint_enc_task_start_req(m, &s), 0);
	old = stint_msg_new();
	stint_msg_put_text(old, STINT_K_AGENT, "alpha");
	stint_msg_put_uint(old, STINT_K_TTL, 900);
	stint_msg_put_uint(old, STINT_K_KEY_TYPE, STINT_KEY_EC_P256);
	stint_msg_put_uint(old, STINT_K_MAX_SIGS, 3);
	stint_msg_put_text(old, STINT_K_INTENT, "deploy");
	m = wire(m);
	assert_int_equal(stint_dec_task_start_req(m, &sb, &bad), 0);
	assert_memory_equal(&sb, &s, sizeof(s));
	same_bytes(old, m);
	m = stint_msg_new();
	stint_msg_put_text(m, STINT_K_AGENT, "alpha");
	/* Not a uint. (An unknown number passes here as it did before the
	 * codec: stint_key_type_str() never returns NULL.) */
	stint_msg_put_text(m, STINT_K_KEY_TYPE, "ec-p256");
	assert_int_not_equal(stint_dec_task_start_req(m, &sb, &bad), 0);
	assert_int_equal(bad, STINT_K_KEY_TYPE);
	stint_msg_put_uint(m, STINT_K_TTL, 0);
	assert_int_not_equal(stint_dec_task_start_req(m, &sb, &bad), 0);
	assert_int_equal(bad, STINT_K_TTL);
	stint_msg_free(m);

	m = stint_msg_new();
	assert_int_equal(stint_enc_task_end_req(m, &e), 0);
	m = wire(m);
	assert_int_equal(stint_dec_task_end_req(m, &eb, &bad), 0);
	assert_memory_equal(&eb, &e, sizeof(e));
	stint_msg_put_uint(m, STINT_K_REASON, 1);
	assert_int_not_equal(stint_dec_task_end_req(m, &eb, &bad), 0);
	assert_int_equal(bad, STINT_K_REASON);
	stint_msg_free(m);

	m = stint_msg_new();
	assert_int_equal(stint_enc_task_list_req(m, &l), 0);
	m = wire(m);
	assert_int_equal(stint_dec_task_list_req(m, &lb), 0);
	assert_memory_equal(&lb, &l, sizeof(l));
	stint_msg_put_uint(m, STINT_K_ALL, 1);
	assert_int_not_equal(stint_dec_task_list_req(m, &lb), 0);
	stint_msg_free(m);
}

/* aud: audiences in AGENT_ADD, AGENT_LIST and TASK_START (key 110). */
static void
test_audiences(void **state)
{
	struct stint_agent_add_req r = {.name = "alpha",
					.uid = 1,
					.audiences = "a,b"},
				   back;
	struct stint_agent_info a = {.name = "alpha", .audiences = "a,b"}, *out;
	struct stint_task_start_req s = {.agent = "alpha"}, sb;
	struct stint_msg *m = stint_msg_new();
	uint64_t bad;
	size_t n;

	(void)state;
	assert_int_equal(stint_enc_agent_add_req(m, &r), 0);
	m = wire(m);
	assert_int_equal(stint_dec_agent_add_req(m, &back, &bad), 0);
	assert_string_equal(back.audiences, "a,b");
	stint_msg_put_uint(m, STINT_K_AUDIENCES, 1);
	assert_int_not_equal(stint_dec_agent_add_req(m, &back, &bad), 0);
	assert_int_equal(bad, STINT_K_AUDIENCES);
	stint_msg_free(m);

	m = stint_msg_reply_ok();
	assert_int_equal(stint_put_agent_list_entry(m, &a), 0);
	m = wire(m);
	assert_int_equal(stint_get_agent_list_rep(m, &out, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].audiences, "a,b");
	free(out);
	stint_msg_free(m);

	/* Absent: the agent's (has_audiences false); present: the subset. */
	m = stint_msg_new();
	assert_int_equal(stint_enc_task_start_req(m, &s), 0);
	m = wire(m);
	assert_int_equal(stint_dec_task_start_req(m, &sb, &bad), 0);
	assert_false(sb.has_audiences);
	assert_false(stint_msg_has(m, STINT_K_AUDIENCES));
	stint_msg_free(m);
	s.has_audiences = true;
	snprintf(s.audiences, sizeof(s.audiences), "b");
	m = stint_msg_new();
	assert_int_equal(stint_enc_task_start_req(m, &s), 0);
	m = wire(m);
	assert_int_equal(stint_dec_task_start_req(m, &sb, &bad), 0);
	assert_true(sb.has_audiences);
	assert_string_equal(sb.audiences, "b");
	stint_msg_put_uint(m, STINT_K_AUDIENCES, 2);
	assert_int_not_equal(stint_dec_task_start_req(m, &sb, &bad), 0);
	assert_int_equal(bad, STINT_K_AUDIENCES);
	stint_msg_free(m);
}

static void
test_done_and_status(void **state)
{
	struct stint_done_rep d = {.has_count = true,
				   .count = 2,
				   .has_counter = true,
				   .counter = 7,
				   .note = "pending"},
			      db;
	struct stint_status_rep s, sb;
	struct stint_msg *m;

	(void)state;
	m = stint_msg_reply_ok();
	assert_int_equal(stint_put_done_rep(m, &d), 0);
	m = wire(m);
	stint_get_done_rep(m, &db);
	assert_memory_equal(&db, &d, sizeof(d));
	stint_msg_free(m);

	memset(&s, 0, sizeof(s));
	s.version = 1;
	s.pid = 42;
	s.uptime = 5;
	s.n_agents = 3;
	s.n_live = 4;
	strcpy(s.backend, "pkcs11 (token 'stint')");
	strcpy(s.trust_domain, "example.org");
	strcpy(s.sync, "always");
	strcpy(s.path, "/var/lib/stint/audit.log");
	s.has_head = true;
	s.audit_seq = 9;
	memset(s.audit_hash, 0xab, sizeof(s.audit_hash));
	s.has_ready = true;
	s.ready_keys = 1;
	s.ready_target = 2;
	s.prepared = 3;
	s.prepared_max = 4;
	s.has_counters = true;
	for (size_t i = 0; i < STINT_C_N; i++)
		s.counters[i] = 100 + i;
	s.refused[STINT_E_NOT_YOURS] = 7;
	s.refused[STINT_E_NOT_LIVE] = 1ULL << 40;
	m = stint_msg_reply_ok();
	assert_int_equal(stint_put_status_rep(m, &s), 0);
	m = wire(m);
	stint_get_status_rep(m, &sb);
	assert_memory_equal(&sb, &s, sizeof(s));
	stint_msg_free(m);
	/* Lenient: an empty reply reads as unknowns. */
	m = stint_msg_reply_ok();
	stint_get_status_rep(m, &sb);
	assert_string_equal(sb.backend, "unknown");
	assert_string_equal(sb.path, "");
	assert_false(sb.has_head);
	assert_false(sb.has_ready);
	assert_false(sb.has_counters);
	stint_msg_free(m);
	/* A newer stintd's longer counter array: the known ones are read. */
	m = stint_msg_reply_ok();
	{
		uint64_t more[STINT_C_N + 3];

		for (size_t i = 0; i < STINT_C_N + 3; i++)
			more[i] = i + 1;
		assert_int_equal(stint_msg_put_uint_array(m, STINT_K_COUNTERS,
							  more, STINT_C_N + 3),
				 0);
	}
	m = wire(m);
	stint_get_status_rep(m, &sb);
	assert_true(sb.has_counters);
	assert_int_equal(sb.counters[STINT_C_N - 1], STINT_C_N);
	stint_msg_free(m);
}

/* KILL_SWITCH's reply (a done reply with counter and count) writes the
 * bytes the handler's key-by-key construction did: counter, count, note. */
static void
test_kill_switch_rep(void **state)
{
	struct stint_done_rep d = {.has_counter = true,
				   .counter = 12,
				   .has_count = true,
				   .count = 3,
				   .note = "pending"};
	struct stint_msg *a, *b;

	(void)state;
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_done_rep(a, &d), 0);
	b = stint_msg_reply_ok();
	stint_msg_put_uint(b, STINT_K_COUNTER, 12);
	stint_msg_put_uint(b, STINT_K_COUNT, 3);
	stint_msg_put_text(b, STINT_K_REASON, "pending");
	same_bytes(a, b);
	d.note[0] = '\0';
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_done_rep(a, &d), 0);
	b = stint_msg_reply_ok();
	stint_msg_put_uint(b, STINT_K_COUNTER, 12);
	stint_msg_put_uint(b, STINT_K_COUNT, 3);
	same_bytes(a, b);
}

/* AUDIT_TAIL: request and reply write the old key-by-key bytes. */
static void
test_audit_tail(void **state)
{
	const char *lines[] = {"{\"seq\":1}", "{\"seq\":2}"};
	struct stint_audit_tail_req r = {.has_count = true, .count = 5}, rb;
	struct stint_msg *a, *b;
	char buf[64];
	size_t n;

	(void)state;
	a = stint_msg_new();
	assert_int_equal(stint_enc_audit_tail_req(a, &r), 0);
	b = stint_msg_new();
	stint_msg_put_uint(b, STINT_K_COUNT, 5);
	same_bytes(a, b);
	a = stint_msg_new();
	assert_int_equal(stint_enc_audit_tail_req(a, &r), 0);
	a = wire(a);
	assert_int_equal(stint_dec_audit_tail_req(a, &rb), 0);
	assert_memory_equal(&rb, &r, sizeof(r));
	stint_msg_free(a);
	a = stint_msg_new();
	stint_msg_put_text(a, STINT_K_COUNT, "5");
	assert_int_equal(stint_dec_audit_tail_req(a, &rb), STINT_WIRE_TYPE);
	stint_msg_free(a);

	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_audit_tail_rep(a, "/l", lines, 2), 0);
	b = stint_msg_reply_ok();
	stint_msg_put_text(b, STINT_K_PATH, "/l");
	stint_msg_append_text(b, STINT_K_LINES, lines[0]);
	stint_msg_append_text(b, STINT_K_LINES, lines[1]);
	same_bytes(a, b);
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_audit_tail_rep(a, "/l", NULL, 0), 0);
	b = stint_msg_reply_ok();
	stint_msg_put_text(b, STINT_K_PATH, "/l");
	stint_msg_put_uint_array(b, STINT_K_LINES, NULL, 0);
	same_bytes(a, b);
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_audit_tail_rep(a, "/l", lines, 2), 0);
	a = wire(a);
	assert_int_equal(stint_get_audit_tail_n(a, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(stint_get_audit_tail_line(a, 1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, lines[1]);
	stint_msg_free(a);
}

/* TASK_EVIDENCE's reply: EVIDENCE then AK_SPKI, as before. */
static void
test_evidence_rep(void **state)
{
	static const uint8_t doc[] = {0xa1, 1, 2}, ak[] = {0x30, 0x59, 9};
	struct stint_evidence_rep r = {doc, sizeof(doc), ak, sizeof(ak)}, rb;
	struct stint_msg *a, *b;

	(void)state;
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_evidence_rep(a, &r), 0);
	b = stint_msg_reply_ok();
	stint_msg_put_bytes(b, STINT_K_EVIDENCE, doc, sizeof(doc));
	stint_msg_put_bytes(b, STINT_K_AK_SPKI, ak, sizeof(ak));
	same_bytes(a, b);
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_evidence_rep(a, &r), 0);
	a = wire(a);
	assert_int_equal(stint_get_evidence_rep(a, &rb), 0);
	assert_int_equal(rb.doc_len, sizeof(doc));
	assert_memory_equal(rb.doc, doc, sizeof(doc));
	assert_int_equal(rb.ak_len, sizeof(ak));
	assert_memory_equal(rb.ak_spki, ak, sizeof(ak));
	stint_msg_free(a);
	a = stint_msg_reply_ok();
	assert_int_not_equal(stint_get_evidence_rep(a, &rb), 0);
	stint_msg_free(a);
}

/* A task as handle_admin.c's put_task wrote it, key by key, before the
 * task map had a codec (full: with counters, bind and the cert). */
static const uint8_t spki_der[] = {0x30, 0x59, 1, 2}, cert_der[] = {0x30, 3};

static struct stint_task_info
task_fixture(bool full)
{
	struct stint_task_info t = {.id = "t-0123456789abcdef0123456789abcdef",
				    .agent = "alpha",
				    .key_type = 1,
				    .state = "ended",
				    .created = 1700000000,
				    .not_after = 1700000600,
				    .has_ended = true,
				    .ended = 1700000300,
				    .mechs = {0x1041, 0x1044},
				    .n_mechs = 2,
				    .uri = "pkcs11:token=alpha;object=t-0123"};

	t.spki = spki_der;
	t.spki_len = sizeof(spki_der);
	t.cert = cert_der;
	t.cert_len = sizeof(cert_der);
	if (!full)
		return t;
	snprintf(t.reason, sizeof(t.reason), "%s", "done");
	t.has_sigs = true;
	t.max_sigs = 10;
	t.used_sigs = 3;
	snprintf(t.intent, sizeof(t.intent), "%s", "deploy");
	snprintf(t.bind_cgroup, sizeof(t.bind_cgroup), "%s", "/stint/run-1");
	t.bind_owned = true;
	snprintf(t.audiences, sizeof(t.audiences), "%s", "db,api");
	return t;
}

static void
put_task_by_hand(struct stint_msg *m, const struct stint_task_info *t,
		 bool full)
{
	stint_msg_put_text(m, STINT_K_TASK, t->id);
	stint_msg_put_text(m, STINT_K_AGENT, t->agent);
	stint_msg_put_uint(m, STINT_K_KEY_TYPE, t->key_type);
	stint_msg_put_text(m, STINT_K_STATE, t->state);
	stint_msg_put_uint(m, STINT_K_CREATED, t->created);
	stint_msg_put_uint(m, STINT_K_NOT_AFTER, t->not_after);
	stint_msg_put_uint(m, STINT_K_ENDED, t->ended);
	if (full) {
		stint_msg_put_text(m, STINT_K_REASON, t->reason);
		stint_msg_put_uint(m, STINT_K_MAX_SIGS, t->max_sigs);
		stint_msg_put_uint(m, STINT_K_SIGS_USED, t->used_sigs);
		stint_msg_put_text(m, STINT_K_INTENT, t->intent);
	}
	stint_msg_put_uint_array(m, STINT_K_MECHS, t->mechs, t->n_mechs);
	stint_msg_put_text(m, STINT_K_URI, t->uri);
	stint_msg_put_bytes(m, STINT_K_SPKI, t->spki, t->spki_len);
	if (t->cert != NULL)
		stint_msg_put_bytes(m, STINT_K_CERT, t->cert, t->cert_len);
	if (full) {
		stint_msg_put_text(m, STINT_K_BIND_CGROUP, t->bind_cgroup);
		stint_msg_put_bool(m, STINT_K_BIND_OWNED, t->bind_owned);
		stint_msg_put_text(m, STINT_K_AUDIENCES, t->audiences);
	}
}

/* The task map: the same bytes as before (admin and public views), read
 * back field by field; without id, agent or deadline the getter fails. */
static void
test_task_info(void **state)
{
	struct stint_task_info t, back;
	struct stint_msg *a, *b;
	int full;

	(void)state;
	for (full = 0; full <= 1; full++) {
		t = task_fixture(full);
		a = stint_msg_reply_ok();
		assert_int_equal(stint_put_task_info(a, &t), 0);
		b = stint_msg_reply_ok();
		put_task_by_hand(b, &t, full);
		same_bytes(a, b);
		a = stint_msg_reply_ok();
		assert_int_equal(stint_put_task_info(a, &t), 0);
		a = wire(a);
		assert_int_equal(stint_get_task_info(a, &back), 0);
		assert_string_equal(back.id, t.id);
		assert_string_equal(back.agent, t.agent);
		assert_int_equal(back.key_type, t.key_type);
		assert_string_equal(back.state, t.state);
		assert_int_equal(back.created, t.created);
		assert_int_equal(back.not_after, t.not_after);
		assert_true(back.has_ended);
		assert_int_equal(back.ended, t.ended);
		assert_string_equal(back.reason, t.reason);
		assert_int_equal(back.has_sigs, t.has_sigs);
		assert_int_equal(back.max_sigs, t.max_sigs);
		assert_int_equal(back.used_sigs, t.used_sigs);
		assert_string_equal(back.intent, t.intent);
		assert_int_equal(back.n_mechs, 2);
		assert_int_equal(back.mechs[1], 0x1044);
		assert_string_equal(back.uri, t.uri);
		assert_int_equal(back.spki_len, sizeof(spki_der));
		assert_memory_equal(back.spki, spki_der, sizeof(spki_der));
		assert_int_equal(back.cert_len, sizeof(cert_der));
		assert_memory_equal(back.cert, cert_der, sizeof(cert_der));
		assert_int_equal(back.bind_pid, 0);
		assert_string_equal(back.bind_cgroup, t.bind_cgroup);
		assert_int_equal(back.bind_owned, t.bind_owned);
		assert_string_equal(back.audiences, t.audiences);
		stint_msg_free(a);
	}
	/* A task bound to a pid: PID then START. */
	t = task_fixture(false);
	t.bind_pid = 4242;
	t.bind_start = 987654;
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_task_info(a, &t), 0);
	a = wire(a);
	assert_int_equal(stint_get_task_info(a, &back), 0);
	assert_int_equal(back.bind_pid, 4242);
	assert_int_equal(back.bind_start, 987654);
	assert_string_equal(back.bind_cgroup, "");
	assert_false(back.has_sigs);
	stint_msg_free(a);
	a = stint_msg_reply_ok();
	stint_msg_put_text(a, STINT_K_TASK, t.id);
	stint_msg_put_text(a, STINT_K_AGENT, t.agent);
	assert_int_equal(stint_get_task_info(a, &back), STINT_WIRE_MISSING);
	stint_msg_free(a);
}

/* deleg: the tree fields follow the map, as put_child sent them; a
 * root task has no parent, a map without root no tree at all. */
static void
test_task_info_tree(void **state)
{
	struct stint_task_info t = task_fixture(true), back;
	struct stint_msg *a, *b;

	(void)state;
	snprintf(t.parent, sizeof(t.parent), "%s", "t-parent");
	snprintf(t.root, sizeof(t.root), "%s", "t-root");
	t.depth = 2;
	snprintf(t.dpath, sizeof(t.dpath), "%s", "alpha,beta,gamma");
	t.reserved = 7;
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_task_info(a, &t), 0);
	b = stint_msg_reply_ok();
	put_task_by_hand(b, &t, true);
	stint_msg_put_text(b, STINT_K_PARENT, t.parent);
	stint_msg_put_text(b, STINT_K_ROOT, t.root);
	stint_msg_put_uint(b, STINT_K_DEPTH, t.depth);
	stint_msg_put_text(b, STINT_K_DPATH, t.dpath);
	stint_msg_put_uint(b, STINT_K_RESERVED, t.reserved);
	same_bytes(a, b);
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_task_info(a, &t), 0);
	a = wire(a);
	assert_int_equal(stint_get_task_info(a, &back), 0);
	assert_string_equal(back.parent, "t-parent");
	assert_string_equal(back.root, "t-root");
	assert_int_equal(back.depth, 2);
	assert_string_equal(back.dpath, "alpha,beta,gamma");
	assert_int_equal(back.reserved, 7);
	assert_string_equal(back.audiences, t.audiences);
	stint_msg_free(a);
	/* A root task: no parent on the wire, "" back. */
	t.parent[0] = '\0';
	t.depth = 0;
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_task_info(a, &t), 0);
	assert_false(stint_msg_has(a, STINT_K_PARENT));
	a = wire(a);
	assert_int_equal(stint_get_task_info(a, &back), 0);
	assert_string_equal(back.parent, "");
	assert_string_equal(back.root, "t-root");
	assert_int_equal(back.depth, 0);
	stint_msg_free(a);
	/* No tree (the public view): none of the keys. */
	t.root[0] = '\0';
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_task_info(a, &t), 0);
	assert_false(stint_msg_has(a, STINT_K_ROOT));
	assert_false(stint_msg_has(a, STINT_K_DEPTH));
	assert_false(stint_msg_has(a, STINT_K_DPATH));
	assert_false(stint_msg_has(a, STINT_K_RESERVED));
	a = wire(a);
	assert_int_equal(stint_get_task_info(a, &back), 0);
	assert_string_equal(back.root, "");
	assert_string_equal(back.dpath, "");
	assert_int_equal(back.reserved, 0);
	stint_msg_free(a);
}

/* TASK_START's reply: the map then NOTE; TASK_LIST's: TASKS then MORE,
 * an empty page an empty array. */
static void
test_task_start_and_list_rep(void **state)
{
	struct stint_task_info t = task_fixture(true), back;
	struct stint_msg *a, *b, *e;
	char note[512];
	size_t n;
	bool more;

	(void)state;
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_task_start_rep(a, &t, "bound to the pid"),
			 0);
	b = stint_msg_reply_ok();
	put_task_by_hand(b, &t, true);
	stint_msg_put_text(b, STINT_K_NOTE, "bound to the pid");
	same_bytes(a, b);
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_task_start_rep(a, &t, ""), 0);
	a = wire(a);
	assert_int_equal(stint_get_task_start_rep(a, &back, note, sizeof(note)),
			 0);
	assert_string_equal(note, "");
	assert_string_equal(back.id, t.id);
	stint_msg_free(a);

	t.cert = NULL; /* lists leave the cert out */
	t.cert_len = 0;
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_task_list_entry(a, &t), 0);
	assert_int_equal(stint_put_task_list_entry(a, &t), 0);
	assert_int_equal(stint_put_task_list_end(a, 2, true), 0);
	b = stint_msg_reply_ok();
	for (n = 0; n < 2; n++) {
		e = stint_msg_new();
		put_task_by_hand(e, &t, true);
		stint_msg_append_map(b, STINT_K_TASKS, e);
	}
	stint_msg_put_bool(b, STINT_K_MORE, true);
	same_bytes(a, b);
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_task_list_entry(a, &t), 0);
	assert_int_equal(stint_put_task_list_end(a, 1, true), 0);
	a = wire(a);
	assert_int_equal(stint_get_task_list_rep(a, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_true(more);
	assert_int_equal(stint_get_task_list_entry(a, 0, &back), 0);
	assert_string_equal(back.intent, "deploy");
	assert_null(back.cert);
	assert_int_not_equal(stint_get_task_list_entry(a, 1, &back), 0);
	stint_msg_free(a);
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_task_list_end(a, 0, false), 0);
	b = stint_msg_reply_ok();
	stint_msg_put_uint_array(b, STINT_K_TASKS, NULL, 0);
	stint_msg_put_bool(b, STINT_K_MORE, false);
	same_bytes(a, b);
}

/* CA_CERT (admin: PEM, AK_SPKI, TRUST_DOMAIN; public: no AK), CA_CSR's
 * reply and CA_INSTALL's request (PEM): same bytes, read back. */
static void
test_ca_msgs(void **state)
{
	static const uint8_t pem[] = "-----BEGIN CERTIFICATE-----\n",
			     ak[] = {0x30, 0x59, 7};
	struct stint_ca_cert_rep r = {pem, sizeof(pem) - 1, ak, sizeof(ak),
				      "example.org"},
				 rb;
	struct stint_pem_msg p = {pem, sizeof(pem) - 1}, pb;
	struct stint_msg *a, *b;

	(void)state;
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_ca_cert_rep(a, &r), 0);
	b = stint_msg_reply_ok();
	stint_msg_put_bytes(b, STINT_K_PEM, pem, sizeof(pem) - 1);
	stint_msg_put_bytes(b, STINT_K_AK_SPKI, ak, sizeof(ak));
	stint_msg_put_text(b, STINT_K_TRUST_DOMAIN, "example.org");
	same_bytes(a, b);
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_ca_cert_rep(a, &r), 0);
	a = wire(a);
	assert_int_equal(stint_get_ca_cert_rep(a, &rb), 0);
	assert_int_equal(rb.pem_len, sizeof(pem) - 1);
	assert_memory_equal(rb.pem, pem, sizeof(pem) - 1);
	assert_int_equal(rb.ak_len, sizeof(ak));
	assert_memory_equal(rb.ak_spki, ak, sizeof(ak));
	assert_string_equal(rb.trust_domain, "example.org");
	stint_msg_free(a);

	r.ak_spki = NULL; /* agent.sock's public CA_CERT */
	r.ak_len = 0;
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_ca_cert_rep(a, &r), 0);
	b = stint_msg_reply_ok();
	stint_msg_put_bytes(b, STINT_K_PEM, pem, sizeof(pem) - 1);
	stint_msg_put_text(b, STINT_K_TRUST_DOMAIN, "example.org");
	same_bytes(a, b);
	a = stint_msg_reply_ok();
	assert_int_not_equal(stint_get_ca_cert_rep(a, &rb), 0);
	stint_msg_free(a);

	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_pem_msg(a, &p), 0);
	b = stint_msg_reply_ok();
	stint_msg_put_bytes(b, STINT_K_PEM, pem, sizeof(pem) - 1);
	same_bytes(a, b);
	a = stint_msg_new();
	stint_msg_put_uint(a, STINT_K_OP, STINT_OP_CA_INSTALL);
	assert_int_equal(stint_put_pem_msg(a, &p), 0);
	b = stint_msg_new();
	stint_msg_put_uint(b, STINT_K_OP, STINT_OP_CA_INSTALL);
	stint_msg_put_bytes(b, STINT_K_PEM, pem, sizeof(pem) - 1);
	same_bytes(a, b);
	a = stint_msg_new();
	assert_int_equal(stint_put_pem_msg(a, &p), 0);
	a = wire(a);
	assert_int_equal(stint_get_pem_msg(a, &pb), 0);
	assert_int_equal(pb.len, sizeof(pem) - 1);
	assert_memory_equal(pb.pem, pem, sizeof(pem) - 1);
	stint_msg_free(a);
	/* An empty or missing PEM is refused. */
	a = stint_msg_new();
	stint_msg_put_bytes(a, STINT_K_PEM, pem, 0);
	assert_int_not_equal(stint_get_pem_msg(a, &pb), 0);
	assert_null(pb.pem);
	stint_msg_free(a);
	a = stint_msg_new();
	assert_int_not_equal(stint_get_pem_msg(a, &pb), 0);
	stint_msg_free(a);
}

/* AUDIT_ROTATE's reply: same bytes as PATH then AUDIT_SEQ, read back. */
static void
test_audit_rotate_rep(void **state)
{
	struct stint_audit_rotate_rep r = {.path = "/var/lib/stint/audit.log.1",
					   .seq = 77},
				      rb;
	struct stint_msg *a, *b;

	(void)state;
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_audit_rotate_rep(a, &r), 0);
	b = stint_msg_reply_ok();
	stint_msg_put_text(b, STINT_K_PATH, "/var/lib/stint/audit.log.1");
	stint_msg_put_uint(b, STINT_K_AUDIT_SEQ, 77);
	same_bytes(a, b);
	a = stint_msg_reply_ok();
	assert_int_equal(stint_put_audit_rotate_rep(a, &r), 0);
	a = wire(a);
	stint_get_audit_rotate_rep(a, &rb);
	assert_memory_equal(&rb, &r, sizeof(r));
	stint_msg_free(a);
	a = stint_msg_reply_ok();
	stint_get_audit_rotate_rep(a, &rb);
	assert_string_equal(rb.path, "?");
	assert_int_equal(rb.seq, 0);
	stint_msg_free(a);
}

/* runcg: RUN_PREPARE, and TASK_START's run_cgroup (only with run_pid). */
static void
test_run_prepare(void **state)
{
	struct stint_run_prepare_req q = {.agent = "alpha", .run_pid = 4242},
				     qb;
	struct stint_run_prepare_rep r = {.cgroup =
						  "/stint/run-0123456789abcdef",
					  .moved = false,
					  .note = ""},
				     rb;
	struct stint_task_start_req s = {.agent = "alpha",
					 .run_pid = 4242,
					 .run_cgroup = "/stint/run-01"},
				    sb;
	struct stint_msg *m;
	uint64_t bad;

	(void)state;
	m = stint_msg_new();
	assert_int_equal(stint_enc_run_prepare_req(m, &q), 0);
	m = wire(m);
	assert_int_equal(stint_dec_run_prepare_req(m, &qb, &bad), 0);
	assert_memory_equal(&qb, &q, sizeof(q));
	stint_msg_free(m);
	m = stint_msg_new();
	stint_msg_put_text(m, STINT_K_AGENT, "alpha");
	assert_int_not_equal(stint_dec_run_prepare_req(m, &qb, &bad), 0);
	assert_int_equal(bad, STINT_K_RUN_PID);
	stint_msg_free(m);

	m = stint_msg_reply_ok();
	assert_int_equal(stint_put_run_prepare_rep(m, &r), 0);
	m = wire(m);
	stint_get_run_prepare_rep(m, &rb);
	assert_memory_equal(&rb, &r, sizeof(r));
	assert_true(stint_msg_has(m, STINT_K_RUN_MOVED));
	stint_msg_free(m);
	/* No cgroup: only the note. */
	m = stint_msg_reply_ok();
	memset(&r, 0, sizeof(r));
	snprintf(r.note, sizeof(r.note), "no cgroup v2");
	assert_int_equal(stint_put_run_prepare_rep(m, &r), 0);
	m = wire(m);
	assert_false(stint_msg_has(m, STINT_K_RUN_CGROUP));
	stint_get_run_prepare_rep(m, &rb);
	assert_memory_equal(&rb, &r, sizeof(r));
	stint_msg_free(m);

	m = stint_msg_new();
	assert_int_equal(stint_enc_task_start_req(m, &s), 0);
	m = wire(m);
	assert_int_equal(stint_dec_task_start_req(m, &sb, &bad), 0);
	assert_memory_equal(&sb, &s, sizeof(s));
	stint_msg_free(m);
	/* run_cgroup without run_pid, or not a path: refused. */
	m = stint_msg_new();
	stint_msg_put_text(m, STINT_K_AGENT, "alpha");
	stint_msg_put_text(m, STINT_K_RUN_CGROUP, "/stint/run-01");
	assert_int_not_equal(stint_dec_task_start_req(m, &sb, &bad), 0);
	assert_int_equal(bad, STINT_K_RUN_CGROUP);
	stint_msg_free(m);
	m = stint_msg_new();
	stint_msg_put_text(m, STINT_K_AGENT, "alpha");
	stint_msg_put_uint(m, STINT_K_RUN_PID, 4242);
	stint_msg_put_text(m, STINT_K_RUN_CGROUP, "stint/run-01");
	assert_int_not_equal(stint_dec_task_start_req(m, &sb, &bad), 0);
	assert_int_equal(bad, STINT_K_RUN_CGROUP);
	stint_msg_free(m);
}

int
main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_add),
		cmocka_unit_test(test_agent_list),
		cmocka_unit_test(test_task_requests),
		cmocka_unit_test(test_audiences),
		cmocka_unit_test(test_done_and_status),
		cmocka_unit_test(test_kill_switch_rep),
		cmocka_unit_test(test_audit_rotate_rep),
		cmocka_unit_test(test_audit_tail),
		cmocka_unit_test(test_evidence_rep),
		cmocka_unit_test(test_task_info),
		cmocka_unit_test(test_task_info_tree),
		cmocka_unit_test(test_task_start_and_list_rep),
		cmocka_unit_test(test_ca_msgs),
		cmocka_unit_test(test_run_prepare), /* runcg */
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
