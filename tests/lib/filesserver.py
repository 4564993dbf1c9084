"""filesserver: a TEST SERVER for the Azure Files REST API (python3 stdlib only).

THIS IS NOT AZURE, nor Microsoft's emulator: Azurite, the emulator the other tests
use, has no Azure Files. It is a test server written for ferry's tests from the
published REST reference (learn.microsoft.com/rest/api/storageservices: "List
Directories and Files", "Create File", "Put Range", "Get File", "Set File
Properties", "Rename File", "Create Directory", "Authorize with Shared Key",
"Create a service SAS", "Naming and referencing shares, directories, files, and
metadata", the error-code tables) and from the File service's published swagger.
What the reference does not say is a choice made here, marked "(choice)" below and
in the code; behaviour of the real service that the reference does not describe is
not reproduced.

    with FilesServer() as fs:                   # in memory, on a free loopback port
        fs.create_share("data")
        fs.put_file("data", "dir/a.txt", b"hi")  # missing parents are created
        fs.url("data", "dir/a.txt")     # http://127.0.0.1:P/devstoreaccount1/data/dir/a.txt
        c = FilesClient(fs)             # a small Shared Key client
        c.get("data", "dir/a.txt")      # b"hi"
        fs.requests[-1]                 # ("GET", "/devstoreaccount1/data/dir/a.txt", {}, {..})

The API (tests use exactly this):

  FilesServer(account="devstoreaccount1", key=KEY, port=None)   .start() -> self, .stop()
      (start() after stop() listens on the same port again; the data stays), a
      context manager; .port, .endpoint ("http://127.0.0.1:PORT/ACCOUNT"),
      .url(share, path="")
  Direct helpers (no HTTP, under the server's lock):
      .create_share(name)  .put_file(share, path, data)  (creates missing parents)
      .mkdir(share, path)  (and its parents)  .get_file(share, path) -> bytes or None
      .listing(share, dir="") -> names in the order List Directories and Files gives
      (None for no such directory)  .exists(share, path)  .is_dir(share, path)
  .requests       (method, URL path percent-decoded, {query name: value}, {header
                  name lower-cased: value}) of every request served, in order
  .clear_requests()
  .fail_next(n, status=503, code="ServerBusy", method=None, retry_after=None): the
                  next n requests (of that method) get that error, XML body and all
  FilesClient(server, port=None, ...)   signed requests for the self-tests; port= to
                  go through httpproxy.HttpProxy
  service_sas(share, path=None, permissions="r", expiry=3600, ...)  a service SAS

Served (path style: http://127.0.0.1:PORT/ACCOUNT/SHARE/PATH):

  share   PUT ?restype=share (Create Share), GET|HEAD ?restype=share (Get Share
          Properties), DELETE ?restype=share (Delete Share)
  dir     PUT ?restype=directory (Create Directory), GET|HEAD ?restype=directory (Get
          Directory Properties), DELETE ?restype=directory (Delete Directory), GET
          ?restype=directory&comp=list (List Directories and Files), PUT
          ?restype=directory&comp=properties|metadata, GET|HEAD
          ?restype=directory&comp=metadata, PUT ?restype=directory&comp=rename
  file    PUT (Create File), PUT ?comp=range (Put Range), GET (Get File), HEAD (Get
          File Properties), PUT ?comp=properties (Set File Properties), PUT|GET|HEAD
          ?comp=metadata, DELETE (Delete File), PUT ?comp=rename (Rename File)

Strict, as the reference describes the service: every request needs x-ms-version (a
version from 2019-02-02 to today; with a SAS it may be left out and sv is used) and,
with Shared Key, x-ms-date or Date within 15 minutes of now. A refused request gets
the status, x-ms-error-code and <?xml ...><Error><Code/><Message/>...</Error> body
the reference gives (AuthenticationFailed says which string to sign was expected).
Anonymous requests get 401 NoAuthenticationInformation.

  Shared Key   StringToSign = VERB, Content-Encoding, Content-Language, Content-Length
               (empty for 0), Content-MD5, Content-Type, Date (empty when x-ms-date is
               sent), If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since,
               Range, the x-ms-* headers (lower-cased, sorted, values trimmed), then
               "/" ACCOUNT + the URL path as sent (percent-encoded; path style, so it
               starts with /ACCOUNT, as Azurite and ferry sign) and one line
               "name:value" per query parameter (names lower-cased and sorted, values
               decoded, a repeated name's values sorted and joined with ","). The
               host-style form ("/" ACCOUNT "/SHARE/PATH") is accepted too (choice).
  service SAS  sv >= 2015-04-05; sr=s (share) or f (file); sp from "rcwdl" in that
               order ("l" only with sr=s); se, optional st, sip, spr (spr=https is
               refused: this server speaks http); StringToSign = sp, st, se,
               "/file/ACCOUNT/SHARE[/PATH]", si, sip, spr, sv, rscc, rscd, rsce, rscl,
               rsct; rscc..rsct override Get File's response headers. Stored access
               policies (si) do not exist here. Permissions: r to read (Get File, Get
               * Properties, metadata), c or w to create (Create File, Create
               Directory, a rename's destination), w to write (Put Range, Set *), d to
               delete (and for a rename's source), l to list (sr=s); Create and Delete
               Share need Shared Key (AuthorizationResourceTypeMismatch), as does any
               share or directory operation with sr=f.

Names (the reference's rules): share names 3-63 of [a-z0-9-], no leading, trailing or
double hyphen; directory and file names case-preserving and case-INsensitive, at most
255 characters, none of " \\ / : | < > * ? or control characters, not "." "..", LPT1-9,
COM1-9, PRN, AUX, NUL, CON or CLOCK$; a path at most 2048 characters and 250
directories deep. Listings are "intermingled in lexically sorted order": here by the
upper-cased name, since names are case-insensitive (choice).

Choices where the reference is silent (the real service may differ):
  - Create File over a directory: 409 ResourceTypeMismatch; Create Directory over a
    file: 409 ResourceAlreadyExists; Get/Delete File of a directory, or a directory
    operation on a file: 404 ResourceNotFound; any operation whose parent is missing
    (or a file): 404 ParentNotFound
  - Put Range: Content-Length over 4 MiB: 413 RequestBodyTooLarge (before the body is
    read); Content-Length other than the range's length: 400 InvalidHeaderValue
    naming Content-Length; a range that is not bytes=a-b: 400 InvalidHeaderValue
  - Rename: replacing a directory only when it is empty (409 DirectoryNotEmpty), a
    file by a directory or the reverse 409 ResourceTypeMismatch, a directory into
    itself 400 InvalidInput, a source outside the share 400 InvalidHeaderValue; with
    a SAS the source needs d (its own SAS in the source URL, or an sr=s SAS)
  - a listing's Etag is written as the ETag header is (quoted); include= values are
    matched case-insensitively (the reference writes ETag, the swagger Etag); a
    marker this server did not give out: 400 InvalidQueryParameterValue
  - Shared Key without any date: 403 AuthenticationFailed; a request with both sig=
    and an Authorization header is checked as a SAS

Not here: share snapshots, leases (an x-ms-lease-id gets 412
LeaseNotPresentWithFileOperation), handles, copies, List Ranges, List Shares, stored
access policies, account SAS, OAuth. Conditional headers (If-Match...) get 400
ConditionHeadersNotSupported, as Azure Files does not support them.

All state is in memory behind one lock; a file's bytes past what was written are
zeros without being stored, so Create File of a large size costs nothing. Every
response has a Content-Length and connections are kept alive (HTTP/1.1), so the
server works behind httpproxy.HttpProxy; Expect: 100-continue is answered only once
the request's headers were accepted.
"""

import base64
import datetime
import email.utils
import hashlib
import hmac
import http.client
import http.server
import ipaddress
import re
import socket
import threading
import time
import traceback
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (as in ferrytest.py).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
API_VERSION = "2021-12-02"
SAS_VERSION = "2022-11-02"
MIN_VERSION = "2019-02-02"       # the first with the SMB property headers
SMB_OPTIONAL_SINCE = "2021-06-08"  # x-ms-file-attributes & co optional from here
RENAME_SINCE = "2021-04-10"      # Rename File / Rename Directory appear
EXTENDED_SINCE = "2020-10-02"    # include= and x-ms-file-extended-info on listings
CHANGE_TIME_SINCE = "2021-06-08"  # x-ms-file-change-time
SAS_MIN_VERSION = "2015-04-05"   # the File SAS string-to-sign implemented here
MiB = 1024 * 1024
MAX_PUT_RANGE = 4 * MiB          # Put Range x-ms-write: update, and a ranged MD5
MAX_FILE_SIZE = 4 * 1024 ** 4    # 4 TiB
LIST_MAX = 5000
CLOCK_SKEW = 15 * 60             # a Shared Key request's date, seconds either way
MAX_NAME = 255
MAX_PATH = 2048
MAX_DEPTH = 250
MAX_RENAME_SOURCE = 2048
DRAIN_MAX = 64 * MiB             # a refused request's body up to this is read and dropped
SERVER_NAME = "ferry-filesserver/1 (a test server, not Azure)"

_STD_HEADERS = ("content-encoding", "content-language", "content-length", "content-md5",
                "content-type", "date", "if-modified-since", "if-match", "if-none-match",
                "if-unmodified-since", "range")
_CONDITIONAL = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
_ATTRIBUTES = {a.upper(): a for a in (
    "ReadOnly", "Hidden", "System", "None", "Directory", "Archive", "Temporary",
    "Offline", "NotContentIndexed", "NoScrubData")}
_RESERVED = {"LPT%d" % i for i in range(1, 10)} | {"COM%d" % i for i in range(1, 10)} | {
    "PRN", "AUX", "NUL", "CON", "CLOCK$", ".", ".."}
_BAD_CHARS = set('"\\/:|<>*?') | {chr(i) for i in range(0x20)} | {"\x7f"}
_SHARE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RFC1123_RE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
_ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?Z$")
_SAS_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?Z)?$")
_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")

