"""_worker.py — what runs a Python function inside an executor: the C
callback (a pt_partition_fn) registered under a fixed name in every process
of a Python session, and the plans it runs: a stage's Python functions
composed into one pipeline over the partition's batches.

Each batch of the partition's input stream is handed to pyarrow in place
(imported with the C Data Interface, the engine's buffers, no copy), so the
functions see the executor's own memory; results go back the same way
(exported by pyarrow, emitted with pt_ctx_emit, owned by the engine until
it releases them). A plan is unpickled once per executor and kept.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import traceback
import weakref
from typing import Any, Iterator, Optional

import pyarrow as pa

from protium import _lib
from protium._lib import PT_EINVAL, ArrowArray, PtError

PARTITION_NAME = b"protium.python_partition"

# Room for our part of a failure message: the driver's context ("job 1
# failed: stage 0 partition 3 failed 4 times; last error: map '...': ")
# comes before it in a pt_error of 1024 bytes.
_MESSAGE_BUDGET = 820
# The first cause of a failed barrier stage keeps 700 bytes, after
# "partition 0 failed: map_partitions 'protium.python_partition': ".
_BARRIER_BUDGET = 620
TRACEBACK_MARK = "Traceback (most recent call last, trimmed to fit):"


class ResultError(Exception):
    """A user function returned what its declaration does not allow."""


_plans: dict[bytes, dict[str, Any]] = {}


def _plan(arg: int, size: int) -> dict[str, Any]:
    key = ctypes.string_at(arg, size)
    plan = _plans.get(key)
    if plan is None:
        import cloudpickle

        plan = cloudpickle.loads(key)
        _plans[key] = plan
    return plan


def _fail(err_p: Any, text: str) -> int:
    data = text.encode("utf-8", "replace")[: _lib.PT_ERROR_SIZE - 1]
    base = ctypes.addressof(err_p.contents) + PtError.message.offset
    ctypes.memmove(base, data + b"\0", len(data) + 1)
    err_p.contents.code = PT_EINVAL
    return PT_EINVAL


def _describe(exc: BaseException, room: int = _MESSAGE_BUDGET) -> str:
    """The exception first (it must survive truncation), then as much of the
    end of its traceback as fits in room bytes."""
    head = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, ResultError):
        return head[:room]
    head = head[:room // 2]
    frames = _user_frames(exc)
    budget = room - len(head) - len(TRACEBACK_MARK) - 2
    kept: list[str] = []
    for frame in reversed(frames):
        if budget - len(frame) < 0:
            break
        kept.insert(0, frame)
        budget -= len(frame)
    return f"{head}\n{TRACEBACK_MARK}\n{''.join(kept)}".rstrip()


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_frames(exc: BaseException) -> list[str]:
    """The traceback's frames without this package's own (the worker and
    run()'s rank wrapper around the user's function), unless nothing else
    is left: the room in the message is for the user's code."""
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if not f.filename.startswith(_PACKAGE_DIR)]
    return traceback.format_list(user or frames)


def _check_batch(value: object, schema: pa.Schema, what: str) -> pa.RecordBatch:
    if isinstance(value, pa.Table):
        parts = value.combine_chunks().to_batches()
        value = parts[0] if parts else pa.RecordBatch.from_pylist([], value.schema)
    if not isinstance(value, pa.RecordBatch):
        raise ResultError(f"{what}: the function must yield pyarrow.RecordBatch, "
                          f"got {type(value).__name__}")
    if value.schema.types != schema.types or value.schema.names != schema.names:
        raise ResultError(f"{what}: the function returned schema ({_short(value.schema)}), "
                          f"expected ({_short(schema)})")
    if value.schema != schema:  # same types, other nullability or metadata
        value = pa.RecordBatch.from_arrays(value.columns, schema=schema)
    return value


def _short(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name} {f.type}" for f in schema)


_copy_on_write: Optional[bool] = None


def _cow() -> bool:
    """Whether pandas copies on write (pandas 3, or 2 with the option on):
    only then can a function get DataFrames over the engine's read-only
    buffers without a write into them failing."""
    global _copy_on_write
    if _copy_on_write is None:
        import pandas as pd

        _copy_on_write = (int(pd.__version__.split(".")[0]) >= 3
                          or pd.options.mode.copy_on_write is True)
    return _copy_on_write


