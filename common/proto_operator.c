/* OPERATOR_* codecs (proto_operator.h). */

#include <stdlib.h>
#include <string.h>

#include "common/msg.h"
#include "common/proto.h"
#include "common/proto_operator.h"

static int
put_operator(struct stint_msg *m, const struct stint_operator_info *o)
{
	size_t i;
	int r = 0;

	r |= stint_msg_put_text(m, STINT_K_OPERATOR, o->name);
	r |= stint_msg_put_uint(m, STINT_K_UID, o->uid);
	for (i = 0; i < o->n_agents && r == 0; i++)
		r |= stint_msg_append_text(m, STINT_K_OP_AGENTS, o->agents[i]);
	if (o->max_ttl > 0)
		r |= stint_msg_put_uint(m, STINT_K_MAX_TTL, o->max_ttl);
	return r ? -1 : 0;
}

int
stint_enc_operator_add_req(struct stint_msg *m,
			   const struct stint_operator_info *o)
{
	return put_operator(m, o);
}

static int
get_operator(const struct stint_msg *m, struct stint_operator_info *o,
	     uint64_t *bad)
{
	uint64_t u;
	size_t i;

	memset(o, 0, sizeof(*o));
	if (stint_msg_get_text(m, STINT_K_OPERATOR, o->name, sizeof(o->name)) !=
	    0) {
		o->name[0] = '\0';
		*bad = STINT_K_OPERATOR;
		return STINT_WIRE_RANGE;
	}
	if (stint_msg_get_uint(m, STINT_K_UID, &u) != 0 || u >= UINT32_MAX) {
		*bad = STINT_K_UID;
		return STINT_WIRE_RANGE;
	}
	o->uid = (uint32_t)u;
	if (stint_msg_get_array_len(m, STINT_K_OP_AGENTS, &o->n_agents) != 0 ||
	    o->n_agents == 0 || o->n_agents > STINT_OPERATOR_AGENTS_MAX) {
		o->n_agents = 0;
		*bad = STINT_K_OP_AGENTS;
		return STINT_WIRE_RANGE;
	}
	for (i = 0; i < o->n_agents; i++) {
		if (stint_msg_get_text_at(m, STINT_K_OP_AGENTS, i, o->agents[i],
					  sizeof(o->agents[i])) != 0) {
			o->n_agents = 0;
			*bad = STINT_K_OP_AGENTS;
			return STINT_WIRE_RANGE;
		}
	}
	if (stint_msg_has(m, STINT_K_MAX_TTL) &&
	    (stint_msg_get_uint(m, STINT_K_MAX_TTL, &o->max_ttl) != 0 ||
	     o->max_ttl == 0)) {
		*bad = STINT_K_MAX_TTL;
		return STINT_WIRE_RANGE;
	}
	(void)stint_msg_get_uint(m, STINT_K_CREATED, &o->created);
	return 0;
}

int
stint_dec_operator_add_req(const struct stint_msg *m,
			   struct stint_operator_info *o, uint64_t *bad)
{
	*bad = 0;
	return get_operator(m, o, bad);
}

int
stint_put_operator_list_entry(struct stint_msg *m,
			      const struct stint_operator_info *o)
{
	struct stint_msg *e;

	if ((e = stint_msg_new()) == NULL)
		return STINT_WIRE_NOMEM;
	if (put_operator(e, o) != 0 ||
	    stint_msg_put_uint(e, STINT_K_CREATED, o->created) != 0 ||
	    (o->source[0] != '\0' &&
	     stint_msg_put_text(e, STINT_K_SOURCE, o->source) != 0)) {
		stint_msg_free(e);
		return -1;
	}
	return stint_msg_append_map(m, STINT_K_OPERATORS, e) ? -1 : 0;
}

int
stint_put_operator_list_end(struct stint_msg *m, size_t n)
{
	return n == 0 ? stint_msg_put_uint_array(m, STINT_K_OPERATORS, NULL, 0)
		      : 0;
}

int
stint_get_operator_list_rep(const struct stint_msg *m,
			    struct stint_operator_info **out, size_t *n)
{
	const struct stint_msg *child;
	uint64_t bad;
	size_t i;

	*out = NULL;
	*n = 0;
	if (stint_msg_has(m, STINT_K_OPERATORS) &&
	    stint_msg_get_array_len(m, STINT_K_OPERATORS, n) != 0)
		return STINT_WIRE_MALFORMED;
	if (*n == 0)
		return 0;
	if ((*out = calloc(*n, sizeof(**out))) == NULL) {
		*n = 0;
		return STINT_WIRE_NOMEM;
	}
	for (i = 0; i < *n; i++) {
		if (stint_msg_get_map_at(m, STINT_K_OPERATORS, i, &child) !=
			    0 ||
		    get_operator(child, &(*out)[i], &bad) != 0 ||
		    (stint_msg_has(child, STINT_K_SOURCE) &&
		     stint_msg_get_text(child, STINT_K_SOURCE, (*out)[i].source,
					sizeof((*out)[i].source)) != 0)) {
			free(*out);
			*out = NULL;
			*n = 0;
			return STINT_WIRE_MALFORMED;
		}
	}
	return 0;
}
