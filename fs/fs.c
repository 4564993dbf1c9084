/* fs: the FUSE operations over a store. See fs.h.
 *
 * Lookups go meta cache -> parent listing in the cache -> the parent's listing fetched
 * now (once per entry_timeout, when it is one page) -> store_lookup() (the object and a
 * name under it, at once: a directory wins over a file of the same name); missing
 * paths are cached negatively.
 * readdir answers from a whole listing (all pages, deduplicated, cached) with every
 * entry's attributes, so `ls -l` costs no request per entry. A path with an open node
 * that has writers or changes shows the node's size and mtime instead (stage_attr).
 *
 * Every change of a path drops what the meta cache knew of it (meta_invalidate: the
 * parent's listing then answers for the other names only), then records what is
 * known now.
 *
 * Paths: FUSE hands "/a/b"; the store and the cache take "a/b" ("" is the root).
 * File handles hold their node, directory handles their store path, because
 * nullpath_ok lets libfuse pass NULL.
 */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "auth/base/log.h"
#include "auth/base/util.h"
#include "cache/cache.h"
#include "cache/meta.h"
#include "cache/store/listing.h"
#include "fs/stage.h"

/* Path records + listing entries. A path record takes ~250 bytes, a listing entry
 * ~80: at most ~250 MB, ~80 MB when listings hold it all. */
#define FS_META_MAX_ENTRIES 1000000
#define FS_NAME_MAX 255
#define FS_PATH_MAX 4096   /* a blob name is at most 1024 characters */
/* Staging bound without a cache directory: $TMPDIR is often a small tmpfs. */
#define FS_STAGE_LIMIT_DEFAULT (1ull << 30)

/* st_blksize. coreutils, stdio and Python size their read buffers from it, so 1 MiB
 * makes a `cp` or a Python read loop issue 1 MiB read()s instead of 4 KiB ones: fewer
 * syscalls, and with the mount's read_ahead_kb at 1024 the kernel sends 1 MiB FUSE
 * reads (256 pages, the most libfuse 3.14 takes). Larger buys nothing past that. */
#define FS_BLKSIZE (1 << 20)

struct fs {
	struct fs_config cfg; /* immutable after fs_new */
	struct meta_cache *meta;
	struct stage *stage;
	time_t mount_time; /* shown for the root and directories without a marker */
	atomic_uint_least64_t read_bytes, written_bytes; /* through read() and write() */
};

enum fs_handle_kind { FS_HANDLE_FILE = 1, FS_HANDLE_DIR };

/* The head of every fi->fh. */
struct fs_handle {
	enum fs_handle_kind kind;
};

/* An open file: a handle on the node of its path (fs/stage.h), which every handle of
 * the path shares. Immutable. */
struct fs_file {
	struct fs_handle head;
	struct stage_node *node;
	bool writable;
};

/* An open directory: the listing this handle serves. libfuse holds its per-handle
 * lock around readdir, so listing needs no lock of ours. */
struct fs_dir {
	struct fs_handle head;
	char *path; /* store path, owned */
	struct meta_listing *listing;
};

static struct fs *fs_ctx(void)
{
	return fuse_get_context()->private_data;
}

static struct fs_handle *handle_of(const struct fuse_file_info *fi)
{
	return (struct fs_handle *)(uintptr_t)fi->fh;
}

static const char *store_path(const char *fuse_path)
{
	return fuse_path[0] == '/' ? fuse_path + 1 : fuse_path;
}

static void fill_stat(const struct fs *fs, const struct store_attr *attr, struct stat *st)
{
	time_t mtime = attr->mtime ? (time_t)attr->mtime : fs->mount_time;

	memset(st, 0, sizeof(*st));
	if (attr->is_dir) {
		st->st_mode = S_IFDIR | (0777 & ~fs->cfg.umask);
		st->st_nlink = 2;
	} else if (attr->is_symlink) {
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)attr->size; /* the target's length */
	} else {
		st->st_mode = S_IFREG | (0666 & ~fs->cfg.umask);
		st->st_nlink = 1;
		st->st_size = (off_t)attr->size;
		st->st_blocks = (blkcnt_t)((attr->size + 511) / 512);
	}
	st->st_uid = fs->cfg.uid;
	st->st_gid = fs->cfg.gid;
	st->st_blksize = FS_BLKSIZE;
	st->st_mtim.tv_sec = mtime;
	st->st_mtim.tv_nsec = attr->mtime ? (long)attr->mtime_nsec : 0;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}


/* The code point of the UTF-8 sequence at s and its length in bytes; 0 when it is
 * not UTF-8 (a stray or missing continuation byte, an overlong form, a surrogate, past
 * U+10FFFF). s is NUL-terminated. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
	static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t len;
	uint32_t c = s[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, c &= 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, c &= 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, c &= 0x07;
	else
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/* Whether a blob may take name, the last component of a path being created: 0,
 * -ENAMETOOLONG past FS_NAME_MAX bytes (readdir could not show it), -EILSEQ when it is
 * not UTF-8 (blob names are Unicode), -EINVAL when it holds a control character
 * (Azure refuses them). */
