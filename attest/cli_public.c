/*
 * Read-only commands any user may run (`stint ca cert`, `stint task show
 * ID`): through admin.sock when this user may use it, else through
 * agent.sock, which answers CA_CERT (the chain) and TASK_SHOW (a task's
 * public facts) for anyone. The agent socket is $STINT_SOCKET, else
 * agent.sock next to the admin socket.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/cli.h"

const struct stint_cli *
stint_cli_public(const struct stint_cli *cli, struct stint_cli *tmp, char *buf,
		 size_t cap)
{
	const char *env = getenv("STINT_SOCKET"), *slash;

	if (access(cli->socket, R_OK | W_OK) == 0 ||
	    (errno != EACCES && errno != EPERM))
		return cli;
	if (env != NULL && *env != '\0') {
		snprintf(buf, cap, "%s", env);
	} else if ((slash = strrchr(cli->socket, '/')) != NULL) {
		snprintf(buf, cap, "%.*s/agent.sock",
			 (int)(slash - cli->socket), cli->socket);
	} else {
		snprintf(buf, cap, "agent.sock");
	}
	*tmp = *cli;
	tmp->socket = buf;
	return tmp;
}
