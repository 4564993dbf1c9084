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
#include "cache/store/azreq.h"
#include "cache/store/listxml.h"

#define BLOB_API_VERSION "2023-11-03"
#define BLOB_LIST_PAGE 5000
#define BLOB_NAME_MAX_CHARS 1024 /* Azure's bound on a blob name */

struct blob_store {
	struct store base;
	struct azreq_service svc; /* root: the container */
	char prefix[1024];        /* blob name prefix with trailing '/', or "" */
};

/* A request being built: the azreq, and what its answer fills. */
struct blob_req {
	struct azreq az; /* first: its callbacks get &az, which is the blob_req */
	/* listing sink: a fresh parser per attempt; entries a failed attempt already
	 * delivered are not delivered again */
	struct xmlstream *parser;
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
};

static struct blob_store *blob_of(struct store *s)
{
	return (struct blob_store *)s;
}

static struct blob_req *blob_req_of(void *az)
{
	return (struct blob_req *)az;
}

static int blob_list_item(void *ctx, const struct listxml_item *item);
static int blob_on_answer(struct azreq *az, const struct http_answer *answer);

/* azreq_attempt_fn: what one attempt fills starts empty. */
static int blob_attempt(struct azreq *az)
{
	struct blob_req *br = blob_req_of(az);
	int err = 0;

	br->body.len = 0;
	if (br->list_fn) {
		xmlstream_free(br->parser);
		br->parser = NULL;
		br->list_seen = 0;
		err = listxml_new(blob_list_item, br, &br->parser);
	}
	return err;
}

/* Starts a request: the container URL, plus "/" and the blob name when blob_path is
 * not NULL. The query (if any) is appended by the caller, then azreq_execute(). */
static int blob_req_init(struct blob_req *br, struct blob_store *bs, const char *method,
			 const char *blob_path)
{
	int err;

	memset(br, 0, sizeof(*br));
	err = azreq_init(&br->az, &bs->svc, method);
	br->az.on_attempt = blob_attempt;
	br->az.on_answer = blob_on_answer;
	if (err || !blob_path)
		return err;
	if (util_utf8_chars(bs->prefix) + util_utf8_chars(blob_path) > BLOB_NAME_MAX_CHARS)
		return -ENAMETOOLONG;
	err = azreq_url_append(&br->az, "/");
	if (!err)
		err = azreq_url_append_encoded(&br->az, bs->prefix, true);
	if (!err)
		err = azreq_url_append_encoded(&br->az, blob_path, true);
	return err;
}

/* The attributes a 2xx answer carries: 0, or -EBADMSG with br->az.bad_header set. A
 * malformed ferry_mtime is ignored, as in listings: Last-Modified stands. */
static int blob_attr_from_answer(struct blob_req *br, const struct http_answer *answer)
{
	struct store_attr *out = &br->attr;
	char value[128];
	int found;

	if (azreq_answer_attr(&br->az, answer, out) != 0)
		return -EBADMSG;
	br->az.bad_header = "x-ms-meta-hdi_isfolder";
	found = azreq_header(answer, "x-ms-meta-hdi_isfolder", value, sizeof(value));
	if (found < 0)
		return -EBADMSG;
	out->is_dir = found && strcasecmp(value, "true") == 0;
	br->az.bad_header = "x-ms-meta-is_symlink";
	found = azreq_header(answer, "x-ms-meta-is_symlink", value, sizeof(value));
	if (found < 0)
		return -EBADMSG;
	out->is_symlink = found && strcasecmp(value, "true") == 0;
	if (azreq_header(answer, "x-ms-meta-ferry_mtime", value, sizeof(value)) > 0)
		listxml_parse_mtime(value, &out->mtime, &out->mtime_nsec);
	br->az.bad_header = "x-ms-copy-status";
	found = azreq_header(answer, "x-ms-copy-status", br->copy_status, sizeof(br->copy_status));
	if (found < 0)
		return -EBADMSG;
	br->az.bad_header = NULL;
	return 0;
}

