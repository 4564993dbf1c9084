#!/usr/bin/env python3
"""ferry's block cache: bounded memory and disk, damaged cache files, changed blobs,
concurrent readers, remount reuse, and the cost of a cold random read.

Blobs are uploaded with the independent REST client; every read through the mount is
compared with the source bytes (or their sha256). Request counts come from a counting
HTTP proxy (tests/lib/httpproxy.py) that ferry is pointed at by URL; Shared Key signs
the path and query, never the host, so ferry's requests pass through it unchanged.

Run: python3 tests/integration/test_cache.py [test_name ...]
"""
import errno
import hashlib
import os
import random
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import MiB, check, check_eq  # noqa: E402
from httpproxy import HttpProxy  # noqa: E402

CONTAINER = "cachetest"
SEQ = "seq256.bin"      # 256 MiB: read through caches far smaller than it
RAND = "rand64.bin"     # 64 MiB + 5: random and concurrent reads
REUSE = "reuse32.bin"   # 32 MiB: remount reuses the disk tier
SMALL = "small16.bin"   # 16 MiB + 7: damaged cache files
SIZES = {SEQ: 256 * MiB, RAND: 64 * MiB + 5, REUSE: 32 * MiB, SMALL: 16 * MiB + 7}
SEEDS = {SEQ: 1, RAND: 2, REUSE: 3, SMALL: 4}

MEM_SLACK = 64 * MiB        # ferry's RSS may exceed cache_mem by this much
LOCK_SLACK = 64 * 1024      # bytes of non-block files (a lock file) in a cache dir
TTL = 1                     # attr_timeout and entry_timeout of the freshness tests
FRESH_OPTS = ["attr_timeout=%d" % TTL, "entry_timeout=%d" % TTL]

az = None
client = None
URL = None
RAND_DATA = None
SHA = {}


def setup():
    global az, client, URL, RAND_DATA
    az = ft.Azurite().start()
    client = az.client().with_container(CONTAINER)
    client.create_container()
    for name, size in SIZES.items():
        data = ft.gen_bytes(size, seed=SEEDS[name])
        SHA[name] = ft.sha256_bytes(data)
        client.put_blob(name, data)
        if name == RAND:
            RAND_DATA = data
        del data  # only the 64 MiB one stays in memory
    # The source as Azurite serves it (checks the harness, not ferry).
    check_eq(client.get_blob(RAND), RAND_DATA, "source %s" % RAND)
    check_eq(client.get_blob(SMALL, offset=MiB, length=100),
             ft.gen_range(SEEDS[SMALL], MiB, 100), "source %s range" % SMALL)
    URL = az.url(CONTAINER)


def teardown():
    az.stop()


# --------------------------------------------------------------------------------------
# Helpers

def drop_cache(fd, offset=0, length=0):
    try:
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


def read_sha(path, progress=None, every=32 * MiB):
    """sha256 of a file read sequentially in 1 MiB read()s from a cold page cache;
    progress(bytes_read) is called every `every` bytes."""
    h = hashlib.sha256()
    done = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        drop_cache(fd)
        while True:
            b = os.read(fd, MiB)
            if not b:
                break
            h.update(b)
            done += len(b)
            if progress and done % every < len(b):
                progress(done)
    finally:
        os.close(fd)
    return h.hexdigest()


def daemon_pid(mnt):
    pids = ft.ferry_pids(mnt)
    check_eq(len(pids), 1, "ferry daemons serving %s (pids %s)" % (mnt, pids))
    return pids[0]


def wait_exited(pid, what, timeout=15.0):
    """Waits for the daemon to exit after its unmount: until then it may still write
    to (and hold the lock of) its cache directory."""
    deadline = time.monotonic() + timeout
    while os.path.exists("/proc/%d" % pid) and pid in ft.ferry_pids(""):
        check(time.monotonic() < deadline, "ferry daemon %d still running %.0f s after "
              "unmounting (%s)" % (pid, timeout, what))
        time.sleep(0.05)


