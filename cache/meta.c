/* meta: bounded metadata cache; see meta.h for what it promises. */
#include "cache/meta.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/store/listing.h"

#define META_BUCKETS_MIN 1024
#define META_NAMES_MAX UINT32_MAX

/* Listings ---------------------------------------------------------------------- */

/* One entry; its name and etag live in the listing's arena. */
struct meta_dirent {
	uint64_t size;
	int64_t mtime;
	uint32_t mtime_nsec;
	uint32_t name_off;
	uint32_t name_len;
	uint32_t etag_off;
	bool is_dir;
	bool is_symlink;
};

struct meta_listing {
	atomic_size_t refs;
	bool finished;
	struct meta_dirent *entries;
	size_t count;
	size_t entries_cap;
	char *arena; /* NUL-terminated names and etags, back to back */
	size_t arena_len;
	size_t arena_cap;
};

int meta_listing_new(struct meta_listing **out)
{
	struct meta_listing *listing = calloc(1, sizeof(*listing));

	if (!listing)
		return -ENOMEM;
	atomic_init(&listing->refs, 1);
	*out = listing;
	return 0;
}

static int listing_arena_push(struct meta_listing *listing, const char *text, size_t len,
			      uint32_t *off)
{
	size_t need = listing->arena_len + len + 1;

	if (need > META_NAMES_MAX)
		return -EFBIG;
	if (need > listing->arena_cap) {
		size_t cap = listing->arena_cap ? listing->arena_cap : 4096;
		char *arena;

		while (cap < need)
			cap *= 2;
		arena = realloc(listing->arena, cap);
		if (!arena)
			return -ENOMEM;
		listing->arena = arena;
		listing->arena_cap = cap;
	}
	memcpy(listing->arena + listing->arena_len, text, len);
	listing->arena[listing->arena_len + len] = '\0';
	*off = (uint32_t)listing->arena_len;
	listing->arena_len = need;
	return 0;
}

int meta_listing_add(struct meta_listing *listing, const char *name,
		     const struct store_attr *attr)
{
	struct meta_dirent *entry;
	size_t name_len = strlen(name);
	size_t etag_len = strnlen(attr->etag, sizeof(attr->etag));
	size_t arena_len = listing->arena_len;
	int err;

	if (listing->finished)
		return -EINVAL;
	if (listing->count == UINT32_MAX)
		return -EFBIG;
	if (listing->count == listing->entries_cap) {
		size_t cap = listing->entries_cap ? listing->entries_cap * 2 : 64;
		struct meta_dirent *entries = reallocarray(listing->entries, cap, sizeof(*entries));

		if (!entries)
			return -ENOMEM;
		listing->entries = entries;
		listing->entries_cap = cap;
	}
	entry = &listing->entries[listing->count];
	entry->name_len = (uint32_t)name_len;
	err = listing_arena_push(listing, name, name_len, &entry->name_off);
	if (!err)
		err = listing_arena_push(listing, attr->etag, etag_len, &entry->etag_off);
	if (err) {
		listing->arena_len = arena_len; /* drop a half-added entry */
		return err;
	}
	entry->size = attr->size;
	entry->mtime = attr->mtime;
	entry->mtime_nsec = attr->mtime_nsec;
	entry->is_dir = attr->is_dir;
	entry->is_symlink = attr->is_symlink;
	listing->count++;
	return 0;
}

static int name_cmp(const char *a, size_t a_len, const char *b, size_t b_len)
{
	int r = memcmp(a, b, a_len < b_len ? a_len : b_len);

	if (r)
		return r;
	return (a_len > b_len) - (a_len < b_len);
}

static int dirent_cmp(const void *pa, const void *pb, void *ctx)
{
	const struct meta_dirent *a = pa, *b = pb;
	const char *arena = ctx;

	return name_cmp(arena + a->name_off, a->name_len, arena + b->name_off, b->name_len);
}

/* Merges dup into kept (same name), by the rule of store_entry_merge(). */
static void dirent_merge(const struct meta_listing *listing, struct meta_dirent *kept,
			 const struct meta_dirent *dup)
{
	struct meta_dirent primary = *kept;
	int64_t mtime = kept->mtime > dup->mtime ? kept->mtime : dup->mtime;

	if (store_entry_rank(dup->is_dir, listing->arena[dup->etag_off] != '\0') >
	    store_entry_rank(kept->is_dir, listing->arena[kept->etag_off] != '\0'))
		primary = *dup;
	if (primary.is_dir) {
		primary.size = 0;
		if (primary.mtime == 0)
			primary.mtime = mtime;
	}
	*kept = primary;
}

