/* Unit tests of http (retries, backoff, time bound, rewound uploads), of how blob
 * reads response headers and of the file share store's requests and answers, against
 * a scripted HTTP server run by the test itself: a
 * thread on 127.0.0.1:0 that answers each connection with the next step of a script.
 * Outcomes are decided by what the server saw (counters, bodies, arrival times), never
 * by sleeping. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/base/log.h"
#include "cache/store/blob.h"
#include "cache/store/files.h"
#include "cache/store/http.h"
#include "unit.h"

enum step_kind {
	STEP_ANSWER,     /* read the request, send the answer, close */
	STEP_CUT_ANSWER, /* read the request, send part of a 200 answer, reset */
	STEP_CUT_UPLOAD, /* read the headers and cut_after bytes of the body, reset */
	STEP_STALL,      /* read the request, answer nothing until released */
};

struct step {
	enum step_kind kind;
	int status;
	const char *headers; /* extra header lines, each ending in "\r\n", or NULL */
	const char *body;    /* sent with its Content-Length; NULL: no body, no length */
};

/* One request as the server saw it. */
struct seen {
	uint64_t at_ms;   /* when its connection was accepted */
	char method[8];
	char head[1024];  /* the request line and headers (cut at 1023 bytes) */
	size_t body_len;  /* body bytes received */
	bool body_whole;  /* the body received equals server.expect */
};

#define SEEN_MAX 64

struct server {
	int fd;
	int port;
	pthread_t thread;
	const struct step *steps; /* the last step repeats */
	size_t nsteps;
	const char *expect; /* the upload the client should send, or NULL */
	size_t expect_len;
	size_t cut_after;
	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t cond;  /* broadcast when seen, stalled or released change */
	struct seen seen[SEEN_MAX];
	size_t nseen;
	bool stalled;  /* a STEP_STALL connection is waiting */
	bool released; /* STEP_STALL connections may close */
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t now_ms(void)
{
	return now_us() / 1000;
}

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n <= 0)
			return; /* the client went away: what it saw is the test's subject */
		data += n;
		len -= (size_t)n;
	}
}

/* Closes conn with a reset instead of an orderly FIN. */
static void reset_close(int conn)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(conn, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(conn);
}

/* Reads a request's head into head (NUL-terminated) and returns how many body bytes
 * came with it (they follow the terminating blank line), or -1. */
static ssize_t read_head(int conn, char *head, size_t cap, char **body_start)
{
	size_t len = 0;

	for (;;) {
		ssize_t n = recv(conn, head + len, cap - 1 - len, 0);
		char *end;

		if (n <= 0)
			return -1;
		len += (size_t)n;
		head[len] = '\0';
		end = strstr(head, "\r\n\r\n");
		if (end) {
			*body_start = end + 4;
			return (ssize_t)(len - (size_t)(end + 4 - head));
		}
		if (len == cap - 1)
			return -1;
	}
}

static size_t content_length(const char *head)
{
	const char *line = strcasestr(head, "\r\ncontent-length:");

	return line ? strtoul(line + 17, NULL, 10) : 0;
}

/* Reads the request on conn (at most limit body bytes) into *s. */
static int read_request(struct server *srv, int conn, size_t limit, struct seen *s)
{
	static char head[65536];
	char *body_start, *body;
	ssize_t got = read_head(conn, head, sizeof(head), &body_start);
	size_t want, have, len;

	if (got < 0)
		return -1;
	sscanf(head, "%7s", s->method);
	len = (size_t)(body_start - head);
	if (len > sizeof(s->head) - 1)
		len = sizeof(s->head) - 1;
	memcpy(s->head, head, len);
	s->head[len] = '\0';
	want = content_length(head);
	if (want > limit)
		want = limit;
	body = malloc(want + 1);
	if (!body)
		return -1;
	have = (size_t)got < want ? (size_t)got : want;
	memcpy(body, body_start, have);
	while (have < want) {
		ssize_t n = recv(conn, body + have, want - have, 0);

		if (n <= 0)
			break;
		have += (size_t)n;
	}
	s->body_len = have;
	s->body_whole = srv->expect && have == srv->expect_len &&
			memcmp(body, srv->expect, have) == 0;
	free(body);
	return 0;
}

static void answer(int conn, const struct step *step)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d Scripted\r\nConnection: close\r\n",
		     step->status);
	send_all(conn, head, (size_t)n);
	if (step->headers)
		send_all(conn, step->headers, strlen(step->headers));
	if (step->body) {
		n = snprintf(head, sizeof(head), "Content-Length: %zu\r\n", strlen(step->body));
		send_all(conn, head, (size_t)n);
	}
	send_all(conn, "\r\n", 2);
	if (step->body)
		send_all(conn, step->body, strlen(step->body));
}

