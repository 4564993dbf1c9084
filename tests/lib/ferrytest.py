"""ferrytest: the harness for ferry's integration tests (python3 stdlib only).

What it gives a test script:

  Azurite            start/stop the emulator on a free loopback port (a context manager)
  BlobClient         a small, independent Blob REST client (Shared Key) used to prepare
                     data and to check results -- never through ferry
  mount / unmount    run `$FERRY_BIN mount URL MNT -o ...` / `$FERRY_BIN unmount MNT`
  mounted(...)       a context manager that always unmounts
  is_mounted(mnt)    from /proc/self/mountinfo
  run()              a minimal runner for the test_* functions of the calling module

Nothing is ever left behind: every mount and every Azurite is registered, and an atexit
hook plus SIGINT/SIGTERM/SIGHUP handlers unmount and stop whatever is left. The runner
also fails a test that leaves a mount behind (and then removes it), and removes stale
mounts of earlier runs that were killed (SIGKILL, ctest timeout) before starting.

Environment (set by tests/CMakeLists.txt):
  FERRY_BIN   path of the ferry binary (a test that mounts FAILS when it is missing)
  FERRY_SRC   repository root (Azurite is $FERRY_SRC/node_modules/.bin/azurite-blob)
  FERRY_TEST_TIMEOUT  optional: seconds each test may take (default 150)
  FERRY_SANITIZED     1 when ferry is built with ASan/UBSan: every sanitizer report of
                      a ferry process (daemons included) fails the run; see run()

Credentials go to ferry by environment only, never on its command line.
"""

import atexit
import base64
import contextlib
import ctypes
import errno
import hashlib
import hmac
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate

# --------------------------------------------------------------------------------------
# Constants

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# A valid base64 key (64 bytes) that is not the account's: Azurite answers 403 to it.
WRONG_KEY = base64.b64encode(hashlib.sha512(b"ferry: not the key").digest()).decode()
API_VERSION = "2021-12-02"
KiB = 1024
MiB = 1024 * 1024

