/*
 * The shared helpers in common/: PKCS#11 names (p11names.c), the
 * mechanism and hash table and the PSS rule (mechanism.c), byte buffers
 * (bytes.c), the monotonic clock (clock.c), file reads and directories
 * (fileio.c), name/id validators (ident.c) and cgroup v2 reading (cgroup.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/bytes.h"
#include "common/cgroup.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "common/ident.h"
#include "common/mechanism.h"
#include "common/p11names.h"

static void
test_ckr_names(void **state)
{
	(void)state;
	assert_string_equal(stint_ckr_name(CKR_OK), "CKR_OK");
	assert_string_equal(stint_ckr_name(CKR_MECHANISM_PARAM_INVALID),
			    "CKR_MECHANISM_PARAM_INVALID");
	assert_string_equal(stint_ckr_name(CKR_PIN_LOCKED), "CKR_PIN_LOCKED");
	assert_null(stint_ckr_name(CKR_VENDOR_DEFINED | 7));
}

static void
test_ckm_names(void **state)
{
	size_t n;
	const struct stint_mech *all = stint_mech_all(&n);

	(void)state;
	for (size_t i = 0; i < n; i++)
		assert_string_equal(stint_ckm_name(all[i].mech), all[i].name);
	assert_string_equal(stint_ckm_name(CKM_SHA224), "CKM_SHA224");
	assert_null(stint_ckm_name(CKM_MD5));
}

static void
test_hash_table(void **state)
{
	const struct stint_hash *h;

	(void)state;
	assert_int_equal(stint_hash_len(CKM_SHA_1), 20);
	assert_int_equal(stint_hash_len(CKM_SHA224), 28);
	assert_int_equal(stint_hash_len(CKM_SHA256), 32);
	assert_int_equal(stint_hash_len(CKM_SHA512), 64);
	assert_int_equal(stint_hash_len(CKM_MD5), 0);
	h = stint_hash_find(CKM_SHA384);
	assert_non_null(h);
	assert_int_equal(h->mgf, CKG_MGF1_SHA384);
	assert_string_equal(h->md_name, "SHA384");
	assert_true(h->pss);
	assert_false(stint_hash_find(CKM_SHA_1)->pss);
	assert_false(stint_hash_find(CKM_SHA224)->pss);
}

/* The PSS rule stintd and the module share: every case, as a table. */
static void
test_pss_rule(void **state)
{
	const struct stint_mech *raw = stint_mech_find(CKM_RSA_PKCS_PSS);
	const struct stint_mech *s256 =
		stint_mech_find(CKM_SHA256_RSA_PKCS_PSS);
	const struct stint_mech *ec = stint_mech_find(CKM_ECDSA);
	static const struct {
		CK_MECHANISM_TYPE hash;
		CK_RSA_PKCS_MGF_TYPE mgf;
		uint64_t salt;
		bool raw_ok, s256_ok;
	} cases[] = {
		{CKM_SHA256, CKG_MGF1_SHA256, 32, true, true},
		{CKM_SHA384, CKG_MGF1_SHA384, 48, true, false},
		{CKM_SHA512, CKG_MGF1_SHA512, 64, true, false},
		{CKM_SHA256, CKG_MGF1_SHA256, 0, true, true},
		{CKM_SHA256, CKG_MGF1_SHA256, 65, false, false},
		{CKM_SHA256, CKG_MGF1_SHA1, 32, false, false},
		{CKM_SHA256, CKG_MGF1_SHA224, 32, false, false},
		{CKM_SHA256, CKG_MGF1_SHA512, 32, false, false},
		{CKM_SHA_1, CKG_MGF1_SHA1, 20, false, false},
		{CKM_SHA224, CKG_MGF1_SHA224, 28, false, false},
		{CKM_MD5, CKG_MGF1_SHA256, 16, false, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *r = stint_pss_params_check(
			raw, cases[i].hash, cases[i].mgf, cases[i].salt);
		const char *s = stint_pss_params_check(
			s256, cases[i].hash, cases[i].mgf, cases[i].salt);

		if ((r == NULL) != cases[i].raw_ok ||
		    (s == NULL) != cases[i].s256_ok)
			fail_msg("case %zu: raw %s, sha256 %s", i, r ? r : "ok",
				 s ? s : "ok");
	}
	assert_non_null(
		stint_pss_params_check(ec, CKM_SHA256, CKG_MGF1_SHA256, 32));
	assert_non_null(
		stint_pss_params_check(NULL, CKM_SHA256, CKG_MGF1_SHA256, 32));
}

static void
test_bytes(void **state)
{
	struct stint_bytes a, b;

	(void)state;
	assert_int_equal(stint_bytes_copy(&a, "abc", 3), 0);
	assert_int_equal(a.len, 3);
	assert_memory_equal(a.ptr, "abc", 3);
	assert_int_equal(stint_bytes_dup(&b, &a), 0);
	assert_ptr_not_equal(a.ptr, b.ptr);
	assert_memory_equal(b.ptr, "abc", 3);
	stint_bytes_wipe_clear(&a);
	assert_null(a.ptr);
	assert_int_equal(a.len, 0);
	stint_bytes_clear(&b);
	assert_int_equal(stint_bytes_copy(&a, NULL, 0), 0);
	assert_null(a.ptr);
	assert_int_equal(a.len, 0);
	stint_bytes_wipe_clear(NULL);
}

static void
test_clock(void **state)
{
	int64_t a, b;

	(void)state;
	a = stint_mono_ms();
	usleep(20 * 1000);
	b = stint_mono_ms();
	assert_true(a > 0);
	assert_true(b >= a + 10); /* a lower bound only: the box is noisy */
	printf("20 ms sleep measured %lld ms\n", (long long)(b - a));
}

static void
test_file_read(void **state)
{
	char dir[] = "/tmp/stint-test-common.XXXXXX", path[128], err[256];
	char *buf;
	size_t len;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("hello\n", f);
	fclose(f);
	assert_int_equal(
		stint_file_read(path, 100, &buf, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 6);
	assert_string_equal(buf, "hello\n");
	free(buf);
	/* too large */
	assert_int_equal(stint_file_read(path, 5, &buf, &len, err, sizeof(err)),
			 -1);
	assert_null(buf);
	assert_non_null(strstr(err, "larger than 5 bytes"));
	/* not a regular file */
	assert_int_equal(
		stint_file_read(dir, 100, &buf, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	/* missing */
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(
		stint_file_read(path, 100, &buf, &len, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "cannot read"));
	snprintf(path, sizeof(path), "%s/f", dir);
	unlink(path);
	rmdir(dir);
}

/* Standard input as the reader sees it: a pipe holding text. */
static int
stdin_from(const char *text, size_t n)
{
	int p[2], saved = dup(STDIN_FILENO);

	assert_true(saved >= 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], text, n), (ssize_t)n);
	close(p[1]);
	assert_int_equal(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
	close(p[0]);
	return saved;
}

static void
stdin_restore(int saved)
{
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
}

/* The CLI's reader: "-" is standard input, read to its end (longer than
 * one read's buffer), bounded by max; other paths as stint_file_read. */
static void
test_file_read_arg(void **state)
{
	static char big[10000];
	char err[256], *buf;
	size_t len;
	int saved;

	(void)state;
	memset(big, 'x', sizeof(big));
	saved = stdin_from(big, sizeof(big));
	assert_int_equal(
		stint_file_read_arg("-", 20000, &buf, &len, err, sizeof(err)),
		0);
	stdin_restore(saved);
	assert_int_equal(len, sizeof(big));
	assert_int_equal(buf[len], '\0');
	assert_memory_equal(buf, big, sizeof(big));
	free(buf);
	saved = stdin_from(big, sizeof(big));
	assert_int_equal(
		stint_file_read_arg("-", 9999, &buf, &len, err, sizeof(err)),
		-1);
	stdin_restore(saved);
	assert_null(buf);
	assert_non_null(strstr(err, "larger than 9999 bytes"));
	assert_int_equal(stint_file_read_arg("/nonexistent/f", 100, &buf, &len,
					     err, sizeof(err)),
			 1);
	assert_int_equal(
		stint_file_read_arg("/tmp", 100, &buf, &len, err, sizeof(err)),
		-1);
	assert_non_null(strstr(err, "not a regular file"));
}

static void
test_dir_make(void **state)
{
	char dir[] = "/tmp/stint-test-common.XXXXXX", path[128], err[256];
	struct stat st;
	mode_t old = umask(077);
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/d", dir);
	assert_int_equal(stint_dir_make(path, 0755, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0755); /* despite umask 077 */
	/* exists: left as it is */
	assert_int_equal(chmod(path, 0700), 0);
	assert_int_equal(stint_dir_make(path, 0755, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	rmdir(path);
	/* a file in its place */
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(stint_dir_make(path, 0755, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a directory"));
	unlink(path);
	/* parent missing */
	snprintf(path, sizeof(path), "%s/no/d", dir);
	assert_int_equal(stint_dir_make(path, 0755, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot create"));
	rmdir(dir);
	umask(old);
}

static void
test_ident(void **state)
{
	char long_name[STINT_NAME_MAX + 2];

	(void)state;
	assert_true(stint_ident_chars_ok(""));
	assert_true(stint_ident_chars_ok("a.B_c-9"));
	assert_false(stint_ident_chars_ok("a/b"));
	assert_false(stint_ident_chars_ok("a b"));
	assert_false(stint_ident_chars_ok("\xc3\xa9"));
	assert_true(stint_name_ok("agent-1"));
	assert_false(stint_name_ok(""));
	memset(long_name, 'a', sizeof(long_name));
	long_name[STINT_NAME_MAX] = '\0';
	assert_true(stint_name_ok(long_name));
	long_name[STINT_NAME_MAX] = 'a';
	long_name[STINT_NAME_MAX + 1] = '\0';
	assert_false(stint_name_ok(long_name));
	assert_true(stint_task_id_ok("t-0123456789abcdef0123456789abcdef"));
	assert_false(stint_task_id_ok("t-../x"));
	assert_true(stint_ident_ok("abc", 3));
	assert_false(stint_ident_ok("abcd", 3));
}

static void
test_cgroup(void **state)
{
	char cg[256], unit[64], fs[4096], self[256];

	(void)state;
	assert_int_equal(
		stint_cgroup_parse("12:pids:/x\n0::/a/b c\n", cg, sizeof(cg)),
		0);
	assert_string_equal(cg, "/a/b c");
	assert_int_equal(stint_cgroup_parse("1:cpu:/\n", cg, sizeof(cg)), 1);
	assert_int_equal(stint_cgroup_parse("0::\n", cg, sizeof(cg)), -1);
	assert_int_equal(stint_cgroup_parse("0::/long", cg, 4), -1);

	assert_int_equal(stint_cgroup_unit("/system.slice/billing.service/w",
					   unit, sizeof(unit)),
			 0);
	assert_string_equal(unit, "billing.service");
	assert_int_equal(stint_cgroup_unit("/user.slice/session-4.scope", unit,
					   sizeof(unit)),
			 0);
	assert_string_equal(unit, "session-4.scope");
	assert_int_equal(stint_cgroup_unit("/stint/run-1", unit, sizeof(unit)),
			 1);
	assert_int_equal(stint_cgroup_unit("/", unit, sizeof(unit)), 1);

	assert_true(stint_cgroup_within("/a/b", "/a"));
	assert_true(stint_cgroup_within("/a", "/a"));
	assert_true(stint_cgroup_within("/a/b", "/a/"));
	assert_true(stint_cgroup_within("/a", "/"));
	assert_false(stint_cgroup_within("/ab", "/a"));
	assert_false(stint_cgroup_within("/", "/a"));

	/* mountinfo of a systemd host (unified), a hybrid one (v1
	 * controllers, v2 at .../unified) and a v1-only one. */
	char pure[] = "24 30 0:22 / /sys rw - sysfs sysfs rw\n"
		      "29 24 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - "
		      "cgroup2 cgroup2 rw,nsdelegate\n";
	char hybrid[] = "29 24 0:26 / /sys/fs/cgroup ro shared:9 - tmpfs "
			"tmpfs ro,mode=755\n"
			"30 29 0:27 / /sys/fs/cgroup/unified rw shared:10 - "
			"cgroup2 cgroup2 rw,nsdelegate\n"
			"33 29 0:30 / /sys/fs/cgroup/pids rw shared:14 - "
			"cgroup cgroup rw,pids\n";
	char v1[] = "29 24 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n"
		    "33 29 0:30 / /sys/fs/cgroup/pids rw - cgroup cgroup "
		    "rw,pids\n";
	char esc[] = "30 29 0:27 / /mnt/cg\\040two rw - cgroup2 none rw\n";
	assert_int_equal(stint_cgroup_root_parse(pure, fs, sizeof(fs)), 0);
	assert_string_equal(fs, "/sys/fs/cgroup");
	assert_int_equal(stint_cgroup_root_parse(hybrid, fs, sizeof(fs)), 0);
	assert_string_equal(fs, "/sys/fs/cgroup/unified");
	assert_int_equal(stint_cgroup_root_parse(v1, fs, sizeof(fs)), 1);
	assert_int_equal(stint_cgroup_root_parse(esc, fs, sizeof(fs)), 0);
	assert_string_equal(fs, "/mnt/cg two");

	/* This machine: a cgroup v2 hierarchy (pure or hybrid) and a v2
	 * line for this process, or neither. */
	if (stint_cgroup_root(fs, sizeof(fs)) == 0) {
		assert_int_equal(fs[0], '/');
		assert_int_equal(
			stint_cgroup_of_pid(getpid(), self, sizeof(self)), 0);
		assert_int_equal(self[0], '/');
		assert_int_equal(stint_cgroup_fs_path(self, fs, sizeof(fs)), 0);
		assert_int_equal(access(fs, F_OK), 0);
	}
	assert_int_equal(stint_cgroup_of_pid(-1, self, sizeof(self)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ckr_names),
		cmocka_unit_test(test_ckm_names),
		cmocka_unit_test(test_hash_table),
		cmocka_unit_test(test_pss_rule),
		cmocka_unit_test(test_bytes),
		cmocka_unit_test(test_clock),
		cmocka_unit_test(test_file_read),
		cmocka_unit_test(test_file_read_arg),
		cmocka_unit_test(test_dir_make),
		cmocka_unit_test(test_ident),
		cmocka_unit_test(test_cgroup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
