/* disk: the block cache's disk tier; see disk.h for what it promises. */
#include "cache/disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4frame.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/base/log.h"
#include "auth/base/util.h"

#define DISK_MAGIC "FERRYBLK"
#define DISK_VERSION 1
/* magic, version, header length, block index, raw length, three key lengths */
#define DISK_FIXED_HEADER (8 + 4 + 4 + 8 + 8 + 4 + 4 + 4)
#define DISK_DIGEST_LEN 32
#define DISK_NAME_LEN (2 * DISK_DIGEST_LEN)
#define DISK_TMP_PREFIX "tmp."
#define DISK_LOCK_WAIT_MS 5000
#define DISK_LOCK_RETRY_MS 100
#define DISK_LOCK_NAME ".lock"
/* Bytes per read() or write() of a cache file: with the lz4 contexts, all the memory a
 * load or a store needs besides the block, whatever the block size. */
#define DISK_IO ((size_t)256 << 10)
/* Raw bytes per lz4 block (LZ4F_max64KB), compressed one step at a time. */
#define DISK_STEP ((size_t)64 << 10)
/* Keys whose header is longer are not kept on disk. */
#define DISK_HEADER_MAX ((size_t)16 << 10)
#define DISK_BUCKETS_MIN 256

struct disk_entry {
	unsigned char digest[DISK_DIGEST_LEN];
	uint64_t size; /* of the file */
	uint64_t gen;  /* tells this file from a later one of the same name */
	struct disk_entry *hash_next;
	struct disk_entry *lru_prev, *lru_next; /* least recently used first */
};

struct cache_disk {
	int dir_fd;
	int lock_fd; /* holds the flock */
	uint64_t limit;
	atomic_uint_least64_t corrupt;
	atomic_uint tmp_seq;

	pthread_mutex_t lock;
	/* Guarded by lock. */
	struct disk_entry **buckets;
	size_t bucket_mask;
	size_t count;
	struct disk_entry *lru_first, *lru_last;
	uint64_t used;     /* bytes of indexed files */
	uint64_t reserved; /* the most that files being written may take */
	uint64_t next_gen;
};

/* Names and headers ------------------------------------------------------------------- */

