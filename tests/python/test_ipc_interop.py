"""Arrow IPC interoperability of libprotium with pyarrow, both ways.

pyarrow writes streams and files (uncompressed, LZ4, ZSTD) of every type
protium supports, with nulls at every level, sliced batches, empty batches,
zero-batch streams, dictionary deltas and replacements; protium reads them and
must give back the same values, schema (nullability, metadata) and batch
boundaries. Then protium writes the same data from pyarrow objects handed over
through the C Data Interface and pyarrow reads it. Corrupt and truncated input
must raise ProtiumError, never crash: those loops run in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterable, Optional, Union

import pyarrow as pa
import pytest

import protium
import protium.arrow as pta
from protium._lib import PT_EFORMAT
import ipc_delta_streams
from conftest import ROOT, make_table

FORMATS = ["stream", "file"]
COMPRESSIONS = [None, "lz4", "zstd"]

# --------------------------------------------------------------------------
# Helpers


def pa_write(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    fmt: str,
    compression: Optional[str],
    deltas: bool = False,
) -> bytes:
    """pyarrow's IPC bytes of the batches."""
    options = pa.ipc.IpcWriteOptions(compression=compression, emit_dictionary_deltas=deltas)
    sink = pa.BufferOutputStream()
    new = pa.ipc.new_stream if fmt == "stream" else pa.ipc.new_file
    with new(sink, schema, options=options) as writer:
        for b in batches:
            writer.write_batch(b)
    return sink.getvalue().to_pybytes()


def pa_open(source: Union[bytes, Path], fmt: str):
    """A pyarrow reader (stream) or file reader over bytes or a path."""
    if isinstance(source, Path):
        source = source.read_bytes()
    return pa.ipc.open_stream(source) if fmt == "stream" else pa.ipc.open_file(source)


def pa_read(source: Union[bytes, Path], fmt: str) -> pa.Table:
    return pa_open(source, fmt).read_all()


def assert_same(actual: pa.Table, expected: pa.Table) -> None:
    """Equal schemas (types, nullability, metadata) and equal values."""
    assert actual.schema.equals(expected.schema, check_metadata=True), (
        f"schema differs:\n{actual.schema}\n--- expected ---\n{expected.schema}"
    )
    actual.validate(full=True)
    if not actual.equals(expected, check_metadata=True):
        for name in expected.column_names:
            a, e = actual.column(name), expected.column(name)
            assert a.equals(e), f"column {name} differs:\n{a}\n--- expected ---\n{e}"
        pytest.fail("tables differ")


def decoded(table: pa.Table) -> pa.Table:
    """The table with dictionary columns decoded to their value type, to
    compare values where dictionaries may legitimately differ."""
    columns = [
        c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns
    ]
    fields = [
        f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f
        for f in table.schema
    ]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=table.schema.metadata))


def protium_read(data: bytes, how: str, tmp_path: Path) -> tuple[pa.Table, list[int]]:
    """protium's reading of IPC bytes, from a file (how="path") or from
    memory (how="buffer"): the table and the rows of each batch."""
    if how == "path":
        path = tmp_path / "in.arrow"
        path.write_bytes(data)
        reader = pta.read_ipc(path)
    else:
        reader = pta.read_ipc_buffer(data)
    batches = list(reader)
    return pa.Table.from_batches(batches, reader.schema), [b.num_rows for b in batches]


def sliced_batches(table: pa.Table) -> list[pa.RecordBatch]:
    """Three batches of a one-chunk table of >= 120 rows: a slice at an odd
    offset, an empty one, and the rest (also at an odd offset)."""
    (batch,) = table.to_batches()
    return [batch.slice(7, 100), batch.slice(0, 0), batch.slice(107)]


# --------------------------------------------------------------------------
# pyarrow writes, protium reads


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_pyarrow_writes_protium_reads_each_type(arrow_column, fmt, compression, tmp_path):
    table = make_table(300, columns=[arrow_column])
    batches = sliced_batches(table)
    expected = pa.Table.from_batches(batches, table.schema)
    data = pa_write(batches, table.schema, fmt, compression)
    assert_same(pa_read(data, fmt), expected)  # the reference reads it right
    for how in ("path", "buffer"):
        got, rows = protium_read(data, how, tmp_path)
        assert_same(got, expected)
        assert rows == [b.num_rows for b in batches]


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_pyarrow_writes_protium_reads_all_types(fmt, compression, tmp_path):
    table = make_table(1000, seed=1, batch_rows=333).slice(5, 901)  # odd offsets
    data = pa_write(table.to_batches(), table.schema, fmt, compression)
    for how in ("path", "buffer"):
        got, rows = protium_read(data, how, tmp_path)
        assert_same(got, table)
        assert rows == [b.num_rows for b in table.to_batches()]


