/* store: the one interface through which fs/, cache/ and the launcher reach a datastore.
 *
 * A store is a flat namespace of objects named by '/'-separated paths relative to the
 * datastore root (the container plus an optional prefix): "" is the root, "a/b.txt" a
 * file, never a leading or trailing '/' -- except that stat, remove and copy take
 * "dir/" for a directory's placeholder object (0 bytes, named with the '/', as some
 * tools make). Directories exist where a prefix exists or a marker object (0 bytes,
 * metadata hdi_isfolder=true) does -- on a Blob store; on a store with real_dirs set
 * they are objects of their own. Implementations are
 * thread-safe: any number of threads may call any operation at once. Every operation
 * returns 0 (or a byte count) or -errno: -ENOENT missing, -EACCES refused by the
 * service, -ESTALE the object no longer matches the given ETag, -EIO after the retry
 * budget, -ETIMEDOUT when the operation's time bound ran out, -ENAMETOOLONG (before any
 * request) for a name longer than the service allows (Azure: 1,024 characters).
 */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STORE_ETAG_MAX 80

#define STORE_BLOCK_ID_MAX 72 /* a base64 block id, NUL included */

struct store_attr {
	uint64_t size;
	int64_t mtime;             /* seconds since the epoch: metadata ferry_mtime if
				      present, else the service's Last-Modified */
	uint32_t mtime_nsec;
	char etag[STORE_ETAG_MAX]; /* quoted, as in HTTP headers; "" for prefixes */
	bool is_dir;               /* a prefix, or a marker object (hdi_isfolder=true) */
	bool is_symlink;           /* metadata is_symlink=true; the content is the target */
};

/* What ferry keeps in an object's metadata. Writing replaces all of it. */
struct store_meta {
	bool is_dir;     /* hdi_isfolder=true */
	bool is_symlink; /* is_symlink=true */
	bool has_mtime;  /* ferry_mtime=SEC.NSEC */
	int64_t mtime;
	uint32_t mtime_nsec;
};

/* Conditions on a write: what the object must be for the write to happen. */
struct store_cond {
	const char *if_match; /* this ETag, or NULL */
	bool if_none;         /* must not exist (If-None-Match: *) */
};

/* One committed block of an object, in order. */
struct store_block {
	char id[STORE_BLOCK_ID_MAX];
	uint64_t size;
};

struct store_entry {
	const char *name; /* last path component: no '/' */
	struct store_attr attr;
};

/* Called once per entry of a listing page, in the service's order. A directory may
 * be reported twice (as a prefix and as a marker object). A non-zero return stops the
 * listing and is returned by store_list(). */
typedef int (*store_list_fn)(void *ctx, const struct store_entry *entry);

struct store;

struct store_ops {
	int (*stat)(struct store *s, const char *path, struct store_attr *out);
	int (*list)(struct store *s, const char *dir, const char *marker, store_list_fn fn,
		    void *ctx, char *next_marker, size_t next_len);
	ssize_t (*read)(struct store *s, const char *path, const char *etag, uint64_t offset,
			size_t len, void *buf);
	int (*probe)(struct store *s, char *errbuf, size_t errlen);
	int (*has_children)(struct store *s, const char *dir);
	int (*lookup)(struct store *s, const char *path, struct store_attr *out);
	int (*put)(struct store *s, const char *path, const void *data, size_t len,
		   const struct store_meta *meta, const struct store_cond *cond,
		   struct store_attr *out);
	int (*put_block)(struct store *s, const char *path, const char *block_id,
			 uint64_t offset, const void *data, size_t len);
	int (*commit)(struct store *s, const char *path, const char *const *block_ids,
		      size_t nblocks, const struct store_meta *meta,
		      const struct store_cond *cond, struct store_attr *out);
	int (*get_blocks)(struct store *s, const char *path, const char *etag,
			  struct store_block **out, size_t *nblocks);
	int (*set_meta)(struct store *s, const char *path, const struct store_meta *meta,
			const struct store_cond *cond, struct store_attr *out);
	int (*copy)(struct store *s, const char *from, const char *to,
		    const struct store_cond *cond);
	int (*remove)(struct store *s, const char *path, const struct store_cond *cond);
	int (*rename)(struct store *s, const char *from, const char *to, bool is_dir,
		      bool noreplace, struct store_attr *out); /* NULL: none */
	int (*create_root)(struct store *s);
	void (*destroy)(struct store *s);
};

struct store {
	const struct store_ops *ops;
	/* Directories are objects of their own (a file share): made by store_put() with
	 * meta.is_dir, deleted by store_remove() only when empty (-ENOTEMPTY), renamed
	 * whole by store_rename(). */
	bool real_dirs;
	/* A commit consumes the blocks it lists: a later commit cannot list them again,
	 * and store_get_blocks() lists none (a file share keeps no block list). */
	bool blocks_single_use;
	/* Called by store_destroy() after ops->destroy, with release_ctx: frees what the
	 * store was built on (store_open() sets it: the HTTP pool and the credential).
	 * NULL for none. */
	void (*release)(void *release_ctx);
	void *release_ctx;
};

/* Attributes of the object at path: a file, or a marker directory. The root and
 * plain prefixes are not objects: -ENOENT (callers ask store_list() for those). */
static inline int store_stat(struct store *s, const char *path, struct store_attr *out)
{
	return s->ops->stat(s, path, out);
}

/* One page of the children of directory dir ("" for the root), starting at marker
 * (NULL or "" for the first page). On return next_marker holds the opaque marker of
 * the next page, or "" when this was the last one (-ENAMETOOLONG if it does not fit). */
