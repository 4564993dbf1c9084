#!/usr/bin/env python3
"""tests/lib/filesserver.py, the Azure Files test server (written from the REST
reference: Azurite has no Azure Files), is strict and right before ferry is tested
against it:

  - a correctly signed request passes, and its string to sign is the one the
    harness's own Blob client (which Azurite accepts) builds; changing any signed
    header, the path, a query parameter, the method or the date after signing, or a
    wrong key, gets 403 AuthenticationFailed; no credentials get 401
  - a service SAS with too few permissions, expired, for another file, tampered with
    or https-only is refused with the reference's codes
  - Put Range over 4 MiB, past the end, without x-ms-range, with a length mismatch,
    a bad MD5 or a clear with a body is refused; ranges read back byte-exact, sparse
    files read zeros, resizes truncate and zero-extend
  - paging with maxresults=2 over 5 entries gives each once, with opaque markers
  - rename without replace refuses an existing target and with it replaces; a
    directory rename moves the subtree; missing parents give ParentNotFound
  - Delete Directory of a non-empty directory gives DirectoryNotEmpty; Create File
    under a missing directory gives ParentNotFound; required headers per version
  - ETags change on every modification; it works behind the fault proxy, with
    Expect: 100-continue, with injected failures and with concurrent writers

No ferry binary is needed. Run: python3 tests/integration/test_filesserver.py [test ...]
"""
import base64
import email.utils
import hashlib
import hmac
import os
import re
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import KiB, MiB, check, check_eq, check_in  # noqa: E402
from filesserver import FilesClient, FilesServer, service_sas  # noqa: E402
from httpproxy import HttpProxy  # noqa: E402

TEST_TIMEOUT = 30
SHARE = "fstest"

fs = None
c = None


def setup():
    global fs, c
    fs = FilesServer().start()
    c = FilesClient(fs)
    c.create_share(SHARE)


def teardown():
    c.close()
    fs.stop()


def refused(reply, status, code, what):
    check(reply.status == status and reply.code == code,
          "%s: got %d %s, want %d %s (%r)" % (what, reply.status, reply.code, status, code,
                                             reply.body[:200]))
    if reply.body:  # HEAD answers have none
        check_in(b"<Error><Code>%s</Code><Message>" % code.encode(), reply.body,
                 what + ": XML error body")
        check(reply.body.startswith(b'<?xml version="1.0" encoding="utf-8"?>'),
              "%s: error body is not XML: %r" % (what, reply.body[:80]))


def test_signed_request_passes_and_signs_as_the_harness_does():
    c.create_dir(SHARE, "sig")
    c.upload(SHARE, "sig/a b.txt", b"0123456789")
    r = c.request("HEAD", SHARE, "sig/a b.txt")
    check_eq(r.status, 200, "HEAD of a signed request")
    check_eq(r.headers.get("content-length"), "10", "Content-Length")
    # The same string to sign as ferrytest's Blob client, which Azurite accepts.
    blob = ft.BlobClient("127.0.0.1", fs.port)
    h = {"x-ms-date": "Fri, 04 Dec 2026 04:00:00 GMT", "x-ms-version": "2021-12-02",
         "x-ms-Range": " bytes=0-3 ", "Content-Type": "text/plain", "Content-Length": "0"}
    q = [("comp", "range"), ("B", "2"), ("b", "1"), ("timeout", "30")]
    path = c.path(SHARE, "sig/a b.txt")
    check_eq(c.string_to_sign("PUT", path, q, h), blob.string_to_sign("PUT", path, q, h),
             "string to sign, filesserver client vs ferrytest.BlobClient")
    # Date instead of x-ms-date is signed in the Date slot and passes.
    r = c.request("GET", SHARE, "sig/a b.txt",
                  headers={"x-ms-date": None, "Date": email.utils.formatdate(usegmt=True)})
    check_eq((r.status, r.body), (200, b"0123456789"), "GET signed with Date")
    # A SAS needs no x-ms-version: sv is used.
    r = c.request("GET", SHARE, "sig/a b.txt", headers={"x-ms-version": None},
                  sas=service_sas(SHARE, "sig/a b.txt", "r"))
    check_eq((r.status, r.headers.get("x-ms-version")), (200, "2022-11-02"), "SAS, no version")


