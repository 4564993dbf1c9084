/* xmlstream: libxml2's SAX2 push parser with a grammar.
 *
 * Only the element path is tracked: a stack of kinds, one per depth. Text of the
 * elements the grammar keeps is gathered in a bounded buffer, as libxml2 may hand it
 * over in several pieces, and goes to on_text at the end tag.
 */
#include "cache/store/xmlstream.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlversion.h>

#include "cache/store/url.h"

struct xmlstream {
	xmlParserCtxtPtr ctxt;
	const struct xmlstream_grammar *grammar;
	void *state;       /* the grammar's, grammar->state_size bytes */
	int err;           /* first error or a callback's stop value; sticky */
	bool finished;
	bool bom_done;     /* the start of the body was checked for a UTF-8 BOM */
	unsigned bom_len;  /* bytes of a BOM seen so far */
	bool saw_root;     /* the root element is one the grammar names */
	unsigned depth;
	unsigned char stack[XMLSTREAM_DEPTH_MAX + 1]; /* the kind at each depth */

	bool text_encoded; /* the open text element has Encoded="true" */
	bool text_overflow;
	size_t text_len;
	char text[XMLSTREAM_TEXT_MAX + 1];

	char marker[XMLSTREAM_TEXT_MAX + 1];
};

static pthread_once_t xmlstream_init_once = PTHREAD_ONCE_INIT;

static void xmlstream_init(void)
{
	xmlInitParser();
}

static void xmlstream_fail(struct xmlstream *x, int err)
{
	if (!x->err)
		x->err = err;
	xmlStopParser(x->ctxt);
}

/* The rule for an element called name under one of kind parent, or NULL. */
static const struct xmlstream_rule *find_rule(const struct xmlstream_grammar *g, int parent,
					      const char *name)
{
	for (size_t i = 0; i < g->nrules; i++) {
		const struct xmlstream_rule *r = &g->rules[i];

		if (r->parent != parent)
			continue;
		if (r->flags & XMLSTREAM_ANYCASE ? !strcasecmp(r->name, name)
						 : !strcmp(r->name, name))
			return r;
	}
	return NULL;
}

static unsigned flags_of(const struct xmlstream *x, int kind)
{
	const struct xmlstream_grammar *g = x->grammar;

	for (size_t i = 0; i < g->nrules; i++)
		if (g->rules[i].kind == kind)
			return g->rules[i].flags;
	return 0;
}

char *xmlstream_trim(char *s)
{
	size_t len = strlen(s);

	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
		       s[len - 1] == '\n'))
		len--;
	s[len] = '\0';
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	return s;
}

/* Whether libxml2's attribute array (5 pointers an attribute) says Encoded="true". */
static bool says_encoded(int nb_attributes, const xmlChar **attributes)
{
	for (int i = 0; i < nb_attributes; i++) {
		const char *attr = (const char *)attributes[i * 5];
		const char *value = (const char *)attributes[i * 5 + 3];
		const char *end = (const char *)attributes[i * 5 + 4];

		if (!strcmp(attr, "Encoded") && end - value == 4 && !strncasecmp(value, "true", 4))
			return true;
	}
	return false;
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
		     const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
		     int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	struct xmlstream *x = ctx;
	const struct xmlstream_rule *rule;
	int kind = XMLSTREAM_OTHER, err = 0;

	(void)prefix;
	(void)uri;
	(void)nb_namespaces;
	(void)namespaces;
	(void)nb_defaulted;
	if (x->err)
		return;
	if (x->depth == XMLSTREAM_DEPTH_MAX) {
		xmlstream_fail(x, -EBADMSG);
		return;
	}
	if (x->stack[x->depth] != XMLSTREAM_OTHER) {
		rule = find_rule(x->grammar, x->stack[x->depth], (const char *)localname);
		if (rule)
			kind = rule->kind;
		if (rule && x->depth == 0)
			x->saw_root = true;
	}
	x->stack[++x->depth] = (unsigned char)kind;
	if (kind == XMLSTREAM_OTHER)
		return;
	if (flags_of(x, kind) & (XMLSTREAM_TEXT | XMLSTREAM_MARKER)) {
		x->text_len = 0;
		x->text_overflow = false;
		x->text_encoded = (flags_of(x, kind) & XMLSTREAM_ENCODED) &&
				  says_encoded(nb_attributes, attributes);
	} else if (x->grammar->on_open) {
		err = x->grammar->on_open(x->state, kind);
	}
	if (err)
		xmlstream_fail(x, err);
}

static void on_characters(void *ctx, const xmlChar *ch, int len)
{
	struct xmlstream *x = ctx;
	int kind = x->stack[x->depth];
	unsigned flags;

	if (x->err || kind == XMLSTREAM_OTHER || len <= 0)
		return;
	flags = flags_of(x, kind);
	if (!(flags & (XMLSTREAM_TEXT | XMLSTREAM_MARKER)))
		return;
	if ((size_t)len > XMLSTREAM_TEXT_MAX - x->text_len) {
		if (flags & (XMLSTREAM_WHOLE | XMLSTREAM_MARKER))
			xmlstream_fail(x, -ENAMETOOLONG);
		x->text_overflow = true;
		return;
	}
	memcpy(x->text + x->text_len, ch, (size_t)len);
	x->text_len += (size_t)len;
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
		   const xmlChar *uri)
{
	struct xmlstream *x = ctx;
	int kind = x->stack[x->depth], err = 0;

	(void)localname;
	(void)prefix;
	(void)uri;
	if (x->err || x->depth == 0)
		return;
	if (kind != XMLSTREAM_OTHER && (flags_of(x, kind) & XMLSTREAM_MARKER)) {
		memcpy(x->marker, x->text, x->text_len);
		x->marker[x->text_len] = '\0';
	} else if (kind != XMLSTREAM_OTHER && (flags_of(x, kind) & XMLSTREAM_TEXT)) {
		x->text[x->text_len] = '\0';
		if (x->text_encoded && url_decode(x->text))
			err = -EBADMSG;
		else
			err = x->grammar->on_text(x->state, kind, x->text, strlen(x->text),
						  x->text_overflow);
	} else if (kind != XMLSTREAM_OTHER && x->grammar->on_close) {
		err = x->grammar->on_close(x->state, kind);
	}
	if (err) {
		xmlstream_fail(x, err);
		return;
	}
	x->depth--;
}

