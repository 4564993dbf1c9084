/* transfer: parallel copies between the local filesystem and stores. */
#include "tools/lib/transfer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "auth/base/log.h"
#include "auth/base/util.h"
#include "cache/store/datastore.h"

#define XFER_MAX_BLOCKS 50000 /* the service's limit of blocks per blob */
#define XFER_PATH_MAX (PATH_MAX + 1100)
#define XFER_LINK_MAX 4095
#define XFER_MSG_MAX 1024
#define XFER_PROGRESS_MS 250

enum xfer_kind {
	XFER_FILE,
	XFER_DIR,     /* a folder to create (local) or mark (store, when empty) */
	XFER_SYMLINK, /* a symlink object of a store: the content is the target */
};

struct xfer_file {
	char *rel; /* path below both roots; "" for the roots themselves */
	enum xfer_kind kind;
	uint64_t size;
	int64_t mtime;
	uint32_t mtime_nsec;
	char etag[STORE_ETAG_MAX]; /* store sources: the version being copied */
	size_t chunk;              /* bytes per chunk of this file */
	uint32_t nchunks;
	unsigned char nonce[8];    /* makes its block ids its own */
	/* guarded by xfer.lock */
	uint32_t next_chunk, chunks_done;
	bool failed;
	char *message; /* why it failed */
	int fd;        /* local destination: the temporary file, while chunks land */
	int open_err;  /* creating it failed */
	char *tmp;     /* its name */
	char *link_target;
};

struct xfer {
	const struct transfer_side *src, *dst;
	const struct transfer_opts *opts;
	struct xfer_file *files;
	size_t nfiles, cap;
	size_t max_buffer; /* the largest chunk any file needs */
	uint64_t total_bytes, total_files, total_chunks;

	pthread_mutex_t lock; /* guards cursor, stats, and the progress of every file */
	size_t cursor;
	struct transfer_stats stats;

	_Atomic uint64_t bytes_done;
	_Atomic uint64_t files_done;
	_Atomic unsigned tmp_seq;

	pthread_mutex_t print_lock; /* guards stderr, stop */
	pthread_cond_t stop_cond;
	bool stop;
	struct timespec start;
};

void transfer_opts_default(struct transfer_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->workers = 8;
	opts->block_size = 8u << 20;
}

const char *transfer_store_error(int err)
{
	switch (err) {
	case -ENOENT:
		return "not found on the service (deleted meanwhile, or the container is gone)";
	case -EACCES:
		return "refused by the service: the credential may not do this (a SAS needs "
		       "the read, write or list permission it is used for)";
	case -ESTALE:
		return "it changed on the service while being copied; run the copy again";
	case -EEXIST:
		return "the service reports a conflict with what is there";
	case -EIO:
		return "the service kept failing (after retries)";
	case -ETIMEDOUT:
		return "timed out (the -o timeout= option sets the bound)";
	case -EHOSTUNREACH:
		return "cannot connect to the service";
	case -ECONNRESET:
		return "the connection to the service kept breaking";
	case -ENAMETOOLONG:
		return "the name is too long for a blob (1024 characters at most)";
	case -ENOMEM:
		return "out of memory";
	default:
		return strerror(-err);
	}
}

static double xfer_elapsed(const struct xfer *x)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - x->start.tv_sec) +
	       (double)(now.tv_nsec - x->start.tv_nsec) / 1e9;
}

/* Paths -------------------------------------------------------------------------------- */

/* base + "/" + rel (either may be empty); -ENAMETOOLONG when it does not fit. */
static int xfer_join(char *out, size_t outlen, const char *base, const char *rel)
{
	if (!*rel)
		return util_path_join(out, outlen, "", base);
	return util_path_join(out, outlen, base, rel);
}

static int xfer_side_path(const struct transfer_side *side, const struct xfer_file *f,
			  char *out, size_t outlen)
{
	return xfer_join(out, outlen, side->path, f->rel);
}

static void xfer_side_display(const struct transfer_side *side, const struct xfer_file *f,
			      char *out, size_t outlen)
{
	if (xfer_join(out, outlen, side->display ? side->display : side->path, f->rel))
		snprintf(out, outlen, "%s", f->rel);
}

/* Reporting ---------------------------------------------------------------------------- */

