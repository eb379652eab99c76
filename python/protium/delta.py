"""delta.py — the ctypes side of Delta Lake tables: option structs and
prototypes of pt_read_delta, pt_write_delta and pt_delta_scan_info, and the
filter values Delta columns compare with (dates as days, timestamps as
microseconds), kept here so that the Session and Dataset methods stay short.
"""

from __future__ import annotations

import ctypes
import datetime
import decimal
import re
from typing import Any, Optional, Sequence

from protium import _lib
from protium._lib import PtError, PtParquetWriteOptions, ProtiumError

_P = ctypes.POINTER
_vp = ctypes.c_void_p
_MODES = {"error": 0, "errorifexists": 0, "append": 1, "overwrite": 2}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


class PtDeltaReadOptions(ctypes.Structure):
    """pt_delta_read_options (its layout must match protium.h exactly)."""

    _fields_ = [
        ("version", ctypes.c_int64),
        ("timestamp_ms", ctypes.c_int64),
        ("columns", _P(ctypes.c_char_p)),
        ("n_columns", ctypes.c_int64),
        ("filter", _vp),
        ("batch_size", ctypes.c_int64),
    ]


class PtDeltaWriteOptions(ctypes.Structure):
    """pt_delta_write_options."""

    _fields_ = [
        ("mode", ctypes.c_int),
        ("partition_by", _P(ctypes.c_char_p)),
        ("n_partition_by", ctypes.c_int64),
        ("parquet", _P(PtParquetWriteOptions)),
        ("merge_schema", ctypes.c_int),
        ("replace_where", _vp),
    ]


class PtDeltaScan(ctypes.Structure):
    """pt_delta_scan."""

    _fields_ = [("version", ctypes.c_int64), ("files", ctypes.c_int64),
                ("files_skipped", ctypes.c_int64)]


_PROTOTYPES = {
    "pt_delta_read_options_init": (None, [_P(PtDeltaReadOptions)]),
    "pt_delta_write_options_init": (None, [_P(PtDeltaWriteOptions)]),
    "pt_read_delta": (ctypes.c_int, [_vp, ctypes.c_char_p, _P(PtDeltaReadOptions), _P(_vp),
                                     _P(PtError)]),
    "pt_write_delta": (ctypes.c_int, [_vp, ctypes.c_char_p, _P(PtDeltaWriteOptions), _P(PtError)]),
    "pt_delta_scan_info": (ctypes.c_int, [_vp, _P(PtDeltaScan), _P(PtError)]),
}


def fn(name: str) -> Any:
    """The C function `name` with its prototype bound."""
    f = getattr(_lib.lib()._dll, name)
    f.restype, f.argtypes = _PROTOTYPES[name]
    return f


def _value(v: object) -> object:
    """A filter value as Delta's columns compare it: dates in days,
    timestamps in microseconds since the epoch (naive ones as they are, as
    timestamp_ntz keeps them), decimals as floats."""
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        d = v - _EPOCH
        return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
    if isinstance(v, datetime.date):
        return (v - datetime.date(1970, 1, 1)).days
    if isinstance(v, decimal.Decimal):
        return float(v)
    return v


def _filter_values(spec: object) -> object:
    if isinstance(spec, list):
        return [_filter_values(t) for t in spec]
    if isinstance(spec, tuple) and len(spec) == 3:
        col, op, val = spec
        if op in ("in", "not in"):
            return (col, op, [_value(x) for x in val])  # type: ignore[union-attr]
        return (col, op, _value(val))
    return spec


def _timestamp_ms(ts: object) -> int:
    if isinstance(ts, datetime.datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=datetime.timezone.utc)
        return int((ts - _EPOCH) / datetime.timedelta(milliseconds=1))
    if isinstance(ts, str):
        return _timestamp_ms(datetime.datetime.fromisoformat(ts))
    if isinstance(ts, (int, float)):
        return int(ts)
    raise ProtiumError(_lib.PT_EINVAL, "timestamp: a datetime, an ISO 8601 string or "
                       "milliseconds since the epoch")


def read_options(version: Optional[int], timestamp: object, columns: Optional[Sequence[str]],
                 filter: object, batch_size: int) -> tuple[PtDeltaReadOptions, list]:
    """The options struct and what must stay alive while it is used."""
    from protium.parquet import _Filter

    opts = PtDeltaReadOptions()
    fn("pt_delta_read_options_init")(ctypes.byref(opts))
    keep: list = []
    if version is not None:
        opts.version = int(version)
    if timestamp is not None:
        opts.timestamp_ms = _timestamp_ms(timestamp)
    if columns is not None:
        names = (ctypes.c_char_p * max(len(columns), 1))(*[c.encode() for c in columns])
        opts.columns = ctypes.cast(names, _P(ctypes.c_char_p))
        opts.n_columns = len(columns)
        keep.append(names)
    if filter is not None:
        f = _Filter(_filter_values(filter))
        opts.filter = f.ptr
        keep.append(f)
    opts.batch_size = batch_size
    return opts, keep


