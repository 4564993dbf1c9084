#include "tools/launcher/coord.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/base/util.h"
#include "tools/launcher/record.h"

static const char *const coord_names[] = {
	[COORD_HELLO] = "hello",	 [COORD_READY] = "ready",
	[COORD_GO] = "go",		 [COORD_EXITED] = "exited",
	[COORD_NODE_DONE] = "node_done", [COORD_FINISHED] = "finished",
	[COORD_STOP] = "stop",
};

#define COORD_NTYPES (sizeof(coord_names) / sizeof(coord_names[0]))
#define COORD_SEND_WAIT_MS 1000
#define COORD_SEND_WAITS 30 /* a peer that reads nothing for 30 s is given up */
#define COORD_TIME_MAX 4102444800LL /* 2100-01-01 */

bool coord_token_ok(const char *token, const char *want)
{
	unsigned char diff = 0;

	if (strlen(token) != COORD_TOKEN_LEN || strlen(want) != COORD_TOKEN_LEN)
		return false;
	for (size_t i = 0; i < COORD_TOKEN_LEN; i++)
		diff |= (unsigned char)(token[i] ^ want[i]);
	return diff == 0;
}

static int coord_copy(char *out, size_t outlen, const char *s)
{
	return util_path_join(out, outlen, "", s ? s : "");
}

static int coord_read_hello(const json_t *root, int max_slots, struct coord_msg *m,
			    char *errbuf, size_t errlen)
{
	const char *token, *host;
	long long slot = 0;
	int err = record_string(root, "token", "", COORD_TOKEN_LEN, RECORD_ONE_LINE, false,
				&token, errbuf, errlen);

	for (size_t i = 0; !err && token[i]; i++)
		if (util_hex_digit(token[i]) < 0)
			err = -EINVAL;
	if (!err && strlen(token) != COORD_TOKEN_LEN)
		err = -EINVAL;
	if (err == -EINVAL)
		util_errf(errbuf, errlen, "field 'token' is not %d hex digits", COORD_TOKEN_LEN);
	if (!err)
		err = record_int(root, "slot", "", 0, max_slots - 1, false, &slot, errbuf, errlen);
	if (!err)
		err = record_string(root, "host", "", RECORD_HOST_MAX, RECORD_ONE_LINE, false,
				    &host, errbuf, errlen);
	if (!err && !record_host_valid(host)) {
		util_errf(errbuf, errlen, "field 'host' is not a host name");
		err = -EINVAL;
	}
	if (err)
		return err;
	m->slot = (int)slot;
	coord_copy(m->token, sizeof(m->token), token);
	return coord_copy(m->host, sizeof(m->host), host);
}

static int coord_read_hosts(const json_t *root, int max_hosts, struct coord_msg *m,
			    char *errbuf, size_t errlen)
{
	const json_t *list = json_object_get(root, "hosts");
	size_t n = json_array_size(list);

	if (!json_is_array(list) || n < 1 || n > (size_t)max_hosts) {
		util_errf(errbuf, errlen, "field 'hosts' is not a list of 1 to %d names", max_hosts);
		return -EINVAL;
	}
	m->hosts = calloc(n, sizeof(*m->hosts));
	if (!m->hosts)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *host = json_string_value(json_array_get(list, i));

		if (!host || !record_host_valid(host)) {
			util_errf(errbuf, errlen, "field 'hosts[%zu]' is not a host name", i);
			return -EINVAL;
		}
		m->hosts[i] = strdup(host);
		if (!m->hosts[i])
			return -ENOMEM;
		m->nhosts = (int)i + 1;
	}
	return 0;
}

static int coord_read_exited(const json_t *root, struct coord_msg *m, char *errbuf,
			     size_t errlen)
{
	const json_t *stopped = json_object_get(root, "stopped");
	long long code = 0, started = 0, ended = 0;
	int err = record_int(root, "exit_code", "", 0, 255, false, &code, errbuf, errlen);

	if (!err)
		err = record_int(root, "started", "", 0, COORD_TIME_MAX, false, &started, errbuf,
				 errlen);
	if (!err)
		err = record_int(root, "ended", "", 0, COORD_TIME_MAX, false, &ended, errbuf, errlen);
	if (!err && !json_is_boolean(stopped)) {
		util_errf(errbuf, errlen, "field 'stopped' is not true or false");
		err = -EINVAL;
	}
	m->exit_code = (int)code;
	m->started = (time_t)started;
	m->ended = (time_t)ended;
	m->stopped = json_is_true(stopped);
	return err;
}

static int coord_read(const json_t *root, int max_slots, int max_hosts,
		      struct coord_msg *m, char *errbuf, size_t errlen)
{
	const char *type, *error = NULL;
	long long port = 0;
	size_t t;
	int err = record_string(root, "type", "", 16, RECORD_ONE_LINE, false, &type, errbuf,
				errlen);

	if (err)
		return err;
	for (t = 0; t < COORD_NTYPES && strcmp(type, coord_names[t]) != 0; t++)
		;
	if (t == COORD_NTYPES) {
		util_errf(errbuf, errlen, "field 'type' is not a message ferry sends");
		return -EINVAL;
	}
	m->type = (enum coord_type)t;
	if (m->type == COORD_READY || m->type == COORD_EXITED || m->type == COORD_FINISHED)
		err = record_string(root, "error", "", COORD_ERROR_MAX - 1, RECORD_ONE_LINE, true,
				    &error, errbuf, errlen);
	if (!err && (m->type == COORD_READY || m->type == COORD_GO)) {
		err = record_int(root, "master_port", "", 0, 65535, false, &port, errbuf, errlen);
		m->master_port = (int)port;
	}
	if (err)
		return err;
	coord_copy(m->error, sizeof(m->error), error);
	if (m->type == COORD_HELLO)
		return coord_read_hello(root, max_slots, m, errbuf, errlen);
	if (m->type == COORD_GO)
		return coord_read_hosts(root, max_hosts, m, errbuf, errlen);
	if (m->type == COORD_EXITED)
		return coord_read_exited(root, m, errbuf, errlen);
	return 0;
}

