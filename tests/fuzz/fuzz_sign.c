/* fuzz_sign: the Shared Key canonicalizer. The input is split at '\n' into account,
 * method, path, query (an empty line: NULL) and then "name:value" header lines;
 * auth_string_to_sign runs with a roomy and with a tight buffer, auth_authorization
 * with the emulator's key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "tests/fuzz/fuzz.h"

#define MAX_HEADERS 64

static struct auth_cred *cred;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!cred && auth_cred_shared_key(AUTH_DEV_ACCOUNT, AUTH_DEV_KEY, &cred) != 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!cred)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size > 16384)
		return 0;
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	char *lines[4 + MAX_HEADERS];
	size_t n = 0;
	char *p = s;
	while (n < 4 + MAX_HEADERS) {
		lines[n++] = p;
		char *nl = strchr(p, '\n');
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	const char *account = n > 0 ? lines[0] : "";
	const char *method = n > 1 ? lines[1] : "GET";
	const char *path = n > 2 ? lines[2] : "/";
	const char *query = n > 3 && lines[3][0] ? lines[3] : NULL;
	struct auth_header h[MAX_HEADERS];
	size_t nh = 0;
	for (size_t i = 4; i < n; i++) {
		char *colon = strchr(lines[i], ':');
		if (colon) {
			*colon = '\0';
			h[nh].value = colon + 1;
		} else {
			h[nh].value = "";
		}
		h[nh].name = lines[i];
		nh++;
	}

	size_t big = 4 * size + 4096;
	char *out = malloc(big);
	if (out) {
		(void)auth_string_to_sign(account, method, path, query, h, nh, out, big);
		(void)auth_string_to_sign(account, method, path, query, h, nh, out, size / 4 + 1);
		(void)auth_authorization(cred, method, path, query, h, nh, out, big);
		free(out);
	}
	free(s);
	return 0;
}