static void xfer_report(struct xfer *x, const struct xfer_file *f, const char *message)
{
	char src[XFER_PATH_MAX], dst[XFER_PATH_MAX];

	xfer_side_display(x->src, f, src, sizeof(src));
	xfer_side_display(x->dst, f, dst, sizeof(dst));
	pthread_mutex_lock(&x->print_lock);
	if (x->opts->progress)
		fputs("\r\033[K", stderr);
	if (x->opts->on_error)
		x->opts->on_error(x->opts->error_ctx, src, dst, message);
	else
		log_error("%s -> %s: %s", src, dst, message);
	pthread_mutex_unlock(&x->print_lock);
}

__attribute__((format(printf, 2, 3))) static char *xfer_msg(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, XFER_MSG_MAX, fmt, ap);
	va_end(ap);
	return buf;
}

/* A failure found while listing: reported at once, counted. */
static void xfer_fail_entry(struct xfer *x, const char *rel, const char *message)
{
	struct xfer_file f = { .rel = (char *)rel };

	xfer_report(x, &f, message);
	x->stats.failed++;
}

static void xfer_format_size(uint64_t bytes, char *out, size_t outlen)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, outlen, "%llu B", (unsigned long long)bytes);
	else
		snprintf(out, outlen, "%.1f %s", v, units[u]);
}

static void xfer_draw(struct xfer *x, bool final)
{
	uint64_t done = atomic_load(&x->bytes_done), files = atomic_load(&x->files_done);
	double secs = xfer_elapsed(x), rate = secs > 0 ? (double)done / secs : 0;
	char done_s[32], total_s[32], rate_s[32], eta[32] = "";
	int percent = x->total_bytes ? (int)(done * 100 / x->total_bytes) : 100;
	char bar[21];
	int filled = percent / 5;

	for (int i = 0; i < 20; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[20] = '\0';
	xfer_format_size(done, done_s, sizeof(done_s));
	xfer_format_size(x->total_bytes, total_s, sizeof(total_s));
	xfer_format_size((uint64_t)rate, rate_s, sizeof(rate_s));
	if (!final && rate > 0 && done < x->total_bytes) {
		uint64_t left = (uint64_t)((double)(x->total_bytes - done) / rate);

		snprintf(eta, sizeof(eta), "  ETA %llu:%02llu", (unsigned long long)(left / 60),
			 (unsigned long long)(left % 60));
	}
	fprintf(stderr, "\r[%s] %3d%%  %s / %s  %s/s  %llu/%llu files%s\033[K%s", bar, percent,
		done_s, total_s, rate_s, (unsigned long long)files,
		(unsigned long long)x->total_files, eta, final ? "\n" : "");
	fflush(stderr);
}

static void *xfer_progress_thread(void *arg)
{
	struct xfer *x = arg;

	pthread_mutex_lock(&x->print_lock);
	while (!x->stop) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += XFER_PROGRESS_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&x->stop_cond, &x->print_lock, &until);
		if (!x->stop)
			xfer_draw(x, false);
	}
	xfer_draw(x, true);
	pthread_mutex_unlock(&x->print_lock);
	return NULL;
}

/* Listing the source ------------------------------------------------------------------ */

