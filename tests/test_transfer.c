/* Unit tests of transfer: uploads and downloads of files and trees against an
 * in-memory store (whole puts for small files, blocks for large ones, ranged reads),
 * byte-exact round trips, kept mtimes, and failures that name the file and leave no
 * partial file behind. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/lib/transfer.h"
#include "unit.h"

#define CHUNK (64u << 10)
#define MAX_OBJECTS 256
#define MAX_BLOCKS 256

/* In-memory store ----------------------------------------------------------------------- */

struct mem_object {
	char name[1100];
	char *data;
	size_t size;
	struct store_meta meta;
	char etag[32];
	unsigned nblocks; /* committed from this many blocks; 0: one put */
};

struct mem_block {
	char name[1100];
	char id[STORE_BLOCK_ID_MAX];
	uint64_t offset; /* where put_block said it goes */
	char *data;
	size_t size;
};

struct mem_store {
	struct store base;
	pthread_mutex_t lock;
	struct mem_object objects[MAX_OBJECTS];
	int nobjects;
	struct mem_block blocks[MAX_BLOCKS];
	int nblocks;
	unsigned etag_seq;
	int puts, put_blocks, commits, reads;
	char fail_block_of[1100]; /* put_block of this name fails with -EACCES */
	char fail_read_of[1100];  /* reads of this name fail with -ESTALE */
};

static struct mem_store *mem_of(struct store *s)
{
	return (struct mem_store *)s;
}

static struct mem_object *mem_find(struct mem_store *m, const char *name)
{
	for (int i = 0; i < m->nobjects; i++)
		if (strcmp(m->objects[i].name, name) == 0)
			return &m->objects[i];
	return NULL;
}

/* With real_dirs (a share), whether the folder name would be put in exists. Under
 * m->lock. */
static bool mem_parent_exists(struct mem_store *m, const char *name)
{
	const char *slash = strrchr(name, '/');
	char parent[1100];
	struct mem_object *o;

	if (!m->base.real_dirs || !slash)
		return true;
	snprintf(parent, sizeof(parent), "%.*s", (int)(slash - name), name);
	o = mem_find(m, parent);
	return o && o->meta.is_dir;
}

/* Replaces or adds name with data (copied). Under m->lock. */
static struct mem_object *mem_store_object(struct mem_store *m, const char *name,
					   const void *data, size_t size,
					   const struct store_meta *meta)
{
	struct mem_object *o = mem_find(m, name);

	if (!o) {
		if (m->nobjects == MAX_OBJECTS)
			abort();
		o = &m->objects[m->nobjects++];
		snprintf(o->name, sizeof(o->name), "%s", name);
	} else {
		free(o->data);
	}
	o->data = malloc(size ? size : 1);
	if (!o->data)
		abort();
	memcpy(o->data, data, size);
	o->size = size;
	o->meta = meta ? *meta : (struct store_meta){ 0 };
	o->nblocks = 0;
	snprintf(o->etag, sizeof(o->etag), "\"e%u\"", ++m->etag_seq);
	return o;
}

static void mem_attr(const struct mem_object *o, struct store_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->size = o->size;
	out->mtime = o->meta.has_mtime ? o->meta.mtime : 1000;
	out->mtime_nsec = o->meta.has_mtime ? o->meta.mtime_nsec : 0;
	out->is_dir = o->meta.is_dir;
	out->is_symlink = o->meta.is_symlink;
	snprintf(out->etag, sizeof(out->etag), "%s", o->etag);
}

static int mem_stat(struct store *s, const char *path, struct store_attr *out)
{
	struct mem_store *m = mem_of(s);
	struct mem_object *o;

	pthread_mutex_lock(&m->lock);
	o = mem_find(m, path);
	if (o)
		mem_attr(o, out);
	pthread_mutex_unlock(&m->lock);
	return o ? 0 : -ENOENT;
}

