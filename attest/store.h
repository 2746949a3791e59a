/*
 * Durable state: agents and tasks in SQLite (WAL), schema versioned
 * (PRAGMA user_version). One connection, serialized by the store's mutex;
 * every function is safe to call from any thread. Functions return 0, or
 * STINT_STORE_NOT_FOUND / STINT_STORE_EXISTS / STINT_STORE_ERROR (err set).
 * The SIGN gate over this state is in gate.h.
 */
#ifndef STINT_ATTEST_STORE_H
#define STINT_ATTEST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "attest/backend.h"
#include "attest/peer.h"
#include "common/audience.h"
#include "common/selectors.h"
#include "stint/wire.h"

enum {
	STINT_STORE_OK = 0,
	STINT_STORE_NOT_FOUND = 1,
	STINT_STORE_EXISTS = 2,
	/* A task end state.db could not commit (full disk): the task is
	 * refused from now on and the end is in the revocation journal;
	 * stint_store_ends_retry writes it to state.db later. */
	STINT_STORE_PENDING = 3,
	STINT_STORE_ERROR = -1,
};

struct stint_agent {
	char name[STINT_NAME_MAX + 1];
	uint32_t uid;
	int64_t gid;                     /* -1: any gid */
	uint64_t max_ttl;                /* seconds */
	uint64_t mechs[STINT_MECHS_MAX]; /* allowed CKM_* */
	size_t n_mechs;
	int64_t created; /* seconds since the epoch */
	int64_t id;      /* stable row id, never reused; 0 before insert */
	struct stint_selectors sel; /* all must match; "" unset (ident) */
	char audiences[STINT_AUDIENCES_TEXT_MAX + 1]; /* aud: "" none */
	/* prov: "" added with the CLI, else the agents.d file declaring it */
	char source[STINT_SOURCE_MAX + 1];
	/* deleg: the agents it may start child tasks for ("" none), and how
	 * deep a tree below its tasks may grow (0: no delegation) */
	char delegate_to[STINT_DELEGATE_TO_MAX + 1];
	uint32_t max_depth;
};

enum stint_task_state {
	STINT_TASK_LIVE = 0,
	STINT_TASK_ENDED = 1,   /* stint task end, or agent removed */
	STINT_TASK_EXPIRED = 2, /* reached its deadline */
};

/* What a task is bound to (bind): only that process, or only processes
 * in that cgroup (and below it), may use it; it ends when that is gone. */
enum stint_bind_kind {
	STINT_BIND_NONE = 0,
	STINT_BIND_PID = 1,
	STINT_BIND_CGROUP = 2,
};
#define STINT_BIND_CGROUP_MAX STINT_CGROUP_MAX

struct stint_task_bind {
	enum stint_bind_kind kind;
	int64_t pid;         /* PID: the process */
	uint64_t start_time; /* PID: its /proc/PID/stat start time */
	char cgroup[STINT_BIND_CGROUP_MAX + 1]; /* CGROUP: "/stint/run-…" */
	bool owned; /* CGROUP: stintd made it (stint run), removes it */
};

struct stint_task {
	char id[STINT_TASK_ID_MAX + 1];
	char agent[STINT_NAME_MAX + 1];
	uint32_t key_type;
	enum stint_task_state state;
	int64_t created, not_after, ended; /* ended: 0 while live */
	char reason[STINT_REASON_MAX + 1];
	uint64_t max_sigs; /* 0: unlimited */
	uint64_t used_sigs;
	char intent[STINT_INTENT_MAX + 1];
	uint64_t mechs[STINT_MECHS_MAX]; /* allowed for this key */
	size_t n_mechs;
	bool key_destroyed;
	int64_t agent_id;            /* the agent row it was started for; 0: any
					agent of that name (insert), none (read) */
	struct stint_pubkey pub;     /* owned; stint_task_clear frees */
	struct stint_bytes cert;     /* owned, may be empty */
	struct stint_task_bind bind; /* kind NONE: any process of the agent */
	char audiences[STINT_AUDIENCES_TEXT_MAX + 1]; /* aud: "" none */
	/* deleg: the tree. A root task has parent_id "", root_id its own id,
	 * depth 0 and path its agent's name; a child names its parent, the
	 * root, depth parent+1 and path parent's path + "," + its agent.
	 * reserved: signatures reserved from the parent's budget (charged
	 * to the parent's used_sigs at delegation; what the child did not
	 * use is given back when it ends). */
	char parent_id[STINT_TASK_ID_MAX + 1];
	char root_id[STINT_TASK_ID_MAX + 1];
	uint32_t depth;
	char path[STINT_DPATH_MAX + 1];
	uint64_t reserved;
};
void stint_task_clear(struct stint_task *t);

