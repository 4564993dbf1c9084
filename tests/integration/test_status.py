#!/usr/bin/env python3
"""ferry status: what a running mount's daemon says of itself, over its owner-only
socket, as text, JSON and Prometheus' text format; and ferry unmount, which returns
only once the daemon has exited.

Figures are checked against what the test did: bytes read and written, requests made,
the cache's limits, an upload refused by the service (403 through the fault-injecting
proxy) as the last error.

Run: python3 tests/integration/test_status.py [test_name ...]
"""
import json
import os
import re
import stat
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, check_in  # noqa: E402
from httpproxy import HttpProxy  # noqa: E402

MiB = 1024 * 1024
CONTAINER = "statuses"
BIG = ft.gen_bytes(20 * MiB + 3, 1)

az = None
URL = None


def setup():
    global az, URL
    az, URL = ft.azurite_with(CONTAINER, {"big.bin": BIG})


def teardown():
    if az:
        az.stop()


def ferry(*args):
    return subprocess.run([ft.ferry_bin()] + list(args), capture_output=True, text=True,
                          env=ft.ferry_env(), timeout=30)


def running(pid):
    """Whether pid is a live process: not gone, not a zombie waiting to be reaped (this
    test process may be the subreaper of daemons whose ferry mount exited)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def socket_path(mnt):
    """fs/status.h: /run/ferry/mount-<FNV-1a of the mount point>.sock (as root)."""
    h = 0xcbf29ce484222325
    for b in ft._canon(mnt).encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "/run/ferry/mount-%016x.sock" % h


def status_of(mnt):
    r = ferry("status", mnt, "--json")
    check_eq(r.returncode, 0, "ferry status --json (stderr %r)" % r.stderr)
    doc = json.loads(r.stdout)
    check_eq(len(doc), 1, "mounts in the answer for one mount point")
    return doc[0]


def test_figures_of_a_mount():
    cache = ft.make_tmpdir("statcache")
    with ft.mounted(URL, opts=["cache_dir=" + cache, "cache_size=1G", "block_size=4M",
                               "cache_mem=64M"]) as m:
        with open(os.path.join(m, "big.bin"), "rb") as f:
            check_eq(f.read(), BIG, "big.bin")
        with open(os.path.join(m, "new.txt"), "wb") as f:
            f.write(b"x" * 1000)
        s = status_of(m)
        pids = ft.ferry_pids(m)
        check_eq(s["mountpoint"], ft._canon(m), "mountpoint")
        check_eq((s["source"], s["mode"]), (URL, "rw"), "source and mode")
        check_eq([s["pid"]], pids, "the daemon's pid")
        check(s["uptime_s"] >= 0, "uptime %r" % s["uptime_s"])
        check_eq((s["read_bytes"], s["written_bytes"]), (len(BIG), 1000), "bytes read, written")
        check(s["downloaded_bytes"] >= len(BIG), "downloaded %d" % s["downloaded_bytes"])
        check_eq(s["uploaded_bytes"], 1000, "uploaded")
        check(s["requests"]["GET"] >= 6, "GETs: %r" % s["requests"])  # 6 blocks of 4 MiB
        check(s["requests"]["PUT"] >= 1, "PUTs: %r" % s["requests"])
        check_eq((s["retries"], s["errors"], s["last_error"]), (0, 0, None), "no trouble")
        check_eq(s["token_expiry"], None, "the expiry of a key")
        c = s["cache"]
        check_eq((c["mem_limit"], c["disk_limit"]), (64 * MiB, 1024 * MiB), "cache limits")
        check(0 < c["mem_used"] <= c["mem_limit"], "memory used %d" % c["mem_used"])
        check(c["disk_used"] > 0, "disk used %d" % c["disk_used"])
        check(c["misses"] >= 6 and c["prefetched"] >= 1, "cache: %r" % c)
        check_eq(s["staging"], {"bytes": 0, "uploading_bytes": 0, "files_writing": 0},
                 "nothing left to upload after the close")

        r = ferry("status", m)
        check_eq(r.returncode, 0, "ferry status (stderr %r)" % r.stderr)
        check(r.stdout.startswith("%s (rw) %s\n" % (ft._canon(m), URL)), r.stdout[:200])
        check_in("read 20.0 MiB, written 1000 B", r.stdout, "the text")
        check_in("last error: none", r.stdout, "the text")

        r = ferry("status", m, "--prometheus")
        check_eq(r.returncode, 0, "ferry status --prometheus (stderr %r)" % r.stderr)
        samples, typed = {}, set()
        for line in r.stdout.splitlines():
            if line.startswith("# TYPE "):
                name = line.split()[2]
                check(name not in typed, "TYPE of %s twice" % name)
                typed.add(name)
                continue
            if line.startswith("# HELP "):
                continue
            mm = re.match(r'^([a-z_]+)\{([^}]*)\} (-?\d+)$', line)
            check(mm, "not a sample line: %r" % line)
            check(mm.group(1) in typed, "%s sampled before its TYPE" % mm.group(1))
            check_in('mountpoint="%s"' % ft._canon(m), mm.group(2), "labels of %r" % line)
            samples[mm.group(1) + ("/" + mm.group(2).split('method="')[1].rstrip('"')
                                   if 'method="' in mm.group(2) else "")] = int(mm.group(3))
        check_eq(samples.get("ferry_up"), 1, "ferry_up")
        check_eq(samples.get("ferry_read_bytes_total"), len(BIG), "ferry_read_bytes_total")
        check_eq(samples.get("ferry_cache_memory_limit_bytes"), 64 * MiB, "memory limit")
        check(samples.get("ferry_requests_total/GET", 0) >= 6, "GET samples: %r" % samples)


def test_socket_is_the_owners_only():
    with ft.mounted(URL) as m:
        status_of(m)
        sock = socket_path(m)
        check(stat.S_ISSOCK(os.stat(sock).st_mode), "%s is not a socket" % sock)
        check_eq(stat.S_IMODE(os.stat(sock).st_mode) & 0o077, 0, "mode of %s" % sock)
        check_eq(stat.S_IMODE(os.stat("/run/ferry").st_mode), 0o700, "mode of /run/ferry")
    check(not os.path.exists(sock), "%s is left after the unmount" % sock)


def test_a_refused_upload_is_the_last_error():
    with HttpProxy(az.port) as px:
        with ft.mounted(px.url(URL)) as m:
            try:
                with open(os.path.join(m, "refused.txt"), "wb") as f:
                    # created; the upload of what is written is refused
                    px.add_fault("PUT", blob_prefix="refused", status=403, count=100)
                    f.write(b"y" * 10)
                check(False, "the upload through a 403 succeeded")
            except OSError:
                pass
            s = status_of(m)
            check(s["last_error"] is not None, "no last error")
            check_in("refused.txt", s["last_error"]["message"], "the last error")
            check(s["last_error"]["time"] > 0 and s["errors"] >= 1, "errors: %r" % s)
            r = ferry("status", m)
            check_in("last error: ", r.stdout, "the text")
            check_in("refused.txt", r.stdout, "the text")
            if not os.path.exists("/dev/log"):
                # no syslog here: the daemon logs beside its socket
                log = socket_path(m)[:-len(".sock")] + ".log"
                with open(log) as f:
                    check_in("refused.txt", f.read(), log)


def test_retries_are_counted_and_said_at_the_default_level():
    """Reads through 503s: status counts the retries (not as errors), and the log at the
    default level says it in one warning, not a line per retry."""
    log = os.path.join(ft.make_tmpdir("retrylog"), "ferry.log")
    with HttpProxy(az.port) as px:
        with ft.mounted(px.url(URL), opts=["log_file=" + log, "block_size=4M"]) as m:
            rule = px.add_fault("GET", kind="get", blob_prefix="big", status=503, count=3)
            with open(os.path.join(m, "big.bin"), "rb") as f:
                check_eq(f.read(), BIG, "big.bin through 503s")
            check_eq(rule.hits, 3, "503s answered")
            s = status_of(m)
            check(s["retries"] >= 3 and s["errors"] == 0, "retries, errors: %r" % s)
    with open(log) as f:
        lines = f.read().splitlines()
    said = [l for l in lines if "answered only after retries" in l]
    check_eq(len(said), 1, "warnings about retries (%r)" % lines)
    check_in("warning: ", said[0], "its level")
    check(not any(" info: " in l or " debug: " in l for l in lines), "lines below warn")


def test_log_file_at_debug_names_every_request_and_operation():
    log = os.path.join(ft.make_tmpdir("statlog"), "ferry.log")
    with ft.mounted(URL, opts=["log_file=" + log, "log_level=debug", "block_size=4M"]) as m:
        with open(os.path.join(m, "big.bin"), "rb") as f:
            f.read(100)
        pid = status_of(m)["pid"]
    with open(log) as f:
        text = f.read()
    lines = text.splitlines()
    for line in lines:
        check(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ferry\[%d\] "
                       r"(error|warning|info|debug): " % pid, line), "log line %r" % line)
    check(any(re.search(r"debug: GET http://\S+/%s/big\.bin: 206 after 1 attempt"
                        % CONTAINER, l) for l in lines), "no GET of big.bin in %r" % text[-2000:])
    check(any("fuse: " in l and "READ" in l for l in lines), "no FUSE read in the log")
    check(ft.KEY not in text and ft.KEY[:24] not in text, "the account key is in the log")
    check_eq(os.stat(log).st_mode & 0o077, 0, "the log's mode")


def test_unmount_returns_once_the_daemon_is_gone():
    m = ft.make_tmpdir("statmnt")
    r = ft.mount(URL, m)
    check_eq(r.returncode, 0, "ferry mount (stderr %r)" % r.stderr)
    try:
        pid = status_of(m)["pid"]
        with open(os.path.join(m, "big.bin"), "rb") as f:
            f.read(1000)
    finally:
        r = ferry("unmount", m)
    check_eq(r.returncode, 0, "ferry unmount (stderr %r)" % r.stderr)
    check(not running(pid), "the daemon (pid %d) is still running" % pid)
    r = ferry("status", m)
    check_eq(r.returncode, 1, "ferry status of what is no mount any more")
    check_in("not a ferry mount", r.stderr, "ferry status of an unmounted folder")


if __name__ == "__main__":
    ft.run()
