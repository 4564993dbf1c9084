#include "tools/launcher/record.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/base/util.h"
#include "cache/store/datastore.h"
#include "tools/launcher/job/jobfile.h"

#define RECORD_LINE_MAX 4096           /* one-line fields: names, node, job file */
#define RECORD_ERROR_MAX (64 * 1024)   /* the run's error */
#define RECORD_TIME_MIN 946684800      /* 2000-01-01: no run is older */
#define RECORD_TIME_SKEW (24 * 3600)   /* clocks of other machines may run ahead */

static const char *const record_status_names[RECORD_NSTATUS] = {
	"Queued", "Preparing", "Running", "Finalizing", "Completed", "Failed", "Canceled",
};

const char *record_status_name(enum record_status status)
{
	return (unsigned)status < RECORD_NSTATUS ? record_status_names[status] : "?";
}

bool record_status_final(enum record_status status)
{
	return status == RECORD_COMPLETED || status == RECORD_FAILED || status == RECORD_CANCELED;
}

bool record_id_valid(const char *id)
{
	size_t len = strlen(id);

	if (len == 0 || len >= RECORD_ID_MAX || id[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

int record_new_id(char *out, size_t outlen)
{
	unsigned char random[4];
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	FILE *f = fopen("/dev/urandom", "re");

	if (!f || fread(random, 1, sizeof(random), f) != sizeof(random)) {
		if (f)
			fclose(f);
		return -EIO;
	}
	fclose(f);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", &tm);
	snprintf(out, outlen, "run_%s_%02x%02x%02x%02x", stamp, random[0], random[1], random[2],
		 random[3]);
	return 0;
}

char *record_output_uri(const char *prefix, const struct job_output *out)
{
	char *uri;

	if (out->path)
		return strdup(out->path);
	return asprintf(&uri, "%soutputs/%s/", prefix, out->name) < 0 ? NULL : uri;
}

/* Writing --------------------------------------------------------------------------- */

/* A JSON string of s (null for NULL); bytes that are not UTF-8 become '?'. */
static json_t *record_jstring(const char *s)
{
	json_t *j;
	char *copy;

	if (!s)
		return json_null();
	j = json_string(s);
	if (j)
		return j;
	copy = strdup(s);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

static json_t *record_jtime(time_t t)
{
	char buf[32];
	struct tm tm;

	if (!t || !gmtime_r(&t, &tm))
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static json_t *record_jdata(const struct record_data *d, size_t n)
{
	json_t *list = json_array();

	for (size_t i = 0; list && i < n; i++) {
		json_t *item = json_object();

		if (!item || json_array_append_new(list, item) != 0 ||
		    json_object_set_new(item, "name", record_jstring(d[i].name)) != 0 ||
		    json_object_set_new(item, "mode", record_jstring(d[i].mode)) != 0 ||
		    json_object_set_new(item, "path", record_jstring(d[i].path)) != 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

static json_t *record_jtimes(const struct run_record *rec)
{
	json_t *times = json_object();

	for (int s = 0; times && s < RECORD_NSTATUS; s++) {
		if (json_object_set_new(times, record_status_names[s], record_jtime(rec->times[s]))) {
			json_decref(times);
			return NULL;
		}
	}
	return times;
}

static json_t *record_jprocs(const struct record_proc *p, size_t n)
{
	json_t *list = json_array();

	for (size_t i = 0; list && i < n; i++) {
		json_t *item = json_pack("{s:i, s:i, s:o, s:i, s:o, s:s, s:o, s:o, s:o}",
					 "rank", p[i].rank, "node", p[i].node, "host",
					 record_jstring(p[i].host), "local_rank", p[i].local_rank,
					 "role", record_jstring(p[i].role), "status",
					 record_status_name(p[i].status), "exit_code",
					 p[i].exit_code >= 0 ? json_integer(p[i].exit_code)
							     : json_null(),
					 "started", record_jtime(p[i].started), "ended",
					 record_jtime(p[i].ended));

		if (!item || json_array_append_new(list, item) != 0) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

int record_to_json(const struct run_record *rec, char **out, size_t *len)
{
	json_t *root = json_object();
	int bad = !root;

	bad = bad || json_object_set_new(root, "id", record_jstring(rec->id));
	bad = bad || json_object_set_new(root, "status",
					 json_string(record_status_name(rec->status)));
	bad = bad || json_object_set_new(root, "experiment_name",
					 record_jstring(rec->experiment_name));
	bad = bad || json_object_set_new(root, "display_name", record_jstring(rec->display_name));
	bad = bad || json_object_set_new(root, "kind", record_jstring(rec->kind));
	bad = bad || json_object_set_new(root, "job_file", record_jstring(rec->job_file));
	bad = bad || json_object_set_new(root, "command", record_jstring(rec->command));
	bad = bad || json_object_set_new(root, "node", record_jstring(rec->node));
	bad = bad || json_object_set_new(root, "exit_code", rec->exit_code >= 0
					 ? json_integer(rec->exit_code) : json_null());
	bad = bad || json_object_set_new(root, "error", record_jstring(rec->error));
	bad = bad || json_object_set_new(root, "times", record_jtimes(rec));
	bad = bad || json_object_set_new(root, "inputs", record_jdata(rec->inputs, rec->ninputs));
	bad = bad || json_object_set_new(root, "outputs",
					 record_jdata(rec->outputs, rec->noutputs));
	if (rec->engine) { /* absent from records of older versions */
		bad = bad || json_object_set_new(root, "engine", record_jstring(rec->engine));
		bad = bad || json_object_set_new(root, "distribution",
						 record_jstring(rec->distribution));
		bad = bad || json_object_set_new(root, "node_count",
						 json_integer(rec->node_count > 0 ? rec->node_count
										  : 1));
		bad = bad || json_object_set_new(root, "processes",
						 record_jprocs(rec->procs, rec->nprocs));
	}
	*out = bad ? NULL : json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (!*out)
		return -ENOMEM;
	*len = strlen(*out);
	return 0;
}

/* Reading --------------------------------------------------------------------------- */

/* The bytes no field may hold: C0 and C1 controls, DEL, and the bidirectional
 * overrides and isolates that make text print other than it reads. */
static bool record_text_ok(const char *s, size_t len, enum record_text kind)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < len; i++) {
		if (u[i] < 0x20 && !(kind == RECORD_LINES && (u[i] == '\n' || u[i] == '\t')))
			return false;
		if (u[i] == 0x7f || (u[i] == 0xc2 && i + 1 < len && u[i + 1] >= 0x80 &&
				     u[i + 1] <= 0x9f))
			return false;
		if (u[i] == 0xe2 && i + 2 < len &&
		    ((u[i + 1] == 0x80 && u[i + 2] >= 0xaa && u[i + 2] <= 0xae) ||
		     (u[i + 1] == 0x81 && u[i + 2] >= 0xa6 && u[i + 2] <= 0xa9)))
			return false;
	}
	return true;
}

int record_string(const json_t *obj, const char *key, const char *where,
			 size_t max, enum record_text kind, bool nullable, const char **out,
			 char *errbuf, size_t errlen)
{
	const json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v) {
		util_errf(errbuf, errlen, "field '%s%s' is missing", where, key);
		return -EINVAL;
	}
	if (json_is_null(v) && nullable)
		return 0;
	if (!json_is_string(v)) {
		util_errf(errbuf, errlen, "field '%s%s' is not a string", where, key);
		return -EINVAL;
	}
	if (json_string_length(v) > max) {
		util_errf(errbuf, errlen, "field '%s%s' is longer than %zu bytes", where, key, max);
		return -EINVAL;
	}
	if (!record_text_ok(json_string_value(v), json_string_length(v), kind)) {
		util_errf(errbuf, errlen, "field '%s%s' holds control characters", where, key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

/* "2026-12-03T22:45:05Z" -> seconds; 0 for null. Times before 2000 or more than a day
 * ahead of this clock are refused. */
static int record_time(const json_t *times, const char *where, const char *key, time_t *out,
		       char *errbuf, size_t errlen)
{
	const char *s;
	struct tm tm = { 0 };
	char *end;
	int err = record_string(times, key, where, 32, RECORD_ONE_LINE, true, &s, errbuf,
				errlen);

	*out = 0;
	if (err || !s)
		return err;
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end || strlen(s) != 20) {
		util_errf(errbuf, errlen, "field '%s%s' is not a time like 2026-01-31T12:00:00Z",
			  where, key);
		return -EINVAL;
	}
	*out = timegm(&tm);
	if (*out < RECORD_TIME_MIN || *out > time(NULL) + RECORD_TIME_SKEW) {
		util_errf(errbuf, errlen, "field '%s%s' is not a time a run can have", where, key);
		return -EINVAL;
	}
	return 0;
}

/* The times: the current status's is set, Queued too, the others in order. */
static int record_read_times(const json_t *root, struct run_record *rec, char *errbuf,
			     size_t errlen)
{
	const json_t *times = json_object_get(root, "times");
	time_t last = 0;
	int finals = 0;

	if (!json_is_object(times)) {
		util_errf(errbuf, errlen, "field 'times' is %s", times ? "not an object" : "missing");
		return -EINVAL;
	}
	for (int s = 0; s < RECORD_NSTATUS; s++) {
		int err = record_time(times, "times.", record_status_names[s], &rec->times[s],
				      errbuf, errlen);

		if (err)
			return err;
		if (!rec->times[s])
			continue;
		if (rec->times[s] < last || (record_status_final(s) && ++finals > 1)) {
			util_errf(errbuf, errlen, "field 'times.%s' is out of order",
				  record_status_names[s]);
			return -EINVAL;
		}
		if (!record_status_final(s))
			last = rec->times[s];
	}
	if (!rec->times[RECORD_QUEUED] || !rec->times[rec->status]) {
		util_errf(errbuf, errlen, "field 'times.%s' is null",
			  record_status_names[rec->times[RECORD_QUEUED] ? rec->status : RECORD_QUEUED]);
		return -EINVAL;
	}
	return 0;
}

static int record_read_status(const json_t *obj, const char *where,
			      enum record_status *out, char *errbuf, size_t errlen)
{
	const char *s;
	int err = record_string(obj, "status", where, 32, RECORD_ONE_LINE, false, &s, errbuf,
				errlen);

	if (err)
		return err;
	for (int i = 0; i < RECORD_NSTATUS; i++) {
		if (strcmp(s, record_status_names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	util_errf(errbuf, errlen, "field '%sstatus' is not one of Queued, Preparing, Running, "
		  "Finalizing, Completed, Failed, Canceled", where);
	return -EINVAL;
}

int record_int(const json_t *obj, const char *key, const char *where, long long min,
	       long long max, bool nullable, long long *out, char *errbuf, size_t errlen)
{
	const json_t *v = json_object_get(obj, key);

	*out = -1;
	if (nullable && json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		if (!v)
			util_errf(errbuf, errlen, "field '%s%s' is missing", where, key);
		else
			util_errf(errbuf, errlen, "field '%s%s' is not %san integer from %lld to %lld",
				  where, key, nullable ? "null or " : "", min, max);
		return -EINVAL;
	}
	*out = json_integer_value(v);
	return 0;
}

static int record_read_exit_code(const json_t *root, struct run_record *rec, char *errbuf,
				 size_t errlen)
{
	long long code;
	int err = record_int(root, "exit_code", "", 0, 255, true, &code, errbuf, errlen);

	rec->exit_code = (int)code;
	return err;
}

int record_path_in(const struct url_container *store, const char *uri, char *out,
		   size_t outlen)
{
	struct datastore_target *t = malloc(sizeof(*t));
	char full[2 * DATASTORE_PATH_MAX], errbuf[256];
	size_t plen = strlen(store->prefix);
	int err = t ? datastore_resolve(uri, t, errbuf, sizeof(errbuf)) : -ENOMEM;

	if (!err && (strcmp(t->url.scheme, store->scheme) != 0 ||
		     strcasecmp(t->url.host, store->host) != 0 || t->url.port != store->port ||
		     strcmp(t->url.account, store->account) != 0 ||
		     strcmp(t->url.container, store->container) != 0))
		err = -EXDEV;
	if (!err)
		err = util_path_join(full, sizeof(full), t->url.prefix, t->path);
	free(t);
	if (err)
		return err;
	if (plen && strncmp(full, store->prefix, plen) != 0)
		return -EXDEV;
	if (plen && full[plen] && full[plen] != '/')
		return -EXDEV;
	return util_path_join(out, outlen, "", full + plen + (full[plen] == '/'));
}

/* One input or output: {"name", "mode", "path"}. Output paths are datastore URIs
 * inside home's store when home is given. */
static int record_read_item(const json_t *item, const char *where, bool output,
			    const struct record_home *home, struct record_data *d, char *errbuf,
			    size_t errlen)
{
	char path[DATASTORE_PATH_MAX];
	int err;

	if (!json_is_object(item)) {
		util_errf(errbuf, errlen, "field '%s' is not an object", where);
		return -EINVAL;
	}
	err = record_string(item, "name", where, JOB_NAME_MAX, RECORD_ONE_LINE, false, &d->name,
			    errbuf, errlen);
	if (!err && !job_name_valid(d->name, strlen(d->name), false)) {
		util_errf(errbuf, errlen, "field '%sname' is not a name of letters, digits and "
			  "'_' (not starting with a digit)", where);
		err = -EINVAL;
	}
	if (!err)
		err = record_string(item, "mode", where, 32, RECORD_ONE_LINE, false, &d->mode,
				    errbuf, errlen);
	if (!err)
		err = record_string(item, "path", where, RECORD_LINE_MAX, RECORD_ONE_LINE, true,
				    &d->path, errbuf, errlen);
	if (err || !output)
		return err;
	if (!d->path || datastore_is_uri(d->path) != 1) {
		util_errf(errbuf, errlen, "field '%spath' is not a datastore URI", where);
		return -EINVAL;
	}
	if (!home || !home->store)
		return 0;
	err = record_path_in(home->store, d->path, path, sizeof(path));
	if (err == -EXDEV)
		util_errf(errbuf, errlen, "field '%spath' (%s) is outside the run's datastore "
			  "(%s/%s); ferry job fetches only from there", where, d->path,
			  home->store->host, home->store->container);
	else if (err)
		util_errf(errbuf, errlen, "field '%spath' (%s) is not a datastore URI ferry knows",
			  where, d->path);
	return err ? -EINVAL : 0;
}

static int record_read_data(const json_t *root, bool output, const struct record_home *home,
			    struct run_record *rec, char *errbuf, size_t errlen)
{
	const char *key = output ? "outputs" : "inputs";
	const json_t *list = json_object_get(root, key);
	struct record_data *items;
	size_t n = json_array_size(list);

	if (!json_is_array(list) || n > RECORD_DATA_MAX) {
		util_errf(errbuf, errlen, "field '%s' is %s", key, !list ? "missing" :
			  json_is_array(list) ? "longer than 1024 items" : "not a list");
		return -EINVAL;
	}
	items = calloc(n + 1, sizeof(*items));
	if (!items)
		return -ENOMEM;
	if (output) {
		rec->outputs = items;
		rec->noutputs = n;
	} else {
		rec->inputs = items;
		rec->ninputs = n;
	}
	for (size_t i = 0; i < n; i++) {
		char where[48];
		int err;

		snprintf(where, sizeof(where), "%s[%zu].", key, i);
		err = record_read_item(json_array_get(list, i), where, output, home, &items[i],
				       errbuf, errlen);
		if (err)
			return err;
	}
	return 0;
}

bool record_host_valid(const char *s)
{
	size_t len = strlen(s);

	if (len < 1 || len > RECORD_HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			return false;
	}
	return true;
}

/* processes[i]: rank i, on one of the run's nodes, with a host name. */
static int record_read_proc(const json_t *item, const char *where, size_t i, int nodes,
			    struct record_proc *p, char *errbuf, size_t errlen)
{
	long long rank = 0, node = 0, local = 0, code = -1;
	int err = 0;

	if (!json_is_object(item)) {
		util_errf(errbuf, errlen, "field '%s' is not an object", where);
		return -EINVAL;
	}
	err = record_int(item, "rank", where, (long long)i, (long long)i, false, &rank, errbuf,
			 errlen);
	if (!err)
		err = record_int(item, "node", where, 0, nodes - 1, false, &node, errbuf, errlen);
	if (!err)
		err = record_int(item, "local_rank", where, 0, RECORD_PROCS_MAX - 1, false, &local,
				 errbuf, errlen);
	if (!err)
		err = record_int(item, "exit_code", where, 0, 255, true, &code, errbuf, errlen);
	if (!err)
		err = record_string(item, "host", where, RECORD_HOST_MAX, RECORD_ONE_LINE, true,
				    &p->host, errbuf, errlen);
	if (!err && p->host && !record_host_valid(p->host)) {
		util_errf(errbuf, errlen, "field '%shost' is not a host name", where);
		err = -EINVAL;
	}
	if (!err)
		err = record_string(item, "role", where, 8, RECORD_ONE_LINE, true, &p->role, errbuf,
				    errlen);
	if (!err && p->role && strcmp(p->role, "worker") != 0 && strcmp(p->role, "ps") != 0) {
		util_errf(errbuf, errlen, "field '%srole' is not null, \"worker\" or \"ps\"", where);
		err = -EINVAL;
	}
	if (!err)
		err = record_read_status(item, where, &p->status, errbuf, errlen);
	if (!err)
		err = record_time(item, where, "started", &p->started, errbuf, errlen);
	if (!err)
		err = record_time(item, where, "ended", &p->ended, errbuf, errlen);
	p->rank = (int)rank;
	p->node = (int)node;
	p->local_rank = (int)local;
	p->exit_code = (int)code;
	return err;
}

/* engine, distribution, node_count and processes: absent in older records. */
static int record_read_procs(const json_t *root, struct run_record *rec, char *errbuf,
			     size_t errlen)
{
	const json_t *list = json_object_get(root, "processes");
	struct record_proc *procs;
	long long nodes = 1;
	size_t n = json_array_size(list);
	int err = 0;

	if (json_object_get(root, "node_count"))
		err = record_int(root, "node_count", "", 1, RECORD_PROCS_MAX, false, &nodes,
				 errbuf, errlen);
	rec->node_count = (int)nodes;
	if (!err && json_object_get(root, "engine"))
		err = record_string(root, "engine", "", 16, RECORD_ONE_LINE, true, &rec->engine,
				    errbuf, errlen);
	if (!err && json_object_get(root, "distribution"))
		err = record_string(root, "distribution", "", 16, RECORD_ONE_LINE, true,
				    &rec->distribution, errbuf, errlen);
	if (err || !list)
		return err;
	if (!json_is_array(list) || n > RECORD_PROCS_MAX) {
		util_errf(errbuf, errlen, "field 'processes' is %s", json_is_array(list)
			  ? "longer than 16384 items" : "not a list");
		return -EINVAL;
	}
	procs = calloc(n + 1, sizeof(*procs));
	if (!procs)
		return -ENOMEM;
	rec->procs = procs;
	rec->nprocs = n;
	for (size_t i = 0; i < n; i++) {
		char where[48];

		snprintf(where, sizeof(where), "processes[%zu].", i);
		err = record_read_proc(json_array_get(list, i), where, i, (int)nodes, &procs[i],
				       errbuf, errlen);
		if (err)
			return err;
	}
	return 0;
}

/* The one-line string fields and the command. */
static int record_read_strings(const json_t *root, struct run_record *rec, char *errbuf,
			       size_t errlen)
{
	const struct {
		const char *key;
		const char **out;
		size_t max;
		enum record_text kind;
		bool nullable;
	} fields[] = {
		{ "id", &rec->id, RECORD_ID_MAX - 1, RECORD_ONE_LINE, false },
		{ "experiment_name", &rec->experiment_name, RECORD_LINE_MAX, RECORD_ONE_LINE, false },
		{ "display_name", &rec->display_name, RECORD_LINE_MAX, RECORD_ONE_LINE, false },
		{ "kind", &rec->kind, 16, RECORD_ONE_LINE, false },
		{ "job_file", &rec->job_file, RECORD_LINE_MAX, RECORD_ONE_LINE, true },
		{ "command", &rec->command, JOB_FILE_MAX, RECORD_LINES, true },
		{ "node", &rec->node, RECORD_LINE_MAX, RECORD_ONE_LINE, false },
		{ "error", &rec->error, RECORD_ERROR_MAX, RECORD_LINES, true },
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		int err = record_string(root, fields[i].key, "", fields[i].max, fields[i].kind,
					fields[i].nullable, fields[i].out, errbuf, errlen);

		if (err)
			return err;
	}
	if (strcmp(rec->kind, "command") != 0 && strcmp(rec->kind, "batchai") != 0) {
		util_errf(errbuf, errlen, "field 'kind' is not \"command\" or \"batchai\"");
		return -EINVAL;
	}
	return 0;
}

static int record_read_id(const struct record_home *home, const struct run_record *rec,
			  char *errbuf, size_t errlen)
{
	if (!record_id_valid(rec->id)) {
		util_errf(errbuf, errlen, "field 'id' is not a run id (letters, digits, '_', '-' "
			  "and '.')");
		return -EINVAL;
	}
	if (home && home->id && strcmp(rec->id, home->id) != 0) {
		util_errf(errbuf, errlen, "field 'id' names run '%s', not this one", rec->id);
		return -EINVAL;
	}
	return 0;
}

/* The JSON parser's complaint, made printable (it may quote the bytes it choked on). */
static void record_syntax_error(const json_error_t *jerr, char *errbuf, size_t errlen)
{
	char text[JSON_ERROR_TEXT_LENGTH];
	size_t i;

	for (i = 0; jerr->text[i] && i + 1 < sizeof(text); i++) {
		unsigned char c = (unsigned char)jerr->text[i];

		text[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
	}
	text[i] = '\0';
	util_errf(errbuf, errlen, "not JSON: %s at line %d, column %d", text, jerr->line,
		  jerr->column);
}

int record_from_json(const char *text, size_t len, const struct record_home *home,
		     struct run_record *out, char *errbuf, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	int err;

	memset(out, 0, sizeof(*out));
	if (len > RECORD_TEXT_MAX) {
		util_errf(errbuf, errlen, "larger than %d bytes", RECORD_TEXT_MAX);
		return -EINVAL;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		record_syntax_error(&jerr, errbuf, errlen);
		return -EINVAL;
	}
	out->json = root;
	if (!json_is_object(root)) {
		util_errf(errbuf, errlen, "not an object");
		err = -EINVAL;
	} else {
		err = record_read_strings(root, out, errbuf, errlen);
	}
	if (!err)
		err = record_read_id(home, out, errbuf, errlen);
	if (!err)
		err = record_read_status(root, "", &out->status, errbuf, errlen);
	if (!err)
		err = record_read_exit_code(root, out, errbuf, errlen);
	if (!err)
		err = record_read_times(root, out, errbuf, errlen);
	if (!err)
		err = record_read_data(root, false, home, out, errbuf, errlen);
	if (!err)
		err = record_read_data(root, true, home, out, errbuf, errlen);
	if (!err)
		err = record_read_procs(root, out, errbuf, errlen);
	if (err)
		record_free(out);
	return err;
}

void record_free(struct run_record *rec)
{
	free((void *)rec->inputs);
	free((void *)rec->outputs);
	free((void *)rec->procs);
	json_decref(rec->json);
	memset(rec, 0, sizeof(*rec));
}
