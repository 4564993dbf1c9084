#!/usr/bin/env python3
"""ferry mount, read-write: the parts that hold before writes land. `-o ro` refuses
every change with EROFS, and the counting proxy's fault rules (a PUT answered with 500
or a reset connection) work, as the failed-upload tests will need them.

Every check compares bytes: what the mount returns with what was written, and the blobs
as Azurite holds them -- read with the independent REST client, never through ferry.
Each test uses its own names (a prefix of the container) and its own mount, so tests
can run alone.

Run: python3 tests/integration/test_write.py [test_name ...]
"""
import errno
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
import fscheck  # noqa: E402
from ferrytest import MiB, check, check_eq, expect_oserror  # noqa: E402
from httpproxy import HttpProxy  # noqa: E402

CONTAINER = "writetest"
BLOCK = 16 * MiB          # ferry's default block size: files beyond it span blocks
FAIL_OPTS = ["timeout=5"]  # failing uploads give up after 5 s instead of 60

az = None
client = None
URL = None


def setup():
    global az, client, URL
    az = ft.Azurite().start()
    client = az.client().with_container(CONTAINER)
    client.create_container()
    URL = az.url(CONTAINER)


def teardown():
    az.stop()


# --------------------------------------------------------------------------------------
# Helpers

def data(n, seed):
    return ft.gen_bytes(n, seed=seed)


def write_all(fd, buf, chunk=MiB):
    mv = memoryview(buf)
    off = 0
    while off < len(mv):
        n = os.write(fd, mv[off:off + chunk])
        check(n > 0, "write returned %d" % n)
        off += n


def pwrite_all(fd, buf, offset):
    mv = memoryview(buf)
    done = 0
    while done < len(mv):
        n = os.pwrite(fd, mv[done:], offset + done)
        check(n > 0, "pwrite returned %d" % n)
        done += n


def pread_all(fd, length, offset):
    parts = []
    while length > 0:
        b = os.pread(fd, min(length, 4 * MiB), offset)
        if not b:
            break
        parts.append(b)
        offset += len(b)
        length -= len(b)
    return b"".join(parts)


def fd_contents(fd):
    return pread_all(fd, os.fstat(fd).st_size + 1, 0)


def read_path(path):
    with open(path, "rb") as f:
        return f.read()


def write_path(path, buf):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, buf)
    finally:
        os.close(fd)


def pwrite_model(model, buf, offset):
    """What pwrite(buf, offset) does to a file whose content is model (a bytearray)."""
    if offset > len(model):
        model.extend(bytes(offset - len(model)))
    model[offset:offset + len(buf)] = buf


def truncate_model(model, size):
    if size < len(model):
        del model[size:]
    else:
        model.extend(bytes(size - len(model)))


def check_blob(name, want, what=None):
    """The blob as Azurite holds it equals want (bytes); sha256 for large ones."""
    what = what or "blob %r" % name
    try:
        if len(want) > 32 * MiB:
            size, sha = fscheck.blob_digest(client, name)
            check_eq((size, sha), (len(want), ft.sha256_bytes(want)), what + " (size, sha256)")
            return
        got = client.get_blob(name)
    except ft.BlobError as e:
        raise ft.CheckFailed("%s: %s" % (what, e)) from None
    check_eq(got, bytes(want), what)


def check_no_blob(name, what=None):
    check(not client.exists(name), "%s: blob %r still exists" % (what or "store", name))


def check_file(path, want, what=None):
    """The file read through the mount (a fresh open) equals want."""
    what = what or path
    check_eq(os.stat(path).st_size, len(want), "%s: st_size" % what)
    check_eq(read_path(path), bytes(want), "%s: content read through the mount" % what)


def blob_names(prefix):
    return set(client.list_blobs(prefix))


def remount(m, opts=None):
    """Unmounts m and mounts the same container there again."""
    cp = ft.unmount(m)
    check(cp is not None and cp.returncode == 0, "ferry unmount %s: %s" % (
        m, cp and (cp.stderr.strip() or cp.returncode)))
    check(not ft.is_mounted(m), "%s still mounted after ferry unmount" % m)
    cp = ft.mount(URL, m, opts=opts)
    check(cp.returncode == 0 and ft.is_mounted(m), "remount of %s failed: exit %s: %s" % (
        m, cp.returncode, cp.stderr.strip()[-300:]))


