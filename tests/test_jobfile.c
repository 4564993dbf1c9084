/* Unit tests of tools/launcher/job/jobfile: Azure ML command jobs, Batch AI job files, the
 * messages for bad files, ${{...}} substitution, secrets, and hostile input. */
#include "tools/launcher/job/jobfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* A made-up account key: it must never show up in a message. */
#define TEST_KEY "c2VjcmV0LWtleS1mb3ItZmVycnktdGVzdHMtb25seS1ub3QtcmVhbC0wMDAwMDAwMDA="

static char errbuf[1024];

/* tests/jobfiles/<name>, found next to this source file. */
static const char *sample(const char *name)
{
	static char path[4096];
	const char *slash = strrchr(__FILE__, '/');
	int dir_len = slash ? (int)(slash - __FILE__) : 1;

	snprintf(path, sizeof(path), "%.*s/jobfiles/%s", dir_len, slash ? __FILE__ : ".", name);
	return path;
}

static struct job *parse_ok(const char *text)
{
	struct job *job = NULL;
	int err = job_parse_string(text, strlen(text), "t.yml", &job, errbuf, sizeof(errbuf));

	if (err)
		fprintf(stderr, "unexpected error %d: %s\n", err, errbuf);
	CHECK(err == 0);
	return job;
}

/* Parses text, expecting -EINVAL with exactly want as the message. */
static void parse_fails(const char *text, const char *want)
{
	struct job *job = (struct job *)&job;
	int err = job_parse_string(text, strlen(text), "t.yml", &job, errbuf, sizeof(errbuf));

	CHECK(err == -EINVAL);
	CHECK(job == NULL);
	CHECK_STR(errbuf, want);
}

/* Parses tests/jobfiles/name, expecting "<path>:<want>". */
static void file_fails(const char *name, const char *want)
{
	char expected[4096 + 512];
	struct job *job = NULL;
	const char *path = sample(name);

	snprintf(expected, sizeof(expected), "%s%s", path, want);
	CHECK(job_parse_file(path, &job, errbuf, sizeof(errbuf)) == -EINVAL);
	CHECK(job == NULL);
	CHECK_STR(errbuf, expected);
}

static void test_azureml_full_job(void)
{
	struct job *job = NULL;
	const struct job_input *in;
	const struct job_output *o;

	CHECK(job_parse_file(sample("azureml_full.yml"), &job, errbuf, sizeof(errbuf)) == 0);
	if (!job)
		return;
	CHECK(job->kind == JOB_AZUREML);
	CHECK_STR(job->name, "train-resnet-0042");
	CHECK_STR(job->display_name, "resnet50 on an imagenet subset");
	CHECK_STR(job->experiment_name, "resnet");
	CHECK_STR(job->description, "Every input mode, every output mode, literals and variables.");
	CHECK_STR(job->code, "./src");
	CHECK_STR(job->environment,
		  "azureml:AzureML-pytorch-1.13-ubuntu20.04-py38-cuda11.6-gpu@latest");
	CHECK_STR(job->compute, "azureml:gpu-cluster");
	CHECK_STR(job->command,
		  "python train.py --train ${{inputs.training_data}} --labels ${{inputs.labels}} "
		  "--shards ${{ inputs.raw_shards }} --epochs ${{inputs.epochs}} --lr "
		  "${{inputs.learning_rate}} --amp ${{inputs.use_amp}} --arch ${{inputs.arch}} "
		  "--model ${{outputs.model}} --metrics ${{outputs.metrics}}");
	CHECK(job->timeout == 7200);

	CHECK(job->ninputs == 8);
	in = job_find_input(job, "training_data");
	CHECK(in && in->type == JOB_URI_FOLDER && in->mode == JOB_RO_MOUNT && in->line == 19);
	CHECK(in && in->value == NULL);
	CHECK_STR(in ? in->path : NULL,
		  "azureml://datastores/workspaceblobstore/paths/imagenet/train/");
	in = job_find_input(job, "labels");
	CHECK(in && in->type == JOB_URI_FILE && in->mode == JOB_DOWNLOAD);
	CHECK_STR(in ? in->path : NULL, "https://ferrydemo.blob.core.windows.net/data/labels.csv");
	in = job_find_input(job, "raw_shards");
	CHECK(in && in->type == JOB_URI_FOLDER && in->mode == JOB_DIRECT);
	in = job_find_input(job, "local_only"); /* type and mode default */
	CHECK(in && in->type == JOB_URI_FOLDER && in->mode == JOB_RO_MOUNT);
	CHECK_STR(in ? in->path : NULL, "./local-data");
	in = job_find_input(job, "epochs");
	CHECK(in && in->type == JOB_LITERAL && in->path == NULL);
	CHECK_STR(in ? in->value : NULL, "10");
	CHECK_STR(job_find_input(job, "learning_rate")->value, "0.001");
	CHECK_STR(job_find_input(job, "use_amp")->value, "true");
	CHECK_STR(job_find_input(job, "arch")->value, "resnet50");
	CHECK(job_find_input(job, "nope") == NULL);
	CHECK_STR(job->inputs[0].name, "training_data"); /* file order */
	CHECK_STR(job->inputs[7].name, "arch");

	CHECK(job->noutputs == 3);
	o = job_find_output(job, "model");
	CHECK(o && o->type == JOB_URI_FOLDER && o->mode == JOB_RW_MOUNT && o->path == NULL);
	o = job_find_output(job, "metrics");
	CHECK(o && o->type == JOB_URI_FILE && o->mode == JOB_UPLOAD);
	CHECK_STR(o ? o->path : NULL,
		  "azureml://datastores/workspaceblobstore/paths/runs/metrics.json");
	o = job_find_output(job, "scratch"); /* an empty output takes the defaults */
	CHECK(o && o->type == JOB_URI_FOLDER && o->mode == JOB_RW_MOUNT && o->path == NULL);

	CHECK(job->nenv == 3);
	CHECK_STR(job->env[0].name, "OMP_NUM_THREADS");
	CHECK_STR(job->env[0].value, "8");
	CHECK_STR(job->env[1].value, "INFO");
	CHECK_STR(job->env[2].name, "BATCH_SIZE");
	CHECK_STR(job->env[2].value, "256");
	CHECK(job->ntags == 2);
	CHECK_STR(job->tags[0].value, "vision");
	CHECK_STR(job->tags[1].name, "reviewed");
	CHECK_STR(job->tags[1].value, "");
	CHECK(job->batchai.ninputs == 0 && job->batchai.nmounts == 0);
	job_free(job);
}

