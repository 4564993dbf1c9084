#!/usr/bin/env python3
"""ferry under network faults: Azurite (in memory) behind the fault-injecting proxy
(tests/lib/httpproxy.py), ferry mounted through the proxy with a small timeout= so a
permanent fault gives up fast.

  - reads (sequential and random, 64 MiB) return the right bytes through transient
    faults (503, 429 + Retry-After, resets before the head and in mid-body, a stall);
    with every GET failing they fail with EIO within the timeout, never wrong bytes
  - writes land whole through transient PUT faults; with every PUT failing close()
    or fsync() fails with EIO and the previous blob stays
  - with the server gone (listener dropped) ls / stat / read answer with an error
    within the timeout instead of hanging; the same mount works once it is back
  - kill -9 of the daemon during a large write leaves the previous blob (or none);
    `ferry unmount` clears the dead mount and a new mount there works

Blobs are always checked with the independent REST client straight against Azurite,
never through the proxy or ferry. Operations that could hang run in a child process
with a hard timeout, so the test itself cannot hang.

Run: python3 tests/integration/test_faults.py [test_name ...]
"""
import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
import fscheck  # noqa: E402
from ferrytest import KiB, MiB, check, check_eq  # noqa: E402
from httpproxy import HttpProxy  # noqa: E402

CONTAINER = "faulttest"
TIMEOUT = 5                     # ferry's timeout=: one operation, all retries
MARGIN = 5                      # slack on top of it on this busy machine
BIG = 64 * MiB
BIG_SEED = 7
READ_OPTS = ["timeout=%d" % TIMEOUT, "block_size=4M"]
FAST_EXPIRY = ["attr_timeout=1", "entry_timeout=1", "negative_timeout=1"]

az = None
client = None
URL = None


def setup():
    global az, client, URL
    az = ft.Azurite().start()
    client = az.client().with_container(CONTAINER)
    client.create_container()
    URL = az.url(CONTAINER)
    client.put_blob("big.bin", ft.gen_bytes(BIG, BIG_SEED))


def teardown():
    az.stop()


# --------------------------------------------------------------------------------------
# Helpers

def data(n, seed):
    return ft.gen_bytes(n, seed=seed)


def check_blob(name, want, what):
    try:
        got = client.get_blob(name)
    except ft.BlobError as e:
        raise ft.CheckFailed("%s: %s" % (what, e)) from None
    check_eq(got, bytes(want), what)


_CHILD = r"""
import json, os, sys, time
op, path = sys.argv[1], sys.argv[2]
t0 = time.monotonic()
try:
    if op == "ls":
        r = sorted(os.listdir(path))
    elif op == "stat":
        r = os.stat(path).st_size
    elif op == "read":
        with open(path, "rb", buffering=0) as f:
            f.seek(int(sys.argv[3]))
            r = len(f.read(int(sys.argv[4])))
    out = {"ok": r}
except OSError as e:
    out = {"errno": e.errno}
out["t"] = time.monotonic() - t0
print(json.dumps(out))
"""


def child_op(op, path, *args, hard=2 * TIMEOUT + MARGIN + 10):
    """Runs os.listdir / os.stat / a read in a child process killed after `hard`
    seconds; returns (dict with "ok" or "errno", elapsed seconds in the child or None
    when it hung)."""
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-c", _CHILD, op, path] + [str(a) for a in args],
                           capture_output=True, timeout=hard, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"hung": True}, time.monotonic() - t0
    try:
        out = json.loads(r.stdout)
    except ValueError:
        raise ft.CheckFailed("%s %s: child said %r %r" % (op, path, r.stdout, r.stderr))
    return out, out["t"]


def errname(out):
    if "hung" in out:
        return "hung"
    if "errno" in out:
        return fscheck.errname(out["errno"])
    return "ok"


# --------------------------------------------------------------------------------------
# The proxy's own rules (no ferry)

