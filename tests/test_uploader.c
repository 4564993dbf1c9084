/* test_uploader: the log uploader against a store whose writes can be held at a gate
 * and made to fail. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/launcher/uploader.h"
#include "unit.h"

#define LOG_PATH "runs/r/user_logs/std_log.txt"
#define HOUR_MS (3600 * 1000)

/* A store of one object: every put replaces it. */
struct gate_store {
	struct store base;
	pthread_mutex_t lock;  /* guards everything below */
	pthread_cond_t changed;
	bool gated;            /* puts wait while set */
	int waiting;           /* puts waiting at the gate */
	int puts;              /* puts that landed */
	int fail;              /* what puts return when not 0 */
	char data[8192];
	size_t len;
};

static struct gate_store *gate_of(struct store *s)
{
	return (struct gate_store *)s;
}

static int gate_put(struct store *s, const char *path, const void *data, size_t len,
		    const struct store_meta *meta, const struct store_cond *cond,
		    struct store_attr *out)
{
	struct gate_store *g = gate_of(s);
	int err = 0;

	(void)meta;
	(void)cond;
	pthread_mutex_lock(&g->lock);
	g->waiting++;
	pthread_cond_broadcast(&g->changed);
	while (g->gated)
		pthread_cond_wait(&g->changed, &g->lock);
	g->waiting--;
	if (g->fail || strcmp(path, LOG_PATH) != 0 || len >= sizeof(g->data)) {
		err = g->fail ? g->fail : -EINVAL;
	} else {
		memcpy(g->data, data, len);
		g->len = len;
		g->puts++;
	}
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
	if (out)
		memset(out, 0, sizeof(*out));
	return err;
}

static const struct store_ops gate_ops = { .put = gate_put };

static void gate_init(struct gate_store *g)
{
	memset(g, 0, sizeof(*g));
	g->base.ops = &gate_ops;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->changed, NULL);
}

static void gate_destroy(struct gate_store *g)
{
	pthread_cond_destroy(&g->changed);
	pthread_mutex_destroy(&g->lock);
}

/* Waits until *counter reaches n. */
static void gate_wait(struct gate_store *g, const int *counter, int n)
{
	pthread_mutex_lock(&g->lock);
	while (*counter < n)
		pthread_cond_wait(&g->changed, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct gate_store *g)
{
	pthread_mutex_lock(&g->lock);
	g->gated = false;
	pthread_cond_broadcast(&g->changed);
	pthread_mutex_unlock(&g->lock);
}

static char log_file[PATH_MAX];

static void append(FILE *f, const char *text)
{
	fputs(text, f);
	fflush(f);
}

static bool holds(struct gate_store *g, const char *text)
{
	bool same;

	pthread_mutex_lock(&g->lock);
	same = g->len == strlen(text) && memcmp(g->data, text, g->len) == 0;
	pthread_mutex_unlock(&g->lock);
	return same;
}

/* A log file with its first line, and an uploader of it to g (set up beforehand). */
struct fixture {
	struct gate_store *g;
	FILE *log;
	struct uploader *up;
	char errbuf[256];
};

static void fixture_start(struct fixture *fx, struct gate_store *g, const char *first)
{
	const struct uploader_file file = { .local = log_file, .path = LOG_PATH };

	fx->g = g;
	fx->errbuf[0] = '\0';
	fx->log = fopen(log_file, "w");
	if (!fx->log)
		abort();
	append(fx->log, first);
	CHECK(uploader_start(&g->base, &file, 1, HOUR_MS, &fx->up) == 0);
}

/* Stops the uploader: what uploader_stop() returned. */
static int fixture_stop(struct fixture *fx)
{
	int err = uploader_stop(fx->up, fx->errbuf, sizeof(fx->errbuf));

	fclose(fx->log);
	return err;
}

static void uploads_at_once_and_once_more_at_stop(void)
{
	struct gate_store g;
	struct fixture fx;

	gate_init(&g);
	fixture_start(&fx, &g, "one\n");
	gate_wait(&g, &g.puts, 1);
	CHECK(holds(&g, "one\n"));
	append(fx.log, "two\n");
	CHECK(fixture_stop(&fx) == 0);
	CHECK(g.puts == 2);
	CHECK(holds(&g, "one\ntwo\n"));
	gate_destroy(&g);
}

static void writer_goes_on_while_an_upload_stalls(void)
{
	struct gate_store g;
	struct fixture fx;

	gate_init(&g);
	g.gated = true;
	fixture_start(&fx, &g, "before\n");
	gate_wait(&g, &g.waiting, 1); /* the first upload is held */
	for (int i = 0; i < 100; i++)
		append(fx.log, "while the store stalls\n"); /* nothing here waits for it */
	append(fx.log, "after\n");
	CHECK(g.puts == 0);
	gate_open(&g);
	CHECK(fixture_stop(&fx) == 0);
	pthread_mutex_lock(&g.lock);
	CHECK(g.len > 7 && memcmp(g.data + g.len - 6, "after\n", 6) == 0);
	pthread_mutex_unlock(&g.lock);
	gate_destroy(&g);
}

static void stop_reports_a_last_round_that_failed(void)
{
	struct gate_store g;
	struct fixture fx;

	gate_init(&g);
	g.fail = -EACCES;
	fixture_start(&fx, &g, "lost\n");
	CHECK(fixture_stop(&fx) < 0);
	CHECK(strstr(fx.errbuf, LOG_PATH) != NULL);
	CHECK(g.puts == 0);
	gate_destroy(&g);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(log_file, sizeof(log_file), "%s/ferry-test-uploader-%d.txt",
		 tmp ? tmp : "/tmp", (int)getpid());
	RUN(uploads_at_once_and_once_more_at_stop);
	RUN(writer_goes_on_while_an_upload_stalls);
	RUN(stop_reports_a_last_round_that_failed);
	unlink(log_file);
	return unit_done();
}
