/*
 * Stint's typed codecs, shared by stint-pkcs11.so, stintd and the stint
 * CLI (private: not installed; include/stint/wire.h holds the numbers a
 * third-party client needs). The agent protocol lives in
 * common/proto_agent.c, the admin protocol in common/proto_admin.c.
 */
#ifndef STINT_COMMON_PROTO_H
#define STINT_COMMON_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/audience.h"
#include "common/selectors.h"
#include "stint/wire.h"

struct stint_msg;

/* Codec results: 0 on success, or one of these (never a wire status). */
enum stint_wire_err {
	STINT_WIRE_OK = 0,
	STINT_WIRE_MALFORMED = -1, /* not one definite CBOR map, trailing bytes,
				      non-uint or duplicate keys */
	STINT_WIRE_MISSING = -2,   /* required field absent */
	STINT_WIRE_TYPE = -3,      /* field of the wrong type */
	STINT_WIRE_RANGE = -4,     /* value or length out of range */
	STINT_WIRE_NOMEM = -5,
	STINT_WIRE_IO = -6, /* read/write failed or peer closed */
	STINT_WIRE_TIMEOUT = -7,
	STINT_WIRE_TOO_LARGE = -8, /* frame longer than allowed */
};

/* --- Agent messages, typed. Decoders allocate; empty with *_clear. --- */

/* Agent names a HELLO reply carries at most (STINT_K_AGENT_NAMES). */
#define STINT_HELLO_AGENTS_MAX 16

struct stint_hello_rep {
	uint64_t version;
	char agent[STINT_NAME_MAX + 1]; /* "" when the peer maps to no agent */
	/* Every agent the peer matches, sorted, when more than one (else
	 * n_names 0 and only agent is sent). */
	char names[STINT_HELLO_AGENTS_MAX][STINT_NAME_MAX + 1];
	size_t n_names;
};

/* One live task as the module sees it (LIST reply entry). */
struct stint_task_key {
	char id[STINT_TASK_ID_MAX + 1];
	uint32_t key_type;  /* enum stint_key_type */
	uint64_t not_after; /* seconds since the epoch */
	uint64_t mechs[STINT_MECHS_MAX];
	size_t n_mechs;
	struct stint_bytes spki;      /* required */
	struct stint_bytes ec_params; /* EC keys */
	struct stint_bytes ec_point;  /* EC keys */
	struct stint_bytes modulus;   /* RSA keys */
	struct stint_bytes exponent;  /* RSA keys */
	struct stint_bytes cert;      /* optional, len 0 when absent */
};

struct stint_list_rep {
	struct stint_task_key *tasks;
	size_t n_tasks;
	bool more; /* ask again with cursor = last id */
};

struct stint_sign_req {
	char task[STINT_TASK_ID_MAX + 1];
	uint64_t mech;
	bool has_pss;
	uint64_t pss_hash, pss_mgf, pss_salt;
	struct stint_bytes data; /* for hash-and-sign mechanisms: the digest */
	char as_agent[STINT_NAME_MAX + 1]; /* STINT_K_AS_AGENT, "" absent */
};

/* Generic reply head: every reply has a status; errors have a message. */
struct stint_reply_head {
	uint64_t status;
	char error[STINT_REASON_MAX + 1];
};

/* Encoders return a malloc'ed frame body (no length prefix) in *out. */
int stint_enc_hello_req(uint64_t version, uint8_t **out, size_t *len);
int stint_enc_list_req(const char *cursor /* NULL or "" */, uint8_t **out,
		       size_t *len);
/* LIST as agent as_agent (NULL or "": key 151 absent). */
int stint_enc_list_req_as(const char *cursor, const char *as_agent,
			  uint8_t **out, size_t *len);
int stint_enc_sign_req(const struct stint_sign_req *req, uint8_t **out,
		       size_t *len);

int stint_enc_hello_rep(const struct stint_hello_rep *rep, uint8_t **out,
			size_t *len);
int stint_enc_list_rep(const struct stint_list_rep *rep, uint8_t **out,
		       size_t *len);
int stint_enc_sign_rep(const uint8_t *sig, size_t sig_len, uint8_t **out,
		       size_t *len);
int stint_enc_error_rep(uint64_t status, const char *message, uint8_t **out,
			size_t *len);

/* Reply decoders (module side). They first decode the head; when
 * head->status != STINT_OK they return 0 with the body zeroed (nothing to
 * free). On any error return the body is zeroed too. */
int stint_dec_hello_rep(const uint8_t *buf, size_t len,
			struct stint_reply_head *head,
			struct stint_hello_rep *rep);
