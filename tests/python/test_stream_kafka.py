"""test_stream_kafka.py — streaming queries from a Kafka topic to a Kafka
topic against a real broker (kafka_fixture: one per pytest session) with
real executors: JSON events enriched by a cached model come out exactly
once to read_committed consumers; a driver killed with SIGKILL inside a
batch and restarted from its checkpoint, and a broker restarted mid-stream,
lose and duplicate nothing; malformed values by policy, their dead letters
exactly once across a crash between the sink and the commit log.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import protium as pt

ROOT = Path(__file__).resolve().parents[2]


def events(start: int, n: int) -> list[bytes]:
    return [json.dumps({"id": i, "x": i % 7}).encode() for i in range(start, start + n)]


def enrich(it):
    """JSON events -> JSON events with a label (value column only)."""
    import pandas as pd

    for df in it:
        rows = [json.loads(v) for v in df["value"]]
        out = [json.dumps({**r, "label": int(r["x"] > 3)}).encode() for r in rows]
        yield pd.DataFrame({"value": out, "partition": df["partition"]})


def ids_once(broker, topic: str) -> list[int]:
    records = broker.consume(topic)  # read_committed
    ids = [json.loads(m.value())["id"] for m in records]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    for m in records:
        r = json.loads(m.value())
        assert r["label"] == int(r["x"] > 3)
    return sorted(ids)


def wait_for(cond, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]", conf={"stream.max_retry_time": "90s"}) as s:
        yield s


def test_topic_to_topic_with_a_cached_model_and_a_broker_restart(session, kafka_broker,
                                                                   tmp_path):
    src = kafka_broker.create_topic(kafka_broker.unique("events"), partitions=2)
    dst = kafka_broker.create_topic(kafka_broker.unique("enriched"), partitions=2)
    produced_from = time.time()
    kafka_broker.produce(src, events(0, 300))
    loads = tmp_path / "loads"
    loads.mkdir()

    def load():
        (loads / f"{os.getpid()}-{time.monotonic_ns()}").touch()
        return 3

    model = pt.cache(load)

    def enrich_cached(it):
        import pandas as pd

        threshold = model.get()
        for df in it:
            rows = [json.loads(v) for v in df["value"]]
            out = [json.dumps({**r, "label": int(r["x"] > threshold)}).encode() for r in rows]
            yield pd.DataFrame({"value": out, "partition": df["partition"]})

    q = (session.read_stream.kafka(bootstrap=kafka_broker.bootstrap, topic=src,
                                   starting_offsets="earliest", max_offsets_per_trigger=100)
         .map_in_pandas(enrich_cached, schema="value binary, partition int")
         .write_stream.kafka(topic=dst, bootstrap=kafka_broker.bootstrap)
         .trigger(continuous=True).checkpoint(tmp_path / "ckpt").start())
    out_rows = lambda: sum(p["output_rows"] or 0 for p in q.recent_progress())  # noqa: E731
    wait_for(lambda: out_rows() >= 300, "the first 300 events")
    kafka_broker.restart()  # away and back, mid-stream
    kafka_broker.produce(src, events(300, 200))
    produced_to = time.time()
    wait_for(lambda: out_rows() >= 500, "the next 200 events")
    progress = q.recent_progress()
    q.stop()
    # Event-time latency from the records' timestamps: each batch's oldest
    # event was produced while the test produced (1 s of slack: timestamps
    # are milliseconds of another process's clock reading).
    for p in progress:
        assert p["latency_ms"] is not None and p["latency_ms"] > 0, p
        event_time = p["committed"] - p["latency_ms"] / 1000.0
        assert produced_from - 1.0 <= event_time <= produced_to + 1.0, p
    assert all(p["records"] <= 100 for p in progress)  # max_offsets_per_trigger
    assert sum(p["records"] for p in progress) == 500
    assert ids_once(kafka_broker, dst) == list(range(500))
    pids = [p.name.split("-")[0] for p in loads.iterdir()]
    assert len(pids) == len(set(pids)) and len(pids) <= 2 < len(progress)


def test_steady_stream_keeps_its_sink_producers(session, kafka_broker, tmp_path):
    """Each sink partition stays on the executor that ran it last, so its
    initialized transactional producer serves every batch: after the first
    batches, no task makes a producer (which would fence the other
    executor's, and the next move that one)."""
    import threading

    src = kafka_broker.create_topic(kafka_broker.unique("steady"), partitions=2)
    dst = kafka_broker.create_topic(kafka_broker.unique("steady-out"), partitions=2)
    stop = threading.Event()
    kafka_broker.produce(src, events(0, 10), partition=0)
    kafka_broker.produce(src, events(10, 10), partition=1)

    def feed():
        # now one partition, now the other, now both: batches of one task
        # and of two, which round robin alone would place differently
        p, n = kafka_broker.producer(), 20
        while not stop.is_set():
            for part in ((0,), (1,), (0, 1))[n % 3]:
                for v in events(n, 10):
                    p.produce(src, value=v, partition=part)
                n += 10
            p.flush(30)
            time.sleep(0.03)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        q = (session.read_stream.kafka(bootstrap=kafka_broker.bootstrap, topic=src,
                                       starting_offsets="earliest")
             .map_in_pandas(enrich, schema="value binary, partition int")
             .write_stream.kafka(topic=dst, bootstrap=kafka_broker.bootstrap)
             .trigger(continuous=True).checkpoint(tmp_path / "ckpt").start())
        wait_for(lambda: len(q.recent_progress()) >= 40, "40 batches")
        progress = q.recent_progress()
        q.stop()
    finally:
        stop.set()
        feeder.join()
    assert all(p["kafka_producers"] is not None for p in progress)
    made = [p["kafka_producers"] for p in progress]
    assert sum(made) >= 1, made  # the first batches made them (the count counts)
    assert sum(made[10:]) == 0, made


DRIVER = textwrap.dedent('''
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    import protium as pt
    from test_stream_kafka import enrich
    bootstrap, src, dst, ckpt, mode = sys.argv[2:7]

    def work(it):
        for df in enrich(it):
            if mode == "block" and any(json.loads(v)["id"] == 250 for v in df["value"]):
                open(ckpt + ".reached", "w").close()
                time.sleep(600)
            yield df

    with pt.Session("local[2]", conf={"local.dir": sys.argv[7]}, progress=False) as s:
        q = (s.read_stream.kafka(bootstrap=bootstrap, topic=src, starting_offsets="earliest",
                                 max_offsets_per_trigger=100)
             .map_in_pandas(work, schema="value binary, partition int")
             .write_stream.kafka(topic=dst, bootstrap=bootstrap)
             .trigger(available_now=True).checkpoint(ckpt).start())
        q.await_termination()
        print(json.dumps(q.recent_progress()))
''')


def test_driver_killed_mid_batch_kafka_sink_exactly_once(kafka_broker, tmp_path):
    src = kafka_broker.create_topic(kafka_broker.unique("events"), partitions=1)
    dst = kafka_broker.create_topic(kafka_broker.unique("enriched"), partitions=1)
    kafka_broker.produce(src, events(0, 400))
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    ckpt = tmp_path / "ckpt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "python"),
                                                       str(Path(__file__).parent)]))
    args = [sys.executable, str(script), str(ROOT / "python"), kafka_broker.bootstrap, src, dst,
            str(ckpt)]
    p = subprocess.Popen(args + ["block", str(tmp_path)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    reached = Path(str(ckpt) + ".reached")
    deadline = time.monotonic() + 120
    while not reached.exists():
        assert p.poll() is None, p.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (ckpt / "offsets" / "2").exists() and not (ckpt / "commits" / "2").exists()
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    assert ids_once(kafka_broker, dst) == list(range(200))  # batches 0 and 1
    r = subprocess.run(args + ["run", str(tmp_path)], env=env, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr
    progress = json.loads(r.stdout.strip().splitlines()[-1])
    assert progress[0]["batch_id"] == 2 and progress[0]["recovered"]
    assert progress[0]["start_offsets"] == json.dumps({src: {"0": 200}}, separators=(",", ":"))
    assert ids_once(kafka_broker, dst) == list(range(400))


def test_bad_arguments(session, kafka_broker):
    with pytest.raises(pt.ProtiumError, match="is not \"earliest\""):
        session.read_stream.kafka(bootstrap=kafka_broker.bootstrap, topic="t",
                                  starting_offsets="middle")
    with pytest.raises(pt.ProtiumError, match="bootstrap"):
        session.read_stream.kafka(bootstrap="", topic="t")


def _mixed(n: int) -> list[bytes]:
    """n JSON events, every tenth malformed."""
    return [b"{not json" if i % 10 == 9 else json.dumps({"id": i, "x": float(i)}).encode()
            for i in range(n)]


@pytest.mark.parametrize("policy", ["drop", "dead_letter", "fail"])
def test_malformed_values_by_policy(session, kafka_broker, tmp_path, policy):
    import pyarrow as pa
    import pyarrow.feather as feather

    src = kafka_broker.create_topic(kafka_broker.unique("mixed"), partitions=1)
    dead = kafka_broker.create_topic(kafka_broker.unique("dead"), partitions=1)
    kafka_broker.produce(src, _mixed(50))
    q = (session.read_stream.kafka(bootstrap=kafka_broker.bootstrap, topic=src,
                                   starting_offsets="earliest", value_format="json",
                                   value_schema="id long, x double", on_malformed=policy,
                                   dead_letter_topic=dead if policy == "dead_letter" else None)
         .write_stream.ipc(tmp_path / "out").trigger(available_now=True)
         .checkpoint(tmp_path / "ckpt").start())
    if policy == "fail":
        with pytest.raises(pt.StreamingQueryException, match="malformed|JSON|json"):
            q.await_termination(120)
        assert not list((tmp_path / "out").glob("part-*"))
        return
    assert q.await_termination(120)
    got = pa.concat_tables(feather.read_table(p) for p in (tmp_path / "out").glob("part-*"))
    assert sorted(got.column("id").to_pylist()) == [i for i in range(50) if i % 10 != 9]
    letters = kafka_broker.consume(dead, isolation="read_uncommitted")
    if policy == "drop":
        assert letters == []
    else:  # each malformed record there once, with where it came from
        letters = kafka_broker.consume(dead)  # read_committed
        sources = sorted(json.loads(dict(m.headers())["source"])["offset"] for m in letters)
        assert sources == [9, 19, 29, 39, 49]
        assert all(m.value() == b"{not json" for m in letters)
        assert all(dict(m.headers())["error"] for m in letters)


def _dead_letter_producers(ds_session) -> list[int]:
    """Dead-letter producers made so far by each executor of the session
    (one task per executor of a local[1] session)."""
    import pandas as pd

    def made(frames):
        from protium.stream import _dead_letter_producers_made

        for _ in frames:
            yield pd.DataFrame({"made": [_dead_letter_producers_made()]})

    return ds_session.range(0, 1, partitions=1).map_in_pandas(made, "made long") \
        .to_pandas()["made"].tolist()


def test_dead_letter_producers_kept_across_batches(kafka_broker, tmp_path):
    """The dead letters of six batches, each with one, from the same
    engine partition in the same executor: one transactional producer
    serves them all (a new one per task would fence the last and cost a
    connection and init_transactions each), and each letter is there once."""
    import pyarrow as pa
    import pyarrow.feather as feather

    src = kafka_broker.create_topic(kafka_broker.unique("mixed"), partitions=1)
    dead = kafka_broker.create_topic(kafka_broker.unique("dead"), partitions=1)
    kafka_broker.produce(src, _mixed(60))
    with pt.Session("local[1]", progress=False) as s:
        assert _dead_letter_producers(s) == [0]
        q = (s.read_stream.kafka(bootstrap=kafka_broker.bootstrap, topic=src,
                                 starting_offsets="earliest", max_offsets_per_trigger=10,
                                 value_format="json", value_schema="id long, x double",
                                 on_malformed="dead_letter", dead_letter_topic=dead)
             .write_stream.ipc(tmp_path / "out").trigger(available_now=True)
             .checkpoint(tmp_path / "ckpt").start())
        assert q.await_termination(120)
        assert len(q.recent_progress()) == 6
        assert _dead_letter_producers(s) == [1]
    got = pa.concat_tables(feather.read_table(p) for p in (tmp_path / "out").glob("part-*"))
    assert sorted(got.column("id").to_pylist()) == [i for i in range(60) if i % 10 != 9]
    letters = kafka_broker.consume(dead)  # read_committed
    sources = sorted(json.loads(dict(m.headers())["source"])["offset"] for m in letters)
    assert sources == list(range(9, 60, 10))


DEAD_LETTER_DRIVER = textwrap.dedent('''
    import os, shutil, sys, time
    from pathlib import Path
    import protium as pt
    bootstrap, src, dead, out, ckpt, mode, local = sys.argv[1:8]

    def sink(ds, batch_id):  # idempotent per batch id: its files replaced whole
        tmp = Path(out) / f"_tmp-{batch_id}"
        if tmp.exists():  # left by a run killed in this batch
            shutil.rmtree(tmp)
        ds.write_ipc(tmp)
        for i, p in enumerate(sorted(tmp.glob("part-*.arrow"))):
            os.replace(p, Path(out) / f"batch-{batch_id:05d}-{i}.arrow")
        if mode == "block" and batch_id == 1:  # the sink is done, the commit log not yet
            open(ckpt + ".reached", "w").close()
            time.sleep(600)

    Path(out).mkdir(exist_ok=True)
    with pt.Session("local[2]", conf={"local.dir": local}, progress=False) as s:
        q = (s.read_stream.kafka(bootstrap=bootstrap, topic=src, starting_offsets="earliest",
                                 max_offsets_per_trigger=100, value_format="json",
                                 value_schema="id long, x double", on_malformed="dead_letter",
                                 dead_letter_topic=dead)
             .write_stream.foreach_batch(sink)
             .trigger(available_now=True).checkpoint(ckpt).start())
        q.await_termination()
''')


def test_dead_letters_exactly_once_across_a_crash_between_sink_and_commit(kafka_broker,
                                                                         tmp_path):
    import pyarrow as pa
    import pyarrow.feather as feather

    src = kafka_broker.create_topic(kafka_broker.unique("mixed"), partitions=1)
    dead = kafka_broker.create_topic(kafka_broker.unique("dead"), partitions=1)
    kafka_broker.produce(src, _mixed(300))  # batches of 100: 0, 1, 2
    script, out, ckpt = tmp_path / "driver.py", tmp_path / "out", tmp_path / "ckpt"
    script.write_text(DEAD_LETTER_DRIVER)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    args = [sys.executable, str(script), kafka_broker.bootstrap, src, dead, str(out), str(ckpt)]
    p = subprocess.Popen(args + ["block", str(tmp_path)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    reached = Path(str(ckpt) + ".reached")
    wait_for(lambda: reached.exists() or p.poll() is not None, "batch 1 in the sink", 120)
    assert p.poll() is None, p.communicate()[1]
    assert (ckpt / "offsets" / "1").exists() and not (ckpt / "commits" / "1").exists()
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    r = subprocess.run(args + ["run", str(tmp_path)], env=env, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr
    got = pa.concat_tables(feather.read_table(f) for f in out.glob("batch-*.arrow"))
    assert sorted(got.column("id").to_pylist()) == [i for i in range(300) if i % 10 != 9]
    # batch 1 ran twice (before the kill and after the restart): its dead
    # letters are there once
    letters = kafka_broker.consume(dead)  # read_committed
    sources = sorted(json.loads(dict(m.headers())["source"])["offset"] for m in letters)
    assert sources == list(range(9, 300, 10))
    # one transactional id (and marker group) per engine partition, not
    # one per task: four tasks of one partition used one
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    groups = [g.group_id for g in admin.list_consumer_groups().result(60).valid
              if g.group_id.startswith(f"protium-dlq-{dead}-")]
    assert groups == [f"protium-dlq-{dead}-{src}-0"]
