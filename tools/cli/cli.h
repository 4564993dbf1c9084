/* cli: what every ferry subcommand does the same way with its arguments.
 *
 * Exit statuses: 0 done, CLI_EXIT_FAILED when the work failed, CLI_EXIT_USAGE for bad
 * usage (ferry run's setup failures are RUN_EXIT_SETUP, 125). Every `ferry X --help`
 * prints X's help to stdout and exits 0; an unknown or incomplete flag is named on
 * stderr, with the closest known flag where one is close, then X's usage, exit 2.
 *
 * A subcommand parses with getopt_long, opterr = 0 and shortopts starting with ':' (so
 * a missing argument is told apart), and hands every '?' or ':' to cli_bad_option().
 */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <getopt.h>
#include <stdio.h>

#define CLI_EXIT_FAILED 1
#define CLI_EXIT_USAGE 2
/* What a step of parsing returns when the command goes on; else the exit status. */
#define CLI_GO_ON (-1)

/* Resets getopt for a new parse of argv from argv[1] on (argv[0] is the subcommand). */
void cli_getopt_reset(void);

/* Prints usage, then help, on stdout: returns 0, the exit status of --help. */
int cli_help(const char *usage, const char *help);

/* Reports the argument getopt_long just refused (rc is what it returned: '?' or ':')
 * as "ferry CMD: unknown flag '--x' (did you mean '--y'?)" or "ferry CMD: flag '-o'
 * needs a value", then usage, on stderr (cmd "": ferry's own flags, "ferry: ...").
 * Returns CLI_EXIT_USAGE. */
int cli_bad_option(const char *cmd, int rc, char **argv, const struct option *longopts,
		   const char *usage);

/* "ferry CMD: unknown WHAT 'PREFIX NAME' (did you mean 'PREFIX KNOWN'?)" (the
 * suggestion only where one of known is close), then usage, on stderr; for flags,
 * commands, subcommands. Returns CLI_EXIT_USAGE. */
int cli_unknown(const char *cmd, const char *what, const char *prefix, const char *name,
		const struct option *known, const char *usage);

/* "ferry CMD: MESSAGE", then usage, on stderr. Returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The known long flag closest to name (edit distance at most 2, or a unique prefix),
 * or NULL. For messages. */
const char *cli_suggest(const char *name, const struct option *longopts);

#endif
