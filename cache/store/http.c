#include "cache/store/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/base/log.h"
#include "auth/base/util.h"

#define HTTP_RECV_BUFFER (512L << 10)
#define HTTP_SEND_BUFFER (512L << 10)

/* The thread in http_execute_all() waiting for its batch: only it is woken when one of
 * its requests ends, not every caller with a request in flight. On its stack. */
struct http_waiter {
	pthread_cond_t cond; /* signalled when pending reaches 0 */
	size_t pending;      /* jobs of the batch not done yet; guarded by client.lock */
};

/* One queued request; lives on the stack of the thread in http_execute(). */
struct http_job {
	struct http_request *req;
	int result;
	struct http_waiter *waiter;
	struct http_job *next;
};

struct http_client {
	struct http_client_opts opts;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	pthread_mutex_t lock; /* guards queue_head, queue_tail, stopping, started */
	pthread_cond_t queue_cond;   /* signalled when a job is queued or stopping is set */
	pthread_cond_t started_cond; /* signalled when a worker has started */
	struct http_job *queue_head, *queue_tail;
	bool stopping;

	pthread_t *threads;
	int nthreads;
	int started; /* workers that reached their first wait for work; guarded by lock */
};

/* State of one attempt, shared with curl's callbacks. */
struct http_attempt {
	struct http_request *req;
	CURL *easy;
	int sink_error; /* what body_fn returned, or -EOVERFLOW for body_buf */
};

struct http_answer {
	CURL *easy; /* the handle that made the final attempt, not yet reused */
};

static pthread_once_t http_global_once = PTHREAD_ONCE_INIT;

static struct {
	atomic_uint_least64_t requests[HTTP_KINDS];
	atomic_uint_least64_t retries, errors, bytes_in, bytes_out;
} http_counters;

static enum http_kind http_kind_of(const char *method)
{
	static const char *const names[] = { "GET", "HEAD", "PUT", "DELETE" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(method, names[i]) == 0)
			return (enum http_kind)i;
	return HTTP_OTHER;
}

const char *http_kind_name(enum http_kind kind)
{
	static const char *const names[HTTP_KINDS] = { "GET", "HEAD", "PUT", "DELETE", "other" };

	return kind < HTTP_KINDS ? names[kind] : "other";
}

/* At most one warning about retries this often: a storm is said, not each drop. */
#define HTTP_RETRY_WARN_S 10

static _Atomic int64_t http_retry_warned; /* when the last warning was logged */
static atomic_uint_least64_t http_retried_since; /* operations retried since */

/* An operation that got its answer only after retries: counted, and said at most every
 * HTTP_RETRY_WARN_S seconds at the warning level with how many there were. (One that
 * failed in the end is its caller's to report.) */
static void http_note_retried(const struct http_request *req)
{
	struct timespec ts;
	int64_t last, now;
	uint64_t n = atomic_fetch_add(&http_retried_since, 1) + 1;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec;
	last = atomic_load(&http_retry_warned);
	if (last && now - last < HTTP_RETRY_WARN_S)
		return;
	if (!atomic_compare_exchange_strong(&http_retry_warned, &last, now))
		return;
	atomic_fetch_sub(&http_retried_since, n);
	log_warn("%llu request(s) were answered only after retries since the last warning of "
		 "it; the latest: %s %s took %d attempts",
		 (unsigned long long)n, req->method, req->url, req->attempts);
}

/* Counts what req, now done with result, did. */
static void http_count(const struct http_request *req, int result)
{
	long st = req->status;
	bool failed = result || st == 401 || st == 403 || st == 429 || st >= 500;

	atomic_fetch_add_explicit(&http_counters.requests[http_kind_of(req->method)], 1,
				  memory_order_relaxed);
	if (req->attempts > 1)
		atomic_fetch_add_explicit(&http_counters.retries, (uint64_t)req->attempts - 1,
					  memory_order_relaxed);
	if (req->attempts > 1 && !failed)
		http_note_retried(req);
	if (failed)
		atomic_fetch_add_explicit(&http_counters.errors, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&http_counters.bytes_in, req->body_len, memory_order_relaxed);
	atomic_fetch_add_explicit(&http_counters.bytes_out,
				  (uint64_t)req->upload_len * (uint64_t)(req->attempts ? req->attempts : 1),
				  memory_order_relaxed);
}

