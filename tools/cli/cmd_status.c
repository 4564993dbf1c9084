#include "tools/cli/cmd_status.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/mount.h"
#include "fs/status.h"
#include "tools/cli/cli.h"

static const char cmd_status_usage[] =
	"usage: ferry status [MOUNTPOINT] [--json | --prometheus]\n";

static const char cmd_status_help[] =
	"What each ferry mount of this user is doing, from its daemon: source, mode, pid,\n"
	"uptime, bytes read and written, requests with retries and errors, the last error,\n"
	"the block cache (memory and disk used of their limits, hits, read-ahead) and the\n"
	"writes waiting to upload. --json prints one JSON array; --prometheus the text\n"
	"exposition format (for node_exporter's textfile collector). Exit 1 when a mount's\n"
	"daemon did not answer.\n";

enum status_format { STATUS_TEXT, STATUS_JSON, STATUS_PROMETHEUS };

/* One answer per mount: the daemon's object, or {mountpoint, source, error}. */
static int status_collect(void *ctx, const struct mount_entry *e)
{
	json_t *all = ctx, *one = NULL;
	char errbuf[512], *text = NULL;

	if (status_query(e->mountpoint, &text, errbuf, sizeof(errbuf)) == 0) {
		one = json_loads(text, 0, NULL);
		if (!json_is_object(one)) {
			json_decref(one);
			one = NULL;
			snprintf(errbuf, sizeof(errbuf), "%s: its daemon's answer is not JSON",
				 e->mountpoint);
		}
	}
	free(text);
	if (!one)
		one = json_pack("{s:s, s:s, s:s}", "mountpoint", e->mountpoint, "source",
				e->source, "error", errbuf);
	return one && json_array_append_new(all, one) == 0 ? 0 : -ENOMEM;
}

/* The entry of the mount at path, when it is a ferry mount. */
struct status_find {
	const char *path;
	json_t *all;
	bool found;
};

static int status_collect_one(void *ctx, const struct mount_entry *e)
{
	struct status_find *find = ctx;

	if (strcmp(e->mountpoint, find->path) != 0)
		return 0;
	find->found = true;
	return status_collect(find->all, e);
}

