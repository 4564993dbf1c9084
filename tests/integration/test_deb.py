#!/usr/bin/env python3
"""The Debian package, end to end on this machine (as root): CPack builds it from the
build tree of $FERRY_BIN; `dpkg-deb` shows what is in it and its control fields; `dpkg
-i` installs it; the man pages and the bash completion are where man(1) and bash look;
`mount` mounts a container of a local Azurite from an fstab-style line (a temporary
fstab given with `mount -T`, never /etc/fstab) through /usr/sbin/mount.ferry, and with
`mount -t fuse.ferry` through /usr/sbin/mount.fuse.ferry, and a blob reads back
byte-exact; the unit template ferry-mount@.service passes `systemd-analyze verify`, and
its commands, run as systemd runs them with an instance's configuration, mount and
unmount; `dpkg --purge` then leaves no file of the package behind.

The package is purged in a finally, whatever fails. A ferry package installed before
the test is left alone: the test fails instead of replacing it.

Run: python3 tests/integration/test_deb.py [test_name ...]
"""
import os
import errno
import re
import shlex
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, check_in  # noqa: E402

CONTAINER = "deb"
BLOBS = {"hello.txt": b"hello from the ferry package\n", "data/part-0.bin": None}
# What the package must hold (paths as dpkg-deb -c prints them, without the leading ".")
WANT = ["/usr/bin/ferry", "/usr/sbin/mount.ferry", "/usr/sbin/mount.fuse.ferry",
        "/usr/share/man/man1/ferry.1.gz", "/usr/share/man/man8/mount.ferry.8.gz",
        "/usr/share/man/man8/mount.fuse.ferry.8.gz",
        "/usr/lib/systemd/system/ferry-mount@.service",
        "/usr/share/bash-completion/completions/ferry",
        "/usr/share/doc/ferry/README.md", "/usr/share/doc/ferry/docs/configuration.md",
        "/usr/share/doc/ferry/examples/mount.conf"]
# Debian 12's packages of the libraries ferry links, and fuse3 for fusermount3
DEPENDS = ["fuse3", "libfuse3-3", "libcurl4", "libssl3", "libxml2", "liblz4-1",
           "libyaml-0-2", "libjansson4"]
UNIT = "/usr/lib/systemd/system/ferry-mount@.service"
# systemd's search path for a command that is not an absolute path (systemd.service(5))
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

az = None
URL = None
keyfile = None
deb = None
contents = {}  # path -> dpkg-deb -c's mode string


def run(argv, timeout=120, env=None, ok=True):
    """Runs argv (output captured, text); with ok, it must exit 0."""
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout, env=env)
    ft.log("%s -> %d | %s" % (" ".join(argv)[:160], r.returncode,
                               " | ".join((r.stderr or "").strip().splitlines())[-300:]))
    if ok:
        check(r.returncode == 0, "%s: exit %d\nstdout: %s\nstderr: %s" % (
            " ".join(argv), r.returncode, r.stdout[-800:], r.stderr[-800:]))
    return r


def installed():
    r = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", "ferry"],
                       capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() not in ("", "not-installed", "config-files")


def setup():
    global az, URL, keyfile, deb
    check(os.geteuid() == 0, "test_deb installs a package: it needs root")
    check(not installed(), "a ferry package is already installed on this machine; the test "
          "would replace and purge it, so it stops (dpkg --purge ferry, then run it again)")
    build = os.path.dirname(os.path.abspath(ft.ferry_bin()))
    out = ft.make_tmpdir("deb")
    # The one command of the README, with the package written to a folder of ours
    run(["cpack", "-G", "DEB", "-B", out, "--config", os.path.join(build, "CPackConfig.cmake")],
        timeout=300)
    debs = [f for f in os.listdir(out) if f.endswith(".deb")]
    check_eq(len(debs), 1, "packages cpack made (%r)" % debs)
    check(re.fullmatch(r"ferry_[0-9][\w.~+-]*_[a-z0-9]+\.deb", debs[0]),
          "package file name %r is not ferry_VERSION_ARCH.deb" % debs[0])
    deb = os.path.join(out, debs[0])
    for line in run(["dpkg-deb", "-c", deb]).stdout.splitlines():
        fields = line.split(None, 5)
        path = fields[5].split(" -> ")[0]
        contents[path[1:].rstrip("/") or "/"] = fields[0]

    BLOBS["data/part-0.bin"] = ft.gen_bytes(2 * ft.MiB + 13, seed=77)
    az, URL = ft.azurite_with(CONTAINER, BLOBS)
    keyfile = ft.key_file()


