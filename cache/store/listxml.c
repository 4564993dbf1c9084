/* listxml: List Blobs answers parsed with libxml2's SAX2 push parser.
 *
 * Only the element path is tracked (EnumerationResults/Blobs/Blob/..., BlobPrefix/Name,
 * NextMarker); each entry goes to the callback when its end tag arrives. Text of the
 * elements we keep is gathered in a bounded buffer, as libxml2 may hand it over in
 * several pieces. A DOCTYPE is refused, so no entity but the predefined five exists.
 * The body is taken as UTF-8 (what Azure and Azurite send), its BOM dropped here: so
 * libxml2 never guesses an encoding and never reaches iconv, whose errors it would
 * print to stderr past our error handler.
 */
#include "cache/store/listxml.h"

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

#include "cache/store/http.h"
#include "cache/store/url.h"

/* Longest text kept from one element. Blob names are at most 1024 characters, which
 * is up to ~3 KiB of UTF-8 and ~9 KiB once percent-encoded (Encoded="true"); Azure's
 * opaque markers embed a name in base64. Longer names or markers: -ENAMETOOLONG. */
#define LISTXML_TEXT_MAX 16384
/* Element depth whose kind is remembered; deeper elements are only counted. */
#define LISTXML_DEPTH_MAX 8
#define LISTXML_ETAG_MAX 256

enum listxml_node {
	N_DOCUMENT,     /* depth 0: outside the root */
	N_OTHER,        /* anything we ignore, and all it contains */
	N_ROOT,         /* EnumerationResults */
	N_NEXT_MARKER,  /* EnumerationResults/NextMarker */
	N_BLOBS,        /* EnumerationResults/Blobs */
	N_BLOB,         /* Blobs/Blob */
	N_PREFIX,       /* Blobs/BlobPrefix */
	N_NAME,         /* Blob/Name or BlobPrefix/Name */
	N_PROPERTIES,   /* Blob/Properties */
	N_LENGTH,       /* Properties/Content-Length */
	N_MTIME,        /* Properties/Last-Modified */
	N_ETAG,         /* Properties/Etag */
	N_METADATA,     /* Blob/Metadata */
	N_IS_FOLDER,    /* Metadata/hdi_isfolder */
	N_IS_SYMLINK,   /* Metadata/is_symlink */
	N_META_MTIME,   /* Metadata/ferry_mtime */
};

struct listxml {
	xmlParserCtxtPtr ctxt;
	listxml_fn fn;
	void *ctx;
	int err;           /* first error or the callback's stop value; sticky */
	bool finished;
	bool bom_done;     /* the start of the body was checked for a UTF-8 BOM */
	unsigned bom_len;  /* bytes of a BOM seen so far */
	bool saw_root;     /* the root element was EnumerationResults */
	unsigned depth;
	unsigned char stack[LISTXML_DEPTH_MAX + 1]; /* enum listxml_node per depth */

	bool name_encoded; /* the open <Name> has Encoded="true" */
	bool text_overflow;
	size_t text_len;
	char text[LISTXML_TEXT_MAX + 1];

	/* the entry being built; item's strings point at name and etag */
	struct listxml_item item;
	bool have_name;
	char name[LISTXML_TEXT_MAX + 1];
	char etag[LISTXML_ETAG_MAX];

	char marker[LISTXML_TEXT_MAX + 1];
};

static pthread_once_t listxml_init_once = PTHREAD_ONCE_INIT;

static void listxml_init(void)
{
	xmlInitParser();
}

static void listxml_fail(struct listxml *p, int err)
{
	if (!p->err)
		p->err = err;
	xmlStopParser(p->ctxt);
}

static bool is_capture(enum listxml_node kind)
{
	return kind == N_NAME || kind == N_LENGTH || kind == N_MTIME || kind == N_ETAG ||
	       kind == N_IS_FOLDER || kind == N_IS_SYMLINK || kind == N_META_MTIME ||
	       kind == N_NEXT_MARKER;
}