/* All children of dir in one page: objects directly in it, and prefixes. */
static int mem_list(struct store *s, const char *dir, const char *marker, store_list_fn fn,
		    void *ctx, char *next_marker, size_t next_len)
{
	struct mem_store *m = mem_of(s);
	char prefix[1200], seen[MAX_OBJECTS][1100];
	int nseen = 0, err = 0;

	(void)marker;
	snprintf(prefix, sizeof(prefix), "%s%s", dir, *dir ? "/" : "");
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < m->nobjects && !err; i++) {
		const char *name = m->objects[i].name, *rest, *slash;
		struct store_entry e = { 0 };
		char child[1100];

		if (strncmp(name, prefix, strlen(prefix)) != 0)
			continue;
		rest = name + strlen(prefix);
		slash = strchr(rest, '/');
		if (!slash) {
			mem_attr(&m->objects[i], &e.attr);
			e.name = rest;
			err = fn(ctx, &e);
			continue;
		}
		snprintf(child, sizeof(child), "%.*s", (int)(slash - rest), rest);
		bool dup = false;

		for (int k = 0; k < nseen; k++)
			dup = dup || strcmp(seen[k], child) == 0;
		if (dup)
			continue;
		snprintf(seen[nseen++], sizeof(seen[0]), "%s", child);
		e.name = child;
		e.attr.is_dir = true;
		err = fn(ctx, &e);
	}
	pthread_mutex_unlock(&m->lock);
	snprintf(next_marker, next_len, "%s", "");
	return err;
}

static ssize_t mem_read(struct store *s, const char *path, const char *etag, uint64_t offset,
			size_t len, void *buf)
{
	struct mem_store *m = mem_of(s);
	struct mem_object *o;
	ssize_t n;

	pthread_mutex_lock(&m->lock);
	m->reads++;
	o = mem_find(m, path);
	if (!o || (m->fail_read_of[0] && strcmp(path, m->fail_read_of) == 0)) {
		pthread_mutex_unlock(&m->lock);
		return o ? -ESTALE : -ENOENT;
	}
	if (etag && strcmp(etag, o->etag) != 0) {
		pthread_mutex_unlock(&m->lock);
		return -ESTALE;
	}
	n = offset >= o->size ? 0 : (ssize_t)(len < o->size - offset ? len : o->size - offset);
	memcpy(buf, o->data + offset, (size_t)n);
	pthread_mutex_unlock(&m->lock);
	return n;
}

static int mem_put(struct store *s, const char *path, const void *data, size_t len,
		   const struct store_meta *meta, const struct store_cond *cond,
		   struct store_attr *out)
{
	struct mem_store *m = mem_of(s);

	(void)cond;
	pthread_mutex_lock(&m->lock);
	m->puts++;
	if (!mem_parent_exists(m, path)) {
		pthread_mutex_unlock(&m->lock);
		return -ENOENT; /* ParentNotFound */
	}
	mem_store_object(m, path, data, len, meta);
	pthread_mutex_unlock(&m->lock);
	if (out)
		memset(out, 0, sizeof(*out));
	return 0;
}

static int mem_put_block(struct store *s, const char *path, const char *block_id,
			 uint64_t offset, const void *data, size_t len)
{
	struct mem_store *m = mem_of(s);
	struct mem_block *b;

	pthread_mutex_lock(&m->lock);
	if (m->fail_block_of[0] && strcmp(path, m->fail_block_of) == 0) {
		pthread_mutex_unlock(&m->lock);
		return -EACCES;
	}
	if (m->nblocks == MAX_BLOCKS)
		abort();
	m->put_blocks++;
	b = &m->blocks[m->nblocks++];
	snprintf(b->name, sizeof(b->name), "%s", path);
	snprintf(b->id, sizeof(b->id), "%s", block_id);
	b->offset = offset;
	b->data = malloc(len ? len : 1);
	if (!b->data)
		abort();
	memcpy(b->data, data, len);
	b->size = len;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mem_commit(struct store *s, const char *path, const char *const *ids, size_t n,
		      const struct store_meta *meta, const struct store_cond *cond,
		      struct store_attr *out)
{
	struct mem_store *m = mem_of(s);
	size_t total = 0, off = 0;
	struct mem_object *o;
	char *data;

	(void)cond;
	(void)out;
	pthread_mutex_lock(&m->lock);
	m->commits++;
	if (!mem_parent_exists(m, path)) {
		pthread_mutex_unlock(&m->lock);
		return -ENOENT; /* ParentNotFound */
	}
	for (size_t i = 0; i < n; i++) {
		int k;

		for (k = 0; k < m->nblocks; k++)
			if (!strcmp(m->blocks[k].name, path) && !strcmp(m->blocks[k].id, ids[i]))
				break;
		if (k == m->nblocks || m->blocks[k].offset != total) {
			pthread_mutex_unlock(&m->lock);
			return -EINVAL; /* InvalidBlockList, or not where it was put */
		}
		total += m->blocks[k].size;
	}
	data = malloc(total ? total : 1);
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < m->nblocks; k++)
			if (!strcmp(m->blocks[k].name, path) && !strcmp(m->blocks[k].id, ids[i])) {
				memcpy(data + off, m->blocks[k].data, m->blocks[k].size);
				off += m->blocks[k].size;
				break;
			}
	o = mem_store_object(m, path, data, total, meta);
	o->nblocks = (unsigned)n;
	free(data);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void mem_destroy(struct store *s)
{
	struct mem_store *m = mem_of(s);

	for (int i = 0; i < m->nobjects; i++)
		free(m->objects[i].data);
	for (int i = 0; i < m->nblocks; i++)
		free(m->blocks[i].data);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static const struct store_ops mem_ops = {
	.stat = mem_stat,
	.list = mem_list,
	.read = mem_read,
	.put = mem_put,
	.put_block = mem_put_block,
	.commit = mem_commit,
	.destroy = mem_destroy,
};

static struct mem_store *mem_new(void)
{
	struct mem_store *m = calloc(1, sizeof(*m));

	if (!m)
		abort();
	m->base.ops = &mem_ops;
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

/* Local files --------------------------------------------------------------------------- */

static char tmp_root[PATH_MAX - 200];

static void fill(char *buf, size_t len, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (char)x;
	}
}

static void write_file(const char *path, size_t len, unsigned seed, time_t mtime)
{
	char *buf = malloc(len ? len : 1);
	FILE *f = fopen(path, "wb");
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = mtime, .tv_nsec = 5 } };

	if (!buf || !f)
		abort();
	fill(buf, len, seed);
	if (fwrite(buf, 1, len, f) != len)
		abort();
	fclose(f);
	free(buf);
	if (utimensat(AT_FDCWD, path, times, 0) != 0)
		abort();
}

