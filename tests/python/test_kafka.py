"""test_kafka.py — protium.kafka against a real broker (kafka_fixture):
ranges read exactly as confluent-kafka consumes them, read_committed
skipping aborted transactions, writes exactly once per batch id (rerun,
and a writer killed mid-transaction), brokers away, a broker restart
keeping its data, bad options refused."""

from __future__ import annotations

import os
import time

import pyarrow as pa
import pytest

import protium as pt
from protium import kafka


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]") as s:
        yield s


def test_read_ranges_match_confluent(kafka_broker, session):
    topic = kafka_broker.create_topic(kafka_broker.unique("read"), partitions=2)
    for p in (0, 1):
        kafka_broker.produce(topic, [f"v{p}-{i}".encode() for i in range(20)], partition=p,
                             keys=[None if i % 5 == 0 else f"k{i}".encode() for i in range(20)],
                             headers=[[("a", b"x"), ("b", f"{i}".encode())] for i in range(20)])
    offs = kafka.topic_offsets(kafka_broker.bootstrap, topic)
    assert offs == [{"partition": 0, "earliest": 0, "latest": 20},
                    {"partition": 1, "earliest": 0, "latest": 20}]
    ds = session.read_kafka(bootstrap=kafka_broker.bootstrap, topic=topic,
                            starting_offsets={0: 3, 1: 0},
                            ending_offsets=f'{{"{topic}": {{"0": 17, "1": -1}}}}')
    t = ds.to_arrow()
    assert t.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    assert t.schema.field("headers").type == pa.list_(pa.field(
        "item", pa.struct([pa.field("key", pa.string(), nullable=False), ("value", pa.binary())]),
        nullable=False))
    got = sorted(t.to_pylist(), key=lambda r: (r["partition"], r["offset"]))
    ref = [m for m in kafka_broker.consume(topic)
           if (m.partition() == 0 and 3 <= m.offset() < 17) or m.partition() == 1]
    assert len(got) == len(ref) == 14 + 20
    for r, m in zip(got, ref):
        assert (r["partition"], r["offset"], r["key"], r["value"], r["topic"]) == \
            (m.partition(), m.offset(), m.key(), m.value(), m.topic())
        assert [(h["key"], h["value"]) for h in r["headers"]] == m.headers()
        assert int(r["timestamp"].timestamp() * 1000) == m.timestamp()[1]
        assert r["timestamp_type"] == 0
    # Split into engine partitions of at most 4 records.
    ds = session.read_kafka(bootstrap=kafka_broker.bootstrap, topic=topic,
                            max_records_per_partition=4)
    assert ds.num_partitions == 10
    assert ds.count() == 40


def test_read_committed_skips_aborted(kafka_broker, session):
    topic = kafka_broker.create_topic(kafka_broker.unique("txn"))
    p = kafka_broker.producer(**{"transactional.id": kafka_broker.unique("txn-producer")})
    p.init_transactions(30)
    for batch, commit in ((range(0, 4), True), (range(100, 104), False), (range(4, 6), True)):
        p.begin_transaction()
        for i in batch:
            p.produce(topic, value=f"{i}".encode())
        p.flush(30)
        if commit:
            p.commit_transaction(30)
        else:
            p.abort_transaction(30)
    values = session.read_kafka(bootstrap=kafka_broker.bootstrap, topic=topic) \
        .to_arrow().column("value").to_pylist()
    assert values == [f"{i}".encode() for i in range(6)]
    assert [m.value() for m in kafka_broker.consume(topic)] == values


def _batch(tag: str, n: int) -> pa.Table:
    return pa.table({"key": [f"k{i}" for i in range(n)],
                     "value": [f"{tag}-{i}".encode() for i in range(n)],
                     "headers": [[{"key": "tag", "value": tag.encode()}]] * n})


def test_write_exactly_once_on_rerun(kafka_broker, session):
    topic = kafka_broker.create_topic(kafka_broker.unique("out"), partitions=2)
    prefix = kafka_broker.unique("query")
    ds = session.from_arrow(_batch("b0", 50), partitions=3)
    ds.write_kafka(bootstrap=kafka_broker.bootstrap, topic=topic, transactional_prefix=prefix,
                   batch_id=0)
    ds.write_kafka(bootstrap=kafka_broker.bootstrap, topic=topic, transactional_prefix=prefix,
                   batch_id=0)  # again: nothing more
    session.from_arrow(_batch("b1", 30), partitions=3).write_kafka(
        bootstrap=kafka_broker.bootstrap, topic=topic, transactional_prefix=prefix, batch_id=1)
    got = kafka_broker.consume(topic)
    values = sorted(m.value() for m in got)
    assert values == sorted([f"b0-{i}".encode() for i in range(50)] +
                            [f"b1-{i}".encode() for i in range(30)])
    assert all(m.headers() == [("tag", m.value().split(b"-")[0])] for m in got)
    assert all(m.key() == b"k" + m.value().split(b"-")[1] for m in got)


