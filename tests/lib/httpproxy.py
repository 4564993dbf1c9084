"""httpproxy: a counting HTTP/1.1 proxy between ferry and Azurite (python3 stdlib only).

    with HttpProxy(az.port) as proxy:
        url = proxy.url(az.url("data"))   # http://127.0.0.1:PROXYPORT/devstoreaccount1/data
        ... mount url, read ...
        proxy.count("GET", "get", blob="big.bin")   # GETs of that blob so far
        proxy.reset()

ferry is pointed at the proxy by URL alone: Shared Key signs the path and query, never
the host, so requests signed for the proxy's address are valid upstream.

Each accepted client connection gets its own thread and its own upstream connection, and
the two live and die together: when Azurite closes an idle keep-alive connection (after
5 s) the client's connection to the proxy is closed too, so ferry sees what it would see
talking to Azurite directly. Request and response heads are forwarded byte for byte;
bodies (Content-Length, chunked, or up to EOF; none for HEAD, 1xx, 204, 304) are streamed
through one reusable 1 MiB buffer per connection, never held whole.

Requests are classified for counting (see classify()) as the Blob REST operation they
are: "list" (comp=list), any other comp=X as X ("block", "blocklist", "metadata", ...),
"container" (restype=container without comp), and for a blob itself its method in lower
case: "get", "head", "put", "delete".

Where fault injection belongs: _Connection._exchange() is the one place a request meets
the upstream, with the parsed Request (method, kind, blob, headers) in hand; a rule that
matches a request acts there: answer it itself (5xx, 429 + Retry-After) instead of
forwarding, reset the client socket, or sleep before forwarding. _Stream.relay() is the
one pump every body goes through, where a bandwidth cap or a cut in mid-body belongs.

Fault rules (the first kind there is): a rule answers the requests it matches itself,
never forwarding them, either with an HTTP error in Azure's shape (status, an XML
<Error> body, x-ms-error-code) or by resetting the client's connection (TCP RST):

    rule = proxy.fail_put("dir/file.bin")          # every PUT of blobs under that prefix
    ... ferry's uploads of dir/file.bin now get 500 InternalError ...
    rule.hits                                      # requests it answered so far
    proxy.clear_faults()

The request body of a refused request is read and dropped (or, after Expect:
100-continue, never asked for and the connection closed), so the client sees a whole
HTTP exchange. Refused requests are counted and logged like any other, with the
status the proxy answered.

The general rule, proxy.add_fault(), selects requests by method, kind (classify()'s
name), blob name prefix, and optionally count= (act on the first N matches only, then
step aside) and probability= (act on each match with that chance, drawn from the
proxy's random.Random(seed); deterministic when 1). The first rule that matches and
fires wins. Exactly one action per rule:

    status=500 / 503 / ...        answer with that error (not forwarded)
    status=429, retry_after=1     ... with a Retry-After: 1 header
    reset=True                    reset the connection before any response byte
    reset=True, forward=True      ... but after the upstream answered (an answer lost:
                                  the request took effect, the client cannot know)
    reset_after=N                 forward; send the response head and N body bytes,
                                  then reset the connection (a cut in mid-body)
    stall=S                       send nothing for S seconds, then forward as usual
    stall=S, then_close=True      send nothing for S seconds, then reset
    rate=B                        forward; the response body at most B bytes/s

    px.add_fault("GET", blob_prefix="big", status=503, count=2)
    px.add_fault("GET", kind="get", reset_after=MiB, count=1)
    px.add_fault("GET", stall=3, probability=0.1)
    px.throttle(4 * MiB)            # rate= for every response

The listener itself can go away and come back on the same port:

    px.drop()       # stop accepting (connects are refused) and cut every connection
    px.restore()    # listen again on the same port
"""

import collections
import http
import random
import select
import socket
import struct
import threading
import time
import urllib.parse

RELAY_BUF = 1 << 20     # body pump buffer, per connection
HEAD_RECV = 64 * 1024   # recv size while reading heads and chunk lines
HEAD_LIMIT = 1 << 20    # longest request or response head accepted
LOG_LIMIT = 10000       # request records kept (the newest)


