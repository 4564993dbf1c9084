/* Tests of layout.c (where each process of a distributed job runs), coord.c (the
 * coordinator's messages) and envlist.c (a child's environment): no network. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/launcher/coord.h"
#include "tools/launcher/envlist.h"
#include "tools/launcher/layout.h"
#include "unit.h"

static struct job job_of(enum job_dist_type type, long nodes, long procs, long workers,
			 long ps)
{
	struct job job = { .command = "true" };

	job.dist = (struct job_dist){ .type = type, .node_count = nodes, .process_count = procs,
				      .worker_count = workers, .parameter_server_count = ps };
	return job;
}

static void test_pytorch_ranks_fill_nodes_in_blocks(void)
{
	struct job job = job_of(JOB_DIST_PYTORCH, 2, 2, 0, 0);
	struct layout l;
	struct layout_proc p;
	char err[128];

	CHECK(layout_make(&job, &l, err, sizeof(err)) == 0);
	CHECK(l.nodes == 2 && l.slots == 2 && l.procs == 4);
	for (int s = 0; s < 4; s++) {
		CHECK(layout_slot(&l, s, &p));
		CHECK(p.rank == s && p.node == s / 2 && p.local == s % 2);
		CHECK(p.role == LAYOUT_PROCESS && p.port == 0);
	}
	CHECK(!layout_slot(&l, 4, &p));
	CHECK(layout_node_procs(&l, 0) == 2 && layout_node_procs(&l, 1) == 2);
}

/* Batch AI's layout: worker i on node i % N, ps j after the workers, round the nodes. */
static void test_tensorflow_workers_and_ps_spread_over_nodes(void)
{
	struct job job = job_of(JOB_DIST_TENSORFLOW, 2, 1, 2, 1);
	struct layout l;
	struct layout_proc p;
	char err[128];

	CHECK(layout_make(&job, &l, err, sizeof(err)) == 0);
	CHECK(l.slots == 2 && l.procs == 3);
	CHECK(layout_slot(&l, 0, &p));
	CHECK(p.rank == 0 && p.role == LAYOUT_WORKER && p.index == 0 && p.node == 0);
	CHECK(p.port == LAYOUT_WORKER_PORT);
	CHECK(layout_slot(&l, 1, &p));
	CHECK(p.rank == 2 && p.role == LAYOUT_PS && p.index == 0 && p.node == 0);
	CHECK(p.port == LAYOUT_PS_PORT && p.local == 1);
	CHECK(layout_slot(&l, 2, &p));
	CHECK(p.rank == 1 && p.role == LAYOUT_WORKER && p.index == 1 && p.node == 1);
	CHECK(p.port == LAYOUT_WORKER_PORT);
	CHECK(!layout_slot(&l, 3, &p)); /* idle */
	CHECK(layout_node_procs(&l, 0) == 2 && layout_node_procs(&l, 1) == 1);
	/* a second worker on a node gets the next port */
	job = job_of(JOB_DIST_TENSORFLOW, 1, 1, 2, 2);
	CHECK(layout_make(&job, &l, err, sizeof(err)) == 0);
	layout_rank(&l, 1, &p);
	CHECK(p.port == LAYOUT_WORKER_PORT + 2);
	layout_rank(&l, 3, &p);
	CHECK(p.role == LAYOUT_PS && p.index == 1 && p.port == LAYOUT_PS_PORT + 2);
}

static void test_too_many_processes_are_refused(void)
{
	struct job job = job_of(JOB_DIST_MPI, 4096, 1024, 0, 0);
	struct layout l;
	char err[128];

	CHECK(layout_make(&job, &l, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "at most") != NULL);
}

static void test_hostfile_names_come_in_order(void)
{
	const char text[] = "# two nodes\nnode1 slots=2\n\n  node2\tslots=2 # the second\n";
	char **hosts, err[128];
	int n;

	CHECK(layout_parse_hostfile(text, strlen(text), &hosts, &n, err, sizeof(err)) == 0);
	CHECK(n == 2);
	if (n == 2) {
		CHECK_STR(hosts[0], "node1");
		CHECK_STR(hosts[1], "node2");
	}
	layout_hosts_free(hosts, n);
	CHECK(layout_parse_hostfile("a\n../b slots=1\n", 15, &hosts, &n, err, sizeof(err)) ==
	      -EINVAL);
	CHECK(strstr(err, "line 2") != NULL);
	CHECK(layout_parse_hostfile("# none\n", 7, &hosts, &n, err, sizeof(err)) == -EINVAL);
}

