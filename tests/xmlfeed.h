/* xmlfeed: what the tests of the listing parsers (test_listxml, test_filesxml) share:
 * entries collected as lines of text, a document fed to a parser in pieces, and
 * documents damaged at random (a small deterministic generator, so that a failure
 * comes back on the next run). */
#ifndef FERRY_XMLFEED_H
#define FERRY_XMLFEED_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store/xmlstream.h"

/* Lines of text, one an entry; a collector may stop the parse at one of them. */
struct xmlfeed_text {
	char *text;
	size_t len, cap;
	int count;
	int stop_after; /* xmlfeed_add() returns stop_value on this entry (1-based); 0 never */
	int stop_value;
};

/* Appends the formatted line as the next entry: 0, stop_value, or -errno. */
static inline int xmlfeed_addf(struct xmlfeed_text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int xmlfeed_addf(struct xmlfeed_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	t->count++;
	if (t->len + (size_t)n + 1 > t->cap) {
		size_t cap = (t->cap + (size_t)n + 1) * 2;
		char *text = realloc(t->text, cap);

		if (!text)
			return -ENOMEM;
		t->text = text;
		t->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(t->text + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
	if (t->stop_after && t->count == t->stop_after)
		return t->stop_value;
	return 0;
}

static inline void xmlfeed_reset(struct xmlfeed_text *t)
{
	free(t->text);
	memset(t, 0, sizeof(*t));
}

/* Makes a parser whose entries go to c (as lines: xmlfeed_addf()). */
typedef int (*xmlfeed_new_fn)(struct xmlfeed_text *c, struct xmlstream **out);

/* Parses doc (len bytes) with a parser from make, fed in pieces of step bytes (0:
 * whole), then finished; returns what making, a feed or the finish returned. */
static inline int xmlfeed_parse(xmlfeed_new_fn make, const char *doc, size_t len,
				size_t step, struct xmlfeed_text *c, char *marker,
				size_t marker_len)
{
	struct xmlstream *p;
	size_t off = 0;
	int err = make(c, &p);

	if (err)
		return err;
	if (!step)
		step = len ? len : 1;
	while (off < len && !err) {
		size_t n = len - off < step ? len - off : step;

		err = xmlstream_feed(p, doc + off, n);
		off += n;
	}
	if (!err)
		err = xmlstream_finish(p, marker, marker_len);
	xmlstream_free(p);
	return err;
}

/* Whether make's parser takes doc, fed in pieces of step bytes, to the entries want
 * and the NextMarker want_marker; what differs goes to stderr. */
static inline bool xmlfeed_gives(xmlfeed_new_fn make, const char *doc, size_t step,
				 const char *want, const char *want_marker)
{
	struct xmlfeed_text c = { 0 };
	char marker[512] = "junk";
	int err = xmlfeed_parse(make, doc, strlen(doc), step, &c, marker, sizeof(marker));
	const char *got = c.text ? c.text : "";
	bool same = !err && !strcmp(got, want) && !strcmp(marker, want_marker);

	if (!same)
		fprintf(stderr, "pieces of %zu: error %d\n  got:  \"%s\", marker \"%s\"\n"
				"  want: \"%s\", marker \"%s\"\n",
			step, err, got, marker, want, want_marker);
	xmlfeed_reset(&c);
	return same;
}

/* Whether make's parser refuses every one of the n documents (each whole) with want,
 * delivering no entry; the ones it does not go to stderr. */
static inline bool xmlfeed_refuses(xmlfeed_new_fn make, const char *const *docs, size_t n,
				   int want)
{
	bool all = true;

	for (size_t i = 0; i < n; i++) {
		struct xmlfeed_text c = { 0 };
		char marker[512];
		int err = xmlfeed_parse(make, docs[i], strlen(docs[i]), 0, &c, marker,
					sizeof(marker));

		if (err != want || c.count) {
			fprintf(stderr, "doc %zu: %d, %d entries\n", i, err, c.count);
			all = false;
		}
		xmlfeed_reset(&c);
	}
	return all;
}

/* Feeds p head, then kilobytes of 'n' (the text of the element head opens) until p
 * refuses them, at most max_kib; frees p. Returns what the last feed returned and in
 * *kib how many kilobytes were fed. */
static inline int xmlfeed_endless_text(struct xmlstream *p, const char *head, int max_kib,
				       int *kib)
{
	char chunk[1024];
	int err;

	memset(chunk, 'n', sizeof(chunk));
	err = xmlstream_feed(p, head, strlen(head));
	for (*kib = 0; *kib < max_kib && !err; (*kib)++)
		err = xmlstream_feed(p, chunk, sizeof(chunk));
	xmlstream_free(p);
	return err;
}

/* xorshift32: the next number of the sequence at *state (never 0). */
static inline uint32_t xmlfeed_random(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/* Damages the len bytes at buf (cap bytes of room) in one to eight places: a byte
 * changed to any value or to one of markup, a cut, a stretch repeated. Returns the
 * new length. */
static inline size_t xmlfeed_mutate(char *buf, size_t len, size_t cap, uint32_t *state)
{
	static const char markup[] = "<>/&;\"'=!?[]%.";
	size_t flips = 1 + xmlfeed_random(state) % 8;

	for (size_t k = 0; k < flips && len; k++) {
		size_t at = xmlfeed_random(state) % len;

		switch (xmlfeed_random(state) % 4) {
		case 0:
			buf[at] = (char)(xmlfeed_random(state) & 0xff);
			break;
		case 1:
			buf[at] = markup[xmlfeed_random(state) % (sizeof(markup) - 1)];
			break;
		case 2:
			len = at;
			break;
		default:
			if (len + 64 < cap) {
				memmove(buf + at + 32, buf + at, len - at);
				len += 32;
			}
			break;
		}
	}
	return len;
}

#endif
