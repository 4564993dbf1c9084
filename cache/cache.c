/* cache: block cache and prefetcher; see cache.h for what it promises.
 *
 * Memory: mem_limit / block_size slots, each a block descriptor with a buffer that is
 * mmap'd (huge pages asked for) the first time the slot is used and kept until
 * cache_free (unused slots wait on free_slots). Nothing else holds block bytes, so
 * block memory never passes mem_limit; when no slot can be had the read goes straight
 * to the caller's buffer.
 *
 * A block's life: QUEUED (waiting for a worker: read-ahead, or the later blocks of a
 * read, which go first) -> LOADING (one thread fills its buffer: disk tier first, then
 * the store) -> READY, or FAILED (out of the hash at once, so a later read retries;
 * freed when its last waiter lets go). A reader loads the block it needs itself (a
 * QUEUED one it takes over), so a demand never waits behind read-ahead; the workers
 * load queued blocks and write downloaded ones to the disk tier.
 *
 * Eviction: READY blocks nobody holds are evicted least recently used first, those
 * already read (lru) before read-ahead nobody has read yet (lru_unread), so a stream's
 * next blocks outlive the ones it has passed, whatever order they were released in.
 * A read-ahead block stays its file's until first read or until the file closes. In
 * between, a block that only waits for its disk write is taken and the write skipped:
 * the disk tier is the one to do without when memory is short.
 *
 * Locking: cache.lock guards the fields marked below, every cache_file's prefetcher
 * and every field of every block but its bytes. A block's bytes are written only by its
 * loader while LOADING and only read once READY; a reference (refs) keeps a block from
 * being evicted while its bytes are copied outside the lock. Lock order: cache.lock,
 * then cache_disk.lock. No lock is held across a store or disk call.
 */
#include "cache/cache.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "auth/base/log.h"
#include "cache/disk.h"

#define CACHE_BLOCK_MIN ((size_t)64 << 10)
#define CACHE_BLOCK_MAX ((size_t)64 << 20)
#define CACHE_OBJECT_BUCKETS_MIN 64
/* Kernel reads of one stream that may be in flight at once, and so arrive reordered. */
#define CACHE_REORDER_READS 16

struct list_node {
	struct list_node *prev, *next;
};

#define list_entry(node, type, member) \
	((type *)(void *)((char *)(node) - offsetof(type, member)))

static void list_init(struct list_node *head)
{
	head->prev = head->next = head;
}

static bool list_empty(const struct list_node *head)
{
	return head->next == head;
}

static void list_add_tail(struct list_node *head, struct list_node *node)
{
	node->prev = head->prev;
	node->next = head;
	head->prev->next = node;
	head->prev = node;
}

static void list_add_head(struct list_node *head, struct list_node *node)
{
	list_add_tail(head->next, node);
}

static void list_del(struct list_node *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = node->next = node;
}

/* One version of one object: what blocks and open files share. refs and hash_next are
 * guarded by cache.lock; the rest is fixed. */
struct cache_object {
	struct cache_object *hash_next;
	uint64_t hash;
	size_t refs; /* open files + blocks */
	uint64_t size;
	char *path;
	char *etag; /* "" when the store gave none: then no disk tier */
};

enum block_state {
	BLOCK_FREE,
	BLOCK_QUEUED,
	BLOCK_LOADING,
	BLOCK_READY,
	BLOCK_FAILED,
};

/* A slot. All fields but the bytes at data are guarded by cache.lock. */
struct cache_block {
	unsigned char *data; /* block_size bytes, mmap'd on first use */
	struct cache_object *object; /* NULL while FREE */
	uint64_t index;
	size_t len; /* block_size, or less for the last block */
	enum block_state state;
	int error;   /* FAILED: what waiters get */
	size_t refs; /* readers, the loader, a pending disk write */
	bool from_disk; /* loaded from the disk tier: no need to write it */
	/* Read-ahead not read yet: the file that asked for it (its budget while QUEUED or
	 * LOADING). NULL once read, or once the file closed. */
	struct cache_file *owner;
	/* On one of: free_slots (FREE), ahead_queue (QUEUED), write_queue (READY, waiting
	 * to be written), lru_unread (READY, refs == 0, owner set), lru (READY, refs == 0,
	 * no owner); on none otherwise. */
	struct list_node list;
	struct list_node owner_node; /* in owner->ahead_blocks */
	struct cache_block *hash_next;
	pthread_cond_t done; /* LOADING ended */
};

