"""stream_enrich.py — the streaming inference story: a trained model
enriches a live stream of events with a predicted label, exactly once, the
model loaded once per worker and kept across micro-batches.

    python examples/stream_enrich.py [--bootstrap HOST:PORT] [--model PATH]
                                     [--seconds S] [--rate N] [--workdir DIR] [--json]

A producer thread sends events (about 200 bytes each: ids, a timestamp, a
few numeric and string fields) while a streaming query reads them as they
arrive, runs the model on them (map_in_pandas on the executors) and writes
the enriched events out, checkpointed. With --bootstrap the events are JSON
records of a Kafka topic and the enriched ones go to another topic through
transactions (read them with read_committed); without, they are Arrow IPC
files arriving in a directory and the sink is a directory. --model is a
PyTorch state dict of the MLP below (make_model); without it, a tiny one is
trained here first on events of the same generator. At the end the output
is checked against what was produced: every event exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

import protium as pt

SCHEMA = pa.schema([
    ("event_id", pa.int64()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("user_id", pa.int64()),
    ("country", pa.string()),
    ("device", pa.string()),
    ("price", pa.float64()),
    ("rating", pa.float64()),
    ("position", pa.int32()),
    ("note", pa.string()),
    ("clicked", pa.int8()),
])
OUT_SCHEMA = pa.schema(list(SCHEMA) + [pa.field("predicted_label", pa.int8())])
COUNTRIES = ["US", "DE", "FR", "BR", "IN", "JP"]
DEVICES = ["mobile", "desktop", "tablet"]


def events(start: int, n: int, rng: np.random.Generator) -> pa.Table:
    """Events start..start+n-1; `clicked` follows a fixed rule plus noise."""
    price = rng.gamma(2.0, 30.0, n)
    rating = rng.uniform(1.0, 5.0, n)
    position = rng.integers(1, 20, n).astype(np.int32)
    device = rng.integers(0, len(DEVICES), n)
    logit = 1.5 * (rating - 3.0) - 0.02 * (price - 60.0) - 0.15 * (position - 10) + 0.8 * (device == 0)
    clicked = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)
    return pa.table({
        "event_id": np.arange(start, start + n, dtype=np.int64),
        "ts": pa.array([time.time_ns() // 1000] * n, pa.timestamp("us", tz="UTC")),
        "user_id": rng.integers(0, 100_000, n),
        "country": [COUNTRIES[i] for i in rng.integers(0, len(COUNTRIES), n)],
        "device": [DEVICES[i] for i in device],
        "price": price, "rating": rating, "position": position,
        "note": ["x" * 100] * n,
        "clicked": clicked,
    }, schema=SCHEMA)


def features(df: pd.DataFrame) -> np.ndarray:
    return np.stack([df.price / 100.0, df.rating / 5.0, df.position / 20.0,
                     (df.device == "mobile").astype(float)], axis=1).astype(np.float32)


def make_model():
    import torch

    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))


def train_tiny_model(path: str) -> None:
    """A few hundred steps of Adam on generated events: enough to beat
    guessing, and a real model file to serve."""
    import torch

    torch.manual_seed(0)
    df = events(0, 20_000, np.random.default_rng(1)).to_pandas()
    x = torch.from_numpy(features(df))
    y = torch.from_numpy(df.clicked.to_numpy().astype(np.float32)).unsqueeze(1)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), path)


def load_model(path: str):
    import torch

    torch.set_num_threads(1)
    model = make_model()
    model.load_state_dict(torch.load(path))
    model.eval()
    return model


def run_kafka(args, s, enrich, work: Path) -> dict:
    """The Kafka story: JSON events in one topic, enriched ones in another."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    suffix = f"{os.getpid()}-{int(time.time())}"
    events_topic, enriched_topic = f"events-{suffix}", f"enriched-{suffix}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    for f in admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1)
                                  for t in (events_topic, enriched_topic)]).values():
        f.result(timeout=60)

    def enrich_json(frames):
        for df in frames:
            rows = pd.DataFrame([json.loads(v) for v in df["value"]])
            rows["price"] = rows["price"].astype(float)
            out = next(enrich(iter([rows])))
            values = [json.dumps(r, separators=(",", ":"), default=int).encode()
                      for r in out.to_dict("records")]
            yield pd.DataFrame({"value": values, "partition": df["partition"]})

    q = (s.read_stream.kafka(bootstrap=args.bootstrap, topic=events_topic,
                             starting_offsets="earliest", max_offsets_per_trigger=100_000)
           .map_in_pandas(enrich_json, schema="value binary, partition int")
           .write_stream.kafka(topic=enriched_topic, bootstrap=args.bootstrap)
           .trigger(interval="200ms")
           .checkpoint(work / "checkpoint").start())
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5})
    rng = np.random.default_rng(2)
    produced, per_tick = 0, max(1, args.rate // 10)
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:  # the live stream: a burst every 100 ms
        df = events(produced, per_tick, rng).to_pandas()
        df["ts_ms"] = int(time.time() * 1000)
        for r in df.drop(columns=["ts"]).to_dict("records"):
            producer.produce(events_topic, json.dumps(r, default=int).encode())
        producer.poll(0)
        produced += per_tick
        time.sleep(0.1)
    producer.flush(60)
    wait_caught_up(q, produced)
    progress = q.recent_progress()
    q.stop()
    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": f"check-{suffix}",
                  "isolation.level": "read_committed", "enable.partition.eof": True,
                  "enable.auto.commit": False})
    rows, latencies = [], []
    for p in range(2):
        c.assign([TopicPartition(enriched_topic, p, -2)])
        while True:
            m = c.poll(5.0)
            if m is None or (m.error() and m.error().code() == -191):  # end of partition
                break
            r = json.loads(m.value())
            rows.append(r)
            latencies.append(m.timestamp()[1] - r["ts_ms"])  # produced -> enriched out
    c.close()
    out = pd.DataFrame(rows)
    return summarize(produced, out, progress, latencies, f"topic {enriched_topic}")