static int name_creatable(const char *name)
{
	const unsigned char *p = (const unsigned char *)name;

	if (strnlen(name, FS_NAME_MAX + 1) > FS_NAME_MAX)
		return -ENAMETOOLONG;
	while (*p) {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);

		if (!n)
			return -EILSEQ;
		if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return -EINVAL;
		p += n;
	}
	return 0;
}

/* The last component of store path spath. */
static const char *last_name(const char *spath)
{
	const char *slash = strrchr(spath, '/');

	return slash ? slash + 1 : spath;
}

/* name_creatable() of the last component of store path spath. */
static int path_creatable(const char *spath)
{
	return name_creatable(last_name(spath));
}

static int fs_list_pages(struct fs *fs, const char *dir, int max_pages,
			 struct meta_listing **out);

/* The first lookup in a directory lists it, when the listing is one page (up to 5,000
 * names): reading files by name (a data set's manifest) then costs one listing per
 * directory instead of a lookup per file. 0 when the parent's listing is now cached;
 * -EALREADY when this directory was listed, or tried, within entry_timeout; -EFBIG
 * when it has more pages (its names are then looked up one by one). */
static int fs_list_parent(struct fs *fs, const char *spath)
{
	const char *slash = strrchr(spath, '/');
	size_t len = slash ? (size_t)(slash - spath) : 0;
	struct meta_listing *listing;
	char dir[FS_PATH_MAX];
	int err;

	if (len >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, spath, len);
	dir[len] = '\0';
	if (!meta_claim_listing(fs->meta, dir))
		return -EALREADY;
	err = fs_list_pages(fs, dir, 1, &listing);
	if (err)
		return err;
	err = meta_put_listing(fs->meta, dir, listing);
	meta_listing_release(listing);
	return err;
}

/* What the meta cache knows of spath: 0 (attr filled), -ENOENT, or 1: nothing. */
static int fs_lookup_cached(struct fs *fs, const char *spath, struct store_attr *attr)
{
	switch (meta_lookup(fs->meta, spath, attr)) {
	case META_FOUND:
		return 0;
	case META_ABSENT:
		return -ENOENT;
	case META_MISS:
		break;
	}
	return 1;
}

/* Attributes of the store path spath, from the cache or the store; -ENOENT cached. */
static int fs_lookup(struct fs *fs, const char *spath, struct store_attr *attr)
{
	int err;

	memset(attr, 0, sizeof(*attr));
	if (spath[0] == '\0') {
		attr->is_dir = true;
		return 0;
	}
	/* A name no directory entry can show is none the mount has. */
	if (strnlen(last_name(spath), FS_NAME_MAX + 1) > FS_NAME_MAX)
		return -ENAMETOOLONG;
	err = fs_lookup_cached(fs, spath, attr);
	if (err <= 0)
		return err;
	/* No blob has a name that is not UTF-8: nothing to ask. */
	if (path_creatable(spath) == -EILSEQ)
		return -ENOENT;
	err = fs_list_parent(fs, spath);
	if (!err)
		err = fs_lookup_cached(fs, spath, attr);
	if (err <= 0 && err != -EALREADY && err != -EFBIG && err != -ENOSPC)
		return err;
	/* Not answered by a listing (listed or tried lately, too large): ask for the name. */
	err = store_lookup(fs->cfg.store, spath, attr);
	if (!err)
		meta_put_attr(fs->meta, spath, attr);
	else if (err == -ENOENT)
		meta_put_missing(fs->meta, spath);
	return err;
}

static int collect_entry(void *ctx, const struct store_entry *entry)
{
	return meta_listing_add(ctx, entry->name, &entry->attr);
}

/* The complete listing of dir from the store, finished (merged and in name order); the
 * caller owns one reference. With max_pages > 0, -EFBIG when dir has more pages. */
static int fs_list_pages(struct fs *fs, const char *dir, int max_pages,
			 struct meta_listing **out)
{
	struct meta_listing *listing;
	int err;

	err = meta_listing_new(&listing);
	if (err)
		return err;
	err = store_list_all(fs->cfg.store, dir, max_pages, collect_entry, listing);
	if (!err)
		err = meta_listing_finish(listing);
	if (err) {
		meta_listing_release(listing);
		return err;
	}
	*out = listing;
	return 0;
}

/* The complete listing of dir, from the cache or the store; the caller owns one
 * reference. */
static int fs_load_listing(struct fs *fs, const char *dir, struct meta_listing **out)
{
	int err;

	*out = meta_get_listing(fs->meta, dir);
	if (*out)
		return 0;
	err = fs_list_pages(fs, dir, 0, out);
	if (!err)
		meta_put_listing(fs->meta, dir, *out); /* -ENOSPC: served, not cached */
	return err;
}

