/* Tests of cache/: the block cache, prefetcher and disk tier over a fake store whose
 * objects are generated from a seed (so a 256 MiB object costs no memory), with
 * counters, a log of every read, an optional delay, a gate that holds reads at one
 * offset, and injected failures. */
#include "cache/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define BS (64 * KiB)
#define NO_OFFSET UINT64_MAX
#define LOG_MAX 8192

/* The fake store ------------------------------------------------------------------ */

struct fake_object {
	char path[64];
	uint64_t size;
	uint64_t seed;
	bool text; /* compressible content */
	char etag[STORE_ETAG_MAX];
};

struct read_rec {
	uint64_t offset;
	size_t len;
};

struct fake_store {
	struct store base;
	pthread_mutex_t lock; /* guards everything below but the atomics */
	pthread_cond_t gate_cond;
	struct fake_object objects[8];
	size_t count;
	unsigned etag_seq;
	char gate_path[64]; /* reads of it in [gate_lo, gate_hi] wait while gate_closed */
	uint64_t gate_lo, gate_hi;
	bool gate_closed;
	int gate_waiting;
	uint64_t fail_offset; /* reads at this offset fail with -EIO fail_count times */
	int fail_count;
	struct read_rec log[LOG_MAX];
	size_t log_len;
	atomic_int reads;
	atomic_ullong read_bytes;
	atomic_int delay_us;
};

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The bytes [offset, offset + len) of the object version (seed, text). */
static void fill(uint64_t seed, bool text, uint64_t offset, size_t len, unsigned char *buf)
{
	size_t i = 0;

	if (text) {
		for (; i < len; i++)
			buf[i] = (unsigned char)('a' + (offset + i + seed) % 23);
		return;
	}
	while (i < len) {
		uint64_t pos = offset + i, word = mix64((pos >> 3) ^ (seed << 40));
		size_t skip = (size_t)(pos & 7), n = 8 - skip;
		unsigned char bytes[8];

		if (n > len - i)
			n = len - i;
		memcpy(bytes, &word, sizeof(bytes));
		memcpy(buf + i, bytes + skip, n);
		i += n;
	}
}

static struct fake_store *fake_of(struct store *s)
{
	return (struct fake_store *)s;
}

static struct fake_object *fake_find(struct fake_store *fake, const char *path)
{
	size_t i;

	for (i = 0; i < fake->count; i++)
		if (strcmp(fake->objects[i].path, path) == 0)
			return &fake->objects[i];
	return NULL;
}

static int fake_stat(struct store *s, const char *path, struct store_attr *out)
{
	(void)s;
	(void)path;
	(void)out;
	return -ENOSYS;
}

static int fake_list(struct store *s, const char *dir, const char *marker, store_list_fn fn,
		     void *ctx, char *next_marker, size_t next_len)
{
	(void)s;
	(void)dir;
	(void)marker;
	(void)fn;
	(void)ctx;
	(void)next_marker;
	(void)next_len;
	return -ENOSYS;
}

static int fake_probe(struct store *s, char *errbuf, size_t errlen)
{
	(void)s;
	(void)errbuf;
	(void)errlen;
	return 0;
}

static ssize_t fake_read(struct store *s, const char *path, const char *etag, uint64_t offset,
			 size_t len, void *buf)
{
	struct fake_store *fake = fake_of(s);
	struct fake_object *found, object;
	int delay = atomic_load(&fake->delay_us);
	size_t n;

	pthread_mutex_lock(&fake->lock);
	found = fake_find(fake, path);
	if (found)
		object = *found;
	if (found && offset == fake->fail_offset && fake->fail_count > 0) {
		fake->fail_count--;
		pthread_mutex_unlock(&fake->lock);
		return -EIO;
	}
	if (fake->gate_closed && strcmp(path, fake->gate_path) == 0 && offset >= fake->gate_lo &&
	    offset <= fake->gate_hi) {
		fake->gate_waiting++;
		pthread_cond_broadcast(&fake->gate_cond);
		while (fake->gate_closed)
			pthread_cond_wait(&fake->gate_cond, &fake->lock);
		fake->gate_waiting--;
	}
	if (fake->log_len < LOG_MAX)
		fake->log[fake->log_len++] = (struct read_rec){ offset, len };
	pthread_mutex_unlock(&fake->lock);
	if (!found)
		return -ENOENT;
	if (etag && strcmp(etag, object.etag) != 0)
		return -ESTALE;
	if (delay)
		usleep((useconds_t)delay);
	n = offset >= object.size ? 0 : len < object.size - offset ? len : object.size - offset;
	fill(object.seed, object.text, offset, n, buf);
	atomic_fetch_add(&fake->reads, 1);
	atomic_fetch_add(&fake->read_bytes, n);
	return (ssize_t)n;
}

static void fake_destroy(struct store *s)
{
	struct fake_store *fake = fake_of(s);

	pthread_cond_destroy(&fake->gate_cond);
	pthread_mutex_destroy(&fake->lock);
	free(fake);
}

static const struct store_ops fake_ops = {
	.stat = fake_stat,
	.list = fake_list,
	.read = fake_read,
	.probe = fake_probe,
	.destroy = fake_destroy,
};

static struct fake_store *fake_new(void)
{
	struct fake_store *fake = calloc(1, sizeof(*fake));

	if (!fake)
		abort();
	fake->base.ops = &fake_ops;
	pthread_mutex_init(&fake->lock, NULL);
	pthread_cond_init(&fake->gate_cond, NULL);
	fake->fail_offset = NO_OFFSET;
	return fake;
}

/* Adds or replaces an object; every put gets a new etag. */
static struct fake_object fake_put(struct fake_store *fake, const char *path, uint64_t size,
				   uint64_t seed, bool text)
{
	struct fake_object *object, copy;

	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, path);
	if (!object) {
		if (fake->count == sizeof(fake->objects) / sizeof(fake->objects[0]))
			abort();
		object = &fake->objects[fake->count++];
		snprintf(object->path, sizeof(object->path), "%s", path);
	}
	object->size = size;
	object->seed = seed;
	object->text = text;
	snprintf(object->etag, sizeof(object->etag), "\"0x8D%u\"", ++fake->etag_seq);
	copy = *object;
	pthread_mutex_unlock(&fake->lock);
	return copy;
}

