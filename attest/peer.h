/* Who is on the other end of a Unix socket: SO_PEERCRED plus /proc facts. */
#ifndef STINT_ATTEST_PEER_H
#define STINT_ATTEST_PEER_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

struct stint_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	uint64_t start_time;   /* /proc/PID/stat field 22, guards PID reuse */
	char exe[PATH_MAX];    /* readlink /proc/PID/exe, "?" if unreadable */
	char cgroup[PATH_MAX]; /* cgroup v2 path ("/a/b"), "" if none */
};

int stint_peer_from_socket(int fd, struct stint_peer *peer);

#endif