def _to_pandas(data: Any) -> Any:
    """A batch as a DataFrame (an array as a Series) over the batch's own
    buffers where the type allows, as the function will see it.

    pyarrow's default gathers same-typed columns into one 2-D block, a copy
    (1.5 ms of a 2-column 1M-row batch against 0.06 ms with split_blocks).
    The zero-copy columns are read-only, and pandas writes in place into
    data nothing else references, so the function gets a shallow copy and
    the original lives exactly as long as that copy (_held): every write
    into the function's frame (df.loc[...] = ..., fillna(inplace=True))
    copies first, and a frame the function has let go of frees its batch
    at once instead of at the end of the partition. Without copy-on-write
    pandas would write through the shallow copy, so there it gets
    pyarrow's copy."""
    if not _cow():
        return data.to_pandas()
    if isinstance(data, pa.RecordBatch):
        made = _numeric_frame(data)
        if made is not None:
            base, origins = made
        else:
            base = data.to_pandas(split_blocks=True)
            origins = [(_address(c), c) for c in data.columns
                       if _plain(c.type) and c.null_count == 0 and len(c) > 0]
    else:
        base = data.to_pandas()
        origins = ([(_address(data), data)]
                   if _plain(data.type) and data.null_count == 0 and len(data) > 0 else [])
    # copy(deep=False) gives the function views of both axes, so a name it
    # sets on them stays in its frame (base may share kept ones: _layout)
    view = base.copy(deep=False)
    if origins:
        with _origins_lock:
            _origins.update(origins)
    ref = weakref.ref(view, _forget)
    _held[id(ref)] = (ref, base, origins)
    return view


def _plain(typ: pa.DataType) -> bool:
    """Whether pandas gets a column of this type as a numpy view of its
    values (without nulls): integers and float32/64."""
    return pa.types.is_integer(typ) or pa.types.is_float32(typ) or pa.types.is_float64(typ)


# The columns of the batches handed to pandas functions that pandas sees
# in place, by the address of their first value, while a frame of them is
# alive: a column that comes back at that address is the engine's array,
# unchanged (it is read-only), and goes back as it is. Without this, every
# float column passed through is read once more for NaN, which for a column
# the function never touched is most of the exchange's cost.
_origins: dict[int, pa.Array] = {}
_origins_lock = threading.Lock()

# What each frame handed to a function keeps alive until it dies, by the
# id of a weak reference to it (frames are not hashable): the reference,
# the frame it is a shallow copy of, and the origins it registered. (A
# plain weakref with a callback: weakref.finalize does the same at several
# times the cost, with bookkeeping for the interpreter's exit.)
_held: dict[int, tuple[Any, Any, list[tuple[int, pa.Array]]]] = {}


