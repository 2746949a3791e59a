/*
 * Tamper-evident audit log: JSON Lines, hash-chained.
 *
 * Each line is a JSON object whose last member is "hash": the SHA-256 (hex)
 * of the line's bytes with that member removed, i.e. of
 *     line[0 .. len(line) - len(",\"hash\":\"<64 hex>\"}\n")] + "}"
 * and whose "prev" member is the hash of the previous line ("0"*64 for the
 * first). Verification hashes the exact bytes on disk, never re-serialised
 * JSON. Members: seq, time (UTC, microseconds), event, agent, task, peer
 * {pid, uid, exe}, mechanism, input_sha256, decision, reason, prev, hash;
 * absent facts are omitted.
 */
#ifndef STINT_ATTEST_AUDIT_H
#define STINT_ATTEST_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#include "attest/config.h"
#include "attest/peer.h"

struct stint_audit_event {
	/* daemon-start, daemon-stop, agent-add, agent-remove,
	 * agent-reconcile, task-start, key-generate, task-end, task-expire,
	 * key-destroy, sign-allowed, sign-refused (docs/audit.md) */
	const char *event;
	const char *agent;             /* NULL: omitted */
	const char *task;              /* NULL: omitted */
	const struct stint_peer *peer; /* NULL: omitted */
	/* Which of the agent's selectors the peer matched, STINT_SEL_M_*
	 * bits (stint_agent_matched), written as the peer block's "matched"
	 * list; 0: omitted. */
	unsigned matched;
	const char *mechanism;       /* "CKM_ECDSA_SHA256" */
	const uint8_t *input_sha256; /* 32 bytes, or NULL */
	const char *decision;        /* "allow" | "deny" */
	const char *reason;
	const char *detail; /* free text: key type, ttl, intent... */
	/* When the event happened (CLOCK_REALTIME), e.g. the moment a SIGN
	 * was decided; NULL: when the record is written. */
	const struct timespec *when;
};

struct stint_audit;

/* Opens (creating 0600) and continues the chain from the last line. */
int stint_audit_open(const char *path, enum stint_audit_sync sync,
		     struct stint_audit **out, char *err, size_t errlen);
/* Starts the BATCH sync thread. Call after any fork (daemonize): a thread
 * does not survive one. Until then BATCH records are synced at close. */
int stint_audit_start(struct stint_audit *a);
/* Serialises and writes one record with a single write(2); with ALWAYS it
 * fsyncs before returning, with BATCH a background thread fsyncs within a
 * few milliseconds. Returns -1 (and the caller must refuse what it was
 * about to do) if the record could not be written. Thread-safe. */
int stint_audit_append(struct stint_audit *a,
		       const struct stint_audit_event *ev);
void stint_audit_head(struct stint_audit *a, uint64_t *seq, uint8_t hash[32]);
/* The head and the current file's length (the head record ends there,
 * unless the file is empty). */
void stint_audit_head_at(struct stint_audit *a, uint64_t *seq, uint8_t hash[32],
			 uint64_t *offset);
const char *stint_audit_path(const struct stint_audit *a);

/*
 * Signed checkpoints: an "audit-checkpoint" record whose detail is
 *   seq=<N> hash=<64 hex> key=<64 hex> sig=<hex>
 * N and hash being the record before it, key the SHA-256 of the signing
 * key's SubjectPublicKeyInfo (DER), sig an ECDSA signature (DER) with
 * SHA-256 over the ASCII message STINT_AUDIT_CHECKPOINT_PREFIX "<N>:<hash>".
 */
#define STINT_AUDIT_CHECKPOINT_PREFIX "stint-audit-checkpoint:"
#define STINT_AUDIT_SIG_MAX           160
typedef int (*stint_audit_sign_fn)(void *ctx, const uint8_t *msg, size_t len,
				   uint8_t *sig, size_t *sig_len, char *err,
				   size_t errlen);
void stint_audit_set_signer(struct stint_audit *a, stint_audit_sign_fn fn,
			    void *ctx, const uint8_t spki_sha256[32]);
/* nv: 0 when the checkpoint carries no hardware counter; else the message
 * ends with ":nv=<nv>" (below). */
int stint_audit_checkpoint_message(uint64_t seq, const uint8_t hash[32],
				   uint64_t nv, char *out, size_t cap);
/*
 * nv: the TPM anchor. With a counter set, every checkpoint first advances
 * a hardware counter that never goes back (fn: increment, then read the
 * new value into *value), and carries its value c: detail gets "nv=<c>"
 * and the signed message ":nv=<c>". A counter advanced for a checkpoint
 * that could not be written is used by the next one instead of advancing
 * again; pending (0: none) is such a value from before this start.
 */
typedef int (*stint_audit_counter_fn)(void *ctx, uint64_t *value, char *err,
				      size_t errlen);
void stint_audit_set_counter(struct stint_audit *a, stint_audit_counter_fn fn,
			     void *ctx, uint64_t pending);