def test_changing_anything_signed_breaks_the_signature():
    c.upload(SHARE, "sig2.txt", b"abcdefgh")
    c.upload(SHARE, "sig3.txt", b"ABCDEFGH")
    base = dict(headers={"x-ms-range": "bytes=0-3", "x-ms-client-request-id": "req-1"},
                query=[("timeout", "30")])
    r = c.request("GET", SHARE, "sig2.txt", **base)
    check_eq((r.status, r.body), (206, b"abcd"), "untouched signed request")

    def header(name, value):
        return lambda m, t, h: (m, t, {**h, name: value})

    def shifted_date(m, t, h):
        when = email.utils.parsedate_to_datetime(h["x-ms-date"]).timestamp() + 1
        return m, t, {**h, "x-ms-date": email.utils.formatdate(when, usegmt=True)}

    cases = {
        "signed x-ms header changed": header("x-ms-client-request-id", "req-2"),
        "x-ms-range changed": header("x-ms-range", "bytes=0-2"),
        "x-ms header added": header("x-ms-meta-added", "1"),
        "Range added": header("Range", "bytes=0-1"),
        "Content-Type added": header("Content-Type", "text/plain"),
        "version changed": header("x-ms-version", "2022-11-02"),
        "date changed by 1 s": shifted_date,
        "path changed": lambda m, t, h: (m, t.replace("sig2.txt", "sig3.txt"), h),
        "query value changed": lambda m, t, h: (m, t.replace("timeout=30", "timeout=31"), h),
        "query parameter added": lambda m, t, h: (m, t + "&extra=1", h),
        "query parameter removed": lambda m, t, h: (m, t.split("?")[0], h),
        "method changed": lambda m, t, h: ("HEAD", t, h),
        "account in the header changed": lambda m, t, h: (m, t, {
            **h, "Authorization": h["Authorization"].replace(fs.account, "otheraccount")}),
    }
    for what, tamper in cases.items():
        refused(c.request("GET", SHARE, "sig2.txt", tamper=tamper, **base), 403,
                "AuthenticationFailed", what)
    wrong = FilesClient(fs, key=ft.WRONG_KEY)
    refused(wrong.request("GET", SHARE, "sig2.txt"), 403, "AuthenticationFailed", "wrong key")
    old = email.utils.formatdate(time.time() - 20 * 60, usegmt=True)
    refused(c.request("GET", SHARE, "sig2.txt", headers={"x-ms-date": old}), 403,
            "AuthenticationFailed", "correctly signed, 20 minutes old")
    refused(c.request("GET", SHARE, "sig2.txt", headers={"x-ms-date": None}), 403,
            "AuthenticationFailed", "no date at all")
    r = c.request("GET", SHARE, "sig2.txt", headers={"x-ms-version": None})
    refused(r, 400, "MissingRequiredHeader", "no x-ms-version")
    check_eq(r.detail("HeaderName"), "x-ms-version", "HeaderName")
    refused(c.request("GET", SHARE, "sig2.txt", headers={"x-ms-version": "2021-13-45"}), 400,
            "InvalidHeaderValue", "a version that is no date")
    refused(c.request("GET", SHARE, "sig2.txt", headers={"x-ms-version": "2018-11-09"}), 400,
            "InvalidHeaderValue", "a version older than 2019-02-02")
    r = c.request("GET", SHARE, "sig2.txt", sign=False)
    refused(r, 401, "NoAuthenticationInformation", "no credentials")
    check("www-authenticate" in r.headers, "401 without WWW-Authenticate")
    refused(c.request("GET", SHARE, "sig2.txt", tamper=lambda m, t, h: (m, t, {
        **h, "Authorization": "Bearer abc"})), 400, "InvalidAuthenticationInfo", "Bearer")
    # The refusal names the string the server signed (for debugging a client).
    r = c.request("GET", SHARE, "sig2.txt", tamper=cases["query value changed"], **base)
    check_in("timeout:31", r.detail("AuthenticationErrorDetail") or "", "error detail")


