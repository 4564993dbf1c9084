/* Unit tests for auth/: string-to-sign, signatures, credentials, connection strings,
 * credential sources and redaction. */
#include "auth/auth.h"
#include "auth/base/redact.h"
#include "tests/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NH(a) (sizeof(a) / sizeof((a)[0]))

#define DATE "Tue, 02 Jan 2024 03:04:05 GMT"
#define VERSION "2021-08-06"
/* Ten empty lines: Content-Encoding through If-Unmodified-Since. */
#define EMPTY_STD "\n\n\n\n\n\n\n\n\n\n"

static char tmpdir[] = "/tmp/test_auth.XXXXXX";

/* ---- string-to-sign ---- */

static void string_to_sign_get_with_range_and_query(void)
{
	const struct auth_header h[] = {
		{ "x-ms-version", VERSION },
		{ "Range", "bytes=0-1023" },
		{ "x-ms-date", DATE },
	};
	char out[1024];

	CHECK(auth_string_to_sign("myaccount", "GET", "/c",
				  "comp=list&restype=container&prefix=a%2Fb", h, NH(h), out,
				  sizeof(out)) == 0);
	CHECK_STR(out, "GET\n" EMPTY_STD "bytes=0-1023\n"
		       "x-ms-date:" DATE "\n"
		       "x-ms-version:" VERSION "\n"
		       "/myaccount/c\ncomp:list\nprefix:a/b\nrestype:container");
}

static void string_to_sign_put_with_content_length(void)
{
	/* Names in mixed case and unsorted, as a caller may hand them over. */
	const struct auth_header h[] = {
		{ "X-MS-Version", VERSION },
		{ "content-type", "text/plain" },
		{ "x-ms-date", DATE },
		{ "Content-Length", "11" },
		{ "x-ms-blob-type", "BlockBlob" },
		{ "Host", "127.0.0.1:10000" },
	};
	char out[1024];

	CHECK(auth_string_to_sign("myaccount", "PUT", "/c/b", NULL, h, NH(h), out,
				  sizeof(out)) == 0);
	CHECK_STR(out, "PUT\n"
		       "\n"            /* Content-Encoding */
		       "\n"            /* Content-Language */
		       "11\n"          /* Content-Length */
		       "\n"            /* Content-MD5 */
		       "text/plain\n"  /* Content-Type */
		       "\n\n\n\n\n\n"  /* Date .. Range */
		       "x-ms-blob-type:BlockBlob\n"
		       "x-ms-date:" DATE "\n"
		       "x-ms-version:" VERSION "\n"
		       "/myaccount/c/b");
}

static void string_to_sign_all_standard_headers_in_order(void)
{
	const struct auth_header h[] = {
		{ "Range", "bytes=1-2" },
		{ "If-Unmodified-Since", "IUS" },
		{ "If-None-Match", "INM" },
		{ "If-Match", "\"etag\"" },
		{ "If-Modified-Since", "IMS" },
		{ "Date", "D" },
		{ "Content-Type", "CT" },
		{ "Content-MD5", "MD5" },
		{ "Content-Length", "5" },
		{ "Content-Language", "CL" },
		{ "Content-Encoding", "CE" },
	};
	char out[1024];

	CHECK(auth_string_to_sign("a", "POST", "/x", "", h, NH(h), out, sizeof(out)) == 0);
	CHECK_STR(out, "POST\nCE\nCL\n5\nMD5\nCT\nD\nIMS\n\"etag\"\nINM\nIUS\nbytes=1-2\n/a/x");
}

static void string_to_sign_zero_content_length_is_empty(void)
{
	const struct auth_header h[] = {
		{ "Content-Length", "0" },
		{ "x-ms-date", DATE },
	};
	char out[512];

	CHECK(auth_string_to_sign("a", "PUT", "/c/b", NULL, h, NH(h), out, sizeof(out)) == 0);
	CHECK_STR(out, "PUT\n" EMPTY_STD "\nx-ms-date:" DATE "\n/a/c/b");
}

static void string_to_sign_date_line_empty_only_with_x_ms_date(void)
{
	const struct auth_header with[] = { { "Date", DATE }, { "x-ms-date", DATE } };
	const struct auth_header without[] = { { "date", DATE } };
	char out[512];

	CHECK(auth_string_to_sign("a", "GET", "/", NULL, with, NH(with), out, sizeof(out)) ==
	      0);
	CHECK_STR(out, "GET\n" EMPTY_STD "\nx-ms-date:" DATE "\n/a/");
	CHECK(auth_string_to_sign("a", "GET", "/", NULL, without, NH(without), out,
				  sizeof(out)) == 0);
	CHECK_STR(out, "GET\n\n\n\n\n\n" DATE "\n\n\n\n\n\n/a/");
}

static void string_to_sign_path_style_emulator_resource(void)
{
	const struct auth_header h[] = { { "x-ms-date", DATE } };
	char out[512];

	/* Path-style URL: the account is the first path segment, so it appears twice. */
	CHECK(auth_string_to_sign(AUTH_DEV_ACCOUNT, "HEAD", "/devstoreaccount1/c/b%20c", NULL,
				  h, NH(h), out, sizeof(out)) == 0);
	CHECK_STR(out, "HEAD\n" EMPTY_STD "\nx-ms-date:" DATE
		       "\n/devstoreaccount1/devstoreaccount1/c/b%20c");
}

static void string_to_sign_query_value_percent_3d_decoded(void)
{
	char out[512];

	CHECK(auth_string_to_sign("a", "PUT", "/c/b", "comp=block&blockid=QUFBQQ%3D%3D", NULL,
				  0, out, sizeof(out)) == 0);
	CHECK_STR(out, "PUT\n" EMPTY_STD "\n/a/c/b\nblockid:QUFBQQ==\ncomp:block");
}

