/* Unit tests of cache/meta: expiry, negative entries, listings, the bound, threads. */
#include "cache/meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "unit.h"

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static struct meta_cache *cache_new(double attr, double entry, double negative, size_t max)
{
	struct meta_config cfg = {
		.attr_timeout = attr,
		.entry_timeout = entry,
		.negative_timeout = negative,
		.max_entries = max,
	};
	struct meta_cache *mc = NULL;

	CHECK(meta_new(&cfg, &mc) == 0);
	return mc;
}

static struct store_attr file_attr(uint64_t size, const char *etag)
{
	struct store_attr attr = { .size = size, .mtime = 1700000000 };

	snprintf(attr.etag, sizeof(attr.etag), "%s", etag);
	return attr;
}

static struct store_attr dir_attr(const char *etag)
{
	struct store_attr attr = { .is_dir = true };

	snprintf(attr.etag, sizeof(attr.etag), "%s", etag);
	return attr;
}

static struct meta_listing *listing_of(const char *const *names, const struct store_attr *attrs,
				       size_t count)
{
	struct meta_listing *listing = NULL;
	size_t i;

	CHECK(meta_listing_new(&listing) == 0);
	for (i = 0; i < count; i++)
		CHECK(meta_listing_add(listing, names[i], &attrs[i]) == 0);
	CHECK(meta_listing_finish(listing) == 0);
	return listing;
}

static void attr_is_found_until_attr_timeout(void)
{
	struct meta_cache *mc = cache_new(0.05, 10, 10, 100);
	struct store_attr attr = file_attr(42, "\"e1\""), got;

	CHECK(meta_lookup(mc, "a/b", &got) == META_MISS);
	CHECK(meta_put_attr(mc, "a/b", &attr) == 0);
	memset(&got, 0, sizeof(got));
	CHECK(meta_lookup(mc, "a/b", &got) == META_FOUND);
	CHECK(got.size == 42);
	CHECK_STR(got.etag, "\"e1\"");
	CHECK(meta_lookup(mc, "a/c", &got) == META_MISS);
	sleep_ms(80);
	CHECK(meta_lookup(mc, "a/b", &got) == META_MISS);
	CHECK(meta_entry_count(mc) == 0); /* the expired record was dropped */
	meta_free(mc);
}

static void missing_is_absent_until_negative_timeout(void)
{
	struct meta_cache *mc = cache_new(10, 10, 0.05, 100);
	struct store_attr attr = file_attr(1, "\"e\"");

	CHECK(meta_put_missing(mc, "gone") == 0);
	CHECK(meta_lookup(mc, "gone", NULL) == META_ABSENT);
	sleep_ms(80);
	CHECK(meta_lookup(mc, "gone", NULL) == META_MISS);
	/* A later attribute replaces the negative entry. */
	CHECK(meta_put_missing(mc, "gone") == 0);
	CHECK(meta_put_attr(mc, "gone", &attr) == 0);
	CHECK(meta_lookup(mc, "gone", NULL) == META_FOUND);
	meta_free(mc);
}

static void zero_timeouts_cache_nothing(void)
{
	struct meta_cache *mc = cache_new(0, 0, 0, 100);
	struct store_attr attr = file_attr(1, "\"e\"");
	struct meta_listing *listing = listing_of((const char *[]){ "x" }, &attr, 1);

	CHECK(meta_put_attr(mc, "f", &attr) == 0);
	CHECK(meta_put_missing(mc, "g") == 0);
	CHECK(meta_put_listing(mc, "", listing) == 0);
	CHECK(meta_lookup(mc, "f", NULL) == META_MISS);
	CHECK(meta_lookup(mc, "g", NULL) == META_MISS);
	CHECK(meta_lookup(mc, "x", NULL) == META_MISS);
	CHECK(meta_get_listing(mc, "") == NULL);
	CHECK(meta_entry_count(mc) == 0);
	meta_listing_release(listing);
	meta_free(mc);
}