static inline int store_list(struct store *s, const char *dir, const char *marker,
			     store_list_fn fn, void *ctx, char *next_marker, size_t next_len)
{
	return s->ops->list(s, dir, marker, fn, ctx, next_marker, next_len);
}

/* Reads up to len bytes at offset into buf straight from the service. With a non-NULL
 * etag the read fails with -ESTALE if the object changed. Returns the byte count, short
 * only at the end of the object (0 at or past it). */
static inline ssize_t store_read(struct store *s, const char *path, const char *etag,
				 uint64_t offset, size_t len, void *buf)
{
	return s->ops->read(s, path, etag, offset, len, buf);
}

/* 1 when some object other than the placeholder dir + "/" has a path that starts with
 * dir + "/" (dir is not empty), 0 when none does. One small request, whatever the size
 * of the directory. */
static inline int store_has_children(struct store *s, const char *dir)
{
	return s->ops->has_children(s, dir);
}
/* What the tree shows at path: a directory when some object's path starts with
 * path + "/" (a placeholder included), whatever the object at path is -- its
 * attributes kept if it is a marker, zeroed but for is_dir if not; otherwise the
 * object at path, as store_stat() gives it; -ENOENT when neither exists. The two are
 * asked for at once: one round trip. */
static inline int store_lookup(struct store *s, const char *path, struct store_attr *out)
{
	return s->ops->lookup(s, path, out);
}

/* Checks that the datastore answers, the credential is accepted and the root exists.
 * On failure errbuf holds one line for a person: what failed and what to do. */
static inline int store_probe(struct store *s, char *errbuf, size_t errlen)
{
	return s->ops->probe(s, errbuf, errlen);
}

/* Writes len bytes as the whole content of the object at path (a small object, or a
 * marker), with meta. cond NULL: unconditional. -ESTALE when if_match no longer
 * matches, -EEXIST when if_none and it exists. Fills *out (may be NULL) with the new
 * attributes. */
static inline int store_put(struct store *s, const char *path, const void *data, size_t len,
			    const struct store_meta *meta, const struct store_cond *cond,
			    struct store_attr *out)
{
	return s->ops->put(s, path, data, len, meta, cond, out);
}

/* Stages one block of a future version of the object; invisible until committed.
 * block_id is base64, and every id of one object has the same length. offset is where
 * the block will start in that version: the blocks a commit lists lie end to end
 * (a store without block lists, a file share, stages the bytes there). */
static inline int store_put_block(struct store *s, const char *path, const char *block_id,
				  uint64_t offset, const void *data, size_t len)
{
	return s->ops->put_block(s, path, block_id, offset, data, len);
}

/* Makes the listed blocks (staged or already committed) the object's content, in order,
 * with meta. Conditions and *out as for store_put(), but out->size is 0: the answer does
 * not say it (the caller knows it). Blocks staged for the object and not listed are
 * discarded, also another writer's. */
static inline int store_commit(struct store *s, const char *path,
			       const char *const *block_ids, size_t nblocks,
			       const struct store_meta *meta, const struct store_cond *cond,
			       struct store_attr *out)
{
	return s->ops->commit(s, path, block_ids, nblocks, meta, cond, out);
}

/* The committed blocks of the object as of etag (-ESTALE if it changed). *out is
 * malloc'ed, the caller frees it; an object written whole has none (*nblocks 0). */
static inline int store_get_blocks(struct store *s, const char *path, const char *etag,
				   struct store_block **out, size_t *nblocks)
{
	return s->ops->get_blocks(s, path, etag, out, nblocks);
}

/* Replaces the object's metadata. Conditions and *out as for store_put(), but out->size
 * is 0 (the answer does not say it). */
static inline int store_set_meta(struct store *s, const char *path,
				 const struct store_meta *meta, const struct store_cond *cond,
				 struct store_attr *out)
{
	return s->ops->set_meta(s, path, meta, cond, out);
}

/* Server-side copy of the object at from (content and metadata) to to; returns when
 * the copy is complete. cond applies to the destination. */
static inline int store_copy(struct store *s, const char *from, const char *to,
			     const struct store_cond *cond)
{
	return s->ops->copy(s, from, to, cond);
}

/* Deletes the object at path. -ENOENT when it is not there. */
static inline int store_remove(struct store *s, const char *path,
			       const struct store_cond *cond)
{
	return s->ops->remove(s, path, cond);
}

/* The service's own rename of the file, or (is_dir) the directory with everything in
 * it, at from to to: one atomic step. A file or empty directory at to is replaced
 * unless noreplace (-EEXIST). Fills *out (may be NULL) with the attributes of to.
 * -EOPNOTSUPP for a store that has none (Blob): callers copy and remove instead. */
static inline int store_rename(struct store *s, const char *from, const char *to,
			       bool is_dir, bool noreplace, struct store_attr *out)
{
	if (!s->ops->rename)
		return -EOPNOTSUPP;
	return s->ops->rename(s, from, to, is_dir, noreplace, out);
}

/* Creates the datastore's root (a blob container); 0 when it exists already.
 * -EACCES when the credential may not create it. */
static inline int store_create_root(struct store *s)
{
	return s->ops->create_root(s);
}

/* Frees the store, then what it was built on (release). No operation may be running. */
static inline void store_destroy(struct store *s)
{
	void (*release)(void *release_ctx);
	void *release_ctx;

	if (!s)
		return;
	release = s->release;
	release_ctx = s->release_ctx;
	s->ops->destroy(s);
	if (release)
		release(release_ctx);
}

#endif
