#include "tools/launcher/stores.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/base/util.h"

#define STORES_KEY_MAX 2048

struct stores_entry {
	char key[STORES_KEY_MAX]; /* what a store is opened with: its root URI */
	struct datastore_handle *handle;
	struct stores_entry *next;
};

struct stores {
	pthread_mutex_t lock; /* guards entries */
	struct stores_entry *entries;
};

int stores_new(struct stores **out)
{
	struct stores *set = calloc(1, sizeof(*set));

	if (!set)
		return -ENOMEM;
	pthread_mutex_init(&set->lock, NULL);
	*out = set;
	return 0;
}

void stores_free(struct stores *set)
{
	if (!set)
		return;
	while (set->entries) {
		struct stores_entry *e = set->entries;

		set->entries = e->next;
		datastore_close(e->handle);
		free(e);
	}
	pthread_mutex_destroy(&set->lock);
	free(set);
}

/* The root of the datastore t lies in: azureml://datastores/NAME, or the container
 * URL without a path. */
static int stores_root(const struct datastore_target *t, char *out, size_t outlen)
{
	char endpoint[1024];
	int n, err;

	if (t->from_datastore) {
		n = snprintf(out, outlen, "azureml://datastores/%s", t->ds.name);
	} else {
		err = url_endpoint(&t->url, endpoint, sizeof(endpoint));
		if (err)
			return err;
		n = snprintf(out, outlen, "%s/%s", endpoint, t->url.container);
	}
	return n >= 0 && (size_t)n < outlen ? 0 : -ENAMETOOLONG;
}

/* The store of root, opened now if it is not yet. Under set->lock. */
static int stores_open_locked(struct stores *set, const char *root, struct store **out,
			      char *errbuf, size_t errlen)
{
	struct stores_entry *e;
	int err;

	for (e = set->entries; e; e = e->next) {
		if (strcmp(e->key, root) == 0) {
			*out = datastore_store(e->handle);
			return 0;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	memcpy(e->key, root, strlen(root) + 1);
	err = datastore_open(root, NULL, &e->handle, errbuf, errlen);
	if (err) {
		free(e);
		return err;
	}
	e->next = set->entries;
	set->entries = e;
	*out = datastore_store(e->handle);
	return 0;
}

int stores_get(struct stores *set, const char *uri, struct stores_target *out,
	       char *errbuf, size_t errlen)
{
	struct datastore_target *t = malloc(sizeof(*t));
	char root[STORES_KEY_MAX];
	int err;

	if (!t)
		return -ENOMEM;
	err = datastore_resolve(uri, t, errbuf, errlen);
	if (!err) {
		err = stores_root(t, root, sizeof(root));
		if (err)
			util_errf(errbuf, errlen, "%s: the URI is too long", uri);
	}
	if (!err) {
		memcpy(out->path, t->path, sizeof(out->path));
		out->trailing_slash = t->trailing_slash;
		pthread_mutex_lock(&set->lock);
		err = stores_open_locked(set, root, &out->store, errbuf, errlen);
		pthread_mutex_unlock(&set->lock);
	}
	free(t);
	return err;
}

int stores_kind(const struct stores_target *t, enum datastore_kind *out)
{
	struct store_attr attr;
	int err;

	if (!t->path[0]) {
		*out = DATASTORE_DIR;
		return 0;
	}
	err = store_lookup(t->store, t->path, &attr);
	if (err == -ENOENT || (!err && !attr.is_dir && t->trailing_slash)) {
		*out = DATASTORE_MISSING;
		return 0;
	}
	if (err)
		return err;
	*out = attr.is_dir ? DATASTORE_DIR : DATASTORE_FILE;
	return 0;
}

int stores_open_home(struct stores *set, const char *prefix, struct stores_target *home)
{
	char errbuf[1024], conf[PATH_MAX];
	struct datastore ds;
	int err = stores_get(set, prefix, home, errbuf, sizeof(errbuf));

	if (!err)
		return 0;
	if (datastore_load(DATASTORE_DEFAULT_NAME, &ds, conf, sizeof(conf)) != 0)
		ds.builtin = true;
	if (ds.builtin && strstr(errbuf, "Azurite")) /* the datastore said what it is */
		fprintf(stderr, "ferry run: cannot record the run: %s; Azurite also starts with "
			"npx azurite-blob --blobHost 127.0.0.1 --blobPort 10000\n", errbuf);
	else if (ds.builtin)
		fprintf(stderr, "ferry run: cannot record the run: %s; the run store %s is the "
			"local Azurite at http://127.0.0.1:10000 (built in): start one (tools/demo "
			"does, or npx azurite-blob --blobHost 127.0.0.1 --blobPort 10000) or point "
			"it elsewhere with ferry datastore add %s --endpoint URL ...\n",
			errbuf, DATASTORE_DEFAULT_NAME, DATASTORE_DEFAULT_NAME);
	else
		fprintf(stderr, "ferry run: cannot record the run: %s; the run store %s is "
			"container %s at %s (its file in the ferry datastores folder): check that "
			"it answers, or replace it with ferry datastore add %s ...\n",
			errbuf, DATASTORE_DEFAULT_NAME, ds.container, ds.endpoint,
			DATASTORE_DEFAULT_NAME);
	return err;
}