static void serve(struct server *srv, int conn, const struct step *step, uint64_t at_ms)
{
	static const char partial[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc";
	struct seen s = { .at_ms = at_ms };
	size_t limit = step->kind == STEP_CUT_UPLOAD ? srv->cut_after : SIZE_MAX;

	if (read_request(srv, conn, limit, &s) != 0) {
		close(conn);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	if (srv->nseen < SEEN_MAX)
		srv->seen[srv->nseen++] = s;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	switch (step->kind) {
	case STEP_ANSWER:
		answer(conn, step);
		close(conn);
		break;
	case STEP_CUT_ANSWER:
		send_all(conn, partial, sizeof(partial) - 1);
		reset_close(conn);
		break;
	case STEP_CUT_UPLOAD:
		reset_close(conn);
		break;
	case STEP_STALL:
		pthread_mutex_lock(&srv->lock);
		srv->stalled = true;
		pthread_cond_broadcast(&srv->cond);
		while (!srv->released)
			pthread_cond_wait(&srv->cond, &srv->lock);
		pthread_mutex_unlock(&srv->lock);
		close(conn);
		break;
	}
}

static void *server_main(void *arg)
{
	struct server *srv = arg;

	for (size_t i = 0;; i++) {
		int conn = accept(srv->fd, NULL, NULL);

		if (conn < 0)
			return NULL; /* server_stop() shut the socket down */
		serve(srv, conn, &srv->steps[i < srv->nsteps ? i : srv->nsteps - 1], now_ms());
	}
}

static void server_start(struct server *srv, const struct step *steps, size_t nsteps)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t addr_len = sizeof(addr);

	memset(srv, 0, sizeof(*srv));
	srv->steps = steps;
	srv->nsteps = nsteps;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (srv->fd < 0 || bind(srv->fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(srv->fd, 16) != 0 ||
	    getsockname(srv->fd, (struct sockaddr *)&addr, &addr_len) != 0 ||
	    pthread_create(&srv->thread, NULL, server_main, srv) != 0) {
		perror("test server");
		exit(2);
	}
	srv->port = ntohs(addr.sin_port);
}

static void server_stop(struct server *srv)
{
	pthread_mutex_lock(&srv->lock);
	srv->released = true;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	shutdown(srv->fd, SHUT_RDWR); /* wakes accept() */
	pthread_join(srv->thread, NULL);
	close(srv->fd);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->cond);
}

/* Blob headers -------------------------------------------------------------------- */

/* A store on a scripted service, and what the service saw. */
struct store_case {
	const struct step *steps;
	size_t nsteps;
	bool files;        /* a file share store, else a blob store */
	const char *path;  /* of the URL, after the account: "cont", "share/dir" */
	bool shared_key;   /* the emulator's key, else anonymous */
	struct server srv; /* stopped when run_store() returns; seen stays readable */
};

/* Builds the store of sc on a one-worker client and returns what fn returns. */
static long run_store(struct store_case *sc, long (*fn)(struct store *store, void *arg),
		      void *arg)
{
	struct http_client_opts opts;
	struct http_client *http = NULL;
	struct auth_cred *cred = NULL;
	struct url_container url;
	struct store *store = NULL;
	char text[128], err_line[256];
	long result;
	int err;

	server_start(&sc->srv, sc->steps, sc->nsteps);
	snprintf(text, sizeof(text), "http://127.0.0.1:%d/devstoreaccount1/%s", sc->srv.port,
		 sc->path ? sc->path : "cont");
	http_client_opts_default(&opts);
	opts.workers = 1;
	err = url_parse_container(text, &url, err_line, sizeof(err_line));
	if (!err)
		err = sc->shared_key ? auth_cred_shared_key(AUTH_DEV_ACCOUNT, AUTH_DEV_KEY, &cred)
				     : auth_cred_anonymous(&cred);
	if (!err)
		err = http_client_new(&opts, &http);
	if (!err && sc->files) {
		struct files_config cfg = { .url = &url, .cred = cred, .http = http };

		err = files_store_new(&cfg, &store);
	} else if (!err) {
		struct blob_config cfg = { .url = &url, .cred = cred, .http = http };

		err = blob_store_new(&cfg, &store);
	}
	CHECK(err == 0);
	result = err ? err : fn(store, arg);
	if (store)
		store->ops->destroy(store);
	http_client_free(http);
	auth_cred_free(cred);
	server_stop(&sc->srv);
	return result;
}

/* A blob store on a service that answers with step; what fn returns. */
static long with_store(const struct step *step, long (*fn)(struct store *store, void *arg),
		       void *arg)
{
	struct store_case sc = { .steps = step, .nsteps = 1 };

	return run_store(&sc, fn, arg);
}

static long stat_f(struct store *store, void *attr)
{
	return store_stat(store, "f", attr);
}

/* HEADs "f" on a blob store whose service answers 200 with headers. */
static int stat_answered_with(const char *headers, struct store_attr *attr)
{
	struct step step = { STEP_ANSWER, 200, headers, NULL };

	memset(attr, 0, sizeof(*attr));
	return (int)with_store(&step, stat_f, attr);
}

#define ATTR_HEADERS                                              \
	"Content-Length: 12345\r\n"                               \
	"Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n"        \
	"ETag: \"0x8DC0FFEE\"\r\n"                                \
	"x-ms-meta-is_symlink: true\r\n"                          \
	"x-ms-meta-ferry_mtime: 1700000001.000000500\r\n"

static void check_attr(int err, const struct store_attr *attr)
{
	CHECK(err == 0);
	CHECK(attr->size == 12345);
	CHECK_STR(attr->etag, "\"0x8DC0FFEE\"");
	CHECK(attr->is_symlink);
	CHECK(attr->mtime == 1700000001);
	CHECK(attr->mtime_nsec == 500);
}

/* One long header first, so that the whole answer's headers exceed 4 KiB. */
static void stat_reads_headers_after_one_long_header(void)
{
	static const size_t pads[] = { 4000, 5000, 9000 };

	for (size_t i = 0; i < sizeof(pads) / sizeof(pads[0]); i++) {
		char headers[16384];
		struct store_attr attr;
		int n = snprintf(headers, sizeof(headers), "x-ms-meta-pad: ");

		memset(headers + n, 'p', pads[i]);
		snprintf(headers + (size_t)n + pads[i], sizeof(headers) - (size_t)n - pads[i],
			 "\r\n%s", ATTR_HEADERS);
		check_attr(stat_answered_with(headers, &attr), &attr);
	}
}

static void stat_reads_headers_after_many_meta_headers(void)
{
	char headers[16384];
	struct store_attr attr;
	size_t len = 0;

	for (int i = 0; i < 200; i++)
		len += (size_t)snprintf(headers + len, sizeof(headers) - len,
					"x-ms-meta-key%03d: value number %03d\r\n", i, i);
	snprintf(headers + len, sizeof(headers) - len, "%s", ATTR_HEADERS);
	CHECK(len > 4096);
	check_attr(stat_answered_with(headers, &attr), &attr);
}

static void stat_refuses_a_malformed_etag(void)
{
	static const char *const etags[] = {
		"0x8DC0FFEE",               /* not quoted */
		"\"0x8D\x01\"",             /* a control character */
		"\"",                       /* one quote */
		("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		 "aaaaaaaaaaaaaaaaaaaa\""), /* longer than STORE_ETAG_MAX */
	};
	char headers[512];
	struct store_attr attr;

	for (size_t i = 0; i < sizeof(etags) / sizeof(etags[0]); i++) {
		snprintf(headers, sizeof(headers), "Content-Length: 1\r\nETag: %s\r\n", etags[i]);
		CHECK(stat_answered_with(headers, &attr) == -EBADMSG);
	}
}

static void stat_refuses_a_malformed_content_length(void)
{
	/* (curl itself refuses a negative one) */
	static const char *const lengths[] = { "12x", "+5", "0x10", "99999999999999999999999" };
	char headers[512];
	struct store_attr attr;

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		snprintf(headers, sizeof(headers), "Content-Length: %s\r\nETag: \"0x1\"\r\n",
			 lengths[i]);
		CHECK(stat_answered_with(headers, &attr) == -EBADMSG);
	}
}

