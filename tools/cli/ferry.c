/* ferry: the command line. Each subcommand parses its arguments and calls the library. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/mount.h"
#include "tools/cli/cmd_data.h"
#include "tools/cli/cmd_job.h"
#include "tools/launcher/run.h"

#define FERRY_EXIT_USAGE 2

static void ferry_usage(FILE *out)
{
	fprintf(out,
		"usage: ferry mount URL MOUNTPOINT [-o OPTION[,OPTION...]] [-f|--foreground]\n"
		"       ferry unmount [-z] MOUNTPOINT\n"
		"       ferry run JOBFILE               (docs/launcher.md)\n"
		"       ferry job list [--experiment NAME] | show RUN | logs RUN [--follow]\n"
		"       ferry job download RUN [--all | --output NAME] [-o DIR]\n"
		"%s"
		"       ferry --version\n"
		"\n"
		"URL is a container, optionally with a prefix:\n"
		"  https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]\n"
		"  http(s)://HOST[:PORT]/ACCOUNT/CONTAINER[/PREFIX]   (emulators, private endpoints)\n"
		"Credentials come from -o account_key_file=, sas_file=, bearer_token_file= or the\n"
		"environment: AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT +\n"
		"AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_BEARER_TOKEN.\n"
		"Options are described in docs/configuration.md; datastores, URIs, cp and ls in\n"
		"docs/datastores.md.\n",
		cmd_data_usage);
}

static int ferry_mount(int argc, char **argv)
{
	struct mount_options mo;
	char errbuf[1024] = "";
	const char *positional[2];
	int npositional = 0, err;

	mount_options_default(&mo);
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "-f") == 0 || strcmp(arg, "--foreground") == 0) {
			mo.foreground = true;
		} else if (strncmp(arg, "-o", 2) == 0) {
			const char *list = arg[2] ? arg + 2 : (i + 1 < argc ? argv[++i] : NULL);

			if (!list) {
				fprintf(stderr, "ferry mount: -o needs a list of options\n");
				return FERRY_EXIT_USAGE;
			}
			err = mount_parse_options(&mo, list, errbuf, sizeof(errbuf));
			if (err) {
				fprintf(stderr, "ferry mount: %s\n", errbuf);
				return FERRY_EXIT_USAGE;
			}
		} else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			ferry_usage(stdout);
			return 0;
		} else if (arg[0] == '-' && arg[1]) {
			fprintf(stderr, "ferry mount: unknown flag '%s'\n", arg);
			return FERRY_EXIT_USAGE;
		} else if (npositional < 2) {
			positional[npositional++] = arg;
		} else {
			fprintf(stderr, "ferry mount: too many arguments\n");
			return FERRY_EXIT_USAGE;
		}
	}
	if (npositional != 2) {
		ferry_usage(stderr);
		return FERRY_EXIT_USAGE;
	}
	mo.url = positional[0];
	mo.mountpoint = positional[1];
	err = mount_run(&mo, errbuf, sizeof(errbuf));
	if (err) {
		fprintf(stderr, "ferry mount: %s\n", errbuf[0] ? errbuf : strerror(-err));
		return 1;
	}
	return 0;
}

static int ferry_unmount(int argc, char **argv)
{
	char errbuf[1024] = "";
	const char *mountpoint = NULL;
	bool lazy = false;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-z") == 0 || strcmp(argv[i], "--lazy") == 0)
			lazy = true;
		else if (!mountpoint && argv[i][0] != '-')
			mountpoint = argv[i];
		else
			return ferry_unmount(0, NULL); /* prints the usage */
	}
	if (!mountpoint) {
		fprintf(stderr, "usage: ferry unmount [-z] MOUNTPOINT\n");
		return FERRY_EXIT_USAGE;
	}
	if (mount_unmount(mountpoint, lazy, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "ferry unmount: %s\n", errbuf);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		ferry_usage(stderr);
		return FERRY_EXIT_USAGE;
	}
	if (strcmp(argv[1], "mount") == 0)
		return ferry_mount(argc - 2, argv + 2);
	if (strcmp(argv[1], "unmount") == 0 || strcmp(argv[1], "umount") == 0)
		return ferry_unmount(argc - 2, argv + 2);
	if (strcmp(argv[1], "run") == 0) {
		if (argc != 3 || argv[2][0] == '-') {
			fprintf(stderr, "usage: ferry run JOBFILE\n");
			return FERRY_EXIT_USAGE;
		}
		return run_job(&(struct run_opts){ .job_path = argv[2] });
	}
	if (strcmp(argv[1], "job") == 0)
		return cmd_job(argc - 2, argv + 2);
	if (strcmp(argv[1], "datastore") == 0)
		return cmd_datastore(argc - 2, argv + 2);
	if (strcmp(argv[1], "cp") == 0)
		return cmd_cp(argc - 2, argv + 2);
	if (strcmp(argv[1], "ls") == 0)
		return cmd_ls(argc - 2, argv + 2);
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("ferry %s\n", FERRY_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		ferry_usage(stdout);
		return 0;
	}
	fprintf(stderr, "ferry: unknown command '%s'\n", argv[1]);
	ferry_usage(stderr);
	return FERRY_EXIT_USAGE;
}
