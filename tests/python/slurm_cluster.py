"""slurm_cluster.py — a real Slurm cluster for the tests: munged, slurmctld
and two slurmd nodes from the distribution's packages, each daemon in a
network namespace of its own on a bridge (itself in a namespace, so the
machine's own network never changes), two fake GPUs per node (character
devices in gres.conf), everything under one temporary directory. Clients
run inside the "login" namespace (the controller's): see `run`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

SUBNET = "10.214.0"
NODES = ("pn1", "pn2")
GPUS_PER_NODE = 2
CPUS_PER_NODE = 2


class SlurmUnavailable(Exception):
    """The machine cannot run the cluster (no root, no namespaces, no Slurm)."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class SlurmCluster:
    """Starts with start(), stops with stop() (every process it started,
    by pid, and every namespace). Node i is NODES[i] at SUBNET.(11+i); the
    controller and the clients are at SUBNET.1 (the login namespace)."""

    def __init__(self) -> None:
        self.tag = f"ps{os.getpid() % 100000}"
        # In /tmp whatever TMPDIR says: munged's and slurmd's unix socket
        # paths must stay under 108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="protium-slurm-", dir="/tmp"))
        self.dir.chmod(0o755)
        self.ns = {"sw": f"{self.tag}-sw", "login": f"{self.tag}-login"}
        for n in NODES:
            self.ns[n] = f"{self.tag}-{n}"
        self.addr = {"login": f"{SUBNET}.1"}
        for i, n in enumerate(NODES):
            self.addr[n] = f"{SUBNET}.{11 + i}"
        self.conf = self.dir / "etc" / "slurm.conf"
        self.munge_socket = self.dir / "munge" / "munge.socket"
        self.made_ns: list[str] = []
        self.pids: dict[str, int] = {}
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        for k in list(self.env):
            if k.startswith("SLURM_") and k != "SLURM_CONF":
                del self.env[k]

    # -- set-up ------------------------------------------------------------
    def start(self) -> "SlurmCluster":
        if os.geteuid() != 0:
            raise SlurmUnavailable("needs root (network namespaces, mknod, slurmd)")
        for tool in ("ip", "slurmctld", "slurmd", "munged", "srun"):
            if shutil.which(tool) is None:
                raise SlurmUnavailable(f"{tool} is not installed; run scripts/setup.sh")
        try:
            _ip("netns", "add", self.ns["sw"])
        except subprocess.CalledProcessError as e:
            raise SlurmUnavailable(f"the kernel refused a network namespace: {e.stderr.strip()}")
        self.made_ns.append(self.ns["sw"])
        try:
            self._network()
            self._files()
            self._daemons()
        except BaseException:
            self.stop()
            raise
        return self

    def _network(self) -> None:
        sw = self.ns["sw"]
        _ip("-n", sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw, "link", "set", "br0", "up")
        hosts = "127.0.0.1 localhost\n" + "".join(
            f"{self.addr[k]} {'ptctl' if k == 'login' else k}\n" for k in ("login", *NODES))
        for i, key in enumerate(("login", *NODES)):
            ns = self.ns[key]
            _ip("netns", "add", ns)
            self.made_ns.append(ns)
            veth = f"v{self.tag[2:]}{i}"
            _ip("-n", sw, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", sw, "link", "set", veth, "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.addr[key]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        (self.dir / "hosts").write_text(hosts)

    def _files(self) -> None:
        d = self.dir
        for sub in ("etc", "state", "log", "run", "munge", *(f"state/slurmd-{n}" for n in NODES),
                    *(f"tmp/{n}" for n in NODES)):
            (d / sub).mkdir(parents=True, exist_ok=True)
        gres = ["AutoDetect=off"]
        nodes = []
        for n in NODES:
            dev = d / "dev" / n
            dev.mkdir(parents=True)
            for g in range(GPUS_PER_NODE):
                # A character device: for a regular file Slurm sets no
                # CUDA_VISIBLE_DEVICES.
                os.mknod(dev / f"nvidia{g}", 0o666 | 0o020000, os.makedev(195, g))
            gres.append(f"NodeName={n} Name=gpu File={dev}/nvidia[0-{GPUS_PER_NODE - 1}]")
            nodes.append(f"NodeName={n} NodeAddr={self.addr[n]} CPUs={CPUS_PER_NODE} "
                         f"Gres=gpu:{GPUS_PER_NODE} State=UNKNOWN")
        (d / "etc" / "gres.conf").write_text("\n".join(gres) + "\n")
        conf = f"""ClusterName=protium
SlurmctldHost={socket.gethostname().split('.')[0]}({self.addr['login']})
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
GresTypes=gpu
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/state/slurmd-%n
SlurmctldPidFile={d}/run/slurmctld.pid
SlurmdPidFile={d}/run/slurmd-%n.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd-%n.log
TmpFS={d}/tmp/%n
SchedulerParameters=sched_interval=1
MessageTimeout=5
KillWait=2
InactiveLimit=0
{chr(10).join(nodes)}
PartitionName=main Nodes={','.join(NODES)} Default=YES MaxTime=INFINITE State=UP
"""
        self.conf.write_text(conf)

    def _daemons(self) -> None:
        d = self.dir
        subprocess.run(["munged", "--force", f"--socket={self.munge_socket}",
                        f"--pid-file={d}/run/munged.pid", f"--log-file={d}/log/munged.log",
                        f"--seed-file={d}/munge/seed", "--key-file=/etc/munge/munge.key"],
                       check=True, capture_output=True, text=True)
        self.pids["munged"] = self._pidfile(d / "run" / "munged.pid")
        self.netns_run("login", ["slurmctld", "-f", str(self.conf)])
        self.pids["slurmctld"] = self._pidfile(d / "run" / "slurmctld.pid")
        for n in NODES:
            self.start_slurmd(n)
        self.wait_idle()

    def start_slurmd(self, node: str) -> None:
        self.netns_run(node, ["slurmd", "-f", str(self.conf), "-N", node])
        self.pids[f"slurmd-{node}"] = self._pidfile(self.dir / "run" / f"slurmd-{node}.pid")

    def _pidfile(self, path: Path, timeout: float = 10.0) -> int:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                return int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.005)
        raise RuntimeError(f"{path} did not appear; see {self.dir}/log")

    def wait_idle(self, timeout: float = 20.0) -> None:
        """Until every node is idle (registered, nothing running)."""
        end = time.monotonic() + timeout
        out = ""
        while time.monotonic() < end:
            p = self.run(["sinfo", "-h", "-N", "-o", "%N %t"], check=False)
            out = p.stdout
            states = dict(line.split() for line in out.splitlines() if line.strip())
            if all(states.get(n) == "idle" for n in NODES):
                return
            time.sleep(0.02)
        raise RuntimeError(f"slurm nodes not idle within {timeout}s: {out!r}; see {self.dir}/log")

    # -- use ---------------------------------------------------------------
    def netns_run(self, key: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("check", True)
        kw.setdefault("env", self.env)
        check = kw.pop("check")
        p = subprocess.run(self.enter(key) + list(argv), **kw)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in {key}: exit {p.returncode}: "
                               f"{p.stdout} {p.stderr}; see {self.dir}/log")
        return p

    def run(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        """A client command in the login namespace (never from the root one:
        there a test-subnet address would follow the default route)."""
        return self.netns_run("login", argv, **kw)

    def popen(self, argv: list[str], **kw) -> subprocess.Popen:
        kw.setdefault("env", self.env)
        return subprocess.Popen(self.enter("login") + list(argv), **kw)

    def enter(self, key: str) -> list[str]:
        """The argv prefix that runs a command in namespace key: its network,
        and a mount namespace of its own where the cluster's hosts file is
        /etc/hosts (node names resolve there, and nowhere else). Not
        `ip netns exec`, which remounts /sys without the cgroup tree that
        slurmd needs."""
        return ["nsenter", f"--net=/run/netns/{self.ns[key]}", "unshare", "--mount",
                "--propagation", "private", "sh", "-c",
                'mount --bind "$0" /etc/hosts && exec "$@"', str(self.dir / "hosts")]

    def node_pids(self, node: str) -> list[int]:
        p = subprocess.run(["ip", "netns", "pids", self.ns[node]], capture_output=True, text=True)
        return [int(x) for x in p.stdout.split()]

    def kill_node(self, node: str) -> None:
        """The node dies: slurmd, its step daemons and what they run."""
        for pid in self.node_pids(node):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def link(self, node: str, up: bool) -> None:
        _ip("-n", self.ns[node], "link", "set", "eth0", "up" if up else "down")

    def gres_of(self, node: str) -> list[str]:
        return [str(g) for g in range(GPUS_PER_NODE)]

    # -- tear-down ---------------------------------------------------------
    def stop(self) -> None:
        for key in [k for k in self.ns if k != "sw"]:
            if self.ns[key] in self.made_ns:
                for pid in self.node_pids(key):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        for name, pid in self.pids.items():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()
        for ns in reversed(self.made_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made_ns = []
        if os.environ.get("PT_KEEP_SLURM_DIR"):
            print(f"slurm cluster files kept in {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _reap(self, timeout: float = 5.0) -> None:
        end = time.monotonic() + timeout
        pids = set(self.pids.values())
        while pids and time.monotonic() < end:
            for pid in list(pids):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    pids.discard(pid)
            if pids:
                time.sleep(0.01)


def start_or_skip() -> Optional[SlurmCluster]:
    """A started cluster, or None after a loud message why not."""
    c = SlurmCluster()
    try:
        return c.start()
    except SlurmUnavailable as e:
        msg = f"SLURM TESTS SKIPPED: {e}"
        print(msg, file=sys.stderr)
        shutil.rmtree(c.dir, ignore_errors=True)
        return None