/* Attributes of spath as the store has them now (the cache's may be stale). */
static int fs_lookup_fresh(struct fs *fs, const char *spath, struct store_attr *attr)
{
	meta_invalidate(fs->meta, spath);
	return fs_lookup(fs, spath, attr);
}

/* Records what spath is after a change made here. */
static void fs_changed(struct fs *fs, const char *spath, const struct store_attr *attr)
{
	meta_invalidate(fs->meta, spath);
	if (attr)
		meta_put_attr(fs->meta, spath, attr);
	else
		meta_put_missing(fs->meta, spath);
}

/* Operations ---------------------------------------------------------------------- */

static struct fs_file *file_of(const struct fuse_file_info *fi)
{
	struct fs_handle *handle = handle_of(fi);

	return handle && handle->kind == FS_HANDLE_FILE ? (struct fs_file *)handle : NULL;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fs *fs = fs_ctx();
	struct fs_file *file = fi ? file_of(fi) : NULL;
	struct store_attr attr;
	const char *spath;
	int err;

	if (file) {
		stage_node_attr(file->node, &attr);
		fill_stat(fs, &attr, st);
		return 0;
	}
	if (path)
		spath = store_path(path);
	else if (fi && handle_of(fi)->kind == FS_HANDLE_DIR)
		spath = ((struct fs_dir *)handle_of(fi))->path;
	else
		return -EIO;
	if (stage_attr(fs->stage, spath, &attr)) {
		fill_stat(fs, &attr, st);
		return 0;
	}
	err = fs_lookup(fs, spath, &attr);
	if (!err)
		fill_stat(fs, &attr, st);
	return err;
}

/* A handle on the node of spath, whose attributes are attr. */
static int fs_open_node(struct fs *fs, const char *spath, const struct store_attr *attr,
			struct fuse_file_info *fi)
{
	bool writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	char etag[STORE_ETAG_MAX];
	struct fs_file *file;
	int err;

	file = calloc(1, sizeof(*file));
	if (!file)
		return -ENOMEM;
	file->head.kind = FS_HANDLE_FILE;
	file->writable = writable;
	err = stage_open(fs->stage, spath, attr, writable, &file->node);
	if (err) {
		free(file);
		return err;
	}
	if (fi->flags & O_TRUNC) {
		err = stage_truncate(file->node, 0);
		if (err) {
			stage_close(file->node, writable);
			free(file);
			return err;
		}
	}
	fi->fh = (uintptr_t)file;
	/* Pages the kernel holds are this object's only if the last open saw this etag. */
	stage_node_etag(file->node, etag, sizeof(etag));
	fi->keep_cache = meta_note_open(fs->meta, spath, etag);
	fi->direct_io = 0;
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_ctx();
	const char *spath = store_path(path);
	struct store_attr attr;
	int err;

	if (fs->cfg.read_only && ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)))
		return -EROFS;
	err = fs_lookup(fs, spath, &attr);
	if (err == -ENOENT && stage_attr(fs->stage, spath, &attr))
		err = 0; /* gone from the store, but open and changed here */
	if (err)
		return err;
	if (attr.is_dir)
		return -EISDIR;
	return fs_open_node(fs, spath, &attr, fi);
}

/* Creates an empty object at once, so others see the file (as blobfuse2 does). */
static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = fs_ctx();
	const char *spath = store_path(path);
	struct store_meta meta = { .has_mtime = true };
	struct store_cond cond = { .if_none = true };
	struct store_attr attr;
	int err;

	(void)mode; /* every file shows 0666 & ~umask */
	if (fs->cfg.read_only)
		return -EROFS;
	err = path_creatable(spath);
	if (err)
		return err;
	{
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		meta.mtime = now.tv_sec;
		meta.mtime_nsec = (uint32_t)now.tv_nsec;
	}
	err = store_put(fs->cfg.store, spath, "", 0, &meta, &cond, &attr);
	if (err == -EEXIST) {
		/* It exists after all (our cache said otherwise), or it is ours: the retry
		 * of a create whose answer was lost (its mtime is ours to the nanosecond). */
		err = fs_lookup_fresh(fs, spath, &attr);
		if (!err && attr.is_dir)
			err = -EISDIR;
		if (!err && (fi->flags & O_EXCL) &&
		    (attr.size || attr.mtime != meta.mtime || attr.mtime_nsec != meta.mtime_nsec))
			err = -EEXIST;
		return err ? err : fs_open_node(fs, spath, &attr, fi);
	}
	if (err)
		return err;
	fs_changed(fs, spath, &attr);
	return fs_open_node(fs, spath, &attr, fi);
}

static int fs_read(const char *path, char *buf, size_t size, off_t offset,
		   struct fuse_file_info *fi)
{
	struct fs_file *file = file_of(fi);
	ssize_t n;