static char read_buf[16];

/* Reads 5 bytes of "f" at offset 5. */
static long read_f_at_5(struct store *store, void *arg)
{
	(void)arg;
	memset(read_buf, 0, sizeof(read_buf));
	return store_read(store, "f", NULL, 5, 5, read_buf);
}

static void read_takes_the_answer_at_its_offset(void)
{
	struct step step = { STEP_ANSWER, 206, "Content-Range: bytes 5-9/10\r\n", "world" };

	CHECK(with_store(&step, read_f_at_5, NULL) == 5);
	CHECK_STR(read_buf, "world");
}

/* An answer that starts elsewhere (a wrong Content-Range, a whole object) or whose
 * Content-Range is malformed is refused, not taken as the bytes asked for. */
static void read_refuses_an_answer_at_another_offset(void)
{
	static const char *const ranges[] = {
		"Content-Range: bytes 0-4/10\r\n", "Content-Range: bytes 5-9\r\n",
		"Content-Range: bytes x-9/10\r\n", "Content-Range: 5-9/10\r\n",
		"Content-Range: bytes 5-9/9\r\n",  "Content-Range: bytes 9-5/10\r\n",
		"",
	};

	struct step whole = { STEP_ANSWER, 200, NULL, "hello" };

	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		struct step step = { STEP_ANSWER, 206, ranges[i], "hello" };

		CHECK(with_store(&step, read_f_at_5, NULL) == -EBADMSG);
	}
	CHECK(with_store(&whole, read_f_at_5, NULL) == -EBADMSG);
}

/* File share store ---------------------------------------------------------------- */

/* A file share store at share "share" (and directory prefix, if not NULL) with the
 * emulator's key, on a service that plays steps; what fn returns. */
static long with_files(struct store_case *sc, const struct step *steps, size_t nsteps,
		       const char *prefix, long (*fn)(struct store *store, void *arg), void *arg)
{
	static char path[128];

	memset(sc, 0, sizeof(*sc));
	snprintf(path, sizeof(path), "share%s%s", prefix ? "/" : "", prefix ? prefix : "");
	sc->steps = steps;
	sc->nsteps = nsteps;
	sc->files = true;
	sc->path = path;
	sc->shared_key = true;
	return run_store(sc, fn, arg);
}

/* Whether request i of sc had the request line "METHOD TARGET HTTP/1.1". */
static bool saw_request(const struct store_case *sc, size_t i, const char *method,
			const char *target)
{
	char line[512];

	if (i >= sc->srv.nseen)
		return false;
	snprintf(line, sizeof(line), "%s %s HTTP/1.1\r\n", method, target);
	return strncmp(sc->srv.seen[i].head, line, strlen(line)) == 0;
}

/* Whether request i of sc carried the header line (any case, as curl sends it). */
static bool saw_header(const struct store_case *sc, size_t i, const char *line)
{
	char want[256];

	snprintf(want, sizeof(want), "\r\n%s\r\n", line);
	return i < sc->srv.nseen && strcasestr(sc->srv.seen[i].head, want) != NULL;
}

/* The path stat_path() asks for, when not "d/f.txt". */
static const char *stat_target;

static long stat_path(struct store *store, void *arg)
{
	struct store_attr *attr = arg;

	memset(attr, 0, sizeof(*attr));
	return store_stat(store, stat_target ? stat_target : "d/f.txt", attr);
}

#define FILE_HEADERS                                                       \
	"Content-Length: 12345\r\n"                                        \
	"Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n"                 \
	"ETag: \"0x8DC0FFEE\"\r\n"                                         \
	"x-ms-type: File\r\n"                                              \
	"x-ms-file-last-write-time: 2023-11-14T22:13:19.1234567Z\r\n"

static void files_stat_reads_file_properties(void)
{
	static const struct step steps[] = { { STEP_ANSWER, 200, FILE_HEADERS, NULL } };
	struct store_case sc;
	struct store_attr attr;

	CHECK(with_files(&sc, steps, 1, "top%20dir", stat_path, &attr) == 0);
	CHECK(attr.size == 12345);
	CHECK_STR(attr.etag, "\"0x8DC0FFEE\"");
	CHECK(attr.mtime == 1700000000 - 1 && attr.mtime_nsec == 123456700);
	CHECK(!attr.is_dir);
	CHECK(sc.srv.nseen == 1);
	CHECK(saw_request(&sc, 0, "HEAD", "/devstoreaccount1/share/top%20dir/d/f.txt"));
	CHECK(saw_header(&sc, 0, "x-ms-version: " FILES_API_VERSION));
	CHECK(strcasestr(sc.srv.seen[0].head, "\r\nAuthorization: SharedKey devstoreaccount1:"));
}

static void files_stat_without_write_time_takes_last_modified(void)
{
	static const struct step steps[] = {
		{ STEP_ANSWER, 200, "Content-Length: 1\r\nETag: \"0x1\"\r\n"
				    "Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n", NULL },
	};
	struct store_case sc;
	struct store_attr attr;

	CHECK(with_files(&sc, steps, 1, NULL, stat_path, &attr) == 0);
	CHECK(attr.mtime == 1700000000 && attr.mtime_nsec == 0);
	CHECK(saw_request(&sc, 0, "HEAD", "/devstoreaccount1/share/d/f.txt"));
}

