#include "tools/launcher/mounts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/base/log.h"
#include "auth/base/util.h"

#define MOUNTS_READY_SECONDS 30
#define MOUNTS_LOG_MAX (64 * 1024) /* of a daemon's log, read */
#define MOUNTS_REPORT_LINES 10      /* of a daemon's log, reported */

struct mounts_entry {
	char path[PATH_MAX];
	char log[PATH_MAX];
	char what[128];
	bool rw;
	pid_t pid;  /* the daemon; 0 once reaped */
	int life;   /* read end of a pipe only the daemon writes to: end of file at its end */
	int status; /* wait status once reaped */
};

struct mounts {
	char log_dir[PATH_MAX];
	struct mounts_entry entries[MOUNTS_MAX];
	size_t count;
};

int mounts_new(const char *log_dir, struct mounts **out)
{
	struct mounts *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	if (strlen(log_dir) >= sizeof(m->log_dir)) {
		free(m);
		return -ENAMETOOLONG;
	}
	memcpy(m->log_dir, log_dir, strlen(log_dir) + 1);
	*out = m;
	return 0;
}

void mounts_free(struct mounts *m)
{
	free(m);
}

static int64_t mounts_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In the child: serve the mount in the foreground, logging errors to log; life is
 * kept open (and closed by no exec) until the end. */
static void mounts_child(const struct mount_options *mo_in, const char *log, int life)
{
	static const int reset[] = { SIGCHLD, SIGPIPE };
	static const int ignored[] = { SIGINT, SIGTERM, SIGHUP };
	struct mount_options mo = *mo_in;
	int null_fd = open("/dev/null", O_RDWR);
	int log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	char errbuf[1024];
	int err;

	/* the launcher's handlers write to its descriptors, closed here */
	for (size_t i = 0; i < sizeof(reset) / sizeof(reset[0]); i++)
		signal(reset[i], SIG_DFL);
	/* Only the launcher ends a mount (by unmounting it), after the run's outputs are
	 * saved: not a scancel or a kill of the whole job step, which signal every process
	 * of the step. libfuse leaves ignored signals alone. */
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		signal(ignored[i], SIG_IGN);
	life = fcntl(life, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	if (null_fd < 0 || log_fd < 0 || life < 0 || setsid() < 0)
		_exit(1);
	dup2(null_fd, STDIN_FILENO);
	dup2(null_fd, STDOUT_FILENO);
	dup2(log_fd, STDERR_FILENO);
	close_range(STDERR_FILENO + 1, (unsigned)life - 1, 0);
	close_range((unsigned)life + 1, ~0U, 0);
	mo.foreground = true;
	mo.log_level = LOG_LVL_ERROR;
	err = mount_run(&mo, errbuf, sizeof(errbuf));
	if (err)
		dprintf(STDERR_FILENO, "%s\n", errbuf);
	_exit(err ? 1 : 0);
}

/* The last line the daemon of e logged, or a stand-in. */
static void mounts_last_line(const struct mounts_entry *e, char *out, size_t outlen)
{
	int fd = open(e->log, O_RDONLY | O_CLOEXEC);
	char *text = NULL, *line;
	size_t len = 0;

	util_errf(out, outlen, "the mount daemon exited before the mount was ready");
	if (fd < 0)
		return;
	if (util_read_fd(fd, MOUNTS_LOG_MAX, &text, &len) == 0) {
		while (len && text[len - 1] == '\n')
			text[--len] = '\0';
		line = strrchr(text, '\n');
		line = line ? line + 1 : text;
		if (*line)
			util_errf(out, outlen, "%s", line);
	}
	free(text);
	close(fd);
}

/* The name of a system call a thread may wait in, or NULL. */
static const char *mounts_syscall_name(long nr)
{
	static const struct {
		long nr;
		const char *name;
	} names[] = {
		{ SYS_futex, "futex (a lock)" }, { SYS_ppoll, "ppoll" },
		{ SYS_read, "read" },		  { SYS_write, "write" },
		{ SYS_openat, "openat" },	  { SYS_mount, "mount" },
		{ SYS_wait4, "wait4" },		  { SYS_recvfrom, "recvfrom" },
		{ SYS_epoll_pwait, "epoll_pwait" }, { SYS_clock_nanosleep, "clock_nanosleep" },
#ifdef SYS_poll
		{ SYS_poll, "poll" },
#endif
#ifdef SYS_epoll_wait
		{ SYS_epoll_wait, "epoll_wait" },
#endif
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].nr == nr)
			return names[i].name;
	return NULL;
}