SRC = os.environ.get("FERRY_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def log(*args):
    """Informational line; '#'-prefixed so it never looks like a PASS/FAIL line."""
    print("#", *args, flush=True)


# --------------------------------------------------------------------------------------
# Temporary directories: one root per test process, named with our pid so that stale
# mounts of a killed run can be recognised and removed by the next run.

_TMP_PREFIX = "ferrytest-"
_tmp_root = None
_tmp_lock = threading.Lock()


def tmp_root():
    global _tmp_root
    with _tmp_lock:
        if _tmp_root is None:
            _tmp_root = tempfile.mkdtemp(prefix="%s%d-" % (_TMP_PREFIX, os.getpid()))
        return _tmp_root


def make_tmpdir(prefix="d"):
    return tempfile.mkdtemp(prefix=prefix + "-", dir=tmp_root())


def write_private(path, text):
    """Writes text to a new file only its owner may read (0600), as a secret is kept."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def key_file():
    """A new 0600 file in our temp dir with the emulator's account key and a newline
    ("Files may end with a newline")."""
    return write_private(os.path.join(make_tmpdir("key"), "account.key"), KEY + "\n")


# --------------------------------------------------------------------------------------
# Data helpers

_GEN_BLOCK = MiB


def _gen_block(seed, i):
    return hashlib.shake_256(b"ferry-data:%s:%d" % (str(seed).encode(), i)).digest(_GEN_BLOCK)


def gen_bytes(n, seed=0):
    """n deterministic pseudo-random bytes (no short period; ~0.3 s for 64 MiB)."""
    return gen_range(seed, 0, n)


def gen_range(seed, offset, length):
    """Bytes [offset, offset+length) of the stream gen_bytes(..., seed) produces."""
    if length <= 0:
        return b""
    first, last = offset // _GEN_BLOCK, (offset + length - 1) // _GEN_BLOCK
    buf = b"".join(_gen_block(seed, i) for i in range(first, last + 1))
    start = offset - first * _GEN_BLOCK
    if start == 0 and len(buf) == length:
        return buf
    return bytes(memoryview(buf)[start:start + length])


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path, chunk=MiB):
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def free_port():
    """A loopback TCP port that was free a moment ago (nothing listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------
# Assertions with readable messages

class CheckFailed(AssertionError):
    pass


def _short(v, limit=120):
    if isinstance(v, (bytes, bytearray)):
        if len(v) > 32:
            return "<%d bytes sha256=%s… head=%r>" % (len(v), sha256_bytes(v)[:12], bytes(v[:16]))
        return repr(bytes(v))
    r = repr(v)
    return r if len(r) <= limit else r[:limit] + "…(%d chars)" % len(r)


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def check_eq(got, want, what):
    if got != want:
        if isinstance(got, (set, frozenset)) and isinstance(want, (set, frozenset)):
            extra, missing = sorted(got - want), sorted(want - got)
            raise CheckFailed("%s: %d unexpected %s, %d missing %s" % (
                what, len(extra), _short(extra[:5]), len(missing), _short(missing[:5])))
        if isinstance(got, (bytes, bytearray)) and isinstance(want, (bytes, bytearray)):
            n = min(len(got), len(want))
            first = next((i for i in range(n) if got[i] != want[i]), n)
            raise CheckFailed("%s: got %d bytes, want %d, first difference at byte %d" % (
                what, len(got), len(want), first))
        raise CheckFailed("%s: got %s, want %s" % (what, _short(got), _short(want)))


def check_in(needle, haystack, what):
    if needle not in haystack:
        raise CheckFailed("%s: %r not in %s" % (what, needle, _short(haystack, 300)))


def expect_oserror(err, fn, *args, **kw):
    """Calls fn(*args) and checks it raises OSError with errno err; returns the error."""
    try:
        r = fn(*args, **kw)
    except OSError as e:
        if e.errno != err:
            raise CheckFailed("%s%r: errno %s (%s), want %s" % (
                getattr(fn, "__name__", fn), args, errno.errorcode.get(e.errno, e.errno),
                e.strerror, errno.errorcode.get(err, err)))
        return e
    if isinstance(r, int) and fn is os.open:
        os.close(r)
    raise CheckFailed("%s%r succeeded, want %s" % (
        getattr(fn, "__name__", fn), args, errno.errorcode.get(err, err)))


# --------------------------------------------------------------------------------------
# Registry of what must be cleaned up

_lock = threading.RLock()
_mounts = []        # absolute mount point paths we (may) have mounted, in order
_azurites = []      # running Azurite instances
_fg_procs = []      # foreground ferry processes


def _register_mount(path):
    with _lock:
        if path not in _mounts:
            _mounts.append(path)


def _forget_mount(path):
    with _lock:
        if path in _mounts and not is_mounted(path):
            _mounts.remove(path)


# --------------------------------------------------------------------------------------
# Azurite

def _azurite_bin():
    return os.path.join(SRC, "node_modules", ".bin", "azurite-blob")


def _set_pdeathsig():
    # Azurite gets SIGTERM if the test process dies (even by SIGKILL). Runs in the child.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Azurite:
    """The Blob service emulator on a free loopback port.

        with Azurite() as az:            # in memory
            c = az.client()
            c.create_container("data")
            url = az.url("data")         # http://127.0.0.1:P/devstoreaccount1/data

    Azurite(location=DIR) keeps its state on disk (survives stop()/start()). start()
    after stop() reuses the same port, so a mounted ferry can reconnect.
    """

    def __init__(self, location=None, port=None, extra_args=()):
        self.location = location
        self.port = port
        self.extra_args = list(extra_args)
        self.proc = None
        self.workdir = make_tmpdir("azurite")
        self.log_path = os.path.join(self.workdir, "azurite.log")

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d/%s" % (self.port, ACCOUNT)

    def url(self, container):
        return "%s/%s" % (self.endpoint, container)

    def client(self):
        return BlobClient("127.0.0.1", self.port)

    def _args(self):
        args = [_azurite_bin(), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent"]
        if self.location:
            os.makedirs(self.location, exist_ok=True)
            args += ["-l", self.location]
        else:
            args += ["--inMemoryPersistence"]
        return args + self.extra_args

    def start(self, timeout=20.0):
        if self.proc is not None:
            raise RuntimeError("Azurite already running")
        if not os.access(_azurite_bin(), os.X_OK):
            raise RuntimeError("Azurite not found at %s (run tools/install-deps)" % _azurite_bin())
        fixed_port = self.port is not None
        for attempt in range(3):
            if not fixed_port:
                self.port = free_port()
            logf = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(self._args(), stdin=subprocess.DEVNULL,
                                             stdout=logf, stderr=subprocess.STDOUT,
                                             cwd=self.workdir, preexec_fn=_set_pdeathsig)
            finally:
                logf.close()
            with _lock:
                _azurites.append(self)
            if self._wait_ready(timeout):
                return self
            rc = self.proc.poll()
            self.stop()
            if rc is None or fixed_port:  # hung, or our port: no point retrying elsewhere
                break
        raise RuntimeError("Azurite did not answer on port %s within %.0f s; log: %s" % (
            self.port, timeout, self.log_tail()))

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/%s?comp=list" % ACCOUNT)
                conn.getresponse().read()
                conn.close()
                return True  # any HTTP answer (403 without signature) means it is up
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
        return False

    def log_tail(self, n=2000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace") or "(empty)"
        except OSError:
            return "(no log)"

    def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after grace seconds (Azurite saves its state on SIGTERM)."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            except ProcessLookupError:
                pass
        self.proc = None
        with _lock:
            if self in _azurites:
                _azurites.remove(self)

    def kill(self):
        """SIGKILL at once (a crash: on-disk state is whatever was last saved)."""
        p = self.proc
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(5)
        self.proc = None
        with _lock:
            if self in _azurites:
                _azurites.remove(self)

    def restart(self, timeout=20.0):
        self.stop()
        return self.start(timeout)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def azurite_with(container, blobs):
    """A started Azurite whose container holds blobs ({name: bytes}), and the
    container's URL."""
    az = Azurite().start()
    c = az.client().with_container(container)
    c.create_container()
    c.put_many(blobs.items())
    return az, az.url(container)


# --------------------------------------------------------------------------------------
# Blob REST client (Shared Key), independent of ferry

class BlobError(Exception):
    def __init__(self, method, path, status, code, body):
        self.status, self.code = status, code
        text = body[:2000].decode("utf-8", "replace")
        m = re.search(r"<Message>([^\n<]*)", text)
        detail = m.group(1) if m else text[:200]
        super().__init__("%s %s: HTTP %d %s: %s" % (method, path, status, code or "", detail))


class BlobInfo:
    __slots__ = ("name", "size", "etag", "last_modified", "metadata")

    def __init__(self, name, size, etag, last_modified, metadata):
        self.name, self.size, self.etag = name, size, etag
        self.last_modified, self.metadata = last_modified, metadata

    def __repr__(self):
        return "BlobInfo(%r, size=%d)" % (self.name, self.size)


_RETRYABLE = (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine,
              http.client.CannotSendRequest, http.client.ResponseNotReady, BrokenPipeError,
              socket.timeout, TimeoutError)


def quote_blob(name):
    """Percent-encodes a blob name for a URL path; '/' stays."""
    return urllib.parse.quote(name, safe="/")


class BlobClient:
    """Shared Key client for one account; thread-safe (one keep-alive connection per
    thread). Path-style URLs: http://HOST:PORT/ACCOUNT/CONTAINER/BLOB."""

    STD_HEADERS = ("content-encoding", "content-language", "content-length", "content-md5",
                   "content-type", "date", "if-modified-since", "if-match", "if-none-match",
                   "if-unmodified-since", "range")

    def __init__(self, host, port, account=ACCOUNT, key=KEY, container=None, timeout=60):
        self.host, self.port, self.account = host, port, account
        self.key = base64.b64decode(key)
        self.container = container
        self.timeout = timeout
        self._local = threading.local()
        self._conns = []
        self._conns_lock = threading.Lock()

    # -- plumbing --

    def with_container(self, container):
        """A client bound to a container (blob methods then need no container)."""
        c = BlobClient(self.host, self.port, self.account, base64.b64encode(self.key).decode(),
                       container, self.timeout)
        return c

    def close(self):
        with self._conns_lock:
            for c in self._conns:
                c.close()
            self._conns = []
        self._local = threading.local()

    def _conn(self, fresh=False):
        c = getattr(self._local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = c
            with self._conns_lock:
                self._conns.append(c)
        return c

    def _path(self, container, blob=None):
        p = "/%s/%s" % (self.account, container)
        if blob is not None:
            p += "/" + quote_blob(blob)
        return p

    def string_to_sign(self, method, path, query, headers):
        h = {k.lower(): str(v) for k, v in headers.items()}
        vals = []
        for name in self.STD_HEADERS:
            v = h.get(name, "")
            if name == "content-length" and v == "0":
                v = ""
            vals.append(v)
        xms = sorted((k, v.strip()) for k, v in h.items() if k.startswith("x-ms-"))
        canon = "".join("%s:%s\n" % kv for kv in xms)
        res = "/%s%s" % (self.account, path)
        q = {}
        for k, v in query:
            q.setdefault(k.lower(), []).append(v)
        for k in sorted(q):
            res += "\n%s:%s" % (k, ",".join(sorted(q[k])))
        return method + "\n" + "\n".join(vals) + "\n" + canon + res

    def request(self, method, container, blob=None, query=(), headers=None, body=b"",
                ok=(200, 201, 202, 206), retries=3):
        """Signed request; returns (status, headers dict lower-cased, body bytes).
        Raises BlobError for a status not in ok."""
        path = self._path(container, blob)
        query = [(k, str(v)) for k, v in query]
        qs = "&".join("%s=%s" % (urllib.parse.quote(k, safe=""), urllib.parse.quote(v, safe=""))
                      for k, v in query)
        target = path + ("?" + qs if qs else "")
        body = body if body is not None and len(body) else b""
        for attempt in range(retries + 1):
            h = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": API_VERSION}
            h.update(headers or {})
            if method in ("PUT", "POST") or body:
                h["Content-Length"] = str(len(body))
            sig = base64.b64encode(hmac.new(
                self.key, self.string_to_sign(method, path, query, h).encode("utf-8"),
                hashlib.sha256).digest()).decode()
            h["Authorization"] = "SharedKey %s:%s" % (self.account, sig)
            conn = self._conn(fresh=attempt > 0)
            try:
                conn.putrequest(method, target, skip_accept_encoding=True)
                for k, v in h.items():
                    conn.putheader(k, v)
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                data = resp.read()
            except _RETRYABLE:
                conn.close()
                if attempt == retries:
                    raise
                time.sleep(0.05 * (attempt + 1))
                continue
            rh = {k.lower(): v for k, v in resp.getheaders()}
            if resp.status >= 500 and attempt < retries:
                time.sleep(0.2 * (attempt + 1))
                continue
            if resp.status not in ok:
                raise BlobError(method, target, resp.status, rh.get("x-ms-error-code"), data)
            return resp.status, rh, data
        raise AssertionError("unreachable")

    def _c(self, container):
        c = container or self.container
        if not c:
            raise ValueError("no container given")
        return c

    # -- containers --

    def create_container(self, container=None, exist_ok=True):
        try:
            self.request("PUT", self._c(container), query=[("restype", "container")])
        except BlobError as e:
            if not (exist_ok and e.status == 409):
                raise

    def delete_container(self, container=None):
        self.request("DELETE", self._c(container), query=[("restype", "container")])

    # -- blobs --

    @staticmethod
    def _meta_headers(metadata):
        return {"x-ms-meta-" + k: v for k, v in (metadata or {}).items()}

    def put_blob(self, name, data, metadata=None, container=None, content_type=None,
                 block_size=8 * MiB, single_put_max=32 * MiB, workers=4):
        """Uploads a block blob: Put Blob up to single_put_max bytes, else Put Block (in
        parallel) + Put Block List."""
        c = self._c(container)
        h = self._meta_headers(metadata)
        if content_type:
            h["x-ms-blob-content-type"] = content_type
        data = memoryview(data)
        if len(data) <= single_put_max:
            h["x-ms-blob-type"] = "BlockBlob"
            _, rh, _ = self.request("PUT", c, name, headers=h, body=data)
            return rh.get("etag")
        n = (len(data) + block_size - 1) // block_size
        ids = [base64.b64encode(b"blk-%08d" % i).decode() for i in range(n)]  # fixed length

        def put_block(i):
            self.request("PUT", c, name, query=[("comp", "block"), ("blockid", ids[i])],
                         body=data[i * block_size:(i + 1) * block_size])

        with ThreadPoolExecutor(max_workers=workers) as ex:
            list(ex.map(put_block, range(n)))
        xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>%s</BlockList>" % "".join(
            "<Latest>%s</Latest>" % i for i in ids)
        _, rh, _ = self.request("PUT", c, name, query=[("comp", "blocklist")], headers=h,
                                body=xml.encode())
        return rh.get("etag")

    def put_many(self, blobs, container=None, workers=4):
        """Uploads many small blobs in parallel. blobs: iterable of (name, data) or
        (name, data, metadata). Azurite is the bottleneck (~1.5 ms of its CPU per Put
        Blob, ~450 blobs/s on 2 cores); more than ~4 workers only adds contention."""
        c = self._c(container)

        def one(item):
            self.put_blob(item[0], item[1], item[2] if len(item) > 2 else None, container=c)

        with ThreadPoolExecutor(max_workers=workers) as ex:
            for _ in ex.map(one, blobs):
                pass

    def get_blob(self, name, container=None, offset=None, length=None):
        h = {}
        if offset is not None:
            end = "" if length is None else str(offset + length - 1)
            h["x-ms-range"] = "bytes=%d-%s" % (offset, end)
        _, _, data = self.request("GET", self._c(container), name, headers=h)
        return data

    def get_properties(self, name, container=None):
        """Headers of Get Blob Properties (lower-cased names); metadata as x-ms-meta-*."""
        _, rh, _ = self.request("HEAD", self._c(container), name)
        return rh

    def exists(self, name, container=None):
        try:
            self.get_properties(name, container)
            return True
        except BlobError as e:
            if e.status == 404:
                return False
            raise

    def delete_blob(self, name, container=None):
        self.request("DELETE", self._c(container), name)

    def set_metadata(self, name, metadata, container=None):
        """Replaces all metadata of the blob."""
        self.request("PUT", self._c(container), name, query=[("comp", "metadata")],
                     headers=self._meta_headers(metadata))

    def list(self, prefix="", delimiter=None, container=None, include_metadata=False,
             page_size=None):
        """All pages of List Blobs: returns (list of BlobInfo, list of prefix names)."""
        c = self._c(container)
        blobs, prefixes, marker = [], [], None
        while True:
            q = [("restype", "container"), ("comp", "list")]
            if prefix:
                q.append(("prefix", prefix))
            if delimiter:
                q.append(("delimiter", delimiter))
            if include_metadata:
                q.append(("include", "metadata"))
            if page_size:
                q.append(("maxresults", page_size))
            if marker:
                q.append(("marker", marker))
            _, _, data = self.request("GET", c, query=q)
            root = ET.fromstring(data)
            for b in root.iter("Blob"):
                props = b.find("Properties")
                meta = b.find("Metadata")
                blobs.append(BlobInfo(
                    b.findtext("Name"),
                    int(props.findtext("Content-Length") or 0),
                    props.findtext("Etag"),
                    props.findtext("Last-Modified"),
                    {m.tag: (m.text or "") for m in meta} if meta is not None else {}))
            for p in root.iter("BlobPrefix"):
                prefixes.append(p.findtext("Name"))
            marker = root.findtext("NextMarker")
            if not marker:
                return blobs, prefixes

    def list_blobs(self, prefix="", container=None):
        """Names of all blobs under prefix (flat, all pages)."""
        return [b.name for b in self.list(prefix, container=container)[0]]


# --------------------------------------------------------------------------------------
# Mount table

def _unescape_mountinfo(s):
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), s)


def mounts():
    """Entries of /proc/self/mountinfo: dicts with path, fstype, source, options, dev."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            parts = line.rstrip(b"\n").split(b" ")
            try:
                sep = parts.index(b"-", 6)
            except ValueError:
                continue
            dec = lambda b: _unescape_mountinfo(b).decode("utf-8", "surrogateescape")
            out.append({"path": dec(parts[4]), "options": dec(parts[5]), "dev": dec(parts[2]),
                        "fstype": dec(parts[sep + 1]), "source": dec(parts[sep + 2]),
                        "super_options": dec(parts[sep + 3]) if len(parts) > sep + 3 else ""})
    return out


def _canon(path):
    # Never realpath() the mount point itself: on a dead FUSE mount that would hang or fail.
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def mount_info(mnt):
    """The topmost mountinfo entry at mnt, or None."""
    p = _canon(mnt)
    found = [m for m in mounts() if m["path"] == p]
    return found[-1] if found else None


def is_mounted(mnt):
    return mount_info(mnt) is not None


def wait_unmounted(mnt, timeout=5.0):
    deadline = time.monotonic() + timeout
    while is_mounted(mnt):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --------------------------------------------------------------------------------------
# ferry

class MountError(Exception):
    pass


def ferry_bin():
    b = os.environ.get("FERRY_BIN")
    if not b:
        raise MountError("FERRY_BIN is not set (run through ctest, or export FERRY_BIN=.../ferry)")
    if not os.access(b, os.X_OK):
        raise MountError("FERRY_BIN=%s is not an executable file" % b)
    return b


def ferry_env(account=ACCOUNT, key=KEY, extra=None):
    """Environment for ferry: ours without any AZURE_* credentials, plus the given ones
    (key=None: none), and HOME/XDG dirs in our temp dir so no user config or cache is used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    if account is not None:
        env["AZURE_STORAGE_ACCOUNT"] = account
    if key is not None:
        env["AZURE_STORAGE_KEY"] = key
    home = os.path.join(tmp_root(), "home")
    for sub in ("", ".config", ".cache"):
        os.makedirs(os.path.join(home, sub), exist_ok=True)
    env["HOME"] = home
    env["XDG_CONFIG_HOME"] = os.path.join(home, ".config")
    env["XDG_CACHE_HOME"] = os.path.join(home, ".cache")
    env.update(extra or {})
    return env


def ferry_cli(*args, env=None, cwd=None, timeout=120):
    """Runs `$FERRY_BIN args` with stdin closed; its output decoded (bad bytes replaced)
    and logged in one '#' line. Returns the CompletedProcess."""
    argv = [ferry_bin()] + list(args)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=env if env is not None else ferry_env(), cwd=cwd)
    out = subprocess.CompletedProcess(argv, r.returncode, r.stdout.decode("utf-8", "replace"),
                                      r.stderr.decode("utf-8", "replace"))
    log("ferry %s -> %d | %s" % (" ".join(args)[:120], out.returncode,
                                 " | ".join(out.stderr.strip().splitlines())[-400:]))
    return out


def ferry_ok(*args, **kw):
    """ferry_cli() that must exit 0."""
    r = ferry_cli(*args, **kw)
    check(r.returncode == 0, "ferry %s: exit %d, stderr: %s" % (
        " ".join(args), r.returncode, r.stderr.strip()[-500:]))
    return r


def _secrets_in(args):
    return [s for s in (KEY, WRONG_KEY) if any(s in a for a in args)]


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _opts(url, opts, allow_http):
    o = list(opts or [])
    if allow_http and url.startswith("http:") and "allow_http" not in o:
        o.insert(0, "allow_http")
    return o


def mount(url, mnt, opts=None, env=None, timeout=30.0, allow_http=False, extra_args=()):
    """Runs `ferry mount URL MNT -o opts` (daemon mode) and waits for it to exit.

    Returns a subprocess.CompletedProcess (stdout/stderr as str) with extra attributes:
    elapsed (seconds), timed_out (bool), stdout_path/stderr_path (files that keep
    collecting anything the daemon writes later). allow_http adds -o allow_http for
    http:// URLs. Whatever ends up mounted at mnt is registered for cleanup, also when
    ferry failed or hung.
    """
    args = [ferry_bin(), "mount", url, mnt]
    o = _opts(url, opts, allow_http)
    if o:
        args += ["-o", ",".join(o)]
    args += list(extra_args)
    if _secrets_in(args):
        raise MountError("refusing to put a key on ferry's command line")
    env = ferry_env() if env is None else env
    logdir = make_tmpdir("mountlog")
    out_path, err_path = os.path.join(logdir, "stdout"), os.path.join(logdir, "stderr")
    _register_mount(_canon(mnt))  # before starting: an interrupt may come at any time
    t0 = time.monotonic()
    timed_out = False
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        # Files, not pipes: a daemon that keeps our pipe open must not make us wait.
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, env=env,
                             cwd=tmp_root())
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            p.kill()
            rc = p.wait()
        except BaseException:
            p.kill()
            p.wait()
            raise
    elapsed = time.monotonic() - t0
    _forget_mount(_canon(mnt))
    cp = subprocess.CompletedProcess(args, rc, _read(out_path), _read(err_path))
    cp.elapsed, cp.timed_out = elapsed, timed_out
    cp.stdout_path, cp.stderr_path = out_path, err_path
    return cp


