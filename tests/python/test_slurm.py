"""The engine under a real Slurm cluster (slurm_cluster.py): executors
started with srun as steps of an allocation on two nodes in network
namespaces, GPUs from Slurm's GRES, nodes lost mid-job. The drivers are
slurm_job.py's programs, run with salloc in the login namespace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slurm_cluster import GPUS_PER_NODE, NODES

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
BUILD = Path(os.environ.get("PT_BUILD_DIR", HERE.parents[1] / "build"))
PROTIUM = BUILD / "protium"


@pytest.fixture(autouse=True)
def idle_nodes(request):
    """Each test starts on idle nodes: polling for that is faster than an
    salloc queued behind the last test's job while its nodes complete."""
    if "slurm_cluster" in request.fixturenames:
        request.getfixturevalue("slurm_cluster").wait_idle(timeout=30)


def test_fixture_nodes_run_steps_with_their_gpus(slurm_cluster):
    # What the backend relies on: a step per task, each with a GPU of its
    # node's GRES, named by the node it runs on.
    p = slurm_cluster.run(["srun", "-N2", "-n4", "--gpus-per-task=1", "sh", "-c",
                           "echo $SLURMD_NODENAME $CUDA_VISIBLE_DEVICES"])
    seen = sorted(tuple(line.split()) for line in p.stdout.splitlines())
    assert seen == sorted((n, str(g)) for n in NODES for g in range(GPUS_PER_NODE))


def _job(cluster, tmp_path: Path, alloc: list[str], mode: str, timeout: float = 90):
    p = cluster.run(["salloc", *alloc, PYTHON, str(HERE / "slurm_job.py"), mode, str(tmp_path)],
                    check=False, timeout=timeout)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads((tmp_path / "result.json").read_text())


def test_outside_an_allocation_says_what_to_do(slurm_cluster, tmp_path):
    p = slurm_cluster.run([PYTHON, str(HERE / "slurm_job.py"), "gpus", str(tmp_path)],
                          check=False, timeout=60)
    assert p.returncode != 0
    assert ("master 'slurm' runs inside a Slurm allocation, and SLURM_JOB_ID is not set; run the "
            "program under one (salloc -N 2 ...), or submit it with 'protium submit --slurm -N 2 "
            "program'") in p.stderr


def test_barrier_gpu_stage_each_task_has_the_gpu_slurm_gave_it(slurm_cluster, tmp_path):
    got = _job(slurm_cluster, tmp_path, ["-N2", "-n4", "--gpus-per-task=1"], "gpus")
    assert got["executors"] == 4
    rows = got["rows"]
    # Four tasks, each on one GPU of its node's GRES, no two the same.
    pairs = sorted((r["node"], r["gpus"]) for r in rows)
    assert pairs == sorted((n, str(g)) for n in NODES for g in range(GPUS_PER_NODE))
    assert all(r["env"] == r["gpus"] for r in rows)
    # task_infos: every task's host, the node it runs on.
    for r in rows:
        assert r["hosts"].split(",") == [x["node"] for x in rows]


def test_per_task_sessions_back_to_back_start_without_waiting(slurm_cluster, tmp_path):
    # A session's close lets its steps end by themselves, so Slurm frees
    # their CPUs and GPUs at once; killed, their step daemons kept retrying
    # to reach srun for about 2 s, and the next session's steps waited for
    # the CPUs that long. Bound: generous.
    got = _job(slurm_cluster, tmp_path, ["-N2", "-n4", "--gpus-per-task=1"], "twice")
    assert got["executors"] == [4, 4]
    assert got["steps_gone_ms"] < 1000, got
    assert got["start_ms"][1] < got["start_ms"][0] + 1000, got


def test_one_executor_per_node_with_the_nodes_gpus(slurm_cluster, tmp_path):
    got = _job(slurm_cluster, tmp_path, ["-N2", f"--gpus-per-node={GPUS_PER_NODE}"], "gpus")
    assert got["executors"] == 2
    assert sorted(r["node"] for r in got["rows"]) == list(NODES)
    assert all(r["gpus"] == "0" for r in got["rows"])  # 1 of the node's 2, the first free


