/*
 * Durations: one or more <digits><unit> groups with units d, h, m, s in
 * that order, each at most once ("2h30m"), or bare digits meaning seconds.
 */
#include <stdio.h>
#include <string.h>

#include "common/duration.h"

#define DURATION_MAX (10ull * 366 * 86400) /* "more than 10 years" */

static const struct {
	char unit;
	uint64_t secs;
} units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};

#define N_UNITS (sizeof(units) / sizeof(units[0]))

int
stint_duration_parse(const char *s, uint64_t *secs)
{
	uint64_t total = 0;
	size_t next_unit = 0; /* units must appear in descending order */
	const char *p = s;

	if (s == NULL || *s == '\0')
		return -1;
	while (*p != '\0') {
		uint64_t n = 0;
		size_t u;

		if (*p < '0' || *p > '9')
			return -1;
		for (; *p >= '0' && *p <= '9'; p++) {
			n = n * 10 + (uint64_t)(*p - '0');
			if (n > DURATION_MAX)
				return -1; /* also stops any overflow */
		}
		if (*p == '\0') {
			/* Bare digits: seconds, and only on their own. */
			if (next_unit != 0)
				return -1;
			total = n;
			break;
		}
		for (u = next_unit; u < N_UNITS; u++)
			if (units[u].unit == *p)
				break;
		if (u == N_UNITS)
			return -1; /* unknown, repeated or out-of-order unit */
		if (n > DURATION_MAX / units[u].secs)
			return -1;
		total += n * units[u].secs;
		if (total > DURATION_MAX)
			return -1;
		next_unit = u + 1;
		p++;
	}
	if (total == 0 || total > DURATION_MAX)
		return -1;
	*secs = total;
	return 0;
}

void
stint_duration_format(uint64_t secs, char *buf, size_t cap)
{
	size_t off = 0;

	if (buf == NULL || cap == 0)
		return;
	buf[0] = '\0';
	if (secs == 0) {
		snprintf(buf, cap, "0s");
		return;
	}
	/* Largest units first, zero parts left out: exact and readable. */
	for (size_t u = 0; u < N_UNITS && secs > 0; u++) {
		uint64_t n = secs / units[u].secs;
		int w;

		if (n == 0)
			continue;
		secs -= n * units[u].secs;
		w = snprintf(buf + off, cap - off, "%llu%c",
			     (unsigned long long)n, units[u].unit);
		if (w < 0 || (size_t)w >= cap - off)
			return; /* truncated; buf stays NUL-terminated */
		off += (size_t)w;
	}
}
