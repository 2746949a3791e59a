/*
 * libFuzzer target for the stintd configuration parser (attest/config.c,
 * stint.conf(5)): whatever the file holds, stint_config_load returns 0 or
 * -1 with a message, and a loaded config keeps its bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/config.h"
#include "tests/fuzz/fuzz_memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stint_config cfg;
	char path[64], err[512];
	int fd, r;

	if (size > 64 * 1024)
		return 0;
	if ((fd = fuzz_memfile(data, size, path, sizeof(path))) < 0)
		return 0;
	memset(err, 0, sizeof(err));
	r = stint_config_load(path, &cfg, err, sizeof(err));
	close(fd);
	if (r != 0 && r != -1)
		abort();
	if (r != 0 && err[0] == '\0')
		abort(); /* a refusal always says why */
	if (strnlen(err, sizeof(err)) == sizeof(err))
		abort();
	return 0;
}
