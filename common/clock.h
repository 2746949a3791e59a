/* Clocks both sides use (the module's timeouts, frame deadlines). */
#ifndef STINT_COMMON_CLOCK_H
#define STINT_COMMON_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: for timeouts and deadlines, never for
 * wall time. */
int64_t stint_mono_ms(void);

/* The same clock in milliseconds with a fraction (to the nanosecond): for
 * measuring latencies in the benchmarks and probes. */
double stint_mono_ms_frac(void);

#endif
