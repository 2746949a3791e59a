/*
 * Wire codec: round trips of every agent message, and rejection of
 * truncated, trailing, mistyped, incomplete, duplicated, non-map,
 * indefinite-length and over-deep input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/hex.h"
#include "common/mechanism.h"
#include "common/msg.h"
#include "stint/wire.h"

#define TASK_A "t-0123456789abcdef0123456789abcdef"
#define TASK_B "t-fedcba9876543210fedcba9876543210"

static const uint8_t spki[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07};
static const uint8_t ecp[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce};
static const uint8_t ecpt[] = {0x04, 0x41, 0x04, 0x11, 0x22, 0x33};
static const uint8_t modulus[] = {0xc3, 0x01, 0x02, 0x03, 0x04, 0x05};
static const uint8_t exponent[] = {0x01, 0x00, 0x01};
static const uint8_t cert[] = {0x30, 0x82, 0x01, 0x0a, 0xde, 0xad};

/* --- helpers ----------------------------------------------------------- */

static struct stint_msg *
parse_ok(const uint8_t *buf, size_t len)
{
	struct stint_msg *m = NULL;

	assert_int_equal(stint_msg_parse(buf, len, &m), 0);
	assert_non_null(m);
	return m;
}

static int
parse_err(const uint8_t *buf, size_t len)
{
	struct stint_msg *m = (struct stint_msg *)1;
	int r = stint_msg_parse(buf, len, &m);

	assert_null(m);
	return r;
}

static void
serialize(struct stint_msg *m, uint8_t **out, size_t *len)
{
	assert_int_equal(stint_msg_serialize(m, out, len), 0);
	stint_msg_free(m);
}

static void
fill_ec_task(struct stint_task_key *t, const char *id)
{
	memset(t, 0, sizeof(*t));
	strcpy(t->id, id);
	t->key_type = STINT_KEY_EC_P256;
	t->not_after = 1700000000;
	t->mechs[0] = CKM_ECDSA;
	t->mechs[1] = CKM_ECDSA_SHA256;
	t->n_mechs = 2;
	t->spki = (struct stint_bytes){(uint8_t *)spki, sizeof(spki)};
	t->ec_params = (struct stint_bytes){(uint8_t *)ecp, sizeof(ecp)};
	t->ec_point = (struct stint_bytes){(uint8_t *)ecpt, sizeof(ecpt)};
	t->cert = (struct stint_bytes){(uint8_t *)cert, sizeof(cert)};
}

static void
fill_rsa_task(struct stint_task_key *t, const char *id)
{
	memset(t, 0, sizeof(*t));
	strcpy(t->id, id);
	t->key_type = STINT_KEY_RSA_3072;
	t->not_after = UINT64_MAX; /* widest integer survives */
	t->mechs[0] = CKM_RSA_PKCS_PSS;
	t->n_mechs = 1;
	t->spki = (struct stint_bytes){(uint8_t *)spki, sizeof(spki)};
	t->modulus = (struct stint_bytes){(uint8_t *)modulus, sizeof(modulus)};
	t->exponent =
		(struct stint_bytes){(uint8_t *)exponent, sizeof(exponent)};
}

static void
assert_bytes(const struct stint_bytes *b, const uint8_t *p, size_t n)
{
	assert_int_equal(b->len, n);
	if (n > 0)
		assert_memory_equal(b->ptr, p, n);
}

/* A sign request map built field by field, so tests can drop or mistype
 * one field at a time. */
enum { F_TASK = 1, F_MECH = 2, F_DATA = 4, F_ALL = 7 };

static struct stint_msg *
sign_req_msg(int fields)
{
	struct stint_msg *m = stint_msg_new();
	static const uint8_t digest[32] = {1, 2, 3};

	assert_non_null(m);
	assert_int_equal(stint_msg_put_uint(m, STINT_K_OP, STINT_OP_SIGN), 0);
	if (fields & F_TASK)
		assert_int_equal(stint_msg_put_text(m, STINT_K_TASK, TASK_A),
				 0);
	if (fields & F_MECH)
		assert_int_equal(stint_msg_put_uint(m, STINT_K_MECH, CKM_ECDSA),
				 0);
	if (fields & F_DATA)
		assert_int_equal(stint_msg_put_bytes(m, STINT_K_DATA, digest,
						     sizeof(digest)),
				 0);
	return m;
}

/* Parses buf and runs the sign request decoder: the decoder's result. */
static int
dec_sign(const uint8_t *buf, size_t len)
{
	struct stint_msg *m = NULL;
	struct stint_sign_req req;
	int r = stint_msg_parse(buf, len, &m);

	if (r != 0)
		return r;
	r = stint_dec_sign_req(m, &req);
	if (r == 0)
		stint_bytes_clear(&req.data);
	else
		assert_null(req.data.ptr);
	stint_msg_free(m);
	return r;
}

static int
dec_sign_msg(struct stint_msg *m)
{
	uint8_t *buf;
	size_t len;
	int r;

	serialize(m, &buf, &len);
	r = dec_sign(buf, len);
	free(buf);
	return r;
}

/* --- round trips ------------------------------------------------------- */

static void
test_hello_round_trip(void **state)
{
	uint8_t *buf;
	size_t len;
	struct stint_msg *m;
	uint64_t op, version;
	struct stint_hello_rep rep = {.version = STINT_WIRE_VERSION}, out;
	struct stint_reply_head head;

	(void)state;
	/* Any version number travels: judging it is the daemon's job. */
	assert_int_equal(stint_enc_hello_req(987654321, &buf, &len), 0);
	m = parse_ok(buf, len);
	assert_int_equal(stint_dec_request_op(m, &op), 0);
	assert_int_equal(op, STINT_OP_HELLO);
	assert_int_equal(stint_dec_hello_req(m, &version), 0);
	assert_int_equal(version, 987654321);
	stint_msg_free(m);
	free(buf);

	strcpy(rep.agent, "billing-agent_1.x");
	assert_int_equal(stint_enc_hello_rep(&rep, &buf, &len), 0);
	assert_int_equal(stint_dec_hello_rep(buf, len, &head, &out), 0);
	assert_int_equal(head.status, STINT_OK);
	assert_string_equal(head.error, "");
	assert_int_equal(out.version, STINT_WIRE_VERSION);
	assert_string_equal(out.agent, "billing-agent_1.x");
	free(buf);

	rep.agent[0] = '\0'; /* no agent */
	assert_int_equal(stint_enc_hello_rep(&rep, &buf, &len), 0);
	assert_int_equal(stint_dec_hello_rep(buf, len, &head, &out), 0);
	assert_string_equal(out.agent, "");
	free(buf);

	strcpy(rep.agent, "bad name");
	assert_int_equal(stint_enc_hello_rep(&rep, &buf, &len),
			 STINT_WIRE_RANGE);
}

/* ident: key 150 only with several agents, so a one-agent reply is byte
 * for byte what it was; key 151 on LIST and SIGN. */
