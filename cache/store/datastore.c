/* datastore: named datastores in the user's config, and URIs resolved to a store. */
#include "cache/store/datastore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/base/util.h"
#include "cache/store/listing.h"
#include "cache/store/open.h"

#define DATASTORE_AZUREML_SCHEME "azureml://"
#define DATASTORE_CONF_SUFFIX ".conf"
#define DATASTORE_LINE_MAX 2048

/* One line for a person in errbuf, and the error: -EINVAL, or err. */
#define ds_fail(errbuf, errlen, ...) (util_errf(errbuf, errlen, __VA_ARGS__), -EINVAL)
#define ds_errf(err, errbuf, errlen, ...) (util_errf(errbuf, errlen, __VA_ARGS__), (err))

/* Copies s to out; -ENAMETOOLONG when it does not fit. */
static int ds_copy(char *out, size_t outlen, const char *s)
{
	size_t len = strlen(s);

	if (len >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, s, len + 1);
	return 0;
}

/* Joins parts into out; -ENAMETOOLONG when it does not fit. */
__attribute__((format(printf, 3, 4))) static int ds_join(char *out, size_t outlen,
							  const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen)
			out[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

static const char *const ds_cred_names[] = {
	[DATASTORE_CRED_ENV] = "env",
	[DATASTORE_CRED_NONE] = "none",
	[DATASTORE_CRED_ACCOUNT_KEY] = "account_key",
	[DATASTORE_CRED_SAS] = "sas",
	[DATASTORE_CRED_EMULATOR] = "emulator",
};

static const char *const ds_type_names[] = { [URL_BLOB] = "azure_blob",
					     [URL_FILE] = "azure_file" };

const char *datastore_type_name(enum url_kind kind)
{
	return kind == URL_FILE ? ds_type_names[URL_FILE] : ds_type_names[URL_BLOB];
}

int datastore_type_parse(const char *s, enum url_kind *out)
{
	for (size_t i = 0; i < sizeof(ds_type_names) / sizeof(ds_type_names[0]); i++) {
		if (strcmp(s, ds_type_names[i]) == 0) {
			*out = (enum url_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *datastore_cred_name(enum datastore_cred cred)
{
	if ((size_t)cred < sizeof(ds_cred_names) / sizeof(ds_cred_names[0]))
		return ds_cred_names[cred];
	return "?";
}

int datastore_cred_parse(const char *s, enum datastore_cred *out)
{
	for (size_t i = 0; i < sizeof(ds_cred_names) / sizeof(ds_cred_names[0]); i++) {
		if (strcmp(s, ds_cred_names[i]) == 0) {
			*out = (enum datastore_cred)i;
			return 0;
		}
	}
	return -EINVAL;
}

static bool ds_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int datastore_name_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len >= DATASTORE_NAME_MAX || !ds_is_alnum(name[0]))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!ds_is_alnum(name[i]) && name[i] != '_' && name[i] != '-')
			return 0;
	return 1;
}

static int ds_name_check(const char *name, char *errbuf, size_t errlen)
{
	if (datastore_name_valid(name))
		return 0;
	return ds_fail(errbuf, errlen,
		       "'%s' is not a datastore name: use 1-64 letters, digits, '_' or '-', "
		       "starting with a letter or digit",
		       name ? name : "");
}

int datastore_config_dir(char *out, size_t outlen)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	/* The XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored. */
	if (xdg && xdg[0] == '/')
		return ds_join(out, outlen, "%s/ferry", xdg);
	if (home && home[0] == '/')
		return ds_join(out, outlen, "%s/.config/ferry", home);
	return -ENOENT;
}

static int ds_config_dir_checked(char *out, size_t outlen, char *errbuf, size_t errlen)
{
	int err = datastore_config_dir(out, outlen);

	if (err == -ENOENT)
		util_errf(errbuf, errlen,
			  "cannot find the config directory: set HOME or XDG_CONFIG_HOME");
	else if (err)
		util_errf(errbuf, errlen, "the config directory path is too long");
	return err;
}

static int ds_record_path(const char *name, char *out, size_t outlen)
{
	char dir[PATH_MAX];
	int err = datastore_config_dir(dir, sizeof(dir));

	return err ? err : ds_join(out, outlen, "%s/datastores/%s" DATASTORE_CONF_SUFFIX, dir, name);
}

int datastore_secret_path(const char *name, char *out, size_t outlen)
{
	char dir[PATH_MAX];
	int err = datastore_config_dir(dir, sizeof(dir));

	return err ? err : ds_join(out, outlen, "%s/secrets/%s", dir, name);
}

int datastore_check_secret(const char *path, char *errbuf, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		int err = -errno;

		if (err == -ENOENT)
			util_errf(errbuf, errlen,
				  "the stored secret %s is missing; add the datastore again with "
				  "--account-key-file or --sas-file",
				  path);
		else
			util_errf(errbuf, errlen, "cannot read the stored secret %s: %s", path,
				  strerror(-err));
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		util_errf(errbuf, errlen, "the stored secret %s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_uid != geteuid()) {
		util_errf(errbuf, errlen,
			  "the stored secret %s belongs to uid %u, not to you (uid %u); refusing "
			  "to use it",
			  path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EACCES;
	}
	if (st.st_mode & 077) {
		util_errf(errbuf, errlen,
			  "%s is readable by other users (mode %04o); run chmod 600 %s, and "
			  "consider the secret leaked",
			  path, (unsigned)(st.st_mode & 07777), path);
		return -EACCES;
	}
	return 0;
}

void datastore_builtin(struct datastore *ds)
{
	memset(ds, 0, sizeof(*ds));
	ds_copy(ds->name, sizeof(ds->name), DATASTORE_DEFAULT_NAME);
	ds_copy(ds->account, sizeof(ds->account), AUTH_DEV_ACCOUNT);
	ds_copy(ds->container, sizeof(ds->container), DATASTORE_DEFAULT_CONTAINER);
	ds_copy(ds->endpoint, sizeof(ds->endpoint), AUTH_DEV_BLOB_ENDPOINT);
	ds->cred = DATASTORE_CRED_EMULATOR;
	ds->create_container = true;
	ds->builtin = true;
}

/* Normalizes a '/'-separated path in place: no empty, "." or ".." segments, no
 * leading or trailing '/'. -EINVAL for "." or "..", or a control character. */
static int ds_clean_path(char *path)
{
	char *r = path, *w = path;

	for (const char *p = path; *p; p++)
		if ((unsigned char)*p < ' ' || *p == 0x7f)
			return -EINVAL;
	while (*r) {
		char *seg;
		size_t len;

		while (*r == '/')
			r++;
		if (!*r)
			break;
		seg = r;
		while (*r && *r != '/')
			r++;
		len = (size_t)(r - seg);
		if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return -EINVAL;
		if (w != path)
			*w++ = '/';
		memmove(w, seg, len);
		w += len;
	}
	*w = '\0';
	return 0;
}

int datastore_normalize(struct datastore *ds, char *errbuf, size_t errlen)
{
	struct url_container u;
	char url[1024], uerr[256];
	size_t len;
	int err;

	err = ds_name_check(ds->name, errbuf, errlen);
	if (err)
		return err;
	if (!ds->container[0])
		return ds_fail(errbuf, errlen, "datastore %s: no container (give --container)",
			       ds->name);
	len = strlen(ds->endpoint);
	while (len && ds->endpoint[len - 1] == '/')
		ds->endpoint[--len] = '\0';
	if (!len) {
		if (!ds->account[0])
			return ds_fail(errbuf, errlen,
				       "datastore %s: give the account (--account) or the blob "
				       "endpoint (--endpoint)",
				       ds->name);
		if (ds_join(ds->endpoint, sizeof(ds->endpoint), "https://%s.%s.core.windows.net",
			    ds->account, ds->kind == URL_FILE ? "file" : "blob"))
			return ds_fail(errbuf, errlen, "datastore %s: account name too long",
				       ds->name);
	}
	/* The endpoint plus the container must be a container URL, and nothing more. */
	if (ds_join(url, sizeof(url), "%s/%s", ds->endpoint, ds->container))
		return ds_fail(errbuf, errlen, "datastore %s: endpoint too long", ds->name);
	err = url_parse_container(url, &u, uerr, sizeof(uerr));
	if (err)
		return ds_fail(errbuf, errlen,
			       "datastore %s: endpoint %s with container %s: %s (an endpoint is "
			       "https://ACCOUNT.blob.core.windows.net or "
			       "http(s)://HOST:PORT/ACCOUNT)",
			       ds->name, ds->endpoint, ds->container, uerr);
	if (!u.path_style && u.kind != ds->kind)
		return ds_fail(errbuf, errlen,
			       "datastore %s: endpoint %s is the %s service, not the type's (%s)",
			       ds->name, ds->endpoint, u.kind == URL_FILE ? "file" : "blob",
			       datastore_type_name(ds->kind));
	if (strcmp(u.container, ds->container) != 0 || u.prefix[0])
		return ds_fail(errbuf, errlen,
			       "datastore %s: endpoint %s has a path after the account; give "
			       "the container with --container and a path with --prefix",
			       ds->name, ds->endpoint);
	if (ds->account[0] && strcmp(ds->account, u.account) != 0)
		return ds_fail(errbuf, errlen,
			       "datastore %s: the endpoint %s names account '%s', not '%s'",
			       ds->name, ds->endpoint, u.account, ds->account);
	if (ds_copy(ds->account, sizeof(ds->account), u.account) ||
	    url_endpoint(&u, ds->endpoint, sizeof(ds->endpoint)))
		return ds_fail(errbuf, errlen, "datastore %s: endpoint too long", ds->name);
	if (ds_clean_path(ds->prefix))
		return ds_fail(errbuf, errlen,
			       "datastore %s: prefix has a '.' or '..' segment or a control "
			       "character",
			       ds->name);
	return 0;
}

/* Reading and writing records ------------------------------------------------------- */

static char *ds_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' ||
			   end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static int ds_parse_bool(const char *s, bool *out)
{
	if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "1")) {
		*out = true;
		return 0;
	}
	if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "0")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

