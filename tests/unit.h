/* unit: the smallest test harness that says which check failed and where.
 * CHECK(cond) records a failure and goes on; RUN(fn) runs one case; unit_done()
 * prints "N passed, N failed" and gives the exit status. */
#ifndef FERRY_UNIT_H
#define FERRY_UNIT_H

#include <ftw.h>
#include <stdio.h>
#include <string.h>

static int unit_failed_checks;
static int unit_passed, unit_failed;

#define CHECK(cond)                                                               \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,    \
				__LINE__, #cond);                                 \
			unit_failed_checks++;                                     \
		}                                                                 \
	} while (0)

#define CHECK_STR(got, want)                                                      \
	do {                                                                      \
		const char *g_ = (got), *w_ = (want);                             \
		if (!g_ || strcmp(g_, w_) != 0) {                                 \
			fprintf(stderr, "%s:%d: %s\n  got:  \"%s\"\n  want: \"%s\"\n", \
				__FILE__, __LINE__, #got, g_ ? g_ : "(null)", w_); \
			unit_failed_checks++;                                     \
		}                                                                 \
	} while (0)

#define RUN(fn)                                                                   \
	do {                                                                      \
		int before_ = unit_failed_checks;                                 \
		fn();                                                             \
		if (unit_failed_checks == before_) {                              \
			unit_passed++;                                            \
			printf("PASS %s\n", #fn);                                \
		} else {                                                          \
			unit_failed++;                                            \
			fprintf(stderr, "FAIL %s\n", #fn);                        \
		}                                                                 \
	} while (0)

static inline int unit_remove_one(const char *path, const struct stat *st, int flag,
				  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Removes path and everything under it (rm -rf), never following a link. */
static inline void unit_remove_tree(const char *path)
{
	nftw(path, unit_remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int unit_done(void)
{
	printf("%d passed, %d failed\n", unit_passed, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
