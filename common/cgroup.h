/*
 * cgroup v2, read-only: where the unified hierarchy is mounted, which
 * cgroup a process is in, the systemd unit a cgroup belongs to, and
 * whether one cgroup lies within another. Paths named "cgroup" here are
 * as /proc/PID/cgroup's "0::" line gives them ("/stint/run-1"), relative
 * to the hierarchy's root; stint_cgroup_fs_path() turns them into
 * filesystem paths.
 */
#ifndef STINT_COMMON_CGROUP_H
#define STINT_COMMON_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The mount point of the cgroup v2 hierarchy, from /proc/self/mountinfo:
 * /sys/fs/cgroup on a systemd host, /sys/fs/cgroup/unified on a hybrid
 * one. 0 found; 1 no cgroup v2 mounted; -1 mountinfo unreadable. Looked
 * up once per process (the first answer is kept). */
int stint_cgroup_root(char *buf, size_t cap);

/* The parsing half of stint_cgroup_root(), on the text of a mountinfo
 * file (modified in place): 0 and the first cgroup2 mount point in buf;
 * 1 none. */
int stint_cgroup_root_parse(char *mountinfo, char *buf, size_t cap);

/* The v2 cgroup of pid from /proc/PID/cgroup. 0 found; 1 the process has
 * no v2 cgroup line (no cgroup v2); -1 gone or unreadable. */
int stint_cgroup_of_pid(pid_t pid, char *buf, size_t cap);

/* Parses the text of a /proc/PID/cgroup file (for tests and callers that
 * read it through a pidfd-checked path themselves). Same results. */
int stint_cgroup_parse(const char *text, char *buf, size_t cap);

/* The systemd unit (NAME.service or NAME.scope) nearest the leaf of cg:
 * "/system.slice/billing.service/worker" → "billing.service". 0 found;
 * 1 none. */
int stint_cgroup_unit(const char *cg, char *unit, size_t cap);

/* cg is ancestor or lies below it ("/a/b" is within "/a", "/ab" is
 * not; everything is within "/"). */
bool stint_cgroup_within(const char *cg, const char *ancestor);

/* root + cg: the directory of cg in the mounted hierarchy. 0; 1 no cgroup
 * v2; -1 too long. */
int stint_cgroup_fs_path(const char *cg, char *buf, size_t cap);

#endif