/* Applies one "key = value" line of a record. */
static int ds_apply_line(struct datastore *ds, char *key, char *value, const char *path,
			 int lineno, char *errbuf, size_t errlen)
{
	struct {
		const char *key;
		char *field;
		size_t size;
	} strings[] = {
		{ "account", ds->account, sizeof(ds->account) },
		{ "container", ds->container, sizeof(ds->container) },
		{ "endpoint", ds->endpoint, sizeof(ds->endpoint) },
		{ "prefix", ds->prefix, sizeof(ds->prefix) },
	};

	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		if (strcmp(key, strings[i].key) != 0)
			continue;
		if (ds_copy(strings[i].field, strings[i].size, value))
			return ds_fail(errbuf, errlen, "%s:%d: %s is too long", path, lineno,
				       key);
		return 0;
	}
	if (strcmp(key, "type") == 0) {
		if (datastore_type_parse(value, &ds->kind))
			return ds_fail(errbuf, errlen,
				       "%s:%d: type '%s' is not azure_blob or azure_file", path,
				       lineno, value);
		return 0;
	}
	if (strcmp(key, "credential") == 0) {
		if (datastore_cred_parse(value, &ds->cred))
			return ds_fail(errbuf, errlen,
				       "%s:%d: credential '%s' is not one of env, none, "
				       "account_key, sas, emulator",
				       path, lineno, value);
		return 0;
	}
	if (strcmp(key, "create_container") == 0) {
		if (ds_parse_bool(value, &ds->create_container))
			return ds_fail(errbuf, errlen,
				       "%s:%d: create_container '%s' is not true or false", path,
				       lineno, value);
		return 0;
	}
	return ds_fail(errbuf, errlen,
		       "%s:%d: unknown key '%s' (keys: type, account, container, endpoint, "
		       "prefix, credential, create_container)",
		       path, lineno, key);
}