int stint_dec_list_rep(const uint8_t *buf, size_t len,
		       struct stint_reply_head *head,
		       struct stint_list_rep *rep);
int stint_dec_sign_rep(const uint8_t *buf, size_t len,
		       struct stint_reply_head *head, struct stint_bytes *sig);
void stint_list_rep_clear(struct stint_list_rep *rep);
/* Frees what t owns and empties it (t itself is not freed). */
void stint_task_key_clear(struct stint_task_key *t);

const char *stint_status_str(uint64_t status);
const char *stint_key_type_str(uint32_t key_type); /* "ec-p256", ... */
int stint_key_type_parse(const char *s, uint32_t *key_type);

/* Daemon-side request decoders (the agent socket). Unknown keys are
 * ignored. stint_dec_list_req leaves cursor "" when absent.
 * stint_dec_sign_req copies the data: free req->data with stint_bytes_clear
 * (on error nothing is allocated). */
int stint_dec_request_op(const struct stint_msg *m, uint64_t *op);
int stint_dec_hello_req(const struct stint_msg *m, uint64_t *version);
int stint_dec_list_req(const struct stint_msg *m,
		       char cursor[STINT_TASK_ID_MAX + 1]);
int stint_dec_sign_req(const struct stint_msg *m, struct stint_sign_req *req);
/* STINT_K_AS_AGENT of a LIST or SIGN request: "" when absent,
 * STINT_WIRE_RANGE when not an agent name. */
int stint_dec_as_agent(const struct stint_msg *m,
		       char as_agent[STINT_NAME_MAX + 1]);

/* --- Admin messages, typed (common/proto_admin.c). ---------------------
 * Requests are built into and read from a stint_msg: the CLI makes the map
 * with its op (stint_cli_request) and calls stint_enc_*_req; stintd's
 * handler calls stint_dec_*_req, which checks shapes only (limits and
 * policy stay in the handler) and, on failure, sets *bad to the key of the
 * first field that failed, every field before it filled. Replies: stintd
 * fills a stint_msg_reply_ok() map with stint_put_*_rep, the CLI reads it
 * with stint_get_*_rep. Unknown keys are ignored. docs/protocol.md. */

/* AGENT_ADD. The name is only checked to be text that fits; its charset
 * is the handler's to check. n_mechs 0: every supported mechanism. */
struct stint_agent_add_req {
	char name[STINT_NAME_MAX + 1];
	uint32_t uid;
	bool has_gid;
	uint32_t gid;
	bool has_max_ttl;
	uint64_t max_ttl; /* seconds, > 0 */
	uint64_t mechs[STINT_MECHS_MAX];
	size_t n_mechs;
	struct stint_selectors sel;                   /* "" unset */
	char audiences[STINT_AUDIENCES_TEXT_MAX + 1]; /* aud: "" none */
	/* deleg: agents it may delegate to ("" none), depth (0: none) */
	char delegate_to[STINT_DELEGATE_TO_MAX + 1];
	uint32_t max_depth;
};
int stint_enc_agent_add_req(struct stint_msg *m,
			    const struct stint_agent_add_req *r);
int stint_dec_agent_add_req(const struct stint_msg *m,
			    struct stint_agent_add_req *r, uint64_t *bad);

/* One AGENT_LIST entry. */
struct stint_agent_info {
	char name[STINT_NAME_MAX + 1];
	uint32_t uid;
	bool has_gid; /* false: any gid */
	uint32_t gid;
	uint64_t max_ttl; /* seconds */
	uint64_t mechs[STINT_MECHS_MAX];
	size_t n_mechs;
	uint64_t created;           /* seconds since the epoch */
	struct stint_selectors sel; /* "" unset */
	char audiences[STINT_AUDIENCES_TEXT_MAX + 1]; /* aud: "" none */
	char source[STINT_SOURCE_MAX + 1]; /* prov: "" the CLI, else a file */
	char delegate_to[STINT_DELEGATE_TO_MAX + 1]; /* deleg */
	uint32_t max_depth;
};
/* Appends one entry to the reply's agent array. */
int stint_put_agent_list_entry(struct stint_msg *m,
			       const struct stint_agent_info *a);
/* Closes the list: an empty list is still a list. n: entries put. */
int stint_put_agent_list_end(struct stint_msg *m, size_t n);
/* *out is malloc'ed (free()); NULL when n is 0. An entry without a name
 * or uid makes the reply malformed. */
int stint_get_agent_list_rep(const struct stint_msg *m,
			     struct stint_agent_info **out, size_t *n);

