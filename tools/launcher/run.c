#include "tools/launcher/run.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/base/util.h"
#include "fs/mount.h"
#include "cache/store/url.h"
#include "cache/store/datastore.h"
#include "tools/launcher/job/jobfile.h"
#include "tools/launcher/engine.h"
#include "tools/launcher/envlist.h"
#include "tools/launcher/layout.h"
#include "tools/launcher/mounts.h"
#include "tools/launcher/record.h"
#include "tools/launcher/stores.h"
#include "tools/launcher/task.h"
#include "tools/launcher/uploader.h"
#include "tools/lib/transfer.h"

#define RUN_URI_MAX 4096
#define RUN_LOG_UPLOAD_MS 10000
#define RUN_KILL_GRACE_MS 5000 /* SIGTERM to SIGKILL */
#define RUN_DRAIN_MS 2000      /* output still read after the command's shell ended */

enum run_status {
	RUN_QUEUED,
	RUN_PREPARING,
	RUN_RUNNING,
	RUN_FINALIZING,
	RUN_COMPLETED,
	RUN_FAILED,
	RUN_CANCELED,
	RUN_NSTATUS,
};

static const char *const run_status_names[RUN_NSTATUS] = {
	"Queued", "Preparing", "Running", "Finalizing", "Completed", "Failed", "Canceled",
};

/* How each input and output was given to the command, for the record. */
struct run_data {
	const char *name;
	const char *mode;
	const char *uri;   /* where it lives; NULL for literals */
	char *owned;       /* uri, when it was made here (default output paths) */
	char local[PATH_MAX]; /* what the command got: a path, a URI or a literal */
};

struct run {
	const struct job *job;
	char id[RUN_ID_MAX];
	char prefix[RUN_URI_MAX]; /* azureml://datastores/<default>/paths/runs/<id>/ */
	char workdir[PATH_MAX];   /* private: code, outputs, logs, mounts */
	char node[256];
	time_t times[RUN_NSTATUS]; /* 0: not reached */
	enum run_status status;
	int exit_code;             /* -1: none */
	char error[1024];
	struct run_data *inputs, *outputs;
	struct stores *stores;     /* every datastore the run uses, opened once */
	struct stores_target home; /* runs/<id> in the default datastore */
	struct mounts *mounts;
	struct auth_cred *dev_cred; /* the emulator's well-known key, for its datastores */
	char std_log[PATH_MAX];    /* user_logs/std_log.txt in the workdir */
	char stdout_log[PATH_MAX]; /* Batch AI: stdout.txt and stderr.txt */
	char stderr_log[PATH_MAX];
	/* their names: std_log.txt, stdout.txt and stderr.txt for a run of its own; in a run
	 * on many nodes std_log_process_<rank>.txt, stdout-<rank>.txt and stderr-<rank>.txt */
	char std_name[64], stdout_name[64], stderr_name[64];
	struct uploader_file logs[UPLOADER_MAX_FILES]; /* the logs, to the run store */
	char log_paths[UPLOADER_MAX_FILES][DATASTORE_PATH_MAX];
	size_t nlogs;
	bool record_failed;        /* a record could not be written (said once) */
	struct task *task;         /* a task of a run on many nodes; NULL: a run of its own */
	bool plan;                 /* a task that is not its node's leader: the paths of
				    * inputs and outputs are worked out, nothing is made */
	char **task_env;           /* the variables of the task's process */
	bool stopped;              /* the command was stopped by a stop or a signal */
	time_t started, ended;     /* the command's */
};

static volatile sig_atomic_t run_interrupted;
static int run_wake[2] = { -1, -1 }; /* a signal writes a byte; the exec loop polls */

/* SIGCHLD, SIGINT, SIGTERM, SIGHUP: the exec loop wakes up. */
static void run_on_signal(int sig)
{
	int saved = errno;
	ssize_t n;

	if (sig != SIGCHLD)
		run_interrupted = sig;
	n = write(run_wake[1], "", 1); /* full: a wake-up is pending anyway */
	(void)n;
	errno = saved;
}

static int run_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records why the run failed (the first reason stands) and says it on stderr. */
static int run_fail(struct run *r, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!r->error[0])
		memcpy(r->error, line, sizeof(line));
	if (r->task)
		fprintf(stderr, "ferry run: rank %d (%s): %s\n", r->task->proc.rank, r->task->host,
			line);
	else
		fprintf(stderr, "ferry run: %s\n", line);
	return -EINVAL;
}

/* Record ---------------------------------------------------------------------------- */

_Static_assert((int)RUN_NSTATUS == (int)RECORD_NSTATUS, "run and record statuses agree");

static void run_record_data(struct record_data *out, const struct run_data *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (struct record_data){ .name = d[i].name, .mode = d[i].mode,
					       .path = d[i].uri };
}

/* The record as JSON; *out is malloc'ed. */
static int run_record_json(const struct run *r, char **out, size_t *len)
{
	const struct job *job = r->job;
	struct record_data *ins = calloc(job->ninputs + 1, sizeof(*ins));
	struct record_data *outs = calloc(job->noutputs + 1, sizeof(*outs));
	struct run_record rec = {
		.id = r->id,
		.status = (enum record_status)r->status,
		.experiment_name = job->experiment_name ? job->experiment_name : "Default",
		.display_name = job->display_name ? job->display_name : r->id,
		.kind = job->kind == JOB_BATCHAI ? "batchai" : "command",
		.job_file = job->source,
		.command = job->command,
		.node = r->node,
		.exit_code = r->exit_code,
		.error = r->error[0] ? r->error : NULL,
		.inputs = ins, .ninputs = job->ninputs,
		.outputs = outs, .noutputs = job->noutputs,
		.engine = "local",
		.distribution = "none",
		.node_count = 1,
	};
	int err = -ENOMEM;

	if (ins && outs) {
		memcpy(rec.times, r->times, sizeof(rec.times));
		run_record_data(ins, r->inputs, job->ninputs);
		run_record_data(outs, r->outputs, job->noutputs);
		err = record_to_json(&rec, out, len);
	}
	free(ins);
	free(outs);
	return err;
}


/* Writes data as name under the run's folder in the default datastore. */
static int run_put(struct run *r, const char *name, const void *data, size_t len,
		   char *errbuf, size_t errlen)
{
	char path[DATASTORE_PATH_MAX];
	int err = util_path_join(path, sizeof(path), r->home.path, name);

	if (!err)
		err = store_put(r->home.store, path, data, len, NULL, NULL, NULL);
	if (err)
		util_errf(errbuf, errlen, "cannot write %s%s: %s", r->prefix, name,
			  transfer_store_error(err));
	return err;
}

/* Sets and records the status: 0, or -errno when the record could not be written
 * (said once on stderr). */
static int run_set_status(struct run *r, enum run_status status)
{
	char errbuf[1024];
	size_t len = 0;
	char *json = NULL;
	int err;

	r->status = status;
	r->times[status] = time(NULL);
	if (r->task)
		return 0; /* the coordinator keeps the record */
	fprintf(stderr, "ferry run: %s: %s\n", r->id, run_status_names[status]);
	err = run_record_json(r, &json, &len);
	if (err)
		util_errf(errbuf, sizeof(errbuf), "out of memory");
	else
		err = run_put(r, "run.json", json, len, errbuf, sizeof(errbuf));
	free(json);
	if (err && !r->record_failed)
		fprintf(stderr, "ferry run: could not record the run's status: %s\n", errbuf);
	r->record_failed |= err != 0;
	return err;
}

