/*
 * Audit log rotation: the log is moved aside (or found where logrotate put
 * it) and a new file starts with a record that continues the old chain.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "attest/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hex.h"
#include "common/log.h"

/* --- rotation -------------------------------------------------------------
 */

/* Moves the log at a->path aside when it is still ours, or finds the name
 * logrotate gave it; sets old (the file's path now). Lock held. */
static int
rotate_name(struct stint_audit *a, char *old, size_t cap, bool *ours, char *err,
	    size_t errlen)
{
	char link_path[64], when[32];
	struct stat mine, there;
	struct tm tm;
	time_t now = time(NULL);
	ssize_t n;

	if (fstat(a->fd, &mine) != 0) {
		audit_set_err(err, errlen, "fstat: %s", strerror(errno));
		return -1;
	}
	if (lstat(a->path, &there) == 0 && there.st_dev == mine.st_dev &&
	    there.st_ino == mine.st_ino) {
		gmtime_r(&now, &tm);
		strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
		for (int i = 0; i < 100; i++) {
			n = i == 0 ? snprintf(old, cap, "%s.%s", a->path, when)
				   : snprintf(old, cap, "%s.%s-%d", a->path,
					      when, i);
			if (n < 0 || (size_t)n >= cap) {
				audit_set_err(err, errlen, "path too long");
				return -1;
			}
			/* link + unlink: never replaces an older file. */
			if (link(a->path, old) == 0) {
				if (unlink(a->path) != 0) {
					audit_set_err(err, errlen,
						      "unlink %s: %s", a->path,
						      strerror(errno));
					unlink(old);
					return -1;
				}
				*ours = true;
				return 0;
			}
			if (errno != EEXIST) {
				audit_set_err(err, errlen, "link %s: %s", old,
					      strerror(errno));
				return -1;
			}
		}
		audit_set_err(err, errlen,
			      "too many rotated logs named %s.%s-*", a->path,
			      when);
		return -1;
	}
	/* Moved by someone else (logrotate renames, then sends SIGHUP). */
	snprintf(link_path, sizeof(link_path), "/proc/self/fd/%d", a->fd);
	n = readlink(link_path, old, cap - 1);
	if (n <= 0 || (size_t)n >= cap - 1) {
		audit_set_err(err, errlen, "cannot find the moved log's name");
		return -1;
	}
	old[n] = '\0';
	if (strstr(old, " (deleted)") != NULL) {
		audit_set_err(
			err, errlen,
			"the log was deleted instead of moved; keeping it "
			"open (restore it with a copy of /proc/%ld/fd/%d)",
			(long)getpid(), a->fd);
		return -1;
	}
	return 0;
}

/* Opens the new, empty log at a->path. */
static int
rotate_open(struct stint_audit *a, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		audit_set_err(err, errlen, "cannot open %s: %s", a->path,
			      strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 ||
	    !S_ISREG(st.st_mode) || st.st_size != 0) {
		audit_set_err(err, errlen,
			      "%s is locked, not a regular file or not empty: "
			      "remove it and rotate again",
			      a->path);
		close(fd);
		return -1;
	}
	return fd;
}

int
stint_audit_rotate(struct stint_audit *a, char *old, size_t cap, char *err,
		   size_t errlen)
{
	char hex[65], *detail = NULL, *base;
	bool wake = false, ours = false;
	off_t old_size, old_synced;
	int fd = -1, old_fd, r = -1;
	size_t dcap;

	pthread_mutex_lock(&a->lock);
	if (a->failed != 0 && audit_recover_locked(a) != 0) {
		audit_set_err(err, errlen,
			      "the log refuses records (%s) until it can be "
			      "written and synced again",
			      strerror(a->failed));
		goto out;
	}
	/* The old file ends with a signed checkpoint, so a copy of it is
	 * pinned by itself. */
	if (a->sign != NULL && a->checkpointed + 1 != a->seq - 1 &&
	    audit_checkpoint_locked(a, &wake, err, errlen) != 0) {
		/* Rotate anyway: the file is then pinned by the next file's
		 * checkpoints through the link, not by one of its own. */
		log_err("audit log: no checkpoint before rotation: %s", err);
		if (a->failed != 0)
			goto out;
	}
	if (rotate_name(a, old, cap, &ours, err, errlen) != 0)
		goto out;
	if ((fd = rotate_open(a, err, errlen)) < 0)
		goto out;
	base = strrchr(old, '/') != NULL ? strrchr(old, '/') + 1 : old;
	stint_hex_encode(a->prev, 32, hex);
	dcap = strlen(base) + 200;
	if ((detail = malloc(dcap)) == NULL) {
		audit_set_err(err, errlen, "out of memory");
		close(fd);
		unlink(a->path);
		goto out;
	}
	snprintf(detail, dcap, "continues %s: seq=%llu hash=%s", base,
		 (unsigned long long)(a->seq - 1), hex);

	pthread_rwlock_wrlock(&a->fd_lock);
	if (fdatasync(a->fd) != 0) {
		/* The old file's last records (its checkpoint among them) may
		 * not be on the disk: do not chain a new file onto them. Keep
		 * writing to the old one, which refuses records until
		 * audit_recover_locked has written them again. */
		int e = errno;

		pthread_rwlock_unlock(&a->fd_lock);
		log_err("audit log: fdatasync before rotation failed: %s; "
			"refusing further records",
			strerror(e));
		audit_mark_failed(a, e);
		audit_set_err(err, errlen, "cannot sync %s before rotating: %s",
			      old, strerror(e));
		close(fd);
		unlink(a->path);
		fd = -1;
		goto out;
	}
	old_fd = a->fd;
	old_size = a->size;
	old_synced = a->synced;
	a->fd = fd;
	a->size = 0;
	a->synced = 0;
	a->generation++;
	{
		struct stint_audit_event ev = {.event = "audit-rotate",
					       .decision = "allow",
					       .detail = detail};

		if (audit_append_locked(a, &ev, &wake) != 0) {
			/* Keep writing to the old file (now under its new
			 * name) rather than lose the link. */
			audit_set_err(err, errlen, "cannot write to %s: %s",
				      a->path, strerror(errno));
			a->fd = old_fd;
			a->size = old_size;
			a->synced = old_synced;
			pthread_rwlock_unlock(&a->fd_lock);
			close(fd);
			unlink(a->path);
			fd = -1;
			goto out;
		}
	}
	close(old_fd);
	pthread_rwlock_unlock(&a->fd_lock);
	/* nv: the new file carries the TPM counter from its start, so
	 * stintd finds it at start in the current file alone. */
	if (a->advance != NULL && a->sign != NULL &&
	    audit_checkpoint_locked(a, &wake, err, errlen) != 0)
		log_err("audit log: no checkpoint after rotation: %s", err);
	r = 0;
out:
	free(detail);
	if (r == 0) {
		if (audit_sync_unlock(a) == 0)
			return 0;
		audit_set_err(err, errlen, "cannot sync %s: %s", a->path,
			      strerror(errno));
		return -1;
	}
	/* Our own rename is undone: the log stays where it was. */
	if (ours && link(old, a->path) == 0)
		unlink(old);
	pthread_mutex_unlock(&a->lock);
	return r;
}
