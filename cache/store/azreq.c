#include "cache/store/azreq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/base/log.h"
#include "auth/base/util.h"

/* Splits a "Name: value" line for the signer. */
static void azreq_split_header(const char *line, char *name, size_t name_len,
			       const char **value)
{
	const char *colon = strchr(line, ':');
	size_t n = colon ? (size_t)(colon - line) : strlen(line);

	if (n >= name_len)
		n = name_len - 1;
	memcpy(name, line, n);
	name[n] = '\0';
	*value = colon ? colon + 1 : "";
	while (**value == ' ')
		(*value)++;
}

/* http_prepare_fn: the attempt's own state, then the dated and signed headers. */
static int azreq_prepare(void *ctx, struct http_request *http)
{
	struct azreq *req = ctx;
	const struct azreq_service *svc = req->svc;
	struct auth_header signed_hdrs[HTTP_MAX_HEADERS];
	char names[HTTP_MAX_HEADERS][64];
	char path[AZREQ_URL_MAX];
	const char *query;
	size_t path_len;
	time_t now = time(NULL);
	struct tm tm;
	int err;

	if (req->on_attempt) {
		err = req->on_attempt(req);
		if (err)
			return err;
	}
	gmtime_r(&now, &tm);
	memcpy(req->date_hdr, "x-ms-date: ", 11);
	strftime(req->date_hdr + 11, sizeof(req->date_hdr) - 11, "%a, %d %b %Y %H:%M:%S GMT",
		 &tm);
	http->headers[http->nheaders++] = req->date_hdr;
	http->headers[http->nheaders++] = svc->version;
	for (size_t i = 0; i < req->nextra; i++)
		http->headers[http->nheaders++] = req->extra[i];

	if (auth_cred_kind(svc->cred) != AUTH_SHARED_KEY &&
	    auth_cred_kind(svc->cred) != AUTH_BEARER)
		return 0;
	for (size_t i = 0; i < http->nheaders; i++) {
		azreq_split_header(http->headers[i], names[i], sizeof(names[i]),
				   &signed_hdrs[i].value);
		signed_hdrs[i].name = names[i];
	}
	/* The signed path is the URL's path exactly as sent; the query follows '?'. */
	query = strchr(req->url + svc->path_base_len, '?');
	path_len = query ? (size_t)(query - req->url) - svc->path_base_len
			 : strlen(req->url) - svc->path_base_len;
	memcpy(path, req->url + svc->path_base_len, path_len);
	path[path_len] = '\0';
	err = auth_authorization(svc->cred, http->method, path, query ? query + 1 : NULL,
				 signed_hdrs, http->nheaders, req->auth_hdr + 15,
				 sizeof(req->auth_hdr) - 15);
	if (err)
		return err;
	memcpy(req->auth_hdr, "Authorization: ", 15);
	http->headers[http->nheaders++] = req->auth_hdr;
	return 0;
}

/* http_headers_fn: a 206's Content-Range, then the caller's on_answer, while the
 * headers exist. */
static int azreq_on_headers(void *ctx, struct http_request *http,
			    const struct http_answer *answer)
{
	struct azreq *req = ctx;
	char value[128];

	req->bad_header = NULL;
	req->range_first = 0;
	if (http->status == 206) {
		req->bad_header = "Content-Range";
		if (azreq_header(answer, "content-range", value, sizeof(value)) <= 0 ||
		    azreq_range_first(value, &req->range_first) != 0)
			return -EBADMSG;
		req->bad_header = NULL;
	}
	return req->on_answer ? req->on_answer(req, answer) : 0;
}

int azreq_service_init(struct azreq_service *svc, const struct url_container *url,
		       const struct auth_cred *cred, struct http_client *http,
		       const char *version_line)
{
	const char *scheme_end;
	int err;

	memset(svc, 0, sizeof(*svc));
	svc->cred = cred;
	svc->http = http;
	svc->version = version_line;
	snprintf(svc->account, sizeof(svc->account), "%s", url->account);
	snprintf(svc->root, sizeof(svc->root), "%s", url->container);
	err = url_endpoint(url, svc->endpoint, sizeof(svc->endpoint));
	if (err)
		return -ENAMETOOLONG;
	/* The request path starts at the first '/' after "scheme://". */
	scheme_end = strstr(svc->endpoint, "://");
	if (!scheme_end)
		return -EINVAL;
	svc->path_base_len =
		strcspn(scheme_end + 3, "/") + (size_t)(scheme_end + 3 - svc->endpoint);
	return 0;
}

