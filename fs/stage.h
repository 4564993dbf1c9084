/* stage: open files ("nodes") and their staged writes, for fs.c.
 *
 * One node per open path, shared by every handle of that path, so a second handle
 * reads what the first wrote. A node's content is its *base* (the object version it
 * was opened on, read through the block cache) plus the changes made since, on a grid
 * of blocks of block_size bytes. Each block is
 *   BASE   unchanged since the base; its committed block id is known when the base's
 *          block list is on the same grid, else it is re-uploaded from the base,
 *   DIRTY  its whole content is in the node's staging file (a sparse, unnamed file),
 *   STAGED uploaded with Put Block under a fresh id; its bytes stay in the staging file
 *          as a kept copy, so reads and small changes of it need no commit, while
 *          kept copies take at most a quarter of the staging limit (the least
 *          recently used go first).
 * A block written from its start to its end is uploaded at once (on the upload
 * workers); past the staging limit a write first drops its file's kept copies, then
 * uploads its oldest dirty blocks and waits for them. A commit
 * (flush, fsync, the last close, or before a rename) uploads what is left and commits
 * the block list with If-Match on the base ETag (If-None-Match: * when there is no
 * base) unless conflict=overwrite; a file of at most one block goes up whole instead.
 * On success the new version is the base; on failure nothing changes in the store or
 * here, and a later commit retries.
 *
 * Memory: at most max(64 MiB, 2 blocks) of block buffers are held for uploads and
 * fills at any time, whatever the number and size of the files being written.
 *
 * Locking:
 * - stage.table_lock guards the table (buckets, every node's path, hash_next,
 *   in_table, refs, handles, writers, the shown attributes). It is never held while
 *   taking another lock or calling out.
 * - node.lock guards the rest of a node's state, including blocks and the staging
 *   file. It is never held across a store call that may take long (an upload, a
 *   commit, a copy, a download, a wait for an upload buffer): the holder marks the
 *   node busy and drops it; until busy is cleared only that holder changes the node,
 *   other changes wait, and reads, opens and attributes go on. Lock order:
 *   node.lock, then stage.table_lock or node.done_lock or stage.pool_lock. Two node
 *   locks are taken in address order, and neither is held while waiting for the
 *   other node to be idle.
 * - node.done_lock guards inflight and the finished uploads (done) that the upload
 *   workers hand back; only the holder of node.lock applies them.
 * - stage.pool_lock guards the job queue and the free upload buffers.
 */
#ifndef FERRY_STAGE_H
#define FERRY_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/store/store.h"

struct cache;
struct meta_cache;

/* Block ids ferry writes: base64 of 24 bytes ("ferry", 7 random bytes per node, a
 * 4-byte upload sequence, an 8-byte block index). */
#define STAGE_ID_LEN 32
/* The most blocks a blob may have committed (the service's limit). */
#define STAGE_MAX_BLOCKS 50000
/* libfuse renames a file unlinked while open to this prefix + hex until its last close. */
#define STAGE_HIDDEN_PREFIX ".fuse_hidden"
/* Whether the last component of path is such a name. */
bool stage_hidden_name(const char *path);

struct stage_config {
	struct store *store;     /* borrowed */
	struct cache *cache;     /* borrowed: base versions are read through it */
	struct meta_cache *meta; /* borrowed: told of every commit */
	size_t block_size;       /* the grid; the cache's block size */
	const char *dir;         /* staging files go here; NULL or "": $TMPDIR or /tmp */
	uint64_t limit;          /* staged bytes (all nodes) before dirty blocks upload early */
	bool overwrite;          /* commit without conditions: last writer wins */
};

struct stage;
struct stage_node;

int stage_new(const struct stage_config *cfg, struct stage **out);
/* Stops the upload workers and frees everything; every node must be closed. */
void stage_free(struct stage *st);

/* A handle on path: joins the open node of path, or opens one on attr (the object as
 * looked up now, or what the meta cache learnt since: a commit may have finished in
 * between). A node nobody has changed or opened for writing whose base is not that
 * version is left to its handles and a new one is opened. */
int stage_open(struct stage *st, const char *path, const struct store_attr *attr,
	       bool writable, struct stage_node **out);
/* Ends a handle; the last one frees the node. Changes no commit has answered for are
 * committed first (a failure is only logged); changes whose failed commit was reported
 * to a close() or fsync() are dropped. The last close of a node libfuse hid
 * (.fuse_hidden*) deletes its object. */
void stage_close(struct stage_node *node, bool writable);
/* Whether any node is open (so listings should ask stage_attr() about entries). */
bool stage_has_nodes(struct stage *st);
/* Whether a node is open for a path under directory dir ("" for the root). */
bool stage_has_nodes_under(struct stage *st, const char *dir);

/* Attributes to show for path while a node of it has writers or changes: true and
 * *out filled (size, mtime, is_symlink, the base ETag); false otherwise. */
bool stage_attr(struct stage *st, const char *path, struct store_attr *out);
/* The node's attributes as they are now. */
void stage_node_attr(struct stage_node *node, struct store_attr *out);
/* The node's base ETag, for the kernel's page cache decision. */
void stage_node_etag(struct stage_node *node, char *out, size_t len);

/* Reads up to len bytes at offset: staged bytes, the base's bytes, zeros in holes.
 * Short only at the end of the file. -ESTALE when the base changed in the store.
 * Never commits, unless the bytes asked for were uploaded and their kept copy dropped
 * for room. */
ssize_t stage_read(struct stage_node *node, void *buf, size_t len, uint64_t offset);
/* Writes len bytes at offset; returns len or -errno (-EFBIG past STAGE_MAX_BLOCKS
 * blocks). May upload blocks, and commit first when it rewrites part of an uploaded
 * block whose kept copy was dropped. */
ssize_t stage_write(struct stage_node *node, const void *buf, size_t len, uint64_t offset);
/* Sets the size: a shrink drops what lies past it, a grow adds zeros. */
int stage_truncate(struct stage_node *node, uint64_t size);
/* Grows the size to at least size (zeros), as fallocate does. */
int stage_allocate(struct stage_node *node, uint64_t size);
/* Sets the mtime the next commit stores. */
void stage_set_mtime(struct stage_node *node, int64_t sec, uint32_t nsec);
/* Makes the node's content and mtime the object's (no-op when nothing changed).
 * -EIO when the upload failed or the object changed since it was opened (logged with
 * the reason); the previous version then stays, and so do the staged changes. */
int stage_commit(struct stage_node *node);

/* Removes the object at path; an open node of it keeps its content for its handles
 * but is no longer committed. */
int stage_unlink(struct stage *st, const char *path);
/* Moves the object from -> to (server-side copy, then delete), committing an open
 * dirty node of from first; the node moves with it. An open node of to is detached as
 * by stage_unlink. noreplace: -EEXIST when to exists. A node moved to a libfuse hidden
 * name (.fuse_hidden*: unlinked while open) keeps its later changes to itself. No lock
 * is held while the store copies: changes of the moving nodes wait, their reads do
 * not. An open of to meanwhile joins the moving node, so one node stands for to (if
 * the copy fails, that handle stays with the node under from). A move to a hidden name
 * of an object with no open node deletes from instead (nothing would close it). */
int stage_rename(struct stage *st, const char *from, const char *to, bool noreplace);

#endif