@pytest.mark.parametrize("fmt", FORMATS)
def test_protium_reads_zero_batches(fmt, tmp_path):
    table = make_table(10)
    data = pa_write([], table.schema, fmt, None)
    for how in ("path", "buffer"):
        got, rows = protium_read(data, how, tmp_path)
        assert rows == []
        assert_same(got, table.slice(0, 0))


@pytest.mark.parametrize("fmt", FORMATS)
def test_protium_reads_only_empty_batches(fmt, tmp_path):
    table = make_table(10)
    empty = table.to_batches()[0].slice(0, 0)
    data = pa_write([empty, empty, empty], table.schema, fmt, "zstd")
    got, rows = protium_read(data, "buffer", tmp_path)
    assert rows == [0, 0, 0]
    assert_same(got, table.slice(0, 0))


def test_protium_reads_many_batches(tmp_path):
    table = make_table(2000, seed=2, batch_rows=17)
    data = pa_write(table.to_batches(), table.schema, "stream", "lz4")
    got, rows = protium_read(data, "path", tmp_path)
    assert len(rows) == len(table.to_batches())
    assert_same(got, table)


def test_protium_reads_an_empty_table_without_columns(tmp_path):
    schema = pa.schema([], metadata={"k": "v"})
    batch = pa.RecordBatch.from_arrays([], schema=schema)
    for fmt in FORMATS:
        got, rows = protium_read(pa_write([batch], schema, fmt, None), "buffer", tmp_path)
        assert got.schema.equals(schema, check_metadata=True)
        assert rows == [0]
        back = pa_read(pta.write_ipc_buffer(batch, fmt, "zstd"), fmt)
        assert back.schema.equals(schema, check_metadata=True) and back.num_rows == 0


# Dictionaries that change from batch to batch.


def dictionary_batches(kind: str, index: pa.DataType = pa.int16()) -> list[pa.RecordBatch]:
    """Batches whose column "d" has a dictionary that grows (kind "delta": each
    batch's dictionary extends the previous one) or is replaced (kind
    "replace"), beside a column "s" whose dictionary stays the same and a
    plain column "x"."""
    if kind == "delta":
        dicts = [["a", "b"], ["a", "b"], ["a", "b", "c", "d"], ["a", "b", "c", "d", "e"]]
    else:
        dicts = [["a", "b"], ["x", "y", "z"], ["x", "y", "z", "w"], ["p"]]
    fixed = pa.array(["one", "two", None])
    batches = []
    for i, words in enumerate(dicts):
        n = 6 + i
        idx = pa.array([None if j % 4 == 3 else (j * 7 + i) % len(words) for j in range(n)], index)
        d = pa.DictionaryArray.from_arrays(idx, pa.array(words))
        s = pa.DictionaryArray.from_arrays(pa.array([j % 3 for j in range(n)], pa.int8()), fixed)
        x = pa.array(list(range(n)), pa.int64())
        batches.append(pa.record_batch([d, s, x], names=["d", "s", "x"]))
    return batches


@pytest.mark.parametrize("index", [pa.int8(), pa.int16(), pa.int32(), pa.int64()])
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_protium_reads_dictionary_deltas(index, compression, tmp_path):
    batches = dictionary_batches("delta", index)
    expected = pa.Table.from_batches(batches)
    data = pa_write(batches, batches[0].schema, "stream", compression, deltas=True)
    reference = pa_open(data, "stream")
    reference.read_all()
    assert reference.stats.num_dictionary_deltas > 0  # the input has deltas
    for how in ("path", "buffer"):
        got, rows = protium_read(data, how, tmp_path)
        assert_same(got, expected)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_protium_reads_dictionary_replacements(compression, tmp_path):
    batches = dictionary_batches("replace")
    expected = pa.Table.from_batches(batches)
    data = pa_write(batches, batches[0].schema, "stream", compression, deltas=True)
    reference = pa_open(data, "stream")
    reference.read_all()
    assert reference.stats.num_replaced_dictionaries > 0
    got, _ = protium_read(data, "buffer", tmp_path)
    assert_same(got, expected)


def test_protium_reads_dictionary_deltas_in_a_file(tmp_path):
    # The file format lists every dictionary batch up front: readers give all
    # batches the final dictionary. Values must match; so must pyarrow's view.
    batches = dictionary_batches("delta")
    data = pa_write(batches, batches[0].schema, "file", None, deltas=True)
    got, _ = protium_read(data, "path", tmp_path)
    assert_same(decoded(got), decoded(pa.Table.from_batches(batches)))
    assert_same(got, pa_read(data, "file"))


