"""The `scale` benchmark's script runs and reports what bench/README.md says
it does: a tiny run (tasks 100/200/300 in place of 1k/10k/100k, a 20 x 20
shuffle, peers left out: Spark and Ray live in .venv-bench, not in the test
environment). No timing is judged; every figure must be there and positive,
and the growth figure must be computed from the two sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT


def test_bench_scale_reports_every_figure(tmp_path):
    env = dict(
        os.environ,
        PT_BENCH_SCALE_SIZES="100,200,300",
        PT_BENCH_SCALE_SHUFFLE="20",
        PT_BENCH_SCALE_PEERS="0",
        TMPDIR=str(tmp_path),
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["bench"] == "scale"
    m = report["metrics"]
    expected = {"protium.driver_cost_growth", "protium.idle_executor_rss_mb",
                "protium.shuffle_s.20x20", "protium.shuffle_driver_peak_rss_mb.20x20",
                "protium.shuffle_mb.20x20"}
    for size in ("1k", "10k", "100k"):
        expected |= {f"protium.driver_us_per_task.{size}", f"protium.wall_us_per_task.{size}",
                     f"protium.driver_peak_rss_mb.{size}"}
    assert set(m) == expected, sorted(set(m) ^ expected)
    for k, v in m.items():
        assert isinstance(v, (int, float)) and v > 0, (k, v)
    growth = m["protium.driver_us_per_task.100k"] / m["protium.driver_us_per_task.1k"]
    assert abs(m["protium.driver_cost_growth"] - growth) <= 0.001 + growth * 0.01
    assert "shuffle 20x20: 400 blocks, 20000 rows" in proc.stdout
