"""test_kafka_encode.py — protium.kafka.encode_json (pt_kafka_encode_json)
against Python's json module: every column type the decoder reads, nulls,
odd strings (controls, quotes, surrogate pairs, random code points) and
random floats that must read back bit for bit; then the Kafka sink's
value_format="json" against a real broker (kafka_fixture), for a batch
write and for a streaming query that decodes and encodes in C.
"""

from __future__ import annotations

import json
import math
import random
import struct
import time

import pyarrow as pa
import pytest

import protium as pt
from protium import kafka

COMPACT = dict(separators=(",", ":"), ensure_ascii=False)


def _expected(t: pa.Table) -> list[dict]:
    """The rows as Python's json module would see them once decoded:
    timestamps as epoch numbers, binary as its text."""
    rows = []
    for r in t.cast(pa.schema([pa.field(f.name, pa.int64()) if pa.types.is_timestamp(f.type)
                               else f for f in t.schema])).to_pylist():
        rows.append({k: v.decode() if isinstance(v, bytes) else v for k, v in r.items()})
    return rows


def test_every_type_with_nulls_matches_json():
    rng = random.Random(3)
    n = 300

    def maybe(v):
        return None if rng.random() < 0.2 else v

    t = pa.table({
        "b": pa.array([maybe(rng.random() < 0.5) for _ in range(n)], pa.bool_()),
        "i8": pa.array([maybe(rng.randint(-128, 127)) for _ in range(n)], pa.int8()),
        "i16": pa.array([maybe(rng.randint(-2**15, 2**15 - 1)) for _ in range(n)], pa.int16()),
        "i32": pa.array([maybe(rng.randint(-2**31, 2**31 - 1)) for _ in range(n)], pa.int32()),
        "i64": pa.array([maybe(rng.choice([-2**63, 2**63 - 1, 0, rng.randint(-2**63, 2**63 - 1)]))
                         for _ in range(n)], pa.int64()),
        "f64": pa.array([maybe(rng.choice([0.0, -0.0, 1e300, 5e-324, 0.1, 1e16, 1e15, 123.0,
                                           rng.uniform(-1e6, 1e6)])) for _ in range(n)],
                        pa.float64()),
        "s": pa.array([maybe("".join(rng.choice('ab"\\\n\t\x00\x1fé€😀') for _ in
                                     range(rng.randrange(8)))) for _ in range(n)], pa.string()),
        "bin": pa.array([maybe("x\u2028y".encode() * rng.randrange(3)) for _ in range(n)],
                        pa.binary()),
        "ts": pa.array([maybe(rng.randint(-10**12, 10**15)) for _ in range(n)],
                       pa.timestamp("us", tz="UTC")),
        "odd \"key\"\n": pa.array([maybe(1) for _ in range(n)], pa.int32()),
        "ls": pa.array([maybe("large\t") for _ in range(n)], pa.large_string()),
        "lb": pa.array([maybe(b"x") for _ in range(n)], pa.large_binary()),
    })
    values = kafka.encode_json(t)
    assert values.type == pa.binary() and len(values) == n and values.null_count == 0
    expected = _expected(t)
    for got, want in zip(values.to_pylist(), expected):
        assert json.loads(got) == want
        # keys in column order, no spaces: what json.dumps writes, but for
        # floats, whose digits both choose by the shortest round trip
        if all(not isinstance(v, float) for v in want.values()):
            assert got == json.dumps(want, **COMPACT).encode()
    decodable = t.drop_columns(["ls", "lb"])  # the decoder reads utf8 and binary
    assert kafka.decode_json(values, decodable.schema).equals(decodable)


def test_float32_reads_back_as_the_same_float():
    rng = random.Random(7)
    xs = [struct.unpack("f", struct.pack("I", rng.getrandbits(32)))[0] for _ in range(3000)]
    xs = [x for x in xs if math.isfinite(x)] + [0.1, 3.4028234663852886e38, 1.4e-45]
    t = pa.table({"f": pa.array(xs, pa.float32())})
    values = kafka.encode_json(t)
    for got, x in zip(values.to_pylist(), t.column("f").to_pylist()):
        y = json.loads(got)["f"]
        assert isinstance(y, float)
        assert struct.pack("f", y) == struct.pack("f", x)
    assert kafka.decode_json(values, t.schema).equals(t)