static void string_to_sign_repeated_query_params_sorted_and_joined(void)
{
	char out[512];

	/* Names fold to lower case; values of one name are sorted, joined with ','. */
	CHECK(auth_string_to_sign("a", "GET", "/c", "b=2&A=z&b=1&a=y&&empty=", NULL, 0, out,
				  sizeof(out)) == 0);
	CHECK_STR(out, "GET\n" EMPTY_STD "\n/a/c\na:y,z\nb:1,2\nempty:");
}

static void string_to_sign_query_plus_and_bad_escape(void)
{
	char out[512];

	/* '+' reads as a space; a '%' without two hex digits stays as is. */
	CHECK(auth_string_to_sign("a", "GET", "/c", "prefix=a+b%2&x=%zz%41", NULL, 0, out,
				  sizeof(out)) == 0);
	CHECK_STR(out, "GET\n" EMPTY_STD "\n/a/c\nprefix:a b%2\nx:%zzA");
	CHECK(auth_string_to_sign("a", "GET", "/c", "x=%00", NULL, 0, out, sizeof(out)) ==
	      -EINVAL);
}

/* Values are trimmed but inner whitespace is signed as sent: that is what Azurite
 * 3.35 checks (seen in its -d log) and what the Azure SDKs sign. */
static void string_to_sign_canonical_headers_sorted_and_trimmed(void)
{
	const struct auth_header h[] = {
		{ "x-ms-meta-b", "  one   two\t three  " },
		{ "X-Ms-Meta-A", "\tx" },
		{ "x-ms-date", DATE },
		{ "Not-Ms", "ignored" },
	};
	char out[512];

	CHECK(auth_string_to_sign("a", "GET", "/c", NULL, h, NH(h), out, sizeof(out)) == 0);
	CHECK_STR(out, "GET\n" EMPTY_STD "\n"
		       "x-ms-date:" DATE "\n"
		       "x-ms-meta-a:x\n"
		       "x-ms-meta-b:one   two\t three\n"
		       "/a/c");
}

static void string_to_sign_rejects_line_breaks_in_values(void)
{
	const struct auth_header crlf[] = { { "x-ms-meta-a", "a\r\nx-ms-evil: 1" } };
	const struct auth_header lf[] = { { "Content-Type", "text/plain\n" } };
	char out[512];

	CHECK(auth_string_to_sign("a", "GET", "/c", NULL, crlf, NH(crlf), out, sizeof(out)) ==
	      -EINVAL);
	CHECK(auth_string_to_sign("a", "GET", "/c", NULL, lf, NH(lf), out, sizeof(out)) ==
	      -EINVAL);
}

static void string_to_sign_rejects_repeated_x_ms_header(void)
{
	const struct auth_header h[] = { { "x-ms-meta-a", "1" }, { "X-MS-META-A", "2" } };
	char out[512];

	CHECK(auth_string_to_sign("a", "GET", "/c", NULL, h, NH(h), out, sizeof(out)) ==
	      -EINVAL);
}

static void string_to_sign_enospc_when_buffer_small(void)
{
	const struct auth_header h[] = { { "x-ms-date", DATE } };
	char full[512], small[20];
	int len;

	CHECK(auth_string_to_sign("a", "GET", "/c", NULL, h, NH(h), full, sizeof(full)) == 0);
	len = (int)strlen(full);
	CHECK(auth_string_to_sign("a", "GET", "/c", NULL, h, NH(h), small, sizeof(small)) ==
	      -ENOSPC);
	CHECK(small[0] == '\0');
	/* Exactly enough room for the text and its NUL fits; one less does not. */
	{
		char *exact = malloc((size_t)len + 1);

		CHECK(exact != NULL);
		if (exact) {
			CHECK(auth_string_to_sign("a", "GET", "/c", NULL, h, NH(h), exact,
						  (size_t)len + 1) == 0);
			CHECK_STR(exact, full);
			CHECK(auth_string_to_sign("a", "GET", "/c", NULL, h, NH(h), exact,
						  (size_t)len) == -ENOSPC);
			free(exact);
		}
	}
}

static void string_to_sign_rejects_bad_arguments(void)
{
	char out[256];

	CHECK(auth_string_to_sign("a", "GET", "c/b", NULL, NULL, 0, out, sizeof(out)) ==
	      -EINVAL);
	CHECK(auth_string_to_sign("", "GET", "/c", NULL, NULL, 0, out, sizeof(out)) ==
	      -EINVAL);
	CHECK(auth_string_to_sign(NULL, "GET", "/c", NULL, NULL, 0, out, sizeof(out)) ==
	      -EINVAL);
	CHECK(auth_string_to_sign("a", NULL, "/c", NULL, NULL, 0, out, sizeof(out)) ==
	      -EINVAL);
}

/* ---- credentials and Authorization ---- */

static void authorization_shared_key_known_signature(void)
{
	/* Expected value computed independently with python3:
	 *   base64(hmac.new(b64decode(AUTH_DEV_KEY), sts, sha256).digest())
	 * where sts is
	 *   "PUT\n\n\n11\n\ntext/plain\n\n\n\n\n\n\n"
	 *   "x-ms-blob-type:BlockBlob\nx-ms-date:Tue, 02 Jan 2024 03:04:05 GMT\n"
	 *   "x-ms-version:2021-08-06\n/devstoreaccount1/devstoreaccount1/c/b" */
	const struct auth_header h[] = {
		{ "Content-Type", "text/plain" },
		{ "Content-Length", "11" },
		{ "x-ms-version", VERSION },
		{ "x-ms-date", DATE },
		{ "x-ms-blob-type", "BlockBlob" },
	};
	struct auth_cred *cred = NULL;
	char out[256];

	CHECK(auth_cred_shared_key(AUTH_DEV_ACCOUNT, AUTH_DEV_KEY, &cred) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_SHARED_KEY);
	CHECK_STR(auth_cred_account(cred), AUTH_DEV_ACCOUNT);
	CHECK(auth_sas_query(cred) == NULL);
	CHECK(auth_authorization(cred, "PUT", "/devstoreaccount1/c/b", NULL, h, NH(h), out,
				 sizeof(out)) == 0);
	CHECK_STR(out, "SharedKey devstoreaccount1:i5a9uTwzV5OhzJDC/0RWixSENeypgpLZhppO5UWaLj8=");
	auth_cred_free(cred);
}

