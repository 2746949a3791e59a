/*
 * Frames: a 4-byte big-endian length, then the body. A length above the
 * reader's limit is refused before a byte of the body is read.
 */
#ifndef STINT_COMMON_FRAME_H
#define STINT_COMMON_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "common/proto.h"

/* Reads one frame into a malloc'ed buffer. timeout_ms < 0 waits forever;
 * otherwise the whole frame must arrive within timeout_ms. Returns 0 or a
 * STINT_WIRE_* code: IO (including orderly close before the first byte),
 * TIMEOUT, TOO_LARGE (len > max; the body is not read). */
int stint_frame_read(int fd, size_t max, int timeout_ms, uint8_t **body,
		     size_t *len);
/* The same for the reply to a request, from a peer that sends nothing
 * unasked (stintd to the module): the prefix and a short body arrive with
 * one recv instead of a recv each; bytes past the frame are
 * STINT_WIRE_MALFORMED. Not for a stream that may carry a next frame. */
int stint_frame_read_reply(int fd, size_t max, int timeout_ms, uint8_t **body,
			   size_t *len);
/* Writes prefix and body; handles short writes and EINTR, never raises
 * SIGPIPE (MSG_NOSIGNAL on sockets). timeout_ms as above. */
int stint_frame_write(int fd, const uint8_t *body, size_t len, int timeout_ms);

#endif
