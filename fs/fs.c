/* fs: the FUSE operations over a store; read-only for now. See fs.h.
 *
 * Lookups go meta cache -> parent listing in the cache -> store_stat() -> a one-entry
 * store_list() (a plain prefix is a directory); missing paths are cached negatively.
 * readdir answers from a whole listing (all pages, deduplicated, cached) with every
 * entry's attributes, so `ls -l` costs no request per entry.
 *
 * Paths: FUSE hands "/a/b"; the store and the cache take "a/b" ("" is the root).
 * Handles (fi->fh) keep the store path because nullpath_ok lets libfuse pass NULL.
 */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "cache/cache.h"
#include "cache/meta.h"

/* Path records + listing entries. A path record takes ~250 bytes, a listing entry
 * ~80: at most ~250 MB, ~80 MB when listings hold it all. */
#define FS_META_MAX_ENTRIES 1000000
#define FS_NAME_MAX 255
#define FS_MARKER_MAX 4096 /* a List Blobs continuation marker is far shorter */

/* st_blksize. coreutils, stdio and Python size their read buffers from it, so 1 MiB
 * makes a `cp` or a Python read loop issue 1 MiB read()s instead of 4 KiB ones: fewer
 * syscalls, and with the mount's read_ahead_kb at 1024 the kernel sends 1 MiB FUSE
 * reads (256 pages, the most libfuse 3.14 takes). Larger buys nothing past that. */
#define FS_BLKSIZE (1 << 20)

struct fs {
	struct fs_config cfg; /* immutable after fs_new */
	struct meta_cache *meta;
	time_t mount_time; /* shown for the root and directories without a marker */
};

enum fs_handle_kind { FS_HANDLE_FILE = 1, FS_HANDLE_DIR };

/* The head of every fi->fh. */
struct fs_handle {
	enum fs_handle_kind kind;
	char *path; /* store path, owned */
};

/* An open file: the object pinned at open. Immutable, so reads share it unlocked
 * (the cache_file is itself thread-safe). */
struct fs_file {
	struct fs_handle head;
	uint64_t size;
	char etag[STORE_ETAG_MAX];
	struct cache_file *cached;
};

/* An open directory: the listing this handle serves. libfuse holds its per-handle
 * lock around readdir, so listing needs no lock of ours. */
struct fs_dir {
	struct fs_handle head;
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
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
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
	switch (meta_lookup(fs->meta, spath, attr)) {
	case META_FOUND:
		return 0;
	case META_ABSENT:
		return -ENOENT;
	case META_MISS:
		break;
	}
	err = store_stat(fs->cfg.store, spath, attr);
	if (err != -ENOENT) {
		if (!err)
			meta_put_attr(fs->meta, spath, attr);
		return err;
	}
	/* Not an object: a directory if anything lives under the prefix. */
	err = store_has_children(fs->cfg.store, spath);
	if (err == 1) {
		memset(attr, 0, sizeof(*attr));
		attr->is_dir = true;
		meta_put_attr(fs->meta, spath, attr);
		return 0;
	}
	if (err < 0 && err != -ENOENT)
		return err;
	meta_put_missing(fs->meta, spath);
	return -ENOENT;
}

/* A name a directory entry can carry. Others are skipped (see docs, later). */
static bool name_showable(const char *name)
{
	size_t len = strnlen(name, FS_NAME_MAX + 1);

	if (len == 0 || len > FS_NAME_MAX)
		return false;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	return strchr(name, '/') == NULL;
}

struct collect_ctx {
	struct meta_listing *listing;
	const char *dir;
};

static int collect_entry(void *ctx, const struct store_entry *entry)
{
	struct collect_ctx *collect = ctx;

	if (!name_showable(entry->name)) {
		fuse_log(FUSE_LOG_DEBUG, "ferry: skipping an entry of \"%s\" whose name cannot "
			 "be shown: \"%.300s\"\n", collect->dir, entry->name);
		return 0;
	}
	return meta_listing_add(collect->listing, entry->name, &entry->attr);
}

