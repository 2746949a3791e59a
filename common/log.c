/*
 * Logging to stderr or syslog. Debug output is off unless STINT_DEBUG names
 * the category ("1" or "all" for every category), so the module stays quiet
 * inside agents' processes by default.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define LOG_LINE_MAX   1024
#define DEBUG_SPEC_MAX 256

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t debug_once = PTHREAD_ONCE_INIT;
static char log_ident[64] = "stint";
static bool log_syslog;

static bool debug_all;
static char debug_spec[DEBUG_SPEC_MAX]; /* ",wire,module," */

static void
debug_load(void)
{
	const char *env = getenv("STINT_DEBUG");
	size_t n;

	if (env == NULL || env[0] == '\0')
		return;
	if (strcmp(env, "1") == 0 || strcmp(env, "all") == 0) {
		debug_all = true;
		return;
	}
	/* Bracketed by commas so a lookup is one strstr of ",name,". */
	n = strlen(env);
	if (n + 3 > sizeof(debug_spec))
		n = sizeof(debug_spec) - 3;
	debug_spec[0] = ',';
	memcpy(debug_spec + 1, env, n);
	debug_spec[n + 1] = ',';
	debug_spec[n + 2] = '\0';
}

void
stint_log_init(const char *ident, bool use_syslog)
{
	pthread_mutex_lock(&log_lock);
	if (ident != NULL)
		snprintf(log_ident, sizeof(log_ident), "%s", ident);
	if (log_syslog && !use_syslog)
		closelog();
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	pthread_mutex_unlock(&log_lock);
	pthread_once(&debug_once, debug_load);
}

bool
stint_debug_enabled(const char *category)
{
	char pat[DEBUG_SPEC_MAX];

	pthread_once(&debug_once, debug_load);
	if (debug_all)
		return true;
	if (debug_spec[0] == '\0' || category == NULL || category[0] == '\0' ||
	    strchr(category, ',') != NULL)
		return false;
	if ((size_t)snprintf(pat, sizeof(pat), ",%s,", category) >= sizeof(pat))
		return false;
	return strstr(debug_spec, pat) != NULL;
}

static void emit(enum stint_log_level level, const char *category,
		 const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void
emit(enum stint_log_level level, const char *category, const char *fmt,
     va_list ap)
{
	static const char *const names[] = {"error", "warning", "info",
					    "debug"};
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char msg[LOG_LINE_MAX], line[LOG_LINE_MAX + 128];
	int n;

	if ((unsigned)level > STINT_LOG_DEBUG)
		level = STINT_LOG_ERR;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	pthread_mutex_lock(&log_lock);
	if (log_syslog) {
		if (category != NULL)
			syslog(prio[level], "[%s] %s", category, msg);
		else
			syslog(prio[level], "%s", msg);
	} else {
		if (category != NULL)
			n = snprintf(line, sizeof(line),
				     "%s[%ld]: %s[%s]: %s\n", log_ident,
				     (long)getpid(), names[level], category,
				     msg);
		else
			n = snprintf(line, sizeof(line), "%s: %s: %s\n",
				     log_ident, names[level], msg);
		if (n > 0) {
			size_t len = (size_t)n < sizeof(line)
					     ? (size_t)n
					     : sizeof(line) - 1;
			/* One write per line keeps threads' lines whole. */
			ssize_t w = write(STDERR_FILENO, line, len);

			(void)w;
		}
	}
	pthread_mutex_unlock(&log_lock);
}

void
stint_log(enum stint_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(level, NULL, fmt, ap);
	va_end(ap);
}

void
stint_debug(const char *category, const char *fmt, ...)
{
	va_list ap;

	if (!stint_debug_enabled(category))
		return;
	va_start(ap, fmt);
	emit(STINT_LOG_DEBUG, category, fmt, ap);
	va_end(ap);
}

bool
stint_ratelimit_at(struct stint_ratelimit *rl, int64_t now,
		   unsigned long *dropped)
{
	bool ok;

	pthread_mutex_lock(&rl->lock);
	if (rl->n == 0 || now < rl->start ||
	    now - rl->start >= (int64_t)rl->interval) {
		rl->start = now;
		rl->n = 0;
	}
	ok = rl->n < rl->burst;
	if (ok) {
		rl->n++;
		*dropped = rl->dropped;
		rl->dropped = 0;
	} else {
		rl->dropped++;
	}
	pthread_mutex_unlock(&rl->lock);
	return ok;
}

bool
stint_ratelimit(struct stint_ratelimit *rl, unsigned long *dropped)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return stint_ratelimit_at(rl, (int64_t)ts.tv_sec, dropped);
}
