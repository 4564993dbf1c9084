/* cache: the block cache and prefetcher between the FUSE layer and the store.
 *
 * Objects are read in blocks of block_size bytes, keyed by (path, ETag, block index).
 * Blocks live in a bounded memory pool (cache_mem) and, when a cache directory is
 * given, in a bounded disk tier (cache_size) of lz4 frames with checksums: a damaged
 * file is detected, deleted and refetched, never served. A remount with the same
 * directory reuses the blocks whose ETag still matches.
 *
 * Each open file has a prefetcher: sequential reads grow a read-ahead window (one block,
 * doubling up to max_window); a read that is not sequential resets it and, when its
 * blocks are not cached, fetches only the bytes asked for (one round trip). Blocks
 * download on the cache's worker threads; each file may have at most max_window bytes
 * queued, so many files share the workers fairly.
 *
 * Knows nothing of HTTP: it calls store_read() with the file's ETag, so an object that
 * changed fails with -ESTALE instead of mixing versions. Thread-safe: any number of
 * threads may read one cache_file at once.
 */
#ifndef FERRY_CACHE_H
#define FERRY_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/store/store.h"

struct cache_config {
	struct store *store;   /* borrowed: must outlive the cache */
	const char *namespace; /* names the datastore in disk keys (e.g. its URL) */
	size_t block_size;     /* power of two, 64 KiB .. 64 MiB */
	size_t mem_limit;      /* bytes of block memory, >= 2 blocks */
	const char *disk_dir;  /* NULL or "": no disk tier */
	uint64_t disk_limit;   /* bytes of cache files (after compression) */
	int workers;           /* download threads, >= 1 */
	size_t max_window;     /* read-ahead cap in bytes, >= block_size */
};

struct cache;
struct cache_file;

/* Creates the cache; with a disk tier, creates disk_dir (0700), takes a lock on it
 * (-EBUSY when another mount uses it), and indexes the files already there, removing
 * what is over disk_limit. Errors come with a line for a person in errbuf. */
int cache_new(const struct cache_config *cfg, struct cache **out, char *errbuf,
	      size_t errlen);
/* Waits for downloads in flight, then frees everything. No cache_file may be open. */
void cache_free(struct cache *c);

/* A read stream over one version (etag) of the object at path, size bytes long. */
int cache_open(struct cache *c, const char *path, const char *etag, uint64_t size,
	       struct cache_file **out);
/* Reads up to len bytes at offset; short only at the end of the object. -ESTALE when
 * the object changed since its ETag was taken, -EIO/-ETIMEDOUT from the store. */
ssize_t cache_read(struct cache_file *f, uint64_t offset, size_t len, void *buf);
/* Cancels this file's queued read-ahead and frees it. */
void cache_close(struct cache_file *f);

struct cache_stats {
	uint64_t mem_hits;      /* blocks served from memory */
	uint64_t disk_hits;     /* blocks loaded from the disk tier */
	uint64_t disk_corrupt;  /* cache files found damaged (and refetched) */
	uint64_t block_fetches; /* whole blocks downloaded */
	uint64_t direct_reads;  /* reads sent to the store as they came (random access) */
	uint64_t fetched_bytes; /* bytes downloaded, both kinds */
	uint64_t prefetched;    /* read-ahead blocks queued */
	uint64_t prefetch_unread; /* of those, dropped or evicted before anyone read them */
	size_t mem_limit;       /* cache_mem */
	uint64_t disk_limit;    /* cache_size; 0 without a disk tier */
	size_t mem_used;        /* bytes of block memory held now */
	size_t mem_peak;        /* the most ever held */
	uint64_t disk_used;     /* bytes of cache files now */
	size_t worker_jobs;     /* blocks queued for the workers or in their hands now:
				   0 once read-ahead and disk writes have settled */
};

void cache_get_stats(struct cache *c, struct cache_stats *out);

#endif