/* The complete listing of dir, from the cache or every page of the store; the caller
 * owns one reference. */
static int fs_load_listing(struct fs *fs, const char *dir, struct meta_listing **out)
{
	char markers[2][FS_MARKER_MAX];
	char *marker = markers[0], *next = markers[1], *swap;
	struct collect_ctx collect = { .dir = dir };
	int err;

	*out = meta_get_listing(fs->meta, dir);
	if (*out)
		return 0;
	err = meta_listing_new(&collect.listing);
	if (err)
		return err;
	marker[0] = '\0';
	do {
		next[0] = '\0';
		err = store_list(fs->cfg.store, dir, marker, collect_entry, &collect, next,
				 FS_MARKER_MAX);
		if (err > 0)
			err = -EIO; /* a callback of ours never returns > 0 here */
		else if (!err && next[0] && strcmp(next, marker) == 0)
			err = -EIO; /* the same page again would loop forever */
		if (err)
			goto out_release;
		swap = marker;
		marker = next;
		next = swap;
	} while (marker[0]);
	err = meta_listing_finish(collect.listing);
	if (err)
		goto out_release;
	meta_put_listing(fs->meta, dir, collect.listing); /* -ENOSPC: served, not cached */
	*out = collect.listing;
	return 0;

out_release:
	meta_listing_release(collect.listing);
	return err;
}

/* The read path: bytes of the object pinned by file, never of another version, through
 * the block cache. Reads the range whole (a short FUSE read before EOF would shrink
 * the kernel's file size); cache_read() is short only at the end of the object. */
static int fs_read_range(struct fs *fs, const struct fs_file *file, char *buf, size_t size,
			 uint64_t offset)
{
	ssize_t n;

	if (offset >= file->size)
		return 0;
	if (size > file->size - offset)
		size = (size_t)(file->size - offset);
	if (size > INT_MAX)
		size = INT_MAX;
	n = cache_read(file->cached, offset, size, buf);
	if (n == -ESTALE)
		meta_invalidate(fs->meta, file->head.path); /* the next open sees the new one */
	if (n < 0)
		return (int)n;
	if ((size_t)n > size)
		return -EIO; /* more than asked: a bug, not data to pass on */
	return (int)n;
}

/* Operations ---------------------------------------------------------------------- */

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fs *fs = fs_ctx();
	struct store_attr attr;
	const char *spath;
	int err;

	if (path)
		spath = store_path(path);
	else if (fi)
		spath = handle_of(fi)->path;
	else
		return -EIO;
	err = fs_lookup(fs, spath, &attr);
	if (!err)
		fill_stat(fs, &attr, st);
	return err;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_ctx();
	const char *spath = store_path(path);
	struct store_attr attr;
	struct fs_file *file;
	int err;

	/* Writes come in a later issue; until then every mount is read-only. */
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EROFS;
	err = fs_lookup(fs, spath, &attr);
	if (err)
		return err;
	if (attr.is_dir)
		return -EISDIR;
	file = calloc(1, sizeof(*file));
	if (!file)
		return -ENOMEM;
	file->head.kind = FS_HANDLE_FILE;
	file->head.path = strdup(spath);
	if (!file->head.path) {
		free(file);
		return -ENOMEM;
	}
	file->size = attr.size;
	memcpy(file->etag, attr.etag, sizeof(file->etag));
	file->etag[sizeof(file->etag) - 1] = '\0';
	err = cache_open(fs->cfg.cache, spath, file->etag, file->size, &file->cached);
	if (err) {
		free(file->head.path);
		free(file);
		return err;
	}
	fi->fh = (uintptr_t)file;
	/* Pages the kernel holds are this object's only if the last open saw this etag. */
	fi->keep_cache = meta_note_open(fs->meta, spath, file->etag);
	fi->direct_io = 0;
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t offset,
		   struct fuse_file_info *fi)
{
	struct fs_handle *handle = handle_of(fi);

	(void)path;
	if (handle->kind != FS_HANDLE_FILE)
		return -EISDIR;
	if (offset < 0)
		return -EINVAL;
	return fs_read_range(fs_ctx(), (struct fs_file *)handle, buf, size, (uint64_t)offset);
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct fs_file *file = (struct fs_file *)handle_of(fi);

