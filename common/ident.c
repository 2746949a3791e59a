/* Name and id validators (ident.h). */
#include <string.h>

#include "common/ident.h"
#include "stint/wire.h"

static bool
ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool
stint_ident_chars_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (!ident_char(*s))
			return false;
	return true;
}

bool
stint_ident_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	return n >= 1 && n <= max && stint_ident_chars_ok(s);
}

bool
stint_name_ok(const char *s)
{
	return stint_ident_ok(s, STINT_NAME_MAX);
}

bool
stint_task_id_ok(const char *s)
{
	return stint_ident_ok(s, STINT_TASK_ID_MAX);
}
