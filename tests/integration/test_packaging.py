#!/usr/bin/env python3
"""packaging/mount.ferry, the mount(8) helper for fstab lines, called exactly as
util-linux mount(8) calls a helper: `mount.ferry SOURCE MOUNTPOINT [-s] [-f] [-n] [-v]
-o OPTIONS` (and the `-oOPTIONS` form), with an fstab-typical option string (credentials
from account_key_file=, generic mount(8) options that ferry ignores). The helper runs
`ferry` from PATH: PATH starts with $FERRY_BIN's folder, so it is the ferry under test.

Shows: the mount comes up and reads a blob's exact bytes; `ro` is honoured (EROFS);
every generic fstab option documented as ignored is accepted; a bad option fails with a
non-zero exit and a message naming it; too few arguments give the usage line.

Run: python3 tests/integration/test_packaging.py [test_name ...]
"""
import errno
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, check_in  # noqa: E402

HELPER = os.path.join(ft.SRC, "packaging", "mount.ferry")
CONTAINER = "fstab"
BLOBS = {
    "hello.txt": b"hello from an fstab line\n",
    "dir/data.bin": None,  # filled in setup
}
# docs/configuration.md: "Generic mount(8) options ... are accepted and ignored"
GENERIC = ("defaults", "_netdev", "nofail", "auto", "noauto", "user", "nouser", "users",
           "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime",
           "relatime", "async", "user=nobody", "comment=systemd.automount",
           "x-systemd.automount", "x-systemd.idle-timeout=60", "x-systemd.requires=network-online.target")

az = None
URL = None
keyfile = None


def setup():
    global az, URL, keyfile
    BLOBS["dir/data.bin"] = ft.gen_bytes(3 * ft.MiB + 17, seed=41)
    az, URL = ft.azurite_with(CONTAINER, BLOBS)
    keyfile = ft.key_file()


def teardown():
    az.stop()


def helper_env():
    # No AZURE_* credentials: the key can only come from account_key_file=.
    env = ft.ferry_env(account=None, key=None)
    env["PATH"] = os.path.dirname(os.path.abspath(ft.ferry_bin())) + os.pathsep + \
        env.get("PATH", "/usr/bin:/bin")
    return env


def helper(*args, timeout=40):
    """Runs packaging/mount.ferry ARGS as mount(8) would (exec of the helper itself).
    Whatever it mounts at args[1] is registered for cleanup before it starts."""
    if len(args) >= 2:
        ft._register_mount(ft._canon(args[1]))
    argv = [HELPER] + list(args)
    check(ft.KEY not in " ".join(argv), "the key must not be on the helper's command line")
    logdir = ft.make_tmpdir("helperlog")
    out_path, err_path = os.path.join(logdir, "stdout"), os.path.join(logdir, "stderr")
    # Files, not pipes: the daemon ferry leaves behind must not keep us waiting.
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                             env=helper_env(), cwd=ft.tmp_root())
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
    r = subprocess.CompletedProcess(argv, rc, ft._read(out_path), ft._read(err_path))
    ft.log("mount.ferry %s -> %s | %s" % (" ".join(args)[:160], rc,
                                           " | ".join(r.stderr.strip().splitlines())[-300:]))
    check(rc is not None, "mount.ferry %s did not return within %d s" % (" ".join(args), timeout))
    check(ft.KEY not in r.stdout + r.stderr, "mount.ferry printed the account key")
    return r


def fstab_opts(*extra):
    return ",".join(("ro", "_netdev", "nofail", "defaults", "allow_http",
                     "account_key_file=" + keyfile) + extra)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def check_mounted_and_reads(r, mnt):
    check_eq(r.returncode, 0, "exit status of mount.ferry (stderr: %r)" % r.stderr[-500:])
    info = ft.mount_info(mnt)
    check(info is not None, "nothing mounted at %s after mount.ferry exited 0" % mnt)
    check(info["fstype"].startswith("fuse"), "fstype at %s is %r, want fuse*" % (
        mnt, info["fstype"]))
    check_eq(sorted(os.listdir(mnt)), ["dir", "hello.txt"], "listing of the mount root")
    check_eq(read(os.path.join(mnt, "hello.txt")), BLOBS["hello.txt"], "hello.txt read through the helper's mount")
    check_eq(read(os.path.join(mnt, "dir", "data.bin")), BLOBS["dir/data.bin"],
             "dir/data.bin read through the helper's mount")


