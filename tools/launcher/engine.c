#include "tools/launcher/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/base/util.h"
#include "cache/store/datastore.h"
#include "tools/launcher/coord.h"
#include "tools/launcher/job/jobfile.h"
#include "tools/launcher/layout.h"
#include "tools/launcher/record.h"
#include "tools/launcher/stores.h"
#include "tools/lib/transfer.h"

#define ENGINE_HELLO_SECONDS 120 /* after the first task's hello, the others' */
#define ENGINE_HOSTFILE_MAX (1024 * 1024)
#define ENGINE_URI_MAX 4096

struct engine_slot {
	bool has_proc;
	struct layout_proc proc;
	int conn;          /* index in conns, -1: none */
	bool hello;
	bool done;         /* exited, or its link ended */
	bool node_done_sent;
	bool finished;     /* a leader's last word */
	char host[LAYOUT_HOST_MAX];
	enum record_status status;
	int exit_code;
	time_t started, ended;
};

struct engine_conn {
	struct coord_conn link;
	int slot; /* -1 until its hello */
};

struct engine {
	const struct run_opts *opts;
	struct job *job;
	struct layout layout;
	char id[RUN_ID_MAX];
	char prefix[ENGINE_URI_MAX];
	char token[COORD_TOKEN_LEN + 1];
	char **hosts; /* the hostfile's */
	int nhosts;
	struct stores *stores;
	struct stores_target home;
	int listen_fd;
	int port;
	pid_t pid;            /* the engine's; 0 once reaped */
	int engine_status;
	struct engine_slot *slots;
	int nslots;
	struct engine_conn *conns;
	int nconns;
	bool *node_ready;
	int nodes_pending;    /* nodes with processes not ready yet */
	int master_port;
	bool go_sent;
	bool stopping;
	bool setup_failed;
	int first_failure;    /* a rank, -1: none */
	int64_t first_hello;  /* ms, 0: none yet */
	enum record_status status;
	time_t times[RECORD_NSTATUS];
	char error[COORD_ERROR_MAX + 128];
	char **out_uris;      /* the outputs' */
	bool record_failed;
};

static volatile sig_atomic_t engine_signals;
static int engine_wake[2] = { -1, -1 };

static void engine_on_signal(int sig)
{
	int saved = errno;
	ssize_t n;

	if (sig != SIGCHLD)
		engine_signals++;
	n = write(engine_wake[1], "", 1);
	(void)n;
	errno = saved;
}

