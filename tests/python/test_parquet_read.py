"""Parquet files written by pyarrow, read by libprotium (pt_parquet_read_*)
and compared value for value with pyarrow's own reading of the same file.

The matrix: every flat type protium reads x nullable or not x codec x data
page version x dictionary on/off, with several row groups and pages; then
projection, batch sizes, INT96, decimals stored as integers, files without
the stored Arrow schema, empty files and zero-row row groups, and what is
refused (with the message that says so). Corrupt input is tested in
test_parquet_corrupt.py.
"""

from __future__ import annotations

import io
from decimal import Decimal as D
from pathlib import Path
from typing import Optional

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import protium.parquet as ptq
from protium import ProtiumError
from protium._lib import PT_EINVAL, PT_ENOTSUP
from conftest import COLUMNS, NOT_NULL_COLUMNS, make_table

# The flat columns of conftest that Parquet stores and protium reads back
# as the same Arrow type.
FLAT = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "utf8", "large_utf8", "binary", "large_binary",
    "fixed_size_binary_3", "fixed_size_binary_16", "date32",
    *[c for c in COLUMNS if c.startswith("timestamp_") or c.startswith("duration_")],
    "decimal128_1_0", "decimal128_5_2", "decimal128_18_0", "decimal128_38_10", "decimal128_38_38",
    "null",
]
NOT_NULL = list(NOT_NULL_COLUMNS)
CODECS = ["none", "snappy", "gzip", "zstd", "lz4", "brotli"]


def with_required(table: pa.Table, names: Optional[list[str]] = None) -> pa.Table:
    """table and, for each of names (default: its nullable columns but the
    null type's), a copy declared non-nullable (REQUIRED in Parquet) named
    NAME_required, each null replaced by the column's first value."""
    fields, arrays = list(table.schema), list(table.columns)
    for f in table.schema:
        if f.type == pa.null() or not f.nullable or (names is not None and f.name not in names):
            continue
        col = table.column(f.name).combine_chunks()
        valid = col.is_valid().to_pylist()
        first = valid.index(True)
        filled = col.take(pa.array([i if v else first for i, v in enumerate(valid)]))
        fields.append(pa.field(f.name + "_required", f.type, nullable=False))
        arrays.append(filled)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=table.schema.metadata))


def pa_bytes(table: pa.Table, **kw) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **kw)
    return sink.getvalue()


def expected(data: bytes, columns: Optional[list[str]] = None) -> pa.Table:
    """pyarrow's reading, with dictionary columns decoded (protium gives
    their values)."""
    t = pq.read_table(io.BytesIO(data), columns=columns)
    fields = [
        pa.field(f.name, f.type.value_type, f.nullable) if pa.types.is_dictionary(f.type) else f
        for f in t.schema
    ]
    return t.cast(pa.schema(fields, metadata=t.schema.metadata))


def check_same(got: pa.Table, want: pa.Table) -> None:
    assert got.schema.names == want.schema.names
    for name in want.schema.names:
        g, w = got.column(name), want.column(name)
        assert g.type == w.type, f"{name}: {g.type} != {w.type}"
        assert g.equals(w), f"column {name} differs"
    assert got.num_rows == want.num_rows
    for f in want.schema:
        assert got.schema.field(f.name).nullable == f.nullable, f.name


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("dictionary", [True, False])
def test_matrix(codec: str, version: str, dictionary: bool) -> None:
    table = with_required(make_table(n=700, seed=hash((codec, version, dictionary)) % 1000,
                                     columns=FLAT + NOT_NULL))
    data = pa_bytes(
        table,
        compression=codec,
        data_page_version=version,
        use_dictionary=dictionary,
        row_group_size=300,
        data_page_size=512,
    )
    assert pq.ParquetFile(io.BytesIO(data)).metadata.num_row_groups == 3
    required = [c for c in pq.ParquetFile(io.BytesIO(data)).schema if c.path.endswith("_required")]
    assert len(required) == len(FLAT) - 1 and all(c.max_definition_level == 0 for c in required)
    got = ptq.read_parquet_buffer(data).read_all()
    check_same(got, expected(data))


@pytest.mark.parametrize("store_schema", [True, False])
def test_types_without_arrow_schema(store_schema: bool) -> None:
    """Without ARROW:schema, types come from the Parquet logical types alone
    and must match what pyarrow makes of them."""
    table = with_required(make_table(n=300, columns=FLAT + NOT_NULL))
    data = pa_bytes(table, store_schema=store_schema)
    got = ptq.read_parquet_buffer(data).read_all()
    check_same(got, expected(data))


