/* Tests of fs/: a real FUSE mount of an in-memory fake store, driven through the
 * kernel with stat/readdir/read and the writing calls; the fake store counts uploads
 * and can fail them. A forked child mounts and tests; the parent always
 * unmounts and removes the mount point, even when the child crashes or hangs. */
#include "auth/base/log.h"
#include "cache/cache.h"
#include "cache/meta.h"
#include "fs/fs.h"
#include "fs/stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

#define PAGE_ENTRIES 5000
#define BIG_SIZE (4u << 20)
#define MANY_FILES 6000
#define MANIFEST_FILES 40
#define TEST_UID 1234
#define TEST_GID 5678
#define CHILD_SECONDS 50
#define GATE_SECONDS 5 /* a gated call goes on by itself after this: a failure */

/* The fake store --------------------------------------------------------------- */

/* A committed block: its id and length, in order. */
struct fake_block {
	char id[STORE_BLOCK_ID_MAX];
	size_t size;
};

struct fake_object {
	char *path;
	unsigned char *data;
	size_t size;
	char etag[STORE_ETAG_MAX];
	int64_t mtime;
	uint32_t mtime_nsec;
	bool marker;
	bool symlink;
	struct fake_block *blocks; /* of a committed block list; none for a Put Blob */
	size_t nblocks;
};

/* A block staged with Put Block, not committed yet. */
struct fake_staged {
	char *path;
	char id[STORE_BLOCK_ID_MAX];
	uint64_t offset; /* where put_block said it goes */
	unsigned char *data;
	size_t size;
};

struct fake_store {
	struct store base;
	pthread_mutex_t lock; /* guards objects, count, etag_seq, staged, nstaged */
	struct fake_object *objects;
	size_t count;
	unsigned etag_seq;
	struct fake_staged *staged;
	size_t nstaged;
	atomic_int stats;
	atomic_int lists;
	atomic_int reads;
	atomic_size_t max_read_len;
	atomic_int puts, put_blocks, commits, set_metas, copies, removes;
	atomic_int fail_put_blocks; /* the next this many Put Blocks fail with EIO */
	/* The next this many conditional writes are done, then answered as a retry of
	 * them would be (412 or 409): their first answer was lost. */
	atomic_int lose_answers;
	atomic_int fail_puts; /* the next this many Put Blobs fail with EIO */
	/* The gate: while gate_copies is set, Copy Blob waits until the test opens it. */
	atomic_int gate_copies;
	pthread_mutex_t gate_lock; /* guards the rest */
	pthread_cond_t gate_cond;
	bool gate_open;
	int gate_waiting;
	bool gate_timed_out; /* a gated call waited GATE_SECONDS: nobody opened it */
};

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

/* Adds or replaces an object (content, metadata, no block list) under fake->lock;
 * every write gets a new etag. */
static struct fake_object *fake_set_locked(struct fake_store *fake, const char *path,
					   const void *data, size_t size,
					   const struct store_meta *meta)
{
	struct fake_object *object = fake_find(fake, path);

	if (!object) {
		struct fake_object *objects =
			realloc(fake->objects, (fake->count + 1) * sizeof(*objects));

		if (!objects)
			abort();
		fake->objects = objects;
		object = &fake->objects[fake->count++];
		memset(object, 0, sizeof(*object));
		object->path = strdup(path);
	}
	free(object->data);
	object->data = malloc(size ? size : 1);
	if (!object->path || !object->data)
		abort();
	memcpy(object->data, data, size);
	object->size = size;
	object->marker = meta && meta->is_dir;
	object->symlink = meta && meta->is_symlink;
	object->mtime = meta && meta->has_mtime ? meta->mtime : 1700000000;
	object->mtime_nsec = meta && meta->has_mtime ? meta->mtime_nsec : 0;
	free(object->blocks);
	object->blocks = NULL;
	object->nblocks = 0;
	snprintf(object->etag, sizeof(object->etag), "\"0x%u\"", ++fake->etag_seq);
	return object;
}

static void fake_put(struct fake_store *fake, const char *path, const void *data, size_t size,
		     bool marker)
{
	struct store_meta meta = { .is_dir = marker };

	pthread_mutex_lock(&fake->lock);
	fake_set_locked(fake, path, data, size, &meta);
	pthread_mutex_unlock(&fake->lock);
}

static void object_attr(const struct fake_object *object, struct store_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->size = object->size;
	out->mtime = object->mtime;
	out->mtime_nsec = object->mtime_nsec;
	out->is_dir = object->marker;
	out->is_symlink = object->symlink;
	memcpy(out->etag, object->etag, sizeof(out->etag));
}

/* A copy of the object at path (data included), for checks; false if missing. */
static bool fake_get(struct fake_store *fake, const char *path, struct fake_object *out)
{
	struct fake_object *object;

	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, path);
	if (object) {
		*out = *object;
		out->data = malloc(object->size ? object->size : 1);
		if (!out->data)
			abort();
		memcpy(out->data, object->data, object->size);
		out->path = NULL;
		out->blocks = NULL;
	}
	pthread_mutex_unlock(&fake->lock);
	return object != NULL;
}

/* Whether the object at path holds exactly size bytes equal to data. */
static bool fake_holds(struct fake_store *fake, const char *path, const void *data, size_t size)
{
	struct fake_object copy;
	bool same;

	if (!fake_get(fake, path, &copy))
		return false;
	same = copy.size == size && memcmp(copy.data, data, size) == 0;
	free(copy.data);
	return same;
}

static int fake_stat(struct store *s, const char *path, struct store_attr *out)
{
	struct fake_store *fake = fake_of(s);
	struct fake_object *object;
	int err = -ENOENT;

	atomic_fetch_add(&fake->stats, 1);
	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, path);
	if (object) {
		object_attr(object, out);
		err = 0;
	}
	pthread_mutex_unlock(&fake->lock);
	return err;
}

struct fake_child {
	char name[512];
	struct store_attr attr;
	bool prefix;
};

static int child_cmp(const void *pa, const void *pb)
{
	const struct fake_child *a = pa, *b = pb;
	int r = strcmp(a->name, b->name);

	return r ? r : (int)a->prefix - (int)b->prefix; /* blob "x" before prefix "x/" */
}

/* Children of dir as List Blobs with delimiter=/ reports them: sorted, a prefix once,
 * a marker blob and its prefix both. */
static struct fake_child *fake_children(struct fake_store *fake, const char *dir, size_t *count)
{
	size_t dir_len = strlen(dir), i, n = 0;
	struct fake_child *children = calloc(fake->count + 1, sizeof(*children));

	if (!children)
		abort();
	for (i = 0; i < fake->count; i++) {
		const struct fake_object *object = &fake->objects[i];
		const char *rest = object->path, *slash;
		struct fake_child *child = &children[n];
		size_t k;
		bool seen = false;

		if (dir_len) {
			if (strncmp(rest, dir, dir_len) != 0 || rest[dir_len] != '/')
				continue;
			rest += dir_len + 1;
		}
		slash = strchr(rest, '/');
		if (slash) {
			snprintf(child->name, sizeof(child->name), "%.*s", (int)(slash - rest), rest);
			child->prefix = true;
			child->attr.is_dir = true;
			for (k = 0; k < n; k++)
				if (children[k].prefix && strcmp(children[k].name, child->name) == 0)
					seen = true;
			if (seen)
				continue;
		} else {
			snprintf(child->name, sizeof(child->name), "%s", rest);
			object_attr(object, &child->attr);
		}
		n++;
	}
	qsort(children, n, sizeof(*children), child_cmp);
	*count = n;
	return children;
}

static int fake_list(struct store *s, const char *dir, const char *marker, store_list_fn fn,
		     void *ctx, char *next_marker, size_t next_len)
{
	struct fake_store *fake = fake_of(s);
	struct fake_child *children;
	size_t count, start = marker && marker[0] ? strtoul(marker, NULL, 10) : 0, i;
	int err = 0;

	atomic_fetch_add(&fake->lists, 1);
	pthread_mutex_lock(&fake->lock);
	children = fake_children(fake, dir, &count);
	pthread_mutex_unlock(&fake->lock);
	for (i = start; i < count && i < start + PAGE_ENTRIES && !err; i++) {
		struct store_entry entry = { .name = children[i].name, .attr = children[i].attr };

		err = fn(ctx, &entry);
	}
	if (i < count)
		snprintf(next_marker, next_len, "%zu", i);
	else
		snprintf(next_marker, next_len, "%s", "");
	free(children);
	return err;
}

/* Counted as a listing: it is one List Blobs request in the blob store. */
static int fake_has_children(struct store *s, const char *dir)
{
	struct fake_store *fake = fake_of(s);
	struct fake_child *children;
	size_t count;

	atomic_fetch_add(&fake->lists, 1);
	pthread_mutex_lock(&fake->lock);
	children = fake_children(fake, dir, &count);
	pthread_mutex_unlock(&fake->lock);
	free(children);
	return count > 0;
}

/* Counted as a stat and a listing: the blob store's two requests (sent at once). */
static int fake_lookup(struct store *s, const char *path, struct store_attr *out)
{
	int err = fake_stat(s, path, out), children;

	if (err && err != -ENOENT)
		return err;
	children = fake_has_children(s, path);
	if (children <= 0)
		return children < 0 ? children : err;
	if (err || !out->is_dir)
		memset(out, 0, sizeof(*out));
	out->is_dir = true;
	return 0;
}

static ssize_t fake_read(struct store *s, const char *path, const char *etag, uint64_t offset,
			 size_t len, void *buf)
{
	struct fake_store *fake = fake_of(s);
	struct fake_object *object;
	size_t seen = atomic_load(&fake->max_read_len);
	ssize_t n = 0;

	atomic_fetch_add(&fake->reads, 1);
	while (len > seen && !atomic_compare_exchange_weak(&fake->max_read_len, &seen, len))
		;
	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, path);
	if (!object) {
		n = -ENOENT;
	} else if (etag && strcmp(etag, object->etag) != 0) {
		n = -ESTALE;
	} else if (offset < object->size) {
		n = (ssize_t)(object->size - offset < len ? object->size - offset : len);
		memcpy(buf, object->data + offset, (size_t)n);
	}
	pthread_mutex_unlock(&fake->lock);
	return n;
}

static int fake_probe(struct store *s, char *errbuf, size_t errlen)
{
	(void)s, (void)errbuf, (void)errlen;
	return 0;
}

/* Takes one from a countdown of injected faults: true if there was one left. */
static bool take_one(atomic_int *counter)
{
	int left = atomic_load(counter);

	while (left > 0 && !atomic_compare_exchange_weak(counter, &left, left - 1))
		;
	return left > 0;
}

