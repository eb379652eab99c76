"""protium.parquet — Parquet files read (and written) by libprotium, with
pyarrow objects in and out.

Thin wrappers of the Parquet functions of include/protium.h: batches cross
to pyarrow through the Arrow C Stream Interface without a copy. Failures
raise protium.ProtiumError with the C library's status code and message,
which names the file, row group, column and page.
"""

from __future__ import annotations

import ctypes
import datetime
import decimal
import os
from typing import Mapping, Optional, Sequence, Union

import pyarrow as pa

from protium._lib import (
    FREE_DATA_FN,
    PT_EINVAL,
    ArrowSchema,
    ProtiumError,
    PtBuf,
    PtError,
    PtParquetReadOptions,
    PtParquetWriteOptions,
    check,
    lib,
    libc,
    release_schema,
)
from protium.arrow import _as_ipc_data, _CStream, _exported_array, _exported_schema, _reader

__all__ = [
    "read_parquet",
    "read_parquet_buffer",
    "write_parquet",
    "write_parquet_buffer",
]

CODECS = {"none": 0, "snappy": 1, "gzip": 2, "brotli": 4, "zstd": 6, "lz4_raw": 7}

PathLike = Union[str, "os.PathLike[str]"]
_ref = ctypes.byref


_EPOCH = datetime.date(1970, 1, 1)
# PT_PARQUET_*: the three after AND/OR came later, numbered so that the
# others keep their numbers.
_OPS = {"=": 1, "==": 1, "<": 2, "<=": 3, ">": 4, ">=": 5, "in": 6, "is_null": 7,
        "!=": 10, "not in": 11, "is_not_null": 12}
_AND, _OR = 8, 9


def _micros(v: datetime.datetime) -> int:
    """Microseconds since the epoch: an aware datetime's UTC instant, a
    naive one's wall clock."""
    if v.tzinfo is not None:
        v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    d = v - datetime.datetime(1970, 1, 1)
    return (d.days * 86400 + d.seconds) * 1000000 + d.microseconds


class _Filter:
    """A pt_parquet_filter built from pyarrow-style filters, freed when
    garbage."""

    def __init__(self, spec: object) -> None:
        self.ptr = ctypes.c_void_p()
        self.ptr = self._build(spec)

    def __del__(self) -> None:
        if getattr(self, "ptr", None):
            lib().pt_parquet_filter_free(self.ptr)
            self.ptr = None

    @staticmethod
    def _combine(op: int, a: ctypes.c_void_p, b: ctypes.c_void_p) -> ctypes.c_void_p:
        out, err = ctypes.c_void_p(), PtError()
        rc = lib().pt_parquet_filter_combine(op, a, b, _ref(out), _ref(err))
        if rc != 0:
            lib().pt_parquet_filter_free(a)
            lib().pt_parquet_filter_free(b)
        check(rc, err)
        return out

    @classmethod
    def _leaf(cls, column: str, op: str, value: object) -> ctypes.c_void_p:
        if op not in _OPS:
            raise ProtiumError(PT_EINVAL, f"unknown filter operator {op!r}; use one of {sorted(_OPS)}")
        out, err = ctypes.c_void_p(), PtError()
        name = column.encode()
        if op in ("is_null", "is_not_null"):
            build = (lib().pt_parquet_filter_is_null if op == "is_null"
                     else lib().pt_parquet_filter_is_not_null)
            check(build(name, _ref(out), _ref(err)), err)
            return out
        values = list(value) if op in ("in", "not in") else [value]  # type: ignore[call-overload]
        if values and all(isinstance(v, datetime.datetime) for v in values):
            # Timestamps in nanoseconds where the value has them (pandas),
            # else microseconds: an aware one as its UTC instant, a naive
            # one as the wall clock.
            ns = all(hasattr(v, "value") for v in values)
            ticks = [v.value if ns else _micros(v) for v in values]  # type: ignore[attr-defined]
            arr = (ctypes.c_int64 * len(ticks))(*ticks)
            check(lib().pt_parquet_filter_timestamp(name, _OPS[op], arr, len(ticks), 3 if ns else 2,
                                                    _ref(out), _ref(err)), err)
            return out
        if values and all(isinstance(v, decimal.Decimal) for v in values):
            text = [format(v, "f").encode() for v in values]
            ptrs = (ctypes.c_char_p * len(text))(*text)
            check(lib().pt_parquet_filter_decimal(name, _OPS[op], ptrs, len(text), _ref(out),
                                                  _ref(err)), err)
            return out
        # Dates compare as days since 1970-01-01 (date32's integers).
        values = [(v - _EPOCH).days if isinstance(v, datetime.date)
                  and not isinstance(v, datetime.datetime) else v for v in values]
        kinds = {type(v) for v in values}
        if kinds <= {int} and values and max(values) > 2**63 - 1:
            arr = (ctypes.c_uint64 * len(values))(*values)
            rc = lib().pt_parquet_filter_uint(name, _OPS[op], arr, len(values), _ref(out), _ref(err))
        elif kinds <= {int}:
            arr = (ctypes.c_int64 * max(len(values), 1))(*values)
            rc = lib().pt_parquet_filter_int(name, _OPS[op], arr, len(values), _ref(out), _ref(err))
        elif kinds <= {int, float}:
            arr = (ctypes.c_double * len(values))(*[float(v) for v in values])
            rc = lib().pt_parquet_filter_double(name, _OPS[op], arr, len(values), _ref(out), _ref(err))
        elif kinds <= {str, bytes}:
            raw = [v.encode() if isinstance(v, str) else v for v in values]
            ptrs = (ctypes.c_char_p * len(raw))(*raw)
            lens = (ctypes.c_int64 * len(raw))(*[len(v) for v in raw])
            rc = lib().pt_parquet_filter_bytes(name, _OPS[op], ptrs, lens, len(raw), _ref(out), _ref(err))
        else:
            raise ProtiumError(PT_EINVAL, "filter values must be int, float, str, bytes, date, "
                               f"datetime or Decimal, not {kinds}")
        check(rc, err)
        return out

    @classmethod
    def _build(cls, spec: object) -> ctypes.c_void_p:
        """[(col, op, value), ...] is an AND; [[...], [...]] an OR of ANDs
        (pyarrow's form)."""
        if not isinstance(spec, list) or not spec:
            raise ProtiumError(PT_EINVAL, "filter: a non-empty list of (column, op, value) tuples")
        if all(isinstance(t, list) for t in spec):
            parts = [cls._build(t) for t in spec]
            op = _OR
        else:
            parts = [cls._leaf(*t) for t in spec]
            op = _AND
        acc = parts[0]
        for p in parts[1:]:
            acc = cls._combine(op, acc, p)
        return acc


