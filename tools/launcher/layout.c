#include "tools/launcher/layout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/base/util.h"
#include "tools/launcher/record.h"

int layout_make(const struct job *job, struct layout *out, char *errbuf, size_t errlen)
{
	const struct job_dist *d = &job->dist;
	long nodes = d->node_count > 0 ? d->node_count : 1;
	long procs, slots;

	*out = (struct layout){ .type = d->type, .nodes = (int)nodes };
	if (d->type == JOB_DIST_TENSORFLOW) {
		procs = d->worker_count + d->parameter_server_count;
		slots = (procs + nodes - 1) / nodes;
		out->workers = (int)d->worker_count;
		out->ps = (int)d->parameter_server_count;
	} else {
		slots = d->process_count > 0 ? d->process_count : 1;
		procs = nodes * slots;
	}
	if (procs < 1 || procs > LAYOUT_PROCS_MAX || nodes * slots > LAYOUT_PROCS_MAX) {
		util_errf(errbuf, errlen, "%ld processes on %ld nodes: at most %d processes",
			  procs, nodes, LAYOUT_PROCS_MAX);
		return -EINVAL;
	}
	out->slots = (int)slots;
	out->procs = (int)procs;
	return 0;
}

void layout_rank(const struct layout *l, int rank, struct layout_proc *out)
{
	*out = (struct layout_proc){ .rank = rank, .index = rank };
	if (l->type != JOB_DIST_TENSORFLOW) {
		out->node = rank / l->slots;
		out->local = rank % l->slots;
		return;
	}
	out->node = rank % l->nodes;
	out->local = rank / l->nodes;
	if (rank < l->workers) {
		out->role = LAYOUT_WORKER;
		out->port = LAYOUT_WORKER_PORT + 2 * (rank / l->nodes);
	} else {
		out->role = LAYOUT_PS;
		out->index = rank - l->workers;
		out->port = LAYOUT_PS_PORT + 2 * (out->index / l->nodes);
	}
}

bool layout_slot(const struct layout *l, int slot, struct layout_proc *out)
{
	int node = slot / l->slots, local = slot % l->slots;
	int rank = l->type == JOB_DIST_TENSORFLOW ? local * l->nodes + node : slot;

	if (slot < 0 || node >= l->nodes || rank >= l->procs)
		return false;
	layout_rank(l, rank, out);
	return true;
}

int layout_node_procs(const struct layout *l, int node)
{
	struct layout_proc p;
	int n = 0;

	for (int local = 0; local < l->slots; local++)
		n += layout_slot(l, node * l->slots + local, &p);
	return n;
}

const char *layout_role_name(enum layout_role role)
{
	return role == LAYOUT_WORKER ? "worker" : role == LAYOUT_PS ? "ps" : NULL;
}

void layout_hosts_free(char **hosts, int count)
{
	for (int i = 0; hosts && i < count; i++)
		free(hosts[i]);
	free(hosts);
}

/* Adds the first word of the line [s, end) to *hosts, if it has one. */
static int layout_host_line(const char *s, const char *end, unsigned line, char ***hosts,
			    int *count, char *errbuf, size_t errlen)
{
	const char *hash = memchr(s, '#', (size_t)(end - s)), *word;
	char name[LAYOUT_HOST_MAX + 1];
	char **grown;
	size_t len;

	if (hash)
		end = hash;
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
		s++;
	for (word = s; s < end && *s != ' ' && *s != '\t' && *s != '\r'; s++)
		;
	len = (size_t)(s - word);
	if (!len)
		return 0;
	if (len < sizeof(name)) {
		memcpy(name, word, len);
		name[len] = '\0';
	}
	if (len >= sizeof(name) || !record_host_valid(name)) {
		util_errf(errbuf, errlen, "line %u: not a host name", line);
		return -EINVAL;
	}
	if (*count >= LAYOUT_PROCS_MAX) {
		util_errf(errbuf, errlen, "more than %d hosts", LAYOUT_PROCS_MAX);
		return -EINVAL;
	}
	grown = realloc(*hosts, (size_t)(*count + 1) * sizeof(**hosts));
	if (!grown)
		return -ENOMEM;
	*hosts = grown;
	grown[*count] = strdup(name);
	if (!grown[*count])
		return -ENOMEM;
	(*count)++;
	return 0;
}

int layout_parse_hostfile(const char *text, size_t len, char ***out, int *count,
			  char *errbuf, size_t errlen)
{
	const char *s = text, *end = text + len;
	unsigned line = 1;
	int err = 0;

	*out = NULL;
	*count = 0;
	while (!err && s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));

		err = layout_host_line(s, nl ? nl : end, line++, out, count, errbuf, errlen);
		s = nl ? nl + 1 : end;
	}
	if (!err && !*count) {
		util_errf(errbuf, errlen, "no host in it");
		err = -EINVAL;
	}
	if (err) {
		layout_hosts_free(*out, *count);
		*out = NULL;
		*count = 0;
	}
	return err;
}