/* Paths ----------------------------------------------------------------------------- */

/* out = s, whole: -ENAMETOOLONG when it does not fit. */
static int run_copy(char *out, size_t outlen, const char *s)
{
	return util_path_join(out, outlen, "", s);
}

/* path = path "/" name. */
static int run_append(char *path, size_t pathlen, const char *name)
{
	char dir[RUN_URI_MAX];

	if (run_copy(dir, sizeof(dir), path) != 0)
		return -ENAMETOOLONG;
	return util_path_join(path, pathlen, dir, name);
}

/* Copies the local tree src into dst (the job's code). */
static int run_copy_tree(const char *src, const char *dst)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		execlp("cp", "cp", "-a", "--", src, dst, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return -EIO;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -EIO;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* out = out "/" segment, percent-encoded ('/' kept); nothing for an empty segment. */
static int run_url_append(char *out, size_t outlen, const char *segment)
{
	char encoded[3 * DATASTORE_PATH_MAX];

	if (!*segment)
		return 0;
	if (url_encode(segment, true, encoded, sizeof(encoded)) < 0)
		return -ENAMETOOLONG;
	return run_append(out, outlen, encoded);
}

/* The container URL (with path) ferry mount takes for a datastore target. */
static int run_target_url(const struct datastore_target *t, char *out, size_t outlen)
{
	char endpoint[512];
	int err = url_endpoint(&t->url, endpoint, sizeof(endpoint));

	if (!err)
		err = util_path_join(out, outlen, endpoint, t->url.container);
	if (!err)
		err = run_url_append(out, outlen, t->url.prefix);
	if (!err)
		err = run_url_append(out, outlen, t->path);
	return err;
}

/* The credential files of a datastore that keeps its secret, into mo. */
static void run_mount_secret(struct run *r, const struct datastore *ds,
			     struct mount_options *mo)
{
	char secret[PATH_MAX];

	if (datastore_secret_path(ds->name, secret, sizeof(secret)) != 0)
		return;
	if (ds->cred == DATASTORE_CRED_ACCOUNT_KEY)
		run_copy(mo->account_key_file, sizeof(mo->account_key_file), secret);
	else if (ds->cred == DATASTORE_CRED_SAS)
		run_copy(mo->sas_file, sizeof(mo->sas_file), secret);
	else if (ds->cred == DATASTORE_CRED_EMULATOR && !mo->cred)
		mo->cred = r->dev_cred;
}

/* Mounts uri at mountpoint with ferry's mount code; what names it in messages. A share
 * (Batch AI's azureFileShares) is a file share whatever its URL looks like. */
static int run_mount(struct run *r, const char *what, const char *uri, const char *mountpoint,
		     bool read_only, bool share, const struct auth_cred *cred)
{
	struct datastore_target *t = malloc(sizeof(*t));
	struct mount_options mo;
	char url[RUN_URI_MAX], errbuf[1024];
	int err;

	if (!t)
		return run_fail(r, "%s: out of memory", what);
	err = datastore_resolve(uri, t, errbuf, sizeof(errbuf));
	if (!err && run_target_url(t, url, sizeof(url)) != 0) {
		util_errf(errbuf, sizeof(errbuf), "the URI is too long");
		err = -ENAMETOOLONG;
	}
	if (!err) {
		mount_options_default(&mo);
		mo.url = url;
		mo.mountpoint = mountpoint;
		mo.read_only = read_only;
		mo.cred = cred;
		mo.kind_given = true; /* the URL below is path-style: say what it names */
		mo.kind = share ? URL_FILE : t->url.kind;
		if (t->from_datastore)
			run_mount_secret(r, &t->ds, &mo);
	}
	free(t);
	if (err)
		return run_fail(r, "%s: %s: %s", what, uri, errbuf);
	err = util_mkdir_p(mountpoint, 0755);
	if (err)
		return run_fail(r, "%s: cannot create %s: %s", what, mountpoint, strerror(-err));
	err = mounts_add(r->mounts, &mo, what, !read_only, errbuf, sizeof(errbuf));
	if (err)
		return run_fail(r, "%s: cannot mount %s: %s", what, uri, errbuf);
	return 0;
}

/* What a mount's daemon logged: lost writes of a read-write mount fail the run. */
static void run_mount_report(void *ctx, const char *what, bool rw, const char *line)
{
	struct run *r = ctx;

	if (strncmp(line, "ferry: ", 7) == 0)
		line += 7;
	if (rw)
		run_fail(r, "%s: %s", what, line);
	else
		fprintf(stderr, "ferry run: %s: %s\n", what, line);
}

static int run_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP ? rmdir(path) : unlink(path))
		fprintf(stderr, "ferry run: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* Removes the run's folder: never across a mount (FTW_MOUNT), so nothing remote. */
static void run_remove_workdir(const struct run *r)
{
	if (nftw(r->workdir, run_remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
		fprintf(stderr, "ferry run: cannot remove %s\n", r->workdir);
}

/* Preparing ------------------------------------------------------------------------- */

/* A local path of the job file, as Azure ML reads it: relative to the file's folder. */
static int run_job_path(const struct run *r, const char *path, char out[PATH_MAX])
{
	const char *slash = strrchr(r->job->source, '/');
	char dir[PATH_MAX], joined[PATH_MAX];
	size_t len = slash ? (size_t)(slash - r->job->source) : 0;

	if (path[0] == '/' || !slash || len >= sizeof(dir)) {
		if (strlen(path) >= sizeof(joined))
			return -ENAMETOOLONG;
		memcpy(joined, path, strlen(path) + 1);
	} else {
		memcpy(dir, r->job->source, len);
		dir[len] = '\0';
		if (util_path_join(joined, sizeof(joined), dir, path) != 0)
			return -ENAMETOOLONG;
	}
	return realpath(joined, out) ? 0 : -errno;
}

static const char *run_basename(const char *path)
{
	size_t len = strlen(path);
	const char *slash;

	while (len > 1 && path[len - 1] == '/')
		len--;
	slash = memrchr(path, '/', len);
	return slash ? slash + 1 : path;
}

/* The store of uri, which must name something (a file when is_file). */
static int run_existing(struct run *r, const char *what, const char *uri, bool is_file,
			struct stores_target *t, enum datastore_kind *kind)
{
	char errbuf[1024];
	int err = stores_get(r->stores, uri, t, errbuf, sizeof(errbuf));

	if (err)
		return run_fail(r, "%s: %s", what, errbuf);
	err = stores_kind(t, kind);
	if (err)
		return run_fail(r, "%s: cannot look up %s: %s", what, uri,
				transfer_store_error(err));
	if (*kind == DATASTORE_MISSING || (is_file && *kind != DATASTORE_FILE))
		return run_fail(r, "%s: %s: %s", what, uri,
				*kind == DATASTORE_MISSING ? "nothing there; check the path "
							     "and the datastore"
							   : "a folder, not a file");
	return 0;
}

/* download: a folder's contents into dir, a file into dir by its name. */
static int run_input_download(struct run *r, const char *what, size_t i, const char *dir)
{
	const struct job_input *in = &r->job->inputs[i];
	struct run_data *d = &r->inputs[i];
	struct transfer_side from = { .display = in->path };
	struct transfer_side to = { .path = d->local };
	bool is_file = in->type == JOB_URI_FILE;
	struct transfer_opts topts;
	struct stores_target t;
	enum datastore_kind kind;
	char errbuf[1024];
	int err = run_existing(r, what, in->path, is_file, &t, &kind);

	if (err)
		return err;
	err = util_mkdir_p(dir, 0755);
	if (!err)
		err = is_file ? util_path_join(d->local, sizeof(d->local), dir,
					       run_basename(in->path))
			      : run_copy(d->local, sizeof(d->local), dir);
	if (err)
		return run_fail(r, "%s: %s", what, strerror(-err));
	transfer_opts_default(&topts);
	from.store = t.store;
	from.path = t.path;
	err = transfer_copy(&from, kind == DATASTORE_DIR, &to, &topts, NULL, errbuf,
			    sizeof(errbuf));
	if (err)
		return run_fail(r, "%s: download of %s failed: %s", what, in->path, errbuf);
	return 0;
}

/* ro_mount: a folder is mounted where the command looks; a file by its folder. */
static int run_input_mount(struct run *r, const char *what, size_t i, const char *dir)
{
	const struct job_input *in = &r->job->inputs[i];
	struct run_data *d = &r->inputs[i];
	bool is_file = in->type == JOB_URI_FILE;
	const char *base = run_basename(in->path);
	size_t plen = (size_t)(base - in->path);
	char parent[RUN_URI_MAX];
	struct stores_target t;
	enum datastore_kind kind;
	int err = run_existing(r, what, in->path, is_file, &t, &kind);

	if (err)
		return err;
	if (!is_file) {
		if (run_copy(d->local, sizeof(d->local), dir) != 0)
			return run_fail(r, "%s: path too long", what);
		return run_mount(r, what, in->path, dir, true, false, NULL);
	}
	if (plen >= sizeof(parent) || util_path_join(d->local, sizeof(d->local), dir, base))
		return run_fail(r, "%s: path too long", what);
	memcpy(parent, in->path, plen);
	parent[plen] = '\0';
	return run_mount(r, what, parent, dir, true, false, NULL);
}

static int run_prepare_input(struct run *r, size_t i)
{
	const struct job_input *in = &r->job->inputs[i];
	struct run_data *d = &r->inputs[i];
	char dir[PATH_MAX], inputs[PATH_MAX], what[JOB_NAME_MAX + 64];
	struct stores_target t;
	int err;

	d->name = in->name;
	d->mode = in->type == JOB_LITERAL ? "literal" : job_input_mode_name(in->mode);
	d->uri = in->path;
	util_errf(what, sizeof(what), "%s:%u: inputs.%s", r->job->source, in->line, in->name);
	if (in->type == JOB_LITERAL)
		return run_copy(d->local, sizeof(d->local), in->value) == 0
			       ? 0
			       : run_fail(r, "%s: the value is too long", what);
	if (datastore_is_uri(in->path) != 1) {
		/* A local path is used where it is. */
		err = run_job_path(r, in->path, d->local);
		if (err)
			return run_fail(r, "%s: %s: %s", what, in->path, strerror(-err));
		return 0;
	}
	if (in->mode == JOB_DIRECT) {
		char errbuf[1024];

		if (run_copy(d->local, sizeof(d->local), in->path) != 0)
			return run_fail(r, "%s: the URI is too long", what);
		if (r->plan)
			return 0;
		err = stores_get(r->stores, in->path, &t, errbuf, sizeof(errbuf));
		return err ? run_fail(r, "%s: %s", what, errbuf) : 0;
	}
	if (util_path_join(inputs, sizeof(inputs), r->workdir, "inputs") != 0 ||
	    util_path_join(dir, sizeof(dir), inputs, in->name) != 0)
		return run_fail(r, "%s: path too long", what);
	if (r->plan) /* where the leader's mount or download puts it */
		err = in->type == JOB_URI_FILE ? util_path_join(d->local, sizeof(d->local), dir,
								 run_basename(in->path))
					       : run_copy(d->local, sizeof(d->local), dir);
	if (r->plan)
		return err ? run_fail(r, "%s: path too long", what) : 0;
	if (in->mode == JOB_DOWNLOAD)
		return run_input_download(r, what, i, dir);
	return run_input_mount(r, what, i, dir);
}

static int run_prepare_output(struct run *r, size_t i)
{
	const struct job_output *out = &r->job->outputs[i];
	struct run_data *d = &r->outputs[i];
	char what[JOB_NAME_MAX + 64], errbuf[1024], named[PATH_MAX];
	struct stores_target t;
	int err;

	d->name = out->name;
	d->mode = job_output_mode_name(out->mode);
	util_errf(what, sizeof(what), "%s:%u: outputs.%s", r->job->source, out->line, out->name);
	d->uri = d->owned = record_output_uri(r->prefix, out);
	if (!d->uri)
		return run_fail(r, "%s: out of memory", what);
	if (datastore_is_uri(d->uri) != 1)
		return run_fail(r, "%s: path '%s' is not a datastore URI (azureml://... or a "
				   "container URL)", what, d->uri);
	err = r->plan ? 0 : stores_get(r->stores, d->uri, &t, errbuf, sizeof(errbuf));
	if (err)
		return run_fail(r, "%s: %s", what, errbuf);
	if (util_path_join(named, sizeof(named), r->workdir, "named-outputs") != 0 ||
	    util_path_join(d->local, sizeof(d->local), named, out->name) != 0)
		return run_fail(r, "%s: path too long", what);
	if (r->plan)
		return 0;
	if (out->mode == JOB_RW_MOUNT)
		return run_mount(r, what, d->uri, d->local, false, false, NULL);
	err = util_mkdir_p(d->local, 0755);
	if (err)
		return run_fail(r, "%s: cannot create %s: %s", what, d->local, strerror(-err));
	return 0;
}

/* Batch AI's AZ_BATCHAI_SHARED_JOB_TEMP: <--shared-temp>/<run id>, a folder every node
 * of the run sees; -ENOENT without --shared-temp. */
static int run_shared_temp(const struct run *r, char out[PATH_MAX])
{
	const char *dir = getenv("FERRY_SHARED_TEMP");

	return dir && *dir ? util_path_join(out, PATH_MAX, dir, r->id) : -ENOENT;
}

/* Batch AI: $AZ_BATCHAI_JOB_MOUNT_ROOT and $AZ_BATCHAI_MOUNT_ROOT (both the job's mount
 * root here) expanded at the start of a path. */
static int run_batchai_path(const struct run *r, const char *in, char *out, size_t outlen)
{
	static const char *const roots[] = { "$AZ_BATCHAI_JOB_MOUNT_ROOT",
					     "${AZ_BATCHAI_JOB_MOUNT_ROOT}",
					     "$AZ_BATCHAI_MOUNT_ROOT", "${AZ_BATCHAI_MOUNT_ROOT}" };
	char mounts[PATH_MAX];

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		size_t len = strlen(roots[i]);

		if (strncmp(in, roots[i], len) != 0 || (in[len] != '/' && in[len]))
			continue;
		if (util_path_join(mounts, sizeof(mounts), r->workdir, "mounts") != 0)
			return -ENAMETOOLONG;
		return in[len] ? util_path_join(out, outlen, mounts, in + len + 1)
			       : run_copy(out, outlen, mounts);
	}
	return run_copy(out, outlen, in);
}

/* AZ_BATCHAI_OUTPUT_<ID>: <pathPrefix>/<run id>/outputs[/<pathSuffix>], as Batch AI
 * put each job's outputs in a folder of its own under the prefix. */
static int run_batchai_output(const struct run *r, const struct job_batchai_output *o,
			      char out[PATH_MAX])
{
	char prefix[PATH_MAX];
	int err = run_batchai_path(r, o->path_prefix, prefix, sizeof(prefix));

	if (!err)
		err = util_path_join(out, PATH_MAX, prefix, r->id);
	if (!err)
		err = run_append(out, PATH_MAX, "outputs");
	if (!err && o->path_suffix)
		err = run_append(out, PATH_MAX, o->path_suffix);
	return err;
}

/* Endpoint of a Batch AI mount's account: a datastore's of that account, if one is
 * configured (the emulator, a private endpoint), else Azure's public one. */
struct run_account_find {
	const char *account;
	struct datastore found;
	bool have;
};

static int run_account_each(void *ctx, const struct datastore *ds)
{
	struct run_account_find *find = ctx;

	if (!find->have && strcmp(ds->account, find->account) == 0 && ds->container[0]) {
		find->found = *ds;
		find->have = true;
	}
	return 0;
}

/* One mountVolumes.azureBlobFileSystems or azureFileShares entry, mounted read-write.
 * A share is at its azureFileUrl; a container at the endpoint of a datastore of its
 * account, else Azure's. */
static int run_batchai_mount(struct run *r, const struct job_mount *m)
{
	struct run_account_find find = { .account = m->account_name };
	struct auth_cred *cred = NULL;
	char uri[RUN_URI_MAX], path[PATH_MAX], what[512], errbuf[512];
	bool share = m->kind == JOB_MOUNT_FILES;
	int n, err;

	util_errf(what, sizeof(what), "%s:%u: mountVolumes.%s", r->job->source, m->line,
		  m->relative_mount_path);
	if (!share)
		datastore_foreach(run_account_each, &find, errbuf, sizeof(errbuf));
	if (share) {
		struct url_container u;

		/* The account key is sent (signed) only to the account it is for. */
		if (url_parse_container(m->azure_file_url, &u, errbuf, sizeof(errbuf)) != 0)
			return run_fail(r, "%s: azureFileUrl: %s", what, errbuf);
		if (strcmp(u.account, m->account_name) != 0)
			return run_fail(r, "%s: azureFileUrl is a share of account '%s', not of "
					"accountName '%s'", what, u.account, m->account_name);
		n = snprintf(uri, sizeof(uri), "%s", m->azure_file_url);
	} else if (find.have)
		n = snprintf(uri, sizeof(uri), "%s/%s", find.found.endpoint, m->container_name);
	else
		n = snprintf(uri, sizeof(uri), "https://%s.blob.core.windows.net/%s",
			     m->account_name, m->container_name);
	if (n < 0 || (size_t)n >= sizeof(uri) ||
	    run_batchai_path(r, "$AZ_BATCHAI_JOB_MOUNT_ROOT", path, sizeof(path)) != 0 ||
	    run_append(path, sizeof(path), m->relative_mount_path) != 0)
		return run_fail(r, "%s: path too long", what);
	if (m->account_key && auth_cred_shared_key(m->account_name, m->account_key, &cred) != 0)
		return run_fail(r, "%s: the account key of '%s' is not base64", what,
				m->account_name);
	/* The daemon keeps its own copy of the credential (fork). */
	err = run_mount(r, what, uri, path, false, share, cred);
	auth_cred_free(cred);
	return err;
}

/* Batch AI's stdout.txt and stderr.txt: under stdOutErrPathPrefix, else in user_logs. */
static int run_batchai_logs(struct run *r, const char *user_logs)
{
	const struct job_batchai *b = &r->job->batchai;
	char dir[PATH_MAX];
	int err = 0;

	if (!b->std_out_err_path_prefix)
		err = run_copy(dir, sizeof(dir), user_logs);
	else if (!(err = run_batchai_path(r, b->std_out_err_path_prefix, dir, sizeof(dir))))
		err = run_append(dir, sizeof(dir), r->id);
	if (!err && b->std_out_err_path_prefix)
		err = run_append(dir, sizeof(dir), "stdouterr");
	if (!err)
		err = util_mkdir_p(dir, 0755);
	if (!err)
		err = util_path_join(r->stdout_log, sizeof(r->stdout_log), dir, r->stdout_name);
	if (!err)
		err = util_path_join(r->stderr_log, sizeof(r->stderr_log), dir, r->stderr_name);
	if (err)
		return run_fail(r, "stdOutErrPathPrefix: %s", strerror(-err));
	return 0;
}

static int run_prepare_batchai(struct run *r, const char *user_logs)
{
	const struct job_batchai *b = &r->job->batchai;
	char path[PATH_MAX];
	int err;

	if (r->plan)
		return run_batchai_logs(r, user_logs);
	if (run_shared_temp(r, path) == 0 && (err = util_mkdir_p(path, 0755)) != 0)
		return run_fail(r, "--shared-temp: cannot create %s: %s", path, strerror(-err));
	for (size_t i = 0; i < b->nmounts; i++) {
		err = run_batchai_mount(r, &b->mounts[i]);
		if (err)
			return err;
	}
	for (size_t i = 0; i < b->noutputs; i++) {
		const struct job_batchai_output *o = &b->outputs[i];

		err = run_batchai_output(r, o, path);
		if (!err)
			err = util_mkdir_p(path, 0755);
		if (err)
			return run_fail(r, "%s:%u: outputDirectories.%s: %s", r->job->source,
					o->line, o->id, strerror(-err));
	}
	return run_batchai_logs(r, user_logs);
}

/* Running --------------------------------------------------------------------------- */

/* The rank of this process under Open MPI, Slurm, torchrun or PMI; 0 alone. */
static long run_rank(void)
{
	static const char *const vars[] = { "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID",
					    "RANK" };

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i]);

		if (v && *v)
			return strtol(v, NULL, 10);
	}
	return 0;
}

