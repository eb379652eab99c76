"""stream.py — streaming queries from Python, shaped like PySpark's
DataStreamReader / DataStreamWriter / StreamingQuery: a source of arriving
data (s.read_stream), the transformations of every micro-batch (those of
Dataset), a sink, a trigger and a checkpoint. The micro-batch engine is
libprotium's (src/stream): this module hands it a source and a sink and
replays the recorded transformations on each batch's Dataset.
"""

from __future__ import annotations

import ctypes
import os
import threading
import traceback
import uuid
from typing import Any, Callable, Optional, Sequence, Union

from protium import _lib, _worker
from protium._lib import ProtiumError, PtError

__all__ = ["DataStreamReader", "StreamingDataset", "DataStreamWriter", "StreamingQuery",
           "StreamingQueryException", "Cached", "cache"]

_P = ctypes.POINTER
_vp, _c_int, _c_i64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
_err = _P(PtError)

# pt_stream_sink.write_batch and pt_stream_transform_fn.
WRITE_BATCH_FN = ctypes.CFUNCTYPE(_c_int, _vp, _vp, _c_i64, _P(_c_i64), _err)
TRANSFORM_FN = ctypes.CFUNCTYPE(_c_int, _vp, _vp, _P(_vp), _err)


class PtStreamSource(ctypes.Structure):
    """pt_stream_source: filled by pt_stream_files_source (or another
    source's constructor); Python never calls its functions."""

    _fields_ = [("name", ctypes.c_char_p), ("state", _vp)] + [
        (f, _vp) for f in ("open", "initial_offsets", "latest_offsets", "next_offsets",
                           "plan_batch", "commit", "free")]


class PtStreamSink(ctypes.Structure):
    """pt_stream_sink."""

    _fields_ = [("name", ctypes.c_char_p), ("state", _vp), ("open", _vp), ("write_batch", _vp),
                ("free", _vp)]


class PtStreamOptions(ctypes.Structure):
    """pt_stream_options."""

    _fields_ = [
        ("checkpoint_dir", ctypes.c_char_p),
        ("trigger", _c_int),
        ("interval_ms", _c_i64),
        ("transform", _vp),
        ("transform_arg", _vp),
        ("progress", _c_int),
        ("name", ctypes.c_char_p),
    ]


class PtStreamStatus(ctypes.Structure):
    """pt_stream_status."""

    _fields_ = [
        ("state", _c_int),
        ("batches_committed", _c_i64),
        ("next_batch_id", _c_i64),
        ("retries", _c_i64),
        ("message", ctypes.c_char * _lib.PT_ERROR_SIZE),
    ]


class PtStreamProgress(ctypes.Structure):
    """pt_stream_progress."""

    _fields_ = [
        ("batch_id", _c_i64),
        ("input_rows", _c_i64),
        ("output_rows", _c_i64),
        ("records", _c_i64),
        ("rows_per_s", ctypes.c_double),
        ("duration_us", _c_i64),
        ("event_time_us", _c_i64),
        ("latency_us", _c_i64),
        ("committed_us", _c_i64),
        ("attempts", _c_i64),
        ("recovered", ctypes.c_int32),
        ("start_offsets", ctypes.c_char * 512),
        ("end_offsets", ctypes.c_char * 512),
        ("kafka_producers", _c_i64),
    ]


def _kafka_options(bootstrap: str, options: Optional[dict[str, Any]],
                   value_format: Optional[str] = None) -> Any:
    """protium.kafka's options (the struct in .c, and what it points to)."""
    from protium.kafka import _Options, _value_format

    return _Options(bootstrap, options, None, None,
                    value_format=_value_format(value_format, "write_stream.kafka"))


_lib._PROTOTYPES.update({
    "pt_stream_kafka_source": (_c_int, [_vp, ctypes.c_char_p, ctypes.c_char_p, _c_i64,
                                        _P(PtStreamSource), _err]),
    "pt_stream_kafka_sink": (_c_int, [_vp, ctypes.c_char_p, ctypes.c_char_p, _P(PtStreamSink),
                                      _err]),
    "pt_stream_files_source": (_c_int, [ctypes.c_char_p, _c_int, _c_i64, _P(PtStreamSource),
                                        _err]),
    "pt_stream_csv_source": (_c_int, [ctypes.c_char_p, _vp, _c_i64, _P(PtStreamSource), _err]),
    "pt_stream_ipc_sink": (_c_int, [ctypes.c_char_p, _vp, _P(PtStreamSink), _err]),
    "pt_stream_parquet_sink": (_c_int, [ctypes.c_char_p, _vp, _P(PtStreamSink), _err]),
    "pt_stream_options_init": (None, [_P(PtStreamOptions)]),
    "pt_stream_start": (_c_int, [_vp, _P(PtStreamSource), _P(PtStreamSink),
                                 _P(PtStreamOptions), _P(_vp), _err]),
    "pt_stream_query_status": (_c_int, [_vp, _P(PtStreamStatus), _err]),
    "pt_stream_query_progress": (_c_int, [_vp, _vp, _c_i64, _P(_c_i64), _err]),
    "pt_stream_query_id": (ctypes.c_char_p, [_vp]),
    "pt_stream_query_await": (_c_int, [_vp, _c_i64, _P(_c_int), _err]),
    "pt_stream_query_stop": (_c_int, [_vp, _err]),
    "pt_stream_query_free": (None, [_vp]),
})

