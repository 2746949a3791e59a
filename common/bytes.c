/* Byte-buffer copies (bytes.h). */
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"

int
stint_bytes_copy(struct stint_bytes *dst, const void *src, size_t len)
{
	dst->ptr = NULL;
	dst->len = 0;
	if (len == 0)
		return 0;
	if ((dst->ptr = malloc(len)) == NULL)
		return -1;
	memcpy(dst->ptr, src, len);
	dst->len = len;
	return 0;
}

int
stint_bytes_dup(struct stint_bytes *dst, const struct stint_bytes *src)
{
	return stint_bytes_copy(dst, src->ptr, src->len);
}

void
stint_bytes_wipe_clear(struct stint_bytes *b)
{
	if (b == NULL)
		return;
	if (b->ptr != NULL)
		explicit_bzero(b->ptr, b->len);
	free(b->ptr);
	b->ptr = NULL;
	b->len = 0;
}