def test_sas_permissions_expiry_and_resource():
    c.create_dir(SHARE, "sas")
    c.upload(SHARE, "sas/a.txt", b"aaaa")
    c.upload(SHARE, "sas/b.txt", b"bbbb")
    read_a = service_sas(SHARE, "sas/a.txt", "r")
    r = c.request("GET", SHARE, "sas/a.txt", sas=read_a)
    check_eq((r.status, r.body), (200, b"aaaa"), "GET with a read SAS")
    put = dict(query=[("comp", "range")], body=b"XX",
               headers={"x-ms-write": "update", "x-ms-range": "bytes=0-1"})
    refused(c.request("PUT", SHARE, "sas/a.txt", sas=read_a, **put), 403,
            "AuthorizationPermissionMismatch", "Put Range with sp=r")
    refused(c.request("DELETE", SHARE, "sas/a.txt", sas=read_a), 403,
            "AuthorizationPermissionMismatch", "Delete File with sp=r")
    refused(c.request("GET", SHARE, "sas/b.txt", sas=read_a), 403, "AuthenticationFailed",
            "a file SAS used for another file")
    refused(c.request("GET", SHARE, "sas/a.txt",
                      sas=read_a.replace("sp=r", "sp=rw")), 403, "AuthenticationFailed",
            "sp changed after signing")
    refused(c.request("GET", SHARE, "sas/a.txt", sas=service_sas(SHARE, "sas/a.txt", "r",
                                                                 expiry=-60)),
            403, "AuthenticationFailed", "expired SAS")
    refused(c.request("GET", SHARE, "sas/a.txt", sas=service_sas(SHARE, "sas/a.txt", "r",
                                                                 start=600)),
            403, "AuthenticationFailed", "SAS not valid yet")
    refused(c.request("GET", SHARE, "sas/a.txt", sas=service_sas(SHARE, "sas/a.txt", "wr")),
            403, "AuthenticationFailed", "permissions out of order")
    refused(c.request("GET", SHARE, "sas/a.txt", sas=service_sas(SHARE, "sas/a.txt", "rl")),
            403, "AuthenticationFailed", "l in a file SAS")
    refused(c.request("GET", SHARE, "sas/a.txt", sas=service_sas(SHARE, "sas/a.txt", "r",
                                                                 protocol="https")),
            403, "AuthorizationProtocolMismatch", "spr=https over http")
    refused(c.request("GET", SHARE, "sas/a.txt", sas=service_sas(SHARE, "sas/a.txt", "r",
                                                                 ip="10.1.2.3")),
            403, "AuthorizationSourceIPMismatch", "sip of another address")
    check_eq(c.request("GET", SHARE, "sas/a.txt", sas=service_sas(
        SHARE, "sas/a.txt", "r", ip="127.0.0.0-127.0.0.255")).status, 200, "sip range")
    r = c.request("GET", SHARE, "sas/a.txt", sas=service_sas(
        SHARE, "sas/a.txt", "r", overrides={"rsct": "text/plain", "rscd": "inline"}))
    check_eq((r.headers.get("content-type"), r.headers.get("content-disposition")),
             ("text/plain", "inline"), "rsct/rscd override the response headers")
    # Share SAS: l lists, c or w creates, d deletes.
    listing = dict(query=[("restype", "directory"), ("comp", "list")])
    check_eq(c.request("GET", SHARE, "sas", sas=service_sas(SHARE, None, "rl"),
                       **listing).status, 200, "list with sr=s sp=rl")
    refused(c.request("GET", SHARE, "sas", sas=service_sas(SHARE, None, "r"), **listing),
            403, "AuthorizationPermissionMismatch", "list without l")
    refused(c.request("GET", SHARE, "sas", sas=service_sas(SHARE, "sas", "r"), **listing),
            403, "AuthorizationResourceTypeMismatch", "list with a file SAS")
    refused(c.request("PUT", SHARE, "sas/new.txt", sas=service_sas(SHARE, None, "rl"),
                      headers={"x-ms-type": "file", "x-ms-content-length": "4"}),
            403, "AuthorizationPermissionMismatch", "Create File without c or w")
    full = service_sas(SHARE, None, "rcwdl")
    check_eq(c.request("PUT", SHARE, "sas/new.txt", sas=full, headers={
        "x-ms-type": "file", "x-ms-content-length": "4"}).status, 201, "Create File, sp=c")
    check_eq(c.request("PUT", SHARE, "sas/new.txt", sas=full, **put).status, 201,
             "Put Range, sp=w")
    check_eq(fs.get_file(SHARE, "sas/new.txt"), b"XX\0\0", "bytes written with a SAS")
    check_eq(c.request("DELETE", SHARE, "sas/new.txt", sas=full).status, 202, "delete, sp=d")
    refused(c.request("PUT", "othershare", query=[("restype", "share")],
                      sas=service_sas("othershare", None, "rcwdl")),
            403, "AuthorizationResourceTypeMismatch", "Create Share with a service SAS")


def put(path, offset, data, **kw):
    h = {"x-ms-write": "update", "x-ms-range": "bytes=%d-%d" % (offset, offset + len(data) - 1)}
    h.update(kw.pop("headers", {}))
    return c.request("PUT", SHARE, path, query=[("comp", "range")], headers=h, body=data, **kw)


def test_put_range_is_refused_outside_the_rules():
    c.create_file(SHARE, "pr.bin", 8 * MiB)
    check_eq(put("pr.bin", 0, bytes(4 * MiB)).status, 201, "Put Range of exactly 4 MiB")
    r = put("pr.bin", 0, bytes(4 * MiB + 1))
    refused(r, 413, "RequestBodyTooLarge", "Put Range of 4 MiB + 1")
    refused(put("pr.bin", 8 * MiB - 2, b"abcd"), 416, "InvalidRange", "range past the end")
    refused(put("pr.bin", 8 * MiB, b"a"), 416, "InvalidRange", "range starting at the end")
    r = put("pr.bin", 0, b"abcd", headers={"x-ms-range": None})
    refused(r, 400, "MissingRequiredHeader", "no x-ms-range nor Range")
    refused(put("pr.bin", 0, b"abcde", headers={"x-ms-range": "bytes=0-9"}), 400,
            "InvalidHeaderValue", "range longer than the body")
    refused(put("pr.bin", 0, b"abcde", headers={"x-ms-range": "bytes=0-2"}), 400,
            "InvalidHeaderValue", "range shorter than the body")
    refused(put("pr.bin", 0, b"abc", headers={"x-ms-range": "bytes=0-"}), 400,
            "InvalidHeaderValue", "open range")
    refused(put("pr.bin", 0, b"abc", headers={"x-ms-range": "0-2"}), 400,
            "InvalidHeaderValue", "range without bytes=")
    refused(put("pr.bin", 0, b"abc", headers={"x-ms-write": None}), 400,
            "MissingRequiredHeader", "no x-ms-write")
    refused(put("pr.bin", 0, b"abc", headers={"x-ms-write": "append"}), 400,
            "InvalidHeaderValue", "x-ms-write: append")
    refused(c.request("PUT", SHARE, "pr.bin", query=[("comp", "range")], body=b"abc",
                      headers={"x-ms-write": "clear", "x-ms-range": "bytes=0-2"}),
            400, "InvalidHeaderValue", "clear with a body")
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    refused(put("pr.bin", 0, b"abc", headers={"Content-MD5": bad}), 400, "Md5Mismatch",
            "wrong Content-MD5")
    refused(put("pr.bin", 0, b"abc", headers={"Content-MD5": "abc"}), 400, "InvalidMd5",
            "malformed Content-MD5")
    good = base64.b64encode(hashlib.md5(b"abc").digest()).decode()
    r = put("pr.bin", 0, b"abc", headers={"Content-MD5": good})
    check_eq((r.status, r.headers.get("content-md5")), (201, good), "right Content-MD5")
    refused(put("nothere.bin", 0, b"abc"), 404, "ResourceNotFound", "Put Range, no file")
    refused(put("nodir/f.bin", 0, b"abc"), 404, "ParentNotFound", "Put Range, no parent")
    # Clear: zeros, Content-Length 0; up to the whole file at once.
    r = c.request("PUT", SHARE, "pr.bin", query=[("comp", "range")],
                  headers={"x-ms-write": "clear", "x-ms-range": "bytes=1-%d" % (8 * MiB - 1)})
    check_eq(r.status, 201, "clear of 8 MiB - 1")
    check_eq(fs.get_file(SHARE, "pr.bin"), b"a" + bytes(8 * MiB - 1), "after the clear")


