"""barrier.py — `bench/run barrier`: barrier execution mode against PySpark's
barrier mode and torch.distributed over gloo, in the same run.

Metrics (N tasks, one per executor / worker process, on this machine):
- barrier_p50_us.nN, barrier_p99_us.nN (N = 2, 4, 8): one barrier() call,
  back to back in every task, timed inside the tasks (protium:
  pt_ctx_barrier; PySpark: BarrierTaskContext.barrier() in
  rdd.barrier().mapPartitions on local[N]; gloo: torch.distributed.barrier());
- all_gather_p50_us.n8: an all-gather of 1 KiB per task (pt_ctx_all_gather;
  BarrierTaskContext.allGather of a 1,024-character string;
  torch.distributed.all_gather of 1,024 uint8);
- gang_launch_ms.n8: a job of one barrier stage submitted -> the last of its
  8 tasks running (protium and PySpark; median of a few jobs);
- recovery_ms.n8: one task killed -> the last of the 8 tasks of the next
  stage attempt running (protium: SIGKILL of the task's executor in a
  result stage; PySpark: the Python worker exits in a barrier map stage,
  local[8,4], since Spark never retries a barrier result stage);
- limit.uds_rtt_us: one unix-socket round trip between two processes;
  limit.star_barrier_p50_us.nN: the floor of any driver-centred barrier on
  this machine: N processes each send one byte to a parent, which answers
  all of them once it has all N (no engine, no protocol).
ratio.<metric>.<peer> is how many times faster protium is (peer / protium).
A peer that is missing or fails is reported on stderr and left out.
Environment: PT_BUILD_DIR; PT_BENCH_ITERS (protium's barrier calls per task,
default 2000; gloo makes as many), PT_BENCH_PEER_ITERS (PySpark's, default 10: its
barrier() takes about a second), PT_BENCH_JOBS (launch/recovery jobs,
default 5), PT_BENCH_PEERS (comma list, default "pyspark,gloo").
"""

from __future__ import annotations

import json
import os
import tempfile
import sys
import textwrap
from pathlib import Path

from benchlib import run_json, run_peer

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("PT_BUILD_DIR", ROOT / "build"))
DRIVER = BUILD / "bench" / "barrier_bench"
TASKS_DRIVER = BUILD / "bench" / "tasks_bench"
ITERS = int(os.environ.get("PT_BENCH_ITERS", "2000"))
# PySpark's barrier() waits in 1 s sleeps (measured: ~1.0 s a call), so the
# peers get fewer calls.
PEER_ITERS = int(os.environ.get("PT_BENCH_PEER_ITERS", "10"))
JOBS = int(os.environ.get("PT_BENCH_JOBS", "5"))
PEERS = [p for p in os.environ.get("PT_BENCH_PEERS", "pyspark,gloo").split(",") if p]
NS = (2, 4, 8)
TIMEOUT_S = 900

COMMON = textwrap.dedent(
    """
    import json, math, os, sys, time
    def pct(v, p):
        v = sorted(v)
        return v[max(0, min(len(v) - 1, math.ceil(p / 100 * len(v)) - 1))]
    ITERS, JOBS, NS = {iters}, {jobs}, {ns}
    """
)

SPARK = COMMON + textwrap.dedent(
    """
    import tempfile
    from pyspark.sql import SparkSession
    from pyspark import BarrierTaskContext
    out = {{}}

    def session(master):
        s = (SparkSession.builder.master(master).appName("bench")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
        s.sparkContext.setLogLevel("ERROR")
        return s

    def calls(gather):
        def f(it):
            ctx = BarrierTaskContext.get()
            msg, lat = "x" * 1024, []
            for i in range(ITERS + 5):
                t = time.perf_counter()
                if gather: ctx.allGather(msg)
                else: ctx.barrier()
                if i >= 5: lat.append((time.perf_counter() - t) * 1e6)
            yield lat
        return f

    def start(it):
        yield time.time()

    for n in NS:
        spark = session(f"local[{{n}}]")
        sc = spark.sparkContext
        lat = [x for l in sc.parallelize(range(n), n).barrier().mapPartitions(calls(False))
               .collect() for x in l]
        out[f"barrier_p50_us.n{{n}}"] = pct(lat, 50)
        out[f"barrier_p99_us.n{{n}}"] = pct(lat, 99)
        if n == 8:
            lat = [x for l in sc.parallelize(range(n), n).barrier().mapPartitions(calls(True))
                   .collect() for x in l]
            out["all_gather_p50_us.n8"] = pct(lat, 50)
            ms = []
            for r in range(JOBS + 1):
                t0 = time.time()
                s = sc.parallelize(range(8), 8).barrier().mapPartitions(start).collect()
                if r: ms.append((max(s) - t0) * 1e3)
            out["gang_launch_ms.n8"] = pct(ms, 50)
        spark.stop()

    # Recovery: a barrier map stage (a result stage is never retried) on
    # local[8,4]; the last task's Python worker exits in attempt 0.
    spark = session("local[8,4]")
    sc = spark.sparkContext
    # PySpark's task context has no stage attempt number: the kill file
    # tells the attempts apart (the first attempt's tasks all start before
    # it exists: they meet in a barrier() first).
    def dying(kill_file):
        def f(it):
            ctx = BarrierTaskContext.get()
            t = time.time()
            rerun = os.path.exists(kill_file)
            if not rerun:
                ctx.barrier()
                if ctx.partitionId() == 7:
                    with open(kill_file, "w") as f: f.write(repr(time.time()))
                    os._exit(1)
                ctx.barrier()
            yield (rerun, t)
        return f
    ms = []
    for r in range(JOBS):
        kill_file = os.path.join(tempfile.gettempdir(), f"spark-kill-{{os.getpid()}}-{{r}}")
        s = (sc.parallelize(range(8), 8).barrier().mapPartitions(dying(kill_file))
             .repartition(1).collect())
        killed = float(open(kill_file).read())
        os.unlink(kill_file)
        ms.append((max(t for rerun, t in s if rerun) - killed) * 1e3)
    out["recovery_ms.n8"] = pct(ms, 50)
    spark.stop()
    print(json.dumps(out))
    """
)

