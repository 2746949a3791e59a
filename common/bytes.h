/* Byte-buffer copies (struct stint_bytes, include/stint/wire.h). */
#ifndef STINT_COMMON_BYTES_H
#define STINT_COMMON_BYTES_H

#include <stddef.h>

#include "stint/wire.h"

/* dst becomes a malloc'ed copy of len bytes at src ({NULL, 0} for len 0).
 * 0, or -1 when out of memory (dst is then {NULL, 0}). dst is overwritten,
 * not freed: empty it first (stint_bytes_clear) if it held a copy. */
int stint_bytes_copy(struct stint_bytes *dst, const void *src, size_t len);
/* The same, from another stint_bytes. */
int stint_bytes_dup(struct stint_bytes *dst, const struct stint_bytes *src);
/* Wipes the bytes (they held a secret), then empties the value. */
void stint_bytes_wipe_clear(struct stint_bytes *b);

#endif
