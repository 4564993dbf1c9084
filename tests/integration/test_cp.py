#!/usr/bin/env python3
"""ferry datastore / cp / ls against Azurite: named datastores in the user's config (the
secret in a private file, never printed), azureml:// URIs and container URLs, uploads and
downloads of trees (nested, odd names, a 40 MiB file that goes as blocks) checked by
sha256 on both sides, listings, and the errors a person sees.

Run: python3 tests/integration/test_cp.py [test_name ...]
"""
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, check_in  # noqa: E402

MiB = ft.MiB
CONTAINER = "cptest"
BIG = 40 * MiB  # beyond ferry cp's 8 MiB chunk: uploaded as blocks, downloaded in ranges

# The tree uploaded and downloaded: relative path -> bytes.
TREE = {
    "plain.txt": b"plain\n",
    "empty.bin": b"",
    "big.bin": None,  # filled in setup (BIG bytes)
    "nine.bin": None,  # 9 MiB + 1: two blocks, the last one short
    "with space.txt": b"space\n",
    "100%.txt": b"percent\n",
    "a+b&c=d;e.txt": b"plus amp eq semi\n",
    "hash#tag.txt": b"hash\n",
    "what?.txt": b"question\n",
    "~tilde'quote!(x)*.txt": b"punctuation\n",
    "ünïcödé ✓ 日本語.txt": "unicode\n".encode(),
    ".hidden": b"dot file\n",
    "-dash.txt": b"leading dash\n",
    "dir with space/nested/deeper/file.bin": None,  # 1 MiB + 3
    "données/naïve.txt": "naïve\n".encode(),
}
EMPTY_DIRS = ["emptydir", "dir with space/nested/empty inside"]

az = None
client = None
tmp = None
key_file = None
outputs = []  # every stdout/stderr ferry printed: none may hold the key


def setup():
    global az, client, tmp, key_file
    az = ft.Azurite().start()
    client = az.client().with_container(CONTAINER)
    client.create_container()
    tmp = ft.make_tmpdir("cp")
    key_file = os.path.join(tmp, "account.key")
    with open(key_file, "w") as f:
        f.write(ft.KEY + "\n")
    os.chmod(key_file, 0o600)
    TREE["big.bin"] = ft.gen_bytes(BIG, seed=1)
    TREE["nine.bin"] = ft.gen_bytes(9 * MiB + 1, seed=2)
    TREE["dir with space/nested/deeper/file.bin"] = ft.gen_bytes(MiB + 3, seed=3)


def teardown():
    az.stop()


# --------------------------------------------------------------------------------------
# Helpers

def env(creds=False, extra=None):
    """ferry's environment: our temp HOME/XDG_CONFIG_HOME, no AZURE_* unless creds."""
    if creds:
        return ft.ferry_env(extra=extra)
    return ft.ferry_env(account=None, key=None, extra=extra)


def ferry(*args, creds=False, extra_env=None, timeout=120):
    """Runs ferry with args; returns CompletedProcess (text). Never puts a key in argv."""
    argv = [ft.ferry_bin()] + list(args)
    check(not ft._secrets_in(argv), "a key on ferry's command line")
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=env(creds, extra_env), cwd=tmp)
    out = subprocess.CompletedProcess(argv, r.returncode, r.stdout.decode("utf-8", "replace"),
                                      r.stderr.decode("utf-8", "replace"))
    outputs.append(out.stdout + out.stderr)
    ft.log("ferry %s -> %d %s" % (" ".join(args)[:150], out.returncode,
                                  " | ".join(out.stderr.strip().splitlines())[:300]))
    return out


def ok(*args, **kw):
    r = ferry(*args, **kw)
    check(r.returncode == 0, "ferry %s: exit %d, stderr: %s" % (
        " ".join(args), r.returncode, r.stderr.strip()[-500:]))
    return r


def fails(expect, *args, **kw):
    """ferry args must fail with one line on stderr containing expect."""
    r = ferry(*args, **kw)
    check(r.returncode != 0, "ferry %s exited 0; stdout: %s" % (" ".join(args), r.stdout[-300:]))
    check_in(expect, r.stderr, "stderr of ferry %s" % " ".join(args))
    return r


def check_no_secret(text):
    check(ft.KEY not in text, "ferry printed the account key")
    check(ft.KEY[:20] not in text and ft.KEY[-24:] not in text,
          "ferry printed part of the account key: %r" % text[:300])