# Code -> (status, message), from the reference's common and Azure Files error tables.
_ERRORS = {
    "AuthenticationFailed": (403, "Server failed to authenticate the request. Make sure "
                             "the value of Authorization header is formed correctly "
                             "including the signature."),
    "AuthorizationPermissionMismatch": (403, "This request is not authorized to perform "
                                        "this operation using this permission."),
    "AuthorizationResourceTypeMismatch": (403, "This request is not authorized to "
                                          "perform this operation using this resource "
                                          "type."),
    "AuthorizationProtocolMismatch": (403, "This request is not authorized to perform "
                                      "this operation using this protocol."),
    "AuthorizationSourceIPMismatch": (403, "This request is not authorized to perform "
                                      "this operation using this source IP."),
    "NoAuthenticationInformation": (401, "Server failed to authenticate the request. "
                                    "Please refer to the information in the "
                                    "www-authenticate header."),
    "InvalidAuthenticationInfo": (400, "Authentication information is not given in the "
                                  "correct format. Check the value of Authorization "
                                  "header."),
    "MissingRequiredHeader": (400, "An HTTP header that's mandatory for this request is "
                              "not specified."),
    "InvalidHeaderValue": (400, "The value for one of the HTTP headers is not in the "
                           "correct format."),
    "MissingRequiredQueryParameter": (400, "A query parameter that's mandatory for this "
                                      "request is not specified."),
    "InvalidQueryParameterValue": (400, "Value for one of the query parameters specified "
                                   "in the request URI is invalid."),
    "OutOfRangeQueryParameterValue": (400, "One of the query parameters specified in the "
                                      "request URI is outside the permissible range."),
    "MissingContentLengthHeader": (411, "The Content-Length header was not specified."),
    "RequestBodyTooLarge": (413, "The request body is too large and exceeds the maximum "
                            "permissible limit."),
    "InvalidRange": (416, "The range specified is invalid for the current size of the "
                     "resource."),
    "InvalidMd5": (400, "The MD5 value specified in the request is invalid. The MD5 value "
                   "must be 128 bits and Base64-encoded."),
    "Md5Mismatch": (400, "The MD5 value specified in the request did not match the MD5 "
                    "value calculated by the server."),
    "InvalidUri": (400, "The requested URI does not represent any resource on the "
                   "server."),
    "InvalidInput": (400, "One of the request inputs is not valid."),
    "InvalidResourceName": (400, "The specified resource name contains invalid "
                            "characters."),
    "InvalidFileOrDirectoryPathName": (400, "File or directory path is too long."),
    "FileInvalidPermissionKey": (400, "The specified file permission key doesn't exist in "
                                 "the share."),
    "FileInvalidPermission": (400, "The specified file permission isn't valid."),
    "ConditionHeadersNotSupported": (400, "Condition headers are not supported."),
    "UnsupportedHttpVerb": (405, "The resource doesn't support the specified HTTP verb."),
    "ShareNotFound": (404, "The specified share does not exist."),
    "ShareAlreadyExists": (409, "The specified share already exists."),
    "ResourceNotFound": (404, "The specified resource does not exist."),
    "ParentNotFound": (404, "The specified parent path does not exist."),
    "ResourceAlreadyExists": (409, "The specified resource already exists."),
    "ResourceTypeMismatch": (409, "The specified resource type does not match the type "
                             "of the existing resource."),
    "DirectoryNotEmpty": (409, "The specified directory is not empty."),
    "CannotDeleteFileOrDirectory": (409, "An attempt has been made to remove a file or "
                                    "directory that can't be deleted."),
    "ReadOnlyAttribute": (409, "The specified resource is read-only and cannot be "
                          "modified at this time."),
    "LeaseNotPresentWithFileOperation": (412, "There is currently no lease on the file."),
    "ServerBusy": (503, "The server is currently unable to receive requests. Please "
                   "retry your request."),
    "InternalError": (500, "The server encountered an internal error. Please retry the "
                      "request."),
}


class ServiceError(Exception):
    """A refusal: status, x-ms-error-code, message and extra <Error> children
    (HeaderName, QueryParameterName, AuthenticationErrorDetail, ...)."""

    def __init__(self, code, status=None, message=None, headers=None, close=False, **extra):
        st, msg = _ERRORS.get(code, (status or 400, code))
        self.code = code
        self.status = status or st
        self.message = message or msg
        self.extra = [(k, str(v)) for k, v in extra.items() if v is not None]
        self.headers = list(headers or [])
        self.close = close
        super().__init__("%d %s: %s" % (self.status, code, self.message))


def _header_error(code, name, value=None, reason=None):
    return ServiceError(code, HeaderName=name, HeaderValue=value, Reason=reason)


def _query_error(code, name, value=None, reason=None):
    return ServiceError(code, QueryParameterName=name, QueryParameterValue=value,
                        Reason=reason)


def _auth_failed(detail):
    return ServiceError("AuthenticationFailed", AuthenticationErrorDetail=detail)


# --------------------------------------------------------------------------------------
# Times and small parsers

def _rfc1123(t):
    return email.utils.formatdate(t, usegmt=True)


def _iso7(t):
    """ISO 8601 with 7 fractional digits, as the service writes SMB times."""
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%07dZ" % (dt.microsecond * 10)


def _parse_iso7(value):
    """A normalised ISO time string (7 fractional digits), or None if malformed."""
    m = _ISO_RE.match(value)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    try:
        datetime.datetime(y, mo, d, h, mi, s)
    except ValueError:
        return None
    return "%04d-%02d-%02dT%02d:%02d:%02d.%sZ" % (y, mo, d, h, mi, s,
                                                   (m.group(7) or "").ljust(7, "0"))


