/* fuzz_jobfile: a job file (Azure ML YAML or Batch AI JSON) parsed with
 * job_parse_string; on success its command goes through job_substitute, once without
 * values and once with a value for every input and output. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/launcher/job/jobfile.h"
#include "tests/fuzz/fuzz.h"

FUZZ_NO_SETUP

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	struct job *job = NULL;
	if (job_parse_string((const char *)data, size, "fuzz.yml", &job, err, sizeof(err)) != 0)
		return 0;

	char *out = NULL;
	if (job_substitute(job, NULL, job->command, &out, err, sizeof(err)) == 0)
		free(out);

	const char **in = calloc(job->ninputs + 1, sizeof(*in));
	const char **outv = calloc(job->noutputs + 1, sizeof(*outv));
	if (in && outv) {
		for (size_t i = 0; i < job->ninputs; i++) {
			in[i] = job->inputs[i].name; /* any non-NULL string will do */
			(void)job_find_input(job, job->inputs[i].name);
		}
		for (size_t i = 0; i < job->noutputs; i++) {
			outv[i] = job->outputs[i].name;
			(void)job_find_output(job, job->outputs[i].name);
		}
		struct job_values v = { .inputs = in, .outputs = outv };
		out = NULL;
		if (job_substitute(job, &v, job->command, &out, err, sizeof(err)) == 0)
			free(out);
	}
	free(in);
	free(outv);
	job_wipe_secrets(job);
	job_free(job);
	return 0;
}
