/* Whole-file reads and directory creation (fileio.h). */
#include <errno.h>
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

int
stint_file_read(const char *path, size_t max, char **out, size_t *len,
		char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got, size;
	int fd, r = -1;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		return errno == ENOENT ? 1 : -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cannot read %s: not a regular file",
			 path);
		goto out;
	}
	if ((unsigned long long)st.st_size > max) {
		snprintf(err, errlen, "cannot read %s: larger than %zu bytes",
			 path, max);
		goto out;
	}
	/* procfs and sysfs files say 0 bytes: read them up to max. */
	size = st.st_size > 0 ? (size_t)st.st_size : max;
	if ((buf = malloc(size + 1)) == NULL) {
		snprintf(err, errlen, "cannot read %s: out of memory", path);
		goto out;
	}
	if (read_all(fd, buf, size, &got) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		goto out;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
	r = 0;
out:
	free(buf);
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
