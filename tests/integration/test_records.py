#!/usr/bin/env python3
"""Run records as untrusted input, and the `ferry job` command line, against Azurite.

Records (runs/<id>/run.json) are written here straight into the default datastore, as
anyone who can write to it could: good ones, forged ones (output names that climb out of
-o DIR, output paths on another host) and damaged ones (truncated, wrong types, quotes,
unicode, huge). ferry job must answer each forged or damaged record with one line and
exit 1, write nothing outside -o DIR and send nothing to a host other than the run's
datastore (a counting proxy in front of the same Azurite stands for that host).

Run: python3 tests/integration/test_records.py [test_name ...]
"""
import json
import os
import select
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, check_in  # noqa: E402
from httpproxy import HttpProxy  # noqa: E402

DEFAULT = "azureml-blobstore"  # workspaceblobstore's container
STORE = "azureml://datastores/workspaceblobstore/paths/"

az = None
blobs = None
tmp = None


def setup():
    global az, blobs, tmp
    az = ft.Azurite().start()
    tmp = ft.make_tmpdir("records")
    ok("datastore", "add", "workspaceblobstore", "--endpoint", az.endpoint, "--container",
       DEFAULT, "--credential", "emulator", "--create-container")
    blobs = az.client().with_container(DEFAULT)
    blobs.create_container()


def teardown():
    az.stop()


# --------------------------------------------------------------------------------------
# Helpers

def ferry(*args):
    # The account's key is in the environment, as a user's would be: a request ferry
    # sent to a URL of another host would be signed with it.
    return ft.ferry_cli(*args, cwd=tmp)


def ok(*args):
    return ft.ferry_ok(*args, cwd=tmp)