int meta_listing_finish(struct meta_listing *listing)
{
	size_t read_index, write_index = 0;

	if (listing->finished)
		return -EINVAL;
	if (listing->count > 1)
		qsort_r(listing->entries, listing->count, sizeof(listing->entries[0]),
			dirent_cmp, listing->arena);
	for (read_index = 0; read_index < listing->count; read_index++) {
		struct meta_dirent *entry = &listing->entries[read_index];

		if (write_index > 0 &&
		    dirent_cmp(&listing->entries[write_index - 1], entry, listing->arena) == 0) {
			dirent_merge(listing, &listing->entries[write_index - 1], entry);
			continue;
		}
		listing->entries[write_index++] = *entry;
	}
	listing->count = write_index;
	listing->finished = true;
	/* Give back the slack of doubling: a cached listing lives long. */
	if (listing->count && listing->count < listing->entries_cap) {
		struct meta_dirent *entries =
			reallocarray(listing->entries, listing->count, sizeof(*entries));

		if (entries) {
			listing->entries = entries;
			listing->entries_cap = listing->count;
		}
	}
	if (listing->arena_len && listing->arena_len < listing->arena_cap) {
		char *arena = realloc(listing->arena, listing->arena_len);

		if (arena) {
			listing->arena = arena;
			listing->arena_cap = listing->arena_len;
		}
	}
	return 0;
}

size_t meta_listing_count(const struct meta_listing *listing)
{
	return listing->count;
}

const char *meta_listing_name(const struct meta_listing *listing, size_t index)
{
	return listing->arena + listing->entries[index].name_off;
}

static void dirent_attr(const struct meta_listing *listing, const struct meta_dirent *entry,
			struct store_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->size = entry->size;
	out->mtime = entry->mtime;
	out->mtime_nsec = entry->mtime_nsec;
	out->is_dir = entry->is_dir;
	out->is_symlink = entry->is_symlink;
	/* The etag came from a store_attr, so it fits. */
	memcpy(out->etag, listing->arena + entry->etag_off,
	       strnlen(listing->arena + entry->etag_off, sizeof(out->etag) - 1));
}

void meta_listing_attr(const struct meta_listing *listing, size_t index, struct store_attr *out)
{
	dirent_attr(listing, &listing->entries[index], out);
}

int meta_listing_find(const struct meta_listing *listing, const char *name, size_t len,
		      struct store_attr *out)
{
	size_t lo = 0, hi = listing->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct meta_dirent *entry = &listing->entries[mid];
		int r = name_cmp(listing->arena + entry->name_off, entry->name_len, name, len);

