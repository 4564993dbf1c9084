/* test_mount: -o options through fs/mount's fuse_opt table, and the daemon mount_run
 * starts: reaped when it fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/base/log.h"
#include "fs/mount.h"
#include "unit.h"

static int parse(struct mount_options *mo, const char *list, char *errbuf, size_t errlen)
{
	mount_options_default(mo);
	errbuf[0] = '\0';
	return mount_parse_options(mo, list, errbuf, errlen);
}

static void options_set_their_fields(void)
{
	struct mount_options mo;
	char errbuf[512];

	CHECK(parse(&mo, "ro,conflict=overwrite,attr_timeout=1.5,uid=7,gid=8,umask=027,"
			 "workers=3,timeout=9,block_size=1M,cache_mem=64M,cache_size=2G,"
			 "prefetch_window=4M,log_level=info,allow_http,allow_other",
		    errbuf, sizeof(errbuf)) == 0);
	CHECK(mo.read_only && mo.conflict_overwrite && mo.allow_http && mo.allow_other);
	CHECK(mo.attr_timeout == 1.5 && mo.uid == 7 && mo.gid == 8 && mo.umask == 027);
	CHECK(mo.workers == 3 && mo.timeout_s == 9 && mo.log_level == LOG_LVL_INFO);
	CHECK(mo.block_size == (1u << 20) && mo.cache_mem == (64u << 20));
	CHECK(mo.cache_size == (2ull << 30) && mo.prefetch_window == (4u << 20));
	CHECK(parse(&mo, "ro,rw,debug", errbuf, sizeof(errbuf)) == 0);
	CHECK(!mo.read_only && mo.log_level == LOG_LVL_DEBUG);
}

static void fstab_noise_is_dropped(void)
{
	struct mount_options mo, defaults;
	char errbuf[512];

	CHECK(parse(&mo, "defaults,_netdev,nofail,noauto,user,user=bob,users,noexec,nosuid,"
			 "nodev,noatime,comment=systemd.automount,x-systemd.automount,"
			 "x-systemd.requires=network-online.target,,",
		    errbuf, sizeof(errbuf)) == 0);
	mount_options_default(&defaults);
	CHECK(memcmp(&mo, &defaults, sizeof(mo)) == 0);
}

static void paths_are_made_absolute(void)
{
	struct mount_options mo;
	char errbuf[512], cwd[PATH_MAX], want[PATH_MAX + 32];

	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK(parse(&mo, "cache_dir=cache,account_key_file=../k,ca_file=/etc/ca.pem",
		    errbuf, sizeof(errbuf)) == 0);
	snprintf(want, sizeof(want), "%s/cache", cwd);
	CHECK_STR(mo.cache_dir, want);
	snprintf(want, sizeof(want), "%s/../k", cwd);
	CHECK_STR(mo.account_key_file, want);
	CHECK_STR(mo.ca_file, "/etc/ca.pem");
	/* fuse_opt's escape: a comma inside a value */
	CHECK(parse(&mo, "sas_file=/a\\,b", errbuf, sizeof(errbuf)) == 0);
	CHECK_STR(mo.sas_file, "/a,b");
}

static void bad_values_name_their_option(void)
{
	static const struct {
		const char *list, *message;
	} cases[] = {
		{ "no_such_option", "unknown mount option 'no_such_option'" },
		{ "ro=1", "unknown mount option 'ro=1'" },
		{ "block_size=3M", "option block_size: '3M' is not a power of two" },
		{ "block_size=128M", "option block_size: '128M' is not a size" },
		{ "cache_mem=lots", "option cache_mem: 'lots' is not a size" },
		{ "workers=0", "option workers: '0' is not a number from 1 to 3600" },
		{ "umask=0778", "option umask: '0778' is not an octal umask" },
		{ "attr_timeout=-1", "option attr_timeout: '-1' is not a number of seconds" },
		{ "conflict=maybe", "option conflict: 'maybe' is not one of fail, overwrite" },
		{ "log_level=loud", "option log_level: 'loud' is not one of" },
		{ "cache_dir=", "option cache_dir: '' is not a usable path" },
	};
	struct mount_options mo;
	char errbuf[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK(parse(&mo, cases[i].list, errbuf, sizeof(errbuf)) == -EINVAL);
		if (!strstr(errbuf, cases[i].message))
			fprintf(stderr, "  %s: \"%s\", want \"%s\"\n", cases[i].list, errbuf,
				cases[i].message);
		CHECK(strstr(errbuf, cases[i].message) != NULL);
	}
}

/* A loopback port where nothing listens (bound, so no one else takes it). */
static int closed_port(char *url, size_t len)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t alen = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&addr, &alen) == 0);
	snprintf(url, len, "http://127.0.0.1:%u/devstoreaccount1/data", ntohs(addr.sin_port));
	return fd;
}

static void failed_daemon_is_reaped(void)
{
	struct mount_options mo;
	char dir[] = "/tmp/ferry-test-mount-XXXXXX", url[128], errbuf[512] = "";
	int fd = closed_port(url, sizeof(url)), err;

	CHECK(mkdtemp(dir) != NULL);
	mount_options_default(&mo);
	mo.url = url;
	mo.mountpoint = dir;
	err = mount_run(&mo, errbuf, sizeof(errbuf));
	if (err != -EIO)
		fprintf(stderr, "  mount_run: %d (%s), want %d\n", err, errbuf, -EIO);
	CHECK(err == -EIO);
	CHECK(errbuf[0] != '\0');
	/* the daemon is gone and reaped: no child is left, not even a zombie */
	CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
	CHECK(mount_is_mounted(dir) == 0);
	close(fd);
	rmdir(dir);
}

int main(void)
{
	unsetenv("AZURE_STORAGE_CONNECTION_STRING");
	unsetenv("AZURE_STORAGE_KEY");
	unsetenv("AZURE_STORAGE_SAS_TOKEN");
	unsetenv("AZURE_STORAGE_BEARER_TOKEN");
	RUN(options_set_their_fields);
	RUN(fstab_noise_is_dropped);
	RUN(paths_are_made_absolute);
	RUN(bad_values_name_their_option);
	RUN(failed_daemon_is_reaped);
	return unit_done();
}
