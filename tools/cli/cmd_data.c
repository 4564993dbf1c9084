/* cmd_data: `ferry datastore`, `ferry cp`, `ferry ls`. */
#include "tools/cli/cmd_data.h"

#include <errno.h>
#include <fuse_opt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/base/log.h"
#include "auth/base/util.h"
#include "cache/store/datastore.h"
#include "tools/cli/cli.h"
#include "tools/lib/transfer.h"

#define CMD_URI_MAX 8192
/* What a parsing step returns when the command goes on; else it returns the exit status. */
#define CMD_GO_ON (-1)

#define CMD_DATASTORE_USAGE                                                                  \
	"ferry datastore add NAME (--account ACCOUNT | --endpoint URL) --container CONTAINER\n" \
	"                 [--prefix PATH] [--account-key-file FILE | --sas-file FILE |\n"       \
	"                 --credential env|none|account_key|sas|emulator] [--create-container]\n" \
	"                 [--force]\n"                                                          \
	"       ferry datastore list | show NAME | remove NAME\n"
#define CMD_CP_USAGE "ferry cp [-r] [-q] [-o OPTION[,OPTION...]] SRC DST\n"
#define CMD_LS_USAGE "ferry ls [-l] [-R] [-o OPTION[,OPTION...]] URI\n"
#define CMD_URI_HELP                                                                         \
	"URI is azureml://datastores/NAME/paths/PATH or a container URL with a path\n"         \
	"(https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH,\n"                             \
	"http://127.0.0.1:10000/ACCOUNT/CONTAINER/PATH); see docs/datastores.md.\n"

const char cmd_data_usage[] =
	"       " CMD_DATASTORE_USAGE "       " CMD_CP_USAGE "       " CMD_LS_USAGE;

/* Prints a command's usage and help on stdout: exit status 0. */
static int cmd_help(const char *usage, const char *help)
{
	printf("%s%s", usage, help);
	return 0;
}

/* Secrets ----------------------------------------------------------------------------- */

static const char *cmd_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The secret of kind cred from the az CLI variables, for account. */
static int cmd_secret_from_env(enum datastore_cred cred, const char *account, char **out,
			       char *errbuf, size_t errlen)
{
	const char *value = cmd_env(cred == DATASTORE_CRED_SAS ? "AZURE_STORAGE_SAS_TOKEN"
							       : "AZURE_STORAGE_KEY");
	const char *env_account = cmd_env("AZURE_STORAGE_ACCOUNT");
	const char *connstr = cmd_env("AZURE_STORAGE_CONNECTION_STRING");
	struct auth_connstr cs = { 0 };
	char perr[256];
	int err = 0;

	if (cred == DATASTORE_CRED_ACCOUNT_KEY && value && env_account &&
	    strcmp(env_account, account) != 0) {
		util_errf(errbuf, errlen,
			 "AZURE_STORAGE_ACCOUNT is '%s' but the datastore's account is '%s'; the "
			 "key of one account does not sign for another",
			 env_account, account);
		return -EINVAL;
	}
	if (!value && connstr) {
		err = auth_connstr_parse(connstr, &cs, perr, sizeof(perr));
		if (err) {
			util_errf(errbuf, errlen, "AZURE_STORAGE_CONNECTION_STRING: %s", perr);
			return err;
		}
		value = cred == DATASTORE_CRED_SAS ? cs.sas : cs.account_key;
		if (cred == DATASTORE_CRED_ACCOUNT_KEY && value && cs.account_name &&
		    strcmp(cs.account_name, account) != 0) {
			util_errf(errbuf, errlen,
				 "AZURE_STORAGE_CONNECTION_STRING names account '%s' but the "
				 "datastore's account is '%s'",
				 cs.account_name, account);
			err = -EINVAL;
			goto out_free;
		}
	}
	if (!value) {
		util_errf(errbuf, errlen,
			 cred == DATASTORE_CRED_SAS
				 ? "--credential sas: give --sas-file FILE, or set "
				   "AZURE_STORAGE_SAS_TOKEN (or a connection string with "
				   "SharedAccessSignature=)"
				 : "--credential account_key: give --account-key-file FILE, or set "
				   "AZURE_STORAGE_KEY (or AZURE_STORAGE_CONNECTION_STRING with "
				   "AccountKey=)");
		err = -EINVAL;
		goto out_free;
	}
	*out = strdup(value);
	if (!*out)
		err = -ENOMEM;
out_free:
	auth_connstr_free(&cs);
	return err;
}

/* Checks that secret is a key (or SAS) before it is stored. */
static int cmd_check_secret(enum datastore_cred cred, const char *account, const char *secret,
			    const char *source, char *errbuf, size_t errlen)
{
	struct auth_cred *c = NULL;
	int err;

	if (cred == DATASTORE_CRED_SAS)
		err = auth_cred_sas(secret, &c);
	else
		err = auth_cred_shared_key(account, secret, &c);
	auth_cred_free(c);
	if (err == -EINVAL)
		util_errf(errbuf, errlen, "%s: %s", source,
			 cred == DATASTORE_CRED_SAS
				 ? "not a SAS token (needs a sig= parameter, no spaces)"
				 : "not an account key (base64)");
	else if (err)
		util_errf(errbuf, errlen, "%s: %s", source, strerror(-err));
	return err;
}

/* ferry datastore ---------------------------------------------------------------------- */

static const char cmd_datastore_usage[] = "usage: " CMD_DATASTORE_USAGE;