def test_protium_reads_nested_dictionaries(tmp_path):
    words = pa.array(["u", "v", "w"])
    values = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, None, 1], pa.int32()), words)
    lists = pa.ListArray.from_arrays(pa.array([0, 2, 2, 5], pa.int32()), values)
    struct = pa.StructArray.from_arrays([values], names=["d"])
    table = pa.table({"l": lists, "s": struct.slice(1, 3)})
    for fmt in FORMATS:
        for compression in COMPRESSIONS:
            data = pa_write(table.to_batches(), table.schema, fmt, compression)
            got, _ = protium_read(data, "buffer", tmp_path)
            assert_same(got, table)


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_embeddings_round_trip(compression, tmp_path):
    """Embedding-like tensors, fixed_size_list<float32, 768>, both ways."""
    import numpy as np

    values = np.random.default_rng(0).standard_normal(3000 * 768).astype(np.float32)
    emb = pa.FixedSizeListArray.from_arrays(pa.array(values), 768)
    table = pa.table({"id": pa.array(range(3000), pa.int64()), "emb": emb})
    table = pa.Table.from_batches(table.to_batches(max_chunksize=1000)).slice(1, 2998)
    for fmt in FORMATS:
        data = pa_write(table.to_batches(), table.schema, fmt, compression)
        got, _ = protium_read(data, "path", tmp_path)
        assert_same(got, table)
        assert_same(pa_read(pta.write_ipc_buffer(table, fmt, compression), fmt), table)


def test_read_ipc_from_a_pipe(tmp_path):
    """A path that is not a regular file is read as a stream, not mapped."""
    import os
    import threading

    table = make_table(500, seed=8, batch_rows=100)
    data = pa_write(table.to_batches(), table.schema, "stream", "lz4")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        got = pta.read_ipc(fifo).read_all()
    finally:
        writer.join(timeout=60)
    assert_same(got, table)


# --------------------------------------------------------------------------
# protium writes, pyarrow reads


def protium_outputs(data, fmt: str, compression: Optional[str], tmp_path: Path, **kw) -> dict:
    """protium's IPC bytes of data: written to a file and to memory."""
    path = tmp_path / f"out.{fmt}.arrow"
    pta.write_ipc(data, path, fmt, compression, **kw)
    return {"path": path.read_bytes(), "buffer": pta.write_ipc_buffer(data, fmt, compression, **kw)}


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_protium_writes_pyarrow_reads_each_type(arrow_column, fmt, compression, tmp_path):
    table = make_table(300, columns=[arrow_column])
    batches = sliced_batches(table)
    expected = pa.Table.from_batches(batches, table.schema)
    for how, data in protium_outputs(expected, fmt, compression, tmp_path).items():
        reader = pa_open(data, fmt)
        n = reader.num_record_batches if fmt == "file" else None
        got = reader.read_all()
        assert_same(got, expected)
        if n is not None:
            assert n == len(batches)
        assert [len(c) for c in got.column(0).chunks] == [len(c) for c in expected.column(0).chunks]


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_protium_writes_pyarrow_reads_all_types(fmt, compression, tmp_path):
    table = make_table(1000, seed=3, batch_rows=333).slice(5, 901)
    for kind in ("table", "batch", "reader"):
        if kind == "table":
            data, expected = table, table
        elif kind == "batch":
            data = table.to_batches()[1].slice(3, 101)
            expected = pa.Table.from_batches([data])
        else:
            data, expected = pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), table
        path = tmp_path / f"{kind}.arrow"
        pta.write_ipc(data, path, fmt, compression)
        assert_same(pa_read(path, fmt), expected)


@pytest.mark.parametrize("fmt", FORMATS)
def test_protium_writes_zero_batches(fmt, tmp_path):
    table = make_table(10)
    empty = pa.Table.from_batches([], table.schema)
    assert empty.to_batches() == []
    for data in (empty, pa.RecordBatchReader.from_batches(table.schema, [])):
        got = pa_read(pta.write_ipc_buffer(data, fmt), fmt)
        assert got.num_rows == 0
        assert got.schema.equals(table.schema, check_metadata=True)


def test_protium_compresses(tmp_path):
    table = make_table(5000, seed=4, columns=["int64_not_null", "dict_int32_utf8", "list_int32"])
    plain = pta.write_ipc_buffer(table)
    for compression in ("lz4", "zstd"):
        packed = pta.write_ipc_buffer(table, compression=compression)
        assert len(packed) < len(plain) * 0.8, (compression, len(packed), len(plain))
        assert_same(pa_read(packed, "stream"), table)


@pytest.mark.parametrize("compression", [None, "zstd"])
def test_protium_writes_dictionary_deltas(compression):
    batches = dictionary_batches("delta")
    expected = pa.Table.from_batches(batches)
    for deltas in (True, False):
        data = pta.write_ipc_buffer(expected, "stream", compression, emit_dictionary_deltas=deltas)
        reader = pa_open(data, "stream")
        assert_same(reader.read_all(), expected)
        if deltas:
            assert reader.stats.num_dictionary_deltas == 2
            assert reader.stats.num_replaced_dictionaries == 0
        else:
            assert reader.stats.num_dictionary_deltas == 0
            assert reader.stats.num_replaced_dictionaries == 2
        # The unchanging dictionary of "s" and the first dictionary of "d".
        assert reader.stats.num_dictionary_batches == 2 + 2