/* Holds reads of path at offsets lo .. hi until gate_open. */
static void gate_close(struct fake_store *fake, const char *path, uint64_t lo, uint64_t hi)
{
	pthread_mutex_lock(&fake->lock);
	snprintf(fake->gate_path, sizeof(fake->gate_path), "%s", path);
	fake->gate_lo = lo;
	fake->gate_hi = hi;
	fake->gate_closed = true;
	pthread_mutex_unlock(&fake->lock);
}

static void gate_open(struct fake_store *fake)
{
	pthread_mutex_lock(&fake->lock);
	fake->gate_closed = false;
	pthread_cond_broadcast(&fake->gate_cond);
	pthread_mutex_unlock(&fake->lock);
}

/* Waits until n reads wait at the gate. */
static void gate_wait_for(struct fake_store *fake, int n)
{
	pthread_mutex_lock(&fake->lock);
	while (fake->gate_waiting < n)
		pthread_cond_wait(&fake->gate_cond, &fake->lock);
	pthread_mutex_unlock(&fake->lock);
}

/* How many logged reads started at offset. */
static int reads_at(struct fake_store *fake, uint64_t offset)
{
	size_t i;
	int n = 0;

	pthread_mutex_lock(&fake->lock);
	for (i = 0; i < fake->log_len; i++)
		n += fake->log[i].offset == offset;
	pthread_mutex_unlock(&fake->lock);
	return n;
}

static size_t last_read_len(struct fake_store *fake)
{
	size_t len;

	pthread_mutex_lock(&fake->lock);
	len = fake->log_len ? fake->log[fake->log_len - 1].len : 0;
	pthread_mutex_unlock(&fake->lock);
	return len;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Waits (up to 5 s) for the store to have served want reads and for the cache's
 * workers to have nothing queued or in hand (no read can start after that): the count
 * then. */
static int reads_settle(struct fake_store *fake, struct cache *c, int want)
{
	struct cache_stats st;
	int waited;

	for (waited = 0; waited < 5000; waited++) {
		cache_get_stats(c, &st);
		if (atomic_load(&fake->reads) >= want && st.worker_jobs == 0)
			break;
		sleep_ms(1);
	}
	return atomic_load(&fake->reads);
}

/* Helpers --------------------------------------------------------------------------- */

static struct cache_config config(struct fake_store *fake, size_t mem_blocks,
				  size_t window_blocks, int workers)
{
	struct cache_config cfg = {
		.store = &fake->base,
		.namespace = "https://acct.blob.core.windows.net/container",
		.block_size = BS,
		.mem_limit = mem_blocks * BS,
		.disk_dir = NULL,
		.disk_limit = 0,
		.workers = workers,
		.max_window = window_blocks * BS,
	};

	return cfg;
}

static struct cache *cache_make(const struct cache_config *cfg)
{
	char errbuf[256] = "";
	struct cache *c = NULL;
	int err = cache_new(cfg, &c, errbuf, sizeof(errbuf));

	if (err)
		fprintf(stderr, "cache_new: %d %s\n", err, errbuf);
	CHECK(err == 0);
	return c;
}

static struct cache_file *open_object(struct cache *c, const struct fake_object *object)
{
	struct cache_file *f = NULL;

	CHECK(cache_open(c, object->path, object->etag, object->size, &f) == 0);
	return f;
}

/* Whether buf holds the object's bytes at offset. */
static bool bytes_ok(const struct fake_object *object, uint64_t offset, const void *buf,
		     size_t len)
{
	unsigned char *want = malloc(len ? len : 1);
	bool ok;

	if (!want)
		abort();
	fill(object->seed, object->text, offset, len, want);
	ok = memcmp(want, buf, len) == 0;
	free(want);
	return ok;
}

/* Reads the whole object in order, chunk bytes at a time; true if every byte is right. */
static bool read_all(struct cache_file *f, const struct fake_object *object, size_t chunk)
{
	unsigned char *buf = malloc(chunk);
	uint64_t offset = 0;
	bool ok = true;

	if (!buf)
		abort();
	while (offset < object->size) {
		ssize_t n = cache_read(f, offset, chunk, buf);
		size_t want = object->size - offset < chunk ? (size_t)(object->size - offset) : chunk;

		if (n != (ssize_t)want || !bytes_ok(object, offset, buf, want)) {
			fprintf(stderr, "read_all: at %llu got %zd, want %zu\n",
				(unsigned long long)offset, n, want);
			ok = false;
			break;
		}
		offset += want;
	}
	free(buf);
	return ok;
}

static struct cache_stats stats_of(struct cache *c)
{
	struct cache_stats st;

	cache_get_stats(c, &st);
	return st;
}

static void make_tmpdir(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/ferry-cache-test-XXXXXX");
	if (!mkdtemp(dir))
		abort();
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	char path[512];

	if (!d)
		return;
	while ((ent = readdir(d))) {
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Names of the cache files in dir (not .lock), sorted; returns the count. */
static size_t cache_files(const char *dir, char names[][80], size_t max, uint64_t *total)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	size_t n = 0;

	*total = 0;
	if (!d)
		return 0;
	while ((ent = readdir(d))) {
		char path[512];
		struct stat st;

		if (ent->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
		if (stat(path, &st) == 0)
			*total += (uint64_t)st.st_size;
		if (n < max)
			snprintf(names[n], 80, "%.79s", ent->d_name);
		n++;
	}
	closedir(d);
	return n;
}

/* Cases ------------------------------------------------------------------------------ */

static void sequential_read_is_exact_and_fetches_whole_blocks(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "data/seq.bin", 16 * BS + 1234, 1, false);
	struct cache_config cfg = config(fake, 64, 8, 2);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &object);
	struct cache_stats st;

	CHECK(read_all(f, &object, 16 * KiB));
	cache_close(f);
	st = stats_of(c);
	CHECK(atomic_load(&fake->reads) == 17); /* one per block, not one per read */
	CHECK(st.block_fetches == 17);
	CHECK(st.direct_reads == 0);
	CHECK(st.fetched_bytes == object.size);
	CHECK(reads_at(fake, 16 * BS) == 1);
	CHECK(st.mem_peak <= cfg.mem_limit);
	CHECK(st.mem_used <= cfg.mem_limit);
	cache_free(c);
	store_destroy(&fake->base);
}

static void readahead_window_doubles_up_to_max(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "win.bin", 40 * BS, 2, false);
	struct cache_config cfg = config(fake, 32, 8, 1);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &object);
	unsigned char *buf = malloc(BS);
	uint64_t k;

	/* Read k (block k) leaves blocks 0 .. k + min(2^k, 8) fetched: the window is one
	 * block on the first read and doubles on each sequential read up to 8. */
	for (k = 0; k < 6; k++) {
		uint64_t window = k < 3 ? (uint64_t)1 << k : 8;
		int want = (int)(k + window + 1);

		CHECK(cache_read(f, k * BS, BS, buf) == (ssize_t)BS);
		CHECK(bytes_ok(&object, k * BS, buf, BS));
		CHECK(reads_settle(fake, c, want) == want);
		CHECK(reads_at(fake, (k + window) * BS) == 1);
		CHECK(reads_at(fake, (k + window + 1) * BS) == 0);
	}
	free(buf);
	cache_close(f);
	CHECK(stats_of(c).direct_reads == 0);
	cache_free(c);
	store_destroy(&fake->base);
}

