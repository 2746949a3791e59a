/*
 * Logging. stintd logs to stderr in the foreground and to syslog otherwise.
 * Debug categories switch on at run time: STINT_DEBUG=wire,module,sign,... or
 * STINT_DEBUG=1 / all. Never log key material, signed data, signatures,
 * PINs or auth values.
 */
#ifndef STINT_COMMON_LOG_H
#define STINT_COMMON_LOG_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

enum stint_log_level {
	STINT_LOG_ERR,
	STINT_LOG_WARN,
	STINT_LOG_INFO,
	STINT_LOG_DEBUG
};

void stint_log_init(const char *ident, bool use_syslog);
/* category: a short name matched against STINT_DEBUG (debug level only). */
bool stint_debug_enabled(const char *category);
void stint_log(enum stint_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void stint_debug(const char *category, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Rate limit for lines an outsider can provoke (refused connections): at
 * most `burst` lines per `interval` seconds through one limiter. When the
 * caller may log, *dropped is the number of lines suppressed since the last
 * one, for the caller to mention. Thread-safe.
 */
struct stint_ratelimit {
	pthread_mutex_t lock;
	unsigned interval, burst;
	int64_t start; /* of the current window */
	unsigned n;    /* lines allowed in it */
	unsigned long dropped;
};
#define STINT_RATELIMIT_INIT(interval_s, burst_n)                              \
	{                                                                      \
		PTHREAD_MUTEX_INITIALIZER, (interval_s), (burst_n), 0, 0, 0    \
	}
bool stint_ratelimit(struct stint_ratelimit *rl, unsigned long *dropped);
/* The same with the time (seconds, monotonic) given: for tests. */
bool stint_ratelimit_at(struct stint_ratelimit *rl, int64_t now,
			unsigned long *dropped);

#define log_err(...)  stint_log(STINT_LOG_ERR, __VA_ARGS__)
#define log_warn(...) stint_log(STINT_LOG_WARN, __VA_ARGS__)
#define log_info(...) stint_log(STINT_LOG_INFO, __VA_ARGS__)

#endif
