#!/usr/bin/env python3
"""Azure Files shares as datastores (read side): ferry's Files client against the strict
Files REST test server of tests/lib/filesserver.py (Azurite has no Azure Files; that
server is written from the published REST reference, it is not Azure).

Byte-exact reads of odd sizes through a read-only mount, a directory of 6,000 files
listed in full (paged), empty directories, a file changed under an open handle,
transient faults through the fault-injecting proxy, a commit whose rename answer was lost,
`ferry cp -r` and `ferry ls` of a share, an `azure_file` datastore, and a job with
a file-share input (ro_mount and download).

Run: python3 tests/integration/test_files.py [test_name ...]
"""
import concurrent.futures
import errno
import hashlib
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, check_in  # noqa: E402
from filesserver import FilesServer  # noqa: E402
from httpproxy import HttpProxy  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
SHARE = "data"
MANY = 6000
SIZES = {"empty.bin": 0, "one.bin": 1, "page.bin": 4095, "pageplus.bin": 4097,
         "mib.bin": MiB + 3, "blocks.bin": 17 * MiB + 5}
READ_OPTS = ["kind=file", "ro", "block_size=1M"]

fs = None
az = None
tmp = None
runtmp = None


def setup():
    global fs, az, tmp, runtmp
    fs = FilesServer().start()
    az = ft.Azurite().start()  # the run store of the job test
    tmp = ft.make_tmpdir("files")
    runtmp = ft.make_tmpdir("filesrun")
    fs.create_share(SHARE)
    for i, (name, size) in enumerate(sorted(SIZES.items())):
        fs.put_file(SHARE, "odd/" + name, ft.gen_bytes(size, i))
    fs.mkdir(SHARE, "empty")
    fs.mkdir(SHARE, "nested/empty-inside")
    fs.put_file(SHARE, "nested/a/b/c.txt", b"deep\n")
    for i in range(MANY):
        fs.put_file(SHARE, "many/f%05d.txt" % i, b"%d\n" % i)
    fs.put_file(SHARE, "input/in.txt", b"input from a share\n")
    r = ferry("datastore", "add", "workspaceblobstore", "--endpoint", az.endpoint,
              "--container", "azureml-blobstore", "--credential", "emulator",
              "--create-container")
    check(r.returncode == 0, "datastore add workspaceblobstore: %s" % r.stderr)
    key = os.path.join(tmp, "key")
    with open(key, "w") as f:
        f.write(ft.KEY)
    os.chmod(key, 0o600)
    r = ferry("datastore", "add", "shares", "--type", "azure_file", "--endpoint", fs.endpoint,
              "--share", SHARE, "--account-key-file", key)
    check(r.returncode == 0, "datastore add shares: %s" % r.stderr)


def teardown():
    if az:
        az.stop()
    if fs:
        fs.stop()


def env():
    return ft.ferry_env(extra={"TMPDIR": runtmp})


def ferry(*args, timeout=120):
    argv = [ft.ferry_bin()] + list(args)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=env(), cwd=tmp)
    out = subprocess.CompletedProcess(argv, r.returncode, r.stdout.decode("utf-8", "replace"),
                                      r.stderr.decode("utf-8", "replace"))
    ft.log("ferry %s -> %d | %s" % (" ".join(args)[:120], out.returncode,
                                    " | ".join(out.stderr.strip().splitlines())[-400:]))
    return out