/* A write that went through, answered as its retry would be when its first answer
 * was lost (see lose_answers). */
static int fake_answer(struct fake_store *store, const struct store_cond *cond, int err)
{
	if (err || !cond || (!cond->if_match && !cond->if_none))
		return err;
	if (!take_one(&store->lose_answers))
		return 0;
	return cond->if_none ? -EEXIST : -ESTALE;
}

/* The condition as the service checks it: -ESTALE (412), -EEXIST (409). */
static int fake_check(const struct fake_object *object, const struct store_cond *cond)
{
	if (cond && cond->if_none && object)
		return -EEXIST;
	if (cond && cond->if_match && (!object || strcmp(object->etag, cond->if_match) != 0))
		return -ESTALE;
	return 0;
}

static void fake_drop_staged(struct fake_store *fake, const char *path)
{
	size_t i = 0;

	while (i < fake->nstaged) {
		if (strcmp(fake->staged[i].path, path) == 0) {
			free(fake->staged[i].path);
			free(fake->staged[i].data);
			fake->staged[i] = fake->staged[--fake->nstaged];
		} else {
			i++;
		}
	}
}

static int fake_op_put(struct store *s, const char *path, const void *data, size_t len,
		       const struct store_meta *meta, const struct store_cond *cond,
		       struct store_attr *out)
{
	struct fake_store *fake = fake_of(s);
	int err;

	atomic_fetch_add(&fake->puts, 1);
	if (take_one(&fake->fail_puts))
		return -EIO;
	pthread_mutex_lock(&fake->lock);
	err = fake_check(fake_find(fake, path), cond);
	if (!err) {
		struct fake_object *object = fake_set_locked(fake, path, data, len, meta);

		fake_drop_staged(fake, path);
		if (out)
			object_attr(object, out);
	}
	pthread_mutex_unlock(&fake->lock);
	return fake_answer(fake, cond, err);
}

static int fake_op_put_block(struct store *s, const char *path, const char *block_id,
			     uint64_t offset, const void *data, size_t len)
{
	struct fake_store *fake = fake_of(s);
	struct fake_staged *staged;

	atomic_fetch_add(&fake->put_blocks, 1);
	if (take_one(&fake->fail_put_blocks))
		return -EIO;
	pthread_mutex_lock(&fake->lock);
	staged = realloc(fake->staged, (fake->nstaged + 1) * sizeof(*staged));
	if (!staged)
		abort();
	fake->staged = staged;
	staged = &fake->staged[fake->nstaged++];
	staged->path = strdup(path);
	snprintf(staged->id, sizeof(staged->id), "%s", block_id);
	staged->offset = offset;
	staged->data = malloc(len ? len : 1);
	if (!staged->path || !staged->data)
		abort();
	memcpy(staged->data, data, len);
	staged->size = len;
	pthread_mutex_unlock(&fake->lock);
	return 0;
}

/* Where a listed block's bytes are: the latest staged block of that id, else the
 * object's committed one. NULL when neither (the service: InvalidBlockList), or when
 * the staged block was put for another place than at (store.h: blocks lie end to
 * end). */
static const unsigned char *fake_block_bytes(struct fake_store *fake, const char *path,
					     const struct fake_object *object, const char *id,
					     size_t at, size_t *size)
{
	size_t offset = 0;

	for (size_t i = fake->nstaged; i-- > 0;) {
		if (strcmp(fake->staged[i].path, path) == 0 && strcmp(fake->staged[i].id, id) == 0) {
			*size = fake->staged[i].size;
			return fake->staged[i].offset == at ? fake->staged[i].data : NULL;
		}
	}
	for (size_t i = 0; object && i < object->nblocks; i++) {
		if (strcmp(object->blocks[i].id, id) == 0) {
			*size = object->blocks[i].size;
			return object->data + offset;
		}
		offset += object->blocks[i].size;
	}
	return NULL;
}

static int fake_op_commit(struct store *s, const char *path, const char *const *block_ids,
			  size_t nblocks, const struct store_meta *meta,
			  const struct store_cond *cond, struct store_attr *out)
{
	struct fake_store *fake = fake_of(s);
	struct fake_object *object;
	struct fake_block *blocks = calloc(nblocks + 1, sizeof(*blocks));
	unsigned char *data = NULL;
	size_t total = 0;
	int err;

	if (!blocks)
		abort();
	atomic_fetch_add(&fake->commits, 1);
	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, path);
	err = fake_check(object, cond);
	for (size_t i = 0; i < nblocks && !err; i++) {
		size_t size;
		const unsigned char *bytes = fake_block_bytes(fake, path, object, block_ids[i], total,
							       &size);
		unsigned char *grown = bytes ? realloc(data, total + size + 1) : NULL;

		if (!bytes) {
			err = -EIO;
			break;
		}
		if (!grown)
			abort();
		data = grown;
		memcpy(data + total, bytes, size);
		total += size;
		snprintf(blocks[i].id, sizeof(blocks[i].id), "%s", block_ids[i]);
		blocks[i].size = size;
	}
	if (!err) {
		object = fake_set_locked(fake, path, data ? data : (unsigned char *)"", total, meta);
		object->blocks = blocks;
		object->nblocks = nblocks;
		blocks = NULL;
		fake_drop_staged(fake, path);
		if (out)
			object_attr(object, out);
	}
	pthread_mutex_unlock(&fake->lock);
	free(data);
	free(blocks);
	return fake_answer(fake, cond, err);
}

static int fake_op_get_blocks(struct store *s, const char *path, const char *etag,
			      struct store_block **out, size_t *nblocks)
{
	struct fake_store *fake = fake_of(s);
	struct fake_object *object;
	int err = 0;

	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, path);
	if (!object || (etag && strcmp(etag, object->etag) != 0)) {
		err = object || etag ? -ESTALE : -ENOENT;
	} else {
		*out = calloc(object->nblocks + 1, sizeof(**out));
		if (!*out)
			abort();
		for (size_t i = 0; i < object->nblocks; i++) {
			memcpy((*out)[i].id, object->blocks[i].id, sizeof((*out)[i].id));
			(*out)[i].size = object->blocks[i].size;
		}
		*nblocks = object->nblocks;
	}
	pthread_mutex_unlock(&fake->lock);
	return err;
}

static int fake_op_set_meta(struct store *s, const char *path, const struct store_meta *meta,
			    const struct store_cond *cond, struct store_attr *out)
{
	struct fake_store *fake = fake_of(s);
	struct fake_object *object;
	int err;

	atomic_fetch_add(&fake->set_metas, 1);
	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, path);
	err = object ? fake_check(object, cond) : -ENOENT;
	if (!err) {
		object->marker = meta->is_dir;
		object->symlink = meta->is_symlink;
		object->mtime = meta->has_mtime ? meta->mtime : 1700000000;
		object->mtime_nsec = meta->has_mtime ? meta->mtime_nsec : 0;
		snprintf(object->etag, sizeof(object->etag), "\"0x%u\"", ++fake->etag_seq);
		if (out)
			object_attr(object, out);
	}
	pthread_mutex_unlock(&fake->lock);
	return fake_answer(fake, cond, err);
}

/* Holds a gated call until the test opens the gate. */
static void fake_gate(struct fake_store *fake)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += GATE_SECONDS;
	pthread_mutex_lock(&fake->gate_lock);
	fake->gate_waiting++;
	pthread_cond_broadcast(&fake->gate_cond);
	while (!fake->gate_open) {
		if (pthread_cond_timedwait(&fake->gate_cond, &fake->gate_lock, &until) == ETIMEDOUT) {
			fake->gate_timed_out = true;
			break;
		}
	}
	fake->gate_waiting--;
	pthread_mutex_unlock(&fake->gate_lock);
}

static void gate_close(struct fake_store *store)
{
	pthread_mutex_lock(&store->gate_lock);
	store->gate_open = false;
	store->gate_timed_out = false;
	atomic_store(&store->gate_copies, 1);
	pthread_mutex_unlock(&store->gate_lock);
}

/* Waits until a gated call waits at the gate: false when none came. */
static bool gate_reached(struct fake_store *store)
{
	struct timespec until;
	bool reached;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += GATE_SECONDS;
	pthread_mutex_lock(&store->gate_lock);
	while (!store->gate_waiting &&
	       pthread_cond_timedwait(&store->gate_cond, &store->gate_lock, &until) == 0)
		;
	reached = store->gate_waiting > 0;
	pthread_mutex_unlock(&store->gate_lock);
	return reached;
}

/* Opens the gate; whether every call it held was still held (none gave up waiting). */
static bool gate_release(struct fake_store *store)
{
	bool held;

	pthread_mutex_lock(&store->gate_lock);
	atomic_store(&store->gate_copies, 0);
	store->gate_open = true;
	held = !store->gate_timed_out;
	pthread_cond_broadcast(&store->gate_cond);
	pthread_mutex_unlock(&store->gate_lock);
	return held;
}

static int fake_op_copy(struct store *s, const char *from, const char *to,
			const struct store_cond *cond)
{
	struct fake_store *fake = fake_of(s);
	struct fake_object *object, copy;
	struct store_meta meta;
	int err;

	atomic_fetch_add(&fake->copies, 1);
	if (atomic_load(&fake->gate_copies))
		fake_gate(fake);
	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, from);
	err = object ? fake_check(fake_find(fake, to), cond) : -ENOENT;
	if (!err) {
		copy = *object; /* fake_set_locked may move the array */
		meta = (struct store_meta){ .is_dir = copy.marker, .is_symlink = copy.symlink,
					    .has_mtime = true, .mtime = copy.mtime,
					    .mtime_nsec = copy.mtime_nsec };
		copy.data = malloc(copy.size ? copy.size : 1);
		if (!copy.data)
			abort();
		memcpy(copy.data, object->data, copy.size);
		fake_set_locked(fake, to, copy.data, copy.size, &meta);
		free(copy.data);
	}
	pthread_mutex_unlock(&fake->lock);
	return err;
}

static int fake_op_remove(struct store *s, const char *path, const struct store_cond *cond)
{
	struct fake_store *fake = fake_of(s);
	struct fake_object *object;
	int err;

	atomic_fetch_add(&fake->removes, 1);
	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, path);
	err = object ? fake_check(object, cond) : -ENOENT;
	if (!err) {
		free(object->path);
		free(object->data);
		free(object->blocks);
		*object = fake->objects[--fake->count];
		fake_drop_staged(fake, path);
	}
	pthread_mutex_unlock(&fake->lock);
	return err;
}

