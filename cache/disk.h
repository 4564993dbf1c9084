/* disk: the disk tier of the block cache (used by cache.c only).
 *
 * One file per block under the cache directory, named by the hex SHA-256 of its key
 * (namespace, path, etag, block index): names say nothing about the objects. A file is
 * a header (magic "FERRYBLK", version, block index, raw length, then the key itself to
 * catch hash collisions) followed by one lz4 frame with block and content checksums
 * and the content size. Files are written under a temporary name (O_EXCL, 0600) and
 * renamed into place, so a reader never sees half a file; a file that fails any check
 * when read is counted, deleted and reported as damaged, never served.
 *
 * The directory is created 0700 (tightened to 0700 if it is wider) and locked with
 * flock on ".lock": one cache per directory. An in-memory index (name -> size, least
 * recently used first) bounds the total size of the files: it is built from the files
 * present at open (oldest mtime first) and the oldest files are deleted when a new one
 * takes the total over the limit.
 *
 * Locking: cache_disk.lock guards the index, its LRU list and disk_used; it is held
 * for index updates and the unlink/rename that go with them, never while a file's
 * contents are read or written. All functions are thread-safe.
 */
#ifndef FERRY_CACHE_DISK_H
#define FERRY_CACHE_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache_disk;

struct cache_disk_key {
	const char *namespace;
	const char *path;
	const char *etag;
	uint64_t block_index;
};

/* Creates or opens dir, locks it and indexes its files, deleting the oldest beyond
 * limit and leftovers of interrupted writes. -EBUSY when another cache holds the
 * lock; every error comes with a line for a person in errbuf. */
int cache_disk_open(const char *dir, uint64_t limit, struct cache_disk **out, char *errbuf,
		    size_t errlen);
/* Releases the lock and frees the index; the files stay. */
void cache_disk_close(struct cache_disk *d);

/* Whether the block of key has a file (by the index; its contents are checked only
 * when loaded). */
bool cache_disk_has(struct cache_disk *d, const struct cache_disk_key *key);

/* Reads the block of key, exactly len bytes, into buf. 0; -ENOENT when there is no
 * file; -EBADMSG when the file was damaged or belongs to another key (it is counted
 * and deleted; buf holds garbage); -ENOMEM. */
int cache_disk_load(struct cache_disk *d, const struct cache_disk_key *key, void *buf,
		    size_t len);

/* Writes the block of key (len bytes) unless it is already there, then deletes the
 * oldest files while the total is over the limit. 0 or -errno (nothing is left
 * behind on failure). */
int cache_disk_store(struct cache_disk *d, const struct cache_disk_key *key,
		     const void *data, size_t len);

/* Bytes of cache files now, and files found damaged since open. */
uint64_t cache_disk_used(struct cache_disk *d);
uint64_t cache_disk_corrupt(struct cache_disk *d);

#endif
