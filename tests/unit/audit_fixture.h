/* The audit unit tests' fixture (audit_fixture.c), shared by test_audit
 * (the writer) and test_audit_verify (the verifier). setup/teardown are
 * cmocka fixtures: *state is a struct fixture with a fresh directory. */
#ifndef STINT_TESTS_UNIT_AUDIT_FIXTURE_H
#define STINT_TESTS_UNIT_AUDIT_FIXTURE_H

#include <limits.h>
#include <stddef.h>

#include "attest/audit.h"

struct fixture {
	char dir[256];
	char log[PATH_MAX];
	char copy[PATH_MAX];
};

int setup(void **state);
int teardown(void **state);
/* Opens and starts the log at path; fails the test on error. */
struct stint_audit *open_log(const char *path, enum stint_audit_sync sync);
/* Appends one sign-allowed record for task-<i>. */
void append_sign(struct stint_audit *a, int i);
/* Writes n records to path (continuing whatever is there). */
void write_log(const char *path, int n);
/* The whole file, NUL-terminated; its length in *len. */
char *slurp(const char *path, size_t *len);
/* Writes a file as stintd would keep it (0600). */
void spit(const char *path, const char *buf, size_t len);
int verify(const char *path, const struct stint_audit_anchor *anchor,
	   struct stint_audit_report *rep);

#endif