static void random_small_reads_cost_one_small_store_read_each(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "rand.bin", 64 * BS, 3, false);
	struct cache_config cfg = config(fake, 16, 8, 2);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &object);
	unsigned char buf[4096];
	struct cache_stats st;
	int i;

	for (i = 0; i < 50; i++) {
		/* Distinct blocks in a scrambled order, never where the last read ended. */
		uint64_t block = (uint64_t)(i * 37 + 5) % 64;
		uint64_t offset = block * BS + (uint64_t)((i * 7919) % (BS - 4096));
		int before = atomic_load(&fake->reads);

		if (i == 49)
			offset = 40 * BS - 1000; /* straddles two blocks: still one read */
		CHECK(cache_read(f, offset, sizeof(buf), buf) == (ssize_t)sizeof(buf));
		CHECK(bytes_ok(&object, offset, buf, sizeof(buf)));
		CHECK(atomic_load(&fake->reads) == before + 1);
		CHECK(last_read_len(fake) == sizeof(buf));
	}
	/* Near the end: one read of exactly the bytes that exist. */
	CHECK(cache_read(f, object.size - 100, sizeof(buf), buf) == 100);
	CHECK(bytes_ok(&object, object.size - 100, buf, 100));
	CHECK(last_read_len(fake) == 100);
	CHECK(cache_read(f, object.size, sizeof(buf), buf) == 0);
	st = stats_of(c);
	CHECK(st.direct_reads == 51);
	CHECK(st.block_fetches == 0);
	CHECK(st.fetched_bytes == 50 * sizeof(buf) + 100);
	CHECK(reads_settle(fake, c, 51) == 51); /* no read-ahead was started */
	cache_close(f);
	cache_free(c);
	store_destroy(&fake->base);
}

/* A sequential stream as the kernel delivers it with 8 reads in flight: each group of
 * 8 consecutive reads arrives shuffled, the very first read too (it is not the one at
 * offset 0). It stays sequential. A random stream (fio randread) stays random. */
static void reordered_stream_is_sequential_random_stream_is_not(void)
{
	static const int order[8] = { 0, 3, 1, 2, 6, 4, 7, 5 };
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "stream.bin", 32 * BS, 4, false);
	struct fake_object big = fake_put(fake, "big.bin", 64 * MiB, 5, false);
	struct cache_config cfg = config(fake, 64, 16, 2);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &object);
	size_t len = 16 * KiB, nreads = (size_t)(object.size / len), i;
	unsigned char buf[16 * KiB];
	struct cache_stats st;
	uint64_t state = 42;
	bool ok = true;

	for (i = 0; i < nreads; i++) {
		/* The pattern rotates per group: each group is shuffled differently. */
		size_t group = i / 8, slot = (size_t)order[(i % 8 + group + 1) % 8];
		uint64_t offset = (group * 8 + slot) * len;

		if (cache_read(f, offset, len, buf) != (ssize_t)len ||
		    !bytes_ok(&object, offset, buf, len))
			ok = false;
	}
	CHECK(ok);
	st = stats_of(c);
	CHECK(st.direct_reads == 0);
	CHECK(st.block_fetches == 32);
	cache_close(f);

	f = open_object(c, &big);
	for (i = 0; i < 500; i++) {
		uint64_t offset;

		state = mix64(state);
		offset = (state % (big.size / 4096)) * 4096;
		if (cache_read(f, offset, 4096, buf) != 4096 || !bytes_ok(&big, offset, buf, 4096))
			ok = false;
	}
	CHECK(ok);
	st = stats_of(c);
	CHECK(st.direct_reads == 500);
	CHECK(st.block_fetches == 32);
	cache_close(f);
	cache_free(c);
	store_destroy(&fake->base);
}

static void second_pass_is_served_from_memory(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "again.bin", 12 * BS + 5, 6, false);
	struct cache_config cfg = config(fake, 32, 8, 2);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &object);
	unsigned char buf[4096];
	int reads;

	CHECK(read_all(f, &object, 32 * KiB));
	cache_close(f);
	reads = reads_settle(fake, c, 13);
	CHECK(reads == 13);
	f = open_object(c, &object);
	CHECK(read_all(f, &object, 100 * KiB));
	/* Random reads of cached blocks come from memory too. */
	CHECK(cache_read(f, 7 * BS + 3, sizeof(buf), buf) == (ssize_t)sizeof(buf));
	CHECK(bytes_ok(&object, 7 * BS + 3, buf, sizeof(buf)));
	CHECK(cache_read(f, 2 * BS - 100, sizeof(buf), buf) == (ssize_t)sizeof(buf));
	CHECK(bytes_ok(&object, 2 * BS - 100, buf, sizeof(buf)));
	cache_close(f);
	CHECK(atomic_load(&fake->reads) == reads);
	CHECK(stats_of(c).mem_hits >= 13);
	CHECK(stats_of(c).direct_reads == 0);
	cache_free(c);
	store_destroy(&fake->base);
}

static void eviction_keeps_memory_within_limit(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "huge.bin", 64 * BS, 7, false);
	struct cache_config cfg = config(fake, 8, 4, 2);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &object);
	struct cache_stats st;
	int reads;

	CHECK(read_all(f, &object, 48 * KiB));
	cache_close(f);
	reads = reads_settle(fake, c, 64);
	CHECK(reads == 64);
	st = stats_of(c);
	CHECK(st.mem_peak <= cfg.mem_limit);
	CHECK(st.mem_peak == cfg.mem_limit); /* the pool was used */
	/* A second pass does not fit either: the early blocks were evicted. */
	f = open_object(c, &object);
	CHECK(read_all(f, &object, 48 * KiB));
	cache_close(f);
	CHECK(atomic_load(&fake->reads) > reads);
	CHECK(stats_of(c).mem_peak <= cfg.mem_limit);
	cache_free(c);
	store_destroy(&fake->base);
}

