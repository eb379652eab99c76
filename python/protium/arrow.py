"""protium.arrow — Arrow IPC reading and writing, validation, copies and
slices by libprotium, with pyarrow objects in and out.

Data crosses between pyarrow and libprotium through the Arrow C Data and C
Stream Interfaces (pyarrow's _export_to_c / _import_from_c), so buffers are
shared, not converted. Every function here is a thin wrapper of one C call
of include/protium.h; failures raise protium.ProtiumError with the C
library's status code and message.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from typing import Iterator, Optional, Union

import pyarrow as pa

from protium._lib import (
    FREE_DATA_FN,
    PT_COMPRESSION_LZ4_FRAME,
    PT_COMPRESSION_NONE,
    PT_COMPRESSION_ZSTD,
    PT_EINVAL,
    PT_IPC_FILE,
    PT_IPC_STREAM,
    ArrowArray,
    ArrowArrayStream,
    ArrowSchema,
    ProtiumError,
    PtError,
    PtIpcWriteOptions,
    check,
    lib,
    libc,
    release_array,
    release_schema,
    release_stream,
    status_from_errno,
)

__all__ = [
    "read_ipc",
    "read_ipc_buffer",
    "read_stream",
    "write_ipc",
    "write_ipc_buffer",
    "validate",
    "copy",
    "slice",
    "type_name",
]

PathLike = Union[str, "os.PathLike[str]"]
IpcData = Union[pa.Table, pa.RecordBatch, pa.RecordBatchReader]
ArrayLike = Union[pa.Array, pa.ChunkedArray, pa.RecordBatch, pa.Table]

_FORMATS = {"stream": PT_IPC_STREAM, "file": PT_IPC_FILE}
_COMPRESSIONS = {
    None: PT_COMPRESSION_NONE,
    "lz4": PT_COMPRESSION_LZ4_FRAME,
    "zstd": PT_COMPRESSION_ZSTD,
}

_ref = ctypes.byref
_addr = ctypes.addressof


# --------------------------------------------------------------------------
# Reading


class _CStream:
    """Owns one ArrowArrayStream made by libprotium and releases it once:
    when the batches have all been read, on an error, or when garbage."""

    def __init__(self) -> None:
        self.c = ArrowArrayStream()

    def close(self) -> None:
        release_stream(self.c)

    def __del__(self) -> None:
        self.close()

    def _raise(self, rc: int) -> None:
        msg = self.c.get_last_error(_ref(self.c))
        text = msg.decode("utf-8", "replace") if msg else os.strerror(rc)
        raise ProtiumError(status_from_errno(rc), text)

    def schema(self) -> pa.Schema:
        s = ArrowSchema()
        rc = self.c.get_schema(_ref(self.c), _ref(s))
        if rc != 0:
            self._raise(rc)
        return pa.Schema._import_from_c(_addr(s))

    def batches(self, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        try:
            while True:
                a = ArrowArray()
                rc = self.c.get_next(_ref(self.c), _ref(a))
                if rc != 0:
                    self._raise(rc)
                if not a.release:
                    return
                try:
                    yield pa.RecordBatch._import_from_c(_addr(a), schema)
                finally:
                    release_array(a)  # only if the import failed to take it
        finally:
            self.close()


def _reader(stream: _CStream) -> pa.RecordBatchReader:
    try:
        schema = stream.schema()
    except BaseException:
        stream.close()
        raise
    return pa.RecordBatchReader.from_batches(schema, stream.batches(schema))


def _take_capsule_stream(obj: object) -> ArrowArrayStream:
    """Moves the ArrowArrayStream out of obj.__arrow_c_stream__()'s PyCapsule
    (the capsule is left with a released stream, which it then ignores)."""
    capsule = obj.__arrow_c_stream__()  # type: ignore[attr-defined]
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    p = get(capsule, b"arrow_array_stream")
    stream = ArrowArrayStream()
    ctypes.memmove(_addr(stream), p, ctypes.sizeof(ArrowArrayStream))
    ctypes.memset(p + ArrowArrayStream.release.offset, 0, ctypes.sizeof(ctypes.c_void_p))
    return stream


def _read_batches(
    c: _CStream, s: ArrowSchema, schema: pa.Schema, addresses: Optional[list]
) -> Iterator[pa.RecordBatch]:
    err = PtError()
    try:
        while True:
            a, out = ArrowArray(), ArrowArray()
            rc = c.c.get_next(_ref(c.c), _ref(a))
            if rc != 0:
                c._raise(rc)
            if not a.release:
                return
            try:
                check(lib().pt_array_validate(_ref(s), _ref(a), _ref(err)), err)
                if addresses is not None:
                    addresses.append(_buffer_addresses(a))
                # A zero-copy slice of all rows: protium's own view of the
                # producer's buffers, which stay the producer's until released.
                check(lib().pt_array_slice(_ref(a), 0, a.length, _ref(out), _ref(err)), err)
                yield pa.RecordBatch._import_from_c(_addr(out), schema)
            finally:
                release_array(out)
                release_array(a)
    finally:
        release_schema(s)
        c.close()


def _buffer_addresses(a: ArrowArray) -> list:
    """The buffer addresses of each column of a struct array, in a list per
    column (children's buffers after their parent's)."""

    def walk(node: ArrowArray, acc: list) -> None:
        acc.extend(node.buffers[i] or 0 for i in range(node.n_buffers))
        for i in range(node.n_children):
            walk(node.children[i].contents, acc)

    cols = []
    for i in range(a.n_children):
        acc: list = []
        walk(a.children[i].contents, acc)
        cols.append(acc)
    return cols


def read_stream(data: object, _addresses: Optional[list] = None) -> pa.RecordBatchReader:
    """Reads any Arrow producer's stream (an object with __arrow_c_stream__:
    polars, DuckDB, pyarrow ...) through libprotium: each batch is validated
    (pt_array_validate) and sliced whole (pt_array_slice), so it reaches the
    result without a copy, its buffers still the producer's."""
    if not hasattr(data, "__arrow_c_stream__"):
        raise TypeError(f"{type(data).__name__} has no __arrow_c_stream__")
    c = _CStream()
    c.c = _take_capsule_stream(data)
    s = ArrowSchema()
    try:
        rc = c.c.get_schema(_ref(c.c), _ref(s))
        if rc != 0:
            c._raise(rc)
        schema = pa.Schema._import_from_c(_addr(s))  # moves s: ask again for ours
        s = ArrowSchema()
        rc = c.c.get_schema(_ref(c.c), _ref(s))
        if rc != 0:
            c._raise(rc)
    except BaseException:
        release_schema(s)
        c.close()
        raise
    return pa.RecordBatchReader.from_batches(schema, _read_batches(c, s, schema, _addresses))