static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
		       const xmlChar *system_id)
{
	(void)name;
	(void)external_id;
	(void)system_id;
	xmlstream_fail(ctx, -EBADMSG);
}

#if LIBXML_VERSION >= 21200
static void on_error(void *ctx, const xmlError *error)
#else
static void on_error(void *ctx, xmlErrorPtr error)
#endif
{
	/* libxml2's verdict is read from the context; nothing goes to stderr */
	(void)ctx;
	(void)error;
}

static xmlSAXHandler xmlstream_sax = {
	.internalSubset = on_doctype,
	.characters = on_characters,
	.ignorableWhitespace = on_characters,
	.cdataBlock = on_characters,
	.initialized = XML_SAX2_MAGIC,
	.startElementNs = on_start,
	.endElementNs = on_end,
	.serror = on_error,
};

void xmlstream_free(struct xmlstream *x)
{
	if (!x)
		return;
	if (x->ctxt && x->ctxt->myDoc)
		xmlFreeDoc(x->ctxt->myDoc);
	xmlFreeParserCtxt(x->ctxt);
	free(x->state);
	free(x);
}

int xmlstream_new(const struct xmlstream_grammar *grammar, const void *init,
		  size_t init_len, struct xmlstream **out)
{
	struct xmlstream *x;

	*out = NULL;
	if (!grammar->on_text || init_len > grammar->state_size)
		return -EINVAL;
	pthread_once(&xmlstream_init_once, xmlstream_init);
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->grammar = grammar;
	x->state = calloc(1, grammar->state_size ? grammar->state_size : 1);
	x->ctxt = xmlCreatePushParserCtxt(&xmlstream_sax, x, NULL, 0, NULL);
	if (!x->state || !x->ctxt) {
		xmlstream_free(x);
		return -ENOMEM;
	}
	if (init_len)
		memcpy(x->state, init, init_len);
	/* no network, no DTD, no entity substitution; the body is UTF-8 whatever it says */
	xmlCtxtUseOptions(x->ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
					   XML_PARSE_IGNORE_ENC);
	if (xmlSwitchEncoding(x->ctxt, XML_CHAR_ENCODING_UTF8)) {
		xmlstream_free(x);
		return -ENOMEM;
	}
	*out = x;
	return 0;
}

/* One xmlParseChunk call; records and returns the error it leads to. */
static int parse_chunk(struct xmlstream *x, const char *data, int len, bool terminate)
{
	xmlParseChunk(x->ctxt, data, len, terminate);
	if (x->err)
		return x->err;
	if (x->ctxt->errNo == XML_ERR_NO_MEMORY)
		x->err = -ENOMEM;
	else if (!x->ctxt->wellFormed)
		x->err = -EBADMSG;
	else if (!terminate && x->ctxt->instate == XML_PARSER_EOF)
		x->err = -EBADMSG; /* halted without calling it malformed */
	return x->err;
}

/* Consumes the bytes of a leading UTF-8 BOM; a partial one that turns out not to be
 * a BOM is handed to the parser. Returns 0 or -errno and how much of data it took. */
static int skip_bom(struct xmlstream *x, const char *data, size_t len, size_t *taken)
{
	static const char bom[3] = { '\xef', '\xbb', '\xbf' };
	size_t i = 0;

	while (!x->bom_done && i < len) {
		if (data[i] != bom[x->bom_len]) {
			x->bom_done = true;
			if (x->bom_len)
				return parse_chunk(x, bom, (int)x->bom_len, false);
			break;
		}
		i++;
		*taken = i;
		if (++x->bom_len == sizeof(bom))
			x->bom_done = true;
	}
	return 0;
}

int xmlstream_feed(struct xmlstream *x, const char *data, size_t len)
{
	size_t taken = 0;
	int err;

	if (x->err)
		return x->err;
	if (x->finished)
		return -EINVAL;
	err = skip_bom(x, data, len, &taken);
	if (err)
		return err;
	data += taken;
	len -= taken;
	while (len) {
		int chunk = len > INT_MAX ? INT_MAX : (int)len;

		err = parse_chunk(x, data, chunk, false);
		if (err)
			return err;
		data += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

int xmlstream_finish(struct xmlstream *x, char *next_marker, size_t next_len)
{
	size_t taken = 0, len;
	int err = x->err;

	if (next_len)
		next_marker[0] = '\0';
	if (!err && !x->finished) {
		x->finished = true;
		err = skip_bom(x, "", 1, &taken); /* a body cut inside a BOM */
		if (!err)
			err = parse_chunk(x, NULL, 0, true);
		if (!err && (!x->saw_root || x->depth != 0))
			err = x->err = -EBADMSG;
	}
	if (err)
		return err;
	len = strlen(x->marker);
	if (len >= next_len)
		return -ENAMETOOLONG;
	memcpy(next_marker, x->marker, len + 1);
	return 0;
}
