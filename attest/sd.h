/*
 * systemd integration without libsystemd: socket activation (the
 * LISTEN_PID/LISTEN_FDS protocol, sd_listen_fds(3)) and readiness
 * notification (datagrams to $NOTIFY_SOCKET, sd_notify(3)). Both are
 * no-ops when stintd was not started by systemd (or
 * systemd-socket-activate).
 */
#ifndef STINT_ATTEST_SD_H
#define STINT_ATTEST_SD_H

#include <stdbool.h>

/* The listening socket systemd passed us that is bound to path (matched
 * with getsockname, not by position), or -1 when there is none. The
 * descriptor is made close-on-exec. Reads LISTEN_PID/LISTEN_FDS once and
 * then removes them from the environment. */
int stint_sd_listen_fd(const char *path);
/* fd came from stint_sd_listen_fd: systemd owns its path (stintd must not
 * unlink it at exit, or the socket unit's next activation finds none). */
bool stint_sd_inherited(int fd);
/* Sends state ("READY=1", "STOPPING=1", ...) to $NOTIFY_SOCKET; returns 1
 * when sent, 0 when there is no NOTIFY_SOCKET, -1 on error. Never blocks. */
int stint_sd_notify(const char *state);
/* For a reload (SIGHUP): RELOADING=1 with MONOTONIC_USEC, as
 * Type=notify-reload expects; send "READY=1" when it is done. */
int stint_sd_notify_reloading(void);

#endif