_STATES = ["starting", "waiting", "running", "retrying", "stopped", "failed"]
_TRIGGER_INTERVAL, _TRIGGER_AVAILABLE_NOW, _TRIGGER_CONTINUOUS = 0, 1, 2


def _check(rc: int, err: PtError) -> None:
    if rc != _lib.PT_OK:
        raise ProtiumError(rc, err.message.decode("utf-8", "replace") or _lib.strerror(rc))


def _parse_interval(text: Union[str, int, float]) -> int:
    """"200ms", "2s", "1m", or seconds -> milliseconds."""
    if isinstance(text, (int, float)):
        ms = float(text) * 1000
    else:
        t = text.strip().lower()
        units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for suffix, scale in units:
            if t.endswith(suffix) and t[: -len(suffix)].replace(".", "", 1).isdigit():
                ms = float(t[: -len(suffix)]) * scale
                break
        else:
            try:
                ms = float(t) * 1000
            except ValueError:
                raise ValueError(f"trigger: interval {text!r} is not a duration such as "
                                 "'200ms', '2s' or '1m'") from None
    if ms < 0:
        raise ValueError("trigger: the interval must not be negative")
    return int(ms)


class StreamingQueryException(ProtiumError):
    """A streaming query stopped on an error: `message` says why (for a
    failing Python function, its exception and traceback as the executor
    saw it, in `remote_traceback`)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        i = message.find(_worker.TRACEBACK_MARK)
        self.remote_traceback = message[message.rfind("': ", 0, i) + 3:] if i >= 0 else ""


# --------------------------------------------------------------------------
# Sources


class DataStreamReader:
    """`session.read_stream`: where a streaming query's data comes from."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def files(self, path: Union[str, os.PathLike[str]], *, format: str = "ipc",
              max_files_per_trigger: int = 0, schema: Any = None, header: bool = False,
              delimiter: str = ",", quote: Optional[str] = '"', escape: Optional[str] = None,
              null_values: Optional[Sequence[str]] = None, mode: str = "FAILFAST",
              corrupt_column: Optional[str] = None) -> "StreamingDataset":
        """A directory that files arrive in: each file (format "ipc":
        .arrow/.arrows/.ipc/.feather, "parquet", or "csv": .csv/.tsv) is
        read once, in order of modification time then name; names starting
        with "." or "_" are files still being written (write them so, then
        rename). `max_files_per_trigger` (0: no limit) caps a micro-batch.
        CSV files are read as Session.read_csv reads them, with its options
        (`header`, `delimiter`, `quote`, `escape`, `null_values`, `mode`,
        `corrupt_column`) and a `schema` that must be given: inferred per
        micro-batch, the columns could change from one to the next."""
        formats = {"ipc": 0, "arrow": 0, "parquet": 1, "csv": 2}
        if format not in formats:
            raise ValueError(f"read_stream.files: format {format!r} is not one of "
                             f"{sorted(formats)}")
        if max_files_per_trigger < 0:
            raise ValueError("read_stream.files: max_files_per_trigger must be >= 0")
        if format == "csv" and schema is None:
            raise ValueError("read_stream.files: format 'csv' needs a schema (a pyarrow schema "
                             "or \"id long, name string\"); inferred per micro-batch, the "
                             "columns could change from one to the next")
        if format != "csv" and schema is not None:
            raise ValueError(f"read_stream.files: schema is for CSV; {format} files carry "
                             "their own")
        dirname = os.fsencode(os.path.abspath(path))
        fmt = formats[format]
        csv_args: dict[str, Any] = dict(schema=schema, header=header, delimiter=delimiter,
                                        quote=quote, escape=escape, null_values=null_values,
                                        infer_rows=1, mode=mode, corrupt_column=corrupt_column)
        if format == "csv":
            from protium import connectors
            connectors.CsvReadArgs(**csv_args).close()  # bad options fail here, not at start

        def make() -> PtStreamSource:
            src, err = PtStreamSource(), PtError()
            if fmt != 2:
                _check(_lib.lib().pt_stream_files_source(dirname, fmt, max_files_per_trigger,
                                                         ctypes.byref(src), ctypes.byref(err)),
                       err)
                return src
            from protium import connectors
            args = connectors.CsvReadArgs(**csv_args)
            try:  # the source copies the options and the schema
                _check(_lib.lib().pt_stream_csv_source(dirname, ctypes.byref(args.options),
                                                       max_files_per_trigger, ctypes.byref(src),
                                                       ctypes.byref(err)), err)
            finally:
                args.close()
            return src

        if not os.path.isdir(path):
            raise ProtiumError(_lib.PT_EINVAL, f"read_stream.files: '{path}' is not a "
                               "directory; create it before starting the query")
        return StreamingDataset(self._session, make, [])


    def kafka(self, *, bootstrap: str, topic: str, starting_offsets: str = "latest",
              max_offsets_per_trigger: int = 0,
              options: Optional[dict[str, Any]] = None,
              value_format: Optional[str] = None, value_schema: Any = None,
              on_malformed: str = "fail",
              dead_letter_topic: Optional[str] = None) -> "StreamingDataset":
        """A Kafka topic, with Spark's Kafka columns (key, value, topic,
        partition, offset, timestamp, timestamp_type, headers), read with
        read_committed. `starting_offsets` ("earliest", "latest", or JSON
        {"topic":{"0":42}}) applies to a new checkpoint only.
        `max_offsets_per_trigger` (0: no limit) caps a micro-batch, shared
        between partitions by what each has waiting. `options`: librdkafka
        properties ("kafka." prefixes are dropped, as Spark's).

        `value_format` "json" or "ipc" decodes each value into a row of
        `value_schema` (protium.kafka.decode_json / decode_ipc): the stream's
        rows are then those columns. A malformed value: `on_malformed`
        "fail" fails the batch (and the query, after task.max_failures),
        naming the record; "drop" leaves it out; "dead_letter" leaves it out
        and sends it to `dead_letter_topic` (its value, the error, and the
        topic, partition and offset it came from) before the batch can
        commit, in a transaction per task: exactly once to consumers that
        read with read_committed (a retried task or a rerun batch finds its
        dead letters sent and sends nothing)."""
        if max_offsets_per_trigger < 0:
            raise ValueError("read_stream.kafka: max_offsets_per_trigger must be >= 0")
        ops: list[tuple[str, tuple, dict]] = []
        if value_format is not None:
            ops.append(("map_in_arrow", _value_decoder(bootstrap, options, value_format,
                                                       value_schema, on_malformed,
                                                       dead_letter_topic), {}))  # (fn, schema)
        elif on_malformed != "fail" or dead_letter_topic or value_schema is not None:
            raise ValueError("read_stream.kafka: on_malformed, value_schema and "
                             "dead_letter_topic need value_format=\"json\" or \"ipc\"")
        o = _kafka_options(bootstrap, options)
        topic_b, start_b = topic.encode(), str(starting_offsets).encode()

        def make() -> PtStreamSource:
            src, err = PtStreamSource(), PtError()
            _check(_lib.lib().pt_stream_kafka_source(ctypes.byref(o.c), topic_b, start_b,
                                                     max_offsets_per_trigger, ctypes.byref(src),
                                                     ctypes.byref(err)), err)
            return src

        probe = make()  # bad arguments fail here, not at start()
        ctypes.CFUNCTYPE(None, _vp)(probe.free)(probe.state)
        return StreamingDataset(self._session, make, ops)


