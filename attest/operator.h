/*
 * Operators (issue 12 §5): orchestrators without root. An operator is a
 * uid registered with `stint operator add NAME --uid U --agents A,B
 * [--max-ttl D]`; its processes may use admin.sock for the ops the op
 * table marks STINTD_OP_OPERATOR (task start/end/list/show, the CA
 * bundle), and only for the agents it names. Everything else on admin.sock
 * stays root's and stintd's own user's. Every refusal says why and is
 * audited ("operator-denied").
 *
 * The store keeps the operators table (store_operator.c); the uids are
 * also kept in memory so that server.c can refuse a stranger's admin.sock
 * connection at accept without waiting for the store.
 */
#ifndef STINT_ATTEST_OPERATOR_H
#define STINT_ATTEST_OPERATOR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "attest/peer.h"
#include "attest/reply.h"
#include "common/proto_operator.h"

struct stintd;
struct stint_store;
struct stintd_op;

/* One operators row: the wire struct (name, uid, agents, max_ttl,
 * created). */
typedef struct stint_operator_info stint_operator;

/* --- store_operator.c (STINT_STORE_* results) --------------------------- */
int stint_store_operator_add(struct stint_store *s, const stint_operator *o,
			     char *err, size_t errlen);
int stint_store_operator_by_uid(struct stint_store *s, uid_t uid,
				stint_operator *o);
int stint_store_operator_list(struct stint_store *s, stint_operator **out,
			      size_t *n);
int stint_store_operator_remove(struct stint_store *s, const char *name,
				stint_operator *removed);
/* prov: replaces uid, agents, max_ttl and source of operator o->name. */
int stint_store_operator_update(struct stint_store *s, const stint_operator *o,
				char *err, size_t errlen);

/* --- operator.c ---------------------------------------------------------- */

enum stintd_role {
	STINTD_ROLE_NONE,     /* may not use admin.sock */
	STINTD_ROLE_ADMIN,    /* root or stintd's own uid */
	STINTD_ROLE_OPERATOR, /* a registered operator */
};

/* Who is asking on admin.sock. */
struct stintd_actor {
	enum stintd_role role;
	stint_operator op; /* STINTD_ROLE_OPERATOR only */
};

/* Reads the operator uids from the store into memory (at start). */
int stintd_operators_load(struct stintd *d, char *err, size_t errlen);
/* prov: the admin.sock uid set again from the store (operators.d). */
int stintd_operators_sync(struct stintd *d);
/* Whether uid is root, stintd's uid or an operator's (the in-memory set:
 * no store access, for the accept loop). */
enum stintd_role stintd_uid_role(const struct stintd *d, uid_t uid);
/* The peer's role, from the store (a removed operator is NONE at once). */
int stintd_actor_of(struct stintd *d, const struct stint_peer *peer,
		    struct stintd_actor *a);
/* Whether the actor may act for agent (admins: any). */
bool stintd_actor_may(const struct stintd_actor *a, const char *agent);

/*
 * The one authorisation check for acting on behalf of an agent (task ops,
 * and later `stint run` and delegation): true when peer is an admin or an
 * operator that names agent. Otherwise false, with a DENIED reply in *rep
 * ("operator 'ci' may not act for agent 'billing'"), the refusal audited,
 * and *ret what the handler must return. what names the op ("task
 * start"). When a is not NULL it receives the actor (for max_ttl).
 */
bool stintd_may_act_for_agent(struct stintd *d, const struct stint_peer *peer,
			      const char *agent, const char *what,
			      struct stintd_actor *a, struct stint_reply *rep,
			      int *ret);
/* The same for an existing task, by its agent (task end, task show).
 * A task that does not exist passes: the handler says "no task". */
bool stintd_may_act_for_task(struct stintd *d, const struct stint_peer *peer,
			     const char *task_id, const char *what,
			     struct stint_reply *rep, int *ret);
/* An operator's max TTL on a task it starts: ttl 0 (stintd's default)
 * becomes at most the operator's max; a larger explicit ttl is refused
 * (LIMIT, audited). Admins and operators without one: unchanged. */
bool stintd_operator_ttl(struct stintd *d, const struct stint_peer *peer,
			 const struct stintd_actor *a, const char *agent,
			 uint64_t *ttl, struct stint_reply *rep, int *ret);
/* The dispatch check on admin.sock: true when peer may call op e at all
 * (admins always; operators for STINTD_OP_OPERATOR entries), else a DENIED
 * reply in *rep (audited) and *ret as above. */
bool stintd_may_call(struct stintd *d, const struct stint_peer *peer,
		     const struct stintd_op *e, struct stint_reply *rep,
		     int *ret);
/* Audits a refusal of peer by operator o (or a uid that is none). */
void stintd_operator_audit_deny(struct stintd *d, const struct stint_peer *peer,
				const char *who, const char *agent,
				const char *task, const char *reason);

#endif