def test_protium_writes_dictionary_replacements():
    batches = dictionary_batches("replace")
    expected = pa.Table.from_batches(batches)
    reader = pa_open(pta.write_ipc_buffer(expected, "stream"), "stream")
    assert_same(reader.read_all(), expected)
    assert reader.stats.num_replaced_dictionaries >= 2


def test_protium_writes_dictionary_deltas_to_a_file():
    batches = dictionary_batches("delta")
    expected = pa.Table.from_batches(batches)
    got = pa_read(pta.write_ipc_buffer(expected, "file"), "file")
    assert_same(decoded(got), decoded(expected))


def test_protium_refuses_dictionary_replacements_in_a_file(tmp_path):
    batches = dictionary_batches("replace")
    with pytest.raises(protium.ProtiumError) as e:
        pta.write_ipc_buffer(pa.Table.from_batches(batches), "file")
    assert e.value.code != 0 and "dictionar" in e.value.message


def test_protium_writes_nested_dictionaries():
    words = pa.array(["u", "v", "w"])
    values = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, None, 1], pa.int32()), words)
    lists = pa.ListArray.from_arrays(pa.array([0, 2, 2, 5], pa.int32()), values)
    table = pa.table({"l": lists})
    for fmt in FORMATS:
        assert_same(pa_read(pta.write_ipc_buffer(table, fmt, "lz4"), fmt), table)


def test_write_options_are_checked():
    table = make_table(3, columns=["int32"])
    with pytest.raises(protium.ProtiumError):
        pta.write_ipc_buffer(table, "feather")
    with pytest.raises(protium.ProtiumError):
        pta.write_ipc_buffer(table, compression="snappy")
    with pytest.raises(TypeError):
        pta.write_ipc_buffer([1, 2, 3])


@pytest.mark.parametrize("kind", ["sparse_union", "string_view", "list_view", "ree"])
def test_protium_reads_dictionary_deltas_of_newer_types(kind, tmp_path):
    """pyarrow writes deltas of dictionaries whose values are unions, views,
    list views or run-end encoded: protium joins them."""
    def values(n: int) -> pa.Array:
        if kind == "sparse_union":
            return pa.UnionArray.from_sparse(
                pa.array([k % 2 for k in range(n)], pa.int8()),
                [pa.array(range(n)), pa.array([f"w{k}" for k in range(n)])])
        if kind == "string_view":
            return pa.array([f"a word longer than twelve {k}" for k in range(n)], pa.string_view())
        if kind == "list_view":
            return pa.ListViewArray.from_arrays(
                pa.array([0] * n, pa.int32()), pa.array([k % 3 for k in range(n)], pa.int32()),
                pa.array([7, 8, 9]))
        return pa.RunEndEncodedArray.from_arrays(pa.array(range(1, n + 1), pa.int32()),
                                                 pa.array(range(n)))

    batches = [
        pa.record_batch(
            [pa.DictionaryArray.from_arrays(pa.array([0, n - 1, None], pa.int8()), values(n))],
            ["d"])
        for n in (2, 3, 5)
    ]
    data = pa_write(batches, batches[0].schema, "stream", None, deltas=True)
    reader = pa.ipc.open_stream(data)
    reader.read_all()
    assert reader.stats.num_dictionary_deltas == 2
    got, rows = protium_read(data, "buffer", tmp_path)
    assert rows == [3, 3, 3]
    assert got.column("d").to_pylist() == pa.Table.from_batches(batches).column("d").to_pylist()


@pytest.mark.parametrize("container", ipc_delta_streams.CONTAINERS)
@pytest.mark.parametrize("kind", ipc_delta_streams.KINDS)
def test_protium_reads_dictionary_deltas_joining_parts(kind, container, tmp_path):
    """A delta whose dictionary values are lists of unions, views, list
    views or run-end encoded arrays, with list offsets that do not start at
    0 nor end at the child's end: the reader joins a range of each part's
    child. pyarrow's reading of the same bytes is the reference."""
    data = ipc_delta_streams.stream(kind, container)
    reader = pa.ipc.open_stream(data)
    expected = reader.read_all()
    assert reader.stats.num_dictionary_deltas == 1
    expected.validate(full=True)
    for how in ("path", "buffer"):
        got, rows = protium_read(data, how, tmp_path)
        assert rows == [3, 4]
        got.validate(full=True)
        assert got.schema.equals(expected.schema)
        assert got.column("d").to_pylist() == expected.column("d").to_pylist()
        # The joined dictionary, value by value, against pyarrow's.
        assert (got.column("d").chunk(1).dictionary.to_pylist()
                == expected.column("d").chunk(1).dictionary.to_pylist())
        assert len(got.column("d").chunk(1).dictionary) == 3


