/* run: `ferry run JOBFILE`, one job on this node, and the run records it leaves.
 *
 * A run goes Queued -> Preparing (inputs mounted or downloaded, output folders made,
 * Batch AI job preparation) -> Running (the command, its stdout and stderr streamed to
 * the terminal and captured) -> Finalizing (outputs, ./outputs, ./logs and the logs
 * uploaded) -> Completed | Failed | Canceled. Its record, logs and artifacts live in the
 * default datastore under runs/<run-id>/ so any machine can read them:
 *   runs/<id>/run.json                  the record (status, times, exit code, error)
 *   runs/<id>/user_logs/std_log.txt     stdout and stderr, as they came
 *   runs/<id>/artifacts/outputs/..., runs/<id>/artifacts/logs/...
 *   runs/<id>/outputs/<name>/...        named outputs without a path of their own
 * Mounts are made with ferry's own mount code and always unmounted at the end.
 */
#ifndef FERRY_RUN_H
#define FERRY_RUN_H

#include <stdbool.h>
#include <stddef.h>

/* ferry run's exit status when the run could not be set up (bad job file, missing
 * input, refused credential): distinct from any status a command's shell gives. */
#define RUN_EXIT_SETUP 125
/* ferry run's status when something of a run was not saved; ferry job's when a
 * command fails. */
#define RUN_EXIT_FAILED 1

#define RUN_ID_MAX 96

enum run_engine {
	RUN_ENGINE_LOCAL, /* this node, one process */
	RUN_ENGINE_SLURM, /* srun */
	RUN_ENGINE_MPI,   /* mpirun */
};

struct run_opts {
	const char *job_path;
	const char *run_id; /* NULL: a new id */
	enum run_engine engine;
	const char *hostfile;    /* mpi: the hosts; NULL: this node */
	bool task;               /* a slot started by an engine (ferry run --task) */
};

/* Runs the job and returns the exit status for ferry (with an engine, engine_run()
 * coordinates it; with task, this is one slot of such a run): the command's (128 + signal
 * when it was killed); RUN_EXIT_FAILED when it succeeded but the record, a log or an
 * output was not saved; or RUN_EXIT_SETUP (the run store unreachable, a bad job file,
 * a missing input, ...) with the reason on stderr. Installs handlers for SIGINT,
 * SIGTERM, SIGHUP (the run is canceled) and SIGCHLD, and ignores SIGPIPE. */
int run_job(const struct run_opts *opts);

#endif
