/* open: the one way to turn a container URL, an azureml:// URI or a datastore name into
 * a ready store that owns its credential and its HTTP pool.
 *
 * In two steps, because a mount forks its daemon in between and nothing that holds
 * threads may exist before the fork: store_resolve() needs no network and starts no
 * thread (it parses, loads the datastore record, builds the credential and checks the
 * https policy); store_spec_open() starts the HTTP pool, builds the blob client and
 * probes. store_open() does both. store_destroy() of the store releases everything.
 * Errors come with one line for a person in errbuf (what failed and what to do), never
 * a secret.
 */
#ifndef FERRY_OPEN_H
#define FERRY_OPEN_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "cache/store/store.h"
#include "cache/store/url.h"

struct auth_cred;
struct datastore_target; /* cache/store/datastore.h */

struct store_open_opts {
	/* credential files for container URLs and for datastores with credential "env";
	 * read by store_resolve() */
	const char *account_key_file;
	const char *sas_file;
	const char *bearer_token_file;
	const char *ca_file; /* extra CA bundle, or NULL */
	bool allow_http;     /* plain http to a host that is not loopback */
	int workers;         /* HTTP worker threads (parallel requests) */
	int timeout_s;       /* bound on one store operation, retries included */
	/* A credential built by the caller, used instead of every other source; borrowed:
	 * it must outlive the store. */
	const struct auth_cred *cred;
	/* false: the store is rooted at the URI's path (what a mount serves); true: at the
	 * container plus the datastore's prefix, with the URI's path in the target's path
	 * (what ferry ls and cp use, to tell a file from a folder). */
	bool root_at_container;
	/* What a path-style URL's root is (-o kind=blob|file): a host-style URL says it
	 * itself, and a datastore its type; a kind that contradicts them is refused. */
	bool kind_given;
	enum url_kind kind;
};

/* No files, https only off loopback, 8 workers, 60 s, rooted at the URI's path. */
void store_open_opts_default(struct store_open_opts *opts);

/* A resolved store, not yet open. */
struct store_spec;

/* Resolves uri: a container URL (no query string), azureml://datastores/NAME/paths/PATH,
 * or a datastore NAME (its root). opts NULL: defaults. Makes no request and starts no
 * thread. -EPERM for plain http to a host that is not loopback without allow_http;
 * datastore_resolve()'s and auth_resolve()'s errors otherwise. */
int store_resolve(const char *uri, const struct store_open_opts *opts,
		  struct store_spec **out, char *errbuf, size_t errlen);

/* What spec names: the store's root (url) and the path inside it ("" unless
 * root_at_container). */
const struct datastore_target *store_spec_target(const struct store_spec *spec);
/* When the spec's credential stops working (auth_cred_expiry()): 0 for none. */
int64_t store_spec_expiry(const struct store_spec *spec);

/* Starts the HTTP pool, builds the store and probes it (creating the container of a
 * datastore with create_container). The store takes the credential and the pool: call
 * it once per spec; the spec may be freed after it. */
int store_spec_open(struct store_spec *spec, struct store **out, char *errbuf,
		    size_t errlen);

void store_spec_free(struct store_spec *spec);

/* store_resolve() and store_spec_open() in one call. */
int store_open(const char *uri, const struct store_open_opts *opts, struct store **out,
	       char *errbuf, size_t errlen);

#endif