int coord_parse(const char *line, size_t len, int max_slots, int max_hosts,
		struct coord_msg *out, char *errbuf, size_t errlen)
{
	json_error_t jerr;
	json_t *root;
	int err;

	memset(out, 0, sizeof(*out));
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		util_errf(errbuf, errlen, "a line that is not a JSON object");
		return -EINVAL;
	}
	err = coord_read(root, max_slots, max_hosts, out, errbuf, errlen);
	json_decref(root);
	if (err)
		coord_msg_free(out);
	return err;
}

void coord_msg_free(struct coord_msg *m)
{
	for (int i = 0; m->hosts && i < m->nhosts; i++)
		free(m->hosts[i]);
	free(m->hosts);
	m->hosts = NULL;
	m->nhosts = 0;
}

static json_t *coord_json(const struct coord_msg *m)
{
	json_t *root = json_pack("{s:s}", "type", coord_names[m->type]);
	json_t *hosts;
	int bad = !root;

	if (bad)
		return NULL;
	switch (m->type) {
	case COORD_HELLO:
		bad = json_object_set_new(root, "token", json_string(m->token)) ||
		      json_object_set_new(root, "slot", json_integer(m->slot)) ||
		      json_object_set_new(root, "host", json_string(m->host));
		break;
	case COORD_GO:
		hosts = json_array();
		for (int i = 0; hosts && i < m->nhosts; i++)
			bad |= json_array_append_new(hosts, json_string(m->hosts[i]));
		bad |= json_object_set_new(root, "hosts", hosts);
		break;
	case COORD_EXITED:
		bad = json_object_set_new(root, "exit_code", json_integer(m->exit_code)) ||
		      json_object_set_new(root, "stopped", json_boolean(m->stopped)) ||
		      json_object_set_new(root, "started", json_integer(m->started)) ||
		      json_object_set_new(root, "ended", json_integer(m->ended));
		break;
	default:
		break;
	}
	if (!bad && (m->type == COORD_READY || m->type == COORD_GO))
		bad = json_object_set_new(root, "master_port", json_integer(m->master_port));
	if (!bad && (m->type == COORD_READY || m->type == COORD_EXITED ||
		     m->type == COORD_FINISHED))
		bad = json_object_set_new(root, "error", m->error[0] ? json_string(m->error)
								     : json_null());
	if (bad) {
		json_decref(root);
		return NULL;
	}
	return root;
}

int coord_format(const struct coord_msg *m, char **out, size_t *len)
{
	json_t *root = coord_json(m);
	char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	size_t n;

	json_decref(root);
	*out = NULL;
	if (!text)
		return -ENOMEM;
	n = strlen(text);
	*out = realloc(text, n + 2);
	if (!*out) {
		free(text);
		return -ENOMEM;
	}
	(*out)[n] = '\n';
	(*out)[n + 1] = '\0';
	*len = n + 1;
	return 0;
}

int coord_send(int fd, const struct coord_msg *m)
{
	char *line;
	size_t len, done = 0;
	int err = coord_format(m, &line, &len);

	int waits = 0;

	while (!err && done < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		ssize_t n = send(fd, line + done, len - done, MSG_NOSIGNAL);

		if (n > 0)
			done += (size_t)n;
		else if (n < 0 && errno == EAGAIN && waits++ < COORD_SEND_WAITS)
			poll(&pfd, 1, COORD_SEND_WAIT_MS);
		else if (n < 0 && errno == EAGAIN)
			err = -ETIMEDOUT;
		else if (n < 0 && errno != EINTR)
			err = -errno;
	}
	free(line);
	return err;
}

int coord_conn_init(struct coord_conn *c, int fd)
{
	c->fd = fd;
	c->len = 0;
	c->buf = malloc(COORD_LINE_MAX);
	return c->buf ? 0 : -ENOMEM;
}

void coord_conn_close(struct coord_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = 0;
}

int coord_recv(struct coord_conn *c, int max_slots, int max_hosts, struct coord_msg *m,
	       char *errbuf, size_t errlen)
{
	char *nl = memchr(c->buf, '\n', c->len);
	ssize_t n;
	size_t line;
	int err;

	if (!nl) {
		if (c->len == COORD_LINE_MAX) {
			util_errf(errbuf, errlen, "a line longer than %d bytes", COORD_LINE_MAX);
			return -EINVAL;
		}
		n = read(c->fd, c->buf + c->len, COORD_LINE_MAX - c->len);
		if (n < 0)
			return errno == EINTR || errno == EAGAIN ? 0 : -errno;
		if (n == 0)
			return -EPIPE;
		c->len += (size_t)n;
		nl = memchr(c->buf, '\n', c->len);
		if (!nl)
			return 0;
	}
	line = (size_t)(nl - c->buf);
	err = coord_parse(c->buf, line, max_slots, max_hosts, m, errbuf, errlen);
	memmove(c->buf, nl + 1, c->len - line - 1);
	c->len -= line + 1;
	return err ? err : 1;
}