static void fake_destroy(struct store *s)
{
	struct fake_store *fake = fake_of(s);
	size_t i;

	for (i = 0; i < fake->count; i++) {
		free(fake->objects[i].path);
		free(fake->objects[i].data);
		free(fake->objects[i].blocks);
	}
	for (i = 0; i < fake->nstaged; i++) {
		free(fake->staged[i].path);
		free(fake->staged[i].data);
	}
	free(fake->staged);
	free(fake->objects);
	pthread_mutex_destroy(&fake->lock);
	pthread_cond_destroy(&fake->gate_cond);
	pthread_mutex_destroy(&fake->gate_lock);
	free(fake);
}

static const struct store_ops fake_ops = {
	.stat = fake_stat,
	.list = fake_list,
	.read = fake_read,
	.probe = fake_probe,
	.has_children = fake_has_children,
	.lookup = fake_lookup,
	.put = fake_op_put,
	.put_block = fake_op_put_block,
	.commit = fake_op_commit,
	.get_blocks = fake_op_get_blocks,
	.set_meta = fake_op_set_meta,
	.copy = fake_op_copy,
	.remove = fake_op_remove,
	.destroy = fake_destroy,
};

/* The fixture ------------------------------------------------------------------ */

static char mnt[64];
static struct fake_store *fake;
static unsigned char *big_data;
static atomic_int fuse_getattrs; /* getattr and lookup calls reaching fs/ */
static int (*real_getattr)(const char *, struct stat *, struct fuse_file_info *);

static int counting_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	atomic_fetch_add(&fuse_getattrs, 1);
	return real_getattr(path, st, fi);
}

static atomic_int fuse_releases; /* release calls fs/ has finished */
static int (*real_release)(const char *, struct fuse_file_info *);

static int counting_release(const char *path, struct fuse_file_info *fi)
{
	int err = real_release(path, fi);

	atomic_fetch_add(&fuse_releases, 1);
	return err;
}

/* Waits (up to 5 s) for fs/ to have finished more than before releases. */
static bool releases_pass(int before)
{
	for (int waited = 0; waited < 5000; waited++) {
		if (atomic_load(&fuse_releases) > before)
			return true;
		usleep(1000);
	}
	return false;
}

__attribute__((format(printf, 2, 0)))
static void test_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	if (level != FUSE_LOG_DEBUG || getenv("FERRY_TEST_DEBUG"))
		vfprintf(stderr, fmt, ap);
}

static void fill_pattern(unsigned char *data, size_t size, unsigned seed)
{
	size_t i;

	for (i = 0; i < size; i++) {
		seed = seed * 1103515245u + 12345u;
		data[i] = (unsigned char)(seed >> 16);
	}
}

/* A new buffer of size patterned bytes (fill_pattern). */
static unsigned char *pattern_new(size_t size, unsigned seed)
{
	unsigned char *data = malloc(size);

	if (!data)
		abort();
	fill_pattern(data, size, seed);
	return data;
}

static void fixture_objects(void)
{
	static const char hello[] = "hello, world\n";
	char path[600], name[300];
	int i;

	fake_put(fake, "hello.txt", hello, sizeof(hello) - 1, false);
	fake_put(fake, "big.bin", big_data, BIG_SIZE, false);
	fake_put(fake, "change.bin", big_data, BIG_SIZE, false);
	fake_put(fake, "dir/a.txt", "a", 1, false);
	fake_put(fake, "dir/b.txt", "bb", 2, false);
	fake_put(fake, "marker_only", "", 0, true);
	fake_put(fake, "both", "", 0, true);
	fake_put(fake, "both/inner.txt", "i", 1, false);
	fake_put(fake, "prefix_only/x.txt", "x", 1, false);
	fake_put(fake, "shadow", "file", 4, false);
	fake_put(fake, "shadow/in.txt", "in", 2, false);
	fake_put(fake, "weird/ok.txt", "ok", 2, false);
	fake_put(fake, "weird/..", "dots", 4, false);
	fake_put(fake, "weird//empty", "e", 1, false); /* a child named "" */
	memset(name, 'n', 300);
	name[299] = '\0';
	snprintf(path, sizeof(path), "weird/%s", name);
	fake_put(fake, path, "long", 4, false);
	for (i = 0; i < MANIFEST_FILES; i++) {
		snprintf(path, sizeof(path), "manifest/f%02d", i);
		fake_put(fake, path, "f", 1, false);
	}
	for (i = 0; i < MANY_FILES; i++) {
		snprintf(path, sizeof(path), "many/f%05d", i);
		fake_put(fake, path, "m", 1, false);
	}
	/* Written by another client, for the tests of writes and symlinks. (The mount
	 * keeps what a listing said of a name for entry_timeout, so objects made behind
	 * its back are made before it looks.) */
	fake_put(fake, "conflict.txt", "old", 3, false);
	fake_put(fake, "links/x", "../hello.txt", 12, false);
	pthread_mutex_lock(&fake->lock);
	fake_find(fake, "links/x")->symlink = true;
	fake_find(fake, "links/x")->mtime_nsec = 5;
	pthread_mutex_unlock(&fake->lock);
	{
		unsigned char *data = pattern_new(4u << 20, 13);

		fake_put(fake, "whole.bin", data, 3u << 20, false);
		free(data);
		data = pattern_new(3u << 20, 14);
		fake_put(fake, "fail.bin", data, 3u << 20, false);
		free(data);
	}
}

static void mnt_path(char *out, size_t len, const char *rel)
{
	snprintf(out, len, "%s/%s", mnt, rel);
}

/* Names of a directory, sorted and joined by ' ', with 'd' after directory names. */
static void dir_names(const char *rel, char *out, size_t len)
{
	char path[256], *names[64];
	struct dirent *entry;
	size_t count = 0, used = 0, i, j;
	DIR *dir;

	out[0] = '\0';
	mnt_path(path, sizeof(path), rel);
	dir = opendir(path);
	CHECK(dir != NULL);
	if (!dir)
		return;
	while ((entry = readdir(dir)) != NULL && count < 64) {
		names[count] = malloc(strlen(entry->d_name) + 2);
		if (!names[count])
			abort();
		snprintf(names[count], strlen(entry->d_name) + 2, "%s%s", entry->d_name,
			 entry->d_type == DT_DIR ? "/" : "");
		count++;
	}
	closedir(dir);
	for (i = 1; i < count; i++)
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *swap = names[j];

			names[j] = names[j - 1];
			names[j - 1] = swap;
		}
	for (i = 0; i < count; i++) {
		int n = snprintf(out + used, len - used, "%s%s", i ? " " : "", names[i]);

		if (n > 0 && (size_t)n < len - used)
			used += (size_t)n;
		free(names[i]);
	}
}

/* Cases ------------------------------------------------------------------------ */

