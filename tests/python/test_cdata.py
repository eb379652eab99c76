"""The Arrow C Data and C Stream Interfaces between libprotium and pyarrow.

pyarrow exports arrays, record batches, schemas and streams; protium
validates, copies and slices them and exports the results, which pyarrow
imports. Ownership must work out both ways: every release callback runs, and
runs once — checked through pyarrow's allocation counter, glibc's allocation
statistics, a counting free_data callback of pt_ipc_read_buffer, and the
process's memory maps for files protium maps.
"""

from __future__ import annotations

import ctypes
import gc
from pathlib import Path

import pyarrow as pa
import pytest

import protium
import protium._lib as L
import protium.arrow as pta
from conftest import make_column, make_table

# --------------------------------------------------------------------------
# Helpers


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]


def malloc_bytes() -> int:
    """Bytes in use by glibc's malloc (heap and mmap'd chunks): where
    libprotium's buffers live (pyarrow uses its own allocator)."""
    fn = ctypes.CDLL(None).mallinfo2
    fn.restype = _Mallinfo2
    info = fn()
    return info.uordblks + info.hblkhd


def settle() -> None:
    gc.collect()
    gc.collect()


def column(name: str, n: int = 300, seed: int = 0) -> pa.Array:
    return make_column(name, n, seed)[1]


# --------------------------------------------------------------------------
# validate


def test_version():
    assert protium.version() == "0.1.0"


def test_validate_accepts_every_pyarrow_array(arrow_column):
    array = column(arrow_column)
    pta.validate(array)
    for offset, length in [(1, 0), (3, 100), (7, 293), (299, 1)]:
        pta.validate(array.slice(offset, length))
    table = make_table(300, columns=[arrow_column], batch_rows=97)
    pta.validate(table)
    for batch in table.to_batches():
        pta.validate(batch)
        pta.validate(batch.slice(5))
    pta.validate(table.column(0))


def test_validate_accepts_the_whole_table():
    table = make_table(500, seed=9, batch_rows=123).slice(11, 400)
    pta.validate(table)


def _set_buffer(a: L.ArrowArray, i: int, values: list[int], ctype=ctypes.c_int32):
    """Points buffer i of an exported array at new contents (kept alive on
    the struct's Python object)."""
    buf = (ctype * len(values))(*values)
    a._keep = buf
    a.buffers[i] = ctypes.addressof(buf)


def _child(a: L.ArrowArray, i: int = 0) -> L.ArrowArray:
    return a.children[i].contents


