/* redact: secrets out of text meant for logs and messages. */
#include "auth/base/redact.h"

#include <stdbool.h>
#include <string.h>

#define REDACTED "REDACTED"

/* Marker after which a secret value follows; keep_account keeps "account:" of a
 * Shared Key authorization and hides only the signature. */
struct redact_marker {
	const char *text;
	size_t len;
	bool keep_account;
};

static const struct redact_marker markers[] = {
	{ "sig=", 4, false },
	{ "AccountKey=", 11, false },
	{ "SharedAccessSignature=", 22, false },
	{ "SharedKey ", 10, true },
	{ "Bearer ", 7, false },
};

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool starts_with_case(const char *s, const char *prefix, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!s[i] || ascii_lower(s[i]) != ascii_lower(prefix[i]))
			return false;
	return true;
}

static bool value_end(char c)
{
	return c == '\0' || c == '&' || c == ';' || c == '"' || c == ' ' || c == '\t' ||
	       c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Output with truncation; always leaves room for the NUL. */
struct redact_out {
	char *buf;
	size_t len, cap;
};

static void out_put(struct redact_out *o, const char *s, size_t n)
{
	size_t room = o->cap - 1 - o->len;

	if (n > room)
		n = room;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

void redact_secrets(const char *in, char *out, size_t outlen)
{
	struct redact_out o = { out, 0, outlen };
	const char *p = in;

	if (!out || !outlen)
		return;
	if (!in)
		in = p = "";
	while (*p && o.len < o.cap - 1) {
		const struct redact_marker *m = NULL;
		const char *value;
		size_t i;

		for (i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
			if (starts_with_case(p, markers[i].text, markers[i].len)) {
				m = &markers[i];
				break;
			}
		}
		if (!m) {
			out_put(&o, p, 1);
			p++;
			continue;
		}
		out_put(&o, p, m->len);
		value = p + m->len;
		if (m->text[m->len - 1] == ' ')
			while (*value == ' ') /* "Bearer   token" */
				value++;
		out_put(&o, p + m->len, (size_t)(value - (p + m->len)));
		if (m->keep_account) {
			const char *colon = value;

			while (!value_end(*colon) && *colon != ':')
				colon++;
			if (*colon == ':') {
				out_put(&o, value, (size_t)(colon + 1 - value));
				value = colon + 1;
			}
		}
		p = value;
		while (!value_end(*p))
			p++;
		if (p > value)
			out_put(&o, REDACTED, sizeof(REDACTED) - 1);
	}
	out[o.len] = '\0';
}
