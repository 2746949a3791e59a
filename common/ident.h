/*
 * Names and ids as Stint allows them: agent names, task ids and key ids are
 * [A-Za-z0-9._-] (no '/', so they are safe in file names and URIs), with a
 * length bound (include/stint/wire.h).
 */
#ifndef STINT_COMMON_IDENT_H
#define STINT_COMMON_IDENT_H

#include <stdbool.h>
#include <stddef.h>

/* Every character in [A-Za-z0-9._-] ("" passes). */
bool stint_ident_chars_ok(const char *s);
/* 1..max characters, each in [A-Za-z0-9._-]. */
bool stint_ident_ok(const char *s, size_t max);
/* An agent name: stint_ident_ok(s, STINT_NAME_MAX). */
bool stint_name_ok(const char *s);
/* A task id: stint_ident_ok(s, STINT_TASK_ID_MAX). */
bool stint_task_id_ok(const char *s);

#endif
