/*
 * Test-only stintd (tests/integration/stintd-fault), linked with
 * -Wl,--wrap=fdatasync: every fdatasync in stintd's own code goes through
 * this function (SQLite's, inside libsqlite3, does not). It fails, with
 * ENOSPC, the fdatasync of one file while a switch file exists, so a test
 * decides exactly which sync fails instead of waiting for a real disk's
 * writeback to fail (tests/integration/audit-sync-fault.sh).
 *
 * STINT_TEST_SYNC_FAULT names the switch file. While it exists, its first
 * line names the file whose fdatasync fails (compared with the descriptor's
 * /proc/self/fd link); an empty first line fails every fdatasync. Without
 * the variable, or while the switch file is absent, fdatasync is the real
 * one. The installed stintd never reads the variable.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);

/* True when the switch file exists and names fd's file (or names none). */
static bool
fault_armed(const char *sw, int fd)
{
	char want[PATH_MAX], link[64], have[PATH_MAX];
	FILE *fp = fopen(sw, "r");
	ssize_t n;

	if (fp == NULL)
		return false;
	if (fgets(want, sizeof(want), fp) == NULL)
		want[0] = '\0';
	fclose(fp);
	want[strcspn(want, "\n")] = '\0';
	if (want[0] == '\0')
		return true;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, have, sizeof(have) - 1);
	if (n < 0)
		return false;
	have[n] = '\0';
	return strcmp(have, want) == 0;
}

int
__wrap_fdatasync(int fd)
{
	static unsigned long injected;
	const char *sw = getenv("STINT_TEST_SYNC_FAULT");

	if (sw != NULL && sw[0] != '\0' && fault_armed(sw, fd)) {
		log_warn("STINT_TEST_SYNC_FAULT: fdatasync(fd %d) fails with "
			 "ENOSPC (injected fault %lu)",
			 fd,
			 __atomic_add_fetch(&injected, 1, __ATOMIC_RELAXED));
		errno = ENOSPC;
		return -1;
	}
	return __real_fdatasync(fd);
}
