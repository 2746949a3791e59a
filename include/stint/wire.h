/*
 * Stint wire protocol, shared by stint-pkcs11.so, stintd and the stint CLI.
 *
 * A frame is a 4-byte big-endian length followed by that many bytes holding
 * exactly one definite-length CBOR map whose keys are small unsigned
 * integers (STINT_K_*). Requests carry STINT_K_OP; replies carry
 * STINT_K_STATUS and, when it is not STINT_OK, a human-readable
 * STINT_K_ERROR. See docs/protocol.md for every message and its fields.
 *
 * Installed: what a third-party client needs (limits, ops, statuses, keys).
 * Stint's own codecs are private, in common/proto.h.
 */
#ifndef STINT_WIRE_H
#define STINT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STINT_WIRE_VERSION 1
#define STINT_FRAME_MAX    (64u * 1024u) /* bytes after the length prefix */

#define STINT_NAME_MAX 64 /* agent names: [A-Za-z0-9._-], 1..64 */
/* prov: an agent's source, the path of its agents.d file ("": the CLI) */
#define STINT_SOURCE_MAX  255
#define STINT_TASK_ID_MAX 40 /* "t-" + 32 lowercase hex = 34 */
#define STINT_MECHS_MAX   32
#define STINT_INTENT_MAX  1024
#define STINT_REASON_MAX  256
#define STINT_LIST_PAGE   64 /* tasks per LIST reply at most */

/* deleg: an agent's delegate-to list and a task's delegation path, as
 * text (agent names joined by commas) */
#define STINT_DELEGATE_TO_MAX 1040
#define STINT_DPATH_MAX       1040
#define STINT_DEPTH_MAX       15 /* the deepest a tree may grow */

#define STINT_CGROUP_MAX 512 /* a bound cgroup's path, bytes (bind) */

/* Operations (STINT_K_OP). Agent socket: HELLO, LIST, SIGN. */
enum stint_op {
	STINT_OP_HELLO = 1,
	STINT_OP_LIST = 2,
	STINT_OP_SIGN = 3,
	/* admin socket only */
	STINT_OP_AGENT_ADD = 16,
	STINT_OP_AGENT_LIST = 17,
	STINT_OP_AGENT_REMOVE = 18,
	STINT_OP_TASK_START = 19,
	STINT_OP_TASK_END = 20,
	STINT_OP_TASK_LIST = 21,
	STINT_OP_TASK_SHOW = 22,
	STINT_OP_AUDIT_TAIL = 23,
	STINT_OP_STATUS = 24,
	STINT_OP_CA_CERT = 25,       /* the CA chain (trust bundle), AK */
	STINT_OP_CA_CSR = 26,        /* a CSR for the CA key */
	STINT_OP_CA_INSTALL = 27,    /* install a signed CA chain */
	STINT_OP_TASK_EVIDENCE = 28, /* a task's attestation evidence */
	STINT_OP_KILL_SWITCH = 29, /* TPM: revoke every task key in hardware */
	/* close the audit log, continue the chain in a new file */
	STINT_OP_AUDIT_ROTATE = 45,
	/* operators (oper): orchestrators that may act for named agents */
	STINT_OP_OPERATOR_ADD = 50,
	STINT_OP_OPERATOR_LIST = 51,
	STINT_OP_OPERATOR_REMOVE = 52,
	/* deleg: delegation (60-69) */
	STINT_OP_DELEGATE = 60,      /* agent.sock: a child of a task you use */
	STINT_OP_TASK_DELEGATE = 61, /* admin.sock: the same for an operator */
	STINT_OP_TASK_TREE = 62,     /* admin.sock: a task's live tree */
	STINT_OP_AUDIT_TREE = 63,    /* admin.sock: SIGN records of a tree */
	/* prov: 85-89 */
	STINT_OP_RELOAD = 85, /* reconcile agents.d now (or a dry run) */
	/* runcg: 90-91 */
	STINT_OP_RUN_PREPARE = 90, /* stint run: a cgroup for its command */
};