/* 1 when the file at path holds exactly what write_file(len, seed) wrote. */
static int file_matches(const char *path, size_t len, unsigned seed)
{
	char *want = malloc(len + 1), *got = malloc(len + 1);
	FILE *f = fopen(path, "rb");
	size_t n = 0;
	int ok;

	if (!want || !got)
		abort();
	if (f) {
		n = fread(got, 1, len + 1, f);
		fclose(f);
	}
	fill(want, len, seed);
	ok = f && n == len && memcmp(want, got, len) == 0;
	free(want);
	free(got);
	return ok;
}

static int object_matches(struct mem_store *m, const char *name, size_t len, unsigned seed)
{
	struct mem_object *o = mem_find(m, name);
	char *want = malloc(len + 1);
	int ok;

	if (!want)
		abort();
	fill(want, len, seed);
	ok = o && o->size == len && memcmp(o->data, want, len) == 0;
	free(want);
	return ok;
}

static void path_of(char *out, size_t outlen, const char *rel)
{
	if (snprintf(out, outlen, "%s/%s", tmp_root, rel) >= (int)outlen)
		abort();
}

static int count_tmp_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d)))
		n += strstr(de->d_name, ".ferry-") != NULL;
	if (d)
		closedir(d);
	return n;
}

struct errors {
	int n;
	char src[4][PATH_MAX];
	char message[4][512];
};

static void on_error(void *ctx, const char *src, const char *dst, const char *message)
{
	struct errors *e = ctx;

	(void)dst;
	if (e->n < 4) {
		snprintf(e->src[e->n], sizeof(e->src[0]), "%s", src);
		snprintf(e->message[e->n], sizeof(e->message[0]), "%s", message);
	}
	e->n++;
}

static struct transfer_opts opts_with(struct errors *errors)
{
	struct transfer_opts o;

	transfer_opts_default(&o);
	o.block_size = CHUNK;
	o.workers = 4;
	o.on_error = on_error;
	o.error_ctx = errors;
	return o;
}

/* tmp_root/rel/sub */
static const char *tree_path(const char *rel, const char *sub)
{
	static char p[PATH_MAX];

	if (snprintf(p, sizeof(p), "%s/%s%s%s", tmp_root, rel, *sub ? "/" : "", sub) >=
	    (int)sizeof(p))
		abort();
	return p;
}

/* A tree: big.bin (3.5 chunks), small.txt, empty, sub/deeper/n.bin (exactly one chunk),
 * sp ace/ü#?.txt, and an empty folder. */