def config_dir():
    return os.path.join(env()["XDG_CONFIG_HOME"], "ferry")


def add_store(name, container=CONTAINER, *extra):
    return ok("datastore", "add", name, "--endpoint", az.endpoint, "--container", container,
              "--account-key-file", key_file, *extra)


def uri(store, path=""):
    return "azureml://datastores/%s/paths/%s" % (store, path)


def sha(data):
    return hashlib.sha256(data).hexdigest()


def write_tree(root):
    for rel, data in TREE.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    for d in EMPTY_DIRS:
        os.makedirs(os.path.join(root, d), exist_ok=True)


def local_tree(root):
    """rel path -> sha256 of every file under root; and the set of empty dirs."""
    files, empty = {}, set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if not dirnames and not filenames and rel_dir != ".":
            empty.add(rel_dir)
        for n in filenames:
            p = os.path.join(dirpath, n)
            files[os.path.relpath(p, root)] = ft.sha256_file(p)
    return files, empty


def committed_blocks(name):
    _, _, body = client.request("GET", CONTAINER, name,
                                query=[("comp", "blocklist"), ("blocklisttype", "committed")])
    root = ET.fromstring(body)
    return [b.findtext("Name") for b in root.iter("Block")]


# --------------------------------------------------------------------------------------
# datastore add / list / show / remove

def test_datastore_add_list_show_remove():
    r = add_store("store1", CONTAINER, "--prefix", "some/prefix")
    check_in("store1", r.stdout, "add's output")

    # the record: key = value lines, no secret; the secret: 0600 in a 0700 directory
    record = os.path.join(config_dir(), "datastores", "store1.conf")
    secret = os.path.join(config_dir(), "secrets", "store1")
    with open(record) as f:
        text = f.read()
    check_in("container = %s\n" % CONTAINER, text, "the record")
    check_in("prefix = some/prefix\n", text, "the record")
    check_in("credential = account_key\n", text, "the record")
    check_no_secret(text)
    check_eq(stat.S_IMODE(os.stat(secret).st_mode), 0o600, "mode of the stored secret")
    check_eq(stat.S_IMODE(os.stat(os.path.dirname(secret)).st_mode), 0o700,
             "mode of the secrets directory")
    with open(secret) as f:
        check_eq(f.read().strip(), ft.KEY, "the stored secret")

    r = ok("datastore", "list")
    lines = r.stdout.splitlines()
    check(any(ln.split()[0] == "store1" and "account_key" in ln for ln in lines[1:]),
          "store1 in the list: %r" % r.stdout)
    check(any(ln.split()[0] == "workspaceblobstore" and "built in" in ln for ln in lines[1:]),
          "the built-in default in the list: %r" % r.stdout)

    r = ok("datastore", "show", "store1")
    check_in("account key:      stored", r.stdout, "show")
    check_in("prefix:           some/prefix", r.stdout, "show")
    check_in("%s/%s/some/prefix" % (az.endpoint, CONTAINER), r.stdout, "show's url")
    check_no_secret(r.stdout + r.stderr)

    # adding it again is refused; --force replaces it
    fails("exists", "datastore", "add", "store1", "--endpoint", az.endpoint, "--container",
          CONTAINER, "--account-key-file", key_file)
    add_store("store1", CONTAINER, "--force")
    check_in("prefix:           (none)", ok("datastore", "show", "store1").stdout, "show")

    ok("datastore", "remove", "store1")
    check(not os.path.exists(record) and not os.path.exists(secret),
          "remove left the record or the secret behind")
    check("store1" not in ok("datastore", "list").stdout, "store1 still listed")
    fails("no datastore named 'store1'", "datastore", "show", "store1")
    fails("no datastore named 'store1'", "datastore", "remove", "store1")


def test_datastore_add_refuses_secret_in_argv():
    fails("never taken on the command line", "datastore", "add", "x", "--account", "acct",
          "--container", "data", "--account-key", "c2VjcmV0")
    fails("never taken on the command line", "datastore", "add", "x", "--account", "acct",
          "--container", "data", "--sas=sv=1&sig=abc")
    fails("not a datastore name", "datastore", "add", "../x", "--account", "acct",
          "--container", "data")
    # a key file that holds no key
    bad = os.path.join(tmp, "bad.key")
    with open(bad, "w") as f:
        f.write("not base64 at all!\n")
    fails("not an account key", "datastore", "add", "x", "--account", "acct", "--container",
          "data", "--account-key-file", bad)
    check(not os.path.exists(os.path.join(config_dir(), "datastores", "x.conf")),
          "a refused datastore was saved")