	(void)path;
	if (!file)
		return -EISDIR;
	if (offset < 0)
		return -EINVAL;
	n = stage_read(file->node, buf, size, (uint64_t)offset);
	if (n > 0)
		atomic_fetch_add_explicit(&fs_ctx()->read_bytes, (uint64_t)n, memory_order_relaxed);
	return (int)n; /* stage_read never passes INT_MAX */
}

static int fs_write(const char *path, const char *buf, size_t size, off_t offset,
		    struct fuse_file_info *fi)
{
	struct fs_file *file = file_of(fi);
	ssize_t n;

	(void)path;
	if (!file)
		return -EISDIR;
	if (offset < 0)
		return -EINVAL;
	if (size > INT_MAX)
		size = INT_MAX;
	n = stage_write(file->node, buf, size, (uint64_t)offset);
	if (n > 0)
		atomic_fetch_add_explicit(&fs_ctx()->written_bytes, (uint64_t)n,
					  memory_order_relaxed);
	return (int)n;
}

/* close() of every fd of a writer: what changed goes up, and an upload's error is
 * close()'s. (The kernel cannot tell the last close of a file from the close of one of
 * its dups: a shell's `cmd > file` commits the emptied file at once, as a local file
 * system would have emptied it.) */
static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	struct fs_file *file = file_of(fi);

	(void)path;
	if (!file || !file->writable)
		return 0;
	return stage_commit(file->node);
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct fs_file *file = file_of(fi);

	(void)path, (void)datasync;
	return file ? stage_commit(file->node) : 0;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct fs_file *file = file_of(fi);

	(void)path;
	stage_close(file->node, file->writable);
	free(file);
	return 0;
}

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct fs_dir *dir = calloc(1, sizeof(*dir));

	if (!dir)
		return -ENOMEM;
	dir->head.kind = FS_HANDLE_DIR;
	dir->path = strdup(store_path(path));
	if (!dir->path) {
		free(dir);
		return -ENOMEM;
	}
	fi->fh = (uintptr_t)dir;
	return 0;
}

/* Offsets: "." is 1, ".." is 2, listing entry i is i + 3; a non-zero offset is what
 * makes libfuse 3.14 send readdirplus attributes (with 0 it drops them). Offset 0
 * (a new or rewound stream) takes a fresh listing; later calls page through the same
 * one, so entries neither repeat nor vanish across calls. */
static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t offset,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fs *fs = fs_ctx();
	struct fs_dir *dir = (struct fs_dir *)handle_of(fi);
	bool open_nodes = stage_has_nodes(fs->stage);
	char child[FS_PATH_MAX];
	size_t count, pos;

	(void)path;
	(void)flags; /* plain readdir ignores the attributes; libfuse takes both */
	if (offset < 0)
		return -EINVAL;
	if (offset == 0 || !dir->listing) {
		struct meta_listing *listing;
		int err = fs_load_listing(fs, dir->path, &listing);

		if (err)
			return err;
		meta_listing_release(dir->listing);
		dir->listing = listing;
	}
	count = meta_listing_count(dir->listing);
	for (pos = (size_t)offset; pos < count + 2; pos++) {
		enum fuse_fill_dir_flags fill_flags = 0;
		struct store_attr attr;
		struct stat st;
		const char *name;

		if (pos < 2) {
			/* No attributes: libfuse must not count a lookup of "." or "..". */
			memset(&st, 0, sizeof(st));
			st.st_mode = S_IFDIR;
			name = pos == 0 ? "." : "..";
		} else {
			name = meta_listing_name(dir->listing, pos - 2);
			/* libfuse's name for a deleted file still open (here or on another
			 * mount): it goes at the last close, and was never the user's. */
			if (stage_hidden_name(name))
				continue;
			meta_listing_attr(dir->listing, pos - 2, &attr);
			/* A file being written here: its size so far, not the store's. */
			if (open_nodes && !attr.is_dir &&
			    util_path_join(child, sizeof(child), dir->path, name) == 0)
				stage_attr(fs->stage, child, &attr);
			fill_stat(fs, &attr, &st);
			fill_flags = FUSE_FILL_DIR_PLUS;
		}
		if (filler(buf, name, &st, (off_t)(pos + 1), fill_flags))
			break; /* the kernel's buffer is full: it asks again from pos */
	}
	return 0;
}

static int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
	struct fs_dir *dir = (struct fs_dir *)handle_of(fi);

	(void)path;
	meta_listing_release(dir->listing);
	free(dir->path);
	free(dir);
	return 0;
}

static int fs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path, (void)datasync, (void)fi;
	return 0; /* every change of a directory is in the store when its call returns */
}