static void authorization_shared_key_signs_query(void)
{
	/* python3 as above over
	 *   "GET" + 11 x "\n" + "bytes=0-1023\n"
	 *   "x-ms-date:Tue, 02 Jan 2024 03:04:05 GMT\nx-ms-version:2021-08-06\n"
	 *   "/devstoreaccount1/devstoreaccount1/c\ncomp:list\nprefix:a/b\nrestype:container" */
	const struct auth_header h[] = {
		{ "x-ms-date", DATE },
		{ "x-ms-version", VERSION },
		{ "Range", "bytes=0-1023" },
	};
	struct auth_cred *cred = NULL;
	char out[256];

	CHECK(auth_cred_shared_key(AUTH_DEV_ACCOUNT, AUTH_DEV_KEY, &cred) == 0);
	CHECK(auth_authorization(cred, "GET", "/devstoreaccount1/c",
				 "restype=container&comp=list&prefix=a%2Fb", h, NH(h), out,
				 sizeof(out)) == 0);
	CHECK_STR(out, "SharedKey devstoreaccount1:aDKHEh30bJapwoCxf4CxdxKgvIMAHRQn2KPOoz7ecoc=");
	CHECK(auth_authorization(cred, "GET", "/devstoreaccount1/c", NULL, h, NH(h), out,
				 20) == -ENOSPC);
	CHECK(out[0] == '\0');
	auth_cred_free(cred);
}

static void cred_shared_key_rejects_bad_base64(void)
{
	static const char *const bad[] = {
		"",          /* empty */
		"QUJ",       /* length not a multiple of 4 */
		"QU=D",      /* padding in the middle */
		"Q===",      /* three pad characters */
		"====",      /* nothing but padding */
		"QU JD",     /* space */
		"QUJD\n",    /* trailing newline (files are trimmed, builders are not) */
		"QU*D",      /* not in the alphabet */
		"QUJDRA=",   /* short */
	};
	struct auth_cred *cred = NULL;
	size_t i;

	for (i = 0; i < NH(bad); i++) {
		cred = (struct auth_cred *)1;
		CHECK(auth_cred_shared_key("a", bad[i], &cred) == -EINVAL);
		CHECK(cred == NULL);
	}
	CHECK(auth_cred_shared_key("a", NULL, &cred) == -EINVAL);
	CHECK(auth_cred_shared_key("", "QUJD", &cred) == -EINVAL);
	CHECK(auth_cred_shared_key("a:b", "QUJD", &cred) == -EINVAL);
	CHECK(auth_cred_shared_key("a b", "QUJD", &cred) == -EINVAL);

	CHECK(auth_cred_shared_key("a", "QUJD", &cred) == 0);
	auth_cred_free(cred);
	CHECK(auth_cred_shared_key("a", "QUJDRA==", &cred) == 0);
	auth_cred_free(cred);
	CHECK(auth_cred_shared_key("a", "QUJDREU=", &cred) == 0);
	auth_cred_free(cred);
}

