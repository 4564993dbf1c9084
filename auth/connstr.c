/* connstr: Azure Storage connection strings ("Key=Value;Key=Value"). */
#include "auth/auth.h"
#include "auth/base/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define DEV_BLOB_PORT "10000"

/* The settings we read; any other key is ignored. */
enum connstr_key {
	KEY_PROTOCOL,
	KEY_ACCOUNT_NAME,
	KEY_ACCOUNT_KEY,
	KEY_SAS,
	KEY_BLOB_ENDPOINT,
	KEY_FILE_ENDPOINT,
	KEY_ENDPOINT_SUFFIX,
	KEY_USE_DEV,
	KEY_DEV_PROXY,
	KEY_COUNT,
};

static const char *const key_names[KEY_COUNT] = {
	[KEY_PROTOCOL] = "DefaultEndpointsProtocol",
	[KEY_ACCOUNT_NAME] = "AccountName",
	[KEY_ACCOUNT_KEY] = "AccountKey",
	[KEY_SAS] = "SharedAccessSignature",
	[KEY_BLOB_ENDPOINT] = "BlobEndpoint",
	[KEY_FILE_ENDPOINT] = "FileEndpoint",
	[KEY_ENDPOINT_SUFFIX] = "EndpointSuffix",
	[KEY_USE_DEV] = "UseDevelopmentStorage",
	[KEY_DEV_PROXY] = "DevelopmentStorageProxyUri",
};

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Case-insensitive compare of s[0..n) with the NUL-terminated word. */
static bool word_equal(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!word[i] || ascii_lower(s[i]) != ascii_lower(word[i]))
			return false;
	return word[n] == '\0';
}