static int ds_read_record(const char *name, const char *path, struct datastore *out,
			  char *errbuf, size_t errlen)
{
	char line[DATASTORE_LINE_MAX], norm_err[512];
	int lineno = 0, err = 0;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		if (err != -ENOENT)
			util_errf(errbuf, errlen, "cannot read %s: %s", path, strerror(-err));
		return err;
	}
	memset(out, 0, sizeof(*out));
	ds_copy(out->name, sizeof(out->name), name);
	out->cred = DATASTORE_CRED_ENV;
	while (!err && fgets(line, sizeof(line), f)) {
		char *text, *eq, *key, *value;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			err = ds_fail(errbuf, errlen, "%s:%d: line too long", path, lineno);
			break;
		}
		text = ds_trim(line);
		if (!*text || *text == '#')
			continue;
		eq = strchr(text, '=');
		if (!eq) {
			err = ds_fail(errbuf, errlen, "%s:%d: expected 'key = value'", path,
				      lineno);
			break;
		}
		*eq = '\0';
		key = ds_trim(text);
		value = ds_trim(eq + 1);
		err = ds_apply_line(out, key, value, path, lineno, errbuf, errlen);
	}
	if (!err && ferror(f))
		err = ds_errf(-EIO, errbuf, errlen, "cannot read %s", path);
	fclose(f);
	if (err)
		return err;
	err = datastore_normalize(out, norm_err, sizeof(norm_err));
	if (err)
		util_errf(errbuf, errlen, "%s: %s", path, norm_err);
	return err;
}