static void
test_agent_names_round_trip(void **state)
{
	struct stint_hello_rep rep = {.version = STINT_WIRE_VERSION}, out;
	struct stint_sign_req sr = {.mech = 0x1041}, sout;
	struct stint_reply_head head;
	struct stint_msg *m;
	char as[STINT_NAME_MAX + 1];
	uint8_t *one, *buf, data[32] = {0};
	size_t one_len, len;

	(void)state;
	strcpy(rep.agent, "ant");
	assert_int_equal(stint_enc_hello_rep(&rep, &one, &one_len), 0);
	strcpy(rep.names[0], "ant");
	rep.n_names = 1; /* one name: not sent */
	assert_int_equal(stint_enc_hello_rep(&rep, &buf, &len), 0);
	assert_int_equal(len, one_len);
	assert_memory_equal(buf, one, len);
	free(buf);
	free(one);
	strcpy(rep.names[1], "bee");
	rep.n_names = 2;
	assert_int_equal(stint_enc_hello_rep(&rep, &buf, &len), 0);
	m = parse_ok(buf, len);
	assert_true(stint_msg_has(m, STINT_K_AGENT_NAMES));
	stint_msg_free(m);
	assert_int_equal(stint_dec_hello_rep(buf, len, &head, &out), 0);
	assert_string_equal(out.agent, "ant");
	assert_int_equal(out.n_names, 2);
	assert_string_equal(out.names[0], "ant");
	assert_string_equal(out.names[1], "bee");
	free(buf);
	strcpy(rep.names[1], "bad name");
	assert_int_equal(stint_enc_hello_rep(&rep, &buf, &len),
			 STINT_WIRE_RANGE);

	assert_int_equal(stint_enc_list_req_as(NULL, "bee", &buf, &len), 0);
	m = parse_ok(buf, len);
	assert_int_equal(stint_dec_as_agent(m, as), 0);
	assert_string_equal(as, "bee");
	stint_msg_free(m);
	free(buf);
	assert_int_equal(stint_enc_list_req(NULL, &buf, &len), 0);
	m = parse_ok(buf, len);
	assert_int_equal(stint_dec_as_agent(m, as), 0);
	assert_string_equal(as, "");
	stint_msg_free(m);
	free(buf);

	strcpy(sr.task, TASK_A);
	sr.data.ptr = data;
	sr.data.len = sizeof(data);
	strcpy(sr.as_agent, "bee");
	assert_int_equal(stint_enc_sign_req(&sr, &buf, &len), 0);
	m = parse_ok(buf, len);
	assert_int_equal(stint_dec_sign_req(m, &sout), 0);
	assert_string_equal(sout.as_agent, "bee");
	stint_bytes_clear(&sout.data);
	stint_msg_free(m);
	free(buf);
	strcpy(sr.as_agent, "no/such");
	assert_int_equal(stint_enc_sign_req(&sr, &buf, &len), STINT_WIRE_RANGE);
}

static void
test_list_req_round_trip(void **state)
{
	uint8_t *buf;
	size_t len;
	struct stint_msg *m;
	char cursor[STINT_TASK_ID_MAX + 1];
	uint64_t op;

	(void)state;
	assert_int_equal(stint_enc_list_req(NULL, &buf, &len), 0);
	m = parse_ok(buf, len);
	assert_int_equal(stint_dec_request_op(m, &op), 0);
	assert_int_equal(op, STINT_OP_LIST);
	strcpy(cursor, "junk");
	assert_int_equal(stint_dec_list_req(m, cursor), 0);
	assert_string_equal(cursor, "");
	stint_msg_free(m);
	free(buf);

	assert_int_equal(stint_enc_list_req(TASK_B, &buf, &len), 0);
	m = parse_ok(buf, len);
	assert_int_equal(stint_dec_list_req(m, cursor), 0);
	assert_string_equal(cursor, TASK_B);
	stint_msg_free(m);
	free(buf);

	assert_int_equal(stint_enc_list_req("t-/../x", &buf, &len),
			 STINT_WIRE_RANGE);
}

static void
test_list_rep_round_trip(void **state)
{
	struct stint_task_key tasks[2];
	struct stint_list_rep rep = {
		.tasks = tasks, .n_tasks = 2, .more = true};
	struct stint_list_rep out;
	struct stint_reply_head head;
	uint8_t *buf;
	size_t len;

	(void)state;
	fill_ec_task(&tasks[0], TASK_A);
	fill_rsa_task(&tasks[1], TASK_B);
	assert_int_equal(stint_enc_list_rep(&rep, &buf, &len), 0);
	assert_true(len <= STINT_FRAME_MAX);
	assert_int_equal(stint_dec_list_rep(buf, len, &head, &out), 0);
	free(buf);
	assert_int_equal(head.status, STINT_OK);
	assert_true(out.more);
	assert_int_equal(out.n_tasks, 2);

	assert_string_equal(out.tasks[0].id, TASK_A);
	assert_int_equal(out.tasks[0].key_type, STINT_KEY_EC_P256);
	assert_int_equal(out.tasks[0].not_after, 1700000000);
	assert_int_equal(out.tasks[0].n_mechs, 2);
	assert_int_equal(out.tasks[0].mechs[0], CKM_ECDSA);
	assert_int_equal(out.tasks[0].mechs[1], CKM_ECDSA_SHA256);
	assert_bytes(&out.tasks[0].spki, spki, sizeof(spki));
	assert_bytes(&out.tasks[0].ec_params, ecp, sizeof(ecp));
	assert_bytes(&out.tasks[0].ec_point, ecpt, sizeof(ecpt));
	assert_bytes(&out.tasks[0].cert, cert, sizeof(cert));
	assert_int_equal(out.tasks[0].modulus.len, 0);

	assert_string_equal(out.tasks[1].id, TASK_B);
	assert_int_equal(out.tasks[1].key_type, STINT_KEY_RSA_3072);
	assert_true(out.tasks[1].not_after == UINT64_MAX);
	assert_int_equal(out.tasks[1].n_mechs, 1);
	assert_bytes(&out.tasks[1].modulus, modulus, sizeof(modulus));
	assert_bytes(&out.tasks[1].exponent, exponent, sizeof(exponent));
	assert_int_equal(out.tasks[1].cert.len, 0);
	assert_null(out.tasks[1].cert.ptr);
	stint_list_rep_clear(&out);
	assert_null(out.tasks);

	/* An empty page. */
	rep.n_tasks = 0;
	rep.more = false;
	assert_int_equal(stint_enc_list_rep(&rep, &buf, &len), 0);
	assert_int_equal(stint_dec_list_rep(buf, len, &head, &out), 0);
	assert_int_equal(out.n_tasks, 0);
	assert_false(out.more);
	stint_list_rep_clear(&out);
	free(buf);
}