static void test_azureml_docs_examples(void)
{
	struct job *job = NULL;

	CHECK(job_parse_file(sample("azureml_docs_data.yml"), &job, errbuf, sizeof(errbuf)) == 0);
	if (job) {
		CHECK_STR(job->command,
			  "python train.py --data ${{inputs.data}} --out ${{outputs.model}}");
		CHECK(job->ninputs == 1 && job->inputs[0].type == JOB_URI_FOLDER);
		CHECK(job->inputs[0].mode == JOB_RO_MOUNT);
		CHECK_STR(job->inputs[0].path,
			  "azureml://datastores/workspaceblobstore/paths/example-data/");
		CHECK(job->noutputs == 1 && job->outputs[0].mode == JOB_RW_MOUNT);
		CHECK_STR(job->code, "src");
		CHECK(job->timeout == 0);
		job_free(job);
	}

	job = NULL;
	CHECK(job_parse_file(sample("azureml_docs_iris.yml"), &job, errbuf, sizeof(errbuf)) == 0);
	if (job) {
		CHECK_STR(job->command,
			  "echo \"--iris-csv: ${{inputs.iris_csv}}\"\n"
			  "python main.py --iris-csv ${{inputs.iris_csv}} --C ${{inputs.C}} "
			  "--kernel ${{inputs.kernel}}\n");
		CHECK(job->inputs[0].type == JOB_URI_FILE && job->inputs[0].mode == JOB_RO_MOUNT);
		CHECK_STR(job->inputs[1].value, "0.8");
		CHECK(job->environment == NULL); /* inline: accepted, not kept */
		CHECK(job->timeout == 5400);     /* PT1H30M */
		CHECK_STR(job->experiment_name, "sklearn-iris-example");
		job_free(job);
	}

	/* The docs' "write to named data output" job: an output with no settings. */
	job = parse_ok("$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\n"
		       "command: echo \"hello world\" > ${{outputs.hello_output}}/helloworld.txt\n"
		       "outputs:\n"
		       "  hello_output:\n"
		       "environment:\n"
		       "  image: python\n"
		       "compute: azureml:cpu-cluster\n");
	if (job) {
		CHECK(job->noutputs == 1 && job->outputs[0].type == JOB_URI_FOLDER);
		job_free(job);
	}

	/* JSON is YAML too: the same job written as JSON. */
	job = parse_ok("{\"command\": \"python t.py ${{inputs.n}}\", \"inputs\": {\"n\": 3},"
		       " \"limits\": {\"timeout\": 60}, \"type\": \"command\"}");
	if (job) {
		CHECK_STR(job->inputs[0].value, "3");
		CHECK(job->timeout == 60);
		job_free(job);
	}
}

static int64_t timeout_of(const char *value)
{
	char text[256];
	struct job *job = NULL;
	int64_t t = -1;

	snprintf(text, sizeof(text), "command: x\nlimits:\n  timeout: %s\n", value);
	if (job_parse_string(text, strlen(text), "t.yml", &job, errbuf, sizeof(errbuf)) == 0)
		t = job->timeout;
	job_free(job);
	return t;
}

static void test_timeout_forms(void)
{
	CHECK(timeout_of("3600") == 3600);
	CHECK(timeout_of("\"3600\"") == 3600);
	CHECK(timeout_of("PT1H30M") == 5400);
	CHECK(timeout_of("pt90m") == 5400);
	CHECK(timeout_of("PT45S") == 45);
	CHECK(timeout_of("P1DT1S") == 86401);
	CHECK(timeout_of("P2W") == 1209600);
	CHECK(timeout_of("PT0.5S") == 1); /* a fraction of a second rounds up */
	CHECK(timeout_of("PT1M0.000S") == 60);
	CHECK(timeout_of("P10675199DT2H48M5.4775807S") == 922337203686LL); /* TimeSpan.MaxValue */

	CHECK(timeout_of("one hour") == -1);
	CHECK_STR(errbuf, "t.yml:3: limits.timeout: 'one hour' is not a number of seconds or "
			  "an ISO 8601 duration (like PT1H30M)");
	CHECK(timeout_of("P1M") == -1);
	CHECK_STR(errbuf, "t.yml:3: limits.timeout: 'P1M': months and years have no fixed "
			  "length (use days, like P30D)");
	CHECK(timeout_of("0") == -1);
	CHECK_STR(errbuf, "t.yml:3: limits.timeout: must be more than 0 seconds");
	CHECK(timeout_of("99999999999999999999") == -1);
	CHECK_STR(errbuf, "t.yml:3: limits.timeout: '99999999999999999999' is too large");
	CHECK(timeout_of("[1]") == -1);
	CHECK_STR(errbuf, "t.yml:3: limits.timeout: expected a number of seconds or an ISO 8601 "
			  "duration, got a list");
	CHECK(timeout_of("1h") == -1);
	CHECK(timeout_of("-5") == -1);
	CHECK(timeout_of("1.5") == -1);
	CHECK(timeout_of("P") == -1);
	CHECK(timeout_of("PT") == -1);
	CHECK(timeout_of("P1DT") == -1);
	CHECK(timeout_of("PT1.5M") == -1);
	CHECK(timeout_of("PT1S1M") == -1);
	CHECK(timeout_of("PT1H1H") == -1);
	CHECK(timeout_of("P1H") == -1);
	CHECK(timeout_of("PT.5S") == -1);
	CHECK(timeout_of("P99999999999999999W") == -1);
	CHECK(timeout_of("~") == -1);
}

static void test_substitute_values(void)
{
	struct job *job = NULL;
	const char *in_values[] = { "/mnt/ferry/run1/inputs/data" };
	const char *out_values[] = { "/mnt/ferry/run1/outputs/model" };
	struct job_values values = { .inputs = in_values, .outputs = out_values };
	char *cmd = NULL;

	CHECK(job_parse_file(sample("azureml_docs_data.yml"), &job, errbuf, sizeof(errbuf)) == 0);
	if (!job)
		return;
	CHECK(job_substitute(job, &values, job->command, &cmd, errbuf, sizeof(errbuf)) == 0);
	CHECK_STR(cmd, "python train.py --data /mnt/ferry/run1/inputs/data "
		       "--out /mnt/ferry/run1/outputs/model");
	free(cmd);

	/* A uri input or an output without a value is an error naming it. */
	cmd = (char *)"unchanged";
	CHECK(job_substitute(job, NULL, job->command, &cmd, errbuf, sizeof(errbuf)) == -EINVAL);
	CHECK(cmd == NULL);
	CHECK_STR(errbuf, "${{inputs.data}}: no value for input 'data'");
	values.outputs = NULL;
	CHECK(job_substitute(job, &values, job->command, &cmd, errbuf, sizeof(errbuf)) == -EINVAL);
	CHECK_STR(errbuf, "${{outputs.model}}: no value for output 'model'");
	job_free(job);
}

static void test_substitute_literals_and_spaces(void)
{
	struct job *job = NULL;
	const char *in_values[8] = { "/in/train", "/in/labels.csv", "wasbs://raw@a/shards/" };
	const char *out_values[3] = { "/out/model", "/out/metrics.json", "/out/scratch" };
	struct job_values values = { .inputs = in_values, .outputs = out_values };
	char *cmd = NULL;

	CHECK(job_parse_file(sample("azureml_full.yml"), &job, errbuf, sizeof(errbuf)) == 0);
	if (!job)
		return;
	CHECK(job_substitute(job, &values, job->command, &cmd, errbuf, sizeof(errbuf)) == 0);
	CHECK_STR(cmd, "python train.py --train /in/train --labels /in/labels.csv --shards "
		       "wasbs://raw@a/shards/ --epochs 10 --lr 0.001 --amp true --arch resnet50 "
		       "--model /out/model --metrics /out/metrics.json");
	free(cmd);

	/* The launcher's value wins over the literal (an override). */
	in_values[4] = "20";
	CHECK(job_substitute(job, &values, "e=${{inputs.epochs}}", &cmd, errbuf,
			     sizeof(errbuf)) == 0);
	CHECK_STR(cmd, "e=20");
	free(cmd);
	job_free(job);
}

