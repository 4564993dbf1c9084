#!/usr/bin/env python3
"""Azure Files shares, write side: ferry's Files client writing through a read-write
mount (-o kind=file), `ferry cp` to a share, and jobs whose outputs or Batch AI mounts
are on a share, against the strict Files REST test server of tests/lib/filesserver.py
(Azurite has no Azure Files; that server is written from the published REST reference,
it is not Azure).

What is checked, always on the bytes the share holds (read with the server's own
helpers, never through ferry) and on the requests the server saw:

  - a share mount is read-write by default, -o ro refuses every change with EROFS
  - a file lands at close()/fsync() through a hidden temporary name in its directory
    (.ferry-up-*: Create File, Put Range of at most 4 MiB each, then Rename File with
    replace-if-exists over the target): before the close the target keeps its old
    content, after it the new bytes exactly, no temporary name is left, and none is
    ever listed by the mount
  - sizes 0, 1, 4 MiB - 1, 4 MiB, 4 MiB + 1, 9 MiB + 7; writes in the middle,
    appends, truncate and ftruncate (shrink, grow, to zero), a write into a block
    whose upload has just started: byte-exact on the share
  - a failed upload: close()/fsync() fail, the share keeps the previous content;
    transient 503s and resets are retried
  - real directories: mkdir is one Create Directory (no marker file), rmdir of an
    empty one deletes it, of a full one ENOTEMPTY; rename of a file is one Rename
    File, of a directory one Rename Directory; unlink is one Delete File
  - test_fsx.py's random operations against a model, on a share mount
  - ferry cp -r of a tree (an empty folder, a file over 4 MiB) to a share and back
  - jobs with an rw_mount output (in a folder that exists, and in one that does not
    yet) and an upload output on an azure_file datastore, and a Batch AI job with
    mountVolumes.azureFileShares

Run: python3 tests/integration/test_files_write.py [test_name ...]
     (FERRY_FSX_SEED=N FERRY_FSX_OPS=M replays a run of test_fsx_on_a_share)
"""
import errno
import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import ferrytest as ft  # noqa: E402
import test_fsx as fsxmod  # noqa: E402  (its Fsx model run, on a share here)
from ferrytest import check, check_eq, expect_oserror  # noqa: E402
from filesserver import FilesServer  # noqa: E402
from httpproxy import HttpProxy  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
SHARE = "wdata"           # the share the mount, cp and job tests write to
BATCH_SHARE = "batchai"   # the Batch AI job's own share
STORE = "wfiles"          # an azure_file datastore of SHARE
TEMP = ".ferry-up-"       # the prefix of the hidden names uploads go through
MAX_RANGE = 4 * MiB       # Put Range's limit
OPTS = ["kind=file"]      # read-write: the default
FAIL_OPTS = OPTS + ["timeout=5"]  # failing uploads give up after 5 s

fs = None
az = None
tmp = None
runtmp = None
outputs = []  # everything ferry printed: no key in it


def setup():
    global fs, az, tmp, runtmp
    fs = FilesServer().start()
    az = ft.Azurite().start()  # the run store of the job tests
    tmp = ft.make_tmpdir("fwrite")
    runtmp = ft.make_tmpdir("fwriterun")
    fs.create_share(SHARE)
    fs.create_share(BATCH_SHARE)
    r = ferry("datastore", "add", "workspaceblobstore", "--endpoint", az.endpoint,
              "--container", "azureml-blobstore", "--credential", "emulator",
              "--create-container")
    check(r.returncode == 0, "datastore add workspaceblobstore: %s" % r.stderr)
    key = os.path.join(tmp, "key")
    with open(key, "w") as f:
        f.write(ft.KEY)
    os.chmod(key, 0o600)
    r = ferry("datastore", "add", STORE, "--type", "azure_file", "--endpoint", fs.endpoint,
              "--share", SHARE, "--account-key-file", key)
    check(r.returncode == 0, "datastore add %s: %s" % (STORE, r.stderr))


def teardown():
    if az:
        az.stop()
    if fs:
        fs.stop()


# --------------------------------------------------------------------------------------
# Helpers

def env():
    return ft.ferry_env(extra={"TMPDIR": runtmp})


def ferry(*args, timeout=120):
    argv = [ft.ferry_bin()] + list(args)
    check(not ft._secrets_in(argv), "a key on ferry's command line")
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=env(), cwd=tmp)
    out = subprocess.CompletedProcess(argv, r.returncode, r.stdout.decode("utf-8", "replace"),
                                      r.stderr.decode("utf-8", "replace"))
    outputs.append(out.stdout + out.stderr)
    ft.log("ferry %s -> %d | %s" % (" ".join(args)[:120], out.returncode,
                                    " | ".join(out.stderr.strip().splitlines())[-400:]))
    return out


def url(path=""):
    return fs.url(SHARE, path)


def uri(path):
    return "azureml://datastores/%s/paths/%s" % (STORE, path)


def mounted(opts=OPTS, target=None):
    return ft.mounted(target or url(), opts=opts, env=env())


def data(n, seed):
    return ft.gen_bytes(n, seed=seed)


def sha(b):
    return hashlib.sha256(b).hexdigest()


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


