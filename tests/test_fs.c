/* Tests of fs/: a real FUSE mount of an in-memory fake store, driven through the
 * kernel with stat/readdir/read. A forked child mounts and tests; the parent always
 * unmounts and removes the mount point, even when the child crashes or hangs. */
#include "cache/cache.h"
#include "fs/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

#define PAGE_ENTRIES 5000
#define BIG_SIZE (4u << 20)
#define MANY_FILES 6000
#define TEST_UID 1234
#define TEST_GID 5678
#define CHILD_SECONDS 50

/* The fake store --------------------------------------------------------------- */

struct fake_object {
	char *path;
	unsigned char *data;
	size_t size;
	char etag[STORE_ETAG_MAX];
	int64_t mtime;
	bool marker;
};

struct fake_store {
	struct store base;
	pthread_mutex_t lock; /* guards objects, count, etag_seq */
	struct fake_object *objects;
	size_t count;
	unsigned etag_seq;
	atomic_int stats;
	atomic_int lists;
	atomic_int reads;
	atomic_size_t max_read_len;
};

static struct fake_store *fake_of(struct store *s)
{
	return (struct fake_store *)s;
}

static struct fake_object *fake_find(struct fake_store *fake, const char *path)
{
	size_t i;

	for (i = 0; i < fake->count; i++)
		if (strcmp(fake->objects[i].path, path) == 0)
			return &fake->objects[i];
	return NULL;
}

/* Adds or replaces an object; every write gets a new etag. */
static void fake_put(struct fake_store *fake, const char *path, const void *data, size_t size,
		     bool marker)
{
	struct fake_object *object;

	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, path);
	if (!object) {
		struct fake_object *objects =
			realloc(fake->objects, (fake->count + 1) * sizeof(*objects));

		if (!objects)
			abort();
		fake->objects = objects;
		object = &fake->objects[fake->count++];
		memset(object, 0, sizeof(*object));
		object->path = strdup(path);
	}
	free(object->data);
	object->data = malloc(size ? size : 1);
	if (!object->path || !object->data)
		abort();
	memcpy(object->data, data, size);
	object->size = size;
	object->marker = marker;
	object->mtime = 1700000000;
	snprintf(object->etag, sizeof(object->etag), "\"0x%u\"", ++fake->etag_seq);
	pthread_mutex_unlock(&fake->lock);
}

static void object_attr(const struct fake_object *object, struct store_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->size = object->size;
	out->mtime = object->mtime;
	out->is_dir = object->marker;
	memcpy(out->etag, object->etag, sizeof(out->etag));
}

static int fake_stat(struct store *s, const char *path, struct store_attr *out)
{
	struct fake_store *fake = fake_of(s);
	struct fake_object *object;
	int err = -ENOENT;

	atomic_fetch_add(&fake->stats, 1);
	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, path);
	if (object) {
		object_attr(object, out);
		err = 0;
	}
	pthread_mutex_unlock(&fake->lock);
	return err;
}

struct fake_child {
	char name[512];
	struct store_attr attr;
	bool prefix;
};

static int child_cmp(const void *pa, const void *pb)
{
	const struct fake_child *a = pa, *b = pb;
	int r = strcmp(a->name, b->name);

	return r ? r : (int)a->prefix - (int)b->prefix; /* blob "x" before prefix "x/" */
}

/* Children of dir as List Blobs with delimiter=/ reports them: sorted, a prefix once,
 * a marker blob and its prefix both. */
static struct fake_child *fake_children(struct fake_store *fake, const char *dir, size_t *count)
{
	size_t dir_len = strlen(dir), i, n = 0;
	struct fake_child *children = calloc(fake->count + 1, sizeof(*children));

	if (!children)
		abort();
	for (i = 0; i < fake->count; i++) {
		const struct fake_object *object = &fake->objects[i];
		const char *rest = object->path, *slash;
		struct fake_child *child = &children[n];
		size_t k;
		bool seen = false;

		if (dir_len) {
			if (strncmp(rest, dir, dir_len) != 0 || rest[dir_len] != '/')
				continue;
			rest += dir_len + 1;
		}
		slash = strchr(rest, '/');
		if (slash) {
			snprintf(child->name, sizeof(child->name), "%.*s", (int)(slash - rest), rest);
			child->prefix = true;
			child->attr.is_dir = true;
			for (k = 0; k < n; k++)
				if (children[k].prefix && strcmp(children[k].name, child->name) == 0)
					seen = true;
			if (seen)
				continue;
		} else {
			snprintf(child->name, sizeof(child->name), "%s", rest);
			object_attr(object, &child->attr);
		}
		n++;
	}
	qsort(children, n, sizeof(*children), child_cmp);
	*count = n;
	return children;
}

