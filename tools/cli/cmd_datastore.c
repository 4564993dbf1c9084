/* cmd_datastore: `ferry datastore add|list|show|remove`. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/base/util.h"
#include "cache/store/datastore.h"
#include "tools/cli/cli.h"
#include "tools/cli/cmd_data.h"

#define CMD_DATASTORE_USAGE                                                                  \
	"ferry datastore add NAME (--account ACCOUNT | --endpoint URL)\n"                     \
	"                 (--container CONTAINER | --type azure_file --share SHARE)\n"          \
	"                 [--prefix PATH] [--account-key-file FILE | --sas-file FILE |\n"       \
	"                 --credential env|none|account_key|sas|emulator] [--create-container]\n" \
	"                 [--force]\n"                                                          \
	"       ferry datastore list | show NAME | remove NAME\n"

const char cmd_datastore_lines[] = CMD_DATASTORE_USAGE;

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
	CMD_ADD_TYPE,
	CMD_ADD_SECRET, /* a secret on the command line: refused */
};

static const struct option cmd_add_longopts[] = {
	{ "account", required_argument, NULL, CMD_ADD_ACCOUNT },
	{ "container", required_argument, NULL, CMD_ADD_CONTAINER },
	{ "share", required_argument, NULL, CMD_ADD_CONTAINER },
	{ "type", required_argument, NULL, CMD_ADD_TYPE },
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

/* Copies the value of --flag into field: CLI_GO_ON, or the usage error's exit status. */
static int cmd_add_field(const char *flag, const char *value, char *field, size_t size)
{
	if (!*value || strlen(value) >= size)
		return cli_usage_error("datastore add", cmd_datastore_usage, "--%s needs a value%s",
				       flag, *value ? " (this one is too long)" : "");
	memcpy(field, value, strlen(value) + 1);
	return CLI_GO_ON;
}

/* One flag of `ferry datastore add` (flag: its long name): CLI_GO_ON, or the exit
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
		return CLI_GO_ON;
	case CMD_ADD_CREATE_CONTAINER:
		ds->create_container = true;
		return CLI_GO_ON;
	case CMD_ADD_FORCE:
		a->force = true;
		return CLI_GO_ON;
	case CMD_ADD_TYPE:
		if (datastore_type_parse(optarg, &ds->kind) != 0)
			return cli_usage_error("datastore add", cmd_datastore_usage,
					       "--type takes azure_blob or azure_file");
		return CLI_GO_ON;
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

/* The flags and NAME of `ferry datastore add`: CLI_GO_ON, or the exit status. */
static int cmd_add_parse(int argc, char **argv, struct cmd_add_args *a)
{
	int opt, index, status;

	memset(a, 0, sizeof(*a));
	a->ds.cred = DATASTORE_CRED_ENV;
	cli_getopt_reset();
	while (index = -1, (opt = getopt_long(argc, argv, ":h", cmd_add_longopts, &index)) != -1) {
		status = cmd_add_flag(a, opt, index >= 0 ? cmd_add_longopts[index].name : "", argv);
		if (status != CLI_GO_ON)
			return status;
	}
	if (argc - optind != 1)
		return cli_usage_error("datastore add", cmd_datastore_usage, "give one NAME");
	if (strlen(argv[optind]) >= sizeof(a->ds.name) || !datastore_name_valid(argv[optind]))
		return cli_usage_error("datastore add", cmd_datastore_usage,
				       "'%s' is not a datastore name: use 1-64 letters, digits, '_' "
				       "or '-', starting with a letter or digit", argv[optind]);
	memcpy(a->ds.name, argv[optind], strlen(argv[optind]) + 1);
	return CLI_GO_ON;
}

/* The credential kind the flags choose: CLI_GO_ON, or the usage error's exit status. */
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
		return CLI_GO_ON;
	if (datastore_cred_parse(a->cred_name, &named) != 0)
		return cli_usage_error("datastore add", cmd_datastore_usage,
				       "--credential '%s' is not one of env, none, account_key, "
				       "sas, emulator", a->cred_name);
	if ((a->key_file || a->sas_file) && named != a->ds.cred)
		return cli_usage_error("datastore add", cmd_datastore_usage,
				       "--credential %s contradicts %s", a->cred_name,
				       a->key_file ? "--account-key-file" : "--sas-file");
	a->ds.cred = named;
	return CLI_GO_ON;
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
	if (err == CLI_GO_ON)
		err = cmd_add_credential(&a);
	if (err != CLI_GO_ON)
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
	printf("type:             %s\n", datastore_type_name(ds.kind));
	printf("account:          %s\n", ds.account);
	printf("%-18s%s\n", ds.kind == URL_FILE ? "share:" : "container:", ds.container);
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

/* A subcommand with only --help and npositional arguments: CLI_GO_ON, or the exit
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
		return cli_help(usage, help);
	}
	if (argc - optind != npositional)
		return cli_usage_error(cmd, usage, npositional ? "give one NAME" : "no arguments");
	return CLI_GO_ON;
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
		return status == CLI_GO_ON ? cmd_datastore_list() : status;
	}
	if (!strcmp(sub, "show")) {
		status = cmd_simple_args("datastore show", argc, argv, 1, show_usage,
					 "Shows a datastore's record and whether its secret is "
					 "usable.\n");
		return status == CLI_GO_ON ? cmd_datastore_show(argv[optind]) : status;
	}
	status = cmd_simple_args("datastore remove", argc, argv, 1, remove_usage,
				 "Removes a datastore's record and its stored secret.\n");
	return status == CLI_GO_ON ? cmd_datastore_remove(argv[optind]) : status;
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
