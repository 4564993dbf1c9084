#include "tools/launcher/jobs.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/base/util.h"
#include "cache/store/datastore.h"
#include "tools/lib/transfer.h"

#define JOBS_ROOT "azureml://datastores/" DATASTORE_DEFAULT_NAME "/paths/"
#define JOBS_FOLLOW_SECONDS 2
#define JOBS_LOG_CHUNK (1024 * 1024)

struct jobs {
	struct datastore_handle *handle;
	struct datastore_target home; /* where the handle's store is rooted */
};

int jobs_open(struct jobs **out, char *errbuf, size_t errlen)
{
	struct jobs *jobs = calloc(1, sizeof(*jobs));
	int err;

	if (!jobs)
		return -ENOMEM;
	err = datastore_resolve(JOBS_ROOT, &jobs->home, errbuf, errlen);
	if (!err)
		err = datastore_open(JOBS_ROOT, NULL, &jobs->handle, errbuf, errlen);
	if (err) {
		free(jobs);
		return err;
	}
	*out = jobs;
	return 0;
}

void jobs_close(struct jobs *jobs)
{
	if (!jobs)
		return;
	datastore_close(jobs->handle);
	free(jobs);
}

static struct store *jobs_store(const struct jobs *jobs)
{
	return datastore_store(jobs->handle);
}

/* Reads at most max bytes of the object at path from offset on into a new
 * NUL-terminated *out; *size is the object's size. */
static int jobs_read(struct jobs *jobs, const char *path, uint64_t offset, size_t max,
		     char **out, size_t *len, uint64_t *size)
{
	struct store_attr attr;
	size_t want;
	ssize_t n;
	int err = store_stat(jobs_store(jobs), path, &attr);

	if (err)
		return err;
	if (attr.is_dir)
		return -ENOENT;
	*size = attr.size;
	want = attr.size > offset ? (size_t)(attr.size - offset) : 0;
	want = want > max ? max : want;
	*out = malloc(want + 1);
	if (!*out)
		return -ENOMEM;
	n = want ? store_read(jobs_store(jobs), path, NULL, offset, want, *out) : 0;
	if (n < 0) {
		free(*out);
		*out = NULL;
		return (int)n;
	}
	(*out)[n] = '\0';
	*len = (size_t)n;
	return 0;
}

/* Reads and checks the record of run id. check_outputs: output paths must lie in the
 * run's datastore (for downloads). */
static int jobs_read_record(struct jobs *jobs, const char *id, bool check_outputs,
			    struct run_record *rec, char *errbuf, size_t errlen)
{
	struct record_home home = { .store = check_outputs ? &jobs->home.url : NULL, .id = id };
	char path[RECORD_ID_MAX + 32], why[1024], *text = NULL;
	size_t len = 0;
	uint64_t size = 0;
	int err;

	if (!record_id_valid(id)) {
		util_errf(errbuf, errlen, "'%.64s' is not a run id", id);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "runs/%s/run.json", id);
	err = jobs_read(jobs, path, 0, RECORD_TEXT_MAX, &text, &len, &size);
	if (err == -ENOENT)
		util_errf(errbuf, errlen, "run %s: no record %s in datastore %s (ferry job list "
			  "shows the runs there)", id, path, DATASTORE_DEFAULT_NAME);
	else if (err)
		util_errf(errbuf, errlen, "run %s: cannot read %s: %s", id, path,
			  transfer_store_error(err));
	else if (size > RECORD_TEXT_MAX)
		util_errf(why, sizeof(why), "larger than %d bytes", RECORD_TEXT_MAX);
	else
		err = record_from_json(text, len, &home, rec, why, sizeof(why));
	free(text);
	if (err == -ENOMEM)
		util_errf(errbuf, errlen, "out of memory");
	if (err == -EINVAL || (!err && size > RECORD_TEXT_MAX)) {
		util_errf(errbuf, errlen, "run %s: its record %s is damaged (%s); ferry run did "
			  "not write it so: check who can write to datastore %s", id, path, why,
			  DATASTORE_DEFAULT_NAME);
		return -EINVAL;
	}
	return err;
}