# The dead-letter producers of this process (an executor: its Python
# functions run in it), kept across micro-batches as the Kafka sink keeps
# its own (src/kafka/pool.c): a transactional producer costs a connection,
# metadata and init_transactions, and its marker consumer a connection
# too, for each task that has a letter to send. Keyed by the settings and
# the transactional id; a task takes its entry out, so no two tasks share
# one, and puts it back after a clean end. At most _DLQ_KEEP idle entries,
# the least recently used closed first.
_DLQ_KEEP = 16
_dlq_idle: dict[tuple, tuple[Any, Any]] = {}  # key -> (Producer, Consumer); insertion = age
_dlq_lock = threading.Lock()
_dlq_made = 0  # producers made (init_transactions) by this process


def _dead_letter_producers_made() -> int:
    """The dead-letter producers this process has made (each fenced its
    transactional id's earlier one): with the pool, one per transactional
    id while the id's tasks stay in this process."""
    return _dlq_made


def _dlq_close(held: tuple[Any, Any]) -> None:
    producer, consumer = held
    try:
        consumer.close()
    except Exception:  # noqa: BLE001 - closing what is dropped anyway
        pass
    del producer  # rd_kafka_destroy; nothing is queued after a commit


def _dlq_take(key: tuple, bootstrap: str, props: dict[str, str],
              txid: str) -> tuple[Any, Any, bool]:
    """(producer, consumer, reused): the pool's entry for key, or a new
    pair whose init_transactions fenced every earlier producer of txid."""
    global _dlq_made
    from confluent_kafka import Consumer, Producer

    with _dlq_lock:
        held = _dlq_idle.pop(key, None)
    if held is not None:
        return held[0], held[1], True
    p = Producer({"bootstrap.servers": bootstrap, **props, "transactional.id": txid})
    c = Consumer({"bootstrap.servers": bootstrap, **props, "group.id": txid,
                  "isolation.level": "read_committed", "enable.auto.commit": False})
    try:
        p.init_transactions(60)
    except BaseException:
        _dlq_close((p, c))
        raise
    with _dlq_lock:
        _dlq_made += 1
    return p, c, False