static int fs_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	memset(st, 0, sizeof(*st));
	st->f_bsize = 4096;
	st->f_frsize = 4096;
	st->f_blocks = (1ull << 50) / 4096; /* 1 PiB: a blob container has no fixed size */
	st->f_bfree = st->f_blocks;
	st->f_bavail = st->f_blocks;
	st->f_files = 1000000000;
	st->f_ffree = st->f_files;
	st->f_favail = st->f_files;
	st->f_namemax = FS_NAME_MAX;
	return 0;
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct fs *fs = fs_ctx();

	cfg->attr_timeout = fs->cfg.attr_timeout;
	cfg->entry_timeout = fs->cfg.entry_timeout;
	cfg->negative_timeout = fs->cfg.negative_timeout;
	cfg->kernel_cache = 0; /* open() decides keep_cache from the etag */
	cfg->auto_cache = 0;
	cfg->direct_io = 0;
	cfg->use_ino = 0;
	cfg->readdir_ino = 0;
	cfg->nullpath_ok = 1;
	/* unlink() of an open file: libfuse renames it to .fuse_hidden* (a server-side
	 * copy here) and deletes that at the last close, so its handles keep reading the
	 * old bytes and fstat() still has a path to ask about. */
	cfg->hard_remove = 0;
	/* Asking for a capability the kernel lacks makes libfuse fail INIT. O_TRUNC comes
	 * with open() (one call, not open + setattr). */
	conn->want |= conn->capable &
		      (FUSE_CAP_READDIRPLUS | FUSE_CAP_ASYNC_READ | FUSE_CAP_ATOMIC_O_TRUNC);
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO; /* always plus, so `ls -l` is one listing */
	/* conn->max_read stays as given by "-o max_read": libfuse 3.14 fails INIT when
	 * init() sets another value. Reads still reach 1 MiB: the kernel bounds them by
	 * max_pages (256, from libfuse's 1 MiB max_write) and the readahead window
	 * (the mount's read_ahead_kb, which mount.c raises). Let the kernel keep enough
	 * readahead requests in flight to fill the download workers. */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	return fs;
}

/* Changes of names ----------------------------------------------------------------- */

/* Regular files only: FIFOs, sockets and devices cannot be blobs. */
static int fs_mknod(const char *path, mode_t mode, dev_t rdev)
{
	struct fs *fs = fs_ctx();
	const char *spath = store_path(path);
	struct store_cond cond = { .if_none = true };
	struct store_attr attr;
	int err;

	(void)rdev;
	if (fs->cfg.read_only)
		return -EROFS;
	if (!S_ISREG(mode))
		return -EPERM;
	err = path_creatable(spath);
	if (err)
		return err;
	err = store_put(fs->cfg.store, spath, "", 0, NULL, &cond, &attr);
	if (!err)
		fs_changed(fs, spath, &attr);
	return err;
}

/* A marker blob: 0 bytes, hdi_isfolder=true. */
static int fs_mkdir(const char *path, mode_t mode)
{
	struct fs *fs = fs_ctx();
	const char *spath = store_path(path);
	struct store_meta meta = { .is_dir = true };
	struct store_cond cond = { .if_none = true };
	struct store_attr attr;
	int err;

	(void)mode;
	if (fs->cfg.read_only)
		return -EROFS;
	err = path_creatable(spath);
	if (err)
		return err;
	err = fs_lookup(fs, spath, &attr);
	if (!err)
		return -EEXIST;
	if (err != -ENOENT)
		return err;
	err = store_put(fs->cfg.store, spath, "", 0, &meta, &cond, &attr);
	if (!err) {
		struct meta_listing *empty;

		fs_changed(fs, spath, &attr);
		/* Nothing was under it: the names created in it next need no lookup. */
		if (meta_listing_new(&empty) == 0) {
			if (meta_listing_finish(empty) == 0)
				meta_put_listing(fs->meta, spath, empty);
			meta_listing_release(empty);
		}
	}
	return err;
}

