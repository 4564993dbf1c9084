/* jobfile: the job files `ferry run` reads, as one plain struct.
 *
 * Two formats, told apart by their keys:
 *  - Azure ML v2 `command` jobs (YAML; commandJob.schema.json, the subset below);
 *  - Batch AI jobs (JSON, the "Jobs - Create" body, with or without its `properties`
 *    wrapper). YAML is a superset of JSON: one libyaml parser reads both.
 * A file whose root (or root.properties) has a Batch AI key (customToolkitSettings,
 * inputDirectories, stdOutErrPathPrefix, mountVolumes, nodeCount, ...) and no
 * `command` is Batch AI; anything else is read as Azure ML.
 *
 * Errors are -EINVAL with one line in errbuf naming the file, the line and the field,
 * "job.yml:7: inputs.data.mode: unknown mode 'rw_mountt' (expected ro_mount, download
 * or direct)", or libyaml's problem with line and column for bad YAML. No message ever
 * holds an account key or a secret's value. Input is untrusted: sizes are capped
 * (JOB_FILE_MAX, JOB_ITEMS_MAX, JOB_DEPTH_MAX), the walk follows the schema only, so aliases and
 * deep nesting cost nothing.
 *
 * A parsed job is immutable; reading it from many threads is safe.
 */
#ifndef FERRY_JOBFILE_H
#define FERRY_JOBFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JOB_FILE_MAX (256 * 1024) /* bytes in a job file */
#define JOB_ITEMS_MAX 1024        /* entries in one mapping or list */
#define JOB_DEPTH_MAX 64          /* mappings and lists inside one another */
#define JOB_NAME_MAX 255          /* input/output names, Batch AI ids */
#define JOB_SUBST_MAX (1024 * 1024) /* bytes job_substitute() may produce */
#define JOB_NODES_MAX 4096          /* node_count, worker_count, parameter_server_count */
#define JOB_PROCESSES_MAX 1024      /* process_count: processes on one node */

enum job_kind {
	JOB_AZUREML, /* Azure ML v2 command job */
	JOB_BATCHAI, /* Batch AI job: the batchai part is filled */
};

enum job_data_type {
	JOB_LITERAL,    /* input only: a string, number or bool, kept as written */
	JOB_URI_FOLDER,
	JOB_URI_FILE,
};

enum job_input_mode {
	JOB_RO_MOUNT, /* default */
	JOB_DOWNLOAD,
	JOB_DIRECT,   /* the command gets the URI itself */
};

enum job_output_mode {
	JOB_RW_MOUNT, /* default */
	JOB_UPLOAD,
};

/* inputs.NAME: a literal, or {type, path, mode}. */
struct job_input {
	char *name;
	enum job_data_type type;
	char *value;              /* JOB_LITERAL: the literal's text; else NULL */
	char *path;               /* uri types: azureml://, https://, wasbs:// or local; else NULL */
	enum job_input_mode mode; /* uri types; JOB_RO_MOUNT for literals */
	unsigned line;            /* where NAME is, for the launcher's messages */
};

/* outputs.NAME: {type, mode, path}, each optional. */
struct job_output {
	char *name;
	enum job_data_type type;   /* JOB_URI_FOLDER (default) or JOB_URI_FILE */
	enum job_output_mode mode;
	char *path;                /* NULL: the launcher picks one under the run's prefix */
	unsigned line;
};

/* One name=value pair: environment variables, tags. */
struct job_kv {
	char *name;
	char *value;
};

/* Batch AI inputDirectories[]: exported as AZ_BATCHAI_INPUT_<id>. */
struct job_batchai_input {
	char *id;   /* letters, digits, '_' */
	char *path; /* as written, e.g. "$AZ_BATCHAI_JOB_MOUNT_ROOT/bfs/data" */
	unsigned line;
};

/* Batch AI outputDirectories[]: AZ_BATCHAI_OUTPUT_<id> = pathPrefix[/pathSuffix]. */
struct job_batchai_output {
	char *id;
	char *path_prefix; /* as written */
	char *path_suffix; /* NULL when absent */
	unsigned line;
};

enum job_mount_kind {
	JOB_MOUNT_BLOB,  /* mountVolumes.azureBlobFileSystems[] */
	JOB_MOUNT_FILES, /* mountVolumes.azureFileShares[] */
};

/* A job-level mount, at $AZ_BATCHAI_JOB_MOUNT_ROOT/<relative_mount_path>. */
struct job_mount {
	enum job_mount_kind kind;
	char *account_name;
	char *container_name;      /* JOB_MOUNT_BLOB */
	char *azure_file_url;      /* JOB_MOUNT_FILES */
	char *relative_mount_path; /* relative, no ".." component */
	char *mount_options;       /* blob mountOptions, or NULL */
	/* SECRET: credentials.accountKey, or NULL. Never print it; job_wipe_secrets()
	 * (and job_free()) overwrite and free it. */
	char *account_key;
	char *key_secret_url; /* credentials.accountKeySecretReference.secretUrl */
	char *key_vault_id;   /* ...accountKeySecretReference.sourceVault.id */
	unsigned line;
};