/* What the threads of process pid are doing (/proc/PID/task/TID/syscall), for a
 * message: "3 threads: futex (a lock), read, running". */
static void mounts_describe_threads(pid_t pid, char *out, size_t len)
{
	char path[320], line[64];
	size_t used = 0, count = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	out[0] = '\0';
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)) && used < len) {
		const char *name;
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/syscall", (int)pid, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		n = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			continue;
		line[n] = '\0';
		name = strncmp(line, "running", 7) == 0 ? "running"
						       : mounts_syscall_name(strtol(line, NULL, 10));
		n = snprintf(out + used, len - used, "%s%s", count++ ? ", " : "",
			     name ? name : "another system call");
		used += n > 0 ? (size_t)n : 0;
	}
	closedir(d);
}

/* Waits at most timeout_ms for the daemon of e to exit and reaps it: 0 or -ETIMEDOUT. */
static int mounts_reap(struct mounts_entry *e, int timeout_ms)
{
	struct pollfd pfd = { .fd = e->life, .events = POLLIN };
	int64_t deadline = mounts_now_ms() + timeout_ms;
	char byte;

	while (e->life >= 0) {
		int64_t left = deadline - mounts_now_ms();
		int n = poll(&pfd, 1, left > 0 ? (int)left : 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return -ETIMEDOUT;
		if (n > 0 && read(e->life, &byte, 1) > 0)
			continue; /* nothing is written; end of file is the daemon's end */
		close(e->life);
		e->life = -1;
	}
	while (e->pid && waitpid(e->pid, &e->status, 0) < 0 && errno == EINTR)
		;
	e->pid = 0;
	return 0;
}

/* Waits for the mount of e to appear (a change of the mount table wakes the wait) or
 * its daemon to exit. */
static int mounts_wait_ready(struct mounts_entry *e, char *errbuf, size_t errlen)
{
	int table = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	int64_t deadline = mounts_now_ms() + MOUNTS_READY_SECONDS * 1000;
	int err = -ETIMEDOUT;

	if (table < 0)
		return -errno;
	for (;;) {
		struct pollfd fds[2] = { { .fd = table, .events = POLLPRI },
					 { .fd = e->life, .events = POLLIN } };
		int64_t left = deadline - mounts_now_ms();

		if (mount_is_mounted(e->path) == 1) {
			err = 0;
			break;
		}
		if (left <= 0 || (poll(fds, 2, (int)left) < 0 && errno != EINTR))
			break;
		if (fds[1].revents) {
			mounts_reap(e, 0);
			mounts_last_line(e, errbuf, errlen);
			err = -EIO;
			break;
		}
	}
	close(table);
	if (err == -ETIMEDOUT) {
		char threads[256];

		mounts_describe_threads(e->pid, threads, sizeof(threads));
		kill(e->pid, SIGKILL);
		mounts_reap(e, MOUNTS_EXIT_SECONDS * 1000);
		util_errf(errbuf, errlen, "the mount was not ready within %d s (its daemon's "
			  "threads were in: %s)", MOUNTS_READY_SECONDS,
			  threads[0] ? threads : "unknown");
	}
	return err;
}

int mounts_add(struct mounts *m, const struct mount_options *mo, const char *what,
	       bool rw, char *errbuf, size_t errlen)
{
	struct mounts_entry *e;
	char name[32];
	int life[2], err;

	if (m->count == MOUNTS_MAX) {
		util_errf(errbuf, errlen, "more than %d mounts", MOUNTS_MAX);
		return -EMFILE;
	}
	e = &m->entries[m->count];
	memset(e, 0, sizeof(*e));
	util_errf(name, sizeof(name), "mount-%zu.log", m->count);
	util_errf(e->what, sizeof(e->what), "%s", what);
	e->rw = rw;
	if (util_path_join(e->log, sizeof(e->log), m->log_dir, name) ||
	    !realpath(mo->mountpoint, e->path)) {
		util_errf(errbuf, errlen, "cannot use %s as a mountpoint", mo->mountpoint);
		return -ENAMETOOLONG;
	}
	if (pipe2(life, O_CLOEXEC) != 0) {
		util_errf(errbuf, errlen, "pipe: %s", strerror(errno));
		return -errno;
	}
	fflush(NULL); /* nothing buffered is written twice */
	e->pid = fork();
	if (e->pid == 0) {
		close(life[0]);
		mounts_child(mo, e->log, life[1]);
	}
	err = -errno;
	close(life[1]);
	e->life = life[0];
	if (e->pid < 0) {
		close(life[0]);
		util_errf(errbuf, errlen, "fork: %s", strerror(-err));
		return err;
	}
	err = mounts_wait_ready(e, errbuf, errlen);
	if (!err)
		m->count++;
	return err;
}

/* Reports what the daemon of e logged (the first MOUNTS_REPORT_LINES lines, then how
 * many more), and how it ended: true when that was a failure of a read-write mount. */
static bool mounts_report(const struct mounts_entry *e, mounts_report_fn report, void *ctx)
{
	int fd = open(e->log, O_RDONLY | O_CLOEXEC);
	char *text = malloc(MOUNTS_LOG_MAX + 1), *save = NULL, more[64];
	ssize_t len = fd >= 0 && text ? util_read_full(fd, text, MOUNTS_LOG_MAX) : -EIO;
	size_t lines = 0;

	if (len > 0) {
		text[len] = '\0';
		for (char *line = strtok_r(text, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			if (lines++ < MOUNTS_REPORT_LINES)
				report(ctx, e->what, e->rw, line);
		}
	}
	if (lines > MOUNTS_REPORT_LINES || len == MOUNTS_LOG_MAX) {
		util_errf(more, sizeof(more), "and more errors than these %d",
			  MOUNTS_REPORT_LINES);
		report(ctx, e->what, e->rw, more);
	}
	free(text);
	if (fd >= 0)
		close(fd);
	if (!WIFEXITED(e->status) || WEXITSTATUS(e->status) != 0) {
		report(ctx, e->what, e->rw, "the mount's daemon did not end cleanly: what it "
		       "had not saved is lost");
		lines++;
	}
	return e->rw && lines > 0;
}

int mounts_end(struct mounts *m, mounts_report_fn report, void *ctx)
{
	char errbuf[512];
	int result = 0;

	while (m->count > 0) {
		struct mounts_entry *e = &m->entries[--m->count];

		if (mount_unmount(e->path, false, errbuf, sizeof(errbuf)) != 0 &&
		    mount_unmount(e->path, true, errbuf, sizeof(errbuf)) != 0) {
			report(ctx, e->what, e->rw, errbuf);
			result = -EBUSY;
		}
		if (mounts_reap(e, MOUNTS_EXIT_SECONDS * 1000) != 0) {
			report(ctx, e->what, e->rw, "the mount's daemon did not exit after its "
			       "unmount; it was stopped");
			kill(e->pid, SIGKILL);
			mounts_reap(e, MOUNTS_EXIT_SECONDS * 1000);
		}
		if (mounts_report(e, report, ctx) && !result)
			result = -EIO;
	}
	return result;
}