/* A checkpoint record's detail, parsed. */
struct stint_audit_cp {
	uint64_t seq;
	uint8_t hash[32];
	bool has_nv;
	uint64_t nv;
	char key[65];
	char sig[2 * STINT_AUDIT_SIG_MAX + 1]; /* hex */
};
int stint_audit_cp_parse(const char *detail, struct stint_audit_cp *cp);
/* True when cp's signature verifies with ak. */
bool stint_audit_cp_sig_ok(EVP_PKEY *ak, const struct stint_audit_cp *cp);
/* The last checkpoint in the current file that carries a counter (nv=):
 * 1 when there is none; 0 with *cp, its record checked against the hash
 * rule and cp->seq, cp->hash checked against the record before it; -1
 * with err when the file cannot be read or that check fails. */
int stint_audit_last_nv_checkpoint(struct stint_audit *a,
				   struct stint_audit_cp *cp, char *err,
				   size_t errlen);
/* Writes a checkpoint of the head (and syncs); without force, only when
 * records were written since the last one. */
int stint_audit_checkpoint(struct stint_audit *a, bool force, char *err,
			   size_t errlen);
/*
 * Rotation: ends the current file with a checkpoint (when a signer is
 * set), moves it to <path>.<UTC time> unless someone (logrotate) already
 * moved it, and continues the chain in a new file at path whose first
 * record, "audit-rotate", links to the old file's head (seq continues, prev
 * is the old head's hash, detail "continues NAME: seq=N hash=H"). old gets
 * the old file's path.
 */
int stint_audit_rotate(struct stint_audit *a, char *old, size_t cap, char *err,
		       size_t errlen);
/* 0 when the log holds the record (seq, hash) ending at offset, or the
 * current file starts right after it; -1 with err saying why not. */
int stint_audit_check_anchor(struct stint_audit *a, uint64_t seq,
			     const uint8_t hash[32], uint64_t offset, char *err,
			     size_t errlen);
void stint_audit_close(struct stint_audit *a); /* fsyncs */
/* [audit] forward: from now on a copy of each record written goes to the
 * journal or syslog (audit_forward.h); STINT_FWD_NONE stops it. */
int stint_audit_set_forward(struct stint_audit *a,
			    enum stint_audit_fwd_kind kind,
			    const char *socket_path, char *err, size_t errlen);

/* The hash rule, shared by the writer and the verifier: SHA-256 of
 * body[0..n] followed by "}" (the record without its hash member). */
int stint_audit_record_hash(const char *body, size_t n, uint8_t out[32]);

enum {
	STINT_AUDIT_LINE_OK = 0,
	STINT_AUDIT_LINE_SHORT,    /* too short to hold a hash member */
	STINT_AUDIT_LINE_NO_HASH,  /* does not end with ,"hash":"<hex>"} */
	STINT_AUDIT_LINE_MISMATCH, /* the hash is not that of the record */
	STINT_AUDIT_LINE_ERROR,    /* out of memory or crypto failure */
};
/* Checks one line (without its "\n") against the hash rule; on OK, hash
 * holds the record's hash. */
int stint_audit_check_line(const char *line, size_t len, uint8_t hash[32]);

struct stint_audit_anchor {
	bool set;
	uint64_t seq;     /* the last record must have this seq... */
	uint8_t hash[32]; /* ...and this hash */
};

struct stint_audit_report {
	uint64_t records;
	uint64_t bad_line; /* 1-based; 0 when the log is good */
	char reason[256];
	uint64_t last_seq;
	uint8_t last_hash[32];
	/* stint_audit_verify_files: */
	const char *bad_file;     /* the file bad_line is in */
	uint64_t first_seq;       /* > 1: the first file continues another */
	uint64_t checkpoints;     /* checkpoint records seen */
	bool checkpoints_checked; /* their signatures were verified */
	uint64_t checkpointed;    /* seq the last checkpoint covers */
	uint64_t unpinned;        /* records after the last checkpoint */
	/* nv: checkpoints carrying the TPM audit counter, and its values */
	uint64_t nv_checkpoints, nv_first, nv_last;
};

struct stint_audit_verify_opts {
	const struct stint_audit_anchor *anchor; /* NULL: none */
	/* The key `stint ca attestation-key` prints: every checkpoint must
	 * carry a valid signature by it, and the log must end with one
	 * unless allow_unpinned_tail. NULL: signatures are not checked. */
	EVP_PKEY *ak;
	bool allow_unpinned_tail;
};

/* Verifies files as one chain, in order (rotated logs, oldest first): each
 * file after the first must continue the one before it. Returns as
 * stint_audit_verify_file. */
int stint_audit_verify_files(const char *const *paths, size_t n,
			     const struct stint_audit_verify_opts *opts,
			     struct stint_audit_report *report);

/* 0 when the whole chain is good (and matches the anchor when set);
 * 1 when it is not (report says the first bad line and why); -1 when the
 * file cannot be read (reason says why). */
int stint_audit_verify_file(const char *path,
			    const struct stint_audit_anchor *anchor,
			    struct stint_audit_report *report);

#endif
