/*
 * Audit log, the verifier: it names the first bad line for each kind of
 * tampering, needs stintd's anchor to see a cut tail, and checks signed
 * checkpoints, the NV counter they carry and a chain across rotated files.
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

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/audit.h"
#include "common/hex.h"
#include "tests/unit/audit_fixture.h"

#define LOG_RECORDS 40 /* in the logs the tamper tests alter */

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

/* --- anchor, checkpoints, rotation ----------------------------------------
 */

static bool sign_fails; /* nv: the next checkpoint signature fails */

static int
soft_sign(void *ctx, const uint8_t *msg, size_t len, uint8_t *sig,
	  size_t *sig_len, char *err, size_t errlen)
{
	EVP_MD_CTX *md;
	int ok;

	(void)err;
	(void)errlen;
	if (sign_fails) {
		sign_fails = false;
		return -1;
	}
	md = EVP_MD_CTX_new();
	ok = md != NULL &&
	     EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ctx) == 1 &&
	     EVP_DigestSign(md, sig, sig_len, msg, len) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

static void
set_soft_signer(struct stint_audit *a, EVP_PKEY *k)
{
	unsigned char *der = NULL;
	uint8_t id[32];
	int n = i2d_PUBKEY(k, &der);

	assert_true(n > 0);
	assert_int_equal(
		EVP_Digest(der, (size_t)n, id, NULL, EVP_sha256(), NULL), 1);
	OPENSSL_free(der);
	stint_audit_set_signer(a, soft_sign, k, id);
}

static void
test_checkpoints_and_rotation(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct stint_audit_verify_opts vo = {.ak = k};
	struct stint_audit_report rep;
	char old[PATH_MAX], err[512];
	const char *files[2];
	struct stint_audit *a;
	uint64_t seq, again;

	assert_non_null(k);
	assert_non_null(other);
	a = open_log(f->log, STINT_SYNC_BATCH);
	set_soft_signer(a, k);
	for (int i = 0; i < 5; i++)
		append_sign(a, i);
	assert_int_equal(stint_audit_checkpoint(a, false, err, sizeof(err)), 0);
	/* Idle: no second checkpoint of the same head. */
	stint_audit_head(a, &seq, NULL);
	assert_int_equal(stint_audit_checkpoint(a, false, err, sizeof(err)), 0);
	stint_audit_head(a, &again, NULL);
	assert_int_equal(again, seq);
	for (int i = 0; i < 3; i++)
		append_sign(a, i);
	assert_int_equal(
		stint_audit_rotate(a, old, sizeof(old), err, sizeof(err)), 0);
	for (int i = 0; i < 2; i++)
		append_sign(a, i);
	assert_int_equal(stint_audit_checkpoint(a, false, err, sizeof(err)), 0);
	stint_audit_close(a);

	files[0] = old;
	files[1] = f->log;
	assert_int_equal(stint_audit_verify_files(files, 2, &vo, &rep), 0);
	assert_int_equal(rep.checkpoints, 3);
	assert_true(rep.checkpoints_checked);
	assert_int_equal(rep.unpinned, 0);
	/* 5 + cp + 3 + cp | rotate + 2 + cp */
	assert_int_equal(rep.records, 14);
	assert_int_equal(rep.last_seq, 14);
	/* The new file alone continues an earlier one. */
	assert_int_equal(stint_audit_verify_files(files + 1, 1, &vo, &rep), 0);
	assert_int_equal(rep.first_seq, 11);
	/* Out of order, or another key: refused. */
	files[0] = f->log;
	files[1] = old;
	assert_int_equal(stint_audit_verify_files(files, 2, &vo, &rep), 1);
	assert_string_equal(rep.bad_file, old);
	files[0] = old;
	files[1] = f->log;
	vo.ak = other;
	assert_int_equal(stint_audit_verify_files(files, 2, &vo, &rep), 1);
	assert_non_null(strstr(rep.reason, "another key"));
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
}

/* nv: a stand-in for the TPM counter. */
static uint64_t fake_nv;

static int
fake_advance(void *ctx, uint64_t *value, char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	*value = ++fake_nv;
	return 0;
}

/* Each checkpoint advances the counter once and carries it; a checkpoint
 * that failed after advancing leaves its value to the next; the verifier
 * reports the values and refuses a counter that does not increase. */
