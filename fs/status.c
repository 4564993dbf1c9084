#include "fs/status.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "auth/base/log.h"
#include "auth/base/util.h"
#include "cache/cache.h"
#include "cache/store/http.h"
#include "fs/fs.h"

#define STATUS_ANSWER_MAX ((size_t)1 << 20)
#define STATUS_WAIT_MS 5000

struct status_server {
	struct status_source src;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	time_t started;
	int listen_fd;
	int stop[2]; /* a byte on stop[1] ends the thread */
	pthread_t thread;
};

static uint64_t status_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* DIR (status.h) into out; with make, created and checked. */
static int status_dir(bool make, char *out, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	uid_t uid = geteuid();
	struct stat st;
	int n;

	if (uid == 0)
		n = snprintf(out, len, "/run/ferry");
	else if (xdg && xdg[0] == '/')
		n = snprintf(out, len, "%s/ferry", xdg);
	else
		n = snprintf(out, len, "/tmp/ferry-%u", (unsigned)uid);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (!make)
		return 0;
	if (mkdir(out, 0700) != 0 && errno != EEXIST)
		return -errno;
	if (lstat(out, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 0077))
		return -EPERM;
	return 0;
}

int status_path(const char *mountpoint, bool make, char *out, size_t len)
{
	char dir[256];
	int err = status_dir(make, dir, sizeof(dir));
	int n;

	if (err)
		return err;
	n = snprintf(out, len, "%s/mount-%016llx.sock", dir,
		     (unsigned long long)status_hash(mountpoint));
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The answer: status.h lists its fields. */
static char *status_json(const struct status_server *s)
{
	struct cache_stats cs;
	struct http_stats hs;
	struct fs_stats fst;
	char last[512];
	int64_t last_time = log_last_error(last, sizeof(last));
	json_t *root, *requests = json_object();
	char *text;

	cache_get_stats(s->src.cache, &cs);
	http_get_stats(&hs);
	fs_get_stats(s->src.fs, &fst);
	for (int k = 0; k < HTTP_KINDS; k++)
		json_object_set_new(requests, http_kind_name((enum http_kind)k),
				    json_integer((json_int_t)hs.requests[k]));
	root = json_pack(
		"{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:o, "
		"s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I}}",
		"mountpoint", s->src.mountpoint, "source", s->src.url, "mode",
		s->src.read_only ? "ro" : "rw", "pid", (json_int_t)getpid(), "started",
		(json_int_t)s->started, "uptime_s", (json_int_t)(time(NULL) - s->started),
		"read_bytes", (json_int_t)fst.read_bytes, "written_bytes",
		(json_int_t)fst.written_bytes, "downloaded_bytes", (json_int_t)hs.bytes_in,
		"uploaded_bytes", (json_int_t)hs.bytes_out, "requests", requests, "retries",
		(json_int_t)hs.retries, "errors", (json_int_t)hs.errors, "last_error",
		last_time ? json_pack("{s:s, s:I}", "message", last, "time",
				      (json_int_t)last_time)
			  : json_null(),
		"cache", "mem_used", (json_int_t)cs.mem_used, "mem_limit",
		(json_int_t)cs.mem_limit, "disk_used", (json_int_t)cs.disk_used, "disk_limit",
		(json_int_t)cs.disk_limit, "hits", (json_int_t)(cs.mem_hits + cs.disk_hits),
		"misses", (json_int_t)(cs.block_fetches + cs.direct_reads), "prefetched",
		(json_int_t)cs.prefetched, "prefetch_unread", (json_int_t)cs.prefetch_unread,
		"staging", "bytes", (json_int_t)fst.staging.staged_bytes, "uploading_bytes",
		(json_int_t)fst.staging.uploading_bytes, "files_writing",
		(json_int_t)fst.staging.writing);
	if (!root)
		return NULL;
	json_object_set_new(root, "token_expiry",
			    s->src.token_expiry ? json_integer((json_int_t)s->src.token_expiry)
						: json_null());
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return text;
}

static void *status_main(void *arg)
{
	struct status_server *s = arg;

	for (;;) {
		struct pollfd fds[2] = { { .fd = s->listen_fd, .events = POLLIN },
					 { .fd = s->stop[0], .events = POLLIN } };
		char *text;
		int conn;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (!(fds[0].revents & POLLIN))
			continue;
		conn = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0)
			continue;
		text = status_json(s);
		if (!text || util_write_full(conn, text, strlen(text)) != 0)
			log_info("status: could not answer on %s", s->path);
		free(text);
		close(conn);
	}
	return NULL;
}

