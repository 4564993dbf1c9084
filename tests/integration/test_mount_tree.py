#!/usr/bin/env python3
"""ferry mount, namespace: directories from '/' in blob names, odd names, a 6,000-entry
directory, folder marker blobs (hdi_isfolder=true), missing paths, `ls -l`.

Run: python3 tests/integration/test_mount_tree.py [test_name ...]
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
from ferrytest import check, check_eq  # noqa: E402

CONTAINER = "treetest"
MARKER = {"hdi_isfolder": "true"}

# Names that break naive URL encoding or decoding (each lives in names/).
ODD_NAMES = [
    "with space.txt",
    "100%.txt",
    "a+b.txt",
    "hash#tag.txt",
    "what?.txt",
    "k=v&x;y.txt",
    "literal%20not-space.txt",
    "plus+and space #mix%.txt",
    "~tilde'quote!(x)*.txt",
    "ünïcödé ✓.txt",
]
BIG_N = 6000

FILES = {
    "rootfile.txt": b"at the root\n",
    "a/top.txt": b"top\n",
    "a/b/sibling.txt": b"sibling of c\n",
    "a/b/c/file": b"deep file\n",
    "données/naïve ✓.txt": "naïve ✓\n".encode(),
    "données/日本語/文書.txt": "文書\n".encode(),
    "both/child.txt": b"child of a marker-and-prefix\n",
    "sizes/s0": b"",
    "sizes/s1": b"1",
    "sizes/s10": b"0123456789",
    "sizes/s1000": ft.gen_bytes(1000, seed=10),
    "sizes/s123457": ft.gen_bytes(123457, seed=11),
    "sizes/with space 77": ft.gen_bytes(77, seed=12),
}
FILES.update({"names/" + n: ("content of %s\n" % n).encode() for n in ODD_NAMES})
BIG = {"big/f%05d.txt" % i: b"%d\n" % i * (i % 5) for i in range(BIG_N)}
MARKERS = ["empty", "both"]  # 0-byte blobs with hdi_isfolder=true

ROOT = {"rootfile.txt", "a", "données", "both", "empty", "sizes", "names", "big"}

az = None
client = None
URL = None


def setup():
    global az, client, URL
    az = ft.Azurite().start()
    client = az.client().with_container(CONTAINER)
    client.create_container()
    t0 = time.monotonic()
    items = [(n, d) for n, d in FILES.items()] + [(n, b"", MARKER) for n in MARKERS]
    items += list(BIG.items())
    client.put_many(items)
    ft.log("uploaded %d blobs in %.1f s" % (len(items), time.monotonic() - t0))
    check_eq(len(client.list_blobs()), len(items), "blobs in the container")
    URL = az.url(CONTAINER)


def teardown():
    az.stop()


def ls_l(path):
    """`ls -ln` of a directory: {name: (type char, size)}."""
    r = subprocess.run(["ls", "-ln", "--quoting-style=literal", "--time-style=+T", path],
                       capture_output=True, timeout=120,
                       env=dict(os.environ, LC_ALL="C.UTF-8"))
    check_eq(r.returncode, 0, "ls -l %s exit status (stderr: %s)" % (
        path, r.stderr.decode("utf-8", "replace").strip()[:300]))
    lines = r.stdout.decode("utf-8", "surrogateescape").splitlines()
    check(lines and lines[0].startswith("total "), "ls -l %s: no 'total' line" % path)
    out = {}
    for line in lines[1:]:
        f = line.split(None, 6)
        check(len(f) == 7 and f[5] == "T", "ls -l %s: unexpected line %r" % (path, line))
        check(f[6] not in out, "ls -l %s: %r listed twice" % (path, f[6]))
        out[f[6]] = (f[0][0], int(f[4]))
    return out


def test_nested_directories():
    with ft.mounted(URL) as m:
        check_eq(set(os.listdir(m)), ROOT, "listing of /")
        check_eq(set(os.listdir(os.path.join(m, "a"))), {"b", "top.txt"}, "listing of a")
        check_eq(set(os.listdir(os.path.join(m, "a/b"))), {"c", "sibling.txt"}, "listing of a/b")
        check_eq(set(os.listdir(os.path.join(m, "a/b/c"))), {"file"}, "listing of a/b/c")
        for d in ("a", "a/b", "a/b/c", "données", "données/日本語", "sizes", "names", "big"):
            st = os.stat(os.path.join(m, d))
            check(stat.S_ISDIR(st.st_mode), "%s is not a directory (mode %o)" % (d, st.st_mode))
        with open(os.path.join(m, "a/b/c/file"), "rb") as f:
            check_eq(f.read(), FILES["a/b/c/file"], "a/b/c/file contents")
        # d_type from readdir agrees with stat
        types = {e.name: e.is_dir(follow_symlinks=False) for e in os.scandir(m)}
        check_eq({n for n, d in types.items() if d}, ROOT - {"rootfile.txt"}, "directories in /")


def test_nested_lookup_without_listing():
    # A fresh mount: deep paths resolved by lookup alone, before any readdir.
    with ft.mounted(URL) as m:
        check_eq(os.stat(os.path.join(m, "a/b/c/file")).st_size, len(FILES["a/b/c/file"]),
                 "size of a/b/c/file")
        check(os.path.isdir(os.path.join(m, "données/日本語")), "données/日本語 is not a directory")
        with open(os.path.join(m, "données/日本語/文書.txt"), "rb") as f:
            check_eq(f.read(), FILES["données/日本語/文書.txt"], "données/日本語/文書.txt")


def test_special_names():
    with ft.mounted(URL) as m:
        # lookup and read before any listing, then the listing
        for n in ODD_NAMES:
            p = os.path.join(m, "names", n)
            want = FILES["names/" + n]
            check_eq(os.stat(p).st_size, len(want), "size of names/%s" % n)
            with open(p, "rb") as f:
                check_eq(f.read(), want, "contents of names/%s" % n)
        check_eq(set(os.listdir(os.path.join(m, "names"))), set(ODD_NAMES), "listing of names")
        check_eq(set(os.listdir(os.path.join(m, "données"))), {"naïve ✓.txt", "日本語"},
                 "listing of données")
        with open(os.path.join(m, "données/naïve ✓.txt"), "rb") as f:
            check_eq(f.read(), FILES["données/naïve ✓.txt"], "contents of données/naïve ✓.txt")


@ft.timeout(240)
def test_large_directory():
    with ft.mounted(URL) as m:
        d = os.path.join(m, "big")
        t0 = time.monotonic()
        names = os.listdir(d)
        ft.log("listdir of %d entries: %.2f s" % (len(names), time.monotonic() - t0))
        check_eq(len(names), BIG_N, "number of entries in big")
        check_eq(set(names), {n[4:] for n in BIG}, "names in big")
        t0 = time.monotonic()
        entries = ls_l(d)
        ft.log("ls -l of %d entries: %.2f s" % (len(entries), time.monotonic() - t0))
        check_eq(len(entries), BIG_N, "entries printed by ls -l big")
        wrong = [n for n, (t, size) in entries.items()
                 if t != "-" or size != len(BIG.get("big/" + n, b"?" * 999))]
        check(not wrong, "ls -l big: %d entries with a wrong type or size, e.g. %r -> %r" % (
            len(wrong), wrong[:1], [entries[w] for w in wrong[:1]]))


def test_marker_directory_without_children():
    with ft.mounted(URL) as m:
        p = os.path.join(m, "empty")
        st = os.stat(p)
        check(stat.S_ISDIR(st.st_mode), "marker blob 'empty' is not a directory (mode %o)" % st.st_mode)
        check_eq(os.listdir(p), [], "listing of empty")
        check_eq(os.listdir(m).count("empty"), 1, "times 'empty' is listed in /")
        ft.expect_oserror(errno.ENOENT, os.stat, os.path.join(p, "anything"))


def test_marker_and_prefix_listed_once():
    with ft.mounted(URL) as m:
        root = os.listdir(m)
        check_eq(root.count("both"), 1, "times 'both' is listed in /")
        p = os.path.join(m, "both")
        check(stat.S_ISDIR(os.stat(p).st_mode), "'both' is not a directory")
        check_eq(os.listdir(p), ["child.txt"], "listing of both")
        with open(os.path.join(p, "child.txt"), "rb") as f:
            check_eq(f.read(), FILES["both/child.txt"], "both/child.txt")
        check_eq(ls_l(m).get("both", ("?", 0))[0], "d", "type of 'both' in ls -l /")


def test_missing_paths():
    with ft.mounted(URL) as m:
        for rel in ("nope", "a/nope", "a/b/c/nope", "nope/deeper/still",
                    "a/to",            # prefix of a/top.txt
                    "a/b/c/fil",       # prefix of a/b/c/file
                    "rootfile",        # prefix of rootfile.txt
                    "A",               # names are case-sensitive
                    "big/f06000.txt", "names/with", "données/naïve"):
            ft.expect_oserror(errno.ENOENT, os.stat, os.path.join(m, rel))
            ft.expect_oserror(errno.ENOENT, os.open, os.path.join(m, rel), os.O_RDONLY)
        ft.expect_oserror(errno.ENOENT, os.listdir, os.path.join(m, "nope"))
        # asked again (negative cache) still missing, and a file is not a directory
        ft.expect_oserror(errno.ENOENT, os.stat, os.path.join(m, "nope"))
        ft.expect_oserror(errno.ENOTDIR, os.stat, os.path.join(m, "a/b/c/file/x"))
        ft.expect_oserror(errno.ENOTDIR, os.listdir, os.path.join(m, "rootfile.txt"))


def test_ls_l_sizes():
    with ft.mounted(URL) as m:
        got = ls_l(os.path.join(m, "sizes"))
        want = {n[len("sizes/"):]: ("-", len(d)) for n, d in FILES.items() if n.startswith("sizes/")}
        check_eq(got, want, "ls -l sizes")
        got = ls_l(os.path.join(m, "names"))
        want = {n: ("-", len(FILES["names/" + n])) for n in ODD_NAMES}
        check_eq(got, want, "ls -l names")
        got = ls_l(m)
        check_eq(set(got), ROOT, "names in ls -l /")
        check_eq(got["rootfile.txt"], ("-", len(FILES["rootfile.txt"])), "ls -l / rootfile.txt")
        check_eq({n for n, (t, _) in got.items() if t == "d"}, ROOT - {"rootfile.txt"},
                 "directories in ls -l /")


if __name__ == "__main__":
    ft.run()
