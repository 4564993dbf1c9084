/* transfer: parallel copies of a file or a folder tree between the local filesystem and
 * stores (upload, download, and store to store).
 *
 * The tree is listed first (so the total is known), then a pool of worker threads
 * copies it chunk by chunk: a file up to one chunk goes as one Put Blob (store_put),
 * a larger one as blocks (store_put_block, in parallel, then store_commit); downloads
 * are ranged reads (store_read, in parallel, pinned to the ETag listed) written in
 * place into a temporary file renamed over the destination once complete. Memory: one
 * chunk buffer per worker. Modification times are kept (the ferry_mtime metadata that
 * ferry mount shows). Local symbolic links are followed; a symlink object of a store
 * becomes a symlink when downloaded (after every file is written).
 */
#ifndef FERRY_TRANSFER_H
#define FERRY_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/store/store.h"

/* One side of a copy. */
struct transfer_side {
	struct store *store; /* NULL: the local filesystem */
	const char *path;    /* local path, or path inside the store ("" for its root) */
	const char *display; /* how messages name path (a URI, say); NULL: path */
};

/* Called for each file or folder that could not be copied (from any thread, one call
 * at a time): src and dst as messages name them, and why, for a person. */
typedef void (*transfer_error_fn)(void *ctx, const char *src, const char *dst,
				  const char *message);

struct transfer_opts {
	int workers;       /* parallel chunk transfers, >= 1 */
	size_t block_size; /* bytes of one chunk: one ranged read, one Put Block */
	bool progress;     /* draw a progress line on stderr while copying */
	transfer_error_fn on_error;
	void *error_ctx;
};

/* 8 workers, 8 MiB chunks, no progress line, errors to the log. */
void transfer_opts_default(struct transfer_opts *opts);

struct transfer_stats {
	uint64_t files;  /* files copied */
	uint64_t bytes;  /* bytes copied */
	uint64_t dirs;   /* folders created (local) or marked (store) */
	uint64_t failed; /* files and folders that could not be copied */
	double seconds;
};

/* Copies src to dst. With src_is_dir, src is a folder and its contents go into the
 * folder dst (created as needed; an empty source folder leaves a marker object in a
 * store); else src is a file and dst the file it becomes (replaced if it exists).
 * Returns 0 when everything was copied; -EIO when some files failed (each reported
 * through on_error, counted in stats->failed); another -errno, with errbuf, when the
 * copy could not start (the source could not be listed, say). stats may be NULL. */
int transfer_copy(const struct transfer_side *src, bool src_is_dir,
		  const struct transfer_side *dst, const struct transfer_opts *opts,
		  struct transfer_stats *stats, char *errbuf, size_t errlen);

/* A store error as words for a person ("refused by the service: ..."). */
const char *transfer_store_error(int err);

#endif