static void files_stat_falls_back_to_the_directory(void)
{
	static const struct step steps[] = {
		{ STEP_ANSWER, 404, "x-ms-error-code: ResourceNotFound\r\n", NULL },
		{ STEP_ANSWER, 200, "ETag: \"0x8DD\"\r\n"
				    "Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n", NULL },
	};
	struct store_case sc;
	struct store_attr attr;

	CHECK(with_files(&sc, steps, 2, NULL, stat_path, &attr) == 0);
	CHECK(attr.is_dir);
	CHECK(attr.size == 0);
	CHECK_STR(attr.etag, "\"0x8DD\"");
	CHECK(sc.srv.nseen == 2);
	CHECK(saw_request(&sc, 1, "HEAD", "/devstoreaccount1/share/d/f.txt?restype=directory"));
}

static void files_stat_of_nothing_is_enoent(void)
{
	static const struct step neither[] = {
		{ STEP_ANSWER, 404, "x-ms-error-code: ResourceNotFound\r\n", NULL },
	};
	static const struct step no_parent[] = {
		{ STEP_ANSWER, 404, "x-ms-error-code: ParentNotFound\r\n", NULL },
	};
	static const struct step refused[] = {
		{ STEP_ANSWER, 403, "x-ms-error-code: AuthenticationFailed\r\n", NULL },
	};
	struct store_case sc;
	struct store_attr attr;

	CHECK(with_files(&sc, neither, 1, NULL, stat_path, &attr) == -ENOENT);
	CHECK(sc.srv.nseen == 2);
	CHECK(with_files(&sc, no_parent, 1, NULL, stat_path, &attr) == -ENOENT);
	CHECK(sc.srv.nseen == 1); /* no directory where there is no parent */
	CHECK(with_files(&sc, refused, 1, NULL, stat_path, &attr) == -EACCES);
	CHECK(sc.srv.nseen == 1);
}

static void files_paths_are_checked_before_any_request(void)
{
	static const struct step steps[] = { { STEP_ANSWER, 200, FILE_HEADERS, NULL } };
	static const char *const missing[] = { "a/../b", "..", "a/./b", "a//b", "d/", "/a" };
	struct store_case sc;
	struct store_attr attr;

	char name[256];

	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
		stat_target = missing[i];
		CHECK(with_files(&sc, steps, 1, NULL, stat_path, &attr) == -ENOENT);
		CHECK(sc.srv.nseen == 0);
	}
	memset(name, 'n', 255); /* as long as a name can be */
	name[255] = '\0';
	stat_target = name;
	CHECK(with_files(&sc, steps, 1, NULL, stat_path, &attr) == 0);
	CHECK(sc.srv.nseen == 1);
	stat_target = NULL;
}

static long stat_long_name(struct store *store, void *arg)
{
	size_t slash = *(const size_t *)arg;
	struct store_attr attr;
	char path[300];

	memset(path, 'n', 256);
	path[256] = '\0';
	if (slash)
		path[slash] = '/';
	return store_stat(store, path, &attr);
}

static void files_name_past_255_characters_is_enametoolong(void)
{
	static const struct step steps[] = { { STEP_ANSWER, 200, FILE_HEADERS, NULL } };
	static const size_t none = 0, middle = 128;
	struct store_case sc;

	CHECK(with_files(&sc, steps, 1, NULL, stat_long_name, (void *)&none) == -ENAMETOOLONG);
	CHECK(sc.srv.nseen == 0);
	/* a '/' makes it two names, both short enough */
	CHECK(with_files(&sc, steps, 1, NULL, stat_long_name, (void *)&middle) == 0);
	CHECK(sc.srv.nseen == 1);
}

static long lookup_d(struct store *store, void *attr)
{
	return store_lookup(store, "d", attr);
}

static void files_lookup_asks_for_both_at_once(void)
{
	static const struct step steps[] = {
		{ STEP_ANSWER, 404, "x-ms-error-code: ResourceNotFound\r\n", NULL },
		{ STEP_ANSWER, 200, "ETag: \"0x8DD\"\r\n", NULL },
	};
	static const struct step file[] = {
		{ STEP_ANSWER, 200, FILE_HEADERS, NULL },
		{ STEP_ANSWER, 404, "x-ms-error-code: ResourceNotFound\r\n", NULL },
	};
	struct store_case sc;
	struct store_attr attr;

	CHECK(with_files(&sc, steps, 2, NULL, lookup_d, &attr) == 0);
	CHECK(attr.is_dir);
	CHECK_STR(attr.etag, "\"0x8DD\"");
	CHECK(sc.srv.nseen == 2);
	CHECK(saw_request(&sc, 0, "HEAD", "/devstoreaccount1/share/d"));
	CHECK(saw_request(&sc, 1, "HEAD", "/devstoreaccount1/share/d?restype=directory"));
	CHECK(with_files(&sc, file, 2, NULL, lookup_d, &attr) == 0);
	CHECK(!attr.is_dir && attr.size == 12345);
	CHECK(with_files(&sc, steps + 0, 1, NULL, lookup_d, &attr) == -ENOENT);
}

struct read_case {
	const char *etag; /* pinned to, or NULL */
	char buf[16];
};

static long read_f_5(struct store *store, void *arg)
{
	struct read_case *rc = arg;

	memset(rc->buf, 0, sizeof(rc->buf));
	return store_read(store, "f", rc->etag, 5, 5, rc->buf);
}

static void files_read_compares_the_etag(void)
{
	static const struct step same[] = {
		{ STEP_ANSWER, 206, "Content-Range: bytes 5-9/10\r\nETag: \"0x1\"\r\n", "world" },
	};
	static const struct step untagged[] = {
		{ STEP_ANSWER, 206, "Content-Range: bytes 5-9/10\r\n", "world" },
	};
	struct read_case rc = { .etag = "\"0x1\"" };
	struct store_case sc;

	CHECK(with_files(&sc, same, 1, NULL, read_f_5, &rc) == 5);
	CHECK_STR(rc.buf, "world");
	CHECK(saw_request(&sc, 0, "GET", "/devstoreaccount1/share/f"));
	CHECK(saw_header(&sc, 0, "x-ms-range: bytes=5-9"));
	CHECK(!strcasestr(sc.srv.seen[0].head, "If-Match")); /* Get File takes none */

	rc.etag = "\"0x2\""; /* it changed since */
	CHECK(with_files(&sc, same, 1, NULL, read_f_5, &rc) == -ESTALE);
	CHECK(with_files(&sc, untagged, 1, NULL, read_f_5, &rc) == -EBADMSG);
	rc.etag = NULL; /* not pinned: any version */
	CHECK(with_files(&sc, same, 1, NULL, read_f_5, &rc) == 5);
	CHECK(with_files(&sc, untagged, 1, NULL, read_f_5, &rc) == 5);
}

