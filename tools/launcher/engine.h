/* engine: `ferry run --engine slurm|mpi`, a run on many nodes, coordinated from here.
 *
 * The coordinator writes the run's record, listens on a TCP port for the tasks, and
 * starts the engine (srun, or mpirun) with `ferry run --task` in every slot of the
 * layout (layout.h). Each node's leader prepares the node (mounts, downloads, output
 * folders); when every node is ready every task gets go and starts its process; when
 * a process fails, or on Ctrl-C, every task gets stop (its process gets SIGTERM,
 * SIGKILL 5 s later). When every process has ended each leader uploads its node's
 * outputs and unmounts; then the record is finalised: one record, a list of the
 * processes (host, rank, exit code, times), the first failure as the run's error.
 */
#ifndef FERRY_ENGINE_H
#define FERRY_ENGINE_H

#include "tools/launcher/run.h"

/* Runs the job on opts->engine; returns ferry run's exit status as run_job() does:
 * the first failing process's status, RUN_EXIT_FAILED when something was not saved
 * or the run was canceled, RUN_EXIT_SETUP when it could not start. */
int engine_run(const struct run_opts *opts);

#endif