/* Requests naming one agent or task (AGENT_REMOVE, TASK_SHOW,
 * TASK_EVIDENCE): the name under key (STINT_K_AGENT or STINT_K_TASK). */
int stint_enc_name_req(struct stint_msg *m, uint64_t key, const char *name);
int stint_dec_name_req(const struct stint_msg *m, uint64_t key, char *buf,
		       size_t cap);

/* Replies that end or remove things (AGENT_REMOVE, TASK_END,
 * KILL_SWITCH): a count, and a note when a record or a store entry is
 * still pending (the CLI prints it as a warning). */
struct stint_done_rep {
	bool has_count;
	uint64_t count;
	bool has_counter;
	uint64_t counter; /* KILL_SWITCH: the TPM counter */
	char note[512];   /* "" when none */
};
int stint_put_done_rep(struct stint_msg *m, const struct stint_done_rep *r);
void stint_get_done_rep(const struct stint_msg *m, struct stint_done_rep *r);

/* TASK_START. Bad fields, in the order checked: STINT_K_AGENT (missing),
 * STINT_K_TTL (0 or not a uint), STINT_K_KEY_TYPE (unknown),
 * STINT_K_MAX_SIGS, STINT_K_INTENT (not text of at most STINT_INTENT_MAX
 * bytes), STINT_K_BIND_PID (0 or not a pid), STINT_K_BIND_CGROUP (not an
 * absolute path of at most STINT_CGROUP_MAX bytes), STINT_K_RUN_PID (0, not
 * a pid, or more than one of the three given), STINT_K_RUN_CGROUP (not an
 * absolute path, or without run_pid). */
struct stint_task_start_req {
	char agent[STINT_NAME_MAX + 1];
	bool has_ttl;
	uint64_t ttl; /* seconds, > 0 */
	bool has_key_type;
	uint32_t key_type; /* enum stint_key_type */
	uint64_t max_sigs; /* 0: unlimited (not sent) */
	bool has_intent;
	char intent[STINT_INTENT_MAX + 1];
	/* bind: at most one of the three. bind_pid: usable only by that
	 * process; bind_cgroup: only from within that cgroup; run_pid: stint
	 * run's command (a child of the caller that has not run yet), which
	 * stintd moves into a fresh cgroup the task is bound to. 0/"": not
	 * given. */
	uint32_t bind_pid;
	char bind_cgroup[STINT_CGROUP_MAX + 1];
	uint32_t run_pid;
	/* runcg: with run_pid, the cgroup RUN_PREPARE made for it, which the
	 * command is now in (stintd checks); "": stintd makes one itself */
	char run_cgroup[STINT_CGROUP_MAX + 1];
	/* aud: the task's audiences; absent: all of the agent's */
	bool has_audiences;
	char audiences[STINT_AUDIENCES_TEXT_MAX + 1];
};
int stint_enc_task_start_req(struct stint_msg *m,
			     const struct stint_task_start_req *r);
int stint_dec_task_start_req(const struct stint_msg *m,
			     struct stint_task_start_req *r, uint64_t *bad);

/* runcg: RUN_PREPARE, stint run's first step. The request names the
 * agent and the waiting command (run_pid, the caller's child); bad fields:
 * STINT_K_AGENT, STINT_K_RUN_PID. The reply names the fresh cgroup stintd
 * made for it ("" when it could make none: note says why) and whether
 * stintd could move the command in itself (else the caller does). */
struct stint_run_prepare_req {
	char agent[STINT_NAME_MAX + 1];
	uint32_t run_pid;
};
int stint_enc_run_prepare_req(struct stint_msg *m,
			      const struct stint_run_prepare_req *r);
int stint_dec_run_prepare_req(const struct stint_msg *m,
			      struct stint_run_prepare_req *r, uint64_t *bad);
struct stint_run_prepare_rep {
	char cgroup[STINT_CGROUP_MAX + 1];
	bool moved;
	char note[512];
};
int stint_put_run_prepare_rep(struct stint_msg *m,
			      const struct stint_run_prepare_rep *r);
void stint_get_run_prepare_rep(const struct stint_msg *m,
			       struct stint_run_prepare_rep *r);

/* TASK_END. Bad fields: STINT_K_TASK (missing), STINT_K_REASON. */
struct stint_task_end_req {
	char task[STINT_TASK_ID_MAX + 1];
	bool has_reason;
	char reason[STINT_REASON_MAX + 1];
};
int stint_enc_task_end_req(struct stint_msg *m,
			   const struct stint_task_end_req *r);
int stint_dec_task_end_req(const struct stint_msg *m,
			   struct stint_task_end_req *r, uint64_t *bad);

