/* meta: the metadata cache. Attributes by path, negative entries (a path known to be
 * missing) and whole directory listings, each with its own expiry, in one bounded
 * hash table keyed by store path ("" is the root, "a/b" a child of "a").
 *
 * A complete listing also answers lookups of its children: a child named in a fresh
 * listing has that listing's attributes, a child absent from it is missing. When a
 * path has both its own record and a fresh parent listing, the newer of the two wins.
 *
 * Bound: every path record costs 1 and a cached listing costs 1 per entry; when the
 * total passes max_entries the records stored longest ago are evicted first (a record
 * moves to the back when it is stored again). A listing larger than the whole budget
 * is not cached.
 *
 * Locking: one mutex per cache (meta_cache.lock) guards the hash table, the eviction
 * list, every record and the entry count; it is held only inside meta_ functions and
 * never across a call out. Every meta_ function on a cache is thread-safe. A listing is
 * immutable once finished: it is shared by reference count (atomic) and may be read by
 * any number of threads without a lock, and outlive the cache.
 *
 * Time comes from CLOCK_MONOTONIC. A timeout of 0 (or less) caches nothing of that kind.
 */
#ifndef FERRY_META_H
#define FERRY_META_H

#include <stdbool.h>
#include <stddef.h>

#include "cache/store/store.h"

struct meta_config {
	double attr_timeout;     /* seconds an attribute record stays fresh */
	double entry_timeout;    /* seconds a listing stays fresh */
	double negative_timeout; /* seconds a missing record stays fresh */
	size_t max_entries;      /* budget: path records + listing entries (> 0) */
};

struct meta_cache;
struct meta_listing;

enum meta_lookup {
	META_MISS,   /* nothing fresh is known: ask the store */
	META_FOUND,  /* the path exists; its attributes were copied out */
	META_ABSENT, /* the path is known to be missing */
};

/* A new empty cache. -EINVAL for a max_entries of 0, -ENOMEM. */
int meta_new(const struct meta_config *cfg, struct meta_cache **out);

/* Frees the cache; listings still held by callers stay valid until released. */
void meta_free(struct meta_cache *mc);

/* What is known of path: its own record or its parent's listing, whichever is newer. */
enum meta_lookup meta_lookup(struct meta_cache *mc, const char *path, struct store_attr *out);

/* Records path's attributes (fresh for attr_timeout). 0 or -ENOMEM. */
int meta_put_attr(struct meta_cache *mc, const char *path, const struct store_attr *attr);

/* Records that path is missing (fresh for negative_timeout). 0 or -ENOMEM. */
int meta_put_missing(struct meta_cache *mc, const char *path);

/* Caches the complete, finished listing of dir (fresh for entry_timeout); the cache
 * takes its own reference. 0, -ENOSPC when it exceeds the budget (not cached),
 * -EINVAL if not finished, -ENOMEM. */
int meta_put_listing(struct meta_cache *mc, const char *dir, struct meta_listing *listing);

/* True at most once per entry_timeout for dir (never when it is 0): the caller may
 * then fetch dir's listing for a lookup, and other lookups meanwhile ask for their own
 * names. The claim outlives meta_invalidate(), so changes made in dir do not make each
 * next lookup list it again. */
bool meta_claim_listing(struct meta_cache *mc, const char *dir);

/* The fresh listing of dir with a new reference for the caller (release it with
 * meta_listing_release), or NULL when none is cached or a name in it has changed
 * since (meta_invalidate). */
struct meta_listing *meta_get_listing(struct meta_cache *mc, const char *dir);

/* Forgets path's own record. Its parent's listing stops answering for path, and is
 * no longer whole (meta_get_listing gives NULL until a new one is put), but still
 * answers lookups of its other names: a file created in a directory does not cost the
 * next names looked up there a request each. */
void meta_invalidate(struct meta_cache *mc, const char *path);

/* Forgets the listing of dir. */
void meta_invalidate_listing(struct meta_cache *mc, const char *dir);

/* Forgets dir itself as meta_invalidate() does, and every record and listing under
 * it: for a directory renamed whole. Walks the whole cache. */
void meta_invalidate_tree(struct meta_cache *mc, const char *dir);

/* Notes that path was opened with etag; true if the previous open noted the same
 * non-empty etag (so pages the kernel holds from then are still this object's). */
bool meta_note_open(struct meta_cache *mc, const char *path, const char *etag);

/* The current cost of everything cached (path records + listing entries). */
size_t meta_entry_count(struct meta_cache *mc);

/* Listings. Build: new, add each entry as the store reports it, finish. finish sorts
 * by name (bytewise) and merges entries of the same name: a directory reported as a
 * prefix and as a marker object, or shadowing a file of its name, is one directory. */
int meta_listing_new(struct meta_listing **out);
/* Copies name and attr in. -EINVAL after finish, -ENOMEM, -EFBIG past 4 GiB of
 * names and etags or 2^32 entries. */
int meta_listing_add(struct meta_listing *listing, const char *name,
		     const struct store_attr *attr);
int meta_listing_finish(struct meta_listing *listing);

/* Reading a finished listing: entries 0..count-1 in name order. */
size_t meta_listing_count(const struct meta_listing *listing);
const char *meta_listing_name(const struct meta_listing *listing, size_t index);
void meta_listing_attr(const struct meta_listing *listing, size_t index, struct store_attr *out);
/* Finds the entry named by the len bytes at name: 0 and its attributes, or -ENOENT. */
int meta_listing_find(const struct meta_listing *listing, const char *name, size_t len,
		      struct store_attr *out);

/* Reference counting; the last release frees the listing. */
struct meta_listing *meta_listing_hold(struct meta_listing *listing);
void meta_listing_release(struct meta_listing *listing);

#endif
