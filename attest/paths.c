/*
 * The paths stintd trusts, checked once at start the way sshd checks
 * authorized_keys (secure_path): the path and every directory above it up
 * to "/" must be owned by stintd's effective uid or by root, and must not
 * be writable by group or others. Otherwise another uid could replace
 * audit.log with its own file, delete state.db, or swap the PIN file.
 *
 * One departure from sshd: a parent directory that is owned by root and
 * has the sticky bit (/tmp, mode 1777) may be writable by others. In a
 * sticky directory only an entry's owner, the directory's owner and root
 * may rename or remove the entry, so an entry owned by stintd's uid or root
 * cannot be swapped by another uid. The path itself is never allowed to be
 * group- or world-writable, sticky or not.
 *
 * Both the path as written (components lstat'ed, so a symlink is judged by
 * the directory that holds it) and the path with symlinks resolved are
 * checked.
 */

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "attest/paths.h"

static int
check_entry(const char *p, const struct stat *st, const char *what,
	    const char *path, uid_t uid, bool target, char *err, size_t errlen)
{
	const char *which = target ? "" : " (a directory above it)";

	if (st->st_uid != 0 && st->st_uid != uid) {
		snprintf(err, errlen,
			 "%s %s: %s%s is owned by uid %u, not by stintd's uid "
			 "%u or root: chown %u %s (or move it)",
			 what, path, p, which, (unsigned)st->st_uid,
			 (unsigned)uid, (unsigned)uid, p);
		return -1;
	}
	if (S_ISLNK(st->st_mode) || (st->st_mode & 022) == 0)
		return 0;
	if (!target && S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX) &&
	    st->st_uid == 0)
		return 0; /* /tmp-like: others cannot swap our entry */
	snprintf(err, errlen,
		 "%s %s: %s%s is group- or world-writable (mode %04o): "
		 "chmod go-w %s",
		 what, path, p, which, (unsigned)(st->st_mode & 07777), p);
	return -1;
}

/* Checks path and its parents; follow: stat() rather than lstat(). */
static int
check_chain(const char *path, const char *what, const char *shown, uid_t uid,
	    bool missing_ok, bool follow, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	struct stat st;
	bool target = true;
	size_t n;
	char *slash;
	int r;

	n = strlen(path);
	if (n == 0 || n >= sizeof(buf) || path[0] != '/') {
		snprintf(err, errlen, "%s %s: not an absolute path", what,
			 shown);
		return -1;
	}
	memcpy(buf, path, n + 1);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	for (;;) {
		r = follow ? stat(buf, &st) : lstat(buf, &st);
		if (r != 0) {
			if (!(errno == ENOENT && target && missing_ok)) {
				snprintf(err, errlen,
					 "%s %s: cannot stat %s: %s", what,
					 shown, buf, strerror(errno));
				return -1;
			}
		} else if (check_entry(buf, &st, what, shown, uid, target, err,
				       errlen) != 0) {
			return -1;
		}
		if (strcmp(buf, "/") == 0)
			return 0;
		slash = strrchr(buf, '/');
		if (slash == buf)
			buf[1] = '\0';
		else
			*slash = '\0';
		target = false;
	}
}

int
stint_path_check(const char *path, const char *what, uid_t uid, int missing_ok,
		 char *err, size_t errlen)
{
	char real[PATH_MAX];

	if (check_chain(path, what, path, uid, missing_ok != 0, false, err,
			errlen) != 0)
		return -1;
	if (realpath(path, real) == NULL) {
		if (errno == ENOENT && missing_ok)
			return 0;
		snprintf(err, errlen, "%s %s: cannot resolve it: %s", what,
			 path, strerror(errno));
		return -1;
	}
	if (strcmp(real, path) == 0)
		return 0;
	return check_chain(real, what, path, uid, false, true, err, errlen);
}

/* The value of directories.tokendir in a SoftHSM2 configuration file, or
 * "" when the file cannot be read or does not set it. */
static void
softhsm_tokendir(char *out, size_t cap)
{
	const char *conf = getenv("SOFTHSM2_CONF");
	char line[PATH_MAX + 64], *p, *end;
	FILE *f;

	out[0] = '\0';
	if (conf == NULL || conf[0] == '\0')
		conf = "/etc/softhsm/softhsm2.conf";
	if ((f = fopen(conf, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		p = line + strspn(line, " \t");
		if (strncmp(p, "directories.tokendir", 20) != 0)
			continue;
		p += 20;
		p += strspn(p, " \t");
		if (*p != '=')
			continue;
		p++;
		p += strspn(p, " \t");
		end = p + strcspn(p, "\r\n");
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - p) < cap) {
			memcpy(out, p, (size_t)(end - p));
			out[end - p] = '\0';
		}
	}
	fclose(f);
}

static int
dir_of(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL)
		return -1;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= cap)
		return -1;
	memcpy(out, path, n);
	out[n] = '\0';
	return 0;
}

int
stint_paths_check(const struct stint_config *cfg, uid_t uid, char *err,
		  size_t errlen)
{
	char dir[PATH_MAX], tokendir[PATH_MAX];

	if (stint_path_check(cfg->state_dir, "state_dir", uid, 0, err,
			     errlen) != 0)
		return -1;
	if (dir_of(cfg->audit.path, dir, sizeof(dir)) != 0) {
		snprintf(err, errlen, "audit path %s has no directory",
			 cfg->audit.path);
		return -1;
	}
	if (stint_path_check(dir, "audit log directory", uid, 0, err, errlen) !=
		    0 ||
	    stint_path_check(cfg->audit.path, "audit log", uid, 1, err,
			     errlen) != 0)
		return -1;
	if (strcmp(cfg->backend.type, "pkcs11") != 0)
		return 0;
	if (stint_path_check(cfg->backend.pin_file, "PIN file", uid, 0, err,
			     errlen) != 0)
		return -1;
	if (strstr(cfg->backend.module, "softhsm") == NULL)
		return 0;
	softhsm_tokendir(tokendir, sizeof(tokendir));
	if (tokendir[0] != '/')
		return 0;
	return stint_path_check(tokendir, "SoftHSM2 token directory", uid, 0,
				err, errlen);
}
