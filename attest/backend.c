/*
 * Backend selection. stintd names its key store in [backend] type; each
 * type has its own open function and fills in the ops table.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "attest/backend.h"
#include "attest/config.h"
#include "common/hex.h"

#define TASK_ID_PREFIX "t-"
#define TASK_ID_RAND   16 /* bytes: 32 hex digits */
#define TASK_ID_LEN    (2 + 2 * TASK_ID_RAND)
_Static_assert(TASK_ID_LEN <= STINT_TASK_ID_MAX, "task id fits");

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

void
stint_pubkey_free(struct stint_pubkey *pub)
{
	if (pub == NULL)
		return;
	stint_bytes_clear(&pub->spki);
	stint_bytes_clear(&pub->ec_params);
	stint_bytes_clear(&pub->ec_point);
	stint_bytes_clear(&pub->modulus);
	stint_bytes_clear(&pub->exponent);
}

/* Here rather than in task.c: the PKCS#11 backend mints the ids of the keys
 * it makes ahead of time, and those become the task ids. */
int
stint_task_id_new(char id[STINT_TASK_ID_MAX + 1])
{
	uint8_t rnd[TASK_ID_RAND];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	memcpy(id, TASK_ID_PREFIX, 2);
	stint_hex_encode(rnd, sizeof(rnd), id + 2);
	return 0;
}

bool
stint_task_id_shaped(const char *s, size_t len)
{
	size_t i;

	if (len != TASK_ID_LEN || memcmp(s, TASK_ID_PREFIX, 2) != 0)
		return false;
	for (i = 2; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}
