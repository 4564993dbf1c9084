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
#include "auth/base/log.h"
#include "fs/mount.h"
#include "cache/store/url.h"
#include "cache/store/datastore.h"
#include "tools/launcher/job/jobfile.h"
#include "tools/launcher/record.h"
#include "tools/lib/transfer.h"

#define RUN_URI_MAX 4096
#define RUN_LOG_UPLOAD_SECONDS 10
#define RUN_KILL_GRACE_SECONDS 10
#define RUN_MAX_MOUNTS 64

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
	char mounts[RUN_MAX_MOUNTS][PATH_MAX];
	size_t nmounts;
	struct auth_cred *dev_cred; /* the emulator's well-known key, for its datastores */
	char std_log[PATH_MAX];    /* user_logs/std_log.txt in the workdir */
	char stdout_log[PATH_MAX]; /* Batch AI: stdout.txt and stderr.txt */
	char stderr_log[PATH_MAX];
};

static volatile sig_atomic_t run_interrupted;

/* snprintf without the compiler's truncation warnings: paths and URIs built here are
 * bounded by PATH_MAX and RUN_URI_MAX; one cut short fails later as a missing file,
 * and a message cut short is still a message. */
static int run_fmt(char *out, size_t outlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int run_fmt(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
	return n;
}

static void run_on_signal(int sig)
{
	run_interrupted = sig;
}

static int run_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records why the run failed (the first reason stands) and says it on stderr. */
static int run_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->error[0]) {
		va_start(ap, fmt);
		vsnprintf(r->error, sizeof(r->error), fmt, ap);
		va_end(ap);
	}
	fprintf(stderr, "ferry run: %s\n", r->error);
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

/* Writes bytes as the object at uri (a file path inside a datastore). */
static int run_put(const char *uri, const void *data, size_t len, char *errbuf, size_t errlen)
{
	struct datastore_handle *h;
	int err = datastore_open(uri, NULL, &h, errbuf, errlen);

	if (err)
		return err;
	err = store_put(datastore_store(h), datastore_path(h), data, len, NULL, NULL, NULL);
	if (err)
		run_fmt(errbuf, errlen, "cannot write %s: %s", uri, transfer_store_error(err));
	datastore_close(h);
	return err;
}

/* Copies the local folder or file src into uri. */
static int run_upload(const char *src, bool is_dir, const char *uri, char *errbuf,
		      size_t errlen)
{
	struct transfer_side from = { .path = src };
	struct transfer_side to = { .display = uri };
	struct transfer_opts topts;
	struct datastore_handle *h;
	int err = datastore_open(uri, NULL, &h, errbuf, errlen);

	if (err)
		return err;
	transfer_opts_default(&topts);
	to.store = datastore_store(h);
	to.path = datastore_path(h);
	err = transfer_copy(&from, is_dir, &to, &topts, NULL, errbuf, errlen);
	datastore_close(h);
	return err;
}

static void run_set_status(struct run *r, enum run_status status)
{
	char uri[RUN_URI_MAX], errbuf[512];
	size_t len = 0;
	char *json = NULL;

	r->status = status;
	r->times[status] = time(NULL);
	fprintf(stderr, "ferry run: %s: %s\n", r->id, run_status_names[status]);
	if (run_record_json(r, &json, &len) != 0)
		return;
	run_fmt(uri, sizeof(uri), "%srun.json", r->prefix);
	if (run_put(uri, json, len, errbuf, sizeof(errbuf)) != 0)
		fprintf(stderr, "ferry run: could not record the run's status: %s\n", errbuf);
	free(json);
}

/* Paths ----------------------------------------------------------------------------- */

