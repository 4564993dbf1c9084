/* fuzz_listxml: a List Blobs answer fed to listxml in pieces of fuzzed sizes, then
 * finished. The first input byte seeds the piece sizes; the rest is the document. */
#include <stdint.h>
#include <string.h>

#include "cache/store/listxml.h"
#include "feedxml.h"
#include "tests/fuzz/fuzz.h"

FUZZ_NO_SETUP

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
	size_t sum = 0;
	struct xmlstream *p;

	if (size < 1 || listxml_new(on_item, &sum, &p) != 0)
		return 0;
	sum += feedxml_run(p, data, size);

	/* The metadata mtime parser takes the input as one string. */
	char s[64];
	int64_t sec;
	uint32_t nsec;
	if (listxml_parse_mtime(feedxml_string(data, size, s, sizeof(s)), &sec, &nsec) == 0)
		sum += nsec;
	return sum == 0x7fffffff; /* keeps sum alive; always 0 in practice */
}