static enum listxml_node child_kind(enum listxml_node parent, const char *name)
{
	switch (parent) {
	case N_DOCUMENT:
		return !strcmp(name, "EnumerationResults") ? N_ROOT : N_OTHER;
	case N_ROOT:
		if (!strcmp(name, "Blobs"))
			return N_BLOBS;
		return !strcmp(name, "NextMarker") ? N_NEXT_MARKER : N_OTHER;
	case N_BLOBS:
		if (!strcmp(name, "Blob"))
			return N_BLOB;
		return !strcmp(name, "BlobPrefix") ? N_PREFIX : N_OTHER;
	case N_BLOB:
		if (!strcmp(name, "Name"))
			return N_NAME;
		if (!strcmp(name, "Properties"))
			return N_PROPERTIES;
		return !strcmp(name, "Metadata") ? N_METADATA : N_OTHER;
	case N_PREFIX:
		return !strcmp(name, "Name") ? N_NAME : N_OTHER;
	case N_PROPERTIES:
		if (!strcmp(name, "Content-Length"))
			return N_LENGTH;
		if (!strcmp(name, "Last-Modified"))
			return N_MTIME;
		return !strcmp(name, "Etag") ? N_ETAG : N_OTHER;
	case N_METADATA:
		if (!strcasecmp(name, "hdi_isfolder"))
			return N_IS_FOLDER;
		if (!strcasecmp(name, "is_symlink"))
			return N_IS_SYMLINK;
		return !strcasecmp(name, "ferry_mtime") ? N_META_MTIME : N_OTHER;
	default:
		return N_OTHER;
	}
}

static enum listxml_node current_kind(const struct listxml *p)
{
	return p->depth <= LISTXML_DEPTH_MAX ? (enum listxml_node)p->stack[p->depth] : N_OTHER;
}

/* The text with surrounding blanks cut off (in place). */
static char *trimmed_text(struct listxml *p)
{
	char *s = p->text;
	size_t len = p->text_len;

	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
		       s[len - 1] == '\n'))
		len--;
	s[len] = '\0';
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	return s;
}

static void on_start(void *ctx, const xmlChar *localname, const xmlChar *prefix,
		     const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
		     int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	struct listxml *p = ctx;
	enum listxml_node kind;
	int i;

	(void)prefix;
	(void)uri;
	(void)nb_namespaces;
	(void)namespaces;
	(void)nb_defaulted;
	if (p->err)
		return;
	kind = child_kind(current_kind(p), (const char *)localname);
	p->depth++; /* libxml2 refuses nesting deeper than 256 */
	if (p->depth <= LISTXML_DEPTH_MAX)
		p->stack[p->depth] = (unsigned char)kind;
	if (kind == N_ROOT)
		p->saw_root = true;

	if (kind == N_BLOB || kind == N_PREFIX) {
		memset(&p->item, 0, sizeof(p->item));
		p->item.is_prefix = kind == N_PREFIX;
		p->have_name = false;
		p->name[0] = '\0';
		p->etag[0] = '\0';
	}
	if (is_capture(kind)) {
		p->text_len = 0;
		p->text_overflow = false;
	}
	if (kind == N_NAME) {
		p->name_encoded = false;
		for (i = 0; i < nb_attributes; i++) {
			const char *attr = (const char *)attributes[i * 5];
			const char *value = (const char *)attributes[i * 5 + 3];
			const char *end = (const char *)attributes[i * 5 + 4];

			if (!strcmp(attr, "Encoded") && end - value == 4 &&
			    !strncasecmp(value, "true", 4))
				p->name_encoded = true;
		}
	}
}

static void on_characters(void *ctx, const xmlChar *ch, int len)
{
	struct listxml *p = ctx;
	enum listxml_node kind = current_kind(p);

	if (p->err || !is_capture(kind) || len <= 0)
		return;
	if ((size_t)len > LISTXML_TEXT_MAX - p->text_len) {
		/* names and markers must be whole; other fields are checked at the end tag */
		if (kind == N_NAME || kind == N_NEXT_MARKER)
			listxml_fail(p, -ENAMETOOLONG);
		p->text_overflow = true;
		return;
	}
	memcpy(p->text + p->text_len, ch, (size_t)len);
	p->text_len += (size_t)len;
}