/* The arguments of `ferry datastore add`. */
struct cmd_add_args {
	struct datastore ds;
	const char *key_file, *sas_file, *cred_name;
	bool force;
};

enum {
	CMD_ADD_ACCOUNT = 256,
	CMD_ADD_CONTAINER,
	CMD_ADD_ENDPOINT,
	CMD_ADD_PREFIX,
	CMD_ADD_KEY_FILE,
	CMD_ADD_SAS_FILE,
	CMD_ADD_CREDENTIAL,
	CMD_ADD_CREATE_CONTAINER,
	CMD_ADD_FORCE,
	CMD_ADD_SECRET, /* a secret on the command line: refused */
};

static const struct option cmd_add_longopts[] = {
	{ "account", required_argument, NULL, CMD_ADD_ACCOUNT },
	{ "container", required_argument, NULL, CMD_ADD_CONTAINER },
	{ "endpoint", required_argument, NULL, CMD_ADD_ENDPOINT },
	{ "prefix", required_argument, NULL, CMD_ADD_PREFIX },
	{ "account-key-file", required_argument, NULL, CMD_ADD_KEY_FILE },
	{ "sas-file", required_argument, NULL, CMD_ADD_SAS_FILE },
	{ "credential", required_argument, NULL, CMD_ADD_CREDENTIAL },
	{ "create-container", no_argument, NULL, CMD_ADD_CREATE_CONTAINER },
	{ "force", no_argument, NULL, CMD_ADD_FORCE },
	{ "account-key", optional_argument, NULL, CMD_ADD_SECRET },
	{ "sas", optional_argument, NULL, CMD_ADD_SECRET },
	{ "sas-token", optional_argument, NULL, CMD_ADD_SECRET },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Copies the value of --flag into field: CMD_GO_ON, or the usage error's exit status. */
static int cmd_add_field(const char *flag, const char *value, char *field, size_t size)
{
	if (!*value || strlen(value) >= size)
		return cli_usage_error("datastore add", cmd_datastore_usage, "--%s needs a value%s",
				       flag, *value ? " (this one is too long)" : "");
	memcpy(field, value, strlen(value) + 1);
	return CMD_GO_ON;
}

/* One flag of `ferry datastore add` (flag: its long name): CMD_GO_ON, or the exit
 * status. */
static int cmd_add_flag(struct cmd_add_args *a, int opt, const char *flag, char **argv)
{
	struct datastore *ds = &a->ds;

	switch (opt) {
	case CMD_ADD_ACCOUNT:
		return cmd_add_field(flag, optarg, ds->account, sizeof(ds->account));
	case CMD_ADD_CONTAINER:
		return cmd_add_field(flag, optarg, ds->container, sizeof(ds->container));
	case CMD_ADD_ENDPOINT:
		return cmd_add_field(flag, optarg, ds->endpoint, sizeof(ds->endpoint));
	case CMD_ADD_PREFIX:
		return cmd_add_field(flag, optarg, ds->prefix, sizeof(ds->prefix));
	case CMD_ADD_KEY_FILE:
	case CMD_ADD_SAS_FILE:
	case CMD_ADD_CREDENTIAL:
		if (!*optarg)
			return cli_usage_error("datastore add", cmd_datastore_usage,
					       "--%s needs a value", flag);
		*(opt == CMD_ADD_KEY_FILE ? &a->key_file
		  : opt == CMD_ADD_SAS_FILE ? &a->sas_file : &a->cred_name) = optarg;
		return CMD_GO_ON;
	case CMD_ADD_CREATE_CONTAINER:
		ds->create_container = true;
		return CMD_GO_ON;
	case CMD_ADD_FORCE:
		a->force = true;
		return CMD_GO_ON;
	case CMD_ADD_SECRET:
		fprintf(stderr, "ferry datastore add: secrets are never taken on the command line "
				"(every user can read it in /proc); use --account-key-file FILE, "
				"--sas-file FILE, or AZURE_STORAGE_KEY / AZURE_STORAGE_SAS_TOKEN with "
				"--credential account_key / sas\n");
		return CLI_EXIT_USAGE;
	case 'h':
		printf("%sAdds (or with --force replaces) a datastore record; see "
		       "docs/datastores.md.\n", cmd_datastore_usage);
		return 0;
	default:
		return cli_bad_option("datastore add", opt, argv, cmd_add_longopts,
				      cmd_datastore_usage);
	}
}

/* The flags and NAME of `ferry datastore add`: CMD_GO_ON, or the exit status. */
static int cmd_add_parse(int argc, char **argv, struct cmd_add_args *a)
{
	int opt, index, status;

	memset(a, 0, sizeof(*a));
	a->ds.cred = DATASTORE_CRED_ENV;
	cli_getopt_reset();
	while (index = -1, (opt = getopt_long(argc, argv, ":h", cmd_add_longopts, &index)) != -1) {
		status = cmd_add_flag(a, opt, index >= 0 ? cmd_add_longopts[index].name : "", argv);
		if (status != CMD_GO_ON)
			return status;
	}
	if (argc - optind != 1)
		return cli_usage_error("datastore add", cmd_datastore_usage, "give one NAME");
	if (strlen(argv[optind]) >= sizeof(a->ds.name) || !datastore_name_valid(argv[optind]))
		return cli_usage_error("datastore add", cmd_datastore_usage,
				       "'%s' is not a datastore name: use 1-64 letters, digits, '_' "
				       "or '-', starting with a letter or digit", argv[optind]);
	memcpy(a->ds.name, argv[optind], strlen(argv[optind]) + 1);
	return CMD_GO_ON;
}

/* The credential kind the flags choose: CMD_GO_ON, or the usage error's exit status. */
static int cmd_add_credential(struct cmd_add_args *a)
{
	enum datastore_cred named;

	if (a->key_file && a->sas_file)
		return cli_usage_error("datastore add", cmd_datastore_usage,
				       "give --account-key-file or --sas-file, not both");
	if (a->key_file)
		a->ds.cred = DATASTORE_CRED_ACCOUNT_KEY;
	if (a->sas_file)
		a->ds.cred = DATASTORE_CRED_SAS;
	if (!a->cred_name)
		return CMD_GO_ON;
	if (datastore_cred_parse(a->cred_name, &named) != 0)
		return cli_usage_error("datastore add", cmd_datastore_usage,
				       "--credential '%s' is not one of env, none, account_key, "
				       "sas, emulator", a->cred_name);
	if ((a->key_file || a->sas_file) && named != a->ds.cred)
		return cli_usage_error("datastore add", cmd_datastore_usage,
				       "--credential %s contradicts %s", a->cred_name,
				       a->key_file ? "--account-key-file" : "--sas-file");
	a->ds.cred = named;
	return CMD_GO_ON;
}

/* The secret to store (NULL for credentials without one), read and checked. */
static int cmd_add_secret(const struct cmd_add_args *a, char **secret, char *errbuf,
			  size_t errlen)
{
	const char *file = a->key_file ? a->key_file : a->sas_file;
	const char *flag = a->key_file ? "--account-key-file" : "--sas-file";
	char source[PATH_MAX + 32];
	int err;

	*secret = NULL;
	if (a->ds.cred != DATASTORE_CRED_ACCOUNT_KEY && a->ds.cred != DATASTORE_CRED_SAS)
		return 0;
	if (file) {
		util_errf(source, sizeof(source), "%s %s", flag, file);
		err = auth_read_secret_file(flag, file, secret, errbuf, errlen);
	} else {
		util_errf(source, sizeof(source), "%s",
			  a->ds.cred == DATASTORE_CRED_SAS ? "AZURE_STORAGE_SAS_TOKEN"
							   : "AZURE_STORAGE_KEY");
		err = cmd_secret_from_env(a->ds.cred, a->ds.account, secret, errbuf, errlen);
	}
	if (!err)
		err = cmd_check_secret(a->ds.cred, a->ds.account, *secret, source, errbuf, errlen);
	if (err) {
		auth_secret_free(*secret);
		*secret = NULL;
	}
	return err;
}

static int cmd_datastore_add(int argc, char **argv)
{
	struct cmd_add_args a;
	char errbuf[1024] = "", url[2048];
	char *secret = NULL;
	int err;

	err = cmd_add_parse(argc, argv, &a);
	if (err == CMD_GO_ON)
		err = cmd_add_credential(&a);
	if (err != CMD_GO_ON)
		return err;
	err = datastore_normalize(&a.ds, errbuf, sizeof(errbuf));
	if (!err)
		err = cmd_add_secret(&a, &secret, errbuf, sizeof(errbuf));
	if (!err)
		err = datastore_save(&a.ds, secret,
				     a.force || strcmp(a.ds.name, DATASTORE_DEFAULT_NAME) == 0,
				     errbuf, sizeof(errbuf));
	auth_secret_free(secret);
	if (err) {
		fprintf(stderr, "ferry datastore add: %s\n", errbuf[0] ? errbuf : strerror(-err));
		return CLI_EXIT_FAILED;
	}
	datastore_url(&a.ds, url, sizeof(url));
	printf("datastore %s: %s (credential %s)\n", a.ds.name, url,
	       datastore_cred_name(a.ds.cred));
	return 0;
}

static int cmd_list_one(void *ctx, const struct datastore *ds)
{
	char url[2048];

	(void)ctx;
	if (!ds->container[0]) {
		printf("%-24s %-12s (unreadable record: 'ferry datastore show %s' says why)\n",
		       ds->name, "?", ds->name);
		return 0;
	}
	if (datastore_url(ds, url, sizeof(url)))
		util_errf(url, sizeof(url), "%s/%s/...", ds->endpoint, ds->container);
	printf("%-24s %-12s %s%s\n", ds->name, datastore_cred_name(ds->cred), url,
	       ds->builtin ? "  (built in)" : "");
	return 0;
}

static int cmd_datastore_list(void)
{
	char errbuf[1024] = "";
	int err;

	printf("%-24s %-12s %s\n", "NAME", "CREDENTIAL", "URL");
	err = datastore_foreach(cmd_list_one, NULL, errbuf, sizeof(errbuf));
	if (err) {
		fprintf(stderr, "ferry datastore list: %s\n", errbuf[0] ? errbuf : strerror(-err));
		return CLI_EXIT_FAILED;
	}
	return 0;
}

static int cmd_datastore_show(const char *name)
{
	struct datastore ds;
	char errbuf[1024] = "", url[2048], path[PATH_MAX], dir[PATH_MAX];
	int err;

	err = datastore_load(name, &ds, errbuf, sizeof(errbuf));
	if (err) {
		fprintf(stderr, "ferry datastore show: %s\n", errbuf);
		return CLI_EXIT_FAILED;
	}
	if (datastore_url(&ds, url, sizeof(url)))
		util_errf(url, sizeof(url), "(too long)");
	printf("name:             %s\n", ds.name);
	if (ds.builtin)
		printf("record:           built in (add a datastore named %s to override it)\n",
		       ds.name);
	else if (datastore_config_dir(dir, sizeof(dir)) == 0)
		printf("record:           %s/datastores/%s.conf\n", dir, ds.name);
	printf("account:          %s\n", ds.account);
	printf("container:        %s\n", ds.container);
	printf("endpoint:         %s\n", ds.endpoint);
	printf("prefix:           %s\n", ds.prefix[0] ? ds.prefix : "(none)");
	printf("url:              %s\n", url);
	printf("uri:              azureml://datastores/%s/paths/\n", ds.name);
	printf("create container: %s\n", ds.create_container ? "yes, on first use" : "no");
	printf("credential:       %s\n", datastore_cred_name(ds.cred));
	switch (ds.cred) {
	case DATASTORE_CRED_ACCOUNT_KEY:
	case DATASTORE_CRED_SAS:
		printf("%-18s", ds.cred == DATASTORE_CRED_SAS ? "SAS:" : "account key:");
		if (datastore_secret_path(ds.name, path, sizeof(path)) != 0) {
			printf("stored (path too long to check)\n");
		} else if (datastore_check_secret(path, errbuf, sizeof(errbuf)) == 0) {
			printf("stored (%s, mode 0600)\n", path);
		} else {
			printf("NOT USABLE: %s\n", errbuf);
		}
		break;
	case DATASTORE_CRED_EMULATOR:
		printf("account key:      the storage emulator's well-known key (public)\n");
		break;
	case DATASTORE_CRED_ENV:
		printf("                  at each use, like ferry mount: "
		       "AZURE_STORAGE_CONNECTION_STRING,\n"
		       "                  AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY, "
		       "AZURE_STORAGE_SAS_TOKEN, or -o ..._file=\n");
		break;
	case DATASTORE_CRED_NONE:
		printf("                  anonymous: public containers only\n");
		break;
	}
	return 0;
}

/* A subcommand with only --help and npositional arguments: CMD_GO_ON, or the exit
 * status. */
static int cmd_simple_args(const char *cmd, int argc, char **argv, int npositional,
			   const char *usage, const char *help)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (opt != 'h')
			return cli_bad_option(cmd, opt, argv, longopts, usage);
		return cmd_help(usage, help);
	}
	if (argc - optind != npositional)
		return cli_usage_error(cmd, usage, npositional ? "give one NAME" : "no arguments");
	return CMD_GO_ON;
}

