/* mounts: the mounts of one run, each served by a child of the launcher that the
 * launcher waits for.
 *
 * Each child runs mount_run() in the foreground, in a session of its own, ignoring
 * SIGINT, SIGTERM and SIGHUP (neither a Ctrl-C at the terminal nor a signal to a whole
 * job step stops it before the run's outputs are saved), with what it logs (errors
 * only) in a file of the run's folder. A read-write mount whose daemon
 * logged an error, or exited with a failure, may have lost writes: mounts_end()
 * reports each such line.
 *
 * Mounts are made while no other thread of the process uses the network (the child
 * is a fork of the launcher). Not thread-safe.
 */
#ifndef FERRY_MOUNTS_H
#define FERRY_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#include "fs/mount.h"

#define MOUNTS_MAX 64

struct mounts;

/* log_dir: an existing folder for the daemons' logs. */
int mounts_new(const char *log_dir, struct mounts **out);

/* Mounts mo->url at mo->mountpoint (which must exist) and returns once it is served:
 * 0, or -errno with errbuf the reason. what names the mount in reports ("outputs.x");
 * rw: its errors mean lost writes. */
int mounts_add(struct mounts *m, const struct mount_options *mo, const char *what,
	       bool rw, char *errbuf, size_t errlen);

/* Called for each error a mount's daemon logged (rw: the mount was read-write). */
typedef void (*mounts_report_fn)(void *ctx, const char *what, bool rw, const char *line);

/* Unmounts every mount (lazily when busy), waits for each daemon (killing one that has
 * not exited MOUNTS_EXIT_SECONDS after its unmount) and reports what each logged.
 * Returns 0, -EIO when a read-write mount reported an error or its daemon failed,
 * -EBUSY when a mount could not be removed. */
#define MOUNTS_EXIT_SECONDS 120
int mounts_end(struct mounts *m, mounts_report_fn report, void *ctx);

/* Frees m (after mounts_end()). */
void mounts_free(struct mounts *m);

#endif