static void test_substitute_edge_cases(void)
{
	struct job *job = parse_ok("command: echo ${{inputs.a}}${{inputs.b}}\n"
				   "inputs: {a: 1, b: two}\n"
				   "outputs: {o: }\n");
	const char *outs[] = { "/o" };
	struct job_values values = { .outputs = outs };
	char *cmd = NULL;

	if (!job)
		return;
	/* adjacent placeholders */
	CHECK(job_substitute(job, NULL, job->command, &cmd, errbuf, sizeof(errbuf)) == 0);
	CHECK_STR(cmd, "echo 1two");
	free(cmd);
	CHECK(job_substitute(job, &values, "${{inputs.b}}${{outputs.o}}${{ inputs.a }}", &cmd,
			     errbuf, sizeof(errbuf)) == 0);
	CHECK_STR(cmd, "two/o1");
	free(cmd);
	/* no placeholders, empty template, a lone '$' or "${" */
	CHECK(job_substitute(job, NULL, "echo $HOME ${PATH} {{x}} $", &cmd, errbuf,
			     sizeof(errbuf)) == 0);
	CHECK_STR(cmd, "echo $HOME ${PATH} {{x}} $");
	free(cmd);
	CHECK(job_substitute(job, NULL, "", &cmd, errbuf, sizeof(errbuf)) == 0);
	CHECK_STR(cmd, "");
	free(cmd);
	/* unknown names */
	cmd = NULL;
	CHECK(job_substitute(job, NULL, "x ${{inputs.c}}", &cmd, errbuf, sizeof(errbuf)) ==
	      -EINVAL);
	CHECK(cmd == NULL);
	CHECK_STR(errbuf, "${{inputs.c}} is not declared in inputs");
	CHECK(job_substitute(job, &values, "${{outputs.a}}", &cmd, errbuf, sizeof(errbuf)) ==
	      -EINVAL);
	CHECK_STR(errbuf, "${{outputs.a}} is not declared in outputs");
	CHECK(job_substitute(job, NULL, "${{inputs.A}}", &cmd, errbuf, sizeof(errbuf)) == -EINVAL);
	CHECK(job_substitute(job, NULL, "${{inputs.}}", &cmd, errbuf, sizeof(errbuf)) == -EINVAL);
	CHECK(job_substitute(job, NULL, "${{search_space.lr}}", &cmd, errbuf, sizeof(errbuf)) ==
	      -EINVAL);
	CHECK_STR(errbuf, "${{search_space.lr}}: unsupported expression (expected "
			  "${{inputs.NAME}} or ${{outputs.NAME}})");
	/* "${{" without its closing "}}" */
	CHECK(job_substitute(job, NULL, "echo ${{inputs.a} done", &cmd, errbuf, sizeof(errbuf)) ==
	      -EINVAL);
	CHECK_STR(errbuf, "'${{' at character 6 has no closing '}}'");
	CHECK(job_substitute(job, NULL, "${{inputs.a}} ${{", &cmd, errbuf, sizeof(errbuf)) ==
	      -EINVAL);
	CHECK_STR(errbuf, "'${{' at character 15 has no closing '}}'");
	CHECK(cmd == NULL);
	job_free(job);
}

static void test_command_placeholders_checked_at_parse(void)
{
	file_fails("bad_undeclared.yml", ":1: command: ${{inputs.foo}} is not declared in inputs");
	parse_fails("command: |\n  a\n  b ${{outputs.model}}\ninputs: {model: 1}\n",
		    "t.yml:1: command: ${{outputs.model}} is not declared in outputs");
	parse_fails("inputs: {a: 1}\ncommand: echo ${{inputs.a}\n",
		    "t.yml:2: command: '${{' at character 6 has no closing '}}'");
	parse_fails("command: echo ${{parent.inputs.a}}\n",
		    "t.yml:1: command: ${{parent.inputs.a}}: unsupported expression (expected "
		    "${{inputs.NAME}} or ${{outputs.NAME}})");
}

static void test_batchai_job(void)
{
	struct job *job = NULL;
	const struct job_batchai *b;

	CHECK(job_parse_file(sample("batchai_job.json"), &job, errbuf, sizeof(errbuf)) == 0);
	if (!job)
		return;
	b = &job->batchai;
	CHECK(job->kind == JOB_BATCHAI);
	CHECK_STR(job->command, "python $AZ_BATCHAI_INPUT_SCRIPT/mnist_replica.py "
				"--data_dir=$AZ_BATCHAI_INPUT_DATASET "
				"--checkpoint_dir=$AZ_BATCHAI_OUTPUT_MODEL");
	CHECK_STR(job->experiment_name, "tensorflow_experiment");
	CHECK(job->timeout == 86400);
	CHECK(job->ninputs == 0 && job->noutputs == 0);
	CHECK(job->dist.node_count == 2);
	CHECK(job->dist.type == JOB_DIST_NONE && job->dist.process_count == 1);
	CHECK(b->ninputs == 2);
	CHECK_STR(b->inputs[0].id, "SCRIPT");
	CHECK_STR(b->inputs[0].path, "$AZ_BATCHAI_JOB_MOUNT_ROOT/bfs/tensorflow_samples");
	CHECK_STR(b->inputs[1].id, "DATASET");
	CHECK_STR(b->inputs[1].path, "$AZ_BATCHAI_JOB_MOUNT_ROOT/bfs/mnist_dataset");
	CHECK(b->inputs[1].line == 14);
	CHECK(b->noutputs == 1);
	CHECK_STR(b->outputs[0].id, "MODEL");
	CHECK_STR(b->outputs[0].path_prefix, "$AZ_BATCHAI_JOB_MOUNT_ROOT/afs");
	CHECK_STR(b->outputs[0].path_suffix, "Models");
	CHECK_STR(b->std_out_err_path_prefix, "$AZ_BATCHAI_JOB_MOUNT_ROOT/afs");
	CHECK(b->nmounts == 2);
	CHECK(b->mounts[0].kind == JOB_MOUNT_FILES);
	CHECK_STR(b->mounts[0].azure_file_url, "https://ferrydemo.file.core.windows.net/afs");
	CHECK_STR(b->mounts[0].relative_mount_path, "afs");
	CHECK(b->mounts[0].account_key == NULL);
	CHECK_STR(b->mounts[0].key_secret_url, "https://demokv.vault.azure.net/secrets/storage-key");
	CHECK(b->mounts[0].key_vault_id && strstr(b->mounts[0].key_vault_id, "/vaults/demokv"));
	CHECK(b->mounts[1].kind == JOB_MOUNT_BLOB);
	CHECK_STR(b->mounts[1].account_name, "ferrydemo");
	CHECK_STR(b->mounts[1].container_name, "batchaisample");
	CHECK_STR(b->mounts[1].relative_mount_path, "bfs");
	CHECK_STR(b->mounts[1].account_key, TEST_KEY);
	CHECK(job->nenv == 1);
	CHECK_STR(job->env[0].name, "NCCL_DEBUG");
	CHECK_STR(job->env[0].value, "INFO");
	CHECK(b->nsecret_names == 1);
	CHECK_STR(b->secret_names[0], "WANDB_API_KEY");
	CHECK_STR(b->job_preparation, "pip install -r $AZ_BATCHAI_INPUT_SCRIPT/requirements.txt");
	CHECK_STR(b->container_image, "tensorflow/tensorflow:1.8.0-gpu");

	/* The key can be wiped as soon as the mount is made. */
	job_wipe_secrets(job);
	CHECK(b->mounts[1].account_key == NULL);
	job_wipe_secrets(job);
	job_free(job);
}

