/* listxml: a streaming parser of List Blobs answers (EnumerationResults): an xmlstream
 * with their grammar, fed piece by piece as the body arrives, so a 5000-entry page is
 * never held whole. One parser per response; not thread-safe. */
#ifndef FERRY_LISTXML_H
#define FERRY_LISTXML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/store/xmlstream.h"

struct listxml_item {
	const char *name;  /* full blob name or prefix, decoded (Encoded="true" names too);
			      prefixes keep their trailing '/' */
	bool is_prefix;    /* a BlobPrefix entry */
	uint64_t size;     /* Content-Length */
	int64_t mtime;     /* Last-Modified, seconds since the epoch */
	const char *etag;  /* as in the XML (Azure and Azurite send it unquoted) */
	bool hdi_isfolder; /* metadata hdi_isfolder=true (any case) */
	bool is_symlink;   /* metadata is_symlink=true (any case) */
	bool has_meta_mtime; /* metadata ferry_mtime=SEC.NSEC was present and valid */
	int64_t meta_mtime;
	uint32_t meta_mtime_nsec;
};

/* Called for each entry as soon as it is complete; non-zero stops the parse and is
 * returned by xmlstream_feed(). The item's strings live until the callback returns. */
typedef int (*listxml_fn)(void *ctx, const struct listxml_item *item);

/* A parser of one List Blobs answer: feed it with xmlstream_feed(), end it with
 * xmlstream_finish(), which gives the NextMarker, free it with xmlstream_free().
 * -EINVAL without fn, -ENOMEM. */
int listxml_new(listxml_fn fn, void *ctx, struct xmlstream **out);

/* Parses ferry's mtime metadata value "SEC.NSEC" (NSEC 0..999999999, ".NSEC" optional).
 * -EINVAL when malformed. */
int listxml_parse_mtime(const char *s, int64_t *sec, uint32_t *nsec);

#endif