static void root_is_a_directory(void)
{
	struct stat st;

	CHECK(stat(mnt, &st) == 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK((st.st_mode & 07777) == 0755);
	CHECK(st.st_nlink == 2);
	CHECK(st.st_uid == TEST_UID && st.st_gid == TEST_GID);
}

static void file_attributes_come_from_the_store(void)
{
	char path[256];
	struct stat st;

	mnt_path(path, sizeof(path), "hello.txt");
	CHECK(stat(path, &st) == 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK((st.st_mode & 07777) == 0644);
	CHECK(st.st_nlink == 1);
	CHECK(st.st_size == 13);
	CHECK(st.st_blocks == 1);
	CHECK(st.st_blksize == (1 << 20));
	CHECK(st.st_mtime == 1700000000);
	CHECK(st.st_ctime == 1700000000 && st.st_atime == 1700000000);
	CHECK(st.st_uid == TEST_UID && st.st_gid == TEST_GID);
	mnt_path(path, sizeof(path), "big.bin");
	CHECK(stat(path, &st) == 0);
	CHECK(st.st_size == BIG_SIZE);
	CHECK(st.st_blocks == BIG_SIZE / 512);
}

static void directories_exist_by_marker_or_prefix(void)
{
	/* Not "shadow": a file whose name is also a prefix is a directory only once a
	 * listing has said so (a lookup asks store_stat() alone). */
	const char *dirs[] = { "marker_only", "prefix_only", "both", "dir" };
	char path[256];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		mnt_path(path, sizeof(path), dirs[i]);
		CHECK(stat(path, &st) == 0);
		CHECK(S_ISDIR(st.st_mode));
		CHECK((st.st_mode & 07777) == 0755);
		CHECK(st.st_nlink == 2);
	}
	mnt_path(path, sizeof(path), "prefix_only/x.txt");
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
}

static void missing_names_are_enoent_and_cost_one_lookup(void)
{
	char path[256];
	struct stat st;
	int stats, lists;

	mnt_path(path, sizeof(path), "dir/nope");
	stats = atomic_load(&fake->stats);
	lists = atomic_load(&fake->lists);
	CHECK(stat(path, &st) == -1 && errno == ENOENT);
	CHECK(stat(path, &st) == -1 && errno == ENOENT);
	CHECK(atomic_load(&fake->stats) - stats <= 1);
	CHECK(atomic_load(&fake->lists) - lists <= 1);
}

/* Lists dir into names as dir_names() does, counting the log lines that say a name was
 * skipped (log level debug, stderr captured meanwhile). */
static int dir_names_counting_skips(const char *dir, char *names, size_t len)
{
	char log_path[] = "/tmp/ferry-test-fs-log-XXXXXX", text[8192];
	int log_fd = mkstemp(log_path), saved = dup(2), skips = 0;
	ssize_t n;

	if (log_fd < 0 || saved < 0)
		return -1;
	unlink(log_path);
	log_set_level(LOG_LVL_DEBUG);
	dup2(log_fd, 2);
	dir_names(dir, names, len);
	dup2(saved, 2);
	close(saved);
	log_set_level(LOG_LVL_WARN);
	n = pread(log_fd, text, sizeof(text) - 1, 0);
	close(log_fd);
	text[n > 0 ? n : 0] = '\0';
	for (const char *p = text; (p = strstr(p, "skipping")); p++)
		skips++;
	return skips;
}

static void readdir_merges_prefix_and_marker_and_skips_unshowable_names(void)
{
	char names[2048], path[256];
	struct stat st;
	int skips;

	dir_names("", names, sizeof(names));
	CHECK_STR(names, "../ ./ big.bin both/ change.bin conflict.txt dir/ fail.bin hello.txt links/ "
			 "manifest/ many/ marker_only/ prefix_only/ shadow/ weird/ whole.bin");
	mnt_path(path, sizeof(path), "shadow/in.txt");
	CHECK(stat(path, &st) == 0 && st.st_size == 2);
	skips = dir_names_counting_skips("weird", names, sizeof(names));
	CHECK_STR(names, "../ ./ ok.txt");
	CHECK(skips >= 3); /* "..", "" and the 299-byte name */
	dir_names("both", names, sizeof(names));
	CHECK_STR(names, "../ ./ inner.txt");
	dir_names("marker_only", names, sizeof(names));
	CHECK_STR(names, "../ ./");
}

static void ls_l_of_a_6000_entry_dir_costs_two_list_pages_and_no_stat(void)
{
	char path[256];
	struct stat st;
	int lists = atomic_load(&fake->lists), stats, getattrs, entries = 0, i;
	DIR *dir;

	mnt_path(path, sizeof(path), "many");
	dir = opendir(path);
	CHECK(dir != NULL);
	if (!dir)
		return;
	while (readdir(dir) != NULL)
		entries++;
	closedir(dir);
	CHECK(entries == MANY_FILES + 2);
	CHECK(atomic_load(&fake->lists) - lists == 2); /* 5000 + 1000 */

	stats = atomic_load(&fake->stats);
	getattrs = atomic_load(&fuse_getattrs);
	for (i = 0; i < MANY_FILES; i++) {
		snprintf(path, sizeof(path), "%s/many/f%05d", mnt, i);
		CHECK(lstat(path, &st) == 0 && st.st_size == 1);
	}
	CHECK(atomic_load(&fake->stats) == stats);
	printf("lstat of %d entries after readdir: %d getattr/lookup calls reached fs/\n",
	       MANY_FILES, atomic_load(&fuse_getattrs) - getattrs);
	CHECK(atomic_load(&fuse_getattrs) - getattrs == 0); /* readdirplus filled the kernel */

	/* A second listing within entry_timeout is answered from the cache. */
	lists = atomic_load(&fake->lists);
	mnt_path(path, sizeof(path), "many");
	dir = opendir(path);
	entries = 0;
	while (dir && readdir(dir) != NULL)
		entries++;
	if (dir)
		closedir(dir);
	CHECK(entries == MANY_FILES + 2);
	CHECK(atomic_load(&fake->lists) == lists);
}

static void files_opened_by_name_cost_one_listing_of_their_directory(void)
{
	int stats = atomic_load(&fake->stats), lists = atomic_load(&fake->lists), i;
	char path[256];
	struct stat st;

	for (i = MANIFEST_FILES - 1; i >= 0; i--) {
		snprintf(path, sizeof(path), "%s/manifest/f%02d", mnt, i);
		CHECK(stat(path, &st) == 0 && st.st_size == 1);
	}
	mnt_path(path, sizeof(path), "manifest/nope");
	CHECK(stat(path, &st) == -1 && errno == ENOENT);
	/* The lookup of "manifest" itself may list the root; its first child lists it. */
	CHECK(atomic_load(&fake->stats) == stats);
	CHECK(atomic_load(&fake->lists) - lists <= 2);
}

static void reads_return_the_blob_bytes(void)
{
	unsigned char buf[70000];
	char path[256];
	ssize_t n;
	int fd;

	mnt_path(path, sizeof(path), "hello.txt");
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	CHECK(n == 13 && memcmp(buf, "hello, world\n", 13) == 0);
	CHECK(read(fd, buf, sizeof(buf)) == 0);
	CHECK(pread(fd, buf, 10, 100) == 0);
	close(fd);

	mnt_path(path, sizeof(path), "big.bin");
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	n = pread(fd, buf, 65536, 0);
	CHECK(n == 65536 && memcmp(buf, big_data, 65536) == 0);
	n = pread(fd, buf, 1000, BIG_SIZE - 100); /* short at EOF */
	CHECK(n == 100 && memcmp(buf, big_data + BIG_SIZE - 100, 100) == 0);
	n = pread(fd, buf, 5000, 1234567);
	CHECK(n == 5000 && memcmp(buf, big_data + 1234567, 5000) == 0);
	close(fd);
}

struct reader {
	int fd;
	unsigned seed;
	int bad;
};

static void *reader_run(void *arg)
{
	struct reader *r = arg;
	unsigned char buf[8192];
	int i;

	for (i = 0; i < 200; i++) {
		size_t len, offset;

		r->seed = r->seed * 1103515245u + 12345u;
		offset = (r->seed >> 8) % BIG_SIZE;
		len = 1 + (r->seed % sizeof(buf));
		if (offset + len > BIG_SIZE)
			len = BIG_SIZE - offset;
		if (pread(r->fd, buf, len, (off_t)offset) != (ssize_t)len ||
		    memcmp(buf, big_data + offset, len) != 0)
			r->bad++;
	}
	return NULL;
}

static void parallel_reads_return_the_right_bytes(void)
{
	struct reader readers[6];
	pthread_t threads[6];
	char path[256];
	int i;

	mnt_path(path, sizeof(path), "big.bin");
	for (i = 0; i < 6; i++) {
		readers[i] = (struct reader){ .fd = open(path, O_RDONLY), .seed = (unsigned)i + 1 };
		CHECK(readers[i].fd >= 0);
		CHECK(pthread_create(&threads[i], NULL, reader_run, &readers[i]) == 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(threads[i], NULL);
		CHECK(readers[i].bad == 0);
		close(readers[i].fd);
	}
}

static void changed_blob_fails_stale_then_reopen_reads_new_bytes(void)
{
	unsigned char *fresh = malloc(BIG_SIZE), *buf = malloc(BIG_SIZE);
	char path[256];
	ssize_t n, got;
	int fd, reads;

	if (!fresh || !buf)
		abort();
	fill_pattern(fresh, BIG_SIZE, 99);
	mnt_path(path, sizeof(path), "change.bin");
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(pread(fd, buf, 4096, 0) == 4096 && memcmp(buf, big_data, 4096) == 0);
	fake_put(fake, "change.bin", fresh, BIG_SIZE, false); /* same size, new etag */
	errno = 0;
	n = pread(fd, buf, 4096, 2 << 20); /* never read before: must ask the store */
	CHECK(n == -1 && (errno == ESTALE || errno == EIO));
	if (n != -1 || errno != ESTALE)
		printf("read of a changed blob: n=%zd errno=%d (want ESTALE)\n", n, errno);
	close(fd);

	/* The stale read dropped the cached attributes: this open pins the new blob,
	 * and keep_cache=0 drops the old page at offset 0. */
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	for (got = 0; got < (ssize_t)BIG_SIZE; got += n) {
		n = pread(fd, buf + got, BIG_SIZE - (size_t)got, got);
		if (n <= 0)
			break;
	}
	CHECK(got == (ssize_t)BIG_SIZE && memcmp(buf, fresh, BIG_SIZE) == 0);
	close(fd);

	/* Same etag again: keep_cache=1, the pages stay and no read reaches the store. */
	reads = atomic_load(&fake->reads);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(pread(fd, buf, 65536, 0) == 65536 && memcmp(buf, fresh, 65536) == 0);
	close(fd);
	CHECK(atomic_load(&fake->reads) == reads);
	printf("largest read asked of the store: %zu bytes\n", atomic_load(&fake->max_read_len));
	free(fresh);
	free(buf);
}

/* Writes ------------------------------------------------------------------------ */

static char mnt_ro[64], mnt_ow[64]; /* read-only, and conflict=overwrite, mounts */

static void at_path(char *out, size_t len, const char *root, const char *rel)
{
	snprintf(out, len, "%s/%s", root, rel);
}

/* Writes data as the whole file rel (created or truncated); the close's result. */
static int write_file(const char *rel, const void *data, size_t size)
{
	char path[256];
	int fd, err = 0;

	mnt_path(path, sizeof(path), rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	if (write(fd, data, size) != (ssize_t)size)
		err = -1;
	if (close(fd) != 0)
		err = -1;
	return err;
}

/* The whole file rel through the mount, compared with data. */
static bool mount_holds(const char *rel, const void *data, size_t size)
{
	unsigned char *buf = malloc(size + 1);
	char path[256];
	size_t got = 0;
	ssize_t n = 1;
	int fd;

	mnt_path(path, sizeof(path), rel);
	fd = open(path, O_RDONLY);
	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (n > 0 && got <= size) {
		n = pread(fd, buf + got, size + 1 - got, (off_t)got);
		if (n > 0)
			got += (size_t)n;
	}
	close(fd);
	n = got == size && memcmp(buf, data, size) == 0;
	free(buf);
	return n;
}

static bool wait_for(atomic_int *counter, int at_least)
{
	for (int i = 0; i < 200 && atomic_load(counter) < at_least; i++)
		usleep(10000);
	return atomic_load(counter) >= at_least;
}

static void create_makes_the_blob_at_once_and_close_uploads_it(void)
{
	char path[256];
	struct stat st;
	int fd;

	mnt_path(path, sizeof(path), "new.txt");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0);
	CHECK(fake_holds(fake, "new.txt", "", 0)); /* others see it exists */
	CHECK(write(fd, "hello", 5) == 5);
	CHECK(stat(path, &st) == 0 && st.st_size == 5);
	CHECK(close(fd) == 0);
	CHECK(fake_holds(fake, "new.txt", "hello", 5));
	CHECK(mount_holds("new.txt", "hello", 5));
	CHECK(open(path, O_WRONLY | O_CREAT | O_EXCL, 0644) == -1 && errno == EEXIST);
}

/* Creates 20 files f00..f19 in dir through the mount, appending their names to want. */
static void create_twenty(const char *dir, char *want, size_t len)
{
	char path[256];
	int fd;

	for (int i = 0; i < 20; i++) {
		snprintf(path, sizeof(path), "%s/%s/f%02d", mnt, dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		CHECK(fd >= 0);
		CHECK(fd >= 0 && write(fd, "x", 1) == 1);
		CHECK(fd >= 0 && close(fd) == 0);
		snprintf(want + strlen(want), len - strlen(want), " f%02d", i);
	}
}

/* tar x into a listed directory, or into one it made: a create keeps what the listing
 * says of the other names, and a new directory is known to be empty, so the next
 * file's lookup costs nothing; ls shows them all. */
static void files_created_in_a_new_or_listed_directory_cost_no_lookups(void)
{
	char path[256], names[2048], want[2048] = "../ ./";
	int stats, lists;

	dir_names("prefix_only", names, sizeof(names));
	CHECK_STR(names, "../ ./ x.txt");
	stats = atomic_load(&fake->stats);
	lists = atomic_load(&fake->lists);
	create_twenty("prefix_only", want, sizeof(want));
	CHECK(atomic_load(&fake->stats) == stats);
	CHECK(atomic_load(&fake->lists) == lists);
	/* The listing is not whole any more: readdir lists again and shows them. */
	snprintf(want + strlen(want), sizeof(want) - strlen(want), " x.txt");
	dir_names("prefix_only", names, sizeof(names));
	CHECK_STR(names, want);
	CHECK(atomic_load(&fake->lists) == lists + 1);

	mnt_path(path, sizeof(path), "untar");
	stats = atomic_load(&fake->stats);
	lists = atomic_load(&fake->lists);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(want, sizeof(want), "../ ./");
	create_twenty("untar", want, sizeof(want));
	/* mkdir's own lookup is answered by the root's listing */
	CHECK(atomic_load(&fake->stats) == stats);
	CHECK(atomic_load(&fake->lists) == lists);
	dir_names("untar", names, sizeof(names));
	CHECK_STR(names, want);
}

static void a_big_file_uploads_blocks_while_written_and_commits_at_close(void)
{
	size_t size = (5u << 20) + 12345, chunk = 128 << 10;
	unsigned char *data = pattern_new(size, 11);
	int put_blocks = atomic_load(&fake->put_blocks), commits, fd;
	struct fake_object object;
	char path[256];

	mnt_path(path, sizeof(path), "seq.bin");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	commits = atomic_load(&fake->commits);
	for (size_t done = 0; done < size; done += chunk)
		CHECK(write(fd, data + done, size - done < chunk ? size - done : chunk) > 0);
	/* Five whole blocks of 1 MiB went up before any close. */
	CHECK(wait_for(&fake->put_blocks, put_blocks + 5));
	CHECK(atomic_load(&fake->commits) == commits);
	CHECK(fake_holds(fake, "seq.bin", "", 0));
	CHECK(close(fd) == 0);
	CHECK(atomic_load(&fake->commits) == commits + 1);
	CHECK(atomic_load(&fake->put_blocks) == put_blocks + 6);
	CHECK(fake_holds(fake, "seq.bin", data, size));
	CHECK(fake_get(fake, "seq.bin", &object) && object.nblocks == 6);
	free(object.data);
	CHECK(mount_holds("seq.bin", data, size));
	free(data);
}

static void a_second_handle_reads_what_the_first_wrote(void)
{
	char path[256], buf[16];
	struct stat st;
	int fd1, fd2;

	mnt_path(path, sizeof(path), "shared.bin");
	fd1 = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd1 >= 0);
	CHECK(write(fd1, "abcdef", 6) == 6);
	fd2 = open(path, O_RDONLY);
	CHECK(fd2 >= 0);
	CHECK(pread(fd2, buf, sizeof(buf), 0) == 6 && memcmp(buf, "abcdef", 6) == 0);
	CHECK(pwrite(fd1, "XY", 2, 2) == 2);
	CHECK(pread(fd2, buf, sizeof(buf), 0) == 6 && memcmp(buf, "abXYef", 6) == 0);
	CHECK(fstat(fd2, &st) == 0 && st.st_size == 6);
	CHECK(stat(path, &st) == 0 && st.st_size == 6);
	CHECK(fake_holds(fake, "shared.bin", "", 0)); /* nothing committed yet */
	CHECK(close(fd2) == 0);
	CHECK(close(fd1) == 0);
	CHECK(fake_holds(fake, "shared.bin", "abXYef", 6));
}

static void every_close_of_a_writer_commits_also_of_a_dup(void)
{
	char path[256];
	int fd, out;

	/* A shell's `cmd > file`: open(O_TRUNC), dup2 onto stdout, close the original. */
	CHECK(write_file("redir.txt", "old", 3) == 0);
	mnt_path(path, sizeof(path), "redir.txt");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	out = dup(fd);
	CHECK(out >= 0);
	CHECK(close(fd) == 0);
	CHECK(fake_holds(fake, "redir.txt", "", 0)); /* emptied, as close() said */
	CHECK(write(out, "new", 3) == 3);
	CHECK(close(out) == 0);
	CHECK(fake_holds(fake, "redir.txt", "new", 3));
}

static void a_failed_close_is_not_retried_behind_the_callers_back(void)
{
	char path[256];
	int fd, releases;

	CHECK(write_file("told.txt", "old", 3) == 0);
	mnt_path(path, sizeof(path), "told.txt");
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	CHECK(write(fd, "new", 3) == 3);
	atomic_store(&fake->fail_puts, 1);
	releases = atomic_load(&fuse_releases);
	CHECK(close(fd) == -1 && errno == EIO);
	CHECK(releases_pass(releases)); /* the release has run; the store works again */
	CHECK(fake_holds(fake, "told.txt", "old", 3));
	CHECK(mount_holds("told.txt", "old", 3));
}

static void append_writes_at_the_end(void)
{
	char path[256];
	int fd;

	CHECK(write_file("app.txt", "one\n", 4) == 0);
	mnt_path(path, sizeof(path), "app.txt");
	fd = open(path, O_WRONLY | O_APPEND);
	CHECK(fd >= 0);
	CHECK(write(fd, "two\n", 4) == 4);
	CHECK(close(fd) == 0);
	CHECK(fake_holds(fake, "app.txt", "one\ntwo\n", 8));
}

static void truncate_shrinks_and_grows_with_zeros(void)
{
	size_t size = (3u << 20) + (512 << 10), cut = (1u << 20) + (256 << 10) + 3;
	size_t grown = (5u << 20) / 2;
	unsigned char *data = malloc(size), *want = calloc(1, grown);
	char path[256];
	int fd;

	if (!data || !want)
		abort();
	fill_pattern(data, size, 12);
	CHECK(write_file("trunc.bin", data, size) == 0);
	mnt_path(path, sizeof(path), "trunc.bin");
	CHECK(truncate(path, (off_t)cut) == 0); /* by path: in the store at return */
	CHECK(fake_holds(fake, "trunc.bin", data, cut));
	CHECK(truncate(path, (off_t)grown) == 0);
	memcpy(want, data, cut);
	CHECK(fake_holds(fake, "trunc.bin", want, grown));
	CHECK(mount_holds("trunc.bin", want, grown));
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK(ftruncate(fd, 100) == 0);
	CHECK(close(fd) == 0);
	CHECK(fake_holds(fake, "trunc.bin", data, 100));
	free(data);
	free(want);
}

static void a_sparse_write_leaves_zeros_before_it(void)
{
	size_t offset = (5u << 20) / 2 + 10;
	unsigned char *want = calloc(1, offset + 3);
	char path[256];
	int fd;

	if (!want)
		abort();
	memcpy(want + offset, "end", 3);
	mnt_path(path, sizeof(path), "sparse.bin");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, "end", 3, (off_t)offset) == 3);
	CHECK(close(fd) == 0);
	CHECK(fake_holds(fake, "sparse.bin", want, offset + 3));
	CHECK(mount_holds("sparse.bin", want, offset + 3));
	free(want);
}