static int fake_list(struct store *s, const char *dir, const char *marker, store_list_fn fn,
		     void *ctx, char *next_marker, size_t next_len)
{
	struct fake_store *fake = fake_of(s);
	struct fake_child *children;
	size_t count, start = marker && marker[0] ? strtoul(marker, NULL, 10) : 0, i;
	int err = 0;

	atomic_fetch_add(&fake->lists, 1);
	pthread_mutex_lock(&fake->lock);
	children = fake_children(fake, dir, &count);
	pthread_mutex_unlock(&fake->lock);
	for (i = start; i < count && i < start + PAGE_ENTRIES && !err; i++) {
		struct store_entry entry = { .name = children[i].name, .attr = children[i].attr };

		err = fn(ctx, &entry);
	}
	if (i < count)
		snprintf(next_marker, next_len, "%zu", i);
	else
		snprintf(next_marker, next_len, "%s", "");
	free(children);
	return err;
}

/* Counted as a listing: it is one List Blobs request in the blob store. */
static int fake_has_children(struct store *s, const char *dir)
{
	struct fake_store *fake = fake_of(s);
	struct fake_child *children;
	size_t count;

	atomic_fetch_add(&fake->lists, 1);
	pthread_mutex_lock(&fake->lock);
	children = fake_children(fake, dir, &count);
	pthread_mutex_unlock(&fake->lock);
	free(children);
	return count > 0;
}

static ssize_t fake_read(struct store *s, const char *path, const char *etag, uint64_t offset,
			 size_t len, void *buf)
{
	struct fake_store *fake = fake_of(s);
	struct fake_object *object;
	size_t seen = atomic_load(&fake->max_read_len);
	ssize_t n = 0;

	atomic_fetch_add(&fake->reads, 1);
	while (len > seen && !atomic_compare_exchange_weak(&fake->max_read_len, &seen, len))
		;
	pthread_mutex_lock(&fake->lock);
	object = fake_find(fake, path);
	if (!object) {
		n = -ENOENT;
	} else if (etag && strcmp(etag, object->etag) != 0) {
		n = -ESTALE;
	} else if (offset < object->size) {
		n = (ssize_t)(object->size - offset < len ? object->size - offset : len);
		memcpy(buf, object->data + offset, (size_t)n);
	}
	pthread_mutex_unlock(&fake->lock);
	return n;
}

static int fake_probe(struct store *s, char *errbuf, size_t errlen)
{
	(void)s, (void)errbuf, (void)errlen;
	return 0;
}

static void fake_destroy(struct store *s)
{
	struct fake_store *fake = fake_of(s);
	size_t i;

	for (i = 0; i < fake->count; i++) {
		free(fake->objects[i].path);
		free(fake->objects[i].data);
	}
	free(fake->objects);
	pthread_mutex_destroy(&fake->lock);
	free(fake);
}

static const struct store_ops fake_ops = {
	.stat = fake_stat,
	.list = fake_list,
	.read = fake_read,
	.probe = fake_probe,
	.has_children = fake_has_children,
	.destroy = fake_destroy,
};

/* The fixture ------------------------------------------------------------------ */

static char mnt[64];
static struct fake_store *fake;
static unsigned char *big_data;
static atomic_int fuse_getattrs; /* getattr and lookup calls reaching fs/ */
static atomic_int skip_logs;
static int (*real_getattr)(const char *, struct stat *, struct fuse_file_info *);

static int counting_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	atomic_fetch_add(&fuse_getattrs, 1);
	return real_getattr(path, st, fi);
}

__attribute__((format(printf, 2, 0)))
static void test_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	if (level == FUSE_LOG_DEBUG && strstr(fmt, "skipping"))
		atomic_fetch_add(&skip_logs, 1);
	if (level != FUSE_LOG_DEBUG || getenv("FERRY_TEST_DEBUG"))
		vfprintf(stderr, fmt, ap);
}

static void fill_pattern(unsigned char *data, size_t size, unsigned seed)
{
	size_t i;

	for (i = 0; i < size; i++) {
		seed = seed * 1103515245u + 12345u;
		data[i] = (unsigned char)(seed >> 16);
	}
}

