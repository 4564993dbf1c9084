#!/usr/bin/env python3
"""ferry mount, names a POSIX tree cannot show as they are (docs/semantics.md, "Names a
filesystem cannot show as they are"), one test per rule and case: a file and a
directory of one name, folder placeholders (`x/`), empty, `.` and `..` components,
components over 255 bytes, and from the mount side names over 255 bytes, names that are
not UTF-8, names with control characters, and paths over 1,024 characters.

Each test has a container of its own, prepares raw blobs with the independent REST
client, mounts, looks and changes through the mount, and ends by checking every blob in
the container: names and exact bytes (no blob lost, none left that should be gone).
Refused names are created through a counting proxy, to show that no request (for
names that are not UTF-8) or no writing request (the others) was made.

Azurite (as installed) stores every odd name used here: `d//h`, `d/./f`, `d/../g`,
`d/.`, `d/..`, `../e`, `./e`, `/lead` (sent literally; those tried percent-encoded, `.`
as %2E and `/` as %2F, too), and names with TAB, DEL and U+0085. It stores `a\\x01b`
too, but then answers 500 to every List Blobs of the container instead of listing it
with Encoded="true", so no test has a blob with a C0 control other than TAB.

Run: python3 tests/integration/test_names.py [test_name ...]
"""
import errno
import os
import stat
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, expect_oserror  # noqa: E402
from httpproxy import HttpProxy  # noqa: E402

MARKER = {"hdi_isfolder": "true"}
# A change made with the REST client, or one the kernel cached the old answer for,
# shows within a second or so.
SHORT = ["attr_timeout=1", "entry_timeout=1", "negative_timeout=1"]

A = b"the file x\n"
B = b"x/y, under the directory x\n"

az = None


def setup():
    global az
    az = ft.Azurite().start()


def teardown():
    az.stop()


# --------------------------------------------------------------------------------------
# Helpers

def new_container(name, blobs):
    """A new container holding blobs {name: bytes or (bytes, metadata)}; returns
    (client bound to it, its URL)."""
    c = az.client().with_container(name)
    c.create_container(exist_ok=False)
    for n, v in blobs.items():
        data, meta = v if isinstance(v, tuple) else (v, None)
        c.put_blob(n, data, metadata=meta)
    check_blobs(c, {n: (v[0] if isinstance(v, tuple) else v) for n, v in blobs.items()},
                "after preparing")
    return c, az.url(name)


def check_blobs(c, want, when):
    """The container holds exactly the blobs want {name: bytes}, each with its bytes.
    A file unlinked just after its close may still be open to libfuse (the kernel sends
    the close a moment after close() returns): it is hidden as .fuse_hidden* and deleted
    when the close arrives, so such names get up to 5 s to go."""
    deadline = time.monotonic() + 5
    got = set(c.list_blobs())
    while any(".fuse_hidden" in n for n in got - set(want)) and time.monotonic() < deadline:
        time.sleep(0.1)
        got = set(c.list_blobs())
    check_eq(got, set(want), "blobs in container %s %s" % (c.container, when))
    for n, data in want.items():
        check_eq(c.get_blob(n), data, "bytes of blob %r %s" % (n, when))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def kind(path):
    """'dir', 'file', 'link', 'other', 'missing', or 'error EIO' etc. (lstat). The kernel
    may answer EIO once for a name whose type changed under a cached inode."""
    try:
        m = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return "error %s" % errno.errorcode.get(e.errno, e.errno)
    return ("dir" if stat.S_ISDIR(m) else "file" if stat.S_ISREG(m)
            else "link" if stat.S_ISLNK(m) else "other")


def wait_kind(path, want, timeout=5.0):
    """Polls until path is of kind want; returns the last kind seen."""
    deadline = time.monotonic() + timeout
    while True:
        k = kind(path)
        if k == want or time.monotonic() > deadline:
            return k
        time.sleep(0.1)


def raw_entries(path):
    """Every name readdir returns for path, '.' and '..' included (os.listdir drops them),
    in order, duplicates kept."""
    r = subprocess.run(["ls", "-f", "-1", "--quoting-style=literal", path],
                       capture_output=True, timeout=60, env=dict(os.environ, LC_ALL="C.UTF-8"))
    check_eq(r.returncode, 0, "ls -f %s exit status (stderr: %s)" % (
        path, r.stderr.decode("utf-8", "replace").strip()[:300]))
    return r.stdout.decode("utf-8", "surrogateescape").split("\n")[:-1]