struct job_batchai {
	struct job_batchai_input *inputs;
	size_t ninputs;
	struct job_batchai_output *outputs;
	size_t noutputs;
	struct job_mount *mounts;
	size_t nmounts;
	char **secret_names;   /* secrets[].name; the values are never read */
	size_t nsecret_names;
	char *std_out_err_path_prefix; /* NULL when absent */
	char *job_preparation;         /* jobPreparation.commandLine, or NULL */
	char *container_image;         /* containerSettings.imageSourceRegistry.image, or NULL */
};

enum job_dist_type {
	JOB_DIST_NONE,       /* the command once per node */
	JOB_DIST_PYTORCH,
	JOB_DIST_MPI,
	JOB_DIST_TENSORFLOW,
};

/* How the command is spread over nodes and processes: Azure ML `resources` and
 * `distribution`, Batch AI nodeCount and the toolkit settings. */
struct job_dist {
	enum job_dist_type type;  /* NONE: the command once per node */
	long node_count;          /* resources.instance_count / nodeCount; default 1 */
	long process_count;       /* processes per node (pytorch, mpi); 1 otherwise */
	long worker_count;        /* tensorflow; default node_count; 0 for other types */
	long parameter_server_count; /* tensorflow; default 0 (Azure ML) or 1 (Batch AI,
				      * when more than one node); 0 for other types */
	char *master_command;     /* Batch AI tensorFlowSettings: the command of worker 0; NULL: command */
	char *worker_command;     /* ... of the other workers; NULL: command */
	char *ps_command;         /* ... of parameter servers; NULL: command */
};

struct job {
	enum job_kind kind;
	char *source;  /* file name as given to the parser, for messages */
	char *command; /* never NULL; Batch AI: the toolkit's commandLine, or the python
			* command built from its settings */
	char *code;    /* local path, or NULL */
	char *name;    /* name (Azure ML) or the Batch AI body's name, or NULL */
	char *experiment_name;
	char *display_name;
	char *description;
	char *environment; /* a named environment; NULL when absent or given inline */
	char *compute;
	struct job_input *inputs; /* in file order */
	size_t ninputs;
	struct job_output *outputs;
	size_t noutputs;
	struct job_kv *env; /* environment_variables / environmentVariables, in file order */
	size_t nenv;
	struct job_kv *tags;
	size_t ntags;
	int64_t timeout; /* seconds; 0 = none. limits.timeout / constraints.maxWallClockTime */
	struct job_batchai batchai; /* zeroed for JOB_AZUREML */
	struct job_dist dist;       /* always filled: defaults when the file says nothing */
};

/* Parses the file at path (at most JOB_FILE_MAX bytes). On success *out is a new job
 * for job_free(). Errors: -EINVAL (message as above), -ENOENT/-EACCES/-EISDIR/-EFBIG
 * for the file itself, -ENOMEM. errbuf may be NULL. */
int job_parse_file(const char *path, struct job **out, char *errbuf, size_t errlen);

/* Parses len bytes of text; source names it in messages (NULL: "<string>").
 * -EFBIG past JOB_FILE_MAX; otherwise as job_parse_file(). */
int job_parse_string(const char *text, size_t len, const char *source, struct job **out,
		     char *errbuf, size_t errlen);

/* Overwrites and frees every secret held (account keys). Idempotent. */
void job_wipe_secrets(struct job *job);

/* Wipes the secrets and frees everything. NULL is fine. */
void job_free(struct job *job);

/* What job_substitute() puts in place of each placeholder: inputs[i] is the value of
 * job->inputs[i] (the local path of a mounted or downloaded input, the URI of a direct
 * one), outputs[i] that of job->outputs[i]. Either array may be NULL, and any entry
 * NULL: a literal input then stands for its own value. */
struct job_values {
	const char *const *inputs;
	const char *const *outputs;
};

/* Replaces every ${{inputs.NAME}} and ${{outputs.NAME}} (spaces allowed inside the
 * braces) in tmpl with its value, inserted as is (no shell quoting, as Azure ML does).
 * *out is a new string for free(). -EINVAL naming the placeholder when NAME is not
 * declared, has no value, the expression is not inputs./outputs., or "${{" is never
 * closed; -E2BIG past JOB_SUBST_MAX; -ENOMEM. values may be NULL. */
int job_substitute(const struct job *job, const struct job_values *values, const char *tmpl,
		   char **out, char *errbuf, size_t errlen);

/* True when the len bytes at s are a name of the job-file rule: 1 to JOB_NAME_MAX of
 * [A-Za-z0-9_], not starting with a digit unless leading_digit (Batch AI ids). */
bool job_name_valid(const char *s, size_t len, bool leading_digit);

/* The input or output named name, or NULL. */
const struct job_input *job_find_input(const struct job *job, const char *name);
const struct job_output *job_find_output(const struct job *job, const char *name);

/* Names as written in job files: "uri_folder", "ro_mount", "rw_mount", ... */
const char *job_data_type_name(enum job_data_type type);
const char *job_input_mode_name(enum job_input_mode mode);
const char *job_output_mode_name(enum job_output_mode mode);

#endif