def test_read_path_projection_and_batches(tmp_path: Path) -> None:
    table = make_table(n=1000, columns=["int64", "utf8", "bool", "float64"])
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=400)
    reader = ptq.read_parquet(path, columns=["utf8", "int64"], batch_size=150)
    batches = list(reader)
    # 400 + 400 + 200 rows, cut in batches of at most 150 within row groups.
    assert [b.num_rows for b in batches] == [150, 150, 100, 150, 150, 100, 150, 50]
    got = pa.Table.from_batches(batches)
    check_same(got, expected(path.read_bytes(), columns=["utf8", "int64"]))
    with pytest.raises(ProtiumError) as e:
        ptq.read_parquet(path, columns=["nope"])
    assert e.value.code == PT_EINVAL
    assert str(e.value) == (
        f"parquet: {path}: no column 'nope' in the file; see its schema with `protium cat --schema`"
    )


def test_int96_and_decimal_as_integers() -> None:
    ts = pa.array([0, -86_400_000_000_123, 1_700_000_000_123_456_789, None], pa.timestamp("ns"))
    dec = {
        "d9": pa.array([D("1.5"), D("-999999.999"), None, D(5)], pa.decimal128(9, 3)),
        "d18": pa.array([D(1), D(-(10**18) + 1), None, D(5)], pa.decimal128(18, 0)),
    }
    table = pa.table({"ts": ts, **dec})
    for store_schema in (True, False):
        data = pa_bytes(
            table,
            use_deprecated_int96_timestamps=True,
            store_decimal_as_integer=True,
            store_schema=store_schema,
        )
        md = pq.ParquetFile(io.BytesIO(data)).schema
        assert md.column(0).physical_type == "INT96"
        assert md.column(1).physical_type == "INT32"
        assert md.column(2).physical_type == "INT64"
        got = ptq.read_parquet_buffer(data).read_all()
        check_same(got, expected(data))


def test_empty_and_zero_row_groups(tmp_path: Path) -> None:
    schema = pa.schema([("a", pa.int32()), ("s", pa.utf8())])
    # No row group at all.
    data = pa_bytes(schema.empty_table())
    got = ptq.read_parquet_buffer(data).read_all()
    assert got.num_rows == 0 and got.schema.names == ["a", "s"]
    # Zero-row row groups between others.
    path = tmp_path / "z.parquet"
    with pq.ParquetWriter(path, schema) as w:
        w.write_table(schema.empty_table())
        w.write_table(pa.table({"a": [1, 2], "s": ["x", None]}, schema=schema))
        w.write_table(schema.empty_table())
        w.write_table(pa.table({"a": [3], "s": ["y"]}, schema=schema))
    assert pq.ParquetFile(path).metadata.num_row_groups == 4
    got = ptq.read_parquet(path).read_all()
    check_same(got, expected(path.read_bytes()))


def test_huge_strings_and_10k_columns() -> None:
    big = "x" * (3 << 20)
    table = pa.table({"s": [big, None, big[:10], ""]})
    data = pa_bytes(table, compression="zstd")
    check_same(ptq.read_parquet_buffer(data).read_all(), expected(data))
    wide = pa.table({f"c{i}": pa.array([i, None, -i], pa.int32()) for i in range(10_000)})
    data = pa_bytes(wide, compression="none")
    check_same(ptq.read_parquet_buffer(data).read_all(), expected(data))


def test_schema_metadata_kept() -> None:
    table = make_table(n=10, columns=["int64"])
    data = pa_bytes(table)
    got = ptq.read_parquet_buffer(data).read_all()
    assert got.schema.metadata[b"producer"] == b"protium tests"