def check_read_only(mnt):
    ft.expect_oserror(errno.EROFS, os.open, os.path.join(mnt, "new.txt"),
                      os.O_WRONLY | os.O_CREAT, 0o644)
    ft.expect_oserror(errno.EROFS, os.open, os.path.join(mnt, "hello.txt"), os.O_WRONLY)
    ft.expect_oserror(errno.EROFS, os.mkdir, os.path.join(mnt, "newdir"))
    ft.expect_oserror(errno.EROFS, os.unlink, os.path.join(mnt, "hello.txt"))
    ft.expect_oserror(errno.EROFS, os.rename, os.path.join(mnt, "hello.txt"),
                      os.path.join(mnt, "moved.txt"))
    names = set(az.client().with_container(CONTAINER).list_blobs())
    check_eq(names, set(BLOBS), "blobs in the container after the refused changes")


def unmount_and_check(mnt):
    cp = ft.unmount(mnt)
    check(not ft.is_mounted(mnt), "%s still mounted after ferry unmount" % mnt)
    check(cp is not None and cp.returncode == 0, "ferry unmount %s: %s" % (
        mnt, cp and (cp.returncode, cp.stderr.strip())))


# --------------------------------------------------------------------------------------

def test_fstab_line_mounts_read_only():
    """mount(8) for `URL MNT ferry ro,_netdev,nofail,defaults,allow_http,account_key_file=K`:
    the flags it passes (-s -f -n -v) and `-o OPTIONS` as two arguments."""
    mnt = ft.make_tmpdir("mnt")
    try:
        r = helper(URL, mnt, "-s", "-f", "-n", "-v", "-o", fstab_opts())
        check_mounted_and_reads(r, mnt)
        check_read_only(mnt)
        unmount_and_check(mnt)
    finally:
        ft.unmount(mnt)


def test_joined_o_form_and_every_generic_option():
    """`-oOPTIONS` in one argument, before the flags, with every generic mount(8) option
    docs/configuration.md lists as ignored."""
    mnt = ft.make_tmpdir("mnt")
    try:
        r = helper(URL, mnt, "-o" + fstab_opts(*GENERIC), "-n")
        check_mounted_and_reads(r, mnt)
        check_read_only(mnt)
        unmount_and_check(mnt)
    finally:
        ft.unmount(mnt)


def test_rw_without_ro():
    """Without `ro` the same line gives a writable mount: `ro` above was what made it
    read-only, not the helper or the key file."""
    mnt = ft.make_tmpdir("mnt")
    opts = "rw,_netdev,nofail,defaults,allow_http,account_key_file=" + keyfile
    try:
        r = helper(URL, mnt, "-o", opts)
        check_mounted_and_reads(r, mnt)
        data = b"written through mount.ferry\n"
        with open(os.path.join(mnt, "written.txt"), "wb") as f:
            f.write(data)
        unmount_and_check(mnt)
        got = az.client().with_container(CONTAINER).get_blob("written.txt")
        check_eq(got, data, "blob written through the rw mount")
    finally:
        ft.unmount(mnt)
        c = az.client().with_container(CONTAINER)
        if c.exists("written.txt"):
            c.delete_blob("written.txt")


def test_bad_option_fails_clearly():
    mnt = ft.make_tmpdir("mnt")
    try:
        for bad, needle in (("no_such_option", "no_such_option"),
                            ("block_size=3M", "block_size")):
            r = helper(URL, mnt, "-o", fstab_opts(bad))
            check(r.returncode != 0, "mount.ferry with -o ...,%s exited 0" % bad)
            check(not ft.is_mounted(mnt), "%s mounted despite the bad option %s" % (mnt, bad))
            check_in(needle, r.stderr, "stderr of mount.ferry with the bad option %s" % bad)
            lines = r.stderr.strip().splitlines()
            check_eq(len(lines), 1, "lines on stderr for the bad option %s (%r)" % (bad, r.stderr))
        # a key file that is not there: named, not mounted
        missing = os.path.join(os.path.dirname(keyfile), "absent.key")
        r = helper(URL, mnt, "-o", "ro,_netdev,allow_http,account_key_file=" + missing)
        check(r.returncode != 0, "mount.ferry with a missing key file exited 0")
        check(not ft.is_mounted(mnt), "%s mounted with a missing key file" % mnt)
        check_in("absent.key", r.stderr, "stderr of mount.ferry with a missing key file")
    finally:
        ft.unmount(mnt)


def test_too_few_arguments_give_usage():
    mnt = ft.make_tmpdir("mnt")
    for args in ((), (URL,)):
        r = helper(*args)
        check_eq(r.returncode, 1, "exit status of mount.ferry with %d argument(s)" % len(args))
        check_eq(r.stdout, "", "stdout of mount.ferry with %d argument(s)" % len(args))
        check_eq(r.stderr, "usage: mount.ferry URL MOUNTPOINT [-o OPTIONS]\n",
                 "stderr of mount.ferry with %d argument(s)" % len(args))
    check(not ft.is_mounted(mnt), "%s mounted" % mnt)


if __name__ == "__main__":
    ft.run()
