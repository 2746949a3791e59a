/*
 * Audiences (aud): the destination systems a task may authenticate to.
 * An agent has a set (what it may ever talk to), each task a subset of
 * it, carried in the leaf's task extension for relying parties. A set is
 * kept and sent as one text: names joined by commas, "" for none.
 * Shared by the CLI, stintd, the store and libstint-verify.
 */
#ifndef STINT_COMMON_AUDIENCE_H
#define STINT_COMMON_AUDIENCE_H

#include <stdbool.h>
#include <stddef.h>

#define STINT_AUDIENCE_MAX  128 /* one name: [A-Za-z0-9._:/-], 1..128 */
#define STINT_AUDIENCES_MAX 16  /* names in one set */
/* A set as text, with its commas (without the NUL). */
#define STINT_AUDIENCES_TEXT_MAX                                               \
	(STINT_AUDIENCES_MAX * (STINT_AUDIENCE_MAX + 1))

/* NULL when list is a valid set ("" included), else why not. */
const char *stint_audiences_check(const char *list);
/* Whether name is one of the set's names. */
bool stint_audience_in(const char *list, const char *name);
/* Whether every name of sub is in super; if not, missing (cap bytes) gets
 * the first that is not. */
bool stint_audiences_subset(const char *sub, const char *super, char *missing,
			    size_t cap);
/* Appends name (or a comma-separated list) to the set in buf; -1 when it
 * does not fit. */
int stint_audiences_add(char *buf, size_t cap, const char *names);

#endif
