/* cgroup v2 discovery and reading (cgroup.h). */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cgroup.h"
#include "common/fileio.h"

#define PROC_FILE_MAX (64 * 1024)

static pthread_once_t root_once = PTHREAD_ONCE_INIT;
static char root_path[4096];
static int root_result = -1;

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void
unescape(char *s)
{
	char *w = s;

	for (; *s != '\0'; s++, w++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				    (s[3] - '0'));
			s += 3;
		} else {
			*w = *s;
		}
	}
	*w = '\0';
}

/* One mountinfo line: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] -
 * FSTYPE SOURCE SUPER". 1 and the mount point when it is cgroup2. */
static int
mount_line(char *line, char *mnt, size_t cap)
{
	char *sep = strstr(line, " - "), *save = NULL, *tok;
	int field = 0;

	if (sep == NULL || strncmp(sep + 3, "cgroup2 ", 8) != 0)
		return 0;
	*sep = '\0';
	for (tok = strtok_r(line, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save))
		if (++field == 5)
			break;
	if (tok == NULL || strlen(tok) >= cap)
		return 0;
	unescape(tok);
	snprintf(mnt, cap, "%s", tok);
	return 1;
}

int
stint_cgroup_root_parse(char *mountinfo, char *buf, size_t cap)
{
	char *line, *save = NULL;

	for (line = strtok_r(mountinfo, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		if (mount_line(line, buf, cap))
			return 0;
	return 1;
}

static void
root_find(void)
{
	char *text = NULL, err[256];
	size_t len;

	if (stint_file_read("/proc/self/mountinfo", PROC_FILE_MAX * 16, &text,
			    &len, err, sizeof(err)) != 0)
		return; /* root_result stays -1 */
	root_result =
		stint_cgroup_root_parse(text, root_path, sizeof(root_path));
	free(text);
}

int
stint_cgroup_root(char *buf, size_t cap)
{
	pthread_once(&root_once, root_find);
	if (root_result != 0)
		return root_result;
	if ((size_t)snprintf(buf, cap, "%s", root_path) >= cap)
		return -1;
	return 0;
}

int
stint_cgroup_parse(const char *text, char *buf, size_t cap)
{
	const char *p = text, *end;
	size_t n;

	while (p != NULL && *p != '\0') {
		end = strchr(p, '\n');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n >= 3 && strncmp(p, "0::", 3) == 0) {
			if (n - 3 >= cap || n == 3)
				return -1;
			memcpy(buf, p + 3, n - 3);
			buf[n - 3] = '\0';
			return 0;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return 1;
}

int
stint_cgroup_of_pid(pid_t pid, char *buf, size_t cap)
{
	char path[64], *text = NULL, err[256];
	size_t len;
	int r;

	snprintf(path, sizeof(path), "/proc/%ld/cgroup", (long)pid);
	if (stint_file_read(path, PROC_FILE_MAX, &text, &len, err,
			    sizeof(err)) != 0)
		return -1;
	r = stint_cgroup_parse(text, buf, cap);
	free(text);
	return r;
}

static bool
ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n > k && memcmp(s + n - k, suffix, k) == 0;
}

int
stint_cgroup_unit(const char *cg, char *unit, size_t cap)
{
	const char *end = cg + strlen(cg), *start;
	size_t n;

	while (end > cg) {
		start = end;
		while (start > cg && start[-1] != '/')
			start--;
		n = (size_t)(end - start);
		if ((ends_with(start, n, ".service") ||
		     ends_with(start, n, ".scope")) &&
		    n < cap) {
			memcpy(unit, start, n);
			unit[n] = '\0';
			return 0;
		}
		end = start > cg ? start - 1 : cg;
	}
	return 1;
}

bool
stint_cgroup_within(const char *cg, const char *ancestor)
{
	size_t n = strlen(ancestor);

	while (n > 0 && ancestor[n - 1] == '/')
		n--; /* "/" and "/a/" */
	if (n == 0)
		return cg[0] == '/';
	return strncmp(cg, ancestor, n) == 0 && (cg[n] == '\0' || cg[n] == '/');
}

int
stint_cgroup_fs_path(const char *cg, char *buf, size_t cap)
{
	char root[4096];
	int r;

	if ((r = stint_cgroup_root(root, sizeof(root))) != 0)
		return r;
	if ((size_t)snprintf(buf, cap, "%s%s", root,
			     strcmp(cg, "/") == 0 ? "" : cg) >= cap)
		return -1;
	return 0;
}