	(void)path;
	cache_close(file->cached);
	free(file->head.path);
	free(file);
	return 0;
}

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct fs_dir *dir = calloc(1, sizeof(*dir));

	if (!dir)
		return -ENOMEM;
	dir->head.kind = FS_HANDLE_DIR;
	dir->head.path = strdup(store_path(path));
	if (!dir->head.path) {
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
	size_t count, pos;

	(void)path;
	(void)flags; /* plain readdir ignores the attributes; libfuse takes both */
	if (offset < 0)
		return -EINVAL;
	if (offset == 0 || !dir->listing) {
		struct meta_listing *listing;
		int err = fs_load_listing(fs, dir->head.path, &listing);

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
			meta_listing_attr(dir->listing, pos - 2, &attr);
			fill_stat(fs, &attr, &st);
			name = meta_listing_name(dir->listing, pos - 2);
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
	free(dir->head.path);
	free(dir);
	return 0;
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
	/* Asking for a capability the kernel lacks makes libfuse fail INIT. */
	conn->want |= conn->capable & (FUSE_CAP_READDIRPLUS | FUSE_CAP_ASYNC_READ);
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

/* Writes: not in this issue. */
static int fs_mknod(const char *path, mode_t mode, dev_t rdev)
{
	(void)path, (void)mode, (void)rdev;
	return -EROFS;
}

static int fs_mkdir(const char *path, mode_t mode)
{
	(void)path, (void)mode;
	return -EROFS;
}

static int fs_unlink(const char *path)
{
	(void)path;
	return -EROFS;
}

static int fs_rmdir(const char *path)
{
	(void)path;
	return -EROFS;
}

static int fs_symlink(const char *target, const char *path)
{
	(void)target, (void)path;
	return -EROFS;
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	(void)from, (void)to, (void)flags;
	return -EROFS;
}

static int fs_link(const char *from, const char *to)
{
	(void)from, (void)to;
	return -EROFS;
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path, (void)mode, (void)fi;
	return -EROFS;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)path, (void)uid, (void)gid, (void)fi;
	return -EROFS;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)path, (void)size, (void)fi;
	return -EROFS;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t offset,
		    struct fuse_file_info *fi)
{
	(void)path, (void)buf, (void)size, (void)offset, (void)fi;
	return -EROFS;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path, (void)mode, (void)fi;
	return -EROFS;
}

static int fs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)path, (void)tv, (void)fi;
	return -EROFS;
}

static int fs_fallocate(const char *path, int mode, off_t offset, off_t len,
			struct fuse_file_info *fi)
{
	(void)path, (void)mode, (void)offset, (void)len, (void)fi;
	return -EROFS;
}

static const struct fuse_operations fs_ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.open = fs_open,
	.read = fs_read,
	.release = fs_release,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.truncate = fs_truncate,
	.write = fs_write,
	.create = fs_create,
	.utimens = fs_utimens,
	.fallocate = fs_fallocate,
};

const struct fuse_operations *fs_operations(void)
{
	return &fs_ops;
}

int fs_new(const struct fs_config *cfg, struct fs **out)
{
	struct meta_config meta_cfg;
	struct fs *fs;
	int err;

	if (!cfg || !cfg->store || !(cfg->attr_timeout >= 0) || !(cfg->entry_timeout >= 0) ||
	    !(cfg->negative_timeout >= 0))
		return -EINVAL;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->cfg = *cfg;
	fs->mount_time = time(NULL);
	meta_cfg = (struct meta_config){
		.attr_timeout = cfg->attr_timeout,
		.entry_timeout = cfg->entry_timeout,
		.negative_timeout = cfg->negative_timeout,
		.max_entries = FS_META_MAX_ENTRIES,
	};
	err = meta_new(&meta_cfg, &fs->meta);
	if (err) {
		free(fs);
		return err;
	}
	*out = fs;
	return 0;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	meta_free(fs->meta);
	free(fs);
}