void http_get_stats(struct http_stats *out)
{
	for (int i = 0; i < HTTP_KINDS; i++)
		out->requests[i] = atomic_load_explicit(&http_counters.requests[i],
							memory_order_relaxed);
	out->retries = atomic_load_explicit(&http_counters.retries, memory_order_relaxed);
	out->errors = atomic_load_explicit(&http_counters.errors, memory_order_relaxed);
	out->bytes_in = atomic_load_explicit(&http_counters.bytes_in, memory_order_relaxed);
	out->bytes_out = atomic_load_explicit(&http_counters.bytes_out, memory_order_relaxed);
}
static CURLcode http_global_result;

static void http_global_init(void)
{
	http_global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void http_client_opts_default(struct http_client_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->workers = 8;
	opts->op_timeout_ms = 60000;
	opts->connect_timeout_ms = 5000;
	opts->max_attempts = 8;
	opts->backoff_base_ms = 100;
	opts->backoff_max_ms = 8000;
}

static void http_share_lock(CURL *easy, curl_lock_data data, curl_lock_access access,
			    void *ctx)
{
	struct http_client *c = ctx;

	(void)easy;
	(void)access;
	pthread_mutex_lock(&c->share_locks[data]);
}

static void http_share_unlock(CURL *easy, curl_lock_data data, void *ctx)
{
	struct http_client *c = ctx;

	(void)easy;
	pthread_mutex_unlock(&c->share_locks[data]);
}

static uint64_t http_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void http_sleep_ms(uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
			       .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static size_t http_on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_attempt *at = userp;
	struct http_request *req = at->req;
	size_t len = size * nmemb;
	long status = 0;
	int err;

	curl_easy_getinfo(at->easy, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status >= 300)
		return len; /* an error body: the status and x-ms-error-code say enough */
	if (req->body_fn) {
		err = req->body_fn(req->ctx, data, len);
		if (err) {
			at->sink_error = err;
			return 0;
		}
	} else if (req->body_buf) {
		if (len > req->body_cap - req->body_len) {
			at->sink_error = -EOVERFLOW;
			return 0;
		}
		memcpy((char *)req->body_buf + req->body_len, data, len);
	}
	req->body_len += len;
	return len;
}

struct http_upload {
	const char *data;
	size_t len, pos;
};

static size_t http_on_read(char *buf, size_t size, size_t nmemb, void *userp)
{
	struct http_upload *up = userp;
	size_t n = size * nmemb;

	if (n > up->len - up->pos)
		n = up->len - up->pos;
	memcpy(buf, up->data + up->pos, n);
	up->pos += n;
	return n;
}

/* curl rewinds the body to send it again, e.g. on a reused connection that turned out
 * dead; without this it fails with CURLE_SEND_FAIL_REWIND instead. */
static int http_on_seek(void *userp, curl_off_t offset, int origin)
{
	struct http_upload *up = userp;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > up->len)
		return CURL_SEEKFUNC_FAIL;
	up->pos = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static bool http_status_retryable(long status)
{
	return status == 408 || status == 429 || status == 500 || status == 502 ||
	       status == 503 || status == 504;
}

static bool http_curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SEND_FAIL_REWIND:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

/* Retry-After in seconds (the service sends delta-seconds; a date is not honoured),
 * or 0 when absent or malformed. */
static uint64_t http_retry_after_ms(const struct http_answer *answer)
{
	char value[24];
	uint64_t secs;

	if (http_header(answer, "retry-after", value, sizeof(value)) != 0 ||
	    http_parse_u64(value, &secs) != 0 || secs > UINT64_MAX / 1000)
		return 0;
	return secs * 1000;
}

uint64_t http_backoff_ms(const struct http_client_opts *opts, int retry, unsigned int *seed)
{
	uint64_t base = (uint64_t)opts->backoff_base_ms, max = (uint64_t)opts->backoff_max_ms;

	for (; retry > 0 && base < max; retry--)
		base *= 2;
	if (base > max)
		base = max;
	return base / 2 + (uint64_t)rand_r(seed) % (base - base / 2);
}

/* Runs one attempt: 0 with *rc_out curl's result (and, when an answer came, req->status,
 * req->error_code and *retry_after_ms set), or what prepare or the body sink returned. */
static int http_attempt_once(struct http_client *c, CURL *easy, struct http_request *req,
			     uint64_t remaining_ms, CURLcode *rc_out, uint64_t *retry_after_ms)
{
	struct http_attempt at = { .req = req, .easy = easy };
	struct http_upload up = { .data = req->upload, .len = req->upload_len };
	struct http_answer answer = { .easy = easy };
	struct curl_slist *headers = NULL, *tmp;
	int err;

	req->nheaders = 0;
	req->body_len = 0;
	req->error_code[0] = '\0';
	*retry_after_ms = 0;
	req->status = 0;
	if (req->prepare) {
		err = req->prepare(req->ctx, req);
		if (err)
			return err;
	}
	for (size_t i = 0; i < req->nheaders; i++) {
		tmp = curl_slist_append(headers, req->headers[i]);
		if (!tmp)
			goto out_nomem;
		headers = tmp;
	}
	tmp = curl_slist_append(headers, "Expect:");
	if (!tmp)
		goto out_nomem;
	headers = tmp;

	curl_easy_reset(easy);
	curl_easy_setopt(easy, CURLOPT_SHARE, c->share);
	curl_easy_setopt(easy, CURLOPT_URL, req->url);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	/* The shared cache keeps a connection for every worker: at libcurl's default (5),
	 * a 6th request in flight closed an idle one each time it ended, and with 8 readers
	 * nearly every request paid a new connection (a TLS handshake on Azure). */
	curl_easy_setopt(easy, CURLOPT_MAXCONNECTS, (long)c->opts.workers);
	/* Bodies are blocks of megabytes: fewer, larger receives and sends (the defaults
	 * are 16 KiB and 64 KiB) spend less CPU per byte. */
	curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER);
	curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, HTTP_SEND_BUFFER);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)c->opts.connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)remaining_ms);
	/* A stalled transfer (no byte for 15 s) is cut and retried. */
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, 15L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, &at);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, req->error_text);
	if (c->opts.ca_file)
		curl_easy_setopt(easy, CURLOPT_CAINFO, c->opts.ca_file);
	if (strcmp(req->method, "HEAD") == 0) {
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	} else if (strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);
		curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(easy, CURLOPT_READFUNCTION, http_on_read);
		curl_easy_setopt(easy, CURLOPT_READDATA, &up);
		curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, http_on_seek);
		curl_easy_setopt(easy, CURLOPT_SEEKDATA, &up);
		curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up.len);
	}
	req->error_text[0] = '\0';
	*rc_out = curl_easy_perform(easy);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(headers);
	if (at.sink_error && *rc_out == CURLE_WRITE_ERROR)
		return at.sink_error;
	if (*rc_out == CURLE_OK) {
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &req->status);
		if (http_header(&answer, "x-ms-error-code", req->error_code,
				sizeof(req->error_code)) != 0)
			req->error_code[0] = '\0';
		*retry_after_ms = http_retry_after_ms(&answer);
	} else if (!req->error_text[0]) {
		util_errf(req->error_text, sizeof(req->error_text), "%s",
			  curl_easy_strerror(*rc_out));
	}
	return 0;