def newer_types_table() -> pa.Table:
    """The Arrow types the columnar format gained later, as pyarrow stores them."""
    n = [1, None, -3, 0]
    return pa.table({
        "time32_s": pa.array([1, None, 86399, 0], pa.time32("s")),
        "time32_ms": pa.array([1, None, 86_399_999, 0], pa.time32("ms")),
        "time64_us": pa.array([1, None, 86_399_999_999, 0], pa.time64("us")),
        "time64_ns": pa.array([1, None, 86_399_999_999_999, 0], pa.time64("ns")),
        "decimal32": pa.array([D("1.5"), None, D("-9999.9"), D(0)],
                              pa.decimal32(5, 1)),
        "decimal64": pa.array([D("12345678901234.5"), None, D("-1"), D(0)],
                              pa.decimal64(15, 1)),
        "decimal256": pa.array([D("1" * 47 + ".123"), None, D("-" + "9" * 50 + ".5"),
                                D(0)], pa.decimal256(60, 3)),
        "decimal256_small": pa.array(n, pa.decimal256(20, 0)),
        "string_view": pa.array(["a", None, "a longer string than twelve bytes", ""],
                                pa.string_view()),
        "binary_view": pa.array([b"\x00", None, b"x" * 40, b""], pa.binary_view()),
    })


def test_newer_arrow_types() -> None:
    # Read back as pyarrow reads them: time32[s] as milliseconds (Parquet
    # has no seconds), the decimals and views as the stored schema says.
    table = newer_types_table()
    for dictionary in (False, True):
        data = pa_bytes(table, use_dictionary=dictionary)
        got = ptq.read_parquet_buffer(data).read_all()
        want = expected(data)
        check_same(got, want)


def test_views_in_batches_and_lists() -> None:
    long = "x" * 30
    table = pa.table({
        "v": pa.array(["a", long, None, "", "b" * 13] * 3, pa.string_view()),
        "l": pa.array([["a", long], None, [], [None, "c" * 12], ["d"]] * 3,
                      pa.list_(pa.string_view())),
    })
    data = pa_bytes(table, row_group_size=7)
    got = pa.Table.from_batches(list(ptq.read_parquet_buffer(data, batch_size=2)))
    assert got.num_rows == 15
    check_same(got.combine_chunks(), expected(data).combine_chunks())


def test_newer_types_without_arrow_schema() -> None:
    # From the Parquet types alone: TIME by unit, decimal256 past 38 digits.
    table = newer_types_table().select(["time32_ms", "time64_us", "time64_ns", "decimal256"])
    data = pa_bytes(table, store_schema=False)
    got = ptq.read_parquet_buffer(data).read_all()
    assert got.schema.field("time32_ms").type == pa.time32("ms")
    assert got.schema.field("time64_us").type == pa.time64("us")
    assert got.schema.field("time64_ns").type == pa.time64("ns")
    assert got.schema.field("decimal256").type == pa.decimal256(60, 3)
    check_same(got, expected(data))


# Every flat type each encoding applies to (by its physical type), nullable
# and not (with_required).
_INT_PHYSICAL = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                 "date32", "time32_ms", "time64_us", "time64_ns",
                 *[c for c in COLUMNS if c.startswith("timestamp_") and not c.startswith("timestamp_s")],
                 "duration_ms", "duration_us", "duration_ns"]
_FLBA = ["float16", "fixed_size_binary_3", "fixed_size_binary_16", "decimal128_1_0",
         "decimal128_5_2", "decimal128_18_0", "decimal128_38_10", "decimal128_38_38"]
ENCODED = {
    "DELTA_BINARY_PACKED": _INT_PHYSICAL,
    "DELTA_LENGTH_BYTE_ARRAY": ["utf8", "large_utf8", "binary", "large_binary"],
    "DELTA_BYTE_ARRAY": ["utf8", "large_utf8", "binary", "large_binary", *_FLBA],
    "BYTE_STREAM_SPLIT": ["float32", "float64", *_INT_PHYSICAL, *_FLBA],
}


@pytest.mark.parametrize("encoding", sorted(ENCODED))
@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("codec", CODECS)
def test_delta_and_byte_stream_split(encoding: str, version: str, codec: str) -> None:
    n = 400
    table = with_required(make_table(n=n, seed=11, columns=ENCODED[encoding]))
    if encoding == "DELTA_BYTE_ARRAY":
        # Shared prefixes, the case the encoding is for.
        words = pa.array([f"prefix/{i // 7:05d}/{i % 7}" if i % 9 else None for i in range(n)])
        table = table.append_column("sorted", words)
    cols = table.column_names
    data = pa_bytes(
        table, use_dictionary=False, compression=codec, data_page_version=version,
        column_encoding={c: encoding for c in cols}, data_page_size=1024, row_group_size=150,
    )
    md = pq.ParquetFile(io.BytesIO(data)).metadata
    assert md.num_row_groups == 3
    for j in range(md.num_columns):
        assert encoding in md.row_group(0).column(j).encodings, md.schema.column(j).name
    check_same(ptq.read_parquet_buffer(data).read_all(), expected(data))


