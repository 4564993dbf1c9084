/* cmd_data: `ferry datastore`, `ferry cp`, `ferry ls`. */
#include "tools/cli/cmd_data.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
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
#include "cache/store/datastore.h"
#include "tools/lib/transfer.h"

#define CMD_EXIT_FAIL 1
#define CMD_EXIT_USAGE 2
#define CMD_URI_MAX 8192

const char cmd_data_usage[] =
	"       ferry datastore add NAME (--account ACCOUNT | --endpoint URL) --container CONTAINER\n"
	"                 [--prefix PATH] [--account-key-file FILE | --sas-file FILE |\n"
	"                 --credential env|none|account_key|sas|emulator] [--create-container]\n"
	"                 [--force]\n"
	"       ferry datastore list | show NAME | remove NAME\n"
	"       ferry cp [-r] [-q] [-o OPTION[,OPTION...]] SRC DST\n"
	"       ferry ls [-l] [-R] [-o OPTION[,OPTION...]] URI\n";

static const char cmd_uri_help[] =
	"URI is azureml://datastores/NAME/paths/PATH or a container URL with a path\n"
	"(https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH,\n"
	"http://127.0.0.1:10000/ACCOUNT/CONTAINER/PATH); see docs/datastores.md.\n";

/* A message for a person into errbuf (truncated to fit). */
__attribute__((format(printf, 3, 4))) static void cmd_msg(char *errbuf, size_t errlen,
							   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
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
		cmd_msg(errbuf, errlen,
			 "AZURE_STORAGE_ACCOUNT is '%s' but the datastore's account is '%s'; the "
			 "key of one account does not sign for another",
			 env_account, account);
		return -EINVAL;
	}
	if (!value && connstr) {
		err = auth_connstr_parse(connstr, &cs, perr, sizeof(perr));
		if (err) {
			cmd_msg(errbuf, errlen, "AZURE_STORAGE_CONNECTION_STRING: %s", perr);
			return err;
		}
		value = cred == DATASTORE_CRED_SAS ? cs.sas : cs.account_key;
		if (cred == DATASTORE_CRED_ACCOUNT_KEY && value && cs.account_name &&
		    strcmp(cs.account_name, account) != 0) {
			cmd_msg(errbuf, errlen,
				 "AZURE_STORAGE_CONNECTION_STRING names account '%s' but the "
				 "datastore's account is '%s'",
				 cs.account_name, account);
			err = -EINVAL;
			goto out_free;
		}
	}
	if (!value) {
		cmd_msg(errbuf, errlen,
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
		cmd_msg(errbuf, errlen, "%s: %s", source,
			 cred == DATASTORE_CRED_SAS
				 ? "not a SAS token (needs a sig= parameter, no spaces)"
				 : "not an account key (base64)");
	else if (err)
		cmd_msg(errbuf, errlen, "%s: %s", source, strerror(-err));
	return err;
}

/* ferry datastore ---------------------------------------------------------------------- */

static void cmd_datastore_usage(FILE *out)
{
	fprintf(out, "usage:%s", cmd_data_usage + 6);
}

static int cmd_datastore_add(int argc, char **argv)
{
	struct datastore ds;
	const char *key_file = NULL, *sas_file = NULL, *cred_name = NULL;
	char errbuf[1024] = "", url[2048], source[PATH_MAX + 32];
	bool force = false;
	char *secret = NULL;
	int err;

	memset(&ds, 0, sizeof(ds));
	ds.cred = DATASTORE_CRED_ENV;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		struct {
			const char *flag;
			char *field;
			size_t size;
		} strings[] = {
			{ "--account", ds.account, sizeof(ds.account) },
			{ "--container", ds.container, sizeof(ds.container) },
			{ "--endpoint", ds.endpoint, sizeof(ds.endpoint) },
			{ "--prefix", ds.prefix, sizeof(ds.prefix) },
		};
		const char **file_flags[] = { &key_file, &sas_file, &cred_name };
		const char *file_names[] = { "--account-key-file", "--sas-file", "--credential" };
		bool matched = false;

		if (strcmp(arg, "--force") == 0) {
			force = true;
			continue;
		}
		if (strcmp(arg, "--create-container") == 0) {
			ds.create_container = true;
			continue;
		}
		if (strcmp(arg, "--account-key") == 0 || strcmp(arg, "--sas") == 0 ||
		    strcmp(arg, "--sas-token") == 0 || strncmp(arg, "--account-key=", 14) == 0 ||
		    strncmp(arg, "--sas=", 6) == 0 || strncmp(arg, "--sas-token=", 12) == 0) {
			fprintf(stderr,
				"ferry datastore add: secrets are never taken on the command line "
				"(every user can read it in /proc); use --account-key-file FILE, "
				"--sas-file FILE, or AZURE_STORAGE_KEY / AZURE_STORAGE_SAS_TOKEN with "
				"--credential account_key / sas\n");
			return CMD_EXIT_USAGE;
		}
		for (size_t k = 0; k < sizeof(strings) / sizeof(strings[0]) && !matched; k++) {
			size_t flen = strlen(strings[k].flag);
			const char *value = NULL;

			if (strcmp(arg, strings[k].flag) == 0)
				value = i + 1 < argc ? argv[++i] : "";
			else if (strncmp(arg, strings[k].flag, flen) == 0 && arg[flen] == '=')
				value = arg + flen + 1;
			else
				continue;
			matched = true;
			if (!*value || strlen(value) >= strings[k].size) {
				fprintf(stderr, "ferry datastore add: %s needs a value%s\n",
					strings[k].flag, *value ? " (this one is too long)" : "");
				return CMD_EXIT_USAGE;
			}
			memcpy(strings[k].field, value, strlen(value) + 1);
		}
		for (size_t k = 0; k < 3 && !matched; k++) {
			size_t flen = strlen(file_names[k]);

			if (strcmp(arg, file_names[k]) == 0)
				*file_flags[k] = i + 1 < argc ? argv[++i] : "";
			else if (strncmp(arg, file_names[k], flen) == 0 && arg[flen] == '=')
				*file_flags[k] = arg + flen + 1;
			else
				continue;
			matched = true;
			if (!**file_flags[k]) {
				fprintf(stderr, "ferry datastore add: %s needs a value\n",
					file_names[k]);
				return CMD_EXIT_USAGE;
			}
		}
		if (matched)
			continue;
		if (arg[0] == '-') {
			fprintf(stderr, "ferry datastore add: unknown flag '%s'\n", arg);
			return CMD_EXIT_USAGE;
		}
		if (ds.name[0]) {
			fprintf(stderr, "ferry datastore add: one NAME only ('%s' and '%s')\n",
				ds.name, arg);
			return CMD_EXIT_USAGE;
		}
		if (strlen(arg) >= sizeof(ds.name) || !datastore_name_valid(arg)) {
			fprintf(stderr,
				"ferry datastore add: '%s' is not a datastore name: use 1-64 "
				"letters, digits, '_' or '-', starting with a letter or digit\n",
				arg);
			return CMD_EXIT_USAGE;
		}
		memcpy(ds.name, arg, strlen(arg) + 1);
	}
	if (!ds.name[0]) {
		cmd_datastore_usage(stderr);
		return CMD_EXIT_USAGE;
	}
	if (key_file && sas_file) {
		fprintf(stderr, "ferry datastore add: give --account-key-file or --sas-file, not both\n");
		return CMD_EXIT_USAGE;
	}
	if (key_file)
		ds.cred = DATASTORE_CRED_ACCOUNT_KEY;
	if (sas_file)
		ds.cred = DATASTORE_CRED_SAS;
	if (cred_name) {
		enum datastore_cred named;

		if (datastore_cred_parse(cred_name, &named) != 0) {
			fprintf(stderr,
				"ferry datastore add: --credential '%s' is not one of env, none, "
				"account_key, sas, emulator\n",
				cred_name);
			return CMD_EXIT_USAGE;
		}
		if ((key_file || sas_file) && named != ds.cred) {
			fprintf(stderr, "ferry datastore add: --credential %s contradicts %s\n",
				cred_name, key_file ? "--account-key-file" : "--sas-file");
			return CMD_EXIT_USAGE;
		}
		ds.cred = named;
	}
	err = datastore_normalize(&ds, errbuf, sizeof(errbuf));
	if (err)
		goto out_fail;

	if (ds.cred == DATASTORE_CRED_ACCOUNT_KEY || ds.cred == DATASTORE_CRED_SAS) {
		if (key_file || sas_file) {
			const char *flag = key_file ? "--account-key-file" : "--sas-file";

			snprintf(source, sizeof(source), "%s %s", flag, key_file ? key_file : sas_file);
			err = auth_read_secret_file(flag, key_file ? key_file : sas_file, &secret, errbuf,
					      sizeof(errbuf));
		} else {
			snprintf(source, sizeof(source), "%s",
				 ds.cred == DATASTORE_CRED_SAS ? "AZURE_STORAGE_SAS_TOKEN"
							       : "AZURE_STORAGE_KEY");
			err = cmd_secret_from_env(ds.cred, ds.account, &secret, errbuf,
						  sizeof(errbuf));
		}
		if (!err)
			err = cmd_check_secret(ds.cred, ds.account, secret, source, errbuf,
					       sizeof(errbuf));
		if (err)
			goto out_fail;
	}
	err = datastore_save(&ds, secret, force || strcmp(ds.name, DATASTORE_DEFAULT_NAME) == 0,
			     errbuf, sizeof(errbuf));
	auth_secret_free(secret);
	secret = NULL;
	if (err)
		goto out_fail;
	datastore_url(&ds, url, sizeof(url));
	printf("datastore %s: %s (credential %s)\n", ds.name, url, datastore_cred_name(ds.cred));
	return 0;
out_fail:
	auth_secret_free(secret);
	fprintf(stderr, "ferry datastore add: %s\n", errbuf[0] ? errbuf : strerror(-err));
	return CMD_EXIT_FAIL;
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
		snprintf(url, sizeof(url), "%s/%s/...", ds->endpoint, ds->container);
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
		return CMD_EXIT_FAIL;
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
		return CMD_EXIT_FAIL;
	}
	if (datastore_url(&ds, url, sizeof(url)))
		snprintf(url, sizeof(url), "(too long)");
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