int jobs_show(struct jobs *jobs, const char *id, FILE *out, char *errbuf, size_t errlen)
{
	struct run_record rec;
	char *json = NULL;
	size_t len = 0;
	int err = jobs_read_record(jobs, id, false, &rec, errbuf, errlen);

	if (err)
		return err;
	err = record_to_json(&rec, &json, &len);
	record_free(&rec);
	if (err) {
		util_errf(errbuf, errlen, "out of memory");
		return err;
	}
	fwrite(json, 1, len, out);
	fputc('\n', out);
	free(json);
	return 0;
}

/* Writes what the log has past *printed to out. A log not there yet is no error. */
static int jobs_log_tail(struct jobs *jobs, const char *id, const char *name, size_t *printed,
			 FILE *out, char *errbuf, size_t errlen)
{
	char path[RECORD_ID_MAX + 64];
	uint64_t size = 0;

	snprintf(path, sizeof(path), "runs/%s/user_logs/%s", id, name);
	do {
		char *text = NULL;
		size_t len = 0;
		int err = jobs_read(jobs, path, *printed, JOBS_LOG_CHUNK, &text, &len, &size);

		if (err == -ENOENT)
			return 0;
		if (err) {
			util_errf(errbuf, errlen, "run %s: cannot read %s: %s", id, path,
				  transfer_store_error(err));
			return err;
		}
		fwrite(text, 1, len, out);
		free(text);
		*printed += len;
		if (!len)
			break;
	} while (*printed < size);
	return fflush(out) == 0 ? 0 : -EIO;
}

/* The log of rank (-1: the first) of a run: std_log.txt for a run of one process,
 * std_log_process_<rank>.txt for a run on many. */
static int jobs_log_name(const struct run_record *rec, long rank, char *out, size_t outlen,
			 char *errbuf, size_t errlen)
{
	if (rank >= (long)(rec->nprocs ? rec->nprocs : 1)) {
		util_errf(errbuf, errlen, "run %s has no rank %ld (its ranks: 0 to %zu)", rec->id,
			  rank, rec->nprocs ? rec->nprocs - 1 : 0);
		return -ENOENT;
	}
	if (rec->nprocs)
		snprintf(out, outlen, "std_log_process_%ld.txt", rank < 0 ? 0 : rank);
	else
		snprintf(out, outlen, "std_log.txt");
	return 0;
}

int jobs_logs(struct jobs *jobs, const char *id, long rank, bool follow, FILE *out,
	      enum record_status *status, char *errbuf, size_t errlen)
{
	size_t printed = 0;
	char name[64];

	for (;;) {
		struct run_record rec;
		/* The status first: a log read after a final status is complete. */
		int err = jobs_read_record(jobs, id, false, &rec, errbuf, errlen);

		if (err)
			return err;
		*status = rec.status;
		err = jobs_log_name(&rec, rank, name, sizeof(name), errbuf, errlen);
		record_free(&rec);
		if (!err)
			err = jobs_log_tail(jobs, id, name, &printed, out, errbuf, errlen);
		if (err || !follow || record_status_final(*status))
			return err;
		sleep(JOBS_FOLLOW_SECONDS);
	}
}

/* List ------------------------------------------------------------------------------ */

/* Newest first; the id breaks ties. */
static int jobs_by_time(const void *a, const void *b)
{
	const struct run_record *x = a, *y = b;

	if (x->times[RECORD_QUEUED] != y->times[RECORD_QUEUED])
		return x->times[RECORD_QUEUED] < y->times[RECORD_QUEUED] ? 1 : -1;
	return -strcmp(x->id, y->id);
}