/* Batch AI's AZ_BATCHAI_* variables. */
static void run_batchai_env(const struct run *r, struct envlist *env)
{
	const struct job *job = r->job;
	char name[JOB_NAME_MAX + 32], value[PATH_MAX], rank[32];

	if (run_batchai_path(r, "$AZ_BATCHAI_JOB_MOUNT_ROOT", value, sizeof(value)) == 0) {
		envlist_set(env, "AZ_BATCHAI_JOB_MOUNT_ROOT", "%s", value);
		envlist_set(env, "AZ_BATCHAI_MOUNT_ROOT", "%s", value);
	}
	if (util_path_join(value, sizeof(value), r->workdir, "temp") == 0)
		envlist_set(env, "AZ_BATCHAI_JOB_TEMP", "%s", value);
	if (run_shared_temp(r, value) == 0)
		envlist_set(env, "AZ_BATCHAI_SHARED_JOB_TEMP", "%s", value);
	snprintf(rank, sizeof(rank), "%ld", run_rank());
	envlist_set(env, "AZ_BATCHAI_TASK_INDEX", "%s", rank);
	envlist_set(env, "AZ_BATCHAI_JOB_NAME", "%s", job->name ? job->name : r->id);
	if (r->stdout_log[0] && run_copy(value, sizeof(value), r->stdout_log) == 0) {
		*strrchr(value, '/') = '\0';
		envlist_set(env, "AZ_BATCHAI_STDOUTERR_DIR", "%s", value);
	}
	for (size_t i = 0; i < job->batchai.ninputs; i++) {
		util_errf(name, sizeof(name), "AZ_BATCHAI_INPUT_%s", job->batchai.inputs[i].id);
		if (run_batchai_path(r, job->batchai.inputs[i].path, value, sizeof(value)) == 0)
			envlist_set(env, name, "%s", value);
	}
	for (size_t i = 0; i < job->batchai.noutputs; i++) {
		util_errf(name, sizeof(name), "AZ_BATCHAI_OUTPUT_%s", job->batchai.outputs[i].id);
		if (run_batchai_output(r, &job->batchai.outputs[i], value) == 0)
			envlist_set(env, name, "%s", value);
	}
}