/* azreq_answer_fn: what the final answer's headers say, read while they exist. */
static int blob_on_answer(struct azreq *az, const struct http_answer *answer)
{
	struct blob_req *br = blob_req_of(az);

	memset(&br->attr, 0, sizeof(br->attr));
	br->copy_status[0] = '\0';
	if (az->http.status < 200 || az->http.status >= 300)
		return 0;
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
		err = azreq_execute(&br.az);
	if (err) {
		azreq_log_failure(&br.az, err);
		return err;
	}
	if (br.az.http.status == 200) {
		*out = br.attr;
		return 0;
	}
	err = azreq_errno(&br.az);
	if (err != -ENOENT)
		azreq_log_failure(&br.az, err);
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
	return xmlstream_feed(blob_req_of(ctx)->parser, data, len);
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
	err = azreq_url_append(&br->az, delimited ? "?restype=container&comp=list&delimiter=%2F"
						    "&include=metadata&maxresults="
						  : "?restype=container&comp=list&maxresults=");
	if (!err)
		err = azreq_url_append(&br->az, number);
	if (!err && *list_prefix)
		err = azreq_url_append(&br->az, "&prefix=");
	if (!err && *list_prefix)
		err = azreq_url_append_encoded(&br->az, list_prefix, false);
	if (!err && marker && *marker)
		err = azreq_url_append(&br->az, "&marker=");
	if (!err && marker && *marker)
		err = azreq_url_append_encoded(&br->az, marker, false);
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
	br.az.http.body_fn = blob_list_body;
	err = azreq_execute(&br.az);
	if (err > 0)
		goto out_free; /* the caller's callback stopped the listing */
	if (err)
		goto out_log;
	if (br.az.http.status != 200) {
		err = azreq_errno(&br.az);
		goto out_log;
	}
	err = xmlstream_finish(br.parser, next_marker, next_len);
	if (err == -EBADMSG)
		log_warn("GET %s: the listing is not valid XML", br.az.url);
	goto out_free;
out_log:
	azreq_log_failure(&br.az, err);
out_free:
	xmlstream_free(br.parser);
	return err;
}

static ssize_t blob_read(struct store *s, const char *path, const char *etag, uint64_t offset,
			 size_t len, void *buf)
{
	struct blob_req br;
	char range[80], if_match[STORE_ETAG_MAX + 16];
	int err;

	if (len == 0)
		return 0;
	err = blob_req_init(&br, blob_of(s), "GET", path);
	if (err)
		return err;
	snprintf(range, sizeof(range), "x-ms-range: bytes=%" PRIu64 "-%" PRIu64, offset,
		 offset + len - 1);
	br.az.extra[br.az.nextra++] = range;
	if (etag && *etag) {
		snprintf(if_match, sizeof(if_match), "If-Match: %s", etag);
		br.az.extra[br.az.nextra++] = if_match;
	}
	br.az.http.body_buf = buf;
	br.az.http.body_cap = len;
	err = azreq_execute(&br.az);
	if (err) {
		azreq_log_failure(&br.az, err);
		return err;
	}
	return azreq_read_result(&br.az, offset, etag && *etag);
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
	br->az.http.body_fn = blob_list_body;
	return err ? err : azreq_finish_url(&br->az);
}

