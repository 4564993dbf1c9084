#include "cache/store/files.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/base/log.h"
#include "auth/base/util.h"
#include "cache/store/azreq.h"
#include "cache/store/filesxml.h"
#include "cache/store/xmlstream.h"

#define FILES_LIST_PAGE 5000
#define FILES_PATH_MAX_CHARS 2048 /* the File service's bound on a path */
#define FILES_COUNT_PAGES 16      /* empty pages has_children follows at most */

struct files_store {
	struct store base;
	struct azreq_service svc; /* root: the share */
	char prefix[1024];        /* a directory of the share, no '/' around it, or "" */
};

/* A request being built: the azreq, and what its answer fills. */
struct files_req {
	struct azreq az; /* first: its callbacks get &az, which is the files_req */
	/* listing sink: a fresh parser per attempt; entries a failed attempt already
	 * delivered are not delivered again */
	struct xmlstream *parser;
	store_list_fn list_fn;
	void *list_ctx;
	size_t list_seen, list_delivered;
	/* a read pinned to this ETag, or NULL */
	const char *pinned;
	/* read from the headers of a final 2xx answer */
	struct store_attr attr;
};

static struct files_store *files_of(struct store *s)
{
	return (struct files_store *)s;
}

static struct files_req *files_req_of(void *az)
{
	return (struct files_req *)az;
}

/* Whether every component of path is a name a share can hold: 0, -ENOENT, or
 * -ENAMETOOLONG (see files.h). "" is the root: fine. */
static int files_check_path(const char *path)
{
	char name[1024];
	const char *end;
	size_t len;
	int err;

	if (util_utf8_chars(path) > FILES_PATH_MAX_CHARS)
		return -ENAMETOOLONG;
	for (; *path; path = *end ? end + 1 : end) {
		end = strchr(path, '/');
		if (!end)
			end = path + strlen(path);
		len = (size_t)(end - path);
		if (len >= sizeof(name))
			return -ENAMETOOLONG;
		memcpy(name, path, len);
		name[len] = '\0';
		err = filesxml_check_name(name);
		if (err)
			return err == -EINVAL ? -ENOENT : err;
		if (*end && !end[1])
			return -ENOENT; /* a trailing '/': no placeholders on a share */
	}
	return 0;
}

static int files_list_item(void *ctx, const struct store_entry *entry);

/* azreq_attempt_fn: what one attempt fills starts empty. */
static int files_attempt(struct azreq *az)
{
	struct files_req *fr = files_req_of(az);

	if (!fr->list_fn)
		return 0;
	xmlstream_free(fr->parser);
	fr->parser = NULL;
	fr->list_seen = 0;
	return filesxml_new(files_list_item, fr, &fr->parser);
}

/* azreq_answer_fn: the attributes of a 2xx answer, and its ETag checked against a
 * pinned read's. */
static int files_on_answer(struct azreq *az, const struct http_answer *answer)
{
	struct files_req *fr = files_req_of(az);
	struct store_attr *attr = &fr->attr;
	char value[128];
	int found;

	memset(attr, 0, sizeof(*attr));
	if (az->http.status < 200 || az->http.status >= 300)
		return 0;
	if (azreq_answer_attr(az, answer, attr) != 0)
		return -EBADMSG;
	az->bad_header = "x-ms-file-last-write-time";
	found = azreq_header(answer, "x-ms-file-last-write-time", value, sizeof(value));
	if (found < 0 ||
	    (found && filesxml_parse_time(value, &attr->mtime, &attr->mtime_nsec) != 0))
		return -EBADMSG;
	az->bad_header = "ETag";
	if (fr->pinned && !attr->etag[0])
		return -EBADMSG; /* bytes whose version cannot be told are not taken */
	az->bad_header = NULL;
	if (fr->pinned && strcmp(attr->etag, fr->pinned) != 0)
		return -ESTALE;
	return 0;
}

