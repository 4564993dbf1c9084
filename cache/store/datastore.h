/* datastore: named datastores in the user's config, and datastore URIs resolved to a
 * store.
 *
 * A datastore is a blob container (account, container, blob endpoint, optional prefix)
 * with a credential source. Its record is $XDG_CONFIG_HOME/ferry/datastores/NAME.conf
 * (default ~/.config/ferry/), "key = value" lines; a stored secret (account key or SAS)
 * is $XDG_CONFIG_HOME/ferry/secrets/NAME, mode 0600 in a 0700 directory. The built-in
 * datastore "workspaceblobstore" (the local Azurite with the emulator's well-known
 * account) exists without a file; a file of that name overrides it. docs/datastores.md
 * describes the format.
 *
 * URIs: azureml://datastores/NAME/paths/PATH, and every container URL ferry mount
 * takes (https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH,
 * http://127.0.0.1:10000/ACCOUNT/CONTAINER/PATH); anything else is a local path.
 *
 * Every function returns 0 or -errno; where there is an errbuf it holds one line for a
 * person on failure (what failed and what to do), never a secret. The config functions
 * read the environment (XDG_CONFIG_HOME, HOME) at each call. Not thread-safe against
 * concurrent edits of one datastore; the handle functions are thread-safe.
 */
#ifndef FERRY_DATASTORE_H
#define FERRY_DATASTORE_H

#include <stdbool.h>
#include <stddef.h>

#include "cache/store/open.h"
#include "cache/store/store.h"
#include "cache/store/url.h"

#define DATASTORE_NAME_MAX 65  /* 1-64 of [A-Za-z0-9_-], a letter or digit first */
#define DATASTORE_PATH_MAX 1025 /* a blob name is at most 1024 characters */
#define DATASTORE_DEFAULT_NAME "workspaceblobstore"
#define DATASTORE_DEFAULT_CONTAINER "azureml-blobstore"

/* Where a datastore's credential comes from when it is used. */
enum datastore_cred {
	DATASTORE_CRED_ENV,         /* "env": like ferry mount (AZURE_STORAGE_*, -o files) */
	DATASTORE_CRED_NONE,        /* "none": anonymous (public containers) */
	DATASTORE_CRED_ACCOUNT_KEY, /* "account_key": stored secret file */
	DATASTORE_CRED_SAS,         /* "sas": stored secret file */
	DATASTORE_CRED_EMULATOR,    /* "emulator": the storage emulator's public key */
};

struct datastore {
	char name[DATASTORE_NAME_MAX];
	enum url_kind kind; /* "type": azure_blob (a container) or azure_file (a share) */
	char account[64];
	char container[64]; /* the container, or the share */
	char endpoint[512]; /* https://ACCOUNT.blob.core.windows.net (.file. for a share) or
			       http://HOST:PORT/ACCOUNT; no trailing '/' */
	char prefix[1024];  /* no leading or trailing '/'; "" for none */
	enum datastore_cred cred;
	bool create_container; /* create the container on first use */
	bool builtin;          /* the embedded default, not read from a file */
};

/* "env", "none", "account_key", "sas", "emulator"; -EINVAL for anything else. */
const char *datastore_cred_name(enum datastore_cred cred);
int datastore_cred_parse(const char *s, enum datastore_cred *out);

/* "azure_blob" or "azure_file"; -EINVAL for anything else. */
const char *datastore_type_name(enum url_kind kind);
int datastore_type_parse(const char *s, enum url_kind *out);

/* 1 when name is a valid datastore name, else 0. */
int datastore_name_valid(const char *name);

/* $XDG_CONFIG_HOME/ferry, or $HOME/.config/ferry. -ENOENT when neither is set. */
int datastore_config_dir(char *out, size_t outlen);

/* Path of the stored secret of datastore name (whether or not it exists). */
int datastore_secret_path(const char *name, char *out, size_t outlen);

/* Checks that the secret file at path is ours and private: -EACCES with "PATH is
 * readable by other users (mode 0644); run chmod 600 PATH" when group or others may
 * read it, -ENOENT when it is missing. */
int datastore_check_secret(const char *path, char *errbuf, size_t errlen);

/* Fills *ds with the built-in default datastore. */
void datastore_builtin(struct datastore *ds);

/* Checks a record before it is saved or used: name, account, container, endpoint and
 * prefix well-formed, endpoint consistent with account. Fills account from the
 * endpoint when empty and the endpoint from the account when empty. */
int datastore_normalize(struct datastore *ds, char *errbuf, size_t errlen);

/* Reads datastore name: its file, else the built-in default for its name. -ENOENT
 * with "no datastore named 'NAME'; ..." when there is neither; -EINVAL naming the file
 * and line of a malformed record. */
int datastore_load(const char *name, struct datastore *out, char *errbuf, size_t errlen);

/* Writes the record of ds (normalized first), and, for account_key and sas, secret
 * (the key or SAS itself) to its secret file with mode 0600. Files are replaced
 * atomically. -EEXIST when a datastore of that name has a file and !replace. */
