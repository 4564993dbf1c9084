#!/usr/bin/env python3
"""ferry's command line behaves one way everywhere (tools/cli/cli.h): every `ferry X
--help` prints X's help on stdout and exits 0; an unknown flag is named on stderr, with
the closest known flag when one is close, exit 2; usage errors exit 2, failures 1.
`ferry cp` off a terminal prints one summary line. Paths a user gives are taken from the
caller's folder: a relative mountpoint, cache_dir= and account_key_file=, and `ferry
unmount` of the same relative path. A mountpoint whose name has a space is seen as
mounted (busy to a second mount) and unmounts.

Run: python3 tests/integration/test_cli.py [test_name ...]
"""
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, check_in  # noqa: E402

CONTAINER = "clitest"
HELLO = b"hello from the cli test\n"

az = None
URL = None


def setup():
    global az, URL
    az = ft.Azurite().start()
    c = az.client().with_container(CONTAINER)
    c.create_container()
    c.put_blob("hello.txt", HELLO)
    URL = az.url(CONTAINER)


def teardown():
    az.stop()


def ferry(args, cwd=None, env=None, timeout=60):
    """Runs ferry ARGS (not on a terminal): (exit status, stdout, stderr)."""
    r = subprocess.run([ft.ferry_bin()] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout, env=env or ft.ferry_env(),
                       cwd=cwd or ft.tmp_root())
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


# --------------------------------------------------------------------------------------

HELP = (
    ([], "ferry mount"),
    (["mount"], "ferry mount"),
    (["unmount"], "ferry unmount"),
    (["run"], "ferry run"),
    (["datastore"], "ferry datastore"),
    (["datastore", "add"], "ferry datastore add"),
    (["datastore", "list"], "ferry datastore list"),
    (["datastore", "show"], "ferry datastore show"),
    (["datastore", "remove"], "ferry datastore remove"),
    (["cp"], "ferry cp"),
    (["ls"], "ferry ls"),
)


def test_help_of_every_command():
    for cmd, usage in HELP:
        for flag in ("--help", "-h"):
            rc, out, err = ferry(cmd + [flag])
            what = "ferry %s" % " ".join(cmd + [flag])
            check_eq(rc, 0, "exit status of %s (stderr %r)" % (what, err[-300:]))
            check_eq(err, "", "stderr of %s" % what)
            check(out.startswith("usage: "), "%s: stdout starts %r, want 'usage: '" % (what, out[:60]))
            check_in(usage, out, "stdout of %s" % what)


def test_version_names_the_libraries_it_runs_with():
    for args in (["--version"], ["version"]):
        rc, out, err = ferry(args)
        check_eq(rc, 0, "ferry %s (stderr %r)" % (args[0], err))
        lines = out.splitlines()
        check(re.match(r"ferry \d+\.\d+\.\d+$", lines[0]), "first line %r" % lines[0])
        for lib in (r"libfuse 3\.\d+", r"libcurl \d+\.\d+\.\d+ \(OpenSSL/3\.",
                    r"OpenSSL 3\.\d+", r"libxml2 2\.\d+\.\d+, lz4 \d"):
            check(any(re.match(lib, l) for l in lines), "%s in %r" % (lib, out))


def test_mount_help_names_every_option():
    """Every option of docs/configuration.md's table is in `ferry mount --help`, and
    every option that help names is in the table."""
    with open(os.path.join(ft.SRC, "docs", "configuration.md"), encoding="utf-8") as f:
        doc = f.read()
    table = doc[doc.index("| option | default | meaning |"):]
    table = table[:table.index("\n\n")]
    documented = set()
    for row in table.splitlines()[2:]:
        for name in re.findall(r"`([a-z_]+)[=`]", row.replace("\\|", "/").split("|")[1]):
            documented.add(name)
    rc, out, _ = ferry(["mount", "--help"])
    check_eq(rc, 0, "ferry mount --help")
    named = set()
    for line in out[out.index("Options (-o):"):].splitlines()[1:]:
        if not line.startswith("  ") or line.startswith("   "):
            continue  # the end, or a description's next line
        for token in re.split(r"\s{2,}", line.strip())[0].split(", "):
            named.add(token.split("=")[0])
    check(len(documented) >= 25, "options found in docs/configuration.md: %d" % len(documented))
    check_eq(sorted(documented - named), [], "documented options --help leaves out")
    check_eq(sorted(named - documented), [], "options --help names that are not documented")