static void disk_tier_serves_a_remount_and_refetches_a_new_etag(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "dir/remount.bin", 10 * BS + 77, 8, false);
	struct fake_object text = fake_put(fake, "dir/text.txt", 6 * BS, 9, true);
	struct cache_config cfg = config(fake, 32, 8, 2);
	struct cache *c;
	struct cache_file *f;
	struct cache_stats st;
	char dir[64], names[64][80];
	uint64_t total;
	size_t i, n;

	make_tmpdir(dir, sizeof(dir));
	cfg.disk_dir = dir;
	cfg.disk_limit = 64 * BS;
	c = cache_make(&cfg);
	f = open_object(c, &object);
	CHECK(read_all(f, &object, 64 * KiB));
	cache_close(f);
	f = open_object(c, &text);
	CHECK(read_all(f, &text, 64 * KiB));
	cache_close(f);
	cache_free(c); /* waits for the disk writes */
	CHECK(atomic_load(&fake->reads) == 17);
	n = cache_files(dir, names, 64, &total);
	CHECK(n == 17);
	/* No name says anything of the object: 64 hex digits each. */
	for (i = 0; i < n && i < 64; i++)
		CHECK(strlen(names[i]) == 64 && strspn(names[i], "0123456789abcdef") == 64);
	/* Random data is stored (nearly) raw, text is compressed. */
	CHECK(total < 10 * BS + 77 + 6 * BS);
	CHECK(total > 10 * BS);

	/* Remount: same etag, zero store reads, even for random reads. */
	c = cache_make(&cfg);
	st = stats_of(c);
	CHECK(st.disk_used == total);
	f = open_object(c, &object);
	{
		unsigned char buf[4096];

		CHECK(cache_read(f, 5 * BS + 10, sizeof(buf), buf) == (ssize_t)sizeof(buf));
		CHECK(bytes_ok(&object, 5 * BS + 10, buf, sizeof(buf)));
	}
	CHECK(read_all(f, &object, 64 * KiB));
	cache_close(f);
	f = open_object(c, &text);
	CHECK(read_all(f, &text, 128 * KiB));
	cache_close(f);
	CHECK(atomic_load(&fake->reads) == 17);
	st = stats_of(c);
	CHECK(st.disk_hits == 17);
	CHECK(st.block_fetches == 0);
	CHECK(st.disk_corrupt == 0);

	/* The object changes: its new etag misses the disk tier. */
	object = fake_put(fake, "dir/remount.bin", 10 * BS + 77, 10, false);
	f = open_object(c, &object);
	CHECK(read_all(f, &object, 64 * KiB));
	cache_close(f);
	CHECK(atomic_load(&fake->reads) == 17 + 11);
	CHECK(stats_of(c).disk_hits == 17);
	cache_free(c);
	remove_tree(dir);
	store_destroy(&fake->base);
}

/* 4 MiB blocks: each cache file holds many lz4 blocks and takes several reads. */
static void disk_tier_round_trips_large_blocks(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "large.bin", 10 * MiB + 3, 28, false);
	struct fake_object text = fake_put(fake, "large.txt", 9 * MiB, 29, true);
	struct cache_config cfg = config(fake, 1, 1, 2);
	struct cache *c;
	struct cache_file *f;
	struct cache_stats st;
	char dir[64], names[8][80], path[512];
	uint64_t total, largest = 0;
	size_t n, i, big = 0;
	struct stat sb;
	int fd;

	make_tmpdir(dir, sizeof(dir));
	cfg.block_size = 4 * MiB;
	cfg.mem_limit = 32 * MiB; /* all six blocks: none is evicted before it is written */
	cfg.max_window = 8 * MiB;
	cfg.disk_dir = dir;
	cfg.disk_limit = 64 * MiB;
	c = cache_make(&cfg);
	f = open_object(c, &object);
	CHECK(read_all(f, &object, MiB));
	cache_close(f);
	f = open_object(c, &text);
	CHECK(read_all(f, &text, MiB));
	cache_close(f);
	cache_free(c);
	n = cache_files(dir, names, 8, &total);
	CHECK(n == 6);
	CHECK(total < object.size + text.size / 2); /* the text compressed */

	c = cache_make(&cfg);
	f = open_object(c, &object);
	CHECK(read_all(f, &object, 300 * KiB));
	cache_close(f);
	f = open_object(c, &text);
	CHECK(read_all(f, &text, 300 * KiB));
	cache_close(f);
	st = stats_of(c);
	cache_free(c);
	CHECK(st.disk_hits == 6);
	CHECK(st.disk_corrupt == 0);
	CHECK(atomic_load(&fake->reads) == 6);

	/* One flipped byte three quarters into the largest file is caught. */
	for (i = 0; i < n && i < 8; i++) {
		snprintf(path, sizeof(path), "%s/%.79s", dir, names[i]);
		if (stat(path, &sb) == 0 && (uint64_t)sb.st_size > largest) {
			largest = (uint64_t)sb.st_size;
			big = i;
		}
	}
	snprintf(path, sizeof(path), "%s/%.79s", dir, names[big]);
	fd = open(path, O_RDWR);
	{
		unsigned char byte = 0;

		CHECK(fd >= 0 && pread(fd, &byte, 1, (off_t)(largest * 3 / 4)) == 1);
		byte ^= 0x55;
		CHECK(pwrite(fd, &byte, 1, (off_t)(largest * 3 / 4)) == 1);
	}
	close(fd);
	c = cache_make(&cfg);
	f = open_object(c, &object);
	CHECK(read_all(f, &object, MiB));
	cache_close(f);
	st = stats_of(c);
	cache_free(c);
	CHECK(st.disk_corrupt == 1);
	CHECK(atomic_load(&fake->reads) == 7);
	remove_tree(dir);
	store_destroy(&fake->base);
}

/* The one worker is stuck downloading, so nothing is written to disk meanwhile: the
 * blocks the reader loads itself wait for the disk, and when they fill the pool their
 * writes are skipped rather than sending the reader to the store without a block. */