/* Reply status (STINT_K_STATUS). Stable numbers: they are on the wire. */
enum stint_status {
	STINT_OK = 0,
	STINT_E_BAD_REQUEST = 1, /* malformed, missing or wrong-typed field */
	STINT_E_VERSION = 2,     /* unsupported protocol version */
	STINT_E_NO_AGENT = 3,    /* the peer maps to no registered agent */
	STINT_E_NOT_YOURS = 4,   /* task unknown or owned by another agent */
	STINT_E_NOT_LIVE = 5,    /* task ended, revoked or past its deadline */
	STINT_E_MECHANISM = 6,   /* mechanism not allowed for this key */
	STINT_E_BUDGET = 7,      /* signature budget spent */
	STINT_E_BACKEND = 8,     /* the token or TPM failed */
	STINT_E_NOT_FOUND = 9,   /* admin: no such agent or task */
	STINT_E_EXISTS = 10,     /* admin: already exists */
	STINT_E_DENIED = 11,     /* operation not allowed on this socket */
	STINT_E_INTERNAL = 12,  /* store or audit failure; nothing was signed */
	STINT_E_TOO_LARGE = 13, /* frame over STINT_FRAME_MAX */
	STINT_E_LIMIT = 14,     /* admin: TTL or budget above a limit */
	STINT_E_UNKNOWN_OP = 15,
};

