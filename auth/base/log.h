/* log: leveled messages for people, with secrets redacted (redact_secrets) before they
 * are written. Goes to stderr, to syslog once log_to_syslog() is called (a daemon), or
 * to a file once log_to_file() is. Thread-safe. */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Messages above level are dropped. Default: LOG_LVL_WARN. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; -EINVAL otherwise. */
int log_parse_level(const char *s, enum log_level *out);
void log_to_syslog(const char *ident);
/* Appends messages to the file at path (created 0600; not through a symbolic link)
 * instead of stderr or syslog, one line each: UTC time, pid, level, message. 0 or
 * -errno. */
int log_to_file(const char *path);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last error-level message of this process (redacted, cut to len) into out, and
 * when it was logged (seconds since the epoch); 0 and "" when there was none. */
int64_t log_last_error(char *out, size_t len);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                    \
	do {                                              \
		if (log_get_level() >= LOG_LVL_DEBUG)     \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
