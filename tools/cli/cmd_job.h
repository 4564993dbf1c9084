/* cmd_job: `ferry job list|show|logs|download`, the runs of the default datastore.
 *
 * Takes the arguments after "job" and returns the exit status: 0 done, 1 failed (one
 * line on stderr), 2 bad usage. `ferry job logs RUN --follow` exits with the run's
 * result instead: 0 when it Completed, 1 when it Failed or was Canceled.
 */
#ifndef FERRY_CMD_JOB_H
#define FERRY_CMD_JOB_H

int cmd_job(int argc, char **argv);

#endif