struct stint_store;

int stint_store_open(const char *path, struct stint_store **out, char *err,
		     size_t errlen);
void stint_store_close(struct stint_store *s);
/* budget: signatures a budgeted task reserves per committed write
 * (budget.h); 1 (the default of a store just opened) commits each. */
void stint_store_set_budget_block(struct stint_store *s, uint32_t block);

/* Refuses (EXISTS) a name in use, or an agent whose uid, gid and
 * selectors are exactly those of another (no process could tell them
 * apart). overlap (may be NULL) gets the name of the first other agent
 * that can match the same processes, "" when none. */
int stint_store_agent_add(struct stint_store *s, const struct stint_agent *a,
			  char *overlap, char *err, size_t errlen);
/* prov: replaces everything but the name, id and created of agent
 * a->name (an agents.d file changed it); its live tasks stay. NOT_FOUND,
 * or EXISTS (err says) when another agent has the same principal. */
int stint_store_agent_update(struct stint_store *s, const struct stint_agent *a,
			     char *err, size_t errlen);
int stint_store_agent_get(struct stint_store *s, const char *name,
			  struct stint_agent *a);
/* The agent a peer acts as: uid matches, gid matches when set, and every
 * selector set matches the peer's facts (stint_peer_matches); of several,
 * the lowest name. */
int stint_store_agent_for_peer(struct stint_store *s,
			       const struct stint_peer *peer,
			       struct stint_agent *a);
/* Named: agent as when the peer matches it (NOT_FOUND when it does not
 * or there is none); as NULL or "": stint_store_agent_for_peer. */
int stint_store_agent_as(struct stint_store *s, const struct stint_peer *peer,
			 const char *as, struct stint_agent *a);
/* Every agent the peer matches (as stint_store_agent_for_peer judges),
 * in name order; *out malloc'ed. NOT_FOUND (n 0) when none. */
int stint_store_agents_for_peer(struct stint_store *s,
				const struct stint_peer *peer,
				struct stint_agent **out, size_t *n);
/* Whether two agents can match the same process: same uid, and no
 * selector (gid included) that both set and that tells them apart. */
bool stint_agents_overlap(const struct stint_agent *a,
			  const struct stint_agent *b);
/* Whether a peer's uid, gid and facts match agent a. */
bool stint_agent_matches(const struct stint_agent *a,
			 const struct stint_peer *peer);
/* The STINT_SEL_M_* bits of a's selectors (uid, gid when set, and the
 * rest) that the peer matches: all that a sets when the peer acts as a. */
unsigned stint_agent_matched(const struct stint_agent *a,
			     const struct stint_peer *peer);
/* *out malloc'ed array ordered by name. */
int stint_store_agent_list(struct stint_store *s, struct stint_agent **out,
			   size_t *n);
int stint_store_agent_remove(struct stint_store *s, const char *name);
/* Removes an agent and ends its live tasks (state ended, reason, when) in
 * one transaction: a task start that read the agent before stores nothing
 * afterwards (its insert names the removed agent id and fails). *ended
 * (malloc'ed, may be NULL with *n 0) gets the ids of the tasks ended. */
int stint_store_agent_remove_tasks(struct stint_store *s, const char *name,
				   const char *reason, int64_t when,
				   char (**ended)[STINT_TASK_ID_MAX + 1],
				   size_t *n);

/* NOT_FOUND when t->agent_id names an agent that is gone. */
int stint_store_task_insert(struct stint_store *s, const struct stint_task *t,
			    char *err, size_t errlen);
/* Deletes a task row that never became usable (its start failed after the
 * insert); the gate refuses it from now on. */
