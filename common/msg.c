/*
 * Strict CBOR map codec for the wire protocol.
 *
 * Parsing runs in two passes. The first walks the bytes with libcbor's
 * streaming decoder and rejects anything outside the protocol's shape
 * before a single item is allocated: indefinite-length items, tags, floats,
 * null/undefined, negative integers, invalid or NUL-holding text, nesting
 * deeper than MSG_DEPTH_MAX (msg_scan.c), declared counts the buffer cannot
 * hold, and trailing bytes. Only then does cbor_load build the item tree, so a
 * hostile frame can neither make libcbor allocate for items that are not there
 * nor recurse deeply when the tree is freed. The second pass checks map keys
 * (unsigned, no duplicates) and indexes every map by key.
 *
 * Flat messages (a map of at most FLAT_MAX scalars: unsigned integers,
 * definite byte and text strings, booleans; every head in its shortest
 * form) take a fast path that libcbor never sees: parsed, their entries
 * point into the message's copy of the bytes; built, put_uint/bool/bytes/
 * text keep the value in the entry, and serialization writes the bytes
 * directly, identical to what libcbor writes for the same message. This is
 * every SIGN request and reply (issue 14: libcbor's per-item allocations
 * were a large part of stintd's own cost per signature). The fast parser
 * accepts only what the libcbor path accepts with the same values; for
 * anything else (nesting, arrays, a non-shortest head, a duplicate key,
 * malformed input) it steps aside and the libcbor path decides.
 * stint_msg_parse_full and stint_msg_serialize_full run the libcbor path
 * alone, so that tests and fuzzers can compare the two.
 */
#include <stdlib.h>
#include <string.h>

#include <cbor.h>

#include "common/msg.h"
#include "common/msg_scan.h"

#define FLAT_MAX 16 /* entries of a map the fast path handles */

enum flat_kind { FLAT_NONE, FLAT_UINT, FLAT_BOOL, FLAT_BYTES, FLAT_TEXT };

struct entry {
	uint64_t key;
	/* Owned reference. NULL only for an array of maps built with
	 * stint_msg_append_map, whose elements live in maps[]. */
	cbor_item_t *val;
	/* For array values: one slot per element, non-NULL for map elements.
	 * For a map value: one slot holding it (validated, not exposed). */
	struct stint_msg **maps;
	size_t n_maps, cap_maps;
	/* A scalar held without libcbor (val and maps NULL): kind, the
	 * integer or boolean, or the string (into the parsed message's raw
	 * copy, or a copy of its own when owned). */
	uint8_t flat;
	bool owned;
	uint64_t u;
	const uint8_t *p;
	size_t plen;
};

struct stint_msg {
	struct entry *ents; /* sorted by key */
	size_t n, cap;
	cbor_item_t
		*root; /* parsed messages: the tree the entries point into */
	uint8_t raw[]; /* flat parsed messages: the bytes */
};

static const uint8_t empty_bytes[1];

/* --- pass 2: index maps by key ------------------------------------------- */

