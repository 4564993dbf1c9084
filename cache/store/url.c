/* url: container URLs and percent-encoding for the Blob service. */
#include "cache/store/url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define URL_SAS_HINT                                                               \
	"put a SAS in sas_file= or AZURE_STORAGE_SAS_TOKEN, not in the URL"

__attribute__((format(printf, 3, 4))) static int url_fail(char *errbuf, size_t errlen,
							   const char *fmt, ...)
{
	va_list ap;

	if (errbuf && errlen) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
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

/* Splits "host[:port]" or "[v6]:port" into out->host (lower-cased) and out->port. */
static int parse_authority(const char *start, const char *end, struct url_container *out,
			   char *errbuf, size_t errlen)
{
	const char *host_end, *p;
	long port = 0;

	if (memchr(start, '@', (size_t)(end - start)))
		return url_fail(errbuf, errlen,
				"URL has user information ('@'): credentials never go in the URL");
	if (start == end)
		return url_fail(errbuf, errlen, "URL names no host");
	if (*start == '[') {
		host_end = memchr(start, ']', (size_t)(end - start));
		if (!host_end)
			return url_fail(errbuf, errlen, "URL has an unterminated IPv6 literal");
		if (host_end == start + 1)
			return url_fail(errbuf, errlen, "URL has an empty IPv6 literal");
		for (p = start + 1; p < host_end; p++)
			if (hex_value(*p) < 0 && *p != ':' && *p != '.')
				return url_fail(errbuf, errlen, "URL has a bad IPv6 literal");
		host_end++;
		if (host_end != end && *host_end != ':')
			return url_fail(errbuf, errlen, "URL has junk after the IPv6 literal");
	} else {
		host_end = memchr(start, ':', (size_t)(end - start));
		if (!host_end)
			host_end = end;
		if (host_end == start)
			return url_fail(errbuf, errlen, "URL names no host");
		for (p = start; p < host_end; p++)
			if (!is_alnum(*p) && *p != '-' && *p != '.' && *p != '_')
				return url_fail(errbuf, errlen,
						"URL host has a character not allowed in a host name");
	}
	if (!copy_span(start, host_end, out->host, sizeof(out->host)))
		return url_fail(errbuf, errlen, "URL host is too long");
	for (char *h = out->host; *h; h++)
		*h = to_lower(*h);

	if (host_end != end) {
		/* host_end points at ':' */
		p = host_end + 1;
		if (p == end)
			return url_fail(errbuf, errlen, "URL has an empty port");
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return url_fail(errbuf, errlen, "URL port is not a number");
			port = port * 10 + (*p - '0');
			if (port > 65535)
				return url_fail(errbuf, errlen, "URL port is out of range");
		}
		if (port == 0)
			return url_fail(errbuf, errlen, "URL port is out of range");
	}
	out->port = (int)port;
	return 0;
}

/* "<account>.blob.<suffix>" with a non-empty suffix: returns the end of the account
 * label, or NULL for any other host. */
static const char *host_style_account_end(const char *host)
{
	const char *dot = strchr(host, '.');

	if (!dot || dot == host || strncmp(dot + 1, "blob.", 5) != 0 || dot[6] == '\0')
		return NULL;
	return dot;
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

static int parse_container(const char *url, struct url_container *out, char *errbuf,
			   size_t errlen)
{
	const char *p, *authority, *path, *end, *account_end;
	int err;

	if (!url || !*url)
		return url_fail(errbuf, errlen, "URL is empty");
	if (strpbrk(url, "?#"))
		return url_fail(errbuf, errlen,
				"URL has a query string or fragment: " URL_SAS_HINT);
	for (p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return url_fail(errbuf, errlen, "URL has a space or control character");
	end = p;

	p = strstr(url, "://");
	if (!p)
		return url_fail(errbuf, errlen, "URL has no scheme: use https://...");
	if (p - url == 4 && !strncasecmp(url, "http", 4)) {
		memcpy(out->scheme, "http", 5);
	} else if (p - url == 5 && !strncasecmp(url, "https", 5)) {
		memcpy(out->scheme, "https", 6);
	} else {
		return url_fail(errbuf, errlen, "URL scheme must be http or https");
	}

	authority = p + 3;
	path = strchr(authority, '/');
	if (!path)
		path = end;
	err = parse_authority(authority, path, out, errbuf, errlen);
	if (err)
		return err;

	account_end = host_style_account_end(out->host);
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
		if (hex_value(r[1]) < 0 || hex_value(r[2]) < 0)
			return -EINVAL;
		if (r[1] == '0' && r[2] == '0')
			return -EINVAL;
		r += 2;
	}
	for (r = w = s; *r; w++) {
		if (*r == '%') {
			*w = (char)(hex_value(r[1]) << 4 | hex_value(r[2]));
			r += 3;
		} else {
			*w = *r++;
		}
	}
	*w = '\0';
	return 0;
}