static void listing_merges_prefix_and_marker_of_same_name(void)
{
	const char *names[] = { "zeta", "both", "file", "both", "only_prefix", "shadow", "shadow" };
	struct store_attr attrs[] = {
		file_attr(5, "\"z\""),
		dir_attr(""),           /* "both/" as a prefix */
		file_attr(7, "\"f\""),
		dir_attr("\"marker\""), /* "both" as a marker blob */
		dir_attr(""),
		file_attr(9, "\"s\""),  /* a file "shadow" ... */
		dir_attr(""),           /* ... and a prefix "shadow/": the directory wins */
	};
	struct meta_listing *listing;
	struct store_attr got;

	attrs[3].mtime = 1600000000;
	listing = listing_of(names, attrs, 7);
	CHECK(meta_listing_count(listing) == 5);
	CHECK_STR(meta_listing_name(listing, 0), "both");
	CHECK_STR(meta_listing_name(listing, 1), "file");
	CHECK_STR(meta_listing_name(listing, 2), "only_prefix");
	CHECK_STR(meta_listing_name(listing, 3), "shadow");
	CHECK_STR(meta_listing_name(listing, 4), "zeta");
	meta_listing_attr(listing, 0, &got);
	CHECK(got.is_dir);
	CHECK(got.size == 0);
	CHECK(got.mtime == 1600000000); /* the marker's time */
	CHECK_STR(got.etag, "\"marker\"");
	CHECK(meta_listing_find(listing, "shadow", 6, &got) == 0);
	CHECK(got.is_dir);
	CHECK(got.size == 0);
	CHECK(meta_listing_find(listing, "file", 4, &got) == 0);
	CHECK(!got.is_dir && got.size == 7);
	CHECK(meta_listing_find(listing, "fil", 3, NULL) == -ENOENT);
	CHECK(meta_listing_find(listing, "files", 5, NULL) == -ENOENT);
	CHECK(meta_listing_add(listing, "late", &attrs[0]) == -EINVAL);
	meta_listing_release(listing);
}

static void lookups_of_children_come_from_fresh_listing(void)
{
	struct meta_cache *mc = cache_new(10, 0.05, 10, 100);
	const char *names[] = { "a.txt", "sub" };
	struct store_attr attrs[] = { file_attr(3, "\"a\""), dir_attr("") };
	struct meta_listing *listing = listing_of(names, attrs, 2);
	struct meta_listing *got_listing;
	struct store_attr got;

	CHECK(meta_put_listing(mc, "d", listing) == 0);
	meta_listing_release(listing); /* the cache holds its own reference */
	CHECK(meta_lookup(mc, "d/a.txt", &got) == META_FOUND);
	CHECK(got.size == 3);
	CHECK(meta_lookup(mc, "d/sub", &got) == META_FOUND);
	CHECK(got.is_dir);
	CHECK(meta_lookup(mc, "d/nope", NULL) == META_ABSENT);
	CHECK(meta_lookup(mc, "d/a.txt/x", NULL) == META_MISS); /* not a child of "d" */
	CHECK(meta_lookup(mc, "d", NULL) == META_MISS);         /* nor "d" itself */
	got_listing = meta_get_listing(mc, "d");
	CHECK(got_listing && meta_listing_count(got_listing) == 2);
	sleep_ms(80);
	CHECK(meta_lookup(mc, "d/nope", NULL) == META_MISS);
	CHECK(meta_get_listing(mc, "d") == NULL);
	/* A listing held by a caller outlives its expiry in the cache. */
	CHECK(got_listing && strcmp(meta_listing_name(got_listing, 1), "sub") == 0);
	meta_listing_release(got_listing);
	meta_free(mc);
}

static void root_listing_answers_top_level_names(void)
{
	struct meta_cache *mc = cache_new(10, 10, 10, 100);
	struct store_attr attr = file_attr(1, "\"t\"");
	struct meta_listing *listing = listing_of((const char *[]){ "top" }, &attr, 1);

	CHECK(meta_put_listing(mc, "", listing) == 0);
	CHECK(meta_lookup(mc, "top", NULL) == META_FOUND);
	CHECK(meta_lookup(mc, "other", NULL) == META_ABSENT);
	meta_listing_release(listing);
	meta_free(mc);
}

