/*
 * The task-facts X.509 extension: what a relying party learns about the
 * task behind a Stint leaf certificate. Non-critical, under an OID in the
 * UUID arc (2.25, needs no registration):
 *
 *   id-stint-task OBJECT IDENTIFIER ::=
 *       { 2 25 25660535294541303970547870080947987359 }
 *       -- UUID 134e0a11-9d51-4322-a77c-29ddc340239f
 *
 *   StintTask ::= SEQUENCE {
 *       taskId           UTF8String,
 *       intentDigest     OCTET STRING,  -- SHA-256 of the intent text
 *       parentTask       UTF8String,    -- "" for a top-level task
 *       attestationKind  UTF8String,    -- "pkcs11" (later "tpm")
 *       evidenceDigest   OCTET STRING   -- SHA-256 of the evidence document
 *   }
 *
 * Encoded and decoded with OpenSSL's ASN.1 templates, never by hand.
 */
#ifndef STINT_ATTEST_CERT_EXT_H
#define STINT_ATTEST_CERT_EXT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/asn1t.h>
#include <openssl/x509.h>

#define STINT_TASK_EXT_OID "2.25.25660535294541303970547870080947987359"

typedef struct stint_task_ext_st {
	ASN1_UTF8STRING *task_id;
	ASN1_OCTET_STRING *intent_digest;
	ASN1_UTF8STRING *parent_task;
	ASN1_UTF8STRING *attestation_kind;
	ASN1_OCTET_STRING *evidence_digest;
} STINT_TASK_EXT;

DECLARE_ASN1_FUNCTIONS(STINT_TASK_EXT)

/* The facts, decoded into plain C. */
struct stint_task_facts {
	char task_id[64];
	uint8_t intent_digest[32];
	char parent_task[64];
	char attestation_kind[32];
	uint8_t evidence_digest[32];
};

/* The extension's OID (a shared object; never free it). */
const ASN1_OBJECT *stint_task_ext_oid(void);
/* Builds the non-critical extension. NULL on a bad field or no memory. */
X509_EXTENSION *stint_task_ext_build(const struct stint_task_facts *f);
/* Finds exactly one task extension in cert and decodes it strictly (no
 * trailing bytes, digests of 32 bytes, texts without NUL that fit).
 * -1 with err saying why. */
int stint_task_ext_get(const X509 *cert, struct stint_task_facts *f, char *err,
		       size_t errlen);

#endif