class _CSchema:
    """A pyarrow schema exported through the C Data Interface, released
    when garbage."""

    def __init__(self, schema: object) -> None:
        from protium.schema import as_schema

        self.c = ArrowSchema()
        as_schema(schema)._export_to_c(ctypes.addressof(self.c))

    def __del__(self) -> None:
        release_schema(self.c)


def _read_options(
    columns: Optional[Sequence[str]], batch_size: int, filter: object = None,
    dictionary: Optional[Sequence[str]] = None, partition_schema: object = None,
) -> tuple[PtParquetReadOptions, object]:
    opts = PtParquetReadOptions()
    lib().pt_parquet_read_options_init(_ref(opts))
    keep: list = []
    if partition_schema is not None:
        ps = _CSchema(partition_schema)
        opts.partition_schema = ctypes.addressof(ps.c)
        keep.append(ps)
    if dictionary:
        dnames = (ctypes.c_char_p * len(dictionary))(*[c.encode() for c in dictionary])
        opts.dictionary = ctypes.cast(dnames, ctypes.POINTER(ctypes.c_char_p))
        opts.n_dictionary = len(dictionary)
        keep.append(dnames)
    if filter is not None:
        f = _Filter(filter)
        opts.filter = f.ptr
        keep.append(f)
    if columns is not None:
        names = (ctypes.c_char_p * max(len(columns), 1))(*[c.encode() for c in columns])
        opts.columns = ctypes.cast(names, ctypes.POINTER(ctypes.c_char_p))
        opts.n_columns = len(columns)
        keep.append(names)
    if batch_size:
        opts.batch_size = batch_size
    return opts, keep


class _ParquetStream(_CStream):
    """A C stream from pt_parquet_read_*: before it is released, its row
    group counts go into `stats` (when given)."""

    def __init__(self, stats: Optional[dict]) -> None:
        super().__init__()
        self.stats = stats

    def close(self) -> None:
        if self.stats is not None and self.c.release:
            read, skipped, err = ctypes.c_int64(), ctypes.c_int64(), PtError()
            if lib().pt_parquet_stream_row_groups(_ref(self.c), _ref(read), _ref(skipped), _ref(err)) == 0:
                self.stats["row_groups_read"] = read.value
                self.stats["row_groups_skipped"] = skipped.value
            if lib().pt_parquet_stream_pages(_ref(self.c), _ref(read), _ref(skipped), _ref(err)) == 0:
                self.stats["pages_read"] = read.value
                self.stats["pages_skipped"] = skipped.value
            if lib().pt_parquet_stream_zero_copy(_ref(self.c), _ref(read), _ref(err)) == 0:
                self.stats["pages_zero_copy"] = read.value
        super().close()