static void empty_listing_says_every_child_is_absent(void)
{
	struct meta_cache *mc = cache_new(10, 10, 10, 100);
	struct meta_listing *listing = listing_of(NULL, NULL, 0), *got;

	CHECK(meta_listing_count(listing) == 0);
	CHECK(meta_listing_find(listing, "x", 1, NULL) == -ENOENT);
	CHECK(meta_put_listing(mc, "empty", listing) == 0);
	CHECK(meta_lookup(mc, "empty/x", NULL) == META_ABSENT);
	got = meta_get_listing(mc, "empty");
	CHECK(got == listing);
	meta_listing_release(got);
	meta_listing_release(listing);
	meta_free(mc);
}

static void newer_record_wins_over_older_listing(void)
{
	struct meta_cache *mc = cache_new(10, 10, 10, 100);
	struct store_attr attr = file_attr(1, "\"n\""), got;
	struct meta_listing *listing;

	/* Missing first, then a listing that names it: the listing is newer. */
	CHECK(meta_put_missing(mc, "d/new") == 0);
	listing = listing_of((const char *[]){ "new" }, &attr, 1);
	CHECK(meta_put_listing(mc, "d", listing) == 0);
	meta_listing_release(listing);
	CHECK(meta_lookup(mc, "d/new", NULL) == META_FOUND);
	/* Then a newer record of the path itself. */
	attr.size = 99;
	CHECK(meta_put_attr(mc, "d/new", &attr) == 0);
	CHECK(meta_lookup(mc, "d/new", &got) == META_FOUND);
	CHECK(got.size == 99);
	CHECK(meta_put_missing(mc, "d/new") == 0);
	CHECK(meta_lookup(mc, "d/new", NULL) == META_ABSENT);
	meta_free(mc);
}

static void invalidate_drops_record_and_stops_listing_answering_for_it(void)
{
	struct meta_cache *mc = cache_new(10, 10, 10, 100);
	struct store_attr attr = file_attr(1, "\"i\"");
	struct meta_listing *listing =
		listing_of((const char *[]){ "f", "g" }, (struct store_attr[]){ attr, attr }, 2);
	char path[32];

	CHECK(meta_put_listing(mc, "d", listing) == 0);
	CHECK(meta_put_attr(mc, "d/f", &attr) == 0);
	meta_invalidate(mc, "d/f");
	meta_invalidate(mc, "d/new");
	CHECK(meta_entry_count(mc) == 5); /* d, its 2 entries, 2 changed names */
	CHECK(meta_lookup(mc, "d/f", NULL) == META_MISS);
	CHECK(meta_lookup(mc, "d/new", NULL) == META_MISS);
	CHECK(meta_get_listing(mc, "d") == NULL); /* not whole: readdir lists again */
	/* The other names are still answered by the listing. */
	CHECK(meta_lookup(mc, "d/g", NULL) == META_FOUND);
	CHECK(meta_lookup(mc, "d/other", NULL) == META_ABSENT);
	/* Until a new listing replaces it, whatever many names change (the set grows). */
	for (int i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "d/n%d", i);
		meta_invalidate(mc, path);
	}
	CHECK(meta_lookup(mc, "d/n39", NULL) == META_MISS);
	CHECK(meta_lookup(mc, "d/n0", NULL) == META_MISS);
	CHECK(meta_lookup(mc, "d/g", NULL) == META_FOUND);
	CHECK(meta_entry_count(mc) == 45); /* and 40 more changed names */
	/* More changed names than the budget holds: the listing goes, the bound holds. */
	for (int i = 40; i < 150; i++) {
		snprintf(path, sizeof(path), "d/n%d", i);
		meta_invalidate(mc, path);
		CHECK(meta_entry_count(mc) <= 100);
	}
	CHECK(meta_lookup(mc, "d/n0", NULL) == META_MISS);
	CHECK(meta_lookup(mc, "d/g", NULL) == META_MISS);
	CHECK(meta_put_listing(mc, "d", listing) == 0);
	CHECK(meta_lookup(mc, "d/f", NULL) == META_FOUND);
	CHECK(meta_lookup(mc, "d/n0", NULL) == META_ABSENT);
	struct meta_listing *got = meta_get_listing(mc, "d");
	CHECK(got == listing);
	meta_listing_release(got);
	meta_invalidate(mc, "d/f");

	CHECK(meta_put_listing(mc, "d", listing) == 0);
	CHECK(meta_put_attr(mc, "d", &attr) == 0);
	meta_invalidate_listing(mc, "d");
	CHECK(meta_get_listing(mc, "d") == NULL);
	CHECK(meta_lookup(mc, "d/f", NULL) == META_MISS);
	CHECK(meta_lookup(mc, "d", NULL) == META_FOUND); /* its own record stays */
	meta_listing_release(listing);
	meta_free(mc);
}