int datastore_load(const char *name, struct datastore *out, char *errbuf, size_t errlen)
{
	char path[PATH_MAX];
	int err;

	err = ds_name_check(name, errbuf, errlen);
	if (err)
		return err;
	err = ds_record_path(name, path, sizeof(path));
	if (err == -ENOENT) {
		/* No config directory at all: only the built-in default exists. */
		path[0] = '\0';
	} else if (err) {
		return ds_fail(errbuf, errlen, "the config directory path is too long");
	} else {
		err = ds_read_record(name, path, out, errbuf, errlen);
		if (err != -ENOENT)
			return err;
	}
	if (strcmp(name, DATASTORE_DEFAULT_NAME) == 0) {
		datastore_builtin(out);
		return 0;
	}
	util_errf(errbuf, errlen,
		  "no datastore named '%s'; 'ferry datastore list' shows the datastores, "
		  "'ferry datastore add %s --account ... --container ...' adds it",
		  name, name);
	return -ENOENT;
}

/* Makes dir and its parents with mode; an existing dir is kept but given mode when
 * tighten. */
static int ds_mkdirs(const char *dir, mode_t mode, bool tighten)
{
	struct stat st;
	int err;

	err = util_mkdir_p(dir, mode);
	if (err || !tighten)
		return err;
	if (stat(dir, &st) != 0)
		return -errno;
	if ((st.st_mode & 07777) != mode && chmod(dir, mode) != 0)
		return -errno;
	return 0;
}

/* Writes text to path atomically (a temporary file in the same directory, fsync'ed,
 * renamed over it) with mode. */
