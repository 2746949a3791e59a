/*
 * Operators (issue 12 §5): the OPERATOR_ADD / OPERATOR_LIST /
 * OPERATOR_REMOVE codecs, shared by stintd and the stint CLI. An operator
 * is a name, the uid whose processes act as it on admin.sock, the agents
 * it may act for and an optional cap on the TTL of the tasks it starts.
 * docs/protocol.md lists the fields.
 */
#ifndef STINT_COMMON_PROTO_OPERATOR_H
#define STINT_COMMON_PROTO_OPERATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stint/wire.h"

struct stint_msg;

/* Agents one operator may act for, at most. */
#define STINT_OPERATOR_AGENTS_MAX 32

struct stint_operator_info {
	char name[STINT_NAME_MAX + 1];
	uint32_t uid;
	char agents[STINT_OPERATOR_AGENTS_MAX][STINT_NAME_MAX + 1];
	size_t n_agents;
	uint64_t max_ttl; /* seconds; 0: the agents' own limits only */
	uint64_t created; /* seconds since the epoch (list replies) */
	/* prov: "" added with the CLI, else the operators.d file (list
	 * replies, STINT_K_SOURCE) */
	char source[STINT_SOURCE_MAX + 1];
};

/* OPERATOR_ADD: name (STINT_K_OPERATOR), uid, agents (STINT_K_OP_AGENTS),
 * max_ttl when not 0. The decoder checks shapes only (names are the
 * handler's to check); on failure *bad is the key of the first bad field. */
int stint_enc_operator_add_req(struct stint_msg *m,
			       const struct stint_operator_info *o);
int stint_dec_operator_add_req(const struct stint_msg *m,
			       struct stint_operator_info *o, uint64_t *bad);

/* OPERATOR_LIST: one map per operator under STINT_K_OPERATORS. */
int stint_put_operator_list_entry(struct stint_msg *m,
				  const struct stint_operator_info *o);
int stint_put_operator_list_end(struct stint_msg *m, size_t n);
/* *out is malloc'ed (free()); NULL when n is 0. */
int stint_get_operator_list_rep(const struct stint_msg *m,
				struct stint_operator_info **out, size_t *n);

#endif