int cmd_datastore(int argc, char **argv)
{
	const char *sub = argc > 0 ? argv[0] : NULL;
	char errbuf[1024] = "";

	if (!sub || !strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
		cmd_datastore_usage(sub ? stdout : stderr);
		return sub ? 0 : CMD_EXIT_USAGE;
	}
	if (!strcmp(sub, "add"))
		return cmd_datastore_add(argc - 1, argv + 1);
	if (!strcmp(sub, "list") || !strcmp(sub, "ls")) {
		if (argc != 1) {
			fprintf(stderr, "usage: ferry datastore list\n");
			return CMD_EXIT_USAGE;
		}
		return cmd_datastore_list();
	}
	if (!strcmp(sub, "show") || !strcmp(sub, "remove") || !strcmp(sub, "rm")) {
		bool show = !strcmp(sub, "show");

		if (argc != 2 || argv[1][0] == '-') {
			fprintf(stderr, "usage: ferry datastore %s NAME\n", show ? "show" : "remove");
			return CMD_EXIT_USAGE;
		}
		if (show)
			return cmd_datastore_show(argv[1]);
		if (datastore_remove(argv[1], errbuf, sizeof(errbuf)) != 0) {
			fprintf(stderr, "ferry datastore remove: %s\n", errbuf);
			return CMD_EXIT_FAIL;
		}
		if (!strcmp(argv[1], DATASTORE_DEFAULT_NAME))
			printf("removed datastore %s; the built-in one is back\n", argv[1]);
		else
			printf("removed datastore %s\n", argv[1]);
		return 0;
	}
	fprintf(stderr, "ferry datastore: unknown subcommand '%s'\n", sub);
	cmd_datastore_usage(stderr);
	return CMD_EXIT_USAGE;
}