def run_files(args, s, enrich, work: Path) -> dict:
    """The same story over files arriving in a directory."""
    incoming, enriched = work / "incoming", work / "enriched"
    incoming.mkdir(parents=True, exist_ok=True)
    produced = [0]

    def produce() -> None:  # the live stream: a file every 100 ms
        rng = np.random.default_rng(2)
        per_file = max(1, args.rate // 10)
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            table = events(produced[0], per_file, rng)
            name = f"events-{produced[0]:012d}.arrow"
            feather.write_feather(table, incoming / f".{name}", compression="uncompressed")
            os.rename(incoming / f".{name}", incoming / name)  # whole, or not at all
            produced[0] += per_file
            time.sleep(0.1)

    q = (s.read_stream.files(incoming)
           .map_in_pandas(enrich, schema=OUT_SCHEMA)
           .write_stream.ipc(enriched)
           .trigger(interval="200ms")
           .checkpoint(work / "checkpoint").start())
    producer = threading.Thread(target=produce)
    producer.start()
    producer.join()
    wait_caught_up(q, produced[0])
    progress = q.recent_progress()
    q.stop()
    out = pa.concat_tables(feather.read_table(p) for p in sorted(enriched.glob("part-*.arrow")))
    latencies = [p["latency_ms"] for p in progress if p["latency_ms"] is not None]
    return summarize(produced[0], out.to_pandas(), progress, latencies, str(enriched))


def wait_caught_up(q, produced: int) -> None:
    deadline = time.monotonic() + 120
    while sum(p["output_rows"] or 0 for p in q.recent_progress()) < produced:
        if time.monotonic() > deadline or not q.is_active:
            q.await_termination(0)  # raises the query's error, if any
            raise SystemExit("the stream did not catch up within 120 s")
        time.sleep(0.05)


def summarize(produced: int, out: pd.DataFrame, progress, latencies, where: str) -> dict:
    ids = np.sort(out["event_id"].to_numpy()) if len(out) else np.array([], np.int64)
    exactly_once = len(ids) == produced and bool((ids == np.arange(produced)).all())
    accuracy = float((out["predicted_label"] == out["clicked"]).mean()) if len(out) else 0.0
    return {"events": produced, "enriched": len(out), "exactly_once": exactly_once,
            "batches": len(progress), "accuracy": round(accuracy, 3),
            "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies else None,
            "output": where}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", help="Kafka brokers (host:port); default: files")
    ap.add_argument("--model", help="a state dict of make_model(); default: train one")
    ap.add_argument("--seconds", type=float, default=3.0, help="how long events arrive")
    ap.add_argument("--rate", type=int, default=2000, help="events per second")
    ap.add_argument("--workdir", help="where the stream's directories go (default: temporary)")
    ap.add_argument("--json", action="store_true", help="print the summary as a JSON line")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="stream-enrich-"))
    work.mkdir(parents=True, exist_ok=True)
    model_path = args.model
    if not model_path:
        model_path = str(work / "model.pt")
        train_tiny_model(model_path)

    model = pt.cache(lambda: load_model(model_path))  # once per worker process

    def enrich(frames):
        import torch

        m = model.get()
        for df in frames:
            with torch.no_grad():
                logits = m(torch.from_numpy(features(df))).squeeze(1).numpy()
            yield df.assign(predicted_label=(logits > 0).astype(np.int8))

    with pt.Session("local[2]") as s:
        summary = (run_kafka if args.bootstrap else run_files)(args, s, enrich, work)
    print(f"{summary['events']} events enriched in {summary['batches']} micro-batches, "
          f"exactly once: {summary['exactly_once']}; accuracy {summary['accuracy']:.3f}; "
          f"median latency {summary['latency_p50_ms']} ms")
    if args.json:
        print(json.dumps(summary))
    if not summary["exactly_once"]:
        raise SystemExit("the enriched events are not the produced ones, each once")


if __name__ == "__main__":
    main()