static void files_read_past_the_end(void)
{
	static const struct step end[] = {
		{ STEP_ANSWER, 416, "x-ms-error-code: InvalidRange\r\n", NULL },
		{ STEP_ANSWER, 200, "Content-Length: 5\r\nETag: \"0x1\"\r\n", NULL },
	};
	static const struct step replaced[] = {
		{ STEP_ANSWER, 416, "x-ms-error-code: InvalidRange\r\n", NULL },
		{ STEP_ANSWER, 200, "Content-Length: 3\r\nETag: \"0x2\"\r\n", NULL },
	};
	static const struct step gone[] = {
		{ STEP_ANSWER, 416, "x-ms-error-code: InvalidRange\r\n", NULL },
		{ STEP_ANSWER, 404, "x-ms-error-code: ResourceNotFound\r\n", NULL },
	};
	static const struct step short_answer[] = {
		{ STEP_ANSWER, 206, "Content-Range: bytes 5-6/7\r\nETag: \"0x1\"\r\n", "wo" },
	};
	struct read_case rc = { .etag = "\"0x1\"" };
	struct store_case sc;

	CHECK(with_files(&sc, end, 2, NULL, read_f_5, &rc) == 0);
	CHECK(sc.srv.nseen == 2);
	CHECK(saw_request(&sc, 1, "HEAD", "/devstoreaccount1/share/f"));
	CHECK(with_files(&sc, replaced, 2, NULL, read_f_5, &rc) == -ESTALE);
	CHECK(with_files(&sc, gone, 2, NULL, read_f_5, &rc) == -ESTALE);
	CHECK(with_files(&sc, short_answer, 1, NULL, read_f_5, &rc) == 2);
	rc.etag = NULL;
	CHECK(with_files(&sc, end, 2, NULL, read_f_5, &rc) == 0);
	CHECK(sc.srv.nseen == 1);
}

#define LIST_PAGE(entries, marker)                                                   \
	"<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ShareName=\"share\" " \
	"DirectoryPath=\"d\"><Entries>" entries "</Entries><NextMarker>" marker             \
	"</NextMarker></EnumerationResults>"

struct list_case {
	const char *marker;
	char next[64];
	char names[256];
	int count;
};

static int list_collect(void *ctx, const struct store_entry *entry)
{
	struct list_case *lc = ctx;
	size_t len = strlen(lc->names);

	lc->count++;
	snprintf(lc->names + len, sizeof(lc->names) - len, "%s%s%s,",
		 entry->attr.is_dir ? "d:" : "", entry->name, entry->attr.etag);
	return 0;
}

static long list_d(struct store *store, void *arg)
{
	struct list_case *lc = arg;

	return store_list(store, "d", lc->marker, list_collect, lc, lc->next, sizeof(lc->next));
}

static void files_list_gives_entries_and_the_next_marker(void)
{
	static const struct step steps[] = {
		{ STEP_ANSWER, 200, NULL,
		  LIST_PAGE("<File><Name>a b</Name><Properties><Content-Length>3</Content-Length>"
			    "<Etag>\"0x1\"</Etag></Properties></File>"
			    "<Directory><Name>sub</Name><Properties><Etag>\"0x2\"</Etag>"
			    "</Properties></Directory>",
			    "2!48!next") },
	};
	struct list_case lc = { .marker = "1!8!m+/=" };
	struct store_case sc;

	CHECK(with_files(&sc, steps, 1, "top", list_d, &lc) == 0);
	CHECK_STR(lc.names, "a b\"0x1\",d:sub\"0x2\",");
	CHECK_STR(lc.next, "2!48!next");
	CHECK(saw_request(&sc, 0, "GET",
			  "/devstoreaccount1/share/top/d?restype=directory&comp=list"
			  "&include=Timestamps%2CETag&maxresults=5000&marker=1%218%21m%2B%2F%3D"));
	CHECK(saw_header(&sc, 0, "x-ms-file-extended-info: true"));
}

static void files_list_refuses_a_hostile_page(void)
{
	static const struct step steps[] = {
		{ STEP_ANSWER, 200, NULL,
		  LIST_PAGE("<File><Name>ok</Name><Properties><Content-Length>3</Content-Length>"
			    "</Properties></File><Directory><Name>..</Name></Directory>", "") },
	};
	static const struct step missing[] = {
		{ STEP_ANSWER, 404, "x-ms-error-code: ResourceNotFound\r\n", NULL },
	};
	struct list_case lc = { 0 };
	struct store_case sc;

	CHECK(with_files(&sc, steps, 1, NULL, list_d, &lc) == -EBADMSG);
	CHECK(lc.count == 1); /* what came before the bad entry, never the bad entry */
	CHECK(with_files(&sc, missing, 1, NULL, list_d, &lc) == -ENOENT);
}

static long has_children_d(struct store *store, void *arg)
{
	(void)arg;
	return store_has_children(store, "d");
}