static int run_mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int run_path(char *out, const char *dir, const char *name)
{
	if (run_fmt(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
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
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return -EIO;
	return 0;
}

/* The container URL (with path) ferry mount takes for a datastore target. */
static int run_target_url(const struct datastore_target *t, char *out, size_t outlen)
{
	char endpoint[512], encoded[3 * DATASTORE_PATH_MAX + 3 * 1024];
	int err = url_endpoint(&t->url, endpoint, sizeof(endpoint));
	size_t used;

	if (err)
		return err;
	used = (size_t)run_fmt(out, outlen, "%s/%s", endpoint, t->url.container);
	if (used >= outlen)
		return -ENAMETOOLONG;
	for (int part = 0; part < 2; part++) {
		const char *p = part ? t->path : t->url.prefix;

		if (!*p)
			continue;
		if (url_encode(p, true, encoded, sizeof(encoded)) < 0)
			return -ENAMETOOLONG;
		used += (size_t)run_fmt(out + used, outlen - used, "/%s", encoded);
		if (used >= outlen)
			return -ENAMETOOLONG;
	}
	return 0;
}

/* Mounts uri at mountpoint with ferry's mount code (a daemon of this binary). */
static int run_mount(struct run *r, const char *uri, const char *mountpoint, bool read_only,
		     const struct auth_cred *cred)
{
	struct datastore_target t;
	struct mount_options mo;
	char url[RUN_URI_MAX], errbuf[1024];
	int err;

	if (r->nmounts == RUN_MAX_MOUNTS)
		return run_fail(r, "more than %d mounts", RUN_MAX_MOUNTS);
	err = datastore_resolve(uri, &t, errbuf, sizeof(errbuf));
	if (!err)
		err = run_target_url(&t, url, sizeof(url));
	if (err)
		return run_fail(r, "%s: %s", uri, errbuf);
	mount_options_default(&mo);
	mo.url = url;
	mo.mountpoint = mountpoint;
	mo.read_only = read_only;
	mo.cred = cred;
	if (t.from_datastore) {
		char secret[PATH_MAX];

		if (datastore_secret_path(t.ds.name, secret, sizeof(secret)) != 0)
			return run_fail(r, "%s: no secret path", uri);
		if (t.ds.cred == DATASTORE_CRED_ACCOUNT_KEY)
			run_fmt(mo.account_key_file, sizeof(mo.account_key_file), "%s", secret);
		else if (t.ds.cred == DATASTORE_CRED_SAS)
			run_fmt(mo.sas_file, sizeof(mo.sas_file), "%s", secret);
		else if (t.ds.cred == DATASTORE_CRED_EMULATOR && !cred)
			mo.cred = r->dev_cred;
	}
	err = run_mkdirs(mountpoint);
	if (err)
		return run_fail(r, "cannot create %s: %s", mountpoint, strerror(-err));
	err = mount_run(&mo, errbuf, sizeof(errbuf));
	if (err)
		return run_fail(r, "cannot mount %s: %s", uri, errbuf);
	memcpy(r->mounts[r->nmounts++], mountpoint, strlen(mountpoint) + 1);
	return 0;
}

/* Unmounts every mount of the run; false if one stays. */
static bool run_unmount_all(struct run *r)
{
	char errbuf[512];
	bool all = true;

	while (r->nmounts > 0) {
		const char *mnt = r->mounts[--r->nmounts];

		if (mount_unmount(mnt, false, errbuf, sizeof(errbuf)) != 0 &&
		    mount_unmount(mnt, true, errbuf, sizeof(errbuf)) != 0) {
			fprintf(stderr, "ferry run: %s\n", errbuf);
			all = false;
		}
	}
	return all;
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
	char joined[PATH_MAX];

	if (path[0] == '/' || !slash)
		run_fmt(joined, sizeof(joined), "%s", path);
	else
		run_fmt(joined, sizeof(joined), "%.*s/%s", (int)(slash - r->job->source),
			r->job->source, path);
	return realpath(joined, out) ? 0 : -errno;
}

static bool run_is_uri(const char *path)
{
	return datastore_is_uri(path) == 1;
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

/* Downloads uri (a folder, or a file when is_file) to the local path dst. */
static int run_download(const char *uri, bool is_file, const char *dst, char *errbuf,
			size_t errlen)
{
	struct transfer_side from = { .display = uri };
	struct transfer_side to = { .path = dst };
	struct transfer_opts topts;
	struct datastore_handle *h;
	int err = datastore_open(uri, NULL, &h, errbuf, errlen);

	if (err)
		return err;
	if (datastore_kind(h) == DATASTORE_MISSING) {
		run_fmt(errbuf, errlen, "%s: nothing there", uri);
		datastore_close(h);
		return -ENOENT;
	}
	transfer_opts_default(&topts);
	from.store = datastore_store(h);
	from.path = datastore_path(h);
	err = transfer_copy(&from, !is_file && datastore_kind(h) == DATASTORE_DIR, &to, &topts,
			    NULL, errbuf, errlen);
	datastore_close(h);
	return err;
}

/* Checks that uri answers and (for datastores that want it) has its container. */
static int run_check_uri(struct run *r, const char *what, const char *uri)
{
	struct datastore_handle *h;
	char errbuf[1024];
	int err = datastore_open(uri, NULL, &h, errbuf, sizeof(errbuf));

	if (err)
		return run_fail(r, "%s: %s", what, errbuf);
	datastore_close(h);
	return 0;
}

static int run_prepare_input(struct run *r, size_t i)
{
	const struct job_input *in = &r->job->inputs[i];
	struct run_data *d = &r->inputs[i];
	char dir[PATH_MAX], what[JOB_NAME_MAX + 64], errbuf[1024];
	bool is_file = in->type == JOB_URI_FILE;
	int err;

	d->name = in->name;
	d->mode = in->type == JOB_LITERAL ? "literal" : job_input_mode_name(in->mode);
	d->uri = in->path;
	run_fmt(what, sizeof(what), "%s:%u: inputs.%s", r->job->source, in->line, in->name);
	if (in->type == JOB_LITERAL) {
		run_fmt(d->local, sizeof(d->local), "%s", in->value);
		return 0;
	}
	if (!run_is_uri(in->path)) {
		/* A local path is used where it is. */
		err = run_job_path(r, in->path, d->local);
		if (err)
			return run_fail(r, "%s: %s: %s", what, in->path, strerror(-err));
		return 0;
	}
	if (in->mode == JOB_DIRECT) {
		run_fmt(d->local, sizeof(d->local), "%s", in->path);
		return run_check_uri(r, what, in->path);
	}
	if (run_fmt(dir, sizeof(dir), "%s/inputs/%s", r->workdir, in->name) >= (int)sizeof(dir))
		return run_fail(r, "%s: path too long", what);
	if (in->mode == JOB_DOWNLOAD) {
		err = run_mkdirs(dir);
		if (!err && is_file && run_fmt(d->local, sizeof(d->local), "%s/%s", dir,
						run_basename(in->path)) >= (int)sizeof(d->local))
			err = -ENAMETOOLONG;
		else if (!err && !is_file)
			run_fmt(d->local, sizeof(d->local), "%s", dir);
		if (err)
			return run_fail(r, "%s: %s", what, strerror(-err));
		err = run_download(in->path, is_file, d->local, errbuf, sizeof(errbuf));
		if (err)
			return run_fail(r, "%s: download of %s failed: %s", what, in->path, errbuf);
		return 0;
	}
	/* ro_mount: a folder is mounted where the command looks; a file by its folder. */
	err = run_check_uri(r, what, in->path);
	if (err)
		return err;
	if (is_file) {
		char parent[RUN_URI_MAX];
		const char *base = run_basename(in->path);
		size_t plen = (size_t)(base - in->path);

		if (plen >= sizeof(parent))
			return run_fail(r, "%s: path too long", what);
		memcpy(parent, in->path, plen);
		parent[plen] = '\0';
		err = run_mount(r, parent, dir, true, NULL);
		if (!err)
			run_path(d->local, dir, base);
		return err;
	}
	run_fmt(d->local, sizeof(d->local), "%s", dir);
	return run_mount(r, in->path, dir, true, NULL);
}

static int run_prepare_output(struct run *r, size_t i)
{
	const struct job_output *out = &r->job->outputs[i];
	struct run_data *d = &r->outputs[i];
	char what[JOB_NAME_MAX + 64], *uri;
	int err;

	d->name = out->name;
	d->mode = job_output_mode_name(out->mode);
	run_fmt(what, sizeof(what), "%s:%u: outputs.%s", r->job->source, out->line, out->name);
	if (out->path) {
		uri = strdup(out->path);
	} else {
		size_t len = strlen(r->prefix) + strlen(out->name) + 16;

		uri = malloc(len);
		if (uri)
			run_fmt(uri, len, "%soutputs/%s/", r->prefix, out->name);
	}
	if (!uri)
		return run_fail(r, "%s: out of memory", what);
	d->uri = d->owned = uri;
	if (!run_is_uri(uri))
		return run_fail(r, "%s: path '%s' is not a datastore URI (azureml://... or a "
				   "container URL)", what, uri);
	if (run_fmt(d->local, sizeof(d->local), "%s/named-outputs/%s", r->workdir,
		     out->name) >= (int)sizeof(d->local))
		return run_fail(r, "%s: path too long", what);
	err = run_check_uri(r, what, uri);
	if (err)
		return err;
	if (out->mode == JOB_RW_MOUNT)
		return run_mount(r, uri, d->local, false, NULL);
	err = run_mkdirs(d->local);
	if (err)
		return run_fail(r, "%s: cannot create %s: %s", what, d->local, strerror(-err));
	return 0;
}

/* Batch AI: $AZ_BATCHAI_JOB_MOUNT_ROOT and $AZ_BATCHAI_MOUNT_ROOT (both the job's mount
 * root here) expanded at the start of a path. */
static int run_batchai_path(const struct run *r, const char *in, char *out, size_t outlen)
{
	static const char *const roots[] = { "$AZ_BATCHAI_JOB_MOUNT_ROOT",
					     "${AZ_BATCHAI_JOB_MOUNT_ROOT}",
					     "$AZ_BATCHAI_MOUNT_ROOT", "${AZ_BATCHAI_MOUNT_ROOT}" };

	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		size_t len = strlen(roots[i]);

		if (strncmp(in, roots[i], len) == 0 && (in[len] == '/' || !in[len]))
			return run_fmt(out, outlen, "%s/mounts%s", r->workdir, in + len) >=
					       (int)outlen
				       ? -ENAMETOOLONG
				       : 0;
	}
	return run_fmt(out, outlen, "%s", in) >= (int)outlen ? -ENAMETOOLONG : 0;
}

/* AZ_BATCHAI_OUTPUT_<ID>: <pathPrefix>/<run id>/outputs[/<pathSuffix>], as Batch AI
 * put each job's outputs in a folder of its own under the prefix. */
static int run_batchai_output(const struct run *r, const struct job_batchai_output *o,
			      char out[PATH_MAX])
{
	char prefix[PATH_MAX];
	int err = run_batchai_path(r, o->path_prefix, prefix, sizeof(prefix));

	if (err)
		return err;
	if (run_fmt(out, PATH_MAX, "%s/%s/outputs%s%s", prefix, r->id,
		     o->path_suffix ? "/" : "", o->path_suffix ? o->path_suffix : "") >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
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

static int run_prepare_batchai(struct run *r)
{
	const struct job_batchai *b = &r->job->batchai;
	char path[PATH_MAX], errbuf[512];
	int err;

	for (size_t i = 0; i < b->nmounts; i++) {
		const struct job_mount *m = &b->mounts[i];
		struct run_account_find find = { .account = m->account_name };
		struct auth_cred *cred = NULL;
		char uri[RUN_URI_MAX];

		if (m->kind != JOB_MOUNT_BLOB)
			return run_fail(r, "%s:%u: mountVolumes.azureFileShares: Azure Files "
					   "mounts are not supported yet", r->job->source, m->line);
		datastore_foreach(run_account_each, &find, errbuf, sizeof(errbuf));
		if (find.have)
			run_fmt(uri, sizeof(uri), "%s/%s", find.found.endpoint, m->container_name);
		else
			run_fmt(uri, sizeof(uri), "https://%s.blob.core.windows.net/%s",
				 m->account_name, m->container_name);
		if (m->account_key &&
		    auth_cred_shared_key(m->account_name, m->account_key, &cred) != 0)
			return run_fail(r, "%s:%u: mountVolumes: the account key of '%s' is not "
					   "base64", r->job->source, m->line, m->account_name);
		if (run_path(path, r->workdir, "mounts") != 0 ||
		    run_fmt(path + strlen(path), sizeof(path) - strlen(path), "/%s",
			     m->relative_mount_path) >= (int)(sizeof(path) - strlen(path))) {
			auth_cred_free(cred);
			return run_fail(r, "mount path too long");
		}
		/* The daemon keeps its own copy of the credential (fork). */
		err = run_mount(r, uri, path, false, cred);
		auth_cred_free(cred);
		if (err)
			return err;
	}
	for (size_t i = 0; i < b->noutputs; i++) {
		const struct job_batchai_output *o = &b->outputs[i];

		err = run_batchai_output(r, o, path);
		if (!err)
			err = run_mkdirs(path);
		if (err)
			return run_fail(r, "%s:%u: outputDirectories.%s: %s", r->job->source,
					o->line, o->id, strerror(-err));
	}
	if (b->std_out_err_path_prefix) {
		char dir[PATH_MAX];

		err = run_batchai_path(r, b->std_out_err_path_prefix, path, sizeof(path));
		if (!err && run_fmt(dir, sizeof(dir), "%s/%s/stdouterr", path, r->id) >=
				    (int)sizeof(dir))
			err = -ENAMETOOLONG;
		if (!err)
			err = run_mkdirs(dir);
		if (err)
			return run_fail(r, "stdOutErrPathPrefix: %s", strerror(-err));
		run_path(r->stdout_log, dir, "stdout.txt");
		run_path(r->stderr_log, dir, "stderr.txt");
	}
	return 0;
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

/* In the child, before exec: the job's environment. */
static void run_child_env(const struct run *r)
{
	const struct job *job = r->job;
	char name[JOB_NAME_MAX + 32], value[PATH_MAX], rank[32];

	setenv("AZUREML_RUN_ID", r->id, 1);
	setenv("AZUREML_EXPERIMENT_NAME", job->experiment_name ? job->experiment_name : "Default",
	       1);
	for (size_t i = 0; i < job->nenv; i++)
		setenv(job->env[i].name, job->env[i].value, 1);
	if (job->kind != JOB_BATCHAI)
		return;
	run_fmt(value, sizeof(value), "%s/mounts", r->workdir);
	setenv("AZ_BATCHAI_JOB_MOUNT_ROOT", value, 1);
	setenv("AZ_BATCHAI_MOUNT_ROOT", value, 1);
	run_fmt(value, sizeof(value), "%s/temp", r->workdir);
	setenv("AZ_BATCHAI_JOB_TEMP", value, 1);
	run_fmt(rank, sizeof(rank), "%ld", run_rank());
	setenv("AZ_BATCHAI_TASK_INDEX", rank, 1);
	setenv("AZ_BATCHAI_JOB_NAME", job->name ? job->name : r->id, 1);
	if (r->stdout_log[0]) {
		run_fmt(value, sizeof(value), "%.*s", (int)(strrchr(r->stdout_log, '/') - r->stdout_log),
			 r->stdout_log);
		setenv("AZ_BATCHAI_STDOUTERR_DIR", value, 1);
	}
	for (size_t i = 0; i < job->batchai.ninputs; i++) {
		run_fmt(name, sizeof(name), "AZ_BATCHAI_INPUT_%s", job->batchai.inputs[i].id);
		if (run_batchai_path(r, job->batchai.inputs[i].path, value, sizeof(value)) == 0)
			setenv(name, value, 1);
	}
	for (size_t i = 0; i < job->batchai.noutputs; i++) {
		run_fmt(name, sizeof(name), "AZ_BATCHAI_OUTPUT_%s", job->batchai.outputs[i].id);
		if (run_batchai_output(r, &job->batchai.outputs[i], value) == 0)
			setenv(name, value, 1);
	}
}

struct run_logs {
	FILE *merged, *out, *err; /* out and err: Batch AI's stdout.txt / stderr.txt */
	int64_t last_upload; /* run_now_ms() */
};

static void run_upload_logs(struct run *r)
{
	char uri[RUN_URI_MAX], errbuf[512];

	run_fmt(uri, sizeof(uri), "%suser_logs/std_log.txt", r->prefix);
	if (run_upload(r->std_log, false, uri, errbuf, sizeof(errbuf)) != 0)
		fprintf(stderr, "ferry run: could not upload the log: %s\n", errbuf);
	if (!r->stdout_log[0])
		return;
	run_fmt(uri, sizeof(uri), "%suser_logs/stdout.txt", r->prefix);
	if (run_upload(r->stdout_log, false, uri, errbuf, sizeof(errbuf)) != 0)
		fprintf(stderr, "ferry run: could not upload stdout.txt: %s\n", errbuf);
	run_fmt(uri, sizeof(uri), "%suser_logs/stderr.txt", r->prefix);
	if (run_upload(r->stderr_log, false, uri, errbuf, sizeof(errbuf)) != 0)
		fprintf(stderr, "ferry run: could not upload stderr.txt: %s\n", errbuf);
}

/* Passes what the command wrote on one of its streams to the terminal and the logs.
 * Returns false at end of stream. */
static bool run_pump(int fd, int terminal, FILE *merged, FILE *own)
{
	char buf[65536];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		return false;
	for (ssize_t done = 0; done < n;) {
		ssize_t w = write(terminal, buf + done, (size_t)(n - done));

		if (w <= 0)
			break; /* a closed terminal does not stop the run */
		done += w;
	}
	fwrite(buf, 1, (size_t)n, merged);
	fflush(merged);
	if (own) {
		fwrite(buf, 1, (size_t)n, own);
		fflush(own);
	}
	return true;
}

/* Runs cmd with sh -c in the workdir, streaming and capturing its output, within the
 * job's time limit. Returns its exit status (128 + signal when killed); sets the run's
 * error for a timeout or an interrupt. */
static int64_t run_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int run_exec(struct run *r, const char *cmd, struct run_logs *logs, bool upload_logs)
{
	int out_pipe[2], err_pipe[2], status = 0;
	int64_t start = run_now_ms(), kill_at = 0;
	bool out_open = true, err_open = true, killed = false;
	char code_dir[PATH_MAX];
	pid_t pid;

	if (pipe2(out_pipe, O_CLOEXEC) != 0) {
		run_fail(r, "pipe: %s", strerror(errno));
		return 127;
	}
	if (pipe2(err_pipe, O_CLOEXEC) != 0) {
		run_fail(r, "pipe: %s", strerror(errno));
		close(out_pipe[0]);
		close(out_pipe[1]);
		return 127;
	}
	run_path(code_dir, r->workdir, "code");
	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		if (chdir(code_dir) != 0 && chdir(r->workdir) != 0)
			_exit(127);
		run_child_env(r);
		dup2(out_pipe[1], STDOUT_FILENO);
		dup2(err_pipe[1], STDERR_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(out_pipe[1]);
	close(err_pipe[1]);
	if (pid < 0) {
		run_fail(r, "fork: %s", strerror(errno));
		close(out_pipe[0]);
		close(err_pipe[0]);
		return 127;
	}
	setpgid(pid, pid);
	while (out_open || err_open) {
		struct pollfd fds[2] = { { .fd = out_open ? out_pipe[0] : -1, .events = POLLIN },
					 { .fd = err_open ? err_pipe[0] : -1, .events = POLLIN } };
		int64_t now;

		if (poll(fds, 2, 200) > 0) {
			if (fds[0].revents && !run_pump(out_pipe[0], STDOUT_FILENO, logs->merged,
							  logs->out))
				out_open = false;
			if (fds[1].revents && !run_pump(err_pipe[0], STDERR_FILENO, logs->merged,
							  logs->err))
				err_open = false;
		}
		now = run_now_ms();
		if (!killed && run_interrupted) {
			run_fail(r, "interrupted (signal %d): the command was stopped",
				 (int)run_interrupted);
			killed = true;
		} else if (!killed && r->job->timeout > 0 && now - start >= r->job->timeout * 1000) {
			run_fail(r, "the command ran past limits.timeout (%lld s) and was stopped",
				 (long long)r->job->timeout);
			killed = true;
		}
		if (killed && !kill_at) {
			kill(-pid, SIGTERM);
			kill_at = now + RUN_KILL_GRACE_SECONDS * 1000;
		} else if (kill_at && now >= kill_at) {
			kill(-pid, SIGKILL);
		}
		if (upload_logs && now - logs->last_upload >= RUN_LOG_UPLOAD_SECONDS * 1000) {
			logs->last_upload = now;
			run_upload_logs(r);
		}
	}
	close(out_pipe[0]);
	close(err_pipe[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (killed)
		kill(-pid, SIGKILL); /* whatever of its group is left */
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* Finalizing ------------------------------------------------------------------------ */

/* Uploads what the run leaves: named outputs in upload mode, ./outputs and ./logs of
 * the working directory as artifacts, and the logs. Each failure is reported and makes
 * the run Failed; the rest is still uploaded. */
static void run_finalize(struct run *r)
{
	static const char *const artifact_dirs[] = { "outputs", "logs" };
	char local[PATH_MAX], uri[RUN_URI_MAX], errbuf[1024];
	struct stat st;

	for (size_t i = 0; i < r->job->noutputs; i++) {
		const struct run_data *d = &r->outputs[i];

		if (r->job->outputs[i].mode != JOB_UPLOAD || !d->uri)
			continue;
		if (run_upload(d->local, true, d->uri, errbuf, sizeof(errbuf)) != 0)
			run_fail(r, "upload of output '%s' to %s failed: %s", d->name, d->uri,
				 errbuf);
	}
	for (size_t i = 0; i < sizeof(artifact_dirs) / sizeof(artifact_dirs[0]); i++) {
		run_fmt(local, sizeof(local), "%s/code/%s", r->workdir, artifact_dirs[i]);
		if (stat(local, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		run_fmt(uri, sizeof(uri), "%sartifacts/%s/", r->prefix, artifact_dirs[i]);
		if (run_upload(local, true, uri, errbuf, sizeof(errbuf)) != 0)
			run_fail(r, "upload of ./%s failed: %s", artifact_dirs[i], errbuf);
	}
	run_upload_logs(r);
}

static int run_new_id(char *out, size_t outlen)
{
	unsigned char random[4];
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	FILE *f = fopen("/dev/urandom", "re");

	if (!f || fread(random, 1, sizeof(random), f) != sizeof(random)) {
		if (f)
			fclose(f);
		return -EIO;
	}
	fclose(f);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", &tm);
	run_fmt(out, outlen, "run_%s_%02x%02x%02x%02x", stamp, random[0], random[1], random[2],
		 random[3]);
	return 0;
}

static int run_setup(struct run *r, struct run_logs *logs)
{
	const struct job *job = r->job;
	char path[PATH_MAX], dir[PATH_MAX];
	int err;

	if (job->code) {
		char code[PATH_MAX];
		struct stat st;

		if (run_job_path(r, job->code, code) != 0 || stat(code, &st) != 0 ||
		    !S_ISDIR(st.st_mode))
			return run_fail(r, "%s: code: '%s' is not a folder", job->source, job->code);
		run_path(dir, r->workdir, "code");
		/* cp -a SRC/. DST copies the folder's contents. */
		run_path(path, code, ".");
		if (run_mkdirs(dir) != 0 || run_copy_tree(path, dir) != 0)
			return run_fail(r, "cannot copy the code folder %s", code);
	} else {
		run_path(dir, r->workdir, "code");
		if (run_mkdirs(dir) != 0)
			return run_fail(r, "cannot create %s", dir);
	}
	run_path(dir, r->workdir, "user_logs");
	run_path(path, r->workdir, "temp");
	if (run_mkdirs(dir) != 0 || run_mkdirs(path) != 0)
		return run_fail(r, "cannot create %s", dir);
	run_path(r->std_log, dir, "std_log.txt");
	logs->merged = fopen(r->std_log, "we");
	if (!logs->merged)
		return run_fail(r, "cannot create %s: %s", r->std_log, strerror(errno));

	for (size_t i = 0; i < job->ninputs; i++) {
		err = run_prepare_input(r, i);
		if (err)
			return err;
	}
	for (size_t i = 0; i < job->noutputs; i++) {
		err = run_prepare_output(r, i);
		if (err)
			return err;
	}
	if (job->kind == JOB_BATCHAI) {
		err = run_prepare_batchai(r);
		if (err)
			return err;
		if (!r->stdout_log[0]) {
			run_path(r->stdout_log, dir, "stdout.txt");
			run_path(r->stderr_log, dir, "stderr.txt");
		}
		logs->out = fopen(r->stdout_log, "we");
		logs->err = fopen(r->stderr_log, "we");
		if (!logs->out || !logs->err)
			return run_fail(r, "cannot create %s", r->stdout_log);
		if (job->batchai.job_preparation) {
			int status = run_exec(r, job->batchai.job_preparation, logs, false);

			if (status != 0)
				return run_fail(r, "jobPreparation.commandLine exited with status %d",
						status);
		}
	}
	return 0;
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
	err = job_substitute(job, &values, job->command, out, errbuf, sizeof(errbuf));
	free(ins);
	free(outs);
	if (err)
		return run_fail(r, "%s: command: %s", job->source, errbuf);
	return 0;
}

int run_job(const struct run_opts *opts)
{
	struct run r;
	struct run_logs logs = { 0 };
	struct sigaction sa = { .sa_handler = run_on_signal };
	struct job *job = NULL;
	char errbuf[1024], *command = NULL;
	int exit_status = RUN_EXIT_SETUP, err;

	memset(&r, 0, sizeof(r));
	r.exit_code = -1;
	err = job_parse_file(opts->job_path, &job, errbuf, sizeof(errbuf));
	if (err) {
		fprintf(stderr, "ferry run: %s\n", errbuf);
		return RUN_EXIT_SETUP;
	}
	r.job = job;
	r.inputs = calloc(job->ninputs + 1, sizeof(*r.inputs));
	r.outputs = calloc(job->noutputs + 1, sizeof(*r.outputs));
	if (!r.inputs || !r.outputs || (opts->run_id ? run_fmt(r.id, sizeof(r.id), "%s",
								  opts->run_id) < 0
						     : run_new_id(r.id, sizeof(r.id)) != 0) ||
	    auth_cred_shared_key(AUTH_DEV_ACCOUNT, AUTH_DEV_KEY, &r.dev_cred) != 0) {
		fprintf(stderr, "ferry run: out of memory\n");
		goto out_free;
	}
	gethostname(r.node, sizeof(r.node) - 1);
	run_fmt(r.prefix, sizeof(r.prefix), "azureml://datastores/%s/paths/runs/%s/",
		 DATASTORE_DEFAULT_NAME, r.id);
	run_fmt(r.workdir, sizeof(r.workdir), "%s/ferry-run-%s",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", r.id);
	if (mkdir(r.workdir, 0700) != 0) {
		fprintf(stderr, "ferry run: cannot create %s: %s\n", r.workdir, strerror(errno));
		goto out_free;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	run_set_status(&r, RUN_QUEUED);
	if (r.error[0]) /* the record could not be written: nothing else will be */
		goto out_unmount;
	run_set_status(&r, RUN_PREPARING);
	err = run_setup(&r, &logs);
	if (!err)
		err = run_command(&r, &command);
	if (!err && run_interrupted)
		err = run_fail(&r, "interrupted (signal %d) while preparing", (int)run_interrupted);
	if (!err) {
		run_set_status(&r, RUN_RUNNING);
		r.exit_code = run_exec(&r, command, &logs, true);
		exit_status = r.exit_code;
	}
	if (logs.merged)
		fflush(logs.merged);
	run_set_status(&r, RUN_FINALIZING);
	if (logs.merged)
		run_finalize(&r);
out_unmount:
	if (run_unmount_all(&r) && !getenv("FERRY_KEEP_RUN_DIR"))
		run_remove_workdir(&r);
	if (r.status == RUN_FINALIZING) {
		if (run_interrupted)
			run_set_status(&r, RUN_CANCELED);
		else if (r.error[0] || r.exit_code != 0)
			run_set_status(&r, RUN_FAILED);
		else
			run_set_status(&r, RUN_COMPLETED);
	}
	if (r.exit_code == 0 && r.error[0])
		exit_status = RUN_EXIT_FAILED; /* the command succeeded, its outputs did not land */
	else if (r.exit_code < 0)
		exit_status = RUN_EXIT_SETUP;
out_free:
	if (logs.merged)
		fclose(logs.merged);
	if (logs.out)
		fclose(logs.out);
	if (logs.err)
		fclose(logs.err);
	for (size_t i = 0; r.outputs && i < job->noutputs; i++)
		free(r.outputs[i].owned);
	free(command);
	free(r.inputs);
	free(r.outputs);
	auth_cred_free(r.dev_cred);
	job_free(job);
	return exit_status;
}
