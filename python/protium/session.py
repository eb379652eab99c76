"""session.py — the engine from Python: Session (executors of a master such
as local[2]) and Dataset (a lazy, partitioned plan), shaped like PySpark's
SparkSession and DataFrame. Plans, scheduling and data live in libprotium;
this module turns calls into pt_* calls and pickles Python functions
(cloudpickle) for executors that run them (protium._worker).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import pyarrow as pa

from protium import _lib, _worker
from protium import stats as _stats
from protium.stats import JobStats
from protium._lib import ArrowArray, ArrowArrayStream, ArrowSchema, ProtiumError, PtError
from protium.schema import SchemaLike, as_schema

__all__ = ["Session", "Dataset", "GroupedData", "TaskError"]


class TaskError(ProtiumError):
    """A job failed because a task kept failing: `partition` is the
    partition (None when the message names none), `remote_traceback` the
    Python exception and the end of its traceback as the executor saw it
    (empty when the failure was not a Python exception)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        m = re.search(r"partition (\d+)", message)
        self.partition: Optional[int] = int(m.group(1)) if m else None
        i = message.find(_worker.TRACEBACK_MARK)
        end = message.find("; attempt ", i) if i >= 0 else -1
        self.remote_traceback = (message[message.rfind("': ", 0, i) + 3:end if end >= 0 else None]
                                 if i >= 0 else "")


def _session_dir_of(pid: int) -> Optional[str]:
    """The session directory of an executor (the parent of its
    PROTIUM_EXECUTOR_DIR), as its environment says; None if unreadable."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for entry in env:
        if entry.startswith(b"PROTIUM_EXECUTOR_DIR="):
            return os.path.dirname(os.fsdecode(entry.split(b"=", 1)[1]))
    return None


def _remove_dir(path: str) -> None:
    """Removes path, again while the driver thread (still running: the
    session was abandoned) puts a replacement executor's directory in it."""
    for _ in range(50):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return
        time.sleep(0.02)


def _addr(struct: ctypes.Structure) -> int:
    return ctypes.addressof(struct)


def _call(fn: Callable[..., int], *args: Any) -> None:
    err = PtError()
    rc = fn(*args, ctypes.byref(err))
    if rc != _lib.PT_OK:
        message = err.message.decode("utf-8", "replace") or _lib.strerror(rc)
        if message.startswith("job ") and " failed" in message:
            raise TaskError(rc, message)
        raise ProtiumError(rc, message)


def _pickle(value: object, what: str) -> bytes:
    """Pickles at the call that takes the function, so that a function that
    cannot travel fails here, with the reason."""
    import cloudpickle

    try:
        return cloudpickle.dumps(value)
    except Exception as e:  # noqa: BLE001 - pickling raises anything
        raise TypeError(f"{what}: the function cannot be sent to executors "
                        f"(cloudpickle failed: {type(e).__name__}: {e})") from e


