"""protium.kafka — Apache Kafka topics read as datasets and datasets written
into topics exactly once (the Kafka functions of include/protium.h; see
docs/kafka.md).

    import protium as pt
    from protium import kafka

    kafka.topic_offsets("127.0.0.1:9092", "events")   # [{'partition': 0, 'earliest': 0, 'latest': 42}]
    with pt.Session("local[2]") as s:
        ds = s.read_kafka(bootstrap="127.0.0.1:9092", topic="events",
                          starting_offsets="earliest", ending_offsets="latest")
        ds.write_kafka(bootstrap="127.0.0.1:9092", topic="copy",
                       transactional_prefix="copy-job", batch_id=0)

`Session.read_kafka` is Spark's `spark.read.format("kafka")`: columns key,
value, topic, partition, offset, timestamp, timestamp_type, headers, read
with isolation.level=read_committed. `Dataset.write_kafka` writes columns
value (required), key, partition, headers, once per (transactional_prefix,
batch_id). Extra librdkafka properties go in `options` (Spark's
"kafka."-prefixed options, with or without the prefix).
"""

from __future__ import annotations

import ctypes
import json
from typing import Any, Mapping, Optional, Union

import pyarrow as pa

from protium import _lib
from protium._lib import PT_EINVAL, ArrowArray, ArrowSchema, ProtiumError, PtError, check
from protium.arrow import _exported_array, _exported_schema
from protium.schema import as_schema
from protium.session import Dataset, Session

__all__ = ["decode_ipc", "decode_json", "encode_json", "topic_offsets"]

_P = ctypes.POINTER
_vp = ctypes.c_void_p
_err = _P(PtError)


class PtKafkaOptions(ctypes.Structure):
    """pt_kafka_options."""

    _fields_ = [
        ("bootstrap_servers", ctypes.c_char_p),
        ("property_keys", _P(ctypes.c_char_p)),
        ("property_values", _P(ctypes.c_char_p)),
        ("n_properties", ctypes.c_int32),
        ("timeout_ms", ctypes.c_int64),
        ("max_retry_ms", ctypes.c_int64),
        ("max_records_per_partition", ctypes.c_int64),
        ("value_format", ctypes.c_int32),
    ]


class PtKafkaPartitionOffsets(ctypes.Structure):
    """pt_kafka_partition_offsets."""

    _fields_ = [("partition", ctypes.c_int32), ("earliest", ctypes.c_int64),
                ("latest", ctypes.c_int64)]


_lib._PROTOTYPES.update({
    "pt_kafka_topic_offsets": (ctypes.c_int, [_P(PtKafkaOptions), ctypes.c_char_p,
                                              _P(_P(PtKafkaPartitionOffsets)),
                                              _P(ctypes.c_int32), _err]),
    "pt_read_kafka": (ctypes.c_int, [_vp, _P(PtKafkaOptions), ctypes.c_char_p,
                                     _P(ctypes.c_int32), _P(ctypes.c_int64), _P(ctypes.c_int64),
                                     ctypes.c_int32, _P(_vp), _err]),
    "pt_write_kafka": (ctypes.c_int, [_vp, _P(PtKafkaOptions), ctypes.c_char_p, ctypes.c_char_p,
                                      ctypes.c_int64, _err]),
    "pt_kafka_decode_json": (ctypes.c_int, [_P(ArrowSchema), _P(ArrowArray), _P(ArrowSchema),
                                            ctypes.c_int, _P(ArrowArray), _P(ArrowArray), _err]),
    "pt_kafka_decode_ipc": (ctypes.c_int, [_P(ArrowSchema), _P(ArrowArray), _P(ArrowSchema),
                                           ctypes.c_int, _P(ArrowArray), _P(ArrowArray), _err]),
    "pt_kafka_encode_json": (ctypes.c_int, [_P(ArrowSchema), _P(ArrowArray), _P(ArrowArray),
                                            _err]),
})

# pt_kafka_options.value_format of the writers.
_VALUE_FORMATS = {None: 0, "json": 1}


def _value_format(value_format: Optional[str], what: str) -> int:
    if value_format not in _VALUE_FORMATS:
        raise ProtiumError(PT_EINVAL, f"{what}: value_format {value_format!r} is not None (the "
                           "'value' column as it is) or 'json' (every column of a row encoded "
                           "as one JSON object)")
    return _VALUE_FORMATS[value_format]

_POLICIES = {"fail": 0, "drop": 1, "dead_letter": 2}
DEAD_LETTER_SCHEMA = pa.schema([pa.field("row", pa.int64(), nullable=False),
                                ("value", pa.binary()),
                                pa.field("error", pa.string(), nullable=False)])