def url(path=""):
    return fs.url(SHARE, path)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def test_reads_are_byte_exact():
    with ft.mounted(url(), opts=READ_OPTS, env=env()) as m:
        for i, (name, size) in enumerate(sorted(SIZES.items())):
            p = os.path.join(m, "odd", name)
            want = ft.gen_bytes(size, i)
            check_eq(os.stat(p).st_size, size, "st_size of %s" % name)
            check_eq(ft.sha256_file(p), sha(want), "sha256 of %s read whole" % name)
            if size > 10:
                with open(p, "rb") as f:
                    for off in (1, size // 2, size - 7):
                        f.seek(off)
                        check_eq(f.read(5000), want[off:off + 5000],
                                 "%s: 5000 bytes at %d" % (name, off))
        with open(os.path.join(m, "nested", "a", "b", "c.txt"), "rb") as f:
            check_eq(f.read(), b"deep\n", "a file three directories down")


def test_directories_are_real():
    with ft.mounted(url(), opts=READ_OPTS, env=env()) as m:
        check_eq(sorted(os.listdir(m)), ["empty", "input", "many", "nested", "odd"],
                 "the share's root")
        check_eq(os.listdir(os.path.join(m, "empty")), [], "an empty directory")
        check(os.path.isdir(os.path.join(m, "nested", "empty-inside")),
              "an empty directory inside another")
        check_eq(sorted(os.listdir(os.path.join(m, "nested"))), ["a", "empty-inside"],
                 "nested/")
        names = os.listdir(os.path.join(m, "many"))
        check_eq(len(names), MANY, "entries of a directory of %d files" % MANY)
        check_eq(sorted(names), ["f%05d.txt" % i for i in range(MANY)],
                 "names of the %d files" % MANY)
        lists = [r for r in fs.requests if r[2].get("comp") == "list" and
                 r[1].rstrip("/").endswith("/many")]
        check(len(lists) >= 2, "the 6,000 names came in %d list requests: not paged" %
              len(lists))
        try:
            os.mkdir(os.path.join(m, "new"))
            check(False, "mkdir on a read-only mount worked")
        except OSError as e:
            check_eq(e.errno, errno.EROFS, "mkdir on a read-only mount")


def test_changed_file_under_open_handle():
    fs.put_file(SHARE, "moving.bin", ft.gen_bytes(3 * MiB, 7))
    with ft.mounted(url(), opts=READ_OPTS + ["attr_timeout=0", "entry_timeout=0"],
                    env=env()) as m:
        fd = os.open(os.path.join(m, "moving.bin"), os.O_RDONLY)
        try:
            check_eq(os.pread(fd, 4096, 0), ft.gen_bytes(3 * MiB, 7)[:4096], "first read")
            fs.put_file(SHARE, "moving.bin", ft.gen_bytes(3 * MiB, 8))
            try:
                got = os.pread(fd, 4096, 2 * MiB + 5)
                check_eq(got, ft.gen_bytes(3 * MiB, 7)[2 * MiB + 5:2 * MiB + 5 + 4096],
                         "a read after the file changed gives the old bytes or fails")
            except OSError as e:
                check(e.errno in (errno.EIO, errno.ESTALE), "read after the change: %s" % e)
        finally:
            os.close(fd)


def test_transient_faults_are_retried():
    want = ft.gen_bytes(SIZES["blocks.bin"], sorted(SIZES).index("blocks.bin"))
    with HttpProxy(fs.port) as px:
        with ft.mounted(px.url(url()), opts=READ_OPTS, env=env()) as m:
            rules = [px.add_fault("GET", kind="get", blob_prefix="odd/blocks", status=503,
                                  count=2),
                     px.add_fault("GET", kind="get", blob_prefix="odd/blocks", reset=True,
                                  count=1),
                     px.add_fault("GET", kind="get", blob_prefix="odd/blocks",
                                  reset_after=100 * KiB, count=1)]
            check_eq(ft.sha256_file(os.path.join(m, "odd", "blocks.bin")), sha(want),
                     "sha256 of a read through 503s and resets")
            for r in rules:
                check_eq(r.hits, r.count, "hits of %r" % r)


def test_eight_readers_keep_their_connections():
    """8 files read at once through 8 HTTP workers: the connections are kept alive and
    reused (libcurl's cache kept 5, so nearly every request opened a new one)."""
    names = ["para/p%d.bin" % i for i in range(8)]
    for i, name in enumerate(names):
        fs.put_file(SHARE, name, ft.gen_bytes(6 * MiB + i, 50 + i))
    with ft.mounted(url(), opts=READ_OPTS + ["workers=8"], env=env()) as m:
        before = fs.connections_accepted()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            sums = list(pool.map(lambda n: ft.sha256_file(os.path.join(m, n)), names))
        opened = fs.connections_accepted() - before
    for i, name in enumerate(names):
        check_eq(sums[i], sha(ft.gen_bytes(6 * MiB + i, 50 + i)), name)
    ft.log("%d new connections for 8 readers of 6 blocks each" % opened)
    check(opened <= 8, "%d new connections for 8 readers: not kept alive" % opened)


def test_a_rename_whose_answer_was_lost_landed():
    """The commit's Rename File lands but its answer is lost (a reset after the server
    answered): the retry finds no hidden file, and the close still succeeds because the
    file is there with its size."""
    fs.mkdir(SHARE, "lost")
    data = ft.gen_bytes(3 * MiB + 3, 41)
    with HttpProxy(fs.port) as px:
        with ft.mounted(px.url(url()), opts=["kind=file", "block_size=1M"], env=env()) as m:
            with open(os.path.join(m, "lost", "f.bin"), "wb") as f:
                # the create's rename went through; the commit's loses its answer
                rule = px.add_fault("PUT", kind="rename", blob_prefix="lost/", reset=True,
                                    forward=True, count=1)
                f.write(data)
            check_eq(rule.hits, 1, "renames whose answer was lost")
    check_eq(sha(fs.get_file(SHARE, "lost/f.bin")), sha(data), "the file on the share")
    check_eq(fs.listing(SHARE, "lost"), ["f.bin"], "what the folder holds")


def test_cp_and_ls_of_a_share():
    dst = ft.make_tmpdir("cpdst")
    r = ferry("cp", "-r", "azureml://datastores/shares/paths/odd", dst)
    check_eq(r.returncode, 0, "ferry cp -r share -> local: %s" % r.stderr)
    for i, (name, size) in enumerate(sorted(SIZES.items())):
        with open(os.path.join(dst, "odd", name), "rb") as f:
            check_eq(sha(f.read()), sha(ft.gen_bytes(size, i)), "copied %s" % name)
    r = ferry("ls", "azureml://datastores/shares/paths/nested/")
    check_eq(r.returncode, 0, "ferry ls: %s" % r.stderr)
    check_eq(sorted(l.split()[-1] for l in r.stdout.splitlines() if l.strip()),
             ["a/", "empty-inside/"], "ferry ls of nested/")
    r = ferry("ls", "-o", "kind=file", url("input"))
    check_eq(r.returncode, 0, "ferry ls -o kind=file URL: %s" % r.stderr)
    check_in("in.txt", r.stdout, "ferry ls of a share URL")


def test_job_with_a_share_input():
    job = os.path.join(tmp, "job.yml")
    with open(job, "w") as f:
        f.write("""type: command
command: cat ${{inputs.mounted}}/in.txt ${{inputs.copied}}/in.txt
inputs:
  mounted:
    type: uri_folder
    path: azureml://datastores/shares/paths/input/
    mode: ro_mount
  copied:
    type: uri_folder
    path: azureml://datastores/shares/paths/input/
    mode: download
""")
    r = ferry("run", job)
    check_eq(r.returncode, 0, "ferry run: %s" % r.stderr[-600:])
    check_eq(r.stdout, "input from a share\n" * 2, "what the command read from the share")


if __name__ == "__main__":
    ft.run()