static void slow_disk_writes_do_not_starve_readers(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "starve.bin", 20 * BS, 31, false);
	struct cache_config cfg = config(fake, 8, 2, 1);
	struct cache *c;
	struct cache_file *f;
	unsigned char *buf = malloc(BS);
	char dir[64], names[32][80];
	uint64_t k, total;
	bool ok = true;

	make_tmpdir(dir, sizeof(dir));
	cfg.disk_dir = dir;
	cfg.disk_limit = 64 * BS;
	c = cache_make(&cfg);
	f = open_object(c, &object);
	gate_close(fake, "starve.bin", BS, BS);
	CHECK(cache_read(f, 0, BS, buf) == (ssize_t)BS); /* read-ahead: block 1 */
	gate_wait_for(fake, 1);                         /* the worker is stuck on it */
	for (k = 2; k < 20; k++)
		if (cache_read(f, k * BS, BS, buf) != (ssize_t)BS || !bytes_ok(&object, k * BS, buf, BS))
			ok = false;
	CHECK(ok);
	CHECK(stats_of(c).direct_reads == 0);
	CHECK(stats_of(c).mem_peak <= cfg.mem_limit);
	gate_open(fake);
	cache_close(f);
	cache_free(c);
	CHECK(cache_files(dir, names, 32, &total) < 20); /* skipped writes were skipped */
	free(buf);
	remove_tree(dir);
	store_destroy(&fake->base);
}

static void disk_tier_stays_within_its_limit(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "many.bin", 40 * BS, 11, false);
	struct cache_config cfg = config(fake, 16, 4, 2);
	struct cache *c;
	struct cache_file *f;
	char dir[64], names[64][80];
	uint64_t total;
	size_t n;

	make_tmpdir(dir, sizeof(dir));
	cfg.disk_dir = dir;
	cfg.disk_limit = 10 * BS + 5000; /* room for ten random blocks and their headers */
	c = cache_make(&cfg);
	f = open_object(c, &object);
	CHECK(read_all(f, &object, 64 * KiB));
	cache_close(f);
	cache_free(c);
	n = cache_files(dir, names, 64, &total);
	CHECK(total <= cfg.disk_limit);
	CHECK(n >= 8 && n <= 10);

	/* A remount with a smaller limit trims the directory at once. */
	cfg.disk_limit = 3 * BS + 5000;
	c = cache_make(&cfg);
	CHECK(stats_of(c).disk_used <= cfg.disk_limit);
	n = cache_files(dir, names, 64, &total);
	CHECK(n == 3);
	CHECK(total <= cfg.disk_limit);
	cache_free(c);
	remove_tree(dir);
	store_destroy(&fake->base);
}

static void damaged_cache_files_are_refetched_never_served(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "fragile.bin", 6 * BS, 12, false);
	struct fake_object text = fake_put(fake, "fragile.txt", 2 * BS, 13, true);
	struct cache_config cfg = config(fake, 32, 8, 2);
	struct cache *c;
	struct cache_file *f;
	struct cache_stats st;
	char dir[64], names[16][80], path[512];
	uint64_t total;
	struct stat sb;
	size_t n, i;
	int fd;

	make_tmpdir(dir, sizeof(dir));
	cfg.disk_dir = dir;
	cfg.disk_limit = 64 * BS;
	c = cache_make(&cfg);
	f = open_object(c, &object);
	CHECK(read_all(f, &object, 64 * KiB));
	cache_close(f);
	f = open_object(c, &text);
	CHECK(read_all(f, &text, 64 * KiB));
	cache_close(f);
	cache_free(c);
	n = cache_files(dir, names, 16, &total);
	CHECK(n == 8);
	if (n != 8)
		goto out;

	/* Flip bytes in the middle of two files (a random block stored raw and a compressed
	 * text block: each is one of the eight), truncate a third, and change a byte of
	 * the key in a fourth's header. */
	for (i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%.79s", dir, names[i]);
		fd = open(path, O_RDWR);
		CHECK(fd >= 0 && fstat(fd, &sb) == 0);
		if (i == 2) {
			CHECK(ftruncate(fd, sb.st_size / 2) == 0);
		} else {
			off_t at = i == 3 ? 50 : sb.st_size / 2;
			unsigned char byte;

			CHECK(pread(fd, &byte, 1, at) == 1);
			byte ^= 0x5a;
			CHECK(pwrite(fd, &byte, 1, at) == 1);
		}
		close(fd);
	}
	c = cache_make(&cfg);
	f = open_object(c, &object);
	CHECK(read_all(f, &object, 64 * KiB));
	cache_close(f);
	f = open_object(c, &text);
	CHECK(read_all(f, &text, 64 * KiB));
	cache_close(f);
	cache_free(c);
	CHECK(atomic_load(&fake->reads) == 8 + 4);
	n = cache_files(dir, names, 16, &total);
	CHECK(n == 8); /* the damaged four were written again */

	c = cache_make(&cfg);
	f = open_object(c, &object);
	CHECK(read_all(f, &object, 64 * KiB));
	cache_close(f);
	f = open_object(c, &text);
	CHECK(read_all(f, &text, 64 * KiB));
	cache_close(f);
	st = stats_of(c);
	CHECK(st.disk_corrupt == 0);
	CHECK(st.disk_hits == 8);
	CHECK(atomic_load(&fake->reads) == 8 + 4);
	cache_free(c);
out:
	remove_tree(dir);
	store_destroy(&fake->base);
}

static void damaged_file_is_counted(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "one.bin", BS, 14, false);
	struct cache_config cfg = config(fake, 8, 2, 1);
	struct cache *c;
	struct cache_file *f;
	char dir[64], names[4][80], path[512];
	unsigned char buf[100];
	uint64_t total;
	int fd;

	make_tmpdir(dir, sizeof(dir));
	cfg.disk_dir = dir;
	cfg.disk_limit = 8 * BS;
	c = cache_make(&cfg);
	f = open_object(c, &object);
	CHECK(cache_read(f, 0, sizeof(buf), buf) == (ssize_t)sizeof(buf));
	cache_close(f);
	cache_free(c);
	CHECK(cache_files(dir, names, 4, &total) == 1);
	snprintf(path, sizeof(path), "%s/%.79s", dir, names[0]);
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, "garbage!", 8, (off_t)total / 2) == 8);
	close(fd);

	c = cache_make(&cfg);
	f = open_object(c, &object);
	CHECK(cache_read(f, 30000, sizeof(buf), buf) == (ssize_t)sizeof(buf)); /* random */
	CHECK(bytes_ok(&object, 30000, buf, sizeof(buf)));
	cache_close(f);
	CHECK(stats_of(c).disk_corrupt == 1);
	CHECK(stats_of(c).disk_hits == 0);
	CHECK(atomic_load(&fake->reads) == 2);
	cache_free(c);
	remove_tree(dir);
	store_destroy(&fake->base);
}