static int xfer_add(struct xfer *x, const char *rel, enum xfer_kind kind, uint64_t size,
		    int64_t mtime, uint32_t mtime_nsec, const char *etag)
{
	struct xfer_file *f;
	size_t chunk = x->opts->block_size;

	if (x->nfiles == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		struct xfer_file *grown = realloc(x->files, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		x->files = grown;
		x->cap = cap;
	}
	f = &x->files[x->nfiles];
	memset(f, 0, sizeof(*f));
	f->rel = strdup(rel);
	if (!f->rel)
		return -ENOMEM;
	f->kind = kind;
	f->size = kind == XFER_DIR ? 0 : size;
	f->mtime = mtime;
	f->mtime_nsec = mtime_nsec;
	f->fd = -1;
	if (etag)
		snprintf(f->etag, sizeof(f->etag), "%s", etag);
	/* A blob has at most 50000 blocks: bigger files get bigger chunks (whole MiB). */
	if (kind == XFER_FILE && f->size / chunk >= XFER_MAX_BLOCKS) {
		uint64_t need = (f->size + XFER_MAX_BLOCKS - 1) / XFER_MAX_BLOCKS;

		chunk = (size_t)((need + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1));
	}
	f->chunk = chunk;
	f->nchunks = kind == XFER_FILE && f->size ? (uint32_t)((f->size + chunk - 1) / chunk) : 1;
	if (getrandom(f->nonce, sizeof(f->nonce), 0) != (ssize_t)sizeof(f->nonce)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		memcpy(f->nonce, &ts.tv_nsec, sizeof(f->nonce) < sizeof(ts.tv_nsec)
						      ? sizeof(f->nonce)
						      : sizeof(ts.tv_nsec));
	}
	if (kind != XFER_DIR) {
		size_t need = f->size < chunk ? (size_t)f->size : chunk;

		if (kind == XFER_SYMLINK)
			need = XFER_LINK_MAX + 1;
		if (need > x->max_buffer)
			x->max_buffer = need;
		x->total_files++;
		x->total_bytes += f->size;
	}
	x->total_chunks += f->nchunks;
	x->nfiles++;
	return 0;
}

/* The (device, inode) of each folder being walked, to stop at symlink loops. */
struct xfer_ancestor {
	dev_t dev;
	ino_t ino;
	const struct xfer_ancestor *up;
};

static int xfer_walk_local(struct xfer *x, const char *rel, const struct xfer_ancestor *up)
{
	char full[XFER_PATH_MAX], child_rel[XFER_PATH_MAX], child_full[XFER_PATH_MAX];
	char msg[XFER_MSG_MAX];
	struct xfer_ancestor self;
	struct dirent *de;
	struct stat st = { 0 };
	size_t entries = 0;
	DIR *d;
	int err = 0;

	if (xfer_join(full, sizeof(full), x->src->path, rel))
		return -ENAMETOOLONG;
	d = opendir(full);
	if (!d) {
		err = -errno;
		if (!*rel)
			return err;
		xfer_fail_entry(x, rel, xfer_msg(msg, "cannot read the folder: %s", strerror(-err)));
		return 0;
	}
	if (fstat(dirfd(d), &st) == 0) {
		self = (struct xfer_ancestor){ .dev = st.st_dev, .ino = st.st_ino, .up = up };
	} else {
		self = (struct xfer_ancestor){ .up = up };
	}
	if (!x->dst->store) {
		err = xfer_add(x, rel, XFER_DIR, 0, st.st_mtim.tv_sec,
			       (uint32_t)st.st_mtim.tv_nsec, NULL);
	}
	while (!err && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		entries++;
		if (xfer_join(child_rel, sizeof(child_rel), rel, de->d_name) ||
		    xfer_join(child_full, sizeof(child_full), full, de->d_name)) {
			xfer_fail_entry(x, rel, "a name inside is too long");
			continue;
		}
		if (stat(child_full, &st) != 0) {
			xfer_fail_entry(x, child_rel,
					xfer_msg(msg, "cannot read it: %s%s", strerror(errno),
						 errno == ENOENT ? " (a dangling symbolic link?)" : ""));
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			const struct xfer_ancestor *a;

			for (a = &self; a; a = a->up)
				if (a->dev == st.st_dev && a->ino == st.st_ino)
					break;
			if (a) {
				xfer_fail_entry(x, child_rel,
						"a symbolic link to a folder that contains it; skipped");
				continue;
			}
			err = xfer_walk_local(x, child_rel, &self);
		} else if (S_ISREG(st.st_mode)) {
			err = xfer_add(x, child_rel, XFER_FILE, (uint64_t)st.st_size,
				       st.st_mtim.tv_sec, (uint32_t)st.st_mtim.tv_nsec, NULL);
		} else {
			xfer_fail_entry(x, child_rel,
					"not a regular file or folder (a device, socket or pipe); "
					"skipped");
		}
	}
	closedir(d);
	/* An empty folder leaves a marker in a store, so the tree comes back whole. */
	if (!err && !entries && x->dst->store)
		err = xfer_add(x, rel, XFER_DIR, 0, st.st_mtim.tv_sec, (uint32_t)st.st_mtim.tv_nsec,
			       NULL);
	return err;
}

static int xfer_walk_store(struct xfer *x, const char *rel, const struct store_attr *attr,
			   char *errbuf, size_t errlen)
{
	char full[XFER_PATH_MAX], child_rel[XFER_PATH_MAX], msg[XFER_MSG_MAX];
	struct datastore_entry *entries;
	size_t count;
	int err;

	if (xfer_join(full, sizeof(full), x->src->path, rel))
		return -ENAMETOOLONG;
	err = datastore_list(x->src->store, full, &entries, &count);
	if (err) {
		if (!*rel) {
			snprintf(errbuf, errlen, "cannot list %s: %s",
				 x->src->display ? x->src->display : x->src->path,
				 transfer_store_error(err));
			return err;
		}
		xfer_fail_entry(x, rel, xfer_msg(msg, "cannot list the folder: %s",
						 transfer_store_error(err)));
		return 0;
	}
	if (!x->dst->store || !count)
		err = xfer_add(x, rel, XFER_DIR, 0, attr ? attr->mtime : 0,
			       attr ? attr->mtime_nsec : 0, NULL);
	for (size_t i = 0; i < count && !err; i++) {
		const struct datastore_entry *e = &entries[i];

		if (xfer_join(child_rel, sizeof(child_rel), rel, e->name)) {
			xfer_fail_entry(x, rel, "a name inside is too long");
			continue;
		}
		if (e->attr.is_dir)
			err = xfer_walk_store(x, child_rel, &e->attr, errbuf, errlen);
		else
			err = xfer_add(x, child_rel, e->attr.is_symlink ? XFER_SYMLINK : XFER_FILE,
				       e->attr.size, e->attr.mtime, e->attr.mtime_nsec, e->attr.etag);
	}
	datastore_entries_free(entries, count);
	return err;
}

/* Copying ----------------------------------------------------------------------------- */

/* Base64 of 8 bytes of nonce and the big-endian chunk index: 24 characters. */
static void xfer_block_id(const struct xfer_file *f, uint32_t index, char *out)
{
	unsigned char raw[16];

	memcpy(raw, f->nonce, 8);
	for (int i = 0; i < 8; i++)
		raw[8 + i] = (unsigned char)((uint64_t)index >> (56 - 8 * i));
	EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
}

static struct store_meta xfer_meta(const struct xfer_file *f)
{
	return (struct store_meta){
		.is_dir = f->kind == XFER_DIR,
		.is_symlink = f->kind == XFER_SYMLINK,
		.has_mtime = f->mtime != 0,
		.mtime = f->mtime,
		.mtime_nsec = f->mtime_nsec,
	};
}

/* Reads len bytes at offset of the source of f into buf. */
static int xfer_read(struct xfer *x, const struct xfer_file *f, const char *src,
		     uint64_t offset, size_t len, void *buf, char *msg)
{
	size_t got = 0;

	if (!x->src->store) {
		int fd = open(src, O_RDONLY | O_CLOEXEC);
		int err = 0;
		ssize_t n;

		if (fd < 0) {
			err = -errno;
			xfer_msg(msg, "cannot open it: %s", strerror(-err));
			return err;
		}
		n = util_pread_full(fd, buf, len, offset);
		if (n < 0) {
			err = (int)n;
			xfer_msg(msg, "cannot read it: %s", strerror(-err));
		} else if ((size_t)n < len) {
			err = -EIO;
			xfer_msg(msg, "it shrank while being copied; run the copy again");
		}
		close(fd);
		return err;
	}
	while (got < len) {
		ssize_t n = store_read(x->src->store, src, f->etag[0] ? f->etag : NULL,
				       offset + got, len - got, (char *)buf + got);

		if (n < 0) {
			xfer_msg(msg, "cannot download it: %s", transfer_store_error((int)n));
			return (int)n;
		}
		if (n == 0) {
			xfer_msg(msg, "it is shorter than listed; run the copy again");
			return -EIO;
		}
		got += (size_t)n;
	}
	return 0;
}

static int xfer_write_local(int fd, uint64_t offset, const void *buf, size_t len, char *msg)
{
	int err = util_pwrite_full(fd, buf, len, offset);

	if (err)
		xfer_msg(msg, "cannot write it: %s", strerror(-err));
	return err;
}

/* One chunk of f: read it from the source, write it to the destination. */
static int xfer_do_chunk(struct xfer *x, struct xfer_file *f, uint32_t index, char *buf,
			 char *msg)
{
	char src[XFER_PATH_MAX], dst[XFER_PATH_MAX], block_id[32];
	struct store_meta meta = xfer_meta(f);
	uint64_t offset = (uint64_t)index * f->chunk;
	size_t len;
	int err;

	if (xfer_side_path(x->src, f, src, sizeof(src)) ||
	    xfer_side_path(x->dst, f, dst, sizeof(dst))) {
		xfer_msg(msg, "the path is too long");
		return -ENAMETOOLONG;
	}
	if (f->kind == XFER_DIR) {
		/* only stores get here: local folders are made before the workers start, and
		 * so are a share's (xfer_make_store_dirs()) */
		if (!*dst || x->dst->store->real_dirs)
			return 0; /* the root of a store always exists */
		err = store_put(x->dst->store, dst, "", 0, &meta, NULL, NULL);
		if (err)
			xfer_msg(msg, "cannot create the folder marker: %s",
				 transfer_store_error(err));
		return err;
	}
	if (f->kind == XFER_SYMLINK) {
		if (f->size > XFER_LINK_MAX) {
			xfer_msg(msg, "a symbolic link target longer than %d bytes", XFER_LINK_MAX);
			return -ENAMETOOLONG;
		}
		err = xfer_read(x, f, src, 0, (size_t)f->size, buf, msg);
		if (err)
			return err;
		if (x->dst->store) {
			err = store_put(x->dst->store, dst, buf, (size_t)f->size, &meta, NULL, NULL);
			if (err)
				xfer_msg(msg, "cannot upload it: %s", transfer_store_error(err));
			return err;
		}
		f->link_target = strndup(buf, (size_t)f->size);
		return f->link_target ? 0 : -ENOMEM;
	}

	len = f->size - offset < f->chunk ? (size_t)(f->size - offset) : f->chunk;
	if (!x->dst->store && f->open_err) {
		xfer_msg(msg, "cannot create a temporary file beside it: %s",
			 strerror(-f->open_err));
		return f->open_err;
	}
	err = xfer_read(x, f, src, offset, len, buf, msg);
	if (err)
		return err;
	if (!x->dst->store) {
		err = xfer_write_local(f->fd, offset, buf, len, msg);
	} else if (f->nchunks == 1) {
		err = store_put(x->dst->store, dst, buf, len, &meta, NULL, NULL);
		if (err)
			xfer_msg(msg, "cannot upload it: %s", transfer_store_error(err));
	} else {
		xfer_block_id(f, index, block_id);
		err = store_put_block(x->dst->store, dst, block_id, offset, buf, len);
		if (err)
			xfer_msg(msg, "cannot upload block %u of %u: %s", index + 1, f->nchunks,
				 transfer_store_error(err));
	}
	if (!err)
		atomic_fetch_add(&x->bytes_done, len);
	return err;
}

/* After the last chunk of f: commit or rename on success, clean up either way. */
static void xfer_finish(struct xfer *x, struct xfer_file *f)
{
	char dst[XFER_PATH_MAX], msg[XFER_MSG_MAX];
	int err = 0;

	msg[0] = '\0';
	if (!f->failed && xfer_side_path(x->dst, f, dst, sizeof(dst))) {
		err = -ENAMETOOLONG;
		xfer_msg(msg, "the path is too long");
	}
	if (!err && !f->failed && f->kind == XFER_FILE && x->dst->store && f->nchunks > 1) {
		char (*ids)[32] = malloc(f->nchunks * sizeof(*ids));
		const char **list = malloc(f->nchunks * sizeof(*list));
		struct store_meta meta = xfer_meta(f);

		if (!ids || !list) {
			err = -ENOMEM;
		} else {
			for (uint32_t i = 0; i < f->nchunks; i++) {
				xfer_block_id(f, i, ids[i]);
				list[i] = ids[i];
			}
			err = store_commit(x->dst->store, dst, list, f->nchunks, &meta, NULL, NULL);
		}
		if (err)
			xfer_msg(msg, "cannot commit its %u blocks: %s", f->nchunks,
				 transfer_store_error(err));
		free(ids);
		free(list);
	}
	if (f->fd >= 0) {
		if (!err && !f->failed) {
			struct timespec times[2] = {
				{ .tv_nsec = UTIME_OMIT },
				{ .tv_sec = f->mtime, .tv_nsec = f->mtime_nsec },
			};

			if (f->mtime)
				futimens(f->fd, times);
		}
		if (close(f->fd) != 0 && !err && !f->failed) {
			err = -errno;
			xfer_msg(msg, "cannot write it: %s", strerror(errno));
		}
		f->fd = -1;
		if (!err && !f->failed && rename(f->tmp, dst) != 0) {
			err = -errno;
			xfer_msg(msg, "cannot put it in place: %s", strerror(errno));
		}
		if (err || f->failed)
			unlink(f->tmp);
	}
	free(f->tmp);
	f->tmp = NULL;
	if (err) {
		pthread_mutex_lock(&x->lock);
		f->failed = true;
		pthread_mutex_unlock(&x->lock);
	}
	if (f->failed) {
		xfer_report(x, f, f->message ? f->message : msg);
		pthread_mutex_lock(&x->lock);
		x->stats.failed++;
		pthread_mutex_unlock(&x->lock);
		return;
	}
	if (f->kind == XFER_SYMLINK && !x->dst->store)
		return; /* made at the end, once every file is written */
	pthread_mutex_lock(&x->lock);
	if (f->kind == XFER_DIR) {
		x->stats.dirs++;
	} else {
		x->stats.files++;
		x->stats.bytes += f->size;
	}
	pthread_mutex_unlock(&x->lock);
	if (f->kind != XFER_DIR)
		atomic_fetch_add(&x->files_done, 1);
}

/* Creates the temporary file a download lands in, beside its destination. */
static int xfer_open_tmp(struct xfer *x, struct xfer_file *f)
{
	char dst[XFER_PATH_MAX], tmp[XFER_PATH_MAX];
	const char *slash;
	int fd;

	if (xfer_side_path(x->dst, f, dst, sizeof(dst)))
		return -ENAMETOOLONG;
	slash = strrchr(dst, '/');
	if (snprintf(tmp, sizeof(tmp), "%.*s.ferry-%ld-%u.tmp", slash ? (int)(slash - dst + 1) : 0,
		     dst, (long)getpid(), atomic_fetch_add(&x->tmp_seq, 1)) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0666);
	if (fd < 0)
		return -errno;
	f->tmp = strdup(tmp);
	if (!f->tmp) {
		close(fd);
		unlink(tmp);
		return -ENOMEM;
	}
	f->fd = fd;
	return 0;
}

/* The next chunk to copy, or NULL when there is none. Under x->lock. */
static struct xfer_file *xfer_pick(struct xfer *x, uint32_t *index)
{
	while (x->cursor < x->nfiles) {
		struct xfer_file *f = &x->files[x->cursor];

		if (f->next_chunk >= f->nchunks) {
			x->cursor++;
			continue;
		}
		if (f->kind == XFER_FILE && !x->dst->store && f->fd < 0 && !f->open_err)
			f->open_err = xfer_open_tmp(x, f);
		*index = f->next_chunk++;
		return f;
	}
	return NULL;
}

static void *xfer_worker(void *arg)
{
	struct xfer *x = arg;
	char *buf = malloc(x->max_buffer ? x->max_buffer : 1);
	char msg[XFER_MSG_MAX];

	for (;;) {
		struct xfer_file *f;
		uint32_t index;
		bool last;
		int err;

		pthread_mutex_lock(&x->lock);
		f = xfer_pick(x, &index);
		pthread_mutex_unlock(&x->lock);
		if (!f)
			break;
		msg[0] = '\0';
		if (buf) {
			err = xfer_do_chunk(x, f, index, buf, msg);
		} else {
			err = -ENOMEM;
			xfer_msg(msg, "out of memory");
		}
		pthread_mutex_lock(&x->lock);
		if (err && !f->failed) {
			f->failed = true;
			f->message = strdup(msg[0] ? msg : strerror(-err));
		}
		f->chunks_done++;
		if (f->failed && f->next_chunk < f->nchunks) {
			/* the chunks not started yet will not be */
			f->chunks_done += f->nchunks - f->next_chunk;
			f->next_chunk = f->nchunks;
		}
		last = f->chunks_done == f->nchunks;
		pthread_mutex_unlock(&x->lock);
		if (last)
			xfer_finish(x, f);
	}
	free(buf);
	return NULL;
}

/* Local folders, parents first, before any file is written into them. */
static void xfer_make_local_dirs(struct xfer *x)
{
	char dst[XFER_PATH_MAX], msg[XFER_MSG_MAX];

	for (size_t i = 0; i < x->nfiles; i++) {
		struct xfer_file *f = &x->files[i];
		struct stat st;

		if (f->kind != XFER_DIR)
			continue;
		f->next_chunk = f->chunks_done = f->nchunks; /* nothing left for the workers */
		if (xfer_side_path(x->dst, f, dst, sizeof(dst))) {
			xfer_fail_entry(x, f->rel, "the path is too long");
			continue;
		}
		if (mkdir(dst, 0777) == 0) {
			x->stats.dirs++;
			continue;
		}
		if (errno == EEXIST && stat(dst, &st) == 0 && S_ISDIR(st.st_mode))
			continue;
		xfer_fail_entry(x, f->rel,
				xfer_msg(msg, "cannot create the folder: %s",
					 errno == EEXIST ? "a file of that name is in the way"
							 : strerror(errno)));
	}
}

/* Makes folder dir of a store with real directories, and its parents (as mkdir -p
 * does), unless made is true of it; made holds the folders made so far (nmade). */
static int xfer_store_mkdir_p(struct xfer *x, const char *dir, char ***made, size_t *nmade)
{
	const struct store_meta meta = { .is_dir = true };
	char part[XFER_PATH_MAX];
	size_t len = strlen(dir);

	if (len >= sizeof(part))
		return -ENAMETOOLONG;
	for (size_t end = 0; end <= len; end++) {
		char **grown;
		bool known = false;
		int err;

		if (end < len && dir[end] != '/')
			continue;
		memcpy(part, dir, end);
		part[end] = '\0';
		for (size_t i = *nmade; i-- > 0 && !known;)
			known = strcmp((*made)[i], part) == 0;
		if (!*part || known)
			continue;
		err = store_put(x->dst->store, part, "", 0, &meta, NULL, NULL);
		if (err)
			return err;
		grown = realloc(*made, (*nmade + 1) * sizeof(**made));
		if (!grown || !(grown[*nmade] = strdup(part))) {
			*made = grown ? grown : *made;
			return -ENOMEM;
		}
		*made = grown;
		(*nmade)++;
	}
	return 0;
}

/* A store with real directories (a share) holds no file in a folder it lacks: the
 * folders of every file and folder are made first, parents before children. */
static int xfer_make_store_dirs(struct xfer *x, char *errbuf, size_t errlen)
{
	char dst[XFER_PATH_MAX] = "", *slash;
	char **made = NULL;
	size_t nmade = 0;
	int err = 0;

	for (size_t i = 0; i < x->nfiles && !err; i++) {
		const struct xfer_file *f = &x->files[i];

		err = xfer_side_path(x->dst, f, dst, sizeof(dst));
		if (err)
			break;
		slash = strrchr(dst, '/');
		if (f->kind != XFER_DIR)
			*(slash ? slash : dst) = '\0';
		err = xfer_store_mkdir_p(x, dst, &made, &nmade);
	}
	if (err)
		snprintf(errbuf, errlen, "cannot create the folder %s in %s: %s", dst,
			 x->dst->display ? x->dst->display : "the datastore",
			 transfer_store_error(err));
	for (size_t i = 0; i < nmade; i++)
		free(made[i]);
	free(made);
	return err;
}

/* Local symlinks, once every file is in place: no file is ever written through one. */
static void xfer_make_local_links(struct xfer *x)
{
	char dst[XFER_PATH_MAX], msg[XFER_MSG_MAX];

	for (size_t i = 0; i < x->nfiles; i++) {
		struct xfer_file *f = &x->files[i];
		struct stat st;
		int err = 0;

		if (f->kind != XFER_SYMLINK || f->failed || !f->link_target)
			continue;
		if (xfer_side_path(x->dst, f, dst, sizeof(dst))) {
			err = -ENAMETOOLONG;
		} else if (symlink(f->link_target, dst) != 0) {
			err = -errno;
			if (err == -EEXIST && lstat(dst, &st) == 0 && !S_ISDIR(st.st_mode) &&
			    unlink(dst) == 0)
				err = symlink(f->link_target, dst) == 0 ? 0 : -errno;
		}
		if (err) {
			xfer_fail_entry(x, f->rel, xfer_msg(msg, "cannot create the symbolic link: %s",
							    strerror(-err)));
			continue;
		}
		x->stats.files++;
		x->stats.bytes += f->size;
		atomic_fetch_add(&x->files_done, 1);
	}
}

/* The source, when it is one file. */
static int xfer_add_single(struct xfer *x, char *errbuf, size_t errlen)
{
	const char *name = x->src->display ? x->src->display : x->src->path;
	struct store_attr attr;
	struct stat st;
	int err;

	if (!x->src->store) {
		if (stat(x->src->path, &st) != 0) {
			err = -errno;
			snprintf(errbuf, errlen, "%s: %s", name, strerror(errno));
			return err;
		}
		if (!S_ISREG(st.st_mode)) {
			snprintf(errbuf, errlen, "%s: not a regular file", name);
			return -EINVAL;
		}
		return xfer_add(x, "", XFER_FILE, (uint64_t)st.st_size, st.st_mtim.tv_sec,
				(uint32_t)st.st_mtim.tv_nsec, NULL);
	}
	err = store_stat(x->src->store, x->src->path, &attr);
	if (err) {
		snprintf(errbuf, errlen, "%s: %s", name,
			 err == -ENOENT ? "no such file" : transfer_store_error(err));
		return err;
	}
	if (attr.is_dir) {
		snprintf(errbuf, errlen, "%s: a folder, not a file", name);
		return -EISDIR;
	}
	return xfer_add(x, "", attr.is_symlink ? XFER_SYMLINK : XFER_FILE, attr.size, attr.mtime,
			attr.mtime_nsec, attr.etag);
}

int transfer_copy(const struct transfer_side *src, bool src_is_dir,
		  const struct transfer_side *dst, const struct transfer_opts *opts,
		  struct transfer_stats *stats, char *errbuf, size_t errlen)
{
	struct xfer x = { .src = src, .dst = dst, .opts = opts };
	pthread_t threads[256], progress_thread;
	int nthreads = 0, err;
	bool progress = false;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (opts->workers < 1 || opts->block_size < 1) {
		snprintf(errbuf, errlen, "workers and block size must be at least 1");
		return -EINVAL;
	}
	clock_gettime(CLOCK_MONOTONIC, &x.start);
	pthread_mutex_init(&x.lock, NULL);
	pthread_mutex_init(&x.print_lock, NULL);
	pthread_cond_init(&x.stop_cond, NULL);

	if (!src_is_dir)
		err = xfer_add_single(&x, errbuf, errlen);
	else if (src->store)
		err = xfer_walk_store(&x, "", NULL, errbuf, errlen);
	else
		err = xfer_walk_local(&x, "", NULL);
	if (err && errbuf && !errbuf[0])
		snprintf(errbuf, errlen, "cannot read %s: %s", src->display ? src->display : src->path,
			 src->store ? transfer_store_error(err) : strerror(-err));
	if (err)
		goto out_free;

	if (!dst->store)
		xfer_make_local_dirs(&x);
	else if (dst->store->real_dirs && (err = xfer_make_store_dirs(&x, errbuf, errlen)) != 0)
		goto out_free;
	if (opts->progress && x.total_files)
		progress = pthread_create(&progress_thread, NULL, xfer_progress_thread, &x) == 0;
	for (int i = 0; i < opts->workers && i < 256 && (uint64_t)i < x.total_chunks; i++) {
		if (pthread_create(&threads[nthreads], NULL, xfer_worker, &x) != 0)
			break;
		nthreads++;
	}
	if (!nthreads && x.total_chunks)
		xfer_worker(&x); /* no thread could start: copy on this one */
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	if (!dst->store)
		xfer_make_local_links(&x);
	if (progress) {
		pthread_mutex_lock(&x.print_lock);
		x.stop = true;
		pthread_cond_signal(&x.stop_cond);
		pthread_mutex_unlock(&x.print_lock);
		pthread_join(progress_thread, NULL);
	}
	err = x.stats.failed ? -EIO : 0;
out_free:
	x.stats.seconds = xfer_elapsed(&x);
	if (stats)
		*stats = x.stats;
	for (size_t i = 0; i < x.nfiles; i++) {
		free(x.files[i].rel);
		free(x.files[i].message);
		free(x.files[i].link_target);
	}
	free(x.files);
	pthread_cond_destroy(&x.stop_cond);
	pthread_mutex_destroy(&x.print_lock);
	pthread_mutex_destroy(&x.lock);
	return err;
}
