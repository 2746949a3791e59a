/*
 * SHA-256 of peers' executables, cached by (device, inode, size, mtime,
 * ctime): a binary is hashed once, and again when it is replaced in place
 * (a write changes mtime and ctime, and nobody can set ctime back). Files
 * above the size cap are not hashed at all: hashing is work a peer can make
 * stintd do, and the cap bounds it (docs/identity.md).
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "attest/peer.h"
#include "common/hex.h"

#define CACHE_SLOTS 64
#define CHUNK       (64 * 1024)

struct slot {
	bool used;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	char hex[65];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot cache[CACHE_SLOTS];
static size_t next_victim;
static uint64_t hash_max = STINT_EXE_HASH_MAX_DEFAULT;

void
stint_exe_hash_set_max(uint64_t max)
{
	pthread_mutex_lock(&lock);
	hash_max = max;
	pthread_mutex_unlock(&lock);
}

void
stint_exe_hash_flush(void)
{
	pthread_mutex_lock(&lock);
	memset(cache, 0, sizeof(cache));
	next_victim = 0;
	pthread_mutex_unlock(&lock);
}

static bool
same_ts(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool
slot_is(const struct slot *s, const struct stat *st)
{
	return s->used && s->dev == st->st_dev && s->ino == st->st_ino &&
	       s->size == st->st_size && same_ts(&s->mtime, &st->st_mtim) &&
	       same_ts(&s->ctime, &st->st_ctim);
}

static bool
same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size && same_ts(&a->st_mtim, &b->st_mtim) &&
	       same_ts(&a->st_ctim, &b->st_ctim);
}

static bool
cache_get(const struct stat *st, char hex[65])
{
	size_t i;
	bool hit = false;

	pthread_mutex_lock(&lock);
	for (i = 0; i < CACHE_SLOTS && !hit; i++)
		if (slot_is(&cache[i], st)) {
			memcpy(hex, cache[i].hex, 65);
			hit = true;
		}
	pthread_mutex_unlock(&lock);
	return hit;
}

static void
cache_put(const struct stat *st, const char hex[65])
{
	struct slot *s;
	size_t i;

	pthread_mutex_lock(&lock);
	/* The same inode under an older (size, mtime, ctime) is stale. */
	for (i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].used && cache[i].dev == st->st_dev &&
		    cache[i].ino == st->st_ino)
			break;
	if (i == CACHE_SLOTS) {
		i = next_victim;
		next_victim = (next_victim + 1) % CACHE_SLOTS;
	}
	s = &cache[i];
	s->used = true;
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->size = st->st_size;
	s->mtime = st->st_mtim;
	s->ctime = st->st_ctim;
	memcpy(s->hex, hex, 65);
	pthread_mutex_unlock(&lock);
}

/* SHA-256 of the first size bytes of fd; -1 when it reads short. */
static int
hash_file(int fd, off_t size, uint8_t out[32])
{
	static __thread uint8_t buf[CHUNK];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 32;
	off_t off = 0;
	ssize_t got;
	int r = -1;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	while (off < size) {
		got = pread(fd, buf,
			    size - off < CHUNK ? (size_t)(size - off) : CHUNK,
			    off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			goto out;
		if (EVP_DigestUpdate(ctx, buf, (size_t)got) != 1)
			goto out;
		off += got;
	}
	r = EVP_DigestFinal_ex(ctx, out, &n) == 1 ? 0 : -1;
out:
	EVP_MD_CTX_free(ctx);
	return r;
}

int
stint_exe_hash_fd(int fd, char hex[65], bool *cached)
{
	struct stat before, after;
	uint8_t digest[32];
	uint64_t max;

	*cached = false;
	hex[0] = '\0';
	if (fstat(fd, &before) != 0 || !S_ISREG(before.st_mode))
		return -1;
	if (cache_get(&before, hex)) {
		*cached = true;
		return 0;
	}
	pthread_mutex_lock(&lock);
	max = hash_max;
	pthread_mutex_unlock(&lock);
	if ((uint64_t)before.st_size > max)
		return 1;
	if (hash_file(fd, before.st_size, digest) != 0)
		return -1;
	/* Written to while we read: no answer rather than a mixed one. */
	if (fstat(fd, &after) != 0 || !same_stat(&before, &after))
		return -1;
	stint_hex_encode(digest, 32, hex);
	cache_put(&before, hex);
	return 0;
}
