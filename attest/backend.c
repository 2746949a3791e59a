/*
 * Backend selection. stintd names its key store in [backend] type; each
 * type has its own open function and fills in the ops table.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/backend.h"
#include "attest/config.h"

int
stint_backend_open(const struct stint_config *cfg, struct stint_backend **out,
		   char *err, size_t errlen)
{
	*out = NULL;
	if (strcmp(cfg->backend.type, "pkcs11") == 0)
		return stint_backend_pkcs11_open(cfg, out, err, errlen);
	if (strcmp(cfg->backend.type, "tpm") == 0) {
#ifdef HAVE_TPM
		return stint_backend_tpm_open(cfg, out, err, errlen);
#else
		snprintf(err, errlen,
			 "backend type 'tpm' is not built in: install "
			 "tpm2-tss (libtss2-dev) and run configure again");
		return -1;
#endif
	}
	if (cfg->backend.type[0] == '\0')
		snprintf(err, errlen,
			 "no backend type configured: set [backend] type = "
			 "pkcs11 or tpm");
	else
		snprintf(err, errlen,
			 "unknown backend type '%s': set [backend] type = "
			 "pkcs11 or tpm",
			 cfg->backend.type);
	return -1;
}

static void
bytes_clear(struct stint_bytes *b)
{
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
}

void
stint_pubkey_free(struct stint_pubkey *pub)
{
	if (pub == NULL)
		return;
	bytes_clear(&pub->spki);
	bytes_clear(&pub->ec_params);
	bytes_clear(&pub->ec_point);
	bytes_clear(&pub->modulus);
	bytes_clear(&pub->exponent);
}
