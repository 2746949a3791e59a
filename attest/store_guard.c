/*
 * A missing or empty state.db must not silently become an empty policy:
 * stintd would start with no agents and no tasks, and its start-up sweep
 * would destroy the key of every live task. So a new store is created only
 * on a first start (nothing on the host shows an earlier one) or when the
 * operator asks for it with `stintd --init`.
 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "attest/store_guard.h"
#include "common/log.h"

/* 1: path exists with size > 0; 0: missing or empty; -1: cannot tell. */
static int
file_has_data(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	return st.st_size > 0 ? 1 : 0;
}

/* Task key blobs of the TPM backend: <state_dir>/tpm/t-<32 hex>.key. */
static size_t
tpm_blobs(const char *state_dir)
{
	char dir[PATH_MAX + 8];
	struct dirent *e;
	size_t n = 0, len;
	DIR *dp;

	snprintf(dir, sizeof(dir), "%s/tpm", state_dir);
	if ((dp = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(dp)) != NULL) {
		len = strlen(e->d_name);
		if (len > 4 && strcmp(e->d_name + len - 4, ".key") == 0 &&
		    stint_task_id_shaped(e->d_name, len - 4))
			n++;
	}
	closedir(dp);
	return n;
}

static void
add_reason(char *buf, size_t cap, const char *text)
{
	size_t off = strlen(buf);

	snprintf(buf + off, cap - off, "%s%s", off > 0 ? "; " : "", text);
}

/* What shows that a store existed: text in why, "" when nothing does. */
static int
earlier_use(const struct stint_config *cfg, struct stint_backend *backend,
	    char *why, size_t cap, char *err, size_t errlen)
{
	char path[PATH_MAX + 16], text[PATH_MAX + 128];
	size_t n = 0;
	int r;

	why[0] = '\0';
	if ((r = file_has_data(cfg->audit.path)) != 0) {
		snprintf(text, sizeof(text), "the audit log %s",
			 r > 0 ? "holds records" : "cannot be checked");
		add_reason(why, cap, text);
	}
	snprintf(path, sizeof(path), "%s/ca.pem", cfg->state_dir);
	if (file_has_data(path) != 0) {
		snprintf(text, sizeof(text), "ca.pem exists");
		add_reason(why, cap, text);
	}
	if (backend->ops->own_keys != NULL) {
		if (backend->ops->own_keys(backend, &n, err, errlen) != 0)
			return -1;
		if (n > 0) {
			snprintf(text, sizeof(text),
				 "token '%s' holds %zu task key objects",
				 cfg->backend.token, n);
			add_reason(why, cap, text);
		}
	}
	if ((n = tpm_blobs(cfg->state_dir)) > 0) {
		snprintf(text, sizeof(text), "%s/tpm holds %zu task key blobs",
			 cfg->state_dir, n);
		add_reason(why, cap, text);
	}
	return 0;
}

int
stint_store_guard(const struct stint_config *cfg, struct stint_backend *backend,
		  const char *db_path, bool init, bool *created, char *err,
		  size_t errlen)
{
	char why[2 * PATH_MAX + 512];
	int r;

	*created = false;
	if ((r = file_has_data(db_path)) < 0) {
		snprintf(err, errlen, "cannot stat %s: %s", db_path,
			 strerror(errno));
		return -1;
	}
	if (r > 0) {
		if (!init)
			return 0;
		snprintf(err, errlen,
			 "--init: %s already holds a store; stintd never "
			 "replaces one (move it away first if you really "
			 "want an empty store)",
			 db_path);
		return -1;
	}
	if (earlier_use(cfg, backend, why, sizeof(why), err, errlen) != 0)
		return -1;
	if (why[0] != '\0' && !init) {
		snprintf(err, errlen,
			 "%s is missing or empty but stintd has run here "
			 "before (%s): refusing to start with an empty store "
			 "(it would forget every agent and task and destroy "
			 "live tasks' keys). Restore it from a backup, or run "
			 "`stintd --init` once to start over with no agents "
			 "and no tasks",
			 db_path, why);
		return -1;
	}
	if (why[0] != '\0')
		log_warn("--init: creating an empty %s although stintd has "
			 "run here before (%s); keys of earlier tasks are kept "
			 "on this start and swept at the next",
			 db_path, why);
	else
		log_info("first start: creating %s", db_path);
	*created = true;
	return 0;
}