def test_datastore_add_secret_from_env():
    ok("datastore", "add", "fromenv", "--endpoint", az.endpoint, "--container", CONTAINER,
       "--credential", "account_key", creds=True)
    with open(os.path.join(config_dir(), "secrets", "fromenv")) as f:
        check_eq(f.read().strip(), ft.KEY, "the secret taken from AZURE_STORAGE_KEY")
    # used without any AZURE_* variable
    client.put_blob("fromenv/probe.txt", b"probe\n")
    r = ok("ls", uri("fromenv", "fromenv/"))
    check_eq(r.stdout, "probe.txt\n", "ls through a datastore with a stored key")
    # credential env: resolved at use time, like ferry mount
    ok("datastore", "add", "useenv", "--endpoint", az.endpoint, "--container", CONTAINER)
    check_in("credential:       env", ok("datastore", "show", "useenv").stdout, "show")
    check_eq(ok("ls", uri("useenv", "fromenv"), creds=True).stdout, "probe.txt\n",
             "ls with credential env")
    fails("authentication failed", "ls", uri("useenv", "fromenv"))
    for name in ("fromenv", "useenv"):
        ok("datastore", "remove", name)


def test_world_readable_secret_is_refused():
    add_store("leaky")
    secret = os.path.join(config_dir(), "secrets", "leaky")
    os.chmod(secret, 0o644)
    r = fails("is readable by other users (mode 0644); run chmod 600 %s" % secret,
              "ls", uri("leaky"))
    check_eq(len(r.stderr.strip().splitlines()), 1, "lines of the error")
    check_in("NOT USABLE", ok("datastore", "show", "leaky").stdout, "show of a leaky secret")
    os.chmod(secret, 0o600)
    ok("ls", uri("leaky"))
    ok("datastore", "remove", "leaky")


# --------------------------------------------------------------------------------------
# URIs

def test_azureml_uri_resolution():
    client.put_blob("pre/fix/hello.txt", b"hello through a prefix\n")
    client.put_blob("pre/fix/sub/inner.txt", b"inner\n")
    client.put_blob("pre/other.txt", b"outside the prefix\n")
    ok("datastore", "add", "pfx", "--endpoint", az.endpoint, "--container", CONTAINER,
       "--prefix", "pre/fix", "--account-key-file", key_file)

    check_eq(ok("ls", uri("pfx")).stdout, "hello.txt\nsub/\n", "ls of the datastore root")
    check_eq(ok("ls", "azureml://datastores/pfx").stdout, "hello.txt\nsub/\n",
             "ls of azureml://datastores/NAME")
    check_eq(ok("ls", uri("pfx", "sub")).stdout, "inner.txt\n", "ls of a folder")
    check_eq(ok("ls", uri("pfx", "hello.txt")).stdout, "hello.txt\n", "ls of a file")
    long_form = ("azureml://subscriptions/00000000-1111-2222-3333-444444444444/resourcegroups/"
                 "rg/workspaces/ws/datastores/pfx/paths/sub/inner.txt")
    check_eq(ok("ls", long_form).stdout, "inner.txt\n", "ls of the long azureml form")

    out = os.path.join(tmp, "hello-out.txt")
    ok("cp", uri("pfx", "hello.txt"), out)
    with open(out, "rb") as f:
        check_eq(f.read(), b"hello through a prefix\n", "downloaded through the prefix")

    # the same blob through the container URL forms, credentials from the environment
    url = "%s/%s/pre/fix/hello.txt" % (az.endpoint, CONTAINER)
    check_eq(ok("ls", url, creds=True).stdout, "hello.txt\n", "ls of a container URL")
    out2 = os.path.join(tmp, "hello-url.txt")
    ok("cp", url, out2, creds=True)
    with open(out2, "rb") as f:
        check_eq(f.read(), b"hello through a prefix\n", "downloaded through the URL")
    # ... and with the key from an -o file, as ferry mount takes it
    ok("ls", "-o", "account_key_file=" + key_file, url)
    os.unlink(out2)
    conn = "DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;" % (
        ft.ACCOUNT, ft.KEY, az.endpoint)
    ok("cp", url, out2, extra_env={"AZURE_STORAGE_CONNECTION_STRING": conn})
    check(os.path.exists(out2), "cp with a connection string wrote nothing")
    ok("datastore", "remove", "pfx")