static void files_has_children_lists_one_entry(void)
{
	static const struct step one[] = {
		{ STEP_ANSWER, 200, NULL,
		  LIST_PAGE("<Directory><Name>x</Name><Properties/></Directory>", "more") },
	};
	static const struct step none[] = { { STEP_ANSWER, 200, NULL, LIST_PAGE("", "") } };
	static const struct step later[] = {
		{ STEP_ANSWER, 200, NULL, LIST_PAGE("", "m1") },
		{ STEP_ANSWER, 200, NULL,
		  LIST_PAGE("<File><Name>y</Name><Properties><Content-Length>0</Content-Length>"
			    "</Properties></File>", "") },
	};
	static const struct step missing[] = {
		{ STEP_ANSWER, 404, "x-ms-error-code: ResourceNotFound\r\n", NULL },
	};
	static const struct step endless[] = { { STEP_ANSWER, 200, NULL, LIST_PAGE("", "m") } };
	struct store_case sc;

	CHECK(with_files(&sc, one, 1, NULL, has_children_d, NULL) == 1);
	CHECK(sc.srv.nseen == 1);
	CHECK(saw_request(&sc, 0, "GET",
			  "/devstoreaccount1/share/d?restype=directory&comp=list"
			  "&include=Timestamps%2CETag&maxresults=1"));
	CHECK(with_files(&sc, none, 1, NULL, has_children_d, NULL) == 0);
	CHECK(with_files(&sc, later, 2, NULL, has_children_d, NULL) == 1);
	CHECK(saw_request(&sc, 1, "GET",
			  "/devstoreaccount1/share/d?restype=directory&comp=list"
			  "&include=Timestamps%2CETag&maxresults=1&marker=m1"));
	CHECK(with_files(&sc, missing, 1, NULL, has_children_d, NULL) == 0);
	CHECK(with_files(&sc, endless, 1, NULL, has_children_d, NULL) == -EIO);
}

static char probe_line[512];

static long probe(struct store *store, void *arg)
{
	(void)arg;
	probe_line[0] = '\0';
	return store_probe(store, probe_line, sizeof(probe_line));
}

static void files_probe_says_what_is_wrong(void)
{
	static const struct step ok[] = { { STEP_ANSWER, 200, "ETag: \"0x1\"\r\n", "" } };
	static const struct step bad_key[] = {
		{ STEP_ANSWER, 403, "x-ms-error-code: AuthenticationFailed\r\n", "" },
	};
	static const struct step no_share[] = {
		{ STEP_ANSWER, 404, "x-ms-error-code: ShareNotFound\r\n", "" },
	};
	static const struct step no_dir[] = {
		{ STEP_ANSWER, 200, "ETag: \"0x1\"\r\n", "" },
		{ STEP_ANSWER, 404, "x-ms-error-code: ResourceNotFound\r\n", NULL },
	};
	static const struct step denied[] = {
		{ STEP_ANSWER, 403, "x-ms-error-code: AuthorizationPermissionMismatch\r\n", "" },
	};
	struct store_case sc;

	CHECK(with_files(&sc, ok, 1, NULL, probe, NULL) == 0);
	CHECK(saw_request(&sc, 0, "GET", "/devstoreaccount1/share?restype=share"));
	CHECK(with_files(&sc, ok, 1, "a/b", probe, NULL) == 0);
	CHECK(sc.srv.nseen == 2);
	CHECK(saw_request(&sc, 1, "HEAD", "/devstoreaccount1/share/a/b?restype=directory"));

	CHECK(with_files(&sc, bad_key, 1, NULL, probe, NULL) == -EACCES);
	CHECK(strstr(probe_line, "authentication failed for account 'devstoreaccount1'"));
	CHECK(strstr(probe_line, "AuthenticationFailed"));
	CHECK(with_files(&sc, no_share, 1, NULL, probe, NULL) == -ENOENT);
	CHECK(strstr(probe_line, "share 'share' not found in account 'devstoreaccount1'"));
	CHECK(with_files(&sc, no_dir, 2, "a/b", probe, NULL) == -ENOENT);
	CHECK(strstr(probe_line, "directory 'a/b' not found in share 'share'"));
	CHECK(with_files(&sc, denied, 1, NULL, probe, NULL) == -EACCES);
	CHECK(strstr(probe_line, "access denied to share 'share'"));
	CHECK(!strchr(probe_line, '\n'));
}

static void files_probe_refuses_anonymous_without_a_request(void)
{
	static const struct step ok[] = { { STEP_ANSWER, 200, NULL, "" } };
	struct store_case sc = { .steps = ok, .nsteps = 1, .files = true, .path = "share" };

	CHECK(run_store(&sc, probe, NULL) == -EACCES);
	CHECK(strstr(probe_line, "needs a shared key or a SAS"));
	CHECK(sc.srv.nseen == 0);
}

static long create_root(struct store *store, void *arg)
{
	(void)arg;
	return store_create_root(store);
}

static void files_create_root_makes_the_share(void)
{
	static const struct step made[] = { { STEP_ANSWER, 201, NULL, "" } };
	static const struct step exists[] = {
		{ STEP_ANSWER, 409, "x-ms-error-code: ShareAlreadyExists\r\n", "" },
	};
	static const struct step deleting[] = {
		{ STEP_ANSWER, 409, "x-ms-error-code: ShareBeingDeleted\r\n", "" },
	};
	struct store_case sc;

	CHECK(with_files(&sc, made, 1, "a", create_root, NULL) == 0);
	CHECK(saw_request(&sc, 0, "PUT", "/devstoreaccount1/share?restype=share"));
	CHECK(with_files(&sc, exists, 1, NULL, create_root, NULL) == 0);
	CHECK(with_files(&sc, deleting, 1, NULL, create_root, NULL) == -EIO);
}

/* Block "B" put at offset 4, then a commit that lists it first (at offset 0). */
static long put_block_then_commit(struct store *store, void *arg)
{
	static const char *const ids[] = { "B" };
	int err = store_put_block(store, "d/f", "B", 4, "x", 1);

	(void)arg;
	return err ? err : store_commit(store, "d/f", ids, 1, NULL, NULL, NULL);
}

/* A block goes to its offset in a hidden file beside the target, grown to fit; a
 * commit whose blocks do not lie end to end is refused before it renames anything,
 * and the store deletes the hidden file when it is destroyed. */
