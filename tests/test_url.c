/* Unit tests of url: container URL parsing, endpoints, loopback, percent-encoding. */
#include <errno.h>

#include "cache/store/url.h"
#include "unit.h"

static int parse(const char *url, struct url_container *u, char *err, size_t errlen)
{
	return url_parse_container(url, u, err, errlen);
}

static void parses_host_style_url(void)
{
	struct url_container u;
	char err[256];

	CHECK(parse("https://myacct.blob.core.windows.net/photos/2024/trip", &u, err,
		    sizeof(err)) == 0);
	CHECK_STR(u.scheme, "https");
	CHECK_STR(u.host, "myacct.blob.core.windows.net");
	CHECK(u.port == 0);
	CHECK_STR(u.account, "myacct");
	CHECK_STR(u.container, "photos");
	CHECK_STR(u.prefix, "2024/trip");
	CHECK(!u.path_style);

	/* no path after the container, a trailing slash, an upper-case host */
	CHECK(parse("https://MyAcct.Blob.core.chinacloudapi.cn/photos/", &u, err,
		    sizeof(err)) == 0);
	CHECK_STR(u.host, "myacct.blob.core.chinacloudapi.cn");
	CHECK_STR(u.account, "myacct");
	CHECK_STR(u.container, "photos");
	CHECK_STR(u.prefix, "");
	CHECK(!u.path_style);
}

static void parses_path_style_url_with_port(void)
{
	struct url_container u;
	char err[256];

	CHECK(parse("http://127.0.0.1:10000/devstoreaccount1/data", &u, err, sizeof(err)) ==
	      0);
	CHECK_STR(u.scheme, "http");
	CHECK_STR(u.host, "127.0.0.1");
	CHECK(u.port == 10000);
	CHECK_STR(u.account, "devstoreaccount1");
	CHECK_STR(u.container, "data");
	CHECK_STR(u.prefix, "");
	CHECK(u.path_style);

	/* a private endpoint that is not <account>.blob.<...> */
	CHECK(parse("https://storage.example.com/acct/logs/a", &u, err, sizeof(err)) == 0);
	CHECK(u.path_style);
	CHECK_STR(u.account, "acct");
	CHECK_STR(u.container, "logs");
	CHECK_STR(u.prefix, "a");
}

static void decodes_and_normalizes_path_style_prefix(void)
{
	struct url_container u;
	char err[256];

	CHECK(parse("http://localhost:10000/devstoreaccount1/data//my%20dir/%C3%A9t%C3%A9"
		    "///a+b%2Fc/",
		    &u, err, sizeof(err)) == 0);
	CHECK_STR(u.host, "localhost");
	CHECK_STR(u.container, "data");
	CHECK_STR(u.prefix, "my dir/\xc3\xa9t\xc3\xa9/a+b/c");

	CHECK(parse("http://localhost/devstoreaccount1/data/%zz", &u, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "escape") != NULL);
	CHECK(parse("http://localhost/devstoreaccount1/data/a/../b", &u, err, sizeof(err)) ==
	      -EINVAL);
}