static void cred_shared_key_uses_decoded_key(void)
{
	/* Key bytes "0123456789abcdef". Expected from python3:
	 *   base64(hmac.new(b"0123456789abcdef", b"GET\n" + 11 x "\n" + b"/acct/c",
	 *   sha256).digest()) */
	struct auth_cred *cred = NULL;
	char out[256];

	CHECK(auth_cred_shared_key("acct", "MDEyMzQ1Njc4OWFiY2RlZg==", &cred) == 0);
	CHECK(auth_authorization(cred, "GET", "/c", NULL, NULL, 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "SharedKey acct:JJSphNrLZUXy0MK0FbXt+C6DaHZfO71RIbjcKUT0bHc=");
	auth_cred_free(cred);
}

static void cred_sas_strips_question_mark_and_needs_sig(void)
{
	struct auth_cred *cred = NULL;
	char out[64] = "x";

	CHECK(auth_cred_sas("?sv=2021-08-06&ss=b&sig=abc%2Bdef%3D", &cred) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_SAS);
	CHECK_STR(auth_sas_query(cred), "sv=2021-08-06&ss=b&sig=abc%2Bdef%3D");
	CHECK(auth_cred_account(cred) == NULL);
	CHECK(auth_authorization(cred, "GET", "/c", NULL, NULL, 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "");
	auth_cred_free(cred);

	CHECK(auth_cred_sas("SIG=x&sv=1", &cred) == 0);
	auth_cred_free(cred);

	cred = (struct auth_cred *)1;
	CHECK(auth_cred_sas("sv=2021-08-06&ss=b", &cred) == -EINVAL);
	CHECK(cred == NULL);
	CHECK(auth_cred_sas("sv=1&sig=", &cred) == -EINVAL);
	CHECK(auth_cred_sas("sv=1&xsig=abc", &cred) == -EINVAL);
	CHECK(auth_cred_sas("?", &cred) == -EINVAL);
	CHECK(auth_cred_sas("", &cred) == -EINVAL);
	CHECK(auth_cred_sas(NULL, &cred) == -EINVAL);
	CHECK(auth_cred_sas("sig=a b", &cred) == -EINVAL);
	CHECK(auth_cred_sas("sig=ab\n", &cred) == -EINVAL);
}

static void cred_bearer_authorization(void)
{
	struct auth_cred *cred = NULL;
	char out[64];

	CHECK(auth_cred_bearer("eyJ0eXAi.eyJhdWQi.c2ln", &cred) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_BEARER);
	CHECK(auth_sas_query(cred) == NULL);
	CHECK(auth_cred_account(cred) == NULL);
	CHECK(auth_authorization(cred, "GET", "/c", NULL, NULL, 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "Bearer eyJ0eXAi.eyJhdWQi.c2ln");
	CHECK(auth_authorization(cred, "GET", "/c", NULL, NULL, 0, out, 10) == -ENOSPC);
	CHECK(out[0] == '\0');
	auth_cred_free(cred);

	CHECK(auth_cred_bearer("", &cred) == -EINVAL);
	CHECK(auth_cred_bearer(NULL, &cred) == -EINVAL);
	CHECK(auth_cred_bearer("a b", &cred) == -EINVAL);
	CHECK(auth_cred_bearer("ab\r\nX-Evil: 1", &cred) == -EINVAL);
}

static void cred_anonymous_has_no_header(void)
{
	struct auth_cred *cred = NULL;
	char out[8] = "x";

	CHECK(auth_cred_anonymous(&cred) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_ANONYMOUS);
	CHECK(auth_sas_query(cred) == NULL);
	CHECK(auth_cred_account(cred) == NULL);
	CHECK(auth_authorization(cred, "GET", "/c", NULL, NULL, 0, out, sizeof(out)) == 0);
	CHECK_STR(out, "");
	CHECK(auth_authorization(cred, "GET", "/c", NULL, NULL, 0, out, 0) == -ENOSPC);
	auth_cred_free(cred);
	auth_cred_free(NULL);
}

static void kind_names_for_messages(void)
{
	CHECK_STR(auth_kind_name(AUTH_ANONYMOUS), "anonymous");
	CHECK_STR(auth_kind_name(AUTH_SHARED_KEY), "shared key");
	CHECK_STR(auth_kind_name(AUTH_SAS), "SAS");
	CHECK_STR(auth_kind_name(AUTH_BEARER), "bearer token");
	CHECK_STR(auth_kind_name((enum auth_kind)42), "unknown");
}

/* A bearer token's expiry is its JWT's exp; anything else has none. */
static void bearer_expiry_is_the_jwt_exp(void)
{
	static const char jwt[] =
		"eyJhbGciOiJub25lIn0.eyJhdWQiOiAiaHR0cHM6Ly9zdG9yYWdlLmF6dXJlLmNvbSIsICJleHAiOiAxOD"
		"kzNDU2MDAwLCAibiI6ICJcdTAwZmZcdTAwZmUifQ.sig";
	struct auth_cred *cred = NULL;

	CHECK(auth_jwt_expiry(jwt) == 1893456000);
	CHECK(auth_cred_bearer(jwt, &cred) == 0);
	CHECK(auth_cred_expiry(cred) == 1893456000);
	auth_cred_free(cred);
	CHECK(auth_cred_bearer("opaque-token", &cred) == 0 && auth_cred_expiry(cred) == 0);
	auth_cred_free(cred);
	CHECK(auth_cred_shared_key(AUTH_DEV_ACCOUNT, AUTH_DEV_KEY, &cred) == 0);
	CHECK(auth_cred_expiry(cred) == 0);
	auth_cred_free(cred);
	CHECK(auth_jwt_expiry("e30.eyJleHAiOiIxODkzNDU2MDAwIn0.s") == 0); /* a string exp */
	CHECK(auth_jwt_expiry("e30.eyJleHAiOjEsImV4cCI6Mn0.s") == 0);     /* exp twice */
	CHECK(auth_jwt_expiry("e30.e.s") == 0);                             /* 1 char: no base64 */
	CHECK(auth_jwt_expiry("e30.!!!!.s") == 0);
	CHECK(auth_jwt_expiry("no dots") == 0 && auth_jwt_expiry("one.dot") == 0);
	CHECK(auth_jwt_expiry("..") == 0);
}

/* ---- connection strings ---- */

static void connstr_account_key_builds_endpoint(void)
{
	struct auth_connstr cs;
	char err[128];

	CHECK(auth_connstr_parse("DefaultEndpointsProtocol=https;AccountName=acct;"
				 "AccountKey=QUJDRA==;EndpointSuffix=core.windows.net",
				 &cs, err, sizeof(err)) == 0);
	CHECK_STR(cs.account_name, "acct");
	CHECK_STR(cs.account_key, "QUJDRA==");
	CHECK(cs.sas == NULL);
	CHECK_STR(cs.blob_endpoint, "https://acct.blob.core.windows.net");
	auth_connstr_free(&cs);
	CHECK(cs.account_name == NULL && cs.blob_endpoint == NULL);

	/* Defaults, case-insensitive keys, other suffix, protocol, spaces, unknown keys. */
	CHECK(auth_connstr_parse(" accountname = acct ;ACCOUNTKEY=QUJDRA==;;", &cs, err,
				 sizeof(err)) == 0);
	CHECK_STR(cs.account_name, "acct");
	CHECK_STR(cs.account_key, "QUJDRA==");
	CHECK_STR(cs.blob_endpoint, "https://acct.blob.core.windows.net");
	auth_connstr_free(&cs);

	CHECK(auth_connstr_parse("DefaultEndpointsProtocol=http;AccountName=acct;"
				 "QueueEndpoint=http://q;EndpointSuffix=core.chinacloudapi.cn;",
				 &cs, err, sizeof(err)) == 0);
	CHECK_STR(cs.blob_endpoint, "http://acct.blob.core.chinacloudapi.cn");
	CHECK(cs.account_key == NULL);
	auth_connstr_free(&cs);
}

static void connstr_blob_endpoint_trailing_slash_stripped(void)
{
	struct auth_connstr cs;
	char err[128];

	CHECK(auth_connstr_parse("AccountName=devstoreaccount1;AccountKey=" AUTH_DEV_KEY
				 ";BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;",
				 &cs, err, sizeof(err)) == 0);
	CHECK_STR(cs.account_name, AUTH_DEV_ACCOUNT);
	CHECK_STR(cs.account_key, AUTH_DEV_KEY); /* value keeps its '=' */
	CHECK_STR(cs.blob_endpoint, "http://127.0.0.1:10000/devstoreaccount1");
	auth_connstr_free(&cs);

	/* BlobEndpoint alone is enough (anonymous or SAS use). */
	CHECK(auth_connstr_parse("BlobEndpoint=https://x.example/", &cs, err, sizeof(err)) ==
	      0);
	CHECK(cs.account_name == NULL);
	CHECK_STR(cs.blob_endpoint, "https://x.example");
	auth_connstr_free(&cs);
}

/* A share's connection string: FileEndpoint given, or built beside BlobEndpoint. */
static void connstr_file_endpoint(void)
{
	struct auth_connstr cs;
	char err[128];

	CHECK(auth_connstr_parse("FileEndpoint=https://acct.file.core.windows.net/;"
				 "SharedAccessSignature=sv=2021-12-02&sig=x",
				 &cs, err, sizeof(err)) == 0);
	CHECK_STR(cs.file_endpoint, "https://acct.file.core.windows.net");
	CHECK(cs.blob_endpoint == NULL && cs.account_name == NULL);
	CHECK_STR(cs.sas, "sv=2021-12-02&sig=x");
	auth_connstr_free(&cs);
	CHECK(cs.file_endpoint == NULL);

	CHECK(auth_connstr_parse("AccountName=acct;AccountKey=QUJDRA==;"
				 "EndpointSuffix=core.usgovcloudapi.net",
				 &cs, err, sizeof(err)) == 0);
	CHECK_STR(cs.file_endpoint, "https://acct.file.core.usgovcloudapi.net");
	CHECK_STR(cs.blob_endpoint, "https://acct.blob.core.usgovcloudapi.net");
	auth_connstr_free(&cs);

	CHECK(auth_connstr_parse("AccountName=acct;FileEndpoint=nope", &cs, err,
				 sizeof(err)) == -EINVAL);
	CHECK_STR(err, "FileEndpoint is not a URL");
}

static void connstr_development_storage(void)
{
	struct auth_connstr cs;
	char err[128];

	CHECK(auth_connstr_parse("UseDevelopmentStorage=true", &cs, err, sizeof(err)) == 0);
	CHECK_STR(cs.account_name, AUTH_DEV_ACCOUNT);
	CHECK_STR(cs.account_key, AUTH_DEV_KEY);
	CHECK_STR(cs.blob_endpoint, AUTH_DEV_BLOB_ENDPOINT);
	auth_connstr_free(&cs);

	CHECK(auth_connstr_parse("usedevelopmentstorage=TRUE;"
				 "DevelopmentStorageProxyUri=http://azurite.local/",
				 &cs, err, sizeof(err)) == 0);
	CHECK_STR(cs.blob_endpoint, "http://azurite.local:10000/devstoreaccount1");
	CHECK_STR(cs.account_key, AUTH_DEV_KEY);
	auth_connstr_free(&cs);

	CHECK(auth_connstr_parse("UseDevelopmentStorage=true;"
				 "DevelopmentStorageProxyUri=http://10.0.0.2:8080",
				 &cs, err, sizeof(err)) == 0);
	CHECK_STR(cs.blob_endpoint, "http://10.0.0.2:10000/devstoreaccount1");
	auth_connstr_free(&cs);

	CHECK(auth_connstr_parse("UseDevelopmentStorage=true;AccountName=other", &cs, err,
				 sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "AccountName") != NULL);
	CHECK(cs.account_name == NULL && cs.account_key == NULL);
	CHECK(auth_connstr_parse("UseDevelopmentStorage=maybe", &cs, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(auth_connstr_parse("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=nope",
				 &cs, err, sizeof(err)) == -EINVAL);
}

static void connstr_shared_access_signature(void)
{
	struct auth_connstr cs;
	char err[128];

	CHECK(auth_connstr_parse("BlobEndpoint=https://acct.blob.core.windows.net;"
				 "SharedAccessSignature=?sv=2021-08-06&ss=b&sig=a%2Bb%3D",
				 &cs, err, sizeof(err)) == 0);
	CHECK_STR(cs.sas, "sv=2021-08-06&ss=b&sig=a%2Bb%3D");
	CHECK(cs.account_key == NULL);
	CHECK_STR(cs.blob_endpoint, "https://acct.blob.core.windows.net");
	auth_connstr_free(&cs);
}

static void connstr_rejects_bad_strings_without_leaking(void)
{
	struct auth_connstr cs;
	char err[128];

	CHECK(auth_connstr_parse("AccountKey=c2VjcmV0LWtleQ==", &cs, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "AccountName") != NULL);
	CHECK(strstr(err, "c2VjcmV0") == NULL);
	CHECK(cs.account_key == NULL);

	CHECK(auth_connstr_parse("AccountName=a;c2VjcmV0LWtleQ", &cs, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "part 2") != NULL);
	CHECK(strstr(err, "c2VjcmV0") == NULL);

	CHECK(auth_connstr_parse("", &cs, err, sizeof(err)) == -EINVAL);
	CHECK(auth_connstr_parse(";;", &cs, err, sizeof(err)) == -EINVAL);
	CHECK(auth_connstr_parse(NULL, &cs, err, sizeof(err)) == -EINVAL);
	CHECK(auth_connstr_parse("AccountName=a;=x", &cs, err, sizeof(err)) == -EINVAL);
	CHECK(auth_connstr_parse("AccountName=a;AccountName=b", &cs, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "twice") != NULL);
	CHECK(auth_connstr_parse("AccountName=", &cs, err, sizeof(err)) == -EINVAL);
	CHECK(auth_connstr_parse("AccountName=a;DefaultEndpointsProtocol=ftp", &cs, err,
				 sizeof(err)) == -EINVAL);
	CHECK(auth_connstr_parse("BlobEndpoint=not-a-url", &cs, err, sizeof(err)) == -EINVAL);
	CHECK(auth_connstr_parse("AccountName=a;SharedAccessSignature=?", &cs, err,
				 sizeof(err)) == -EINVAL);
	/* No errbuf at all is allowed. */
	CHECK(auth_connstr_parse("junk", &cs, NULL, 0) == -EINVAL);
}

/* ---- auth_resolve ---- */

static void env_clear(void)
{
	unsetenv("AZURE_STORAGE_CONNECTION_STRING");
	unsetenv("AZURE_STORAGE_ACCOUNT");
	unsetenv("AZURE_STORAGE_KEY");
	unsetenv("AZURE_STORAGE_SAS_TOKEN");
	unsetenv("AZURE_STORAGE_BEARER_TOKEN");
}

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, text, len) == (ssize_t)len);
	close(fd);
}

static void tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

/* Authorization for a fixed request, to compare credentials by what they produce. */
static void sign_fixed(const struct auth_cred *cred, char *out, size_t outlen)
{
	const struct auth_header h[] = { { "x-ms-date", DATE } };

	if (auth_authorization(cred, "GET", "/c", NULL, h, NH(h), out, outlen) != 0)
		snprintf(out, outlen, "(failed)");
}

static void resolve_nothing_gives_anonymous(void)
{
	const struct auth_sources src = { .account = "acct" };
	struct auth_cred *cred = NULL;
	char err[256] = "stale";

	env_clear();
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_ANONYMOUS);
	CHECK_STR(err, "");
	auth_cred_free(cred);

	/* Empty variables count as absent. */
	setenv("AZURE_STORAGE_KEY", "", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_ANONYMOUS);
	auth_cred_free(cred);
	env_clear();
}

static void resolve_files_first_in_order(void)
{
	char key_path[256], sas_path[256], tok_path[256];
	struct auth_sources src = { .account = AUTH_DEV_ACCOUNT };
	struct auth_cred *cred = NULL, *direct = NULL;
	char err[512], got[256], want[256];

	tmp_path(key_path, sizeof(key_path), "key");
	tmp_path(sas_path, sizeof(sas_path), "sas");
	tmp_path(tok_path, sizeof(tok_path), "token");
	write_file(key_path, AUTH_DEV_KEY "\r\n\n", strlen(AUTH_DEV_KEY) + 3);
	write_file(sas_path, "?sv=1&sig=filesig\n", 18);
	write_file(tok_path, "file.token\n", 11);
	env_clear();
	setenv("AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=envsig", 1);
	setenv("AZURE_STORAGE_BEARER_TOKEN", "env.token", 1);

	src.account_key_file = key_path;
	src.sas_file = sas_path;
	src.bearer_token_file = tok_path;
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_SHARED_KEY);
	CHECK_STR(auth_cred_account(cred), AUTH_DEV_ACCOUNT);
	/* The trailing newline was stripped: same signature as the key itself. */
	CHECK(auth_cred_shared_key(AUTH_DEV_ACCOUNT, AUTH_DEV_KEY, &direct) == 0);
	sign_fixed(cred, got, sizeof(got));
	sign_fixed(direct, want, sizeof(want));
	CHECK_STR(got, want);
	auth_cred_free(direct);
	auth_cred_free(cred);

	src.account_key_file = NULL;
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_SAS);
	CHECK_STR(auth_sas_query(cred), "sv=1&sig=filesig");
	auth_cred_free(cred);

	src.sas_file = NULL;
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_BEARER);
	sign_fixed(cred, got, sizeof(got));
	CHECK_STR(got, "Bearer file.token");
	auth_cred_free(cred);

	src.bearer_token_file = NULL;
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_SAS);
	CHECK_STR(auth_sas_query(cred), "sv=1&sig=envsig");
	auth_cred_free(cred);

	unsetenv("AZURE_STORAGE_SAS_TOKEN");
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_BEARER);
	sign_fixed(cred, got, sizeof(got));
	CHECK_STR(got, "Bearer env.token");
	auth_cred_free(cred);
	env_clear();
}

