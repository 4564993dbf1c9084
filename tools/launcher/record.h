/* record: a run's record (runs/<id>/run.json), written and read with jansson.
 *
 * ferry run writes the record at every change of status; ferry job reads it. Anyone who
 * can write to the datastore can write a record, so the reader treats it as hostile:
 * it checks every field it uses against what ferry run writes (types, bounded lengths,
 * the status names, sane times, the id charset, output names by the job-file rule) and,
 * given the run's datastore, that every output path lies inside it. A record that
 * fails gets -EINVAL and one printable line naming the field.
 *
 * The JSON: {"id", "status", "experiment_name", "display_name", "kind", "job_file",
 * "command", "node", "exit_code" (integer or null), "error" (string or null),
 * "times": {STATUS: "YYYY-MM-DDTHH:MM:SSZ" or null, for every status},
 * "inputs"/"outputs": [{"name", "mode", "path" (string or null)}], "engine" ("local",
 * "slurm", "mpi"), "distribution", "node_count", "processes": [{"rank", "node", "host",
 * "local_rank", "role", "status", "exit_code", "started", "ended"}]} (the last four keys
 * are absent from records of older versions). Keys it does not know are ignored.
 */
#ifndef FERRY_RECORD_H
#define FERRY_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#include "cache/store/url.h"

#define RECORD_TEXT_MAX (8 * 1024 * 1024) /* bytes in a run.json */
#define RECORD_PROCS_MAX 16384            /* processes of one run */
#define RECORD_HOST_MAX 255               /* a host name */
#define RECORD_ID_MAX 96              /* a run id and its NUL */
#define RECORD_DATA_MAX 1024          /* inputs or outputs in one record */

enum record_status {
	RECORD_QUEUED,
	RECORD_PREPARING,
	RECORD_RUNNING,
	RECORD_FINALIZING,
	RECORD_COMPLETED,
	RECORD_FAILED,
	RECORD_CANCELED,
	RECORD_NSTATUS,
};

/* One input or output: its name, mode ("ro_mount", "upload", "literal", ...) and
 * where it lives (a datastore URI; NULL for literals and local paths). */
struct record_data {
	const char *name;
	const char *mode;
	const char *path;
};

/* One process of a run on many nodes (rank = its index in the list). */
struct record_proc {
	int rank;
	int node;       /* index */
	int local_rank; /* index among the node's processes */
	const char *host;
	const char *role; /* "worker", "ps", or NULL */
	enum record_status status;
	int exit_code;          /* -1: none */
	time_t started, ended;  /* 0: not yet */
};

/* The writer reads the strings from the caller; a record from record_from_json()
 * owns them (they live in json) until record_free(). */
struct run_record {
	const char *id;
	enum record_status status;
	const char *experiment_name;
	const char *display_name;
	const char *kind; /* "command" or "batchai" */
	const char *job_file;
	const char *command;
	const char *node;
	int exit_code;     /* -1: none yet */
	const char *error; /* NULL: none */
	time_t times[RECORD_NSTATUS]; /* 0: not reached */
	const struct record_data *inputs, *outputs;
	size_t ninputs, noutputs;
	const char *engine;       /* "local", "slurm" or "mpi" */
	const char *distribution; /* "none", "pytorch", "mpi" or "tensorflow" */
	int node_count;
	const struct record_proc *procs; /* none for one-node runs */
	size_t nprocs;
	void *json; /* the parsed document (reader only) */
};

/* "Queued", "Preparing", ..., "Canceled". */
const char *record_status_name(enum record_status status);

/* True for Completed, Failed and Canceled. */
bool record_status_final(enum record_status status);

/* True when id is 1 to RECORD_ID_MAX - 1 of [A-Za-z0-9_.-], not starting with '.'
 * (ferry run's ids are run_YYYYMMDD_HHMMSS_XXXXXXXX). */
bool record_id_valid(const char *id);

/* A new run id, run_YYYYMMDD_HHMMSS_XXXXXXXX (the time, 8 random hex digits): 0 or
 * -EIO when no randomness could be read. */
int record_new_id(char *out, size_t outlen);

/* Where output out of the run whose folder is prefix (azureml://.../runs/<id>/) lives:
 * its path, or <prefix>outputs/<name>/. A new string for free(); NULL: out of memory. */
struct job_output;
char *record_output_uri(const char *prefix, const struct job_output *out);

/* The record as indented JSON; *out is malloc'ed (len without the NUL). -ENOMEM. */
int record_to_json(const struct run_record *rec, char **out, size_t *len);

/* Where the record was read from. */
struct record_home {
	/* the run's datastore (resolved with datastore_resolve()): every output path must
	 * lie inside its container and prefix; NULL: output paths are checked for their
	 * form only (a datastore URI), not for where they are */
	const struct url_container *store;
	const char *id; /* the run the record must be of, or NULL */
};

/* Parses and checks len bytes of text; home may be NULL (no id or place checked). On
 * success *out holds the record until record_free(); on -EINVAL errbuf says which
 * field is wrong and how. */
int record_from_json(const char *text, size_t len, const struct record_home *home,
		     struct run_record *out, char *errbuf, size_t errlen);

/* The path inside store (relative to its container and prefix) that uri, a datastore
 * URI, names: -EXDEV when uri lies in another host, account, container or prefix,
 * -EINVAL when it is no datastore URI (datastore_resolve()), -ENAMETOOLONG. Reads
 * the datastore config for azureml:// URIs; no network. */
int record_path_in(const struct url_container *store, const char *uri, char *out,
		   size_t outlen);

enum record_text {
	RECORD_ONE_LINE, /* no control characters */
	RECORD_LINES,    /* newlines and tabs too */
};

/* Readers of one field of a JSON object of untrusted origin, for the record and the
 * messages of a run's processes; where prefixes key in messages ("times.").
 * The string at key: at most max bytes, no control characters (but newlines and
 * tabs for RECORD_LINES), no bidirectional overrides; *out NULL for null when
 * nullable. -EINVAL with errbuf naming the field otherwise. */
int record_string(const json_t *obj, const char *key, const char *where, size_t max,
		  enum record_text kind, bool nullable, const char **out, char *errbuf,
		  size_t errlen);

/* The integer at key, from min to max; *out -1 for null when nullable. */
int record_int(const json_t *obj, const char *key, const char *where, long long min,
	       long long max, bool nullable, long long *out, char *errbuf, size_t errlen);

/* True when s is a host name as ferry records it: 1 to RECORD_HOST_MAX letters,
 * digits, '.', '-' and '_'. */
bool record_host_valid(const char *s);

/* Frees what record_from_json() filled; a zeroed record is fine. */
void record_free(struct run_record *rec);

#endif
