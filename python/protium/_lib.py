"""_lib.py — loads libprotium.so and declares the C structs and prototypes
the binding calls through ctypes.

Nothing here is public API: protium.arrow wraps it. The library is found
through PT_LIBRARY (a path to the .so), else PT_BUILD_DIR/libprotium.so,
else libprotium.so beside this file (an installed package), else
../../build/libprotium.so relative to this package (a source checkout).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from pathlib import Path
from typing import Any

# Status codes of include/protium.h.
PT_OK = 0
PT_EINVAL = 1
PT_ENOMEM = 2
PT_EIO = 3
PT_EFORMAT = 4
PT_ENOTSUP = 5
PT_ERANGE = 6
PT_ESTATE = 7
PT_ETIMEDOUT = 8
PT_ECANCELED = 9
PT_EINTERNAL = 10

PT_ERROR_SIZE = 1024

PT_IPC_STREAM = 0
PT_IPC_FILE = 1

PT_COMPRESSION_NONE = 0
PT_COMPRESSION_LZ4_FRAME = 1
PT_COMPRESSION_ZSTD = 2


class ProtiumError(Exception):
    """An error reported by libprotium: a status code (PT_EINVAL, ...) and
    the library's message, which says what went wrong and what to do."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


# --------------------------------------------------------------------------
# The Arrow C Data and C Stream Interfaces, and protium's own structs.


class ArrowSchema(ctypes.Structure):
    pass


_schema_release = ctypes.CFUNCTYPE(None, ctypes.POINTER(ArrowSchema))
ArrowSchema._fields_ = [
    ("format", ctypes.c_char_p),
    ("name", ctypes.c_char_p),
    ("metadata", ctypes.c_void_p),
    ("flags", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(ArrowSchema))),
    ("dictionary", ctypes.POINTER(ArrowSchema)),
    ("release", _schema_release),
    ("private_data", ctypes.c_void_p),
]


class ArrowArray(ctypes.Structure):
    pass


_array_release = ctypes.CFUNCTYPE(None, ctypes.POINTER(ArrowArray))
ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(ArrowArray))),
    ("dictionary", ctypes.POINTER(ArrowArray)),
    ("release", _array_release),
    ("private_data", ctypes.c_void_p),
]


class ArrowArrayStream(ctypes.Structure):
    pass


_stream_p = ctypes.POINTER(ArrowArrayStream)
ArrowArrayStream._fields_ = [
    ("get_schema", ctypes.CFUNCTYPE(ctypes.c_int, _stream_p, ctypes.POINTER(ArrowSchema))),
    ("get_next", ctypes.CFUNCTYPE(ctypes.c_int, _stream_p, ctypes.POINTER(ArrowArray))),
    ("get_last_error", ctypes.CFUNCTYPE(ctypes.c_char_p, _stream_p)),
    ("release", ctypes.CFUNCTYPE(None, _stream_p)),
    ("private_data", ctypes.c_void_p),
]


class PtError(ctypes.Structure):
    """pt_error: a status code and a NUL-terminated message."""

    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * PT_ERROR_SIZE)]


class PtIpcWriteOptions(ctypes.Structure):
    """pt_ipc_write_options."""

    _fields_ = [
        ("format", ctypes.c_int),
        ("compression", ctypes.c_int),
        ("compression_level", ctypes.c_int),
        ("emit_dictionary_deltas", ctypes.c_int),
    ]


class PtParquetReadOptions(ctypes.Structure):
    """pt_parquet_read_options."""

    _fields_ = [
        ("columns", ctypes.POINTER(ctypes.c_char_p)),
        ("n_columns", ctypes.c_int64),
        ("batch_size", ctypes.c_int64),
        ("filter", ctypes.c_void_p),
        ("row_group_start", ctypes.c_int64),
        ("row_groups", ctypes.c_int64),
        ("dictionary", ctypes.POINTER(ctypes.c_char_p)),
        ("n_dictionary", ctypes.c_int64),
        ("plain_binary", ctypes.c_int),
        ("partition_schema", ctypes.c_void_p),
        ("threads", ctypes.c_int),
        ("no_readahead", ctypes.c_int),
    ]