static void
test_list_rep_full_page(void **state)
{
	struct stint_task_key *tasks =
		calloc(STINT_LIST_PAGE + 1, sizeof(*tasks));
	struct stint_list_rep rep = {.tasks = tasks};
	struct stint_list_rep out;
	struct stint_reply_head head;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_non_null(tasks);
	for (size_t i = 0; i <= STINT_LIST_PAGE; i++) {
		char id[STINT_TASK_ID_MAX + 1];

		snprintf(id, sizeof(id), "t-%032zx", i);
		fill_rsa_task(&tasks[i], id);
		tasks[i].n_mechs = STINT_MECHS_MAX;
	}
	/* A full page of the largest entries fits in one frame. */
	rep.n_tasks = STINT_LIST_PAGE;
	assert_int_equal(stint_enc_list_rep(&rep, &buf, &len), 0);
	assert_true(len <= STINT_FRAME_MAX);
	assert_int_equal(stint_dec_list_rep(buf, len, &head, &out), 0);
	assert_int_equal(out.n_tasks, STINT_LIST_PAGE);
	stint_list_rep_clear(&out);
	free(buf);

	rep.n_tasks = STINT_LIST_PAGE + 1;
	assert_int_equal(stint_enc_list_rep(&rep, &buf, &len),
			 STINT_WIRE_RANGE);
	free(tasks);
}

static void
test_sign_round_trip(void **state)
{
	uint8_t digest[48];
	struct stint_sign_req req = {0}, out;
	struct stint_msg *m;
	struct stint_reply_head head;
	struct stint_bytes sig;
	uint8_t *buf;
	size_t len;
	uint64_t op;

	(void)state;
	for (size_t i = 0; i < sizeof(digest); i++)
		digest[i] = (uint8_t)(i * 7);
	strcpy(req.task, TASK_A);
	req.mech = CKM_SHA384_RSA_PKCS_PSS;
	req.has_pss = true;
	req.pss_hash = CKM_SHA384;
	req.pss_mgf = CKG_MGF1_SHA384;
	req.pss_salt = 48;
	req.data = (struct stint_bytes){digest, sizeof(digest)};
	assert_int_equal(stint_enc_sign_req(&req, &buf, &len), 0);
	m = parse_ok(buf, len);
	free(buf);
	assert_int_equal(stint_dec_request_op(m, &op), 0);
	assert_int_equal(op, STINT_OP_SIGN);
	assert_int_equal(stint_dec_sign_req(m, &out), 0);
	stint_msg_free(m); /* the decoded request owns its data */
	assert_string_equal(out.task, TASK_A);
	assert_int_equal(out.mech, CKM_SHA384_RSA_PKCS_PSS);
	assert_true(out.has_pss);
	assert_int_equal(out.pss_hash, CKM_SHA384);
	assert_int_equal(out.pss_mgf, CKG_MGF1_SHA384);
	assert_int_equal(out.pss_salt, 48);
	assert_bytes(&out.data, digest, sizeof(digest));
	stint_bytes_clear(&out.data);

	req.has_pss = false;
	req.mech = CKM_ECDSA;
	req.data.len = 32;
	assert_int_equal(stint_enc_sign_req(&req, &buf, &len), 0);
	m = parse_ok(buf, len);
	free(buf);
	assert_false(stint_msg_has(m, STINT_K_PSS_HASH));
	assert_int_equal(stint_dec_sign_req(m, &out), 0);
	assert_false(out.has_pss);
	assert_bytes(&out.data, digest, 32);
	stint_bytes_clear(&out.data);
	stint_msg_free(m);

	assert_int_equal(stint_enc_sign_rep(digest, 40, &buf, &len), 0);
	assert_int_equal(stint_dec_sign_rep(buf, len, &head, &sig), 0);
	assert_int_equal(head.status, STINT_OK);
	assert_bytes(&sig, digest, 40);
	stint_bytes_clear(&sig);
	free(buf);
}

static void
test_error_replies(void **state)
{
	char longmsg[600];
	struct stint_reply_head head;
	struct stint_hello_rep hello;
	struct stint_list_rep list;
	struct stint_bytes sig;
	uint8_t *buf;
	size_t len;

	(void)state;
	assert_int_equal(
		stint_enc_error_rep(STINT_E_NOT_LIVE, "task ended", &buf, &len),
		0);
	memset(&hello, 0xff, sizeof(hello));
	assert_int_equal(stint_dec_hello_rep(buf, len, &head, &hello), 0);
	assert_int_equal(head.status, STINT_E_NOT_LIVE);
	assert_string_equal(head.error, "task ended");
	assert_int_equal(hello.version, 0); /* body zeroed, not decoded */
	memset(&list, 0xff, sizeof(list));
	assert_int_equal(stint_dec_list_rep(buf, len, &head, &list), 0);
	assert_int_equal(head.status, STINT_E_NOT_LIVE);
	assert_null(list.tasks);
	stint_list_rep_clear(&list); /* safe on a zeroed body */
	assert_int_equal(stint_dec_sign_rep(buf, len, &head, &sig), 0);
	assert_int_equal(head.status, STINT_E_NOT_LIVE);
	assert_null(sig.ptr);
	free(buf);

	/* Over-long messages are cut at a character boundary, and still
	 * decode within the bounded error field. */
	memset(longmsg, 'x', sizeof(longmsg));
	memcpy(longmsg + STINT_REASON_MAX - 1, "\xc3\xa9", 2);
	longmsg[sizeof(longmsg) - 1] = '\0';
	assert_int_equal(
		stint_enc_error_rep(STINT_E_BACKEND, longmsg, &buf, &len), 0);
	assert_int_equal(stint_dec_sign_rep(buf, len, &head, &sig), 0);
	assert_int_equal(head.status, STINT_E_BACKEND);
	assert_int_equal(strlen(head.error), STINT_REASON_MAX - 1);
	free(buf);

	/* No message: the status's own description. */
	assert_int_equal(stint_enc_error_rep(STINT_E_BUDGET, NULL, &buf, &len),
			 0);
	assert_int_equal(stint_dec_sign_rep(buf, len, &head, &sig), 0);
	assert_string_equal(head.error, stint_status_str(STINT_E_BUDGET));
	free(buf);

	assert_int_equal(stint_enc_error_rep(STINT_OK, "x", &buf, &len),
			 STINT_WIRE_RANGE);
}

/* --- rejection --------------------------------------------------------- */