def read_ipc(path: PathLike) -> pa.RecordBatchReader:
    """Opens an Arrow IPC stream or file (told apart by its magic bytes) with
    pt_ipc_read_path and returns its record batches as a pyarrow reader.

    Regular files are memory-mapped and their uncompressed buffers used in
    place. Errors when opening, and errors met while reading batches, raise
    ProtiumError (corrupt input: code PT_EFORMAT).
    """
    stream, err = _CStream(), PtError()
    check(lib().pt_ipc_read_path(os.fsencode(path), _ref(stream.c), _ref(err)), err)
    return _reader(stream)


def read_ipc_buffer(data: Union[bytes, bytearray, memoryview, pa.Buffer]) -> pa.RecordBatchReader:
    """Reads an Arrow IPC stream or file held in memory (pt_ipc_read_buffer).

    The bytes are copied once into memory that the C stream owns and frees
    when the stream and every batch read from it are released, so `data`
    may be dropped at once.
    """
    buf = pa.py_buffer(data)
    mem = libc().malloc(max(buf.size, 1))
    if not mem:
        raise MemoryError(f"cannot allocate {buf.size} bytes for an IPC buffer")
    ctypes.memmove(mem, buf.address, buf.size)
    # free(void *) called as free_data(data, arg): the unused second argument
    # is harmless under the C calling conventions protium runs on.
    free_data = ctypes.cast(libc().free, FREE_DATA_FN)
    stream, err = _CStream(), PtError()
    rc = lib().pt_ipc_read_buffer(mem, buf.size, free_data, None, _ref(stream.c), _ref(err))
    if rc != 0:
        libc().free(mem)  # on failure ownership did not move
    check(rc, err)
    return _reader(stream)


# --------------------------------------------------------------------------
# Writing