static int ds_write_file(const char *path, const char *text, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd, err = 0;

	if (ds_join(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid()))
		return -ENAMETOOLONG;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	/* The umask may have taken bits away; never add any beyond mode. */
	if (fchmod(fd, mode) != 0)
		err = -errno;
	if (!err)
		err = util_write_full(fd, text, strlen(text));
	if (!err && fsync(fd) != 0)
		err = -errno;
	if (close(fd) != 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) != 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int datastore_save(const struct datastore *in, const char *secret, bool replace,
		   char *errbuf, size_t errlen)
{
	char dir[PATH_MAX], sub[PATH_MAX], path[PATH_MAX], secret_path[PATH_MAX];
	char text[4096];
	struct datastore ds = *in;
	bool needs_secret;
	struct stat st;
	int err;

	ds.builtin = false;
	err = datastore_normalize(&ds, errbuf, errlen);
	if (err)
		return err;
	needs_secret = ds.cred == DATASTORE_CRED_ACCOUNT_KEY || ds.cred == DATASTORE_CRED_SAS;
	if (needs_secret && (!secret || !*secret))
		return ds_fail(errbuf, errlen,
			       "datastore %s: credential %s needs the secret: give "
			       "--account-key-file or --sas-file",
			       ds.name, datastore_cred_name(ds.cred));
	if (secret && strpbrk(secret, "\r\n"))
		return ds_fail(errbuf, errlen,
			       "datastore %s: the secret has a line break inside it", ds.name);
	err = ds_config_dir_checked(dir, sizeof(dir), errbuf, errlen);
	if (err)
		return err;
	if (ds_join(path, sizeof(path), "%s/datastores/%s" DATASTORE_CONF_SUFFIX, dir, ds.name) ||
	    datastore_secret_path(ds.name, secret_path, sizeof(secret_path)))
		return ds_fail(errbuf, errlen, "the config directory path is too long");
	if (!replace && stat(path, &st) == 0) {
		util_errf(errbuf, errlen,
			  "datastore %s exists (%s); remove it first ('ferry datastore remove %s') "
			  "or add it with --force",
			  ds.name, path, ds.name);
		return -EEXIST;
	}

	/* The secret before the record that names it; a stale one after the record that no
	 * longer does: no moment has a record without its secret. */
	if (needs_secret) {
		util_path_join(sub, sizeof(sub), dir, "secrets");
		err = ds_mkdirs(sub, 0700, true);
		if (!err)
			err = ds_write_file(secret_path, secret, 0600);
		if (err)
			return ds_errf(err, errbuf, errlen, "cannot store the secret in %s: %s", sub,
				       strerror(-err));
	}
	if (ds_join(text, sizeof(text),
		    "# ferry datastore %s (docs/datastores.md)\n"
		    "type = %s\n"
		    "account = %s\n"
		    "container = %s\n"
		    "endpoint = %s\n"
		    "prefix =%s%s\n"
		    "credential = %s\n"
		    "create_container = %s\n",
		    ds.name, datastore_type_name(ds.kind), ds.account, ds.container, ds.endpoint, ds.prefix[0] ? " " : "", ds.prefix,
		    datastore_cred_name(ds.cred), ds.create_container ? "true" : "false"))
		return ds_fail(errbuf, errlen, "datastore %s: record too long", ds.name);
	util_path_join(sub, sizeof(sub), dir, "datastores");
	err = ds_mkdirs(sub, 0755, false);
	if (!err)
		err = ds_write_file(path, text, 0644);
	if (err)
		return ds_errf(err, errbuf, errlen, "cannot write %s: %s", path, strerror(-err));
	if (!needs_secret && unlink(secret_path) != 0 && errno != ENOENT && errno != ENOTDIR) {
		err = -errno;
		return ds_errf(err, errbuf, errlen, "saved %s, but cannot remove the old secret %s: %s",
			       path, secret_path, strerror(-err));
	}
	return 0;
}

int datastore_remove(const char *name, char *errbuf, size_t errlen)
{
	char path[PATH_MAX], secret_path[PATH_MAX];
	int err;

	err = ds_name_check(name, errbuf, errlen);
	if (err)
		return err;
	err = ds_record_path(name, path, sizeof(path));
	if (!err)
		err = datastore_secret_path(name, secret_path, sizeof(secret_path));
	if (err == -ENAMETOOLONG)
		return ds_fail(errbuf, errlen, "the config directory path is too long");
	if (err || unlink(path) != 0) {
		err = err ? err : -errno;
		if (err != -ENOENT)
			return ds_errf(err, errbuf, errlen, "cannot remove %s: %s", path,
				       strerror(-err));
		if (strcmp(name, DATASTORE_DEFAULT_NAME) == 0)
			util_errf(errbuf, errlen,
				  "datastore %s is built in and cannot be removed (a datastore "
				  "added under its name overrides it)",
				  name);
		else
			util_errf(errbuf, errlen,
				  "no datastore named '%s'; 'ferry datastore list' shows the "
				  "datastores",
				  name);
		return -ENOENT;
	}
	if (unlink(secret_path) != 0 && errno != ENOENT && errno != ENOTDIR) {
		err = -errno;
		return ds_errf(err, errbuf, errlen, "removed %s, but not its secret %s: %s", path,
			       secret_path, strerror(-err));
	}
	return 0;
}

static int ds_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int datastore_foreach(datastore_each_fn fn, void *ctx, char *errbuf, size_t errlen)
{
	char dir[PATH_MAX], sub[PATH_MAX], path[PATH_MAX];
	char **names = NULL;
	size_t nnames = 0, cap = 0;
	bool default_on_file = false;
	struct datastore ds;
	struct dirent *de;
	DIR *d = NULL;
	int err = 0;

	if (datastore_config_dir(dir, sizeof(dir)) == 0 &&
	    util_path_join(sub, sizeof(sub), dir, "datastores") == 0) {
		d = opendir(sub);
		if (!d && errno != ENOENT) {
			err = -errno;
			return ds_errf(err, errbuf, errlen, "cannot read %s: %s", sub,
				       strerror(-err));
		}
	}
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name), slen = strlen(DATASTORE_CONF_SUFFIX);
		char *name;

		if (len <= slen || strcmp(de->d_name + len - slen, DATASTORE_CONF_SUFFIX) != 0)
			continue;
		name = strndup(de->d_name, len - slen);
		if (!name) {
			err = -ENOMEM;
			break;
		}
		if (!datastore_name_valid(name)) {
			free(name);
			continue;
		}
		if (nnames == cap) {
			char **grown = realloc(names, (cap ? cap * 2 : 16) * sizeof(*names));

			if (!grown) {
				free(name);
				err = -ENOMEM;
				break;
			}
			names = grown;
			cap = cap ? cap * 2 : 16;
		}
		names[nnames++] = name;
	}
	if (d)
		closedir(d);
	if (!err && nnames)
		qsort(names, nnames, sizeof(*names), ds_cmp_names);
	for (size_t i = 0; i < nnames && !err; i++) {
		char ignored[512];

		if (strcmp(names[i], DATASTORE_DEFAULT_NAME) == 0)
			default_on_file = true;
		ds_join(path, sizeof(path), "%s/%s" DATASTORE_CONF_SUFFIX, sub, names[i]);
		if (ds_read_record(names[i], path, &ds, ignored, sizeof(ignored)) != 0) {
			memset(&ds, 0, sizeof(ds));
			ds_copy(ds.name, sizeof(ds.name), names[i]);
		}
		err = fn(ctx, &ds);
	}
	if (!err && !default_on_file) {
		datastore_builtin(&ds);
		err = fn(ctx, &ds);
	}
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	if (err == -ENOMEM)
		util_errf(errbuf, errlen, "out of memory");
	return err;
}

