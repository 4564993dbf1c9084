/* ferry: the command line. Each subcommand parses its arguments and calls the library. */
#include <curl/curl.h>
#include <errno.h>
#include <fuse.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <limits.h>
#include <lz4.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "auth/base/util.h"
#include "fs/mount.h"
#include "tools/cli/cli.h"
#include "tools/cli/cmd_data.h"
#include "tools/cli/cmd_job.h"
#include "tools/cli/cmd_status.h"
#include "tools/launcher/run.h"

static const char ferry_mount_usage[] =
	"usage: ferry mount URL MOUNTPOINT [-o OPTION[,OPTION...]] [-f|--foreground]\n"
	"       ferry mount list\n";
static const char ferry_unmount_usage[] =
	"usage: ferry unmount [-z|--lazy] (MOUNTPOINT | --all)\n";
static const char ferry_run_usage[] =
	"usage: ferry run JOBFILE [--engine local|slurm|mpi] [--hostfile FILE] [--shared-temp DIR]\n";

static const char ferry_mount_help[] =
	"URL is a container, optionally with a prefix:\n"
	"  https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]\n"
	"  http(s)://HOST[:PORT]/ACCOUNT/CONTAINER[/PREFIX]   (emulators, private endpoints)\n"
	"Credentials come from -o account_key_file=, sas_file=, bearer_token_file= or the\n"
	"environment: AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT +\n"
	"AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_BEARER_TOKEN.\n"
	"Relative paths (MOUNTPOINT, cache_dir=, ..._file=) are taken from the current\n"
	"folder. Options are described in docs/configuration.md.\n";

/* Every -o option of ferry mount (mount.c), one line each. */
static const char ferry_mount_options[] =
	"\nOptions (-o):\n"
	"  ro, rw                    read-only, or read-write (the default)\n"
	"  kind=blob|file            what a path-style URL names: a container or a share\n"
	"  conflict=fail|overwrite   a file changed elsewhere since it was opened: fail the\n"
	"                            close (default) or let the last writer win\n"
	"  attr_timeout=S            seconds attributes are cached (60)\n"
	"  entry_timeout=S           seconds names and listings are cached (60)\n"
	"  negative_timeout=S        seconds a missing name is remembered (5)\n"
	"  account_key_file=PATH     the account key, in a file\n"
	"  sas_file=PATH             a SAS, in a file\n"
	"  bearer_token_file=PATH    a bearer token, in a file\n"
	"  ca_file=PATH              extra CA bundle for TLS\n"
	"  allow_http                plain http to a host that is not loopback\n"
	"  allow_other               other users may use the mount\n"
	"  nonempty                  mount over a folder that holds files (hiding them)\n"
	"  uid=N, gid=N              owner shown for every file (the mounting user)\n"
	"  umask=OOO                 applied to 0777 and 0666 (022)\n"
	"  workers=N                 parallel HTTP requests (8)\n"
	"  timeout=S                 bound on one storage operation, retries included (60)\n"
	"  log_level=error|warn|info|debug, debug   what is logged (warn); debug: every\n"
	"                            request and every FUSE operation\n"
	"  log_file=PATH             log to this file (appended) instead of syslog\n"
	"  block_size=SIZE           download and cache unit (16M)\n"
	"  cache_mem=SIZE            memory for cached blocks (256M)\n"
	"  cache_dir=PATH            disk tier for cached blocks and staged writes (none)\n"
	"  cache_size=SIZE           bound on the disk tier (10G)\n"
	"  prefetch_window=SIZE      read-ahead cap per open file (64M)\n"
	"fstab's generic options (defaults, _netdev, nofail, noauto, user, ...) are accepted\n"
	"and ignored.\n";

static void ferry_usage(FILE *out)
{
	fprintf(out,
		"%s"
		"       ferry unmount [-z] (MOUNTPOINT | --all)\n"
		"       ferry status [MOUNTPOINT] [--json | --prometheus]\n"
		"       ferry run JOBFILE [--engine local|slurm|mpi] [--hostfile FILE]   (docs/launcher.md)\n"
		"       ferry job list [--experiment NAME] | show RUN | logs RUN [--follow]\n"
		"       ferry job download RUN [--all | --output NAME] [-o DIR]\n"
		"       %s"
		"       %s"
		"       %s"
		"       ferry --version\n"
		"Each command's --help tells more.\n"
		"\n%s"
		"Datastores, URIs, cp and ls: docs/datastores.md.\n",
		ferry_mount_usage, cmd_datastore_lines, cmd_cp_lines, cmd_ls_lines,
		ferry_mount_help);
}

