/* Unit tests of filesxml: List Directories and Files pages parsed whole, byte by byte,
 * broken and hostile, and the File service's times. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#include "cache/store/filesxml.h"
#include "unit.h"
#include "xmlfeed.h"

/* What Azure answers for ?restype=directory&comp=list&include=Timestamps%2CETag with
 * x-ms-file-extended-info: a BOM, FileIds, SMB attributes, quoted ETags, 7-digit
 * times, an Encoded name (it holds U+FFFE, which XML cannot carry), a CDATA name and
 * an opaque NextMarker. */
static const char azure_page[] =
	"\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	"<EnumerationResults ServiceEndpoint=\"https://acct.file.core.windows.net/\" "
	"ShareName=\"data\" DirectoryPath=\"docs\"><Marker>prev</Marker>"
	"<MaxResults>5000</MaxResults><DirectoryId>13835128424026341376</DirectoryId>"
	"<Entries>"
	"<File><Name>a.txt</Name><FileId>13835093239654252544</FileId><Properties>"
	"<Content-Length>5832374</Content-Length>"
	"<CreationTime>2023-09-25T12:43:05.8483527Z</CreationTime>"
	"<LastAccessTime>2023-09-25T12:43:05.8483527Z</LastAccessTime>"
	"<LastWriteTime>2023-09-25T12:43:08.6337775Z</LastWriteTime>"
	"<ChangeTime>2023-09-25T12:43:08.6337775Z</ChangeTime>"
	"<Last-Modified>Mon, 25 Sep 2023 12:43:09 GMT</Last-Modified>"
	"<Etag>\"0x8DBBDC4F8AC4AEF\"</Etag></Properties>"
	"<Attributes>Archive</Attributes><PermissionKey>4066528134148476695*1"
	"</PermissionKey></File>"
	"<Directory><Name>img</Name><FileId>12105702186650959872</FileId><Properties>"
	"<CreationTime>2023-10-15T12:03:40.7194774Z</CreationTime>"
	"<LastWriteTime>2023-10-15T12:03:40.7194774Z</LastWriteTime>"
	"<Last-Modified>Sun, 15 Oct 2023 12:03:40 GMT</Last-Modified>"
	"<Etag>\"0x8DBCD76C58C3E96\"</Etag></Properties>"
	"<Attributes>Directory</Attributes></Directory>"
	"<File><Name Encoded=\"true\">c%EF%BF%BEd%2B%25.txt</Name><Properties>"
	"<Content-Length>0</Content-Length>"
	"<Last-Modified>Sat, 29 Feb 2020 23:59:59 GMT</Last-Modified>"
	"<LastWriteTime>2020-02-29T23:59:58Z</LastWriteTime>"
	"<Etag>\"0x8D7\"</Etag></Properties></File>"
	"<File><Name><![CDATA[R&D <notes>.txt]]></Name><Properties>"
	"<Content-Length>18446744073709551615</Content-Length></Properties></File>"
	"<Directory><Name>e f</Name><Properties/></Directory>"
	"</Entries><NextMarker>2!100!MDAwMDQ1IWRvY3MvZSBmITAwMDAyOCE5OTk5LTEyLTMxVDIzOjU5OjU5Ljk5"
	"OTk5OTlaIQ--</NextMarker></EnumerationResults>";

static const char azure_expected[] =
	"F a.txt 5832374 1695645788.633777500 \"0x8DBBDC4F8AC4AEF\"\n"
	"D img 0 1697371420.719477400 \"0x8DBCD76C58C3E96\"\n"
	"F c\xef\xbf\xbe" "d+%.txt 0 1583020798.000000000 \"0x8D7\"\n"
	"F R&D <notes>.txt 18446744073709551615 0.000000000 -\n"
	"D e f 0 0.000000000 -\n";

static const char azure_marker[] =
	"2!100!MDAwMDQ1IWRvY3MvZSBmITAwMDAyOCE5OTk5LTEyLTMxVDIzOjU5OjU5Ljk5OTk5OTlaIQ--";

/* An older answer (no include=, no extended info): names and lengths only, and an
 * unquoted Etag where one is given. */
