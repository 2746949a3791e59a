/*
 * Read-only commands any user may run (`stint ca cert`, `stint task show
 * ID`): through admin.sock when this user may use it, else through
 * agent.sock, which answers CA_CERT (the chain) and TASK_SHOW (a task's
 * public facts) for anyone. The agent socket is $STINT_SOCKET, else
 * agent.sock next to the admin socket.
 *
 * admin.sock is 0666 (operators reach it; stintd refuses anyone else at
 * accept), so for a user that is neither root nor the socket's owner
 * "may use it" is only known by asking: stint_cli_call_public asks
 * admin.sock first and, when refused (DENIED), agent.sock.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/cli.h"

void
stint_cli_agent_socket(const struct stint_cli *cli, struct stint_cli *tmp,
		       char *buf, size_t cap)
{
	const char *env = getenv("STINT_SOCKET"), *slash;

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
}

const struct stint_cli *
stint_cli_public(const struct stint_cli *cli, struct stint_cli *tmp, char *buf,
		 size_t cap)
{
	if (access(cli->socket, R_OK | W_OK) == 0 ||
	    (errno != EACCES && errno != EPERM))
		return cli;
	stint_cli_agent_socket(cli, tmp, buf, cap);
	return tmp;
}

/* Whether admin.sock may refuse us though we can connect: a socket anyone
 * may connect to, and we are neither root nor its owner. */
static bool
admin_maybe_refuses(const char *path)
{
	struct stat st;

	return geteuid() != 0 && stat(path, &st) == 0 &&
	       (st.st_mode & S_IWOTH) && st.st_uid != geteuid();
}

static struct stint_msg *
msg_copy(const struct stint_msg *m)
{
	struct stint_msg *c = NULL;
	uint8_t *buf = NULL;
	size_t len;

	if (stint_msg_serialize(m, &buf, &len) == 0)
		(void)stint_msg_parse(buf, len, &c);
	free(buf);
	return c;
}

int
stint_cli_call_public(const struct stint_cli *cli, const char *what,
		      struct stint_msg *req, struct stint_msg **rep)
{
	struct stint_cli tmp;
	const struct stint_cli *pub;
	struct stint_msg *again;
	char buf[4096];
	uint64_t status;
	int r;

	pub = stint_cli_public(cli, &tmp, buf, sizeof(buf));
	if (pub != cli || !admin_maybe_refuses(cli->socket))
		return stint_cli_call(pub, what, req, rep);
	if ((again = msg_copy(req)) == NULL) {
		stint_msg_free(req);
		stint_cli_err("%s: out of memory", what);
		return STINT_EXIT_FAIL;
	}
	r = stint_cli_call_status(cli, what, req, rep, &status, true);
	if (r == STINT_EXIT_OK || status != STINT_E_DENIED) {
		stint_msg_free(again);
		return r;
	}
	/* Not ours (a stranger, or an operator asking about another
	 * agent's task): the public facts anyone may see. */
	stint_cli_agent_socket(cli, &tmp, buf, sizeof(buf));
	return stint_cli_call(&tmp, what, again, rep);
}
