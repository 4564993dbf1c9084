#include "cache/store/blob.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "auth/base/log.h"
#include "auth/base/util.h"
#include "cache/store/listxml.h"

#define BLOB_API_VERSION "2023-11-03"
#define BLOB_LIST_PAGE 5000
#define BLOB_URL_MAX 4096
#define BLOB_NAME_MAX_CHARS 1024 /* Azure's bound on a blob name */

struct blob_store {
	struct store base;
	const struct auth_cred *cred;
	struct http_client *http;
	char account[64];
	char container[64];
	char endpoint[512];     /* scheme://host[:port][/account] */
	size_t path_base_len;   /* bytes of endpoint that precede the request path */
	char prefix[1024];      /* blob name prefix with trailing '/', or "" */
};

/* A growing buffer for small XML answers. */
/* A request being built: its URL and the signed headers prepare() refreshes. */
struct blob_req {
	struct blob_store *bs;
	struct http_request http;
	char url[BLOB_URL_MAX];
	const char *extra[10]; /* "Name: value" lines signed and sent as they are */
	size_t nextra;
	char date_hdr[64];
	char auth_hdr[512];
	/* listing sink: a fresh parser per attempt; entries a failed attempt already
	 * delivered are not delivered again */
	struct listxml *parser;
	store_list_fn list_fn;
	void *list_ctx;
	size_t list_strip;     /* bytes of each name that are the listed prefix */
	size_t list_seen, list_delivered;
	bool list_own;         /* the listing held the placeholder object "dir/" itself */
	/* small answers kept whole (block lists): emptied before each attempt */
	struct util_buf body;
	/* read from the headers of a final 2xx answer */
	struct store_attr attr;
	char copy_status[32];    /* x-ms-copy-status, or "" */
	uint64_t range_first;    /* first byte of a 206 answer (its Content-Range) */
	const char *bad_header;  /* the header that made the answer -EBADMSG */
};

static struct blob_store *blob_of(struct store *s)
{
	return (struct blob_store *)s;
}