def test_ranges_read_back_byte_exact():
    data = ft.gen_bytes(3 * MiB + 17, seed="fsrv")
    c.upload(SHARE, "rd.bin", data, chunk=MiB)
    check_eq(c.get(SHARE, "rd.bin"), data, "whole file")
    for off, n in ((0, 1), (len(data) - 1, 1), (MiB - 5, 10), (12345, 2 * MiB), (7, None)):
        r = c.request("GET", SHARE, "rd.bin", headers={
            "x-ms-range": "bytes=%d-%s" % (off, "" if n is None else off + n - 1)})
        want = data[off:] if n is None else data[off:off + n]
        check_eq(r.status, 206, "ranged GET status")
        check_eq(r.body, want, "bytes %d+%s" % (off, n))
        check_eq(r.headers.get("content-range"), "bytes %d-%d/%d" % (
            off, off + len(want) - 1, len(data)), "Content-Range")
    r = c.request("GET", SHARE, "rd.bin", headers={"Range": "bytes=%d-%d" % (
        len(data) - 4, len(data) + 100)})
    check_eq((r.status, r.body), (206, data[-4:]), "Range past the end is cut at the end")
    r = c.request("GET", SHARE, "rd.bin", headers={"x-ms-range": "bytes=%d-" % len(data)})
    refused(r, 416, "InvalidRange", "GET starting at the end")
    check_eq(r.headers.get("content-range"), "bytes */%d" % len(data), "416 Content-Range")
    r = c.request("GET", SHARE, "rd.bin", headers={"x-ms-range": "bytes=100-199",
                                                   "x-ms-range-get-content-md5": "true"})
    check_eq(r.headers.get("content-md5"),
             base64.b64encode(hashlib.md5(data[100:200]).digest()).decode(), "range MD5")
    check("content-md5" not in c.request("GET", SHARE, "rd.bin", headers={
        "x-ms-range": "bytes=100-199"}).headers, "Content-MD5 without being asked")
    refused(c.request("GET", SHARE, "rd.bin", headers={
        "x-ms-range": "bytes=0-%d" % (4 * MiB), "x-ms-range-get-content-md5": "true"}),
        400, "InvalidHeaderValue", "range MD5 over 4 MiB")
    check_eq(c.props(SHARE, "rd.bin").get("content-length"), str(len(data)), "HEAD size")
    check_eq(c.request("HEAD", SHARE, "rd.bin", headers={
        "x-ms-range-get-content-md5": "true"}).status, 200, "HEAD ignores the range MD5")
    check_eq(c.props(SHARE, "rd.bin").get("x-ms-type"), "File", "x-ms-type")
    # Sparse: zeros where nothing was written; resize truncates and zero-extends.
    c.create_file(SHARE, "sparse.bin", 10 * MiB)
    put("sparse.bin", 5 * MiB, b"xyz")
    check_eq(c.get(SHARE, "sparse.bin", 5 * MiB - 2, 7), b"\0\0xyz\0\0", "sparse bytes")
    check_eq(len(c.get(SHARE, "sparse.bin")), 10 * MiB, "sparse size")
    c.resize(SHARE, "sparse.bin", 5 * MiB + 1)
    check_eq(c.get(SHARE, "sparse.bin", 5 * MiB - 1), b"\0x", "after truncation")
    c.resize(SHARE, "sparse.bin", 5 * MiB + 4)
    check_eq(c.get(SHARE, "sparse.bin", 5 * MiB - 1), b"\0x\0\0\0", "zero-extended")
    c.create_file(SHARE, "sparse.bin", 2)  # Create File over a file replaces it
    check_eq(c.get(SHARE, "sparse.bin"), b"\0\0", "recreated file")
    r = c.request("GET", SHARE, "sparse.bin", headers={"x-ms-range": "bytes=5-3"})
    refused(r, 416, "InvalidRange", "end before start")


