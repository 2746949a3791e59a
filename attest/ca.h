/*
 * The Stint CA. Its key ("stint-ca") and the host attestation key
 * ("stint-ak") live in the backend and sign through backend_sign.c; no
 * CA or attestation key ever exists in a file. The CA certificate chain is
 * public and kept in <state_dir>/ca.pem: a self-signed "Stint CA <trust
 * domain>" root made on first start, or the chain a platform team
 * installed after signing `stint ca csr`. Evidence documents, public too,
 * are kept in <state_dir>/evidence/<task>.ev.
 *
 * The pure builders (root, CSR, leaf, chain check) take any EVP_PKEY, so
 * tests run them with software keys.
 */
#ifndef STINT_ATTEST_CA_H
#define STINT_ATTEST_CA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "attest/backend.h"
#include "stint/wire.h"

#define STINT_CA_KEY_ID    "stint-ca"
#define STINT_AK_KEY_ID    "stint-ak"
#define STINT_CA_SKEW      60  /* default notBefore allowance, s ([ca] skew) */
#define STINT_CA_SKEW_MAX  600 /* the largest [ca] skew accepted */
#define STINT_CA_ROOT_DAYS 3650

/* backend_sign.c: an EC key whose private operation signs in b. */
EVP_PKEY *stint_backend_pkey(struct stint_backend *b, const char *key_id,
			     const struct stint_bytes *spki, char *err,
			     size_t errlen);

/* A leaf certificate for one task (issue 3, section 3). */
struct stint_leaf_req {
	const char *trust_domain;
	const char *agent;
	const char *task_id;
	const char *intent;      /* "" when none */
	const char *parent_task; /* "" for a top-level task */
	const char *attestation_kind;
	const uint8_t *evidence_digest; /* SHA-256 of the evidence */
	const struct stint_bytes *spki; /* the task key */
	int64_t not_before, not_after;
	const char *ext_oid; /* task extension OID; NULL: the default */
	/* The binding block (cert_ext.h): bind_kind NULL or "" for none;
	 * bind_cgroup, bind_unit NULL or "" when absent; exe_sha256 the
	 * agent's pinned executable hash, NULL when it pins none. */
	const char *bind_kind, *bind_cgroup, *bind_unit;
	const uint8_t *exe_sha256;
	const char *audiences; /* aud: comma-separated; NULL or "" none */
	/* deleg: the delegation block (issue 10 §5, cert_ext.h [1]). Leave
	 * root_task NULL (or "") for a top-level task: no block, as before.
	 * For a delegated task the caller sets parent_task to the parent's
	 * id and all four of:
	 *   root_task           the id of the tree's root task (== parent_task
	 *                       when deleg_depth is 1);
	 *   deleg_depth         1 for a child of a top-level task, +1 a level;
	 *   deleg_path          the agent names, comma-joined, from the root
	 *                       task's agent to this task's agent (== agent):
	 *                       deleg_depth + 1 names;
	 *   parent_cert_sha256  SHA-256 of the parent's leaf DER (32 bytes;
	 *                       X509_digest(parent, EVP_sha256(), ...)).
	 * stint_cert_issue refuses a block that breaks the invariants
	 * (stint_task_deleg_check), so no leaf fails verify-peer's check. */
	const char *root_task;
	int deleg_depth;
	const char *deleg_path;
	const uint8_t *parent_cert_sha256;
};

int stint_ca_root_build(EVP_PKEY *key, const char *trust_domain, int64_t now,
			int days, X509 **out, char *err, size_t errlen);
int stint_ca_csr_build(EVP_PKEY *key, const char *trust_domain, X509_REQ **out,
		       char *err, size_t errlen);
int stint_cert_issue(EVP_PKEY *ca_key, X509 *issuer,
		     const struct stint_leaf_req *req, X509 **out, char *err,
		     size_t errlen);
/* A chain to install: chain[0] holds ca_key's public key and is a CA,
 * each certificate is signed by the next, all valid at now. */
int stint_ca_chain_check(EVP_PKEY *ca_key, STACK_OF(X509) * chain, int64_t now,
			 char *err, size_t errlen);
/* PEM certificates in buf; at least one, nothing else. */
STACK_OF(X509) * stint_ca_chain_parse(const char *buf, size_t len, char *err,
				      size_t errlen);

struct stint_ca;

/* Finds or creates the CA key (ca_key_type: STINT_KEY_EC_P256 or
 * STINT_KEY_EC_P384, from [ca] key; an existing key of the other type is
 * kept with a warning) and the attestation key (EC P-256), loads or makes
 * the chain. skew: the notBefore allowance in seconds ([ca] skew).
 * ext_oid: the task extension's OID ([ca] extension_oid; NULL or "" for
 * STINT_TASK_EXT_OID). */
int stint_ca_open(struct stint_backend *b, const char *state_dir,
		  const char *trust_domain, uint32_t ca_key_type, int64_t skew,
		  const char *ext_oid, struct stint_ca **out, char *err,
		  size_t errlen);
/* The notBefore allowance: a leaf's notBefore is task start minus this. */
int64_t stint_ca_skew(const struct stint_ca *ca);
void stint_ca_close(struct stint_ca *ca);

/* The chain in PEM, leaf-side CA first (malloc'ed, NUL-terminated). */
char *stint_ca_chain_pem(struct stint_ca *ca);
char *stint_ca_csr_pem(struct stint_ca *ca, char *err, size_t errlen);
int stint_ca_install(struct stint_ca *ca, const char *pem, size_t len,
		     char *err, size_t errlen);
/* The attestation key: private (signs in the backend) and its SPKI DER. */
EVP_PKEY *stint_ca_ak(struct stint_ca *ca);
const struct stint_bytes *stint_ca_ak_spki(struct stint_ca *ca);
/* Issues a leaf (DER into *der, malloc'ed) and its serial in hex. */
int stint_ca_issue(struct stint_ca *ca, const struct stint_leaf_req *req,
		   struct stint_bytes *der, char *serial, size_t serial_cap,
		   char *err, size_t errlen);

int stint_ca_evidence_save(struct stint_ca *ca, const char *task,
			   const uint8_t *doc, size_t len, char *err,
			   size_t errlen);
int stint_ca_evidence_load(struct stint_ca *ca, const char *task, uint8_t **doc,
			   size_t *len);
void stint_ca_evidence_remove(struct stint_ca *ca, const char *task);

/* An evidence fault to inject ("flip" or "nonce"), for the test that a
 * failed verification creates no task. NULL in stintd; only the test-only
 * program tests/integration/stintd-fault (tests/integration/evidence_fault.c,
 * linked with -Wl,--wrap=stint_ca_test_fault) returns one. It can only
 * make task start fail. */
const char *stint_ca_test_fault(const struct stint_ca *ca);

#endif
