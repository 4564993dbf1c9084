/* files: the store implementation for Azure Files shares (File service REST API).
 *
 * A FILE SHARE STORE IS READ-ONLY FOR NOW: stat, lookup, list, has_children, read,
 * probe and create_root work; put, put_block, commit, get_blocks, set_meta, copy and
 * remove return -EROFS and make no request.
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

struct files_config {
	const struct url_container *url; /* container: the share; prefix: a directory in it */
	const struct auth_cred *cred;    /* borrowed: must outlive the store */
	struct http_client *http;        /* borrowed: must outlive the store */
};

/* Builds a file share store. Makes no request (store_probe() does). -EINVAL for a
 * prefix with an empty, "." or ".." component, -ENAMETOOLONG for one too long. */
int files_store_new(const struct files_config *cfg, struct store **out);

#endif