static void editing_a_range_reuses_the_committed_blocks(void)
{
	size_t size = 4u << 20, at = (2u << 20) + 100;
	unsigned char *data = malloc(size);
	int put_blocks, fd;
	char path[256];

	if (!data)
		abort();
	fill_pattern(data, size, 13);
	CHECK(write_file("edit.bin", data, size) == 0);
	put_blocks = atomic_load(&fake->put_blocks);
	mnt_path(path, sizeof(path), "edit.bin");
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, "XXXX", 4, (off_t)at) == 4);
	CHECK(close(fd) == 0);
	memcpy(data + at, "XXXX", 4);
	CHECK(atomic_load(&fake->put_blocks) == put_blocks + 1); /* the changed block alone */
	CHECK(fake_holds(fake, "edit.bin", data, size));

	/* Written whole by someone else (fixture_objects: the first 3 MiB of the same
	 * pattern): no block list to reuse, all blocks go up. */
	fill_pattern(data, size, 13);
	put_blocks = atomic_load(&fake->put_blocks);
	mnt_path(path, sizeof(path), "whole.bin");
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, "YY", 2, 10) == 2);
	CHECK(close(fd) == 0);
	memcpy(data + 10, "YY", 2);
	CHECK(atomic_load(&fake->put_blocks) == put_blocks + 3);
	CHECK(fake_holds(fake, "whole.bin", data, 3u << 20));
	free(data);
}

static void a_blob_changed_since_open_fails_the_close_unless_overwrite(void)
{
	char path[256];
	int fd;

	mnt_path(path, sizeof(path), "conflict.txt"); /* "old", from fixture_objects */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	fake_put(fake, "conflict.txt", "theirs", 6, false);
	CHECK(write(fd, "mine", 4) == 4);
	errno = 0;
	CHECK(close(fd) == -1 && errno == EIO);
	CHECK(fake_holds(fake, "conflict.txt", "theirs", 6));

	/* A new file someone else creates meanwhile is a conflict too. */
	at_path(path, sizeof(path), mnt_ow, "conflict.txt");
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	fake_put(fake, "conflict.txt", "later", 5, false);
	CHECK(write(fd, "mine", 4) == 4);
	CHECK(close(fd) == 0); /* conflict=overwrite: the last writer wins */
	CHECK(fake_holds(fake, "conflict.txt", "mine", 4));
}

static void a_failed_upload_fails_close_and_fsync_and_keeps_the_old_version(void)
{
	size_t size = 3u << 20;
	unsigned char *old = malloc(size), *data = malloc(size);
	char path[256];
	int fd;

	if (!old || !data)
		abort();
	fill_pattern(old, size, 14); /* fail.bin's bytes in fixture_objects */
	fill_pattern(data, size, 15);
	mnt_path(path, sizeof(path), "fail.bin");

	atomic_store(&fake->fail_put_blocks, 1000);
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	errno = 0;
	CHECK(close(fd) == -1 && errno == EIO);
	CHECK(fake_holds(fake, "fail.bin", old, size));

	/* fsync fails the same way, and once the store is back a retry lands it all. */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	errno = 0;
	CHECK(fsync(fd) == -1 && errno == EIO);
	CHECK(fake_holds(fake, "fail.bin", old, size));
	atomic_store(&fake->fail_put_blocks, 0);
	CHECK(fsync(fd) == 0);
	CHECK(fake_holds(fake, "fail.bin", data, size));
	CHECK(close(fd) == 0);
	CHECK(mount_holds("fail.bin", data, size));
	free(old);
	free(data);
}

/* Objects whose last path component starts with prefix (waiting up to 2 s for it to
 * reach want: libfuse deletes a hidden file after the release, which follows close()
 * asynchronously). */