static int64_t engine_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void engine_fail(struct engine *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records why the run failed (the first reason stands) and says it on stderr. */
static void engine_fail(struct engine *e, const char *fmt, ...)
{
	char line[sizeof(e->error)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!e->error[0])
		memcpy(e->error, line, sizeof(line));
	fprintf(stderr, "ferry run: %s\n", line);
}

/* Record ---------------------------------------------------------------------------- */

static const char *const engine_names[] = { "local", "slurm", "mpi" };
static const char *const engine_dists[] = { "none", "pytorch", "mpi", "tensorflow" };

static int engine_record(struct engine *e, char **out, size_t *len)
{
	const struct job *job = e->job;
	struct record_data *ins = calloc(job->ninputs + 1, sizeof(*ins));
	struct record_data *outs = calloc(job->noutputs + 1, sizeof(*outs));
	struct record_proc *procs = calloc((size_t)e->layout.procs, sizeof(*procs));
	struct run_record rec = {
		.id = e->id,
		.status = e->status,
		.experiment_name = job->experiment_name ? job->experiment_name : "Default",
		.display_name = job->display_name ? job->display_name : e->id,
		.kind = job->kind == JOB_BATCHAI ? "batchai" : "command",
		.job_file = job->source,
		.command = job->command,
		.node = e->slots[0].hello ? e->slots[0].host : "",
		.exit_code = -1,
		.error = e->error[0] ? e->error : NULL,
		.inputs = ins, .ninputs = job->ninputs,
		.outputs = outs, .noutputs = job->noutputs,
		.engine = engine_names[e->opts->engine],
		.distribution = engine_dists[job->dist.type],
		.node_count = e->layout.nodes,
		.procs = procs, .nprocs = (size_t)e->layout.procs,
	};
	int err = -ENOMEM;

	if (ins && outs && procs) {
		memcpy(rec.times, e->times, sizeof(rec.times));
		for (size_t i = 0; i < job->ninputs; i++)
			ins[i] = (struct record_data){
				.name = job->inputs[i].name,
				.mode = job->inputs[i].type == JOB_LITERAL
						? "literal" : job_input_mode_name(job->inputs[i].mode),
				.path = job->inputs[i].path };
		for (size_t i = 0; i < job->noutputs; i++)
			outs[i] = (struct record_data){
				.name = job->outputs[i].name,
				.mode = job_output_mode_name(job->outputs[i].mode),
				.path = e->out_uris[i] };
		for (int s = 0; s < e->nslots; s++) {
			const struct engine_slot *sl = &e->slots[s];

			if (!sl->has_proc)
				continue;
			procs[sl->proc.rank] = (struct record_proc){
				.rank = sl->proc.rank, .node = sl->proc.node,
				.local_rank = sl->proc.local, .host = sl->hello ? sl->host : NULL,
				.role = layout_role_name(sl->proc.role), .status = sl->status,
				.exit_code = sl->exit_code, .started = sl->started,
				.ended = sl->ended };
			if (sl->proc.rank == 0)
				rec.exit_code = sl->exit_code;
		}
		err = record_to_json(&rec, out, len);
	}
	free(ins);
	free(outs);
	free(procs);
	return err;
}

static void engine_set_status(struct engine *e, enum record_status status)
{
	char path[DATASTORE_PATH_MAX], *json = NULL;
	size_t len = 0;
	int err;

	e->status = status;
	e->times[status] = time(NULL);
	fprintf(stderr, "ferry run: %s: %s\n", e->id, record_status_name(status));
	err = engine_record(e, &json, &len);
	if (!err)
		err = util_path_join(path, sizeof(path), e->home.path, "run.json");
	if (!err)
		err = store_put(e->home.store, path, json, len, NULL, NULL, NULL);
	free(json);
	if (err && !e->record_failed)
		fprintf(stderr, "ferry run: could not record the run's status: cannot write "
			"%srun.json: %s\n", e->prefix, transfer_store_error(err));
	e->record_failed |= err != 0;
}

/* Links ----------------------------------------------------------------------------- */

static void engine_send(struct engine *e, int slot, enum coord_type type)
{
	struct coord_msg m = { .type = type, .master_port = e->master_port,
			       .hosts = NULL, .nhosts = 0 };
	char **hosts = NULL;
	int c = e->slots[slot].conn;

	if (c < 0 || e->conns[c].link.fd < 0)
		return;
	if (type == COORD_GO) {
		hosts = calloc((size_t)e->layout.nodes, sizeof(*hosts));
		if (!hosts)
			return;
		for (int k = 0; k < e->layout.nodes; k++)
			hosts[k] = e->slots[k * e->layout.slots].host;
		m.hosts = hosts;
		m.nhosts = e->layout.nodes;
	}
	if (coord_send(e->conns[c].link.fd, &m) != 0)
		fprintf(stderr, "ferry run: cannot reach rank %d\n", e->slots[slot].proc.rank);
	free(hosts);
}

/* Every task is told to stop its process (or not to start it). */
static void engine_stop(struct engine *e)
{
	if (e->stopping)
		return;
	e->stopping = true;
	for (int s = 0; s < e->nslots; s++)
		if (e->slots[s].hello && !e->slots[s].done)
			engine_send(e, s, COORD_STOP);
}

/* Node k's leader hears when every process of its node, its own last, has ended. */
static void engine_check_node(struct engine *e, int node)
{
	int leader = node * e->layout.slots;

	for (int l = 0; l < e->layout.slots; l++) {
		const struct engine_slot *sl = &e->slots[leader + l];

		if (sl->has_proc && !sl->done)
			return;
	}
	if (!e->slots[leader].node_done_sent && e->slots[leader].hello) {
		e->slots[leader].node_done_sent = true;
		engine_send(e, leader, COORD_NODE_DONE);
	}
}

/* Is every process over? */
static bool engine_all_done(const struct engine *e)
{
	for (int s = 0; s < e->nslots; s++)
		if (e->slots[s].has_proc && !e->slots[s].done)
			return false;
	return true;
}

static void engine_slot_done(struct engine *e, int s)
{
	e->slots[s].done = true;
	engine_check_node(e, e->slots[s].proc.node);
	if (e->status == RECORD_RUNNING && engine_all_done(e))
		engine_set_status(e, RECORD_FINALIZING);
}

static void engine_hello(struct engine *e, int c, const struct coord_msg *m)
{
	struct engine_slot *sl = &e->slots[m->slot];

	if (!coord_token_ok(m->token, e->token) || !sl->has_proc || sl->hello) {
		fprintf(stderr, "ferry run: a connection that is not one of this run's tasks was "
			"closed\n");
		coord_conn_close(&e->conns[c].link);
		return;
	}
	e->conns[c].slot = m->slot;
	sl->conn = c;
	sl->hello = true;
	util_errf(sl->host, sizeof(sl->host), "%s", m->host);
	if (!e->first_hello)
		e->first_hello = engine_now_ms();
	if (e->stopping)
		engine_send(e, m->slot, COORD_STOP);
	else if (e->go_sent)
		engine_send(e, m->slot, COORD_GO);
	engine_check_node(e, sl->proc.node);
}

/* Every task gets go, and then the record says Running (the processes do not wait
 * for the datastore). */
static void engine_go(struct engine *e)
{
	e->go_sent = true;
	for (int s = 0; s < e->nslots; s++) {
		if (!e->slots[s].has_proc)
			continue;
		e->slots[s].status = RECORD_RUNNING;
		if (e->slots[s].hello)
			engine_send(e, s, COORD_GO);
	}
	engine_set_status(e, RECORD_RUNNING);
}

static void engine_ready(struct engine *e, struct engine_slot *sl, const struct coord_msg *m)
{
	int node = sl->proc.node;

	if (sl->proc.local != 0 || e->node_ready[node])
		return;
	if (m->error[0]) {
		e->setup_failed = true;
		engine_fail(e, "node %d (%s): %s", node, sl->host, m->error);
		engine_stop(e);
		return;
	}
	e->node_ready[node] = true;
	if (node == 0)
		e->master_port = m->master_port;
	if (--e->nodes_pending == 0 && !e->stopping)
		engine_go(e);
}

static void engine_exited(struct engine *e, int s, const struct coord_msg *m)
{
	struct engine_slot *sl = &e->slots[s];
	bool failed = (m->exit_code != 0 && !m->stopped) || m->error[0];

	if (sl->done || !e->go_sent)
		return;
	sl->exit_code = m->exit_code;
	sl->started = m->started;
	sl->ended = m->ended;
	sl->status = m->stopped ? RECORD_CANCELED : failed ? RECORD_FAILED : RECORD_COMPLETED;
	if (failed && e->first_failure < 0 && !e->stopping) {
		e->first_failure = sl->proc.rank;
		if (m->error[0])
			engine_fail(e, "rank %d (node %d, %s): %s", sl->proc.rank, sl->proc.node,
				    sl->host, m->error);
		else
			engine_fail(e, "rank %d (node %d, %s) exited with status %d", sl->proc.rank,
				    sl->proc.node, sl->host, m->exit_code);
		engine_stop(e);
	}
	engine_slot_done(e, s);
}

/* A link ended: its task is gone. */
static void engine_gone(struct engine *e, int c)
{
	int s = e->conns[c].slot;
	struct engine_slot *sl = s >= 0 ? &e->slots[s] : NULL;

	coord_conn_close(&e->conns[c].link);
	if (!sl)
		return;
	sl->conn = -1;
	if (sl->proc.local == 0 && !sl->finished && !e->error[0])
		engine_fail(e, "node %d (%s): its ferry task ended before it cleaned up (look for "
			    "its mounts there)", sl->proc.node, sl->host);
	if (!sl->done && e->go_sent && !e->stopping) {
		sl->status = RECORD_FAILED;
		if (e->first_failure < 0)
			e->first_failure = sl->proc.rank;
		engine_fail(e, "rank %d (node %d, %s): its ferry task ended without a word",
			    sl->proc.rank, sl->proc.node, sl->host);
		engine_stop(e);
	}
	if (!sl->done) {
		if (sl->status == RECORD_RUNNING)
			sl->status = RECORD_CANCELED;
		engine_slot_done(e, s);
	}
}

static void engine_message(struct engine *e, int c, const struct coord_msg *m)
{
	int s = e->conns[c].slot;

	if (s < 0) {
		if (m->type == COORD_HELLO)
			engine_hello(e, c, m);
		else
			coord_conn_close(&e->conns[c].link);
		return;
	}
	if (m->type == COORD_READY)
		engine_ready(e, &e->slots[s], m);
	else if (m->type == COORD_EXITED)
		engine_exited(e, s, m);
	else if (m->type == COORD_FINISHED && e->slots[s].proc.local == 0) {
		e->slots[s].finished = true;
		if (m->error[0])
			engine_fail(e, "node %d (%s): %s", e->slots[s].proc.node, e->slots[s].host,
				    m->error);
	}
}

static void engine_read(struct engine *e, int c)
{
	struct coord_msg m;
	char errbuf[256];
	int rc;

	while (e->conns[c].link.fd >= 0 &&
	       (rc = coord_recv(&e->conns[c].link, e->nslots, 1, &m, errbuf,
				sizeof(errbuf))) != 0) {
		if (rc < 0) {
			if (rc == -EINVAL)
				fprintf(stderr, "ferry run: a task sent what ferry does not send (%s); "
					"its link was closed\n", errbuf);
			engine_gone(e, c);
			return;
		}
		engine_message(e, c, &m);
		coord_msg_free(&m);
	}
}

static void engine_accept(struct engine *e)
{
	struct engine_conn *grown;
	int fd = accept4(e->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (e->nconns >= 2 * e->nslots + 16) { /* more than the tasks would open */
		close(fd);
		return;
	}
	grown = realloc(e->conns, (size_t)(e->nconns + 1) * sizeof(*e->conns));
	if (!grown) {
		close(fd);
		return;
	}
	e->conns = grown;
	e->conns[e->nconns].slot = -1;
	if (coord_conn_init(&e->conns[e->nconns].link, fd) != 0) {
		close(fd);
		return;
	}
	e->nconns++;
}

/* Tasks that never said hello when none can come any more (the engine has ended, or
 * ENGINE_HELLO_SECONDS after the first one) are lost. */
static void engine_check_missing(struct engine *e, int64_t now)
{
	bool late = e->first_hello && now - e->first_hello > ENGINE_HELLO_SECONDS * 1000;

	if (e->pid && !late)
		return;
	for (int s = 0; s < e->nslots; s++) {
		struct engine_slot *sl = &e->slots[s];

		if (!sl->has_proc || sl->hello || sl->done)
			continue;
		if (!e->stopping) {
			if (!e->go_sent)
				e->setup_failed = true;
			engine_fail(e, "rank %d (node %d) never reported: its ferry task did not "
				    "start, or could not reach this host (see the engine's messages "
				    "above)", sl->proc.rank, sl->proc.node);
			engine_stop(e);
		}
		sl->status = RECORD_FAILED;
		engine_slot_done(e, s);
	}
}

static bool engine_open_links(const struct engine *e)
{
	for (int c = 0; c < e->nconns; c++)
		if (e->conns[c].link.fd >= 0)
			return true;
	return false;
}

/* Waits for what happens next and handles it, until the engine has ended and every
 * link is closed. */
static void engine_loop(struct engine *e)
{
	int handled = 0;

	while (e->pid || engine_open_links(e)) {
		struct pollfd *fds = calloc((size_t)e->nconns + 2, sizeof(*fds));
		int64_t now = engine_now_ms();
		int timeout = e->first_hello ? 1000 : -1, n = e->nconns;
		char drain[64];

		if (!fds)
			break;
		fds[0] = (struct pollfd){ .fd = engine_wake[0], .events = POLLIN };
		fds[1] = (struct pollfd){ .fd = e->listen_fd, .events = POLLIN };
		for (int c = 0; c < n; c++)
			fds[c + 2] = (struct pollfd){ .fd = e->conns[c].link.fd, .events = POLLIN };
		if (poll(fds, (nfds_t)n + 2, timeout) > 0) {
			if (fds[0].revents && read(engine_wake[0], drain, sizeof(drain)) < 0) {
				/* the flags and waitpid() say what happened */
			}
			for (int c = 0; c < n; c++)
				if (fds[c + 2].revents)
					engine_read(e, c);
			if (fds[1].revents)
				engine_accept(e);
		}
		free(fds);
		if (engine_signals > handled) {
			if (!handled)
				fprintf(stderr, "ferry run: interrupted: stopping every process "
					"(again to stop the engine at once)\n");
			else if (e->pid)
				kill(-e->pid, SIGTERM);
			handled = engine_signals;
			engine_stop(e);
		}
		if (e->pid && waitpid(e->pid, &e->engine_status, WNOHANG) == e->pid)
			e->pid = 0;
		engine_check_missing(e, now);
	}
}

/* Start ----------------------------------------------------------------------------- */

static int engine_listen(struct engine *e, char *errbuf, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
	socklen_t len = sizeof(sa);

	e->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (e->listen_fd < 0 || bind(e->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(e->listen_fd, 1024) != 0 ||
	    getsockname(e->listen_fd, (struct sockaddr *)&sa, &len) != 0) {
		util_errf(errbuf, errlen, "cannot listen for the tasks: %s", strerror(errno));
		return -errno;
	}
	e->port = ntohs(sa.sin_port);
	return 0;
}

static int engine_token(struct engine *e)
{
	unsigned char bytes[COORD_TOKEN_LEN / 2];
	static const char hex[] = "0123456789abcdef";
	FILE *f = fopen("/dev/urandom", "re");
	bool ok = f && fread(bytes, 1, sizeof(bytes), f) == sizeof(bytes);

	if (f)
		fclose(f);
	if (!ok)
		return -EIO;
	for (size_t i = 0; i < sizeof(bytes); i++) {
		e->token[2 * i] = hex[bytes[i] >> 4];
		e->token[2 * i + 1] = hex[bytes[i] & 15];
	}
	e->token[COORD_TOKEN_LEN] = '\0';
	return 0;
}

/* The hostfile's names: the nodes' names, in the order mpirun fills them. */
static int engine_hosts(struct engine *e, char *errbuf, size_t errlen)
{
	char *text = NULL, why[256];
	size_t len = 0;
	int fd = open(e->opts->hostfile, O_RDONLY | O_CLOEXEC), err;

	if (fd < 0) {
		util_errf(errbuf, errlen, "--hostfile %s: %s", e->opts->hostfile, strerror(errno));
		return -errno;
	}
	err = util_read_fd(fd, ENGINE_HOSTFILE_MAX, &text, &len);
	close(fd);
	if (!err)
		err = layout_parse_hostfile(text, len, &e->hosts, &e->nhosts, why, sizeof(why));
	else
		util_errf(why, sizeof(why), "%s", strerror(-err));
	free(text);
	if (!err && e->nhosts < e->layout.nodes) {
		util_errf(why, sizeof(why), "it names %d hosts, the job asks for %d nodes",
			  e->nhosts, e->layout.nodes);
		err = -EINVAL;
	}
	if (err)
		util_errf(errbuf, errlen, "--hostfile %s: %s", e->opts->hostfile, why);
	return err;
}

/* The engine's command line, into argv (strings in store, freed by the caller). */
struct engine_argv {
	char *argv[64 + 3 * 256];
	int argc;
	char *owned[256];
	int nowned;
};

static void engine_arg(struct engine_argv *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void engine_arg(struct engine_argv *a, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s || a->nowned == (int)(sizeof(a->owned) / sizeof(a->owned[0])) ||
	    a->argc + 1 >= (int)(sizeof(a->argv) / sizeof(a->argv[0]))) {
		free(s);
		return;
	}
	a->owned[a->nowned++] = s;
	a->argv[a->argc++] = s;
	a->argv[a->argc] = NULL;
}

/* mpirun passes to remote hosts only the variables it is told to: ferry's, Azure's and
 * the ones programs need to be found. */
static bool engine_exported(const char *var)
{
	static const char *const prefixes[] = { "FERRY_", "AZURE_", "AZUREML_" };
	static const char *const names[] = { "PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "TMPDIR",
					     "HOME", "XDG_CONFIG_HOME" };
	size_t len = strcspn(var, "=");

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (strncmp(var, prefixes[i], strlen(prefixes[i])) == 0)
			return true;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && strncmp(var, names[i], len) == 0)
			return true;
	return false;
}

static void engine_command(const struct engine *e, const char *self, const char *job,
			   struct engine_argv *a)
{
	extern char **environ;
	const struct layout *l = &e->layout;
	bool mpi = e->job->dist.type == JOB_DIST_MPI;

	if (e->opts->engine == RUN_ENGINE_SLURM) {
		engine_arg(a, "srun");
		engine_arg(a, "--nodes=%d", l->nodes);
		engine_arg(a, "--ntasks-per-node=%d", l->slots);
		engine_arg(a, "--distribution=block");
		engine_arg(a, "--kill-on-bad-exit=0");
		engine_arg(a, "--job-name=ferry-%s", e->id);
		if (mpi)
			engine_arg(a, "--mpi=pmix");
	} else {
		engine_arg(a, "mpirun");
		if (e->opts->hostfile) {
			engine_arg(a, "--hostfile");
			engine_arg(a, "%s", e->opts->hostfile);
		}
		engine_arg(a, "-np");
		engine_arg(a, "%d", l->nodes * l->slots);
		engine_arg(a, "--map-by");
		engine_arg(a, "ppr:%d:node", l->slots);
		engine_arg(a, "--bind-to");
		engine_arg(a, "none");
		engine_arg(a, "--mca");
		engine_arg(a, "orte_abort_on_non_zero_status");
		engine_arg(a, "0");
		for (char **v = environ; *v; v++) {
			if (!engine_exported(*v))
				continue;
			engine_arg(a, "-x");
			engine_arg(a, "%.*s", (int)strcspn(*v, "="), *v);
		}
	}
	engine_arg(a, "%s", self);
	engine_arg(a, "run");
	engine_arg(a, "--task");
	engine_arg(a, "--engine");
	engine_arg(a, "%s", engine_names[e->opts->engine]);
	engine_arg(a, "%s", job);
}

/* The variables the tasks find the coordinator and the run by. */
static int engine_env(const struct engine *e)
{
	char where[LAYOUT_HOST_MAX + 16], host[LAYOUT_HOST_MAX] = "";
	const char *given = getenv("FERRY_COORDINATOR_HOST");
	struct util_buf hosts = { .limit = COORD_LINE_MAX };
	int err = 0;

	if (given && *given)
		util_errf(host, sizeof(host), "%s", given);
	else
		gethostname(host, sizeof(host) - 1);
	util_errf(where, sizeof(where), "%s:%d", host, e->port);
	for (int i = 0; !err && i < e->nhosts; i++) {
		err = util_buf_append(&hosts, ",", i ? 1 : 0);
		if (!err)
			err = util_buf_append(&hosts, e->hosts[i], strlen(e->hosts[i]));
	}
	if (!err && (setenv("FERRY_RUN_ID", e->id, 1) || setenv("FERRY_COORDINATOR", where, 1) ||
		     setenv("FERRY_RUN_TOKEN", e->token, 1) ||
		     (hosts.data && setenv("FERRY_HOSTS", hosts.data, 1))))
		err = -ENOMEM;
	util_buf_free(&hosts);
	return err;
}

/* Starts the engine in a process group of its own (a Ctrl-C at the terminal reaches
 * only ferry run, which stops the tasks in order), its stdin /dev/null. */
static int engine_start(struct engine *e, char *errbuf, size_t errlen)
{
	struct engine_argv a = { .argc = 0 };
	char self[PATH_MAX], job[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int err = 0;

	if (n <= 0 || !realpath(e->opts->job_path, job)) {
		util_errf(errbuf, errlen, "cannot find ferry's own program or the job file");
		return -ENOENT;
	}
	self[n] = '\0';
	err = engine_env(e);
	if (!err)
		engine_command(e, self, job, &a);
	fflush(NULL);
	e->pid = err ? -1 : fork();
	if (e->pid == 0) {
		int null_fd = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		if (null_fd >= 0)
			dup2(null_fd, STDIN_FILENO);
		execvp(a.argv[0], a.argv);
		fprintf(stderr, "ferry run: cannot start %s: %s (is it installed here?)\n",
			a.argv[0], strerror(errno));
		_exit(127);
	}
	if (e->pid > 0)
		setpgid(e->pid, e->pid);
	else
		util_errf(errbuf, errlen, "cannot start %s: %s", a.argc ? a.argv[0] : "the engine",
			  strerror(err ? -err : errno));
	for (int i = 0; i < a.nowned; i++)
		free(a.owned[i]);
	if (e->pid < 0) {
		e->pid = 0;
		return -EIO;
	}
	return 0;
}

/* The job, its layout, the slots and the outputs' places. */
static int engine_init(struct engine *e, char *errbuf, size_t errlen)
{
	int err = job_parse_file(e->opts->job_path, &e->job, errbuf, errlen);

	if (!err)
		err = layout_make(e->job, &e->layout, errbuf, errlen);
	if (!err && e->opts->engine == RUN_ENGINE_MPI && e->opts->hostfile)
		err = engine_hosts(e, errbuf, errlen);
	else if (!err && e->opts->engine == RUN_ENGINE_MPI && e->layout.nodes > 1) {
		util_errf(errbuf, errlen, "the job asks for %d nodes: give them with --hostfile "
			  "FILE", e->layout.nodes);
		err = -EINVAL;
	}
	if (err)
		return err;
	e->nslots = e->layout.nodes * e->layout.slots;
	e->slots = calloc((size_t)e->nslots, sizeof(*e->slots));
	e->node_ready = calloc((size_t)e->layout.nodes, sizeof(*e->node_ready));
	e->out_uris = calloc(e->job->noutputs + 1, sizeof(*e->out_uris));
	if (!e->slots || !e->node_ready || !e->out_uris || stores_new(&e->stores) != 0 ||
	    engine_token(e) != 0 || record_new_id(e->id, sizeof(e->id)) != 0)
		return -ENOMEM;
	for (int s = 0; s < e->nslots; s++) {
		e->slots[s].conn = -1;
		e->slots[s].exit_code = -1;
		e->slots[s].status = RECORD_QUEUED;
		e->slots[s].has_proc = layout_slot(&e->layout, s, &e->slots[s].proc);
		if (e->slots[s].has_proc && e->slots[s].proc.local == 0)
			e->nodes_pending++;
	}
	snprintf(e->prefix, sizeof(e->prefix), "azureml://datastores/%s/paths/runs/%s/",
		 DATASTORE_DEFAULT_NAME, e->id);
	for (size_t i = 0; i < e->job->noutputs; i++) {
		e->out_uris[i] = record_output_uri(e->prefix, &e->job->outputs[i]);
		if (!e->out_uris[i])
			return -ENOMEM;
	}
	return 0;
}

/* ferry run's exit status: the first failure's, 1 for what was not saved or a
 * cancel, 125 for a run that could not start. */
static int engine_exit_status(const struct engine *e, bool canceled)
{
	if (e->setup_failed)
		return RUN_EXIT_SETUP;
	for (int s = 0; e->first_failure >= 0 && s < e->nslots; s++)
		if (e->slots[s].has_proc && e->slots[s].proc.rank == e->first_failure &&
		    e->slots[s].exit_code > 0)
			return e->slots[s].exit_code;
	return e->error[0] || e->record_failed || canceled ? RUN_EXIT_FAILED : 0;
}

static void engine_free(struct engine *e)
{
	for (int c = 0; c < e->nconns; c++)
		coord_conn_close(&e->conns[c].link);
	free(e->conns);
	for (size_t i = 0; e->job && e->out_uris && i < e->job->noutputs; i++)
		free(e->out_uris[i]);
	free(e->out_uris);
	free(e->slots);
	free(e->node_ready);
	layout_hosts_free(e->hosts, e->nhosts);
	if (e->listen_fd >= 0)
		close(e->listen_fd);
	stores_free(e->stores);
	job_free(e->job);
}

int engine_run(const struct run_opts *opts)
{
	struct sigaction sa = { .sa_handler = engine_on_signal };
	struct sigaction sa_child = { .sa_handler = engine_on_signal,
				      .sa_flags = SA_RESTART | SA_NOCLDSTOP };
	struct engine e = { .opts = opts, .listen_fd = -1, .first_failure = -1 };
	char errbuf[1024];
	bool canceled;
	int status = RUN_EXIT_SETUP, err;

	err = engine_init(&e, errbuf, sizeof(errbuf));
	if (err == -ENOMEM)
		util_errf(errbuf, sizeof(errbuf), "out of memory");
	if (err) {
		fprintf(stderr, "ferry run: %s\n", errbuf);
		engine_free(&e);
		return RUN_EXIT_SETUP;
	}
	if (engine_wake[0] < 0 && pipe2(engine_wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		engine_free(&e);
		return RUN_EXIT_SETUP;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGCHLD, &sa_child, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (stores_open_home(e.stores, e.prefix, &e.home) != 0) {
		engine_free(&e);
		return RUN_EXIT_SETUP;
	}
	engine_set_status(&e, RECORD_QUEUED);
	err = engine_listen(&e, errbuf, sizeof(errbuf));
	if (!err)
		err = engine_start(&e, errbuf, sizeof(errbuf));
	if (err) {
		e.setup_failed = true;
		engine_fail(&e, "%s", errbuf);
	} else {
		engine_set_status(&e, RECORD_PREPARING);
		engine_loop(&e);
	}
	if (e.engine_status && !e.error[0] && !engine_signals)
		engine_fail(&e, "%s ended with status %d (see its messages above)",
			    opts->engine == RUN_ENGINE_SLURM ? "srun" : "mpirun",
			    WIFEXITED(e.engine_status) ? WEXITSTATUS(e.engine_status)
						       : 128 + WTERMSIG(e.engine_status));
	if (!e.go_sent && !e.error[0] && !engine_signals)
		e.setup_failed = true;
	canceled = engine_signals && e.first_failure < 0 && !e.setup_failed;
	if (e.status < RECORD_FINALIZING)
		e.times[RECORD_FINALIZING] = 0;
	engine_set_status(&e, canceled ? RECORD_CANCELED
			  : e.error[0] || e.setup_failed ? RECORD_FAILED : RECORD_COMPLETED);
	status = engine_exit_status(&e, canceled);
	engine_free(&e);
	return status;
}