static json_int_t status_int(json_t *obj, const char *a, const char *b)
{
	json_t *v = json_object_get(obj, a);

	if (b)
		v = json_object_get(v, b);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

static const char *status_str(json_t *obj, const char *name)
{
	const char *s = json_string_value(json_object_get(obj, name));

	return s ? s : "";
}

/* "1.5 GiB", "640 KiB", "12 B" */
static void status_size(json_int_t n, char *out, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%lld B", (long long)n);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
}

/* "2026-12-04 08:00:00 UTC" */
static void status_time(json_int_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void status_print_text(json_t *m)
{
	char a[32], b[32], c[32], d[32], when[64];
	json_int_t hits = status_int(m, "cache", "hits"), misses = status_int(m, "cache", "misses");
	json_int_t up = status_int(m, "uptime_s", NULL);
	json_t *last = json_object_get(m, "last_error"), *req = json_object_get(m, "requests");

	printf("%s (%s) %s\n", status_str(m, "mountpoint"), status_str(m, "mode"),
	       status_str(m, "source"));
	if (json_object_get(m, "error")) {
		printf("  no answer: %s\n", status_str(m, "error"));
		return;
	}
	printf("  daemon: pid %lld, up %lldh%02lldm%02llds\n", (long long)status_int(m, "pid", NULL),
	       (long long)(up / 3600), (long long)(up / 60 % 60), (long long)(up % 60));
	status_size(status_int(m, "read_bytes", NULL), a, sizeof(a));
	status_size(status_int(m, "written_bytes", NULL), b, sizeof(b));
	status_size(status_int(m, "downloaded_bytes", NULL), c, sizeof(c));
	status_size(status_int(m, "uploaded_bytes", NULL), d, sizeof(d));
	printf("  read %s, written %s; downloaded %s, uploaded %s\n", a, b, c, d);
	printf("  requests: %lld GET, %lld HEAD, %lld PUT, %lld DELETE, %lld other; %lld "
	       "retries, %lld errors\n",
	       (long long)status_int(req, "GET", NULL), (long long)status_int(req, "HEAD", NULL),
	       (long long)status_int(req, "PUT", NULL), (long long)status_int(req, "DELETE", NULL),
	       (long long)status_int(req, "other", NULL), (long long)status_int(m, "retries", NULL),
	       (long long)status_int(m, "errors", NULL));
	status_size(status_int(m, "cache", "mem_used"), a, sizeof(a));
	status_size(status_int(m, "cache", "mem_limit"), b, sizeof(b));
	status_size(status_int(m, "cache", "disk_used"), c, sizeof(c));
	status_size(status_int(m, "cache", "disk_limit"), d, sizeof(d));
	printf("  cache: memory %s of %s, ", a, b);
	if (status_int(m, "cache", "disk_limit"))
		printf("disk %s of %s", c, d);
	else
		printf("no disk tier");
	printf("; %lld of %lld block lookups hit (%.0f%%); read-ahead %lld blocks, %lld "
	       "unread\n",
	       (long long)hits, (long long)(hits + misses),
	       hits + misses ? 100.0 * (double)hits / (double)(hits + misses) : 0.0,
	       (long long)status_int(m, "cache", "prefetched"),
	       (long long)status_int(m, "cache", "prefetch_unread"));
	status_size(status_int(m, "staging", "bytes"), a, sizeof(a));
	status_size(status_int(m, "staging", "uploading_bytes"), b, sizeof(b));
	printf("  writes: %s staged, %s uploading, %lld files open for writing\n", a, b,
	       (long long)status_int(m, "staging", "files_writing"));
	if (status_int(m, "token_expiry", NULL)) {
		status_time(status_int(m, "token_expiry", NULL), when, sizeof(when));
		printf("  token: expires %s\n", when);
	}
	if (json_is_object(last)) {
		status_time(status_int(last, "time", NULL), when, sizeof(when));
		printf("  last error: %s: %s\n", when, status_str(last, "message"));
	} else {
		printf("  last error: none\n");
	}
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void status_label(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(out, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

struct status_metric {
	const char *name, *type, *help;
	const char *member, *sub; /* where the value is */
};

static const struct status_metric status_metrics[] = {
	{ "ferry_uptime_seconds", "gauge", "Seconds since the mount's daemon started.", "uptime_s",
	  NULL },
	{ "ferry_read_bytes_total", "counter", "Bytes returned by read() on the mount.",
	  "read_bytes", NULL },
	{ "ferry_written_bytes_total", "counter", "Bytes taken by write() on the mount.",
	  "written_bytes", NULL },
	{ "ferry_downloaded_bytes_total", "counter", "Body bytes of the datastore's answers.",
	  "downloaded_bytes", NULL },
	{ "ferry_uploaded_bytes_total", "counter", "Body bytes sent, retries included.",
	  "uploaded_bytes", NULL },
	{ "ferry_request_retries_total", "counter", "Request attempts after the first.",
	  "retries", NULL },
	{ "ferry_request_errors_total", "counter",
	  "Requests that failed: no answer, or 401, 403, 429, 5xx.", "errors", NULL },
	{ "ferry_cache_memory_bytes", "gauge", "Block memory held.", "cache", "mem_used" },
	{ "ferry_cache_memory_limit_bytes", "gauge", "cache_mem.", "cache", "mem_limit" },
	{ "ferry_cache_disk_bytes", "gauge", "Bytes of disk cache files.", "cache", "disk_used" },
	{ "ferry_cache_disk_limit_bytes", "gauge", "cache_size; 0 without cache_dir.", "cache",
	  "disk_limit" },
	{ "ferry_cache_hits_total", "counter", "Blocks served from memory or disk.", "cache",
	  "hits" },
	{ "ferry_cache_misses_total", "counter", "Blocks and direct reads fetched.", "cache",
	  "misses" },
	{ "ferry_readahead_blocks_total", "counter", "Read-ahead blocks queued.", "cache",
	  "prefetched" },
	{ "ferry_readahead_unread_blocks_total", "counter",
	  "Read-ahead blocks dropped before anyone read them.", "cache", "prefetch_unread" },
	{ "ferry_staged_bytes", "gauge", "Written bytes held in staging files.", "staging",
	  "bytes" },
	{ "ferry_uploading_bytes", "gauge", "Staged bytes in an upload now.", "staging",
	  "uploading_bytes" },
	{ "ferry_files_writing", "gauge", "Files open for writing.", "staging", "files_writing" },
};

static void status_prom_labels(FILE *out, json_t *m)
{
	fputs("{mountpoint=\"", out);
	status_label(out, status_str(m, "mountpoint"));
	fputs("\",source=\"", out);
	status_label(out, status_str(m, "source"));
	fputs("\"", out);
}

static void status_print_prometheus(json_t *all)
{
	size_t i;
	json_t *m;

	printf("# HELP ferry_up Whether the mount's daemon answered.\n# TYPE ferry_up gauge\n");
	json_array_foreach(all, i, m) {
		printf("ferry_up");
		status_prom_labels(stdout, m);
		printf(",mode=\"%s\"} %d\n", status_str(m, "mode"), !json_object_get(m, "error"));
	}
	for (size_t k = 0; k < sizeof(status_metrics) / sizeof(status_metrics[0]); k++) {
		const struct status_metric *sm = &status_metrics[k];

		printf("# HELP %s %s\n# TYPE %s %s\n", sm->name, sm->help, sm->name, sm->type);
		json_array_foreach(all, i, m) {
			if (json_object_get(m, "error"))
				continue;
			printf("%s", sm->name);
			status_prom_labels(stdout, m);
			printf("} %lld\n", (long long)status_int(m, sm->member, sm->sub));
		}
	}
	printf("# HELP ferry_requests_total Requests to the datastore, by method.\n"
	       "# TYPE ferry_requests_total counter\n");
	json_array_foreach(all, i, m) {
		const char *method;
		json_t *n;

		json_object_foreach(json_object_get(m, "requests"), method, n) {
			printf("ferry_requests_total");
			status_prom_labels(stdout, m);
			printf(",method=\"%s\"} %lld\n", method, (long long)json_integer_value(n));
		}
	}
	printf("# HELP ferry_token_expiry_timestamp_seconds When the bearer token the mount "
	       "uses stops working.\n# TYPE ferry_token_expiry_timestamp_seconds gauge\n");
	json_array_foreach(all, i, m) {
		if (!status_int(m, "token_expiry", NULL))
			continue;
		printf("ferry_token_expiry_timestamp_seconds");
		status_prom_labels(stdout, m);
		printf("} %lld\n", (long long)status_int(m, "token_expiry", NULL));
	}
	printf("# HELP ferry_last_error_timestamp_seconds When the daemon last logged an error "
	       "(0: never).\n# TYPE ferry_last_error_timestamp_seconds gauge\n");
	json_array_foreach(all, i, m) {
		if (json_object_get(m, "error"))
			continue;
		printf("ferry_last_error_timestamp_seconds");
		status_prom_labels(stdout, m);
		printf("} %lld\n", (long long)status_int(m, "last_error", "time"));
	}
}

int cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum status_format format = STATUS_TEXT;
	json_t *all = json_array(), *m;
	int opt, err, status = 0;
	size_t i;

	cli_getopt_reset();
	while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			format = STATUS_JSON;
			break;
		case 'p':
			format = STATUS_PROMETHEUS;
			break;
		case 'h':
			json_decref(all);
			return cli_help(cmd_status_usage, cmd_status_help);
		default:
			json_decref(all);
			return cli_bad_option("status", opt, argv, longopts, cmd_status_usage);
		}
	}
	if (argc - optind > 1) {
		json_decref(all);
		return cli_usage_error("status", cmd_status_usage, "give at most one MOUNTPOINT");
	}
	if (argc - optind == 1) {
		char path[PATH_MAX];
		struct status_find find = { .path = path, .all = all };

		err = mount_canonical(argv[optind], path, sizeof(path));
		if (!err)
			err = mount_list(status_collect_one, &find);
		if (!err && !find.found) {
			fprintf(stderr, "ferry status: %s is not a ferry mount\n", argv[optind]);
			json_decref(all);
			return CLI_EXIT_FAILED;
		}
	} else {
		err = mount_list(status_collect, all);
	}
	if (err) {
		fprintf(stderr, "ferry status: cannot read the mounts: %s\n", strerror(-err));
		json_decref(all);
		return CLI_EXIT_FAILED;
	}
	json_array_foreach(all, i, m) {
		if (json_object_get(m, "error")) {
			fprintf(stderr, "ferry status: %s\n", status_str(m, "error"));
			status = CLI_EXIT_FAILED;
		}
	}
	if (format == STATUS_JSON) {
		json_dumpf(all, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else if (format == STATUS_PROMETHEUS) {
		status_print_prometheus(all);
	} else {
		json_array_foreach(all, i, m)
			status_print_text(m);
	}
	json_decref(all);
	return status;
}
