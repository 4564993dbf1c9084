/* Tests of cache/store/open's resolve step: container URLs, azureml:// URIs and
 * datastore names turned into a store's root, path and credential, the https policy
 * and the credential errors; with a temporary XDG_CONFIG_HOME and no network (the one
 * open goes to a closed loopback port). The resolve step must start no thread (a mount
 * forks after it). */
#include "cache/store/open.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "cache/store/datastore.h"
#include "unit.h"

static char tmp_root[PATH_MAX];
static char config_home[PATH_MAX];

/* A fresh, empty XDG_CONFIG_HOME and no credential in the environment. */
static void fresh_config(void)
{
	static const char *const vars[] = {
		"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT",
		"AZURE_STORAGE_KEY",		   "AZURE_STORAGE_SAS_TOKEN",
		"AZURE_STORAGE_BEARER_TOKEN",
	};
	static int seq;

	if (snprintf(config_home, sizeof(config_home), "%s/cfg%d", tmp_root, ++seq) >=
	    (int)sizeof(config_home))
		abort();
	setenv("XDG_CONFIG_HOME", config_home, 1);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

/* Threads of this process, from /proc/self/status. */
static int thread_count(void)
{
	char line[256];
	int threads = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &threads) == 1)
			break;
	fclose(f);
	return threads;
}

static void save_datastore(const char *name, const char *prefix, enum datastore_cred cred,
			   const char *secret)
{
	struct datastore ds;
	char err[512] = "";

	memset(&ds, 0, sizeof(ds));
	snprintf(ds.name, sizeof(ds.name), "%s", name);
	snprintf(ds.container, sizeof(ds.container), "data");
	snprintf(ds.endpoint, sizeof(ds.endpoint), "http://127.0.0.1:10000/acct");
	snprintf(ds.prefix, sizeof(ds.prefix), "%s", prefix);
	ds.cred = cred;
	if (datastore_save(&ds, secret, true, err, sizeof(err)) != 0) {
		fprintf(stderr, "datastore_save: %s\n", err);
		abort();
	}
}

static void container_url_is_rooted_at_its_path(void)
{
	struct store_open_opts opts;
	struct store_spec *spec = NULL;
	const struct datastore_target *t;
	char err[512] = "";

	fresh_config();
	CHECK(store_resolve("http://127.0.0.1:10000/acct/data/sub/dir", NULL, &spec, err,
			    sizeof(err)) == 0);
	if (spec) {
		t = store_spec_target(spec);
		CHECK_STR(t->url.account, "acct");
		CHECK_STR(t->url.container, "data");
		CHECK_STR(t->url.prefix, "sub/dir");
		CHECK_STR(t->path, "");
		CHECK(!t->from_datastore);
	}
	store_spec_free(spec);

	store_open_opts_default(&opts);
	opts.root_at_container = true;
	CHECK(store_resolve("http://127.0.0.1:10000/acct/data/sub/dir/", &opts, &spec, err,
			    sizeof(err)) == 0);
	if (spec) {
		t = store_spec_target(spec);
		CHECK_STR(t->url.prefix, "");
		CHECK_STR(t->path, "sub/dir");
		CHECK(t->trailing_slash);
	}
	store_spec_free(spec);
}

static void azureml_uri_is_rooted_at_prefix_and_path(void)
{
	struct store_open_opts opts;
	struct store_spec *spec = NULL;
	const struct datastore_target *t;
	char err[512] = "";

	fresh_config();
	save_datastore("pub", "base", DATASTORE_CRED_NONE, NULL);
	CHECK(store_resolve("azureml://datastores/pub/paths/a/b", NULL, &spec, err,
			    sizeof(err)) == 0);
	if (spec) {
		t = store_spec_target(spec);
		CHECK(t->from_datastore);
		CHECK_STR(t->ds.name, "pub");
		CHECK_STR(t->url.container, "data");
		CHECK_STR(t->url.prefix, "base/a/b");
		CHECK_STR(t->path, "");
	}
	store_spec_free(spec);

	store_open_opts_default(&opts);
	opts.root_at_container = true;
	CHECK(store_resolve("azureml://datastores/pub/paths/a/b", &opts, &spec, err,
			    sizeof(err)) == 0);
	if (spec) {
		t = store_spec_target(spec);
		CHECK_STR(t->url.prefix, "base");
		CHECK_STR(t->path, "a/b");
	}
	store_spec_free(spec);
}

static void datastore_name_is_its_root(void)
{
	struct store_spec *spec = NULL;
	const struct datastore_target *t;
	char err[512] = "";

	fresh_config();
	CHECK(store_resolve(DATASTORE_DEFAULT_NAME, NULL, &spec, err, sizeof(err)) == 0);
	if (spec) {
		t = store_spec_target(spec);
		CHECK(t->from_datastore && t->ds.builtin);
		CHECK_STR(t->url.account, AUTH_DEV_ACCOUNT);
		CHECK_STR(t->url.container, DATASTORE_DEFAULT_CONTAINER);
		CHECK_STR(t->url.prefix, "");
	}
	store_spec_free(spec);

	CHECK(store_resolve("nosuch", NULL, &spec, err, sizeof(err)) == -ENOENT);
	CHECK(spec == NULL);
	CHECK(strstr(err, "no datastore named 'nosuch'") != NULL);
	CHECK(store_resolve("not a name", NULL, &spec, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "not a datastore URI") != NULL);
}

