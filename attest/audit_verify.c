/*
 * Offline audit log verifier (`stint audit verify`). Streams the log line by
 * line and checks, for each record, the hash over the exact bytes on disk,
 * then seq and prev against the record before it; JSON is parsed only to
 * read seq and prev. Reports the first bad line and why.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "attest/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/sha256.h"
#include "common/hex.h"

#define HASH_PREFIX     ",\"hash\":\""
#define HASH_PREFIX_LEN (sizeof(HASH_PREFIX) - 1)
#define HASH_SUFFIX_LEN (HASH_PREFIX_LEN + 64 + 2) /* ,"hash":"<hex>"} */
/* A record is a few hundred bytes; a longer line is not one. */
#define MAX_LINE   (1024 * 1024)
#define READ_CHUNK (64 * 1024)

/* Reads lines of at most MAX_LINE bytes, NUL bytes and all. */
struct line_reader {
	int fd;
	char *buf;
	size_t cap, start, end;
	bool eof;
};

enum line_status { LINE_OK, LINE_EOF, LINE_TOO_LONG, LINE_IO_ERROR };

/* Sets *line and *len (without "\n") and *newline (false only for a last line
 * that was cut off). */
static enum line_status
next_line(struct line_reader *r, const char **line, size_t *len, bool *newline)
{
	char *nl;
	ssize_t n;

	for (;;) {
		nl = memchr(r->buf + r->start, '\n', r->end - r->start);
		if (nl != NULL) {
			*line = r->buf + r->start;
			*len = (size_t)(nl - *line);
			*newline = true;
			r->start += *len + 1;
			return *len > MAX_LINE ? LINE_TOO_LONG : LINE_OK;
		}
		if (r->end - r->start > MAX_LINE)
			return LINE_TOO_LONG;
		if (r->eof) {
			if (r->end == r->start)
				return LINE_EOF;
			*line = r->buf + r->start;
			*len = r->end - r->start;
			*newline = false;
			r->start = r->end;
			return LINE_OK;
		}
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		}
		n = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return LINE_IO_ERROR;
		if (n == 0)
			r->eof = true;
		r->end += (size_t)n;
	}
}

int
stint_audit_record_hash(const char *body, size_t n, uint8_t out[32])
{
	return stint_sha256(body, n, "}", 1, out);
}

static bool
is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return true;
}

int
stint_audit_check_line(const char *line, size_t len, uint8_t hash[32])
{
	const char *suffix;
	uint8_t want[32];
	char hex[65];

	if (len < HASH_SUFFIX_LEN + 1)
		return STINT_AUDIT_LINE_SHORT;
	suffix = line + len - HASH_SUFFIX_LEN;
	if (memcmp(suffix, HASH_PREFIX, HASH_PREFIX_LEN) != 0 ||
	    !is_lower_hex(suffix + HASH_PREFIX_LEN, 64) ||
	    memcmp(suffix + HASH_PREFIX_LEN + 64, "\"}", 2) != 0)
		return STINT_AUDIT_LINE_NO_HASH;
	/* stint_hex_decode wants exactly the digits, NUL-terminated. */
	memcpy(hex, suffix + HASH_PREFIX_LEN, 64);
	hex[64] = '\0';
	if (stint_hex_decode(hex, want, 32) != 0 ||
	    stint_audit_record_hash(line, len - HASH_SUFFIX_LEN, hash) != 0)
		return STINT_AUDIT_LINE_ERROR;
	return memcmp(hash, want, 32) == 0 ? STINT_AUDIT_LINE_OK
					   : STINT_AUDIT_LINE_MISMATCH;
}

static void bad(struct stint_audit_report *rep, uint64_t line, const char *fmt,
		...) __attribute__((format(printf, 3, 4)));

static void
bad(struct stint_audit_report *rep, uint64_t line, const char *fmt, ...)
{
	char why[220];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	rep->bad_line = line;
	if (line > 0)
		snprintf(rep->reason, sizeof(rep->reason),
			 "line %" PRIu64 ": %s", line, why);
	else
		snprintf(rep->reason, sizeof(rep->reason), "%s", why);
}

/* State carried from one record to the next. */
struct chain {
	const struct stint_audit_verify_opts *opts;
	uint8_t ak_id[32]; /* SHA-256 of opts->ak's SPKI */
	uint64_t checkpoints, checkpointed, checkpoint_at;
	bool first_file;
	uint64_t first_seq;
	uint64_t lineno;
	uint64_t seq;     /* of the last good record, 0 before the first */
	uint8_t hash[32]; /* of the last good record, zeros before the first */
	/* The anchor's record, once seen. */
	bool anchor_seen;
	uint64_t anchor_line;
	uint8_t anchor_hash[32];
};