static int fake_count_named(struct fake_store *store, const char *prefix, int want)
{
	int count = -1;

	for (int tries = 0; tries < 200 && count != want; tries++) {
		if (tries)
			usleep(10000);
		count = 0;
		pthread_mutex_lock(&store->lock);
		for (size_t i = 0; i < store->count; i++) {
			const char *slash = strrchr(store->objects[i].path, '/');
			const char *name = slash ? slash + 1 : store->objects[i].path;

			count += strncmp(name, prefix, strlen(prefix)) == 0;
		}
		pthread_mutex_unlock(&store->lock);
	}
	return count;
}

static void a_commit_sent_twice_after_a_lost_answer_is_not_a_conflict(void)
{
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { 1600000001, 7 } };
	size_t size = (2u << 20) + 5;
	unsigned char *data = malloc(size);
	char path[256];
	int fd;

	if (!data)
		abort();
	fill_pattern(data, size, 16);
	atomic_store(&fake->lose_answers, 1); /* Put Blob of the empty new file */
	mnt_path(path, sizeof(path), "lost.bin");
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	CHECK(fd >= 0);
	CHECK(atomic_load(&fake->lose_answers) == 0);
	CHECK(write(fd, "small", 5) == 5);
	CHECK(close(fd) == 0);
	CHECK(fake_holds(fake, "lost.bin", "small", 5));
	atomic_store(&fake->lose_answers, 1); /* Put Blob of a one-block file */
	CHECK(write_file("lost.bin", "changed", 7) == 0);
	CHECK(fake_holds(fake, "lost.bin", "changed", 7));
	atomic_store(&fake->lose_answers, 1); /* Put Block List */
	CHECK(write_file("lost.bin", data, size) == 0);
	CHECK(fake_holds(fake, "lost.bin", data, size));
	atomic_store(&fake->lose_answers, 1); /* Set Blob Metadata */
	CHECK(utimensat(AT_FDCWD, path, times, 0) == 0);
	CHECK(atomic_load(&fake->lose_answers) == 0);
	free(data);
}

static void unlink_deletes_the_blob_and_open_handles_keep_their_bytes(void)
{
	char path[256], buf[16], names[2048];
	struct stat st;
	int fd, puts;

	CHECK(write_file("gone.txt", "bye", 3) == 0);
	mnt_path(path, sizeof(path), "gone.txt");
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK(unlink(path) == 0);
	CHECK(!fake_holds(fake, "gone.txt", "bye", 3));
	CHECK(stat(path, &st) == -1 && errno == ENOENT);
	CHECK(pread(fd, buf, sizeof(buf), 0) == 3 && memcmp(buf, "bye", 3) == 0);
	/* Kept under libfuse's hidden name until the last close, but not listed. */
	CHECK(fake_count_named(fake, ".fuse_hidden", 1) == 1);
	dir_names("", names, sizeof(names));
	CHECK(strstr(names, "gone.txt") == NULL && strstr(names, ".fuse_hidden") == NULL);
	puts = atomic_load(&fake->puts) + atomic_load(&fake->commits);
	CHECK(pwrite(fd, "!!!!", 4, 1) == 4);
	CHECK(pread(fd, buf, sizeof(buf), 0) == 5 && memcmp(buf, "b!!!!", 5) == 0);
	CHECK(fstat(fd, &st) == 0 && st.st_size == 5);
	CHECK(fsync(fd) == 0);
	CHECK(close(fd) == 0);
	/* Nothing it wrote after the unlink was uploaded, and nothing is left behind. */
	CHECK(atomic_load(&fake->puts) + atomic_load(&fake->commits) == puts);
	CHECK(stat(path, &st) == -1 && errno == ENOENT);
	CHECK(fake_count_named(fake, ".fuse_hidden", 0) == 0);
	CHECK(fake_count_named(fake, "gone.txt", 0) == 0);

	/* The name taken by a new file while the old one is open: the old fd's writes
	 * never reach the new file. */
	CHECK(write_file("gone.txt", "old", 3) == 0);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK(unlink(path) == 0);
	CHECK(write_file("gone.txt", "new", 3) == 0);
	CHECK(pwrite(fd, "OLD", 3, 0) == 3);
	CHECK(close(fd) == 0);
	CHECK(fake_holds(fake, "gone.txt", "new", 3));
	CHECK(mount_holds("gone.txt", "new", 3));
	CHECK(fake_count_named(fake, ".fuse_hidden", 0) == 0);

	/* Unlinked with changes, then its directory moves: it goes along, intact. */
	mnt_path(path, sizeof(path), "hold");
	CHECK(mkdir(path, 0755) == 0);
	CHECK(write_file("hold/zz.unlinked", "0123456789", 10) == 0);
	mnt_path(path, sizeof(path), "hold/zz.unlinked");
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, "AB", 2, 4) == 2);
	CHECK(unlink(path) == 0);
	CHECK(pwrite(fd, "Y", 1, 0) == 1); /* changed after the unlink: local */
	{
		char from[256], to[256];

		mnt_path(from, sizeof(from), "hold");
		mnt_path(to, sizeof(to), "held");
		CHECK(rename(from, to) == 0);
	}
	CHECK(pwrite(fd, "Z", 1, 9) == 1);
	CHECK(pread(fd, buf, sizeof(buf), 0) == 10 && memcmp(buf, "Y123AB678Z", 10) == 0);
	CHECK(close(fd) == 0);
	CHECK(fake_count_named(fake, ".fuse_hidden", 0) == 0);
	CHECK(fake_count_named(fake, "zz.unlinked", 0) == 0);
}

static void mkdir_makes_a_marker_and_rmdir_needs_it_empty(void)
{
	struct fake_object object;
	char path[256];
	struct stat st;

	mnt_path(path, sizeof(path), "newdir");
	CHECK(mkdir(path, 0755) == 0);
	CHECK(fake_get(fake, "newdir", &object) && object.marker && object.size == 0);
	free(object.data);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK(mkdir(path, 0755) == -1 && errno == EEXIST);
	CHECK(write_file("newdir/f", "f", 1) == 0);
	CHECK(rmdir(path) == -1 && errno == ENOTEMPTY);
	mnt_path(path, sizeof(path), "newdir/f");
	CHECK(unlink(path) == 0);
	mnt_path(path, sizeof(path), "newdir");
	CHECK(rmdir(path) == 0);
	CHECK(!fake_get(fake, "newdir", &object));
	CHECK(stat(path, &st) == -1 && errno == ENOENT);
}

static void rename_moves_files_and_whole_directories(void)
{
	char from[256], to[256], names[256];
	struct stat st;
	int fd;

	mnt_path(from, sizeof(from), "mv");
	CHECK(mkdir(from, 0755) == 0);
	mnt_path(from, sizeof(from), "mv/sub");
	CHECK(mkdir(from, 0755) == 0);
	CHECK(write_file("mv/a.txt", "A", 1) == 0);
	CHECK(write_file("mv/sub/b.txt", "B", 1) == 0);
	mnt_path(from, sizeof(from), "mv/a.txt");
	mnt_path(to, sizeof(to), "mv/c.txt");
	CHECK(rename(from, to) == 0);
	CHECK(!fake_holds(fake, "mv/a.txt", "A", 1) && fake_holds(fake, "mv/c.txt", "A", 1));
	mnt_path(from, sizeof(from), "mv/sub/b.txt");
	CHECK(syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == -1 &&
	      errno == EEXIST);
	CHECK(syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE) == -1 &&
	      errno == EINVAL);

	/* A file open with unsaved writes goes with what was written. */
	fd = open(to, O_WRONLY | O_APPEND);
	CHECK(fd >= 0);
	CHECK(write(fd, "more", 4) == 4);
	mnt_path(from, sizeof(from), "mv");
	mnt_path(to, sizeof(to), "moved");
	CHECK(rename(from, to) == 0);
	CHECK(write(fd, "!", 1) == 1);
	CHECK(close(fd) == 0);
	CHECK(fake_holds(fake, "moved/c.txt", "Amore!", 6));
	CHECK(fake_holds(fake, "moved/sub/b.txt", "B", 1));
	CHECK(fake_holds(fake, "moved", "", 0) && fake_holds(fake, "moved/sub", "", 0));
	CHECK(!fake_holds(fake, "mv", "", 0) && !fake_holds(fake, "mv/c.txt", "Amore", 5));
	CHECK(stat(from, &st) == -1 && errno == ENOENT);
	dir_names("moved", names, sizeof(names));
	CHECK_STR(names, "../ ./ c.txt sub/");

	/* Onto a directory that is not empty: refused. */
	mnt_path(from, sizeof(from), "moved/sub");
	mnt_path(to, sizeof(to), "dir");
	CHECK(rename(from, to) == -1 && errno == ENOTEMPTY);
}

/* Commits of any kind the store has seen. */
static int fake_commits(void)
{
	return atomic_load(&fake->commits) + atomic_load(&fake->puts) +
	       atomic_load(&fake->set_metas);
}

static void reads_and_header_patches_of_a_file_being_written_do_not_commit(void)
{
	size_t size = (3u << 20) + 100, chunk = 256 << 10;
	unsigned char *data = pattern_new(size, 21), buf[64];
	int put_blocks = atomic_load(&fake->put_blocks), commits, fd;
	char path[256];

	mnt_path(path, sizeof(path), "hdf.bin");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	commits = fake_commits();
	/* As HDF5 and zip do: write on, then go back to read and patch the header, which
	 * lies in a block already uploaded. */
	for (int round = 0; round < 3; round++) {
		for (size_t done = 0; done < size; done += chunk)
			CHECK(pwrite(fd, data + done, size - done < chunk ? size - done : chunk,
				     (off_t)done) > 0);
		CHECK(wait_for(&fake->put_blocks, put_blocks + 3)); /* blocks 0-2 went up */
		CHECK(pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) &&
		      memcmp(buf, data, sizeof(buf)) == 0);
		data[8] = (unsigned char)('A' + round);
		CHECK(pwrite(fd, data + 8, 1, 8) == 1);
		CHECK(pread(fd, buf, sizeof(buf), (2u << 20) - 10) == (ssize_t)sizeof(buf) &&
		      memcmp(buf, data + (2u << 20) - 10, sizeof(buf)) == 0);
		CHECK(pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) &&
		      memcmp(buf, data, sizeof(buf)) == 0);
		put_blocks = atomic_load(&fake->put_blocks);
	}
	CHECK(fake_commits() == commits); /* only close commits */
	CHECK(close(fd) == 0);
	CHECK(fake_commits() == commits + 1);
	CHECK(fake_holds(fake, "hdf.bin", data, size));
	free(data);
}

