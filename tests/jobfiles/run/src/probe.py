"""What a ferry run command sees: `probe.py read NAME=PATH ...` describes each input
(files with sha256, whether it sits on a FUSE mount, whether writing is refused);
`probe.py write NAME=DIR ...` writes the same small tree into each output folder.
Either way the report goes to ./outputs/probe.json (the run's artifacts) and stdout."""
import errno
import hashlib
import json
import os
import sys


def fuse_mount_of(path):
    """The FUSE mount point path is on (longest match in mountinfo), or None."""
    path = os.path.abspath(path)
    best = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            point = parts[4].replace("\\040", " ")
            fstype = parts[parts.index("-") + 1]
            if path == point or path.startswith(point.rstrip("/") + "/"):
                if best is None or len(point) >= len(best[0]):
                    best = (point, fstype)
    return best[0] if best and best[1].startswith("fuse") else None


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def describe(name, value):
    d = {"value": value, "exists": os.path.exists(value), "fuse": None}
    if not d["exists"]:
        return d
    d["fuse"] = fuse_mount_of(value)
    if os.path.isdir(value):
        d["kind"] = "dir"
        d["files"] = {}
        for root, _, files in os.walk(value):
            for fn in files:
                p = os.path.join(root, fn)
                d["files"][os.path.relpath(p, value)] = sha(p)
        target = value
    else:
        d["kind"] = "file"
        d["sha256"] = sha(value)
        target = os.path.dirname(value)
    if name.endswith("_mount"):  # never write into a local input or a download
        try:
            with open(os.path.join(target, ".probe-write"), "w") as f:
                f.write("x")
            d["write"] = "allowed"
        except OSError as e:
            d["write"] = errno.errorcode.get(e.errno, str(e.errno))
    return d


def write(name, folder):
    files = {
        "hello.txt": ("hello from %s\n" % name).encode(),
        "deep/er/seq.txt": "".join("%d\n" % i for i in range(1, 200001)).encode(),
        "empty.txt": b"",
    }
    for rel, data in files.items():
        p = os.path.join(folder, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    return {"value": folder, "fuse": fuse_mount_of(folder),
            "files": {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}}


def main():
    verb, pairs = sys.argv[1], sys.argv[2:]
    report = {"cwd": os.getcwd(), "args": pairs, "items": {}}
    for pair in pairs:
        name, _, value = pair.partition("=")
        report["items"][name] = describe(name, value) if verb == "read" else write(name, value)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/probe.json", "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    print(json.dumps(report, sort_keys=True))


main()