class PtParquetWriteOptions(ctypes.Structure):
    """pt_parquet_write_options."""

    _fields_ = [
        ("codec", ctypes.c_int),
        ("compression_level", ctypes.c_int),
        ("row_group_rows", ctypes.c_int64),
        ("page_bytes", ctypes.c_int64),
        ("dictionary_page_bytes", ctypes.c_int64),
        ("use_dictionary", ctypes.c_int),
        ("data_page_version", ctypes.c_int),
        ("write_statistics", ctypes.c_int),
        ("store_arrow_schema", ctypes.c_int),
        ("partition_by", ctypes.POINTER(ctypes.c_char_p)),
        ("n_partition_by", ctypes.c_int64),
        ("threads", ctypes.c_int),
        ("metadata_keys", ctypes.POINTER(ctypes.c_char_p)),
        ("metadata_values", ctypes.POINTER(ctypes.c_char_p)),
        ("n_metadata", ctypes.c_int64),
        ("mode", ctypes.c_int),
    ]


class PtBuf(ctypes.Structure):
    """pt_buf: a growing byte buffer the library appends to."""

    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_size_t), ("cap", ctypes.c_size_t)]


# PT_CAUSE_COUNT_ of protium.h: the entries of failed_by_cause.
PT_CAUSE_COUNT = 5


class PtStageStats(ctypes.Structure):
    """pt_stage_stats: one attempt of one stage of a finished job."""

    _fields_ = [("stage_id", ctypes.c_int64), ("attempt", ctypes.c_int64),
                ("partitions", ctypes.c_int64), ("is_map", ctypes.c_int32),
                ("tasks_launched", ctypes.c_int64), ("tasks_succeeded", ctypes.c_int64),
                ("tasks_failed", ctypes.c_int64),
                ("failed_by_cause", ctypes.c_int64 * PT_CAUSE_COUNT),
                ("tasks_retried", ctypes.c_int64), ("tasks_requeued", ctypes.c_int64),
                ("tasks_duplicate", ctypes.c_int64), ("tasks_orphaned", ctypes.c_int64),
                ("outputs_lost", ctypes.c_int64),
                ("lost_partitions", ctypes.POINTER(ctypes.c_int64)),
                ("rows_read", ctypes.c_int64), ("bytes_read", ctypes.c_int64),
                ("rows_written", ctypes.c_int64), ("bytes_written", ctypes.c_int64),
                ("task_time_us", ctypes.c_int64), ("duration_us", ctypes.c_int64),
                ("parquet_pages_read", ctypes.c_int64),
                ("parquet_pages_skipped", ctypes.c_int64),
                ("event_time_ms", ctypes.c_int64),
                ("kafka_producers", ctypes.c_int64)]


class PtJobStats(ctypes.Structure):
    """pt_job_stats: a finished job and its stage attempts."""

    _fields_ = [("job_id", ctypes.c_int64), ("status", ctypes.c_int),
                ("duration_us", ctypes.c_int64), ("executors_lost", ctypes.c_int64),
                ("executors_started", ctypes.c_int64), ("n_stages", ctypes.c_int64),
                ("stages", ctypes.POINTER(PtStageStats))]


# free_data callback of pt_ipc_read_buffer: void (*)(void *data, void *arg).
FREE_DATA_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)

_P = ctypes.POINTER
_c_int, _c_i64, _vp = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
_err = _P(PtError)