static const char plain_page[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults "
	"ServiceEndpoint=\"http://127.0.0.1:10004/devstoreaccount1/\" ShareName=\"s\" "
	"DirectoryPath=\"\"><Entries>"
	"<Directory><Name>sub</Name><Properties /></Directory>"
	"<File><Name>x.bin</Name><Properties><Content-Length> 12 </Content-Length>"
	"<Last-Modified>Thu, 01 Jan 1970 00:00:01 GMT</Last-Modified><Etag>0x1</Etag>"
	"</Properties></File>"
	"</Entries><NextMarker /></EnumerationResults>";

static const char plain_expected[] = "D sub 0 0.000000000 -\n"
				     "F x.bin 12 1.000000000 \"0x1\"\n";

/* Collects entries as lines "F|D name size mtime.nsec etag". */
static int collect_fn(void *ctx, const struct store_entry *entry)
{
	const struct store_attr *a = &entry->attr;

	return xmlfeed_addf(ctx, "%c %s %" PRIu64 " %" PRId64 ".%09u %s\n",
			    a->is_dir ? 'D' : 'F', entry->name, a->size, a->mtime,
			    a->mtime_nsec, a->etag[0] ? a->etag : "-");
}

/* xmlfeed_new_fn: a parser whose entries go to collect_fn(). */
static int new_parser(struct xmlfeed_text *c, struct xmlstream **out)
{
	return filesxml_new(collect_fn, c, out);
}

/* xmlfeed_parse() of a NUL-terminated document, whole, with a marker buffer. */
static int parse_text(const char *doc, struct xmlfeed_text *c)
{
	char marker[512];

	return xmlfeed_parse(new_parser, doc, strlen(doc), 0, c, marker, sizeof(marker));
}

/* A one-entry page: <head>NAME</Name>tail. */
static char *page_with_name(const char *name)
{
	static const char head[] = "<EnumerationResults><Entries><File><Name>";
	static const char tail[] = "</Name><Properties><Content-Length>1</Content-Length>"
				   "</Properties></File></Entries></EnumerationResults>";
	size_t len = strlen(head) + strlen(name) + strlen(tail) + 1;
	char *doc = malloc(len);

	if (doc)
		snprintf(doc, len, "%s%s%s", head, name, tail);
	return doc;
}

/* What parsing a one-entry page named name comes to. */
static int parse_name(const char *name, struct xmlfeed_text *c)
{
	char *doc = page_with_name(name);
	int err;

	if (!doc)
		return -ENOMEM;
	err = parse_text(doc, c);
	free(doc);
	return err;
}

static void parses_azure_page_with_files_and_directories(void)
{
	CHECK(xmlfeed_gives(new_parser, azure_page, 0, azure_expected, azure_marker));
}

static void parses_page_without_extended_info(void)
{
	CHECK(xmlfeed_gives(new_parser, plain_page, 0, plain_expected, ""));
}

static void write_time_wins_in_either_order(void)
{
	static const char *const docs[] = {
		"<EnumerationResults><Entries><File><Name>a</Name><Properties>"
		"<Content-Length>1</Content-Length>"
		"<Last-Modified>Mon, 01 Jan 2024 00:00:00 GMT</Last-Modified>"
		"<LastWriteTime>2001-02-03T04:05:06.5Z</LastWriteTime></Properties></File>"
		"</Entries></EnumerationResults>",
		"<EnumerationResults><Entries><File><Name>a</Name><Properties>"
		"<LastWriteTime>2001-02-03T04:05:06.5Z</LastWriteTime>"
		"<Last-Modified>Mon, 01 Jan 2024 00:00:00 GMT</Last-Modified>"
		"<Content-Length>1</Content-Length></Properties></File>"
		"</Entries></EnumerationResults>",
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		CHECK(xmlfeed_gives(new_parser, docs[i], 0, "F a 1 981173106.500000000 -\n", ""));
}

static void empty_listing_and_absent_marker(void)
{
	static const char *const docs[] = {
		"<EnumerationResults><Entries/></EnumerationResults>",
		"<EnumerationResults/>",
		("<EnumerationResults><Entries></Entries><NextMarker></NextMarker>"
		 "</EnumerationResults>"),
	};

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct xmlfeed_text c = { 0 };
		char marker[16] = "junk";

		CHECK(xmlfeed_parse(new_parser, docs[i], strlen(docs[i]), 0, &c, marker,
				    sizeof(marker)) == 0);
		CHECK(c.count == 0);
		CHECK_STR(marker, "");
		xmlfeed_reset(&c);
	}
}

static void byte_at_a_time_gives_same_entries(void)
{
	for (size_t step = 1; step <= 9; step += 2) {
		CHECK(xmlfeed_gives(new_parser, azure_page, step, azure_expected, azure_marker));
		CHECK(xmlfeed_gives(new_parser, plain_page, step, plain_expected, ""));
	}
}

static void names_that_are_not_components_are_refused(void)
{
	static const char *const names[] = {
		"",                /* empty */
		"a/b",             /* a separator */
		"/",
		".",
		"..",
		"a&#47;b",         /* a separator by character reference */
		"&#46;&#46;",      /* ".." by character reference */
		"<![CDATA[..]]>",
		"  ",              /* blanks are a name: kept, see below */
	};

	for (size_t i = 0; i + 1 < sizeof(names) / sizeof(names[0]); i++) {
		struct xmlfeed_text c = { 0 };

		CHECK(parse_name(names[i], &c) == -EBADMSG);
		CHECK(c.count == 0);
		xmlfeed_reset(&c);
	}
	{
		struct xmlfeed_text c = { 0 };

		CHECK(parse_name(names[8], &c) == 0);
		CHECK_STR(c.text, "F    1 0.000000000 -\n");
		xmlfeed_reset(&c);
	}
}

static void encoded_names_are_checked_once_decoded(void)
{
	static const char *const docs[] = {
		"<EnumerationResults><Entries><Directory><Name Encoded=\"true\">a%2Fb</Name>"
		"</Directory></Entries></EnumerationResults>",
		"<EnumerationResults><Entries><Directory><Name Encoded=\"true\">%2E%2E</Name>"
		"</Directory></Entries></EnumerationResults>",
		"<EnumerationResults><Entries><Directory><Name Encoded=\"true\">a%00b</Name>"
		"</Directory></Entries></EnumerationResults>",
		"<EnumerationResults><Entries><Directory><Name Encoded=\"true\">a%zz</Name>"
		"</Directory></Entries></EnumerationResults>",
		"<EnumerationResults><Entries><Directory><Name Encoded=\"true\"></Name>"
		"</Directory></Entries></EnumerationResults>",
	};
	struct xmlfeed_text c = { 0 };

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		CHECK(parse_text(docs[i], &c) == -EBADMSG);
		CHECK(c.count == 0);
		xmlfeed_reset(&c);
	}
	/* not encoded: the escape is part of the name */
	CHECK(parse_text("<EnumerationResults><Entries><Directory><Name Encoded=\"false\">"
			 "a%2Fb</Name></Directory></Entries></EnumerationResults>",
			 &c) == 0);
	CHECK_STR(c.text, "D a%2Fb 0 0.000000000 -\n");
	xmlfeed_reset(&c);
}