/* "dir/": the name of dir's placeholder object (see store.h). */
static int placeholder_path(const char *dir, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/", dir);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Deletes the placeholder of directory dir if there is one. */
static int fs_remove_placeholder(struct fs *fs, const char *dir)
{
	char path[FS_PATH_MAX];
	int err = placeholder_path(dir, path, sizeof(path));

	if (!err)
		err = store_remove(fs->cfg.store, path, NULL);
	return err == -ENOENT ? 0 : err;
}

/* Moves the placeholder of directory from to directory to, if there is one (asked
 * first: a copy of a missing blob is a failure the store logs). */
static int fs_move_placeholder(struct fs *fs, const char *from, const char *to)
{
	char from_path[FS_PATH_MAX], to_path[FS_PATH_MAX];
	struct store_attr attr;
	int err = placeholder_path(from, from_path, sizeof(from_path));

	if (!err)
		err = placeholder_path(to, to_path, sizeof(to_path));
	if (!err)
		err = store_stat(fs->cfg.store, from_path, &attr);
	if (!err)
		err = store_copy(fs->cfg.store, from_path, to_path, NULL);
	if (!err)
		err = store_remove(fs->cfg.store, from_path, NULL);
	return err == -ENOENT ? 0 : err;
}

static int fs_rmdir(const char *path)
{
	struct fs *fs = fs_ctx();
	const char *spath = store_path(path);
	struct store_attr attr;
	bool file_left = false;
	int err;

	if (fs->cfg.read_only)
		return -EROFS;
	if (!spath[0])
		return -EBUSY;
	err = fs_lookup_fresh(fs, spath, &attr);
	if (err)
		return err;
	if (!attr.is_dir)
		return -ENOTDIR;
	err = store_has_children(fs->cfg.store, spath);
	if (err > 0)
		return -ENOTEMPTY;
	if (err < 0)
		return err;
	/* Its placeholder and its marker, where they exist; without them the directory
	 * was only a prefix and is gone with its last child. A blob of its name that is
	 * not a marker was hidden by the directory: it stays, and shows as a file. */
	err = fs_remove_placeholder(fs, spath);
	if (!err)
		err = store_stat(fs->cfg.store, spath, &attr);
	if (!err && attr.is_dir) {
		struct store_cond cond = { .if_match = attr.etag };

		err = store_remove(fs->cfg.store, spath, &cond);
	} else if (!err) {
		file_left = true;
	}
	if (err && err != -ENOENT)
		return err;
	fs_changed(fs, spath, file_left ? &attr : NULL);
	meta_invalidate_listing(fs->meta, spath);
	return 0;
}

static int fs_unlink(const char *path)
{
	struct fs *fs = fs_ctx();
	const char *spath = store_path(path);
	struct store_attr attr;
	int err;

	if (fs->cfg.read_only)
		return -EROFS;
	/* libfuse unlinks a hidden name after the last close, which deleted it already:
	 * no lookup for that (a hidden name is never a directory). */
	if (!stage_hidden_name(spath)) {
		err = fs_lookup(fs, spath, &attr);
		if (!err && attr.is_dir)
			return -EISDIR;
	}
	err = stage_unlink(fs->stage, spath);
	if (!err || err == -ENOENT)
		fs_changed(fs, spath, NULL);
	return err;
}

/* blobfuse2's convention: metadata is_symlink=true, the target as the content. */
static int fs_symlink(const char *target, const char *path)
{
	struct fs *fs = fs_ctx();
	const char *spath = store_path(path);
	struct store_meta meta = { .is_symlink = true };
	struct store_cond cond = { .if_none = true };
	struct store_attr attr;
	int err;

	if (fs->cfg.read_only)
		return -EROFS;
	err = path_creatable(spath);
	if (err)
		return err;
	err = store_put(fs->cfg.store, spath, target, strlen(target), &meta, &cond, &attr);
	if (!err)
		fs_changed(fs, spath, &attr);
	return err;
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
	struct fs *fs = fs_ctx();
	const char *spath = store_path(path);
	struct store_attr attr;
	ssize_t n;
	int err;

	if (size == 0)
		return -EINVAL;
	err = fs_lookup(fs, spath, &attr);
	if (err)
		return err;
	if (!attr.is_symlink)
		return -EINVAL;
	n = store_read(fs->cfg.store, spath, NULL, 0, size - 1, buf);
	if (n < 0)
		return (int)n;
	buf[n] = '\0'; /* a longer target is cut, as readlink(2) does */
	return 0;
}

/* Moves every object under from (a directory) to the same name under to, one by one:
 * not atomic (see docs/semantics.md). */
static int fs_rename_dir(struct fs *fs, const char *from, const char *to)
{
	struct meta_listing *listing;
	struct store_attr attr;
	char *child_from, *child_to;
	int err;

	err = fs_list_pages(fs, from, 0, &listing);
	if (err)
		return err;
	child_from = malloc(2 * FS_PATH_MAX);
	if (!child_from) {
		meta_listing_release(listing);
		return -ENOMEM;
	}
	child_to = child_from + FS_PATH_MAX;
	for (size_t i = 0; i < meta_listing_count(listing) && !err; i++) {
		const char *name = meta_listing_name(listing, i);

		err = util_path_join(child_from, FS_PATH_MAX, from, name);
		if (!err)
			err = util_path_join(child_to, FS_PATH_MAX, to, name);
		if (err)
			break;
		meta_listing_attr(listing, i, &attr);
		if (attr.is_dir)
			err = fs_rename_dir(fs, child_from, child_to);
		else
			err = stage_rename(fs->stage, child_from, child_to, false);
		meta_invalidate(fs->meta, child_from);
		meta_invalidate(fs->meta, child_to);
	}
	free(child_from);
	meta_listing_release(listing);
	if (err)
		return err;
	/* Last, its placeholder and its own marker (or the file its name hides). */
	err = fs_move_placeholder(fs, from, to);
	if (!err)
		err = store_stat(fs->cfg.store, from, &attr);
	if (!err)
		err = stage_rename(fs->stage, from, to, false);
	if (err == -ENOENT)
		err = 0;
	meta_invalidate_listing(fs->meta, from);
	meta_invalidate_listing(fs->meta, to);
	return err;
}

/* The service's rename of a whole directory (a store with real directories): one
 * atomic step. Files open under it would go on under the old name: -EBUSY then. */
static int fs_rename_real_dir(struct fs *fs, const char *from, const char *to, bool noreplace)
{
	int err;

	if (stage_has_nodes_under(fs->stage, from))
		return -EBUSY;
	err = store_rename(fs->cfg.store, from, to, true, noreplace, NULL);
	meta_invalidate_tree(fs->meta, from);
	meta_invalidate_tree(fs->meta, to);
	return err;
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	struct fs *fs = fs_ctx();
	const char *sfrom = store_path(from), *sto = store_path(to);
	bool noreplace = flags & RENAME_NOREPLACE, exists;
	struct store_attr from_attr, to_attr;
	int err;

	if (fs->cfg.read_only)
		return -EROFS;
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE cannot be done on a blob store */
	if (!sfrom[0] || !sto[0])
		return -EBUSY;
	err = path_creatable(sto);
	if (err)
		return err;
	err = fs_lookup(fs, sfrom, &from_attr);
	if (err)
		return err;
	err = fs_lookup_fresh(fs, sto, &to_attr);
	if (err && err != -ENOENT)
		return err;
	exists = !err;
	if (strcmp(sfrom, sto) == 0)
		return 0;
	if (exists && noreplace)
		return -EEXIST;
	if (from_attr.is_dir) {
		if (exists && !to_attr.is_dir)
			return -ENOTDIR;
		if (exists) {
			err = store_has_children(fs->cfg.store, sto);
			if (err)
				return err > 0 ? -ENOTEMPTY : err;
		}
		err = fs->cfg.store->real_dirs ? fs_rename_real_dir(fs, sfrom, sto, noreplace)
					       : fs_rename_dir(fs, sfrom, sto);
	} else {
		if (exists && to_attr.is_dir)
			return -EISDIR;
		err = stage_rename(fs->stage, sfrom, sto, noreplace);
	}
	meta_invalidate(fs->meta, sfrom);
	meta_invalidate(fs->meta, sto);
	return err;
}

static int fs_link(const char *from, const char *to)
{
	(void)from, (void)to;
	return fs_ctx()->cfg.read_only ? -EROFS : -EPERM; /* no hard links in a blob store */
}

/* Accepted and ignored, as blobfuse2 and gcsfuse do: a blob has no mode or owner. */
static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path, (void)mode, (void)fi;
	return fs_ctx()->cfg.read_only ? -EROFS : 0;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)path, (void)uid, (void)gid, (void)fi;
	return fs_ctx()->cfg.read_only ? -EROFS : 0;
}