static void changed_object_fails_with_estale_never_mixes(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object old = fake_put(fake, "moving.bin", 8 * BS, 15, false), now;
	struct cache_config cfg = config(fake, 32, 8, 2);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &old), *g;
	unsigned char *buf = malloc(2 * BS);

	/* Blocks 0 and 1 read; read-ahead brings blocks 2 and 3. */
	CHECK(cache_read(f, 0, BS, buf) == (ssize_t)BS);
	CHECK(cache_read(f, BS, BS, buf) == (ssize_t)BS);
	CHECK(reads_settle(fake, c, 4) == 4);
	now = fake_put(fake, "moving.bin", 8 * BS, 16, false);

	CHECK(cache_read(f, 6 * BS, 4096, buf) == -ESTALE);          /* random, uncached */
	CHECK(cache_read(f, 2 * BS, 2 * BS, buf) == (ssize_t)(2 * BS)); /* cached: old bytes */
	CHECK(bytes_ok(&old, 2 * BS, buf, 2 * BS));
	CHECK(cache_read(f, 4 * BS, BS, buf) == -ESTALE);      /* sequential, uncached */
	CHECK(cache_read(f, 4 * BS, BS, buf) == -ESTALE);      /* the failure was not kept */
	CHECK(cache_read(f, 3 * BS + 5, BS, buf) == -ESTALE);  /* half cached: no mix */
	CHECK(cache_read(f, 7 * BS, 100, buf) == -ESTALE);     /* random, uncached */

	/* A handle on the new version sees only new bytes, cached blocks included. */
	g = open_object(c, &now);
	CHECK(read_all(g, &now, 40 * KiB));
	cache_close(g);
	cache_close(f);
	free(buf);
	cache_free(c);
	store_destroy(&fake->base);
}

static void failed_fetch_reaches_waiters_and_is_retried(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "flaky.bin", 4 * BS, 17, false);
	struct cache_config cfg = config(fake, 16, 4, 1);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &object);
	unsigned char buf[1000];

	pthread_mutex_lock(&fake->lock);
	fake->fail_offset = 0;
	fake->fail_count = 1;
	pthread_mutex_unlock(&fake->lock);
	CHECK(cache_read(f, 0, sizeof(buf), buf) == -EIO);
	CHECK(cache_read(f, 0, sizeof(buf), buf) == (ssize_t)sizeof(buf));
	CHECK(bytes_ok(&object, 0, buf, sizeof(buf)));
	cache_close(f);
	cache_free(c);
	store_destroy(&fake->base);
}

struct reader_arg {
	struct cache *cache;
	struct cache_file *file; /* shared, or NULL: open one */
	const struct fake_object *object;
	uint64_t seed;
	int reads;
	bool ok;
};

static void *random_reader(void *p)
{
	struct reader_arg *arg = p;
	size_t cap = 200 * KiB;
	unsigned char *buf = malloc(cap);
	uint64_t state = arg->seed, offset = 0;
	int i;

	arg->ok = buf != NULL;
	for (i = 0; i < arg->reads && arg->ok; i++) {
		size_t len;
		ssize_t n, want;

		state = mix64(state);
		len = 1 + (size_t)(state % cap);
		if (state % 3) /* two in three reads continue a run */
			offset = (state >> 20) % arg->object->size;
		n = cache_read(arg->file, offset, len, buf);
		want = (ssize_t)(arg->object->size - offset < len ? arg->object->size - offset : len);
		if (n != want || !bytes_ok(arg->object, offset, buf, (size_t)want)) {
			fprintf(stderr, "reader: at %llu len %zu got %zd\n",
				(unsigned long long)offset, len, n);
			arg->ok = false;
		}
		offset += (uint64_t)want;
		if (offset >= arg->object->size)
			offset = 0;
	}
	free(buf);
	return NULL;
}

static void eight_threads_read_one_file_correctly(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "shared.bin", 48 * BS + 999, 18, false);
	struct cache_config cfg = config(fake, 16, 4, 3);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &object);
	struct reader_arg args[8];
	pthread_t threads[8];
	int i;

	for (i = 0; i < 8; i++) {
		args[i] = (struct reader_arg){ c, f, &object, (uint64_t)i + 100, 150, false };
		CHECK(pthread_create(&threads[i], NULL, random_reader, &args[i]) == 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(threads[i], NULL);
		CHECK(args[i].ok);
	}
	cache_close(f);
	CHECK(stats_of(c).mem_peak <= cfg.mem_limit);
	cache_free(c);
	store_destroy(&fake->base);
}

struct first_read {
	struct cache_file *file;
	const struct fake_object *object;
	bool ok;
};

static void *read_first_block(void *p)
{
	struct first_read *arg = p;
	unsigned char buf[5000];

	arg->ok = cache_read(arg->file, 0, sizeof(buf), buf) == (ssize_t)sizeof(buf) &&
		  bytes_ok(arg->object, 0, buf, sizeof(buf));
	return NULL;
}

static void one_download_serves_two_readers(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "twice.bin", 4 * BS, 19, false);
	struct cache_config cfg = config(fake, 16, 4, 2);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &object), *g = open_object(c, &object);
	struct first_read a = { f, &object, false }, b = { g, &object, false };
	pthread_t ta, tb;

	gate_close(fake, "twice.bin", 0, 0);
	CHECK(pthread_create(&ta, NULL, read_first_block, &a) == 0);
	gate_wait_for(fake, 1); /* the first reader's download is in flight */
	CHECK(pthread_create(&tb, NULL, read_first_block, &b) == 0);
	sleep_ms(50); /* the second reader finds the block loading and waits */
	gate_open(fake);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK(a.ok && b.ok);
	CHECK(reads_at(fake, 0) == 1);
	cache_close(f);
	cache_close(g);
	cache_free(c);
	store_destroy(&fake->base);
}

struct block_reader {
	struct cache_file *file;
	const struct fake_object *object;
	uint64_t offset;
	size_t len;
	bool ok;
};

static void *read_range(void *p)
{
	struct block_reader *arg = p;
	unsigned char *buf = malloc(arg->len);

	arg->ok = buf && cache_read(arg->file, arg->offset, arg->len, buf) == (ssize_t)arg->len &&
		  bytes_ok(arg->object, arg->offset, buf, arg->len);
	free(buf);
	return NULL;
}

