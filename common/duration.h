/* Durations as users write them: "90s", "15m", "1h", "2h30m", "1d", "45"
 * (bare digits: seconds). */
#ifndef STINT_COMMON_DURATION_H
#define STINT_COMMON_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* Returns 0 and seconds in *secs, or -1 for empty, negative, unknown unit,
 * trailing junk, zero, or more than 10 years. */
int stint_duration_parse(const char *s, uint64_t *secs);
/* Exact form into buf, largest units first, zero parts left out:
 * 3600 → "1h", 900 → "15m", 5400 → "1h30m", 90 → "1m30s", 86400 → "1d",
 * 0 → "0s". Units accepted by the parser: d, h, m, s, in that order. */
void stint_duration_format(uint64_t secs, char *buf, size_t cap);

#endif