def stamp(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def record(rid, status="Completed", exit_code=0, queued=None, duration=42, outputs=None,
           experiment="records", display=None):
    """A record as ferry run writes it."""
    q = queued if queued is not None else time.time() - 3600
    final = status in ("Completed", "Failed", "Canceled")
    times = {"Queued": stamp(q), "Preparing": stamp(q + 1), "Running": stamp(q + 2),
             "Finalizing": stamp(q + duration) if final else None,
             "Completed": None, "Failed": None, "Canceled": None}
    if final:
        times[status] = stamp(q + duration)
    if outputs is None:
        outputs = [{"name": "model", "mode": "upload",
                    "path": STORE + "runs/%s/outputs/model/" % rid}]
    return {"id": rid, "status": status, "experiment_name": experiment,
            "display_name": display or rid, "kind": "command", "job_file": "job.yml",
            "command": "python train.py", "node": "node0",
            "exit_code": exit_code if final else None,
            "error": None if status == "Completed" else "the command exited with status 1",
            "times": times, "inputs": [], "outputs": outputs}


def put_record(rid, rec):
    body = rec if isinstance(rec, bytes) else json.dumps(rec).encode()
    blobs.put_blob("runs/%s/run.json" % rid, body)


def put_run(rid, rec=None, log=b"hello\n"):
    put_record(rid, rec if rec is not None else record(rid))
    blobs.put_blob("runs/%s/user_logs/std_log.txt" % rid, log)
    blobs.put_blob("runs/%s/outputs/model/model.json" % rid, b'{"w": 1}\n')


def tree(root):
    """Every path under root, relative to it."""
    out = set()
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def one_line(r, *needles, status=1):
    check_eq(r.returncode, status, "exit status (stderr: %r)" % r.stderr)
    lines = r.stderr.strip().splitlines()
    check_eq(len(lines), 1, "lines on stderr (%r)" % r.stderr)
    for n in needles:
        check_in(n, lines[0], "the error line")
    return lines[0]


# --------------------------------------------------------------------------------------
# Forged records

def test_forged_output_names_write_nothing_outside_the_folder():
    for i, name in enumerate(["../../x", "a/b", ".", "..", "/abs", "x y", ""]):
        rid = "run_forged_name_%d" % i
        path = STORE + "runs/%s/outputs/model/" % rid
        put_run(rid, record(rid, outputs=[{"name": name, "mode": "upload", "path": path}]))
        box = ft.make_tmpdir("box")
        dst = os.path.join(box, "a", "b", "dl")
        before = tree(box)
        for args in (["--all"], ["--output", name]):
            r = ferry("job", "download", rid, *args, "-o", dst)
            one_line(r, "runs/%s/run.json is damaged" % rid, "outputs")
            outside = {p for p in tree(box) - before if not (
                p == os.path.join("a", "b", "dl") or p.startswith(os.path.join("a", "b", "dl", ""))
                or os.path.join("a", "b", "dl").startswith(p + os.sep))}
            check_eq(sorted(outside), [], "files written outside -o DIR for name %r" % name)
            check_eq(tree(dst) if os.path.isdir(dst) else set(), set(),
                     "what a refused record left in -o DIR (name %r)" % name)


def test_forged_output_on_another_host_gets_no_request():
    with HttpProxy(az.port) as proxy:
        other = proxy.url(az.url(DEFAULT))
        forged = [other + "/runs/run_forged_host/outputs/model/",
                  "http://127.0.0.1:%d/devstoreaccount1/other/x/" % az.port,
                  "https://attacker.example/devstoreaccount1/%s/x/" % DEFAULT]
        for i, path in enumerate(forged):
            rid = "run_forged_host_%d" % i
            put_run(rid, record(rid, outputs=[{"name": "model", "mode": "upload", "path": path}]))
            dst = os.path.join(ft.make_tmpdir("dl"), "out")
            for args in (["--all"], ["--output", "model"]):
                r = ferry("job", "download", rid, *args, "-o", dst)
                one_line(r, "runs/%s/run.json" % rid, "outside the run's datastore")
            r = ferry("job", "show", rid)
            check_eq(r.returncode, 0, "ferry job show of a record that names another host "
                     "(stderr %r)" % r.stderr)
        check_eq(proxy.count(), 0, "requests the other host received")


def test_damaged_records_get_one_line():
    huge = record("run_huge")
    huge["command"] = "x" * (9 << 20)
    cases = {
        "run_trunc": (json.dumps(record("run_trunc"))[:150].encode(), "damaged"),
        "run_notjson": (b"<html>hello</html>", "damaged"),
        "run_empty": (b"", "damaged"),
        "run_array": (b"[1, 2, 3]", "not an object"),
        "run_type": (json.dumps(dict(record("run_type"), status=5)).encode(),
                     "'status' is not a string"),
        "run_badstatus": (json.dumps(dict(record("run_badstatus"), status="Done\"; rm")).encode(),
                          "'status'"),
        "run_missing": (json.dumps({k: v for k, v in record("run_missing").items()
                                    if k != "times"}).encode(), "'times'"),
        "run_idmismatch": (json.dumps(record("run_other")).encode(), "'id'"),
        "run_quotes": (json.dumps(dict(record("run_quotes"), id='run"quotes')).encode(), "'id'"),
        "run_unicode": (json.dumps(dict(record("run_unicode"),
                                        experiment_name="caf\u00e9 \u202e\x1b[2J")).encode(),
                        "'experiment_name'"),
        "run_badtime": (json.dumps(dict(record("run_badtime"),
                                        times=dict(record("x")["times"], Queued="yesterday"))
                                   ).encode(), "'times.Queued'"),
        "run_exit": (json.dumps(dict(record("run_exit"), exit_code="0")).encode(),
                     "'exit_code'"),
        "run_huge": (json.dumps(huge).encode(), "larger than"),
        "run_bytes": (b'{"id": "run_bytes", "status": "\xff\xfe"}', "damaged"),
    }
    for rid, (body, needle) in cases.items():
        put_run(rid, body)
        for verb in ("show", "logs", "download"):
            args = ["job", verb, rid] + (["-o", os.path.join(tmp, "dmg")] if verb == "download"
                                         else [])
            line = one_line(ferry(*args), "run %s:" % rid, needle)
            check(all(ch.isprintable() for ch in line), "unprintable error line %r" % line)


def test_good_record_shows_as_written():
    rid = "run_good"
    rec = record(rid, display="caf\u00e9 \u2014 a \"quoted\" name")
    put_run(rid, rec)
    r = ok("job", "show", rid)
    check_eq(json.loads(r.stdout), rec, "ferry job show against the record")


# --------------------------------------------------------------------------------------
# The command line

def test_help_usage_and_exit_statuses():
    for args in (["job", "--help"], ["job", "list", "--help"], ["job", "show", "--help"],
                 ["job", "logs", "--help"], ["job", "download", "-h"]):
        r = ferry(*args)
        check_eq(r.returncode, 0, "ferry %s exit status" % " ".join(args))
        check_in("usage: ferry job", r.stdout, "ferry %s stdout" % " ".join(args))
        check_eq(r.stderr, "", "ferry %s stderr" % " ".join(args))
    r = ferry("job", "logs", "run_x", "--folow")
    check_eq(r.returncode, 2, "exit status of an unknown flag")
    check_in("'--folow' (did you mean '--follow'?)", r.stderr, "unknown flag message")
    r = ferry("job", "frobnicate")
    check_eq(r.returncode, 2, "exit status of an unknown verb")
    check_in("frobnicate", r.stderr, "unknown verb message")
    r = ferry("job", "show")
    check_eq(r.returncode, 2, "exit status without RUN")
    r = ferry("job", "show", "../../etc")
    check_eq(r.returncode, 2, "exit status of a RUN that is not a run id")
    r = ferry("job", "show", "run_no_such_run")
    one_line(r, "run_no_such_run")


def test_download_of_an_unknown_output_fails():
    rid = "run_outputs"
    outs = [{"name": n, "mode": "upload", "path": STORE + "runs/%s/outputs/%s/" % (rid, n)}
            for n in ("model", "metrics")]
    put_run(rid, record(rid, outputs=outs))
    dst = os.path.join(tmp, "dl-nosuch")
    r = ferry("job", "download", rid, "--output", "nosuch", "-o", dst)
    line = one_line(r, "nosuch", "model", "metrics")
    ft.log(line)
    r = ok("job", "download", rid, "--output", "model", "-o", dst)
    with open(os.path.join(dst, "named-outputs", "model", "model.json"), "rb") as f:
        check_eq(f.read(), b'{"w": 1}\n', "downloaded model.json")


def test_logs_follow_exits_with_the_runs_result():
    for status, want in (("Completed", 0), ("Failed", 1), ("Canceled", 1)):
        rid = "run_follow_" + status.lower()
        put_run(rid, record(rid, status=status, exit_code=0 if status == "Completed" else 1))
        r = ferry("job", "logs", rid, "--follow")
        check_eq(r.returncode, want, "ferry job logs --follow of a %s run" % status)
        check_eq(r.stdout, "hello\n", "the log")
    # A run that ends while it is followed: the follower has printed the log (the event
    # we wait for), then the record turns Failed.
    rid = "run_follow_live"
    put_run(rid, record(rid, status="Running"))
    p = subprocess.Popen([ft.ferry_bin(), "job", "logs", rid, "--follow"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ft.ferry_env(),
                         cwd=tmp)
    try:
        ready, _, _ = select.select([p.stdout], [], [], 30)
        check(ready, "ferry job logs --follow printed nothing in 30 s")
        check_eq(p.stdout.readline(), b"hello\n", "first line followed")
        put_record(rid, record(rid, status="Failed", exit_code=3))
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check_eq(p.returncode, 1, "ferry job logs --follow of a run that failed (stderr %r)" % err)


def test_list_shows_newest_first_with_exit_code_and_duration():
    now = time.time()
    # Names sort the other way round from their times.
    runs = [("run_list_c", now - 300, "Completed", 0, 65),
            ("run_list_b", now - 200, "Failed", 3, 7),
            ("run_list_a", now - 100, "Running", None, 0)]
    for rid, q, status, code, dur in runs:
        put_run(rid, record(rid, status=status, exit_code=code, queued=q, duration=dur,
                            experiment="listing"))
    # A folder whose name is no run id is left out without echoing the name (it could
    # hold anything); records other tests damaged are named on stderr. Either
    # makes the exit status 1.
    blobs.put_blob("runs/bad 'name'/run.json", json.dumps(record("x")).encode())
    r = ferry("job", "list", "--experiment", "listing")
    check_in("not a run id", r.stderr, "stderr of ferry job list")
    check("bad 'name'" not in r.stderr + r.stdout, "the folder's name was printed")
    for line in r.stderr.splitlines():
        check("is damaged" in line or "not a run id" in line,
              "unexpected line on stderr of ferry job list: %r" % line)
    check_eq(r.returncode, 1, "exit status of ferry job list")
    lines = r.stdout.splitlines()
    header = lines[0].split()
    for col in ("RUN", "STATUS", "EXIT", "DURATION"):
        check_in(col, header, "the header")
    rows = [l.split() for l in lines[1:]]
    check_eq([row[0] for row in rows], ["run_list_a", "run_list_b", "run_list_c"],
             "order of ferry job list")
    exit_col = header.index("EXIT")
    check_eq([row[exit_col] for row in rows], ["-", "3", "0"], "exit codes")
    check_in("1m05s", lines[3], "duration of run_list_c")
    check_in("7s", lines[2], "duration of run_list_b")


if __name__ == "__main__":
    ft.run()
