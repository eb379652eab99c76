"""test_stream_example.py — the streaming inference story,
examples/stream_enrich.py, run at small size as a user would, over a live
Kafka topic (the session's real broker) and over arriving files: events
arrive while the query runs, a PyTorch model (trained by the example)
labels them on the executors, and the output holds every event exactly
once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kafka_fixture import kafka_broker  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]


def run_example(tmp_path: Path, *extra: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "stream_enrich.py"),
                        "--seconds", "1.5", "--rate", "1000", "--workdir", str(tmp_path),
                        "--json", *extra], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_stream_enrich_story_over_kafka(tmp_path, kafka_broker):
    summary = run_example(tmp_path, "--bootstrap", kafka_broker.bootstrap)
    assert summary["exactly_once"] is True  # read back with read_committed
    assert summary["events"] == summary["enriched"] >= 1000
    assert summary["accuracy"] > 0.7
    assert summary["latency_p50_ms"] > 0
    assert summary["output"].startswith("topic enriched-")


def test_stream_enrich_story_over_files(tmp_path):
    summary = run_example(tmp_path)
    assert summary["exactly_once"] is True
    assert summary["events"] == summary["enriched"] >= 1000
    assert summary["batches"] >= 2  # events kept arriving while it ran
    assert summary["accuracy"] > 0.7  # the labels come from the trained model
    assert summary["latency_p50_ms"] > 0
    assert (tmp_path / "model.pt").exists()
