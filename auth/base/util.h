/* util: the small helpers every ring uses, written once.
 *
 * All are thread-safe (no state). Functions that can fail return 0 (or a count) or
 * -errno; none prints anything.
 */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Formats one line for a person into errbuf (truncated, always NUL-terminated);
 * errbuf NULL or errlen 0: nothing. */
void util_errf(char *errbuf, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void util_verrf(char *errbuf, size_t errlen, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* Reads len bytes from fd (at offset for the p- form), retrying EINTR and short reads:
 * the count, short only at the end of the file, or -errno. */
ssize_t util_read_full(int fd, void *buf, size_t len);
ssize_t util_pread_full(int fd, void *buf, size_t len, uint64_t offset);

/* Writes all of buf, retrying EINTR and short writes: 0 or -errno. */
int util_write_full(int fd, const void *buf, size_t len);
int util_pwrite_full(int fd, const void *buf, size_t len, uint64_t offset);

/* Reads what is left of fd into a new NUL-terminated buffer of cap + 1 bytes (no
 * reallocation, so a secret leaves no stray copy): -EFBIG when fd holds more than cap
 * bytes, -errno of read(2) (EISDIR for a directory). *out is the caller's to free. */
int util_read_fd(int fd, size_t cap, char **out, size_t *len);

/* A growable NUL-terminated byte string with a cap fixed by its owner (curl's dynbuf):
 * len bytes at data (NULL until the first append). Zero it, set limit, append. */
struct util_buf {
	char *data;
	size_t len, cap;
	size_t limit; /* most bytes it may hold */
};

/* Appends n bytes: -EFBIG when they would pass limit, -ENOMEM; nothing is appended
 * then. */
int util_buf_append(struct util_buf *b, const void *bytes, size_t n);
/* Frees the bytes; b is empty again (limit kept). */
void util_buf_free(struct util_buf *b);

/* Creates path and its missing parents with mode (mkdir -p): 0, or -errno of the
 * first mkdir(2) that failed (-ENOTDIR when a component is a file). */
int util_mkdir_p(const char *path, mode_t mode);

/* out = dir "/" name (one '/', none when dir is "" or ends with '/'):
 * -ENAMETOOLONG when it does not fit. */
int util_path_join(char *out, size_t outlen, const char *dir, const char *name);

/* Characters of a UTF-8 string: its bytes that do not continue a sequence (how
 * Azure counts the length of a name). */
size_t util_utf8_chars(const char *s);

/* The value of a hexadecimal digit (either case), or -1. */
int util_hex_digit(char c);

/* A decimal whole number from min to max, nothing else (no sign but '-', no space):
 * 0, or -EINVAL. */
int util_parse_long(const char *s, long min, long max, long *out);

/* A size: decimal bytes, or with a K, M, G or T suffix (powers of 1024). -EINVAL for
 * anything else (signs, spaces, other suffixes), -ERANGE past UINT64_MAX. */
int util_parse_size(const char *s, uint64_t *out);

#endif