def unmount(mnt, fallback=True, timeout=20.0):
    """Runs `ferry unmount MNT`. With fallback, if that fails to unmount, uses
    `fusermount3 -u -z` (and `umount -l` as root). Returns the CompletedProcess of
    `ferry unmount` (None if FERRY_BIN is unusable)."""
    path = _canon(mnt)
    cp = None
    try:
        args = [ferry_bin(), "unmount", mnt]
        try:
            r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=timeout, env=ferry_env(), cwd=tmp_root())
            cp = subprocess.CompletedProcess(args, r.returncode,
                                             r.stdout.decode("utf-8", "replace"),
                                             r.stderr.decode("utf-8", "replace"))
        except subprocess.TimeoutExpired:
            cp = subprocess.CompletedProcess(args, -9, "", "ferry unmount timed out")
    except MountError as e:
        if not fallback:
            raise
        log("unmount %s: %s" % (mnt, e))
    if fallback:
        _force_unmount(path, wait_first=2.0)
    _forget_mount(path)
    return cp


def _force_unmount(path, wait_first=0.0, abort=False):
    """Lazy-unmounts path until nothing is mounted there (stacked mounts included)."""
    if wait_first:
        wait_unmounted(path, wait_first)
    for _ in range(8):
        info = mount_info(path)
        if info is None:
            return True
        if abort:
            _fuse_abort(info)
        for cmd in (["fusermount3", "-u", "-z", path], ["umount", "-l", path]):
            if cmd[0] == "umount" and os.geteuid() != 0:
                continue
            try:
                subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            if mount_info(path) != info:
                break
    return not is_mounted(path)