struct cache_file {
	struct cache *cache;         /* fixed */
	struct cache_object *object; /* fixed */
	/* The prefetcher, guarded by cache.lock. */
	bool has_read;
	bool sequential;     /* the last read was */
	uint64_t last_end;   /* where the last read ended */
	size_t run_len;      /* longest read of the current sequential run */
	size_t window;       /* read-ahead the next sequential read asks for, bytes */
	uint64_t ahead_next; /* first block not yet looked at for read-ahead */
	size_t ahead_bytes;  /* of its read-ahead blocks QUEUED or LOADING */
	struct list_node ahead_blocks; /* its read-ahead blocks not read yet (owner_node) */
};

struct cache {
	/* Fixed by cache_new. */
	struct store *store;
	char *namespace;
	size_t block_size;
	unsigned block_shift;
	size_t max_window; /* at most half the slots, so read-ahead never takes them all */
	struct cache_disk *disk; /* NULL without a disk tier; has its own lock */
	uint64_t disk_limit;
	struct cache_block *slots; /* each slot is guarded by lock */
	size_t nslots;
	struct cache_block **buckets; /* blocks by (object, index); chains guarded by lock */
	size_t bucket_mask;
	pthread_t *threads;
	int nthreads;

	pthread_mutex_t lock;
	pthread_cond_t work; /* a job was queued, or stopping was set */
	/* Guarded by lock. */
	size_t mapped; /* slots[0, mapped) have a buffer */
	struct list_node free_slots;
	struct list_node lru;
	struct list_node lru_unread;
	struct list_node ahead_queue; /* oldest first */
	struct list_node write_queue; /* oldest first */
	struct cache_object **objects;
	size_t object_mask;
	size_t object_count;
	bool stopping;
	uint64_t mem_hits;
	uint64_t prefetched, prefetch_unread; /* read-ahead blocks queued / never read */
	size_t worker_jobs; /* blocks a worker took and has not finished */