/* Starts a request: the share's URL, plus the path of the directory or file path
 * under the prefix when path is not NULL ("" is the prefix itself, or the share's root
 * directory). The query (if any) is appended by the caller, then azreq_execute(). */
static int files_req_init(struct files_req *fr, struct files_store *fs, const char *method,
			  const char *path)
{
	int err;

	memset(fr, 0, sizeof(*fr));
	err = azreq_init(&fr->az, &fs->svc, method);
	fr->az.on_attempt = files_attempt;
	fr->az.on_answer = files_on_answer;
	if (err || !path || (!*fs->prefix && !*path))
		return err;
	err = files_check_path(path);
	if (!err && util_utf8_chars(fs->prefix) + 1 + util_utf8_chars(path) > FILES_PATH_MAX_CHARS)
		err = -ENAMETOOLONG;
	if (!err)
		err = azreq_url_append(&fr->az, "/");
	if (!err && *fs->prefix)
		err = azreq_url_append_encoded(&fr->az, fs->prefix, true);
	if (!err && *fs->prefix && *path)
		err = azreq_url_append(&fr->az, "/");
	if (!err)
		err = azreq_url_append_encoded(&fr->az, path, true);
	return err;
}

/* Starts a HEAD of path: Get File Properties, or Get Directory Properties when dir. */
static int files_head_init(struct files_req *fr, struct files_store *fs, const char *path,
			   bool dir)
{
	int err = files_req_init(fr, fs, "HEAD", path);

	if (!err && dir)
		err = azreq_url_append(&fr->az, "?restype=directory");
	return err;
}

/* What a HEAD that ran (err: what running it returned) came to: 0 with *out filled,
 * or -errno (logged, but for -ENOENT). */
static int files_head_result(struct files_req *fr, int err, bool dir, struct store_attr *out)
{
	if (!err && fr->az.http.status != 200)
		err = azreq_errno(&fr->az);
	if (err) {
		if (err != -ENOENT)
			azreq_log_failure(&fr->az, err);
		return err;
	}
	*out = fr->attr;
	out->is_dir = dir;
	if (dir)
		out->size = 0;
	return 0;
}

/* Get File Properties, then, when there is no file, Get Directory Properties. */
static int files_stat(struct store *s, const char *path, struct store_attr *out)
{
	struct files_store *fs = files_of(s);
	struct files_req fr;
	int err;

	if (!*path)
		return -ENOENT; /* the root: store.h's callers list it instead */
	err = files_head_init(&fr, fs, path, false);
	if (err)
		return err;
	err = files_head_result(&fr, azreq_execute(&fr.az), false, out);
	if (err != -ENOENT || strcmp(fr.az.http.error_code, "ParentNotFound") == 0)
		return err;
	err = files_head_init(&fr, fs, path, true);
	if (err)
		return err;
	return files_head_result(&fr, azreq_execute(&fr.az), true, out);
}

/* Both HEADs at once: one round trip. A share holds a file or a directory at a path,
 * never both. */
static int files_lookup(struct store *s, const char *path, struct store_attr *out)
{
	struct files_store *fs = files_of(s);
	struct files_req *file, *dir;
	struct http_request *reqs[2];
	int results[2], err;

	if (!*path)
		return -ENOENT;
	file = calloc(2, sizeof(*file));
	if (!file)
		return -ENOMEM;
	dir = file + 1;
	err = files_head_init(file, fs, path, false);
	if (!err)
		err = azreq_finish_url(&file->az);
	if (!err)
		err = files_head_init(dir, fs, path, true);
	if (!err)
		err = azreq_finish_url(&dir->az);
	if (err)
		goto out_free;
	reqs[0] = &file->az.http;
	reqs[1] = &dir->az.http;
	err = http_execute_all(fs->svc.http, reqs, 2, results);
	if (err)
		goto out_free;
	err = files_head_result(file, results[0], false, out);
	if (err == -ENOENT)
		err = files_head_result(dir, results[1], true, out);
out_free:
	free(file);
	return err;
}

