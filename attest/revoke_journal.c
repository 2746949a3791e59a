/*
 * The revocation journal (revoke_journal.h). Fixed slots of SLOT bytes: a
 * magic, the state, the time, the task id, the reason and a checksum over
 * the rest; a slot of zeros is free. A torn slot (crash during its write)
 * fails its checksum and is ignored: its task end never returned success.
 * Not thread-safe: the store calls it under its mutex.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/revoke_journal.h"

#define SLOT        128
#define OFF_STATE   4
#define OFF_WHEN    8
#define OFF_ID      16
#define OFF_REASON  (OFF_ID + STINT_TASK_ID_MAX + 1)
#define OFF_SUM     (SLOT - 4)
#define JOURNAL_LEN ((off_t)STINT_RJ_SLOTS * SLOT)

static const char magic[4] = {'S', 'R', 'J', '1'};

_Static_assert(OFF_REASON + 64 <= OFF_SUM, "journal slot layout");

struct stint_rj {
	int fd;
	/* ids[i][0] == '\0': slot i is free */
	char ids[STINT_RJ_SLOTS][STINT_TASK_ID_MAX + 1];
	struct stint_rj_entry entries[STINT_RJ_SLOTS];
};

static uint32_t
slot_sum(const unsigned char *p)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;

	for (i = 0; i < OFF_SUM; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void
slot_encode(const struct stint_rj_entry *e, unsigned char *p)
{
	uint64_t w = (uint64_t)e->when;
	uint32_t sum;
	int i;

	memset(p, 0, SLOT);
	memcpy(p, magic, sizeof(magic));
	p[OFF_STATE] = (unsigned char)e->state;
	for (i = 0; i < 8; i++)
		p[OFF_WHEN + i] = (unsigned char)(w >> (56 - 8 * i));
	memcpy(p + OFF_ID, e->id, strnlen(e->id, STINT_TASK_ID_MAX));
	memcpy(p + OFF_REASON, e->reason,
	       strnlen(e->reason, sizeof(e->reason) - 1));
	sum = slot_sum(p);
	for (i = 0; i < 4; i++)
		p[OFF_SUM + i] = (unsigned char)(sum >> (24 - 8 * i));
}

/* 0 for a valid entry, 1 for a free slot, -1 for a torn or foreign one. */
static int
slot_decode(const unsigned char *p, struct stint_rj_entry *e)
{
	uint32_t sum = 0;
	uint64_t w = 0;
	int i;

	for (i = 0; i < SLOT && p[i] == 0; i++)
		;
	if (i == SLOT)
		return 1;
	for (i = 0; i < 4; i++)
		sum = (sum << 8) | p[OFF_SUM + i];
	if (memcmp(p, magic, sizeof(magic)) != 0 || sum != slot_sum(p) ||
	    p[OFF_ID + STINT_TASK_ID_MAX] != 0 || p[OFF_ID] == 0)
		return -1;
	memset(e, 0, sizeof(*e));
	e->state = p[OFF_STATE];
	for (i = 0; i < 8; i++)
		w = (w << 8) | p[OFF_WHEN + i];
	e->when = (int64_t)w;
	memcpy(e->id, p + OFF_ID, STINT_TASK_ID_MAX);
	memcpy(e->reason, p + OFF_REASON, sizeof(e->reason) - 1);
	return 0;
}

/* Makes the file JOURNAL_LEN bytes with every block allocated. */
static int
reserve(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int e;

	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot stat %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return -1;
	}
	if ((st.st_mode & 077) != 0 && fchmod(fd, 0600) != 0) {
		snprintf(err, errlen, "cannot chmod 600 %s: %s", path,
			 strerror(errno));
		return -1;
	}
	/* Allocated blocks of the right size stay allocated: only a new
	 * (or short) file needs space. */
	if (st.st_size >= JOURNAL_LEN &&
	    (off_t)st.st_blocks * 512 >= JOURNAL_LEN)
		return 0;
	e = posix_fallocate(fd, 0, JOURNAL_LEN);
	if (e != 0) {
		snprintf(err, errlen,
			 "cannot reserve %lld bytes for the revocation "
			 "journal %s: %s",
			 (long long)JOURNAL_LEN, path, strerror(e));
		return -1;
	}
	if (fsync(fd) != 0) {
		snprintf(err, errlen, "cannot sync %s: %s", path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

static int
load(struct stint_rj *j, const char *path, char *err, size_t errlen)
{
	unsigned char p[SLOT];
	struct stint_rj_entry e;
	ssize_t n;
	size_t i;

	for (i = 0; i < STINT_RJ_SLOTS; i++) {
		n = pread(j->fd, p, SLOT, (off_t)i * SLOT);
		if (n != SLOT) {
			snprintf(err, errlen, "cannot read %s: %s", path,
				 n < 0 ? strerror(errno) : "short read");
			return -1;
		}
		if (slot_decode(p, &e) != 0)
			continue;
		j->entries[i] = e;
		memcpy(j->ids[i], e.id, sizeof(j->ids[i]));
	}
	return 0;
}

int
stint_rj_open(const char *path, struct stint_rj **out, char *err, size_t errlen)
{
	struct stint_rj *j;

	*out = NULL;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
		     0600);
	if (j->fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 strerror(errno));
		free(j);
		return -1;
	}
	if (reserve(j->fd, path, err, errlen) != 0 ||
	    load(j, path, err, errlen) != 0) {
		stint_rj_close(j);
		return -1;
	}
	*out = j;
	return 0;
}

void
stint_rj_close(struct stint_rj *j)
{
	if (j == NULL)
		return;
	if (j->fd >= 0)
		close(j->fd);
	free(j);
}

void
stint_rj_each(struct stint_rj *j,
	      void (*fn)(void *ctx, const struct stint_rj_entry *e), void *ctx)
{
	size_t i;

	for (i = 0; j != NULL && i < STINT_RJ_SLOTS; i++)
		if (j->ids[i][0] != '\0')
			fn(ctx, &j->entries[i]);
}

static int
slot_write(struct stint_rj *j, size_t i, const unsigned char *p)
{
	ssize_t n;

	do
		n = pwrite(j->fd, p, SLOT, (off_t)i * SLOT);
	while (n < 0 && errno == EINTR);
	if (n != SLOT || fdatasync(j->fd) != 0)
		return -1;
	return 0;
}

int
stint_rj_add(struct stint_rj *j, const struct stint_rj_entry *e)
{
	unsigned char p[SLOT];
	size_t i, free_slot = STINT_RJ_SLOTS;

	if (j == NULL || e->id[0] == '\0')
		return -1;
	for (i = 0; i < STINT_RJ_SLOTS; i++) {
		if (strcmp(j->ids[i], e->id) == 0)
			return 0; /* already recorded */
		if (j->ids[i][0] == '\0' && free_slot == STINT_RJ_SLOTS)
			free_slot = i;
	}
	if (free_slot == STINT_RJ_SLOTS)
		return -1;
	slot_encode(e, p);
	if (slot_write(j, free_slot, p) != 0)
		return -1;
	j->entries[free_slot] = *e;
	snprintf(j->ids[free_slot], sizeof(j->ids[free_slot]), "%s", e->id);
	return 0;
}

int
stint_rj_remove(struct stint_rj *j, const char *id)
{
	unsigned char p[SLOT];
	size_t i;

	if (j == NULL)
		return 0;
	memset(p, 0, sizeof(p));
	for (i = 0; i < STINT_RJ_SLOTS; i++) {
		if (strcmp(j->ids[i], id) != 0)
			continue;
		if (slot_write(j, i, p) != 0)
			return -1;
		j->ids[i][0] = '\0';
		memset(&j->entries[i], 0, sizeof(j->entries[i]));
	}
	return 0;
}