out_nomem:
	curl_slist_free_all(headers);
	return -ENOMEM;
}

/* The final answer came: its headers go to the caller's headers_fn. */
static int http_answered(CURL *easy, struct http_request *req)
{
	struct http_answer answer = { .easy = easy };

	return req->headers_fn ? req->headers_fn(req->ctx, req, &answer) : 0;
}

static int http_run(struct http_client *c, CURL *easy, struct http_request *req,
		    unsigned int *seed)
{
	int max_attempts = req->max_attempts > 0 ? req->max_attempts : c->opts.max_attempts;
	int timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : c->opts.op_timeout_ms;
	/* In microseconds: a deadline kept in whole milliseconds ends up to 1 ms early. */
	uint64_t deadline = http_now_us() + (uint64_t)timeout_ms * 1000;
	CURLcode rc = CURLE_OK;
	int err;

	for (req->attempts = 1;; req->attempts++) {
		uint64_t now = http_now_us(), wait, retry_after;

		if (now >= deadline)
			return -ETIMEDOUT;
		err = http_attempt_once(c, easy, req, (deadline - now + 999) / 1000, &rc,
					&retry_after);
		if (err)
			return err;
		if (rc == CURLE_OK && !http_status_retryable(req->status))
			return http_answered(easy, req);
		if (rc != CURLE_OK && !http_curl_retryable(rc)) {
			log_warn("%s %s: %s", req->method, req->url, req->error_text);
			return -ECONNRESET;
		}
		if (req->attempts >= max_attempts)
			break;
		wait = http_backoff_ms(&c->opts, req->attempts - 1, seed);
		if (retry_after > wait)
			wait = retry_after;
		log_info("%s %s: %s, attempt %d, retrying in %llu ms", req->method, req->url,
			 rc == CURLE_OK ? req->error_code : req->error_text, req->attempts,
			 (unsigned long long)wait);
		if (http_now_us() + wait * 1000 >= deadline)
			return rc == CURLE_OK ? http_answered(easy, req) : -ETIMEDOUT;
		http_sleep_ms(wait);
	}
	if (rc == CURLE_OK)
		return http_answered(easy, req); /* the caller maps its status */
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return -ETIMEDOUT;
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		return -EHOSTUNREACH;
	return -ECONNRESET;
}