/* The command's environment: ferry run's, the run's and the job's. */
static int run_env(const struct run *r, struct envlist *env)
{
	extern char **environ;
	const struct job *job = r->job;

	envlist_init(env, environ);
	envlist_set(env, "AZUREML_RUN_ID", "%s", r->id);
	envlist_set(env, "AZUREML_EXPERIMENT_NAME", "%s",
		    job->experiment_name ? job->experiment_name : "Default");
	for (size_t i = 0; i < job->nenv; i++)
		envlist_set(env, job->env[i].name, "%s", job->env[i].value);
	if (job->kind == JOB_BATCHAI)
		run_batchai_env(r, env);
	for (size_t i = 0; r->task_env && r->task_env[i]; i++)
		envlist_put(env, r->task_env[i]);
	return env->err;
}

struct run_logs {
	FILE *merged, *out, *err; /* out and err: Batch AI's stdout.txt / stderr.txt */
};

/* Passes what the command wrote on one of its streams to the terminal and the logs.
 * Returns false at end of stream. */
static bool run_pump(int fd, int terminal, FILE *merged, FILE *own)
{
	char buf[65536];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	if (util_write_full(terminal, buf, (size_t)n) != 0) {
		/* a closed terminal does not stop the run */
	}
	fwrite(buf, 1, (size_t)n, merged);
	fflush(merged);
	if (own) {
		fwrite(buf, 1, (size_t)n, own);
		fflush(own);
	}
	return true;
}

