/* listing: a whole directory of a store as the tree shows it, for the mount (fs/fs.c)
 * and for ferry ls, cp and the launcher (datastore_list).
 *
 * The rules are docs/semantics.md's "Names a filesystem cannot show as they are": an
 * empty name (a placeholder "x/" inside x, "a//b"), "." and "..", and names over
 * STORE_NAME_MAX bytes are not shown; of entries of one name, a directory wins over a
 * file (the blob "x" beside blobs under "x/"), and a marker object gives a directory
 * its attributes. Thread-safe as the store is.
 */
#ifndef FERRY_LISTING_H
#define FERRY_LISTING_H

#include <stdbool.h>

#include "cache/store/store.h"

#define STORE_NAME_MAX 255    /* bytes of one name a directory can show (Linux's limit) */
#define STORE_MARKER_MAX 4096 /* a List Blobs continuation marker is far shorter */

/* True when a directory can show name: 1..STORE_NAME_MAX bytes, no '/', not "." or
 * "..". */
bool store_name_showable(const char *name);

/* Calls fn for every child of dir that store_name_showable() accepts, page after page,
 * in the service's order and unmerged (one name may come more than once: see
 * store_entry_rank()). With max_pages > 0, -EFBIG once that many pages were read and
 * more remain. -EIO when the service hands back the marker it was given (the same page
 * again would loop forever). A non-zero return of fn stops the listing and is returned
 * (-EIO for a positive one). Other errors are the store's. */
int store_list_all(struct store *s, const char *dir, int max_pages, store_list_fn fn,
		   void *ctx);

/* Of entries of one name, the one of the highest rank is shown: 0 a file, 1 a
 * directory that is a prefix only, 2 a marker object (a directory with an ETag). */
int store_entry_rank(bool is_dir, bool has_etag);

/* Merges dup, an entry of kept's name, into kept: the higher rank's attributes win
 * (kept's on a tie); a directory has size 0 and, without a time of its own, the newer
 * of the two times. */
void store_entry_merge(struct store_attr *kept, const struct store_attr *dup);

#endif
