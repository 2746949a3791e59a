/*
 * A handler's answer: one reply frame body. Every handler and the server
 * build replies with these two helpers; they call nothing above them.
 */
#ifndef STINT_ATTEST_REPLY_H
#define STINT_ATTEST_REPLY_H

#include <stddef.h>
#include <stdint.h>

struct stint_msg;

/* A reply frame body, malloc'ed. */
struct stint_reply {
	uint8_t *buf;
	size_t len;
};

/* An error reply with a formatted message. */
int stintd_error_reply(struct stint_reply *rep, int status, const char *fmt,
		       ...) __attribute__((format(printf, 3, 4)));
/* Serialises m into rep and frees m. */
int stintd_msg_reply(struct stint_reply *rep, struct stint_msg *m);

#endif