def teardown():
    az.stop()


def system_env(extra=None):
    """The environment of a root shell: the system's PATH (no build folder on it), no
    AZURE_* credentials, HOME in our temp folder."""
    env = ft.ferry_env(account=None, key=None, extra=extra)
    env["PATH"] = SYSTEM_PATH
    return env


def read(path):
    with open(path, "rb") as f:
        return f.read()


def installed_daemons(marker):
    """Pids of /usr/bin/ferry processes whose command line holds marker."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            exe = os.readlink("/proc/%s/exe" % d)
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        if exe.startswith("/usr/bin/ferry") and marker in cmd:
            pids.append(int(d))
    return pids


def check_mount_reads(mnt, how):
    info = ft.mount_info(mnt)
    check(info is not None, "nothing mounted at %s after %s" % (mnt, how))
    check_eq(info["fstype"], "fuse.ferry", "type of the mount at %s (%s)" % (mnt, how))
    check_eq(sorted(os.listdir(mnt)), ["data", "hello.txt"], "listing of the mount (%s)" % how)
    check_eq(read(os.path.join(mnt, "hello.txt")), BLOBS["hello.txt"], "hello.txt (%s)" % how)
    got = read(os.path.join(mnt, "data", "part-0.bin"))
    check(got == BLOBS["data/part-0.bin"], "data/part-0.bin read through the mount (%s): "
          "%d bytes, sha256 %s, want %d bytes, %s" % (
              how, len(got), ft.sha256_bytes(got), len(BLOBS["data/part-0.bin"]),
              ft.sha256_bytes(BLOBS["data/part-0.bin"])))


def unmount_with(argv, mnt, how):
    run(argv, env=system_env(), timeout=30)
    check(not ft.is_mounted(mnt), "%s still mounted after %s" % (mnt, " ".join(argv)))
    deadline = time.monotonic() + 10
    while installed_daemons(mnt) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = installed_daemons(mnt)
    for pid in left:  # ours: its command line names our mountpoint
        os.kill(pid, 9)
    check(not left, "the daemon of %s (%s) still ran 10 s after %s" % (mnt, how, argv[0]))


# --------------------------------------------------------------------------------------

def test_package_contents():
    """dpkg-deb -c and the control fields: the files of the package, their modes, the
    two helper names, and Depends naming the library packages and fuse3."""
    missing = [p for p in WANT if p not in contents]
    check(not missing, "not in the package: %s (it has %s)" % (missing, sorted(contents)))
    for path in ("/usr/bin/ferry", "/usr/sbin/mount.ferry"):
        check_eq(contents[path], "-rwxr-xr-x", "mode of %s in the package" % path)
    for path in ("/usr/sbin/mount.fuse.ferry", "/usr/share/man/man8/mount.fuse.ferry.8.gz"):
        check(contents[path].startswith("l"), "%s is not a link in the package" % path)
    outside = [p for p in contents if p != "/" and not p.startswith("/usr")]
    check(not outside, "files outside /usr: %s" % outside)
    fields = run(["dpkg-deb", "-f", deb, "Package", "Depends", "Maintainer",
                  "Description", "Architecture"]).stdout
    check_in("Package: ferry\n", fields, "control fields")
    depends = re.search(r"^Depends: (.*)$", fields, re.M)
    check(depends, "no Depends field: %r" % fields)
    names = {d.strip().split(" ")[0] for d in depends.group(1).split(",")}
    lacking = [d for d in DEPENDS if d not in names]
    check(not lacking, "Depends lacks %s: %s" % (lacking, depends.group(1)))
    check(re.search(r"^Maintainer: .+ <[^>]+@[^>]+>$", fields, re.M),
          "Maintainer is not 'Name <address>': %r" % fields)
    check(re.search(r"^Description: .+\n .+", fields, re.M),
          "Description has no summary and long text: %r" % fields)


def check_installed_files(listed):
    for path in WANT:
        check_in(path, listed, "dpkg -L ferry")
        check(os.path.lexists(path), "%s listed by dpkg but not on disk" % path)
    check_eq(os.readlink("/usr/sbin/mount.fuse.ferry"), "mount.ferry",
             "link /usr/sbin/mount.fuse.ferry")
    # mount(8) finds its helpers in /sbin (here the same folder as /usr/sbin)
    for name in ("mount.ferry", "mount.fuse.ferry"):
        check(os.access("/sbin/" + name, os.X_OK), "/sbin/%s is not executable" % name)
    r = run(["ferry", "--version"], env=system_env())
    check(r.stdout.startswith("ferry "), "installed ferry --version: %r" % r.stdout)


def check_man_pages():
    if not shutil.which("man"):
        ft.log("man-db is not installed: the man pages are checked as files only")
        for path in WANT[3:6]:
            check(os.path.isfile(path), "%s is missing" % path)
        return
    env = system_env()
    for args, want in ((["ferry"], "/usr/share/man/man1/ferry.1.gz"),
                       (["8", "mount.ferry"], "/usr/share/man/man8/mount.ferry.8.gz"),
                       # a link to mount.ferry's page, which man -w names
                       (["8", "mount.fuse.ferry"], "/usr/share/man/man8/mount.ferry.8.gz")):
        r = run(["man", "-w"] + args, env=env)
        check_eq(r.stdout.strip(), want, "man -w %s" % " ".join(args))
    env.update(MANWIDTH="80", LC_ALL="C.UTF-8")
    r = run(["man", "ferry"], env=env)
    for needle in ("ferry mount", "MOUNT OPTIONS", "cache_dir=PATH", "ferry datastore add"):
        check_in(needle, r.stdout, "man ferry")
    r = run(["man", "mount.fuse.ferry"], env=env)
    check_in("ferry-mount@.service", r.stdout, "man mount.fuse.ferry (the page of mount.ferry)")


def check_completion():
    path = "/usr/share/bash-completion/completions/ferry"
    check_eq(read(path), read(os.path.join(ft.SRC, "packaging", "completion.bash")),
             "installed completion file")
    # What bash-completion's loader does for `ferry <TAB>`: source the file by the
    # command's name, then the function it registered completes.
    script = r'''
source /usr/share/bash-completion/completions/ferry
complete -p ferry
COMP_LINE="ferry job l" COMP_POINT=11 COMP_WORDS=(ferry job l) COMP_CWORD=2
_ferry
echo "${COMPREPLY[*]}"
COMP_LINE="ferry mount -o ro,allow_" COMP_POINT=24 COMP_WORDS=(ferry mount -o ro,allow_) COMP_CWORD=3
_ferry
echo "${COMPREPLY[*]}"
'''
    r = run(["bash", "-c", script], env=system_env())
    check_eq(r.stdout.splitlines(), ["complete -F _ferry ferry", "list logs",
                                     "ro,allow_http ro,allow_other"],
             "completions from the installed file")


def check_fstab_mount():
    """An fstab line of type ferry, mounted with `mount -T FSTAB MOUNTPOINT`."""
    mnt = ft.make_tmpdir("fstab-mnt")
    fstab = os.path.join(ft.make_tmpdir("fstab"), "fstab")
    with open(fstab, "w") as f:
        f.write("# an fstab line as docs/configuration.md shows it\n")
        f.write("%s  %s  ferry  ro,_netdev,nofail,allow_http,account_key_file=%s  0 0\n" % (
            URL, mnt, keyfile))
    ft._register_mount(ft._canon(mnt))
    run(["mount", "-T", fstab, mnt], env=system_env(), timeout=40)
    try:
        check_mount_reads(mnt, "mount -T fstab")
        ft.expect_oserror(errno.EROFS, os.open, os.path.join(mnt, "new.txt"),
                          os.O_WRONLY | os.O_CREAT, 0o644)
        unmount_with(["umount", mnt], mnt, "mount -T fstab")
    finally:
        ft.unmount(mnt)


def check_fuse_type_mount():
    """`mount -t fuse.ferry` (the type the kernel shows): mount.fuse.ferry."""
    mnt = ft.make_tmpdir("fuse-mnt")
    ft._register_mount(ft._canon(mnt))
    run(["mount", "-t", "fuse.ferry", "-o", "ro,allow_http,account_key_file=" + keyfile,
         URL, mnt], env=system_env(), timeout=40)
    try:
        check_mount_reads(mnt, "mount -t fuse.ferry")
        unmount_with(["ferry", "unmount", mnt], mnt, "mount -t fuse.ferry")
    finally:
        ft.unmount(mnt)


def check_unit():
    """systemd-analyze verify of an instance of the template, then its commands as
    systemd runs them: the instance's configuration read as an EnvironmentFile, each
    ${VAR} one argument, a command without a / found on systemd's search path."""
    if shutil.which("systemd-analyze"):
        r = run(["systemd-analyze", "verify", "ferry-mount@test-deb.service"], ok=False,
                env=system_env())
        check(r.returncode == 0 and not (r.stdout + r.stderr).strip(),
              "systemd-analyze verify ferry-mount@test-deb.service: exit %d: %s" % (
                  r.returncode, (r.stdout + r.stderr).strip()))
    else:
        ft.log("SKIP systemd-analyze verify: systemd-analyze is not installed")
    unit = {}
    with open(UNIT) as f:
        for line in f:
            m = re.match(r"^(\w+)=(.*)$", line.strip())
            if m:
                unit.setdefault(m.group(1), []).append(m.group(2))
    check_eq(unit.get("Type"), ["forking"], "Type= of the unit")
    check_eq(unit.get("EnvironmentFile"), ["/etc/ferry/mounts/%i.conf"], "EnvironmentFile=")
    # The instance's configuration, with the credential in it (then mode 0600)
    mnt = os.path.join(ft.make_tmpdir("unit"), "not-yet", "mnt")
    conf = ft.write_private(
        os.path.join(ft.make_tmpdir("conf"), "test-deb.conf"),
        "# ferry-mount@test-deb.service\nFERRY_URL=%s\nFERRY_MOUNTPOINT=%s\n"
        "FERRY_OPTIONS=ro,allow_http\nAZURE_STORAGE_ACCOUNT=%s\nAZURE_STORAGE_KEY=%s\n"
        % (URL, mnt, ft.ACCOUNT, ft.KEY))
    variables = {}
    with open(conf) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                variables[k] = v
    env = system_env(variables)
    env["PATH"] = SYSTEMD_PATH

    def command(line):
        argv = [variables.get(w[2:-1], "") if re.fullmatch(r"\$\{\w+\}", w) else w
                for w in shlex.split(line.replace("%i", "test-deb"))]
        exe = argv[0] if argv[0].startswith("/") else shutil.which(argv[0], path=SYSTEMD_PATH)
        check(exe, "%s is on no path systemd searches" % argv[0])
        return [exe] + argv[1:]

    ft._register_mount(mnt)
    try:
        for line in unit.get("ExecStartPre", []) + unit["ExecStart"]:
            run(command(line), env=env, timeout=40)
        # Type=forking: the unit is started when ExecStart returns; the mount is ready
        check_mount_reads(mnt, "the unit's ExecStart")
        for line in unit["ExecStop"]:
            unmount_with(command(line), mnt, "the unit's ExecStop")
    finally:
        if os.path.isdir(mnt):
            ft.unmount(mnt)