static void test_messages_round_trip(void)
{
	char *hosts[] = { "n1", "n2" };
	struct coord_msg go = { .type = COORD_GO, .hosts = hosts, .nhosts = 2,
				.master_port = 29500 };
	struct coord_msg exited = { .type = COORD_EXITED, .exit_code = 3, .started = 1796000000,
				    .ended = 1796000003 };
	struct coord_msg got;
	char *line, err[256];
	size_t len;

	CHECK(coord_format(&go, &line, &len) == 0);
	CHECK(coord_parse(line, len - 1, 4, 2, &got, err, sizeof(err)) == 0);
	CHECK(got.type == COORD_GO && got.nhosts == 2 && got.master_port == 29500);
	if (got.nhosts == 2)
		CHECK_STR(got.hosts[1], "n2");
	coord_msg_free(&got);
	free(line);
	CHECK(coord_format(&exited, &line, &len) == 0);
	CHECK(coord_parse(line, len - 1, 4, 2, &got, err, sizeof(err)) == 0);
	CHECK(got.type == COORD_EXITED && got.exit_code == 3 && !got.stopped);
	CHECK(got.ended == 1796000003 && !got.error[0]);
	free(line);
}

static void test_bad_messages_are_refused(void)
{
	static const char *const bad[] = {
		"{\"type\":\"hello\",\"token\":\"x\",\"slot\":1,\"host\":\"n1\"}",
		"{\"type\":\"hello\",\"token\":\"0123456789abcdef0123456789abcdef\",\"slot\":9,"
		"\"host\":\"n1\"}",
		"{\"type\":\"go\",\"hosts\":[\"n1\",\"../etc\"],\"master_port\":1}",
		"{\"type\":\"go\",\"hosts\":[\"a\",\"b\",\"c\"],\"master_port\":1}",
		"{\"type\":\"exited\",\"exit_code\":256,\"stopped\":false,\"started\":0,\"ended\":0,"
		"\"error\":null}",
		"{\"type\":\"finished\",\"error\":\"a\\u001b[2Jb\"}",
		"{\"type\":\"reboot\"}",
		"[1]",
		"{\"type\":\"stop\",\"type\":\"go\"}",
	};
	struct coord_msg m;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (coord_parse(bad[i], strlen(bad[i]), 4, 2, &m, err, sizeof(err)) != -EINVAL) {
			fprintf(stderr, "read: %s\n", bad[i]);
			CHECK(false);
		}
}

static void test_tokens_compare_whole(void)
{
	const char *t = "0123456789abcdef0123456789abcdef";

	CHECK(coord_token_ok(t, t));
	CHECK(!coord_token_ok("0123456789abcdef0123456789abcdeF", t));
	CHECK(!coord_token_ok("0123456789abcdef", t));
}

/* A later value replaces an earlier one of the same name, whatever its source; a name
 * that is a prefix of another is another name. */
static void test_envlist_replaces_by_whole_name(void)
{
	char *base[] = { "PATH=/bin", "RANK=9", "RANKS=x", "junk", NULL };
	struct envlist l;

	envlist_init(&l, base);
	envlist_set(&l, "RANK", "%d", 3);
	envlist_put(&l, "PATH=/usr/bin");
	envlist_put(&l, "NEW=a=b");
	CHECK(l.err == 0 && l.n == 4);
	CHECK(l.vars[4] == NULL);
	CHECK(strcmp(l.vars[0], "PATH=/usr/bin") == 0);
	CHECK(strcmp(l.vars[1], "RANK=3") == 0);
	CHECK(strcmp(l.vars[2], "RANKS=x") == 0);
	CHECK(strcmp(l.vars[3], "NEW=a=b") == 0);
	envlist_free(&l);
	CHECK(l.vars == NULL && l.n == 0);
}

int main(void)
{
	RUN(test_pytorch_ranks_fill_nodes_in_blocks);
	RUN(test_tensorflow_workers_and_ps_spread_over_nodes);
	RUN(test_too_many_processes_are_refused);
	RUN(test_hostfile_names_come_in_order);
	RUN(test_messages_round_trip);
	RUN(test_bad_messages_are_refused);
	RUN(test_tokens_compare_whole);
	RUN(test_envlist_replaces_by_whole_name);
	return unit_done();
}