def test_write_killed_mid_transaction(kafka_broker, session):
    topic = kafka_broker.create_topic(kafka_broker.unique("killed"))
    prefix = kafka_broker.unique("killed-query")

    def die_once(it):
        """Yields every row, then, the first time, kills its executor (the
        interpreter runs in it)."""
        import os as _os
        import signal
        import time as _time
        flag = _os.path.join(session_dir, "died")
        for df in it:
            yield df
        if not _os.path.exists(flag):
            open(flag, "w").close()
            _time.sleep(1.0)  # the producer sends what it holds
            _os.kill(_os.getpid(), signal.SIGKILL)

    session_dir = str(kafka_broker.dir.parent)
    ds = session.from_arrow(pa.table({"value": [f"e{i}".encode() for i in range(40)]}),
                            partitions=1).map_in_pandas(die_once, schema="value binary")
    ds.write_kafka(bootstrap=kafka_broker.bootstrap, topic=topic, transactional_prefix=prefix,
                   batch_id=7)
    assert os.path.exists(os.path.join(session_dir, "died"))
    committed = kafka_broker.consume(topic)
    assert sorted(m.value() for m in committed) == sorted(f"e{i}".encode() for i in range(40))
    # (A map runs before its sink sees the batch, so here the kill lands before
    # the transaction; tests/c/test_kafka.c kills between produce and commit.)


def test_broker_away_clear_error():
    t0 = time.monotonic()
    with pytest.raises(pt.ProtiumError) as e:
        kafka.topic_offsets("127.0.0.1:1", "t", max_retry=1.0, timeout=0.5)
    assert time.monotonic() - t0 < 15
    assert "127.0.0.1:1" in str(e.value) and "did not answer" in str(e.value)


def test_bad_options_refused(kafka_broker, session):
    with pytest.raises(pt.ProtiumError, match="no.such.property"):
        kafka.topic_offsets(kafka_broker.bootstrap, "t", options={"kafka.no.such.property": 1})
    topic = kafka_broker.create_topic(kafka_broker.unique("bad"))
    with pytest.raises(pt.ProtiumError, match="does not have"):
        session.read_kafka(bootstrap=kafka_broker.bootstrap, topic=topic,
                           starting_offsets={5: 0})
    with pytest.raises(pt.ProtiumError, match="no 'value' column"):
        session.range(3).write_kafka(bootstrap=kafka_broker.bootstrap, topic=topic,
                                     transactional_prefix="p", batch_id=0)


def test_restart_keeps_data(kafka_broker):
    topic = kafka_broker.create_topic(kafka_broker.unique("restart"))
    kafka_broker.produce(topic, [b"a", b"b"])
    before = kafka_broker.bootstrap
    kafka_broker.restart()
    assert kafka_broker.bootstrap == before
    assert kafka.topic_offsets(kafka_broker.bootstrap, topic)[0]["latest"] == 2
    assert [m.value() for m in kafka_broker.consume(topic)] == [b"a", b"b"]


def test_decode_json_and_ipc_policies(kafka_broker, session):
    topic = kafka_broker.create_topic(kafka_broker.unique("events"))
    good = pa.table({"id": pa.array([1, 2], pa.int64()), "x": [0.5, 1.5]})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, good.schema) as w:
        w.write_table(good)
    kafka_broker.produce(topic, [b'{"id": 7, "x": 1.25, "other": [1]}', b"{oops",
                                 b'{"id": "no"}', sink.getvalue().to_pybytes()])
    values = session.read_kafka(bootstrap=kafka_broker.bootstrap, topic=topic) \
        .to_arrow().column("value")
    with pytest.raises(pt.ProtiumError, match="record 1"):
        kafka.decode_json(values, "id long, x double")
    t = kafka.decode_json(values, "id long, x double", on_error="drop")
    assert t.to_pylist() == [{"id": 7, "x": 1.25}]
    t, dead = kafka.decode_json(values, "id long, x double", on_error="dead_letter")
    assert dead.column("row").to_pylist() == [1, 2, 3]
    assert dead.column("error").to_pylist()[1] == "field 'id' is not a number"
    assert dead.column("value").to_pylist()[0] == b"{oops"
    t, dead = kafka.decode_ipc(values, good.schema, on_error="dead_letter")
    assert t.to_pylist() == good.to_pylist()
    assert dead.column("row").to_pylist() == [0, 1, 2]


@pytest.mark.parametrize("decode", [kafka.decode_json, kafka.decode_ipc])
def test_decoders_survive_garbage(decode):
    import random
    rng = random.Random(5)
    values = pa.array([bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
                       for _ in range(500)] + [None], pa.binary())
    t, dead = decode(values, "id long, x double, name string", on_error="dead_letter")
    assert t.num_rows + dead.num_rows == len(values)


def test_readme_kafka_example_runs(kafka_broker, tmp_path):
    import re
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    block = re.search(r"## Kafka\n.*?```python\n(.*?)```", readme, flags=re.S).group(1)
    for t in ("readme-events", "readme-enriched"):
        kafka_broker.create_topic(t)
    kafka_broker.produce("readme-events", [b'{"id": 1, "name": "a"}', b"oops",
                                           b'{"id": 2, "name": "b"}'],
                         keys=[b"1", b"2", b"3"])
    script = tmp_path / "kafka_example.py"
    script.write_text(block)
    env = dict(os.environ, PYTHONPATH=str(root / "python"), KAFKA_BOOTSTRAP=kafka_broker.bootstrap)
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == ["[{'partition': 0, 'earliest': 0, 'latest': 3}]", "2 1", "4"]
    assert [m.value() for m in kafka_broker.consume("readme-enriched")] == \
        [b'{"ID": 1, "NAME": "A"}', b"OOPS", b'{"ID": 2, "NAME": "B"}']
