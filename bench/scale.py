"""scale.py — `bench/run scale`: how the local engine scales, and what an idle
executor costs beside the peers' workers, in the same run.

Metrics:
- protium.driver_us_per_task.{1k,10k,100k}: the driver process's CPU time
  (user + system, executors not included) per task of a count() over
  range(N) in N partitions on local[2]; protium.wall_us_per_task.<size> the
  job's wall time per task;
- protium.driver_peak_rss_mb.100k: the driver process's peak RSS in that run
  (each size runs in a fresh process);
- protium.shuffle_s.1000x1000: a shuffle of 1,000 map partitions into 1,000
  reduce partitions (10^6 blocks, 10^6 rows), and its driver's peak RSS;
- protium.idle_executor_rss_mb: an executor's RSS after a job, idle;
  pyspark.executor_rss_mb: Spark's executor JVM (local mode: the one JVM)
  after a job, idle; ray.idle_worker_rss_mb: the median RSS of Ray's idle
  workers (num_cpus=2) after a task. ratio.idle_rss.<peer> is how many times
  smaller protium's is.
- protium.driver_cost_growth: driver_us_per_task at the largest size over
  that at the smallest (the target: at most 2).
Environment: PT_BUILD_DIR; PT_BENCH_SCALE_SIZES (three task counts, default
1000,10000,100000, reported as 1k, 10k, 100k); PT_BENCH_SCALE_SHUFFLE (M = R,
default 1000); PT_BENCH_SCALE_PEERS=0 leaves Spark and Ray out.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

from benchlib import run_json, run_peer

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("PT_BUILD_DIR", ROOT / "build"))
DRIVER = BUILD / "bench" / "scale_bench"
SIZES = [int(x) for x in os.environ.get("PT_BENCH_SCALE_SIZES", "1000,10000,100000").split(",")]
LABELS = ["1k", "10k", "100k"]
SHUFFLE = int(os.environ.get("PT_BENCH_SCALE_SHUFFLE", "1000"))
PEERS = os.environ.get("PT_BENCH_SCALE_PEERS", "1") != "0"
TIMEOUT_S = 900

RSS = textwrap.dedent(
    """
    def rss_mb(pid):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return -1.0
    """
)

SPARK = RSS + textwrap.dedent(
    """
    import json, time
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").appName("bench")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    sc = spark.sparkContext
    sc.setLogLevel("ERROR")
    sc.parallelize(range(10), 2).count()
    time.sleep(1)
    pid = sc._gateway.proc.pid  # spark-submit execs the JVM: driver and executor
    print(json.dumps({"executor_rss_mb": rss_mb(pid)}))
    spark.stop()
    """
)

RAY = RSS + textwrap.dedent(
    """
    import json, os, statistics, time
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=256 * 1024 * 1024)
    @ray.remote
    def f():
        return None
    ray.get([f.remote() for _ in range(4)])
    time.sleep(2)
    idle = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        if cmd.startswith(b"ray::IDLE"):
            idle.append(rss_mb(pid))
    ray.shutdown()
    if not idle:
        raise SystemExit("no idle Ray worker found")
    print(json.dumps({"idle_worker_rss_mb": statistics.median(idle), "idle_workers": len(idle)}))
    """
)


def driver(*args: str) -> dict:
    return run_json([str(DRIVER), *args], TIMEOUT_S)


def peer(name: str, code: str) -> dict | None:
    return run_peer(name, [sys.executable, "-c", code], TIMEOUT_S)


def main() -> None:
    if not DRIVER.exists():
        sys.exit(f"scale: {DRIVER} is missing: build first (make build)")
    if len(SIZES) != 3:
        sys.exit("scale: PT_BENCH_SCALE_SIZES needs three task counts")
    m: dict[str, float] = {}
    print(f"{'tasks':>8}{'driver us/task':>16}{'wall us/task':>14}{'driver peak MB':>16}")
    for n, label in zip(SIZES, LABELS):
        r = driver("tasks", str(n))
        assert r["launched"] == n, r
        m[f"protium.driver_us_per_task.{label}"] = round(r["driver_us_per_task"], 3)
        m[f"protium.wall_us_per_task.{label}"] = round(r["wall_us_per_task"], 3)
        m[f"protium.driver_peak_rss_mb.{label}"] = round(r["driver_peak_rss_mb"], 1)
        print(f"{n:>8}{r['driver_us_per_task']:>16.3f}{r['wall_us_per_task']:>14.3f}"
              f"{r['driver_peak_rss_mb']:>16.1f}")
    m["protium.driver_cost_growth"] = round(
        m["protium.driver_us_per_task.100k"] / m["protium.driver_us_per_task.1k"], 3)
    sh = driver("shuffle", str(SHUFFLE), str(SHUFFLE))
    key = f"{SHUFFLE}x{SHUFFLE}"
    m[f"protium.shuffle_s.{key}"] = round(sh["seconds"], 3)
    m[f"protium.shuffle_driver_peak_rss_mb.{key}"] = round(sh["driver_peak_rss_mb"], 1)
    m[f"protium.shuffle_mb.{key}"] = round(sh["shuffle_mb"], 1)
    print(f"shuffle {key}: {sh['blocks']} blocks, {sh['rows']} rows, {sh['seconds']:.2f} s, "
          f"{sh['shuffle_mb']:.0f} MB of files, driver peak {sh['driver_peak_rss_mb']:.0f} MB")
    idle = driver("idle")
    m["protium.idle_executor_rss_mb"] = round(idle["idle_executor_rss_mb"], 2)
    print(f"idle executor RSS: protium {idle['idle_executor_rss_mb']:.1f} MB", end="")
    if PEERS:
        spark = peer("pyspark", SPARK)
        if spark:
            m["pyspark.executor_rss_mb"] = round(spark["executor_rss_mb"], 1)
            m["ratio.idle_rss.pyspark"] = round(
                spark["executor_rss_mb"] / idle["idle_executor_rss_mb"], 1)
            print(f", Spark executor JVM {spark['executor_rss_mb']:.0f} MB", end="")
        ray = peer("ray", RAY)
        if ray:
            m["ray.idle_worker_rss_mb"] = round(ray["idle_worker_rss_mb"], 1)
            m["ratio.idle_rss.ray"] = round(
                ray["idle_worker_rss_mb"] / idle["idle_executor_rss_mb"], 1)
            print(f", Ray idle worker {ray['idle_worker_rss_mb']:.0f} MB", end="")
    print()
    print(json.dumps({"bench": "scale", "metrics": m}))


if __name__ == "__main__":
    main()