def check_listing(path, want, what):
    """readdir of path shows exactly the names want, each once, and '.'/'..' at most once."""
    raw = raw_entries(path)
    for dot in (".", ".."):
        check(raw.count(dot) <= 1, "%s: %r listed %d times: %r" % (what, dot, raw.count(dot), raw))
    names = [n for n in raw if n not in (".", "..")]
    check_eq(sorted(names), sorted(want), "%s (raw readdir %r)" % (what, raw))


def writes_seen(px):
    """Requests that change the store (PUT, POST, DELETE) since px's last reset."""
    return [r for r in px.requests() if r.method in ("PUT", "POST", "DELETE")]


def expect_refused(px, what, op, err, writes_only=False):
    """op() fails with errno err and sends no request through px (with writes_only: no
    request that changes the store)."""
    px.reset()
    try:
        r = op()
        got = "success"
        if isinstance(r, int):
            os.close(r)
    except OSError as e:
        got = errno.errorcode.get(e.errno, str(e.errno))
    seen = writes_seen(px) if writes_only else px.requests()
    want = errno.errorcode[err]
    shown = ["%s %s %r->%s" % (r.method, r.kind, (r.blob or "")[:40], r.status)
             for r in seen[:4]]
    check(got == want and not seen, "%s: %s and %d %srequests %s; want %s and none" % (
        what, got, len(seen), "writing " if writes_only else "", shown, want))


def creating_ops(src):
    """(what, op(path)) for every call that creates a name: a file, a directory, a node,
    a symlink, and src renamed to it."""
    return [
        ("open(O_CREAT)", lambda p: os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)),
        ("mkdir", lambda p: os.mkdir(p)),
        ("mknod(S_IFREG)", lambda p: os.mknod(p, stat.S_IFREG | 0o644)),
        ("symlink", lambda p: os.symlink("target", p)),
        ("rename to it", lambda p: os.rename(src, p)),
    ]


# --------------------------------------------------------------------------------------
# A blob x and blobs under x/

def test_file_and_directory_same_name():
    c, url = new_container("names-shadow", {"x": A, "x/y": B})
    with ft.mounted(url) as m:
        x = os.path.join(m, "x")
        # A fresh mount: the lookup alone (no listing yet) must say directory.
        check_eq(kind(x), "dir", "kind of x looked up before any listing")
        check_listing(m, ["x"], "listing of /")
        check_eq([(e.name, e.is_dir(follow_symlinks=False)) for e in os.scandir(m)],
                 [("x", True)], "scandir of / (name, is_dir)")
        check_eq(os.listdir(x), ["y"], "listing of x")
        check_eq(read(os.path.join(x, "y")), B, "contents of x/y")
        expect_oserror(errno.EISDIR, read, x)
    check_blobs(c, {"x": A, "x/y": B}, "after looking")


def test_file_shows_again_when_directory_empties():
    c, url = new_container("names-shadow-rm", {"x": A, "x/y": B})
    with ft.mounted(url, opts=SHORT) as m:
        x = os.path.join(m, "x")
        check_eq(kind(x), "dir", "kind of x while x/y exists")
        expect_oserror(errno.ENOTEMPTY, os.rmdir, x)
        check_blobs(c, {"x": A, "x/y": B}, "after rmdir x failed")
        os.unlink(os.path.join(x, "y"))
        check_blobs(c, {"x": A}, "after unlink x/y")
        check_eq(wait_kind(x, "file"), "file", "kind of x once x/y is gone")
        check_eq(os.stat(x).st_size, len(A), "size of x once x/y is gone")
        check_eq(read(x), A, "contents of x once x/y is gone")
        check_eq([(e.name, e.is_dir(follow_symlinks=False)) for e in os.scandir(m)],
                 [("x", False)], "scandir of / (name, is_dir) once x/y is gone")
        expect_oserror(errno.ENOTDIR, os.rmdir, x)
    check_blobs(c, {"x": A}, "after rmdir of the file x")
    with ft.mounted(url) as m:
        x = os.path.join(m, "x")
        check_eq(kind(x), "file", "kind of x on a fresh mount")
        check_eq(read(x), A, "contents of x on a fresh mount")
    check_blobs(c, {"x": A}, "at the end")