static int cmd_datastore_remove(const char *name)
{
	char errbuf[1024] = "";

	if (datastore_remove(name, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "ferry datastore remove: %s\n", errbuf);
		return CLI_EXIT_FAILED;
	}
	if (!strcmp(name, DATASTORE_DEFAULT_NAME))
		printf("removed datastore %s; the built-in one is back\n", name);
	else
		printf("removed datastore %s\n", name);
	return 0;
}

/* datastore list, show NAME, remove NAME. */
static int cmd_datastore_simple(const char *sub, int argc, char **argv)
{
	static const char list_usage[] = "usage: ferry datastore list\n";
	static const char show_usage[] = "usage: ferry datastore show NAME\n";
	static const char remove_usage[] = "usage: ferry datastore remove NAME\n";
	int status;

	if (!strcmp(sub, "list") || !strcmp(sub, "ls")) {
		status = cmd_simple_args("datastore list", argc, argv, 0, list_usage,
					 "Lists the datastores: name, credential, URL.\n");
		return status == CMD_GO_ON ? cmd_datastore_list() : status;
	}
	if (!strcmp(sub, "show")) {
		status = cmd_simple_args("datastore show", argc, argv, 1, show_usage,
					 "Shows a datastore's record and whether its secret is "
					 "usable.\n");
		return status == CMD_GO_ON ? cmd_datastore_show(argv[optind]) : status;
	}
	status = cmd_simple_args("datastore remove", argc, argv, 1, remove_usage,
				 "Removes a datastore's record and its stored secret.\n");
	return status == CMD_GO_ON ? cmd_datastore_remove(argv[optind]) : status;
}

