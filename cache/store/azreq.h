/* azreq: one request to an Azure Storage service (Blob or File) over its REST API,
 * and what every answer needs read. The stores (blob.c, files.c) build on it.
 *
 * A request carries its URL (endpoint, root, then what the caller appends), the
 * x-ms-date and x-ms-version headers, and the credential: a Shared Key or bearer
 * Authorization header (auth_authorization(), the same for both services) signed anew
 * for each attempt, or the SAS appended to the query. It runs on the http_client's
 * pool with its retries. An azreq is used by one thread for one operation; the
 * azreq_service it points at is shared, read-only once built.
 */
#ifndef FERRY_AZREQ_H
#define FERRY_AZREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth/auth.h"
#include "cache/store/http.h"
#include "cache/store/store.h"
#include "cache/store/url.h"

#define AZREQ_URL_MAX 4096
#define AZREQ_EXTRA_MAX 10

/* What every request to one datastore shares. */
struct azreq_service {
	const struct auth_cred *cred; /* borrowed: outlives the service */
	struct http_client *http;     /* borrowed: outlives the service */
	const char *version;          /* the "x-ms-version: ..." line, static */
	char account[64];
	char root[64];                /* the container or the share */
	char endpoint[512];           /* scheme://host[:port][/account] */
	size_t path_base_len;         /* bytes of endpoint that precede the request path */
};

/* Fills svc for the datastore at url (its container field names the root);
 * version_line is a static "x-ms-version: ..." line. -ENAMETOOLONG when the endpoint
 * does not fit. */
int azreq_service_init(struct azreq_service *svc, const struct url_container *url,
		       const struct auth_cred *cred, struct http_client *http,
		       const char *version_line);

struct azreq;

/* Called at the start of each attempt, before the headers are signed: resets what an
 * attempt fills (a parser, a buffer). 0 or -errno, which ends the request. */
typedef int (*azreq_attempt_fn)(struct azreq *req);

/* Called with the final answer (any status; req->http.status set, and
 * req->range_first for a 206, whose Content-Range was checked) while its headers can
 * be read (azreq_header()). 0 or -errno, which is what the request returns; -EBADMSG
 * with req->bad_header naming the header at fault. */
typedef int (*azreq_answer_fn)(struct azreq *req, const struct http_answer *answer);

struct azreq {
	struct http_request http;     /* http.ctx is this azreq (also for body_fn) */
	const struct azreq_service *svc;
	char url[AZREQ_URL_MAX];
	const char *extra[AZREQ_EXTRA_MAX]; /* "Name: value" lines, signed and sent as
					       they are; storage is the caller's */
	size_t nextra;
	azreq_attempt_fn on_attempt;  /* or NULL */
	azreq_answer_fn on_answer;    /* or NULL */
	const char *bad_header;       /* the header that made the answer -EBADMSG */
	uint64_t range_first;         /* first byte of a 206 answer (its Content-Range) */
	char date_hdr[64];
	char auth_hdr[512];
};

/* Starts a request: the URL is the endpoint, "/" and the root; the caller appends the
 * path and the query, then runs it with azreq_execute(). 0 or -ENAMETOOLONG. */
int azreq_init(struct azreq *req, const struct azreq_service *svc, const char *method);

/* Appends text to the URL as it is, or percent-encoded (url_encode(), '/' kept when
 * keep_slash). -ENAMETOOLONG when it does not fit. */
int azreq_url_append(struct azreq *req, const char *text);
int azreq_url_append_encoded(struct azreq *req, const char *text, bool keep_slash);

/* Adds the SAS, if the credential is one, to the query. Once, when the URL is
 * complete (azreq_execute() does it). */
int azreq_finish_url(struct azreq *req);

/* azreq_finish_url(), then http_execute(): 0 when an answer came (any status), or
 * -errno as http_execute() says. */
int azreq_execute(struct azreq *req);

/* Creates the datastore's root with a PUT of the root's URL and query
 * ("?restype=container", "?restype=share"): 0 when the service made it (201) or says
 * it exists already (409 with error code exists_code), else -errno (logged). */
int azreq_create_root(const struct azreq_service *svc, const char *query,
		      const char *exists_code);

/* The one place an answer's status becomes an errno: 404 -ENOENT, 401/403 -EACCES,
 * 409 -EEXIST when the service says the thing exists (BlobAlreadyExists,
 * ContainerAlreadyExists, ShareAlreadyExists, ResourceAlreadyExists) else -EIO,
 * 412 -ESTALE, anything else -EIO. */
int azreq_errno(const struct azreq *req);

/* Logs why req failed with err: a status and the service's error code, a malformed
 * header, or the transport's error (log.h redacts the SAS from the URL). */
void azreq_log_failure(const struct azreq *req, int err);

/* Reads header name of answer into out: 1 when present, 0 when absent, -EBADMSG when
 * malformed or longer than outlen. */
int azreq_header(const struct http_answer *answer, const char *name, char *out,
		 size_t outlen);

/* An ETag as the service sends it in a header: a quoted string without inner quotes. */
bool azreq_etag_ok(const char *etag);

/* Reads what every object's answer says of it into *attr: Content-Length (size),
 * Last-Modified (mtime) and ETag, each left as it was when absent. 0, or -EBADMSG
 * with req->bad_header naming the malformed one. */
int azreq_answer_attr(struct azreq *req, const struct http_answer *answer,
		      struct store_attr *attr);

/* The first byte of a Content-Range "bytes FIRST-LAST/SIZE" (SIZE may be "*"):
 * 0, or -EBADMSG. */
int azreq_range_first(const char *value, uint64_t *first);

/* What a ranged GET of offset came to, once its answer is in (status 200, 206 or
 * another): the byte count of a 200 or a 206 that starts at offset, -EBADMSG for one
 * that starts elsewhere, 0 for 416 (at or past the end), -ESTALE for 404 when the read
 * was pinned to an ETag, else azreq_errno() (logged). */
ssize_t azreq_read_result(struct azreq *req, uint64_t offset, bool pinned);

/* For a probe whose request req ended with err: when the service was not reached,
 * the request failed (what names it: "list container 'x'"), or the service refused
 * the credential itself (403 other than a permission error), writes one line for a
 * person to errbuf and returns the errno; else 0, and the caller words the rest. */
int azreq_probe_common(const struct azreq *req, int err, const char *what, char *errbuf,
		       size_t errlen);

#endif
