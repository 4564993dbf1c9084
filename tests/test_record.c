/* Unit tests of tools/launcher/record: the writer and the reader of run records, the
 * reader's answer to damaged and hostile records, and where output paths may lead. */
#include "tools/launcher/record.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store/datastore.h"
#include "unit.h"

#define T0 1780000000 /* 2026-05-28 */

static char errbuf[1024];
static struct url_container home_store; /* the built-in workspaceblobstore */

static const struct record_data good_outputs[] = {
	{ "model", "upload", "azureml://datastores/workspaceblobstore/paths/runs/run_1/outputs/model/" },
	{ "metrics", "rw_mount", "http://127.0.0.1:10000/devstoreaccount1/azureml-blobstore/m/" },
};
static const struct record_data good_inputs[] = {
	{ "data", "ro_mount", "https://other.blob.core.windows.net/c/d/" },
	{ "lr", "literal", NULL },
};

static struct run_record good_record(void)
{
	struct run_record rec = {
		.id = "run_1", .status = RECORD_FAILED, .experiment_name = "exp",
		.display_name = "caf\xc3\xa9 \"quoted\" \\ name", .kind = "command",
		.job_file = "job.yml", .command = "python train.py\n\techo \"done\"",
		.node = "node0", .exit_code = 3, .error = "the command exited with status 3",
		.inputs = good_inputs, .ninputs = 2, .outputs = good_outputs, .noutputs = 2,
	};

	rec.times[RECORD_QUEUED] = T0;
	rec.times[RECORD_PREPARING] = T0 + 1;
	rec.times[RECORD_RUNNING] = T0 + 2;
	rec.times[RECORD_FINALIZING] = T0 + 60;
	rec.times[RECORD_FAILED] = T0 + 61;
	return rec;
}

/* The good record as a jansson document, to damage. */
static json_t *good_json(void)
{
	struct run_record rec = good_record();
	char *text = NULL;
	size_t len = 0;
	json_t *root;

	CHECK(record_to_json(&rec, &text, &len) == 0);
	root = json_loads(text, 0, NULL);
	free(text);
	CHECK(root != NULL);
	return root;
}

/* Reads root (consumed) and expects -EINVAL with want in the message. */
static void read_fails(json_t *root, const struct record_home *home, const char *want)
{
	char *text = json_dumps(root, 0);
	struct run_record rec;
	int err = record_from_json(text, strlen(text), home, &rec, errbuf, sizeof(errbuf));

	if (err != -EINVAL || !strstr(errbuf, want))
		fprintf(stderr, "want -EINVAL with \"%s\", got %d \"%s\"\n", want, err, errbuf);
	CHECK(err == -EINVAL);
	CHECK(strstr(errbuf, want) != NULL);
	CHECK(rec.json == NULL && rec.outputs == NULL);
	free(text);
	json_decref(root);
}

/* The good record with key set to value (consumed) must fail with want. */
static void field_fails(const char *key, json_t *value, const struct record_home *home,
			const char *want)
{
	json_t *root = good_json();

	json_object_set_new(root, key, value);
	read_fails(root, home, want);
}

static void read_text_fails(const char *text, size_t len, const char *want)
{
	struct run_record rec;
	int err = record_from_json(text, len, NULL, &rec, errbuf, sizeof(errbuf));

	if (err != -EINVAL || !strstr(errbuf, want))
		fprintf(stderr, "want -EINVAL with \"%s\", got %d \"%s\"\n", want, err, errbuf);
	CHECK(err == -EINVAL);
	CHECK(strstr(errbuf, want) != NULL);
}

static void test_written_record_reads_back_the_same(void)
{
	struct run_record want = good_record(), got;
	struct record_home home = { .store = &home_store, .id = "run_1" };
	char *text = NULL;
	size_t len = 0;

	CHECK(record_to_json(&want, &text, &len) == 0);
	CHECK(record_from_json(text, len, &home, &got, errbuf, sizeof(errbuf)) == 0);
	CHECK_STR(got.id, "run_1");
	CHECK(got.status == RECORD_FAILED);
	CHECK_STR(got.display_name, want.display_name);
	CHECK_STR(got.command, want.command);
	CHECK_STR(got.error, want.error);
	CHECK(got.exit_code == 3);
	for (int s = 0; s < RECORD_NSTATUS; s++)
		CHECK(got.times[s] == want.times[s]);
	CHECK(got.ninputs == 2 && got.noutputs == 2);
	CHECK_STR(got.outputs[1].name, "metrics");
	CHECK_STR(got.outputs[1].path, good_outputs[1].path);
	CHECK(got.inputs[1].path == NULL);
	record_free(&got);
	free(text);
}

