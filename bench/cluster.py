"""cluster.py — `bench/run cluster`: the transport across hosts (TCP,
authenticated) against the unix sockets of one machine, in the same run.

Metrics (protium on local[2]; `tcp` = executors on TCP with every shuffle
block another executor wrote fetched from its block server, shuffle.fetch =
remote, as if each executor were on its own host):
- protium.tasks_per_s.{tcp,unix}: empty tasks per second, count() over a range
  of N rows in N partitions, best of 3 after a warm-up;
- protium.launch_p50_us.{tcp,unix}: the round trip of a one-task job;
- protium.collect_small_p50_us.tcp, protium.collect_small_cpu_us.tcp: a one-task
  job that collects 1000 int64 (8 KB) with net.results = stream: p50 µs, and
  CPU µs per job of the driver and its executors (getrusage); such a result
  travels in the task's status, not through a fetch;
- protium.tasks_per_s.tls, protium.shuffle_gb_per_s.tls: the same as tcp and
  cross_host with net.tls = on (certificates made for the run with the
  openssl tool): what encryption costs;
- protium.shuffle_gb_per_s.cross_host: bytes of int64 shuffled per second
  through range -> repartition(4) -> count() over TCP block servers (the whole
  job's time: map write, fetch, read), best of 3;
  protium.shuffle_gb_per_s.local the same job reading the files from the disk;
- protium.shuffle_blocks_per_s.{cross_host,tls}: shuffle blocks fetched per
  second by a shuffle of M map into M reduce tasks of 64 rows per block
  (M = PT_BENCH_CLUSTER_BLOCKS_M, default 64), every one from a block server:
  what opening connections costs, best of 3;
- protium.results_gb_per_s.{local,cross_host,tls}: bytes of int64 per second
  that pt_collect hands back from 4 partitions (PT_BENCH_CLUSTER_MB MiB,
  every value read), best of 3: local = the result files in the session
  directory, mapped (unix); cross_host = net.results = stream, every
  partition fetched from its executor's block server over TCP; tls = the
  same with net.tls = on;
- protium.block_fetch_gb_per_s.{tcp,tls}, protium.block_fetch_cpu_s_per_gb.{tcp,tls}:
  one block server and its client in one process, a file of MB fetched in
  16 MiB requests, best of 3, and the CPU seconds per GB of both (getrusage):
  what TLS costs on the bulk path, by CPU time rather than a loaded clock;
- limit.tcp_gb_per_s: a plain TCP copy between two processes over loopback
  in this run: the ceiling of any TCP shuffle (target: cross_host within 2x);
- ratio.shuffle_vs_tcp_limit: limit / cross_host (lower is better);
- protium.session_start_ms.slurm: inside a Slurm allocation of 2 nodes (the
  test cluster of tests/python/slurm_cluster.py: slurmctld and two slurmd in
  network namespaces), pt_session_open("slurm") until every executor said
  Hello, p50 of 5 (target: under 1 s). Left out, with a message, where the
  cluster cannot start (no root, no Slurm).
Environment: PT_BUILD_DIR, PT_BENCH_CLUSTER_TASKS (N, default 20000),
PT_BENCH_CLUSTER_MB (shuffled MiB, default 512), PT_BENCH_CLUSTER_JOBS (one-task
jobs timed, default 1000).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import run_json

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from slurm_cluster import start_or_skip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("PT_BUILD_DIR", ROOT / "build"))
DRIVER = BUILD / "bench" / "cluster_bench"
N_TASKS = os.environ.get("PT_BENCH_CLUSTER_TASKS", "20000")
MB = os.environ.get("PT_BENCH_CLUSTER_MB", "512")
JOBS = os.environ.get("PT_BENCH_CLUSTER_JOBS", "1000")
BLOCKS_M = os.environ.get("PT_BENCH_CLUSTER_BLOCKS_M", "64")
TIMEOUT_S = 900


def driver(*args: str) -> dict:
    return run_json([str(DRIVER), *args], TIMEOUT_S)


def make_certs(where: Path) -> None:
    """A CA and one certificate it signed, for every process of the run."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
         "-subj", "/CN=bench-ca"],
        ["openssl", "req", *ec, "-keyout", "node.key", "-out", "node.csr", "-subj",
         "/CN=bench-node"],
        ["openssl", "x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "node.pem", "-days", "1"],
    ]
    for cmd in steps:
        subprocess.run(cmd, cwd=where, check=True, capture_output=True)
    os.environ.update(PT_BENCH_TLS_CERT=str(where / "node.pem"),
                      PT_BENCH_TLS_KEY=str(where / "node.key"),
                      PT_BENCH_TLS_CA=str(where / "ca.pem"))


