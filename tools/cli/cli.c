#include "tools/cli/cli.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void cli_getopt_reset(void)
{
	optind = 0; /* 0, not 1: glibc also forgets its state between parses */
	opterr = 0;
}

int cli_help(const char *usage, const char *help)
{
	printf("%s%s", usage, help);
	return 0;
}

/* Levenshtein distance of a and b, capped: anything over 3 is 3. */
static size_t cli_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[64];

	if (la >= 63 || lb >= 63)
		return 3;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t best = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] > 3 ? 3 : row[lb];
}

const char *cli_suggest(const char *name, const struct option *longopts)
{
	const char *best = NULL, *prefixed = NULL;
	size_t best_distance = 3, len = strlen(name), prefixes = 0;

	for (const struct option *o = longopts; o && o->name; o++) {
		size_t d = cli_distance(name, o->name);

		if (d < best_distance) {
			best_distance = d;
			best = o->name;
		}
		if (len && strncmp(o->name, name, len) == 0) {
			prefixed = o->name;
			prefixes++;
		}
	}
	return best ? best : (prefixes == 1 ? prefixed : NULL);
}

/* "ferry CMD: ", or "ferry: " for ferry's own flags (cmd ""). */
static void cli_prefix(const char *cmd)
{
	fprintf(stderr, "ferry%s%s: ", *cmd ? " " : "", cmd);
}

int cli_bad_option(const char *cmd, int rc, char **argv, const struct option *longopts,
		   const char *usage)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	bool is_long = strncmp(arg, "--", 2) == 0;

	if (rc != ':' && is_long) {
		char name[64];
		size_t len = strcspn(arg + 2, "=");

		if (len >= sizeof(name))
			len = sizeof(name) - 1;
		memcpy(name, arg + 2, len);
		name[len] = '\0';
		for (const struct option *o = longopts; o && o->name; o++) {
			if (strcmp(o->name, name) == 0 && o->has_arg == no_argument) {
				cli_prefix(cmd);
				fprintf(stderr, "flag '--%s' takes no value\n", name);
				fputs(usage, stderr);
				return CLI_EXIT_USAGE;
			}
		}
		return cli_unknown(cmd, "flag", "--", name, longopts, usage);
	}
	cli_prefix(cmd);
	if (rc != ':')
		fprintf(stderr, "unknown flag '-%c'\n", optopt);
	else if (is_long) /* optopt of a long flag is its value, not a character */
		fprintf(stderr, "flag '%s' needs a value\n", arg);
	else
		fprintf(stderr, "flag '-%c' needs a value\n", optopt);
	fputs(usage, stderr);
	return CLI_EXIT_USAGE;
}

int cli_unknown(const char *cmd, const char *what, const char *prefix, const char *name,
		const struct option *known, const char *usage)
{
	const char *suggestion = cli_suggest(name, known);

	cli_prefix(cmd);
	if (suggestion)
		fprintf(stderr, "unknown %s '%s%s' (did you mean '%s%s'?)\n", what, prefix, name,
			prefix, suggestion);
	else
		fprintf(stderr, "unknown %s '%s%s'\n", what, prefix, name);
	fputs(usage, stderr);
	return CLI_EXIT_USAGE;
}

int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
	va_list ap;

	cli_prefix(cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(usage, stderr);
	return CLI_EXIT_USAGE;
}