class Session:
    """A set of executor processes and the datasets that run on them.

    `Session("local[2]")` starts two executors on this machine (`Session()`:
    one per core); `conf` takes the engine's keys (README, Configuration),
    e.g. `{"executor.slots": "2", "task.max_failures": "2"}`. Use it as a
    context manager, or call `close()`: it stops every executor and worker.
    `progress`: a console progress bar on stderr for jobs running over a
    second (None, the default: only when stderr is a terminal).
    """

    def __init__(self, master: Optional[str] = None, conf: Optional[dict[str, Any]] = None,
                 *, progress: Optional[bool] = None) -> None:
        lib = _lib.lib()
        # None: a progress bar for jobs over a second when stderr is a terminal
        self.progress = progress
        self._partition_fn = _worker.register()
        self._ptr: Optional[int] = None
        self._datasets: "weakref.WeakSet[Dataset]" = weakref.WeakSet()
        self._queries: "weakref.WeakSet[Any]" = weakref.WeakSet()  # protium.stream
        handle = ctypes.c_void_p()
        _call(lib.pt_conf_new, ctypes.byref(handle))
        try:
            settings = dict(conf or {})
            settings.setdefault("executor.command", self._executor_command())
            # Kept for what the Python side reads itself (arrow.* batch sizes);
            # the engine has validated every value by the time the session opens.
            self._conf = {str(k): str(v) for k, v in settings.items()}
            for key, value in settings.items():
                if isinstance(value, bool):
                    value = "true" if value else "false"
                _call(lib.pt_conf_set, handle, str(key).encode(), str(value).encode())
            session = ctypes.c_void_p()
            _call(lib.pt_session_open, master.encode() if master else None, handle,
                  ctypes.byref(session))
            self._ptr = session.value
        finally:
            lib.pt_conf_free(handle)
        self.master = master or "local"
        Session._active = weakref.ref(self)

    # The session opened last and not closed: what protium.distributed.run
    # uses when it is given no dataset.
    _active: "Optional[weakref.ref[Session]]" = None

    @classmethod
    def active(cls) -> Optional["Session"]:
        """The session opened last and still open, or None."""
        s = cls._active() if cls._active is not None else None
        return s if s is not None and s._ptr is not None else None

    @staticmethod
    def _executor_command() -> str:
        script = Path(__file__).resolve().parent / "_executor.py"
        paths = [str(Path(__file__).resolve().parents[1])]
        paths += [os.path.abspath(p) for p in sys.path if p != paths[0]]
        return " ".join(shlex.quote(a) for a in [sys.executable, str(script), *paths])

    # -- lifetime --------------------------------------------------------

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        """Stops the executors and frees every dataset of the session (they
        cannot be used after)."""
        if getattr(self, "_ptr", None) is None:  # closed, or never opened
            return
        for q in list(self._queries):  # streaming queries first: they run jobs
            q._free()
        for ds in list(self._datasets):
            ds._free()
        _lib.lib().pt_session_close(self._ptr)
        self._ptr = None

    def _abandon(self) -> None:
        """Ctrl-C during an action: the job's thread is still inside
        libprotium, so the session cannot be freed under it. Its executors
        are killed, its temporary directory is removed when the process
        ends, and the rest is left to the process's end (an executor also
        ends when the driver's socket closes)."""
        if self._ptr is None:
            return
        session_dirs = {d for d in map(_session_dir_of, self.executor_pids()) if d}
        # ... and the results directories in memory (local.results_dir): no
        # session of this process outlives it.
        base = self._conf.get("local.results_dir", "/dev/shm")
        session_dirs.update(str(p) for p in Path(base).glob(f"protium-{os.getpid()}-*"))
        for d in session_dirs:  # the driver's temporary files, at the process's end
            atexit.register(_remove_dir, d)
        for _ in range(2):  # a replacement started meanwhile goes too
            for pid in self.executor_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for ds in list(self._datasets):
            ds._ptr = None
        self._ptr = None

    def _handle(self) -> int:
        if self._ptr is None:
            raise ProtiumError(_lib.PT_ESTATE, "the session is closed; open a new Session")
        return self._ptr

    def jobs_progress(self) -> list[dict[str, int]]:
        """Where the running jobs stand: job_id, stages, stages_done, tasks,
        tasks_done, tasks_running, elapsed_us (oldest job first)."""
        out = (_lib.PtJobProgress * 16)()
        n = ctypes.c_int64()
        _call(_lib.lib().pt_session_progress, self._handle(), out, 16, ctypes.byref(n))
        return [{f: getattr(out[i], f) for f, _ in _lib.PtJobProgress._fields_}
                for i in range(min(n.value, 16))]

    def job_stats(self, job_id: int = 0) -> JobStats:
        """What the session's job job_id (0: its last finished job) did, as
        the engine counted it: tasks launched, failed (by cause), retried;
        rows and bytes read and written; executors lost; per stage attempt
        and in total (JobStats.total()). Raises ProtiumError when no job
        finished yet, or when 64 newer ones have since."""
        return _stats.fetch(_lib.lib().pt_session_job_stats, self._handle(), job_id)

    def executor_pids(self) -> list[int]:
        """Process ids of the live executors."""
        infos = (_lib.PtExecutorInfo * 256)()
        n = ctypes.c_int64()
        _call(_lib.lib().pt_session_executors, self._handle(), infos, 256, ctypes.byref(n))
        return [infos[i].pid for i in range(min(n.value, 256)) if infos[i].alive]

    # -- sources ---------------------------------------------------------

    @property
    def read_stream(self) -> Any:
        """Streaming sources (protium.stream.DataStreamReader): files
        arriving in a directory, Kafka topics."""
        from protium.stream import DataStreamReader

        return DataStreamReader(self)

    def _dataset(self, fn: Callable[..., int], *args: Any) -> "Dataset":
        out = ctypes.c_void_p()
        _call(fn, *args, ctypes.byref(out))
        return Dataset(self, out.value)

    def range(self, start: int, end: Optional[int] = None, *, partitions: int = 2) -> "Dataset":
        """One int64 column "id": start..end-1 (or 0..start-1 with one
        argument), in `partitions` contiguous partitions."""
        if end is None:
            start, end = 0, start
        return self._dataset(_lib.lib().pt_range, self._handle(), start, end, partitions)

    def read_ipc(self, path: Union[str, os.PathLike[str]]) -> "Dataset":
        """Arrow IPC files: a file, a directory of them or a glob; one
        partition per file."""
        return self._dataset(_lib.lib().pt_read_ipc, self._handle(), os.fsencode(path))

    def from_arrow(self, data: object, *, partitions: Optional[int] = None) -> "Dataset":
        """A dataset of in-memory Arrow data: anything with
        __arrow_c_stream__ or __arrow_c_array__ (pyarrow, polars, DuckDB,
        nanoarrow). `partitions`: how many (default: one per batch)."""
        if isinstance(data, pa.RecordBatchReader):
            table = data.read_all()
        elif isinstance(data, pa.Table):
            table = data
        elif hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__"):
            table = pa.table(data)
        else:
            raise TypeError(f"from_arrow: {type(data).__name__} speaks no Arrow PyCapsule "
                            "interface (__arrow_c_stream__ or __arrow_c_array__)")
        if partitions is None:
            batches = table.to_batches() or [pa.RecordBatch.from_pylist([], table.schema)]
        else:
            if partitions < 1:
                raise ValueError("from_arrow: partitions must be at least 1")
            step = -(-table.num_rows // partitions) if table.num_rows else 0
            batches = [table.slice(i * step, step).combine_chunks().to_batches() for i in
                       range(partitions)]
            batches = [b[0] if b else pa.RecordBatch.from_pylist([], table.schema)
                       for b in batches]
        schema = ArrowSchema()
        table.schema._export_to_c(_addr(schema))
        arrays = (ArrowArray * len(batches))()
        for i, b in enumerate(batches):
            b._export_to_c(_addr(arrays[i]))
        try:
            return self._dataset(_lib.lib().pt_from_batches, self._handle(), ctypes.byref(schema),
                                 arrays, len(batches))
        finally:
            _lib.release_schema(schema)
            for a in arrays:
                _lib.release_array(a)

    def from_pandas(self, df: Any, *, partitions: Optional[int] = None) -> "Dataset":
        """A dataset of a pandas DataFrame (its index is dropped)."""
        return self.from_arrow(pa.Table.from_pandas(df, preserve_index=False),
                               partitions=partitions or 1)

    # -- Parquet source (pt_read_parquet) ----------------------------------

    def read_parquet(self, path: Union[str, os.PathLike[str]], *,
                     columns: Optional[Sequence[str]] = None, filter: object = None,
                     batch_size: int = 0,
                     read_dictionary: Optional[Sequence[str]] = None,
                     partition_schema: Optional[SchemaLike] = None) -> "Dataset":
        """Parquet files as a dataset (PySpark's spark.read.parquet): a file,
        a directory (Hive-style key=value directories become columns) or a
        glob. Row groups are dealt into partitions of about equal size, at
        most about parquet.partition_bytes, and at least one per task slot
        when the files are small (none under 4 MiB).

        columns: the top-level columns to read, in this order (None: all).
        filter: pyarrow's form, [(column, op, value), ...] (AND) or a list of
        such lists (OR); ops "=", "!=", "<", "<=", ">", ">=", "in", "not in",
        "is_null", "is_not_null" (a null satisfies neither "!=" nor "not in").
        Directories, row groups and (with a page index) pages that cannot
        match are not read; the rows of the others are all returned (filter
        them with Dataset.filter).
        batch_size: rows per batch at most (0: 65536).
        read_dictionary: string or binary columns to read as dictionary
        arrays (pyarrow's option); columns written from dictionaries are
        read so anyway.
        partition_schema: types for Hive-style keys, by name (a pyarrow
        schema or "day date, ts timestamp"); keys it does not name are
        inferred as Spark infers them (int, bigint, decimal, double,
        timestamp, date, string).
        """
        from protium.parquet import _read_options

        opts, keep = _read_options(columns, batch_size, filter, read_dictionary, partition_schema)
        ds = self._dataset(_lib.lib().pt_read_parquet, self._handle(), os.fsencode(path),
                           ctypes.byref(opts))
        del keep  # the filter and names were copied
        return ds

    def read_delta(self, path: Union[str, os.PathLike[str]], *, version: Optional[int] = None,
                   timestamp: object = None, columns: Optional[Sequence[str]] = None,
                   filter: object = None, batch_size: int = 0) -> "Dataset":
        """A Delta Lake table as a dataset (PySpark's
        spark.read.format("delta")): the latest version, or `version`, or
        the latest committed at or before `timestamp` (a datetime, an ISO
        8601 string or ms since the epoch). Columns come in the table
        schema's order (or `columns`' order), partition columns among them.
        `filter` (read_parquet's form; dates,
        datetimes and decimals allowed as values) skips the files whose
        partition values or statistics rule it out; the rows of the others
        are all returned. `Dataset.delta_scan()` tells how many were skipped.
        """
        from protium import delta

        opts, keep = delta.read_options(version, timestamp, columns, filter, batch_size)
        ds = self._dataset(delta.fn("pt_read_delta"), self._handle(), os.fsencode(path),
                           ctypes.byref(opts))
        del keep  # copied by pt_read_delta
        return ds

    # -- warehouse connectors (CSV) -------------------------------------------
    # (protium.connectors holds their ctypes side)

    def read_csv(self, path: Union[str, os.PathLike[str]], *, schema: Optional[SchemaLike] = None,
                 header: bool = False, delimiter: str = ",", quote: Optional[str] = '"',
                 escape: Optional[str] = None, null_values: Optional[Sequence[str]] = None,
                 infer_rows: int = 1000, mode: str = "FAILFAST",
                 corrupt_column: Optional[str] = None) -> "Dataset":
        """CSV files (a file, a directory's *.csv/*.tsv, or a glob) as
        PySpark's read.csv reads them: `schema` given (a pyarrow schema or
        "id long, name string") or inferred from the first `infer_rows`
        records; `mode` FAILFAST, DROPMALFORMED or PERMISSIVE (malformed
        records' text in `corrupt_column`); `quote` None turns quoting off,
        `escape` defaults to the quote (a doubled quote is a quote);
        `null_values` None: only the empty field is null. Big files are cut
        into partitions of csv.partition_bytes at record starts. `count()`
        of the dataset converts no value (as Spark's column pruning): in
        FAILFAST it fails on a record of the wrong shape but not on a value
        that does not convert, which fails `to_arrow()` and the writes."""
        from protium import connectors
        args = connectors.CsvReadArgs(schema=schema, header=header, delimiter=delimiter,
                                      quote=quote, escape=escape, null_values=null_values,
                                      infer_rows=infer_rows, mode=mode,
                                      corrupt_column=corrupt_column)
        try:
            return self._dataset(connectors.fn("pt_read_csv"), self._handle(),
                                 os.fsencode(path), ctypes.byref(args.options))
        finally:
            args.close()

    def read_sql(self, url: str, table_or_query: Optional[str] = None, /, *,
                 table: Optional[str] = None, query: Optional[str] = None,
                 column: Optional[str] = None, lower_bound: Optional[int] = None,
                 upper_bound: Optional[int] = None, num_partitions: Optional[int] = None,
                 predicates: Optional[Sequence[str]] = None,
                 fetch_size: Optional[int] = None,
                 adbc_driver: Optional[str] = None) -> "Dataset":
        """A PostgreSQL or MySQL/MariaDB table or query (url:
        postgresql://user:pw@host:port/db or mysql://user:pw@host:port/db),
        or one of any database with an ADBC driver (url: adbc:NAME:..., e.g.
        adbc:sqlite:///path.db or adbc:postgresql://user@host/db), as
        PySpark's read.jdbc: `column`, `lower_bound`, `upper_bound` and
        `num_partitions` make ranges of a numeric column (the bounds set the
        strides, they filter nothing), or `predicates` gives one WHERE
        condition per partition. Each task opens its own connection and
        streams its rows (binary COPY) in batches of `fetch_size`.
        `adbc_driver`: the ADBC driver library's path; by default the one of
        the installed adbc_driver_NAME package, else found by name
        (sql.adbc.driver_path). A password missing from the URL comes from
        the sql.password.<host>[:<port>] key of the URL's host, else the
        sql.password key, then PGPASSWORD / MYSQL_PWD.

        The source is `table=` or `query=`, or the second positional
        argument (`table_or_query`, as in `s.read_sql(url, "events")`): a
        query when, after whitespace, it starts with '(' or the word SELECT,
        WITH or VALUES (any case), else a table name. Giving more than one
        of the three raises ValueError."""
        from protium import connectors
        if table_or_query is not None:
            if table is not None or query is not None:
                raise ValueError("read_sql: give the table or query once: as the second "
                                 "argument, table= or query=")
            if connectors.is_query(table_or_query):
                query = table_or_query
            else:
                table = table_or_query
        args = connectors.SqlReadArgs(table=table, query=query, column=column,
                                      lower_bound=lower_bound, upper_bound=upper_bound,
                                      num_partitions=num_partitions, predicates=predicates,
                                      fetch_size=fetch_size, url=url, adbc_driver=adbc_driver)
        return self._dataset(connectors.fn("pt_read_sql"), self._handle(), url.encode(),
                             args.source, ctypes.byref(args.options))

    # -- end of warehouse connectors ----------------------------------------------


class _ProgressBar:
    """PySpark's console progress bar, for an action running over a second:
    `[Stage 2/2: ======>       (5 + 2) / 8]` on stderr, redrawn in place
    at most ten times a second and erased when the action ends."""

    def __init__(self, session: Session) -> None:
        enabled = session.progress
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.session = session
        self.enabled = enabled
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False

    def update(self) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.started < 1.0 or now - self.last < 0.1:
            return
        self.last = now
        try:
            jobs = self.session.jobs_progress()
        except ProtiumError:
            return
        if not jobs:
            return
        j = jobs[-1]
        stage = min(j["stages_done"] + 1, j["stages"])
        width = 30
        filled = width * j["tasks_done"] // max(j["tasks"], 1)
        bar = "=" * filled + (">" if filled < width else "") + " " * (width - filled - 1)
        line = (f"[Stage {stage}/{j['stages']}:{bar[:width]}({j['tasks_done']} + "
                f"{j['tasks_running']}) / {j['tasks']}]")
        sys.stderr.write("\r" + line)
        sys.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()
            self.shown = False


class _Barrier:
    """A stage operation of Dataset.barrier()."""

    def __init__(self, max_attempts: int) -> None:
        self.max_attempts = max_attempts


def _fn_check(fn: object, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"{what}: expected a function, got {type(fn).__name__}")


class Dataset:
    """A lazy, partitioned dataset. Transformations return new datasets;
    actions (count, take, to_arrow, to_pandas, write_ipc) run a job on the
    session's executors. Every dataset is an Arrow stream source:
    `pyarrow.table(ds)`, `polars.from_arrow(ds)` and DuckDB read it."""

    def __init__(self, session: Session, ptr: Optional[int]) -> None:
        self.session = session
        self._ptr = ptr
        # The Python part of this dataset's stage, when it has one: the
        # stage's input (a dataset without one), what applies to the whole
        # stage (barrier, ResourceProfile) and the Python steps; _ptr is
        # then one pt_map_partitions over them (see _with_stage).
        self._stage_input: Optional[Dataset] = None
        self._stage_ops: tuple[Any, ...] = ()
        self._steps: tuple[dict[str, Any], ...] = ()
        session._datasets.add(self)

    def _free(self) -> None:
        if self._ptr is not None:
            _lib.lib().pt_dataset_free(self._ptr)
            self._ptr = None

    def __del__(self) -> None:
        if self.session._ptr is not None:
            self._free()

    def _handle(self) -> int:
        self.session._handle()
        if self._ptr is None:
            raise ProtiumError(_lib.PT_ESTATE, "the dataset's session is closed")
        return self._ptr

    def __repr__(self) -> str:
        return f"Dataset({', '.join(f'{f.name}: {f.type}' for f in self.schema)})"

    # -- what it is ------------------------------------------------------

    @property
    def schema(self) -> pa.Schema:
        """The schema of the rows (no job runs)."""
        s = ArrowSchema()
        _call(_lib.lib().pt_dataset_schema, self._handle(), ctypes.byref(s))
        return pa.Schema._import_from_c(_addr(s))

    @property
    def num_partitions(self) -> int:
        """The number of partitions."""
        return int(_lib.lib().pt_dataset_num_partitions(self._handle()))

    # -- transformations ---------------------------------------------------

    def _parts(self) -> tuple["Dataset", tuple[Any, ...], tuple[dict[str, Any], ...]]:
        if self._stage_input is None:
            return self, (), ()
        return self._stage_input, self._stage_ops, self._steps

    def _with_stage(self, ops: tuple[Any, ...], steps: tuple[dict[str, Any], ...],
                    what: str) -> "Dataset":
        """The dataset of this one's stage input with ops and steps: the
        stage's Python functions composed into one partition function
        (pt_map_partitions, one per stage), the stage wrapped in pt_barrier
        and pt_with_resources as ops say."""
        base, _, _ = self._parts()
        lib = _lib.lib()
        cur = base
        stage: dict[str, Any] = {"barrier": False, "cpus": 1, "resource_names": [],
                                 "resource_env": {}}
        names = {k.split(".")[1] for k in self.session._conf
                 if k.startswith("resources.") and k.count(".") >= 2}
        stage["resource_names"] = sorted(names | {"gpu"})
        for op in ops:
            if isinstance(op, _Barrier):
                cur = self.session._dataset(lib.pt_barrier_attempts, cur._handle(),
                                            op.max_attempts)
                stage["barrier"] = True
            else:
                cur = op._apply(cur)
                stage["cpus"] = op.cpus or 1
        stage["resource_env"] = {n: self.session._conf.get(f"resources.{n}.env",
                                                        "CUDA_VISIBLE_DEVICES" if n == "gpu"
                                                        else "")
                                 for n in stage["resource_names"]}
        stage["resource_env"] = {n: v for n, v in stage["resource_env"].items() if v}
        if steps:
            plan = {"stage": stage, "steps": list(steps), "in_schema": base.schema}
            arg = _pickle(plan, what)
            out = ArrowSchema()
            steps[-1]["out_schema"]._export_to_c(_addr(out))
            try:
                cur = self.session._dataset(lib.pt_map_partitions, cur._handle(),
                                            self.session._partition_fn, ctypes.byref(out), arg,
                                            len(arg))
            finally:
                _lib.release_schema(out)
        elif cur is base:
            return base
        cur._stage_input, cur._stage_ops, cur._steps = base, ops, steps
        return cur

    def _map(self, plan: dict[str, Any], what: str, whole: bool = False) -> "Dataset":
        """A Python step after this dataset's, in its stage. whole: the
        step reads the whole partition (no slicing to batch limits)."""
        plan["what"] = what
        plan["in_schema"] = self.schema
        if not whole:
            conf = self.session._conf
            plan["max_records"] = int(conf.get("arrow.max_records_per_batch", "0"))
            plan["max_bytes"] = int(conf.get("arrow.max_bytes_per_batch", "0"))
        _pickle(plan, what)  # a function that cannot travel fails here
        _, ops, steps = self._parts()
        return self._with_stage(ops, steps + (plan,), what)

    def map_in_arrow(self, fn: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]],
                     schema: SchemaLike) -> "Dataset":
        """fn takes an iterator of pyarrow.RecordBatch and yields batches of
        `schema` (a pyarrow schema or DDL such as "id long, y double"), as
        PySpark's mapInArrow: it is called once per partition, with an
        iterator over the partition's batches (cut to
        arrow.max_records_per_batch / _bytes_ as zero-copy slices), so
        state it builds (a loaded model) lasts the partition. The batches it
        gets are the executor's buffers, not copies."""
        _fn_check(fn, "map_in_arrow")
        return self._map({"kind": "arrow", "fn": fn, "out_schema": as_schema(schema)},
                         "map_in_arrow")

    def map_in_pandas(self, fn: Callable[[Iterator[Any]], Iterator[Any]],
                      schema: SchemaLike) -> "Dataset":
        """fn takes an iterator of pandas.DataFrame and yields DataFrames
        with the columns of `schema` (PySpark's mapInPandas): called once
        per partition, with an iterator over its batches as DataFrames."""
        _fn_check(fn, "map_in_pandas")
        return self._map({"kind": "pandas", "fn": fn, "out_schema": as_schema(schema)},
                         "map_in_pandas")

    def map_partitions(self, fn: Callable[[Iterator[Any]], Iterator[Any]],
                       schema: Optional[SchemaLike] = None, *,
                       pandas: bool = False) -> "Dataset":
        """fn runs once per partition: it takes an iterator of the
        partition's pyarrow.RecordBatch (pandas=True: pandas.DataFrame) and
        yields batches (DataFrames) of `schema` (default: the input's).
        After barrier() this is a barrier stage's function, where
        BarrierTaskContext.get() works (PySpark's
        rdd.barrier().mapPartitions)."""
        _fn_check(fn, "map_partitions")
        out = as_schema(schema) if schema is not None else self.schema
        return self._map({"kind": "pandas" if pandas else "arrow", "fn": fn,
                          "out_schema": out}, "map_partitions")

    def barrier(self, max_attempts: int = 0) -> "Dataset":
        """This dataset's stage as a barrier stage (PySpark's rdd.barrier()):
        its tasks start together, reach each other through
        BarrierTaskContext (barrier(), all_gather(), task_infos()), and if
        one fails all are stopped and the stage runs again, up to
        barrier.max_attempts. The stage is all of it, from the previous
        shuffle or source to the next shuffle or action: put a
        repartition() before to keep upstream work out of the gang. A stage
        with more tasks than the cluster has slots fails at once.
        max_attempts: the stage's own limit of attempts (0: the session's
        barrier.max_attempts)."""
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) \
                or max_attempts < 0:
            raise ValueError(f"barrier: max_attempts must be an int >= 1 (0: the session's "
                             f"barrier.max_attempts), not {max_attempts!r}")
        base, ops, steps = self._parts()
        ops = tuple(op for op in ops if not isinstance(op, _Barrier))
        return self._with_stage(ops + (_Barrier(max_attempts),), steps, "barrier")

    def with_resources(self, profile: Optional[Any] = None, *, cpus: Optional[int] = None,
                       gpus: Optional[float] = None,
                       resources: Optional[dict[str, float]] = None,
                       optional: Any = False) -> "Dataset":
        """Runs this dataset's stage with a resource profile (PySpark's
        withResources): a protium.ResourceProfile, or its arguments here
        (`with_resources(cpus=1, gpus=0.5)`). Every task gets concrete
        addresses: TaskContext.resources()["gpu"].addresses, and
        CUDA_VISIBLE_DEVICES (resources.<name>.env) set while its Python
        functions run. One profile per stage: a second replaces the first."""
        from protium.resources import ResourceProfile

        if profile is None:
            profile = ResourceProfile(cpus=cpus, gpus=gpus, resources=resources,
                                      optional=optional)
        elif not isinstance(profile, ResourceProfile):
            raise TypeError("with_resources: expected a protium.ResourceProfile, got "
                            f"{type(profile).__name__}")
        base, ops, steps = self._parts()
        ops = tuple(op for op in ops if isinstance(op, _Barrier)) + (profile,)
        return self._with_stage(ops, steps, "with_resources")

    def map_rows(self, fn: Callable[[dict[str, Any]], Any],
                 schema: SchemaLike) -> "Dataset":
        """Plain row-at-a-time Python: fn takes each row as a dict and
        returns a dict of the columns of `schema` (or a tuple or list of
        their values, in the schema's order). For code that cannot be
        vectorized, and for comparison: it is much slower than the others."""
        _fn_check(fn, "map_rows")
        return self._map({"kind": "rows", "fn": fn, "out_schema": as_schema(schema)},
                         "map_rows")

    def with_column(self, name: str, fn: Callable[..., Any], *,
                    columns: Optional[Sequence[str]] = None,
                    type: Union[pa.DataType, str, None] = None,
                    kind: str = "pandas") -> "Dataset":
        """Adds (or replaces) column `name` computed by a vectorized fn:
        with `columns`, fn gets one pandas.Series (kind="arrow": one
        pyarrow.Array) per named column; without, the whole batch as a
        pandas.DataFrame (or pyarrow.RecordBatch). It returns one value per
        row. `type` (pyarrow type or DDL name) defaults to what fn returns
        for an empty batch."""
        _fn_check(fn, "with_column")
        if kind not in ("pandas", "arrow"):
            raise ValueError("with_column: kind must be 'pandas' or 'arrow'")
        in_schema = self.schema
        for c in columns or []:
            if c not in in_schema.names:
                raise ValueError(f"with_column: no column {c!r}; the columns are "
                                 f"{in_schema.names}")
        plan = {"kind": f"column_{kind}", "fn": fn, "name": name,
                "columns": list(columns) if columns is not None else None,
                "what": "with_column", "in_schema": in_schema}
        if isinstance(type, str):
            typ = as_schema(f"x {type}").field(0).type
        elif type is None:
            empty = pa.RecordBatch.from_pylist([], in_schema)
            typ = _worker._as_array(fn(*_worker._inputs(plan, empty)), None, 0,
                                    "with_column").type
        else:
            typ = type
        fields = [f for f in in_schema if f.name != name] + [pa.field(name, typ)]
        plan["out_schema"] = pa.schema(fields)
        return self._map(plan, "with_column")

    def filter(self, predicate: Callable[..., Any], *, columns: Optional[Sequence[str]] = None,
               kind: str = "pandas") -> "Dataset":
        """Keeps the rows where the vectorized predicate is true (null =
        false); it is called as with_column's fn and returns booleans."""
        _fn_check(predicate, "filter")
        if kind not in ("pandas", "arrow"):
            raise ValueError("filter: kind must be 'pandas' or 'arrow'")
        plan = {"kind": f"filter_{kind}", "fn": predicate,
                "columns": list(columns) if columns is not None else None,
                "out_schema": self.schema}
        return self._map(plan, "filter")

    def repartition(self, n: int, *keys: str) -> "Dataset":
        """A shuffle into n partitions: round robin, or by the hash of the
        key columns (equal keys land in one partition)."""
        if not keys:
            return self.session._dataset(_lib.lib().pt_repartition, self._handle(), n)
        arr = (ctypes.c_char_p * len(keys))(*[k.encode() for k in keys])
        return self.session._dataset(_lib.lib().pt_repartition_by, self._handle(), n, arr,
                                     len(keys))

    # -- actions -----------------------------------------------------------

    def _run(self, fn: Callable[..., int], *args: Any) -> None:
        """Runs an action in a thread, so that Ctrl-C reaches the driver: it
        then kills the session's executors, closes the session to further
        use and raises KeyboardInterrupt."""
        box: list[BaseException] = []

        def target() -> None:
            try:
                _call(fn, self._handle(), *args)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                box.append(e)

        t = threading.Thread(target=target, daemon=True, name="protium-action")
        t.start()
        bar = _ProgressBar(self.session)
        try:
            while t.is_alive():
                t.join(0.05)
                bar.update()
        except KeyboardInterrupt:
            bar.clear()
            self.session._abandon()
            raise
        bar.clear()
        if box:
            raise box[0]

    def _reader(self) -> pa.RecordBatchReader:
        stream = ArrowArrayStream()
        self._run(_lib.lib().pt_collect, ctypes.byref(stream))
        return pa.RecordBatchReader._import_from_c(_addr(stream))

    def to_arrow(self) -> pa.Table:
        """Every row, in partition order, as a pyarrow Table (the result
        files' buffers, not copies)."""
        reader = self._reader()
        return pa.Table.from_batches(list(reader), reader.schema)

    def to_pandas(self) -> Any:
        """Every row as a pandas DataFrame."""
        return self.to_arrow().to_pandas()

    def take(self, n: int) -> list[dict[str, Any]]:
        """The first n rows as dicts."""
        rows: list[dict[str, Any]] = []
        for batch in self._reader():
            rows.extend(batch.slice(0, n - len(rows)).to_pylist())
            if len(rows) >= n:
                break
        return rows

    def count(self) -> int:
        """The number of rows."""
        n = ctypes.c_int64()
        self._run(_lib.lib().pt_count, ctypes.byref(n))
        return n.value

    def last_job(self) -> JobStats:
        """What the job of the last action on this dataset did (count,
        to_arrow, write_*; a failed one too), as Session.job_stats tells it.
        Raises ProtiumError when no action ran on it yet."""
        return _stats.fetch(_lib.lib().pt_dataset_last_job, self._handle())

    def write_ipc(self, path: Union[str, os.PathLike[str]]) -> None:
        """One Arrow IPC file per partition in directory path (new or
        empty), then _SUCCESS: all or nothing."""
        self._run(_lib.lib().pt_write_ipc, os.fsencode(path), None)

    # -- Parquet sink (pt_write_parquet) -----------------------------------

    def write_parquet(self, path: Union[str, os.PathLike[str]], mode: Optional[str] = None,
                      partition_by: Optional[Sequence[str]] = None,
                      compression: Optional[str] = "snappy", *, compression_level: int = 0,
                      row_group_rows: int = 0, page_bytes: int = 0,
                      dictionary_page_bytes: int = 0, use_dictionary: bool = True,
                      data_page_version: int = 1, write_statistics: bool = True,
                      metadata: Optional[Mapping[object, object]] = None,
                      partitionBy: Optional[Sequence[str]] = None) -> None:
        """Parquet files in directory path, then _SUCCESS: all or nothing
        (PySpark's df.write.parquet(path, mode, partitionBy, compression)).
        mode: "error"/"errorifexists" (default: the directory must be new
        or empty), "append" (files added beside those there, named
        part-NNNNN-TOKEN.parquet), "overwrite" (its contents replaced once
        the job has succeeded) or "ignore" (a directory that is not empty
        is left alone and nothing is written). Without partition_by, one
        part-NNNNN.parquet per partition; with it (or PySpark's
        partitionBy), Hive-style directories,
        path/k1=v1/k2=v2/part-NNNNN.parquet, one file per partition and
        combination of those columns' values (boolean, integer, float,
        decimal, string, binary, date32 or timestamp columns), which leave
        the files (read_parquet and pyarrow.dataset(..., partitioning="hive")
        give them back as columns).

        compression: "snappy" (default, as Spark), "zstd", "gzip",
        "brotli", "lz4_raw" or "none"/"uncompressed". 0 for the sizes: the
        writer's defaults (row groups of 1048576 rows, 1 MiB pages and
        dictionaries). metadata: extra key-value pairs for each file's
        footer (the schema's metadata goes there anyway).
        """
        from protium.parquet import _set_metadata, _write_options

        modes = {None: 0, "error": 0, "errorifexists": 0, "append": 1, "overwrite": 2,
                 "ignore": 3}
        key = mode.lower() if isinstance(mode, str) else mode
        if key not in modes:
            raise ValueError(f"write_parquet: mode must be one of "
                             f"{sorted(k for k in modes if k)}, not {mode!r}")
        if partitionBy is not None:
            if partition_by is not None:
                raise ValueError("write_parquet: give partition_by or partitionBy, not both")
            partition_by = partitionBy
        codec = "none" if compression in ("uncompressed", None) else compression
        opts = _write_options(codec, compression_level, row_group_rows, page_bytes,
                              dictionary_page_bytes, use_dictionary, data_page_version,
                              write_statistics, True)
        opts.mode = modes[key]
        keep = _set_metadata(opts, metadata)
        if isinstance(partition_by, str):
            partition_by = [partition_by]
        keys = list(partition_by or [])
        names = (ctypes.c_char_p * max(len(keys), 1))(*[k.encode() for k in keys])
        if keys:
            opts.partition_by = ctypes.cast(names, ctypes.POINTER(ctypes.c_char_p))
            opts.n_partition_by = len(keys)
        self._run(_lib.lib().pt_write_parquet, os.fsencode(path), ctypes.byref(opts))
        del keep

    def write_delta(self, path: Union[str, os.PathLike[str]], *, mode: str = "error",
                    partition_by: Optional[Sequence[str]] = None,
                    compression: str = "snappy", row_group_rows: int = 0,
                    merge_schema: bool = False, schema_mode: Optional[str] = None,
                    replace_where: object = None) -> None:
        """The rows as one new version of the Delta table at path (created
        when missing): mode "error" (refuse an existing table), "append" or
        "overwrite"; partition_by for a new table (an existing one keeps
        its own). Data files are committed exactly once, then the next log
        entry is created atomically; a concurrent writer's commit of that
        version fails this one (ProtiumError, PT_ESTATE) and leaves the table
        as the other writer left it. row_group_rows: rows per Parquet row
        group (0: the writer's 1048576). merge_schema=True (or
        schema_mode="merge", deltalake's spelling) adds the columns the
        table lacks to its schema in the same commit. replace_where (with
        mode="overwrite"; a SQL predicate such as "day >= '2024-01-02'" or
        read_delta's filter form) on any columns replaces only the rows it
        matches (files it partly matches are rewritten by the executors
        and committed with it) and refuses rows outside it."""
        from protium import delta
        from protium.parquet import _write_options

        codec = "none" if compression in ("uncompressed", None) else compression
        popts = _write_options(codec, 0, row_group_rows, 0, 0, True, 1, True, True)
        if schema_mode not in (None, "merge"):
            raise ProtiumError(_lib.PT_EINVAL, f"write_delta: schema_mode {schema_mode!r}; "
                               "protium merges schemas (\"merge\") or keeps them (None)")
        opts, keep = delta.write_options(mode, partition_by, popts,
                                         merge_schema or schema_mode == "merge", replace_where,
                                         self.schema)
        self._run(delta.fn("pt_write_delta"), os.fsencode(path), ctypes.byref(opts))
        del keep

    def parquet_scan(self) -> dict[str, int]:
        """For a dataset made by Session.read_parquet: what planning passed
        over. files and files_pruned (by a filter on Hive-style partition
        keys), directories_pruned (the key=value directories of those),
        row_groups (of the files not pruned) and row_groups_skipped (ruled
        out by their statistics). Pages skipped are counted when the tasks
        run, in the job's stats."""
        from protium.parquet import scan_info
        return scan_info(self._handle())

    def delta_scan(self) -> dict[str, int]:
        """For a dataset made by Session.read_delta: the version read, the
        table's active files and how many the filter skipped."""
        from protium import delta
        return delta.scan_info(self._handle())

    # -- warehouse connectors (CSV) -------------------------------------------

    def write_csv(self, path: Union[str, os.PathLike[str]], *, header: bool = True,
                  delimiter: str = ",") -> None:
        """One CSV file per partition in directory path (new or empty),
        then _SUCCESS: all or nothing, one attempt per partition."""
        from protium import connectors
        opts = connectors.write_options(header, delimiter)
        self._run(connectors.fn("pt_write_csv"), os.fsencode(path), ctypes.byref(opts))

    def write_sql(self, url: str, table: str, *, mode: str = "error") -> None:
        """Writes the rows into a PostgreSQL or MySQL table, or through the
        ADBC SQLite or PostgreSQL driver (adbc:sqlite:///path.db,
        adbc:postgresql://...), exactly once, as PySpark's write.jdbc: mode
        "error" (the table must not exist), "append" or "overwrite" (its
        rows replaced). Every task attempt stages its rows in a table of
        its own (into a new PostgreSQL table: in one shared staging table,
        a transaction per attempt, renamed to the table); one transaction
        moves the winners in. An ADBC URL's driver
        is the installed adbc_driver_NAME package's unless the URL ends in
        #adbc_driver=PATH."""
        from protium import connectors
        if mode.lower() not in connectors.SQL_MODES:
            raise ValueError(f"write_sql: mode must be one of {sorted(connectors.SQL_MODES)}, "
                             f"not {mode!r}")
        if url.startswith("adbc:") and "#adbc_driver=" not in url:
            lib = connectors.adbc_driver_of(url)
            if lib:
                url = f"{url}#adbc_driver={lib}"
        self._run(connectors.fn("pt_write_sql"), url.encode(), table.encode(),
                  connectors.SQL_MODES[mode.lower()])

    # -- end of warehouse connectors ----------------------------------------------

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        """The Arrow PyCapsule interface: runs the job and hands the result
        stream over without a copy."""
        return self._reader().__arrow_c_stream__(requested_schema)

    def group_by(self, *keys: str) -> "GroupedData":
        """Rows grouped by the key columns, for apply_in_pandas."""
        names = self.schema.names
        if not keys:
            raise ValueError("group_by: name at least one key column")
        for k in keys:
            if k not in names:
                raise ValueError(f"group_by: no column {k!r}; the columns are {names}")
        return GroupedData(self, list(keys))


class GroupedData:
    """A dataset grouped by key columns (Dataset.group_by)."""

    def __init__(self, ds: Dataset, keys: list[str]) -> None:
        self.dataset = ds
        self.keys = keys

    def apply_in_pandas(self, fn: Callable[[Any], Any], schema: SchemaLike, *,
                        partitions: Optional[int] = None) -> Dataset:
        """Grouped map (PySpark's applyInPandas): fn gets one
        pandas.DataFrame per key, with all of that key's rows, and returns a
        DataFrame with the columns of `schema`. The rows are shuffled by the
        keys into `partitions` partitions (default: the dataset's); each
        partition is then read whole by a partition function
        (pt_map_partitions; it must fit in an executor's memory) and split
        by key. Null keys form a group of their own."""
        _fn_check(fn, "apply_in_pandas")
        n = partitions or self.dataset.num_partitions
        shuffled = self.dataset.repartition(n, *self.keys)
        return shuffled._map({"kind": "grouped_pandas", "fn": fn, "keys": self.keys,
                              "out_schema": as_schema(schema)}, "apply_in_pandas", whole=True)
