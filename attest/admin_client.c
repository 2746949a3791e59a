/*
 * The CLI side of the admin socket: one connection per command, one request
 * frame out, one reply frame back (docs/protocol.md, "Admin socket").
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "attest/cli.h"
#include "common/frame.h"
#include "common/msg.h"
#include "common/proto.h"
#include "stint/wire.h"

static const char *
wire_err_str(int r)
{
	switch (r) {
	case STINT_WIRE_MALFORMED:
		return "malformed message";
	case STINT_WIRE_MISSING:
		return "required field missing";
	case STINT_WIRE_TYPE:
		return "field of the wrong type";
	case STINT_WIRE_RANGE:
		return "value out of range";
	case STINT_WIRE_NOMEM:
		return "out of memory";
	case STINT_WIRE_IO:
		return "connection failed";
	case STINT_WIRE_TIMEOUT:
		return "timed out";
	case STINT_WIRE_TOO_LARGE:
		return "message too large";
	default:
		return "unknown error";
	}
}

static int
admin_connect(const char *path, int *out)
{
	struct sockaddr_un sun;
	int fd, e;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		stint_cli_err("admin socket path too long (%zu bytes, at most "
			      "%zu): %s",
			      strlen(path), sizeof(sun.sun_path) - 1, path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		stint_cli_err("cannot create a socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		e = errno;
		close(fd);
		if (e == EACCES || e == EPERM)
			stint_cli_err("permission denied on %s: only root, "
				      "stintd's user and operators may use it",
				      path);
		else
			stint_cli_err("cannot connect to %s: %s (is stintd "
				      "running? set --socket or "
				      "STINT_ADMIN_SOCKET)",
				      path, strerror(e));
		return -1;
	}
	*out = fd;
	return 0;
}

struct stint_msg *
stint_cli_request(uint64_t op)
{
	struct stint_msg *m;

	if ((m = stint_msg_new()) == NULL ||
	    stint_msg_put_uint(m, STINT_K_OP, op) != 0) {
		if (m != NULL)
			stint_msg_free(m);
		stint_cli_err("out of memory");
		return NULL;
	}
	return m;
}

struct stint_msg *
stint_cli_name_request(uint64_t op, uint64_t key, const char *name)
{
	struct stint_msg *m = stint_cli_request(op);

	if (m != NULL && stint_enc_name_req(m, key, name) != 0) {
		stint_msg_free(m);
		stint_cli_err("out of memory");
		return NULL;
	}
	return m;
}

/* Status names as in wire.h, so scripts and people can tell NOT_FOUND from
 * LIMIT; stint_status_str says what they mean. */
static const char *
status_name(uint64_t status)
{
	static const char *const names[] = {
		[STINT_OK] = "OK",
		[STINT_E_BAD_REQUEST] = "BAD_REQUEST",
		[STINT_E_VERSION] = "VERSION",
		[STINT_E_NO_AGENT] = "NO_AGENT",
		[STINT_E_NOT_YOURS] = "NOT_YOURS",
		[STINT_E_NOT_LIVE] = "NOT_LIVE",
		[STINT_E_MECHANISM] = "MECHANISM",
		[STINT_E_BUDGET] = "BUDGET",
		[STINT_E_BACKEND] = "BACKEND",
		[STINT_E_NOT_FOUND] = "NOT_FOUND",
		[STINT_E_EXISTS] = "EXISTS",
		[STINT_E_DENIED] = "DENIED",
		[STINT_E_INTERNAL] = "INTERNAL",
		[STINT_E_TOO_LARGE] = "TOO_LARGE",
		[STINT_E_LIMIT] = "LIMIT",
		[STINT_E_UNKNOWN_OP] = "UNKNOWN_OP",
	};

	if (status < sizeof(names) / sizeof(names[0]) && names[status])
		return names[status];
	return "UNKNOWN_STATUS";
}

/* Reports a reply that is not OK: the daemon's own words (or, if it gave
 * none, what the status means), with the status name. */