int cmd_datastore(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option subcommands[] = {
		{ "add", 0, NULL, 0 },  { "list", 0, NULL, 0 },   { "show", 0, NULL, 0 },
		{ "remove", 0, NULL, 0 }, { NULL, 0, NULL, 0 },
	};
	const char *sub;
	int opt;

	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		if (opt != 'h')
			return cli_bad_option("datastore", opt, argv, longopts, cmd_datastore_usage);
		printf("%sEach subcommand's --help tells more; see docs/datastores.md.\n",
		       cmd_datastore_usage);
		return 0;
	}
	if (optind >= argc)
		return cli_usage_error("datastore", cmd_datastore_usage,
				       "give a subcommand: add, list, show or remove");
	sub = argv[optind];
	argc -= optind;
	argv += optind;
	if (!strcmp(sub, "add"))
		return cmd_datastore_add(argc, argv);
	if (!strcmp(sub, "list") || !strcmp(sub, "ls") || !strcmp(sub, "show") ||
	    !strcmp(sub, "remove") || !strcmp(sub, "rm"))
		return cmd_datastore_simple(sub, argc, argv);
	return cli_unknown("datastore", "subcommand", "", sub, subcommands, cmd_datastore_usage);
}

/* Options of cp and ls ----------------------------------------------------------------- */

