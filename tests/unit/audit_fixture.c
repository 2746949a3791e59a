/* The audit unit tests' fixture (audit_fixture.h). */
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
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/audit_fixture.h"

int
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

int
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

struct stint_audit *
open_log(const char *path, enum stint_audit_sync sync)
{
	struct stint_audit *a = NULL;
	char err[512];

	if (stint_audit_open(path, sync, &a, err, sizeof(err)) != 0)
		fail_msg("stint_audit_open: %s", err);
	assert_int_equal(stint_audit_start(a), 0);
	return a;
}

void
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

void
write_log(const char *path, int n)
{
	struct stint_audit *a = open_log(path, STINT_SYNC_NONE);

	for (int i = 0; i < n; i++)
		append_sign(a, i);
	stint_audit_close(a);
}

char *
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

void
spit(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

int
verify(const char *path, const struct stint_audit_anchor *anchor,
       struct stint_audit_report *rep)
{
	return stint_audit_verify_file(path, anchor, rep);
}
