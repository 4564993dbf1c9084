#include "fs/mount.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <malloc.h>
#include <mntent.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/base/log.h"
#include "auth/base/util.h"
#include "cache/cache.h"
#include "fs/fs.h"
#include "fs/status.h"
#include "cache/store/datastore.h"
#include "cache/store/open.h"

/* malloc tuning of a serving mount: at most 4 arenas keeping 8 MiB each free. */
#define MOUNT_MALLOC_MMAP_MIN (4 << 20)
#define MOUNT_MALLOC_TRIM (8 << 20)
#define MOUNT_MALLOC_ARENAS 4

/* How long the caller of a background mount waits for the daemon's verdict. */
#define MOUNT_READY_TIMEOUT_MS 15000
/* How long a daemon that missed it has to exit on SIGTERM before SIGKILL. */
#define MOUNT_STOP_GRACE_MS 5000

void mount_options_default(struct mount_options *mo)
{
	memset(mo, 0, sizeof(*mo));
	mo->attr_timeout = 60;
	mo->entry_timeout = 60;
	mo->negative_timeout = 5;
	mo->uid = getuid();
	mo->gid = getgid();
	mo->umask = 022;
	mo->workers = 8;
	mo->timeout_s = 60;
	mo->log_level = LOG_LVL_WARN;
	mo->block_size = 16u << 20;
	mo->cache_mem = 256u << 20;
	mo->cache_size = 10ull << 30;
	mo->prefetch_window = 64u << 20;
}

/* The caller's path as an absolute one, against the working directory of now (the
 * daemon changes directory): -ENAMETOOLONG when it does not fit, -errno of getcwd. */
static int mount_absolute(const char *path, char *out, size_t outlen)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return util_path_join(out, outlen, "", path);
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	return util_path_join(out, outlen, cwd, path);
}

int mount_canonical(const char *path, char *out, size_t outlen)
{
	char abs[PATH_MAX], parent[PATH_MAX];
	char *slash, *base;
	int err = mount_absolute(path, abs, sizeof(abs));

	if (err)
		return err;
	slash = strrchr(abs, '/');
	base = slash + 1;
	if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return realpath(abs, out) ? 0 : -errno; /* PATH_MAX: outlen is that */
	*slash = '\0';
	if (!realpath(*abs ? abs : "/", parent))
		return -errno;
	return util_path_join(out, outlen, parent, base);
}

/* What the value of an option is, and where it goes. */
enum mount_value_kind {
	MOUNT_SECONDS, /* double >= 0 */
	MOUNT_SIZE,    /* size_t, util_parse_size, from min to max */
	MOUNT_SIZE64,  /* uint64_t, the same */
	MOUNT_INT,     /* int, decimal, from min to max */
	MOUNT_ID,      /* uid_t or gid_t, decimal */
	MOUNT_UMASK,   /* mode_t, octal, up to 0777 */
	MOUNT_PATH,    /* char[PATH_MAX]: made absolute */
};

/* The options with a value: their fuse_opt key is their index in mount_values. */
enum mount_key {
	MOUNT_KEY_ATTR_TIMEOUT,
	MOUNT_KEY_ENTRY_TIMEOUT,
	MOUNT_KEY_NEGATIVE_TIMEOUT,
	MOUNT_KEY_ACCOUNT_KEY_FILE,
	MOUNT_KEY_SAS_FILE,
	MOUNT_KEY_BEARER_TOKEN_FILE,
	MOUNT_KEY_CA_FILE,
	MOUNT_KEY_LOG_FILE,
	MOUNT_KEY_CACHE_DIR,
	MOUNT_KEY_BLOCK_SIZE,
	MOUNT_KEY_CACHE_MEM,
	MOUNT_KEY_CACHE_SIZE,
	MOUNT_KEY_PREFETCH_WINDOW,
	MOUNT_KEY_UID,
	MOUNT_KEY_GID,
	MOUNT_KEY_UMASK,
	MOUNT_KEY_WORKERS,
	MOUNT_KEY_TIMEOUT,
	MOUNT_KEY_VALUES,
	/* flags and choices */
	MOUNT_KEY_RO = MOUNT_KEY_VALUES,
	MOUNT_KEY_RW,
	MOUNT_KEY_ALLOW_HTTP,
	MOUNT_KEY_ALLOW_OTHER,
	MOUNT_KEY_NONEMPTY,
	MOUNT_KEY_DEBUG,
	MOUNT_KEY_CONFLICT,
	MOUNT_KEY_LOG_LEVEL,
	MOUNT_KEY_KIND,
};

struct mount_value {
	enum mount_value_kind kind;
	size_t offset; /* in struct mount_options */
	uint64_t min, max;
};

#define MOUNT_FIELD(field) offsetof(struct mount_options, field)
#define MOUNT_MIN_SIZE (64ull << 10)

