"""Parquet files written by libprotium (pt_parquet_writer_*), read back by
pyarrow, DuckDB and protium itself, and compared with the source batches.

The matrix: every flat type x nullable or not x codec x data page version x
dictionary on/off, with several row groups and pages. Then statistics (signed and unsigned
order, strings, decimals, floats with NaN and signed zeros), dictionary
fallback to PLAIN, size options, and what the writer refuses.
"""

from __future__ import annotations

import io
import math
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import protium.parquet as ptq
from protium import ProtiumError
from protium._lib import PT_EINVAL, PT_ENOTSUP
from conftest import make_table
from test_parquet_read import (FLAT, NESTED, NOT_NULL, check_same, deep, newer_types_table,
                               with_required)

CODECS = ["none", "snappy", "gzip", "zstd", "lz4_raw", "brotli"]


def as_stored(table: pa.Table) -> pa.Table:
    """The table as Parquet gives it back: timestamp[s] has no Parquet unit
    and comes back in milliseconds (pyarrow's own files do the same)."""
    fields = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type) and f.type.unit == "s":
            f = f.with_type(pa.timestamp("ms", f.type.tz))
        fields.append(f)
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("dictionary", [True, False])
def test_matrix(tmp_path: Path, codec: str, version: int, dictionary: bool) -> None:
    table = with_required(make_table(n=600, seed=7, columns=FLAT + NOT_NULL))
    table = pa.Table.from_batches(table.to_batches(max_chunksize=170), table.schema)
    path = tmp_path / "t.parquet"
    ptq.write_parquet(
        table, path, codec=codec, data_page_version=version, use_dictionary=dictionary,
        row_group_rows=250, page_bytes=400,
    )
    md = pq.ParquetFile(path).metadata
    assert md.num_row_groups == 3
    assert md.row_group(0).total_byte_size > 0
    required = [c for c in pq.ParquetFile(path).schema if c.path.endswith("_required")]
    assert len(required) == len(FLAT) - 1  # all but the null type
    assert all(c.max_definition_level == 0 for c in required)
    names = {"none": "UNCOMPRESSED", "lz4_raw": "LZ4"}  # pyarrow's name of LZ4_RAW
    assert md.row_group(0).column(0).compression == names.get(codec, codec.upper())
    want = as_stored(table)
    check_same(pq.read_table(path), want)
    check_same(ptq.read_parquet(path).read_all(), want)


def test_duckdb_reads_it(tmp_path: Path) -> None:
    cols = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
            "float32", "float64", "utf8", "date32", "decimal128_5_2", "decimal128_38_10",
            "int64_not_null", "utf8_not_null"]
    table = make_table(n=500, seed=3, columns=cols)
    for version in (1, 2):
        path = tmp_path / f"d{version}.parquet"
        ptq.write_parquet(table, path, data_page_version=version, row_group_rows=200)
        rows = duckdb.sql(f"SELECT * FROM read_parquet('{path}')").fetchall()
        assert len(rows) == table.num_rows
        for k, name in enumerate(cols):
            want = table.column(name).to_pylist()
            got = [r[k] for r in rows]
            if name.startswith("float32"):
                want = [None if w is None else float(pa.scalar(w, pa.float32()).as_py()) for w in want]
            assert got == want, name


def stats(path: Path, name: str):
    md = pq.ParquetFile(path).metadata
    idx = md.schema.names.index(name)
    return md.row_group(0).column(idx).statistics


def test_statistics(tmp_path: Path) -> None:
    table = pa.table({
        "i": pa.array([5, -3, None, 12], pa.int64()),
        "u": pa.array([1, 2**63 + 5, None, 7], pa.uint64()),
        "u32": pa.array([1, 2**31 + 5, 3, None], pa.uint32()),
        "s": pa.array(["pear", "apple", None, "\u00e9clair"]),
        "f": pa.array([1.5, float("nan"), -0.0, None]),
        "z": pa.array([0.0, 2.0, -0.0, 1.0]),
        "d": pa.array([Decimal("-1.25"), Decimal("3.50"), None, Decimal("-7.00")], pa.decimal128(5, 2)),
        "b": pa.array([True, True, None, True]),
    })
    path = tmp_path / "s.parquet"
    ptq.write_parquet(table, path)
    assert (stats(path, "i").min, stats(path, "i").max, stats(path, "i").null_count) == (-3, 12, 1)
    assert (stats(path, "u").min, stats(path, "u").max) == (1, 2**63 + 5)
    assert (stats(path, "u32").min, stats(path, "u32").max) == (1, 2**31 + 5)
    assert (stats(path, "s").min, stats(path, "s").max) == ("apple", "\u00e9clair")
    f = stats(path, "f")
    assert (f.min, f.max, f.null_count) == (-0.0, 1.5, 1)
    assert math.copysign(1, f.min) == -1
    z = stats(path, "z")
    assert (z.min, z.max) == (0.0, 2.0) and math.copysign(1, z.min) == -1
    assert (stats(path, "d").min, stats(path, "d").max) == (Decimal("-7.00"), Decimal("3.50"))
    assert (stats(path, "b").min, stats(path, "b").max) == (True, True)
    # Readers prune with them: a filter that no row group can match reads nothing.
    assert pq.read_table(path, filters=[("i", ">", 100)]).num_rows == 0