def test_proxy_rules():
    with HttpProxy(az.port) as px:
        c = ft.BlobClient("127.0.0.1", px.port, timeout=10).with_container(CONTAINER)
        c.put_blob("p.bin", data(256 * KiB, 1))
        # count: the first two GETs get 503, the third 429 with Retry-After, then through
        r1 = px.add_fault("GET", blob_prefix="p.", status=503, count=2)
        r2 = px.add_fault("GET", blob_prefix="p.", status=429, retry_after=1, count=1)
        st = []
        for _ in range(4):
            try:
                c.request("GET", CONTAINER, "p.bin", retries=0)
                st.append(200)
            except ft.BlobError as e:
                st.append(e.status)
        check_eq(st, [503, 503, 429, 200], "statuses with counted rules")
        check_eq((r1.hits, r2.hits), (2, 1), "rule hits")
        px.clear_faults()
        # Retry-After on the wire
        import http.client
        px.add_fault("GET", blob_prefix="p.", status=429, retry_after=3, count=1)
        hc = http.client.HTTPConnection("127.0.0.1", px.port, timeout=10)
        hc.request("GET", "/%s/%s/p.bin" % (ft.ACCOUNT, CONTAINER))
        resp = hc.getresponse()
        resp.read()
        check_eq((resp.status, resp.getheader("Retry-After")), (429, "3"), "429 answer")
        hc.close()
        # mid-body cut: exactly N body bytes arrive, then the connection is reset
        px.add_fault("GET", blob_prefix="p.", reset_after=100 * KiB, count=1)
        try:
            c.request("GET", CONTAINER, "p.bin", retries=0)
            raise ft.CheckFailed("a GET cut in mid-body succeeded")
        except ft.BlobError:
            raise
        except Exception as e:  # IncompleteRead / reset: what a cut looks like
            ft.log("cut GET: %s: %s" % (type(e).__name__, str(e)[:80]))
            check("100" in type(e).__name__ + str(e) or isinstance(e, OSError),
                  "the cut GET failed with %r" % e)
        check_eq(c.get_blob("p.bin"), data(256 * KiB, 1), "the GET after the cut")
        # an answer lost: the PUT took effect, the client saw its connection reset
        px.add_fault("PUT", blob_prefix="p.", reset=True, forward=True, count=1)
        try:
            c.request("PUT", CONTAINER, "p.lost", headers={"x-ms-blob-type": "BlockBlob"},
                      body=b"landed", retries=0)
            raise ft.CheckFailed("a PUT whose answer was lost succeeded")
        except ft.BlobError:
            raise
        except Exception as e:
            ft.log("PUT with its answer lost: %s" % type(e).__name__)
        check_eq(client.get_blob("p.lost"), b"landed", "the PUT whose answer was lost")
        client.delete_blob("p.lost")
        # rate cap
        px.throttle(512 * KiB)
        t0 = time.monotonic()
        c.get_blob("p.bin")
        dt = time.monotonic() - t0
        px.throttle(None)
        check(0.35 < dt < 5, "256 KiB at 512 KiB/s took %.2f s" % dt)
        # a stall, then through
        px.add_fault("GET", blob_prefix="p.", stall=1.0, count=1)
        t0 = time.monotonic()
        check_eq(c.get_blob("p.bin"), data(256 * KiB, 1), "the stalled GET")
        check(time.monotonic() - t0 >= 0.9, "the stall did not delay the GET")
        # probability: seeded, roughly the asked share
        px.clear_faults()
        rule = px.add_fault("HEAD", blob_prefix="p.", status=500, probability=0.5)
        fails = 0
        for _ in range(40):
            try:
                c.request("HEAD", CONTAINER, "p.bin", retries=0)
            except ft.BlobError:
                fails += 1
        check(8 <= fails <= 32 and fails == rule.hits, "probability 0.5: %d of 40" % fails)
        px.clear_faults()
        # drop and restore the listener
        px.drop()
        try:
            ft.BlobClient("127.0.0.1", px.port, timeout=3).with_container(
                CONTAINER).get_blob("p.bin")
            raise ft.CheckFailed("a GET through the dropped proxy succeeded")
        except ft.BlobError:
            raise
        except OSError as e:
            ft.log("with the listener dropped: %s" % type(e).__name__)
        px.restore()
        check_eq(ft.BlobClient("127.0.0.1", px.port, timeout=10).with_container(
            CONTAINER).get_blob("p.bin"), data(256 * KiB, 1), "GET after restore()")
    client.delete_blob("p.bin")