static void names_longer_than_255_characters_are_refused(void)
{
	char name[256 * 2 + 1];
	struct xmlfeed_text c = { 0 };

	memset(name, 'n', 255);
	name[255] = '\0';
	CHECK(parse_name(name, &c) == 0);
	CHECK(c.count == 1);
	xmlfeed_reset(&c);
	name[255] = 'n';
	name[256] = '\0';
	CHECK(parse_name(name, &c) == -ENAMETOOLONG);
	CHECK(c.count == 0);
	xmlfeed_reset(&c);

	/* characters, not bytes: 255 two-byte characters are fine, 256 are not */
	for (int i = 0; i < 256; i++)
		memcpy(name + 2 * i, "\xc3\xa9", 2);
	name[2 * 255] = '\0';
	CHECK(parse_name(name, &c) == 0);
	xmlfeed_reset(&c);
	name[2 * 255] = '\xc3';
	name[2 * 256] = '\0';
	CHECK(parse_name(name, &c) == -ENAMETOOLONG);
	xmlfeed_reset(&c);

	CHECK(filesxml_check_name("ok") == 0);
	CHECK(filesxml_check_name("..") == -EINVAL);
	CHECK(filesxml_check_name("a/b") == -EINVAL);
}

static void huge_name_stops_the_parse_early(void)
{
	struct xmlfeed_text c = { 0 };
	struct xmlstream *p;
	int kib;

	CHECK(filesxml_new(collect_fn, &c, &p) == 0);
	CHECK(xmlfeed_endless_text(p, "<EnumerationResults><Entries><File><Name>", 1024,
				   &kib) == -ENAMETOOLONG);
	CHECK(kib <= 20); /* refused within the text bound, not after a megabyte */
	CHECK(c.count == 0);
	xmlfeed_reset(&c);
}

