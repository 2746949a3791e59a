/* Whole-file reads and directory creation for stintd, the CLI and tests. */
#ifndef STINT_COMMON_FILEIO_H
#define STINT_COMMON_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Reads the regular file path (at most max bytes) into a malloc'ed buffer
 * with a NUL after the last byte (*len does not count it). 0 on success;
 * 1 when path does not exist; -1 on any other error. On 1 and -1 err says
 * "cannot read PATH: why" and *out is NULL. Opens with O_NONBLOCK so a
 * FIFO in its place cannot hang the caller. A file that says it is empty
 * (procfs, sysfs) is read up to max bytes. */
int stint_file_read(const char *path, size_t max, char **out, size_t *len,
		    char *err, size_t errlen);

/* Reads a command-line file argument as stint_file_read does (same max,
 * returns and err), except that "-" is standard input and a pipe or
 * terminal (/dev/stdin, <(...)) is read to its end, and a FIFO path is
 * opened blocking: for the CLI, never for stintd. */
int stint_file_read_arg(const char *path, size_t max, char **out, size_t *len,
			char *err, size_t errlen);

/* Creates the directory path with exactly mode, whatever the umask. An
 * existing directory is left as it is (0). -1 with err when path exists
 * and is not a directory or cannot be made. */
int stint_dir_make(const char *path, mode_t mode, char *err, size_t errlen);

#endif
