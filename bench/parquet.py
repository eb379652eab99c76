"""parquet.py — `bench/run parquet`: Parquet decode and encode throughput of
protium against pyarrow and DuckDB, on the same data, in the same run.

Cases: int64, float64, utf8 of low cardinality (1000 words) and high
(unique-ish ids), a nested list<struct<a: int64, b: float64>> column, and a
20-column mixed table; each uncompressed, SNAPPY and ZSTD; about
PT_BENCH_MIB MiB of Arrow data each (default 32). The files read are
pyarrow's (default options: dictionary on, 1 Mi-row row groups, v2 pages of
the format 2.6); every system reads the same file into Arrow, on one thread
and on two. One thread (`_1t`): protium's stream with `threads` 1, which
decodes each row group on one thread and the next row group ahead on one
more, as pyarrow's read_table(use_threads=False) does (its scanner decodes
the next row group on another thread of its pool: the bench's files of two
row groups take two cores in both); DuckDB threads=1. A file of one row
group is read on one thread by both. Two (`_2t`): protium's stream with
`threads` 2, column chunks or row groups decoded on both cores; pyarrow:
use_threads; DuckDB: threads=2. Also `_2s`: protium's two streams reading the file at once
(throughput of both together, as two tasks of a job would read).
Writes: the same Arrow table to Parquet in memory (protium from
the batches of an uncompressed IPC file, by build/bench/parquet_bench;
pyarrow into a BufferOutputStream; DuckDB COPY of a registered Arrow table
to a file on tmpfs where there is one), on one thread (DuckDB: threads=1) and
on two. Two threads write two files at once, each the whole table, for
protium and pyarrow alike (protium: two writers on two threads; pyarrow:
write_table on two Python threads, which it runs without the GIL): the
same work on both cores for both. (Earlier runs compared protium's one
writer with `threads` 2 against pyarrow's one thread: unfair to pyarrow
on many columns, and to protium on one, where the second thread had no
column to take.) DuckDB: threads=2, one file. Protium's one file on two
encoding threads (`threads` 2) is measured too, as <case>_2t_one_file,
against pyarrow's one thread (it has no threaded writer).
Then a selective query: a file of 100 row groups sorted on `id`, a predicate
that 1% of row groups match (protium: a row-group filter; pyarrow: filters=;
DuckDB: WHERE).

Metrics: <system>.read_gb_per_s.<case>_<T>t and <system>.read_rows_per_s...,
protium.read_gb_per_s.<case>_2s; <system>.read_cpu_ms.<case>_<T>t (the
least CPU time of a read: protium's process, pyarrow's, every thread of
each counted) and
ratio.read_cpu.<case>_<T>t.pyarrow (pyarrow's / protium's); for one thread
also <system>.read_crit_ms.<case>_1t, the CPU time on the busiest path of a
read (protium: the busier of the reading thread and its helper; pyarrow: the
calling thread plus its busiest pool thread, from /proc's per-thread
schedstat), the least of the runs: what the read would take on an idle
machine with a core for each thread, which a loaded machine's wall clock
cannot show; ratio.read_crit.<case>_1t.pyarrow (pyarrow's / protium's);
<system>.write_gb_per_s.<case> (one thread) and .<case>_2t; for one thread
also <system>.write_cpu_ms.<case> (the least CPU time of a run: protium's
process, pyarrow's) and ratio.write_cpu.<case>.pyarrow (pyarrow's / protium's),
ratio.read.<case>_<T>t.pyarrow (protium / pyarrow) and .duckdb, likewise for
write (ratio.write.<case> and ratio.write.<case>_2t, ratio.write.<case>_2t_one_file);
selective: <system>.select_ms and
protium.select_row_groups_read. GB/s are of Arrow bytes (Table.nbytes, 10^9).
Prints a table, then one JSON object as the last line.
Environment: PT_BUILD_DIR, PT_BENCH_MIB (32), PT_BENCH_REPEATS (3),
PT_BENCH_CASES (comma-separated case names, e.g. int64_snappy), PT_BENCH_OPS
(read,write: which of the two to measure; the selective query is a read).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("PT_BUILD_DIR", ROOT / "build"))
DRIVER = BUILD / "bench" / "parquet_bench"
MIB = 1 << 20
CASE_MIB = int(os.environ.get("PT_BENCH_MIB", "32"))
REPEATS = int(os.environ.get("PT_BENCH_REPEATS", "3"))
ONLY = {c for c in os.environ.get("PT_BENCH_CASES", "").split(",") if c}
OPS = {o for o in os.environ.get("PT_BENCH_OPS", "read,write").split(",") if o}
TYPES = ["int64", "float64", "utf8_low", "utf8_high", "list_struct", "mixed20"]
CODECS = ["none", "snappy", "zstd"]


def make_table(typ: str, total: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng([seed, TYPES.index(typ)])
    if typ == "int64":
        n = total // 8
        return pa.table({"v": rng.integers(0, 1_000_000, n)})
    if typ == "float64":
        return pa.table({"v": rng.standard_normal(total // 8)})
    if typ == "utf8_low":
        vocab = pa.array([f"word{i:04d}" for i in range(1000)])
        n = total // 12
        return pa.table({"v": vocab.take(pa.array(rng.integers(0, 1000, n)))})
    if typ == "utf8_high":
        n = total // 20
        return pa.table({"v": pa.array([f"id-{x:016x}" for x in rng.integers(0, 2**62, n)])})
    if typ == "list_struct":
        n = total // 60
        lengths = rng.integers(0, 7, n)
        m = int(lengths.sum())
        inner = pa.StructArray.from_arrays(
            [pa.array(rng.integers(0, 10**6, m)), pa.array(rng.standard_normal(m))], ["a", "b"])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        return pa.table({"v": pa.ListArray.from_arrays(pa.array(offsets), inner)})
    # mixed20: 20 columns of common types, some nulls
    n = total // 100
    cols = {}
    vocab = pa.array([f"city{i}" for i in range(200)])
    for i in range(20):
        kind = i % 5
        mask = rng.random(n) < 0.05
        if kind == 0:
            cols[f"c{i}"] = pa.array(rng.integers(0, 10**9, n), mask=mask)
        elif kind == 1:
            cols[f"c{i}"] = pa.array(rng.standard_normal(n), mask=mask)
        elif kind == 2:
            cols[f"c{i}"] = vocab.take(pa.array(rng.integers(0, 200, n)))
        elif kind == 3:
            cols[f"c{i}"] = pa.array(rng.integers(0, 10**6, n).astype(np.int32), mask=mask)
        else:
            cols[f"c{i}"] = pa.array(rng.integers(1_600_000_000_000_000, 1_700_000_000_000_000, n),
                                     pa.timestamp("us", "UTC"))
    return pa.table(cols)


def thread_cpu() -> dict[int, int]:
    """CPU nanoseconds of each thread of this process (Linux schedstat)."""
    out = {}
    for t in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{t}/schedstat") as f:
                out[int(t)] = int(f.read().split()[0])
        except (OSError, ValueError):
            pass
    return out


def best_of(fn, repeats: int = REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def driver(*args: str) -> dict:
    r = subprocess.run([str(DRIVER), *args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"parquet_bench {' '.join(args)}: {r.stderr.strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def duck(threads: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    return con


def main() -> None:
    if not DRIVER.exists():
        sys.exit(f"{DRIVER} is missing: build first (make build)")
    metrics: dict[str, float] = {}
    rows_out = []
    tmp = Path(tempfile.mkdtemp(prefix="pt-bench-parquet-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    total = CASE_MIB * MIB
    for typ in TYPES:
        table = None
        for codec in CODECS:
            case = f"{typ}_{codec}"
            if ONLY and case not in ONLY:
                continue
            if table is None:
                table = make_table(typ, total)
                ipc = tmp / f"{typ}.arrow"
                with pa.ipc.new_file(str(ipc), table.schema) as w:
                    w.write_table(table, max_chunksize=65536)
            nbytes = table.nbytes
            nrows = table.num_rows
            path = tmp / f"{case}.parquet"
            pq.write_table(table, path, compression=codec)
            # Reads.
            for threads in ((1, 2) if "read" in OPS else ()):
                key = f"{case}_{threads}t"
                # One stream, its column chunks decoded on `threads` threads.
                r = driver("read", str(path), str(REPEATS), f"1:{threads}")
                assert r["rows"] == nrows, (r, nrows)
                t_pt = r["seconds"]
                pa.set_cpu_count(2)
                cpu_pa = [float("inf")]
                crit_pa = [float("inf")]
                has_tasks = os.path.isdir("/proc/self/task")

                def pa_read() -> None:
                    t0 = thread_cpu() if has_tasks and threads == 1 else None
                    c0 = time.process_time()
                    pq.read_table(path, use_threads=threads > 1)
                    cpu_pa[0] = min(cpu_pa[0], time.process_time() - c0)
                    if t0 is not None:
                        # The caller's CPU and its busiest pool thread's.
                        t1 = thread_cpu()
                        me = threading.get_native_id()
                        others = [t1[k] - t0.get(k, 0) for k in t1 if k != me]
                        crit = (t1[me] - t0[me] + max(others, default=0)) / 1e9
                        crit_pa[0] = min(crit_pa[0], crit)

                t_pa = best_of(pa_read)
                con = duck(threads)
                t_dd = best_of(lambda: con.sql(f"SELECT * FROM read_parquet('{path}')").to_arrow_table())
                gb = {"protium": nbytes / t_pt / 1e9, "pyarrow": nbytes / t_pa / 1e9,
                      "duckdb": nbytes / t_dd / 1e9}
                for sysname, v in gb.items():
                    metrics[f"{sysname}.read_gb_per_s.{key}"] = round(v, 3)
                    metrics[f"{sysname}.read_rows_per_s.{key}"] = round(v * 1e9 / nbytes * nrows)
                metrics[f"ratio.read.{key}.pyarrow"] = round(gb["protium"] / gb["pyarrow"], 3)
                metrics[f"ratio.read.{key}.duckdb"] = round(gb["protium"] / gb["duckdb"], 3)
                # CPU time: what a loaded machine moves least.
                metrics[f"protium.read_cpu_ms.{key}"] = round(r["cpu_seconds"] * 1e3, 2)
                metrics[f"pyarrow.read_cpu_ms.{key}"] = round(cpu_pa[0] * 1e3, 2)
                metrics[f"ratio.read_cpu.{key}.pyarrow"] = round(cpu_pa[0] / r["cpu_seconds"], 3)
                if threads == 1 and crit_pa[0] != float("inf") and "critical_cpu_seconds" in r:
                    # What a one-thread read would take on an idle machine.
                    metrics[f"protium.read_crit_ms.{key}"] = round(r["critical_cpu_seconds"] * 1e3, 2)
                    metrics[f"pyarrow.read_crit_ms.{key}"] = round(crit_pa[0] * 1e3, 2)
                    metrics[f"ratio.read_crit.{key}.pyarrow"] = round(
                        crit_pa[0] / r["critical_cpu_seconds"], 3)
                rows_out.append(("read", key, gb))
                if threads == 2:
                    # Two streams at once, each reading the whole file.
                    r = driver("read", str(path), str(REPEATS), "2")
                    assert r["rows"] == nrows, (r, nrows)
                    v = 2 * nbytes / r["seconds"] / 1e9
                    metrics[f"protium.read_gb_per_s.{case}_2s"] = round(v, 3)
                    rows_out.append(("read", f"{case}_2s", {"protium": v}))
            # Writes: one thread, then two (the key gets _2t).
            for threads in ((1, 2) if "write" in OPS else ()):
                key = case if threads == 1 else f"{case}_2t"
                gb = {}
                # Two threads: each writes the whole table (threads x the bytes).
                r = driver("write", str(ipc), str(REPEATS), str(threads), codec, "1")
                gb["protium"] = threads * nbytes / r["seconds"] / 1e9
                cpu_pa = [float("inf")]

                def pa_write() -> None:
                    c0 = time.process_time()
                    pq.write_table(table, pa.BufferOutputStream(), compression=codec)
                    cpu_pa[0] = min(cpu_pa[0], time.process_time() - c0)

                if threads == 1:
                    t_pa = best_of(pa_write)
                else:
                    def pa_write2() -> None:
                        ts = [threading.Thread(target=pq.write_table,
                                               args=(table, pa.BufferOutputStream()),
                                               kwargs={"compression": codec}) for _ in range(2)]
                        for t in ts:
                            t.start()
                        for t in ts:
                            t.join()

                    t_pa = best_of(pa_write2)
                gb["pyarrow"] = threads * nbytes / t_pa / 1e9
                if threads == 2:
                    # One file on two encoding threads, against pyarrow's one thread.
                    r1 = driver("write", str(ipc), str(REPEATS), "1", codec, "2")
                    v = nbytes / r1["seconds"] / 1e9
                    metrics[f"protium.write_gb_per_s.{key}_one_file"] = round(v, 3)
                    metrics[f"ratio.write.{key}_one_file.pyarrow"] = round(
                        v / metrics[f"pyarrow.write_gb_per_s.{case}"], 3)
                if threads == 1:
                    # CPU time of a one-thread write: what a loaded machine moves least.
                    metrics[f"protium.write_cpu_ms.{key}"] = round(r["cpu_seconds"] * 1e3, 2)
                    metrics[f"pyarrow.write_cpu_ms.{key}"] = round(cpu_pa[0] * 1e3, 2)
                    metrics[f"ratio.write_cpu.{key}.pyarrow"] = round(cpu_pa[0] / r["cpu_seconds"], 3)
                con = duck(threads)
                con.register("t", table)
                dd_codec = {"none": "uncompressed"}.get(codec, codec)
                out = tmp / "duck.parquet"
                t_dd = best_of(lambda: con.execute(
                    f"COPY t TO '{out}' (FORMAT parquet, COMPRESSION {dd_codec})"))
                gb["duckdb"] = nbytes / t_dd / 1e9
                for sysname, v in gb.items():
                    metrics[f"{sysname}.write_gb_per_s.{key}"] = round(v, 3)
                    metrics[f"{sysname}.write_rows_per_s.{key}"] = round(v * 1e9 / nbytes * nrows)
                metrics[f"ratio.write.{key}.pyarrow"] = round(gb["protium"] / gb["pyarrow"], 3)
                metrics[f"ratio.write.{key}.duckdb"] = round(gb["protium"] / gb["duckdb"], 3)
                rows_out.append(("write", key, gb))
    # Selective query: 100 row groups sorted on id; 1% of them match.
    if ("read" in OPS) and (not ONLY or "select" in ONLY):
        n = total // 16
        ids = np.arange(n, dtype=np.int64)
        rng = np.random.default_rng(3)
        sel = pa.table({"id": ids, "x": rng.standard_normal(n)})
        path = tmp / "sorted.parquet"
        group = n // 100
        pq.write_table(sel, path, row_group_size=group)
        lo, hi = 50 * group, 51 * group  # exactly row group 50
        r = driver("read", str(path), str(REPEATS), "1", "id", str(lo), str(hi))
        t_pa = best_of(lambda: pq.read_table(path, filters=[("id", ">=", lo), ("id", "<", hi)],
                                             use_threads=False))
        con = duck(1)
        t_dd = best_of(lambda: con.sql(
            f"SELECT * FROM read_parquet('{path}') WHERE id >= {lo} AND id < {hi}").to_arrow_table())
        metrics["protium.select_ms"] = round(r["seconds"] * 1e3, 3)
        metrics["protium.select_row_groups_read"] = r["row_groups_read"]
        metrics["pyarrow.select_ms"] = round(t_pa * 1e3, 3)
        metrics["duckdb.select_ms"] = round(t_dd * 1e3, 3)
        metrics["ratio.select.pyarrow"] = round(t_pa / r["seconds"], 3)
        metrics["ratio.select.duckdb"] = round(t_dd / r["seconds"], 3)
    print(f"{'op':6} {'case':24} {'protium':>9} {'pyarrow':>9} {'duckdb':>9}   GB/s of Arrow data")
    for op, key, gb in rows_out:
        cells = " ".join(f"{gb[s]:9.3f}" if s in gb else f"{'—':>9}" for s in ("protium", "pyarrow", "duckdb"))
        print(f"{op:6} {key:24} {cells}")
    if "protium.select_ms" in metrics:
        print(f"select 1% of 100 row groups: protium {metrics['protium.select_ms']} ms "
              f"({metrics['protium.select_row_groups_read']} row groups read), "
              f"pyarrow {metrics['pyarrow.select_ms']} ms, duckdb {metrics['duckdb.select_ms']} ms")
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"bench": "parquet", "metrics": metrics}))


if __name__ == "__main__":
    main()
