#!/usr/bin/env python3
"""ferry's security rules, checked end to end against Azurite (docs/security.md):

  - secrets (the account key, a SAS signature) never appear in logs (debug level
    included), error messages, the argv of any ferry process or cache file names, and
    a URL with sig= in a log shows sig=REDACTED;
  - TLS certificates are verified: a self-signed Azurite is refused without its CA and
    works with -o ca_file=;
  - the cache directory is 0700 and its files 0600;
  - other users cannot use a mount unless -o allow_other (root only here).

Plain http off loopback is refused (test_mount_errors); the allow_http positive case
would need a non-loopback HTTP endpoint and is not tested.

Run: python3 tests/integration/test_security.py [test_name ...]
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import os
import re
import shutil
import ssl
import stat
import subprocess
import sys
import time
import urllib.parse

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, check_in  # noqa: E402

CONTAINER = "sec"
HELLO = b"hello from the security test\n"
BIG = ft.gen_bytes(3 * ft.MiB + 17, seed="sec")

az = None
URL = None


# --------------------------------------------------------------------------------------
# SAS

def account_sas(account=ft.ACCOUNT, key=ft.KEY, permissions="rwdlacup", hours=24):
    """An account SAS (services b, resource types sco) signed with key, as the query
    string without '?'. Version 2020-08-04: the string-to-sign has no encryption scope."""
    now = datetime.datetime.now(datetime.timezone.utc)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    f = {
        "sv": "2020-08-04", "ss": "b", "srt": "sco", "sp": permissions,
        "st": (now - datetime.timedelta(minutes=15)).strftime(fmt),
        "se": (now + datetime.timedelta(hours=hours)).strftime(fmt),
        "spr": "https,http",
    }
    sts = "\n".join([account, f["sp"], f["ss"], f["srt"], f["st"], f["se"], "", f["spr"],
                     f["sv"]]) + "\n"
    sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode(),
                                    hashlib.sha256).digest()).decode()
    f["sig"] = sig
    return urllib.parse.urlencode(f, quote_via=urllib.parse.quote, safe=""), sig


def secrets_of(sig=None, key=ft.KEY):
    """(needle, what) pairs that must never appear in ferry's output."""
    out = [(key, "the account key"), (key[:20], "the first 20 chars of the account key")]
    if sig:
        out += [(sig, "the SAS signature"),
                (urllib.parse.quote(sig, safe=""), "the SAS signature (percent-encoded)"),
                (sig[:20], "the first 20 chars of the SAS signature")]
    return out


def check_clean(text, where, sig=None, key=ft.KEY):
    for needle, what in secrets_of(sig, key):
        i = text.find(needle)
        check(i < 0, "%s holds %s: ...%r..." % (where, what, text[max(0, i - 60):i + 20]))
    for m in re.finditer(r"sig=([^&\s\"']*)", text):
        check(m.group(1) == "REDACTED", "%s: a sig= not redacted: %r" % (
            where, text[max(0, m.start() - 60):m.end()]))


def cmdlines(pids):
    out = []
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                out.append(f.read().replace(b"\0", b" ").decode("utf-8", "replace"))
        except OSError:
            pass
    return out


def names_under(path):
    names = []
    for dirpath, dirnames, filenames in os.walk(path):
        names += dirnames + filenames
    return names


def exercise(mnt):
    """Reads, lists, writes and removes through a read-write mount."""
    check_eq(sorted(os.listdir(mnt)), ["big.bin", "dir", "hello.txt"], "listing")
    with open(os.path.join(mnt, "hello.txt"), "rb") as f:
        check_eq(f.read(), HELLO, "hello.txt")
    check_eq(ft.sha256_file(os.path.join(mnt, "big.bin")), ft.sha256_bytes(BIG), "big.bin")
    check_eq(os.listdir(os.path.join(mnt, "dir")), ["a.txt"], "dir listing")
    new = os.path.join(mnt, "dir", "new-%d.txt" % time.monotonic_ns())
    with open(new, "wb") as f:
        f.write(b"written through ferry\n")
    with open(new, "rb") as f:
        check_eq(f.read(), b"written through ferry\n", "written file")
    os.unlink(new)
    ft.expect_oserror(2, os.stat, os.path.join(mnt, "no-such-file"))


# --------------------------------------------------------------------------------------

def setup():
    global az, URL
    az = ft.Azurite().start()
    c = az.client().with_container(CONTAINER)
    c.create_container()
    c.put_blob("hello.txt", HELLO)
    c.put_blob("big.bin", BIG)
    c.put_blob("dir/a.txt", b"a\n")
    URL = az.url(CONTAINER)


def teardown():
    az.stop()