/* Handles the end of a captured element; 0 or -errno. */
static int end_field(struct listxml *p, enum listxml_node kind)
{
	char *value;

	p->text[p->text_len] = '\0';
	switch (kind) {
	case N_NAME:
		if (p->name_encoded && url_decode(p->text))
			return -EBADMSG;
		if (!p->text[0])
			return -EBADMSG;
		memcpy(p->name, p->text, strlen(p->text) + 1);
		p->have_name = true;
		return 0;
	case N_NEXT_MARKER:
		memcpy(p->marker, p->text, p->text_len + 1);
		return 0;
	case N_IS_FOLDER:
		p->item.hdi_isfolder =
			!p->text_overflow && !strcasecmp(trimmed_text(p), "true");
		return 0;
	case N_IS_SYMLINK:
		p->item.is_symlink = !p->text_overflow && !strcasecmp(trimmed_text(p), "true");
		return 0;
	case N_META_MTIME:
		/* Metadata written by others may hold anything: ignore what does not parse. */
		p->item.has_meta_mtime =
			!p->text_overflow &&
			listxml_parse_mtime(trimmed_text(p), &p->item.meta_mtime,
					    &p->item.meta_mtime_nsec) == 0;
		return 0;
	default:
		break;
	}
	if (p->text_overflow)
		return -EBADMSG;
	value = trimmed_text(p);
	switch (kind) {
	case N_LENGTH:
		return http_parse_u64(value, &p->item.size) ? -EBADMSG : 0;
	case N_MTIME:
		return http_parse_date(value, &p->item.mtime) ? -EBADMSG : 0;
	case N_ETAG:
		if (strlen(value) >= sizeof(p->etag))
			return -EBADMSG;
		memcpy(p->etag, value, strlen(value) + 1);
		return 0;
	default:
		return 0;
	}
}

static void on_end(void *ctx, const xmlChar *localname, const xmlChar *prefix,
		   const xmlChar *uri)
{
	struct listxml *p = ctx;
	enum listxml_node kind = current_kind(p);
	int err = 0;

	(void)localname;
	(void)prefix;
	(void)uri;
	if (p->err || p->depth == 0)
		return;
	if (is_capture(kind)) {
		err = end_field(p, kind);
	} else if (kind == N_BLOB || kind == N_PREFIX) {
		if (!p->have_name) {
			err = -EBADMSG;
		} else {
			p->item.name = p->name;
			p->item.etag = p->etag;
			err = p->fn(p->ctx, &p->item);
		}
	}
	if (err) {
		listxml_fail(p, err);
		return;
	}
	p->depth--;
}