int stint_store_task_delete(struct stint_store *s, const char *id);
int stint_store_task_get(struct stint_store *s, const char *id,
			 struct stint_task *t);
/* Tasks ordered by id, after cursor ("" = from the start), at most limit.
 * agent NULL = all agents; live_only = state live and not_after > now. */
int stint_store_task_list(struct stint_store *s, const char *agent,
			  bool live_only, int64_t now, const char *cursor,
			  size_t limit, struct stint_task **out, size_t *n);
void stint_store_task_list_free(struct stint_task *tasks, size_t n);
/* Live → ended/expired, in one transaction. NOT_FOUND when the task is not
 * live (already ended) or unknown. PENDING when state.db cannot commit: the
 * task is refused from now on all the same (gate index entry gone, every
 * read shows it ended), and the end is kept in the revocation journal and
 * in memory until stint_store_ends_retry lands it. */
int stint_store_task_end(struct stint_store *s, const char *id,
			 enum stint_task_state state, const char *reason,
			 int64_t when);
/* Ends every live task of an agent (agent removal). */
int stint_store_agent_tasks_end(struct stint_store *s, const char *agent,
				const char *reason, int64_t when);
/* deleg: ends task id (live → state, reason) and every live descendant
 * (ended, desc_reason) in one transaction; each ended child gives its
 * parent back the budget it did not use. *desc (malloc'ed, may be NULL)
 * gets the descendants ended, deepest first, even when the task itself
 * was not live (NOT_FOUND: an orphaned subtree). PENDING as for
 * stint_store_task_end when state.db cannot commit (each task then ends
 * on its own, fail closed). */
int stint_store_tree_end(struct stint_store *s, const char *id,
			 enum stint_task_state state, const char *reason,
			 const char *desc_reason, int64_t when,
			 char (**desc)[STINT_TASK_ID_MAX + 1], size_t *n);
/* deleg: live tasks whose parent is not live (left by a crash). */
int stint_store_tree_orphans(struct stint_store *s,
			     char (**ids)[STINT_TASK_ID_MAX + 1], size_t *n);
/* deleg: task id and its descendants in any state, shallowest first
 * (*out: stint_store_task_list_free). NOT_FOUND: no such task. */
int stint_store_task_tree(struct stint_store *s, const char *id,
			  struct stint_task **out, size_t *n);
/* Live tasks past their deadline at now (ids), and ended tasks whose key
 * is not yet destroyed. */
int stint_store_tasks_due(struct stint_store *s, int64_t now,
			  char (**ids)[STINT_TASK_ID_MAX + 1], size_t *n);
int stint_store_task_key_destroyed(struct stint_store *s, const char *id);
/* Writes pending ends to state.db (and clears their journal slots); *left
 * ends are still pending. Ids of pending ends whose key is not known to be
 * destroyed go to *keys (malloc'ed) when keys is not NULL. */
int stint_store_ends_retry(struct stint_store *s, size_t *left,
			   char (**keys)[STINT_TASK_ID_MAX + 1],
			   size_t *n_keys);
int stint_store_count(struct stint_store *s, size_t *agents, size_t *live_tasks,
		      size_t *all_tasks);

/* Retention: deletes the ended and expired tasks that ended before
 * `before` and whose key is destroyed, in batches; pruned(ctx, id) is
 * called for each (after its batch committed), *count counts them. Live
 * tasks, and ended ones whose key the reaper has yet to destroy, stay. */
int stint_store_prune(struct stint_store *s, int64_t before,
		      void (*pruned)(void *ctx, const char *id), void *ctx,
		      size_t *count);

/* The audit log's head as stintd last recorded it (audit_anchor.c):
 * the record with this seq and hash ends at byte offset of the current
 * log file. */
struct stint_store_audit_head {
	uint64_t seq;
	uint8_t hash[32];
	uint64_t offset;
	int64_t updated; /* seconds since the epoch */
};
int stint_store_audit_head_get(struct stint_store *s,
			       struct stint_store_audit_head *h);
int stint_store_audit_head_set(struct stint_store *s,
			       const struct stint_store_audit_head *h);

#endif