static const struct mount_value mount_values[MOUNT_KEY_VALUES] = {
	[MOUNT_KEY_ATTR_TIMEOUT] = { MOUNT_SECONDS, MOUNT_FIELD(attr_timeout), 0, 0 },
	[MOUNT_KEY_ENTRY_TIMEOUT] = { MOUNT_SECONDS, MOUNT_FIELD(entry_timeout), 0, 0 },
	[MOUNT_KEY_NEGATIVE_TIMEOUT] = { MOUNT_SECONDS, MOUNT_FIELD(negative_timeout), 0, 0 },
	[MOUNT_KEY_ACCOUNT_KEY_FILE] = { MOUNT_PATH, MOUNT_FIELD(account_key_file), 0, 0 },
	[MOUNT_KEY_SAS_FILE] = { MOUNT_PATH, MOUNT_FIELD(sas_file), 0, 0 },
	[MOUNT_KEY_BEARER_TOKEN_FILE] = { MOUNT_PATH, MOUNT_FIELD(bearer_token_file), 0, 0 },
	[MOUNT_KEY_CA_FILE] = { MOUNT_PATH, MOUNT_FIELD(ca_file), 0, 0 },
	[MOUNT_KEY_LOG_FILE] = { MOUNT_PATH, MOUNT_FIELD(log_file), 0, 0 },
	[MOUNT_KEY_CACHE_DIR] = { MOUNT_PATH, MOUNT_FIELD(cache_dir), 0, 0 },
	[MOUNT_KEY_BLOCK_SIZE] = { MOUNT_SIZE, MOUNT_FIELD(block_size), MOUNT_MIN_SIZE, 64ull << 20 },
	[MOUNT_KEY_CACHE_MEM] = { MOUNT_SIZE, MOUNT_FIELD(cache_mem), MOUNT_MIN_SIZE, 1ull << 50 },
	[MOUNT_KEY_CACHE_SIZE] = { MOUNT_SIZE64, MOUNT_FIELD(cache_size), MOUNT_MIN_SIZE, 1ull << 50 },
	[MOUNT_KEY_PREFETCH_WINDOW] = { MOUNT_SIZE, MOUNT_FIELD(prefetch_window), MOUNT_MIN_SIZE,
					1ull << 50 },
	[MOUNT_KEY_UID] = { MOUNT_ID, MOUNT_FIELD(uid), 0, INT_MAX },
	[MOUNT_KEY_GID] = { MOUNT_ID, MOUNT_FIELD(gid), 0, INT_MAX },
	[MOUNT_KEY_UMASK] = { MOUNT_UMASK, MOUNT_FIELD(umask), 0, 0777 },
	[MOUNT_KEY_WORKERS] = { MOUNT_INT, MOUNT_FIELD(workers), 1, 3600 },
	[MOUNT_KEY_TIMEOUT] = { MOUNT_INT, MOUNT_FIELD(timeout_s), 1, 3600 },
};