static void a_read_of_a_file_being_written_is_no_conflict(void)
{
	size_t size = (2u << 20) + 7;
	unsigned char *data = pattern_new(size, 22), buf[16];
	int put_blocks = atomic_load(&fake->put_blocks), fd;
	char path[256];

	mnt_path(path, sizeof(path), "busy.bin");
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, data, size) == (ssize_t)size);
	CHECK(wait_for(&fake->put_blocks, put_blocks + 2));
	fake_put(fake, "busy.bin", "theirs", 6, false); /* someone else writes it */
	CHECK(pread(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf) &&
	      memcmp(buf, data, sizeof(buf)) == 0);
	errno = 0;
	CHECK(close(fd) == -1 && errno == EIO); /* the conflict is close()'s to report */
	CHECK(fake_holds(fake, "busy.bin", "theirs", 6));
	free(data);
}

/* The races of a rename, on the stage itself: libfuse's path locks keep other calls
 * on the two paths out of a rename, but not the stage's other users. */
static struct cache *test_cache;

struct stage_fixture {
	struct meta_cache *meta;
	struct stage *stage;
};

static bool stage_fixture_new(struct stage_fixture *f)
{
	struct meta_config mcfg = { .attr_timeout = 30, .entry_timeout = 30,
				    .negative_timeout = 30, .max_entries = 1000 };
	struct stage_config scfg = { .store = &fake->base, .cache = test_cache,
				     .block_size = 1 << 20, .limit = 64 << 20 };

	if (meta_new(&mcfg, &f->meta) != 0)
		return false;
	scfg.meta = f->meta;
	return stage_new(&scfg, &f->stage) == 0;
}

static void stage_fixture_free(struct stage_fixture *f)
{
	stage_free(f->stage);
	meta_free(f->meta);
}

/* A handle on path as the store has it now. */
static struct stage_node *stage_handle(struct stage *stage, const char *path, bool writable)
{
	struct stage_node *node = NULL;
	struct store_attr attr;

	CHECK(store_stat(&fake->base, path, &attr) == 0);
	CHECK(stage_open(stage, path, &attr, writable, &node) == 0);
	return node;
}

struct rename_call {
	pthread_t thread;
	struct stage *stage;
	const char *from, *to;
	int result;
};

static void *rename_run(void *arg)
{
	struct rename_call *call = arg;

	call->result = stage_rename(call->stage, call->from, call->to, false);
	return NULL;
}

/* Starts a rename whose copy then waits at the gate. */
static void rename_start(struct rename_call *call, struct stage *stage, const char *from,
			 const char *to)
{
	*call = (struct rename_call){ .stage = stage, .from = from, .to = to, .result = 1 };
	gate_close(fake);
	if (pthread_create(&call->thread, NULL, rename_run, call) != 0)
		abort();
	CHECK(gate_reached(fake));
}

/* Opens the gate and waits for the rename to succeed. */
static void rename_finish(struct rename_call *call)
{
	CHECK(gate_release(fake)); /* nothing since rename_start() waited for the copy */
	pthread_join(call->thread, NULL);
	CHECK(call->result == 0);
}

static void a_rename_waiting_on_its_copy_blocks_no_open_or_read(void)
{
	struct stage_node *node, *same, *other;
	struct stage_fixture f;
	struct rename_call call;
	struct store_attr attr;
	char buf[16];

	fake_put(fake, "st/slow", "slow", 4, false);
	fake_put(fake, "st/other", "other", 5, false);
	CHECK(stage_fixture_new(&f));
	node = stage_handle(f.stage, "st/slow", true);
	CHECK(stage_write(node, "S", 1, 0) == 1); /* the rename commits it first */
	rename_start(&call, f.stage, "st/slow", "st/slowed");
	/* While the copy waits in the store: the same file and another one. */
	same = stage_handle(f.stage, "st/slow", false);
	CHECK(stage_read(same, buf, sizeof(buf), 0) == 4 && memcmp(buf, "Slow", 4) == 0);
	stage_node_attr(node, &attr);
	CHECK(attr.size == 4);
	other = stage_handle(f.stage, "st/other", false);
	CHECK(stage_read(other, buf, sizeof(buf), 0) == 5 && memcmp(buf, "other", 5) == 0);
	rename_finish(&call);
	CHECK(fake_holds(fake, "st/slowed", "Slow", 4));
	CHECK(stage_read(same, buf, sizeof(buf), 0) == 4 && memcmp(buf, "Slow", 4) == 0);
	stage_close(other, false);
	stage_close(same, false);
	stage_close(node, true);
	stage_fixture_free(&f);
}

static void an_open_of_a_rename_target_joins_the_moving_file(void)
{
	struct stage_node *node, *racing, *later;
	struct stage_fixture f;
	struct rename_call call;
	char buf[16];

	fake_put(fake, "st/from", "FROM", 4, false);
	fake_put(fake, "st/to", "OLDTO", 5, false);
	CHECK(stage_fixture_new(&f));
	node = stage_handle(f.stage, "st/from", true);
	rename_start(&call, f.stage, "st/from", "st/to");
	racing = stage_handle(f.stage, "st/to", true); /* looked up before the copy */
	rename_finish(&call);
	/* One node for the path: both handles see the same bytes, and a later open too. */
	CHECK(stage_write(node, "X", 1, 0) == 1);
	CHECK(stage_read(racing, buf, sizeof(buf), 0) == 4 && memcmp(buf, "XROM", 4) == 0);
	later = stage_handle(f.stage, "st/to", false);
	CHECK(later == node && racing == node);
	CHECK(stage_read(later, buf, sizeof(buf), 0) == 4 && memcmp(buf, "XROM", 4) == 0);
	stage_close(later, false);
	stage_close(racing, true);
	stage_close(node, true);
	CHECK(fake_holds(fake, "st/to", "XROM", 4));
	stage_fixture_free(&f);
}

static void *close_run(void *arg)
{
	stage_close(arg, false);
	return NULL;
}

static bool fake_has(const char *path)
{
	bool found;

	pthread_mutex_lock(&fake->lock);
	found = fake_find(fake, path) != NULL;
	pthread_mutex_unlock(&fake->lock);
	return found;
}

/* libfuse hides a file it counts open (unlink while open) and deletes the hidden name
 * after its last release, but with nullpath_ok that release does not wait for the
 * hide: its count can run out meanwhile, and then libfuse never deletes it. */
static void a_hidden_file_goes_with_its_last_close(void)
{
	struct stage_node *node;
	struct stage_fixture f;
	struct rename_call call;
	pthread_t closer;

	fake_put(fake, "hid/a", "A", 1, false);
	fake_put(fake, "hid/b", "B", 1, false);
	fake_put(fake, "hid/c", "C", 1, false);
	CHECK(stage_fixture_new(&f));
	/* Open through the hide, closed after it. */
	node = stage_handle(f.stage, "hid/a", false);
	CHECK(stage_rename(f.stage, "hid/a", "hid/" STAGE_HIDDEN_PREFIX "1", false) == 0);
	CHECK(fake_holds(fake, "hid/" STAGE_HIDDEN_PREFIX "1", "A", 1));
	stage_close(node, false);
	CHECK(!fake_has("hid/" STAGE_HIDDEN_PREFIX "1") && !fake_has("hid/a"));
	/* Closed while the hide copies. */
	node = stage_handle(f.stage, "hid/b", false);
	rename_start(&call, f.stage, "hid/b", "hid/" STAGE_HIDDEN_PREFIX "2");
	if (pthread_create(&closer, NULL, close_run, node) != 0)
		abort();
	rename_finish(&call);
	pthread_join(closer, NULL);
	CHECK(!fake_has("hid/" STAGE_HIDDEN_PREFIX "2") && !fake_has("hid/b"));
	/* Closed before the hide began: the hide is a delete. */
	CHECK(stage_rename(f.stage, "hid/c", "hid/" STAGE_HIDDEN_PREFIX "3", false) == 0);
	CHECK(!fake_has("hid/" STAGE_HIDDEN_PREFIX "3") && !fake_has("hid/c"));
	stage_fixture_free(&f);
}

static void symlinks_keep_their_target_as_content(void)
{
	struct fake_object object;
	char path[256], target[64];
	struct stat st;

	mnt_path(path, sizeof(path), "link");
	CHECK(symlink("hello.txt", path) == 0);
	CHECK(lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && st.st_size == 9);
	CHECK(readlink(path, target, sizeof(target)) == 9 && memcmp(target, "hello.txt", 9) == 0);
	CHECK(fake_get(fake, "link", &object) && object.symlink && object.size == 9);
	free(object.data);
	CHECK(mount_holds("link", "hello, world\n", 13)); /* followed by the kernel */

	/* A listing says so too (readdirplus fills the kernel's attributes from it):
	 * links/x, a symlink from fixture_objects. */
	{
		struct dirent *entry;
		bool seen = false;
		DIR *dir;

		mnt_path(path, sizeof(path), "links");
		dir = opendir(path);
		CHECK(dir != NULL);
		while (dir && (entry = readdir(dir)) != NULL)
			if (strcmp(entry->d_name, "x") == 0)
				seen = entry->d_type == DT_LNK;
		if (dir)
			closedir(dir);
		CHECK(seen);
	}
	mnt_path(path, sizeof(path), "links/x");
	CHECK(lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && st.st_mtim.tv_nsec == 5);
}

static void utimens_keeps_the_mtime_and_chmod_chown_are_accepted(void)
{
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { 1600000000, 123456789 } };
	struct fake_object object;
	char path[256];
	struct stat st;

	CHECK(write_file("times.txt", "t", 1) == 0);
	mnt_path(path, sizeof(path), "times.txt");
	CHECK(utimensat(AT_FDCWD, path, times, 0) == 0);
	CHECK(fake_get(fake, "times.txt", &object) && object.mtime == 1600000000 &&
	      object.mtime_nsec == 123456789);
	free(object.data);
	CHECK(stat(path, &st) == 0 && st.st_mtim.tv_sec == 1600000000 &&
	      st.st_mtim.tv_nsec == 123456789);
	CHECK(chmod(path, 0755) == 0);
	CHECK(chown(path, TEST_UID, TEST_GID) == 0);
	CHECK(fake_holds(fake, "times.txt", "t", 1));

	/* A directory keeps it in its marker, which stays a marker. */
	mnt_path(path, sizeof(path), "timed");
	CHECK(mkdir(path, 0755) == 0);
	CHECK(utimensat(AT_FDCWD, path, times, 0) == 0);
	CHECK(fake_get(fake, "timed", &object) && object.marker && object.mtime == 1600000000);
	free(object.data);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_mtim.tv_sec == 1600000000);
}