def read_parquet(
    path: PathLike,
    columns: Optional[Sequence[str]] = None,
    *,
    batch_size: int = 0,
    filter: object = None,
    stats: Optional[dict] = None,
    read_dictionary: Optional[Sequence[str]] = None,
    threads: int = 1,
    readahead: bool = True,
) -> pa.RecordBatchReader:
    """Opens a Parquet file with pt_parquet_read_path (memory-mapped) and
    returns its record batches as a pyarrow reader.

    columns: the top-level columns to read, in this order (None: all).
    batch_size: rows per batch at most (0: the library's default, 65536).
    filter: pyarrow-style [(column, op, value), ...] (AND) or a list of such
    lists (OR); ops "=", "!=", "<", "<=", ">", ">=", "in", "not in",
    "is_null", "is_not_null" (a null satisfies neither "!=" nor "not in",
    as in pyarrow). Row groups whose statistics prove no row matches are
    skipped; the rows of the others are returned as they are (filter them
    yourself).
    stats: a dict that gets "row_groups_read" and "row_groups_skipped" once
    the reader is exhausted, and "pages_read" and "pages_skipped" (data
    pages the page index ruled out; their rows are left out too), and
    "pages_zero_copy" (of pages_read, those whose values were handed out
    where they lie in the mapped file, not copied).
    read_dictionary: string or binary columns (paths such as "a.b") to read
    as dictionary arrays, as pyarrow's option of that name; columns written
    from dictionaries are read so anyway.
    threads: threads decoding column chunks at once (1-16): a row group's
    columns are shared out, or several row groups when the columns are fewer
    than the threads.
    readahead: with threads=1, decode the next row group on one more thread
    while this one is decoded, as pyarrow's read_table(use_threads=False)
    does (memory: two row groups); False: everything on the calling thread.
    """
    opts, _keep = _read_options(columns, batch_size, filter, read_dictionary)
    opts.threads = threads
    opts.no_readahead = int(not readahead)
    stream, err = _ParquetStream(stats), PtError()
    check(lib().pt_parquet_read_path(os.fsencode(path), _ref(opts), _ref(stream.c), _ref(err)), err)
    return _reader(stream)


def read_parquet_buffer(
    data: Union[bytes, bytearray, memoryview, pa.Buffer],
    columns: Optional[Sequence[str]] = None,
    *,
    batch_size: int = 0,
    threads: int = 1,
    readahead: bool = True,
) -> pa.RecordBatchReader:
    """Reads a whole Parquet file held in memory (pt_parquet_read_buffer).
    The bytes are copied once into memory the C stream owns and frees.
    threads, readahead: as read_parquet's."""
    buf = pa.py_buffer(data)
    mem = libc().malloc(max(buf.size, 1))
    if not mem:
        raise MemoryError(f"cannot allocate {buf.size} bytes for a Parquet buffer")
    ctypes.memmove(mem, buf.address, buf.size)
    free_data = ctypes.cast(libc().free, FREE_DATA_FN)
    opts, _keep = _read_options(columns, batch_size)
    opts.threads = threads
    opts.no_readahead = int(not readahead)
    stream, err = _CStream(), PtError()
    rc = lib().pt_parquet_read_buffer(
        mem, buf.size, free_data, None, _ref(opts), _ref(stream.c), _ref(err)
    )
    if rc != 0:
        libc().free(mem)
    check(rc, err)
    return _reader(stream)


def _write_options(
    codec: str,
    compression_level: int,
    row_group_rows: int,
    page_bytes: int,
    dictionary_page_bytes: int,
    use_dictionary: bool,
    data_page_version: int,
    write_statistics: bool,
    store_arrow_schema: bool,
    threads: int = 1,
) -> PtParquetWriteOptions:
    if codec not in CODECS:
        raise ProtiumError(PT_EINVAL, f"unknown codec {codec!r}; use one of {sorted(CODECS)}")
    opts = PtParquetWriteOptions()
    lib().pt_parquet_write_options_init(_ref(opts))
    opts.codec = CODECS[codec]
    opts.compression_level = compression_level
    if row_group_rows:
        opts.row_group_rows = row_group_rows
    if page_bytes:
        opts.page_bytes = page_bytes
    if dictionary_page_bytes:
        opts.dictionary_page_bytes = dictionary_page_bytes
    opts.use_dictionary = int(use_dictionary)
    opts.data_page_version = data_page_version
    opts.write_statistics = int(write_statistics)
    opts.store_arrow_schema = int(store_arrow_schema)
    opts.threads = threads
    return opts


