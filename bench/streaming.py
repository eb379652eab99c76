"""streaming.py — bench/run streaming: enrich a Kafka topic with a small
model into another topic, protium's streaming query against PySpark
Structured Streaming (Kafka source and sink from spark-sql-kafka,
mapInPandas), the same events, model and function in both.

Two variants, both run for both systems, the same events in and the same
records out (JSON objects: the event's fields and predicted_label):
  value   (keys protium.events_per_s.value, ...) the function gets the raw
          Kafka values and parses and writes JSON in Python (json.loads
          per row, json.dumps per row), the same code in both systems:
            protium  read_stream.kafka -> map_in_pandas(enrich)
                     -> write_stream.kafka
            PySpark  readStream kafka -> select(value)
                     -> mapInPandas(enrich) -> writeStream kafka
  json    (keys protium.events_per_s, ...: the headline, as each peer is
          compared on its best path) each system's best path
          for JSON events: the engine decodes and encodes JSON, the model
          runs in pandas over typed columns (enrich_columns, the same
          function in both):
            protium  read_stream.kafka(value_format="json",
                     value_schema=EVENT) -> map_in_pandas(enrich_columns)
                     -> write_stream.kafka(value_format="json")
            PySpark  readStream kafka -> from_json(value as string,
                     EVENT) -> mapInPandas(enrich_columns)
                     -> to_json(struct(every column)) -> writeStream kafka
The throughput phases' outputs are compared across systems and variants:
every event exactly once (counts, ids) and the decoded records of a sample
of events equal (all fields but the production time, which each phase
stamps anew).

Events of ~200 bytes (JSON: ids, a timestamp, a few numeric and string
fields) go into a topic of a real broker (tests/kafka/broker.sh). Two
phases per system, each in a child process of its own:
  throughput  a backlog of PT_BENCH_EVENTS events, processed as fast as the
              system goes; events/s from the output records' timestamps
              (the first 10% of the output is left out as warm-up);
  latency     after a warm-up, events produced at a fixed rate for
              PT_BENCH_SECONDS; latency of each event = its output record's
              timestamp - the time it was produced (carried in the event);
              p50 and p99, the first second left out. The rate is half of
              the lower of the two systems' throughputs, the same for both.
              Visible latency: from the same time to when a read_committed
              consumer, reading the output topic all along, received it
              (protium's records become visible when their transaction
              commits; Spark's sink is not transactional).
CPU per event (keys *.cpu_us_per_event): user + system CPU of the query
process and every process under it (protium: executors, Python workers;
Spark: the JVM and its Python workers), from /proc, between the end of the
first micro-batch and the last event's, over the events in between, or
from the query's start when the first batch took half of the events or
more (then the executors' or the JVM's warm-up is in); the broker and
this process are not counted.
Output is read back with read_committed (protium's sink is transactional,
Spark's is not; both are counted).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("PT_BUILD_DIR", ROOT / "build"))
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("PT_BUILD_DIR", str(BUILD))

EVENTS = int(os.environ.get("PT_BENCH_EVENTS", "200000"))
SECONDS = float(os.environ.get("PT_BENCH_SECONDS", "15"))
# The newest spark-sql-kafka on Maven Central (4.3.0, pyspark's own, is not there).
SPARK_VERSION = os.environ.get("PT_BENCH_SPARK_KAFKA", "4.2.0")
# Where its jars are (scripts/fetch-kafka --spark puts them there); a folder
# of your own with PT_BENCH_SPARK_KAFKA_DIR (its libs/ and complete).
SPARK_JARS = Path(os.environ.get("PT_BENCH_SPARK_KAFKA_DIR",
                                 ROOT / f".cache/spark-kafka-{SPARK_VERSION}"))

# The model and the function, shared by both systems (imported by the
# children from this file's folder).
ENRICH = textwrap.dedent('''
    import json
    from pathlib import Path
    import numpy as np
    import pandas as pd

    W = np.array([1.2, -0.8, 0.6, 0.9], dtype=np.float64)   # a small logistic model
    B = -0.3

    def predict(rows: pd.DataFrame) -> np.ndarray:
        x = np.stack([rows["price"] / 100.0, rows["rating"] / 5.0, rows["position"] / 20.0,
                      (rows["device"] == "mobile").astype(float)], axis=1)
        return (x @ W + B > 0).astype(np.int8)

    def enrich(frames):
        for df in frames:
            rows = pd.DataFrame([json.loads(v) for v in df["value"]])
            rows["predicted_label"] = predict(rows)
            yield pd.DataFrame({"value": [json.dumps(r, separators=(",", ":")).encode()
                                          for r in rows.to_dict("records")]})

    def tree_cpu():
        """CPU seconds (user + system) of this process and every process
        under it, live ones and those reaped (protium: the driver, its
        executors and Python workers; Spark: the JVM and its workers)."""
        import os
        tck = os.sysconf("SC_CLK_TCK")
        kids, cpu = {}, {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            f = st[st.rfind(")") + 2:].split()
            kids.setdefault(int(f[1]), []).append(int(d))
            cpu[int(d)] = sum(int(x) for x in f[11:15]) / tck
        total, todo = 0.0, [os.getpid()]
        while todo:
            p = todo.pop()
            total += cpu.get(p, 0.0)
            todo += kids.get(p, [])
        return total

    def cpu_mark(control, done, total):
        """The CPU of the process tree (done, seconds) at the first call,
        when a first batch left start-up behind (done > 0) and at the end
        (done >= total), for the bench to divide."""
        path = Path(control + ".cpu")
        marks = json.loads(path.read_text()) if path.exists() else []
        if len(marks) == 0 or (len(marks) == 1 and done > 0) or \
                (len(marks) == 2 and done >= total > marks[1][0]):
            marks.append([done, tree_cpu()])
            path.write_text(json.dumps(marks))

    # The events' fields, for the engines' JSON decoders.
    EVENT = ("event_id long, ts_ms long, user_id long, country string, device string, "
             "price double, rating double, position long, note string")
    ENRICHED = EVENT + ", predicted_label byte"

    def enrich_columns(frames):
        for df in frames:
            yield df.assign(predicted_label=predict(df))
''')

PROTIUM = textwrap.dedent('''
    import json, sys, time, os
    from pathlib import Path
    import protium as pt
    from stream_bench_model import enrich, enrich_columns, EVENT, ENRICHED, cpu_mark
    bootstrap, src, dst, ckpt, control, variant, total = sys.argv[1:8]
    with pt.Session("local[2]", progress=False) as s:
        if variant == "json":
            q = (s.read_stream.kafka(bootstrap=bootstrap, topic=src,
                                     starting_offsets="earliest",
                                     max_offsets_per_trigger=100_000,
                                     value_format="json", value_schema=EVENT)
                 .map_in_pandas(enrich_columns, schema=ENRICHED)
                 .write_stream.kafka(topic=dst, bootstrap=bootstrap, value_format="json")
                 .trigger(continuous=True).checkpoint(ckpt).start())
        else:
            q = (s.read_stream.kafka(bootstrap=bootstrap, topic=src,
                                     starting_offsets="earliest",
                                     max_offsets_per_trigger=100_000)
                 .map_in_pandas(enrich, schema="value binary")
                 .write_stream.kafka(topic=dst, bootstrap=bootstrap)
                 .trigger(continuous=True).checkpoint(ckpt).start())
        done, seen = 0, set()
        while True:
            # by batch id: the query keeps only its last stream.progress_keep entries
            for p in q.recent_progress():
                if p["batch_id"] not in seen:
                    seen.add(p["batch_id"])
                    done += p["input_rows"] or 0
            Path(control + ".count").write_text(str(done))
            cpu_mark(control, done, int(total))
            target = Path(control + ".stop")
            if target.exists() and done >= int(target.read_text() or 0):
                break
            if not q.is_active:
                q.await_termination(0)
            time.sleep(0.05)
        q.stop()
    print(json.dumps({"ok": True}))
''')

SPARK = textwrap.dedent('''
    import glob, json, os, sys, time
    from pathlib import Path
    from pyspark.sql import SparkSession
    from pyspark.sql.functions import col, from_json, struct, to_json
    from stream_bench_model import enrich, enrich_columns, EVENT, ENRICHED, cpu_mark
    bootstrap, src, dst, ckpt, control, variant, total, jars = sys.argv[1:9]
    spark = (SparkSession.builder.master("local[2]").appName("bench-streaming")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.jars", ",".join(sorted(glob.glob(jars + "/*.jar"))))
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    df = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
          .option("subscribe", src).option("startingOffsets", "earliest")
          .option("maxOffsetsPerTrigger", 100000).load())
    if variant == "json":
        cols = [f.split()[0] for f in ENRICHED.split(", ")]
        out = (df.select(from_json(col("value").cast("string"), EVENT).alias("e"))
               .select("e.*").mapInPandas(enrich_columns, ENRICHED)
               .select(to_json(struct(*cols)).alias("value")))
    else:
        out = df.select("value").mapInPandas(enrich, "value binary")
    q = (out.writeStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
         .option("topic", dst).option("checkpointLocation", ckpt)
         .trigger(processingTime="0 seconds").start())
    done, seen = 0, set()
    while True:
        for p in q.recentProgress:
            if p["batchId"] not in seen:
                seen.add(p["batchId"])
                done += p["numInputRows"]
        Path(control + ".count").write_text(str(done))
        cpu_mark(control, done, int(total))
        target = Path(control + ".stop")
        if target.exists() and done >= int(target.read_text() or 0):
            break
        if q.exception() is not None:
            raise RuntimeError(str(q.exception()))
        time.sleep(0.05)
    q.stop()
    spark.stop()
    print(json.dumps({"ok": True}))
''')


class Broker:
    def __init__(self, work: Path) -> None:
        self.dir = work / "broker"
        r = subprocess.run([str(ROOT / "tests/kafka/broker.sh"), "start", str(self.dir)],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise SystemExit(f"streaming: cannot start a Kafka broker: {r.stderr.strip()}")
        self.bootstrap = r.stdout.strip()
        self.n = 0

    def stop(self) -> None:
        subprocess.run([str(ROOT / "tests/kafka/broker.sh"), "stop", str(self.dir)],
                       capture_output=True, timeout=120)

    def topic(self, name: str) -> str:
        from confluent_kafka.admin import AdminClient, NewTopic

        self.n += 1
        t = f"{name}-{self.n}"
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1)])[t].result(60)
        return t


def event_values(start: int, n: int, rng) -> list[bytes]:
    devices = ["mobile", "desktop", "tablet"]
    countries = ["US", "DE", "FR", "BR", "IN", "JP"]
    now = int(time.time() * 1000)
    return [json.dumps({"event_id": i, "ts_ms": now, "user_id": int(rng.integers(0, 100000)),
                        "country": countries[i % 6], "device": devices[i % 3],
                        "price": round(float(rng.gamma(2.0, 30.0)), 2),
                        "rating": round(float(rng.uniform(1, 5)), 2), "position": i % 20,
                        "note": "n" * 40}, separators=(",", ":")).encode()
            for i in range(start, start + n)]


def producer(bootstrap: str):
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                     "queue.buffering.max.messages": 1_000_000})


def consume(bootstrap: str, topic: str) -> list[tuple[int, dict]]:
    """(timestamp ms, event) of every committed output record."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{topic}",
                  "isolation.level": "read_committed", "enable.partition.eof": True,
                  "enable.auto.commit": False})
    out = []
    for p in range(2):
        c.assign([TopicPartition(topic, p, -2)])
        while True:
            m = c.poll(10.0)
            if m is None or (m.error() and m.error().code() == -191):
                break
            if m.error():
                raise RuntimeError(str(m.error()))
            out.append((m.timestamp()[1], json.loads(m.value())))
    c.close()
    return out


