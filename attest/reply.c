/* Reply helpers shared by the server and every handler (reply.h). */

#include <stdarg.h>
#include <stdio.h>

#include "attest/reply.h"
#include "common/msg.h"

int
stintd_error_reply(struct stint_reply *rep, int status, const char *fmt, ...)
{
	char text[STINT_REASON_MAX + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	rep->buf = NULL;
	return stint_enc_error_rep((uint64_t)status, text, &rep->buf,
				   &rep->len) == 0
		       ? 0
		       : -1;
}

int
stintd_msg_reply(struct stint_reply *rep, struct stint_msg *m)
{
	int r;

	rep->buf = NULL;
	if (m == NULL)
		return -1;
	r = stint_msg_serialize(m, &rep->buf, &rep->len) == 0 ? 0 : -1;
	stint_msg_free(m);
	return r;
}
