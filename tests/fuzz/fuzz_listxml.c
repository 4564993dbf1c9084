/* fuzz_listxml: a List Blobs answer fed to listxml in pieces of fuzzed sizes, then
 * finished. The first input byte seeds the piece sizes; the rest is the document. */
#include <stdint.h>
#include <string.h>

#include "cache/store/listxml.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int on_item(void *ctx, const struct listxml_item *it)
{
	size_t *sum = ctx;
	/* Touch every string so ASan sees a dangling or unterminated one. */
	*sum += strlen(it->name) + (it->etag ? strlen(it->etag) : 0) + it->is_prefix +
		it->hdi_isfolder + it->is_symlink + (size_t)it->size + (size_t)it->mtime;
	if (it->has_meta_mtime)
		*sum += it->meta_mtime_nsec;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint32_t seed = data[0] * 2654435761u + 1;
	data++;
	size--;
	size_t sum = 0;
	struct listxml *p;
	if (listxml_new(on_item, &sum, &p) != 0)
		return 0;
	size_t off = 0;
	int rc = 0;
	while (off < size && rc == 0) {
		seed = seed * 1103515245u + 12345u;
		size_t n = (seed >> 16) % 300 + 1;
		if (n > size - off)
			n = size - off;
		rc = listxml_feed(p, (const char *)data + off, n);
		off += n;
	}
	char marker[1024];
	if (rc == 0 && listxml_finish(p, marker, sizeof(marker)) == 0)
		sum += strlen(marker);
	listxml_free(p);

	/* The metadata mtime parser takes the input as one string. */
	char s[64];
	size_t l = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	memcpy(s, data, l);
	s[l] = '\0';
	int64_t sec;
	uint32_t nsec;
	if (listxml_parse_mtime(s, &sec, &nsec) == 0)
		sum += nsec;
	return sum == 0x7fffffff; /* keeps sum alive; always 0 in practice */
}