def test_dictionary_fallback_and_sizes(tmp_path: Path) -> None:
    n = 5000
    table = pa.table({
        "hi": pa.array([f"value-{i:06d}" for i in range(n)]),
        "lo": pa.array([f"k{i % 10}" for i in range(n)]),
    })
    path = tmp_path / "f.parquet"
    ptq.write_parquet(table, path, dictionary_page_bytes=4096, row_group_rows=2000, page_bytes=2048)
    md = pq.ParquetFile(path).metadata
    assert md.num_row_groups == 3
    hi = md.row_group(0).column(0)
    lo = md.row_group(0).column(1)
    assert "RLE_DICTIONARY" in hi.encodings and "PLAIN" in hi.encodings
    assert hi.has_dictionary_page
    assert lo.has_dictionary_page and lo.total_compressed_size < hi.total_compressed_size
    check_same(pq.read_table(path), table)
    check_same(ptq.read_parquet(path).read_all(), table)
    # Pages: 2000 rows of ~16-byte strings in pages of 2 KiB.
    assert ptq.read_parquet(path, batch_size=999).read_all().num_rows == n


def test_empty_and_sliced_input(tmp_path: Path) -> None:
    schema = pa.schema([("a", pa.int32()), ("s", pa.utf8())])
    data = ptq.write_parquet_buffer(schema.empty_table())
    t = pq.read_table(io.BytesIO(data))
    assert t.num_rows == 0 and t.schema.names == ["a", "s"]
    full = pa.table({"a": pa.array(range(100), pa.int32()), "s": [str(i) for i in range(100)]})
    sliced = full.slice(37, 21)
    data = ptq.write_parquet_buffer(sliced)
    check_same(pq.read_table(io.BytesIO(data)), sliced.combine_chunks())


def test_newer_arrow_types(tmp_path: Path) -> None:
    # pyarrow reads what protium writes as it reads its own writing of the
    # same table, and the Parquet types are the ones pyarrow chooses.
    table = newer_types_table()
    for dictionary in (False, True):
        ours = ptq.write_parquet_buffer(table, use_dictionary=dictionary)
        theirs = io.BytesIO()
        pq.write_table(table, theirs, use_dictionary=dictionary)
        check_same(pq.read_table(io.BytesIO(ours)), pq.read_table(io.BytesIO(theirs.getvalue())))
        ps, ts = pq.ParquetFile(io.BytesIO(ours)).schema, pq.ParquetFile(theirs).schema
        for i, name in enumerate(table.schema.names):
            assert str(ps.column(i).logical_type) == str(ts.column(i).logical_type), name
            assert ps.column(i).converted_type == ts.column(i).converted_type, name
            assert ps.column(i).physical_type == ts.column(i).physical_type, name


def test_refused(tmp_path: Path) -> None:
    unions = pa.table({"u": pa.UnionArray.from_sparse(pa.array([0], pa.int8()), [pa.array([1])])})
    with pytest.raises(ProtiumError) as e:
        ptq.write_parquet_buffer(unions)
    assert e.value.code == PT_ENOTSUP
    assert str(e.value) == ("column 'u': Parquet has no union type; write each member as a "
                            "column of its own (or a struct of them) instead")
    with pytest.raises(ProtiumError) as e:
        ptq.write_parquet_buffer(pa.table({"a": [1]}), codec="lzo")
    assert e.value.code == PT_EINVAL
    not_null = pa.schema([pa.field("a", pa.int32(), nullable=False)])
    bad = pa.RecordBatch.from_arrays([pa.array([1, None], pa.int32())], schema=not_null)
    with pytest.raises(ProtiumError) as e:
        ptq.write_parquet_buffer(bad)
    assert str(e.value) == (
        "column 'a' is not nullable but row 1 is null; mark the field nullable"
    )


