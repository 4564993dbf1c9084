/* fuzz_filesxml: a List Directories and Files answer fed to filesxml in pieces of
 * fuzzed sizes, then finished; every entry it lets through must be a name a share can
 * hold. The first input byte seeds the piece sizes; the rest is the document, also
 * tried as a File service time. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store/filesxml.h"
#include "feedxml.h"
#include "tests/fuzz/fuzz.h"

FUZZ_NO_SETUP

static int on_entry(void *ctx, const struct store_entry *entry)
{
	size_t *sum = ctx;
	const struct store_attr *a = &entry->attr;
	size_t etag_len = strlen(a->etag);

	/* What the parser promises of every entry; a broken promise is a crash here. */
	if (filesxml_check_name(entry->name) != 0 || a->mtime_nsec > 999999999u ||
	    (etag_len && (etag_len < 2 || a->etag[0] != '"' || a->etag[etag_len - 1] != '"')) ||
	    (a->is_dir && a->size))
		abort();
	*sum += strlen(entry->name) + etag_len + (size_t)a->size + (size_t)a->mtime;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t sum = 0;
	struct xmlstream *p;

	if (size < 1 || filesxml_new(on_entry, &sum, &p) != 0)
		return 0;
	sum += feedxml_run(p, data, size);

	/* The time parser takes the input as one string. */
	char s[64];
	int64_t sec;
	uint32_t nsec;
	if (filesxml_parse_time(feedxml_string(data, size, s, sizeof(s)), &sec, &nsec) == 0) {
		if (nsec > 999999999u)
			abort();
		sum += nsec;
	}
	return sum == 0x7fffffff; /* keeps sum alive; always 0 in practice */
}
