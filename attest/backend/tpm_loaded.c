/*
 * TPM backend: the keys kept loaded between signatures. Loading a key
 * (TPM2_Load) and flushing it again cost two TPM commands per signature;
 * a key that stays loaded signs with PolicyCounterTimer, PolicyNV and
 * Sign alone. The TPM has few object slots (3 on swtpm without a resource
 * manager, one taken by the storage primary), so at most [backend]
 * tpm_loaded_keys keys stay loaded, least recently used first out; and
 * whenever a load or create finds the slots full (TPM_RC_OBJECT_MEMORY),
 * the least recently used cached key is flushed and the command retried.
 *
 * A cached handle is only a shortcut: every signature still reads the key
 * file (gone after task end) and runs the key's policy in the TPM. A key
 * is flushed when its task ends (destroy), after the kill switch, and
 * everything at close. See tpm_int.h.
 */

#include "attest/backend/tpm_int.h"

static void
slot_flush(struct tpm_backend *b, struct tpm_loaded *l)
{
	tpm_flush(b, &l->tr);
	memset(l, 0, sizeof(*l));
	l->tr = ESYS_TR_NONE;
}

/* Flushes the least recently used cached key: false if none is cached. */
bool
tpm_loaded_evict(struct tpm_backend *b)
{
	struct tpm_loaded *lru = NULL;
	uint32_t i;

	for (i = 0; i < b->loaded_cap; i++)
		if (b->loaded[i].tr != ESYS_TR_NONE &&
		    (lru == NULL || b->loaded[i].used < lru->used))
			lru = &b->loaded[i];
	if (lru == NULL)
		return false;
	slot_flush(b, lru);
	return true;
}

/*
 * The key's handle, loaded if it is not: *cached says whether the handle
 * belongs to the cache (the caller must not flush it) or is the caller's
 * own (cache disabled). The public area must match too: a key id made
 * again after its task ended is another key.
 */
int
tpm_loaded_get(struct tpm_backend *b, const char *key_id,
	       const struct tpm_keyfile *f, ESYS_TR *out, bool *cached,
	       char *err, size_t errlen)
{
	struct tpm_loaded *free_slot = NULL;
	uint32_t i;

	*cached = false;
	for (i = 0; i < b->loaded_cap; i++) {
		struct tpm_loaded *l = &b->loaded[i];

		if (l->tr == ESYS_TR_NONE) {
			if (free_slot == NULL)
				free_slot = l;
			continue;
		}
		if (strcmp(l->id, key_id) == 0) {
			if (memcmp(&l->pub, &f->k.pub, sizeof(l->pub)) == 0) {
				l->used = ++b->loaded_tick;
				*out = l->tr;
				*cached = true;
				return 0;
			}
			slot_flush(b, l); /* a stale key under this id */
			free_slot = free_slot != NULL ? free_slot : l;
		}
	}
	if (b->loaded_cap == 0)
		return tpm_load_key(b, &f->k.pub, &f->k.priv, out, err, errlen);
	if (free_slot == NULL) {
		(void)tpm_loaded_evict(b);
		for (i = 0; i < b->loaded_cap && free_slot == NULL; i++)
			if (b->loaded[i].tr == ESYS_TR_NONE)
				free_slot = &b->loaded[i];
	}
	if (tpm_load_key(b, &f->k.pub, &f->k.priv, out, err, errlen) != 0)
		return -1;
	/* the load may have evicted others: free_slot is still free */
	snprintf(free_slot->id, sizeof(free_slot->id), "%s", key_id);
	free_slot->pub = f->k.pub;
	free_slot->tr = *out;
	free_slot->used = ++b->loaded_tick;
	*cached = true;
	return 0;
}

/* Flushes the key if it is cached (task end, or a failed signature). */
void
tpm_loaded_drop(struct tpm_backend *b, const char *key_id)
{
	uint32_t i;

	for (i = 0; i < b->loaded_cap; i++)
		if (b->loaded[i].tr != ESYS_TR_NONE &&
		    strcmp(b->loaded[i].id, key_id) == 0)
			slot_flush(b, &b->loaded[i]);
}

void
tpm_loaded_flush_all(struct tpm_backend *b)
{
	uint32_t i;

	for (i = 0; i < b->loaded_cap; i++)
		if (b->loaded[i].tr != ESYS_TR_NONE)
			slot_flush(b, &b->loaded[i]);
}
