/* Unit tests of datastore: names, the config directory, records and their secrets
 * (format, permissions, overrides), URI resolution, and the merged listing. Each case
 * runs with its own temporary XDG_CONFIG_HOME; no network. */
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

#define KEY AUTH_DEV_KEY

static char tmp_root[PATH_MAX];
static char config_home[PATH_MAX];

/* A fresh, empty XDG_CONFIG_HOME for each case. */
static void fresh_config(void)
{
	static int seq;

	if (snprintf(config_home, sizeof(config_home), "%s/cfg%d", tmp_root, ++seq) >=
	    (int)sizeof(config_home))
		abort();
	unit_remove_tree(config_home);
	setenv("XDG_CONFIG_HOME", config_home, 1);
}

static void config_path(char *out, size_t outlen, const char *rel)
{
	if (snprintf(out, outlen, "%s/ferry/%s", config_home, rel) >= (int)outlen)
		abort();
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return (mode_t)-1;
	return st.st_mode & 07777;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return chmod(path, mode);
}

/* The whole content of a file, or "" (static buffer). */
static const char *read_text(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static struct datastore make_ds(const char *name, const char *account, const char *container,
				const char *endpoint, const char *prefix, enum datastore_cred cred)
{
	struct datastore ds;

	memset(&ds, 0, sizeof(ds));
	snprintf(ds.name, sizeof(ds.name), "%s", name);
	snprintf(ds.account, sizeof(ds.account), "%s", account);
	snprintf(ds.container, sizeof(ds.container), "%s", container);
	snprintf(ds.endpoint, sizeof(ds.endpoint), "%s", endpoint);
	snprintf(ds.prefix, sizeof(ds.prefix), "%s", prefix);
	ds.cred = cred;
	return ds;
}

static void validates_names(void)
{
	CHECK(datastore_name_valid("workspaceblobstore"));
	CHECK(datastore_name_valid("my_store-2"));
	CHECK(datastore_name_valid("9lives"));
	CHECK(!datastore_name_valid(""));
	CHECK(!datastore_name_valid("_hidden"));
	CHECK(!datastore_name_valid("-x"));
	CHECK(!datastore_name_valid("a/b"));
	CHECK(!datastore_name_valid(".."));
	CHECK(!datastore_name_valid("a.b"));
	CHECK(!datastore_name_valid("a b"));
	CHECK(datastore_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 64 */
	CHECK(!datastore_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static void config_dir_follows_xdg_then_home(void)
{
	char dir[PATH_MAX], want[PATH_MAX + 32];
	char *saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;

	fresh_config();
	CHECK(datastore_config_dir(dir, sizeof(dir)) == 0);
	snprintf(want, sizeof(want), "%s/ferry", config_home);
	CHECK_STR(dir, want);

	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", "/home/someone", 1);
	CHECK(datastore_config_dir(dir, sizeof(dir)) == 0);
	CHECK_STR(dir, "/home/someone/.config/ferry");

	/* a relative XDG_CONFIG_HOME is invalid (XDG spec) and ignored */
	setenv("XDG_CONFIG_HOME", "relative/dir", 1);
	CHECK(datastore_config_dir(dir, sizeof(dir)) == 0);
	CHECK_STR(dir, "/home/someone/.config/ferry");

	unsetenv("XDG_CONFIG_HOME");
	unsetenv("HOME");
	CHECK(datastore_config_dir(dir, sizeof(dir)) == -ENOENT);

	if (saved_home)
		setenv("HOME", saved_home, 1);
	free(saved_home);
	fresh_config();
}

static void builtin_default_exists_without_config(void)
{
	struct datastore ds;
	char err[512] = "", url[1024];

	fresh_config();
	CHECK(datastore_load("workspaceblobstore", &ds, err, sizeof(err)) == 0);
	CHECK(ds.builtin);
	CHECK_STR(ds.account, "devstoreaccount1");
	CHECK_STR(ds.container, "azureml-blobstore");
	CHECK_STR(ds.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
	CHECK(ds.cred == DATASTORE_CRED_EMULATOR);
	CHECK(ds.create_container);
	CHECK(datastore_url(&ds, url, sizeof(url)) == 0);
	CHECK_STR(url, "http://127.0.0.1:10000/devstoreaccount1/azureml-blobstore");

	/* also when there is no config directory at all */
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", "/nonexistent-ferry-home", 1);
	CHECK(datastore_load("workspaceblobstore", &ds, err, sizeof(err)) == 0);
	CHECK(ds.builtin);
	fresh_config();
}

static void missing_datastore_is_named_in_the_error(void)
{
	struct datastore ds;
	char err[512] = "";

	fresh_config();
	CHECK(datastore_load("nosuchstore", &ds, err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "no datastore named 'nosuchstore'") != NULL);
	CHECK(strstr(err, "ferry datastore add nosuchstore") != NULL);
	CHECK(datastore_load("bad/name", &ds, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "not a datastore name") != NULL);
}

static void normalizes_endpoint_and_account(void)
{
	struct datastore ds;
	char err[512] = "";

	/* the account alone gives the public endpoint */
	ds = make_ds("a", "myacct", "data", "", "/x//y/", DATASTORE_CRED_ENV);
	CHECK(datastore_normalize(&ds, err, sizeof(err)) == 0);
	CHECK_STR(ds.endpoint, "https://myacct.blob.core.windows.net");
	CHECK_STR(ds.prefix, "x/y");

	/* the endpoint alone gives the account: host-style and path-style */
	ds = make_ds("a", "", "data", "https://Other.blob.core.windows.net/", "", DATASTORE_CRED_ENV);
	CHECK(datastore_normalize(&ds, err, sizeof(err)) == 0);
	CHECK_STR(ds.account, "other");
	CHECK_STR(ds.endpoint, "https://other.blob.core.windows.net");
	ds = make_ds("a", "", "data", "http://127.0.0.1:10000/devstoreaccount1", "", DATASTORE_CRED_ENV);
	CHECK(datastore_normalize(&ds, err, sizeof(err)) == 0);
	CHECK_STR(ds.account, "devstoreaccount1");
	CHECK_STR(ds.endpoint, "http://127.0.0.1:10000/devstoreaccount1");

	/* contradictions and junk */
	ds = make_ds("a", "acct2", "data", "https://acct1.blob.core.windows.net", "", DATASTORE_CRED_ENV);
	CHECK(datastore_normalize(&ds, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "names account 'acct1', not 'acct2'") != NULL);
	ds = make_ds("a", "", "data", "http://127.0.0.1:10000/devstoreaccount1/extra", "", DATASTORE_CRED_ENV);
	CHECK(datastore_normalize(&ds, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "path after the account") != NULL);
	ds = make_ds("a", "", "data", "", "", DATASTORE_CRED_ENV);
	CHECK(datastore_normalize(&ds, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "--account") != NULL);
	ds = make_ds("a", "acct", "", "", "", DATASTORE_CRED_ENV);
	CHECK(datastore_normalize(&ds, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "container") != NULL);
	ds = make_ds("a", "acct", "Bad_Container", "", "", DATASTORE_CRED_ENV);
	CHECK(datastore_normalize(&ds, err, sizeof(err)) == -EINVAL);
	ds = make_ds("a", "acct", "data", "", "a/../b", DATASTORE_CRED_ENV);
	CHECK(datastore_normalize(&ds, err, sizeof(err)) == -EINVAL);
	ds = make_ds("a", "acct", "data", "ftp://host/acct", "", DATASTORE_CRED_ENV);
	CHECK(datastore_normalize(&ds, err, sizeof(err)) == -EINVAL);
}

static void saves_and_loads_a_record(void)
{
	struct datastore ds, got;
	char err[512] = "", path[PATH_MAX], dir[PATH_MAX];

	fresh_config();
	ds = make_ds("store1", "", "data", "http://127.0.0.1:10001/devstoreaccount1/", "sets/v2",
		     DATASTORE_CRED_ENV);
	ds.create_container = true;
	CHECK(datastore_save(&ds, NULL, false, err, sizeof(err)) == 0);
	CHECK(datastore_load("store1", &got, err, sizeof(err)) == 0);
	CHECK(!got.builtin);
	CHECK_STR(got.name, "store1");
	CHECK_STR(got.account, "devstoreaccount1");
	CHECK_STR(got.container, "data");
	CHECK_STR(got.endpoint, "http://127.0.0.1:10001/devstoreaccount1");
	CHECK_STR(got.prefix, "sets/v2");
	CHECK(got.cred == DATASTORE_CRED_ENV);
	CHECK(got.create_container);

	/* the format: key = value lines, documented in docs/datastores.md */
	config_path(path, sizeof(path), "datastores/store1.conf");
	CHECK(strstr(read_text(path), "\ncontainer = data\n") != NULL);
	CHECK(strstr(read_text(path), "\ncredential = env\n") != NULL);
	CHECK(mode_of(path) == 0644);
	/* no secret: no secrets directory either */
	config_path(dir, sizeof(dir), "secrets");
	CHECK(mode_of(dir) == (mode_t)-1);

	/* an existing name is not replaced silently */
	CHECK(datastore_save(&ds, NULL, false, err, sizeof(err)) == -EEXIST);
	CHECK(strstr(err, "exists") != NULL && strstr(err, "--force") != NULL);
	ds.create_container = false;
	CHECK(datastore_save(&ds, NULL, true, err, sizeof(err)) == 0);
	CHECK(datastore_load("store1", &got, err, sizeof(err)) == 0);
	CHECK(!got.create_container);
}

static void reads_hand_written_records(void)
{
	struct datastore got;
	char err[512] = "", path[PATH_MAX], dir[PATH_MAX];

	fresh_config();
	CHECK(mkdir(config_home, 0755) == 0);
	config_path(dir, sizeof(dir), "");
	CHECK(mkdir(dir, 0755) == 0);
	config_path(dir, sizeof(dir), "datastores");
	CHECK(mkdir(dir, 0755) == 0);

	config_path(path, sizeof(path), "datastores/hand.conf");
	CHECK(write_text(path,
			 "# comment\n\n  account=myacct  \ncontainer =   data\r\n"
			 "prefix = with space/x\ncredential = none\n",
			 0644) == 0);
	CHECK(datastore_load("hand", &got, err, sizeof(err)) == 0);
	CHECK_STR(got.endpoint, "https://myacct.blob.core.windows.net");
	CHECK_STR(got.prefix, "with space/x");
	CHECK(got.cred == DATASTORE_CRED_NONE);
	CHECK(!got.create_container);

	CHECK(write_text(path, "account = a1\ncontainer = data\ncolour = blue\n", 0644) == 0);
	CHECK(datastore_load("hand", &got, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "hand.conf:3: unknown key 'colour'") != NULL);

	CHECK(write_text(path, "account = a1\ncontainer = data\ncredential = password\n", 0644) ==
	      0);
	CHECK(datastore_load("hand", &got, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "hand.conf:3: credential 'password'") != NULL);

	CHECK(write_text(path, "account = a1\njust words\n", 0644) == 0);
	CHECK(datastore_load("hand", &got, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "hand.conf:2: expected 'key = value'") != NULL);

	CHECK(write_text(path, "account = a1\n", 0644) == 0);
	CHECK(datastore_load("hand", &got, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "hand.conf") != NULL && strstr(err, "container") != NULL);
}

static void stores_secret_privately(void)
{
	struct datastore ds;
	char err[512] = "", secret_path[PATH_MAX], dir[PATH_MAX], record[PATH_MAX];

	fresh_config();
	ds = make_ds("keyed", "myacct", "data", "", "", DATASTORE_CRED_ACCOUNT_KEY);
	/* a secret-holding credential needs its secret */
	CHECK(datastore_save(&ds, NULL, false, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "--account-key-file") != NULL);

	umask(0); /* the files get their modes whatever the umask */
	CHECK(datastore_save(&ds, KEY, false, err, sizeof(err)) == 0);
	umask(022);
	CHECK(datastore_secret_path("keyed", secret_path, sizeof(secret_path)) == 0);
	config_path(dir, sizeof(dir), "secrets");
	CHECK(mode_of(dir) == 0700);
	CHECK(mode_of(secret_path) == 0600);
	CHECK_STR(read_text(secret_path), KEY);
	config_path(record, sizeof(record), "datastores/keyed.conf");
	CHECK(strstr(read_text(record), "credential = account_key") != NULL);
	CHECK(strstr(read_text(record), KEY) == NULL);
	CHECK(strstr(read_text(record), "Eby8") == NULL);
	CHECK(datastore_check_secret(secret_path, err, sizeof(err)) == 0);

	/* a looser secrets directory is tightened at the next save */
	CHECK(chmod(dir, 0755) == 0);
	CHECK(datastore_save(&ds, KEY, true, err, sizeof(err)) == 0);
	CHECK(mode_of(dir) == 0700);

	/* switching to a credential without a secret removes the old secret */
	ds.cred = DATASTORE_CRED_ENV;
	CHECK(datastore_save(&ds, NULL, true, err, sizeof(err)) == 0);
	CHECK(mode_of(secret_path) == (mode_t)-1);

	/* a secret with a line break would not read back as one line */
	ds.cred = DATASTORE_CRED_SAS;
	CHECK(datastore_save(&ds, "sv=1&sig=abc\nx", true, err, sizeof(err)) == -EINVAL);
}

static void refuses_secret_readable_by_others(void)
{
	struct datastore ds;
	struct datastore_handle *h = NULL;
	char err[1024] = "", secret_path[PATH_MAX], want[2 * PATH_MAX + 64];

	fresh_config();
	ds = make_ds("leaky", "", "data", "http://127.0.0.1:9/devstoreaccount1", "",
		     DATASTORE_CRED_ACCOUNT_KEY);
	CHECK(datastore_save(&ds, KEY, false, err, sizeof(err)) == 0);
	CHECK(datastore_secret_path("leaky", secret_path, sizeof(secret_path)) == 0);

	CHECK(chmod(secret_path, 0644) == 0);
	CHECK(datastore_check_secret(secret_path, err, sizeof(err)) == -EACCES);
	if (snprintf(want, sizeof(want),
		     "%s is readable by other users (mode 0644); run chmod 600 %s", secret_path,
		     secret_path) >= (int)sizeof(want))
		abort();
	CHECK(strstr(err, want) != NULL);
	CHECK(strstr(err, "Eby8") == NULL);

	/* opening refuses it before any request is made */
	err[0] = '\0';
	CHECK(datastore_open("azureml://datastores/leaky/paths/x", NULL, &h, err, sizeof(err)) ==
	      -EACCES);
	CHECK(h == NULL);
	CHECK(strstr(err, "readable by other users (mode 0644)") != NULL);

	CHECK(chmod(secret_path, 0640) == 0);
	CHECK(datastore_check_secret(secret_path, err, sizeof(err)) == -EACCES);
	CHECK(strstr(err, "(mode 0640)") != NULL);

	CHECK(unlink(secret_path) == 0);
	CHECK(datastore_check_secret(secret_path, err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "missing") != NULL);
}

static void user_record_overrides_default(void)
{
	struct datastore ds, got;
	char err[512] = "";

	fresh_config();
	ds = make_ds("workspaceblobstore", "", "mine", "http://127.0.0.1:12345/devstoreaccount1", "",
		     DATASTORE_CRED_EMULATOR);
	CHECK(datastore_save(&ds, NULL, false, err, sizeof(err)) == 0);
	CHECK(datastore_load("workspaceblobstore", &got, err, sizeof(err)) == 0);
	CHECK(!got.builtin);
	CHECK_STR(got.container, "mine");
	CHECK_STR(got.endpoint, "http://127.0.0.1:12345/devstoreaccount1");

	/* removing the override brings the built-in back; the built-in cannot go */
	CHECK(datastore_remove("workspaceblobstore", err, sizeof(err)) == 0);
	CHECK(datastore_load("workspaceblobstore", &got, err, sizeof(err)) == 0);
	CHECK(got.builtin);
	CHECK(datastore_remove("workspaceblobstore", err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "built in") != NULL);
}

static void removes_record_and_secret(void)
{
	struct datastore ds, got;
	char err[512] = "", secret_path[PATH_MAX];

	fresh_config();
	ds = make_ds("gone", "myacct", "data", "", "", DATASTORE_CRED_SAS);
	CHECK(datastore_save(&ds, "sv=2022-11-02&sig=abc%3D", false, err, sizeof(err)) == 0);
	CHECK(datastore_secret_path("gone", secret_path, sizeof(secret_path)) == 0);
	CHECK(mode_of(secret_path) == 0600);
	CHECK(datastore_remove("gone", err, sizeof(err)) == 0);
	CHECK(mode_of(secret_path) == (mode_t)-1);
	CHECK(datastore_load("gone", &got, err, sizeof(err)) == -ENOENT);
	CHECK(datastore_remove("gone", err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "no datastore named 'gone'") != NULL);
}

struct seen {
	char names[8][DATASTORE_NAME_MAX];
	bool builtin[8];
	bool readable[8];
	int n;
};

static int collect(void *ctx, const struct datastore *ds)
{
	struct seen *s = ctx;

	if (s->n < 8) {
		snprintf(s->names[s->n], sizeof(s->names[s->n]), "%s", ds->name);
		s->builtin[s->n] = ds->builtin;
		s->readable[s->n] = ds->container[0] != '\0';
		s->n++;
	}
	return 0;
}

static void lists_records_sorted_with_default(void)
{
	struct datastore ds;
	struct seen s = { 0 };
	char err[512] = "", path[PATH_MAX];

	fresh_config();
	CHECK(datastore_foreach(collect, &s, err, sizeof(err)) == 0);
	CHECK(s.n == 1);
	CHECK_STR(s.names[0], "workspaceblobstore");
	CHECK(s.builtin[0]);

	ds = make_ds("zeta", "acct", "data", "", "", DATASTORE_CRED_NONE);
	CHECK(datastore_save(&ds, NULL, false, err, sizeof(err)) == 0);
	ds = make_ds("alpha", "acct", "data", "", "", DATASTORE_CRED_NONE);
	CHECK(datastore_save(&ds, NULL, false, err, sizeof(err)) == 0);
	config_path(path, sizeof(path), "datastores/broken.conf");
	CHECK(write_text(path, "nonsense\n", 0644) == 0);
	config_path(path, sizeof(path), "datastores/notes.txt");
	CHECK(write_text(path, "not a record\n", 0644) == 0);

	memset(&s, 0, sizeof(s));
	CHECK(datastore_foreach(collect, &s, err, sizeof(err)) == 0);
	CHECK(s.n == 4);
	CHECK_STR(s.names[0], "alpha");
	CHECK_STR(s.names[1], "broken");
	CHECK(!s.readable[1]);
	CHECK_STR(s.names[2], "zeta");
	CHECK_STR(s.names[3], "workspaceblobstore");
	CHECK(s.builtin[3]);

	/* an override is listed once, from its file */
	ds = make_ds("workspaceblobstore", "acct", "data", "", "", DATASTORE_CRED_NONE);
	CHECK(datastore_save(&ds, NULL, false, err, sizeof(err)) == 0);
	memset(&s, 0, sizeof(s));
	CHECK(datastore_foreach(collect, &s, err, sizeof(err)) == 0);
	CHECK(s.n == 4);
	CHECK_STR(s.names[2], "workspaceblobstore");
	CHECK(!s.builtin[2]);
	CHECK_STR(s.names[3], "zeta");
}

static void recognizes_uris(void)
{
	CHECK(datastore_is_uri("azureml://datastores/x/paths/y"));
	CHECK(datastore_is_uri("AzureML://datastores/x/paths/y"));
	CHECK(datastore_is_uri("https://a.blob.core.windows.net/c"));
	CHECK(datastore_is_uri("http://127.0.0.1:10000/devstoreaccount1/c"));
	CHECK(!datastore_is_uri("./azureml:/x"));
	CHECK(!datastore_is_uri("/data/set"));
	CHECK(!datastore_is_uri("relative/path"));
}

static void resolves_azureml_uris(void)
{
	struct datastore_target t;
	struct datastore ds;
	char err[512] = "";

	fresh_config();
	ds = make_ds("sets", "", "data", "http://127.0.0.1:10001/devstoreaccount1", "root/dir",
		     DATASTORE_CRED_NONE);
	CHECK(datastore_save(&ds, NULL, false, err, sizeof(err)) == 0);

	CHECK(datastore_resolve("azureml://datastores/sets/paths/a/b.txt", &t, err, sizeof(err)) ==
	      0);
	CHECK(t.from_datastore);
	CHECK_STR(t.ds.name, "sets");
	CHECK_STR(t.url.scheme, "http");
	CHECK_STR(t.url.host, "127.0.0.1");
	CHECK(t.url.port == 10001);
	CHECK_STR(t.url.account, "devstoreaccount1");
	CHECK_STR(t.url.container, "data");
	CHECK_STR(t.url.prefix, "root/dir"); /* the store is rooted at the datastore's prefix */
	CHECK_STR(t.path, "a/b.txt");
	CHECK(!t.trailing_slash);

	/* folders, the root, decoding, doubled slashes */
	CHECK(datastore_resolve("azureml://datastores/sets/paths/a/", &t, err, sizeof(err)) == 0);
	CHECK_STR(t.path, "a");
	CHECK(t.trailing_slash);
	CHECK(datastore_resolve("azureml://datastores/sets/paths/", &t, err, sizeof(err)) == 0);
	CHECK_STR(t.path, "");
	CHECK(datastore_resolve("azureml://datastores/sets/paths", &t, err, sizeof(err)) == 0);
	CHECK_STR(t.path, "");
	CHECK(datastore_resolve("azureml://datastores/sets", &t, err, sizeof(err)) == 0);
	CHECK_STR(t.path, "");
	CHECK(datastore_resolve("azureml://datastores/sets/paths//my%20dir///x%25y z", &t, err,
				sizeof(err)) == 0);
	CHECK_STR(t.path, "my dir/x%y z");

	/* the long form names a workspace; the datastore comes from the local config */
	CHECK(datastore_resolve("azureml://subscriptions/0000-1111/resourcegroups/rg/workspaces/ws/"
				"datastores/sets/paths/p/q",
				&t, err, sizeof(err)) == 0);
	CHECK_STR(t.ds.name, "sets");
	CHECK_STR(t.path, "p/q");

	/* the built-in default */
	CHECK(datastore_resolve("azureml://datastores/workspaceblobstore/paths/x", &t, err,
				sizeof(err)) == 0);
	CHECK(t.ds.builtin);
	CHECK(t.url.port == 10000);
	CHECK_STR(t.url.container, "azureml-blobstore");
	CHECK_STR(t.path, "x");
}

static void refuses_bad_azureml_uris(void)
{
	struct datastore_target t;
	char err[512] = "";

	fresh_config();
	CHECK(datastore_resolve("azureml://datastores/missing/paths/x", &t, err, sizeof(err)) ==
	      -ENOENT);
	CHECK(strstr(err, "no datastore named 'missing'") != NULL);
	CHECK(datastore_resolve("azureml://datastores/workspaceblobstore/paths/a/../b", &t, err,
				sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "'..'") != NULL);
	CHECK(datastore_resolve("azureml://datastores/workspaceblobstore/paths/a/./b", &t, err,
				sizeof(err)) == -EINVAL);
	CHECK(datastore_resolve("azureml://datastores/workspaceblobstore/paths/100%", &t, err,
				sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "%25") != NULL);
	CHECK(datastore_resolve("azureml://datastores/workspaceblobstore/files/x", &t, err,
				sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "azureml://datastores/NAME/paths/PATH") != NULL);
	CHECK(datastore_resolve("azureml://foo/bar", &t, err, sizeof(err)) == -EINVAL);
	CHECK(datastore_resolve("azureml://datastores//paths/x", &t, err, sizeof(err)) == -EINVAL);
	CHECK(datastore_resolve("azureml://datastores/bad.name/paths/x", &t, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(datastore_resolve("/local/path", &t, err, sizeof(err)) == -EINVAL);
	CHECK(datastore_resolve("", &t, err, sizeof(err)) == -EINVAL);
}

static void resolves_container_urls(void)
{
	struct datastore_target t;
	char err[512] = "";

	fresh_config();
	CHECK(datastore_resolve("https://myacct.blob.core.windows.net/data/sets/v2/train.csv", &t,
				err, sizeof(err)) == 0);
	CHECK(!t.from_datastore);
	CHECK_STR(t.url.account, "myacct");
	CHECK_STR(t.url.container, "data");
	CHECK_STR(t.url.prefix, ""); /* the store is the container */
	CHECK_STR(t.path, "sets/v2/train.csv");

	CHECK(datastore_resolve("http://127.0.0.1:10000/devstoreaccount1/data/my%20dir/", &t, err,
				sizeof(err)) == 0);
	CHECK(t.url.path_style);
	CHECK_STR(t.url.account, "devstoreaccount1");
	CHECK_STR(t.path, "my dir");
	CHECK(t.trailing_slash);

	CHECK(datastore_resolve("https://myacct.blob.core.windows.net/data", &t, err, sizeof(err)) ==
	      0);
	CHECK_STR(t.path, "");

	/* a SAS on the command line is refused, as ferry mount refuses it */
	CHECK(datastore_resolve("https://myacct.blob.core.windows.net/data/x?sv=1&sig=abc", &t, err,
				sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "query string") != NULL);
	CHECK(strstr(err, "sig=abc") == NULL);
	CHECK(datastore_resolve("https://myacct.blob.core.windows.net/", &t, err, sizeof(err)) ==
	      -EINVAL);
}

static void opening_refuses_plain_http_off_loopback(void)
{
	struct datastore_handle *h = NULL;
	char err[512] = "";

	fresh_config();
	CHECK(datastore_open("http://storage.example.com/acct/data/x", NULL, &h, err, sizeof(err)) ==
	      -EPERM);
	CHECK(h == NULL);
	CHECK(strstr(err, "refusing plain http") != NULL);
	CHECK(strstr(err, "allow_http") != NULL);
}

static void url_of_a_datastore_encodes_its_prefix(void)
{
	struct datastore ds = make_ds("u", "acct", "data", "", "my dir/é", DATASTORE_CRED_NONE);
	char url[1024], err[256];

	CHECK(datastore_normalize(&ds, err, sizeof(err)) == 0);
	CHECK(datastore_url(&ds, url, sizeof(url)) == 0);
	CHECK_STR(url, "https://acct.blob.core.windows.net/data/my%20dir/%C3%A9");
}

/* A store whose listing is scripted: two pages, a folder as prefix and marker. */
static int scripted_list(struct store *s, const char *dir, const char *marker,
			 store_list_fn fn, void *ctx, char *next_marker, size_t next_len)
{
	struct store_entry page1[] = {
		{ .name = "b.txt", .attr = { .size = 2, .etag = "\"e1\"" } },
		{ .name = "d", .attr = { .is_dir = true } },
	};
	struct store_entry page2[] = {
		{ .name = "a.txt", .attr = { .size = 1, .etag = "\"e2\"" } },
		{ .name = "d", .attr = { .is_dir = true, .mtime = 77, .etag = "\"m\"" } },
		{ .name = "c", .attr = { .is_dir = true } },
	};
	bool first = !marker || !*marker;
	struct store_entry *page = first ? page1 : page2;
	size_t n = first ? 2 : 3;

	(void)s;
	(void)dir;
	for (size_t i = 0; i < n; i++) {
		int err = fn(ctx, &page[i]);

		if (err)
			return err;
	}
	snprintf(next_marker, next_len, "%s", first ? "page2" : "");
	return 0;
}

static void listing_merges_pages_and_duplicate_folders(void)
{
	static const struct store_ops ops = { .list = scripted_list };
	struct store s = { .ops = &ops };
	struct datastore_entry *e;
	size_t n;

	CHECK(datastore_list(&s, "", &e, &n) == 0);
	CHECK(n == 4);
	if (n == 4) {
		CHECK_STR(e[0].name, "a.txt");
		CHECK_STR(e[1].name, "b.txt");
		CHECK_STR(e[2].name, "c");
		CHECK_STR(e[3].name, "d");
		CHECK(e[3].attr.is_dir);
		CHECK(e[3].attr.mtime == 77); /* the marker's attributes win */
	}
	datastore_entries_free(e, n);
}

/* A blob "dup" beside blobs under "dup/", and a placeholder "ph/" inside ph: as the
 * mount shows them. */
static int shadowing_list(struct store *s, const char *dir, const char *marker,
			  store_list_fn fn, void *ctx, char *next_marker, size_t next_len)
{
	struct store_entry root[] = {
		{ .name = "dup", .attr = { .size = 5, .mtime = 9, .etag = "\"f\"" } },
		{ .name = "dup", .attr = { .is_dir = true } },
		{ .name = "ph", .attr = { .is_dir = true } },
	};
	struct store_entry ph[] = {
		{ .name = "", .attr = { .etag = "\"p\"" } },
		{ .name = "in.txt", .attr = { .size = 1, .etag = "\"i\"" } },
	};
	bool in_ph = strcmp(dir, "ph") == 0;
	struct store_entry *page = in_ph ? ph : root;
	size_t n = in_ph ? 2 : 3;

	(void)s;
	(void)marker;
	for (size_t i = 0; i < n; i++) {
		int err = fn(ctx, &page[i]);

		if (err)
			return err;
	}
	snprintf(next_marker, next_len, "%s", "");
	return 0;
}

static void listing_shows_a_folder_over_a_file_of_its_name(void)
{
	static const struct store_ops ops = { .list = shadowing_list };
	struct store s = { .ops = &ops };
	struct datastore_entry *e;
	size_t n;

	CHECK(datastore_list(&s, "", &e, &n) == 0);
	CHECK(n == 2);
	if (n == 2) {
		CHECK_STR(e[0].name, "dup");
		CHECK(e[0].attr.is_dir && e[0].attr.size == 0);
		CHECK_STR(e[1].name, "ph");
	}
	datastore_entries_free(e, n);
	CHECK(datastore_list(&s, "ph", &e, &n) == 0);
	CHECK(n == 1);
	if (n == 1)
		CHECK_STR(e[0].name, "in.txt");
	datastore_entries_free(e, n);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(tmp_root, sizeof(tmp_root), "%s/ferry-test-datastore-XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(tmp_root)) {
		perror("mkdtemp");
		return 1;
	}
	umask(022);
	RUN(validates_names);
	RUN(config_dir_follows_xdg_then_home);
	RUN(builtin_default_exists_without_config);
	RUN(missing_datastore_is_named_in_the_error);
	RUN(normalizes_endpoint_and_account);
	RUN(saves_and_loads_a_record);
	RUN(reads_hand_written_records);
	RUN(stores_secret_privately);
	RUN(refuses_secret_readable_by_others);
	RUN(user_record_overrides_default);
	RUN(removes_record_and_secret);
	RUN(lists_records_sorted_with_default);
	RUN(recognizes_uris);
	RUN(resolves_azureml_uris);
	RUN(refuses_bad_azureml_uris);
	RUN(resolves_container_urls);
	RUN(opening_refuses_plain_http_off_loopback);
	RUN(url_of_a_datastore_encodes_its_prefix);
	RUN(listing_merges_pages_and_duplicate_folders);
	RUN(listing_shows_a_folder_over_a_file_of_its_name);
	unit_remove_tree(tmp_root);
	return unit_done();
}