static void parses_ipv6_loopback(void)
{
	struct url_container u;
	char err[256];

	CHECK(parse("http://[::1]:10000/devstoreaccount1/data/x", &u, err, sizeof(err)) ==
	      0);
	CHECK_STR(u.host, "[::1]");
	CHECK(u.port == 10000);
	CHECK_STR(u.account, "devstoreaccount1");
	CHECK_STR(u.container, "data");
	CHECK_STR(u.prefix, "x");
	CHECK(u.path_style);

	CHECK(parse("http://[::1/devstoreaccount1/data", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("http://[::1]x/devstoreaccount1/data", &u, err, sizeof(err)) == -EINVAL);
}

static void refuses_url_without_container(void)
{
	struct url_container u;
	char err[256];

	CHECK(parse("https://acct.blob.core.windows.net/", &u, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "container") != NULL);
	CHECK(parse("https://acct.blob.core.windows.net", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("http://127.0.0.1:10000/devstoreaccount1", &u, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "container") != NULL);
	CHECK(parse("http://127.0.0.1:10000/", &u, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "account") != NULL);
}

static void refuses_query_and_points_to_sas_file(void)
{
	struct url_container u;
	char err[256];

	CHECK(parse("https://acct.blob.core.windows.net/data?sv=2022-11-02&sig=abc", &u, err,
		    sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "sas_file=") != NULL);
	CHECK(strstr(err, "AZURE_STORAGE_SAS_TOKEN") != NULL);
	CHECK(parse("https://acct.blob.core.windows.net/data#frag", &u, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "sas_file=") != NULL);
	/* a short errbuf is cut, never overrun */
	CHECK(parse("https://acct.blob.core.windows.net/data?x", &u, err, 8) == -EINVAL);
	CHECK(strlen(err) == 7);
	CHECK(parse("https://acct.blob.core.windows.net/data?x", &u, NULL, 0) == -EINVAL);
}

static void refuses_bad_scheme(void)
{
	struct url_container u;
	char err[256];

	CHECK(parse("ftp://acct.blob.core.windows.net/data", &u, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "scheme") != NULL);
	CHECK(parse("file:///data", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("acct.blob.core.windows.net/data", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("httpx://acct.blob.core.windows.net/data", &u, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(parse("", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("HTTPS://acct.blob.core.windows.net/data", &u, err, sizeof(err)) == 0);
	CHECK_STR(u.scheme, "https");
}

static void refuses_userinfo(void)
{
	struct url_container u;
	char err[256];

	CHECK(parse("https://user:pw@acct.blob.core.windows.net/data", &u, err,
		    sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "@") != NULL);
	/* a failed parse leaves nothing behind */
	CHECK(parse("https://acct.blob.core.windows.net/Bad", &u, err, sizeof(err)) ==
	      -EINVAL);
	CHECK_STR(u.host, "");
	CHECK_STR(u.account, "");
}

static void refuses_bad_port_host_and_names(void)
{
	struct url_container u;
	char err[256];
	char long_name[80];

	CHECK(parse("http://localhost:0/acct/data", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("http://localhost:65536/acct/data", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("http://localhost:99999999999999999999/acct/data", &u, err,
		    sizeof(err)) == -EINVAL);
	CHECK(parse("http://localhost:1a/acct/data", &u, err, sizeof(err)) == -EINVAL);
	/* RFC 3986: an empty port is the scheme's default */
	CHECK(parse("http://localhost:/acct/data", &u, err, sizeof(err)) == 0);
	CHECK(u.port == 0);
	CHECK(parse("http://localhost:65535/acct/data", &u, err, sizeof(err)) == 0);
	CHECK(u.port == 65535);
	CHECK(parse("http:///acct/data", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("http://ho%st/acct/data", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("http://localhost/acct/da ta", &u, err, sizeof(err)) == -EINVAL);

	CHECK(parse("http://localhost/acct/Data", &u, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "Data") != NULL);
	CHECK(parse("http://localhost/acct/ab", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("http://localhost/acct/a--b", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("http://localhost/acct/-ab", &u, err, sizeof(err)) == -EINVAL);
	CHECK(parse("http://localhost/acct/a_b", &u, err, sizeof(err)) == -EINVAL);
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	CHECK(parse("http://localhost/acct/", &u, err, sizeof(err)) == -EINVAL);
	{
		char url[128];

		snprintf(url, sizeof(url), "http://localhost/acct/%s", long_name);
		CHECK(parse(url, &u, err, sizeof(err)) == -EINVAL);
		long_name[63] = '\0';
		snprintf(url, sizeof(url), "http://localhost/acct/%s", long_name);
		CHECK(parse(url, &u, err, sizeof(err)) == 0);
		CHECK_STR(u.container, long_name);
	}
	CHECK(parse("http://localhost/ac-ct/data", &u, err, sizeof(err)) == -EINVAL);
}

static void accepts_root_container(void)
{
	struct url_container u;
	char err[256];

	CHECK(parse("https://acct.blob.core.windows.net/$root/x", &u, err, sizeof(err)) == 0);
	CHECK_STR(u.container, "$root");
	CHECK_STR(u.prefix, "x");
	CHECK(parse("https://acct.blob.core.windows.net/%24root", &u, err, sizeof(err)) == 0);
	CHECK_STR(u.container, "$root");
	CHECK(parse("https://acct.blob.core.windows.net/$other", &u, err, sizeof(err)) ==
	      -EINVAL);
}

static void endpoint_host_style(void)
{
	struct url_container u;
	char err[256], ep[128];

	CHECK(parse("https://acct.blob.core.windows.net/data/p", &u, err, sizeof(err)) == 0);
	CHECK(url_endpoint(&u, ep, sizeof(ep)) == 0);
	CHECK_STR(ep, "https://acct.blob.core.windows.net");
	CHECK(parse("https://acct.blob.core.windows.net:8443/data", &u, err, sizeof(err)) ==
	      0);
	CHECK(url_endpoint(&u, ep, sizeof(ep)) == 0);
	CHECK_STR(ep, "https://acct.blob.core.windows.net:8443");
}

static void endpoint_path_style(void)
{
	struct url_container u;
	char err[256], ep[128];

	CHECK(parse("http://127.0.0.1:10000/devstoreaccount1/data/p", &u, err, sizeof(err)) ==
	      0);
	CHECK(url_endpoint(&u, ep, sizeof(ep)) == 0);
	CHECK_STR(ep, "http://127.0.0.1:10000/devstoreaccount1");
	CHECK(parse("http://[::1]:10000/devstoreaccount1/data", &u, err, sizeof(err)) == 0);
	CHECK(url_endpoint(&u, ep, sizeof(ep)) == 0);
	CHECK_STR(ep, "http://[::1]:10000/devstoreaccount1");
	CHECK(parse("https://private.example.com/acct/data", &u, err, sizeof(err)) == 0);
	CHECK(url_endpoint(&u, ep, sizeof(ep)) == 0);
	CHECK_STR(ep, "https://private.example.com/acct");

	/* exactly fits, then one byte short */
	CHECK(url_endpoint(&u, ep, strlen("https://private.example.com/acct") + 1) == 0);
	CHECK(url_endpoint(&u, ep, strlen("https://private.example.com/acct")) == -ENOSPC);
	CHECK_STR(ep, "");
}

static void loopback_hosts(void)
{
	CHECK(url_host_is_loopback("localhost"));
	CHECK(url_host_is_loopback("LOCALHOST"));
	CHECK(url_host_is_loopback("127.0.0.1"));
	CHECK(url_host_is_loopback("127.255.3.4"));
	CHECK(url_host_is_loopback("::1"));
	CHECK(url_host_is_loopback("[::1]"));
	CHECK(url_host_is_loopback("[0:0:0:0:0:0:0:1]"));
	CHECK(!url_host_is_loopback("128.0.0.1"));
	CHECK(!url_host_is_loopback("10.0.0.1"));
	CHECK(!url_host_is_loopback("127.0.0.256"));
	CHECK(!url_host_is_loopback("127.0.0.1.evil.com"));
	CHECK(!url_host_is_loopback("localhost.evil.com"));
	CHECK(!url_host_is_loopback("evil.localhost.com"));
	CHECK(!url_host_is_loopback("[::2]"));
	CHECK(!url_host_is_loopback("::"));
	CHECK(!url_host_is_loopback("[::1"));
	CHECK(!url_host_is_loopback("acct.blob.core.windows.net"));
	CHECK(!url_host_is_loopback(""));
	CHECK(!url_host_is_loopback(NULL));
}

static void encode_escapes_reserved_and_non_ascii(void)
{
	char out[64];

	CHECK(url_encode("a b", true, out, sizeof(out)) == 5);
	CHECK_STR(out, "a%20b");
	CHECK(url_encode("100%+#x", true, out, sizeof(out)) == 13);
	CHECK_STR(out, "100%25%2B%23x");
	CHECK(url_encode("caf\xc3\xa9", true, out, sizeof(out)) == 9);
	CHECK_STR(out, "caf%C3%A9");
	CHECK(url_encode("AZaz09-._~", false, out, sizeof(out)) == 10);
	CHECK_STR(out, "AZaz09-._~");
	CHECK(url_encode("?&=:;", false, out, sizeof(out)) == 15);
	CHECK_STR(out, "%3F%26%3D%3A%3B");
	CHECK(url_encode("", false, out, sizeof(out)) == 0);
	CHECK_STR(out, "");
}

static void encode_keeps_slash_only_when_asked(void)
{
	char out[64];

	CHECK(url_encode("dir/sub/f.txt", true, out, sizeof(out)) == 13);
	CHECK_STR(out, "dir/sub/f.txt");
	CHECK(url_encode("dir/sub/f.txt", false, out, sizeof(out)) == 17);
	CHECK_STR(out, "dir%2Fsub%2Ff.txt");
}

static void encode_reports_no_space(void)
{
	char out[8];

	CHECK(url_encode("abc", false, out, 4) == 3);
	CHECK_STR(out, "abc");
	CHECK(url_encode("abc", false, out, 3) == -ENOSPC);
	CHECK_STR(out, "");
	/* an escape is never cut in half */
	CHECK(url_encode("a b", false, out, 5) == -ENOSPC);
	CHECK(url_encode("a b", false, out, 6) == 5);
	CHECK(url_encode("", false, out, 0) == -ENOSPC);
}

static void decode_in_place(void)
{
	char s[64];

	snprintf(s, sizeof(s), "%s", "a%20b%2fc%2Fd+e%C3%A9");
	CHECK(url_decode(s) == 0);
	CHECK_STR(s, "a b/c/d+e\xc3\xa9");
	snprintf(s, sizeof(s), "%s", "plain");
	CHECK(url_decode(s) == 0);
	CHECK_STR(s, "plain");
	snprintf(s, sizeof(s), "%s", "");
	CHECK(url_decode(s) == 0);
	CHECK_STR(s, "");
	snprintf(s, sizeof(s), "%s", "%25%2525");
	CHECK(url_decode(s) == 0);
	CHECK_STR(s, "%%25");
}

static void decode_refuses_malformed_escape(void)
{
	static const char *const bad[] = { "%", "a%2", "%zz", "%2g", "ab%", "%00" };
	char s[16];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(s, sizeof(s), "%s", bad[i]);
		CHECK(url_decode(s) == -EINVAL);
		CHECK_STR(s, bad[i]); /* untouched */
	}
	snprintf(s, sizeof(s), "%s", "%41%");
	CHECK(url_decode(s) == -EINVAL);
	CHECK_STR(s, "%41%");
}

int main(void)
{
	RUN(parses_host_style_url);
	RUN(parses_path_style_url_with_port);
	RUN(decodes_and_normalizes_path_style_prefix);
	RUN(parses_ipv6_loopback);
	RUN(refuses_url_without_container);
	RUN(refuses_query_and_points_to_sas_file);
	RUN(refuses_bad_scheme);
	RUN(refuses_userinfo);
	RUN(refuses_bad_port_host_and_names);
	RUN(accepts_root_container);
	RUN(endpoint_host_style);
	RUN(endpoint_path_style);
	RUN(loopback_hosts);
	RUN(encode_escapes_reserved_and_non_ascii);
	RUN(encode_keeps_slash_only_when_asked);
	RUN(encode_reports_no_space);
	RUN(decode_in_place);
	RUN(decode_refuses_malformed_escape);
	return unit_done();
}