int datastore_url(const struct datastore *ds, char *out, size_t outlen)
{
	char prefix[3 * sizeof(ds->prefix)];

	if (url_encode(ds->prefix, true, prefix, sizeof(prefix)) < 0)
		return -ENAMETOOLONG;
	return ds_join(out, outlen, "%s/%s%s%s", ds->endpoint, ds->container,
		       prefix[0] ? "/" : "", prefix);
}

/* URIs -------------------------------------------------------------------------------- */

int datastore_is_uri(const char *uri)
{
	return strncasecmp(uri, DATASTORE_AZUREML_SCHEME, strlen(DATASTORE_AZUREML_SCHEME)) == 0 ||
	       strncasecmp(uri, "https://", 8) == 0 || strncasecmp(uri, "http://", 7) == 0;
}

/* Splits "azureml://[subscriptions/S/resourcegroups/R/workspaces/W/]datastores/NAME
 * [/paths[/PATH]]" into the name and the raw path. */
static int ds_split_azureml(const char *uri, char *name, size_t name_len, const char **path,
			    char *errbuf, size_t errlen)
{
	const char *p = uri + strlen(DATASTORE_AZUREML_SCHEME), *name_end;

	if (strncmp(p, "subscriptions/", 14) == 0) {
		/* the long form: the workspace part names where the datastore is registered,
		 * which here is the local config */
		const char *ds = strstr(p, "/datastores/");

		if (!ds)
			goto out_form;
		p = ds + 1;
	}
	if (strncmp(p, "datastores/", 11) != 0)
		goto out_form;
	p += 11;
	name_end = strchr(p, '/');
	if (!name_end)
		name_end = p + strlen(p);
	if ((size_t)(name_end - p) >= name_len) {
		return ds_fail(errbuf, errlen, "%s: the datastore name is too long", uri);
	}
	memcpy(name, p, (size_t)(name_end - p));
	name[name_end - p] = '\0';
	if (!name[0])
		goto out_form;
	p = name_end;
	if (*p == '/')
		p++;
	if (!*p) {
		*path = p;
		return 0;
	}
	if (strncmp(p, "paths", 5) != 0 || (p[5] != '/' && p[5] != '\0'))
		goto out_form;
	*path = p[5] ? p + 6 : p + 5;
	return 0;
out_form:
	return ds_fail(errbuf, errlen,
		       "%s is not a datastore URI: use azureml://datastores/NAME/paths/PATH", uri);
}