def _parse_sas_time(value):
    """Epoch seconds of a SAS st/se value (ISO 8601 UTC, as the reference allows:
    YYYY-MM-DD, YYYY-MM-DDThh:mmZ, YYYY-MM-DDThh:mm:ssZ, with fractions); None if
    malformed."""
    m = _SAS_TIME_RE.match(value)
    if not m:
        return None
    g = m.groups()
    try:
        dt = datetime.datetime(int(g[0]), int(g[1]), int(g[2]), int(g[3] or 0),
                               int(g[4] or 0), int(g[5] or 0),
                               int((g[6] or "0").ljust(7, "0")[:6]),
                               tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return dt.timestamp()


def _today():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def _date_ok(v):
    if not v or not _VERSION_RE.match(v):
        return False
    try:
        datetime.date.fromisoformat(v)
    except ValueError:
        return False
    return True


def _version_ok(v):
    """A service version this server answers: YYYY-MM-DD, from MIN_VERSION to today
    (choice: the real service knows a fixed list of versions)."""
    return _date_ok(v) and MIN_VERSION <= v <= _today()


def _parse_bool(value, name):
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("true", "false"):
        return v == "true"
    raise _header_error("InvalidHeaderValue", name, value)


def _name_key(name):
    """The case-insensitive key of a directory or file name: each character upper-cased
    on its own (so that no character turns into two, as in Windows' upcase table)."""
    out = []
    for c in name:
        u = c.upper()
        out.append(u if len(u) == 1 else c)
    return "".join(out)


def _check_share_name(name):
    if not _SHARE_RE.match(name):
        raise ServiceError("InvalidResourceName")


def _split_path(rest, is_dir):
    """The components of a directory or file path (percent-decoded, relative to the
    share), checked against the naming rules. A trailing "/" is dropped for a
    directory and refused for a file."""
    if rest.endswith("/"):
        if not is_dir:
            raise ServiceError("InvalidResourceName",
                               message="A file name must not end with '/'.")
        rest = rest[:-1]
    if len(rest) > MAX_PATH:
        raise ServiceError("InvalidFileOrDirectoryPathName")
    if rest == "":
        return []
    parts = rest.split("/")
    if len(parts) > MAX_DEPTH + 1:
        raise ServiceError("InvalidFileOrDirectoryPathName",
                           message="File or directory path has too many subdirectories.")
    for p in parts:
        if (not p or len(p) > MAX_NAME or any(c in _BAD_CHARS for c in p)
                or p.upper() in _RESERVED
                or any(0xD800 <= ord(c) <= 0xDFFF for c in p)):
            raise ServiceError("InvalidResourceName")
    return parts


def _permission_key(sddl):
    d = hashlib.sha256(sddl.encode("utf-8")).digest()
    return "%d*%d" % (int.from_bytes(d[:8], "big"), int.from_bytes(d[8:16], "big"))


DEFAULT_SDDL = "O:SYG:SYD:(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1301bf;;;WD)"


# --------------------------------------------------------------------------------------
# The tree

class _Node:
    """A directory (children by case-insensitive key) or a file (its written bytes;
    bytes from len(data) to size are zeros)."""

    def __init__(self, server, name, is_dir, parent):
        self.name = name
        self.is_dir = is_dir
        self.parent = parent
        self.children = {} if is_dir else None
        self.data = None if is_dir else bytearray()
        self.size = 0
        self.file_id = server._new_id()
        self.metadata = {}
        self.props = {}  # content_type, content_encoding, ... content_md5 (bytes)
        now = time.time()
        self.attributes = ["Directory"] if is_dir else ["Archive"]
        self.creation = self.last_write = self.change = _iso7(now)
        self.perm_key = None
        self.etag = None
        self.mtime = now
        server._touch(self)

    def read(self, start, end):
        """Bytes [start, end] (inclusive), zeros past what was written. One copy (a
        slice of the bytearray, then bytes of it, would be two: the cost of a large
        Get File)."""
        with memoryview(self.data) as mv:
            chunk = bytes(mv[start:end + 1])
        return chunk + bytes(end + 1 - start - len(chunk))


class _Share:
    def __init__(self, server, name):
        self.name = name
        self.root = _Node(server, "", True, None)
        self.metadata = {}
        self.quota = 5120
        self.mtime = time.time()
        self.etag = server._new_etag()
        self.perm_keys = {}
        self.default_key = self.add_permission(DEFAULT_SDDL)
        self.root.perm_key = self.default_key

    def add_permission(self, sddl):
        key = _permission_key(sddl)
        self.perm_keys[key] = sddl
        return key


class _Reply:
    def __init__(self, status, headers=(), body=b"", content_type=None):
        self.status = status
        self.headers = list(headers)
        self.body = body
        if content_type:
            self.headers.append(("Content-Type", content_type))


class _ClientGone(Exception):
    pass


# --------------------------------------------------------------------------------------
# One request

class _Request:
    def __init__(self, handler, server):
        self.handler = handler
        self.server = server
        self.method = handler.command
        target = handler.path
        if not target.startswith("/"):  # absolute form: keep path and query
            u = urllib.parse.urlsplit(target)
            target = (u.path or "/") + ("?" + u.query if u.query else "")
        self.raw_path, _, self.raw_query = target.partition("?")
        self.headers = {}
        for k, v in handler.headers.items():
            k = k.lower()
            v = v.strip()
            self.headers[k] = self.headers[k] + "," + v if k in self.headers else v
        self.params = []
        self.q = {}
        self.path = None
        self.bad_uri = None
        try:
            self.path = urllib.parse.unquote(self.raw_path, errors="strict")
            for item in self.raw_query.split("&") if self.raw_query else ():
                if not item:
                    continue
                n, _, v = item.partition("=")
                n = urllib.parse.unquote_plus(n, errors="strict")
                v = urllib.parse.unquote_plus(v, errors="strict")
                self.params.append((n, v))
                self.q.setdefault(n.lower(), []).append(v)
        except UnicodeDecodeError:
            self.bad_uri = "the URL is not percent-encoded UTF-8"
        self.expect = handler.expect_continue
        self.client_ip = handler.client_address[0]
        self.version = None
        self.auth = None  # ("key",) or ("sas", info dict)
        self.request_id = str(uuid.uuid4())
        self.body_done = False
        self.content_length = None
        self.framing_error = None
        cl = self.headers.get("content-length")
        if "transfer-encoding" in self.headers:
            self.framing_error = ServiceError(
                "MissingContentLengthHeader", close=True,
                message="The Content-Length header was not specified (a chunked body "
                        "is not accepted).")
        elif cl is not None:
            if not cl.isdigit():
                self.framing_error = ServiceError(
                    "InvalidHeaderValue", close=True, HeaderName="Content-Length",
                    HeaderValue=cl)
            else:
                self.content_length = int(cl)
        if self.content_length in (None, 0):
            self.body_done = True

    def header(self, name):
        return self.headers.get(name)

    def q1(self, name):
        """The value of a query parameter (name case-insensitive), None if absent; a
        parameter given twice is refused."""
        vals = self.q.get(name)
        if not vals:
            return None
        if len(vals) > 1:
            raise _query_error("InvalidQueryParameterValue", name, ",".join(vals),
                               "The parameter is given more than once.")
        return vals[0]

    def read_body(self):
        """The request body (Content-Length bytes); a 100 Continue goes first when
        the client asked for one."""
        n = self.content_length or 0
        if self.body_done:
            return b""
        if self.expect:
            self.handler.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.handler.wfile.flush()
            self.expect = False
        chunks, left = [], n
        while left > 0:
            b = self.handler.rfile.read(min(left, 1 << 20))
            if not b:
                raise _ClientGone()
            chunks.append(b)
            left -= len(b)
        self.body_done = True
        return b"".join(chunks)

    def drain(self):
        """Before answering a refused request: read and drop its body, or (after
        Expect: 100-continue, or a very large body) close the connection after the
        answer. True to keep the connection."""
        if self.body_done:
            return True
        if self.expect or (self.content_length or 0) > DRAIN_MAX:
            return False
        try:
            self.read_body()
        except (_ClientGone, OSError):
            return False
        return True


# --------------------------------------------------------------------------------------
# HTTP plumbing

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30               # an idle keep-alive connection is closed after this
    disable_nagle_algorithm = True
    files = None               # the FilesServer (set on a subclass per server)

    def version_string(self):
        return SERVER_NAME

    def log_message(self, fmt, *args):
        pass

    def parse_request(self):
        self.expect_continue = False
        return super().parse_request()

    def handle_expect_100(self):
        # Not at once: only when the request was accepted (see _Request.read_body).
        self.expect_continue = True
        return True

    def _serve(self):
        self.files._serve(self)

    do_GET = do_HEAD = do_PUT = do_DELETE = do_POST = do_OPTIONS = do_PATCH = _serve
    do_MERGE = do_TRACE = do_CONNECT = _serve

    def send_reply(self, req, reply, keep):
        body = reply.body if isinstance(reply.body, (bytes, bytearray)) else b""
        self.send_response(reply.status, http.client.responses.get(reply.status, ""))
        names = set()
        for k, v in reply.headers:
            self.send_header(k, v)
            names.add(k.lower())
        self.send_header("x-ms-request-id", req.request_id)
        if req.version:
            self.send_header("x-ms-version", req.version)
        if req.header("x-ms-client-request-id"):
            self.send_header("x-ms-client-request-id", req.header("x-ms-client-request-id"))
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(body)))
        if not keep:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler):
        self.conns = set()
        self.conns_lock = threading.Lock()
        self.accepted = 0  # connections accepted, ever
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self.conns_lock:
            self.conns.add(request)
            self.accepted += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def cut_all(self):
        with self.conns_lock:
            conns = list(self.conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# --------------------------------------------------------------------------------------
# The server

class FilesServer:
    """The Azure Files test server on a loopback port (see the module doc)."""

    def __init__(self, account=ACCOUNT, key=KEY, port=None):
        self.account = account
        self.key = base64.b64decode(key)
        self.port = port
        self.requests = []
        self._lock = threading.RLock()
        self._shares = {}
        self._faults = []
        self._ids = 0
        self._etags = 0
        self._etag_base = int(time.time() * 1e7) & 0xFFFFFFFFFFFF
        self._httpd = None
        self._thread = None

    # -- addresses --

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d/%s" % (self.port, self.account)

    def url(self, share, path=""):
        u = "%s/%s" % (self.endpoint, share)
        if path:
            u += "/" + urllib.parse.quote(path.strip("/"), safe="/")
        return u

    # -- life --

    def start(self):
        if self._httpd is not None:
            raise RuntimeError("FilesServer already running")
        handler = type("_BoundHandler", (_Handler,), {"files": self})
        self._httpd = _HTTPServer(("127.0.0.1", self.port or 0), handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="filesserver", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops listening and cuts every open connection (the data stays)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.cut_all()
        self._thread.join(5)

    def __enter__(self):
        if self._httpd is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- test helpers (no HTTP) --

    def create_share(self, name):
        _check_share_name(name)
        with self._lock:
            if name not in self._shares:
                self._shares[name] = _Share(self, name)

    def _helper_parts(self, path):
        path = path.strip("/")
        return _split_path(path, True) if path else []

    def _helper_share(self, share):
        s = self._shares.get(share)
        if s is None:
            raise KeyError("no share %r" % share)
        return s

    def mkdir(self, share, path):
        """Creates the directory and any missing parents; nothing if it exists."""
        parts = self._helper_parts(path)
        with self._lock:
            node = self._helper_share(share).root
            for p in parts:
                child = node.children.get(_name_key(p))
                if child is None:
                    child = _Node(self, p, True, node)
                    child.perm_key = node.perm_key
                    node.children[_name_key(p)] = child
                elif not child.is_dir:
                    raise ValueError("%s: %r is a file" % (path, p))
                node = child

    def put_file(self, share, path, data):
        """Creates or replaces a file with data; missing parents are created."""
        parts = self._helper_parts(path)
        if not parts:
            raise ValueError("no file name in %r" % path)
        with self._lock:
            if len(parts) > 1:
                self.mkdir(share, "/".join(parts[:-1]))
            parent = self._node(self._helper_share(share), parts[:-1])
            key = _name_key(parts[-1])
            node = parent.children.get(key)
            if node is not None and node.is_dir:
                raise ValueError("%s is a directory" % path)
            if node is None:
                node = _Node(self, parts[-1], False, parent)
                node.perm_key = parent.perm_key
                parent.children[key] = node
            node.data = bytearray(data)
            node.size = len(data)
            self._touch(node)

    def _node(self, share, parts):
        node = share.root
        for p in parts:
            if not node.is_dir:
                return None
            node = node.children.get(_name_key(p))
            if node is None:
                return None
        return node

    def _helper_node(self, share, path):
        with self._lock:
            s = self._shares.get(share)
            return self._node(s, self._helper_parts(path)) if s else None

    def get_file(self, share, path):
        with self._lock:
            n = self._helper_node(share, path)
            return n.read(0, n.size - 1) if n is not None and not n.is_dir else None

    def listing(self, share, dir=""):
        with self._lock:
            n = self._helper_node(share, dir)
            if n is None or not n.is_dir:
                return None
            return [c.name for c in self._sorted(n)]

    def exists(self, share, path):
        return self._helper_node(share, path) is not None

    def is_dir(self, share, path):
        n = self._helper_node(share, path)
        return n is not None and n.is_dir

    def connections_accepted(self):
        """How many connections the server has accepted since it started."""
        with self._httpd.conns_lock:
            return self._httpd.accepted

    def clear_requests(self):
        with self._lock:
            del self.requests[:]

    def fail_next(self, n, status=503, code="ServerBusy", method=None, retry_after=None):
        """The next n requests (of that method, when given) are answered with this
        error instead of being served; their bodies are read and dropped."""
        with self._lock:
            self._faults.append([n, status, code, method.upper() if method else None,
                                 retry_after])

    # -- ids, etags --

    def _new_id(self):
        with self._lock:
            self._ids += 1
            return str((0x8000 << 48) | (self._ids << 20))

    def _new_etag(self):
        with self._lock:
            self._etags += 1
            return '"0x8D%013X"' % ((self._etag_base + self._etags) & ((1 << 52) - 1))

    def _touch(self, node, when=None):
        node.etag = self._new_etag()
        node.mtime = when or time.time()

    @staticmethod
    def _sorted(node):
        return [node.children[k] for k in sorted(node.children)]

    # -- serving --

    def _serve(self, handler):
        req = _Request(handler, self)
        query = {}
        for n, v in req.params:
            query.setdefault(n, v)
        with self._lock:
            self.requests.append((req.method, req.path if req.path is not None
                                  else req.raw_path, query, dict(req.headers)))
            fault = None
            for f in self._faults:
                if f[0] > 0 and (f[3] is None or f[3] == req.method):
                    f[0] -= 1
                    fault = f
                    break
            self._faults = [f for f in self._faults if f[0] > 0]
        keep = True
        try:
            if req.framing_error:
                raise req.framing_error
            if fault:
                raise ServiceError(fault[2], status=fault[1], message="Injected by the "
                                   "test server (fail_next).",
                                   headers=[("Retry-After", str(fault[4]))]
                                   if fault[4] is not None else None)
            reply = self._route(req)
        except ServiceError as e:
            reply = self._error_reply(req, e)
            keep = not e.close
        except _ClientGone:
            handler.close_connection = True
            return
        except Exception as e:  # a bug here: say so, as a 500 with the traceback
            traceback.print_exc()
            reply = self._error_reply(req, ServiceError("InternalError", message=str(e)))
        if not req.body_done:
            keep = req.drain() and keep
        if handler.close_connection:
            keep = False
        try:
            handler.send_reply(req, reply, keep)
        except OSError:
            handler.close_connection = True

    def _error_reply(self, req, e):
        now = time.time()
        detail = "".join("<%s>%s</%s>" % (k, escape(v), k) for k, v in e.extra)
        body = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code>'
                "<Message>%s\nRequestId:%s\nTime:%s</Message>%s</Error>" % (
                    e.code, escape(e.message), req.request_id, _iso7(now), detail)
                ).encode("utf-8")
        headers = [("x-ms-error-code", e.code)] + e.headers
        if e.status == 401:
            headers.append(("WWW-Authenticate", 'SharedKey realm="%s"' % self.account))
        return _Reply(e.status, headers, body, "application/xml")

    # -- authentication --

    def _authenticate(self, req):
        if "sig" in req.q:
            return self._auth_sas(req)
        auth = req.header("authorization")
        v = req.header("x-ms-version")
        if auth is None:
            raise ServiceError("NoAuthenticationInformation")
        if v is None:
            raise _header_error("MissingRequiredHeader", "x-ms-version")
        if not _version_ok(v):
            raise _header_error("InvalidHeaderValue", "x-ms-version", v)
        req.version = v
        m = re.match(r"^SharedKey ([^:\s]+):(\S+)$", auth)
        if not m:
            raise ServiceError("InvalidAuthenticationInfo",
                               AuthenticationErrorDetail="Only 'SharedKey account:"
                               "signature' is accepted by this test server.")
        if m.group(1) != self.account:
            raise _auth_failed("The account %r is not this server's." % m.group(1))
        date = req.header("x-ms-date") or req.header("date")
        if date is None:
            raise _auth_failed("Request date header not specified.")
        if not _RFC1123_RE.match(date):
            raise _auth_failed("The Date header in the request is incorrect.")
        when = email.utils.parsedate_to_datetime(date).timestamp()
        if abs(time.time() - when) > CLOCK_SKEW:
            raise _auth_failed("Request date header too old: %r" % date)
        candidates = self._strings_to_sign(req)
        got = m.group(2)
        for sts in candidates:
            want = base64.b64encode(hmac.new(self.key, sts.encode("utf-8"),
                                             hashlib.sha256).digest()).decode()
            if hmac.compare_digest(want.encode(), got.encode()):
                req.auth = ("key",)
                return
        raise _auth_failed(
            "The MAC signature found in the HTTP request '%s' is not the same as any "
            "computed signature. Server used following string to sign: '%s'."
            % (got, candidates[0]))

    def _strings_to_sign(self, req):
        """The Shared Key strings to sign for req: with the URL path as sent (path
        style: /ACCOUNT/SHARE/...), and the host-style one without /ACCOUNT."""
        h = req.headers
        lines = [req.method]
        for name in _STD_HEADERS:
            v = h.get(name, "")
            if name == "content-length" and v == "0":
                v = ""
            if name == "date" and "x-ms-date" in h:
                v = ""
            lines.append(v)
        canon = "".join("%s:%s\n" % (k, h[k].strip())
                        for k in sorted(k for k in h if k.startswith("x-ms-")))
        query = "".join("\n%s:%s" % (k, ",".join(sorted(req.q[k]))) for k in sorted(req.q))
        head = "\n".join(lines) + "\n" + canon
        paths = [req.raw_path]
        prefix = "/" + self.account
        if req.raw_path == prefix or req.raw_path.startswith(prefix + "/"):
            paths.append(req.raw_path[len(prefix):] or "/")
        return [head + "/" + self.account + p + query for p in paths]

    def _auth_sas(self, req, query=None, share=None, rest=None, client_ip=None):
        """Checks a service SAS (query: lower name -> values; default req's own) for the
        resource share/rest (default req's); returns its info dict."""
        q = req.q if query is None else query

        def one(name):
            vals = q.get(name)
            if not vals:
                return None
            if len(vals) > 1:
                raise _auth_failed("%s is given more than once." % name)
            return vals[0]

        sv, sr, sp, st, se = one("sv"), one("sr"), one("sp"), one("st"), one("se")
        si, sip, spr, sig = one("si"), one("sip"), one("spr"), one("sig")
        over = [one(n) for n in ("rscc", "rscd", "rsce", "rscl", "rsct")]
        if not sv:
            raise _auth_failed("sv is mandatory. Cannot be empty")
        if not (_date_ok(sv) and SAS_MIN_VERSION <= sv <= _today()):
            raise _auth_failed("Version %r of the SAS is not supported here." % sv)
        if query is None:
            # x-ms-version may be left out with a SAS: then sv is the request's version.
            v = req.header("x-ms-version")
            if v is None and not _version_ok(sv):
                raise _header_error("MissingRequiredHeader", "x-ms-version", None,
                                    "The SAS's version is older than this server serves "
                                    "(%s); send x-ms-version." % MIN_VERSION)
            if v is not None and not _version_ok(v):
                raise _header_error("InvalidHeaderValue", "x-ms-version", v)
            req.version = v or sv
        if si:
            raise _auth_failed("Signed identifier %r: no stored access policies here." % si)
        if sr not in ("s", "f"):
            raise _auth_failed("sr is mandatory and must be 's' or 'f' for a service SAS.")
        if not sp or not se:
            raise _auth_failed("sp and se are mandatory without a signed identifier.")
        order = "rcwdl" if sr == "s" else "rcwd"
        pos = [order.find(c) for c in sp]
        if -1 in pos or pos != sorted(set(pos)):
            raise _auth_failed("Signature fields not well formed: sp=%r (allowed, in "
                               "this order: %s)." % (sp, order))
        start = _parse_sas_time(st) if st else None
        expiry = _parse_sas_time(se)
        if expiry is None or (st and start is None):
            raise _auth_failed("Signature fields not well formed: st/se.")
        if start is not None and start >= expiry:
            raise _auth_failed("Signed expiry time must be after signed start time.")
        if share is None:
            share, rest = self._share_and_rest(req)
        canon = "/file/%s/%s" % (self.account, share)
        if sr == "f":
            canon += "/" + (rest or "")
        sts = "\n".join([sp, st or "", se, canon, si or "", sip or "", spr or "", sv]
                        + [o or "" for o in over])
        want = base64.b64encode(hmac.new(self.key, sts.encode("utf-8"),
                                         hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(want.encode(), (sig or "").encode()):
            raise _auth_failed("Signature did not match. String to sign used was %s"
                               % sts.replace("\n", "\\n"))
        now = time.time()
        if (start is not None and now < start) or now >= expiry:
            raise _auth_failed("Signed expiry time [%s] must be after signed start time "
                               "[%s] and the current time must be between them." % (se, st))
        if spr is not None:
            if spr not in ("https", "https,http"):
                raise _auth_failed("Signature fields not well formed: spr=%r." % spr)
            if spr == "https":
                raise ServiceError("AuthorizationProtocolMismatch")
        if sip:
            try:
                lo, _, hi = sip.partition("-")
                lo = ipaddress.ip_address(lo)
                hi = ipaddress.ip_address(hi) if hi else lo
                ip = ipaddress.ip_address(client_ip or req.client_ip)
                inside = lo <= ip <= hi
            except ValueError:
                raise _auth_failed("Signature fields not well formed: sip=%r." % sip)
            if not inside:
                raise ServiceError("AuthorizationSourceIPMismatch")
        info = {"sr": sr, "sp": sp, "share": share, "path": rest,
                "overrides": dict(zip(("Cache-Control", "Content-Disposition",
                                       "Content-Encoding", "Content-Language",
                                       "Content-Type"), over))}
        if query is None:
            req.auth = ("sas", info)
        return info

    def _authorize(self, req, kind, perms):
        """kind: "admin" (create/delete share), "share", "dir", "file"; perms: any one
        of these SAS permission letters will do."""
        if req.auth[0] == "key":
            return
        info = req.auth[1]
        if kind == "admin" or (kind in ("share", "dir") and info["sr"] == "f"):
            raise ServiceError("AuthorizationResourceTypeMismatch")
        if not set(info["sp"]) & set(perms):
            raise ServiceError("AuthorizationPermissionMismatch")

    # -- routing --

    def _share_and_rest(self, req):
        """(share name, path after the share, percent-decoded) of req's URL; the path
        is "" for the share itself and None when the URL names no share."""
        if req.bad_uri:
            raise ServiceError("InvalidUri", message="The requested URI does not "
                               "represent any resource on the server: " + req.bad_uri)
        prefix = "/" + self.account
        path = req.path
        if not (path == prefix or path.startswith(prefix + "/")):
            raise ServiceError("InvalidUri")
        tail = path[len(prefix) + 1:]
        if not tail:
            return None, None
        share, _, rest = tail.partition("/")
        return share, rest

    def _route(self, req):
        share, rest = self._share_and_rest(req)
        self._authenticate(req)
        restype, comp = req.q1("restype"), req.q1("comp")
        timeout = req.q1("timeout")
        if timeout is not None and not timeout.isdigit():
            raise _query_error("InvalidQueryParameterValue", "timeout", timeout)
        if req.q1("sharesnapshot") is not None:
            raise _query_error("InvalidQueryParameterValue", "sharesnapshot",
                               req.q1("sharesnapshot"),
                               "Share snapshots are not implemented by this test server.")
        if share is None:
            raise _query_error("InvalidQueryParameterValue", "comp", comp,
                               "Service-level operations are not implemented by this "
                               "test server.")
        _check_share_name(share)
        for h in _CONDITIONAL:
            if h in req.headers:
                raise ServiceError("ConditionHeadersNotSupported")
        m = req.method
        if rest == "" and restype == "share":
            table = {(None, "PUT"): self._create_share, (None, "GET"): self._share_props,
                     (None, "HEAD"): self._share_props, (None, "DELETE"): self._delete_share}
            known = ("properties", "metadata", "acl", "stats", "filepermission", "lease")
        elif restype == "directory":
            table = {(None, "PUT"): self._create_dir, (None, "GET"): self._dir_props,
                     (None, "HEAD"): self._dir_props, (None, "DELETE"): self._delete_dir,
                     ("list", "GET"): self._list, ("properties", "PUT"): self._set_dir_props,
                     ("metadata", "PUT"): self._set_metadata,
                     ("metadata", "GET"): self._get_metadata,
                     ("metadata", "HEAD"): self._get_metadata,
                     ("rename", "PUT"): self._rename}
            known = ("listhandles", "forceclosehandles")
        elif restype is None and rest:
            table = {(None, "PUT"): self._create_file, (None, "GET"): self._get_file,
                     (None, "HEAD"): self._get_file, (None, "DELETE"): self._delete_file,
                     ("range", "PUT"): self._put_range,
                     ("properties", "PUT"): self._set_file_props,
                     ("metadata", "PUT"): self._set_metadata,
                     ("metadata", "GET"): self._get_metadata,
                     ("metadata", "HEAD"): self._get_metadata,
                     ("rename", "PUT"): self._rename}
            known = ("rangelist", "copy", "listhandles", "forceclosehandles", "lease")
        elif restype is None:
            raise _query_error("MissingRequiredQueryParameter", "restype", None,
                               "A share's URL needs restype=share or restype=directory.")
        else:
            raise _query_error("InvalidQueryParameterValue", "restype", restype)
        fn = table.get((comp, m))
        if fn is None:
            if any(c == comp for c, _ in table):
                raise ServiceError("UnsupportedHttpVerb", headers=[
                    ("Allow", ", ".join(sorted({mm for c, mm in table if c == comp})))])
            if comp in known:
                raise _query_error("InvalidQueryParameterValue", "comp", comp,
                                   "Not implemented by this test server.")
            if comp is None:
                raise ServiceError("UnsupportedHttpVerb")
            raise _query_error("InvalidQueryParameterValue", "comp", comp)
        return fn(req, share, rest)

    # -- common pieces --

    def _share(self, name):
        s = self._shares.get(name)
        if s is None:
            raise ServiceError("ShareNotFound")
        return s

    def _walk(self, share, parts):
        """(parent directory, node or None) for parts; ParentNotFound when a parent is
        missing or is a file."""
        node = share.root
        for p in parts[:-1]:
            node = node.children.get(_name_key(p))
            if node is None or not node.is_dir:
                raise ServiceError("ParentNotFound")
        if not parts:
            return None, share.root
        return node, node.children.get(_name_key(parts[-1]))

    def _metadata_in(self, req):
        meta = {}
        for k, v in req.headers.items():
            if k.startswith("x-ms-meta-"):
                name = k[len("x-ms-meta-"):]
                if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                    raise ServiceError("InvalidMetadata", status=400,
                                       message="The metadata specified is invalid. It "
                                       "has characters that are not permitted.")
                meta[name] = v
        return meta

    def _lease_check(self, req, *names):
        for n in names or ("x-ms-lease-id",):
            if req.header(n) is not None:
                raise ServiceError("LeaseNotPresentWithFileOperation")

    def _smb_in(self, req, is_dir, mode):
        """The SMB property headers (x-ms-file-attributes, -creation-time,
        -last-write-time, -change-time, -permission, -permission-key), checked; mode
        "create" or "set" ("preserve" allowed). Before SMB_OPTIONAL_SINCE the first
        three and one of the permission headers are required (create and set)."""
        h = req.header
        attrs, ctime, wtime = (h("x-ms-file-attributes"), h("x-ms-file-creation-time"),
                               h("x-ms-file-last-write-time"))
        chtime, perm, pkey = (h("x-ms-file-change-time"), h("x-ms-file-permission"),
                              h("x-ms-file-permission-key"))
        if req.version < SMB_OPTIONAL_SINCE and mode in ("create", "set"):
            for name, v in (("x-ms-file-attributes", attrs),
                            ("x-ms-file-creation-time", ctime),
                            ("x-ms-file-last-write-time", wtime)):
                if v is None:
                    raise _header_error("MissingRequiredHeader", name)
            if perm is None and pkey is None:
                raise _header_error("MissingRequiredHeader", "x-ms-file-permission")
        if chtime is not None and req.version < CHANGE_TIME_SINCE:
            raise _header_error("InvalidHeaderValue", "x-ms-file-change-time", chtime,
                                "Needs version %s or later." % CHANGE_TIME_SINCE)
        out = {}
        if attrs is not None:
            if attrs.lower() == "preserve" and mode != "create":
                pass
            else:
                toks = [t.strip() for t in attrs.split("|")]
                names = [_ATTRIBUTES.get(t.upper()) for t in toks]
                if (None in names or ("None" in names and len(names) > 1)
                        or ("Directory" in names and not is_dir)):
                    raise _header_error("InvalidHeaderValue", "x-ms-file-attributes", attrs)
                names = [n for n in names if n != "None"]
                if is_dir and "Directory" not in names:
                    names.insert(0, "Directory")
                out["attributes"] = names or ["None"]
        for key, name, v in (("creation", "x-ms-file-creation-time", ctime),
                             ("last_write", "x-ms-file-last-write-time", wtime),
                             ("change", "x-ms-file-change-time", chtime)):
            if v is None:
                continue
            if v.lower() == "now":
                out[key] = _iso7(time.time())
            elif v.lower() == "preserve" and mode != "create":
                pass
            else:
                t = _parse_iso7(v)
                if t is None:
                    raise _header_error("InvalidHeaderValue", name, v)
                out[key] = t
        if perm is not None and pkey is not None:
            raise _header_error("InvalidHeaderValue", "x-ms-file-permission-key", pkey,
                                "Only one of x-ms-file-permission and "
                                "x-ms-file-permission-key may be given.")
        if perm is not None:
            low = perm.lower()
            if low == "inherit" and mode == "create":
                out["perm"] = ("inherit",)
            elif low == "preserve" and mode != "create":
                pass
            elif len(perm.encode("utf-8")) > 8 * 1024:
                raise _header_error("InvalidHeaderValue", "x-ms-file-permission", None,
                                    "Larger than 8 KiB: use x-ms-file-permission-key.")
            elif not re.match(r"^O:\S+G:\S+D:", perm):
                raise ServiceError("FileInvalidPermission")
            else:
                out["perm"] = ("sddl", perm)
        if pkey is not None:
            out["perm"] = ("key", pkey)
        return out

    def _smb_apply(self, share, node, smb, parent):
        """Applies _smb_in's result to node (under the lock)."""
        perm = smb.get("perm")
        if perm is not None:
            if perm[0] == "key":
                if perm[1] not in share.perm_keys:
                    raise ServiceError("FileInvalidPermissionKey")
                node.perm_key = perm[1]
            elif perm[0] == "sddl":
                node.perm_key = share.add_permission(perm[1])
            else:
                node.perm_key = parent.perm_key if parent else share.default_key
        elif node.perm_key is None:
            node.perm_key = parent.perm_key if parent else share.default_key
        for k in ("attributes", "creation", "last_write", "change"):
            if k in smb:
                setattr(node, k, smb[k])

    def _smb_headers(self, node):
        return [("x-ms-file-attributes", " | ".join(node.attributes)),
                ("x-ms-file-creation-time", node.creation),
                ("x-ms-file-last-write-time", node.last_write),
                ("x-ms-file-change-time", node.change),
                ("x-ms-file-permission-key", node.perm_key),
                ("x-ms-file-id", node.file_id),
                ("x-ms-file-parent-id", node.parent.file_id if node.parent else "0")]

    def _item_headers(self, node):
        return [("ETag", node.etag), ("Last-Modified", _rfc1123(node.mtime))]

    @staticmethod
    def _http_props_in(req):
        props = {}
        for hname, key in (("x-ms-content-type", "content_type"),
                           ("x-ms-content-encoding", "content_encoding"),
                           ("x-ms-content-language", "content_language"),
                           ("x-ms-cache-control", "cache_control"),
                           ("x-ms-content-disposition", "content_disposition")):
            v = req.header(hname)
            if v is not None:
                props[key] = v
        md5 = req.header("x-ms-content-md5")
        if md5 is not None:
            try:
                raw = base64.b64decode(md5, validate=True)
            except ValueError:
                raw = b""
            if len(raw) != 16:
                raise ServiceError("InvalidMd5", HeaderName="x-ms-content-md5",
                                   HeaderValue=md5)
            props["content_md5"] = raw
        return props

    def _changed(self, node, write=False, when=None):
        now = when or time.time()
        self._touch(node, now)
        node.change = _iso7(now)
        if write:
            node.last_write = _iso7(now)

    # -- shares --

    def _create_share(self, req, name, rest):
        self._authorize(req, "admin", "")
        quota = req.header("x-ms-share-quota")
        if quota is not None and not (quota.isdigit() and 1 <= int(quota) <= 102400):
            raise _header_error("InvalidHeaderValue", "x-ms-share-quota", quota)
        tier = req.header("x-ms-access-tier")
        if tier is not None and tier not in ("TransactionOptimized", "Hot", "Cool",
                                             "Premium"):
            raise _header_error("InvalidHeaderValue", "x-ms-access-tier", tier)
        meta = self._metadata_in(req)
        with self._lock:
            if name in self._shares:
                raise ServiceError("ShareAlreadyExists")
            s = _Share(self, name)
            s.metadata = meta
            if quota:
                s.quota = int(quota)
            self._shares[name] = s
            return _Reply(201, [("ETag", s.etag), ("Last-Modified", _rfc1123(s.mtime))])

    def _share_props(self, req, name, rest):
        self._authorize(req, "share", "r")
        with self._lock:
            s = self._share(name)
            return _Reply(200, [("ETag", s.etag), ("Last-Modified", _rfc1123(s.mtime)),
                                ("x-ms-share-quota", str(s.quota)),
                                ("x-ms-access-tier", "TransactionOptimized"),
                                ("x-ms-lease-state", "available"),
                                ("x-ms-lease-status", "unlocked")]
                          + [("x-ms-meta-" + k, v) for k, v in s.metadata.items()])

    def _delete_share(self, req, name, rest):
        self._authorize(req, "admin", "")
        with self._lock:
            self._share(name)
            del self._shares[name]
        return _Reply(202)

    # -- directories --

    def _create_dir(self, req, share_name, rest):
        self._authorize(req, "dir", "cw")
        parts = _split_path(rest, True)
        smb = self._smb_in(req, True, "create")
        meta = self._metadata_in(req)
        with self._lock:
            share = self._share(share_name)
            parent, node = self._walk(share, parts)
            if node is not None:  # the root too
                raise ServiceError("ResourceAlreadyExists")
            node = _Node(self, parts[-1], True, parent)
            self._smb_apply(share, node, smb, parent)
            node.metadata = meta
            parent.children[_name_key(parts[-1])] = node
            return _Reply(201, self._item_headers(node) + self._smb_headers(node)
                          + [("x-ms-request-server-encrypted", "true")])

    def _dir_node(self, share, parts):
        parent, node = self._walk(share, parts)
        if node is None or not node.is_dir:
            raise ServiceError("ResourceNotFound")
        return node

    def _dir_props(self, req, share_name, rest):
        self._authorize(req, "dir", "r")
        parts = _split_path(rest, True)
        with self._lock:
            node = self._dir_node(self._share(share_name), parts)
            return _Reply(200, self._item_headers(node) + self._smb_headers(node)
                          + [("x-ms-server-encrypted", "true")]
                          + [("x-ms-meta-" + k, v) for k, v in node.metadata.items()])

    def _delete_dir(self, req, share_name, rest):
        self._authorize(req, "dir", "d")
        parts = _split_path(rest, True)
        self._lease_check(req)
        with self._lock:
            share = self._share(share_name)
            if not parts:
                raise ServiceError("CannotDeleteFileOrDirectory",
                                   message="The root directory of a share cannot be "
                                   "deleted.")
            node = self._dir_node(share, parts)
            if node.children:
                raise ServiceError("DirectoryNotEmpty")
            del node.parent.children[_name_key(node.name)]
        return _Reply(202)

    def _set_dir_props(self, req, share_name, rest):
        self._authorize(req, "dir", "w")
        parts = _split_path(rest, True)
        smb = self._smb_in(req, True, "set")
        with self._lock:
            share = self._share(share_name)
            node = self._dir_node(share, parts)
            self._smb_apply(share, node, smb, node.parent)
            self._changed(node, when=None)
            return _Reply(200, self._item_headers(node) + self._smb_headers(node)
                          + [("x-ms-request-server-encrypted", "true")])

    def _entry_xml(self, node, include, extended):
        out = ["<Directory>" if node.is_dir else "<File>"]
        if extended:
            out.append("<FileId>%s</FileId>" % node.file_id)
        out.append("<Name>%s</Name>" % escape(node.name))
        props = []
        if not node.is_dir:
            props.append("<Content-Length>%d</Content-Length>" % node.size)
        if "timestamps" in include:
            props.append("<CreationTime>%s</CreationTime><LastAccessTime>%s"
                         "</LastAccessTime><LastWriteTime>%s</LastWriteTime><ChangeTime>%s"
                         "</ChangeTime><Last-Modified>%s</Last-Modified>" % (
                             node.creation, node.last_write, node.last_write, node.change,
                             _rfc1123(node.mtime)))
        if "etag" in include:
            props.append("<Etag>%s</Etag>" % escape(node.etag))
        out.append("<Properties>%s</Properties>" % "".join(props) if props
                   else "<Properties />")
        if "attributes" in include:
            out.append("<Attributes>%s</Attributes>" % " | ".join(node.attributes))
        if "permissionkey" in include:
            out.append("<PermissionKey>%s</PermissionKey>" % node.perm_key)
        out.append("</Directory>" if node.is_dir else "</File>")
        return "".join(out)

    @staticmethod
    def _marker_token(key):
        return base64.urlsafe_b64encode(b"fsm1:" + key.encode("utf-8")).decode().rstrip("=")

    @staticmethod
    def _marker_key(token):
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            if raw.startswith(b"fsm1:"):
                return raw[5:].decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            pass
        raise _query_error("InvalidQueryParameterValue", "marker", token,
                           "Not a marker this server gave out.")

    def _list(self, req, share_name, rest):
        self._authorize(req, "dir", "l")
        parts = _split_path(rest, True)
        prefix = req.q1("prefix") or ""
        marker = req.q1("marker")
        maxresults = req.q1("maxresults")
        if maxresults is not None:
            if not re.match(r"^-?\d+$", maxresults):
                raise _query_error("InvalidQueryParameterValue", "maxresults", maxresults)
            if int(maxresults) <= 0:
                raise _query_error("OutOfRangeQueryParameterValue", "maxresults",
                                   maxresults)
        limit = min(int(maxresults), LIST_MAX) if maxresults else LIST_MAX
        include = set()
        inc = req.q1("include")
        if inc:
            for tok in inc.split(","):
                t = tok.strip().lower()
                if t not in ("timestamps", "etag", "attributes", "permissionkey"):
                    raise _query_error("InvalidQueryParameterValue", "include", inc)
                include.add(t)
        ext = _parse_bool(req.header("x-ms-file-extended-info"), "x-ms-file-extended-info")
        extended = bool(ext) or bool(include)
        after = self._marker_key(marker) if marker else None
        pkey = _name_key(prefix)
        with self._lock:
            node = self._dir_node(self._share(share_name), parts)
            keys = [k for k in sorted(node.children)
                    if k.startswith(pkey) and (after is None or k > after)]
            page = keys[:limit]
            entries = "".join(self._entry_xml(node.children[k], include, extended)
                              for k in page)
            next_marker = self._marker_token(page[-1]) if len(keys) > limit else ""
            dir_id = node.file_id
        host = req.header("host") or "127.0.0.1:%d" % self.port
        out = ['<?xml version="1.0" encoding="utf-8"?>',
               "<EnumerationResults ServiceEndpoint=%s ShareName=%s DirectoryPath=%s>" % (
                   quoteattr("http://%s/%s/" % (host, self.account)), quoteattr(share_name),
                   quoteattr("/".join(parts)))]
        if marker is not None:
            out.append("<Marker>%s</Marker>" % escape(marker))
        out.append("<Prefix>%s</Prefix>" % escape(prefix))
        if maxresults is not None:
            out.append("<MaxResults>%s</MaxResults>" % maxresults)
        if extended:
            out.append("<DirectoryId>%s</DirectoryId>" % dir_id)
        out.append("<Entries>%s</Entries>" % entries)
        out.append("<NextMarker>%s</NextMarker>" % escape(next_marker) if next_marker
                   else "<NextMarker />")
        out.append("</EnumerationResults>")
        return _Reply(200, [], "".join(out).encode("utf-8"), "application/xml")

    # -- files --

    def _file_node(self, share, parts):
        parent, node = self._walk(share, parts)
        if node is None or node.is_dir:
            raise ServiceError("ResourceNotFound")
        return node

    def _create_file(self, req, share_name, rest):
        self._authorize(req, "file", "cw")
        parts = _split_path(rest, False)
        ftype = req.header("x-ms-type")
        if ftype is None:
            raise _header_error("MissingRequiredHeader", "x-ms-type")
        if ftype.lower() != "file":
            raise _header_error("InvalidHeaderValue", "x-ms-type", ftype)
        size = req.header("x-ms-content-length")
        if size is None:
            raise _header_error("MissingRequiredHeader", "x-ms-content-length")
        if not size.isdigit() or int(size) > MAX_FILE_SIZE:
            raise _header_error("InvalidHeaderValue", "x-ms-content-length", size)
        size = int(size)
        if req.content_length:
            raise _header_error("InvalidHeaderValue", "Content-Length",
                                str(req.content_length), "Create File has no body.")
        smb = self._smb_in(req, False, "create")
        props = self._http_props_in(req)
        meta = self._metadata_in(req)
        self._lease_check(req)
        with self._lock:
            share = self._share(share_name)
            parent, node = self._walk(share, parts)
            if node is not None and node.is_dir:
                raise ServiceError("ResourceTypeMismatch")  # (choice)
            if node is None:
                node = _Node(self, parts[-1], False, parent)
            node.data = bytearray()
            node.size = size
            node.props = props
            node.metadata = meta
            node.attributes = ["Archive"]
            now = time.time()
            node.creation = node.last_write = node.change = _iso7(now)
            node.perm_key = None
            self._smb_apply(share, node, smb, parent)
            self._touch(node, now)
            parent.children[_name_key(parts[-1])] = node
            return _Reply(201, self._item_headers(node) + self._smb_headers(node)
                          + [("x-ms-request-server-encrypted", "true")])

    def _range_in(self, req, required):
        """(start, end or None, header name) of x-ms-range (preferred) or Range."""
        name = "x-ms-range" if req.header("x-ms-range") is not None else "Range"
        value = req.header(name.lower())
        if value is None:
            if required:
                raise _header_error("MissingRequiredHeader", "x-ms-range")
            return None
        m = _RANGE_RE.match(value.strip())
        if not m:
            raise _header_error("InvalidHeaderValue", name, value)
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else None
        return start, end, name, value

    def _get_file(self, req, share_name, rest):
        self._authorize(req, "file", "r")
        parts = _split_path(rest, False)
        head = req.method == "HEAD"
        rng = None if head else self._range_in(req, False)
        want_md5 = _parse_bool(req.header("x-ms-range-get-content-md5"),
                               "x-ms-range-get-content-md5")
        if want_md5 and rng is None and not head:
            raise _header_error("InvalidHeaderValue", "x-ms-range-get-content-md5", "true",
                                "Only with a range.")
        if rng is not None and rng[1] is not None and rng[1] < rng[0]:
            raise ServiceError("InvalidRange")
        if (want_md5 and rng is not None and rng[1] is not None
                and rng[1] - rng[0] + 1 > MAX_PUT_RANGE):
            raise _header_error("InvalidHeaderValue", "x-ms-range-get-content-md5", "true",
                                "The range asked for is larger than 4 MiB.")
        self._lease_check(req)
        with self._lock:
            node = self._file_node(self._share(share_name), parts)
            size = node.size
            headers = self._item_headers(node) + self._smb_headers(node)
            props = dict(node.props)
            meta = dict(node.metadata)
            status = 200
            if rng is not None:
                start, end = rng[0], rng[1]
                if start >= size:
                    raise ServiceError("InvalidRange",
                                       headers=[("Content-Range", "bytes */%d" % size)])
                end = size - 1 if end is None else min(end, size - 1)
                if want_md5 and rng[1] is None and end - start + 1 > MAX_PUT_RANGE:
                    raise _header_error("InvalidHeaderValue", "x-ms-range-get-content-md5",
                                        "true", "The range is larger than 4 MiB.")
                body = node.read(start, end)
                status = 206
                headers.append(("Content-Range", "bytes %d-%d/%d" % (start, end, size)))
            else:
                body = b"" if head else node.read(0, size - 1)
        over = req.auth[1]["overrides"] if req.auth[0] == "sas" else {}
        for hname, key in (("Content-Type", "content_type"),
                           ("Content-Encoding", "content_encoding"),
                           ("Content-Language", "content_language"),
                           ("Cache-Control", "cache_control"),
                           ("Content-Disposition", "content_disposition")):
            v = over.get(hname) or props.get(key)
            if hname == "Content-Type" and v is None:
                v = "application/octet-stream"
            if v is not None:
                headers.append((hname, v))
        md5 = props.get("content_md5")
        if status == 206:
            if want_md5:
                headers.append(("Content-MD5", base64.b64encode(
                    hashlib.md5(body).digest()).decode()))
            if md5:
                headers.append(("x-ms-content-md5", base64.b64encode(md5).decode()))
        elif md5:
            headers.append(("Content-MD5", base64.b64encode(md5).decode()))
        headers += [("Accept-Ranges", "bytes"), ("x-ms-type", "File"),
                    ("x-ms-server-encrypted", "true"), ("x-ms-lease-state", "available"),
                    ("x-ms-lease-status", "unlocked")]
        headers += [("x-ms-meta-" + k, v) for k, v in meta.items()]
        headers.append(("Content-Length", str(size if status == 200 else len(body))))
        return _Reply(status, headers, body)

    def _put_range(self, req, share_name, rest):
        self._authorize(req, "file", "w")
        parts = _split_path(rest, False)
        write = req.header("x-ms-write")
        if write is None:
            raise _header_error("MissingRequiredHeader", "x-ms-write")
        write = write.lower()
        if write not in ("update", "clear"):
            raise _header_error("InvalidHeaderValue", "x-ms-write", req.header("x-ms-write"))
        start, end, rname, rvalue = self._range_in(req, True)
        if end is None or end < start:
            raise _header_error("InvalidHeaderValue", rname, rvalue,
                                "Put Range needs bytes=start-end.")
        if req.content_length is None:
            raise ServiceError("MissingContentLengthHeader")
        length = end - start + 1
        md5 = req.header("content-md5")
        if write == "update":
            if req.content_length > MAX_PUT_RANGE:
                raise ServiceError("RequestBodyTooLarge",
                                   MaxLimit=str(MAX_PUT_RANGE))
            if length != req.content_length:
                raise _header_error("InvalidHeaderValue", "Content-Length",
                                    str(req.content_length),
                                    "Content-Length must equal the range's length (%d)."
                                    % length)
            if md5 is not None:
                try:
                    md5_raw = base64.b64decode(md5, validate=True)
                except ValueError:
                    md5_raw = b""
                if len(md5_raw) != 16:
                    raise ServiceError("InvalidMd5", HeaderName="Content-MD5",
                                       HeaderValue=md5)
        else:
            if req.content_length != 0:
                raise _header_error("InvalidHeaderValue", "Content-Length",
                                    str(req.content_length),
                                    "x-ms-write: clear needs Content-Length: 0.")
            if md5 is not None:
                raise _header_error("InvalidHeaderValue", "Content-MD5", md5,
                                    "Not allowed with x-ms-write: clear.")
        lwt = req.header("x-ms-file-last-write-time")
        if lwt is not None and lwt.lower() not in ("now", "preserve"):
            raise _header_error("InvalidHeaderValue", "x-ms-file-last-write-time", lwt)
        self._lease_check(req)
        body = req.read_body() if write == "update" else b""
        if write == "update" and md5 is not None and hashlib.md5(body).digest() != md5_raw:
            raise ServiceError("Md5Mismatch", UserSpecifiedMd5=md5,
                               ServerCalculatedMd5=base64.b64encode(
                                   hashlib.md5(body).digest()).decode())
        with self._lock:
            node = self._file_node(self._share(share_name), parts)
            if end >= node.size:
                raise ServiceError("InvalidRange")
            if write == "update":
                if len(node.data) < start:
                    node.data.extend(bytes(start - len(node.data)))
                node.data[start:start + length] = body
            elif start < len(node.data):
                stop = min(end + 1, len(node.data))
                if stop == len(node.data):
                    del node.data[start:]
                else:
                    node.data[start:stop] = bytes(stop - start)
            self._changed(node, write=(lwt or "now").lower() == "now")
            headers = self._item_headers(node) + [
                ("x-ms-request-server-encrypted", "true"),
                ("x-ms-file-last-write-time", node.last_write)]
        if write == "update":
            headers.append(("Content-MD5", base64.b64encode(
                hashlib.md5(body).digest()).decode()))
        return _Reply(201, headers)

    def _set_file_props(self, req, share_name, rest):
        self._authorize(req, "file", "w")
        parts = _split_path(rest, False)
        size = req.header("x-ms-content-length")
        if size is not None and (not size.isdigit() or int(size) > MAX_FILE_SIZE):
            raise _header_error("InvalidHeaderValue", "x-ms-content-length", size)
        smb = self._smb_in(req, False, "set")
        props = self._http_props_in(req)
        self._lease_check(req)
        with self._lock:
            share = self._share(share_name)
            node = self._file_node(share, parts)
            self._smb_apply(share, node, smb, node.parent)
            node.props = props  # the ones not given are cleared, as the reference says
            if size is not None:
                n = int(size)
                if n < len(node.data):
                    del node.data[n:]
                node.size = n
            self._changed(node, write=size is not None and "last_write" not in smb)
            return _Reply(200, self._item_headers(node) + self._smb_headers(node)
                          + [("x-ms-request-server-encrypted", "true")])

    def _delete_file(self, req, share_name, rest):
        self._authorize(req, "file", "d")
        parts = _split_path(rest, False)
        self._lease_check(req)
        with self._lock:
            node = self._file_node(self._share(share_name), parts)
            del node.parent.children[_name_key(node.name)]
        return _Reply(202)

    # -- metadata (files and directories) --

    def _target(self, req, share_name, rest):
        is_dir = req.q1("restype") == "directory"
        parts = _split_path(rest, is_dir)
        share = self._share(share_name)
        node = self._dir_node(share, parts) if is_dir else self._file_node(share, parts)
        return node

    def _set_metadata(self, req, share_name, rest):
        is_dir = req.q1("restype") == "directory"
        self._authorize(req, "dir" if is_dir else "file", "w")
        meta = self._metadata_in(req)
        if not is_dir:
            self._lease_check(req)
        with self._lock:
            node = self._target(req, share_name, rest)
            node.metadata = meta
            self._changed(node)
            return _Reply(200, [("ETag", node.etag),
                                ("x-ms-request-server-encrypted", "true")])

    def _get_metadata(self, req, share_name, rest):
        is_dir = req.q1("restype") == "directory"
        self._authorize(req, "dir" if is_dir else "file", "r")
        with self._lock:
            node = self._target(req, share_name, rest)
            return _Reply(200, self._item_headers(node)
                          + [("x-ms-meta-" + k, v) for k, v in node.metadata.items()])

    # -- rename --

    def _rename_source(self, req, share_name):
        """(path after the share, percent-decoded, query dict or None) of
        x-ms-file-rename-source: a URL (or absolute path) of the source in the same
        share, which may carry the source's own SAS."""
        src = req.header("x-ms-file-rename-source")
        if src is None:
            raise _header_error("MissingRequiredHeader", "x-ms-file-rename-source")
        if len(src) > MAX_RENAME_SOURCE:
            raise _header_error("InvalidHeaderValue", "x-ms-file-rename-source", src[:100],
                                "Longer than 2 KiB.")
        u = urllib.parse.urlsplit(src)
        if (u.scheme not in ("http", "https", "") or (u.scheme and not u.netloc)
                or not u.path.startswith("/")):
            raise _header_error("InvalidHeaderValue", "x-ms-file-rename-source", src)
        try:
            path = urllib.parse.unquote(u.path, errors="strict")
            q = {}
            for n, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True,
                                               errors="strict"):
                q.setdefault(n.lower(), []).append(v)
        except UnicodeDecodeError:
            raise _header_error("InvalidHeaderValue", "x-ms-file-rename-source", src)
        prefix = "/%s/%s/" % (self.account, share_name)
        if not path.startswith(prefix) or path == prefix:
            raise _header_error("InvalidHeaderValue", "x-ms-file-rename-source", src,
                                "The source must be in the destination's share (choice).")
        return path[len(prefix):], (q if "sig" in q else None)

    def _rename(self, req, share_name, rest):
        is_dir = req.q1("restype") == "directory"
        if req.version < RENAME_SINCE:
            raise _query_error("InvalidQueryParameterValue", "comp", "rename",
                               "Rename needs version %s or later." % RENAME_SINCE)
        self._authorize(req, "dir" if is_dir else "file", "cw")
        parts = _split_path(rest, is_dir)
        src_rest, src_sas = self._rename_source(req, share_name)
        src_parts = _split_path(src_rest, is_dir)
        if not parts or not src_parts:
            raise ServiceError("InvalidInput", message="The root directory cannot be "
                               "renamed or replaced.")
        replace = _parse_bool(req.header("x-ms-file-rename-replace-if-exists"),
                              "x-ms-file-rename-replace-if-exists")
        ignore_ro = _parse_bool(req.header("x-ms-file-rename-ignore-readonly"),
                                "x-ms-file-rename-ignore-readonly")
        if ignore_ro and not replace:
            raise _header_error("InvalidHeaderValue", "x-ms-file-rename-ignore-readonly",
                                "true", "Only with x-ms-file-rename-replace-if-exists: "
                                "true.")
        smb = self._smb_in(req, is_dir, "rename")
        ctype = req.header("x-ms-content-type")
        if ctype is not None and is_dir:
            raise _header_error("InvalidHeaderValue", "x-ms-content-type", ctype,
                                "Only for a file.")
        meta = self._metadata_in(req) if any(k.startswith("x-ms-meta-")
                                             for k in req.headers) else None
        self._lease_check(req, "x-ms-source-lease-id", "x-ms-destination-lease-id")
        if req.auth[0] == "sas":
            if src_sas is not None:
                info = self._auth_sas(req, src_sas, share_name, src_rest.rstrip("/"))
                if not set(info["sp"]) & set("d"):
                    raise ServiceError("AuthorizationPermissionMismatch",
                                       message="The rename source's SAS does not allow "
                                       "delete.")
            else:
                info = req.auth[1]
                if info["sr"] != "s" or "d" not in info["sp"]:
                    raise ServiceError("AuthorizationPermissionMismatch",
                                       message="The SAS does not allow deleting the rename "
                                       "source, and the source URL carries none of its own.")
        with self._lock:
            share = self._share(share_name)
            sparent, src = self._walk(share, src_parts)
            if src is None or src.is_dir != is_dir:
                raise ServiceError("ResourceNotFound")
            dparent, dst = self._walk(share, parts)
            if is_dir:
                p = dparent
                while p is not None:
                    if p is src:
                        raise ServiceError("InvalidInput", message="A directory cannot "
                                           "be moved into itself.")
                    p = p.parent
            if dst is not None and dst is not src:
                if not replace:
                    raise ServiceError("ResourceAlreadyExists")
                if dst.is_dir != src.is_dir:
                    raise ServiceError("ResourceTypeMismatch")
                if dst.is_dir and dst.children:
                    raise ServiceError("DirectoryNotEmpty")
                if "ReadOnly" in dst.attributes and not ignore_ro:
                    raise ServiceError("ReadOnlyAttribute")
                del dparent.children[_name_key(dst.name)]
            del sparent.children[_name_key(src.name)]
            src.name = parts[-1]
            src.parent = dparent
            dparent.children[_name_key(parts[-1])] = src
            self._smb_apply(share, src, smb, dparent)
            if ctype is not None:
                src.props["content_type"] = ctype
            if meta is not None:
                src.metadata = meta
            self._changed(src)
            return _Reply(200, self._item_headers(src) + self._smb_headers(src)
                          + [("x-ms-request-server-encrypted", "true")])


# --------------------------------------------------------------------------------------
# A small client for the self-tests (independent of the server's verifier)

class FilesError(Exception):
    def __init__(self, reply, what):
        self.status, self.code, self.reply = reply.status, reply.code, reply
        m = re.search(rb"<Message>([^\n<]*)", reply.body or b"")
        super().__init__("%s: HTTP %d %s: %s" % (what, reply.status, reply.code or "",
                                                 m.group(1).decode() if m else ""))


class Reply:
    """status, headers (lower-cased names), body, code (x-ms-error-code or None)."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self.code = headers.get("x-ms-error-code")

    def detail(self, tag):
        m = re.search(rb"<%s>(.*?)</%s>" % (tag.encode(), tag.encode()), self.body or b"",
                      re.S)
        return m.group(1).decode() if m else None

    def __repr__(self):
        return "<Reply %d %s>" % (self.status, self.code or "")


def _sas_time(t):
    if isinstance(t, str):
        return t
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + t))


def service_sas(share, path=None, permissions="r", expiry=3600, start=None,
                version=SAS_VERSION, account=ACCOUNT, key=KEY, ip=None, protocol=None,
                overrides=None):
    """A File service SAS query string (no "?"): sr=f for path, else sr=s. expiry and
    start: seconds from now, or a string used as is; overrides: {"rscc": ...}."""
    over = overrides or {}
    sr = "f" if path else "s"
    st = _sas_time(start) if start is not None else ""
    se = _sas_time(expiry)
    canon = "/file/%s/%s" % (account, share) + ("/" + path.strip("/") if path else "")
    sts = "\n".join([permissions, st, se, canon, "", ip or "", protocol or "", version]
                    + [over.get(n, "") for n in ("rscc", "rscd", "rsce", "rscl", "rsct")])
    sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode("utf-8"),
                                    hashlib.sha256).digest()).decode()
    q = [("sv", version), ("sr", sr), ("sp", permissions)]
    if st:
        q.append(("st", st))
    q.append(("se", se))
    if ip:
        q.append(("sip", ip))
    if protocol:
        q.append(("spr", protocol))
    q += [(n, over[n]) for n in ("rscc", "rscd", "rsce", "rscl", "rsct") if n in over]
    q.append(("sig", sig))
    return urllib.parse.urlencode(q, quote_via=urllib.parse.quote)


class FilesClient:
    """Shared Key (or SAS) requests to a FilesServer, for the self-tests; one
    keep-alive connection per thread. port= another port (a proxy in front)."""

    STD = _STD_HEADERS

    def __init__(self, server, port=None, account=None, key=None, sas=None,
                 version=API_VERSION, timeout=30):
        self.server = server
        self.host = "127.0.0.1"
        self.port = port or server.port
        self.account = account or server.account
        self.key = base64.b64decode(key) if key else server.key
        self.sas = sas
        self.version = version
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self, fresh=False):
        c = getattr(self._local, "conn", None)
        if c is None or fresh:
            if c is not None:
                c.close()
            c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = c
        return c

    def close(self):
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    def path(self, share, path=""):
        p = "/%s/%s" % (self.account, share)
        if path:
            p += "/" + urllib.parse.quote(path, safe="/")
        return p

    def string_to_sign(self, method, path, query, headers):
        h = {k.lower(): str(v) for k, v in headers.items()}
        vals = []
        for name in self.STD:
            v = h.get(name, "")
            if name == "content-length" and v == "0":
                v = ""
            if name == "date" and "x-ms-date" in h:
                v = ""
            vals.append(v)
        canon = "".join("%s:%s\n" % (k, h[k].strip()) for k in sorted(h)
                        if k.startswith("x-ms-"))
        res = "/%s%s" % (self.account, path)
        q = {}
        for k, v in query:
            q.setdefault(k.lower(), []).append(v)
        for k in sorted(q):
            res += "\n%s:%s" % (k, ",".join(sorted(q[k])))
        return method + "\n" + "\n".join(vals) + "\n" + canon + res

    def request(self, method, share, path="", query=(), headers=None, body=b"", sas=None,
                sign=True, tamper=None, raw_path=None):
        """One request; returns a Reply whatever its status. headers: a value None
        removes a default header (x-ms-date, x-ms-version). sas: a SAS query string to
        use instead of Shared Key (default: the client's). tamper(method, target,
        headers) -> (method, target, headers) runs after signing."""
        target_path = raw_path or self.path(share, path)
        query = [(k, str(v)) for k, v in query]
        sas = self.sas if sas is None else sas
        if sas:
            query += urllib.parse.parse_qsl(sas, keep_blank_values=True)
            sign = False
        h = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": self.version}
        for k, v in (headers or {}).items():
            for same in [x for x in h if x.lower() == k.lower()]:
                del h[same]
            if v is not None:
                h[k] = str(v)
        if method in ("PUT", "POST") or body:
            h.setdefault("Content-Length", str(len(body)))
        if sign:
            sts = self.string_to_sign(method, target_path, query, h)
            sig = base64.b64encode(hmac.new(self.key, sts.encode("utf-8"),
                                            hashlib.sha256).digest()).decode()
            h["Authorization"] = "SharedKey %s:%s" % (self.account, sig)
        qs = "&".join("%s=%s" % (urllib.parse.quote(k, safe=""),
                                 urllib.parse.quote(v, safe="")) for k, v in query)
        target = target_path + ("?" + qs if qs else "")
        if tamper:
            method, target, h = tamper(method, target, h)
        for attempt in range(3):
            conn = self._conn(fresh=attempt > 0)
            try:
                conn.putrequest(method, target, skip_host=False, skip_accept_encoding=True)
                for k, v in h.items():
                    conn.putheader(k, v)
                conn.endheaders(body if body else None)
                resp = conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.RemoteDisconnected,
                    http.client.BadStatusLine, http.client.CannotSendRequest):
                conn.close()
                if attempt == 2:
                    raise
                continue
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def ok(self, method, share, path="", expect=(200, 201, 202, 206), **kw):
        r = self.request(method, share, path, **kw)
        if r.status not in expect:
            raise FilesError(r, "%s %s" % (method, self.path(share, path)))
        return r

    # -- operations --

    def create_share(self, share, **kw):
        return self.ok("PUT", share, query=[("restype", "share")], **kw)

    def create_dir(self, share, path, **kw):
        return self.ok("PUT", share, path, query=[("restype", "directory")], **kw)

    def create_file(self, share, path, size=0, headers=None, **kw):
        h = {"x-ms-type": "file", "x-ms-content-length": str(size)}
        h.update(headers or {})
        return self.ok("PUT", share, path, headers=h, **kw)

    def put_range(self, share, path, offset, data, headers=None, **kw):
        h = {"x-ms-write": "update",
             "x-ms-range": "bytes=%d-%d" % (offset, offset + len(data) - 1)}
        h.update(headers or {})
        return self.ok("PUT", share, path, query=[("comp", "range")], headers=h, body=data,
                       **kw)

    def upload(self, share, path, data, chunk=MAX_PUT_RANGE):
        """Create File, then Put Range in chunks."""
        self.create_file(share, path, len(data))
        for off in range(0, len(data), chunk):
            self.put_range(share, path, off, data[off:off + chunk])

    def get(self, share, path, offset=None, length=None, **kw):
        h = {}
        if offset is not None:
            h["x-ms-range"] = "bytes=%d-%s" % (
                offset, "" if length is None else offset + length - 1)
        return self.ok("GET", share, path, headers=h, **kw).body

    def props(self, share, path, **kw):
        return self.ok("HEAD", share, path, **kw).headers

    def resize(self, share, path, size, **kw):
        return self.ok("PUT", share, path, query=[("comp", "properties")],
                       headers={"x-ms-content-length": str(size)}, **kw)

    def delete_file(self, share, path, **kw):
        return self.ok("DELETE", share, path, **kw)

    def delete_dir(self, share, path, **kw):
        return self.ok("DELETE", share, path, query=[("restype", "directory")], **kw)

    def list_page(self, share, path="", maxresults=None, marker=None, prefix=None,
                  include=None, **kw):
        """One List Directories and Files page: (entries, NextMarker, reply); entries
        are (name, is_dir, size or None)."""
        q = [("restype", "directory"), ("comp", "list")]
        for n, v in (("prefix", prefix), ("marker", marker), ("maxresults", maxresults),
                     ("include", include)):
            if v is not None:
                q.append((n, v))
        r = self.ok("GET", share, path, query=q, **kw)
        root = ET.fromstring(r.body)
        entries = []
        for e in root.find("Entries"):
            size = e.findtext("Properties/Content-Length")
            entries.append((e.findtext("Name"), e.tag == "Directory",
                            int(size) if size is not None else None))
        return entries, root.findtext("NextMarker") or "", r

    def list_all(self, share, path="", maxresults=None, **kw):
        out, marker = [], None
        while True:
            entries, marker, _ = self.list_page(share, path, maxresults, marker, **kw)
            out += entries
            if not marker:
                return out

    def rename(self, share, src, dst, is_dir=False, replace=None, source_sas=None,
               headers=None, **kw):
        source = "http://%s:%d%s" % (self.host, self.port, self.path(share, src))
        if source_sas:
            source += "?" + source_sas
        h = {"x-ms-file-rename-source": source}
        if replace is not None:
            h["x-ms-file-rename-replace-if-exists"] = "true" if replace else "false"
        h.update(headers or {})
        q = ([("restype", "directory")] if is_dir else []) + [("comp", "rename")]
        return self.request("PUT", share, dst, query=q, headers=h, **kw)