static void files_commit_refuses_blocks_not_end_to_end(void)
{
	static const struct step ok[] = { { STEP_ANSWER, 201, NULL, "" } };
	struct store_case sc;

	CHECK(with_files(&sc, ok, 1, NULL, put_block_then_commit, NULL) == -EIO);
	CHECK(sc.srv.nseen == 3);
	CHECK(strncmp(sc.srv.seen[0].head, "PUT /devstoreaccount1/share/d/.ferry-up-", 40) == 0);
	CHECK(strncmp(sc.srv.seen[2].head, "DELETE /devstoreaccount1/share/d/.ferry-up-", 43) == 0);
	CHECK(saw_header(&sc, 0, "x-ms-type: file"));
	CHECK(saw_header(&sc, 0, "x-ms-content-length: 5"));
	CHECK(strstr(sc.srv.seen[1].head, "?comp=range HTTP/1.1\r\n") != NULL);
	CHECK(saw_header(&sc, 1, "x-ms-range: bytes=4-4"));
	CHECK(saw_header(&sc, 1, "x-ms-write: update"));
}

/* Retries ------------------------------------------------------------------------- */

#define BACKOFF_BASE_MS 20
#define BACKOFF_MAX_MS 160

/* One request served by a script: what the client and the server saw. */
struct exchange {
	struct server srv;
	struct http_request req;
	char body[128];
	char url[64];
	int result;       /* what http_execute() returned */
	uint64_t took_ms; /* how long http_execute() took */
};

/* GETs "/" from a server that plays steps, on a one-worker client with a 10 s bound;
 * adjust, if not NULL, changes the request or the server before it is sent. Both are
 * stopped when it returns; x->srv.seen stays readable. */
static void exchange_run(struct exchange *x, const struct step *steps, size_t nsteps,
			 void (*adjust)(struct exchange *x))
{
	struct http_client_opts opts;
	struct http_client *http = NULL;
	uint64_t start;

	http_client_opts_default(&opts);
	opts.workers = 1;
	opts.op_timeout_ms = 10000;
	opts.backoff_base_ms = BACKOFF_BASE_MS;
	opts.backoff_max_ms = BACKOFF_MAX_MS;
	if (http_client_new(&opts, &http) != 0)
		abort();
	server_start(&x->srv, steps, nsteps);
	snprintf(x->url, sizeof(x->url), "http://127.0.0.1:%d/", x->srv.port);
	memset(&x->req, 0, sizeof(x->req));
	x->req.method = "GET";
	x->req.url = x->url;
	x->req.body_buf = x->body;
	x->req.body_cap = sizeof(x->body);
	if (adjust)
		adjust(x);
	/* microseconds: two readings of a millisecond clock can differ by 299 across
	 * 299.9 ms, and a bound of 300 ms would look broken */
	start = now_us();
	x->result = http_execute(http, &x->req);
	x->took_ms = (now_us() - start) / 1000;
	http_client_free(http);
	server_stop(&x->srv);
}

/* The exchange ended with an answer of status after attempts attempts, each of which
 * reached the server, and (if body is not NULL) that body. */
static void check_answer(const struct exchange *x, long status, int attempts,
			 const char *body)
{
	CHECK(x->result == 0);
	CHECK(x->req.status == status);
	CHECK(x->req.attempts == attempts);
	CHECK(x->srv.nseen == (size_t)attempts);
	if (body)
		CHECK(x->req.body_len == strlen(body) &&
		      memcmp(x->body, body, strlen(body)) == 0);
}

/* Milliseconds between the server's acceptance of request i - 1 and of request i. */
static uint64_t gap_ms(const struct exchange *x, size_t i)
{
	return x->srv.seen[i].at_ms - x->srv.seen[i - 1].at_ms;
}

static void backoff_schedule_doubles_with_jitter(void)
{
	struct http_client_opts opts;
	unsigned int seed = 1;

	http_client_opts_default(&opts);
	for (int retry = 0; retry < 10; retry++) {
		uint64_t base = 100u << retry, low = UINT64_MAX, high = 0;

		if (base > 8000)
			base = 8000;
		for (int i = 0; i < 200; i++) {
			uint64_t wait = http_backoff_ms(&opts, retry, &seed);

			low = wait < low ? wait : low;
			high = wait > high ? wait : high;
		}
		CHECK(low >= base / 2);
		CHECK(high < base);
		CHECK(low < high); /* jitter */
	}
}

static void retries_wait_longer_each_time(void)
{
	static const struct step steps[] = {
		{ STEP_ANSWER, 503, NULL, "" }, { STEP_ANSWER, 503, NULL, "" },
		{ STEP_ANSWER, 503, NULL, "" }, { STEP_ANSWER, 503, NULL, "" },
		{ STEP_ANSWER, 200, NULL, "done" },
	};
	static struct exchange x;

	exchange_run(&x, steps, 5, NULL);
	check_answer(&x, 200, 5, "done");
	/* Each wait is at least half its doubling base: 10, 20, 40, 80 ms. */
	for (size_t i = 1; i < 5 && i < x.srv.nseen; i++)
		CHECK(gap_ms(&x, i) >= ((uint64_t)BACKOFF_BASE_MS << (i - 1)) / 2);
}

static void retry_after_seconds_is_honoured(void)
{
	static const struct step steps[] = {
		{ STEP_ANSWER, 429, "Retry-After: 1\r\n", "" },
		{ STEP_ANSWER, 200, NULL, "done" },
	};
	static struct exchange x;

	exchange_run(&x, steps, 2, NULL);
	check_answer(&x, 200, 2, "done");
	if (x.srv.nseen == 2)
		CHECK(gap_ms(&x, 1) >= 1000);
}

static void bound_to_3s(struct exchange *x)
{
	x->req.timeout_ms = 3000;
}

/* A Retry-After past the time bound: the answer stands at once, no waiting. */
static void retry_after_past_the_time_bound_ends_the_request(void)
{
	static const struct step steps[] = {
		{ STEP_ANSWER, 503, "Retry-After: 30\r\n", "" },
		{ STEP_ANSWER, 200, NULL, "done" },
	};
	static struct exchange x;

	exchange_run(&x, steps, 2, bound_to_3s);
	check_answer(&x, 503, 1, NULL);
	CHECK(x.took_ms < 2000);
}