# --------------------------------------------------------------------------------------
# Reads

def _transient_read_faults(px):
    """One of each transient fault on the GETs of big.bin, in order (a 1 s stall then a
    reset; two answers at 8 MiB/s); returns the rules."""
    return [
        px.add_fault("GET", kind="get", blob_prefix="big.", status=503, count=2),
        px.add_fault("GET", kind="get", blob_prefix="big.", status=429, retry_after=1, count=1),
        px.add_fault("GET", kind="get", blob_prefix="big.", reset=True, count=1),
        px.add_fault("GET", kind="get", blob_prefix="big.", reset_after=512 * KiB, count=2),
        px.add_fault("GET", kind="get", blob_prefix="big.", stall=2, count=1),
        px.add_fault("GET", kind="get", blob_prefix="big.", status=500, count=1),
        px.add_fault("GET", kind="get", blob_prefix="big.", stall=1, then_close=True, count=1),
        px.add_fault("GET", kind="get", blob_prefix="big.", rate=8 * MiB, count=2),
    ]


@ft.timeout(120)
def test_read_transient_faults():
    want = ft.gen_bytes(BIG, BIG_SEED)
    with HttpProxy(az.port) as px:
        with ft.mounted(px.url(URL), opts=READ_OPTS) as m:
            rules = _transient_read_faults(px)
            t0 = time.monotonic()
            got = ft.sha256_file(os.path.join(m, "big.bin"))
            ft.log("sequential 64 MiB read with faults: %.1f s, %d GETs, rules %s" % (
                time.monotonic() - t0, px.count("GET", "get", "big.bin"), rules))
            check_eq(got, ft.sha256_bytes(want), "sha256 of a sequential read with faults")
            for r in rules:
                check_eq(r.hits, r.count, "hits of %r" % r)
        px.clear_faults()
        px.reset()
        with ft.mounted(px.url(URL), opts=READ_OPTS) as m:
            rules = _transient_read_faults(px)
            rng = random.Random(3)
            fd = os.open(os.path.join(m, "big.bin"), os.O_RDONLY)
            t0 = time.monotonic()
            try:
                for i in range(60):
                    off = rng.randrange(BIG)
                    n = rng.choice([1, 4 * KiB, 100 * KiB, MiB + 17])
                    got = os.pread(fd, n, off)
                    check_eq(got, want[off:off + n], "pread(%d, %d) with faults" % (n, off))
            finally:
                os.close(fd)
            ft.log("60 random reads with faults: %.1f s, %d GETs, rules %s" % (
                time.monotonic() - t0, px.count("GET", "get", "big.bin"), rules))
            for r in rules:
                check_eq(r.hits, r.count, "hits of %r" % r)


