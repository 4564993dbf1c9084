#!/usr/bin/env python3
"""ferry mount, read path: file contents, ranges, EOF, concurrency, sizes, read-only.

Blobs of 0, 1, 4095, 4096, 1 MiB + 1 and 64 MiB + 3 bytes are uploaded with an
independent REST client; every check compares what the mount returns with the source
bytes. Each test mounts on its own, and drops the page cache of the files it reads
(posix_fadvise DONTNEED) so reads reach ferry rather than the kernel's cache.

Run: python3 tests/integration/test_mount_read.py [test_name ...]
"""
import errno
import os
import random
import stat
import sys
import threading

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import MiB, check, check_eq  # noqa: E402

CONTAINER = "readtest"
SIZES = {
    "empty.bin": 0,
    "one.bin": 1,
    "page-minus-1.bin": 4095,
    "page.bin": 4096,
    "mib-plus-1.bin": MiB + 1,
    "big.bin": 64 * MiB + 3,
}
BIG = "big.bin"

az = None
client = None
URL = None
DATA = {}
SHA = {}


def setup():
    global az, client, URL
    az = ft.Azurite().start()
    client = az.client().with_container(CONTAINER)
    client.create_container()
    for i, (name, size) in enumerate(SIZES.items()):
        DATA[name] = ft.gen_bytes(size, seed=i + 1)
        SHA[name] = ft.sha256_bytes(DATA[name])
        client.put_blob(name, DATA[name])
    # The source as Azurite serves it (checks the harness, not ferry).
    for name, size in SIZES.items():
        check_eq(ft.sha256_bytes(client.get_blob(name)), SHA[name], "source %s" % name)
    URL = az.url(CONTAINER)


def teardown():
    az.stop()


def drop_cache(fd):
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


def check_pread(fd, name, off, length):
    data = DATA[name]
    want = data[off:off + length]
    try:
        got = os.pread(fd, length, off)
    except OSError as e:
        raise ft.CheckFailed("%s: pread(len=%d, off=%d) failed: %s" % (name, length, off, e))
    if got != want:
        short = " (short read)" if len(got) < len(want) and got == want[:len(got)] else ""
        raise ft.CheckFailed("%s: pread(len=%d, off=%d) returned %d bytes, want %d%s%s" % (
            name, length, off, len(got), len(want), short,
            "" if short or len(got) != len(want) else ", contents differ"))


def test_stat_sizes():
    with ft.mounted(URL) as m:
        st = os.stat(m)
        check(stat.S_ISDIR(st.st_mode), "mount root is not a directory")
        check_eq(set(os.listdir(m)), set(SIZES), "root listing")
        for name, size in SIZES.items():
            st = os.stat(os.path.join(m, name))
            check(stat.S_ISREG(st.st_mode), "%s: not a regular file (mode %o)" % (name, st.st_mode))
            check_eq(st.st_size, size, "%s: st_size" % name)
        # fstat of an open file agrees
        fd = os.open(os.path.join(m, BIG), os.O_RDONLY)
        try:
            check_eq(os.fstat(fd).st_size, SIZES[BIG], "fstat %s" % BIG)
        finally:
            os.close(fd)


def test_whole_file_sha256():
    with ft.mounted(URL) as m:
        for name in SIZES:
            check_eq(ft.sha256_file(os.path.join(m, name)), SHA[name], "sha256 of %s" % name)


def test_sequential_odd_chunks():
    # Reads whole files with read(2) sizes that straddle every page and block boundary.
    with ft.mounted(URL) as m:
        for name, chunk in (("page.bin", 1000), ("mib-plus-1.bin", 12345), (BIG, 1000003)):
            fd = os.open(os.path.join(m, name), os.O_RDONLY)
            try:
                drop_cache(fd)
                parts = []
                while True:
                    b = os.read(fd, chunk)
                    if not b:
                        break
                    parts.append(b)
                got = b"".join(parts)
                check_eq(len(got), SIZES[name], "%s: bytes read in %d-byte chunks" % (name, chunk))
                check(ft.sha256_bytes(got) == SHA[name], "%s: contents differ" % name)
            finally:
                os.close(fd)


def _boundaries(size):
    ks = [4096, 65536, 128 * 1024, 1024 * 1024, 4 * MiB, 8 * MiB, 16 * MiB, 32 * MiB, 64 * MiB]
    out = []
    for k in ks:
        if k < size:
            out += [(k - 1, 2), (k - 7, 131072 + 14), (k + 1, 4095)]
    return out


