/*
 * Audit log: the writer builds one hash chain under concurrency, every sync
 * mode writes readable records, a failed write leaves the chain intact, and
 * the verifier names the first bad line for each kind of tampering.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdarg.h>
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
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "attest/audit.h"
#include "common/hex.h"

#define THREADS     8
#define PER_THREAD  150
#define LOG_RECORDS 40 /* in the logs the tamper tests alter */
#define ZERO_HASH_HEX                                                          \
	"0000000000000000000000000000000000000000000000000000000000000000"

struct fixture {
	char dir[256];
	char log[PATH_MAX];
	char copy[PATH_MAX];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/stint-audit-XXXXXX",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->log, sizeof(f->log), "%s/audit.log", f->dir);
	snprintf(f->copy, sizeof(f->copy), "%s/copy.log", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(f->dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", f->dir,
				 de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct stint_audit *
open_log(const char *path, enum stint_audit_sync sync)
{
	struct stint_audit *a = NULL;
	char err[512];

	if (stint_audit_open(path, sync, &a, err, sizeof(err)) != 0)
		fail_msg("stint_audit_open: %s", err);
	return a;
}

static void
append_sign(struct stint_audit *a, int i)
{
	struct stint_peer peer = {.pid = 1000 + i, .uid = 1001};
	uint8_t input[32];
	char task[32];
	struct stint_audit_event ev = {
		.event = "sign-allowed",
		.agent = "billing",
		.task = task,
		.peer = &peer,
		.mechanism = "CKM_ECDSA",
		.input_sha256 = input,
		.decision = "allow",
	};

	snprintf(peer.exe, sizeof(peer.exe), "/usr/bin/curl");
	snprintf(task, sizeof(task), "task-%d", i);
	memset(input, i & 0xff, sizeof(input));
	assert_int_equal(stint_audit_append(a, &ev), 0);
}

/* Writes n records to path (continuing whatever is there). */
static void
write_log(const char *path, int n)
{
	struct stint_audit *a = open_log(path, STINT_SYNC_NONE);

	for (int i = 0; i < n; i++)
		append_sign(a, i);
	stint_audit_close(a);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

/* Writes a file as stintd would keep it (0600). */
static void
spit(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Offsets of the starts of lines (1-based: starts[1] is line 1); starts[n+1]
 * is the end of the text. Returns the number of lines. */
static int
line_starts(const char *buf, size_t len, size_t *starts, int max)
{
	int n = 0;

	starts[1] = 0;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			n++;
			assert_true(n + 1 < max);
			starts[n + 1] = i + 1;
		}
	}
	return n;
}

static int
verify(const char *path, const struct stint_audit_anchor *anchor,
       struct stint_audit_report *rep)
{
	return stint_audit_verify_file(path, anchor, rep);
}

static void
expect_bad(const char *path, const struct stint_audit_anchor *anchor,
	   uint64_t line, const char *reason)
{
	struct stint_audit_report rep;

	assert_int_equal(verify(path, anchor, &rep), 1);
	if (strstr(rep.reason, reason) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", rep.reason, reason);
	assert_int_equal(rep.bad_line, line);
}

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

/* --- verification -------------------------------------------------------- */

static void
test_verify_detects_changed_byte(void **state)
{
	struct fixture *f = *state;
	size_t len, starts[LOG_RECORDS + 2];
	char *buf, *p;

	write_log(f->log, LOG_RECORDS);
	buf = slurp(f->log, &len);
	assert_int_equal(line_starts(buf, len, starts, LOG_RECORDS + 2),
			 LOG_RECORDS);
	/* task-16 -> task-17 in line 17: still valid JSON, wrong hash. */
	p = strstr(buf + starts[17], "task-16");
	assert_non_null(p);
	p[6] = '7';
	spit(f->copy, buf, len);
	expect_bad(f->copy, NULL, 17,
		   "line 17: hash mismatch (record altered)");
	free(buf);
}

/* An attacker who edits a line and recomputes its hash breaks the next
 * line's prev. */
static void
test_verify_detects_rehashed_line(void **state)
{
	struct fixture *f = *state;
	size_t len, starts[LOG_RECORDS + 2], body;
	char *buf, *p, *h, hex[65];
	uint8_t md[32];
	unsigned int mdlen;
	EVP_MD_CTX *ctx;

	write_log(f->log, LOG_RECORDS);
	buf = slurp(f->log, &len);
	line_starts(buf, len, starts, LOG_RECORDS + 2);
	p = strstr(buf + starts[17], "task-16");
	p[6] = '7';
	h = strstr(buf + starts[17], ",\"hash\":\"");
	body = (size_t)(h - (buf + starts[17]));
	ctx = EVP_MD_CTX_new();
	assert_non_null(ctx);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, buf + starts[17], body);
	EVP_DigestUpdate(ctx, "}", 1);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	stint_hex_encode(md, 32, hex);
	memcpy(h + 9, hex, 64);
	spit(f->copy, buf, len);
	expect_bad(f->copy, NULL, 18,
		   "line 18: prev does not match line 17's hash");
	free(buf);
}

static void
test_verify_detects_deleted_line(void **state)
{
	struct fixture *f = *state;
	size_t len, starts[LOG_RECORDS + 2];
	char *buf;

	write_log(f->log, LOG_RECORDS);
	buf = slurp(f->log, &len);
	line_starts(buf, len, starts, LOG_RECORDS + 2);
	memmove(buf + starts[17], buf + starts[18], len - starts[18]);
	spit(f->copy, buf, len - (starts[18] - starts[17]));
	expect_bad(f->copy, NULL, 17,
		   "line 17: seq 18 follows 16 (record removed or reordered)");

	/* The first line removed. */
	spit(f->copy, buf + starts[2], len - starts[2]);
	expect_bad(f->copy, NULL, 1, "first record has seq 2");
	free(buf);
}

static void
test_verify_detects_swapped_lines(void **state)
{
	struct fixture *f = *state;
	size_t len, starts[LOG_RECORDS + 2], l10, l11;
	char *buf, *out;

	write_log(f->log, LOG_RECORDS);
	buf = slurp(f->log, &len);
	line_starts(buf, len, starts, LOG_RECORDS + 2);
	l10 = starts[11] - starts[10];
	l11 = starts[12] - starts[11];
	out = malloc(len);
	assert_non_null(out);
	memcpy(out, buf, starts[10]);
	memcpy(out + starts[10], buf + starts[11], l11);
	memcpy(out + starts[10] + l11, buf + starts[10], l10);
	memcpy(out + starts[12], buf + starts[12], len - starts[12]);
	spit(f->copy, out, len);
	expect_bad(f->copy, NULL, 10, "line 10: seq 11 follows 9");
	free(out);
	free(buf);
}

static void
test_verify_detects_cut_tail(void **state)
{
	struct fixture *f = *state;
	struct stint_audit_report rep;
	size_t len;
	char *buf;

	write_log(f->log, LOG_RECORDS);
	buf = slurp(f->log, &len);
	spit(f->copy, buf, len - 10);
	expect_bad(f->copy, NULL, LOG_RECORDS,
		   "line 40: truncated record (tail cut)");
	assert_int_equal(verify(f->copy, NULL, &rep), 1);
	assert_int_equal(rep.records, LOG_RECORDS - 1);
	/* Only the "\n" missing is a cut too. */
	spit(f->copy, buf, len - 1);
	expect_bad(f->copy, NULL, LOG_RECORDS, "truncated record");
	free(buf);
}

/* Removing whole lines from the end leaves a valid chain: only stintd's
 * head (the anchor) can tell. */
static void
test_verify_tail_removal_needs_anchor(void **state)
{
	struct fixture *f = *state;
	struct stint_audit_anchor anchor = {.set = true};
	size_t len, starts[LOG_RECORDS + 2];
	struct stint_audit_report rep;
	struct stint_audit *a;
	char *buf;

	write_log(f->log, LOG_RECORDS);
	a = open_log(f->log, STINT_SYNC_NONE);
	stint_audit_head(a, &anchor.seq, anchor.hash);
	stint_audit_close(a);
	assert_int_equal(anchor.seq, LOG_RECORDS);
	assert_int_equal(verify(f->log, &anchor, &rep), 0);
	assert_int_equal(rep.records, LOG_RECORDS);

	buf = slurp(f->log, &len);
	line_starts(buf, len, starts, LOG_RECORDS + 2);
	spit(f->copy, buf, starts[LOG_RECORDS]);

	assert_int_equal(verify(f->copy, NULL, &rep), 0);
	assert_int_equal(rep.records, LOG_RECORDS - 1);
	expect_bad(f->copy, &anchor, LOG_RECORDS,
		   "log ends at seq 39 but stintd's head is seq 40 (records "
		   "removed from the tail)");

	/* The last record replaced by another valid one: the chain holds,
	 * the anchor's hash does not. */
	write_log(f->copy, 1);
	assert_int_equal(verify(f->copy, NULL, &rep), 0);
	assert_int_equal(rep.records, LOG_RECORDS);
	expect_bad(f->copy, &anchor, LOG_RECORDS, "log rewritten");

	/* Records after the anchor are fine: stintd kept writing. */
	write_log(f->log, 2);
	assert_int_equal(verify(f->log, &anchor, &rep), 0);
	assert_int_equal(rep.records, LOG_RECORDS + 2);
	free(buf);
}

static void
test_verify_empty_and_garbage(void **state)
{
	struct fixture *f = *state;
	struct stint_audit_anchor anchor = {.set = true, .seq = 3};
	struct stint_audit_report rep;

	spit(f->copy, "", 0);
	assert_int_equal(verify(f->copy, NULL, &rep), 0);
	assert_int_equal(rep.records, 0);
	expect_bad(f->copy, &anchor, 1, "log ends at seq 0");

	spit(f->copy, "{\"seq\":1}\n", 10);
	expect_bad(f->copy, NULL, 1, "not a Stint audit record");

	assert_int_equal(verify("/nonexistent/audit.log", NULL, &rep), -1);
	assert_non_null(strstr(rep.reason, "No such file"));
}

/* A line over the 1 MiB bound is a bad line, not a 1 GiB allocation. */
static void
test_verify_bounds_line_length(void **state)
{
	struct fixture *f = *state;
	size_t n = 2 * 1024 * 1024;
	char *big = malloc(n);

	assert_non_null(big);
	memset(big, 'x', n);
	big[n - 1] = '\n';
	spit(f->copy, big, n);
	expect_bad(f->copy, NULL, 1, "longer than 1 MiB");
	free(big);
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
		cmocka_unit_test_setup_teardown(
			test_verify_detects_changed_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_verify_detects_rehashed_line, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_verify_detects_deleted_line, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_verify_detects_swapped_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_detects_cut_tail,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_verify_tail_removal_needs_anchor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_empty_and_garbage,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_bounds_line_length,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
