/* Tasks bound to a process or a cgroup: the match and the /proc facts. */

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "attest/bind.h"
#include "common/cgroup.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

const char *
stint_bind_refuses(const struct stint_task_bind *b, pid_t pid,
		   uint64_t start_time, const char *cgroup)
{
	switch (b->kind) {
	case STINT_BIND_NONE:
		return NULL;
	case STINT_BIND_PID:
		if ((int64_t)pid != b->pid || start_time == 0 ||
		    start_time != b->start_time)
			return "task is bound to another process";
		return NULL;
	case STINT_BIND_CGROUP:
		if (cgroup == NULL || cgroup[0] == '\0' ||
		    !stint_cgroup_within(cgroup, b->cgroup))
			return "process is outside the task's bound cgroup";
		return NULL;
	}
	return "task has an unknown binding";
}

int
stint_bind_pidfd_open(pid_t pid)
{
	/* pidfds are close-on-exec by default. */
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

bool
stint_bind_pidfd_alive(int pidfd)
{
	struct pollfd p = {.fd = pidfd, .events = POLLIN};

	/* A pidfd polls readable once its process has exited. */
	return poll(&p, 1, 0) == 0;
}

void
stint_bind_describe(const struct stint_task_bind *b, char *buf, size_t cap)
{
	switch (b->kind) {
	case STINT_BIND_PID:
		snprintf(buf, cap, "pid %lld", (long long)b->pid);
		return;
	case STINT_BIND_CGROUP:
		snprintf(buf, cap, "cgroup %s%s", b->cgroup,
			 b->owned ? " (stint run)" : "");
		return;
	case STINT_BIND_NONE:
		break;
	}
	if (cap > 0)
		buf[0] = '\0';
}