/* Splits a "Name: value" line for the signer. */
static void blob_split_header(const char *line, char *name, size_t name_len,
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

static int blob_list_item(void *ctx, const struct listxml_item *item);
static int blob_on_headers(void *ctx, struct http_request *http,
			   const struct http_answer *answer);

static int blob_prepare(void *ctx, struct http_request *http)
{
	struct blob_req *br = ctx;
	struct blob_store *bs = br->bs;
	struct auth_header signed_hdrs[HTTP_MAX_HEADERS];
	char names[HTTP_MAX_HEADERS][64];
	char path[BLOB_URL_MAX];
	const char *query;
	size_t path_len;
	time_t now = time(NULL);
	struct tm tm;
	int err;

	if (br->list_fn) {
		listxml_free(br->parser);
		br->parser = NULL;
		br->list_seen = 0;
		err = listxml_new(blob_list_item, br, &br->parser);
		if (err)
			return err;
	}
	br->body.len = 0;
	gmtime_r(&now, &tm);
	memcpy(br->date_hdr, "x-ms-date: ", 11);
	strftime(br->date_hdr + 11, sizeof(br->date_hdr) - 11, "%a, %d %b %Y %H:%M:%S GMT",
		 &tm);
	http->headers[http->nheaders++] = br->date_hdr;
	http->headers[http->nheaders++] = "x-ms-version: " BLOB_API_VERSION;
	for (size_t i = 0; i < br->nextra; i++)
		http->headers[http->nheaders++] = br->extra[i];

	if (auth_cred_kind(bs->cred) != AUTH_SHARED_KEY &&
	    auth_cred_kind(bs->cred) != AUTH_BEARER)
		return 0;
	for (size_t i = 0; i < http->nheaders; i++) {
		blob_split_header(http->headers[i], names[i], sizeof(names[i]),
				  &signed_hdrs[i].value);
		signed_hdrs[i].name = names[i];
	}
	/* The signed path is the URL's path exactly as sent; the query follows '?'. */
	query = strchr(br->url + bs->path_base_len, '?');
	path_len = query ? (size_t)(query - br->url) - bs->path_base_len
			 : strlen(br->url) - bs->path_base_len;
	memcpy(path, br->url + bs->path_base_len, path_len);
	path[path_len] = '\0';
	err = auth_authorization(bs->cred, http->method, path, query ? query + 1 : NULL,
				 signed_hdrs, http->nheaders, br->auth_hdr + 15,
				 sizeof(br->auth_hdr) - 15);
	if (err)
		return err;
	memcpy(br->auth_hdr, "Authorization: ", 15);
	http->headers[http->nheaders++] = br->auth_hdr;
	return 0;
}

/* Appends text to the request URL; -ENAMETOOLONG when it does not fit. */
static int blob_url_append(struct blob_req *br, const char *text)
{
	size_t used = strlen(br->url), len = strlen(text);

	if (used + len >= sizeof(br->url))
		return -ENAMETOOLONG;
	memcpy(br->url + used, text, len + 1);
	return 0;
}

static int blob_url_append_encoded(struct blob_req *br, const char *text, bool keep_slash)
{
	size_t used = strlen(br->url);
	int n = url_encode(text, keep_slash, br->url + used, sizeof(br->url) - used);

	return n < 0 ? -ENAMETOOLONG : 0;
}

/* Characters of a UTF-8 string: its bytes that do not continue a sequence. */
static size_t blob_name_chars(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* Starts a request: the container URL, plus "/" and the blob name when blob_path is
 * not NULL. The query (if any) is appended by the caller, then blob_req_finish_url(). */
static int blob_req_init(struct blob_req *br, struct blob_store *bs, const char *method,
			 const char *blob_path)
{
	int err;

	memset(br, 0, sizeof(*br));
	br->bs = bs;
	br->http.method = method;
	br->http.url = br->url;
	br->http.prepare = blob_prepare;
	br->http.headers_fn = blob_on_headers;
	br->http.ctx = br;
	err = blob_url_append(br, bs->endpoint);
	if (!err)
		err = blob_url_append(br, "/");
	if (!err)
		err = blob_url_append(br, bs->container);
	if (err || !blob_path)
		return err;
	if (blob_name_chars(bs->prefix) + blob_name_chars(blob_path) > BLOB_NAME_MAX_CHARS)
		return -ENAMETOOLONG;
	err = blob_url_append(br, "/");
	if (!err)
		err = blob_url_append_encoded(br, bs->prefix, true);
	if (!err)
		err = blob_url_append_encoded(br, blob_path, true);
	return err;
}

/* Adds the SAS, if the credential is one, to the query. */
static int blob_req_finish_url(struct blob_req *br)
{
	const char *sas = auth_sas_query(br->bs->cred);

	if (!sas)
		return 0;
	int err = blob_url_append(br, strchr(br->url, '?') ? "&" : "?");

	return err ? err : blob_url_append(br, sas);
}

static int blob_execute(struct blob_req *br)
{
	int err = blob_req_finish_url(br);

	if (err)
		return err;
	return http_execute(br->bs->http, &br->http);
}

/* The one place HTTP answers become errno values. */
static int blob_errno(const struct blob_req *br)
{
	long status = br->http.status;

	switch (status) {
	case 404:
		return -ENOENT;
	case 401:
	case 403:
		return -EACCES;
	case 409:
		/* Only "it exists" is EEXIST: If-None-Match: * failed, or a create. Other
		 * conflicts (a lease, a blob of another type, a full emulator) are not. */
		if (strcmp(br->http.error_code, "BlobAlreadyExists") == 0 ||
		    strcmp(br->http.error_code, "ContainerAlreadyExists") == 0)
			return -EEXIST;
		return -EIO;
	case 412:
		return -ESTALE;
	default:
		return -EIO;
	}
}

static void blob_log_failure(const struct blob_req *br, int err)
{
	if (err == -EBADMSG && br->bad_header)
		log_warn("%s %s: HTTP %ld with a malformed %s header", br->http.method, br->url,
			 br->http.status, br->bad_header);
	else if (br->http.status)
		log_warn("%s %s: HTTP %ld %s", br->http.method, br->url, br->http.status,
			 br->http.error_code);
	else
		log_warn("%s %s: %s (%s)", br->http.method, br->url, strerror(-err),
			 br->http.error_text);
}

/* Reads header name of answer into out: 1 when present, 0 when absent, -EBADMSG when
 * malformed or longer than outlen. */
static int blob_header(const struct http_answer *answer, const char *name, char *out,
		       size_t outlen)
{
	int err = http_header(answer, name, out, outlen);

	if (err == -ENOENT)
		return 0;
	return err ? -EBADMSG : 1;
}

/* An ETag as the service sends it: a quoted string without inner quotes. */
static bool blob_etag_ok(const char *etag)
{
	size_t len = strlen(etag);

	return len >= 2 && etag[0] == '"' && etag[len - 1] == '"' &&
	       !memchr(etag + 1, '"', len - 2);
}

/* The attributes a 2xx answer carries: 0, or -EBADMSG with br->bad_header set. A
 * malformed ferry_mtime is ignored, as in listings: Last-Modified stands. */
static int blob_attr_from_answer(struct blob_req *br, const struct http_answer *answer)
{
	struct store_attr *out = &br->attr;
	char value[128];
	int found;

	br->bad_header = "Content-Length";
	found = blob_header(answer, "content-length", value, sizeof(value));
	if (found < 0 || (found && http_parse_u64(value, &out->size) != 0))
		return -EBADMSG;
	br->bad_header = "Last-Modified";
	found = blob_header(answer, "last-modified", value, sizeof(value));
	if (found < 0 || (found && http_parse_date(value, &out->mtime) != 0))
		return -EBADMSG;
	br->bad_header = "ETag";
	found = blob_header(answer, "etag", out->etag, sizeof(out->etag));
	if (found < 0 || (found && !blob_etag_ok(out->etag)))
		return -EBADMSG;
	br->bad_header = "x-ms-meta-hdi_isfolder";
	found = blob_header(answer, "x-ms-meta-hdi_isfolder", value, sizeof(value));
	if (found < 0)
		return -EBADMSG;
	out->is_dir = found && strcasecmp(value, "true") == 0;
	br->bad_header = "x-ms-meta-is_symlink";
	found = blob_header(answer, "x-ms-meta-is_symlink", value, sizeof(value));
	if (found < 0)
		return -EBADMSG;
	out->is_symlink = found && strcasecmp(value, "true") == 0;
	if (blob_header(answer, "x-ms-meta-ferry_mtime", value, sizeof(value)) > 0)
		listxml_parse_mtime(value, &out->mtime, &out->mtime_nsec);
	br->bad_header = "x-ms-copy-status";
	found = blob_header(answer, "x-ms-copy-status", br->copy_status, sizeof(br->copy_status));
	if (found < 0)
		return -EBADMSG;
	br->bad_header = NULL;
	return 0;
}

/* The first byte of a Content-Range "bytes FIRST-LAST/SIZE" (SIZE may be "*"):
 * 0, or -EBADMSG. */
static int blob_range_first(const char *value, uint64_t *first)
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

/* http_headers_fn: what the final answer's headers say, read while they exist. */
static int blob_on_headers(void *ctx, struct http_request *http,
			   const struct http_answer *answer)
{
	struct blob_req *br = ctx;
	char value[128];

	memset(&br->attr, 0, sizeof(br->attr));
	br->copy_status[0] = '\0';
	if (http->status < 200 || http->status >= 300)
		return 0;
	if (http->status == 206) {
		br->bad_header = "Content-Range";
		if (blob_header(answer, "content-range", value, sizeof(value)) <= 0 ||
		    blob_range_first(value, &br->range_first) != 0)
			return -EBADMSG;
	}
	return blob_attr_from_answer(br, answer);
}

static int blob_stat(struct store *s, const char *path, struct store_attr *out)
{
	struct blob_req br;
	int err;

	if (!*path)
		return -ENOENT;
	err = blob_req_init(&br, blob_of(s), "HEAD", path);
	if (!err)
		err = blob_execute(&br);
	if (err) {
		blob_log_failure(&br, err);
		return err;
	}
	if (br.http.status == 200) {
		*out = br.attr;
		return 0;
	}
	err = blob_errno(&br);
	if (err != -ENOENT)
		blob_log_failure(&br, err);
	return err;
}

static int blob_list_item(void *ctx, const struct listxml_item *item)
{
	struct blob_req *br = ctx;
	struct store_entry entry;
	char name[1024 + 1];
	size_t len;

	if (br->list_seen++ < br->list_delivered)
		return 0; /* delivered by an earlier attempt of this page */
	br->list_delivered++;
	len = strlen(item->name);
	if (len <= br->list_strip) {
		br->list_own = true; /* the directory's own placeholder "dir/" */
		return 0;
	}
	len -= br->list_strip;
	if (item->is_prefix)
		len--;
	if (len == 0 || len >= sizeof(name))
		return 0;
	memcpy(name, item->name + br->list_strip, len);
	name[len] = '\0';
	memset(&entry, 0, sizeof(entry));
	entry.name = name;
	entry.attr.is_dir = item->is_prefix || item->hdi_isfolder;
	if (!item->is_prefix) {
		entry.attr.size = item->size;
		entry.attr.mtime = item->has_meta_mtime ? item->meta_mtime : item->mtime;
		entry.attr.mtime_nsec = item->has_meta_mtime ? item->meta_mtime_nsec : 0;
		entry.attr.is_symlink = item->is_symlink;
		snprintf(entry.attr.etag, sizeof(entry.attr.etag), "\"%s\"", item->etag);
	}
	return br->list_fn(br->list_ctx, &entry);
}

static int blob_list_body(void *ctx, const char *data, size_t len)
{
	struct blob_req *br = ctx;

	return listxml_feed(br->parser, data, len);
}

/* Starts a List Blobs request for the children of dir; max_results per page. Without
 * the delimiter it lists every blob under dir, nested ones included. (Azurite is slow
 * with a delimiter and a small max_results: it fills the page one prefix at a time.) */
static int blob_list_init(struct blob_req *br, struct blob_store *bs, const char *dir,
			  const char *marker, int max_results, bool delimited)
{
	char list_prefix[2048], number[32];
	int err;

	if (snprintf(list_prefix, sizeof(list_prefix), "%s%s%s", bs->prefix, dir,
		     *dir ? "/" : "") >= (int)sizeof(list_prefix))
		return -ENAMETOOLONG;
	err = blob_req_init(br, bs, "GET", NULL);
	if (err)
		return err;
	br->list_strip = strlen(list_prefix);
	snprintf(number, sizeof(number), "%d", max_results);
	err = blob_url_append(br, delimited ? "?restype=container&comp=list&delimiter=%2F"
					      "&include=metadata&maxresults="
					    : "?restype=container&comp=list&maxresults=");
	if (!err)
		err = blob_url_append(br, number);
	if (!err && *list_prefix)
		err = blob_url_append(br, "&prefix=");
	if (!err && *list_prefix)
		err = blob_url_append_encoded(br, list_prefix, false);
	if (!err && marker && *marker)
		err = blob_url_append(br, "&marker=");
	if (!err && marker && *marker)
		err = blob_url_append_encoded(br, marker, false);
	return err;
}

static int blob_list(struct store *s, const char *dir, const char *marker, store_list_fn fn,
		     void *ctx, char *next_marker, size_t next_len)
{
	struct blob_req br;
	int err;

	err = blob_list_init(&br, blob_of(s), dir, marker, BLOB_LIST_PAGE, true);
	if (err)
		return err;
	br.list_fn = fn;
	br.list_ctx = ctx;
	br.http.body_fn = blob_list_body;
	err = blob_execute(&br);
	if (err > 0)
		goto out_free; /* the caller's callback stopped the listing */
	if (err)
		goto out_log;
	if (br.http.status != 200) {
		err = blob_errno(&br);
		goto out_log;
	}
	err = listxml_finish(br.parser, next_marker, next_len);
	if (err == -EBADMSG)
		log_warn("GET %s: the listing is not valid XML", br.url);
	goto out_free;
out_log:
	blob_log_failure(&br, err);
out_free:
	listxml_free(br.parser);
	return err;
}

static ssize_t blob_read(struct store *s, const char *path, const char *etag, uint64_t offset,
			 size_t len, void *buf)
{
	struct blob_req br;
	char range[80], if_match[STORE_ETAG_MAX + 16];
	uint64_t first;
	int err;

	if (len == 0)
		return 0;
	err = blob_req_init(&br, blob_of(s), "GET", path);
	if (err)
		return err;
	snprintf(range, sizeof(range), "x-ms-range: bytes=%" PRIu64 "-%" PRIu64, offset,
		 offset + len - 1);
	br.extra[br.nextra++] = range;
	if (etag && *etag) {
		snprintf(if_match, sizeof(if_match), "If-Match: %s", etag);
		br.extra[br.nextra++] = if_match;
	}
	br.http.body_buf = buf;
	br.http.body_cap = len;
	err = blob_execute(&br);
	if (err) {
		blob_log_failure(&br, err);
		return err;
	}
	switch (br.http.status) {
	case 200: /* the whole object, from its first byte */
	case 206:
		first = br.http.status == 206 ? br.range_first : 0;
		if (first != offset) {
			log_warn("GET %s: the answer starts at byte %" PRIu64 ", not %" PRIu64,
				 br.url, first, offset);
			return -EBADMSG;
		}
		return (ssize_t)br.http.body_len;
	case 416:
		return 0; /* at or past the end */
	case 404:
		if (etag && *etag)
			return -ESTALE; /* deleted since it was opened */
		return -ENOENT;
	default:
		err = blob_errno(&br);
		blob_log_failure(&br, err);
		return err;
	}
}

static int blob_count_item(void *ctx, const struct store_entry *entry)
{
	(void)entry;
	(*(size_t *)ctx)++;
	return 0;
}

/* Starts a listing of at most max_results names under dir + "/", nested ones
 * included, that counts them into *count (the placeholder "dir/" sets br->list_own). */
static int blob_count_init(struct blob_req *br, struct blob_store *bs, const char *dir,
			   int max_results, size_t *count)
{
	int err = blob_list_init(br, bs, dir, NULL, max_results, false);

	br->list_fn = blob_count_item;
	br->list_ctx = count;
	br->http.body_fn = blob_list_body;
	return err ? err : blob_req_finish_url(br);
}

/* What a finished listing request came to: 0, or -errno (logged). */
static int blob_list_result(struct blob_req *br, int err)
{
	if (!err && br->http.status != 200)
		err = blob_errno(br);
	if (err)
		blob_log_failure(br, err);
	listxml_free(br->parser);
	br->parser = NULL;
	return err;
}

static int blob_has_children(struct store *s, const char *dir)
{
	struct blob_req br;
	size_t count = 0;
	int err;

	/* Two: the placeholder "dir/", if there is one, comes first and does not count. */
	err = blob_count_init(&br, blob_of(s), dir, 2, &count);
	if (!err)
		err = http_execute(br.bs->http, &br.http);
	err = blob_list_result(&br, err);
	return err ? err : count > 0;
}

/* A HEAD of path and a one-name listing under path + "/", at once. */
static int blob_lookup(struct store *s, const char *path, struct store_attr *out)
{
	struct blob_store *bs = blob_of(s);
	struct blob_req *head, *list;
	struct http_request *reqs[2];
	int results[2], err;
	size_t count = 0;

	if (!*path)
		return -ENOENT;
	head = calloc(2, sizeof(*head));
	if (!head)
		return -ENOMEM;
	list = head + 1;
	err = blob_req_init(head, bs, "HEAD", path);
	if (!err)
		err = blob_req_finish_url(head);
	if (!err)
		err = blob_count_init(list, bs, path, 1, &count);
	if (err) {
		free(head); /* nothing sent: no parser yet (each attempt makes its own) */
		return err;
	}
	reqs[0] = &head->http;
	reqs[1] = &list->http;
	err = http_execute_all(bs->http, reqs, 2, results);
	err = blob_list_result(list, err ? err : results[1]);
	if (!err) {
		err = results[0];
		if (!err && head->http.status == 200)
			*out = head->attr;
		else if (!err)
			err = blob_errno(head);
		if (err && err != -ENOENT)
			blob_log_failure(head, err);
	}
	if ((!err || err == -ENOENT) && (count > 0 || list->list_own)) {
		/* A name under path/: a directory, whatever object path also is. */
		if (err || !out->is_dir)
			memset(out, 0, sizeof(*out));
		out->is_dir = true;
		err = 0;
	}
	free(head);
	return err;
}

static int blob_probe(struct store *s, char *errbuf, size_t errlen)
{
	struct blob_store *bs = blob_of(s);
	const struct auth_cred *cred = bs->cred;
	struct blob_req br;
	size_t count = 0;
	int err;

	err = blob_count_init(&br, bs, "", 1, &count);
	if (err) {
		util_errf(errbuf, errlen, "the container URL is too long");
		return err;
	}
	br.http.max_attempts = 3;
	br.http.timeout_ms = 10000;
	err = http_execute(bs->http, &br.http);
	listxml_free(br.parser);
	br.parser = NULL;
	if (err == -EHOSTUNREACH || err == -ECONNRESET || err == -ETIMEDOUT) {
		util_errf(errbuf, errlen,
			  "cannot connect to %s: %s; check the URL, the network, and that the "
			  "storage service is running",
			  bs->endpoint,
			  br.http.error_text[0] ? br.http.error_text : strerror(-err));
		return err;
	}
	if (err) {
		util_errf(errbuf, errlen, "cannot list container '%s' at %s: %s", bs->container,
			  bs->endpoint, strerror(-err));
		return err;
	}
	if (br.http.status == 200)
		return 0;
	if (br.http.status == 403 && strncmp(br.http.error_code, "AuthorizationPermission", 23) != 0 &&
	    strncmp(br.http.error_code, "AuthorizationResourceType", 25) != 0) {
		util_errf(errbuf, errlen,
			  "authentication failed for account '%s' (%s, %s): the service rejected "
			  "the credential; check the key or SAS (AZURE_STORAGE_KEY, "
			  "account_key_file=, sas_file=, AZURE_STORAGE_SAS_TOKEN)",
			  bs->account, auth_kind_name(auth_cred_kind(cred)), br.http.error_code);
		return -EACCES;
	}
	if (br.http.status == 403) {
		util_errf(errbuf, errlen,
			  "access denied to container '%s' (%s): the %s credential may not list "
			  "it; a SAS needs the read and list permissions",
			  bs->container, br.http.error_code, auth_kind_name(auth_cred_kind(cred)));
		return -EACCES;
	}
	if (br.http.status == 404 && strcmp(br.http.error_code, "ContainerNotFound") == 0) {
		util_errf(errbuf, errlen,
			  "container '%s' not found in account '%s' at %s; create it or check "
			  "the URL",
			  bs->container, bs->account, bs->endpoint);
		return -ENOENT;
	}
	if (br.http.status == 404 && auth_cred_kind(cred) == AUTH_ANONYMOUS) {
		util_errf(errbuf, errlen,
			  "container '%s' not found or not public at %s; give a credential "
			  "(AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, ...) for a private "
			  "container",
			  bs->container, bs->endpoint);
		return -ENOENT;
	}
	util_errf(errbuf, errlen, "unexpected answer from %s: HTTP %ld %s", bs->endpoint,
		  br.http.status, br.http.error_code);
	return -EIO;
}

/* Writes ---------------------------------------------------------------------- */

/* Storage for the header lines a write adds; lives as long as its blob_req. */
struct blob_write_hdrs {
	char length[48];
	char mtime[64];
	char if_match[STORE_ETAG_MAX + 16];
};

static void blob_add_write_headers(struct blob_req *br, struct blob_write_hdrs *h, size_t len,
				   const struct store_meta *meta, const struct store_cond *cond)
{
	snprintf(h->length, sizeof(h->length), "Content-Length: %zu", len);
	br->extra[br->nextra++] = h->length;
	if (meta && meta->is_dir)
		br->extra[br->nextra++] = "x-ms-meta-hdi_isfolder: true";
	if (meta && meta->is_symlink)
		br->extra[br->nextra++] = "x-ms-meta-is_symlink: true";
	if (meta && meta->has_mtime) {
		snprintf(h->mtime, sizeof(h->mtime), "x-ms-meta-ferry_mtime: %lld.%09u",
			 (long long)meta->mtime, meta->mtime_nsec);
		br->extra[br->nextra++] = h->mtime;
	}
	if (cond && cond->if_match) {
		snprintf(h->if_match, sizeof(h->if_match), "If-Match: %s", cond->if_match);
		br->extra[br->nextra++] = h->if_match;
	}
	if (cond && cond->if_none)
		br->extra[br->nextra++] = "If-None-Match: *";
}

/* The outcome of a write: 0 and *out filled when the service answered want. */
static int blob_write_result(struct blob_req *br, int err, long want,
			     const struct store_meta *meta, uint64_t size, struct store_attr *out)
{
	if (!err && br->http.status != want)
		err = blob_errno(br);
	if (err) {
		blob_log_failure(br, err);
		return err;
	}
	if (out) {
		*out = br->attr;
		out->size = size;
		if (meta) {
			out->is_dir = meta->is_dir;
			out->is_symlink = meta->is_symlink;
			if (meta->has_mtime) {
				out->mtime = meta->mtime;
				out->mtime_nsec = meta->mtime_nsec;
			}
		}
	}
	return 0;
}

static int blob_put(struct store *s, const char *path, const void *data, size_t len,
		    const struct store_meta *meta, const struct store_cond *cond,
		    struct store_attr *out)
{
	struct blob_write_hdrs h;
	struct blob_req br;
	int err;

	err = blob_req_init(&br, blob_of(s), "PUT", path);
	if (err)
		return err;
	br.extra[br.nextra++] = "x-ms-blob-type: BlockBlob";
	blob_add_write_headers(&br, &h, len, meta, cond);
	br.http.upload = data;
	br.http.upload_len = len;
	err = blob_execute(&br);
	return blob_write_result(&br, err, 201, meta, len, out);
}

static int blob_put_block(struct store *s, const char *path, const char *block_id,
			  const void *data, size_t len)
{
	struct blob_write_hdrs h;
	struct blob_req br;
	int err;

	err = blob_req_init(&br, blob_of(s), "PUT", path);
	if (!err)
		err = blob_url_append(&br, "?comp=block&blockid=");
	if (!err)
		err = blob_url_append_encoded(&br, block_id, false);
	if (err)
		return err;
	blob_add_write_headers(&br, &h, len, NULL, NULL);
	br.http.upload = data;
	br.http.upload_len = len;
	err = blob_execute(&br);
	return blob_write_result(&br, err, 201, NULL, 0, NULL);
}

static int blob_commit(struct store *s, const char *path, const char *const *block_ids,
		       size_t nblocks, const struct store_meta *meta,
		       const struct store_cond *cond, struct store_attr *out)
{
	static const char head[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
	static const char tail[] = "</BlockList>";
	struct blob_write_hdrs h;
	struct blob_req br;
	size_t cap = sizeof(head) + sizeof(tail), len = 0;
	char *body;
	int err;

	for (size_t i = 0; i < nblocks; i++)
		cap += strlen(block_ids[i]) + sizeof("<Latest></Latest>");
	body = malloc(cap);
	if (!body)
		return -ENOMEM;
	len += (size_t)snprintf(body + len, cap - len, "%s", head);
	for (size_t i = 0; i < nblocks; i++)
		len += (size_t)snprintf(body + len, cap - len, "<Latest>%s</Latest>", block_ids[i]);
	len += (size_t)snprintf(body + len, cap - len, "%s", tail);

	err = blob_req_init(&br, blob_of(s), "PUT", path);
	if (!err)
		err = blob_url_append(&br, "?comp=blocklist");
	if (err)
		goto out_free;
	blob_add_write_headers(&br, &h, len, meta, cond);
	br.http.upload = body;
	br.http.upload_len = len;
	err = blob_execute(&br);
	err = blob_write_result(&br, err, 201, meta, 0, out);
out_free:
	free(body);
	return err;
}

static int blob_body_append(void *ctx, const char *data, size_t len)
{
	return util_buf_append(&((struct blob_req *)ctx)->body, data, len);
}

/* The text of the first child element called name, or NULL. */
static const char *blob_xml_child_text(xmlNode *node, const char *name, xmlChar **owned)
{
	for (xmlNode *c = node->children; c; c = c->next) {
		if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, name) == 0) {
			*owned = xmlNodeGetContent(c);
			return (const char *)*owned;
		}
	}
	return NULL;
}

/* Parses a Get Block List answer's CommittedBlocks. */
static int blob_parse_blocks(const struct util_buf *body, struct store_block **out,
			     size_t *nblocks)
{
	xmlDoc *doc = xmlReadMemory(body->data, (int)body->len, NULL, "UTF-8",
				    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	struct store_block *blocks = NULL;
	size_t n = 0, cap = 0;
	xmlNode *root, *list = NULL;
	int err = 0;

	if (!doc)
		return -EBADMSG;
	root = xmlDocGetRootElement(doc);
	for (xmlNode *c = root ? root->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE &&
		    strcmp((const char *)c->name, "CommittedBlocks") == 0)
			list = c;
	for (xmlNode *b = list ? list->children : NULL; b && !err; b = b->next) {
		xmlChar *name_text = NULL, *size_text = NULL;
		const char *name, *size;

		if (b->type != XML_ELEMENT_NODE || strcmp((const char *)b->name, "Block") != 0)
			continue;
		name = blob_xml_child_text(b, "Name", &name_text);
		size = blob_xml_child_text(b, "Size", &size_text);
		if (!name || !size || strlen(name) >= STORE_BLOCK_ID_MAX) {
			err = -EBADMSG;
		} else if (n == cap) {
			struct store_block *grown;

			cap = cap ? cap * 2 : 64;
			grown = realloc(blocks, cap * sizeof(*blocks));
			if (grown)
				blocks = grown;
			else
				err = -ENOMEM;
		}
		if (!err) {
			memcpy(blocks[n].id, name, strlen(name) + 1);
			blocks[n].size = strtoull(size, NULL, 10);
			n++;
		}
		xmlFree(name_text);
		xmlFree(size_text);
	}
	xmlFreeDoc(doc);
	if (err) {
		free(blocks);
		return err;
	}
	*out = blocks;
	*nblocks = n;
	return 0;
}

static int blob_get_blocks(struct store *s, const char *path, const char *etag,
			   struct store_block **out, size_t *nblocks)
{
	struct blob_req br;
	int err;

	err = blob_req_init(&br, blob_of(s), "GET", path);
	if (!err)
		err = blob_url_append(&br, "?comp=blocklist&blocklisttype=committed");
	if (err)
		return err;
	br.http.body_fn = blob_body_append;
	br.body.limit = 64u << 20;
	err = blob_execute(&br);
	if (!err && br.http.status != 200)
		err = blob_errno(&br);
	if (err == -ENOENT && etag)
		err = -ESTALE;
	if (!err && etag && strcmp(br.attr.etag, etag) != 0)
		err = -ESTALE;
	if (!err)
		err = blob_parse_blocks(&br.body, out, nblocks);
	else if (err != -ESTALE)
		blob_log_failure(&br, err);
	util_buf_free(&br.body);
	return err;
}

static int blob_set_meta(struct store *s, const char *path, const struct store_meta *meta,
			 const struct store_cond *cond, struct store_attr *out)
{
	struct blob_write_hdrs h;
	struct blob_req br;
	int err;

	err = blob_req_init(&br, blob_of(s), "PUT", path);
	if (!err)
		err = blob_url_append(&br, "?comp=metadata");
	if (err)
		return err;
	blob_add_write_headers(&br, &h, 0, meta, cond);
	br.http.upload = "";
	err = blob_execute(&br);
	err = blob_write_result(&br, err, 200, meta, 0, out);
	if (!err && out)
		out->size = 0; /* not known from this answer: callers keep their own */
	return err;
}

static int blob_copy(struct store *s, const char *from, const char *to,
		     const struct store_cond *cond)
{
	struct blob_store *bs = blob_of(s);
	struct blob_write_hdrs h;
	struct blob_req br, src;
	char source[BLOB_URL_MAX + 32];
	int err;

	/* The source URL is built as a request URL is, SAS included. */
	err = blob_req_init(&src, bs, "GET", from);
	if (!err)
		err = blob_req_finish_url(&src);
	if (!err && snprintf(source, sizeof(source), "x-ms-copy-source: %s", src.url) >=
			    (int)sizeof(source))
		err = -ENAMETOOLONG;
	if (!err)
		err = blob_req_init(&br, bs, "PUT", to);
	if (err)
		return err;
	br.extra[br.nextra++] = source;
	blob_add_write_headers(&br, &h, 0, NULL, cond);
	br.http.upload = "";
	err = blob_execute(&br);
	if (!err && br.http.status != 202 && br.http.status != 201)
		err = blob_errno(&br);
	if (err) {
		blob_log_failure(&br, err);
		return err;
	}
	/* Within one account the copy is done at once; otherwise wait for it. */
	for (int polls = 0; strcmp(br.copy_status, "pending") == 0; polls++) {
		struct timespec pause = { .tv_nsec = 100 * 1000 * 1000 };

		if (polls > 10 * 60 * 10)
			return -ETIMEDOUT;
		nanosleep(&pause, NULL);
		err = blob_req_init(&br, bs, "HEAD", to);
		if (!err)
			err = blob_execute(&br);
		if (!err && br.http.status != 200)
			err = blob_errno(&br);
		if (err)
			return err;
	}
	if (br.copy_status[0] && strcmp(br.copy_status, "success") != 0) {
		log_warn("copy of %s to %s ended: %s", from, to, br.copy_status);
		return -EIO;
	}
	return 0;
}

static int blob_remove(struct store *s, const char *path, const struct store_cond *cond)
{
	struct blob_write_hdrs h;
	struct blob_req br;
	int err;

	err = blob_req_init(&br, blob_of(s), "DELETE", path);
	if (err)
		return err;
	blob_add_write_headers(&br, &h, 0, NULL, cond);
	err = blob_execute(&br);
	if (!err && br.http.status != 202)
		err = blob_errno(&br);
	if (err && err != -ENOENT)
		blob_log_failure(&br, err);
	return err;
}

static int blob_create_root(struct store *s)
{
	struct blob_req br;
	int err;

	err = blob_req_init(&br, blob_of(s), "PUT", NULL);
	if (!err)
		err = blob_url_append(&br, "?restype=container");
	if (err)
		return err;
	br.extra[br.nextra++] = "Content-Length: 0";
	br.http.upload = "";
	err = blob_execute(&br);
	if (!err && br.http.status == 409 &&
	    strcmp(br.http.error_code, "ContainerAlreadyExists") == 0)
		return 0;
	if (!err && br.http.status != 201)
		err = blob_errno(&br);
	if (err)
		blob_log_failure(&br, err);
	return err;
}

static void blob_destroy(struct store *s)
{
	free(blob_of(s));
}

static const struct store_ops blob_ops = {
	.stat = blob_stat,
	.list = blob_list,
	.read = blob_read,
	.probe = blob_probe,
	.has_children = blob_has_children,
	.lookup = blob_lookup,
	.put = blob_put,
	.put_block = blob_put_block,
	.commit = blob_commit,
	.get_blocks = blob_get_blocks,
	.set_meta = blob_set_meta,
	.copy = blob_copy,
	.remove = blob_remove,
	.create_root = blob_create_root,
	.destroy = blob_destroy,
};

int blob_store_new(const struct blob_config *cfg, struct store **out)
{
	const struct url_container *u = cfg->url;
	struct blob_store *bs;
	const char *scheme_end;
	int err;

	bs = calloc(1, sizeof(*bs));
	if (!bs)
		return -ENOMEM;
	bs->base.ops = &blob_ops;
	bs->cred = cfg->cred;
	bs->http = cfg->http;
	snprintf(bs->account, sizeof(bs->account), "%s", u->account);
	snprintf(bs->container, sizeof(bs->container), "%s", u->container);
	err = url_endpoint(u, bs->endpoint, sizeof(bs->endpoint));
	if (err)
		goto out_free;
	if (*u->prefix &&
	    snprintf(bs->prefix, sizeof(bs->prefix), "%s/", u->prefix) >= (int)sizeof(bs->prefix)) {
		err = -ENAMETOOLONG;
		goto out_free;
	}
	/* The request path starts at the first '/' after "scheme://". */
	scheme_end = strstr(bs->endpoint, "://");
	bs->path_base_len = strcspn(scheme_end + 3, "/") + (size_t)(scheme_end + 3 - bs->endpoint);
	*out = &bs->base;
	return 0;

out_free:
	free(bs);
	return err;
}