def _write_options(
    format: str, compression: Optional[str], compression_level: int, emit_dictionary_deltas: bool
) -> PtIpcWriteOptions:
    if format not in _FORMATS:
        raise ProtiumError(PT_EINVAL, f"unknown IPC format {format!r}; use 'stream' or 'file'")
    if compression not in _COMPRESSIONS:
        raise ProtiumError(
            PT_EINVAL, f"unknown compression {compression!r}; use None, 'lz4' or 'zstd'"
        )
    opts = PtIpcWriteOptions()
    lib().pt_ipc_write_options_init(_ref(opts))
    opts.format = _FORMATS[format]
    opts.compression = _COMPRESSIONS[compression]
    opts.compression_level = compression_level
    opts.emit_dictionary_deltas = 1 if emit_dictionary_deltas else 0
    return opts


@contextlib.contextmanager
def _exported_schema(obj: Union[pa.Schema, pa.Field, pa.DataType]) -> Iterator[ArrowSchema]:
    s = ArrowSchema()
    obj._export_to_c(_addr(s))
    try:
        yield s
    finally:
        release_schema(s)


@contextlib.contextmanager
def _exported_array(
    obj: Union[pa.Array, pa.RecordBatch], with_schema: bool = True
) -> Iterator[tuple[ArrowSchema, ArrowArray]]:
    s, a = ArrowSchema(), ArrowArray()
    if with_schema:
        obj._export_to_c(_addr(a), _addr(s))
    else:
        obj._export_to_c(_addr(a))
    try:
        yield s, a
    finally:
        release_array(a)
        release_schema(s)


def _as_ipc_data(data: object) -> IpcData:
    if isinstance(data, (pa.Table, pa.RecordBatch, pa.RecordBatchReader)):
        return data
    if hasattr(data, "__arrow_c_stream__"):
        return read_stream(data)
    raise TypeError(
        f"expected a pyarrow Table, RecordBatch or RecordBatchReader, not {type(data).__name__}"
    )


def _write_all(writer: ctypes.c_void_p, data: IpcData) -> None:
    err = PtError()
    if isinstance(data, pa.RecordBatchReader):
        stream = ArrowArrayStream()
        data._export_to_c(_addr(stream))
        try:
            check(lib().pt_ipc_writer_write_stream(writer, _ref(stream), _ref(err)), err)
        finally:
            release_stream(stream)  # if protium did not take it
        return
    batches = data.to_batches() if isinstance(data, pa.Table) else [data]
    for batch in batches:
        with _exported_array(batch, with_schema=False) as (_, a):
            check(lib().pt_ipc_writer_write(writer, _ref(a), _ref(err)), err)


def _write(
    data: object,
    path: Optional[PathLike],
    format: str,
    compression: Optional[str],
    compression_level: int,
    emit_dictionary_deltas: bool,
) -> Optional[bytes]:
    data = _as_ipc_data(data)
    opts = _write_options(format, compression, compression_level, emit_dictionary_deltas)
    writer, err = ctypes.c_void_p(), PtError()
    with _exported_schema(data.schema) as s:
        if path is None:
            rc = lib().pt_ipc_writer_open_buffer(_ref(s), _ref(opts), _ref(writer), _ref(err))
        else:
            rc = lib().pt_ipc_writer_open_path(
                os.fsencode(path), _ref(s), _ref(opts), _ref(writer), _ref(err)
            )
        check(rc, err)
    try:
        _write_all(writer, data)
        check(lib().pt_ipc_writer_close(writer, _ref(err)), err)
        if path is not None:
            return None
        mem, size = ctypes.c_void_p(), ctypes.c_int64()
        check(lib().pt_ipc_writer_take_buffer(writer, _ref(mem), _ref(size), _ref(err)), err)
        try:
            return ctypes.string_at(mem, size.value) if size.value else b""
        finally:
            libc().free(mem)
    finally:
        lib().pt_ipc_writer_free(writer)


def write_ipc(
    data: IpcData,
    path: PathLike,
    format: str = "stream",
    compression: Optional[str] = None,
    *,
    compression_level: int = 0,
    emit_dictionary_deltas: bool = True,
) -> None:
    """Writes a pyarrow Table, RecordBatch or RecordBatchReader (or anything
    with __arrow_c_stream__) to path as an Arrow IPC stream or file.

    format: "stream" or "file". compression: None, "lz4" (LZ4 frame) or
    "zstd"; compression_level 0 is the default (ZSTD level 1, as Arrow C++
    and Spark have it). With emit_dictionary_deltas, a dictionary that extends the previous batch's is
    written as a delta. Batches are handed to pt_ipc_writer_write through the
    C Data Interface (a reader through the C Stream Interface) without a copy.
    """
    _write(data, path, format, compression, compression_level, emit_dictionary_deltas)


