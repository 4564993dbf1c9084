/* fuzz_uri: one string through every parser of URLs and credentials strings:
 * url_parse_container (+ url_endpoint), url_encode both ways, url_decode,
 * auth_connstr_parse, auth_cred_sas, redact_secrets and datastore_resolve (which reads
 * the config dir only: XDG_CONFIG_HOME is an empty temp dir, removed at exit). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/base/redact.h"
#include "cache/store/url.h"
#include "cache/store/datastore.h"
#include "tests/fuzz/fuzz.h"

static char config_dir[64];

static void remove_config_dir(void)
{
	if (config_dir[0])
		rmdir(config_dir); /* empty: nothing is ever written there */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = getenv("TMPDIR");
	snprintf(config_dir, sizeof(config_dir), "%s/ferry-fuzz-XXXXXX",
		 tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
	if (!mkdtemp(config_dir)) {
		perror("mkdtemp");
		exit(1);
	}
	setenv("XDG_CONFIG_HOME", config_dir, 1);
	setenv("HOME", config_dir, 1);
	atexit(remove_config_dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!config_dir[0])
		LLVMFuzzerInitialize(NULL, NULL);
	if (size > 8192)
		return 0;
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char err[512];

	struct url_container u;
	if (url_parse_container(s, &u, err, sizeof(err)) == 0) {
		char ep[1024];
		(void)url_endpoint(&u, ep, sizeof(ep));
		(void)url_host_is_loopback(u.host);
	}
	(void)url_host_is_loopback(s);

	size_t outlen = size * 3 + 1;
	char *enc = malloc(outlen);
	if (enc) {
		if (url_encode(s, true, enc, outlen) >= 0)
			(void)url_decode(enc);
		if (url_encode(s, false, enc, outlen) >= 0)
			(void)url_decode(enc);
		(void)url_encode(s, false, enc, size / 2 + 1); /* too small: -ENOSPC, no overrun */
		free(enc);
	}
	char *dec = strdup(s);
	if (dec) {
		(void)url_decode(dec);
		free(dec);
	}

	struct auth_connstr cs;
	memset(&cs, 0, sizeof(cs));
	if (auth_connstr_parse(s, &cs, err, sizeof(err)) == 0)
		auth_connstr_free(&cs);

	struct auth_cred *cred;
	if (auth_cred_sas(s, &cred) == 0) {
		(void)auth_sas_query(cred);
		auth_cred_free(cred);
	}

	char red[256];
	redact_secrets(s, red, sizeof(red));
	char *red_big = malloc(size * 2 + 64);
	if (red_big) {
		redact_secrets(s, red_big, size * 2 + 64);
		free(red_big);
	}

	struct datastore_target *t = malloc(sizeof(*t));
	if (t) {
		(void)datastore_is_uri(s);
		(void)datastore_resolve(s, t, err, sizeof(err));
		free(t);
	}
	free(s);
	return 0;
}
