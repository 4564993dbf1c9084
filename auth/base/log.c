#include "auth/base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "auth/base/redact.h"
#include "auth/base/util.h"

static _Atomic int log_level = LOG_LVL_WARN;
static _Atomic int log_syslog;
static _Atomic int log_fd = -1; /* log_to_file(): messages go here */

static pthread_mutex_t log_last_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_last[512];
static int64_t log_last_time;

void log_set_level(enum log_level level)
{
	log_level = level;
}

enum log_level log_get_level(void)
{
	return (enum log_level)log_level;
}

int log_parse_level(const char *s, enum log_level *out)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int log_to_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return -errno;
	fd = atomic_exchange(&log_fd, fd);
	if (fd >= 0)
		close(fd);
	return 0;
}

/* One line to the log file: time, pid, level, message; one write, so lines of
 * several threads do not mix. */
static void log_file_line(int fd, enum log_level level, const char *msg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[2300], when[32];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ ferry[%d] %s: %s\n", when,
		     ts.tv_nsec / 1000000, (int)getpid(), names[level], msg);
	if (n > 0 && util_write_full(fd, line, (size_t)n < sizeof(line) ? (size_t)n
									  : sizeof(line) - 1) != 0) {
		/* nowhere left to say it */
	}
}

void log_to_syslog(const char *ident)
{
	openlog(ident, LOG_PID, LOG_DAEMON);
	log_syslog = 1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const int priorities[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char raw[2048], clean[2048];
	va_list ap;

	if ((int)level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	redact_secrets(raw, clean, sizeof(clean));
	if (level == LOG_LVL_ERROR) {
		pthread_mutex_lock(&log_last_lock);
		util_errf(log_last, sizeof(log_last), "%s", clean);
		log_last_time = (int64_t)time(NULL);
		pthread_mutex_unlock(&log_last_lock);
	}
	if (log_fd >= 0)
		log_file_line(log_fd, level, clean);
	else if (log_syslog)
		syslog(priorities[level], "%s", clean);
	else
		fprintf(stderr, "ferry: %s\n", clean);
}

int64_t log_last_error(char *out, size_t len)
{
	int64_t when;

	pthread_mutex_lock(&log_last_lock);
	snprintf(out, len, "%s", log_last);
	when = log_last_time;
	pthread_mutex_unlock(&log_last_lock);
	return when;
}
