/* xmlstream: the engine under the listing parsers (listxml for List Blobs, filesxml for
 * List Directories and Files): libxml2's SAX2 push parser, fed a body piece by piece
 * as it arrives so that a page is never held whole, reporting only the elements a
 * fixed grammar names.
 *
 * Hostile input is bounded: a DOCTYPE is refused, so no entity but the predefined five
 * exists; nesting deeper than XMLSTREAM_DEPTH_MAX is refused; at most
 * XMLSTREAM_TEXT_MAX bytes of one element's text are kept. The body is taken as UTF-8
 * (what Azure sends) and its BOM dropped here, so that libxml2 never guesses an
 * encoding and never reaches iconv, whose errors it would print past our handler;
 * nothing goes to stderr. One per response; not thread-safe.
 */
#ifndef FERRY_XMLSTREAM_H
#define FERRY_XMLSTREAM_H

#include <stdbool.h>
#include <stddef.h>

/* Longest text kept from one element: a 1,024-character blob name is up to ~3 KiB of
 * UTF-8 and ~9 KiB once percent-encoded; Azure's opaque markers embed a name. */
#define XMLSTREAM_TEXT_MAX 16384
/* Deepest nesting accepted (Azure's listings use 5). */
#define XMLSTREAM_DEPTH_MAX 32

/* Element kinds: these two, then the grammar's own, from XMLSTREAM_FIRST_KIND to 255. */
enum {
	XMLSTREAM_DOCUMENT = 0, /* outside the root */
	XMLSTREAM_OTHER = 1,    /* an element the grammar does not name, and all it holds */
	XMLSTREAM_FIRST_KIND = 2,
};

/* An element of the grammar: under an element of kind parent, one called name. */
struct xmlstream_rule {
	unsigned char parent;
	unsigned char kind;
	unsigned flags;
	const char *name;
};

#define XMLSTREAM_TEXT 0x1u    /* its text goes to on_text at its end tag */
#define XMLSTREAM_WHOLE 0x2u   /* ... and must fit: -ENAMETOOLONG when longer */
#define XMLSTREAM_ENCODED 0x4u /* ... percent-decoded first when it has Encoded="true"
				  (a bad escape or %00: -EBADMSG) */
#define XMLSTREAM_ANYCASE 0x8u /* its name is matched in any case */
#define XMLSTREAM_MARKER 0x10u /* its text is the page's NextMarker: kept whole here
				  for xmlstream_finish(), not given to on_text */

struct xmlstream_grammar {
	const struct xmlstream_rule *rules;
	size_t nrules;
	size_t state_size; /* bytes of the grammar's own state (the entry being built,
			      the caller's callback), zeroed; every callback gets it */
	/* An element of a kind without XMLSTREAM_TEXT opened / closed. */
	int (*on_open)(void *state, int kind);
	int (*on_close)(void *state, int kind);
	/* The text of an XMLSTREAM_TEXT element, NUL-terminated, len bytes; overflow: it
	 * was longer than XMLSTREAM_TEXT_MAX and text holds only its start. */
	int (*on_text)(void *state, int kind, char *text, size_t len, bool overflow);
};
/* Each callback returns 0, or anything else to stop the parse: that value is then
 * what xmlstream_feed() and xmlstream_finish() return, from then on. */

struct xmlstream;

/* A parser of one document; grammar must outlive it. Its state starts as the
 * init_len bytes at init (the caller's callback, say), zeroes after them. -ENOMEM.
 * (listxml_new() and filesxml_new() make the parsers of the two listings.) */
int xmlstream_new(const struct xmlstream_grammar *grammar, const void *init,
		  size_t init_len, struct xmlstream **out);
/* Parses the next piece. -EBADMSG when the bytes are not well-formed XML or the
 * document breaks a bound above; -EINVAL once finished. */
int xmlstream_feed(struct xmlstream *x, const char *data, size_t len);
/* Ends the document and copies the text of its XMLSTREAM_MARKER element (or "" when
 * absent or empty) to next_marker. -EBADMSG when the document is incomplete or its
 * root is not the grammar's, -ENAMETOOLONG when the marker does not fit. */
int xmlstream_finish(struct xmlstream *x, char *next_marker, size_t next_len);
/* NULL is fine. */
void xmlstream_free(struct xmlstream *x);

/* s without the blanks (space, tab, CR, LF) around it, cut in place. */
char *xmlstream_trim(char *s);

#endif