def _fuse_abort(info):
    """Aborts a FUSE connection (unblocks processes stuck on a hung daemon); root only,
    and only if fusectl is mounted."""
    if not info["fstype"].startswith("fuse"):
        return
    minor = info["dev"].split(":")[-1]
    try:
        with open("/sys/fs/fuse/connections/%s/abort" % minor, "w") as f:
            f.write("1")
    except OSError:
        pass


@contextlib.contextmanager
def mounted(url, mnt=None, opts=None, env=None, allow_http=False, timeout=30.0):
    """Mounts (creating a temp mount point when mnt is None), yields the mount point,
    and always unmounts. Raises MountError if the mount fails."""
    own = mnt is None
    if own:
        mnt = make_tmpdir("mnt")
    try:
        cp = mount(url, mnt, opts=opts, env=env, allow_http=allow_http, timeout=timeout)
        if cp.returncode != 0 or not is_mounted(mnt):
            raise MountError("ferry mount failed: exit %s%s after %.1f s, mounted=%s, stderr: %s" % (
                cp.returncode, " (timed out)" if cp.timed_out else "", cp.elapsed,
                is_mounted(mnt), cp.stderr.strip()[-500:] or "(empty)"))
        yield mnt
    finally:
        unmount(mnt)
        if own and not is_mounted(mnt):
            with contextlib.suppress(OSError):
                os.rmdir(mnt)


