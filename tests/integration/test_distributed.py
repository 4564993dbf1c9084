#!/usr/bin/env python3
"""Distributed runs (`ferry run --engine slurm|mpi`, issue 11; docs/launcher.md) on two
fake nodes on this host: real Slurm daemons and real Open MPI from tests/lib/cluster.py,
the run store in Azurite.

Each run is 2 nodes x 2 processes unless said: PyTorch variables, node folders and one
ro_mount per node, an MPI world (mpi4py) under mpirun, one rank failing (the others
stopped, each node's outputs still uploaded), Ctrl-C, a Batch AI TensorFlow job
(workers and a parameter server), and a multi-node job without --engine (refused).
test_harness_engines checks the harness alone (srun and mpirun across the two nodes).

The default datastore `workspaceblobstore` is pointed at this test's Azurite (in a
private XDG_CONFIG_HOME); ferry's run folders go under a private TMPDIR (node k of a run:
$TMPDIR/ferry-run-<id>-node<k>/), so the harness also sees any mount a run leaves
behind. One Azurite, one Slurm cluster and one set of MPI hosts serve every test.

Needs: slurm-wlm, munge, openmpi-bin, python3-mpi4py (tools/install-deps); mpi4py is
Debian's, so the MPI job calls /usr/bin/python3.

Run: python3 tests/integration/test_distributed.py [test_name ...]
"""
import calendar
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import ferrytest as ft  # noqa: E402
from ferrytest import check, check_eq, check_in  # noqa: E402
from cluster import FakeMpiHosts, SlurmCluster  # noqa: E402

DEFAULT = "azureml-blobstore"  # workspaceblobstore's container
SETUP_EXIT = 125
PYTHON = "/usr/bin/python3"    # Debian's: the one with mpi4py
TEST_TIMEOUT = 90
# Variables of an outer job or launcher that must not leak into ours.
STRAY = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "MASTER_ADDR",
         "MASTER_PORT", "TF_CONFIG", "PMI_RANK", "PMI_SIZE")

# What every probe prints: the variables a distributed process may be given.
PROBE = r'''
"""Prints one line, PROBE {json}: variables, ferry mounts, and the input given as argv[1]."""
import json, os, re, sys

NAMES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "MASTER_ADDR",
         "MASTER_PORT", "TF_CONFIG", "AZ_BATCHAI_TASK_INDEX", "AZ_BATCHAI_PS_HOSTS",
         "AZ_BATCHAI_WORKER_HOSTS", "AZUREML_RUN_ID", "SLURMD_NODENAME", "SLURM_PROCID",
         "OMPI_COMM_WORLD_RANK", "TMPDIR", "AZ_BATCHAI_SHARED_JOB_TEMP",
         "AZ_BATCHAI_MPI_HOST_FILE", "AZ_BATCHAI_JOB_TEMP")


def unescape(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


mounts = []
with open("/proc/self/mountinfo") as f:
    for line in f:
        parts = line.split()
        sep = parts.index("-", 6)
        if parts[sep + 1] == "fuse.ferry":
            mounts.append(unescape(parts[4]))
out = {"env": {k: os.environ.get(k) for k in NAMES}, "mounts": mounts, "cwd": os.getcwd()}
if os.environ.get("AZ_BATCHAI_MPI_HOST_FILE"):
    with open(os.environ["AZ_BATCHAI_MPI_HOST_FILE"]) as f:
        out["hostfile"] = f.read()
shared = os.environ.get("AZ_BATCHAI_SHARED_JOB_TEMP")
out["shared_is_dir"] = bool(shared) and os.path.isdir(shared)
if len(sys.argv) > 1:
    out["data"] = os.path.normpath(sys.argv[1])
    with open(os.path.join(sys.argv[1], "in.txt")) as f:
        out["in.txt"] = f.read()
print("PROBE " + json.dumps(out, sort_keys=True), flush=True)
'''