static void put_le32(unsigned char *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put_le64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static const char *key_namespace(const struct cache_disk_key *key)
{
	return key->namespace ? key->namespace : "";
}

/* SHA-256 of the key, each string preceded by its length so no two keys run together. */
static int disk_digest(const struct cache_disk_key *key, unsigned char digest[DISK_DIGEST_LEN])
{
	const char *fields[3] = { key_namespace(key), key->path, key->etag };
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char num[8];
	int ok, i;

	if (!ctx)
		return -ENOMEM;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (i = 0; i < 3 && ok; i++) {
		size_t len = strlen(fields[i]);

		put_le64(num, len);
		ok = EVP_DigestUpdate(ctx, num, sizeof(num)) &&
		     EVP_DigestUpdate(ctx, fields[i], len);
	}
	put_le64(num, key->block_index);
	ok = ok && EVP_DigestUpdate(ctx, num, sizeof(num)) &&
	     EVP_DigestFinal_ex(ctx, digest, NULL);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -ENOMEM;
}

static void disk_name(const unsigned char digest[DISK_DIGEST_LEN], char name[DISK_NAME_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	int i;

	for (i = 0; i < DISK_DIGEST_LEN; i++) {
		name[2 * i] = hex[digest[i] >> 4];
		name[2 * i + 1] = hex[digest[i] & 15];
	}
	name[DISK_NAME_LEN] = '\0';
}

/* The digest a cache file's name spells, or -EINVAL for any other name. */
static int disk_parse_name(const char *name, unsigned char digest[DISK_DIGEST_LEN])
{
	int i;

	if (strlen(name) != DISK_NAME_LEN)
		return -EINVAL;
	for (i = 0; i < DISK_NAME_LEN; i++) {
		char ch = name[i];
		int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;

		if (v < 0)
			return -EINVAL;
		if (i % 2)
			digest[i / 2] = (unsigned char)(digest[i / 2] | v);
		else
			digest[i / 2] = (unsigned char)(v << 4);
	}
	return 0;
}

/* Whether the block of key may be kept on disk: its header fits DISK_HEADER_MAX. */
static bool disk_key_ok(const struct cache_disk_key *key)
{
	return DISK_FIXED_HEADER + strlen(key_namespace(key)) + strlen(key->path) +
		       strlen(key->etag) <= DISK_HEADER_MAX;
}

/* The header of the block of key, len bytes raw: written before its frame, and
 * compared byte for byte with what a loaded file starts with. NULL: no memory. */
static unsigned char *disk_header(const struct cache_disk_key *key, size_t len,
				  size_t *header_len)
{
	const char *fields[3] = { key_namespace(key), key->path, key->etag };
	size_t lens[3], total = DISK_FIXED_HEADER, i;
	unsigned char *header, *p;

	for (i = 0; i < 3; i++) {
		lens[i] = strlen(fields[i]);
		total += lens[i];
	}
	header = malloc(total);
	if (!header)
		return NULL;
	memcpy(header, DISK_MAGIC, 8);
	put_le32(header + 8, DISK_VERSION);
	put_le32(header + 12, (uint32_t)total);
	put_le64(header + 16, key->block_index);
	put_le64(header + 24, len);
	p = header + 32;
	for (i = 0; i < 3; i++, p += 4)
		put_le32(p, (uint32_t)lens[i]);
	for (i = 0; i < 3; i++) {
		memcpy(p, fields[i], lens[i]);
		p += lens[i];
	}
	*header_len = total;
	return header;
}

/* The index (all under d->lock) ------------------------------------------------------- */

static size_t entry_bucket(const struct cache_disk *d, const unsigned char *digest)
{
	uint64_t h;

	memcpy(&h, digest, sizeof(h)); /* a SHA-256 is spread well enough */
	return (size_t)(h & d->bucket_mask);
}

static struct disk_entry *index_find(struct cache_disk *d, const unsigned char *digest)
{
	struct disk_entry *e = d->buckets[entry_bucket(d, digest)];

	while (e && memcmp(e->digest, digest, DISK_DIGEST_LEN) != 0)
		e = e->hash_next;
	return e;
}

static void lru_unlink(struct cache_disk *d, struct disk_entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		d->lru_first = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		d->lru_last = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_append(struct cache_disk *d, struct disk_entry *e)
{
	e->lru_prev = d->lru_last;
	e->lru_next = NULL;
	if (d->lru_last)
		d->lru_last->lru_next = e;
	else
		d->lru_first = e;
	d->lru_last = e;
}

static int index_grow(struct cache_disk *d)
{
	size_t count = (d->bucket_mask + 1) * 2, i;
	struct disk_entry **buckets = calloc(count, sizeof(*buckets));

	if (!buckets)
		return -ENOMEM;
	for (i = 0; i <= d->bucket_mask; i++) {
		struct disk_entry *e = d->buckets[i], *next;

		for (; e; e = next) {
			uint64_t h;

			next = e->hash_next;
			memcpy(&h, e->digest, sizeof(h));
			e->hash_next = buckets[h & (count - 1)];
			buckets[h & (count - 1)] = e;
		}
	}
	free(d->buckets);
	d->buckets = buckets;
	d->bucket_mask = count - 1;
	return 0;
}

/* Adds a file as the most recently used. */
static int index_add(struct cache_disk *d, const unsigned char *digest, uint64_t size)
{
	struct disk_entry *e;
	size_t bucket;

	if (d->count > d->bucket_mask && index_grow(d))
		return -ENOMEM;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	memcpy(e->digest, digest, DISK_DIGEST_LEN);
	e->size = size;
	e->gen = ++d->next_gen;
	bucket = entry_bucket(d, digest);
	e->hash_next = d->buckets[bucket];
	d->buckets[bucket] = e;
	lru_append(d, e);
	d->count++;
	d->used += size;
	return 0;
}

/* Forgets e and, with unlink_file, deletes its file. */
static void index_remove(struct cache_disk *d, struct disk_entry *e, bool unlink_file)
{
	struct disk_entry **link = &d->buckets[entry_bucket(d, e->digest)];

	if (unlink_file) {
		char name[DISK_NAME_LEN + 1];

		disk_name(e->digest, name);
		unlinkat(d->dir_fd, name, 0);
	}
	while (*link != e)
		link = &(*link)->hash_next;
	*link = e->hash_next;
	lru_unlink(d, e);
	d->count--;
	d->used -= e->size;
	free(e);
}

/* Deletes the least recently used files while files and reservations pass the limit. */
static void index_evict(struct cache_disk *d)
{
	while (d->used + d->reserved > d->limit && d->lru_first)
		index_remove(d, d->lru_first, true);
}

/* Forgets (and deletes) the file of digest if it is still the one of generation gen. */
static void disk_forget(struct cache_disk *d, const unsigned char *digest, uint64_t gen,
			bool unlink_file)
{
	struct disk_entry *e;

	pthread_mutex_lock(&d->lock);
	e = index_find(d, digest);
	if (e && e->gen == gen)
		index_remove(d, e, unlink_file);
	pthread_mutex_unlock(&d->lock);
}

/* Files ------------------------------------------------------------------------------ */

/* The lz4 frame of a block: independent 64 KiB blocks, each with its checksum, then the
 * checksum of the whole content; the content size is in the frame header. */
static void frame_prefs(LZ4F_preferences_t *prefs, size_t len)
{
	memset(prefs, 0, sizeof(*prefs));
	prefs->frameInfo.blockSizeID = LZ4F_max64KB;
	prefs->frameInfo.blockMode = LZ4F_blockIndependent;
	prefs->frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	prefs->frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
	prefs->frameInfo.contentSize = len;
	prefs->autoFlush = 1;
}

/* The largest file the block of key, len bytes raw, can make. */
static uint64_t disk_file_bound(const struct cache_disk_key *key, size_t len)
{
	LZ4F_preferences_t prefs;

	frame_prefs(&prefs, len);
	return DISK_FIXED_HEADER + strlen(key_namespace(key)) + strlen(key->path) +
	       strlen(key->etag) + LZ4F_compressFrameBound(len, &prefs);
}

/* Writes header and lz4 frame of the block; *size gets the file's length. The frame is
 * built DISK_STEP bytes at a time into a DISK_IO buffer, so a store needs little memory
 * whatever the block size (LZ4F_compressFrame() would need a whole compressed block);
 * the frame is the same. */
static int disk_write_file(int fd, const struct cache_disk_key *key, const unsigned char *data,
			   size_t len, uint64_t *size)
{
	LZ4F_preferences_t prefs;
	LZ4F_cctx *cctx = NULL;
	unsigned char *header, *out;
	size_t header_len, step_bound, pos = 0, done = 0, n;
	bool ended = false;
	int err;

	frame_prefs(&prefs, len);
	step_bound = LZ4F_compressBound(DISK_STEP, &prefs); /* also bounds the end mark */
	header = disk_header(key, len, &header_len);
	out = malloc(DISK_IO);
	err = -ENOMEM;
	if (!header || !out || LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION)))
		goto out_free;
	*size = header_len;
	err = util_write_full(fd, header, header_len);
	n = LZ4F_compressBegin(cctx, out, DISK_IO, &prefs);
	while (!err) {
		if (LZ4F_isError(n)) {
			err = -EIO;
			break;
		}
		pos += n;
		if (ended)
			break;
		if (DISK_IO - pos < step_bound) {
			err = util_write_full(fd, out, pos);
			*size += pos;
			pos = n = 0;
		} else if (done < len) {
			size_t step = len - done < DISK_STEP ? len - done : DISK_STEP;

			n = LZ4F_compressUpdate(cctx, out + pos, DISK_IO - pos, data + done, step,
						NULL);
			done += step;
		} else {
			n = LZ4F_compressEnd(cctx, out + pos, DISK_IO - pos, NULL);
			ended = true;
		}
	}
	if (!err && pos) {
		err = util_write_full(fd, out, pos);
		*size += pos;
	}
out_free:
	LZ4F_freeCompressionContext(cctx);
	free(out);
	free(header);
	return err;
}

/* Checks the file against key and decompresses exactly len bytes into buf: 0,
 * -EBADMSG for any mismatch, damage or short file, -ENOMEM, or a read error. */
static int disk_read_file(int fd, const struct cache_disk_key *key, unsigned char *buf,
			  size_t len)
{
	LZ4F_decompressOptions_t opts = { .stableDst = 1 };
	LZ4F_dctx *dctx = NULL;
	unsigned char *header, *in;
	size_t header_len, pos, out = 0, hint = 1;
	ssize_t n;
	bool eof;
	int err = -ENOMEM;

	header = disk_header(key, len, &header_len);
	in = malloc(DISK_IO);
	if (!header || !in ||
	    LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		goto out_free;
	n = util_read_full(fd, in, DISK_IO);
	err = n < 0 ? (int)n : -EBADMSG;
	if (n < (ssize_t)header_len || memcmp(in, header, header_len) != 0)
		goto out_free;
	eof = (size_t)n < DISK_IO;
	pos = header_len;
	for (;;) {
		while (pos < (size_t)n && hint != 0) {
			size_t dst_size = len - out, src_size = (size_t)n - pos;

			hint = LZ4F_decompress(dctx, buf + out, &dst_size, in + pos, &src_size,
					       &opts);
			if (LZ4F_isError(hint) || (dst_size == 0 && src_size == 0))
				goto out_free; /* damaged, or more content than len */
			out += dst_size;
			pos += src_size;
		}
		if (hint == 0 || eof)
			break;
		n = util_read_full(fd, in, DISK_IO);
		if (n < 0) {
			err = (int)n;
			goto out_free;
		}
		eof = (size_t)n < DISK_IO;
		pos = 0;
	}
	/* The frame ended, held len bytes, and nothing follows it. */
	if (hint != 0 || out != len || pos != (size_t)n)
		goto out_free;
	if (!eof && util_read_full(fd, in, 1) != 0)
		goto out_free;
	err = 0;
out_free:
	LZ4F_freeDecompressionContext(dctx);
	free(in);
	free(header);
	return err;
}

bool cache_disk_has(struct cache_disk *d, const struct cache_disk_key *key)
{
	unsigned char digest[DISK_DIGEST_LEN];
	bool found;

	if (!disk_key_ok(key) || disk_digest(key, digest))
		return false;
	pthread_mutex_lock(&d->lock);
	found = index_find(d, digest) != NULL;
	pthread_mutex_unlock(&d->lock);
	return found;
}

int cache_disk_load(struct cache_disk *d, const struct cache_disk_key *key, void *buf,
		    size_t len)
{
	unsigned char digest[DISK_DIGEST_LEN];
	char name[DISK_NAME_LEN + 1];
	struct disk_entry *e;
	uint64_t gen;
	int fd, err;

	if (!disk_key_ok(key))
		return -ENOENT;
	err = disk_digest(key, digest);
	if (err)
		return err;
	pthread_mutex_lock(&d->lock);
	e = index_find(d, digest);
	if (e) {
		gen = e->gen;
		lru_unlink(d, e); /* most recently used now */
		lru_append(d, e);
	}
	pthread_mutex_unlock(&d->lock);
	if (!e)
		return -ENOENT;
	disk_name(digest, name);
	fd = openat(d->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		disk_forget(d, digest, gen, false); /* removed behind our back */
		return -ENOENT;
	}
	err = fd < 0 ? -errno : disk_read_file(fd, key, buf, len);
	if (!err)
		futimens(fd, NULL); /* its mtime orders the index after a remount */
	if (fd >= 0)
		close(fd);
	if (!err || err == -ENOMEM)
		return err;
	atomic_fetch_add_explicit(&d->corrupt, 1, memory_order_relaxed);
	log_warn("cache: damaged cache file %s deleted (%s); the block is downloaded again",
		 name, err == -EBADMSG ? "failed its checks" : strerror(-err));
	disk_forget(d, digest, gen, true);
	return -EBADMSG;
}

int cache_disk_store(struct cache_disk *d, const struct cache_disk_key *key,
		     const void *data, size_t len)
{
	unsigned char digest[DISK_DIGEST_LEN];
	char name[DISK_NAME_LEN + 1], tmp[DISK_NAME_LEN + 32];
	uint64_t bound = disk_file_bound(key, len), size = 0;
	int fd, err;

	if (!disk_key_ok(key))
		return -ENAMETOOLONG;
	err = disk_digest(key, digest);
	if (err)
		return err;
	/* Room for the largest file this block can make, temporary name included, so the
	 * directory never holds more than the limit. */
	pthread_mutex_lock(&d->lock);
	if (index_find(d, digest)) {
		pthread_mutex_unlock(&d->lock);
		return 0;
	}
	d->reserved += bound;
	index_evict(d);
	if (d->used + d->reserved > d->limit) {
		d->reserved -= bound; /* the limit is smaller than what is being written */
		pthread_mutex_unlock(&d->lock);
		return -ENOSPC;
	}
	pthread_mutex_unlock(&d->lock);
	disk_name(digest, name);
	snprintf(tmp, sizeof(tmp), DISK_TMP_PREFIX "%u.%s",
		 atomic_fetch_add_explicit(&d->tmp_seq, 1, memory_order_relaxed), name);
	fd = openat(d->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto out_unreserve;
	}
	err = disk_write_file(fd, key, data, len, &size);
	if (close(fd) && !err)
		err = -errno;
	pthread_mutex_lock(&d->lock);
	d->reserved -= bound;
	if (err || index_find(d, digest)) /* failed, or written meanwhile */
		goto out_unlink_tmp;
	if (renameat(d->dir_fd, tmp, d->dir_fd, name)) {
		err = -errno;
		goto out_unlink_tmp;
	}
	err = index_add(d, digest, size);
	if (err)
		unlinkat(d->dir_fd, name, 0);
	index_evict(d);
	pthread_mutex_unlock(&d->lock);
	return err;

out_unlink_tmp:
	unlinkat(d->dir_fd, tmp, 0);
	pthread_mutex_unlock(&d->lock);
	return err;
out_unreserve:
	pthread_mutex_lock(&d->lock);
	d->reserved -= bound;
	pthread_mutex_unlock(&d->lock);
	return err;
}

uint64_t cache_disk_used(struct cache_disk *d)
{
	uint64_t used;

	pthread_mutex_lock(&d->lock);
	used = d->used;
	pthread_mutex_unlock(&d->lock);
	return used;
}

uint64_t cache_disk_corrupt(struct cache_disk *d)
{
	return atomic_load_explicit(&d->corrupt, memory_order_relaxed);
}

/* Opening ---------------------------------------------------------------------------- */

struct scan_file {
	unsigned char digest[DISK_DIGEST_LEN];
	uint64_t size;
	struct timespec mtime;
};

static int scan_cmp(const void *pa, const void *pb)
{
	const struct scan_file *a = pa, *b = pb;

	if (a->mtime.tv_sec != b->mtime.tv_sec)
		return a->mtime.tv_sec < b->mtime.tv_sec ? -1 : 1;
	if (a->mtime.tv_nsec != b->mtime.tv_nsec)
		return a->mtime.tv_nsec < b->mtime.tv_nsec ? -1 : 1;
	return memcmp(a->digest, b->digest, DISK_DIGEST_LEN);
}

/* Indexes the cache files in the directory, oldest first; deletes leftover temporary
 * files and whatever is over the limit. Other names are left alone. */
static int disk_scan(struct cache_disk *d)
{
	struct scan_file *files = NULL;
	size_t count = 0, cap = 0, i;
	struct dirent *ent;
	DIR *dir;
	int fd, err = 0;

	fd = openat(d->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		err = -errno;
		close(fd);
		return err;
	}
	while ((ent = readdir(dir))) {
		struct scan_file file;
		struct stat st;

		if (strncmp(ent->d_name, DISK_TMP_PREFIX, strlen(DISK_TMP_PREFIX)) == 0) {
			unlinkat(d->dir_fd, ent->d_name, 0);
			continue;
		}
		if (disk_parse_name(ent->d_name, file.digest) ||
		    fstatat(d->dir_fd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
		    !S_ISREG(st.st_mode))
			continue;
		file.size = (uint64_t)st.st_size;
		file.mtime = st.st_mtim;
		if (count == cap) {
			struct scan_file *grown;

			cap = cap ? cap * 2 : 256;
			grown = reallocarray(files, cap, sizeof(*files));
			if (!grown) {
				err = -ENOMEM;
				goto out_close;
			}
			files = grown;
		}
		files[count++] = file;
	}
	if (count)
		qsort(files, count, sizeof(*files), scan_cmp);
	for (i = 0; i < count && !err; i++)
		err = index_add(d, files[i].digest, files[i].size);
	index_evict(d);
out_close:
	closedir(dir);
	free(files);
	return err;
}

static void disk_destroy(struct cache_disk *d)
{
	size_t i;

	for (i = 0; d->buckets && i <= d->bucket_mask; i++) {
		struct disk_entry *e = d->buckets[i], *next;

		for (; e; e = next) {
			next = e->hash_next;
			free(e);
		}
	}
	free(d->buckets);
	if (d->lock_fd >= 0)
		close(d->lock_fd); /* releases the flock */
	if (d->dir_fd >= 0)
		close(d->dir_fd);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

int cache_disk_open(const char *dir, uint64_t limit, struct cache_disk **out, char *errbuf,
		    size_t errlen)
{
	struct cache_disk *d = calloc(1, sizeof(*d));
	struct stat st;
	int err;

	if (!d) {
		snprintf(errbuf, errlen, "cache: out of memory");
		return -ENOMEM;
	}
	d->dir_fd = d->lock_fd = -1;
	d->limit = limit;
	d->bucket_mask = DISK_BUCKETS_MIN - 1;
	pthread_mutex_init(&d->lock, NULL);
	d->buckets = calloc(DISK_BUCKETS_MIN, sizeof(*d->buckets));
	if (!d->buckets) {
		err = -ENOMEM;
		snprintf(errbuf, errlen, "cache: out of memory");
		goto out_destroy;
	}
	err = util_mkdir_p(dir, 0700);
	if (err) {
		snprintf(errbuf, errlen, "cache_dir %s: cannot create it: %s", dir, strerror(-err));
		goto out_destroy;
	}
	d->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dir_fd < 0 || fstat(d->dir_fd, &st)) {
		err = -errno;
		snprintf(errbuf, errlen, "cache_dir %s: %s", dir, strerror(-err));
		goto out_destroy;
	}
	if ((st.st_mode & 077) && fchmod(d->dir_fd, 0700)) {
		err = -errno;
		snprintf(errbuf, errlen, "cache_dir %s is open to other users and cannot be made "
			 "0700: %s", dir, strerror(-err));
		goto out_destroy;
	}
	d->lock_fd = openat(d->dir_fd, DISK_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) {
		err = -errno;
		snprintf(errbuf, errlen, "cache_dir %s: cannot create its lock file: %s", dir,
			 strerror(-err));
		goto out_destroy;
	}
	/* A mount unmounted a moment ago may still be writing out and holding the lock:
	 * give it a few seconds before calling the directory busy. */
	err = 0;
	for (int tries = 0; flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0; tries++) {
		struct timespec pause = { .tv_nsec = DISK_LOCK_RETRY_MS * 1000000L };

		if (errno != EWOULDBLOCK || tries == DISK_LOCK_WAIT_MS / DISK_LOCK_RETRY_MS) {
			err = errno == EWOULDBLOCK ? -EBUSY : -errno;
			break;
		}
		nanosleep(&pause, NULL);
	}
	if (err == -EBUSY) {
		snprintf(errbuf, errlen, "cache_dir %s is in use by another ferry mount; give "
			 "each mount its own cache_dir", dir);
		goto out_destroy;
	}
	if (err) {
		snprintf(errbuf, errlen, "cache_dir %s: cannot lock it: %s", dir, strerror(-err));
		goto out_destroy;
	}
	err = disk_scan(d);
	if (err) {
		snprintf(errbuf, errlen, "cache_dir %s: cannot read it: %s", dir, strerror(-err));
		goto out_destroy;
	}
	*out = d;
	return 0;

out_destroy:
	disk_destroy(d);
	return err;
}

void cache_disk_close(struct cache_disk *d)
{
	if (d)
		disk_destroy(d);
}