/* Every message kind, encoded; each must fail at every shorter length. */
static void
test_truncated_every_length(void **state)
{
	struct stint_task_key tasks[2];
	struct stint_list_rep lrep = {.tasks = tasks, .n_tasks = 2};
	struct stint_hello_rep hrep = {.version = 1, .agent = "a"};
	struct stint_sign_req sreq = {.task = TASK_A,
				      .mech = CKM_ECDSA,
				      .data = {(uint8_t *)spki, sizeof(spki)}};
	uint8_t *bufs[7];
	size_t lens[7];

	(void)state;
	fill_ec_task(&tasks[0], TASK_A);
	fill_rsa_task(&tasks[1], TASK_B);
	assert_int_equal(stint_enc_hello_req(1, &bufs[0], &lens[0]), 0);
	assert_int_equal(stint_enc_list_req(TASK_A, &bufs[1], &lens[1]), 0);
	assert_int_equal(stint_enc_sign_req(&sreq, &bufs[2], &lens[2]), 0);
	assert_int_equal(stint_enc_hello_rep(&hrep, &bufs[3], &lens[3]), 0);
	assert_int_equal(stint_enc_list_rep(&lrep, &bufs[4], &lens[4]), 0);
	assert_int_equal(
		stint_enc_sign_rep(spki, sizeof(spki), &bufs[5], &lens[5]), 0);
	assert_int_equal(stint_enc_error_rep(STINT_E_BUDGET, "spent", &bufs[6],
					     &lens[6]),
			 0);
	for (size_t k = 0; k < 7; k++) {
		for (size_t n = 0; n < lens[k]; n++) {
			struct stint_reply_head head;
			struct stint_hello_rep h;
			struct stint_list_rep l;
			struct stint_bytes s;
			uint8_t *copy = malloc(n ? n : 1);

			/* An exact-size heap copy lets ASan catch any read
			 * past the end. */
			assert_non_null(copy);
			memcpy(copy, bufs[k], n);
			assert_int_equal(parse_err(copy, n),
					 STINT_WIRE_MALFORMED);
			assert_int_not_equal(
				stint_dec_hello_rep(copy, n, &head, &h), 0);
			assert_int_not_equal(
				stint_dec_list_rep(copy, n, &head, &l), 0);
			assert_int_not_equal(
				stint_dec_sign_rep(copy, n, &head, &s), 0);
			free(copy);
		}
		/* ...and parse at full length. */
		stint_msg_free(parse_ok(bufs[k], lens[k]));
		free(bufs[k]);
	}
}

static void
test_trailing_garbage(void **state)
{
	uint8_t *buf, *big;
	size_t len;

	(void)state;
	assert_int_equal(stint_enc_hello_req(1, &buf, &len), 0);
	big = malloc(2 * len);
	assert_non_null(big);
	memcpy(big, buf, len);
	big[len] = 0x00;
	assert_int_equal(parse_err(big, len + 1), STINT_WIRE_MALFORMED);
	/* A second whole message is trailing garbage too. */
	memcpy(big + len, buf, len);
	assert_int_equal(parse_err(big, 2 * len), STINT_WIRE_MALFORMED);
	free(big);
	free(buf);
}