def check_purged(listed, dirs_before):
    run(["dpkg", "--purge", "ferry"])
    check(not installed(), "ferry still installed after dpkg --purge")
    left = [p for p in listed if not os.path.isdir(p) and os.path.lexists(p)]
    left += [p for p in listed if os.path.isdir(p) and not dirs_before.get(p, True)]
    check(not left, "left after dpkg --purge ferry: %s" % ", ".join(left))


def test_install_mount_purge():
    """dpkg -i; the files, man pages and completion in place; mounts from an fstab line,
    with -t fuse.ferry and with the unit's commands; dpkg --purge removes every file."""
    # the package's folders that are there before it: they stay after the purge
    dirs_before = {p: os.path.isdir(p) for p, mode in contents.items() if mode[0] == "d"}
    listed = []
    try:
        run(["dpkg", "-i", deb], timeout=180)
        listed = [p for p in run(["dpkg", "-L", "ferry"]).stdout.splitlines()
                  if p.startswith("/") and p != "/."]
        check_installed_files(listed)
        check_man_pages()
        check_completion()
        check_fstab_mount()
        check_fuse_type_mount()
        check_unit()
        check_purged(listed, dirs_before)
    finally:
        if installed():
            subprocess.run(["dpkg", "--purge", "ferry"], capture_output=True, timeout=180)


if __name__ == "__main__":
    ft.run()
