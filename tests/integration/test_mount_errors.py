#!/usr/bin/env python3
"""ferry mount failures: each fails fast (< 15 s), with a non-zero exit and one line on
stderr naming the cause, leaves nothing mounted and no daemon running, and never prints
the account key. A daemon that does not report in time is stopped and waited for. Also:
`ferry unmount` really unmounts.

Run: python3 tests/integration/test_mount_errors.py [test_name ...]
"""
import os
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, check_in  # noqa: E402

CONTAINER = "errtest"
HELLO = b"hello from errtest\n"
DEADLINE = 15.0

az = None
URL = None


def setup():
    global az, URL
    az = ft.Azurite().start()
    c = az.client().with_container(CONTAINER)
    c.create_container()
    c.put_blob("hello.txt", HELLO)
    URL = az.url(CONTAINER)


def teardown():
    az.stop()


def check_no_secret(*texts):
    for t in texts:
        for secret, what in ((ft.KEY, "the account key"), (ft.WRONG_KEY, "the wrong key")):
            check(secret not in t, "ferry printed %s: %r" % (what, t[:300]))
            # a long piece of it is as bad as all of it
            check(secret[:24] not in t, "ferry printed part of %s: %r" % (what, t[:300]))


def check_no_daemon(mnt, timeout=5.0):
    deadline = time.monotonic() + timeout
    while ft.ferry_pids(mnt):
        if time.monotonic() > deadline:
            raise ft.CheckFailed("ferry processes for %s still running after %.0f s: %s" % (
                mnt, timeout, ft.ferry_pids(mnt)))
        time.sleep(0.1)


def check_failed_mount(cp, mnt, expect, also=()):
    """The contract for a mount that cannot work."""
    err = cp.stderr
    check(not cp.timed_out, "ferry mount did not exit within %.0f s (killed)" % cp.elapsed)
    check(cp.returncode != 0, "ferry mount exited 0; stderr: %r" % err[-300:])
    check(cp.elapsed < DEADLINE, "ferry mount took %.1f s to fail (limit %.0f s)" % (
        cp.elapsed, DEADLINE))
    lines = [ln for ln in err.splitlines() if ln.strip()]
    check_eq(len(lines), 1, "number of lines on stderr (%r)" % err[-300:])
    check_in(expect, err.lower(), "ferry's error message")
    for s in also:
        check_in(s, err, "ferry's error message")
    check(not ft.is_mounted(mnt), "%s is mounted after a failed mount" % mnt)
    time.sleep(0.5)  # nothing mounts late either
    check(not ft.is_mounted(mnt), "%s got mounted after ferry mount failed" % mnt)
    check_no_daemon(mnt)
    check_no_secret(cp.stdout, err, ft._read(cp.stdout_path), ft._read(cp.stderr_path))


def attempt(url, mnt=None, env=None):
    mnt = mnt or ft.make_tmpdir("mnt")
    cp = ft.mount(url, mnt, env=env)
    ft.log("exit %s after %.2f s, stderr: %s" % (cp.returncode, cp.elapsed, cp.stderr.strip()[:200]))
    return cp, mnt


def test_wrong_key():
    cp, mnt = attempt(URL, env=ft.ferry_env(key=ft.WRONG_KEY))
    try:
        check_failed_mount(cp, mnt, "authentication failed")
    finally:
        if ft.is_mounted(mnt):
            ft.unmount(mnt)


def test_missing_container():
    missing = "no-such-container"
    cp, mnt = attempt(az.url(missing))
    try:
        check_failed_mount(cp, mnt, "not found", also=[missing])
    finally:
        if ft.is_mounted(mnt):
            ft.unmount(mnt)


def test_nothing_listening():
    port = ft.free_port()
    cp, mnt = attempt("http://127.0.0.1:%d/%s/%s" % (port, ft.ACCOUNT, CONTAINER))
    try:
        check_failed_mount(cp, mnt, "cannot connect")
    finally:
        if ft.is_mounted(mnt):
            ft.unmount(mnt)


def test_plain_http_refused_off_loopback():
    # A name under .invalid never resolves: were the check missing, nothing would be sent.
    url = "http://ferry-test.invalid/%s/%s" % (ft.ACCOUNT, CONTAINER)
    cp, mnt = attempt(url)
    try:
        check_failed_mount(cp, mnt, "refusing plain http", also=["allow_http"])
    finally:
        if ft.is_mounted(mnt):
            ft.unmount(mnt)


def test_mountpoint_busy():
    with ft.mounted(URL) as m:
        before = [e for e in ft.mounts() if e["path"] == ft._canon(m)]
        cp = ft.mount(URL, m)
        ft.log("second mount: exit %s after %.2f s, stderr: %s" % (
            cp.returncode, cp.elapsed, cp.stderr.strip()[:200]))
        after = [e for e in ft.mounts() if e["path"] == ft._canon(m)]
        check_eq(len(after), len(before), "mounts stacked at %s" % m)
        check(cp.returncode != 0, "second ferry mount at the same place exited 0")
        check(cp.elapsed < DEADLINE, "second mount took %.1f s to fail" % cp.elapsed)
        check_in("busy", cp.stderr.lower(), "ferry's error message")
        check_no_secret(cp.stdout, cp.stderr)
        with open(os.path.join(m, "hello.txt"), "rb") as f:
            check_eq(f.read(), HELLO, "hello.txt through the first mount")
        check_eq(os.listdir(m), ["hello.txt"], "listing through the first mount")