def test_pread_odd_offsets():
    rnd = random.Random(20240601)
    with ft.mounted(URL) as m:
        for name, size in SIZES.items():
            cases = [(0, 1), (0, size), (1, 7), (3, 4093), (4095, 2), (4097, 13),
                     (size // 3, 777), (12345, 5 * MiB + 7)]
            cases += _boundaries(size)
            for _ in range(25):
                cases.append((rnd.randrange(0, size + 1), rnd.choice(
                    [1, 3, 511, 4097, rnd.randrange(1, 300000), rnd.randrange(1, 3 * MiB)])))
            cases = [(o, n) for o, n in cases if o >= 0 and n > 0]
            fd = os.open(os.path.join(m, name), os.O_RDONLY)
            try:
                drop_cache(fd)
                for off, length in cases:
                    check_pread(fd, name, off, length)
                # backwards, in odd steps (defeats simple read-ahead)
                if size > 2 * MiB:
                    drop_cache(fd)
                    off = size - 65537
                    while off > size - 2 * MiB:
                        check_pread(fd, name, off, 65537)
                        off -= 65537 + 12345
            finally:
                os.close(fd)


def test_reads_at_and_past_eof():
    with ft.mounted(URL) as m:
        for name, size in SIZES.items():
            fd = os.open(os.path.join(m, name), os.O_RDONLY)
            try:
                drop_cache(fd)
                for off in (size, size + 1, size + 4096, size + 10 * MiB):
                    got = os.pread(fd, 4096, off)
                    check_eq(got, b"", "%s: pread(4096, %d) at/after EOF" % (name, off))
                if size:
                    # spanning EOF: only the bytes up to EOF
                    for back in sorted({b for b in (1, 2, 3, 4096, 100000, size) if b <= size}):
                        check_pread(fd, name, size - back, back + 5000)
                # read(2) at the end returns 0 bytes, repeatedly
                os.lseek(fd, 0, os.SEEK_END)
                check_eq(os.read(fd, 100), b"", "%s: read at SEEK_END" % name)
                check_eq(os.read(fd, 100), b"", "%s: second read at SEEK_END" % name)
            finally:
                os.close(fd)


def test_concurrent_random_reads():
    size = SIZES[BIG]
    errors = []
    with ft.mounted(URL) as m:
        path = os.path.join(m, BIG)
        shared = os.open(path, os.O_RDONLY)
        drop_cache(shared)
        barrier = threading.Barrier(8)

        def worker(idx):
            rnd = random.Random(1000 + idx)
            fd = shared if idx < 4 else os.open(path, os.O_RDONLY)
            try:
                barrier.wait(30)
                # together the threads read the whole file in interleaved stripes ...
                stripe = MiB + 7
                for off in range(idx * stripe, size, 8 * stripe):
                    got = os.pread(fd, stripe, off)
                    if got != DATA[BIG][off:off + stripe]:
                        errors.append("thread %d: stripe pread(len=%d, off=%d) gave %d bytes%s" % (
                            idx, stripe, off, len(got),
                            ", contents differ" if len(got) == len(DATA[BIG][off:off + stripe]) else ""))
                        return
                # ... then random ranges, all at once
                for i in range(40):
                    length = rnd.choice([1, 4096, 65537, rnd.randrange(1, 2 * MiB)])
                    off = rnd.randrange(0, size - 1)
                    if i % 10 == 9:
                        off = size - rnd.randrange(1, 5000)  # spanning EOF
                    got = os.pread(fd, length, off)
                    want = DATA[BIG][off:off + length]
                    if got != want:
                        errors.append("thread %d: pread(len=%d, off=%d) gave %d bytes (want %d)%s" % (
                            idx, length, off, len(got), len(want),
                            ", contents differ" if len(got) == len(want) else ""))
                        return
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append("thread %d: %s: %s" % (idx, type(e).__name__, e))
            finally:
                if fd != shared:
                    os.close(fd)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(8)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            stuck = [i for i, t in enumerate(threads) if t.is_alive()]
            check(not stuck, "threads still reading after 120 s: %s" % stuck)
        finally:
            os.close(shared)
    check(not errors, "%d thread(s) failed; first: %s" % (len(errors), errors[0] if errors else ""))


def test_open_for_write_fails_erofs():
    with ft.mounted(URL, opts=["ro"]) as m:
        p = os.path.join(m, "one.bin")
        for flags, what in ((os.O_WRONLY, "O_WRONLY"), (os.O_RDWR, "O_RDWR"),
                            (os.O_WRONLY | os.O_TRUNC, "O_WRONLY|O_TRUNC"),
                            (os.O_WRONLY | os.O_APPEND, "O_WRONLY|O_APPEND")):
            try:
                fd = os.open(p, flags)
            except OSError as e:
                check_eq(errno.errorcode.get(e.errno), "EROFS", "open(%s)" % what)
            else:
                os.close(fd)
                raise ft.CheckFailed("open(one.bin, %s) succeeded on a read-only mount" % what)
        ft.expect_oserror(errno.EROFS, os.open, os.path.join(m, "new.bin"),
                          os.O_WRONLY | os.O_CREAT, 0o644)
        # reading still works after the refused opens
        with open(p, "rb") as f:
            check_eq(f.read(), DATA["one.bin"], "one.bin after refused writes")
    check_eq(client.get_blob("one.bin"), DATA["one.bin"], "one.bin in the store")
    check_eq(set(client.list_blobs()), set(SIZES), "blobs in the store")


def test_other_mutations_fail_erofs():
    with ft.mounted(URL, opts=["ro"]) as m:
        p = os.path.join(m, "page.bin")
        ft.expect_oserror(errno.EROFS, os.mkdir, os.path.join(m, "newdir"))
        ft.expect_oserror(errno.EROFS, os.unlink, p)
        ft.expect_oserror(errno.EROFS, os.rename, p, os.path.join(m, "renamed.bin"))
        ft.expect_oserror(errno.EROFS, os.truncate, p, 0)
        ft.expect_oserror(errno.EROFS, os.symlink, "page.bin", os.path.join(m, "link"))
        check_eq(os.stat(p).st_size, SIZES["page.bin"], "page.bin size after refused changes")
    check_eq(client.get_blob("page.bin"), DATA["page.bin"], "page.bin in the store")
    check_eq(set(client.list_blobs()), set(SIZES), "blobs in the store")


if __name__ == "__main__":
    ft.run()