static void plain_http_only_to_loopback(void)
{
	struct store_open_opts opts;
	struct store_spec *spec = NULL;
	char err[512] = "";

	fresh_config();
	CHECK(store_resolve("http://storage.example.com/acct/data", NULL, &spec, err,
			    sizeof(err)) == -EPERM);
	CHECK(spec == NULL);
	CHECK(strstr(err, "refusing plain http to storage.example.com") != NULL);
	CHECK(strstr(err, "allow_http") != NULL);
	{
		struct store sentinel = { 0 };
		struct store *store = &sentinel;

		CHECK(store_open("http://storage.example.com/acct/data", NULL, &store, err,
				 sizeof(err)) == -EPERM);
		CHECK(store == NULL);
	}

	store_open_opts_default(&opts);
	opts.allow_http = true;
	CHECK(store_resolve("http://storage.example.com/acct/data", &opts, &spec, err,
			    sizeof(err)) == 0);
	store_spec_free(spec);
	CHECK(store_resolve("http://[::1]:10000/acct/data", NULL, &spec, err, sizeof(err)) == 0);
	store_spec_free(spec);
	CHECK(store_resolve("https://acct.blob.core.windows.net/data", NULL, &spec, err,
			    sizeof(err)) == 0);
	store_spec_free(spec);
}

static void missing_credential_is_named(void)
{
	struct store_open_opts opts;
	struct store_spec *spec = NULL;
	char err[512] = "", missing[PATH_MAX + 16];

	fresh_config();
	snprintf(missing, sizeof(missing), "%s/no-such-key", tmp_root);
	store_open_opts_default(&opts);
	opts.account_key_file = missing;
	CHECK(store_resolve("https://acct.blob.core.windows.net/data", &opts, &spec, err,
			    sizeof(err)) == -ENOENT);
	CHECK(spec == NULL);
	CHECK(strstr(err, "account_key_file") != NULL);
	CHECK(strstr(err, missing) != NULL);

	/* a datastore whose stored secret is gone */
	save_datastore("keyed", "", DATASTORE_CRED_ACCOUNT_KEY, AUTH_DEV_KEY);
	{
		char secret[PATH_MAX];

		CHECK(datastore_secret_path("keyed", secret, sizeof(secret)) == 0);
		CHECK(unlink(secret) == 0);
	}
	CHECK(store_resolve("azureml://datastores/keyed/paths/x", NULL, &spec, err,
			    sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "stored secret") != NULL);
	CHECK(strstr(err, AUTH_DEV_KEY) == NULL);
}

static void callers_credential_replaces_every_source(void)
{
	struct store_open_opts opts;
	struct store_spec *spec = NULL;
	struct auth_cred *cred = NULL;
	char err[512] = "";

	fresh_config();
	CHECK(auth_cred_anonymous(&cred) == 0);
	store_open_opts_default(&opts);
	opts.account_key_file = "/nonexistent/key"; /* not read */
	opts.cred = cred;
	CHECK(store_resolve("https://acct.blob.core.windows.net/data", &opts, &spec, err,
			    sizeof(err)) == 0);
	store_spec_free(spec); /* leaves the caller's credential alone */
	CHECK(auth_cred_kind(cred) == AUTH_ANONYMOUS);
	auth_cred_free(cred);
}

static void resolving_starts_no_thread(void)
{
	struct store_spec *spec = NULL;
	char err[512] = "";
	int before = thread_count();

	fresh_config();
	CHECK(before >= 1);
	CHECK(store_resolve(DATASTORE_DEFAULT_NAME, NULL, &spec, err, sizeof(err)) == 0);
	CHECK(thread_count() == before);
	store_spec_free(spec);
}

static void unreachable_store_fails_once_and_frees_everything(void)
{
	struct store_open_opts opts;
	struct store_spec *spec = NULL;
	struct store *store = NULL;
	char err[512] = "";
	int rc;

	fresh_config();
	store_open_opts_default(&opts);
	opts.workers = 1;
	opts.timeout_s = 1;
	/* port 1 of loopback: refused at once */
	CHECK(store_resolve("http://127.0.0.1:1/acct/data", &opts, &spec, err, sizeof(err)) == 0);
	if (!spec)
		return;
	rc = store_spec_open(spec, &store, err, sizeof(err));
	CHECK(rc == -EHOSTUNREACH || rc == -ECONNRESET || rc == -ETIMEDOUT);
	CHECK(store == NULL);
	CHECK(err[0] != '\0');
	CHECK(store_spec_open(spec, &store, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "opened already") != NULL);
	store_spec_free(spec);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(tmp_root, sizeof(tmp_root), "%s/ferry-test-open-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(container_url_is_rooted_at_its_path);
	RUN(azureml_uri_is_rooted_at_prefix_and_path);
	RUN(datastore_name_is_its_root);
	RUN(plain_http_only_to_loopback);
	RUN(missing_credential_is_named);
	RUN(callers_credential_replaces_every_source);
	RUN(resolving_starts_no_thread);
	RUN(unreachable_store_fails_once_and_frees_everything);
	unit_remove_tree(tmp_root);
	return unit_done();
}
