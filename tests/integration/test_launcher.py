#!/usr/bin/env python3
"""ferry run's execution against Azurite behind the fault proxy (tests/lib/httpproxy.py):
the run store opened once, logs saved by a thread of their own (a stalled store does not
hold the command's output), timeout and Ctrl-C that win whatever the command does with
its output, rw_mount outputs whose last commit fails, an unreachable run store, and a
missing ro_mount input.

The default datastore `workspaceblobstore` is pointed at the proxy (in a private
XDG_CONFIG_HOME); ferry's run folders go under a private TMPDIR. Job files are written
by each test into its own folder.

Run: python3 tests/integration/test_launcher.py [test_name ...]
"""
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, check_in  # noqa: E402
from httpproxy import HttpProxy  # noqa: E402
from test_run import processes_in  # noqa: E402

DEFAULT = "azureml-blobstore"  # workspaceblobstore's container
SETUP_EXIT = 125
STALL = 5  # seconds a stalled request waits

az = None
px = None
blobs = None
tmp = None
runtmp = None


def setup():
    global az, px, blobs, tmp, runtmp
    az = ft.Azurite().start()
    px = HttpProxy(az.port).__enter__()
    tmp = ft.make_tmpdir("launcher")
    runtmp = ft.make_tmpdir("launchertmp")
    point_default_at(px.url(az.endpoint))
    blobs = az.client().with_container(DEFAULT)
    blobs.create_container()
    blobs.put_blob("data/in.txt", b"input\n")


def teardown():
    for pid in processes_in(runtmp):
        os.kill(pid, signal.SIGKILL)
    px.__exit__(None, None, None)
    az.stop()


def point_default_at(endpoint):
    """workspaceblobstore (a name whose file `datastore add` always replaces) at endpoint."""
    r = ferry("datastore", "add", "workspaceblobstore", "--endpoint", endpoint,
              "--container", DEFAULT, "--credential", "emulator", "--create-container")
    check(r.returncode == 0, "datastore add: %s" % r.stderr)


def env():
    return ft.ferry_env(account=None, key=None, extra={"TMPDIR": runtmp})


def ferry(*args, timeout=120):
    argv = [ft.ferry_bin()] + list(args)
    t0 = time.monotonic()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=env(), cwd=tmp)
    out = subprocess.CompletedProcess(argv, r.returncode, r.stdout.decode("utf-8", "replace"),
                                      r.stderr.decode("utf-8", "replace"))
    out.elapsed = time.monotonic() - t0
    ft.log("ferry %s -> %d in %.1f s | %s" % (" ".join(args)[:100], out.returncode, out.elapsed,
                                            " | ".join(out.stderr.strip().splitlines())[-600:]))
    return out


