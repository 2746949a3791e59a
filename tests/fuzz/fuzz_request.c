/*
 * libFuzzer target for what stintd does with an agent's frame body: strict
 * parse, then the decoder for the op it names. A message that parses must
 * also survive re-serialization and parse again: the codec never produces
 * what it would refuse. The flat fast path and the libcbor path (msg.c)
 * must accept and refuse alike and read the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/msg.h"
#include "stint/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
decode(const struct stint_msg *m)
{
	uint64_t op, version;
	char cursor[STINT_TASK_ID_MAX + 1], as[STINT_NAME_MAX + 1];
	struct stint_sign_req req;

	if (stint_dec_request_op(m, &op) != 0)
		return;
	switch (op) {
	case STINT_OP_HELLO:
		(void)stint_dec_hello_req(m, &version);
		break;
	case STINT_OP_LIST:
		if (stint_dec_list_req(m, cursor) == 0 &&
		    strlen(cursor) > STINT_TASK_ID_MAX)
			abort();
		if (stint_dec_as_agent(m, as) == 0 &&
		    strlen(as) > STINT_NAME_MAX)
			abort();
		break;
	case STINT_OP_SIGN:
		if (stint_dec_sign_req(m, &req) == 0) {
			if (strlen(req.task) == 0 ||
			    strlen(req.as_agent) > STINT_NAME_MAX ||
			    (req.data.len > 0 && req.data.ptr == NULL))
				abort();
			stint_bytes_clear(&req.data);
		} else if (req.data.ptr != NULL) {
			abort(); /* nothing allocated on failure */
		}
		break;
	default:
		break;
	}
}

/* Both parsers agree on data; m is the fast path's verdict. */
static void
paths_agree(const uint8_t *data, size_t size, const struct stint_msg *m)
{
	struct stint_msg *full = NULL;
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;

	if ((stint_msg_parse_full(data, size, &full) == 0) != (m != NULL))
		abort();
	if (m == NULL)
		return;
	if (stint_msg_serialize_full(m, &a, &alen) != 0 ||
	    stint_msg_serialize_full(full, &b, &blen) != 0 || alen != blen ||
	    memcmp(a, b, alen) != 0)
		abort();
	free(a);
	free(b);
	stint_msg_free(full);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stint_msg *m = NULL, *again = NULL;
	uint8_t *out = NULL;
	size_t out_len = 0;

	if (size > STINT_FRAME_MAX)
		return 0; /* the frame reader refuses these first */
	if (stint_msg_parse(data, size, &m) != 0) {
		if (m != NULL)
			abort();
		paths_agree(data, size, NULL);
		return 0;
	}
	paths_agree(data, size, m);
	decode(m);
	if (stint_msg_serialize(m, &out, &out_len) != 0 ||
	    stint_msg_parse(out, out_len, &again) != 0)
		abort();
	paths_agree(out, out_len, again);
	decode(again);
	stint_msg_free(again);
	free(out);
	stint_msg_free(m);
	return 0;
}