static void
entry_clear(struct entry *e)
{
	for (size_t i = 0; i < e->n_maps; i++)
		stint_msg_free(e->maps[i]);
	free(e->maps);
	if (e->val != NULL)
		cbor_decref(&e->val);
	if (e->owned)
		free((void *)e->p);
	memset(e, 0, sizeof(*e));
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

static int msg_from_map(cbor_item_t *map, struct stint_msg **out);

/* Every map anywhere in the tree obeys the same key rules. */
static int
check_nested(cbor_item_t *item, struct stint_msg **keep)
{
	int r = 0;

	if (cbor_isa_map(item)) {
		struct stint_msg *child = NULL;

		r = msg_from_map(item, &child);
		if (r == 0 && keep != NULL)
			*keep = child;
		else
			stint_msg_free(child);
		return r;
	}
	if (cbor_isa_array(item)) {
		cbor_item_t **el = cbor_array_handle(item);
		size_t n = cbor_array_size(item);

		for (size_t i = 0; i < n && r == 0; i++)
			r = check_nested(el[i], NULL);
	}
	return r;
}

static int
entry_index_value(struct entry *e)
{
	size_t n;
	cbor_item_t **el;
	int r;

	if (cbor_isa_map(e->val)) {
		e->maps = calloc(1, sizeof(*e->maps));
		if (e->maps == NULL)
			return STINT_WIRE_NOMEM;
		e->n_maps = e->cap_maps = 1;
		return check_nested(e->val, &e->maps[0]);
	}
	if (!cbor_isa_array(e->val))
		return 0;
	n = cbor_array_size(e->val);
	if (n == 0)
		return 0;
	e->maps = calloc(n, sizeof(*e->maps));
	if (e->maps == NULL)
		return STINT_WIRE_NOMEM;
	e->n_maps = e->cap_maps = n;
	el = cbor_array_handle(e->val);
	for (size_t i = 0; i < n; i++) {
		r = check_nested(el[i],
				 cbor_isa_map(el[i]) ? &e->maps[i] : NULL);
		if (r != 0)
			return r;
	}
	return 0;
}

static int
msg_from_map(cbor_item_t *map, struct stint_msg **out)
{
	struct stint_msg *m;
	struct cbor_pair *pairs = cbor_map_handle(map);
	size_t n = cbor_map_size(map);
	int r;

	*out = NULL;
	if (!cbor_map_is_definite(map))
		return STINT_WIRE_MALFORMED;
	m = stint_msg_new();
	if (m == NULL)
		return STINT_WIRE_NOMEM;
	if (n > 0) {
		m->ents = calloc(n, sizeof(*m->ents));
		if (m->ents == NULL) {
			r = STINT_WIRE_NOMEM;
			goto out;
		}
		m->cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		struct entry *e = &m->ents[m->n];

		if (!cbor_isa_uint(pairs[i].key)) {
			r = STINT_WIRE_MALFORMED;
			goto out;
		}
		e->key = cbor_get_int(pairs[i].key);
		e->val = cbor_incref(pairs[i].value);
		m->n++;
		if ((r = entry_index_value(e)) != 0)
			goto out;
	}
	if (m->n > 1)
		qsort(m->ents, m->n, sizeof(*m->ents), entry_cmp);
	for (size_t i = 1; i < m->n; i++) {
		if (m->ents[i].key == m->ents[i - 1].key) {
			r = STINT_WIRE_MALFORMED;
			goto out;
		}
	}
	*out = m;
	m = NULL;
	r = 0;
out:
	stint_msg_free(m);
	return r;
}

int
stint_msg_parse_full(const uint8_t *buf, size_t len, struct stint_msg **out)
{
	struct cbor_load_result res;
	cbor_item_t *root = NULL;
	int r;

	if (out == NULL)
		return STINT_WIRE_MALFORMED;
	*out = NULL;
	if (buf == NULL || len == 0)
		return STINT_WIRE_MALFORMED;
	if ((r = stint_msg_scan_shape(buf, len)) != 0)
		return r;
	memset(&res, 0, sizeof(res));
	root = cbor_load(buf, len, &res);
	if (root == NULL || res.error.code != CBOR_ERR_NONE) {
		r = res.error.code == CBOR_ERR_MEMERROR ? STINT_WIRE_NOMEM
							: STINT_WIRE_MALFORMED;
		goto out;
	}
	if (res.read != len || !cbor_isa_map(root)) {
		r = STINT_WIRE_MALFORMED;
		goto out;
	}
	if ((r = msg_from_map(root, out)) != 0)
		goto out;
	(*out)->root = root;
	root = NULL;
out:
	if (root != NULL)
		cbor_decref(&root);
	return r;
}

/* --- the flat fast path: parse ------------------------------------------ */

#define FLAT_DECLINE 1 /* not flat: the libcbor path decides */

/* One head (initial byte and argument) in its shortest form: returns its
 * length, or 0 for anything else (indefinite, reserved, non-shortest,
 * truncated). */
static size_t
flat_head(const uint8_t *b, size_t left, uint8_t *major, uint64_t *v)
{
	uint8_t ai;
	size_t n;

	if (left == 0)
		return 0;
	*major = b[0] >> 5;
	ai = b[0] & 0x1f;
	if (ai < 24) {
		*v = ai;
		return 1;
	}
	if (ai > 27)
		return 0;
	n = (size_t)1 << (ai - 24);
	if (left - 1 < n)
		return 0;
	*v = 0;
	for (size_t k = 1; k <= n; k++)
		*v = *v << 8 | b[k];
	if ((n == 1 && *v < 24) || (n == 2 && *v <= UINT8_MAX) ||
	    (n == 4 && *v <= UINT16_MAX) || (n == 8 && *v <= UINT32_MAX))
		return 0;
	return 1 + n;
}

/* One value at b: fills kind, u and the string's offset and length. */
static size_t
flat_value(const uint8_t *b, size_t left, struct entry *e)
{
	uint8_t major;
	uint64_t v;
	size_t h;

	if (left > 0 && (b[0] == 0xf4 || b[0] == 0xf5)) {
		e->flat = FLAT_BOOL;
		e->u = b[0] == 0xf5;
		return 1;
	}
	if ((h = flat_head(b, left, &major, &v)) == 0)
		return 0;
	if (major == 0) {
		e->flat = FLAT_UINT;
		e->u = v;
		return h;
	}
	if ((major != 2 && major != 3) || v > left - h)
		return 0;
	if (major == 3 && !stint_utf8_ok(b + h, (size_t)v))
		return 0;
	e->flat = major == 2 ? FLAT_BYTES : FLAT_TEXT;
	e->u = h; /* offset of the string from b, fixed below */
	e->plen = (size_t)v;
	return h + (size_t)v;
}

static int
parse_flat(const uint8_t *buf, size_t len, struct stint_msg **out)
{
	struct entry ents[FLAT_MAX];
	size_t offs[FLAT_MAX];
	struct stint_msg *m;
	uint8_t major;
	uint64_t n, key;
	size_t pos, h, i, j;

	if ((h = flat_head(buf, len, &major, &n)) == 0 || major != 5 ||
	    n > FLAT_MAX)
		return FLAT_DECLINE;
	pos = h;
	for (i = 0; i < n; i++) {
		struct entry e;
		size_t off;

		memset(&e, 0, sizeof(e));
		if ((h = flat_head(buf + pos, len - pos, &major, &key)) == 0 ||
		    major != 0)
			return FLAT_DECLINE;
		pos += h;
		if ((h = flat_value(buf + pos, len - pos, &e)) == 0)
			return FLAT_DECLINE;
		off = pos + (size_t)e.u;
		pos += h;
		e.key = key;
		/* Insert sorted; a duplicate key is the libcbor path's to
		 * refuse. */
		for (j = i; j > 0 && ents[j - 1].key > key; j--) {
			ents[j] = ents[j - 1];
			offs[j] = offs[j - 1];
		}
		if (j > 0 && ents[j - 1].key == key)
			return FLAT_DECLINE;
		ents[j] = e;
		offs[j] = off;
	}
	if (pos != len)
		return FLAT_DECLINE;
	if ((m = calloc(1, sizeof(*m) + len)) == NULL)
		return STINT_WIRE_NOMEM;
	if (n > 0 && (m->ents = calloc(n, sizeof(*m->ents))) == NULL) {
		free(m);
		return STINT_WIRE_NOMEM;
	}
	memcpy(m->raw, buf, len);
	for (i = 0; i < n; i++) {
		m->ents[i] = ents[i];
		if (ents[i].flat == FLAT_BYTES || ents[i].flat == FLAT_TEXT) {
			m->ents[i].p = m->raw + offs[i];
			m->ents[i].u = 0;
		}
	}
	m->n = m->cap = (size_t)n;
	*out = m;
	return 0;
}

int
stint_msg_parse(const uint8_t *buf, size_t len, struct stint_msg **out)
{
	int r;

	if (out == NULL)
		return STINT_WIRE_MALFORMED;
	*out = NULL;
	if (buf == NULL || len == 0)
		return STINT_WIRE_MALFORMED;
	if ((r = parse_flat(buf, len, out)) != FLAT_DECLINE)
		return r;
	return stint_msg_parse_full(buf, len, out);
}

struct stint_msg *
stint_msg_new(void)
{
	return calloc(1, sizeof(struct stint_msg));
}

void
stint_msg_free(struct stint_msg *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		entry_clear(&m->ents[i]);
	free(m->ents);
	if (m->root != NULL)
		cbor_decref(&m->root);
	free(m);
}

/* --- lookup and getters ----------------------------------------------------
 */

static struct entry *
find(const struct stint_msg *m, uint64_t key)
{
	size_t lo = 0, hi;

	if (m == NULL)
		return NULL;
	hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->ents[mid].key == key)
			return &m->ents[mid];
		if (m->ents[mid].key < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool
stint_msg_has(const struct stint_msg *m, uint64_t key)
{
	return find(m, key) != NULL;
}

int
stint_msg_get_uint(const struct stint_msg *m, uint64_t key, uint64_t *v)
{
	struct entry *e = find(m, key);

	if (e == NULL)
		return STINT_WIRE_MISSING;
	if (e->flat == FLAT_UINT) {
		*v = e->u;
		return 0;
	}
	if (e->val == NULL || !cbor_isa_uint(e->val))
		return STINT_WIRE_TYPE;
	*v = cbor_get_int(e->val);
	return 0;
}

int
stint_msg_get_bool(const struct stint_msg *m, uint64_t key, bool *v)
{
	struct entry *e = find(m, key);

	if (e == NULL)
		return STINT_WIRE_MISSING;
	if (e->flat == FLAT_BOOL) {
		*v = e->u != 0;
		return 0;
	}
	if (e->val == NULL || !cbor_is_bool(e->val))
		return STINT_WIRE_TYPE;
	*v = cbor_get_bool(e->val);
	return 0;
}

static int
text_copy_n(const uint8_t *p, size_t len, char *buf, size_t cap)
{
	if (cap == 0 || len > cap - 1 || (len > 0 && p == NULL) ||
	    (len > 0 && memchr(p, 0, len) != NULL))
		return STINT_WIRE_RANGE;
	if (len > 0)
		memcpy(buf, p, len);
	buf[len] = '\0';
	return 0;
}

static int
text_copy(const cbor_item_t *item, char *buf, size_t cap)
{
	if (item == NULL || !cbor_isa_string(item) ||
	    !cbor_string_is_definite(item))
		return STINT_WIRE_TYPE;
	return text_copy_n(cbor_string_handle(item), cbor_string_length(item),
			   buf, cap);
}

int
stint_msg_get_text(const struct stint_msg *m, uint64_t key, char *buf,
		   size_t cap)
{
	struct entry *e = find(m, key);

	if (e == NULL)
		return STINT_WIRE_MISSING;
	if (e->flat == FLAT_TEXT)
		return text_copy_n(e->p, e->plen, buf, cap);
	return text_copy(e->val, buf, cap);
}

int
stint_msg_get_bytes(const struct stint_msg *m, uint64_t key,
		    const uint8_t **ptr, size_t *len)
{
	struct entry *e = find(m, key);

	if (e == NULL)
		return STINT_WIRE_MISSING;
	if (e->flat == FLAT_BYTES) {
		*len = e->plen;
		*ptr = e->p;
	} else if (e->val == NULL || !cbor_isa_bytestring(e->val) ||
		   !cbor_bytestring_is_definite(e->val)) {
		return STINT_WIRE_TYPE;
	} else {
		*len = cbor_bytestring_length(e->val);
		*ptr = cbor_bytestring_handle(e->val);
	}
	/* Never hand out NULL: callers may memcpy from it. */
	if (*len == 0 || *ptr == NULL) {
		*ptr = empty_bytes;
		*len = 0;
	}
	return 0;
}

int
stint_msg_get_uint_array(const struct stint_msg *m, uint64_t key, uint64_t *arr,
			 size_t cap, size_t *n)
{
	struct entry *e = find(m, key);
	cbor_item_t **el;
	size_t size;

	if (e == NULL)
		return STINT_WIRE_MISSING;
	if (e->val == NULL || !cbor_isa_array(e->val))
		return STINT_WIRE_TYPE;
	size = cbor_array_size(e->val);
	if (size > cap)
		return STINT_WIRE_RANGE;
	el = cbor_array_handle(e->val);
	for (size_t i = 0; i < size; i++) {
		if (!cbor_isa_uint(el[i]))
			return STINT_WIRE_TYPE;
		arr[i] = cbor_get_int(el[i]);
	}
	*n = size;
	return 0;
}

int
stint_msg_get_array_len(const struct stint_msg *m, uint64_t key, size_t *n)
{
	struct entry *e = find(m, key);

	if (e == NULL)
		return STINT_WIRE_MISSING;
	if (e->flat != FLAT_NONE)
		return STINT_WIRE_TYPE;
	if (e->val == NULL) {
		*n = e->n_maps;
		return 0;
	}
	if (!cbor_isa_array(e->val))
		return STINT_WIRE_TYPE;
	*n = cbor_array_size(e->val);
	return 0;
}

int
stint_msg_get_map_at(const struct stint_msg *m, uint64_t key, size_t i,
		     const struct stint_msg **child)
{
	struct entry *e = find(m, key);
	size_t n;
	int r;

	if ((r = stint_msg_get_array_len(m, key, &n)) != 0)
		return r;
	if (i >= n)
		return STINT_WIRE_RANGE;
	if (i >= e->n_maps || e->maps[i] == NULL)
		return STINT_WIRE_TYPE;
	*child = e->maps[i];
	return 0;
}

int
stint_msg_get_text_at(const struct stint_msg *m, uint64_t key, size_t i,
		      char *buf, size_t cap)
{
	struct entry *e = find(m, key);

	if (e == NULL)
		return STINT_WIRE_MISSING;
	if (e->val == NULL || !cbor_isa_array(e->val))
		return STINT_WIRE_TYPE;
	if (i >= cbor_array_size(e->val))
		return STINT_WIRE_RANGE;
	return text_copy(cbor_array_handle(e->val)[i], buf, cap);
}

/* --- building ------------------------------------------------------------- */

/* The entry for key, created empty (and kept sorted) when absent. */
static struct entry *
entry_get(struct stint_msg *m, uint64_t key)
{
	struct entry *e = find(m, key);
	size_t i;

	if (e != NULL)
		return e;
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 8;
		struct entry *p = realloc(m->ents, cap * sizeof(*p));

		if (p == NULL)
			return NULL;
		m->ents = p;
		m->cap = cap;
	}
	for (i = m->n; i > 0 && m->ents[i - 1].key > key; i--)
		m->ents[i] = m->ents[i - 1];
	memset(&m->ents[i], 0, sizeof(m->ents[i]));
	m->ents[i].key = key;
	m->n++;
	return &m->ents[i];
}

/* Stores item under key, replacing any previous value; consumes item. */
static int
put_item(struct stint_msg *m, uint64_t key, cbor_item_t *item)
{
	struct entry *e;

	if (m == NULL || item == NULL) {
		if (item != NULL)
			cbor_decref(&item);
		return STINT_WIRE_NOMEM;
	}
	e = entry_get(m, key);
	if (e == NULL) {
		cbor_decref(&item);
		return STINT_WIRE_NOMEM;
	}
	entry_clear(e);
	e->key = key;
	e->val = item;
	return 0;
}

/* Smallest encoding: canonical and a few bytes shorter. */
static cbor_item_t *
build_uint(uint64_t v)
{
	if (v <= UINT8_MAX)
		return cbor_build_uint8((uint8_t)v);
	if (v <= UINT16_MAX)
		return cbor_build_uint16((uint16_t)v);
	if (v <= UINT32_MAX)
		return cbor_build_uint32((uint32_t)v);
	return cbor_build_uint64(v);
}

/* libcbor's builders memcpy from the source even for length 0; these never
 * pass it NULL and always give the item its own buffer. */
static cbor_item_t *
build_bytes(const uint8_t *p, size_t len)
{
	cbor_item_t *item = cbor_new_definite_bytestring();
	uint8_t *copy;

	if (item == NULL)
		return NULL;
	copy = malloc(len ? len : 1);
	if (copy == NULL) {
		cbor_decref(&item);
		return NULL;
	}
	if (len > 0)
		memcpy(copy, p, len);
	cbor_bytestring_set_handle(item, copy, len);
	return item;
}

static cbor_item_t *
build_text_n(const char *s, size_t len)
{
	cbor_item_t *item = cbor_new_definite_string();
	uint8_t *copy;

	if (item == NULL)
		return NULL;
	copy = malloc(len ? len : 1);
	if (copy == NULL) {
		cbor_decref(&item);
		return NULL;
	}
	if (len > 0)
		memcpy(copy, s, len);
	cbor_string_set_handle(item, copy, len);
	return item;
}

static cbor_item_t *
build_text(const char *s)
{
	return build_text_n(s, strlen(s));
}

/* Stores a scalar under key without libcbor (see the top), replacing any
 * previous value; strings are copied. */
static int
put_flat(struct stint_msg *m, uint64_t key, enum flat_kind kind, uint64_t u,
	 const uint8_t *p, size_t len)
{
	struct entry *e;
	uint8_t *copy = NULL;

	if (m == NULL)
		return STINT_WIRE_NOMEM;
	if (kind == FLAT_BYTES || kind == FLAT_TEXT) {
		if ((copy = malloc(len ? len : 1)) == NULL)
			return STINT_WIRE_NOMEM;
		if (len > 0)
			memcpy(copy, p, len);
	}
	if ((e = entry_get(m, key)) == NULL) {
		free(copy);
		return STINT_WIRE_NOMEM;
	}
	entry_clear(e);
	e->key = key;
	e->flat = (uint8_t)kind;
	e->u = u;
	e->p = copy;
	e->plen = len;
	e->owned = copy != NULL;
	return 0;
}

int
stint_msg_put_uint(struct stint_msg *m, uint64_t key, uint64_t v)
{
	return put_flat(m, key, FLAT_UINT, v, NULL, 0);
}

int
stint_msg_put_bool(struct stint_msg *m, uint64_t key, bool v)
{
	return put_flat(m, key, FLAT_BOOL, v, NULL, 0);
}

int
stint_msg_put_text(struct stint_msg *m, uint64_t key, const char *s)
{
	/* Refuse here what the peer's parser would refuse. */
	if (s == NULL || !stint_utf8_ok((const uint8_t *)s, strlen(s)))
		return STINT_WIRE_RANGE;
	return put_flat(m, key, FLAT_TEXT, 0, (const uint8_t *)s, strlen(s));
}

int
stint_msg_put_bytes(struct stint_msg *m, uint64_t key, const uint8_t *p,
		    size_t len)
{
	if (p == NULL && len > 0)
		return STINT_WIRE_RANGE;
	return put_flat(m, key, FLAT_BYTES, 0, p, len);
}

int
stint_msg_put_uint_array(struct stint_msg *m, uint64_t key, const uint64_t *arr,
			 size_t n)
{
	cbor_item_t *a;

	if (arr == NULL && n > 0)
		return STINT_WIRE_RANGE;
	a = cbor_new_definite_array(n);
	if (a == NULL)
		return STINT_WIRE_NOMEM;
	for (size_t i = 0; i < n; i++) {
		cbor_item_t *v = build_uint(arr[i]);
		bool ok = v != NULL && cbor_array_push(a, v);

		if (v != NULL)
			cbor_decref(&v);
		if (!ok) {
			cbor_decref(&a);
			return STINT_WIRE_NOMEM;
		}
	}
	return put_item(m, key, a);
}

int
stint_msg_append_map(struct stint_msg *m, uint64_t key, struct stint_msg *child)
{
	struct entry *e;
	int r;

	if (m == NULL || child == NULL) {
		r = STINT_WIRE_NOMEM;
		goto out;
	}
	if ((e = entry_get(m, key)) == NULL) {
		r = STINT_WIRE_NOMEM;
		goto out;
	}
	if (e->val != NULL || e->flat != FLAT_NONE) {
		r = STINT_WIRE_TYPE;
		goto out;
	}
	if (e->n_maps == e->cap_maps) {
		size_t cap = e->cap_maps ? 2 * e->cap_maps : 8;
		struct stint_msg **p = realloc(e->maps, cap * sizeof(*p));

		if (p == NULL) {
			r = STINT_WIRE_NOMEM;
			goto out;
		}
		e->maps = p;
		e->cap_maps = cap;
	}
	e->maps[e->n_maps++] = child;
	return 0;
out:
	stint_msg_free(child);
	return r;
}

int
stint_msg_append_text(struct stint_msg *m, uint64_t key, const char *s)
{
	struct entry *e;
	cbor_item_t *t;
	bool ok;

	if (m == NULL)
		return STINT_WIRE_NOMEM;
	if (s == NULL || !stint_utf8_ok((const uint8_t *)s, strlen(s)))
		return STINT_WIRE_RANGE;
	if ((e = find(m, key)) != NULL && e->val == NULL)
		return STINT_WIRE_TYPE; /* an array of maps */
	if (e == NULL) {
		/* Indefinite while growing; serialization writes it definite.
		 */
		cbor_item_t *a = cbor_new_indefinite_array();
		int r;

		if (a == NULL)
			return STINT_WIRE_NOMEM;
		if ((r = put_item(m, key, a)) != 0)
			return r;
		e = find(m, key);
	}
	if (!cbor_isa_array(e->val) || !cbor_array_is_indefinite(e->val))
		return STINT_WIRE_TYPE;
	if ((t = build_text(s)) == NULL)
		return STINT_WIRE_NOMEM;
	ok = cbor_array_push(e->val, t);
	cbor_decref(&t);
	return ok ? 0 : STINT_WIRE_NOMEM;
}

/* --- serialization -------------------------------------------------------- */

static cbor_item_t *to_item(const struct stint_msg *m);

static cbor_item_t *
definite_copy(cbor_item_t *arr)
{
	size_t n = cbor_array_size(arr);
	cbor_item_t **el = cbor_array_handle(arr);
	cbor_item_t *a = cbor_new_definite_array(n);

	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!cbor_array_push(a, el[i])) {
			cbor_decref(&a);
			return NULL;
		}
	}
	return a;
}

