/* status: what a running mount says of itself, on a unix socket only its owner can
 * reach; `ferry status` and `ferry unmount` ask it.
 *
 * The socket is DIR/mount-HASH.sock: HASH is 16 hex digits of the FNV-1a hash of the
 * mount point's absolute path; DIR is /run/ferry for root, else $XDG_RUNTIME_DIR/ferry,
 * else /tmp/ferry-UID. DIR is made mode 0700 and is refused when another user owns it
 * or others may enter it. A client connects; the daemon writes one JSON object and
 * closes:
 *   mountpoint, source (the URL), mode ("ro"/"rw"), pid, started (seconds since the
 *   epoch), uptime_s, read_bytes and written_bytes (through read()/write()),
 *   downloaded_bytes and uploaded_bytes (HTTP bodies), requests {GET, HEAD, PUT,
 *   DELETE, other}, retries, errors, last_error (null or {message, time}),
 *   cache {mem_used, mem_limit, disk_used, disk_limit, hits, misses, prefetched,
 *   prefetch_unread}, staging {bytes, uploading_bytes, files_writing}, token_expiry
 *   (null, or when the bearer token the mount uses stops working)
 * (cache.h, fs.h, http.h and log.h say what each counts). Every figure is of the
 * daemon's whole life.
 */
#ifndef FERRY_STATUS_H
#define FERRY_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct fs;
struct cache;

/* What the daemon's answers are made of; borrowed until status_stop(). */
struct status_source {
	const char *mountpoint; /* absolute */
	const char *url;
	bool read_only;
	struct fs *fs;
	struct cache *cache;
	int64_t token_expiry; /* the credential's expiry (auth_cred_expiry()); 0: none */
};

struct status_server;

/* The socket path of the mount at mountpoint (absolute) into out; with make, DIR is
 * created (0700) and checked. -ENAMETOOLONG, -EPERM (DIR is another user's or open to
 * others), or -errno. */
int status_path(const char *mountpoint, bool make, char *out, size_t len);

/* Starts answering on the mount's socket (one thread). -errno, with nothing left. */
int status_start(const struct status_source *src, struct status_server **out);

/* Stops answering and removes the socket. NULL is fine. */
void status_stop(struct status_server *s);

/* Asks the daemon of the mount at mountpoint (absolute): 0 and its JSON text in *json
 * (malloc'ed), or -errno with errbuf saying why (-ENOENT: no socket, the mount is not
 * this user's or its daemon is gone; -ETIMEDOUT: no answer in 5 s). */
int status_query(const char *mountpoint, char **json, char *errbuf, size_t errlen);

/* The pid the daemon of the mount at mountpoint says it has: > 0, or -errno. */
pid_t status_daemon_pid(const char *mountpoint);

#endif