static void make_tree(const char *rel)
{
	mkdir(tree_path(rel, ""), 0755);
	mkdir(tree_path(rel, "sub"), 0755);
	mkdir(tree_path(rel, "sub/deeper"), 0755);
	write_file(tree_path(rel, "sub/deeper/n.bin"), CHUNK, 4, 1600000004);
	write_file(tree_path(rel, "big.bin"), CHUNK * 3 + CHUNK / 2, 1, 1600000001);
	write_file(tree_path(rel, "small.txt"), 100, 2, 1600000002);
	write_file(tree_path(rel, "empty"), 0, 3, 1600000003);
	mkdir(tree_path(rel, "sp ace"), 0755);
	write_file(tree_path(rel, "sp ace/\xc3\xbc#?.txt"), 7, 5, 1600000005);
	mkdir(tree_path(rel, "nothing"), 0755);
}

/* Tests ------------------------------------------------------------------------------- */

static void uploads_tree_with_blocks_for_large_files(void)
{
	struct mem_store *m = mem_new();
	struct errors errors = { 0 };
	struct transfer_opts o = opts_with(&errors);
	struct transfer_stats st;
	char src_path[PATH_MAX], err[512] = "";
	struct transfer_side src, dst = { .store = &m->base, .path = "up" };
	struct mem_object *big, *marker;

	make_tree("tree1");
	path_of(src_path, sizeof(src_path), "tree1");
	src = (struct transfer_side){ .path = src_path };
	CHECK(transfer_copy(&src, true, &dst, &o, &st, err, sizeof(err)) == 0);
	CHECK(errors.n == 0);
	CHECK(st.files == 5);
	CHECK(st.failed == 0);
	CHECK(st.bytes == CHUNK * 3 + CHUNK / 2 + 100 + CHUNK + 7);

	CHECK(object_matches(m, "up/big.bin", CHUNK * 3 + CHUNK / 2, 1));
	CHECK(object_matches(m, "up/small.txt", 100, 2));
	CHECK(object_matches(m, "up/empty", 0, 3));
	CHECK(object_matches(m, "up/sub/deeper/n.bin", CHUNK, 4));
	CHECK(object_matches(m, "up/sp ace/\xc3\xbc#?.txt", 7, 5));
	big = mem_find(m, "up/big.bin");
	CHECK(big && big->nblocks == 4); /* large: Put Block x4 + Put Block List */
	CHECK(big && big->meta.has_mtime && big->meta.mtime == 1600000001 &&
	      big->meta.mtime_nsec == 5);
	CHECK(mem_find(m, "up/sub/deeper/n.bin") && mem_find(m, "up/sub/deeper/n.bin")->nblocks == 0);
	CHECK(m->commits == 1);
	CHECK(m->put_blocks == 4);
	/* the empty folder leaves a marker; folders with content need none */
	marker = mem_find(m, "up/nothing");
	CHECK(marker && marker->meta.is_dir && marker->size == 0);
	CHECK(!mem_find(m, "up/sub"));
	CHECK(m->nobjects == 6);
	store_destroy(&m->base);
}

/* A share holds no file in a folder it lacks: every folder is made first, the
 * destination's own parents too. */
static void uploads_tree_to_a_store_with_real_directories(void)
{
	static const char *const dirs[] = { "a", "a/b", "a/b/up", "a/b/up/sub",
					     "a/b/up/sub/deeper", "a/b/up/sp ace",
					     "a/b/up/nothing" };
	struct mem_store *m = mem_new();
	struct errors errors = { 0 };
	struct transfer_opts o = opts_with(&errors);
	struct transfer_stats st;
	char src_path[PATH_MAX], err[512] = "";
	struct transfer_side src, dst = { .store = &m->base, .path = "a/b/up" };

	m->base.real_dirs = true;
	make_tree("tree4");
	path_of(src_path, sizeof(src_path), "tree4");
	src = (struct transfer_side){ .path = src_path };
	CHECK(transfer_copy(&src, true, &dst, &o, &st, err, sizeof(err)) == 0);
	CHECK(errors.n == 0 && st.failed == 0 && st.files == 5);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		CHECK(mem_find(m, dirs[i]) && mem_find(m, dirs[i])->meta.is_dir);
	CHECK(object_matches(m, "a/b/up/big.bin", CHUNK * 3 + CHUNK / 2, 1));
	CHECK(object_matches(m, "a/b/up/sub/deeper/n.bin", CHUNK, 4));
	CHECK(object_matches(m, "a/b/up/sp ace/\xc3\xbc#?.txt", 7, 5));
	CHECK(m->nobjects == 7 + 5);
	store_destroy(&m->base);
}

