/*
 * Audit log writer: one JSON object per line, each carrying the hash of the
 * previous line, so that altering, removing or reordering a record breaks
 * the chain (see audit.h for the format and audit_verify.c for the check).
 *
 * A record is written with one write(2) on an O_APPEND descriptor under a
 * mutex that also guards seq and prev: concurrent appenders serialise into
 * one chain, and a failed write leaves the file and the chain as they were.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_condattr_setclock, O_CLOEXEC, flock */
#endif

#include "attest/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/hex.h"
#include "common/log.h"

/* The hash member closes every line: ,"hash":"<64 hex>"}\n */
#define HASH_PREFIX     ",\"hash\":\""
#define HASH_PREFIX_LEN (sizeof(HASH_PREFIX) - 1)
#define HASH_SUFFIX_LEN (HASH_PREFIX_LEN + 64 + 2) /* without the "\n" */
/* Longest line stint_audit_open reads back; audit_verify.c uses the same. */
#define AUDIT_MAX_LINE (1024 * 1024)

struct stint_audit {
	int fd;
	enum stint_audit_sync sync;

	pthread_mutex_t lock; /* seq, prev, size, writes, dirty, failed */
	uint64_t seq;         /* of the next record */
	uint8_t prev[32];     /* hash of the last record written */
	off_t size;           /* file length after the last record */
	int failed;           /* errno that made the log unusable, or 0 */

	/* BATCH: the sync thread waits on wake while nothing is dirty. */
	pthread_cond_t wake;
	pthread_t syncer;
	bool syncer_running;
	bool dirty;
	bool stop;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
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
static char *
read_at(int fd, off_t off, size_t len)
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
		if ((buf = read_at(fd, from, want)) == NULL)
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
		set_err(err, errlen, "audit log %s: cannot read: %s", path,
			strerror(errno));
		return -1;
	}
	if (last != '\n') {
		set_err(err, errlen,
			"audit log %s: the last record is incomplete (torn "
			"write); " ROTATE_ADVICE,
			path, path);
		return -1;
	}
	if (find_last_line(a->fd, size, &start) != 0) {
		set_err(err, errlen,
			"audit log %s: cannot read the last record: "
			"%s; " ROTATE_ADVICE,
			path,
			errno == EFBIG ? "longer than 1 MiB" : strerror(errno),
			path);
		return -1;
	}
	len = (size_t)(size - 1 - start); /* without the "\n" */
	if ((line = read_at(a->fd, start, len)) == NULL) {
		set_err(err, errlen, "audit log %s: cannot read: %s", path,
			strerror(errno));
		goto out;
	}
	if (stint_audit_check_line(line, len, a->prev) != 0) {
		set_err(err, errlen,
			"audit log %s: the last record has no valid hash "
			"(damaged or not a Stint audit log); " ROTATE_ADVICE,
			path, path);
		goto out;
	}
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	seq = json_is_object(root) ? json_object_get(root, "seq") : NULL;
	if (!json_is_integer(seq) || json_integer_value(seq) < 1) {
		set_err(err, errlen,
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
		pthread_mutex_unlock(&a->lock);
		if (fdatasync(a->fd) != 0) {
			int e = errno;

			/* After a failed sync Linux may drop the dirty pages:
			 * records callers were told are written may be lost,
			 * so refuse all further appends (fail closed). */
			log_err("audit log: fdatasync failed: %s; refusing "
				"further records",
				strerror(e));
			pthread_mutex_lock(&a->lock);
			if (a->failed == 0)
				a->failed = e;
			continue;
		}
		pthread_mutex_lock(&a->lock);
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
		set_err(err, errlen, "audit log %s: %s", "?", "bad argument");
		return -1;
	}
	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		set_err(err, errlen, "audit log %s: %s", path, "out of memory");
		return -1;
	}
	a->fd = -1;
	a->sync = sync;
	a->seq = 1;
	if (pthread_mutex_init(&a->lock, NULL) != 0) {
		free(a);
		set_err(err, errlen, "audit log %s: %s", path, "mutex init");
		return -1;
	}

	/* O_RDWR: the tail is read back to continue the chain. */
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		     0600);
	if (a->fd < 0) {
		set_err(err, errlen, "audit log %s: cannot open: %s", path,
			strerror(errno));
		goto out;
	}
	/* Two writers would fork the chain: one stintd per log. */
	if (flock(a->fd, LOCK_EX | LOCK_NB) != 0) {
		set_err(err, errlen, "audit log %s: %s", path,
			errno == EWOULDBLOCK
				? "in use by another process (is another "
				  "stintd running on it?)"
				: strerror(errno));
		goto out;
	}
	if (fstat(a->fd, &st) != 0) {
		set_err(err, errlen, "audit log %s: cannot stat: %s", path,
			strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "audit log %s: %s", path,
			"not a regular file");
		goto out;
	}
	if ((st.st_mode & 077) != 0)
		log_warn("audit log %s is readable by others (mode %03o); "
			 "chmod 600 it",
			 path, (unsigned int)(st.st_mode & 0777));
	a->size = st.st_size;
	if (st.st_size > 0 && load_tail(a, path, st.st_size, err, errlen) != 0)
		goto out;
	if (sync == STINT_SYNC_BATCH && start_syncer(a) != 0) {
		set_err(err, errlen, "audit log %s: %s", path,
			"cannot start the sync thread");
		goto out;
	}
	*out = a;
	a = NULL;
	r = 0;
