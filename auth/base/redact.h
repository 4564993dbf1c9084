/* redact: secrets out of text meant for logs and messages. Thread-safe (no state). */
#ifndef FERRY_REDACT_H
#define FERRY_REDACT_H

#include <stddef.h>

/* Copies in to out with secrets replaced by "REDACTED": the values of the sig= query
 * parameter, AccountKey= and SharedAccessSignature= in connection strings, and
 * "SharedKey account:..." / "Bearer ..." authorization values. Always
 * NUL-terminates; truncates to outlen. */
void redact_secrets(const char *in, char *out, size_t outlen);

#endif