def _dlq_put(key: tuple, held: tuple[Any, Any]) -> None:
    with _dlq_lock:
        old = _dlq_idle.pop(key, None)
        _dlq_idle[key] = held
        evicted = [old] if old is not None else []
        while len(_dlq_idle) > _DLQ_KEEP:
            evicted.append(_dlq_idle.pop(next(iter(_dlq_idle))))
    for e in evicted:
        _dlq_close(e)


def _send_dead_letters(bootstrap: str, props: dict[str, str], dead_topic: str,
                       task_partition: int, span: tuple,
                       letters: list[tuple[bytes, str, str, int, int]]) -> None:
    """The dead letters of one task's range of a source partition (`span`:
    topic, partition, first and last offset read), exactly once, as the
    Kafka sink writes a batch: in one transaction that also commits the
    offset after the range for a group named like the transactional id.
    The id is the task's engine partition's, as the sink's is its sink
    partition's, so a long stream uses a few ids, not one per task. A
    retried task or a rerun batch reads the same records in the same
    engine partition (a batch is planned from its logged offsets); finding
    that offset committed, it sends nothing. Any other range of the source
    partition the group committed was an earlier batch's, below this one.

    The producer comes from the process's pool when an earlier task of
    the id left one here. A new producer's init_transactions fences the
    earlier ones and aborts what they left open; a pooled one that another
    process fenced since (its task ran there in between) fails in the
    transaction, before its commit, and a new producer (fencing that one)
    does the work again, reading the committed offset anew."""
    from confluent_kafka import KafkaException

    src_topic, src_partition, first_offset, last_offset = span
    txid = f"protium-dlq-{dead_topic}-{src_topic}-{task_partition}"
    key = (bootstrap, tuple(sorted(props.items())), txid)
    for attempt in range(2):
        held, reused = None, False
        try:
            p, c, reused = _dlq_take(key, bootstrap, props, txid)
            held = (p, c)
            _dead_letter_transaction(p, c, dead_topic, span, letters)
        except KafkaException as e:
            if held is not None:
                try:
                    held[0].abort_transaction(10)
                except Exception:  # noqa: BLE001 - fenced or away: the next producer aborts it
                    pass
                _dlq_close(held)
            if reused and attempt == 0:
                continue  # fenced while idle, or its connections broke: a new one
            raise RuntimeError(f"dead letters not delivered to {dead_topic!r}: {e}") from None
        except BaseException:
            if held is not None:
                _dlq_close(held)
            raise
        _dlq_put(key, held)
        return


def _dead_letter_transaction(p: Any, c: Any, dead_topic: str, span: tuple,
                             letters: list[tuple[bytes, str, str, int, int]]) -> None:
    import json as _json

    from confluent_kafka import TopicPartition

    src_topic, src_partition, first_offset, last_offset = span
    done = c.committed([TopicPartition(src_topic, src_partition)], timeout=60)[0].offset
    if done > last_offset:
        return  # sent by an earlier attempt, or the run before a restart
    p.begin_transaction()
    for value, error, topic, partition, offset in letters:
        p.produce(dead_topic, value=value, headers=[
            ("error", error.encode()),
            ("source", _json.dumps({"topic": topic, "partition": partition,
                                    "offset": offset}).encode())])
    p.send_offsets_to_transaction([TopicPartition(src_topic, src_partition, last_offset + 1)],
                                  c.consumer_group_metadata(), 60)
    p.commit_transaction(60)