/* Every -o option; fstab's generic ones are dropped, as sshfs does. */
static const struct fuse_opt mount_opts[] = {
	FUSE_OPT_KEY("attr_timeout=", MOUNT_KEY_ATTR_TIMEOUT),
	FUSE_OPT_KEY("entry_timeout=", MOUNT_KEY_ENTRY_TIMEOUT),
	FUSE_OPT_KEY("negative_timeout=", MOUNT_KEY_NEGATIVE_TIMEOUT),
	FUSE_OPT_KEY("account_key_file=", MOUNT_KEY_ACCOUNT_KEY_FILE),
	FUSE_OPT_KEY("sas_file=", MOUNT_KEY_SAS_FILE),
	FUSE_OPT_KEY("bearer_token_file=", MOUNT_KEY_BEARER_TOKEN_FILE),
	FUSE_OPT_KEY("ca_file=", MOUNT_KEY_CA_FILE),
	FUSE_OPT_KEY("log_file=", MOUNT_KEY_LOG_FILE),
	FUSE_OPT_KEY("cache_dir=", MOUNT_KEY_CACHE_DIR),
	FUSE_OPT_KEY("block_size=", MOUNT_KEY_BLOCK_SIZE),
	FUSE_OPT_KEY("cache_mem=", MOUNT_KEY_CACHE_MEM),
	FUSE_OPT_KEY("cache_size=", MOUNT_KEY_CACHE_SIZE),
	FUSE_OPT_KEY("prefetch_window=", MOUNT_KEY_PREFETCH_WINDOW),
	FUSE_OPT_KEY("uid=", MOUNT_KEY_UID),
	FUSE_OPT_KEY("gid=", MOUNT_KEY_GID),
	FUSE_OPT_KEY("umask=", MOUNT_KEY_UMASK),
	FUSE_OPT_KEY("workers=", MOUNT_KEY_WORKERS),
	FUSE_OPT_KEY("timeout=", MOUNT_KEY_TIMEOUT),
	FUSE_OPT_KEY("ro", MOUNT_KEY_RO),
	FUSE_OPT_KEY("rw", MOUNT_KEY_RW),
	FUSE_OPT_KEY("allow_http", MOUNT_KEY_ALLOW_HTTP),
	FUSE_OPT_KEY("allow_other", MOUNT_KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("nonempty", MOUNT_KEY_NONEMPTY),
	FUSE_OPT_KEY("debug", MOUNT_KEY_DEBUG),
	FUSE_OPT_KEY("conflict=", MOUNT_KEY_CONFLICT),
	FUSE_OPT_KEY("log_level=", MOUNT_KEY_LOG_LEVEL),
	FUSE_OPT_KEY("kind=", MOUNT_KEY_KIND),
	FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("user=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nouser", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("exec", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noexec", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("suid", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nosuid", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("dev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nodev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("atime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noatime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("relatime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("async", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("comment=", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};

/* What fuse_opt_parse's callback works on. */
struct mount_parse {
	struct mount_options *mo;
	char *errbuf;
	size_t errlen;
	int err;
};

/* "option NAME: 'VALUE' is not EXPECTED"; fails the parse. */
static int mount_parse_fail(struct mount_parse *p, const char *name, const char *value,
			    const char *expected)
{
	util_errf(p->errbuf, p->errlen, "option %s: '%s' is not %s", name, value, expected);
	p->err = -EINVAL;
	return -1;
}

static int mount_parse_number(struct mount_parse *p, const struct mount_value *v, void *field,
			      const char *name, const char *value)
{
	char *end;
	long number;

	errno = 0;
	number = strtol(value, &end, v->kind == MOUNT_UMASK ? 8 : 10);
	if (v->kind == MOUNT_UMASK && (errno || end == value || *end || number < 0 ||
				       number > (long)v->max))
		return mount_parse_fail(p, name, value, "an octal umask from 0 to 0777");
	if (errno || end == value || *end || number < (long)v->min || number > (long)v->max) {
		util_errf(p->errbuf, p->errlen, "option %s: '%s' is not a number from %llu to %llu",
			  name, value, (unsigned long long)v->min, (unsigned long long)v->max);
		p->err = -EINVAL;
		return -1;
	}
	if (v->kind == MOUNT_UMASK)
		*(mode_t *)field = (mode_t)number;
	else if (v->kind == MOUNT_ID)
		*(uid_t *)field = (uid_t)number; /* uid_t and gid_t are one type on Linux */
	else
		*(int *)field = (int)number;
	return 0;
}

static int mount_parse_value(struct mount_parse *p, const struct mount_value *v,
			     const char *name, const char *value)
{
	void *field = (char *)p->mo + v->offset;
	uint64_t size;
	char *end;

	switch (v->kind) {
	case MOUNT_SECONDS:
		errno = 0;
		*(double *)field = strtod(value, &end);
		if (errno || end == value || *end || *(double *)field < 0)
			return mount_parse_fail(p, name, value, "a number of seconds >= 0");
		return 0;
	case MOUNT_PATH:
		if (!*value || mount_absolute(value, field, PATH_MAX) != 0)
			return mount_parse_fail(p, name, value, "a usable path");
		return 0;
	case MOUNT_SIZE:
	case MOUNT_SIZE64:
		if (util_parse_size(value, &size) != 0 || size < v->min || size > v->max) {
			util_errf(p->errbuf, p->errlen, "option %s: '%s' is not a size from %llu to "
				  "%llu bytes (suffixes K, M, G, T)", name, value,
				  (unsigned long long)v->min, (unsigned long long)v->max);
			p->err = -EINVAL;
			return -1;
		}
		if (v->kind == MOUNT_SIZE64)
			*(uint64_t *)field = size;
		else
			*(size_t *)field = (size_t)size;
		return 0;
	default:
		return mount_parse_number(p, v, field, name, value);
	}
}

/* fuse_opt_parse's callback: one option of a -o list. */
static int mount_parse_one(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct mount_parse *p = data;
	const char *value = strchr(arg, '=');
	char name[64];
	enum log_level level;

	(void)outargs;
	util_errf(name, sizeof(name), "%.*s", (int)(value ? value - arg : (long)strlen(arg)), arg);
	value = value ? value + 1 : "";
	if (key >= 0 && key < MOUNT_KEY_VALUES) {
		if (mount_parse_value(p, &mount_values[key], name, value) != 0)
			return -1;
		if (key == MOUNT_KEY_BLOCK_SIZE && (p->mo->block_size & (p->mo->block_size - 1)))
			return mount_parse_fail(p, name, value, "a power of two");
		return 0;
	}
	switch (key) {
	case MOUNT_KEY_RO:
	case MOUNT_KEY_RW:
		p->mo->read_only = key == MOUNT_KEY_RO;
		return 0;
	case MOUNT_KEY_ALLOW_HTTP:
		p->mo->allow_http = true;
		return 0;
	case MOUNT_KEY_ALLOW_OTHER:
		p->mo->allow_other = true;
		return 0;
	case MOUNT_KEY_NONEMPTY:
		p->mo->nonempty = true;
		return 0;
	case MOUNT_KEY_DEBUG:
		p->mo->log_level = LOG_LVL_DEBUG;
		return 0;
	case MOUNT_KEY_CONFLICT:
		if (strcmp(value, "fail") != 0 && strcmp(value, "overwrite") != 0)
			return mount_parse_fail(p, name, value, "one of fail, overwrite");
		p->mo->conflict_overwrite = strcmp(value, "overwrite") == 0;
		return 0;
	case MOUNT_KEY_KIND:
		if (strcmp(value, "blob") != 0 && strcmp(value, "file") != 0)
			return mount_parse_fail(p, name, value, "blob or file");
		p->mo->kind_given = true;
		p->mo->kind = strcmp(value, "file") == 0 ? URL_FILE : URL_BLOB;
		return 0;
	case MOUNT_KEY_LOG_LEVEL:
		if (log_parse_level(value, &level) != 0)
			return mount_parse_fail(p, name, value, "one of error, warn, info, debug");
		p->mo->log_level = (int)level;
		return 0;
	}
	/* x-systemd.*, x-gvfs-* and such belong to other programs */
	if (!*arg || strncmp(arg, "x-", 2) == 0)
		return 0;
	util_errf(p->errbuf, p->errlen, "unknown mount option '%s' (see docs/configuration.md)",
		  arg);
	p->err = -EINVAL;
	return -1;
}

int mount_parse_options(struct mount_options *mo, const char *list, char *errbuf,
			size_t errlen)
{
	char *argv[] = { "ferry", "-o", (char *)list, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct mount_parse p = { .mo = mo, .errbuf = errbuf, .errlen = errlen };
	int rc;

	rc = fuse_opt_parse(&args, &p, mount_opts, mount_parse_one);
	fuse_opt_free_args(&args);
	if (rc == 0)
		return 0;
	if (!p.err)
		util_errf(errbuf, errlen, "cannot parse the options '%s'", list);
	return p.err ? p.err : -ENOMEM;
}

int mount_list(mount_list_fn fn, void *ctx)
{
	struct mntent entry, *m;
	char strings[3 * PATH_MAX];
	FILE *table = setmntent("/proc/self/mounts", "re");
	int err = 0;

	if (!table)
		return -errno;
	while (!err && (m = getmntent_r(table, &entry, strings, sizeof(strings)))) {
		struct mount_entry e = { .mountpoint = m->mnt_dir, .source = m->mnt_fsname };

		if (strcmp(m->mnt_type, "fuse.ferry") != 0)
			continue;
		e.read_only = hasmntopt(m, "ro") != NULL;
		err = fn(ctx, &e);
	}
	endmntent(table);
	return err;
}

int mount_is_mounted(const char *path)
{
	char real[PATH_MAX];
	struct mntent entry, *m;
	char strings[3 * PATH_MAX];
	FILE *table;
	int found = 0, err;

	if (!realpath(path, real)) {
		/* A dead FUSE mount cannot be resolved; its path is still in the table. */
		if (errno != ENOTCONN)
			return -errno;
		err = mount_absolute(path, real, sizeof(real));
		if (err)
			return err;
	}
	table = setmntent("/proc/self/mounts", "re");
	if (!table)
		return -errno;
	while (!found && (m = getmntent_r(table, &entry, strings, sizeof(strings))))
		found = strcmp(m->mnt_dir, real) == 0;
	endmntent(table);
	return found;
}

/* 1 when directory path holds anything, 0 when it is empty, or -errno. */
static int mount_dir_has_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int found = 0;

	if (!d)
		return -errno;
	while (!found && (de = readdir(d)))
		found = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return found;
}

static int mount_check_mountpoint(const char *mountpoint, bool nonempty, char *errbuf,
				  size_t errlen)
{
	struct stat st;

	if (stat(mountpoint, &st) != 0) {
		int err = -errno;

		if (err == -ENOTCONN)
			util_errf(errbuf, errlen,
				 "mountpoint %s is busy: a dead mount is still there; run "
				 "'ferry unmount %s' first",
				 mountpoint, mountpoint);
		else if (err == -ENOENT)
			util_errf(errbuf, errlen, "mountpoint %s does not exist; create it first",
				 mountpoint);
		else
			util_errf(errbuf, errlen, "mountpoint %s: %s", mountpoint, strerror(-err));
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		util_errf(errbuf, errlen, "mountpoint %s is not a directory", mountpoint);
		return -ENOTDIR;
	}
	if (mount_is_mounted(mountpoint) == 1) {
		util_errf(errbuf, errlen,
			 "mountpoint %s is busy: something is already mounted there; unmount it "
			 "first",
			 mountpoint);
		return -EBUSY;
	}
	if (!nonempty && mount_dir_has_entries(mountpoint) == 1) {
		util_errf(errbuf, errlen,
			 "mountpoint %s is not empty: the mount would hide its files; use an "
			 "empty folder, or -o nonempty to mount over them",
			 mountpoint);
		return -ENOTEMPTY;
	}
	return 0;
}

/* The kernel's readahead for the mount, in KiB. The default (128) cuts sequential
 * reads into 128 KiB FUSE requests; 4 MiB lets the kernel send 1 MiB requests
 * (max_pages) several at a time, which the block cache then serves. */
#define MOUNT_READ_AHEAD_KB 4096

/* Sets read_ahead_kb of the mount's backing device (/sys/class/bdi/MAJ:MIN). Only
 * once the kernel has the FUSE INIT answer: that answer lowers it to what the kernel
 * proposed at mount time. Failure only costs speed, so it is logged. */
static void mount_set_read_ahead(dev_t dev, unsigned kb)
{
	char path[128];
	bool written = false;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(dev), minor(dev));
	f = fopen(path, "we");
	if (f) {
		written = fprintf(f, "%u\n", kb) > 0;
		written = fclose(f) == 0 && written;
	}
	if (!written)
		log_info("cannot set %s (%s): sequential reads stay in 128 KiB requests", path,
			 strerror(errno));
}

struct mount_ready {
	char mountpoint[PATH_MAX];
	int report_fd; /* -1 in the foreground */
};

/* Waits until the mount answers (a stat of its root goes through INIT and getattr),
 * tunes it, and only then tells the caller it is ready. */
static void *mount_ready_thread(void *arg)
{
	struct mount_ready *ready = arg;
	struct stat st;

	if (stat(ready->mountpoint, &st) == 0) {
		mount_set_read_ahead(st.st_dev, MOUNT_READ_AHEAD_KB);
		log_info("mounted at %s", ready->mountpoint);
		if (ready->report_fd >= 0 && write(ready->report_fd, "", 1) != 1)
			log_warn("could not tell the caller that the mount is ready");
	} else {
		char msg[PATH_MAX + 64];

		snprintf(msg, sizeof(msg), "the mount at %s does not answer: %s",
			 ready->mountpoint, strerror(errno));
		log_error("%s", msg);
		if (ready->report_fd >= 0 && write(ready->report_fd, msg, strlen(msg)) < 0)
			log_warn("could not report the failure to the caller");
	}
	if (ready->report_fd >= 0)
		close(ready->report_fd);
	free(ready);
	return NULL;
}

/* Everything a mount holds while it serves. */
struct mount_state {
	struct store_spec *spec; /* resolved before the fork */
	struct store *store;     /* opened in the daemon; owns its HTTP pool and credential */
	struct cache *cache;
	struct fs *fs;
	struct fuse *fuse;
	bool mounted;
	struct status_server *status; /* answers ferry status while serving */
};

static void mount_state_free(struct mount_state *ms)
{
	if (ms->fuse) {
		if (ms->mounted)
			fuse_unmount(ms->fuse);
		fuse_destroy(ms->fuse);
	}
	fs_free(ms->fs);
	cache_free(ms->cache);
	store_destroy(ms->store);
	store_spec_free(ms->spec);
}

/* The checks that need no network and start no thread (store_resolve()): the URI (a
 * container URL, an azureml:// URI or a datastore name), the https policy, the
 * credential. */
static int mount_prepare(const struct mount_options *mo, struct mount_state *ms,
			 char *errbuf, size_t errlen)
{
	struct store_open_opts sopts;

	store_open_opts_default(&sopts);
	sopts.account_key_file = mo->account_key_file[0] ? mo->account_key_file : NULL;
	sopts.sas_file = mo->sas_file[0] ? mo->sas_file : NULL;
	sopts.bearer_token_file = mo->bearer_token_file[0] ? mo->bearer_token_file : NULL;
	sopts.ca_file = mo->ca_file[0] ? mo->ca_file : NULL;
	sopts.allow_http = mo->allow_http;
	sopts.workers = mo->workers;
	sopts.timeout_s = mo->timeout_s;
	sopts.cred = mo->cred;
	sopts.kind_given = mo->kind_given;
	sopts.kind = mo->kind;
	return store_resolve(mo->url, &sopts, &ms->spec, errbuf, errlen);
}

/* What the disk tier's keys name the store by: where it is, however the mount named it
 * (a URL, a datastore name or URI), so mounts of one place share their blocks. */
static int mount_namespace(const struct mount_state *ms, char *out, size_t outlen)
{
	const struct url_container *u = &store_spec_target(ms->spec)->url;
	char endpoint[512];
	int n;

	if (url_endpoint(u, endpoint, sizeof(endpoint)) != 0)
		return -ENAMETOOLONG;
	n = snprintf(out, outlen, "%s/%s%s%s", endpoint, u->container, u->prefix[0] ? "/" : "",
		     u->prefix);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* The block cache and the filesystem over ms->store. */
static int mount_build_fs(const struct mount_options *mo, struct mount_state *ms, char *errbuf,
			  size_t errlen)
{
	char namespace[2048];
	struct cache_config ccfg = {
		.store = ms->store,
		.namespace = namespace,
		.block_size = mo->block_size,
		.mem_limit = mo->cache_mem,
		.disk_dir = mo->cache_dir,
		.disk_limit = mo->cache_size,
		.workers = mo->workers,
		/* Read-ahead of one file may take at most half of the block memory. */
		.max_window = mo->prefetch_window < mo->cache_mem / 2 ? mo->prefetch_window
								      : mo->cache_mem / 2,
	};
	struct fs_config fcfg;
	int err;

	if (ccfg.max_window < ccfg.block_size)
		ccfg.max_window = ccfg.block_size;
	err = mount_namespace(ms, namespace, sizeof(namespace));
	if (err) {
		util_errf(errbuf, errlen, "%s: the store's URL is too long", mo->url);
		return err;
	}
	err = cache_new(&ccfg, &ms->cache, errbuf, errlen);
	if (err)
		return err;
	fcfg = (struct fs_config){
		.store = ms->store,
		.cache = ms->cache,
		.attr_timeout = mo->attr_timeout,
		.entry_timeout = mo->entry_timeout,
		.negative_timeout = mo->negative_timeout,
		.uid = mo->uid,
		.gid = mo->gid,
		.umask = mo->umask,
		.read_only = mo->read_only,
		.block_size = mo->block_size,
		/* Staged writes go next to the cache, bounded as it is; else to $TMPDIR. */
		.stage_dir = mo->cache_dir[0] ? mo->cache_dir : NULL,
		.stage_limit = mo->cache_dir[0] ? mo->cache_size : 0,
		.conflict_overwrite = mo->conflict_overwrite,
	};
	err = fs_new(&fcfg, &ms->fs);
	if (err)
		util_errf(errbuf, errlen, "cannot set up the filesystem: %s", strerror(-err));
	return err;
}

/* How long ferry unmount waits for the daemon to exit once unmounted. */
#define MOUNT_EXIT_WAIT_S 60

/* The longest URL shown as the mount's source; a longer one shows as "ferry". */
#define MOUNT_SOURCE_MAX 1024

/* The FUSE session of ms->fs, mounted at mo->mountpoint, with its signal handlers. */
static int mount_fuse(const struct mount_options *mo, struct mount_state *ms, char *errbuf,
		      size_t errlen)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	char fuse_opts[2 * MOUNT_SOURCE_MAX + 128], source[2 * MOUNT_SOURCE_MAX];
	size_t n = 0;

	/* The source /proc/mounts shows is the URL (it holds no secret: a URL with a query
	 * is refused); fuse_opt takes ',' and '\' escaped. */
	for (const char *c = mo->url; *c && strlen(mo->url) < MOUNT_SOURCE_MAX; c++) {
		if (*c == ',' || *c == '\\')
			source[n++] = '\\';
		source[n++] = *c;
	}
	source[n] = '\0';
	/* debug: libfuse logs every FUSE operation, through mount_fuse_log() */
	util_errf(fuse_opts, sizeof(fuse_opts),
		  "fsname=%s,subtype=ferry,default_permissions%s%s%s", n ? source : "ferry",
		  mo->read_only ? ",ro" : "", mo->allow_other ? ",allow_other" : "",
		  mo->log_level >= LOG_LVL_DEBUG ? ",debug" : "");
	if (fuse_opt_add_arg(&args, "ferry") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, fuse_opts)) {
		fuse_opt_free_args(&args);
		return -ENOMEM;
	}
	ms->fuse = fuse_new(&args, fs_operations(), sizeof(struct fuse_operations), ms->fs);
	fuse_opt_free_args(&args);
	if (!ms->fuse) {
		util_errf(errbuf, errlen, "cannot create the FUSE session");
		return -EIO;
	}
	if (fuse_mount(ms->fuse, mo->mountpoint) != 0) {
		util_errf(errbuf, errlen,
			  "cannot mount at %s: is /dev/fuse there, and may this user mount?",
			  mo->mountpoint);
		return -EIO;
	}
	ms->mounted = true;
	if (fuse_set_signal_handlers(fuse_get_session(ms->fuse)) != 0) {
		util_errf(errbuf, errlen, "cannot install signal handlers");
		return -EIO;
	}
	return 0;
}

/* Starts the thread that tells the caller (report_fd, -1 in the foreground) once the
 * mount answers; on success the thread owns report_fd. */
static int mount_report_when_ready(const char *mountpoint, int report_fd, char *errbuf,
				   size_t errlen)
{
	struct mount_ready *ready = calloc(1, sizeof(*ready));
	pthread_t ready_thread;
	int err;

	if (!ready)
		return -ENOMEM;
	if (util_path_join(ready->mountpoint, sizeof(ready->mountpoint), "", mountpoint) != 0) {
		free(ready);
		util_errf(errbuf, errlen, "the mountpoint %s is too long", mountpoint);
		return -ENAMETOOLONG;
	}
	ready->report_fd = report_fd;
	err = -pthread_create(&ready_thread, NULL, mount_ready_thread, ready);
	if (err) {
		free(ready);
		util_errf(errbuf, errlen, "cannot start a thread: %s", strerror(-err));
		return err;
	}
	pthread_detach(ready_thread);
	return 0;
}

static void mount_log_stats(const struct mount_options *mo, struct cache *cache)
{
	struct cache_stats stats;

	cache_get_stats(cache, &stats);
	log_info("unmounted %s; blocks: %llu from memory, %llu from disk, %llu downloaded, "
		 "%llu damaged on disk; %llu direct reads; %llu MiB downloaded; peak block "
		 "memory %zu MiB",
		 mo->mountpoint, (unsigned long long)stats.mem_hits,
		 (unsigned long long)stats.disk_hits, (unsigned long long)stats.block_fetches,
		 (unsigned long long)stats.disk_corrupt, (unsigned long long)stats.direct_reads,
		 (unsigned long long)(stats.fetched_bytes >> 20), stats.mem_peak >> 20);
}

/* Answers ferry status for the mount while it serves; a mount without is only logged. */
static void mount_status_start(const struct mount_options *mo, struct mount_state *ms)
{
	struct status_source src = { .mountpoint = mo->mountpoint, .url = mo->url,
				     .read_only = mo->read_only, .fs = ms->fs,
				     .cache = ms->cache,
				     .token_expiry = store_spec_expiry(ms->spec) };
	int err = status_start(&src, &ms->status);

	if (err)
		log_warn("%s: ferry status will not answer for this mount: %s", mo->mountpoint,
			 strerror(-err));
}

/* The part that runs in the daemon (or in the foreground): network, FUSE. Hands
 * *report_fd (-1 in the foreground) to the thread that reports readiness, setting it to
 * -1, and then serves. On an error before that, *report_fd is still the caller's. */
static int mount_serve(const struct mount_options *mo, struct mount_state *ms,
		       int *report_fd, char *errbuf, size_t errlen)
{
	struct fuse_loop_config loop = { .clone_fd = 0, .max_idle_threads = 16 };
	int err;

	/* libfuse allocates a buffer per read (up to 1 MiB): served from the heap, not fresh
	 * mmaps, they cost no page faults; the heap kept is bounded by arenas x trim. */
	mallopt(M_MMAP_THRESHOLD, MOUNT_MALLOC_MMAP_MIN);
	mallopt(M_TRIM_THRESHOLD, MOUNT_MALLOC_TRIM);
	mallopt(M_ARENA_MAX, MOUNT_MALLOC_ARENAS);
	err = store_spec_open(ms->spec, &ms->store, errbuf, errlen);
	if (err)
		return err;
	err = mount_build_fs(mo, ms, errbuf, errlen);
	if (!err)
		err = mount_fuse(mo, ms, errbuf, errlen);
	if (!err)
		err = mount_report_when_ready(mo->mountpoint, *report_fd, errbuf, errlen);
	if (err)
		return err;
	*report_fd = -1; /* the thread reports, and closes it */
	mount_status_start(mo, ms);
	err = fuse_loop_mt(ms->fuse, &loop);
	status_stop(ms->status);
	ms->status = NULL;
	fuse_remove_signal_handlers(fuse_get_session(ms->fuse));
	mount_log_stats(mo, ms->cache);
	return err < 0 ? err : 0;
}

/* libfuse's messages, through our log and its level. */
__attribute__((format(printf, 2, 0))) static void mount_fuse_log(enum fuse_log_level level, const char *fmt, va_list ap)
{
	enum log_level ours = level <= FUSE_LOG_ERR	 ? LOG_LVL_ERROR
			      : level == FUSE_LOG_WARNING ? LOG_LVL_WARN
			      : level <= FUSE_LOG_INFO	 ? LOG_LVL_INFO
							 : LOG_LVL_DEBUG;
	char msg[1024];
	size_t len;

	if (ours > log_get_level())
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	if (len && msg[len - 1] == '\n')
		msg[len - 1] = '\0';
	log_msg(ours, "fuse: %s", msg);
}

/* In the daemon: detach from the caller's session and terminal. */
static void mount_detach(void)
{
	int fd = open("/dev/null", O_RDWR);

	setsid();
	if (chdir("/") != 0)
		log_warn("chdir /: %s", strerror(errno));
	if (fd >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
}

static int64_t mount_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for child, through EINTR: its wait status, or -1. */
static int mount_reap(pid_t child)
{
	int status;

	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return status;
}

/* Waits until fd is readable (or at its end) or the deadline passes: 1, 0 at the
 * deadline, or -errno. */
static int mount_poll_until(int fd, int64_t deadline_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	for (;;) {
		int64_t left = deadline_ms - mount_now_ms();
		int ready = left > 0 ? poll(&pfd, 1, (int)left) : 0;

		if (ready >= 0)
			return ready;
		if (errno != EINTR)
			return -errno;
	}
}

/* Reads from report_fd until deadline_ms: > 0 bytes, 0 at EOF, -ETIMEDOUT, -errno. */
static ssize_t mount_read_report(int report_fd, char *buf, size_t len, int64_t deadline_ms)
{
	for (;;) {
		int ready = mount_poll_until(report_fd, deadline_ms);
		ssize_t n;

		if (ready < 0)
			return ready;
		if (ready == 0)
			return -ETIMEDOUT;
		n = read(report_fd, buf, len);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

/* A daemon that did not report in time: SIGTERM (it unmounts what it mounted), SIGKILL
 * if it has not exited after the grace time, then reaped; a mount it left is detached. */
static void mount_stop_daemon(pid_t child, const char *mountpoint)
{
	int pidfd = pidfd_open(child, 0); /* readable once the child has exited */

	kill(child, SIGTERM);
	if (pidfd < 0 || mount_poll_until(pidfd, mount_now_ms() + MOUNT_STOP_GRACE_MS) != 1)
		kill(child, SIGKILL);
	if (pidfd >= 0)
		close(pidfd);
	mount_reap(child);
	if (mount_is_mounted(mountpoint) == 1)
		mount_unmount(mountpoint, true, NULL, 0);
}

/* The caller's side of a background mount: the daemon writes one NUL byte when the
 * mount is ready, or its error line and exits. Waits no longer than the ready timeout;
 * a daemon that failed or timed out is reaped. */
static int mount_wait_ready(pid_t child, int report_fd, const char *mountpoint, char *errbuf,
			    size_t errlen)
{
	int64_t deadline = mount_now_ms() + MOUNT_READY_TIMEOUT_MS;
	char msg[1024];
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(msg) - 1) {
		n = mount_read_report(report_fd, msg + len, sizeof(msg) - 1 - len, deadline);
		if (n == -ETIMEDOUT) {
			mount_stop_daemon(child, mountpoint);
			util_errf(errbuf, errlen,
				  "the mount was not ready within %d s; see the system log",
				  MOUNT_READY_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		if (n > 0 && len == 0 && msg[0] == '\0')
			return 0;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	msg[len] = '\0';
	mount_reap(child);
	util_errf(errbuf, errlen, "%s",
		  len ? msg : "the mount daemon exited before the mount was ready");
	return -EIO;
}

/* log_file= can be written: checked before the daemon starts, which could not say so;
 * in the foreground, the log goes there from now on. */
static int mount_check_log_file(const struct mount_options *mo, char *errbuf, size_t errlen)
{
	int err = 0, fd;

	if (!mo->log_file[0])
		return 0;
	if (mo->foreground) {
		err = log_to_file(mo->log_file);
	} else {
		fd = open(mo->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
			  0600);
		if (fd < 0)
			err = -errno;
		else
			close(fd);
	}
	if (err)
		util_errf(errbuf, errlen, "log_file=%s: cannot write it: %s", mo->log_file,
			  strerror(-err));
	return err;
}

/* Where the daemon logs: log_file= if given, else syslog, else (no /dev/log, as in
 * many containers) a file beside the mount's status socket, so nothing vanishes. */
static void mount_log_sink(const struct mount_options *mo)
{
	char path[PATH_MAX];
	size_t len;

	if (mo->log_file[0] && log_to_file(mo->log_file) == 0)
		return;
	if (access("/dev/log", W_OK) == 0) {
		log_to_syslog("ferry");
		return;
	}
	if (status_path(mo->mountpoint, true, path, sizeof(path)) != 0)
		return;
	len = strlen(path);
	if (len > 5 && strcmp(path + len - 5, ".sock") == 0) {
		memcpy(path + len - 5, ".log", 5);
		log_to_file(path);
	}
}

/* In the forked daemon: serves, or reports why not; never returns. */
static void mount_daemon(const struct mount_options *mo, struct mount_state *ms, int report_fd)
{
	char child_err[1024] = "";
	int err;

	mount_detach();
	mount_log_sink(mo);
	err = mount_serve(mo, ms, &report_fd, child_err, sizeof(child_err));
	if (err && child_err[0])
		log_error("%s", child_err);
	if (err && report_fd >= 0 && util_write_full(report_fd, child_err, strlen(child_err)) < 0)
		log_error("could not report the failure to the caller");
	mount_state_free(ms);
	_exit(err ? 1 : 0);
}

int mount_run(const struct mount_options *given, char *errbuf, size_t errlen)
{
	struct mount_options mo = *given;
	struct mount_state ms;
	char mountpoint[PATH_MAX];
	int pipefd[2], err;
	pid_t child;

	memset(&ms, 0, sizeof(ms));
	log_set_level((enum log_level)mo.log_level);
	fuse_set_log_func(mount_fuse_log);
	/* the daemon works from "/": the caller's relative path is made absolute now, as
	 * /proc/mounts will show it (ferry status finds the mount by that name); a
	 * missing parent is for mount_check_mountpoint() to name */
	err = mount_canonical(given->mountpoint, mountpoint, sizeof(mountpoint));
	if (err)
		err = mount_absolute(given->mountpoint, mountpoint, sizeof(mountpoint));
	if (err) {
		util_errf(errbuf, errlen, "mountpoint %s: %s", given->mountpoint, strerror(-err));
		return err;
	}
	mo.mountpoint = mountpoint;
	err = mount_check_mountpoint(mo.mountpoint, mo.nonempty, errbuf, errlen);
	if (!err)
		err = mount_check_log_file(&mo, errbuf, errlen);
	if (!err)
		err = mount_prepare(&mo, &ms, errbuf, errlen);
	if (err || mo.foreground) {
		int no_report = -1;

		if (!err)
			err = mount_serve(&mo, &ms, &no_report, errbuf, errlen);
		mount_state_free(&ms);
		return err;
	}

	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		err = -errno;
		util_errf(errbuf, errlen, "pipe: %s", strerror(errno));
		goto out_free;
	}
	child = fork();
	if (child < 0) {
		err = -errno;
		util_errf(errbuf, errlen, "fork: %s", strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		goto out_free;
	}
	if (child == 0) {
		close(pipefd[0]);
		mount_daemon(&mo, &ms, pipefd[1]);
	}
	close(pipefd[1]);
	err = mount_wait_ready(child, pipefd[0], mo.mountpoint, errbuf, errlen);
	close(pipefd[0]);
out_free:
	mount_state_free(&ms);
	return err;
}

/* fusermount3 -u [-z] mountpoint, the setuid helper that unmounts what this user
 * mounted: 0 when it did. */
static int mount_fusermount(const char *mountpoint, bool lazy)
{
	const char *argv[] = { "fusermount3", "-u", lazy ? "-z" : mountpoint,
			       lazy ? mountpoint : NULL, NULL };
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0)
		return -errno;
	status = mount_reap(pid);
	return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EPERM;
}

/* A pidfd of the daemon serving the mount at mountpoint (canonical), or -1. */
static int mount_daemon_pidfd(const char *mountpoint)
{
	pid_t pid = status_daemon_pid(mountpoint);

	return pid > 0 ? pidfd_open(pid, 0) : -1;
}

/* The FUSE connection number of the mount at mountpoint (the minor of its device, from
 * /proc/self/mountinfo, without asking the mount): >= 0, or -errno. */
static long mount_fuse_conn(const char *mountpoint)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[3 * PATH_MAX], path[PATH_MAX];
	unsigned major, minor;
	long found = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *dev = NULL, *where = NULL, *save = NULL, *tok = strtok_r(line, " ", &save);
		size_t n = 0;

		for (int field = 0; tok && field < 5; field++, tok = strtok_r(NULL, " ", &save)) {
			if (field == 2)
				dev = tok;
			else if (field == 4)
				where = tok;
		}
		if (!dev || !where || sscanf(dev, "%u:%u", &major, &minor) != 2)
			continue;
		/* mountinfo writes ' ', '\t', '\n' and '\\' as \ooo */
		for (const char *c = where; *c && n + 1 < sizeof(path); n++) {
			if (c[0] == '\\' && c[1] >= '0' && c[1] <= '3' && c[2] >= '0' &&
			    c[2] <= '7' && c[3] >= '0' && c[3] <= '7') {
				path[n] = (char)((c[1] - '0') * 64 + (c[2] - '0') * 8 + (c[3] - '0'));
				c += 4;
			} else {
				path[n] = *c++;
			}
		}
		path[n] = '\0';
		if (strcmp(path, mountpoint) == 0)
			found = (long)minor; /* the last mount there is the one on top */
	}
	fclose(f);
	return found;
}

/* Whether FUSE connection conn still exists (another mount namespace holds a copy of
 * the mount, so its daemon goes on); false when fusectl is not mounted. */
static bool mount_fuse_conn_alive(long conn)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%ld", conn);
	return conn >= 0 && access(path, F_OK) == 0;
}

/* Waits (MOUNT_EXIT_WAIT_S at most) for the daemon of pidfd to exit after its unmount:
 * by then every file it staged was committed, or its failure logged. */
static int mount_wait_daemon(int pidfd, const char *given, char *errbuf, size_t errlen)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int ready;

	do
		ready = poll(&p, 1, MOUNT_EXIT_WAIT_S * 1000);
	while (ready < 0 && errno == EINTR);
	close(pidfd);
	if (ready > 0)
		return 0;
	util_errf(errbuf, errlen, "%s is unmounted, but its daemon is still running after %d s",
		  given, MOUNT_EXIT_WAIT_S);
	return -ETIMEDOUT;
}

int mount_unmount(const char *given, bool lazy, char *errbuf, size_t errlen)
{
	char mountpoint[PATH_MAX];
	int pidfd, err = mount_canonical(given, mountpoint, sizeof(mountpoint));
	long conn;

	if (err)
		err = mount_absolute(given, mountpoint, sizeof(mountpoint));
	if (err) {
		util_errf(errbuf, errlen, "%s: %s", given, strerror(-err));
		return err;
	}
	if (mount_is_mounted(mountpoint) == 0) {
		util_errf(errbuf, errlen, "%s is not mounted", given);
		return -EINVAL;
	}
	pidfd = lazy ? -1 : mount_daemon_pidfd(mountpoint);
	conn = pidfd >= 0 ? mount_fuse_conn(mountpoint) : -1;
	if (umount2(mountpoint, lazy ? MNT_DETACH : 0) == 0) {
		if (pidfd >= 0 && mount_fuse_conn_alive(conn)) {
			close(pidfd); /* mounted elsewhere too: the daemon serves on */
			pidfd = -1;
		}
		return pidfd >= 0 ? mount_wait_daemon(pidfd, given, errbuf, errlen) : 0;
	}
	if (pidfd >= 0)
		close(pidfd);
	if (errno == EBUSY && !lazy) {
		util_errf(errbuf, errlen,
			  "%s is busy: files are open or a process works in it; close them, or "
			  "use 'ferry unmount -z' to detach it now",
			  given);
		return -EBUSY;
	}
	if (errno == EPERM || errno == EACCES) {
		if (mount_fusermount(mountpoint, lazy) == 0)
			return 0;
		util_errf(errbuf, errlen, "fusermount3 could not unmount %s", given);
		return -EPERM;
	}
	err = -errno;
	util_errf(errbuf, errlen, "cannot unmount %s: %s", given, strerror(-err));
	return err;
}
