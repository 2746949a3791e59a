/*
 * A parsed or to-be-written wire message: one CBOR map with small unsigned
 * integer keys (include/stint/wire.h). Getters check presence and type and
 * return STINT_WIRE_* codes; they never trust a length they did not check.
 * Built on libcbor; nothing outside common/ sees libcbor types.
 */
#ifndef STINT_COMMON_MSG_H
#define STINT_COMMON_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/proto.h"

struct stint_msg;

/* Strict parse: exactly one definite-length map, uint keys, no duplicate
 * keys, no trailing bytes, nesting at most 4 deep. */
int stint_msg_parse(const uint8_t *buf, size_t len, struct stint_msg **out);
/* The libcbor path alone, without the flat fast path (msg.c): for tests
 * and fuzzers that check the two agree. */
int stint_msg_parse_full(const uint8_t *buf, size_t len,
			 struct stint_msg **out);
int stint_msg_serialize_full(const struct stint_msg *m, uint8_t **out,
			     size_t *len);
struct stint_msg *stint_msg_new(void);
void stint_msg_free(struct stint_msg *m);
int stint_msg_serialize(const struct stint_msg *m, uint8_t **out, size_t *len);

bool stint_msg_has(const struct stint_msg *m, uint64_t key);
int stint_msg_get_uint(const struct stint_msg *m, uint64_t key, uint64_t *v);
int stint_msg_get_bool(const struct stint_msg *m, uint64_t key, bool *v);
/* Copies into buf (NUL-terminated); STINT_WIRE_RANGE if it does not fit or
 * holds a NUL byte. */
int stint_msg_get_text(const struct stint_msg *m, uint64_t key, char *buf,
		       size_t cap);
/* Borrowed: valid while m lives. */
int stint_msg_get_bytes(const struct stint_msg *m, uint64_t key,
			const uint8_t **ptr, size_t *len);
int stint_msg_get_uint_array(const struct stint_msg *m, uint64_t key,
			     uint64_t *arr, size_t cap, size_t *n);
/* Arrays of maps (LIST, AGENT_LIST) and of text (AUDIT_TAIL). */
int stint_msg_get_array_len(const struct stint_msg *m, uint64_t key, size_t *n);
/* Borrowed child map; freed with its parent. */
int stint_msg_get_map_at(const struct stint_msg *m, uint64_t key, size_t i,
			 const struct stint_msg **child);
int stint_msg_get_text_at(const struct stint_msg *m, uint64_t key, size_t i,
			  char *buf, size_t cap);

int stint_msg_put_uint(struct stint_msg *m, uint64_t key, uint64_t v);
int stint_msg_put_bool(struct stint_msg *m, uint64_t key, bool v);
int stint_msg_put_text(struct stint_msg *m, uint64_t key, const char *s);
int stint_msg_put_bytes(struct stint_msg *m, uint64_t key, const uint8_t *p,
			size_t len);
int stint_msg_put_uint_array(struct stint_msg *m, uint64_t key,
			     const uint64_t *arr, size_t n);
/* Appends child to the array under key (created on first use); takes
 * ownership of child in every case. */
int stint_msg_append_map(struct stint_msg *m, uint64_t key,
			 struct stint_msg *child);
int stint_msg_append_text(struct stint_msg *m, uint64_t key, const char *s);

/* Reply helpers shared by every reply. */
struct stint_msg *stint_msg_reply_ok(void);
int stint_msg_get_reply_head(const struct stint_msg *m,
			     struct stint_reply_head *head);

#endif
