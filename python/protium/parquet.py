"""protium.parquet — Parquet files read (and written) by libprotium, with
pyarrow objects in and out.

Thin wrappers of the Parquet functions of include/protium.h: batches cross
to pyarrow through the Arrow C Stream Interface without a copy. Failures
raise protium.ProtiumError with the C library's status code and message,
which names the file, row group, column and page.
"""

from __future__ import annotations

import ctypes
import os
from typing import Optional, Sequence, Union

import pyarrow as pa

from protium._lib import (
    FREE_DATA_FN,
    PtError,
    PtParquetReadOptions,
    check,
    lib,
    libc,
)
from protium.arrow import _CStream, _reader

__all__ = ["read_parquet", "read_parquet_buffer"]

PathLike = Union[str, "os.PathLike[str]"]
_ref = ctypes.byref


def _read_options(
    columns: Optional[Sequence[str]], batch_size: int
) -> tuple[PtParquetReadOptions, object]:
    opts = PtParquetReadOptions()
    lib().pt_parquet_read_options_init(_ref(opts))
    keep: object = None
    if columns is not None:
        names = (ctypes.c_char_p * max(len(columns), 1))(*[c.encode() for c in columns])
        opts.columns = ctypes.cast(names, ctypes.POINTER(ctypes.c_char_p))
        opts.n_columns = len(columns)
        keep = names
    if batch_size:
        opts.batch_size = batch_size
    return opts, keep


def read_parquet(
    path: PathLike, columns: Optional[Sequence[str]] = None, *, batch_size: int = 0
) -> pa.RecordBatchReader:
    """Opens a Parquet file with pt_parquet_read_path (memory-mapped) and
    returns its record batches as a pyarrow reader.

    columns: the top-level columns to read, in this order (None: all).
    batch_size: rows per batch at most (0: the library's default, 65536).
    """
    opts, _keep = _read_options(columns, batch_size)
    stream, err = _CStream(), PtError()
    check(lib().pt_parquet_read_path(os.fsencode(path), _ref(opts), _ref(stream.c), _ref(err)), err)
    return _reader(stream)


def read_parquet_buffer(
    data: Union[bytes, bytearray, memoryview, pa.Buffer],
    columns: Optional[Sequence[str]] = None,
    *,
    batch_size: int = 0,
) -> pa.RecordBatchReader:
    """Reads a whole Parquet file held in memory (pt_parquet_read_buffer).
    The bytes are copied once into memory the C stream owns and frees."""
    buf = pa.py_buffer(data)
    mem = libc().malloc(max(buf.size, 1))
    if not mem:
        raise MemoryError(f"cannot allocate {buf.size} bytes for a Parquet buffer")
    ctypes.memmove(mem, buf.address, buf.size)
    free_data = ctypes.cast(libc().free, FREE_DATA_FN)
    opts, _keep = _read_options(columns, batch_size)
    stream, err = _CStream(), PtError()
    rc = lib().pt_parquet_read_buffer(
        mem, buf.size, free_data, None, _ref(opts), _ref(stream.c), _ref(err)
    )
    if rc != 0:
        libc().free(mem)
    check(rc, err)
    return _reader(stream)