static int64_t run_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A command running: its shell heads a process group of its own. */
struct run_proc {
	pid_t pid;
	int out, err;         /* read ends of its stdout and stderr; -1 at end of stream */
	int wake;             /* read end of run_wake_fd's pipe */
	int status;           /* the shell's wait status, once reaped */
	bool reaped;
	bool stopping;        /* SIGTERM sent for a timeout or an interrupt */
	int64_t deadline;     /* limits.timeout; 0: none */
	int64_t kill_at;      /* when the group gets SIGKILL; 0: not planned */
	int64_t drain_until;  /* after the shell ended: the last moment output is read */
};

/* Starts cmd under sh -c in the code folder, its output into two pipes. */
static int run_spawn(struct run *r, const char *cmd, struct run_proc *p)
{
	char *const argv[] = { "sh", "-c", (char *)cmd, NULL };
	int out_pipe[2], err_pipe[2], err;
	char code_dir[PATH_MAX];
	struct envlist env;

	if (util_path_join(code_dir, sizeof(code_dir), r->workdir, "code") != 0)
		return run_fail(r, "%s: path too long", r->workdir);
	if (run_env(r, &env) != 0) {
		envlist_free(&env);
		return run_fail(r, "out of memory");
	}
	if (pipe2(out_pipe, O_CLOEXEC) != 0) {
		envlist_free(&env);
		return run_fail(r, "pipe: %s", strerror(errno));
	}
	if (pipe2(err_pipe, O_CLOEXEC) != 0) {
		close(out_pipe[0]);
		close(out_pipe[1]);
		envlist_free(&env);
		return run_fail(r, "pipe: %s", strerror(errno));
	}
	fflush(NULL);
	/* The log uploader's thread runs: the child calls async-signal-safe functions
	 * only. */
	p->pid = fork();
	if (p->pid == 0) {
		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		if (chdir(code_dir) != 0 && chdir(r->workdir) != 0)
			_exit(127);
		dup2(out_pipe[1], STDOUT_FILENO);
		dup2(err_pipe[1], STDERR_FILENO);
		execve("/bin/sh", argv, env.vars);
		_exit(127);
	}
	err = errno;
	envlist_free(&env);
	close(out_pipe[1]);
	close(err_pipe[1]);
	p->out = out_pipe[0];
	p->err = err_pipe[0];
	if (p->pid > 0) {
		setpgid(p->pid, p->pid);
		return 0;
	}
	close(p->out);
	close(p->err);
	return run_fail(r, "cannot start the command: %s", strerror(err));
}

/* The time-driven steps: a timeout or an interrupt stops the group, SIGKILL follows
 * SIGTERM, and once the shell has ended the rest of its group is stopped. Returns
 * false when the wait is over. */
static bool run_step(struct run *r, struct run_proc *p, int64_t now)
{
	if (!p->stopping && !p->reaped && r->task && (run_interrupted || r->task->stopped)) {
		r->stopped = true; /* the coordinator says why */
		p->stopping = true;
	} else if (!p->stopping && !p->reaped && run_interrupted) {
		run_fail(r, "interrupted (signal %d): the command was stopped", (int)run_interrupted);
		p->stopping = true;
	} else if (!p->stopping && !p->reaped && p->deadline && now >= p->deadline) {
		run_fail(r, "the command ran past limits.timeout (%lld s) and was stopped",
			 (long long)r->job->timeout);
		p->stopping = true;
	}
	if (p->stopping && !p->kill_at) {
		kill(-p->pid, SIGTERM);
		p->kill_at = now + RUN_KILL_GRACE_MS;
	}
	if (p->kill_at && now >= p->kill_at) {
		kill(-p->pid, SIGKILL);
		p->kill_at = INT64_MAX;
	}
	if (p->reaped && !p->drain_until) {
		/* what the command left behind, holding its output or not */
		kill(-p->pid, SIGTERM);
		p->drain_until = now + RUN_DRAIN_MS;
	}
	return !p->reaped || (now < p->drain_until && (p->out >= 0 || p->err >= 0));
}