def test_rmdir_leaves_hidden_file():
    # x/ is a placeholder: x is an empty directory; its rmdir deletes x/, never x.
    c, url = new_container("names-shadow-ph", {"x": A, "x/": b""})
    with ft.mounted(url, opts=SHORT) as m:
        x = os.path.join(m, "x")
        check_eq(kind(x), "dir", "kind of x with placeholder x/")
        check_listing(x, [], "listing of x")
        os.rmdir(x)
        check_blobs(c, {"x": A}, "after rmdir x")
        check_eq(wait_kind(x, "file"), "file", "kind of x after rmdir x")
        check_eq(read(x), A, "contents of x after rmdir x")
    check_blobs(c, {"x": A}, "at the end")


def test_rename_directory_takes_hidden_file():
    c, url = new_container("names-shadow-mv", {"x": A, "x/y": B, "other": b"o"})
    with ft.mounted(url) as m:
        os.rename(os.path.join(m, "x"), os.path.join(m, "z"))
        check_blobs(c, {"z": A, "z/y": B, "other": b"o"}, "after rename x z")
        check_eq(kind(os.path.join(m, "x")), "missing", "kind of x after rename")
        check_eq(kind(os.path.join(m, "z")), "dir", "kind of z after rename")
        check_listing(os.path.join(m, "z"), ["y"], "listing of z")
        check_eq(read(os.path.join(m, "z/y")), B, "contents of z/y")
        check_listing(m, ["z", "other"], "listing of /")
    check_blobs(c, {"z": A, "z/y": B, "other": b"o"}, "at the end")


# --------------------------------------------------------------------------------------
# Folder placeholders: a blob named x/

def test_placeholder_rmdir():
    c, url = new_container("names-ph-rm", {"p/": b"", "keep": b"k"})
    with ft.mounted(url) as m:
        p = os.path.join(m, "p")
        check_eq(kind(p), "dir", "kind of p looked up before any listing")
        check_listing(m, ["p", "keep"], "listing of /")
        check_listing(p, [], "listing of p")
        check_eq(os.listdir(p), [], "os.listdir(p)")
        os.rmdir(p)
        check_blobs(c, {"keep": b"k"}, "after rmdir p")
        check_eq(kind(p), "missing", "kind of p after rmdir")
        check_listing(m, ["keep"], "listing of / after rmdir p")
    check_blobs(c, {"keep": b"k"}, "at the end")


def test_placeholder_and_marker_rmdir():
    c, url = new_container("names-ph-marker", {"q/": b"", "q": (b"", MARKER), "keep": b"k"})
    with ft.mounted(url) as m:
        q = os.path.join(m, "q")
        check_eq(kind(q), "dir", "kind of q (placeholder and marker)")
        check_listing(m, ["q", "keep"], "listing of /")
        check_listing(q, [], "listing of q")
        os.rmdir(q)
        check_blobs(c, {"keep": b"k"}, "after rmdir q (placeholder q/ and marker q)")
        check_eq(kind(q), "missing", "kind of q after rmdir")
    check_blobs(c, {"keep": b"k"}, "at the end")


def test_placeholder_rename():
    F = b"r/f content\n"
    c, url = new_container("names-ph-mv", {"r/": b"", "r/f": F})
    with ft.mounted(url) as m:
        check_listing(os.path.join(m, "r"), ["f"], "listing of r")
        os.rename(os.path.join(m, "r"), os.path.join(m, "s"))
        check_blobs(c, {"s/": b"", "s/f": F}, "after rename r s")
        check_eq(kind(os.path.join(m, "r")), "missing", "kind of r after rename")
        check_listing(os.path.join(m, "s"), ["f"], "listing of s")
        check_eq(read(os.path.join(m, "s/f")), F, "contents of s/f")
    check_blobs(c, {"s/": b"", "s/f": F}, "at the end")


