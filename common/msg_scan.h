/* The wire codec's shape check and UTF-8 check (msg_scan.c), shared by
 * msg.c's two parsers and its builders. Internal to libstint-common. */
#ifndef STINT_COMMON_MSG_SCAN_H
#define STINT_COMMON_MSG_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSG_DEPTH_MAX 4 /* nesting of maps and arrays a frame may have */

/* 0 when buf holds exactly one map of the protocol's shape, else
 * STINT_WIRE_MALFORMED. */
int stint_msg_scan_shape(const uint8_t *buf, size_t len);
/* Well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code points
 * above U+10FFFF) without NUL. */
bool stint_utf8_ok(const uint8_t *p, size_t len);

#endif