@pytest.mark.parametrize("container", ["list", "large_list"])
def test_protium_reads_nested_dictionary_deltas_joining_parts(container, tmp_path):
    """The same with a dictionary inside the union: protium's writer sends
    the outer dictionary's growth as a delta (pyarrow sends a replacement,
    and cannot read such a delta: "unresolved nested dictionary"). The
    joined values must use the inner dictionary."""
    batches = ipc_delta_streams.batches("union_dict", container)
    table = pa.Table.from_batches(batches)
    written = pta.write_ipc_buffer(table, "stream", None, emit_dictionary_deltas=True)
    data = ipc_delta_streams.patch_offsets(written, container)
    first, joined = ipc_delta_streams.expected_dictionaries("union_dict", container)
    got, rows = protium_read(data, "buffer", tmp_path)
    assert rows == [3, 4]
    got.validate(full=True)
    d = got.column("d")
    assert d.chunk(0).dictionary.to_pylist() == first
    assert d.chunk(1).dictionary.to_pylist() == joined
    assert d.to_pylist() == [first[0], first[1], None, joined[2], joined[0], joined[1], joined[2]]


@pytest.mark.parametrize("kind,container", ipc_delta_streams.SEEDS)
def test_dictionary_delta_fuzz_seeds_read_like_pyarrow(kind, container):
    """The fuzz seeds made from these streams (python
    tests/python/ipc_delta_streams.py tests/fuzz/corpus/ipc) read as pyarrow
    reads them."""
    seed = ROOT / "tests" / "fuzz" / "corpus" / "ipc" / ipc_delta_streams.seed_name(kind, container)
    data = seed.read_bytes()
    expected = pa.ipc.open_stream(data).read_all()
    got = pta.read_ipc_buffer(data).read_all()
    assert got.column("d").to_pylist() == expected.column("d").to_pylist()


# --------------------------------------------------------------------------
# Round trips: protium reads what pyarrow wrote, writes it, pyarrow reads.


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_protium_rewrites_what_it_read(fmt, compression, tmp_path):
    table = make_table(700, seed=5, batch_rows=250).slice(3, 600)
    source = tmp_path / "source.arrow"
    source.write_bytes(pa_write(table.to_batches(), table.schema, fmt, compression))
    out_fmt = "file" if fmt == "stream" else "stream"
    out_compression = {None: "zstd", "lz4": None, "zstd": "lz4"}[compression]
    # Straight from reader to writer through the C Stream Interface ...
    target = tmp_path / "target.arrow"
    pta.write_ipc(pta.read_ipc(source), target, out_fmt, out_compression)
    assert_same(pa_read(target, out_fmt), table)
    # ... and through a table of protium's arrays (mapped from the file).
    held = pta.read_ipc(source).read_all()
    again = pta.write_ipc_buffer(held, fmt, compression)
    assert_same(pa_read(again, fmt), table)
    got, _ = protium_read(again, "buffer", tmp_path)
    assert_same(got, table)


def test_dictionary_deltas_survive_protium_round_trips(tmp_path):
    batches = dictionary_batches("delta", pa.int32())
    expected = pa.Table.from_batches(batches)
    data = pa_write(batches, batches[0].schema, "stream", "zstd", deltas=True)
    out = pta.write_ipc_buffer(pta.read_ipc_buffer(data), "stream", "lz4")
    reader = pa_open(out, "stream")
    assert_same(reader.read_all(), expected)
    assert reader.stats.num_dictionary_deltas == 2


# --------------------------------------------------------------------------
# Errors


def test_read_errors_raise_protium_error(tmp_path):
    with pytest.raises(protium.ProtiumError) as e:
        pta.read_ipc(tmp_path / "missing.arrow")
    assert e.value.code == 3 and "missing.arrow" in e.value.message  # PT_EIO
    for junk in (b"", b"ARROW1", b"not an arrow stream at all", b"\xff\xff\xff\xff" + b"\0" * 12):
        with pytest.raises(protium.ProtiumError) as e:
            pta.read_ipc_buffer(junk).read_all()
        assert e.value.code == 4, (junk, e.value)  # PT_EFORMAT
        assert e.value.message


def test_truncated_stream_error_comes_from_iteration():
    table = make_table(300, columns=["int64", "utf8"], batch_rows=100)
    data = pa_write(table.to_batches(), table.schema, "stream", None)
    reader = pta.read_ipc_buffer(data[: len(data) - 100])
    first = reader.read_next_batch()
    assert first.equals(table.to_batches()[0])
    with pytest.raises(protium.ProtiumError) as e:
        reader.read_all()
    assert e.value.code == 4 and e.value.message