@pytest.mark.parametrize("codec", ["none", "snappy", "zstd"])
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("dictionary", [True, False])
def test_nested_matrix(tmp_path: Path, codec: str, version: int, dictionary: bool) -> None:
    """Lists (to depth 3), structs, lists of structs, fixed-size lists, with
    nulls at every level: pyarrow and protium read them back identical."""
    table = make_table(n=400, seed=13, columns=NESTED + ["int64"]).append_column("deep", deep(400))
    table = with_required(table)  # required top-level lists and structs too
    path = tmp_path / "n.parquet"
    ptq.write_parquet(table, path, codec=codec, data_page_version=version,
                      use_dictionary=dictionary, row_group_rows=150, page_bytes=300)
    got = pq.read_table(path)
    assert got.schema == table.schema
    assert got.equals(table)
    back = ptq.read_parquet(path).read_all()
    for name in table.schema.names:
        assert back.column(name).to_pylist() == table.column(name).to_pylist(), name


@pytest.mark.parametrize("codec", ["none", "snappy"])
def test_threads_same_file(codec: str) -> None:
    """Columns encoded on several threads (flat ones shared out, a nested
    one's leaves split): the file is the same bytes as on one thread, and
    pyarrow reads it back identical to the source."""
    table = make_table(n=4000, seed=5, columns=FLAT + NESTED, batch_rows=1500)
    table = table.append_column("deep", deep(4000))
    kw = dict(codec=codec, row_group_rows=2500, page_bytes=2000)
    one = ptq.write_parquet_buffer(table, threads=1, **kw)
    for threads in (2, 3, 16):
        assert ptq.write_parquet_buffer(table, threads=threads, **kw) == one, threads
    got = pq.read_table(io.BytesIO(one))
    assert got.equals(as_stored(table))
    with pytest.raises(ProtiumError) as e:
        ptq.write_parquet_buffer(table, threads=17)
    assert e.value.code == PT_EINVAL
    assert "threads must be between 1 and 16 (got 17)" in str(e.value)


def test_maps(tmp_path: Path) -> None:
    """Arrow maps as MAP (a repeated key_value group), nested in lists and
    with lists as values: pyarrow, DuckDB and protium read them back."""
    table = pa.table({
        "m": pa.array([[("a", 1), ("b", None)], [], None, [("c", 3)]] * 50, pa.map_(pa.utf8(), pa.int32())),
        "lm": pa.array([[[("a", [1])]], None, [], [None, [("x", None)]]] * 50,
                       pa.list_(pa.map_(pa.utf8(), pa.list_(pa.int64())))),
    })
    path = tmp_path / "m.parquet"
    ptq.write_parquet(table, path, row_group_rows=70, page_bytes=100)
    text = str(pq.ParquetFile(path).schema)
    assert "optional group field_id=-1 m (Map)" in text
    assert "repeated group field_id=-1 key_value" in text
    assert pq.read_table(path).equals(table)
    assert ptq.read_parquet(path).read_all().equals(table)
    rows = duckdb.sql(f"select map_keys(m), map_values(m) from read_parquet('{path}')").fetchall()
    assert rows[:4] == [(["a", "b"], [1, None]), ([], []), (None, None), (["c"], [3])]


def test_duckdb_reads_nested(tmp_path: Path) -> None:
    table = make_table(n=200, seed=4, columns=["list_int32", "struct", "list_struct", "int64"])
    path = tmp_path / "n.parquet"
    ptq.write_parquet(table, path, data_page_version=2)
    rows = duckdb.sql(f"SELECT list_int32, struct, list_struct FROM read_parquet('{path}')").fetchall()
    assert [r[0] for r in rows] == table.column("list_int32").to_pylist()
    assert [r[1] for r in rows] == table.column("struct").to_pylist()
    assert [r[2] for r in rows] == table.column("list_struct").to_pylist()