# Rank 3 fails once the leaders (ranks 0 and 2) have written their output; the others
# would sleep 60 s. $1: the upload output, $2: a folder for the flags.
FAIL_SCRIPT = r'''
out=$1 flags=$2
echo "start $RANK"
if [ "$LOCAL_RANK" = 0 ]; then
	echo "written by rank $RANK" > "$out/rank$RANK.txt" && touch "$flags/wrote$RANK"
fi
if [ "$RANK" = 3 ]; then
	i=0
	while [ ! -e "$flags/wrote0" ] || [ ! -e "$flags/wrote2" ]; do
		i=$((i + 1)); [ $i -lt 600 ] || break; sleep 0.05
	done
	echo "rank 3 fails"
	exit 3
fi
i=0
while [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
echo "rank $RANK was not stopped"
'''

MPI_COMMAND = (PYTHON + " -c \"from mpi4py import MPI; c = MPI.COMM_WORLD; "
               "print('MPI rank=%d size=%d sum=%d' % (c.Get_rank(), c.Get_size(), "
               "c.allreduce(c.Get_rank())), flush=True)\"")

az = None
blobs = None
slurm = None
mpi = None
tmp = None       # job files, scripts, flags
runtmp = None    # ferry's TMPDIR


def setup():
    global az, blobs, slurm, mpi, tmp, runtmp
    az = ft.Azurite().start()
    tmp = ft.make_tmpdir("dist")
    runtmp = ft.make_tmpdir("disttmp")
    t0 = time.monotonic()
    slurm = SlurmCluster().start()
    mpi = FakeMpiHosts().start()
    ft.log("Slurm and the MPI hosts ready in %.2f s" % (time.monotonic() - t0))
    r = ferry("datastore", "add", "workspaceblobstore", "--endpoint", az.endpoint,
              "--container", DEFAULT, "--credential", "emulator", "--create-container")
    check(r.returncode == 0, "datastore add: %s" % r.stderr)
    blobs = az.client().with_container(DEFAULT)
    blobs.create_container()
    blobs.put_blob("data/in.txt", b"input for every node\n")
    write(os.path.join(tmp, "probe.py"), PROBE)
    write(os.path.join(tmp, "fail.sh"), FAIL_SCRIPT)


def teardown():
    for pid in run_processes():
        os.kill(pid, signal.SIGKILL)
    if mpi:
        mpi.stop()
    if slurm:
        slurm.stop()
    if az:
        az.stop()


# --------------------------------------------------------------------------------------
# Helpers

def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def env(engine=None):
    e = ft.ferry_env(account=None, key=None, extra={"TMPDIR": runtmp})
    for k in STRAY:
        e.pop(k, None)
    if engine == "slurm":
        e = slurm.env(e)
    elif engine == "mpi":
        e = mpi.env(e)
    return e


def engine_args(engine):
    if engine == "slurm":
        return ["--engine", "slurm"]
    if engine == "mpi":
        return ["--engine", "mpi", "--hostfile", mpi.hostfile]
    return []


def ferry(*args, engine=None, timeout=90):
    argv = [ft.ferry_bin()] + list(args)
    t0 = time.monotonic()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                       env=env(engine), cwd=tmp)
    out = subprocess.CompletedProcess(argv, r.returncode, r.stdout.decode("utf-8", "replace"),
                                      r.stderr.decode("utf-8", "replace"))
    out.elapsed = time.monotonic() - t0
    ft.log("ferry %s -> %d in %.1f s | %s" % (" ".join(args)[:120], out.returncode, out.elapsed,
                                            " | ".join(out.stderr.strip().splitlines())[-600:]))
    return out


def run(job, engine, *extra):
    """`ferry run job --engine ... extra`; the CompletedProcess with .id (None: no run
    began)."""
    r = ferry("run", job, *engine_args(engine), *extra, engine=engine)
    r.id = run_id_of(r.stderr)
    return r


def run_id_of(stderr):
    m = re.search(r"^ferry run: (\S+): Queued$", stderr, re.M)
    return m.group(1) if m else None


def job_file(name, text):
    return write(os.path.join(tmp, name), text)


