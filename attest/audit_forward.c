/*
 * Forwarding audit records to log pipelines (audit_forward.h).
 *
 * Journal: the native protocol of systemd-journald.socket(8): one
 * datagram, one "NAME=value\n" per field, or for a value holding a
 * newline "NAME\n", its length as 64-bit little endian, the value, "\n".
 * Syslog: RFC 5424, "<PRI>1 TIME HOST stintd PID EVENT [stint@32473
 * ...] <record>", one datagram (as /dev/log expects).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "attest/audit_forward.h"
#include "common/hex.h"
#include "common/log.h"

/* RFC 5424 SD-ID: name@<private enterprise number>. 32473 is the number
 * RFC 5612 reserves for documentation; see docs/audit.md. */
#define SD_ID "stint@32473"

struct stint_audit_fwd {
	enum stint_audit_fwd_kind kind;
	int fd;
	struct sockaddr_un sa;
	socklen_t salen;
	char host[256];
	uint64_t dropped;
	bool failing; /* the last send failed: the next failure is quiet */
	/* The datagram being built, reused. */
	char *buf;
	size_t cap, used;
	bool oom;
};

static void
put(struct stint_audit_fwd *f, const void *s, size_t n)
{
	size_t want = f->used + n;

	if (f->oom)
		return;
	if (want > f->cap) {
		size_t cap = f->cap ? f->cap : 1024;
		char *nb;

		while (cap < want)
			cap *= 2;
		if ((nb = realloc(f->buf, cap)) == NULL) {
			f->oom = true;
			return;
		}
		f->buf = nb;
		f->cap = cap;
	}
	memcpy(f->buf + f->used, s, n);
	f->used += n;
}

static void
puts_(struct stint_audit_fwd *f, const char *s)
{
	put(f, s, strlen(s));
}

/* One journal field; values with a newline take the binary form. */
static void
journal_field(struct stint_audit_fwd *f, const char *name, const char *v,
	      size_t n)
{
	uint8_t le[8];

	if (v == NULL)
		return;
	puts_(f, name);
	if (memchr(v, '\n', n) == NULL) {
		put(f, "=", 1);
	} else {
		put(f, "\n", 1);
		for (int i = 0; i < 8; i++)
			le[i] = (uint8_t)((uint64_t)n >> (8 * i));
		put(f, le, 8);
	}
	put(f, v, n);
	put(f, "\n", 1);
}

static void
journal_str(struct stint_audit_fwd *f, const char *name, const char *v)
{
	if (v != NULL)
		journal_field(f, name, v, strlen(v));
}

static int
severity(const struct stint_audit_event *ev)
{
	return ev->decision != NULL && strcmp(ev->decision, "allow") != 0
		       ? LOG_NOTICE
		       : LOG_INFO;
}

static void
build_journal(struct stint_audit_fwd *f, const struct stint_audit_event *ev,
	      const char *seq, const char *hash, const char *line, size_t len)
{
	char num[32];

	journal_field(f, "MESSAGE", line, len);
	snprintf(num, sizeof(num), "%d", severity(ev));
	journal_str(f, "PRIORITY", num);
	snprintf(num, sizeof(num), "%d", LOG_AUTHPRIV >> 3);
	journal_str(f, "SYSLOG_FACILITY", num);
	journal_str(f, "SYSLOG_IDENTIFIER", "stintd");
	journal_str(f, "STINT_SEQ", seq);
	journal_str(f, "STINT_EVENT", ev->event);
	journal_str(f, "STINT_AGENT", ev->agent);
	journal_str(f, "STINT_TASK", ev->task);
	journal_str(f, "STINT_DECISION", ev->decision);
	journal_str(f, "STINT_REASON", ev->reason);
	journal_str(f, "STINT_MECHANISM", ev->mechanism);
	if (ev->peer != NULL) {
		snprintf(num, sizeof(num), "%ld", (long)ev->peer->pid);
		journal_str(f, "STINT_PEER_PID", num);
		snprintf(num, sizeof(num), "%lu", (unsigned long)ev->peer->uid);
		journal_str(f, "STINT_PEER_UID", num);
	}
	journal_str(f, "STINT_HASH", hash);
}

/* An RFC 5424 PARAM-VALUE: '"', '\' and ']' are escaped. */
static void
sd_param(struct stint_audit_fwd *f, const char *name, const char *v)
{
	if (v == NULL)
		return;
	put(f, " ", 1);
	puts_(f, name);
	put(f, "=\"", 2);
	for (; *v != '\0'; v++) {
		if (*v == '"' || *v == '\\' || *v == ']')
			put(f, "\\", 1);
		put(f, v, 1);
	}
	put(f, "\"", 1);
}