def test_paging_gives_every_entry_once_with_opaque_markers():
    c.create_dir(SHARE, "page")
    for name in ("b.txt", "D.txt", "e"):
        c.create_file(SHARE, "page/" + name, 3)
    for name in ("a-dir", "c"):
        c.create_dir(SHARE, "page/" + name)
    c.create_file(SHARE, "page/a-dir/deeper.txt", 1)  # one level only: not listed
    seen, marker, sizes, markers = [], None, [], []
    while True:
        entries, marker, r = c.list_page(SHARE, "page", maxresults=2, marker=marker)
        check_in(b"<MaxResults>2</MaxResults>", r.body, "MaxResults echoed")
        seen += entries
        sizes.append(len(entries))
        if not marker:
            break
        markers.append(marker)
        check(not any(n in marker.lower() for n in ("b.txt", "d.txt", "a-dir")),
              "marker %r shows a name in clear" % marker)
    check_eq(sizes, [2, 2, 1], "page sizes")
    names = [n for n, _, _ in seen]
    check_eq(sorted(names), sorted(["a-dir", "b.txt", "c", "D.txt", "e"]), "names listed")
    check_eq(len(set(names)), 5, "each entry exactly once")
    check_eq(names, fs.listing(SHARE, "page"), "order: the server's listing order")
    check_eq(names, ["a-dir", "b.txt", "c", "D.txt", "e"], "lexical, case-insensitive")
    check_eq({n: (d, s) for n, d, s in seen}["D.txt"], (False, 3), "a file's size")
    check_eq({n: (d, s) for n, d, s in seen}["c"], (True, None), "a directory")
    _, _, last = c.list_page(SHARE, "page", maxresults=2, marker=markers[-1])
    check_in(b"<NextMarker />", last.body, "empty NextMarker on the last page")
    check_in(b"<Marker>%s</Marker>" % markers[-1].encode(), last.body, "Marker echoed")
    entries, _, r = c.list_page(SHARE, "page", prefix="a")
    check_eq([e[0] for e in entries], ["a-dir"], "prefix")
    check_in(b'DirectoryPath="page"', r.body, "DirectoryPath")
    entries, _, r = c.list_page(SHARE, "page", include="Timestamps,ETag,Attributes,PermissionKey")
    for tag in (b"<FileId>", b"<Etag>", b"<CreationTime>", b"<Last-Modified>",
                b"<Attributes>", b"<PermissionKey>", b"<DirectoryId>"):
        check_in(tag, r.body, "include=... and the extended info")
    _, _, r = c.list_page(SHARE, "page")
    check(b"<FileId>" not in r.body and b"<MaxResults>" not in r.body,
          "FileId or MaxResults without being asked")
    for q, code in ((("maxresults", "0"), "OutOfRangeQueryParameterValue"),
                    (("maxresults", "x"), "InvalidQueryParameterValue"),
                    (("marker", "not-a-marker"), "InvalidQueryParameterValue"),
                    (("include", "Timestamps,Bogus"), "InvalidQueryParameterValue")):
        refused(c.request("GET", SHARE, "page", query=[("restype", "directory"),
                                                       ("comp", "list"), q]),
                400, code, "list with %s=%s" % q)
    refused(c.request("GET", SHARE, "page/nothere", query=[("restype", "directory"),
                                                           ("comp", "list")]),
            404, "ResourceNotFound", "list of a missing directory")
    entries, marker, _ = c.list_page(SHARE, "")
    check_in("page", [e[0] for e in entries], "the share's root lists")


def test_rename_replace_subtree_and_parents():
    c.create_dir(SHARE, "r")
    c.upload(SHARE, "r/a.txt", b"AAAA")
    c.upload(SHARE, "r/b.txt", b"BB")
    refused(c.rename(SHARE, "r/a.txt", "r/b.txt"), 409, "ResourceAlreadyExists",
            "rename onto an existing file, no replace header")
    refused(c.rename(SHARE, "r/a.txt", "r/b.txt", replace=False), 409,
            "ResourceAlreadyExists", "rename onto an existing file, replace false")
    check_eq((fs.get_file(SHARE, "r/a.txt"), fs.get_file(SHARE, "r/b.txt")),
             (b"AAAA", b"BB"), "both untouched after the refusals")
    r = c.rename(SHARE, "r/a.txt", "r/b.txt", replace=True)
    check_eq(r.status, 200, "rename with replace")
    check_eq((fs.exists(SHARE, "r/a.txt"), fs.get_file(SHARE, "r/b.txt")),
             (False, b"AAAA"), "source gone, target replaced")
    refused(c.rename(SHARE, "r/b.txt", "nope/b.txt"), 404, "ParentNotFound",
            "destination's parent missing")
    refused(c.rename(SHARE, "r/gone.txt", "r/c.txt"), 404, "ResourceNotFound",
            "missing source")
    refused(c.request("PUT", SHARE, "r/c.txt", query=[("comp", "rename")]), 400,
            "MissingRequiredHeader", "no x-ms-file-rename-source")
    refused(c.rename(SHARE, "r/b.txt", "r/c.txt", headers={"x-ms-version": "2021-02-12"}),
            400, "InvalidQueryParameterValue", "rename before 2021-04-10")
    # A directory moves with everything below it.
    fs.put_file(SHARE, "r/t/x.txt", b"x")
    fs.put_file(SHARE, "r/t/s/y.txt", b"yy")
    check_eq(c.rename(SHARE, "r/t", "r/u", is_dir=True).status, 200, "directory rename")
    check_eq((fs.exists(SHARE, "r/t"), fs.get_file(SHARE, "r/u/x.txt"),
              fs.get_file(SHARE, "r/u/s/y.txt")), (False, b"x", b"yy"), "subtree moved")
    check_eq([e[0] for e in c.list_all(SHARE, "r/u/s")], ["y.txt"], "listing after the move")
    refused(c.rename(SHARE, "r/u", "r/u/s/w", is_dir=True), 400, "InvalidInput",
            "a directory into itself")
    refused(c.rename(SHARE, "r/b.txt", "r/v", is_dir=True), 404, "ResourceNotFound",
            "Rename Directory of a file")
    check_eq(c.rename(SHARE, "r/u", "r/U", is_dir=True).status, 200, "case-only rename")
    check_eq(fs.listing(SHARE, "r"), ["b.txt", "U"], "the new case is kept")
    c.create_dir(SHARE, "r/full")
    fs.put_file(SHARE, "r/full/f", b"")
    refused(c.rename(SHARE, "r/U", "r/full", is_dir=True, replace=True), 409,
            "DirectoryNotEmpty", "replace a non-empty directory")
    # With SAS: the destination's SAS may create, the source's own (in its URL) delete.
    dest_sas = service_sas(SHARE, "r/m.txt", "cw")
    r = c.rename(SHARE, "r/b.txt", "r/m.txt", sas=dest_sas,
                 source_sas=service_sas(SHARE, "r/b.txt", "r"))
    refused(r, 403, "AuthorizationPermissionMismatch", "source SAS without d")
    r = c.rename(SHARE, "r/b.txt", "r/m.txt", sas=dest_sas,
                 source_sas=service_sas(SHARE, "r/b.txt", "rd"))
    check_eq(r.status, 200, "rename with a SAS for each side")
    check_eq(fs.get_file(SHARE, "r/m.txt"), b"AAAA", "renamed with SAS")