def _value_decoder(bootstrap: str, options: Optional[dict[str, Any]], value_format: str,
                   value_schema: Any, on_malformed: str,
                   dead_letter_topic: Optional[str]) -> tuple[Callable, Any]:
    """The map_in_arrow (function, schema) that decodes a Kafka batch's values."""
    from protium.schema import as_schema

    if value_format not in ("json", "ipc"):
        raise ValueError(f"read_stream.kafka: value_format {value_format!r} is not 'json' or "
                         "'ipc'")
    if value_schema is None:
        raise ValueError("read_stream.kafka: value_format needs value_schema (the columns of "
                         "a decoded value)")
    if on_malformed not in ("fail", "drop", "dead_letter"):
        raise ValueError(f"read_stream.kafka: on_malformed {on_malformed!r} is not 'fail', "
                         "'drop' or 'dead_letter'")
    if (on_malformed == "dead_letter") != bool(dead_letter_topic):
        raise ValueError("read_stream.kafka: on_malformed='dead_letter' goes with "
                         "dead_letter_topic=, and only with it")
    schema = as_schema(value_schema)
    props = {str(k).removeprefix("kafka."): str(v) for k, v in (options or {}).items()}

    def decode(batches):
        from protium import kafka as k
        from protium.context import TaskContext

        ctx = TaskContext.get()
        task_partition = ctx.partition_id() if ctx is not None else 0
        fn = k.decode_json if value_format == "json" else k.decode_ipc
        letters: list[tuple[bytes, str, str, int, int]] = []
        span: Optional[list] = None  # the task's range: topic, partition, first and last offset
        for b in batches:
            res = fn(b.column("value"), schema, on_error=on_malformed)
            good = res[0] if on_malformed == "dead_letter" else res
            if on_malformed == "dead_letter" and b.num_rows:
                topics, parts, offs = (b.column(c).to_pylist()
                                       for c in ("topic", "partition", "offset"))
                if span is None:
                    span = [topics[0], parts[0], min(offs), max(offs)]
                span[2], span[3] = min(span[2], min(offs)), max(span[3], max(offs))
                for row, value, error in zip(*(res[1].column(c).to_pylist()
                                               for c in ("row", "value", "error"))):
                    letters.append((value, error, topics[row], parts[row], offs[row]))
            for rb in good.to_batches():
                yield rb
        if letters and span is not None:
            _send_dead_letters(bootstrap, props, dead_letter_topic, task_partition,
                               tuple(span), letters)

    return decode, schema


class StreamingDataset:
    """The micro-batches of a stream: the transformations of Dataset
    (map_in_pandas, map_in_arrow, map_rows, filter, with_column,
    repartition, and any other Dataset method that returns a Dataset, such
    as with_resources) are recorded and applied to each batch's Dataset.
    `write_stream` starts a query."""

    def __init__(self, session: Any, make_source: Callable[[], PtStreamSource],
                 ops: list[tuple[str, tuple, dict]]) -> None:
        self.session = session
        self._make_source = make_source
        self._ops = ops

    def _with(self, name: str, *args: Any, **kwargs: Any) -> "StreamingDataset":
        from protium.session import Dataset

        if not callable(getattr(Dataset, name, None)):
            raise AttributeError(f"Dataset has no transformation {name!r}")
        return StreamingDataset(self.session, self._make_source,
                                self._ops + [(name, args, kwargs)])

    def map_in_pandas(self, fn: Callable, schema: Any) -> "StreamingDataset":
        """Dataset.map_in_pandas on every micro-batch."""
        _worker_check(fn, "map_in_pandas")
        return self._with("map_in_pandas", fn, schema)

    def map_in_arrow(self, fn: Callable, schema: Any) -> "StreamingDataset":
        """Dataset.map_in_arrow on every micro-batch."""
        _worker_check(fn, "map_in_arrow")
        return self._with("map_in_arrow", fn, schema)

    def map_rows(self, fn: Callable, schema: Any) -> "StreamingDataset":
        """Dataset.map_rows on every micro-batch."""
        _worker_check(fn, "map_rows")
        return self._with("map_rows", fn, schema)

    def filter(self, predicate: Callable, **kwargs: Any) -> "StreamingDataset":
        """Dataset.filter on every micro-batch."""
        _worker_check(predicate, "filter")
        return self._with("filter", predicate, **kwargs)

    def with_column(self, name: str, fn: Callable, **kwargs: Any) -> "StreamingDataset":
        """Dataset.with_column on every micro-batch."""
        _worker_check(fn, "with_column")
        return self._with("with_column", name, fn, **kwargs)

    def repartition(self, n: int, *keys: str) -> "StreamingDataset":
        """Dataset.repartition on every micro-batch."""
        return self._with("repartition", n, *keys)

    def __getattr__(self, name: str) -> Callable[..., "StreamingDataset"]:
        if name.startswith("_"):
            raise AttributeError(name)
        from protium.session import Dataset

        if not callable(getattr(Dataset, name, None)):
            raise AttributeError(f"StreamingDataset has no {name!r}")
        return lambda *args, **kwargs: self._with(name, *args, **kwargs)

    def _apply(self, ds: Any) -> Any:
        for name, args, kwargs in self._ops:
            ds = getattr(ds, name)(*args, **kwargs)
        return ds

    @property
    def write_stream(self) -> "DataStreamWriter":
        """Where the micro-batches go, when, and with which checkpoint."""
        return DataStreamWriter(self)


