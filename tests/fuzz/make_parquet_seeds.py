"""Writes the generated seeds of the Parquet fuzz targets: for fuzz_parquet
(tests/fuzz/corpus/parquet/), files of the features the reader has beyond
tests/data/parquet's (page index, protium-written, decimal256, time,
unsigned and null columns, the hand-made forms of
tests/python/pq_builder.py, Spark's files); for fuzz_parquet_thrift
(tests/fuzz/corpus/parquet_thrift/), footers and page-index structs.
Small on purpose (a few KB each). Deterministic; rerun to remake them:

    PT_BUILD_DIR=$PWD/build .venv/bin/python tests/fuzz/make_parquet_seeds.py
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import struct
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "python"))
sys.path.insert(0, str(ROOT / "python"))
import pq_builder as B  # noqa: E402

READER = ROOT / "tests" / "fuzz" / "corpus" / "parquet"
THRIFT = ROOT / "tests" / "fuzz" / "corpus" / "parquet_thrift"
N = 24


def pa_bytes(table: pa.Table, **kw) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **kw)
    return sink.getvalue()


def typed_table() -> pa.Table:
    n = N
    return pa.table({
        "d256": pa.array([None if i % 5 == 0 else Decimal(i * 10**40 - 7).scaleb(-3)
                          for i in range(n)], pa.decimal256(60, 3)),
        "d32": pa.array([Decimal(i * 37 - 100).scaleb(-2) for i in range(n)], pa.decimal128(9, 2)),
        "t32": pa.array([dt.time(i % 24, i, i % 60) for i in range(n)], pa.time32("ms")),
        "t64": pa.array([None if i % 4 == 0 else i * 1_000_003 for i in range(n)], pa.time64("ns")),
        "u8": pa.array([255 - i for i in range(n)], pa.uint8()),
        "u16": pa.array([65535 - i * 9 for i in range(n)], pa.uint16()),
        "u32": pa.array([None if i % 3 == 0 else 2**32 - 1 - i for i in range(n)], pa.uint32()),
        "u64": pa.array([2**64 - 1 - i * 12345 for i in range(n)], pa.uint64()),
        "nul": pa.nulls(n),
        "s": pa.array([None if i % 6 == 0 else f"v{i % 5}" for i in range(n)]),
    })


def handmade() -> dict[str, bytes]:
    """The forms tests/python/test_parquet_handmade.py reads or refuses."""
    rows = [["a", "b"], [], None, ["c"]]
    d, r, v = B.levels_of(rows, optional_list=True)
    vals = [x.encode() for x in v]
    out = {}
    for rname in ("array", "my_list_tuple"):
        schema = [B.root(1), B.Elem("my_list", repetition=B.OPTIONAL, num_children=1, converted=B.LIST),
                  B.Elem(rname, repetition=B.REPEATED, num_children=1),
                  B.Elem("str", B.BYTE_ARRAY, B.REQUIRED, converted=B.UTF8)]
        out[f"legacy-list-{rname.replace('my_list_', '')}"] = B.build(
            schema, [B.Column(["my_list", rname, "str"], B.BYTE_ARRAY, vals, d, r, 2, 1)], 4)
    d2, r2, v2 = B.levels_of([[1, 2], [], [3]], optional_list=False)
    out["bare-repeated"] = B.build([B.root(1), B.Elem("num", B.INT32, B.REPEATED)],
                                   [B.Column(["num"], B.INT32, v2, d2, r2, 1, 1)], 3)
    out["hadoop-lz4"] = B.build([B.root(1), B.Elem("x", B.INT64, B.OPTIONAL)],
                                [B.Column(["x"], B.INT64, list(range(40)), [1] * 40 + [0], None, 1,
                                          codec=B.LZ4)], 41)
    out["bit-packed-levels"] = B.build(
        [B.root(1), B.Elem("x", B.INT64, B.OPTIONAL)],
        [B.Column(["x"], B.INT64, [1, 2], [1, 0, 1], None, 1, def_encoding=B.BIT_PACKED)], 3)
    out["byte-array-decimal"] = B.build(
        [B.root(2), B.Elem("d", B.BYTE_ARRAY, B.OPTIONAL, logical=B.logical(B.LT_DECIMAL, 2, 10)),
         B.Elem("e", B.BYTE_ARRAY, B.REQUIRED, converted=B.DECIMAL, scale=3, precision=50)],
        [B.Column(["d"], B.BYTE_ARRAY, [b"\x30\x39", b"\xff"], [1, 0, 1], None, 1),
         B.Column(["e"], B.BYTE_ARRAY, [b"\x01", b"\xfb", b"\x00"])], 3)
    out["enum-json-bson-uuid"] = B.build(
        [B.root(4), B.Elem("e", B.BYTE_ARRAY, B.OPTIONAL, logical=B.logical(B.LT_ENUM)),
         B.Elem("j", B.BYTE_ARRAY, B.REQUIRED, converted=B.JSON),
         B.Elem("b", B.BYTE_ARRAY, B.REQUIRED, logical=B.logical(B.LT_BSON)),
         B.Elem("u", B.FIXED_LEN_BYTE_ARRAY, B.REQUIRED, type_length=16, logical=B.logical(B.LT_UUID))],
        [B.Column(["e"], B.BYTE_ARRAY, [b"RED", b"GREEN"], [1, 0, 1], None, 1),
         B.Column(["j"], B.BYTE_ARRAY, [b"{}", b"[1]", b"2"]),
         B.Column(["b"], B.BYTE_ARRAY, [b"\x05\x00\x00\x00\x00"] * 3),
         B.Column(["u"], B.FIXED_LEN_BYTE_ARRAY, [bytes(range(k, k + 16)) for k in range(3)],
                  type_length=16)], 3)
    return out


def column_index() -> bytes:
    s = B.Struct()
    s.list(1, B.T_TRUE, [b"\x02", b"\x01", b"\x02"])
    s.list(2, B.T_BINARY, [B._bin_item(struct.pack("<q", 1)), b"\x00", B._bin_item(struct.pack("<q", 90))])
    s.list(3, B.T_BINARY, [B._bin_item(struct.pack("<q", 50)), b"\x00", B._bin_item(struct.pack("<q", 99))])
    s.i32(4, 1)
    s.list(5, B.T_I64, [B.varint(B.zigzag(v)) for v in (0, 10, 3)])
    return s.done()


def offset_index() -> bytes:
    locs = [B.Struct().i64(1, off).i32(2, size).i64(3, row).done()
            for off, size, row in ((4, 100, 0), (104, 120, 10), (224, 80, 25))]
    return B.Struct().list(1, B.T_STRUCT, locs).done()


def footer(data: bytes) -> bytes:
    n = struct.unpack("<I", data[-8:-4])[0]
    return data[-8 - n : -8]


def main() -> None:
    import protium.parquet as ptq

    files: dict[str, bytes] = {}
    t = typed_table()
    files["typed-page-index"] = pa_bytes(t, write_page_index=True, row_group_size=12,
                                         data_page_size=64, compression="snappy")
    files["typed-v2-nostats-noschema"] = pa_bytes(t, data_page_version="2.0", write_statistics=False,
                                                  store_schema=False, compression="zstd")
    files["protium-written"] = ptq.write_parquet_buffer(
        t.drop_columns(["nul"]), row_group_rows=12, page_bytes=128, codec="snappy")
    files["protium-written-v2"] = ptq.write_parquet_buffer(
        pa.table({"l": pa.array([[i, None] if i % 3 else None for i in range(N)], pa.list_(pa.int32())),
                  "st": pa.array([{"a": i, "b": str(i)} for i in range(N)])}),
        data_page_version=2, codec="none", row_group_rows=10)
    files.update(handmade())
    for name in ("spark_default", "spark_legacy"):
        files[name] = (ROOT / "tests" / "data" / "parquet" / f"{name}.parquet").read_bytes()
    for name, data in files.items():
        (READER / f"{name}.parquet").write_bytes(data)
    for name in ("typed-page-index", "enum-json-bson-uuid", "spark_legacy", "legacy-list-array"):
        (THRIFT / f"{name}.footer").write_bytes(footer(files[name]))
    (THRIFT / "column-index.bin").write_bytes(column_index())
    (THRIFT / "offset-index.bin").write_bytes(offset_index())


if __name__ == "__main__":
    main()