def job_file(name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def run_id_of(stderr):
    m = re.search(r"^ferry run: (\S+): Queued$", stderr, re.M)
    return m.group(1) if m else None


def record(run_id):
    return json.loads(blobs.get_blob("runs/%s/run.json" % run_id))


def std_log(run_id):
    return blobs.get_blob("runs/%s/user_logs/std_log.txt" % run_id).decode("utf-8", "replace")


class Running:
    """`ferry run job` in the background, its stdout read line by line."""

    def __init__(self, job):
        self.errpath = job + ".stderr"
        with open(self.errpath, "wb") as errf:
            self.p = subprocess.Popen([ft.ferry_bin(), "run", job], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=errf, env=env(), cwd=tmp,
                                      start_new_session=True)
        self.out = b""

    def wait_for(self, needle, seconds):
        """Seconds until needle appeared on stdout; fails after `seconds`."""
        t0 = time.monotonic()
        while needle.encode() not in self.out:
            left = t0 + seconds - time.monotonic()
            check(left > 0, "%r not on ferry run's stdout within %d s (stdout %r, stderr %r)"
                  % (needle, seconds, self.out[-300:], self.stderr()[-500:]))
            ready, _, _ = select.select([self.p.stdout], [], [], left)
            if ready:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                check(chunk or self.p.poll() is None or needle.encode() in self.out,
                      "ferry run ended (%s) before %r: %s" % (self.p.poll(), needle,
                                                             self.stderr()[-500:]))
                self.out += chunk
        return time.monotonic() - t0

    def stderr(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def finish(self, timeout):
        """Waits for ferry run to end: (exit status, seconds it took)."""
        t0 = time.monotonic()
        try:
            rest, _ = self.p.communicate(timeout=timeout)
            self.out += rest
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
        return self.p.returncode, time.monotonic() - t0

    def kill(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()


def log_put_stall():
    """Every PUT of a log (user_logs/...) waits STALL seconds before it goes on."""
    rule = px.add_fault("PUT", stall=STALL)
    rule.matches = lambda req: (req.method == "PUT" and req.blob is not None
                                and "/user_logs/" in req.blob)
    return rule


# --------------------------------------------------------------------------------------

def test_stalled_log_uploads_do_not_hold_the_output():
    """Each line the command prints reaches the terminal while the log uploads stall: the
    command prints a line, then waits for a file the test creates on seeing it."""
    flags = os.path.join(tmp, "flags")
    os.makedirs(flags, exist_ok=True)
    job = job_file("stall.yml", """type: command
command: >-
  for i in 1 2 3 4; do echo "line $i";
  while [ ! -e %s/$i ]; do sleep 0.02; done; done; echo "all done"
""" % flags)
    rule = log_put_stall()
    run = Running(job)
    try:
        run.wait_for("line 1", 60)
        slowest = 0.0
        for i, nxt in ((1, "line 2"), (2, "line 3"), (3, "line 4"), (4, "all done")):
            open(os.path.join(flags, str(i)), "w").close()
            slowest = max(slowest, run.wait_for(nxt, 30))
        status, _ = run.finish(120)
    finally:
        run.kill()
        px.clear_faults()
    ft.log("slowest line after its cue: %.2f s; stalled log PUTs: %d" % (slowest, rule.hits))
    check(rule.hits >= 1, "no log upload was stalled: the test tested nothing")
    check(slowest < STALL / 2, "a line took %.1f s to reach the terminal while the log "
          "uploads stalled for %d s" % (slowest, STALL))
    check_eq(status, 0, "exit status (stderr %r)" % run.stderr()[-500:])
    rid = run_id_of(run.stderr())
    check_in("all done", std_log(rid), "std_log.txt")
    check_eq(record(rid)["status"], "Completed", "status")


def test_run_store_is_opened_once():
    """The default datastore is opened (probed) once for the whole run, not for every
    record, log and output."""
    job = job_file("once.yml", """type: command
command: >-
  cat ${{inputs.a}} ${{inputs.b}} > ${{outputs.up}}/both.txt; mkdir -p outputs logs;
  echo art > outputs/o.txt; echo log > logs/l.txt
inputs:
  a:
    type: uri_file
    path: azureml://datastores/workspaceblobstore/paths/data/in.txt
    mode: download
  b:
    type: uri_file
    path: azureml://datastores/workspaceblobstore/paths/data/in.txt
    mode: download
outputs:
  up:
    type: uri_folder
    mode: upload
""")
    px.reset()
    r = ferry("run", job)
    check_eq(r.returncode, 0, "exit status (stderr %r)" % r.stderr[-500:])
    probes = [q for q in px.requests() if q.kind in ("list", "container")
              and q.query.get("maxresults") == "1" and not q.query.get("prefix")]
    ft.log("requests: %s" % px.counts())
    check_eq(len(probes), 1, "probes of the default datastore's container (%s)" % probes)
    rid = run_id_of(r.stderr)
    check_eq(blobs.get_blob("runs/%s/outputs/up/both.txt" % rid), b"input\ninput\n", "output")


def timeout_job(name, command, timeout=2):
    return job_file(name, "type: command\ncommand: %s\nlimits:\n  timeout: %d\n" % (
        json.dumps(command), timeout))


def test_timeout_wins_whatever_the_command_does_with_its_output():
    cases = (
        ("redirected", "echo started; exec >/dev/null 2>&1; sleep 1000"),
        ("closed", "echo started; exec 1>&- 2>&-; sleep 1000"),
        ("background", "echo started; sleep 1000 & wait"),
    )
    for name, command in cases:
        job = timeout_job("timeout-%s.yml" % name, command)
        r = ferry("run", job, timeout=60)
        check(r.elapsed < 15, "%s: ferry run took %.1f s with limits.timeout 2"
              % (name, r.elapsed))
        check(r.returncode not in (0, SETUP_EXIT), "%s: exit status %d" % (name, r.returncode))
        rec = record(run_id_of(r.stderr))
        check_eq(rec["status"], "Failed", "%s: status" % name)
        check_in("timeout", rec["error"] or "", "%s: error in run.json" % name)
        check_eq(processes_in(runtmp), [], "%s: processes left" % name)


def test_background_child_holding_the_output_does_not_hold_the_run():
    job = job_file("background.yml", 'type: command\ncommand: "sleep 1000 & echo bye; exit 0"\n')
    r = ferry("run", job, timeout=60)
    check(r.elapsed < 15, "ferry run took %.1f s after its shell exited" % r.elapsed)
    check_eq(r.returncode, 0, "exit status (stderr %r)" % r.stderr[-400:])
    check_in("bye", r.stdout, "stdout")
    check_eq(record(run_id_of(r.stderr))["status"], "Completed", "status")
    check_eq(processes_in(runtmp), [], "processes left")


def wait_until(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while not cond():
        check(time.monotonic() < deadline, "%s: not within %d s" % (what, seconds))
        time.sleep(0.02)


def test_ctrl_c_wins_over_redirected_output():
    """SIGINT once the command has sent its output away and ignores SIGINT itself (and
    after the first log upload, so that nothing but the command is left to wait for)."""
    go, flag = os.path.join(tmp, "ctrlc-go"), os.path.join(tmp, "ctrlc-redirected")
    job = job_file("ctrlc.yml", "type: command\ncommand: %s\n" % json.dumps(
        "echo started; while [ ! -e %s ]; do sleep 0.02; done; exec >/dev/null 2>&1; "
        "trap '' INT; touch %s; sleep 1000" % (go, flag)))
    run = Running(job)
    try:
        run.wait_for("started", 60)
        rid = run_id_of(run.stderr())
        log = "runs/%s/user_logs/std_log.txt" % rid
        wait_until(lambda: px.count("PUT", blob=log), 30, "an upload of %s" % log)
        open(go, "w").close()
        wait_until(lambda: os.path.exists(flag), 30, "the command's redirection")
        t0 = time.monotonic()
        os.killpg(run.p.pid, signal.SIGINT)
        status, _ = run.finish(60)
        elapsed = time.monotonic() - t0
    finally:
        run.kill()
    ft.log("stopped %.1f s after SIGINT, exit %s" % (elapsed, status))
    check(elapsed < 15, "ferry run took %.1f s to stop after SIGINT" % elapsed)
    check(status not in (0, SETUP_EXIT), "exit status %s" % status)
    check_in("%s: Canceled" % rid, run.stderr().strip().splitlines()[-1], "last line")
    check_eq(record(rid)["status"], "Canceled", "status")
    check_eq(processes_in(runtmp), [], "processes left")


def test_run_whose_record_and_logs_are_refused_does_not_exit_0():
    """The run store refuses every write of the run once its command started: the
    command succeeds, but ferry run must not exit 0, and says so once, not at every
    status."""
    go = os.path.join(tmp, "refused-go")
    job = job_file("refused.yml", "type: command\ncommand: %s\n" % json.dumps(
        "echo started; while [ ! -e %s ]; do sleep 0.02; done; echo done" % go))
    run = Running(job)
    try:
        run.wait_for("started", 60)
        rid = run_id_of(run.stderr())
        rule = px.fail_put("runs/%s/" % rid, status=403)
        open(go, "w").close()
        status, _ = run.finish(120)
    finally:
        run.kill()
        px.clear_faults()
    err = run.stderr()
    ft.log("exit %s | %s" % (status, " | ".join(err.splitlines())[-800:]))
    check(rule.hits >= 1, "no write was refused: the test tested nothing")
    check_in("done", run.out.decode(), "the command's output")
    check(status != 0, "ferry run exited 0 though its record and logs were not saved")
    check_eq(err.count("could not record the run's status"), 1,
             "times ferry said it could not record the status")


def test_rw_mount_output_whose_commit_fails_fails_the_run():
    """The command ignores close()'s error (as many programs do): the run must not say
    Completed, and must name the file that was not saved."""
    job = job_file("lossy.yml", """type: command
command: >-
  python3 -c "f = open('${{outputs.out}}/lost.txt', 'w'); f.write('data\\\\n');
  exec('try:\\\\n f.close()\\\\nexcept OSError as e:\\\\n print(\\\\'close:\\\\', e)')"
outputs:
  out:
    type: uri_folder
    mode: rw_mount
    path: azureml://datastores/workspaceblobstore/paths/lossy/
""")
    # the create (an empty Put Blob) lands; the content's commit is refused
    rule = px.fail_put("lossy/", status=403)
    rule.matches = lambda req: (req.method == "PUT" and (req.blob or "").startswith("lossy/")
                                and req.header("content-length", "0") != "0")
    try:
        r = ferry("run", job)
    finally:
        px.clear_faults()
    check(rule.hits >= 1, "no upload of the output was refused: the test tested nothing")
    check(r.returncode != 0, "ferry run exited 0 though lost.txt was not saved (stderr %r)"
          % r.stderr[-600:])
    rid = run_id_of(r.stderr)
    rec = record(rid)
    check_eq(rec["status"], "Failed", "status")
    check_in("lost.txt", rec["error"] or "", "error in run.json")
    check(any("lost.txt" in l and "outputs.out" in l for l in r.stderr.splitlines()),
          "no stderr line names outputs.out and lost.txt: %r" % r.stderr)


def refused_for_its_run_store(job, *needles):
    """ferry run job exits 125 with one line naming needles, the command never run."""
    r = ferry("run", job)
    check_eq(r.returncode, SETUP_EXIT, "exit status (stderr %r)" % r.stderr)
    lines = r.stderr.strip().splitlines()
    check_eq(len(lines), 1, "lines on stderr (%r)" % r.stderr)
    for needle in needles:
        check_in(needle, lines[0], "the error line")
    check("the command ran" not in r.stdout, "the command ran")


def test_unreachable_run_store_exits_125_saying_what_it_is():
    port = ft.free_port()
    job = job_file("hello.yml", 'type: command\ncommand: "echo the command ran"\n')
    point_default_at("http://127.0.0.1:%d/devstoreaccount1" % port)
    try:
        refused_for_its_run_store(job, "workspaceblobstore", "127.0.0.1:%d" % port,
                                  "ferry datastore add")
    finally:
        point_default_at(px.url(az.endpoint))
    # the built-in default: the local Azurite at 127.0.0.1:10000
    if listening(10000):
        ft.log("something listens on 127.0.0.1:10000: the built-in case is not tried")
        return
    ferry("datastore", "remove", "workspaceblobstore")
    try:
        refused_for_its_run_store(job, "workspaceblobstore", "Azurite", "127.0.0.1:10000",
                                  "tools/demo", "npx azurite-blob", "ferry datastore add")
    finally:
        point_default_at(px.url(az.endpoint))


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_missing_ro_mount_input_exits_125_naming_it():
    job = job_file("missing.yml", """type: command
command: echo the command ran
inputs:
  absent:
    type: uri_folder
    path: azureml://datastores/workspaceblobstore/paths/no/such/folder/
    mode: ro_mount
""")
    r = ferry("run", job)
    check_eq(r.returncode, SETUP_EXIT, "exit status (stderr %r)" % r.stderr)
    check("the command ran" not in r.stdout, "the command ran")
    errs = [l for l in r.stderr.splitlines() if "inputs.absent" in l]
    check(errs, "no stderr line names inputs.absent: %r" % r.stderr)
    rec = record(run_id_of(r.stderr))
    check_eq(rec["status"], "Failed", "status")
    check_in("inputs.absent", rec["error"] or "", "error in run.json")


if __name__ == "__main__":
    ft.run()