int azreq_url_append(struct azreq *req, const char *text)
{
	size_t used = strlen(req->url), len = strlen(text);

	if (used + len >= sizeof(req->url))
		return -ENAMETOOLONG;
	memcpy(req->url + used, text, len + 1);
	return 0;
}

int azreq_url_append_encoded(struct azreq *req, const char *text, bool keep_slash)
{
	size_t used = strlen(req->url);
	int n = url_encode(text, keep_slash, req->url + used, sizeof(req->url) - used);

	return n < 0 ? -ENAMETOOLONG : 0;
}

int azreq_init(struct azreq *req, const struct azreq_service *svc, const char *method)
{
	int err;

	memset(req, 0, sizeof(*req));
	req->svc = svc;
	req->http.method = method;
	req->http.url = req->url;
	req->http.prepare = azreq_prepare;
	req->http.headers_fn = azreq_on_headers;
	req->http.ctx = req;
	err = azreq_url_append(req, svc->endpoint);
	if (!err)
		err = azreq_url_append(req, "/");
	if (!err)
		err = azreq_url_append(req, svc->root);
	return err;
}

int azreq_finish_url(struct azreq *req)
{
	const char *sas = auth_sas_query(req->svc->cred);
	int err;

	if (!sas)
		return 0;
	err = azreq_url_append(req, strchr(req->url, '?') ? "&" : "?");
	return err ? err : azreq_url_append(req, sas);
}

int azreq_execute(struct azreq *req)
{
	int err = azreq_finish_url(req);

	if (err)
		return err;
	return http_execute(req->svc->http, &req->http);
}

int azreq_create_root(const struct azreq_service *svc, const char *query,
		      const char *exists_code)
{
	struct azreq req;
	int err;

	err = azreq_init(&req, svc, "PUT");
	if (!err)
		err = azreq_url_append(&req, query);
	if (err)
		return err;
	req.extra[req.nextra++] = "Content-Length: 0";
	req.http.upload = "";
	err = azreq_execute(&req);
	if (!err && req.http.status == 409 && strcmp(req.http.error_code, exists_code) == 0)
		return 0;
	if (!err && req.http.status != 201)
		err = azreq_errno(&req);
	if (err)
		azreq_log_failure(&req, err);
	return err;
}

int azreq_errno(const struct azreq *req)
{
	const char *code = req->http.error_code;

	switch (req->http.status) {
	case 404:
		return -ENOENT;
	case 401:
	case 403:
		return -EACCES;
	case 409:
		/* Only "it exists" is EEXIST: If-None-Match: * failed, or a create. Other
		 * conflicts (a lease, a blob of another type, a full emulator) are not. */
		if (strcmp(code, "BlobAlreadyExists") == 0 ||
		    strcmp(code, "ContainerAlreadyExists") == 0 ||
		    strcmp(code, "ShareAlreadyExists") == 0 ||
		    strcmp(code, "ResourceAlreadyExists") == 0)
			return -EEXIST;
		return -EIO;
	case 412:
		return -ESTALE;
	default:
		return -EIO;
	}
}

void azreq_log_failure(const struct azreq *req, int err)
{
	if (err == -EBADMSG && req->bad_header)
		log_warn("%s %s: HTTP %ld with a malformed %s header", req->http.method,
			 req->url, req->http.status, req->bad_header);
	else if (req->http.status)
		log_warn("%s %s: HTTP %ld %s", req->http.method, req->url, req->http.status,
			 req->http.error_code);
	else
		log_warn("%s %s: %s (%s)", req->http.method, req->url, strerror(-err),
			 req->http.error_text);
}

int azreq_header(const struct http_answer *answer, const char *name, char *out,
		 size_t outlen)
{
	int err = http_header(answer, name, out, outlen);

	if (err == -ENOENT)
		return 0;
	return err ? -EBADMSG : 1;
}

