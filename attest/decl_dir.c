/* Declaration directories: the files of agents.d and operators.d
 * (decl_dir.h). */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/decl_dir.h"
#include "common/fileio.h"
#include "stint/wire.h"

/* As sshd's StrictModes: whoever may write a declaration may make an
 * agent, so the file and its directory are owned by root or stintd's user
 * and writable by no one else. */
int
stint_decl_path_safe(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen,
			 "%s: owned by uid %u, not by root or stintd's user "
			 "(uid %u): chown it",
			 path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		snprintf(err, errlen,
			 "%s: mode %04o lets others write it (they could "
			 "declare agents): chmod go-w %s",
			 path, (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

int
stint_decl_key(struct stint_ini *ini, const char *kind, bool cur,
	       const char *const *keys, int n, int *key_line, const char *use,
	       const char *name, const char *value)
{
	int k;

	if (!cur) {
		if (ini->section_known)
			stint_ini_error(ini,
					"key '%s' outside any section: put it "
					"under [%s NAME]",
					name, kind);
		return -1;
	}
	for (k = 0; k < n && strcmp(keys[k], name) != 0; k++)
		;
	if (k == n) {
		stint_ini_error(ini, "unknown key '%s' in [%s]: use %s", name,
				ini->section, use);
		return -1;
	}
	if (key_line[k] != 0) {
		stint_ini_error(ini,
				"duplicate key '%s' in [%s] (first set on "
				"line %d): keep one",
				name, ini->section, key_line[k]);
		return -1;
	}
	key_line[k] = ini->lineno;
	if (value == NULL || value[0] == '\0') {
		stint_ini_error(ini, "key '%s' in [%s] needs a value", name,
				ini->section);
		return -1;
	}
	return k;
}

static int
load_file(const struct stint_decl_dir *dd, const char *path, char *err,
	  size_t errlen)
{
	struct stint_ini *ini = dd->ini;
	char *text = NULL;
	size_t len = 0;
	int r;

	if (strlen(path) > STINT_SOURCE_MAX) {
		snprintf(err, errlen, "%s: path too long (at most %d bytes)",
			 path, STINT_SOURCE_MAX);
		return -1;
	}
	if (stint_decl_path_safe(path, err, errlen) != 0 ||
	    stint_file_read(path, dd->file_max, &text, &len, err, errlen) != 0)
		return -1;
	memset(ini, 0, sizeof(*ini));
	ini->path = path;
	ini->section_ok = dd->section_ok;
	dd->file_start(ini);
	r = stint_ini_parse(ini, text, len, dd->handler, ini, err, errlen);
	if (r == 0) {
		dd->file_end(ini);
		r = stint_ini_failed(ini, err, errlen);
	}
	free(text);
	return r;
}

static int
conf_name(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return e->d_name[0] != '.' && n > 5 &&
	       strcmp(e->d_name + n - 5, ".conf") == 0;
}

int
stint_decl_dir_load(const struct stint_decl_dir *dd, char *err, size_t errlen)
{
	struct dirent **list = NULL;
	char path[PATH_MAX];
	int n, i, r = 0;

	n = scandir(dd->dir, &list, conf_name, alphasort);
	if (n < 0 && errno == ENOENT)
		return 0;
	if (n < 0) {
		snprintf(err, errlen, "%s %s: %s", dd->key, dd->dir,
			 strerror(errno));
		return -1;
	}
	if (stint_decl_path_safe(dd->dir, err, errlen) != 0)
		r = -1;
	for (i = 0; i < n; i++) {
		if (r == 0 && snprintf(path, sizeof(path), "%s/%s", dd->dir,
				       list[i]->d_name) >= (int)sizeof(path)) {
			snprintf(err, errlen, "%s: path too long",
				 list[i]->d_name);
			r = -1;
		}
		if (r == 0)
			r = load_file(dd, path, err, errlen);
		free(list[i]);
	}
	free(list);
	return r;
}