/* Polls (up to 5 s) until the store has been asked for offset. */
static bool wait_read_at(struct fake_store *fake, uint64_t offset)
{
	int waited;

	for (waited = 0; waited < 5000 && reads_at(fake, offset) == 0; waited++)
		sleep_ms(1);
	return reads_at(fake, offset) == 1;
}

/* One read over four blocks: while its reader loads the first, the workers fetch the
 * other three at once. */
static void multi_block_read_fetches_its_blocks_in_parallel(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "multi.bin", 8 * BS, 27, false);
	struct cache_config cfg = config(fake, 32, 8, 3);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &object);
	struct block_reader reader = { f, &object, 100, 3 * BS + 200, false };
	pthread_t thread;

	gate_close(fake, "multi.bin", 0, 0);
	CHECK(pthread_create(&thread, NULL, read_range, &reader) == 0);
	gate_wait_for(fake, 1); /* the reader waits on block 0... */
	CHECK(wait_read_at(fake, BS)); /* ...while blocks 1-3 download */
	CHECK(wait_read_at(fake, 2 * BS));
	CHECK(wait_read_at(fake, 3 * BS));
	gate_open(fake);
	pthread_join(thread, NULL);
	CHECK(reader.ok);
	cache_close(f);
	CHECK(stats_of(c).block_fetches >= 4);
	CHECK(stats_of(c).direct_reads == 0);
	cache_free(c);
	store_destroy(&fake->base);
}

/* With one worker stuck on read-ahead, a reader loads the block it needs itself (even
 * one queued as read-ahead), and closing the file cancels what is still queued. */
static void demand_overtakes_readahead_and_close_cancels_it(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "queue.bin", 12 * BS, 20, false);
	struct cache_config cfg = config(fake, 32, 8, 1);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &object);
	unsigned char *buf = malloc(BS);
	struct cache_stats st;
	int i;

	CHECK(cache_read(f, 0, BS, buf) == (ssize_t)BS); /* queues block 1 */
	CHECK(reads_settle(fake, c, 2) == 2);
	gate_close(fake, "queue.bin", 2 * BS, 2 * BS);
	CHECK(cache_read(f, BS, BS, buf) == (ssize_t)BS); /* queues blocks 2 and 3 */
	gate_wait_for(fake, 1);                         /* the worker is stuck on 2 */
	CHECK(cache_read(f, 3 * BS, BS, buf) == (ssize_t)BS); /* takes 3 over: queues 4..7 */
	CHECK(bytes_ok(&object, 3 * BS, buf, BS));
	CHECK(reads_at(fake, 3 * BS) == 1);
	cache_close(f); /* cancels 4..7; 2 is finished by the worker */
	cache_get_stats(c, &st);
	CHECK(st.prefetched == 7);      /* 1, 2 and 3, then 4..7 */
	CHECK(st.prefetch_unread == 5); /* 2 and 4..7: the file closed first */
	gate_open(fake);
	cache_free(c);
	for (i = 4; i < 12; i++)
		CHECK(reads_at(fake, (uint64_t)i * BS) == 0);
	CHECK(reads_at(fake, 2 * BS) == 1);
	free(buf);
	store_destroy(&fake->base);
}

struct stream_arg {
	struct cache *cache;
	const struct fake_object *object;
	bool ok;
};

static void *stream_reader(void *p)
{
	struct stream_arg *arg = p;
	struct cache_file *f = NULL;

	arg->ok = cache_open(arg->cache, arg->object->path, arg->object->etag,
			     arg->object->size, &f) == 0 &&
		  read_all(f, arg->object, 24 * KiB);
	cache_close(f);
	return NULL;
}

/* Two slots, four files read at once by four threads through a slow store: readers
 * often find every slot busy and read straight into their buffers; all bytes are
 * right either way. */