def test_demo_pipeline_under_slurm(slurm_cluster, tmp_path):
    out = tmp_path / "out"
    p = slurm_cluster.run(["salloc", "-N2", str(PROTIUM), "demo", "--master", "slurm", str(out)],
                          check=False, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "session    slurm: 2 executor processes" in p.stdout
    assert "check      ok: every id once" in p.stdout
    import pyarrow as pa
    import pyarrow.ipc

    ids: list[int] = []
    key_file: dict[int, int] = {}
    for i in range(4):
        table = pa.ipc.open_file(out / f"part-{i:05d}.arrow").read_all()
        ids.extend(table.column("id").to_pylist())
        for k in set(table.column("key").to_pylist()):
            assert key_file.setdefault(k, i) == i, f"key {k} is in two files"
    assert sorted(ids) == list(range(1_000_000))


def _make_ca_and_cert(where: Path, name: str) -> dict:
    """A CA and one certificate it signed (EC P-256), as a cluster's own."""
    where.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
         "-subj", f"/CN={name}-ca"],
        ["openssl", "req", *ec, "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=node"],
        ["openssl", "x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "node.pem", "-days", "1"],
    ):
        subprocess.run(cmd, cwd=where, check=True, capture_output=True)
    return {"net.tls.cert": where / "node.pem", "net.tls.key": where / "node.key",
            "net.tls.ca": where / "ca.pem"}