static void
test_nv_checkpoints(void **state)
{
	struct fixture *f = *state;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct stint_audit_verify_opts vo = {.ak = k};
	struct stint_audit_report rep;
	const char *files[1] = {f->log};
	struct stint_audit_cp cp;
	struct stint_audit *a;
	char err[512];

	assert_non_null(k);
	fake_nv = 0;
	a = open_log(f->log, STINT_SYNC_NONE);
	set_soft_signer(a, k);
	assert_int_equal(
		stint_audit_last_nv_checkpoint(a, &cp, err, sizeof(err)), 1);
	stint_audit_set_counter(a, fake_advance, NULL, 0);
	append_sign(a, 0);
	append_sign(a, 0);
	assert_int_equal(stint_audit_checkpoint(a, false, err, sizeof(err)), 0);
	append_sign(a, 1);
	append_sign(a, 1);
	assert_int_equal(stint_audit_checkpoint(a, false, err, sizeof(err)), 0);
	assert_int_equal(fake_nv, 2);
	/* Advanced to 3, then the signature failed: 3 is used next. */
	append_sign(a, 2);
	append_sign(a, 2);
	sign_fails = true;
	assert_int_not_equal(stint_audit_checkpoint(a, false, err, sizeof(err)),
			     0);
	assert_int_equal(stint_audit_checkpoint(a, false, err, sizeof(err)), 0);
	assert_int_equal(fake_nv, 3);
	assert_int_equal(
		stint_audit_last_nv_checkpoint(a, &cp, err, sizeof(err)), 0);
	assert_true(cp.has_nv);
	assert_int_equal(cp.nv, 3);
	assert_true(stint_audit_cp_sig_ok(k, &cp));
	/* A value left by a crash before this start: taken as is. */
	stint_audit_set_counter(a, fake_advance, NULL, 7);
	append_sign(a, 3);
	append_sign(a, 3);
	assert_int_equal(stint_audit_checkpoint(a, false, err, sizeof(err)), 0);
	assert_int_equal(fake_nv, 3);
	stint_audit_close(a);
	assert_int_equal(stint_audit_verify_files(files, 1, &vo, &rep), 0);
	assert_int_equal(rep.nv_checkpoints, 4);
	assert_int_equal(rep.nv_first, 1);
	assert_int_equal(rep.nv_last, 7);

	/* A counter going back (a replayed older value): refused. */
	a = open_log(f->log, STINT_SYNC_NONE);
	set_soft_signer(a, k);
	stint_audit_set_counter(a, fake_advance, NULL, 5);
	append_sign(a, 4);
	append_sign(a, 4);
	assert_int_equal(stint_audit_checkpoint(a, false, err, sizeof(err)), 0);
	stint_audit_close(a);
	assert_int_equal(stint_audit_verify_files(files, 1, &vo, &rep), 1);
	assert_non_null(strstr(rep.reason, "not above"));
	EVP_PKEY_free(k);
}

static void
test_check_anchor(void **state)
{
	struct fixture *f = *state;
	uint8_t hash[32], bad[32];
	char err[512], old[PATH_MAX];
	struct stint_audit *a;
	uint64_t seq, off;

	a = open_log(f->log, STINT_SYNC_NONE);
	for (int i = 0; i < 5; i++)
		append_sign(a, i);
	stint_audit_head_at(a, &seq, hash, &off);
	for (int i = 0; i < 3; i++)
		append_sign(a, i);
	stint_audit_close(a);

	a = open_log(f->log, STINT_SYNC_NONE);
	/* The head recorded earlier is in the log (records after it too). */
	assert_int_equal(
		stint_audit_check_anchor(a, seq, hash, off, err, sizeof(err)),
		0);
	/* A head beyond the log's end: truncated. */
	assert_int_not_equal(stint_audit_check_anchor(a, seq + 10, hash, off,
						      err, sizeof(err)),
			     0);
	assert_non_null(strstr(err, "truncated"));
	/* Another hash at that seq: re-chained. */
	memcpy(bad, hash, 32);
	bad[0] ^= 1;
	assert_int_not_equal(
		stint_audit_check_anchor(a, seq, bad, off, err, sizeof(err)),
		0);
	assert_non_null(strstr(err, "re-chained"));
	/* After a rotation the old head is the new file's link. */
	stint_audit_head_at(a, &seq, hash, &off);
	assert_int_equal(
		stint_audit_rotate(a, old, sizeof(old), err, sizeof(err)), 0);
	assert_int_equal(
		stint_audit_check_anchor(a, seq, hash, off, err, sizeof(err)),
		0);
	stint_audit_close(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
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
		cmocka_unit_test_setup_teardown(test_nv_checkpoints, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_checkpoints_and_rotation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_anchor, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_verify_bounds_line_length,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