static void test_batchai_without_wrapper(void)
{
	struct job *job = parse_ok(
		"{\"nodeCount\": 1,\n"
		" \"inputDirectories\": [{\"id\": \"DATA\", \"path\": \"$AZ_BATCHAI_MOUNT_ROOT/bfs\"}],\n"
		" \"outputDirectories\": [{\"id\": \"OUT\", \"pathPrefix\": \"$AZ_BATCHAI_MOUNT_ROOT/afs\","
		" \"type\": \"custom\", \"createNew\": true}],\n"
		" \"stdOutErrPathPrefix\": \"$AZ_BATCHAI_MOUNT_ROOT/afs\",\n"
		" \"customToolkitSettings\": {\"commandLine\": \"ls $AZ_BATCHAI_INPUT_DATA\"}}\n");

	if (!job)
		return;
	CHECK(job->kind == JOB_BATCHAI);
	CHECK_STR(job->command, "ls $AZ_BATCHAI_INPUT_DATA");
	CHECK(job->batchai.noutputs == 1 && job->batchai.outputs[0].path_suffix == NULL);
	CHECK(job->batchai.nmounts == 0);
	CHECK(job->timeout == 0);
	job_free(job);

	/* An Azure ML job's `properties` (a string map) does not make it Batch AI. */
	parse_fails("command: x\nproperties: {a: b}\n",
		    "t.yml:2: properties: not supported by ferry run");
}

static void test_bad_files_name_the_field(void)
{
	file_fails("bad_mode.yml", ":7: inputs.training_data.mode: unknown mode 'rw_mountt' "
				   "(expected ro_mount, download or direct)");
	file_fails("bad_missing_path.yml",
		   ":3: inputs.data.path: required for a uri_folder input");
	file_fails("bad_tab.yml", ":4:1: bad YAML: found character that cannot start any token "
				  "(while scanning for the next token); indent with spaces, not tabs");
	file_fails("bad_quote.yml", ":4:1: bad YAML: found unexpected end of stream (while "
				    "scanning a quoted scalar at line 1, column 10)");
	file_fails("bad_unknown_key.yml",
		   ":3: enviroment_variables: unknown key (did you mean 'environment_variables'?)");
	file_fails("bad_inputs_list.yml",
		   ":3: inputs: expected a mapping of input names to inputs, got a list");
	file_fails("bad_timeout.yml", ":3: limits.timeout: 'one hour' is not a number of seconds "
				      "or an ISO 8601 duration (like PT1H30M)");
}

static void test_more_errors_name_the_field(void)
{
	parse_fails("code: src\n", "t.yml:1: command: required");
	parse_fails("command: ''\n", "t.yml:1: command: must not be empty");
	parse_fails("command: [a, b]\n", "t.yml:1: command: expected a string, got a list");
	parse_fails("command: x\nbogus: 1\n", "t.yml:2: bogus: unknown key");
	parse_fails("command: x\nCommand: y\n", "t.yml:2: Command: unknown key (did you mean "
						"'command'?)");
	parse_fails("command: x\ntype: sweep\n",
		    "t.yml:2: type: unsupported job type 'sweep' (ferry runs command jobs)");
	parse_fails("command: x\nidentity: {type: managed}\n",
		    "t.yml:2: identity: not supported by ferry run");
	parse_fails("command: x\ncommand: y\n", "t.yml:2: command: duplicate key (first at line 1)");
	parse_fails("command: x\ninputs:\n  d:\n    path: p\n    mdoe: download\n",
		    "t.yml:5: inputs.d.mdoe: unknown key (did you mean 'mode'?)");
	parse_fails("command: x\ninputs:\n  d:\n    path: p\n    colour: red\n",
		    "t.yml:5: inputs.d.colour: unknown key (expected type, path or mode)");
	parse_fails("command: x\ninputs:\n  d: {type: mltable, path: p}\n",
		    "t.yml:3: inputs.d.type: unknown type 'mltable' (expected uri_folder or uri_file)");
	parse_fails("command: x\ninputs:\n  d:\n",
		    "t.yml:3: inputs.d: expected a value or a mapping with type, path and mode, got "
		    "nothing (null)");
	parse_fails("command: x\ninputs:\n  d: {path: ''}\n", "t.yml:3: inputs.d.path: must not be "
							    "empty");
	parse_fails("command: x\ninputs:\n  my-data: 1\n",
		    "t.yml:3: inputs.my-data: not a valid name (letters, digits and '_', not "
		    "starting with a digit)");
	parse_fails("command: x\ninputs:\n  2d: 1\n",
		    "t.yml:3: inputs.2d: not a valid name (letters, digits and '_', not starting "
		    "with a digit)");
	parse_fails("command: x\ninputs: {a: 1, a: 2}\n",
		    "t.yml:2: inputs.a: duplicate key (first at line 2)");
	parse_fails("command: x\noutputs:\n  m: {mode: ro_mount}\n",
		    "t.yml:3: outputs.m.mode: unknown mode 'ro_mount' (expected rw_mount or upload)");
	parse_fails("command: x\noutputs:\n  m: somewhere\n",
		    "t.yml:3: outputs.m: expected a mapping with type, mode and path, or nothing, "
		    "got a string");
	parse_fails("command: x\nenvironment_variables:\n  A=B: c\n",
		    "t.yml:3: environment_variables.A=B: not a valid variable name");
	parse_fails("command: x\nenvironment_variables:\n  A:\n",
		    "t.yml:3: environment_variables.A: expected a string, got nothing (null)");
	parse_fails("command: x\nenvironment_variables: [A, B]\n",
		    "t.yml:2: environment_variables: expected a mapping of names to values, got a "
		    "list");
	parse_fails("command: x\nlimits: {timeout: 5, max_nodes: 2}\n",
		    "t.yml:2: limits.max_nodes: unknown key (expected timeout)");
	parse_fails("command: \"a\\0b\"\n", "t.yml:1: command: contains a NUL character");
	parse_fails("command: x\n? [a]\n: b\n", "t.yml:2: keys must be strings, got a list");
	parse_fails("- command: x\n", "t.yml:1: expected a mapping (a command job), got a list");
	parse_fails("just words\n", "t.yml:1: expected a mapping (a command job), got a string");
	parse_fails("", "t.yml:1: empty job file");
	parse_fails("# only a comment\n", "t.yml:1: empty job file");
	parse_fails("command: x\n---\ncommand: y\n", "t.yml:3: more than one YAML document");
	parse_fails("command: *nowhere\n",
		    "t.yml:1:10: bad YAML: found undefined alias");
	parse_fails("command: [x\n", "t.yml:2:1: bad YAML: did not find expected ',' or ']' "
				     "(while parsing a flow sequence at line 1, column 10)");

	/* Batch AI */
	parse_fails("{\"properties\": {\"nodeCount\": 1}}",
		    "t.yml:1: properties.customToolkitSettings.commandLine: required");
	parse_fails("{\"properties\": {\"nodeCount\": 0, \"customToolkitSettings\": {\"commandLine\": \"x\"}}}",
		    "t.yml:1: properties.nodeCount: '0' is not a whole number from 1 to 4096");
	parse_fails("{\"properties\": {\"nodeCount\": 1,\n"
		    "  \"caffe2Settings\": {\"pythonScriptFilePath\": \"a.py\"}}}",
		    "t.yml:2: properties.caffe2Settings: not supported by ferry run (give the "
		    "command as customToolkitSettings.commandLine)");
	parse_fails("{\"properties\": {\"nodeCount\": 1,\n"
		    "  \"inputDirectory\": []}}",
		    "t.yml:2: properties.inputDirectory: unknown key (did you mean "
		    "'inputDirectories'?)");
	parse_fails("{\"nodeCount\": 1, \"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		    "\"inputDirectories\": [{\"id\": \"A\", \"path\": \"p\"},\n"
		    "  {\"id\": \"A\", \"path\": \"q\"}]}",
		    "t.yml:3: inputDirectories[1]: id A is also used by inputDirectories[0]");
	parse_fails("{\"nodeCount\": 1, \"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		    "\"inputDirectories\": [{\"path\": \"p\"}]}",
		    "t.yml:2: inputDirectories[0].id: required");
	parse_fails("{\"nodeCount\": 1, \"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		    "\"inputDirectories\": [{\"id\": \"A-1\", \"path\": \"p\"}]}",
		    "t.yml:2: inputDirectories[0].id: not a valid id (letters, digits and '_')");
	parse_fails("{\"nodeCount\": 1, \"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		    "\"inputDirectories\": {\"id\": \"A\"}}",
		    "t.yml:2: inputDirectories: expected a list of {id, path}, got a mapping");
	parse_fails("{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		    "\"mountVolumes\": {\"azureBlobFileSystems\": [{\"accountName\": \"a\",\n"
		    " \"containerName\": \"c\", \"relativeMountPath\": \"../etc\",\n"
		    " \"credentials\": {\"accountKeySecretReference\": {\"secretUrl\": \"u\",\n"
		    "   \"sourceVault\": {\"id\": \"v\"}}}}]}}",
		    "t.yml:3: mountVolumes.azureBlobFileSystems[0].relativeMountPath: must be a "
		    "relative path without '..'");
	parse_fails("{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		    "\"mountVolumes\": {\"azureBlobFileSystems\": [{\"accountName\": \"a\",\n"
		    " \"containerName\": \"c\", \"relativeMountPath\": \"b\"}]}}",
		    "t.yml:2: mountVolumes.azureBlobFileSystems[0].credentials: required");
	parse_fails("{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		    "\"mountVolumes\": {\"fileServers\": [{\"relativeMountPath\": \"b\"}]}}",
		    "t.yml:2: mountVolumes.fileServers: not supported by ferry run");
	parse_fails("{\"customToolkitSettings\": {\"commandLine\": \"x ${{inputs.data}}\"}}",
		    "t.yml:1: customToolkitSettings.commandLine: ${{inputs.data}} is not declared "
		    "in inputs");
}