_PREDICATE = re.compile(
    r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:(<=|>=|<>|!=|==|=|<|>)\s*('(?:[^']|'')*'|[^\s()]+)"
    r"|(?i:(not\s+)?(in))\s*\(([^)]*)\)|(?i:is\s+(not\s+)?(null)))\s*$")
_LITERAL = re.compile(r"\s*('(?:[^']|'')*'|[^\s,']+)\s*(?:,|$)")


def _literal(text: str, typ: Any) -> object:
    """A SQL literal as a filter value of the column's Arrow type."""
    import pyarrow as pa

    if text.startswith("'"):
        v: object = text[1:-1].replace("''", "'")
    elif text.lower() in ("true", "false"):
        v = text.lower() == "true"
    else:
        try:
            v = int(text)
        except ValueError:
            try:
                v = float(text)
            except ValueError:
                raise ProtiumError(_lib.PT_EINVAL, f"replace_where: {text!r} is not a literal; "
                                   "quote strings, dates and timestamps") from None
    if isinstance(v, str) and typ is not None:
        if pa.types.is_date(typ):
            return datetime.date.fromisoformat(v)
        if pa.types.is_timestamp(typ):
            return datetime.datetime.fromisoformat(v)
        if pa.types.is_boolean(typ) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        if pa.types.is_integer(typ):
            return int(v)
        if pa.types.is_floating(typ) or pa.types.is_decimal(typ):
            return float(v)
    return v


def predicate(text: str, schema: Any) -> list:
    """replace_where's SQL form ("day >= '2024-01-02' AND region = 'eu'":
    comparisons (= != <> < <= > >=), [NOT] IN lists and IS [NOT] NULL
    joined by AND) as a filter list, its
    literals typed by the dataset's columns (a quoted date for a date)."""
    out = []
    # Split at AND outside quoted literals ('rock and roll' stays whole).
    parts, start = [], 0
    for m in re.finditer(r"'(?:[^']|'')*'|\s+(?i:and)\s+", text):
        if not m.group(0).startswith("'"):
            parts.append(text[start:m.start()])
            start = m.end()
    parts.append(text[start:])
    for part in parts:
        m = _PREDICATE.match(part)
        if not m:
            raise ProtiumError(_lib.PT_EINVAL, f"replace_where: cannot read {part!r}; write "
                               "comparisons (column op literal), column [NOT] IN (...) or "
                               "column IS [NOT] NULL, joined by AND")
        col = m.group(1)
        typ = schema.field(col).type if col in schema.names else None
        if m.group(8):
            out.append((col, "is_not_null" if m.group(7) else "is_null", None))
        elif m.group(5):
            vals = [_literal(x, typ) for x in _LITERAL.findall(m.group(6))]
            out.append((col, "not in" if m.group(4) else "in", vals))
        else:
            op = {"<>": "!=", "==": "="}.get(m.group(2), m.group(2))
            out.append((col, op, _literal(m.group(3), typ)))
    return out


def write_options(mode: str, partition_by: Optional[Sequence[str]],
                  parquet: Optional[PtParquetWriteOptions], merge_schema: bool = False,
                  replace_where: object = None,
                  schema: Any = None) -> tuple[PtDeltaWriteOptions, list]:
    m = _MODES.get(mode.lower()) if isinstance(mode, str) else None
    if m is None:
        raise ProtiumError(_lib.PT_EINVAL, f"write_delta: mode {mode!r}; use 'append', "
                           "'overwrite' or 'error'")
    opts = PtDeltaWriteOptions()
    fn("pt_delta_write_options_init")(ctypes.byref(opts))
    opts.mode = m
    keep: list = []
    if isinstance(partition_by, str):
        partition_by = [partition_by]
    keys = list(partition_by or [])
    if keys:
        names = (ctypes.c_char_p * len(keys))(*[k.encode() for k in keys])
        opts.partition_by = ctypes.cast(names, _P(ctypes.c_char_p))
        opts.n_partition_by = len(keys)
        keep.append(names)
    if parquet is not None:
        opts.parquet = ctypes.pointer(parquet)
        keep.append(parquet)
    opts.merge_schema = 1 if merge_schema else 0
    if replace_where is not None:
        from protium.parquet import _Filter

        spec = predicate(replace_where, schema) if isinstance(replace_where, str) else replace_where
        f = _Filter(_filter_values(spec))
        opts.replace_where = f.ptr
        keep.append(f)
    return opts, keep


def scan_info(ds_handle: int) -> dict[str, int]:
    out, err = PtDeltaScan(), PtError()
    rc = fn("pt_delta_scan_info")(ds_handle, ctypes.byref(out), ctypes.byref(err))
    _lib.check(rc, err)
    return {"version": out.version, "files": out.files, "files_skipped": out.files_skipped}