int status_start(const struct status_source *src, struct status_server **out)
{
	struct status_server *s = calloc(1, sizeof(*s));
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int err;

	if (!s)
		return -ENOMEM;
	s->src = *src;
	s->started = time(NULL);
	s->listen_fd = -1;
	s->stop[0] = s->stop[1] = -1;
	err = status_path(src->mountpoint, true, s->path, sizeof(s->path));
	if (!err && pipe2(s->stop, O_CLOEXEC) != 0)
		err = -errno;
	if (!err && (s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		err = -errno;
	if (!err) {
		memcpy(addr.sun_path, s->path, strlen(s->path) + 1);
		unlink(s->path); /* a daemon that died left it */
		if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
		    chmod(s->path, 0600) != 0 || listen(s->listen_fd, 8) != 0)
			err = -errno;
	}
	if (!err)
		err = -pthread_create(&s->thread, NULL, status_main, s);
	if (err) {
		if (s->listen_fd >= 0) {
			close(s->listen_fd);
			unlink(s->path);
		}
		if (s->stop[0] >= 0) {
			close(s->stop[0]);
			close(s->stop[1]);
		}
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

void status_stop(struct status_server *s)
{
	if (!s)
		return;
	if (util_write_full(s->stop[1], "x", 1) == 0)
		pthread_join(s->thread, NULL);
	else
		pthread_detach(s->thread);
	close(s->listen_fd);
	unlink(s->path);
	close(s->stop[0]);
	close(s->stop[1]);
	free(s);
}

/* Reads what the daemon sends until it closes, at most STATUS_ANSWER_MAX bytes, waiting
 * no more than STATUS_WAIT_MS for each piece. */
static int status_read_all(int fd, char **out)
{
	struct util_buf buf = { .limit = STATUS_ANSWER_MAX };
	char chunk[4096];

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int ready = poll(&p, 1, STATUS_WAIT_MS);
		ssize_t n;
		int err;

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0) {
			free(buf.data);
			return ready == 0 ? -ETIMEDOUT : -errno;
		}
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		err = util_buf_append(&buf, chunk, (size_t)n);
		if (err) {
			free(buf.data);
			return err;
		}
	}
	if (!buf.len) {
		free(buf.data);
		return -ENODATA;
	}
	if (util_buf_append(&buf, "", 1) != 0) {
		free(buf.data);
		return -ENOMEM;
	}
	*out = buf.data;
	return 0;
}

int status_query(const char *mountpoint, char **json, char *errbuf, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, err = status_path(mountpoint, false, addr.sun_path, sizeof(addr.sun_path));

	if (err) {
		util_errf(errbuf, errlen, "no status socket for %s: %s", mountpoint,
			  strerror(-err));
		return err;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
		err = -errno;
		util_errf(errbuf, errlen, "%s: its daemon does not answer at %s (%s)%s", mountpoint,
			  addr.sun_path, strerror(-err),
			  err == -ENOENT ? ": the mount is another user's, or its daemon is gone"
					 : "");
		close(fd);
		return err == -ECONNREFUSED ? -ENOENT : err;
	}
	err = status_read_all(fd, json);
	close(fd);
	if (err)
		util_errf(errbuf, errlen, "%s: its daemon's answer did not come: %s", mountpoint,
			  strerror(-err));
	return err;
}

pid_t status_daemon_pid(const char *mountpoint)
{
	char errbuf[256], *text = NULL;
	json_t *root, *pid;
	pid_t out = -ENOENT;
	int err = status_query(mountpoint, &text, errbuf, sizeof(errbuf));

	if (err)
		return err;
	root = json_loads(text, 0, NULL);
	pid = root ? json_object_get(root, "pid") : NULL;
	if (json_is_integer(pid) && json_integer_value(pid) > 0 &&
	    json_integer_value(pid) <= INT32_MAX)
		out = (pid_t)json_integer_value(pid);
	else
		out = -EBADMSG;
	json_decref(root);
	free(text);
	return out;
}