def write_path(path, buf, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(path, flags, 0o644)
    try:
        write_all(fd, buf)
    finally:
        os.close(fd)


def read_path(path):
    with open(path, "rb") as f:
        return f.read()


def pwrite_model(model, buf, offset):
    if offset > len(model):
        model.extend(bytes(offset - len(model)))
    model[offset:offset + len(buf)] = buf


def truncate_model(model, size):
    if size < len(model):
        del model[size:]
    else:
        model.extend(bytes(size - len(model)))


def on_share(rel):
    """The file's bytes as the server holds them (None: no such file)."""
    return fs.get_file(SHARE, rel)


def check_share_file(rel, want, what=None):
    what = what or "%s on the share" % rel
    got = on_share(rel)
    check(got is not None, "%s: no such file on the share (there: %s)" % (
        what, fs.listing(SHARE, os.path.dirname(rel))))
    check_eq(got, bytes(want), what)


def check_mount_file(path, want, what):
    check_eq(os.stat(path).st_size, len(want), "%s: st_size through the mount" % what)
    check_eq(read_path(path), bytes(want), "%s: read through the mount" % what)


def share_tree(top):
    """{path relative to top: ("d", None) or ("f", sha256)} of the share's tree under top."""
    out = {}

    def walk(d, rel):
        for n in fs.listing(SHARE, d) or []:
            p, r = d + "/" + n if d else n, rel + "/" + n if rel else n
            if fs.is_dir(SHARE, p):
                out[r] = ("d", None)
                walk(p, r)
            else:
                out[r] = ("f", sha(fs.get_file(SHARE, p)))
    check(fs.is_dir(SHARE, top), "%s is not a directory on the share" % top)
    walk(top.strip("/"), "")
    return out


def local_tree(root):
    """The same shape for a local folder."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for n in dirnames:
            out[os.path.normpath(os.path.join(rel, n))] = ("d", None)
        for n in filenames:
            out[os.path.normpath(os.path.join(rel, n))] = (
                "f", ft.sha256_file(os.path.join(dirpath, n)))
    return out


def temps_on_share(top=""):
    """Every .ferry-up- name anywhere under top."""
    found = []

    def walk(d):
        for n in fs.listing(SHARE, d) or []:
            p = d + "/" + n if d else n
            if n.startswith(TEMP):
                found.append(p)
            if fs.is_dir(SHARE, p):
                walk(p)
    walk(top.strip("/"))
    return found


def share_path(rel):
    """A request's (decoded) URL path for rel in SHARE."""
    return "/%s/%s/%s" % (fs.account, SHARE, rel.strip("/"))


def rel_of(path):
    prefix = "/%s/%s/" % (fs.account, SHARE)
    return path[len(prefix):] if path.startswith(prefix) else path


def show(req):
    m, p, q, h = req
    return "%s %s%s" % (m, rel_of(p), "?" + "&".join("%s=%s" % kv for kv in sorted(q.items()))
                        if q else "")


def changes(reqs):
    """The requests that change the share (PUT and DELETE), in order."""
    return [r for r in reqs if r[0] in ("PUT", "DELETE")]


def kind_of(req):
    """Which Files operation a changing request is."""
    m, _, q, h = req
    restype, comp = q.get("restype"), q.get("comp")
    if m == "DELETE":
        return "delete_dir" if restype == "directory" else "delete_file"
    if restype == "directory":
        return {None: "create_dir", "rename": "rename_dir"}.get(comp, "dir_" + str(comp))
    if comp is None:
        return "create_file" if h.get("x-ms-type") == "file" else "put?"
    return {"range": "put_range", "rename": "rename_file",
            "properties": "set_file_properties"}.get(comp, "file_" + comp)


def rename_source(req):
    """The share-relative path x-ms-file-rename-source names."""
    src = req[3].get("x-ms-file-rename-source", "")
    return rel_of(urllib.parse.unquote(urllib.parse.urlsplit(src).path)).rstrip("/")


def check_uploaded_through_temp(reqs, rel):
    """reqs (since the file was opened) show rel uploaded as the contract says: its
    content went to a .ferry-up- name in its directory by Create File and Put Ranges of
    at most 4 MiB, never to rel itself, and a Rename File with replace-if-exists moved
    that name over rel. (A new file may first be created empty the same way, by an
    earlier rename onto rel: every rename onto rel is checked, the last one carries
    the content.)"""
    ch = changes(reqs)
    folder = os.path.dirname(rel)
    what = "requests for %s: %s" % (rel, [show(r) for r in ch][:12])

    def beside(name):
        return os.path.dirname(name) == folder and os.path.basename(name).startswith(TEMP)
    ranges = [r for r in ch if kind_of(r) == "put_range"]
    for r in ranges:
        name = rel_of(r[1])
        check(beside(name), "a Put Range to %s, not to a %s name beside %s (%s)" % (
            name, TEMP, rel, what))
        m = re.match(r"^bytes=(\d+)-(\d+)$", r[3].get("x-ms-range") or r[3].get("range", ""))
        check(m, "a Put Range without a byte range: %r" % (r[3],))
        check(int(m.group(2)) - int(m.group(1)) + 1 <= MAX_RANGE,
              "a Put Range of %s: over 4 MiB" % m.group(0))
    renames = [r for r in ch if kind_of(r) == "rename_file" and rel_of(r[1]) == rel]
    check(renames, "no Rename File onto %s (%s)" % (rel, what))
    for ren in renames:
        src = rename_source(ren)
        check(beside(src), "the rename onto %s comes from %r, not a %s name beside it (%s)" % (
            rel, src, TEMP, what))
        creates = [r for r in ch if kind_of(r) == "create_file" and rel_of(r[1]) == src]
        check_eq(len(creates), 1, "Create File requests of %s (%s)" % (src, what))
        check(ch.index(creates[0]) < ch.index(ren), "Create File of %s after its rename" % src)
        for r in ranges:
            if rel_of(r[1]) == src:
                check(ch.index(creates[0]) < ch.index(r) < ch.index(ren),
                      "a Put Range of %s outside Create File .. Rename File" % src)
    check_eq(renames[-1][3].get("x-ms-file-rename-replace-if-exists", "").lower(), "true",
             "x-ms-file-rename-replace-if-exists of the last rename onto %s" % rel)
    srcs = {rename_source(r) for r in renames}
    stray = [show(r) for r in ch if kind_of(r) in ("create_file", "put_range")
             and rel_of(r[1]) not in srcs]
    check_eq(stray, [], "writes to names never renamed onto %s" % rel)


def errname(e):
    return errno.errorcode.get(e, str(e))


def close_fails(fd, what):
    """os.close(fd) must fail (an upload that failed); returns the errno name."""
    try:
        os.close(fd)
    except OSError as e:
        ft.log("%s: close() failed with %s" % (what, errname(e.errno)))
        return errname(e.errno)
    raise ft.CheckFailed("%s: close() succeeded though the upload failed" % what)


# --------------------------------------------------------------------------------------
# Read-write by default, read-only on request

def test_read_write_by_default():
    fs.put_file(SHARE, "rw/old.txt", b"old\n")
    with mounted() as m:
        with open(os.path.join(m, "rw", "hello.txt"), "wb") as f:
            f.write(b"written through a default mount\n")
        check_share_file("rw/hello.txt", b"written through a default mount\n")
        check_eq(read_path(os.path.join(m, "rw", "old.txt")), b"old\n", "rw/old.txt")


def test_ro_option_refuses_every_change():
    fs.put_file(SHARE, "ro/keep.txt", b"read only\n")
    fs.mkdir(SHARE, "ro/dir")
    fs.clear_requests()
    with mounted(OPTS + ["ro"]) as m:
        p = os.path.join(m, "ro", "keep.txt")
        for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC,
                      os.O_WRONLY | os.O_APPEND):
            expect_oserror(errno.EROFS, os.open, p, flags)
        expect_oserror(errno.EROFS, os.open, os.path.join(m, "ro", "new.txt"),
                       os.O_WRONLY | os.O_CREAT, 0o644)
        expect_oserror(errno.EROFS, os.mkdir, os.path.join(m, "ro", "newdir"))
        expect_oserror(errno.EROFS, os.rmdir, os.path.join(m, "ro", "dir"))
        expect_oserror(errno.EROFS, os.unlink, p)
        expect_oserror(errno.EROFS, os.rename, p, os.path.join(m, "ro", "moved.txt"))
        expect_oserror(errno.EROFS, os.truncate, p, 0)
        check_mount_file(p, b"read only\n", "ro/keep.txt")
    check_eq([show(r) for r in changes(fs.requests)], [], "changing requests of a ro mount")
    check_eq(fs.listing(SHARE, "ro"), ["dir", "keep.txt"], "ro/ on the share")
    check_share_file("ro/keep.txt", b"read only\n")