class _Options:
    """A pt_kafka_options and the bytes it points to, kept alive together."""

    def __init__(self, bootstrap: str, options: Optional[Mapping[str, Any]],
                 timeout: Optional[float], max_retry: Optional[float],
                 max_records_per_partition: Optional[int] = None,
                 value_format: int = 0) -> None:
        if not bootstrap:
            raise ProtiumError(PT_EINVAL, "kafka: bootstrap must name host:port of a broker")
        props = {}
        for k, v in (options or {}).items():
            k = k[len("kafka."):] if k.startswith("kafka.") else k
            props[k] = str(v).lower() if isinstance(v, bool) else str(v)
        self._keep = [bootstrap.encode()] + [k.encode() for k in props] + \
                     [v.encode() for v in props.values()]
        n = len(props)
        self.keys = (ctypes.c_char_p * max(n, 1))(*[k.encode() for k in props])
        self.values = (ctypes.c_char_p * max(n, 1))(*[v.encode() for v in props.values()])
        self.c = PtKafkaOptions()
        self.c.bootstrap_servers = self._keep[0]
        self.c.property_keys = self.keys
        self.c.property_values = self.values
        self.c.n_properties = n
        self.c.timeout_ms = int(timeout * 1000) if timeout else 0
        self.c.max_retry_ms = int(max_retry * 1000) if max_retry else 0
        self.c.max_records_per_partition = max_records_per_partition or 0
        self.c.value_format = value_format


def topic_offsets(bootstrap: str, topic: str, *, options: Optional[Mapping[str, Any]] = None,
                  timeout: Optional[float] = None,
                  max_retry: Optional[float] = None) -> list[dict[str, int]]:
    """The topic's partitions in order, each {'partition', 'earliest',
    'latest'} (latest: the offset the next committed record gets). Brokers
    that stay away longer than max_retry seconds (default 30) raise
    ProtiumError naming them."""
    o = _Options(bootstrap, options, timeout, max_retry)
    out = _P(PtKafkaPartitionOffsets)()
    n = ctypes.c_int32()
    err = PtError()
    check(_lib.lib().pt_kafka_topic_offsets(ctypes.byref(o.c), topic.encode(), ctypes.byref(out),
                                            ctypes.byref(n), ctypes.byref(err)), err)
    try:
        return [{"partition": out[i].partition, "earliest": out[i].earliest,
                 "latest": out[i].latest} for i in range(n.value)]
    finally:
        _lib.libc().free(ctypes.cast(out, ctypes.c_void_p))


OffsetSpec = Union[str, Mapping[int, int], None]


