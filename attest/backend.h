/*
 * Key-store backends. stintd alone opens one; it generates task keys,
 * signs with them and destroys them. A key is named by its task id, which
 * is also its CKA_ID and CKA_LABEL in a PKCS#11 token.
 */
#ifndef STINT_ATTEST_BACKEND_H
#define STINT_ATTEST_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "stint/wire.h"

struct stint_config;

/* Public half of a task key, as LIST reports it. All malloc'ed. */
struct stint_pubkey {
	struct stint_bytes spki;
	struct stint_bytes ec_params;
	struct stint_bytes ec_point;
	struct stint_bytes modulus;
	struct stint_bytes exponent;
};
void stint_pubkey_free(struct stint_pubkey *pub);

/* Attributes read back from the token after generation. */
struct stint_key_facts {
	bool local, never_extractable, sensitive, extractable;
	bool sign, decrypt, unwrap, derive;
};

/* What a backend keeps ready, for `stint status`. */
struct stint_backend_stats {
	uint64_t ready_keys, ready_target; /* key pool */
	uint64_t prepared, prepared_max;   /* prepared signing operations */
	uint64_t session_copies;           /* session copies of signing keys */
};

struct stint_backend;

/* Capability flags (stint_backend_ops.caps): what a backend enforces
 * beyond the required ops. Callers test flags and optional ops, never a
 * backend's name. */
enum {
	/* generate binds not_after in hardware: the key is refused after
	 * it whoever asks. The evidence then carries the hardware deadline
	 * and the hardware clock at certification (stint_evidence_claims
	 * tpm_deadline, tpm_clock), and the leaf's notAfter follows them. */
	STINT_BACKEND_HW_DEADLINE = 1u << 0,
	/* A hardware kill switch (kill_switch below, non-NULL): generate
	 * binds the switch's current state, so task starts must not run
	 * while the switch moves (stintd holds its revoke lock shared
	 * around a start, exclusive around kill_switch). */
	STINT_BACKEND_KILL_SWITCH = 1u << 1,
};

/* What evidence is asked about (stint_backend_ops.evidence). */
struct stint_backend_evidence_req {
	const char *key_id;   /* the task key */
	const char *task_id;  /* bound into the evidence */
	const uint8_t *nonce; /* the verifier's, bound into the evidence */
	size_t nonce_len;
	/* What generate (or key_take) reported about the key, for a backend
	 * that attests by statement rather than by its hardware: */
	uint32_t key_type;
	const struct stint_bytes *spki;
	const struct stint_key_facts *facts;
	int64_t time; /* now, seconds since the epoch */
};

/* One signature (stint_backend_ops.sign). */
struct stint_backend_sign_req {
	const char *key_id;
	/* CKM_ECDSA, CKM_RSA_PKCS or CKM_RSA_PKCS_PSS; the input is what
	 * the raw mechanism signs (a digest, a DigestInfo). */
	CK_MECHANISM_TYPE raw;
	const CK_RSA_PKCS_PSS_PARAMS *pss; /* non-NULL exactly for PSS */
	const uint8_t *in;
	size_t in_len;
	/* The caller calls ops->after_reply on this thread once it has
	 * answered (a connection thread); the backend may leave work for
	 * the next signature to that call. */
	bool after_reply;
};

/* Where a signature goes: cap bytes at ptr; len is set on success. */
struct stint_backend_sig {
	uint8_t *ptr;
	size_t cap, len;
};

