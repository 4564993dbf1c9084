/* files: the store implementation for Azure Files shares (File service REST API).
 *
 * Paths map to the share under the URL's prefix, a directory of the share. On a share
 * directories are real objects: there are no marker objects and no prefixes, so
 * stat("dir/") is -ENOENT, and stat() and lookup() of a directory give is_dir with its
 * ETag and time. Path components are checked before any request: one longer than 255
 * characters (or a path longer than 2,048) is -ENAMETOOLONG; an empty, "." or ".."
 * component is -ENOENT (no object has that name).
 *
 * Reads pinned to an ETag: Get File takes no If-Match, so store_read() compares the
 * ETag of each answer with the one given and fails with -ESTALE when they differ (or
 * the file is gone), never returning those bytes; buf's content is then undefined.
 * A read past the end of a pinned file asks for its ETag once more (a HEAD) before it
 * says 0, so that a file replaced by a shorter one is -ESTALE too.
 *
 * Writes never show a part of a file under its name: store_put() writes the content
 * to a hidden file beside it (FILES_TMP_PREFIX, this store's nonce, a number) with
 * Create File and Put Ranges of at most 4 MiB, then renames it over the target (Rename
 * File; x-ms-file-rename-replace-if-exists false for if_none). store_put_block()
 * writes each block at its offset in the hidden file of that path's upload, made on
 * the first block and grown as blocks come; store_commit() cuts it to the listed
 * blocks (which must lie end to end), sets its time and renames it over the target;
 * a failed commit keeps it for the next try. A commit consumes its blocks and
 * store_get_blocks() lists none (blocks_single_use). Hidden files never show in
 * listings; the uploads a store never committed are deleted by store_destroy().
 * The File service takes no If-Match: a write, set_meta or remove with cond.if_match
 * compares the file's ETag first, then makes the change -- two steps, not one. Times
 * (meta.mtime) are the service's last-write time, kept to 100 ns.
 * Directories are real (real_dirs): store_put() with meta.is_dir is Create Directory,
 * store_remove() deletes a file or else an empty directory (-ENOTEMPTY), store_rename()
 * is Rename File or Rename Directory. A share holds no symbolic links: is_symlink is
 * -EPERM. store_copy() is -EOPNOTSUPP.
 *
 * Credentials: a Shared Key or a SAS. The File service takes no anonymous requests and,
 * at this API version, no bearer token; store_probe() says so without a request.
 * Requests run on the http_client's pool, with its retries. Thread-safe.
 */
#ifndef FERRY_FILES_H
#define FERRY_FILES_H

#include "auth/auth.h"
#include "cache/store/http.h"
#include "cache/store/store.h"
#include "cache/store/url.h"

#define FILES_API_VERSION "2021-12-02"
#define FILES_TMP_PREFIX ".ferry-up-" /* hidden files of writes on their way */

struct files_config {
	const struct url_container *url; /* container: the share; prefix: a directory in it */
	const struct auth_cred *cred;    /* borrowed: must outlive the store */
	struct http_client *http;        /* borrowed: must outlive the store */
};

/* Builds a file share store. Makes no request (store_probe() does). -EINVAL for a
 * prefix with an empty, "." or ".." component, -ENAMETOOLONG for one too long. */
int files_store_new(const struct files_config *cfg, struct store **out);

#endif
