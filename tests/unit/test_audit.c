/*
 * Audit log, the writer: it builds one hash chain under concurrency, every
 * sync mode writes readable records with the exact bytes hashed, and a failed
 * write leaves the chain intact. The verifier's cases are in
 * test_audit_verify.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/audit.h"
#include "common/hex.h"
#include "tests/unit/audit_fixture.h"

#define THREADS    8
#define PER_THREAD 150
#define ZERO_HASH_HEX                                                          \
	"0000000000000000000000000000000000000000000000000000000000000000"

/* --- writing ------------------------------------------------------------ */

struct worker {
	struct stint_audit *a;
	int base;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < PER_THREAD; i++)
		append_sign(w->a, w->base + i);
	return NULL;
}

static void
test_concurrent_appends_form_one_chain(void **state)
{
	struct fixture *f = *state;
	struct worker w[THREADS];
	pthread_t t[THREADS];
	struct stint_audit *a = open_log(f->log, STINT_SYNC_BATCH);
	struct stint_audit_report rep;
	uint8_t head[32];
	uint64_t seq;
	struct stat st;

	for (int i = 0; i < THREADS; i++) {
		w[i].a = a;
		w[i].base = i * PER_THREAD;
		assert_int_equal(
			pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < 50; i++)
		append_sign(a, i);
	stint_audit_head(a, &seq, head);
	assert_int_equal(seq, THREADS * PER_THREAD + 50);

	/* Readable and complete before close: append returned after write. */
	assert_int_equal(verify(f->log, NULL, &rep), 0);
	assert_int_equal(rep.records, THREADS * PER_THREAD + 50);
	stint_audit_close(a);

	assert_int_equal(verify(f->log, NULL, &rep), 0);
	assert_int_equal(rep.bad_line, 0);
	assert_int_equal(rep.records, THREADS * PER_THREAD + 50);
	assert_int_equal(rep.last_seq, seq);
	assert_memory_equal(rep.last_hash, head, 32);

	assert_int_equal(stat(f->log, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* The hash is SHA-256 of the exact bytes before ,"hash" plus "}",
 * recomputed here without the library's code. */
static void
test_hash_is_sha256_of_exact_bytes(void **state)
{
	struct fixture *f = *state;
	struct stint_audit *a = open_log(f->log, STINT_SYNC_ALWAYS);
	struct stint_peer peer = {.pid = 42, .uid = 7};
	uint8_t input[32], md[32];
	struct stint_audit_event full = {
		.event = "sign-refused",
		.agent = "billing",
		.task = "t1",
		.peer = &peer,
		.mechanism = "CKM_RSA_PKCS",
		.input_sha256 = input,
		.decision = "deny",
		.reason = "not live",
		.detail = "quote \" backslash \\ tab \t",
	};
	struct stint_audit_event bare = {.event = "daemon-start"};
	const char *order[] = {
		"seq",    "time",      "event",        "agent",    "task",
		"peer",   "mechanism", "input_sha256", "decision", "reason",
		"detail", "prev",      "hash"};
	char prev[65] = ZERO_HASH_HEX, hex[65], *buf, *line, *h, *save = NULL;
	size_t len, k;
	unsigned int mdlen;
	EVP_MD_CTX *ctx;
	json_t *root;
	const char *key;
	void *it;
	int lines = 0;

	/* An executable path need not be UTF-8: the record still gets out. */
	snprintf(peer.exe, sizeof(peer.exe), "/opt/caf\xe9/agent");
	memset(input, 0xab, sizeof(input));
	assert_int_equal(stint_audit_append(a, &bare), 0);
	assert_int_equal(stint_audit_append(a, &full), 0);
	assert_int_equal(stint_audit_append(a, &bare), 0);
	stint_audit_close(a);

	buf = slurp(f->log, &len);
	assert_true(len > 0 && buf[len - 1] == '\n');
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		lines++;
		h = strstr(line, ",\"hash\":\"");
		assert_non_null(h);
		assert_int_equal(strlen(h), strlen(",\"hash\":\"\"}") + 64);
		ctx = EVP_MD_CTX_new();
		assert_non_null(ctx);
		assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
		assert_int_equal(
			EVP_DigestUpdate(ctx, line, (size_t)(h - line)), 1);
		assert_int_equal(EVP_DigestUpdate(ctx, "}", 1), 1);
		assert_int_equal(EVP_DigestFinal_ex(ctx, md, &mdlen), 1);
		EVP_MD_CTX_free(ctx);
		stint_hex_encode(md, 32, hex);
		assert_memory_equal(h + 9, hex, 64);

		/* Members in the specified order, prev chaining, absent
		 * facts omitted. */
		root = json_loads(line, 0, NULL);
		assert_non_null(root);
		assert_int_equal(
			json_integer_value(json_object_get(root, "seq")),
			lines);
		assert_string_equal(
			json_string_value(json_object_get(root, "prev")), prev);
		k = 0;
		for (it = json_object_iter(root); it != NULL;
		     it = json_object_iter_next(root, it)) {
			key = json_object_iter_key(it);
			while (k < sizeof(order) / sizeof(order[0]) &&
			       strcmp(order[k], key) != 0)
				k++;
			if (k == sizeof(order) / sizeof(order[0]))
				fail_msg("member %s out of order", key);
		}
		key = json_string_value(json_object_get(root, "time"));
		assert_non_null(key);
		assert_int_equal(strlen(key),
				 strlen("2026-11-28T18:40:43.123456Z"));
		assert_true(key[10] == 'T' && key[19] == '.' && key[26] == 'Z');
		if (lines == 2) {
			assert_int_equal(json_object_size(root), 13);
			assert_int_equal(
				json_integer_value(json_object_get(
					json_object_get(root, "peer"), "pid")),
				42);
			assert_string_equal(json_string_value(json_object_get(
						    root, "input_sha256")),
					    "ababababababababababababababababab"
					    "ababababababab"
					    "abababababababab");
			assert_string_equal(json_string_value(json_object_get(
						    root, "detail")),
					    full.detail);
			assert_string_equal(
				json_string_value(json_object_get(
					json_object_get(root, "peer"), "exe")),
				"/opt/caf?/agent");
		} else {
			/* seq, time, event, prev, hash */
			assert_int_equal(json_object_size(root), 5);
		}
		json_decref(root);
		memcpy(prev, hex, 65);
	}
	assert_int_equal(lines, 3);
	free(buf);
}

static void
test_sync_modes_write_readable_records(void **state)
{
	struct fixture *f = *state;
	enum stint_audit_sync modes[] = {STINT_SYNC_ALWAYS, STINT_SYNC_BATCH,
					 STINT_SYNC_NONE};
	struct stint_audit_report rep;
	struct stint_audit *a;

	for (size_t m = 0; m < 3; m++) {
		unlink(f->log);
		a = open_log(f->log, modes[m]);
		for (int i = 0; i < 20; i++)
			append_sign(a, i);
		/* Each record is in the file when append returns. */
		assert_int_equal(verify(f->log, NULL, &rep), 0);
		assert_int_equal(rep.records, 20);
		if (modes[m] == STINT_SYNC_BATCH)
			usleep(20 * 1000); /* let the sync thread run */
		stint_audit_close(a);
		assert_int_equal(verify(f->log, NULL, &rep), 0);
		assert_int_equal(rep.records, 20);
	}
}

static void
test_reopen_continues_chain(void **state)
{
	struct fixture *f = *state;
	struct stint_audit_report rep;
	struct stint_audit *a;
	uint8_t head[32], head2[32];
	uint64_t seq;

	write_log(f->log, 5);
	a = open_log(f->log, STINT_SYNC_BATCH);
	stint_audit_head(a, &seq, head);
	assert_int_equal(seq, 5);
	assert_int_equal(verify(f->log, NULL, &rep), 0);
	assert_memory_equal(rep.last_hash, head, 32);
	for (int i = 0; i < 5; i++)
		append_sign(a, i);
	stint_audit_head(a, &seq, head2);
	assert_int_equal(seq, 10);
	stint_audit_close(a);

	assert_int_equal(verify(f->log, NULL, &rep), 0);
	assert_int_equal(rep.records, 10);
	assert_int_equal(rep.last_seq, 10);
	assert_memory_equal(rep.last_hash, head2, 32);
}

static void
test_open_empty_log_starts_chain(void **state)
{
	struct fixture *f = *state;
	struct stint_audit *a = open_log(f->log, STINT_SYNC_NONE);
	uint8_t head[32], zero[32] = {0};
	uint64_t seq;

	stint_audit_head(a, &seq, head);
	assert_int_equal(seq, 0);
	assert_memory_equal(head, zero, 32);
	stint_audit_close(a);
}

static void
test_open_refuses_damaged_tail(void **state)
{
	struct fixture *f = *state;
	struct stint_audit *a = NULL;
	struct stat before, after;
	char err[512], *buf;
	size_t len;
	int fd;

	write_log(f->log, 3);

	/* A torn last record (no "\n"). */
	fd = open(f->log, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"seq\":4,\"ti", 12), 12);
	close(fd);
	assert_int_equal(stat(f->log, &before), 0);
	assert_int_equal(stint_audit_open(f->log, STINT_SYNC_BATCH, &a, err,
					  sizeof(err)),
			 -1);
	assert_null(a);
	assert_non_null(strstr(err, "torn"));
	assert_non_null(strstr(err, "stint audit verify"));
	assert_int_equal(stat(f->log, &after), 0);
	assert_int_equal(after.st_size, before.st_size); /* left as it was */

	/* A complete last line whose hash does not match. */
	buf = slurp(f->log, &len);
	len -= 12;      /* drop the torn part */
	buf[len - 5]++; /* a hash digit of record 3 */
	if (buf[len - 5] == 'g' || buf[len - 5] == ':')
		buf[len - 5] = '0';
	spit(f->log, buf, len);
	free(buf);
	assert_int_equal(
		stint_audit_open(f->log, STINT_SYNC_NONE, &a, err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, "no valid hash"));
	assert_non_null(strstr(err, "stint audit verify"));

	/* Not a log at all. */
	spit(f->log, "hello\n", 6);
	assert_int_equal(
		stint_audit_open(f->log, STINT_SYNC_NONE, &a, err, sizeof(err)),
		-1);
}

static void
test_open_refuses_second_writer(void **state)
{
	struct fixture *f = *state;
	struct stint_audit *a = open_log(f->log, STINT_SYNC_NONE), *b = NULL;
	char err[512];

	assert_int_equal(
		stint_audit_open(f->log, STINT_SYNC_NONE, &b, err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, "another"));
	stint_audit_close(a);
}

/* --- record bytes -------------------------------------------------------- */

/*
 * The writer formats records itself; these tests hold it to the bytes
 * json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER) made of the same record
 * when the writer built a jansson tree, so that old and new lines agree.
 */

#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER)

/* The writer's former set_string, kept here as the reference. */
static void
ref_set_string(json_t *o, const char *key, const char *value)
{
	json_t *s;
	char *copy;

	if (value == NULL)
		return;
	if ((s = json_string(value)) == NULL) {
		copy = strdup(value);
		assert_non_null(copy);
		for (char *p = copy; *p != '\0'; p++) {
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		}
		s = json_string(copy);
		free(copy);
	}
	assert_non_null(s);
	assert_int_equal(json_object_set_new(o, key, s), 0);
}

static void
ref_set_int(json_t *o, const char *key, json_int_t value)
{
	assert_int_equal(json_object_set_new(o, key, json_integer(value)), 0);
}

/* The record (without hash) as the former jansson-based writer dumped it,
 * for the seq, time and prev the line carries. Caller frees. */
static char *
ref_body(const struct stint_audit_event *ev, json_int_t seq, const char *when,
	 const char *prev)
{
	json_t *o = json_object(), *peer;
	char hex[65], *body;

	assert_non_null(o);
	ref_set_int(o, "seq", seq);
	ref_set_string(o, "time", when);
	ref_set_string(o, "event", ev->event);
	ref_set_string(o, "agent", ev->agent);
	ref_set_string(o, "task", ev->task);
	if (ev->peer != NULL) {
		peer = json_object();
		assert_non_null(peer);
		ref_set_int(peer, "pid", ev->peer->pid);
		ref_set_int(peer, "uid", ev->peer->uid);
		ref_set_string(peer, "exe", ev->peer->exe);
		assert_int_equal(json_object_set_new(o, "peer", peer), 0);
	}
	ref_set_string(o, "mechanism", ev->mechanism);
	if (ev->input_sha256 != NULL) {
		stint_hex_encode(ev->input_sha256, 32, hex);
		ref_set_string(o, "input_sha256", hex);
	}
	ref_set_string(o, "decision", ev->decision);
	ref_set_string(o, "reason", ev->reason);
	ref_set_string(o, "detail", ev->detail);
	ref_set_string(o, "prev", prev);
	body = json_dumps(o, DUMP_FLAGS);
	assert_non_null(body);
	json_decref(o);
	return body;
}

/* Checks one written line (without "\n") against the event it records:
 * its body round-trips through jansson unchanged, equals the former
 * writer's bytes, and its hash is right. Returns the parsed body (with
 * "hash" removed); *hash_hex gets the line's hash. */
static json_t *
check_record_bytes(const char *line, const struct stint_audit_event *ev,
		   char hash_hex[65])
{
	const char *h = strstr(line, ",\"hash\":\"");
	char *body, *again, *ref;
	uint8_t hash[32];
	size_t n;
	json_t *root;

	assert_non_null(h);
	assert_int_equal(strlen(h), strlen(",\"hash\":\"\"}") + 64);
	assert_int_equal(stint_audit_check_line(line, strlen(line), hash),
			 STINT_AUDIT_LINE_OK);
	stint_hex_encode(hash, 32, hash_hex);
	assert_memory_equal(h + 9, hash_hex, 64);

	n = (size_t)(h - line);
	body = malloc(n + 2);
	assert_non_null(body);
	memcpy(body, line, n);
	memcpy(body + n, "}", 2);

	/* jansson reads it and writes the very same bytes back. */
	root = json_loads(body, JSON_REJECT_DUPLICATES, NULL);
	if (root == NULL)
		fail_msg("not JSON: %s", body);
	again = json_dumps(root, DUMP_FLAGS);
	assert_non_null(again);
	assert_string_equal(again, body);
	free(again);

	/* ...and so would the former writer have, for this event. */
	ref = ref_body(ev, json_integer_value(json_object_get(root, "seq")),
		       json_string_value(json_object_get(root, "time")),
		       json_string_value(json_object_get(root, "prev")));
	assert_string_equal(ref, body);
	free(ref);
	free(body);
	return root;
}

/* The decoded member is want (or absent when want is NULL). */
static void
expect_member(json_t *o, const char *key, const char *want)
{
	json_t *v = json_object_get(o, key);

	if (want == NULL) {
		assert_null(v);
		return;
	}
	assert_true(json_is_string(v));
	assert_int_equal(json_string_length(v), strlen(want));
	assert_memory_equal(json_string_value(v), want, strlen(want));
}

struct tricky {
	const char *in;
	const char *want; /* decoded from the log */
};

static char ctl_in[32];        /* 0x01..0x1f, filled at run time */
static const char ctl_json[] = /* how jansson 2.14 writes it */
	"\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n"
	"\\u000B\\f\\r\\u000E\\u000F\\u0010\\u0011\\u0012\\u0013\\u0014"
	"\\u0015\\u0016\\u0017\\u0018\\u0019\\u001A\\u001B\\u001C\\u001D"
	"\\u001E\\u001F\"";

static const struct tricky tricky[] = {
	{"", ""},
	{"plain", "plain"},
	{ctl_in, ctl_in},
	{"q\" b\\ s/ del\x7f end", "q\" b\\ s/ del\x7f end"},
	{"\\\"\\\\\"", "\\\"\\\\\""},
	/* Valid UTF-8, written as is: 2, 3 and 4 bytes, the line and
	 * paragraph separators, the edges around surrogates, U+10FFFF. */
	{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
	{"ls\xe2\x80\xa8ps\xe2\x80\xa9", "ls\xe2\x80\xa8ps\xe2\x80\xa9"},
	{"\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\xc2\x80",
	 "\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\xc2\x80"},
	/* Not UTF-8: every byte >= 0x80 of the string becomes '?', valid
	 * sequences included. */
	{"lone \x80 cont", "lone ? cont"},
	{"trunc \xe2\x82", "trunc ??"},
	{"trunc \xe2\x82x mid", "trunc ??x mid"},
	{"\xf0\x9f\x98", "???"},
	{"over \xc0\xaf \xc1\xbf", "over ?? ??"},
	{"over3 \xe0\x80\xaf", "over3 ???"},
	{"over4 \xf0\x82\x82\xac", "over4 ????"},
	{"sur \xed\xa0\x80", "sur ???"},
	{"sur \xed\xbf\xbf", "sur ???"},
	{"big \xf4\x90\x80\x80", "big ????"},
	{"big \xf5\x80\x80\x80 \xfe\xff", "big ???? ??"},
	{"caf\xc3\xa9 \xff", "caf?? ?"},
	{"\xff\t\"\x1f\x7f/", "?\t\"\x1f\x7f/"},
	{"\xc3\"", "?\""},
};

#define N_TRICKY (sizeof(tricky) / sizeof(tricky[0]))

/* Each tricky string in each string member, plus NULL members, with and
 * without a peer, with odd pid/uid values. */
static void
test_record_bytes_match_jansson(void **state)
{
	struct fixture *f = *state;
	enum { N_EVENTS = N_TRICKY + 3 };
	struct stint_peer peers[N_EVENTS];
	struct stint_audit_event evs[N_EVENTS];
	const struct tricky *t[N_EVENTS][7];
	struct stint_audit_report rep;
	uint8_t input[32];
	char prev[65] = ZERO_HASH_HEX, hex[65], *buf, *line, *save = NULL;
	struct stint_audit *a;
	size_t len, i = 0;
	json_t *root, *peer;
	bool saw_ctl = false, saw_ls = false;

	for (int c = 1; c < 0x20; c++)
		ctl_in[c - 1] = (char)c;
	for (size_t k = 0; k < 32; k++)
		input[k] = (uint8_t)(k * 7);
	memset(evs, 0, sizeof(evs));
	memset(peers, 0, sizeof(peers));
	for (size_t e = 0; e < N_EVENTS; e++) {
		for (size_t m = 0; m < 7; m++)
			t[e][m] = &tricky[(e + m * 5) % N_TRICKY];
		evs[e] = (struct stint_audit_event){
			.event = t[e][0]->in,
			.agent = t[e][1]->in,
			.task = t[e][2]->in,
			.peer = &peers[e],
			.mechanism = t[e][3]->in,
			.input_sha256 = e % 2 ? input : NULL,
			.decision = t[e][4]->in,
			.reason = t[e][5]->in,
			.detail = t[e][6]->in,
		};
		peers[e].pid = (pid_t)(e * 1000);
		peers[e].uid = (uid_t)e;
		snprintf(peers[e].exe, sizeof(peers[e].exe), "%s",
			 t[e][(e + 3) % 7]->in);
	}
	/* Extremes: negative pids and the largest uid; no peer and every
	 * optional member NULL; peer present, everything else absent. */
	peers[1].pid = -2147483647 - 1;
	peers[1].uid = (uid_t)-1;
	peers[3].pid = -1;
	evs[N_EVENTS - 2] = (struct stint_audit_event){.event = "bare"};
	evs[N_EVENTS - 1] = (struct stint_audit_event){
		.event = "peer-only", .peer = &peers[N_EVENTS - 1]};

	a = open_log(f->log, STINT_SYNC_NONE);
	for (size_t e = 0; e < N_EVENTS; e++)
		assert_int_equal(stint_audit_append(a, &evs[e]), 0);
	stint_audit_close(a);

	buf = slurp(f->log, &len);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), i++) {
		assert_true(i < N_EVENTS);
		root = check_record_bytes(line, &evs[i], hex);
		assert_int_equal(
			json_integer_value(json_object_get(root, "seq")),
			(json_int_t)i + 1);
		expect_member(root, "prev", prev);
		memcpy(prev, hex, 65);
		peer = json_object_get(root, "peer");
		if (i >= N_EVENTS - 2) {
			/* seq, time, event, prev (+ peer) */
			assert_int_equal(json_object_size(root),
					 i == N_EVENTS - 1 ? 5 : 4);
			expect_member(root, "agent", NULL);
			expect_member(root, "detail", NULL);
			assert_true(i == N_EVENTS - 1 ? peer != NULL
						      : peer == NULL);
			json_decref(root);
			continue;
		}
		expect_member(root, "event", t[i][0]->want);
		expect_member(root, "agent", t[i][1]->want);
		expect_member(root, "task", t[i][2]->want);
		expect_member(root, "mechanism", t[i][3]->want);
		expect_member(root, "decision", t[i][4]->want);
		expect_member(root, "reason", t[i][5]->want);
		expect_member(root, "detail", t[i][6]->want);
		expect_member(peer, "exe", t[i][(i + 3) % 7]->want);
		assert_int_equal(
			json_integer_value(json_object_get(peer, "pid")),
			(json_int_t)peers[i].pid);
		assert_int_equal(
			json_integer_value(json_object_get(peer, "uid")),
			(json_int_t)peers[i].uid);
		assert_int_equal(json_object_get(root, "input_sha256") != NULL,
				 i % 2);
		if (i == 1)
			assert_non_null(strstr(line,
					       "\"peer\":{\"pid\":-2147483648,"
					       "\"uid\":4294967295,"));
		json_decref(root);
		/* Spelled out, in case jansson's reader forgave something:
		 * control bytes as \b..\t or uppercase \u00XX, DEL, '/' and
		 * U+2028 raw. */
		if (strstr(line, ctl_json) != NULL)
			saw_ctl = true;
		if (strstr(line, "\"ls\xe2\x80\xa8ps\xe2\x80\xa9\"") != NULL)
			saw_ls = true;
		if (strstr(line, "s/ del") != NULL)
			assert_non_null(strstr(line, "q\\\" b\\\\ s/ del\x7f"));
		assert_null(strstr(line, "\\u007"));
		assert_null(strstr(line, "\\/"));
		assert_null(strstr(line, "\\u2028"));
	}
	assert_int_equal(i, N_EVENTS);
	assert_true(saw_ctl);
	assert_true(saw_ls);
	free(buf);

	assert_int_equal(verify(f->log, NULL, &rep), 0);
	assert_int_equal(rep.records, N_EVENTS);
}

/* Writes a line for body (without its closing "}") with its hash. */
static void
hashed_line(const char *body, char *out, size_t outlen, char hash_hex[65])
{
	uint8_t md[32];

	assert_int_equal(stint_audit_record_hash(body, strlen(body), md), 0);
	stint_hex_encode(md, 32, hash_hex);
	snprintf(out, outlen, "%s,\"hash\":\"%s\"}\n", body, hash_hex);
}

/* seq is written in full at the top of the json_int_t range. */
static void
test_record_bytes_huge_seq(void **state)
{
	struct fixture *f = *state;
	struct stint_audit_event ev = {.event = "sign-allowed",
				       .agent = "billing"};
	char first[512], hex[65], head_hex[65], *buf;
	struct stint_audit *a;
	uint8_t head[32];
	uint64_t seq;
	size_t len;
	json_t *root;

	hashed_line("{\"seq\":9223372036854775806,\"time\":\"2026-01-01T00:00:"
		    "00.000000Z\",\"event\":\"daemon-start\",\"prev\":"
		    "\"" ZERO_HASH_HEX "\"",
		    first, sizeof(first), hex);
	spit(f->log, first, strlen(first));
	a = open_log(f->log, STINT_SYNC_NONE);
	assert_int_equal(stint_audit_append(a, &ev), 0);
	stint_audit_head(a, &seq, head);
	stint_audit_close(a);
	assert_int_equal(seq, (uint64_t)INT64_MAX);

	buf = slurp(f->log, &len);
	assert_true(len > strlen(first) && buf[len - 1] == '\n');
	assert_memory_equal(buf, first, strlen(first));
	buf[len - 1] = '\0';
	assert_non_null(strstr(buf + strlen(first),
			       "{\"seq\":9223372036854775807,\"time\":"));
	root = check_record_bytes(buf + strlen(first), &ev, head_hex);
	expect_member(root, "prev", hex);
	json_decref(root);
	stint_hex_encode(head, 32, hex);
	assert_string_equal(head_hex, hex);
	free(buf);
}

/* A record far larger than the usual (600 KB escaped) and small ones on
 * both sides: the buffer grows and shrinks without changing a byte. */
static void
test_record_bytes_large_record(void **state)
{
	struct fixture *f = *state;
	size_t big_len = 100 * 1000, len, i = 0;
	char *big = malloc(big_len + 1), *buf, *line, *save = NULL, hex[65];
	struct stint_audit_event evs[4] = {
		{.event = "small", .detail = "before"},
		{.event = "large", .detail = big},
		{.event = "small", .detail = "after \x01"},
		{.event = "large", .agent = big + big_len - 3, .detail = big},
	};
	struct stint_audit_report rep;
	struct stint_audit *a;
	json_t *root;

	assert_non_null(big);
	for (size_t k = 0; k < big_len; k++)
		big[k] = (char)(k % 5 == 0 ? 0x1b : 'a' + k % 26);
	big[big_len] = '\0';

	a = open_log(f->log, STINT_SYNC_NONE);
	for (size_t e = 0; e < 4; e++)
		assert_int_equal(stint_audit_append(a, &evs[e]), 0);
	stint_audit_close(a);

	buf = slurp(f->log, &len);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), i++) {
		assert_true(i < 4);
		root = check_record_bytes(line, &evs[i], hex);
		expect_member(root, "detail", evs[i].detail);
		json_decref(root);
	}
	assert_int_equal(i, 4);
	free(buf);
	free(big);
	assert_int_equal(verify(f->log, NULL, &rep), 0);
	assert_int_equal(rep.records, 4);
}