static void downloads_tree_byte_exact_with_mtimes(void)
{
	struct mem_store *m = mem_new();
	struct errors errors = { 0 };
	struct transfer_opts o = opts_with(&errors);
	struct transfer_stats st;
	char src_path[PATH_MAX], out[PATH_MAX], p[PATH_MAX + 64], err[512] = "";
	struct transfer_side local, remote = { .store = &m->base, .path = "up", .display = "mem://up" };
	struct stat sb;

	make_tree("tree2");
	path_of(src_path, sizeof(src_path), "tree2");
	local = (struct transfer_side){ .path = src_path };
	CHECK(transfer_copy(&local, true, &remote, &o, NULL, err, sizeof(err)) == 0);

	o.workers = 3;
	path_of(out, sizeof(out), "down2");
	local = (struct transfer_side){ .path = out };
	CHECK(transfer_copy(&remote, true, &local, &o, &st, err, sizeof(err)) == 0);
	CHECK(errors.n == 0);
	CHECK(st.files == 5);
	snprintf(p, sizeof(p), "%s/big.bin", out);
	CHECK(file_matches(p, CHUNK * 3 + CHUNK / 2, 1));
	CHECK(stat(p, &sb) == 0 && sb.st_mtim.tv_sec == 1600000001 && sb.st_mtim.tv_nsec == 5);
	snprintf(p, sizeof(p), "%s/small.txt", out);
	CHECK(file_matches(p, 100, 2));
	snprintf(p, sizeof(p), "%s/empty", out);
	CHECK(file_matches(p, 0, 3));
	snprintf(p, sizeof(p), "%s/sub/deeper/n.bin", out);
	CHECK(file_matches(p, CHUNK, 4));
	snprintf(p, sizeof(p), "%s/sp ace/\xc3\xbc#?.txt", out);
	CHECK(file_matches(p, 7, 5));
	snprintf(p, sizeof(p), "%s/nothing", out);
	CHECK(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode));
	CHECK(count_tmp_files(out) == 0);
	/* big.bin came as 4 ranged reads, the others as one each, the empty one as none */
	CHECK(m->reads == 4 + 3);
	store_destroy(&m->base);
}

static void copies_single_file_to_new_name(void)
{
	struct mem_store *m = mem_new();
	struct errors errors = { 0 };
	struct transfer_opts o = opts_with(&errors);
	char src_path[PATH_MAX], back[PATH_MAX], err[512] = "";
	struct transfer_side local, remote = { .store = &m->base, .path = "dir/renamed.bin" };

	path_of(src_path, sizeof(src_path), "one.bin");
	write_file(src_path, CHUNK * 2 + 1, 9, 1700000000);
	local = (struct transfer_side){ .path = src_path };
	CHECK(transfer_copy(&local, false, &remote, &o, NULL, err, sizeof(err)) == 0);
	CHECK(object_matches(m, "dir/renamed.bin", CHUNK * 2 + 1, 9));
	CHECK(mem_find(m, "dir/renamed.bin") && mem_find(m, "dir/renamed.bin")->nblocks == 3);

	path_of(back, sizeof(back), "one-back.bin");
	local = (struct transfer_side){ .path = back };
	CHECK(transfer_copy(&remote, false, &local, &o, NULL, err, sizeof(err)) == 0);
	CHECK(file_matches(back, CHUNK * 2 + 1, 9));

	/* a missing source file is an error before anything starts */
	remote.path = "dir/missing.bin";
	remote.display = "mem://dir/missing.bin";
	CHECK(transfer_copy(&remote, false, &local, &o, NULL, err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "mem://dir/missing.bin") != NULL);
	CHECK(errors.n == 0);
	store_destroy(&m->base);
}