def test_random_doubles_round_trip_bit_for_bit():
    rng = random.Random(11)
    xs = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(5000)]
    xs = [x for x in xs if math.isfinite(x)] + [2.0**53 + 2, -0.0, 1 / 3, 2.5e-308]
    values = kafka.encode_json(pa.table({"x": pa.array(xs, pa.float64())}))
    for got, x in zip(values.to_pylist(), xs):
        y = json.loads(got)["x"]
        assert isinstance(y, float) and struct.pack("d", y) == struct.pack("d", x)
        assert got == json.dumps({"x": x}, **COMPACT).encode() or len(got) <= len(
            json.dumps({"x": x}, **COMPACT))  # never longer than Python's repr


def test_decimal_looking_doubles_written_as_repr_writes_them():
    # prices and ratings: the encoder's short way for few decimals
    rng = random.Random(13)
    xs = [round(rng.uniform(-1e6, 1e6), rng.randrange(8)) for _ in range(20000)] + \
         [round(rng.uniform(0, 1), rng.randrange(10)) for _ in range(20000)] + \
         [0.0001, 0.00012, 0.5, 999999999999999.9, 1e14, 123456789.123456, 2.675, 1.005]
    values = kafka.encode_json(pa.table({"x": pa.array(xs, pa.float64())}))
    for got, x in zip(values.to_pylist(), xs):
        assert got == json.dumps({"x": x}, **COMPACT).encode()


def test_odd_strings_escaped_as_json_does():
    rng = random.Random(5)
    pool = [chr(c) for c in range(0, 0x80)] + ["\u0080", "\u07ff", "\u0800", "\u2028",
                                                "\u2029", "\ufeff", "\uffff", "\U00010000",
                                                "\U0010ffff", "😀", "\x7f"]

    def odd() -> str:
        if rng.random() < 0.3:  # any scalar value but the surrogates
            c = rng.randrange(0x110000)
            return chr(c if not 0xD800 <= c < 0xE000 else 0x41)
        return rng.choice(pool)

    strs = ["", "\\", '"', "\\u0000", "/", "\"\\\"", "\x00" * 5] + \
           ["".join(odd() for _ in range(rng.randrange(40))) for _ in range(2000)]
    t = pa.table({"s": pa.array(strs, pa.string()),
                  "b": pa.array([s.encode() for s in strs], pa.binary())})
    values = kafka.encode_json(t)
    for got, s in zip(values.to_pylist(), strs):
        assert got == json.dumps({"s": s, "b": s}, **COMPACT).encode()
        assert json.loads(got) == {"s": s, "b": s}
    assert kafka.decode_json(values, t.schema).equals(t)


def test_inputs_json_cannot_hold_are_refused_by_name():
    with pytest.raises(pt.ProtiumError) as e:
        kafka.encode_json(pa.table({"id": [1, 2], "x": [1.0, float("nan")]}))
    assert str(e.value).endswith("encode_json: row 1: column 'x' is NaN, which JSON cannot "
                                 "hold; replace it (or make it null) before encoding")
    with pytest.raises(pt.ProtiumError, match="row 0: column 'x' is infinite"):
        kafka.encode_json(pa.table({"x": pa.array([float("-inf")], pa.float32())}))
    with pytest.raises(pt.ProtiumError, match="row 1: column 'b' is not valid UTF-8, which a "
                                              "JSON string must be"):
        kafka.encode_json(pa.table({"b": [b"ok", b"\xff\xfe"]}))
    with pytest.raises(pt.ProtiumError, match="column 'l' has type '\\+l'; JSON values encode "
                                              "booleans"):
        kafka.encode_json(pa.table({"l": [[1]]}))
    arr = pa.StructArray.from_arrays([pa.array([1, 2])], names=["a"],
                                     mask=pa.array([False, True]))
    with pytest.raises(pt.ProtiumError, match="encode_json: row 1 is null"):
        kafka.encode_json(arr)
    with pytest.raises(pt.ProtiumError, match="expected a table"):
        kafka.encode_json(pa.array([1]))


