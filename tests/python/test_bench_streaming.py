"""The `streaming` benchmark runs and reports every key its docstring and
bench/README.md list: a tiny run (2,000 events for throughput, 3 s of paced
events for latency) of both pipelines, protium's streaming query and PySpark
Structured Streaming, in .venv-bench (where PySpark lives), each in its two
variants (values parsed in Python; the engines' JSON decoding and encoding),
whose outputs the bench compares. No timing is judged: every figure must be
there and positive. Skipped when .venv-bench
lacks pyspark or confluent-kafka (bench/run installs them)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import ROOT

BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"


def _has(module: str) -> bool:
    if not BENCH_PY.exists():
        return False
    return subprocess.run([str(BENCH_PY), "-c", f"import {module}"],
                          capture_output=True).returncode == 0


def test_bench_streaming_reports_every_key(tmp_path):
    if not (_has("pyspark") and _has("confluent_kafka")):
        pytest.skip(".venv-bench lacks pyspark or confluent-kafka (bench/run installs them)")
    env = dict(os.environ, PT_BENCH_EVENTS="2000", PT_BENCH_SECONDS="3", TMPDIR=str(tmp_path))
    proc = subprocess.run([str(BENCH_PY), str(ROOT / "bench" / "streaming.py")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["bench"] == "streaming"
    m = report["metrics"]
    for key in ("protium.events_per_s", "protium.latency_p50_ms", "protium.latency_p99_ms",
                "pyspark.events_per_s", "pyspark.latency_p50_ms", "pyspark.latency_p99_ms",
                "ratio.events_per_s.pyspark", "ratio.latency_p50.pyspark",
                "protium.visible_p50_ms", "protium.visible_p99_ms", "pyspark.visible_p50_ms",
                "pyspark.visible_p99_ms", "ratio.visible_p50.pyspark",
                # the same work with JSON parsed and printed by the Python function
                "protium.events_per_s.value", "protium.latency_p50_ms.value",
                "protium.latency_p99_ms.value", "pyspark.events_per_s.value",
                "pyspark.latency_p50_ms.value", "pyspark.latency_p99_ms.value",
                "ratio.events_per_s.value.pyspark", "ratio.latency_p50.value.pyspark",
                "protium.cpu_us_per_event", "protium.cpu_us_per_event.value",
                "pyspark.cpu_us_per_event", "pyspark.cpu_us_per_event.value",
                "records_compared"):
        assert m.get(key, 0) > 0, (key, proc.stderr[-3000:])