/* Options of cp and ls ----------------------------------------------------------------- */

struct cmd_opts {
	struct datastore_opts ds;
	size_t block_size;
	int log_level;
	char *lists[16]; /* strdup'ed -o lists the option values point into */
	int nlists;
};

static void cmd_opts_init(struct cmd_opts *o)
{
	memset(o, 0, sizeof(*o));
	datastore_opts_default(&o->ds);
	o->block_size = 8u << 20;
	o->log_level = LOG_LVL_ERROR;
}

static void cmd_opts_free(struct cmd_opts *o)
{
	for (int i = 0; i < o->nlists; i++)
		free(o->lists[i]);
}

static int cmd_parse_size(const char *value, uint64_t *out)
{
	static const char suffixes[] = "KMG";
	unsigned long long v;
	const char *s;
	char *end;

	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno || end == value || value[0] == '-')
		return -EINVAL;
	if (*end && !end[1] && (s = strchr(suffixes, *end))) {
		v <<= 10 * (s - suffixes + 1);
		end++;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* One comma-separated -o list: the credential, network and transfer options. */
static int cmd_parse_o(struct cmd_opts *o, const char *cmd, const char *list)
{
	char *copy, *save = NULL, *opt;

	if (o->nlists == (int)(sizeof(o->lists) / sizeof(o->lists[0]))) {
		fprintf(stderr, "ferry %s: too many -o\n", cmd);
		return -EINVAL;
	}
	copy = strdup(list);
	if (!copy)
		return -ENOMEM;
	o->lists[o->nlists++] = copy;
	for (opt = strtok_r(copy, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		char *value = strchr(opt, '=');
		uint64_t number;

		if (value)
			*value++ = '\0';
		if (!value && !strcmp(opt, "allow_http")) {
			o->ds.allow_http = true;
		} else if (!value) {
			goto out_bad;
		} else if (!*value) {
			fprintf(stderr, "ferry %s: option %s needs a value\n", cmd, opt);
			return -EINVAL;
		} else if (!strcmp(opt, "account_key_file")) {
			o->ds.account_key_file = value;
		} else if (!strcmp(opt, "sas_file")) {
			o->ds.sas_file = value;
		} else if (!strcmp(opt, "bearer_token_file")) {
			o->ds.bearer_token_file = value;
		} else if (!strcmp(opt, "ca_file")) {
			o->ds.ca_file = value;
		} else if (!strcmp(opt, "workers") || !strcmp(opt, "timeout")) {
			if (cmd_parse_size(value, &number) || number < 1 ||
			    number > (strcmp(opt, "workers") ? 3600u : 64u)) {
				fprintf(stderr, "ferry %s: option %s: '%s' is not a number from 1 to %u\n",
					cmd, opt, value, strcmp(opt, "workers") ? 3600u : 64u);
				return -EINVAL;
			}
			if (!strcmp(opt, "workers"))
				o->ds.workers = (int)number;
			else
				o->ds.timeout_s = (int)number;
		} else if (!strcmp(opt, "block_size")) {
			if (cmd_parse_size(value, &number) || number < (64u << 10) ||
			    number > (256u << 20)) {
				fprintf(stderr,
					"ferry %s: option block_size: '%s' is not a size from 64K to "
					"256M\n",
					cmd, value);
				return -EINVAL;
			}
			o->block_size = (size_t)number;
		} else if (!strcmp(opt, "log_level")) {
			enum log_level level;

			if (log_parse_level(value, &level)) {
				fprintf(stderr,
					"ferry %s: option log_level: '%s' is not one of error, warn, "
					"info, debug\n",
					cmd, value);
				return -EINVAL;
			}
			o->log_level = (int)level;
		} else {
			goto out_bad;
		}
	}
	return 0;
out_bad:
	fprintf(stderr,
		"ferry %s: unknown option '%s' (options: account_key_file=, sas_file=, "
		"bearer_token_file=, ca_file=, allow_http, workers=, timeout=, block_size=, "
		"log_level=; see docs/datastores.md)\n",
		cmd, opt);
	return -EINVAL;
}

/* ferry cp ------------------------------------------------------------------------------ */

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
	snprintf(out, outlen, "%.*s", (int)(len - (size_t)(start - path)), start);
	if (!strcmp(out, ".") || !strcmp(out, "..") || !strcmp(out, "/"))
		out[0] = '\0';
}

/* a + "/" + b without doubling a '/'. */
static int cmd_join(char *out, size_t outlen, const char *a, const char *b)
{
	size_t alen = strlen(a);
	int n;

	while (alen > 1 && a[alen - 1] == '/' && *b)
		alen--;
	n = snprintf(out, outlen, "%.*s%s%s", (int)alen, a, alen && *b && a[alen - 1] != '/' ? "/" : "",
		     b);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* mkdir -p of the folder that holds path. */
static int cmd_make_parents(const char *path)
{
	char dir[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, len + 1);
	while (len > 1 && dir[len - 1] == '/')
		dir[--len] = '\0';
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0777) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static int cmd_cp_run(const char *src_arg, const char *dst_arg, bool recursive, bool quiet,
		      struct cmd_opts *o)
{
	struct datastore_handle *src_h = NULL, *dst_h = NULL;
	struct transfer_side src = { 0 }, dst = { 0 };
	struct transfer_opts topts;
	struct transfer_stats stats;
	struct cmd_cp_report report = { 0 };
	char errbuf[1024] = "", base[1100], dst_path[PATH_MAX + 1100], dst_display[CMD_URI_MAX];
	bool src_is_dir, contents, dst_is_dir;
	size_t src_len = strlen(src_arg);
	struct stat st;
	int err, status = CMD_EXIT_FAIL;

	if (!datastore_is_uri(src_arg) && !datastore_is_uri(dst_arg)) {
		fprintf(stderr,
			"ferry cp: %s and %s are both local paths; one of them must be a datastore "
			"URI (use cp(1) for local copies)\n",
			src_arg, dst_arg);
		return CMD_EXIT_USAGE;
	}

	/* The source: what it is, and its name. */
	if (datastore_is_uri(src_arg)) {
		err = datastore_open(src_arg, &o->ds, &src_h, errbuf, sizeof(errbuf));
		if (err)
			goto out_errbuf;
		if (datastore_kind(src_h) == DATASTORE_MISSING) {
			fprintf(stderr, "ferry cp: %s: no such file or folder in the datastore\n",
				src_arg);
			goto out_close;
		}
		src_is_dir = datastore_kind(src_h) == DATASTORE_DIR;
		src.store = datastore_store(src_h);
		src.path = datastore_path(src_h);
		src.display = src_arg;
		cmd_basename(src.path, base, sizeof(base));
	} else {
		if (stat(src_arg, &st) != 0) {
			fprintf(stderr, "ferry cp: %s: %s\n", src_arg,
				errno == ENOENT ? "no such file or folder" : strerror(errno));
			goto out_close;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
			fprintf(stderr, "ferry cp: %s: not a regular file or folder\n", src_arg);
			goto out_close;
		}
		src_is_dir = S_ISDIR(st.st_mode);
		src.path = src_arg;
		cmd_basename(src_arg, base, sizeof(base));
	}
	if (src_is_dir && !recursive) {
		fprintf(stderr, "ferry cp: %s is a folder; use -r (--recursive) to copy it\n",
			src_arg);
		status = CMD_EXIT_USAGE;
		goto out_close;
	}
	/* "dir/" (and a datastore's root) means what is in it; "dir" the folder itself. */
	contents = src_is_dir && (src_arg[src_len - 1] == '/' || !base[0]);

	/* The destination: into a folder, or as a new name. */
	if (datastore_is_uri(dst_arg)) {
		err = datastore_open(dst_arg, &o->ds, &dst_h, errbuf, sizeof(errbuf));
		if (err)
			goto out_errbuf;
		dst_is_dir = datastore_kind(dst_h) == DATASTORE_DIR || datastore_trailing_slash(dst_h);
		if (!src_is_dir && datastore_kind(dst_h) == DATASTORE_DIR && !*datastore_path(dst_h) &&
		    !base[0]) {
			fprintf(stderr, "ferry cp: %s: give the file a name in the datastore\n",
				dst_arg);
			goto out_close;
		}
		dst.store = datastore_store(dst_h);
		snprintf(dst_path, sizeof(dst_path), "%s", datastore_path(dst_h));
	} else {
		dst_is_dir = (stat(dst_arg, &st) == 0 && S_ISDIR(st.st_mode)) ||
			     dst_arg[strlen(dst_arg) - 1] == '/';
		snprintf(dst_path, sizeof(dst_path), "%s", dst_arg);
	}
	snprintf(dst_display, sizeof(dst_display), "%s", dst_arg);
	if (dst_is_dir && !contents && base[0]) {
		char joined[sizeof(dst_path)];

		if (cmd_join(joined, sizeof(joined), dst_path, base) ||
		    cmd_join(dst_display, sizeof(dst_display), dst_arg, base)) {
			fprintf(stderr, "ferry cp: %s/%s: the path is too long\n", dst_arg, base);
			goto out_close;
		}
		memcpy(dst_path, joined, sizeof(joined));
	}
	if (!dst.store) {
		/* like azcopy: missing parent folders of the destination are made */
		err = cmd_make_parents(dst_path);
		if (err) {
			fprintf(stderr, "ferry cp: cannot create the folders of %s: %s\n", dst_path,
				strerror(-err));
			goto out_close;
		}
	}
	dst.path = dst_path;
	dst.display = dst_display;

	transfer_opts_default(&topts);
	topts.workers = o->ds.workers;
	topts.block_size = o->block_size;
	topts.progress = !quiet && isatty(STDERR_FILENO);
	topts.on_error = cmd_cp_error;
	topts.error_ctx = &report;
	err = transfer_copy(&src, src_is_dir, &dst, &topts, &stats, errbuf, sizeof(errbuf));
	if (err && err != -EIO)
		goto out_errbuf;
	if (err == -EIO || stats.failed) {
		fprintf(stderr, "ferry cp: %llu of %llu files failed; %llu copied\n",
			(unsigned long long)stats.failed,
			(unsigned long long)(stats.failed + stats.files),
			(unsigned long long)stats.files);
		goto out_close;
	}
	status = 0;
	goto out_close;
out_errbuf:
	fprintf(stderr, "ferry cp: %s\n", errbuf[0] ? errbuf : strerror(-err));
out_close:
	datastore_close(src_h);
	datastore_close(dst_h);
	return status;
}

int cmd_cp(int argc, char **argv)
{
	const char *positional[2];
	int npositional = 0, status;
	bool recursive = false, quiet = false;
	struct cmd_opts o;

	cmd_opts_init(&o);
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "-r") || !strcmp(arg, "-R") || !strcmp(arg, "--recursive")) {
			recursive = true;
		} else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
			quiet = true;
		} else if (!strncmp(arg, "-o", 2)) {
			const char *list = arg[2] ? arg + 2 : (i + 1 < argc ? argv[++i] : NULL);

			if (!list) {
				fprintf(stderr, "ferry cp: -o needs a list of options\n");
				status = CMD_EXIT_USAGE;
				goto out;
			}
			if (cmd_parse_o(&o, "cp", list)) {
				status = CMD_EXIT_USAGE;
				goto out;
			}
		} else if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			printf("usage: ferry cp [-r] [-q] [-o OPTION[,OPTION...]] SRC DST\n%s",
			       cmd_uri_help);
			status = 0;
			goto out;
		} else if (arg[0] == '-' && arg[1]) {
			fprintf(stderr, "ferry cp: unknown flag '%s'\n", arg);
			status = CMD_EXIT_USAGE;
			goto out;
		} else if (npositional < 2 && arg[0]) {
			positional[npositional++] = arg;
		} else {
			fprintf(stderr, "ferry cp: give one SRC and one DST\n");
			status = CMD_EXIT_USAGE;
			goto out;
		}
	}
	if (npositional != 2) {
		fprintf(stderr, "usage: ferry cp [-r] [-q] [-o OPTION[,OPTION...]] SRC DST\n%s",
			cmd_uri_help);
		status = CMD_EXIT_USAGE;
		goto out;
	}
	log_set_level((enum log_level)o.log_level);
	status = cmd_cp_run(positional[0], positional[1], recursive, quiet, &o);