def test_non_utf8_field_names_are_refused():
    """Names in the C Data Interface are UTF-8; a corrupt name must be refused
    by the reader rather than handed on (pyarrow then fails on .names)."""
    table = pa.table({"bool": [True], "s": pa.array([{"inner": 1}])})
    data = bytearray(pa_write(table.to_batches(), table.schema, "stream", None))
    for name in (b"bool", b"inner"):
        broken = bytearray(data)
        broken[broken.find(name) + 1] = 0xFF
        with pytest.raises(protium.ProtiumError) as e:
            pta.read_ipc_buffer(bytes(broken)).read_all()
        assert e.value.code == 4  # PT_EFORMAT


def test_batch_length_must_match_its_columns():
    """A record batch message whose length disagrees with its columns' field
    nodes is corrupt (pyarrow: "Array length did not match record batch
    length"); handing it on makes pyarrow build an invalid RecordBatch."""
    import struct

    table = pa.table({"x": pa.array(range(120), pa.int64())})
    data = pa_write(table.to_batches(), table.schema, "stream", None)
    needle = struct.pack("<q", 120)
    spots = [i for i in range(len(data)) if data.startswith(needle, i)]
    assert len(spots) == 2  # the batch's length, then the column's field node
    for spot, length in [(s, n) for s in spots for n in (87, 121)]:
        broken = bytearray(data)
        broken[spot : spot + 8] = struct.pack("<q", length)
        with pytest.raises((pa.ArrowException, OSError)):  # pyarrow refuses it
            pa.ipc.open_stream(bytes(broken)).read_all()
        with pytest.raises(protium.ProtiumError) as e:
            pta.read_ipc_buffer(bytes(broken)).read_all()
        assert e.value.code == 4, (spot, length, e.value)  # PT_EFORMAT


# Corrupt input: the loops run in a child process, so that a crash shows as a
# failed test with its signal instead of killing pytest.

