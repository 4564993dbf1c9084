/* stage: open files and their staged writes; see stage.h for what it promises.
 *
 * Invariants of a node (under node.lock), with B the block size:
 * - blocks[0..nblocks) cover [0, size); block i holds [i*B, min((i+1)*B, size)).
 * - A BASE block lies wholly within the base and has the base's bytes there.
 * - Staging bytes of a block that is not resident, and staging bytes at or past size,
 *   are zeros (punched), so a hole reads as zeros and a grow needs no clearing.
 * - A DIRTY block holds its whole content (resident, or a hole of zeros): it can be
 *   uploaded at any time. A resident STAGED block holds its whole content too (the
 *   kept copy), so it can turn DIRTY again without a commit.
 * - gen changes with a block's content; a finished upload applies only if the block
 *   still has the gen it was read at.
 * Uploads run on the stage's workers: the node's lock holder reads the block into a
 * buffer and queues it; the worker uploads it, frees the buffer and hands the job back
 * on node.done, where the next holder of node.lock applies it (reap). While the
 * node is busy (stage.h), a reader holding node.lock may reap too.
 */
#include "fs/stage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "auth/base/log.h"
#include "auth/base/util.h"
#include "cache/cache.h"
#include "cache/meta.h"

#define STAGE_BUCKETS 4096
/* Upload memory: this much, in whole blocks, but never fewer than 2 or more than 8. */
#define STAGE_UPLOAD_MEMORY ((size_t)64 << 20)
#define STAGE_BUFFERS_MIN 2u
#define STAGE_BUFFERS_MAX 8u
#define STAGE_ID_RAW 24
#define STAGE_ZERO_CHUNK (64u << 10)
/* Kept copies of uploaded blocks take at most this share of the staging limit. */
#define STAGE_KEEP_SHARE 4

enum block_state { BLOCK_BASE, BLOCK_DIRTY, BLOCK_STAGED };

struct stage_block {
	uint64_t gen;         /* never 0; changes with the content */
	uint64_t upload_gen;  /* gen of the upload in flight, 0 if none */
	uint64_t dirty_since; /* DIRTY: the node's clock when it became so */
	uint64_t used;        /* the node's clock when it was last read or written */
	uint32_t covered;     /* DIRTY: bytes written contiguously from the block's start */
	uint8_t state;        /* enum block_state */
	/* Has bytes in the staging file (counted in stage.staged): a DIRTY block's content,
	 * or a STAGED block's kept copy (also counted in stage.kept). */
	bool resident;
	bool has_id;          /* id names this content in the store (committed or staged) */
	char id[STAGE_ID_LEN + 1];
};

/* One version of an object, read through the cache. Shared by reference with readers
 * that read it outside node.lock; immutable. */
struct stage_base {
	atomic_uint refs;
	struct cache_file *file;
	uint64_t size;
	char etag[STORE_ETAG_MAX];
};

/* An upload: made under node.lock, run by a worker, applied by reap(). */
struct stage_job {
	struct stage_job *next;
	struct stage_node *node;
	char *path;
	unsigned char *buf; /* a pool buffer until uploaded */
	size_t index, len;
	uint64_t gen;
	bool resident; /* counted in stage.uploading */
	int err;
	char id[STAGE_ID_LEN + 1];
};

struct stage_node {
	struct stage *st;
	/* guarded by stage.table_lock (path also by lock: written under both) */
	struct stage_node *hash_next;
	char *path;
	bool in_table;
	unsigned refs, handles, writers;
	bool shown_dirty;        /* data_dirty || meta_dirty, as last published */
	struct store_attr shown; /* size, mtime, etag, is_symlink, as last published */

	pthread_mutex_t lock;
	pthread_cond_t idle; /* busy went false */
	/* guarded by lock */
	/* A store call that may take long runs without lock: until it clears busy, only
	 * its caller changes the node; readers and opens go on. */
	bool busy;
	struct stage_base *base;
	bool is_symlink;
	/* Its changes stay here, never uploaded or committed again: it was unlinked or
	 * renamed over, or libfuse hid it (.fuse_hidden*) until its last close. */
	bool local;
	bool data_dirty, meta_dirty;
	/* The last commit failed and its caller was told; no change since. The last close
	 * then drops the changes instead of trying once more where nobody can be told. */
	bool failure_told;
	bool grid_ready; /* blocks describe the node (loaded at the first change) */
	uint64_t size;
	int64_t mtime;
	uint32_t mtime_nsec;
	struct stage_block *blocks;
	size_t nblocks, cap;
	uint64_t gen_seq, clock;
	uint32_t upload_seq;
	unsigned char id_random[7];
	int fd;           /* staging file, -1 until needed */
	int upload_error; /* of the last failed upload, 0 once reported */

	pthread_mutex_t done_lock;
	pthread_cond_t done_cond; /* an upload finished */
	/* guarded by done_lock */
	unsigned inflight;
	struct stage_job *done;
};

/* A rename in progress: until it ends, opens of to join node (its source's node, or
 * none), so one node stands for each path. On the stack of stage_rename(). */
struct stage_move {
	struct stage_move *next;
	const char *to;
	struct stage_node *node;
};

struct stage {
	struct stage_config cfg; /* immutable */
	char dir[PATH_MAX];
	atomic_uint_fast64_t staged;    /* bytes of resident blocks, all nodes */
	atomic_uint_fast64_t uploading; /* of those, in an upload in flight */
	atomic_uint_fast64_t kept;      /* of those, kept copies of STAGED blocks */
	uint64_t keep_limit;            /* kept copies past this are dropped */
	atomic_uint listed;             /* nodes in the table */

	pthread_mutex_t table_lock;
	struct stage_node *buckets[STAGE_BUCKETS];
	struct stage_move *moves; /* renames in progress */

	pthread_mutex_t pool_lock;
	pthread_cond_t job_cond; /* a job queued, or stopping */
	pthread_cond_t buf_cond; /* a buffer came back */
	/* guarded by pool_lock */
	struct stage_job *queue_head, *queue_tail;
	unsigned char *free_bufs[STAGE_BUFFERS_MAX];
	unsigned nfree, nbufs, max_bufs;
	bool stopping;
	pthread_t workers[STAGE_BUFFERS_MAX];
	unsigned nworkers;
};

/* Small helpers --------------------------------------------------------------- */

static uint64_t hash_path(const char *path)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 1099511628211ull;
	return h;
}

static void now_realtime(int64_t *sec, uint32_t *nsec)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	*sec = ts.tv_sec;
	*nsec = (uint32_t)ts.tv_nsec;
}

/* Errors of a commit as the caller sees them: local trouble as it is, the store's as
 * EIO (the log says which). */
static int commit_errno(int err)
{
	return err == -ENOSPC || err == -ENOMEM || err == -EDQUOT || err == -EFBIG ? err : -EIO;
}

static const char *why(int err)
{
	switch (err) {
	case -ETIMEDOUT:
		return "the store did not answer in time";
	case -EHOSTUNREACH:
		return "the store cannot be reached";
	case -ECONNRESET:
		return "the connection to the store failed";
	case -EACCES:
		return "the service refused the credential";
	case -ENOSPC:
		return "no space left for the staging file";
	default:
		return strerror(-err);
	}
}

/* Long store calls --------------------------------------------------------------- */

/* Takes n's lock once no long store call is in progress on it: the caller may change
 * the node. */
static void lock_idle(struct stage_node *n)
{
	pthread_mutex_lock(&n->lock);
	while (n->busy)
		pthread_cond_wait(&n->idle, &n->lock);
}

/* Drops n's lock for a long store call of the holder's, which alone may change the
 * node until busy_end(). The holder took it with lock_idle(). */
static void busy_begin(struct stage_node *n)
{
	n->busy = true;
	pthread_mutex_unlock(&n->lock);
}

static void busy_end(struct stage_node *n)
{
	pthread_mutex_lock(&n->lock);
	n->busy = false;
	pthread_cond_broadcast(&n->idle);
}

/* Upload buffers ---------------------------------------------------------------- */

/* A block-sized buffer; waits while all are in use (with n busy, when the caller
 * holds n's lock). NULL when memory is short. */
