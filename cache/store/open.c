/* open: container URLs, azureml:// URIs and datastore names turned into a ready store. */
#include "cache/store/open.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/base/util.h"
#include "cache/store/blob.h"
#include "cache/store/files.h"
#include "cache/store/datastore.h"
#include "cache/store/http.h"
#include "cache/store/url.h"

#define STORE_DEFAULT_WORKERS 8
#define STORE_DEFAULT_TIMEOUT_S 60

struct store_spec {
	struct datastore_target target;
	struct auth_cred *owned_cred;  /* NULL when the caller's cred is used */
	const struct auth_cred *cred; /* owned_cred, or the caller's */
	char *ca_file;
	int workers;
	int timeout_s;
	bool opened; /* store_spec_open() was called: the store took what it needs */
};

/* What a store from store_open() was built on, freed after it. */
struct store_base {
	struct http_client *http;
	struct auth_cred *cred;
	char *ca_file; /* the pool reads it for every new connection */
};

void store_open_opts_default(struct store_open_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->workers = STORE_DEFAULT_WORKERS;
	opts->timeout_s = STORE_DEFAULT_TIMEOUT_S;
}

void store_spec_free(struct store_spec *spec)
{
	if (!spec)
		return;
	auth_cred_free(spec->owned_cred);
	free(spec->ca_file);
	free(spec);
}

const struct datastore_target *store_spec_target(const struct store_spec *spec)
{
	return &spec->target;
}

int64_t store_spec_expiry(const struct store_spec *spec)
{
	return auth_cred_expiry(spec->cred);
}

/* The credential a datastore record asks for, or the one of the files and the
 * environment for a container URL and a datastore with credential "env". */
static int store_credential(struct store_spec *spec, const struct store_open_opts *opts,
			    char *errbuf, size_t errlen)
{
	const struct datastore *ds = &spec->target.ds;
	struct auth_sources src = { .account = spec->target.url.account };
	char secret_path[PATH_MAX];
	int err;

	if (!spec->target.from_datastore || ds->cred == DATASTORE_CRED_ENV) {
		src.account_key_file = opts->account_key_file;
		src.sas_file = opts->sas_file;
		src.bearer_token_file = opts->bearer_token_file;
		return auth_resolve(&src, &spec->owned_cred, errbuf, errlen);
	}
	switch (ds->cred) {
	case DATASTORE_CRED_NONE:
		return auth_cred_anonymous(&spec->owned_cred);
	case DATASTORE_CRED_EMULATOR:
		err = auth_cred_shared_key(ds->account, AUTH_DEV_KEY, &spec->owned_cred);
		if (err)
			util_errf(errbuf, errlen, "datastore %s: cannot use the emulator's key: %s",
				  ds->name, strerror(-err));
		return err;
	case DATASTORE_CRED_ACCOUNT_KEY:
	case DATASTORE_CRED_SAS:
		if (datastore_secret_path(ds->name, secret_path, sizeof(secret_path))) {
			util_errf(errbuf, errlen, "the config directory path is too long");
			return -ENAMETOOLONG;
		}
		err = datastore_check_secret(secret_path, errbuf, errlen);
		if (err)
			return err;
		if (ds->cred == DATASTORE_CRED_ACCOUNT_KEY)
			src.account_key_file = secret_path;
		else
			src.sas_file = secret_path;
		return auth_resolve(&src, &spec->owned_cred, errbuf, errlen);
	default:
		util_errf(errbuf, errlen, "datastore %s: unknown credential", ds->name);
		return -EINVAL;
	}
}

/* Moves the target's path into the root: the store is then rooted at the URI's path. */
static int store_root_at_path(struct datastore_target *t, char *errbuf, size_t errlen)
{
	struct url_container *u = &t->url;
	char prefix[sizeof(u->prefix)];
	int err;

	if (!t->path[0])
		return 0;
	err = util_path_join(prefix, sizeof(prefix), u->prefix, t->path);
	if (err) {
		util_errf(errbuf, errlen, "the path is longer than a blob name may be (1024)");
		return err;
	}
	memcpy(u->prefix, prefix, sizeof(prefix));
	t->path[0] = '\0';
	return 0;
}

/* -o kind=: what a path-style URL's root is. */
static int store_set_kind(struct datastore_target *t, enum url_kind kind, char *errbuf,
			  size_t errlen)
{
	const char *names[] = { [URL_BLOB] = "blob", [URL_FILE] = "file" };

	if (t->url.kind != kind && (t->from_datastore || !t->url.path_style)) {
		util_errf(errbuf, errlen, "kind=%s, but %s is a %s %s", names[kind],
			  t->from_datastore ? t->ds.name : t->url.host, names[t->url.kind],
			  t->from_datastore ? "datastore" : "service host");
		return -EINVAL;
	}
	t->url.kind = kind;
	return 0;
}

int store_resolve(const char *uri, const struct store_open_opts *opts_in,
		  struct store_spec **out, char *errbuf, size_t errlen)
{
	struct store_open_opts defaults;
	const struct store_open_opts *opts = opts_in;
	char named[DATASTORE_NAME_MAX + 32];
	struct store_spec *spec;
	int err;

