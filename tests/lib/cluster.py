"""cluster: a test harness for ferry's distributed runs (python3 stdlib only).

Real engines, fake nodes: both classes give a test two "nodes" on this one host.

  SlurmCluster    real Slurm daemons (munged, slurmctld, one slurmd per node, Slurm 22.05)
                  with a private key, socket, config, state and free ports under a temp dir;
                  nodes n1 and n2 (both 127.0.0.1), 2 CPUs each, partition `main`.
  FakeMpiHosts    real Open MPI (4.1): a hostfile naming node1 and node2 (2 slots each) and
                  an rsh agent that "logs in" to a host by running the command here, with a
                  tmpdir of its own per host, so mpirun sees two nodes.

    with SlurmCluster() as sl, FakeMpiHosts() as mh:
        subprocess.run(["srun", "-N2", "--ntasks-per-node=2", "hostname"], env=sl.env())
        subprocess.run(["mpirun", "--hostfile", mh.hostfile, "--map-by", "ppr:2:node",
                        "-np", "4", "hostname"], env=mh.env())

env(base=None) returns a whole environment (base, default os.environ, plus the engine's
variables, without stray SLURM_* / OMPI_* job variables); .vars holds only the added ones.
Neither class touches os.environ.

Nothing is left behind: the daemons run in the foreground as our children with
PR_SET_PDEATHSIG (they die with the test process, even on SIGKILL), stop() ends them (and any
process still carrying this cluster's SLURM_CONF: job steps, their tasks) and removes the
temp dir; an atexit hook stops whatever is still running, and start() first removes what a
killed earlier run left (its temp dir, found by its dead owner's pid in the name).
"""

import atexit
import contextlib
import ctypes
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

_PREFIX = "ferrycluster-"
_lock = threading.Lock()
_live = []  # started SlurmCluster / FakeMpiHosts instances


def _free_ports(n):
    """n distinct loopback TCP ports that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _set_pdeathsig():
    # Runs in the child: SIGTERM when the test process dies (even by SIGKILL).
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _mkdtemp(kind):
    # Short paths: munge's socket path must fit in sun_path (108 bytes).
    return tempfile.mkdtemp(prefix="%s%s-%d-" % (_PREFIX, kind, os.getpid()))


def _pids_with_env(needle):
    """Pids of processes (not us) whose environment contains the bytes needle."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                if needle in f.read():
                    pids.append(int(d))
        except OSError:
            continue
    return pids


