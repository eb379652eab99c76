"""exchange.py — `bench/run exchange`: the cost of handing Arrow data to a
user function, `x + 1` over int64 x (with a float64 column f carried
along), on local[2] for everyone.

protium: (rows) map_rows, (series) with_column over pandas, (pandas)
map_in_pandas, (arrow) map_in_arrow with pyarrow.compute, (c) a C map
function (bench/exchange_bench.c). The data: Arrow IPC files, one per
partition (2), batches of PT_BENCH_EXCHANGE_BATCH rows (default 1,048,576),
read memory-mapped; the job ends in count(), so no result is shipped.
PySpark local[2]: a plain Python UDF, an Arrow-optimized one
(useArrow=True), a pandas_udf, mapInPandas and mapInArrow over
spark.range(N, numPartitions=2), ended by sum(y) (Spark drops an unused
UDF column). Ray Data (num_cpus=2): map_batches with the pandas and
pyarrow batch formats over ray.data.range (2 blocks, materialized first),
ended by sum(y). Everyone's batches have PT_BENCH_EXCHANGE_BATCH rows
(Spark's arrow.maxRecordsPerBatch, Ray's batch_size).

Metrics: <system>.rows_per_s.<path>.{2m,16m} (best of PT_BENCH_REPEATS,
default 3, after a warm-up), protium.overhead_share.{pandas,arrow}.16m (time
of the same job with an identity function, `for df in it: yield df`, over
time with x + 1: the share outside the user's work; it hands back two
columns where x + 1 hands back three), protium.copy_share.{pandas,arrow}.16m
(the same with a function that copies x into y, `df.assign(y=df.x)`, so that
three columns come back as from x + 1, the copy's own pandas work counted
as outside), protium.outside_fn_share.{pandas,arrow}.16m
(the same x + 1 job timed inside the workers, CPU time of the task's
thread: the share of the partition function's not spent in the user's
own code, which the identity
measure counts in part: an identity's own pandas work, df.assign, is
outside there), ratio.<path>.{2m,16m}.<peer> (protium/peer),
limit.memcpy_gb_per_s and ratio.c_over_memcpy.16m (the C path's bytes of x
read and y written over memcpy's; 1/3 is within 3x of memcpy bandwidth).
PT_BENCH_EXCHANGE_ROWS="a,b" replaces 2,097,152 and 16,777,216 (the keys
keep their names); PT_BENCH_EXCHANGE_PEERS=0 leaves the peers out;
PT_BENCH_EXCHANGE_PATHS="rows,pandas" runs only those of protium's paths
(rows, series, pandas, arrow, c) and the peers' matching ones. A peer that
fails is reported and left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("PT_BUILD_DIR", ROOT / "build"))
sys.path.insert(0, str(ROOT / "python"))
os.environ.setdefault("PT_BUILD_DIR", str(BUILD))

SIZES = dict(zip(("2m", "16m"), [int(x) for x in os.environ.get(
    "PT_BENCH_EXCHANGE_ROWS", "2097152,16777216").split(",")]))
REPEATS = int(os.environ.get("PT_BENCH_REPEATS", "3"))
BATCH = int(os.environ.get("PT_BENCH_EXCHANGE_BATCH", "1048576"))
PEERS = os.environ.get("PT_BENCH_EXCHANGE_PEERS", "1") != "0"
PEER_TIMEOUT_S = 900
ALL_PATHS = ("rows", "series", "pandas", "arrow", "c")
PATHS = [p for p in os.environ.get("PT_BENCH_EXCHANGE_PATHS", ",".join(ALL_PATHS)).split(",")
         if p]
if set(PATHS) - set(ALL_PATHS):
    sys.exit(f"PT_BENCH_EXCHANGE_PATHS: unknown paths {sorted(set(PATHS) - set(ALL_PATHS))}; "
             f"the paths are {','.join(ALL_PATHS)}")
# The peers' jobs that match each of protium's paths.
SPARK_JOBS = {"rows": ["rows"], "series": ["pandas_udf"], "pandas": ["pandas"],
              "arrow": ["arrow_udf", "arrow"]}


def best(fn) -> float:
    fn()  # warm-up: workers started, functions unpickled
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def write_data(n: int, dir: Path) -> None:
    import pyarrow as pa

    dir.mkdir(parents=True)
    half = n // 2
    for part, (lo, hi) in enumerate(((0, half), (half, n))):
        import numpy as np

        x = np.arange(lo, hi, dtype=np.int64)
        table = pa.table({"x": x, "f": x.astype(np.float64) * 0.5})
        with pa.ipc.new_file(str(dir / f"part-{part}.arrow"), table.schema) as w:
            for b in table.to_batches(max_chunksize=BATCH):
                w.write_batch(b)


def timed(step, dir: str):
    """A map_in_* function that applies step to each batch and, at the end
    of its partition, writes to dir the nanoseconds of CPU time its thread
    (the task's) spent from its call to its end and those spent in step:
    what it spends waiting for the next batch (the conversion in) and
    suspended at its yield (the conversion out, the engine) is outside the
    user's code. CPU time, not wall: a thread descheduled on a busy machine
    would count as outside."""
    def fn(it):
        import os
        import time

        clock = time.thread_time_ns
        start = clock()
        inside = 0
        for b in it:
            t = clock()
            out = step(b)
            inside += clock() - t
            yield out
            del out  # as a plain generator expression would not hold it
        with open(os.path.join(dir, f"{os.getpid()}-{start}"), "w") as f:
            f.write(f"{clock() - start} {inside}")
    return fn


def outside_share(run, dir: Path) -> float:
    """1 - the time inside step over the partition functions' time, of the
    run (of PT_BENCH_REPEATS) whose partitions took least in all."""
    runs = []
    for _ in range(REPEATS):
        for f in dir.iterdir():
            f.unlink()
        run()
        totals = [tuple(map(int, f.read_text().split())) for f in dir.iterdir()]
        runs.append((sum(t for t, _ in totals), sum(i for _, i in totals)))
    total, inside = min(runs)
    return 1 - inside / total


def protium_side(data: dict[str, Path], metrics: dict[str, float], tmp: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    import protium as pt

    out_schema = pa.schema([("x", pa.int64()), ("f", pa.float64()), ("y", pa.int64())])

    def arrow_plus_one(it):
        for b in it:
            yield pa.RecordBatch.from_arrays([b.column(0), b.column(1),
                                              pc.add(b.column(0), 1)], schema=out_schema)

    def pandas_plus_one(it):
        for df in it:
            yield df.assign(y=df.x + 1)

    def arrow_copy(it):
        for b in it:
            yield pa.RecordBatch.from_arrays([b.column(0), b.column(1), b.column(0)],
                                             schema=out_schema)

    def pandas_copy(it):
        for df in it:
            yield df.assign(y=df.x)

    def identity(it):
        for b in it:
            yield b

    with pt.Session("local[2]") as s:
        for size, dir in data.items():
            n = SIZES[size]
            src = s.read_ipc(dir)
            paths = {
                # y alone, as PySpark's plain UDF returns (and its select keeps)
                "rows": src.map_rows(lambda r: {"y": r["x"] + 1}, schema="y long"),
                "series": src.with_column("y", lambda x: x + 1, columns=["x"]),
                "pandas": src.map_in_pandas(pandas_plus_one, schema=out_schema),
                "arrow": src.map_in_arrow(arrow_plus_one, schema=out_schema),
            }
            for path, ds in paths.items():
                if path not in PATHS:
                    continue
                assert ds.count() == n
                t = best(ds.count)
                metrics[f"protium.rows_per_s.{path}.{size}"] = n / t
                print(f"protium {path:7s} {size:>3s}: {n / t / 1e6:9.2f} M rows/s", flush=True)
                if size == "16m" and path in ("pandas", "arrow"):
                    mapper = src.map_in_pandas if path == "pandas" else src.map_in_arrow
                    ident = mapper(identity, schema=src.schema)
                    assert ident.count() == n
                    metrics[f"protium.overhead_share.{path}.16m"] = min(1.0, best(ident.count) / t)
                    copy = mapper(pandas_copy if path == "pandas" else arrow_copy,
                                  schema=out_schema)
                    metrics[f"protium.copy_share.{path}.16m"] = min(1.0, best(copy.count) / t)
                    clocks = tmp / f"clocks-{path}"
                    clocks.mkdir()
                    if path == "pandas":
                        fn = timed(lambda df: df.assign(y=df.x + 1), str(clocks))
                    else:
                        fn = timed(lambda b: pa.RecordBatch.from_arrays(
                            [b.column(0), b.column(1), pc.add(b.column(0), 1)],
                            schema=out_schema), str(clocks))
                    job = (src.map_in_pandas if path == "pandas" else src.map_in_arrow)(
                        fn, schema=out_schema)
                    job.count()  # warm-up
                    metrics[f"protium.outside_fn_share.{path}.16m"] = outside_share(
                        job.count, clocks)
            if "c" not in PATHS:
                continue
            r = subprocess.run([str(BUILD / "bench" / "exchange_bench"), "c", str(dir),
                                str(REPEATS + 1)], capture_output=True, text=True, check=True)
            t = json.loads(r.stdout)["seconds"]
            metrics[f"protium.rows_per_s.c.{size}"] = n / t
            print(f"protium c       {size:>3s}: {n / t / 1e6:9.2f} M rows/s", flush=True)
    r = subprocess.run([str(BUILD / "bench" / "exchange_bench"), "memcpy", "256", "5"],
                       capture_output=True, text=True, check=True)
    metrics["limit.memcpy_gb_per_s"] = json.loads(r.stdout)["gb_per_s"]
    # x + 1 reads 8 bytes and writes 8 per row, as a memcpy of 8 bytes does:
    # 1 is memcpy's speed, 1/3 is "within 3x of memcpy bandwidth".
    if "protium.rows_per_s.c.16m" in metrics:
        metrics["ratio.c_over_memcpy.16m"] = (metrics["protium.rows_per_s.c.16m"] * 8 / 1e9
                                              / metrics["limit.memcpy_gb_per_s"])


COMMON = textwrap.dedent("""
    import json, sys, time
    SIZES = {sizes!r}
    REPEATS = {repeats}
    def best(fn):
        fn()
        times = []
        for _ in range(REPEATS):
            t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
        return min(times)
    out = {{}}
""")

SPARK = COMMON + textwrap.dedent("""
    from pyspark.sql import SparkSession, functions as F
    from pyspark.sql.functions import udf, pandas_udf
    import pandas as pd, pyarrow as pa, pyarrow.compute as pc
    spark = (SparkSession.builder.master("local[2]").appName("bench")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.execution.arrow.maxRecordsPerBatch", "{batch}").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    plain = udf(lambda x: x + 1, "long")
    arrow_udf = udf(lambda x: x + 1, "long", useArrow=True)
    @pandas_udf("long")
    def series(x: pd.Series) -> pd.Series:
        return x + 1
    def pandas_fn(it):
        for df in it:
            yield df.assign(y=df.x + 1)
    def arrow_fn(it):
        for b in it:
            yield pa.RecordBatch.from_arrays([b.column(0), b.column(1), pc.add(b.column(0), 1)],
                                             names=["x", "f", "y"])
    for size, n in SIZES.items():
        df = spark.range(n, numPartitions=2).selectExpr("id as x", "cast(id as double) * 0.5 as f")
        jobs = {
            "rows": lambda: df.select(plain("x").alias("y")).agg(F.sum("y")).collect(),
            "arrow_udf": lambda: df.select(arrow_udf("x").alias("y")).agg(F.sum("y")).collect(),
            "pandas_udf": lambda: df.select(series("x").alias("y")).agg(F.sum("y")).collect(),
            "pandas": lambda: df.mapInPandas(pandas_fn, "x long, f double, y long")
                                .agg(F.sum("y")).collect(),
            "arrow": lambda: df.mapInArrow(arrow_fn, "x long, f double, y long")
                               .agg(F.sum("y")).collect(),
        }
        for path, job in jobs.items():
            if path not in {spark_jobs!r}:
                continue
            out[f"pyspark.rows_per_s.{path}.{size}"] = n / best(job)
            print(path, size, out[f"pyspark.rows_per_s.{path}.{size}"], file=sys.stderr)
    spark.stop()
    print(json.dumps(out))
""")

RAY = COMMON + textwrap.dedent("""
    import ray, pyarrow as pa, pyarrow.compute as pc
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    def pandas_fn(df):
        return df.assign(y=df.x + 1)
    def arrow_fn(b):
        return b.append_column("y", pc.add(b.column("x"), 1))
    for size, n in SIZES.items():
        base = ray.data.range(n, override_num_blocks=2).map_batches(
            lambda b: {"x": b["id"], "f": b["id"] * 0.5}, batch_format="numpy").materialize()
        for path, fn in (("pandas", pandas_fn), ("arrow", arrow_fn)):
            if path not in {paths!r}:
                continue
            fmt = "pandas" if path == "pandas" else "pyarrow"
            job = lambda: base.map_batches(fn, batch_format=fmt, batch_size={batch}).sum("y")
            out[f"ray.rows_per_s.{path}.{size}"] = n / best(job)
    ray.shutdown()
    print(json.dumps(out))
""")


def peer(name: str, code: str, metrics: dict[str, float]) -> None:
    script = code.replace("{sizes!r}", repr(SIZES)).replace("{repeats}", str(REPEATS))
    script = script.replace("{batch}", str(BATCH))
    script = script.replace("{paths!r}", repr(sorted(PATHS)))
    script = script.replace("{spark_jobs!r}",
                            repr(sorted(j for p in PATHS for j in SPARK_JOBS.get(p, []))))
    script = script.replace("{{", "{").replace("}}", "}")
    try:
        # Spark's Python workers must be this interpreter (pandas, pyarrow)
        env = dict(os.environ, PYSPARK_PYTHON=sys.executable,
                   PYSPARK_DRIVER_PYTHON=sys.executable)
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=PEER_TIMEOUT_S, env=env)
        if r.returncode != 0:
            print(f"{name}: failed, left out: {r.stderr.strip()[-800:]}", flush=True)
            return
        metrics.update(json.loads(r.stdout.strip().splitlines()[-1]))
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as e:
        print(f"{name}: failed, left out: {e}", flush=True)


def main() -> None:
    metrics: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pt-exchange-") as tmp:
        data = {size: Path(tmp) / size for size in SIZES}
        for size, dir in data.items():
            write_data(SIZES[size], dir)
        protium_side(data, metrics, Path(tmp))
    if PEERS and any(p in SPARK_JOBS for p in PATHS):
        peer("pyspark", SPARK, metrics)
    if PEERS and {"pandas", "arrow"} & set(PATHS):
        peer("ray", RAY, metrics)
    # (protium's path, peer, the peer's path): ratio.<path>.<size>.<peer>
    pairs = [("rows", "pyspark", "rows"), ("series", "pyspark", "pandas_udf"),
             ("pandas", "pyspark", "pandas"), ("arrow", "pyspark", "arrow"),
             ("pandas", "ray", "pandas"), ("arrow", "ray", "arrow")]
    for size in SIZES:
        for path, system, theirs in pairs:
            ours, peer_key = (f"protium.rows_per_s.{path}.{size}",
                              f"{system}.rows_per_s.{theirs}.{size}")
            if ours in metrics and peer_key in metrics:
                metrics[f"ratio.{path}.{size}.{system}"] = metrics[ours] / metrics[peer_key]
    print()
    for k in sorted(metrics):
        print(f"{k:45s} {metrics[k]:14.3f}")
    print(json.dumps({"bench": "exchange",
                      "metrics": {k: round(v, 4) for k, v in sorted(metrics.items())}}))


if __name__ == "__main__":
    main()