def _set_metadata(opts: PtParquetWriteOptions, metadata: Optional[Mapping[object, object]]) -> tuple:
    """Points opts at metadata's pairs (str or bytes); the returned arrays
    must stay alive while opts is used."""
    if not metadata:
        return ()
    def raw(x: object) -> bytes:
        b = x if isinstance(x, bytes) else str(x).encode()
        if b"\0" in b:
            raise ProtiumError(PT_EINVAL, "write_parquet: metadata keys and values cannot hold NUL")
        return b
    keys = (ctypes.c_char_p * len(metadata))(*[raw(k) for k in metadata])
    values = (ctypes.c_char_p * len(metadata))(*[raw(v) for v in metadata.values()])
    opts.metadata_keys = ctypes.cast(keys, ctypes.POINTER(ctypes.c_char_p))
    opts.metadata_values = ctypes.cast(values, ctypes.POINTER(ctypes.c_char_p))
    opts.n_metadata = len(metadata)
    return (keys, values)


def _write(data: object, path: Optional[PathLike], metadata: Optional[Mapping[object, object]] = None,
           **kw) -> Optional[bytes]:
    data = _as_ipc_data(data)
    opts = _write_options(**kw)
    keep = _set_metadata(opts, metadata)
    writer, err, buf = ctypes.c_void_p(), PtError(), PtBuf()
    with _exported_schema(data.schema) as s:
        if path is None:
            rc = lib().pt_parquet_writer_open_buf(
                ctypes.addressof(buf), _ref(s), _ref(opts), _ref(writer), _ref(err)
            )
        else:
            rc = lib().pt_parquet_writer_open_path(
                os.fsencode(path), _ref(s), _ref(opts), _ref(writer), _ref(err)
            )
        check(rc, err)
    try:
        batches = data.to_batches() if isinstance(data, pa.Table) else data
        if isinstance(batches, pa.RecordBatch):
            batches = [batches]
        for batch in batches:
            with _exported_array(batch, with_schema=False) as (_, a):
                check(lib().pt_parquet_writer_write(writer, _ref(a), _ref(err)), err)
        check(lib().pt_parquet_writer_close(writer, _ref(err)), err)
        if path is not None:
            return None
        return ctypes.string_at(buf.data, buf.len) if buf.len else b""
    finally:
        lib().pt_parquet_writer_free(writer)
        lib().pt_buf_free(ctypes.addressof(buf))
        del keep


def write_parquet(
    data: object,
    path: PathLike,
    *,
    codec: str = "snappy",
    compression_level: int = 0,
    row_group_rows: int = 0,
    page_bytes: int = 0,
    dictionary_page_bytes: int = 0,
    use_dictionary: bool = True,
    data_page_version: int = 1,
    write_statistics: bool = True,
    store_arrow_schema: bool = True,
    threads: int = 1,
    metadata: Optional[Mapping[object, object]] = None,
) -> None:
    """Writes a pyarrow Table, RecordBatch or RecordBatchReader to path as
    Parquet (pt_parquet_writer_*). codec: "snappy" (default), "zstd", "gzip",
    "brotli", "lz4_raw" or "none"; 0 for the sizes means the library's
    default (row groups of 1048576 rows, 1 MiB pages and dictionaries).
    threads: how many threads encode the column chunks at once (1 to 16);
    the file is the same bytes whatever the number. The schema's metadata
    goes to the footer's key-value metadata (with or without
    store_arrow_schema); metadata: extra pairs for it (str or bytes), which
    win over a schema pair of the same key."""
    _write(
        data, path, metadata=metadata, codec=codec, compression_level=compression_level,
        row_group_rows=row_group_rows, page_bytes=page_bytes,
        dictionary_page_bytes=dictionary_page_bytes, use_dictionary=use_dictionary,
        data_page_version=data_page_version, write_statistics=write_statistics,
        store_arrow_schema=store_arrow_schema, threads=threads,
    )


def write_parquet_buffer(data: object, **kw) -> bytes:
    """Like write_parquet, into memory; returns the file's bytes."""
    defaults = dict(
        codec="snappy", compression_level=0, row_group_rows=0, page_bytes=0,
        dictionary_page_bytes=0, use_dictionary=True, data_page_version=1,
        write_statistics=True, store_arrow_schema=True, threads=1,
    )
    defaults.update(kw)
    out = _write(data, None, **defaults)
    assert out is not None
    return out


def scan_info(ds_handle: object) -> dict[str, int]:
    """pt_parquet_scan_info of a dataset handle, as a dict."""
    out, err = (ctypes.c_int64 * 5)(), PtError()
    check(lib().pt_parquet_scan_info(ds_handle, _ref(out), _ref(err)), err)
    keys = ("files", "files_pruned", "directories_pruned", "row_groups", "row_groups_skipped")
    return dict(zip(keys, out))
