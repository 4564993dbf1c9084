/* fuzz_record: a run record (run.json) read with record_from_json, once with the run's
 * datastore as its home and once without; a record that reads must write back
 * (record_to_json) to text that reads again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store/url.h"
#include "tools/launcher/record.h"
#include "tests/fuzz/fuzz.h"

static struct url_container home_store;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];

	(void)argc;
	(void)argv;
	/* azureml:// URIs resolve to the built-in workspaceblobstore, never a user's. */
	setenv("XDG_CONFIG_HOME", "/nonexistent/ferry-fuzz", 1);
	if (url_parse_container("http://127.0.0.1:10000/devstoreaccount1/azureml-blobstore",
				&home_store, err, sizeof(err)) != 0)
		abort();
	return 0;
}

static void round_trip(const struct run_record *rec, const struct record_home *home)
{
	struct run_record again;
	char err[1024], *text = NULL;
	size_t len = 0;

	if (record_to_json(rec, &text, &len) != 0)
		return;
	if (record_from_json(text, len, home, &again, err, sizeof(err)) != 0) {
		fprintf(stderr, "a record read did not read again once written: %s\n", err);
		abort();
	}
	record_free(&again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct record_home home = { .store = &home_store, .id = "run_1" };
	struct run_record rec;
	char err[1024];

	if (record_from_json((const char *)data, size, &home, &rec, err, sizeof(err)) == 0) {
		round_trip(&rec, &home);
		record_free(&rec);
	}
	if (record_from_json((const char *)data, size, NULL, &rec, err, sizeof(err)) == 0) {
		round_trip(&rec, NULL);
		record_free(&rec);
	}
	return 0;
}
