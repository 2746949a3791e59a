/*
 * Logging. stintd logs to stderr in the foreground and to syslog otherwise.
 * Debug categories switch on at run time: STINT_DEBUG=wire,module,sign,... or
 * STINT_DEBUG=1 / all. Never log key material, signed data, signatures,
 * PINs or auth values.
 */
#ifndef STINT_COMMON_LOG_H
#define STINT_COMMON_LOG_H

#include <stdarg.h>
#include <stdbool.h>

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

#define log_err(...)  stint_log(STINT_LOG_ERR, __VA_ARGS__)
#define log_warn(...) stint_log(STINT_LOG_WARN, __VA_ARGS__)
#define log_info(...) stint_log(STINT_LOG_INFO, __VA_ARGS__)

#endif