class ProtocolError(Exception):
    """Bytes that are not HTTP/1.x framing we understand; the connection is dropped."""


class PeerClosed(Exception):
    """The peer closed its side before a complete message."""


class Request:
    """One request as the proxy saw it. status is the upstream's final status (None
    until it answered, or if it never did), or the status a fault rule answered with;
    fault is that rule (None for a forwarded request)."""

    __slots__ = ("method", "target", "path", "query", "headers", "kind", "blob", "status",
                 "fault")

    def __init__(self, method, target, headers):
        self.method, self.target, self.headers = method, target, headers
        split = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(split.path)
        self.query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        self.kind, self.blob = classify(method, self.path, self.query)
        self.status = None
        self.fault = None

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    @property
    def range(self):
        """The byte range asked for (x-ms-range or Range), or None."""
        return self.header("x-ms-range") or self.header("range")

    def __repr__(self):
        return "<%s %s %s%s -> %s>" % (self.method, self.kind, self.blob or self.path,
                                       " " + self.range if self.range else "", self.status)


def classify(method, path, query):
    """(kind, blob name or None) of a path-style Blob REST request:
    /ACCOUNT[/CONTAINER[/BLOB]]?QUERY (path already percent-decoded)."""
    parts = path.lstrip("/").split("/", 2)
    blob = parts[2] if len(parts) == 3 and parts[2] else None
    comp = query.get("comp")
    if comp:
        return comp, blob
    if blob is not None:
        return method.lower(), blob
    if query.get("restype") == "container":
        return "container", None
    return "other", None


_ERROR_CODES = {500: "InternalError", 503: "ServerBusy", 429: "ServerBusy",
                412: "ConditionNotMet", 409: "Conflict", 404: "BlobNotFound",
                403: "AuthenticationFailed"}


class FaultRule:
    """Requests this rule acts on: those matching every criterion given (method, kind
    as classify() names it, blob name prefix), the first `count` of them (None: all),
    each with chance `probability`. The action is one of (see the module doc): an error
    answer (status, with retry_after a Retry-After header), reset (before any response
    byte; with forward=True only after the upstream answered), reset_after=N (after N
    response body bytes), stall=S seconds (then forward,
    or with then_close reset), rate=B bytes/s for the response body."""

    def __init__(self, method=None, kind=None, blob_prefix=None, status=500, reset=False,
                 retry_after=None, reset_after=None, stall=None, then_close=False,
                 rate=None, count=None, probability=1.0, forward=False):
        if not reset and not 400 <= status <= 599:
            raise ValueError("a fault status must be 4xx or 5xx, not %r" % (status,))
        if sum(x is not None and x is not False
               for x in (reset or None, reset_after, stall, rate)) > 1:
            raise ValueError("one action per rule: reset, reset_after, stall or rate")
        if then_close and stall is None:
            raise ValueError("then_close needs stall")
        if forward and not reset:
            raise ValueError("forward needs reset")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability %r" % (probability,))
        self.method = method.upper() if method else None
        self.kind, self.blob_prefix = kind, blob_prefix
        self.status, self.reset, self.retry_after = status, reset, retry_after
        self.reset_after, self.stall, self.then_close = reset_after, stall, then_close
        self.rate, self.forward = rate, forward
        self.count, self.probability = count, probability
        self.hits = 0  # requests acted on; updated under the proxy's lock

    @property
    def forwards(self):
        """True when the request still goes upstream (stall, cut or slow response)."""
        return (self.reset_after is not None or self.rate is not None or self.forward
                or (self.stall is not None and not self.then_close))

    @property
    def answers(self):
        """True when the proxy answers with an error itself."""
        return not self.reset and self.stall is None and not self.forwards

    def matches(self, req):
        return ((self.method is None or req.method == self.method)
                and (self.kind is None or req.kind == self.kind)
                and (self.blob_prefix is None
                     or (req.blob is not None and req.blob.startswith(self.blob_prefix))))

    def response(self, keep_alive):
        """The whole error response (head and body) as bytes."""
        code = _ERROR_CODES.get(self.status, "InjectedFault")
        body = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code>'
                "<Message>injected by the test proxy</Message></Error>" % code).encode()
        try:
            reason = http.HTTPStatus(self.status).phrase
        except ValueError:
            reason = "Injected Fault"
        head = ("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
                "x-ms-error-code: %s\r\n%sConnection: %s\r\n\r\n" % (
                    self.status, reason, len(body), code,
                    "Retry-After: %s\r\n" % self.retry_after
                    if self.retry_after is not None else "",
                    "keep-alive" if keep_alive else "close"))
        return head.encode("latin-1") + body

    def action(self):
        if self.reset:
            return "reset after the upstream answered" if self.forward else "reset"
        if self.reset_after is not None:
            return "reset after %d bytes" % self.reset_after
        if self.stall is not None:
            return "stall %gs%s" % (self.stall, " then reset" if self.then_close else "")
        if self.rate is not None:
            return "%d B/s" % self.rate
        return str(self.status) + (" Retry-After %s" % self.retry_after
                                   if self.retry_after is not None else "")

    def __repr__(self):
        return "<FaultRule %s %s %s* -> %s, %d hits>" % (
            self.method or "*", self.kind or "*", self.blob_prefix or "", self.action(),
            self.hits)