# --------------------------------------------------------------------------------------
# cp and ls

@ft.timeout(240)
def test_cp_tree_upload_and_download_byte_exact():
    add_store("trees")
    src = os.path.join(tmp, "tree")
    write_tree(src)
    want_files, want_empty = local_tree(src)

    r = ok("cp", "-r", src, uri("trees", "up/"), timeout=200)
    check_eq(r.stderr, "", "stderr of a quiet upload (not a terminal: no progress bar)")

    # the service holds exactly the tree, under up/tree/, byte for byte
    blobs = {b.name: b for b in client.list("up/tree/", include_metadata=True)[0]}
    files = {n[len("up/tree/"):]: n for n, b in blobs.items()
             if b.metadata.get("hdi_isfolder") != "true"}
    check_eq(set(files), set(TREE), "files uploaded")
    for rel, name in files.items():
        check_eq(sha(client.get_blob(name)), sha(TREE[rel]), "sha256 of blob %s" % name)
    markers = {n[len("up/tree/"):] for n, b in blobs.items()
               if b.metadata.get("hdi_isfolder") == "true"}
    check_eq(markers, set(EMPTY_DIRS), "folder markers of the empty folders")
    check_eq(blobs["up/tree/big.bin"].size, BIG, "size of big.bin")
    blocks = committed_blocks("up/tree/big.bin")
    check_eq(len(blocks), 5, "blocks of the 40 MiB blob (8 MiB each)")
    check_eq(len(committed_blocks("up/tree/nine.bin")), 2, "blocks of the 9 MiB + 1 blob")
    check_eq(committed_blocks("up/tree/plain.txt"), [], "blocks of a small blob (one Put Blob)")
    # the local mtime travels as ferry_mtime (ferry mount shows it)
    props = client.get_properties("up/tree/plain.txt")
    check_eq(int(props["x-ms-meta-ferry_mtime"].split(".")[0]),
             int(os.stat(os.path.join(src, "plain.txt")).st_mtime), "ferry_mtime of plain.txt")

    # download: a new destination becomes the copy
    down = os.path.join(tmp, "down")
    r = ok("cp", "-r", uri("trees", "up/tree"), down, timeout=200)
    check_eq(r.stderr, "", "stderr of a quiet download")
    got_files, got_empty = local_tree(down)
    check_eq(set(got_files), set(want_files), "files downloaded")
    for rel in want_files:
        check_eq(got_files[rel], want_files[rel], "sha256 of downloaded %s" % rel)
    check_eq(got_empty, want_empty, "empty folders downloaded")
    check_eq(int(os.stat(os.path.join(down, "plain.txt")).st_mtime),
             int(os.stat(os.path.join(src, "plain.txt")).st_mtime), "mtime kept")
    leftovers = [n for _, _, fs in os.walk(down) for n in fs if n.startswith(".ferry-")]
    check_eq(leftovers, [], "temporary files left behind")

    # into an existing folder: the copy goes inside it, named as the source
    into = os.path.join(tmp, "into")
    os.mkdir(into)
    ok("cp", "-r", uri("trees", "up/tree/dir with space"), into)
    check(os.path.isfile(os.path.join(into, "dir with space", "nested", "deeper", "file.bin")),
          "cp -r into an existing folder: %s" % sorted(os.listdir(into)))
    # a trailing '/' on the source copies what is in it
    contents = os.path.join(tmp, "contents")
    ok("cp", "-r", uri("trees", "up/tree/dir with space/"), contents)
    check(os.path.isfile(os.path.join(contents, "nested", "deeper", "file.bin")),
          "cp -r SRC/ copies the contents")