def _kill_and_wait(pids, grace=5.0):
    """SIGTERM to pids, SIGKILL to those alive after grace seconds."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _alive(p)]
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cleanup_stale():
    """Removes temp dirs (and kills processes carrying their config) of earlier test
    processes that died."""
    tmp = tempfile.gettempdir()
    pat = re.compile(re.escape(_PREFIX) + r"[a-z]+-(\d+)-")
    for name in os.listdir(tmp):
        m = pat.match(name)
        if not m or os.path.exists("/proc/" + m.group(1)):
            continue
        path = os.path.join(tmp, name)
        _kill_and_wait(_pids_with_env(("=%s/" % path).encode()), grace=2.0)
        shutil.rmtree(path, ignore_errors=True)


class ClusterError(Exception):
    pass


class SlurmCluster:
    """munged + slurmctld + a slurmd per node, on free loopback ports, all in a temp dir.

        sl = SlurmCluster().start()     # or: with SlurmCluster() as sl:
        env = sl.env(os.environ)        # SLURM_CONF (and nothing of another job)
        sl.nodes                        # ['n1', 'n2']
        sl.stop()

    srun -N2 --ntasks-per-node=2 gives SLURM_PROCID 0-3, SLURM_NODEID 0/1 and
    SLURMD_NODENAME n1/n2. Node names do not resolve (NodeAddr is 127.0.0.1).
    ProctrackType is proctrack/linuxproc: a process that leaves its task (reparented
    to init) is not killed by Slurm; stop() kills whatever still has our SLURM_CONF.
    """

    def __init__(self, nodes=("n1", "n2"), cpus=2, start_timeout=20.0):
        self.nodes = list(nodes)
        self.cpus = cpus
        self.start_timeout = start_timeout
        self.dir = None
        self.conf = None
        self.procs = {}  # name -> Popen
        self.vars = {}

    # -- environment --

    def env(self, base=None):
        e = dict(os.environ if base is None else base)
        for k in list(e):
            if k.startswith(("SLURM_", "SLURMD_", "SBATCH_", "SALLOC_", "SRUN_")):
                del e[k]
        e.update(self.vars)
        return e

    def _run(self, *args, timeout=10):
        return subprocess.run(list(args), stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, env=self.env(), text=True)

    # -- life cycle --

    def start(self):
        if self.dir:
            raise ClusterError("already started")
        cleanup_stale()
        self.dir = d = _mkdtemp("slurm")
        with _lock:
            _live.append(self)
        try:
            self._start(d)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, d):
        for sub in ("munge", "state", "log", "spool"):
            os.makedirs(os.path.join(d, sub), mode=0o700)
        for n in self.nodes:
            os.makedirs(os.path.join(d, "spool", n))
        key = os.path.join(d, "munge", "key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(1024))
        sock = os.path.join(d, "munge", "sock")
        ports = _free_ports(2 + len(self.nodes))
        lines = [
            "ClusterName=ferrytest",
            "SlurmctldHost=localhost(127.0.0.1)",
            "AuthType=auth/munge",
            "AuthInfo=socket=%s" % sock,
            "CredType=cred/munge",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "StateSaveLocation=%s/state" % d,
            "SlurmdSpoolDir=%s/spool/%%n" % d,
            "TmpFS=%s/spool/%%n" % d,
            "SlurmctldPort=%d" % ports[0],
            "SlurmdPort=%d" % ports[1],
            "SlurmctldPidFile=%s/slurmctld.pid" % d,
            "SlurmdPidFile=%s/slurmd-%%n.pid" % d,
            "SlurmctldLogFile=%s/log/slurmctld.log" % d,
            "SlurmdLogFile=%s/log/slurmd-%%n.log" % d,
            "SlurmUser=%s" % pwd.getpwuid(os.geteuid()).pw_name,
            "ReturnToService=2",
            "KillWait=30",
            "MpiDefault=none",
        ]
        for n, port in zip(self.nodes, ports[2:]):
            lines.append("NodeName=%s NodeAddr=127.0.0.1 NodeHostname=%s Port=%d CPUs=%d"
                         % (n, n, port, self.cpus))
        lines.append("PartitionName=main Nodes=%s Default=YES MaxTime=INFINITE State=UP"
                     % ",".join(self.nodes))
        self.conf = os.path.join(d, "slurm.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        # MPI programs under srun --mpi=pmix: both fake nodes share this host's /dev/shm,
        # where Open MPI's shared-memory transport (vader) would take the other node's
        # segments for its own; TCP on loopback between all ranks instead.
        self.vars = {"SLURM_CONF": self.conf, "OMPI_MCA_btl": "self,tcp",
                     "OMPI_MCA_btl_tcp_if_include": "lo", "OMPI_MCA_oob_tcp_if_include": "lo"}

        deadline = time.monotonic() + self.start_timeout
        self._spawn("munged", ["munged", "-F", "-f", "--key-file=" + key, "--socket=" + sock,
                               "--pid-file=%s/munge/munged.pid" % d,
                               "--log-file=%s/log/munged.log" % d,
                               "--seed-file=%s/munge/seed" % d])
        self._wait(lambda: os.path.exists(sock), deadline, "munged's socket")
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-i"])
        for n in self.nodes:
            self._spawn("slurmd-" + n, ["slurmd", "-D", "-N", n])
        self._wait(self._all_idle, deadline, "both nodes idle in sinfo")

    def _spawn(self, name, args):
        logf = open(os.path.join(self.dir, "log", name + ".out"), "wb")
        try:
            self.procs[name] = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                env=self.env(), cwd=self.dir, preexec_fn=_set_pdeathsig)
        finally:
            logf.close()

    def _all_idle(self):
        try:
            r = self._run("sinfo", "-h", "-N", "-o", "%N %T", timeout=5)
        except subprocess.TimeoutExpired:
            return False
        states = dict(l.split() for l in r.stdout.splitlines() if len(l.split()) == 2)
        return all(states.get(n) == "idle" for n in self.nodes)

    def _wait(self, cond, deadline, what):
        while not cond():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise ClusterError("Slurm did not start (%s): %s; logs:\n%s" % (
                    what, "%s exited" % ", ".join(dead) if dead else "timed out",
                    self.log_tail()))
            time.sleep(0.1)

    def log_tail(self, n=1500):
        out = []
        logdir = os.path.join(self.dir or "", "log")
        for name in sorted(os.listdir(logdir)) if os.path.isdir(logdir) else ():
            text = _read(os.path.join(logdir, name)).strip()
            if text:
                out.append("== %s ==\n%s" % (name, text[-n:]))
        return "\n".join(out) or "(no logs)"

    def jobs(self):
        """Ids of the jobs slurmctld has that are not finished."""
        r = self._run("squeue", "-h", "-o", "%i")
        return r.stdout.split()

    def jobs_after_end(self, timeout=10):
        """The jobs left once the ones ending are gone: srun returns when its tasks end,
        and slurmctld lists the job (COMPLETING) until every node said so. Asks
        squeue until none is left or timeout seconds passed."""
        deadline = time.monotonic() + timeout
        left = self.jobs()
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = self.jobs()
        return left

    def stop(self):
        """Cancels every job, stops the daemons and whatever still carries this cluster's
        SLURM_CONF, removes the temp dir. Safe to call twice."""
        if not self.dir:
            return
        with contextlib.suppress(Exception):
            if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
                for job in self.jobs():
                    self._run("scancel", job, timeout=5)
        order = ["slurmd-" + n for n in self.nodes] + ["slurmctld", "munged"]
        for name in order:
            p = self.procs.get(name)
            if p is not None and p.poll() is None:
                p.terminate()
        for name in order:
            p = self.procs.get(name)
            if p is None:
                continue
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        # job steps (slurmstepd and the tasks it started) outlive slurmd
        _kill_and_wait(_pids_with_env(("SLURM_CONF=%s" % self.conf).encode()), grace=3.0)
        self.procs = {}
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        with _lock:
            if self in _live:
                _live.remove(self)

    def __enter__(self):
        if not self.dir:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


_AGENT = """#!/bin/sh
# Open MPI's rsh agent for fake hosts: `AGENT [-opts] HOST COMMAND...` runs COMMAND
# here, with a tmpdir of HOST's own (and its hostname, when in a UTS namespace of its
# own). Written by tests/lib/cluster.py.
while [ $# -gt 0 ]; do
	case $1 in -*) shift ;; *) break ;; esac