static int files_list_item(void *ctx, const struct store_entry *entry)
{
	struct files_req *fr = ctx;

	if (fr->list_seen++ < fr->list_delivered)
		return 0; /* delivered by an earlier attempt of this page */
	fr->list_delivered++;
	return fr->list_fn(fr->list_ctx, entry);
}

static int files_list_body(void *ctx, const char *data, size_t len)
{
	return xmlstream_feed(files_req_of(ctx)->parser, data, len);
}

/* Starts a List Directories and Files request of directory dir, from marker, at most
 * max_results entries, each given to fn. */
static int files_list_init(struct files_req *fr, struct files_store *fs, const char *dir,
			   const char *marker, int max_results, store_list_fn fn, void *ctx)
{
	char number[32];
	int err;

	err = files_req_init(fr, fs, "GET", dir);
	if (err)
		return err;
	fr->list_fn = fn;
	fr->list_ctx = ctx;
	fr->az.http.body_fn = files_list_body;
	fr->az.extra[fr->az.nextra++] = "x-ms-file-extended-info: true";
	snprintf(number, sizeof(number), "%d", max_results);
	err = azreq_url_append(&fr->az, "?restype=directory&comp=list"
					"&include=Timestamps%2CETag&maxresults=");
	if (!err)
		err = azreq_url_append(&fr->az, number);
	if (!err && marker && *marker)
		err = azreq_url_append(&fr->az, "&marker=");
	if (!err && marker && *marker)
		err = azreq_url_append_encoded(&fr->az, marker, false);
	return err;
}

/* Runs a listing started by files_list_init(): 0 with next_marker filled, what the
 * callback stopped it with, or -errno (logged, but for -ENOENT). */
static int files_list_run(struct files_req *fr, char *next_marker, size_t next_len)
{
	int err = azreq_execute(&fr->az);

	if (!err && fr->az.http.status != 200)
		err = azreq_errno(&fr->az);
	if (!err)
		err = xmlstream_finish(fr->parser, next_marker, next_len);
	if ((err == -EBADMSG || err == -ENAMETOOLONG) && fr->az.http.status == 200 &&
	    !fr->az.bad_header)
		log_warn("GET %s: the listing is not a valid one: %s", fr->az.url, strerror(-err));
	else if (err < 0 && err != -ENOENT)
		azreq_log_failure(&fr->az, err);
	xmlstream_free(fr->parser);
	fr->parser = NULL;
	return err;
}

static int files_list(struct store *s, const char *dir, const char *marker, store_list_fn fn,
		      void *ctx, char *next_marker, size_t next_len)
{
	struct files_req fr;
	int err;

	err = files_list_init(&fr, files_of(s), dir, marker, FILES_LIST_PAGE, fn, ctx);
	return err ? err : files_list_run(&fr, next_marker, next_len);
}

static int files_count_item(void *ctx, const struct store_entry *entry)
{
	(void)entry;
	(*(size_t *)ctx)++;
	return 0;
}

/* A one-entry listing (following empty pages, which the service may send). A
 * directory that is not there has no children. */
static int files_has_children(struct store *s, const char *dir)
{
	char marker[XMLSTREAM_TEXT_MAX + 1] = "";
	struct files_req fr;
	size_t count = 0;
	int err;

	for (int page = 0; page < FILES_COUNT_PAGES; page++) {
		err = files_list_init(&fr, files_of(s), dir, marker, 1, files_count_item, &count);
		if (!err)
			err = files_list_run(&fr, marker, sizeof(marker));
		if (err == -ENOENT)
			return 0;
		if (err || count > 0 || !marker[0])
			return err ? err : count > 0;
	}
	log_warn("%s: %d listing pages in a row without an entry", fr.az.url, FILES_COUNT_PAGES);
	return -EIO;
}

