#include "tools/launcher/task.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/base/util.h"
#include "tools/launcher/envlist.h"
#include "tools/launcher/record.h"

/* The whole number in the variable name, from 0 to max: -EINVAL when it is not. */
static int task_env_int(const char *name, long max, long *out)
{
	const char *v = getenv(name);

	return v ? util_parse_long(v, 0, max, out) : -ENOENT;
}

/* The host name of node k: Slurm's name of this node, the hostfile's, or this host's. */
static int task_host(struct task *t, char *errbuf, size_t errlen)
{
	const char *slurm = getenv("SLURMD_NODENAME"), *list = getenv("FERRY_HOSTS");
	char *copy, *save = NULL, *name;
	int k = 0;

	if (t->engine == TASK_ENGINE_SLURM && slurm && *slurm)
		util_errf(t->host, sizeof(t->host), "%s", slurm);
	else if (t->engine == TASK_ENGINE_MPI && list && *list) {
		copy = strdup(list);
		if (!copy)
			return -ENOMEM;
		for (name = strtok_r(copy, ",", &save); name && k < t->proc.node;
		     name = strtok_r(NULL, ",", &save))
			k++;
		util_errf(t->host, sizeof(t->host), "%s", name ? name : "");
		free(copy);
	} else if (gethostname(t->host, sizeof(t->host) - 1) != 0)
		t->host[0] = '\0';
	if (!record_host_valid(t->host)) {
		util_errf(errbuf, errlen, "this node has no usable host name (got '%.64s')", t->host);
		return -EINVAL;
	}
	return 0;
}

/* The slot the engine gave this process. */
static int task_slot(struct task *t, long *slot, char *errbuf, size_t errlen)
{
	const char *var = t->engine == TASK_ENGINE_SLURM ? "SLURM_PROCID" : "OMPI_COMM_WORLD_RANK";
	long node, max = (long)t->layout.nodes * t->layout.slots - 1;

	if (task_env_int(var, max, slot) != 0) {
		util_errf(errbuf, errlen, "%s is not a slot from 0 to %ld: was this started by "
			  "ferry run --engine?", var, max);
		return -EINVAL;
	}
	if (t->engine == TASK_ENGINE_SLURM &&
	    (task_env_int("SLURM_NODEID", t->layout.nodes - 1, &node) != 0 ||
	     node != *slot / t->layout.slots)) {
		util_errf(errbuf, errlen, "srun placed task %ld on node %s, not %ld: the tasks "
			  "must be laid out in blocks (srun --distribution=block)", *slot,
			  getenv("SLURM_NODEID") ? getenv("SLURM_NODEID") : "(none)",
			  *slot / t->layout.slots);
		return -EINVAL;
	}
	return 0;
}

