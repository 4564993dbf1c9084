/* auth: credentials, Shared Key signing and where credentials come from. */
#include "auth/auth.h"
#include "auth/base/util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define AUTH_SECRET_FILE_MAX (64 * 1024) /* bytes read from a secret file at most */
#define AUTH_STS_MAX (1024 * 1024)       /* string-to-sign size cap */

struct auth_cred {
	enum auth_kind kind;
	char *account;      /* shared key */
	unsigned char *key; /* shared key, decoded */
	size_t key_len;
	char *sas;   /* SAS, without '?' */
	char *token; /* bearer */
	int64_t expiry; /* bearer: its JWT's exp; 0 unknown */
};

/* ---- small helpers ---- */

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Compares as if both strings were lower-cased (ASCII only, locale-free). */
static int ascii_casecmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		unsigned char ca = (unsigned char)ascii_lower(*a);
		unsigned char cb = (unsigned char)ascii_lower(*b);

		if (ca != cb || !ca)
			return (int)ca - (int)cb;
	}
}

static bool ascii_prefix_case(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++)
		if (ascii_lower(*s) != ascii_lower(*prefix))
			return false;
	return true;
}

/* True if every byte is a visible ASCII character (no space, no control). */
static bool all_visible(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

void auth_secret_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* ---- builders ---- */

static int cred_new(enum auth_kind kind, struct auth_cred **out)
{
	struct auth_cred *cred = calloc(1, sizeof(*cred));

	if (!cred)
		return -ENOMEM;
	cred->kind = kind;
	*out = cred;
	return 0;
}

int auth_cred_anonymous(struct auth_cred **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	return cred_new(AUTH_ANONYMOUS, out);
}

static bool base64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* Strict base64: length a multiple of 4, at most two '=' and only at the end. */
static int base64_decode(const char *in, unsigned char **out, size_t *outlen)
{
	size_t len = strlen(in), pad = 0, i;
	unsigned char *buf;
	int n;

	if (len == 0 || len % 4 || len > INT_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (in[i] == '=')
			pad++;
		else if (pad || !base64_char(in[i]))
			return -EINVAL;
	}
	if (pad > 2)
		return -EINVAL;
	buf = malloc(len / 4 * 3);
	if (!buf)
		return -ENOMEM;
	n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
	if (n < 0 || (size_t)n < pad || (size_t)n - pad == 0) {
		OPENSSL_cleanse(buf, len / 4 * 3);
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	*outlen = (size_t)n - pad;
	return 0;
}

/* An account name goes into a header and a signed path: no space, ':' or '/'. */
static bool account_valid(const char *account)
{
	return account && *account && all_visible(account) && !strchr(account, ':') &&
	       !strchr(account, '/');
}

int auth_cred_shared_key(const char *account, const char *key_base64, struct auth_cred **out)
{
	struct auth_cred *cred;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!account_valid(account) || !key_base64)
		return -EINVAL;
	err = cred_new(AUTH_SHARED_KEY, &cred);
	if (err)
		return err;
	cred->account = strdup(account);
	if (!cred->account) {
		err = -ENOMEM;
		goto out_free_cred;
	}
	err = base64_decode(key_base64, &cred->key, &cred->key_len);
	if (err)
		goto out_free_cred;
	*out = cred;
	return 0;
out_free_cred:
	auth_cred_free(cred);
	return err;
}

/* True if the query string has a non-empty sig= parameter. */
static bool sas_has_sig(const char *sas)
{
	const char *p = sas;

	while (*p) {
		size_t seg = strcspn(p, "&");

		if (seg > 4 && ascii_prefix_case(p, "sig="))
			return true;
		p += seg;
		if (*p == '&')
			p++;
	}
	return false;
}

int auth_cred_sas(const char *sas, struct auth_cred **out)
{
	struct auth_cred *cred;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!sas)
		return -EINVAL;
	if (*sas == '?')
		sas++;
	/* It is pasted into URLs as is: no spaces or control characters. */
	if (!*sas || !all_visible(sas) || strchr(sas, '#') || !sas_has_sig(sas))
		return -EINVAL;
	err = cred_new(AUTH_SAS, &cred);
	if (err)
		return err;
	cred->sas = strdup(sas);
	if (!cred->sas) {
		auth_cred_free(cred);
		return -ENOMEM;
	}
	*out = cred;
	return 0;
}