out:
	if (a != NULL) {
		if (a->fd >= 0)
			close(a->fd);
		pthread_mutex_destroy(&a->lock);
		free(a);
	}
	return r;
}

/* Adds key: value unless value is NULL. Bytes that are not UTF-8 (an
 * executable path can hold any) become '?' rather than losing the record. */
static int
set_string(json_t *o, const char *key, const char *value)
{
	json_t *s;
	char *copy;

	if (value == NULL)
		return 0;
	if ((s = json_string(value)) == NULL) {
		if ((copy = strdup(value)) == NULL)
			return -1;
		for (char *p = copy; *p != '\0'; p++) {
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		}
		s = json_string(copy);
		free(copy);
	}
	return json_object_set_new(o, key, s);
}

static int
set_int(json_t *o, const char *key, json_int_t value)
{
	return json_object_set_new(o, key, json_integer(value));
}

static int
format_time(char out[32])
{
	struct timespec ts;
	struct tm tm;
	char base[24];

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 ||
	    gmtime_r(&ts.tv_sec, &tm) == NULL)
		return -1;
	if (strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return -1;
	/* tv_nsec < 1e9, so six digits; the int cast tells the compiler. */
	snprintf(out, 32, "%.19s.%06dZ", base,
		 (int)(ts.tv_nsec / 1000) % 1000000);
	return 0;
}

/*
 * Serialises the record for the current seq/prev (lock held) into a
 * complete line with its hash and "\n". The caller frees *line.
 */