/* TASK_LIST request: one page after cursor ("" from the start). */
struct stint_task_list_req {
	bool has_agent;
	char agent[STINT_NAME_MAX + 1];
	bool all; /* ended and expired tasks too */
	char cursor[STINT_TASK_ID_MAX + 1];
};
int stint_enc_task_list_req(struct stint_msg *m,
			    const struct stint_task_list_req *r);
int stint_dec_task_list_req(const struct stint_msg *m,
			    struct stint_task_list_req *r);

/* A task map (TASK_START and TASK_SHOW replies, TASK_LIST entries; the
 * public TASK_SHOW on agent.sock). The public view leaves out reason,
 * counters, intent, bind and audiences; a list leaves out the cert.
 * Texts are "" when absent. Bytes are borrowed: the getter's pointers
 * live as long as the message. The getter fails (STINT_WIRE_MISSING)
 * without the id, the agent or the deadline and reads the rest
 * leniently, as a newer or older stintd may send more or less. */
struct stint_task_info {
	char id[STINT_TASK_ID_MAX + 1];
	char agent[STINT_NAME_MAX + 1];
	uint32_t key_type; /* enum stint_key_type */
	char state[16];    /* "live", "ended", "expired" */
	uint64_t created, not_after;
	bool has_ended;
	uint64_t ended;
	char reason[STINT_REASON_MAX + 1];
	bool has_sigs;     /* the counters (admin.sock only) */
	uint64_t max_sigs; /* 0: unlimited */
	uint64_t used_sigs;
	char intent[STINT_INTENT_MAX + 1];
	uint64_t mechs[STINT_MECHS_MAX];
	size_t n_mechs;
	char uri[512]; /* the pkcs11: URI of the task key */
	const uint8_t *spki;
	size_t spki_len;
	const uint8_t *cert; /* NULL: none (yet, or left out) */
	size_t cert_len;
	/* bind: at most one of the two; 0/"": not bound */
	uint64_t bind_pid;
	uint64_t bind_start; /* the process's start time */
	char bind_cgroup[STINT_CGROUP_MAX + 1];
	bool bind_owned; /* stintd made the cgroup (stint run) */
	char audiences[STINT_AUDIENCES_TEXT_MAX + 1]; /* aud: "" none */
	/* deleg: the tree (admin.sock and DELEGATE replies); root "": none
	 * sent. parent "": a root task. */
	char parent[STINT_TASK_ID_MAX + 1];
	char root[STINT_TASK_ID_MAX + 1];
	uint32_t depth;
	char dpath[STINT_DPATH_MAX + 1]; /* agent names root..task, commas */
	uint64_t reserved; /* signatures held from the parent's budget */
};
int stint_put_task_info(struct stint_msg *m, const struct stint_task_info *t);
int stint_get_task_info(const struct stint_msg *m, struct stint_task_info *t);

/* TASK_START reply: the task map and a note when stintd fell back from
 * what was asked (e.g. bound to the pid, not a cgroup); "" when none. */
int stint_put_task_start_rep(struct stint_msg *m,
			     const struct stint_task_info *t, const char *note);
int stint_get_task_start_rep(const struct stint_msg *m,
			     struct stint_task_info *t, char *note, size_t cap);

/* TASK_LIST reply: one page of task maps and whether more follow. */
int stint_put_task_list_entry(struct stint_msg *m,
			      const struct stint_task_info *t);
/* Closes the page: an empty page is still a list. n: entries put. */
int stint_put_task_list_end(struct stint_msg *m, size_t n, bool more);
/* The number of entries and "more"; STINT_WIRE_TYPE when bad. */
int stint_get_task_list_rep(const struct stint_msg *m, size_t *n, bool *more);
int stint_get_task_list_entry(const struct stint_msg *m, size_t i,
			      struct stint_task_info *t);

/* CA_CERT reply: the chain in PEM, the attestation key's SPKI DER
 * (admin.sock only; absent on agent.sock) and the trust domain. Borrowed,
 * as above. The getter fails without the chain; ak_len is 0 and
 * trust_domain "" when absent. */
struct stint_ca_cert_rep {
	const uint8_t *pem;
	size_t pem_len;
	const uint8_t *ak_spki;
	size_t ak_len;
	char trust_domain[256];
};
int stint_put_ca_cert_rep(struct stint_msg *m,
			  const struct stint_ca_cert_rep *r);
int stint_get_ca_cert_rep(const struct stint_msg *m,
			  struct stint_ca_cert_rep *r);

