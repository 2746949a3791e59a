/*
 * The task-facts extension (cert_ext.h), with OpenSSL ASN.1 templates.
 */

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include "attest/cert_ext.h"

ASN1_SEQUENCE(STINT_TASK_EXT) =
	{
		ASN1_SIMPLE(STINT_TASK_EXT, task_id, ASN1_UTF8STRING),
		ASN1_SIMPLE(STINT_TASK_EXT, intent_digest, ASN1_OCTET_STRING),
		ASN1_SIMPLE(STINT_TASK_EXT, parent_task, ASN1_UTF8STRING),
		ASN1_SIMPLE(STINT_TASK_EXT, attestation_kind, ASN1_UTF8STRING),
		ASN1_SIMPLE(STINT_TASK_EXT, evidence_digest, ASN1_OCTET_STRING),
} ASN1_SEQUENCE_END(STINT_TASK_EXT)

		IMPLEMENT_ASN1_FUNCTIONS(STINT_TASK_EXT)

			static pthread_once_t oid_once = PTHREAD_ONCE_INIT;
static ASN1_OBJECT *oid;

static void
oid_init(void)
{
	/* Not OBJ_create: the OID stays out of OpenSSL's global table, so a
	 * server that loads this code is not changed by it. */
	oid = OBJ_txt2obj(STINT_TASK_EXT_OID, 1);
}

const ASN1_OBJECT *
stint_task_ext_oid(void)
{
	pthread_once(&oid_once, oid_init);
	return oid;
}

static int
set_text(ASN1_UTF8STRING *s, const char *v)
{
	return ASN1_STRING_set(s, v, (int)strlen(v));
}

X509_EXTENSION *
stint_task_ext_build(const struct stint_task_facts *f)
{
	STINT_TASK_EXT *e = NULL;
	X509_EXTENSION *ext = NULL;
	ASN1_OCTET_STRING *os = NULL;
	unsigned char *der = NULL;
	int len;

	if (stint_task_ext_oid() == NULL ||
	    memchr(f->task_id, 0, sizeof(f->task_id)) == NULL)
		return NULL;
	if ((e = STINT_TASK_EXT_new()) == NULL ||
	    !set_text(e->task_id, f->task_id) ||
	    !ASN1_OCTET_STRING_set(e->intent_digest, f->intent_digest, 32) ||
	    !set_text(e->parent_task, f->parent_task) ||
	    !set_text(e->attestation_kind, f->attestation_kind) ||
	    !ASN1_OCTET_STRING_set(e->evidence_digest, f->evidence_digest, 32))
		goto out;
	if ((len = i2d_STINT_TASK_EXT(e, &der)) <= 0)
		goto out;
	if ((os = ASN1_OCTET_STRING_new()) == NULL ||
	    !ASN1_OCTET_STRING_set(os, der, len))
		goto out;
	ext = X509_EXTENSION_create_by_OBJ(NULL, stint_task_ext_oid(), 0, os);
out:
	ASN1_OCTET_STRING_free(os);
	OPENSSL_free(der);
	STINT_TASK_EXT_free(e);
	return ext;
}

static int
get_text(const ASN1_UTF8STRING *s, char *buf, size_t cap)
{
	int n = ASN1_STRING_length(s);

	if (n < 0 || (size_t)n >= cap ||
	    memchr(ASN1_STRING_get0_data(s), 0, (size_t)n) != NULL)
		return -1;
	memcpy(buf, ASN1_STRING_get0_data(s), (size_t)n);
	buf[n] = '\0';
	return 0;
}

static int
get_digest(const ASN1_OCTET_STRING *s, uint8_t out[32])
{
	if (ASN1_STRING_length(s) != 32)
		return -1;
	memcpy(out, ASN1_STRING_get0_data(s), 32);
	return 0;
}

int
stint_task_ext_get(const X509 *cert, struct stint_task_facts *f, char *err,
		   size_t errlen)
{
	const ASN1_OBJECT *obj = stint_task_ext_oid();
	const X509_EXTENSION *ext;
	const ASN1_OCTET_STRING *os;
	const unsigned char *p;
	STINT_TASK_EXT *e = NULL;
	int i, r = -1;

	memset(f, 0, sizeof(*f));
	if (obj == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	i = X509_get_ext_by_OBJ(cert, obj, -1);
	if (i < 0) {
		snprintf(err, errlen, "no Stint task extension (%s)",
			 STINT_TASK_EXT_OID);
		return -1;
	}
	if (X509_get_ext_by_OBJ(cert, obj, i) >= 0) {
		snprintf(err, errlen, "more than one Stint task extension");
		return -1;
	}
	ext = X509_get_ext(cert, i);
	os = X509_EXTENSION_get_data((X509_EXTENSION *)ext);
	p = ASN1_STRING_get0_data(os);
	e = d2i_STINT_TASK_EXT(NULL, &p, ASN1_STRING_length(os));
	if (e == NULL ||
	    p != ASN1_STRING_get0_data(os) + ASN1_STRING_length(os)) {
		snprintf(err, errlen,
			 "the Stint task extension is not a "
			 "well-formed StintTask");
		goto out;
	}
	if (get_text(e->task_id, f->task_id, sizeof(f->task_id)) != 0 ||
	    f->task_id[0] == '\0' ||
	    get_text(e->parent_task, f->parent_task, sizeof(f->parent_task)) !=
		    0 ||
	    get_text(e->attestation_kind, f->attestation_kind,
		     sizeof(f->attestation_kind)) != 0 ||
	    get_digest(e->intent_digest, f->intent_digest) != 0 ||
	    get_digest(e->evidence_digest, f->evidence_digest) != 0) {
		snprintf(err, errlen,
			 "the Stint task extension has a field out of range");
		goto out;
	}
	r = 0;
out:
	STINT_TASK_EXT_free(e);
	return r;
}
