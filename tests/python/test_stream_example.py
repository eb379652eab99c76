"""test_stream_example.py — the streaming inference story,
examples/stream_enrich.py, run at small size as a user would, over a live
Kafka topic (the session's real broker) and over arriving files: events
arrive while the query runs, the PyTorch model that
examples/train_and_enrich.py trained and saved (run first, small) labels
them on the executors, and the output holds every event exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "python"))

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The training story, small: its saved model is what the stream serves."""
    out = tmp_path_factory.mktemp("trained") / "out"
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "train_and_enrich.py"),
                        "--rows", "40000", "--epochs", "2", "--batch-size", "256",
                        "--out", str(out), "--json"], env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    trained = json.loads(r.stdout.strip().splitlines()[-1])
    assert trained["holdout_accuracy"] > trained["constant_accuracy"]
    return out / "model.pt"


# The producer sends SECONDS x RATE events, in bursts every 100 ms that come
# later, never fewer, when the machine is loaded.
SECONDS, RATE = 1.5, 1000
EVENTS = int(SECONDS * RATE)


def run_example(tmp_path: Path, model: Path, *extra: str) -> dict:
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "stream_enrich.py"),
                        "--model", str(model), "--seconds", str(SECONDS), "--rate", str(RATE),
                        "--workdir", str(tmp_path), "--json", *extra], cwd=tmp_path, env=ENV,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_stream_enrich_story_over_kafka(tmp_path, kafka_broker, model):
    summary = run_example(tmp_path, model, "--bootstrap", kafka_broker.bootstrap)
    assert summary["exactly_once"] is True  # read back with read_committed
    assert summary["events"] == summary["enriched"] == EVENTS
    # the labels come from the trained model: better than always guessing the majority
    assert summary["accuracy"] > summary["constant_accuracy"]
    assert summary["latency_p50_ms"] > 0
    assert summary["output"].startswith("topic enriched-")


def test_stream_enrich_story_over_files(tmp_path, model):
    summary = run_example(tmp_path, model)
    assert summary["exactly_once"] is True
    assert summary["events"] == summary["enriched"] == EVENTS
    assert summary["batches"] >= 2  # events kept arriving while it ran
    assert summary["accuracy"] > summary["constant_accuracy"]
    assert summary["latency_p50_ms"] > 0


def test_stream_enrich_asks_for_the_trained_model(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "stream_enrich.py"),
                        "--model", str(tmp_path / "none.pt")], env=ENV, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0
    assert "train_and_enrich.py" in r.stderr