/* Microseconds since the epoch for "YYYY-MM-DDTHH:MM:SS.uuuuuuZ". */
static int64_t
parse_time(const char *s)
{
	struct tm tm = {0};
	int usec = -1, end = 0;

	assert_int_equal(strlen(s), strlen("2026-11-28T18:40:43.123456Z"));
	assert_int_equal(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%6d%n", &tm.tm_year,
				&tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
				&tm.tm_min, &tm.tm_sec, &usec, &end),
			 7);
	assert_int_equal(end, 26);
	assert_int_equal(s[26], 'Z');
	for (int k = 0; k < 26; k++) {
		if (k != 4 && k != 7 && k != 10 && k != 13 && k != 16 &&
		    k != 19)
			assert_true(s[k] >= '0' && s[k] <= '9');
	}
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000000 + usec;
}

static int64_t
now_us(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_REALTIME, &ts), 0);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* time is the wall clock at writing, to the microsecond, also when the
 * second changes between records (the writer caches the seconds part). */
static void
test_record_time_is_current(void **state)
{
	struct fixture *f = *state;
	struct stint_audit_event ev = {.event = "tick"};
	int64_t before[64], after[64], t, first = 0;
	struct stint_audit *a = open_log(f->log, STINT_SYNC_NONE);
	char *buf, *line, *save = NULL;
	int n = 0, i = 0;
	json_t *root;
	size_t len;

	/* Until two seconds boundaries have passed, every 100 ms. */
	do {
		assert_true(n < 64);
		before[n] = now_us();
		assert_int_equal(stint_audit_append(a, &ev), 0);
		after[n] = now_us();
		if (n == 0)
			first = before[0] / 1000000;
		n++;
		usleep(100 * 1000);
	} while (after[n - 1] / 1000000 < first + 2);
	stint_audit_close(a);

	buf = slurp(f->log, &len);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), i++) {
		assert_true(i < n);
		root = json_loads(line, 0, NULL);
		assert_non_null(root);
		t = parse_time(
			json_string_value(json_object_get(root, "time")));
		if (t < before[i] || t > after[i])
			fail_msg("record %d: time %lld outside [%lld, %lld]", i,
				 (long long)t, (long long)before[i],
				 (long long)after[i]);
		json_decref(root);
	}
	assert_int_equal(i, n);
	free(buf);
}