def test_cp_files_and_ls():
    add_store("files")
    f = os.path.join(tmp, "single.bin")
    data = ft.gen_bytes(3 * MiB + 5, seed=7)
    with open(f, "wb") as fh:
        fh.write(data)
    ok("cp", f, uri("files", "one/"))           # into a folder: keeps its name
    ok("cp", f, uri("files", "one/renamed.bin"))  # to a new name
    check_eq(sha(client.get_blob("one/single.bin")), sha(data), "uploaded into a folder")
    check_eq(sha(client.get_blob("one/renamed.bin")), sha(data), "uploaded to a new name")
    client.put_blob("one/sub/x.txt", b"x")

    check_eq(ok("ls", uri("files", "one")).stdout, "renamed.bin\nsingle.bin\nsub/\n", "ls")
    r = ok("ls", "-l", uri("files", "one/"))
    rows = [ln.split() for ln in r.stdout.splitlines()]
    check_eq([row[0] for row in rows], [str(len(data)), str(len(data)), "-"], "ls -l sizes")
    check_eq(rows[2][-1], "sub/", "ls -l folder name")
    check(all(len(row[1]) == 10 and row[1][4] == "-" for row in rows[:2]),
          "ls -l dates: %r" % r.stdout)
    check_eq(ok("ls", "-R", uri("files", "one")).stdout,
             "renamed.bin\nsingle.bin\nsub/\nsub/x.txt\n", "ls -R")

    back = os.path.join(tmp, "back")
    os.mkdir(back)
    ok("cp", uri("files", "one/renamed.bin"), back)
    with open(os.path.join(back, "renamed.bin"), "rb") as fh:
        check_eq(sha(fh.read()), sha(data), "downloaded into a folder")
    # store to store
    ok("cp", uri("files", "one/renamed.bin"), uri("files", "two/copied.bin"))
    check_eq(sha(client.get_blob("two/copied.bin")), sha(data), "copied within the service")

# Blob names that are not a tree as they are (docs/semantics.md, "Names a filesystem
# cannot show as they are"): ferry ls, ferry cp and the mount must show one tree.
ODD_TREE = {
    "odd/dup": b"the blob hidden by the folder dup\n",
    "odd/dup/x": b"x under dup\n",
    "odd/only/": b"",  # a placeholder alone: an empty folder
    "odd/ph/": b"",  # a placeholder beside what is in the folder
    "odd/ph/in.txt": b"in\n",
    "odd/w//b": b"under an empty name\n",
    "odd/" + "L" * 300: b"a name too long to show\n",
    "odd/a.txt": b"a\n",
}


def mount_listing(root):
    """ls -R as ferry prints it (folders with '/', depth first, by name) of a local tree."""
    lines = []

    def walk(rel):
        path = os.path.join(root, rel)
        for n in sorted(os.listdir(path), key=lambda x: x.encode()):
            child = os.path.join(rel, n) if rel else n
            is_dir = os.path.isdir(os.path.join(root, child))
            lines.append(child + ("/" if is_dir else ""))
            if is_dir:
                walk(child)
    walk("")
    return "".join(line + "\n" for line in lines)


def test_ls_cp_and_mount_show_one_tree():
    add_store("odd", CONTAINER, "--prefix", "odd")
    for name, data in ODD_TREE.items():
        client.put_blob(name, data)
    with ft.mounted(az.url(CONTAINER) + "/odd") as mnt:
        shown = mount_listing(mnt)
        mounted_files, mounted_empty = local_tree(mnt)
    check_eq(shown, "a.txt\ndup/\ndup/x\nonly/\nph/\nph/in.txt\nw/\n", "the mount's tree")
    check_eq(ok("ls", "-R", uri("odd")).stdout, shown, "ferry ls -R against the mount")
    check_eq(ok("ls", uri("odd", "dup")).stdout, "x\n", "ferry ls of the folder dup")

    # cp -r copies the tree the mount shows: the hidden blob dup stays behind
    down = os.path.join(tmp, "odd-down")
    ok("cp", "-r", uri("odd"), down)
    files, empty = local_tree(down)
    check_eq(files, mounted_files, "cp -r against the mount (files)")
    check_eq(empty, mounted_empty, "cp -r against the mount (empty folders)")
    check_eq(client.get_blob("odd/dup"), ODD_TREE["odd/dup"], "the hidden blob is untouched")


def test_mount_takes_a_datastore_name_or_uri():
    add_store("mnt", CONTAINER, "--prefix", "mnt")
    client.put_blob("mnt/sub/a.txt", b"a in sub\n")
    client.put_blob("mnt/top.txt", b"top\n")
    menv = env()
    with ft.mounted("mnt", env=menv) as m:
        check_eq(sorted(os.listdir(m)), ["sub", "top.txt"], "the datastore's root, mounted")
    with ft.mounted(uri("mnt", "sub"), env=menv) as m:
        with open(os.path.join(m, "a.txt"), "rb") as fh:
            check_eq(fh.read(), b"a in sub\n", "a.txt of the folder the URI names")