static void *http_worker(void *arg)
{
	struct http_client *c = arg;
	unsigned int seed = (unsigned int)(uintptr_t)&seed ^ (unsigned int)http_now_us();
	CURL *easy = curl_easy_init();
	struct http_job *job;

	pthread_mutex_lock(&c->lock);
	c->started++;
	pthread_cond_signal(&c->started_cond); /* http_client_new() waits for it */
	for (;;) {
		while (!c->queue_head && !c->stopping)
			pthread_cond_wait(&c->queue_cond, &c->lock);
		if (!c->queue_head)
			break; /* stopping, queue drained */
		job = c->queue_head;
		c->queue_head = job->next;
		if (!c->queue_head)
			c->queue_tail = NULL;
		pthread_mutex_unlock(&c->lock);

		job->result = easy ? http_run(c, easy, job->req, &seed) : -ENOMEM;
		http_count(job->req, job->result);
		log_debug("%s %s: %ld after %d attempt(s), %zu bytes in, %zu out: %s",
			  job->req->method, job->req->url, job->req->status, job->req->attempts,
			  job->req->body_len, job->req->upload_len,
			  job->result ? strerror(-job->result) : "answered");

		pthread_mutex_lock(&c->lock);
		if (--job->waiter->pending == 0)
			pthread_cond_signal(&job->waiter->cond);
	}
	pthread_mutex_unlock(&c->lock);
	if (easy)
		curl_easy_cleanup(easy);
	return NULL;
}