def _resolve(spec: OffsetSpec, topic: str, parts: list[dict[str, int]], default: str,
             what: str) -> dict[int, int]:
    """Offsets per partition from "earliest", "latest", {partition: offset}
    or Spark's JSON ('{"topic": {"0": 23, "1": -2}}', -2 earliest, -1
    latest)."""
    spec = default if spec is None else spec
    by = {p["partition"]: p for p in parts}
    if isinstance(spec, str):
        if spec in ("earliest", "latest"):
            return {p: by[p][spec] for p in by}
        try:
            spec = {int(k): int(v) for k, v in json.loads(spec)[topic].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ProtiumError(PT_EINVAL, f"read_kafka: {what} {spec!r} is not 'earliest', "
                               f"'latest' or Spark's JSON form "
                               f'{{"{topic}": {{"0": offset}}}}') from e
    out = {}
    for p, off in dict(spec).items():
        p = int(p)
        if p not in by:
            raise ProtiumError(PT_EINVAL, f"read_kafka: {what} names partition {p}, which topic "
                               f"'{topic}' does not have (it has {sorted(by)})")
        off = int(off)
        out[p] = by[p]["earliest"] if off == -2 else by[p]["latest"] if off == -1 else off
    return out


def read_kafka(self: Session, *, bootstrap: str, topic: str,
               starting_offsets: OffsetSpec = "earliest",
               ending_offsets: OffsetSpec = "latest",
               options: Optional[Mapping[str, Any]] = None,
               max_records_per_partition: Optional[int] = None,
               timeout: Optional[float] = None, max_retry: Optional[float] = None) -> Dataset:
    """A dataset of the topic's records between starting_offsets (inclusive)
    and ending_offsets (exclusive), one partition per topic partition
    (Spark's spark.read.format("kafka")). Offsets: "earliest", "latest",
    {partition: offset} (partitions missing from ending_offsets are read to
    latest; from starting_offsets, from earliest) or Spark's JSON string."""
    parts = topic_offsets(bootstrap, topic, options=options, timeout=timeout,
                          max_retry=max_retry)
    start = _resolve(starting_offsets, topic, parts, "earliest", "starting_offsets")
    end = _resolve(ending_offsets, topic, parts, "latest", "ending_offsets")
    chosen = sorted(set(start) | set(end))
    by = {p["partition"]: p for p in parts}
    n = len(chosen)
    c_parts = (ctypes.c_int32 * n)(*chosen)
    c_start = (ctypes.c_int64 * n)(*[start.get(p, by[p]["earliest"]) for p in chosen])
    c_end = (ctypes.c_int64 * n)(*[end.get(p, by[p]["latest"]) for p in chosen])
    o = _Options(bootstrap, options, timeout, max_retry, max_records_per_partition)
    return self._dataset(_lib.lib().pt_read_kafka, self._handle(), ctypes.byref(o.c),
                         topic.encode(), c_parts, c_start, c_end, n)


def write_kafka(self: Dataset, *, bootstrap: str, topic: str, transactional_prefix: str,
                batch_id: int, options: Optional[Mapping[str, Any]] = None,
                timeout: Optional[float] = None, max_retry: Optional[float] = None,
                value_format: Optional[str] = None) -> None:
    """Writes the rows into topic (columns value, and optionally key,
    partition, headers), exactly once per (transactional_prefix, batch_id):
    calling it again with the same batch id writes nothing (docs/kafka.md
    has the rule). value_format="json": every column of a row is encoded
    into one JSON object as the record's value (encode_json), no key."""
    o = _Options(bootstrap, options, timeout, max_retry,
                 value_format=_value_format(value_format, "write_kafka"))
    self._run(_lib.lib().pt_write_kafka, ctypes.byref(o.c), topic.encode(),
              transactional_prefix.encode(), int(batch_id))


def _decode(fn_name: str, values: Any, schema: Any, on_error: str) -> Any:
    if on_error not in _POLICIES:
        raise ProtiumError(PT_EINVAL, f"on_error must be one of {sorted(_POLICIES)}, "
                           f"not {on_error!r}")
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else pa.array(values) \
        if not isinstance(values, pa.Array) else values
    target = as_schema(schema)
    out, dead, err = ArrowArray(), ArrowArray(), PtError()
    policy = _POLICIES[on_error]
    with _exported_array(arr) as (vs, va), _exported_schema(target) as ts:
        check(getattr(_lib.lib(), fn_name)(ctypes.byref(vs), ctypes.byref(va), ctypes.byref(ts),
                                           policy, ctypes.byref(out),
                                           ctypes.byref(dead) if policy == 2 else None,
                                           ctypes.byref(err)), err)
    good = pa.Table.from_batches([pa.RecordBatch._import_from_c(ctypes.addressof(out), target)])
    if policy != 2:
        return good
    bad = pa.Table.from_batches([pa.RecordBatch._import_from_c(ctypes.addressof(dead),
                                                               DEAD_LETTER_SCHEMA)])
    return good, bad


def decode_json(values: Any, schema: Any, *, on_error: str = "fail") -> Any:
    """Decodes each value (binary or string: read_kafka's "value" column) as a
    JSON object into a row of `schema` (pyarrow schema or DDL; booleans,
    integers, floats, strings, binary, timestamps as epoch numbers). Malformed
    records: on_error="fail" raises naming the record, "drop" leaves them
    out, "dead_letter" returns (good, dead) where dead has columns row (index
    in values), value and error."""
    return _decode("pt_kafka_decode_json", values, schema, on_error)


def decode_ipc(values: Any, schema: Any, *, on_error: str = "fail") -> Any:
    """The same for values that are each an Arrow IPC stream of `schema`."""
    return _decode("pt_kafka_decode_ipc", values, schema, on_error)


def encode_json(rows: Any) -> pa.Array:
    """Encodes each row of `rows` (a pyarrow Table, RecordBatch or struct
    array of booleans, integers, floats, strings, binary holding UTF-8 text,
    timestamps) as one JSON object with a key per column: the binary array
    of record values that decode_json reads back. Nulls are null, floats
    are written in the fewest digits that read back the same, strings are
    escaped as RFC 8259 says. A NaN or infinite float, text that is not
    UTF-8, or a null row raises, naming the row and column."""
    if isinstance(rows, pa.Table):
        rows = rows.combine_chunks()
        batches = rows.to_batches()
        arr = (pa.StructArray.from_arrays(batches[0].columns, fields=list(rows.schema))
               if batches else pa.array([], pa.struct(list(rows.schema))))
    elif isinstance(rows, pa.RecordBatch):
        arr = pa.StructArray.from_arrays(rows.columns, fields=list(rows.schema))
    elif isinstance(rows, pa.ChunkedArray):
        arr = rows.combine_chunks()
    else:
        arr = rows
    if not pa.types.is_struct(arr.type):
        raise ProtiumError(PT_EINVAL, f"encode_json: expected a table, record batch or struct "
                           f"array, got {arr.type}")
    out, err = ArrowArray(), PtError()
    with _exported_array(arr) as (s, a):
        check(_lib.lib().pt_kafka_encode_json(ctypes.byref(s), ctypes.byref(a),
                                              ctypes.byref(out), ctypes.byref(err)), err)
    return pa.Array._import_from_c(ctypes.addressof(out), pa.binary())


Session.read_kafka = read_kafka  # type: ignore[attr-defined]
Dataset.write_kafka = write_kafka  # type: ignore[attr-defined]