def _worker_check(fn: object, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"{what}: expected a function, got {type(fn).__name__}")


# --------------------------------------------------------------------------
# Sinks, triggers, the query


class DataStreamWriter:
    """Builds a streaming query: a sink (ipc, parquet, foreach_batch), a
    trigger and a checkpoint directory; start() runs it."""

    def __init__(self, sds: StreamingDataset) -> None:
        self._sds = sds
        self._sink: Optional[tuple[str, Any]] = None
        self._trigger = (_TRIGGER_INTERVAL, 0)
        self._checkpoint: Optional[str] = None
        self._name: Optional[str] = None

    def ipc(self, path: Union[str, os.PathLike[str]]) -> "DataStreamWriter":
        """Arrow IPC files in directory path: part-<batch>-<partition>.arrow,
        exactly once per batch (a rerun replaces its batch's files)."""
        self._sink = ("ipc", os.fsencode(os.path.abspath(path)))
        return self

    def parquet(self, path: Union[str, os.PathLike[str]]) -> "DataStreamWriter":
        """Parquet files in directory path, as ipc()."""
        self._sink = ("parquet", os.fsencode(os.path.abspath(path)))
        return self

    def kafka(self, *, topic: str, bootstrap: str,
              options: Optional[dict[str, Any]] = None,
              transactional_prefix: Optional[str] = None,
              value_format: Optional[str] = None) -> "DataStreamWriter":
        """A Kafka topic: the batch's "value" column (binary or string;
        "key", "partition" and "headers" when present), one transaction per
        micro-batch and sink partition under transactional.id
        "<prefix>-<partition>" (default prefix: "protium-<query id>"): a
        batch rerun after a crash is skipped, so read_committed consumers
        see each record once. `value_format="json"`: every column of a row
        is encoded into one JSON object as its record's value (in C on the
        executors, protium.kafka.encode_json), without a key."""
        o = _kafka_options(bootstrap, options, value_format)
        prefix = transactional_prefix.encode() if transactional_prefix else None
        self._sink = ("kafka", (o, topic.encode(), prefix))
        return self

    def foreach_batch(self, fn: Callable[[Any, int], None]) -> "DataStreamWriter":
        """fn(dataset, batch_id) for every micro-batch, on the driver
        (PySpark's foreachBatch): run any action on the Dataset. A batch
        may come again with the same id after a crash (between fn's return
        and the commit log): make fn idempotent per batch id."""
        _worker_check(fn, "foreach_batch")
        self._sink = ("foreach", fn)
        return self

    def trigger(self, *, interval: Union[str, int, float, None] = None,
                available_now: bool = False, continuous: bool = False) -> "DataStreamWriter":
        """When batches start: every `interval` ("200ms", "2s"; a late batch
        is followed at once by the next), `available_now` (what is there at
        start, then the query stops), or `continuous` (the next batch as soon
        as the previous one committed). Default: interval 0, as continuous."""
        chosen = sum([interval is not None, bool(available_now), bool(continuous)])
        if chosen != 1:
            raise ValueError("trigger: give exactly one of interval=, available_now=True, "
                             "continuous=True")
        if interval is not None:
            self._trigger = (_TRIGGER_INTERVAL, _parse_interval(interval))
        elif available_now:
            self._trigger = (_TRIGGER_AVAILABLE_NOW, 0)
        else:
            self._trigger = (_TRIGGER_CONTINUOUS, 0)
        return self

    def checkpoint(self, path: Union[str, os.PathLike[str]]) -> "DataStreamWriter":
        """The checkpoint directory: offset and commit logs, the source's
        state. Restarting a query on it resumes where it stopped."""
        self._checkpoint = os.path.abspath(path)
        return self

    def query_name(self, name: str) -> "DataStreamWriter":
        """The name the progress lines show (default: the query id)."""
        self._name = name
        return self

    def start(self) -> "StreamingQuery":
        """Starts the query on a thread of the engine and returns it."""
        if self._sink is None:
            raise ValueError("write_stream: choose a sink first (.ipc(dir), .parquet(dir), "
                             ".foreach_batch(fn))")
        if self._checkpoint is None:
            raise ValueError("write_stream: a checkpoint directory is required "
                             "(.checkpoint(dir)): it makes every batch exactly once")
        return StreamingQuery(self._sds, self._sink, self._trigger, self._checkpoint, self._name)