static cbor_item_t *
entry_value(const struct entry *e)
{
	cbor_item_t *a;

	switch (e->flat) {
	case FLAT_UINT:
		return build_uint(e->u);
	case FLAT_BOOL:
		return cbor_build_bool(e->u != 0);
	case FLAT_BYTES:
		return build_bytes(e->p, e->plen);
	case FLAT_TEXT:
		return build_text_n((const char *)e->p, e->plen);
	default:
		break;
	}
	if (e->val != NULL) {
		if (cbor_isa_array(e->val) && cbor_array_is_indefinite(e->val))
			return definite_copy(e->val);
		return cbor_incref(e->val);
	}
	a = cbor_new_definite_array(e->n_maps);
	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < e->n_maps; i++) {
		cbor_item_t *c = to_item(e->maps[i]);
		bool ok = c != NULL && cbor_array_push(a, c);

		if (c != NULL)
			cbor_decref(&c);
		if (!ok) {
			cbor_decref(&a);
			return NULL;
		}
	}
	return a;
}

static cbor_item_t *
to_item(const struct stint_msg *m)
{
	cbor_item_t *map = cbor_new_definite_map(m->n);

	if (map == NULL)
		return NULL;
	for (size_t i = 0; i < m->n; i++) {
		cbor_item_t *k = build_uint(m->ents[i].key);
		cbor_item_t *v = entry_value(&m->ents[i]);
		bool ok = k != NULL && v != NULL &&
			  cbor_map_add(map, (struct cbor_pair){k, v});

		if (k != NULL)
			cbor_decref(&k);
		if (v != NULL)
			cbor_decref(&v);
		if (!ok) {
			cbor_decref(&map);
			return NULL;
		}
	}
	return map;
}

