/*
 * nv: the audit log's side of the TPM anchor (audit_anchor.c). Each
 * checkpoint advances a TPM NV counter first and carries its value; at
 * start stintd finds the last such checkpoint in the current file, read
 * backwards from the end, and compares it with the TPM.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "attest/audit.h"
#include "attest/audit_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#define REV_CHUNK 65536

void
stint_audit_set_counter(struct stint_audit *a, stint_audit_counter_fn fn,
			void *ctx, uint64_t pending)
{
	pthread_mutex_lock(&a->lock);
	a->advance = fn;
	a->advance_ctx = ctx;
	a->nv_unwritten = pending;
	pthread_mutex_unlock(&a->lock);
}

/* Reads a file's lines from the end: buf holds the bytes [start, start +
 * len) not yet returned, ending with a line's "\n". */
struct rev {
	int fd;
	off_t start;
	char *buf;
	size_t len, cap;
};

/* The line before the ones returned so far (without its "\n"), its
 * offset in *at: 0, 1 at the start of the file, -1 on a read error or a
 * line over AUDIT_MAX_LINE. The line is valid until the next call. */
static int
rev_prev(struct rev *r, char **line, size_t *n, off_t *at)
{
	char *p, *nb;
	size_t want, from;
	ssize_t got;

	for (;;) {
		if (r->len > 0) {
			if (r->buf[r->len - 1] != '\n')
				return -1;
			p = r->len > 1 ? memrchr(r->buf, '\n', r->len - 1)
				       : NULL;
			if (p != NULL || r->start == 0) {
				from = p != NULL ? (size_t)(p - r->buf) + 1 : 0;
				*line = r->buf + from;
				*n = r->len - 1 - from;
				*at = r->start + (off_t)from;
				r->len = from;
				return 0;
			}
		} else if (r->start == 0) {
			return 1;
		}
		if (r->len > AUDIT_MAX_LINE)
			return -1;
		want = r->start < REV_CHUNK ? (size_t)r->start : REV_CHUNK;
		if (r->len + want > r->cap) {
			if ((nb = realloc(r->buf, r->len + want)) == NULL)
				return -1;
			r->buf = nb;
			r->cap = r->len + want;
		}
		memmove(r->buf + want, r->buf, r->len);
		got = pread(r->fd, r->buf, want, r->start - (off_t)want);
		if (got != (ssize_t)want)
			return -1;
		r->start -= (off_t)want;
		r->len += want;
	}
}

/* 1 when line is a checkpoint carrying a counter (parsed into *cp), 0
 * when it is another record, -1 when it is not a valid record. */
static int
nv_checkpoint_of(const char *line, size_t n, struct stint_audit_cp *cp)
{
	const char *ev;
	json_t *root;
	uint8_t h[32];
	int r = 0;

	if (memmem(line, n, "\"audit-checkpoint\"", 18) == NULL)
		return 0;
	if (stint_audit_check_line(line, n, h) != STINT_AUDIT_LINE_OK)
		return -1;
	if ((root = json_loadb(line, n, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return -1;
	ev = json_string_value(json_object_get(root, "event"));
	if (ev != NULL && strcmp(ev, "audit-checkpoint") == 0) {
		if (stint_audit_cp_parse(
			    json_string_value(json_object_get(root, "detail")),
			    cp) != 0)
			r = -1;
		else
			r = cp->has_nv ? 1 : 0;
	}
	json_decref(root);
	return r;
}

int
stint_audit_last_nv_checkpoint(struct stint_audit *a, struct stint_audit_cp *cp,
			       char *err, size_t errlen)
{
	struct rev rv = {.fd = -1};
	uint8_t h[32], prev[32];
	uint64_t seq;
	char *line;
	size_t n;
	off_t at;
	int r, k;

	pthread_mutex_lock(&a->lock);
	rv.fd = a->fd;
	rv.start = a->size;
	while ((r = rev_prev(&rv, &line, &n, &at)) == 0) {
		if ((k = nv_checkpoint_of(line, n, cp)) < 0) {
			audit_set_err(err, errlen,
				      "audit log %s: the record at byte %lld "
				      "is not a valid checkpoint",
				      a->path, (long long)at);
			r = -1;
			goto out;
		}
		if (k == 1)
			break;
	}
	if (r != 0) {
		if (r < 0)
			audit_set_err(err, errlen, "cannot read %s backwards",
				      a->path);
		goto out;
	}
	/* The checkpoint covers the record before it. */
	if (at == 0 || audit_record_at(a, at, &seq, h, prev) != 0 ||
	    seq != cp->seq || memcmp(h, cp->hash, 32) != 0) {
		audit_set_err(err, errlen,
			      "audit log %s: the checkpoint of seq %llu does "
			      "not match the record before it (log edited)",
			      a->path, (unsigned long long)cp->seq);
		r = -1;
	}
out:
	pthread_mutex_unlock(&a->lock);
	free(rv.buf);
	return r;
}
