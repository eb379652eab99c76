"""connectors.py — the ctypes side of the warehouse connectors (CSV files,
PostgreSQL): option structs and prototypes of pt_read_csv, pt_write_csv,
pt_read_sql and pt_write_sql, kept here so that the Session and Dataset
methods stay a few lines each.
"""

from __future__ import annotations

import ctypes
import os
import re
from typing import Any, Optional, Sequence

from protium import _lib
from protium._lib import ArrowSchema, PtError
from protium.schema import SchemaLike, as_schema

_MODES = {"FAILFAST": 0, "DROPMALFORMED": 1, "PERMISSIVE": 2}


class PtCsvOptions(ctypes.Structure):
    """pt_csv_options (its layout must match protium.h exactly)."""

    _fields_ = [
        ("header", ctypes.c_int),
        ("delimiter", ctypes.c_char),
        ("quote", ctypes.c_char),
        ("escape", ctypes.c_char),
        ("null_values", ctypes.POINTER(ctypes.c_char_p)),
        ("n_null_values", ctypes.c_int64),
        ("schema", ctypes.POINTER(ArrowSchema)),
        ("infer_rows", ctypes.c_int64),
        ("mode", ctypes.c_int),
        ("corrupt_column", ctypes.c_char_p),
    ]


class PtCsvWriteOptions(ctypes.Structure):
    """pt_csv_write_options."""

    _fields_ = [("header", ctypes.c_int), ("delimiter", ctypes.c_char)]


class PtSqlReadOptions(ctypes.Structure):
    """pt_sql_read_options."""

    _fields_ = [
        ("partition_column", ctypes.c_char_p),
        ("lower_bound", ctypes.c_int64),
        ("upper_bound", ctypes.c_int64),
        ("num_partitions", ctypes.c_int64),
        ("predicates", ctypes.POINTER(ctypes.c_char_p)),
        ("n_predicates", ctypes.c_int64),
        ("fetch_size", ctypes.c_int64),
        ("adbc_driver", ctypes.c_char_p),
    ]


SQL_MODES = {"append": 0, "overwrite": 1, "error": 2, "errorifexists": 2}

_P = ctypes.POINTER
_vp = ctypes.c_void_p
_PROTOTYPES = {
    "pt_csv_options_init": (None, [_P(PtCsvOptions)]),
    "pt_csv_write_options_init": (None, [_P(PtCsvWriteOptions)]),
    "pt_read_csv": (ctypes.c_int, [_vp, ctypes.c_char_p, _P(PtCsvOptions), _P(_vp), _P(PtError)]),
    "pt_write_csv": (ctypes.c_int, [_vp, ctypes.c_char_p, _P(PtCsvWriteOptions), _P(PtError)]),
    "pt_read_sql": (ctypes.c_int, [_vp, ctypes.c_char_p, ctypes.c_char_p, _P(PtSqlReadOptions),
                                   _P(_vp), _P(PtError)]),
    "pt_write_sql": (ctypes.c_int, [_vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int,
                                    _P(PtError)]),
}


def fn(name: str) -> Any:
    """The C function `name` with its prototype bound."""
    f = getattr(_lib.lib()._dll, name)
    f.restype, f.argtypes = _PROTOTYPES[name]
    return f


def _byte(value: Optional[str], what: str) -> bytes:
    if value is None or value == "":
        return b"\0"
    b = value.encode()
    if len(b) != 1:
        raise ValueError(f"{what} must be one byte, not {value!r}")
    return b