static void resolve_file_errors_name_the_file_not_the_secret(void)
{
	char bad_path[256], missing[256], empty_path[256], big_path[256];
	struct auth_sources src = { .account = "acct" };
	struct auth_cred *cred = (struct auth_cred *)1;
	char err[512];
	char *big;

	tmp_path(bad_path, sizeof(bad_path), "badkey");
	tmp_path(missing, sizeof(missing), "does-not-exist");
	tmp_path(empty_path, sizeof(empty_path), "empty");
	tmp_path(big_path, sizeof(big_path), "big");
	write_file(bad_path, "not*base64*secretvalue\n", 23);
	write_file(empty_path, " \n\n", 3);
	env_clear();

	src.account_key_file = bad_path;
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(cred == NULL);
	CHECK(strstr(err, bad_path) != NULL);
	CHECK(strstr(err, "account_key_file") != NULL);
	CHECK(strstr(err, "secretvalue") == NULL);

	src.account_key_file = missing;
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, missing) != NULL);

	src.account_key_file = NULL;
	src.sas_file = empty_path;
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "empty") != NULL);

	src.sas_file = bad_path;
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "sas_file") != NULL);
	CHECK(strstr(err, "secretvalue") == NULL);

	src.sas_file = NULL;
	src.bearer_token_file = tmpdir; /* a directory */
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, tmpdir) != NULL);

	big = malloc(70000);
	CHECK(big != NULL);
	if (big) {
		memset(big, 'a', 70000);
		write_file(big_path, big, 70000);
		free(big);
		src.bearer_token_file = big_path;
		CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
		CHECK(strstr(err, "larger") != NULL);
	}

	/* A key file needs the account from the URL. */
	src.bearer_token_file = NULL;
	src.account = NULL;
	src.account_key_file = bad_path;
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "account") != NULL);
	CHECK(cred == NULL);

	if (geteuid() != 0) { /* root reads anything */
		char unreadable[256];

		tmp_path(unreadable, sizeof(unreadable), "unreadable");
		write_file(unreadable, "QUJD", 4);
		chmod(unreadable, 0);
		src.account = "acct";
		src.account_key_file = unreadable;
		CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EACCES);
		CHECK(strstr(err, unreadable) != NULL);
	}
}