enum cmd_o_key {
	CMD_O_ACCOUNT_KEY_FILE,
	CMD_O_SAS_FILE,
	CMD_O_BEARER_TOKEN_FILE,
	CMD_O_CA_FILE,
	CMD_O_FILES, /* the keys above are paths, kept in cmd_opts.files */
	CMD_O_ALLOW_HTTP = CMD_O_FILES,
	CMD_O_WORKERS,
	CMD_O_TIMEOUT,
	CMD_O_BLOCK_SIZE,
	CMD_O_LOG_LEVEL,
};

static const struct fuse_opt cmd_o_opts[] = {
	FUSE_OPT_KEY("account_key_file=", CMD_O_ACCOUNT_KEY_FILE),
	FUSE_OPT_KEY("sas_file=", CMD_O_SAS_FILE),
	FUSE_OPT_KEY("bearer_token_file=", CMD_O_BEARER_TOKEN_FILE),
	FUSE_OPT_KEY("ca_file=", CMD_O_CA_FILE),
	FUSE_OPT_KEY("allow_http", CMD_O_ALLOW_HTTP),
	FUSE_OPT_KEY("workers=", CMD_O_WORKERS),
	FUSE_OPT_KEY("timeout=", CMD_O_TIMEOUT),
	FUSE_OPT_KEY("block_size=", CMD_O_BLOCK_SIZE),
	FUSE_OPT_KEY("log_level=", CMD_O_LOG_LEVEL),
	FUSE_OPT_END
};

struct cmd_opts {
	struct datastore_opts ds; /* its paths point into files */
	size_t block_size;
	int log_level;
	char *files[CMD_O_FILES];
	const char *cmd; /* for messages */
};

static void cmd_opts_init(struct cmd_opts *o, const char *cmd)
{
	memset(o, 0, sizeof(*o));
	datastore_opts_default(&o->ds);
	o->block_size = 8u << 20;
	o->log_level = LOG_LVL_ERROR;
	o->cmd = cmd;
}

static void cmd_opts_free(struct cmd_opts *o)
{
	for (int i = 0; i < CMD_O_FILES; i++)
		free(o->files[i]);
}

/* "ferry CMD: option NAME: 'VALUE' is not EXPECTED"; fails the parse. */
static int cmd_o_bad(const struct cmd_opts *o, const char *arg, const char *expected)
{
	const char *value = strchr(arg, '=');

	fprintf(stderr, "ferry %s: option %.*s: '%s' is not %s\n", o->cmd, (int)(value - arg),
		arg, value + 1, expected);
	return -1;
}

static int cmd_o_path(struct cmd_opts *o, int key, const char *value)
{
	const char **fields[CMD_O_FILES] = {
		[CMD_O_ACCOUNT_KEY_FILE] = &o->ds.account_key_file,
		[CMD_O_SAS_FILE] = &o->ds.sas_file,
		[CMD_O_BEARER_TOKEN_FILE] = &o->ds.bearer_token_file,
		[CMD_O_CA_FILE] = &o->ds.ca_file,
	};
	char *copy = strdup(value);

	if (!copy)
		return -1;
	free(o->files[key]);
	o->files[key] = copy;
	*fields[key] = copy;
	return 0;
}

/* A decimal number from 1 to max: 0, or -EINVAL. */
static int cmd_o_number(const char *value, long max, int *out)
{
	char *end;
	long number;

	errno = 0;
	number = strtol(value, &end, 10);
	if (errno || end == value || *end || number < 1 || number > max)
		return -EINVAL;
	*out = (int)number;
	return 0;
}

/* fuse_opt_parse's callback: one option of a -o list of cp or ls. */
static int cmd_o_one(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct cmd_opts *o = data;
	const char *value = strchr(arg, '=');
	enum log_level level;
	uint64_t size;

	(void)outargs;
	if (value && !*++value) {
		fprintf(stderr, "ferry %s: option %.*s needs a value\n", o->cmd, (int)(value - 1 - arg),
			arg);
		return -1;
	}
	if (key >= 0 && key < CMD_O_FILES)
		return cmd_o_path(o, key, value);
	switch (key) {
	case CMD_O_ALLOW_HTTP:
		o->ds.allow_http = true;
		return 0;
	case CMD_O_WORKERS:
	case CMD_O_TIMEOUT:
		if (cmd_o_number(value, key == CMD_O_WORKERS ? 64 : 3600,
				 key == CMD_O_WORKERS ? &o->ds.workers : &o->ds.timeout_s))
			return cmd_o_bad(o, arg, key == CMD_O_WORKERS ? "a number from 1 to 64"
								      : "a number from 1 to 3600");
		return 0;
	case CMD_O_BLOCK_SIZE:
		if (util_parse_size(value, &size) || size < (64u << 10) || size > (256u << 20))
			return cmd_o_bad(o, arg, "a size from 64K to 256M");
		o->block_size = (size_t)size;
		return 0;
	case CMD_O_LOG_LEVEL:
		if (log_parse_level(value, &level))
			return cmd_o_bad(o, arg, "one of error, warn, info, debug");
		o->log_level = (int)level;
		return 0;
	}
	fprintf(stderr,
		"ferry %s: unknown option '%s' (options: account_key_file=, sas_file=, "
		"bearer_token_file=, ca_file=, allow_http, workers=, timeout=, block_size=, "
		"log_level=; see docs/datastores.md)\n",
		o->cmd, arg);
	return -1;
}