static void bound_evicts_oldest_first(void)
{
	struct meta_cache *mc = cache_new(60, 60, 60, 100);
	struct store_attr attr = file_attr(1, "\"b\"");
	char path[32];
	int i;

	for (i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "f%d", i);
		CHECK(meta_put_attr(mc, path, &attr) == 0);
		CHECK(meta_entry_count(mc) <= 100);
	}
	CHECK(meta_entry_count(mc) == 100);
	CHECK(meta_lookup(mc, "f0", NULL) == META_MISS);
	CHECK(meta_lookup(mc, "f899", NULL) == META_MISS);
	CHECK(meta_lookup(mc, "f900", NULL) == META_FOUND);
	CHECK(meta_lookup(mc, "f999", NULL) == META_FOUND);
	meta_free(mc);
}

static void bound_counts_listing_entries(void)
{
	struct meta_cache *mc = cache_new(60, 60, 60, 100);
	struct store_attr attr = file_attr(1, "\"l\"");
	struct meta_listing *big, *small;
	char name[32];
	int i;

	CHECK(meta_listing_new(&big) == 0);
	for (i = 0; i < 150; i++) {
		snprintf(name, sizeof(name), "n%03d", i);
		CHECK(meta_listing_add(big, name, &attr) == 0);
	}
	CHECK(meta_listing_finish(big) == 0);
	CHECK(meta_put_listing(mc, "big", big) == -ENOSPC);
	CHECK(meta_get_listing(mc, "big") == NULL);
	CHECK(meta_entry_count(mc) == 0);

	CHECK(meta_listing_new(&small) == 0);
	for (i = 0; i < 60; i++) {
		snprintf(name, sizeof(name), "n%03d", i);
		CHECK(meta_listing_add(small, name, &attr) == 0);
	}
	CHECK(meta_listing_finish(small) == 0);
	CHECK(meta_put_listing(mc, "one", small) == 0);
	CHECK(meta_entry_count(mc) == 61);
	CHECK(meta_put_listing(mc, "two", small) == 0); /* 122 > 100: "one" goes */
	CHECK(meta_entry_count(mc) == 61);
	CHECK(meta_get_listing(mc, "one") == NULL);
	CHECK(meta_lookup(mc, "two/n059", NULL) == META_FOUND);
	meta_listing_release(big);
	meta_listing_release(small);
	meta_free(mc);
}

static void open_etag_is_same_only_when_unchanged(void)
{
	struct meta_cache *mc = cache_new(10, 10, 10, 100);

	CHECK(!meta_note_open(mc, "f", "\"1\"")); /* first open: nothing known */
	CHECK(meta_note_open(mc, "f", "\"1\""));
	CHECK(!meta_note_open(mc, "f", "\"2\""));
	CHECK(meta_note_open(mc, "f", "\"2\""));
	CHECK(!meta_note_open(mc, "f", ""));
	CHECK(!meta_note_open(mc, "f", ""));
	CHECK(!meta_note_open(mc, "g", "\"2\""));
	meta_free(mc);
}