/* Parses text, checking its distribution; the job (or NULL) for job_free(). */
static struct job *parse_dist(const char *text, enum job_dist_type type, long nodes,
			      long processes, long workers, long parameter_servers)
{
	struct job *job = parse_ok(text);

	if (job) {
		CHECK(job->dist.type == type);
		CHECK(job->dist.node_count == nodes);
		CHECK(job->dist.process_count == processes);
		CHECK(job->dist.worker_count == workers);
		CHECK(job->dist.parameter_server_count == parameter_servers);
	}
	return job;
}

static void test_dist_defaults(void)
{
	struct job *job = parse_dist("command: x\nresources: {instance_type: Standard_NC6}\n",
				     JOB_DIST_NONE, 1, 1, 0, 0);

	CHECK(job && !job->dist.master_command && !job->dist.worker_command);
	CHECK(job && !job->dist.ps_command);
	job_free(job);
	job_free(parse_dist("command: x\nresources:\ndistribution:\n", JOB_DIST_NONE, 1, 1, 0, 0));
	job_free(parse_dist("{\"nodeCount\": 3, \"customToolkitSettings\": {\"commandLine\": \"x\"}}",
			    JOB_DIST_NONE, 3, 1, 0, 0));
}

static void test_azureml_distribution(void)
{
	job_free(parse_dist("command: python train.py\n"
			    "resources:\n"
			    "  instance_count: 4\n"
			    "  instance_type: Standard_NC24\n"
			    "  shm_size: 16g\n"
			    "  docker_args: --ipc=host\n"
			    "  properties: {a: b}\n"
			    "  locations: [westus]\n"
			    "distribution:\n"
			    "  type: PyTorch\n"
			    "  process_count_per_instance: 8\n",
			    JOB_DIST_PYTORCH, 4, 8, 0, 0));
	job_free(parse_dist("command: x\ndistribution: {type: mpi}\nresources: {instance_count: 2}\n",
			    JOB_DIST_MPI, 2, 1, 0, 0));
	job_free(parse_dist("command: x\ndistribution: {type: MPI, process_count_per_instance: 1024}\n",
			    JOB_DIST_MPI, 1, 1024, 0, 0));
	/* tensorflow: workers default to the node count, even when resources come later */
	job_free(parse_dist("command: x\ndistribution: {type: tensorflow}\n"
			    "resources: {instance_count: 3}\n",
			    JOB_DIST_TENSORFLOW, 3, 1, 3, 0));
	job_free(parse_dist("command: x\nresources: {instance_count: 2}\ndistribution:\n"
			    "  type: TensorFlow\n  worker_count: 4\n  parameter_server_count: 1\n",
			    JOB_DIST_TENSORFLOW, 2, 1, 4, 1));
}

static void test_azureml_distribution_errors(void)
{
	parse_fails("command: x\ndistribution:\n  type: ray\n",
		    "t.yml:3: distribution.type: 'ray' is not supported by ferry run (expected "
		    "pytorch, mpi or tensorflow)");
	parse_fails("command: x\ndistribution: {type: horovod}\n",
		    "t.yml:2: distribution.type: unknown type 'horovod' (expected pytorch, mpi or "
		    "tensorflow)");
	parse_fails("command: x\ndistribution: {process_count_per_instance: 2}\n",
		    "t.yml:2: distribution.type: required");
	parse_fails("command: x\ndistribution: pytorch\n",
		    "t.yml:2: distribution: expected a mapping with type, got a string");
	parse_fails("command: x\ndistribution:\n  type: pytorch\n  worker_count: 2\n",
		    "t.yml:4: distribution.worker_count: not a field of a pytorch distribution "
		    "(expected process_count_per_instance)");
	parse_fails("command: x\ndistribution:\n  type: tensorflow\n  process_count_per_instance: 2\n",
		    "t.yml:4: distribution.process_count_per_instance: not a field of a tensorflow "
		    "distribution (expected worker_count or parameter_server_count)");
	parse_fails("command: x\ndistribution:\n  type: mpi\n  proces_count_per_instance: 2\n",
		    "t.yml:4: distribution.proces_count_per_instance: unknown key (did you mean "
		    "'process_count_per_instance'?)");
	parse_fails("command: x\ndistribution: {type: mpi, process_count_per_instance: 0}\n",
		    "t.yml:2: distribution.process_count_per_instance: '0' is not a whole number "
		    "from 1 to 1024");
	parse_fails("command: x\ndistribution: {type: pytorch, process_count_per_instance: 1025}\n",
		    "t.yml:2: distribution.process_count_per_instance: '1025' is not a whole number "
		    "from 1 to 1024");
	parse_fails("command: x\ndistribution: {type: tensorflow, parameter_server_count: -1}\n",
		    "t.yml:2: distribution.parameter_server_count: '-1' is not a whole number from "
		    "0 to 4096");
	parse_fails("command: x\nresources: {instance_count: 4097}\n",
		    "t.yml:2: resources.instance_count: '4097' is not a whole number from 1 to 4096");
	parse_fails("command: x\nresources: {instance_count: 2.5}\n",
		    "t.yml:2: resources.instance_count: '2.5' is not a whole number from 1 to 4096");
	parse_fails("command: x\nresources: {instance_typ: a}\n",
		    "t.yml:2: resources.instance_typ: unknown key (did you mean 'instance_type'?)");
	parse_fails("command: x\nresources: {gpus: 2}\n",
		    "t.yml:2: resources.gpus: unknown key (expected instance_count, instance_type, "
		    "shm_size, properties, docker_args, locations or max_instance_count)");
}