def test_default_datastore_and_override():
    r = ok("datastore", "show", "workspaceblobstore")
    check_in("built in", r.stdout, "show of the default")
    check_in("http://127.0.0.1:10000/devstoreaccount1/azureml-blobstore", r.stdout,
             "the default's url")
    check_in("create container: yes", r.stdout, "the default creates its container")

    # an override on our Azurite; its container does not exist until first use
    ok("datastore", "add", "workspaceblobstore", "--endpoint", az.endpoint, "--container",
       "azureml-blobstore", "--credential", "emulator", "--create-container")
    check_in("record:", ok("datastore", "show", "workspaceblobstore").stdout, "override")
    f = os.path.join(tmp, "first.txt")
    with open(f, "wb") as fh:
        fh.write(b"first use\n")
    ok("cp", f, uri("workspaceblobstore", "runs/first.txt"))
    check_eq(client.get_blob("runs/first.txt", container="azureml-blobstore"), b"first use\n",
             "a blob in the container created on first use")
    ok("cp", f, uri("workspaceblobstore", "runs/second.txt"))  # it exists now: still fine
    ok("datastore", "remove", "workspaceblobstore")
    check_in("built in", ok("datastore", "show", "workspaceblobstore").stdout,
             "the default is back after removing the override")


def test_errors_name_what_failed():
    add_store("errs")
    r = fails("no datastore named 'nosuchstore'", "ls", uri("nosuchstore", "x"))
    check_eq(len(r.stderr.strip().splitlines()), 1, "lines of the error")
    tiny = os.path.join(tmp, "tiny.txt")
    with open(tiny, "wb") as fh:
        fh.write(b"tiny\n")
    fails("no datastore named 'nosuchstore'", "cp", tiny, uri("nosuchstore", "x"))
    fails("%s: no such file or folder" % uri("errs", "no/such/path"), "ls",
          uri("errs", "no/such/path"))
    fails("no such file or folder", "cp", uri("errs", "no/such/file.txt"), tmp)
    fails("no such file or folder", "cp", os.path.join(tmp, "no-such-local"), uri("errs", "x"))
    d = os.path.join(tmp, "adir")
    os.makedirs(d, exist_ok=True)
    fails("use -r", "cp", d, uri("errs", "x/"))
    fails("both local paths", "cp", d, os.path.join(tmp, "elsewhere"))
    fails("'..'", "ls", uri("errs", "a/../b"))
    fails("not a datastore URI", "ls", "azureml://foo/bar")
    fails("query string", "ls", az.url(CONTAINER) + "/x?sv=2020&sig=c2VjcmV0")
    ok("datastore", "add", "nocontainer", "--endpoint", az.endpoint, "--container", "not-there",
       "--credential", "emulator")
    fails("container 'not-there' not found", "ls", uri("nocontainer"))

    # a file that cannot be uploaded fails the copy, named; the rest still goes
    src = os.path.join(tmp, "partly")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "good.txt"), "wb") as fh:
        fh.write(b"good\n")
    os.symlink("/nonexistent/target", os.path.join(src, "dangling"))
    r = fails("dangling", "cp", "-r", src, uri("errs", "partly/"))
    check_in("1 of 2 files failed", r.stderr, "the summary")
    check_eq(client.get_blob("partly/partly/good.txt"), b"good\n", "the good file uploaded")

    # a file that cannot be written locally fails the download, named
    client.put_blob("clash/f.txt", b"f\n")
    client.put_blob("clash/g.txt", b"g\n")
    dst = os.path.join(tmp, "clash")
    os.makedirs(os.path.join(dst, "f.txt"))  # a folder where the file goes
    r = fails("f.txt", "cp", "-r", uri("errs", "clash/"), dst)
    check_in("1 of 2 files failed", r.stderr, "the summary")
    with open(os.path.join(dst, "g.txt"), "rb") as fh:
        check_eq(fh.read(), b"g\n", "the other file downloaded")


def test_no_secret_in_any_output():
    check(outputs, "no ferry output collected")
    for text in outputs:
        check_no_secret(text)


if __name__ == "__main__":
    ft.run()