/* The value of "name=" in a checkpoint's detail, copied into out. */
static int
detail_field(const char *detail, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name), len;
	const char *p = detail, *end;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == detail || p[-1] == ' ') && p[nl] == '=') {
			p += nl + 1;
			end = strchr(p, ' ');
			len = end != NULL ? (size_t)(end - p) : strlen(p);
			if (len >= cap)
				return -1;
			memcpy(out, p, len);
			out[len] = '\0';
			return 0;
		}
		p += nl;
	}
	return -1;
}

int
stint_audit_cp_parse(const char *detail, struct stint_audit_cp *cp)
{
	char seqs[24], hashhex[65], nvs[24];

	memset(cp, 0, sizeof(*cp));
	if (detail == NULL || detail_field(detail, "seq", seqs, sizeof(seqs)) ||
	    detail_field(detail, "hash", hashhex, sizeof(hashhex)) ||
	    detail_field(detail, "key", cp->key, sizeof(cp->key)) ||
	    detail_field(detail, "sig", cp->sig, sizeof(cp->sig)) ||
	    strlen(hashhex) != 64 || stint_hex_decode(hashhex, cp->hash, 32) ||
	    sscanf(seqs, "%" SCNu64, &cp->seq) != 1)
		return -1;
	/* nv: the TPM audit counter, on the TPM backend */
	if (detail_field(detail, "nv", nvs, sizeof(nvs)) == 0) {
		if (sscanf(nvs, "%" SCNu64, &cp->nv) != 1 || cp->nv == 0)
			return -1;
		cp->has_nv = true;
	}
	return 0;
}

bool
stint_audit_cp_sig_ok(EVP_PKEY *ak, const struct stint_audit_cp *cp)
{
	uint8_t sig[STINT_AUDIT_SIG_MAX];
	size_t n = strlen(cp->sig) / 2;
	char msg[160];
	EVP_MD_CTX *md;
	bool ok = false;
	int len;

	len = stint_audit_checkpoint_message(
		cp->seq, cp->hash, cp->has_nv ? cp->nv : 0, msg, sizeof(msg));
	if (len < 0 || n == 0 || n > sizeof(sig) || strlen(cp->sig) % 2 != 0 ||
	    stint_hex_decode(cp->sig, sig, n) != 0 ||
	    (md = EVP_MD_CTX_new()) == NULL)
		return false;
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, ak) == 1 &&
	     EVP_DigestVerify(md, sig, n, (const uint8_t *)msg, (size_t)len) ==
		     1;
	EVP_MD_CTX_free(md);
	return ok;
}

/*
 * A checkpoint covers the record before it: its seq and hash must be the
 * chain's, and with a key its signature must verify. A log edited and
 * re-chained before a checkpoint fails here, since no one without the
 * attestation key can sign the new hash. The TPM audit counter (nv=) of
 * successive checkpoints must increase.
 */
static int
check_checkpoint(struct chain *c, json_t *root, struct stint_audit_report *rep)
{
	const char *detail = json_string_value(json_object_get(root, "detail"));
	struct stint_audit_cp cp;
	char want[65];

	if (stint_audit_cp_parse(detail, &cp) != 0) {
		bad(rep, c->lineno, "malformed checkpoint");
		return 1;
	}
	if (cp.seq != c->seq || memcmp(cp.hash, c->hash, 32) != 0) {
		bad(rep, c->lineno,
		    "checkpoint of seq %" PRIu64
		    " does not match the records before it (log edited and "
		    "re-chained)",
		    cp.seq);
		return 1;
	}
	if (c->opts != NULL && c->opts->ak != NULL) {
		stint_hex_encode(c->ak_id, 32, want);
		if (strcmp(cp.key, want) != 0) {
			bad(rep, c->lineno,
			    "checkpoint signed by another key (%.16s..., not "
			    "the given attestation key)",
			    cp.key);
			return 1;
		}
		if (!stint_audit_cp_sig_ok(c->opts->ak, &cp)) {
			bad(rep, c->lineno,
			    "checkpoint signature does not verify (forged, or "
			    "the log was re-chained)");
			return 1;
		}
	}
	if (cp.has_nv) {
		if (rep->nv_checkpoints > 0 && cp.nv <= rep->nv_last) {
			bad(rep, c->lineno,
			    "checkpoint carries TPM audit counter %" PRIu64
			    ", not above the previous checkpoint's %" PRIu64
			    " (checkpoints replayed or reordered)",
			    cp.nv, rep->nv_last);
			return 1;
		}
		if (rep->nv_checkpoints++ == 0)
			rep->nv_first = cp.nv;
		rep->nv_last = cp.nv;
	}
	c->checkpoints++;
	c->checkpointed = cp.seq;
	c->checkpoint_at = cp.seq + 1;
	return 0;
}