# name: (restype, argtypes). Bound on first use, so that a library built
# without some of them still serves the others.
_PROTOTYPES: dict[str, tuple[Any, list[Any]]] = {
    "pt_strerror": (ctypes.c_char_p, [_c_int]),
    "pt_version": (ctypes.c_char_p, []),
    "pt_type_name": (_c_int, [_P(ArrowSchema), ctypes.c_char_p, ctypes.c_size_t]),
    "pt_schema_copy": (_c_int, [_P(ArrowSchema), _P(ArrowSchema), _err]),
    "pt_array_validate": (_c_int, [_P(ArrowSchema), _P(ArrowArray), _err]),
    "pt_array_slice": (_c_int, [_P(ArrowArray), _c_i64, _c_i64, _P(ArrowArray), _err]),
    "pt_array_copy": (_c_int, [_P(ArrowSchema), _P(ArrowArray), _P(ArrowArray), _err]),
    "pt_ipc_write_options_init": (None, [_P(PtIpcWriteOptions)]),
    "pt_ipc_writer_open_path": (
        _c_int,
        [ctypes.c_char_p, _P(ArrowSchema), _P(PtIpcWriteOptions), _P(_vp), _err],
    ),
    "pt_ipc_writer_open_buffer": (
        _c_int,
        [_P(ArrowSchema), _P(PtIpcWriteOptions), _P(_vp), _err],
    ),
    "pt_ipc_writer_write": (_c_int, [_vp, _P(ArrowArray), _err]),
    "pt_ipc_writer_write_stream": (_c_int, [_vp, _P(ArrowArrayStream), _err]),
    "pt_ipc_writer_close": (_c_int, [_vp, _err]),
    "pt_ipc_writer_take_buffer": (_c_int, [_vp, _P(_vp), _P(_c_i64), _err]),
    "pt_ipc_writer_free": (None, [_vp]),
    "pt_ipc_read_path": (_c_int, [ctypes.c_char_p, _P(ArrowArrayStream), _err]),
    "pt_ipc_read_buffer": (
        _c_int,
        [_vp, _c_i64, FREE_DATA_FN, _vp, _P(ArrowArrayStream), _err],
    ),
    "pt_parquet_read_options_init": (None, [_P(PtParquetReadOptions)]),
    "pt_buf_free": (None, [_vp]),
    "pt_parquet_filter_int": (_c_int, [ctypes.c_char_p, _c_int, _P(_c_i64), _c_i64, _P(_vp), _err]),
    "pt_parquet_filter_uint": (
        _c_int, [ctypes.c_char_p, _c_int, _P(ctypes.c_uint64), _c_i64, _P(_vp), _err]),
    "pt_parquet_filter_double": (
        _c_int, [ctypes.c_char_p, _c_int, _P(ctypes.c_double), _c_i64, _P(_vp), _err]),
    "pt_parquet_filter_bytes": (
        _c_int, [ctypes.c_char_p, _c_int, _P(ctypes.c_char_p), _P(_c_i64), _c_i64, _P(_vp), _err]),
    "pt_parquet_filter_timestamp": (
        _c_int, [ctypes.c_char_p, _c_int, _P(_c_i64), _c_i64, _c_int, _P(_vp), _err]),
    "pt_parquet_filter_decimal": (
        _c_int, [ctypes.c_char_p, _c_int, _P(ctypes.c_char_p), _c_i64, _P(_vp), _err]),
    "pt_parquet_filter_is_null": (_c_int, [ctypes.c_char_p, _P(_vp), _err]),
    "pt_parquet_filter_is_not_null": (_c_int, [ctypes.c_char_p, _P(_vp), _err]),
    "pt_parquet_scan_info": (_c_int, [_vp, _P(_c_i64 * 5), _err]),
    "pt_parquet_filter_combine": (_c_int, [_c_int, _vp, _vp, _P(_vp), _err]),
    "pt_parquet_filter_free": (None, [_vp]),
    "pt_parquet_stream_row_groups": (_c_int, [_P(ArrowArrayStream), _P(_c_i64), _P(_c_i64), _err]),
    "pt_parquet_stream_pages": (_c_int, [_P(ArrowArrayStream), _P(_c_i64), _P(_c_i64), _err]),
    "pt_parquet_stream_zero_copy": (_c_int, [_P(ArrowArrayStream), _P(_c_i64), _err]),
    "pt_parquet_write_options_init": (None, [_P(PtParquetWriteOptions)]),
    "pt_parquet_writer_open_path": (
        _c_int,
        [ctypes.c_char_p, _P(ArrowSchema), _P(PtParquetWriteOptions), _P(_vp), _err],
    ),
    "pt_parquet_writer_open_buf": (
        _c_int,
        [_vp, _P(ArrowSchema), _P(PtParquetWriteOptions), _P(_vp), _err],
    ),
    "pt_parquet_writer_write": (_c_int, [_vp, _P(ArrowArray), _err]),
    "pt_parquet_writer_close": (_c_int, [_vp, _err]),
    "pt_parquet_writer_free": (None, [_vp]),
    "pt_parquet_read_path": (
        _c_int,
        [ctypes.c_char_p, _P(PtParquetReadOptions), _P(ArrowArrayStream), _err],
    ),
    "pt_parquet_read_buffer": (
        _c_int,
        [_vp, _c_i64, FREE_DATA_FN, _vp, _P(PtParquetReadOptions), _P(ArrowArrayStream), _err],
    ),
    # The engine (protium.session).
    "pt_conf_new": (_c_int, [_P(_vp), _err]),
    "pt_conf_set": (_c_int, [_vp, ctypes.c_char_p, ctypes.c_char_p, _err]),
    "pt_conf_free": (None, [_vp]),
    "pt_session_open": (_c_int, [ctypes.c_char_p, _vp, _P(_vp), _err]),
    "pt_session_close": (None, [_vp]),
    "pt_session_progress": (_c_int, [_vp, _vp, _c_i64, _P(_c_i64), _err]),
    "pt_session_executors": (_c_int, [_vp, _vp, _c_i64, _P(_c_i64), _err]),
    "pt_fn_register": (_c_int, [ctypes.c_char_p, _vp]),
    "pt_executor_hook": (None, []),
    # libprotium's internal crash note, for os._exit in an executor (_executor.py)
    "pt__executor_note_crash": (None, []),
    "pt_range": (_c_int, [_vp, _c_i64, _c_i64, _c_i64, _P(_vp), _err]),
    "pt_read_ipc": (_c_int, [_vp, ctypes.c_char_p, _P(_vp), _err]),
    "pt_from_batches": (_c_int, [_vp, _P(ArrowSchema), _vp, _c_i64, _P(_vp), _err]),
    "pt_map_batches": (_c_int, [_vp, _vp, _P(ArrowSchema), _vp, ctypes.c_size_t, _P(_vp), _err]),
    "pt_map_partitions": (
        _c_int, [_vp, _vp, _P(ArrowSchema), _vp, ctypes.c_size_t, _P(_vp), _err]),
    "pt_ctx_emit": (_c_int, [_vp, _P(ArrowArray), _err]),
    "pt_ctx_partition_id": (_c_i64, [_vp]),
    "pt_ctx_num_tasks": (_c_i64, [_vp]),
    "pt_ctx_stage_attempt": (_c_i64, [_vp]),
    "pt_ctx_task_attempt": (_c_i64, [_vp]),
    "pt_ctx_resources": (_c_int, [_vp, ctypes.c_char_p, _P(_P(ctypes.c_char_p)), _P(_c_i64),
                                  _err]),
    "pt_ctx_task_infos": (_c_int, [_vp, _vp, _P(_c_i64), _err]),
    "pt_ctx_barrier": (_c_int, [_vp, _err]),
    "pt_ctx_all_gather": (_c_int, [_vp, ctypes.c_char_p, ctypes.c_size_t, _P(_vp),
                                   _P(ctypes.c_size_t), _err]),
    "pt_ctx_checkpoint_dir": (_c_int, [_vp, _P(ctypes.c_char_p), _err]),
    "pt_barrier": (_c_int, [_vp, _P(_vp), _err]),
    "pt_barrier_attempts": (_c_int, [_vp, _c_i64, _P(_vp), _err]),
    "pt_resource_profile_new": (_c_int, [_P(_vp), _err]),
    "pt_resource_profile_require": (_c_int, [_vp, ctypes.c_char_p, ctypes.c_double, _c_int,
                                             _err]),
    "pt_resource_profile_cpus": (_c_int, [_vp, ctypes.c_int32, _err]),
    "pt_resource_profile_free": (None, [_vp]),
    "pt_with_resources": (_c_int, [_vp, _vp, _P(_vp), _err]),
    "pt_filter": (_c_int, [_vp, _vp, _vp, ctypes.c_size_t, _P(_vp), _err]),
    "pt_repartition": (_c_int, [_vp, _c_i64, _P(_vp), _err]),
    "pt_repartition_by": (_c_int, [_vp, _c_i64, _P(ctypes.c_char_p), _c_i64, _P(_vp), _err]),
    "pt_dataset_schema": (_c_int, [_vp, _P(ArrowSchema), _err]),
    "pt_dataset_num_partitions": (_c_i64, [_vp]),
    "pt_dataset_free": (None, [_vp]),
    "pt_collect": (_c_int, [_vp, _P(ArrowArrayStream), _err]),
    "pt_count": (_c_int, [_vp, _P(_c_i64), _err]),
    "pt_write_ipc": (_c_int, [_vp, ctypes.c_char_p, _vp, _err]),
    "pt_dataset_last_job": (_c_int, [_vp, _P(_P(PtJobStats)), _err]),
    "pt_session_job_stats": (_c_int, [_vp, _c_i64, _P(_P(PtJobStats)), _err]),
    "pt_job_stats_total": (None, [_P(PtJobStats), _P(PtStageStats)]),
    "pt_job_stats_free": (None, [_P(PtJobStats)]),
    "pt_read_parquet": (
        _c_int, [_vp, ctypes.c_char_p, _P(PtParquetReadOptions), _P(_vp), _err]),
    "pt_write_parquet": (_c_int, [_vp, ctypes.c_char_p, _P(PtParquetWriteOptions), _err]),
}


