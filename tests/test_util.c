/* Unit tests of util: sizes, path joins, mkdir -p, full reads and writes, capped reads. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/base/util.h"
#include "unit.h"

static void parse_size_takes_bytes_and_binary_suffixes(void)
{
	uint64_t v = 0;

	CHECK(util_parse_size("0", &v) == 0 && v == 0);
	CHECK(util_parse_size("4096", &v) == 0 && v == 4096);
	CHECK(util_parse_size("16M", &v) == 0 && v == 16u << 20);
	CHECK(util_parse_size("2G", &v) == 0 && v == 2ull << 30);
	CHECK(util_parse_size("1T", &v) == 0 && v == 1ull << 40);
	CHECK(util_parse_size("1K", &v) == 0 && v == 1024);
}

static void parse_size_refuses_malformed_and_huge(void)
{
	uint64_t v = 7;

	CHECK(util_parse_size("", &v) == -EINVAL);
	CHECK(util_parse_size("-1", &v) == -EINVAL);
	CHECK(util_parse_size(" 1", &v) == -EINVAL);
	CHECK(util_parse_size("1k", &v) == -EINVAL);
	CHECK(util_parse_size("1MB", &v) == -EINVAL);
	CHECK(util_parse_size("M", &v) == -EINVAL);
	CHECK(util_parse_size("99999999999999999999", &v) == -ERANGE);
	CHECK(util_parse_size("17179869184G", &v) == -ERANGE);
	CHECK(v == 7);
}

static void hex_digits_of_both_cases(void)
{
	CHECK(util_hex_digit('0') == 0 && util_hex_digit('9') == 9);
	CHECK(util_hex_digit('a') == 10 && util_hex_digit('F') == 15);
	CHECK(util_hex_digit('g') == -1 && util_hex_digit('%') == -1 && util_hex_digit('\0') == -1);
}

static void utf8_chars_counts_characters_not_bytes(void)
{
	CHECK(util_utf8_chars("") == 0);
	CHECK(util_utf8_chars("abc") == 3);
	CHECK(util_utf8_chars("\xc3\xa9t\xc3\xa9") == 3);          /* été */
	CHECK(util_utf8_chars("\xe6\x97\xa5\xf0\x9f\x98\x80") == 2); /* 日😀 */
}

static void path_join_puts_one_slash(void)
{
	char out[16];

	CHECK(util_path_join(out, sizeof(out), "a", "b") == 0);
	CHECK_STR(out, "a/b");
	CHECK(util_path_join(out, sizeof(out), "a/", "b") == 0);
	CHECK_STR(out, "a/b");
	CHECK(util_path_join(out, sizeof(out), "", "b") == 0);
	CHECK_STR(out, "b");
	CHECK(util_path_join(out, 4, "ab", "c") == -ENAMETOOLONG);
	CHECK(util_path_join(out, 5, "ab", "c") == 0);
}

static void mkdir_p_creates_parents_and_refuses_files(void)
{
	char top[] = "/tmp/ferry-util-XXXXXX", path[256], file[256];
	struct stat st;
	int fd;

	CHECK(mkdtemp(top) != NULL);
	snprintf(path, sizeof(path), "%s/a//b/c/", top);
	CHECK(util_mkdir_p(path, 0700) == 0);
	CHECK(stat(path, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK(util_mkdir_p(path, 0700) == 0); /* exists: fine */
	snprintf(file, sizeof(file), "%s/f", top);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/f/g", top);
	CHECK(util_mkdir_p(path, 0700) == -ENOTDIR);
	CHECK(util_mkdir_p("", 0700) == -ENOENT);
	unit_remove_tree(top);
	CHECK(access(top, F_OK) != 0);
}

static void full_io_and_capped_read(void)
{
	char name[] = "/tmp/ferry-util-io-XXXXXX", buf[32], *text = NULL;
	size_t len = 0;
	int fd = mkstemp(name);

	CHECK(fd >= 0);
	unlink(name);
	CHECK(util_write_full(fd, "hello world", 11) == 0);
	CHECK(util_pwrite_full(fd, "W", 1, 6) == 0);
	CHECK(util_pread_full(fd, buf, sizeof(buf), 0) == 11);
	CHECK(memcmp(buf, "hello World", 11) == 0);
	CHECK(util_pread_full(fd, buf, 4, 9) == 2); /* short only at the end */
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	CHECK(util_read_fd(fd, 11, &text, &len) == 0);
	CHECK(len == 11 && text && strcmp(text, "hello World") == 0);
	free(text);
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	CHECK(util_read_full(fd, buf, 5) == 5);
	CHECK(lseek(fd, 0, SEEK_SET) == 0);
	text = NULL;
	CHECK(util_read_fd(fd, 10, &text, &len) == -EFBIG);
	CHECK(text == NULL);
	close(fd);
	CHECK(util_write_full(fd, "x", 1) == -EBADF);
}

static void buf_grows_up_to_its_limit(void)
{
	struct util_buf b = { .limit = 1000 };
	char chunk[300];

	memset(chunk, 'x', sizeof(chunk));
	CHECK(util_buf_append(&b, "ab", 2) == 0);
	CHECK(b.len == 2 && strcmp(b.data, "ab") == 0);
	for (int i = 0; i < 3; i++)
		CHECK(util_buf_append(&b, chunk, sizeof(chunk)) == 0);
	CHECK(b.len == 902 && b.data[902] == '\0');
	CHECK(util_buf_append(&b, chunk, 99) == -EFBIG); /* 1001: one past the limit */
	CHECK(b.len == 902);
	CHECK(util_buf_append(&b, chunk, 98) == 0);
	CHECK(b.len == 1000);
	CHECK(util_buf_append(&b, "", 0) == 0);
	util_buf_free(&b);
	CHECK(b.data == NULL && b.len == 0 && b.limit == 1000);
}

static void errf_formats_and_tolerates_no_buffer(void)
{
	char buf[8];

	util_errf(buf, sizeof(buf), "%s %d", "abcdef", 42);
	CHECK_STR(buf, "abcdef ");
	util_errf(NULL, 0, "%s", "nothing");
}

int main(void)
{
	RUN(parse_size_takes_bytes_and_binary_suffixes);
	RUN(parse_size_refuses_malformed_and_huge);
	RUN(hex_digits_of_both_cases);
	RUN(utf8_chars_counts_characters_not_bytes);
	RUN(path_join_puts_one_slash);
	RUN(mkdir_p_creates_parents_and_refuses_files);
	RUN(full_io_and_capped_read);
	RUN(buf_grows_up_to_its_limit);
	RUN(errf_formats_and_tolerates_no_buffer);
	return unit_done();
}