int datastore_resolve(const char *uri, struct datastore_target *out, char *errbuf,
		      size_t errlen)
{
	char name[DATASTORE_NAME_MAX * 2], url[2048], uerr[256];
	const char *raw_path = "";
	size_t len;
	int err;

	memset(out, 0, sizeof(*out));
	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!uri || !*uri)
		return ds_fail(errbuf, errlen, "empty URI");
	len = strlen(uri);
	out->trailing_slash = uri[len - 1] == '/';

	if (strncasecmp(uri, DATASTORE_AZUREML_SCHEME, strlen(DATASTORE_AZUREML_SCHEME)) != 0) {
		if (!datastore_is_uri(uri))
			return ds_fail(errbuf, errlen,
				       "%s is not a datastore URI: use azureml://datastores/NAME/"
				       "paths/PATH or a container URL (https://ACCOUNT.blob.core."
				       "windows.net/CONTAINER/PATH)",
				       uri);
		/* A query may hold a SAS: the URL is then never repeated in a message. */
		if (strpbrk(uri, "?#"))
			return ds_fail(errbuf, errlen,
				       "a datastore URL with a query string or fragment is refused: "
				       "a SAS on the command line is visible to every user; put it "
				       "in -o sas_file= or AZURE_STORAGE_SAS_TOKEN");
		err = url_parse_container(uri, &out->url, uerr, sizeof(uerr));
		if (err)
			return ds_fail(errbuf, errlen, "%s: %s", uri, uerr);
		/* The store is the container; the URL's path is the path inside it. */
		ds_copy(out->path, sizeof(out->path), out->url.prefix);
		out->url.prefix[0] = '\0';
		return 0;
	}

	err = ds_split_azureml(uri, name, sizeof(name), &raw_path, errbuf, errlen);
	if (err)
		return err;
	if (ds_copy(out->path, sizeof(out->path), raw_path))
		return ds_fail(errbuf, errlen, "%s: the path is longer than 1024 characters", uri);
	if (url_decode(out->path))
		return ds_fail(errbuf, errlen,
			       "%s: the path has a bad %%XX escape (write '%%' as %%25)", uri);
	if (ds_clean_path(out->path))
		return ds_fail(errbuf, errlen,
			       "%s: the path has a '.' or '..' segment or a control character",
			       uri);
	err = datastore_load(name, &out->ds, errbuf, errlen);
	if (err)
		return err;
	out->from_datastore = true;
	if (datastore_url(&out->ds, url, sizeof(url)))
		return ds_fail(errbuf, errlen, "datastore %s: its URL is too long", name);
	err = url_parse_container(url, &out->url, uerr, sizeof(uerr));
	if (err)
		return ds_fail(errbuf, errlen, "datastore %s: %s", name, uerr);
	out->url.kind = out->ds.kind;
	if (strlen(out->url.prefix) + 1 + strlen(out->path) > 1024)
		return ds_fail(errbuf, errlen,
			       "%s: prefix and path are longer than a blob name may be (1024)", uri);
	return 0;
}

/* Opening ---------------------------------------------------------------------------- */

struct datastore_handle {
	char *uri;
	struct datastore_target target;
	struct store *store;
	enum datastore_kind kind;
	struct store_attr attr;
};

void datastore_opts_default(struct datastore_opts *opts)
{
	store_open_opts_default(opts);
}

void datastore_close(struct datastore_handle *h)
{
	if (!h)
		return;
	store_destroy(h->store);
	free(h->uri);
	free(h);
}

/* What the path names, as the mount shows it: a folder wins over an object of its name,
 * and "name/" asks for the folder (an object "name" alone does not count). */
static int ds_classify(struct datastore_handle *h, char *errbuf, size_t errlen)
{
	const char *path = h->target.path;
	int err;

	h->kind = DATASTORE_DIR;
	if (!*path)
		return 0;
	err = store_lookup(h->store, path, &h->attr);
	if (err == -ENOENT) {
		memset(&h->attr, 0, sizeof(h->attr));
		h->kind = DATASTORE_MISSING;
		return 0;
	}
	if (err)
		return ds_errf(err, errbuf, errlen, "%s: cannot look it up: %s", h->uri,
			       strerror(-err));
	if (!h->attr.is_dir) {
		h->kind = h->target.trailing_slash ? DATASTORE_MISSING : DATASTORE_FILE;
		if (h->target.trailing_slash)
			memset(&h->attr, 0, sizeof(h->attr));
	}
	return 0;
}

int datastore_open(const char *uri, const struct datastore_opts *opts,
		   struct datastore_handle **out, char *errbuf, size_t errlen)
{
	struct store_open_opts sopts;
	struct datastore_handle *h;
	struct store_spec *spec;
	int err;

