/* filesxml: List Directories and Files answers parsed by xmlstream with the grammar
 * below. An answer looks like
 *   <EnumerationResults ShareName=".." DirectoryPath=".."><Marker/><MaxResults/>
 *     <Entries>
 *       <File><Name>a.txt</Name><FileId/><Properties><Content-Length>5</Content-Length>
 *         <LastWriteTime>2023-09-25T12:43:08.6337775Z</LastWriteTime>
 *         <Last-Modified>Mon, 25 Sep 2023 12:43:08 GMT</Last-Modified>
 *         <Etag>"0x8DBBDC4F8AC4AEF"</Etag></Properties><Attributes/></File>
 *       <Directory><Name>d</Name><Properties>...</Properties></Directory>
 *     </Entries><NextMarker/></EnumerationResults>
 * (the Etag is quoted there, unlike List Blobs'; an unquoted one is quoted here).
 */
#include "cache/store/filesxml.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/base/util.h"
#include "cache/store/azreq.h"
#include "cache/store/http.h"
#include "cache/store/listxml.h"
#include "cache/store/xmlstream.h"

enum filesxml_node {
	N_ROOT = XMLSTREAM_FIRST_KIND, /* EnumerationResults */
	N_NEXT_MARKER,  /* EnumerationResults/NextMarker */
	N_ENTRIES,      /* EnumerationResults/Entries */
	N_FILE,         /* Entries/File */
	N_DIRECTORY,    /* Entries/Directory */
	N_NAME,         /* File/Name or Directory/Name */
	N_PROPERTIES,   /* File/Properties or Directory/Properties */
	N_LENGTH,       /* Properties/Content-Length */
	N_MODIFIED,     /* Properties/Last-Modified */
	N_WRITE_TIME,   /* Properties/LastWriteTime */
	N_ETAG,         /* Properties/Etag */
};

#define NAME_TEXT (XMLSTREAM_TEXT | XMLSTREAM_WHOLE | XMLSTREAM_ENCODED)

static const struct xmlstream_rule filesxml_rules[] = {
	{ XMLSTREAM_DOCUMENT, N_ROOT, 0, "EnumerationResults" },
	{ N_ROOT, N_ENTRIES, 0, "Entries" },
	{ N_ROOT, N_NEXT_MARKER, XMLSTREAM_MARKER, "NextMarker" },
	{ N_ENTRIES, N_FILE, 0, "File" },
	{ N_ENTRIES, N_DIRECTORY, 0, "Directory" },
	{ N_FILE, N_NAME, NAME_TEXT, "Name" },
	{ N_FILE, N_PROPERTIES, 0, "Properties" },
	{ N_DIRECTORY, N_NAME, NAME_TEXT, "Name" },
	{ N_DIRECTORY, N_PROPERTIES, 0, "Properties" },
	{ N_PROPERTIES, N_LENGTH, XMLSTREAM_TEXT, "Content-Length" },
	{ N_PROPERTIES, N_MODIFIED, XMLSTREAM_TEXT, "Last-Modified" },
	{ N_PROPERTIES, N_WRITE_TIME, XMLSTREAM_TEXT, "LastWriteTime" },
	{ N_PROPERTIES, N_ETAG, XMLSTREAM_TEXT, "Etag" },
};

/* Where a parser's entries go. */
struct filesxml_sink {
	store_list_fn fn;
	void *ctx;
};

/* What a parser's callbacks build: its state, which starts with its sink. */
struct filesxml_state {
	struct filesxml_sink sink;
	size_t entries;

	/* the entry being built; entry.name points at name */
	struct store_entry entry;
	bool have_name, have_length, have_write_time;
	char name[XMLSTREAM_TEXT_MAX + 1];
};

