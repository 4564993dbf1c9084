#!/usr/bin/env python3
"""ferry mount, read-write: create, write (sequential, random, sparse, append),
truncate, unlink, mkdir/rmdir, rename (RENAME_NOREPLACE too), symlinks, utimens, fsync,
flush and close; uploads in blocks with bounded memory and disk; failed uploads and
conflicting changes; the cases object-store filesystems get wrong; cp -r, tar x and
git clone into the mount.

Every check compares bytes: what the mount returns with a model of what was written,
and the blobs as Azurite holds them -- read with the independent REST client, never
through ferry -- with the same model. Each test uses its own names (a prefix of the
container) and its own mount, so tests can run alone.

Run: python3 tests/integration/test_write.py [test_name ...]
"""
import errno
import hashlib
import os
import random
import stat
import subprocess
import sys
import tarfile
import threading
import time
import zipfile

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
import fscheck  # noqa: E402
from ferrytest import KiB, MiB, check, check_eq, expect_oserror  # noqa: E402
from fscheck import RENAME_NOREPLACE, renameat2  # noqa: E402
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


def test_create_write_close():
    sizes = {"s0": 0, "s1": 1, "s4095": 4095, "s4096": 4096, "s1m1": MiB + 1,
             "s17m3": BLOCK + MiB + 3}
    want = {"create." + n: data(size, 100 + i) for i, (n, size) in enumerate(sizes.items())}
    with ft.mounted(URL) as m:
        for name, buf in want.items():
            p = os.path.join(m, name)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                write_all(fd, buf)
                check_eq(os.fstat(fd).st_size, len(buf), "%s: fstat size before close" % name)
            finally:
                os.close(fd)
            check_blob(name, buf, "blob %s right after close" % name)
            check_file(p, buf, name)
        # O_EXCL on an existing file
        expect_oserror(errno.EEXIST, os.open, os.path.join(m, "create.s1"),
                       os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        # the same through Python's buffered file objects (1 MiB st_blksize)
        with open(os.path.join(m, "create.py"), "wb") as f:
            for i in range(10):
                f.write(data(100 * KiB + i, 200 + i))
        want["create.py"] = b"".join(data(100 * KiB + i, 200 + i) for i in range(10))
        check_eq(set(n for n in os.listdir(m) if n.startswith("create.")), set(want),
                 "listing after creating")
        remount(m)
        for name, buf in want.items():
            check_file(os.path.join(m, name), buf, name + " after remount")
    check_eq(blob_names("create."), set(want), "blobs")
    for name, buf in want.items():
        check_blob(name, buf)


def test_fsync_and_flush_commit():
    a, b, c = data(3 * MiB, 300), b"flushed by closing a dup\n", data(BLOCK + 5, 301)
    with ft.mounted(URL) as m:
        p = os.path.join(m, "sync.bin")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            write_all(fd, a)
            os.fsync(fd)
            check_blob("sync.bin", a, "blob after fsync (file still open)")
            write_all(fd, b)
            os.close(os.dup(fd))  # flush
            check_blob("sync.bin", a + b, "blob after closing a dup (flush; file still open)")
            write_all(fd, c)
            os.fdatasync(fd)
            check_blob("sync.bin", a + b + c, "blob after fdatasync (file still open)")
            os.fsync(fd)  # nothing new: fine
        finally:
            os.close(fd)
        check_blob("sync.bin", a + b + c, "blob after close")
        # fsync of an unchanged file and of a directory succeed
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        fd = os.open(m, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        check_file(p, a + b + c, "sync.bin")


def test_readers_see_own_writes():
    old = data(300 * KiB, 400)
    client.put_blob("own.bin", old)
    model = bytearray(old)
    with ft.mounted(URL) as m:
        p = os.path.join(m, "own.bin")
        before = os.open(p, os.O_RDONLY)  # opened before any write
        fd = os.open(p, os.O_RDWR)
        try:
            check_eq(pread_all(before, len(old), 0), old, "own.bin before writing")
            for buf, off in ((b"A" * 5000, 4000), (data(70 * KiB, 401), len(old) + 100),
                             (b"tail", 2 * MiB)):
                pwrite_all(fd, buf, off)
                pwrite_model(model, buf, off)
                want = bytes(model)
                check_eq(fd_contents(fd), want, "read back through the writing fd")
                check_eq(os.fstat(fd).st_size, len(want), "fstat of the writing fd")
                check_eq(os.stat(p).st_size, len(want), "stat of own.bin")
                check_eq(fd_contents(before), want, "read through the fd opened before")
                check_eq(read_path(p), want, "read through a new fd")
        finally:
            os.close(before)
            os.close(fd)
        check_blob("own.bin", model)
        # a new file, not yet closed: visible, sized and readable from another fd
        q = os.path.join(m, "own.new")
        fd = os.open(q, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            buf = data(MiB + 3, 402)
            write_all(fd, buf)
            check("own.new" in os.listdir(m), "own.new not listed while open")
            check_file(q, buf, "own.new while still open for writing")
        finally:
            os.close(fd)
        check_blob("own.new", buf)


# --------------------------------------------------------------------------------------
# Write cases object stores get wrong

def test_append_to_existing():
    small, big = b"0123456789", data(40 * MiB + 5, 500)  # big: committed as 8 MiB blocks
    client.put_blob("append.small", small)
    client.put_blob("append.big", big, block_size=8 * MiB)
    with ft.mounted(URL) as m:
        p = os.path.join(m, "append.small")
        want = bytearray(small)
        for i in range(3):
            fd = os.open(p, os.O_WRONLY | os.O_APPEND)
            try:
                for j in range(3):
                    buf = b"<append %d.%d>" % (i, j)
                    write_all(fd, buf)
                    want += buf
                # O_APPEND writes go to the end whatever the offset says
                os.lseek(fd, 0, os.SEEK_SET)
                write_all(fd, b"!")
                want += b"!"
            finally:
                os.close(fd)
            check_blob("append.small", want, "append.small after append round %d" % i)
        with open(p, "ab") as f:
            f.write(b"python append\n")
        want += b"python append\n"
        check_file(p, want, "append.small")
        check_blob("append.small", want)

        q = os.path.join(m, "append.big")
        extra = data(MiB + 3, 501)
        fd = os.open(q, os.O_WRONLY | os.O_APPEND)
        try:
            write_all(fd, extra)
            write_all(fd, b"end")
        finally:
            os.close(fd)
        want_big = big + extra + b"end"
        check_blob("append.big", want_big)
        check_eq(os.stat(q).st_size, len(want_big), "append.big st_size")
        # the old part is read back intact through the mount, around block edges
        fd = os.open(q, os.O_RDONLY)
        try:
            for off in (0, 8 * MiB - 3, BLOCK - 5, 32 * MiB - 1, len(big) - 7):
                check_eq(pread_all(fd, 4096, off), want_big[off:off + 4096],
                         "append.big at %d" % off)
        finally:
            os.close(fd)


def test_overwrite_range():
    old = data(BLOCK + 4 * MiB + 17, 600)
    client.put_blob("over.big", old)
    client.put_blob("over.small", b"hello world")
    with ft.mounted(URL) as m:
        p = os.path.join(m, "over.big")
        model = bytearray(old)
        fd = os.open(p, os.O_RDWR)
        try:
            for off, n, seed in ((100, 5000, 601), (BLOCK - 10, 20, 602),
                                 (3 * MiB + 1, MiB, 603), (len(old) - 3, 5, 604)):
                buf = data(n, seed)
                pwrite_all(fd, buf, off)
                pwrite_model(model, buf, off)
            check_eq(fd_contents(fd), bytes(model), "over.big read back before close")
        finally:
            os.close(fd)
        check_blob("over.big", model)
        q = os.path.join(m, "over.small")
        fd = os.open(q, os.O_WRONLY)
        try:
            os.pwrite(fd, b"W", 6)
        finally:
            os.close(fd)
        check_blob("over.small", b"hello World")
        remount(m)
        check_file(p, model, "over.big after remount")
        check_file(q, b"hello World", "over.small after remount")


def test_writes_forwards_and_backwards():
    rnd = random.Random(700)
    size = 3 * MiB + 11
    # written by another client before the mount looks (a mount keeps what a listing
    # said of a name for entry_timeout, also after its own changes in the directory)
    old = data(BLOCK + 2 * MiB + 1, 701)
    client.put_blob("offsets.old", old)
    with ft.mounted(URL) as m:
        p = os.path.join(m, "offsets.new")
        model = bytearray()
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            seed = 7000
            for off in range(0, size, 65536 + 13):           # forwards, with gaps
                buf = data(40000, seed)
                pwrite_all(fd, buf, off)
                pwrite_model(model, buf, off)
                seed += 1
            for off in range(size - 7001, 0, -100003):       # backwards
                buf = data(7001, seed)
                pwrite_all(fd, buf, off)
                pwrite_model(model, buf, off)
                seed += 1
            for _ in range(200):                             # anywhere
                off = rnd.randrange(0, size)
                buf = data(rnd.choice([1, 2, 4095, 4097, rnd.randrange(1, 200000)]), seed)
                pwrite_all(fd, buf, off)
                pwrite_model(model, buf, off)
                seed += 1
            check_eq(fd_contents(fd), bytes(model), "offsets.new read back before close")
        finally:
            os.close(fd)
        check_blob("offsets.new", model)

        # the same on an existing blob that spans two blocks
        q = os.path.join(m, "offsets.old")
        model2 = bytearray(old)
        fd = os.open(q, os.O_RDWR)
        try:
            offs = [rnd.randrange(0, len(old)) for _ in range(60)]
            offs += [BLOCK - 1, BLOCK, BLOCK - 4096, len(old) - 1]
            for off in sorted(offs) + sorted(offs, reverse=True):
                buf = data(rnd.randrange(1, 70000), seed)
                seed += 1
                pwrite_all(fd, buf, off)
                pwrite_model(model2, buf, off)
            for off in (0, BLOCK - 3, len(model2) - 100):
                check_eq(pread_all(fd, 9000, off), bytes(model2[off:off + 9000]),
                         "offsets.old read back at %d before close" % off)
        finally:
            os.close(fd)
        check_blob("offsets.old", model2)
        remount(m)
        check_file(p, model, "offsets.new after remount")
        check_file(q, model2, "offsets.old after remount")


def test_sparse_files():
    client.put_blob("sparse.old", b"x" * 1000)
    with ft.mounted(URL) as m:
        p = os.path.join(m, "sparse.new")
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            os.lseek(fd, 5 * MiB + 3, os.SEEK_SET)
            write_all(fd, b"tail")
            want = bytes(5 * MiB + 3) + b"tail"
            check_eq(os.fstat(fd).st_size, len(want), "sparse.new size")
            check_eq(pread_all(fd, 8192, 4 * MiB), bytes(8192), "hole read before close")
            check_eq(fd_contents(fd), want, "sparse.new before close")
        finally:
            os.close(fd)
        check_blob("sparse.new", want)
        # past the end of an existing blob, beyond the first block
        q = os.path.join(m, "sparse.old")
        fd = os.open(q, os.O_WRONLY)
        try:
            pwrite_all(fd, b"y" * 10, BLOCK + 2 * MiB)
        finally:
            os.close(fd)
        want_old = b"x" * 1000 + bytes(BLOCK + 2 * MiB - 1000) + b"y" * 10
        check_blob("sparse.old", want_old)
        # holes between writes at both ends of a new file, and a hole at its end
        r = os.path.join(m, "sparse.ends")
        fd = os.open(r, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            pwrite_all(fd, b"B", 3 * MiB)
            pwrite_all(fd, b"A", 0)
            os.ftruncate(fd, 4 * MiB)
        finally:
            os.close(fd)
        want_ends = b"A" + bytes(3 * MiB - 1) + b"B" + bytes(MiB - 1)
        check_blob("sparse.ends", want_ends)
        remount(m)
        check_file(p, want, "sparse.new after remount")
        check_file(q, want_old, "sparse.old after remount")
        check_file(r, want_ends, "sparse.ends after remount")


def test_truncate_by_path():
    blobs = {"trunc.grow": data(1000, 800), "trunc.shrink": data(5 * MiB + 1, 801),
             "trunc.zero": data(3000, 802), "trunc.blocks": data(BLOCK + 3 * MiB, 803),
             "trunc.same": data(4096, 804), "trunc.otrunc": data(2 * MiB, 805)}
    for n, d in blobs.items():
        client.put_blob(n, d)
    want = {
        "trunc.grow": blobs["trunc.grow"] + bytes(2 * MiB + 5 - 1000),
        "trunc.shrink": blobs["trunc.shrink"][:1234],
        "trunc.zero": b"",
        "trunc.blocks": blobs["trunc.blocks"][:BLOCK - 1],
        "trunc.same": blobs["trunc.same"],
        "trunc.otrunc": b"",
    }
    with ft.mounted(URL) as m:
        for n in ("trunc.grow", "trunc.shrink", "trunc.zero", "trunc.blocks", "trunc.same"):
            p = os.path.join(m, n)
            os.truncate(p, len(want[n]))
            check_eq(os.stat(p).st_size, len(want[n]), "%s: st_size after truncate" % n)
            # no close follows a truncate by path: the store has it at once
            check_blob(n, want[n], "blob %s right after truncate()" % n)
            check_file(p, want[n], n)
        # open(O_TRUNC) and close without writing
        os.close(os.open(os.path.join(m, "trunc.otrunc"), os.O_WRONLY | os.O_TRUNC))
        check_blob("trunc.otrunc", b"", "trunc.otrunc after open(O_TRUNC) and close")
        remount(m)
        for n, w in want.items():
            check_file(os.path.join(m, n), w, n + " after remount")


def test_truncate_open_file():
    old = data(BLOCK + MiB, 901)
    client.put_blob("ftrunc.old", old)  # before the mount looks
    with ft.mounted(URL) as m:
        p = os.path.join(m, "ftrunc.new")
        model = bytearray()
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)

        def step(what):
            check_eq(os.fstat(fd).st_size, len(model), "ftrunc.new st_size after %s" % what)
            check_eq(fd_contents(fd), bytes(model), "ftrunc.new after %s" % what)

        try:
            buf = data(3 * MiB, 900)
            write_all(fd, buf)                   # position 3 MiB
            model += buf
            step("writing 3 MiB")
            os.ftruncate(fd, MiB + 7)
            truncate_model(model, MiB + 7)
            step("ftruncate to 1 MiB + 7")
            check_eq(os.pread(fd, 100, 2 * MiB), b"", "read past the new end")
            write_all(fd, b"after")              # at the old position: leaves a hole
            pwrite_model(model, b"after", 3 * MiB)
            step("writing at 3 MiB after shrinking")
            os.ftruncate(fd, 5 * MiB)
            truncate_model(model, 5 * MiB)
            step("ftruncate to 5 MiB")
            os.truncate(p, 100)                  # by path, while open
            truncate_model(model, 100)
            step("truncate(path) to 100 while open")
            pwrite_all(fd, b"z" * 10, 200)
            pwrite_model(model, b"z" * 10, 200)
            step("pwrite at 200")
            os.ftruncate(fd, 0)
            truncate_model(model, 0)
            step("ftruncate to 0")
            pwrite_all(fd, b"again", 0)
            pwrite_model(model, b"again", 0)
            step("writing again")
        finally:
            os.close(fd)
        check_blob("ftrunc.new", model)

        q = os.path.join(m, "ftrunc.old")
        fd = os.open(q, os.O_RDWR)
        try:
            os.ftruncate(fd, 10)
            pwrite_all(fd, b"12345", 5)
            os.ftruncate(fd, BLOCK + 1)
        finally:
            os.close(fd)
        want = old[:5] + b"12345" + bytes(BLOCK + 1 - 10)
        check_blob("ftrunc.old", want)
        remount(m)
        check_file(p, model, "ftrunc.new after remount")
        check_file(q, want, "ftrunc.old after remount")


# --------------------------------------------------------------------------------------
# unlink, open files, more than one fd

def test_unlink():
    client.put_blob("unlink.outside", b"from outside")
    with ft.mounted(URL) as m:
        p = os.path.join(m, "unlink.mine")
        write_path(p, b"mine")
        check_blob("unlink.mine", b"mine")
        for n in ("unlink.mine", "unlink.outside"):
            os.unlink(os.path.join(m, n))
            expect_oserror(errno.ENOENT, os.stat, os.path.join(m, n))
            check(n not in os.listdir(m), "%s still listed after unlink" % n)
            check_no_blob(n, "after unlink")
        expect_oserror(errno.ENOENT, os.unlink, p)
        os.mkdir(os.path.join(m, "unlink.dir"))
        expect_oserror(errno.EISDIR, os.unlink, os.path.join(m, "unlink.dir"))
        remount(m)
        expect_oserror(errno.ENOENT, os.stat, p)
        check_eq({n for n in os.listdir(m) if n.startswith("unlink.")}, {"unlink.dir"},
                 "unlink.* after remount")
    check_eq(blob_names("unlink."), {"unlink.dir"}, "blobs")


def test_unlink_open_file():
    a = data(MiB, 1000)
    with ft.mounted(URL) as m:
        p = os.path.join(m, "uopen.f")
        write_path(p, a)
        fd = os.open(p, os.O_RDWR)
        try:
            os.unlink(p)
            expect_oserror(errno.ENOENT, os.stat, p)
            check("uopen.f" not in os.listdir(m), "uopen.f listed after unlink")
            check_eq(pread_all(fd, len(a) + 1, 0), a, "read of the unlinked open file")
            model = bytearray(a)
            for buf, off in ((b"B" * 100, 10), (data(2 * MiB, 1001), MiB - 5)):
                pwrite_all(fd, buf, off)
                pwrite_model(model, buf, off)
            check_eq(os.fstat(fd).st_size, len(model), "fstat of the unlinked open file")
            check_eq(fd_contents(fd), bytes(model), "unlinked open file after writes")
            os.fsync(fd)
        finally:
            os.close(fd)
        check_eq(blob_names("uopen."), set(), "uopen.* blobs after the last close")
        hidden = [n for n in os.listdir(m) if n.startswith(".fuse_hidden")]
        check(not hidden, "leftover %s after the last close" % hidden)
        # a new file, unlinked before its first close
        q = os.path.join(m, "uopen.new")
        fd = os.open(q, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            write_all(fd, b"never stored")
            os.unlink(q)
            write_all(fd, b", still writable")
            check_eq(fd_contents(fd), b"never stored, still writable", "unlinked new file")
        finally:
            os.close(fd)
        check_eq(blob_names("uopen."), set(), "uopen.* blobs after closing the new file")
        remount(m)
        check_eq({n for n in os.listdir(m) if n.startswith("uopen.")}, set(),
                 "uopen.* after remount")
    check_eq(blob_names("uopen."), set(), "uopen.* blobs in the end")
    check_eq([n for n in blob_names("") if ".fuse_hidden" in n], [], "hidden blobs")


def test_unlinked_open_file_leaves_new_file_alone():
    # An editor's pattern: the old file is unlinked while open, a new one takes its
    # name, then the old fd is written and closed: the new file must stay.
    with ft.mounted(URL) as m:
        p = os.path.join(m, "reuse.f")
        write_path(p, b"old version")
        fd = os.open(p, os.O_RDWR)
        try:
            os.unlink(p)
            write_path(p, b"new version")
            pwrite_all(fd, b"OLD", 0)
        finally:
            os.close(fd)
        check_blob("reuse.f", b"new version", "reuse.f after the old fd's close")
        check_file(p, b"new version", "reuse.f")


def test_second_fd_same_file():
    with ft.mounted(URL) as m:
        p = os.path.join(m, "twofd.f")
        model = bytearray()
        fd1 = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        fd2 = None
        try:
            a = data(2 * MiB, 1100)
            write_all(fd1, a)
            model += a
            fd2 = os.open(p, os.O_RDWR)
            check_eq(fd_contents(fd2), bytes(model), "second fd sees the first fd's writes")
            pwrite_all(fd2, b"second" * 1000, MiB)
            pwrite_model(model, b"second" * 1000, MiB)
            check_eq(fd_contents(fd1), bytes(model), "first fd sees the second fd's writes")
            c = data(300 * KiB, 1101)
            write_all(fd1, c)                    # at fd1's position, 2 MiB
            pwrite_model(model, c, 2 * MiB)
            check_eq(os.fstat(fd2).st_size, len(model), "size seen through the second fd")
            os.close(fd1)
            fd1 = None
            check_blob("twofd.f", model, "blob after closing the first fd")
            os.lseek(fd2, 0, os.SEEK_END)
            write_all(fd2, b"last")
            model += b"last"
            check_eq(fd_contents(fd2), bytes(model), "second fd after the first closed")
        finally:
            for fd in (fd1, fd2):
                if fd is not None:
                    os.close(fd)
        check_blob("twofd.f", model, "blob after closing both")
        check_file(p, model, "twofd.f")


def test_concurrent_writers():
    n_threads = 6
    errors = []
    want = {}
    with ft.mounted(URL) as m:
        barrier = threading.Barrier(n_threads)

        def worker(i):
            rnd = random.Random(1200 + i)
            name = "conc.%d" % i
            model = bytearray()
            try:
                fd = os.open(os.path.join(m, name), os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    barrier.wait(30)
                    size = rnd.randrange(2 * MiB, 12 * MiB)
                    seed = 12000 + 1000 * i
                    while len(model) < size:
                        buf = data(rnd.choice([4096, 65536 + 1, rnd.randrange(1, 3 * MiB)]), seed)
                        seed += 1
                        write_all(fd, buf)
                        model += buf
                    for _ in range(20):  # and some rewrites in the middle
                        off = rnd.randrange(0, len(model))
                        buf = data(rnd.randrange(1, 100000), seed)
                        seed += 1
                        pwrite_all(fd, buf, off)
                        pwrite_model(model, buf, off)
                    if fd_contents(fd) != bytes(model):
                        errors.append("%s: read back before close differs" % name)
                finally:
                    os.close(fd)
                want[name] = bytes(model)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append("%s: %s: %s" % (name, type(e).__name__, e))

        threads = [threading.Thread(target=worker, args=(i,), daemon=True)
                   for i in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        check(not any(t.is_alive() for t in threads), "writer threads still running after 120 s")
        check(not errors, "%d writer(s) failed; first: %s" % (len(errors), errors[:1]))
        for name, buf in sorted(want.items()):
            check_blob(name, buf)
        remount(m)
        for name, buf in sorted(want.items()):
            check_file(os.path.join(m, name), buf, name + " after remount")


# --------------------------------------------------------------------------------------
# Directories, renames

MARKER_META = {"hdi_isfolder": "true"}


def check_marker(name):
    try:
        props = client.get_properties(name)
    except ft.BlobError as e:
        raise ft.CheckFailed("directory marker %r: %s" % (name, e)) from None
    check_eq(int(props["content-length"]), 0, "size of marker blob %r" % name)
    meta = fscheck.blob_meta(client, name)
    check_eq(meta.get("hdi_isfolder", "").lower(), "true",
             "metadata hdi_isfolder of marker blob %r (all: %r)" % (name, meta))


def test_mkdir_rmdir():
    client.put_blob("mk.out/x/file", b"outside")  # mk.out/x: a prefix, no marker
    with ft.mounted(URL) as m:
        d = os.path.join(m, "mk")
        os.mkdir(d)
        check(stat.S_ISDIR(os.stat(d).st_mode), "mk is not a directory after mkdir")
        check_eq(os.listdir(d), [], "listing of the new mk")
        check_marker("mk")
        expect_oserror(errno.EEXIST, os.mkdir, d)
        write_path(os.path.join(m, "mk.file"), b"f")
        expect_oserror(errno.EEXIST, os.mkdir, os.path.join(m, "mk.file"))
        expect_oserror(errno.ENOENT, os.mkdir, os.path.join(m, "mk.nope/sub"))
        os.makedirs(os.path.join(d, "a/b/c"))
        for n in ("mk/a", "mk/a/b", "mk/a/b/c"):
            check_marker(n)
        f = os.path.join(d, "a/b/c/f.txt")
        write_path(f, b"in c")
        check_eq(os.listdir(os.path.join(d, "a/b/c")), ["f.txt"], "listing of mk/a/b/c")
        for n in ("mk/a/b/c", "mk"):
            expect_oserror(errno.ENOTEMPTY, os.rmdir, os.path.join(m, n))
        expect_oserror(errno.ENOTEMPTY, os.rmdir, os.path.join(m, "mk.out/x"))
        expect_oserror(errno.ENOTDIR, os.rmdir, os.path.join(m, "mk.file"))
        expect_oserror(errno.ENOENT, os.rmdir, os.path.join(m, "mk.nope"))
        check_blob("mk/a/b/c/f.txt", b"in c")
        os.unlink(f)
        os.rmdir(os.path.join(d, "a/b/c"))
        expect_oserror(errno.ENOENT, os.stat, os.path.join(d, "a/b/c"))
        check_eq(os.listdir(os.path.join(d, "a/b")), [], "listing of mk/a/b after rmdir")
        check_eq(blob_names("mk/"), {"mk/a", "mk/a/b"}, "blobs under mk/ after rmdir")
        remount(m)
        # empty directories live on as their markers
        check(stat.S_ISDIR(os.stat(os.path.join(d, "a/b")).st_mode), "mk/a/b after remount")
        check_eq(os.listdir(os.path.join(d, "a/b")), [], "listing of mk/a/b after remount")
        for n in ("a/b", "a", ""):
            os.rmdir(os.path.join(d, n))
        expect_oserror(errno.ENOENT, os.stat, d)
    check_eq(blob_names("mk"), {"mk.file", "mk.out/x/file"}, "blobs in the end")


def test_rename_file():
    big = data(BLOCK + 3 * MiB, 1300)
    client.put_blob("ren.big", big)
    with ft.mounted(URL) as m:
        j = lambda n: os.path.join(m, n)  # noqa: E731
        write_path(j("ren.a"), b"A")
        os.rename(j("ren.a"), j("ren.b"))
        expect_oserror(errno.ENOENT, os.stat, j("ren.a"))
        check_file(j("ren.b"), b"A", "ren.b")
        check_no_blob("ren.a", "after rename")
        check_blob("ren.b", b"A")
        # over an existing file: replaced
        write_path(j("ren.c"), b"C")
        os.rename(j("ren.b"), j("ren.c"))
        check_file(j("ren.c"), b"A", "ren.c after rename over it")
        check_no_blob("ren.b", "after rename")
        check_blob("ren.c", b"A")
        # RENAME_NOREPLACE: EEXIST, both intact; to a free name, it renames
        write_path(j("ren.d"), b"D")
        write_path(j("ren.e"), b"E")
        expect_oserror(errno.EEXIST, renameat2, j("ren.d"), j("ren.e"), RENAME_NOREPLACE)
        check_file(j("ren.d"), b"D", "ren.d after refused rename")
        check_file(j("ren.e"), b"E", "ren.e after refused rename")
        check_blob("ren.d", b"D")
        check_blob("ren.e", b"E")
        renameat2(j("ren.d"), j("ren.f"), RENAME_NOREPLACE)
        check_file(j("ren.f"), b"D", "ren.f")
        check_no_blob("ren.d", "after RENAME_NOREPLACE to a free name")
        # into a directory, and a big blob
        os.mkdir(j("ren.dir"))
        os.rename(j("ren.e"), j("ren.dir/e2"))
        os.rename(j("ren.big"), j("ren.dir/big2"))
        check_blob("ren.dir/e2", b"E")
        check_blob("ren.dir/big2", big)
        expect_oserror(errno.ENOENT, os.rename, j("ren.nope"), j("ren.x"))
        remount(m)
        check_file(j("ren.dir/big2"), big, "ren.dir/big2 after remount")
        check_eq({n for n in os.listdir(m) if n.startswith("ren.")},
                 {"ren.c", "ren.f", "ren.dir"}, "ren.* after remount")
    check_eq(blob_names("ren."), {"ren.c", "ren.f", "ren.dir", "ren.dir/e2", "ren.dir/big2"},
             "blobs")


def test_rename_before_close():
    client.put_blob("rbc.old", b"0123456789")  # before the mount looks
    with ft.mounted(URL) as m:
        j = lambda n: os.path.join(m, n)  # noqa: E731
        os.mkdir(j("rbc.dir"))
        a, b = data(MiB + 1, 1400), data(BLOCK + 1, 1401)
        fd = os.open(j("rbc.tmp"), os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            write_all(fd, a)
            os.rename(j("rbc.tmp"), j("rbc.final"))
            write_all(fd, b)
            os.rename(j("rbc.final"), j("rbc.dir/moved"))
            write_all(fd, b"end")
        finally:
            os.close(fd)
        want = a + b + b"end"
        check_blob("rbc.dir/moved", want)
        check_eq(blob_names("rbc."), {"rbc.dir", "rbc.dir/moved", "rbc.old"}, "rbc.* blobs")
        check_file(j("rbc.dir/moved"), want, "rbc.dir/moved")
        # an existing blob opened, renamed, written, closed
        fd = os.open(j("rbc.old"), os.O_RDWR)
        try:
            os.rename(j("rbc.old"), j("rbc.new"))
            pwrite_all(fd, b"AB", 2)
        finally:
            os.close(fd)
        check_blob("rbc.new", b"01AB456789")
        check_no_blob("rbc.old", "after rename of the open file")


def test_rename_directory():
    outside = {"mvd/src/outside/x.bin": data(100 * KiB, 1500),
               "mvd/src/outside/deeper/y.bin": data(10, 1501),
               "mvd/src2/keep.txt": b"a sibling whose name extends src\n"}
    for n, d in outside.items():
        client.put_blob(n, d)
    f1 = data(MiB, 1502)
    want = {"outside": ("d", None), "outside/x.bin": ("f", outside["mvd/src/outside/x.bin"]),
            "outside/deeper": ("d", None),
            "outside/deeper/y.bin": ("f", outside["mvd/src/outside/deeper/y.bin"]),
            "sub": ("d", None), "sub/f2": ("f", b"f2"), "empty": ("d", None),
            "f1": ("f", f1), "lnk": ("l", "f1")}
    with ft.mounted(URL) as m:
        j = lambda n: os.path.join(m, n)  # noqa: E731
        os.mkdir(j("mvd/src/sub"))
        os.mkdir(j("mvd/src/empty"))
        write_path(j("mvd/src/sub/f2"), b"f2")
        write_path(j("mvd/src/f1"), f1)
        os.symlink("f1", j("mvd/src/lnk"))
        fscheck.check_trees(fscheck.store_tree(client, "mvd/src/"), want, "mvd/src before mv")
        os.rename(j("mvd/src"), j("mvd/dst"))
        expect_oserror(errno.ENOENT, os.stat, j("mvd/src"))
        check_eq(set(os.listdir(j("mvd"))), {"dst", "src2"}, "listing of mvd after rename")
        check_eq(read_path(j("mvd/dst/outside/deeper/y.bin")),
                 outside["mvd/src/outside/deeper/y.bin"], "y.bin under the new name")
        fscheck.check_trees(fscheck.store_tree(client, "mvd/dst/"), want, "mvd/dst after rename")
        check_eq(sorted(n for n in blob_names("mvd/src") if n == "mvd/src"
                        or n.startswith("mvd/src/")), [], "blobs left of mvd/src")
        check_blob("mvd/src2/keep.txt", outside["mvd/src2/keep.txt"])
        # mv(1), then RENAME_NOREPLACE onto an existing directory
        r = subprocess.run(["mv", j("mvd/dst"), j("mvd/dst2")], capture_output=True, timeout=60)
        check_eq(r.returncode, 0, "mv exit status (stderr %r)" % r.stderr[-300:])
        os.mkdir(j("mvd/other"))
        expect_oserror(errno.EEXIST, renameat2, j("mvd/dst2"), j("mvd/other"), RENAME_NOREPLACE)
        remount(m)
        check_eq(set(os.listdir(j("mvd"))), {"dst2", "src2", "other"}, "mvd after remount")
        check_eq(os.listdir(j("mvd/other")), [], "mvd/other after remount")
        check_eq(read_path(j("mvd/dst2/f1")), f1, "mvd/dst2/f1 after remount")
        check_eq(os.readlink(j("mvd/dst2/lnk")), "f1", "mvd/dst2/lnk after remount")
    fscheck.check_trees(fscheck.store_tree(client, "mvd/dst2/"), want, "mvd/dst2 in the end")
    # mvd/src had no marker (a prefix of outside blobs): mvd/dst2 may or may not get one
    check_eq({n for n in blob_names("mvd/") if not n.startswith("mvd/dst2/")} - {"mvd/dst2"},
             {"mvd/other", "mvd/src2/keep.txt"}, "other blobs under mvd/")


def test_rm_rf_tree():
    client.put_many([("rmrf/tree/outside/a.bin", data(5000, 1600)),
                     ("rmrf/tree/outside/deep/b.bin", b"b"),
                     ("rmrf/tree2/keep.txt", b"keep me")])
    with ft.mounted(URL) as m:
        t = os.path.join(m, "rmrf/tree")
        os.makedirs(os.path.join(t, "x/y/z"))
        os.mkdir(os.path.join(t, "empty"))
        for i in range(30):
            write_path(os.path.join(t, "x" if i % 2 else "x/y/z", "f%02d" % i), data(i * 100, i))
        os.symlink("x/f01", os.path.join(t, "link"))
        check(len(blob_names("rmrf/tree/")) > 30, "the tree was not built")
        r = subprocess.run(["rm", "-rf", t], capture_output=True, timeout=120)
        check_eq(r.returncode, 0, "rm -rf exit status (stderr %r)" % r.stderr[-300:])
        expect_oserror(errno.ENOENT, os.stat, t)
        check_eq(os.listdir(os.path.join(m, "rmrf")), ["tree2"], "listing of rmrf")
        check_eq(read_path(os.path.join(m, "rmrf/tree2/keep.txt")), b"keep me", "tree2/keep.txt")
    check_eq(blob_names("rmrf/"), {"rmrf/tree2/keep.txt"}, "blobs under rmrf/")


SPECIAL = ["with space.txt", "100%.txt", "a+b.txt", "hash#tag.txt", "ünïcödé ✓.txt",
           "what?.txt", "k=v&x;y.txt", "literal%20not-space.txt", "日本語.txt",
           "~tilde'quote!(x)*.txt"]
SPECIAL_DIR = "sp ecial%#+ dïr"


def test_special_names():
    base = "names/" + SPECIAL_DIR
    want = {n: ("content of %s\n" % n).encode() for n in SPECIAL}
    with ft.mounted(URL) as m:
        d = os.path.join(m, base)
        os.makedirs(d)
        for n, c in want.items():
            write_path(os.path.join(d, n), c)
        check_eq(set(os.listdir(d)), set(want), "listing")
        for n, c in want.items():
            check_blob(base + "/" + n, c)
        check_marker(base)
        # rename between odd names, and delete some
        os.rename(os.path.join(d, "a+b.txt"), os.path.join(d, "c #%+ d.txt"))
        want["c #%+ d.txt"] = want.pop("a+b.txt")
        os.unlink(os.path.join(d, "hash#tag.txt"))
        del want["hash#tag.txt"]
        os.mkdir(os.path.join(d, "sub %2B#"))
        remount(m)
        check_eq(set(os.listdir(d)), set(want) | {"sub %2B#"}, "listing after remount")
        for n, c in want.items():
            check_file(os.path.join(d, n), c, n)
    check_eq(blob_names(base + "/"), {base + "/" + n for n in want} | {base + "/sub %2B#"},
             "blob names")
    for n, c in want.items():
        check_blob(base + "/" + n, c)


# --------------------------------------------------------------------------------------
# Symlinks, times, modes

def test_symlink_readlink():
    client.put_blob("sym.outside", b"sym.target", metadata={"is_symlink": "true"})
    targets = {"sym.rel": "sym.target", "sym.up": "../x/y ünï", "sym.abs": "/etc/hostname",
               "sym.dangling": "no/such/thing"}
    with ft.mounted(URL) as m:
        j = lambda n: os.path.join(m, n)  # noqa: E731
        write_path(j("sym.target"), b"the target\n")
        for n, t in targets.items():
            os.symlink(t, j(n))
            check_eq(os.readlink(j(n)), t, "readlink %s" % n)
            st = os.lstat(j(n))
            check(stat.S_ISLNK(st.st_mode), "%s: not a symlink (mode %o)" % (n, st.st_mode))
            check_eq(st.st_size, len(t.encode()), "%s: lstat size" % n)
            check_eq(client.get_blob(n), t.encode(), "content of blob %s" % n)
            check_eq(fscheck.blob_meta(client, n).get("is_symlink", "").lower(), "true",
                     "metadata is_symlink of blob %s" % n)
        check_eq(read_path(j("sym.rel")), b"the target\n", "read through sym.rel")
        check_eq(read_path(j("sym.outside")), b"the target\n", "read through sym.outside")
        check_eq(os.readlink(j("sym.outside")), "sym.target", "readlink of a blob from outside")
        expect_oserror(errno.EEXIST, os.symlink, "x", j("sym.rel"))
        os.rename(j("sym.rel"), j("sym.moved"))
        check_eq(fscheck.blob_meta(client, "sym.moved").get("is_symlink", "").lower(), "true",
                 "metadata is_symlink after rename")
        os.unlink(j("sym.dangling"))
        remount(m)
        for n, t in list(targets.items()) + [("sym.moved", "sym.target")]:
            if n in ("sym.rel", "sym.dangling"):
                expect_oserror(errno.ENOENT, os.lstat, j(n))
                continue
            check(stat.S_ISLNK(os.lstat(j(n)).st_mode), "%s not a symlink after remount" % n)
            check_eq(os.readlink(j(n)), t, "readlink %s after remount" % n)
        check_file(j("sym.target"), b"the target\n", "sym.target after it was linked")
    check_eq(blob_names("sym."), {"sym.outside", "sym.target", "sym.up", "sym.abs",
                                  "sym.moved"}, "blobs")


def test_utimens_kept():
    mtime = 1234567890 * 10**9 + 123456789
    mtime2 = 1300000000 * 10**9 + 5
    with ft.mounted(URL) as m:
        p, q, d = (os.path.join(m, n) for n in ("utime.f", "utime.open", "utime.d"))
        write_path(p, b"times")
        os.utime(p, ns=(mtime, mtime))
        check_eq(os.stat(p).st_mtime_ns, mtime, "utime.f st_mtime_ns after utime")
        # futimens while the file is open and written (what cp -p does), then close
        fd = os.open(q, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            write_all(fd, data(2 * MiB, 1700))
            os.utime(fd, ns=(mtime2, mtime2))
        finally:
            os.close(fd)
        check_eq(os.stat(q).st_mtime_ns, mtime2, "utime.open st_mtime_ns after close")
        # now: about now
        write_path(os.path.join(m, "utime.now"), b"now")
        os.utime(os.path.join(m, "utime.now"))
        age = time.time() - os.stat(os.path.join(m, "utime.now")).st_mtime
        check(abs(age) < 60, "utime.now: mtime %.0f s from now after utime(None)" % age)
        os.mkdir(d)
        os.utime(d, ns=(mtime, mtime))  # tar does this to every directory: must not fail
        remount(m)
        check_eq(os.stat(p).st_mtime_ns, mtime, "utime.f st_mtime_ns after remount")
        check_eq(os.stat(q).st_mtime_ns, mtime2, "utime.open st_mtime_ns after remount")
        check_file(p, b"times", "utime.f")
        ft.log("utime.d mtime after remount: %d (set %d)" % (os.stat(d).st_mtime_ns, mtime))


def test_chmod_chown_ignored():
    with ft.mounted(URL) as m:
        p = os.path.join(m, "mode.f")
        write_path(p, b"mode")
        before = os.stat(p)
        os.chmod(p, 0o600)
        os.chmod(p, 0o4755)
        os.chown(p, 4321, 4321)
        os.chown(p, -1, before.st_gid)
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fchmod(fd, 0o640)
            os.fchown(fd, before.st_uid, 1234)
        finally:
            os.close(fd)
        d = os.path.join(m, "mode.d")
        os.mkdir(d)
        os.chmod(d, 0o700)
        after = os.stat(p)
        check_eq((stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid),
                 (stat.S_IMODE(before.st_mode), before.st_uid, before.st_gid),
                 "mode.f (mode, uid, gid) after chmod/chown (ignored)")
        check_file(p, b"mode", "mode.f")
    check_blob("mode.f", b"mode")


# --------------------------------------------------------------------------------------
# Changes from outside, failed uploads

def test_conflict_detected():
    v1, v2 = b"version 1 from outside\n", b"version 2 from outside\n"
    big2 = data(BLOCK + MiB, 1801)
    client.put_blob("conflict.small", v1)
    client.put_blob("conflict.big", data(3 * MiB, 1800))
    with ft.mounted(URL) as m:
        for name, outside, mine in (("conflict.small", v2, b"written in the mount\n"),
                                    ("conflict.big", big2, data(BLOCK + 2 * MiB, 1802))):
            fd = os.open(os.path.join(m, name), os.O_WRONLY | os.O_TRUNC)
            closed = False
            try:
                client.put_blob(name, outside)
                write_all(fd, mine)
                closed = True
                expect_eio(os.close, fd)
            finally:
                if not closed:
                    os.close(fd)
            check_blob(name, outside, "%s: the outside version after the conflict" % name)
        # the mount still takes writes
        write_path(os.path.join(m, "conflict.after"), b"after the conflicts")
        check_blob("conflict.after", b"after the conflicts")


def test_conflict_overwrite_option():
    client.put_blob("conflictow.small", b"version 1\n")
    client.put_blob("conflictow.big", data(3 * MiB, 1900))
    with ft.mounted(URL, opts=["conflict=overwrite"]) as m:
        for name, outside, mine in (("conflictow.small", b"version 2\n", b"the mount's\n"),
                                    ("conflictow.big", data(BLOCK + MiB, 1901),
                                     data(BLOCK + 2 * MiB, 1902))):
            fd = os.open(os.path.join(m, name), os.O_WRONLY | os.O_TRUNC)
            try:
                client.put_blob(name, outside)
                write_all(fd, mine)
            finally:
                os.close(fd)
            check_blob(name, mine, "%s: the mount's version with conflict=overwrite" % name)


def _failing_mount(px):
    return ft.mounted(px.url(URL), opts=FAIL_OPTS)


def test_failed_upload_close_eio():
    old = data(200 * KiB, 2000)
    client.put_blob("failc.f", old)
    with HttpProxy(az.port) as px, _failing_mount(px) as m:
        p = os.path.join(m, "failc.f")
        fd = os.open(p, os.O_RDWR)
        closed = False
        try:
            rule = px.fail_put("failc.", status=500)
            pwrite_all(fd, b"NEW" * 1000, 0)
            write_all(fd, data(300 * KiB, 2001))
            t0 = time.monotonic()
            closed = True
            expect_eio(os.close, fd)
            ft.log("close failed after %.1f s and %d refused PUTs" % (
                time.monotonic() - t0, rule.hits))
        finally:
            if not closed:
                os.close(fd)
        check(rule.hits >= 1, "no PUT of failc.f reached the proxy")
        check_blob("failc.f", old, "failc.f after the failed close")
        # a new file that cannot be stored: its create (if that stores a blob at once)
        # or its close fails
        try:
            fd = os.open(os.path.join(m, "failc.new"), os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError as e:
            check_eq(fscheck.errname(e.errno), "EIO", "create of failc.new")
        else:
            closed = False
            try:
                write_all(fd, b"never stored")
                closed = True
                expect_eio(os.close, fd)
            finally:
                if not closed:
                    os.close(fd)
        check_no_blob("failc.new", "after the failed close")
        # uploads work again once the service does
        px.clear_faults()
        write_path(os.path.join(m, "failc.after"), b"stored")
        check_blob("failc.after", b"stored", "failc.after, written after the faults cleared")
    check_blob("failc.f", old, "failc.f in the end")


def test_failed_upload_fsync_eio():
    old = data(100 * KiB, 2100)
    client.put_blob("fails.f", old)
    with HttpProxy(az.port) as px, _failing_mount(px) as m:
        fd = os.open(os.path.join(m, "fails.f"), os.O_RDWR)
        try:
            px.fail_put("fails.", reset=True)  # connections cut instead of an answer
            pwrite_all(fd, data(500 * KiB, 2101), 50)
            expect_eio(os.fsync, fd)
            check_blob("fails.f", old, "fails.f after the failed fsync")
        finally:
            try:
                os.close(fd)
            except OSError as e:  # still failing: an error is right, any other is not
                check_eq(fscheck.errname(e.errno), "EIO", "close after the failed fsync")
        check_blob("fails.f", old, "fails.f after close")


@ft.timeout(240)
def test_failed_upload_large_file():
    # Blocks go up while the file is written: the failure may show at a write(), at
    # fsync() or at close(), but it must show, as EIO, and the old blob stays.
    old = data(3 * MiB, 2200)
    client.put_blob("faill.f", old)
    with HttpProxy(az.port) as px, _failing_mount(px) as m:
        fd = os.open(os.path.join(m, "faill.f"), os.O_WRONLY)  # overwritten from 0 on
        px.fail_put("faill.", status=503)
        errors = []
        try:
            for i in range(2 * BLOCK // MiB + 3):
                try:
                    write_all(fd, data(MiB, 22000 + i))
                except OSError as e:
                    errors.append(("write", e.errno))
                    break
            try:
                os.fsync(fd)
            except OSError as e:
                errors.append(("fsync", e.errno))
        finally:
            try:
                os.close(fd)
            except OSError as e:
                errors.append(("close", e.errno))
        ft.log("errors reported: %s" % [(w, fscheck.errname(e)) for w, e in errors])
        check(errors, "writing %d MiB with every PUT failing reported no error" % (
            2 * BLOCK // MiB + 3))
        check_eq(sorted({fscheck.errname(e) for _, e in errors}), ["EIO"], "errors reported")
        check_blob("faill.f", old, "faill.f after the failed upload")
        px.clear_faults()
    check_blob("faill.f", old, "faill.f in the end")


# --------------------------------------------------------------------------------------
# Tools writing trees: cp -r, tar x, git clone

def _make_source_tree(root):
    """A local tree with the shapes a copy must keep; returns its root."""
    src = os.path.join(root, "src")
    os.makedirs(os.path.join(src, "deep/a/b/c/d"))
    os.makedirs(os.path.join(src, "emptydir"))
    os.makedirs(os.path.join(src, "bin"))
    files = {"empty.txt": b"", "small.txt": b"small\n", "bin/big.bin": data(3 * MiB + 5, 2300),
             "bin/mid.bin": data(70 * KiB, 2301), "deep/a/b/c/d/leaf.txt": b"leaf\n"}
    for n in ("with space.txt", "100%.txt", "a+b.txt", "hash#tag.txt", "ünïcödé ✓.txt"):
        files[n] = ("special %s\n" % n).encode()
    for i in range(20):
        files["deep/a/many%02d.txt" % i] = data(i * 37, 2310 + i)
    for n, d in files.items():
        with open(os.path.join(src, n), "wb") as f:
            f.write(d)
    os.symlink("small.txt", os.path.join(src, "link"))
    os.symlink("../../bin", os.path.join(src, "deep/a/binlink"))
    t = 1500000000
    for n in files:  # fixed mtimes: tar carries them
        os.utime(os.path.join(src, n), (t, t))
        t += 1
    return src


@ft.timeout(240)
def test_cp_r_tree():
    src = _make_source_tree(ft.make_tmpdir("cp"))
    want = fscheck.local_tree(src)
    with ft.mounted(URL) as m:
        os.mkdir(os.path.join(m, "cp"))
        r = subprocess.run(["cp", "-r", src, os.path.join(m, "cp")], capture_output=True,
                           timeout=180)
        check_eq(r.returncode, 0, "cp -r exit status (stderr %r)" % r.stderr[-500:])
        fscheck.check_trees(fscheck.local_tree(os.path.join(m, "cp/src")), want,
                            "the copy read through the mount")
        r = subprocess.run(["diff", "-r", "--no-dereference", src, os.path.join(m, "cp/src")],
                           capture_output=True, timeout=180)
        check_eq(r.returncode, 0, "diff -r (stdout %r)" % r.stdout[-300:])
    fscheck.check_trees(fscheck.store_tree(client, "cp/src/"), want, "the copy in Azurite")


@ft.timeout(240)
def test_tar_x():
    tmp = ft.make_tmpdir("tar")
    src = _make_source_tree(tmp)
    want = fscheck.local_tree(src)
    tarball = os.path.join(tmp, "src.tar")
    with tarfile.open(tarball, "w") as tf:
        tf.add(src, arcname="src")
    mtimes = {rel: os.lstat(os.path.join(src, rel)).st_mtime_ns
              for rel, (kind, _) in want.items() if kind == "f"}
    with ft.mounted(URL) as m:
        os.mkdir(os.path.join(m, "tar"))
        r = subprocess.run(["tar", "-xf", tarball, "-C", os.path.join(m, "tar")],
                           capture_output=True, timeout=180)
        check_eq(r.returncode, 0, "tar -x exit status (stderr %r)" % r.stderr[-500:])
        fscheck.check_trees(fscheck.local_tree(os.path.join(m, "tar/src")), want,
                            "the extracted tree read through the mount")
        remount(m)
        got = {rel: os.lstat(os.path.join(m, "tar/src", rel)).st_mtime_ns for rel in mtimes}
        wrong = sorted(rel for rel in mtimes if got[rel] != mtimes[rel])
        check(not wrong, "%d extracted files lost their mtime, e.g. %r: %d, want %d" % (
            len(wrong), wrong[:1], got[wrong[0]] if wrong else 0,
            mtimes[wrong[0]] if wrong else 0))
    fscheck.check_trees(fscheck.store_tree(client, "tar/src/"), want,
                        "the extracted tree in Azurite")


def _git(args, cwd, env):
    r = subprocess.run(["git"] + args, cwd=cwd, env=env, capture_output=True, timeout=180)
    check_eq(r.returncode, 0, "git %s exit status (stderr %r)" % (
        " ".join(args), r.stderr.decode("utf-8", "replace")[-500:]))
    return r.stdout.decode("utf-8", "replace")


@ft.timeout(300)
def test_git_clone():
    tmp = ft.make_tmpdir("git")
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=home, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="ferry test",
               GIT_AUTHOR_EMAIL="test@ferry.invalid", GIT_COMMITTER_NAME="ferry test",
               GIT_COMMITTER_EMAIL="test@ferry.invalid", GIT_CONFIG_COUNT="1",
               GIT_CONFIG_KEY_0="safe.directory", GIT_CONFIG_VALUE_0="*", LC_ALL="C")
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    _git(["init", "-q", "-b", "main"], repo, env)
    commits = [
        {"README.md": b"# a small repository\n", "src/main.c": b"int main(void) { return 0; }\n",
         "data/blob.bin": data(600 * KiB, 2400)},
        {"src/util.c": b"int util(void) { return 1; }\n", "docs/with space.md": b"spaces\n",
         "data/blob.bin": data(600 * KiB, 2401)},
        {"src/main.c": b"int main(void) { return util(); }\n", "run.sh": b"#!/bin/sh\necho hi\n",
         "ünïcödé.txt": "ünïcödé\n".encode()},
    ]
    for i, files in enumerate(commits):
        for n, d in files.items():
            os.makedirs(os.path.dirname(os.path.join(repo, n)) or repo, exist_ok=True)
            with open(os.path.join(repo, n), "wb") as f:
                f.write(d)
        if i == 2:
            os.chmod(os.path.join(repo, "run.sh"), 0o755)
            os.symlink("src/main.c", os.path.join(repo, "main-link"))
            _git(["mv", "docs/with space.md", "docs/renamed #1.md"], repo, env)
            _git(["rm", "-q", "src/util.c"], repo, env)
        _git(["add", "-A"], repo, env)
        _git(["commit", "-q", "-m", "commit %d" % (i + 1)], repo, env)
    head = _git(["rev-parse", "HEAD"], repo, env).strip()
    want = {rel: node for rel, node in fscheck.local_tree(repo).items()
            if rel != ".git" and not rel.startswith(".git/")}
    with ft.mounted(URL) as m:
        os.mkdir(os.path.join(m, "git"))
        clone = os.path.join(m, "git", "repo")
        _git(["clone", "-q", "file://" + repo, clone], tmp, env)
        check_eq(_git(["status", "--porcelain"], clone, env), "",
                 "git status --porcelain in the clone")
        check_eq(_git(["rev-parse", "HEAD"], clone, env).strip(), head, "HEAD of the clone")
        check_eq(len(_git(["log", "--oneline"], clone, env).splitlines()), 3,
                 "commits in the clone")
        _git(["fsck", "--no-progress"], clone, env)
        remount(m)
        check_eq(_git(["status", "--porcelain"], clone, env), "",
                 "git status --porcelain after remount")
        _git(["fsck", "--no-progress"], clone, env)
    got = fscheck.store_tree(client, "git/repo/")
    check(".git/HEAD" in got, "no .git/HEAD in the store")
    fscheck.check_trees({rel: node for rel, node in got.items()
                         if rel != ".git" and not rel.startswith(".git/")}, want,
                        "the clone's working tree in Azurite")


# --------------------------------------------------------------------------------------
# Formats that go back to patch what they wrote

def commits(px, name):
    """(Put Blob, Put Block List) requests for blob name since px's last reset."""
    return px.count("PUT", "put", name), px.count("PUT", "blocklist", name)


def test_zip_header_patches_commit_only_at_close():
    # zipfile writes each member's data, then seeks back to patch its local header
    # (sizes, CRC) in a block uploaded meanwhile; a reader looks at the file too. Only
    # the close may commit (Put Block List or Put Blob).
    members = {"m%d.bin" % i: data(3 * MiB + 1000 * i, 2600 + i) for i in range(3)}
    name = "patched.zip"
    with HttpProxy(az.port) as px, ft.mounted(px.url(URL), opts=["block_size=1M"]) as m:
        p = os.path.join(m, name)
        with open(p, "wb") as f:
            px.reset()  # the create's empty Put Blob aside
            with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
                for n, d in members.items():
                    with z.open(n, "w") as w:
                        w.write(d)
                    check_eq(read_path(p)[:4], b"PK\x03\x04", "head of %s while written" % name)
            f.flush()
            check_eq(commits(px, name), (0, 0), "%s: (Put Blob, Put Block List) before "
                     "the close" % name)
        check_eq(commits(px, name), (0, 1), "%s: (Put Blob, Put Block List) after the "
                 "close" % name)
        with zipfile.ZipFile(p) as z:
            for n, d in members.items():
                check_eq(z.read(n), d, "member %s of %s through the mount" % (n, name))
        check_blob(name, read_path(p))


# --------------------------------------------------------------------------------------
# A file far larger than the caches: bounded memory and disk, right bytes

@ft.timeout(480)
def test_large_file_bounded_memory_and_disk():
    size = 1024 * MiB  # over 2.5 times what memory and disk may hold
    cache_mem, cache_size = 128 * MiB, 256 * MiB
    mem_limit, disk_limit = cache_mem + 64 * MiB, cache_size + MiB  # du counts whole 4 KiB pages
    cdir = os.path.join(ft.make_tmpdir("cache"), "blocks")
    name = "large.bin"
    seed = 2500
    with ft.mounted(URL, opts=["cache_mem=128M", "cache_dir=" + cdir, "cache_size=256M"]) as m:
        pid = fscheck.daemon_pid(m)
        ft.log("ferry VmHWM at mount: %.1f MiB" % (fscheck.vm_kib(pid, "VmHWM") / KiB))
        peak = {"du": 0, "apparent": 0, "rss": 0, "samples": 0}
        stop = threading.Event()

        def sampler():
            while not stop.wait(0.1):
                used, apparent = fscheck.disk_usage(cdir, pid)  # staging files too
                peak["du"] = max(peak["du"], used)
                peak["apparent"] = max(peak["apparent"], apparent)
                peak["rss"] = max(peak["rss"], fscheck.vm_kib(pid, "VmRSS") * KiB)
                peak["samples"] += 1

        t = threading.Thread(target=sampler, daemon=True)
        h = hashlib.sha256()
        t0 = time.monotonic()
        t.start()
        try:
            fd = os.open(os.path.join(m, name), os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                for i in range(size // MiB):
                    block = ft.gen_range(seed, i * MiB, MiB)
                    h.update(block)
                    write_all(fd, block)
                    if i % 256 == 255:
                        ft.log("%4d MiB written, %.0f s, VmHWM %.0f MiB, cache dir du %.0f MiB" % (
                            i + 1, time.monotonic() - t0, fscheck.vm_kib(pid, "VmHWM") / KiB,
                            peak["du"] / MiB))
                t_write = time.monotonic() - t0
            finally:
                os.close(fd)
            t_close = time.monotonic() - t0 - t_write
        finally:
            stop.set()
            t.join(10)
        hwm = fscheck.vm_kib(pid, "VmHWM") * KiB
        ft.log("wrote %d MiB in %.1f s, close took %.1f s; ferry VmHWM %.1f MiB; cache dir peak "
               "du %.1f MiB (apparent %.1f MiB) over %d samples" % (
                   size // MiB, t_write, t_close, hwm / MiB, peak["du"] / MiB,
                   peak["apparent"] / MiB, peak["samples"]))
        check(peak["samples"] >= 5, "the cache dir was sampled only %d times" % peak["samples"])
        check(hwm < mem_limit, "ferry's peak RSS (VmHWM) %.1f MiB with cache_mem=128M: want < "
              "%.0f MiB" % (hwm / MiB, mem_limit / MiB))
        check(peak["du"] <= disk_limit, "cache dir used %.1f MiB on disk while writing with "
              "cache_size=256M: want <= %.0f MiB" % (peak["du"] / MiB, disk_limit / MiB))
        check_eq(os.stat(os.path.join(m, name)).st_size, size, "st_size of %s" % name)
        fd = os.open(os.path.join(m, name), os.O_RDONLY)
        try:
            for off in (0, BLOCK - 7, size // 2 + 12345, size - 4096):
                check_eq(pread_all(fd, 8192, off), ft.gen_range(seed, off, 8192)[:size - off],
                         "%s read through the mount at %d" % (name, off))
        finally:
            os.close(fd)
    t0 = time.monotonic()
    got = fscheck.blob_digest(client, name)
    ft.log("streamed sha256 of the blob in %.1f s" % (time.monotonic() - t0))
    check_eq(got, (size, h.hexdigest()), "%s in Azurite (size, sha256)" % name)
    client.delete_blob(name)  # 1 GiB less for Azurite to hold


if __name__ == "__main__":
    ft.run()