	/* Updated outside the lock. */
	atomic_uint_least64_t disk_hits;
	atomic_uint_least64_t block_fetches;
	atomic_uint_least64_t direct_reads;
	atomic_uint_least64_t fetched_bytes;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t object_hash(const char *path, const char *etag, uint64_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	const char *p;

	for (p = path; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	h = (h ^ 0xff) * 0x100000001b3ULL; /* separates path from etag */
	for (p = etag; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	return mix64(h ^ size);
}

static const char *etag_arg(const struct cache_object *object)
{
	return object->etag[0] ? object->etag : NULL;
}

static size_t block_len(const struct cache *c, const struct cache_object *object,
			uint64_t index)
{
	uint64_t start = index << c->block_shift;
	uint64_t rest = object->size - start;

	return rest < c->block_size ? (size_t)rest : c->block_size;
}

/* Objects ------------------------------------------------------------------------ */

static int objects_grow(struct cache *c)
{
	size_t count = (c->object_mask + 1) * 2, i;
	struct cache_object **objects = calloc(count, sizeof(*objects));

	if (!objects)
		return -ENOMEM;
	for (i = 0; i <= c->object_mask; i++) {
		struct cache_object *object = c->objects[i], *next;

		for (; object; object = next) {
			next = object->hash_next;
			object->hash_next = objects[object->hash & (count - 1)];
			objects[object->hash & (count - 1)] = object;
		}
	}
	free(c->objects);
	c->objects = objects;
	c->object_mask = count - 1;
	return 0;
}

/* The object for (path, etag, size) with a new reference, or NULL (no memory). */
static struct cache_object *object_get(struct cache *c, const char *path, const char *etag,
				       uint64_t size)
{
	uint64_t hash = object_hash(path, etag, size);
	struct cache_object *object;

	for (object = c->objects[hash & c->object_mask]; object; object = object->hash_next)
		if (object->hash == hash && object->size == size &&
		    strcmp(object->path, path) == 0 && strcmp(object->etag, etag) == 0) {
			object->refs++;
			return object;
		}
	if (c->object_count >= c->object_mask + 1 && objects_grow(c))
		return NULL;
	object = calloc(1, sizeof(*object));
	if (!object)
		return NULL;
	object->path = strdup(path);
	object->etag = strdup(etag);
	if (!object->path || !object->etag) {
		free(object->path);
		free(object->etag);
		free(object);
		return NULL;
	}
	object->hash = hash;
	object->size = size;
	object->refs = 1;
	object->hash_next = c->objects[hash & c->object_mask];
	c->objects[hash & c->object_mask] = object;
	c->object_count++;
	return object;
}

static void object_free(struct cache_object *object)
{
	free(object->path);
	free(object->etag);
	free(object);
}

static void object_put(struct cache *c, struct cache_object *object)
{
	struct cache_object **link;

	if (--object->refs)
		return;
	for (link = &c->objects[object->hash & c->object_mask]; *link != object;
	     link = &(*link)->hash_next)
		;
	*link = object->hash_next;
	c->object_count--;
	object_free(object);
}

/* Blocks ------------------------------------------------------------------------- */

static size_t block_bucket(const struct cache *c, const struct cache_object *object,
			   uint64_t index)
{
	return (size_t)(mix64(object->hash + index * 0x9e3779b97f4a7c15ULL) & c->bucket_mask);
}

static struct cache_block *hash_find(struct cache *c, const struct cache_object *object,
				     uint64_t index)
{
	struct cache_block *b = c->buckets[block_bucket(c, object, index)];

	while (b && (b->object != object || b->index != index))
		b = b->hash_next;
	return b;
}

static void hash_remove(struct cache *c, struct cache_block *b)
{
	struct cache_block **link = &c->buckets[block_bucket(c, b->object, b->index)];

	while (*link != b)
		link = &(*link)->hash_next;
	*link = b->hash_next;
	b->hash_next = NULL;
}

/* Ends b's read-ahead ownership (and its share of the owner's budget). */
static void ahead_detach(struct cache_block *b)
{
	if (!b->owner)
		return;
	if (b->state == BLOCK_QUEUED || b->state == BLOCK_LOADING)
		b->owner->ahead_bytes -= b->len;
	list_del(&b->owner_node);
	b->owner = NULL;
}

/* Empties a block that is out of the hash and off every list; it keeps its buffer. */
static void slot_clear(struct cache *c, struct cache_block *b)
{
	object_put(c, b->object);
	b->object = NULL;
	b->state = BLOCK_FREE;
}

/* Empties a hashed block that nobody holds (off every list) for reuse. */
static void block_drop(struct cache *c, struct cache_block *b)
{
	ahead_detach(b);
	hash_remove(c, b);
	slot_clear(c, b);
}

/* A block that only waits to be written to disk (nobody else holds it), its write
 * skipped: when the disk falls behind, waiting writes must not take the slots readers
 * need. NULL if there is none. */
static struct cache_block *write_skip(struct cache *c)
{
	struct list_node *node;

	for (node = c->write_queue.next; node != &c->write_queue; node = node->next) {
		struct cache_block *b = list_entry(node, struct cache_block, list);

		if (b->refs == 1) {
			b->refs = 0;
			return b;
		}
	}
	return NULL;
}

/* A slot with a buffer, off every list. In order: a free one, a new mapping, the
 * least recently used block that was read, one waiting for the disk, read-ahead not
 * read yet, and (for a demand) the block queued last. NULL when all are busy. */
static struct cache_block *slot_take(struct cache *c, bool demand)
{
	struct cache_block *b;

	if (!list_empty(&c->free_slots)) {
		b = list_entry(c->free_slots.next, struct cache_block, list);
		list_del(&b->list);
		return b;
	}
	if (c->mapped < c->nslots) {
		void *data = mmap(NULL, c->block_size, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (data != MAP_FAILED) {
			/* Huge pages where the system gives them on request: a block's
			 * first fill then takes 8 page faults per 16 MiB, not 4,096. */
			(void)madvise(data, c->block_size, MADV_HUGEPAGE);
			b = &c->slots[c->mapped++];
			b->data = data;
			return b;
		}
	}
	if (!list_empty(&c->lru))
		b = list_entry(c->lru.next, struct cache_block, list);
	else if ((b = write_skip(c)))
		;
	else if (!list_empty(&c->lru_unread))
		b = list_entry(c->lru_unread.next, struct cache_block, list);
	else if (demand && !list_empty(&c->ahead_queue))
		b = list_entry(c->ahead_queue.prev, struct cache_block, list);
	else
		return NULL;
	if (b->owner)
		c->prefetch_unread++; /* read-ahead that nobody read */
	list_del(&b->list);
	block_drop(c, b);
	return b;
}

/* A new block of object in the hash, not yet on any list, or NULL. */
static struct cache_block *block_new(struct cache *c, struct cache_object *object,
				     uint64_t index, enum block_state state, bool demand)
{
	struct cache_block *b = slot_take(c, demand);
	size_t bucket;

	if (!b)
		return NULL;
	object->refs++;
	b->object = object;
	b->index = index;
	b->len = block_len(c, object, index);
	b->state = state;
	b->error = 0;
	b->refs = 0;
	b->from_disk = false;
	b->owner = NULL;
	bucket = block_bucket(c, object, index);
	b->hash_next = c->buckets[bucket];
	c->buckets[bucket] = b;
	return b;
}

static void block_hold(struct cache_block *b)
{
	if (b->refs++ == 0 && b->state == BLOCK_READY)
		list_del(&b->list); /* off its LRU list */
}

static void block_put(struct cache *c, struct cache_block *b)
{
	if (--b->refs)
		return;
	if (b->state == BLOCK_READY)
		list_add_tail(b->owner ? &c->lru_unread : &c->lru, &b->list);
	else if (b->state == BLOCK_FAILED) {
		slot_clear(c, b);
		list_add_tail(&c->free_slots, &b->list);
	}
}

static struct cache_disk_key disk_key(const struct cache *c, const struct cache_object *object,
				      uint64_t index)
{
	struct cache_disk_key key = {
		.namespace = c->namespace,
		.path = object->path,
		.etag = object->etag,
		.block_index = index,
	};

	return key;
}

/* Fills a LOADING block that the caller holds; no lock held. */
static int block_load(struct cache *c, struct cache_block *b)
{
	const struct cache_object *object = b->object;
	ssize_t n;

	if (c->disk && object->etag[0]) {
		struct cache_disk_key key = disk_key(c, object, b->index);

		if (cache_disk_load(c->disk, &key, b->data, b->len) == 0) {
			b->from_disk = true;
			atomic_fetch_add_explicit(&c->disk_hits, 1, memory_order_relaxed);
			return 0;
		}
	}
	b->from_disk = false;
	n = store_read(c->store, object->path, etag_arg(object), b->index << c->block_shift,
		       b->len, b->data);
	if (n < 0)
		return (int)n;
	atomic_fetch_add_explicit(&c->fetched_bytes, (uint64_t)n, memory_order_relaxed);
	if ((size_t)n != b->len)
		return -EIO; /* shorter than its ETag's size: never cache part of a block */
	atomic_fetch_add_explicit(&c->block_fetches, 1, memory_order_relaxed);
	return 0;
}

/* Ends LOADING: READY, or FAILED and out of the hash; wakes the waiters. */
static void block_loaded(struct cache_block *b, struct cache *c, int err)
{
	if (err) {
		ahead_detach(b);
		hash_remove(c, b);
		b->state = BLOCK_FAILED;
		b->error = err;
	} else {
		if (b->owner)
			b->owner->ahead_bytes -= b->len; /* loaded: off the budget */
		b->state = BLOCK_READY;
	}
	pthread_cond_broadcast(&b->done);
}

static bool block_needs_write(const struct cache *c, const struct cache_block *b)
{
	return c->disk && b->state == BLOCK_READY && !b->from_disk && b->object->etag[0];
}

/* Writes a READY block the caller holds to the disk tier; no lock held. */
static void block_write(struct cache *c, struct cache_block *b)
{
	struct cache_disk_key key = disk_key(c, b->object, b->index);
	int err = cache_disk_store(c->disk, &key, b->data, b->len);

	if (err)
		log_debug("cache: block not kept on disk: %s", strerror(-err));
}

/* Workers -------------------------------------------------------------------------- */

/* Writes queued blocks to disk first (they pin memory), then loads read-ahead. */
static void *cache_worker(void *arg)
{
	struct cache *c = arg;
	struct cache_block *b;
	int err;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (!list_empty(&c->write_queue)) {
			b = list_entry(c->write_queue.next, struct cache_block, list);
			list_del(&b->list); /* its reference is now ours */
			c->worker_jobs++;
		} else if (!list_empty(&c->ahead_queue)) {
			b = list_entry(c->ahead_queue.next, struct cache_block, list);
			list_del(&b->list);
			b->state = BLOCK_LOADING;
			block_hold(b);
			c->worker_jobs++;
			pthread_mutex_unlock(&c->lock);
			err = block_load(c, b);
			pthread_mutex_lock(&c->lock);
			block_loaded(b, c, err);
			if (!block_needs_write(c, b)) {
				block_put(c, b);
				c->worker_jobs--;
				continue;
			}
		} else if (c->stopping) {
			break;
		} else {
			pthread_cond_wait(&c->work, &c->lock);
			continue;
		}
		pthread_mutex_unlock(&c->lock);
		block_write(c, b);
		pthread_mutex_lock(&c->lock);
		block_put(c, b);
		c->worker_jobs--;
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* The prefetcher --------------------------------------------------------------------- */

/* Whether a read continues the file's sequential stream; updates the stream.
 *
 * The kernel sends a sequential stream as several reads in flight (readahead,
 * max_background) that the FUSE threads deliver slightly out of order: a `dd bs=1M`
 * stream arrives with jumps of a few reads both ways, and even its first read may not
 * be the one at offset 0. So, with slack = CACHE_REORDER_READS times the longest read
 * of the run (or this read):
 * - the first read is sequential if it starts within slack of offset 0;
 * - a read starting exactly where the last one ended is sequential;
 * - while the stream is sequential, so is a read starting within slack of where the
 *   last one ended, before or after.
 * A random stream (fio randread) gets no slack: it turns sequential only by starting
 * exactly where its last read ended, so each random read costs one small store read,
 * not a block. */
static bool prefetch_classify(struct cache_file *f, uint64_t offset, size_t len)
{
	struct cache *c = f->cache;
	uint64_t slack = (uint64_t)(len > f->run_len ? len : f->run_len) * CACHE_REORDER_READS;
	bool sequential;

	if (!f->has_read)
		sequential = offset <= slack;
	else if (offset == f->last_end)
		sequential = true;
	else if (f->sequential)
		sequential = offset + slack >= f->last_end && offset <= f->last_end + slack;
	else
		sequential = false;
	f->has_read = true;
	f->last_end = offset + len;
	f->sequential = sequential;
	if (sequential) {
		if (len > f->run_len)
			f->run_len = len;
	} else {
		f->run_len = 0;
		f->window = c->block_size;
		f->ahead_next = 0;
	}
	return sequential;
}

/* Queues the blocks from the one after read_end's up to window bytes past it (within
 * the file's budget and the pool), then doubles the window. */
static void prefetch_issue(struct cache_file *f, uint64_t read_end)
{
	struct cache *c = f->cache;
	struct cache_object *object = f->object;
	uint64_t last = (object->size - 1) >> c->block_shift;
	uint64_t next = ((read_end - 1) >> c->block_shift) + 1;
	uint64_t until = (read_end - 1 + f->window) >> c->block_shift;

	if (until > last)
		until = last;
	if (next < f->ahead_next)
		next = f->ahead_next;
	for (; next <= until; next++) {
		size_t len = block_len(c, object, next);
		struct cache_block *b;

		if (hash_find(c, object, next))
			continue;
		if (f->ahead_bytes + len > c->max_window)
			break;
		b = block_new(c, object, next, BLOCK_QUEUED, false);
		if (!b)
			break;
		b->owner = f;
		c->prefetched++;
		f->ahead_bytes += len;
		list_add_tail(&f->ahead_blocks, &b->owner_node);
		list_add_tail(&c->ahead_queue, &b->list);
		pthread_cond_signal(&c->work);
	}
	f->ahead_next = next;
	f->window = f->window < c->max_window / 2 ? f->window * 2 : c->max_window;
}

/* Reads ------------------------------------------------------------------------------ */

/* Queues blocks first .. last of a read that are not cached, ahead of all read-ahead,
 * so the workers fetch them while the reader loads the block before them. */
static void demand_queue(struct cache_file *f, uint64_t first, uint64_t last)
{
	struct cache *c = f->cache;
	uint64_t index;

	for (index = last + 1; index-- > first;) { /* each to the front: in order */
		struct cache_block *b;

		if (hash_find(c, f->object, index))
			continue;
		b = block_new(c, f->object, index, BLOCK_QUEUED, true);
		if (!b)
			break;
		list_add_head(&c->ahead_queue, &b->list);
		pthread_cond_signal(&c->work);
	}
}

static ssize_t read_direct(struct cache *c, const struct cache_object *object,
			   uint64_t offset, size_t len, void *buf)
{
	ssize_t n = store_read(c->store, object->path, etag_arg(object), offset, len, buf);

	atomic_fetch_add_explicit(&c->direct_reads, 1, memory_order_relaxed);
	if (n > 0)
		atomic_fetch_add_explicit(&c->fetched_bytes, (uint64_t)n, memory_order_relaxed);
	return n;
}

/* Whether every block under [offset, offset + len) is in memory or on disk. */
static bool range_cached(struct cache *c, const struct cache_object *object, uint64_t offset,
			 size_t len)
{
	uint64_t index = offset >> c->block_shift;
	uint64_t last = (offset + len - 1) >> c->block_shift;

	for (; index <= last; index++) {
		struct cache_disk_key key = disk_key(c, object, index);
		bool in_memory;

		pthread_mutex_lock(&c->lock);
		in_memory = hash_find(c, object, index) != NULL;
		pthread_mutex_unlock(&c->lock);
		if (!in_memory &&
		    !(c->disk && object->etag[0] && cache_disk_has(c->disk, &key)))
			return false;
	}
	return true;
}

/* Copies chunk bytes at in_block of block index into dst: from memory, waiting for a
 * load in flight, or loading it here. With ahead_from (the end of a sequential read,
 * never 0) it also queues read-ahead once this block has its slot. */
static int read_block(struct cache_file *f, uint64_t index, size_t in_block, size_t chunk,
		      unsigned char *dst, uint64_t ahead_from)
{
	struct cache *c = f->cache;
	struct cache_block *b;
	bool load = false;
	int err;

	pthread_mutex_lock(&c->lock);
	b = hash_find(c, f->object, index);
	if (!b) {
		b = block_new(c, f->object, index, BLOCK_LOADING, true);
		if (!b) {
			ssize_t n;

			pthread_mutex_unlock(&c->lock); /* every slot busy: no block */
			n = read_direct(c, f->object, (index << c->block_shift) + in_block, chunk,
					dst);
			if (n < 0)
				return (int)n;
			return (size_t)n == chunk ? 0 : -EIO;
		}
		load = true;
	} else if (b->state == BLOCK_QUEUED) {
		list_del(&b->list); /* off the queue: ours now */
		ahead_detach(b);
		b->state = BLOCK_LOADING;
		load = true;
	} else if (b->state == BLOCK_READY) {
		c->mem_hits++;
	}
	block_hold(b);
	if (ahead_from)
		prefetch_issue(f, ahead_from);
	if (load) {
		pthread_mutex_unlock(&c->lock);
		err = block_load(c, b);
		pthread_mutex_lock(&c->lock);
		block_loaded(b, c, err);
		if (block_needs_write(c, b)) {
			b->refs++; /* the write's reference */
			list_add_tail(&c->write_queue, &b->list);
			pthread_cond_signal(&c->work);
		}
	}
	while (b->state == BLOCK_LOADING)
		pthread_cond_wait(&b->done, &c->lock);
	err = b->state == BLOCK_READY ? 0 : b->error;
	if (!err)
		ahead_detach(b); /* read now */
	pthread_mutex_unlock(&c->lock);
	if (!err)
		memcpy(dst, b->data + in_block, chunk);
	pthread_mutex_lock(&c->lock);
	block_put(c, b);
	pthread_mutex_unlock(&c->lock);
	return err;
}

ssize_t cache_read(struct cache_file *f, uint64_t offset, size_t len, void *buf)
{
	struct cache *c = f->cache;
	uint64_t size = f->object->size;
	unsigned char *dst = buf;
	uint64_t first, last;
	bool sequential;
	size_t done;

	if (offset >= size || len == 0)
		return 0;
	if (len > size - offset)
		len = (size_t)(size - offset);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	pthread_mutex_lock(&c->lock);
	sequential = prefetch_classify(f, offset, len);
	pthread_mutex_unlock(&c->lock);
	if (!sequential && !range_cached(c, f->object, offset, len))
		return read_direct(c, f->object, offset, len, buf);
	first = offset >> c->block_shift;
	last = (offset + len - 1) >> c->block_shift;
	if (last > first) {
		pthread_mutex_lock(&c->lock);
		demand_queue(f, first + 1, last);
		pthread_mutex_unlock(&c->lock);
	}
	for (done = 0; done < len;) {
		uint64_t pos = offset + done;
		size_t in_block = (size_t)(pos & (c->block_size - 1));
		size_t chunk = c->block_size - in_block;
		int err;

		if (chunk > len - done)
			chunk = len - done;
		err = read_block(f, pos >> c->block_shift, in_block, chunk, dst + done,
				 sequential && done == 0 ? offset + len : 0);
		if (err)
			return err;
		done += chunk;
	}
	return (ssize_t)len;
}

/* Files ------------------------------------------------------------------------------ */

int cache_open(struct cache *c, const char *path, const char *etag, uint64_t size,
	       struct cache_file **out)
{
	struct cache_file *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	f->object = object_get(c, path, etag ? etag : "", size);
	pthread_mutex_unlock(&c->lock);
	if (!f->object) {
		free(f);
		return -ENOMEM;
	}
	f->cache = c;
	f->window = c->block_size;
	list_init(&f->ahead_blocks);
	*out = f;
	return 0;
}

void cache_close(struct cache_file *f)
{
	struct cache *c;

	if (!f)
		return;
	c = f->cache;
	pthread_mutex_lock(&c->lock);
	while (!list_empty(&f->ahead_blocks)) {
		struct cache_block *b =
			list_entry(f->ahead_blocks.next, struct cache_block, owner_node);

		c->prefetch_unread++; /* the file closed before it read this read-ahead */
		if (b->state == BLOCK_QUEUED) {
			list_del(&b->list); /* off the queue */
			block_drop(c, b);
			list_add_tail(&c->free_slots, &b->list);
			continue;
		}
		ahead_detach(b); /* a load in flight finishes for the cache */
		if (b->state == BLOCK_READY && b->refs == 0) {
			list_del(&b->list); /* from lru_unread to lru */
			list_add_tail(&c->lru, &b->list);
		}
	}
	object_put(c, f->object);
	pthread_mutex_unlock(&c->lock);
	free(f);
}

/* The cache -------------------------------------------------------------------------- */

static int config_check(const struct cache_config *cfg, char *errbuf, size_t errlen)
{
	const char *why = NULL;

	if (!cfg->store)
		why = "no store";
	else if (cfg->block_size < CACHE_BLOCK_MIN || cfg->block_size > CACHE_BLOCK_MAX ||
		 (cfg->block_size & (cfg->block_size - 1)))
		why = "block_size must be a power of two from 64K to 64M";
	else if (cfg->mem_limit / cfg->block_size < 2)
		why = "cache_mem must hold at least two blocks (2 x block_size)";
	else if (cfg->workers < 1)
		why = "workers must be at least 1";
	else if (cfg->max_window < cfg->block_size)
		why = "prefetch_window must be at least one block (block_size)";
	if (!why)
		return 0;
	snprintf(errbuf, errlen, "cache: %s", why);
	return -EINVAL;
}

static void cache_stop_workers(struct cache *c)
{
	int i;

	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (i = 0; i < c->nthreads; i++)
		pthread_join(c->threads[i], NULL);
	c->nthreads = 0;
}

/* Frees what cache_new built; workers are stopped. */
static void cache_destroy(struct cache *c)
{
	size_t i;

	for (i = 0; i < c->nslots; i++) {
		if (c->slots[i].data)
			munmap(c->slots[i].data, c->block_size);
		pthread_cond_destroy(&c->slots[i].done);
	}
	for (i = 0; c->objects && i <= c->object_mask; i++) {
		struct cache_object *object = c->objects[i], *next;

		for (; object; object = next) {
			next = object->hash_next;
			object_free(object);
		}
	}
	cache_disk_close(c->disk);
	pthread_cond_destroy(&c->work);
	pthread_mutex_destroy(&c->lock);
	free(c->objects);
	free(c->buckets);
	free(c->slots);
	free(c->threads);
	free(c->namespace);
	free(c);
}

int cache_new(const struct cache_config *cfg, struct cache **out, char *errbuf, size_t errlen)
{
	struct cache *c;
	size_t buckets = 1, i;
	int err;

	err = config_check(cfg, errbuf, errlen);
	if (err)
		return err;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto out_nomem;
	c->store = cfg->store;
	c->block_size = cfg->block_size;
	while (((size_t)1 << c->block_shift) < c->block_size)
		c->block_shift++;
	c->nslots = cfg->mem_limit / cfg->block_size;
	c->max_window = cfg->max_window;
	if (c->max_window > c->nslots / 2 * c->block_size)
		c->max_window = c->nslots / 2 * c->block_size;
	while (buckets < c->nslots)
		buckets <<= 1;
	c->bucket_mask = buckets - 1;
	c->object_mask = CACHE_OBJECT_BUCKETS_MIN - 1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	list_init(&c->free_slots);
	list_init(&c->lru);
	list_init(&c->lru_unread);
	list_init(&c->ahead_queue);
	list_init(&c->write_queue);
	c->namespace = strdup(cfg->namespace ? cfg->namespace : "");
	c->slots = calloc(c->nslots, sizeof(*c->slots));
	c->buckets = calloc(buckets, sizeof(*c->buckets));
	c->objects = calloc(CACHE_OBJECT_BUCKETS_MIN, sizeof(*c->objects));
	c->threads = calloc((size_t)cfg->workers, sizeof(*c->threads));
	if (!c->namespace || !c->slots || !c->buckets || !c->objects || !c->threads) {
		c->nslots = 0; /* no slot was set up */
		goto out_destroy_nomem;
	}
	for (i = 0; i < c->nslots; i++) {
		pthread_cond_init(&c->slots[i].done, NULL);
		list_init(&c->slots[i].list);
		list_init(&c->slots[i].owner_node);
	}
	if (cfg->disk_dir && cfg->disk_dir[0]) {
		err = cache_disk_open(cfg->disk_dir, cfg->disk_limit, &c->disk, errbuf, errlen);
		c->disk_limit = cfg->disk_limit;
		if (err)
			goto out_destroy;
	}
	for (; c->nthreads < cfg->workers; c->nthreads++) {
		err = -pthread_create(&c->threads[c->nthreads], NULL, cache_worker, c);
		if (err) {
			snprintf(errbuf, errlen, "cache: cannot start worker threads: %s",
				 strerror(-err));
			goto out_stop_workers;
		}
	}
	*out = c;
	return 0;

out_stop_workers:
	cache_stop_workers(c);
out_destroy:
	cache_destroy(c);
	return err;
out_destroy_nomem:
	cache_destroy(c);
out_nomem:
	snprintf(errbuf, errlen, "cache: out of memory");
	return -ENOMEM;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	cache_stop_workers(c);
	cache_destroy(c);
}

void cache_get_stats(struct cache *c, struct cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	out->mem_hits = c->mem_hits;
	out->mem_limit = c->nslots * c->block_size;
	out->prefetched = c->prefetched;
	out->prefetch_unread = c->prefetch_unread;
	out->mem_used = c->mapped * c->block_size;
	out->worker_jobs = c->worker_jobs;
	for (struct list_node *n = c->ahead_queue.next; n != &c->ahead_queue; n = n->next)
		out->worker_jobs++;
	for (struct list_node *n = c->write_queue.next; n != &c->write_queue; n = n->next)
		out->worker_jobs++;
	pthread_mutex_unlock(&c->lock);
	/* Buffers stay mapped until cache_free, so what is held now is the most ever held. */
	out->mem_peak = out->mem_used;
	out->disk_hits = atomic_load_explicit(&c->disk_hits, memory_order_relaxed);
	out->block_fetches = atomic_load_explicit(&c->block_fetches, memory_order_relaxed);
	out->direct_reads = atomic_load_explicit(&c->direct_reads, memory_order_relaxed);
	out->fetched_bytes = atomic_load_explicit(&c->fetched_bytes, memory_order_relaxed);
	if (c->disk) {
		out->disk_limit = c->disk_limit;
		out->disk_used = cache_disk_used(c->disk);
		out->disk_corrupt = cache_disk_corrupt(c->disk);
	}
}
