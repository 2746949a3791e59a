/*
 * The task-facts X.509 extension: what a relying party learns about the
 * task behind a Stint leaf certificate. Non-critical. Its default OID is
 * the project's UUID 134e0a11-9d51-4322-a77c-29ddc340239f in the
 * registration-free GUID arc 1.2.840.113556.1.8000.2554, which splits the
 * UUID into arcs of at most 24 bits (docs/attestation.md), so every parser
 * reads it (libtasn1 and python-cryptography refuse arcs of 64 bits or
 * more, as the 2.25 form of the same UUID has):
 *
 *   id-stint-task OBJECT IDENTIFIER ::= { 1 2 840 113556 1 8000 2554
 *       4942 2577 40273 17186 42876 2743747 4203423 }
 *
 * An organisation may issue it under its own arc ([ca] extension_oid);
 * verifiers accept the default, the configured one and the legacy
 * 2.25.25660535294541303970547870080947987359 of earlier versions.
 *
 *   StintTask ::= SEQUENCE {
 *       taskId           UTF8String,
 *       intentDigest     OCTET STRING,  -- SHA-256 of the intent text
 *       parentTask       UTF8String,    -- "" for a top-level task
 *       attestationKind  UTF8String,    -- "pkcs11" (later "tpm")
 *       evidenceDigest   OCTET STRING,  -- SHA-256 of the evidence document
 *       binding      [0] EXPLICIT StintBinding OPTIONAL,
 *       delegation   [1] EXPLICIT StintDelegation OPTIONAL,
 *       audiences   [10] EXPLICIT SEQUENCE SIZE (1..16) OF UTF8String
 *                        OPTIONAL      -- aud: the systems the task may
 *                                      -- authenticate to; absent: none
 *   }
 *
 *   -- What holds the key (issue 12 §6). Present when the task is bound
 *   -- or its agent pins an executable hash; absent in certificates of
 *   -- earlier versions, which still verify.
 *   StintBinding ::= SEQUENCE {
 *       kind             UTF8String,    -- "pid", "cgroup" or "none"
 *       cgroup       [0] IMPLICIT UTF8String OPTIONAL,   -- cgroup v2 path
 *       unit         [1] IMPLICIT UTF8String OPTIONAL,   -- its systemd unit
 *       exeSha256    [2] IMPLICIT OCTET STRING OPTIONAL  -- agent's pin
 *   }
 *
 *   -- A delegated task (issue 10 §5; docs/delegation.md). Present when
 *   -- the task was delegated from a parent task (whose id is parentTask);
 *   -- absent for a top-level task and in certificates of earlier
 *   -- versions, which still verify. A verifier of an earlier version
 *   -- refuses a leaf that has it (fails closed).
 *   StintDelegation ::= SEQUENCE {
 *       rootTask         UTF8String,   -- the id of the tree's root task
 *       depth            INTEGER (1..15), -- 1: a child of the root
 *       path             SEQUENCE SIZE (2..16) OF UTF8String,
 *                                      -- agent names: the root task's
 *                                      -- agent first, this task's last;
 *                                      -- exactly depth + 1 of them
 *       parentCertSha256 OCTET STRING  -- SHA-256 of the parent's leaf
 *                                      -- certificate (its DER), 32 bytes
 *   }
 *
 * Encoded and decoded with OpenSSL's ASN.1 templates, never by hand.
 */
#ifndef STINT_ATTEST_CERT_EXT_H
#define STINT_ATTEST_CERT_EXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/asn1t.h>
#include <openssl/x509.h>

#include "common/audience.h"

#define STINT_TASK_EXT_OID                                                     \
	"1.2.840.113556.1.8000.2554.4942.2577.40273.17186.42876.2743747."      \
	"4203423"
/* Issued before; still accepted by the verifiers, never issued. */
#define STINT_TASK_EXT_OID_LEGACY "2.25.25660535294541303970547870080947987359"
/* The longest dotted OID accepted for [ca] extension_oid, with its NUL. */
#define STINT_OID_TEXT_MAX 128

typedef struct stint_task_binding_st {
	ASN1_UTF8STRING *kind;
	ASN1_UTF8STRING *cgroup;       /* optional */
	ASN1_UTF8STRING *unit;         /* optional */
	ASN1_OCTET_STRING *exe_sha256; /* optional */
} STINT_TASK_BINDING;

DECLARE_ASN1_FUNCTIONS(STINT_TASK_BINDING)