class StreamingQuery:
    """A running streaming query (PySpark's StreamingQuery)."""

    def __init__(self, sds: StreamingDataset, sink: tuple[str, Any], trigger: tuple[int, int],
                 checkpoint: str, name: Optional[str]) -> None:
        from protium.session import Dataset

        self.session = sds.session
        self.name = name
        self._ptr: Optional[int] = None
        self._error: Optional[StreamingQueryException] = None
        lib = _lib.lib()
        session = self.session._handle()

        def transform(ds_p: int, arg: Any, out_p: Any, err_p: Any) -> int:
            try:
                ds = Dataset(self.session, ds_p)  # owns the reference it was handed
                res = sds._apply(ds)
                if not isinstance(res, Dataset):
                    raise TypeError(f"a transformation returned {type(res).__name__}, "
                                    "not a Dataset")
                out_p[0] = res._handle()
                res._ptr = None  # the reference is the engine's now
                self.session._datasets.discard(res)
                return _lib.PT_OK
            except BaseException as e:  # noqa: BLE001 - reported to the engine
                return _worker._fail(err_p, "".join(
                    traceback.format_exception(type(e), e, e.__traceback__))[-900:])

        def write_batch(state: Any, ds_p: int, batch_id: int, rows_p: Any, err_p: Any) -> int:
            try:
                rows_p[0] = -1
                sink[1](Dataset(self.session, ds_p), batch_id)
                return _lib.PT_OK
            except BaseException as e:  # noqa: BLE001 - reported to the engine
                return _worker._fail(err_p, "foreach_batch: " + "".join(
                    traceback.format_exception(type(e), e, e.__traceback__))[-880:])

        # kept alive as long as the query: the engine calls them
        self._transform = TRANSFORM_FN(transform)
        self._write = WRITE_BATCH_FN(write_batch)
        src = sds._make_source()
        snk, err = PtStreamSink(), PtError()
        try:
            if sink[0] == "ipc":
                _check(lib.pt_stream_ipc_sink(sink[1], None, ctypes.byref(snk),
                                              ctypes.byref(err)), err)
            elif sink[0] == "parquet":
                _check(lib.pt_stream_parquet_sink(sink[1], None, ctypes.byref(snk),
                                                  ctypes.byref(err)), err)
            elif sink[0] == "kafka":
                o, topic_b, prefix = sink[1]
                _check(lib.pt_stream_kafka_sink(ctypes.byref(o.c), topic_b, prefix,
                                                ctypes.byref(snk), ctypes.byref(err)), err)
            else:
                snk.name = b"foreach_batch"
                snk.write_batch = ctypes.cast(self._write, _vp)
        except BaseException:
            if src.free:
                ctypes.CFUNCTYPE(None, _vp)(src.free)(src.state)
            raise
        opts = PtStreamOptions()
        lib.pt_stream_options_init(ctypes.byref(opts))
        self._checkpoint = os.fsencode(checkpoint)
        self._name_b = name.encode() if name else None
        opts.checkpoint_dir = self._checkpoint
        opts.trigger, opts.interval_ms = trigger
        opts.transform = ctypes.cast(self._transform, _vp) if sds._ops else None
        prog = self.session.progress
        opts.progress = -1 if prog is None else int(bool(prog))
        opts.name = self._name_b
        q = _vp()
        _check(lib.pt_stream_start(session, ctypes.byref(src), ctypes.byref(snk),
                                   ctypes.byref(opts), ctypes.byref(q), ctypes.byref(err)), err)
        self._ptr = q.value
        self.id: str = lib.pt_stream_query_id(self._ptr).decode()
        self.session._queries.add(self)

    def _handle(self) -> int:
        if self._ptr is None:
            raise ProtiumError(_lib.PT_ESTATE, "the query was freed (its session is closed)")
        return self._ptr

    def status(self) -> dict[str, Any]:
        """{"state": "waiting" | "running" | "retrying" | ..., "message",
        "is_active", "batches_committed", "next_batch_id", "retries"}."""
        st, err = PtStreamStatus(), PtError()
        _check(_lib.lib().pt_stream_query_status(self._handle(), ctypes.byref(st),
                                                 ctypes.byref(err)), err)
        state = _STATES[st.state]
        return {"state": state, "message": st.message.decode("utf-8", "replace"),
                "is_active": state not in ("stopped", "failed"),
                "batches_committed": st.batches_committed, "next_batch_id": st.next_batch_id,
                "retries": st.retries}

    @property
    def is_active(self) -> bool:
        return bool(self.status()["is_active"])

    def recent_progress(self) -> list[dict[str, Any]]:
        """One dict per committed micro-batch, oldest first (the last
        stream.progress_keep): batch_id, input_rows, output_rows, records,
        rows_per_s, duration_ms, latency_ms (None when unknown), committed
        (seconds since the epoch), attempts, recovered, start_offsets,
        end_offsets, kafka_producers (transactional producers the Kafka
        sink's tasks made: 0 once each sink partition stays on its
        executor)."""
        lib, err, n = _lib.lib(), PtError(), ctypes.c_int64()
        _check(lib.pt_stream_query_progress(self._handle(), None, 0, ctypes.byref(n),
                                            ctypes.byref(err)), err)
        out = (PtStreamProgress * max(n.value, 1))()
        _check(lib.pt_stream_query_progress(self._handle(), out, n.value, ctypes.byref(n),
                                            ctypes.byref(err)), err)
        rows = []
        for p in out[: n.value]:
            rows.append({
                "batch_id": p.batch_id,
                "input_rows": p.input_rows if p.input_rows >= 0 else None,
                "output_rows": p.output_rows if p.output_rows >= 0 else None,
                "records": p.records if p.records >= 0 else None,
                "rows_per_s": p.rows_per_s,
                "duration_ms": p.duration_us / 1000.0,
                "latency_ms": p.latency_us / 1000.0 if p.latency_us >= 0 else None,
                "committed": p.committed_us / 1e6,
                "attempts": p.attempts,
                "recovered": bool(p.recovered),
                "start_offsets": p.start_offsets.decode("utf-8", "replace"),
                "end_offsets": p.end_offsets.decode("utf-8", "replace"),
                "kafka_producers": p.kafka_producers if p.kafka_producers >= 0 else None,
            })
        return rows

    @property
    def last_progress(self) -> Optional[dict[str, Any]]:
        """The last batch's progress, None before the first."""
        p = self.recent_progress()
        return p[-1] if p else None

    def await_termination(self, timeout: Optional[float] = None) -> bool:
        """Waits for the query to end (stop(), an available-now trigger
        done, or a failure) or `timeout` seconds; True when it ended. A
        failed query raises StreamingQueryException."""
        err, ended = PtError(), ctypes.c_int()
        ms = -1 if timeout is None else int(timeout * 1000)
        rc = _lib.lib().pt_stream_query_await(self._handle(), ms, ctypes.byref(ended),
                                              ctypes.byref(err))
        if rc != _lib.PT_OK:
            self._error = StreamingQueryException(rc, err.message.decode("utf-8", "replace"))
            raise self._error
        return bool(ended.value)

    def exception(self) -> Optional[StreamingQueryException]:
        """The error the query stopped on, None while none."""
        try:
            self.await_termination(0)
        except StreamingQueryException as e:
            return e
        return None

    def stop(self) -> None:
        """Stops the query; a batch running finishes first (job and commit)."""
        if self._ptr is not None:
            err = PtError()
            _check(_lib.lib().pt_stream_query_stop(self._ptr, ctypes.byref(err)), err)

    def _free(self) -> None:
        if self._ptr is not None:
            _lib.lib().pt_stream_query_free(self._ptr)
            self._ptr = None

    def __del__(self) -> None:
        if getattr(self.session, "_ptr", None) is not None:
            self._free()

    def __repr__(self) -> str:
        return f"StreamingQuery(id={self.id!r}, state={self.status()['state']!r})"