NESTED = ["list_int32", "list_utf8", "large_list_int64", "list_list_int8", "struct",
          "struct_nested", "list_struct", "fixed_size_list_int16_3", "fixed_size_list_float32_64"]


def deep(n: int, rng_seed: int = 5) -> pa.Array:
    """list<struct<a: list<int32>, b: struct<c: list<utf8>>>>: lists to depth 3,
    nulls at every level."""
    import random

    rng = random.Random(rng_seed)

    def maybe(v):
        return None if rng.random() < 0.15 else v

    def inner():
        return maybe({"a": maybe([maybe(rng.randint(-9, 9)) for _ in range(rng.randint(0, 3))]),
                      "b": maybe({"c": maybe([maybe(str(rng.random())[:5]) for _ in range(rng.randint(0, 3))])})})

    t = pa.list_(pa.struct([("a", pa.list_(pa.int32())), ("b", pa.struct([("c", pa.list_(pa.utf8()))]))]))
    return pa.array([maybe([inner() for _ in range(rng.randint(0, 4))]) for _ in range(n)], t)


def maps(n: int) -> pa.Array:
    import random

    rng = random.Random(9)
    t = pa.map_(pa.utf8(), pa.int64())
    return pa.array([None if rng.random() < 0.2 else
                     [(f"k{j}", None if rng.random() < 0.2 else j) for j in range(rng.randint(0, 3))]
                     for _ in range(n)], t)


def same_values(got: pa.Table, want: pa.Table) -> None:
    assert got.schema.names == want.schema.names
    for name in want.schema.names:
        w = want.column(name)
        if pa.types.is_map(w.type):
            assert got.column(name).type == w.type, name
        assert got.column(name).to_pylist() == w.to_pylist(), name


@pytest.mark.parametrize("codec", ["none", "snappy", "zstd"])
@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("dictionary", [True, False])
def test_nested_matrix(codec: str, version: str, dictionary: bool) -> None:
    table = make_table(n=500, seed=21, columns=NESTED + ["int64"])
    table = table.append_column("deep", deep(500)).append_column("map", maps(500))
    table = with_required(table)  # required top-level lists, structs and maps too
    data = pa_bytes(table, compression=codec, data_page_version=version, use_dictionary=dictionary,
                    row_group_size=200, data_page_size=700)
    got = ptq.read_parquet_buffer(data, batch_size=77).read_all()
    same_values(got, pq.read_table(io.BytesIO(data)))
    assert got.schema.field("struct").type == pq.read_schema(io.BytesIO(data)).field("struct").type
    # Projection of nested columns alone.
    got = ptq.read_parquet_buffer(data, columns=["deep", "int64"]).read_all()
    same_values(got, pq.read_table(io.BytesIO(data), columns=["deep", "int64"]))