class Foreground:
    """`ferry mount URL MNT -f` as a child process (for sanitizer/valgrind runs or to see
    the daemon's log). Waits until the mount appears; stop() unmounts and reaps."""

    def __init__(self, url, mnt, opts=None, env=None, allow_http=False, ready_timeout=15.0,
                 wrapper=()):
        self.mnt = mnt
        args = list(wrapper) + [ferry_bin(), "mount", url, mnt]
        o = _opts(url, opts, allow_http)
        if o:
            args += ["-o", ",".join(o)]
        args.append("-f")
        if _secrets_in(args):
            raise MountError("refusing to put a key on ferry's command line")
        logdir = make_tmpdir("fglog")
        self.log_path = os.path.join(logdir, "output")
        _register_mount(_canon(mnt))
        with open(self.log_path, "wb") as lf:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=lf,
                                         stderr=subprocess.STDOUT,
                                         env=ferry_env() if env is None else env, cwd=tmp_root())
        with _lock:
            _fg_procs.append(self)
        deadline = time.monotonic() + ready_timeout
        while not is_mounted(mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise MountError("ferry -f did not mount within %.0f s: %s" % (
                    ready_timeout, self.output()[-500:]))
            time.sleep(0.05)

    def output(self):
        return _read(self.log_path)

    def stop(self, timeout=10.0):
        """Unmounts, waits for ferry to exit (SIGTERM, then SIGKILL); returns its exit code."""
        if is_mounted(self.mnt):
            unmount(self.mnt)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            try:
                rc = self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        with _lock:
            if self in _fg_procs:
                _fg_procs.remove(self)
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def ferry_pids(marker=None):
    """Pids of running processes of $FERRY_BIN whose command line contains marker
    (default: our temp root, i.e. started by this test process)."""
    marker = marker if marker is not None else tmp_root()
    try:
        exe = os.path.realpath(ferry_bin())
    except MountError:
        return []
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.path.realpath("/proc/%s/exe" % d) != exe:
                continue
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if marker in cmd:
            pids.append(int(d))
    return pids


# --------------------------------------------------------------------------------------
# Cleanup

def _our_mounts():
    """Mount points under our temp root, plus registered ones still mounted."""
    with _tmp_lock:
        root = _tmp_root
    with _lock:
        reg = list(_mounts)
    found = [m["path"] for m in mounts() if root and m["path"].startswith(root + "/")]
    return list(dict.fromkeys([p for p in reg if is_mounted(p)] + found))


def cleanup(force=False):
    """Unmounts everything we mounted, stops foreground ferries and every Azurite, and
    removes the temp root when nothing is mounted below it."""
    for path in reversed(_our_mounts()):
        if not force:
            try:
                unmount(path)
                continue
            except Exception:
                pass
        _force_unmount(path, abort=force)
    with _lock:
        fgs, azs = list(_fg_procs), list(_azurites)
    for fg in fgs:
        with contextlib.suppress(Exception):
            if force:
                fg.proc.kill()
            fg.stop(timeout=3)
    for az in azs:
        with contextlib.suppress(Exception):
            az.kill() if force else az.stop()
    global _tmp_root
    with _tmp_lock:
        root = _tmp_root
    if root and os.path.isdir(root):
        if not any(m["path"].startswith(root + "/") or m["path"] == root for m in mounts()):
            shutil.rmtree(root, ignore_errors=True)
            with _tmp_lock:
                _tmp_root = None
        else:
            print("# WARNING: mounts remain under %s; not removing it" % root, file=sys.stderr)


def cleanup_stale():
    """Removes mounts and temp dirs left by earlier test processes that died."""
    tmp = tempfile.gettempdir().rstrip("/") + "/"
    pat = re.compile(re.escape(tmp + _TMP_PREFIX) + r"(\d+)-[^/]+")
    dead_roots = set()
    for m in reversed(mounts()):
        mo = pat.match(m["path"])
        if mo and not os.path.exists("/proc/" + mo.group(1)):
            log("removing stale mount %s" % m["path"])
            _force_unmount(m["path"], abort=True)
            dead_roots.add(mo.group(0))
    for name in os.listdir(tmp):
        mo = pat.match(tmp + name)
        if mo and not os.path.exists("/proc/" + mo.group(1)):
            dead_roots.add(mo.group(0))
    still = [m["path"] for m in mounts()]
    for root in dead_roots:
        if not any(p.startswith(root + "/") or p == root for p in still):
            shutil.rmtree(root, ignore_errors=True)


class Interrupted(BaseException):
    def __init__(self, signum):
        super().__init__("signal %d" % signum)
        self.signum = signum


_interrupted = None


def _on_signal(signum, frame):
    global _interrupted
    if _interrupted is None:
        _interrupted = signum
        raise Interrupted(signum)
    # Second signal: we are already cleaning up and may be stuck. Be brutal.
    signal.signal(signum, signal.SIG_DFL)
    with contextlib.suppress(BaseException):
        cleanup(force=True)
    os._exit(128 + signum)


def install_handlers():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)