UNKNOWN = (
    (["mount", "--forground", "u", "m"], "--forground", "--foreground"),
    (["unmount", "--lazzy", "m"], "--lazzy", "--lazy"),
    (["run", "--hlep", "job.yml"], "--hlep", "--help"),
    (["datastore", "add", "x", "--acount", "a"], "--acount", "--account"),
    (["datastore", "add", "x", "--containr", "c"], "--containr", "--container"),
    (["datastore", "show", "--hepl", "x"], "--hepl", "--help"),
    (["cp", "--quite", "a", "b"], "--quite", "--quiet"),
    (["ls", "--lnog", "u"], "--lnog", "--long"),
    (["--hepl"], "--hepl", "--help"),
    (["cp", "--frobnicate", "a", "b"], "--frobnicate", None),
    (["mount", "-x", "u", "m"], "-x", None),
)


def test_unknown_flags_are_named_with_a_suggestion():
    for args, flag, suggestion in UNKNOWN:
        rc, out, err = ferry(args)
        what = "ferry %s" % " ".join(args)
        check_eq(rc, 2, "exit status of %s (stderr %r)" % (what, err[-300:]))
        check_eq(out, "", "stdout of %s" % what)
        first = err.splitlines()[0] if err else ""
        check_in("unknown flag '%s'" % flag, first, "first line on stderr of %s" % what)
        if suggestion:
            check_in("did you mean '%s'?" % suggestion, first, "first line on stderr of %s" % what)
        else:
            check("did you mean" not in first, "%s suggested something: %r" % (what, first))
        check_in("usage:", err, "stderr of %s" % what)


def test_unknown_commands_and_usage_errors_exit_2():
    mnt = ft.make_tmpdir("mnt")
    cases = (
        (["moutn"], "did you mean 'mount'?"),
        (["datastore", "ad", "x"], "did you mean 'add'?"),
        (["datastore"], "give a subcommand"),
        (["mount", URL], "give a URL and a MOUNTPOINT"),
        (["mount", URL, mnt, "-o"], "needs a value"),
        (["mount", URL, mnt, "-o", "no_such_option"], "no_such_option"),
        (["mount", URL, mnt, "-o", "block_size=3M"], "block_size"),
        (["mount", URL, mnt, "-o", "cache_mem=lots"], "cache_mem"),
        (["unmount"], "give one MOUNTPOINT"),
        (["run"], "give one JOBFILE"),
        (["run", "a.yml", "b.yml"], "give one JOBFILE"),
        (["datastore", "add", "--account", "a", "--container", "c"], "give one NAME"),
        (["datastore", "add", "x", "--account"], "'--account' needs a value"),
        (["datastore", "show"], "give one NAME"),
        (["datastore", "list", "extra"], "no arguments"),
        (["cp", "a"], "give one SRC and one DST"),
        (["cp", "a", "b"], "both local paths"),
        (["cp", "-o", "workers=0", URL + "/hello.txt", "b"], "workers"),
        (["ls"], "give one URI"),
        (["ls", "not-a-uri"], "not a datastore URI"),
        (["cp", "--recursive=yes", "a", "b"], "flag '--recursive' takes no value"),
        (["job", "download", "r1", "--all=x"], "flag '--all' takes no value"),
    )
    for args, needle in cases:
        rc, out, err = ferry(args)
        what = "ferry %s" % " ".join(args)
        check_eq(rc, 2, "exit status of %s (stderr %r)" % (what, err[-300:]))
        check_eq(out, "", "stdout of %s" % what)
        check_in(needle, err, "stderr of %s" % what)
    check(not ft.is_mounted(mnt), "%s got mounted" % mnt)


def test_failures_exit_1():
    mnt = ft.make_tmpdir("mnt")
    dead = "http://127.0.0.1:%d/%s/%s" % (ft.free_port(), ft.ACCOUNT, CONTAINER)
    cases = (
        (["unmount", mnt], "not mounted"),
        (["mount", URL, os.path.join(mnt, "absent")], "does not exist"),
        (["ls", URL + "/absent.txt"], "no such file"),
        (["ls", dead + "/"], "connect"),
        (["cp", URL + "/absent.txt", os.path.join(mnt, "x")], "no such file"),
        (["datastore", "show", "absent"], "absent"),
    )
    for args, needle in cases:
        rc, out, err = ferry(args)
        what = "ferry %s" % " ".join(args)
        check_eq(rc, 1, "exit status of %s (stderr %r)" % (what, err[-300:]))
        check_in(needle, err.lower(), "stderr of %s" % what)


