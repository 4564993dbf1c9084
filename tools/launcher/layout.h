/* layout: where each process of a distributed job runs, and what it is.
 *
 * An engine (srun, mpirun) starts nodes x slots "slots", P = slots per node; slot s is
 * on node s / P as local index s % P (srun's block distribution, mpirun's
 * --map-by ppr:P:node). Each slot either runs one process of the job or is idle.
 *  - plain, pytorch and mpi jobs: P = processes per node, every slot runs one, and
 *    the process's rank is its slot.
 *  - tensorflow: W workers and S parameter servers, in that order (rank t: worker t,
 *    or ps t - W), task t on node t % N as local index t / N, P = ceil((W+S)/N).
 *    Task ports are Batch AI's: the i-th parameter server of a node listens on
 *    2222 + 2i, the i-th worker on 2223 + 2i.
 * Pure functions of the job; every node computes the same layout.
 */
#ifndef FERRY_LAYOUT_H
#define FERRY_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>

#include "tools/launcher/job/jobfile.h"

#define LAYOUT_PROCS_MAX 65536 /* processes in one run */
#define LAYOUT_HOST_MAX 256    /* a host name and its NUL */
#define LAYOUT_PS_PORT 2222
#define LAYOUT_WORKER_PORT 2223

enum layout_role {
	LAYOUT_PROCESS, /* plain, pytorch, mpi */
	LAYOUT_WORKER,
	LAYOUT_PS,
};

struct layout {
	enum job_dist_type type;
	int nodes;
	int slots;   /* per node */
	int procs;   /* processes in all */
	int workers; /* tensorflow */
	int ps;
};

struct layout_proc {
	int rank;
	int node;
	int local; /* index among the node's slots */
	enum layout_role role;
	int index; /* within its role: the rank for LAYOUT_PROCESS */
	int port;  /* tensorflow: the task's port; 0 otherwise */
};

/* The layout of job: -EINVAL with errbuf saying why when it has more than
 * LAYOUT_PROCS_MAX processes. */
int layout_make(const struct job *job, struct layout *out, char *errbuf, size_t errlen);

/* The process of slot (0 <= slot < nodes x slots): false for an idle slot. */
bool layout_slot(const struct layout *l, int slot, struct layout_proc *out);

/* The process of rank (0 <= rank < procs). */
void layout_rank(const struct layout *l, int rank, struct layout_proc *out);

/* How many processes run on node. */
int layout_node_procs(const struct layout *l, int node);

/* The host names of an Open MPI hostfile (len bytes of text, untrusted): the first
 * word of each line, '#' to the end of a line a comment. *out is a malloc'ed array of
 * *count malloc'ed names (free with layout_hosts_free()). -EINVAL with errbuf naming
 * the line of a name that is no host name, or for a file without one. */
int layout_parse_hostfile(const char *text, size_t len, char ***out, int *count,
			  char *errbuf, size_t errlen);
void layout_hosts_free(char **hosts, int count);

/* "worker", "ps", or NULL for LAYOUT_PROCESS. */
const char *layout_role_name(enum layout_role role);

#endif
