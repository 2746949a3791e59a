/*
 * For fuzzers whose decoder reads a path (config, audit logs): the input
 * as an anonymous in-memory file, named /proc/self/fd/N. No disk writes.
 */
#ifndef STINT_FUZZ_MEMFILE_H
#define STINT_FUZZ_MEMFILE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* The file's fd (close it after use), or -1. path gets its name. */
static inline int
fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < size) {
		ssize_t n = write(fd, data + off, size - off);

		if (n <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return fd;
}

#endif
