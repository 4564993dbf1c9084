/* url: container URLs and percent-encoding for the Blob service. */
#include "cache/store/url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "auth/base/util.h"

#define URL_SAS_HINT                                                               \
	"put a SAS in sas_file= or AZURE_STORAGE_SAS_TOKEN, not in the URL"

__attribute__((format(printf, 3, 4))) static int url_fail(char *errbuf, size_t errlen,
							   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	util_verrf(errbuf, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static char to_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Azure's rule: 3-63 of [a-z0-9-], a letter or digit at both ends, no "--". The
 * system containers ($root, $web, $logs) are the only names with a '$'. */
static bool container_name_ok(const char *name)
{
	size_t len = strlen(name);
	size_t i;

	if (!strcmp(name, "$root") || !strcmp(name, "$web") || !strcmp(name, "$logs"))
		return true;
	if (len < 3 || len > 63)
		return false;
	if (!is_lower_alnum(name[0]) || !is_lower_alnum(name[len - 1]))
		return false;
	for (i = 0; i < len; i++) {
		if (!is_lower_alnum(name[i]) && name[i] != '-')
			return false;
		if (name[i] == '-' && name[i + 1] == '-')
			return false;
	}
	return true;
}

/* Letters and digits only (Azure: 3-24 lower-case; emulators are looser). */
static bool account_name_ok(const char *name)
{
	size_t len = strlen(name);
	size_t i;

	if (len == 0 || len > 63)
		return false;
	for (i = 0; i < len; i++)
		if (!is_alnum(name[i]))
			return false;
	return true;
}

/* Copies [start, end) to out as a string; false when it does not fit. */
static bool copy_span(const char *start, const char *end, char *out, size_t outlen)
{
	size_t len = (size_t)(end - start);

	if (len >= outlen)
		return false;
	memcpy(out, start, len);
	out[len] = '\0';
	return true;
}

/* Checks and copies the host curl found (lower-cased): a name of letters, digits, '-',
 * '.', '_', or an IPv6 literal in brackets. */
static int take_host(const char *host, struct url_container *out, char *errbuf,
		     size_t errlen)
{
	size_t len = strlen(host);
	const char *p;

	if (len == 0)
		return url_fail(errbuf, errlen, "URL names no host");
	if (host[0] == '[') {
		if (len < 3 || host[len - 1] != ']')
			return url_fail(errbuf, errlen, "URL has a bad IPv6 literal");
		for (p = host + 1; p < host + len - 1; p++)
			if (util_hex_digit(*p) < 0 && *p != ':' && *p != '.')
				return url_fail(errbuf, errlen, "URL has a bad IPv6 literal");
	} else {
		for (p = host; *p; p++)
			if (!is_alnum(*p) && *p != '-' && *p != '.' && *p != '_')
				return url_fail(errbuf, errlen,
						"URL host has a character not allowed in a host name");
	}
	if (len >= sizeof(out->host))
		return url_fail(errbuf, errlen, "URL host is too long");
	for (size_t i = 0; i <= len; i++)
		out->host[i] = to_lower(host[i]);
	return 0;
}

/* "<account>.blob.<suffix>" or "<account>.file.<suffix>" with a non-empty suffix:
 * returns the end of the account label (and which service), or NULL for any other
 * host. */
static const char *host_style_account_end(const char *host, enum url_kind *kind)
{
	const char *dot = strchr(host, '.');

	if (!dot || dot == host)
		return NULL;
	if (strncmp(dot + 1, "blob.", 5) == 0)
		*kind = URL_BLOB;
	else if (strncmp(dot + 1, "file.", 5) == 0)
		*kind = URL_FILE;
	else
		return NULL;
	return dot[6] ? dot : NULL;
}

/* Takes the next '/'-separated segment of *path (skipping empty ones), decoded, into
 * out. 0 with out "" when there is none. */
static int next_segment(const char **path, const char *end, char *out, size_t outlen)
{
	const char *p = *path, *seg;

	while (p < end && *p == '/')
		p++;
	seg = p;
	while (p < end && *p != '/')
		p++;
	*path = p;
	if (!copy_span(seg, p, out, outlen))
		return -ENAMETOOLONG;
	return url_decode(out);
}

/* Decodes the rest of the path into out->prefix: no leading, trailing or doubled '/',
 * no "." or ".." segment. */
static int parse_prefix(const char *start, const char *end, struct url_container *out,
			char *errbuf, size_t errlen)
{
	char decoded[sizeof(out->prefix) * 3];
	size_t len = 0;
	const char *seg, *p;

	if (!copy_span(start, end, decoded, sizeof(decoded)))
		return url_fail(errbuf, errlen, "URL prefix is too long");
	if (url_decode(decoded))
		return url_fail(errbuf, errlen, "URL prefix has a bad %%XX escape");
	p = decoded;
	for (;;) {
		size_t seg_len;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		seg = p;
		while (*p && *p != '/')
			p++;
		seg_len = (size_t)(p - seg);
		if ((seg_len == 1 && seg[0] == '.') ||
		    (seg_len == 2 && seg[0] == '.' && seg[1] == '.'))
			return url_fail(errbuf, errlen, "URL prefix has a '.' or '..' segment");
		if (len + (len ? 1 : 0) + seg_len >= sizeof(out->prefix))
			return url_fail(errbuf, errlen, "URL prefix is too long");
		if (len)
			out->prefix[len++] = '/';
		memcpy(out->prefix + len, seg, seg_len);
		len += seg_len;
	}
	out->prefix[len] = '\0';
	return 0;
}

/* What curl's URL parser refused, as words for a person. */
static int url_refused(CURLUcode rc, char *errbuf, size_t errlen)
{
	switch (rc) {
	case CURLUE_BAD_SCHEME:
	case CURLUE_UNSUPPORTED_SCHEME:
		return url_fail(errbuf, errlen, "URL scheme must be http or https");
	case CURLUE_NO_HOST:
		return url_fail(errbuf, errlen, "URL names no host");
	case CURLUE_BAD_PORT_NUMBER:
		return url_fail(errbuf, errlen, "URL port is not a number from 1 to 65535");
	case CURLUE_BAD_IPV6:
		return url_fail(errbuf, errlen, "URL has a bad IPv6 literal");
	case CURLUE_BAD_HOSTNAME:
		return url_fail(errbuf, errlen,
				"URL host has a character not allowed in a host name");
	default:
		return url_fail(errbuf, errlen, "URL is not valid: %s", curl_url_strerror(rc));
	}
}

/* Splits url with curl's URL API (scheme, host, port, path as written: dot segments
 * kept, so they can be refused) and checks each part. *path is the caller's to free
 * with curl_free. */
static int split_url(const char *url, struct url_container *out, char **path,
		     char *errbuf, size_t errlen)
{
	CURLU *h = curl_url();
	char *part = NULL;
	CURLUcode rc;
	int err = 0;

	if (!h)
		return -ENOMEM;
	rc = curl_url_set(h, CURLUPART_URL, url, CURLU_PATH_AS_IS);
	if (rc) {
		err = url_refused(rc, errbuf, errlen);
		goto out_free_url;
	}
	if (!curl_url_get(h, CURLUPART_USER, &part, 0) ||
	    !curl_url_get(h, CURLUPART_PASSWORD, &part, 0)) {
		err = url_fail(errbuf, errlen,
			       "URL has user information ('@'): credentials never go in the URL");
		goto out_free_part;
	}
	rc = curl_url_get(h, CURLUPART_SCHEME, &part, 0);
	if (rc || (strcasecmp(part, "http") && strcasecmp(part, "https"))) {
		err = rc ? url_refused(rc, errbuf, errlen)
			 : url_fail(errbuf, errlen, "URL scheme must be http or https");
		goto out_free_part;
	}
	memcpy(out->scheme, strcasecmp(part, "http") ? "https" : "http",
	       strcasecmp(part, "http") ? 6 : 5);
	curl_free(part);
	part = NULL;
	rc = curl_url_get(h, CURLUPART_HOST, &part, 0);
	err = rc ? url_refused(rc, errbuf, errlen) : take_host(part, out, errbuf, errlen);
	if (err)
		goto out_free_part;
	curl_free(part);
	part = NULL;
	rc = curl_url_get(h, CURLUPART_PORT, &part, 0);
	if (!rc) {
		out->port = atoi(part); /* curl checked it: 0-65535 digits */
		if (out->port == 0) {
			err = url_fail(errbuf, errlen, "URL port is not a number from 1 to 65535");
			goto out_free_part;
		}
	}
	curl_free(part);
	part = NULL;
	rc = curl_url_get(h, CURLUPART_PATH, path, 0);
	if (rc)
		err = url_refused(rc, errbuf, errlen);
out_free_part:
	curl_free(part);
out_free_url:
	curl_url_cleanup(h);
	return err;
}

/* The path after the authority: [/account]/container[/prefix]. */
static int parse_path(const char *path, struct url_container *out, char *errbuf,
		      size_t errlen)
{
	const char *end = path + strlen(path), *account_end;
	int err;

	account_end = host_style_account_end(out->host, &out->kind);
	if (account_end) {
		out->path_style = false;
		if (!copy_span(out->host, account_end, out->account, sizeof(out->account)))
			return url_fail(errbuf, errlen, "URL account name is too long");
	} else {
		out->path_style = true;
		err = next_segment(&path, end, out->account, sizeof(out->account));
		if (err == -ENAMETOOLONG)
			return url_fail(errbuf, errlen, "URL account name is too long");
		if (err)
			return url_fail(errbuf, errlen, "URL account has a bad %%XX escape");
		if (!out->account[0])
			return url_fail(errbuf, errlen,
					"URL names no account: use http(s)://host[:port]/<account>/<container>");
	}
	if (!account_name_ok(out->account))
		return url_fail(errbuf, errlen, "URL account name \"%s\" is not valid",
				out->account);

	err = next_segment(&path, end, out->container, sizeof(out->container));
	if (err == -ENAMETOOLONG)
		return url_fail(errbuf, errlen, "URL container name is too long");
	if (err)
		return url_fail(errbuf, errlen, "URL container has a bad %%XX escape");
	if (!out->container[0])
		return url_fail(errbuf, errlen, "URL names no container");
	if (!container_name_ok(out->container))
		return url_fail(errbuf, errlen,
				"URL container name \"%s\" is not valid (3-63 of a-z 0-9 -)",
				out->container);

	return parse_prefix(path, end, out, errbuf, errlen);
}

static int parse_container(const char *url, struct url_container *out, char *errbuf,
			   size_t errlen)
{
	const char *p;
	char *curl_path = NULL;
	int err;

	if (!url || !*url)
		return url_fail(errbuf, errlen, "URL is empty");
	if (strpbrk(url, "?#"))
		return url_fail(errbuf, errlen,
				"URL has a query string or fragment: " URL_SAS_HINT);
	for (p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return url_fail(errbuf, errlen, "URL has a space or control character");
	if (!strstr(url, "://"))
		return url_fail(errbuf, errlen, "URL has no scheme: use https://...");
	err = split_url(url, out, &curl_path, errbuf, errlen);
	if (!err)
		err = parse_path(curl_path, out, errbuf, errlen);
	curl_free(curl_path);
	return err;
}

int url_parse_container(const char *url, struct url_container *out, char *errbuf,
			size_t errlen)
{
	int err;

	memset(out, 0, sizeof(*out));
	if (errbuf && errlen)
		errbuf[0] = '\0';
	err = parse_container(url, out, errbuf, errlen);
	if (err)
		memset(out, 0, sizeof(*out)); /* nothing half-parsed escapes */
	return err;
}

int url_endpoint(const struct url_container *u, char *out, size_t outlen)
{
	char port[8] = "";
	int n;

	if (u->port)
		snprintf(port, sizeof(port), ":%d", u->port);
	n = snprintf(out, outlen, "%s://%s%s%s%s", u->scheme, u->host, port,
		     u->path_style ? "/" : "", u->path_style ? u->account : "");
	if (n < 0 || (size_t)n >= outlen) {
		if (outlen)
			out[0] = '\0';
		return -ENOSPC;
	}
	return 0;
}

bool url_host_is_loopback(const char *host)
{
	char v6[INET6_ADDRSTRLEN + 2];
	struct in_addr a4;
	struct in6_addr a6;
	size_t len;

	if (!host)
		return false;
	if (!strcasecmp(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	len = strlen(host);
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		if (len - 2 >= sizeof(v6))
			return false;
		memcpy(v6, host + 1, len - 2);
		v6[len - 2] = '\0';
		host = v6;
	}
	if (inet_pton(AF_INET6, host, &a6) != 1)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&a6))
		return true;
	/* ::ffff:127.x.y.z reaches IPv4 loopback */
	return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

int url_encode(const char *in, bool keep_slash, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = 0;

	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;
		bool plain = is_alnum((char)c) || c == '-' || c == '.' || c == '_' ||
			     c == '~' || (keep_slash && c == '/');
		size_t need = plain ? 1 : 3;

		/* room for this and the terminating NUL, within int range */
		if (len + need >= outlen || len + need > (size_t)2147483647)
			goto out_nospc;
		if (plain) {
			out[len++] = (char)c;
		} else {
			out[len++] = '%';
			out[len++] = hex[c >> 4];
			out[len++] = hex[c & 15];
		}
	}
	if (len >= outlen)
		goto out_nospc;
	out[len] = '\0';
	return (int)len;
out_nospc:
	if (outlen)
		out[0] = '\0';
	return -ENOSPC;
}

int url_decode(char *s)
{
	char *r, *w;

	/* validate first so that s is untouched on error; %00 would cut the string */
	for (r = s; *r; r++) {
		if (*r != '%')
			continue;
		if (util_hex_digit(r[1]) < 0 || util_hex_digit(r[2]) < 0)
			return -EINVAL;
		if (r[1] == '0' && r[2] == '0')
			return -EINVAL;
		r += 2;
	}
	for (r = w = s; *r; w++) {
		if (*r == '%') {
			*w = (char)(util_hex_digit(r[1]) << 4 | util_hex_digit(r[2]));
			r += 3;
		} else {
			*w = *r++;
		}
	}
	*w = '\0';
	return 0;
}