int http_client_new(const struct http_client_opts *opts, struct http_client **out)
{
	struct http_client *c;
	int err;

	if (opts->workers < 1 || opts->max_attempts < 1 || opts->op_timeout_ms < 1 ||
	    opts->backoff_base_ms < 2 || opts->backoff_max_ms < opts->backoff_base_ms)
		return -EINVAL;
	pthread_once(&http_global_once, http_global_init);
	if (http_global_result != CURLE_OK)
		return -EIO;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->opts = *opts;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->queue_cond, NULL);
	pthread_cond_init(&c->started_cond, NULL);
	c->share = curl_share_init();
	if (!c->share) {
		err = -ENOMEM;
		goto out_free;
	}
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, http_share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, http_share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);

	c->threads = calloc((size_t)opts->workers, sizeof(*c->threads));
	if (!c->threads) {
		err = -ENOMEM;
		goto out_free;
	}
	for (; c->nthreads < opts->workers; c->nthreads++) {
		err = -pthread_create(&c->threads[c->nthreads], NULL, http_worker, c);
		if (err)
			goto out_free;
	}
	/* Returns once every worker waits for work, its start-up done: the run-launcher
	 * forks mount daemons right after a request, and a thread still starting (in
	 * the allocator, in ASan's thread registry) would leave the child a lock no
	 * thread of its own will ever release. */
	pthread_mutex_lock(&c->lock);
	while (c->started < c->nthreads)
		pthread_cond_wait(&c->started_cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	*out = c;
	return 0;

out_free:
	http_client_free(c);
	return err;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->queue_cond);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < c->nthreads; i++)
		pthread_join(c->threads[i], NULL);
	free(c->threads);
	if (c->share)
		curl_share_cleanup(c->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->queue_cond);
	pthread_cond_destroy(&c->started_cond);
	free(c);
}

int http_execute_all(struct http_client *c, struct http_request *const *reqs, size_t n,
		     int *results)
{
	struct http_job jobs[HTTP_BATCH_MAX];
	struct http_waiter waiter = { .pending = n };

	if (n == 0 || n > HTTP_BATCH_MAX)
		return -EINVAL;
	memset(jobs, 0, sizeof(jobs));
	pthread_cond_init(&waiter.cond, NULL);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++) {
		jobs[i].req = reqs[i];
		jobs[i].waiter = &waiter;
		if (c->queue_tail)
			c->queue_tail->next = &jobs[i];
		else
			c->queue_head = &jobs[i];
		c->queue_tail = &jobs[i];
	}
	if (n > 1)
		pthread_cond_broadcast(&c->queue_cond);
	else
		pthread_cond_signal(&c->queue_cond);
	while (waiter.pending)
		pthread_cond_wait(&waiter.cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	pthread_cond_destroy(&waiter.cond);
	for (size_t i = 0; i < n; i++)
		results[i] = jobs[i].result;
	return 0;
}

int http_execute(struct http_client *c, struct http_request *req)
{
	int result;
	int err = http_execute_all(c, &req, 1, &result);

	return err ? err : result;
}

int http_header(const struct http_answer *answer, const char *name, char *out,
		size_t outlen)
{
	struct curl_header *h;
	size_t len;

	switch (curl_easy_header(answer->easy, name, 0, CURLH_HEADER, -1, &h)) {
	case CURLHE_OK:
		break;
	case CURLHE_MISSING:
	case CURLHE_NOHEADERS:
		return -ENOENT;
	case CURLHE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EINVAL;
	}
	if (h->amount != 1)
		return -EBADMSG;
	len = strlen(h->value);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)h->value[i] < ' ' || h->value[i] == 0x7f)
			return -EBADMSG;
	if (len >= outlen)
		return -ENOSPC;
	memcpy(out, h->value, len + 1);
	return 0;
}

int http_parse_u64(const char *s, uint64_t *out)
{
	uint64_t value = 0;
	size_t digits = strspn(s, "0123456789");

	if (digits == 0 || s[digits] != '\0')
		return -EINVAL;
	for (size_t i = 0; i < digits; i++) {
		uint64_t digit = (uint64_t)(s[i] - '0');

		if (value > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		value = value * 10 + digit;
	}
	*out = value;
	return 0;
}

int http_parse_date(const char *s, int64_t *out)
{
	struct tm tm;
	const char *end;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end != '\0')
		return -EINVAL;
	*out = (int64_t)timegm(&tm);
	return 0;
}