@ft.timeout(90)
def test_read_permanent_fault_eio():
    want = ft.gen_bytes(BIG, BIG_SEED)
    with HttpProxy(az.port) as px, ft.mounted(px.url(URL), opts=READ_OPTS) as m:
        p = os.path.join(m, "big.bin")
        check_eq(os.stat(p).st_size, BIG, "st_size of big.bin")
        rule = px.add_fault("GET", kind="get", blob_prefix="big.", status=500)
        for off, n in ((0, MiB), (BIG // 2 + 3, 64 * KiB)):
            px.reset()
            out, t = child_op("read", p, off, n)
            ft.log("read(%d, %d) with every GET 500: %s after %.1f s; %d GETs refused: %s" % (
                n, off, errname(out), t, len(px.requests("GET", "get")),
                sorted(set(r.range for r in px.requests("GET", "get")))))
            check_eq(errname(out), "EIO", "read at %d with every GET failing" % off)
            # one read() may be two FUSE reads one after the other (the kernel reads a
            # page again itself after its readahead of it failed): 2 x timeout=
            check(t <= 2 * TIMEOUT + MARGIN, "read failed only after %.1f s (timeout=%d)" % (
                t, TIMEOUT))
        check(rule.hits >= 2, "only %d GETs were refused" % rule.hits)
        # never wrong bytes: whatever a read returns is right, and once the fault is
        # gone every read is
        px.clear_faults()
        fd = os.open(p, os.O_RDONLY)
        try:
            for off in (0, BIG // 2 + 3, BIG - 5000):
                check_eq(os.pread(fd, 8192, off), want[off:off + 8192],
                         "read at %d after the fault cleared" % off)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------------------
# Writes

def write_file(path, buf, sync=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        mv = memoryview(buf)
        for off in range(0, len(buf), MiB):
            os.write(fd, mv[off:off + MiB])
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


@ft.timeout(120)
def test_write_transient_faults():
    client.put_blob("w.small", b"old small")
    client.put_blob("w.large", b"old large")
    small, large = data(700 * KiB, 11), data(20 * MiB + 333, 12)
    with HttpProxy(az.port) as px, \
            ft.mounted(px.url(URL), opts=["timeout=15", "block_size=4M"]) as m:
        # Faults are given per file, fewer than the 8 attempts a request has: the first
        # request of a file may meet every fault of its file (when no reused connection
        # lets curl resend a reset request without counting an attempt).
        rules = [
            px.add_fault("PUT", blob_prefix="w.small", status=503, count=2),
            px.add_fault("PUT", blob_prefix="w.small", status=429, retry_after=1, count=1),
            px.add_fault("PUT", blob_prefix="w.small", reset=True, count=2),
            px.add_fault("PUT", blob_prefix="w.small", reset=True, forward=True, count=2),
            px.add_fault("PUT", blob_prefix="w.large", status=500, count=1),
            px.add_fault("PUT", blob_prefix="w.large", stall=2, count=1),
            px.add_fault("PUT", blob_prefix="w.large", reset=True, count=1),
            px.add_fault("PUT", blob_prefix="w.large", reset=True, forward=True, count=1),
            px.add_fault("PUT", kind="blocklist", blob_prefix="w.large", status=503, count=1),
            px.add_fault("PUT", kind="blocklist", blob_prefix="w.large", reset=True,
                         forward=True, count=1),
            px.add_fault("PUT", blob_prefix="w.new", status=503, count=1),
            px.add_fault("PUT", blob_prefix="w.new", reset=True, forward=True, count=1),
        ]
        t0 = time.monotonic()
        write_file(os.path.join(m, "w.small"), small)
        write_file(os.path.join(m, "w.large"), large, sync=True)
        write_file(os.path.join(m, "w.new"), small)
        ft.log("3 writes with PUT faults: %.1f s, %s" % (time.monotonic() - t0, rules))
        for r in rules:
            check_eq(r.hits, r.count, "hits of %r" % r)
    check_blob("w.small", small, "w.small written through PUT faults")
    check_blob("w.large", large, "w.large written through PUT faults")
    check_blob("w.new", small, "w.new written through PUT faults")


@ft.timeout(120)
def test_write_permanent_fault_eio():
    old = data(300 * KiB, 21)
    client.put_blob("wf.f", old)
    with HttpProxy(az.port) as px, ft.mounted(px.url(URL), opts=READ_OPTS) as m:
        rule = px.add_fault("PUT", blob_prefix="wf.", status=500)
        # close() reports it
        fd = os.open(os.path.join(m, "wf.f"), os.O_WRONLY | os.O_TRUNC)
        os.write(fd, data(200 * KiB, 22))
        t0 = time.monotonic()
        try:
            os.close(fd)
            raise ft.CheckFailed("close() of wf.f succeeded with every PUT failing")
        except OSError as e:
            check_eq(fscheck.errname(e.errno), "EIO", "close() with every PUT failing")
        ft.log("close() failed after %.1f s" % (time.monotonic() - t0))
        check_blob("wf.f", old, "wf.f after the failed close")
        # fsync() reports it (a larger file: block uploads too), close() then too
        fd = os.open(os.path.join(m, "wf.f"), os.O_WRONLY | os.O_TRUNC)
        errs = []
        try:
            for i in range(10):
                os.write(fd, data(MiB, 30 + i))
            t0 = time.monotonic()
            os.fsync(fd)
        except OSError as e:
            errs.append(fscheck.errname(e.errno))
            ft.log("write/fsync failed after %.1f s" % (time.monotonic() - t0))
        finally:
            try:
                os.close(fd)
            except OSError as e:
                errs.append(fscheck.errname(e.errno))
        check(errs, "writing 10 MiB with every PUT failing reported no error")
        check_eq(sorted(set(errs)), ["EIO"], "errors reported")
        check_blob("wf.f", old, "wf.f after the failed fsync")
        # a new blob: nothing appears
        try:
            fd = os.open(os.path.join(m, "wf.new"), os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError as e:
            check_eq(fscheck.errname(e.errno), "EIO", "create of wf.new")
        else:
            try:
                os.write(fd, b"never")
            finally:
                try:
                    os.close(fd)
                    raise ft.CheckFailed("close() of wf.new succeeded with every PUT failing")
                except OSError as e:
                    check_eq(fscheck.errname(e.errno), "EIO", "close() of wf.new")
        check(not client.exists("wf.new"), "wf.new exists after failed uploads")
        check(rule.hits >= 2, "only %d PUTs were refused" % rule.hits)


# --------------------------------------------------------------------------------------
# The server gone

@ft.timeout(150)
def test_server_gone():
    client.put_blob("gone/a.txt", b"alpha")
    client.put_blob("gone/b.bin", data(3 * MiB, 41))
    opts = ["timeout=%d" % TIMEOUT] + FAST_EXPIRY
    with HttpProxy(az.port) as px, ft.mounted(px.url(URL), opts=opts) as m:
        d = os.path.join(m, "gone")
        check_eq(sorted(os.listdir(d)), ["a.txt", "b.bin"], "listing before")
        check_eq(os.stat(os.path.join(d, "a.txt")).st_size, 5, "a.txt size before")
        px.drop()
        time.sleep(1.5)  # every cache entry expired
        results = {}
        for op, path, args in (("ls", d, ()),
                               ("stat", os.path.join(d, "a.txt"), ()),
                               ("read", os.path.join(d, "b.bin"), (MiB, 4096)),
                               ("stat", os.path.join(d, "nothere"), ())):
            out, t = child_op(op, path, *args)
            results[(op, os.path.basename(path))] = (errname(out), t)
            ft.log("server gone: %s %s -> %s after %.1f s" % (
                op, os.path.basename(path), errname(out), t))
        for (op, name), (err, t) in results.items():
            check(err not in ("ok", "hung"), "%s %s with the server gone: %s" % (op, name, err))
            # ls is two storage operations one after the other (the directory's lookup,
            # then its listing), each bounded by timeout=
            bound = (2 if op == "ls" else 1) * TIMEOUT + MARGIN
            check(t <= bound, "%s %s with the server gone: %s only after %.1f s "
                  "(timeout=%d)" % (op, name, err, t, TIMEOUT))
        px.restore()
        t0 = time.monotonic()
        check_eq(sorted(os.listdir(d)), ["a.txt", "b.bin"], "listing after the server returned")
        check_eq(os.stat(os.path.join(d, "a.txt")).st_size, 5, "a.txt size after")
        with open(os.path.join(d, "b.bin"), "rb") as f:
            check_eq(f.read(), data(3 * MiB, 41), "b.bin read after the server returned")
        ft.log("after restore: ls, stat, read in %.1f s" % (time.monotonic() - t0))


# --------------------------------------------------------------------------------------
# kill -9 of the daemon during a large write

def uploaded(px, name):
    """Bytes of Put Block requests for blob name that went through the proxy."""
    return sum(int(r.header("Content-Length", "0")) for r in px.requests("PUT", "block", name))


@ft.timeout(150)
def test_kill9_during_write():
    old = data(MiB + 5, 51)
    client.put_blob("k9.old", old)
    mnt = ft.make_tmpdir("k9mnt")
    writers = []
    try:
        with HttpProxy(az.port) as px:
            cp = ft.mount(px.url(URL), mnt, opts=["timeout=15"])
            check(cp.returncode == 0 and ft.is_mounted(mnt), "mount: %s" % cp.stderr)
            pids = ft.ferry_pids(mnt)
            check_eq(len(pids), 1, "ferry daemons serving %s" % mnt)
            # conv=notrunc: dd's open(O_TRUNC) + dup2 + close would commit the emptied
            # file before the first write (docs/semantics.md); this test is about a
            # large write in flight, so dd writes over the old bytes instead.
            for name in ("k9.old", "k9.new"):
                writers.append(subprocess.Popen(
                    ["dd", "if=/dev/zero", "of=" + os.path.join(mnt, name), "bs=1M",
                     "count=200", "conv=notrunc"], stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            # halfway: 100 MiB of each file have gone up in blocks
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                if min(uploaded(px, n) for n in ("k9.old", "k9.new")) >= 100 * MiB:
                    break
                if all(w.poll() is not None for w in writers):
                    break
                time.sleep(0.05)
            up = [uploaded(px, n) // MiB for n in ("k9.old", "k9.new")]
            check(all(w.poll() is None for w in writers), "dd finished before the kill")
            check(min(up) >= 100, "only %s MiB uploaded after 90 s" % up)
            os.kill(pids[0], signal.SIGKILL)
            ft.log("killed ferry %d after %s MiB of k9.old, k9.new uploaded in blocks" % (
                pids[0], up))
            for w in writers:
                try:
                    _, err = w.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    w.kill()
                    _, err = w.communicate()
                    raise ft.CheckFailed("dd hung after ferry was killed")
                check(w.returncode != 0, "dd succeeded though ferry was killed")
                ft.log("dd: exit %d: %s" % (w.returncode, err.decode().strip()[-120:]))
            ft.log("requests but GETs and block PUTs: %s" % [
                r for r in px.requests() if r.kind not in ("get", "block")])
            check_blob("k9.old", old, "k9.old after ferry was killed mid-write")
            # open(O_CREAT) stored an empty blob at once (docs/semantics.md): that is
            # k9.new's committed version
            check(not client.exists("k9.new") or client.get_blob("k9.new") == b"",
                  "k9.new after ferry was killed: %s" % (
                      client.exists("k9.new") and len(client.get_blob("k9.new"))))
            # ls, not stat: the kernel may answer a stat of the root from its
            # attribute cache without asking the (dead) daemon.
            out, _ = child_op("ls", mnt, hard=10)
            check_eq(errname(out), "ENOTCONN", "listdir of the dead mount")
            r = ft.unmount(mnt, fallback=False)
            check(r is not None and r.returncode == 0,
                  "ferry unmount of the dead mount: %r" % ((r.returncode, r.stderr) if r else None,))
            check(not ft.is_mounted(mnt), "still mounted after ferry unmount")
            with ft.mounted(px.url(URL), mnt=mnt, opts=["timeout=15"]) as m:
                with open(os.path.join(m, "k9.old"), "rb") as f:
                    check_eq(f.read(), old, "k9.old through a new mount at the same place")
                p = os.path.join(m, "k9.new")
                size = os.stat(p).st_size if os.path.exists(p) else 0
                check_eq(size, 0, "size of k9.new in the new mount")
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
                w.wait()
        if ft.is_mounted(mnt):
            ft.unmount(mnt)


if __name__ == "__main__":
    ft.run()