static int ferry_mount_print(void *ctx, const struct mount_entry *e)
{
	(void)ctx;
	printf("%s  %s  %s\n", e->mountpoint, e->read_only ? "ro" : "rw", e->source);
	return 0;
}

/* ferry mount list: every ferry mount here, one a line. */
static int ferry_mount_list(void)
{
	int err = mount_list(ferry_mount_print, NULL);

	if (err) {
		fprintf(stderr, "ferry mount list: cannot read /proc/self/mounts: %s\n",
			strerror(-err));
		return CLI_EXIT_FAILED;
	}
	return 0;
}

static int ferry_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "options", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mount_options mo;
	char errbuf[1024] = "";
	int opt, err;

	mount_options_default(&mo);
	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":fo:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			mo.foreground = true;
			break;
		case 'o':
			if (mount_parse_options(&mo, optarg, errbuf, sizeof(errbuf)) != 0) {
				/* one line, as mount(8) shows it for an fstab line */
				fprintf(stderr, "ferry mount: %s\n", errbuf);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h':
			printf("%s%s%s", ferry_mount_usage, ferry_mount_help, ferry_mount_options);
			return 0;
		default:
			return cli_bad_option("mount", opt, argv, longopts, ferry_mount_usage);
		}
	}
	if (argc - optind == 1 && strcmp(argv[optind], "list") == 0)
		return ferry_mount_list();
	if (argc - optind != 2)
		return cli_usage_error("mount", ferry_mount_usage, "give a URL and a MOUNTPOINT");
	mo.url = argv[optind];
	mo.mountpoint = argv[optind + 1];
	err = mount_run(&mo, errbuf, sizeof(errbuf));
	if (err) {
		fprintf(stderr, "ferry mount: %s\n", errbuf[0] ? errbuf : strerror(-err));
		return CLI_EXIT_FAILED;
	}
	return 0;
}

/* The mount points of every ferry mount, in table order. */
struct ferry_mounts {
	char **paths;
	size_t n;
};

static int ferry_mount_collect(void *ctx, const struct mount_entry *e)
{
	struct ferry_mounts *all = ctx;
	char **grown = realloc(all->paths, (all->n + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	all->paths = grown;
	all->paths[all->n] = strdup(e->mountpoint);
	return all->paths[all->n] ? (all->n++, 0) : -ENOMEM;
}

/* ferry unmount --all: the last mounted first, so mounts inside others go first. */
static int ferry_unmount_all(bool lazy)
{
	struct ferry_mounts all = { 0 };
	char errbuf[1024];
	int err = mount_list(ferry_mount_collect, &all), status = 0;

	if (err) {
		fprintf(stderr, "ferry unmount: cannot list the mounts: %s\n", strerror(-err));
		status = CLI_EXIT_FAILED;
	}
	for (size_t i = all.n; !err && i-- > 0;) {
		if (mount_unmount(all.paths[i], lazy, errbuf, sizeof(errbuf)) != 0) {
			fprintf(stderr, "ferry unmount: %s\n", errbuf);
			status = CLI_EXIT_FAILED;
		}
	}
	for (size_t i = 0; i < all.n; i++)
		free(all.paths[i]);
	free(all.paths);
	return status;
}

static int ferry_unmount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "lazy", no_argument, NULL, 'z' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char errbuf[1024] = "";
	bool lazy = false, all = false;
	int opt;

	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":zah", longopts, NULL)) != -1) {
		switch (opt) {
		case 'z':
			lazy = true;
			break;
		case 'a':
			all = true;
			break;
		case 'h':
			printf("%s-z detaches a busy mount now; it goes once nothing uses it.\n"
			       "--all unmounts every ferry mount (ferry mount list shows them).\n",
			       ferry_unmount_usage);
			return 0;
		default:
			return cli_bad_option("unmount", opt, argv, longopts, ferry_unmount_usage);
		}
	}
	if (all && argc - optind == 0)
		return ferry_unmount_all(lazy);
	if (all || argc - optind != 1)
		return cli_usage_error("unmount", ferry_unmount_usage,
				       "give one MOUNTPOINT, or --all");
	if (mount_unmount(argv[optind], lazy, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "ferry unmount: %s\n", errbuf);
		return CLI_EXIT_FAILED;
	}
	return 0;
}