def record(run_id):
    """The record as `ferry job show` prints it."""
    r = ferry("job", "show", run_id)
    check_eq(r.returncode, 0, "ferry job show %s: exit status (stderr %r)" % (run_id, r.stderr))
    return json.loads(r.stdout)


def get(name):
    try:
        return blobs.get_blob(name)
    except ft.BlobError as e:
        if e.status == 404:
            return None
        raise


def must_get(name):
    data = get(name)
    check(data is not None, "blob %s is missing; blobs there: %s" % (
        name, blobs.list_blobs(os.path.dirname(name.rstrip("/")) + "/")[:20]))
    return data


def rank_log(run_id, rank):
    return must_get("runs/%s/user_logs/std_log_process_%d.txt" % (run_id, rank)).decode(
        "utf-8", "replace")


def probe_of(text, what):
    """The one PROBE line in text, parsed."""
    found = [json.loads(l.split(" ", 1)[1]) for l in text.splitlines() if l.startswith("PROBE ")]
    check_eq(len(found), 1, "PROBE lines in %s (%r)" % (what, text[-400:]))
    return found[0]


def node_dir(run_id, node):
    return os.path.join(runtmp, "ferry-run-%s-node%d" % (run_id, node))


def ferry_mounts_under(path):
    return [m["path"] for m in ft.mounts() if m["fstype"] == "fuse.ferry"
            and (m["path"] == path or m["path"].startswith(path + "/"))]


def run_processes(run_id=None):
    """Pids of processes of a run (any run when run_id is None): working folder under
    ferry's TMPDIR, or the run's id in their command line or environment."""
    if runtmp is None:
        return []
    marks = [("AZUREML_RUN_ID=%s\0" % run_id).encode(), run_id.encode()] if run_id else []
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % d)
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read()
            with open("/proc/%s/environ" % d, "rb") as f:
                environ = f.read() + b"\0"
        except OSError:
            continue
        if cwd == runtmp or cwd.startswith(runtmp + "/") or any(
                m in cmd or m in environ for m in marks):
            pids.append(int(d))
    return pids