class PtExecutorResource(ctypes.Structure):
    """pt_executor_resource (PT_RESOURCE_ADDRESSES_MAX addresses of
    PT_RESOURCE_NAME_MAX bytes)."""

    _fields_ = [
        ("name", ctypes.c_char * 32),
        ("n_addresses", ctypes.c_int32),
        ("addresses", (ctypes.c_char * 32) * 16),
    ]


class PtExecutorInfo(ctypes.Structure):
    """pt_executor_info (its layout must match protium.h exactly)."""

    _fields_ = [
        ("id", ctypes.c_int64),
        ("pid", ctypes.c_int64),
        ("slots", ctypes.c_int32),
        ("alive", ctypes.c_int32),
        ("n_resources", ctypes.c_int32),
        ("resources", PtExecutorResource * 8),
    ]


class PtJobProgress(ctypes.Structure):
    """pt_job_progress."""

    _fields_ = [(name, ctypes.c_int64) for name in (
        "job_id", "stages", "stages_done", "tasks", "tasks_done", "tasks_running", "elapsed_us")]


class PtTaskContext(ctypes.Structure):
    """pt_task_context."""

    _fields_ = [
        ("job_id", ctypes.c_int64),
        ("stage_id", ctypes.c_int64),
        ("partition", ctypes.c_int64),
        ("attempt", ctypes.c_int64),
        ("executor_id", ctypes.c_int64),
        ("stage_attempt", ctypes.c_int64),
        ("num_tasks", ctypes.c_int64),
        ("internal_", ctypes.c_void_p),
    ]