@pytest.mark.parametrize("codec", ["snappy", "zstd", "gzip", "lz4"])
@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_compressed_pages_into_place(codec: str, version: str) -> None:
    """Compressed PLAIN pages of fixed-width values without nulls go
    straight into the column (a v1 page's levels land just before its rows
    and those bytes are put back): many small pages, required and optional
    columns, a single null in a late page, nulls in one page only, and a
    page of nulls after pages without."""
    n = 20000
    ints = pa.array(range(n), pa.int64())
    one_null = pa.array([None if i == 15001 else i * 3 for i in range(n)], pa.int32())
    late = pa.array([None if 12000 <= i < 12500 and i % 2 else float(i) for i in range(n)])
    tail = pa.array([None if i >= 18000 else i for i in range(n)], pa.int64())
    schema = pa.schema([pa.field("req", pa.int64(), nullable=False), ("opt", pa.int64()),
                        ("one_null", pa.int32()), ("late", pa.float64()), ("tail", pa.int64()),
                        ("day", pa.date32())])
    table = pa.table([ints, ints, one_null, late, tail, pa.array(range(n), pa.date32())], schema=schema)
    data = pa_bytes(table, compression=codec, data_page_version=version, use_dictionary=False,
                    data_page_size=4096, row_group_size=12000)
    got = ptq.read_parquet_buffer(data, batch_size=5000).read_all()
    check_same(got, expected(data))


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("dictionary", [True, False])
def test_nested_siblings(version: str, dictionary: bool) -> None:
    """Leaves under one struct or list (the tree is built from the first
    one's levels, the others decode their definition levels only): nulls at
    every level and in each sibling apart, required siblings, a map, and
    each column alone, across small pages and row groups."""
    import random
    rnd = random.Random(5)

    def maybe(x, p=0.15):
        return None if rnd.random() < p else x

    n = 1500
    item = pa.struct([("a", pa.int64()), ("b", pa.float64()), ("c", pa.string())])
    req = pa.struct([pa.field("a", pa.int64(), nullable=False), pa.field("b", pa.float64(), nullable=False)])
    table = pa.table({
        "ls": pa.array([maybe([maybe({"a": maybe(rnd.randint(0, 50)), "b": maybe(rnd.random()),
                                      "c": maybe(rnd.choice(["x", "yy"]))})
                               for _ in range(rnd.randint(0, 5))]) for _ in range(n)], pa.list_(item)),
        "m": pa.array([maybe([(f"k{j}", maybe(j)) for j in range(rnd.randint(0, 4))]) for _ in range(n)],
                      pa.map_(pa.string(), pa.int32())),
        "s": pa.array([maybe({"l": maybe([maybe(rnd.randint(0, 9)) for _ in range(rnd.randint(0, 3))]),
                              "i": maybe(rnd.randint(0, 9)), "t": maybe({"x": maybe(1.5), "y": [1, 2]})})
                       for _ in range(n)],
                      pa.struct([("l", pa.list_(pa.int32())), ("i", pa.int32()),
                                 ("t", pa.struct([("x", pa.float64()), ("y", pa.list_(pa.int64()))]))])),
        "req": pa.array([[{"a": i, "b": float(i)}] * (i % 3) for i in range(n)],
                        pa.list_(pa.field("item", req, nullable=False))),
    })
    data = pa_bytes(table, data_page_version=version, use_dictionary=dictionary, row_group_size=600,
                    data_page_size=1500)
    want = pq.read_table(io.BytesIO(data))
    assert ptq.read_parquet_buffer(data, batch_size=250).read_all().to_pylist() == want.to_pylist()
    for name in table.column_names:
        got = ptq.read_parquet_buffer(data, columns=[name]).read_all()
        assert got.column(0).to_pylist() == want.column(name).to_pylist(), name


def test_nested_arrow_schema_refines() -> None:
    """ARROW:schema gives large lists and time zones inside structs back."""
    table = pa.table({
        "ll": pa.array([[1, 2], None, []], pa.large_list(pa.int64())),
        "s": pa.array([{"t": 1}, None, {"t": None}], pa.struct([("t", pa.timestamp("ms", "UTC"))])),
    })
    got = ptq.read_parquet_buffer(pa_bytes(table)).read_all()
    assert got.schema.field("ll").type == pa.large_list(pa.field("element", pa.int64()))
    assert got.schema.field("s").type == table.schema.field("s").type
    assert got.column("ll").to_pylist() == table.column("ll").to_pylist()


def test_maps_as_arrow_maps() -> None:
    """MAP reads as an Arrow map, nested too, with or without ARROW:schema."""
    table = pa.table({
        "m": pa.array([[("a", 1), ("b", None)], [], None, [("c", 3)]], pa.map_(pa.utf8(), pa.int32())),
        "lm": pa.array([[[("a", [1])]], None, [], [None, [("x", None)]]],
                       pa.list_(pa.map_(pa.utf8(), pa.list_(pa.int64())))),
    })
    for store_schema in (True, False):
        data = pa_bytes(table, store_schema=store_schema)
        got = ptq.read_parquet_buffer(data).read_all()
        assert pa.types.is_map(got.schema.field("m").type)
        assert got.equals(pq.read_table(io.BytesIO(data)))


def test_nested_non_compliant_names() -> None:
    """Lists written with pyarrow's older names (list<item>) read the same."""
    table = pa.table({"l": pa.array([[1, None], None, []], pa.list_(pa.int64())), "d": deep(3)})
    data = pa_bytes(table, use_compliant_nested_type=False)
    same_values(ptq.read_parquet_buffer(data).read_all(), pq.read_table(io.BytesIO(data)))


