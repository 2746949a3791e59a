/*
 * Tasks bound to a process or a cgroup (issue 12 §3): who may use a bound
 * task, and the /proc and pidfd facts the binding is made of. The watcher
 * that ends a bound task when what it is bound to is gone is watch.h.
 */
#ifndef STINT_ATTEST_BIND_H
#define STINT_ATTEST_BIND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "attest/store.h"

/* Why a process (pid, start time from /proc/PID/stat, cgroup v2 path or
 * NULL/"" when unknown) may not use a task bound by b; NULL when it may
 * (always for an unbound task). A process matches a pid binding only with
 * the bound pid and start time (a recycled pid starts later), and a cgroup
 * binding only from within the bound cgroup. */
const char *stint_bind_refuses(const struct stint_task_bind *b, pid_t pid,
			       uint64_t start_time, const char *cgroup);

/* pidfd_open(pid, 0), close-on-exec; -1 with errno. */
int stint_bind_pidfd_open(pid_t pid);
/* The process the pidfd refers to has not exited yet. */
bool stint_bind_pidfd_alive(int pidfd);

/* "pid 1234" / "cgroup /stint/run-…" / "" into buf, for show and audit. */
void stint_bind_describe(const struct stint_task_bind *b, char *buf,
			 size_t cap);

#endif
