/* jobs: the runs recorded in the default datastore, as `ferry job` shows them.
 *
 * One store, the default datastore's, is opened for all of a command's work, and every
 * request goes to it: a record (runs/<id>/run.json, tools/launcher/record.h) is read
 * with the run's datastore as its home, so an output path elsewhere is refused before
 * anything is fetched, and local files are written only under the folder given, at
 * names made of checked parts (a run id, an output name, "artifacts", "user_logs").
 *
 * Functions return 0 or -errno; errbuf then holds one line for a person (what failed
 * and what to do). Not thread-safe: one command, one thread.
 */
#ifndef FERRY_JOBS_H
#define FERRY_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tools/launcher/record.h"

struct jobs;

/* Opens the default datastore (workspaceblobstore) for the runs under runs/. */
int jobs_open(struct jobs **out, char *errbuf, size_t errlen);
void jobs_close(struct jobs *jobs);

/* Writes a table of the runs (of experiment, when not NULL) to out, newest first:
 * RUN, EXPERIMENT, STATUS, EXIT, CREATED, DURATION, DISPLAY NAME. A run whose record
 * cannot be read is left out and named on warn with the reason; -EINVAL when one was. */
int jobs_list(struct jobs *jobs, const char *experiment, FILE *out, FILE *warn);

/* Writes the record of run id to out as JSON. */
int jobs_show(struct jobs *jobs, const char *id, FILE *out, char *errbuf, size_t errlen);

/* Writes the run's log to out: user_logs/std_log.txt, or for a run on many nodes
 * user_logs/std_log_process_<rank>.txt of rank (-1: rank 0; -ENOENT for a rank the
 * run does not have). With follow, keeps writing what is added (every 2 s) until the
 * record's status is final. *status is the status last read. */
int jobs_logs(struct jobs *jobs, const char *id, long rank, bool follow, FILE *out,
	      enum record_status *status, char *errbuf, size_t errlen);

struct jobs_download {
	const char *dir;    /* local folder, created as needed */
	const char *output; /* one named output, or NULL */
	bool all;           /* artifacts, logs and every named output */
};

/* Downloads what opts names of run id: artifacts/ and user_logs/ (without output, or
 * with all) into DIR/artifacts and DIR/user_logs, named outputs into
 * DIR/named-outputs/NAME. -ENOENT naming the run's outputs when output is not one. */
int jobs_download(struct jobs *jobs, const char *id, const struct jobs_download *opts,
		  char *errbuf, size_t errlen);

#endif