# name: (a valid pyarrow array, how its exported struct is broken). The
# pyarrow arrays are made valid and broken after export, as pyarrow itself
# refuses to make most of these.
INVALID = {
    "utf8 offsets decrease": (
        pa.array(["abc", "de"]), lambda a: _set_buffer(a, 1, [0, 5, 2])),
    "utf8 first offset negative": (
        pa.array(["abc", "de"]), lambda a: _set_buffer(a, 1, [-1, 2, 5])),
    "large_utf8 offsets decrease": (
        pa.array(["abc", "de"], pa.large_utf8()),
        lambda a: _set_buffer(a, 1, [0, 4, 3], ctypes.c_int64)),
    "list offsets beyond child": (
        pa.array([[1], [2, 3]], pa.list_(pa.int32())), lambda a: _set_buffer(a, 1, [0, 1, 9])),
    "large_list offsets decrease": (
        pa.array([[1, 2, 3], []], pa.large_list(pa.int32())),
        lambda a: _set_buffer(a, 1, [0, 3, 1], ctypes.c_int64)),
    "struct child too short": (
        pa.array([{"a": i} for i in range(5)]), lambda a: setattr(_child(a), "length", 2)),
    "struct offset past its children": (
        pa.array([{"a": i} for i in range(5)]), lambda a: setattr(a, "offset", 3)),
    "fixed_size_list child too short": (
        pa.array([[1, 2, 3, 4]] * 3, pa.list_(pa.int8(), 4)),
        lambda a: setattr(_child(a), "length", 5)),
    "dictionary index out of range": (
        pa.DictionaryArray.from_arrays(pa.array([0, 1, 7], pa.int16()), pa.array(["a", "b"]),
                                       safe=False), None),
    "dictionary index negative": (
        pa.DictionaryArray.from_arrays(pa.array([0, -1], pa.int8()), pa.array(["a", "b"]),
                                       safe=False), None),
    "null count wrong": (
        pa.array([1, None, 3], pa.int32()), lambda a: setattr(a, "null_count", 2)),
    "negative length": (pa.array([1, 2, 3]), lambda a: setattr(a, "length", -1)),
    "too few buffers": (pa.array(["x"]), lambda a: setattr(a, "n_buffers", 2)),
    "missing data buffer": (
        pa.array([1, 2, 3], pa.int32()), lambda a: a.buffers.__setitem__(1, None)),
    "missing child": (
        pa.array([{"a": 1, "b": 2}]), lambda a: setattr(a, "n_children", 1)),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_validate_rejects_invalid_arrays(case):
    array, breaks = INVALID[case]
    s, a, err = L.ArrowSchema(), L.ArrowArray(), L.PtError()
    array._export_to_c(ctypes.addressof(a), ctypes.addressof(s))
    saved = (a.length, a.offset, a.null_count, a.n_buffers, a.n_children)
    buffers = [a.buffers[i] for i in range(a.n_buffers)]
    child_lengths = [_child(a, i).length for i in range(a.n_children)]
    try:
        if breaks:
            breaks(a)
        rc = L.lib().pt_array_validate(ctypes.byref(s), ctypes.byref(a), ctypes.byref(err))
    finally:
        # Undo the damage: the release callback is pyarrow's.
        a.length, a.offset, a.null_count, a.n_buffers, a.n_children = saved
        for i, p in enumerate(buffers):
            a.buffers[i] = p
        for i, n in enumerate(child_lengths):
            _child(a, i).length = n
        L.release_array(a)
        L.release_schema(s)
    assert rc in (L.PT_EFORMAT, L.PT_EINVAL, L.PT_ERANGE), (rc, err.message)
    assert len(err.message) > 10


def test_validate_raises_protium_error():
    bad = pa.Array.from_buffers(
        pa.utf8(), 2, [None, pa.array([0, 5, 2], pa.int32()).buffers()[1], pa.py_buffer(b"abcde")]
    )
    with pytest.raises(protium.ProtiumError) as e:
        pta.validate(bad)
    assert e.value.code in (L.PT_EFORMAT, L.PT_EINVAL) and e.value.message


def test_validate_rejects_invalid_nested_arrays():
    bad = pa.Array.from_buffers(
        pa.utf8(), 2, [None, pa.array([0, 5, 2], pa.int32()).buffers()[1], pa.py_buffer(b"abcde")]
    )
    struct = pa.StructArray.from_arrays([bad], names=["s"])
    with pytest.raises(protium.ProtiumError):
        pta.validate(struct)
    with pytest.raises(protium.ProtiumError):
        pta.validate(pa.RecordBatch.from_arrays([bad], names=["s"]))


# --------------------------------------------------------------------------
# copy and slice: pyarrow → protium → pyarrow


def _buffer_addresses(array: pa.Array) -> set[int]:
    return {b.address for b in array.buffers() if b is not None and b.size}


def test_copy_round_trips_every_type(arrow_column):
    array = column(arrow_column)
    for part in (array, array.slice(3, 200), array.slice(299), array.slice(0, 0)):
        copied = pta.copy(part)
        assert copied.type == part.type
        copied.validate(full=True)
        assert copied.equals(part)
        assert copied.offset == 0  # compacted
        assert not (_buffer_addresses(copied) & _buffer_addresses(part))  # deep


def test_copy_record_batches_tables_and_chunked_arrays():
    table = make_table(400, seed=1, batch_rows=150).slice(9, 300)
    for batch in table.to_batches():
        copied = pta.copy(batch)
        assert copied.schema.equals(batch.schema, check_metadata=True)
        assert copied.equals(batch)
    copied = pta.copy(table)
    assert copied.equals(table, check_metadata=True)
    assert pta.copy(table.column("list_utf8")).equals(table.column("list_utf8"))


def test_copy_schemas_fields_and_types():
    schema = make_table(1).schema
    copied = pta.copy(schema)
    assert copied.equals(schema, check_metadata=True)
    assert [f.nullable for f in copied] == [f.nullable for f in schema]
    for field in schema:
        assert pta.copy(field).equals(field, check_metadata=True)
        assert pta.copy(field.type) == field.type


def test_type_names():
    assert pta.type_name(pa.list_(pa.int64())) == "list<int64>"
    assert pta.type_name(pa.timestamp("us", tz="UTC")) == "timestamp[us, tz=UTC]"
    assert pta.type_name(pa.dictionary(pa.int32(), pa.utf8())) == (
        "dictionary<values=utf8, indices=int32>"
    )
    for field in make_table(1).schema:
        assert pta.type_name(field)


def test_slice_every_type(arrow_column):
    array = column(arrow_column)
    for offset, length in [(0, 300), (1, 5), (7, 100), (299, 1), (300, 0)]:
        got = pta.slice(array, offset, length)
        assert got.equals(array.slice(offset, length))
        got.validate(full=True)
        # Slices of slices.
        inner = pta.slice(got, length // 3, length - length // 3)
        assert inner.equals(array.slice(offset + length // 3, length - length // 3))


def test_slice_is_zero_copy():
    array = column("int64", 1000)
    got = pta.slice(array, 13, 500)
    assert got.buffers()[1].address == array.buffers()[1].address
    assert got.offset == 13


def test_slice_record_batches():
    batch = make_table(300, seed=2).to_batches()[0]
    for offset, length in [(0, 300), (5, 17), (299, 1), (150, 0)]:
        got = pta.slice(batch, offset, length)
        assert got.schema.equals(batch.schema, check_metadata=True)
        assert got.equals(batch.slice(offset, length))
        got.validate(full=True)
    assert pta.slice(pta.slice(batch, 10, 200), 3, 7).equals(batch.slice(13, 7))


@pytest.mark.parametrize("offset, length", [(-1, 2), (0, 11), (5, 6), (11, 0), (3, -1)])
def test_slice_out_of_range(offset, length):
    with pytest.raises(protium.ProtiumError) as e:
        pta.slice(pa.array(range(10)), offset, length)
    assert e.value.code == L.PT_ERANGE, e.value


# --------------------------------------------------------------------------
# Ownership: releases happen, once.


def test_pyarrow_memory_returns_after_protium_writes():
    settle()
    base = pa.total_allocated_bytes()
    table = make_table(20000, seed=3, columns=["int64", "utf8", "list_int32", "dict_int16_utf8"])
    assert pa.total_allocated_bytes() > base
    for _ in range(3):
        pta.write_ipc_buffer(table, compression="zstd")
        pta.write_ipc_buffer(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))
        pta.validate(table)
    del table
    settle()
    assert pa.total_allocated_bytes() == base


def test_a_stream_protium_writes_is_released():
    # The reader's batches are made lazily; once protium has written them all
    # and released the stream, nothing of them may stay allocated.
    settle()
    base = pa.total_allocated_bytes()
    schema = pa.schema([("x", pa.int64()), ("s", pa.utf8())])
    released = []

    def batches():
        try:
            for i in range(5):
                yield pa.record_batch(
                    [pa.array(range(i * 10000, (i + 1) * 10000)), pa.array([str(i)] * 10000)],
                    schema=schema,
                )
        finally:
            released.append(True)

    data = pta.write_ipc_buffer(pa.RecordBatchReader.from_batches(schema, batches()))
    settle()
    assert released == [True]  # protium released the stream (closing the generator)
    assert pa.total_allocated_bytes() == base
    assert pa.ipc.open_stream(data).read_all().num_rows == 50000


def test_a_slice_keeps_a_foreign_array_alive_until_released():
    settle()
    base = pa.total_allocated_bytes()
    array = pa.array(range(2_000_000), pa.int64())  # 16 MB from pyarrow's pool
    size = pa.total_allocated_bytes() - base
    assert size >= 16_000_000
    part = pta.slice(array, 1000, 10)
    del array
    settle()
    assert pa.total_allocated_bytes() - base >= size  # still held by the slice
    assert part.to_pylist() == list(range(1000, 1010))
    del part
    settle()
    assert pa.total_allocated_bytes() == base  # released exactly when the slice went


def test_protium_copies_are_freed_by_pyarrow():
    array = pa.array(range(8_000_000), pa.int64())  # 64 MB
    settle()
    before = malloc_bytes()
    copies = [pta.copy(array) for _ in range(3)]
    if malloc_bytes() == 0:
        pytest.skip("no malloc statistics (a sanitizer's allocator is in use)")
    assert malloc_bytes() - before >= 3 * 64_000_000  # protium's buffers
    assert all(c.equals(array) for c in copies)
    del copies
    settle()
    assert malloc_bytes() - before < 1_000_000


def test_protium_read_buffer_frees_its_data_once():
    """pt_ipc_read_buffer must call free_data exactly once, after the stream
    and every array read from it (and imported into pyarrow) are released."""
    table = make_table(1000, seed=4, columns=["int64", "utf8", "dict_int8_utf8", "struct"],
                       batch_rows=300)
    data = pa.BufferOutputStream()
    with pa.ipc.new_stream(data, table.schema) as w:
        w.write_table(table)
    payload = ctypes.create_string_buffer(data.getvalue().to_pybytes())
    calls = []
    free_data = L.FREE_DATA_FN(lambda p, arg: calls.append((p, arg)))
    stream, err = L.ArrowArrayStream(), L.PtError()
    rc = L.lib().pt_ipc_read_buffer(
        ctypes.addressof(payload), len(payload.raw) - 1, free_data, 1234, ctypes.byref(stream),
        ctypes.byref(err),
    )
    L.check(rc, err)
    reader = pa.RecordBatchReader._import_from_c(ctypes.addressof(stream))
    assert not stream.release  # moved into pyarrow
    got = reader.read_all()
    del reader
    settle()
    assert calls == []  # the arrays still use the data
    one_column = got.column("utf8")
    del got
    settle()
    assert calls == []
    assert one_column.equals(table.column("utf8"))
    del one_column
    settle()
    assert calls == [(ctypes.addressof(payload), 1234)]


def test_protium_read_buffer_does_not_call_free_data_on_failure():
    calls = []
    free_data = L.FREE_DATA_FN(lambda p, arg: calls.append(p))
    junk = ctypes.create_string_buffer(b"definitely not arrow")
    stream, err = L.ArrowArrayStream(), L.PtError()
    rc = L.lib().pt_ipc_read_buffer(
        ctypes.addressof(junk), 20, free_data, None, ctypes.byref(stream), ctypes.byref(err)
    )
    if rc == 0:  # a lazy reader may only fail at get_schema
        schema = L.ArrowSchema()
        assert stream.get_schema(ctypes.byref(stream), ctypes.byref(schema)) != 0
        L.release_stream(stream)
        assert len(calls) == 1
    else:
        assert calls == [] and err.message


def _mapped(path: Path) -> bool:
    return str(path) in Path("/proc/self/maps").read_text()


def test_a_mapped_file_is_unmapped_when_its_arrays_are_released(tmp_path):
    table = make_table(5000, seed=5, columns=["int64", "utf8", "list_int32"])
    path = tmp_path / "mapped.arrow"
    with pa.ipc.new_file(path, table.schema) as w:
        w.write_table(table)
    got = pta.read_ipc(path).read_all()
    settle()
    assert _mapped(path)  # the file is mapped, its buffers used in place
    column = got.column("utf8")
    del got
    settle()
    assert _mapped(path)
    assert column.equals(table.column("utf8"))
    del column
    settle()
    assert not _mapped(path)


def test_an_unread_reader_releases_its_stream(tmp_path):
    table = make_table(100, columns=["int64"])
    path = tmp_path / "unread.arrow"
    with pa.ipc.new_file(path, table.schema) as w:
        w.write_table(table)
    reader = pta.read_ipc(path)
    assert _mapped(path)
    del reader
    settle()
    assert not _mapped(path)


def test_schema_and_stream_exports_import_into_pyarrow():
    """protium's own exports, imported by pyarrow directly: a schema from
    pt_schema_copy, a stream from pt_ipc_read_buffer, arrays from
    pt_array_copy; pyarrow validates each."""
    table = make_table(200, seed=6, batch_rows=64)
    s = L.ArrowSchema()
    table.schema._export_to_c(ctypes.addressof(s))
    out, err = L.ArrowSchema(), L.PtError()
    L.check(L.lib().pt_schema_copy(ctypes.byref(s), ctypes.byref(out), ctypes.byref(err)), err)
    L.release_schema(s)
    assert pa.Schema._import_from_c(ctypes.addressof(out)).equals(table.schema, check_metadata=True)
    assert not out.release
    for batch in table.to_batches():
        copied = pta.copy(batch)
        copied.validate(full=True)
        assert copied.equals(batch)
