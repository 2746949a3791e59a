/*
 * Declaration directories (prov): agents.d and operators.d, *.conf files
 * read in name order with stint.conf's INI reader (config.h), each file and
 * the directory checked as sshd's StrictModes. The kind (agents_dir.c,
 * operators_dir.c) parses the sections through the callbacks.
 */
#ifndef STINT_ATTEST_DECL_DIR_H
#define STINT_ATTEST_DECL_DIR_H

#include <stdbool.h>
#include <stddef.h>

#include "attest/config.h"

/* One kind of declaration: ini is the first member of the kind's parse
 * context, which the callbacks get (handler as its user pointer). */
struct stint_decl_dir {
	const char *key; /* "agents_dir": names the directory in errors */
	const char *dir;
	size_t file_max; /* bytes of one file */
	struct stint_ini *ini;
	bool (*section_ok)(struct stint_ini *ini, const char *name);
	int (*handler)(void *ini, const char *section, const char *name,
		       const char *value);
	/* Before a file's first line: no section is open. */
	void (*file_start)(struct stint_ini *ini);
	/* After its last line, when it parsed: the last section ended. */
	void (*file_end)(struct stint_ini *ini);
};

/* The checks every key of a section passes, for the kind's handler: in
 * a section ("[kind NAME]"; cur false: none open), known (keys[0..n-1];
 * use lists them for the error), set once (key_line: the line each was
 * set on, 0: not yet) and with a value. The key's index, or -1 with the
 * error recorded in ini. */
int stint_decl_key(struct stint_ini *ini, const char *kind, bool cur,
		   const char *const *keys, int n, int *key_line,
		   const char *use, const char *name, const char *value);

/* Parses every *.conf in dd->dir (a missing directory declares nothing).
 * 0, or -1 with err "FILE:LINE: what is wrong: what to do" (the caller
 * drops what the files declared so far). */
int stint_decl_dir_load(const struct stint_decl_dir *dd, char *err,
			size_t errlen);

/* 0 when path (a declaration file or its directory) is owned by root or
 * stintd's user and writable by no one else; else -1, err names it. */
int stint_decl_path_safe(const char *path, char *err, size_t errlen);

#endif