def test_rename_directory_without_placeholder_logs_no_failure():
    # Most directories have no x/ placeholder: moving one must not look like a failure.
    c, url = new_container("names-mv-quiet", {"m/a": A, "m/sub/b": B})
    mnt = ft.make_tmpdir("mnt")
    fg = ft.Foreground(url, mnt, opts=["log_level=debug"])
    try:
        os.rename(os.path.join(mnt, "m"), os.path.join(mnt, "n"))
        check_listing(os.path.join(mnt, "n"), ["a", "sub"], "listing of n")
    finally:
        fg.stop()
    failures = [line for line in fg.output().splitlines()
                if "HTTP 404" in line or "BlobNotFound" in line]
    check(not failures, "the rename logged failures: %r" % failures[:3])
    check_blobs(c, {"n/a": A, "n/sub/b": B}, "after rename m n")


# --------------------------------------------------------------------------------------
# Empty, '.' and '..' components

# Azurite stores every one of these (see the module doc).
DOT_NAMES = ["d//h", "d/./f", "d/../g", "d/.", "d/..", "../e", "./e", "/lead"]
DOT_BLOBS = {n: ("odd blob %s\n" % n).encode() for n in DOT_NAMES}
OK = b"d/ok\n"


def test_dot_components_not_shown():
    want = dict(DOT_BLOBS, **{"d/ok": OK})
    c, url = new_container("names-dots", want)
    with ft.mounted(url) as m:
        d = os.path.join(m, "d")
        check_eq(kind(d), "dir", "kind of d")
        check_listing(m, ["d"], "listing of /")
        check_listing(d, ["ok"], "listing of d")
        check_eq(read(os.path.join(d, "ok")), OK, "contents of d/ok")
        os.unlink(os.path.join(d, "ok"))
        del want["d/ok"]
        check_blobs(c, want, "after unlink d/ok")
        # Removing d would hide the odd names under d/ for good.
        check_listing(d, [], "listing of d after unlink d/ok")
        expect_oserror(errno.ENOTEMPTY, os.rmdir, d)
    check_blobs(c, want, "at the end")


def test_dot_components_stay_on_rename():
    c, url = new_container("names-dots-mv", dict(DOT_BLOBS, **{"d/ok": OK}))
    with ft.mounted(url) as m:
        os.rename(os.path.join(m, "d"), os.path.join(m, "d2"))
        check_listing(os.path.join(m, "d2"), ["ok"], "listing of d2")
        check_eq(read(os.path.join(m, "d2/ok")), OK, "contents of d2/ok")
    # The odd names stay under d/; only d/ok moved.
    check_blobs(c, dict(DOT_BLOBS, **{"d2/ok": OK}), "after rename d d2")


# --------------------------------------------------------------------------------------
# Components over 255 bytes (Linux's NAME_MAX counts bytes)

LONG_OK = ["a" * 255, "é" * 127 + "a"]          # 255 bytes each
LONG_BAD = ["b" * 300, "é" * 128]               # 300 bytes; 256 bytes in 128 characters


def test_long_components():
    visible = {"long/" + n: ("%d bytes\n" % len(n.encode())).encode() for n in LONG_OK}
    hidden = {"long/" + n: b"too long\n" for n in LONG_BAD}
    hidden["long/" + "c" * 300 + "/inner"] = b"under a long directory name\n"
    c, url = new_container("names-long", dict(visible, **hidden))
    with ft.mounted(url) as m:
        d = os.path.join(m, "long")
        check_listing(d, LONG_OK, "listing of long")
        for n, data in visible.items():
            check_eq(read(os.path.join(m, n)), data, "contents of %s… (%d bytes)" % (
                n[:12], len(n.encode())))
        check_blobs(c, dict(visible, **hidden), "after reading")
        for n in visible:
            os.unlink(os.path.join(m, n))
        check_blobs(c, hidden, "after unlinking the names shown")
        check_listing(d, [], "listing of long after the unlinks")
        expect_oserror(errno.ENOTEMPTY, os.rmdir, d)
    check_blobs(c, hidden, "at the end")