/* A Batch AI job of nodes nodes with one toolkit, given as its JSON member. */
static const char *batchai_text(int nodes, const char *toolkit)
{
	static char text[2048];

	snprintf(text, sizeof(text),
		 "{\"properties\": {\"nodeCount\": %d,\n"
		 " \"inputDirectories\": [{\"id\": \"SCRIPT\", \"path\": \"p\"}],\n"
		 " %s}}", nodes, toolkit);
	return text;
}

/* The job with that toolkit runs command as type, processes a node. */
static void toolkit_runs(int nodes, const char *toolkit, enum job_dist_type type,
			 long processes, const char *command)
{
	struct job *job = parse_dist(batchai_text(nodes, toolkit), type, nodes, processes, 0, 0);

	if (job) {
		CHECK_STR(job->command, command);
		CHECK(!job->dist.master_command && !job->dist.worker_command);
		CHECK(!job->dist.ps_command);
	}
	job_free(job);
}

static void test_batchai_toolkits(void)
{
	toolkit_runs(2, "\"customMpiSettings\": {\"commandLine\": \"mpi_app\", \"processCount\": 8}",
		     JOB_DIST_MPI, 4, "mpi_app");
	/* processCount defaults to nodeCount: one process a node */
	toolkit_runs(3, "\"customMpiSettings\": {\"commandLine\": \"mpi_app\"}", JOB_DIST_MPI, 1,
		     "mpi_app");
	toolkit_runs(2, "\"horovodSettings\": {\"pythonScriptFilePath\": "
			"\"$AZ_BATCHAI_INPUT_SCRIPT/train.py\", \"commandLineArgs\": \"--epochs 2\", "
			"\"processCount\": 4}",
		     JOB_DIST_MPI, 2, "python3 $AZ_BATCHAI_INPUT_SCRIPT/train.py --epochs 2");
	toolkit_runs(2, "\"pyTorchSettings\": {\"pythonScriptFilePath\": \"t.py\", "
			"\"pythonInterpreterPath\": \"/opt/conda/bin/python\", "
			"\"communicationBackend\": \"gloo\"}",
		     JOB_DIST_PYTORCH, 1, "/opt/conda/bin/python t.py");
	toolkit_runs(1, "\"pyTorchSettings\": {\"pythonScriptFilePath\": \"t.py\", "
			"\"commandLineArgs\": \"\", \"processCount\": 2, "
			"\"communicationBackend\": \"MPI\"}",
		     JOB_DIST_MPI, 2, "python3 t.py");
	/* `az batchai job show` output: every toolkit not used, and field not set, is null */
	toolkit_runs(2, "\"caffeSettings\": null, \"cntkSettings\": null, "
			"\"customToolkitSettings\": null, \"horovodSettings\": "
			"{\"pythonScriptFilePath\": \"h.py\", \"pythonInterpreterPath\": null, "
			"\"processCount\": null}",
		     JOB_DIST_MPI, 1, "python3 h.py");
}

static void test_batchai_tensorflow(void)
{
	struct job *job;

	/* Batch AI's defaults: a worker a node, one parameter server */
	job = parse_dist(batchai_text(2, "\"tensorFlowSettings\": {\"pythonScriptFilePath\": \"m.py\",\n"
					 " \"masterCommandLineArgs\": \"--task master\",\n"
					 " \"workerCommandLineArgs\": \"--task worker\",\n"
					 " \"parameterServerCommandLineArgs\": \"--task ps\"}"),
			 JOB_DIST_TENSORFLOW, 2, 1, 2, 1);
	if (job) {
		CHECK_STR(job->command, "python3 m.py --task master");
		CHECK_STR(job->dist.master_command, "python3 m.py --task master");
		CHECK_STR(job->dist.worker_command, "python3 m.py --task worker");
		CHECK_STR(job->dist.ps_command, "python3 m.py --task ps");
	}
	job_free(job);
	/* one node: no parameter server, no other worker */
	job = parse_dist(batchai_text(1, "\"tensorFlowSettings\": {\"pythonScriptFilePath\": \"m.py\",\n"
					 " \"masterCommandLineArgs\": \"--m\","
					 " \"workerCommandLineArgs\": \"--w\"}"),
			 JOB_DIST_TENSORFLOW, 1, 1, 1, 0);
	if (job) {
		CHECK_STR(job->dist.master_command, "python3 m.py --m");
		CHECK(job->dist.worker_command == NULL && job->dist.ps_command == NULL);
	}
	job_free(job);
	/* explicit counts; the workers' args may be absent */
	job = parse_dist(batchai_text(2, "\"tensorFlowSettings\": {\"pythonScriptFilePath\": \"m.py\",\n"
					 " \"workerCount\": 4, \"parameterServerCount\": 0}"),
			 JOB_DIST_TENSORFLOW, 2, 1, 4, 0);
	if (job) {
		CHECK_STR(job->command, "python3 m.py");
		CHECK_STR(job->dist.worker_command, "python3 m.py");
		CHECK(job->dist.ps_command == NULL);
	}
	job_free(job);
}

static void test_batchai_toolkit_errors(void)
{
	parse_fails(batchai_text(4, "\"customMpiSettings\": {\"commandLine\": \"x\",\n"
				    " \"processCount\": 6}"),
		    "t.yml:4: properties.customMpiSettings.processCount: 6 processes cannot be "
		    "spread evenly over nodeCount 4 (expected a multiple of 4)");
	parse_fails(batchai_text(2, "\"horovodSettings\": {\"pythonScriptFilePath\": \"t.py\",\n"
				    " \"processCount\": 1}"),
		    "t.yml:4: properties.horovodSettings.processCount: 1 processes cannot be "
		    "spread evenly over nodeCount 2 (expected a multiple of 2)");
	parse_fails(batchai_text(1, "\"customMpiSettings\": {\"commandLine\": \"x\", "
				    "\"processCount\": 1025}"),
		    "t.yml:3: properties.customMpiSettings.processCount: 1025 processes over "
		    "nodeCount 1 is more than 1024 a node (expected at most 1024)");
	parse_fails(batchai_text(1, "\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
				    " \"pyTorchSettings\": {\"pythonScriptFilePath\": \"t.py\"}"),
		    "t.yml:4: properties.pyTorchSettings: only one toolkit may be given "
		    "(customToolkitSettings is at line 3)");
	parse_fails(batchai_text(1, "\"pyTorchSettings\": {\"commandLineArgs\": \"--x\"}"),
		    "t.yml:3: properties.pyTorchSettings.pythonScriptFilePath: required");
	parse_fails(batchai_text(1, "\"customMpiSettings\": {\"processCount\": 1}"),
		    "t.yml:3: properties.customMpiSettings.commandLine: required");
	parse_fails(batchai_text(1, "\"pyTorchSettings\": {\"pythonScriptFilePath\": \"t.py\", "
				    "\"communicationBackend\": \"ucx\"}"),
		    "t.yml:3: properties.pyTorchSettings.communicationBackend: unknown "
		    "communication backend 'ucx' (expected TCP, Gloo, NCCL or MPI)");
	parse_fails(batchai_text(1, "\"pyTorchSettings\": {\"pythonScriptFilePath\": \"t.py\", "
				    "\"workerCount\": 2}"),
		    "t.yml:3: properties.pyTorchSettings.workerCount: unknown key (expected "
		    "pythonScriptFilePath, pythonInterpreterPath, commandLineArgs, processCount "
		    "or communicationBackend)");
	parse_fails(batchai_text(2, "\"tensorFlowSettings\": {\"pythonScriptFilePath\": \"m.py\", "
				    "\"workerCount\": 0}"),
		    "t.yml:3: properties.tensorFlowSettings.workerCount: '0' is not a whole "
		    "number from 1 to 4096");
	parse_fails(batchai_text(2, "\"tensorFlowSettings\": {\"pythonScriptFilePath\": \"m.py\",\n"
				    " \"workerCommandLineArgs\": \"--out ${{outputs.model}}\"}"),
		    "t.yml:4: properties.tensorFlowSettings.workerCommandLineArgs: "
		    "${{outputs.model}} is not declared in outputs");
	parse_fails(batchai_text(1, "\"cntkSettings\": {\"commandLine\": \"x\"}"),
		    "t.yml:3: properties.cntkSettings: not supported by ferry run (give the "
		    "command as customToolkitSettings.commandLine)");
}

