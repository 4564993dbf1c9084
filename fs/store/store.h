/* store: the one interface through which fs/, cache/ and the launcher reach a datastore.
 *
 * A store is a flat namespace of objects named by '/'-separated paths relative to the
 * datastore root (the container plus an optional prefix): "" is the root, "a/b.txt" a
 * file, never a leading or trailing '/'. Directories exist where a prefix exists or a
 * marker object (0 bytes, metadata hdi_isfolder=true) does. Implementations are
 * thread-safe: any number of threads may call any operation at once. Every operation
 * returns 0 (or a byte count) or -errno: -ENOENT missing, -EACCES refused by the
 * service, -ESTALE the object no longer matches the given ETag, -EIO after the retry
 * budget, -ETIMEDOUT when the operation's time bound ran out.
 */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define STORE_ETAG_MAX 80

struct store_attr {
	uint64_t size;
	int64_t mtime; /* seconds since the epoch */
	char etag[STORE_ETAG_MAX]; /* quoted, as in HTTP headers; "" for prefixes */
	bool is_dir;               /* a prefix, or a marker object */
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
	void (*destroy)(struct store *s);
};

struct store {
	const struct store_ops *ops;
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

/* Checks that the datastore answers, the credential is accepted and the root exists.
 * On failure errbuf holds one line for a person: what failed and what to do. */
static inline int store_probe(struct store *s, char *errbuf, size_t errlen)
{
	return s->ops->probe(s, errbuf, errlen);
}

static inline void store_destroy(struct store *s)
{
	if (s)
		s->ops->destroy(s);
}

#endif
