#include "tools/launcher/envlist.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Takes var (malloc'ed "NAME=value", name_len bytes of name) into l. */
static void envlist_take(struct envlist *l, char *var, size_t name_len)
{
	char **grown;

	for (size_t i = 0; i < l->n; i++) {
		if (strncmp(l->vars[i], var, name_len + 1) == 0) {
			free(l->vars[i]);
			l->vars[i] = var;
			return;
		}
	}
	grown = realloc(l->vars, (l->n + 2) * sizeof(*l->vars));
	if (!grown) {
		free(var);
		l->err = -ENOMEM;
		return;
	}
	l->vars = grown;
	l->vars[l->n++] = var;
	l->vars[l->n] = NULL;
}

void envlist_init(struct envlist *l, char *const *base)
{
	memset(l, 0, sizeof(*l));
	for (size_t i = 0; base && base[i]; i++)
		envlist_put(l, base[i]);
}

void envlist_set(struct envlist *l, const char *name, const char *fmt, ...)
{
	char *value = NULL, *var = NULL;
	va_list ap;

	if (l->err)
		return;
	va_start(ap, fmt);
	if (vasprintf(&value, fmt, ap) < 0)
		value = NULL;
	va_end(ap);
	if (!value || asprintf(&var, "%s=%s", name, value) < 0) {
		free(value);
		l->err = -ENOMEM;
		return;
	}
	free(value);
	envlist_take(l, var, strlen(name));
}

void envlist_put(struct envlist *l, const char *var)
{
	const char *eq = strchr(var, '=');
	char *copy;

	if (l->err || !eq)
		return;
	copy = strdup(var);
	if (!copy) {
		l->err = -ENOMEM;
		return;
	}
	envlist_take(l, copy, (size_t)(eq - var));
}

void envlist_free(struct envlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->vars[i]);
	free(l->vars);
	memset(l, 0, sizeof(*l));
}