/*
 * Checks one line against the chain so far. Returns 0 when it is a good
 * next record, 1 (report filled in) when it is not, -1 on no memory.
 */
static int
check_record(struct chain *c, const char *line, size_t len, bool newline,
	     const struct stint_audit_anchor *anchor,
	     struct stint_audit_report *rep)
{
	const char *prevhex, *event;
	uint8_t hash[32], prev[32];
	json_t *root = NULL, *jseq, *jprev;
	json_int_t seq;
	bool rotated;
	int r = 1;

	if (!newline) {
		bad(rep, c->lineno, "truncated record (tail cut)");
		return 1;
	}
	switch (stint_audit_check_line(line, len, hash)) {
	case STINT_AUDIT_LINE_OK:
		break;
	case STINT_AUDIT_LINE_SHORT:
		bad(rep, c->lineno,
		    "too short to be a record (not a Stint audit record)");
		return 1;
	case STINT_AUDIT_LINE_NO_HASH:
		bad(rep, c->lineno,
		    "does not end with a hash member (record altered or not "
		    "a Stint audit record)");
		return 1;
	case STINT_AUDIT_LINE_MISMATCH:
		bad(rep, c->lineno, "hash mismatch (record altered)");
		return 1;
	default:
		return -1;
	}

	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root)) {
		bad(rep, c->lineno, "not a JSON object");
		goto out;
	}
	jseq = json_object_get(root, "seq");
	jprev = json_object_get(root, "prev");
	if (!json_is_integer(jseq) || json_integer_value(jseq) < 1) {
		bad(rep, c->lineno, "no valid seq");
		goto out;
	}
	seq = json_integer_value(jseq);
	event = json_string_value(json_object_get(root, "event"));
	rotated = event != NULL && strcmp(event, "audit-rotate") == 0;
	/* The first file may start with the link to a file not given. */
	if (c->lineno == 1 && c->first_file && seq != 1 && !rotated) {
		bad(rep, c->lineno,
		    "first record has seq %lld, expected 1 (records removed "
		    "from the start)",
		    (long long)seq);
		goto out;
	}
	if (c->lineno == 1 && !c->first_file && !rotated) {
		bad(rep, c->lineno,
		    "does not continue the previous file (no audit-rotate "
		    "record: files out of order, or not rotated from it)");
		goto out;
	}
	if (c->lineno == 1 && c->first_file && seq != 1) {
		/* Continues a file that is not given: take its link. */
		c->seq = (uint64_t)seq - 1;
		c->first_seq = (uint64_t)seq;
	}
	if ((c->lineno > 1 || !c->first_file) && (uint64_t)seq != c->seq + 1) {
		bad(rep, c->lineno,
		    "seq %lld follows %" PRIu64
		    " (record removed or reordered)",
		    (long long)seq, c->seq);
		goto out;
	}
	prevhex = json_string_value(jprev);
	if (prevhex == NULL || strlen(prevhex) != 64 ||
	    !is_lower_hex(prevhex, 64) ||
	    stint_hex_decode(prevhex, prev, 32) != 0) {
		bad(rep, c->lineno, "no valid prev");
		goto out;
	}
	if (c->lineno == 1 && c->first_file && seq != 1) {
		memcpy(c->hash, prev, 32);
	} else if (memcmp(prev, c->hash, 32) != 0) {
		if (c->lineno == 1 && !c->first_file)
			bad(rep, c->lineno,
			    "prev does not match the previous file's last "
			    "hash");
		else if (c->lineno == 1)
			bad(rep, c->lineno,
			    "prev of the first record is not all zeros");
		else
			bad(rep, c->lineno,
			    "prev does not match line %" PRIu64 "'s hash",
			    c->lineno - 1);
		goto out;
	}

	if (event != NULL && strcmp(event, "audit-checkpoint") == 0 &&
	    check_checkpoint(c, root, rep) != 0)
		goto out;
	c->seq = (uint64_t)seq;
	memcpy(c->hash, hash, 32);
	if (anchor != NULL && anchor->set && c->seq == anchor->seq) {
		c->anchor_seen = true;
		c->anchor_line = c->lineno;
		memcpy(c->anchor_hash, hash, 32);
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

/*
 * The anchor is stintd's head (seq and hash of the last record it wrote).
 * The log must reach it and hold exactly that record there; records after
 * it are allowed, since stintd may append between fetching its head and
 * the log being read, and they chain from it anyway.
 */
static int
check_anchor(const struct chain *c, const struct stint_audit_anchor *anchor,
	     uint64_t records, struct stint_audit_report *rep)
{
	if (anchor == NULL || !anchor->set || anchor->seq == 0)
		return 0;
	if (c->seq < anchor->seq) {
		bad(rep, records + 1,
		    "log ends at seq %" PRIu64
		    " but stintd's head is seq %" PRIu64
		    " (records removed from the tail)",
		    c->seq, anchor->seq);
		return 1;
	}
	if (!c->anchor_seen || memcmp(c->anchor_hash, anchor->hash, 32) != 0) {
		bad(rep, c->anchor_line,
		    "record seq %" PRIu64 " is not the one stintd wrote (its "
		    "hash differs from stintd's head: log rewritten)",
		    anchor->seq);
		return 1;
	}
	return 0;
}

/* One file of the chain; 0 good so far, 1 bad, -1 unreadable. */
static int
verify_one(const char *path, struct chain *c,
	   const struct stint_audit_anchor *anchor,
	   struct stint_audit_report *rep)
{
	struct line_reader rd = {.fd = -1};
	enum line_status st;
	const char *line;
	size_t len;
	bool newline;
	int r = -1, k;

	c->lineno = 0;
	if ((rd.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(rep->reason, sizeof(rep->reason), "%s: %s", path,
			 strerror(errno));
		return -1;
	}
	rd.cap = MAX_LINE + READ_CHUNK + 1;
	if ((rd.buf = malloc(rd.cap)) == NULL) {
		snprintf(rep->reason, sizeof(rep->reason), "out of memory");
		goto out;
	}
	for (;;) {
		st = next_line(&rd, &line, &len, &newline);
		if (st == LINE_EOF)
			break;
		c->lineno++;
		if (st == LINE_IO_ERROR) {
			snprintf(rep->reason, sizeof(rep->reason),
				 "%s: read error at line %" PRIu64 ": %s", path,
				 c->lineno, strerror(errno));
			goto out;
		}
		if (st == LINE_TOO_LONG) {
			bad(rep, c->lineno, "longer than 1 MiB (not a record)");
			r = 1;
			goto out;
		}
		k = check_record(c, line, len, newline, anchor, rep);
		if (k < 0) {
			snprintf(rep->reason, sizeof(rep->reason),
				 "out of memory");
			goto out;
		}
		if (k > 0) {
			r = 1;
			goto out;
		}
		rep->records++;
		rep->last_seq = c->seq;
		memcpy(rep->last_hash, c->hash, 32);
	}
	r = 0;
out:
	if (r != 0)
		rep->bad_file = path;
	free(rd.buf);
	close(rd.fd);
	return r;
}

static int
ak_id(EVP_PKEY *ak, uint8_t out[32])
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(ak, &der), r;

	if (n <= 0)
		return -1;
	r = EVP_Digest(der, (size_t)n, out, NULL, EVP_sha256(), NULL);
	OPENSSL_free(der);
	return r == 1 ? 0 : -1;
}

int
stint_audit_verify_files(const char *const *paths, size_t n,
			 const struct stint_audit_verify_opts *opts,
			 struct stint_audit_report *rep)
{
	const struct stint_audit_anchor *anchor = opts ? opts->anchor : NULL;
	struct chain c;
	int r = 0;

	memset(rep, 0, sizeof(*rep));
	memset(&c, 0, sizeof(c));
	c.opts = opts;
	if (opts != NULL && opts->ak != NULL && ak_id(opts->ak, c.ak_id) != 0) {
		snprintf(rep->reason, sizeof(rep->reason),
			 "cannot read the attestation key");
		return -1;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		c.first_file = i == 0;
		r = verify_one(paths[i], &c, anchor, rep);
	}
	rep->first_seq =
		c.first_seq != 0 ? c.first_seq : (rep->records ? 1 : 0);
	rep->checkpoints = c.checkpoints;
	rep->checkpoints_checked = opts != NULL && opts->ak != NULL;
	rep->checkpointed = c.checkpointed;
	rep->unpinned =
		c.checkpoint_at != 0 ? c.seq - c.checkpoint_at : rep->records;
	if (r != 0)
		return r;
	if (check_anchor(&c, anchor, rep->records, rep) != 0) {
		rep->bad_file = n > 0 ? paths[n - 1] : NULL;
		return 1;
	}
	if (rep->checkpoints_checked && rep->unpinned > 0 &&
	    !opts->allow_unpinned_tail) {
		bad(rep, 0,
		    "the last %" PRIu64 " records (after seq %" PRIu64
		    ") are covered by no checkpoint: the tail was cut (or "
		    "this is a copy of a running log: pass "
		    "--allow-unpinned-tail)",
		    rep->unpinned, c.checkpoint_at);
		rep->bad_file = n > 0 ? paths[n - 1] : NULL;
		return 1;
	}
	return 0;
}

int
stint_audit_verify_file(const char *path,
			const struct stint_audit_anchor *anchor,
			struct stint_audit_report *rep)
{
	struct stint_audit_verify_opts opts = {.anchor = anchor};

	return stint_audit_verify_files(&path, 1, &opts, rep);
}