class Watcher:
    """A read_committed consumer of the output topic on a thread of its own
    while the latency phase runs: when each record became visible
    downstream. It keeps the raw values (parsed afterwards, so that it holds
    the GIL as little as it can beside the paced producer)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.seen: list[tuple[float, bytes]] = []  # (received, ms since the epoch; value)
        self.stop = threading.Event()
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-watch-{topic}",
                           "isolation.level": "read_committed", "enable.auto.commit": False,
                           "fetch.wait.max.ms": 10})
        self.c.assign([TopicPartition(topic, p, -2) for p in range(2)])
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self) -> None:
        while not self.stop.is_set():
            ms = self.c.consume(10000, 0.05)
            now = time.time() * 1000
            self.seen.extend((now, m.value()) for m in ms if not m.error())

    def close(self, n: int, timeout: float = 60.0) -> list[tuple[float, dict]]:
        deadline = time.monotonic() + timeout
        while len(self.seen) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        self.stop.set()
        self.t.join()
        self.c.close()
        return [(t, json.loads(v)) for t, v in self.seen]


def start_child(system: str, variant: str, broker: Broker, src: str, dst: str, work: Path,
                control: Path, total: int = 0):
    script = PROTIUM if system == "protium" else SPARK
    args = [sys.executable, "-c", script, broker.bootstrap, src, dst, str(work / f"ck-{dst}"),
            str(control), variant, str(total)]
    if system == "pyspark":
        args.append(str(SPARK_JARS / "libs"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(work), str(ROOT / "python")]),
               PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_count(p, control: Path, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    count = Path(str(control) + ".count")
    while True:
        if p.poll() is not None:
            raise RuntimeError(p.communicate()[1][-3000:])
        if count.exists() and int(count.read_text() or 0) >= n:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n} events not processed within {timeout} s")
        time.sleep(0.05)


def finish(p, control: Path, n: int) -> None:
    Path(str(control) + ".stop").write_text(str(n))
    out, err = p.communicate(timeout=300)
    if p.returncode != 0:
        raise RuntimeError(err[-3000:])


SAMPLE_EVERY = 997  # the events whose output records are compared


def throughput(system: str, variant: str, broker: Broker, work: Path) -> dict:
    """events/s, CPU µs per event of the system's processes (the query
    process and all under it, from a tenth of the events done to all
    done: start-up left out), and the output: its count and the sampled
    records."""
    import numpy as np

    tag = f"{system}-{variant}"
    src, dst = broker.topic(f"tp-in-{tag}"), broker.topic(f"tp-out-{tag}")
    pr = producer(broker.bootstrap)
    rng = np.random.default_rng(1)
    for start in range(0, EVENTS, 10_000):
        for v in event_values(start, min(10_000, EVENTS - start), rng):
            pr.produce(src, v)
            pr.poll(0)
    pr.flush(120)
    control = work / f"tp-{tag}"
    p = start_child(system, variant, broker, src, dst, work, control, EVENTS)
    wait_count(p, control, EVENTS, 1800)
    finish(p, control, EVENTS)
    # from the first batch's end to the last's; from the query's start when
    # the first batch took most of the events
    marks = json.loads(Path(str(control) + ".cpu").read_text())
    (n0, c0), (n1, c1) = (marks[1], marks[2]) if len(marks) == 3 and \
        marks[1][0] <= EVENTS // 2 else (marks[0], marks[-1])
    recs = consume(broker.bootstrap, dst)
    ids = sorted(e["event_id"] for _, e in recs)
    if ids != list(range(EVENTS)):
        raise RuntimeError(f"{tag}: {len(ids)} records came out for {EVENTS} events "
                           f"({len(set(ids))} distinct)")
    ts = sorted(t for t, _ in recs)
    skip = len(ts) // 10
    span = (ts[-1] - ts[skip]) / 1000.0
    sample = {e["event_id"]: {k: v for k, v in e.items() if k != "ts_ms"}
              for _, e in recs if e["event_id"] % SAMPLE_EVERY == 0}
    return {"events_per_s": (len(ts) - skip) / max(span, 1e-3),
            "cpu_us_per_event": (c1 - c0) * 1e6 / max(n1 - n0, 1), "count": len(ids),
            "sample": sample}


def same_records(a: dict, b: dict) -> bool:
    """Sampled records equal: the same keys and values, floats to the last
    digit either engine's float printing keeps."""
    import math

    if a.keys() != b.keys():
        return False
    for k in a:
        ra, rb = a[k], b[k]
        if ra.keys() != rb.keys():
            return False
        for f in ra:
            x, y = ra[f], rb[f]
            if isinstance(x, float) or isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-15, abs_tol=0.0):
                    return False
            elif x != y:
                return False
    return True