static void fixture_objects(void)
{
	static const char hello[] = "hello, world\n";
	char path[600], name[300];
	int i;

	fake_put(fake, "hello.txt", hello, sizeof(hello) - 1, false);
	fake_put(fake, "big.bin", big_data, BIG_SIZE, false);
	fake_put(fake, "change.bin", big_data, BIG_SIZE, false);
	fake_put(fake, "dir/a.txt", "a", 1, false);
	fake_put(fake, "dir/b.txt", "bb", 2, false);
	fake_put(fake, "marker_only", "", 0, true);
	fake_put(fake, "both", "", 0, true);
	fake_put(fake, "both/inner.txt", "i", 1, false);
	fake_put(fake, "prefix_only/x.txt", "x", 1, false);
	fake_put(fake, "shadow", "file", 4, false);
	fake_put(fake, "shadow/in.txt", "in", 2, false);
	fake_put(fake, "weird/ok.txt", "ok", 2, false);
	fake_put(fake, "weird/..", "dots", 4, false);
	fake_put(fake, "weird//empty", "e", 1, false); /* a child named "" */
	memset(name, 'n', 300);
	name[299] = '\0';
	snprintf(path, sizeof(path), "weird/%s", name);
	fake_put(fake, path, "long", 4, false);
	for (i = 0; i < MANY_FILES; i++) {
		snprintf(path, sizeof(path), "many/f%05d", i);
		fake_put(fake, path, "m", 1, false);
	}
}

static void mnt_path(char *out, size_t len, const char *rel)
{
	snprintf(out, len, "%s/%s", mnt, rel);
}

/* Names of a directory, sorted and joined by ' ', with 'd' after directory names. */
static void dir_names(const char *rel, char *out, size_t len)
{
	char path[256], *names[64];
	struct dirent *entry;
	size_t count = 0, used = 0, i, j;
	DIR *dir;

	out[0] = '\0';
	mnt_path(path, sizeof(path), rel);
	dir = opendir(path);
	CHECK(dir != NULL);
	if (!dir)
		return;
	while ((entry = readdir(dir)) != NULL && count < 64) {
		names[count] = malloc(strlen(entry->d_name) + 2);
		if (!names[count])
			abort();
		snprintf(names[count], strlen(entry->d_name) + 2, "%s%s", entry->d_name,
			 entry->d_type == DT_DIR ? "/" : "");
		count++;
	}
	closedir(dir);
	for (i = 1; i < count; i++)
		for (j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *swap = names[j];

			names[j] = names[j - 1];
			names[j - 1] = swap;
		}
	for (i = 0; i < count; i++) {
		int n = snprintf(out + used, len - used, "%s%s", i ? " " : "", names[i]);

		if (n > 0 && (size_t)n < len - used)
			used += (size_t)n;
		free(names[i]);
	}
}

/* Cases ------------------------------------------------------------------------ */

static void root_is_a_directory(void)
{
	struct stat st;

	CHECK(stat(mnt, &st) == 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK((st.st_mode & 07777) == 0755);
	CHECK(st.st_nlink == 2);
	CHECK(st.st_uid == TEST_UID && st.st_gid == TEST_GID);
}

static void file_attributes_come_from_the_store(void)
{
	char path[256];
	struct stat st;

	mnt_path(path, sizeof(path), "hello.txt");
	CHECK(stat(path, &st) == 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK((st.st_mode & 07777) == 0644);
	CHECK(st.st_nlink == 1);
	CHECK(st.st_size == 13);
	CHECK(st.st_blocks == 1);
	CHECK(st.st_blksize == (1 << 20));
	CHECK(st.st_mtime == 1700000000);
	CHECK(st.st_ctime == 1700000000 && st.st_atime == 1700000000);
	CHECK(st.st_uid == TEST_UID && st.st_gid == TEST_GID);
	mnt_path(path, sizeof(path), "big.bin");
	CHECK(stat(path, &st) == 0);
	CHECK(st.st_size == BIG_SIZE);
	CHECK(st.st_blocks == BIG_SIZE / 512);
}

static void directories_exist_by_marker_or_prefix(void)
{
	/* Not "shadow": a file whose name is also a prefix is a directory only once a
	 * listing has said so (a lookup asks store_stat() alone). */
	const char *dirs[] = { "marker_only", "prefix_only", "both", "dir" };
	char path[256];
	struct stat st;
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		mnt_path(path, sizeof(path), dirs[i]);
		CHECK(stat(path, &st) == 0);
		CHECK(S_ISDIR(st.st_mode));
		CHECK((st.st_mode & 07777) == 0755);
		CHECK(st.st_nlink == 2);
	}
	mnt_path(path, sizeof(path), "prefix_only/x.txt");
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode));
}

