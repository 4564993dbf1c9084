/* listxml: List Blobs answers parsed by xmlstream with the grammar below; each entry
 * goes to the callback when its end tag arrives. */
#include "cache/store/listxml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache/store/http.h"
#include "cache/store/xmlstream.h"

#define LISTXML_ETAG_MAX 256

enum listxml_node {
	N_ROOT = XMLSTREAM_FIRST_KIND, /* EnumerationResults */
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

#define NAME_TEXT (XMLSTREAM_TEXT | XMLSTREAM_WHOLE | XMLSTREAM_ENCODED)
#define META_TEXT (XMLSTREAM_TEXT | XMLSTREAM_ANYCASE)

static const struct xmlstream_rule listxml_rules[] = {
	{ XMLSTREAM_DOCUMENT, N_ROOT, 0, "EnumerationResults" },
	{ N_ROOT, N_BLOBS, 0, "Blobs" },
	{ N_ROOT, N_NEXT_MARKER, XMLSTREAM_MARKER, "NextMarker" },
	{ N_BLOBS, N_BLOB, 0, "Blob" },
	{ N_BLOBS, N_PREFIX, 0, "BlobPrefix" },
	{ N_BLOB, N_NAME, NAME_TEXT, "Name" },
	{ N_BLOB, N_PROPERTIES, 0, "Properties" },
	{ N_BLOB, N_METADATA, 0, "Metadata" },
	{ N_PREFIX, N_NAME, NAME_TEXT, "Name" },
	{ N_PROPERTIES, N_LENGTH, XMLSTREAM_TEXT, "Content-Length" },
	{ N_PROPERTIES, N_MTIME, XMLSTREAM_TEXT, "Last-Modified" },
	{ N_PROPERTIES, N_ETAG, XMLSTREAM_TEXT, "Etag" },
	{ N_METADATA, N_IS_FOLDER, META_TEXT, "hdi_isfolder" },
	{ N_METADATA, N_IS_SYMLINK, META_TEXT, "is_symlink" },
	{ N_METADATA, N_META_MTIME, META_TEXT, "ferry_mtime" },
};

/* Where a parser's entries go. */
struct listxml_sink {
	listxml_fn fn;
	void *ctx;
};

/* What a parser's callbacks build: its state, which starts with its sink. */
struct listxml_state {
	struct listxml_sink sink;

	/* the entry being built; item's strings point at name and etag */
	struct listxml_item item;
	bool have_name;
	char name[XMLSTREAM_TEXT_MAX + 1];
	char etag[LISTXML_ETAG_MAX];
};

static int on_open(void *state, int kind)
{
	struct listxml_state *p = state;

	if (kind == N_BLOB || kind == N_PREFIX) {
		memset(&p->item, 0, sizeof(p->item));
		p->item.is_prefix = kind == N_PREFIX;
		p->have_name = false;
		p->name[0] = '\0';
		p->etag[0] = '\0';
	}
	return 0;
}

static int on_text(void *state, int kind, char *text, size_t len, bool overflow)
{
	struct listxml_state *p = state;
	char *value;

	switch (kind) {
	case N_NAME:
		if (!text[0])
			return -EBADMSG;
		memcpy(p->name, text, len + 1);
		p->have_name = true;
		return 0;
	case N_IS_FOLDER:
		p->item.hdi_isfolder = !overflow && !strcasecmp(xmlstream_trim(text), "true");
		return 0;
	case N_IS_SYMLINK:
		p->item.is_symlink = !overflow && !strcasecmp(xmlstream_trim(text), "true");
		return 0;
	case N_META_MTIME:
		/* Metadata written by others may hold anything: ignore what does not parse. */
		p->item.has_meta_mtime =
			!overflow && listxml_parse_mtime(xmlstream_trim(text), &p->item.meta_mtime,
							 &p->item.meta_mtime_nsec) == 0;
		return 0;
	default:
		break;
	}
	if (overflow)
		return -EBADMSG;
	value = xmlstream_trim(text);
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

static int on_close(void *state, int kind)
{
	struct listxml_state *p = state;

	if (kind != N_BLOB && kind != N_PREFIX)
		return 0;
	if (!p->have_name)
		return -EBADMSG;
	p->item.name = p->name;
	p->item.etag = p->etag;
	return p->sink.fn(p->sink.ctx, &p->item);
}

static const struct xmlstream_grammar listxml_grammar = {
	.rules = listxml_rules,
	.nrules = sizeof(listxml_rules) / sizeof(listxml_rules[0]),
	.state_size = sizeof(struct listxml_state),
	.on_open = on_open,
	.on_close = on_close,
	.on_text = on_text,
};

int listxml_new(listxml_fn fn, void *ctx, struct xmlstream **out)
{
	struct listxml_sink sink = { .fn = fn, .ctx = ctx };

	*out = NULL;
	return fn ? xmlstream_new(&listxml_grammar, &sink, sizeof(sink), out) : -EINVAL;
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
