/* mount: the life of one ferry mount, from options to unmount.
 *
 * mount_run() checks the mountpoint, the URL and the credential, then (unless in the
 * foreground) forks a daemon that probes the datastore, mounts and serves; the caller
 * returns only when the mount is ready or has failed, with one line for a person.
 * The same code serves `ferry mount`, mount.ferry (fstab) and the run-launcher.
 *
 * Paths (the mountpoint, cache_dir= and the *_file= options) may be relative: they are
 * taken against the caller's working directory when given, never the daemon's ("/").
 */
#ifndef FERRY_MOUNT_H
#define FERRY_MOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/store/url.h"

struct auth_cred;

struct mount_options {
	const char *url;        /* container URL, borrowed */
	const char *mountpoint; /* borrowed */
	bool foreground;
	bool read_only;          /* -o ro: every change fails with EROFS */
	bool conflict_overwrite; /* -o conflict=overwrite: commits without If-Match */
	bool allow_http;  /* plain http to a host that is not loopback */
	bool allow_other; /* other users may use the mount */
	bool nonempty;    /* -o nonempty: mount over a folder that holds files */
	bool kind_given;  /* -o kind=blob|file: what a path-style URL's root is */
	enum url_kind kind;
	double attr_timeout, entry_timeout, negative_timeout;
	uid_t uid;
	gid_t gid;
	mode_t umask;
	int workers;      /* HTTP worker threads */
	int timeout_s;    /* bound on one store operation, retries included */
	int log_level;    /* enum log_level */
	size_t block_size;      /* cache block, bytes */
	size_t cache_mem;       /* block memory, bytes */
	uint64_t cache_size;    /* disk tier, bytes */
	size_t prefetch_window; /* read-ahead cap per open file, bytes */
	char cache_dir[4096];   /* "" for no disk tier */
	/* credential files; the secret itself never passes through options */
	char account_key_file[4096];
	char sas_file[4096];
	char bearer_token_file[4096];
	char ca_file[4096];
	char log_file[4096];    /* "": syslog (a daemon), else stderr */
	/* A credential built by the caller (the run-launcher), used instead of the files
	 * and the environment; borrowed until mount_run() returns (the daemon keeps its
	 * own copy). */
	const struct auth_cred *cred;
};

/* Defaults: read-write, a conflicting commit fails, attr/entry timeouts 60 s, negative
 * 5 s, the caller's uid/gid, umask 022, 8 workers, 60 s per operation, log level warn;
 * 16 MiB blocks, 256 MiB of block memory, 64 MiB read-ahead per file, no disk tier
 * (10 GiB once cache_dir= is given). */
void mount_options_default(struct mount_options *mo);

/* Applies one comma-separated -o list (libfuse's fuse_opt syntax: "\," is a comma in a
 * value). Path options are stored absolute. Generic mount(8) options (defaults, _netdev,
 * nofail, auto, noauto, user, user=, nouser, users, exec, noexec, suid, nosuid, dev,
 * nodev, atime, noatime, relatime, async, comment=, x-*) are dropped so fstab lines
 * work; rw and ro choose the mode. -EINVAL with a message naming the option for an
 * unknown option or a bad value. */
int mount_parse_options(struct mount_options *mo, const char *list, char *errbuf,
			size_t errlen);

/* Mounts and, in the foreground, serves until unmounted. Returns 0 on success (in the
 * background: once the daemon reports the mount ready) or -errno with errbuf holding
 * the reason: the mountpoint is missing or busy, the URL or credential is bad, the
 * datastore refused or could not be reached. A daemon that failed or was not ready in
 * time (15 s; it is stopped) has been reaped when this returns; a serving daemon is a
 * child of the caller until it exits after its unmount. */
int mount_run(const struct mount_options *mo, char *errbuf, size_t errlen);

/* Unmounts mountpoint (relative to the working directory), also a dead mount ("Transport endpoint is not connected").
 * lazy detaches even while files are open. */
int mount_unmount(const char *mountpoint, bool lazy, char *errbuf, size_t errlen);

/* 1 if path is a mountpoint now, 0 if not, -errno when that cannot be told. */
int mount_is_mounted(const char *path);

/* The absolute path of mount point path as /proc/mounts shows it: its parent's
 * symbolic links and "..", resolved, without asking the mount itself. out holds
 * PATH_MAX bytes. */
int mount_canonical(const char *path, char *out, size_t outlen);

/* One ferry mount of this mount namespace: where, from what URL, read-only or not. */
struct mount_entry {
	const char *mountpoint;
	const char *source;
	bool read_only;
};
typedef int (*mount_list_fn)(void *ctx, const struct mount_entry *entry);

/* Calls fn for every ferry mount (type fuse.ferry) in /proc/self/mounts order; a
 * non-zero return stops the walk and is returned. -errno when the table cannot be
 * read. */
int mount_list(mount_list_fn fn, void *ctx);

#endif