static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *external_id,
		       const xmlChar *system_id)
{
	(void)name;
	(void)external_id;
	(void)system_id;
	listxml_fail(ctx, -EBADMSG);
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

static xmlSAXHandler listxml_sax = {
	.internalSubset = on_doctype,
	.characters = on_characters,
	.ignorableWhitespace = on_characters,
	.cdataBlock = on_characters,
	.initialized = XML_SAX2_MAGIC,
	.startElementNs = on_start,
	.endElementNs = on_end,
	.serror = on_error,
};

void listxml_free(struct listxml *p)
{
	if (!p)
		return;
	if (p->ctxt->myDoc)
		xmlFreeDoc(p->ctxt->myDoc);
	xmlFreeParserCtxt(p->ctxt);
	free(p);
}

int listxml_new(listxml_fn fn, void *ctx, struct listxml **out)
{
	struct listxml *p;

	*out = NULL;
	if (!fn)
		return -EINVAL;
	pthread_once(&listxml_init_once, listxml_init);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->ctx = ctx;
	p->ctxt = xmlCreatePushParserCtxt(&listxml_sax, p, NULL, 0, NULL);
	if (!p->ctxt) {
		free(p);
		return -ENOMEM;
	}
	/* no network, no DTD, no entity substitution; the body is UTF-8 whatever it says */
	xmlCtxtUseOptions(p->ctxt, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
					   XML_PARSE_IGNORE_ENC);
	if (xmlSwitchEncoding(p->ctxt, XML_CHAR_ENCODING_UTF8)) {
		listxml_free(p);
		return -ENOMEM;
	}
	*out = p;
	return 0;
}

/* One xmlParseChunk call; records and returns the error it leads to. */
static int parse_chunk(struct listxml *p, const char *data, int len, bool terminate)
{
	xmlParseChunk(p->ctxt, data, len, terminate);
	if (p->err)
		return p->err;
	if (p->ctxt->errNo == XML_ERR_NO_MEMORY)
		p->err = -ENOMEM;
	else if (!p->ctxt->wellFormed)
		p->err = -EBADMSG;
	else if (!terminate && p->ctxt->instate == XML_PARSER_EOF)
		p->err = -EBADMSG; /* halted without calling it malformed */
	return p->err;
}

/* Consumes the bytes of a leading UTF-8 BOM; a partial one that turns out not to be
 * a BOM is handed to the parser. Returns 0 or -errno and how much of data it took. */
static int skip_bom(struct listxml *p, const char *data, size_t len, size_t *taken)
{
	static const char bom[3] = { '\xef', '\xbb', '\xbf' };
	size_t i = 0;

	while (!p->bom_done && i < len) {
		if (data[i] != bom[p->bom_len]) {
			p->bom_done = true;
			if (p->bom_len)
				return parse_chunk(p, bom, (int)p->bom_len, false);
			break;
		}
		i++;
		*taken = i;
		if (++p->bom_len == sizeof(bom))
			p->bom_done = true;
	}
	return 0;
}

int listxml_feed(struct listxml *p, const char *data, size_t len)
{
	size_t taken = 0;
	int err;

	if (p->err)
		return p->err;
	if (p->finished)
		return -EINVAL;
	err = skip_bom(p, data, len, &taken);
	if (err)
		return err;
	data += taken;
	len -= taken;
	while (len) {
		int chunk = len > INT_MAX ? INT_MAX : (int)len;

		err = parse_chunk(p, data, chunk, false);
		if (err)
			return err;
		data += chunk;
		len -= (size_t)chunk;
	}
	return 0;
}

int listxml_finish(struct listxml *p, char *next_marker, size_t next_len)
{
	size_t len, taken = 0;
	int err;

	if (next_len)
		next_marker[0] = '\0';
	if (p->err)
		return p->err;
	if (!p->finished) {
		p->finished = true;
		err = skip_bom(p, "", 1, &taken); /* a body cut inside a BOM */
		if (!err)
			err = parse_chunk(p, NULL, 0, true);
		if (err)
			return err;
		if (!p->saw_root || p->depth != 0) {
			p->err = -EBADMSG;
			return p->err;
		}
	}
	len = strlen(p->marker);
	if (len >= next_len)
		return -ENAMETOOLONG;
	memcpy(next_marker, p->marker, len + 1);
	return 0;
}

int listxml_parse_mtime(const char *s, int64_t *sec, uint32_t *nsec)
{
	unsigned long long whole, frac = 0;
	const char *p = s;
	char *end;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	whole = strtoull(p, &end, 10);
	if (errno || whole > INT64_MAX)
		return -EINVAL;
	if (*end == '.') {
		p = end + 1;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		frac = strtoull(p, &end, 10);
		if (errno || end - p > 9 || frac > 999999999ULL)
			return -EINVAL;
		for (long digits = end - p; digits < 9; digits++)
			frac *= 10; /* ".5" is half a second */
	}
	if (*end)
		return -EINVAL;
	*sec = (int64_t)whole;
	*nsec = (uint32_t)frac;
	return 0;
}
