"""ipc.py — `bench/run ipc`: Arrow IPC stream write and read throughput of
protium against pyarrow, on the same data, in the same run.

Cases: 1, 16 and 256 columns of int64, float64 or utf8, and 1 and 16 columns
of utf8_view (string views of the utf8 case's words: inline up to 12 bytes,
out of line beyond) and ree (run-end encoded int64, int32 run ends, runs of
1-64 rows), about 64 MiB each (in 16 record batches), uncompressed, LZ4
(frame) and ZSTD (level 1, Arrow's default, for both). pyarrow makes the data deterministically; protium's side
is the C driver build/bench/ipc_bench (bench/ipc_bench.c), which writes the
same batches (memory-mapped from an uncompressed IPC file) into a memory buffer
and reads pyarrow's stream of each case from memory, pulling every batch. Both
sides report the best of N runs. Uncompressed reads do not touch the data, so
for them the read time is also given at 8 MiB (same batch count) to show that
it does not grow with size. Every stream protium writes is read back by
pyarrow and compared with the data.

Prints a table, then as the last line one JSON object:
{"bench": "ipc", "metrics": {"<system>.<metric>[.<variant>]": value, ...}}.
Environment: PT_BUILD_DIR (where bench/ipc_bench is), PT_BENCH_MIB (size of
a case, default 64), PT_BENCH_REPEATS (runs per round, default 3),
PT_BENCH_ROUNDS (rounds the systems take in turn, default 2), PT_BENCH_CASES (comma-
separated case names such as utf8_1col_lz4 to run only those; default all).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("PT_BUILD_DIR", ROOT / "build"))
DRIVER = BUILD / "bench" / "ipc_bench"
MIB = 1 << 20
CASE_MIB = int(os.environ.get("PT_BENCH_MIB", "64"))
SMALL_MIB = max(1, CASE_MIB // 8)
REPEATS = int(os.environ.get("PT_BENCH_REPEATS", "3"))
ROUNDS = int(os.environ.get("PT_BENCH_ROUNDS", "2"))
BATCHES = 16
ZSTD_LEVEL = 1  # the default ZSTD level of both (and of Arrow C++ and Spark)
TYPES = ["int64", "float64", "utf8", "utf8_view", "ree"]
COLUMNS = [1, 16, 256]
NEWER_COLUMNS = [1, 16]  # for utf8_view and ree
COMPRESSIONS = ["none", "lz4", "zstd"]
ONLY = {c for c in os.environ.get("PT_BENCH_CASES", "").split(",") if c}


def make_table(typ: str, ncols: int, total_bytes: int, seed: int = 42) -> pa.Table:
    """About total_bytes of data in BATCHES record batches; the same for a
    given (typ, ncols, total_bytes, seed)."""
    rng = np.random.default_rng([seed, ncols, total_bytes, TYPES.index(typ)])
    per_col = total_bytes // ncols
    if typ == "ree":
        # Runs of 1-64 rows: 4 bytes of run end and 8 of value per run.
        runs = max(BATCHES, per_col // 12)
        ends = np.cumsum(rng.integers(1, 65, runs)).astype(np.int32)
        values = rng.integers(0, 1_000_000, runs, dtype=np.int64)
        arrays = [pa.RunEndEncodedArray.from_arrays(pa.array(ends), pa.array(values))
                  for _ in range(ncols)]
        rows = int(ends[-1])
        table = pa.table(arrays, names=[f"c{i}" for i in range(ncols)])
        return pa.Table.from_batches(table.to_batches(max_chunksize=rows // BATCHES + 1))
    if typ in ("utf8", "utf8_view"):
        # Words of 2-14 letters from a 4096-word vocabulary: ~8 bytes of text
        # and 4 of offset per value (views: 16 bytes of view, the text of
        # words beyond 12 bytes).
        letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)
        vocab = pa.array(
            [bytes(rng.choice(letters, rng.integers(2, 15))).decode() for _ in range(4096)]
        )
        mean_len = float(np.mean([len(s) for s in vocab.to_pylist()]))
        rows = int(per_col / (mean_len + 4))
    else:
        rows = per_col // 8
    rows = max(BATCHES, rows - rows % BATCHES)
    arrays = []
    for _ in range(ncols):
        if typ == "int64":
            arrays.append(pa.array(rng.integers(0, 1_000_000, rows, dtype=np.int64)))
        elif typ == "float64":
            arrays.append(pa.array(rng.standard_normal(rows)))
        else:
            idx = pa.array(rng.integers(0, len(vocab), rows, dtype=np.int32))
            words = vocab.take(idx)
            arrays.append(words.cast(pa.string_view()) if typ == "utf8_view" else words)
    table = pa.table(arrays, names=[f"c{i}" for i in range(ncols)])
    return pa.Table.from_batches(table.to_batches(max_chunksize=rows // BATCHES))


def pa_options(compression: str) -> pa.ipc.IpcWriteOptions:
    if compression == "none":
        return pa.ipc.IpcWriteOptions()
    if compression == "zstd":
        return pa.ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=ZSTD_LEVEL))
    return pa.ipc.IpcWriteOptions(compression="lz4")


def pa_write(batches: list[pa.RecordBatch], schema: pa.Schema, compression: str) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema, options=pa_options(compression)) as w:
        for b in batches:
            w.write_batch(b)
    return sink.getvalue()


def pa_write_into(
    out: pa.Buffer, batches: list[pa.RecordBatch], schema: pa.Schema, compression: str
) -> int:
    """The stream written into out, a buffer made once and reused (pyarrow's
    FixedSizeBufferWriter); returns its size."""
    sink = pa.FixedSizeBufferWriter(out)
    with pa.ipc.new_stream(sink, schema, options=pa_options(compression)) as w:
        for b in batches:
            w.write_batch(b)
    return sink.tell()


def pa_codec(buffers: list[pa.Buffer], compression: str) -> int:
    """Compresses each buffer on its own, on this thread, with pyarrow's codec
    (its own copy of the library): what its writer does per buffer. Returns
    the compressed bytes."""
    level = ZSTD_LEVEL if compression == "zstd" else None
    codec = pa.Codec(compression, compression_level=level)
    total = 0
    for buf in buffers:
        total += codec.compress(buf).size
    return total


def value_buffers(batches: list[pa.RecordBatch]) -> list[pa.Buffer]:
    """The nonempty value buffers (offsets, data) of the benchmark's columns
    (no nulls, offset 0) cut to the bytes their rows use, as a writer sends
    them and as ipc_bench codec measures them."""
    out = []
    for b in batches:
        for col in b.columns:
            bufs = col.buffers()
            if len(bufs) == 3:
                last = int(np.frombuffer(bufs[1], np.int32, len(col) + 1)[len(col)])
                pieces = [bufs[1].slice(0, (len(col) + 1) * 4), bufs[2].slice(0, last)]
            else:
                pieces = [bufs[1].slice(0, len(col) * 8)]
            out += [p for p in pieces if p.size]
    return out


def pa_read(buf: pa.Buffer) -> int:
    rows = 0
    for b in pa.ipc.open_stream(buf):
        rows += b.num_rows
    return rows


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def driver(*args: str) -> dict:
    proc = subprocess.run([str(DRIVER), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"ipc: {DRIVER.name} {' '.join(args)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_case(table: pa.Table, compression: str, tmp: Path, check: bool) -> dict:
    """Times of both systems on one table and compression."""
    batches = table.to_batches()
    source = tmp / "source.arrow"  # uncompressed file: protium's write input
    with pa.ipc.new_file(source, table.schema) as w:
        for b in batches:
            w.write_batch(b)
    written = pa_write(batches, table.schema, compression)
    pa_stream = tmp / "pyarrow.arrows"  # the read input of both
    pa_stream.write_bytes(written.to_pybytes())
    assert pa_read(written) == table.num_rows
    out = tmp / "protium.arrows"
    level = str(ZSTD_LEVEL if compression == "zstd" else 0)
    # The two systems take turns, ROUNDS times each, and each keeps its best:
    # a slow spell of the machine (other VMs, the host backing fresh memory)
    # then falls on both rather than on whichever ran during it.
    best = {k: float("inf") for k in ("pa_write", "pa_reused", "pa_read")}
    pt: dict = {}
    for _ in range(ROUNDS):
        got = driver("case", str(source), str(pa_stream), compression, level, str(REPEATS), str(out))
        for k in ("write_s", "write_reused_s", "read_s"):
            pt[k] = min(pt.get(k, float("inf")), got[k])
        pt["written_bytes"] = got["written_bytes"]
        best["pa_write"] = min(
            best["pa_write"], best_of(lambda: pa_write(batches, table.schema, compression), REPEATS)
        )
        reused = pa.allocate_buffer(written.size + MIB, resizable=False)
        assert pa_write_into(reused, batches, table.schema, compression) == written.size  # warms it
        best["pa_reused"] = min(
            best["pa_reused"],
            best_of(lambda: pa_write_into(reused, batches, table.schema, compression), REPEATS),
        )
        del reused
        best["pa_read"] = min(best["pa_read"], best_of(lambda: pa_read(written), REPEATS))
    pa_write_s, pa_write_reused_s, pa_read_s = best["pa_write"], best["pa_reused"], best["pa_read"]
    if check:
        got = pa.ipc.open_stream(out.read_bytes()).read_all()
        if not got.equals(table):
            sys.exit(f"ipc: pyarrow reads protium's {compression} stream differently")
    codec = {}
    classic = all(pa.types.is_int64(f.type) or pa.types.is_float64(f.type)
                  or pa.types.is_string(f.type) for f in table.schema)
    if compression != "none" and table.num_columns == 16 and classic:
        # The codec libraries alone, one thread, on the same buffers.
        got = driver("codec", str(source), compression, level, str(REPEATS))
        # The batches as the file has them: buffers of exactly their rows
        # (the table's are slices of larger buffers).
        with pa.ipc.open_file(source) as f:
            compact = [f.get_batch(i) for i in range(f.num_record_batches)]
        buffers = value_buffers(compact)
        pa_codec_s = best_of(lambda: pa_codec(buffers, compression), REPEATS)
        assert sum(b.size for b in buffers) == got["bytes"], (
            "the two codec runs must see the same bytes"
        )
        codec = {"protium.codec_s": got["codec_s"], "pyarrow.codec_s": pa_codec_s,
                 "codec_bytes": got["bytes"], "protium.codec_version": got["version"]}
    for p in (source, pa_stream, out):
        p.unlink(missing_ok=True)
    return {
        **codec,
        "bytes": table.nbytes,
        "protium.write_s": pt["write_s"],
        "pyarrow.write_s": pa_write_s,
        "protium.write_reused_s": pt["write_reused_s"],
        "pyarrow.write_reused_s": pa_write_reused_s,
        "protium.read_s": pt["read_s"],
        "pyarrow.read_s": pa_read_s,
        "protium.size": pt["written_bytes"],
        "pyarrow.size": written.size,
    }


def main() -> None:
    if not DRIVER.exists():
        sys.exit(f"ipc: {DRIVER} not found; build first (make build)")
    metrics: dict[str, float] = {}
    rows_out = []
    codec_versions: dict[str, str] = {}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pt-bench-ipc-") as d:
        tmp = Path(d)
        for typ in TYPES:
            for ncols in (NEWER_COLUMNS if typ in ("utf8_view", "ree") else COLUMNS):
                wanted = [c for c in COMPRESSIONS if not ONLY or f"{typ}_{ncols}col_{c}" in ONLY]
                if not wanted:
                    continue
                table = make_table(typ, ncols, CASE_MIB * MIB)
                for compression in wanted:
                    variant = f"{typ}_{ncols}col_{compression}"
                    r = run_case(table, compression, tmp, check=True)
                    gb = r["bytes"] / 1e9
                    for op in ("write", "write_reused", "read"):
                        pt = gb / r[f"protium.{op}_s"]
                        pa_ = gb / r[f"pyarrow.{op}_s"]
                        metrics[f"protium.{op}_gb_per_s.{variant}"] = round(pt, 3)
                        metrics[f"pyarrow.{op}_gb_per_s.{variant}"] = round(pa_, 3)
                        metrics[f"ratio.{op}_gb_per_s.{variant}"] = round(pt / pa_, 3)
                    if "protium.codec_s" in r:
                        cb = r["codec_bytes"] / 1e9
                        pt_c, pa_c = cb / r["protium.codec_s"], cb / r["pyarrow.codec_s"]
                        metrics[f"protium.codec_gb_per_s.{variant}"] = round(pt_c, 3)
                        metrics[f"pyarrow.codec_gb_per_s.{variant}"] = round(pa_c, 3)
                        metrics[f"ratio.codec_gb_per_s.{variant}"] = round(pt_c / pa_c, 3)
                        codec_versions[compression] = r["protium.codec_version"]
                    if compression != "none":
                        metrics[f"protium.compression_ratio.{variant}"] = round(
                            r["bytes"] / r["protium.size"], 3
                        )
                        metrics[f"pyarrow.compression_ratio.{variant}"] = round(
                            r["bytes"] / r["pyarrow.size"], 3
                        )
                    rows_out.append((variant, r))
                if typ == "int64" and not ONLY:
                    # Uncompressed reads at a second size, same batch count.
                    small = make_table(typ, ncols, SMALL_MIB * MIB)
                    rs = run_case(small, "none", tmp, check=True)
                    big = next(r for v, r in rows_out if v == f"{typ}_{ncols}col_none")
                    for size, r in ((SMALL_MIB, rs), (CASE_MIB, big)):
                        v = f"{typ}_{ncols}col_none_{size}mib"
                        metrics[f"protium.read_us.{v}"] = round(r["protium.read_s"] * 1e6, 1)
                        metrics[f"pyarrow.read_us.{v}"] = round(r["pyarrow.read_s"] * 1e6, 1)
                        metrics[f"ratio.read_us.{v}"] = round(
                            r["pyarrow.read_s"] / r["protium.read_s"], 3
                        )
        memcpy = driver("memcpy", "256", str(REPEATS))
    metrics["limit.memcpy_gb_per_s"] = round(memcpy["memcpy_gb_per_s"], 3)
    # A write's output is fresh memory: these limits include the kernel's
    # first touch of its pages (4 KiB pages; with the huge-page advice the
    # writer gives its own output). See bench/README.md.
    metrics["limit.memcpy_fresh_gb_per_s"] = round(memcpy["memcpy_fresh_gb_per_s"], 3)
    metrics["limit.memcpy_fresh_huge_gb_per_s"] = round(memcpy["memcpy_fresh_huge_gb_per_s"], 3)
    # Uncompressed writes against the warm memcpy limit (1 = memcpy speed;
    # 0.5 = 2x slower), into a new buffer and into a reused one.
    for variant, _ in rows_out:
        if variant.endswith("_none"):
            for op in ("write", "write_reused"):
                metrics[f"protium.{op}_over_memcpy.{variant}"] = round(
                    metrics[f"protium.{op}_gb_per_s.{variant}"] / metrics["limit.memcpy_gb_per_s"], 3
                )

    print(
        f"Arrow IPC streams in memory, ~{CASE_MIB} MiB per case in {BATCHES} batches, "
        f"best of {ROUNDS} rounds x {REPEATS} runs, taken in turn; GB/s of Arrow buffer bytes (10^9); "
        f"{os.cpu_count()} CPUs; pyarrow {pa.__version__} (default threads); zstd level {ZSTD_LEVEL}"
    )
    print("write: into a new buffer; write*: into one buffer reused from run to run "
          "(pyarrow: FixedSizeBufferWriter)")
    header = f"{'case':<22}{'op':<7}{'protium':>10}{'pyarrow':>10}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for variant, _ in rows_out:
        for op in ("write", "write_reused", "read"):
            label = "write*" if op == "write_reused" else op
            print(
                f"{variant:<22}{label:<7}"
                f"{metrics[f'protium.{op}_gb_per_s.{variant}']:>10.2f}"
                f"{metrics[f'pyarrow.{op}_gb_per_s.{variant}']:>10.2f}"
                f"{metrics[f'ratio.{op}_gb_per_s.{variant}']:>8.2f}"
            )
    codec_keys = sorted(k for k in metrics if k.startswith("protium.codec_gb_per_s."))
    if codec_keys:
        print()
        print("codec libraries alone, one thread, every buffer of the 16-column cases "
              f"(protium links libzstd {codec_versions.get('zstd', '?')}, "
              f"liblz4 {codec_versions.get('lz4', '?')}; pyarrow has its own):")
        for key in codec_keys:
            v = key.split(".", 2)[2]
            print(
                f"  {v:<22}protium {metrics[key]:>6.2f}   pyarrow "
                f"{metrics['pyarrow.codec_gb_per_s.' + v]:>6.2f}   ratio "
                f"{metrics['ratio.codec_gb_per_s.' + v]:>5.2f}"
            )
    print()
    print("uncompressed read time (µs), independent of size:")
    for key in sorted(k for k in metrics if k.startswith("protium.read_us.")):
        v = key.split(".", 2)[2]
        print(
            f"  {v:<28}protium {metrics[key]:>9.1f}   pyarrow "
            f"{metrics['pyarrow.read_us.' + v]:>9.1f}"
        )
    for op, name in (("protium.write_over_memcpy", "a new buffer"),
                     ("protium.write_reused_over_memcpy", "a reused buffer")):
        vals = [v for k, v in metrics.items() if k.startswith(op + ".")]
        if vals:
            print(f"uncompressed writes into {name}: {min(vals):.2f}-{max(vals):.2f} of warm memcpy speed")
    print(f"memcpy: {metrics['limit.memcpy_gb_per_s']:.2f} GB/s warm, "
          f"{metrics['limit.memcpy_fresh_gb_per_s']:.2f} into fresh pages, "
          f"{metrics['limit.memcpy_fresh_huge_gb_per_s']:.2f} into fresh huge pages   "
          f"(total {time.perf_counter() - t_start:.0f} s)")
    print(json.dumps({"bench": "ipc", "metrics": metrics}))


if __name__ == "__main__":
    main()