class CsvReadArgs:
    """pt_csv_options for one call, with the memory it points to kept
    alive for as long as this object lives."""

    def __init__(self, *, schema: Optional[SchemaLike], header: bool, delimiter: str,
                 quote: Optional[str], escape: Optional[str],
                 null_values: Optional[Sequence[str]], infer_rows: int, mode: str,
                 corrupt_column: Optional[str]) -> None:
        if mode.upper() not in _MODES:
            raise ValueError(f"read_csv: mode must be one of {sorted(_MODES)}, not {mode!r}")
        o = PtCsvOptions()
        fn("pt_csv_options_init")(ctypes.byref(o))
        o.header = 1 if header else 0
        o.delimiter = _byte(delimiter, "delimiter")
        o.quote = _byte(quote, "quote")
        o.escape = _byte(escape if escape is not None else quote, "escape")
        self._nulls = None
        if null_values is not None:
            self._nulls = (ctypes.c_char_p * max(1, len(null_values)))(
                *[v.encode() for v in null_values])
            o.null_values = self._nulls
            o.n_null_values = len(null_values)
        self._schema = None
        if schema is not None:
            self._schema = ArrowSchema()
            pa_schema = as_schema(schema)
            pa_schema._export_to_c(ctypes.addressof(self._schema))
            o.schema = ctypes.pointer(self._schema)
        o.infer_rows = infer_rows
        o.mode = _MODES[mode.upper()]
        self._corrupt = corrupt_column.encode() if corrupt_column else None
        o.corrupt_column = self._corrupt
        self.options = o

    def close(self) -> None:
        if self._schema is not None:
            _lib.release_schema(self._schema)
            self._schema = None


def write_options(header: bool, delimiter: str) -> PtCsvWriteOptions:
    o = PtCsvWriteOptions()
    fn("pt_csv_write_options_init")(ctypes.byref(o))
    o.header = 1 if header else 0
    o.delimiter = _byte(delimiter, "delimiter")
    return o



_QUERY_START = re.compile(r"\s*(\(|(select|with|values)(?![A-Za-z0-9_]))", re.IGNORECASE)


def is_query(source: str) -> bool:
    """pt_read_sql's rule (src/api/sql.c): a query when, after whitespace,
    it starts with '(' or the word SELECT, WITH or VALUES (any case, not
    followed by a letter, digit or '_'); else a table name."""
    return _QUERY_START.match(source) is not None


class SqlReadArgs:
    """pt_read_sql's source and options, PySpark's read.jdbc arguments
    checked and kept alive for the call."""

    def __init__(self, *, table: Optional[str], query: Optional[str], column: Optional[str],
                 lower_bound: Optional[int], upper_bound: Optional[int],
                 num_partitions: Optional[int], predicates: Optional[Sequence[str]],
                 fetch_size: Optional[int], url: str = "",
                 adbc_driver: Optional[str] = None) -> None:
        if table is None and query is None:
            raise ValueError("read_sql: give table= or query=, one of them")
        if table is not None and query is not None:
            raise ValueError("read_sql: give table= or query=, not both")
        if query is not None and not is_query(query):
            raise ValueError("read_sql: query= must start with SELECT, WITH, VALUES or '('")
        self.source = (table if table is not None else query).encode()
        o = PtSqlReadOptions()
        if column is not None:
            if None in (lower_bound, upper_bound, num_partitions):
                raise ValueError("read_sql: column= needs lower_bound=, upper_bound= and "
                                 "num_partitions=")
            if predicates is not None:
                raise ValueError("read_sql: give column= or predicates=, not both")
            self._column = column.encode()
            o.partition_column = self._column
            o.lower_bound, o.upper_bound = int(lower_bound), int(upper_bound)
            o.num_partitions = int(num_partitions)
        elif predicates is not None:
            preds = list(predicates)
            if not preds:
                raise ValueError("read_sql: predicates= is empty")
            self._preds = (ctypes.c_char_p * len(preds))(*[p.encode() for p in preds])
            o.predicates = self._preds
            o.n_predicates = len(preds)
        o.fetch_size = int(fetch_size or 0)
        driver = adbc_driver if adbc_driver is not None else adbc_driver_of(url)
        if driver:
            self._driver = os.fsencode(driver)
            o.adbc_driver = self._driver
        self.options = o


def adbc_driver_of(url: str) -> Optional[str]:
    """The driver library of an adbc:NAME: URL that the adbc_driver_NAME
    package (adbc-driver-NAME on PyPI) ships, when it is installed; None
    leaves the search to pt_read_sql (sql.adbc.driver_path, the loader)."""
    if not url.startswith("adbc:"):
        return None
    name = url[5:].split(":", 1)[0].replace("-", "_")
    if not name.isidentifier():
        return None
    import importlib.util
    spec = importlib.util.find_spec(f"adbc_driver_{name}")
    if spec is None or not spec.submodule_search_locations:
        return None
    for d in spec.submodule_search_locations:
        lib = os.path.join(d, f"libadbc_driver_{name}.so")
        if os.path.exists(lib):
            return lib
    return None