static ssize_t files_read(struct store *s, const char *path, const char *etag,
			  uint64_t offset, size_t len, void *buf)
{
	struct files_store *fs = files_of(s);
	struct store_attr now;
	struct files_req fr;
	char range[80];
	int err;

	if (len == 0)
		return 0;
	err = files_req_init(&fr, fs, "GET", path);
	if (err)
		return err;
	snprintf(range, sizeof(range), "x-ms-range: bytes=%" PRIu64 "-%" PRIu64, offset,
		 offset + len - 1);
	fr.az.extra[fr.az.nextra++] = range;
	fr.pinned = etag && *etag ? etag : NULL;
	fr.az.http.body_buf = buf;
	fr.az.http.body_cap = len;
	err = azreq_execute(&fr.az);
	if (err) {
		if (err != -ESTALE)
			azreq_log_failure(&fr.az, err);
		return err;
	}
	if (fr.az.http.status == 416 && fr.pinned) {
		/* The end of this version, or of a shorter one that replaced it? */
		err = files_head_init(&fr, fs, path, false);
		if (!err)
			err = files_head_result(&fr, azreq_execute(&fr.az), false, &now);
		if (err == -ENOENT || (!err && strcmp(now.etag, etag) != 0))
			return -ESTALE;
		return err;
	}
	return azreq_read_result(&fr.az, offset, fr.pinned != NULL);
}

/* Runs a probe's request, bounded to a few attempts and 10 s: 0 when an answer came,
 * else -errno with a line for a person in errbuf (as when the credential is refused). */
static int files_probe_run(struct files_req *fr, char *errbuf, size_t errlen)
{
	char what[128];
	int err;

	fr->az.http.max_attempts = 3;
	fr->az.http.timeout_ms = 10000;
	err = azreq_execute(&fr->az);
	snprintf(what, sizeof(what), "read share '%s'", fr->az.svc->root);
	return azreq_probe_common(&fr->az, err, what, errbuf, errlen);
}

/* What the answer to a probe's Get Share Properties, or Get Directory Properties of
 * the prefix when dir, says: 0, or -errno with a line for a person in errbuf. */
static int files_probe_answer(const struct files_store *fs, const struct files_req *fr,
			      bool dir, char *errbuf, size_t errlen)
{
	const struct azreq_service *svc = &fs->svc;
	const char *code = fr->az.http.error_code;
	long status = fr->az.http.status;

	if (status == 200)
		return 0;
	if (status == 403) {
		util_errf(errbuf, errlen,
			  "access denied to share '%s' (%s): the %s credential may not read it; "
			  "a SAS needs the read and list permissions",
			  svc->root, code, auth_kind_name(auth_cred_kind(svc->cred)));
		return -EACCES;
	}
	if (status == 404 && strcmp(code, "ShareNotFound") == 0) {
		util_errf(errbuf, errlen,
			  "share '%s' not found in account '%s' at %s; create it or check the URL",
			  svc->root, svc->account, svc->endpoint);
		return -ENOENT;
	}
	if (status == 404 && dir) {
		util_errf(errbuf, errlen,
			  "directory '%s' not found in share '%s' at %s; create it or check the "
			  "URL",
			  fs->prefix, svc->root, svc->endpoint);
		return -ENOENT;
	}
	util_errf(errbuf, errlen, "unexpected answer from %s: HTTP %ld %s", svc->endpoint,
		  status, code);
	return -EIO;
}