/* What a finished listing request came to: 0, or -errno (logged). */
static int blob_list_result(struct blob_req *br, int err)
{
	if (!err && br->az.http.status != 200)
		err = azreq_errno(&br->az);
	if (err)
		azreq_log_failure(&br->az, err);
	xmlstream_free(br->parser);
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
		err = http_execute(br.az.svc->http, &br.az.http);
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
		err = azreq_finish_url(&head->az);
	if (!err)
		err = blob_count_init(list, bs, path, 1, &count);
	if (err) {
		free(head); /* nothing sent: no parser yet (each attempt makes its own) */
		return err;
	}
	reqs[0] = &head->az.http;
	reqs[1] = &list->az.http;
	err = http_execute_all(bs->svc.http, reqs, 2, results);
	err = blob_list_result(list, err ? err : results[1]);
	if (!err) {
		err = results[0];
		if (!err && head->az.http.status == 200)
			*out = head->attr;
		else if (!err)
			err = azreq_errno(&head->az);
		if (err && err != -ENOENT)
			azreq_log_failure(&head->az, err);
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
	const struct azreq_service *svc = &bs->svc;
	const char *code;
	struct blob_req br;
	char what[128];
	size_t count = 0;
	int err;

	err = blob_count_init(&br, bs, "", 1, &count);
	if (err) {
		util_errf(errbuf, errlen, "the container URL is too long");
		return err;
	}
	br.az.http.max_attempts = 3;
	br.az.http.timeout_ms = 10000;
	err = http_execute(svc->http, &br.az.http);
	xmlstream_free(br.parser);
	br.parser = NULL;
	snprintf(what, sizeof(what), "list container '%s'", svc->root);
	err = azreq_probe_common(&br.az, err, what, errbuf, errlen);
	if (err)
		return err;
	code = br.az.http.error_code;
	if (br.az.http.status == 200)
		return 0;
	if (br.az.http.status == 403) {
		util_errf(errbuf, errlen,
			  "access denied to container '%s' (%s): the %s credential may not list "
			  "it; a SAS needs the read and list permissions",
			  svc->root, code, auth_kind_name(auth_cred_kind(svc->cred)));
		return -EACCES;
	}
	if (br.az.http.status == 404 && strcmp(code, "ContainerNotFound") == 0) {
		util_errf(errbuf, errlen,
			  "container '%s' not found in account '%s' at %s; create it or check "
			  "the URL",
			  svc->root, svc->account, svc->endpoint);
		return -ENOENT;
	}
	if (br.az.http.status == 404 && auth_cred_kind(svc->cred) == AUTH_ANONYMOUS) {
		util_errf(errbuf, errlen,
			  "container '%s' not found or not public at %s; give a credential "
			  "(AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, ...) for a private "
			  "container",
			  svc->root, svc->endpoint);
		return -ENOENT;
	}
	util_errf(errbuf, errlen, "unexpected answer from %s: HTTP %ld %s", svc->endpoint,
		  br.az.http.status, code);
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
	br->az.extra[br->az.nextra++] = h->length;
	if (meta && meta->is_dir)
		br->az.extra[br->az.nextra++] = "x-ms-meta-hdi_isfolder: true";
	if (meta && meta->is_symlink)
		br->az.extra[br->az.nextra++] = "x-ms-meta-is_symlink: true";
	if (meta && meta->has_mtime) {
		snprintf(h->mtime, sizeof(h->mtime), "x-ms-meta-ferry_mtime: %lld.%09u",
			 (long long)meta->mtime, meta->mtime_nsec);
		br->az.extra[br->az.nextra++] = h->mtime;
	}
	if (cond && cond->if_match) {
		snprintf(h->if_match, sizeof(h->if_match), "If-Match: %s", cond->if_match);
		br->az.extra[br->az.nextra++] = h->if_match;
	}
	if (cond && cond->if_none)
		br->az.extra[br->az.nextra++] = "If-None-Match: *";
}

/* The outcome of a write: 0 and *out filled when the service answered want. */
static int blob_write_result(struct blob_req *br, int err, long want,
			     const struct store_meta *meta, uint64_t size, struct store_attr *out)
{
	if (!err && br->az.http.status != want)
		err = azreq_errno(&br->az);
	if (err) {
		azreq_log_failure(&br->az, err);
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
	br.az.extra[br.az.nextra++] = "x-ms-blob-type: BlockBlob";
	blob_add_write_headers(&br, &h, len, meta, cond);
	br.az.http.upload = data;
	br.az.http.upload_len = len;
	err = azreq_execute(&br.az);
	return blob_write_result(&br, err, 201, meta, len, out);
}

static int blob_put_block(struct store *s, const char *path, const char *block_id,
			  uint64_t offset, const void *data, size_t len)
{
	struct blob_write_hdrs h;
	struct blob_req br;
	int err;

	(void)offset; /* the block list says where each block goes */
	err = blob_req_init(&br, blob_of(s), "PUT", path);
	if (!err)
		err = azreq_url_append(&br.az, "?comp=block&blockid=");
	if (!err)
		err = azreq_url_append_encoded(&br.az, block_id, false);
	if (err)
		return err;
	blob_add_write_headers(&br, &h, len, NULL, NULL);
	br.az.http.upload = data;
	br.az.http.upload_len = len;
	err = azreq_execute(&br.az);
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
		err = azreq_url_append(&br.az, "?comp=blocklist");
	if (err)
		goto out_free;
	blob_add_write_headers(&br, &h, len, meta, cond);
	br.az.http.upload = body;
	br.az.http.upload_len = len;
	err = azreq_execute(&br.az);
	err = blob_write_result(&br, err, 201, meta, 0, out);
out_free:
	free(body);
	return err;
}

static int blob_body_append(void *ctx, const char *data, size_t len)
{
	return util_buf_append(&blob_req_of(ctx)->body, data, len);
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
		err = azreq_url_append(&br.az, "?comp=blocklist&blocklisttype=committed");
	if (err)
		return err;
	br.az.http.body_fn = blob_body_append;
	br.body.limit = 64u << 20;
	err = azreq_execute(&br.az);
	if (!err && br.az.http.status != 200)
		err = azreq_errno(&br.az);
	if (err == -ENOENT && etag)
		err = -ESTALE;
	if (!err && etag && strcmp(br.attr.etag, etag) != 0)
		err = -ESTALE;
	if (!err)
		err = blob_parse_blocks(&br.body, out, nblocks);
	else if (err != -ESTALE)
		azreq_log_failure(&br.az, err);
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
		err = azreq_url_append(&br.az, "?comp=metadata");
	if (err)
		return err;
	blob_add_write_headers(&br, &h, 0, meta, cond);
	br.az.http.upload = "";
	err = azreq_execute(&br.az);
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
	char source[AZREQ_URL_MAX + 32];
	int err;

	/* The source URL is built as a request URL is, SAS included. */
	err = blob_req_init(&src, bs, "GET", from);
	if (!err)
		err = azreq_finish_url(&src.az);
	if (!err && snprintf(source, sizeof(source), "x-ms-copy-source: %s", src.az.url) >=
			    (int)sizeof(source))
		err = -ENAMETOOLONG;
	if (!err)
		err = blob_req_init(&br, bs, "PUT", to);
	if (err)
		return err;
	br.az.extra[br.az.nextra++] = source;
	blob_add_write_headers(&br, &h, 0, NULL, cond);
	br.az.http.upload = "";
	err = azreq_execute(&br.az);
	if (!err && br.az.http.status != 202 && br.az.http.status != 201)
		err = azreq_errno(&br.az);
	if (err) {
		azreq_log_failure(&br.az, err);
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
			err = azreq_execute(&br.az);
		if (!err && br.az.http.status != 200)
			err = azreq_errno(&br.az);
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
	err = azreq_execute(&br.az);
	if (!err && br.az.http.status != 202)
		err = azreq_errno(&br.az);
	if (err && err != -ENOENT)
		azreq_log_failure(&br.az, err);
	return err;
}

static int blob_create_root(struct store *s)
{
	return azreq_create_root(&blob_of(s)->svc, "?restype=container", "ContainerAlreadyExists");
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
	int err;

	bs = calloc(1, sizeof(*bs));
	if (!bs)
		return -ENOMEM;
	bs->base.ops = &blob_ops;
	err = azreq_service_init(&bs->svc, u, cfg->cred, cfg->http,
				 "x-ms-version: " BLOB_API_VERSION);
	if (err)
		goto out_free;
	if (*u->prefix &&
	    snprintf(bs->prefix, sizeof(bs->prefix), "%s/", u->prefix) >= (int)sizeof(bs->prefix)) {
		err = -ENAMETOOLONG;
		goto out_free;
	}
	*out = &bs->base;
	return 0;

out_free:
	free(bs);
	return err;
}
