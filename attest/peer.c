/* Peer identity from the kernel, never from anything the peer says. */

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attest/peer.h"
#include "common/cgroup.h"
#include "common/log.h"

static uint64_t
proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the last
	 * ')'. Field 3 (state) follows it; starttime is field 22. */
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	p++;
	for (field = 3; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu", &start) != 1)
		return 0;
	return start;
}

/* Another uid's /proc/PID/exe needs ptrace rights (CAP_SYS_PTRACE when
 * stintd is not root): say so once, the first time it is missing. */
static void
warn_no_ptrace(uid_t uid)
{
	static atomic_bool warned;

	if (!atomic_exchange(&warned, true))
		log_warn("cannot read the executable of a peer of uid %ld: "
			 "the audit records \"exe\":\"?\" (stintd needs "
			 "CAP_SYS_PTRACE when not root; see stintd(8))",
			 (long)uid);
}

int
stint_peer_from_socket(int fd, struct stint_peer *peer)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char path[64];
	ssize_t n;

	memset(peer, 0, sizeof(*peer));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    len != sizeof(cred))
		return -1;
	peer->pid = cred.pid;
	peer->uid = cred.uid;
	peer->gid = cred.gid;
	peer->start_time = proc_start_time(cred.pid);
	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)cred.pid);
	n = readlink(path, peer->exe, sizeof(peer->exe) - 1);
	if (n <= 0) {
		if (errno == EACCES || errno == EPERM)
			warn_no_ptrace(cred.uid);
		strcpy(peer->exe, "?");
	} else {
		peer->exe[n] = '\0';
	}
	/* Policy uses only uid and gid, which SO_PEERCRED fixes at connect
	 * time. pid and exe are audit facts: if the process exited and its
	 * pid was reused while we read /proc, the start time changes and the
	 * exe is reported unknown rather than wrong. */
	if (stint_cgroup_of_pid(cred.pid, peer->cgroup, sizeof(peer->cgroup)) !=
	    0)
		peer->cgroup[0] = '\0';
	if (peer->start_time != 0 &&
	    proc_start_time(cred.pid) != peer->start_time) {
		strcpy(peer->exe, "?");
		peer->cgroup[0] = '\0';
	}
	return 0;
}