/* Get Share Properties, then Get Directory Properties of the prefix, if any. */
static int files_probe(struct store *s, char *errbuf, size_t errlen)
{
	struct files_store *fs = files_of(s);
	enum auth_kind kind = auth_cred_kind(fs->svc.cred);
	struct files_req fr;
	int err;

	if (kind == AUTH_ANONYMOUS || kind == AUTH_BEARER) {
		util_errf(errbuf, errlen,
			  "share '%s' needs a shared key or a SAS: the File service takes no %s "
			  "requests (AZURE_STORAGE_KEY, account_key_file=, sas_file=, "
			  "AZURE_STORAGE_SAS_TOKEN)",
			  fs->svc.root, kind == AUTH_ANONYMOUS ? "anonymous" : "bearer token");
		return -EACCES;
	}
	err = files_req_init(&fr, fs, "GET", NULL);
	if (!err)
		err = azreq_url_append(&fr.az, "?restype=share");
	if (err) {
		util_errf(errbuf, errlen, "the share URL is too long");
		return err;
	}
	err = files_probe_run(&fr, errbuf, errlen);
	if (!err)
		err = files_probe_answer(fs, &fr, false, errbuf, errlen);
	if (err || !*fs->prefix)
		return err;
	err = files_head_init(&fr, fs, "", true);
	if (err) {
		util_errf(errbuf, errlen, "the share URL is too long");
		return err;
	}
	err = files_probe_run(&fr, errbuf, errlen);
	return err ? err : files_probe_answer(fs, &fr, true, errbuf, errlen);
}

/* Create Share; one that exists already is fine. */
static int files_create_root(struct store *s)
{
	return azreq_create_root(&files_of(s)->svc, "?restype=share", "ShareAlreadyExists");
}

/* Writes: not in this version (files.h). ---------------------------------------- */

static int files_put(struct store *s, const char *path, const void *data, size_t len,
		     const struct store_meta *meta, const struct store_cond *cond,
		     struct store_attr *out)
{
	(void)s, (void)path, (void)data, (void)len, (void)meta, (void)cond, (void)out;
	return -EROFS;
}

static int files_put_block(struct store *s, const char *path, const char *block_id,
			   const void *data, size_t len)
{
	(void)s, (void)path, (void)block_id, (void)data, (void)len;
	return -EROFS;
}

static int files_commit(struct store *s, const char *path, const char *const *block_ids,
			size_t nblocks, const struct store_meta *meta,
			const struct store_cond *cond, struct store_attr *out)
{
	(void)s, (void)path, (void)block_ids, (void)nblocks, (void)meta, (void)cond, (void)out;
	return -EROFS;
}

static int files_get_blocks(struct store *s, const char *path, const char *etag,
			    struct store_block **out, size_t *nblocks)
{
	(void)s, (void)path, (void)etag, (void)out, (void)nblocks;
	return -EROFS;
}

static int files_set_meta(struct store *s, const char *path, const struct store_meta *meta,
			  const struct store_cond *cond, struct store_attr *out)
{
	(void)s, (void)path, (void)meta, (void)cond, (void)out;
	return -EROFS;
}

static int files_copy(struct store *s, const char *from, const char *to,
		      const struct store_cond *cond)
{
	(void)s, (void)from, (void)to, (void)cond;
	return -EROFS;
}

static int files_remove(struct store *s, const char *path, const struct store_cond *cond)
{
	(void)s, (void)path, (void)cond;
	return -EROFS;
}

static void files_destroy(struct store *s)
{
	free(files_of(s));
}

static const struct store_ops files_ops = {
	.stat = files_stat,
	.list = files_list,
	.read = files_read,
	.probe = files_probe,
	.has_children = files_has_children,
	.lookup = files_lookup,
	.put = files_put,
	.put_block = files_put_block,
	.commit = files_commit,
	.get_blocks = files_get_blocks,
	.set_meta = files_set_meta,
	.copy = files_copy,
	.remove = files_remove,
	.create_root = files_create_root,
	.destroy = files_destroy,
};

int files_store_new(const struct files_config *cfg, struct store **out)
{
	const struct url_container *u = cfg->url;
	struct files_store *fs;
	int err;

	err = files_check_path(u->prefix);
	if (err)
		return err == -ENOENT ? -EINVAL : err;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->base.ops = &files_ops;
	err = azreq_service_init(&fs->svc, u, cfg->cred, cfg->http,
				 "x-ms-version: " FILES_API_VERSION);
	if (err) {
		free(fs);
		return err;
	}
	snprintf(fs->prefix, sizeof(fs->prefix), "%s", u->prefix);
	*out = &fs->base;
	return 0;
}