/* Changes of content ------------------------------------------------------------- */

/* A handle for a change made by path: the caller's own, or a temporary one whose
 * change is committed before the call returns. attr: what a fresh lookup of path
 * found, or NULL to look it up here. */
struct fs_change {
	struct stage_node *node;
	bool temporary;
};

static int fs_change_begin(struct fs *fs, const char *path, struct fuse_file_info *fi,
			   const struct store_attr *attr, struct fs_change *change)
{
	struct fs_file *file = fi ? file_of(fi) : NULL;
	struct store_attr found;
	const char *spath;
	int err = 0;

	if (file) {
		change->node = file->node;
		change->temporary = false;
		return 0;
	}
	if (!path)
		return -EIO;
	spath = store_path(path);
	if (!attr) {
		err = fs_lookup_fresh(fs, spath, &found);
		if (err == -ENOENT && stage_attr(fs->stage, spath, &found))
			err = 0; /* gone from the store, but open and changed here */
		attr = &found;
	}
	if (err)
		return err;
	if (attr->is_dir)
		return -EISDIR;
	change->temporary = true;
	return stage_open(fs->stage, spath, attr, true, &change->node);
}

static int fs_change_end(struct fs_change *change, int err)
{
	if (!change->temporary)
		return err;
	if (!err)
		err = stage_commit(change->node);
	stage_close(change->node, true);
	return err;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fs *fs = fs_ctx();
	struct fs_change change;
	int err;

	if (fs->cfg.read_only)
		return -EROFS;
	if (size < 0)
		return -EINVAL;
	err = fs_change_begin(fs, path, fi, NULL, &change);
	if (err)
		return err;
	err = stage_truncate(change.node, (uint64_t)size);
	return fs_change_end(&change, err);
}

static int fs_fallocate(const char *path, int mode, off_t offset, off_t len,
			struct fuse_file_info *fi)
{
	struct fs *fs = fs_ctx();
	struct fs_change change;
	int err;