/* --- failures while writing --------------------------------------------- */

/* The descriptor stint_audit_open holds on path (the only one open on it). */
static int
find_log_fd(const char *path)
{
	char link[300], target[PATH_MAX], real[PATH_MAX];
	struct dirent *de;
	DIR *d;
	ssize_t n;
	int fd = -1;

	assert_non_null(realpath(path, real));
	d = opendir("/proc/self/fd");
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, real) == 0)
			fd = atoi(de->d_name);
	}
	closedir(d);
	return fd;
}

/* A write that fails outright (the descriptor swapped for a read-only
 * one): -1, head unchanged, and the chain continues once writes work. */
static void
test_failed_write_does_not_advance(void **state)
{
	struct fixture *f = *state;
	struct stint_audit *a = open_log(f->log, STINT_SYNC_NONE);
	struct stint_audit_event ev = {.event = "sign-allowed"};
	struct stint_audit_report rep;
	uint8_t head[32], head2[32];
	uint64_t seq;
	int fd, ro, rw;

	append_sign(a, 1);
	append_sign(a, 2);
	stint_audit_head(a, &seq, head);
	fd = find_log_fd(f->log);
	assert_true(fd >= 0);

	ro = open(f->log, O_RDONLY);
	assert_true(ro >= 0);
	assert_int_equal(dup2(ro, fd), fd);
	close(ro);
	assert_int_equal(stint_audit_append(a, &ev), -1);
	assert_int_equal(errno, EBADF);
	stint_audit_head(a, &seq, head2);
	assert_int_equal(seq, 2);
	assert_memory_equal(head, head2, 32);

	rw = open(f->log, O_RDWR | O_APPEND);
	assert_true(rw >= 0);
	assert_int_equal(dup2(rw, fd), fd);
	close(rw);
	append_sign(a, 3);
	stint_audit_close(a);
	assert_int_equal(verify(f->log, NULL, &rep), 0);
	assert_int_equal(rep.records, 3);
}