struct stint_backend_ops {
	/* The [backend] type that opens it; for messages only. */
	const char *name;
	unsigned caps; /* STINT_BACKEND_* flags */
	/* Evidence kind of the documents evidence() returns: "tpm"
	 * (TPM2_Certify), "pkcs11" (a statement of the facts generate
	 * reported, signed by the backend's attestation key). Informational:
	 * stint_evidence_verify() reads the kind from the document. */
	const char *evidence_kind;
	/* not_after: the task deadline (seconds since the epoch); a backend
	 * that can enforce it in hardware (TPM) binds the key to it. */
	int (*generate)(struct stint_backend *b, uint32_t key_type,
			const char *key_id, int64_t not_after,
			struct stint_pubkey *pub, struct stint_key_facts *facts,
			char *err, size_t errlen);
	/* Signs req->in with key req->key_id into sig (see the structs). */
	int (*sign)(struct stint_backend *b,
		    const struct stint_backend_sign_req *req,
		    struct stint_backend_sig *sig, char *err, size_t errlen);
	/* Destroys private and public objects; 0 also when already gone. */
	int (*destroy)(struct stint_backend *b, const char *key_id, char *err,
		       size_t errlen);
	/* A long-lived host key (the CA key "stint-ca", the attestation key
	 * "stint-ak"): found by key_id when it exists, else generated like a
	 * task key (token object, sensitive, never extractable, sign-only).
	 * *created says which. Its attributes are checked either way. */
	int (*host_key)(struct stint_backend *b, const char *key_id,
			uint32_t key_type, struct stint_pubkey *pub,
			struct stint_key_facts *facts, bool *created, char *err,
			size_t errlen);
	/* A ready key of key_type from the backend's pool, made ahead under a
	 * fresh task id (stint_task_id_new), which the caller must use as the
	 * task's id: 0 with id, *pub (now the caller's) and *facts filled; -1
	 * when none is ready, which is not an error (the caller mints an id
	 * and calls generate). Makes no call into the token. NULL: no pool. */
	int (*key_take)(struct stint_backend *b, uint32_t key_type,
			char id[STINT_TASK_ID_MAX + 1],
			struct stint_pubkey *pub,
			struct stint_key_facts *facts);
	/* Destroys every key the backend marked as a task key when it made
	 * it (PKCS#11: CKA_SUBJECT "CN=stintd task key") whose id is shaped
	 * like a task id (stint_task_id_shaped) and for which keep(ctx, id)
	 * is false, marked keys left under the "pool-<32 hex>" ids of earlier
	 * versions, and marked keys without any id (left by a failed
	 * generation) unless keep(ctx, "") is true; never touches an unmarked
	 * key (host keys, an operator's own keys). gone(ctx, id), when not
	 * NULL, is called for each key destroyed (id "" for one without id),
	 * *destroyed counts them. Keys the
	 * backend holds ready for key_take are never destroyed. It must not
	 * run while tasks start (a taken key is not in the store yet):
	 * stintd calls it once, after daemonizing and before serving. -1
	 * when some key could not be checked or destroyed (err says which);
	 * the rest are still swept. NULL: nothing to sweep. */
	int (*sweep)(struct stint_backend *b,
		     bool (*keep)(void *ctx, const char *id),
		     void (*gone)(void *ctx, const char *id), void *ctx,
		     size_t *destroyed, char *err, size_t errlen);
	/* *n = how many objects in the backend carry the task-key marker
	 * (any id): whether this token has served a stintd before. NULL: the
	 * backend cannot tell. */
	int (*own_keys)(struct stint_backend *b, size_t *n, char *err,
			size_t errlen);
	/* Evidence about task key key_id from the backend's attestation key,
	 * bound to req->nonce and req->task_id: a complete evidence document
	 * (evidence.h, kind evidence_kind) in *doc (malloc'ed), which
	 * stint_evidence_verify() checks against ak_spki. The TPM certifies
	 * the key (TPM2_Certify); the PKCS#11 backend signs a statement of
	 * req->facts with its host key "stint-ak". */
	int (*evidence)(struct stint_backend *b,
			const struct stint_backend_evidence_req *req,
			struct stint_bytes *doc, char *err, size_t errlen);
	/* The backend's attestation key as SPKI DER (malloc'ed): what
	 * evidence and ak_sign verify against, and what `stint ca
	 * attestation-key` prints for enrolment. */
	int (*ak_spki)(struct stint_backend *b, struct stint_bytes *spki,
		       char *err, size_t errlen);
	/* Signs data (audit checkpoints) with the attestation key, ECDSA
	 * with SHA-256; sig
	 * gets a DER ECDSA-Sig-Value, *sig_len is the capacity in, the
	 * length out. Must never produce a signature that could pass for
	 * the backend's own evidence. */
	int (*ak_sign)(struct stint_backend *b, const uint8_t *data, size_t len,
		       uint8_t *sig, size_t *sig_len, char *err, size_t errlen);
	/* Optional (NULL: no hardware kill switch; set exactly when caps
	 * has STINT_BACKEND_KILL_SWITCH). Moves the switch on: from then on
	 * the hardware refuses every task key made before; keys made
	 * afterwards bind the new state. Cannot be undone. *counter gets
	 * the switch's new value. Called with no task start in flight. */
	int (*kill_switch)(struct stint_backend *b, uint64_t *counter,
			   char *err, size_t errlen);
	/* nv: the audit anchor (audit_anchor.c). Optional (NULL: no
	 * hardware counter; the anchor is absent). Reads a monotonic
	 * counter in the hardware, after incrementing it when advance;
	 * *value is 0 while it was never advanced. */
	int (*audit_counter)(struct stint_backend *b, bool advance,
			     uint64_t *value, char *err, size_t errlen);
	/* Optional (NULL: nothing to do). A connection thread calls it after
	 * each reply it sent and before it ends: the work a sign with
	 * after_reply left for this thread (PKCS#11: C_SignInit of the next
	 * operation, see pkcs11_prep.h) runs here, between the reply and the
	 * next request, without waking another thread. */
	void (*after_reply)(struct stint_backend *b);
	/* Fills *st. NULL: the backend keeps nothing ready. */
	void (*stats)(struct stint_backend *b, struct stint_backend_stats *st);
	void (*close)(struct stint_backend *b);
};

struct stint_backend {
	const struct stint_backend_ops *ops;
};

/* True when b has every flag in caps. */
static inline bool
stint_backend_has(const struct stint_backend *b, unsigned caps)
{
	return (b->ops->caps & caps) == caps;
}

/* Opens the backend named in cfg->backend. err says what to fix. */
int stint_backend_open(const struct stint_config *cfg,
		       struct stint_backend **out, char *err, size_t errlen);
/* PKCS#11 implementation (backend/pkcs11_*.c). The PIN is read from
 * cfg->backend.pin_file, used for C_Login and wiped. */
int stint_backend_pkcs11_open(const struct stint_config *cfg,
			      struct stint_backend **out, char *err,
			      size_t errlen);
/* TPM 2.0 implementation (backend/tpm_*.c, built when configure finds
 * tpm2-tss): cfg->backend.tcti, state in <state_dir>/tpm. */
int stint_backend_tpm_open(const struct stint_config *cfg,
			   struct stint_backend **out, char *err,
			   size_t errlen);

/* A fresh task id: "t-" and 32 lowercase hex digits from RAND_bytes
 * (128 bits). It is also the key's CKA_ID and CKA_LABEL. */
int stint_task_id_new(char id[STINT_TASK_ID_MAX + 1]);
/* True when s[0..len) has exactly that shape. */
bool stint_task_id_shaped(const char *s, size_t len);

#define STINT_SIG_MAX 512 /* RSA-4096 fits */

#endif