static void trim(const char **s, size_t *n)
{
	while (*n && ascii_space(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && ascii_space((*s)[*n - 1]))
		(*n)--;
}

static void secret_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* Joins up to four pieces into a new string; NULL pieces are skipped. */
static char *join(const char *a, const char *b, const char *c, const char *d)
{
	const char *parts[4] = { a, b, c, d };
	size_t len = 0, i, off = 0;
	char *s;

	for (i = 0; i < 4; i++)
		if (parts[i])
			len += strlen(parts[i]);
	s = malloc(len + 1);
	if (!s)
		return NULL;
	for (i = 0; i < 4; i++) {
		if (parts[i]) {
			size_t n = strlen(parts[i]);

			memcpy(s + off, parts[i], n);
			off += n;
		}
	}
	s[off] = '\0';
	return s;
}

/* "scheme://host[:port][/...]" of the proxy URI → "scheme://host:10000/devstoreaccount1". */
static int dev_proxy_endpoint(const char *uri, char **out)
{
	const char *sep = strstr(uri, "://");
	const char *host, *host_end;
	char *scheme, *host_copy;

	if (!sep || sep == uri)
		return -EINVAL;
	host = sep + 3;
	if (*host == '[') {
		host_end = strchr(host, ']');
		if (!host_end)
			return -EINVAL;
		host_end++;
	} else {
		host_end = host + strcspn(host, ":/?#");
	}
	if (host_end == host)
		return -EINVAL;
	scheme = strndup(uri, (size_t)(sep - uri));
	host_copy = strndup(host, (size_t)(host_end - host));
	if (scheme && host_copy)
		*out = join(scheme, "://", host_copy, ":" DEV_BLOB_PORT "/" AUTH_DEV_ACCOUNT);
	free(scheme);
	free(host_copy);
	return *out ? 0 : -ENOMEM;
}

void auth_connstr_free(struct auth_connstr *cs)
{
	if (!cs)
		return;
	free(cs->account_name);
	secret_free(cs->account_key);
	secret_free(cs->sas);
	free(cs->blob_endpoint);
	free(cs->file_endpoint);
	memset(cs, 0, sizeof(*cs));
}

/* The endpoint of one service (key: BlobEndpoint or FileEndpoint; service: ".blob.")
 * into *out: as given, without trailing '/', else built from the protocol, AccountName
 * and EndpointSuffix; NULL without either. */
static int connstr_endpoint(char *const values[KEY_COUNT], int key, const char *service,
			    char **out, char *errbuf, size_t errlen)
{
	const char *protocol = values[KEY_PROTOCOL] ? values[KEY_PROTOCOL] : "https";
	const char *suffix = values[KEY_ENDPOINT_SUFFIX] ? values[KEY_ENDPOINT_SUFFIX]
							  : "core.windows.net";
	char *start;

	if (values[key]) {
		size_t n = strlen(values[key]);

		while (n && values[key][n - 1] == '/')
			n--;
		if (!n || !strstr(values[key], "://")) {
			util_errf(errbuf, errlen, "%s is not a URL", key_names[key]);
			return -EINVAL;
		}
		*out = strndup(values[key], n);
		return *out ? 0 : -ENOMEM;
	}
	if (!values[KEY_ACCOUNT_NAME])
		return 0;
	start = join(protocol, "://", values[KEY_ACCOUNT_NAME], service);
	*out = start ? join(start, suffix, NULL, NULL) : NULL;
	free(start);
	return *out ? 0 : -ENOMEM;
}

/* Fills out from the collected settings (values not owned). */
static int connstr_build(char *const values[KEY_COUNT], struct auth_connstr *out,
			 char *errbuf, size_t errlen)
{
	const char *protocol = values[KEY_PROTOCOL] ? values[KEY_PROTOCOL] : "https";
	bool dev = false;
	const char *sas;
	int i, err;

	if (values[KEY_USE_DEV]) {
		if (word_equal(values[KEY_USE_DEV], strlen(values[KEY_USE_DEV]), "true")) {
			dev = true;
		} else if (!word_equal(values[KEY_USE_DEV], strlen(values[KEY_USE_DEV]),
				       "false")) {
			util_errf(errbuf, errlen, "UseDevelopmentStorage must be true or false");
			return -EINVAL;
		}
	}
	if (dev) {
		static const int excluded[] = { KEY_ACCOUNT_NAME, KEY_ACCOUNT_KEY, KEY_SAS,
						KEY_BLOB_ENDPOINT, KEY_FILE_ENDPOINT };

		for (i = 0; i < (int)(sizeof(excluded) / sizeof(excluded[0])); i++) {
			if (values[excluded[i]]) {
				util_errf(errbuf, errlen,
					  "UseDevelopmentStorage=true cannot be combined with %s",
					  key_names[excluded[i]]);
				return -EINVAL;
			}
		}
		out->account_name = strdup(AUTH_DEV_ACCOUNT);
		out->account_key = strdup(AUTH_DEV_KEY);
		if (!out->account_name || !out->account_key)
			return -ENOMEM;
		if (values[KEY_DEV_PROXY]) {
			err = dev_proxy_endpoint(values[KEY_DEV_PROXY], &out->blob_endpoint);

			if (err == -EINVAL)
				util_errf(errbuf, errlen,
					  "DevelopmentStorageProxyUri is not scheme://host");
			return err;
		}
		out->blob_endpoint = strdup(AUTH_DEV_BLOB_ENDPOINT);
		return out->blob_endpoint ? 0 : -ENOMEM;
	}

	if (values[KEY_PROTOCOL] && !word_equal(protocol, strlen(protocol), "https") &&
	    !word_equal(protocol, strlen(protocol), "http")) {
		util_errf(errbuf, errlen, "DefaultEndpointsProtocol must be http or https");
		return -EINVAL;
	}
	if (!values[KEY_ACCOUNT_NAME] && !values[KEY_BLOB_ENDPOINT] &&
	    !values[KEY_FILE_ENDPOINT]) {
		util_errf(errbuf, errlen, "connection string has neither AccountName nor "
			  "BlobEndpoint nor FileEndpoint");
		return -EINVAL;
	}
	if (values[KEY_ACCOUNT_NAME]) {
		out->account_name = strdup(values[KEY_ACCOUNT_NAME]);
		if (!out->account_name)
			return -ENOMEM;
	}
	if (values[KEY_ACCOUNT_KEY]) {
		out->account_key = strdup(values[KEY_ACCOUNT_KEY]);
		if (!out->account_key)
			return -ENOMEM;
	}
	sas = values[KEY_SAS];
	if (sas) {
		if (*sas == '?')
			sas++;
		if (!*sas) {
			util_errf(errbuf, errlen, "SharedAccessSignature is empty");
			return -EINVAL;
		}
		out->sas = strdup(sas);
		if (!out->sas)
			return -ENOMEM;
	}
	err = connstr_endpoint(values, KEY_BLOB_ENDPOINT, ".blob.", &out->blob_endpoint, errbuf,
			       errlen);
	if (!err)
		err = connstr_endpoint(values, KEY_FILE_ENDPOINT, ".file.", &out->file_endpoint,
				       errbuf, errlen);
	return err;
}

int auth_connstr_parse(const char *s, struct auth_connstr *out, char *errbuf, size_t errlen)
{
	char *values[KEY_COUNT] = { 0 };
	const char *p;
	int part = 0, err = 0, k;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!s) {
		util_errf(errbuf, errlen, "no connection string");
		return -EINVAL;
	}
	for (p = s; *p;) {
		size_t seg = strcspn(p, ";"), key_len, value_len;
		const char *key = p, *value, *eq;

		part++;
		trim(&key, &seg);
		p = key + seg + strcspn(key + seg, ";");
		if (*p == ';')
			p++;
		if (!seg)
			continue;
		eq = memchr(key, '=', seg);
		if (!eq) {
			/* The part may be a pasted secret: name it by position only. */
			util_errf(errbuf, errlen, "connection string part %d has no '='", part);
			err = -EINVAL;
			goto out_free_values;
		}
		key_len = (size_t)(eq - key);
		value = eq + 1;
		value_len = seg - key_len - 1;
		trim(&key, &key_len);
		trim(&value, &value_len);
		if (!key_len) {
			util_errf(errbuf, errlen, "connection string part %d has no name", part);
			err = -EINVAL;
			goto out_free_values;
		}
		for (k = 0; k < KEY_COUNT; k++)
			if (word_equal(key, key_len, key_names[k]))
				break;
		if (k == KEY_COUNT)
			continue; /* QueueEndpoint and friends */
		if (values[k]) {
			util_errf(errbuf, errlen, "%s appears twice", key_names[k]);
			err = -EINVAL;
			goto out_free_values;
		}
		if (!value_len) {
			util_errf(errbuf, errlen, "%s is empty", key_names[k]);
			err = -EINVAL;
			goto out_free_values;
		}
		values[k] = strndup(value, value_len);
		if (!values[k]) {
			err = -ENOMEM;
			goto out_free_values;
		}
	}
	err = connstr_build(values, out, errbuf, errlen);
	if (err == -ENOMEM)
		util_errf(errbuf, errlen, "out of memory");
	if (err)
		auth_connstr_free(out);
out_free_values:
	for (k = 0; k < KEY_COUNT; k++)
		secret_free(values[k]);
	return err;
}
