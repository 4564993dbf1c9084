/* auth: Azure Storage credentials turned into request signatures.
 *
 * Knows nothing of HTTP libraries, FUSE or caches. A credential is immutable once
 * built and may be shared by any number of threads. Every function returns 0 or
 * -errno; text meant for a person goes to the caller's errbuf and never contains
 * a secret.
 */
#ifndef FERRY_AUTH_H
#define FERRY_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* The emulator's well-known account (Azurite, the storage emulator). */
#define AUTH_DEV_ACCOUNT "devstoreaccount1"
#define AUTH_DEV_KEY                                                              \
	"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/" \
	"KBHBeksoGMGw=="
#define AUTH_DEV_BLOB_ENDPOINT "http://127.0.0.1:10000/devstoreaccount1"

enum auth_kind {
	AUTH_ANONYMOUS,  /* no credential: public containers only */
	AUTH_SHARED_KEY, /* account name + base64 account key */
	AUTH_SAS,        /* account or service SAS query string */
	AUTH_BEARER,     /* OAuth bearer token */
};

struct auth_cred;

/* Builders. Each copies its inputs; the caller frees the result with auth_cred_free().
 * -EINVAL when the input is malformed (key not base64, SAS without sig=, empty token). */
int auth_cred_anonymous(struct auth_cred **out);
int auth_cred_shared_key(const char *account, const char *key_base64, struct auth_cred **out);
int auth_cred_sas(const char *sas, struct auth_cred **out); /* leading '?' allowed */
int auth_cred_bearer(const char *token, struct auth_cred **out);

/* When the credential stops working, in seconds since the epoch: a bearer token's
 * JWT exp; 0 when it has none or is not a token. */
int64_t auth_cred_expiry(const struct auth_cred *cred);
/* The exp claim of a JWT (header.payload.signature, base64url): > 0, or 0 when token
 * is no JWT or has no integer exp. Nothing is verified: the service does that. */
int64_t auth_jwt_expiry(const char *token);
void auth_cred_free(struct auth_cred *cred);

enum auth_kind auth_cred_kind(const struct auth_cred *cred);
/* Account of a Shared Key credential, NULL for the other kinds. */
const char *auth_cred_account(const struct auth_cred *cred);
/* Human name of the kind ("shared key", "SAS", ...), for messages. */
const char *auth_kind_name(enum auth_kind kind);

/* One request header as it will be sent. */
struct auth_header {
	const char *name;
	const char *value;
};

/* Shared Key string-to-sign (Blob/Queue/File service, version 2009-09-19 and later):
 * verb, the standard headers (Content-Length empty when 0), canonicalized x-ms-*
 * headers and the canonicalized resource "/" account path, then the query
 * parameters lower-cased, sorted, URL-decoded, one "name:value" per line.
 * path is the request path exactly as sent (percent-encoded, starting with '/');
 * query is the query string as sent, without '?', or NULL.
 * Writes a NUL-terminated string; -ENOSPC if it does not fit. */
int auth_string_to_sign(const char *account, const char *method, const char *path,
			const char *query, const struct auth_header *headers,
			size_t nheaders, char *out, size_t outlen);

/* Authorization header value for a request: "SharedKey account:signature" or
 * "Bearer token"; an empty string for SAS and anonymous credentials (which need no
 * header). Arguments as for auth_string_to_sign(). -ENOSPC if out is too small. */
int auth_authorization(const struct auth_cred *cred, const char *method, const char *path,
		       const char *query, const struct auth_header *headers,
		       size_t nheaders, char *out, size_t outlen);

/* The SAS query string to append to every request URL (without '?'), or NULL when
 * the credential is not a SAS. */
const char *auth_sas_query(const struct auth_cred *cred);

/* A parsed connection string (az CLI's AZURE_STORAGE_CONNECTION_STRING). Fields not
 * present are NULL. UseDevelopmentStorage=true fills in the emulator's account, key
 * and blob endpoint (DevelopmentStorageProxyUri changes the endpoint's host). When
 * BlobEndpoint (FileEndpoint) is absent it is built from DefaultEndpointsProtocol,
 * AccountName and EndpointSuffix (default core.windows.net); without AccountName
 * either it is NULL. */
struct auth_connstr {
	char *account_name;
	char *account_key;
	char *sas;
	char *blob_endpoint; /* without trailing '/' */
	char *file_endpoint; /* without trailing '/'; NULL in UseDevelopmentStorage */
};

/* -EINVAL with a message naming the bad part (never its value) in errbuf. */
int auth_connstr_parse(const char *s, struct auth_connstr *out, char *errbuf, size_t errlen);
void auth_connstr_free(struct auth_connstr *cs);

/* Where credentials may come from. Files named by options are read first, then the
 * environment, in this order:
 *   account_key_file (with the account from the URL), sas_file, bearer_token_file,
 *   AZURE_STORAGE_CONNECTION_STRING (AccountKey or SharedAccessSignature),
 *   AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN,
 *   AZURE_STORAGE_BEARER_TOKEN; with none of them the credential is anonymous.
 * A shared key whose account differs from the URL's account is refused. */
struct auth_sources {
	const char *account;           /* account named by the endpoint URL */
	const char *account_key_file;  /* -o account_key_file= */
	const char *sas_file;          /* -o sas_file= */
	const char *bearer_token_file; /* -o bearer_token_file= */
};

/* Picks the first source present (see above) and builds its credential. Files may
 * hold the secret followed by a newline. Errors (-ENOENT, -EACCES, -EINVAL) come with
 * a message in errbuf naming the source, never the secret. */
int auth_resolve(const struct auth_sources *src, struct auth_cred **out, char *errbuf,
		 size_t errlen);

/* Reads a secret (a key, a SAS, a token) from a file of at most 64 KiB, without the
 * whitespace around it. what names its source in messages ("account_key_file");
 * messages name the file, never its content. Free *out with auth_secret_free(). */
int auth_read_secret_file(const char *what, const char *path, char **out, char *errbuf,
			  size_t errlen);
/* Overwrites and frees a secret; NULL is fine. */
void auth_secret_free(char *secret);

#endif