CORRUPT_SCRIPT = r"""
import json, random, sys, tempfile, os
sys.path.insert(0, sys.argv[1])
fmt, compression, seed = sys.argv[2], (None if sys.argv[3] == "none" else sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, sys.argv[5])
import pyarrow as pa
import protium, protium.arrow as pta
from conftest import make_table

COLUMN_SETS = {
    "classic": ["bool", "int32", "utf8", "binary", "list_int32", "large_list_int64", "struct",
                "fixed_size_binary_3", "fixed_size_list_int16_3", "decimal128_5_2",
                "timestamp_us_utc", "dict_int16_utf8", "float64"],
    # The types of the columnar format that came later: their IPC paths.
    "newer": ["string_view_long", "binary_view", "list_view_int32", "large_list_view_utf8",
              "sparse_union", "dense_union", "ree_int16_utf8", "ree_int64_struct",
              "map_utf8_int32", "decimal256_60_20", "decimal32_9_3", "time64_ns", "date64",
              "interval_month_day_nano"],
}
columns = COLUMN_SETS[sys.argv[6]]
table = make_table(120, seed=seed, columns=columns, batch_rows=40)
batches = table.to_batches()
sink = pa.BufferOutputStream()
opts = pa.ipc.IpcWriteOptions(compression=compression)
new = pa.ipc.new_stream if fmt == "stream" else pa.ipc.new_file
with new(sink, table.schema, options=opts) as w:
    for b in batches:
        w.write_batch(b)
data = sink.getvalue().to_pybytes()
rng = random.Random(seed)
stats = {"size": len(data), "reads": 0, "ok": 0, "errors": {}, "tolerated": 0,
         "failures": []}
tmp = tempfile.mkdtemp()

def tolerated(e):
    # What protium does not promise to check: UTF-8 text and decimal digits.
    # Nor the order of a dense union's offsets, nor map key order.
    text = str(e)
    return ("UTF8" in text or "utf8" in text or "precision" in text
            or "non-monotonic offset" in text)

def attempt(kind, pos, blob, via_path):
    stats["reads"] += 1
    try:
        if via_path:
            path = os.path.join(tmp, "c.arrow")
            with open(path, "wb") as f:
                f.write(blob)
            reader = pta.read_ipc(path)
        else:
            reader = pta.read_ipc_buffer(blob)
        got = list(reader)
        result = pa.Table.from_batches(got, reader.schema)
        result.schema.names, [f.type for f in result.schema]  # decodes the names
        try:
            result.validate(full=True)
        except pa.ArrowInvalid as e:
            # Only a flipped byte can make text or decimal values invalid: a
            # truncated input must still yield the valid batches it holds.
            if not tolerated(e) or kind != "flip":
                raise
            stats["tolerated"] += 1
        pta.validate(result)
        pta.write_ipc_buffer(result, compression="lz4")
        if kind == "cut":
            # What a truncated input yields must be a prefix of the batches.
            n = len(got)
            assert n <= len(batches), (n, len(batches))
            assert all(g.equals(b) for g, b in zip(got, batches)), "not a prefix"
        stats["ok"] += 1
    except protium.ProtiumError as e:
        name = str(e.code)
        stats["errors"][name] = stats["errors"].get(name, 0) + 1
        if e.code == 10 or not e.message:
            stats["failures"].append([kind, pos, "bad error %d %r" % (e.code, e.message)])
    except Exception as e:
        stats["failures"].append([kind, pos, repr(e)[:300]])

cuts = list(range(0, min(len(data), 1200))) + list(range(1200, len(data), 7))
for i, cut in enumerate(cuts):
    attempt("cut", cut, data[:cut], via_path=(i % 16 == 0))
for i in range(1500):
    blob = bytearray(data)
    r = rng.random()
    if r < 0.4:
        pos = rng.randrange(min(len(data), 1024))
    elif r < 0.55:
        pos = rng.randrange(max(0, len(data) - 512), len(data))
    else:
        pos = rng.randrange(len(data))
    for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 8)):
        blob[pos] ^= rng.randint(1, 255)
        pos = min(len(data) - 1, pos + rng.randint(1, 64))
    attempt("flip", pos, bytes(blob), via_path=(i % 16 == 0))
stats["failure_count"] = len(stats["failures"])
stats["failures"] = stats["failures"][:20]
print(json.dumps(stats))
"""


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("column_set", ["classic", "newer"])
def test_corrupt_input_never_crashes(column_set, fmt, compression, tmp_path):
    script = tmp_path / "corrupt.py"
    script.write_text(textwrap.dedent(CORRUPT_SCRIPT))
    proc = subprocess.run(
        [sys.executable, str(script), str(ROOT / "python"), fmt, compression or "none", "7",
         str(Path(__file__).parent), column_set],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"child exited with {proc.returncode} (negative: killed by that signal)\n"
        f"stderr tail:\n{proc.stderr[-3000:]}"
    )
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stats["failure_count"] == 0, json.dumps(stats, indent=1)
    errors = sum(stats["errors"].values())
    assert errors > stats["reads"] // 3, stats  # most truncations must fail
    assert stats["ok"] > 0, stats  # cuts at a batch boundary of a stream, harmless flips


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
@pytest.mark.parametrize(
    "column", ["string", "large_string", "list", "nested"], ids=lambda c: f"bad_{c}"
)
def test_protium_refuses_decreasing_offsets_in_compressed_batches(column, compression):
    """Offsets of compressed buffers are checked as they are decompressed,
    on the pool's threads: a decrease anywhere is still refused, with the
    column and the position, whichever buffer of the batch it is in."""
    n = 5000
    good = pa.array([f"v{i}" for i in range(n)])
    offs = list(range(0, 2 * n + 1, 2))
    offs[4000] = offs[3999] - 1  # one decrease deep inside
    if column == "string":
        bad = pa.Array.from_buffers(
            pa.utf8(), n, [None, pa.array(offs, pa.int32()).buffers()[1], good.buffers()[2]]
        )
    elif column == "large_string":
        bad = pa.Array.from_buffers(
            pa.large_utf8(), n, [None, pa.array(offs, pa.int64()).buffers()[1], good.buffers()[2]]
        )
    else:
        values = pa.array(range(2 * n), pa.int32())
        bad = pa.Array.from_buffers(
            pa.list_(pa.int32()), n, [None, pa.array(offs, pa.int32()).buffers()[1]],
            children=[values],
        )
        if column == "nested":
            bad = pa.StructArray.from_arrays([bad], names=["inner"])
    table = pa.table({"ok": pa.array(range(n), pa.int64()), "bad": bad, "after": good})
    data = pa_write([table.to_batches()[0]], table.schema, "stream", compression)
    with pytest.raises(protium.ProtiumError) as e:
        list(pta.read_ipc_buffer(data))
    assert e.value.code == PT_EFORMAT
    assert "column 'bad'" in e.value.message, e.value.message
    assert "offset 4000" in e.value.message and "is smaller than offset 3999" in e.value.message


@pytest.mark.parametrize("compression", [None, "lz4", "zstd"])
def test_big_columns_written_in_parts_read_by_pyarrow(compression):
    """With two or more CPUs, big writes into memory are copied in pieces on
    the pool, and a column bigger than a thread's share of its batch is
    compressed in 1 MiB parts: ZSTD as frames one after another, LZ4 as one
    frame of independent blocks. pyarrow must read all as the data."""
    import numpy as np

    rng = np.random.default_rng(7)
    rows = 600_000  # 4.8 MB of int64: more than one part and one thread's share
    table = pa.table(
        {
            "x": pa.array(rng.integers(-5000, 5000, rows)),
            "w": pa.array(rng.integers(0, 10, rows).astype(str)),
            "few": pa.array(np.arange(rows) % 3, pa.int8()),
        }
    )
    data = pta.write_ipc_buffer(table, "stream", compression)
    assert_same(pa_read(data, "stream"), table)
    assert_same(protium_read(data, "buffer", None)[0], table)
    if (os.cpu_count() or 1) >= 2:
        if compression is None:
            pass
        elif compression == "lz4":
            # Frame magic, then FLG (independent blocks, content size), BD 1 MiB.
            assert b"\x04\x22\x4d\x18\x68\x60" in data
        else:
            # x in 5 parts, 3 more buffers (w's offsets and data, few) whole.
            assert data.count(b"\x28\xb5\x2f\xfd") >= 8