static void
report_refusal(const char *what, uint64_t status, const char *error)
{
	const char *text = error[0] ? error : stint_status_str(status);

	if (status == STINT_E_DENIED)
		stint_cli_err("%s: refused by stintd (%s): %s", what,
			      status_name(status), text);
	else if (status == STINT_E_UNKNOWN_OP || status == STINT_E_VERSION)
		stint_cli_err("%s: refused by stintd (%s): %s (are stint and "
			      "stintd the same version?)",
			      what, status_name(status), text);
	else
		stint_cli_err("%s: refused by stintd (%s): %s", what,
			      status_name(status), text);
}

int
stint_cli_call(const struct stint_cli *cli, const char *what,
	       struct stint_msg *req, struct stint_msg **rep)
{
	uint64_t status;

	return stint_cli_call_status(cli, what, req, rep, &status, false);
}

int
stint_cli_call_status(const struct stint_cli *cli, const char *what,
		      struct stint_msg *req, struct stint_msg **rep,
		      uint64_t *status_out, bool quiet_denied)
{
	char error[STINT_REASON_MAX + 1];
	struct stint_msg *m = NULL;
	uint64_t status;
	uint8_t *out = NULL, *in = NULL;
	size_t out_len = 0, in_len = 0;
	int fd = -1, r, w, ret = STINT_EXIT_FAIL;

	*rep = NULL;
	*status_out = UINT64_MAX;
	if (req == NULL)
		goto out;
	if ((r = stint_msg_serialize(req, &out, &out_len)) != 0) {
		stint_cli_err("%s: cannot encode the request: %s", what,
			      wire_err_str(r));
		goto out;
	}
	if (out_len > STINT_FRAME_MAX) {
		stint_cli_err("%s: request too large (%zu bytes, at most %u): "
			      "shorten the intent or reason text",
			      what, out_len, STINT_FRAME_MAX);
		goto out;
	}
	if (admin_connect(cli->socket, &fd) != 0)
		goto out;
	/* stintd refuses a uid that may not use admin.sock at accept, with
	 * a reply sent before it closes: a failed send still reads it. */
	w = stint_frame_write(fd, out, out_len, STINT_ADMIN_TIMEOUT_MS);
	r = stint_frame_read(fd, STINT_ADMIN_REPLY_MAX,
			     w != 0 ? 1000 : STINT_ADMIN_TIMEOUT_MS, &in,
			     &in_len);
	if (w != 0 && r != 0) {
		stint_cli_err("%s: cannot send the request to %s: %s (check "
			      "stintd's log)",
			      what, cli->socket, wire_err_str(w));
		goto out;
	}
	if (r == STINT_WIRE_IO) {
		stint_cli_err("%s: stintd closed %s without replying (only "
			      "root, stintd's user and operators may use it; "
			      "otherwise check stintd's log)",
			      what, cli->socket);
		goto out;
	} else if (r == STINT_WIRE_TIMEOUT) {
		stint_cli_err("%s: no reply from stintd within %d s (check "
			      "stintd's log and the token)",
			      what, STINT_ADMIN_TIMEOUT_MS / 1000);
		goto out;
	} else if (r != 0) {
		stint_cli_err("%s: cannot read the reply: %s", what,
			      wire_err_str(r));
		goto out;
	}
	if ((r = stint_msg_parse(in, in_len, &m)) != 0 ||
	    (r = stint_msg_get_uint(m, STINT_K_STATUS, &status)) != 0) {
		stint_cli_err("%s: stintd sent a bad reply (%s): are stint and "
			      "stintd the same version?",
			      what, wire_err_str(r));
		goto out;
	}
	*status_out = status;
	if (status != STINT_OK) {
		/* An overlong or missing message still leaves the status. */
		if (stint_msg_get_text(m, STINT_K_ERROR, error,
				       sizeof(error)) != 0)
			error[0] = '\0';
		if (!quiet_denied || status != STINT_E_DENIED)
			report_refusal(what, status, error);
		goto out;
	}
	*rep = m;
	m = NULL;
	ret = STINT_EXIT_OK;
out:
	if (fd != -1)
		close(fd);
	if (m != NULL)
		stint_msg_free(m);
	if (req != NULL)
		stint_msg_free(req);
	free(out);
	free(in);
	return ret;
}