int auth_cred_bearer(const char *token, struct auth_cred **out)
{
	struct auth_cred *cred;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	/* It becomes a header value: no spaces or control characters. */
	if (!token || !*token || !all_visible(token))
		return -EINVAL;
	err = cred_new(AUTH_BEARER, &cred);
	if (err)
		return err;
	cred->token = strdup(token);
	if (!cred->token) {
		auth_cred_free(cred);
		return -ENOMEM;
	}
	cred->expiry = auth_jwt_expiry(token);
	*out = cred;
	return 0;
}

/* The most base64url characters a JWT payload may have here. */
#define AUTH_JWT_PAYLOAD_MAX 16384

int64_t auth_jwt_expiry(const char *token)
{
	const char *payload = strchr(token, '.'), *end = payload ? strchr(payload + 1, '.') : NULL;
	size_t len = end ? (size_t)(end - payload - 1) : 0, i;
	unsigned char *bytes = NULL;
	char *b64;
	size_t n;
	json_t *root, *exp;
	int64_t out = 0;

	if (len == 0 || len > AUTH_JWT_PAYLOAD_MAX || len % 4 == 1)
		return 0;
	b64 = malloc(len + 4);
	if (!b64)
		return 0;
	for (i = 0; i < len; i++) { /* base64url, unpadded, to base64 */
		char c = payload[1 + i];

		b64[i] = c == '-' ? '+' : c == '_' ? '/' : c;
	}
	while (i % 4)
		b64[i++] = '=';
	b64[i] = '\0';
	if (base64_decode(b64, &bytes, &n) == 0) {
		root = json_loadb((const char *)bytes, n, JSON_REJECT_DUPLICATES, NULL);
		exp = json_object_get(root, "exp");
		if (json_is_integer(exp) && json_integer_value(exp) > 0)
			out = json_integer_value(exp);
		json_decref(root);
		free(bytes);
	}
	free(b64);
	return out;
}

int64_t auth_cred_expiry(const struct auth_cred *cred)
{
	return cred && cred->kind == AUTH_BEARER ? cred->expiry : 0;
}

void auth_cred_free(struct auth_cred *cred)
{
	if (!cred)
		return;
	if (cred->key) {
		OPENSSL_cleanse(cred->key, cred->key_len);
		free(cred->key);
	}
	free(cred->account);
	auth_secret_free(cred->sas);
	auth_secret_free(cred->token);
	free(cred);
}

enum auth_kind auth_cred_kind(const struct auth_cred *cred)
{
	return cred ? cred->kind : AUTH_ANONYMOUS;
}

const char *auth_cred_account(const struct auth_cred *cred)
{
	return cred && cred->kind == AUTH_SHARED_KEY ? cred->account : NULL;
}

const char *auth_kind_name(enum auth_kind kind)
{
	switch (kind) {
	case AUTH_ANONYMOUS:
		return "anonymous";
	case AUTH_SHARED_KEY:
		return "shared key";
	case AUTH_SAS:
		return "SAS";
	case AUTH_BEARER:
		return "bearer token";
	}
	return "unknown";
}

const char *auth_sas_query(const struct auth_cred *cred)
{
	return cred && cred->kind == AUTH_SAS ? cred->sas : NULL;
}

/* ---- string-to-sign ---- */

/* The string to sign, capped at AUTH_STS_MAX - 1 bytes; the first failure sticks in
 * err (-ENOSPC past the cap). */
struct sts_buf {
	struct util_buf buf;
	int err;
};

#define STS_BUF_INIT { .buf.limit = AUTH_STS_MAX - 1 }

static void sts_put(struct sts_buf *sb, const char *s, size_t n)
{
	if (!sb->err)
		sb->err = util_buf_append(&sb->buf, s, n);
	if (sb->err == -EFBIG)
		sb->err = -ENOSPC;
}

static void sts_puts(struct sts_buf *sb, const char *s)
{
	sts_put(sb, s, strlen(s));
}

static void sts_putc(struct sts_buf *sb, char c)
{
	sts_put(sb, &c, 1);
}

static const char *header_find(const struct auth_header *headers, size_t nheaders,
			       const char *name)
{
	size_t i;

	for (i = 0; i < nheaders; i++)
		if (headers[i].name && ascii_casecmp(headers[i].name, name) == 0)
			return headers[i].value ? headers[i].value : "";
	return NULL;
}

/* Appends value without leading and trailing whitespace. Inner whitespace is kept:
 * Azurite and the Azure SDKs sign it as sent, despite the REST docs' "unfolding". */