static void a_read_only_mount_refuses_changes_with_erofs(void)
{
	char path[256], other[256];

	at_path(path, sizeof(path), mnt_ro, "hello.txt");
	at_path(other, sizeof(other), mnt_ro, "moved.txt");
	CHECK(open(path, O_WRONLY) == -1 && errno == EROFS);
	CHECK(open(path, O_RDWR) == -1 && errno == EROFS);
	CHECK(truncate(path, 0) == -1 && errno == EROFS);
	CHECK(unlink(path) == -1 && errno == EROFS);
	CHECK(rename(path, other) == -1 && errno == EROFS);
	CHECK(open(other, O_WRONLY | O_CREAT, 0644) == -1 && errno == EROFS);
	at_path(path, sizeof(path), mnt_ro, "newdir");
	CHECK(mkdir(path, 0755) == -1 && errno == EROFS);
	at_path(path, sizeof(path), mnt_ro, "dir");
	CHECK(rmdir(path) == -1 && errno == EROFS);
	CHECK(fake_holds(fake, "hello.txt", "hello, world\n", 13));
}

static void statfs_reports_a_large_filesystem(void)
{
	struct statvfs st;

	CHECK(statvfs(mnt, &st) == 0);
	CHECK(st.f_bsize == 4096 && st.f_frsize == 4096);
	CHECK(st.f_blocks == (1ull << 50) / 4096);
	CHECK(st.f_bavail == st.f_blocks);
	CHECK(st.f_namemax == 255);
	CHECK(st.f_ffree > 1000000);
}

/* Mount, run, unmount ---------------------------------------------------------- */

static void *loop_run(void *arg)
{
	struct fuse_loop_config config = { .clone_fd = 0, .max_idle_threads = 10 };

	return (void *)(intptr_t)fuse_loop_mt(arg, &config);
}

struct test_mount {
	const char *dir;
	struct fuse_args args;
	struct fuse *fuse;
	struct fs *fs;
	pthread_t loop;
	bool running;
};

static int mount_start(struct test_mount *m, const char *dir, const struct fs_config *cfg,
		       const struct fuse_operations *ops, bool debug)
{
	static char *argv[] = { "test_fs", "-d", NULL };

	m->dir = dir;
	m->args = (struct fuse_args)FUSE_ARGS_INIT(debug ? 2 : 1, argv);
	if (fs_new(cfg, &m->fs) != 0)
		return -1;
	m->fuse = fuse_new(&m->args, ops, sizeof(*ops), m->fs);
	if (!m->fuse || fuse_mount(m->fuse, dir) != 0)
		return -1;
	if (pthread_create(&m->loop, NULL, loop_run, m->fuse) != 0)
		return -1;
	m->running = true;
	return 0;
}

/* Unmounting ends the session: the loop sees ENODEV and returns. */
static void mount_stop(struct test_mount *m)
{
	void *loop_result = NULL;

	if (m->running) {
		if (umount2(m->dir, 0) != 0) {
			perror("umount");
			umount2(m->dir, MNT_DETACH);
		}
		pthread_join(m->loop, &loop_result);
		CHECK(loop_result == NULL);
		fuse_unmount(m->fuse);
	}
	if (m->fuse)
		fuse_destroy(m->fuse);
	fuse_opt_free_args(&m->args);
	fs_free(m->fs);
}

static int child_main(void)
{
	struct fs_config cfg = {
		.attr_timeout = 30,
		.entry_timeout = 30,
		.negative_timeout = 30,
		.uid = TEST_UID,
		.gid = TEST_GID,
		.umask = 022,
		.block_size = 1 << 20,
	};
	struct fs_config ro_cfg, ow_cfg;
	struct fuse_operations ops = *fs_operations();
	struct test_mount main_mount = { 0 }, ro_mount = { 0 }, ow_mount = { 0 };
	struct cache *cache = NULL;
	struct cache_config ccfg = {
		.namespace = "test_fs",
		.block_size = 1 << 20,
		.mem_limit = 8 << 20,
		.workers = 4,
		.max_window = 4 << 20,
	};
	char cache_err[256];

	alarm(CHILD_SECONDS);
	setvbuf(stdout, NULL, _IOLBF, 0); /* a hung child shows how far it came */
	fuse_set_log_func(test_log);
	big_data = malloc(BIG_SIZE);
	fake = calloc(1, sizeof(*fake));
	if (!big_data || !fake)
		abort();
	fill_pattern(big_data, BIG_SIZE, 7);
	fake->base.ops = &fake_ops;
	pthread_mutex_init(&fake->lock, NULL);
	pthread_mutex_init(&fake->gate_lock, NULL);
	pthread_cond_init(&fake->gate_cond, NULL);
	fixture_objects();
	cfg.store = &fake->base;
	ccfg.store = &fake->base;
	CHECK(cache_new(&ccfg, &cache, cache_err, sizeof(cache_err)) == 0);
	cfg.cache = cache;
	test_cache = cache;
	ro_cfg = cfg;
	ro_cfg.read_only = true;
	ow_cfg = cfg;
	ow_cfg.conflict_overwrite = true;
	if (mount_start(&ro_mount, mnt_ro, &ro_cfg, fs_operations(), false) != 0 ||
	    mount_start(&ow_mount, mnt_ow, &ow_cfg, fs_operations(), false) != 0) {
		CHECK(!"mount failed");
		return 1;
	}
	real_getattr = ops.getattr;
	ops.getattr = counting_getattr;
	real_release = ops.release;
	ops.release = counting_release;
	if (mount_start(&main_mount, mnt, &cfg, &ops, getenv("FERRY_TEST_DEBUG") != NULL) != 0) {
		CHECK(!"mount failed");
		return 1;
	}

	RUN(root_is_a_directory);
	RUN(file_attributes_come_from_the_store);
	RUN(directories_exist_by_marker_or_prefix);
	RUN(missing_names_are_enoent_and_cost_one_lookup);
	RUN(readdir_merges_prefix_and_marker_and_skips_unshowable_names);
	RUN(ls_l_of_a_6000_entry_dir_costs_two_list_pages_and_no_stat);
	RUN(files_opened_by_name_cost_one_listing_of_their_directory);
	RUN(reads_return_the_blob_bytes);
	RUN(parallel_reads_return_the_right_bytes);
	RUN(changed_blob_fails_stale_then_reopen_reads_new_bytes);
	RUN(statfs_reports_a_large_filesystem);
	RUN(a_read_only_mount_refuses_changes_with_erofs);
	RUN(create_makes_the_blob_at_once_and_close_uploads_it);
	RUN(files_created_in_a_new_or_listed_directory_cost_no_lookups);
	RUN(a_big_file_uploads_blocks_while_written_and_commits_at_close);
	RUN(a_second_handle_reads_what_the_first_wrote);
	RUN(every_close_of_a_writer_commits_also_of_a_dup);
	RUN(a_failed_close_is_not_retried_behind_the_callers_back);
	RUN(append_writes_at_the_end);
	RUN(truncate_shrinks_and_grows_with_zeros);
	RUN(a_sparse_write_leaves_zeros_before_it);
	RUN(editing_a_range_reuses_the_committed_blocks);
	RUN(a_blob_changed_since_open_fails_the_close_unless_overwrite);
	RUN(a_failed_upload_fails_close_and_fsync_and_keeps_the_old_version);
	RUN(a_commit_sent_twice_after_a_lost_answer_is_not_a_conflict);
	RUN(unlink_deletes_the_blob_and_open_handles_keep_their_bytes);
	RUN(mkdir_makes_a_marker_and_rmdir_needs_it_empty);
	RUN(rename_moves_files_and_whole_directories);
	RUN(reads_and_header_patches_of_a_file_being_written_do_not_commit);
	RUN(a_read_of_a_file_being_written_is_no_conflict);
	RUN(a_rename_waiting_on_its_copy_blocks_no_open_or_read);
	RUN(an_open_of_a_rename_target_joins_the_moving_file);
	RUN(a_hidden_file_goes_with_its_last_close);
	RUN(symlinks_keep_their_target_as_content);
	RUN(utimens_keeps_the_mtime_and_chmod_chown_are_accepted);

	mount_stop(&main_mount);
	mount_stop(&ow_mount);
	mount_stop(&ro_mount);
	cache_free(cache);
	store_destroy(&fake->base);
	free(big_data);
	return unit_done();
}

/* Aborts the FUSE connection mounted at path (found in mountinfo: a stat of a hung
 * mount would hang too). */
static void abort_connection(const char *path)
{
	FILE *info = fopen("/proc/self/mountinfo", "r");
	unsigned major, minor;
	char line[4096], point[PATH_MAX], abort_path[128];
	int fd;

	if (!info)
		return;
	while (fgets(line, sizeof(line), info)) {
		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &major, &minor, point) != 3 ||
		    strcmp(point, path) != 0)
			continue;
		snprintf(abort_path, sizeof(abort_path), "/sys/fs/fuse/connections/%u/abort",
			 minor);
		fd = open(abort_path, O_WRONLY);
		if (fd >= 0) {
			(void)!write(fd, "1", 1);
			close(fd);
		}
	}
	fclose(info);
}

int main(void)
{
	int status = 0, waited;
	pid_t pid;

	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		printf("no /dev/fuse: skipped\n0 passed, 0 failed\n");
		return 0;
	}
	snprintf(mnt, sizeof(mnt), "/tmp/ferry-test-fs-XXXXXX");
	snprintf(mnt_ro, sizeof(mnt_ro), "/tmp/ferry-test-fs-ro-XXXXXX");
	snprintf(mnt_ow, sizeof(mnt_ow), "/tmp/ferry-test-fs-ow-XXXXXX");
	if (!mkdtemp(mnt) || !mkdtemp(mnt_ro) || !mkdtemp(mnt_ow)) {
		perror("mkdtemp");
		return 1;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int code = child_main();

		fflush(stdout);
		_exit(code);
	}
	/* Whatever the child did, the mount goes away. */
	for (waited = 0; pid > 0 && waitpid(pid, &status, WNOHANG) == 0; waited++) {
		if (waited == (CHILD_SECONDS + 5) * 10) {
			/* A child killed while it waits in close() for its own server (a
			 * FLUSH) never dies until its connections are aborted. */
			fprintf(stderr, "test_fs: child hung, aborting its mounts and killing it\n");
			abort_connection(mnt);
			abort_connection(mnt_ro);
			abort_connection(mnt_ow);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(100000);
	}
	umount2(mnt, MNT_DETACH);
	umount2(mnt_ro, MNT_DETACH);
	umount2(mnt_ow, MNT_DETACH);
	rmdir(mnt);
	rmdir(mnt_ro);
	rmdir(mnt_ow);
	if (pid < 0 || !WIFEXITED(status)) {
		fprintf(stderr, "test_fs: child failed (status 0x%x)\n", status);
		return 1;
	}
	return WEXITSTATUS(status);
}
