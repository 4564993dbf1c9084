/* fuzz: libFuzzer's entry points, which every fuzz_<target>.c defines (driver.c calls
 * them in builds without libFuzzer). */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The set-up of a target that needs none. */
#define FUZZ_NO_SETUP                                              \
	int LLVMFuzzerInitialize(int *argc, char ***argv)          \
	{                                                          \
		(void)argc;                                        \
		(void)argv;                                        \
		return 0;                                          \
	}

#endif
