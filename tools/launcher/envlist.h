/* envlist: a process environment built before fork().
 *
 * The launcher's children start while other threads of the launcher run; a child of
 * a threaded process may only call async-signal-safe functions until it execs, so a
 * child's environment is built here, in the parent, and handed to execve().
 */
#ifndef FERRY_ENVLIST_H
#define FERRY_ENVLIST_H

#include <stddef.h>

struct envlist {
	char **vars; /* "NAME=value" strings, NULL-terminated once one is set; owned */
	size_t n;
	int err;     /* the first error (-ENOMEM); later calls do nothing */
};

/* Starts l as a copy of base (e.g. environ; NULL: empty). */
void envlist_init(struct envlist *l, char *const *base);

/* Sets name to the formatted value, replacing an earlier one of the same name. */
void envlist_set(struct envlist *l, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Sets "NAME=value" as envlist_set() does; a string without '=' is skipped. */
void envlist_put(struct envlist *l, const char *var);

/* Frees what l owns; l is empty again. */
void envlist_free(struct envlist *l);

#endif