def test_long_names_refused():
    c, url = new_container("names-long-new", {"src": SRC, "d": (b"", MARKER), "d/keep": b"k"})
    with HttpProxy(az.port) as px, ft.mounted(px.url(url)) as m:
        d = os.path.join(m, "d")
        src = os.path.join(m, "src")
        check_eq(read(src), SRC, "contents of src")
        ops = creating_ops(src)
        for n in LONG_BAD:
            p = os.path.join(d, n)
            expect_oserror(errno.ENAMETOOLONG, os.stat, p)  # a lookup says so too
            for what, op in ops:
                expect_refused(px, "%s of a %d-byte name" % (what, len(n.encode())),
                               lambda: op(p), errno.ENAMETOOLONG, writes_only=True)
        check_listing(d, ["keep"], "listing of d after the refusals")
        os.unlink(os.path.join(d, "keep"))
        os.rmdir(d)  # nothing hidden is left in it
        check_eq(kind(d), "missing", "kind of d after rmdir")
    check_blobs(c, {"src": SRC}, "at the end")


# --------------------------------------------------------------------------------------
# From the mount: names that are not UTF-8

BAD_UTF8 = [b"\xff\xfe", b"ok\xffname", b"\xc0\xaf",    # bytes no UTF-8 has; overlong '/'
            b"\xed\xa0\x80", b"trunc\xe6\x97"]            # a surrogate; a cut sequence
VALID = {"é.txt": "é, precomposed\n", "e\u0301.txt": "é, decomposed\n",
         "日本語/ファイル": "ファイル\n", "🙂.txt": "emoji\n", "Ωμέγα ℵ.txt": "Greek\n"}
SRC = b"src\n"


def test_invalid_utf8_refused():
    c, url = new_container("names-utf8", {"dir/src": SRC})
    with HttpProxy(az.port) as px, ft.mounted(px.url(url)) as m:
        d = os.path.join(os.fsencode(m), b"dir")
        src = os.path.join(d, b"src")
        check_eq(sorted(os.listdir(d)), [b"src"], "listing of dir")
        check_eq(read(src), SRC, "contents of dir/src")
        ops = [
            ("stat", lambda p: os.stat(p), errno.ENOENT),  # a lookup finds nothing
            ("open(O_CREAT)", lambda p: os.open(p, os.O_CREAT | os.O_WRONLY, 0o644), errno.EILSEQ),
            ("open(O_CREAT|O_EXCL)",
             lambda p: os.open(p, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644), errno.EILSEQ),
            ("mkdir", lambda p: os.mkdir(p), errno.EILSEQ),
            ("mknod(S_IFREG)", lambda p: os.mknod(p, stat.S_IFREG | 0o644), errno.EILSEQ),
            ("symlink", lambda p: os.symlink(b"target", p), errno.EILSEQ),
            ("rename to it", lambda p: os.rename(src, p), errno.EILSEQ),
        ]
        for bad in BAD_UTF8:
            p = os.path.join(d, bad)
            for what, op, err in ops:
                expect_refused(px, "%s of dir/%r" % (what, bad), lambda: op(p), err)
        check_eq(sorted(os.listdir(d)), [b"src"], "listing of dir after the refusals")
    check_blobs(c, {"dir/src": SRC}, "at the end")


def test_valid_utf8_any_script():
    c, url = new_container("names-unicode", {})
    with ft.mounted(url) as m:
        os.mkdir(os.path.join(m, "日本語"))
        for n, text in VALID.items():
            write(os.path.join(m, n), text.encode())
        check_listing(m, ["é.txt", "e\u0301.txt", "日本語", "🙂.txt", "Ωμέγα ℵ.txt"],
                      "listing of /")
        check_listing(os.path.join(m, "日本語"), ["ファイル"], "listing of 日本語")
        for n, text in VALID.items():
            check_eq(read(os.path.join(m, n)), text.encode(), "contents of %s" % n)
    want = {n: t.encode() for n, t in VALID.items()}
    want["日本語"] = b""  # mkdir's marker
    check_blobs(c, want, "after writing through the mount")
    with ft.mounted(url) as m:  # read back on a fresh mount, by lookup
        for n, text in VALID.items():
            check_eq(read(os.path.join(m, n)), text.encode(), "contents of %s, fresh mount" % n)
    check_blobs(c, want, "at the end")


# --------------------------------------------------------------------------------------
# From the mount: control characters

