/* driver: runs every file of the corpus directories (or files) named on the command
 * line through LLVMFuzzerTestOneInput, for builds without libFuzzer (gcc, the normal
 * build's fuzz_replay_* tests). Exits 1 when an argument cannot be read. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (!buf) {
		fprintf(stderr, "%s: out of memory\n", path);
		return -1;
	}
	/* An exact-size copy, so ASan sees reads past the end as libFuzzer would. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	int runs = 0, bad = 0;
	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			bad++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad += run_file(argv[i]) != 0;
			runs++;
			continue;
		}
		struct dirent **list;
		int n = scandir(argv[i], &list, NULL, NULL);
		if (n < 0) {
			perror(argv[i]);
			bad++;
			continue;
		}
		char **names = malloc(sizeof(*names) * (size_t)(n ? n : 1));
		int k = 0;
		for (int j = 0; j < n; j++) {
			if (list[j]->d_name[0] != '.' && names) {
				size_t l = strlen(argv[i]) + strlen(list[j]->d_name) + 2;
				names[k] = malloc(l);
				if (names[k]) {
					snprintf(names[k], l, "%s/%s", argv[i], list[j]->d_name);
					k++;
				}
			}
			free(list[j]);
		}
		free(list);
		if (names)
			qsort(names, (size_t)k, sizeof(*names), cmp);
		for (int j = 0; j < k; j++) {
			bad += run_file(names[j]) != 0;
			runs++;
			free(names[j]);
		}
		free(names);
	}
	printf("%d inputs run, %d unreadable\n", runs, bad);
	if (runs == 0) {
		fprintf(stderr, "no inputs\n");
		return 1;
	}
	return bad ? 1 : 0;
}