/* How long poll may sleep before the next time-driven step: -1 for no limit. */
static int run_poll_ms(const struct run_proc *p, int64_t now)
{
	int64_t next = INT64_MAX;

	if (p->deadline && !p->stopping)
		next = p->deadline;
	if (p->kill_at && p->kill_at < next)
		next = p->kill_at;
	if (p->drain_until && p->drain_until < next)
		next = p->drain_until;
	if (next == INT64_MAX)
		return -1;
	return next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
}

/* Waits for an event of p (output, a signal: SIGCHLD at the shell's end) and handles
 * it. */
static void run_wait_event(struct run *r, struct run_proc *p, struct run_logs *logs,
			   int64_t now)
{
	struct pollfd fds[4] = { { .fd = p->out, .events = POLLIN },
				 { .fd = p->err, .events = POLLIN },
				 { .fd = p->wake, .events = POLLIN },
				 { .fd = r->task ? r->task->conn.fd : -1, .events = POLLIN } };
	char drain[64];

	if (!p->reaped && waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
		p->reaped = true;
		return;
	}
	if (poll(fds, 4, run_poll_ms(p, now)) <= 0)
		return;
	if (fds[3].revents)
		task_on_readable(r->task); /* a stop, or the coordinator's end */
	if (fds[0].revents && !run_pump(p->out, STDOUT_FILENO, logs->merged, logs->out)) {
		close(p->out);
		p->out = -1;
	}
	if (fds[1].revents && !run_pump(p->err, STDERR_FILENO, logs->merged, logs->err)) {
		close(p->err);
		p->err = -1;
	}
	if (fds[2].revents && read(p->wake, drain, sizeof(drain)) < 0) {
		/* nothing to drain: the flags and waitpid() say what happened */
	}
}

/* Runs cmd with sh -c in the workdir, streaming and capturing its output, within the
 * job's time limit: the wait ends when the shell ends (what it left running is
 * stopped), or RUN_KILL_GRACE_MS after a timeout or an interrupt, whatever the
 * command did with its output. Returns its exit status (128 + signal when killed; 127
 * when it could not start), with the run's error set for a timeout or an interrupt. */
static int run_exec(struct run *r, const char *cmd, struct run_logs *logs)
{
	struct run_proc p = { .wake = run_wake[0] };
	int64_t now = run_now_ms();

	if (run_spawn(r, cmd, &p) != 0)
		return 127;
	if (r->job->timeout > 0)
		p.deadline = now + (int64_t)r->job->timeout * 1000;
	while (run_step(r, &p, now)) {
		run_wait_event(r, &p, logs, now);
		now = run_now_ms();
	}
	kill(-p.pid, SIGKILL); /* whatever of its group is left */
	if (p.out >= 0)
		close(p.out);
	if (p.err >= 0)
		close(p.err);
	if (WIFSIGNALED(p.status))
		return 128 + WTERMSIG(p.status);
	return WEXITSTATUS(p.status);
}

/* Finalizing ------------------------------------------------------------------------ */

/* Uploads local (a folder) into what uri names. */
static int run_upload(struct run *r, const char *local, const char *uri, char *errbuf,
		      size_t errlen)
{
	struct stores_target t;
	int err = stores_get(r->stores, uri, &t, errbuf, errlen);

	return err ? err : uploader_copy(t.store, t.path, local, true, errbuf, errlen);
}

/* Uploads what the run leaves: named outputs in upload mode, and ./outputs and ./logs
 * of the working directory as artifacts. Each failure is reported and makes the run
 * Failed; the rest is still uploaded. */
