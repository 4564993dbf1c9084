/* uploader: a thread that keeps copies of a run's growing log files in its store.
 *
 * Every period it uploads each file whole (a file replaces the previous copy), and
 * once more when stopped, so the last copy holds everything written before the stop.
 * The thread that writes the files never waits on the network: a stalled store delays
 * only the copies. Messages about a failed round go to stderr, one per streak of
 * failures.
 */
#ifndef FERRY_UPLOADER_H
#define FERRY_UPLOADER_H

#include <stdbool.h>
#include <stddef.h>

#include "cache/store/store.h"

#define UPLOADER_MAX_FILES 4

struct uploader_file {
	const char *local; /* borrowed until uploader_stop() */
	const char *path;  /* in the store; borrowed until uploader_stop() */
};

struct uploader;

/* Copies the local file (or with is_dir, folder) local to path in store: 0, or -errno
 * with errbuf the first thing that could not be copied and why. */
int uploader_copy(struct store *store, const char *path, const char *local, bool is_dir,
		  char *errbuf, size_t errlen);

/* Starts the thread for nfiles (at most UPLOADER_MAX_FILES) files of store, one
 * round every period_ms, the first at once. */
int uploader_start(struct store *store, const struct uploader_file *files, size_t nfiles,
		   int period_ms, struct uploader **out);

/* Waits for the round in progress, makes a last one, ends the thread and frees u:
 * 0, or -errno with errbuf naming the first file of the last round that could not be
 * saved and why. */
int uploader_stop(struct uploader *u, char *errbuf, size_t errlen);

#endif