CTL_NEW = ["a\x01b", "tab\tname", "\x7f", "nel\u0085", "c1\u009f", "esc\x1b[0m", "nl\nx"]
# Azurite lists these (a \x01 would break its listing, see the module doc).
CTL_OLD = {"ctl/tab\tname": b"tab\n", "ctl/del\x7f": b"del\n", "ctl/nel\u0085": b"nel\n"}


def test_control_characters_refused():
    c, url = new_container("names-ctl", dict(CTL_OLD, **{"src": SRC}))
    with HttpProxy(az.port) as px, ft.mounted(px.url(url)) as m:
        src = os.path.join(m, "src")
        check_eq(read(src), SRC, "contents of src")
        ops = creating_ops(src)
        # The kernel looks a name up before creating it, and such a lookup may ask the
        # store (blobs with control characters exist), but Azurite answers 500 to a List
        # Blobs whose prefix holds a C0 control other than TAB/LF/CR. The root's listing,
        # made first, lets ferry answer those lookups without asking.
        check_listing(m, ["ctl", "src"], "listing of /")
        for n in CTL_NEW:
            p = os.path.join(m, n)
            for what, op in ops:
                expect_refused(px, "%s of %r" % (what, n), lambda: op(p), errno.EINVAL,
                               writes_only=True)
        check_listing(m, ["ctl", "src"], "listing of / after the refusals")
    check_blobs(c, dict(CTL_OLD, **{"src": SRC}), "after the refusals")


def test_control_characters_existing_blobs_shown():
    c, url = new_container("names-ctl-old", CTL_OLD)
    with ft.mounted(url) as m:
        check_listing(os.path.join(m, "ctl"), [n[4:] for n in CTL_OLD], "listing of ctl")
        for n, data in CTL_OLD.items():
            check_eq(read(os.path.join(m, n)), data, "contents of %r" % n)
    check_blobs(c, CTL_OLD, "at the end")


# --------------------------------------------------------------------------------------
# From the mount: paths over 1,024 characters (Azure's limit counts characters)

# Four directories of 200 characters (255 bytes each: within NAME_MAX), so a file in
# the deepest has a path of 804 + its name's length characters, and ~1.25 bytes a
# character: a 1,024-character path is 1,279 bytes.
DIRS = ["é" * 55 + ch * 145 for ch in "abcd"]
DEEP = "/".join(DIRS)
NAME_1024 = "ü" * 35 + "f" * 185     # the path DEEP/NAME_1024 has 1,024 characters
NAME_1025 = "ü" * 34 + "g" * 187     # 1,025 characters
NAME_1025_DIR = "ü" * 34 + "h" * 187


def test_path_too_long():
    assert len(DEEP + "/" + NAME_1024) == 1024 and len(DEEP + "/" + NAME_1025) == 1025
    assert max(len(n.encode()) for n in DIRS + [NAME_1024, NAME_1025]) == 255
    c, url = new_container("names-pathmax", {})
    data = b"a path of exactly 1,024 characters\n"
    with HttpProxy(az.port) as px, ft.mounted(px.url(url)) as m:
        deep = m
        for n in DIRS:
            deep = os.path.join(deep, n)
            os.mkdir(deep)
        ok = os.path.join(deep, NAME_1024)
        write(ok, data)
        check_eq(read(ok), data, "contents of the 1,024-character path")
        refusals = [
            ("open(O_CREAT)", errno.ENAMETOOLONG,
             lambda: os.open(os.path.join(deep, NAME_1025), os.O_CREAT | os.O_WRONLY, 0o644)),
            ("mkdir", errno.ENAMETOOLONG, lambda: os.mkdir(os.path.join(deep, NAME_1025_DIR))),
            # a rename creates a blob of the target's name
            ("rename", errno.ENAMETOOLONG,
             lambda: os.rename(ok, os.path.join(deep, NAME_1025))),
        ]
        for what, err, op in refusals:
            expect_refused(px, "%s of a 1,025-character path" % what, op, err, writes_only=True)
        check_listing(deep, [NAME_1024], "listing of the deepest directory")
    want = {"/".join(DIRS[:i + 1]): b"" for i in range(len(DIRS))}  # mkdir's markers
    want[DEEP + "/" + NAME_1024] = data
    check_blobs(c, want, "at the end")


ft.run()
