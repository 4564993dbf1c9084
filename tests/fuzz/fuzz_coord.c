/* fuzz_coord: one line of the coordinator's protocol (coord_parse), and the same bytes
 * as an Open MPI hostfile (layout_parse_hostfile). A message that parses must format
 * (coord_format) to a line that parses again. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/launcher/coord.h"
#include "tools/launcher/layout.h"
#include "tests/fuzz/fuzz.h"

FUZZ_NO_SETUP

#define SLOTS 64
#define HOSTS 8

static void round_trip(const struct coord_msg *m)
{
	struct coord_msg again;
	char err[256], *line = NULL;
	size_t len = 0;

	if (coord_format(m, &line, &len) != 0)
		return;
	if (len < 1 || line[len - 1] != '\n' ||
	    coord_parse(line, len - 1, SLOTS, HOSTS, &again, err, sizeof(err)) != 0) {
		fprintf(stderr, "a message read did not read again once written: %s\n", err);
		abort();
	}
	coord_msg_free(&again);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct coord_msg m;
	char err[256], **hosts = NULL;
	int count = 0;

	if (coord_parse((const char *)data, size, SLOTS, HOSTS, &m, err, sizeof(err)) == 0) {
		round_trip(&m);
		coord_msg_free(&m);
	}
	if (layout_parse_hostfile((const char *)data, size, &hosts, &count, err,
				  sizeof(err)) == 0)
		layout_hosts_free(hosts, count);
	return 0;
}