static void
test_not_a_map(void **state)
{
	static const struct {
		uint8_t b[8];
		size_t n;
	} cases[] = {
		{{0x01}, 1},                   /* uint */
		{{0x80}, 1},                   /* empty array */
		{{0x81, 0xa0}, 2},             /* array holding a map */
		{{0x41, 0x00}, 2},             /* bytes */
		{{0x61, 0x61}, 2},             /* text */
		{{0xf5}, 1},                   /* true */
		{{0xc1, 0xa0}, 2},             /* tag around a map */
		{{0xa1, 0x61, 0x61, 0x01}, 4}, /* text key */
		{{0xa1, 0x20, 0x01}, 3},       /* negative key */
		{{0xa1, 0x41, 0x01, 0x01}, 4}, /* bytes key */
		{{0xa1, 0xa0, 0x01}, 3},       /* map key */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(parse_err(cases[i].b, cases[i].n),
				 STINT_WIRE_MALFORMED);
	assert_int_equal(parse_err(NULL, 0), STINT_WIRE_MALFORMED);
}

static void
test_duplicate_keys(void **state)
{
	static const uint8_t dup[] = {0xa2, 0x01, 0x01, 0x01, 0x02};
	/* Same key, different encodings (1 and 0x18 0x01). */
	static const uint8_t dup_wide[] = {0xa2, 0x01, 0x01, 0x18, 0x01, 0x02};
	/* Duplicate inside a nested task map. */
	static const uint8_t dup_nested[] = {0xa1, 0x0d, 0x81, 0xa2,
					     0x06, 0x01, 0x06, 0x02};
	static const uint8_t ok[] = {0xa2, 0x01, 0x01, 0x02, 0x02};

	(void)state;
	assert_int_equal(parse_err(dup, sizeof(dup)), STINT_WIRE_MALFORMED);
	assert_int_equal(parse_err(dup_wide, sizeof(dup_wide)),
			 STINT_WIRE_MALFORMED);
	assert_int_equal(parse_err(dup_nested, sizeof(dup_nested)),
			 STINT_WIRE_MALFORMED);
	stint_msg_free(parse_ok(ok, sizeof(ok)));
}

static void
test_indefinite_rejected(void **state)
{
	static const struct {
		uint8_t b[10];
		size_t n;
	} cases[] = {
		{{0xbf, 0x01, 0x01, 0xff}, 4},                   /* map */
		{{0xa1, 0x12, 0x9f, 0x01, 0xff}, 5},             /* array */
		{{0xa1, 0x08, 0x5f, 0x41, 0x00, 0xff}, 6},       /* bytes */
		{{0xa1, 0x03, 0x7f, 0x61, 0x61, 0xff}, 6},       /* text */
		{{0xa1, 0x0d, 0x81, 0xbf, 0x01, 0x01, 0xff}, 7}, /* inner map */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(parse_err(cases[i].b, cases[i].n),
				 STINT_WIRE_MALFORMED);
}

static void
test_other_types_rejected(void **state)
{
	static const struct {
		uint8_t b[12];
		size_t n;
	} cases[] = {
		{{0xa1, 0x01, 0x20}, 3},             /* negint */
		{{0xa1, 0x01, 0xf6}, 3},             /* null */
		{{0xa1, 0x01, 0xf7}, 3},             /* undefined */
		{{0xa1, 0x01, 0xf9, 0x3c, 0x00}, 5}, /* half */
		{{0xa1, 0x01, 0xfb, 0, 0, 0, 0, 0, 0, 0, 0}, 11}, /* double */
		{{0xa1, 0x01, 0xc2, 0x41, 0x01}, 5},              /* tag */
		{{0xa1, 0x01, 0x62, 0xc3, 0x28}, 5},       /* bad UTF-8 */
		{{0xa1, 0x01, 0x62, 0xc0, 0x80}, 5},       /* overlong */
		{{0xa1, 0x01, 0x63, 0xed, 0xa0, 0x80}, 6}, /* surrogate */
		{{0xa1, 0x01, 0x63, 0x61, 0x00, 0x62}, 6}, /* NUL */
		{{0xa1, 0x01, 0xff}, 3},                   /* stray break */
		{{0xa1, 0x01, 0x1c}, 3}, /* reserved additional info */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(parse_err(cases[i].b, cases[i].n),
				 STINT_WIRE_MALFORMED);
}

static void
test_nesting_and_counts(void **state)
{
	/* {1: [{2: [3]}]}: four levels, the deepest a message uses. */
	static const uint8_t four[] = {0xa1, 0x01, 0x81, 0xa1,
				       0x02, 0x81, 0x03};
	/* {1: [{2: [[3]]}]}: five. */
	static const uint8_t five[] = {0xa1, 0x01, 0x81, 0xa1,
				       0x02, 0x81, 0x81, 0x03};
	/* An array claiming 2^64-1 elements in a few bytes; a byte string
	 * claiming 4 GiB. Neither may cause an allocation of that size. */
	static const uint8_t huge_array[] = {0xa1, 0x01, 0x9b, 0xff, 0xff, 0xff,
					     0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t huge_map[] = {0xbb, 0x7f, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0xff};
	static const uint8_t huge_bytes[] = {0xa1, 0x01, 0x5a, 0xff,
					     0xff, 0xff, 0xff, 0x00};
	uint8_t deep[64];
	size_t n = 0;

	(void)state;
	stint_msg_free(parse_ok(four, sizeof(four)));
	assert_int_equal(parse_err(five, sizeof(five)), STINT_WIRE_MALFORMED);
	assert_int_equal(parse_err(huge_array, sizeof(huge_array)),
			 STINT_WIRE_MALFORMED);
	assert_int_equal(parse_err(huge_map, sizeof(huge_map)),
			 STINT_WIRE_MALFORMED);
	assert_int_equal(parse_err(huge_bytes, sizeof(huge_bytes)),
			 STINT_WIRE_MALFORMED);

	deep[n++] = 0xa1;
	deep[n++] = 0x01;
	while (n < sizeof(deep) - 1)
		deep[n++] = 0x81;
	deep[n++] = 0x00;
	assert_int_equal(parse_err(deep, n), STINT_WIRE_MALFORMED);
}

static void
test_wrong_types(void **state)
{
	struct stint_msg *m;
	uint8_t *buf;
	size_t len;
	struct stint_reply_head head;
	struct stint_list_rep list;
	struct stint_hello_rep hello;

	(void)state;
	m = sign_req_msg(F_ALL & ~F_TASK);
	assert_int_equal(
		stint_msg_put_bytes(m, STINT_K_TASK, (const uint8_t *)"t-1", 3),
		0);
	assert_int_equal(dec_sign_msg(m), STINT_WIRE_TYPE);

	m = sign_req_msg(F_ALL & ~F_MECH);
	assert_int_equal(stint_msg_put_text(m, STINT_K_MECH, "CKM_ECDSA"), 0);
	assert_int_equal(dec_sign_msg(m), STINT_WIRE_TYPE);

	m = sign_req_msg(F_ALL & ~F_DATA);
	assert_int_equal(stint_msg_put_text(m, STINT_K_DATA, "abc"), 0);
	assert_int_equal(dec_sign_msg(m), STINT_WIRE_TYPE);

	m = sign_req_msg(F_ALL);
	assert_int_equal(stint_msg_put_uint(m, STINT_K_PSS_HASH, 1), 0);
	assert_int_equal(stint_msg_put_uint(m, STINT_K_PSS_MGF, 1), 0);
	assert_int_equal(stint_msg_put_bool(m, STINT_K_PSS_SALT, true), 0);
	assert_int_equal(dec_sign_msg(m), STINT_WIRE_TYPE);

	/* Status as text. */
	m = stint_msg_new();
	assert_int_equal(stint_msg_put_text(m, STINT_K_STATUS, "0"), 0);
	serialize(m, &buf, &len);
	assert_int_equal(stint_dec_hello_rep(buf, len, &head, &hello),
			 STINT_WIRE_TYPE);
	free(buf);

	/* Error text as bytes on a failed status. */
	m = stint_msg_new();
	assert_int_equal(stint_msg_put_uint(m, STINT_K_STATUS, 5), 0);
	assert_int_equal(
		stint_msg_put_bytes(m, STINT_K_ERROR, (const uint8_t *)"x", 1),
		0);
	serialize(m, &buf, &len);
	assert_int_equal(stint_dec_hello_rep(buf, len, &head, &hello),
			 STINT_WIRE_TYPE);
	free(buf);

	/* tasks not an array; more not a bool; a task that is not a map. */
	m = stint_msg_reply_ok();
	assert_int_equal(stint_msg_put_uint(m, STINT_K_TASKS, 1), 0);
	assert_int_equal(stint_msg_put_bool(m, STINT_K_MORE, false), 0);
	serialize(m, &buf, &len);
	assert_int_equal(stint_dec_list_rep(buf, len, &head, &list),
			 STINT_WIRE_TYPE);
	free(buf);

	m = stint_msg_reply_ok();
	assert_int_equal(stint_msg_put_uint_array(m, STINT_K_TASKS, NULL, 0),
			 0);
	assert_int_equal(stint_msg_put_uint(m, STINT_K_MORE, 0), 0);
	serialize(m, &buf, &len);
	assert_int_equal(stint_dec_list_rep(buf, len, &head, &list),
			 STINT_WIRE_TYPE);
	free(buf);

	m = stint_msg_reply_ok();
	assert_int_equal(stint_msg_append_text(m, STINT_K_TASKS, TASK_A), 0);
	assert_int_equal(stint_msg_put_bool(m, STINT_K_MORE, false), 0);
	serialize(m, &buf, &len);
	assert_int_equal(stint_dec_list_rep(buf, len, &head, &list),
			 STINT_WIRE_TYPE);
	free(buf);
}

/* A LIST reply whose one task map is built by the caller. */
static int
dec_list_with_task(struct stint_msg *task)
{
	struct stint_msg *m = stint_msg_reply_ok();
	struct stint_reply_head head;
	struct stint_list_rep list;
	uint8_t *buf;
	size_t len;
	int r;

	assert_int_equal(stint_msg_append_map(m, STINT_K_TASKS, task), 0);
	assert_int_equal(stint_msg_put_bool(m, STINT_K_MORE, false), 0);
	serialize(m, &buf, &len);
	r = stint_dec_list_rep(buf, len, &head, &list);
	if (r == 0)
		stint_list_rep_clear(&list);
	else
		assert_null(list.tasks);
	free(buf);
	return r;
}

enum {
	T_ID = 1,
	T_TYPE = 2,
	T_NOT_AFTER = 4,
	T_MECHS = 8,
	T_SPKI = 16,
	T_PARAMS = 32,
	T_POINT = 64,
	T_ALL = 127
};

static struct stint_msg *
ec_task_msg(int fields, uint64_t key_type)
{
	struct stint_msg *t = stint_msg_new();
	uint64_t mechs[1] = {CKM_ECDSA};

	if (fields & T_ID)
		assert_int_equal(stint_msg_put_text(t, STINT_K_TASK, TASK_A),
				 0);
	if (fields & T_TYPE)
		assert_int_equal(
			stint_msg_put_uint(t, STINT_K_KEY_TYPE, key_type), 0);
	if (fields & T_NOT_AFTER)
		assert_int_equal(stint_msg_put_uint(t, STINT_K_NOT_AFTER, 5),
				 0);
	if (fields & T_MECHS)
		assert_int_equal(
			stint_msg_put_uint_array(t, STINT_K_MECHS, mechs, 1),
			0);
	if (fields & T_SPKI)
		assert_int_equal(stint_msg_put_bytes(t, STINT_K_SPKI, spki,
						     sizeof(spki)),
				 0);
	if (fields & T_PARAMS)
		assert_int_equal(stint_msg_put_bytes(t, STINT_K_EC_PARAMS, ecp,
						     sizeof(ecp)),
				 0);
	if (fields & T_POINT)
		assert_int_equal(stint_msg_put_bytes(t, STINT_K_EC_POINT, ecpt,
						     sizeof(ecpt)),
				 0);
	return t;
}

static void
test_missing_fields(void **state)
{
	struct stint_msg *m;
	uint8_t *buf;
	size_t len;
	struct stint_reply_head head;
	struct stint_hello_rep hello;
	uint64_t v;

	(void)state;
	assert_int_equal(dec_sign_msg(sign_req_msg(F_ALL)), 0);
	assert_int_equal(dec_sign_msg(sign_req_msg(F_ALL & ~F_TASK)),
			 STINT_WIRE_MISSING);
	assert_int_equal(dec_sign_msg(sign_req_msg(F_ALL & ~F_MECH)),
			 STINT_WIRE_MISSING);
	assert_int_equal(dec_sign_msg(sign_req_msg(F_ALL & ~F_DATA)),
			 STINT_WIRE_MISSING);
	/* PSS parameters come all together or not at all. */
	m = sign_req_msg(F_ALL);
	assert_int_equal(stint_msg_put_uint(m, STINT_K_PSS_HASH, CKM_SHA256),
			 0);
	assert_int_equal(dec_sign_msg(m), STINT_WIRE_MISSING);

	/* Every required task field, one at a time. */
	assert_int_equal(dec_list_with_task(ec_task_msg(T_ALL, 1)), 0);
	for (int f = 1; f < T_ALL; f <<= 1)
		assert_int_equal(dec_list_with_task(ec_task_msg(T_ALL & ~f, 1)),
				 STINT_WIRE_MISSING);
	/* An RSA task needs modulus and exponent, not EC fields. */
	assert_int_equal(dec_list_with_task(ec_task_msg(T_ALL, 3)),
			 STINT_WIRE_MISSING);

	/* Reply without status; hello without agent; error without text. */
	m = stint_msg_new();
	assert_int_equal(stint_msg_put_uint(m, STINT_K_VERSION, 1), 0);
	serialize(m, &buf, &len);
	assert_int_equal(stint_dec_hello_rep(buf, len, &head, &hello),
			 STINT_WIRE_MISSING);
	free(buf);
	m = stint_msg_reply_ok();
	assert_int_equal(stint_msg_put_uint(m, STINT_K_VERSION, 1), 0);
	serialize(m, &buf, &len);
	assert_int_equal(stint_dec_hello_rep(buf, len, &head, &hello),
			 STINT_WIRE_MISSING);
	free(buf);
	m = stint_msg_new();
	assert_int_equal(stint_msg_put_uint(m, STINT_K_STATUS, 4), 0);
	serialize(m, &buf, &len);
	assert_int_equal(stint_dec_hello_rep(buf, len, &head, &hello),
			 STINT_WIRE_MISSING);
	free(buf);

	/* Request without op; hello without version. */
	m = stint_msg_new();
	assert_int_equal(stint_dec_request_op(m, &v), STINT_WIRE_MISSING);
	assert_int_equal(stint_dec_hello_req(m, &v), STINT_WIRE_MISSING);
	stint_msg_free(m);
}

static void
test_out_of_range(void **state)
{
	struct stint_msg *m, *t;
	uint64_t mechs[STINT_MECHS_MAX + 1] = {0};
	char cursor[STINT_TASK_ID_MAX + 1];
	char longid[STINT_TASK_ID_MAX + 2];

	(void)state;
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';

	/* Task ids: too long, empty, or with characters a URI would need
	 * to escape. */
	m = sign_req_msg(F_ALL & ~F_TASK);
	assert_int_equal(stint_msg_put_text(m, STINT_K_TASK, longid), 0);
	assert_int_equal(dec_sign_msg(m), STINT_WIRE_RANGE);
	m = sign_req_msg(F_ALL & ~F_TASK);
	assert_int_equal(stint_msg_put_text(m, STINT_K_TASK, ""), 0);
	assert_int_equal(dec_sign_msg(m), STINT_WIRE_RANGE);
	m = sign_req_msg(F_ALL & ~F_TASK);
	assert_int_equal(stint_msg_put_text(m, STINT_K_TASK, "t-a;b"), 0);
	assert_int_equal(dec_sign_msg(m), STINT_WIRE_RANGE);

	m = stint_msg_new();
	assert_int_equal(stint_msg_put_text(m, STINT_K_CURSOR, longid), 0);
	assert_int_equal(stint_dec_list_req(m, cursor), STINT_WIRE_RANGE);
	assert_string_equal(cursor, "");
	stint_msg_free(m);

	/* Too many mechanisms; unknown key type; empty spki. */
	t = ec_task_msg(T_ALL & ~T_MECHS, 1);
	assert_int_equal(stint_msg_put_uint_array(t, STINT_K_MECHS, mechs,
						  STINT_MECHS_MAX + 1),
			 0);
	assert_int_equal(dec_list_with_task(t), STINT_WIRE_RANGE);
	assert_int_equal(dec_list_with_task(ec_task_msg(T_ALL, 0)),
			 STINT_WIRE_RANGE);
	assert_int_equal(dec_list_with_task(ec_task_msg(T_ALL, 5)),
			 STINT_WIRE_RANGE);
	t = ec_task_msg(T_ALL & ~T_SPKI, 1);
	assert_int_equal(stint_msg_put_bytes(t, STINT_K_SPKI, NULL, 0), 0);
	assert_int_equal(dec_list_with_task(t), STINT_WIRE_RANGE);
}

static void
test_too_many_tasks(void **state)
{
	struct stint_msg *m = stint_msg_reply_ok();
	struct stint_reply_head head;
	struct stint_list_rep list;
	uint8_t *buf;
	size_t len;

	(void)state;
	for (int i = 0; i <= STINT_LIST_PAGE; i++)
		assert_int_equal(stint_msg_append_map(m, STINT_K_TASKS,
						      ec_task_msg(T_ALL, 1)),
				 0);
	assert_int_equal(stint_msg_put_bool(m, STINT_K_MORE, true), 0);
	serialize(m, &buf, &len);
	assert_int_equal(stint_dec_list_rep(buf, len, &head, &list),
			 STINT_WIRE_RANGE);
	assert_null(list.tasks);
	free(buf);
}

static void
test_unknown_keys_ignored(void **state)
{
	struct stint_msg *m = sign_req_msg(F_ALL);
	struct stint_msg *t;

	(void)state;
	/* Keys a newer peer might add, of every type. */
	assert_int_equal(stint_msg_put_uint(m, 200, 7), 0);
	assert_int_equal(stint_msg_put_text(m, 100000, "future"), 0);
	assert_int_equal(stint_msg_append_map(m, 201, stint_msg_new()), 0);
	assert_int_equal(dec_sign_msg(m), 0);

	t = ec_task_msg(T_ALL, 2);
	assert_int_equal(stint_msg_put_bool(t, 999, true), 0);
	assert_int_equal(dec_list_with_task(t), 0);
}

static void
test_msg_accessors(void **state)
{
	struct stint_msg *m = stint_msg_new();
	const struct stint_msg *child;
	uint8_t *buf;
	size_t len, n;
	char text[8];
	uint64_t v;
	bool b;
	const uint8_t *p;

	(void)state;
	assert_int_equal(stint_msg_append_text(m, STINT_K_LINES, "one"), 0);
	assert_int_equal(stint_msg_append_text(m, STINT_K_LINES, "two"), 0);
	assert_int_equal(
		stint_msg_append_map(m, STINT_K_AGENTS, stint_msg_reply_ok()),
		0);
	assert_int_equal(stint_msg_put_text(m, STINT_K_AGENT, "12345678"), 0);
	assert_int_equal(stint_msg_put_bytes(m, STINT_K_SIG, NULL, 0), 0);
	assert_int_equal(stint_msg_put_uint(m, STINT_K_COUNT, 1), 0);
	/* put replaces */
	assert_int_equal(stint_msg_put_uint(m, STINT_K_COUNT, 1ull << 40), 0);
	assert_int_equal(stint_msg_put_text(m, STINT_K_REASON, "\xff"),
			 STINT_WIRE_RANGE);
	serialize(m, &buf, &len);
	m = parse_ok(buf, len);
	free(buf);

	assert_int_equal(stint_msg_get_array_len(m, STINT_K_LINES, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(
		stint_msg_get_text_at(m, STINT_K_LINES, 1, text, sizeof(text)),
		0);
	assert_string_equal(text, "two");
	assert_int_equal(
		stint_msg_get_text_at(m, STINT_K_LINES, 2, text, sizeof(text)),
		STINT_WIRE_RANGE);
	assert_int_equal(stint_msg_get_map_at(m, STINT_K_LINES, 0, &child),
			 STINT_WIRE_TYPE);
	assert_int_equal(stint_msg_get_map_at(m, STINT_K_AGENTS, 0, &child), 0);
	assert_int_equal(stint_msg_get_uint(child, STINT_K_STATUS, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(stint_msg_get_map_at(m, STINT_K_AGENTS, 1, &child),
			 STINT_WIRE_RANGE);
	/* 8 characters do not fit in 8 bytes with the NUL. */
	assert_int_equal(
		stint_msg_get_text(m, STINT_K_AGENT, text, sizeof(text)),
		STINT_WIRE_RANGE);
	assert_int_equal(stint_msg_get_bytes(m, STINT_K_SIG, &p, &n), 0);
	assert_int_equal(n, 0);
	assert_non_null(p);
	assert_int_equal(stint_msg_get_uint(m, STINT_K_COUNT, &v), 0);
	assert_true(v == 1ull << 40);
	assert_int_equal(stint_msg_get_bool(m, STINT_K_COUNT, &b),
			 STINT_WIRE_TYPE);
	assert_int_equal(stint_msg_get_uint(m, STINT_K_MORE, &v),
			 STINT_WIRE_MISSING);
	stint_msg_free(m);
}

static void
test_names_and_mechanisms(void **state)
{
	uint32_t kt;
	size_t n, len;
	const struct stint_mech *all, *m;
	uint8_t bytes[4];
	char hex[9];

	(void)state;
	for (uint32_t t = STINT_KEY_EC_P256; t <= STINT_KEY_RSA_3072; t++) {
		assert_int_equal(
			stint_key_type_parse(stint_key_type_str(t), &kt), 0);
		assert_int_equal(kt, t);
	}
	assert_string_equal(stint_key_type_str(STINT_KEY_EC_P384), "ec-p384");
	assert_int_equal(stint_key_type_parse("rsa-1024", &kt), -1);
	assert_string_equal(stint_status_str(STINT_OK), "ok");
	assert_string_not_equal(stint_status_str(STINT_E_NOT_LIVE),
				stint_status_str(STINT_E_BUDGET));

	all = stint_mech_all(&n);
	assert_int_equal(n, 12);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(stint_mech_find(all[i].mech), &all[i]);
		assert_ptr_equal(stint_mech_by_name(all[i].name), &all[i]);
		assert_ptr_equal(stint_mech_by_name(all[i].short_name),
				 &all[i]);
		if (all[i].hash != 0)
			assert_non_null(
				stint_digestinfo_prefix(all[i].hash, &len));
	}
	m = stint_mech_by_name("sha256-rsa-pss");
	assert_non_null(m);
	assert_int_equal(m->raw, CKM_RSA_PKCS_PSS);
	assert_int_equal(m->hash, CKM_SHA256);
	assert_true(m->pss);
	assert_false(stint_mech_fits_key(m, STINT_KEY_EC_P256));
	assert_true(stint_mech_fits_key(m, STINT_KEY_RSA_2048));
	m = stint_mech_find(CKM_ECDSA_SHA384);
	assert_int_equal(m->raw, CKM_ECDSA);
	assert_true(stint_mech_fits_key(m, STINT_KEY_EC_P384));
	assert_null(stint_mech_find(CKM_RSA_X_509));
	assert_int_equal(stint_hash_len(CKM_SHA384), 48);
	/* DigestInfo prefix + digest = the DER length in the header. */
	assert_non_null(stint_digestinfo_prefix(CKM_SHA512, &len));
	assert_int_equal(len + 64,
			 2 + stint_digestinfo_prefix(CKM_SHA512, &len)[1]);
	assert_null(stint_digestinfo_prefix(CKM_MD5, &len));

	stint_hex_encode((const uint8_t *)"\x00\xab\x10\xff", 4, hex);
	assert_string_equal(hex, "00ab10ff");
	assert_int_equal(stint_hex_decode("00AB10ff", bytes, 4), 0);
	assert_memory_equal(bytes, "\x00\xab\x10\xff", 4);
	assert_int_equal(stint_hex_decode("00ab10f", bytes, 4), -1);
	assert_int_equal(stint_hex_decode("00ab10ff0", bytes, 4), -1);
	assert_int_equal(stint_hex_decode("00ab10fg", bytes, 4), -1);
}

/* --- the flat fast path (issue 14) agrees with the libcbor path -------- */

/* Both parsers accept or refuse buf alike; when they accept, the messages
 * hold the same values (compared through the libcbor serializer). */
static void
parsers_agree(const uint8_t *buf, size_t len)
{
	struct stint_msg *fast = NULL, *full = NULL;
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	int rf = stint_msg_parse(buf, len, &fast);
	int rs = stint_msg_parse_full(buf, len, &full);

	assert_int_equal(rf == 0, rs == 0);
	if (rf == 0) {
		assert_int_equal(stint_msg_serialize_full(fast, &a, &alen), 0);
		assert_int_equal(stint_msg_serialize_full(full, &b, &blen), 0);
		assert_int_equal(alen, blen);
		assert_memory_equal(a, b, alen);
	}
	free(a);
	free(b);
	stint_msg_free(fast);
	stint_msg_free(full);
}

/* The direct encoder writes what libcbor writes, byte for byte, and
 * both parsers read it back alike. */
static void
encoders_agree(struct stint_msg *m)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;

	assert_int_equal(stint_msg_serialize(m, &a, &alen), 0);
	assert_int_equal(stint_msg_serialize_full(m, &b, &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	parsers_agree(a, alen);
	free(a);
	free(b);
	stint_msg_free(m);
}

static void
test_flat_matches_libcbor(void **state)
{
	static const uint64_t edges[] = {
		0,         1,     23,    24,         255,
		256,       65535, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
		UINT64_MAX};
	static uint8_t big[70000];
	static char text[300];
	struct stint_sign_req req;
	struct stint_msg *m;
	uint8_t *buf;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		m = stint_msg_new();
		assert_int_equal(stint_msg_put_uint(m, edges[i], edges[i]), 0);
		assert_int_equal(stint_msg_put_bool(m, 3, i % 2), 0);
		encoders_agree(m);
	}
	memset(big, 0xab, sizeof(big));
	memset(text, 'x', sizeof(text) - 1);
	for (size_t n = 0; n < 300; n += (n < 30 ? 1 : 37)) {
		m = stint_msg_new();
		assert_int_equal(stint_msg_put_bytes(m, 1, big, n), 0);
		text[n] = '\0';
		assert_int_equal(stint_msg_put_text(m, 2, text), 0);
		text[n] = 'x';
		encoders_agree(m);
	}
	m = stint_msg_new();
	assert_int_equal(stint_msg_put_bytes(m, 1, big, sizeof(big)), 0);
	assert_int_equal(stint_msg_put_text(m, 2, "h\xc3\xa9llo"), 0);
	encoders_agree(m);
	encoders_agree(stint_msg_new()); /* the empty map */
	/* Replacing a value, and a message that is not flat. */
	m = stint_msg_new();
	assert_int_equal(stint_msg_put_text(m, 1, "a"), 0);
	assert_int_equal(stint_msg_put_uint(m, 1, 7), 0);
	assert_int_equal(stint_msg_put_uint_array(m, 2, edges, 4), 0);
	encoders_agree(m);
	m = stint_msg_new();
	for (uint64_t k = 0; k < 20; k++)
		assert_int_equal(stint_msg_put_uint(m, k, k), 0);
	encoders_agree(m);

	/* The SIGN request and reply themselves. */
	memset(&req, 0, sizeof(req));
	strcpy(req.task, TASK_A);
	req.mech = CKM_RSA_PKCS_PSS;
	req.data.ptr = big;
	req.data.len = 32;
	req.has_pss = true;
	req.pss_hash = CKM_SHA256;
	req.pss_mgf = CKG_MGF1_SHA256;
	req.pss_salt = 32;
	assert_int_equal(stint_enc_sign_req(&req, &buf, &len), 0);
	assert_int_equal(stint_msg_parse_full(buf, len, &m), 0);
	encoders_agree(m);
	free(buf);
	assert_int_equal(stint_enc_sign_rep(big, 72, &buf, &len), 0);
	assert_int_equal(stint_msg_parse_full(buf, len, &m), 0);
	encoders_agree(m);
	free(buf);
}

static void
test_flat_parser_declines(void **state)
{
	static const char *cases[] = {
		"a10118",                 /* truncated head */
		"a1011805",               /* non-shortest uint value */
		"a1180105",               /* non-shortest key */
		"b8010105",               /* non-shortest map count */
		"a1010500",               /* trailing byte */
		"a201050106",             /* duplicate key */
		"a1012005",               /* negative value */
		"a12005",                 /* negative key */
		"a10162610a",             /* text ... */
		"a1016261",               /* truncated text */
		"a1016200ff",             /* NUL and invalid UTF-8 */
		"a10162c080",             /* overlong UTF-8 */
		"a10142c080",             /* the same as bytes: fine */
		"a1015f4100ff",           /* indefinite bytes */
		"a101f6",                 /* null */
		"a101f7",                 /* undefined */
		"a101f0",                 /* simple value */
		"a101f93c00",             /* half float */
		"a101c105",               /* tag */
		"a10181f5",               /* array */
		"a101a10105",             /* nested map */
		"bf0105ff",               /* indefinite map */
		"a0",                     /* empty map */
		"80",                     /* not a map */
		"a1f505",                 /* bool key */
		"a1015a00000001",         /* bytes longer than the buffer */
		"a10119ffff",             /* uint16 */
		"a1011a00010000",         /* uint32 */
		"a1011b0000000100000000", /* uint64 */
		"a1011b00000000ffffffff", /* uint64 that fits 32 bits */
	};
	uint8_t buf[64];
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = strlen(cases[i]) / 2;
		assert_int_equal(stint_hex_decode(cases[i], buf, len), 0);
		parsers_agree(buf, len);
		/* And every prefix of it. */
		for (size_t n = 1; n < len; n++)
			parsers_agree(buf, n);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello_round_trip),
		cmocka_unit_test(test_agent_names_round_trip),
		cmocka_unit_test(test_list_req_round_trip),
		cmocka_unit_test(test_list_rep_round_trip),
		cmocka_unit_test(test_list_rep_full_page),
		cmocka_unit_test(test_sign_round_trip),
		cmocka_unit_test(test_error_replies),
		cmocka_unit_test(test_truncated_every_length),
		cmocka_unit_test(test_trailing_garbage),
		cmocka_unit_test(test_not_a_map),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_indefinite_rejected),
		cmocka_unit_test(test_other_types_rejected),
		cmocka_unit_test(test_nesting_and_counts),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_too_many_tasks),
		cmocka_unit_test(test_unknown_keys_ignored),
		cmocka_unit_test(test_msg_accessors),
		cmocka_unit_test(test_names_and_mechanisms),
		cmocka_unit_test(test_flat_matches_libcbor),
		cmocka_unit_test(test_flat_parser_declines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