def vm_kib(pid, field):
    """A Vm* field of /proc/PID/status, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise ft.CheckFailed("no %s in /proc/%d/status" % (field, pid))


def dir_usage(path):
    """(total st_size of the regular files under path, {relative path: size})."""
    files = {}
    for root, _, names in os.walk(path):
        for n in names:
            p = os.path.join(root, n)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue  # evicted while we looked
            if os.path.isfile(p) and not os.path.islink(p):
                files[os.path.relpath(p, path)] = st.st_size
    return sum(files.values()), files


def cache_dir():
    """A cache directory path that does not exist yet (ferry creates it)."""
    return os.path.join(ft.make_tmpdir("cache"), "blocks")


def mb(n):
    return "%.1f MiB" % (n / MiB)


def blob_gets(proxy, name):
    return proxy.requests("GET", "get", blob=name)


# --------------------------------------------------------------------------------------
# The proxy the request-counting tests rely on

def test_proxy_relays_and_counts():
    with HttpProxy(az.port) as px:
        c = ft.BlobClient("127.0.0.1", px.port).with_container(CONTAINER)
        check_eq(int(c.get_properties(RAND)["content-length"]), SIZES[RAND], "HEAD via proxy")
        check_eq(c.get_blob(RAND, offset=12345, length=4096), RAND_DATA[12345:12345 + 4096],
                 "ranged GET via proxy")
        check_eq(ft.sha256_bytes(c.get_blob(RAND)), SHA[RAND], "64 MiB GET via proxy")
        check(RAND in c.list_blobs(), "listing via proxy lacks %s" % RAND)
        c.put_blob("via-proxy.txt", b"proxied\n")
        check_eq(client.get_blob("via-proxy.txt"), b"proxied\n", "PUT via proxy")
        check_eq(px.counts(), {("HEAD", "head"): 1, ("GET", "get"): 2, ("GET", "list"): 1,
                               ("PUT", "put"): 1}, "proxy counts")
        check_eq(px.count("GET", "get", blob=RAND), 2, "GETs of %s" % RAND)
        check_eq([r.status for r in blob_gets(px, RAND)], [206, 200], "GET statuses")
        px.reset()
        check_eq(px.counts(), {}, "counts after reset")
        c.close()
    client.delete_blob("via-proxy.txt")


# --------------------------------------------------------------------------------------
# Bounded memory and disk

def test_memory_stays_under_cache_mem():
    limit = 32 * MiB
    env = None
    if ft.sanitized():
        # ASan keeps freed memory in a 256 MiB quarantine; a small one keeps the
        # bound about ferry's memory rather than ASan's.
        env = ft.ferry_env(extra={"ASAN_OPTIONS": os.environ["ASAN_OPTIONS"] + ":quarantine_size_mb=16"})
    with ft.mounted(URL, opts=["cache_mem=32M"], env=env) as m:
        pid = daemon_pid(m)
        before = vm_kib(pid, "VmHWM") * 1024
        check_eq(read_sha(os.path.join(m, SEQ)), SHA[SEQ], "sha256 of %s" % SEQ)
        hwm = vm_kib(pid, "VmHWM") * 1024
        ft.log("ferry VmHWM %s at mount, %s after reading %s" % (mb(before), mb(hwm), mb(SIZES[SEQ])))
        check(hwm < limit + MEM_SLACK, "ferry's peak RSS (VmHWM) %s with cache_mem=32M: want < %s"
              % (mb(hwm), mb(limit + MEM_SLACK)))


def test_disk_tier_stays_under_cache_size():
    limit = 64 * MiB
    d = cache_dir()
    peak = [0]

    def sample(_done):
        peak[0] = max(peak[0], dir_usage(d)[0])

    with ft.mounted(URL, opts=["cache_dir=" + d, "cache_size=64M"]) as m:
        pid = daemon_pid(m)
        check_eq(read_sha(os.path.join(m, SEQ), progress=sample), SHA[SEQ], "sha256 of %s" % SEQ)
        mounted_total, files = dir_usage(d)
        ft.log("cache dir: %s in %d files while mounted (largest seen during the read: %s)"
               % (mb(mounted_total), len(files), mb(peak[0])))
    wait_exited(pid, "cache_dir=%s" % d)
    total, files = dir_usage(d)
    ft.log("cache dir: %s in %d files after unmount" % (mb(total), len(files)))
    for when, n in (("after the read", mounted_total), ("after unmount", total)):
        check(n <= limit + LOCK_SLACK, "cache dir holds %s %s with cache_size=64M: want <= %s"
              % (mb(n), when, mb(limit + LOCK_SLACK)))
    # Bounded because it evicts, not because it never wrote.
    check(total >= 16 * MiB, "cache dir holds only %s after reading %s through it"
          % (mb(total), mb(SIZES[SEQ])))


# --------------------------------------------------------------------------------------
# Damaged cache files

def test_damaged_cache_files_are_refetched():
    d = cache_dir()
    with ft.mounted(URL, opts=["cache_dir=" + d]) as m:
        pid = daemon_pid(m)
        check_eq(read_sha(os.path.join(m, SMALL)), SHA[SMALL], "first read of %s" % SMALL)
    wait_exited(pid, "cache_dir=%s" % d)
    total, files = dir_usage(d)
    damaged = sorted(p for p, n in files.items() if n >= 1024)  # not a lock file
    check(damaged, "no cache files in %s after reading %s: %s" % (d, SMALL, files))
    check(total >= SIZES[SMALL], "cache dir holds %s in %d files after reading %s"
          % (mb(total), len(files), mb(SIZES[SMALL])))
    for rel in damaged:
        p = os.path.join(d, rel)
        with open(p, "r+b") as f:
            mid = files[rel] // 2
            f.seek(mid)
            chunk = f.read(16)
            f.seek(mid)
            f.write(bytes(b ^ 0xFF for b in chunk))
    os.truncate(os.path.join(d, damaged[0]), files[damaged[0]] // 3)
    ft.log("damaged %d cache files (%s), truncated %s" % (len(damaged), mb(total), damaged[0]))
    with ft.mounted(URL, opts=["cache_dir=" + d]) as m:
        check_eq(read_sha(os.path.join(m, SMALL)), SHA[SMALL], "read of %s over damaged cache files" % SMALL)
        # and again, now from whatever the cache holds after the refetch
        check_eq(read_sha(os.path.join(m, SMALL)), SHA[SMALL], "second read of %s" % SMALL)


# --------------------------------------------------------------------------------------
# Blobs changed from outside

def test_overwritten_blob_is_read_fresh_after_ttl():
    old_size = 5 * MiB + 3
    cases = {  # name: new size
        "ow-same.bin": old_size,
        "ow-grow.bin": 9 * MiB + 1,
        "ow-shrink.bin": MiB - 5,
    }
    old = {n: ft.gen_bytes(old_size, seed=100 + i) for i, n in enumerate(cases)}
    new = {n: ft.gen_bytes(size, seed=200 + i) for i, (n, size) in enumerate(cases.items())}
    for n, data in old.items():
        client.put_blob(n, data)
    try:
        with ft.mounted(URL, opts=FRESH_OPTS) as m:
            for n in cases:
                with open(os.path.join(m, n), "rb") as f:
                    check_eq(f.read(), old[n], "%s before the overwrite" % n)
            for n, data in new.items():
                client.put_blob(n, data)
            time.sleep(TTL + 1)
            for n in cases:
                p = os.path.join(m, n)
                check_eq(os.stat(p).st_size, len(new[n]), "%s: st_size after the overwrite" % n)
                with open(p, "rb") as f:
                    drop_cache(f.fileno())
                    check_eq(f.read(), new[n], "%s after the overwrite and %d s" % (n, TTL + 1))
    finally:
        for n in cases:
            client.delete_blob(n)


def test_open_file_never_mixes_versions():
    size = 24 * MiB
    prefix = MiB
    cases = {"held-same.bin": size, "held-grow.bin": size + 3 * MiB}  # name: new size
    old = {n: ft.gen_bytes(size, seed=300 + i) for i, n in enumerate(cases)}
    new = {n: ft.gen_bytes(s, seed=400 + i) for i, (n, s) in enumerate(cases.items())}
    for n, data in old.items():
        client.put_blob(n, data)
    outcome = {}
    try:
        with ft.mounted(URL, opts=FRESH_OPTS) as m:
            fds = {n: os.open(os.path.join(m, n), os.O_RDONLY) for n in cases}
            try:
                for n, fd in fds.items():
                    check_eq(os.pread(fd, prefix, 0), old[n][:prefix], "%s: prefix" % n)
                for n, data in new.items():
                    client.put_blob(n, data)
                time.sleep(TTL + 1)  # a re-lookup now would find the new version
                for n, fd in fds.items():
                    errors = old_chunks = 0
                    for off in range(prefix, size, MiB):
                        drop_cache(fd, off, MiB)
                        try:
                            got = os.pread(fd, MiB, off)
                        except OSError as e:
                            check(e.errno in (errno.EIO, errno.ESTALE),
                                  "%s: pread(off=%d) after the overwrite failed with %s, want "
                                  "EIO or ESTALE" % (n, off, errno.errorcode.get(e.errno, e.errno)))
                            errors += 1
                            continue
                        want = old[n][off:off + MiB]
                        if got != want:
                            newer = got == new[n][off:off + len(got)]
                            raise ft.CheckFailed(
                                "%s: pread(len=%d, off=%d) of a file opened before the overwrite "
                                "returned %d bytes that are %s, want the old bytes or an error"
                                % (n, MiB, off, len(got),
                                   "the new version's" if newer else "neither version's"))
                        old_chunks += 1
                    outcome[n] = (errors, old_chunks)
            finally:
                for fd in fds.values():
                    os.close(fd)
            ft.log("reads after the overwrite (errors, old chunks): %s" % outcome)
            # A new open sees the new version.
            for n in cases:
                with open(os.path.join(m, n), "rb") as f:
                    drop_cache(f.fileno())
                    check_eq(f.read(), new[n], "%s opened again after the overwrite" % n)
    finally:
        for n in cases:
            client.delete_blob(n)


# --------------------------------------------------------------------------------------
# Concurrent readers

def _threads_random_ranges(opts, seed):
    size = SIZES[RAND]
    errors = []
    with ft.mounted(URL, opts=opts) as m:
        path = os.path.join(m, RAND)
        shared = os.open(path, os.O_RDONLY)
        drop_cache(shared)
        barrier = threading.Barrier(8)

        def worker(idx):
            rnd = random.Random(seed * 100 + idx)
            fd = shared if idx % 2 else os.open(path, os.O_RDONLY)
            try:
                barrier.wait(30)
                for i in range(60):
                    length = rnd.choice([1, 4096, 65537, 4 * MiB + 3, rnd.randrange(1, 2 * MiB)])
                    off = rnd.randrange(0, size)
                    if i % 15 == 14:
                        off = size - rnd.randrange(1, 5000)  # spanning EOF
                    drop_cache(fd, off, length)
                    got = os.pread(fd, length, off)
                    want = RAND_DATA[off:off + length]
                    if got != want:
                        errors.append("thread %d: pread(len=%d, off=%d) gave %d bytes (want %d)%s"
                                      % (idx, length, off, len(got), len(want),
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
                t.join(100)
            stuck = [i for i, t in enumerate(threads) if t.is_alive()]
            check(not stuck, "threads still reading after 100 s: %s" % stuck)
        finally:
            os.close(shared)
    check(not errors, "%d thread(s) failed; first: %s" % (len(errors), errors[0] if errors else ""))


def test_threads_random_ranges():
    _threads_random_ranges([], seed=1)


def test_threads_random_ranges_small_cache():
    # 8 blocks of memory for 8 readers: eviction races with every read.
    _threads_random_ranges(["cache_mem=8M", "block_size=1M"], seed=2)


# --------------------------------------------------------------------------------------
# Requests counted by the proxy

def test_remount_reuses_disk_cache():
    d = cache_dir()
    with HttpProxy(az.port) as px:
        url = px.url(URL)
        with ft.mounted(url, opts=["cache_dir=" + d]) as m:
            pid = daemon_pid(m)
            check_eq(read_sha(os.path.join(m, REUSE)), SHA[REUSE], "first read of %s" % REUSE)
        wait_exited(pid, "cache_dir=%s" % d)
        first = blob_gets(px, REUSE)
        ft.log("first mount: %d GETs of %s, counts %s" % (len(first), REUSE, px.counts()))
        check(first, "no GET of %s went through the proxy on the first read" % REUSE)
        px.reset()
        with ft.mounted(url, opts=["cache_dir=" + d]) as m:
            check_eq(read_sha(os.path.join(m, REUSE)), SHA[REUSE], "read after remount")
        again = blob_gets(px, REUSE)
        ft.log("second mount: counts %s" % px.counts())
        check(not again, "%d GETs of %s after remounting with the same cache_dir (want 0): %s"
              % (len(again), REUSE, again[:5]))


def test_cold_4k_random_read_costs_one_get():
    off = SIZES[RAND] // 2 // 4096 * 4096 + 7 * 4096  # page-aligned, mid-file
    with HttpProxy(az.port) as px:
        with ft.mounted(px.url(URL)) as m:
            fd = os.open(os.path.join(m, RAND), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
                got = os.pread(fd, 4096, off)
                time.sleep(0.5)  # read-ahead it may have started would show by now
                gets = blob_gets(px, RAND)
            finally:
                os.close(fd)
        check_eq(got, RAND_DATA[off:off + 4096], "pread(4096, %d)" % off)
        ft.log("GETs of %s for one 4 KiB read: %s; all requests: %s" % (RAND, gets, px.counts()))
        check_eq(len(gets), 1, "GETs of %s for one cold 4 KiB pread (%s)" % (RAND, gets))


if __name__ == "__main__":
    ft.run()
