/*
 * Audit log writer: one JSON object per line, each carrying the hash of the
 * previous line, so that altering, removing or reordering a record breaks
 * the chain (see audit.h for the format and audit_verify.c for the check).
 *
 * A record is written with one write(2) on an O_APPEND descriptor under a
 * mutex that also guards seq and prev: concurrent appenders serialise into
 * one chain, and a failed write leaves the file and the chain as they were.
 * A failed fdatasync makes the log refuse records until audit_recover_locked
 * has made the records since the last good sync durable again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_condattr_setclock, O_CLOEXEC, flock */
#endif

#include "attest/audit.h"
#include "attest/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <limits.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "attest/audit_forward.h"
#include "common/hex.h"
#include "common/log.h"

void
audit_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

#define ROTATE_ADVICE                                                          \
	"run `stint audit verify %s`, then move the log aside (rotate) "       \
	"before starting stintd"

/* Reads into a fresh buffer exactly len bytes at off. */
char *
audit_read_at(int fd, off_t off, size_t len)
{
	char *buf;
	ssize_t n;

	if ((buf = malloc(len + 1)) == NULL)
		return NULL;
	n = pread(fd, buf, len, off);
	if (n < 0 || (size_t)n != len) {
		free(buf);
		if (n >= 0)
			errno = EIO;
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* Offset of the first byte of the last line of a log of size bytes that
 * ends with "\n", searching backwards in growing windows. */
static int
find_last_line(int fd, off_t size, off_t *start)
{
	size_t window = 4096, want;
	off_t end = size - 1, from, i;
	char *buf;

	for (;;) {
		from = end > (off_t)window ? end - (off_t)window : 0;
		want = (size_t)(end - from);
		if ((buf = audit_read_at(fd, from, want)) == NULL)
			return -1;
		for (i = (off_t)want; i > 0 && buf[i - 1] != '\n'; i--)
			;
		free(buf);
		if (i > 0 || from == 0) {
			*start = from + i;
			return 0;
		}
		if (window > AUDIT_MAX_LINE) {
			errno = EFBIG;
			return -1;
		}
		window *= 4;
	}
}

/*
 * Continues the chain from the last line of a non-empty log. Reading
 * backwards costs one record, not the whole file; the last record's own
 * hash is checked, the whole chain is `stint audit verify`'s job. A damaged
 * tail is refused rather than silently starting a new chain on top of it.
 */
static int
load_tail(struct stint_audit *a, const char *path, off_t size, char *err,
	  size_t errlen)
{
	char last, *line = NULL;
	json_t *root = NULL, *seq;
	off_t start;
	size_t len;
	int r = -1;

	if (pread(a->fd, &last, 1, size - 1) != 1) {
		audit_set_err(err, errlen, "audit log %s: cannot read: %s",
			      path, strerror(errno));
		return -1;
	}
	if (last != '\n') {
		audit_set_err(
			err, errlen,
			"audit log %s: the last record is incomplete (torn "
			"write); " ROTATE_ADVICE,
			path, path);
		return -1;
	}
	if (find_last_line(a->fd, size, &start) != 0) {
		audit_set_err(err, errlen,
			      "audit log %s: cannot read the last record: "
			      "%s; " ROTATE_ADVICE,
			      path,
			      errno == EFBIG ? "longer than 1 MiB"
					     : strerror(errno),
			      path);
		return -1;
	}
	len = (size_t)(size - 1 - start); /* without the "\n" */
	if ((line = audit_read_at(a->fd, start, len)) == NULL) {
		audit_set_err(err, errlen, "audit log %s: cannot read: %s",
			      path, strerror(errno));
		goto out;
	}
	if (stint_audit_check_line(line, len, a->prev) != 0) {
		audit_set_err(
			err, errlen,
			"audit log %s: the last record has no valid hash "
			"(damaged or not a Stint audit log); " ROTATE_ADVICE,
			path, path);
		goto out;
	}
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	seq = json_is_object(root) ? json_object_get(root, "seq") : NULL;
	if (!json_is_integer(seq) || json_integer_value(seq) < 1) {
		audit_set_err(err, errlen,
			      "audit log %s: the last record has no valid "
			      "seq; " ROTATE_ADVICE,
			      path, path);
		goto out;
	}
	a->seq = (uint64_t)json_integer_value(seq) + 1;
	r = 0;
out:
	json_decref(root);
	free(line);
	return r;
}

/*
 * BATCH mode: the first record after a sync wakes the thread, which waits
 * BATCH_WINDOW_MS and then fdatasyncs everything written meanwhile (group
 * commit); records written while a sync runs are picked up by the next one.
 * Idle, the thread sleeps and never syncs.
 */
#define BATCH_WINDOW_MS 5L

static void *
syncer_main(void *arg)
{
	struct stint_audit *a = arg;
	struct timespec until;
	unsigned gen;
	off_t upto;

	pthread_mutex_lock(&a->lock);
	while (!a->stop) {
		if (!a->dirty) {
			/* Appenders signal on the first write after a sync,
			 * so a write is picked up at once; the timeout only
			 * guards against a lost wake-up, and an idle log is
			 * never synced. */
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&a->wake, &a->lock, &until);
			continue;
		}
		/* Let the window fill: one fdatasync covers every record
		 * written in it, and the disk sees at most one flush per
		 * window however fast stintd signs. */
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += BATCH_WINDOW_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		while (!a->stop &&
		       pthread_cond_timedwait(&a->wake, &a->lock, &until) == 0)
			;
		a->dirty = false;
		upto = a->size;
		gen = a->generation;
		pthread_rwlock_rdlock(&a->fd_lock);
		pthread_mutex_unlock(&a->lock);
		if (fdatasync(a->fd) != 0) {
			int e = errno;

			pthread_rwlock_unlock(&a->fd_lock);

			/* After a failed sync Linux may drop the dirty pages:
			 * records callers were told are written may be lost,
			 * so refuse all further appends (fail closed). */
			log_err("audit log: fdatasync failed: %s; refusing "
				"further records",
				strerror(e));
			pthread_mutex_lock(&a->lock);
			audit_mark_failed(a, e);
			continue;
		}
		pthread_rwlock_unlock(&a->fd_lock);
		pthread_mutex_lock(&a->lock);
		audit_synced_to(a, upto, gen);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

static int
start_syncer(struct stint_audit *a)
{
	pthread_condattr_t attr;
	int r;

	if (pthread_condattr_init(&attr) != 0)
		return -1;
	r = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (r == 0)
		r = pthread_cond_init(&a->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (r != 0)
		return -1;
	if (pthread_create(&a->syncer, NULL, syncer_main, a) != 0) {
		pthread_cond_destroy(&a->wake);
		return -1;
	}
	a->syncer_running = true;
	return 0;
}

int
stint_audit_open(const char *path, enum stint_audit_sync sync,
		 struct stint_audit **out, char *err, size_t errlen)
{
	struct stint_audit *a = NULL;
	struct stat st;
	int r = -1;

	if (path == NULL || out == NULL) {
		audit_set_err(err, errlen, "audit log %s: %s", "?",
			      "bad argument");
		return -1;
	}
	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		audit_set_err(err, errlen, "audit log %s: %s", path,
			      "out of memory");
		return -1;
	}
	a->fd = -1;
	a->sync = sync;
	a->seq = 1;
	if (strlen(path) >= sizeof(a->path)) {
		free(a);
		audit_set_err(err, errlen, "audit log %s: %s", path,
			      "path too long");
		return -1;
	}
	memcpy(a->path, path, strlen(path) + 1);
	if (pthread_rwlock_init(&a->fd_lock, NULL) != 0) {
		free(a);
		audit_set_err(err, errlen, "audit log %s: %s", path,
			      "lock init");
		return -1;
	}
	if (pthread_mutex_init(&a->lock, NULL) != 0) {
		pthread_rwlock_destroy(&a->fd_lock);
		free(a);
		audit_set_err(err, errlen, "audit log %s: %s", path,
			      "mutex init");
		return -1;
	}

	/* O_RDWR: the tail is read back to continue the chain. */
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		     0600);
	if (a->fd < 0) {
		audit_set_err(err, errlen, "audit log %s: cannot open: %s",
			      path, strerror(errno));
		goto out;
	}
	/* Two writers would fork the chain: one stintd per log. */
	if (flock(a->fd, LOCK_EX | LOCK_NB) != 0) {
		audit_set_err(err, errlen, "audit log %s: %s", path,
			      errno == EWOULDBLOCK
				      ? "in use by another process (is another "
					"stintd running on it?)"
				      : strerror(errno));
		goto out;
	}
	if (fstat(a->fd, &st) != 0) {
		audit_set_err(err, errlen, "audit log %s: cannot stat: %s",
			      path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		audit_set_err(err, errlen, "audit log %s: %s", path,
			      "not a regular file");
		goto out;
	}
	if ((st.st_mode & 077) != 0)
		log_warn("audit log %s is readable by others (mode %03o); "
			 "chmod 600 it",
			 path, (unsigned int)(st.st_mode & 0777));
	a->size = st.st_size;
	a->synced = st.st_size;
	if (st.st_size > 0 && load_tail(a, path, st.st_size, err, errlen) != 0)
		goto out;
	*out = a;
	a = NULL;
	r = 0;
out:
	if (a != NULL) {
		if (a->fd >= 0)
			close(a->fd);
		pthread_mutex_destroy(&a->lock);
		pthread_rwlock_destroy(&a->fd_lock);
		free(a);
	}
	return r;
}

/*
 * The BATCH sync thread starts here, not in stint_audit_open: stintd opens
 * the log, then may fork to daemonize, and a thread does not survive a
 * fork (the daemon would never sync, and close would wait for a thread that
 * is not there).
 */
int
stint_audit_start(struct stint_audit *a)
{
	if (a == NULL || a->sync != STINT_SYNC_BATCH || a->syncer_running)
		return 0;
	return start_syncer(a);
}

/*
 * Records are formatted straight into a buffer kept in struct stint_audit:
 * building a jansson tree, dumping and copying it cost a noticeable share of
 * a signature. The output is byte for byte what json_dumps(JSON_COMPACT |
 * JSON_PRESERVE_ORDER) made of the same record before (old logs and new
 * lines hash alike): members in a fixed order, NULL ones left out, strings
 * escaped by jansson 2.14's rules (dump.c), integers as %lld.
 */

/* A buffer that grew past this for a huge record is given back after it. */
#define AUDIT_BUF_KEEP (64 * 1024)

/* Makes room for more bytes after a->used. Lock held. */
static int
buf_reserve(struct stint_audit *a, size_t more)
{
	size_t cap;
	char *p;

	if (more <= a->cap - a->used)
		return 0;
	if (more > SIZE_MAX / 2 - a->used)
		return -1;
	for (cap = a->cap > 0 ? a->cap : 1024; cap - a->used < more; cap *= 2)
		;
	if ((p = realloc(a->buf, cap)) == NULL)
		return -1;
	a->buf = p;
	a->cap = cap;
	return 0;
}

static int
put(struct stint_audit *a, const char *s, size_t n)
{
	if (buf_reserve(a, n) != 0)
		return -1;
	memcpy(a->buf + a->used, s, n);
	a->used += n;
	return 0;
}

#define PUT_LIT(a, lit) put((a), (lit), sizeof(lit) - 1)

/* json_int_t as jansson prints it ("%lld"), without printf's cost. */
static int
put_int(struct stint_audit *a, json_int_t v)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	unsigned long long u =
		v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	return put(a, p, (size_t)(tmp + sizeof(tmp) - p));
}

/*
 * Length of the UTF-8 sequence starting with the byte >= 0x80 at s, or 0 if
 * it is not valid: jansson's utf8_check_first/utf8_check_full rules (no
 * continuation or C0/C1/F5..FF lead, no truncation, no overlong form, no
 * surrogate, nothing above U+10FFFF). json_string() refused exactly these.
 */
static size_t
utf8_len(const unsigned char *s, size_t avail)
{
	uint32_t cp, min;
	size_t len;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len > avail)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * Escapes s[0..n] into out (room for 6n bytes) as jansson dumps a string
 * without JSON_ENSURE_ASCII/JSON_ESCAPE_SLASH: '"' and '\\' backslashed,
 * \b \f \n \r \t, other bytes below 0x20 as \u00XX (uppercase hex), all
 * else (0x7f, '/', U+2028, any valid UTF-8) as is. With replace, each byte
 * >= 0x80 is written as '?'; without, invalid UTF-8 returns NULL (what was
 * written is garbage). Returns the end of the output.
 */
static char *
escape(char *out, const unsigned char *s, size_t n, bool replace)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i = 0, k;
	unsigned char c;

	while (i < n) {
		c = s[i];
		if (c >= 0x80) {
			if (replace) {
				*out++ = '?';
				i++;
				continue;
			}
			if ((k = utf8_len(s + i, n - i)) == 0)
				return NULL;
			memcpy(out, s + i, k);
			out += k;
			i += k;
			continue;
		}
		i++;
		if (c >= 0x20 && c != '"' && c != '\\') {
			*out++ = (char)c;
			continue;
		}
		*out++ = '\\';
		switch (c) {
		case '"':
		case '\\':
			*out++ = (char)c;
			break;
		case '\b':
			*out++ = 'b';
			break;
		case '\f':
			*out++ = 'f';
			break;
		case '\n':
			*out++ = 'n';
			break;
		case '\r':
			*out++ = 'r';
			break;
		case '\t':
			*out++ = 't';
			break;
		default:
			memcpy(out, "u00", 3);
			out[3] = hex[c >> 4];
			out[4] = hex[c & 0xf];
			out += 5;
			break;
		}
	}
	return out;
}

/*
 * Appends key (the literal `,"name":`) and value as a JSON string, unless
 * value is NULL. Bytes that are not UTF-8 (an executable path can hold any)
 * become '?' rather than losing the record: a string with any invalid
 * sequence has every byte >= 0x80 replaced, as set_string did with jansson.
 */
static int
put_string(struct stint_audit *a, const char *key, size_t keylen,
	   const char *value)
{
	const unsigned char *s = (const unsigned char *)value;
	size_t n;
	char *start, *end;

	if (value == NULL)
		return 0;
	n = strlen(value);
	if (n > (SIZE_MAX / 2 - keylen - 2) / 6 ||
	    buf_reserve(a, keylen + 6 * n + 2) != 0)
		return -1;
	start = a->buf + a->used;
	memcpy(start, key, keylen);
	start[keylen] = '"';
	start += keylen + 1;
	if ((end = escape(start, s, n, false)) == NULL)
		end = escape(start, s, n, true);
	*end++ = '"';
	a->used = (size_t)(end - a->buf);
	return 0;
}

#define PUT_STRING(a, key, value)                                              \
	put_string((a), (key), sizeof(key) - 1, (value))

/* Appends 32 bytes as a JSON string of lowercase hex (never escaped). */
static int
put_hex32(struct stint_audit *a, const char *key, size_t keylen,
	  const uint8_t *bytes)
{
	if (buf_reserve(a, keylen + 64 + 3) != 0)
		return -1;
	memcpy(a->buf + a->used, key, keylen);
	a->buf[a->used + keylen] = '"';
	/* Writes 64 digits and a NUL, which the closing quote overwrites. */
	stint_hex_encode(bytes, 32, a->buf + a->used + keylen + 1);
	a->buf[a->used + keylen + 65] = '"';
	a->used += keylen + 66;
	return 0;
}

#define PUT_HEX32(a, key, bytes) put_hex32((a), (key), sizeof(key) - 1, (bytes))

/*
 * "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (UTC). gmtime_r and strftime run once per
 * second: the seconds part is cached in a (lock held), the microseconds
 * are written by hand. Same text as strftime + "%.19s.%06dZ".
 */
static int
format_time(struct stint_audit *a, const struct timespec *when, char out[32])
{
	struct timespec ts;
	struct tm tm;
	char base[24];
	size_t n;
	int usec;

	if (when != NULL)
		ts = *when;
	else if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return -1;
	if (a->when_len == 0 || ts.tv_sec != a->when_sec) {
		if (gmtime_r(&ts.tv_sec, &tm) == NULL ||
		    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
			return -1;
		n = strnlen(base, 19);
		memcpy(a->when, base, n);
		a->when_len = n;
		a->when_sec = ts.tv_sec;
	}
	/* tv_nsec < 1e9, so six digits. */
	usec = (int)(ts.tv_nsec / 1000) % 1000000;
	memcpy(out, a->when, a->when_len);
	n = a->when_len;
	out[n++] = '.';
	for (int i = 5; i >= 0; i--, usec /= 10)
		out[n + (size_t)i] = (char)('0' + usec % 10);
	n += 6;
	out[n++] = 'Z';
	out[n] = '\0';
	return 0;
}

/* The peer's identity facts (ident, docs/identity.md): those known only. */
static int
put_peer_facts(struct stint_audit *a, const struct stint_peer *p)
{
	if (p->exe_sha256[0] != '\0' &&
	    PUT_STRING(a, ",\"exe_sha256\":", p->exe_sha256) != 0)
		return -1;
	if (p->cgroup[0] != '\0' &&
	    PUT_STRING(a, ",\"cgroup\":", p->cgroup) != 0)
		return -1;
	if (p->unit[0] != '\0' && PUT_STRING(a, ",\"unit\":", p->unit) != 0)
		return -1;
	if (p->lsm_label[0] != '\0' &&
	    PUT_STRING(a, ",\"lsm_label\":", p->lsm_label) != 0)
		return -1;
	if (p->pidfd_ino != 0 && (PUT_LIT(a, ",\"pidfd_ino\":") != 0 ||
				  put_int(a, (json_int_t)p->pidfd_ino) != 0))
		return -1;
	return 0;
}

/* ,"matched":["uid","exe",...]: the agent's selectors the peer matched. */
static int
put_matched(struct stint_audit *a, unsigned matched)
{
	const char *sep = "";
	unsigned i;

	if (matched == 0)
		return 0;
	if (PUT_LIT(a, ",\"matched\":[") != 0)
		return -1;
	for (i = 0; i < STINT_SEL_M_COUNT; i++) {
		if ((matched & (1u << i)) == 0)
			continue;
		if (put(a, sep, strlen(sep)) != 0 ||
		    PUT_STRING(a, "", stint_sel_bit_name(1u << i)) != 0)
			return -1;
		sep = ",";
	}
	return PUT_LIT(a, "]");
}

/*
 * Serialises the record for the current seq/prev (lock held) into a
 * complete line with its hash and "\n", in a->buf[0..*len].
 */
static int
build_line(struct stint_audit *a, const struct stint_audit_event *ev,
	   size_t *len, uint8_t hash[32])
{
	char when[32], hex[65];

	a->used = 0;
	if (format_time(a, ev->when, when) != 0)
		return -1;
	if (PUT_LIT(a, "{\"seq\":") != 0 ||
	    put_int(a, (json_int_t)a->seq) != 0 ||
	    PUT_STRING(a, ",\"time\":", when) != 0 ||
	    PUT_STRING(a, ",\"event\":", ev->event) != 0 ||
	    PUT_STRING(a, ",\"agent\":", ev->agent) != 0 ||
	    PUT_STRING(a, ",\"task\":", ev->task) != 0)
		return -1;
	if (ev->peer != NULL &&
	    (PUT_LIT(a, ",\"peer\":{\"pid\":") != 0 ||
	     put_int(a, (json_int_t)ev->peer->pid) != 0 ||
	     PUT_LIT(a, ",\"uid\":") != 0 ||
	     put_int(a, (json_int_t)ev->peer->uid) != 0 ||
	     PUT_STRING(a, ",\"exe\":", ev->peer->exe) != 0 ||
	     put_peer_facts(a, ev->peer) != 0 ||
	     put_matched(a, ev->matched) != 0 || PUT_LIT(a, "}") != 0))
		return -1;
	if (PUT_STRING(a, ",\"mechanism\":", ev->mechanism) != 0)
		return -1;
	if (ev->input_sha256 != NULL &&
	    PUT_HEX32(a, ",\"input_sha256\":", ev->input_sha256) != 0)
		return -1;
	if (PUT_STRING(a, ",\"decision\":", ev->decision) != 0 ||
	    PUT_STRING(a, ",\"reason\":", ev->reason) != 0 ||
	    PUT_STRING(a, ",\"detail\":", ev->detail) != 0 ||
	    PUT_HEX32(a, ",\"prev\":", a->prev) != 0)
		return -1;

	/* hash = SHA-256(body + "}"), body being all written so far. */
	if (stint_audit_record_hash(a->buf, a->used, hash) != 0)
		return -1;
	stint_hex_encode(hash, 32, hex);
	if (PUT_LIT(a, HASH_PREFIX) != 0 || put(a, hex, 64) != 0 ||
	    PUT_LIT(a, "\"}\n") != 0)
		return -1;
	*len = a->used;
	return 0;
}

/*
 * Writes the whole line or nothing: short writes are retried, and if the
 * write fails part-way the partial line is cut off again so that the next
 * record still chains onto an intact file. Lock held.
 */
static int
write_line(struct stint_audit *a, const char *line, size_t len)
{
	size_t done = 0;
	ssize_t n;
	int e;

	while (done < len) {
		n = write(a->fd, line + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		done += (size_t)n;
	}
	a->size += (off_t)len;
	return 0;
fail:
	e = n < 0 ? errno : EIO;
	if (done > 0 && ftruncate(a->fd, a->size) != 0) {
		/* A torn line stays in the log: no later record could
		 * chain onto it, so stop appending altogether. */
		log_err("audit log: cannot remove a partial record: %s",
			strerror(errno));
		audit_mark_failed(a, e);
	}
	errno = e;
	return -1;
}

/* Builds and writes one record, advancing seq and prev. Lock held.
 * Returns 0, or -1 with errno set; *wake says the sync thread needs a
 * signal (outside the lock). */
int
audit_append_locked(struct stint_audit *a, const struct stint_audit_event *ev,
		    bool *wake)
{
	uint8_t hash[32];
	size_t len = 0;
	int e = 0, r = -1;

	if (a->failed != 0 && audit_recover_locked(a) != 0) {
		e = a->failed;
		goto out;
	}
	if (build_line(a, ev, &len, hash) != 0) {
		e = ENOMEM;
		goto out;
	}
	if (write_line(a, a->buf, len) != 0) {
		e = errno;
		goto out;
	}
	stint_audit_fwd_send(a->fwd, ev, a->seq, hash, a->buf, len);
	a->seq++;
	memcpy(a->prev, hash, 32);
	if (a->sync == STINT_SYNC_BATCH && !a->dirty) {
		a->dirty = true;
		*wake = true;
	}
	r = 0;
out:
	if (a->cap > AUDIT_BUF_KEEP) {
		/* One huge record should not pin its buffer for good. */
		free(a->buf);
		a->buf = NULL;
		a->cap = 0;
	}
	if (r != 0)
		errno = e;
	return r;
}

/* fdatasync with the lock held on entry and released on return; the
 * descriptor cannot be closed by a rotation meanwhile. */
int
audit_sync_unlock(struct stint_audit *a)
{
	off_t upto = a->size;
	unsigned gen = a->generation;
	int e, r;

	pthread_rwlock_rdlock(&a->fd_lock);
	pthread_mutex_unlock(&a->lock);
	r = fdatasync(a->fd);
	e = errno;
	pthread_rwlock_unlock(&a->fd_lock);
	if (r == 0) {
		pthread_mutex_lock(&a->lock);
		audit_synced_to(a, upto, gen);
		pthread_mutex_unlock(&a->lock);
		return 0;
	}
	log_err("audit log: fdatasync failed: %s; refusing further records",
		strerror(e));
	pthread_mutex_lock(&a->lock);
	audit_mark_failed(a, e);
	pthread_mutex_unlock(&a->lock);
	errno = e;
	return -1;
}

int
stint_audit_append(struct stint_audit *a, const struct stint_audit_event *ev)
{
	bool wake = false;
	int r;

	if (a == NULL || ev == NULL || ev->event == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&a->lock);
	r = audit_append_locked(a, ev, &wake);
	if (r == 0 && a->sync == STINT_SYNC_ALWAYS) {
		/* Outside the lock, so concurrent appenders share syncs. */
		return audit_sync_unlock(a);
	}
	pthread_mutex_unlock(&a->lock);
	if (wake && a->syncer_running)
		pthread_cond_signal(&a->wake);
	return r;
}

void
stint_audit_head(struct stint_audit *a, uint64_t *seq, uint8_t hash[32])
{
	stint_audit_head_at(a, seq, hash, NULL);
}

void
stint_audit_head_at(struct stint_audit *a, uint64_t *seq, uint8_t hash[32],
		    uint64_t *offset)
{
	pthread_mutex_lock(&a->lock);
	if (seq != NULL)
		*seq = a->seq - 1;
	if (hash != NULL)
		memcpy(hash, a->prev, 32);
	if (offset != NULL)
		*offset = (uint64_t)a->size;
	pthread_mutex_unlock(&a->lock);
}

const char *
stint_audit_path(const struct stint_audit *a)
{
	return a->path;
}

/* --- checkpoints ----------------------------------------------------------
 */

void
stint_audit_set_signer(struct stint_audit *a, stint_audit_sign_fn fn, void *ctx,
		       const uint8_t spki_sha256[32])
{
	pthread_mutex_lock(&a->lock);
	a->sign = fn;
	a->sign_ctx = ctx;
	if (spki_sha256 != NULL)
		stint_hex_encode(spki_sha256, 32, a->sign_key);
	pthread_mutex_unlock(&a->lock);
}

int
stint_audit_checkpoint_message(uint64_t seq, const uint8_t hash[32],
			       uint64_t nv, char *out, size_t cap)
{
	char hex[65];
	int n;

	stint_hex_encode(hash, 32, hex);
	if (nv != 0)
		n = snprintf(out, cap,
			     STINT_AUDIT_CHECKPOINT_PREFIX "%llu:%s:nv=%llu",
			     (unsigned long long)seq, hex,
			     (unsigned long long)nv);
	else
		n = snprintf(out, cap, STINT_AUDIT_CHECKPOINT_PREFIX "%llu:%s",
			     (unsigned long long)seq, hex);
	return n > 0 && (size_t)n < cap ? n : -1;
}

/* Writes a checkpoint of the current head (lock held). */
int
audit_checkpoint_locked(struct stint_audit *a, bool *wake, char *err,
			size_t errlen)
{
	char msg[128], hex[65], *detail = NULL, *p;
	uint8_t sig[STINT_AUDIT_SIG_MAX];
	size_t sig_len = sizeof(sig), cap;
	uint64_t seq = a->seq - 1, nv = 0;
	char nvs[32] = "";
	int n, r = -1;

	/* nv: the counter moves first, so a checkpoint never carries a value
	 * the TPM has not reached; a crash before the record is written
	 * leaves the TPM one ahead of the log, which start accepts. */
	if (a->advance != NULL) {
		if (a->nv_unwritten == 0 &&
		    a->advance(a->advance_ctx, &a->nv_unwritten, err, errlen) !=
			    0) {
			a->nv_unwritten = 0;
			return -1;
		}
		nv = a->nv_unwritten;
		snprintf(nvs, sizeof(nvs), " nv=%llu", (unsigned long long)nv);
	}
	if ((n = stint_audit_checkpoint_message(seq, a->prev, nv, msg,
						sizeof(msg))) < 0 ||
	    a->sign(a->sign_ctx, (const uint8_t *)msg, (size_t)n, sig, &sig_len,
		    err, errlen) != 0)
		return -1;
	stint_hex_encode(a->prev, 32, hex);
	cap = 128 + 64 + 64 + 2 * sig_len + sizeof(nvs);
	if ((detail = malloc(cap)) == NULL) {
		audit_set_err(err, errlen, "out of memory");
		return -1;
	}
	n = snprintf(detail, cap,
		     "seq=%llu hash=%s%s key=%s sig=", (unsigned long long)seq,
		     hex, nvs, a->sign_key);
	p = detail + n;
	for (size_t i = 0; i < sig_len; i++, p += 2)
		snprintf(p, 3, "%02x", sig[i]);
	{
		struct stint_audit_event ev = {.event = "audit-checkpoint",
					       .decision = "allow",
					       .detail = detail};

		if (audit_append_locked(a, &ev, wake) != 0) {
			audit_set_err(err, errlen, "cannot write: %s",
				      strerror(errno));
			goto out;
		}
	}
	a->checkpointed = seq;
	a->nv_unwritten = 0;
	r = 0;
out:
	free(detail);
	return r;
}

int
stint_audit_checkpoint(struct stint_audit *a, bool force, char *err,
		       size_t errlen)
{
	bool wake = false;
	int r = 0;

	pthread_mutex_lock(&a->lock);
	if (a->sign == NULL) {
		pthread_mutex_unlock(&a->lock);
		audit_set_err(err, errlen, "no checkpoint signer");
		return -1;
	}
	/* An idle log gets no new checkpoints: the last one still covers
	 * everything but itself. */
	if (!force && a->seq - 1 <= a->checkpointed + 1) {
		pthread_mutex_unlock(&a->lock);
		return 0;
	}
	if (audit_checkpoint_locked(a, &wake, err, errlen) != 0) {
		pthread_mutex_unlock(&a->lock);
		return -1;
	}
	/* Checkpoints are rare: sync them in every mode. */
	r = audit_sync_unlock(a);
	if (r != 0)
		audit_set_err(err, errlen, "fdatasync: %s", strerror(errno));
	return r;
}

/* --- the anchor -----------------------------------------------------------
 */

/* Reads the line that ends (with its "\n") at offset end, or the first line
 * when end is 0; checks its hash and reads its seq and prev. */
int
audit_record_at(struct stint_audit *a, off_t end, uint64_t *seq,
		uint8_t hash[32], uint8_t prev[32])
{
	char *line = NULL, *nl;
	json_t *root = NULL, *jseq;
	const char *p;
	off_t start = 0;
	size_t len;
	int r = -1;

	if (end == 0) {
		len = a->size < AUDIT_MAX_LINE ? (size_t)a->size
					       : AUDIT_MAX_LINE;
		if (len == 0 || (line = audit_read_at(a->fd, 0, len)) == NULL ||
		    (nl = memchr(line, '\n', len)) == NULL)
			goto out;
		len = (size_t)(nl - line);
	} else {
		if (end > a->size || find_last_line(a->fd, end, &start) != 0)
			goto out;
		len = (size_t)(end - 1 - start);
		if ((line = audit_read_at(a->fd, start, len + 1)) == NULL ||
		    line[len] != '\n')
			goto out;
	}
	if (stint_audit_check_line(line, len, hash) != 0)
		goto out;
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	jseq = json_object_get(root, "seq");
	p = json_string_value(json_object_get(root, "prev"));
	if (!json_is_integer(jseq) || p == NULL || strlen(p) != 64 ||
	    stint_hex_decode(p, prev, 32) != 0)
		goto out;
	*seq = (uint64_t)json_integer_value(jseq);
	r = 0;
out:
	json_decref(root);
	free(line);
	return r;
}

int
stint_audit_check_anchor(struct stint_audit *a, uint64_t seq,
			 const uint8_t hash[32], uint64_t offset, char *err,
			 size_t errlen)
{
	uint8_t h[32], prev[32];
	uint64_t s, head;
	int r = -1;

	pthread_mutex_lock(&a->lock);
	head = a->seq - 1;
	if (head < seq) {
		audit_set_err(
			err, errlen,
			"audit log %s ends at seq %llu, but state.db records "
			"that stintd wrote up to seq %llu: records were "
			"removed "
			"from the end (truncated) or the log was replaced",
			a->path, (unsigned long long)head,
			(unsigned long long)seq);
		goto out;
	}
	if (offset > 0 && offset <= (uint64_t)a->size &&
	    audit_record_at(a, (off_t)offset, &s, h, prev) == 0 && s == seq &&
	    memcmp(h, hash, 32) == 0) {
		r = 0;
		goto out;
	}
	/* Rotated after the head was recorded: the new file's first record
	 * continues from it. */
	if (audit_record_at(a, 0, &s, h, prev) == 0 && s == seq + 1 &&
	    memcmp(prev, hash, 32) == 0) {
		r = 0;
		goto out;
	}
	audit_set_err(
		err, errlen,
		"audit log %s does not hold the record seq %llu that "
		"state.db says stintd wrote (its hash differs or it is "
		"missing): the log was edited and re-chained, or replaced",
		a->path, (unsigned long long)seq);
out:
	pthread_mutex_unlock(&a->lock);
	return r;
}

void
stint_audit_close(struct stint_audit *a)
{
	if (a == NULL)
		return;
	if (a->syncer_running) {
		pthread_mutex_lock(&a->lock);
		a->stop = true;
		pthread_mutex_unlock(&a->lock);
		pthread_cond_signal(&a->wake);
		pthread_join(a->syncer, NULL);
		pthread_cond_destroy(&a->wake);
	}
	if (fdatasync(a->fd) != 0)
		log_err("audit log: fdatasync at close failed: %s",
			strerror(errno));
	close(a->fd);
	stint_audit_fwd_close(a->fwd);
	pthread_mutex_destroy(&a->lock);
	pthread_rwlock_destroy(&a->fd_lock);
	free(a->buf);
	free(a->tail);
	free(a);
}

int
stint_audit_set_forward(struct stint_audit *a, enum stint_audit_fwd_kind kind,
			const char *socket_path, char *err, size_t errlen)
{
	struct stint_audit_fwd *f;

	if (stint_audit_fwd_open(kind, socket_path, &f, err, errlen) != 0)
		return -1;
	pthread_mutex_lock(&a->lock);
	stint_audit_fwd_close(a->fwd);
	a->fwd = f;
	pthread_mutex_unlock(&a->lock);
	return 0;
}