static void tiny_pool_with_many_files_stays_correct(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object objects[4];
	struct cache_config cfg = config(fake, 2, 8, 2);
	struct cache *c = cache_make(&cfg);
	struct stream_arg args[4];
	pthread_t threads[4];
	struct cache_stats st;
	int i;

	atomic_store(&fake->delay_us, 2000);
	for (i = 0; i < 4; i++) {
		char path[32];

		snprintf(path, sizeof(path), "file%d.bin", i);
		objects[i] = fake_put(fake, path, 6 * BS + (uint64_t)i * 1000, 30 + (uint64_t)i,
				      false);
	}
	for (i = 0; i < 4; i++) {
		args[i] = (struct stream_arg){ c, &objects[i], false };
		CHECK(pthread_create(&threads[i], NULL, stream_reader, &args[i]) == 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		CHECK(args[i].ok);
	}
	st = stats_of(c);
	CHECK(st.mem_peak <= cfg.mem_limit);
	cache_free(c);
	store_destroy(&fake->base);
}

/* Both slots held by loads in flight (a reader's block 0 and its read-ahead, block 1):
 * a read of another file goes straight to the store, exactly as asked. */
static void busy_slots_send_the_read_direct(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object one = fake_put(fake, "one.bin", 4 * BS, 23, false);
	struct fake_object two = fake_put(fake, "two.bin", 4 * BS, 24, false);
	struct cache_config cfg = config(fake, 2, 8, 1);
	struct cache *c = cache_make(&cfg);
	struct cache_file *f = open_object(c, &one), *g = open_object(c, &two);
	struct block_reader reader = { f, &one, 0, 1000, false };
	unsigned char buf[3000];
	pthread_t thread;

	gate_close(fake, "one.bin", 0, BS);
	CHECK(pthread_create(&thread, NULL, read_range, &reader) == 0);
	gate_wait_for(fake, 2);
	CHECK(stats_of(c).mem_used == 2 * BS);
	CHECK(cache_read(g, 0, sizeof(buf), buf) == (ssize_t)sizeof(buf));
	CHECK(bytes_ok(&two, 0, buf, sizeof(buf)));
	CHECK(stats_of(c).direct_reads == 1);
	CHECK(stats_of(c).block_fetches == 0);
	CHECK(last_read_len(fake) == sizeof(buf));
	gate_open(fake);
	pthread_join(thread, NULL);
	CHECK(reader.ok);
	cache_close(f);
	cache_close(g);
	CHECK(stats_of(c).mem_peak <= cfg.mem_limit);
	cache_free(c);
	store_destroy(&fake->base);
}

static void locked_dir_is_busy_and_private(void)
{
	struct fake_store *fake = fake_new();
	struct fake_object object = fake_put(fake, "private.bin", 3 * BS, 25, false);
	struct cache_config cfg = config(fake, 8, 2, 1);
	struct cache *c, *other = NULL;
	struct cache_file *f;
	char dir[64], sub[128], names[8][80], path[512], errbuf[256] = "";
	struct stat st;
	uint64_t total;
	size_t n, i;

	make_tmpdir(dir, sizeof(dir));
	CHECK(chmod(dir, 0755) == 0);
	cfg.disk_dir = dir;
	cfg.disk_limit = 64 * BS;
	c = cache_make(&cfg);
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	CHECK(cache_new(&cfg, &other, errbuf, sizeof(errbuf)) == -EBUSY);
	CHECK(other == NULL);
	CHECK(strstr(errbuf, "in use") != NULL);
	f = open_object(c, &object);
	CHECK(read_all(f, &object, 64 * KiB));
	cache_close(f);
	cache_free(c);
	n = cache_files(dir, names, 8, &total);
	CHECK(n == 3);
	for (i = 0; i < n && i < 8; i++) {
		snprintf(path, sizeof(path), "%s/%.79s", dir, names[i]);
		CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	}
	/* Freed, the directory can be used again. */
	c = cache_make(&cfg);
	cache_free(c);

	/* A missing directory is created 0700. */
	snprintf(sub, sizeof(sub), "%s/new", dir);
	cfg.disk_dir = sub;
	c = cache_make(&cfg);
	CHECK(stat(sub, &st) == 0 && (st.st_mode & 0777) == 0700);
	cache_free(c);
	remove_tree(sub);
	remove_tree(dir);
	store_destroy(&fake->base);
}

static void bad_config_is_refused(void)
{
	struct fake_store *fake = fake_new();
	struct cache_config cfg = config(fake, 8, 2, 1);
	struct cache *c = NULL;
	char errbuf[256];

	cfg.block_size = 100 * KiB;
	CHECK(cache_new(&cfg, &c, errbuf, sizeof(errbuf)) == -EINVAL);
	CHECK(strstr(errbuf, "block_size") != NULL);
	cfg = config(fake, 1, 1, 1);
	CHECK(cache_new(&cfg, &c, errbuf, sizeof(errbuf)) == -EINVAL);
	cfg = config(fake, 8, 2, 0);
	CHECK(cache_new(&cfg, &c, errbuf, sizeof(errbuf)) == -EINVAL);
	CHECK(c == NULL);
	store_destroy(&fake->base);
}

static long rss_kib(const char *field)
{
	FILE *fp = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (strncmp(line, field, strlen(field)) == 0)
			kib = strtol(line + strlen(field), NULL, 10);
	fclose(fp);
	return kib;
}

/* Whether a tool's own memory hides ours: valgrind, or ThreadSanitizer's shadow. */
static bool rss_is_not_ours(void)
{
	const char *preload = getenv("LD_PRELOAD");

#if defined(__SANITIZE_THREAD__)
	return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
	return true;
#endif
#endif
	return preload && strstr(preload, "vgpreload");
}

/* A 256 MiB sequential read through a 16 MiB cache: resident memory grows by at most
 * the cache plus a little (block buffers are mmap'd and reused, never piled up). */
static void long_sequential_read_keeps_rss_bounded(void)
{
	struct fake_store *fake;
	struct fake_object object;
	struct cache_config cfg;
	struct cache *c;
	struct cache_file *f;
	unsigned char *buf;
	uint64_t offset;
	long before, peak;
	int fd;
	bool ok = true;

	if (rss_is_not_ours())
		return;
	fake = fake_new();
	object = fake_put(fake, "stream/256M.bin", 256 * MiB, 26, false);
	cfg = config(fake, 16 * MiB / BS, 4 * MiB / BS, 4);
	cfg.block_size = MiB;
	cfg.max_window = 4 * MiB;
	cfg.mem_limit = 16 * MiB;
	buf = malloc(MiB);
	fd = open("/proc/self/clear_refs", O_WRONLY);
	if (fd >= 0) {
		CHECK(write(fd, "5", 1) == 1); /* resets the peak (VmHWM) */
		close(fd);
	}
	before = rss_kib("VmRSS:");
	c = cache_make(&cfg);
	f = open_object(c, &object);
	for (offset = 0; offset < object.size; offset += MiB) {
		if (cache_read(f, offset, MiB, buf) != (ssize_t)MiB)
			ok = false;
		if (offset % (32 * MiB) == 0 && !bytes_ok(&object, offset, buf, MiB))
			ok = false;
	}
	CHECK(ok);
	peak = rss_kib("VmHWM:");
	CHECK(stats_of(c).mem_peak <= cfg.mem_limit);
	CHECK(stats_of(c).direct_reads == 0);
	cache_close(f);
	cache_free(c);
	if (peak - before > (long)((cfg.mem_limit + 24 * MiB) / KiB))
		fprintf(stderr, "rss grew by %ld KiB\n", peak - before);
	CHECK(peak - before <= (long)((cfg.mem_limit + 24 * MiB) / KiB));
	free(buf);
	store_destroy(&fake->base);
}

int main(void)
{
	RUN(long_sequential_read_keeps_rss_bounded);
	RUN(sequential_read_is_exact_and_fetches_whole_blocks);
	RUN(readahead_window_doubles_up_to_max);
	RUN(random_small_reads_cost_one_small_store_read_each);
	RUN(reordered_stream_is_sequential_random_stream_is_not);
	RUN(second_pass_is_served_from_memory);
	RUN(eviction_keeps_memory_within_limit);
	RUN(disk_tier_serves_a_remount_and_refetches_a_new_etag);
	RUN(disk_tier_round_trips_large_blocks);
	RUN(slow_disk_writes_do_not_starve_readers);
	RUN(disk_tier_stays_within_its_limit);
	RUN(damaged_cache_files_are_refetched_never_served);
	RUN(damaged_file_is_counted);
	RUN(changed_object_fails_with_estale_never_mixes);
	RUN(failed_fetch_reaches_waiters_and_is_retried);
	RUN(eight_threads_read_one_file_correctly);
	RUN(one_download_serves_two_readers);
	RUN(multi_block_read_fetches_its_blocks_in_parallel);
	RUN(demand_overtakes_readahead_and_close_cancels_it);
	RUN(tiny_pool_with_many_files_stays_correct);
	RUN(busy_slots_send_the_read_direct);
	RUN(locked_dir_is_busy_and_private);
	RUN(bad_config_is_refused);
	return unit_done();
}