int datastore_save(const struct datastore *ds, const char *secret, bool replace,
		   char *errbuf, size_t errlen);

/* Removes the record and secret of name. -ENOENT when there is no file (also for the
 * built-in default, which cannot be removed). */
int datastore_remove(const char *name, char *errbuf, size_t errlen);

/* Calls fn for every datastore: the records on file, sorted by name, and the built-in
 * default unless a file overrides it. A non-zero return of fn stops and is returned.
 * A malformed record is passed with builtin false and an empty container. */
typedef int (*datastore_each_fn)(void *ctx, const struct datastore *ds);
int datastore_foreach(datastore_each_fn fn, void *ctx, char *errbuf, size_t errlen);

/* The container URL of ds (endpoint/container[/prefix], prefix percent-encoded). */
int datastore_url(const struct datastore *ds, char *out, size_t outlen);

/* URIs ------------------------------------------------------------------------------ */

/* 1 when uri names a datastore (azureml:// or http(s)://), 0 for a local path. */
int datastore_is_uri(const char *uri);

/* What a URI names, without touching the network. */
struct datastore_target {
	struct url_container url;       /* the store root: container + datastore prefix */
	char path[DATASTORE_PATH_MAX];  /* inside the store; no leading or trailing '/' */
	bool trailing_slash;            /* the URI ended with '/': a folder is meant */
	bool from_datastore;            /* azureml://: ds is filled */
	struct datastore ds;
};

/* Parses uri (azureml:// or a container URL) and, for azureml://, loads the datastore.
 * Path segments "." and ".." are refused, empty ones dropped, %XX decoded. */
int datastore_resolve(const char *uri, struct datastore_target *out, char *errbuf,
		      size_t errlen);

/* Opening ---------------------------------------------------------------------------- */

/* datastore_open()'s options are store_open()'s (cache/store/open.h: credential files,
 * ca_file, allow_http, workers, timeout_s, the caller's credential); root_at_container
 * is implied. The name is kept for datastore_open()'s callers. */
#define datastore_opts store_open_opts

/* store_open_opts_default(): no files, https only off loopback, 8 workers, 60 s. */
void datastore_opts_default(struct datastore_opts *opts);

/* What the path of an open datastore names. */
enum datastore_kind {
	DATASTORE_MISSING, /* nothing there (yet) */
	DATASTORE_FILE,    /* an object */
	DATASTORE_DIR,     /* the root, a prefix with objects under it (a placeholder
			      "name/" included), or a marker */
};

struct datastore_handle;

/* Opens the store of uri with store_open() (cache/store/open.h), rooted at the container
 * plus the datastore's prefix, and finds what the path names as the mount shows it (a
 * folder wins over an object of its name; "name/" names only a folder). opts NULL:
 * defaults. The handle owns everything; close it with datastore_close(). */
int datastore_open(const char *uri, const struct datastore_opts *opts,
		   struct datastore_handle **out, char *errbuf, size_t errlen);
void datastore_close(struct datastore_handle *h);

/* The store, rooted at the container (plus the datastore's prefix). */
struct store *datastore_store(const struct datastore_handle *h);
/* The path inside the store the URI names: "" for the root. */
const char *datastore_path(const struct datastore_handle *h);
enum datastore_kind datastore_kind(const struct datastore_handle *h);
/* Attributes of the object (DATASTORE_FILE) or marker; zeros otherwise. */
const struct store_attr *datastore_attr(const struct datastore_handle *h);
/* True when the URI ended with '/'. */
bool datastore_trailing_slash(const struct datastore_handle *h);
/* The URI as given, for messages (a URI never holds a secret: queries are refused). */
const char *datastore_uri(const struct datastore_handle *h);

/* Folders ---------------------------------------------------------------------------- */

/* The folders datastore_mkdir_p() made (or found), so that it skips them. */
struct datastore_made {
	char **paths;
	size_t n;
};

/* Makes folder dir ("" is the root) and its parents, as mkdir -p does, on a store
 * with real directories (a share: store.h, real_dirs); nothing on another. made (may
 * be NULL) is kept across calls. 0 or the store's -errno. */
int datastore_mkdir_p(struct store *s, const char *dir, struct datastore_made *made);
void datastore_made_free(struct datastore_made *made);

/* Listing --------------------------------------------------------------------------- */

struct datastore_entry {
	char *name; /* one path component */
	struct store_attr attr;
};

/* Every child of folder dir of s as the mount shows it (store_list_all(), listing.h):
 * all pages, sorted by name, one entry per name (a folder wins over an object of its
 * name, which is then not listed), names a directory cannot show left out. *out is the
 * caller's: free it with datastore_entries_free(). Errors are the store's. */
int datastore_list(struct store *s, const char *dir, struct datastore_entry **out,
		   size_t *count);
void datastore_entries_free(struct datastore_entry *entries, size_t count);

#endif