def foreground_session(opts, env, sig=None):
    """A debug foreground mount that is exercised; every output and argv checked."""
    cache = ft.make_tmpdir("cache")
    opts = ["log_level=debug", "cache_dir=" + cache, "block_size=1M"] + opts
    mnt = ft.make_tmpdir("mnt")
    fg = ft.Foreground(URL, mnt, opts=opts, env=env)
    try:
        argvs = cmdlines(ft.ferry_pids(mnt))
        check(argvs, "no ferry process found for %s" % mnt)
        exercise(mnt)
        argvs += cmdlines(ft.ferry_pids(mnt))
    finally:
        rc = fg.stop()
    out = fg.output()
    check_eq(rc, 0, "ferry -f exit code (output %r)" % out[-300:])
    ft.log("debug log: %d lines, %d with sig=" % (len(out.splitlines()), out.count("sig=")))
    check_clean(out, "the debug log", sig)
    for a in argvs:
        check_clean(a, "ferry's argv %r" % a[:200], sig)
    for n in names_under(cache):
        check_clean(n, "cache file name %r" % n, sig)
    return out


def test_debug_mount_shared_key():
    foreground_session([], ft.ferry_env())


def test_debug_mount_sas():
    sas, sig = account_sas()
    d = ft.make_tmpdir("sas")
    path = os.path.join(d, "sas")
    with open(path, "w") as f:
        f.write("?" + sas + "\n")
    os.chmod(path, 0o600)
    foreground_session(["sas_file=" + path], ft.ferry_env(account=None, key=None), sig)


def test_sas_refused_request_logged_redacted():
    """A read-only SAS: a write through the mount is refused (403) and logged with its
    URL; the URL's sig= must read REDACTED."""
    sas, sig = account_sas(permissions="rl")
    path = os.path.join(ft.make_tmpdir("sas"), "sas")
    with open(path, "w") as f:
        f.write(sas)
    mnt = ft.make_tmpdir("mnt")
    fg = ft.Foreground(URL, mnt, opts=["log_level=debug", "sas_file=" + path],
                       env=ft.ferry_env(account=None, key=None))
    try:
        argvs = cmdlines(ft.ferry_pids(mnt))
        with open(os.path.join(mnt, "hello.txt"), "rb") as f:
            check_eq(f.read(), HELLO, "hello.txt with a read-only SAS")
        try:
            with open(os.path.join(mnt, "refused.txt"), "wb") as f:
                f.write(b"x")
            wrote = True
        except OSError as e:
            ft.log("write with a read-only SAS: %s" % e)
            wrote = False
        check(not wrote, "a write with a read-only SAS succeeded")
    finally:
        fg.stop()
    out = fg.output()
    ft.log("log: %r" % out[-600:])
    check_in("sig=REDACTED", out, "the log of a refused request")
    check_clean(out, "the log", sig)
    for a in argvs:
        check_clean(a, "ferry's argv %r" % a[:200], sig)


def run_ferry(args, env=None, timeout=60):
    cp = subprocess.run([ft.ferry_bin()] + args, stdin=subprocess.DEVNULL, capture_output=True,
                        timeout=timeout, env=env or ft.ferry_env(), cwd=ft.tmp_root())
    return cp.returncode, (cp.stdout + cp.stderr).decode("utf-8", "replace")


def test_wrong_key_and_bad_sas():
    rc, out = run_ferry(["cp", URL + "/hello.txt", os.path.join(ft.make_tmpdir("dl"), "h")],
                        env=ft.ferry_env(key=ft.WRONG_KEY))
    check(rc != 0, "ferry cp with a wrong key succeeded")
    check_clean(out, "ferry cp with a wrong key", key=ft.WRONG_KEY)
    mnt = ft.make_tmpdir("mnt")
    cp = ft.mount(URL, mnt, opts=["log_level=debug"], env=ft.ferry_env(key=ft.WRONG_KEY))
    try:
        check(cp.returncode != 0, "a mount with a wrong key succeeded")
        check_clean(cp.stdout + cp.stderr + ft._read(cp.stderr_path), "ferry mount (wrong key)",
                    key=ft.WRONG_KEY)
    finally:
        if ft.is_mounted(mnt):
            ft.unmount(mnt)
    # A SAS signed with the wrong key: Azurite refuses it; its signature stays secret.
    sas, sig = account_sas(key=ft.WRONG_KEY)
    path = os.path.join(ft.make_tmpdir("sas"), "sas")
    with open(path, "w") as f:
        f.write(sas)
    rc, out = run_ferry(["cp", "-o", "sas_file=" + path, URL + "/hello.txt",
                         os.path.join(ft.make_tmpdir("dl"), "h")], env=ft.ferry_env(None, None))
    check(rc != 0, "ferry cp with a bad SAS succeeded")
    check_clean(out, "ferry cp with a bad SAS", sig, key=ft.WRONG_KEY)