static void resolve_connection_string(void)
{
	struct auth_sources src = { .account = AUTH_DEV_ACCOUNT };
	struct auth_cred *cred = NULL;
	char err[512];

	env_clear();
	/* Beats AZURE_STORAGE_KEY and the tokens. */
	setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true", 1);
	setenv("AZURE_STORAGE_ACCOUNT", "acct", 1);
	setenv("AZURE_STORAGE_KEY", "QUJD", 1);
	setenv("AZURE_STORAGE_BEARER_TOKEN", "t", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_SHARED_KEY);
	CHECK_STR(auth_cred_account(cred), AUTH_DEV_ACCOUNT);
	auth_cred_free(cred);

	/* Another account than the URL's: refused, naming both, not the key. */
	setenv("AZURE_STORAGE_CONNECTION_STRING",
	       "AccountName=other;AccountKey=c2VjcmV0LWtleQ==", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(cred == NULL);
	CHECK(strstr(err, "AZURE_STORAGE_CONNECTION_STRING") != NULL);
	CHECK(strstr(err, "other") != NULL);
	CHECK(strstr(err, AUTH_DEV_ACCOUNT) != NULL);
	CHECK(strstr(err, "c2VjcmV0") == NULL);

	/* No account in the URL: whatever the connection string says. */
	src.account = NULL;
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK_STR(auth_cred_account(cred), "other");
	auth_cred_free(cred);

	/* A SAS in the connection string. */
	setenv("AZURE_STORAGE_CONNECTION_STRING",
	       "BlobEndpoint=https://x.example;SharedAccessSignature=sv=1&sig=cs", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_SAS);
	CHECK_STR(auth_sas_query(cred), "sv=1&sig=cs");
	auth_cred_free(cred);

	/* A bad one is an error, not a silent fall-through. */
	setenv("AZURE_STORAGE_CONNECTION_STRING", "AccountName=a;AccountKey=***", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "AZURE_STORAGE_CONNECTION_STRING") != NULL);
	CHECK(strstr(err, "***") == NULL);
	setenv("AZURE_STORAGE_CONNECTION_STRING", "garbage", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "AZURE_STORAGE_CONNECTION_STRING") != NULL);

	/* Holding no secret, it lets the next source speak. */
	setenv("AZURE_STORAGE_CONNECTION_STRING", "BlobEndpoint=https://x.example", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_SHARED_KEY);
	CHECK_STR(auth_cred_account(cred), "acct");
	auth_cred_free(cred);
	env_clear();
}