atexit.register(cleanup)


# --------------------------------------------------------------------------------------
# Sanitizer reports. A daemonized ferry has no stderr, so in a sanitized build every
# process we start logs its ASan/LSan/UBSan reports to log_path files in one directory
# (the options travel in the environment); run() fails on any file found there.

_san_dir = None


def sanitized():
    """Whether FERRY_BIN is built with ASan/UBSan (its memory use is not ferry's alone)."""
    return os.environ.get("FERRY_SANITIZED") == "1"


def _san_setup():
    global _san_dir
    if not sanitized() or _san_dir:
        return
    _san_dir = tempfile.mkdtemp(prefix="ferrysan-%d-" % os.getpid())
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        prev = os.environ.get(var)
        opts = "log_path=%s/report:print_stacktrace=1" % _san_dir
        os.environ[var] = "%s:%s" % (prev, opts) if prev else opts


def _san_running():
    """Pids of live processes that log to our report directory."""
    mark = ("log_path=%s/" % _san_dir).encode()
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            with contextlib.suppress(OSError):
                with open("/proc/%s/environ" % d, "rb") as f:
                    if mark in f.read():
                        pids.append(int(d))
    return pids


def _san_reports(wait=0.0):
    """Reads, prints and removes the reports written so far; with wait, first gives
    the processes still logging there up to that many seconds to exit (a leak report
    is written at exit, and a daemon exits a moment after its unmount)."""
    if not _san_dir:
        return []
    deadline = time.monotonic() + wait
    while wait and _san_running() and time.monotonic() < deadline:
        time.sleep(0.1)
    found = []
    for name in sorted(os.listdir(_san_dir)):
        path = os.path.join(_san_dir, name)
        text = _read(path)
        os.unlink(path)
        found.append(name)
        print("# sanitizer report %s:" % name, flush=True)
        for line in text.splitlines()[:300]:
            print("#   " + line, flush=True)
    return found