	if (fs->cfg.read_only)
		return -EROFS;
	if (mode & ~FALLOC_FL_KEEP_SIZE)
		return -EOPNOTSUPP; /* holes cannot be punched in a blob */
	if (offset < 0 || len <= 0)
		return -EINVAL;
	if (mode & FALLOC_FL_KEEP_SIZE)
		return 0; /* nothing to reserve */
	err = fs_change_begin(fs, path, fi, NULL, &change);
	if (err)
		return err;
	err = stage_allocate(change.node, (uint64_t)offset + (uint64_t)len);
	return fs_change_end(&change, err);
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct fs *fs = fs_ctx();
	struct timespec mtime = tv ? tv[1] : (struct timespec){ .tv_nsec = UTIME_NOW };
	struct fs_change change;
	struct store_attr attr;
	const char *spath;
	int err;

	if (fs->cfg.read_only)
		return -EROFS;
	if (mtime.tv_nsec == UTIME_OMIT)
		return 0; /* only the mtime is kept */
	if (mtime.tv_nsec == UTIME_NOW)
		clock_gettime(CLOCK_REALTIME, &mtime);
	if (fi && file_of(fi)) {
		stage_set_mtime(file_of(fi)->node, mtime.tv_sec, (uint32_t)mtime.tv_nsec);
		return 0; /* stored with the handle's next commit */
	}
	if (!path)
		return -EIO;
	spath = store_path(path);
	err = fs_lookup_fresh(fs, spath, &attr);
	if (err == -ENOENT && stage_attr(fs->stage, spath, &attr))
		err = 0;
	if (err)
		return err;
	if (attr.is_dir) {
		/* A marker blob keeps it; a directory that is only a prefix cannot. */
		struct store_meta meta = { .is_dir = true, .has_mtime = true,
					   .mtime = mtime.tv_sec,
					   .mtime_nsec = (uint32_t)mtime.tv_nsec };
		struct store_cond cond = { .if_match = attr.etag };

		if (!spath[0] || !attr.etag[0])
			return 0;
		err = store_set_meta(fs->cfg.store, spath, &meta, &cond, &attr);
		if (err == -ENOENT)
			err = 0;
		meta_invalidate(fs->meta, spath);
		return err;
	}
	err = fs_change_begin(fs, path, NULL, &attr, &change);
	if (err)
		return err;
	stage_set_mtime(change.node, mtime.tv_sec, (uint32_t)mtime.tv_nsec);
	return fs_change_end(&change, 0);
}

static const struct fuse_operations fs_ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.open = fs_open,
	.create = fs_create,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.release = fs_release,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.fsyncdir = fs_fsyncdir,
	.statfs = fs_statfs,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.rmdir = fs_rmdir,
	.unlink = fs_unlink,
	.symlink = fs_symlink,
	.readlink = fs_readlink,
	.rename = fs_rename,
	.link = fs_link,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.truncate = fs_truncate,
	.fallocate = fs_fallocate,
	.utimens = fs_utimens,
};

const struct fuse_operations *fs_operations(void)
{
	return &fs_ops;
}

int fs_new(const struct fs_config *cfg, struct fs **out)
{
	struct meta_config meta_cfg;
	struct stage_config stage_cfg;
	struct fs *fs;
	int err;

	if (!cfg || !cfg->store || !cfg->cache || !(cfg->attr_timeout >= 0) ||
	    !(cfg->entry_timeout >= 0) || !(cfg->negative_timeout >= 0))
		return -EINVAL;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->cfg = *cfg;
	fs->cfg.stage_dir = NULL; /* borrowed: the stage keeps its own copy */
	fs->mount_time = time(NULL);
	meta_cfg = (struct meta_config){
		.attr_timeout = cfg->attr_timeout,
		.entry_timeout = cfg->entry_timeout,
		.negative_timeout = cfg->negative_timeout,
		.max_entries = FS_META_MAX_ENTRIES,
	};
	err = meta_new(&meta_cfg, &fs->meta);
	if (err)
		goto out_free;
	stage_cfg = (struct stage_config){
		.store = cfg->store,
		.cache = cfg->cache,
		.meta = fs->meta,
		.block_size = cfg->block_size,
		.dir = cfg->stage_dir,
		.limit = cfg->stage_limit ? cfg->stage_limit : FS_STAGE_LIMIT_DEFAULT,
		.overwrite = cfg->conflict_overwrite,
	};
	err = stage_new(&stage_cfg, &fs->stage);
	if (err)
		goto out_free_meta;
	*out = fs;
	return 0;

out_free_meta:
	meta_free(fs->meta);
out_free:
	free(fs);
	return err;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	stage_free(fs->stage);
	meta_free(fs->meta);
	free(fs);
}

void fs_get_stats(struct fs *fs, struct fs_stats *out)
{
	out->read_bytes = atomic_load_explicit(&fs->read_bytes, memory_order_relaxed);
	out->written_bytes = atomic_load_explicit(&fs->written_bytes, memory_order_relaxed);
	stage_get_stats(fs->stage, &out->staging);
}