/* A write cut short (file size limit, as ENOSPC would): the partial line
 * is removed again, -1 is returned, the chain stays intact. */
static void
test_partial_write_is_rolled_back(void **state)
{
	struct fixture *f = *state;
	struct stint_audit *a = open_log(f->log, STINT_SYNC_ALWAYS);
	struct stint_audit_report rep;
	struct rlimit old, tiny;
	struct stat before, after;
	void (*old_handler)(int);
	uint64_t seq;
	int r;

	append_sign(a, 1);
	append_sign(a, 2);
	assert_int_equal(stat(f->log, &before), 0);

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	tiny = old;
	tiny.rlim_cur = (rlim_t)before.st_size + 30;
	old_handler = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &tiny), 0);
	r = stint_audit_append(
		a, &(struct stint_audit_event){.event = "sign-allowed",
					       .agent = "billing"});
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_handler);

	assert_int_equal(r, -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(stat(f->log, &after), 0);
	assert_int_equal(after.st_size, before.st_size);
	stint_audit_head(a, &seq, NULL);
	assert_int_equal(seq, 2);

	append_sign(a, 3);
	stint_audit_close(a);
	assert_int_equal(verify(f->log, NULL, &rep), 0);
	assert_int_equal(rep.records, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_concurrent_appends_form_one_chain, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_hash_is_sha256_of_exact_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_sync_modes_write_readable_records, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_record_bytes_match_jansson,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_bytes_huge_seq,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_bytes_large_record,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_time_is_current,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_continues_chain,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_open_empty_log_starts_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_damaged_tail,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_second_writer,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_failed_write_does_not_advance, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_partial_write_is_rolled_back, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
