/* stores: the datastores one run uses, each opened once and kept for the run.
 *
 * A URI (azureml://datastores/NAME/paths/PATH or a container URL) is split into its
 * datastore and the path inside it; the first URI of a datastore opens it
 * (datastore_open: credential, HTTP pool, probe), later ones reuse that store. Two
 * URIs share a store when they name the same datastore, or, for container URLs, the
 * same container. Thread-safe; a store stays valid until stores_free().
 */
#ifndef FERRY_STORES_H
#define FERRY_STORES_H

#include <stdbool.h>
#include <stddef.h>

#include "cache/store/datastore.h"

struct stores;

int stores_new(struct stores **out);
/* Closes every store. */
void stores_free(struct stores *set);

/* Where a URI points: its store (owned by the set), the path inside it ("" for the
 * root), and whether the URI ended with '/'. */
struct stores_target {
	struct store *store;
	char path[DATASTORE_PATH_MAX];
	bool trailing_slash;
};

/* Opens (or reuses) the store of uri. errbuf: datastore_open's line on failure. */
int stores_get(struct stores *set, const char *uri, struct stores_target *out,
	       char *errbuf, size_t errlen);

/* What the target names: DATASTORE_FILE, DATASTORE_DIR or DATASTORE_MISSING (a path
 * ending with '/' names only a folder). -errno of the store when it cannot tell. */
int stores_kind(const struct stores_target *t, enum datastore_kind *out);

/* Opens the run store (the default datastore) for the run folder prefix
 * (azureml://datastores/workspaceblobstore/paths/runs/<id>/), which checks that it
 * answers; when it does not, says on stderr why and what to do. */
int stores_open_home(struct stores *set, const char *prefix, struct stores_target *home);

#endif
