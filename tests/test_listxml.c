/* Unit tests of listxml: List Blobs pages parsed whole, byte by byte and broken. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/store/listxml.h"
#include "unit.h"
#include "xmlfeed.h"

/* What Azurite 3.x answers for ?restype=container&comp=list&delimiter=/&prefix=docs/
 * &include=metadata: prefixes first, then blobs. */
static const char azurite_page[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
	"<EnumerationResults ServiceEndpoint=\"http://127.0.0.1:10000/devstoreaccount1\" "
	"ContainerName=\"data\"><Prefix>docs/</Prefix><MaxResults>5000</MaxResults>"
	"<Delimiter>/</Delimiter><Blobs>"
	"<BlobPrefix><Name>docs/img/</Name></BlobPrefix>"
	"<BlobPrefix><Name>docs/src/</Name></BlobPrefix>"
	"<Blob><Name>docs/img</Name><Properties>"
	"<Creation-Time>Tue, 02 Jan 2024 03:04:05 GMT</Creation-Time>"
	"<Last-Modified>Tue, 02 Jan 2024 03:04:05 GMT</Last-Modified>"
	"<Etag>0x1F2A3B4C5D6E7F0</Etag><Content-Length>0</Content-Length>"
	"<Content-Type>application/octet-stream</Content-Type>"
	"<Content-MD5>1B2M2Y8AsgTpgAmY7PhCfg==</Content-MD5><BlobType>BlockBlob</BlobType>"
	"<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
	"<ServerEncrypted>true</ServerEncrypted><AccessTier>Hot</AccessTier>"
	"<AccessTierInferred>true</AccessTierInferred></Properties>"
	"<Metadata><hdi_isfolder>true</hdi_isfolder></Metadata></Blob>"
	"<Blob><Name>docs/readme.md</Name><Properties>"
	"<Creation-Time>Wed, 03 Jan 2024 00:00:00 GMT</Creation-Time>"
	"<Last-Modified>Wed, 03 Jan 2024 10:20:30 GMT</Last-Modified>"
	"<Etag>0x8DC0C3A1B2C3D4E</Etag><Content-Length>1234567</Content-Length>"
	"<Content-Type>text/markdown</Content-Type><BlobType>BlockBlob</BlobType>"
	"</Properties><Metadata/></Blob>"
	"<Blob><Name>docs/R&amp;D &lt;notes&gt;.txt</Name><Properties>"
	"<Last-Modified>Thu, 01 Jan 1970 00:00:01 GMT</Last-Modified>"
	"<Etag>0x8DC0C3A1B2C3D4F</Etag><Content-Length>18446744073709551615</Content-Length>"
	"</Properties></Blob>"
	"</Blobs><NextMarker/></EnumerationResults>";

static const char azurite_expected[] =
	"P docs/img/ 0 0 - 0\n"
	"P docs/src/ 0 0 - 0\n"
	"B docs/img 0 1704164645 0x1F2A3B4C5D6E7F0 1\n"
	"B docs/readme.md 1234567 1704277230 0x8DC0C3A1B2C3D4E 0\n"
	"B docs/R&D <notes>.txt 18446744073709551615 1 0x8DC0C3A1B2C3D4F 0\n";

/* What Azure answers: a UTF-8 BOM, entries interleaved by name, an Encoded name (it
 * holds U+FFFE, which XML cannot carry), a CDATA name, metadata keys in any case and
 * an opaque NextMarker. */
static const char azure_page[] =
	"\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	"<EnumerationResults ServiceEndpoint=\"https://acct.blob.core.windows.net/\" "
	"ContainerName=\"data\"><Marker>prev</Marker><MaxResults>3</MaxResults>"
	"<Delimiter>/</Delimiter><Blobs>"
	"<Blob><Name>a.txt</Name><VersionId>2024-01-01T00:00:00.0000000Z</VersionId>"
	"<Properties><Last-Modified>Mon, 01 Jan 2024 00:00:00 GMT</Last-Modified>"
	"<Content-Length>5</Content-Length><Etag>0x8DC0000000000A1</Etag></Properties>"
	"<OrMetadata/></Blob>"
	"<BlobPrefix><Name>b/</Name></BlobPrefix>"
	"<Blob><Name Encoded=\"true\">c%EF%BF%BEd%2B%25.txt</Name><Properties>"
	"<Content-Length>7</Content-Length>"
	"<Last-Modified>Sat, 29 Feb 2020 23:59:59 GMT</Last-Modified>"
	"<Etag>0x8DC0000000000C3</Etag></Properties></Blob>"
	"<Blob><Name><![CDATA[d <x>]]></Name><Properties><Content-Length>1</Content-Length>"
	"<Last-Modified>Mon, 01 Jan 2024 00:00:00 GMT</Last-Modified>"
	"<Etag>0x8DC0000000000D4</Etag></Properties>"
	"<Metadata><HDI_IsFolder> TRUE </HDI_IsFolder><other>true</other></Metadata></Blob>"
	"<BlobPrefix><Name Encoded=\"false\">e%20f/</Name></BlobPrefix>"
	"</Blobs><NextMarker>2!84!MDAwMDEyIWUlMjBmLyEwMDAwMjghOTk5OS0xMi0zMVQyMzo1OTo1OS45"
	"OTk5OTk5WiE-</NextMarker></EnumerationResults>";

static const char azure_expected[] =
	"B a.txt 5 1704067200 0x8DC0000000000A1 0\n"
	"P b/ 0 0 - 0\n"
	"B c\xef\xbf\xbe" "d+%.txt 7 1583020799 0x8DC0000000000C3 0\n"
	"B d <x> 1 1704067200 0x8DC0000000000D4 1\n"
	"P e%20f/ 0 0 - 0\n";

static const char azure_marker[] =
	"2!84!MDAwMDEyIWUlMjBmLyEwMDAwMjghOTk5OS0xMi0zMVQyMzo1OTo1OS45OTk5OTk5WiE-";

/* Sum of the sizes of the entries collect_fn() saw. */
static uint64_t size_sum;

/* Collects entries as lines "B|P name size mtime etag folder". */
static int collect_fn(void *ctx, const struct listxml_item *item)
{
	size_sum += item->size;
	return xmlfeed_addf(ctx, "%c %s %" PRIu64 " %" PRId64 " %s %d\n",
			    item->is_prefix ? 'P' : 'B', item->name, item->size, item->mtime,
			    item->etag[0] ? item->etag : "-", item->hdi_isfolder);
}

/* xmlfeed_new_fn: a parser whose entries go to collect_fn(). */
static int new_parser(struct xmlfeed_text *c, struct xmlstream **out)
{
	return listxml_new(collect_fn, c, out);
}

static void parses_azurite_page(void)
{
	CHECK(xmlfeed_gives(new_parser, azurite_page, 0, azurite_expected, ""));
}

static void parses_azure_page_with_encoded_name_and_marker(void)
{
	CHECK(xmlfeed_gives(new_parser, azure_page, 0, azure_expected, azure_marker));
}

static void absent_next_marker_is_empty(void)
{
	static const char doc[] = "<EnumerationResults><Blobs/></EnumerationResults>";
	struct xmlfeed_text c = { 0 };
	char marker[16] = "junk";

	CHECK(xmlfeed_parse(new_parser, doc, strlen(doc), 0, &c, marker, sizeof(marker)) == 0);
	CHECK(c.count == 0);
	CHECK_STR(marker, "");
	xmlfeed_reset(&c);
}

static void byte_at_a_time_gives_same_entries(void)
{
	for (size_t step = 1; step <= 7; step += 2) {
		CHECK(xmlfeed_gives(new_parser, azurite_page, step, azurite_expected, ""));
		CHECK(xmlfeed_gives(new_parser, azure_page, step, azure_expected, azure_marker));
	}
}

static void malformed_xml_is_ebadmsg(void)
{
	static const char *const docs[] = {
		"<EnumerationResults><Blobs></Blob></Blobs></EnumerationResults>",
		"<EnumerationResults><Blobs><Blob><Name>a&bogus;</Name></Blob></Blobs>"
		"</EnumerationResults>",
		"<EnumerationResults>\x01</EnumerationResults>",
		"<EnumerationResults></EnumerationResults><Extra/>",
		"not xml at all",
		"<EnumerationResults><Blobs><Blob><Name>\xff\xfe</Name></Blob></Blobs>"
		"</EnumerationResults>",
	};

	CHECK(xmlfeed_refuses(new_parser, docs, sizeof(docs) / sizeof(docs[0]), -EBADMSG));
}

static void bad_entries_are_ebadmsg(void)
{
	static const char *const docs[] = {
		/* no Name */
		"<EnumerationResults><Blobs><Blob><Properties/></Blob></Blobs>"
		"</EnumerationResults>",
		/* empty Name */
		"<EnumerationResults><Blobs><BlobPrefix><Name/></BlobPrefix></Blobs>"
		"</EnumerationResults>",
		/* bad escape in an encoded Name */
		"<EnumerationResults><Blobs><Blob><Name Encoded=\"true\">a%zz</Name></Blob>"
		"</Blobs></EnumerationResults>",
		"<EnumerationResults><Blobs><Blob><Name Encoded=\"true\">a%00b</Name></Blob>"
		"</Blobs></EnumerationResults>",
		/* Content-Length not a number, or too big */
		"<EnumerationResults><Blobs><Blob><Name>a</Name><Properties>"
		"<Content-Length>12x</Content-Length></Properties></Blob></Blobs>"
		"</EnumerationResults>",
		"<EnumerationResults><Blobs><Blob><Name>a</Name><Properties>"
		"<Content-Length>18446744073709551616</Content-Length></Properties></Blob>"
		"</Blobs></EnumerationResults>",
		/* Last-Modified not a date */
		"<EnumerationResults><Blobs><Blob><Name>a</Name><Properties>"
		"<Last-Modified>yesterday</Last-Modified></Properties></Blob></Blobs>"
		"</EnumerationResults>",
		/* a DOCTYPE, which could declare entities */
		"<?xml version=\"1.0\"?><!DOCTYPE EnumerationResults [<!ENTITY a \"aaaa\">]>"
		"<EnumerationResults><Blobs><Blob><Name>&a;</Name></Blob></Blobs>"
		"</EnumerationResults>",
		/* well-formed, but not a listing */
		"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed"
		"</Code><Message>no</Message></Error>",
	};

	CHECK(xmlfeed_refuses(new_parser, docs, sizeof(docs) / sizeof(docs[0]), -EBADMSG));
}

static void truncated_document_fails_at_finish(void)
{
	size_t len = strlen(azurite_page), cut;
	int failures = 0;

	for (cut = 0; cut < len; cut++) {
		struct xmlfeed_text c = { 0 };
		struct xmlstream *p;
		char marker[16];
		int err;

		CHECK(listxml_new(collect_fn, &c, &p) == 0);
		err = xmlstream_feed(p, azurite_page, cut);
		if (!err)
			err = xmlstream_finish(p, marker, sizeof(marker));
		if (err != -EBADMSG)
			failures++;
		xmlstream_free(p);
		xmlfeed_reset(&c);
	}
	CHECK(failures == 0);

	/* the plain case: the feed is fine, the finish is not */
	{
		struct xmlfeed_text c = { 0 };
		struct xmlstream *p;
		char marker[16];

		CHECK(listxml_new(collect_fn, &c, &p) == 0);
		CHECK(xmlstream_feed(p, azurite_page, len / 2) == 0);
		CHECK(xmlstream_finish(p, marker, sizeof(marker)) == -EBADMSG);
		CHECK_STR(marker, "");
		xmlstream_free(p);
		xmlfeed_reset(&c);
	}
}

static void callback_nonzero_stops_parse(void)
{
	struct xmlfeed_text c = { 0 };
	struct xmlstream *p;
	char marker[16];

	c.stop_after = 2;
	c.stop_value = -ECANCELED;
	CHECK(listxml_new(collect_fn, &c, &p) == 0);
	CHECK(xmlstream_feed(p, azurite_page, strlen(azurite_page)) == -ECANCELED);
	CHECK(c.count == 2);
	/* the stop is sticky and nothing more is delivered */
	CHECK(xmlstream_feed(p, "x", 1) == -ECANCELED);
	CHECK(xmlstream_finish(p, marker, sizeof(marker)) == -ECANCELED);
	CHECK(c.count == 2);
	xmlstream_free(p);
	xmlfeed_reset(&c);

	/* a positive value comes back as it is, also when fed byte by byte */
	c.stop_after = 3;
	c.stop_value = 7;
	CHECK(xmlfeed_parse(new_parser, azure_page, strlen(azure_page), 1, &c, marker,
			    sizeof(marker)) == 7);
	CHECK(c.count == 3);
	xmlfeed_reset(&c);
}

static void marker_too_long_is_enametoolong(void)
{
	struct xmlfeed_text c = { 0 };
	struct xmlstream *p;
	char marker[256];
	size_t need = strlen(azure_marker) + 1;

	CHECK(xmlfeed_parse(new_parser, azure_page, strlen(azure_page), 0, &c, marker,
			    need - 1) == -ENAMETOOLONG);
	xmlfeed_reset(&c);
	CHECK(xmlfeed_parse(new_parser, azure_page, strlen(azure_page), 0, &c, marker, need) == 0);
	CHECK_STR(marker, azure_marker);
	xmlfeed_reset(&c);

	CHECK(listxml_new(collect_fn, &c, &p) == 0);
	CHECK(xmlstream_feed(p, azure_page, strlen(azure_page)) == 0);
	CHECK(xmlstream_finish(p, marker, 0) == -ENAMETOOLONG);
	xmlstream_free(p);
	xmlfeed_reset(&c);
}

static void name_too_long_is_enametoolong(void)
{
	struct xmlfeed_text c = { 0 };
	struct xmlstream *p;
	int kib;

	CHECK(listxml_new(collect_fn, &c, &p) == 0);
	CHECK(xmlfeed_endless_text(p, "<EnumerationResults><Blobs><Blob><Name>", 64, &kib) ==
	      -ENAMETOOLONG);
	CHECK(c.count == 0);
	xmlfeed_reset(&c);
}

static void parses_5000_entry_page(void)
{
	const int entries = 5000;
	size_t cap = (size_t)entries * 400 + 256, len = 0;
	char *doc = malloc(cap);
	struct xmlfeed_text c = { 0 };
	char marker[64];
	char last[64];
	int i, n;

	CHECK(doc != NULL);
	if (!doc)
		return;
	n = snprintf(doc, cap, "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults"
			       " ContainerName=\"data\"><MaxResults>5000</MaxResults><Blobs>");
	len += (size_t)n;
	for (i = 0; i < entries; i++) {
		if (i % 10 == 0)
			n = snprintf(doc + len, cap - len,
				     "<BlobPrefix><Name>dir%05d/</Name></BlobPrefix>", i);
		else
			n = snprintf(doc + len, cap - len,
				     "<Blob><Name>file%05d.bin</Name><Properties>"
				     "<Last-Modified>Mon, 01 Jan 2024 00:00:00 GMT</Last-Modified>"
				     "<Etag>0x8DC%013d</Etag><Content-Length>%d</Content-Length>"
				     "<BlobType>BlockBlob</BlobType></Properties></Blob>",
				     i, i, i);
		len += (size_t)n;
	}
	n = snprintf(doc + len, cap - len,
		     "</Blobs><NextMarker>file04999.bin</NextMarker></EnumerationResults>");
	len += (size_t)n;
	CHECK(len < cap);

	size_sum = 0;
	CHECK(xmlfeed_parse(new_parser, doc, len, 16384, &c, marker, sizeof(marker)) == 0);
	CHECK(c.count == entries);
	CHECK_STR(marker, "file04999.bin");
	/* sizes of the blobs: all i in [0, 5000) not divisible by 10 */
	CHECK(size_sum == (uint64_t)(4999 * 5000 / 2 - 10 * (499 * 500 / 2)));
	snprintf(last, sizeof(last), "B file04999.bin 4999 1704067200 0x8DC%013d 0\n", 4999);
	CHECK(c.len >= strlen(last) && !strcmp(c.text + c.len - strlen(last), last));
	CHECK(!strncmp(c.text, "P dir00000/ 0 0 - 0\n", 20));
	xmlfeed_reset(&c);
	free(doc);
}

static void mutated_pages_never_crash(void)
{
	const char *sources[] = { azurite_page, azure_page };
	uint32_t state = 0x12345678;
	char buf[4096];
	int round, unexpected = 0;

	for (round = 0; round < 3000; round++) {
		const char *src = sources[round % 2];
		size_t len = strlen(src);
		struct xmlfeed_text c = { 0 };
		char marker[512];
		int err;

		memcpy(buf, src, len);
		len = xmlfeed_mutate(buf, len, sizeof(buf), &state);
		err = xmlfeed_parse(new_parser, buf, len, 1 + xmlfeed_random(&state) % 97, &c,
				    marker, sizeof(marker));
		if (err && err != -EBADMSG && err != -ENAMETOOLONG)
			unexpected++;
		xmlfeed_reset(&c);
	}
	CHECK(unexpected == 0);
}

static void parser_errors_stay_off_stderr(void)
{
	static const char *const docs[] = {
		"<EnumerationResults><Blobs></Blob></EnumerationResults>",
		"\x4c\x6f\xa7\x94garbage in EBCDIC clothing",
		"\x00\x00\x00\x3c\x00\x00\x00\x3f",
		"\xfe\xff\x00<\xd8",
		("<?xml version=\"1.0\" encoding=\"EUC-JP\"?><EnumerationResults>\x8e\xff"
		 "</EnumerationResults>"),
		"<?xml version=\"1.0\" encoding=\"no-such-charset\"?><a/>",
		"<!DOCTYPE a SYSTEM \"http://127.0.0.1:1/x.dtd\"><a>&x;</a>",
		"<a xmlns:p=\"rel\"><p:b/><q:c/></a>",
	};
	static const size_t lens[] = { 0, 0, 8, 5, 0, 0, 0, 0 };
	char path[] = "/tmp/test_listxml_stderr_XXXXXX";
	int saved, fd, i;
	struct stat st;

	fflush(stderr);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	unlink(path);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	for (i = 0; i < (int)(sizeof(docs) / sizeof(docs[0])); i++) {
		struct xmlfeed_text c = { 0 };
		char marker[16];
		size_t len = lens[i] ? lens[i] : strlen(docs[i]);

		xmlfeed_parse(new_parser, docs[i], len, 0, &c, marker, sizeof(marker));
		xmlfeed_parse(new_parser, docs[i], len, 1, &c, marker, sizeof(marker));
		xmlfeed_reset(&c);
	}
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	CHECK(fstat(fd, &st) == 0 && st.st_size == 0);
	close(fd);
}

int main(void)
{
	RUN(parses_azurite_page);
	RUN(parses_azure_page_with_encoded_name_and_marker);
	RUN(absent_next_marker_is_empty);
	RUN(byte_at_a_time_gives_same_entries);
	RUN(malformed_xml_is_ebadmsg);
	RUN(bad_entries_are_ebadmsg);
	RUN(truncated_document_fails_at_finish);
	RUN(callback_nonzero_stops_parse);
	RUN(marker_too_long_is_enametoolong);
	RUN(name_too_long_is_enametoolong);
	RUN(parses_5000_entry_page);
	RUN(mutated_pages_never_crash);
	RUN(parser_errors_stay_off_stderr);
	return unit_done();
}
