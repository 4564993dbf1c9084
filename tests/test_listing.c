/* Tests of cache/store/listing: every page, the guard against a repeated page marker,
 * the names a directory cannot show, and which of two entries of one name is shown;
 * against a store whose pages are scripted. */
#include "cache/store/listing.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

#define PAGES_MAX 4
#define PAGE_ENTRIES_MAX 8

/* A store of scripted pages: page i is answered to marker "pi" ("" for page 0) and
 * hands back next[i] as the next marker. */
struct scripted {
	struct store base;
	struct store_entry pages[PAGES_MAX][PAGE_ENTRIES_MAX];
	size_t counts[PAGES_MAX];
	const char *next[PAGES_MAX];
	int lists;
};

static int scripted_list(struct store *s, const char *dir, const char *marker,
			 store_list_fn fn, void *ctx, char *next_marker, size_t next_len)
{
	struct scripted *sc = (struct scripted *)s;
	size_t page = marker && marker[0] == 'p' ? (size_t)(marker[1] - '0') : 0;

	(void)dir;
	sc->lists++;
	if (page >= PAGES_MAX)
		return -EINVAL;
	for (size_t i = 0; i < sc->counts[page]; i++) {
		int err = fn(ctx, &sc->pages[page][i]);

		if (err)
			return err;
	}
	snprintf(next_marker, next_len, "%s", sc->next[page] ? sc->next[page] : "");
	return 0;
}

static const struct store_ops scripted_ops = { .list = scripted_list };

static void scripted_init(struct scripted *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->base.ops = &scripted_ops;
}

static void scripted_add(struct scripted *sc, size_t page, const char *name, bool is_dir,
			 const char *etag)
{
	struct store_entry *e = &sc->pages[page][sc->counts[page]++];

	e->name = name;
	e->attr.is_dir = is_dir;
	snprintf(e->attr.etag, sizeof(e->attr.etag), "%s", etag ? etag : "");
}

/* One file a page, named by names, each page naming the next; the last one names
 * last_next ("" or NULL: it is the last). */
static void scripted_chain(struct scripted *sc, const char *const *names, size_t n,
			   const char *last_next)
{
	static const char *const markers[PAGES_MAX] = { "p0", "p1", "p2", "p3" };

	scripted_init(sc);
	for (size_t i = 0; i < n && i < PAGES_MAX; i++) {
		scripted_add(sc, i, names[i], false, NULL);
		sc->next[i] = i + 1 < n ? markers[i + 1] : last_next;
	}
}

struct seen {
	char names[1024];
	int count;
	int stop_at; /* return -EINTR at this entry (1-based); 0: never */
};

static int collect(void *ctx, const struct store_entry *entry)
{
	struct seen *seen = ctx;
	size_t used = strlen(seen->names);

	if (++seen->count == seen->stop_at)
		return -EINTR;
	snprintf(seen->names + used, sizeof(seen->names) - used, "%s%s", used ? " " : "",
		 entry->name);
	return 0;
}

static void reads_every_page(void)
{
	static const char *const names[] = { "a", "b", "c" };
	struct scripted sc;
	struct seen seen = { 0 };

	scripted_chain(&sc, names, 3, NULL);
	CHECK(store_list_all(&sc.base, "", 0, collect, &seen) == 0);
	CHECK_STR(seen.names, "a b c");
	CHECK(sc.lists == 3);
}

static void repeated_marker_stops_with_eio(void)
{
	static const char *const names[] = { "a", "b" };
	struct scripted sc;
	struct seen seen = { 0 };

	scripted_chain(&sc, names, 2, "p1"); /* page 1 names itself as the next page */
	CHECK(store_list_all(&sc.base, "", 0, collect, &seen) == -EIO);
	CHECK(sc.lists == 2);
}

static void max_pages_stops_with_efbig(void)
{
	static const char *const names[] = { "a", "b" };
	struct scripted sc;
	struct seen seen = { 0 };

	scripted_chain(&sc, names, 2, NULL);
	CHECK(store_list_all(&sc.base, "", 1, collect, &seen) == -EFBIG);
	CHECK(sc.lists == 1);
	memset(&seen, 0, sizeof(seen));
	CHECK(store_list_all(&sc.base, "", 2, collect, &seen) == 0);
	CHECK_STR(seen.names, "a b");
}

static void callback_error_stops_the_listing(void)
{
	struct scripted sc;
	struct seen seen = { .stop_at = 2 };

	scripted_init(&sc);
	scripted_add(&sc, 0, "a", false, NULL);
	scripted_add(&sc, 0, "b", false, NULL);
	scripted_add(&sc, 0, "c", false, NULL);
	CHECK(store_list_all(&sc.base, "", 0, collect, &seen) == -EINTR);
	CHECK(seen.count == 2);
}

static void names_a_directory_cannot_show_are_skipped(void)
{
	char long_name[STORE_NAME_MAX + 2], max_name[STORE_NAME_MAX + 1];
	struct scripted sc;
	struct seen seen = { 0 };

	memset(long_name, 'L', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	memset(max_name, 'M', sizeof(max_name) - 1);
	max_name[sizeof(max_name) - 1] = '\0';
	scripted_init(&sc);
	scripted_add(&sc, 0, "", false, NULL); /* a placeholder "dir/" inside dir */
	scripted_add(&sc, 0, ".", true, NULL);
	scripted_add(&sc, 0, "..", true, NULL);
	scripted_add(&sc, 0, "a/b", false, NULL);
	scripted_add(&sc, 0, long_name, false, NULL);
	scripted_add(&sc, 0, "ok", false, NULL);
	scripted_add(&sc, 0, "...", false, NULL);
	scripted_add(&sc, 0, max_name, false, NULL);
	CHECK(store_list_all(&sc.base, "dir", 0, collect, &seen) == 0);
	CHECK(seen.count == 3);
	CHECK(strncmp(seen.names, "ok ... M", 8) == 0);
	CHECK(store_name_showable(max_name));
	CHECK(!store_name_showable(long_name));
}

static void a_folder_wins_over_a_file_of_its_name(void)
{
	struct store_attr file = { .size = 9, .mtime = 50, .etag = "\"f\"" };
	struct store_attr prefix = { .is_dir = true };
	struct store_attr marker = { .is_dir = true, .mtime = 20, .etag = "\"m\"" };
	struct store_attr kept;

	CHECK(store_entry_rank(false, true) < store_entry_rank(true, false));
	CHECK(store_entry_rank(true, false) < store_entry_rank(true, true));

	kept = file;
	store_entry_merge(&kept, &prefix);
	CHECK(kept.is_dir && kept.size == 0 && !kept.etag[0]);
	CHECK(kept.mtime == 50); /* a prefix has no time: the newer of the two */

	kept = prefix;
	store_entry_merge(&kept, &file);
	CHECK(kept.is_dir && kept.size == 0);

	kept = prefix;
	store_entry_merge(&kept, &marker);
	CHECK(kept.is_dir && kept.mtime == 20);
	CHECK_STR(kept.etag, "\"m\"");

	kept = marker;
	store_entry_merge(&kept, &prefix);
	CHECK_STR(kept.etag, "\"m\"");
}

int main(void)
{
	RUN(reads_every_page);
	RUN(repeated_marker_stops_with_eio);
	RUN(max_pages_stops_with_efbig);
	RUN(callback_error_stops_the_listing);
	RUN(names_a_directory_cannot_show_are_skipped);
	RUN(a_folder_wins_over_a_file_of_its_name);
	return unit_done();
}