GLOO = COMMON + textwrap.dedent(
    """
    import socket
    import torch
    import torch.distributed as dist
    import torch.multiprocessing as mp

    def worker(rank, n, port, q):
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{{port}}", rank=rank,
                                world_size=n)
        bar, gat = [], []
        mine = torch.full((1024,), rank, dtype=torch.uint8)
        outs = [torch.empty(1024, dtype=torch.uint8) for _ in range(n)]
        for i in range(ITERS + 5):
            t = time.perf_counter(); dist.barrier()
            if i >= 5: bar.append((time.perf_counter() - t) * 1e6)
        for i in range(ITERS + 5):
            t = time.perf_counter(); dist.all_gather(outs, mine)
            if i >= 5: gat.append((time.perf_counter() - t) * 1e6)
        q.put((bar, gat))
        dist.destroy_process_group()

    if __name__ == "__main__":
        out = {{}}
        ctx = mp.get_context("spawn")
        for n in NS:
            s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
            q = ctx.Queue()
            procs = [ctx.Process(target=worker, args=(r, n, port, q)) for r in range(n)]
            for p in procs: p.start()
            res = [q.get() for _ in procs]
            for p in procs: p.join()
            bar = [x for b, _ in res for x in b]
            out[f"barrier_p50_us.n{{n}}"] = pct(bar, 50)
            out[f"barrier_p99_us.n{{n}}"] = pct(bar, 99)
            if n == 8: out["all_gather_p50_us.n8"] = pct([x for _, g in res for x in g], 50)
        print(json.dumps(out))
    """
)


def driver(exe: Path, *args: str) -> dict:
    return run_json([str(exe), *args], TIMEOUT_S)


def peer(name: str, code: str, iters: int) -> dict | None:
    code = code.format(iters=iters, jobs=JOBS, ns=NS)
    # From a file, not -c: processes started with "spawn" (gloo's workers)
    # import the main module's functions from its file.
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / f"{name}_peer.py"
        script.write_text(code)
        return run_peer(name, [sys.executable, str(script)], TIMEOUT_S, tail_lines=8)


def protium() -> dict:
    m: dict[str, float] = {}
    for n in NS:
        r = driver(DRIVER, "barrier", str(n), str(ITERS))
        m[f"barrier_p50_us.n{n}"] = r["p50_us"]
        m[f"barrier_p99_us.n{n}"] = r["p99_us"]
    m["all_gather_p50_us.n8"] = driver(DRIVER, "gather", "8", str(ITERS))["p50_us"]
    m["gang_launch_ms.n8"] = driver(DRIVER, "launch", "8", str(JOBS))["ms"]
    m["recovery_ms.n8"] = driver(DRIVER, "recovery", "8", str(JOBS))["ms"]
    return m


def main() -> None:
    for exe in (DRIVER, TASKS_DRIVER):
        if not exe.exists():
            sys.exit(f"barrier: {exe} is missing: build first (make build)")
    metrics: dict[str, float] = {}
    metrics["limit.uds_rtt_us"] = driver(TASKS_DRIVER, "uds_rtt", "20000")["uds_rtt_us"]
    for n in NS:
        metrics[f"limit.star_barrier_p50_us.n{n}"] = driver(DRIVER, "star", str(n),
                                                            str(ITERS))["p50_us"]
    results = {"protium": protium()}
    codes = {"pyspark": SPARK, "gloo": GLOO}
    for name in PEERS:
        # gloo's calls take microseconds: as many as protium's, for a p50 and
        # p99 of the same weight; PySpark's take about a second each.
        r = peer(name, codes[name], ITERS if name == "gloo" else PEER_ITERS)
        if r:
            results[name] = r

    keys = [f"barrier_p50_us.n{n}" for n in NS] + [f"barrier_p99_us.n{n}" for n in NS]
    keys += ["all_gather_p50_us.n8", "gang_launch_ms.n8", "recovery_ms.n8"]
    print(f"{'metric (lower is better)':<26}" + "".join(f"{s:>12}" for s in results))
    for k in keys:
        cells = "".join(f"{results[s][k]:>12.1f}" if k in results[s] else f"{'-':>12}"
                        for s in results)
        print(f"{k:<26}{cells}")
    for k in ["limit.uds_rtt_us"] + [f"limit.star_barrier_p50_us.n{n}" for n in NS]:
        print(f"{k:<34}{metrics[k]:>8.1f}")
    for system, vals in results.items():
        for k, v in vals.items():
            metrics[f"{system}.{k}"] = round(v, 3)
    for system in results:
        if system == "protium":
            continue
        for k in keys:
            if k in results[system] and results["protium"].get(k):
                name = k.replace("_us", "").replace("_ms", "")
                metrics[f"ratio.{name}.{system}"] = round(results[system][k] / results["protium"][k], 3)
    metrics["protium.barrier_p50_over_uds_rtt.n2"] = round(
        results["protium"]["barrier_p50_us.n2"] / metrics["limit.uds_rtt_us"], 3)
    print(json.dumps({"bench": "barrier", "metrics": metrics}))


if __name__ == "__main__":
    main()
