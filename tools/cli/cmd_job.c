#include "tools/cli/cmd_job.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "auth/base/util.h"
#include "tools/cli/cli.h"
#include "tools/launcher/jobs.h"

static const char cmd_job_usage[] =
	"usage: ferry job list [--experiment NAME]\n"
	"       ferry job show RUN\n"
	"       ferry job logs RUN [--rank N] [-f|--follow]\n"
	"       ferry job download RUN [--all | --output NAME] [-o|--download-path DIR]\n";

static const char cmd_job_help[] =
	"\n"
	"The runs ferry run recorded in the default datastore (workspaceblobstore), under\n"
	"runs/RUN/. list shows them newest first; show prints a run's record (JSON); logs\n"
	"prints its log (of rank 0, or of --rank N, in a run on many nodes), and with --follow keeps printing until the run ends, then exits 0\n"
	"when it Completed and 1 when it Failed or was Canceled; download fetches its\n"
	"artifacts and logs (and with --all or --output NAME its named outputs) into DIR\n"
	"(default: the current folder). Exit status: 0 done, 1 failed, 2 bad usage.\n"
	"docs/launcher.md has the details.\n";

struct cmd_job_args {
	const char *verb;
	const char *run;
	const char *experiment;
	bool follow;
	long rank; /* -1: the first */
	struct jobs_download download;
};

/* Long-only flags have val 0 (so getopt names them by their long name in messages);
 * cmd_job_codes gives each option, by index, the code the switch below uses. */
static const struct option cmd_job_options[] = {
	{ "experiment", required_argument, NULL, 0 },
	{ "follow", no_argument, NULL, 'f' },
	{ "all", no_argument, NULL, 0 },
	{ "output", required_argument, NULL, 0 },
	{ "download-path", required_argument, NULL, 'o' },
	{ "help", no_argument, NULL, 'h' },
	{ "rank", required_argument, NULL, 0 },
	{ NULL, 0, NULL, 0 },
};
static const int cmd_job_codes[] = { 'e', 'f', 'a', 'O', 'o', 'h', 'r' };

/* The flags each verb takes, as getopt's vals. */
static bool cmd_job_takes(const char *verb, int flag)
{
	if (flag == 'h')
		return true;
	if (!strcmp(verb, "list"))
		return flag == 'e';
	if (!strcmp(verb, "logs"))
		return flag == 'f' || flag == 'r';
	if (!strcmp(verb, "download"))
		return flag == 'a' || flag == 'O' || flag == 'o';
	return false;
}

/* Parses argv (argv[0] is the verb): 0 to go on, or the exit status (help: 0). */
static int cmd_job_parse(int argc, char **argv, struct cmd_job_args *a, bool *done)
{
	char cmd[32];
	int c, index = 0;

	snprintf(cmd, sizeof(cmd), "job %s", a->verb);
	cli_getopt_reset();
	while ((c = getopt_long(argc, argv, ":ho:f", cmd_job_options, &index)) != -1) {
		if (c == 0)
			c = cmd_job_codes[index];
		if (c == '?' || c == ':')
			return cli_bad_option(cmd, c, argv, cmd_job_options, cmd_job_usage);
		if (!cmd_job_takes(a->verb, c))
			return cli_usage_error(cmd, cmd_job_usage, "'%s' takes no flag '%s%s'",
					       a->verb, strncmp(argv[optind - 1], "--", 2) ? "" : "--",
					       strncmp(argv[optind - 1], "--", 2) ? argv[optind - 1]
					       : cmd_job_options[index].name);
		switch (c) {
		case 'h':
			printf("%s%s", cmd_job_usage, cmd_job_help);
			*done = true;
			return 0;
		case 'e': a->experiment = optarg; break;
		case 'f': a->follow = true; break;
		case 'r':
			if (util_parse_long(optarg, 0, RECORD_PROCS_MAX - 1, &a->rank) != 0)
				return cli_usage_error(cmd, cmd_job_usage, "--rank takes a whole "
						       "number, not '%.32s'", optarg);
			break;
		case 'a': a->download.all = true; break;
		case 'O': a->download.output = optarg; break;
		case 'o': a->download.dir = optarg; break;
		}
	}
	if (!strcmp(a->verb, "list"))
		return optind == argc ? 0 : cli_usage_error(cmd, cmd_job_usage,
							    "unexpected argument '%s'",
							    argv[optind]);
	if (optind == argc)
		return cli_usage_error(cmd, cmd_job_usage, "RUN is missing");
	if (optind + 1 != argc)
		return cli_usage_error(cmd, cmd_job_usage, "one RUN only, not also '%.64s'",
				       argv[optind + 1]);
	a->run = argv[optind];
	if (!record_id_valid(a->run))
		return cli_usage_error(cmd, cmd_job_usage, "'%.64s' is not a run id (letters, "
				       "digits, '_', '-' and '.')", a->run);
	return 0;
}

/* Runs the verb against the opened runs; the exit status. */
static int cmd_job_do(struct jobs *jobs, const struct cmd_job_args *a)
{
	enum record_status status = RECORD_QUEUED;
	char errbuf[2048];
	int err;

	if (!strcmp(a->verb, "list"))
		return jobs_list(jobs, a->experiment, stdout, stderr) ? CLI_EXIT_FAILED : 0;
	if (!strcmp(a->verb, "show"))
		err = jobs_show(jobs, a->run, stdout, errbuf, sizeof(errbuf));
	else if (!strcmp(a->verb, "logs"))
		err = jobs_logs(jobs, a->run, a->rank, a->follow, stdout, &status, errbuf,
				sizeof(errbuf));
	else
		err = jobs_download(jobs, a->run, &a->download, errbuf, sizeof(errbuf));
	if (err) {
		fprintf(stderr, "ferry job %s: %s\n", a->verb, errbuf);
		return CLI_EXIT_FAILED;
	}
	if (a->follow && status != RECORD_COMPLETED)
		return CLI_EXIT_FAILED;
	return 0;
}

int cmd_job(int argc, char **argv)
{
	static const char *const verbs[] = { "list", "show", "logs", "download" };
	struct cmd_job_args a = { .download.dir = ".", .rank = -1 };
	struct jobs *jobs;
	char errbuf[2048];
	bool done = false;
	int status;

	if (argc < 1)
		return cli_usage_error("job", cmd_job_usage, "which? list, show, logs or download");
	if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")) {
		printf("%s%s", cmd_job_usage, cmd_job_help);
		return 0;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(argv[0], verbs[i]))
			a.verb = verbs[i];
	if (!a.verb)
		return cli_usage_error("job", cmd_job_usage, "unknown command '%.64s' (list, show, "
				       "logs or download)", argv[0]);
	status = cmd_job_parse(argc, argv, &a, &done);
	if (status || done)
		return status;
	if (jobs_open(&jobs, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "ferry job %s: %s\n", a.verb, errbuf);
		return CLI_EXIT_FAILED;
	}
	status = cmd_job_do(jobs, &a);
	jobs_close(jobs);
	return status;
}