static void missing_names_are_enoent_and_cost_one_lookup(void)
{
	char path[256];
	struct stat st;
	int stats, lists;

	mnt_path(path, sizeof(path), "dir/nope");
	stats = atomic_load(&fake->stats);
	lists = atomic_load(&fake->lists);
	CHECK(stat(path, &st) == -1 && errno == ENOENT);
	CHECK(stat(path, &st) == -1 && errno == ENOENT);
	CHECK(atomic_load(&fake->stats) - stats <= 1);
	CHECK(atomic_load(&fake->lists) - lists <= 1);
}

static void readdir_merges_prefix_and_marker_and_skips_unshowable_names(void)
{
	char names[2048], path[256];
	struct stat st;

	dir_names("", names, sizeof(names));
	CHECK_STR(names, "../ ./ big.bin both/ change.bin dir/ hello.txt many/ marker_only/ "
			 "prefix_only/ shadow/ weird/");
	mnt_path(path, sizeof(path), "shadow/in.txt");
	CHECK(stat(path, &st) == 0 && st.st_size == 2);
	dir_names("weird", names, sizeof(names));
	CHECK_STR(names, "../ ./ ok.txt");
	CHECK(atomic_load(&skip_logs) >= 3); /* "..", "" and the 299-byte name */
	dir_names("both", names, sizeof(names));
	CHECK_STR(names, "../ ./ inner.txt");
	dir_names("marker_only", names, sizeof(names));
	CHECK_STR(names, "../ ./");
}

static void ls_l_of_a_6000_entry_dir_costs_two_list_pages_and_no_stat(void)
{
	char path[256];
	struct stat st;
	int lists = atomic_load(&fake->lists), stats, getattrs, entries = 0, i;
	DIR *dir;

	mnt_path(path, sizeof(path), "many");
	dir = opendir(path);
	CHECK(dir != NULL);
	if (!dir)
		return;
	while (readdir(dir) != NULL)
		entries++;
	closedir(dir);
	CHECK(entries == MANY_FILES + 2);
	CHECK(atomic_load(&fake->lists) - lists == 2); /* 5000 + 1000 */

	stats = atomic_load(&fake->stats);
	getattrs = atomic_load(&fuse_getattrs);
	for (i = 0; i < MANY_FILES; i++) {
		snprintf(path, sizeof(path), "%s/many/f%05d", mnt, i);
		CHECK(lstat(path, &st) == 0 && st.st_size == 1);
	}
	CHECK(atomic_load(&fake->stats) == stats);
	printf("lstat of %d entries after readdir: %d getattr/lookup calls reached fs/\n",
	       MANY_FILES, atomic_load(&fuse_getattrs) - getattrs);
	CHECK(atomic_load(&fuse_getattrs) - getattrs == 0); /* readdirplus filled the kernel */

	/* A second listing within entry_timeout is answered from the cache. */
	lists = atomic_load(&fake->lists);
	mnt_path(path, sizeof(path), "many");
	dir = opendir(path);
	entries = 0;
	while (dir && readdir(dir) != NULL)
		entries++;
	if (dir)
		closedir(dir);
	CHECK(entries == MANY_FILES + 2);
	CHECK(atomic_load(&fake->lists) == lists);
}

static void reads_return_the_blob_bytes(void)
{
	unsigned char buf[70000];
	char path[256];
	ssize_t n;
	int fd;

	mnt_path(path, sizeof(path), "hello.txt");
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	CHECK(n == 13 && memcmp(buf, "hello, world\n", 13) == 0);
	CHECK(read(fd, buf, sizeof(buf)) == 0);
	CHECK(pread(fd, buf, 10, 100) == 0);
	close(fd);

	mnt_path(path, sizeof(path), "big.bin");
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	n = pread(fd, buf, 65536, 0);
	CHECK(n == 65536 && memcmp(buf, big_data, 65536) == 0);
	n = pread(fd, buf, 1000, BIG_SIZE - 100); /* short at EOF */
	CHECK(n == 100 && memcmp(buf, big_data + BIG_SIZE - 100, 100) == 0);
	n = pread(fd, buf, 5000, 1234567);
	CHECK(n == 5000 && memcmp(buf, big_data + 1234567, 5000) == 0);
	close(fd);
}

struct reader {
	int fd;
	unsigned seed;
	int bad;
};