def check_clean(run_id, engine):
    """No ferry mount under ferry's TMPDIR, no process of the run and (Slurm) no job left."""
    left = ferry_mounts_under(runtmp)
    for p in reversed(left):
        ft._force_unmount(p, abort=True)
    check(not left, "run %s left ferry mounts behind: %s" % (run_id, left))
    deadline = time.monotonic() + 5
    while run_processes(run_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = run_processes(run_id)
    for pid in orphans:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            ft.log("left running: %d %r" % (pid, f.read()[:200]))
        os.kill(pid, signal.SIGKILL)
    check(not orphans, "processes of run %s still running: %s" % (run_id, orphans))
    if engine == "slurm":
        check_eq(slurm.jobs_after_end(), [], "Slurm jobs left after run %s" % run_id)


def parse_time(s):
    """A record time (2026-11-29T10:11:12Z, maybe with fractions) as seconds."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$", s or "")
    check(m, "not a record time: %r" % s)
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + float(m.group(2) or 0)


def check_processes(rec, layout, statuses="Completed", exit_codes=0):
    """rec["processes"] against layout: rank -> (node, local_rank, host, role)."""
    procs = rec.get("processes")
    check(isinstance(procs, list), "no processes list in the record: %s" % ft._short(rec, 400))
    by_rank = {p.get("rank"): p for p in procs}
    check_eq(sorted(by_rank), sorted(layout), "ranks in the record")
    check_eq(len(procs), len(layout), "processes in the record")
    for rank, (node, local, host, role) in sorted(layout.items()):
        p = by_rank[rank]
        got = (p.get("node"), p.get("local_rank"), p.get("host"), p.get("role"))
        check_eq(got, (node, local, host, role), "rank %d: (node, local_rank, host, role)" % rank)
        if statuses is not None:
            check_eq(p.get("status"), statuses, "rank %d: status" % rank)
        if exit_codes is not None:
            check_eq(p.get("exit_code"), exit_codes, "rank %d: exit_code" % rank)
    return by_rank


def data_input():
    return """inputs:
  data:
    type: uri_folder
    path: azureml://datastores/workspaceblobstore/paths/data/
    mode: ro_mount
"""


def distributed(kind, nodes=2, per_node=2):
    return """resources:
  instance_count: %d
distribution:
  type: %s
  process_count_per_instance: %d
""" % (nodes, kind, per_node)


def pytorch_job(name, command, extra=""):
    return job_file(name, "type: command\nexperiment_name: distributed\ncommand: %s\n%s%s%s" % (
        json.dumps(command), data_input(), distributed("pytorch"), extra))


# --------------------------------------------------------------------------------------
# The harness alone

def test_harness_engines():
    """srun and mpirun each start 4 processes over the two fake nodes, 2 a node; mpi4py's
    world spans both nodes."""
    r = subprocess.run(["srun", "-N2", "--ntasks-per-node=2", "sh", "-c",
                        "echo $SLURM_PROCID $SLURM_NODEID $SLURM_LOCALID $SLURMD_NODENAME"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                       env=slurm.env())
    check_eq(r.returncode, 0, "srun exit status (stderr %r)" % r.stderr[-500:])
    check_eq(sorted(r.stdout.splitlines()), ["0 0 0 n1", "1 0 1 n1", "2 1 0 n2", "3 1 1 n2"],
             "srun: PROCID NODEID LOCALID NODENAME")
    check_eq(slurm.jobs_after_end(), [], "Slurm jobs left")

    want_hosts = mpi.hosts if mpi.own_hostnames else None
    r = subprocess.run(["mpirun", "--hostfile", mpi.hostfile, "--map-by", "ppr:2:node", "-np", "4",
                        "sh", "-c", "echo $OMPI_COMM_WORLD_RANK $OMPI_COMM_WORLD_LOCAL_RANK "
                        "$OMPI_COMM_WORLD_SIZE $(hostname)"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                       env=mpi.env())
    check_eq(r.returncode, 0, "mpirun exit status (stderr %r)" % r.stderr[-500:])
    got = sorted(l.split() for l in r.stdout.splitlines())
    check_eq([l[:3] for l in got], [["0", "0", "4"], ["1", "1", "4"], ["2", "0", "4"],
                                    ["3", "1", "4"]], "mpirun: RANK LOCAL_RANK SIZE")
    if want_hosts:
        check_eq([l[3] for l in got], [want_hosts[0]] * 2 + [want_hosts[1]] * 2,
                 "mpirun: the hostnames the processes see")

    r = subprocess.run(["mpirun", "--hostfile", mpi.hostfile, "--map-by", "ppr:2:node", "-np", "4",
                        "sh", "-c", MPI_COMMAND], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60, env=mpi.env())
    check_eq(r.returncode, 0, "mpirun mpi4py exit status (stderr %r)" % r.stderr[-800:])
    check_eq(sorted(re.findall(r"MPI rank=\d size=\d sum=\d+", r.stdout)),
             ["MPI rank=%d size=4 sum=6" % i for i in range(4)], "mpi4py's world")


# --------------------------------------------------------------------------------------
# ferry run --engine

def test_slurm_pytorch_ranks_variables_and_mounts():
    job = pytorch_job("pytorch.yml", "%s %s/probe.py ${{inputs.data}}" % (PYTHON, tmp))
    r = run(job, "slurm")
    check(r.id, "no run began (stderr %r)" % r.stderr[-800:])
    check_eq(r.returncode, 0, "exit status (stderr %r)" % r.stderr[-800:])
    check_clean(r.id, "slurm")
    rec = record(r.id)
    check_eq(rec["status"], "Completed", "status")
    check_eq((rec.get("engine"), rec.get("distribution"), rec.get("node_count")),
             ("slurm", "pytorch", 2), "engine, distribution, node_count")
    hosts = ["n1", "n2"]
    check_processes(rec, {k: (k // 2, k % 2, hosts[k // 2], None) for k in range(4)})
    ports = set()
    for rank in range(4):
        node = rank // 2
        p = probe_of(rank_log(r.id, rank), "std_log_process_%d.txt" % rank)
        e = p["env"]
        got = {k: e[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE",
                                 "NODE_RANK", "MASTER_ADDR", "AZUREML_RUN_ID", "SLURMD_NODENAME")}
        check_eq(got, {"RANK": str(rank), "LOCAL_RANK": str(rank % 2), "WORLD_SIZE": "4",
                       "LOCAL_WORLD_SIZE": "2", "NODE_RANK": str(node), "MASTER_ADDR": "n1",
                       "AZUREML_RUN_ID": r.id, "SLURMD_NODENAME": hosts[node]},
                 "rank %d: variables" % rank)
        port = e["MASTER_PORT"] or ""
        check(re.fullmatch(r"[1-9]\d{0,4}", port) and int(port) < 65536,
              "rank %d: MASTER_PORT %r" % (rank, port))
        ports.add(port)
        nd = node_dir(r.id, node)
        mine = [m for m in p["mounts"] if m == nd or m.startswith(nd + "/")]
        check(p["data"].startswith(nd + "/"), "rank %d: inputs.data %s is not under its node "
              "folder %s" % (rank, p["data"], nd))
        check_eq(mine, [p["data"]], "rank %d: ferry mounts under its node folder" % rank)
        check_eq(p["in.txt"], "input for every node\n", "rank %d: in.txt through the mount" % rank)
    check_eq(len(ports), 1, "MASTER_PORT values across ranks (%s)" % sorted(ports))


def test_mpi_engine_runs_one_mpi_world():
    job = job_file("mpi.yml", "type: command\nexperiment_name: distributed\ncommand: %s\n%s" % (
        json.dumps(MPI_COMMAND), distributed("mpi")))
    r = run(job, "mpi")
    check(r.id, "no run began (stderr %r)" % r.stderr[-800:])
    check_eq(r.returncode, 0, "exit status (stderr %r)" % r.stderr[-800:])
    check_clean(r.id, "mpi")
    rec = record(r.id)
    check_eq(rec["status"], "Completed", "status")
    check_eq((rec.get("engine"), rec.get("distribution"), rec.get("node_count")),
             ("mpi", "mpi", 2), "engine, distribution, node_count")
    check_processes(rec, {k: (k // 2, k % 2, mpi.hosts[k // 2], None) for k in range(4)})
    for rank in range(4):
        found = re.findall(r"MPI rank=\d+ size=\d+ sum=\d+", rank_log(r.id, rank))
        check_eq(found, ["MPI rank=%d size=4 sum=6" % rank],
                 "what mpi4py said in std_log_process_%d.txt" % rank)


def test_failing_rank_stops_the_others_and_outputs_are_saved():
    """Rank 3 exits 3 once ranks 0 and 2 (the leaders) wrote their output; ranks 0-2 would
    run 60 s more."""
    flags = ft.make_tmpdir("flags")
    job = pytorch_job("fail.yml", "sh %s/fail.sh ${{outputs.out}} %s" % (tmp, flags), """outputs:
  out:
    type: uri_folder
    mode: upload
""")
    r = run(job, "slurm")
    check(r.id, "no run began (stderr %r)" % r.stderr[-800:])
    check_eq(r.returncode, 3, "exit status (stderr %r)" % r.stderr[-800:])
    check(r.elapsed < 50, "ferry run took %.1f s: the other ranks were not stopped" % r.elapsed)
    check_clean(r.id, "slurm")
    rec = record(r.id)
    check_eq(rec["status"], "Failed", "status")
    ft.log("error: %r" % rec.get("error"))
    check_in("rank 3", rec.get("error") or "", "error")
    check_in("status 3", rec.get("error") or "", "error")
    layout = {k: (k // 2, k % 2, ["n1", "n2"][k // 2], None) for k in range(4)}
    procs = check_processes(rec, layout, statuses=None, exit_codes=None)
    check_eq((procs[3]["status"], procs[3]["exit_code"]), ("Failed", 3),
             "rank 3: status, exit_code")
    end3 = parse_time(procs[3]["ended"])
    for rank in range(3):
        check(procs[rank]["status"] not in ("Completed", "Running", "Queued"),
              "rank %d: status %s" % (rank, procs[rank]["status"]))
        ended = parse_time(procs[rank]["ended"])
        check(ended - end3 <= 15, "rank %d ended %.0f s after rank 3" % (rank, ended - end3))
        check("was not stopped" not in rank_log(r.id, rank), "rank %d ran to its end" % rank)
    check_in("rank 3 fails", rank_log(r.id, 3), "std_log_process_3.txt")
    for rank in (0, 2):
        check_eq(must_get("runs/%s/outputs/out/rank%d.txt" % (r.id, rank)),
                 b"written by rank %d\n" % rank, "the output node %d's leader wrote" % (rank // 2))


def test_ctrl_c_cancels_every_rank():
    """SIGINT to ferry run's process group (a terminal's Ctrl-C) once every rank runs."""
    job = pytorch_job("cancel.yml", 'echo "ready $RANK"; i=0; while [ $i -lt 600 ]; '
                      'do sleep 0.1; i=$((i + 1)); done; echo "never printed $RANK"')
    errpath = os.path.join(tmp, "cancel.stderr")
    with open(errpath, "wb") as errf:
        # its own process group, as a shell runs a foreground job: Ctrl-C is SIGINT to
        # that group (srun, ferry's child, gets it too)
        p = subprocess.Popen([ft.ferry_bin(), "run", job] + engine_args("slurm"),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errf,
                             env=env("slurm"), cwd=tmp, start_new_session=True)
    out = b""
    rid = None
    try:
        deadline = time.monotonic() + 60
        while set(re.findall(rb"ready (\d)", out)) != {b"0", b"1", b"2", b"3"}:
            left = deadline - time.monotonic()
            check(left > 0, "not every rank printed 'ready' within 60 s: stdout %r, stderr %r"
                  % (out[-400:], ft._read(errpath)[-600:]))
            ready, _, _ = select.select([p.stdout], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(p.stdout.fileno(), 65536)
                check(chunk or p.poll() is None, "ferry run exited %s early: %s" % (
                    p.poll(), ft._read(errpath)[-600:]))
                out += chunk
        rid = run_id_of(ft._read(errpath))
        check(rid, "no run id on stderr: %r" % ft._read(errpath)[-500:])
        t0 = time.monotonic()
        os.killpg(p.pid, signal.SIGINT)
        try:
            rest, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise ft.CheckFailed("ferry run did not exit within 30 s of SIGINT: %s"
                                 % ft._read(errpath)[-600:])
        out += rest
        elapsed = time.monotonic() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    stderr = ft._read(errpath)
    ft.log("ferry run cancel.yml -> %d, %.1f s after SIGINT | %s" % (
        p.returncode, elapsed, " | ".join(stderr.strip().splitlines())[-600:]))
    check(p.returncode not in (0, SETUP_EXIT), "ferry run exited %d after SIGINT" % p.returncode)
    check_in("%s: Canceled" % rid, stderr.strip().splitlines()[-1], "last line on stderr")
    check_clean(rid, "slurm")
    check_eq(ferry_mounts_under(runtmp), [], "ferry mounts under TMPDIR")
    rec = record(rid)
    check_eq(rec["status"], "Canceled", "status")
    layout = {k: (k // 2, k % 2, ["n1", "n2"][k // 2], None) for k in range(4)}
    for rank, p in sorted(check_processes(rec, layout, statuses=None, exit_codes=None).items()):
        check(p["status"] not in ("Completed", "Running", "Queued") and p["ended"],
              "rank %d after SIGINT: status %s, ended %s" % (rank, p["status"], p["ended"]))
    check("never printed" not in out.decode("utf-8", "replace"), "a rank went on after SIGINT")


def test_batchai_tensorflow_workers_and_parameter_server():
    # the script by absolute path, in a local folder of its own
    os.makedirs(os.path.join(tmp, "tf"), exist_ok=True)
    script = write(os.path.join(tmp, "tf", "tf_probe.py"), PROBE)
    job = job_file("tf.json", json.dumps({"properties": {
        "nodeCount": 2,
        "experimentName": "distributed-tf",
        "tensorFlowSettings": {
            "pythonInterpreterPath": PYTHON,
            "pythonScriptFilePath": script,
            "workerCount": 2,
            "parameterServerCount": 1,
        },
    }}, indent=2))
    shared = ft.make_tmpdir("shared")
    r = run(job, "slurm", "--shared-temp", shared)
    check(r.id, "no run began (stderr %r)" % r.stderr[-800:])
    check_eq(r.returncode, 0, "exit status (stderr %r)" % r.stderr[-800:])
    check_clean(r.id, "slurm")
    rec = record(r.id)
    check_eq(rec["status"], "Completed", "status")
    check_eq((rec.get("engine"), rec.get("distribution"), rec.get("node_count")),
             ("slurm", "tensorflow", 2), "engine, distribution, node_count")
    # tasks: worker 0, worker 1, ps 0 (ranks 0-2); task t on node t % 2 as local index t / 2
    layout = {0: (0, 0, "n1", "worker"), 1: (1, 0, "n2", "worker"), 2: (0, 1, "n1", "ps")}
    check_processes(rec, layout)
    cluster = {"worker": ["n1:2223", "n2:2223"], "ps": ["n1:2222"]}
    for rank, (role, index) in enumerate((("worker", 0), ("worker", 1), ("ps", 0))):
        p = probe_of(rank_log(r.id, rank), "std_log_process_%d.txt" % rank)
        e = p["env"]
        try:
            tf_config = json.loads(e["TF_CONFIG"] or "null")
        except ValueError:
            raise ft.CheckFailed("rank %d: TF_CONFIG is not JSON: %r" % (rank, e["TF_CONFIG"]))
        check_eq(tf_config, {"cluster": cluster, "task": {"type": role, "index": index}},
                 "rank %d: TF_CONFIG" % rank)
        check_eq((e["AZ_BATCHAI_PS_HOSTS"], e["AZ_BATCHAI_WORKER_HOSTS"],
                  e["AZ_BATCHAI_TASK_INDEX"]), ("n1:2222", "n1:2223,n2:2223", str(index)),
                 "rank %d: AZ_BATCHAI_PS_HOSTS, _WORKER_HOSTS, _TASK_INDEX" % rank)
        check_eq(e["SLURMD_NODENAME"], layout[rank][2], "rank %d: its node" % rank)
        check_eq((e["AZ_BATCHAI_SHARED_JOB_TEMP"], p["shared_is_dir"]),
                 (os.path.join(shared, r.id), True), "rank %d: AZ_BATCHAI_SHARED_JOB_TEMP" % rank)
        check_eq(os.path.dirname(e["AZ_BATCHAI_JOB_TEMP"] or ""), node_dir(r.id, layout[rank][0]),
                 "rank %d: AZ_BATCHAI_JOB_TEMP is in its node's folder" % rank)
        check_eq(p.get("hostfile"), "n1 slots=2\nn2 slots=1\n",
                 "rank %d: the file AZ_BATCHAI_MPI_HOST_FILE names" % rank)
        out = must_get("runs/%s/user_logs/stdout-%d.txt" % (r.id, rank)).decode()
        check_eq(probe_of(out, "stdout-%d.txt" % rank), p, "rank %d: stdout-%d.txt" % (rank, rank))
    extra = get("runs/%s/user_logs/std_log_process_3.txt" % r.id)
    check(extra is None or b"PROBE" not in extra, "slot 3 (no task) ran the script")


def test_logs_of_each_rank_and_an_allocation_of_ones_own():
    """Inside an allocation (salloc, as in an sbatch script) ferry's srun runs in it;
    ferry job logs shows rank 0, --rank N rank N, and refuses a rank the run lacks."""
    job = job_file("alloc.yml", "type: command\ncommand: %s\n%s" % (json.dumps(
        'echo "rank $RANK of job $SLURM_JOB_ID"'), distributed("pytorch")))
    argv = ["salloc", "--nodes=2", "--ntasks-per-node=2", "sh", "-c",
            'echo "allocation $SLURM_JOB_ID" >&2; exec "$@"', "sh", ft.ferry_bin(), "run", job,
            "--engine", "slurm"]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=TEST_TIMEOUT, env=env("slurm"), cwd=tmp)
    ft.log("salloc ... ferry run -> %d | %s" % (r.returncode, " | ".join(
        r.stderr.strip().splitlines())[-600:]))
    check_eq(r.returncode, 0, "exit status (stderr %r)" % r.stderr[-800:])
    outer = re.search(r"^allocation (\d+)$", r.stderr, re.M)
    rid = run_id_of(r.stderr)
    check(outer and rid, "no allocation or run id on stderr: %r" % r.stderr[-800:])
    check_clean(rid, "slurm")
    for rank in range(4):
        check_eq(rank_log(rid, rank).strip(), "rank %d of job %s" % (rank, outer.group(1)),
                 "std_log_process_%d.txt" % rank)
    shown = ferry("job", "logs", rid)
    check_eq((shown.returncode, shown.stdout.strip()), (0, "rank 0 of job %s" % outer.group(1)),
             "ferry job logs (rank 0)")
    shown = ferry("job", "logs", rid, "--rank", "2", "--follow")
    check_eq((shown.returncode, shown.stdout.strip()), (0, "rank 2 of job %s" % outer.group(1)),
             "ferry job logs --rank 2 --follow")
    shown = ferry("job", "logs", rid, "--rank", "4")
    check_eq(shown.returncode, 1, "ferry job logs --rank 4: exit status")
    check_in("no rank 4", shown.stderr, "ferry job logs --rank 4: the error")


def test_example_data_parallel_matches_one_process():
    """examples/tiny-regression-mpi (mpi4py, 2 nodes x 2 ranks, srun --mpi=pmix) fits the
    model examples/tiny-regression fits in one process, within compare.py's tolerance."""
    examples = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
    data = ft.make_tmpdir("iris")
    subprocess.run([sys.executable, os.path.join(examples, "tiny-regression-mpi", "make_data.py"),
                    data, "--rows", "500"], check=True, timeout=30)
    with open(os.path.join(data, "train.csv"), "rb") as f:
        blobs.put_blob("datasets/iris-like/train.csv", f.read())
    models = []
    for example, engine in (("tiny-regression", None), ("tiny-regression-mpi", "slurm")):
        r = run(os.path.join(examples, example, "job.yml"), engine)
        check_eq(r.returncode, 0, "%s: exit status (stderr %r)" % (example, r.stderr[-800:]))
        check_clean(r.id, engine)
        path = os.path.join(tmp, "%s.json" % example)
        write(path, must_get("runs/%s/outputs/model/model.json" % r.id).decode())
        models.append(path)
    c = subprocess.run([sys.executable, os.path.join(examples, "tiny-regression-mpi",
                                                     "compare.py")] + models,
                       capture_output=True, text=True, timeout=30)
    ft.log("compare.py: %s%s" % (c.stdout, c.stderr))
    check_eq(c.returncode, 0, "compare.py of the two models (%s %s)" % (c.stdout, c.stderr))


def test_multi_node_job_without_engine_is_refused():
    job = job_file("two-nodes.yml", "type: command\ncommand: echo the command ran\n"
                   "resources:\n  instance_count: 2\n")
    r = run(job, None)
    check_eq(r.returncode, SETUP_EXIT, "exit status (stderr %r)" % r.stderr)
    lines = r.stderr.strip().splitlines()
    check_eq(len(lines), 1, "lines on stderr (%r)" % r.stderr)
    check_in("--engine", lines[0], "the error line")
    check("the command ran" not in r.stdout, "the command ran")


if __name__ == "__main__":
    ft.run()
