/* xmlfeed: what the tests of the listing parsers (test_listxml, test_filesxml) share:
 * entries collected as lines of text, a document fed to an xmlstream in pieces, and
 * documents damaged at random (a small deterministic generator, so that a failure
 * comes back on the next run). */
#ifndef FERRY_XMLFEED_H
#define FERRY_XMLFEED_H

#include <errno.h>
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

/* Appends line (of len bytes) as the next entry: 0, stop_value, or -ENOMEM. */
static inline int xmlfeed_add(struct xmlfeed_text *t, const char *line, size_t len)
{
	t->count++;
	if (t->len + len + 1 > t->cap) {
		size_t cap = (t->cap + len + 1) * 2;
		char *text = realloc(t->text, cap);

		if (!text)
			return -ENOMEM;
		t->text = text;
		t->cap = cap;
	}
	memcpy(t->text + t->len, line, len);
	t->len += len;
	t->text[t->len] = '\0';
	if (t->stop_after && t->count == t->stop_after)
		return t->stop_value;
	return 0;
}

static inline void xmlfeed_reset(struct xmlfeed_text *t)
{
	free(t->text);
	memset(t, 0, sizeof(*t));
}

/* Feeds doc to p in pieces of step bytes (0: whole), finishes it and frees it;
 * returns what the feed or the finish returned. */
static inline int xmlfeed_parse(struct xmlstream *p, const char *doc, size_t len,
				size_t step, char *marker, size_t marker_len)
{
	size_t off = 0;
	int err = 0;

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

/* How a test parses: doc (len bytes) fed in pieces of step (0: whole), entries
 * collected into c; returns the feed's or the finish's error. */
typedef int (*xmlfeed_parse_fn)(const char *doc, size_t len, size_t step,
				struct xmlfeed_text *c, char *marker, size_t marker_len);

/* Whether parse takes doc, fed in pieces of step bytes, to the entries want and the
 * NextMarker want_marker; what differs goes to stderr. */
static inline bool xmlfeed_gives(xmlfeed_parse_fn parse, const char *doc, size_t step,
				 const char *want, const char *want_marker)
{
	struct xmlfeed_text c = { 0 };
	char marker[512] = "junk";
	int err = parse(doc, strlen(doc), step, &c, marker, sizeof(marker));
	const char *got = c.text ? c.text : "";
	bool same = !err && !strcmp(got, want) && !strcmp(marker, want_marker);

	if (!same)
		fprintf(stderr, "pieces of %zu: error %d\n  got:  \"%s\", marker \"%s\"\n"
				"  want: \"%s\", marker \"%s\"\n",
			step, err, got, marker, want, want_marker);
	xmlfeed_reset(&c);
	return same;
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
