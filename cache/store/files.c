#include "cache/store/files.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "auth/base/log.h"
#include "auth/base/util.h"
#include "cache/store/azreq.h"
#include "cache/store/filesxml.h"
#include "cache/store/xmlstream.h"

#define FILES_LIST_PAGE 5000
#define FILES_PATH_MAX_CHARS 2048 /* the File service's bound on a path */
#define FILES_COUNT_PAGES 16      /* empty pages has_children follows at most */

#define FILES_PATH_BYTES 8192        /* a path of 2,048 characters, UTF-8 */
#define FILES_SIZE_MAX ((uint64_t)4 << 40) /* the largest file a share holds */

/* One block of an upload: where it lies in the upload's hidden file. */
struct files_block {
	char id[STORE_BLOCK_ID_MAX];
	uint64_t offset;
	size_t len;
};

/* The blocks put for a path since its last commit, in a hidden file beside it. */
struct files_upload {
	struct files_upload *next; /* guarded by files_store.lock */
	char *path;
	char tmp[FILES_PATH_BYTES];
	pthread_mutex_t lock;      /* guards the rest */
	bool created;
	uint64_t size;             /* of the hidden file */
	struct files_block *blocks;
	size_t nblocks;
};

struct files_store {
	struct store base;
	struct azreq_service svc; /* root: the share */
	char prefix[1024];        /* a directory of the share, no '/' around it, or "" */
	uint64_t nonce;           /* random: this store's hidden names */
	atomic_uint tmp_seq;
	pthread_mutex_t lock;     /* guards uploads */
	struct files_upload *uploads;
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
	if (strncmp(entry->name, FILES_TMP_PREFIX, strlen(FILES_TMP_PREFIX)) == 0)
		return 0; /* content on its way (files.h) */
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

/* Writes ---------------------------------------------------------------------------- */

/* A Put Range carries at most this much (the service's bound). */
#define FILES_RANGE_MAX ((size_t)4 << 20)

/* Storage for the header lines of one write request; lives as long as its files_req. */
struct files_hdrs {
	char length[48];
	char range[80];
	char mtime[80];
	char source[AZREQ_URL_MAX + 48];
};

/* "x-ms-file-last-write-time: 2024-01-02T03:04:05.1234567Z" (the service keeps 100 ns). */
static void files_mtime_header(const struct store_meta *meta, char *out, size_t len)
{
	struct tm tm;
	time_t t = (time_t)meta->mtime;

	gmtime_r(&t, &tm);
	snprintf(out, len, "x-ms-file-last-write-time: %04d-%02d-%02dT%02d:%02d:%02d.%07uZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 meta->mtime_nsec / 100);
}

/* Runs a write request with no body: 0 when the service answered want, else -errno
 * (logged, but for the codes the caller expects: -ENOENT, -EEXIST). */
static int files_write_run(struct files_req *fr, const void *data, size_t len, long want,
			   struct files_hdrs *h)
{
	int err;

	snprintf(h->length, sizeof(h->length), "Content-Length: %zu", len);
	fr->az.extra[fr->az.nextra++] = h->length;
	fr->az.http.upload = data ? data : "";
	fr->az.http.upload_len = len;
	err = azreq_execute(&fr->az);
	if (!err && fr->az.http.status != want) {
		err = azreq_errno(&fr->az);
		if (strcmp(fr->az.http.error_code, "DirectoryNotEmpty") == 0)
			err = -ENOTEMPTY;
	}
	if (err && err != -ENOENT && err != -EEXIST && err != -ENOTEMPTY)
		azreq_log_failure(&fr->az, err);
	return err;
}

/* Create File of size bytes (zeros), with meta's time when it has one. */
static int files_create(struct files_store *fs, const char *path, uint64_t size,
			const struct store_meta *meta)
{
	char length[64];
	struct files_hdrs h;
	struct files_req fr;
	int err = files_req_init(&fr, fs, "PUT", path);

	if (err)
		return err;
	snprintf(length, sizeof(length), "x-ms-content-length: %" PRIu64, size);
	fr.az.extra[fr.az.nextra++] = "x-ms-type: file";
	fr.az.extra[fr.az.nextra++] = length;
	if (meta && meta->has_mtime) {
		files_mtime_header(meta, h.mtime, sizeof(h.mtime));
		fr.az.extra[fr.az.nextra++] = h.mtime;
	}
	return files_write_run(&fr, NULL, 0, 201, &h);
}

/* Set File Properties (or Set Directory Properties when dir): the size when size is
 * not UINT64_MAX, meta's time when it has one. *out (may be NULL) from the answer. */
static int files_set_props(struct files_store *fs, const char *path, bool dir, uint64_t size,
			   const struct store_meta *meta, struct store_attr *out)
{
	char length[64];
	struct files_hdrs h;
	struct files_req fr;
	int err = files_req_init(&fr, fs, "PUT", path);

	if (!err)
		err = azreq_url_append(&fr.az, dir ? "?restype=directory&comp=properties"
						   : "?comp=properties");
	if (err)
		return err;
	if (size != UINT64_MAX) {
		snprintf(length, sizeof(length), "x-ms-content-length: %" PRIu64, size);
		fr.az.extra[fr.az.nextra++] = length;
	}
	if (meta && meta->has_mtime) {
		files_mtime_header(meta, h.mtime, sizeof(h.mtime));
		fr.az.extra[fr.az.nextra++] = h.mtime;
	}
	err = files_write_run(&fr, NULL, 0, 200, &h);
	if (!err && out) {
		*out = fr.attr;
		out->size = 0;
		out->is_dir = dir;
	}
	return err;
}

/* Writes len bytes at offset of the file at path, in Put Ranges of at most 4 MiB, up to
 * HTTP_BATCH_MAX at once. */
static int files_put_ranges(struct files_store *fs, const char *path, uint64_t offset,
			    const unsigned char *data, size_t len)
{
	struct {
		struct files_req fr;
		struct files_hdrs h;
	} *batch = calloc(HTTP_BATCH_MAX, sizeof(*batch));
	struct http_request *reqs[HTTP_BATCH_MAX];
	int results[HTTP_BATCH_MAX], err = batch ? 0 : -ENOMEM;
	size_t done = 0;

	while (!err && done < len) {
		size_t n = 0;

		for (; n < HTTP_BATCH_MAX && done < len && !err; n++) {
			struct files_req *fr = &batch[n].fr;
			struct files_hdrs *h = &batch[n].h;
			size_t part = len - done < FILES_RANGE_MAX ? len - done : FILES_RANGE_MAX;

			err = files_req_init(fr, fs, "PUT", path);
			if (!err)
				err = azreq_url_append(&fr->az, "?comp=range");
			if (!err)
				err = azreq_finish_url(&fr->az);
			snprintf(h->range, sizeof(h->range),
				 "x-ms-range: bytes=%" PRIu64 "-%" PRIu64, offset + done,
				 offset + done + part - 1);
			snprintf(h->length, sizeof(h->length), "Content-Length: %zu", part);
			fr->az.extra[fr->az.nextra++] = h->range;
			fr->az.extra[fr->az.nextra++] = "x-ms-write: update";
			fr->az.extra[fr->az.nextra++] = h->length;
			fr->az.http.upload = data + done;
			fr->az.http.upload_len = part;
			reqs[n] = &fr->az.http;
			done += part;
		}
		if (!err)
			err = http_execute_all(fs->svc.http, reqs, n, results);
		for (size_t i = 0; i < n && !err; i++) {
			struct files_req *fr = &batch[i].fr;

			err = results[i];
			if (!err && fr->az.http.status != 201)
				err = azreq_errno(&fr->az);
			if (err)
				azreq_log_failure(&fr->az, err);
		}
	}
	free(batch);
	return err;
}

/* Delete File (or Delete Directory when dir). */
static int files_delete(struct files_store *fs, const char *path, bool dir)
{
	struct files_req fr;
	int err = files_req_init(&fr, fs, "DELETE", path);

	if (!err && dir)
		err = azreq_url_append(&fr.az, "?restype=directory");
	if (err)
		return err;
	fr.az.http.upload = NULL;
	err = azreq_execute(&fr.az);
	if (!err && fr.az.http.status != 202) {
		err = azreq_errno(&fr.az);
		if (strcmp(fr.az.http.error_code, "DirectoryNotEmpty") == 0)
			err = -ENOTEMPTY;
		else if (strcmp(fr.az.http.error_code, "ResourceTypeMismatch") == 0)
			err = dir ? -ENOTDIR : -EISDIR;
		if (err != -ENOENT && err != -ENOTEMPTY && err != -EISDIR && err != -ENOTDIR)
			azreq_log_failure(&fr.az, err);
	}
	return err;
}

/* cond's If-Match, which the File service does not take: the ETag of the file at path
 * is compared first, then the change is made (not one atomic step; see files.h). */
static int files_check_cond(struct files_store *fs, const char *path,
			    const struct store_cond *cond)
{
	struct store_attr now;
	int err;

	if (!cond || !cond->if_match)
		return 0;
	err = files_stat(&fs->base, path, &now);
	if (err == -ENOENT)
		return -ESTALE;
	if (err)
		return err;
	if (now.is_dir)
		return 0; /* a directory's ETag follows its children: not compared */
	return strcmp(now.etag, cond->if_match) == 0 ? 0 : -ESTALE;
}

/* Rename File (or Rename Directory when dir) of from to to. */
static int files_rename_run(struct files_store *fs, const char *from, const char *to, bool dir,
			    bool replace)
{
	const char *sas = auth_sas_query(fs->svc.cred);
	struct files_hdrs h;
	struct files_req fr, src;
	int err = files_req_init(&src, fs, "PUT", from);

	if (!err)
		err = files_req_init(&fr, fs, "PUT", to);
	if (!err)
		err = azreq_url_append(&fr.az, dir ? "?restype=directory&comp=rename"
						   : "?comp=rename");
	if (err)
		return err;
	/* The source carries the SAS too: the service authorizes its delete by it. */
	if (snprintf(h.source, sizeof(h.source), "x-ms-file-rename-source: %s%s%s", src.az.url,
		     sas ? "?" : "", sas ? sas : "") >= (int)sizeof(h.source))
		return -ENAMETOOLONG;
	fr.az.extra[fr.az.nextra++] = h.source;
	fr.az.extra[fr.az.nextra++] = replace ? "x-ms-file-rename-replace-if-exists: true"
					      : "x-ms-file-rename-replace-if-exists: false";
	err = files_write_run(&fr, NULL, 0, 200, &h);
	if (err == -EIO && strcmp(fr.az.http.error_code, "ResourceTypeMismatch") == 0)
		err = dir ? -ENOTDIR : -EISDIR;
	return err;
}

static int files_rename(struct store *s, const char *from, const char *to, bool is_dir,
			bool noreplace, struct store_attr *out)
{
	struct files_store *fs = files_of(s);
	int err = files_rename_run(fs, from, to, is_dir, !noreplace);

	if (!err && out) /* a rename's answer has no Content-Length of the file */
		err = files_stat(s, to, out);
	return err;
}

/* A hidden name beside path for content on its way: FILES_TMP_PREFIX, the store's
 * nonce and a sequence number. */
static int files_tmp_path(struct files_store *fs, const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	int dir_len = slash ? (int)(slash - path) + 1 : 0;
	unsigned seq = atomic_fetch_add(&fs->tmp_seq, 1);
	int n = snprintf(out, len, "%.*s%s%016" PRIx64 "-%08x", dir_len, path, FILES_TMP_PREFIX,
			 fs->nonce, seq);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Puts the finished hidden file tmp (size bytes) in place at path (after cond), *out
 * from a fresh look at path; on failure tmp is still there. A rename sent again after
 * its answer was lost (by the retries, or by libcurl on a connection that died) finds
 * no tmp: it landed if tmp is gone and path has its size. */
static int files_publish(struct files_store *fs, const char *tmp, const char *path,
			 uint64_t size, const struct store_cond *cond, struct store_attr *out)
{
	struct store_attr now;
	int err = files_check_cond(fs, path, cond);

	if (!err)
		err = files_rename_run(fs, tmp, path, false, !(cond && cond->if_none));
	if (err == -ENOENT && files_stat(&fs->base, tmp, &now) == -ENOENT &&
	    files_stat(&fs->base, path, &now) == 0 && !now.is_dir && now.size == size) {
		log_info("%s: the rename was sent again after its answer was lost; it had landed",
			 path);
		err = 0;
	}
	if (!err && out)
		err = files_stat(&fs->base, path, out);
	return err;
}

/* Create Directory, with meta's time when it has one. */
static int files_mkdir(struct files_store *fs, const char *path, const struct store_meta *meta,
		       const struct store_cond *cond, struct store_attr *out)
{
	struct files_hdrs h;
	struct files_req fr;
	int err = files_req_init(&fr, fs, "PUT", path);

	if (!err)
		err = azreq_url_append(&fr.az, "?restype=directory");
	if (err)
		return err;
	if (meta->has_mtime) {
		files_mtime_header(meta, h.mtime, sizeof(h.mtime));
		fr.az.extra[fr.az.nextra++] = h.mtime;
	}
	err = files_write_run(&fr, NULL, 0, 201, &h);
	if (err == -EEXIST && !(cond && cond->if_none))
		return out ? files_stat(&fs->base, path, out) : 0;
	if (!err && out) {
		*out = fr.attr;
		out->size = 0;
		out->is_dir = true;
	}
	return err;
}

/* The whole content, under a hidden name first, then renamed over path: readers never
 * see a part of it. A directory (meta.is_dir) is made as one. */
static int files_put(struct store *s, const char *path, const void *data, size_t len,
		     const struct store_meta *meta, const struct store_cond *cond,
		     struct store_attr *out)
{
	struct files_store *fs = files_of(s);
	char tmp[FILES_PATH_BYTES];
	int err;

	if (meta && meta->is_dir)
		return files_mkdir(fs, path, meta, cond, out);
	if (meta && meta->is_symlink)
		return -EPERM; /* a share keeps no symbolic links */
	err = files_check_path(path);
	if (!err)
		err = files_tmp_path(fs, path, tmp, sizeof(tmp));
	if (!err)
		err = files_create(fs, tmp, len, meta);
	if (err)
		return err;
	if (len)
		err = files_put_ranges(fs, tmp, 0, data, len);
	if (!err)
		err = files_publish(fs, tmp, path, len, cond, out);
	if (err) {
		int gone = files_delete(fs, tmp, false);

		if (gone && gone != -ENOENT)
			log_warn("%s: could not delete the unfinished %s", path, tmp);
	}
	if (!err && out)
		out->size = len;
	return err;
}

/* The upload of path on its way: found, or made when make. Under fs->lock. */
static struct files_upload *files_upload_find(struct files_store *fs, const char *path,
					      bool make)
{
	struct files_upload *up;

	for (up = fs->uploads; up; up = up->next)
		if (strcmp(up->path, path) == 0)
			return up;
	if (!make)
		return NULL;
	up = calloc(1, sizeof(*up));
	if (!up || !(up->path = strdup(path)) ||
	    files_tmp_path(fs, path, up->tmp, sizeof(up->tmp)) != 0) {
		if (up)
			free(up->path);
		free(up);
		return NULL;
	}
	pthread_mutex_init(&up->lock, NULL);
	up->next = fs->uploads;
	fs->uploads = up;
	return up;
}

static void files_upload_free(struct files_upload *up)
{
	pthread_mutex_destroy(&up->lock);
	free(up->blocks);
	free(up->path);
	free(up);
}

/* Makes the hidden file of up at least end bytes long (it grows by doubling). Under
 * up->lock. */
static int files_upload_grow(struct files_store *fs, struct files_upload *up, uint64_t end)
{
	uint64_t size = up->size * 2 > end ? up->size * 2 : end;
	int err;

	if (up->created && up->size >= end)
		return 0;
	if (size > FILES_SIZE_MAX)
		size = end;
	err = up->created ? files_set_props(fs, up->tmp, false, size, NULL, NULL)
			  : files_create(fs, up->tmp, size, NULL);
	if (!err) {
		up->created = true;
		up->size = size;
	}
	return err;
}

/* A block goes straight to where it belongs in the upload's hidden file. */
static int files_put_block(struct store *s, const char *path, const char *block_id,
			   uint64_t offset, const void *data, size_t len)
{
	struct files_store *fs = files_of(s);
	struct files_upload *up;
	struct files_block *grown;
	int err = files_check_path(path);

	if (err)
		return err;
	if (strlen(block_id) >= STORE_BLOCK_ID_MAX)
		return -EINVAL;
	pthread_mutex_lock(&fs->lock);
	up = files_upload_find(fs, path, true);
	pthread_mutex_unlock(&fs->lock);
	if (!up)
		return -ENOMEM;
	/* An upload leaves the table only in a commit or files_destroy(), never while
	 * blocks of it are being put (store.h). */
	pthread_mutex_lock(&up->lock);
	err = files_upload_grow(fs, up, offset + len);
	pthread_mutex_unlock(&up->lock);
	if (!err && len)
		err = files_put_ranges(fs, up->tmp, offset, data, len);
	if (err)
		return err;
	pthread_mutex_lock(&up->lock);
	grown = realloc(up->blocks, (up->nblocks + 1) * sizeof(*up->blocks));
	if (grown) {
		up->blocks = grown;
		grown = &up->blocks[up->nblocks++];
		snprintf(grown->id, sizeof(grown->id), "%s", block_id);
		grown->offset = offset;
		grown->len = len;
	}
	pthread_mutex_unlock(&up->lock);
	return grown ? 0 : -ENOMEM;
}

/* Where block id was put in up, the latest put of it; NULL when it was not. */
static const struct files_block *files_upload_block(const struct files_upload *up,
						    const char *id)
{
	for (size_t i = up->nblocks; i-- > 0;)
		if (strcmp(up->blocks[i].id, id) == 0)
			return &up->blocks[i];
	return NULL;
}

/* The blocks, which lie end to end in the hidden file, become the file at path: the
 * hidden file is cut to their length, given meta's time and renamed over path. */
static int files_commit(struct store *s, const char *path, const char *const *block_ids,
			size_t nblocks, const struct store_meta *meta,
			const struct store_cond *cond, struct store_attr *out)
{
	struct files_store *fs = files_of(s);
	struct files_upload *up, **link;
	uint64_t total = 0;
	int err = 0;

	if (nblocks == 0)
		return files_put(s, path, "", 0, meta, cond, out);
	if (meta && meta->is_symlink)
		return -EPERM;
	pthread_mutex_lock(&fs->lock);
	up = files_upload_find(fs, path, false);
	pthread_mutex_unlock(&fs->lock);
	for (size_t i = 0; i < nblocks && !err; i++) {
		const struct files_block *b = up ? files_upload_block(up, block_ids[i]) : NULL;

		if (!b || b->offset != total) {
			log_error("commit of %s: block %zu (%s) was not put %s", path, i,
				  block_ids[i], b ? "where the list puts it" : "in this upload");
			err = -EIO;
			break;
		}
		total += b->len;
	}
	if (!err)
		err = files_set_props(fs, up->tmp, false, total, meta, NULL);
	if (!err)
		err = files_publish(fs, up->tmp, path, total, cond, out);
	if (err)
		return err;
	pthread_mutex_lock(&fs->lock);
	for (link = &fs->uploads; *link; link = &(*link)->next) {
		if (*link == up) {
			*link = up->next;
			break;
		}
	}
	pthread_mutex_unlock(&fs->lock);
	files_upload_free(up);
	if (out)
		out->size = 0; /* store.h: the caller knows it */
	return 0;
}

/* A share keeps no block list: every commit sends all the blocks (blocks_single_use). */
static int files_get_blocks(struct store *s, const char *path, const char *etag,
			    struct store_block **out, size_t *nblocks)
{
	(void)s, (void)path, (void)etag;
	*out = NULL;
	*nblocks = 0;
	return 0;
}

/* The time of a file, or of a directory (meta.is_dir). */
static int files_set_meta(struct store *s, const char *path, const struct store_meta *meta,
			  const struct store_cond *cond, struct store_attr *out)
{
	struct files_store *fs = files_of(s);
	int err;

	if (meta->is_symlink)
		return -EPERM;
	err = files_check_cond(fs, path, cond);
	return err ? err : files_set_props(fs, path, meta->is_dir, UINT64_MAX, meta, out);
}

/* No copies: a rename is the service's own (store_rename()). */
static int files_copy(struct store *s, const char *from, const char *to,
		      const struct store_cond *cond)
{
	(void)s, (void)from, (void)to, (void)cond;
	return -EOPNOTSUPP;
}

/* Delete File, or Delete Directory when path is an (empty) directory. */
static int files_remove(struct store *s, const char *path, const struct store_cond *cond)
{
	struct files_store *fs = files_of(s);
	int err = files_check_path(path);

	if (!err)
		err = files_check_cond(fs, path, cond);
	if (!err)
		err = files_delete(fs, path, false);
	if (err == -ENOENT || err == -EISDIR)
		err = files_delete(fs, path, true);
	return err == -ENOTDIR ? -ENOENT : err;
}

/* Deletes what uploads left behind (their files were deleted or never committed). */
static void files_destroy(struct store *s)
{
	struct files_store *fs = files_of(s);

	while (fs->uploads) {
		struct files_upload *up = fs->uploads;

		fs->uploads = up->next;
		if (up->created && files_delete(fs, up->tmp, false) != 0)
			log_warn("could not delete %s, left by an upload of %s", up->tmp, up->path);
		files_upload_free(up);
	}
	pthread_mutex_destroy(&fs->lock);
	free(fs);
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
	.rename = files_rename,
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
	fs->base.real_dirs = true;
	fs->base.blocks_single_use = true;
	if (getrandom(&fs->nonce, sizeof(fs->nonce), 0) != (ssize_t)sizeof(fs->nonce)) {
		free(fs);
		return -EIO;
	}
	pthread_mutex_init(&fs->lock, NULL);
	atomic_init(&fs->tmp_seq, 0);
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