class PtTaskInfo(ctypes.Structure):
    """pt_task_info."""

    _fields_ = [
        ("partition", ctypes.c_int64),
        ("executor_id", ctypes.c_int64),
        ("pid", ctypes.c_int64),
        ("port", ctypes.c_int32),
        ("host", ctypes.c_char * 256),
    ]


# pt_partition_fn: the callback Python functions run behind.
PARTITION_FN = ctypes.CFUNCTYPE(
    _c_int, _P(PtTaskContext), _P(ArrowArrayStream), _vp, ctypes.c_size_t, _P(PtError),
)


class Library:
    """libprotium.so with prototypes bound on first use of each function."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._dll = ctypes.CDLL(str(path))

    def __getattr__(self, name: str) -> Any:
        if name not in _PROTOTYPES:
            raise AttributeError(name)
        try:
            fn = getattr(self._dll, name)
        except AttributeError:
            raise ProtiumError(
                PT_ENOTSUP,
                f"{self.path} has no {name}; rebuild libprotium (make build)",
            ) from None
        fn.restype, fn.argtypes = _PROTOTYPES[name]
        setattr(self, name, fn)  # later lookups skip __getattr__
        return fn


def library_path() -> Path:
    """Where libprotium.so is looked for (see the module docstring)."""
    if os.environ.get("PT_LIBRARY"):
        return Path(os.environ["PT_LIBRARY"])
    if os.environ.get("PT_BUILD_DIR"):
        return Path(os.environ["PT_BUILD_DIR"]) / "libprotium.so"
    installed = Path(__file__).resolve().parent / "libprotium.so"
    if installed.exists():  # pip install: the library sits in the package
        return installed
    return Path(__file__).resolve().parents[2] / "build" / "libprotium.so"


@functools.lru_cache(maxsize=None)
def lib() -> Library:
    """The loaded library (loaded once per process)."""
    path = library_path()
    if not path.exists():
        raise ProtiumError(
            PT_EINVAL,
            f"libprotium not found at {path}; build it (make build) or set "
            "PT_LIBRARY or PT_BUILD_DIR",
        )
    return Library(path)


@functools.lru_cache(maxsize=None)
def libc() -> ctypes.CDLL:
    """The C library, for malloc() and free(): pt_ipc_writer_take_buffer's
    bytes are freed with free(), and pt_ipc_read_buffer is handed malloc'd
    bytes to free."""
    c = ctypes.CDLL(None)
    c.malloc.restype, c.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    c.free.restype, c.free.argtypes = None, [ctypes.c_void_p]
    return c


def check(rc: int, err: PtError) -> None:
    """Raises ProtiumError if rc is not PT_OK."""
    if rc != PT_OK:
        message = err.message.decode("utf-8", "replace") or strerror(rc)
        raise ProtiumError(rc, message)


def strerror(code: int) -> str:
    """The library's short name of a status code."""
    return lib().pt_strerror(code).decode()


# The C Stream Interface callbacks return errno values; this maps them back
# to the status they stand for when reading data.
_ERRNO_TO_STATUS = {
    errno.EINVAL: PT_EFORMAT,
    errno.ENOMEM: PT_ENOMEM,
    errno.EIO: PT_EIO,
    errno.ENOSYS: PT_ENOTSUP,
}


def status_from_errno(e: int) -> int:
    """The protium status for an errno returned by a stream callback."""
    return _ERRNO_TO_STATUS.get(e, PT_EINTERNAL)


def release_schema(s: ArrowSchema) -> None:
    """Releases s unless it is released (moved) already."""
    if s.release:
        s.release(ctypes.byref(s))


def release_array(a: ArrowArray) -> None:
    """Releases a unless it is released (moved) already."""
    if a.release:
        a.release(ctypes.byref(a))


def release_stream(s: ArrowArrayStream) -> None:
    """Releases s unless it is released (moved) already."""
    if s.release:
        s.release(ctypes.byref(s))