# --------------------------------------------------------------------------------------
# Runner

class TestTimeout(Exception):
    pass


def timeout(seconds):
    """Decorator: this test may take `seconds` (instead of the default)."""
    def deco(fn):
        fn.ferry_timeout = seconds
        return fn
    return deco


def _on_alarm(signum, frame):
    raise TestTimeout("timed out")


def _reason(e):
    if isinstance(e, (CheckFailed, AssertionError)) and str(e):
        r = str(e)
    else:
        r = "%s: %s" % (type(e).__name__, e)
    r = " ".join(r.split())
    return r if len(r) <= 600 else r[:600] + "…"


def _call_with_timeout(fn, seconds):
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run(ns=None, argv=None):
    """Runs the test_* functions of the calling module (in definition order), or those
    named in argv (with or without the test_ prefix). setup()/teardown() run before and
    after them when defined. Prints "PASS name" / "FAIL name: reason" per test and
    "N passed, N failed"; exits 1 if any failed (2 for a bad argument, 128+signal when
    interrupted). Tracebacks and timings go to stderr / '#' lines."""
    if ns is None:
        ns = sys._getframe(1).f_globals
    argv = sys.argv[1:] if argv is None else argv
    tests = [(n, f) for n, f in ns.items() if n.startswith("test_") and callable(f)]
    if "--list" in argv:
        for n, _ in tests:
            print(n)
        sys.exit(0)
    if argv:
        by_name = dict(tests)
        chosen = []
        for a in argv:
            n = a if a.startswith("test_") else "test_" + a
            if n not in by_name:  # a unique part of a name will do
                hits = [t for t in by_name if a in t]
                n = hits[0] if len(hits) == 1 else n
            if n not in by_name:
                print("unknown test %r; tests: %s" % (a, " ".join(n for n, _ in tests)),
                      file=sys.stderr)
                sys.exit(2)
            chosen.append((n, by_name[n]))
        tests = chosen
    default_timeout = float(ns.get("TEST_TIMEOUT") or os.environ.get("FERRY_TEST_TIMEOUT") or 150)
    install_handlers()
    _san_setup()
    signal.signal(signal.SIGALRM, _on_alarm)
    passed = failed = 0
    exit_code = None
    current = None
    try:
        cleanup_stale()
        setup_error = None
        if callable(ns.get("setup")):
            t0 = time.monotonic()
            try:
                _call_with_timeout(ns["setup"], float(ns.get("SETUP_TIMEOUT") or 240))
                log("setup took %.2f s" % (time.monotonic() - t0))
            except Interrupted:
                raise
            except BaseException as e:
                traceback.print_exc()
                setup_error = "setup: " + _reason(e)
        for name, fn in tests:
            if setup_error:
                print("FAIL %s: %s" % (name, setup_error), flush=True)
                failed += 1
                continue
            t0 = time.monotonic()
            err = None
            current = name
            try:
                _call_with_timeout(fn, float(getattr(fn, "ferry_timeout", default_timeout)))
            except Interrupted:
                raise
            except BaseException as e:
                if isinstance(e, TestTimeout):
                    e = TestTimeout("timed out after %.0f s" % (time.monotonic() - t0))
                traceback.print_exc()
                err = _reason(e)
            left = _our_mounts()
            if left:
                for p in left:
                    _force_unmount(p)
                if err is None:
                    err = "left mounted: %s" % ", ".join(left)
            reports = _san_reports()
            if reports and err is None:
                err = "sanitizer reported errors (%s)" % ", ".join(reports)
            if err is None:
                print("PASS %s" % name, flush=True)
                passed += 1
            else:
                print("FAIL %s: %s" % (name, err), flush=True)
                failed += 1
            current = None
            log("%s took %.2f s" % (name, time.monotonic() - t0))
        if callable(ns.get("teardown")):
            try:
                _call_with_timeout(ns["teardown"], 60)
            except Interrupted:
                raise
            except BaseException:
                traceback.print_exc()
    except Interrupted as e:
        if current:
            print("FAIL %s: interrupted by signal %d" % (current, e.signum), flush=True)
            failed += 1
        else:
            print("# interrupted by signal %d" % e.signum, flush=True)
        exit_code = 128 + e.signum
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        cleanup()
    reports = _san_reports(wait=15)
    if reports:
        print("FAIL sanitizer: reports after the last test (%s)" % ", ".join(reports), flush=True)
        failed += 1
    if _san_dir:
        shutil.rmtree(_san_dir, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    sys.exit(exit_code if exit_code is not None else (1 if failed else 0))