static void bad_entries_are_ebadmsg(void)
{
	static const char *const docs[] = {
		/* a File without its length */
		"<EnumerationResults><Entries><File><Name>a</Name></File></Entries>"
		"</EnumerationResults>",
		"<EnumerationResults><Entries><File><Name>a</Name><Properties/></File>"
		"</Entries></EnumerationResults>",
		/* no Name */
		"<EnumerationResults><Entries><Directory><Properties/></Directory></Entries>"
		"</EnumerationResults>",
		/* numbers, times and ETags that are not */
		"<EnumerationResults><Entries><File><Name>a</Name><Properties>"
		"<Content-Length>-1</Content-Length></Properties></File></Entries>"
		"</EnumerationResults>",
		"<EnumerationResults><Entries><File><Name>a</Name><Properties>"
		"<Content-Length>18446744073709551616</Content-Length></Properties></File>"
		"</Entries></EnumerationResults>",
		"<EnumerationResults><Entries><Directory><Name>a</Name><Properties>"
		"<Last-Modified>yesterday</Last-Modified></Properties></Directory></Entries>"
		"</EnumerationResults>",
		"<EnumerationResults><Entries><Directory><Name>a</Name><Properties>"
		"<LastWriteTime>2023-09-25 12:43:08Z</LastWriteTime></Properties></Directory>"
		"</Entries></EnumerationResults>",
		"<EnumerationResults><Entries><Directory><Name>a</Name><Properties>"
		"<Etag>\"0x1</Etag></Properties></Directory></Entries></EnumerationResults>",
		"<EnumerationResults><Entries><Directory><Name>a</Name><Properties>"
		"<Etag>\"0x\"1\"</Etag></Properties></Directory></Entries></EnumerationResults>",
		"<EnumerationResults><Entries><Directory><Name>a</Name><Properties>"
		"<Etag>0x\"1</Etag></Properties></Directory></Entries></EnumerationResults>",
		"<EnumerationResults><Entries><Directory><Name>a</Name><Properties>"
		"<Etag>0x1234567890123456789012345678901234567890123456789012345678901234567890"
		"12345678</Etag></Properties></Directory></Entries></EnumerationResults>",
		/* well-formed, but not a listing */
		"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ShareNotFound</Code>"
		"<Message>no</Message></Error>",
	};

	CHECK(xmlfeed_refuses(new_parser, docs, sizeof(docs) / sizeof(docs[0]), -EBADMSG));
}

static void entity_tricks_are_refused(void)
{
	static const char *const docs[] = {
		/* an internal entity */
		"<?xml version=\"1.0\"?><!DOCTYPE EnumerationResults [<!ENTITY a \"x\">]>"
		"<EnumerationResults><Entries><Directory><Name>&a;</Name></Directory>"
		"</Entries></EnumerationResults>",
		/* a billion laughs */
		"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
		"<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
		"<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
		"<EnumerationResults><Entries><Directory><Name>&lol3;</Name></Directory>"
		"</Entries></EnumerationResults>",
		/* an external entity */
		"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		"<EnumerationResults><Entries><Directory><Name>&x;</Name></Directory>"
		"</Entries></EnumerationResults>",
		/* an external DTD */
		"<!DOCTYPE EnumerationResults SYSTEM \"http://127.0.0.1:1/x.dtd\">"
		"<EnumerationResults/>",
		/* an entity never declared, a NUL by reference */
		"<EnumerationResults><Entries><Directory><Name>a&x;</Name></Directory>"
		"</Entries></EnumerationResults>",
		"<EnumerationResults><Entries><Directory><Name>a&#0;b</Name></Directory>"
		"</Entries></EnumerationResults>",
	};

	CHECK(xmlfeed_refuses(new_parser, docs, sizeof(docs) / sizeof(docs[0]), -EBADMSG));
}

/* A page of n entries: every tenth a Directory. */
static char *page_of(int n, size_t *len_out)
{
	size_t cap = (size_t)n * 200 + 256, len = 0;
	char *doc = malloc(cap);

	if (!doc)
		return NULL;
	len += (size_t)snprintf(doc, cap, "<EnumerationResults><Entries>");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(doc + len, cap - len,
					i % 10 ? "<File><Name>f%05d</Name><Properties>"
						 "<Content-Length>%d</Content-Length></Properties>"
						 "</File>"
					       : "<Directory><Name>d%05d</Name><Properties/>"
						 "</Directory>",
					i, i);
	len += (size_t)snprintf(doc + len, cap - len,
				"</Entries><NextMarker>f%05d</NextMarker></EnumerationResults>",
				n - 1);
	*len_out = len;
	return doc;
}