def test_empty_inputs():
    assert kafka.encode_json(pa.table({"a": pa.array([], pa.int64())})).to_pylist() == []
    none = pa.array([{}, {}], pa.struct([]))
    assert kafka.encode_json(none).to_pylist() == [b"{}", b"{}"]
    sliced = pa.table({"a": [1, 2, 3], "s": ["x", None, "z"]}).slice(1, 2)
    assert kafka.encode_json(sliced).to_pylist() == [b'{"a":2,"s":null}', b'{"a":3,"s":"z"}']


# ---------------------------------------------------------------------------
# The Kafka sink's value_format="json", against a real broker


def test_write_kafka_json_values(kafka_broker):
    topic = kafka_broker.create_topic(kafka_broker.unique("json-out"), partitions=2)
    t = pa.table({"id": pa.array(range(200), pa.int64()),
                  "x": [i / 8 if i % 5 else None for i in range(200)],
                  "name": [f"n\"{i}\n" for i in range(200)]})
    with pt.Session("local[2]") as s:
        ds = s.from_arrow(t, partitions=3)
        with pytest.raises(pt.ProtiumError, match="value_format 'xml' is not None"):
            ds.write_kafka(bootstrap=kafka_broker.bootstrap, topic=topic,
                           transactional_prefix="x", batch_id=0, value_format="xml")
        with pytest.raises(pt.ProtiumError, match="no 'value' column; add one .* or encode "
                                                  "the rows as JSON"):
            ds.write_kafka(bootstrap=kafka_broker.bootstrap, topic=topic,
                           transactional_prefix="x", batch_id=0)
        with pytest.raises(pt.ProtiumError, match="write_kafka: encode_json: column 'l' has "
                                                  "type"):
            s.from_arrow(pa.table({"l": [[1]]})).write_kafka(
                bootstrap=kafka_broker.bootstrap, topic=topic, transactional_prefix="x",
                batch_id=0, value_format="json")
        prefix = kafka_broker.unique("json")
        for _ in range(2):  # the second is the same batch: nothing more
            ds.write_kafka(bootstrap=kafka_broker.bootstrap, topic=topic,
                           transactional_prefix=prefix, batch_id=0, value_format="json")
    got = sorted((json.loads(m.value()) for m in kafka_broker.consume(topic)),
                 key=lambda r: r["id"])
    assert got == t.to_pylist()


def test_stream_json_in_json_out(kafka_broker, tmp_path):
    """read_stream.kafka(value_format="json") -> a model over columns ->
    write_stream.kafka(value_format="json"): decoded and encoded in C."""
    src = kafka_broker.create_topic(kafka_broker.unique("json-in"), partitions=2)
    dst = kafka_broker.create_topic(kafka_broker.unique("json-out"), partitions=2)
    n = 900  # kafka_broker.consume reads up to 1000 records a partition
    kafka_broker.produce(src, [json.dumps({"id": i, "x": i % 7, "tag": f"t{i % 3}"}).encode()
                               for i in range(n)])

    def label(frames):
        for df in frames:
            yield df.assign(label=(df["x"] > 3).astype("int8"))

    with pt.Session("local[2]") as s:
        q = (s.read_stream.kafka(bootstrap=kafka_broker.bootstrap, topic=src,
                                 starting_offsets="earliest", max_offsets_per_trigger=300,
                                 value_format="json", value_schema="id long, x int, tag string")
             .map_in_pandas(label, schema="id long, x int, tag string, label byte")
             .write_stream.kafka(topic=dst, bootstrap=kafka_broker.bootstrap,
                                 value_format="json")
             .trigger(available_now=True).checkpoint(tmp_path / "ck").start())
        assert q.await_termination(180)
        assert sum(p["input_rows"] for p in q.recent_progress()) == n
    # the last transaction's commit markers may still be on their way
    deadline = time.monotonic() + 60
    while True:
        got = [json.loads(m.value()) for m in kafka_broker.consume(dst)]
        if len(got) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted(r["id"] for r in got) == list(range(n))
    for r in got:
        assert r == {"id": r["id"], "x": r["id"] % 7, "tag": f"t{r['id'] % 3}",
                     "label": int(r["id"] % 7 > 3)}