static int
build_line(struct stint_audit *a, const struct stint_audit_event *ev,
	   char **line, size_t *len, uint8_t hash[32])
{
	json_t *o = NULL, *peer = NULL;
	char when[32], hex[65];
	char *body = NULL, *p;
	size_t n;
	int r = -1;

	if (format_time(when) != 0 || (o = json_object()) == NULL)
		goto out;
	if (set_int(o, "seq", (json_int_t)a->seq) != 0 ||
	    set_string(o, "time", when) != 0 ||
	    set_string(o, "event", ev->event) != 0 ||
	    set_string(o, "agent", ev->agent) != 0 ||
	    set_string(o, "task", ev->task) != 0)
		goto out;
	if (ev->peer != NULL) {
		if ((peer = json_object()) == NULL ||
		    set_int(peer, "pid", ev->peer->pid) != 0 ||
		    set_int(peer, "uid", ev->peer->uid) != 0 ||
		    set_string(peer, "exe", ev->peer->exe) != 0)
			goto out;
		if (json_object_set_new(o, "peer", peer) != 0) {
			peer = NULL; /* set_new consumed it */
			goto out;
		}
		peer = NULL;
	}
	if (set_string(o, "mechanism", ev->mechanism) != 0)
		goto out;
	if (ev->input_sha256 != NULL) {
		stint_hex_encode(ev->input_sha256, 32, hex);
		if (set_string(o, "input_sha256", hex) != 0)
			goto out;
	}
	if (set_string(o, "decision", ev->decision) != 0 ||
	    set_string(o, "reason", ev->reason) != 0 ||
	    set_string(o, "detail", ev->detail) != 0)
		goto out;
	stint_hex_encode(a->prev, 32, hex);
	if (set_string(o, "prev", hex) != 0)
		goto out;

	/* Compact, ordered: the bytes hashed are the bytes written. */
	if ((body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto out;
	n = strlen(body);
	if (n < 2 || body[n - 1] != '}')
		goto out;
	/* hash = SHA-256(body), body being everything up to "}" inclusive. */
	if (stint_audit_record_hash(body, n - 1, hash) != 0)
		goto out;
	stint_hex_encode(hash, 32, hex);
	if ((p = malloc(n - 1 + HASH_SUFFIX_LEN + 2)) == NULL)
		goto out;
	memcpy(p, body, n - 1);
	memcpy(p + n - 1, HASH_PREFIX, HASH_PREFIX_LEN);
	memcpy(p + n - 1 + HASH_PREFIX_LEN, hex, 64);
	memcpy(p + n - 1 + HASH_PREFIX_LEN + 64, "\"}\n", 4);
	*line = p;
	*len = n - 1 + HASH_SUFFIX_LEN + 1;
	r = 0;
out:
	free(body);
	json_decref(peer);
	json_decref(o);
	return r;
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
		a->failed = e;
	}
	errno = e;
	return -1;
}

int
stint_audit_append(struct stint_audit *a, const struct stint_audit_event *ev)
{
	uint8_t hash[32];
	char *line = NULL;
	size_t len = 0;
	bool wake = false;
	int r = -1, e = 0;

	if (a == NULL || ev == NULL || ev->event == NULL) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&a->lock);
	if (a->failed != 0) {
		e = a->failed;
		goto out;
	}
	if (build_line(a, ev, &line, &len, hash) != 0) {
		e = ENOMEM;
		goto out;
	}
	if (write_line(a, line, len) != 0) {
		e = errno;
		goto out;
	}
	a->seq++;
	memcpy(a->prev, hash, 32);
	if (a->sync == STINT_SYNC_BATCH && !a->dirty) {
		a->dirty = true;
		wake = true;
	}
	r = 0;
out:
	pthread_mutex_unlock(&a->lock);
	free(line);
	if (wake)
		pthread_cond_signal(&a->wake);
	if (r == 0 && a->sync == STINT_SYNC_ALWAYS) {
		/* Outside the lock, so concurrent appenders share syncs. */
		if (fdatasync(a->fd) != 0) {
			e = errno;
			log_err("audit log: fdatasync failed: %s; refusing "
				"further records",
				strerror(e));
			pthread_mutex_lock(&a->lock);
			if (a->failed == 0)
				a->failed = e;
			pthread_mutex_unlock(&a->lock);
			r = -1;
		}
	}
	if (r != 0)
		errno = e;
	return r;
}

void
stint_audit_head(struct stint_audit *a, uint64_t *seq, uint8_t hash[32])
{
	pthread_mutex_lock(&a->lock);
	if (seq != NULL)
		*seq = a->seq - 1;
	if (hash != NULL)
		memcpy(hash, a->prev, 32);
	pthread_mutex_unlock(&a->lock);
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
	pthread_mutex_destroy(&a->lock);
	free(a);
}