static void page_of_5000_entries_but_not_more(void)
{
	struct xmlfeed_text c = { 0 };
	char marker[64];
	size_t len;
	char *doc = page_of(5000, &len);

	CHECK(doc != NULL);
	if (!doc)
		return;
	CHECK(xmlfeed_parse(new_parser, doc, len, 16384, &c, marker, sizeof(marker)) == 0);
	CHECK(c.count == 5000);
	CHECK_STR(marker, "f04999");
	CHECK(!strncmp(c.text, "D d00000 0 ", 11));
	xmlfeed_reset(&c);
	free(doc);

	doc = page_of(5001, &len);
	CHECK(doc != NULL);
	if (!doc)
		return;
	CHECK(xmlfeed_parse(new_parser, doc, len, 16384, &c, marker, sizeof(marker)) == -EBADMSG);
	CHECK(c.count == 5000);
	xmlfeed_reset(&c);
	free(doc);
}

static void deep_nesting_is_refused(void)
{
	static const int depths[] = { 29, 40, 100000 };

	for (size_t k = 0; k < sizeof(depths) / sizeof(depths[0]); k++) {
		int depth = depths[k];
		size_t cap = (size_t)depth * 8 + 256, len = 0;
		char *doc = malloc(cap);
		struct xmlfeed_text c = { 0 };
		char marker[16];
		int err;

		CHECK(doc != NULL);
		if (!doc)
			return;
		/* root, Entries, File, then depth levels of an unknown element */
		len += (size_t)snprintf(doc, cap, "<EnumerationResults><Entries><File>"
						  "<Name>a</Name><Properties><Content-Length>1"
						  "</Content-Length></Properties>");
		for (int i = 0; i < depth; i++)
			len += (size_t)snprintf(doc + len, cap - len, "<x>");
		for (int i = 0; i < depth; i++)
			len += (size_t)snprintf(doc + len, cap - len, "</x>");
		len += (size_t)snprintf(doc + len, cap - len,
					"</File></Entries></EnumerationResults>");
		err = xmlfeed_parse(new_parser, doc, len, 4096, &c, marker, sizeof(marker));
		if (depth + 3 <= XMLSTREAM_DEPTH_MAX) {
			CHECK(err == 0);
			CHECK(c.count == 1);
		} else {
			CHECK(err == -EBADMSG);
			CHECK(c.count == 0);
		}
		xmlfeed_reset(&c);
		free(doc);
	}
}

static void truncated_document_fails(void)
{
	size_t len = strlen(azure_page);
	int failures = 0;

	for (size_t cut = 0; cut < len; cut++) {
		struct xmlfeed_text c = { 0 };
		char marker[256];

		if (xmlfeed_parse(new_parser, azure_page, cut, 0, &c, marker, sizeof(marker)) !=
		    -EBADMSG)
			failures++;
		xmlfeed_reset(&c);
	}
	CHECK(failures == 0);
}

static void callback_nonzero_stops_parse(void)
{
	struct xmlfeed_text c = { 0 };
	struct xmlstream *p;
	char marker[256];

	c.stop_after = 2;
	c.stop_value = -ECANCELED;
	CHECK(filesxml_new(collect_fn, &c, &p) == 0);
	CHECK(xmlstream_feed(p, azure_page, strlen(azure_page)) == -ECANCELED);
	CHECK(xmlstream_feed(p, "x", 1) == -ECANCELED);
	CHECK(xmlstream_finish(p, marker, sizeof(marker)) == -ECANCELED);
	CHECK(c.count == 2);
	xmlstream_free(p);
	xmlfeed_reset(&c);

	c.stop_after = 3;
	c.stop_value = 7;
	CHECK(xmlfeed_parse(new_parser, azure_page, strlen(azure_page), 1, &c, marker,
			    sizeof(marker)) == 7);
	CHECK(c.count == 3);
	xmlfeed_reset(&c);

	CHECK(filesxml_new(NULL, NULL, &p) == -EINVAL);
	CHECK(p == NULL);
}

static void marker_too_long_is_enametoolong(void)
{
	struct xmlfeed_text c = { 0 };
	char marker[256];
	size_t need = strlen(azure_marker) + 1;

	CHECK(xmlfeed_parse(new_parser, azure_page, strlen(azure_page), 0, &c, marker,
			    need - 1) == -ENAMETOOLONG);
	xmlfeed_reset(&c);
	CHECK(xmlfeed_parse(new_parser, azure_page, strlen(azure_page), 0, &c, marker, need) == 0);
	CHECK_STR(marker, azure_marker);
	xmlfeed_reset(&c);
}