static int ferry_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "engine", required_argument, NULL, 'e' },
		{ "hostfile", required_argument, NULL, 'H' },
		{ "shared-temp", required_argument, NULL, 'S' },
		{ "task", no_argument, NULL, 'T' }, /* a slot started by an engine */
		{ NULL, 0, NULL, 0 },
	};
	static const char *const engines[] = { "local", "slurm", "mpi" };
	struct run_opts opts = { .engine = RUN_ENGINE_LOCAL };
	char job_path[PATH_MAX];
	int opt;
	size_t i;

	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			printf("%sRuns an Azure ML command job or a Batch AI job file: on this "
			       "machine (local), or on\nmany nodes through Slurm's srun or Open MPI's "
			       "mpirun (docs/launcher.md).\n", ferry_run_usage);
			return 0;
		case 'e':
			for (i = 0; i < 3 && strcmp(optarg, engines[i]) != 0; i++)
				;
			if (i == 3)
				return cli_usage_error("run", ferry_run_usage,
						       "--engine takes local, slurm or mpi");
			opts.engine = (enum run_engine)i;
			break;
		case 'H':
			opts.hostfile = optarg;
			break;
		case 'S': /* for every node of the run, through the engine */
			if (!realpath(optarg, job_path) || setenv("FERRY_SHARED_TEMP", job_path, 1))
				return cli_usage_error("run", ferry_run_usage, "--shared-temp %s: %s",
						       optarg, strerror(errno));
			break;
		case 'T':
			opts.task = true;
			break;
		default:
			return cli_bad_option("run", opt, argv, longopts, ferry_run_usage);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("run", ferry_run_usage, "give one JOBFILE");
	if (opts.hostfile && opts.engine != RUN_ENGINE_MPI)
		return cli_usage_error("run", ferry_run_usage, "--hostfile goes with --engine mpi");
	if (opts.task && opts.engine == RUN_ENGINE_LOCAL)
		return cli_usage_error("run", ferry_run_usage, "--task goes with --engine");
	/* The job's relative paths are the file's folder's: the launcher gets it absolute.
	 * A file that cannot be resolved is the launcher's to report. */
	if (!realpath(argv[optind], job_path) &&
	    util_path_join(job_path, sizeof(job_path), "", argv[optind]) != 0)
		return cli_usage_error("run", ferry_run_usage, "the JOBFILE path is too long");
	opts.job_path = job_path;
	return run_job(&opts);
}

/* The commands, for suggestions. */
static const struct option ferry_commands[] = {
	{ "mount", 0, NULL, 0 }, { "unmount", 0, NULL, 0 }, { "run", 0, NULL, 0 },
	{ "job", 0, NULL, 0 },   { "datastore", 0, NULL, 0 }, { "cp", 0, NULL, 0 },
	{ "ls", 0, NULL, 0 },    { "status", 0, NULL, 0 },    { "version", 0, NULL, 0 },
	{ "help", 0, NULL, 0 },
	{ NULL, 0, NULL, 0 },
};

/* ferry's version, and those of the libraries it runs with (not built against). */
static int ferry_version(void)
{
	const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);
	int xml = atoi(xmlParserVersion); /* "20914" is 2.9.14 */

	printf("ferry %s\n", FERRY_VERSION);
	printf("libfuse %s\n", fuse_pkgversion());
	printf("libcurl %s (%s)\n", curl->version, curl->ssl_version ? curl->ssl_version : "no TLS");
	printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
	printf("libxml2 %d.%d.%d, lz4 %s, libyaml %s, jansson %s\n", xml / 10000,
	       xml / 100 % 100, xml % 100, LZ4_versionString(), yaml_get_version_string(),
	       jansson_version_str());
	return 0;
}

static int ferry_command(int argc, char **argv)
{
	const char *cmd = argv[0];

	if (strcmp(cmd, "mount") == 0)
		return ferry_mount(argc, argv);
	if (strcmp(cmd, "unmount") == 0 || strcmp(cmd, "umount") == 0)
		return ferry_unmount(argc, argv);
	if (strcmp(cmd, "run") == 0)
		return ferry_run(argc, argv);
	if (strcmp(cmd, "job") == 0)
		return cmd_job(argc - 1, argv + 1);
	if (strcmp(cmd, "datastore") == 0)
		return cmd_datastore(argc, argv);
	if (strcmp(cmd, "cp") == 0)
		return cmd_cp(argc, argv);
	if (strcmp(cmd, "ls") == 0)
		return cmd_ls(argc, argv);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(cmd, "version") == 0)
		return ferry_version();
	if (strcmp(cmd, "help") == 0) {
		ferry_usage(stdout);
		return 0;
	}
	cli_unknown("", "command", "", cmd, ferry_commands, "");
	ferry_usage(stderr);
	return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	cli_getopt_reset();
	/* '+': the options of ferry itself end at the command */
	while ((opt = getopt_long(argc, argv, "+:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			ferry_usage(stdout);
			return 0;
		case 'V':
			return ferry_version();
		default:
			cli_bad_option("", opt, argv, longopts, "");
			ferry_usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		ferry_usage(stderr);
		return CLI_EXIT_USAGE;
	}
	return ferry_command(argc - optind, argv + optind);
}
