/*
 * stintd's one clock for deadline decisions and record times. Lowest
 * layer: it calls nothing of the daemon's.
 */
#ifndef STINT_ATTEST_CLOCK_H
#define STINT_ATTEST_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_REALTIME at full resolution (aborts if the clock cannot be read). */
void stintd_realtime(struct timespec *ts);
/* Seconds since the epoch; one clock for every deadline decision. */
int64_t stintd_now(void);

#endif
