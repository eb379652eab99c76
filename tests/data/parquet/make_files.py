"""Writes the small Parquet files committed beside this script: the seeds of
the fuzz target tests/fuzz/fuzz_parquet.c (copied to
tests/fuzz/corpus/parquet/) and the input of tests/c/test_parquet_corrupt.c.
Deterministic: rerun with the test environment's pyarrow to remake them.

    .venv/bin/python tests/data/parquet/make_files.py
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1] / "fuzz" / "corpus" / "parquet"


def table() -> pa.Table:
    n = 40
    return pa.table(
        {
            "i32": pa.array([None if i % 7 == 0 else i * 3 - 50 for i in range(n)], pa.int32()),
            "i64": pa.array([i * 1_000_000_007 for i in range(n)], pa.int64()),
            "u8": pa.array([i % 256 for i in range(n)], pa.uint8()),
            "f64": pa.array([None if i % 5 == 0 else i / 3 for i in range(n)]),
            "b": pa.array([None if i % 6 == 0 else i % 3 == 0 for i in range(n)]),
            "s": pa.array([None if i % 4 == 0 else f"v{i % 9}" for i in range(n)]),
            "ts": pa.array([i * 3_600_000_000 for i in range(n)], pa.timestamp("us", "UTC")),
            "d": pa.array([Decimal(i) / 100 for i in range(n)], pa.decimal128(12, 2)),
            "fb": pa.array([bytes([i, i + 1]) for i in range(n)], pa.binary(2)),
            "h": pa.array([float(i) for i in range(n)], pa.float16()),
        }
    )


def main() -> None:
    t = table()
    files = {
        "v1_snappy_dict.parquet": dict(compression="snappy", row_group_size=25),
        "v2_zstd_dict.parquet": dict(compression="zstd", data_page_version="2.0"),
        "v1_plain_none.parquet": dict(compression="none", use_dictionary=False, data_page_size=64),
        "v2_gzip_plain.parquet": dict(compression="gzip", data_page_version="2.0", use_dictionary=False),
        "v1_lz4_brotli.parquet": dict(compression={"i32": "lz4", "s": "brotli"}, store_schema=False),
        "v2_delta_split.parquet": dict(
            use_dictionary=False, data_page_version="2.0", compression="none",
            column_encoding={"i32": "DELTA_BINARY_PACKED", "i64": "DELTA_BINARY_PACKED",
                             "s": "DELTA_BYTE_ARRAY", "fb": "DELTA_BYTE_ARRAY", "f64": "BYTE_STREAM_SPLIT",
                             "h": "BYTE_STREAM_SPLIT", "d": "BYTE_STREAM_SPLIT"}),
        "v1_delta_length.parquet": dict(
            use_dictionary=False, compression="snappy",
            column_encoding={"s": "DELTA_LENGTH_BYTE_ARRAY", "u8": "DELTA_BINARY_PACKED"}),
        # Five row groups, a codec per column: one thread reads the next row
        # group ahead on a second one.
        "v1_rowgroups_mixed.parquet": dict(
            row_group_size=8, compression={"i32": "zstd", "i64": "snappy", "f64": "gzip", "s": "zstd",
                                           "ts": "lz4", "d": "brotli", "b": "none"}),
    }
    CORPUS.mkdir(parents=True, exist_ok=True)
    for name, kw in files.items():
        pq.write_table(t, HERE / name, **kw)
        shutil.copy(HERE / name, CORPUS / name)
    n = 30
    nested = pa.table({
        "l": pa.array([None if i % 5 == 0 else [i, None, i * 2][: i % 4] for i in range(n)],
                      pa.list_(pa.int32())),
        "s": pa.array([None if i % 6 == 0 else {"a": i, "b": [str(i)] * (i % 3)} for i in range(n)],
                      pa.struct([("a", pa.int64()), ("b", pa.list_(pa.utf8()))])),
        "m": pa.array([None if i % 7 == 0 else [(f"k{i}", i)] * (i % 2) for i in range(n)],
                      pa.map_(pa.utf8(), pa.int32())),
    })
    pq.write_table(nested, HERE / "nested.parquet", row_group_size=20, data_page_version="2.0")
    shutil.copy(HERE / "nested.parquet", CORPUS / "nested.parquet")
    int96 = pa.table({"ts": pa.array([0, 1_600_000_000_000_000_000, None], pa.timestamp("ns"))})
    pq.write_table(int96, HERE / "int96.parquet", use_deprecated_int96_timestamps=True)
    shutil.copy(HERE / "int96.parquet", CORPUS / "int96.parquet")


if __name__ == "__main__":
    main()