def latency(system: str, variant: str, broker: Broker, work: Path, rate: float) -> dict:
    import numpy as np

    tag = f"{system}-{variant}"
    src, dst = broker.topic(f"lat-in-{tag}"), broker.topic(f"lat-out-{tag}")
    control = work / f"lat-{tag}"
    watcher = Watcher(broker.bootstrap, dst)
    p = start_child(system, variant, broker, src, dst, work, control)
    pr = producer(broker.bootstrap)
    rng = np.random.default_rng(2)
    warm = 1000
    for v in event_values(0, warm, rng):
        pr.produce(src, v)
    pr.flush(60)
    wait_count(p, control, warm, 600)  # started, warm
    n, t0 = warm, time.monotonic()
    tick = 0.01
    while time.monotonic() - t0 < SECONDS:
        due = int((time.monotonic() - t0) * rate) + warm
        if due > n:
            for v in event_values(n, due - n, rng):
                pr.produce(src, v)
            pr.poll(0)
            n = due
        time.sleep(tick)
    pr.flush(60)
    wait_count(p, control, n, 600)
    finish(p, control, n)
    seen = watcher.close(n)
    recs = consume(broker.bootstrap, dst)
    first = min(e["ts_ms"] for _, e in recs if e["event_id"] >= warm) + 1000

    def since(pairs):
        return np.array([t - e["ts_ms"] for t, e in pairs
                         if e["event_id"] >= warm and e["ts_ms"] >= first], dtype=np.float64)

    lat, vis = since(recs), since(seen)
    return {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "visible_p50": float(np.percentile(vis, 50)),
            "visible_p99": float(np.percentile(vis, 99)), "events": n - warm}