struct worker {
	struct meta_cache *mc;
	struct meta_listing *listing;
	int id;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct store_attr attr = file_attr(0, "\"w\""), got;
	char path[64];
	int i;

	for (i = 0; i < 20000; i++) {
		snprintf(path, sizeof(path), "d%d/f%d", i % 7, (i * 31 + w->id) % 500);
		attr.size = (uint64_t)i;
		switch (i % 6) {
		case 0:
			meta_put_attr(w->mc, path, &attr);
			break;
		case 1:
			meta_put_missing(w->mc, path);
			break;
		case 2:
			snprintf(path, sizeof(path), "d%d", i % 7);
			meta_put_listing(w->mc, path, w->listing);
			break;
		case 3: {
			struct meta_listing *listing;

			snprintf(path, sizeof(path), "d%d", i % 7);
			listing = meta_get_listing(w->mc, path);
			if (listing) {
				meta_listing_find(listing, "n5", 2, &got);
				meta_listing_release(listing);
			}
			break;
		}
		case 4:
			meta_invalidate(w->mc, path);
			meta_note_open(w->mc, path, "\"w\"");
			break;
		default:
			meta_lookup(w->mc, path, &got);
			break;
		}
	}
	return NULL;
}

static void concurrent_use_from_threads_keeps_the_bound(void)
{
	struct meta_cache *mc = cache_new(60, 60, 60, 300);
	struct store_attr attr = file_attr(1, "\"c\"");
	struct meta_listing *listing;
	struct worker workers[8];
	pthread_t threads[8];
	char name[16];
	int i;

	CHECK(meta_listing_new(&listing) == 0);
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		CHECK(meta_listing_add(listing, name, &attr) == 0);
	}
	CHECK(meta_listing_finish(listing) == 0);
	for (i = 0; i < 8; i++) {
		workers[i] = (struct worker){ .mc = mc, .listing = listing, .id = i };
		CHECK(pthread_create(&threads[i], NULL, worker_run, &workers[i]) == 0);
	}
	for (i = 0; i < 8; i++)
		pthread_join(threads[i], NULL);
	CHECK(meta_entry_count(mc) <= 300);
	meta_free(mc);
	/* The cache's references are gone: ours is the last one. */
	CHECK(meta_listing_count(listing) == 40);
	meta_listing_release(listing);
}

static void listing_claim_is_given_once_per_entry_timeout(void)
{
	struct meta_cache *mc = cache_new(10, 0.2, 10, 100);
	struct meta_cache *off = cache_new(10, 0, 10, 100);

	CHECK(meta_claim_listing(mc, "d"));
	CHECK(!meta_claim_listing(mc, "d"));
	CHECK(meta_claim_listing(mc, "")); /* each directory has its own */
	meta_invalidate(mc, "d/x");          /* a change in d keeps the claim */
	CHECK(!meta_claim_listing(mc, "d"));
	sleep_ms(300);
	CHECK(meta_claim_listing(mc, "d"));
	CHECK(!meta_claim_listing(off, "d")); /* entry_timeout 0: never */
	meta_free(mc);
	meta_free(off);
}

int main(void)
{
	RUN(attr_is_found_until_attr_timeout);
	RUN(missing_is_absent_until_negative_timeout);
	RUN(zero_timeouts_cache_nothing);
	RUN(listing_merges_prefix_and_marker_of_same_name);
	RUN(lookups_of_children_come_from_fresh_listing);
	RUN(root_listing_answers_top_level_names);
	RUN(empty_listing_says_every_child_is_absent);
	RUN(newer_record_wins_over_older_listing);
	RUN(invalidate_drops_record_and_stops_listing_answering_for_it);
	RUN(bound_evicts_oldest_first);
	RUN(bound_counts_listing_entries);
	RUN(open_etag_is_same_only_when_unchanged);
	RUN(listing_claim_is_given_once_per_entry_timeout);
	RUN(concurrent_use_from_threads_keeps_the_bound);
	return unit_done();
}