def test_directories_and_required_headers():
    c.create_dir(SHARE, "dd")
    fs.put_file(SHARE, "dd/f.txt", b"f")
    refused(c.request("DELETE", SHARE, "dd", query=[("restype", "directory")]), 409,
            "DirectoryNotEmpty", "Delete Directory, not empty")
    refused(c.request("PUT", SHARE, "dd", query=[("restype", "directory")]), 409,
            "ResourceAlreadyExists", "Create Directory, exists")
    refused(c.request("PUT", SHARE, "dd/f.txt", query=[("restype", "directory")]), 409,
            "ResourceAlreadyExists", "Create Directory over a file")
    refused(c.request("PUT", SHARE, "dd", headers={"x-ms-type": "file",
                                                   "x-ms-content-length": "1"}),
            409, "ResourceTypeMismatch", "Create File over a directory")
    c.delete_file(SHARE, "dd/f.txt")
    check_eq(c.request("DELETE", SHARE, "dd", query=[("restype", "directory")]).status, 202,
             "Delete Directory, empty")
    refused(c.request("PUT", SHARE, "missing/f.txt", headers={
        "x-ms-type": "file", "x-ms-content-length": "1"}), 404, "ParentNotFound",
        "Create File under a missing directory")
    refused(c.request("PUT", SHARE, "missing/sub", query=[("restype", "directory")]), 404,
            "ParentNotFound", "Create Directory under a missing directory")
    refused(c.request("PUT", SHARE, "f.txt", headers={"x-ms-type": "file"}), 400,
            "MissingRequiredHeader", "Create File without x-ms-content-length")
    refused(c.request("PUT", SHARE, "f.txt", headers={"x-ms-content-length": "1"}), 400,
            "MissingRequiredHeader", "Create File without x-ms-type")
    refused(c.request("PUT", SHARE, "f.txt", headers={"x-ms-type": "file",
                                                      "x-ms-content-length": "-1"}),
            400, "InvalidHeaderValue", "negative x-ms-content-length")
    refused(c.request("GET", "noshare", "f.txt"), 404, "ShareNotFound", "unknown share")
    refused(c.request("GET", SHARE, "nothere.txt"), 404, "ResourceNotFound", "missing file")
    refused(c.request("HEAD", SHARE, "nodir/f.txt"), 404, "ParentNotFound", "missing parent")
    c.create_dir(SHARE, "Mixed")
    refused(c.request("GET", SHARE, "Mixed"), 404, "ResourceNotFound", "Get File of a dir")
    refused(c.request("DELETE", SHARE, "Mixed"), 404, "ResourceNotFound", "Delete File of a dir")
    c.upload(SHARE, "mixed/CaSe.txt", b"c")  # names are case-insensitive
    check_eq(c.get(SHARE, "MIXED/case.TXT"), b"c", "case-insensitive lookup")
    check_eq(fs.listing(SHARE, "mixed"), ["CaSe.txt"], "case preserved")
    for bad in ("a:b", "q?x", "CON", "x|y"):
        refused(c.request("PUT", SHARE, bad, query=[("restype", "directory")]), 400,
                "InvalidResourceName", "name %r" % bad)
    refused(c.request("PUT", "Bad_Share", query=[("restype", "share")]), 400,
            "InvalidResourceName", "share name")
    # The SMB property headers are required before 2021-06-08, optional from it.
    old = {"x-ms-version": "2021-04-10"}
    r = c.request("PUT", SHARE, "v1", query=[("restype", "directory")], headers=old)
    refused(r, 400, "MissingRequiredHeader", "2021-04-10 without x-ms-file-attributes")
    smb = dict(old, **{"x-ms-file-attributes": "None", "x-ms-file-creation-time": "now",
                       "x-ms-file-last-write-time": "now", "x-ms-file-permission": "inherit"})
    check_eq(c.request("PUT", SHARE, "v1", query=[("restype", "directory")],
                       headers=smb).status, 201, "2021-04-10 with the SMB headers")
    refused(c.request("PUT", SHARE, "v2", query=[("restype", "directory")],
                      headers=dict(smb, **{"x-ms-file-attributes": "Bogus"})),
            400, "InvalidHeaderValue", "unknown attribute")
    refused(c.request("PUT", SHARE, "v2", query=[("restype", "directory")],
                      headers=dict(smb, **{"x-ms-file-creation-time": "yesterday"})),
            400, "InvalidHeaderValue", "creation time that is no time")
    r = c.request("PUT", SHARE, "v3", query=[("restype", "directory")], headers={
        "x-ms-file-creation-time": "2020-01-02T03:04:05.5Z"})
    check_eq((r.status, r.headers.get("x-ms-file-creation-time")),
             (201, "2020-01-02T03:04:05.5000000Z"), "creation time kept")
    check_eq(c.create_dir(SHARE, "v4", headers={"x-ms-version": "2021-12-02"}).status, 201,
             "2021-12-02 without the SMB headers")
    refused(c.request("GET", SHARE, "v4", query=[("restype", "directory"),
                                                 ("comp", "bogus")]),
            400, "InvalidQueryParameterValue", "unknown comp")
    refused(c.request("GET", SHARE, "v4", query=[("restype", "directory"),
                                                 ("comp", "listhandles")]),
            400, "InvalidQueryParameterValue", "a comp this server does not implement")
    refused(c.request("DELETE", SHARE, "v4", query=[("restype", "directory"),
                                                    ("comp", "list")]),
            405, "UnsupportedHttpVerb", "DELETE ?comp=list")
    refused(c.request("GET", SHARE, "v4", query=[("restype", "container")]), 400,
            "InvalidQueryParameterValue", "restype=container")
    refused(c.request("GET", SHARE, "rd.bin", headers={"If-Match": "*"}), 400,
            "ConditionHeadersNotSupported", "If-Match")
    refused(c.request("GET", SHARE, "rd.bin", headers={"x-ms-lease-id": "x"}), 412,
            "LeaseNotPresentWithFileOperation", "a lease id")
    r = c.request("GET", SHARE, query=[("restype", "share")])
    check_eq((r.status, r.headers.get("x-ms-share-quota")), (200, "5120"),
             "Get Share Properties")
    refused(c.request("PUT", SHARE, query=[("restype", "share")]), 409,
            "ShareAlreadyExists", "Create Share, exists")


