/* coord: the messages between `ferry run --engine ...` (the coordinator) and the tasks
 * the engine starts on the nodes, one JSON object a line over TCP.
 *
 *   task -> coordinator   {"type": "hello", "token", "slot", "host"}   first, always
 *   leader -> coordinator {"type": "ready", "error", "master_port"}    node prepared
 *   coordinator -> task   {"type": "go", "hosts": [...], "master_port"} all nodes ready
 *   task -> coordinator   {"type": "exited", "exit_code", "stopped", "started", "ended",
 *                          "error"}                                     its process ended
 *   coordinator -> leader {"type": "node_done"}                          its node's ended
 *   leader -> coordinator {"type": "finished", "error"}                  node cleaned up
 *   coordinator -> task   {"type": "stop"}                               stop the process
 * A line is at most COORD_LINE_MAX bytes. Both ends are hostile to each other until
 * checked: coord_parse() checks every field it returns (types, ranges, host names,
 * printable errors) and the hello's token is compared in constant time.
 */
#ifndef FERRY_COORD_H
#define FERRY_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define COORD_LINE_MAX (2 * 1024 * 1024)
#define COORD_TOKEN_LEN 32 /* hex digits */
#define COORD_ERROR_MAX 1024

enum coord_type {
	COORD_HELLO,
	COORD_READY,
	COORD_GO,
	COORD_EXITED,
	COORD_NODE_DONE,
	COORD_FINISHED,
	COORD_STOP,
};

struct coord_msg {
	enum coord_type type;
	char token[COORD_TOKEN_LEN + 1]; /* hello */
	int slot;                        /* hello */
	char host[256];                  /* hello */
	int master_port;                 /* ready, go: 0 none */
	char **hosts;                    /* go: one per node */
	int nhosts;
	int exit_code;                   /* exited: 0-255 */
	bool stopped;                    /* exited: stopped by a stop or a signal */
	time_t started, ended;           /* exited */
	char error[COORD_ERROR_MAX];     /* ready, exited, finished: "" none */
};

/* Parses one line (without its newline): max_slots bounds hello's slot, max_hosts the
 * hosts of go. -EINVAL with errbuf saying what is wrong. coord_msg_free() after. */
int coord_parse(const char *line, size_t len, int max_slots, int max_hosts,
		struct coord_msg *out, char *errbuf, size_t errlen);

/* The message as one line with its newline; *out is malloc'ed. -ENOMEM. */
int coord_format(const struct coord_msg *m, char **out, size_t *len);

void coord_msg_free(struct coord_msg *m);

/* Sends m whole on the socket fd, waiting while it is full (30 s at most): 0 or
 * -errno. */
int coord_send(int fd, const struct coord_msg *m);

/* A connection's incoming bytes, split into lines. */
struct coord_conn {
	int fd;
	char *buf; /* COORD_LINE_MAX bytes, malloc'ed by coord_conn_init */
	size_t len;
};

int coord_conn_init(struct coord_conn *c, int fd);
/* Closes the fd and frees the buffer. */
void coord_conn_close(struct coord_conn *c);

/* Reads what fd has (one read) and parses the first whole line: 1 with *m filled, 0
 * when no line is whole yet, -EPIPE at end of stream, -EINVAL for a line that does
 * not parse or is too long (errbuf), -errno of read. Call again while it returns 1:
 * more lines may be buffered (no read is made while one is). */
int coord_recv(struct coord_conn *c, int max_slots, int max_hosts, struct coord_msg *m,
	       char *errbuf, size_t errlen);

/* True when the token is COORD_TOKEN_LEN hex digits equal to want, compared in
 * constant time. */
bool coord_token_ok(const char *token, const char *want);

#endif