# --------------------------------------------------------------------------------------
# Uploads: a temporary name, then a rename over the target

def test_upload_goes_through_a_temporary_name():
    old, new = data(3 * MiB + 5, 1), data(9 * MiB + 7, 2)
    fs.put_file(SHARE, "up/big.bin", old)
    fs.put_file(SHARE, "up/sibling.txt", b"sibling\n")
    # a leftover of an upload that never finished, in another folder: never listed
    fs.put_file(SHARE, "hidden/%s0123456789abcdef" % TEMP, b"stale")
    fs.put_file(SHARE, "hidden/visible.txt", b"visible\n")
    with mounted() as m:
        check_eq(sorted(os.listdir(os.path.join(m, "hidden"))), ["visible.txt"],
                 "ls of a folder holding a %s name" % TEMP)
        # an existing file rewritten whole
        p = os.path.join(m, "up", "big.bin")
        fs.clear_requests()
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        try:
            write_all(fd, new)
            check_eq(on_share("up/big.bin"), old, "up/big.bin on the share before close")
            listed = os.listdir(os.path.join(m, "up"))
            check_eq(sorted(listed), ["big.bin", "sibling.txt"], "ls of up/ while writing")
        finally:
            os.close(fd)
        check_share_file("up/big.bin", new, "up/big.bin right after close")
        check_uploaded_through_temp(list(fs.requests), "up/big.bin")
        check_eq(temps_on_share("up"), [], "%s names left in up/ after close" % TEMP)
        check_mount_file(p, new, "up/big.bin")
        # a new file
        q = os.path.join(m, "up", "new.bin")
        fs.clear_requests()
        fd = os.open(q, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            write_all(fd, new[:5 * MiB])
            before = on_share("up/new.bin")
            check(before in (None, b""), "up/new.bin on the share before close: %d bytes "
                  "of the new content" % len(before or b""))
            check_eq(sorted(os.listdir(os.path.join(m, "up"))),
                     ["big.bin", "new.bin", "sibling.txt"], "ls of up/ while writing new.bin")
        finally:
            os.close(fd)
        check_share_file("up/new.bin", new[:5 * MiB], "up/new.bin right after close")
        check_uploaded_through_temp(list(fs.requests), "up/new.bin")
        check_eq(temps_on_share("up"), [], "%s names left in up/ after close" % TEMP)
        # fsync uploads too, the file still open; close after it changes nothing more
        r = os.path.join(m, "up", "synced.bin")
        fs.clear_requests()
        fd = os.open(r, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            write_all(fd, new[:MiB + 1])
            os.fsync(fd)
            check_share_file("up/synced.bin", new[:MiB + 1], "up/synced.bin after fsync")
            check_uploaded_through_temp(list(fs.requests), "up/synced.bin")
            write_all(fd, b"more")
        finally:
            os.close(fd)
        check_share_file("up/synced.bin", new[:MiB + 1] + b"more", "up/synced.bin after close")
        check_share_file("up/sibling.txt", b"sibling\n")
        check_eq(fs.listing(SHARE, "up"), ["big.bin", "new.bin", "sibling.txt", "synced.bin"],
                 "up/ on the share in the end")


def test_sizes_are_byte_exact():
    sizes = {"zero": 0, "one": 1, "range-1": MAX_RANGE - 1, "range": MAX_RANGE,
             "range+1": MAX_RANGE + 1, "nine+7": 9 * MiB + 7}
    want = {n: data(size, 10 + i) for i, (n, size) in enumerate(sizes.items())}
    fs.mkdir(SHARE, "sizes")
    with mounted() as m:
        for name, buf in want.items():
            fs.clear_requests()
            write_path(os.path.join(m, "sizes", name), buf,
                       os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            check_share_file("sizes/" + name, buf, "sizes/%s (%d bytes) right after close" % (
                name, len(buf)))
            if buf:  # an empty file may have been created as it is at open()
                check_uploaded_through_temp(list(fs.requests), "sizes/" + name)
        for name, buf in want.items():
            check_mount_file(os.path.join(m, "sizes", name), buf, "sizes/" + name)
    check_eq(sorted(fs.listing(SHARE, "sizes")), sorted(want), "sizes/ on the share")


def test_partial_writes_appends_and_truncates():
    mid, app = data(9 * MiB + 7, 20), data(MAX_RANGE - 1, 21)
    trunc, ftrunc = data(5 * MiB + 3, 22), data(3 * MiB, 23)
    for n, d in (("mid", mid), ("app", app), ("trunc", trunc), ("ftrunc", ftrunc),
                 ("otrunc", b"to be emptied\n")):
        fs.put_file(SHARE, "edit/" + n, d)
    with mounted() as m:
        j = lambda n: os.path.join(m, "edit", n)  # noqa: E731
        # overwrite in the middle, across the 4 MiB edge and near the end
        model = bytearray(mid)
        fd = os.open(j("mid"), os.O_RDWR)
        try:
            for off, buf in ((MAX_RANGE - 50 * KiB, data(100 * KiB, 24)),
                             (8 * MiB + 1, b"0123456789"), (len(mid) - 3, b"end+")):
                pwrite_all(fd, buf, off)
                pwrite_model(model, buf, off)
            check_eq(on_share("edit/mid"), mid, "edit/mid on the share before close")
        finally:
            os.close(fd)
        check_share_file("edit/mid", model, "edit/mid after writes in the middle")
        check_mount_file(j("mid"), model, "edit/mid")
        # appends: to exactly 4 MiB + 1, then past 9 MiB
        model = bytearray(app)
        fd = os.open(j("app"), os.O_WRONLY | os.O_APPEND)
        try:
            os.lseek(fd, 0, os.SEEK_SET)  # O_APPEND writes go to the end all the same
            write_all(fd, b"AB")
            model += b"AB"
        finally:
            os.close(fd)
        check_share_file("edit/app", model, "edit/app after appending 2 bytes")
        with open(j("app"), "ab") as f:
            f.write(data(5 * MiB + 6, 25))
        model += data(5 * MiB + 6, 25)
        check_share_file("edit/app", model, "edit/app after appending 5 MiB + 6")
        check_eq(len(model), 9 * MiB + 7, "the model's size")
        # truncate by path: no close follows, so the share has it when the call returns
        model = bytearray(trunc)
        for size in (MAX_RANGE + 1, 9 * MiB + 7, 1, 0, 3):
            os.truncate(j("trunc"), size)
            truncate_model(model, size)
            check_share_file("edit/trunc", model, "edit/trunc right after truncate(%d)" % size)
            check_mount_file(j("trunc"), model, "edit/trunc after truncate(%d)" % size)
        # ftruncate: at fsync and at close
        model = bytearray(ftrunc)
        fd = os.open(j("ftrunc"), os.O_RDWR)
        try:
            os.ftruncate(fd, MAX_RANGE - 1)
            truncate_model(model, MAX_RANGE - 1)
            pwrite_all(fd, b"xy", MAX_RANGE - 1)
            pwrite_model(model, b"xy", MAX_RANGE - 1)
            os.ftruncate(fd, 9 * MiB + 7)
            truncate_model(model, 9 * MiB + 7)
            os.fsync(fd)
            check_share_file("edit/ftrunc", model, "edit/ftrunc after ftruncate and fsync")
            os.ftruncate(fd, 1)
            truncate_model(model, 1)
        finally:
            os.close(fd)
        check_share_file("edit/ftrunc", model, "edit/ftrunc after ftruncate(1) and close")
        # open(O_TRUNC) and close without writing: an empty file
        os.close(os.open(j("otrunc"), os.O_WRONLY | os.O_TRUNC))
        check_share_file("edit/otrunc", b"", "edit/otrunc after open(O_TRUNC) and close")
        check_eq(temps_on_share("edit"), [], "%s names left in edit/" % TEMP)
    check_eq(fs.listing(SHARE, "edit"), ["app", "ftrunc", "mid", "otrunc", "trunc"],
             "edit/ on the share")


def test_write_into_a_block_being_uploaded():
    """A write that fills a block whole starts that block's upload at once; a write into
    the same block right after it must still be in the file that close() commits."""
    n, size = 30, MiB
    for i in range(n):
        fs.put_file(SHARE, "race/f%02d" % i, data(size, 80 + i))
    with mounted(OPTS + ["block_size=256K"]) as m:
        lost = []
        for i in range(n):
            model = bytearray(data(size, 80 + i))
            fd = os.open(os.path.join(m, "race", "f%02d" % i), os.O_RDWR)
            try:
                for off, buf in ((0, data(size, 200 + i)), (300000, b"X" * 1000)):
                    pwrite_all(fd, buf, off)
                    pwrite_model(model, buf, off)
            finally:
                os.close(fd)
            got = on_share("race/f%02d" % i)
            if got != model:
                lost.append("f%02d from byte %d" % (i, next(
                    k for k in range(min(len(got), len(model))) if got[k] != model[k])))
        check_eq(lost, [], "files whose last write is not on the share after close")


# --------------------------------------------------------------------------------------
# Failed uploads

@ft.timeout(120)
def test_failed_upload_keeps_the_previous_content():
    old = data(300 * KiB, 30)
    fs.put_file(SHARE, "fail/keep.bin", old)
    fs.put_file(SHARE, "fail/retried.bin", b"before the retries\n")
    with HttpProxy(fs.port) as px, mounted(FAIL_OPTS, target=px.url(url())) as m:
        # transient: two 503s and a reset connection are retried
        rules = [px.add_fault("PUT", blob_prefix="fail/", status=503, count=2),
                 px.add_fault("PUT", blob_prefix="fail/", reset=True, count=1)]
        write_path(os.path.join(m, "fail", "retried.bin"), data(5 * MiB, 31))
        check_share_file("fail/retried.bin", data(5 * MiB, 31),
                         "fail/retried.bin written through two 503s and a reset")
        for r in rules:
            check_eq(r.hits, r.count, "hits of %r" % r)
        px.clear_faults()
        # every Put Range refused (Create File passes): close() fails
        rule = px.add_fault("PUT", kind="range", blob_prefix="fail/", status=500)
        fd = os.open(os.path.join(m, "fail", "keep.bin"), os.O_WRONLY | os.O_TRUNC)
        try:
            write_all(fd, data(200 * KiB, 32))
        except BaseException:
            os.close(fd)
            raise
        close_fails(fd, "fail/keep.bin with every Put Range failing")
        check(rule.hits >= 1, "no Put Range was refused")
        check_share_file("fail/keep.bin", old, "fail/keep.bin after the failed close")
        # every rename refused (the content went up whole): fsync() fails
        px.clear_faults()
        rule = px.add_fault("PUT", kind="rename", blob_prefix="fail/", status=500)
        fd = os.open(os.path.join(m, "fail", "keep.bin"), os.O_WRONLY | os.O_TRUNC)
        err = None
        try:
            write_all(fd, data(5 * MiB + 1, 33))
            os.fsync(fd)
        except OSError as e:
            err = errname(e.errno)
            ft.log("fail/keep.bin: write or fsync failed with %s" % err)
        finally:
            try:
                os.close(fd)
            except OSError as e:
                ft.log("fail/keep.bin: close after the failed fsync: %s" % errname(e.errno))
        check(err is not None, "write and fsync of 5 MiB + 1 with every Rename File failing "
              "reported no error")
        check(rule.hits >= 1, "no Rename File was refused")
        check_share_file("fail/keep.bin", old, "fail/keep.bin after the failed fsync")
        check_eq([n for n in os.listdir(os.path.join(m, "fail")) if n.startswith(TEMP)], [],
                 "%s names listed in fail/ after failed uploads" % TEMP)
        # a new file with every PUT refused: no part of it shows up on the share
        px.clear_faults()
        rule = px.add_fault("PUT", blob_prefix="fail/", status=500)
        try:
            fd = os.open(os.path.join(m, "fail", "new.bin"), os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError as e:
            ft.log("fail/new.bin: create failed with %s" % errname(e.errno))
        else:
            try:
                write_all(fd, b"never")
            except BaseException:
                os.close(fd)
                raise
            close_fails(fd, "fail/new.bin with every PUT failing")
        check(on_share("fail/new.bin") in (None, b""), "fail/new.bin on the share: %r" %
              (on_share("fail/new.bin") or b"")[:40])
        check(rule.hits >= 1, "no PUT of fail/new.bin was refused")
        # the faults gone, the same mount writes again
        px.clear_faults()
        write_path(os.path.join(m, "fail", "keep.bin"), b"after the faults\n")
        check_share_file("fail/keep.bin", b"after the faults\n",
                         "fail/keep.bin written once the faults are gone")


# --------------------------------------------------------------------------------------
# Directories and names

def test_mkdir_rmdir_are_real_directories():
    fs.mkdir(SHARE, "dirs")
    with mounted() as m:
        j = lambda n: os.path.join(m, "dirs", n)  # noqa: E731
        fs.clear_requests()
        os.mkdir(j("new"))
        ch = [(kind_of(r), rel_of(r[1])) for r in changes(fs.requests)]
        check_eq([c for c in ch if c[0] != "dir_properties"], [("create_dir", "dirs/new")],
                 "requests of mkdir: one Create Directory, no marker file (%s)" % ch)
        check(fs.is_dir(SHARE, "dirs/new"), "dirs/new is not a directory on the share")
        check_eq(fs.listing(SHARE, "dirs"), ["new"], "dirs/ on the share after mkdir")
        check_eq(fs.listing(SHARE, "dirs/new"), [], "dirs/new on the share after mkdir")
        check_eq(os.listdir(j("new")), [], "ls of the new directory")
        expect_oserror(errno.EEXIST, os.mkdir, j("new"))
        os.makedirs(j("a/b/c"))
        for d in ("dirs/a", "dirs/a/b", "dirs/a/b/c"):
            check(fs.is_dir(SHARE, d), "%s is not a directory on the share" % d)
        check_eq(fs.listing(SHARE, "dirs/a/b/c"), [], "dirs/a/b/c on the share")
        write_path(j("a/b/c/f.txt"), b"in c\n")
        check_share_file("dirs/a/b/c/f.txt", b"in c\n")
        for d in ("a/b/c", "a"):
            expect_oserror(errno.ENOTEMPTY, os.rmdir, j(d))
            check(fs.is_dir(SHARE, "dirs/" + d), "dirs/%s gone after a refused rmdir" % d)
        check_share_file("dirs/a/b/c/f.txt", b"in c\n", "dirs/a/b/c/f.txt after refused rmdir")
        fs.clear_requests()
        os.rmdir(j("new"))
        ch = [(kind_of(r), rel_of(r[1])) for r in changes(fs.requests)]
        # (a Delete File of the same name first, refused by the service, is waste only)
        check_eq([c for c in ch if c != ("delete_file", "dirs/new")],
                 [("delete_dir", "dirs/new")], "requests of rmdir: one Delete Directory")
        check(not fs.exists(SHARE, "dirs/new"), "dirs/new still on the share after rmdir")
        expect_oserror(errno.ENOENT, os.stat, j("new"))
        os.unlink(j("a/b/c/f.txt"))
        for d in ("a/b/c", "a/b", "a"):
            os.rmdir(j(d))
        check_eq(fs.listing(SHARE, "dirs"), [], "dirs/ on the share in the end")
        check_eq(os.listdir(os.path.join(m, "dirs")), [], "ls of dirs/ in the end")


def test_rename_and_unlink_files():
    big = data(MAX_RANGE + 3, 40)
    odd = "na me 100%#ü.txt"  # characters a URL must encode, in the rename source too
    fs.put_file(SHARE, "ren/a.bin", big)
    fs.put_file(SHARE, "ren/" + odd, b"odd name\n")
    fs.put_file(SHARE, "ren/target.txt", b"replaced\n")
    fs.put_file(SHARE, "ren/gone.txt", b"to be deleted\n")
    fs.mkdir(SHARE, "ren/into")
    with mounted() as m:
        j = lambda n: os.path.join(m, "ren", n)  # noqa: E731
        fs.clear_requests()
        os.rename(j("a.bin"), j("b.bin"))
        ch = changes(fs.requests)
        check_eq([kind_of(r) for r in ch], ["rename_file"], "requests of a file rename (%s)" %
                 [show(r) for r in ch])
        check_eq((rel_of(ch[0][1]), rename_source(ch[0])), ("ren/b.bin", "ren/a.bin"),
                 "the Rename File request's target and source")
        check(not fs.exists(SHARE, "ren/a.bin"), "ren/a.bin still on the share")
        check_share_file("ren/b.bin", big, "ren/b.bin after the rename")
        expect_oserror(errno.ENOENT, os.stat, j("a.bin"))
        check_mount_file(j("b.bin"), big, "ren/b.bin")
        # an odd name, into another directory
        os.rename(j(odd), j("into/ré named #2.txt"))
        check_share_file("ren/into/ré named #2.txt", b"odd name\n")
        check(not fs.exists(SHARE, "ren/" + odd), "the odd name still on the share")
        # over an existing file: replaced
        os.rename(j("b.bin"), j("target.txt"))
        check_share_file("ren/target.txt", big, "ren/target.txt after a rename over it")
        check(not fs.exists(SHARE, "ren/b.bin"), "ren/b.bin still on the share")
        check_mount_file(j("target.txt"), big, "ren/target.txt after a rename over it")
        # a file written here, then renamed
        write_path(j("fresh.txt"), b"fresh\n")
        os.rename(j("fresh.txt"), j("into/fresh.txt"))
        check_share_file("ren/into/fresh.txt", b"fresh\n")
        # unlink: one Delete File
        fs.clear_requests()
        os.unlink(j("gone.txt"))
        check_eq([(kind_of(r), rel_of(r[1])) for r in changes(fs.requests)],
                 [("delete_file", "ren/gone.txt")], "requests of unlink")
        check(not fs.exists(SHARE, "ren/gone.txt"), "ren/gone.txt still on the share")
        expect_oserror(errno.ENOENT, os.stat, j("gone.txt"))
        expect_oserror(errno.ENOENT, os.unlink, j("gone.txt"))
        check_eq(sorted(os.listdir(os.path.join(m, "ren"))), ["into", "target.txt"],
                 "ls of ren/")
    check_eq(fs.listing(SHARE, "ren"), ["into", "target.txt"], "ren/ on the share")
    check_eq(fs.listing(SHARE, "ren/into"), ["fresh.txt", "ré named #2.txt"],
             "ren/into on the share")


def test_rename_directory_is_one_request():
    tree = {"a.txt": b"alpha\n", "sub/b.bin": data(MAX_RANGE + 1, 50),
            "sub/deeper/c.txt": b"c\n"}
    for rel, d in tree.items():
        fs.put_file(SHARE, "mvd/src dir/" + rel, d)
    fs.mkdir(SHARE, "mvd/src dir/empty")
    fs.put_file(SHARE, "mvd/src dir2/keep.txt", b"a sibling whose name extends the source\n")
    want = share_tree("mvd/src dir")
    check_eq(len(want), 6, "entries of the tree before the rename")
    with mounted() as m:
        j = lambda n: os.path.join(m, "mvd", n)  # noqa: E731
        check_eq(local_tree(j("src dir")), want, "the tree through the mount before the rename")
        fs.clear_requests()
        os.rename(j("src dir"), j("dst"))
        ch = changes(fs.requests)
        check_eq([kind_of(r) for r in ch], ["rename_dir"],
                 "requests of a directory rename (%s)" % [show(r) for r in ch])
        check_eq((rel_of(ch[0][1]), rename_source(ch[0])), ("mvd/dst", "mvd/src dir"),
                 "the Rename Directory request's target and source")
        check_eq(share_tree("mvd/dst"), want, "the tree on the share under the new name")
        check_eq(fs.listing(SHARE, "mvd"), ["dst", "src dir2"], "mvd/ on the share")
        expect_oserror(errno.ENOENT, os.stat, j("src dir"))
        check_eq(sorted(os.listdir(os.path.join(m, "mvd"))), ["dst", "src dir2"], "ls of mvd/")
        check_eq(local_tree(j("dst")), want, "the tree through the mount under the new name")
        check_eq(read_path(j("dst/sub/b.bin")), tree["sub/b.bin"], "dst/sub/b.bin")
        # and into another directory, whose files stay
        os.rename(j("dst"), j("src dir2/moved"))
        check_eq(share_tree("mvd/src dir2/moved"), want, "the tree moved into src dir2/")
        check_share_file("mvd/src dir2/keep.txt", b"a sibling whose name extends the source\n")
    check_eq(fs.listing(SHARE, "mvd"), ["src dir2"], "mvd/ on the share in the end")


# --------------------------------------------------------------------------------------
# test_fsx.py's model run, on a share

FSX_SEED = 20270117
FSX_OPS = 2000
FSX_MAX = 5 * MiB + 3  # files cross the 4 MiB range edge


class ShareTarget:
    """A ferry mount of SHARE for the fsx model run; the share is read with the server's
    helpers."""

    store_checks = True

    def __init__(self, opts):
        self.opts = opts
        self.root = ft.make_tmpdir("fsxmnt")
        self._mount()

    def _mount(self):
        cp = ft.mount(url(), self.root, opts=self.opts, env=env())
        if cp.returncode != 0 or not ft.is_mounted(self.root):
            raise ft.MountError("ferry mount failed: exit %s: %s" % (
                cp.returncode, cp.stderr.strip()[-500:]))

    def unmount(self):
        cp = ft.unmount(self.root)
        check(cp is not None and cp.returncode == 0, "ferry unmount: %s" % (
            cp and (cp.stderr.strip() or cp.returncode)))
        check(not ft.is_mounted(self.root), "still mounted after ferry unmount")

    def remount(self):
        self.unmount()
        self._mount()

    def store_bytes(self, rel):
        got = on_share(rel)
        if got is None:
            raise ft.CheckFailed("%s: no such file on the share (there: %s)" % (
                rel, fs.listing(SHARE, os.path.dirname(rel))))
        return got

    def store_names(self, prefix):
        # every name, .ferry-up- ones too: none may be left
        return sorted("%s/%s" % (prefix, n) for n in fs.listing(SHARE, prefix) or [])

    def finish(self):
        if ft.is_mounted(self.root):
            self.unmount()


class ShareFsx(fsxmod.Fsx):
    def replay(self):
        return "replay: FERRY_FSX_SEED=%d FERRY_FSX_OPS=%d python3 %s fsx_on_a_share" % (
            self.seed, self.ops, os.path.relpath(os.path.abspath(__file__)))


@ft.timeout(150)
def test_fsx_on_a_share():
    seed = int(os.environ.get("FERRY_FSX_SEED") or FSX_SEED)
    ops = int(os.environ.get("FERRY_FSX_OPS") or FSX_OPS)
    # writes straddle the 4 MiB range edge too
    fsxmod.EDGES = tuple(sorted(set(fsxmod.EDGES) | {MAX_RANGE}))
    t = ShareTarget(OPTS + ["block_size=256K"])
    run = None
    try:
        run = ShareFsx(t, "share", seed, ops, 3, FSX_MAX, remount_p=0.003)
        run.run()
    finally:
        # A failed run leaves its files open. They are closed before `ferry unmount`
        # runs: a child process closing its copies of them would flush them, and
        # their uploads go to the server in this process.
        for f in run.files if run else ():
            for h in f.fds:
                try:
                    os.close(h.fd)
                except OSError:
                    pass
            f.fds.clear()
        if ft.is_mounted(t.root):
            ft.unmount(t.root)


# --------------------------------------------------------------------------------------
# ferry cp

TREE = {
    "plain.txt": b"plain\n",
    "empty.bin": b"",
    "big.bin": None,  # 9 MiB + 7: three ranges, the last one short
    "with space & 100%#.txt": b"odd name\n",
    "ünïcödé.txt": "unicode\n".encode(),
    "sub/deeper/f.bin": None,  # 1 MiB + 3
}
EMPTY_DIRS = ["emptydir", "sub/empty inside"]


def write_tree(root):
    TREE["big.bin"] = data(9 * MiB + 7, 60)
    TREE["sub/deeper/f.bin"] = data(MiB + 3, 61)
    for rel, d in TREE.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(d)
    for d in EMPTY_DIRS:
        os.makedirs(os.path.join(root, d), exist_ok=True)


@ft.timeout(120)
def test_cp_tree_to_a_share_and_back():
    src = os.path.join(tmp, "tree")
    write_tree(src)
    want = local_tree(src)
    check_eq(len([v for v in want.values() if v[0] == "f"]), len(TREE), "files in the tree")
    # to an azureml:// URI of a folder that does not exist yet
    r = ferry("cp", "-r", src, uri("cpds/new/"))
    check_eq(r.returncode, 0, "ferry cp -r local -> datastore: %s" % r.stderr[-500:])
    check_eq(share_tree("cpds/new/tree"), want, "the tree on the share (datastore URI)")
    for d in EMPTY_DIRS:
        check_eq(fs.listing(SHARE, "cpds/new/tree/" + d), [], "empty folder %s on the share" % d)
    check_share_file("cpds/new/tree/big.bin", TREE["big.bin"])
    # to a share URL (-o kind=file), into an existing folder
    fs.mkdir(SHARE, "cpurl")
    r = ferry("cp", "-r", "-o", "kind=file", src, url("cpurl") + "/")
    check_eq(r.returncode, 0, "ferry cp -r local -> share URL: %s" % r.stderr[-500:])
    check_eq(share_tree("cpurl/tree"), want, "the tree on the share (URL)")
    check_eq(temps_on_share("cpds") + temps_on_share("cpurl"), [],
             "%s names left on the share" % TEMP)
    # and back, from each
    down = os.path.join(tmp, "down-ds")
    r = ferry("cp", "-r", uri("cpds/new/tree"), down)
    check_eq(r.returncode, 0, "ferry cp -r datastore -> local: %s" % r.stderr[-500:])
    check_eq(local_tree(down), want, "the tree copied back (datastore URI)")
    down = os.path.join(tmp, "down-url")
    r = ferry("cp", "-r", "-o", "kind=file", url("cpurl/tree"), down)
    check_eq(r.returncode, 0, "ferry cp -r share URL -> local: %s" % r.stderr[-500:])
    check_eq(local_tree(down), want, "the tree copied back (URL)")
    with open(os.path.join(down, "big.bin"), "rb") as f:
        check_eq(f.read(), TREE["big.bin"], "big.bin copied back")


# --------------------------------------------------------------------------------------
# Jobs

SEQ = "".join("%d\n" % i for i in range(1, 1000001)).encode()  # 6.9 MB: ranges


def run_job(path):
    r = ferry("run", path, timeout=120)
    m = re.search(r"^ferry run: (\S+): Queued$", r.stderr, re.M)
    r.id = m.group(1) if m else None
    left = [x["path"] for x in ft.mounts() if x["path"].startswith(runtmp + "/")]
    check_eq(left, [], "mounts the run left behind")
    return r


def run_output_job(name, mode, folder):
    """A job with one uri_folder output `out` (mode) at folder of the share; its command
    writes hello.txt, a file over 4 MiB in a new subfolder, and an empty subfolder.
    Checks what lands on the share."""
    job = os.path.join(tmp, name + ".yml")
    with open(job, "w") as f:
        f.write("""type: command
command: >-
  mkdir -p ${{outputs.out}}/deep ${{outputs.out}}/empty &&
  seq 1 1000000 > ${{outputs.out}}/deep/seq.txt &&
  printf '%s\\n' > ${{outputs.out}}/hello.txt &&
  echo the command ran
outputs:
  out:
    type: uri_folder
    mode: %s
    path: %s
""" % (mode, mode, uri(folder + "/")))
    r = run_job(job)
    check_eq(r.returncode, 0, "ferry run: %s" % r.stderr[-800:])
    check_eq(r.stdout, "the command ran\n", "the command's output")
    hello = ("%s\n" % mode).encode()
    check_share_file(folder + "/hello.txt", hello, "%s output hello.txt" % mode)
    check_share_file(folder + "/deep/seq.txt", SEQ, "%s output deep/seq.txt" % mode)
    check_eq(share_tree(folder), {
        "deep": ("d", None), "deep/seq.txt": ("f", sha(SEQ)), "empty": ("d", None),
        "hello.txt": ("f", sha(hello))}, "%s/ on the share" % folder)


@ft.timeout(120)
def test_job_rw_mount_output_on_a_share():
    fs.mkdir(SHARE, "jobout/mounted")
    run_output_job("rw_mount", "rw_mount", "jobout/mounted")


@ft.timeout(120)
def test_job_rw_mount_output_to_a_new_folder():
    # an output's folder does not exist before the run, as on blob storage
    run_output_job("rw_mount_new", "rw_mount", "jobout/new/mounted")


@ft.timeout(120)
def test_job_upload_output_on_a_share():
    run_output_job("upload", "upload", "jobout/uploaded")


@ft.timeout(120)
def test_batchai_job_with_a_file_share():
    given = b"read from the share by a Batch AI job\n"
    big = data(MAX_RANGE + 5, 70)
    fs.put_file(BATCH_SHARE, "in/data.txt", given)
    fs.put_file(BATCH_SHARE, "in/big.bin", big)
    root = "$AZ_BATCHAI_JOB_MOUNT_ROOT/afs"
    job = {"properties": {
        "nodeCount": 1,
        "experimentName": "ferry-files-batchai",
        "mountVolumes": {"azureFileShares": [{
            "accountName": fs.account,
            "azureFileUrl": fs.url(BATCH_SHARE),
            "relativeMountPath": "afs",
            "credentials": {"accountKey": ft.KEY}}]},
        "outputDirectories": [{"id": "MODEL", "pathPrefix": root + "/models"}],
        "stdOutErrPathPrefix": root + "/logs",
        "customToolkitSettings": {"commandLine": (
            "cat %(r)s/in/data.txt && cp %(r)s/in/big.bin $AZ_BATCHAI_OUTPUT_MODEL/big.bin && "
            "mkdir -p %(r)s/written && seq 1 1000000 > %(r)s/written/seq.txt && "
            "echo model=$AZ_BATCHAI_OUTPUT_MODEL") % {"r": root}}}}
    path = os.path.join(tmp, "batchai.json")
    with open(path, "w") as f:
        json.dump(job, f, indent=2)
    os.chmod(path, 0o600)
    r = run_job(path)
    check_eq(r.returncode, 0, "ferry run: %s" % r.stderr[-800:])
    check(r.id, "no run id on stderr: %r" % r.stderr[-300:])
    lines = r.stdout.splitlines()
    check_eq(lines[:1], [given.decode().rstrip("\n")], "what the command read from the share")
    check_eq(len(lines), 2, "lines the command printed: %r" % lines)
    check(lines[1].endswith("/afs/models/%s/outputs" % r.id), "AZ_BATCHAI_OUTPUT_MODEL: %r" %
          lines[1])

    def at(rel):
        got = fs.get_file(BATCH_SHARE, rel)
        check(got is not None, "%s: no such file on the share %s" % (rel, BATCH_SHARE))
        return got
    check_eq(at("written/seq.txt"), SEQ, "written/seq.txt, written by the command")
    check_eq(at("models/%s/outputs/big.bin" % r.id), big, "the output big.bin")
    check_eq(at("logs/%s/stdouterr/stdout.txt" % r.id).decode(), r.stdout,
             "stdout.txt in the share")
    check_eq(at("in/data.txt"), given, "the input, untouched")
    for text in (r.stdout, r.stderr):
        check(ft.KEY not in text and ft.KEY[:16] not in text, "ferry printed the account key")


def test_no_secret_in_any_output():
    check(outputs, "no ferry output collected")
    for text in outputs:
        check(ft.KEY not in text and ft.KEY[:16] not in text and ft.KEY[-16:] not in text,
              "ferry printed the account key")


if __name__ == "__main__":
    ft.run()