def test_etags_change_on_every_modification():
    tags = [c.create_file(SHARE, "et.txt", 10).headers["etag"]]
    tags.append(put("et.txt", 0, b"abc").headers["etag"])
    tags.append(c.resize(SHARE, "et.txt", 20).headers["etag"])
    tags.append(c.request("PUT", SHARE, "et.txt", query=[("comp", "metadata")],
                          headers={"x-ms-meta-k": "v"}).headers["etag"])
    tags.append(c.rename(SHARE, "et.txt", "et2.txt").headers["etag"])
    h = c.props(SHARE, "et2.txt")
    check_eq(h["etag"], tags[-1], "HEAD gives the last ETag")
    check_eq(h.get("x-ms-meta-k"), "v", "metadata")
    check_eq(len(set(tags)), len(tags), "a new ETag for each change: %s" % tags)
    for t in tags:
        check(re.match(r'^"0x[0-9A-F]+"$', t), "ETag %r is not a quoted string" % t)
    check(email.utils.parsedate_to_datetime(h["last-modified"]).tzinfo is not None,
          "Last-Modified is RFC 1123")
    check_eq(c.props(SHARE, "et2.txt")["etag"], tags[-1], "a read changes nothing")


def raw_exchange(port, head, body=None, wait_continue=False):
    """A raw HTTP/1.1 exchange: (status line of the final answer, headers, all bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head)
        got = b""
        if wait_continue:
            while b"\r\n\r\n" not in got:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
            if got.startswith(b"HTTP/1.1 100"):
                s.sendall(body)
                got = got.split(b"\r\n\r\n", 1)[1]
            else:
                body = None
        elif body:
            s.sendall(body)
        while True:
            head_end = got.find(b"\r\n\r\n")
            if head_end >= 0:
                m = re.search(rb"content-length: *(\d+)", got[:head_end], re.I)
                if m and len(got) >= head_end + 4 + int(m.group(1)):
                    break
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    status = got.split(b"\r\n", 1)[0]
    return status, got


def signed_head(method, path, query, headers):
    h = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-12-02"}
    h.update(headers)
    sts = c.string_to_sign(method, path, query, h)
    sig = base64.b64encode(hmac.new(fs.key, sts.encode(), hashlib.sha256).digest()).decode()
    h["Authorization"] = "SharedKey %s:%s" % (fs.account, sig)
    target = path + ("?" + "&".join("%s=%s" % kv for kv in query) if query else "")
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1:%d" % fs.port]
    lines += ["%s: %s" % kv for kv in h.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_expect_100_continue():
    c.create_file(SHARE, "ex.bin", 8)
    path = c.path(SHARE, "ex.bin")
    q = [("comp", "range")]
    head = signed_head("PUT", path, q, {"x-ms-write": "update", "x-ms-range": "bytes=0-3",
                                        "Content-Length": "4", "Expect": "100-continue"})
    status, _ = raw_exchange(fs.port, head, b"wxyz", wait_continue=True)
    check(status.startswith(b"HTTP/1.1 201"), "accepted after 100 Continue: %r" % status)
    check_eq(fs.get_file(SHARE, "ex.bin"), b"wxyz\0\0\0\0", "body written")
    head = signed_head("PUT", path, q, {"x-ms-range": "bytes=0-3", "Content-Length": "4",
                                        "Expect": "100-continue"})
    status, got = raw_exchange(fs.port, head, b"wxyz", wait_continue=True)
    check(status.startswith(b"HTTP/1.1 400"), "refused before the body: %r" % status)
    check_in(b"Connection: close", got, "refused with Expect: the connection closes")


def test_behind_the_fault_proxy():
    data = ft.gen_bytes(2 * MiB + 3, seed="proxy")
    with HttpProxy(fs.port) as px:
        pc = FilesClient(fs, port=px.port)
        pc.upload(SHARE, "px.bin", data)
        check_eq(pc.get(SHARE, "px.bin"), data, "read back through the proxy")
        check_eq(pc.props(SHARE, "px.bin").get("content-length"), str(len(data)),
                 "HEAD through the proxy")
        refused(pc.request("GET", SHARE, "nothere.bin"), 404, "ResourceNotFound",
                "an error through the proxy")
        check_eq(pc.get(SHARE, "px.bin", 5, 5), data[5:10], "keep-alive after an error")
        check(px.count("GET", blob="px.bin") >= 2, "the proxy saw the GETs")
        px.add_fault("GET", blob_prefix="px.bin", status=503, count=1)
        r = pc.request("GET", SHARE, "px.bin")
        check_eq((r.status, r.code), (503, "ServerBusy"), "the proxy's fault")
        check_eq(pc.get(SHARE, "px.bin", 0, 3), data[:3], "after the fault")
        entries, _, _ = pc.list_page(SHARE, "", prefix="px")
        check_in(("px.bin", False, len(data)), entries, "a listing through the proxy")
        pc.close()


def test_fail_next_and_the_request_log():
    fs.clear_requests()
    fs.fail_next(2, 503, "ServerBusy", retry_after=1)
    for i in range(2):
        r = c.request("GET", SHARE, "rd.bin")
        refused(r, 503, "ServerBusy", "injected failure %d" % i)
        check_eq(r.headers.get("retry-after"), "1", "Retry-After")
    check_eq(c.request("GET", SHARE, "rd.bin", headers={"x-ms-range": "bytes=0-0"}).status,
             206, "after the injected failures")
    fs.fail_next(1, 500, "InternalError", method="PUT")
    check_eq(c.request("GET", SHARE, "rd.bin").status, 200, "a GET is not a PUT")
    refused(put("pr.bin", 0, b"a"), 500, "InternalError", "the injected PUT failure")
    log = fs.requests
    check_eq(len(log), 5, "requests logged")
    method, path, query, headers = log[2]
    check_eq((method, path), ("GET", "/%s/%s/rd.bin" % (fs.account, SHARE)), "logged request")
    check_eq(headers.get("x-ms-range"), "bytes=0-0", "logged header")
    check_eq(log[-1][2], {"comp": "range"}, "logged query")
    # The direct helpers.
    fs.put_file(SHARE, "h/i/j.txt", b"jj")
    check(fs.is_dir(SHARE, "h/i") and not fs.is_dir(SHARE, "h/i/j.txt"), "is_dir")
    check(fs.exists(SHARE, "h/i/j.txt") and not fs.exists(SHARE, "h/i/k"), "exists")
    check_eq((fs.get_file(SHARE, "h/i"), fs.listing(SHARE, "h/nope")), (None, None),
             "get_file of a directory, listing of nothing")
    fs.mkdir(SHARE, "h/x/y")
    check_eq(fs.listing(SHARE, "h"), ["i", "x"], "listing")
    check_eq(fs.url(SHARE, "h/a b"), "%s/%s/h/a%%20b" % (fs.endpoint, SHARE), "url()")


def test_concurrent_writers():
    size, n = 2 * MiB, 8
    data = ft.gen_bytes(size, seed="conc")
    c.create_file(SHARE, "conc.bin", size)
    part = size // n
    errors = []

    def writer(i):
        cl = FilesClient(fs)
        try:
            for off in range(i * part, (i + 1) * part, 64 * KiB):
                r = cl.request("PUT", SHARE, "conc.bin", query=[("comp", "range")],
                               headers={"x-ms-write": "update",
                                        "x-ms-range": "bytes=%d-%d" % (off, off + 64 * KiB - 1)},
                               body=data[off:off + 64 * KiB])
                if r.status != 201:
                    errors.append(r)
        finally:
            cl.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check_eq(errors, [], "failed writes")
    check_eq(c.get(SHARE, "conc.bin"), data, "bytes written by %d threads" % n)


if __name__ == "__main__":
    ft.run()