/* Connects to FERRY_COORDINATOR (HOST:PORT). */
static int task_connect(struct task *t, char *errbuf, size_t errlen)
{
	const char *where = getenv("FERRY_COORDINATOR");
	const char *colon = where ? strrchr(where, ':') : NULL;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	char host[LAYOUT_HOST_MAX];
	int fd = -1, rc;

	if (!colon || colon == where || (size_t)(colon - where) >= sizeof(host)) {
		util_errf(errbuf, errlen, "FERRY_COORDINATOR is not HOST:PORT");
		return -EINVAL;
	}
	memcpy(host, where, (size_t)(colon - where));
	host[colon - where] = '\0';
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0) {
		util_errf(errbuf, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		util_errf(errbuf, errlen, "cannot reach ferry run at %s: %s", where, strerror(errno));
		return -EHOSTUNREACH;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return coord_conn_init(&t->conn, fd);
}

int task_start(struct task *t, enum task_engine engine, const struct job *job,
	       char *errbuf, size_t errlen)
{
	const char *id = getenv("FERRY_RUN_ID"), *token = getenv("FERRY_RUN_TOKEN");
	struct coord_msg hello = { .type = COORD_HELLO };
	long slot;
	int err;

	memset(t, 0, sizeof(*t));
	t->engine = engine;
	t->conn.fd = -1;
	if (!id || !record_id_valid(id) || !token || strlen(token) != COORD_TOKEN_LEN) {
		util_errf(errbuf, errlen, "FERRY_RUN_ID or FERRY_RUN_TOKEN is missing: ferry run "
			  "--task is started by ferry run --engine, not by hand");
		return -EINVAL;
	}
	util_errf(t->run_id, sizeof(t->run_id), "%s", id);
	err = layout_make(job, &t->layout, errbuf, errlen);
	if (!err)
		err = task_slot(t, &slot, errbuf, errlen);
	if (err)
		return err;
	if (!layout_slot(&t->layout, (int)slot, &t->proc)) {
		t->idle = true;
		return 0;
	}
	t->leader = t->proc.local == 0;
	err = task_host(t, errbuf, errlen);
	if (!err)
		err = task_connect(t, errbuf, errlen);
	if (err)
		return err;
	hello.slot = (int)slot;
	util_errf(hello.token, sizeof(hello.token), "%s", token);
	util_errf(hello.host, sizeof(hello.host), "%s", t->host);
	err = coord_send(t->conn.fd, &hello);
	if (err)
		util_errf(errbuf, errlen, "cannot talk to ferry run: %s", strerror(-err));
	return err;
}

/* A port no one listens on now, for MASTER_PORT. */
static int task_free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

int task_ready(struct task *t, const char *error)
{
	struct coord_msg m = { .type = COORD_READY };

	if (!error && t->proc.node == 0)
		m.master_port = task_free_port();
	util_errf(m.error, sizeof(m.error), "%s", error ? error : "");
	return coord_send(t->conn.fd, &m);
}

/* Handles one message; -EPIPE when the link is over. */
static int task_handle(struct task *t, const struct coord_msg *m, bool *node_done)
{
	switch (m->type) {
	case COORD_GO:
		if (t->hosts || m->nhosts != t->layout.nodes)
			return -EPIPE;
		t->hosts = calloc((size_t)m->nhosts, sizeof(*t->hosts));
		if (!t->hosts)
			return -ENOMEM;
		for (int i = 0; i < m->nhosts; i++) {
			t->hosts[i] = strdup(m->hosts[i]);
			if (!t->hosts[i])
				return -ENOMEM;
			t->nhosts = i + 1;
		}
		t->master_port = m->master_port;
		return 0;
	case COORD_STOP:
		t->stopped = true;
		return 0;
	case COORD_NODE_DONE:
		*node_done = true;
		return 0;
	default:
		return -EPIPE; /* not a message for a task */
	}
}

bool task_on_readable(struct task *t)
{
	struct coord_msg m;
	char errbuf[256];
	bool node_done = false;
	int rc;

	while (t->conn.fd >= 0 &&
	       (rc = coord_recv(&t->conn, 1, t->layout.nodes, &m, errbuf, sizeof(errbuf))) != 0) {
		if (rc == 1) {
			rc = task_handle(t, &m, &node_done);
			coord_msg_free(&m);
		}
		if (rc < 0) {
			if (rc == -EINVAL)
				fprintf(stderr, "ferry run: rank %d: a bad message from ferry run: %s\n",
					t->proc.rank, errbuf);
			/* the coordinator is gone: nothing to wait for */
			coord_conn_close(&t->conn);
			t->stopped = true;
			node_done = true;
		}
	}
	return node_done;
}

/* Waits for the link to be readable and handles what came; false once it is gone. */
static bool task_wait(struct task *t, bool *node_done)
{
	struct pollfd pfd = { .fd = t->conn.fd, .events = POLLIN };

	if (t->conn.fd < 0)
		return false;
	if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
		return false;
	*node_done = task_on_readable(t);
	return t->conn.fd >= 0;
}

int task_wait_go(struct task *t)
{
	bool node_done = false;

	while (!t->hosts && !t->stopped && task_wait(t, &node_done))
		;
	return t->hosts && !t->stopped ? 0 : -ECANCELED;
}

void task_wait_node_done(struct task *t)
{
	bool node_done = false;

	while (!node_done && task_wait(t, &node_done))
		;
}

int task_exited(struct task *t, int exit_code, bool stopped, time_t started, time_t ended,
		const char *error)
{
	struct coord_msg m = { .type = COORD_EXITED, .exit_code = exit_code,
			       .stopped = stopped, .started = started, .ended = ended };

	if (t->conn.fd < 0)
		return -EPIPE;
	util_errf(m.error, sizeof(m.error), "%s", error ? error : "");
	return coord_send(t->conn.fd, &m);
}

int task_finished(struct task *t, const char *error)
{
	struct coord_msg m = { .type = COORD_FINISHED };

	if (t->conn.fd < 0)
		return -EPIPE;
	util_errf(m.error, sizeof(m.error), "%s", error ? error : "");
	return coord_send(t->conn.fd, &m);
}

/* Environment ----------------------------------------------------------------------- */

/* "host:port,host:port" of every task of role, into *list (malloc'ed). */
static int task_role_hosts(const struct task *t, enum layout_role role, json_t *array,
			   char **list)
{
	struct util_buf buf = { .limit = COORD_LINE_MAX };
	struct layout_proc p;
	char one[LAYOUT_HOST_MAX + 8];
	int err = 0;

	for (int rank = 0; !err && rank < t->layout.procs; rank++) {
		layout_rank(&t->layout, rank, &p);
		if (p.role != role)
			continue;
		util_errf(one, sizeof(one), "%s:%d", t->hosts[p.node], p.port);
		err = util_buf_append(&buf, ",", buf.len ? 1 : 0);
		if (!err)
			err = util_buf_append(&buf, one, strlen(one));
		if (!err && json_array_append_new(array, json_string(one)) != 0)
			err = -ENOMEM;
	}
	*list = buf.data ? buf.data : strdup("");
	return err || !*list ? -ENOMEM : 0;
}

/* TF_CONFIG, and Batch AI's lists of hosts. */
static void task_env_tf(const struct task *t, const struct job *job, struct envlist *b)
{
	json_t *workers = json_array(), *ps = json_array();
	json_t *config = json_pack("{s:{s:o, s:o}, s:{s:s, s:i}}", "cluster", "worker", workers,
				   "ps", ps, "task", "type", layout_role_name(t->proc.role),
				   "index", t->proc.index);
	char *worker_list = NULL, *ps_list = NULL, *text = NULL;

	if (!config || task_role_hosts(t, LAYOUT_WORKER, workers, &worker_list) ||
	    task_role_hosts(t, LAYOUT_PS, ps, &ps_list) ||
	    !(text = json_dumps(config, JSON_COMPACT)))
		b->err = -ENOMEM;
	else
		envlist_set(b, "TF_CONFIG", "%s", text);
	if (!b->err && job->kind == JOB_BATCHAI) {
		envlist_set(b, "AZ_BATCHAI_PS_HOSTS", "%s", ps_list);
		envlist_set(b, "AZ_BATCHAI_WORKER_HOSTS", "%s", worker_list);
	}
	free(text);
	free(worker_list);
	free(ps_list);
	json_decref(config);
}

/* AZ_BATCHAI_MPI_HOST_FILE: "host slots=N" a node, written whole under its name. */
static int task_hostfile(const struct task *t, const char *path)
{
	struct util_buf buf = { .limit = COORD_LINE_MAX };
	char line[LAYOUT_HOST_MAX + 32], tmp[4096];
	int fd, err = 0;

	for (int k = 0; !err && k < t->layout.nodes; k++) {
		util_errf(line, sizeof(line), "%s slots=%d\n", t->hosts[k],
			  layout_node_procs(&t->layout, k));
		err = util_buf_append(&buf, line, strlen(line));
	}
	util_errf(tmp, sizeof(tmp), "%s.%d", path, t->proc.rank);
	fd = err ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		err = err ? err : -errno;
	else {
		err = util_write_full(fd, buf.data, buf.len);
		if (close(fd) != 0 && !err)
			err = -errno;
	}
	if (!err && rename(tmp, path) != 0)
		err = -errno;
	util_buf_free(&buf);
	return err;
}

int task_env(const struct task *t, const struct job *job, const char *hostfile,
	     char ***out)
{
	struct envlist b;
	const struct layout_proc *p = &t->proc;

	envlist_init(&b, NULL);
	if (job->dist.type == JOB_DIST_PYTORCH) {
		envlist_set(&b, "MASTER_ADDR", "%s", t->hosts[0]);
		envlist_set(&b, "MASTER_PORT", "%d", t->master_port);
		envlist_set(&b, "WORLD_SIZE", "%d", t->layout.procs);
		envlist_set(&b, "RANK", "%d", p->rank);
		envlist_set(&b, "LOCAL_RANK", "%d", p->local);
		envlist_set(&b, "LOCAL_WORLD_SIZE", "%d", layout_node_procs(&t->layout, p->node));
		envlist_set(&b, "NODE_RANK", "%d", p->node);
	}
	if (job->dist.type == JOB_DIST_TENSORFLOW)
		task_env_tf(t, job, &b);
	if (job->kind == JOB_BATCHAI) {
		envlist_set(&b, "AZ_BATCHAI_TASK_INDEX", "%d", p->index);
		if (!b.err && task_hostfile(t, hostfile) == 0)
			envlist_set(&b, "AZ_BATCHAI_MPI_HOST_FILE", "%s", hostfile);
	}
	if (b.err) {
		int err = b.err;

		envlist_free(&b);
		return err;
	}
	*out = b.vars;
	return 0;
}

void task_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

void task_end(struct task *t)
{
	for (int i = 0; t->hosts && i < t->nhosts; i++)
		free(t->hosts[i]);
	free(t->hosts);
	t->hosts = NULL;
	coord_conn_close(&t->conn);
}