/* One -o list: 0, or -1 with the reason on stderr. */
static int cmd_parse_o(struct cmd_opts *o, const char *list)
{
	char *argv[] = { "ferry", "-o", (char *)list, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	int rc = fuse_opt_parse(&args, o, cmd_o_opts, cmd_o_one);

	fuse_opt_free_args(&args);
	return rc;
}

/* What cp and ls parse alike. */
struct cmd_flags {
	const char *cmd, *usage, *help, *shortopts;
	const struct option *longopts;
};

/* The next flag that is the command's own, in *opt (-1 after the last); -o lists, --help
 * and bad flags are handled here. CMD_GO_ON, or the exit status. */
static int cmd_next_flag(const struct cmd_flags *f, int argc, char **argv, struct cmd_opts *o,
			 int *opt)
{
	for (;;) {
		*opt = getopt_long(argc, argv, f->shortopts, f->longopts, NULL);
		if (*opt == 'o' && cmd_parse_o(o, optarg) == 0)
			continue;
		if (*opt == 'o')
			return CLI_EXIT_USAGE;
		if (*opt == 'h')
			return cmd_help(f->usage, f->help);
		if (*opt == '?' || *opt == ':')
			return cli_bad_option(f->cmd, *opt, argv, f->longopts, f->usage);
		return CMD_GO_ON;
	}
}

/* ferry cp ------------------------------------------------------------------------------ */

static const char cmd_cp_usage[] = "usage: " CMD_CP_USAGE;
static const char cmd_cp_help[] =
	"Copies SRC to DST, one of them a datastore URI, the other a local path; -r for a\n"
	"folder (\"dir/\" copies what is in it). A progress line on a terminal; else, unless\n"
	"-q, one summary line on stdout.\n" CMD_URI_HELP;

struct cmd_cp_report {
	bool any;
};

static void cmd_cp_error(void *ctx, const char *src, const char *dst, const char *message)
{
	struct cmd_cp_report *r = ctx;

	r->any = true;
	if (strcmp(src, dst) == 0)
		fprintf(stderr, "ferry cp: %s: %s\n", src, message);
	else
		fprintf(stderr, "ferry cp: %s -> %s: %s\n", src, dst, message);
}

/* The last path component of path (trailing '/' ignored) into out; "" for none. */
static void cmd_basename(const char *path, char *out, size_t outlen)
{
	size_t len = strlen(path);
	const char *start;

	while (len > 1 && path[len - 1] == '/')
		len--;
	start = path + len;
	while (start > path && start[-1] != '/')
		start--;
	util_errf(out, outlen, "%.*s", (int)(len - (size_t)(start - path)), start);
	if (!strcmp(out, ".") || !strcmp(out, "..") || !strcmp(out, "/"))
		out[0] = '\0';
}

/* mkdir -p of the folder that holds path. */
static int cmd_make_parents(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (util_path_join(dir, sizeof(dir), "", path) != 0)
		return -ENAMETOOLONG;
	for (size_t len = strlen(dir); len > 1 && dir[len - 1] == '/'; len--)
		dir[len - 1] = '\0';
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	return util_mkdir_p(dir, 0777);
}

/* One `ferry cp`: its two sides and how they were resolved. */
struct cmd_cp {
	const char *src_arg, *dst_arg;
	struct cmd_opts *o;
	struct datastore_handle *src_h, *dst_h;
	struct transfer_side src, dst;
	bool src_is_dir;
	char base[1100]; /* the source's name */
	char dst_path[PATH_MAX + 1100];
	char dst_display[CMD_URI_MAX];
	char errbuf[1024];
};

/* What the source is, and its name: CMD_GO_ON, or the exit status. */
static int cmd_cp_source(struct cmd_cp *c)
{
	struct stat st;
	int err;

	if (datastore_is_uri(c->src_arg)) {
		err = datastore_open(c->src_arg, &c->o->ds, &c->src_h, c->errbuf, sizeof(c->errbuf));
		if (err) {
			fprintf(stderr, "ferry cp: %s\n", c->errbuf[0] ? c->errbuf : strerror(-err));
			return CLI_EXIT_FAILED;
		}
		if (datastore_kind(c->src_h) == DATASTORE_MISSING) {
			fprintf(stderr, "ferry cp: %s: no such file or folder in the datastore\n",
				c->src_arg);
			return CLI_EXIT_FAILED;
		}
		c->src_is_dir = datastore_kind(c->src_h) == DATASTORE_DIR;
		c->src.store = datastore_store(c->src_h);
		c->src.path = datastore_path(c->src_h);
		c->src.display = c->src_arg;
	} else {
		if (stat(c->src_arg, &st) != 0) {
			fprintf(stderr, "ferry cp: %s: %s\n", c->src_arg,
				errno == ENOENT ? "no such file or folder" : strerror(errno));
			return CLI_EXIT_FAILED;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
			fprintf(stderr, "ferry cp: %s: not a regular file or folder\n", c->src_arg);
			return CLI_EXIT_FAILED;
		}
		c->src_is_dir = S_ISDIR(st.st_mode);
		c->src.path = c->src_arg;
	}
	cmd_basename(c->src.path, c->base, sizeof(c->base));
	return CMD_GO_ON;
}

/* Where the copy goes: into a folder, or as a new name. CMD_GO_ON, or the exit status. */
static int cmd_cp_destination(struct cmd_cp *c, bool contents)
{
	bool dst_is_dir;
	struct stat st;
	int err;

	if (datastore_is_uri(c->dst_arg)) {
		err = datastore_open(c->dst_arg, &c->o->ds, &c->dst_h, c->errbuf, sizeof(c->errbuf));
		if (err) {
			fprintf(stderr, "ferry cp: %s\n", c->errbuf[0] ? c->errbuf : strerror(-err));
			return CLI_EXIT_FAILED;
		}
		dst_is_dir = datastore_kind(c->dst_h) == DATASTORE_DIR ||
			     datastore_trailing_slash(c->dst_h);
		if (!c->src_is_dir && datastore_kind(c->dst_h) == DATASTORE_DIR &&
		    !*datastore_path(c->dst_h) && !c->base[0]) {
			fprintf(stderr, "ferry cp: %s: give the file a name in the datastore\n",
				c->dst_arg);
			return CLI_EXIT_FAILED;
		}
		c->dst.store = datastore_store(c->dst_h);
		util_errf(c->dst_path, sizeof(c->dst_path), "%s", datastore_path(c->dst_h));
	} else {
		dst_is_dir = (stat(c->dst_arg, &st) == 0 && S_ISDIR(st.st_mode)) ||
			     c->dst_arg[strlen(c->dst_arg) - 1] == '/';
		util_errf(c->dst_path, sizeof(c->dst_path), "%s", c->dst_arg);
	}
	util_errf(c->dst_display, sizeof(c->dst_display), "%s", c->dst_arg);
	if (dst_is_dir && !contents && c->base[0]) {
		char dir[sizeof(c->dst_path)];

		memcpy(dir, c->dst_path, sizeof(dir));
		if (util_path_join(c->dst_path, sizeof(c->dst_path), dir, c->base) ||
		    util_path_join(c->dst_display, sizeof(c->dst_display), c->dst_arg, c->base)) {
			fprintf(stderr, "ferry cp: %s/%s: the path is too long\n", c->dst_arg, c->base);
			return CLI_EXIT_FAILED;
		}
	}
	/* like azcopy: missing parent folders of a local destination are made */
	err = c->dst.store ? 0 : cmd_make_parents(c->dst_path);
	if (err) {
		fprintf(stderr, "ferry cp: cannot create the folders of %s: %s\n", c->dst_path,
			strerror(-err));
		return CLI_EXIT_FAILED;
	}
	c->dst.path = c->dst_path;
	c->dst.display = c->dst_display;
	return CMD_GO_ON;
}

/* Copies, then says how it went: errors on stderr; off a terminal (no progress line),
 * unless quiet, one summary line on stdout. */
static int cmd_cp_transfer(struct cmd_cp *c, bool quiet)
{
	struct transfer_opts topts;
	struct transfer_stats stats;
	struct cmd_cp_report report = { 0 };
	int err;

	transfer_opts_default(&topts);
	topts.workers = c->o->ds.workers;
	topts.block_size = c->o->block_size;
	topts.progress = !quiet && isatty(STDERR_FILENO);
	topts.on_error = cmd_cp_error;
	topts.error_ctx = &report;
	err = transfer_copy(&c->src, c->src_is_dir, &c->dst, &topts, &stats, c->errbuf,
			    sizeof(c->errbuf));
	if (err && err != -EIO) {
		fprintf(stderr, "ferry cp: %s\n", c->errbuf[0] ? c->errbuf : strerror(-err));
		return CLI_EXIT_FAILED;
	}
	if (err == -EIO || stats.failed) {
		fprintf(stderr, "ferry cp: %llu of %llu files failed; %llu copied\n",
			(unsigned long long)stats.failed,
			(unsigned long long)(stats.failed + stats.files),
			(unsigned long long)stats.files);
		return CLI_EXIT_FAILED;
	}
	if (!quiet && !topts.progress)
		printf("copied %llu file%s, %llu bytes, in %.1f s\n",
		       (unsigned long long)stats.files, stats.files == 1 ? "" : "s",
		       (unsigned long long)stats.bytes, stats.seconds);
	return 0;
}

static int cmd_cp_run(const char *src_arg, const char *dst_arg, bool recursive, bool quiet,
		      struct cmd_opts *o)
{
	struct cmd_cp *c = calloc(1, sizeof(*c));
	bool contents;
	int status;

	if (!c) {
		fprintf(stderr, "ferry cp: %s\n", strerror(ENOMEM));
		return CLI_EXIT_FAILED;
	}
	c->src_arg = src_arg;
	c->dst_arg = dst_arg;
	c->o = o;
	status = cmd_cp_source(c);
	if (status == CMD_GO_ON && c->src_is_dir && !recursive)
		status = cli_usage_error("cp", cmd_cp_usage,
					 "%s is a folder; use -r (--recursive) to copy it", src_arg);
	/* "dir/" (and a datastore's root) means what is in it; "dir" the folder itself. */
	contents = c->src_is_dir && (src_arg[strlen(src_arg) - 1] == '/' || !c->base[0]);
	if (status == CMD_GO_ON)
		status = cmd_cp_destination(c, contents);
	if (status == CMD_GO_ON)
		status = cmd_cp_transfer(c, quiet);
	datastore_close(c->src_h);
	datastore_close(c->dst_h);
	free(c);
	return status;
}

int cmd_cp(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "recursive", no_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "options", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct cmd_flags flags = { "cp", cmd_cp_usage, cmd_cp_help, ":rRqo:h",
						longopts };
	bool recursive = false, quiet = false;
	struct cmd_opts o;
	int opt, status;

	cmd_opts_init(&o, "cp");
	cli_getopt_reset();
	while ((status = cmd_next_flag(&flags, argc, argv, &o, &opt)) == CMD_GO_ON && opt != -1) {
		if (opt == 'q')
			quiet = true;
		else
			recursive = true; /* -r, -R */
	}
	if (status == CMD_GO_ON && (argc - optind != 2 || !*argv[optind] || !*argv[optind + 1]))
		status = cli_usage_error("cp", cmd_cp_usage, "give one SRC and one DST");
	if (status == CMD_GO_ON && !datastore_is_uri(argv[optind]) &&
	    !datastore_is_uri(argv[optind + 1]))
		status = cli_usage_error("cp", cmd_cp_usage,
					 "%s and %s are both local paths; one of them must be a "
					 "datastore URI (use cp(1) for local copies)",
					 argv[optind], argv[optind + 1]);
	if (status == CMD_GO_ON) {
		log_set_level((enum log_level)o.log_level);
		status = cmd_cp_run(argv[optind], argv[optind + 1], recursive, quiet, &o);
	}
	cmd_opts_free(&o);
	return status;
}

/* ferry ls ------------------------------------------------------------------------------ */

static const char cmd_ls_usage[] = "usage: " CMD_LS_USAGE;
static const char cmd_ls_help[] =
	"Lists a folder of a datastore (-l: sizes and times, -R: the tree under it).\n"
	CMD_URI_HELP;

static void cmd_ls_print(const char *name, const struct store_attr *attr, bool is_dir, bool lng)
{
	char when[32] = "-";
	struct tm tm;
	time_t t = (time_t)attr->mtime;

	if (lng) {
		if (attr->mtime && localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		if (is_dir)
			printf("%12s  %-19s  %s/\n", "-", when, name);
		else
			printf("%12llu  %-19s  %s\n", (unsigned long long)attr->size, when, name);
		return;
	}
	printf("%s%s\n", name, is_dir ? "/" : "");
}

static int cmd_ls_dir(struct store *s, const char *dir, const char *rel, bool lng,
		      bool recursive, const char *uri)
{
	struct datastore_entry *entries;
	char path[PATH_MAX + 1100], shown[PATH_MAX + 1100];
	size_t count;
	int err, status = 0;

	err = datastore_list(s, dir, &entries, &count);
	if (err) {
		fprintf(stderr, "ferry ls: cannot list %s%s%s: %s\n", uri, *rel ? " at " : "", rel,
			transfer_store_error(err));
		return CLI_EXIT_FAILED;
	}
	/* depth first, as find(1) lists: a folder, then what is in it */
	for (size_t i = 0; i < count; i++) {
		if (util_path_join(shown, sizeof(shown), rel, entries[i].name) ||
		    util_path_join(path, sizeof(path), dir, entries[i].name))
			continue;
		cmd_ls_print(shown, &entries[i].attr, entries[i].attr.is_dir, lng);
		if (recursive && entries[i].attr.is_dir &&
		    cmd_ls_dir(s, path, shown, lng, recursive, uri))
			status = CLI_EXIT_FAILED;
	}
	datastore_entries_free(entries, count);
	return status;
}

static int cmd_ls_run(const char *uri, bool lng, bool recursive, struct cmd_opts *o)
{
	struct datastore_handle *h = NULL;
	char errbuf[1024] = "", base[1100];
	int status = CLI_EXIT_FAILED, err;

	log_set_level((enum log_level)o->log_level);
	err = datastore_open(uri, &o->ds, &h, errbuf, sizeof(errbuf));
	if (err) {
		fprintf(stderr, "ferry ls: %s\n", errbuf[0] ? errbuf : strerror(-err));
		return CLI_EXIT_FAILED;
	}
	switch (datastore_kind(h)) {
	case DATASTORE_MISSING:
		fprintf(stderr, "ferry ls: %s: no such file or folder in the datastore\n", uri);
		break;
	case DATASTORE_FILE:
		cmd_basename(datastore_path(h), base, sizeof(base));
		cmd_ls_print(base, datastore_attr(h), false, lng);
		status = 0;
		break;
	case DATASTORE_DIR:
		status = cmd_ls_dir(datastore_store(h), datastore_path(h), "", lng, recursive, uri);
		break;
	}
	datastore_close(h);
	return status;
}

int cmd_ls(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "long", no_argument, NULL, 'l' },
		{ "recursive", no_argument, NULL, 'R' },
		{ "options", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct cmd_flags flags = { "ls", cmd_ls_usage, cmd_ls_help, ":lRro:h",
						longopts };
	bool lng = false, recursive = false;
	struct cmd_opts o;
	int opt, status;

	cmd_opts_init(&o, "ls");
	cli_getopt_reset();
	while ((status = cmd_next_flag(&flags, argc, argv, &o, &opt)) == CMD_GO_ON && opt != -1) {
		if (opt == 'l')
			lng = true;
		else
			recursive = true; /* -R, -r */
	}
	if (status == CMD_GO_ON && argc - optind != 1)
		status = cli_usage_error("ls", cmd_ls_usage, "give one URI");
	if (status == CMD_GO_ON && !datastore_is_uri(argv[optind]))
		status = cli_usage_error("ls", cmd_ls_usage, "%s is not a datastore URI\n%s",
					 argv[optind], CMD_URI_HELP);
	if (status == CMD_GO_ON)
		status = cmd_ls_run(argv[optind], lng, recursive, &o);
	cmd_opts_free(&o);
	return status;
}