bool azreq_etag_ok(const char *etag)
{
	size_t len = strlen(etag);

	return len >= 2 && etag[0] == '"' && etag[len - 1] == '"' &&
	       !memchr(etag + 1, '"', len - 2);
}

int azreq_answer_attr(struct azreq *req, const struct http_answer *answer,
		      struct store_attr *attr)
{
	char value[128];
	int found;

	req->bad_header = "Content-Length";
	found = azreq_header(answer, "content-length", value, sizeof(value));
	if (found < 0 || (found && http_parse_u64(value, &attr->size) != 0))
		return -EBADMSG;
	req->bad_header = "Last-Modified";
	found = azreq_header(answer, "last-modified", value, sizeof(value));
	if (found < 0 || (found && http_parse_date(value, &attr->mtime) != 0))
		return -EBADMSG;
	req->bad_header = "ETag";
	found = azreq_header(answer, "etag", attr->etag, sizeof(attr->etag));
	if (found < 0 || (found && !azreq_etag_ok(attr->etag)))
		return -EBADMSG;
	req->bad_header = NULL;
	return 0;
}

int azreq_range_first(const char *value, uint64_t *first)
{
	char text[64];
	char *dash, *slash;
	uint64_t last, size;

	if (strncmp(value, "bytes ", 6) != 0 || strlen(value + 6) >= sizeof(text))
		return -EBADMSG;
	memcpy(text, value + 6, strlen(value + 6) + 1);
	dash = strchr(text, '-');
	slash = dash ? strchr(dash, '/') : NULL;
	if (!slash)
		return -EBADMSG;
	*dash = '\0';
	*slash = '\0';
	if (http_parse_u64(text, first) != 0 || http_parse_u64(dash + 1, &last) != 0 ||
	    last < *first)
		return -EBADMSG;
	if (strcmp(slash + 1, "*") != 0 &&
	    (http_parse_u64(slash + 1, &size) != 0 || last >= size))
		return -EBADMSG;
	return 0;
}

ssize_t azreq_read_result(struct azreq *req, uint64_t offset, bool pinned)
{
	uint64_t first = req->http.status == 206 ? req->range_first : 0;
	int err;

	switch (req->http.status) {
	case 200: /* the whole object, from its first byte */
	case 206:
		if (first != offset) {
			log_warn("GET %s: the answer starts at byte %" PRIu64 ", not %" PRIu64,
				 req->url, first, offset);
			return -EBADMSG;
		}
		return (ssize_t)req->http.body_len;
	case 416:
		return 0; /* at or past the end */
	case 404:
		if (pinned)
			return -ESTALE; /* deleted since it was opened */
		return -ENOENT;
	default:
		err = azreq_errno(req);
		azreq_log_failure(req, err);
		return err;
	}
}

int azreq_probe_common(const struct azreq *req, int err, const char *what, char *errbuf,
		       size_t errlen)
{
	const struct azreq_service *svc = req->svc;
	const char *code = req->http.error_code;

	if (err == -EHOSTUNREACH || err == -ECONNRESET || err == -ETIMEDOUT) {
		util_errf(errbuf, errlen,
			  "cannot connect to %s: %s; check the URL, the network, and that the "
			  "storage service is running",
			  svc->endpoint,
			  req->http.error_text[0] ? req->http.error_text : strerror(-err));
		return err;
	}
	if (err) {
		util_errf(errbuf, errlen, "cannot %s at %s: %s", what, svc->endpoint,
			  strerror(-err));
		return err;
	}
	if (req->http.status == 403 && strncmp(code, "AuthorizationPermission", 23) != 0 &&
	    strncmp(code, "AuthorizationResourceType", 25) != 0) {
		util_errf(errbuf, errlen,
			  "authentication failed for account '%s' (%s, %s): the service rejected "
			  "the credential; check the key or SAS (AZURE_STORAGE_KEY, "
			  "account_key_file=, sas_file=, AZURE_STORAGE_SAS_TOKEN)",
			  svc->account, auth_kind_name(auth_cred_kind(svc->cred)), code);
		return -EACCES;
	}
	return 0;
}