/* Every file here holds TEST_KEY and one mistake: no message may contain the key. */
static void test_account_key_never_in_errors(void)
{
	static const char *const files[] = {
		/* the key's field misspelt */
		"{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		"\"mountVolumes\": {\"azureBlobFileSystems\": [{\"accountName\": \"a\",\n"
		" \"containerName\": \"c\", \"relativeMountPath\": \"b\",\n"
		" \"credentials\": {\"acountKey\": \"" TEST_KEY "\"}}]}}",
		/* the key used as a field name */
		"{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		"\"mountVolumes\": {\"azureBlobFileSystems\": [{\"accountName\": \"a\",\n"
		" \"containerName\": \"c\", \"relativeMountPath\": \"b\",\n"
		" \"credentials\": {\"" TEST_KEY "\": \"\"}}]}}",
		/* the key as the credentials themselves */
		"{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		"\"mountVolumes\": {\"azureBlobFileSystems\": [{\"accountName\": \"a\",\n"
		" \"containerName\": \"c\", \"relativeMountPath\": \"b\",\n"
		" \"credentials\": \"" TEST_KEY "\"}]}}",
		/* key and reference both */
		"{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		"\"mountVolumes\": {\"azureBlobFileSystems\": [{\"accountName\": \"a\",\n"
		" \"containerName\": \"c\", \"relativeMountPath\": \"b\",\n"
		" \"credentials\": {\"accountKey\": \"" TEST_KEY "\", \"accountKeySecretReference\":"
		" {\"secretUrl\": \"u\", \"sourceVault\": {\"id\": \"v\"}}}}]}}",
		/* the key twice */
		"{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		"\"mountVolumes\": {\"azureBlobFileSystems\": [{\"accountName\": \"a\",\n"
		" \"containerName\": \"c\", \"relativeMountPath\": \"b\",\n"
		" \"credentials\": {\"accountKey\": \"" TEST_KEY "\", \"accountKey\": \"" TEST_KEY
		"\"}}]}}",
		/* broken JSON right after the key */
		"{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		"\"mountVolumes\": {\"azureBlobFileSystems\": [{\"accountName\": \"a\",\n"
		" \"credentials\": {\"accountKey\": \"" TEST_KEY "\" \"x\"}}]}}",
		/* the key's quote never closed */
		"{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		"\"mountVolumes\": {\"azureBlobFileSystems\": [{\"accountName\": \"a\",\n"
		" \"credentials\": {\"accountKey\": \"" TEST_KEY "}}]}}",
		/* a bad escape inside the key */
		"{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		"\"mountVolumes\": {\"azureBlobFileSystems\": [{\"accountName\": \"a\",\n"
		" \"credentials\": {\"accountKey\": \"" TEST_KEY "\\q\"}}]}}",
		/* a NUL inside the key */
		"{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		"\"mountVolumes\": {\"azureBlobFileSystems\": [{\"accountName\": \"a\",\n"
		" \"containerName\": \"c\", \"relativeMountPath\": \"b\",\n"
		" \"credentials\": {\"accountKey\": \"" TEST_KEY "\\0\"}}]}}",
		/* the key in a secret, next to a misspelt field */
		"{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		"\"secrets\": [{\"name\": \"K\", \"valu\": \"" TEST_KEY "\"}]}",
		"{\"customToolkitSettings\": {\"commandLine\": \"x\"},\n"
		"\"secrets\": [{\"name\": \"K\", \"" TEST_KEY "\": 1}]}",
		/* the key in a secret, the job wrong elsewhere */
		"{\"secrets\": [{\"name\": \"K\", \"value\": \"" TEST_KEY "\"}], \"nodeCount\": 1}",
	};
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct job *job = NULL;
		int err;

		memset(errbuf, 0, sizeof(errbuf));
		err = job_parse_string(files[i], strlen(files[i]), "job.json", &job, errbuf,
				       sizeof(errbuf));
		if (err != -EINVAL)
			fprintf(stderr, "file %zu: %d\n", i, err);
		CHECK(err == -EINVAL);
		CHECK(errbuf[0] != '\0');
		CHECK(strstr(errbuf, "c2VjcmV0") == NULL); /* not even the start of it */
		CHECK(strstr(errbuf, "MDAwMDAwMDA") == NULL);
		job_free(job);
	}
	parse_fails(files[0], "t.yml:4: mountVolumes.azureBlobFileSystems[0].credentials: "
			      "unknown key (expected accountKey or accountKeySecretReference)");
	parse_fails(files[3], "t.yml:4: mountVolumes.azureBlobFileSystems[0].credentials: give "
			      "accountKey or accountKeySecretReference, not both");
	parse_fails(files[4], "t.yml:4: mountVolumes.azureBlobFileSystems[0].credentials: "
			      "duplicate key (first at line 4)");
}

/* Fake text: a mapping of n inputs, for the item limit. */
static char *many_inputs(size_t n)
{
	size_t cap = 64 + n * 16, len = 0, i;
	char *text = malloc(cap);

	if (!text)
		return NULL;
	len += (size_t)snprintf(text + len, cap - len, "command: x\ninputs:\n");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "  i%zu: %zu\n", i, i);
	return text;
}