static void put_trimmed(struct sts_buf *sb, const char *value)
{
	size_t len;

	while (ascii_space(*value))
		value++;
	len = strlen(value);
	while (len && ascii_space(value[len - 1]))
		len--;
	sts_put(sb, value, len);
}

static void put_standard_header(struct sts_buf *sb, const struct auth_header *headers,
				size_t nheaders, const char *name)
{
	const char *value = header_find(headers, nheaders, name);

	/* A 0-byte body signs as an empty Content-Length. */
	if (value && !(ascii_casecmp(name, "Content-Length") == 0 && value[0] &&
		       strspn(value, "0 \t") == strlen(value)))
		put_trimmed(sb, value);
	sts_putc(sb, '\n');
}

static int header_cmp(const void *a, const void *b)
{
	const struct auth_header *ha = *(const struct auth_header *const *)a;
	const struct auth_header *hb = *(const struct auth_header *const *)b;

	return ascii_casecmp(ha->name, hb->name);
}

/* x-ms-* headers, names lower-cased and sorted, "name:value\n" each. A repeated
 * name is -EINVAL: servers merge repeats in ways that do not agree. */
static int put_canonical_headers(struct sts_buf *sb, const struct auth_header *headers,
				 size_t nheaders)
{
	const struct auth_header **sorted;
	size_t i, n = 0;

	if (!nheaders)
		return 0;
	sorted = calloc(nheaders, sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (i = 0; i < nheaders; i++)
		if (headers[i].name && ascii_prefix_case(headers[i].name, "x-ms-"))
			sorted[n++] = &headers[i];
	qsort(sorted, n, sizeof(*sorted), header_cmp);
	for (i = 0; i < n; i++) {
		const char *name = sorted[i]->name;

		if (i > 0 && ascii_casecmp(sorted[i - 1]->name, name) == 0) {
			free(sorted);
			return -EINVAL;
		}
		for (; *name; name++)
			sts_putc(sb, ascii_lower(*name));
		sts_putc(sb, ':');
		put_trimmed(sb, sorted[i]->value ? sorted[i]->value : "");
		sts_putc(sb, '\n');
	}
	free(sorted);
	return 0;
}

/* URL-decodes n bytes of src into dst ('+' is a space, as servers read it); a '%'
 * not followed by two hex digits stays as is. Returns bytes written, or -EINVAL for
 * an encoded NUL. */
static long url_decode(const char *src, size_t n, char *dst, bool lower)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char c = src[i];

		if (c == '%' && i + 2 < n && util_hex_digit(src[i + 1]) >= 0 &&
		    util_hex_digit(src[i + 2]) >= 0) {
			c = (char)(util_hex_digit(src[i + 1]) * 16 + util_hex_digit(src[i + 2]));
			if (!c)
				return -EINVAL;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		dst[o++] = lower ? ascii_lower(c) : c;
	}
	dst[o] = '\0';
	return (long)o;
}

struct query_param {
	const char *name; /* decoded, lower-cased */
	const char *value; /* decoded */
};

static int param_cmp(const void *a, const void *b)
{
	const struct query_param *pa = a, *pb = b;
	int c = strcmp(pa->name, pb->name);

	return c ? c : strcmp(pa->value, pb->value);
}

/* "\nname:value" per parameter, names sorted, a repeated name's values sorted and
 * joined with ','. */
static int put_canonical_query(struct sts_buf *sb, const char *query)
{
	struct query_param *params;
	size_t qlen = strlen(query), nparams = 1, n = 0, i;
	const char *p;
	char *scratch, *w;
	int err = 0;

	for (p = query; *p; p++)
		if (*p == '&')
			nparams++;
	params = calloc(nparams, sizeof(*params));
	if (!params)
		return -ENOMEM;
	/* Each "name=value" decodes to at most its length plus two NULs. */
	scratch = malloc(qlen + 2 * nparams + 1);
	if (!scratch) {
		err = -ENOMEM;
		goto out_free_params;
	}
	w = scratch;
	for (p = query; *p;) {
		size_t seg = strcspn(p, "&");
		const char *eq = memchr(p, '=', seg);
		size_t name_len = eq ? (size_t)(eq - p) : seg;
		long got;

		if (seg) {
			got = url_decode(p, name_len, w, true);
			if (got < 0) {
				err = (int)got;
				goto out_free_scratch;
			}
			params[n].name = w;
			w += got + 1;
			got = eq ? url_decode(eq + 1, seg - name_len - 1, w, false)
				 : url_decode("", 0, w, false);
			if (got < 0) {
				err = (int)got;
				goto out_free_scratch;
			}
			params[n].value = w;
			w += got + 1;
			n++;
		}
		p += seg;
		if (*p == '&')
			p++;
	}
	qsort(params, n, sizeof(*params), param_cmp);
	for (i = 0; i < n; i++) {
		if (i > 0 && strcmp(params[i - 1].name, params[i].name) == 0) {
			sts_putc(sb, ',');
		} else {
			sts_putc(sb, '\n');
			sts_puts(sb, params[i].name);
			sts_putc(sb, ':');
		}
		sts_puts(sb, params[i].value);
	}
out_free_scratch:
	free(scratch);
out_free_params:
	free(params);
	return err;
}