static unsigned char *buf_get(struct stage *st, struct stage_node *n)
{
	unsigned char *buf = NULL;
	bool waited = false;

	pthread_mutex_lock(&st->pool_lock);
	if (!st->nfree && st->nbufs == st->max_bufs && n) {
		pthread_mutex_unlock(&st->pool_lock);
		busy_begin(n);
		waited = true;
		pthread_mutex_lock(&st->pool_lock);
	}
	while (!st->nfree && st->nbufs == st->max_bufs)
		pthread_cond_wait(&st->buf_cond, &st->pool_lock);
	if (st->nfree) {
		buf = st->free_bufs[--st->nfree];
	} else {
		void *p = mmap(NULL, st->cfg.block_size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p != MAP_FAILED) {
			buf = p;
			st->nbufs++;
		}
	}
	pthread_mutex_unlock(&st->pool_lock);
	if (waited)
		busy_end(n);
	return buf;
}

static void buf_put(struct stage *st, unsigned char *buf)
{
	pthread_mutex_lock(&st->pool_lock);
	st->free_bufs[st->nfree++] = buf;
	pthread_cond_signal(&st->buf_cond);
	pthread_mutex_unlock(&st->pool_lock);
}

/* Bases ------------------------------------------------------------------------ */

static int base_new(struct stage *st, const char *path, const char *etag, uint64_t size,
		    struct stage_base **out)
{
	struct stage_base *base = calloc(1, sizeof(*base));
	int err;

	if (!base)
		return -ENOMEM;
	atomic_init(&base->refs, 1);
	base->size = size;
	snprintf(base->etag, sizeof(base->etag), "%s", etag);
	err = cache_open(st->cfg.cache, path, base->etag, size, &base->file);
	if (err) {
		free(base);
		return err;
	}
	*out = base;
	return 0;
}

static struct stage_base *base_hold(struct stage_base *base)
{
	atomic_fetch_add(&base->refs, 1);
	return base;
}

static void base_put(struct stage_base *base)
{
	if (base && atomic_fetch_sub(&base->refs, 1) == 1) {
		cache_close(base->file);
		free(base);
	}
}

/* Reads [offset, offset + len) of the base, all of it or an error. */
static int base_read(struct stage_base *base, uint64_t offset, size_t len, void *buf)
{
	ssize_t n;

	if (len == 0)
		return 0;
	if (offset + len > base->size)
		return -EIO;
	n = cache_read(base->file, offset, len, buf);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

/* The table --------------------------------------------------------------------- */

static struct stage_node **bucket_of(struct stage *st, const char *path)
{
	return &st->buckets[hash_path(path) % STAGE_BUCKETS];
}

/* The node of path in the table, or NULL. Under table_lock. */
static struct stage_node *table_find(struct stage *st, const char *path)
{
	struct stage_node *n;

	for (n = *bucket_of(st, path); n; n = n->hash_next)
		if (strcmp(n->path, path) == 0)
			return n;
	return NULL;
}

static void table_insert(struct stage *st, struct stage_node *n)
{
	struct stage_node **bucket = bucket_of(st, n->path);

	n->hash_next = *bucket;
	*bucket = n;
	n->in_table = true;
	atomic_fetch_add(&st->listed, 1);
}

static void table_remove(struct stage *st, struct stage_node *n)
{
	struct stage_node **link;

	if (!n->in_table)
		return;
	for (link = bucket_of(st, n->path); *link; link = &(*link)->hash_next) {
		if (*link == n) {
			*link = n->hash_next;
			break;
		}
	}
	n->hash_next = NULL;
	n->in_table = false;
	atomic_fetch_sub(&st->listed, 1);
}

/* The node of path with a reference for the caller, or NULL. */
static struct stage_node *node_find(struct stage *st, const char *path)
{
	struct stage_node *n;

	pthread_mutex_lock(&st->table_lock);
	n = table_find(st, path);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&st->table_lock);
	return n;
}

/* Publishes the attributes getattr shows. Under lock. */
static void publish(struct stage_node *n)
{
	struct stage *st = n->st;

	pthread_mutex_lock(&st->table_lock);
	n->shown.size = n->size;
	n->shown.mtime = n->mtime;
	n->shown.mtime_nsec = n->mtime_nsec;
	n->shown.is_symlink = n->is_symlink;
	n->shown.is_dir = false;
	memcpy(n->shown.etag, n->base->etag, sizeof(n->shown.etag));
	n->shown_dirty = n->data_dirty || n->meta_dirty;
	pthread_mutex_unlock(&st->table_lock);
}

/* Uploads ----------------------------------------------------------------------- */

static void block_id(struct stage_node *n, size_t index, uint32_t seq, char *out)
{
	unsigned char raw[STAGE_ID_RAW];
	uint64_t index64 = index;

	memcpy(raw, "ferry", 5);
	memcpy(raw + 5, n->id_random, sizeof(n->id_random));
	for (int i = 0; i < 4; i++)
		raw[12 + i] = (unsigned char)(seq >> (24 - 8 * i));
	for (int i = 0; i < 8; i++)
		raw[16 + i] = (unsigned char)(index64 >> (56 - 8 * i));
	EVP_EncodeBlock((unsigned char *)out, raw, STAGE_ID_RAW); /* 32 chars + NUL */
}

static uint64_t block_len(const struct stage_node *n, size_t index)
{
	uint64_t start = (uint64_t)index * n->st->cfg.block_size;
	uint64_t left = n->size - start;

	return left < n->st->cfg.block_size ? left : n->st->cfg.block_size;
}

static void set_resident(struct stage_node *n, struct stage_block *b)
{
	if (!b->resident) {
		b->resident = true;
		atomic_fetch_add(&n->st->staged, n->st->cfg.block_size);
	}
}

/* Turns [offset, offset + len) of the staging file into zeros, freeing the space
 * where the file system can punch holes. */