/* deleg: the delegation block [1] */
#define STINT_DELEG_DEPTH_MAX 15 /* path of at most 16 agent names */
/* The path as text: 16 names of at most 64 bytes, comma-joined, a NUL. */
#define STINT_DELEG_PATH_TEXT_MAX ((STINT_DELEG_DEPTH_MAX + 1) * 65)

typedef struct stint_task_delegation_st {
	ASN1_UTF8STRING *root_task;
	ASN1_INTEGER *depth;
	STACK_OF(ASN1_UTF8STRING) * path;
	ASN1_OCTET_STRING *parent_cert_sha256;
} STINT_TASK_DELEGATION;

DECLARE_ASN1_FUNCTIONS(STINT_TASK_DELEGATION)

typedef struct stint_task_ext_st {
	ASN1_UTF8STRING *task_id;
	ASN1_OCTET_STRING *intent_digest;
	ASN1_UTF8STRING *parent_task;
	ASN1_UTF8STRING *attestation_kind;
	ASN1_OCTET_STRING *evidence_digest;
	STINT_TASK_BINDING *binding;       /* optional */
	STINT_TASK_DELEGATION *delegation; /* deleg: optional, [1] */
	/* aud: [10] EXPLICIT, absent when the task names no audience */
	STACK_OF(ASN1_UTF8STRING) * audiences;
} STINT_TASK_EXT;

DECLARE_ASN1_FUNCTIONS(STINT_TASK_EXT)

/* The facts, decoded into plain C. */
struct stint_task_facts {
	char task_id[64];
	uint8_t intent_digest[32];
	char parent_task[64];
	char attestation_kind[32];
	uint8_t evidence_digest[32];
	/* The binding block; bind_kind "" when the certificate has none. */
	char bind_kind[16];    /* "pid", "cgroup", "none" */
	char bind_cgroup[513]; /* "" unless bound to a cgroup */
	char bind_unit[256];   /* "" when the cgroup is in no unit */
	bool has_exe_sha256;   /* the agent pins its executable */
	uint8_t exe_sha256[32];
	/* aud: the task's audiences, comma-separated; "" none */
	char audiences[STINT_AUDIENCES_TEXT_MAX + 1];
	/* deleg: the delegation block; has_delegation false (and the rest
	 * empty) for a top-level task. When true, parent_task is the parent's
	 * id, depth is 1..STINT_DELEG_DEPTH_MAX, path holds depth + 1 agent
	 * names comma-joined (the root task's agent first, this task's
	 * last), and parent_cert_sha256 is the SHA-256 of the parent's leaf
	 * certificate DER (X509_digest(parent, EVP_sha256(), ...)). */
	bool has_delegation;
	char root_task[64];
	int depth;
	char path[STINT_DELEG_PATH_TEXT_MAX];
	uint8_t parent_cert_sha256[32];
};

/* The default OID (a shared object; never free it). */
const ASN1_OBJECT *stint_task_ext_oid(void);
/* Checks a dotted OID for [ca] extension_oid: canonical decimal arcs, a
 * valid root, at least three arcs, every arc (and the first two combined)
 * below 2^63, and not an OID OpenSSL already knows. -1 with err. */
int stint_task_ext_oid_check(const char *dotted, char *err, size_t errlen);
/* Builds the non-critical extension under oid (dotted; NULL or "" for
 * STINT_TASK_EXT_OID). NULL on a bad field or OID, or no memory. */
X509_EXTENSION *stint_task_ext_build(const struct stint_task_facts *f,
				     const char *oid);
/* Finds exactly one task extension in cert, under STINT_TASK_EXT_OID,
 * STINT_TASK_EXT_OID_LEGACY or extra_oid (dotted; NULL or "" for none),
 * and decodes it strictly (no trailing bytes, digests of 32 bytes, texts
 * without NUL that fit). -1 with err saying why. */
int stint_task_ext_get(const X509 *cert, const char *extra_oid,
		       struct stint_task_facts *f, char *err, size_t errlen);
/* deleg: the invariants a delegated task's facts must hold (0 when f has
 * no delegation block): the block is well formed, its path ends with
 * agent (the certificate's own SPIFFE agent; NULL skips that check), the
 * root task is the parent exactly when depth is 1, and the task is
 * neither its own parent nor its root. -1 with err saying which. */
int stint_task_deleg_check(const struct stint_task_facts *f, const char *agent,
			   char *err, size_t errlen);

#endif
