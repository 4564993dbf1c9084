"""fscheck: helpers for the read-write integration tests (python3 stdlib only).

  blob_digest(client, name)     size and sha256 of a blob, streamed in ranged GETs
  blob_meta(client, name)       its metadata, names lower-cased
  store_tree(client, prefix)    what a prefix of the container holds, as a tree
  local_tree(path)              the same shape for a local directory
  check_trees(got, want, what)  equality with a readable difference
  renameat2(old, new, flags)    rename(2) with flags (RENAME_NOREPLACE), via ctypes
  vm_kib(pid, field)            a Vm* line of /proc/PID/status
  disk_usage(path)              what `du` counts under a directory (allocated bytes)
  daemon_pid(mnt)               the one ferry process serving a mount point

Trees are dicts {relative path: node}, node one of
  ("f", bytes)      a regular file and its content
  ("l", str)        a symlink and its target
  ("d", None)       a directory
In the store a directory is a marker blob (0 bytes, metadata hdi_isfolder=true) or a
prefix of some blob name; a symlink is a blob with metadata is_symlink=true whose
content is the target.
"""

import ctypes
import errno
import hashlib
import os
import stat

import ferrytest as ft

MiB = ft.MiB

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def renameat2(old, new, flags=0):
    """renameat2(AT_FDCWD, old, AT_FDCWD, new, flags); raises OSError like os.rename."""
    fn = _libc().renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                   ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(old), _AT_FDCWD, os.fsencode(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old, None, new)


# --------------------------------------------------------------------------------------
# Blobs, read straight from the service

def blob_digest(client, name, chunk=16 * MiB):
    """(size, sha256 hex) of a blob, read in ranged GETs of `chunk` bytes so that a
    large blob is never held in memory whole."""
    size = int(client.get_properties(name)["content-length"])
    h = hashlib.sha256()
    off = 0
    while off < size:
        n = min(chunk, size - off)
        data = client.get_blob(name, offset=off, length=n)
        if len(data) != n:
            raise ft.CheckFailed("blob %s: ranged GET at %d returned %d bytes, want %d"
                                 % (name, off, len(data), n))
        h.update(data)
        off += n
    return size, h.hexdigest()


def blob_meta(client, name):
    """Metadata of a blob as {lower-cased name: value}."""
    return {k[len("x-ms-meta-"):].lower(): v
            for k, v in client.get_properties(name).items() if k.startswith("x-ms-meta-")}


def _meta_true(meta, key):
    return {k.lower(): v for k, v in meta.items()}.get(key, "").lower() == "true"


def store_tree(client, prefix):
    """The tree under prefix ("dir/" or "" for the whole container) as the store holds
    it. A blob that is both a marker and has content is reported as a file named with a
    trailing '!' so that the comparison fails readably."""
    blobs, _ = client.list(prefix=prefix, include_metadata=True)
    tree = {}
    for b in blobs:
        rel = b.name[len(prefix):]
        if not rel:
            continue
        parts = rel.split("/")
        for i in range(1, len(parts)):
            tree.setdefault("/".join(parts[:i]), ("d", None))
        if _meta_true(b.metadata, "hdi_isfolder"):
            if b.size:
                tree[rel + "!"] = ("f", client.get_blob(b.name))
            else:
                tree[rel] = ("d", None)
        elif _meta_true(b.metadata, "is_symlink"):
            tree[rel] = ("l", client.get_blob(b.name).decode("utf-8", "surrogateescape"))
        else:
            tree[rel] = ("f", client.get_blob(b.name) if b.size else b"")
    return tree


def local_tree(root):
    """The tree under a local directory (symlinks not followed)."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                tree[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                tree[rel] = ("d", None)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    tree[rel] = ("f", f.read())
            else:
                raise ft.CheckFailed("local_tree: %s is neither file, directory nor symlink"
                                     % p)
    return tree


def _node_str(node):
    kind, value = node
    if kind == "f":
        return "file of %d bytes (sha256 %s)" % (len(value), ft.sha256_bytes(value)[:12])
    if kind == "l":
        return "symlink to %r" % value
    return "directory"


def check_trees(got, want, what):
    """got == want, or CheckFailed naming the missing, unexpected and differing paths."""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    differ = sorted(p for p in set(got) & set(want) if got[p] != want[p])
    if not (missing or extra or differ):
        return
    lines = []
    if missing:
        lines.append("%d missing: %s" % (len(missing), ", ".join(
            "%r (%s)" % (p, _node_str(want[p])) for p in missing[:5])))
    if extra:
        lines.append("%d unexpected: %s" % (len(extra), ", ".join(
            "%r (%s)" % (p, _node_str(got[p])) for p in extra[:5])))
    for p in differ[:5]:
        g, w = got[p], want[p]
        detail = "%s, want %s" % (_node_str(g), _node_str(w))
        if g[0] == w[0] == "f":
            n = min(len(g[1]), len(w[1]))
            first = next((i for i in range(n) if g[1][i] != w[1][i]), n)
            detail += ", first difference at byte %d" % first
        lines.append("%r: %s" % (p, detail))
    if len(differ) > 5:
        lines.append("... %d paths differ in all" % len(differ))
    raise ft.CheckFailed("%s: %s" % (what, "; ".join(lines)))


# --------------------------------------------------------------------------------------
# The daemon's memory, the cache directory's disk

def vm_kib(pid, field):
    """A Vm* field of /proc/PID/status (VmHWM, VmRSS, ...), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise ft.CheckFailed("no %s in /proc/%d/status" % (field, pid))


def disk_usage(path, pid=None):
    """(allocated bytes, apparent bytes) of the regular files under path: what `du` and
    `du --apparent-size` count for them. With pid, also the files that process holds
    open under path without a name (O_TMPFILE, or unlinked after opening), which take
    disk space that `du` cannot see. Files that vanish while we look are skipped."""
    used = apparent = 0
    seen = set()

    def add(st):
        nonlocal used, apparent
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            used += st.st_blocks * 512
            apparent += st.st_size

    for dirpath, _, names in os.walk(path):
        for n in names:
            try:
                add(os.lstat(os.path.join(dirpath, n)))
            except FileNotFoundError:
                continue
    if pid is not None:
        fd_dir = "/proc/%d/fd" % pid
        try:
            fds = os.listdir(fd_dir)
        except FileNotFoundError:
            fds = []
        prefix = os.path.realpath(path).rstrip("/") + "/"
        for fd in fds:
            try:
                if os.readlink(os.path.join(fd_dir, fd)).startswith(prefix):
                    add(os.stat(os.path.join(fd_dir, fd)))  # the open file itself
            except (FileNotFoundError, ProcessLookupError):
                continue
    return used, apparent


def daemon_pid(mnt):
    pids = ft.ferry_pids(mnt)
    ft.check_eq(len(pids), 1, "ferry daemons serving %s (pids %s)" % (mnt, pids))
    return pids[0]


def errname(e):
    return errno.errorcode.get(e, str(e))
