/* The daemon's clock (clock.h). */

#include <stdlib.h>
#include <time.h>

#include "attest/clock.h"

/*
 * Deadlines are whole seconds, and a deadline N is reached at the instant
 * N.000000000: floor(t) >= N exactly when t >= N, so the seconds of the
 * full-resolution clock decide as exactly as its nanoseconds would.
 * time(NULL) would not do: it reads the kernel's coarse clock, which lags
 * by up to a tick (1-4 ms), and allowed signatures after the deadline.
 */
void
stintd_realtime(struct timespec *ts)
{
	if (clock_gettime(CLOCK_REALTIME, ts) != 0)
		abort(); /* cannot fail with a valid clock and pointer */
}

int64_t
stintd_now(void)
{
	struct timespec ts;

	stintd_realtime(&ts);
	return (int64_t)ts.tv_sec;
}
