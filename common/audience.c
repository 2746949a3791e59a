/*
 * Audience sets as comma-separated text (common/audience.h).
 */

#include <stdio.h>
#include <string.h>

#include "common/audience.h"

static bool
aud_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
	       c == ':' || c == '/';
}

/* The next name of a list at *p: its start and length; false at the end. */
static bool
next_name(const char **p, const char **name, size_t *len)
{
	const char *s = *p, *comma;

	if (s == NULL || *s == '\0')
		return false;
	comma = strchr(s, ',');
	*name = s;
	*len = comma != NULL ? (size_t)(comma - s) : strlen(s);
	*p = comma != NULL ? comma + 1 : s + *len;
	return true;
}

static bool
in_list(const char *list, const char *name, size_t len)
{
	const char *p = list, *n;
	size_t l;

	while (next_name(&p, &n, &l))
		if (l == len && memcmp(n, name, len) == 0)
			return true;
	return false;
}

const char *
stint_audiences_check(const char *list)
{
	const char *p = list, *n;
	size_t l, i, count = 0;

	if (list == NULL || list[0] == '\0')
		return NULL;
	if (strlen(list) > STINT_AUDIENCES_TEXT_MAX)
		return "too many audiences";
	if (list[strlen(list) - 1] == ',')
		return "an audience name is empty";
	while (next_name(&p, &n, &l)) {
		if (l == 0)
			return "an audience name is empty";
		if (l > STINT_AUDIENCE_MAX)
			return "an audience name is longer than 128 bytes";
		for (i = 0; i < l; i++)
			if (!aud_char(n[i]))
				return "an audience name may hold only "
				       "A-Z a-z 0-9 . _ - : /";
		if (in_list(p, n, l))
			return "an audience is named twice";
		if (++count > STINT_AUDIENCES_MAX)
			return "more than 16 audiences";
	}
	return NULL;
}

bool
stint_audience_in(const char *list, const char *name)
{
	return name != NULL && name[0] != '\0' &&
	       in_list(list, name, strlen(name));
}

bool
stint_audiences_subset(const char *sub, const char *super, char *missing,
		       size_t cap)
{
	const char *p = sub, *n;
	size_t l;

	while (next_name(&p, &n, &l))
		if (!in_list(super, n, l)) {
			if (missing != NULL && cap > 0)
				snprintf(missing, cap, "%.*s", (int)l, n);
			return false;
		}
	return true;
}

int
stint_audiences_add(char *buf, size_t cap, const char *names)
{
	size_t have = strlen(buf);
	int k;

	k = snprintf(buf + have, cap - have, "%s%s", have ? "," : "", names);
	if (k < 0 || (size_t)k >= cap - have) {
		buf[have] = '\0';
		return -1;
	}
	return 0;
}