def test_mountpoint_not_empty():
    """A folder with files is refused (the mount would hide them) unless -o nonempty;
    the mount's source in /proc/self/mountinfo is its URL, its type fuse.ferry."""
    mnt = ft.make_tmpdir("full")
    with open(os.path.join(mnt, "mine.txt"), "w") as f:
        f.write("local\n")
    cp, _ = attempt(URL, mnt)
    try:
        check_failed_mount(cp, mnt, "not empty", also=["-o nonempty"])
    finally:
        if ft.is_mounted(mnt):
            ft.unmount(mnt)
    with ft.mounted(URL, mnt=mnt, opts=["nonempty"]) as m:
        check_eq(os.listdir(m), ["hello.txt"], "listing through the mount over the files")
        entry = [e for e in ft.mounts() if e["path"] == ft._canon(m)]
        check_eq([(e["source"], e["fstype"]) for e in entry], [(URL, "fuse.ferry")],
                 "source and type in mountinfo")
    check_eq(os.listdir(mnt), ["mine.txt"], "the folder's own files after the unmount")


def test_mount_list_and_unmount_all():
    """In a mount namespace of their own (so no other test's mounts are touched): two
    mounts are listed with their mode and URL, and unmount --all ends both."""
    a, b = ft.make_tmpdir("lista"), ft.make_tmpdir("listb")
    script = ('set -e; "$F" mount "$U" "$A"; "$F" mount "$U" "$B" -o ro; "$F" mount list; '
              'echo ---; "$F" unmount --all; "$F" mount list; echo end')
    env = dict(ft.ferry_env(), F=ft.ferry_bin(), U=URL, A=a, B=b)
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       env=env, capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, "the script (stderr %r)" % r.stderr[-500:])
    listed, after = r.stdout.split("---\n")
    check_eq(sorted(listed.splitlines()), sorted(["%s  rw  %s" % (ft._canon(a), URL),
                                                  "%s  ro  %s" % (ft._canon(b), URL)]),
             "ferry mount list")
    check_eq(after, "end\n", "ferry mount list after unmount --all")
    check_no_daemon(a)
    check_no_daemon(b)


def test_missing_mountpoint():
    mnt = os.path.join(ft.make_tmpdir("parent"), "does-not-exist")
    cp, _ = attempt(URL, mnt)
    try:
        check_failed_mount(cp, mnt, "does not exist")
        check(not os.path.lexists(mnt), "ferry created the missing mount point")
    finally:
        if ft.is_mounted(mnt):
            ft.unmount(mnt)


def test_daemon_not_ready_in_time_is_stopped_and_reaped():
    """The daemon is frozen (SIGSTOP) while its probe waits on a server that takes the
    connection and never answers, so it never reports: ferry mount gives up after its
    15 s, kills the daemon (SIGTERM cannot reach a stopped process; SIGKILL after the
    grace time does) and waits for it. When ferry mount exits, the daemon is gone."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    url = "http://127.0.0.1:%d/%s/%s" % (srv.getsockname()[1], ft.ACCOUNT, CONTAINER)
    mnt = ft.make_tmpdir("mnt")
    logdir = ft.make_tmpdir("mountlog")
    ft._register_mount(ft._canon(mnt))
    daemon = None
    try:
        with open(os.path.join(logdir, "stderr"), "wb") as fe:
            p = subprocess.Popen([ft.ferry_bin(), "mount", url, mnt], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=fe, env=ft.ferry_env(),
                                 cwd=ft.tmp_root())
        t0 = time.monotonic()
        while daemon is None and p.poll() is None and time.monotonic() - t0 < 10:
            others = [pid for pid in ft.ferry_pids(mnt) if pid != p.pid]
            daemon = others[0] if others else None
            time.sleep(0.01 if daemon is None else 0)
        check(daemon is not None, "no daemon of ferry mount appeared")
        os.kill(daemon, signal.SIGSTOP)
        rc = p.wait(60)
        elapsed = time.monotonic() - t0
        err = ft._read(os.path.join(logdir, "stderr"))
        ft.log("exit %s after %.1f s, stderr: %s" % (rc, elapsed, err.strip()[:200]))
        check_eq(rc, 1, "exit status of ferry mount (stderr %r)" % err)
        check_in("not ready within 15 s", err, "stderr of ferry mount")
        check(not os.path.exists("/proc/%d" % daemon),
              "the daemon %d is still there (or unreaped) after ferry mount exited" % daemon)
        daemon = None
        check(not ft.is_mounted(mnt), "%s is mounted after the timed-out mount" % mnt)
    finally:
        srv.close()
        if daemon is not None and os.path.exists("/proc/%d" % daemon):
            os.kill(daemon, signal.SIGKILL)
        if ft.is_mounted(mnt):
            ft.unmount(mnt)


def test_unmount():
    mnt = ft.make_tmpdir("mnt")
    try:
        cp = ft.mount(URL, mnt)
        check_eq(cp.returncode, 0, "ferry mount exit status (stderr: %r)" % cp.stderr[-300:])
        check(cp.elapsed < DEADLINE, "ferry mount took %.1f s" % cp.elapsed)
        check(ft.is_mounted(mnt), "not mounted after ferry mount returned 0")
        with open(os.path.join(mnt, "hello.txt"), "rb") as f:
            check_eq(f.read(), HELLO, "hello.txt")
        u = ft.unmount(mnt, fallback=False)
        check_eq(u.returncode, 0, "ferry unmount exit status (stderr: %r)" % u.stderr[-300:])
        check(not ft.is_mounted(mnt), "%s is still a mount after ferry unmount" % mnt)
        check_eq(os.listdir(mnt), [], "the mount point after unmount")
        check_no_daemon(mnt)
        check_no_secret(cp.stdout, cp.stderr, u.stdout, u.stderr,
                        ft._read(cp.stdout_path), ft._read(cp.stderr_path))
    finally:
        if ft.is_mounted(mnt):
            ft.unmount(mnt)


if __name__ == "__main__":
    ft.run()