/* CA_CSR reply and CA_INSTALL request: one PEM document (the CA's CSR;
 * the chain to install) under STINT_K_PEM. Borrowed, as above. The getter
 * fails (STINT_WIRE_MISSING/TYPE/RANGE) without it or when it is empty. */
struct stint_pem_msg {
	const uint8_t *pem;
	size_t len;
};
int stint_put_pem_msg(struct stint_msg *m, const struct stint_pem_msg *r);
int stint_get_pem_msg(const struct stint_msg *m, struct stint_pem_msg *r);

/* AUDIT_TAIL. Request: the number of records (absent: the daemon's
 * default); bad field STINT_K_COUNT (not a uint). Reply: the log's path
 * and the last records, oldest first, one text each (an empty array when
 * none). */
struct stint_audit_tail_req {
	bool has_count;
	uint64_t count;
};
int stint_enc_audit_tail_req(struct stint_msg *m,
			     const struct stint_audit_tail_req *r);
int stint_dec_audit_tail_req(const struct stint_msg *m,
			     struct stint_audit_tail_req *r);
int stint_put_audit_tail_rep(struct stint_msg *m, const char *path,
			     const char *const *lines, size_t n);
/* The number of records (0 when absent); STINT_WIRE_TYPE when bad. */
int stint_get_audit_tail_n(const struct stint_msg *m, size_t *n);
int stint_get_audit_tail_line(const struct stint_msg *m, size_t i, char *buf,
			      size_t cap);

/* TASK_EVIDENCE reply: the evidence document and the attestation key's
 * SPKI. Borrowed: the getter's pointers live as long as the message. The
 * getter fails (STINT_WIRE_MISSING/TYPE) without the evidence; ak may be
 * absent (len 0). */
struct stint_evidence_rep {
	const uint8_t *doc;
	size_t doc_len;
	const uint8_t *ak_spki;
	size_t ak_len;
};
int stint_put_evidence_rep(struct stint_msg *m,
			   const struct stint_evidence_rep *r);
int stint_get_evidence_rep(const struct stint_msg *m,
			   struct stint_evidence_rep *r);

/* AUDIT_ROTATE reply: the rotated file's path and the seq the new file
 * starts at. The getter is lenient: path "?" and seq 0 when absent. */
struct stint_audit_rotate_rep {
	char path[4096];
	uint64_t seq;
};
int stint_put_audit_rotate_rep(struct stint_msg *m,
			       const struct stint_audit_rotate_rep *r);
void stint_get_audit_rotate_rep(const struct stint_msg *m,
				struct stint_audit_rotate_rep *r);

/* STATUS counters (STINT_K_COUNTERS, a uint array in this order; a
 * reader takes what it knows and ignores the rest). Counts since stintd
 * started, except the gauges audit_bytes and audit_pending. */
enum stint_counter {
	STINT_C_SIGN_ALLOWED,   /* signatures made */
	STINT_C_TASK_STARTS,    /* tasks started */
	STINT_C_TASK_ENDS,      /* live tasks ended (task end, agent remove) */
	STINT_C_TASK_EXPIRES,   /* live tasks expired at their deadline */
	STINT_C_BACKEND_ERRORS, /* SIGNs the backend failed */
	STINT_C_AUDIT_FAILURES, /* audit records that could not be written */
	STINT_C_AUDIT_BYTES,    /* gauge: size of the current audit file */
	STINT_C_AUDIT_PENDING,  /* gauge: records waiting for the log */
	STINT_C_N
};
/* Refused SIGNs by wire status (STINT_K_REFUSED, a uint array indexed by
 * the status: [0] is always 0). */
#define STINT_REFUSED_N 16

/* STATUS reply. The getter is lenient: absent numbers are 0, absent
 * texts "unknown" (path: ""). */
struct stint_status_rep {
	uint64_t version, pid, uptime, n_agents, n_live;
	char backend[256], trust_domain[256], sync[16], path[4096];
	bool has_head; /* the audit log's head: seq and hash */
	uint64_t audit_seq;
	uint8_t audit_hash[32];
	bool has_nv; /* nv: the TPM audit counter (audit_anchor.c) */
	uint64_t audit_nv;
	bool has_ready; /* the backend reports what it keeps ready */
	uint64_t ready_keys, ready_target, prepared, prepared_max;
	uint64_t session_copies; /* with has_ready; 0 from older stintd */
	bool has_counters;       /* a stintd that counts */
	uint64_t counters[STINT_C_N];
	uint64_t refused[STINT_REFUSED_N];
};
int stint_put_status_rep(struct stint_msg *m, const struct stint_status_rep *r);
void stint_get_status_rep(const struct stint_msg *m,
			  struct stint_status_rep *r);

#endif