/* Builds the string-to-sign into sb (which the caller frees). */
static int sts_build(struct sts_buf *sb, const char *account, const char *method,
		     const char *path, const char *query, const struct auth_header *headers,
		     size_t nheaders)
{
	static const char *const standard[] = {
		"Content-Encoding", "Content-Language", "Content-Length",
		"Content-MD5",      "Content-Type",
	};
	static const char *const conditional[] = {
		"If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range",
	};
	size_t i;
	int err;

	if (!account || !*account || !method || !*method || !path || path[0] != '/' ||
	    (nheaders && !headers))
		return -EINVAL;
	/* A value with a line break cannot be sent as one header. */
	for (i = 0; i < nheaders; i++)
		if (headers[i].value && strpbrk(headers[i].value, "\r\n"))
			return -EINVAL;
	sts_puts(sb, method);
	sts_putc(sb, '\n');
	for (i = 0; i < sizeof(standard) / sizeof(standard[0]); i++)
		put_standard_header(sb, headers, nheaders, standard[i]);
	if (header_find(headers, nheaders, "x-ms-date"))
		sts_putc(sb, '\n');
	else
		put_standard_header(sb, headers, nheaders, "Date");
	for (i = 0; i < sizeof(conditional) / sizeof(conditional[0]); i++)
		put_standard_header(sb, headers, nheaders, conditional[i]);
	err = put_canonical_headers(sb, headers, nheaders);
	if (err)
		return err;
	sts_putc(sb, '/');
	sts_puts(sb, account);
	sts_puts(sb, path);
	if (query && *query) {
		err = put_canonical_query(sb, query);
		if (err)
			return err;
	}
	return sb->err;
}

int auth_string_to_sign(const char *account, const char *method, const char *path,
			const char *query, const struct auth_header *headers,
			size_t nheaders, char *out, size_t outlen)
{
	struct sts_buf sb = STS_BUF_INIT;
	int err;

	if (!out || !outlen)
		return -ENOSPC;
	out[0] = '\0';
	err = sts_build(&sb, account, method, path, query, headers, nheaders);
	if (err)
		goto out_free_sb;
	if (sb.buf.len + 1 > outlen) {
		err = -ENOSPC;
		goto out_free_sb;
	}
	memcpy(out, sb.buf.data, sb.buf.len + 1);
out_free_sb:
	util_buf_free(&sb.buf);
	return err;
}