def _address(column: pa.Array) -> int:
    """The address of a fixed-width column's first value."""
    return column.buffers()[1].address + column.offset * (column.type.bit_width // 8)


def _forget(ref: Any) -> None:
    """What the weak reference calls when the function's frame dies: the
    original frame is let go; its columns are forgotten unless another
    frame has registered the same memory since."""
    _, _, origins = _held.pop(id(ref))
    if origins:
        with _origins_lock:
            for address, column in origins:
                if _origins.get(address) is column:
                    del _origins[address]


# How _numeric_frame builds the frames of a schema: (its column index,
# each column's block placement), or None where pyarrow's conversion is
# needed; for the last schemas seen, most recent first. A batch's schema is
# found with Schema.equals, which for the batches of one stream is a
# pointer comparison (~0.05 us, against ~1 us to build a key of its names).
_layouts: list[tuple[pa.Schema, Optional[tuple[Any, list[Any]]]]] = []
_create_frame: Any = None  # pandas.api.internals.create_dataframe_from_blocks, or False


def _layout(schema: pa.Schema) -> Optional[tuple[Any, list[Any]]]:
    for s, layout in _layouts:
        if s.equals(schema, check_metadata=True):
            return layout
    import numpy as np
    import pandas as pd

    names = schema.names
    layout = None
    if (not (schema.metadata and b"pandas" in schema.metadata)
            and all(_plain(t) for t in schema.types) and len(set(names)) == len(names)):
        layout = (pd.Index(names), [np.array([i]) for i in range(len(names))])
    if len(_layouts) >= 16:  # a long-lived executor's many schemas
        del _layouts[-1]
    _layouts.insert(0, (schema, layout))
    return layout


def _numeric_frame(batch: pa.RecordBatch) -> Optional[tuple[Any, list[tuple[int, pa.Array]]]]:
    """The DataFrame to_pandas(split_blocks=True) makes of a batch of
    integer and float columns without nulls, built from the numpy views
    directly (pandas.api.internals, as pyarrow itself builds it), with the
    origins of its columns (address, array): about a fifth of pyarrow's
    time, most of which is the column index made again for each batch.
    None where another type, nulls, pandas metadata or repeated names need
    pyarrow's conversion. The index of names is kept per schema and
    shared by these frames, which only _to_pandas holds: the function gets
    a view of it (a name set on one frame's columns stays in that frame)."""
    global _create_frame
    if _create_frame is None:
        try:
            from pandas.api.internals import create_dataframe_from_blocks
            _create_frame = create_dataframe_from_blocks
        except ImportError:  # pandas < 2.3
            _create_frame = False
    if not _create_frame:
        return None
    layout = _layout(batch.schema)
    if layout is None:
        return None
    columns = batch.columns
    for c in columns:
        if c.null_count:
            return None
    import pandas as pd

    index, placements = layout
    n = batch.num_rows
    frame = _create_frame([(c.to_numpy().reshape(1, -1), p) for c, p in zip(columns, placements)],
                          index=pd.RangeIndex(n), columns=index)
    return frame, ([(_address(c), c) for c in columns] if n else [])


def _series_to_arrow(series: Any, typ: pa.DataType) -> pa.Array:
    """One column of a returned DataFrame (or a returned Series) as `typ`,
    as RecordBatch.from_pandas converts it (NaN is null) but without its
    copy where none is needed (_numpy_to_arrow)."""
    import numpy as np

    dtype = series.dtype
    if isinstance(dtype, np.dtype):
        value = _numpy_to_arrow(series.to_numpy(), typ)
        if value is not None:
            return value
    value = pa.array(series, type=typ, from_pandas=True)
    if isinstance(value, pa.ChunkedArray):
        # a column pandas holds in pyarrow (pandas 3's strings) comes as
        # it is held; an empty one has no chunk at all
        value = value.combine_chunks()
    return value


def _numpy_to_arrow(values: Any, typ: pa.DataType, want: Any = None) -> Optional[pa.Array]:
    """A column's numpy values as `typ` without a copy, or None where
    pyarrow's conversion is needed: a column the function got and hands
    back unchanged is the engine's array (_origins), integers and booleans
    of the very type are taken as they are, floats too when they hold no
    NaN. pyarrow's NaN scan builds a bitmap and copies (~2 ms per million
    values); numpy's min, which NaN propagates through, tells that there is
    none in ~0.1 ms. want: the numpy dtype of typ where the caller knows it
    (_out_layout), saving the comparison of Arrow types."""
    dtype = values.dtype
    if want is not None:
        if dtype != want:
            return None
    elif dtype.kind not in "biuf" or not dtype.isnative or pa.from_numpy_dtype(dtype) != typ:
        return None
    n = values.size
    if n and not values.flags.writeable and values.strides == (dtype.itemsize,):
        # the address through the buffer protocol: ~0.15 us, against ~0.9
        # for __array_interface__, which builds a dict
        origin = _origins.get(pa.py_buffer(values).address)
        if origin is not None and len(origin) >= n and origin.type == typ:
            return origin if len(origin) == n else origin.slice(0, n)
    if dtype.kind != "f" or n == 0:
        return pa.array(values, type=typ)
    low = values.min()
    if low == low:  # not NaN
        return pa.array(values, type=typ)
    return None


# Per output schema of a pandas step (the same object for every batch):
# its names, types, for the types _numpy_to_arrow takes as they are the
# native numpy dtype (else None), and whether its names are all different.
_out_layouts: dict[int, tuple[pa.Schema, list[str], list[pa.DataType], list[Any], bool]] = {}


def _out_layout(schema: pa.Schema
                ) -> tuple[pa.Schema, list[str], list[pa.DataType], list[Any], bool]:
    layout = _out_layouts.get(id(schema))
    if layout is None or layout[0] is not schema:
        import numpy as np

        names, types = schema.names, schema.types
        wants: list[Any] = []
        for t in types:
            ok = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
            wants.append(np.dtype(t.to_pandas_dtype()) if ok else None)
        if len(_out_layouts) >= 256:  # a long-lived executor's many schemas
            _out_layouts.clear()
        layout = (schema, names, types, wants, len(set(names)) == len(names))
        _out_layouts[id(schema)] = layout
    return layout


def _column_arrays(df: Any) -> Optional[list[Any]]:
    """The frame's columns as the arrays pandas holds (numpy arrays or
    extension arrays), read-only as Series.to_numpy() gives them, without
    a Series per column (~25 us each with pandas 3); None where this
    pandas has no DataFrame._iter_column_arrays."""
    import numpy as np

    walk = getattr(df, "_iter_column_arrays", None)
    if walk is None:
        return None
    arrays = []
    for a in walk():
        if isinstance(a, np.ndarray) and a.flags.writeable:
            a = a.view()
            a.flags.writeable = False  # what pyarrow wraps, nobody writes through
        arrays.append(a)
    return arrays


def _from_pandas(df: object, schema: pa.Schema, what: str) -> pa.RecordBatch:
    import numpy as np
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ResultError(f"{what}: the function must yield pandas.DataFrame, "
                          f"got {type(df).__name__}")
    # The columns by position: a lookup by name builds the column index's
    # hash table, for each new frame (~50 us of a 3-column frame with
    # pandas 3's string labels). list() rather than tolist(): the same
    # labels, ~2.4 us against ~3.7 us for pandas 3's string index.
    names = list(df.columns)
    _, out_names, out_types, wants, unique = _out_layout(schema)
    if names == out_names:  # the usual case: the declared columns in order
        where: Any = range(len(names))
    else:
        by_name = {n: i for i, n in enumerate(names)}
        missing = [n for n in out_names if n not in by_name]
        if missing:
            raise ResultError(f"{what}: the DataFrame it returned has columns {names}, "
                              f"expected {out_names} (missing {missing})")
        unique = len(by_name) == len(names)
        where = [by_name[n] for n in out_names]
    try:
        if unique and _cow():
            arrays = _column_arrays(df)
            columns = []
            for i, typ, want in zip(where, out_types, wants):
                a = arrays[i] if arrays is not None else None
                value = (_numpy_to_arrow(a, typ, want)
                         if want is not None and isinstance(a, np.ndarray) else None)
                columns.append(value if value is not None else
                               _series_to_arrow(df.iloc[:, i], typ))
            return pa.RecordBatch.from_arrays(columns, schema=schema)
        return pa.RecordBatch.from_pandas(df[schema.names], schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise ResultError(f"{what}: the DataFrame it returned does not convert to "
                          f"({_short(schema)}): {e}") from None


def _one(batches: list[pa.RecordBatch], schema: pa.Schema) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    if not batches:
        return pa.RecordBatch.from_pylist([], schema)
    return pa.concat_batches(batches)


def _inputs(plan: dict[str, Any], batch: pa.RecordBatch) -> list[Any]:
    """What a with_column / filter function receives: the batch as a whole
    or one value per named column, as pandas or arrow."""
    cols = plan["columns"]
    pandas = plan["kind"].endswith("pandas")
    if cols is None:
        return [_to_pandas(batch) if pandas else batch]
    arrays = [batch.column(c) for c in cols]
    return [_to_pandas(a) for a in arrays] if pandas else arrays


def _as_array(value: object, typ: Optional[pa.DataType], length: int, what: str) -> pa.Array:
    try:
        if isinstance(value, pa.ChunkedArray):
            value = value.combine_chunks()
        pd = sys.modules.get("pandas")  # a Series needs pandas imported
        if typ is not None and pd is not None and isinstance(value, pd.Series):
            value = _series_to_arrow(value, typ)
        if not isinstance(value, pa.Array):
            value = pa.array(value, type=typ, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
        raise ResultError(f"{what}: the value it returned ({type(value).__name__}) does not "
                          f"convert to {typ}: {e}") from None
    if typ is not None and value.type != typ:
        raise ResultError(f"{what}: the function returned {value.type}, expected {typ}")
    if len(value) != length:
        raise ResultError(f"{what}: the function returned {len(value)} values for "
                          f"{length} rows; it must return one per row")
    return value


class _NotARow(Exception):
    """What the row loop raises when a result cannot give a column: the
    result and the error, for the message."""

    def __init__(self, row: object, error: BaseException) -> None:
        super().__init__(row, error)
        self.row, self.error = row, error


_row_loops: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}


def _row_loop(names: tuple[str, ...], out: tuple[str, ...]) -> Any:
    """The Python loop of map_rows for these input and output columns
    (where libprotium_rows.so is not there), compiled once: each row's dict
    is a dict display, fn is called, and each output value is appended to
    its column at once, all inside one function. Names enter the source as
    repr() literals, never as code. The try around the appends costs
    nothing until it catches; a tuple or list result is taken apart there,
    by position (a dict's lookup by name fails on it first)."""
    key = (names, out)
    loop = _row_loops.get(key)
    if loop is None:
        params = ", ".join(f"_{i}" for i in range(len(names)))
        display = "{" + ", ".join(f"{n!r}: _{i}" for i, n in enumerate(names)) + "}"
        if names:
            head = "for _0 in cols[0]:" if len(names) == 1 else f"for {params} in zip(*cols):"
        else:
            head = "for _ in range(n):"
        take = [f"            a{j}(r[{n!r}])" for j, n in enumerate(out)]
        by_position = [f"            a{j}(r[{j}])" for j in range(len(out))]
        lines = ["def loop(fn, cols, n):",
                 f"    outs = [[] for _ in range({len(out)})]",
                 *(f"    a{j} = outs[{j}].append" for j in range(len(out))),
                 f"    {head}",
                 f"        r = fn({display})",
                 *(["        try:", *take,
                    "        except (TypeError, KeyError, IndexError) as e:",
                    "            if type(r) is not tuple and type(r) is not list:",
                    "                raise NotARow(r, e) from None",
                    f"            if len(r) != {len(out)}:",
                    "                raise NotARow(r, IndexError(f'a {type(r).__name__} of "
                    f"{{len(r)}} values for {len(out)} columns')) from None",
                    *by_position] if out else []),
                 "    return outs"]
        scope: dict[str, Any] = {"NotARow": _NotARow}
        exec(compile("\n".join(lines), "<protium map_rows>", "exec"), scope)  # noqa: S102
        loop = scope["loop"]
        _row_loops[key] = loop
    return loop


# Rows per pass of the row loop: a million-row batch at once builds a
# million Python values per column before the first is freed (page faults,
# cache misses); 16,384 at a time reuse the same memory (CPU time per 1M
# rows measured 255 ms at once, 235 ms at 65,536, 207 ms at 16,384).
_ROW_CHUNK = 16384

# The column types libprotium_rows.so reads from the Arrow buffers itself
# (others come as to_pylist() lists) and writes into typed buffers (others
# go back as lists, which pyarrow converts); the codes of src/pyext/rows.c.
_ROWS_IN = {pa.int8(): 1, pa.int16(): 2, pa.int32(): 3, pa.int64(): 4, pa.uint8(): 5,
            pa.uint16(): 6, pa.uint32(): 7, pa.uint64(): 8, pa.float32(): 9,
            pa.float64(): 10, pa.bool_(): 11}
_ROWS_OUT = {pa.int8(): (1, "int8"), pa.int16(): (2, "int16"), pa.int32(): (3, "int32"),
             pa.int64(): (4, "int64"), pa.uint8(): (5, "uint8"), pa.uint16(): (6, "uint16"),
             pa.uint32(): (7, "uint32"), pa.uint64(): (8, "uint64"),
             pa.float64(): (9, "float64"), pa.bool_(): (10, "uint8")}

_rows_c: Any = None


def _rows_lib() -> Any:
    """pt_rows_run of libprotium_rows.so (beside libprotium.so), or False
    where it is missing, built for another Python, or PT_PY_ROWS=python
    asks for the Python loop (to compare the two)."""
    global _rows_c
    if _rows_c is None:
        _rows_c = False
        path = _lib.library_path().parent / "libprotium_rows.so"
        if os.environ.get("PT_PY_ROWS") != "python" and path.exists():
            dll = ctypes.PyDLL(str(path))
            dll.pt_rows_abi.restype = ctypes.c_ulong
            if dll.pt_rows_abi() >> 16 == sys.hexversion >> 16:
                run = dll.pt_rows_run
                run.restype = ctypes.py_object
                run.argtypes = [ctypes.py_object] * 6 + [ctypes.c_ssize_t]
                _rows_c = run
    return _rows_c


def _row_inputs(part: pa.RecordBatch) -> tuple[Any, ...]:
    """What pt_rows_run reads each input column from: its buffers (kind,
    address of the values, of the validity bitmap or 0, offset), or the
    list of its Python values."""
    specs: list[Any] = []
    for c in part.columns:
        kind = _ROWS_IN.get(c.type)
        if kind is None or len(c) == 0:
            specs.append(c.to_pylist())
            continue
        validity, data = c.buffers()[:2]
        specs.append((kind, data.address,
                      validity.address if validity is not None and c.null_count else 0,
                      c.offset))
    return tuple(specs)


def _rows_not_a_row(e: _NotARow, out: pa.Schema, what: str) -> ResultError:
    if type(e.row) in (tuple, list) or isinstance(e.row, dict):
        return ResultError(f"{what}: the rows it returned do not fit "
                           f"({_short(out)}): {type(e.error).__name__}: {e.error}")
    return ResultError(f"{what}: the function must return a dict, tuple or list per row, "
                       f"got {type(e.row).__name__}")


def _rows(fn: Any, batch: pa.RecordBatch, out: pa.Schema, what: str) -> pa.RecordBatch:
    """Row at a time, by chunks of _ROW_CHUNK rows: libprotium_rows.so's
    loop (values read from the buffers, written into typed columns) or
    the compiled Python loop over to_pylist() lists; pyarrow converts the
    columns of other types, with the declared types. fn may return a dict
    by column name, or a tuple or list in the schema's order."""
    run = _rows_lib()
    n = batch.num_rows
    # interned, as the literals of the function's code are: a dict lookup
    # of "x" then finds the key by identity, not by comparing the strings
    names = tuple(sys.intern(n) for n in batch.schema.names)
    outs = tuple(sys.intern(n) for n in out.names)
    typed: list[Any] = [None] * len(out)  # per output column: (values, null mask) or None
    if run:
        import numpy as np

        # from pyarrow's pool, which keeps freed memory for the next batch
        # (fresh pages from the kernel cost a fault each)
        for j, f in enumerate(out):
            spec = _ROWS_OUT.get(f.type)
            if spec:
                data = pa.allocate_buffer(n * np.dtype(spec[1]).itemsize)
                mask = pa.allocate_buffer(n)
                typed[j] = (data, np.frombuffer(data, spec[1]), np.frombuffer(mask, np.uint8))
    loop = None if run else _row_loop(names, outs)
    chunks: list[list[Any]] = [[] for _ in out]  # pieces: pa.Array, or (start, end) typed
    for start in range(0, max(n, 1), _ROW_CHUNK):
        part = batch.slice(start, _ROW_CHUNK) if n > _ROW_CHUNK else batch
        rows = part.num_rows
        try:
            if run:
                specs = tuple(None if t is None else
                              (_ROWS_OUT[f.type][0], t[1].ctypes.data + start * t[1].itemsize,
                               t[2].ctypes.data + start)
                              for t, f in zip(typed, out))
                values = run(fn, names, _row_inputs(part), outs, specs, _NotARow, rows)
            else:
                values = loop(fn, [c.to_pylist() for c in part.columns], rows)
        except _NotARow as e:
            raise _rows_not_a_row(e, out, what) from None
        try:
            for column, v, f in zip(chunks, values, out):
                column.append((start, start + rows) if v is None else pa.array(v, type=f.type))
        except (TypeError, pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise ResultError(f"{what}: the rows it returned do not fit "
                              f"({_short(out)}): {type(e).__name__}: {e}") from None
    columns = []
    for pieces, t, f in zip(chunks, typed, out):
        if t is not None:
            whole = _typed_array(t, f.type, n)
            if all(isinstance(p, tuple) for p in pieces):
                pieces = [whole]
            else:
                pieces = [whole.slice(p[0], p[1] - p[0]) if isinstance(p, tuple) else p
                          for p in pieces]
        columns.append(pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces))
    return pa.RecordBatch.from_arrays(columns, schema=out)


def _typed_array(t: Any, typ: pa.DataType, n: int) -> pa.Array:
    """The column pt_rows_run wrote: (data buffer, its values, null mask
    of one byte per row). Rows of chunks that went to pyarrow as lists
    are never read from it (the caller slices around them)."""
    import numpy as np

    data, values, mask = t
    validity = None
    if mask.any():
        validity = pa.py_buffer(np.packbits(mask == 0, bitorder="little"))
    if typ == pa.bool_():
        data = pa.py_buffer(np.packbits(values.view(np.bool_), bitorder="little"))
    return pa.Array.from_buffers(typ, n, [validity, data])


def _pieces(plan: dict[str, Any], batch: pa.RecordBatch) -> list[pa.RecordBatch]:
    """The batch cut to arrow.max_records_per_batch rows and about
    arrow.max_bytes_per_batch bytes: slices share its buffers, nothing is
    copied. The byte limit assumes rows of even size (the batch's average)."""
    n = batch.num_rows
    step = n
    max_records, max_bytes = plan.get("max_records", 0), plan.get("max_bytes", 0)
    if max_records > 0:
        step = min(step, max_records)
    if max_bytes > 0 and n > 0:
        step = min(step, max(1, int(max_bytes * n // max(batch.nbytes, 1))))
    if step >= n:
        return [batch]
    return [batch.slice(i, step) for i in range(0, n, step)]


def run_map(plan: dict[str, Any], batch: pa.RecordBatch) -> pa.RecordBatch:
    """One batch through a with_column or map_rows function, called once
    per piece of the batch (map_in_* functions are run_step's)."""
    kind, fn, out = plan["kind"], plan["fn"], plan["out_schema"]
    what = plan["what"]
    pieces = _pieces(plan, batch)
    if len(pieces) > 1:
        whole = dict(plan, max_records=0, max_bytes=0)  # each piece as it is
        return _one([run_map(whole, p) for p in pieces], out)
    if kind == "rows":
        return _rows(fn, batch, out, what)
    if kind in ("column_pandas", "column_arrow"):
        typ = out.field(plan["name"]).type
        value = _as_array(fn(*_inputs(plan, batch)), typ, batch.num_rows, what)
        columns = [batch.column(i) for i in range(batch.num_columns)
                   if batch.schema.names[i] != plan["name"]]
        return pa.RecordBatch.from_arrays(columns + [value], schema=out)
    raise ResultError(f"unknown plan kind {kind!r}")


_pinned: set[int] = set()


def _pin_thread_state() -> None:
    """The executor's threads are not Python's: each ctypes callback made a
    thread state and dropped it again (PyGILState_Ensure/Release). Taking
    one more reference, once per thread, keeps it for the thread's life."""
    ident = threading.get_ident()
    if ident not in _pinned:
        ctypes.pythonapi.PyGILState_Ensure()
        _pinned.add(ident)


def run_filter(plan: dict[str, Any], batch: pa.RecordBatch) -> pa.Array:
    """The boolean mask of a filter: null counts as false."""
    pieces = _pieces(plan, batch)
    if len(pieces) > 1:
        whole = dict(plan, max_records=0, max_bytes=0)
        return pa.concat_arrays([run_filter(whole, p) for p in pieces])
    value = _as_array(plan["fn"](*_inputs(plan, batch)), None, batch.num_rows,
                      plan["what"])
    if value.type != pa.bool_():
        raise ResultError(f"{plan['what']}: the predicate returned {value.type}, "
                          "expected bool (one per row)")
    import pyarrow.compute as pc

    return pc.fill_null(value, False)


def _stream_batches(stream_p: Any, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """The batches of a partition function's input stream (borrowed from
    the engine); each array get_next hands over is ours, imported as is."""
    stream = stream_p.contents
    while True:
        arr = ArrowArray()
        rc = stream.get_next(stream_p, ctypes.byref(arr))
        if rc != 0:
            why = stream.get_last_error(stream_p)
            raise _lib.ProtiumError(_lib.status_from_errno(rc),
                                    (why or b"reading the partition failed").decode())
        if not arr.release:
            return
        yield pa.RecordBatch._import_from_c(ctypes.addressof(arr), schema)


def run_grouped(plan: dict[str, Any], batches: Iterator[pa.RecordBatch]
                ) -> Iterator[pa.RecordBatch]:
    """A whole partition, one call of fn per key: equal keys share a
    partition after the shuffle by the keys."""
    out, what, keys = plan["out_schema"], plan["what"], plan["keys"]
    table = pa.Table.from_batches(list(batches), plan["in_schema"])
    if table.num_rows == 0:
        return
    for _, group in table.to_pandas().groupby(keys, sort=False, dropna=False):
        yield _from_pandas(plan["fn"](group), out, what)


def _sliced(plan: dict[str, Any], batches: Iterator[pa.RecordBatch]
            ) -> Iterator[pa.RecordBatch]:
    """The batches cut as _pieces cuts them; the batches themselves where
    no limit is set (the default), without a generator to pass through."""
    if plan.get("max_records", 0) <= 0 and plan.get("max_bytes", 0) <= 0:
        return batches
    return (piece for batch in batches for piece in _pieces(plan, batch))


def _pandas_results(frames: Iterator[Any], out: pa.Schema, what: str
                    ) -> Iterator[pa.RecordBatch]:
    """The function's DataFrames as batches, holding neither a frame nor
    a batch while the function makes the next: a new column per batch
    (x + 1) then reuses the memory of the last one. Held, it made malloc
    take fresh pages for each, faulted in (and zeroed by the kernel) on
    first write: ~130 faults per 1M-row batch of x + 1, against ~12."""
    for df in frames:
        batch = _from_pandas(df, out, what)
        del df
        yield batch
        del batch


def run_step(plan: dict[str, Any], batches: Iterator[pa.RecordBatch]
             ) -> Iterator[pa.RecordBatch]:
    """One step of a stage's Python pipeline over the partition's batches.
    map_in_* functions and partition functions are called once per
    partition with an iterator (state they build lasts the partition);
    with_column, filter and map_rows once per batch (or slice of one)."""
    kind, what = plan["kind"], plan["what"]
    if kind == "grouped_pandas":
        return run_grouped(plan, batches)
    if kind == "train":
        from protium import distributed

        return distributed._rank_main(plan, batches)
    out = plan["out_schema"]
    if kind == "arrow":
        return (_check_batch(b, out, what) for b in plan["fn"](_sliced(plan, batches)))
    if kind == "pandas":
        frames = (_to_pandas(p) for p in _sliced(plan, batches))
        return _pandas_results(plan["fn"](frames), out, what)
    if kind.startswith("filter_"):
        return (p.filter(run_filter(plan, p)) for p in _sliced(plan, batches))
    return (run_map(plan, p) for p in _sliced(plan, batches))


def run_pipeline(plan: dict[str, Any], batches: Iterator[pa.RecordBatch]
                 ) -> Iterator[pa.RecordBatch]:
    """A stage's Python functions composed into one partition function:
    each step reads the batches the one before it yields, lazily, so one
    batch at a time flows through all of them."""
    for step in plan["steps"]:
        batches = run_step(step, batches)
    return batches


def _partition_cb(ctx, stream_p, arg, arg_size, err_p):  # type: ignore[no-untyped-def]
    _pin_thread_state()
    from protium import context

    plan = None
    try:
        plan = _plan(arg, arg_size)
        context._enter(ctx, plan.get("stage", {}))
        lib = _lib.lib()
        err = PtError()
        with _task_env(plan.get("stage", {})):
            for result in run_pipeline(plan, _stream_batches(stream_p, plan["in_schema"])):
                arr = ArrowArray()
                result._export_to_c(ctypes.addressof(arr))
                # the engine's now: held here, it would live on while the
                # pipeline makes the next batch (see _pandas_results)
                del result
                _lib.check(lib.pt_ctx_emit(ctx, ctypes.byref(arr), ctypes.byref(err)), err)
        return 0
    except BaseException as e:  # noqa: BLE001
        # A barrier stage's failure message lists every attempt's cause;
        # the first gets _BARRIER_BUDGET bytes of it.
        barrier = bool(plan.get("stage", {}).get("barrier")) if plan else False
        return _fail(err_p, _describe(e, _BARRIER_BUDGET if barrier else _MESSAGE_BUDGET))
    finally:
        context._leave()


class _task_env:
    """The variables of the resources the task holds (CUDA_VISIBLE_DEVICES
    for gpu), set in os.environ while the task runs and restored after: an
    executor that runs Python tasks has one slot per task that needs them
    (the stage's cpus), so no other task sees them meanwhile."""

    def __init__(self, stage: dict[str, Any]) -> None:
        self.stage = stage
        self.saved: dict[str, Optional[str]] = {}

    def __enter__(self) -> None:
        envs = self.stage.get("resource_env") or {}
        if not envs:
            return
        import os

        from protium.context import TaskContext

        ctx = TaskContext.get()
        held = ctx.resources() if ctx is not None else {}
        for name, var in envs.items():
            if name in held:  # as pt_ctx_child_env: the others stay as they are
                self.saved[var] = os.environ.get(var)
                os.environ[var] = ",".join(held[name].addresses)

    def __exit__(self, *exc: object) -> None:
        import os

        for var, old in self.saved.items():
            if old is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old


def _profiled(fn: Any) -> Any:
    """fn, or with PT_PY_PROFILE=DIR in the environment, fn under cProfile:
    each thread of each process that runs callbacks keeps its own profile
    and rewrites DIR/worker-PID-THREAD.pstats after every call (read them
    with pstats; for finding where a job's Python time goes, not for
    production: the dump costs milliseconds)."""
    directory = os.environ.get("PT_PY_PROFILE")
    if not directory:
        return fn
    import cProfile

    profiles: dict[int, cProfile.Profile] = {}

    def profiled(*args: Any) -> Any:
        ident = threading.get_ident()
        prof = profiles.setdefault(ident, cProfile.Profile())
        prof.enable()
        try:
            return fn(*args)
        finally:
            prof.disable()
            prof.dump_stats(os.path.join(directory, f"worker-{os.getpid()}-{ident}.pstats"))

    return profiled


_callbacks: list[Any] = []


def register() -> int:
    """Registers the partition callback in this process (once); returns
    its address, which pt_map_partitions takes."""
    if not _callbacks:
        cb = _lib.PARTITION_FN(_profiled(_partition_cb))
        _callbacks.append(cb)
        _lib.lib().pt_fn_register(PARTITION_NAME, ctypes.cast(cb, ctypes.c_void_p))
    return ctypes.cast(_callbacks[0], ctypes.c_void_p).value or 0
