/* fuzz_jwt: auth_jwt_expiry, the exp of a bearer token (base64url and JSON from the
 * token file or the environment). The input is the token, cut at its first NUL. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "tests/fuzz/fuzz.h"

FUZZ_NO_SETUP

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *token = malloc(size + 1);

	if (!token)
		return 0;
	memcpy(token, data, size);
	token[size] = '\0';
	if (auth_jwt_expiry(token) < 0)
		abort(); /* 0 or an exp > 0, nothing else */
	free(token);
	return 0;
}