static int shared_key_authorization(const struct auth_cred *cred, const char *method,
				    const char *path, const char *query,
				    const struct auth_header *headers, size_t nheaders,
				    char *out, size_t outlen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char sig[2 * EVP_MAX_MD_SIZE];
	struct sts_buf sb = STS_BUF_INIT;
	int err, n;

	err = sts_build(&sb, cred->account, method, path, query, headers, nheaders);
	if (err)
		goto out_free_sb;
	if (!HMAC(EVP_sha256(), cred->key, (int)cred->key_len, (const unsigned char *)sb.buf.data,
		  sb.buf.len, mac, &mac_len)) {
		err = -EIO;
		goto out_free_sb;
	}
	EVP_EncodeBlock((unsigned char *)sig, mac, (int)mac_len);
	n = snprintf(out, outlen, "SharedKey %s:%s", cred->account, sig);
	if (n < 0 || (size_t)n >= outlen) {
		out[0] = '\0';
		err = -ENOSPC;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
out_free_sb:
	util_buf_free(&sb.buf);
	return err;
}

int auth_authorization(const struct auth_cred *cred, const char *method, const char *path,
		       const char *query, const struct auth_header *headers,
		       size_t nheaders, char *out, size_t outlen)
{
	int n;

	if (!out || !outlen)
		return -ENOSPC;
	out[0] = '\0';
	if (!cred)
		return -EINVAL;
	switch (cred->kind) {
	case AUTH_SHARED_KEY:
		return shared_key_authorization(cred, method, path, query, headers, nheaders,
						out, outlen);
	case AUTH_BEARER:
		n = snprintf(out, outlen, "Bearer %s", cred->token);
		if (n < 0 || (size_t)n >= outlen) {
			OPENSSL_cleanse(out, outlen);
			out[0] = '\0';
			return -ENOSPC;
		}
		return 0;
	case AUTH_SAS:
	case AUTH_ANONYMOUS:
		return 0;
	}
	return -EINVAL;
}

/* ---- where credentials come from ---- */

int auth_read_secret_file(const char *what, const char *path, char **out, char *errbuf,
			  size_t errlen)
{
	char ebuf[128];
	struct stat st;
	char *text;
	size_t len = 0, start = 0;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		util_errf(errbuf, errlen, "%s %s: %s", what, path,
			  strerror_r(-err, ebuf, sizeof(ebuf)));
		return err;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		util_errf(errbuf, errlen, "%s %s: is a directory", what, path);
		err = -EINVAL;
		goto out_close;
	}
	err = util_read_fd(fd, AUTH_SECRET_FILE_MAX, &text, &len);
	if (err == -EFBIG) {
		util_errf(errbuf, errlen, "%s %s: larger than %d bytes", what, path,
			  AUTH_SECRET_FILE_MAX);
		err = -EINVAL;
		goto out_close;
	}
	if (err) {
		util_errf(errbuf, errlen, "%s %s: %s", what, path,
			  strerror_r(-err, ebuf, sizeof(ebuf)));
		goto out_close;
	}
	if (memchr(text, '\0', len)) {
		util_errf(errbuf, errlen, "%s %s: contains a NUL byte", what, path);
		err = -EINVAL;
		goto out_free_text;
	}
	while (len && ascii_space(text[len - 1]))
		len--;
	while (start < len && ascii_space(text[start]))
		start++;
	if (start == len) {
		util_errf(errbuf, errlen, "%s %s: is empty", what, path);
		err = -EINVAL;
		goto out_free_text;
	}
	memmove(text, text + start, len - start);
	OPENSSL_cleanse(text + len - start, start); /* the tail the move left behind */
	text[len - start] = '\0';
	*out = text;
	goto out_close;
out_free_text:
	OPENSSL_cleanse(text, AUTH_SECRET_FILE_MAX + 1);
	free(text);
out_close:
	close(fd);
	return err;
}

/* Builds a credential of kind from secret; on failure says why, naming source. */
static int build_cred(enum auth_kind kind, const char *account, const char *secret,
		      const char *source, struct auth_cred **out, char *errbuf, size_t errlen)
{
	int err;

	switch (kind) {
	case AUTH_SHARED_KEY:
		if (!account_valid(account)) {
			util_errf(errbuf, errlen, "%s: account name is empty or not valid", source);
			return -EINVAL;
		}
		err = auth_cred_shared_key(account, secret, out);
		if (err == -EINVAL)
			util_errf(errbuf, errlen, "%s: account key is not valid base64", source);
		break;
	case AUTH_SAS:
		err = auth_cred_sas(secret, out);
		if (err == -EINVAL)
			util_errf(errbuf, errlen,
				  "%s: not a SAS token (needs a sig= parameter, no spaces)", source);
		break;
	case AUTH_BEARER:
		err = auth_cred_bearer(secret, out);
		if (err == -EINVAL)
			util_errf(errbuf, errlen, "%s: bearer token is empty or has spaces",
				  source);
		break;
	default:
		err = auth_cred_anonymous(out);
		break;
	}
	if (err == -ENOMEM)
		util_errf(errbuf, errlen, "%s: out of memory", source);
	return err;
}

static int from_file(enum auth_kind kind, const char *account, const char *option,
		     const char *path, struct auth_cred **out, char *errbuf, size_t errlen)
{
	char source[PATH_MAX + 64];
	char *secret = NULL;
	int err;

	err = auth_read_secret_file(option, path, &secret, errbuf, errlen);
	if (err)
		return err;
	snprintf(source, sizeof(source), "%s %s", option, path);
	err = build_cred(kind, account, secret, source, out, errbuf, errlen);
	auth_secret_free(secret);
	return err;
}