static void test_hostile_input(void)
{
	struct job *job = NULL;
	char *text;
	size_t i;

	/* too big */
	text = calloc(1, JOB_FILE_MAX + 2);
	if (text) {
		memset(text, ' ', JOB_FILE_MAX + 1);
		CHECK(job_parse_string(text, JOB_FILE_MAX + 1, "big.yml", &job, errbuf,
				       sizeof(errbuf)) == -EFBIG);
		CHECK_STR(errbuf, "big.yml: larger than 262144 bytes");
		/* deep nesting, right up to the size cap (without the depth cap libyaml
		 * would take a minute over it) */
		for (i = 0; i < JOB_FILE_MAX / 2; i++)
			text[i] = '[';
		memcpy(text, "command: ", 9);
		CHECK(job_parse_string(text, JOB_FILE_MAX, "deep.yml", &job, errbuf,
				       sizeof(errbuf)) == -EINVAL);
		CHECK_STR(errbuf, "deep.yml:1:73: nested deeper than 64 levels");
		for (i = 0; i < JOB_FILE_MAX; i++)
			text[i] = i % 2 ? '{' : '[';
		CHECK(job_parse_string(text, JOB_FILE_MAX, "deep.yml", &job, errbuf,
				       sizeof(errbuf)) == -EINVAL);
		CHECK_STR(errbuf, "deep.yml:1:65: nested deeper than 64 levels");
		free(text);
	}

	/* a billion laughs: aliases are references, never expanded */
	parse_fails("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
		       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
		       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
		       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
		       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
		       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
		       "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
		       "command: x\n", "t.yml:1: a: unknown key");
	job = parse_ok("command: x\nlimits: {timeout: &t 5}\ndescription: *t\n"
		       "environment: &e {image: *e}\n"); /* a cycle, never walked */
	CHECK(job && job->timeout == 5 && job->environment == NULL);
	CHECK_STR(job ? job->description : NULL, "5");
	job_free(job);
	parse_fails("command: x\ninputs: &i {d: *i}\n",
		    "t.yml:2: inputs.d.d: unknown key (expected type, path or mode)");

	/* the item limit */
	text = many_inputs(JOB_ITEMS_MAX);
	if (text) {
		job = parse_ok(text);
		CHECK(job && job->ninputs == JOB_ITEMS_MAX);
		job_free(job);
		free(text);
	}
	text = many_inputs(JOB_ITEMS_MAX + 1);
	if (text) {
		parse_fails(text, "t.yml:3: inputs: more than 1024 entries");
		free(text);
	}

	/* control characters and long names stay out of the one-line message */
	parse_fails("command: x\ninputs:\n  d: {path: p, mode: \"a\\nb\\u0007c\"}\n",
		    "t.yml:3: inputs.d.mode: unknown mode 'a?b?c' (expected ro_mount, download or "
		    "direct)");
	parse_fails("command: x\n"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: 1\n",
		    "t.yml:2: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...: "
		    "unknown key");
	/* invalid UTF-8 */
	parse_fails("command: \xff\xfe x\n",
		    "t.yml: bad YAML: invalid leading UTF-8 octet at byte 9");
}

/* Every prefix of every sample, and every byte of it changed to one of the characters
 * YAML cares about (rotating), parse to 0 or -EINVAL with one line of message that
 * never holds the key. Under ASan and valgrind this also shows no crash and no leak
 * on broken input. */
static void test_mangled_samples(void)
{
	static const char *const names[] = {
		"azureml_full.yml", "azureml_docs_data.yml", "azureml_docs_iris.yml",
		"batchai_job.json",
	};
	static const char replacements[] = { '\0', '\t', '\n', ' ', '"', '\'', '{', '}', '[',
					     ']', ':', ',', '-', '&', '*', '!', '#', '|', '>',
					     '%', '@', '`', '\\', '$', '\x80', '?' };
	const size_t nrep = sizeof(replacements);
	size_t f, i, k, bad_results = 0, secret_leaks = 0, multi_line = 0, parses = 0;

	for (f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
		char *text = malloc(JOB_FILE_MAX + 1);
		FILE *fp = fopen(sample(names[f]), "rb");
		size_t len;

		CHECK(fp && text);
		if (!fp || !text) {
			free(text);
			if (fp)
				fclose(fp);
			continue;
		}
		len = fread(text, 1, JOB_FILE_MAX, fp);
		fclose(fp);
		for (i = 0; i <= len; i++) {
			for (k = 0; k < 2; k++) {
				char saved = i < len ? text[i] : 0;
				size_t parse_len = len;
				struct job *job = NULL;
				int err;

				if (k == 1)
					parse_len = i; /* the prefix */
				else if (i < len)
					text[i] = replacements[i % nrep];
				else
					continue;
				errbuf[0] = '\0';
				err = job_parse_string(text, parse_len, "m.yml", &job, errbuf,
						       sizeof(errbuf));
				if (i < len)
					text[i] = saved;
				parses++;
				bad_results += !(err == 0 || err == -EINVAL) ||
					       (err == 0) != (job != NULL) ||
					       (err != 0 && errbuf[0] == '\0');
				secret_leaks += strstr(errbuf, "c2VjcmV0") != NULL;
				multi_line += strchr(errbuf, '\n') != NULL;
				job_free(job);
			}
		}
		free(text);
	}
	CHECK(parses > 10000); /* the four samples hold 5,600 bytes */
	CHECK(bad_results == 0);
	CHECK(secret_leaks == 0);
	CHECK(multi_line == 0);
}

static void test_parse_file_errors(void)
{
	struct job *job = (struct job *)&job;
	char want[4200];

	CHECK(job_parse_file("/nonexistent/job.yml", &job, errbuf, sizeof(errbuf)) == -ENOENT);
	CHECK(job == NULL);
	CHECK_STR(errbuf, "/nonexistent/job.yml: No such file or directory");
	snprintf(want, sizeof(want), "%s: Is a directory", sample(""));
	CHECK(job_parse_file(sample(""), &job, errbuf, sizeof(errbuf)) == -EISDIR);
	CHECK_STR(errbuf, want);
	/* no errbuf at all */
	CHECK(job_parse_file(sample("bad_mode.yml"), &job, NULL, 0) == -EINVAL);
	CHECK(job_parse_string("a: [", 4, NULL, &job, NULL, 0) == -EINVAL);
	CHECK(job_parse_string("x: 1", 4, NULL, &job, errbuf, sizeof(errbuf)) == -EINVAL);
	CHECK_STR(errbuf, "<string>:1: x: unknown key");
	/* a tiny errbuf is cut, still terminated */
	CHECK(job_parse_string("x: 1", 4, NULL, &job, errbuf, 6) == -EINVAL);
	CHECK_STR(errbuf, "<stri");
}

static void test_names(void)
{
	CHECK_STR(job_data_type_name(JOB_URI_FILE), "uri_file");
	CHECK_STR(job_data_type_name(JOB_LITERAL), "literal");
	CHECK_STR(job_input_mode_name(JOB_DIRECT), "direct");
	CHECK_STR(job_output_mode_name(JOB_UPLOAD), "upload");
	job_free(NULL);
	job_wipe_secrets(NULL);
}

int main(void)
{
	RUN(test_azureml_full_job);
	RUN(test_azureml_docs_examples);
	RUN(test_timeout_forms);
	RUN(test_substitute_values);
	RUN(test_substitute_literals_and_spaces);
	RUN(test_substitute_edge_cases);
	RUN(test_command_placeholders_checked_at_parse);
	RUN(test_batchai_job);
	RUN(test_batchai_without_wrapper);
	RUN(test_dist_defaults);
	RUN(test_azureml_distribution);
	RUN(test_azureml_distribution_errors);
	RUN(test_batchai_toolkits);
	RUN(test_batchai_tensorflow);
	RUN(test_batchai_toolkit_errors);
	RUN(test_bad_files_name_the_field);
	RUN(test_more_errors_name_the_field);
	RUN(test_account_key_never_in_errors);
	RUN(test_hostile_input);
	RUN(test_mangled_samples);
	RUN(test_parse_file_errors);
	RUN(test_names);
	return unit_done();
}
