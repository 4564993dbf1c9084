/* cmd_data (cmd_datastore.c, cmd_data.c): the `ferry datastore`, `ferry cp` and
 * `ferry ls` subcommands.
 *
 * Each takes its argv from its own name on (argv[0] is "datastore", "cp" or "ls"),
 * parses it as tools/cli/cli.h says, and returns the process exit status: 0 done,
 * 1 failed (one line per failure on stderr), 2 bad usage.
 */
#ifndef FERRY_CMD_DATA_H
#define FERRY_CMD_DATA_H

int cmd_datastore(int argc, char **argv);
int cmd_cp(int argc, char **argv);
int cmd_ls(int argc, char **argv);

/* The usage lines of each ("ferry X ...\n", continuation lines indented), for
 * `ferry --help`. */
extern const char cmd_datastore_lines[], cmd_cp_lines[], cmd_ls_lines[];

#endif