static const char *env_get(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The URL's account (if known) must be the credential's. */
static int account_matches(const char *url_account, const char *cred_account,
			   const char *source, char *errbuf, size_t errlen)
{
	if (!url_account || !cred_account || strcmp(url_account, cred_account) == 0)
		return 0;
	util_errf(errbuf, errlen,
		  "%s names account '%s' but the endpoint URL names account '%s'; "
		  "a shared key signs for one account only",
		  source, cred_account, url_account);
	return -EINVAL;
}

/* 1: a credential was built, 0: the connection string holds none, <0: error. */
static int from_connection_string(const char *url_account, const char *value,
				  struct auth_cred **out, char *errbuf, size_t errlen)
{
	static const char source[] = "AZURE_STORAGE_CONNECTION_STRING";
	struct auth_connstr cs;
	char perr[256];
	int err;

	err = auth_connstr_parse(value, &cs, perr, sizeof(perr));
	if (err) {
		util_errf(errbuf, errlen, "%s: %s", source, perr);
		return err;
	}
	if (cs.account_key) {
		if (!cs.account_name) {
			util_errf(errbuf, errlen, "%s: AccountKey given without AccountName",
				  source);
			err = -EINVAL;
			goto out_free_cs;
		}
		err = account_matches(url_account, cs.account_name, source, errbuf, errlen);
		if (!err)
			err = build_cred(AUTH_SHARED_KEY, cs.account_name, cs.account_key,
					 source, out, errbuf, errlen);
	} else if (cs.sas) {
		err = build_cred(AUTH_SAS, NULL, cs.sas, source, out, errbuf, errlen);
	} else {
		goto out_free_cs; /* no secret in it: look further */
	}
	if (!err)
		err = 1;
out_free_cs:
	auth_connstr_free(&cs);
	return err;
}

int auth_resolve(const struct auth_sources *src, struct auth_cred **out, char *errbuf,
		 size_t errlen)
{
	const char *value, *account;
	int err;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!src || !out)
		return -EINVAL;
	*out = NULL;

	if (src->account_key_file) {
		if (!src->account) {
			util_errf(errbuf, errlen,
				  "account_key_file %s: the endpoint URL names no account",
				  src->account_key_file);
			return -EINVAL;
		}
		return from_file(AUTH_SHARED_KEY, src->account, "account_key_file",
				 src->account_key_file, out, errbuf, errlen);
	}
	if (src->sas_file)
		return from_file(AUTH_SAS, NULL, "sas_file", src->sas_file, out, errbuf,
				 errlen);
	if (src->bearer_token_file)
		return from_file(AUTH_BEARER, NULL, "bearer_token_file",
				 src->bearer_token_file, out, errbuf, errlen);

	value = env_get("AZURE_STORAGE_CONNECTION_STRING");
	if (value) {
		err = from_connection_string(src->account, value, out, errbuf, errlen);
		if (err)
			return err < 0 ? err : 0;
	}
	value = env_get("AZURE_STORAGE_KEY");
	if (value) {
		account = env_get("AZURE_STORAGE_ACCOUNT");
		if (!account)
			account = src->account;
		if (!account) {
			util_errf(errbuf, errlen,
				  "AZURE_STORAGE_KEY: no account (set AZURE_STORAGE_ACCOUNT)");
			return -EINVAL;
		}
		err = account_matches(src->account, account, "AZURE_STORAGE_ACCOUNT", errbuf,
				      errlen);
		if (err)
			return err;
		return build_cred(AUTH_SHARED_KEY, account, value, "AZURE_STORAGE_KEY", out,
				  errbuf, errlen);
	}
	value = env_get("AZURE_STORAGE_SAS_TOKEN");
	if (value)
		return build_cred(AUTH_SAS, NULL, value, "AZURE_STORAGE_SAS_TOKEN", out,
				  errbuf, errlen);
	value = env_get("AZURE_STORAGE_BEARER_TOKEN");
	if (value)
		return build_cred(AUTH_BEARER, NULL, value, "AZURE_STORAGE_BEARER_TOKEN", out,
				  errbuf, errlen);
	return build_cred(AUTH_ANONYMOUS, NULL, NULL, "anonymous", out, errbuf, errlen);
}
