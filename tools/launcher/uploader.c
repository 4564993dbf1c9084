#include "tools/launcher/uploader.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/base/util.h"
#include "tools/lib/transfer.h"

struct uploader {
	struct store *store;
	struct uploader_file files[UPLOADER_MAX_FILES];
	size_t nfiles;
	int period_ms;
	pthread_t thread;
	pthread_mutex_t lock; /* guards stopping */
	pthread_cond_t wake;  /* on CLOCK_MONOTONIC */
	bool stopping;
	bool failing;         /* the last round failed: said once */
	int last_err;         /* of the last round */
	char last_msg[1024];
};

struct uploader_error {
	char *msg;
	size_t len;
};

static void uploader_on_error(void *ctx, const char *src, const char *dst, const char *message)
{
	struct uploader_error *e = ctx;

	(void)src;
	if (e->len && !e->msg[0])
		util_errf(e->msg, e->len, "%s: %s", dst, message);
}

int uploader_copy(struct store *store, const char *path, const char *local, bool is_dir,
		  char *errbuf, size_t errlen)
{
	struct uploader_error e = { .msg = errbuf, .len = errlen };
	struct transfer_side from = { .path = local };
	struct transfer_side to = { .store = store, .path = path };
	struct transfer_opts topts;
	char why[512] = "";
	int err;

	util_errf(errbuf, errlen, "%s", "");
	transfer_opts_default(&topts);
	topts.on_error = uploader_on_error;
	topts.error_ctx = &e;
	err = transfer_copy(&from, is_dir, &to, &topts, NULL, why, sizeof(why));
	if (err && !errbuf[0])
		util_errf(errbuf, errlen, "%s: %s", path, why[0] ? why : strerror(-err));
	return err;
}

/* Uploads every file once: 0, or the first failure with u->last_msg. */
static int uploader_round(struct uploader *u)
{
	char errbuf[1024];
	int first = 0;

	for (size_t i = 0; i < u->nfiles; i++) {
		int err = uploader_copy(u->store, u->files[i].path, u->files[i].local, false,
					errbuf, sizeof(errbuf));

		if (err && !first) {
			first = err;
			util_errf(u->last_msg, sizeof(u->last_msg), "%s", errbuf);
		}
	}
	return first;
}

static void *uploader_main(void *arg)
{
	struct uploader *u = arg;
	bool last = false;

	while (!last) {
		struct timespec until;
		int err = uploader_round(u);

		if (err && !u->failing)
			fprintf(stderr, "ferry run: could not save the logs (will try again): %s\n",
				u->last_msg);
		u->failing = err != 0;
		u->last_err = err;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += u->period_ms / 1000;
		until.tv_nsec += (long)(u->period_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&u->lock);
		while (!u->stopping &&
		       pthread_cond_timedwait(&u->wake, &u->lock, &until) != ETIMEDOUT)
			;
		last = u->stopping;
		pthread_mutex_unlock(&u->lock);
	}
	u->last_err = uploader_round(u);
	return NULL;
}

int uploader_start(struct store *store, const struct uploader_file *files, size_t nfiles,
		   int period_ms, struct uploader **out)
{
	struct uploader *u;
	pthread_condattr_t attr;
	int err;

	if (nfiles > UPLOADER_MAX_FILES || period_ms <= 0)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->store = store;
	memcpy(u->files, files, nfiles * sizeof(*files));
	u->nfiles = nfiles;
	u->period_ms = period_ms;
	pthread_mutex_init(&u->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&u->wake, &attr);
	pthread_condattr_destroy(&attr);
	err = -pthread_create(&u->thread, NULL, uploader_main, u);
	if (err) {
		pthread_cond_destroy(&u->wake);
		pthread_mutex_destroy(&u->lock);
		free(u);
		return err;
	}
	*out = u;
	return 0;
}

int uploader_stop(struct uploader *u, char *errbuf, size_t errlen)
{
	int err;

	pthread_mutex_lock(&u->lock);
	u->stopping = true;
	pthread_cond_signal(&u->wake);
	pthread_mutex_unlock(&u->lock);
	pthread_join(u->thread, NULL);
	err = u->last_err;
	if (err)
		util_errf(errbuf, errlen, "%s", u->last_msg);
	pthread_cond_destroy(&u->wake);
	pthread_mutex_destroy(&u->lock);
	free(u);
	return err;
}
