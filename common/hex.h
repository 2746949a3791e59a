#ifndef STINT_COMMON_HEX_H
#define STINT_COMMON_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void stint_hex_encode(const uint8_t *in, size_t n, char *out);
/* Exactly 2n hex digits → n bytes; -1 on any other input. */
int stint_hex_decode(const char *in, uint8_t *out, size_t n);

#endif
