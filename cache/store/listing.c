/* listing: a whole directory of a store as the tree shows it. */
#include "cache/store/listing.h"

#include <errno.h>
#include <string.h>

#include "auth/base/log.h"

bool store_name_showable(const char *name)
{
	size_t len = strnlen(name, STORE_NAME_MAX + 1);

	if (len == 0 || len > STORE_NAME_MAX)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	return strchr(name, '/') == NULL;
}

struct listing_filter {
	const char *dir;
	store_list_fn fn;
	void *ctx;
};

static int listing_filter_entry(void *ctx, const struct store_entry *entry)
{
	struct listing_filter *filter = ctx;

	if (!store_name_showable(entry->name)) {
		log_debug("skipping an entry of \"%s\" whose name cannot be shown: \"%.300s\"",
			  filter->dir, entry->name);
		return 0;
	}
	return filter->fn(filter->ctx, entry);
}

int store_list_all(struct store *s, const char *dir, int max_pages, store_list_fn fn,
		   void *ctx)
{
	struct listing_filter filter = { .dir = dir, .fn = fn, .ctx = ctx };
	char markers[2][STORE_MARKER_MAX];
	char *marker = markers[0], *next = markers[1], *swap;
	int err;

	marker[0] = '\0';
	do {
		next[0] = '\0';
		err = store_list(s, dir, marker, listing_filter_entry, &filter, next,
				 STORE_MARKER_MAX);
		if (err)
			return err > 0 ? -EIO : err;
		if (next[0] && strcmp(next, marker) == 0) {
			log_warn("listing \"%s\": the service handed back the page marker it was "
				 "given; stopping rather than looping",
				 dir);
			return -EIO;
		}
		if (next[0] && max_pages > 0 && --max_pages == 0)
			return -EFBIG;
		swap = marker;
		marker = next;
		next = swap;
	} while (marker[0]);
	return 0;
}

int store_entry_rank(bool is_dir, bool has_etag)
{
	return is_dir ? (has_etag ? 2 : 1) : 0;
}

void store_entry_merge(struct store_attr *kept, const struct store_attr *dup)
{
	int64_t mtime = kept->mtime > dup->mtime ? kept->mtime : dup->mtime;

	if (store_entry_rank(dup->is_dir, dup->etag[0] != '\0') >
	    store_entry_rank(kept->is_dir, kept->etag[0] != '\0'))
		*kept = *dup;
	if (kept->is_dir) {
		kept->size = 0;
		if (kept->mtime == 0)
			kept->mtime = mtime;
	}
}