def test_cp_and_datastore_show():
    work = ft.make_tmpdir("cp")
    src = os.path.join(work, "up.txt")
    with open(src, "wb") as f:
        f.write(b"uploaded\n")
    outputs = []
    rc, out = run_ferry(["cp", src, URL + "/cp/up.txt"])
    check_eq(rc, 0, "ferry cp upload (%r)" % out[-300:])
    outputs.append(("ferry cp upload", out))
    sas, sig = account_sas()
    sas_path = os.path.join(work, "sas")
    with open(sas_path, "w") as f:
        f.write(sas)
    os.chmod(sas_path, 0o600)
    rc, out = run_ferry(["cp", "-o", "sas_file=" + sas_path, URL + "/big.bin",
                         os.path.join(work, "big.bin")], env=ft.ferry_env(None, None))
    check_eq(rc, 0, "ferry cp download with a SAS (%r)" % out[-300:])
    check_eq(ft.sha256_file(os.path.join(work, "big.bin")), ft.sha256_bytes(BIG), "big.bin")
    outputs.append(("ferry cp with a SAS", out))

    key_path = os.path.join(work, "key")
    with open(key_path, "w") as f:
        f.write(ft.KEY + "\n")
    os.chmod(key_path, 0o600)
    rc, out = run_ferry(["datastore", "add", "secure", "--endpoint", az.endpoint,
                         "--container", CONTAINER, "--account-key-file", key_path, "--force"])
    check_eq(rc, 0, "ferry datastore add (%r)" % out[-300:])
    outputs.append(("ferry datastore add", out))
    rc, out = run_ferry(["datastore", "add", "securesas", "--endpoint", az.endpoint,
                         "--container", CONTAINER, "--sas-file", sas_path, "--force"])
    check_eq(rc, 0, "ferry datastore add --sas-file (%r)" % out[-300:])
    outputs.append(("ferry datastore add --sas-file", out))
    for args in (["datastore", "show", "secure"], ["datastore", "show", "securesas"],
                 ["datastore", "list"], ["ls", "-l", "azureml://datastores/secure/paths/"],
                 ["cp", "azureml://datastores/securesas/paths/hello.txt",
                  os.path.join(work, "h")]):
        rc, out = run_ferry(args, env=ft.ferry_env(None, None))
        check_eq(rc, 0, "ferry %s (%r)" % (" ".join(args), out[-300:]))
        outputs.append(("ferry " + " ".join(args), out))
    check_in("secure", outputs[-3][1], "datastore list")
    for what, out in outputs:
        check_clean(out, what, sig)
    # The datastore's files: the record names no secret; secrets are 0600 in a 0700 dir.
    cfg = os.path.join(ft.ferry_env()["XDG_CONFIG_HOME"], "ferry")
    for dirpath, dirnames, filenames in os.walk(cfg):
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            if os.path.basename(dirpath) == "secrets":
                check_eq(stat.S_IMODE(os.stat(p).st_mode), 0o600, "mode of %s" % p)
                check_eq(stat.S_IMODE(os.stat(dirpath).st_mode), 0o700, "mode of %s" % dirpath)
            else:
                with open(p) as f:
                    check_clean(f.read(), "datastore record %s" % p, sig)
    for name in ("secure", "securesas"):
        run_ferry(["datastore", "remove", name])


# --------------------------------------------------------------------------------------
# TLS

class HttpsAzurite(ft.Azurite):
    """Azurite serving HTTPS with cert/key (readiness probed over TLS, unverified)."""

    def __init__(self, cert, key, **kw):
        super().__init__(extra_args=["--cert", cert, "--key", key], **kw)

    @property
    def endpoint(self):
        return "https://127.0.0.1:%d/%s" % (self.port, ft.ACCOUNT)

    def _wait_ready(self, timeout):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=2, context=ctx)
                conn.request("GET", "/%s?comp=list" % ft.ACCOUNT)
                conn.getresponse().read()
                conn.close()
                return True
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
        return False


