#include "fs/mount.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/base/log.h"
#include "cache/cache.h"
#include "fs/fs.h"
#include "cache/store/open.h"

/* malloc tuning of a serving mount: at most 4 arenas keeping 8 MiB each free. */
#define MOUNT_MALLOC_MMAP_MIN (4 << 20)
#define MOUNT_MALLOC_TRIM (8 << 20)
#define MOUNT_MALLOC_ARENAS 4

/* How long the caller of a background mount waits for the daemon's verdict. */
#define MOUNT_READY_TIMEOUT_MS 15000

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

/* Sizes: bytes, or with a K, M, G or T suffix (powers of 1024). */
static int mount_parse_size(const char *name, const char *value, uint64_t min, uint64_t max,
			    uint64_t *out, char *errbuf, size_t errlen)
{
	static const char suffixes[] = "KMGT";
	const char *suffix;
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (!errno && end != value && *end && !end[1] && (suffix = strchr(suffixes, *end))) {
		unsigned shift = 10 * (unsigned)(suffix - suffixes + 1);

		if (v > (UINT64_MAX >> shift))
			errno = ERANGE;
		v <<= shift;
		end++;
	}
	if (errno || end == value || *end || value[0] == '-' || v < min || v > max) {
		snprintf(errbuf, errlen,
			 "option %s: '%s' is not a size from %llu to %llu bytes (suffixes K, M, G, T)",
			 name, value, (unsigned long long)min, (unsigned long long)max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int mount_parse_double(const char *name, const char *value, double *out,
			      char *errbuf, size_t errlen)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(value, &end);
	if (errno || end == value || *end || d < 0) {
		snprintf(errbuf, errlen, "option %s: '%s' is not a number of seconds >= 0", name,
			 value);
		return -EINVAL;
	}
	*out = d;
	return 0;
}

static int mount_parse_long(const char *name, const char *value, int base, long min,
			    long max, long *out, char *errbuf, size_t errlen)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(value, &end, base);
	if (errno || end == value || *end || v < min || v > max) {
		snprintf(errbuf, errlen, "option %s: '%s' is not a number from %ld to %ld", name,
			 value, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int mount_copy_path(const char *name, const char *value, char *out, size_t outlen,
			   char *errbuf, size_t errlen)
{
	if (!*value || strlen(value) >= outlen) {
		snprintf(errbuf, errlen, "option %s: give a file path", name);
		return -EINVAL;
	}
	memcpy(out, value, strlen(value) + 1);
	return 0;
}

static int mount_apply_option(struct mount_options *mo, char *opt, char *errbuf, size_t errlen)
{
	static const char *const ignored[] = { "defaults", "_netdev", "nofail", "auto",
					       "noauto", "user", "nouser", "users", "exec",
					       "noexec", "suid", "nosuid", "dev", "nodev",
					       "atime", "noatime", "relatime", "async" };
	char *value = strchr(opt, '=');
	long number;
	int err;

	if (value)
		*value++ = '\0';
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		if (strcmp(opt, ignored[i]) == 0 && !value)
			return 0;
	if (!value) {
		if (strcmp(opt, "ro") == 0)
			mo->read_only = true;
		else if (strcmp(opt, "rw") == 0)
			mo->read_only = false;
		else if (strcmp(opt, "allow_http") == 0)
			mo->allow_http = true;
		else if (strcmp(opt, "allow_other") == 0)
			mo->allow_other = true;
		else if (strcmp(opt, "debug") == 0)
			mo->log_level = LOG_LVL_DEBUG;
		else
			goto out_unknown;
		return 0;
	}
	if (strcmp(opt, "attr_timeout") == 0)
		return mount_parse_double(opt, value, &mo->attr_timeout, errbuf, errlen);
	if (strcmp(opt, "entry_timeout") == 0)
		return mount_parse_double(opt, value, &mo->entry_timeout, errbuf, errlen);
	if (strcmp(opt, "negative_timeout") == 0)
		return mount_parse_double(opt, value, &mo->negative_timeout, errbuf, errlen);
	if (strcmp(opt, "account_key_file") == 0)
		return mount_copy_path(opt, value, mo->account_key_file,
				       sizeof(mo->account_key_file), errbuf, errlen);
	if (strcmp(opt, "sas_file") == 0)
		return mount_copy_path(opt, value, mo->sas_file, sizeof(mo->sas_file), errbuf,
				       errlen);
	if (strcmp(opt, "bearer_token_file") == 0)
		return mount_copy_path(opt, value, mo->bearer_token_file,
				       sizeof(mo->bearer_token_file), errbuf, errlen);
	if (strcmp(opt, "cache_dir") == 0)
		return mount_copy_path(opt, value, mo->cache_dir, sizeof(mo->cache_dir), errbuf,
				       errlen);
	if (strcmp(opt, "block_size") == 0 || strcmp(opt, "cache_mem") == 0 ||
	    strcmp(opt, "cache_size") == 0 || strcmp(opt, "prefetch_window") == 0) {
		uint64_t size;

		err = mount_parse_size(opt, value, 64 << 10, strcmp(opt, "block_size") == 0 ?
				       64ull << 20 : 1ull << 50, &size, errbuf, errlen);
		if (err)
			return err;
		if (strcmp(opt, "block_size") == 0) {
			if (size & (size - 1)) {
				snprintf(errbuf, errlen, "option block_size: %s is not a power of two",
					 value);
				return -EINVAL;
			}
			mo->block_size = (size_t)size;
		} else if (strcmp(opt, "cache_mem") == 0) {
			mo->cache_mem = (size_t)size;
		} else if (strcmp(opt, "cache_size") == 0) {
			mo->cache_size = size;
		} else {
			mo->prefetch_window = (size_t)size;
		}
		return 0;
	}
	if (strcmp(opt, "conflict") == 0) {
		if (strcmp(value, "fail") != 0 && strcmp(value, "overwrite") != 0) {
			snprintf(errbuf, errlen,
				 "option conflict: '%s' is not one of fail, overwrite", value);
			return -EINVAL;
		}
		mo->conflict_overwrite = strcmp(value, "overwrite") == 0;
		return 0;
	}
	if (strcmp(opt, "ca_file") == 0)
		return mount_copy_path(opt, value, mo->ca_file, sizeof(mo->ca_file), errbuf,
				       errlen);
	if (strcmp(opt, "log_level") == 0) {
		enum log_level level;

		if (log_parse_level(value, &level) != 0) {
			snprintf(errbuf, errlen,
				 "option log_level: '%s' is not one of error, warn, info, debug",
				 value);
			return -EINVAL;
		}
		mo->log_level = (int)level;
		return 0;
	}
	if (strcmp(opt, "uid") == 0 || strcmp(opt, "gid") == 0 || strcmp(opt, "umask") == 0 ||
	    strcmp(opt, "workers") == 0 || strcmp(opt, "timeout") == 0) {
		bool is_umask = strcmp(opt, "umask") == 0;
		bool is_count = strcmp(opt, "workers") == 0 || strcmp(opt, "timeout") == 0;

		err = mount_parse_long(opt, value, is_umask ? 8 : 10, is_count ? 1 : 0,
				       is_umask ? 0777 : (is_count ? 3600 : INT_MAX), &number,
				       errbuf, errlen);
		if (err)
			return err;
		if (strcmp(opt, "uid") == 0)
			mo->uid = (uid_t)number;
		else if (strcmp(opt, "gid") == 0)
			mo->gid = (gid_t)number;
		else if (is_umask)
			mo->umask = (mode_t)number;
		else if (strcmp(opt, "workers") == 0)
			mo->workers = (int)number;
		else
			mo->timeout_s = (int)number;
		return 0;
	}
out_unknown:
	snprintf(errbuf, errlen, "unknown mount option '%s' (see docs/configuration.md)", opt);
	return -EINVAL;
}

int mount_parse_options(struct mount_options *mo, const char *list, char *errbuf,
			size_t errlen)
{
	char *copy = strdup(list), *save = NULL, *opt;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (opt = strtok_r(copy, ",", &save); opt && !err; opt = strtok_r(NULL, ",", &save))
		err = mount_apply_option(mo, opt, errbuf, errlen);
	free(copy);
	return err;
}

int mount_is_mounted(const char *path)
{
	char real[PATH_MAX], line[8192];
	FILE *f;
	int found = 0;

	if (!realpath(path, real)) {
		/* A dead FUSE mount cannot be resolved; its path is still in the table. */
		if (errno != ENOTCONN)
			return -errno;
		if (strlen(path) >= sizeof(real))
			return -ENAMETOOLONG;
		memcpy(real, path, strlen(path) + 1);
	}
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (!found && fgets(line, sizeof(line), f)) {
		/* Field 5 is the mount point, with spaces and such as octal escapes. */
		char *field = line, unescaped[PATH_MAX];
		size_t n = 0;

		for (int i = 0; i < 4 && field; i++) {
			field = strchr(field, ' ');
			if (field)
				field++;
		}
		if (!field)
			continue;
		while (*field && *field != ' ' && n + 1 < sizeof(unescaped)) {
			if (field[0] == '\\' && field[1] && field[2] && field[3]) {
				unescaped[n++] = (char)(((field[1] - '0') << 6) |
							((field[2] - '0') << 3) | (field[3] - '0'));
				field += 4;
			} else {
				unescaped[n++] = *field++;
			}
		}
		unescaped[n] = '\0';
		found = strcmp(unescaped, real) == 0;
	}
	fclose(f);
	return found;
}

static int mount_check_mountpoint(const char *mountpoint, char *errbuf, size_t errlen)
{
	struct stat st;

	if (stat(mountpoint, &st) != 0) {
		int err = -errno;

		if (err == -ENOTCONN)
			snprintf(errbuf, errlen,
				 "mountpoint %s is busy: a dead mount is still there; run "
				 "'ferry unmount %s' first",
				 mountpoint, mountpoint);
		else if (err == -ENOENT)
			snprintf(errbuf, errlen, "mountpoint %s does not exist; create it first",
				 mountpoint);
		else
			snprintf(errbuf, errlen, "mountpoint %s: %s", mountpoint, strerror(-err));
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(errbuf, errlen, "mountpoint %s is not a directory", mountpoint);
		return -ENOTDIR;
	}
	if (mount_is_mounted(mountpoint) == 1) {
		snprintf(errbuf, errlen,
			 "mountpoint %s is busy: something is already mounted there; unmount it "
			 "first",
			 mountpoint);
		return -EBUSY;
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
	return store_resolve(mo->url, &sopts, &ms->spec, errbuf, errlen);
}

/* The part that runs in the daemon (or in the foreground): network, FUSE. Hands
 * *report_fd (-1 in the foreground) to the thread that reports readiness, setting it to
 * -1, and then serves. On an error before that, *report_fd is still the caller's. */
static int mount_serve(const struct mount_options *mo, struct mount_state *ms,
		       int *report_fd, char *errbuf, size_t errlen)
{
	struct cache_config ccfg;
	struct fs_config fcfg;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config loop = { .clone_fd = 0, .max_idle_threads = 16 };
	struct cache_stats stats;
	struct mount_ready *ready;
	pthread_t ready_thread;
	char fuse_opts[1024];
	int err;

	/* libfuse allocates a buffer per read (up to 1 MiB): served from the heap, not fresh
	 * mmaps, they cost no page faults; the heap kept is bounded by arenas x trim. */
	mallopt(M_MMAP_THRESHOLD, MOUNT_MALLOC_MMAP_MIN);
	mallopt(M_TRIM_THRESHOLD, MOUNT_MALLOC_TRIM);
	mallopt(M_ARENA_MAX, MOUNT_MALLOC_ARENAS);
	err = store_spec_open(ms->spec, &ms->store, errbuf, errlen);
	if (err)
		return err;
	ccfg = (struct cache_config){
		.store = ms->store,
		.namespace = mo->url,
		.block_size = mo->block_size,
		.mem_limit = mo->cache_mem,
		.disk_dir = mo->cache_dir,
		.disk_limit = mo->cache_size,
		.workers = mo->workers,
		/* Read-ahead of one file may take at most half of the block memory. */
		.max_window = mo->prefetch_window < mo->cache_mem / 2 ? mo->prefetch_window
								      : mo->cache_mem / 2,
	};
	if (ccfg.max_window < ccfg.block_size)
		ccfg.max_window = ccfg.block_size;
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
	if (err) {
		snprintf(errbuf, errlen, "cannot set up the filesystem: %s", strerror(-err));
		return err;
	}
	snprintf(fuse_opts, sizeof(fuse_opts),
		 "fsname=ferry,subtype=ferry,default_permissions%s%s",
		 mo->read_only ? ",ro" : "", mo->allow_other ? ",allow_other" : "");
	if (fuse_opt_add_arg(&args, "ferry") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, fuse_opts)) {
		fuse_opt_free_args(&args);
		return -ENOMEM;
	}
	ms->fuse = fuse_new(&args, fs_operations(), sizeof(struct fuse_operations), ms->fs);
	fuse_opt_free_args(&args);
	if (!ms->fuse) {
		snprintf(errbuf, errlen, "cannot create the FUSE session");
		return -EIO;
	}
	if (fuse_mount(ms->fuse, mo->mountpoint) != 0) {
		snprintf(errbuf, errlen,
			 "cannot mount at %s: is /dev/fuse there, and may this user mount?",
			 mo->mountpoint);
		return -EIO;
	}
	ms->mounted = true;
	if (fuse_set_signal_handlers(fuse_get_session(ms->fuse)) != 0) {
		snprintf(errbuf, errlen, "cannot install signal handlers");
		return -EIO;
	}
	ready = calloc(1, sizeof(*ready));
	if (!ready || !realpath(mo->mountpoint, ready->mountpoint)) {
		free(ready);
		snprintf(errbuf, errlen, "cannot resolve %s", mo->mountpoint);
		return -ENOMEM;
	}
	ready->report_fd = *report_fd;
	err = -pthread_create(&ready_thread, NULL, mount_ready_thread, ready);
	if (err) {
		free(ready);
		snprintf(errbuf, errlen, "cannot start a thread: %s", strerror(-err));
		return err;
	}
	*report_fd = -1; /* the thread reports, and closes it */
	pthread_detach(ready_thread);
	err = fuse_loop_mt(ms->fuse, &loop);
	fuse_remove_signal_handlers(fuse_get_session(ms->fuse));
	cache_get_stats(ms->cache, &stats);
	log_info("unmounted %s; blocks: %llu from memory, %llu from disk, %llu downloaded, "
		 "%llu damaged on disk; %llu direct reads; %llu MiB downloaded; peak block "
		 "memory %zu MiB",
		 mo->mountpoint, (unsigned long long)stats.mem_hits,
		 (unsigned long long)stats.disk_hits, (unsigned long long)stats.block_fetches,
		 (unsigned long long)stats.disk_corrupt, (unsigned long long)stats.direct_reads,
		 (unsigned long long)(stats.fetched_bytes >> 20), stats.mem_peak >> 20);
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

/* The caller's side of a background mount: the daemon writes one NUL byte when the
 * mount is ready, or its error line and exits. Waits no longer than the ready timeout. */
static int mount_wait_ready(pid_t child, int report_fd, char *errbuf, size_t errlen)
{
	int64_t deadline = mount_now_ms() + MOUNT_READY_TIMEOUT_MS;
	struct pollfd pfd = { .fd = report_fd, .events = POLLIN };
	char msg[1024];
	size_t len = 0;
	ssize_t n;

	for (;;) {
		int64_t left = deadline - mount_now_ms();
		int ready = left > 0 ? poll(&pfd, 1, (int)left) : 0;

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0) {
			kill(child, SIGTERM);
			snprintf(errbuf, errlen,
				 "the mount was not ready within %d s; see the system log",
				 MOUNT_READY_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		n = read(report_fd, msg + len, sizeof(msg) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n > 0 && len == 0 && msg[0] == '\0')
			return 0;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(msg) - 1)
			break;
	}
	msg[len] = '\0';
	waitpid(child, NULL, 0);
	snprintf(errbuf, errlen, "%s",
		 len ? msg : "the mount daemon exited before the mount was ready");
	return -EIO;
}

int mount_run(const struct mount_options *mo, char *errbuf, size_t errlen)
{
	struct mount_state ms;
	int pipefd[2], err;
	pid_t child;

	memset(&ms, 0, sizeof(ms));
	log_set_level((enum log_level)mo->log_level);
	fuse_set_log_func(mount_fuse_log);
	err = mount_check_mountpoint(mo->mountpoint, errbuf, errlen);
	if (!err)
		err = mount_prepare(mo, &ms, errbuf, errlen);
	if (err || mo->foreground) {
		int no_report = -1;

		if (!err)
			err = mount_serve(mo, &ms, &no_report, errbuf, errlen);
		mount_state_free(&ms);
		return err;
	}

	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		err = -errno;
		snprintf(errbuf, errlen, "pipe: %s", strerror(errno));
		goto out_free;
	}
	child = fork();
	if (child < 0) {
		err = -errno;
		snprintf(errbuf, errlen, "fork: %s", strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		goto out_free;
	}
	if (child == 0) {
		char child_err[1024] = "";
		int report_fd = pipefd[1];

		close(pipefd[0]);
		mount_detach();
		log_to_syslog("ferry");
		err = mount_serve(mo, &ms, &report_fd, child_err, sizeof(child_err));
		if (err && child_err[0])
			log_error("%s", child_err);
		if (err && report_fd >= 0 && write(report_fd, child_err, strlen(child_err)) < 0)
			log_error("could not report the failure to the caller");
		mount_state_free(&ms);
		_exit(err ? 1 : 0);
	}
	close(pipefd[1]);
	err = mount_wait_ready(child, pipefd[0], errbuf, errlen);
	close(pipefd[0]);
out_free:
	mount_state_free(&ms);
	return err;
}

int mount_unmount(const char *mountpoint, bool lazy, char *errbuf, size_t errlen)
{
	int mounted = mount_is_mounted(mountpoint);

	if (mounted == 0) {
		snprintf(errbuf, errlen, "%s is not mounted", mountpoint);
		return -EINVAL;
	}
	if (umount2(mountpoint, lazy ? MNT_DETACH : 0) == 0)
		return 0;
	if (errno == EBUSY && !lazy) {
		snprintf(errbuf, errlen,
			 "%s is busy: files are open or a process works in it; close them, or "
			 "use 'ferry unmount -z' to detach it now",
			 mountpoint);
		return -EBUSY;
	}
	if (errno == EPERM || errno == EACCES) {
		/* Not root: the setuid helper unmounts what this user mounted. */
		const char *argv[] = { "fusermount3", "-u", mountpoint, NULL, NULL };
		pid_t pid;
		int status;

		if (lazy) {
			argv[2] = "-z";
			argv[3] = mountpoint;
		}
		pid = fork();
		if (pid == 0) {
			execvp(argv[0], (char *const *)argv);
			_exit(127);
		}
		if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			return 0;
		snprintf(errbuf, errlen, "fusermount3 could not unmount %s", mountpoint);
		return -EPERM;
	}
	snprintf(errbuf, errlen, "cannot unmount %s: %s", mountpoint, strerror(errno));
	return -errno;
}
