/* Durations as users write them: "90s", "15m", "1h", "2h30m", "45" (s). */
#ifndef STINT_COMMON_DURATION_H
#define STINT_COMMON_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0 and seconds in *secs, or -1 for empty, negative, unknown unit,
 * trailing junk, zero, or more than 10 years. */
int stint_duration_parse(const char *s, uint64_t *secs);
/* "1h", "15m", "1h30m", "90s" → shortest exact form into buf. */
void stint_duration_format(uint64_t secs, char *buf, size_t cap);

#endif