def main() -> None:
    from benchlib import run_peer  # noqa: F401 - the shared conventions

    work = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    (work / "stream_bench_model.py").write_text(ENRICH)
    have_spark = (SPARK_JARS / "complete").exists()
    if not have_spark and "PT_BENCH_SPARK_KAFKA_DIR" not in os.environ:
        r = subprocess.run([str(ROOT / "scripts/fetch-kafka"), "--spark", SPARK_VERSION],
                           stdout=sys.stderr, stderr=sys.stderr)
        have_spark = r.returncode == 0
    broker = Broker(work)
    metrics: dict[str, float] = {}
    runs: dict[tuple[str, str], dict] = {}  # (system, variant) -> throughput()
    variants = ["value", "json"]
    try:
        systems = ["protium"] + (["pyspark"] if have_spark else [])
        for variant in variants:
            for system in systems:
                try:
                    runs[system, variant] = throughput(system, variant, broker, work)
                except Exception as e:  # noqa: BLE001 - a peer that fails is left out
                    if system == "protium":
                        raise
                    print(f"{system} ({variant}): failed; left out: {e}", file=sys.stderr)
        # every output the same: the same events, the same model
        first = next(iter(runs))
        for key, r in runs.items():
            if not same_records(r["sample"], runs[first]["sample"]):
                raise RuntimeError(f"the records of {key} differ from those of {first}")
        for variant in variants:
            suffix = "" if variant == "json" else "." + variant
            done = [s for s in systems if (s, variant) in runs]
            rate = min(runs[s, variant]["events_per_s"] for s in done) / 2
            for system in done:
                r = runs[system, variant]
                lat = latency(system, variant, broker, work, rate)
                metrics[f"{system}.events_per_s{suffix}"] = round(r["events_per_s"], 1)
                metrics[f"{system}.cpu_us_per_event{suffix}"] = round(r["cpu_us_per_event"], 1)
                metrics[f"{system}.latency_p50_ms{suffix}"] = lat["p50"]
                metrics[f"{system}.latency_p99_ms{suffix}"] = lat["p99"]
                metrics[f"{system}.visible_p50_ms{suffix}"] = lat["visible_p50"]
                metrics[f"{system}.visible_p99_ms{suffix}"] = lat["visible_p99"]
            metrics[f"rate.latency_events_per_s{suffix}"] = round(rate, 1)
            if "pyspark" in done:
                metrics[f"ratio.events_per_s{suffix}.pyspark"] = round(
                    metrics[f"protium.events_per_s{suffix}"] /
                    metrics[f"pyspark.events_per_s{suffix}"], 2)
                metrics[f"ratio.latency_p50{suffix}.pyspark"] = round(
                    metrics[f"pyspark.latency_p50_ms{suffix}"] /
                    max(metrics[f"protium.latency_p50_ms{suffix}"], 1.0), 2)
                metrics[f"ratio.visible_p50{suffix}.pyspark"] = round(
                    metrics[f"pyspark.visible_p50_ms{suffix}"] /
                    max(metrics[f"protium.visible_p50_ms{suffix}"], 1.0), 2)
        metrics["records_compared"] = len(runs[first]["sample"]) * len(runs)
    finally:
        broker.stop()
    print(f"{'':20} {'events/s':>10} {'CPU us/ev':>10} {'p50 ms':>9} {'p99 ms':>9} "
          f"{'visible p50':>12} {'visible p99':>12}")
    for variant in variants:
        suffix = "" if variant == "json" else "." + variant
        for system in systems:
            if f"{system}.events_per_s{suffix}" not in metrics:
                continue
            m = {k: metrics[f"{system}.{k}{suffix}"] for k in
                 ("events_per_s", "cpu_us_per_event", "latency_p50_ms", "latency_p99_ms",
                  "visible_p50_ms", "visible_p99_ms")}
            print(f"{system + ' (' + variant + ')':20} {m['events_per_s']:>10.0f} "
                  f"{m['cpu_us_per_event']:>10.1f} {m['latency_p50_ms']:>9.0f} "
                  f"{m['latency_p99_ms']:>9.0f} {m['visible_p50_ms']:>12.0f} "
                  f"{m['visible_p99_ms']:>12.0f}")
        print(f"  {variant}: latency measured at "
              f"{metrics[f'rate.latency_events_per_s{suffix}']:.0f} events/s")
    print(f"({EVENTS} events for throughput, {SECONDS:.0f} s for latency; "
          f"{metrics['records_compared']} sampled records compared equal)")
    print(json.dumps({"bench": "streaming", "metrics": metrics}))


if __name__ == "__main__":
    main()
