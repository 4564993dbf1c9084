#!/usr/bin/env python3
"""fsx for ferry: thousands of random operations on a few files in the mount, each
result checked against an in-memory model (a bytearray per file).

Operations: open (O_CREAT, sometimes O_TRUNC or O_APPEND, up to two fds per file),
write at the fd's position, pwrite anywhere (around block edges often), appends, sparse
writes past the end, read and pread (past the end too), lseek, ftruncate and truncate
(shrink, grow, to zero), fsync, fstat/stat, close, a whole-file read through a fresh fd,
and now and then a remount. After an fsync or a last close the blob as Azurite holds it
is compared with the model too (the REST client, not ferry), and at the end every file
is compared straight from Azurite after unmounting.

The operations depend only on the seed (and the op count): a failure is replayed with
the seed and op count it prints. On a mismatch it prints the last 30 operations and the
first differing offset.

  python3 tests/integration/test_fsx.py                      # the CI runs (fixed seeds
                                                              # plus one random seed)
  python3 tests/integration/test_fsx.py --seed N --ops M fixed_seed   # replay
  python3 tests/integration/test_fsx.py --local DIR          # the same operations on a
                                                              # local directory: checks
                                                              # the model and generator
Options: --seed N, --ops N, --files N, --max-size BYTES, --local DIR, --opts O1,O2
(ferry mount options; default block_size=256K so that files of a few MiB span many
blocks), then test names as for every test script.
"""
import argparse
import collections
import errno
import os
import random
import shutil
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import KiB, MiB  # noqa: E402

CONTAINER = "fsxtest"
DEFAULT_SEED = 20261130
DEFAULT_OPTS = "block_size=256K"
LOG_TAIL = 30
EDGES = (4 * KiB, 64 * KiB, 256 * KiB, MiB)  # block and page sizes writes straddle

ARGS = None
az = None
client = None
URL = None


class FsxMismatch(ft.CheckFailed):
    pass


def first_difference(got, want):
    n = min(len(got), len(want))
    step = 4096
    for base in range(0, n, step):  # compare in slices: fast on large equal prefixes
        if got[base:base + step] != want[base:base + step]:
            # no differing byte below n: one is a prefix of the other
            return next((i for i in range(base, min(base + step, n)) if got[i] != want[i]), n)
    return n


# --------------------------------------------------------------------------------------
# Where the files live: the mount (and Azurite behind it), or a local directory

class LocalTarget:
    """The same operations on a local file system: validates the model. The directory
    stands in for the store too, so the store checks run (and cannot differ)."""

    store_checks = True

    def __init__(self, root):
        self.root = root
        os.makedirs(root, exist_ok=True)

    def remount(self):
        pass

    def store_bytes(self, rel):
        with open(os.path.join(self.root, rel), "rb") as f:
            return f.read()

    def store_names(self, prefix):
        return sorted(os.path.join(prefix, n) for n in os.listdir(os.path.join(self.root, prefix)))

    def finish(self):
        pass


class MountTarget:
    """A ferry mount of the test container; the store is read with the REST client."""

    store_checks = True

    def __init__(self, opts):
        self.opts = opts
        self.root = ft.make_tmpdir("mnt")
        self._mount()

    def _mount(self):
        cp = ft.mount(URL, self.root, opts=self.opts)
        if cp.returncode != 0 or not ft.is_mounted(self.root):
            raise ft.MountError("ferry mount failed: exit %s: %s" % (
                cp.returncode, cp.stderr.strip()[-500:]))

    def unmount(self):
        cp = ft.unmount(self.root)
        ft.check(cp is not None and cp.returncode == 0, "ferry unmount: %s" % (
            cp and (cp.stderr.strip() or cp.returncode)))
        ft.check(not ft.is_mounted(self.root), "still mounted after ferry unmount")

    def remount(self):
        self.unmount()
        self._mount()

    def store_bytes(self, rel):
        return client.get_blob(rel)

    def store_names(self, prefix):
        return sorted(client.list_blobs(prefix + "/"))

    def finish(self):
        if ft.is_mounted(self.root):
            self.unmount()


