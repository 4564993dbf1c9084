/* filesxml: a streaming parser of the File service's List Directories and Files
 * answers (EnumerationResults/Entries of File and Directory), fed piece by piece as the
 * body arrives, so that a 5000-entry page is never held whole.
 *
 * A hostile or broken answer is refused, not trusted: -EBADMSG for a name that is
 * empty, "." or "..", or holds '/' (also once decoded: Encoded="true", "&#47;"), a
 * File without its Content-Length, a malformed number, time or ETag, more than
 * FILESXML_ENTRIES_MAX entries, and what xmlstream.h refuses (a DOCTYPE, nesting,
 * XML that is not well-formed); -ENAMETOOLONG for a name longer than
 * FILESXML_NAME_MAX_CHARS characters. One parser per response; not thread-safe.
 */
#ifndef FERRY_FILESXML_H
#define FERRY_FILESXML_H

#include <stddef.h>
#include <stdint.h>

#include "cache/store/store.h"
#include "cache/store/xmlstream.h"

#define FILESXML_NAME_MAX_CHARS 255 /* the File service's bound on a path component */
#define FILESXML_ENTRIES_MAX 5000   /* the most the service puts in a page */

/* A parser of one List Directories and Files answer: feed it with xmlstream_feed(),
 * end it with xmlstream_finish(), which gives the NextMarker, free it with
 * xmlstream_free(). Each entry goes to fn as a store_entry as soon as its end tag
 * arrives: name is one path component, decoded; attr.is_dir for a Directory;
 * attr.size its Content-Length (files); attr.etag quoted as in HTTP headers, "" when
 * absent; attr.mtime and mtime_nsec from LastWriteTime when present, else
 * Last-Modified, else 0. The strings live until fn returns; non-zero from fn stops
 * the parse and is what xmlstream_feed() returns. -EINVAL without fn, -ENOMEM. */
int filesxml_new(store_list_fn fn, void *ctx, struct xmlstream **out);

/* Whether name can be one component of a path on a share: 0; -EINVAL when it is
 * empty, "." or "..", or holds '/'; -ENAMETOOLONG when it is longer than
 * FILESXML_NAME_MAX_CHARS characters. */
int filesxml_check_name(const char *name);

/* Parses a File service time ("2023-09-25T12:43:08.6337775Z": UTC, 0 to 9 digits of
 * fraction), as in listings and the x-ms-file-*-time headers. -EINVAL when malformed. */
int filesxml_parse_time(const char *s, int64_t *sec, uint32_t *nsec);

#endif
