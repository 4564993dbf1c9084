/* cmd_data: `ferry cp`, `ferry ls`. */
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

#include "auth/base/log.h"
#include "auth/base/util.h"
#include "cache/store/datastore.h"
#include "tools/cli/cli.h"
#include "tools/lib/transfer.h"

#define CMD_URI_MAX 8192

#define CMD_CP_USAGE "ferry cp [-r] [-q] [-o OPTION[,OPTION...]] SRC DST\n"
#define CMD_LS_USAGE "ferry ls [-l] [-R] [-o OPTION[,OPTION...]] URI\n"
#define CMD_URI_HELP                                                                         \
	"URI is azureml://datastores/NAME/paths/PATH or a container URL with a path\n"         \
	"(https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH,\n"                             \
	"http://127.0.0.1:10000/ACCOUNT/CONTAINER/PATH); see docs/datastores.md.\n"

const char cmd_cp_lines[] = CMD_CP_USAGE;
const char cmd_ls_lines[] = CMD_LS_USAGE;

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
	CMD_O_KIND,
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
	FUSE_OPT_KEY("kind=", CMD_O_KIND),
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
	long number;

	if (util_parse_long(value, 1, max, &number) != 0)
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
	case CMD_O_KIND:
		if (strcmp(value, "blob") != 0 && strcmp(value, "file") != 0)
			return cmd_o_bad(o, arg, "blob or file");
		o->ds.kind_given = true;
		o->ds.kind = strcmp(value, "file") == 0 ? URL_FILE : URL_BLOB;
		return 0;
	}
	fprintf(stderr,
		"ferry %s: unknown option '%s' (options: account_key_file=, sas_file=, "
		"bearer_token_file=, ca_file=, allow_http, workers=, timeout=, block_size=, "
		"log_level=, kind=; see docs/datastores.md)\n",
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
 * and bad flags are handled here. CLI_GO_ON, or the exit status. */
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
			return cli_help(f->usage, f->help);
		if (*opt == '?' || *opt == ':')
			return cli_bad_option(f->cmd, *opt, argv, f->longopts, f->usage);
		return CLI_GO_ON;
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

/* What the source is, and its name: CLI_GO_ON, or the exit status. */
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
	return CLI_GO_ON;
}

/* Where the copy goes: into a folder, or as a new name. CLI_GO_ON, or the exit status. */
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
	return CLI_GO_ON;
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
	if (status == CLI_GO_ON && c->src_is_dir && !recursive)
		status = cli_usage_error("cp", cmd_cp_usage,
					 "%s is a folder; use -r (--recursive) to copy it", src_arg);
	/* "dir/" (and a datastore's root) means what is in it; "dir" the folder itself. */
	contents = c->src_is_dir && (src_arg[strlen(src_arg) - 1] == '/' || !c->base[0]);
	if (status == CLI_GO_ON)
		status = cmd_cp_destination(c, contents);
	if (status == CLI_GO_ON)
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
	while ((status = cmd_next_flag(&flags, argc, argv, &o, &opt)) == CLI_GO_ON && opt != -1) {
		if (opt == 'q')
			quiet = true;
		else
			recursive = true; /* -r, -R */
	}
	if (status == CLI_GO_ON && (argc - optind != 2 || !*argv[optind] || !*argv[optind + 1]))
		status = cli_usage_error("cp", cmd_cp_usage, "give one SRC and one DST");
	if (status == CLI_GO_ON && !datastore_is_uri(argv[optind]) &&
	    !datastore_is_uri(argv[optind + 1]))
		status = cli_usage_error("cp", cmd_cp_usage,
					 "%s and %s are both local paths; one of them must be a "
					 "datastore URI (use cp(1) for local copies)",
					 argv[optind], argv[optind + 1]);
	if (status == CLI_GO_ON) {
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
	while ((status = cmd_next_flag(&flags, argc, argv, &o, &opt)) == CLI_GO_ON && opt != -1) {
		if (opt == 'l')
			lng = true;
		else
			recursive = true; /* -R, -r */
	}
	if (status == CLI_GO_ON && argc - optind != 1)
		status = cli_usage_error("ls", cmd_ls_usage, "give one URI");
	if (status == CLI_GO_ON && !datastore_is_uri(argv[optind]))
		status = cli_usage_error("ls", cmd_ls_usage, "%s is not a datastore URI\n%s",
					 argv[optind], CMD_URI_HELP);
	if (status == CLI_GO_ON)
		status = cmd_ls_run(argv[optind], lng, recursive, &o);
	cmd_opts_free(&o);
	return status;
}
