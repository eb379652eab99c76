"""tasks.py — `bench/run tasks`: scheduling overhead of the local engine
against PySpark (local mode) and Ray, in the same run.

Metrics, for each system (protium on local[2]: two executor processes; Spark
local[2]; Ray with num_cpus=2):
- tasks_per_s: empty tasks per second: count() over a range of N rows in N
  partitions, one row per task (Spark: sc.parallelize(range(N), N).count();
  Ray: ray.get([f.remote() for _ in range(N)])), best of 3 after a warm-up;
- launch_p50_us, launch_p99_us: the round trip of a job of one empty task
  (protium: count() of a one-partition range; Spark: a one-partition
  parallelize().count(); Ray: ray.get(f.remote())), after a warm-up;
- session_start_ms: open a session with its executors ready, then close it
  (Spark and Ray: in a fresh process, JVM or Ray daemons included, as a user
  pays it);
- limit.uds_rtt_us: one unix-socket round trip between two processes on this
  machine, the floor under any cross-process task launch;
- tasks_per_s.gpu, launch_p50_us.gpu: the same two with a resource profile
  of 1 GPU per task on fake GPUs (protium: resources.gpu.addresses, 18 per
  executor so GPUs never limit; Spark: local-cluster[2,1,1024] with a
  discovery script of fake GPUs and spark.task.resource.gpu.amount=1, where
  local-cluster mode runs), and overhead.gpu_pct: what the profile costs of
  protium's plain throughput (target: under 10);
- pyspark.tasks_per_s.jvm: Spark's fastest path for empty tasks, JVM only:
  spark.range(0, N, 1, N).count().
ratio.<metric> is how many times better protium is. The peers run in their
own processes, one at a time; a peer that fails is reported and left out.
Environment: PT_BUILD_DIR, PT_BENCH_TASKS (protium's N, default 20000),
PT_BENCH_PEER_TASKS (Spark's and Ray's N, default 2000).
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
DRIVER = BUILD / "bench" / "tasks_bench"
N_TASKS = int(os.environ.get("PT_BENCH_TASKS", "20000"))
N_PEER_TASKS = int(os.environ.get("PT_BENCH_PEER_TASKS", "2000"))
PEER_TIMEOUT_S = 600

COMMON = textwrap.dedent(
    """
    import json, math, time
    def pct(v, p):
        v = sorted(v)
        return v[max(0, min(len(v) - 1, math.ceil(p / 100 * len(v)) - 1))]
    """
)

SPARK = COMMON + textwrap.dedent(
    """
    t0 = time.perf_counter()
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").appName("bench")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    sc = spark.sparkContext
    sc.setLogLevel("ERROR")
    sc.parallelize([1], 1).count()  # executors ready: the first job has run
    start_ms = (time.perf_counter() - t0) * 1e3
    N = {n}
    sc.parallelize(range(N), N).count()
    spark.range(0, N, 1, N).count()
    jvm = []
    for _ in range(3):
        t = time.perf_counter(); c = spark.range(0, N, 1, N).count()
        jvm.append(time.perf_counter() - t); assert c == N
    times = []
    for _ in range(3):
        t = time.perf_counter(); c = sc.parallelize(range(N), N).count()
        times.append(time.perf_counter() - t); assert c == N
    lat = []
    for i in range(60):
        t = time.perf_counter(); sc.parallelize([1], 1).count()
        if i >= 10: lat.append((time.perf_counter() - t) * 1e6)
    t = time.perf_counter(); spark.stop(); stop_ms = (time.perf_counter() - t) * 1e3
    print(json.dumps({{"tasks_per_s": N / min(times), "launch_p50_us": pct(lat, 50),
                      "launch_p99_us": pct(lat, 99), "session_start_ms": start_ms + stop_ms,
                      "tasks_per_s.jvm": N / min(jvm)}}))
    """
)

# Spark with GPU scheduling needs a cluster manager: local-cluster mode (two
# executor JVMs of 1 core) and a discovery script of fake GPUs.
SPARK_GPU = COMMON + textwrap.dedent(
    """
    import os, stat, tempfile
    from pyspark.sql import SparkSession
    d = tempfile.mkdtemp()
    script = os.path.join(d, "gpus.sh")
    with open(script, "w") as f:
        f.write('#!/bin/sh\\necho \\'{{"name": "gpu", "addresses": ["0", "1"]}}\\'\\n')
    os.chmod(script, 0o755)
    spark = (SparkSession.builder.master("local-cluster[2,1,1024]").appName("bench-gpu")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.executor.resource.gpu.amount", "2")
             .config("spark.executor.resource.gpu.discoveryScript", script)
             .config("spark.worker.resource.gpu.amount", "2")
             .config("spark.worker.resource.gpu.discoveryScript", script)
             .config("spark.task.resource.gpu.amount", "1").getOrCreate())
    sc = spark.sparkContext
    sc.setLogLevel("ERROR")
    sc.parallelize([1], 1).count()
    N = {n}
    def one(_):
        from pyspark import TaskContext
        return len(TaskContext.get().resources()["gpu"].addresses)
    assert sc.parallelize(range(4), 4).map(one).collect() == [1, 1, 1, 1]
    sc.parallelize(range(N), N).count()
    times = []
    for _ in range(3):
        t = time.perf_counter(); c = sc.parallelize(range(N), N).count()
        times.append(time.perf_counter() - t); assert c == N
    lat = []
    for i in range(40):
        t = time.perf_counter(); sc.parallelize([1], 1).count()
        if i >= 10: lat.append((time.perf_counter() - t) * 1e6)
    spark.stop()
    print(json.dumps({{"tasks_per_s.gpu": N / min(times), "launch_p50_us.gpu": pct(lat, 50)}}))
    """
)

RAY = COMMON + textwrap.dedent(
    """
    import os
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.perf_counter()
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=256 * 1024 * 1024)
    @ray.remote
    def f():
        return None
    ray.get(f.remote())  # workers ready: the first task has run
    start_ms = (time.perf_counter() - t0) * 1e3
    N = {n}
    ray.get([f.remote() for _ in range(N)])
    times = []
    for _ in range(3):
        t = time.perf_counter(); ray.get([f.remote() for _ in range(N)])
        times.append(time.perf_counter() - t)
    lat = []
    for i in range(250):
        t = time.perf_counter(); ray.get(f.remote())
        if i >= 50: lat.append((time.perf_counter() - t) * 1e6)
    t = time.perf_counter(); ray.shutdown(); stop_ms = (time.perf_counter() - t) * 1e3
    print(json.dumps({{"tasks_per_s": N / min(times), "launch_p50_us": pct(lat, 50),
                      "launch_p99_us": pct(lat, 99), "session_start_ms": start_ms + stop_ms}}))
    """
)


def driver(*args: str) -> dict:
    return run_json([str(DRIVER), *args], PEER_TIMEOUT_S)


def peer(name: str, code: str) -> dict | None:
    return run_peer(name, [sys.executable, "-c", code], PEER_TIMEOUT_S)


def main() -> None:
    if not DRIVER.exists():
        sys.exit(f"tasks: {DRIVER} is missing: build first (make build)")
    metrics: dict[str, float] = {}
    limit = driver("uds_rtt", "20000")
    metrics["limit.uds_rtt_us"] = limit["uds_rtt_us"]

    pt: dict[str, float] = {}
    pt.update(driver("session", "10"))
    pt.update(driver("tasks", str(N_TASKS), "3"))
    pt.update(driver("latency", "1000"))
    gpu = driver("tasks", str(N_TASKS), "3", "gpu")
    gpu.update(driver("latency", "1000", "gpu"))
    results = {"protium": {k: pt[k] for k in
                           ("tasks_per_s", "launch_p50_us", "launch_p99_us", "session_start_ms")}}
    extra: dict[str, dict[str, float]] = {
        "protium": {"tasks_per_s.gpu": gpu["tasks_per_s"],
                    "launch_p50_us.gpu": gpu["launch_p50_us"]}}
    metrics["overhead.gpu_pct"] = round(
        100 * (1 - gpu["tasks_per_s"] / pt["tasks_per_s"]), 2)
    spark = peer("pyspark", SPARK.format(n=N_PEER_TASKS))
    if spark:
        extra["pyspark"] = {"tasks_per_s.jvm": spark.pop("tasks_per_s.jvm")}
        results["pyspark"] = spark
        spark_gpu = peer("pyspark local-cluster gpu", SPARK_GPU.format(n=N_PEER_TASKS))
        if spark_gpu:
            extra["pyspark"].update(spark_gpu)
    ray = peer("ray", RAY.format(n=N_PEER_TASKS))
    if ray:
        results["ray"] = ray

    higher_is_better = {"tasks_per_s": True, "launch_p50_us": False, "launch_p99_us": False,
                        "session_start_ms": False}
    print(f"{'metric':<20}" + "".join(f"{s:>14}" for s in results))
    for m, hib in higher_is_better.items():
        print(f"{m:<20}" + "".join(f"{results[s][m]:>14.1f}" for s in results))
    print(f"{'limit.uds_rtt_us':<20}{metrics['limit.uds_rtt_us']:>14.1f}")
    for system, vals in extra.items():
        for m, v in vals.items():
            print(f"{system + '.' + m:<34}{v:>14.1f}")
    print(f"{'overhead.gpu_pct':<34}{metrics['overhead.gpu_pct']:>14.1f}")
    for system, vals in list(results.items()) + list(extra.items()):
        for m, v in vals.items():
            metrics[f"{system}.{m}"] = round(v, 3)
    # protium against Spark's JVM-only path, and GPU against GPU
    if "pyspark" in extra:
        q = extra["pyspark"]
        metrics["ratio.tasks_per_s.pyspark_jvm"] = round(
            pt["tasks_per_s"] / q["tasks_per_s.jvm"], 3)
        if "tasks_per_s.gpu" in q:
            metrics["ratio.tasks_per_s.gpu.pyspark"] = round(
                gpu["tasks_per_s"] / q["tasks_per_s.gpu"], 3)
            metrics["ratio.launch_p50_us.gpu.pyspark"] = round(
                q["launch_p50_us.gpu"] / gpu["launch_p50_us"], 3)
    for system in results:
        if system == "protium":
            continue
        for m, hib in higher_is_better.items():
            p, q = results["protium"][m], results[system][m]
            metrics[f"ratio.{m}.{system}"] = round(p / q if hib else q / p, 3)
    print(json.dumps({"bench": "tasks", "metrics": metrics}))


if __name__ == "__main__":
    main()