/* "7s", "1m05s", "2h03m"; "-" while the run has not ended. */
static void jobs_duration(const struct run_record *rec, char *out, size_t outlen)
{
	long long s = (long long)(rec->times[rec->status] - rec->times[RECORD_QUEUED]);

	if (!record_status_final(rec->status))
		snprintf(out, outlen, "-");
	else if (s < 60)
		snprintf(out, outlen, "%llds", s);
	else if (s < 3600)
		snprintf(out, outlen, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(out, outlen, "%lldh%02lldm", s / 3600, s / 60 % 60);
}

static void jobs_print_row(const struct run_record *rec, FILE *out)
{
	char created[32], exit_code[16], duration[32];
	struct tm tm;

	gmtime_r(&rec->times[RECORD_QUEUED], &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (rec->exit_code < 0)
		snprintf(exit_code, sizeof(exit_code), "-");
	else
		snprintf(exit_code, sizeof(exit_code), "%d", rec->exit_code);
	jobs_duration(rec, duration, sizeof(duration));
	fprintf(out, "%-36s %-20s %-11s %-4s %-20s %-8s %s\n", rec->id, rec->experiment_name,
		record_status_name(rec->status), exit_code, created, duration, rec->display_name);
}

/* Reads the records of the run folders in entries into recs; the ones that cannot be
 * read are named on warn. */
static int jobs_read_all(struct jobs *jobs, const struct datastore_entry *entries,
			 size_t count, const char *experiment, struct run_record *recs,
			 size_t *nrecs, FILE *warn)
{
	int failed = 0;

	for (size_t i = 0; i < count; i++) {
		char errbuf[1024];
		struct run_record *rec = &recs[*nrecs];

		if (!entries[i].attr.is_dir)
			continue;
		if (!record_id_valid(entries[i].name)) {
			/* not named: the name may hold anything, escapes included */
			fprintf(warn, "ferry job list: left out a folder under runs/ whose name is "
				"not a run id (letters, digits, '_', '-' and '.')\n");
			failed = -EINVAL;
		} else if (jobs_read_record(jobs, entries[i].name, false, rec, errbuf,
					    sizeof(errbuf))) {
			fprintf(warn, "ferry job list: %s\n", errbuf);
			failed = -EINVAL;
		} else if (experiment && strcmp(experiment, rec->experiment_name) != 0) {
			record_free(rec);
		} else {
			(*nrecs)++;
		}
	}
	return failed;
}

int jobs_list(struct jobs *jobs, const char *experiment, FILE *out, FILE *warn)
{
	struct datastore_entry *entries = NULL;
	struct run_record *recs;
	size_t count = 0, nrecs = 0;
	int err = datastore_list(jobs_store(jobs), "runs", &entries, &count);

	if (err == -ENOENT)
		count = 0;
	else if (err) {
		fprintf(warn, "ferry job list: cannot list runs/ in datastore %s: %s\n",
			DATASTORE_DEFAULT_NAME, transfer_store_error(err));
		return err;
	}
	recs = calloc(count + 1, sizeof(*recs));
	if (!recs) {
		datastore_entries_free(entries, count);
		return -ENOMEM;
	}
	err = jobs_read_all(jobs, entries, count, experiment, recs, &nrecs, warn);
	datastore_entries_free(entries, count);
	qsort(recs, nrecs, sizeof(*recs), jobs_by_time);
	fprintf(out, "%-36s %-20s %-11s %-4s %-20s %-8s %s\n", "RUN", "EXPERIMENT", "STATUS",
		"EXIT", "CREATED", "DURATION", "DISPLAY NAME");
	for (size_t i = 0; i < nrecs; i++) {
		jobs_print_row(&recs[i], out);
		record_free(&recs[i]);
	}
	free(recs);
	return err;
}

/* Download -------------------------------------------------------------------------- */

/* Copies path of the run's store (a folder, or a file when is_file) to local. */
static int jobs_fetch(struct jobs *jobs, const char *path, bool is_dir, const char *local,
		      char *errbuf, size_t errlen)
{
	struct transfer_side from = { .store = jobs_store(jobs), .path = path };
	struct transfer_side to = { .path = local };
	struct transfer_opts topts;
	char why[512] = "";
	int err;

	if (is_dir) {
		err = util_mkdir_p(local, 0755);
		if (err) {
			util_errf(errbuf, errlen, "cannot create %s: %s", local, strerror(-err));
			return err;
		}
	}
	transfer_opts_default(&topts);
	err = transfer_copy(&from, is_dir, &to, &topts, NULL, why, sizeof(why));
	if (err == -EIO && !why[0])
		util_errf(why, sizeof(why), "some files could not be copied");
	if (err)
		util_errf(errbuf, errlen, "cannot download %s to %s: %s", path, local, why);
	return err;
}

/* artifacts/ and user_logs/ of the run into dir, as az ml job download lays them out;
 * a part the run does not have is skipped. */
static int jobs_fetch_parts(struct jobs *jobs, const char *id, const char *dir,
			    char *errbuf, size_t errlen)
{
	static const char *const parts[] = { "artifacts", "user_logs" };

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		char path[RECORD_ID_MAX + 32], local[PATH_MAX];
		int err;

		snprintf(path, sizeof(path), "runs/%s/%s", id, parts[i]);
		err = store_has_children(jobs_store(jobs), path);
		if (err == 0)
			continue;
		if (err < 0) {
			util_errf(errbuf, errlen, "cannot list %s: %s", path,
				  transfer_store_error(err));
			return err;
		}
		err = util_path_join(local, sizeof(local), dir, parts[i]);
		if (!err)
			err = jobs_fetch(jobs, path, true, local, errbuf, errlen);
		else
			util_errf(errbuf, errlen, "%s: path too long", dir);
		if (err)
			return err;
	}
	return 0;
}

/* One named output into dir/named-outputs/NAME (a file output: into that folder). */
static int jobs_fetch_output(struct jobs *jobs, const struct record_data *d, const char *dir,
			     char *errbuf, size_t errlen)
{
	char path[DATASTORE_PATH_MAX], outputs[PATH_MAX], local[PATH_MAX], file[PATH_MAX];
	struct store_attr attr;
	int err = record_path_in(&jobs->home.url, d->path, path, sizeof(path));

	if (!err)
		err = util_path_join(outputs, sizeof(outputs), dir, "named-outputs");
	if (!err)
		err = util_path_join(local, sizeof(local), outputs, d->name);
	if (err) {
		util_errf(errbuf, errlen, "output '%s': path too long", d->name);
		return err;
	}
	err = store_lookup(jobs_store(jobs), path, &attr);
	if (err) {
		util_errf(errbuf, errlen, "output '%s': %s: %s", d->name, d->path,
			  err == -ENOENT ? "nothing there" : transfer_store_error(err));
		return err;
	}
	if (attr.is_dir)
		return jobs_fetch(jobs, path, true, local, errbuf, errlen);
	err = util_mkdir_p(local, 0755);
	if (!err)
		err = util_path_join(file, sizeof(file), local, strrchr(path, '/') ?
				     strrchr(path, '/') + 1 : path);
	if (err) {
		util_errf(errbuf, errlen, "cannot create %s: %s", local, strerror(-err));
		return err;
	}
	return jobs_fetch(jobs, path, false, file, errbuf, errlen);
}

/* "run R has no output 'x'; its outputs: a, b". */
static int jobs_no_output(const struct run_record *rec, const char *name, char *errbuf,
			  size_t errlen)
{
	char names[512] = "";
	size_t used = 0;

	for (size_t i = 0; i < rec->noutputs && used < sizeof(names); i++)
		used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
					 rec->outputs[i].name);
	util_errf(errbuf, errlen, "run %s has no output '%.255s'; its outputs: %s", rec->id,
		  name, rec->noutputs ? names : "none");
	return -ENOENT;
}

int jobs_download(struct jobs *jobs, const char *id, const struct jobs_download *opts,
		  char *errbuf, size_t errlen)
{
	struct run_record rec;
	bool found = false;
	int err = jobs_read_record(jobs, id, true, &rec, errbuf, errlen);

	if (err)
		return err;
	for (size_t i = 0; opts->output && i < rec.noutputs; i++)
		found = found || strcmp(rec.outputs[i].name, opts->output) == 0;
	if (opts->output && !found)
		err = jobs_no_output(&rec, opts->output, errbuf, errlen);
	if (!err && (!opts->output || opts->all))
		err = jobs_fetch_parts(jobs, id, opts->dir, errbuf, errlen);
	for (size_t i = 0; !err && (opts->output || opts->all) && i < rec.noutputs; i++) {
		const struct record_data *d = &rec.outputs[i];

		if (opts->all || strcmp(d->name, opts->output) == 0)
			err = jobs_fetch_output(jobs, d, opts->dir, errbuf, errlen);
	}
	record_free(&rec);
	return err;
}