def test_metadata_with_nul_bytes_round_trips():
    """Custom metadata holds bytes, NUL included (pyarrow writes any bytes):
    nothing is cut, reading or writing, at the schema or a field."""
    field = pa.field("x", pa.int32(), metadata={b"f\x00k": b"v\x00\x01\xff", b"plain": b"text"})
    schema = pa.schema([field], metadata={b"k": b"a\x00b", b"empty": b"", b"\x00": b"\x00\x00"})
    table = pa.table({"x": pa.array([1, 2, 3], pa.int32())}, schema=schema)
    for fmt in FORMATS:
        got, _ = protium_read(pa_write(table.to_batches(), schema, fmt, None), "buffer", None)
        assert got.schema.metadata == schema.metadata
        assert got.schema.field("x").metadata == field.metadata
        back = pa_read(pta.write_ipc_buffer(got, fmt), fmt)
        assert back.schema.metadata == schema.metadata
        assert back.schema.field("x").metadata == field.metadata
        assert back.equals(table)


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("how", ["buffer", "path"])
def test_one_column_batches_decompressed_ahead(compression, fmt, how, tmp_path):
    """Batches of one compressed buffer are decompressed several at a time
    (the later ones wait for their turn): every batch must come out whole,
    in order, from streams and files, and stay valid after the reader and
    the other batches are gone."""
    import numpy as np

    rng = np.random.default_rng(3)
    batches = [
        pa.record_batch([pa.array(rng.integers(0, 1000, 1000 + 97 * i))], names=["x"])
        for i in range(11)
    ]
    table = pa.Table.from_batches(batches)
    data = pa_write(batches, table.schema, fmt, compression)
    got, rows = protium_read(data, how, tmp_path)
    assert rows == [b.num_rows for b in batches]
    assert_same(got, table)
    # Taken one at a time, the reader released after the third.
    reader = pta.read_ipc_buffer(data)
    kept = [next(iter(reader)) for _ in range(3)]
    del reader
    assert pa.Table.from_batches(kept).equals(pa.Table.from_batches(batches[:3]))


@pytest.mark.parametrize("fmt", FORMATS)
def test_protium_reads_v4_unions(fmt, tmp_path):
    """Metadata V4 (Arrow before 1.0) gave unions a validity buffer, which the
    reader skips."""
    table = make_table(120, seed=3, columns=["sparse_union", "dense_union", "int32"])
    options = pa.ipc.IpcWriteOptions(metadata_version=pa.ipc.MetadataVersion.V4)
    sink = pa.BufferOutputStream()
    new = pa.ipc.new_stream if fmt == "stream" else pa.ipc.new_file
    with new(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=50)
    got, rows = protium_read(sink.getvalue().to_pybytes(), "buffer", tmp_path)
    assert_same(got, table)
    assert rows == [50, 50, 20]


def without_footer_version(data: bytes) -> bytes:
    """The IPC file with Footer.version left out of its footer (its vtable
    entry zeroed), as older Java and JS writers leave it out."""
    import struct

    buf = bytearray(data)
    (footer_len,) = struct.unpack_from("<i", buf, len(buf) - 10)
    at = len(buf) - 10 - footer_len
    (root,) = struct.unpack_from("<I", buf, at)
    (back,) = struct.unpack_from("<i", buf, at + root)
    vtable = at + root - back
    assert struct.unpack_from("<H", buf, vtable + 4)[0] != 0  # field 0, version
    struct.pack_into("<H", buf, vtable + 4, 0)
    return bytes(buf)


@pytest.mark.parametrize("writer", ["pyarrow", "protium"])
def test_file_footer_without_version(writer, tmp_path):
    table = make_table(200, seed=6, columns=["int64", "utf8", "dense_union", "string_view"],
                       batch_rows=80)
    if writer == "pyarrow":
        data = pa_write(table.to_batches(), table.schema, "file", None)
    else:
        data = pta.write_ipc_buffer(table, "file")
    patched = without_footer_version(data)
    assert_same(pa_read(patched, "file"), table)  # pyarrow reads it
    for how in ("path", "buffer"):
        got, rows = protium_read(patched, how, tmp_path)
        assert_same(got, table)
        assert rows == [80, 80, 40]