@ft.timeout(120)
def test_tls_verified():
    d = ft.make_tmpdir("tls")
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    # Data goes in over http (ferrytest's client speaks http), then the same state is
    # served over https.
    loc = os.path.join(d, "azurite-data")
    plain = ft.Azurite(location=loc).start()
    try:
        c = plain.client().with_container("tls")
        c.create_container()
        c.put_blob("hello.txt", HELLO)
    finally:
        plain.stop()
    tls = HttpsAzurite(cert, key, location=loc, port=plain.port).start()
    try:
        url = tls.url("tls")
        mnt = ft.make_tmpdir("mnt")
        cp = ft.mount(url, mnt)
        try:
            check(cp.returncode != 0, "ferry mounted a server with an unknown certificate")
            ft.log("without ca_file: %s" % cp.stderr.strip())
            check_in("certificate", cp.stderr.lower(), "ferry's error without ca_file")
            check(not ft.is_mounted(mnt), "mounted after a refused certificate")
        finally:
            if ft.is_mounted(mnt):
                ft.unmount(mnt)
        with ft.mounted(url, opts=["ca_file=" + cert, "ro"]) as m:
            with open(os.path.join(m, "hello.txt"), "rb") as f:
                check_eq(f.read(), HELLO, "hello.txt over https with ca_file")
        # ferry cp verifies too.
        dst = os.path.join(d, "h")
        rc, out = run_ferry(["cp", url + "/hello.txt", dst])
        check(rc != 0, "ferry cp accepted an unknown certificate")
        check_in("certificate", out.lower(), "ferry cp's error without ca_file")
        rc, out = run_ferry(["cp", "-o", "ca_file=" + cert, url + "/hello.txt", dst])
        check_eq(rc, 0, "ferry cp with ca_file (%r)" % out[-300:])
        with open(dst, "rb") as f:
            check_eq(f.read(), HELLO, "ferry cp over https")
    finally:
        tls.stop()


# --------------------------------------------------------------------------------------
# Local files and other users

def check_cache_modes(cdir):
    files = 0
    check_eq(oct(stat.S_IMODE(os.stat(cdir).st_mode)), oct(0o700), "mode of the cache dir")
    for dirpath, dirnames, filenames in os.walk(cdir):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            try:
                st = os.lstat(p)
            except FileNotFoundError:  # a temp file renamed meanwhile
                continue
            want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
            check_eq(oct(stat.S_IMODE(st.st_mode)), oct(want), "mode of %s" % p)
            files += not stat.S_ISDIR(st.st_mode)
    return files


def test_cache_permissions():
    cache = ft.make_tmpdir("cache")
    os.chmod(cache, 0o755)  # ferry tightens a cache directory it is given
    nested = os.path.join(ft.make_tmpdir("cache2"), "a", "b")  # ferry creates this one
    for cdir in (cache, nested):
        with ft.mounted(URL, opts=["cache_dir=" + cdir, "block_size=1M"]) as m:
            check_eq(ft.sha256_file(os.path.join(m, "big.bin")), ft.sha256_bytes(BIG), "big.bin")
            with open(os.path.join(m, "hello.txt"), "rb") as f:
                check_eq(f.read(), HELLO, "hello.txt")
            # a file being written is staged in the cache dir
            with open(os.path.join(m, "staged.bin"), "wb") as f:
                f.write(BIG[:ft.MiB + 5])
                f.flush()
                check_cache_modes(cdir)
            os.unlink(os.path.join(m, "staged.bin"))
            check_cache_modes(cdir)
        files = check_cache_modes(cdir)
        check(files >= 2, "only %d files in the cache dir %s after unmount" % (files, cdir))


def as_nobody(*cmd):
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
                          + list(cmd), stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=30)


def test_allow_other():
    if os.geteuid() != 0:
        ft.log("SKIP: needs root (setpriv to another user)")
        return
    # Another user must be able to reach the mount point for the test to mean anything.
    os.chmod(ft.tmp_root(), 0o711)
    base = ft.make_tmpdir("other")
    os.chmod(base, 0o755)
    mnt = os.path.join(base, "mnt")
    os.mkdir(mnt, 0o755)
    r = as_nobody("stat", mnt)
    check_eq(r.returncode, 0, "nobody can stat the bare mount point (%r)" % r.stderr)
    with ft.mounted(URL, mnt=mnt, opts=["ro"]):
        for cmd in (["stat", mnt], ["ls", mnt], ["cat", os.path.join(mnt, "hello.txt")]):
            r = as_nobody(*cmd)
            err = r.stderr.decode("utf-8", "replace")
            check(r.returncode != 0, "%s as nobody worked without allow_other" % cmd[0])
            check_in("permission denied", err.lower(), "%s as nobody" % cmd[0])
        check_in("hello.txt", os.listdir(mnt), "root's listing")
    with ft.mounted(URL, mnt=mnt, opts=["ro", "allow_other"]):
        r = as_nobody("ls", mnt)
        check_eq(r.returncode, 0, "ls as nobody with allow_other (%r)" % r.stderr)
        check_in("hello.txt", r.stdout.decode().split(), "nobody's listing")
        r = as_nobody("cat", os.path.join(mnt, "hello.txt"))
        check_eq(r.returncode, 0, "cat as nobody with allow_other (%r)" % r.stderr)
        check_eq(r.stdout, HELLO, "hello.txt read by nobody")
    os.rmdir(mnt)


if __name__ == "__main__":
    ft.run()
