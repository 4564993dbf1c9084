/* url: container URLs and percent-encoding for the Blob service.
 *
 * Two endpoint forms are understood:
 *   host-style  https://<account>.blob.<suffix>/<container>[/<prefix>]
 *   path-style  http(s)://host[:port]/<account>/<container>[/<prefix>]  (emulators,
 *               private endpoints: any host that is not "<account>.blob.<...>")
 * Pure functions over caller buffers; thread-safe.
 */
#ifndef FERRY_URL_H
#define FERRY_URL_H

#include <stdbool.h>
#include <stddef.h>

/* What a URL's root is: a blob container or an Azure Files share. */
enum url_kind {
	URL_BLOB,
	URL_FILE,
};

struct url_container {
	enum url_kind kind;   /* from the host (ACCOUNT.blob.* or ACCOUNT.file.*); a
			       * path-style URL is URL_BLOB unless its user says otherwise */
	char scheme[8];       /* "http" or "https" */
	char host[256];       /* without port; IPv6 literals keep their brackets */
	int port;             /* 0 when the URL names none */
	char account[64];
	char container[64];   /* the container, or the share */
	char prefix[1024];    /* decoded, no leading or trailing '/'; "" for none */
	bool path_style;      /* the account is the first path segment */
};

/* Parses a container URL. A query string is refused (-EINVAL): a SAS belongs in
 * sas_file= or AZURE_STORAGE_SAS_TOKEN, never on a command line. errbuf says what is
 * wrong with the URL. */
int url_parse_container(const char *url, struct url_container *out, char *errbuf,
			size_t errlen);

/* "scheme://host[:port]" plus "/account" for path-style: the base every request URL
 * starts with. -ENOSPC if it does not fit. */
int url_endpoint(const struct url_container *u, char *out, size_t outlen);

/* True for localhost, 127.0.0.0/8 and ::1: the hosts plain http is allowed to. */
bool url_host_is_loopback(const char *host);

/* Percent-encodes in: everything but unreserved characters (A-Z a-z 0-9 - . _ ~) and,
 * when keep_slash, '/'. Returns the length written or -ENOSPC. */
int url_encode(const char *in, bool keep_slash, char *out, size_t outlen);

/* Decodes %XX escapes in place ('+' stays '+'). -EINVAL on a malformed escape. */
int url_decode(char *s);

#endif
