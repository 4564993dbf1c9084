/* jobfile: Azure ML command jobs and Batch AI job files, read with libyaml's document
 * loader and walked by the schema (never by the document), so the walk's depth and
 * length are bounded by the schema and JOB_ITEMS_MAX whatever aliases the file holds. */
#include "tools/launcher/job/jobfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <yaml.h>

#include "auth/base/util.h"

#define FIELDS_MAX 64   /* keys in a fixed-schema object (none has half as many) */
#define QUOTE_MAX 60    /* bytes of file text quoted in a message */
#define SOURCE_MAX 200  /* bytes of the file name in a message */
#define PATH_LEN 320    /* the field path in a message */

struct parse {
	yaml_document_t *doc;
	char *errbuf;
	size_t errlen;
	char source[SOURCE_MAX + 8];
	char path[PATH_LEN]; /* "inputs.data.mode", "properties.inputDirectories[1].id" */
	size_t path_len;
	bool secret; /* inside credentials or secrets: messages quote nothing from the file */
};

/* ---- text for messages ---- */

/* Copies s[0..n) for a message: control bytes become '?', and past max bytes it is
 * cut (at a UTF-8 boundary) and ends in "...". buf holds max + 4 bytes. */
static const char *printable(const char *s, size_t n, char *buf, size_t max)
{
	size_t i, out = 0;
	bool cut = n > max;

	if (cut) {
		n = max;
		while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[out++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (cut) {
		memcpy(buf + out, "...", 3);
		out += 3;
	}
	buf[out] = '\0';
	return buf;
}

static void append(char *buf, size_t buflen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Appends to the NUL-terminated buf, truncating. */
static void append(char *buf, size_t buflen, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	if (!buf || !buflen)
		return;
	used = strnlen(buf, buflen);
	if (used >= buflen - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, buflen - used, fmt, ap);
	va_end(ap);
}

static int fail(struct parse *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* "source:line: path: message" into errbuf; returns -EINVAL. */
static int fail(struct parse *p, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!p->errbuf || !p->errlen)
		return -EINVAL;
	if (p->path_len)
		n = snprintf(p->errbuf, p->errlen, "%s:%u: %s: ", p->source, line, p->path);
	else
		n = snprintf(p->errbuf, p->errlen, "%s:%u: ", p->source, line);
	if (n < 0 || (size_t)n >= p->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(p->errbuf + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- the field path ---- */

static size_t path_push(struct parse *p, const char *key, size_t len)
{
	size_t saved = p->path_len;
	char text[QUOTE_MAX + 4];
	int n;

	n = snprintf(p->path + p->path_len, sizeof(p->path) - p->path_len, "%s%s",
		     p->path_len ? "." : "", printable(key, len, text, QUOTE_MAX));
	if (n > 0)
		p->path_len += (size_t)n < sizeof(p->path) - p->path_len ?
				       (size_t)n : sizeof(p->path) - p->path_len - 1;
	return saved;
}

static size_t path_push_word(struct parse *p, const char *word)
{
	return path_push(p, word, strlen(word));
}

static size_t path_push_node(struct parse *p, const yaml_node_t *key)
{
	return path_push(p, (const char *)key->data.scalar.value, key->data.scalar.length);
}

static size_t path_push_index(struct parse *p, size_t i)
{
	size_t saved = p->path_len;
	int n = snprintf(p->path + p->path_len, sizeof(p->path) - p->path_len, "[%zu]", i);

	if (n > 0)
		p->path_len += (size_t)n < sizeof(p->path) - p->path_len ?
				       (size_t)n : sizeof(p->path) - p->path_len - 1;
	return saved;
}

static void path_pop(struct parse *p, size_t saved)
{
	p->path_len = saved;
	p->path[saved] = '\0';
}

/* ---- nodes ---- */

static unsigned line_of(const yaml_node_t *n)
{
	return (unsigned)n->start_mark.line + 1;
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
	const char *v;
	size_t len;

	if (n->type != YAML_SCALAR_NODE)
		return false;
	if (n->tag && strcmp((const char *)n->tag, YAML_NULL_TAG) == 0)
		return true;
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	v = scalar(n);
	len = n->data.scalar.length;
	return len == 0 || (len == 1 && v[0] == '~') ||
	       (len == 4 && (!memcmp(v, "null", 4) || !memcmp(v, "Null", 4) ||
			     !memcmp(v, "NULL", 4)));
}

static bool is_value(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && !is_null(n);
}

/* What the node is, for "expected X, got Y". */
static const char *shape(const yaml_node_t *n)
{
	if (is_null(n))
		return "nothing (null)";
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a string";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* The scalar is word; ignoring ASCII case when fold_case. */
static bool scalar_matches(const yaml_node_t *n, const char *word, bool fold_case)
{
	size_t len = strlen(word), i;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.length != len)
		return false;
	for (i = 0; i < len; i++) {
		char c = (char)n->data.scalar.value[i];

		if (fold_case ? ascii_lower(c) != ascii_lower(word[i]) : c != word[i])
			return false;
	}
	return true;
}

static bool scalar_is(const yaml_node_t *n, const char *word)
{
	return scalar_matches(n, word, false);
}

static bool in_list(const yaml_node_t *key, const char *const *words)
{
	for (; *words; words++)
		if (scalar_is(key, *words))
			return true;
	return false;
}

static size_t map_len(const yaml_node_t *n)
{
	return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

static size_t seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/* The key and value of pair i of a mapping check_mapping() accepted. */
static void pair_at(struct parse *p, const yaml_node_t *n, size_t i, yaml_node_t **key,
		    yaml_node_t **value)
{
	const yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];

	*key = yaml_document_get_node(p->doc, pair->key);
	*value = yaml_document_get_node(p->doc, pair->value);
}

static yaml_node_t *item_at(struct parse *p, const yaml_node_t *n, size_t i)
{
	return yaml_document_get_node(p->doc, n->data.sequence.items.start[i]);
}

static const yaml_node_t *map_get(struct parse *p, const yaml_node_t *n, const char *name)
{
	size_t i;

	if (n->type != YAML_MAPPING_NODE)
		return NULL;
	for (i = 0; i < map_len(n); i++) {
		yaml_node_t *key, *value;

		pair_at(p, n, i, &key, &value);
		if (key && value && scalar_is(key, name))
			return value;
	}
	return NULL;
}

static bool same_scalar(const yaml_node_t *a, const yaml_node_t *b)
{
	return a->data.scalar.length == b->data.scalar.length &&
	       memcmp(a->data.scalar.value, b->data.scalar.value, a->data.scalar.length) == 0;
}

/* n must be a mapping of at most max pairs, string keys, none twice. want says what
 * it should be, for the message. */
static int check_mapping(struct parse *p, const yaml_node_t *n, size_t max, const char *want)
{
	size_t i, j, count;

	if (n->type != YAML_MAPPING_NODE)
		return fail(p, line_of(n), "expected %s, got %s", want, shape(n));
	count = map_len(n);
	if (count > max)
		return fail(p, line_of(n), "more than %zu entries", max);
	for (i = 0; i < count; i++) {
		yaml_node_t *key, *value;

		pair_at(p, n, i, &key, &value);
		if (!key || !value)
			return fail(p, line_of(n), "malformed mapping");
		if (key->type != YAML_SCALAR_NODE)
			return fail(p, line_of(key), "keys must be strings, got %s", shape(key));
		for (j = 0; j < i; j++) {
			yaml_node_t *earlier, *unused;

			pair_at(p, n, j, &earlier, &unused);
			if (same_scalar(key, earlier)) {
				size_t saved = p->secret ? p->path_len : path_push_node(p, key);
				int err = fail(p, line_of(key), "duplicate key (first at line %u)",
					       line_of(earlier));

				path_pop(p, saved);
				return err;
			}
		}
	}
	return 0;
}

/* n must be a list of at most JOB_ITEMS_MAX items. */
static int check_list(struct parse *p, const yaml_node_t *n, const char *want)
{
	size_t i;

	if (n->type != YAML_SEQUENCE_NODE)
		return fail(p, line_of(n), "expected %s, got %s", want, shape(n));
	if (seq_len(n) > JOB_ITEMS_MAX)
		return fail(p, line_of(n), "more than %d entries", JOB_ITEMS_MAX);
	for (i = 0; i < seq_len(n); i++)
		if (!item_at(p, n, i))
			return fail(p, line_of(n), "malformed list");
	return 0;
}

/* Edit distance with transpositions (optimal string alignment), case-insensitive;
 * both strings at most QUOTE_MAX bytes. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t rows[3][QUOTE_MAX + 1];
	size_t i, j;

	/* Row i lives in rows[i % 3]. */
	for (j = 0; j <= lb; j++)
		rows[0][j] = j;
	for (i = 1; i <= la; i++) {
		size_t *prev2 = rows[(i + 1) % 3], *prev = rows[(i - 1) % 3], *cur = rows[i % 3];

		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t cost = ascii_lower(a[i - 1]) != ascii_lower(b[j - 1]);
			size_t best = prev[j] + 1;

			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (prev[j - 1] + cost < best)
				best = prev[j - 1] + cost;
			if (i > 1 && j > 1 && ascii_lower(a[i - 1]) == ascii_lower(b[j - 2]) &&
			    ascii_lower(a[i - 2]) == ascii_lower(b[j - 1]) && prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best;
		}
	}
	return rows[la % 3][lb];
}

/* The known key closest to key, if it is close enough to be a typo. */
static const char *nearest(const yaml_node_t *key, const char *const *known)
{
	const char *s = scalar(key), *best = NULL;
	size_t len = key->data.scalar.length, best_dist = SIZE_MAX;

	if (len == 0 || len > QUOTE_MAX)
		return NULL;
	for (; *known; known++) {
		size_t klen = strlen(*known), dist;

		if (klen > QUOTE_MAX)
			continue;
		dist = edit_distance(s, len, *known, klen);
		if (dist < best_dist) {
			best_dist = dist;
			best = *known;
		}
	}
	return best_dist <= (len >= 12 ? 3u : len >= 6 ? 2u : 1u) ? best : NULL;
}

/* A key not in known. Inside a secret it is not named: expected must say what fits. */
static int unknown_key(struct parse *p, const yaml_node_t *key, const char *const *known,
		       const char *expected)
{
	const char *near;
	size_t saved;
	int err;

	if (p->secret)
		return fail(p, line_of(key), "unknown key (expected %s)", expected);
	saved = path_push_node(p, key);
	near = nearest(key, known);
	if (near)
		err = fail(p, line_of(key), "unknown key (did you mean '%s'?)", near);
	else if (expected)
		err = fail(p, line_of(key), "unknown key (expected %s)", expected);
	else
		err = fail(p, line_of(key), "unknown key");
	path_pop(p, saved);
	return err;
}

/* A required field the object at line did not have. */
static int missing(struct parse *p, unsigned line, const char *field)
{
	size_t saved = path_push_word(p, field);
	int err = fail(p, line, "required");

	path_pop(p, saved);
	return err;
}

/* Loops over the pairs of a mapping check_mapping() accepted: a key not in keys ends
 * the parse with unknown_key(), the others reach the loop's body. */
#define FOR_EACH_FIELD(p, n, keys, expected, key, value, i)                        \
	for (i = 0; i < map_len(n); i++)                                            \
		if (pair_at(p, n, i, &key, &value), !in_list(key, keys))            \
			return unknown_key(p, key, keys, expected);                 \
		else

/* ---- values ---- */

/* The scalar's text as a new string; a NUL inside is refused (it would cut it). */
static int copy_scalar(struct parse *p, const yaml_node_t *n, char **out)
{
	size_t len = n->data.scalar.length;
	char *s;

	if (memchr(n->data.scalar.value, '\0', len))
		return fail(p, line_of(n), "contains a NUL character");
	s = malloc(len + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, n->data.scalar.value, len);
	s[len] = '\0';
	free(*out);
	*out = s;
	return 0;
}

static int take_string(struct parse *p, const yaml_node_t *n, char **out)
{
	if (!is_value(n))
		return fail(p, line_of(n), "expected a string, got %s", shape(n));
	return copy_scalar(p, n, out);
}

static int take_nonempty(struct parse *p, const yaml_node_t *n, char **out)
{
	if (is_value(n) && n->data.scalar.length == 0)
		return fail(p, line_of(n), "must not be empty");
	return take_string(p, n, out);
}

/* One of words (indexed by the enum's value; NULL entries are not allowed), in any
 * ASCII case when fold_case. */
static int take_enum(struct parse *p, const yaml_node_t *n, const char *what,
		     const char *const *words, size_t count, bool fold_case,
		     const char *expected, int *out)
{
	char text[QUOTE_MAX + 4];
	size_t i;

	if (!is_value(n))
		return fail(p, line_of(n), "expected a string, got %s", shape(n));
	for (i = 0; i < count; i++) {
		if (words[i] && scalar_matches(n, words[i], fold_case)) {
			*out = (int)i;
			return 0;
		}
	}
	return fail(p, line_of(n), "unknown %s '%s' (expected %s)", what,
		    printable(scalar(n), n->data.scalar.length, text, QUOTE_MAX), expected);
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Decimal digits only; -ERANGE past max. */
static int parse_uint(const char *s, size_t len, int64_t max, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (len == 0)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -EINVAL;
		if (v > (max - (s[i] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* A whole number from min to max (min >= 0). */
static int take_count(struct parse *p, const yaml_node_t *n, long min, long max, long *out)
{
	char text[QUOTE_MAX + 4];
	int64_t v = 0;

	if (!is_value(n))
		return fail(p, line_of(n), "expected a whole number, got %s", shape(n));
	if (parse_uint(scalar(n), n->data.scalar.length, max, &v) || v < min)
		return fail(p, line_of(n), "'%s' is not a whole number from %ld to %ld",
			    printable(scalar(n), n->data.scalar.length, text, QUOTE_MAX), min, max);
	*out = (long)v;
	return 0;
}

/* ISO 8601 duration: PnW or P[nD][T[nH][nM][n[.f]S]], case-insensitive, in seconds;
 * a fraction of a second rounds up. -EDOM for years or months (no fixed length),
 * -ERANGE when too large, -EINVAL otherwise. */
static int parse_duration(const char *s, size_t len, int64_t *out)
{
	static const int64_t seconds[] = { 604800, 86400, 3600, 60, 1 }; /* W D H M S */
	int64_t total = 0;
	bool in_time = false, any = false;
	int last_rank = -1;
	size_t i = 1;

	if (len < 2 || (s[0] != 'P' && s[0] != 'p'))
		return -EINVAL;
	while (i < len) {
		int64_t num = 0;
		size_t digits = 0, frac_digits = 0;
		bool frac_nonzero = false;
		char unit;
		int rank;

		if (s[i] == 'T' || s[i] == 't') {
			if (in_time || ++i == len)
				return -EINVAL;
			in_time = true;
			continue;
		}
		for (; i < len && is_digit(s[i]); i++, digits++) {
			if (num > (INT64_MAX - 9) / 10)
				return -ERANGE;
			num = num * 10 + (s[i] - '0');
		}
		if (i < len && (s[i] == '.' || s[i] == ',')) {
			for (i++; i < len && is_digit(s[i]); i++, frac_digits++)
				frac_nonzero |= s[i] != '0';
			if (!frac_digits)
				return -EINVAL;
		}
		if (!digits || i == len)
			return -EINVAL;
		unit = ascii_lower(s[i++]);
		if (!in_time && (unit == 'y' || unit == 'm'))
			return -EDOM;
		if (!in_time && unit == 'w')
			rank = 0;
		else if (!in_time && unit == 'd')
			rank = 1;
		else if (in_time && unit == 'h')
			rank = 2;
		else if (in_time && unit == 'm')
			rank = 3;
		else if (in_time && unit == 's')
			rank = 4;
		else
			return -EINVAL;
		if (rank <= last_rank || (frac_digits && unit != 's'))
			return -EINVAL;
		last_rank = rank;
		if (num > INT64_MAX / seconds[rank] || total > INT64_MAX - num * seconds[rank] - 1)
			return -ERANGE;
		total += num * seconds[rank] + (frac_nonzero ? 1 : 0);
		any = true;
	}
	if (!any)
		return -EINVAL;
	*out = total;
	return 0;
}

/* A timeout: whole seconds, or an ISO 8601 duration such as PT1H30M. */
static int take_timeout(struct parse *p, const yaml_node_t *n, int64_t *out)
{
	char text[QUOTE_MAX + 4];
	const char *s;
	size_t len;
	int err;

	if (!is_value(n))
		return fail(p, line_of(n),
			    "expected a number of seconds or an ISO 8601 duration, got %s",
			    shape(n));
	s = scalar(n);
	len = n->data.scalar.length;
	printable(s, len, text, QUOTE_MAX);
	if (len && is_digit(s[0]))
		err = parse_uint(s, len, INT64_MAX, out);
	else
		err = parse_duration(s, len, out);
	if (err == -EDOM)
		return fail(p, line_of(n),
			    "'%s': months and years have no fixed length (use days, like P30D)",
			    text);
	if (err == -ERANGE)
		return fail(p, line_of(n), "'%s' is too large", text);
	if (err)
		return fail(p, line_of(n),
			    "'%s' is not a number of seconds or an ISO 8601 duration (like PT1H30M)",
			    text);
	if (*out == 0)
		return fail(p, line_of(n), "must be more than 0 seconds");
	return 0;
}

bool job_name_valid(const char *s, size_t len, bool leading_digit)
{
	if (len == 0 || len > JOB_NAME_MAX || (!leading_digit && is_digit(s[0])))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!(is_digit(c) || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return false;
	}
	return true;
}

/* Input and output names: [A-Za-z_][A-Za-z0-9_]* (they appear in ${{...}}). */
static bool valid_name(const yaml_node_t *key, bool leading_digit)
{
	return job_name_valid(scalar(key), key->data.scalar.length, leading_digit);
}

/* ---- placeholders: ${{inputs.NAME}}, ${{outputs.NAME}} ---- */

struct placeholder {
	size_t start, end; /* s[start..end) is "${{ ... }}" */
	const char *expr;  /* the inside, spaces trimmed */
	size_t expr_len;
};

/* The next placeholder at or after from: 1, 0 when none, -EINVAL when "${{" at
 * ph->start is never closed. */
static int next_placeholder(const char *s, size_t from, struct placeholder *ph)
{
	const char *open = strstr(s + from, "${{"), *close;

	if (!open)
		return 0;
	ph->start = (size_t)(open - s);
	close = strstr(open + 3, "}}");
	if (!close)
		return -EINVAL;
	ph->end = (size_t)(close + 2 - s);
	ph->expr = open + 3;
	ph->expr_len = (size_t)(close - ph->expr);
	while (ph->expr_len && (ph->expr[0] == ' ' || ph->expr[0] == '\t')) {
		ph->expr++;
		ph->expr_len--;
	}
	while (ph->expr_len && (ph->expr[ph->expr_len - 1] == ' ' ||
				ph->expr[ph->expr_len - 1] == '\t'))
		ph->expr_len--;
	return 1;
}

/* 1-based position, in UTF-8 characters, of byte pos of s: for messages. */
static size_t char_number(const char *s, size_t pos)
{
	size_t i, n = 1;

	for (i = 0; i < pos; i++)
		n += ((unsigned char)s[i] & 0xc0) != 0x80;
	return n;
}

static bool has_prefix(const char *s, size_t len, const char *prefix, size_t *plen)
{
	*plen = strlen(prefix);
	return len >= *plen && memcmp(s, prefix, *plen) == 0;
}

static bool name_is(const char *name, const char *s, size_t len)
{
	return strlen(name) == len && memcmp(name, s, len) == 0;
}

/* Which input (*is_output false) or output the placeholder names: 0, -ENOENT when
 * none is declared so, -EINVAL when it is not inputs./outputs. at all. */
static int find_ref(const struct job *job, const struct placeholder *ph, bool *is_output,
		    size_t *which)
{
	size_t plen, i;

	if (has_prefix(ph->expr, ph->expr_len, "inputs.", &plen)) {
		*is_output = false;
		for (i = 0; i < job->ninputs; i++) {
			if (name_is(job->inputs[i].name, ph->expr + plen, ph->expr_len - plen)) {
				*which = i;
				return 0;
			}
		}
		return -ENOENT;
	}
	if (has_prefix(ph->expr, ph->expr_len, "outputs.", &plen)) {
		*is_output = true;
		for (i = 0; i < job->noutputs; i++) {
			if (name_is(job->outputs[i].name, ph->expr + plen, ph->expr_len - plen)) {
				*which = i;
				return 0;
			}
		}
		return -ENOENT;
	}
	return -EINVAL;
}

/* Every placeholder in cmd (the field at line, on the path) must name a declared
 * input or output. */
static int check_placeholders(struct parse *p, const struct job *job, const char *cmd,
			      unsigned line)
{
	struct placeholder ph = { 0 };
	char text[QUOTE_MAX + 4];
	size_t pos = 0, which;
	bool is_output;
	int found, err = 0;

	while ((found = next_placeholder(cmd, pos, &ph)) > 0) {
		printable(cmd + ph.start, ph.end - ph.start, text, QUOTE_MAX);
		err = find_ref(job, &ph, &is_output, &which);
		if (err == -ENOENT) {
			err = fail(p, line, "%s is not declared in %s", text,
				   is_output ? "outputs" : "inputs");
			break;
		}
		if (err) {
			err = fail(p, line,
				   "%s: unsupported expression (expected ${{inputs.NAME}} or "
				   "${{outputs.NAME}})", text);
			break;
		}
		pos = ph.end;
	}
	if (found < 0)
		err = fail(p, line, "'${{' at character %zu has no closing '}}'",
			   char_number(cmd, ph.start));
	return err;
}

/* ---- Azure ML command jobs ---- */

static const char *const data_type_names[] = {
	[JOB_LITERAL] = "literal",
	[JOB_URI_FOLDER] = "uri_folder",
	[JOB_URI_FILE] = "uri_file",
};
static const char *const uri_type_words[] = {
	[JOB_LITERAL] = NULL,
	[JOB_URI_FOLDER] = "uri_folder",
	[JOB_URI_FILE] = "uri_file",
};
static const char *const input_mode_names[] = {
	[JOB_RO_MOUNT] = "ro_mount",
	[JOB_DOWNLOAD] = "download",
	[JOB_DIRECT] = "direct",
};
static const char *const output_mode_names[] = {
	[JOB_RW_MOUNT] = "rw_mount",
	[JOB_UPLOAD] = "upload",
};

static int parse_input(struct parse *p, struct job_input *in, const yaml_node_t *n,
		       unsigned name_line)
{
	static const char *const keys[] = { "type", "path", "mode", NULL };
	size_t i;
	int err;

	in->mode = JOB_RO_MOUNT;
	if (is_value(n)) {
		in->type = JOB_LITERAL;
		return copy_scalar(p, n, &in->value);
	}
	if (n->type != YAML_MAPPING_NODE)
		return fail(p, line_of(n),
			    "expected a value or a mapping with type, path and mode, got %s",
			    shape(n));
	err = check_mapping(p, n, FIELDS_MAX, "a mapping");
	if (err)
		return err;
	in->type = JOB_URI_FOLDER;
	for (i = 0; i < map_len(n); i++) {
		yaml_node_t *key, *value;
		size_t saved;
		int choice = 0;

		pair_at(p, n, i, &key, &value);
		if (!in_list(key, keys))
			return unknown_key(p, key, keys, "type, path or mode");
		saved = path_push_node(p, key);
		if (scalar_is(key, "type")) {
			err = take_enum(p, value, "type", uri_type_words, 3, false,
					"uri_folder or uri_file", &choice);
			in->type = (enum job_data_type)choice;
		} else if (scalar_is(key, "path")) {
			err = take_nonempty(p, value, &in->path);
		} else {
			err = take_enum(p, value, "mode", input_mode_names, 3, false,
					"ro_mount, download or direct", &choice);
			in->mode = (enum job_input_mode)choice;
		}
		path_pop(p, saved);
		if (err)
			return err;
	}
	if (!in->path) {
		size_t saved = path_push_word(p, "path");

		err = fail(p, name_line, "required for a %s input", data_type_names[in->type]);
		path_pop(p, saved);
	}
	return err;
}

static int parse_output(struct parse *p, struct job_output *o, const yaml_node_t *n)
{
	static const char *const keys[] = { "type", "mode", "path", NULL };
	size_t i;
	int err;

	o->type = JOB_URI_FOLDER;
	o->mode = JOB_RW_MOUNT;
	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return fail(p, line_of(n),
			    "expected a mapping with type, mode and path, or nothing, got %s",
			    shape(n));
	err = check_mapping(p, n, FIELDS_MAX, "a mapping");
	if (err)
		return err;
	for (i = 0; i < map_len(n); i++) {
		yaml_node_t *key, *value;
		size_t saved;
		int choice = 0;

		pair_at(p, n, i, &key, &value);
		if (!in_list(key, keys))
			return unknown_key(p, key, keys, "type, mode or path");
		saved = path_push_node(p, key);
		if (scalar_is(key, "type")) {
			err = take_enum(p, value, "type", uri_type_words, 3, false,
					"uri_folder or uri_file", &choice);
			o->type = (enum job_data_type)choice;
		} else if (scalar_is(key, "mode")) {
			err = take_enum(p, value, "mode", output_mode_names, 2, false,
					"rw_mount or upload", &choice);
			o->mode = (enum job_output_mode)choice;
		} else {
			err = take_nonempty(p, value, &o->path);
		}
		path_pop(p, saved);
		if (err)
			return err;
	}
	return 0;
}

static int bad_name(struct parse *p, const yaml_node_t *key)
{
	return fail(p, line_of(key),
		    "not a valid name (letters, digits and '_', not starting with a digit)");
}

static int parse_inputs(struct parse *p, struct job *job, const yaml_node_t *n)
{
	size_t i, count;
	int err;

	if (is_null(n))
		return 0;
	err = check_mapping(p, n, JOB_ITEMS_MAX, "a mapping of input names to inputs");
	if (err)
		return err;
	count = map_len(n);
	job->inputs = calloc(count ? count : 1, sizeof(*job->inputs));
	if (!job->inputs)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		struct job_input *in = &job->inputs[job->ninputs++];
		yaml_node_t *key, *value;
		size_t saved;

		pair_at(p, n, i, &key, &value);
		saved = path_push_node(p, key);
		in->line = line_of(key);
		err = valid_name(key, false) ? copy_scalar(p, key, &in->name) : bad_name(p, key);
		if (!err)
			err = parse_input(p, in, value, line_of(key));
		path_pop(p, saved);
		if (err)
			return err;
	}
	return 0;
}

static int parse_outputs(struct parse *p, struct job *job, const yaml_node_t *n)
{
	size_t i, count;
	int err;

	if (is_null(n))
		return 0;
	err = check_mapping(p, n, JOB_ITEMS_MAX, "a mapping of output names to outputs");
	if (err)
		return err;
	count = map_len(n);
	job->outputs = calloc(count ? count : 1, sizeof(*job->outputs));
	if (!job->outputs)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		struct job_output *o = &job->outputs[job->noutputs++];
		yaml_node_t *key, *value;
		size_t saved;

		pair_at(p, n, i, &key, &value);
		saved = path_push_node(p, key);
		o->line = line_of(key);
		err = valid_name(key, false) ? copy_scalar(p, key, &o->name) : bad_name(p, key);
		if (!err)
			err = parse_output(p, o, value);
		path_pop(p, saved);
		if (err)
			return err;
	}
	return 0;
}

/* Appends room for count more pairs to *arr (zeroed). */
static int grow_kv(struct job_kv **arr, size_t used, size_t count)
{
	struct job_kv *grown;

	if (count == 0)
		return 0;
	grown = realloc(*arr, (used + count) * sizeof(**arr));
	if (!grown)
		return -ENOMEM;
	memset(grown + used, 0, count * sizeof(*grown));
	*arr = grown;
	return 0;
}

/* name: value pairs. Environment variable names must not be empty or hold '='; a tag
 * may have no value (""). */
static int parse_kv_map(struct parse *p, const yaml_node_t *n, bool is_env, struct job_kv **arr,
			size_t *used)
{
	size_t i, count;
	int err;

	if (is_null(n))
		return 0;
	err = check_mapping(p, n, JOB_ITEMS_MAX, "a mapping of names to values");
	if (err)
		return err;
	count = map_len(n);
	err = grow_kv(arr, *used, count);
	if (err)
		return err;
	for (i = 0; i < count; i++) {
		struct job_kv *kv = &(*arr)[(*used)++];
		yaml_node_t *key, *value;
		size_t saved;

		pair_at(p, n, i, &key, &value);
		saved = path_push_node(p, key);
		if (is_env && (key->data.scalar.length == 0 ||
			       memchr(scalar(key), '=', key->data.scalar.length)))
			err = fail(p, line_of(key), "not a valid variable name");
		else
			err = copy_scalar(p, key, &kv->name);
		if (!err && is_value(value))
			err = copy_scalar(p, value, &kv->value);
		else if (!err && !is_env && is_null(value))
			err = (kv->value = strdup("")) ? 0 : -ENOMEM;
		else if (!err)
			err = fail(p, line_of(value), "expected a string, got %s", shape(value));
		path_pop(p, saved);
		if (err)
			return err;
	}
	return 0;
}

static int parse_limits(struct parse *p, struct job *job, const yaml_node_t *n)
{
	static const char *const keys[] = { "timeout", NULL };
	size_t i;
	int err;

	if (is_null(n))
		return 0;
	err = check_mapping(p, n, FIELDS_MAX, "a mapping");
	if (err)
		return err;
	for (i = 0; i < map_len(n); i++) {
		yaml_node_t *key, *value;
		size_t saved;

		pair_at(p, n, i, &key, &value);
		if (!in_list(key, keys))
			return unknown_key(p, key, keys, "timeout");
		saved = path_push_node(p, key);
		err = take_timeout(p, value, &job->timeout);
		path_pop(p, saved);
		if (err)
			return err;
	}
	return 0;
}

/* resources: only instance_count matters to ferry run; the rest is accepted, not kept. */
static int parse_resources(struct parse *p, struct job *job, const yaml_node_t *n)
{
	static const char *const keys[] = { "instance_count", "instance_type", "shm_size",
					    "properties", "docker_args", "locations",
					    "max_instance_count", NULL };
	yaml_node_t *key, *value;
	size_t i, saved;
	int err;

	if (is_null(n))
		return 0;
	err = check_mapping(p, n, FIELDS_MAX, "a mapping");
	if (err)
		return err;
	FOR_EACH_FIELD(p, n, keys, "instance_count, instance_type, shm_size, properties, "
		       "docker_args, locations or max_instance_count", key, value, i) {
		if (!scalar_is(key, "instance_count"))
			continue;
		saved = path_push_node(p, key);
		err = take_count(p, value, 1, JOB_NODES_MAX, &job->dist.node_count);
		path_pop(p, saved);
		if (err)
			return err;
	}
	return 0;
}

static const char *const dist_type_words[] = {
	[JOB_DIST_NONE] = NULL,
	[JOB_DIST_PYTORCH] = "pytorch",
	[JOB_DIST_MPI] = "mpi",
	[JOB_DIST_TENSORFLOW] = "tensorflow",
};

/* distribution.type, in any case as Azure ML takes it; ray is refused by name. */
static int take_dist_type(struct parse *p, const yaml_node_t *n, int *out)
{
	char text[QUOTE_MAX + 4];
	size_t saved = path_push_word(p, "type");
	int err;

	if (scalar_matches(n, "ray", true))
		err = fail(p, line_of(n),
			   "'%s' is not supported by ferry run (expected pytorch, mpi or tensorflow)",
			   printable(scalar(n), n->data.scalar.length, text, QUOTE_MAX));
	else
		err = take_enum(p, n, "type", dist_type_words, 4, true,
				"pytorch, mpi or tensorflow", out);
	path_pop(p, saved);
	return err;
}

/* distribution: {type, process_count_per_instance} for pytorch and mpi, {type,
 * worker_count, parameter_server_count} for tensorflow. */
static int parse_distribution(struct parse *p, struct job *job, const yaml_node_t *n)
{
	static const char *const keys[] = { "type", "process_count_per_instance", "worker_count",
					    "parameter_server_count", NULL };
	struct job_dist *dist = &job->dist;
	const yaml_node_t *type;
	yaml_node_t *key, *value;
	size_t i, saved;
	int err, choice = JOB_DIST_NONE;
	bool tensorflow;

	if (is_null(n))
		return 0;
	err = check_mapping(p, n, FIELDS_MAX, "a mapping with type");
	if (err)
		return err;
	type = map_get(p, n, "type");
	if (!type)
		return missing(p, line_of(n), "type");
	err = take_dist_type(p, type, &choice);
	if (err)
		return err;
	dist->type = (enum job_dist_type)choice;
	tensorflow = dist->type == JOB_DIST_TENSORFLOW;
	FOR_EACH_FIELD(p, n, keys, "type, process_count_per_instance, worker_count or "
		       "parameter_server_count", key, value, i) {
		if (scalar_is(key, "type"))
			continue;
		saved = path_push_node(p, key);
		if (tensorflow == scalar_is(key, "process_count_per_instance"))
			err = fail(p, line_of(key), "not a field of a %s distribution (expected %s)",
				   dist_type_words[dist->type],
				   tensorflow ? "worker_count or parameter_server_count"
					      : "process_count_per_instance");
		else if (scalar_is(key, "process_count_per_instance"))
			err = take_count(p, value, 1, JOB_PROCESSES_MAX, &dist->process_count);
		else if (scalar_is(key, "worker_count"))
			err = take_count(p, value, 1, JOB_NODES_MAX, &dist->worker_count);
		else
			err = take_count(p, value, 0, JOB_NODES_MAX, &dist->parameter_server_count);
		path_pop(p, saved);
		if (err)
			return err;
	}
	return 0;
}

static const char *const azureml_keys[] = {
	"$schema", "type", "name", "command", "code", "inputs", "outputs",
	"environment_variables", "limits", "experiment_name", "display_name", "description",
	"tags", "environment", "compute", "resources", "distribution", NULL,
};

/* Keys of commandJob.schema.json that ferry run does not do. */
static const char *const azureml_unsupported[] = {
	"identity", "services", "queue_settings", "properties", "component",
	"parent_job_name", "is_deterministic", "priority", "notification_setting", NULL,
};

static int parse_azureml(struct parse *p, struct job *job, const yaml_node_t *root)
{
	unsigned command_line = line_of(root);
	size_t i, saved;
	int err;

	job->kind = JOB_AZUREML;
	err = check_mapping(p, root, FIELDS_MAX, "a mapping (a command job)");
	if (err)
		return err;
	for (i = 0; i < map_len(root); i++) {
		yaml_node_t *key, *value;
		char text[QUOTE_MAX + 4];

		pair_at(p, root, i, &key, &value);
		if (in_list(key, azureml_unsupported)) {
			saved = path_push_node(p, key);
			err = fail(p, line_of(key), "not supported by ferry run");
			path_pop(p, saved);
			return err;
		}
		if (!in_list(key, azureml_keys))
			return unknown_key(p, key, azureml_keys, NULL);
		saved = path_push_node(p, key);
		if (scalar_is(key, "$schema")) {
			err = 0;
		} else if (scalar_is(key, "type")) {
			if (!is_value(value))
				err = fail(p, line_of(value), "expected a string, got %s", shape(value));
			else if (!scalar_is(value, "command"))
				err = fail(p, line_of(value),
					   "unsupported job type '%s' (ferry runs command jobs)",
					   printable(scalar(value), value->data.scalar.length, text,
						     QUOTE_MAX));
		} else if (scalar_is(key, "command")) {
			command_line = line_of(value);
			err = take_nonempty(p, value, &job->command);
		} else if (scalar_is(key, "code")) {
			err = take_nonempty(p, value, &job->code);
		} else if (scalar_is(key, "name")) {
			err = take_string(p, value, &job->name);
		} else if (scalar_is(key, "experiment_name")) {
			err = take_string(p, value, &job->experiment_name);
		} else if (scalar_is(key, "display_name")) {
			err = take_string(p, value, &job->display_name);
		} else if (scalar_is(key, "description")) {
			err = take_string(p, value, &job->description);
		} else if (scalar_is(key, "compute")) {
			err = take_string(p, value, &job->compute);
		} else if (scalar_is(key, "environment")) {
			/* An inline environment (image, conda_file...) is accepted, not kept. */
			if (value->type != YAML_MAPPING_NODE)
				err = take_string(p, value, &job->environment);
		} else if (scalar_is(key, "inputs")) {
			err = parse_inputs(p, job, value);
		} else if (scalar_is(key, "outputs")) {
			err = parse_outputs(p, job, value);
		} else if (scalar_is(key, "environment_variables")) {
			err = parse_kv_map(p, value, true, &job->env, &job->nenv);
		} else if (scalar_is(key, "tags")) {
			err = parse_kv_map(p, value, false, &job->tags, &job->ntags);
		} else if (scalar_is(key, "resources")) {
			err = parse_resources(p, job, value);
		} else if (scalar_is(key, "distribution")) {
			err = parse_distribution(p, job, value);
		} else {
			err = parse_limits(p, job, value);
		}
		path_pop(p, saved);
		if (err)
			return err;
	}
	if (!job->command)
		return missing(p, line_of(root), "command");
	if (job->dist.type == JOB_DIST_TENSORFLOW && !job->dist.worker_count)
		job->dist.worker_count = job->dist.node_count;
	saved = path_push_word(p, "command");
	err = check_placeholders(p, job, job->command, command_line);
	path_pop(p, saved);
	return err;
}

/* ---- Batch AI jobs ---- */

/* Keys only a Batch AI job has: their presence picks the format. */
static const char *const batchai_markers[] = {
	"customToolkitSettings", "inputDirectories", "outputDirectories", "stdOutErrPathPrefix",
	"mountVolumes", "nodeCount", "jobPreparation", "cluster", "containerSettings",
	"environmentVariables", "tensorFlowSettings", "pyTorchSettings", "caffeSettings",
	"caffe2Settings", "chainerSettings", "cntkSettings", "horovodSettings",
	"customMpiSettings", NULL,
};

/* Toolkits ferry run does not do. */
static const char *const batchai_unsupported[] = {
	"caffeSettings", "caffe2Settings", "chainerSettings", "cntkSettings", NULL,
};

static const char *const batchai_keys[] = {
	"customToolkitSettings", "customMpiSettings", "horovodSettings", "pyTorchSettings",
	"tensorFlowSettings", "jobPreparation", "inputDirectories", "outputDirectories",
	"stdOutErrPathPrefix", "mountVolumes", "environmentVariables", "secrets", "nodeCount",
	"containerSettings", "experimentName", "constraints",
	/* accepted, ignored */
	"cluster", "priority", "schedulingPriority",
	/* read-only, in `az batchai job show` output */
	"provisioningState", "provisioningStateTransitionTime", "executionState",
	"executionStateTransitionTime", "creationTime", "executionInfo",
	"jobOutputDirectoryPathSegment", "toolType", NULL,
};

static bool has_marker(struct parse *p, const yaml_node_t *n)
{
	const char *const *marker;

	for (marker = batchai_markers; *marker; marker++)
		if (map_get(p, n, *marker))
			return true;
	return false;
}

/* {commandLine: ...}, the command required. */
static int parse_command_line(struct parse *p, const yaml_node_t *n, char **out)
{
	static const char *const keys[] = { "commandLine", NULL };
	yaml_node_t *key, *value;
	size_t i, saved;
	int err = check_mapping(p, n, FIELDS_MAX, "a mapping with commandLine");

	if (err)
		return err;
	FOR_EACH_FIELD(p, n, keys, "commandLine", key, value, i) {
		saved = path_push_node(p, key);
		err = take_nonempty(p, value, out);
		path_pop(p, saved);
		if (err)
			return err;
	}
	if (!*out)
		return missing(p, line_of(n), "commandLine");
	return 0;
}

static int take_id(struct parse *p, const yaml_node_t *n, char **out)
{
	if (is_value(n) && !valid_name(n, true))
		return fail(p, line_of(n), "not a valid id (letters, digits and '_')");
	return take_string(p, n, out);
}

static int parse_input_dirs(struct parse *p, struct job *job, const yaml_node_t *n)
{
	static const char *const keys[] = { "id", "path", NULL };
	struct job_batchai *b = &job->batchai;
	size_t i, j;
	int err;

	if (is_null(n))
		return 0;
	err = check_list(p, n, "a list of {id, path}");
	if (err)
		return err;
	b->inputs = calloc(seq_len(n) ? seq_len(n) : 1, sizeof(*b->inputs));
	if (!b->inputs)
		return -ENOMEM;
	for (i = 0; i < seq_len(n); i++) {
		struct job_batchai_input *in = &b->inputs[b->ninputs++];
		yaml_node_t *item = item_at(p, n, i), *key, *value;
		size_t saved = path_push_index(p, i), inner, k;

		in->line = line_of(item);
		err = check_mapping(p, item, FIELDS_MAX, "a mapping with id and path");
		if (err)
			return err;
		FOR_EACH_FIELD(p, item, keys, "id or path", key, value, k) {
			inner = path_push_node(p, key);
			if (scalar_is(key, "id"))
				err = take_id(p, value, &in->id);
			else
				err = take_nonempty(p, value, &in->path);
			path_pop(p, inner);
			if (err)
				return err;
		}
		if (!in->id)
			return missing(p, in->line, "id");
		if (!in->path)
			return missing(p, in->line, "path");
		for (j = 0; j + 1 < b->ninputs; j++)
			if (strcmp(b->inputs[j].id, in->id) == 0)
				return fail(p, in->line, "id %s is also used by inputDirectories[%zu]",
					    in->id, j);
		path_pop(p, saved);
	}
	return 0;
}

static int parse_output_dirs(struct parse *p, struct job *job, const yaml_node_t *n)
{
	static const char *const keys[] = { "id", "pathPrefix", "pathSuffix", "type",
					    "createNew", NULL };
	struct job_batchai *b = &job->batchai;
	size_t i, j;
	int err;

	if (is_null(n))
		return 0;
	err = check_list(p, n, "a list of {id, pathPrefix, pathSuffix}");
	if (err)
		return err;
	b->outputs = calloc(seq_len(n) ? seq_len(n) : 1, sizeof(*b->outputs));
	if (!b->outputs)
		return -ENOMEM;
	for (i = 0; i < seq_len(n); i++) {
		struct job_batchai_output *o = &b->outputs[b->noutputs++];
		yaml_node_t *item = item_at(p, n, i), *key, *value;
		size_t saved = path_push_index(p, i), inner, k;

		o->line = line_of(item);
		err = check_mapping(p, item, FIELDS_MAX, "a mapping with id and pathPrefix");
		if (err)
			return err;
		FOR_EACH_FIELD(p, item, keys, "id, pathPrefix or pathSuffix", key, value, k) {
			inner = path_push_node(p, key);
			if (scalar_is(key, "id"))
				err = take_id(p, value, &o->id);
			else if (scalar_is(key, "pathPrefix"))
				err = take_nonempty(p, value, &o->path_prefix);
			else if (scalar_is(key, "pathSuffix"))
				err = take_string(p, value, &o->path_suffix);
			/* type and createNew (2017-09 API) are accepted and ignored. */
			path_pop(p, inner);
			if (err)
				return err;
		}
		if (!o->id)
			return missing(p, o->line, "id");
		if (!o->path_prefix)
			return missing(p, o->line, "pathPrefix");
		for (j = 0; j + 1 < b->noutputs; j++)
			if (strcmp(b->outputs[j].id, o->id) == 0)
				return fail(p, o->line, "id %s is also used by outputDirectories[%zu]",
					    o->id, j);
		path_pop(p, saved);
	}
	return 0;
}

/* A secret string: overwritten before it is freed or replaced. */
static int take_secret(struct parse *p, const yaml_node_t *n, char **out)
{
	char *old = *out;
	int err;

	*out = NULL;
	err = take_nonempty(p, n, out);
	if (old) {
		OPENSSL_cleanse(old, strlen(old));
		free(old);
	}
	return err;
}

static int parse_vault_ref(struct parse *p, struct job_mount *m, const yaml_node_t *n)
{
	static const char *const keys[] = { "secretUrl", "sourceVault", NULL };
	static const char *const vault_keys[] = { "id", NULL };
	yaml_node_t *key, *value, *vkey, *vvalue;
	size_t i, j, saved;
	int err = check_mapping(p, n, FIELDS_MAX, "a mapping with secretUrl and sourceVault");

	if (err)
		return err;
	FOR_EACH_FIELD(p, n, keys, "secretUrl or sourceVault", key, value, i) {
		saved = path_push_node(p, key);
		if (scalar_is(key, "secretUrl")) {
			err = take_nonempty(p, value, &m->key_secret_url);
		} else {
			err = check_mapping(p, value, FIELDS_MAX, "a mapping with id");
			if (err)
				return err;
			FOR_EACH_FIELD(p, value, vault_keys, "id", vkey, vvalue, j) {
				size_t inner = path_push_node(p, vkey);

				err = take_nonempty(p, vvalue, &m->key_vault_id);
				path_pop(p, inner);
				if (err)
					return err;
			}
			if (!m->key_vault_id)
				err = missing(p, line_of(value), "id");
		}
		path_pop(p, saved);
		if (err)
			return err;
	}
	if (!m->key_secret_url)
		return missing(p, line_of(n), "secretUrl");
	if (!m->key_vault_id)
		return missing(p, line_of(n), "sourceVault");
	return 0;
}

/* credentials: {accountKey} or {accountKeySecretReference}. Nothing from inside is
 * ever quoted in a message. */
static int parse_credentials(struct parse *p, struct job_mount *m, const yaml_node_t *n)
{
	static const char *const keys[] = { "accountKey", "accountKeySecretReference", NULL };
	yaml_node_t *key, *value;
	bool was_secret = p->secret, has_ref = false;
	size_t i, saved;
	int err;

	p->secret = true;
	err = check_mapping(p, n, FIELDS_MAX,
			    "a mapping with accountKey or accountKeySecretReference");
	if (err)
		goto out;
	for (i = 0; i < map_len(n); i++) {
		pair_at(p, n, i, &key, &value);
		if (!in_list(key, keys)) {
			err = unknown_key(p, key, keys, "accountKey or accountKeySecretReference");
			goto out;
		}
		saved = path_push_node(p, key);
		if (scalar_is(key, "accountKey")) {
			err = take_secret(p, value, &m->account_key);
		} else {
			has_ref = true;
			err = parse_vault_ref(p, m, value);
		}
		path_pop(p, saved);
		if (err)
			goto out;
	}
	if (m->account_key && has_ref)
		err = fail(p, line_of(n),
			   "give accountKey or accountKeySecretReference, not both");
	else if (!m->account_key && !has_ref)
		err = fail(p, line_of(n), "accountKey or accountKeySecretReference required");
out:
	p->secret = was_secret;
	return err;
}

/* relativeMountPath: under $AZ_BATCHAI_JOB_MOUNT_ROOT, so relative and without "..". */
static bool safe_relative(const char *s)
{
	const char *seg = s;

	if (!*s || *s == '/')
		return false;
	while (seg) {
		const char *slash = strchr(seg, '/');
		size_t len = slash ? (size_t)(slash - seg) : strlen(seg);

		if (len == 2 && seg[0] == '.' && seg[1] == '.')
			return false;
		seg = slash ? slash + 1 : NULL;
	}
	return true;
}

static int parse_mount(struct parse *p, struct job *job, struct job_mount *m,
		       const yaml_node_t *n)
{
	static const char *const blob_keys[] = { "accountName", "containerName",
						  "relativeMountPath", "mountOptions",
						  "credentials", NULL };
	static const char *const files_keys[] = { "accountName", "azureFileUrl",
						   "relativeMountPath", "directoryMode",
						   "fileMode", "credentials", NULL };
	bool blob = m->kind == JOB_MOUNT_BLOB, has_credentials = false;
	const char *const *keys = blob ? blob_keys : files_keys;
	yaml_node_t *key, *value;
	size_t i, j, saved;
	int err;

	m->line = line_of(n);
	err = check_mapping(p, n, FIELDS_MAX, "a mapping");
	if (err)
		return err;
	FOR_EACH_FIELD(p, n, keys,
		       blob ? "accountName, containerName, relativeMountPath, mountOptions or credentials"
			    : "accountName, azureFileUrl, relativeMountPath, directoryMode, fileMode or credentials",
		       key, value, i) {
		saved = path_push_node(p, key);
		if (scalar_is(key, "accountName"))
			err = take_nonempty(p, value, &m->account_name);
		else if (scalar_is(key, "containerName"))
			err = take_nonempty(p, value, &m->container_name);
		else if (scalar_is(key, "azureFileUrl"))
			err = take_nonempty(p, value, &m->azure_file_url);
		else if (scalar_is(key, "relativeMountPath"))
			err = take_nonempty(p, value, &m->relative_mount_path);
		else if (scalar_is(key, "mountOptions"))
			err = take_string(p, value, &m->mount_options);
		else if (scalar_is(key, "credentials")) {
			has_credentials = true;
			err = parse_credentials(p, m, value);
		}
		/* directoryMode and fileMode are accepted and ignored. */
		if (!err && scalar_is(key, "relativeMountPath") &&
		    !safe_relative(m->relative_mount_path))
			err = fail(p, line_of(value), "must be a relative path without '..'");
		path_pop(p, saved);
		if (err)
			return err;
	}
	if (!m->account_name)
		return missing(p, m->line, "accountName");
	if (blob && !m->container_name)
		return missing(p, m->line, "containerName");
	if (!blob && !m->azure_file_url)
		return missing(p, m->line, "azureFileUrl");
	if (!m->relative_mount_path)
		return missing(p, m->line, "relativeMountPath");
	if (!has_credentials)
		return missing(p, m->line, "credentials");
	for (j = 0; j + 1 < job->batchai.nmounts; j++)
		if (strcmp(job->batchai.mounts[j].relative_mount_path, m->relative_mount_path) == 0)
			return fail(p, m->line, "relativeMountPath is also used by the mount at line %u",
				    job->batchai.mounts[j].line);
	return 0;
}

static int parse_mount_list(struct parse *p, struct job *job, const yaml_node_t *n,
			    enum job_mount_kind kind)
{
	struct job_batchai *b = &job->batchai;
	struct job_mount *grown;
	size_t i, count;
	int err;

	if (is_null(n))
		return 0;
	err = check_list(p, n, "a list of mounts");
	if (err)
		return err;
	count = seq_len(n);
	if (!count)
		return 0;
	grown = realloc(b->mounts, (b->nmounts + count) * sizeof(*b->mounts));
	if (!grown)
		return -ENOMEM;
	memset(grown + b->nmounts, 0, count * sizeof(*grown));
	b->mounts = grown;
	for (i = 0; i < count; i++) {
		struct job_mount *m = &b->mounts[b->nmounts++];
		size_t saved = path_push_index(p, i);

		m->kind = kind;
		err = parse_mount(p, job, m, item_at(p, n, i));
		if (err)
			return err;
		path_pop(p, saved);
	}
	return 0;
}

static int parse_mount_volumes(struct parse *p, struct job *job, const yaml_node_t *n)
{
	static const char *const keys[] = { "azureBlobFileSystems", "azureFileShares",
					    "fileServers", "unmanagedFileSystems", NULL };
	yaml_node_t *key, *value;
	size_t i, saved;
	int err;

	if (is_null(n))
		return 0;
	err = check_mapping(p, n, FIELDS_MAX, "a mapping");
	if (err)
		return err;
	FOR_EACH_FIELD(p, n, keys, "azureBlobFileSystems or azureFileShares", key, value, i) {
		saved = path_push_node(p, key);
		if (scalar_is(key, "azureBlobFileSystems"))
			err = parse_mount_list(p, job, value, JOB_MOUNT_BLOB);
		else if (scalar_is(key, "azureFileShares"))
			err = parse_mount_list(p, job, value, JOB_MOUNT_FILES);
		else if (!is_null(value) && !(value->type == YAML_SEQUENCE_NODE && !seq_len(value)))
			err = fail(p, line_of(key), "not supported by ferry run");
		path_pop(p, saved);
		if (err)
			return err;
	}
	return 0;
}

/* environmentVariables: [{name, value}]. */
static int parse_env_list(struct parse *p, struct job *job, const yaml_node_t *n)
{
	static const char *const keys[] = { "name", "value", NULL };
	size_t i;
	int err;

	if (is_null(n))
		return 0;
	err = check_list(p, n, "a list of {name, value}");
	if (!err)
		err = grow_kv(&job->env, job->nenv, seq_len(n));
	if (err)
		return err;
	for (i = 0; i < seq_len(n); i++) {
		struct job_kv *kv = &job->env[job->nenv++];
		yaml_node_t *item = item_at(p, n, i), *key, *value;
		size_t saved = path_push_index(p, i), inner, k;

		err = check_mapping(p, item, FIELDS_MAX, "a mapping with name and value");
		if (err)
			return err;
		FOR_EACH_FIELD(p, item, keys, "name or value", key, value, k) {
			inner = path_push_node(p, key);
			if (scalar_is(key, "name"))
				err = take_nonempty(p, value, &kv->name);
			else
				err = take_string(p, value, &kv->value);
			if (!err && scalar_is(key, "name") && strchr(kv->name, '='))
				err = fail(p, line_of(value), "not a valid variable name");
			path_pop(p, inner);
			if (err)
				return err;
		}
		if (!kv->name)
			return missing(p, line_of(item), "name");
		if (!kv->value)
			return missing(p, line_of(item), "value");
		path_pop(p, saved);
	}
	return 0;
}

/* secrets: [{name, value | valueSecretReference}]: the names are kept, the values are
 * never read. */
static int parse_secrets(struct parse *p, struct job *job, const yaml_node_t *n)
{
	static const char *const keys[] = { "name", "value", "valueSecretReference", NULL };
	struct job_batchai *b = &job->batchai;
	bool was_secret = p->secret;
	size_t i;
	int err;

	if (is_null(n))
		return 0;
	err = check_list(p, n, "a list of {name, value}");
	if (err)
		return err;
	b->secret_names = calloc(seq_len(n) ? seq_len(n) : 1, sizeof(*b->secret_names));
	if (!b->secret_names)
		return -ENOMEM;
	p->secret = true;
	for (i = 0; i < seq_len(n) && !err; i++) {
		yaml_node_t *item = item_at(p, n, i), *key, *value;
		size_t saved = path_push_index(p, i), k;
		char **name = &b->secret_names[b->nsecret_names++];

		err = check_mapping(p, item, FIELDS_MAX, "a mapping with name and value");
		for (k = 0; !err && k < map_len(item); k++) {
			pair_at(p, item, k, &key, &value);
			if (!in_list(key, keys)) {
				err = unknown_key(p, key, keys, "name, value or valueSecretReference");
			} else if (scalar_is(key, "name")) {
				size_t inner = path_push_node(p, key);

				err = take_nonempty(p, value, name);
				path_pop(p, inner);
			}
		}
		if (!err && !*name)
			err = missing(p, line_of(item), "name");
		if (!err)
			path_pop(p, saved);
	}
	p->secret = was_secret;
	return err;
}

/* containerSettings: the image is kept; the rest (registry credentials too) is not
 * read. */
static int parse_container(struct parse *p, struct job *job, const yaml_node_t *n)
{
	const yaml_node_t *registry, *image;
	size_t saved;
	int err;

	if (is_null(n))
		return 0;
	if (n->type != YAML_MAPPING_NODE)
		return fail(p, line_of(n), "expected a mapping, got %s", shape(n));
	registry = map_get(p, n, "imageSourceRegistry");
	if (!registry)
		return 0;
	saved = path_push_word(p, "imageSourceRegistry");
	if (registry->type != YAML_MAPPING_NODE) {
		err = fail(p, line_of(registry), "expected a mapping, got %s", shape(registry));
	} else {
		image = map_get(p, registry, "image");
		err = 0;
		if (image) {
			size_t inner = path_push_word(p, "image");

			err = take_nonempty(p, image, &job->batchai.container_image);
			path_pop(p, inner);
		}
	}
	path_pop(p, saved);
	return err;
}

static int parse_constraints(struct parse *p, struct job *job, const yaml_node_t *n)
{
	static const char *const keys[] = { "maxWallClockTime", NULL };
	yaml_node_t *key, *value;
	size_t i, saved;
	int err;

	if (is_null(n))
		return 0;
	err = check_mapping(p, n, FIELDS_MAX, "a mapping");
	if (err)
		return err;
	FOR_EACH_FIELD(p, n, keys, "maxWallClockTime", key, value, i) {
		saved = path_push_node(p, key);
		err = take_timeout(p, value, &job->timeout);
		path_pop(p, saved);
		if (err)
			return err;
	}
	return 0;
}

/* The toolkit settings Batch AI runs; keys[0] is the one required. */
struct toolkit {
	const char *name;
	enum job_dist_type type;
	const char *const *keys;
	const char *expected; /* the keys, for messages */
};

static const char *const custom_keys[] = { "commandLine", NULL };
static const char *const mpi_keys[] = { "commandLine", "processCount", NULL };
static const char *const horovod_keys[] = { "pythonScriptFilePath", "pythonInterpreterPath",
					    "commandLineArgs", "processCount", NULL };
static const char *const pytorch_keys[] = { "pythonScriptFilePath", "pythonInterpreterPath",
					    "commandLineArgs", "processCount",
					    "communicationBackend", NULL };
static const char *const tensorflow_keys[] = {
	"pythonScriptFilePath", "pythonInterpreterPath", "masterCommandLineArgs",
	"workerCommandLineArgs", "parameterServerCommandLineArgs", "workerCount",
	"parameterServerCount", NULL,
};

static const struct toolkit toolkits[] = {
	{ "customToolkitSettings", JOB_DIST_NONE, custom_keys, "commandLine" },
	{ "customMpiSettings", JOB_DIST_MPI, mpi_keys, "commandLine or processCount" },
	{ "horovodSettings", JOB_DIST_MPI, horovod_keys,
	  "pythonScriptFilePath, pythonInterpreterPath, commandLineArgs or processCount" },
	{ "pyTorchSettings", JOB_DIST_PYTORCH, pytorch_keys,
	  "pythonScriptFilePath, pythonInterpreterPath, commandLineArgs, processCount or "
	  "communicationBackend" },
	{ "tensorFlowSettings", JOB_DIST_TENSORFLOW, tensorflow_keys,
	  "pythonScriptFilePath, pythonInterpreterPath, masterCommandLineArgs, "
	  "workerCommandLineArgs, parameterServerCommandLineArgs, workerCount or "
	  "parameterServerCount" },
};

enum { BACKEND_TCP, BACKEND_GLOO, BACKEND_NCCL, BACKEND_MPI };
static const char *const backend_words[] = {
	[BACKEND_TCP] = "TCP",
	[BACKEND_GLOO] = "Gloo",
	[BACKEND_NCCL] = "NCCL",
	[BACKEND_MPI] = "MPI",
};

/* The one toolkit's settings as read, until nodeCount is known. */
struct toolkit_settings {
	const struct toolkit *toolkit; /* NULL: none yet */
	unsigned line;                 /* of its key */
	char *command_line;
	char *script;                  /* pythonScriptFilePath */
	char *interpreter;             /* pythonInterpreterPath */
	char *args;                    /* commandLineArgs or masterCommandLineArgs */
	char *worker_args;
	char *ps_args;
	long process_count;            /* processCount, over all nodes; 0: absent */
	unsigned process_count_line;
	long worker_count;             /* 0: absent */
	long parameter_server_count;   /* -1: absent */
	bool mpi_backend;              /* communicationBackend MPI */
};

static const struct toolkit *find_toolkit(const yaml_node_t *key)
{
	size_t i;

	for (i = 0; i < sizeof(toolkits) / sizeof(toolkits[0]); i++)
		if (scalar_is(key, toolkits[i].name))
			return &toolkits[i];
	return NULL;
}

/* One field of a toolkit, on the path. A null value counts as absent: `az batchai job
 * show` writes null for every field not set. */
static int take_toolkit_field(struct parse *p, const struct job *job, struct toolkit_settings *s,
			      const yaml_node_t *key, const yaml_node_t *value)
{
	char **text = NULL;
	bool args = false;
	int err, backend = 0;

	if (is_null(value))
		return 0;
	if (scalar_is(key, "commandLine")) {
		text = &s->command_line;
	} else if (scalar_is(key, "pythonScriptFilePath")) {
		text = &s->script;
	} else if (scalar_is(key, "pythonInterpreterPath")) {
		text = &s->interpreter;
	} else if (scalar_is(key, "commandLineArgs") || scalar_is(key, "masterCommandLineArgs")) {
		text = &s->args;
		args = true;
	} else if (scalar_is(key, "workerCommandLineArgs")) {
		text = &s->worker_args;
		args = true;
	} else if (scalar_is(key, "parameterServerCommandLineArgs")) {
		text = &s->ps_args;
		args = true;
	}
	/* Commands are these pieces joined with spaces, so a placeholder cannot span two
	 * of them: checking each piece checks the commands. */
	if (text) {
		err = args ? take_string(p, value, text) : take_nonempty(p, value, text);
		return err ? err : check_placeholders(p, job, *text, line_of(value));
	}
	if (scalar_is(key, "processCount")) {
		s->process_count_line = line_of(value);
		return take_count(p, value, 1, (long)JOB_NODES_MAX * JOB_PROCESSES_MAX,
				  &s->process_count);
	}
	if (scalar_is(key, "workerCount"))
		return take_count(p, value, 1, JOB_NODES_MAX, &s->worker_count);
	if (scalar_is(key, "parameterServerCount"))
		return take_count(p, value, 0, JOB_NODES_MAX, &s->parameter_server_count);
	err = take_enum(p, value, "communication backend", backend_words, 4, true,
			"TCP, Gloo, NCCL or MPI", &backend);
	s->mpi_backend = backend == BACKEND_MPI;
	return err;
}

/* The toolkit's settings (key: value of the job's properties) into s; one toolkit at
 * most. */
static int parse_toolkit(struct parse *p, const struct job *job, struct toolkit_settings *s,
			 const yaml_node_t *key, const yaml_node_t *n)
{
	const struct toolkit *toolkit = find_toolkit(key);
	yaml_node_t *fkey, *fvalue;
	size_t i, saved;
	int err;

	if (is_null(n))
		return 0;
	if (s->toolkit)
		return fail(p, line_of(key), "only one toolkit may be given (%s is at line %u)",
			    s->toolkit->name, s->line);
	s->toolkit = toolkit;
	s->line = line_of(key);
	err = check_mapping(p, n, FIELDS_MAX, "a mapping");
	if (err)
		return err;
	FOR_EACH_FIELD(p, n, toolkit->keys, toolkit->expected, fkey, fvalue, i) {
		saved = path_push_node(p, fkey);
		err = take_toolkit_field(p, job, s, fkey, fvalue);
		path_pop(p, saved);
		if (err)
			return err;
	}
	if (!(strcmp(toolkit->keys[0], "commandLine") == 0 ? s->command_line : s->script))
		return missing(p, line_of(n), toolkit->keys[0]);
	return 0;
}

/* "<interpreter> <script> <args>" (args may be NULL or empty) as a new string. */
static int python_command(const struct toolkit_settings *s, const char *args, char **out)
{
	/* Debian has no `python`, only python3. */
	const char *words[] = { s->interpreter ? s->interpreter : "python3", s->script, args };
	size_t len = 0, used = 0, i, n;
	char *cmd;

	for (i = 0; i < 3; i++)
		len += words[i] ? strlen(words[i]) + 1 : 0;
	cmd = malloc(len + 1);
	if (!cmd)
		return -ENOMEM;
	for (i = 0; i < 3; i++) {
		if (!words[i] || !*words[i])
			continue;
		if (used)
			cmd[used++] = ' ';
		n = strlen(words[i]);
		memcpy(cmd + used, words[i], n);
		used += n;
	}
	cmd[used] = '\0';
	*out = cmd;
	return 0;
}

/* processCount is over all nodes: each node runs an equal share. */
static int split_processes(struct parse *p, const struct toolkit_settings *s,
			   struct job_dist *dist)
{
	long total = s->process_count ? s->process_count : dist->node_count;
	size_t saved;
	int err = 0;

	saved = path_push_word(p, s->toolkit->name);
	path_push_word(p, "processCount");
	if (total % dist->node_count)
		err = fail(p, s->process_count_line,
			   "%ld processes cannot be spread evenly over nodeCount %ld (expected a "
			   "multiple of %ld)", total, dist->node_count, dist->node_count);
	else if (total / dist->node_count > JOB_PROCESSES_MAX)
		err = fail(p, s->process_count_line,
			   "%ld processes over nodeCount %ld is more than %d a node (expected at "
			   "most %ld)", total, dist->node_count, JOB_PROCESSES_MAX,
			   (long)JOB_PROCESSES_MAX * dist->node_count);
	else
		dist->process_count = total / dist->node_count;
	path_pop(p, saved);
	return err;
}

/* job->command and job->dist from the toolkit, now that nodeCount is known. */
static int toolkit_dist(struct parse *p, struct job *job, struct toolkit_settings *s)
{
	struct job_dist *dist = &job->dist;
	int err = 0;

	dist->type = s->toolkit->type;
	if (dist->type == JOB_DIST_PYTORCH && s->mpi_backend)
		dist->type = JOB_DIST_MPI;
	if (s->command_line) {
		job->command = s->command_line;
		s->command_line = NULL;
	} else {
		err = python_command(s, s->args, &job->command);
	}
	if (err || dist->type == JOB_DIST_NONE)
		return err;
	if (dist->type != JOB_DIST_TENSORFLOW)
		return split_processes(p, s, dist);
	dist->worker_count = s->worker_count ? s->worker_count : dist->node_count;
	dist->parameter_server_count = s->parameter_server_count >= 0 ? s->parameter_server_count
					: dist->node_count > 1 ? 1 : 0;
	dist->master_command = strdup(job->command);
	if (!dist->master_command)
		return -ENOMEM;
	if (dist->worker_count > 1)
		err = python_command(s, s->worker_args, &dist->worker_command);
	if (!err && dist->parameter_server_count > 0)
		err = python_command(s, s->ps_args, &dist->ps_command);
	return err;
}

/* The job's properties (or the whole file when it has no wrapper), the toolkit's
 * settings into s. */
static int read_batchai_props(struct parse *p, struct job *job, const yaml_node_t *n,
			      struct toolkit_settings *s)
{
	struct job_batchai *b = &job->batchai;
	yaml_node_t *key, *value;
	size_t i, saved;
	int err = check_mapping(p, n, FIELDS_MAX, "a mapping (the job's properties)");

	if (err)
		return err;
	for (i = 0; i < map_len(n); i++) {
		pair_at(p, n, i, &key, &value);
		if (in_list(key, batchai_unsupported)) {
			/* `az batchai job show` writes null for the toolkits not used. */
			if (is_null(value))
				continue;
			saved = path_push_node(p, key);
			err = fail(p, line_of(key),
				   "not supported by ferry run (give the command as "
				   "customToolkitSettings.commandLine)");
			path_pop(p, saved);
			return err;
		}
		if (!in_list(key, batchai_keys))
			return unknown_key(p, key, batchai_keys, NULL);
		saved = path_push_node(p, key);
		if (find_toolkit(key))
			err = parse_toolkit(p, job, s, key, value);
		else if (scalar_is(key, "jobPreparation"))
			err = parse_command_line(p, value, &b->job_preparation);
		else if (scalar_is(key, "inputDirectories"))
			err = parse_input_dirs(p, job, value);
		else if (scalar_is(key, "outputDirectories"))
			err = parse_output_dirs(p, job, value);
		else if (scalar_is(key, "stdOutErrPathPrefix"))
			err = take_nonempty(p, value, &b->std_out_err_path_prefix);
		else if (scalar_is(key, "mountVolumes"))
			err = parse_mount_volumes(p, job, value);
		else if (scalar_is(key, "environmentVariables"))
			err = parse_env_list(p, job, value);
		else if (scalar_is(key, "secrets"))
			err = parse_secrets(p, job, value);
		else if (scalar_is(key, "nodeCount"))
			err = take_count(p, value, 1, JOB_NODES_MAX, &job->dist.node_count);
		else if (scalar_is(key, "containerSettings"))
			err = parse_container(p, job, value);
		else if (scalar_is(key, "experimentName"))
			err = take_string(p, value, &job->experiment_name);
		else if (scalar_is(key, "constraints"))
			err = parse_constraints(p, job, value);
		/* the others are accepted and ignored */
		path_pop(p, saved);
		if (err)
			return err;
	}
	return 0;
}

static int parse_batchai_props(struct parse *p, struct job *job, const yaml_node_t *n,
			       unsigned line)
{
	struct toolkit_settings s = { .parameter_server_count = -1 };
	int err = read_batchai_props(p, job, n, &s);

	if (!err && !s.toolkit) {
		size_t saved = path_push_word(p, "customToolkitSettings");

		err = missing(p, line, "commandLine");
		path_pop(p, saved);
	}
	if (!err)
		err = toolkit_dist(p, job, &s);
	free(s.command_line);
	free(s.script);
	free(s.interpreter);
	free(s.args);
	free(s.worker_args);
	free(s.ps_args);
	return err;
}

static int parse_batchai(struct parse *p, struct job *job, const yaml_node_t *root)
{
	static const char *const keys[] = { "properties", "location", "name", "tags", "id",
					    "type", NULL };
	const yaml_node_t *props = map_get(p, root, "properties");
	yaml_node_t *key, *value;
	size_t i, saved;
	int err;

	job->kind = JOB_BATCHAI;
	if (!props || !has_marker(p, props))
		return parse_batchai_props(p, job, root, line_of(root));
	err = check_mapping(p, root, FIELDS_MAX, "a mapping");
	if (err)
		return err;
	/* location, id and type are accepted and ignored. */
	FOR_EACH_FIELD(p, root, keys, "properties, location, name or tags", key, value, i) {
		saved = path_push_node(p, key);
		if (scalar_is(key, "properties"))
			err = parse_batchai_props(p, job, value, line_of(key));
		else if (scalar_is(key, "name"))
			err = take_string(p, value, &job->name);
		else if (scalar_is(key, "tags"))
			err = parse_kv_map(p, value, false, &job->tags, &job->ntags);
		path_pop(p, saved);
		if (err)
			return err;
	}
	return 0;
}

static bool is_batchai(struct parse *p, const yaml_node_t *root)
{
	const yaml_node_t *props;

	if (root->type != YAML_MAPPING_NODE || map_get(p, root, "command"))
		return false;
	props = map_get(p, root, "properties");
	return (props && has_marker(p, props)) || has_marker(p, root);
}

/* ---- libyaml ---- */

/* Whether the line (0-based) of text is indented with a tab. */
static bool tab_indented(const char *text, size_t len, size_t line)
{
	size_t i = 0;

	for (; line && i < len; i++)
		if (text[i] == '\n')
			line--;
	for (; i < len && (text[i] == ' ' || text[i] == '\t'); i++)
		if (text[i] == '\t')
			return true;
	return false;
}

/* libyaml's problem, one line, with line and column. */
static int yaml_error(const yaml_parser_t *parser, const char *source, const char *text,
		      size_t len, char *errbuf, size_t errlen)
{
	const yaml_mark_t *pm = &parser->problem_mark, *cm = &parser->context_mark;
	const char *problem = parser->problem ? parser->problem : "syntax error";

	if (!errbuf || !errlen)
		return parser->error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
	errbuf[0] = '\0';
	if (parser->error == YAML_MEMORY_ERROR) {
		append(errbuf, errlen, "%s: out of memory reading YAML", source);
		return -ENOMEM;
	}
	if (parser->error == YAML_READER_ERROR) {
		append(errbuf, errlen, "%s: bad YAML: %s at byte %zu", source, problem,
		       parser->problem_offset);
		return -EINVAL;
	}
	append(errbuf, errlen, "%s:%zu:%zu: bad YAML: %s", source, pm->line + 1, pm->column + 1,
	       problem);
	if (parser->context && (cm->line != pm->line || cm->column != pm->column))
		append(errbuf, errlen, " (%s at line %zu, column %zu)", parser->context,
		       cm->line + 1, cm->column + 1);
	else if (parser->context)
		append(errbuf, errlen, " (%s)", parser->context);
	if (parser->error == YAML_SCANNER_ERROR && tab_indented(text, len, pm->line))
		append(errbuf, errlen, "; indent with spaces, not tabs");
	return -EINVAL;
}

/* Overwrites every scalar, then frees the document: an account key leaves nothing
 * behind in freed memory. */
static void doc_wipe_delete(yaml_document_t *doc)
{
	yaml_node_t *n;

	for (n = doc->nodes.start; n && n < doc->nodes.top; n++)
		if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
			OPENSSL_cleanse(n->data.scalar.value, n->data.scalar.length);
	yaml_document_delete(doc);
}

static void parser_wipe_delete(yaml_parser_t *parser, size_t len);

/* Events before the loader: libyaml 0.2.5's scanner costs O(depth) per token, so
 * 256 KiB of '[' would take a minute to load. Stopping at JOB_DEPTH_MAX levels keeps
 * the scanner's look-ahead (and so its cost) small. Syntax errors surface here. */
static int check_depth(const char *source, const char *text, size_t len, char *errbuf,
		       size_t errlen)
{
	yaml_parser_t parser;
	yaml_event_t event;
	int depth = 0, err = 0;
	bool done = false;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done && !err) {
		if (!yaml_parser_parse(&parser, &event)) {
			err = yaml_error(&parser, source, text, len, errbuf, errlen);
			break;
		}
		switch (event.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > JOB_DEPTH_MAX) {
				if (errbuf && errlen)
					snprintf(errbuf, errlen,
						 "%s:%zu:%zu: nested deeper than %d levels", source,
						 event.start_mark.line + 1,
						 event.start_mark.column + 1, JOB_DEPTH_MAX);
				err = -EINVAL;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_SCALAR_EVENT:
			OPENSSL_cleanse(event.data.scalar.value, event.data.scalar.length);
			break;
		default:
			break;
		}
		yaml_event_delete(&event);
	}
	parser_wipe_delete(&parser, len);
	return err;
}

/* Overwrites the first bytes of a buffer: no more than 2 * len + 16 of it ever held
 * text (UTF-16 decodes to at most 1.5 bytes of UTF-8 per byte). */
static void wipe_used(void *start, void *end, size_t len)
{
	size_t size = (size_t)((unsigned char *)end - (unsigned char *)start);

	if (start)
		OPENSSL_cleanse(start, size < 2 * len + 16 ? size : 2 * len + 16);
}

/* The same for the parser's copies of the len bytes of text (its buffers and queued
 * tokens). A document the loader dropped on a syntax error is freed by libyaml
 * unwiped. */
static void parser_wipe_delete(yaml_parser_t *parser, size_t len)
{
	yaml_token_t *t;

	for (t = parser->tokens.head; t && t < parser->tokens.tail; t++)
		if (t->type == YAML_SCALAR_TOKEN && t->data.scalar.value)
			OPENSSL_cleanse(t->data.scalar.value, t->data.scalar.length);
	wipe_used(parser->buffer.start, parser->buffer.end, len);
	wipe_used(parser->raw_buffer.start, parser->raw_buffer.end, len);
	yaml_parser_delete(parser);
}

/* ---- entry points ---- */

int job_parse_string(const char *text, size_t len, const char *source, struct job **out,
		     char *errbuf, size_t errlen)
{
	struct parse p = { .errbuf = errbuf, .errlen = errlen };
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *root, *extra_root;
	struct job *job;
	int err;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!source)
		source = "<string>";
	printable(source, strlen(source), p.source, SOURCE_MAX);
	if (!text)
		return -EINVAL;
	if (len > JOB_FILE_MAX) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s: larger than %d bytes", p.source, JOB_FILE_MAX);
		return -EFBIG;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->dist.node_count = 1;
	job->dist.process_count = 1;
	job->source = strdup(source);
	if (!job->source) {
		free(job);
		return -ENOMEM;
	}
	err = check_depth(p.source, text, len, errbuf, errlen);
	if (err) {
		job_free(job);
		return err;
	}
	if (!yaml_parser_initialize(&parser)) {
		job_free(job);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		err = yaml_error(&parser, p.source, text, len, errbuf, errlen);
		goto out_parser;
	}
	p.doc = &doc;
	root = yaml_document_get_root_node(&doc);
	if (!root) {
		err = fail(&p, 1, "empty job file");
		goto out_doc;
	}
	/* One document only: a second one is a mistake, not something to ignore. */
	if (!yaml_parser_load(&parser, &extra)) {
		err = yaml_error(&parser, p.source, text, len, errbuf, errlen);
		goto out_doc;
	}
	extra_root = yaml_document_get_root_node(&extra);
	err = extra_root ? fail(&p, line_of(extra_root), "more than one YAML document") : 0;
	doc_wipe_delete(&extra);
	if (err)
		goto out_doc;
	err = is_batchai(&p, root) ? parse_batchai(&p, job, root) : parse_azureml(&p, job, root);
out_doc:
	doc_wipe_delete(&doc);
out_parser:
	parser_wipe_delete(&parser, len);
	if (err) {
		job_free(job);
		return err;
	}
	*out = job;
	return 0;
}

int job_parse_file(const char *path, struct job **out, char *errbuf, size_t errlen)
{
	char shown[SOURCE_MAX + 8], ebuf[128];
	size_t len = 0;
	char *text;
	int fd, err = 0;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!out || !path)
		return -EINVAL;
	*out = NULL;
	printable(path, strlen(path), shown, SOURCE_MAX);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		util_errf(errbuf, errlen, "%s: %s", shown, strerror_r(-err, ebuf, sizeof(ebuf)));
		return err;
	}
	/* A directory fails here with EISDIR. */
	err = util_read_fd(fd, JOB_FILE_MAX, &text, &len);
	close(fd);
	if (err == -EFBIG) {
		util_errf(errbuf, errlen, "%s: larger than %d bytes", shown, JOB_FILE_MAX);
		return err;
	}
	if (err) {
		util_errf(errbuf, errlen, "%s: %s", shown, strerror_r(-err, ebuf, sizeof(ebuf)));
		return err;
	}
	err = job_parse_string(text, len, path, out, errbuf, errlen);
	OPENSSL_cleanse(text, len);
	free(text);
	return err;
}

void job_wipe_secrets(struct job *job)
{
	size_t i;

	if (!job)
		return;
	for (i = 0; i < job->batchai.nmounts; i++) {
		char *key = job->batchai.mounts[i].account_key;

		if (key) {
			OPENSSL_cleanse(key, strlen(key));
			free(key);
			job->batchai.mounts[i].account_key = NULL;
		}
	}
}

void job_free(struct job *job)
{
	struct job_batchai *b;
	size_t i;

	if (!job)
		return;
	job_wipe_secrets(job);
	b = &job->batchai;
	for (i = 0; i < job->ninputs; i++) {
		free(job->inputs[i].name);
		free(job->inputs[i].value);
		free(job->inputs[i].path);
	}
	for (i = 0; i < job->noutputs; i++) {
		free(job->outputs[i].name);
		free(job->outputs[i].path);
	}
	for (i = 0; i < job->nenv; i++) {
		free(job->env[i].name);
		free(job->env[i].value);
	}
	for (i = 0; i < job->ntags; i++) {
		free(job->tags[i].name);
		free(job->tags[i].value);
	}
	for (i = 0; i < b->ninputs; i++) {
		free(b->inputs[i].id);
		free(b->inputs[i].path);
	}
	for (i = 0; i < b->noutputs; i++) {
		free(b->outputs[i].id);
		free(b->outputs[i].path_prefix);
		free(b->outputs[i].path_suffix);
	}
	for (i = 0; i < b->nmounts; i++) {
		free(b->mounts[i].account_name);
		free(b->mounts[i].container_name);
		free(b->mounts[i].azure_file_url);
		free(b->mounts[i].relative_mount_path);
		free(b->mounts[i].mount_options);
		free(b->mounts[i].key_secret_url);
		free(b->mounts[i].key_vault_id);
	}
	for (i = 0; i < b->nsecret_names; i++)
		free(b->secret_names[i]);
	free(b->inputs);
	free(b->outputs);
	free(b->mounts);
	free(b->secret_names);
	free(b->std_out_err_path_prefix);
	free(b->job_preparation);
	free(b->container_image);
	free(job->dist.master_command);
	free(job->dist.worker_command);
	free(job->dist.ps_command);
	free(job->inputs);
	free(job->outputs);
	free(job->env);
	free(job->tags);
	free(job->source);
	free(job->command);
	free(job->code);
	free(job->name);
	free(job->experiment_name);
	free(job->display_name);
	free(job->description);
	free(job->environment);
	free(job->compute);
	free(job);
}

/* ---- substitution ---- */

struct strbuf {
	char *data;
	size_t len, cap;
};

static int sb_append(struct strbuf *sb, const char *s, size_t n)
{
	if (n > JOB_SUBST_MAX - sb->len)
		return -E2BIG;
	if (sb->len + n + 1 > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 64;
		char *grown;

		while (cap < sb->len + n + 1)
			cap *= 2;
		if (cap > JOB_SUBST_MAX + 1)
			cap = JOB_SUBST_MAX + 1;
		grown = realloc(sb->data, cap);
		if (!grown)
			return -ENOMEM;
		sb->data = grown;
		sb->cap = cap;
	}
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
	return 0;
}

int job_substitute(const struct job *job, const struct job_values *values, const char *tmpl,
		   char **out, char *errbuf, size_t errlen)
{
	struct strbuf sb = { 0 };
	struct placeholder ph = { 0 };
	char text[QUOTE_MAX + 4];
	size_t pos = 0, which = 0;
	bool is_output = false;
	int found, err = 0;

	if (errbuf && errlen)
		errbuf[0] = '\0';
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!job || !tmpl)
		return -EINVAL;
	while ((found = next_placeholder(tmpl, pos, &ph)) > 0) {
		const char *value = NULL;

		printable(tmpl + ph.start, ph.end - ph.start, text, QUOTE_MAX);
		err = sb_append(&sb, tmpl + pos, ph.start - pos);
		if (err)
			break;
		err = find_ref(job, &ph, &is_output, &which);
		if (err == -ENOENT) {
			if (errbuf && errlen)
				snprintf(errbuf, errlen, "%s is not declared in %s", text,
					 is_output ? "outputs" : "inputs");
			err = -EINVAL;
			break;
		}
		if (err) {
			if (errbuf && errlen)
				snprintf(errbuf, errlen,
					 "%s: unsupported expression (expected ${{inputs.NAME}} "
					 "or ${{outputs.NAME}})", text);
			break;
		}
		if (is_output) {
			value = values && values->outputs ? values->outputs[which] : NULL;
		} else {
			value = values && values->inputs ? values->inputs[which] : NULL;
			if (!value && job->inputs[which].type == JOB_LITERAL)
				value = job->inputs[which].value;
		}
		if (!value) {
			if (errbuf && errlen)
				snprintf(errbuf, errlen, "%s: no value for %s '%s'", text,
					 is_output ? "output" : "input",
					 is_output ? job->outputs[which].name
						   : job->inputs[which].name);
			err = -EINVAL;
			break;
		}
		err = sb_append(&sb, value, strlen(value));
		if (err)
			break;
		pos = ph.end;
	}
	if (!err && found < 0) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "'${{' at character %zu has no closing '}}'",
				 char_number(tmpl, ph.start));
		err = -EINVAL;
	}
	if (!err)
		err = sb_append(&sb, tmpl + pos, strlen(tmpl + pos));
	if (err == -E2BIG && errbuf && errlen)
		snprintf(errbuf, errlen, "the command would be longer than %d bytes",
			 JOB_SUBST_MAX);
	if (err) {
		free(sb.data);
		return err;
	}
	*out = sb.data;
	return 0;
}

/* ---- lookups ---- */

const struct job_input *job_find_input(const struct job *job, const char *name)
{
	size_t i;

	for (i = 0; job && name && i < job->ninputs; i++)
		if (strcmp(job->inputs[i].name, name) == 0)
			return &job->inputs[i];
	return NULL;
}

const struct job_output *job_find_output(const struct job *job, const char *name)
{
	size_t i;

	for (i = 0; job && name && i < job->noutputs; i++)
		if (strcmp(job->outputs[i].name, name) == 0)
			return &job->outputs[i];
	return NULL;
}

const char *job_data_type_name(enum job_data_type type)
{
	return (unsigned)type < 3 ? data_type_names[type] : "?";
}

const char *job_input_mode_name(enum job_input_mode mode)
{
	return (unsigned)mode < 3 ? input_mode_names[mode] : "?";
}

const char *job_output_mode_name(enum job_output_mode mode)
{
	return (unsigned)mode < 2 ? output_mode_names[mode] : "?";
}
