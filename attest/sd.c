/*
 * Socket activation and sd_notify, implemented on the documented wire
 * protocols (sd_listen_fds(3), sd_notify(3)) so that stintd does not
 * depend on libsystemd.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "attest/sd.h"
#include "common/log.h"

#define SD_LISTEN_FDS_START 3
#define SD_MAX_FDS          16

static pthread_once_t listen_once = PTHREAD_ONCE_INIT;
static int listen_fds[SD_MAX_FDS];
static bool listen_taken[SD_MAX_FDS];
static int n_listen;

/* Parses a decimal number filling the whole string; -1 if it is not one. */
static long
parse_num(const char *s)
{
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	return errno != 0 || *end != '\0' || v < 0 ? -1 : v;
}

static void
listen_init(void)
{
	long pid = parse_num(getenv("LISTEN_PID"));
	long n = parse_num(getenv("LISTEN_FDS"));

	/* Meant for another process (LISTEN_PID not ours): ignore them. */
	if (pid == (long)getpid() && n > 0) {
		if (n > SD_MAX_FDS) {
			log_warn("socket activation: %ld sockets passed, "
				 "using the first %d",
				 n, SD_MAX_FDS);
			n = SD_MAX_FDS;
		}
		for (int i = 0; i < n; i++) {
			listen_fds[i] = SD_LISTEN_FDS_START + i;
			(void)fcntl(listen_fds[i], F_SETFD, FD_CLOEXEC);
		}
		n_listen = (int)n;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

/* fd is a listening AF_UNIX stream socket bound to path. */
static bool
bound_to(int fd, const char *path)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa), optlen;
	int type, listening;

	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 ||
	    sa.sun_family != AF_UNIX ||
	    len <= offsetof(struct sockaddr_un, sun_path))
		return false;
	optlen = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) != 0 ||
	    type != SOCK_STREAM)
		return false;
	optlen = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) !=
		    0 ||
	    !listening)
		return false;
	/* sun_path may lack its NUL when it fills the structure. */
	len -= offsetof(struct sockaddr_un, sun_path);
	return strnlen(sa.sun_path, len) == strlen(path) &&
	       strncmp(sa.sun_path, path, len) == 0;
}

int
stint_sd_listen_fd(const char *path)
{
	pthread_once(&listen_once, listen_init);
	for (int i = 0; i < n_listen; i++) {
		if (!listen_taken[i] && bound_to(listen_fds[i], path)) {
			listen_taken[i] = true;
			return listen_fds[i];
		}
	}
	return -1;
}

bool
stint_sd_inherited(int fd)
{
	for (int i = 0; i < n_listen; i++)
		if (listen_taken[i] && listen_fds[i] == fd)
			return true;
	return false;
}

int
stint_sd_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t plen;
	socklen_t salen;
	int fd, r = -1;

	if (path == NULL || *path == '\0')
		return 0;
	plen = strlen(path);
	/* An absolute path, or '@' for the abstract namespace. */
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen +
			    (path[0] == '@' ? 0 : 1));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		   (struct sockaddr *)&sa, salen) == (ssize_t)strlen(state))
		r = 1;
	else
		log_warn("sd_notify %s: %s", state, strerror(errno));
	close(fd);
	return r;
}

int
stint_sd_notify_reloading(void)
{
	struct timespec now;
	char msg[96];

	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)now.tv_sec * 1000000ULL +
			 (unsigned long long)now.tv_nsec / 1000ULL);
	return stint_sd_notify(msg);
}