static void run_finalize(struct run *r)
{
	static const char *const artifact_dirs[] = { "outputs", "logs" };
	char local[PATH_MAX], path[DATASTORE_PATH_MAX], rel[64], errbuf[1024];
	struct stat st;

	for (size_t i = 0; i < r->job->noutputs; i++) {
		const struct run_data *d = &r->outputs[i];

		if (r->job->outputs[i].mode != JOB_UPLOAD || !d->uri || !d->local[0])
			continue;
		if (run_upload(r, d->local, d->uri, errbuf, sizeof(errbuf)) != 0)
			run_fail(r, "upload of output '%s' to %s failed: %s", d->name, d->uri,
				 errbuf);
	}
	for (size_t i = 0; i < sizeof(artifact_dirs) / sizeof(artifact_dirs[0]); i++) {
		util_errf(rel, sizeof(rel), "code/%s", artifact_dirs[i]);
		if (util_path_join(local, sizeof(local), r->workdir, rel) != 0 ||
		    stat(local, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		util_errf(rel, sizeof(rel), "artifacts/%s", artifact_dirs[i]);
		if (util_path_join(path, sizeof(path), r->home.path, rel) != 0 ||
		    uploader_copy(r->home.store, path, local, true, errbuf, sizeof(errbuf)) != 0)
			run_fail(r, "upload of ./%s failed: %s", artifact_dirs[i], errbuf);
	}
}

/* Adds local to the logs kept in the run store as user_logs/name. */
static int run_add_log(struct run *r, const char *local, const char *name)
{
	char rel[64];

	if (r->nlogs == UPLOADER_MAX_FILES)
		return -EMFILE;
	util_errf(rel, sizeof(rel), "user_logs/%s", name);
	if (util_path_join(r->log_paths[r->nlogs], DATASTORE_PATH_MAX, r->home.path, rel) != 0)
		return -ENAMETOOLONG;
	r->logs[r->nlogs].local = local;
	r->logs[r->nlogs].path = r->log_paths[r->nlogs];
	r->nlogs++;
	return 0;
}

/* The logs, saved once more by a thread of their own when up is NULL (a run that did
 * not get to its command). */
static void run_save_logs(struct run *r, struct uploader *up)
{
	char errbuf[1024];
	int err = up ? 0 : uploader_start(r->home.store, r->logs, r->nlogs, RUN_LOG_UPLOAD_MS,
					  &up);

	if (!err)
		err = uploader_stop(up, errbuf, sizeof(errbuf));
	else
		util_errf(errbuf, sizeof(errbuf), "%s", strerror(-err));
	if (err)
		run_fail(r, "the logs could not be saved: %s", errbuf);
}

/* The job's code folder copied into the run's, or an empty one. */
static int run_setup_code(struct run *r)
{
	const struct job *job = r->job;
	char code[PATH_MAX], src[PATH_MAX], dir[PATH_MAX];
	struct stat st;

	if (r->plan)
		return 0;
	if (util_path_join(dir, sizeof(dir), r->workdir, "code") != 0 ||
	    util_mkdir_p(dir, 0755) != 0)
		return run_fail(r, "cannot create %s/code", r->workdir);
	if (!job->code)
		return 0;
	if (run_job_path(r, job->code, code) != 0 || stat(code, &st) != 0 ||
	    !S_ISDIR(st.st_mode))
		return run_fail(r, "%s: code: '%s' is not a folder", job->source, job->code);
	/* cp -a SRC/. DST copies the folder's contents. */
	if (util_path_join(src, sizeof(src), code, ".") != 0 || run_copy_tree(src, dir) != 0)
		return run_fail(r, "cannot copy the code folder %s", code);
	return 0;
}

/* user_logs/ and temp/ in the run's folder, and the log files. */
static int run_setup_logs(struct run *r, struct run_logs *logs, char *user_logs, size_t len)
{
	char temp[PATH_MAX];

	if (util_path_join(user_logs, len, r->workdir, "user_logs") != 0 ||
	    util_path_join(temp, sizeof(temp), r->workdir, "temp") != 0 ||
	    util_mkdir_p(user_logs, 0755) != 0 || util_mkdir_p(temp, 0755) != 0 ||
	    util_path_join(r->std_log, sizeof(r->std_log), user_logs, r->std_name) != 0)
		return run_fail(r, "cannot create %s/user_logs", r->workdir);
	logs->merged = fopen(r->std_log, "we");
	if (!logs->merged)
		return run_fail(r, "cannot create %s: %s", r->std_log, strerror(errno));
	return run_add_log(r, r->std_log, r->std_name);
}

/* Batch AI: mounts, output folders, stdout.txt and stderr.txt, jobPreparation. */
static int run_setup_batchai(struct run *r, struct run_logs *logs, const char *user_logs)
{
	const struct job *job = r->job;
	int err = run_prepare_batchai(r, user_logs);

	if (err)
		return err;
	logs->out = fopen(r->stdout_log, "we");
	logs->err = fopen(r->stderr_log, "we");
	if (!logs->out || !logs->err)
		return run_fail(r, "cannot create %s", r->stdout_log);
	if (run_add_log(r, r->stdout_log, r->stdout_name) != 0 ||
	    run_add_log(r, r->stderr_log, r->stderr_name) != 0)
		return run_fail(r, "%s: path too long", r->stdout_log);
	if (job->batchai.job_preparation && !r->plan) {
		int status = run_exec(r, job->batchai.job_preparation, logs);

		if (status != 0)
			return run_fail(r, "jobPreparation.commandLine exited with status %d",
					status);
	}
	return 0;
}

static int run_setup(struct run *r, struct run_logs *logs)
{
	const struct job *job = r->job;
	char user_logs[PATH_MAX];
	int err = run_setup_code(r);

	if (!err)
		err = run_setup_logs(r, logs, user_logs, sizeof(user_logs));
	for (size_t i = 0; !err && i < job->ninputs; i++)
		err = run_prepare_input(r, i);
	for (size_t i = 0; !err && i < job->noutputs; i++)
		err = run_prepare_output(r, i);
	if (!err && job->kind == JOB_BATCHAI)
		err = run_setup_batchai(r, logs, user_logs);
	return err;
}

/* The command line of this process: Batch AI's tensorflow roles have their own. */
static const char *run_template(const struct run *r)
{
	const struct job_dist *d = &r->job->dist;
	const struct layout_proc *p = r->task ? &r->task->proc : NULL;

	if (p && p->role == LAYOUT_PS && d->ps_command)
		return d->ps_command;
	if (p && p->role == LAYOUT_WORKER && p->index > 0 && d->worker_command)
		return d->worker_command;
	if (p && p->role == LAYOUT_WORKER && d->master_command)
		return d->master_command;
	return r->job->command;
}

/* The command with ${{inputs.x}} / ${{outputs.x}} replaced. */
static int run_command(struct run *r, char **out)
{
	const struct job *job = r->job;
	const char **ins = calloc(job->ninputs + 1, sizeof(*ins));
	const char **outs = calloc(job->noutputs + 1, sizeof(*outs));
	struct job_values values = { .inputs = ins, .outputs = outs };
	char errbuf[512];
	int err;

	if (!ins || !outs) {
		free(ins);
		free(outs);
		return run_fail(r, "out of memory");
	}
	for (size_t i = 0; i < job->ninputs; i++)
		ins[i] = r->inputs[i].local;
	for (size_t i = 0; i < job->noutputs; i++)
		outs[i] = r->outputs[i].local;
	err = job_substitute(job, &values, run_template(r), out, errbuf, sizeof(errbuf));
	free(ins);
	free(outs);
	if (err)
		return run_fail(r, "%s: command: %s", job->source, errbuf);
	return 0;
}

/* Closes the log files (Batch AI's may be in a mount, which must not stay busy). */
static void run_close_logs(struct run_logs *logs)
{
	FILE **files[] = { &logs->merged, &logs->out, &logs->err };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (*files[i])
			fclose(*files[i]);
		*files[i] = NULL;
	}
}

/* A task waits for go (every node prepared) and works out its process's variables. */
static int run_task_go(struct run *r)
{
	char hostfile[PATH_MAX];

	if (task_wait_go(r->task) != 0)
		return -ECANCELED; /* the run was stopped before it began */
	if (util_path_join(hostfile, sizeof(hostfile), r->workdir, "hostfile") != 0 ||
	    task_env(r->task, r->job, hostfile, &r->task_env) != 0)
		return run_fail(r, "cannot set up the variables of the process");
	return 0;
}

/* Sets the run up and runs its command, the logs saved by a thread of their own
 * while it runs. A task's leader prepares its node and says so; the other tasks of
 * the node wait for go, as the leader does once it is ready. */
static void run_main(struct run *r, struct run_logs *logs, char **command)
{
	struct uploader *up = NULL;
	int err;

	run_set_status(r, RUN_PREPARING);
	err = r->plan ? run_task_go(r) : 0; /* the node's leader prepares it first */
	if (!err)
		err = run_setup(r, logs);
	if (!err)
		err = run_command(r, command);
	if (!err && run_interrupted)
		err = run_fail(r, "interrupted (signal %d) while preparing", (int)run_interrupted);
	if (r->task && !r->plan) {
		task_ready(r->task, err ? r->error : NULL);
		if (!err)
			err = run_task_go(r);
	}
	if (!err) {
		run_set_status(r, RUN_RUNNING);
		/* The thread starts after the mounts: their daemons are forks. */
		err = uploader_start(r->home.store, r->logs, r->nlogs, RUN_LOG_UPLOAD_MS, &up);
		if (err)
			run_fail(r, "cannot start the log uploads: %s", strerror(-err));
		r->started = time(NULL);
		r->exit_code = run_exec(r, *command, logs);
		r->ended = time(NULL);
	}
	run_close_logs(logs);
	if (r->nlogs)
		run_save_logs(r, up);
	if (r->task && r->started)
		task_exited(r->task, r->exit_code, r->stopped, r->started, r->ended,
			    r->error[0] ? r->error : NULL);
	if (r->task)
		r->error[0] = '\0'; /* said in ready or exited */
}

/* A task's end: the leader waits for the node's other processes, uploads the node's
 * outputs, unmounts and says how that went. Returns the task's exit status. */
static int run_task_end(struct run *r)
{
	int mounts_err;

	if (r->task->leader) {
		if (r->started) /* else no process of the node started */
			task_wait_node_done(r->task);
		if (r->nlogs && r->started)
			run_finalize(r);
		mounts_err = mounts_end(r->mounts, run_mount_report, r);
		if (mounts_err != -EBUSY && !getenv("FERRY_KEEP_RUN_DIR"))
			run_remove_workdir(r);
		task_finished(r->task, r->error[0] ? r->error : NULL);
	}
	return r->exit_code < 0 ? RUN_EXIT_SETUP : r->exit_code;
}

/* Uploads the outputs, ends the mounts and records how the run ended. Returns the
 * exit status of ferry run. */
static int run_end(struct run *r)
{
	int mounts_err;

	if (r->task)
		return run_task_end(r);
	run_set_status(r, RUN_FINALIZING);
	if (r->nlogs)
		run_finalize(r);
	mounts_err = mounts_end(r->mounts, run_mount_report, r);
	if (mounts_err != -EBUSY && !getenv("FERRY_KEEP_RUN_DIR"))
		run_remove_workdir(r);
	if (run_interrupted)
		run_set_status(r, RUN_CANCELED);
	else if (r->error[0] || r->exit_code != 0)
		run_set_status(r, RUN_FAILED);
	else
		run_set_status(r, RUN_COMPLETED);
	if (r->exit_code < 0)
		return RUN_EXIT_SETUP;
	if (r->exit_code > 0)
		return r->exit_code;
	/* the command succeeded, but what it left or the record did not land */
	return r->error[0] || r->record_failed || run_interrupted ? RUN_EXIT_FAILED : 0;
}

/* Parses the job and makes what a run needs before it touches the network. */
/* The task of this slot (task mode): 1 for a slot without a process. */
static int run_init_task(struct run *r, const struct run_opts *opts, struct task *task)
{
	char errbuf[1024];
	int err = task_start(task, opts->engine == RUN_ENGINE_SLURM ? TASK_ENGINE_SLURM
								  : TASK_ENGINE_MPI,
			     r->job, errbuf, sizeof(errbuf));

	if (err) {
		fprintf(stderr, "ferry run: %s\n", errbuf);
		return err;
	}
	if (task->idle)
		return 1;
	r->task = task;
	r->plan = !task->leader;
	util_errf(r->std_name, sizeof(r->std_name), "std_log_process_%d.txt", task->proc.rank);
	util_errf(r->stdout_name, sizeof(r->stdout_name), "stdout-%d.txt", task->proc.rank);
	util_errf(r->stderr_name, sizeof(r->stderr_name), "stderr-%d.txt", task->proc.rank);
	return run_copy(r->id, sizeof(r->id), task->run_id);
}

/* A job for more than one process needs an engine: one line saying how to run it. */
static int run_check_local(const struct job *job)
{
	struct layout l;
	char errbuf[256];

	if (layout_make(job, &l, errbuf, sizeof(errbuf)) != 0) {
		fprintf(stderr, "ferry run: %s: %s\n", job->source, errbuf);
		return -EINVAL;
	}
	if (l.procs == 1)
		return 0;
	fprintf(stderr, "ferry run: %s: the job asks for %d node%s and %d process%s in all: run "
		"it with --engine slurm (srun, in or outside an allocation) or --engine mpi "
		"[--hostfile FILE] (mpirun)\n", job->source, l.nodes, l.nodes == 1 ? "" : "s",
		l.procs, l.procs == 1 ? "" : "es");
	return -EINVAL;
}

/* Parses the job and makes what a run needs before it touches the network. Returns 1
 * for a task without a process. */
static int run_init(struct run *r, const struct run_opts *opts, struct job **job,
		    struct task *task)
{
	struct sigaction sa = { .sa_handler = run_on_signal };
	struct sigaction sa_child = { .sa_handler = run_on_signal,
				      .sa_flags = SA_RESTART | SA_NOCLDSTOP };
	char errbuf[1024], logs[RUN_ID_MAX + 32];
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int err = job_parse_file(opts->job_path, job, errbuf, sizeof(errbuf));

	if (err) {
		fprintf(stderr, "ferry run: %s\n", errbuf);
		return err;
	}
	r->job = *job;
	memcpy(r->std_name, "std_log.txt", sizeof("std_log.txt"));
	memcpy(r->stdout_name, "stdout.txt", sizeof("stdout.txt"));
	memcpy(r->stderr_name, "stderr.txt", sizeof("stderr.txt"));
	err = opts->task ? run_init_task(r, opts, task) : run_check_local(*job);
	if (err)
		return err;
	r->inputs = calloc((*job)->ninputs + 1, sizeof(*r->inputs));
	r->outputs = calloc((*job)->noutputs + 1, sizeof(*r->outputs));
	if (!r->inputs || !r->outputs || stores_new(&r->stores) != 0 ||
	    (r->task ? 0 : opts->run_id ? run_copy(r->id, sizeof(r->id), opts->run_id)
					: record_new_id(r->id, sizeof(r->id))) != 0 ||
	    auth_cred_shared_key(AUTH_DEV_ACCOUNT, AUTH_DEV_KEY, &r->dev_cred) != 0 ||
	    (run_wake[0] < 0 && pipe2(run_wake, O_CLOEXEC | O_NONBLOCK) != 0)) {
		fprintf(stderr, "ferry run: out of memory\n");
		return -ENOMEM;
	}
	gethostname(r->node, sizeof(r->node) - 1);
	snprintf(r->prefix, sizeof(r->prefix), "azureml://datastores/%s/paths/runs/%s/",
		 DATASTORE_DEFAULT_NAME, r->id);
	if (r->task)
		snprintf(logs, sizeof(logs), "ferry-run-%s-node%d", r->id, r->task->proc.node);
	else
		snprintf(logs, sizeof(logs), "ferry-run-%s", r->id);
	if (util_path_join(r->workdir, sizeof(r->workdir), tmp, logs) != 0 ||
	    (!r->plan && mkdir(r->workdir, 0700) != 0) ||
	    mounts_new(r->workdir, &r->mounts) != 0) {
		fprintf(stderr, "ferry run: cannot create %s: %s\n", r->workdir, strerror(errno));
		return -EIO;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa_child, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed terminal does not stop the run */
	return 0;
}

int run_job(const struct run_opts *opts)
{
	struct run r;
	struct run_logs logs = { 0 };
	struct task task = { .conn.fd = -1 };
	struct job *job = NULL;
	char *command = NULL;
	int exit_status = RUN_EXIT_SETUP, err;

	if (opts->engine != RUN_ENGINE_LOCAL && !opts->task)
		return engine_run(opts);
	memset(&r, 0, sizeof(r));
	r.exit_code = -1;
	err = run_init(&r, opts, &job, &task);
	if (err == 0) {
		if (stores_open_home(r.stores, r.prefix, &r.home) == 0 &&
		    run_set_status(&r, RUN_QUEUED) == 0) {
			run_main(&r, &logs, &command);
			exit_status = run_end(&r);
		} else if (!r.plan && !getenv("FERRY_KEEP_RUN_DIR")) {
			run_remove_workdir(&r);
		}
	} else if (err == 1) {
		exit_status = 0; /* a slot without a process */
	}
	run_close_logs(&logs);
	for (size_t i = 0; r.outputs && i < job->noutputs; i++)
		free(r.outputs[i].owned);
	free(command);
	free(r.inputs);
	free(r.outputs);
	mounts_free(r.mounts);
	stores_free(r.stores);
	auth_cred_free(r.dev_cred);
	task_env_free(r.task_env);
	task_end(&task);
	job_free(job);
	return exit_status;
}
