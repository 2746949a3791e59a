/*
 * libFuzzer target for the certificate task extension decoder
 * (attest/cert_ext.c), which runs inside relying parties
 * (libstint-verify): the input as the extension's DER value
 * (d2i_STINT_TASK_EXT) and as a whole certificate (stint_task_ext_get,
 * with and without an extra OID).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "attest/cert_ext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_facts(const struct stint_task_facts *f)
{
	if (strnlen(f->task_id, sizeof(f->task_id)) == sizeof(f->task_id) ||
	    strnlen(f->parent_task, sizeof(f->parent_task)) ==
		    sizeof(f->parent_task) ||
	    strnlen(f->attestation_kind, sizeof(f->attestation_kind)) ==
		    sizeof(f->attestation_kind) ||
	    strnlen(f->bind_kind, sizeof(f->bind_kind)) ==
		    sizeof(f->bind_kind) ||
	    strnlen(f->bind_cgroup, sizeof(f->bind_cgroup)) ==
		    sizeof(f->bind_cgroup) ||
	    strnlen(f->bind_unit, sizeof(f->bind_unit)) ==
		    sizeof(f->bind_unit) ||
	    strnlen(f->root_task, sizeof(f->root_task)) ==
		    sizeof(f->root_task) ||
	    strnlen(f->path, sizeof(f->path)) == sizeof(f->path) ||
	    (f->has_delegation && (f->depth < 1 || f->depth > 15)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	struct stint_task_facts f;
	STINT_TASK_EXT *ext;
	X509 *cert;
	char err[256];

	if (size > 64 * 1024)
		return 0;
	if ((ext = d2i_STINT_TASK_EXT(NULL, &p, (long)size)) != NULL)
		STINT_TASK_EXT_free(ext);
	p = data;
	if ((cert = d2i_X509(NULL, &p, (long)size)) == NULL)
		return 0;
	memset(&f, 0, sizeof(f));
	if (stint_task_ext_get(cert, NULL, &f, err, sizeof(err)) == 0) {
		check_facts(&f);
		(void)stint_task_deleg_check(&f, "sub", err, sizeof(err));
	}
	memset(&f, 0, sizeof(f));
	if (stint_task_ext_get(cert, "1.3.6.1.4.1.99999.1", &f, err,
			       sizeof(err)) == 0)
		check_facts(&f);
	X509_free(cert);
	return 0;
}