static void resolve_account_and_key_variables(void)
{
	struct auth_sources src = { .account = "acct" };
	struct auth_cred *cred = NULL;
	char err[512];

	env_clear();
	setenv("AZURE_STORAGE_ACCOUNT", "acct", 1);
	setenv("AZURE_STORAGE_KEY", "QUJD", 1);
	setenv("AZURE_STORAGE_SAS_TOKEN", "sig=x", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_SHARED_KEY);
	CHECK_STR(auth_cred_account(cred), "acct");
	auth_cred_free(cred);

	/* Without AZURE_STORAGE_ACCOUNT the URL's account is used. */
	unsetenv("AZURE_STORAGE_ACCOUNT");
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK_STR(auth_cred_account(cred), "acct");
	auth_cred_free(cred);

	/* Neither: no account to sign for. */
	src.account = NULL;
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "AZURE_STORAGE_ACCOUNT") != NULL);

	/* Different from the URL's account: refused. */
	src.account = "acct";
	setenv("AZURE_STORAGE_ACCOUNT", "other", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "other") != NULL && strstr(err, "acct") != NULL);

	/* Bad key: the variable is named, the value is not. */
	setenv("AZURE_STORAGE_ACCOUNT", "acct", 1);
	setenv("AZURE_STORAGE_KEY", "zzz-secret-zzz", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "AZURE_STORAGE_KEY") != NULL);
	CHECK(strstr(err, "secret") == NULL);

	/* AZURE_STORAGE_ACCOUNT alone is no credential. */
	unsetenv("AZURE_STORAGE_KEY");
	unsetenv("AZURE_STORAGE_SAS_TOKEN");
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == 0);
	CHECK(auth_cred_kind(cred) == AUTH_ANONYMOUS);
	auth_cred_free(cred);

	/* Bad SAS and bearer variables name themselves. */
	setenv("AZURE_STORAGE_SAS_TOKEN", "sv=1", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "AZURE_STORAGE_SAS_TOKEN") != NULL);
	unsetenv("AZURE_STORAGE_SAS_TOKEN");
	setenv("AZURE_STORAGE_BEARER_TOKEN", "two words", 1);
	CHECK(auth_resolve(&src, &cred, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "AZURE_STORAGE_BEARER_TOKEN") != NULL);
	CHECK(strstr(err, "words") == NULL);
	env_clear();
}

