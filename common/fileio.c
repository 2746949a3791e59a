/* Whole-file reads and directory creation (fileio.h). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"

static int
read_all(int fd, char *buf, size_t size, size_t *got)
{
	ssize_t n;

	*got = 0;
	while (*got < size) {
		n = read(fd, buf + *got, size - *got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break; /* shrank while reading: use what is there */
		*got += (size_t)n;
	}
	return 0;
}

/* A pipe or a terminal (stdin, <(...)): read to its end, up to max. */
static int
read_stream(int fd, const char *path, size_t max, char **out, size_t *len,
	    char *err, size_t errlen)
{
	size_t cap = 4096, got = 0, n;
	char *buf = NULL, *q;

	for (;;) {
		if (cap > max + 1)
			cap = max + 1;
		if ((q = realloc(buf, cap + 1)) == NULL) {
			snprintf(err, errlen, "cannot read %s: out of memory",
				 path);
			goto fail;
		}
		buf = q;
		if (read_all(fd, buf + got, cap - got, &n) != 0) {
			snprintf(err, errlen, "cannot read %s: %s", path,
				 strerror(errno));
			goto fail;
		}
		got += n;
		if (got > max) {
			snprintf(err, errlen,
				 "cannot read %s: larger than %zu bytes", path,
				 max);
			goto fail;
		}
		if (got < cap)
			break; /* end of input */
		cap *= 2;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
fail:
	free(buf);
	return -1;
}

/* Reads the open fd; a non-regular file only when streams are allowed. */
static int
read_fd(int fd, const char *path, size_t max, bool streams, char **out,
	size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got, size;

	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (streams && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) ||
			S_ISSOCK(st.st_mode)))
		return read_stream(fd, path, max, out, len, err, errlen);
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cannot read %s: not a regular file",
			 path);
		return -1;
	}
	if ((unsigned long long)st.st_size > max) {
		snprintf(err, errlen, "cannot read %s: larger than %zu bytes",
			 path, max);
		return -1;
	}
	/* procfs and sysfs files say 0 bytes: read them up to max. */
	size = st.st_size > 0 ? (size_t)st.st_size : max;
	if ((buf = malloc(size + 1)) == NULL) {
		snprintf(err, errlen, "cannot read %s: out of memory", path);
		return -1;
	}
	if (read_all(fd, buf, size, &got) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		free(buf);
		return -1;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

int
stint_file_read(const char *path, size_t max, char **out, size_t *len,
		char *err, size_t errlen)
{
	int fd, r;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		return errno == ENOENT ? 1 : -1;
	}
	r = read_fd(fd, path, max, false, out, len, err, errlen);
	close(fd);
	return r;
}

int
stint_file_read_arg(const char *path, size_t max, char **out, size_t *len,
		    char *err, size_t errlen)
{
	int fd, r;

	*out = NULL;
	if (strcmp(path, "-") == 0)
		return read_fd(STDIN_FILENO, "standard input", max, true, out,
			       len, err, errlen);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		return errno == ENOENT ? 1 : -1;
	}
	r = read_fd(fd, path, max, true, out, len, err, errlen);
	close(fd);
	return r;
}

int
stint_dir_make(const char *path, mode_t mode, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, mode) == 0) {
		if (chmod(path, mode) == 0)
			return 0;
		snprintf(err, errlen, "cannot chmod %04o %s: %s",
			 (unsigned)mode, path, strerror(errno));
		return -1;
	}
	if (errno == EEXIST) {
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		snprintf(err, errlen, "%s exists and is not a directory", path);
		return -1;
	}
	snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
	return -1;
}
