/* http: a bounded pool of worker threads, each with its own curl easy handle, sharing
 * connections, DNS and TLS sessions through one curl share handle; requests retried
 * with exponential backoff and jitter.
 *
 * Retried: connection failures and resets, timeouts, 408, 429 and 500, 502, 503, 504
 * (Retry-After in seconds honoured). Not retried: every other status, which goes back
 * to the caller. An upload is sent whole again on each attempt. Each request is bounded
 * in total time (all attempts and waits included). Response headers are read with
 * curl_easy_header(), whatever their number and size.
 * Thread-safe: any number of threads may call http_execute() at once.
 */
#ifndef FERRY_HTTP_H
#define FERRY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_client;

struct http_client_opts {
	int workers;            /* size of the pool, >= 1 */
	int op_timeout_ms;      /* bound on one request, all attempts included */
	int connect_timeout_ms; /* bound on one connection attempt */
	int max_attempts;       /* attempts per request, >= 1 */
	int backoff_base_ms;    /* first wait between attempts, >= 2 (see http_backoff_ms) */
	int backoff_max_ms;     /* bound on one wait, >= backoff_base_ms */
	const char *ca_file;    /* extra CA bundle for TLS, or NULL for the system's */
};

/* Defaults: 8 workers, 60 s per operation, 5 s to connect, 8 attempts, waits from
 * 100 ms up to 8 s. */
void http_client_opts_default(struct http_client_opts *opts);

/* The wait before retry number retry (0 for the first): random in [b/2, b), where b is
 * backoff_base_ms * 2^retry capped at backoff_max_ms. A Retry-After longer than this
 * wins. seed is rand_r()'s. */
uint64_t http_backoff_ms(const struct http_client_opts *opts, int retry, unsigned int *seed);

/* Starts the pool: 0, -EINVAL for an option out of its range, -ENOMEM, -EIO when curl
 * cannot be initialised. */
int http_client_new(const struct http_client_opts *opts, struct http_client **out);
/* Stops the workers; no request may be in flight. */
void http_client_free(struct http_client *client);

#define HTTP_MAX_HEADERS 16

struct http_request;

/* Called before each attempt to (re)build what depends on the attempt: the body sink's
 * state and the signed headers. Fills headers[0..*nheaders) (each a full "Name: value"
 * line, in storage owned by ctx) and returns 0 or -errno (which ends the request). */
typedef int (*http_prepare_fn)(void *ctx, struct http_request *req);

/* Receives a piece of the response body of a 2xx answer; non-zero stops the transfer
 * and is what http_execute() returns (no retry). */
typedef int (*http_body_fn)(void *ctx, const char *data, size_t len);

/* The headers of the final answer to a request: readable with http_header() only while
 * the http_headers_fn it was given to runs. */
struct http_answer;

/* Called once on the worker when the final answer (any status; req->status is set) has
 * come, before http_execute() returns; non-zero is what http_execute() returns. */
typedef int (*http_headers_fn)(void *ctx, struct http_request *req,
			       const struct http_answer *answer);

struct http_request {
	/* set by the caller */
	const char *method;
	const char *url;       /* full URL, query included */
	void *body_buf;        /* 2xx body written here in place (up to body_cap) ... */
	size_t body_cap;
	http_body_fn body_fn;  /* ... or handed to this sink */
	void *ctx;             /* for prepare, body_fn and headers_fn */
	http_prepare_fn prepare;
	http_headers_fn headers_fn; /* reads the final answer's headers, or NULL */
	const void *upload;    /* request body, or NULL */
	size_t upload_len;
	int max_attempts;      /* 0: the client's default */
	int timeout_ms;        /* 0: the client's default */
	/* set by prepare */
	const char *headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	/* set by http_execute */
	long status;           /* final HTTP status, 0 if none was received */
	size_t body_len;       /* bytes of body received by the last attempt */
	int attempts;
	char error_code[64];   /* x-ms-error-code of the final response, or "" */
	char error_text[256];  /* transport error of the last attempt, or "" */
};

/* Between requests every worker waits for work and holds no lock: a fork() then leaves
 * the child no lock held by a thread it does not have (http_client_new() returns
 * once every worker has started). */

/* Runs req on the pool, retrying as above, and returns when it is done: 0 when an HTTP
 * answer came (any status: check req->status), -ETIMEDOUT when the time bound ran out,
 * -EHOSTUNREACH when no connection could be made, -ECONNRESET on transport errors after
 * the last attempt, or what prepare or body_fn returned. */
int http_execute(struct http_client *client, struct http_request *req);

#define HTTP_BATCH_MAX 4
/* Runs n (1..HTTP_BATCH_MAX) requests at once on the pool and returns when all are
 * done; results[i] is what http_execute() would have returned for reqs[i]. -EINVAL for
 * a bad n, else 0. */
int http_execute_all(struct http_client *client, struct http_request *const *reqs,
		     size_t n, int *results);

/* What every client of this process has done since it started. */
enum http_kind { HTTP_GET, HTTP_HEAD, HTTP_PUT, HTTP_DELETE, HTTP_OTHER, HTTP_KINDS };
struct http_stats {
	uint64_t requests[HTTP_KINDS]; /* operations (http_execute), by method */
	uint64_t retries;              /* attempts after the first */
	uint64_t errors;               /* ended without an answer, or with 401, 403, 429, 5xx */
	uint64_t bytes_in;             /* body bytes of final answers */
	uint64_t bytes_out;            /* body bytes sent, retries included */
};

void http_get_stats(struct http_stats *out);
const char *http_kind_name(enum http_kind kind); /* "GET", ..., "other" */

/* The value of header name (any case) of answer, copied to out: -ENOENT when absent,
 * -ENOSPC when it does not fit, -EBADMSG when it is repeated or holds a control
 * character. */
int http_header(const struct http_answer *answer, const char *name, char *out,
		size_t outlen);

/* A decimal number, digits only (no sign, no space, no suffix): -EINVAL
 * when malformed, -ERANGE past UINT64_MAX. */
int http_parse_u64(const char *s, uint64_t *out);

/* Parses an RFC 1123 date ("Sun, 06 Nov 1994 08:49:37 GMT") to seconds since the
 * epoch. -EINVAL when malformed. */
int http_parse_date(const char *s, int64_t *out);

#endif