static void server_errors_and_429_are_retried(void)
{
	static const struct step steps[] = {
		{ STEP_ANSWER, 500, NULL, "" }, { STEP_ANSWER, 502, NULL, "" },
		{ STEP_ANSWER, 503, NULL, "" }, { STEP_ANSWER, 504, NULL, "" },
		{ STEP_ANSWER, 429, NULL, "" }, { STEP_ANSWER, 408, NULL, "" },
		{ STEP_ANSWER, 200, NULL, "done" },
	};
	static struct exchange x;

	exchange_run(&x, steps, 7, NULL);
	check_answer(&x, 200, 7, "done");
}

static void client_errors_are_not_retried(void)
{
	static const int statuses[] = { 400, 403, 404, 409, 412 };

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct step steps[] = {
			{ STEP_ANSWER, statuses[i], NULL, "no" },
			{ STEP_ANSWER, 200, NULL, "yes" },
		};
		static struct exchange x;

		exchange_run(&x, steps, 2, NULL);
		check_answer(&x, statuses[i], 1, NULL);
	}
}

static void reset_mid_answer_is_retried(void)
{
	static const struct step steps[] = {
		{ STEP_CUT_ANSWER, 200, NULL, NULL },
		{ STEP_ANSWER, 200, NULL, "whole" },
	};
	static struct exchange x;

	exchange_run(&x, steps, 2, NULL);
	check_answer(&x, 200, 2, "whole");
}

#define UPLOAD_LEN (1 << 20)
#define UPLOAD_CUT (64 << 10)

static char upload[UPLOAD_LEN];

static void put_upload(struct exchange *x)
{
	x->srv.expect = upload;
	x->srv.expect_len = UPLOAD_LEN;
	x->srv.cut_after = UPLOAD_CUT;
	x->req.method = "PUT";
	x->req.upload = upload;
	x->req.upload_len = UPLOAD_LEN;
}

/* Cut after 64 KiB, then a 500 after the whole body: the third attempt, and the
 * second, still send all of it from its first byte. */
static void upload_is_sent_whole_again_on_retry(void)
{
	static const struct step steps[] = {
		{ STEP_CUT_UPLOAD, 0, NULL, NULL },
		{ STEP_ANSWER, 500, NULL, "" },
		{ STEP_ANSWER, 201, NULL, "" },
	};
	static struct exchange x;

	for (size_t i = 0; i < UPLOAD_LEN; i++)
		upload[i] = (char)(i * 7 + i / 4096);
	exchange_run(&x, steps, 3, put_upload);
	check_answer(&x, 201, 3, NULL);
	if (x.srv.nseen != 3)
		return;
	CHECK(x.srv.seen[0].body_len == UPLOAD_CUT);
	CHECK(x.srv.seen[1].body_whole);
	CHECK(x.srv.seen[2].body_whole);
	CHECK(strcmp(x.srv.seen[2].method, "PUT") == 0);
}

static void many_attempts_bound_to_500ms(struct exchange *x)
{
	x->req.max_attempts = 1000;
	x->req.timeout_ms = 500;
}

/* A service that answers 503 for ever: the time bound, not max_attempts, ends it. */
static void time_bound_covers_every_retry(void)
{
	static const struct step steps[] = { { STEP_ANSWER, 503, NULL, "" } };
	static struct exchange x;

	exchange_run(&x, steps, 1, many_attempts_bound_to_500ms);
	CHECK(x.req.attempts >= 2);
	check_answer(&x, 503, x.req.attempts, NULL);
	CHECK(x.took_ms < 500 + 1000);
}

static void bound_to_300ms(struct exchange *x)
{
	x->req.timeout_ms = 300;
}

/* A service that takes the request and never answers: -ETIMEDOUT at the bound. */
static void time_bound_ends_a_stalled_answer(void)
{
	static const struct step steps[] = { { STEP_STALL, 0, NULL, NULL } };
	static struct exchange x;

	exchange_run(&x, steps, 1, bound_to_300ms);
	CHECK(x.result == -ETIMEDOUT);
	/* libcurl may time on CLOCK_MONOTONIC_RAW, this test on CLOCK_MONOTONIC; while
	 * NTP slews the clock, libcurl's 300 ms measured here were 299.86 ms */
	CHECK(x.took_ms >= 299);
	CHECK(x.took_ms < 300 + 1000);
	CHECK(x.req.status == 0);
	CHECK(x.srv.stalled);
}

int main(void)
{
	log_set_level(LOG_LVL_ERROR);
	RUN(stat_reads_headers_after_one_long_header);
	RUN(stat_reads_headers_after_many_meta_headers);
	RUN(stat_refuses_a_malformed_etag);
	RUN(stat_refuses_a_malformed_content_length);
	RUN(read_takes_the_answer_at_its_offset);
	RUN(read_refuses_an_answer_at_another_offset);
	RUN(files_stat_reads_file_properties);
	RUN(files_stat_without_write_time_takes_last_modified);
	RUN(files_stat_falls_back_to_the_directory);
	RUN(files_stat_of_nothing_is_enoent);
	RUN(files_paths_are_checked_before_any_request);
	RUN(files_name_past_255_characters_is_enametoolong);
	RUN(files_lookup_asks_for_both_at_once);
	RUN(files_read_compares_the_etag);
	RUN(files_read_past_the_end);
	RUN(files_list_gives_entries_and_the_next_marker);
	RUN(files_list_refuses_a_hostile_page);
	RUN(files_has_children_lists_one_entry);
	RUN(files_probe_says_what_is_wrong);
	RUN(files_probe_refuses_anonymous_without_a_request);
	RUN(files_create_root_makes_the_share);
	RUN(files_commit_refuses_blocks_not_end_to_end);
	RUN(backoff_schedule_doubles_with_jitter);
	RUN(retries_wait_longer_each_time);
	RUN(retry_after_seconds_is_honoured);
	RUN(retry_after_past_the_time_bound_ends_the_request);
	RUN(server_errors_and_429_are_retried);
	RUN(client_errors_are_not_retried);
	RUN(reset_mid_answer_is_retried);
	RUN(upload_is_sent_whole_again_on_retry);
	RUN(time_bound_covers_every_retry);
	RUN(time_bound_ends_a_stalled_answer);
	return unit_done();
}
