/* feedxml: how the fuzz targets of the listing parsers (fuzz_listxml, fuzz_filesxml)
 * feed a document: the first input byte seeds the sizes of the pieces (1 to 300
 * bytes), the rest is the document; then it is finished and the parser freed.
 * size must be at least 1. */
#ifndef FERRY_FEEDXML_H
#define FERRY_FEEDXML_H

#include <stdint.h>
#include <string.h>

#include "cache/store/xmlstream.h"

/* Feeds data[1..size) to p as above, finishes and frees it: the length of the
 * NextMarker, or 0 when the document was refused. */
static inline size_t feedxml_run(struct xmlstream *p, const uint8_t *data, size_t size)
{
	uint32_t seed = data[0] * 2654435761u + 1;
	size_t off = 1, marker_len = 0;
	char marker[1024];
	int rc = 0;

	while (off < size && rc == 0) {
		seed = seed * 1103515245u + 12345u;
		size_t n = (seed >> 16) % 300 + 1;
		if (n > size - off)
			n = size - off;
		rc = xmlstream_feed(p, (const char *)data + off, n);
		off += n;
	}
	if (rc == 0 && xmlstream_finish(p, marker, sizeof(marker)) == 0)
		marker_len = strlen(marker);
	xmlstream_free(p);
	return marker_len;
}

/* The document, data[1..size), as a string in s (cut to cap - 1 bytes), for the
 * parsers of single values. */
static inline const char *feedxml_string(const uint8_t *data, size_t size, char *s,
					 size_t cap)
{
	size_t len = size - 1 < cap - 1 ? size - 1 : cap - 1;

	memcpy(s, data + 1, len);
	s[len] = '\0';
	return s;
}

#endif