/* Collects only the entries that are not what filesxml promises: a name the share
 * can hold, a quoted ETag or none. */
static int collect_bad(void *ctx, const struct store_entry *entry)
{
	if (filesxml_check_name(entry->name) == 0 &&
	    (!entry->attr.etag[0] || entry->attr.etag[0] == '"'))
		return 0;
	return xmlfeed_addf(ctx, "%s %s\n", entry->name, entry->attr.etag);
}

/* xmlfeed_new_fn: a parser whose broken promises go to collect_bad(). */
static int new_checking_parser(struct xmlfeed_text *c, struct xmlstream **out)
{
	return filesxml_new(collect_bad, c, out);
}

/* Whatever the damage, an answer is 0 or an error, and every entry is as promised. */
static void mutated_pages_never_crash(void)
{
	uint32_t state = 0x9e3779b9;
	struct xmlfeed_text bad = { 0 };
	char buf[4096];
	int unexpected = 0;

	for (int round = 0; round < 3000; round++) {
		size_t len = strlen(azure_page);
		char marker[512];
		int err;

		memcpy(buf, azure_page, len);
		len = xmlfeed_mutate(buf, len, sizeof(buf), &state);
		err = xmlfeed_parse(new_checking_parser, buf, len,
				    1 + xmlfeed_random(&state) % 97, &bad, marker, sizeof(marker));
		if (err && err != -EBADMSG && err != -ENAMETOOLONG)
			unexpected++;
	}
	CHECK(unexpected == 0);
	CHECK(bad.count == 0);
	xmlfeed_reset(&bad);
}

static void parses_file_service_times(void)
{
	static const struct {
		const char *text;
		int64_t sec;
		uint32_t nsec;
	} good[] = {
		{ "2023-09-25T12:43:08.6337775Z", 1695645788, 633777500 },
		{ "2023-09-25T12:43:08Z", 1695645788, 0 },
		{ "1970-01-01T00:00:00.000000001Z", 0, 1 },
		{ "2020-02-29T23:59:59.5Z", 1583020799, 500000000 },
		{ "1601-01-01T00:00:00.0000000Z", -11644473600, 0 },
	};
	static const char *const bad[] = {
		"",
		"2023-09-25T12:43:08",            /* no zone */
		"2023-09-25T12:43:08+00:00",      /* another zone form */
		"2023-09-25 12:43:08Z",
		"2023-9-25T12:43:08Z",
		"2023-09-25T12:43:8Z",
		"2023-09-25T12:43:08.Z",
		"2023-09-25T12:43:08.1234567890Z", /* ten digits */
		"2023-13-25T12:43:08Z",
		"2023-09-32T12:43:08Z",
		"2023-09-25T24:00:00Z",
		"2023-09-25T12:60:00Z",
		"2023-09-25T12:43:61Z",
		"2023-09-25T12:43:08ZZ",
		"+023-09-25T12:43:08Z",
		"2023-09-25T12:43:08.5 Z",
	};
	int64_t sec;
	uint32_t nsec;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK(filesxml_parse_time(good[i].text, &sec, &nsec) == 0);
		CHECK(sec == good[i].sec);
		CHECK(nsec == good[i].nsec);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (filesxml_parse_time(bad[i], &sec, &nsec) != -EINVAL)
			fprintf(stderr, "time %zu (%s) was taken\n", i, bad[i]);
		CHECK(filesxml_parse_time(bad[i], &sec, &nsec) == -EINVAL);
	}
}

int main(void)
{
	RUN(parses_azure_page_with_files_and_directories);
	RUN(parses_page_without_extended_info);
	RUN(write_time_wins_in_either_order);
	RUN(empty_listing_and_absent_marker);
	RUN(byte_at_a_time_gives_same_entries);
	RUN(names_that_are_not_components_are_refused);
	RUN(encoded_names_are_checked_once_decoded);
	RUN(names_longer_than_255_characters_are_refused);
	RUN(huge_name_stops_the_parse_early);
	RUN(bad_entries_are_ebadmsg);
	RUN(entity_tricks_are_refused);
	RUN(page_of_5000_entries_but_not_more);
	RUN(deep_nesting_is_refused);
	RUN(truncated_document_fails);
	RUN(callback_nonzero_stops_parse);
	RUN(marker_too_long_is_enametoolong);
	RUN(mutated_pages_never_crash);
	RUN(parses_file_service_times);
	return unit_done();
}