static void test_writer_keeps_bytes_that_are_not_utf8_out(void)
{
	struct run_record rec = good_record(), got;
	char *text = NULL;
	size_t len = 0;

	rec.error = "cannot open /tmp/\xff\xfe: No such file";
	CHECK(record_to_json(&rec, &text, &len) == 0);
	CHECK(record_from_json(text, len, NULL, &got, errbuf, sizeof(errbuf)) == 0);
	CHECK_STR(got.error, "cannot open /tmp/??: No such file");
	record_free(&got);
	free(text);
}

static void test_wrong_types_and_missing_fields_are_named(void)
{
	json_t *root;

	field_fails("status", json_integer(5), NULL, "field 'status' is not a string");
	root = good_json();
	json_object_del(root, "node");
	read_fails(root, NULL, "field 'node' is missing");
	field_fails("exit_code", json_string("0"), NULL, "field 'exit_code'");
	field_fails("exit_code", json_integer(256), NULL, "field 'exit_code'");
	field_fails("outputs", json_object(), NULL, "field 'outputs' is not a list");
	root = good_json();
	json_array_append_new(json_object_get(root, "outputs"), json_integer(1));
	read_fails(root, NULL, "field 'outputs[2].' is not an object");
	field_fails("kind", json_string("pipeline"), NULL, "field 'kind'");
	field_fails("status", json_string("Done"), NULL, "field 'status' is not one of");
}

static void test_hostile_strings_are_refused(void)
{
	static const char *const bad[] = {
		"a\x1b[2Jb", "tab\there", "rtl \xe2\x80\xae override", "c1 \xc2\x9b x", "del\x7f",
	};
	char *huge = malloc(8192);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		field_fails("display_name", json_string(bad[i]), NULL,
			    "field 'display_name' holds control characters");
	field_fails("id", json_string("run\"1"), NULL, "field 'id' is not a run id");
	field_fails("id", json_string("run_2"), &(struct record_home){ .id = "run_1" },
		    "field 'id' names run 'run_2'");
	field_fails("node", json_stringn("n\0x", 3), NULL, "not JSON");
	memset(huge, 'x', 8191);
	huge[8191] = '\0';
	field_fails("experiment_name", json_string(huge), NULL,
		    "field 'experiment_name' is longer than");
	free(huge);
}

static void test_output_names_follow_the_job_file_rule(void)
{
	static const char *const bad[] = { "../../x", "a/b", ".", "..", "/abs", "", "1st", "x y",
					   "caf\xc3\xa9" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *root = good_json();
		json_t *out = json_array_get(json_object_get(root, "outputs"), 0);

		json_object_set_new(out, "name", json_string(bad[i]));
		read_fails(root, NULL, "field 'outputs[0].name'");
	}
}

/* The good record with times.status set to value (consumed) must fail with want. */
static void time_fails(const char *status, json_t *value, const char *want)
{
	json_t *root = good_json();

	json_object_set_new(json_object_get(root, "times"), status, value);
	read_fails(root, NULL, want);
}

static void test_times_must_be_sane(void)
{
	time_fails("Queued", json_string("yesterday"), "field 'times.Queued' is not a time");
	time_fails("Queued", json_string("2026-05-28T12:00:00Z junk"),
		   "field 'times.Queued' is not a time");
	time_fails("Running", json_string("2999-01-01T00:00:00Z"),
		   "field 'times.Running' is not a time a run can have");
	time_fails("Running", json_string("2026-05-01T00:00:00Z"),
		   "field 'times.Running' is out of order");
	time_fails("Failed", json_null(), "field 'times.Failed' is null");
	time_fails("Completed", json_string("2026-05-28T21:00:00Z"),
		   "field 'times.Failed' is out of order");
}

static void test_outputs_must_lie_in_the_runs_datastore(void)
{
	static const char *const outside[] = {
		"http://127.0.0.1:10001/devstoreaccount1/azureml-blobstore/x/",
		"http://127.0.0.2:10000/devstoreaccount1/azureml-blobstore/x/",
		"http://127.0.0.1:10000/otheraccount/azureml-blobstore/x/",
		"http://127.0.0.1:10000/devstoreaccount1/other/x/",
		"https://127.0.0.1:10000/devstoreaccount1/azureml-blobstore/x/",
		"https://attacker.example/devstoreaccount1/azureml-blobstore/x/",
	};
	struct record_home home = { .store = &home_store };

	for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
		json_t *root = good_json();
		json_t *out = json_array_get(json_object_get(root, "outputs"), 1);

		json_object_set_new(out, "path", json_string(outside[i]));
		read_fails(root, &home, "is outside the run's datastore");
	}
	{
		json_t *root = good_json();
		json_t *out = json_array_get(json_object_get(root, "outputs"), 0);

		json_object_set_new(out, "path", json_string("/etc/passwd"));
		read_fails(root, NULL, "field 'outputs[0].path' is not a datastore URI");
	}
	{
		json_t *root = good_json();
		json_t *out = json_array_get(json_object_get(root, "outputs"), 0);

		json_object_set_new(out, "path", json_string(
			"azureml://datastores/workspaceblobstore/paths/a/../../b/"));
		read_fails(root, &home, "field 'outputs[0].path'");
	}
}