@pytest.mark.parametrize("threads", [2, 3, 16])
def test_threads(threads: int, tmp_path: Path) -> None:
    """Column chunks decoded on several threads (with more threads than
    columns, several row groups at once) give what one thread gives: flat
    columns of every type, one column of many row groups, nested columns,
    and a filter that skips row groups and pages."""
    table = make_table(n=2000, seed=5, columns=FLAT + NOT_NULL)
    data = pa_bytes(table, row_group_size=300, data_page_size=512)
    got = ptq.read_parquet_buffer(data, batch_size=250, threads=threads).read_all()
    check_same(got, expected(data))
    one = pa_bytes(table.select(["int64"]), row_group_size=150, compression="zstd")
    reader = ptq.read_parquet_buffer(one, batch_size=100, threads=threads)
    batches = list(reader)
    assert [b.num_rows for b in batches][:4] == [100, 50, 100, 50]
    check_same(pa.Table.from_batches(batches), expected(one))
    nested = make_table(n=500, seed=21, columns=NESTED + ["int64"])
    nested = nested.append_column("deep", deep(500)).append_column("map", maps(500))
    data = pa_bytes(nested, row_group_size=120, data_page_size=700)
    got = ptq.read_parquet_buffer(data, batch_size=77, threads=threads).read_all()
    same_values(got, pq.read_table(io.BytesIO(data)))
    path = tmp_path / "sorted.parquet"
    ids = pa.table({"id": pa.array(range(20000), pa.int64()), "x": pa.array([float(i) for i in range(20000)]),
                    "s": pa.array([f"v{i % 97}" for i in range(20000)])})
    pq.write_table(ids, path, row_group_size=4000, data_page_size=2048, write_page_index=True)
    filt = [("id", ">=", 9000), ("id", "<", 9500)]
    stats1: dict = {}
    want = ptq.read_parquet(path, filter=filt, stats=stats1).read_all()
    statsn: dict = {}
    got = ptq.read_parquet(path, filter=filt, stats=statsn, threads=threads).read_all()
    assert got.equals(want)
    assert statsn == stats1
    assert stats1["row_groups_skipped"] == 4 and stats1["pages_skipped"] > 0


def test_readahead(tmp_path: Path) -> None:
    """One thread reading the next row group ahead on a second gives what
    the calling thread alone gives: many row groups of flat columns with a
    codec each, nested columns, a filter's counts; and pyarrow's values."""
    table = make_table(n=3000, seed=9, columns=FLAT + NOT_NULL)
    codecs = ["zstd", "snappy", "gzip", "lz4", "brotli", "none"]
    data = pa_bytes(table, row_group_size=250, data_page_size=400,
                    compression={c: codecs[i % len(codecs)] for i, c in enumerate(table.column_names)})
    assert pq.ParquetFile(io.BytesIO(data)).metadata.num_row_groups == 12
    alone = ptq.read_parquet_buffer(data, batch_size=100, readahead=False).read_all()
    ahead = ptq.read_parquet_buffer(data, batch_size=100).read_all()
    assert ahead.equals(alone)
    check_same(ahead, expected(data))
    nested = make_table(n=700, seed=4, columns=NESTED + ["int64"])
    data = pa_bytes(nested, row_group_size=100, compression="zstd", data_page_version="2.0")
    assert ptq.read_parquet_buffer(data).read_all().equals(
        ptq.read_parquet_buffer(data, readahead=False).read_all())
    path = tmp_path / "sorted.parquet"
    ids = pa.table({"id": pa.array(range(20000), pa.int64()), "s": pa.array([f"v{i % 31}" for i in range(20000)])})
    pq.write_table(ids, path, row_group_size=2000, data_page_size=1024, write_page_index=True)
    filt = [[("id", "<", 2500)], [("id", ">=", 15100), ("id", "<", 15200)]]
    s1: dict = {}
    s2: dict = {}
    want = ptq.read_parquet(path, filter=filt, stats=s1, readahead=False).read_all()
    got = ptq.read_parquet(path, filter=filt, stats=s2).read_all()
    assert got.equals(want)
    assert s1 == s2 and s1["row_groups_read"] == 3 and s1["pages_skipped"] > 0


def test_threads_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    for bad in (-1, 17):
        with pytest.raises(ProtiumError) as e:
            ptq.read_parquet(path, threads=bad)
        assert e.value.code == PT_EINVAL
        assert str(e.value) == f"parquet: {path}: threads must be between 1 and 16 (got {bad})"