def write_ipc_buffer(
    data: IpcData,
    format: str = "stream",
    compression: Optional[str] = None,
    *,
    compression_level: int = 0,
    emit_dictionary_deltas: bool = True,
) -> bytes:
    """Like write_ipc, but into memory (pt_ipc_writer_open_buffer); returns
    the IPC bytes."""
    out = _write(data, None, format, compression, compression_level, emit_dictionary_deltas)
    assert out is not None
    return out


# --------------------------------------------------------------------------
# Arrays


def validate(data: ArrayLike) -> None:
    """Checks data (an Array, ChunkedArray, RecordBatch or Table) with
    pt_array_validate: buffer and child counts, offsets, lengths, null counts,
    dictionary indices. Raises ProtiumError with the C message if invalid."""
    if isinstance(data, (pa.ChunkedArray, pa.Table)):
        for part in data.chunks if isinstance(data, pa.ChunkedArray) else data.to_batches():
            validate(part)
        return
    err = PtError()
    with _exported_array(data) as (s, a):
        check(lib().pt_array_validate(_ref(s), _ref(a), _ref(err)), err)


def _copy_array(data: Union[pa.Array, pa.RecordBatch]) -> Union[pa.Array, pa.RecordBatch]:
    out, err = ArrowArray(), PtError()
    with _exported_array(data) as (s, a):
        check(lib().pt_array_copy(_ref(s), _ref(a), _ref(out), _ref(err)), err)
    return _import(out, data)


def _import(out: ArrowArray, like: Union[pa.Array, pa.RecordBatch]) -> Union[pa.Array, pa.RecordBatch]:
    try:
        if isinstance(like, pa.RecordBatch):
            if out.offset == 0:
                return pa.RecordBatch._import_from_c(_addr(out), like.schema)
            # pyarrow imports a batch only at offset 0: take a slice as a struct.
            struct = pa.Array._import_from_c(_addr(out), pa.struct(list(like.schema)))
            return pa.RecordBatch.from_arrays(struct.flatten(), schema=like.schema)
        return pa.Array._import_from_c(_addr(out), like.type)
    finally:
        release_array(out)  # only if the import failed to take it


def copy(
    data: Union[ArrayLike, pa.Schema, pa.Field, pa.DataType],
) -> Union[ArrayLike, pa.Schema, pa.Field, pa.DataType]:
    """A deep copy made by libprotium, returned as the same pyarrow kind.

    Arrays and record batches go through pt_array_copy (the copy is compacted:
    offset 0, buffers holding exactly its rows); chunked arrays and tables
    chunk by chunk; schemas, fields and types through pt_schema_copy.
    """
    if isinstance(data, (pa.Schema, pa.Field, pa.DataType)):
        out, err = ArrowSchema(), PtError()
        with _exported_schema(data) as s:
            check(lib().pt_schema_copy(_ref(s), _ref(out), _ref(err)), err)
        try:
            return type(data)._import_from_c(_addr(out))
        finally:
            release_schema(out)
    if isinstance(data, pa.ChunkedArray):
        return pa.chunked_array([_copy_array(c) for c in data.chunks], data.type)
    if isinstance(data, pa.Table):
        return pa.Table.from_batches([_copy_array(b) for b in data.to_batches()], data.schema)
    return _copy_array(data)


def slice(
    data: Union[pa.Array, pa.RecordBatch], offset: int, length: int
) -> Union[pa.Array, pa.RecordBatch]:
    """Rows [offset, offset + length) of an Array or RecordBatch through
    pt_array_slice: zero-copy, sharing data's buffers."""
    out, err = ArrowArray(), PtError()
    with _exported_array(data, with_schema=False) as (_, a):
        check(lib().pt_array_slice(_ref(a), offset, length, _ref(out), _ref(err)), err)
    return _import(out, data)


def type_name(t: Union[pa.DataType, pa.Field]) -> str:
    """libprotium's name of a type (pt_type_name), e.g. "list<int64>"."""
    with _exported_schema(t) as s:
        n = lib().pt_type_name(_ref(s), None, 0)
        if n < 0:
            raise ProtiumError(PT_EINVAL, f"protium does not support the type {t}")
        buf = ctypes.create_string_buffer(n + 1)
        lib().pt_type_name(_ref(s), buf, n + 1)
    return buf.value.decode()
