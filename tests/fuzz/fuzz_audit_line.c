/*
 * libFuzzer target for the audit-log parser of `stint audit verify`
 * (attest/audit_verify.c): one line through stint_audit_check_line, and
 * the whole input as a log file through stint_audit_verify_files, once
 * without and once with an attestation key (so that checkpoint records
 * are parsed and their signatures checked). A log is untrusted input:
 * the verifier runs on copies an attacker may have edited.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "attest/audit.h"
#include "tests/fuzz/fuzz_memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *
fuzz_ak(void)
{
	static EVP_PKEY *ak;

	if (ak == NULL)
		ak = EVP_EC_gen("P-256");
	return ak;
}

static void
verify(const char *path, EVP_PKEY *ak)
{
	struct stint_audit_anchor anchor = {.set = true, .seq = 2};
	struct stint_audit_verify_opts opts = {
		.anchor = ak != NULL ? &anchor : NULL,
		.ak = ak,
		.allow_unpinned_tail = ak != NULL,
	};
	struct stint_audit_report rep;
	int r = stint_audit_verify_files(&path, 1, &opts, &rep);

	if (r < -1 || r > 1)
		abort();
	if (r == 1 && rep.reason[0] == '\0')
		abort(); /* a bad log always says why */
	if (r == 0 && rep.bad_line != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t hash[32];
	char path[64];
	int fd;

	if (size > 256 * 1024)
		return 0;
	(void)stint_audit_check_line((const char *)data, size, hash);
	if ((fd = fuzz_memfile(data, size, path, sizeof(path))) < 0)
		return 0;
	verify(path, NULL);
	verify(path, fuzz_ak());
	close(fd);
	return 0;
}