def test_demo_pipeline_under_slurm_over_tls(slurm_cluster, tmp_path):
    # Every connection across the two nodes is TLS: executors to the driver,
    # reduce tasks to the other node's block server (the shuffle by key
    # crosses nodes), the results of the count.
    tls = _make_ca_and_cert(tmp_path / "certs", "cluster")
    conf = ["--conf", "net.tls=on"]
    for k, v in tls.items():
        conf += ["--conf", f"{k}={v}"]
    out = tmp_path / "out"
    p = slurm_cluster.run(["salloc", "-N2", str(PROTIUM), "demo", "--master", "slurm", *conf,
                           str(out)], check=False, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "session    slurm: 2 executor processes" in p.stdout
    assert "count      1000000 rows read back" in p.stdout
    assert "check      ok: every id once" in p.stdout
    assert "refused a connection" not in p.stderr
    import pyarrow as pa
    import pyarrow.ipc

    ids: list[int] = []
    for i in range(4):
        ids.extend(pa.ipc.open_file(out / f"part-{i:05d}.arrow").read_all().column("id")
                   .to_pylist())
    assert sorted(ids) == list(range(1_000_000))
    # And TLS is what they spoke: with a CA that did not sign the nodes'
    # certificate, no executor gets in.
    other = _make_ca_and_cert(tmp_path / "other", "other")
    conf[-1] = f"net.tls.ca={other['net.tls.ca']}"
    p = slurm_cluster.run(["salloc", "-N2", str(PROTIUM), "demo", "--master", "slurm", *conf,
                           str(tmp_path / "out2")], check=False, timeout=120)
    assert p.returncode != 0
    assert "tls: certificate refused" in p.stderr, p.stderr


def test_submit_runs_the_program_as_a_batch_job_and_streams_it(slurm_cluster, tmp_path):
    job = tmp_path / "job.py"
    job.write_text(
        "import sys\n"
        "import protium as pt\n"
        "with pt.Session() as s:  # the master is PROTIUM_MASTER=slurm\n"
        "    print('executors', len(s.executor_pids()))\n"
        "    print('count', s.range(1000, partitions=4).repartition(2).count())\n"
        "print('args', sys.argv[1:], flush=True)\n"
        "sys.exit(3)\n")
    env = dict(slurm_cluster.env, PROTIUM_PYTHON=PYTHON, PYTHONPATH=str(HERE.parents[1] / "python"),
               PT_BUILD_DIR=str(BUILD))
    p = slurm_cluster.run([str(PROTIUM), "submit", "--slurm", "-N", "2", "--gpus-per-node", "2",
                           str(job), "a", "b 'c'"], check=False, timeout=120, cwd=tmp_path,
                          env=env)
    assert p.returncode == 3, p.stdout + p.stderr
    assert "executors 2\ncount 1000\nargs ['a', \"b 'c'\"]\n" in p.stdout
    assert "protium: submit: Slurm job " in p.stderr


def test_submit_usage_errors(tmp_path):
    p = subprocess.run([str(PROTIUM), "submit", "job.py"], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.startswith("protium: submit: name the cluster manager: --slurm\n")
    p = subprocess.run([str(PROTIUM), "submit", "--slurm", "--bogus", "job.py"],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.startswith("protium: submit: unknown or incomplete option '--bogus'\n")


def _executor_pids(cluster, node: str) -> list[int]:
    pids = []
    for pid in cluster.node_pids(node):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"_executor.py" in cmd:
            pids.append(pid)
    return pids


def _hurt_mid_job(cluster, tmp_path: Path, hurt) -> dict:
    """Runs the loss job on one executor per node; once its reducers run
    (the map output on both nodes), hurt(cluster) takes pn2 away."""
    proc = cluster.popen(["salloc", "-N2", PYTHON, str(HERE / "slurm_job.py"), "loss",
                          str(tmp_path)], stdout=open(tmp_path / "out.txt", "w"),
                         stderr=open(tmp_path / "err.txt", "w"))
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "reducing").exists():
            assert proc.poll() is None, (tmp_path / "err.txt").read_text()
            assert time.monotonic() < deadline, "the reducers did not start"
            time.sleep(0.02)
        hurt(cluster)
        (tmp_path / "go").touch()
        rc = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, (tmp_path / "err.txt").read_text()
    return json.loads((tmp_path / "result.json").read_text())


ROWS = 200_000


def _exact(got: dict) -> None:
    assert got["lost"] == 1  # and replaced: the map output it held was recomputed
    assert got["n"] == ROWS
    assert got["total"] == ROWS * (ROWS - 1) // 2


def test_executor_killed_mid_job_is_recomputed_on_the_other_node(slurm_cluster, tmp_path):
    def kill_executor(c):
        pids = _executor_pids(c, NODES[1])
        assert pids, "no executor on " + NODES[1]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

    _exact(_hurt_mid_job(slurm_cluster, tmp_path, kill_executor))
    slurm_cluster.wait_idle()


def test_node_killed_mid_job_is_recomputed_on_the_other_node(slurm_cluster, tmp_path):
    try:
        _exact(_hurt_mid_job(slurm_cluster, tmp_path, lambda c: c.kill_node(NODES[1])))
    finally:
        slurm_cluster.start_slurmd(NODES[1])
        slurm_cluster.wait_idle()


def test_node_network_down_mid_job_is_recomputed_on_the_other_node(slurm_cluster, tmp_path):
    try:
        _exact(_hurt_mid_job(slurm_cluster, tmp_path, lambda c: c.link(NODES[1], False)))
        # The cut-off executor gives up on the driver by itself (its
        # heartbeats unacknowledged for executor.heartbeat_timeout, 2 s
        # here) while the network is still down: no stray process holding
        # the node's CPUs and GPUs until it comes back. Bound: generous.
        deadline = time.monotonic() + 20
        while _executor_pids(slurm_cluster, NODES[1]):
            assert time.monotonic() < deadline, "the cut-off executor is still running"
            time.sleep(0.1)
    finally:
        slurm_cluster.link(NODES[1], True)
        # The step ended while its node was cut off: its step daemon tells
        # slurmctld only at its next try, a minute later, and the node stays
        # "completing" until then. For the next tests: a fresh slurmd, and
        # the node set down and resumed (what an administrator does for a
        # node stuck completing), which ends the job there at once.
        slurm_cluster.kill_node(NODES[1])
        slurm_cluster.start_slurmd(NODES[1])
        for state in ("down", "resume"):
            p = slurm_cluster.run(["scontrol", "update", f"nodename={NODES[1]}",
                                   f"state={state}", "reason=cut off by a test"], check=False)
            # The fresh slurmd may register between the two updates, and a
            # down node that registers is back in service already
            # (ReturnToService): resume then has nothing to resume.
            if p.returncode != 0 and not (state == "resume"
                                          and "Invalid node state" in p.stderr):
                raise RuntimeError(f"scontrol update state={state}: {p.stdout} {p.stderr}")
        slurm_cluster.wait_idle(timeout=30)


@pytest.mark.parametrize("fail", [False, True], ids=["ok", "rank-crash-reruns-the-stage"])
def test_hybrid_mpi_with_srun_pmix_from_a_barrier_stage(slurm_cluster, tmp_path, fail):
    # examples/barrier_mpi.c inside an allocation: partition 0 launches the
    # MPI program with srun --mpi=pmix on the nodes task_infos names.
    program = BUILD / "examples" / "barrier_mpi"
    if not (BUILD / "examples" / "mpi" / "allreduce").exists():
        pytest.skip("CMake found no MPI: the MPI program was not built (scripts/setup.sh)")
    p = slurm_cluster.run(["salloc", "-N2", str(program), str(tmp_path / "out"),
                           *(["fail"] if fail else [])], check=False, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    attempt = 1 if fail else 0
    assert p.stdout.splitlines() == [
        f"partition {i}, stage attempt {attempt}: MPI_Allreduce = 3" for i in range(2)]