static int zero_range(struct stage_node *n, uint64_t offset, uint64_t len)
{
	static const char zeros[STAGE_ZERO_CHUNK];

	if (n->fd < 0 || len == 0)
		return 0;
	if (fallocate(n->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
		      (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	while (len) {
		size_t chunk = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
		int err = util_pwrite_full(n->fd, zeros, chunk, offset);

		if (err)
			return err;
		offset += chunk;
		len -= chunk;
	}
	return 0;
}

/* Drops the staging bytes of block index (they are elsewhere, or no longer wanted). */
static void drop_resident(struct stage_node *n, size_t index)
{
	struct stage_block *b = &n->blocks[index];
	size_t bs = n->st->cfg.block_size;
	int err;

	if (!b->resident)
		return;
	err = zero_range(n, (uint64_t)index * bs, bs);
	if (err)
		log_warn("staging file of %s: cannot free a block: %s", n->path, strerror(-err));
	if (b->state == BLOCK_STAGED)
		atomic_fetch_sub(&n->st->kept, bs);
	b->resident = false;
	atomic_fetch_sub(&n->st->staged, bs);
}

/* Changes the state of a block, keeping stage.kept in step. Under lock. */
static void set_state(struct stage_node *n, struct stage_block *b, enum block_state state)
{
	bool was_kept = b->resident && b->state == BLOCK_STAGED;
	bool is_kept = b->resident && state == BLOCK_STAGED;

	if (is_kept && !was_kept)
		atomic_fetch_add(&n->st->kept, n->st->cfg.block_size);
	else if (was_kept && !is_kept)
		atomic_fetch_sub(&n->st->kept, n->st->cfg.block_size);
	b->state = (uint8_t)state;
}

/* Drops the kept copy of n's least recently used STAGED block; false when it has
 * none. Under lock. */
static bool drop_oldest_kept(struct stage_node *n)
{
	size_t oldest = n->nblocks;

	for (size_t i = 0; i < n->nblocks; i++) {
		const struct stage_block *b = &n->blocks[i];

		if (b->state == BLOCK_STAGED && b->resident &&
		    (oldest == n->nblocks || b->used < n->blocks[oldest].used))
			oldest = i;
	}
	if (oldest == n->nblocks)
		return false;
	drop_resident(n, oldest);
	return true;
}

/* Applies the uploads the workers finished. Under lock. */
static void reap(struct stage_node *n)
{
	struct stage_job *job, *next;

	pthread_mutex_lock(&n->done_lock);
	job = n->done;
	n->done = NULL;
	pthread_mutex_unlock(&n->done_lock);
	for (; job; job = next) {
		struct stage_block *b = job->index < n->nblocks ? &n->blocks[job->index] : NULL;

		next = job->next;
		if (job->resident)
			atomic_fetch_sub(&n->st->uploading, n->st->cfg.block_size);
		if (b && b->upload_gen == job->gen)
			b->upload_gen = 0;
		if (job->err) {
			log_warn("upload of block %zu of %s failed: %s", job->index, job->path,
				 why(job->err));
			n->upload_error = job->err;
		} else if (b && b->gen == job->gen) {
			memcpy(b->id, job->id, sizeof(b->id));
			b->has_id = true;
			/* Its bytes stay as a kept copy: reads and small changes of it need
			 * no commit. */
			if (b->state == BLOCK_DIRTY)
				set_state(n, b, BLOCK_STAGED);
		}
		free(job->path);
		free(job);
	}
	while (atomic_load(&n->st->kept) > n->st->keep_limit && drop_oldest_kept(n))
		;
}

/* Waits (with n busy) until none or, with one, at least one of the node's uploads in
 * flight has finished; whether any was in flight. Under lock, taken with lock_idle(). */
static bool wait_uploads(struct stage_node *n, bool one)
{
	bool waited;

	pthread_mutex_lock(&n->done_lock);
	waited = n->inflight > 0;
	pthread_mutex_unlock(&n->done_lock);
	if (!waited)
		return false;
	busy_begin(n);
	pthread_mutex_lock(&n->done_lock);
	while (n->inflight && !(one && n->done))
		pthread_cond_wait(&n->done_cond, &n->done_lock);
	pthread_mutex_unlock(&n->done_lock);
	busy_end(n);
	return true;
}

/* Waits for the node's uploads in flight, then applies them. Under lock, taken with
 * lock_idle(). */
static void wait_inflight(struct stage_node *n)
{
	wait_uploads(n, false);
	reap(n);
}

static int ensure_fd(struct stage_node *n)
{
	char path[PATH_MAX];
	int fd;

	if (n->fd >= 0)
		return 0;
	fd = open(n->st->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* No O_TMPFILE here: a named file, unlinked at once. */
		if (snprintf(path, sizeof(path), "%s/.ferry-stage-XXXXXX", n->st->dir) >=
		    (int)sizeof(path))
			return -ENAMETOOLONG;
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0) {
		int err = -errno;

		log_error("cannot create a staging file in %s for %s: %s", n->st->dir, n->path,
			  strerror(-err));
		return err;
	}
	n->fd = fd;
	return 0;
}

/* len bytes at offset of block b from the staging file: what it holds, zeros past
 * its end or where b has nothing there. Under lock. */
static int staging_read(struct stage_node *n, const struct stage_block *b, void *buf,
			size_t len, uint64_t offset)
{
	ssize_t got = 0;

	if (b->resident) {
		got = util_pread_full(n->fd, buf, len, offset);
		if (got < 0)
			return (int)got;
	}
	memset((char *)buf + got, 0, len - (size_t)got);
	return 0;
}

/* The current content of block index into buf (block_len bytes). Under lock. */
static int block_content(struct stage_node *n, size_t index, unsigned char *buf, size_t len)
{
	struct stage_block *b = &n->blocks[index];
	uint64_t offset = (uint64_t)index * n->st->cfg.block_size;

	if (b->state == BLOCK_BASE)
		return base_read(n->base, offset, len, buf);
	if (b->state == BLOCK_DIRTY || b->resident)
		return staging_read(n, b, buf, len, offset);
	return -EIO; /* its bytes are only in the store, uncommitted */
}

/* Queues the upload of block index as it is now. Under lock, taken with lock_idle(). */
static int submit(struct stage_node *n, size_t index)
{
	struct stage *st = n->st;
	struct stage_block *b = &n->blocks[index];
	struct stage_job *job = calloc(1, sizeof(*job));
	int err = -ENOMEM;

	if (!job)
		return -ENOMEM;
	job->path = strdup(n->path);
	if (!job->path)
		goto out_free_job;
	job->buf = buf_get(st, n);
	if (!job->buf)
		goto out_free_job;
	job->node = n;
	job->index = index;
	job->len = (size_t)block_len(n, index);
	job->gen = b->gen;
	if (b->state == BLOCK_BASE) {
		busy_begin(n); /* the base's bytes may have to be downloaded */
		err = block_content(n, index, job->buf, job->len);
		busy_end(n);
	} else {
		err = block_content(n, index, job->buf, job->len);
	}
	if (err)
		goto out_put_buf;
	block_id(n, index, ++n->upload_seq, job->id);
	b->upload_gen = b->gen;
	if (b->resident) {
		job->resident = true;
		atomic_fetch_add(&st->uploading, st->cfg.block_size);
	}
	pthread_mutex_lock(&n->done_lock);
	n->inflight++;
	pthread_mutex_unlock(&n->done_lock);
	pthread_mutex_lock(&st->pool_lock);
	if (st->queue_tail)
		st->queue_tail->next = job;
	else
		st->queue_head = job;
	st->queue_tail = job;
	pthread_cond_signal(&st->job_cond);
	pthread_mutex_unlock(&st->pool_lock);
	return 0;

out_put_buf:
	buf_put(st, job->buf);
out_free_job:
	free(job->path);
	free(job);
	return err;
}

static void *stage_worker(void *arg)
{
	struct stage *st = arg;
	struct stage_job *job;

	pthread_mutex_lock(&st->pool_lock);
	for (;;) {
		struct stage_node *n;

		while (!st->queue_head && !st->stopping)
			pthread_cond_wait(&st->job_cond, &st->pool_lock);
		if (!st->queue_head)
			break;
		job = st->queue_head;
		st->queue_head = job->next;
		if (!st->queue_head)
			st->queue_tail = NULL;
		pthread_mutex_unlock(&st->pool_lock);

		job->err = store_put_block(st->cfg.store, job->path, job->id,
					   (uint64_t)job->index * st->cfg.block_size, job->buf,
					   job->len);
		buf_put(st, job->buf); /* before done_lock: a waiter for buffers holds node.lock */
		job->buf = NULL;
		n = job->node;
		pthread_mutex_lock(&n->done_lock);
		job->next = n->done;
		n->done = job;
		n->inflight--;
		pthread_cond_broadcast(&n->done_cond);
		pthread_mutex_unlock(&n->done_lock);

		pthread_mutex_lock(&st->pool_lock);
	}
	pthread_mutex_unlock(&st->pool_lock);
	return NULL;
}

/* The grid and its changes ------------------------------------------------------ */

static int ensure_cap(struct stage_node *n, size_t nblocks)
{
	struct stage_block *grown;
	size_t cap;

	if (nblocks > STAGE_MAX_BLOCKS)
		return -EFBIG;
	if (nblocks <= n->cap)
		return 0;
	cap = n->cap ? n->cap * 2 : 16;
	if (cap < nblocks)
		cap = nblocks;
	if (cap > STAGE_MAX_BLOCKS)
		cap = STAGE_MAX_BLOCKS;
	grown = realloc(n->blocks, cap * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	n->blocks = grown;
	n->cap = cap;
	return 0;
}

static size_t blocks_for(const struct stage_node *n, uint64_t size)
{
	return (size_t)((size + n->st->cfg.block_size - 1) / n->st->cfg.block_size);
}

/* Whether the committed blocks of a size-byte object are on the grid with ids of
 * ferry's length, so they can be listed again as they are. */
static bool on_grid(const struct stage_node *n, const struct store_block *list, size_t count,
		    uint64_t size)
{
	size_t bs = n->st->cfg.block_size;

	if (count != blocks_for(n, size))
		return false;
	for (size_t i = 0; i < count; i++) {
		uint64_t want = i + 1 < count ? bs : size - (uint64_t)i * bs;

		if (list[i].size != want || strlen(list[i].id) != STAGE_ID_LEN)
			return false;
	}
	return true;
}

/* Describes the base as blocks, before the first change. Under lock, taken with
 * lock_idle(). */
static int grid_load(struct stage_node *n)
{
	struct stage_base *base = n->base;
	struct store_block *list = NULL;
	size_t count = 0, nblocks = blocks_for(n, base->size);
	int err;

	if (n->grid_ready)
		return 0;
	err = ensure_cap(n, nblocks);
	if (err)
		return err;
	for (size_t i = 0; i < nblocks; i++)
		n->blocks[i] = (struct stage_block){ .state = BLOCK_BASE, .gen = ++n->gen_seq };
	n->nblocks = nblocks;
	n->size = base->size;
	/* Only a base of several blocks has ids worth reusing. */
	if (base->size > n->st->cfg.block_size && base->etag[0]) {
		busy_begin(n);
		err = store_get_blocks(n->st->cfg.store, n->path, base->etag, &list, &count);
		busy_end(n);
		if (!err && on_grid(n, list, count, base->size)) {
			for (size_t i = 0; i < count; i++) {
				memcpy(n->blocks[i].id, list[i].id, STAGE_ID_LEN + 1);
				n->blocks[i].has_id = true;
			}
		} else if (err) {
			log_debug("block list of %s: %s; its blocks will be uploaded again", n->path,
				  strerror(-err));
		}
		free(list);
	}
	n->grid_ready = true;
	return 0;
}

static int commit_locked(struct stage_node *n);

/* Makes block index DIRTY with its whole content in staging; whole: the caller is
 * about to write all of it, so its old bytes are not needed. A block whose bytes are
 * only in the store (STAGED, its kept copy dropped) is committed first. Under lock,
 * taken with lock_idle(). */
static int make_dirty(struct stage_node *n, size_t index, bool whole)
{
	struct stage_block *b = &n->blocks[index];
	size_t len;
	unsigned char *buf;
	int err;

	if (b->state == BLOCK_DIRTY)
		return 0;
	if (b->state == BLOCK_STAGED && !whole && !b->resident) {
		if (n->local)
			return -EIO; /* its bytes went with the deleted blob */
		err = commit_locked(n);
		if (err)
			return err;
		b = &n->blocks[index]; /* BASE now */
	}
	err = ensure_fd(n);
	if (err)
		return err;
	if (b->state == BLOCK_BASE && !whole) {
		len = (size_t)block_len(n, index);
		buf = buf_get(n->st, n);
		if (!buf)
			return -ENOMEM;
		busy_begin(n); /* the download */
		err = base_read(n->base, (uint64_t)index * n->st->cfg.block_size, len, buf);
		busy_end(n);
		if (!err)
			err = util_pwrite_full(n->fd, buf, len, (uint64_t)index * n->st->cfg.block_size);
		buf_put(n->st, buf);
		if (err == -ESTALE)
			log_error("%s changed in the store since it was opened: cannot change part "
				  "of it", n->path);
		if (err)
			return err;
		set_resident(n, b);
	}
	set_state(n, b, BLOCK_DIRTY);
	b->has_id = false;
	b->covered = 0;
	b->gen = ++n->gen_seq;
	b->dirty_since = ++n->clock;
	b->used = b->dirty_since;
	return 0;
}

static void touch(struct stage_node *n)
{
	now_realtime(&n->mtime, &n->mtime_nsec);
	n->data_dirty = true;
	n->failure_told = false;
}

/* Sets the size; the grid must be loaded. Under lock. */
static int set_size(struct stage_node *n, uint64_t size)
{
	size_t bs = n->st->cfg.block_size, nblocks = blocks_for(n, size);
	uint64_t old = n->size;
	int err;

	if (size == old)
		return 0;
	if (size > (uint64_t)STAGE_MAX_BLOCKS * bs)
		return -EFBIG;
	if (size < old) {
		if (size % bs) {
			size_t last = (size_t)(size / bs);
			uint64_t cut = size - (uint64_t)last * bs;
			struct stage_block *b;

			err = make_dirty(n, last, false);
			if (err)
				return err;
			b = &n->blocks[last];
			if (b->resident) {
				err = zero_range(n, size, bs - cut);
				if (err)
					return err;
			}
			if (b->covered > cut)
				b->covered = (uint32_t)cut;
			b->gen = ++n->gen_seq;
		}
		for (size_t i = nblocks; i < n->nblocks; i++)
			drop_resident(n, i);
		n->nblocks = nblocks;
	} else {
		err = ensure_cap(n, nblocks);
		if (err)
			return err;
		if (old % bs) {
			size_t last = (size_t)(old / bs);

			/* Its length changes: it is no longer the base's block. */
			err = make_dirty(n, last, false);
			if (err)
				return err;
			n->blocks[last].gen = ++n->gen_seq;
		}
		for (size_t i = n->nblocks; i < nblocks; i++)
			n->blocks[i] = (struct stage_block){
				.state = BLOCK_DIRTY,
				.gen = ++n->gen_seq,
				.dirty_since = ++n->clock,
			};
		n->nblocks = nblocks;
	}
	n->size = size;
	touch(n);
	return 0;
}

/* Waits until one of the node's uploads in flight finishes, then applies what has
 * finished; false when none is in flight. Under lock, taken with lock_idle(). */
static bool wait_one(struct stage_node *n)
{
	bool waited = wait_uploads(n, true);

	reap(n);
	return waited;
}

/* Past the staging limit, drops this node's kept copies (least recently used first),
 * then uploads its oldest dirty blocks and waits for them to leave the staging file.
 * Under lock, taken with lock_idle(). */
static int relieve_pressure(struct stage_node *n)
{
	struct stage *st = n->st;
	int err;

	if (n->local || !st->cfg.limit)
		return 0;
	while (atomic_load(&st->staged) > st->cfg.limit) {
		uint64_t staged, uploading;
		size_t oldest = n->nblocks;

		reap(n);
		if (n->upload_error) {
			err = n->upload_error;
			n->upload_error = 0;
			log_error("staging for %s is full and its uploads fail: %s", n->path,
				  why(err));
			return commit_errno(err);
		}
		if (drop_oldest_kept(n))
			continue; /* uploaded already: the cheapest bytes to give up */
		staged = atomic_load(&st->staged);
		uploading = atomic_load(&st->uploading);
		/* uploading may pass staged for a moment: a block in flight was dropped */
		if (staged > uploading && staged - uploading > st->cfg.limit) {
			for (size_t i = 0; i < n->nblocks; i++) {
				const struct stage_block *b = &n->blocks[i];

				if (b->state == BLOCK_DIRTY && b->resident && b->upload_gen != b->gen &&
				    (oldest == n->nblocks ||
				     b->dirty_since < n->blocks[oldest].dirty_since))
					oldest = i;
			}
		}
		if (oldest < n->nblocks) {
			err = submit(n, oldest);
			if (err)
				return err;
		} else if (!wait_one(n)) {
			break; /* the rest is other files' */
		}
	}
	return 0;
}

/* Commit ------------------------------------------------------------------------ */

static void log_commit_failure(const struct stage_node *n, int err)
{
	if (err == -ESTALE || err == -EEXIST)
		log_error("upload of %s failed: it changed in the store since it was opened; "
			  "the previous version is unchanged (-o conflict=overwrite makes the "
			  "last writer win)", n->path);
	else
		log_error("upload of %s failed: %s; the previous version is unchanged", n->path,
			  why(err));
}

/* Uploads what the store lacks and commits the block list. Under lock, taken with
 * lock_idle(). */
static int commit_blocks(struct stage_node *n, const struct store_meta *meta,
			 const struct store_cond *cond, struct store_attr *out)
{
	const char **ids;
	int err = 0;

	n->upload_error = 0;
	for (size_t i = 0; i < n->nblocks && !err; i++) {
		const struct stage_block *b = &n->blocks[i];

		if (!b->has_id && b->upload_gen != b->gen)
			err = submit(n, i);
	}
	wait_inflight(n);
	if (err)
		return err;
	/* A block missing: its upload failed (reap logged why). Put Block has no
	 * condition, so that is never a conflict. */
	for (size_t i = 0; i < n->nblocks; i++)
		if (!n->blocks[i].has_id)
			return n->upload_error && n->upload_error != -ESTALE &&
					       n->upload_error != -EEXIST
				       ? n->upload_error
				       : -EIO;
	ids = malloc((n->nblocks ? n->nblocks : 1) * sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < n->nblocks; i++)
		ids[i] = n->blocks[i].id;
	busy_begin(n);
	err = store_commit(n->st->cfg.store, n->path, ids, n->nblocks, meta, cond, out);
	busy_end(n);
	free(ids);
	return err;
}

/* A file of at most one block with nothing reusable: one Put Blob. Under lock, taken
 * with lock_idle(). */
static int commit_whole(struct stage_node *n, const struct store_meta *meta,
			const struct store_cond *cond, struct store_attr *out)
{
	unsigned char *buf = NULL;
	int err = 0;

	if (n->size) {
		buf = buf_get(n->st, n);
		if (!buf)
			return -ENOMEM;
		err = block_content(n, 0, buf, (size_t)n->size);
	}
	if (!err) {
		busy_begin(n);
		err = store_put(n->st->cfg.store, n->path, buf ? buf : (unsigned char *)"",
				(size_t)n->size, meta, cond, out);
		busy_end(n);
	}
	if (buf)
		buf_put(n->st, buf);
	return err;
}

/* The committed version is the new base. Under lock. */
static int commit_done(struct stage_node *n, struct store_attr *attr, bool whole)
{
	struct stage_base *base;
	int err;

	attr->size = n->size; /* not all writes report it */
	attr->mtime = n->mtime;
	attr->mtime_nsec = n->mtime_nsec;
	attr->is_symlink = n->is_symlink;
	attr->is_dir = false;
	for (size_t i = 0; i < n->nblocks; i++) {
		struct stage_block *b = &n->blocks[i];

		set_state(n, b, BLOCK_BASE);
		if (b->resident) {
			b->resident = false;
			atomic_fetch_sub(&n->st->staged, n->st->cfg.block_size);
		}
		b->covered = 0;
		if (whole || n->st->cfg.store->blocks_single_use)
			b->has_id = false;
	}
	if (n->fd >= 0 && ftruncate(n->fd, 0) != 0)
		log_warn("staging file of %s: cannot empty it: %s", n->path, strerror(errno));
	n->data_dirty = false;
	n->meta_dirty = false;
	meta_invalidate(n->st->cfg.meta, n->path);
	meta_put_attr(n->st->cfg.meta, n->path, attr);
	err = base_new(n->st, n->path, attr->etag, n->size, &base);
	if (err) {
		/* Committed; reads of the unchanged parts will fail until reopened. */
		log_error("%s: committed, but cannot track the new version: %s", n->path,
			  strerror(-err));
	} else {
		base_put(n->base);
		n->base = base;
	}
	publish(n);
	return 0;
}

#define STAGE_COMPARE_CHUNK ((size_t)64 << 10)

/* Whether the one-block content of n is what the object holds at etag. With n busy. */
static bool content_matches(struct stage_node *n, const char *etag)
{
	unsigned char *theirs = malloc(STAGE_COMPARE_CHUNK), *ours = buf_get(n->st, NULL);
	size_t done = 0;

	if (theirs && ours && block_content(n, 0, ours, (size_t)n->size) == 0) {
		while (done < n->size) {
			size_t len = n->size - done < STAGE_COMPARE_CHUNK ? (size_t)(n->size - done)
									  : STAGE_COMPARE_CHUNK;

			if (store_read(n->st->cfg.store, n->path, etag, done, len, theirs) !=
				    (ssize_t)len ||
			    memcmp(ours + done, theirs, len) != 0)
				break;
			done += len;
		}
	}
	if (ours)
		buf_put(n->st, ours);
	free(theirs);
	return theirs && ours && done == n->size;
}

/* A commit whose condition failed may have been this one, sent again by the retries
 * after its answer was lost: then the store holds what it sent (same mtime to the
 * nanosecond, size, and block ids or bytes), and it succeeded. With n busy. */
static bool commit_landed(struct stage_node *n, bool whole, struct store_attr *out)
{
	struct store_block *list = NULL;
	size_t count = 0;
	bool same;

	if (store_stat(n->st->cfg.store, n->path, out) != 0 || out->size != n->size ||
	    out->mtime != n->mtime || out->mtime_nsec != n->mtime_nsec ||
	    out->is_symlink != n->is_symlink)
		return false;
	if (!n->data_dirty)
		return true; /* only the metadata was to change */
	if (whole)
		return content_matches(n, out->etag);
	if (store_get_blocks(n->st->cfg.store, n->path, out->etag, &list, &count) != 0)
		return false;
	same = count == n->nblocks;
	for (size_t i = 0; i < count && same; i++)
		same = n->blocks[i].has_id && strcmp(list[i].id, n->blocks[i].id) == 0;
	free(list);
	return same;
}

static int commit_locked(struct stage_node *n)
{
	struct stage *st = n->st;
	struct store_meta meta = {
		.is_symlink = n->is_symlink,
		.has_mtime = true,
		.mtime = n->mtime,
		.mtime_nsec = n->mtime_nsec,
	};
	struct store_cond cond = { 0 };
	struct store_attr out;
	bool whole = false;
	int err;

	wait_inflight(n);
	if (n->local || (!n->data_dirty && !n->meta_dirty))
		return 0;
	if (n->base->etag[0])
		cond.if_match = n->base->etag;
	else
		cond.if_none = true;
	memset(&out, 0, sizeof(out));
	if (!n->data_dirty) {
		busy_begin(n);
		err = store_set_meta(st->cfg.store, n->path, &meta, st->cfg.overwrite ? NULL : &cond,
				     &out);
		busy_end(n);
	} else {
		whole = n->size <= st->cfg.block_size;
		for (size_t i = 0; i < n->nblocks && whole; i++)
			whole = !n->blocks[i].has_id && n->blocks[i].state != BLOCK_STAGED;
		if (whole)
			err = commit_whole(n, &meta, st->cfg.overwrite ? NULL : &cond, &out);
		else
			err = commit_blocks(n, &meta, st->cfg.overwrite ? NULL : &cond, &out);
	}
	if ((err == -ESTALE || err == -EEXIST) && !st->cfg.overwrite) {
		bool landed;

		busy_begin(n);
		landed = commit_landed(n, whole, &out);
		busy_end(n);
		if (landed) {
			log_info("%s: the commit was sent again after its answer was lost; it "
				 "had landed", n->path);
			err = 0;
		}
	}
	if (err) {
		log_commit_failure(n, err);
		n->failure_told = true;
		return commit_errno(err);
	}
	n->failure_told = false;
	return commit_done(n, &out, whole);
}

/* Nodes ------------------------------------------------------------------------- */

static int node_new(struct stage *st, const char *path, const struct store_attr *attr,
		    struct stage_node **out)
{
	struct stage_node *n = calloc(1, sizeof(*n));
	int err = -ENOMEM;

	if (!n)
		return -ENOMEM;
	n->st = st;
	n->fd = -1;
	n->path = strdup(path);
	if (!n->path)
		goto out_free;
	err = base_new(st, path, attr->etag, attr->size, &n->base);
	if (err)
		goto out_free;
	if (getrandom(n->id_random, sizeof(n->id_random), 0) != (ssize_t)sizeof(n->id_random)) {
		uint64_t mix = (uint64_t)(uintptr_t)n ^ (uint64_t)time(NULL) * 2654435761u;

		memcpy(n->id_random, &mix, sizeof(n->id_random));
	}
	n->size = attr->size;
	n->mtime = attr->mtime;
	n->mtime_nsec = attr->mtime_nsec;
	n->is_symlink = attr->is_symlink;
	n->shown = *attr;
	n->shown.is_dir = false;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->idle, NULL);
	pthread_mutex_init(&n->done_lock, NULL);
	pthread_cond_init(&n->done_cond, NULL);
	*out = n;
	return 0;

out_free:
	free(n->path);
	free(n);
	return err;
}

static void node_free(struct stage_node *n)
{
	pthread_mutex_lock(&n->lock);
	wait_inflight(n);
	for (size_t i = 0; i < n->nblocks; i++) {
		set_state(n, &n->blocks[i], BLOCK_BASE);
		if (n->blocks[i].resident)
			atomic_fetch_sub(&n->st->staged, n->st->cfg.block_size);
	}
	pthread_mutex_unlock(&n->lock);
	if (n->fd >= 0)
		close(n->fd);
	base_put(n->base);
	free(n->blocks);
	pthread_cond_destroy(&n->done_cond);
	pthread_mutex_destroy(&n->done_lock);
	pthread_cond_destroy(&n->idle);
	pthread_mutex_destroy(&n->lock);
	free(n->path);
	free(n);
}

static void node_put(struct stage_node *n)
{
	struct stage *st = n->st;
	bool last;

	pthread_mutex_lock(&st->table_lock);
	last = --n->refs == 0;
	if (last)
		table_remove(st, n);
	pthread_mutex_unlock(&st->table_lock);
	if (last)
		node_free(n);
}

/* Takes n out of the table: later opens of its path get a new node. */
static void node_unlist(struct stage_node *n)
{
	pthread_mutex_lock(&n->st->table_lock);
	table_remove(n->st, n);
	pthread_mutex_unlock(&n->st->table_lock);
}

/* n no longer has a path in the store; under lock. */
static void node_detach(struct stage_node *n)
{
	n->local = true;
	node_unlist(n);
}

bool stage_hidden_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return strncmp(slash ? slash + 1 : path, STAGE_HIDDEN_PREFIX,
		       strlen(STAGE_HIDDEN_PREFIX)) == 0;
}

/* The interface ------------------------------------------------------------------ */

/* The newest known attributes of path: the meta cache's when it has them (every
 * lookup and every commit lands there first, so they are at least as new as given,
 * which may predate a commit that finished since), else given. */
static void newest_attr(struct stage *st, const char *path, const struct store_attr *given,
			struct store_attr *out)
{
	if (meta_lookup(st->cfg.meta, path, out) != META_FOUND || out->is_dir)
		*out = *given;
}

/* A handle on the node that a rename in progress moves to path, or NULL. Under
 * table_lock. */
static struct stage_node *move_join(struct stage *st, const char *path, bool writable)
{
	for (struct stage_move *m = st->moves; m; m = m->next) {
		if (m->node && strcmp(m->to, path) == 0) {
			m->node->refs++;
			m->node->handles++;
			m->node->writers += writable;
			return m->node;
		}
	}
	return NULL;
}

int stage_open(struct stage *st, const char *path, const struct store_attr *given,
	       bool writable, struct stage_node **out)
{
	struct stage_node *n, *fresh;
	struct store_attr attr;
	int err;

	for (;;) {
		pthread_mutex_lock(&st->table_lock);
		n = move_join(st, path, writable);
		pthread_mutex_unlock(&st->table_lock);
		if (n) {
			*out = n;
			return 0;
		}
		n = node_find(st, path);
		if (n) {
			bool stale;

			pthread_mutex_lock(&n->lock);
			newest_attr(st, path, given, &attr);
			pthread_mutex_lock(&st->table_lock);
			stale = !n->data_dirty && !n->meta_dirty && !n->writers && n->in_table &&
				strcmp(n->base->etag, attr.etag) != 0;
			if (stale) {
				table_remove(st, n);
			} else {
				n->handles++;
				n->writers += writable;
			}
			pthread_mutex_unlock(&st->table_lock);
			pthread_mutex_unlock(&n->lock);
			if (!stale) {
				*out = n;
				return 0;
			}
			node_put(n); /* its handles keep it; the path gets a new one */
			continue;
		}
		/* A node of path that committed and closed just now (a close by another
		 * process while this open looked the path up) updated the meta cache before
		 * it left the table. */
		newest_attr(st, path, given, &attr);
		err = node_new(st, path, &attr, &fresh);
		if (err)
			return err;
		pthread_mutex_lock(&st->table_lock);
		if (table_find(st, path)) {
			pthread_mutex_unlock(&st->table_lock);
			node_free(fresh); /* another open won the race: join it */
			continue;
		}
		table_insert(st, fresh);
		fresh->refs = 1;
		fresh->handles = 1;
		fresh->writers = writable;
		pthread_mutex_unlock(&st->table_lock);
		*out = fresh;
		return 0;
	}
}

/* A copy of the path of n when libfuse hid it (unlinked while open) and it is still in
 * the table, else NULL. Under n->lock. */
static char *hidden_path_of(struct stage_node *n)
{
	char *path = NULL;

	pthread_mutex_lock(&n->st->table_lock);
	if (n->in_table && stage_hidden_name(n->path))
		path = strdup(n->path);
	pthread_mutex_unlock(&n->st->table_lock);
	return path;
}

void stage_close(struct stage_node *n, bool writable)
{
	struct stage *st = n->st;
	char *hidden = NULL;
	bool last;

	pthread_mutex_lock(&st->table_lock);
	last = --n->handles == 0;
	n->writers -= writable;
	pthread_mutex_unlock(&st->table_lock);
	if (last) {
		lock_idle(n);
		/* Changes no close() or fsync() has answered for (mmap's writeback comes
		 * after the close): a last try, only logged. After a failure that was
		 * reported they are dropped: close() said they did not land. */
		if (!n->local && (n->data_dirty || n->meta_dirty)) {
			if (n->failure_told)
				log_warn("%s: dropping the changes whose upload failed (close or "
					 "fsync said so)", n->path);
			else if (commit_locked(n) != 0)
				log_error("the last close of %s could not upload it: what was "
					  "written since it was last saved is lost", n->path);
		}
		hidden = hidden_path_of(n);
		pthread_mutex_unlock(&n->lock);
	}
	/* libfuse deletes a hidden file after its last release too, unless that release
	 * came while it was hiding the file (it does not wait for paths with nullpath_ok):
	 * then only this delete happens. */
	if (hidden) {
		int err = stage_unlink(st, hidden);

		if (err && err != -ENOENT)
			log_warn("%s: could not delete it after its last close: %s", hidden,
				 strerror(-err));
		free(hidden);
	}
	node_put(n);
}

bool stage_has_nodes(struct stage *st)
{
	return atomic_load(&st->listed) != 0;
}

bool stage_has_nodes_under(struct stage *st, const char *dir)
{
	size_t len = strlen(dir);
	bool found = false;

	if (!stage_has_nodes(st))
		return false;
	pthread_mutex_lock(&st->table_lock);
	for (size_t i = 0; i < STAGE_BUCKETS && !found; i++)
		for (struct stage_node *n = st->buckets[i]; n && !found; n = n->hash_next)
			found = strncmp(n->path, dir, len) == 0 && (len == 0 || n->path[len] == '/');
	pthread_mutex_unlock(&st->table_lock);
	return found;
}

bool stage_attr(struct stage *st, const char *path, struct store_attr *out)
{
	struct stage_node *n;
	bool shown = false;

	pthread_mutex_lock(&st->table_lock);
	n = table_find(st, path);
	if (n && (n->shown_dirty || n->writers)) {
		*out = n->shown;
		shown = true;
	}
	pthread_mutex_unlock(&st->table_lock);
	return shown;
}

void stage_node_attr(struct stage_node *n, struct store_attr *out)
{
	pthread_mutex_lock(&n->st->table_lock);
	*out = n->shown;
	pthread_mutex_unlock(&n->st->table_lock);
}

void stage_node_etag(struct stage_node *n, char *out, size_t len)
{
	pthread_mutex_lock(&n->st->table_lock);
	snprintf(out, len, "%s", n->shown.etag);
	pthread_mutex_unlock(&n->st->table_lock);
}

/* Reads of the base alone: outside the node's lock, so readers run in parallel. */
static ssize_t read_base(struct stage_node *n, struct stage_base *base, void *buf, size_t len,
			 uint64_t offset)
{
	ssize_t got;

	if (offset >= base->size)
		return 0;
	if (len > base->size - offset)
		len = (size_t)(base->size - offset);
	if (len > INT_MAX)
		len = INT_MAX;
	got = cache_read(base->file, offset, len, buf);
	if (got == -ESTALE) {
		pthread_mutex_lock(&n->lock);
		meta_invalidate(n->st->cfg.meta, n->path); /* the next open sees the new one */
		pthread_mutex_unlock(&n->lock);
	}
	if (got >= 0 && (size_t)got > len)
		return -EIO; /* more than asked: a bug, not data to pass on */
	return got;
}

/* Reads [pos, pos + len) of a BASE block of n, without n's lock (a download may take
 * long): false when the block changed meanwhile, to be read again. Under lock. */
static bool read_base_block(struct stage_node *n, size_t index, unsigned char *buf,
			    size_t len, uint64_t pos, int *err)
{
	struct stage_base *base = base_hold(n->base);
	uint64_t gen = n->blocks[index].gen;
	bool same;

	pthread_mutex_unlock(&n->lock);
	*err = base_read(base, pos, len, buf);
	pthread_mutex_lock(&n->lock);
	same = n->base == base && index < n->nblocks && n->blocks[index].gen == gen &&
	       n->blocks[index].state == BLOCK_BASE;
	base_put(base);
	return same;
}

/* Reads of a changed node, block by block; never a commit while a block's bytes are
 * here. Under lock (dropped while the base's bytes download). */
static ssize_t read_changed(struct stage_node *n, unsigned char *buf, size_t len,
			    uint64_t offset)
{
	size_t bs = n->st->cfg.block_size, done = 0;
	int err;

	if (len > INT_MAX)
		len = INT_MAX;
	while (done < len && offset + done < n->size) {
		uint64_t pos = offset + done;
		size_t index = (size_t)(pos / bs), in = (size_t)(pos - (uint64_t)index * bs);
		size_t chunk = bs - in < len - done ? bs - in : len - done;
		struct stage_block *b = &n->blocks[index];

		if (chunk > n->size - pos)
			chunk = (size_t)(n->size - pos);
		if (b->state == BLOCK_BASE) {
			if (!read_base_block(n, index, buf + done, chunk, pos, &err))
				continue;
		} else if (b->state == BLOCK_DIRTY || b->resident) {
			b->used = ++n->clock;
			err = staging_read(n, b, buf + done, chunk, pos);
		} else if (n->local) {
			err = -EIO; /* its bytes went with the deleted blob */
		} else if (n->busy) {
			pthread_cond_wait(&n->idle, &n->lock);
			continue;
		} else {
			/* Uploaded, and its kept copy dropped for room: only a commit makes
			 * its bytes readable. */
			err = commit_locked(n);
			if (!err)
				continue; /* BASE now */
		}
		if (err)
			return err;
		done += chunk;
	}
	return (ssize_t)done;
}

ssize_t stage_read(struct stage_node *n, void *buf, size_t len, uint64_t offset)
{
	struct stage_base *base;
	ssize_t got;

	pthread_mutex_lock(&n->lock);
	if (!n->data_dirty) {
		base = base_hold(n->base);
		pthread_mutex_unlock(&n->lock);
		got = read_base(n, base, buf, len, offset);
		base_put(base);
		return got;
	}
	reap(n);
	got = read_changed(n, buf, len, offset);
	pthread_mutex_unlock(&n->lock);
	return got;
}

ssize_t stage_write(struct stage_node *n, const void *buf, size_t len, uint64_t offset)
{
	size_t bs = n->st->cfg.block_size, done = 0;
	uint64_t end = offset + len;
	int err;

	if (end < offset || end > (uint64_t)STAGE_MAX_BLOCKS * bs)
		return -EFBIG;
	if (len == 0)
		return 0;
	lock_idle(n);
	reap(n);
	err = ensure_fd(n);
	if (!err)
		err = grid_load(n);
	if (!err && end > n->size)
		err = set_size(n, end);
	while (!err && done < len) {
		uint64_t pos = offset + done;
		size_t index = (size_t)(pos / bs), in = (size_t)(pos - (uint64_t)index * bs);
		size_t chunk = bs - in < len - done ? bs - in : len - done;
		struct stage_block *b;

		err = make_dirty(n, index, in == 0 && chunk == block_len(n, index));
		if (err)
			break;
		err = util_pwrite_full(n->fd, (const char *)buf + done, chunk, pos);
		if (err)
			break;
		b = &n->blocks[index];
		set_resident(n, b);
		b->gen = ++n->gen_seq;
		b->used = ++n->clock;
		if (in <= b->covered && in + chunk > b->covered)
			b->covered = (uint32_t)(in + chunk);
		/* Written from its start to its end: it will not change soon, send it. */
		if (b->covered == bs && !n->local)
			err = submit(n, index);
		done += chunk;
	}
	if (done) {
		touch(n);
		publish(n);
	}
	if (!err)
		err = relieve_pressure(n);
	pthread_mutex_unlock(&n->lock);
	return err ? err : (ssize_t)len;
}

int stage_truncate(struct stage_node *n, uint64_t size)
{
	int err;

	lock_idle(n);
	reap(n);
	err = grid_load(n);
	if (!err)
		err = set_size(n, size);
	publish(n);
	pthread_mutex_unlock(&n->lock);
	return err;
}

int stage_allocate(struct stage_node *n, uint64_t size)
{
	int err;

	lock_idle(n);
	reap(n);
	err = grid_load(n);
	if (!err && size > n->size)
		err = set_size(n, size);
	publish(n);
	pthread_mutex_unlock(&n->lock);
	return err;
}

void stage_set_mtime(struct stage_node *n, int64_t sec, uint32_t nsec)
{
	lock_idle(n);
	n->mtime = sec;
	n->mtime_nsec = nsec;
	n->meta_dirty = true;
	n->failure_told = false;
	publish(n);
	pthread_mutex_unlock(&n->lock);
}

int stage_commit(struct stage_node *n)
{
	int err;

	lock_idle(n);
	err = commit_locked(n);
	pthread_mutex_unlock(&n->lock);
	return err;
}

int stage_unlink(struct stage *st, const char *path)
{
	struct stage_node *n = node_find(st, path);
	int err;

	if (n) {
		lock_idle(n);
		wait_inflight(n); /* no block may land after the delete */
		busy_begin(n);
	}
	err = store_remove(st->cfg.store, path, NULL);
	if (n) {
		busy_end(n);
		if (!err || err == -ENOENT) {
			node_detach(n);
			err = 0;
		}
		pthread_mutex_unlock(&n->lock);
		node_put(n);
	}
	return err;
}

static void lock_pair(struct stage_node *a, struct stage_node *b)
{
	if (a && b && (uintptr_t)b < (uintptr_t)a) {
		struct stage_node *swap = a;

		a = b;
		b = swap;
	}
	if (a)
		pthread_mutex_lock(&a->lock);
	if (b)
		pthread_mutex_lock(&b->lock);
}

static void unlock_pair(struct stage_node *a, struct stage_node *b)
{
	if (a)
		pthread_mutex_unlock(&a->lock);
	if (b)
		pthread_mutex_unlock(&b->lock);
}

/* Takes both locks (either may be NULL) once neither node is busy. */
static void lock_pair_idle(struct stage_node *a, struct stage_node *b)
{
	for (;;) {
		struct stage_node *busy, *other;

		lock_pair(a, b);
		busy = a && a->busy ? a : b && b->busy ? b : NULL;
		if (!busy)
			return;
		other = busy == a ? b : a;
		if (other)
			pthread_mutex_unlock(&other->lock);
		while (busy->busy)
			pthread_cond_wait(&busy->idle, &busy->lock);
		pthread_mutex_unlock(&busy->lock);
	}
}

static bool has_inflight(struct stage_node *n)
{
	bool any;

	pthread_mutex_lock(&n->done_lock);
	any = n->inflight > 0;
	pthread_mutex_unlock(&n->done_lock);
	return any;
}

/* Locks src and dst (either may be NULL) with src committed and no upload of dst in
 * flight, so the copy takes what src's handles wrote and no block of dst lands after
 * it. Nothing is locked on failure. */
static int rename_settle(struct stage_node *src, struct stage_node *dst)
{
	int err;

	for (;;) {
		if (src) {
			lock_idle(src);
			err = commit_locked(src);
			pthread_mutex_unlock(&src->lock);
			if (err)
				return err;
		}
		if (dst) {
			lock_idle(dst);
			wait_inflight(dst);
			pthread_mutex_unlock(&dst->lock);
		}
		lock_pair_idle(src, dst);
		if ((!src || src->local || (!src->data_dirty && !src->meta_dirty)) &&
		    (!dst || !has_inflight(dst)))
			return 0;
		unlock_pair(src, dst); /* written to meanwhile: again */
	}
}

static void move_begin(struct stage *st, struct stage_move *move)
{
	pthread_mutex_lock(&st->table_lock);
	move->next = st->moves;
	st->moves = move;
	pthread_mutex_unlock(&st->table_lock);
}

static void move_end(struct stage *st, struct stage_move *move)
{
	pthread_mutex_lock(&st->table_lock);
	for (struct stage_move **link = &st->moves; *link; link = &(*link)->next) {
		if (*link == move) {
			*link = move->next;
			break;
		}
	}
	pthread_mutex_unlock(&st->table_lock);
}

/* The moved node now stands for the object at to, whose attributes are attr (NULL
 * when they could not be read). A node of to that an open made meanwhile stands for
 * the version the rename replaced: it leaves the table. Under n's lock. */
static void node_move(struct stage_node *n, const char *to, const struct store_attr *attr)
{
	struct stage *st = n->st;
	struct stage_node *other;
	struct stage_base *base;
	char *path = strdup(to);
	int err;

	if (!path) {
		log_error("%s moved to %s, but its open handles cannot follow", n->path, to);
		node_detach(n);
		return;
	}
	pthread_mutex_lock(&st->table_lock);
	if (n->in_table) {
		table_remove(st, n);
		other = table_find(st, path);
		if (other)
			table_remove(st, other);
		free(n->path);
		n->path = path;
		table_insert(st, n);
	} else {
		free(n->path);
		n->path = path;
	}
	pthread_mutex_unlock(&st->table_lock);
	/* The copy is a new version with the same bytes: its ETag, and no block ids
	 * known yet. (A node with changes here is local: its ids no longer matter.) */
	if (!n->data_dirty) {
		n->grid_ready = false;
		n->nblocks = 0;
	}
	err = attr ? base_new(st, to, attr->etag, attr->size, &base) : -ENOENT;
	if (err) {
		log_warn("%s: cannot follow the moved version: %s", to, strerror(-err));
		return;
	}
	base_put(n->base);
	n->base = base;
	/* Later opens of to compare their lookup with this version. */
	meta_invalidate(st->cfg.meta, to);
	meta_put_attr(st->cfg.meta, to, attr);
	publish(n);
}

/* The store's rename, or the copy and the delete of one, with no node lock held: they
 * may take long (a copy is polled until done). The nodes are busy meanwhile. */
static int rename_objects(struct stage *st, const char *from, const char *to, bool noreplace,
			  struct stage_node *src, struct store_attr *attr, bool *have_attr)
{
	struct store_cond cond = { .if_none = noreplace };
	int err;

	err = store_rename(st->cfg.store, from, to, false, noreplace, attr);
	if (err != -EOPNOTSUPP) {
		*have_attr = !err;
		return err;
	}
	err = store_copy(st->cfg.store, from, to, noreplace ? &cond : NULL);
	if (err)
		return err;
	err = store_remove(st->cfg.store, from, NULL);
	if (err && err != -ENOENT) {
		log_error("rename of %s to %s: copied, but the original could not be removed: %s",
			  from, to, strerror(-err));
		return err;
	}
	*have_attr = src && store_stat(st->cfg.store, to, attr) == 0;
	return 0;
}

static void set_busy(struct stage_node *n, bool busy)
{
	if (!n)
		return;
	n->busy = busy;
	if (!busy)
		pthread_cond_broadcast(&n->idle);
}

int stage_rename(struct stage *st, const char *from, const char *to, bool noreplace)
{
	struct stage_node *src = node_find(st, from), *dst = node_find(st, to);
	struct stage_move move = { .to = to };
	struct store_attr attr;
	bool have_attr = false;
	int err;

	if (dst == src && dst) {
		node_put(dst);
		dst = NULL;
	}
	/* libfuse hides a file it still counts open, but every handle of it has closed
	 * (a release it did not wait for): no close is left to delete the hidden copy. */
	if (!src && !dst && stage_hidden_name(to))
		return stage_unlink(st, from);
	err = rename_settle(src, dst);
	if (!err) {
		set_busy(src, true);
		set_busy(dst, true);
		move.node = src;
		if (src)
			move_begin(st, &move);
		unlock_pair(src, dst);
		err = rename_objects(st, from, to, noreplace, src, &attr, &have_attr);
		lock_pair(src, dst);
		set_busy(src, false);
		set_busy(dst, false);
		if (!err && dst)
			node_detach(dst);
		if (!err && src) {
			node_move(src, to, have_attr ? &attr : NULL);
			/* Deleted but open: what the handles do now goes nowhere. */
			if (stage_hidden_name(to))
				src->local = true;
		}
		if (src)
			move_end(st, &move);
		unlock_pair(src, dst);
	}
	if (dst)
		node_put(dst);
	if (src)
		node_put(src);
	return err;
}

int stage_new(const struct stage_config *cfg, struct stage **out)
{
	const char *dir = cfg->dir && cfg->dir[0] ? cfg->dir : getenv("TMPDIR");
	struct stage *st;
	size_t bufs;
	int err;

	if (!cfg->store || !cfg->cache || !cfg->meta || cfg->block_size < 4096 ||
	    cfg->block_size > UINT32_MAX)
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->cfg = *cfg;
	st->cfg.dir = NULL;
	if (snprintf(st->dir, sizeof(st->dir), "%s", dir && dir[0] ? dir : "/tmp") >=
	    (int)sizeof(st->dir)) {
		free(st);
		return -ENAMETOOLONG;
	}
	bufs = STAGE_UPLOAD_MEMORY / cfg->block_size;
	st->max_bufs = bufs < STAGE_BUFFERS_MIN	  ? STAGE_BUFFERS_MIN
		       : bufs > STAGE_BUFFERS_MAX ? STAGE_BUFFERS_MAX
						  : (unsigned)bufs;
	atomic_init(&st->staged, 0);
	atomic_init(&st->uploading, 0);
	atomic_init(&st->kept, 0);
	st->keep_limit = cfg->limit ? cfg->limit / STAGE_KEEP_SHARE : UINT64_MAX;
	atomic_init(&st->listed, 0);
	pthread_mutex_init(&st->table_lock, NULL);
	pthread_mutex_init(&st->pool_lock, NULL);
	pthread_cond_init(&st->job_cond, NULL);
	pthread_cond_init(&st->buf_cond, NULL);
	for (st->nworkers = 0; st->nworkers < st->max_bufs; st->nworkers++) {
		err = -pthread_create(&st->workers[st->nworkers], NULL, stage_worker, st);
		if (err) {
			stage_free(st);
			return err;
		}
	}
	*out = st;
	return 0;
}

void stage_free(struct stage *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->pool_lock);
	st->stopping = true;
	pthread_cond_broadcast(&st->job_cond);
	pthread_mutex_unlock(&st->pool_lock);
	for (unsigned i = 0; i < st->nworkers; i++)
		pthread_join(st->workers[i], NULL);
	for (unsigned i = 0; i < st->nfree; i++)
		munmap(st->free_bufs[i], st->cfg.block_size);
	pthread_cond_destroy(&st->buf_cond);
	pthread_cond_destroy(&st->job_cond);
	pthread_mutex_destroy(&st->pool_lock);
	pthread_mutex_destroy(&st->table_lock);
	free(st);
}
