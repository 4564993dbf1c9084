/* fs: the FUSE filesystem (libfuse3 high-level, path-based API) over a store.
 *
 * getattr, readdir (readdirplus: entries carry their attributes, so `ls -l` costs no
 * request per entry), open, read (through the block cache), statfs; and, unless
 * read_only, the writes: create, write, truncate, flush/fsync (which upload), unlink,
 * mkdir, rmdir, rename, symlink, utimens. Open files and their staged writes live in
 * fs/stage.h. Attributes, listings and negative lookups are kept in a meta_cache with
 * the configured TTLs, and the same TTLs are handed to the kernel. What each POSIX
 * call does on a container: docs/semantics.md.
 */
#ifndef FERRY_FS_H
#define FERRY_FS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/store/store.h"
#include "fs/stage.h"

struct cache;

struct fs_config {
	struct store *store;     /* borrowed: must outlive the fs */
	struct cache *cache;     /* borrowed: file reads go through it */
	double attr_timeout;     /* seconds attributes stay valid (kernel and meta cache) */
	double entry_timeout;    /* seconds names and listings stay valid */
	double negative_timeout; /* seconds a missing name stays missing */
	uid_t uid;               /* owner shown for every entry */
	gid_t gid;
	mode_t umask;            /* applied to 0777 (dirs) and 0666 (files) */
	bool read_only;          /* every change fails with EROFS */
	size_t block_size;       /* the write grid: the cache's block size */
	const char *stage_dir;   /* staging files; NULL or "": $TMPDIR or /tmp */
	uint64_t stage_limit;    /* staged bytes before dirty blocks upload early */
	bool conflict_overwrite; /* commit without If-Match: the last writer wins */
};

struct fs;

/* The returned fs is the private_data to hand to fuse_new(). */
int fs_new(const struct fs_config *cfg, struct fs **out);
void fs_free(struct fs *fs);

struct fs_stats {
	uint64_t read_bytes;    /* returned by read() since the mount */
	uint64_t written_bytes; /* taken by write() */
	struct stage_stats staging;
};

void fs_get_stats(struct fs *fs, struct fs_stats *out);

/* The operation table; its init() sets the kernel timeouts from the fs_config. */
const struct fuse_operations *fs_operations(void);

#endif