	*out = NULL;
	if (!opts) {
		store_open_opts_default(&defaults);
		opts = &defaults;
	}
	spec = calloc(1, sizeof(*spec));
	if (!spec || (opts->ca_file && !(spec->ca_file = strdup(opts->ca_file)))) {
		store_spec_free(spec);
		util_errf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	spec->workers = opts->workers > 0 ? opts->workers : STORE_DEFAULT_WORKERS;
	spec->timeout_s = opts->timeout_s > 0 ? opts->timeout_s : STORE_DEFAULT_TIMEOUT_S;
	/* A bare datastore name is its root. */
	if (uri && !datastore_is_uri(uri) && datastore_name_valid(uri)) {
		snprintf(named, sizeof(named), "azureml://datastores/%s", uri);
		uri = named;
	}
	err = datastore_resolve(uri, &spec->target, errbuf, errlen);
	if (!err && opts->kind_given)
		err = store_set_kind(&spec->target, opts->kind, errbuf, errlen);
	if (!err && !opts->root_at_container)
		err = store_root_at_path(&spec->target, errbuf, errlen);
	if (err)
		goto out_free;
	if (strcmp(spec->target.url.scheme, "http") == 0 &&
	    !url_host_is_loopback(spec->target.url.host) && !opts->allow_http) {
		util_errf(errbuf, errlen,
			  "refusing plain http to %s: credentials and data would cross the "
			  "network unencrypted; use https, or -o allow_http if you must",
			  spec->target.url.host);
		err = -EPERM;
		goto out_free;
	}
	if (opts->cred)
		spec->cred = opts->cred;
	else if (!(err = store_credential(spec, opts, errbuf, errlen)))
		spec->cred = spec->owned_cred;
	if (err)
		goto out_free;
	*out = spec;
	return 0;
out_free:
	store_spec_free(spec);
	return err;
}

static void store_base_release(void *ctx)
{
	struct store_base *base = ctx;

	http_client_free(base->http);
	auth_cred_free(base->cred);
	free(base->ca_file);
	free(base);
}

/* Probes the store, creating the container of a datastore that asks for it. */
static int store_probe_target(struct store *store, const struct datastore_target *t,
			      char *errbuf, size_t errlen)
{
	const struct datastore *ds = &t->ds;
	char endpoint[512];
	size_t used;
	int err;

	err = store_probe(store, errbuf, errlen);
	if (err == -ENOENT && t->from_datastore && ds->create_container) {
		err = store_create_root(store);
		if (err) {
			util_errf(errbuf, errlen,
				  "cannot create container '%s' of datastore %s at %s: %s",
				  ds->container, ds->name, ds->endpoint,
				  err == -EACCES ? "the credential may not create containers"
						 : strerror(-err));
			return err;
		}
		err = store_probe(store, errbuf, errlen);
	}
	if ((err == -EHOSTUNREACH || err == -ECONNRESET || err == -ETIMEDOUT) &&
	    t->from_datastore && ds->builtin &&
	    errbuf && errlen && url_endpoint(&t->url, endpoint, sizeof(endpoint)) == 0) {
		used = strnlen(errbuf, errlen);
		util_errf(errbuf + used, errlen - used,
			  " (the built-in datastore %s is the local Azurite at %s: start it "
			  "(tools/demo does), or override it with 'ferry datastore add %s ...')",
			  ds->name, endpoint, ds->name);
	}
	return err;
}

int store_spec_open(struct store_spec *spec, struct store **out, char *errbuf,
		    size_t errlen)
{
	struct http_client_opts hopts;
	struct blob_config bcfg;
	struct store_base *base;
	struct store *store;
	int err;

	*out = NULL;
	if (spec->opened) {
		util_errf(errbuf, errlen, "this store was opened already");
		return -EINVAL;
	}
	spec->opened = true;
	base = calloc(1, sizeof(*base));
	if (!base) {
		util_errf(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	base->ca_file = spec->ca_file;
	spec->ca_file = NULL;
	http_client_opts_default(&hopts);
	hopts.workers = spec->workers;
	hopts.op_timeout_ms = spec->timeout_s * 1000;
	hopts.ca_file = base->ca_file;
	err = http_client_new(&hopts, &base->http);
	if (err) {
		util_errf(errbuf, errlen, "cannot start the HTTP client: %s", strerror(-err));
		goto out_release;
	}
	if (spec->target.url.kind == URL_FILE) {
		struct files_config fcfg = { .url = &spec->target.url, .cred = spec->cred,
					     .http = base->http };

		err = files_store_new(&fcfg, &store);
	} else {
		bcfg = (struct blob_config){ .url = &spec->target.url, .cred = spec->cred,
					     .http = base->http };
		err = blob_store_new(&bcfg, &store);
	}
	if (err) {
		util_errf(errbuf, errlen, "cannot use container '%s': %s",
			  spec->target.url.container, strerror(-err));
		goto out_release;
	}
	/* From here the store owns the pool and the credential. */
	base->cred = spec->owned_cred;
	spec->owned_cred = NULL;
	store->release = store_base_release;
	store->release_ctx = base;
	err = store_probe_target(store, &spec->target, errbuf, errlen);
	if (err) {
		store_destroy(store);
		return err;
	}
	*out = store;
	return 0;
out_release:
	store_base_release(base);
	return err;
}

int store_open(const char *uri, const struct store_open_opts *opts, struct store **out,
	       char *errbuf, size_t errlen)
{
	struct store_spec *spec;
	int err;

	*out = NULL;
	err = store_resolve(uri, opts, &spec, errbuf, errlen);
	if (err)
		return err;
	err = store_spec_open(spec, out, errbuf, errlen);
	store_spec_free(spec);
	return err;
}
