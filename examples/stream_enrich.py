"""stream_enrich.py — the streaming inference story: the model trained by
examples/train_and_enrich.py enriches a live stream of click events with a
predicted label, exactly once, the model loaded once per worker and kept
across micro-batches.

    python examples/train_and_enrich.py --out DIR        # trains DIR/model.pt
    python examples/stream_enrich.py --model DIR/model.pt [--bootstrap HOST:PORT]
                                     [--seconds S] [--rate N] [--workdir DIR] [--json]

A producer thread sends click events of the training story's generator
(examples/clickstream.py: user, item, device, price, ... and whether it was
clicked) while a streaming query reads them as they arrive, runs the model
on them (map_in_pandas on the executors) and writes the enriched events out,
checkpointed. With --bootstrap the events are JSON records of a Kafka topic
and the enriched ones go to another topic through transactions (read them
with read_committed); without, they are Arrow IPC files arriving in a
directory and the sink is a directory. At the end the output is checked
against what was produced: every event exactly once, and the predicted
labels against the clicks the generator drew.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import clickstream as cs  # noqa: E402
import protium as pt  # noqa: E402

OUT_SCHEMA = cs.ENRICHED_SCHEMA


def events(start: int, n: int) -> pa.Table:
    """Events start..start+n-1 of the training story's generator: the model
    has seen their kind, not these ones (ids past the training rows)."""
    return pa.Table.from_batches([cs.events(FIRST_ID + start, n)])


# Ids far past any training run's (train_and_enrich.py numbers from 0).
FIRST_ID = 1_000_000_000


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
            rows = pd.DataFrame([json.loads(v) for v in df["value"]])  # ts: microseconds
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
    produced, per_tick = 0, max(1, args.rate // 10)
    for _ in paced_ticks(args.seconds):  # the live stream: a burst every 100 ms
        df = events(produced, per_tick).to_pandas()
        df["ts"] = df["ts"].astype("datetime64[us, UTC]").astype("int64")
        df["sent_ms"] = int(time.time() * 1000)
        for r in df.to_dict("records"):
            producer.produce(events_topic, json.dumps(r, default=int).encode())
        producer.poll(0)
        produced += per_tick
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
            latencies.append(m.timestamp()[1] - r["sent_ms"])  # produced -> enriched out
    c.close()
    out = pd.DataFrame(rows)
    return summarize(produced, out, progress, latencies, f"topic {enriched_topic}")


def run_files(args, s, enrich, work: Path) -> dict:
    """The same story over files arriving in a directory."""
    incoming, enriched = work / "incoming", work / "enriched"
    incoming.mkdir(parents=True, exist_ok=True)
    produced = [0]

    def produce() -> None:  # the live stream: a file every 100 ms
        per_file = max(1, args.rate // 10)
        for _ in paced_ticks(args.seconds):
            table = events(produced[0], per_file)
            name = f"events-{produced[0]:012d}.arrow"
            feather.write_feather(table, incoming / f".{name}", compression="uncompressed")
            os.rename(incoming / f".{name}", incoming / name)  # whole, or not at all
            produced[0] += per_file

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


def paced_ticks(seconds: float):
    """One tick every 100 ms for `seconds`: seconds * 10 ticks in all, each
    at its time or, when the machine falls behind, as soon as it can. The
    number of events is then --seconds x --rate however loaded the machine
    is; a loop that stops at a wall-clock end would send fewer."""
    start = time.monotonic()
    for k in range(max(1, round(seconds * 10))):
        wait = start + k * 0.1 - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        yield k


def wait_caught_up(q, produced: int) -> None:
    deadline = time.monotonic() + 120
    while sum(p["output_rows"] or 0 for p in q.recent_progress()) < produced:
        if time.monotonic() > deadline or not q.is_active:
            q.await_termination(0)  # raises the query's error, if any
            raise SystemExit("the stream did not catch up within 120 s")
        time.sleep(0.05)


def summarize(produced: int, out: pd.DataFrame, progress, latencies, where: str) -> dict:
    ids = np.sort(out["event_id"].to_numpy()) - FIRST_ID if len(out) else np.array([], np.int64)
    exactly_once = len(ids) == produced and bool((ids == np.arange(produced)).all())
    accuracy = float((out["predicted_label"] == out["clicked"]).mean()) if len(out) else 0.0
    clicked = float(out["clicked"].mean()) if len(out) else 0.0
    return {"events": produced, "enriched": len(out), "exactly_once": exactly_once,
            "batches": len(progress), "accuracy": round(accuracy, 3),
            "constant_accuracy": round(max(clicked, 1.0 - clicked), 3),
            "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies else None,
            "output": where}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", help="Kafka brokers (host:port); default: files")
    ap.add_argument("--model", required=True,
                    help="the model examples/train_and_enrich.py saved (DIR/model.pt of its --out)")
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="how long events arrive (longer when the machine cannot keep up)")
    ap.add_argument("--rate", type=int, default=2000,
                    help="events per second: --seconds x --rate events in all")
    ap.add_argument("--workdir", help="where the stream's directories go (default: temporary)")
    ap.add_argument("--json", action="store_true", help="print the summary as a JSON line")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="stream-enrich-"))
    work.mkdir(parents=True, exist_ok=True)
    model_path = os.path.abspath(args.model)
    if not os.path.exists(model_path):
        ap.error(f"--model {model_path} does not exist; train it first: "
                 "python examples/train_and_enrich.py --out DIR (it saves DIR/model.pt)")

    model = pt.cache(lambda: cs.load_model(model_path))  # once per worker process

    def enrich(frames):
        import torch

        m = model.get()
        for df in frames:
            x, _, _ = cs.to_arrays([cs.feature_frame(df)])
            with torch.no_grad():
                logits = m(torch.from_numpy(x)).squeeze(1).numpy()
            yield df.assign(predicted_label=(logits > 0).astype(np.int8))

    with pt.Session("local[2]") as s:
        summary = (run_kafka if args.bootstrap else run_files)(args, s, enrich, work)
    print(f"{summary['events']} events enriched in {summary['batches']} micro-batches, "
          f"exactly once: {summary['exactly_once']}; accuracy {summary['accuracy']:.3f} "
          f"(constant predictor {summary['constant_accuracy']:.3f}); "
          f"median latency {summary['latency_p50_ms']} ms")
    if args.json:
        print(json.dumps(summary))
    if not summary["exactly_once"]:
        raise SystemExit("the enriched events are not the produced ones, each once")


if __name__ == "__main__":
    main()