static void failed_upload_names_the_file_and_commits_nothing(void)
{
	struct mem_store *m = mem_new();
	struct errors errors = { 0 };
	struct transfer_opts o = opts_with(&errors);
	struct transfer_stats st;
	char src_path[PATH_MAX], err[512] = "";
	struct transfer_side src, dst = { .store = &m->base, .path = "up", .display = "az://up" };

	make_tree("tree3");
	path_of(src_path, sizeof(src_path), "tree3");
	src = (struct transfer_side){ .path = src_path };
	snprintf(m->fail_block_of, sizeof(m->fail_block_of), "up/big.bin");
	CHECK(transfer_copy(&src, true, &dst, &o, &st, err, sizeof(err)) == -EIO);
	CHECK(st.failed == 1);
	CHECK(st.files == 4);
	CHECK(errors.n == 1);
	CHECK(strstr(errors.src[0], "tree3/big.bin") != NULL);
	CHECK(strstr(errors.message[0], "refused by the service") != NULL);
	CHECK(!mem_find(m, "up/big.bin"));
	CHECK(m->commits == 0);
	CHECK(object_matches(m, "up/small.txt", 100, 2));
	store_destroy(&m->base);
}

static void failed_download_leaves_no_partial_file(void)
{
	struct mem_store *m = mem_new();
	struct errors errors = { 0 };
	struct transfer_opts o = opts_with(&errors);
	struct transfer_stats st;
	char src_path[PATH_MAX], out[PATH_MAX], p[PATH_MAX + 64], err[512] = "";
	struct transfer_side local, remote = { .store = &m->base, .path = "up", .display = "az://up" };

	make_tree("tree4");
	path_of(src_path, sizeof(src_path), "tree4");
	local = (struct transfer_side){ .path = src_path };
	CHECK(transfer_copy(&local, true, &remote, &o, NULL, err, sizeof(err)) == 0);

	snprintf(m->fail_read_of, sizeof(m->fail_read_of), "up/big.bin");
	path_of(out, sizeof(out), "down4");
	local = (struct transfer_side){ .path = out };
	CHECK(transfer_copy(&remote, true, &local, &o, &st, err, sizeof(err)) == -EIO);
	CHECK(st.failed == 1);
	CHECK(errors.n == 1);
	CHECK_STR(errors.src[0], "az://up/big.bin");
	CHECK(strstr(errors.message[0], "changed on the service") != NULL);
	snprintf(p, sizeof(p), "%s/big.bin", out);
	CHECK(access(p, F_OK) != 0);
	CHECK(count_tmp_files(out) == 0);
	snprintf(p, sizeof(p), "%s/small.txt", out);
	CHECK(file_matches(p, 100, 2));

	/* an existing destination file survives a failed download of it */
	snprintf(p, sizeof(p), "%s/big.bin", out);
	write_file(p, 10, 77, 1600000000);
	errors.n = 0;
	CHECK(transfer_copy(&remote, true, &local, &o, &st, err, sizeof(err)) == -EIO);
	CHECK(file_matches(p, 10, 77));
	store_destroy(&m->base);
}

static void downloads_symlinks_and_skips_unsafe_names(void)
{
	struct mem_store *m = mem_new();
	struct errors errors = { 0 };
	struct transfer_opts o = opts_with(&errors);
	struct store_meta link_meta = { .is_symlink = true };
	char out[PATH_MAX], p[PATH_MAX + 64], target[64] = "", err[512] = "";
	struct transfer_side local, remote = { .store = &m->base, .path = "" };
	ssize_t n;

	mem_store_object(m, "f.txt", "hello", 5, NULL);
	mem_store_object(m, "link", "f.txt", 5, &link_meta);
	mem_store_object(m, "../escape", "bad", 3, NULL);
	path_of(out, sizeof(out), "down5");
	local = (struct transfer_side){ .path = out };
	/* ".." is a name no directory shows (listing.h): not listed, so not copied */
	CHECK(transfer_copy(&remote, true, &local, &o, NULL, err, sizeof(err)) == 0);
	CHECK(errors.n == 0);
	snprintf(p, sizeof(p), "%s/link", out);
	n = readlink(p, target, sizeof(target) - 1);
	CHECK(n == 5);
	if (n > 0)
		target[n] = '\0';
	CHECK_STR(target, "f.txt");
	path_of(p, sizeof(p), "escape");
	CHECK(access(p, F_OK) != 0);
	store_destroy(&m->base);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(tmp_root, sizeof(tmp_root), "%s/ferry-test-transfer-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(uploads_tree_with_blocks_for_large_files);
	RUN(uploads_tree_to_a_store_with_real_directories);
	RUN(downloads_tree_byte_exact_with_mtimes);
	RUN(copies_single_file_to_new_name);
	RUN(failed_upload_names_the_file_and_commits_nothing);
	RUN(failed_download_leaves_no_partial_file);
	RUN(downloads_symlinks_and_skips_unsafe_names);
	nftw(tmp_root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	return unit_done();
}
