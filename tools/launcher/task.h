/* task: one slot of a run on many nodes, as the engine (srun, mpirun) started it with
 * `ferry run --task`: its place in the layout and its link to the coordinator.
 *
 * The coordinator's address, the run id and the run's token come in the environment
 * (FERRY_COORDINATOR=HOST:PORT, FERRY_RUN_ID, FERRY_RUN_TOKEN), the slot from the
 * engine's (SLURM_PROCID, OMPI_COMM_WORLD_RANK), the node names of an mpirun hostfile
 * in FERRY_HOSTS. See coord.h for the messages.
 */
#ifndef FERRY_TASK_H
#define FERRY_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "tools/launcher/coord.h"
#include "tools/launcher/layout.h"

enum task_engine {
	TASK_ENGINE_SLURM,
	TASK_ENGINE_MPI,
};

struct task {
	enum task_engine engine;
	struct layout layout;
	struct layout_proc proc;
	bool idle;   /* a slot without a process */
	bool leader; /* local index 0: prepares and cleans up the node */
	char run_id[128];
	char host[LAYOUT_HOST_MAX];
	struct coord_conn conn;
	/* from go: */
	char **hosts; /* one per node */
	int nhosts;
	int master_port;
	bool stopped; /* a stop came, or the coordinator is gone */
};

/* Reads the slot and the run from the environment and, for a slot with a process,
 * connects and says hello. -EINVAL/-errno with errbuf saying what is missing. */
int task_start(struct task *t, enum task_engine engine, const struct job *job,
	       char *errbuf, size_t errlen);

/* The leader's word that its node is prepared (error NULL) or not; node 0's leader
 * also offers a free port for MASTER_PORT. */
int task_ready(struct task *t, const char *error);

/* Waits for go (0) or stop (-ECANCELED; also when the coordinator is gone). */
int task_wait_go(struct task *t);

/* Handles what the coordinator sent, once its fd is readable: sets t->stopped on a stop
 * or at the end of the link. Returns true when a node_done came. */
bool task_on_readable(struct task *t);

/* The process's end. */
int task_exited(struct task *t, int exit_code, bool stopped, time_t started, time_t ended,
		const char *error);

/* The leader: waits until every process of its node has ended (node_done), or the
 * coordinator is gone. */
void task_wait_node_done(struct task *t);

/* The leader's last word: the node's outputs saved (error NULL) or not. */
int task_finished(struct task *t, const char *error);

/* The variables of the process as NAME=VALUE strings (malloc'ed, NULL-terminated;
 * free with task_env_free()): the framework's (pytorch, tensorflow) and, for Batch AI
 * jobs, AZ_BATCHAI_TASK_INDEX, _PS_HOSTS, _WORKER_HOSTS and _MPI_HOST_FILE
 * (hostfile: where to write that file). */
int task_env(const struct task *t, const struct job *job, const char *hostfile,
	     char ***out);
void task_env_free(char **env);

void task_end(struct task *t);

#endif
