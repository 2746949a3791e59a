/*
 * Checking a Stint client certificate, for relying parties written in C.
 *
 * A server that terminates mutual TLS itself calls stint_verify_peer with
 * the presented leaf (and any intermediates), a store holding the Stint CA
 * bundle (`stint ca cert`), and what it expects. The function checks:
 * the chain to the bundle, validity now, exactly one URI SAN of the form
 * spiffe://<trust domain>/agent/<name> (no other SAN), basicConstraints
 * CA:FALSE, extendedKeyUsage clientAuth, keyUsage digitalSignature, and
 * the Stint task extension (and, with stint_verify_peer_audience, that
 * the task names the relying party as an audience); then returns the agent, the
 * task id and the deadline. Link with -lstint-verify (it needs OpenSSL 3
 * libcrypto): `pkg-config --cflags --libs stint-verify`; see
 * stint_verify_peer(3).
 */
#ifndef STINT_VERIFY_H
#define STINT_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Which check failed (stint_verify_strerror names it). */
enum stint_verify_result {
	STINT_VERIFY_OK = 0,
	STINT_VERIFY_ERR_ARGS,         /* NULL leaf or store, bad buffers */
	STINT_VERIFY_ERR_CHAIN,        /* does not chain to the bundle */
	STINT_VERIFY_ERR_VALIDITY,     /* not yet valid, or expired */
	STINT_VERIFY_ERR_SAN,          /* not exactly one spiffe:// URI SAN */
	STINT_VERIFY_ERR_TRUST_DOMAIN, /* SPIFFE ID of another trust domain */
	STINT_VERIFY_ERR_AGENT,        /* SPIFFE ID of another agent */
	STINT_VERIFY_ERR_CA,           /* a CA certificate, not a leaf */
	STINT_VERIFY_ERR_USAGE,        /* no clientAuth or digitalSignature */
	STINT_VERIFY_ERR_TASK_EXT,     /* task extension missing or bad */
	STINT_VERIFY_ERR_NOMEM,
	STINT_VERIFY_ERR_AUDIENCE,   /* the task does not name this audience */
	STINT_VERIFY_ERR_DELEGATION, /* the delegation block's invariants */
	STINT_VERIFY_ERR_PARENT,     /* not the parent's certificate (below) */
};

struct stint_peer_identity {
	char spiffe_id[384];
	char trust_domain[256];
	char agent[65];
	char task[64];
	char parent_task[64];
	char attestation_kind[32];
	uint8_t intent_digest[32];   /* SHA-256 of the task's intent */
	uint8_t evidence_digest[32]; /* SHA-256 of the evidence document */
	int64_t not_after;           /* the task deadline, epoch seconds */
	char serial[80];             /* hex */
	/* What holds the key (the task extension's binding block; all ""
	 * and false in certificates that have none, as earlier ones): */
	char bind_kind[16];     /* "pid", "cgroup", "none" or "" */
	char bind_cgroup[513];  /* the bound cgroup v2 path, or "" */
	char bind_unit[256];    /* its systemd unit, or "" */
	int has_exe_sha256;     /* the agent pins its executable: */
	uint8_t exe_sha256[32]; /* its SHA-256 */
	/* The systems the task may authenticate to, comma-separated (at
	 * most 16 names of 128 bytes); "" when the certificate names none. */
	char audiences[16 * 129 + 1];
	/* A delegated task (docs/delegation.md): delegated is 0, and the
	 * fields below empty, for a top-level task. Otherwise parent_task
	 * (above) is the parent's id and the leaf's agent is the path's last
	 * name. Checked: depth + 1 names, the agent ends the path, the root
	 * task is the parent exactly at depth 1. */
	int delegated;
	char root_task[64];             /* the id of the tree's root task */
	int depth;                      /* 1: a child of the root task */
	char delegation_path[16 * 65];  /* agent names, the root task's
					 * first, comma-joined */
	uint8_t parent_cert_sha256[32]; /* SHA-256 of the parent's leaf DER */
};

/* untrusted: intermediates the peer sent (may be NULL). trust_domain and
 * agent: NULL accepts any. now: 0 for the current time. On failure err
 * (if non-NULL) says exactly what is wrong. */
int stint_verify_peer(X509 *leaf, STACK_OF(X509) * untrusted, X509_STORE *trust,
		      const char *trust_domain, const char *agent, time_t now,
		      struct stint_peer_identity *out, char *err,
		      size_t errlen);
/* The same, also accepting the task extension under task_oid (dotted, an
 * organisation's [ca] extension_oid; NULL for none). Both functions always
 * accept Stint's default OID and the legacy 2.25 one. */
int stint_verify_peer_oid(X509 *leaf, STACK_OF(X509) * untrusted,
			  X509_STORE *trust, const char *trust_domain,
			  const char *agent, const char *task_oid, time_t now,
			  struct stint_peer_identity *out, char *err,
			  size_t errlen);
/* The same, also requiring that the task names audience, the relying
 * party's own name (stint agent add --audiences, stint task start
 * --audience): STINT_VERIFY_ERR_AUDIENCE when its certificate lists other
 * audiences or none at all. audience NULL: no audience check (as
 * stint_verify_peer_oid). */
int stint_verify_peer_audience(X509 *leaf, STACK_OF(X509) * untrusted,
			       X509_STORE *trust, const char *trust_domain,
			       const char *agent, const char *task_oid,
			       const char *audience, time_t now,
			       struct stint_peer_identity *out, char *err,
			       size_t errlen);
/* Checks that parent is the certificate of the parent task of child (a
 * delegated identity that stint_verify_peer* returned): its SHA-256 (over
 * the DER) is child->parent_cert_sha256, its task extension names task
 * child->parent_task, its notAfter is not before the child's, its SPIFFE
 * agent is the path's next-to-last name, the child's audiences are all
 * among its own, and, when it is delegated too,
 * its root task is the child's and its path the child's one level up.
 * The parent's own chain is not checked again: the child's signed
 * certificate commits to its hash. task_oid: as for stint_verify_peer_oid.
 * STINT_VERIFY_ERR_PARENT when it is not (ERR_ARGS when child is not
 * delegated), with err saying why. */
int stint_verify_parent(const struct stint_peer_identity *child, X509 *parent,
			const char *task_oid, char *err, size_t errlen);
const char *stint_verify_strerror(int result);

#ifdef __cplusplus
}
#endif
#endif