# --------------------------------------------------------------------------
# Values kept per worker process


_cached: dict[str, Any] = {}
_cached_lock = threading.Lock()


class Cached:
    """A value made by `loader` at most once per process (each executor's
    Python) and kept across tasks, jobs and micro-batches: a model loaded
    once, not once per batch. Get it with .get() inside your functions;
    it travels to executors with them (the loader, not the value)."""

    def __init__(self, loader: Callable[[], Any]) -> None:
        if not callable(loader):
            raise TypeError(f"cache: expected a function that loads the value, got "
                            f"{type(loader).__name__}")
        self.loader = loader
        self.key = uuid.uuid4().hex

    def get(self) -> Any:
        """The value, loading it on first use in this process. A loader
        that raises leaves nothing behind: the next get() tries again."""
        try:
            return _cached[self.key]
        except KeyError:
            pass
        with _cached_lock:  # several slots of one executor: one load
            if self.key not in _cached:
                _cached[self.key] = self.loader()
            return _cached[self.key]

    def __repr__(self) -> str:
        return f"Cached({getattr(self.loader, '__name__', 'loader')}, loaded={self.key in _cached})"


def cache(loader: Callable[[], Any]) -> Cached:
    """`model = pt.cache(lambda: torch.load(path))`, then `model.get()` in a
    function run on the executors: loaded once per executor process, kept
    across micro-batches and jobs."""
    return Cached(loader)
