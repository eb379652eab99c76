"""The `train_story` benchmark's script runs and reports what bench/README.md
says it does: a tiny run (20,000 events, one epoch) of protium, PySpark and
Ray, with protium's recovery run, in the benchmark environment .venv-bench
(skipped where it lacks the peers: bench/run train_story sets it up).
Nothing here judges the times (timings do not belong in tests); it checks
that every figure is there, is positive, and that ratios and overheads are
computed from the figures beside them."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import ROOT

BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"
STAGES = ("start", "generate", "train", "enrich", "total", "train_compute", "overhead")


def _has_peers() -> bool:
    if not BENCH_PY.exists():
        return False
    probe = "import pyspark, ray, torch, pydantic, ray.train.torch, pandas"
    return subprocess.run([str(BENCH_PY), "-c", probe], capture_output=True,
                          timeout=300).returncode == 0


def test_bench_train_story_reports_every_figure():
    if not _has_peers():
        pytest.skip(".venv-bench lacks pyspark, ray, torch or pydantic (bench/run train_story)")
    # TMPDIR stays: Ray keeps its sockets under it, and a pytest directory
    # makes their paths longer than a unix socket's name may be.
    env = dict(os.environ, PT_BENCH_ROWS="20000", PT_BENCH_EPOCHS="1")
    proc = subprocess.run([str(BENCH_PY), str(ROOT / "bench" / "train_story.py")], env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["bench"] == "train_story"
    m = report["metrics"]
    for engine in ("protium", "pyspark", "ray"):
        assert f"{engine}.total_s" in m, proc.stderr[-3000:]  # a peer that failed says why
        for s in STAGES:
            assert m[f"{engine}.{s}_s"] > 0, (engine, s, proc.stderr[-2000:])
        parts = sum(m[f"{engine}.{s}_s"] for s in ("start", "generate", "train", "enrich"))
        assert m[f"{engine}.total_s"] == pytest.approx(parts, abs=0.01)
        assert m[f"{engine}.overhead_s"] == pytest.approx(
            m[f"{engine}.total_s"] - m[f"{engine}.train_compute_s"], abs=0.01)
        assert 0.5 < m[f"{engine}.holdout_accuracy"] <= 1
    for peer in ("pyspark", "ray"):
        assert m[f"ratio.overhead.{peer}"] == pytest.approx(
            m[f"{peer}.overhead_s"] / m["protium.overhead_s"], rel=0.02)
        assert m[f"ratio.total.{peer}"] > 0
    assert m["protium.recovery_s"] > 0
    assert "overhead pyspark / protium" in proc.stdout  # the table
