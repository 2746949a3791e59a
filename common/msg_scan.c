/*
 * The first pass of the wire codec (msg.c): a walk over a frame's raw bytes
 * with libcbor's streaming decoder that refuses anything outside the
 * protocol's shape before a single item is allocated: indefinite-length
 * items, tags, floats, null/undefined, negative integers, invalid or
 * NUL-holding text, nesting deeper than MSG_DEPTH_MAX, declared counts the
 * buffer cannot hold, and trailing bytes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cbor.h>

#include "common/msg.h"
#include "common/msg_scan.h"

/* --- pass 1: shape check over the raw bytes ------------------------------ */

struct scan {
	size_t left[MSG_DEPTH_MAX]; /* items still expected per open container
				     */
	size_t depth;
	size_t avail; /* bytes in the buffer: bounds any declared count */
	bool started, done, bad;
};

/* One complete item (scalar or container header) was seen. */
static void
scan_consume(struct scan *s)
{
	if (s->depth == 0) {
		s->bad = true;
		return;
	}
	s->left[s->depth - 1]--;
	while (s->depth > 0 && s->left[s->depth - 1] == 0)
		s->depth--;
	if (s->depth == 0)
		s->done = true;
}

static void
scan_scalar(struct scan *s)
{
	if (!s->started || s->done) {
		s->bad = true;
		return;
	}
	scan_consume(s);
}

static void
scan_open(struct scan *s, size_t items, bool is_map)
{
	if (s->done || (!s->started && !is_map) || s->depth >= MSG_DEPTH_MAX ||
	    items > s->avail) {
		s->bad = true;
		return;
	}
	if (!s->started) {
		s->started = true;
		if (items == 0) {
			s->done = true;
			return;
		}
		s->left[s->depth++] = items;
		return;
	}
	/* The container counts as one item of its parent. */
	s->left[s->depth - 1]--;
	if (items > 0) {
		s->left[s->depth++] = items;
		return;
	}
	while (s->depth > 0 && s->left[s->depth - 1] == 0)
		s->depth--;
	if (s->depth == 0)
		s->done = true;
}

static void
scan_bad(void *ctx)
{
	((struct scan *)ctx)->bad = true;
}

static void
scan_bad_u64(void *ctx, uint64_t v)
{
	(void)v;
	scan_bad(ctx);
}

static void
scan_bad_u32(void *ctx, uint32_t v)
{
	(void)v;
	scan_bad(ctx);
}

static void
scan_bad_u16(void *ctx, uint16_t v)
{
	(void)v;
	scan_bad(ctx);
}

static void
scan_bad_u8(void *ctx, uint8_t v)
{
	(void)v;
	scan_bad(ctx);
}

static void
scan_bad_float(void *ctx, float v)
{
	(void)v;
	scan_bad(ctx);
}

static void
scan_bad_double(void *ctx, double v)
{
	(void)v;
	scan_bad(ctx);
}

static void
scan_u8(void *ctx, uint8_t v)
{
	(void)v;
	scan_scalar(ctx);
}

static void
scan_u16(void *ctx, uint16_t v)
{
	(void)v;
	scan_scalar(ctx);
}

static void
scan_u32(void *ctx, uint32_t v)
{
	(void)v;
	scan_scalar(ctx);
}

static void
scan_u64(void *ctx, uint64_t v)
{
	(void)v;
	scan_scalar(ctx);
}

static void
scan_bool(void *ctx, bool v)
{
	(void)v;
	scan_scalar(ctx);
}

static void
scan_bytes(void *ctx, cbor_data p, size_t len)
{
	(void)p;
	(void)len;
	scan_scalar(ctx);
}

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
 * NUL is refused too: every text field ends up in a C string. */
bool
stint_utf8_ok(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		size_t n;
		uint32_t cp, min;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

static void
scan_text(void *ctx, cbor_data p, size_t len)
{
	if (!stint_utf8_ok(p, len)) {
		scan_bad(ctx);
		return;
	}
	scan_scalar(ctx);
}

static void
scan_array(void *ctx, size_t n)
{
	scan_open(ctx, n, false);
}

static void
scan_map(void *ctx, size_t n)
{
	struct scan *s = ctx;

	/* A map of n pairs holds 2n items, each at least one byte. */
	if (n > s->avail / 2) {
		s->bad = true;
		return;
	}
	scan_open(ctx, 2 * n, true);
}

static const struct cbor_callbacks scan_callbacks = {
	.uint8 = scan_u8,
	.uint16 = scan_u16,
	.uint32 = scan_u32,
	.uint64 = scan_u64,
	.negint8 = scan_bad_u8,
	.negint16 = scan_bad_u16,
	.negint32 = scan_bad_u32,
	.negint64 = scan_bad_u64,
	.byte_string_start = scan_bad, /* indefinite */
	.byte_string = scan_bytes,
	.string = scan_text,
	.string_start = scan_bad, /* indefinite */
	.indef_array_start = scan_bad,
	.array_start = scan_array,
	.indef_map_start = scan_bad,
	.map_start = scan_map,
	.tag = scan_bad_u64,
	.float2 = scan_bad_float,
	.float4 = scan_bad_float,
	.float8 = scan_bad_double,
	.undefined = scan_bad,
	.null = scan_bad,
	.boolean = scan_bool,
	.indef_break = scan_bad,
};

int
stint_msg_scan_shape(const uint8_t *buf, size_t len)
{
	struct scan s = {.avail = len};
	size_t pos = 0;

	while (pos < len && !s.done) {
		struct cbor_decoder_result r;

		r = cbor_stream_decode(buf + pos, len - pos, &scan_callbacks,
				       &s);
		if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || s.bad)
			return STINT_WIRE_MALFORMED;
		pos += r.read;
	}
	if (!s.done || pos != len)
		return STINT_WIRE_MALFORMED;
	return 0;
}
