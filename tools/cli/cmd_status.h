/* cmd_status: `ferry status [MOUNTPOINT] [--json | --prometheus]`, what each running
 * ferry mount of this user says of itself (fs/status.h), as text for a person, one
 * JSON array for tools, or Prometheus' text exposition format for a node exporter's
 * textfile collector.
 *
 * Takes the arguments after "status"; returns 0 when every mount answered, 1 when one
 * did not (said on stderr, and as ferry_up 0 / an "error" member), 2 bad usage.
 */
#ifndef FERRY_CMD_STATUS_H
#define FERRY_CMD_STATUS_H

int cmd_status(int argc, char **argv);

#endif