int filesxml_check_name(const char *name)
{
	if (!name[0] || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if (util_utf8_chars(name) > FILESXML_NAME_MAX_CHARS)
		return -ENAMETOOLONG;
	return 0;
}

/* The Etag of a listing as HTTP headers carry it: quoted. 0, or -EBADMSG. */
static int copy_etag(const char *value, char *out, size_t outlen)
{
	size_t len = strlen(value);

	if (value[0] == '"') {
		if (len >= outlen || !azreq_etag_ok(value))
			return -EBADMSG;
		memcpy(out, value, len + 1);
		return 0;
	}
	if (!len || len + 2 >= outlen || strchr(value, '"'))
		return -EBADMSG;
	out[0] = '"';
	memcpy(out + 1, value, len);
	out[len + 1] = '"';
	out[len + 2] = '\0';
	return 0;
}

static int on_open(void *state, int kind)
{
	struct filesxml_state *p = state;

	if (kind != N_FILE && kind != N_DIRECTORY)
		return 0;
	if (++p->entries > FILESXML_ENTRIES_MAX)
		return -EBADMSG;
	memset(&p->entry, 0, sizeof(p->entry));
	p->entry.attr.is_dir = kind == N_DIRECTORY;
	p->have_name = false;
	p->have_length = false;
	p->have_write_time = false;
	return 0;
}

static int on_text(void *state, int kind, char *text, size_t len, bool overflow)
{
	struct filesxml_state *p = state;
	struct store_attr *attr = &p->entry.attr;
	int64_t modified;
	char *value;
	int err;

	if (kind == N_NAME) {
		err = filesxml_check_name(text);
		if (err)
			return err == -EINVAL ? -EBADMSG : err;
		memcpy(p->name, text, len + 1);
		p->have_name = true;
		return 0;
	}
	if (overflow)
		return -EBADMSG;
	value = xmlstream_trim(text);
	switch (kind) {
	case N_LENGTH:
		p->have_length = true;
		return http_parse_u64(value, &attr->size) ? -EBADMSG : 0;
	case N_MODIFIED:
		if (http_parse_date(value, &modified))
			return -EBADMSG;
		if (!p->have_write_time)
			attr->mtime = modified;
		return 0;
	case N_WRITE_TIME:
		p->have_write_time = true;
		return filesxml_parse_time(value, &attr->mtime, &attr->mtime_nsec) ? -EBADMSG
										   : 0;
	case N_ETAG:
		return copy_etag(value, attr->etag, sizeof(attr->etag));
	default:
		return 0;
	}
}

static int on_close(void *state, int kind)
{
	struct filesxml_state *p = state;

	if (kind != N_FILE && kind != N_DIRECTORY)
		return 0;
	if (!p->have_name || (kind == N_FILE && !p->have_length))
		return -EBADMSG;
	if (kind == N_DIRECTORY)
		p->entry.attr.size = 0;
	p->entry.name = p->name;
	return p->sink.fn(p->sink.ctx, &p->entry);
}

static const struct xmlstream_grammar filesxml_grammar = {
	.rules = filesxml_rules,
	.nrules = sizeof(filesxml_rules) / sizeof(filesxml_rules[0]),
	.state_size = sizeof(struct filesxml_state),
	.on_open = on_open,
	.on_close = on_close,
	.on_text = on_text,
};

int filesxml_new(store_list_fn fn, void *ctx, struct xmlstream **out)
{
	struct filesxml_sink sink = { .fn = fn, .ctx = ctx };

	*out = NULL;
	return fn ? xmlstream_new(&filesxml_grammar, &sink, sizeof(sink), out) : -EINVAL;
}

/* n decimal digits at s, nothing else: true and *out set, or false. */
static bool fixed_digits(const char *s, int n, int *out)
{
	int value = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		value = value * 10 + (s[i] - '0');
	}
	*out = value;
	return true;
}

int filesxml_parse_time(const char *s, int64_t *sec, uint32_t *nsec)
{
	struct tm tm = { 0 };
	char seconds[16]; /* "SS" or "SS.FFFFFFFFF" */
	const char *zone;
	int64_t whole;
	uint32_t frac;
	size_t len;

	/* YYYY-MM-DDTHH:MM: then the seconds, their fraction and Z */
	if (strlen(s) < 20 || !fixed_digits(s, 4, &tm.tm_year) || s[4] != '-' ||
	    !fixed_digits(s + 5, 2, &tm.tm_mon) || s[7] != '-' ||
	    !fixed_digits(s + 8, 2, &tm.tm_mday) || s[10] != 'T' ||
	    !fixed_digits(s + 11, 2, &tm.tm_hour) || s[13] != ':' ||
	    !fixed_digits(s + 14, 2, &tm.tm_min) || s[16] != ':' ||
	    (s[19] != '.' && s[19] != 'Z'))
		return -EINVAL;
	zone = strchr(s + 17, 'Z');
	if (!zone || zone[1])
		return -EINVAL;
	len = (size_t)(zone - (s + 17));
	if (len >= sizeof(seconds))
		return -EINVAL;
	memcpy(seconds, s + 17, len);
	seconds[len] = '\0';
	/* the seconds and their fraction are the SEC.NSEC of ferry's mtime metadata */
	if (listxml_parse_mtime(seconds, &whole, &frac) || whole > 60 || tm.tm_mon < 1 ||
	    tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
	    tm.tm_min > 59)
		return -EINVAL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	tm.tm_sec = (int)whole;
	*sec = (int64_t)timegm(&tm);
	*nsec = frac;
	return 0;
}