@pytest.mark.parametrize("store", [True, False])
def test_key_value_metadata(tmp_path: Path, store: bool) -> None:
    """The schema's metadata and the extra pairs land in the footer's
    key_value_metadata, where Spark and DuckDB look, with or without
    ARROW:schema; protium and pyarrow read them back as schema metadata."""
    table = pa.table({"a": [1, 2, None]}).replace_schema_metadata({"owner": "ml", "k": "v"})
    path = tmp_path / "m.parquet"
    ptq.write_parquet(table, path, store_arrow_schema=store,
                      metadata={"extra": "x", "k": "over", b"raw": b"\x01bytes"})
    footer = pq.read_metadata(path).metadata
    want = {b"owner": b"ml", b"k": b"over", b"extra": b"x", b"raw": b"\x01bytes"}
    assert {k: v for k, v in footer.items() if k != b"ARROW:schema"} == want
    assert (b"ARROW:schema" in footer) == store
    assert ptq.read_parquet(path).read_all().schema.metadata == want
    assert pq.read_table(path).schema.metadata == want
    duck = duckdb.sql(f"SELECT key, value FROM parquet_kv_metadata('{path}')").fetchall()
    assert {bytes(k): bytes(v) for k, v in duck if bytes(k) != b"ARROW:schema"} == want
    assert pq.read_table(path).column("a").to_pylist() == [1, 2, None]
    # Without extra pairs the schema's own metadata is the footer's too.
    ptq.write_parquet(table, path, store_arrow_schema=store)
    footer = pq.read_metadata(path).metadata
    assert {k: v for k, v in footer.items() if k != b"ARROW:schema"} == {b"owner": b"ml", b"k": b"v"}
    with pytest.raises(ProtiumError) as e:
        ptq.write_parquet(table, path, metadata={"ARROW:schema": "x"})
    assert e.value.code == PT_EINVAL


@pytest.mark.parametrize("store", [True, False])
def test_uuid_and_json_logical_types(tmp_path: Path, store: bool) -> None:
    """arrow.uuid and arrow.json columns are written with Parquet's UUID and
    JSON logical types (as pyarrow writes them) and read back, by protium
    and pyarrow, as the same extension types; pyarrow's files likewise."""
    uuids = [bytes(range(i, i + 16)) for i in range(5)]
    docs = ['{"a": 1}', None, "[1, 2]", '"s"', "null"]
    table = pa.table({
        "u": pa.array([uuids[0], None, uuids[2], uuids[3], uuids[4]], pa.uuid()),
        "j": pa.array(docs, pa.json_()),
        "lu": pa.ListArray.from_arrays(
            pa.array([0, 1, 1, 1, 3, 4], pa.int32()),
            pa.ExtensionArray.from_storage(
                pa.uuid(), pa.array([uuids[1], uuids[0], None, uuids[4]], pa.binary(16))),
            mask=pa.array([False, False, True, False, False])),
        "plain": pa.array(uuids, pa.binary(16)),
        "s": pa.array(docs),
    })
    ours = tmp_path / "ours.parquet"
    ptq.write_parquet(table, ours, store_arrow_schema=store)
    leaves = {c.path: c for c in pq.ParquetFile(ours).schema}
    assert str(leaves["u"].logical_type) == "UUID"
    assert str(leaves["j"].logical_type) == "JSON"
    assert str(leaves["lu.list.element"].logical_type) == "UUID"
    assert str(leaves["plain"].logical_type) == "None"
    assert str(leaves["s"].logical_type) == "String"
    for back in (pq.read_table(ours), ptq.read_parquet(ours).read_all()):
        assert back.schema == table.schema
        assert back.equals(table)
    theirs = tmp_path / "theirs.parquet"
    pq.write_table(table, theirs, store_schema=store)
    back = ptq.read_parquet(theirs).read_all()
    assert back.schema == table.schema
    assert back.equals(table)


def test_decimal256_statistics(tmp_path: Path) -> None:
    """decimal256 (and decimal128 for comparison) min/max are compared as
    signed numbers, per row group, as pyarrow decodes them."""
    big = Decimal("1" + "0" * 60 + ".25")
    values = [Decimal("-3.50"), big, None, -big, Decimal("0.00"), Decimal("7.75"),
              Decimal("-0.01"), None, Decimal("2.00")]
    table = pa.table({
        "d256": pa.array(values, pa.decimal256(70, 2)),
        "d256s": pa.array([None if v is None or abs(v) > 10 else v for v in values],
                          pa.decimal256(40, 2)),
        "d128": pa.array([None if v is None or abs(v) > 10 else v for v in values],
                         pa.decimal128(9, 2)),
    })
    path = tmp_path / "d.parquet"
    ptq.write_parquet(table, path, row_group_rows=4)
    md = pq.ParquetFile(path).metadata
    assert md.num_row_groups == 3
    for g in range(md.num_row_groups):
        for j, name in enumerate(table.column_names):
            chunk = [v for v in table.column(name).to_pylist()[4 * g:4 * g + 4]]
            present = [v for v in chunk if v is not None]
            st = md.row_group(g).column(j).statistics
            assert st.null_count == len(chunk) - len(present), (g, name)
            assert (st.min, st.max) == (min(present), max(present)), (g, name)
    assert pq.read_table(path, filters=[("d256", ">", big)]).num_rows == 0