def expect_eio(fn, *args):
    """fn(*args) fails with EIO."""
    return expect_oserror(errno.EIO, fn, *args)


# --------------------------------------------------------------------------------------
# The proxy's fault rules (used by the failed-upload tests; no ferry involved)

def test_proxy_fault_rules():
    with HttpProxy(az.port) as px:
        c = ft.BlobClient("127.0.0.1", px.port).with_container(CONTAINER)
        c.put_blob("fault.keep", b"kept")
        c.put_blob("fault.other", b"other")
        rule = px.fail_put("fault.k", status=500)
        try:
            c.put_blob("fault.keep", b"new content")
        except ft.BlobError as e:
            check_eq((e.status, e.code), (500, "InternalError"), "refused Put Blob")
        else:
            raise ft.CheckFailed("Put Blob of fault.keep succeeded through a failing rule")
        check_eq(rule.hits, 4, "requests the rule answered (BlobClient tries 4 times)")
        check_eq([r.status for r in px.requests("PUT", "put", blob="fault.keep")][-4:],
                 [500] * 4, "logged statuses of the refused Put Blob")
        # a big body (blocks, Put Block List) is refused too, and the connection survives
        try:
            c.put_blob("fault.keep", data(40 * MiB, 70), block_size=8 * MiB)
        except ft.BlobError as e:
            check_eq(e.status, 500, "refused Put Block")
        else:
            raise ft.CheckFailed("Put Block of fault.keep succeeded through a failing rule")
        # other blobs, and reads of the blob itself, pass
        c.put_blob("fault.other", b"other 2")
        check_eq(c.get_blob("fault.keep"), b"kept", "GET of fault.keep during the rule")
        check_eq(client.get_blob("fault.keep"), b"kept", "fault.keep in Azurite")
        check_eq(client.get_blob("fault.other"), b"other 2", "fault.other in Azurite")
        px.clear_faults()
        hits = rule.hits
        c.put_blob("fault.keep", b"after clear")
        check_eq(rule.hits, hits, "hits after clear_faults")
        check_eq(client.get_blob("fault.keep"), b"after clear", "Put Blob after clear_faults")
        # reset: the connection is cut, no HTTP answer at all
        rule = px.fail_put("fault.keep", reset=True)
        try:
            c.put_blob("fault.keep", b"reset")
        except (ConnectionError, OSError) as e:
            ft.log("reset rule: client saw %s: %s" % (type(e).__name__, e))
        else:
            raise ft.CheckFailed("Put Blob succeeded through a reset rule")
        check(rule.hits >= 1, "reset rule never hit")
        check_eq(client.get_blob("fault.keep"), b"after clear", "fault.keep after reset")
        px.clear_faults()
        c.put_blob("fault.keep", b"end")
        check_eq(client.get_blob("fault.keep"), b"end", "Put Blob after the reset rule")
        c.close()


# --------------------------------------------------------------------------------------
# Read-only on request, writable by default

def test_ro_option_refuses_writes():
    client.put_blob("ro.file", b"read only\n")
    with ft.mounted(URL, opts=["ro"]) as m:
        p = os.path.join(m, "ro.file")
        for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC, os.O_RDONLY | os.O_TRUNC,
                      os.O_WRONLY | os.O_APPEND):
            expect_oserror(errno.EROFS, os.open, p, flags)
        expect_oserror(errno.EROFS, os.open, os.path.join(m, "ro.new"),
                       os.O_WRONLY | os.O_CREAT, 0o644)
        expect_oserror(errno.EROFS, os.mkdir, os.path.join(m, "ro.dir"))
        expect_oserror(errno.EROFS, os.unlink, p)
        expect_oserror(errno.EROFS, os.rename, p, os.path.join(m, "ro.renamed"))
        expect_oserror(errno.EROFS, os.truncate, p, 0)
        expect_oserror(errno.EROFS, os.symlink, "ro.file", os.path.join(m, "ro.link"))
        expect_oserror(errno.EROFS, os.utime, p, (1, 1))
        expect_oserror(errno.EROFS, os.chmod, p, 0o600)
        check_file(p, b"read only\n", "ro.file on the ro mount")
    check_eq(blob_names("ro."), {"ro.file"}, "blobs after refused changes")
    check_blob("ro.file", b"read only\n")


if __name__ == "__main__":
    ft.run()