int
stint_msg_serialize_full(const struct stint_msg *m, uint8_t **out, size_t *len)
{
	cbor_item_t *root;
	unsigned char *buf = NULL;
	size_t cap = 0, n;

	*out = NULL;
	*len = 0;
	if (m == NULL || (root = to_item(m)) == NULL)
		return STINT_WIRE_NOMEM;
	n = cbor_serialize_alloc(root, &buf, &cap);
	cbor_decref(&root);
	if (n == 0) {
		free(buf);
		return STINT_WIRE_NOMEM;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* --- the flat fast path: serialize -------------------------------------- */

/* Length of a head in its shortest form (what libcbor writes too). */
static size_t
head_len(uint64_t v)
{
	if (v < 24)
		return 1;
	if (v <= UINT8_MAX)
		return 2;
	if (v <= UINT16_MAX)
		return 3;
	if (v <= UINT32_MAX)
		return 5;
	return 9;
}

static uint8_t *
put_head(uint8_t *o, uint8_t major, uint64_t v)
{
	size_t n = head_len(v) - 1;

	if (n == 0) {
		*o++ = (uint8_t)(major << 5 | v);
		return o;
	}
	*o++ = (uint8_t)(major << 5 | (n == 1   ? 24
				       : n == 2 ? 25
				       : n == 4 ? 26
						: 27));
	for (size_t k = n; k > 0; k--)
		*o++ = (uint8_t)(v >> (8 * (k - 1)));
	return o;
}

static size_t
flat_size(const struct entry *e)
{
	size_t n = head_len(e->key);

	if (e->flat == FLAT_BOOL)
		return n + 1;
	if (e->flat == FLAT_UINT)
		return n + head_len(e->u);
	return n + head_len(e->plen) + e->plen;
}

static int
serialize_flat(const struct stint_msg *m, uint8_t **out, size_t *len)
{
	size_t n = head_len(m->n);
	uint8_t *buf, *o;

	for (size_t i = 0; i < m->n; i++)
		n += flat_size(&m->ents[i]);
	if ((buf = malloc(n)) == NULL)
		return STINT_WIRE_NOMEM;
	o = put_head(buf, 5, m->n);
	for (size_t i = 0; i < m->n; i++) {
		const struct entry *e = &m->ents[i];

		o = put_head(o, 0, e->key);
		if (e->flat == FLAT_BOOL) {
			*o++ = e->u ? 0xf5 : 0xf4;
		} else if (e->flat == FLAT_UINT) {
			o = put_head(o, 0, e->u);
		} else {
			o = put_head(o, e->flat == FLAT_BYTES ? 2 : 3, e->plen);
			if (e->plen > 0)
				memcpy(o, e->p, e->plen);
			o += e->plen;
		}
	}
	*out = buf;
	*len = n;
	return 0;
}

int
stint_msg_serialize(const struct stint_msg *m, uint8_t **out, size_t *len)
{
	bool flat = m != NULL && m->n <= FLAT_MAX;

	*out = NULL;
	*len = 0;
	for (size_t i = 0; flat && i < m->n; i++)
		flat = m->ents[i].flat != FLAT_NONE;
	if (flat)
		return serialize_flat(m, out, len);
	return stint_msg_serialize_full(m, out, len);
}

/* --- reply head ------------------------------------------------------------
 */

struct stint_msg *
stint_msg_reply_ok(void)
{
	struct stint_msg *m = stint_msg_new();

	if (m != NULL && stint_msg_put_uint(m, STINT_K_STATUS, STINT_OK) != 0) {
		stint_msg_free(m);
		return NULL;
	}
	return m;
}

int
stint_msg_get_reply_head(const struct stint_msg *m,
			 struct stint_reply_head *head)
{
	int r;

	memset(head, 0, sizeof(*head));
	if ((r = stint_msg_get_uint(m, STINT_K_STATUS, &head->status)) != 0)
		return r;
	if (head->status == STINT_OK)
		return 0;
	return stint_msg_get_text(m, STINT_K_ERROR, head->error,
				  sizeof(head->error));
}