/* Map keys. A key means the same thing in every message. */
enum stint_key {
	STINT_K_OP = 1,     /* uint, requests */
	STINT_K_STATUS = 2, /* uint, replies */
	STINT_K_ERROR = 3,  /* text, replies with status != 0 */
	STINT_K_VERSION = 4,
	STINT_K_AGENT = 5,      /* text */
	STINT_K_TASK = 6,       /* text task id */
	STINT_K_MECH = 7,       /* uint CKM_* */
	STINT_K_DATA = 8,       /* bytes: data or digest to sign */
	STINT_K_SIG = 9,        /* bytes */
	STINT_K_PSS_HASH = 10,  /* uint CKM_SHA* */
	STINT_K_PSS_MGF = 11,   /* uint CKG_MGF1_* */
	STINT_K_PSS_SALT = 12,  /* uint */
	STINT_K_TASKS = 13,     /* array of task maps */
	STINT_K_CURSOR = 14,    /* text: continue after this task id */
	STINT_K_MORE = 15,      /* bool: another page follows */
	STINT_K_KEY_TYPE = 16,  /* uint enum stint_key_type */
	STINT_K_SPKI = 17,      /* bytes: SubjectPublicKeyInfo DER */
	STINT_K_MECHS = 18,     /* array of uint CKM_* */
	STINT_K_NOT_AFTER = 19, /* uint: deadline, seconds since the epoch */
	STINT_K_CERT = 20,      /* bytes: X.509 DER */
	STINT_K_EC_PARAMS = 21, /* bytes: CKA_EC_PARAMS */
	STINT_K_EC_POINT = 22,  /* bytes: CKA_EC_POINT (DER OCTET STRING) */
	STINT_K_MODULUS = 23,   /* bytes: CKA_MODULUS */
	STINT_K_EXPONENT = 24,  /* bytes: CKA_PUBLIC_EXPONENT */
	STINT_K_UID = 25,
	STINT_K_GID = 26,      /* absent: any gid */
	STINT_K_MAX_TTL = 27,  /* uint seconds */
	STINT_K_TTL = 28,      /* uint seconds */
	STINT_K_MAX_SIGS = 29, /* uint, 0 = unlimited */
	STINT_K_INTENT = 30,   /* text */
	STINT_K_REASON = 31,   /* text */
	STINT_K_STATE = 32,    /* text: live | ended | expired */
	STINT_K_SIGS_USED = 33,
	STINT_K_AGENTS = 34, /* array of agent maps */
	STINT_K_ALL = 35,    /* bool: include ended tasks */
	STINT_K_LINES = 36,  /* array of text (audit records) */
	STINT_K_COUNT = 37,
	STINT_K_CREATED = 38,      /* uint seconds since the epoch */
	STINT_K_ENDED = 39,        /* uint seconds since the epoch */
	STINT_K_URI = 40,          /* text: pkcs11: URI of the task key */
	STINT_K_AUDIT_SEQ = 41,    /* uint: seq of the last audit record */
	STINT_K_AUDIT_HASH = 42,   /* bytes(32): hash of the last record */
	STINT_K_PATH = 43,         /* text: audit log path */
	STINT_K_BACKEND = 44,      /* text: "pkcs11 (token 'stint')" */
	STINT_K_TRUST_DOMAIN = 45, /* text */
	STINT_K_UPTIME = 46,       /* uint seconds */
	STINT_K_N_AGENTS = 47,     /* uint */
	STINT_K_N_LIVE = 48,       /* uint: live tasks */
	STINT_K_SYNC = 49,         /* text: always | batch | none */
	STINT_K_PID = 50,          /* uint: stintd's pid */
	STINT_K_PEM = 51,          /* bytes: PEM certificates or CSR */
	STINT_K_EVIDENCE = 52,     /* bytes: evidence document (CBOR) */
	STINT_K_AK_SPKI = 53,      /* bytes: attestation key SPKI DER */
	STINT_K_COUNTER = 54,      /* uint: TPM kill-switch counter value */
	STINT_K_READY_KEYS = 55,   /* uint: keys the backend holds ready */
	STINT_K_READY_TARGET = 56, /* uint: [backend] key_pool */
	STINT_K_PREPARED = 57,     /* uint: prepared signing operations */
	STINT_K_PREPARED_MAX = 58, /* uint: [backend] prepared_ops */
	STINT_K_COUNTERS = 59,     /* uint array: STATUS counters */
	STINT_K_REFUSED = 60,      /* uint array: refused SIGNs by status */
	/* operators (oper) */
	STINT_K_OPERATOR = 80,  /* text: operator name */
	STINT_K_OPERATORS = 81, /* array of operator maps */
	STINT_K_OP_AGENTS = 82, /* array of text: agents an operator serves */
	/* ident: agent selectors (text; absent = not set) */
	STINT_K_EXE = 70,        /* absolute path of the executable */
	STINT_K_EXE_SHA256 = 71, /* its SHA-256, 64 lowercase hex digits */
	STINT_K_CGROUP = 72,     /* cgroup v2 path: this cgroup or below */
	STINT_K_UNIT = 73,       /* systemd unit (NAME.service) */
	STINT_K_LSM_LABEL = 74,  /* SO_PEERSEC label */
	/* bind: tasks bound to a process or a cgroup, stint run */
	STINT_K_BIND_PID = 90,    /* uint: the bound process */
	STINT_K_BIND_START = 91,  /* uint: its start time (/proc stat 22) */
	STINT_K_BIND_CGROUP = 92, /* text: the bound cgroup v2 path */
	STINT_K_BIND_OWNED = 93,  /* bool: stintd made the cgroup (run) */
	STINT_K_RUN_PID = 94,     /* uint: stint run's command, not yet run */
	STINT_K_NOTE = 95,        /* text: what the CLI should tell the user */
	/* aud: audiences, the systems a task may authenticate to */
	STINT_K_AUDIENCES = 110, /* text: names joined by commas */
	/* prov: 120-129 */
	STINT_K_SOURCE = 120, /* text: the agents.d file declaring an agent */
	/* nv: 170-179 */
	STINT_K_AUDIT_NV = 170, /* uint: the TPM audit counter (status) */
	/* runcg: 180-184 (RUN_PREPARE, TASK_START of stint run) */
	STINT_K_RUN_CGROUP = 180, /* text: the cgroup RUN_PREPARE made */
	STINT_K_RUN_MOVED = 181,  /* bool: stintd moved the command in */
	/* sesskey: 185-189 */
	STINT_K_SESSION_COPIES = 185, /* uint: session copies of task keys */
	/* deleg: 130-149 */
	STINT_K_DELEGATE_TO = 130, /* text: agent names joined by commas */
	STINT_K_MAX_DEPTH = 131,   /* uint: delegation depth an agent allows */
	STINT_K_PARENT = 132,      /* text: parent task id */
	STINT_K_ROOT = 133,        /* text: root task id of a tree */
	STINT_K_DEPTH = 134,       /* uint: 0 for a root task */
	STINT_K_DPATH = 135,       /* text: agent names root..task, commas */
	STINT_K_RESERVED = 136,    /* uint: budget reserved from the parent */
	/* prov: 160-169 (RELOAD) */
	STINT_K_DRY_RUN = 160,       /* bool: report only, change nothing */
	STINT_K_RELOAD_AGENTS = 161, /* array of {AGENT, SOURCE, ACTION} */
	STINT_K_RELOAD_ACTION = 162, /* text: added|updated|removed|... */
	STINT_K_RELOAD_TASKS = 163,  /* array of {TASK, AGENT, REASON} */
	STINT_K_RELOAD_KIND = 164,   /* text: agent | operator */
	/* ident: 150-159 */
	/* HELLO reply, only when several agents match: every name, sorted;
	 * STINT_K_AGENT stays the lowest. */
	STINT_K_AGENT_NAMES = 150, /* array of text */
	/* LIST and SIGN: act as this agent (absent: the lowest name). */
	STINT_K_AS_AGENT = 151, /* text */
};

enum stint_key_type {
	STINT_KEY_EC_P256 = 1,
	STINT_KEY_EC_P384 = 2,
	STINT_KEY_RSA_2048 = 3,
	STINT_KEY_RSA_3072 = 4,
};

/* A borrowed or owned byte string. */
struct stint_bytes {
	uint8_t *ptr;
	size_t len;
};
/* Frees b->ptr and zeroes b (libstint-common). */
void stint_bytes_clear(struct stint_bytes *b);

#ifdef __cplusplus
}
#endif
#endif /* STINT_WIRE_H */