/* MSGID: 1 to 32 printable US-ASCII characters, else "-". */
static void
msgid(struct stint_audit_fwd *f, const char *event)
{
	size_t n = strlen(event);

	for (size_t i = 0; i < n; i++)
		if (event[i] <= ' ' || event[i] > '~')
			n = 0;
	if (n == 0 || n > 32)
		put(f, "-", 1);
	else
		put(f, event, n);
}

static void
build_syslog(struct stint_audit_fwd *f, const struct stint_audit_event *ev,
	     const char *seq, const char *hash, const char *line, size_t len)
{
	char head[160], stamp[32];
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(head, sizeof(head), "<%d>1 %s.%06ldZ ",
		 LOG_AUTHPRIV | severity(ev), stamp, now.tv_nsec / 1000);
	puts_(f, head);
	puts_(f, f->host);
	snprintf(head, sizeof(head), " stintd %ld ", (long)getpid());
	puts_(f, head);
	msgid(f, ev->event);
	puts_(f, " [" SD_ID);
	sd_param(f, "seq", seq);
	sd_param(f, "event", ev->event);
	sd_param(f, "agent", ev->agent);
	sd_param(f, "task", ev->task);
	sd_param(f, "decision", ev->decision);
	sd_param(f, "hash", hash);
	put(f, "] ", 2);
	put(f, line, len);
}

void
stint_audit_fwd_send(struct stint_audit_fwd *f,
		     const struct stint_audit_event *ev, uint64_t seq,
		     const uint8_t hash[32], const char *line, size_t len)
{
	char seqs[24], hex[65];
	ssize_t n;

	if (f == NULL)
		return;
	if (len > 0 && line[len - 1] == '\n')
		len--;
	snprintf(seqs, sizeof(seqs), "%llu", (unsigned long long)seq);
	stint_hex_encode(hash, 32, hex);
	f->used = 0;
	f->oom = false;
	if (f->kind == STINT_FWD_JOURNAL)
		build_journal(f, ev, seqs, hex, line, len);
	else
		build_syslog(f, ev, seqs, hex, line, len);
	if (f->oom) {
		errno = ENOMEM;
		n = -1;
	} else {
		/* MSG_DONTWAIT: a full receiver queue (EAGAIN) drops the
		 * copy instead of stalling the signature. */
		n = sendto(f->fd, f->buf, f->used, MSG_DONTWAIT | MSG_NOSIGNAL,
			   (struct sockaddr *)&f->sa, f->salen);
	}
	if (n == (ssize_t)f->used) {
		if (f->failing)
			log_info("audit forward to %s works again; %llu "
				 "record(s) dropped so far",
				 f->sa.sun_path,
				 (unsigned long long)f->dropped);
		f->failing = false;
		return;
	}
	f->dropped++;
	if (!f->failing)
		log_warn("audit forward to %s: %s; dropping copies until it "
			 "works again (the audit log file has every record)",
			 f->sa.sun_path,
			 n < 0 ? strerror(errno) : "short send");
	f->failing = true;
}

static void
host_name(char *out, size_t cap)
{
	if (gethostname(out, cap) != 0 || out[0] == '\0') {
		snprintf(out, cap, "-");
		return;
	}
	out[cap - 1] = '\0';
	/* RFC 5424 HOSTNAME: printable US-ASCII, no space. */
	for (char *p = out; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~')
			*p = '-';
}

int
stint_audit_fwd_open(enum stint_audit_fwd_kind kind, const char *socket_path,
		     struct stint_audit_fwd **out, char *err, size_t errlen)
{
	struct stint_audit_fwd *f;
	const char *path = socket_path;

	*out = NULL;
	if (kind == STINT_FWD_NONE)
		return 0;
	if (path == NULL || path[0] == '\0')
		path = kind == STINT_FWD_JOURNAL ? STINT_JOURNAL_SOCKET
						 : STINT_SYSLOG_SOCKET;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		snprintf(err, errlen, "audit forward: out of memory");
		return -1;
	}
	f->kind = kind;
	f->sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(f->sa.sun_path)) {
		snprintf(err, errlen, "audit forward_socket too long: %s",
			 path);
		free(f);
		return -1;
	}
	strcpy(f->sa.sun_path, path);
	f->salen = sizeof(f->sa);
	host_name(f->host, sizeof(f->host));
	f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (f->fd < 0) {
		snprintf(err, errlen, "audit forward: socket: %s",
			 strerror(errno));
		free(f);
		return -1;
	}
	*out = f;
	return 0;
}

uint64_t
stint_audit_fwd_dropped(const struct stint_audit_fwd *f)
{
	return f != NULL ? f->dropped : 0;
}

void
stint_audit_fwd_close(struct stint_audit_fwd *f)
{
	if (f == NULL)
		return;
	if (f->dropped > 0)
		log_warn("audit forward to %s: %llu record(s) were not "
			 "forwarded (the audit log file has them)",
			 f->sa.sun_path, (unsigned long long)f->dropped);
	close(f->fd);
	free(f->buf);
	free(f);
}