# --------------------------------------------------------------------------------------
# The run

class Fd:
    __slots__ = ("fd", "pos", "append")

    def __init__(self, fd, append):
        self.fd, self.pos, self.append = fd, 0, append


class File:
    def __init__(self, rel):
        self.rel = rel
        self.model = None  # None: does not exist yet
        self.fds = []


class Fsx:
    def __init__(self, target, name, seed, ops, n_files, max_size, remount_at=None,
                 remount_p=0.0):
        self.t = target
        self.name, self.seed, self.ops, self.max_size = name, seed, ops, max_size
        self.rnd = random.Random(seed)
        self.remount_at, self.remount_p = remount_at, remount_p
        self.prefix = "fsx-" + name
        self.files = [File("%s/f%d" % (self.prefix, i)) for i in range(n_files)]
        self.log = collections.deque(maxlen=LOG_TAIL)
        self.counts = collections.Counter()
        self.i = 0

    # -- reporting --

    def note(self, text):
        self.log.append("#%d %s" % (self.i, text))

    def replay(self):
        return "replay: %s --seed %d --ops %d%s %s" % (
            os.path.relpath(os.path.abspath(__file__)), self.seed, self.ops,
            " --local DIR" if isinstance(self.t, LocalTarget) else "", "fsx_" + self.name)

    def dump_log(self):
        ft.log("fsx %s: seed %d, last %d operations:" % (self.name, self.seed, len(self.log)))
        for line in self.log:
            ft.log("  " + line)
        ft.log(self.replay())

    def fail(self, what):
        self.dump_log()
        raise FsxMismatch("fsx %s seed %d op #%d: %s (%s)" % (
            self.name, self.seed, self.i, what, self.replay()))

    def expect(self, got, want, what, base=0):
        if got == want:
            return
        off = first_difference(got, want)
        detail = "got %d bytes, want %d; first difference at file offset %d" % (
            len(got), len(want), base + off)
        if off < min(len(got), len(want)):
            detail += " (got %r, want %r)" % (bytes(got[off:off + 8]), bytes(want[off:off + 8]))
        self.fail("%s: %s" % (what, detail))

    def expect_eq(self, got, want, what):
        if got != want:
            self.fail("%s: got %r, want %r" % (what, got, want))

    # -- choices (they depend on the seed and the model only) --

    def path(self, f):
        return os.path.join(self.t.root, f.rel)

    def length(self):
        r = self.rnd.random()
        if r < 0.25:
            return self.rnd.randint(1, 16)
        if r < 0.5:
            return self.rnd.randint(1, 8 * KiB)
        if r < 0.88:
            return self.rnd.randint(1, 256 * KiB)
        return self.rnd.randint(256 * KiB, 1536 * KiB)

    def offset(self, size):
        r = self.rnd.random()
        if r < 0.2:
            edge = self.rnd.choice(EDGES)
            k = self.rnd.randint(1, max(1, (size + edge) // edge))
            off = k * edge + self.rnd.randint(-64, 64)
        elif r < 0.85:
            off = self.rnd.randint(0, size)
        else:
            off = self.rnd.randint(0, self.max_size)
        return max(0, min(off, self.max_size - 1))

    def clamp(self, off, n):
        return max(1, min(n, self.max_size - off))

    def size_choice(self, size):
        r = self.rnd.random()
        if r < 0.15:
            return 0
        if r < 0.55:
            return self.rnd.randint(0, size)
        if r < 0.8:
            edge = self.rnd.choice(EDGES)
            size = edge * self.rnd.randint(0, 8) + self.rnd.randint(-3, 3)
            return min(self.max_size, max(0, size))
        return self.rnd.randint(size, min(self.max_size, size + 2 * MiB))

    # -- operations --

    def op_open(self, f):
        r = self.rnd.random()
        trunc, append = r < 0.08, 0.08 <= r < 0.18
        flags = (os.O_RDWR | os.O_CREAT | (os.O_TRUNC if trunc else 0)
                 | (os.O_APPEND if append else 0))
        self.note("open %s%s%s" % (f.rel, " O_TRUNC" if trunc else "",
                                   " O_APPEND" if append else ""))
        fd = os.open(self.path(f), flags, 0o644)
        if f.model is None:
            f.model = bytearray()
        if trunc:
            f.model.clear()
        f.fds.append(Fd(fd, append))
        self.log[-1] += " -> fd %d" % fd

    def _write(self, f, h, off, buf, positional):
        """pwrite (positional) or write at h.pos (after lseek to off); returns nothing."""
        m = f.model
        if h.append:
            assert off == len(m), "the callers write at the end through an O_APPEND fd"
        if positional:
            n = os.pwrite(h.fd, buf, off)
        else:
            if not h.append:
                os.lseek(h.fd, off, os.SEEK_SET)
            n = os.write(h.fd, buf)
        self.expect_eq(n, len(buf), "bytes written")
        if off > len(m):
            m.extend(bytes(off - len(m)))
        m[off:off + n] = buf
        if not positional:
            h.pos = off + n

    def op_write(self, f, h):
        if h.append:
            return self.op_append(f, h)
        off = self.offset(len(f.model))
        n = self.clamp(off, self.length())
        positional = self.rnd.random() < 0.5
        self.note("%s %s fd %d off=%d len=%d%s (size %d)" % (
            "pwrite" if positional else "lseek+write", f.rel, h.fd, off, n,
            " append" if h.append else "", len(f.model)))
        self._write(f, h, off, self.rnd.randbytes(n), positional)

    def op_append(self, f, h):
        off = len(f.model)
        if off >= self.max_size:
            return self.op_truncate(f, h)
        n = self.clamp(off, self.length())
        # through an O_APPEND fd: pwrite at a random offset (Linux appends) or write
        positional = h.append and self.rnd.random() < 0.3
        self.note("append %s fd %d len=%d%s (size %d)" % (
            f.rel, h.fd, n, " (pwrite at 0 on O_APPEND)" if positional else "", off))
        if not h.append:
            self.expect_eq(os.lseek(h.fd, 0, os.SEEK_END), off, "lseek(SEEK_END)")
        buf = self.rnd.randbytes(n)
        if positional:
            self.expect_eq(os.pwrite(h.fd, buf, 0), n, "bytes written")
            f.model += buf  # and the position stays
        else:
            self._write(f, h, off, buf, False)

    def op_sparse(self, f, h):
        size = len(f.model)
        if size >= self.max_size - 2 or h.append:
            return self.op_truncate(f, h)
        off = min(self.max_size - 1, size + self.rnd.randint(1, MiB))
        n = self.clamp(off, self.rnd.choice([1, 7, 4096, self.rnd.randint(1, 100 * KiB)]))
        self.note("sparse pwrite %s fd %d off=%d len=%d (size %d)" % (f.rel, h.fd, off, n, size))
        self._write(f, h, off, self.rnd.randbytes(n), True)

    def op_read(self, f, h):
        n = self.length()
        self.note("read %s fd %d pos=%d len=%d (size %d)" % (f.rel, h.fd, h.pos, n, len(f.model)))
        got = os.read(h.fd, n)
        self.expect(got, bytes(f.model[h.pos:h.pos + n]), "read at %d" % h.pos, h.pos)
        h.pos += len(got)

    def op_pread(self, f, h):
        size = len(f.model)
        r = self.rnd.random()
        if r < 0.1:
            off = size + self.rnd.randint(0, 100000)  # at or past the end
        elif r < 0.2 and size:
            off = max(0, size - self.rnd.randint(1, 5000))  # spanning the end
        else:
            off = self.offset(size)
        n = self.length()
        self.note("pread %s fd %d off=%d len=%d (size %d)" % (f.rel, h.fd, off, n, size))
        got = os.pread(h.fd, n, off)
        self.expect(got, bytes(f.model[off:off + n]), "pread at %d" % off, off)

    def op_lseek(self, f, h):
        r = self.rnd.random()
        if r < 0.4:
            pos = self.offset(len(f.model))
            got = os.lseek(h.fd, pos, os.SEEK_SET)
            what = "SEEK_SET %d" % pos
        elif r < 0.7:
            got = os.lseek(h.fd, 0, os.SEEK_END)
            pos, what = len(f.model), "SEEK_END"
        else:
            delta = self.rnd.randint(-h.pos, 10000)
            got = os.lseek(h.fd, delta, os.SEEK_CUR)
            pos, what = h.pos + delta, "SEEK_CUR %+d" % delta
        self.note("lseek %s fd %d %s" % (f.rel, h.fd, what))
        self.expect_eq(got, pos, "lseek(%s)" % what)
        h.pos = pos

    def op_truncate(self, f, h):
        size = self.size_choice(len(f.model))
        by_path = h is None or self.rnd.random() < 0.25
        self.note("%s %s%s to %d (size %d)" % (
            "truncate" if by_path else "ftruncate", f.rel, "" if by_path else " fd %d" % h.fd,
            size, len(f.model)))
        if by_path:
            os.truncate(self.path(f), size)
        else:
            os.ftruncate(h.fd, size)
        m = f.model
        if size < len(m):
            del m[size:]
        else:
            m.extend(bytes(size - len(m)))

    def op_fsync(self, f, h):
        self.note("fsync %s fd %d (size %d)" % (f.rel, h.fd, len(f.model)))
        os.fsync(h.fd)
        if self.t.store_checks and self.rnd.random() < 0.3:
            self.check_store(f, "blob after fsync")

    def op_stat(self, f, h):
        by_path = self.rnd.random() < 0.5
        self.note("%s %s" % ("stat" if by_path else "fstat fd %d" % h.fd, f.rel))
        st = os.stat(self.path(f)) if by_path else os.fstat(h.fd)
        self.expect_eq(st.st_size, len(f.model), "st_size")

    def op_close(self, f, h):
        self.note("close %s fd %d (size %d)" % (f.rel, h.fd, len(f.model)))
        f.fds.remove(h)
        os.close(h.fd)
        if not f.fds and self.t.store_checks and self.rnd.random() < 0.3:
            self.check_store(f, "blob after the last close")

    def op_verify(self, f):
        self.note("verify %s through a fresh fd (size %d)" % (f.rel, len(f.model)))
        self.check_file(f, "whole file through a fresh fd")

    def check_file(self, f, what):
        with open(self.path(f), "rb") as fo:
            got = fo.read()
        self.expect(got, bytes(f.model), "%s %s" % (f.rel, what))

    def check_store(self, f, what):
        self.expect(self.t.store_bytes(f.rel), bytes(f.model), "%s: %s" % (f.rel, what))

    def close_all(self):
        for f in self.files:
            for h in list(f.fds):
                self.op_close(f, h)

    def op_remount(self):
        self.note("remount")
        self.close_all()
        self.t.remount()
        for f in self.files:
            if f.model is not None:
                self.check_file(f, "after remount")
                if self.t.store_checks:
                    self.check_store(f, "blob after remount")

    # -- the loop --

    OPS = [  # (name, weight, needs an fd)
        ("write", 20, True), ("append", 6, True), ("sparse", 4, True), ("read", 8, True),
        ("pread", 15, True), ("lseek", 4, True), ("truncate", 8, False), ("fsync", 3, True),
        ("stat", 5, True), ("close", 7, True), ("open", 6, False), ("verify", 2, False),
    ]

    def step(self):
        if self.i == self.remount_at or (self.remount_p and self.rnd.random() < self.remount_p):
            self.counts["remount"] += 1
            return self.op_remount()
        f = self.rnd.choice(self.files)
        names = [o[0] for o in self.OPS]
        weights = [o[1] for o in self.OPS]
        name = self.rnd.choices(names, weights)[0]
        needs_fd = dict((o[0], o[2]) for o in self.OPS)[name]
        if f.model is None or (needs_fd and not f.fds):
            name = "open"
        elif name == "open" and len(f.fds) >= 2:
            name = "close"
        h = self.rnd.choice(f.fds) if f.fds else None
        self.counts[name] += 1
        if name == "open":
            self.op_open(f)
        elif name == "verify":
            self.op_verify(f)
        elif name == "truncate":
            self.op_truncate(f, h)
        else:
            getattr(self, "op_" + name)(f, h)

    def run(self):
        ft.log("fsx %s: seed %d, %d ops on %d files of up to %d bytes in %s" % (
            self.name, self.seed, self.ops, len(self.files), self.max_size, self.t.root))
        t0 = time.monotonic()
        try:
            self.note("mkdir %s" % self.prefix)
            os.mkdir(os.path.join(self.t.root, self.prefix))
            for self.i in range(self.ops):
                self.step()
                assert all(f.model is None or len(f.model) <= self.max_size for f in self.files)
            self.i = self.ops
            self.note("close all")
            self.close_all()
            for f in self.files:
                if f.model is not None:
                    self.check_file(f, "at the end")
        except FsxMismatch:
            raise
        except OSError as e:
            self.fail("%s: %s (errno %s)" % (type(e).__name__, e,
                                             errno.errorcode.get(e.errno, e.errno)))
        self.t.finish()
        # straight from the store (Azurite), after unmounting
        existing = [f for f in self.files if f.model is not None]
        self.expect_eq(self.t.store_names(self.prefix), sorted(f.rel for f in existing),
                       "blobs under %s/" % self.prefix)
        for f in existing:
            self.check_store(f, "blob in the end")
        ft.log("fsx %s: %d ops in %.1f s: %s; final sizes %s" % (
            self.name, self.ops, time.monotonic() - t0,
            ", ".join("%s %d" % kv for kv in sorted(self.counts.items())),
            [len(f.model) for f in existing]))


# --------------------------------------------------------------------------------------
# Tests

def setup():
    global az, client, URL
    if ARGS.local:
        return
    az = ft.Azurite().start()
    client = az.client().with_container(CONTAINER)
    client.create_container()
    URL = az.url(CONTAINER)


def teardown():
    if az:
        az.stop()


def target(name):
    if ARGS.local:
        return LocalTarget(os.path.join(ARGS.local, "fsx-%s-%d" % (name, os.getpid())))
    opts = [o for o in ARGS.opts.split(",") if o]
    return MountTarget(opts)


def fsx(name, default_seed, default_ops, **kw):
    seed = ARGS.seed if ARGS.seed is not None else default_seed
    ops = ARGS.ops if ARGS.ops is not None else default_ops
    if "remount_at" in kw and kw["remount_at"] is None:
        kw["remount_at"] = ops // 2
    t = target(name)
    try:
        Fsx(t, name, seed, ops, ARGS.files, ARGS.max_size, **kw).run()
    finally:
        if isinstance(t, MountTarget) and ft.is_mounted(t.root):
            ft.unmount(t.root)
    if isinstance(t, LocalTarget):
        shutil.rmtree(t.root)  # kept when the run failed


@ft.timeout(300)
def test_fsx_fixed_seed():
    """The CI run: a fixed seed, an occasional remount."""
    fsx("fixed_seed", DEFAULT_SEED, 5000, remount_p=0.002)


@ft.timeout(300)
def test_fsx_remount_midway():
    """Unmount and mount again after half the operations, then go on."""
    fsx("remount_midway", DEFAULT_SEED + 1, 3000, remount_at=None)


@ft.timeout(300)
def test_fsx_random_seed():
    """A new seed each run (printed, with the command that replays it)."""
    seed = int.from_bytes(os.urandom(4), "big")
    if ARGS.seed is None:
        ft.log("fsx random seed: %d" % seed)
    fsx("random_seed", seed, 3000, remount_p=0.002)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int)
    p.add_argument("--ops", type=int)
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--max-size", type=int, default=5 * MiB)
    p.add_argument("--local", metavar="DIR", help="run on a local directory instead of a mount")
    p.add_argument("--opts", default=DEFAULT_OPTS, help="ferry mount options (comma-separated)")
    args, rest = p.parse_known_args(argv)
    if args.local:
        args.local = os.path.abspath(args.local)
        os.makedirs(args.local, exist_ok=True)
    return args, rest


if __name__ == "__main__":
    ARGS, rest = parse_args(sys.argv[1:])
    ft.run(argv=rest)