static void *reader_run(void *arg)
{
	struct reader *r = arg;
	unsigned char buf[8192];
	int i;

	for (i = 0; i < 200; i++) {
		size_t len, offset;

		r->seed = r->seed * 1103515245u + 12345u;
		offset = (r->seed >> 8) % BIG_SIZE;
		len = 1 + (r->seed % sizeof(buf));
		if (offset + len > BIG_SIZE)
			len = BIG_SIZE - offset;
		if (pread(r->fd, buf, len, (off_t)offset) != (ssize_t)len ||
		    memcmp(buf, big_data + offset, len) != 0)
			r->bad++;
	}
	return NULL;
}

static void parallel_reads_return_the_right_bytes(void)
{
	struct reader readers[6];
	pthread_t threads[6];
	char path[256];
	int i;

	mnt_path(path, sizeof(path), "big.bin");
	for (i = 0; i < 6; i++) {
		readers[i] = (struct reader){ .fd = open(path, O_RDONLY), .seed = (unsigned)i + 1 };
		CHECK(readers[i].fd >= 0);
		CHECK(pthread_create(&threads[i], NULL, reader_run, &readers[i]) == 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(threads[i], NULL);
		CHECK(readers[i].bad == 0);
		close(readers[i].fd);
	}
}

static void changed_blob_fails_stale_then_reopen_reads_new_bytes(void)
{
	unsigned char *fresh = malloc(BIG_SIZE), *buf = malloc(BIG_SIZE);
	char path[256];
	ssize_t n, got;
	int fd, reads;

	if (!fresh || !buf)
		abort();
	fill_pattern(fresh, BIG_SIZE, 99);
	mnt_path(path, sizeof(path), "change.bin");
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(pread(fd, buf, 4096, 0) == 4096 && memcmp(buf, big_data, 4096) == 0);
	fake_put(fake, "change.bin", fresh, BIG_SIZE, false); /* same size, new etag */
	errno = 0;
	n = pread(fd, buf, 4096, 2 << 20); /* never read before: must ask the store */
	CHECK(n == -1 && (errno == ESTALE || errno == EIO));
	if (n != -1 || errno != ESTALE)
		printf("read of a changed blob: n=%zd errno=%d (want ESTALE)\n", n, errno);
	close(fd);

	/* The stale read dropped the cached attributes: this open pins the new blob,
	 * and keep_cache=0 drops the old page at offset 0. */
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	for (got = 0; got < (ssize_t)BIG_SIZE; got += n) {
		n = pread(fd, buf + got, BIG_SIZE - (size_t)got, got);
		if (n <= 0)
			break;
	}
	CHECK(got == (ssize_t)BIG_SIZE && memcmp(buf, fresh, BIG_SIZE) == 0);
	close(fd);

	/* Same etag again: keep_cache=1, the pages stay and no read reaches the store. */
	reads = atomic_load(&fake->reads);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	CHECK(pread(fd, buf, 65536, 0) == 65536 && memcmp(buf, fresh, 65536) == 0);
	close(fd);
	CHECK(atomic_load(&fake->reads) == reads);
	printf("largest read asked of the store: %zu bytes\n", atomic_load(&fake->max_read_len));
	free(fresh);
	free(buf);
}

static void writes_fail_with_erofs(void)
{
	char path[256], other[256];

	mnt_path(path, sizeof(path), "hello.txt");
	mnt_path(other, sizeof(other), "moved.txt");
	CHECK(open(path, O_WRONLY) == -1 && errno == EROFS);
	CHECK(open(path, O_RDWR) == -1 && errno == EROFS);
	CHECK(truncate(path, 0) == -1 && errno == EROFS);
	CHECK(unlink(path) == -1 && errno == EROFS);
	CHECK(rename(path, other) == -1 && errno == EROFS);
	CHECK(open(other, O_WRONLY | O_CREAT, 0644) == -1 && errno == EROFS);
	mnt_path(path, sizeof(path), "newdir");
	CHECK(mkdir(path, 0755) == -1 && errno == EROFS);
	mnt_path(path, sizeof(path), "dir");
	CHECK(rmdir(path) == -1 && errno == EROFS);
}

static void statfs_reports_a_large_filesystem(void)
{
	struct statvfs st;

	CHECK(statvfs(mnt, &st) == 0);
	CHECK(st.f_bsize == 4096 && st.f_frsize == 4096);
	CHECK(st.f_blocks == (1ull << 50) / 4096);
	CHECK(st.f_bavail == st.f_blocks);
	CHECK(st.f_namemax == 255);
	CHECK(st.f_ffree > 1000000);
}

/* Mount, run, unmount ---------------------------------------------------------- */

static void *loop_run(void *arg)
{
	struct fuse_loop_config config = { .clone_fd = 0, .max_idle_threads = 10 };

	return (void *)(intptr_t)fuse_loop_mt(arg, &config);
}

static int child_main(void)
{
	struct fs_config cfg = {
		.attr_timeout = 30,
		.entry_timeout = 30,
		.negative_timeout = 30,
		.uid = TEST_UID,
		.gid = TEST_GID,
		.umask = 022,
		.read_only = true,
	};
	char *argv[] = { "test_fs", "-d", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(getenv("FERRY_TEST_DEBUG") ? 2 : 1, argv);
	struct fuse_operations ops = *fs_operations();
	struct fuse *fuse;
	struct fs *fs = NULL;
	struct cache *cache = NULL;
	struct cache_config ccfg = {
		.namespace = "test_fs",
		.block_size = 1 << 20,
		.mem_limit = 8 << 20,
		.workers = 4,
		.max_window = 4 << 20,
	};
	char cache_err[256];
	pthread_t loop;
	void *loop_result;

	alarm(CHILD_SECONDS);
	fuse_set_log_func(test_log);
	big_data = malloc(BIG_SIZE);
	fake = calloc(1, sizeof(*fake));
	if (!big_data || !fake)
		abort();
	fill_pattern(big_data, BIG_SIZE, 7);
	fake->base.ops = &fake_ops;
	pthread_mutex_init(&fake->lock, NULL);
	fixture_objects();
	cfg.store = &fake->base;
	ccfg.store = &fake->base;
	CHECK(cache_new(&ccfg, &cache, cache_err, sizeof(cache_err)) == 0);
	cfg.cache = cache;
	CHECK(fs_new(&cfg, &fs) == 0);
	real_getattr = ops.getattr;
	ops.getattr = counting_getattr;
	fuse = fuse_new(&args, &ops, sizeof(ops), fs);
	CHECK(fuse != NULL);
	if (!fuse || fuse_mount(fuse, mnt) != 0) {
		CHECK(!"mount failed");
		return 1;
	}
	CHECK(pthread_create(&loop, NULL, loop_run, fuse) == 0);

	RUN(root_is_a_directory);
	RUN(file_attributes_come_from_the_store);
	RUN(directories_exist_by_marker_or_prefix);
	RUN(missing_names_are_enoent_and_cost_one_lookup);
	RUN(readdir_merges_prefix_and_marker_and_skips_unshowable_names);
	RUN(ls_l_of_a_6000_entry_dir_costs_two_list_pages_and_no_stat);
	RUN(reads_return_the_blob_bytes);
	RUN(parallel_reads_return_the_right_bytes);
	RUN(changed_blob_fails_stale_then_reopen_reads_new_bytes);
	RUN(writes_fail_with_erofs);
	RUN(statfs_reports_a_large_filesystem);

	/* Unmounting ends the session: the loop sees ENODEV and returns. */
	if (umount2(mnt, 0) != 0) {
		perror("umount");
		umount2(mnt, MNT_DETACH);
	}
	pthread_join(loop, &loop_result);
	CHECK(loop_result == NULL);
	fuse_unmount(fuse);
	fuse_destroy(fuse);
	fuse_opt_free_args(&args);
	fs_free(fs);
	cache_free(cache);
	store_destroy(&fake->base);
	free(big_data);
	return unit_done();
}

int main(void)
{
	int status = 0, waited;
	pid_t pid;

	if (access("/dev/fuse", R_OK | W_OK) != 0) {
		printf("no /dev/fuse: skipped\n0 passed, 0 failed\n");
		return 0;
	}
	snprintf(mnt, sizeof(mnt), "/tmp/ferry-test-fs-XXXXXX");
	if (!mkdtemp(mnt)) {
		perror("mkdtemp");
		return 1;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		int code = child_main();

		fflush(stdout);
		_exit(code);
	}
	/* Whatever the child did, the mount goes away. */
	for (waited = 0; pid > 0 && waitpid(pid, &status, WNOHANG) == 0; waited++) {
		if (waited == (CHILD_SECONDS + 5) * 10) {
			fprintf(stderr, "test_fs: child hung, killing it\n");
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(100000);
	}
	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
	if (pid < 0 || !WIFEXITED(status)) {
		fprintf(stderr, "test_fs: child failed (status 0x%x)\n", status);
		return 1;
	}
	return WEXITSTATUS(status);
}