out:
	cmd_opts_free(&o);
	return status;
}

/* ferry ls ------------------------------------------------------------------------------ */

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
		return CMD_EXIT_FAIL;
	}
	/* depth first, as find(1) lists: a folder, then what is in it */
	for (size_t i = 0; i < count; i++) {
		if (cmd_join(shown, sizeof(shown), rel, entries[i].name) ||
		    cmd_join(path, sizeof(path), dir, entries[i].name))
			continue;
		cmd_ls_print(shown, &entries[i].attr, entries[i].attr.is_dir, lng);
		if (recursive && entries[i].attr.is_dir &&
		    cmd_ls_dir(s, path, shown, lng, recursive, uri))
			status = CMD_EXIT_FAIL;
	}
	datastore_entries_free(entries, count);
	return status;
}

int cmd_ls(int argc, char **argv)
{
	struct datastore_handle *h = NULL;
	const char *uri = NULL;
	bool lng = false, recursive = false;
	char errbuf[1024] = "", base[1100];
	struct cmd_opts o;
	int status = CMD_EXIT_FAIL, err;

	cmd_opts_init(&o);
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "-l")) {
			lng = true;
		} else if (!strcmp(arg, "-R") || !strcmp(arg, "-r") || !strcmp(arg, "--recursive")) {
			recursive = true;
		} else if (!strcmp(arg, "-lR") || !strcmp(arg, "-Rl")) {
			lng = recursive = true;
		} else if (!strncmp(arg, "-o", 2)) {
			const char *list = arg[2] ? arg + 2 : (i + 1 < argc ? argv[++i] : NULL);

			if (!list || cmd_parse_o(&o, "ls", list)) {
				if (!list)
					fprintf(stderr, "ferry ls: -o needs a list of options\n");
				status = CMD_EXIT_USAGE;
				goto out;
			}
		} else if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			printf("usage: ferry ls [-l] [-R] [-o OPTION[,OPTION...]] URI\n%s", cmd_uri_help);
			status = 0;
			goto out;
		} else if (arg[0] == '-' && arg[1]) {
			fprintf(stderr, "ferry ls: unknown flag '%s'\n", arg);
			status = CMD_EXIT_USAGE;
			goto out;
		} else if (!uri) {
			uri = arg;
		} else {
			fprintf(stderr, "ferry ls: give one URI\n");
			status = CMD_EXIT_USAGE;
			goto out;
		}
	}
	if (!uri) {
		fprintf(stderr, "usage: ferry ls [-l] [-R] [-o OPTION[,OPTION...]] URI\n%s",
			cmd_uri_help);
		status = CMD_EXIT_USAGE;
		goto out;
	}
	if (!datastore_is_uri(uri)) {
		fprintf(stderr, "ferry ls: %s is not a datastore URI\n%s", uri, cmd_uri_help);
		status = CMD_EXIT_USAGE;
		goto out;
	}
	log_set_level((enum log_level)o.log_level);
	err = datastore_open(uri, &o.ds, &h, errbuf, sizeof(errbuf));
	if (err) {
		fprintf(stderr, "ferry ls: %s\n", errbuf[0] ? errbuf : strerror(-err));
		goto out;
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
out:
	cmd_opts_free(&o);
	return status;
}