def test_cp_prints_a_summary_off_a_terminal():
    src = ft.make_tmpdir("cpsrc")
    data = {"a.bin": ft.gen_bytes(100000, seed=7), "sub/b.txt": b"bee\n"}
    for name, content in data.items():
        os.makedirs(os.path.dirname(os.path.join(src, name)), exist_ok=True)
        with open(os.path.join(src, name), "wb") as f:
            f.write(content)
    rc, out, err = ferry(["cp", "-r", src + "/", URL + "/up/"])
    check_eq(rc, 0, "exit status of ferry cp -r (stderr %r)" % err[-300:])
    lines = out.splitlines()
    check_eq(len(lines), 1, "lines ferry cp printed on stdout (%r)" % out)
    m = re.fullmatch(r"copied (\d+) files?, (\d+) bytes, in (\d+\.\d) s", lines[0])
    check(m is not None, "summary line %r is not 'copied N files, N bytes, in S s'" % lines[0])
    check_eq((int(m.group(1)), int(m.group(2))),
             (len(data), sum(len(v) for v in data.values())), "files and bytes in the summary")
    got = az.client().with_container(CONTAINER).get_blob("up/a.bin")
    check_eq(got, data["a.bin"], "up/a.bin after the copy")

    rc, out, err = ferry(["cp", "-q", URL + "/up/sub/b.txt", os.path.join(src, "back.txt")])
    check_eq(rc, 0, "exit status of ferry cp -q (stderr %r)" % err[-300:])
    check_eq(out, "", "stdout of ferry cp -q")
    with open(os.path.join(src, "back.txt"), "rb") as f:
        check_eq(f.read(), data["sub/b.txt"], "back.txt")


def test_relative_paths_are_the_callers():
    """ferry mount URL mnt -o cache_dir=cache,account_key_file=key from a folder mounts at
    that folder's mnt (not at /mnt: the daemon works from /), keeps its cache there, reads
    the key there; ferry unmount mnt from the same folder unmounts it."""
    cwd = ft.make_tmpdir("cwd")
    name = "mnt-%d" % os.getpid()  # no such folder at /: a mount there would fail
    mnt = os.path.join(cwd, name)
    os.mkdir(mnt)
    os.mkdir(os.path.join(cwd, "cache"))
    fd = os.open(os.path.join(cwd, "key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(ft.KEY + "\n")
    ft._register_mount(ft._canon(mnt))
    ft._register_mount("/" + name)
    env = ft.ferry_env(account=None, key=None)  # the key only from the relative file
    try:
        rc, out, err = ferry(["mount", URL, name, "-o", "cache_dir=cache,account_key_file=key"],
                             cwd=cwd, env=env)
        check_eq(rc, 0, "exit status of ferry mount with a relative mountpoint (stderr %r)" % err)
        check(ft.is_mounted(mnt), "%s is not mounted after ferry mount %s from %s" % (mnt, name, cwd))
        check(not ft.is_mounted("/" + name), "ferry mounted at /%s" % name)
        with open(os.path.join(mnt, "hello.txt"), "rb") as f:
            check_eq(f.read(), HELLO, "hello.txt through the relative mount")
        cached = [f for _, _, files in os.walk(os.path.join(cwd, "cache")) for f in files]
        check(cached, "nothing in the relative cache_dir %s/cache after a read" % cwd)
        rc, out, err = ferry(["unmount", name], cwd=cwd)
        check_eq(rc, 0, "exit status of ferry unmount %s (stderr %r)" % (name, err))
        check(ft.wait_unmounted(mnt), "%s still mounted after ferry unmount %s" % (mnt, name))
    finally:
        ft.unmount(mnt)
        if ft.is_mounted("/" + name):
            ft.unmount("/" + name)


def test_mountpoint_with_a_space():
    mnt = os.path.join(ft.make_tmpdir("space"), "my data")
    os.mkdir(mnt)
    with ft.mounted(URL, mnt):
        with open(os.path.join(mnt, "hello.txt"), "rb") as f:
            check_eq(f.read(), HELLO, "hello.txt under a mountpoint with a space")
        cp = ft.mount(URL, mnt)
        check_eq(cp.returncode, 1, "exit status of a second mount at %r (stderr %r)" % (mnt, cp.stderr))
        check_in("busy", cp.stderr, "stderr of a second mount at %r" % mnt)
        rc, out, err = ferry(["unmount", mnt])
        check_eq(rc, 0, "exit status of ferry unmount %r (stderr %r)" % (mnt, err))
        check(ft.wait_unmounted(mnt), "%r still mounted after ferry unmount" % mnt)
        rc, out, err = ferry(["unmount", mnt])
        check_eq(rc, 1, "exit status of ferry unmount of %r, no longer mounted" % mnt)
        check_in("not mounted", err, "stderr of ferry unmount of %r, no longer mounted" % mnt)


if __name__ == "__main__":
    ft.run()