static void test_path_in_store_keeps_to_its_prefix(void)
{
	struct url_container store;
	char path[DATASTORE_PATH_MAX];

	CHECK(url_parse_container("http://127.0.0.1:10000/devstoreaccount1/cont/pre", &store,
				  errbuf, sizeof(errbuf)) == 0);
	CHECK(record_path_in(&store, "http://127.0.0.1:10000/devstoreaccount1/cont/pre/x/y/",
			     path, sizeof(path)) == 0);
	CHECK_STR(path, "x/y");
	CHECK(record_path_in(&store, "http://LOCALHOST:10000/devstoreaccount1/cont/pre/x", path,
			     sizeof(path)) == -EXDEV);
	CHECK(record_path_in(&store, "http://127.0.0.1:10000/devstoreaccount1/cont/prefix/x", path,
			     sizeof(path)) == -EXDEV);
	CHECK(record_path_in(&store, "http://127.0.0.1:10000/devstoreaccount1/cont/x", path,
			     sizeof(path)) == -EXDEV);
	CHECK(record_path_in(&store, "http://127.0.0.1:10000/devstoreaccount1/cont/pre", path,
			     sizeof(path)) == 0);
	CHECK_STR(path, "");
}

static void test_text_that_is_not_a_record(void)
{
	static const char deep_prefix[] = "{\"id\": ";
	char *deep = malloc(RECORD_TEXT_MAX + 1);
	size_t n = sizeof(deep_prefix) - 1;

	read_text_fails("", 0, "not JSON");
	read_text_fails("[1, 2]", 6, "not an object");
	read_text_fails("{\"id\": \"run_1\"", 15, "not JSON");
	read_text_fails("{\"id\": \"a\", \"id\": \"b\"}", 22, "not JSON");
	read_text_fails("{\"id\": \"\xff\"}", 11, "not JSON");
	memcpy(deep, deep_prefix, n);
	memset(deep + n, '[', 200000 - n);
	read_text_fails(deep, 200000, "not JSON");
	memset(deep, ' ', RECORD_TEXT_MAX + 1);
	CHECK(record_from_json(deep, RECORD_TEXT_MAX + 1, NULL, &(struct run_record){ 0 }, errbuf,
			       sizeof(errbuf)) == -EINVAL);
	CHECK(strstr(errbuf, "larger than") != NULL);
	free(deep);
}

static void test_unknown_keys_are_ignored(void)
{
	json_t *root = good_json();
	struct run_record rec;
	char *text;

	json_object_set_new(root, "future_field", json_pack("{s:i}", "x", 1));
	text = json_dumps(root, 0);
	CHECK(record_from_json(text, strlen(text), NULL, &rec, errbuf, sizeof(errbuf)) == 0);
	record_free(&rec);
	free(text);
	json_decref(root);
}

static void test_run_ids(void)
{
	CHECK(record_id_valid("run_20261203_224505_0a1b2c3d"));
	CHECK(record_id_valid("my-run.2"));
	CHECK(!record_id_valid(""));
	CHECK(!record_id_valid(".hidden"));
	CHECK(!record_id_valid("../x"));
	CHECK(!record_id_valid("a/b"));
	CHECK(!record_id_valid("a b"));
	{
		char id[RECORD_ID_MAX + 1];

		memset(id, 'a', RECORD_ID_MAX);
		id[RECORD_ID_MAX] = '\0';
		CHECK(!record_id_valid(id));
		id[RECORD_ID_MAX - 1] = '\0';
		CHECK(record_id_valid(id));
	}
}

int main(void)
{
	struct datastore_target t;

	setenv("XDG_CONFIG_HOME", "/nonexistent/ferry-test-record", 1);
	if (datastore_resolve("azureml://datastores/workspaceblobstore/paths/", &t, errbuf,
			      sizeof(errbuf)) != 0) {
		fprintf(stderr, "cannot resolve the built-in datastore: %s\n", errbuf);
		return 1;
	}
	home_store = t.url;
	RUN(test_written_record_reads_back_the_same);
	RUN(test_writer_keeps_bytes_that_are_not_utf8_out);
	RUN(test_wrong_types_and_missing_fields_are_named);
	RUN(test_hostile_strings_are_refused);
	RUN(test_output_names_follow_the_job_file_rule);
	RUN(test_times_must_be_sane);
	RUN(test_outputs_must_lie_in_the_runs_datastore);
	RUN(test_path_in_store_keeps_to_its_prefix);
	RUN(test_text_that_is_not_a_record);
	RUN(test_unknown_keys_are_ignored);
	RUN(test_run_ids);
	return unit_done();
}