class _Cut(Exception):
    """A rule cut the response in mid-body; the client connection is reset."""


class _Shaped:
    """A socket-like sink (sendall) in front of the client socket: sends at most
    `rate` bytes/s and/or at most `cut` bytes, then raises _Cut."""

    def __init__(self, sock, rate=None, cut=None):
        self.sock, self.rate, self.cut = sock, rate, cut
        self.sent = 0
        self.t0 = time.monotonic()

    def sendall(self, data):
        mv = memoryview(data)
        while len(mv):
            n = len(mv)
            if self.cut is not None:
                n = min(n, self.cut - self.sent)
                if n <= 0:
                    raise _Cut()
            if self.rate is not None:
                n = min(n, max(1, self.rate // 20))  # ~50 ms slices
            self.sock.sendall(mv[:n])
            self.sent += n
            mv = mv[n:]
            if self.rate is not None:
                ahead = self.sent / self.rate - (time.monotonic() - self.t0)
                if ahead > 0:
                    time.sleep(ahead)
        if self.cut is not None and self.sent >= self.cut:
            raise _Cut()


def _rst(sock):
    """Makes close() of sock send RST, not FIN (SO_LINGER with a zero timeout)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass


class _Discard:
    """A sink with a socket's sendall(): where a refused request's body goes."""

    @staticmethod
    def sendall(data):
        pass


def _parse_head(raw):
    """(start line, [(name, value)]) of a message head (bytes ending in CRLF CRLF)."""
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError("bad header line %r" % line[:100])
        headers.append((name, value.strip()))
    return lines[0], headers


def _get(headers, name):
    name = name.lower()
    vals = [v for k, v in headers if k.lower() == name]
    return ",".join(vals) if vals else None


def _tokens(headers, name):
    v = _get(headers, name)
    return {t.strip().lower() for t in v.split(",")} if v else set()


def _keep_alive(version, headers):
    conn = _tokens(headers, "connection")
    if version == "HTTP/1.1":
        return "close" not in conn
    return "keep-alive" in conn


def _framing(headers):
    """('chunked', None), ('length', n) or (None, None) from a message's headers."""
    te = _tokens(headers, "transfer-encoding")
    if te:
        if "chunked" not in te:
            raise ProtocolError("transfer-encoding %r" % _get(headers, "transfer-encoding"))
        return "chunked", None
    cl = _get(headers, "content-length")
    if cl is None:
        return None, None
    try:
        n = int(cl.split(",")[0])
    except ValueError:
        raise ProtocolError("content-length %r" % cl) from None
    if n < 0:
        raise ProtocolError("content-length %r" % cl)
    return "length", n


class _Stream:
    """A socket with a read buffer. Heads and chunk-size lines are parsed out of the
    buffer; bodies go straight from the socket to the destination through a scratch
    buffer (the only copy is the kernel's)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def buffered(self):
        return len(self.buf)

    def _fill(self):
        data = self.sock.recv(HEAD_RECV)
        if not data:
            raise PeerClosed()
        self.buf += data

    def read_until(self, delim, limit=HEAD_LIMIT):
        """Bytes up to and including delim; PeerClosed on EOF before any byte."""
        start = 0
        while True:
            i = self.buf.find(delim, start)
            if i >= 0:
                end = i + len(delim)
                out = bytes(self.buf[:end])
                del self.buf[:end]
                return out
            if len(self.buf) > limit:
                raise ProtocolError("no %r within %d bytes" % (delim, limit))
            start = max(0, len(self.buf) - len(delim) + 1)
            self._fill()

    def relay(self, n, dst, scratch):
        """Copies exactly n bytes of this stream to socket dst."""
        if self.buf:
            k = min(n, len(self.buf))
            dst.sendall(self.buf[:k])
            del self.buf[:k]
            n -= k
        while n > 0:
            k = self.sock.recv_into(scratch, min(n, len(scratch)))
            if not k:
                raise PeerClosed()
            dst.sendall(scratch[:k])
            n -= k

    def relay_to_eof(self, dst, scratch):
        if self.buf:
            dst.sendall(self.buf)
            del self.buf[:]
        while True:
            k = self.sock.recv_into(scratch, len(scratch))
            if not k:
                return
            dst.sendall(scratch[:k])

    def relay_chunked(self, dst, scratch):
        """Copies a chunked body, chunk-size lines and trailers included, as it is."""
        while True:
            line = self.read_until(b"\r\n", 4096)
            dst.sendall(line)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ProtocolError("chunk size line %r" % line[:100]) from None
            if size == 0:
                while True:  # trailer fields, then the empty line
                    line = self.read_until(b"\r\n", HEAD_LIMIT)
                    dst.sendall(line)
                    if line == b"\r\n":
                        return
            self.relay(size + 2, dst, scratch)  # data and its CRLF

    def relay_body(self, framing, length, dst, scratch):
        if framing == "chunked":
            self.relay_chunked(dst, scratch)
        elif framing == "length":
            self.relay(length, dst, scratch)
        else:
            self.relay_to_eof(dst, scratch)


def _connect(addr):
    s = socket.create_connection(addr, timeout=None)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class _Connection:
    """One client connection and its upstream connection."""

    def __init__(self, proxy, sock):
        self.proxy = proxy
        self.client = _Stream(sock)
        self.upstream = None
        self.scratch = memoryview(bytearray(RELAY_BUF))

    def serve(self):
        try:
            while self._wait_for_request() and self._exchange():
                pass
        except _Cut:
            _rst(self.client.sock)
        except (PeerClosed, ProtocolError, OSError):
            pass
        finally:
            self.close()

    def close(self):
        for s in (self.client, self.upstream):
            if s is not None:
                self.proxy._untrack(s.sock)
                try:
                    s.sock.close()
                except OSError:
                    pass

    def _wait_for_request(self):
        """True when the client has sent (part of) a next request; False when either
        side closed meanwhile."""
        if self.client.buffered():
            return True
        socks = [self.client.sock] + ([self.upstream.sock] if self.upstream else [])
        readable, _, _ = select.select(socks, [], [])
        # Upstream readable while idle: it closed (or sent garbage). Mirror it.
        return not (self.upstream and self.upstream.sock in readable)

    def _open_upstream(self):
        if self.upstream is None:
            self.upstream = _Stream(_connect(self.proxy.upstream))
            self.proxy._track(self.upstream.sock)
        return self.upstream

    def _read_response_head(self, up):
        raw = up.read_until(b"\r\n\r\n")
        start, headers = _parse_head(raw)
        parts = start.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError("status line %r" % start[:100])
        return raw, parts[0], int(parts[1]), headers

    def _exchange(self):
        """Forwards one request and its response; True to keep both connections."""
        try:
            raw = self.client.read_until(b"\r\n\r\n")
        except PeerClosed:
            return False
        start, headers = _parse_head(raw)
        parts = start.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ProtocolError("request line %r" % start[:100])
        method, target, version = parts
        req = Request(method, target, headers)
        req.fault = self.proxy._fault_for(req)
        self.proxy._record(req)
        keep = _keep_alive(version, headers)
        framing, length = _framing(headers)
        if framing is None:
            framing, length = "length", 0  # a request without framing has no body
        rule = req.fault
        if rule is not None and rule.stall is not None:
            self.proxy._sleep(rule.stall)
        if rule is not None and not rule.forwards:
            return self._refuse(req, framing, length, keep)

        up = self._open_upstream()
        up.sock.sendall(raw)
        if "100-continue" in _tokens(headers, "expect"):
            rhead, rversion, status, rheaders = self._read_response_head(up)
            if status != 100:
                # Refused before the body: answer, then close (the client may or may
                # not send the body now; we cannot tell where the next request starts).
                self._relay_response(req, rhead, rversion, status, rheaders)
                return False
            self.client.sock.sendall(rhead)
        self.client.relay_body(framing, length, up.sock, self.scratch)

        rhead, rversion, status, rheaders = self._read_response_head(up)
        while 100 <= status < 200 and status != 101:  # interim answers: pass them on
            self.client.sock.sendall(rhead)
            rhead, rversion, status, rheaders = self._read_response_head(up)
        return self._relay_response(req, rhead, rversion, status, rheaders) and keep

    def _refuse(self, req, framing, length, keep):
        """Answers req as its fault rule says; True to keep the client connection."""
        rule = req.fault
        if rule.reset or rule.then_close:
            _rst(self.client.sock)
            return False
        req.status = rule.status
        if "100-continue" in _tokens(req.headers, "expect"):
            # Refused before the body: the client may send it or not, so the next
            # request's start is unknown. Answer and close, as a server does.
            self.client.sock.sendall(rule.response(keep_alive=False))
            return False
        self.client.relay_body(framing, length, _Discard, self.scratch)
        self.client.sock.sendall(rule.response(keep_alive=keep))
        return keep

    def _relay_response(self, req, rhead, rversion, status, rheaders):
        """Sends a final response to the client; True if the upstream keeps the
        connection open after it."""
        req.status = status
        if status == 101:
            raise ProtocolError("protocol upgrade is not supported")
        if req.fault is not None and req.fault.forward:
            raise _Cut()  # the answer is lost: not a byte of it reaches the client
        self.client.sock.sendall(rhead)
        if req.method == "HEAD" or status in (204, 304):
            framing, length = "length", 0
        else:
            framing, length = _framing(rheaders)
        dst = self.client.sock
        rule = req.fault if req.fault is not None else self.proxy._rate_rule
        if rule is not None and (rule.rate is not None or rule.reset_after is not None):
            dst = _Shaped(dst, rule.rate, rule.reset_after)
        self.upstream.relay_body(framing, length, dst, self.scratch)
        if rule is not None and rule.reset_after is not None:
            raise _Cut()  # the body was shorter than the cut: cut after it all the same
        return framing is not None and _keep_alive(rversion, rheaders)


class HttpProxy:
    """The proxy, listening on a free loopback port; threads are daemons. Use as a
    context manager, or call close()."""

    def __init__(self, upstream_port, upstream_host="127.0.0.1", seed=0):
        self.upstream = (upstream_host, upstream_port)
        self._rng = random.Random(seed)
        self._rate_rule = None  # throttle(): a rate for every response without a rule
        self._dropped = False
        self._lock = threading.Lock()
        self._counts = collections.Counter()  # (method, kind, blob) -> n
        self._log = collections.deque(maxlen=LOG_LIMIT)
        self._socks = set()
        self._faults = []  # FaultRule, the first match wins
        self._threads = []
        self._closed = False
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="proxy-accept",
                                          daemon=True)
        self._acceptor.start()

    # -- addresses --

    def url(self, upstream_url):
        """upstream_url with the proxy's address in place of the upstream's."""
        u = urllib.parse.urlsplit(upstream_url)
        return urllib.parse.urlunsplit(u._replace(netloc="127.0.0.1:%d" % self.port))

    # -- counters --

    def _record(self, req):
        with self._lock:
            self._counts[(req.method, req.kind, req.blob)] += 1
            self._log.append(req)

    def count(self, method=None, kind=None, blob=None):
        """Requests since the last reset() matching every criterion given."""
        with self._lock:
            return sum(n for (m, k, b), n in self._counts.items()
                       if (method is None or m == method) and (kind is None or k == kind)
                       and (blob is None or b == blob))

    def counts(self):
        """{(method, kind): n} since the last reset()."""
        out = collections.Counter()
        with self._lock:
            for (m, k, _), n in self._counts.items():
                out[(m, k)] += n
        return dict(out)

    def requests(self, method=None, kind=None, blob=None):
        """The Request records since the last reset() (the newest LOG_LIMIT), filtered."""
        with self._lock:
            log = list(self._log)
        return [r for r in log if (method is None or r.method == method)
                and (kind is None or r.kind == kind) and (blob is None or r.blob == blob)]

    def reset(self):
        with self._lock:
            self._counts.clear()
            self._log.clear()

    # -- fault rules --

    def add_fault(self, method=None, kind=None, blob_prefix=None, status=500, reset=False,
                  **kw):
        """Adds a FaultRule (see its doc and the module doc for the keyword arguments:
        retry_after, reset_after, stall, then_close, rate, count, probability) and
        returns it; it acts on requests that start after this call."""
        rule = FaultRule(method, kind, blob_prefix, status, reset, **kw)
        with self._lock:
            self._faults.append(rule)
        return rule

    def throttle(self, rate):
        """Caps every response body without a rule of its own at rate bytes/s (per
        connection); None lifts the cap."""
        with self._lock:
            self._rate_rule = FaultRule(rate=rate) if rate else None

    def faults(self):
        with self._lock:
            return list(self._faults)

    def fail_put(self, blob_prefix, status=500, reset=False):
        """Every PUT of a blob whose name starts with blob_prefix (Put Blob, Put Block,
        Put Block List, Set Metadata, Copy Blob to it, ...) fails."""
        return self.add_fault("PUT", blob_prefix=blob_prefix, status=status, reset=reset)

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def _fault_for(self, req):
        with self._lock:
            for rule in self._faults:
                if not rule.matches(req):
                    continue
                if rule.count is not None and rule.hits >= rule.count:
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                rule.hits += 1
                return rule
        return None

    def _sleep(self, seconds):
        """Sleeps, cut short when the proxy closes or drops its listener."""
        end = time.monotonic() + seconds
        while not self._closed and not self._dropped:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.05))
        raise PeerClosed()

    # -- the listener --

    def _listen(self, port):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", port))
        ls.listen(64)
        ls.settimeout(0.2)
        return ls

    def _cut_all(self):
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drop(self):
        """The server is gone: stops listening (connects to the port are refused) and
        cuts every open connection, client and upstream side."""
        with self._lock:
            if self._dropped:
                return
            self._dropped = True
            ls, self._listener = self._listener, None
        ls.close()
        self._cut_all()

    def restore(self):
        """Listens again on the same port after drop()."""
        with self._lock:
            if not self._dropped:
                return
        ls = self._listen(self.port)
        with self._lock:
            self._listener = ls
            self._dropped = False

    @property
    def dropped(self):
        return self._dropped

    # -- threads and sockets --

    def _track(self, sock):
        with self._lock:
            self._socks.add(sock)

    def _untrack(self, sock):
        with self._lock:
            self._socks.discard(sock)

    def _accept_loop(self):
        while not self._closed:
            with self._lock:
                ls = self._listener
            if ls is None:
                time.sleep(0.05)
                continue
            try:
                sock, _ = ls.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._closed:
                    return
                continue  # dropped meanwhile
            if self._dropped:
                sock.close()
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._track(sock)
            t = threading.Thread(target=_Connection(self, sock).serve, name="proxy-conn",
                                 daemon=True)
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()] + [t]
            t.start()

    def close(self):
        """Stops accepting, cuts every connection, waits for the threads."""
        self._closed = True
        self._acceptor.join(5)
        with self._lock:
            ls, self._listener = self._listener, None
        if ls is not None:
            ls.close()
        self._cut_all()
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