	*out = NULL;
	if (opts)
		sopts = *opts;
	else
		store_open_opts_default(&sopts);
	sopts.root_at_container = true;
	h = calloc(1, sizeof(*h));
	if (!h || !(h->uri = strdup(uri))) {
		free(h);
		return ds_errf(-ENOMEM, errbuf, errlen, "out of memory");
	}
	err = store_resolve(uri, &sopts, &spec, errbuf, errlen);
	if (err)
		goto out_close;
	h->target = *store_spec_target(spec);
	err = store_spec_open(spec, &h->store, errbuf, errlen);
	store_spec_free(spec);
	if (!err)
		err = ds_classify(h, errbuf, errlen);
	if (err)
		goto out_close;
	*out = h;
	return 0;
out_close:
	datastore_close(h);
	return err;
}

struct store *datastore_store(const struct datastore_handle *h)
{
	return h->store;
}

const char *datastore_path(const struct datastore_handle *h)
{
	return h->target.path;
}

enum datastore_kind datastore_kind(const struct datastore_handle *h)
{
	return h->kind;
}

const struct store_attr *datastore_attr(const struct datastore_handle *h)
{
	return &h->attr;
}

bool datastore_trailing_slash(const struct datastore_handle *h)
{
	return h->target.trailing_slash;
}

const char *datastore_uri(const struct datastore_handle *h)
{
	return h->uri;
}

/* Listing ----------------------------------------------------------------------------- */

struct ds_list_acc {
	struct datastore_entry *entries;
	size_t n, cap;
};

static int ds_list_add(void *ctx, const struct store_entry *entry)
{
	struct ds_list_acc *acc = ctx;

	if (acc->n == acc->cap) {
		size_t cap = acc->cap ? acc->cap * 2 : 64;
		struct datastore_entry *grown = reallocarray(acc->entries, cap, sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		acc->entries = grown;
		acc->cap = cap;
	}
	acc->entries[acc->n].name = strdup(entry->name);
	if (!acc->entries[acc->n].name)
		return -ENOMEM;
	acc->entries[acc->n].attr = entry->attr;
	acc->n++;
	return 0;
}

static int ds_cmp_entries(const void *a, const void *b)
{
	const struct datastore_entry *x = a, *y = b;

	return strcmp(x->name, y->name);
}

int datastore_list(struct store *s, const char *dir, struct datastore_entry **out,
		   size_t *count)
{
	struct ds_list_acc acc = { 0 };
	size_t kept = 0;
	int err;

	*out = NULL;
	*count = 0;
	err = store_list_all(s, dir, 0, ds_list_add, &acc);
	if (err) {
		datastore_entries_free(acc.entries, acc.n);
		return err;
	}
	if (acc.n)
		qsort(acc.entries, acc.n, sizeof(*acc.entries), ds_cmp_entries);
	/* One entry per name, as the mount shows it (listing.h). */
	for (size_t i = 0; i < acc.n; i++) {
		struct datastore_entry *e = &acc.entries[i];

		if (kept && strcmp(acc.entries[kept - 1].name, e->name) == 0) {
			store_entry_merge(&acc.entries[kept - 1].attr, &e->attr);
			free(e->name);
			continue;
		}
		acc.entries[kept++] = *e;
	}
	*out = acc.entries;
	*count = kept;
	return 0;
}

void datastore_entries_free(struct datastore_entry *entries, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(entries[i].name);
	free(entries);
}

int datastore_mkdir_p(struct store *s, const char *dir, struct datastore_made *made)
{
	const struct store_meta meta = { .is_dir = true };
	size_t len = strlen(dir);
	char *part;
	int err = 0;

	if (!s->real_dirs)
		return 0;
	part = malloc(len + 1);
	if (!part)
		return -ENOMEM;
	for (size_t end = 1; end <= len && !err; end++) {
		char **grown;
		bool known = false;

		if (end < len && dir[end] != '/')
			continue;
		memcpy(part, dir, end);
		part[end] = '\0';
		for (size_t i = made ? made->n : 0; i-- > 0 && !known;)
			known = strcmp(made->paths[i], part) == 0;
		if (known)
			continue;
		err = store_put(s, part, "", 0, &meta, NULL, NULL);
		if (err || !made)
			continue;
		grown = realloc(made->paths, (made->n + 1) * sizeof(*grown));
		if (grown)
			made->paths = grown;
		if (!grown || !(made->paths[made->n] = strdup(part)))
			err = -ENOMEM;
		else
			made->n++;
	}
	free(part);
	return err;
}

void datastore_made_free(struct datastore_made *made)
{
	for (size_t i = 0; i < made->n; i++)
		free(made->paths[i]);
	free(made->paths);
	memset(made, 0, sizeof(*made));
}