/* ---- redaction ---- */

static void redact_hides_secrets(void)
{
	char out[512];

	redact_secrets("GET https://a.blob.core.windows.net/c?sv=2021&sig=abc%2Bd%3D&se=x HTTP",
		    out, sizeof(out));
	CHECK_STR(out, "GET https://a.blob.core.windows.net/c?sv=2021&sig=REDACTED&se=x HTTP");

	redact_secrets("AccountName=a;AccountKey=" AUTH_DEV_KEY ";BlobEndpoint=http://h", out,
		    sizeof(out));
	CHECK_STR(out, "AccountName=a;AccountKey=REDACTED;BlobEndpoint=http://h");

	redact_secrets("SharedAccessSignature=sv=1&sig=zz;AccountName=a", out, sizeof(out));
	CHECK_STR(out, "SharedAccessSignature=REDACTED&sig=REDACTED;AccountName=a");

	redact_secrets("Authorization: SharedKey devstoreaccount1:i5a9uTwz/0RW=\r\nx", out,
		    sizeof(out));
	CHECK_STR(out, "Authorization: SharedKey devstoreaccount1:REDACTED\r\nx");

	redact_secrets("{\"h\": \"Bearer eyJ0.eyJ1.c2ln\"}", out, sizeof(out));
	CHECK_STR(out, "{\"h\": \"Bearer REDACTED\"}");

	redact_secrets("nothing secret here; a=b&c=d", out, sizeof(out));
	CHECK_STR(out, "nothing secret here; a=b&c=d");

	redact_secrets("", out, sizeof(out));
	CHECK_STR(out, "");
	redact_secrets(NULL, out, sizeof(out));
	CHECK_STR(out, "");
}

static void redact_matches_case_insensitively(void)
{
	char out[256];

	redact_secrets("?SIG=abc accountkey=def sharedaccesssignature=ghi", out, sizeof(out));
	CHECK_STR(out, "?SIG=REDACTED accountkey=REDACTED sharedaccesssignature=REDACTED");
	redact_secrets("authorization: bearer tok\tsharedkey acct:sig\"", out, sizeof(out));
	CHECK_STR(out, "authorization: bearer REDACTED\tsharedkey acct:REDACTED\"");
	redact_secrets("SharedKey nocolonsecret", out, sizeof(out));
	CHECK_STR(out, "SharedKey REDACTED");
	redact_secrets("&sig=", out, sizeof(out));
	CHECK_STR(out, "&sig=");
}

static void redact_truncates_small_buffers(void)
{
	char out[16];
	char one[1] = { 'x' };

	memset(out, 'x', sizeof(out));
	redact_secrets("https://h/c?sig=topsecretvalue", out, sizeof(out));
	CHECK_STR(out, "https://h/c?sig");
	memset(out, 'x', sizeof(out));
	redact_secrets("abcdefgh?sig=topsecretvalue", out, sizeof(out));
	CHECK_STR(out, "abcdefgh?sig=RE");
	CHECK(strstr(out, "top") == NULL);
	redact_secrets("abc", one, sizeof(one));
	CHECK(one[0] == '\0');
	redact_secrets("abc", NULL, 0); /* nothing to write to: no crash */
}

int main(void)
{
	char cleanup[512];

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(string_to_sign_get_with_range_and_query);
	RUN(string_to_sign_put_with_content_length);
	RUN(string_to_sign_all_standard_headers_in_order);
	RUN(string_to_sign_zero_content_length_is_empty);
	RUN(string_to_sign_date_line_empty_only_with_x_ms_date);
	RUN(string_to_sign_path_style_emulator_resource);
	RUN(string_to_sign_query_value_percent_3d_decoded);
	RUN(string_to_sign_repeated_query_params_sorted_and_joined);
	RUN(string_to_sign_query_plus_and_bad_escape);
	RUN(string_to_sign_canonical_headers_sorted_and_trimmed);
	RUN(string_to_sign_rejects_line_breaks_in_values);
	RUN(string_to_sign_rejects_repeated_x_ms_header);
	RUN(string_to_sign_enospc_when_buffer_small);
	RUN(string_to_sign_rejects_bad_arguments);
	RUN(authorization_shared_key_known_signature);
	RUN(authorization_shared_key_signs_query);
	RUN(cred_shared_key_rejects_bad_base64);
	RUN(cred_shared_key_uses_decoded_key);
	RUN(cred_sas_strips_question_mark_and_needs_sig);
	RUN(cred_bearer_authorization);
	RUN(cred_anonymous_has_no_header);
	RUN(kind_names_for_messages);
	RUN(connstr_account_key_builds_endpoint);
	RUN(connstr_blob_endpoint_trailing_slash_stripped);
	RUN(connstr_file_endpoint);
	RUN(bearer_expiry_is_the_jwt_exp);
	RUN(connstr_development_storage);
	RUN(connstr_shared_access_signature);
	RUN(connstr_rejects_bad_strings_without_leaking);
	RUN(resolve_nothing_gives_anonymous);
	RUN(resolve_files_first_in_order);
	RUN(resolve_file_errors_name_the_file_not_the_secret);
	RUN(resolve_connection_string);
	RUN(resolve_account_and_key_variables);
	RUN(redact_hides_secrets);
	RUN(redact_matches_case_insensitively);
	RUN(redact_truncates_small_buffers);

	snprintf(cleanup, sizeof(cleanup), "%s/unreadable", tmpdir);
	chmod(cleanup, 0600);
	static const char *const files[] = { "key", "sas", "token", "badkey", "empty",
					     "big", "unreadable" };
	for (size_t i = 0; i < NH(files); i++) {
		snprintf(cleanup, sizeof(cleanup), "%s/%s", tmpdir, files[i]);
		unlink(cleanup);
	}
	rmdir(tmpdir);
	return unit_done();
}