done
host=$1
shift
dir=%(dir)s/hosts/$host
mkdir -p "$dir"
export OMPI_MCA_orte_tmpdir_base="$dir"
export OMPI_MCA_btl_vader_backing_directory="$dir"
%(exec)s
"""
_EXEC = 'exec /bin/sh -c "$*"'
_UTS_EXEC = ("exec unshare --uts /bin/sh -c 'hostname \"$1\" && exec /bin/sh -c \"$2\"' "
             'sh "$host" "$*"')


class FakeMpiHosts:
    """A hostfile naming fake hosts (node1, node2; 2 slots each) and an rsh agent that
    runs every remote command on this host, so mpirun starts one orted per fake host.

        mh = FakeMpiHosts().start()     # or: with FakeMpiHosts() as mh:
        mpirun --hostfile mh.hostfile --map-by ppr:2:node -np 4 CMD   (env=mh.env())

    The agent goes to mpirun through OMPI_MCA_plm_rsh_agent in env(); running as root is
    allowed and TCP stays on lo. OMPI_COMM_WORLD_RANK 0-3, LOCAL_RANK 0/1.
    """

    def __init__(self, hosts=("node1", "node2"), slots=2, own_hostnames=None):
        self.hosts = list(hosts)
        self.slots = slots
        # Each fake host in a UTS namespace of its own whose hostname is the host's name
        # (as on real hosts: gethostname() and PMIX_HOSTNAME say node1 / node2). Needs
        # root and unshare; None: when both are there.
        if own_hostnames is None:
            own_hostnames = os.geteuid() == 0 and shutil.which("unshare") is not None
        self.own_hostnames = own_hostnames
        self.dir = None
        self.hostfile = None
        self.agent = None
        self.vars = {}

    def env(self, base=None):
        e = dict(os.environ if base is None else base)
        for k in list(e):
            if k.startswith(("OMPI_", "PMIX_", "PMI_")):
                del e[k]
        e.update(self.vars)
        return e

    def start(self):
        if self.dir:
            raise ClusterError("already started")
        cleanup_stale()
        self.dir = d = _mkdtemp("mpi")
        with _lock:
            _live.append(self)
        os.makedirs(os.path.join(d, "hosts", "mpirun"))
        self.hostfile = os.path.join(d, "hostfile")
        with open(self.hostfile, "w") as f:
            f.write("".join("%s slots=%d\n" % (h, self.slots) for h in self.hosts))
        self.agent = os.path.join(d, "rsh-agent")
        with open(self.agent, "w") as f:
            f.write(_AGENT % {"dir": d, "exec": _UTS_EXEC if self.own_hostnames else _EXEC})
        os.chmod(self.agent, 0o755)
        self.vars = {
            "OMPI_ALLOW_RUN_AS_ROOT": "1",
            "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "OMPI_MCA_btl_tcp_if_include": "lo",
            "OMPI_MCA_oob_tcp_if_include": "lo",
            "OMPI_MCA_plm_rsh_agent": self.agent,
            "OMPI_MCA_orte_tmpdir_base": os.path.join(d, "hosts", "mpirun"),
            # both fake hosts share this host's cores: no binding; no CMA (ptrace) copies
            "OMPI_MCA_hwloc_base_binding_policy": "none",
            "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
        }
        return self

    def stop(self):
        if not self.dir:
            return
        _kill_and_wait(_pids_with_env(("OMPI_MCA_plm_rsh_agent=%s" % self.agent).encode()),
                       grace=3.0)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        with _lock:
            if self in _live:
                _live.remove(self)

    def __enter__(self):
        if not self.dir:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def stop_all():
    with _lock:
        live = list(_live)
    for c in reversed(live):
        with contextlib.suppress(Exception):
            c.stop()


atexit.register(stop_all)