def main() -> None:
    if not DRIVER.exists():
        sys.exit(f"cluster: {DRIVER} not found; build first (make build)")
    certs = tempfile.TemporaryDirectory(prefix="pt-bench-tls-")
    make_certs(Path(certs.name))
    metrics: dict[str, float] = {}
    for transport in ("unix", "tcp"):
        metrics[f"protium.tasks_per_s.{transport}"] = driver(
            "tasks", transport, N_TASKS, "3")["tasks_per_s"]
        metrics[f"protium.launch_p50_us.{transport}"] = driver(
            "latency", transport, JOBS)["launch_p50_us"]
    small = driver("collect_latency", "tcp", JOBS, "1000")
    metrics["protium.collect_small_p50_us.tcp"] = small["collect_p50_us"]
    metrics["protium.collect_small_cpu_us.tcp"] = small["cpu_us_per_job"]
    metrics["protium.shuffle_gb_per_s.local"] = driver(
        "shuffle", "unix", MB, "3")["shuffle_gb_per_s"]
    metrics["protium.shuffle_gb_per_s.cross_host"] = driver(
        "shuffle", "tcp", MB, "3")["shuffle_gb_per_s"]
    metrics["protium.tasks_per_s.tls"] = driver("tasks", "tls", N_TASKS, "3")["tasks_per_s"]
    metrics["protium.shuffle_gb_per_s.tls"] = driver("shuffle", "tls", MB, "3")["shuffle_gb_per_s"]
    metrics["protium.shuffle_blocks_per_s.cross_host"] = driver(
        "blocks", "tcp", BLOCKS_M, "3")["blocks_per_s"]
    metrics["protium.shuffle_blocks_per_s.tls"] = driver(
        "blocks", "tls", BLOCKS_M, "3")["blocks_per_s"]
    for transport, key in (("unix", "local"), ("tcp", "cross_host"), ("tls", "tls")):
        metrics[f"protium.results_gb_per_s.{key}"] = driver(
            "results", transport, MB, "3")["results_gb_per_s"]
    for transport in ("tcp", "tls"):
        fetched = driver("fetch", transport, MB, "3")
        metrics[f"protium.block_fetch_gb_per_s.{transport}"] = fetched["fetch_gb_per_s"]
        metrics[f"protium.block_fetch_cpu_s_per_gb.{transport}"] = fetched["cpu_s_per_gb"]
    certs.cleanup()
    metrics["limit.tcp_gb_per_s"] = driver("tcp_limit", str(max(int(MB), 64)))["tcp_gb_per_s"]
    metrics["ratio.shuffle_vs_tcp_limit"] = round(
        metrics["limit.tcp_gb_per_s"] / metrics["protium.shuffle_gb_per_s.cross_host"], 3)
    cluster = start_or_skip()
    if cluster is not None:
        try:
            p = cluster.run(["salloc", "-N2", str(DRIVER), "slurm_start", "5"], timeout=TIMEOUT_S)
            metrics["protium.session_start_ms.slurm"] = json.loads(
                p.stdout.strip().splitlines()[-1])["session_start_ms"]
        finally:
            cluster.stop()
    for k, v in metrics.items():
        print(f"{k:<40}{v:>14.3f}")
    print(json.dumps({"bench": "cluster", "metrics": metrics}))


if __name__ == "__main__":
    main()