		if (r == 0) {
			if (out)
				dirent_attr(listing, entry, out);
			return 0;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -ENOENT;
}

struct meta_listing *meta_listing_hold(struct meta_listing *listing)
{
	atomic_fetch_add_explicit(&listing->refs, 1, memory_order_relaxed);
	return listing;
}

void meta_listing_release(struct meta_listing *listing)
{
	if (!listing)
		return;
	if (atomic_fetch_sub_explicit(&listing->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(listing->entries);
	free(listing->arena);
	free(listing);
}

/* The cache --------------------------------------------------------------------- */

enum meta_attr_state { ATTR_NONE, ATTR_PRESENT, ATTR_MISSING };

struct meta_node {
	struct meta_node *hash_next;
	struct meta_node *lru_prev; /* toward the oldest */
	struct meta_node *lru_next; /* toward the newest */
	uint64_t hash;
	enum meta_attr_state attr_state;
	struct store_attr attr;
	uint64_t attr_seq; /* when stored, in put order: newer wins in meta_lookup */
	uint64_t attr_expiry_ns;
	struct meta_listing *listing;
	uint64_t listing_seq;
	uint64_t listing_expiry_ns;
	/* Names in the listing's directory changed since it was fetched: the listing no
	 * longer answers for them, nor for readdir. An open-addressing set of name hashes
	 * (never 0): a collision only sends a lookup to the store. */
	uint64_t *changed;
	size_t changed_count;
	size_t changed_cap; /* 0 or a power of two */
	uint64_t claim_expiry_ns; /* meta_claim_listing(): no new claim before this */
	char *open_etag; /* etag noted at the last open, or NULL */
	size_t path_len;
	char path[];
};

struct meta_cache {
	/* Immutable after meta_new. */
	uint64_t attr_ttl_ns;
	uint64_t entry_ttl_ns;
	uint64_t negative_ttl_ns;
	size_t max_entries;

	pthread_mutex_t lock; /* guards everything below */
	struct meta_node **buckets;
	size_t bucket_count; /* a power of two */
	size_t node_count;
	struct meta_node *lru_oldest;
	struct meta_node *lru_newest;
	size_t cost; /* node_count + entries of cached listings */
	uint64_t next_seq;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t ttl_ns(double seconds)
{
	if (!(seconds > 0))
		return 0;
	if (seconds > 1e9) /* ~31 years: forever, without overflow */
		seconds = 1e9;
	return (uint64_t)(seconds * 1e9);
}

/* FNV-1a, 64 bits. */
static uint64_t path_hash(const char *path, size_t len)
{
	uint64_t hash = 0xcbf29ce484222325u;
	size_t i;

	for (i = 0; i < len; i++) {
		hash ^= (unsigned char)path[i];
		hash *= 0x100000001b3u;
	}
	return hash;
}

/* Length of the parent of path ("a/b" -> 1, "a" -> 0). */
static size_t parent_len(const char *path, size_t len)
{
	while (len > 0 && path[len - 1] != '/')
		len--;
	return len > 0 ? len - 1 : 0;
}

int meta_new(const struct meta_config *cfg, struct meta_cache **out)
{
	struct meta_cache *mc;
	int err;

	if (!cfg || cfg->max_entries == 0)
		return -EINVAL;
	mc = calloc(1, sizeof(*mc));
	if (!mc)
		return -ENOMEM;
	mc->attr_ttl_ns = ttl_ns(cfg->attr_timeout);
	mc->entry_ttl_ns = ttl_ns(cfg->entry_timeout);
	mc->negative_ttl_ns = ttl_ns(cfg->negative_timeout);
	mc->max_entries = cfg->max_entries;
	mc->bucket_count = META_BUCKETS_MIN;
	mc->buckets = calloc(mc->bucket_count, sizeof(*mc->buckets));
	if (!mc->buckets) {
		err = -ENOMEM;
		goto out_free_mc;
	}
	err = -pthread_mutex_init(&mc->lock, NULL);
	if (err)
		goto out_free_buckets;
	mc->next_seq = 1;
	*out = mc;
	return 0;

out_free_buckets:
	free(mc->buckets);
out_free_mc:
	free(mc);
	return err;
}

static void node_free(struct meta_node *node)
{
	meta_listing_release(node->listing);
	free(node->changed);
	free(node->open_etag);
	free(node);
}

void meta_free(struct meta_cache *mc)
{
	struct meta_node *node, *next;

	if (!mc)
		return;
	for (node = mc->lru_oldest; node; node = next) {
		next = node->lru_next;
		node_free(node);
	}
	pthread_mutex_destroy(&mc->lock);
	free(mc->buckets);
	free(mc);
}

/* Everything below with a "locked_" name or taking a node runs under mc->lock. */

static struct meta_node *locked_find(struct meta_cache *mc, const char *path, size_t len,
				     uint64_t hash)
{
	struct meta_node *node = mc->buckets[hash & (mc->bucket_count - 1)];

	for (; node; node = node->hash_next)
		if (node->hash == hash && node->path_len == len && memcmp(node->path, path, len) == 0)
			return node;
	return NULL;
}

static void lru_unlink(struct meta_cache *mc, struct meta_node *node)
{
	if (node->lru_prev)
		node->lru_prev->lru_next = node->lru_next;
	else
		mc->lru_oldest = node->lru_next;
	if (node->lru_next)
		node->lru_next->lru_prev = node->lru_prev;
	else
		mc->lru_newest = node->lru_prev;
	node->lru_prev = node->lru_next = NULL;
}

static void lru_append(struct meta_cache *mc, struct meta_node *node)
{
	node->lru_prev = mc->lru_newest;
	node->lru_next = NULL;
	if (mc->lru_newest)
		mc->lru_newest->lru_next = node;
	else
		mc->lru_oldest = node;
	mc->lru_newest = node;
}

static void locked_touch(struct meta_cache *mc, struct meta_node *node)
{
	if (mc->lru_newest == node)
		return;
	lru_unlink(mc, node);
	lru_append(mc, node);
}

/* Doubles the table; on allocation failure chains just grow longer. */
static void locked_grow(struct meta_cache *mc)
{
	size_t count = mc->bucket_count * 2, i;
	struct meta_node **buckets = calloc(count, sizeof(*buckets));

	if (!buckets)
		return;
	for (i = 0; i < mc->bucket_count; i++) {
		struct meta_node *node = mc->buckets[i], *next;

		for (; node; node = next) {
			next = node->hash_next;
			node->hash_next = buckets[node->hash & (count - 1)];
			buckets[node->hash & (count - 1)] = node;
		}
	}
	free(mc->buckets);
	mc->buckets = buckets;
	mc->bucket_count = count;
}

static struct meta_node *locked_find_or_add(struct meta_cache *mc, const char *path)
{
	size_t len = strlen(path);
	uint64_t hash = path_hash(path, len);
	struct meta_node *node = locked_find(mc, path, len, hash);
	size_t bucket;

	if (node)
		return node;
	node = calloc(1, sizeof(*node) + len + 1);
	if (!node)
		return NULL;
	memcpy(node->path, path, len + 1);
	node->path_len = len;
	node->hash = hash;
	if (mc->node_count >= mc->bucket_count)
		locked_grow(mc);
	bucket = hash & (mc->bucket_count - 1);
	node->hash_next = mc->buckets[bucket];
	mc->buckets[bucket] = node;
	mc->node_count++;
	mc->cost++;
	lru_append(mc, node);
	return node;
}

static void locked_remove(struct meta_cache *mc, struct meta_node *node)
{
	struct meta_node **link = &mc->buckets[node->hash & (mc->bucket_count - 1)];

	while (*link != node)
		link = &(*link)->hash_next;
	*link = node->hash_next;
	lru_unlink(mc, node);
	mc->node_count--;
	mc->cost -= 1 + (node->listing ? node->listing->count + node->changed_count : 0);
	node_free(node);
}

static void locked_drop_listing(struct meta_cache *mc, struct meta_node *node)
{
	if (!node->listing)
		return;
	mc->cost -= node->listing->count + node->changed_count;
	meta_listing_release(node->listing);
	node->listing = NULL;
	free(node->changed);
	node->changed = NULL;
	node->changed_count = node->changed_cap = 0;
}

static uint64_t name_key(const char *name, size_t len)
{
	return path_hash(name, len) | 1;
}

/* The slot of key in an open-addressing set of cap (a power of two) slots: where it
 * is, or the empty slot where it goes. The set is never full. */
static size_t set_slot(const uint64_t *set, size_t cap, uint64_t key)
{
	size_t i = key & (cap - 1);

	while (set[i] != 0 && set[i] != key)
		i = (i + 1) & (cap - 1);
	return i;
}

static bool changed_has(const struct meta_node *dir, const char *name, size_t len)
{
	uint64_t key;

	if (!dir->changed_count)
		return false;
	key = name_key(name, len);
	return dir->changed[set_slot(dir->changed, dir->changed_cap, key)] == key;
}

/* Adds key to dir's changed set, keeping it at most half full. -ENOMEM. */
static int locked_changed_add(struct meta_cache *mc, struct meta_node *dir,
			      const char *name, size_t len)
{
	uint64_t key = name_key(name, len);

	if (changed_has(dir, name, len))
		return 0;
	if (2 * (dir->changed_count + 1) > dir->changed_cap) {
		size_t cap = dir->changed_cap ? 2 * dir->changed_cap : 16;
		uint64_t *set = calloc(cap, sizeof(*set));

		if (!set)
			return -ENOMEM;
		for (size_t i = 0; i < dir->changed_cap; i++)
			if (dir->changed[i])
				set[set_slot(set, cap, dir->changed[i])] = dir->changed[i];
		free(dir->changed);
		dir->changed = set;
		dir->changed_cap = cap;
	}
	dir->changed[set_slot(dir->changed, dir->changed_cap, key)] = key;
	dir->changed_count++;
	mc->cost++;
	return 0;
}

/* Removes node if it holds nothing any more. */
static void locked_prune(struct meta_cache *mc, struct meta_node *node)
{
	if (node->attr_state == ATTR_NONE && !node->listing && !node->open_etag &&
	    !node->claim_expiry_ns)
		locked_remove(mc, node);
}

/* Evicts the oldest nodes, never keep, until the budget holds. */
static void locked_evict(struct meta_cache *mc, const struct meta_node *keep)
{
	while (mc->cost > mc->max_entries) {
		struct meta_node *victim = mc->lru_oldest;

		if (victim == keep)
			victim = victim->lru_next;
		if (!victim)
			return;
		locked_remove(mc, victim);
	}
}

enum meta_lookup meta_lookup(struct meta_cache *mc, const char *path, struct store_attr *out)
{
	size_t len = strlen(path);
	size_t dir_len = parent_len(path, len);
	const char *name = path + dir_len + (dir_len > 0);
	size_t name_len = len - (size_t)(name - path);
	enum meta_lookup result = META_MISS;
	uint64_t result_seq = 0;
	struct store_attr attr;
	struct meta_node *node, *parent = NULL;
	uint64_t now;

	pthread_mutex_lock(&mc->lock);
	now = now_ns();
	node = locked_find(mc, path, len, path_hash(path, len));
	if (node && node->attr_state != ATTR_NONE) {
		if (now < node->attr_expiry_ns) {
			result = node->attr_state == ATTR_PRESENT ? META_FOUND : META_ABSENT;
			result_seq = node->attr_seq;
			attr = node->attr;
		} else {
			node->attr_state = ATTR_NONE;
			locked_prune(mc, node);
		}
	}
	if (len > 0)
		parent = locked_find(mc, path, dir_len, path_hash(path, dir_len));
	if (parent && parent->listing) {
		if (now >= parent->listing_expiry_ns) {
			locked_drop_listing(mc, parent);
			locked_prune(mc, parent);
		} else if ((result == META_MISS || parent->listing_seq > result_seq) &&
			   !changed_has(parent, name, name_len)) {
			if (meta_listing_find(parent->listing, name, name_len, &attr) == 0)
				result = META_FOUND;
			else
				result = META_ABSENT;
		}
	}
	pthread_mutex_unlock(&mc->lock);
	if (result == META_FOUND && out)
		*out = attr;
	return result;
}

static int put_record(struct meta_cache *mc, const char *path, const struct store_attr *attr,
		      uint64_t ttl)
{
	struct meta_node *node;

	if (ttl == 0)
		return 0;
	pthread_mutex_lock(&mc->lock);
	node = locked_find_or_add(mc, path);
	if (!node) {
		pthread_mutex_unlock(&mc->lock);
		return -ENOMEM;
	}
	if (attr) {
		node->attr_state = ATTR_PRESENT;
		node->attr = *attr;
	} else {
		node->attr_state = ATTR_MISSING;
		memset(&node->attr, 0, sizeof(node->attr));
	}
	node->attr_seq = mc->next_seq++;
	node->attr_expiry_ns = now_ns() + ttl;
	locked_touch(mc, node);
	locked_evict(mc, node);
	pthread_mutex_unlock(&mc->lock);
	return 0;
}

int meta_put_attr(struct meta_cache *mc, const char *path, const struct store_attr *attr)
{
	return put_record(mc, path, attr, mc->attr_ttl_ns);
}

int meta_put_missing(struct meta_cache *mc, const char *path)
{
	return put_record(mc, path, NULL, mc->negative_ttl_ns);
}

bool meta_claim_listing(struct meta_cache *mc, const char *dir)
{
	struct meta_node *node;
	bool claimed = false;
	uint64_t now;

	if (mc->entry_ttl_ns == 0)
		return false;
	pthread_mutex_lock(&mc->lock);
	now = now_ns();
	node = locked_find_or_add(mc, dir);
	if (node && now >= node->claim_expiry_ns) {
		node->claim_expiry_ns = now + mc->entry_ttl_ns;
		claimed = true;
		locked_touch(mc, node);
		locked_evict(mc, node);
	}
	pthread_mutex_unlock(&mc->lock);
	return claimed;
}

int meta_put_listing(struct meta_cache *mc, const char *dir, struct meta_listing *listing)
{
	struct meta_node *node;
	int err = 0;

	if (!listing->finished)
		return -EINVAL;
	if (mc->entry_ttl_ns == 0)
		return 0;
	pthread_mutex_lock(&mc->lock);
	node = locked_find_or_add(mc, dir);
	if (!node) {
		err = -ENOMEM;
		goto out_unlock;
	}
	locked_drop_listing(mc, node);
	if (listing->count >= mc->max_entries) {
		locked_prune(mc, node);
		err = -ENOSPC;
		goto out_unlock;
	}
	node->listing = meta_listing_hold(listing);
	node->listing_seq = mc->next_seq++;
	node->listing_expiry_ns = now_ns() + mc->entry_ttl_ns;
	mc->cost += listing->count;
	locked_touch(mc, node);
	locked_evict(mc, node);
out_unlock:
	pthread_mutex_unlock(&mc->lock);
	return err;
}

struct meta_listing *meta_get_listing(struct meta_cache *mc, const char *dir)
{
	size_t len = strlen(dir);
	struct meta_listing *listing = NULL;
	struct meta_node *node;

	pthread_mutex_lock(&mc->lock);
	node = locked_find(mc, dir, len, path_hash(dir, len));
	if (node && node->listing && !node->changed_count) {
		if (now_ns() < node->listing_expiry_ns) {
			listing = meta_listing_hold(node->listing);
		} else {
			locked_drop_listing(mc, node);
			locked_prune(mc, node);
		}
	}
	pthread_mutex_unlock(&mc->lock);
	return listing;
}

void meta_invalidate(struct meta_cache *mc, const char *path)
{
	size_t len = strlen(path);
	size_t dir_len = parent_len(path, len);
	struct meta_node *node;

	pthread_mutex_lock(&mc->lock);
	node = locked_find(mc, path, len, path_hash(path, len));
	if (node) {
		node->attr_state = ATTR_NONE;
		locked_prune(mc, node);
	}
	node = len > 0 ? locked_find(mc, path, dir_len, path_hash(path, dir_len)) : NULL;
	if (node && node->listing) {
		size_t name_off = dir_len + (dir_len > 0);

		if (locked_changed_add(mc, node, path + name_off, len - name_off))
			locked_drop_listing(mc, node);
		locked_evict(mc, node);
		if (mc->cost > mc->max_entries) /* the listing and its set alone are too many */
			locked_drop_listing(mc, node);
		locked_prune(mc, node);
	}
	pthread_mutex_unlock(&mc->lock);
}

void meta_invalidate_listing(struct meta_cache *mc, const char *dir)
{
	size_t len = strlen(dir);
	struct meta_node *node;

	pthread_mutex_lock(&mc->lock);
	node = locked_find(mc, dir, len, path_hash(dir, len));
	if (node) {
		locked_drop_listing(mc, node);
		locked_prune(mc, node);
	}
	pthread_mutex_unlock(&mc->lock);
}

void meta_invalidate_tree(struct meta_cache *mc, const char *dir)
{
	size_t len = strlen(dir);
	struct meta_node *node, *next;

	meta_invalidate(mc, dir);
	pthread_mutex_lock(&mc->lock);
	for (node = mc->lru_oldest; node; node = next) {
		next = node->lru_next;
		if (node->path_len > len && (len == 0 || node->path[len] == '/') &&
		    memcmp(node->path, dir, len) == 0) {
			node->attr_state = ATTR_NONE;
			locked_drop_listing(mc, node);
			locked_prune(mc, node);
		}
	}
	pthread_mutex_unlock(&mc->lock);
}

bool meta_note_open(struct meta_cache *mc, const char *path, const char *etag)
{
	char *copy = strdup(etag);
	struct meta_node *node;
	bool same = false;

	pthread_mutex_lock(&mc->lock);
	node = locked_find_or_add(mc, path);
	if (node) {
		same = etag[0] != '\0' && node->open_etag && strcmp(node->open_etag, etag) == 0;
		free(node->open_etag);
		node->open_etag = copy; /* NULL when strdup failed: the next open is "changed" */
		copy = NULL;
		locked_touch(mc, node);
		locked_evict(mc, node);
		locked_prune(mc, node);
	}
	pthread_mutex_unlock(&mc->lock);
	free(copy);
	return same;
}

size_t meta_entry_count(struct meta_cache *mc)
{
	size_t cost;

	pthread_mutex_lock(&mc->lock);
	cost = mc->cost;
	pthread_mutex_unlock(&mc->lock);
	return cost;
}
