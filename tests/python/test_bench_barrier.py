"""The `barrier` benchmark's script runs and reports what bench/README.md says
it does: a tiny run (20 calls per task, one job for launch and recovery) of
protium's side alone. Nothing here judges the speeds (timings do not belong
in tests); it checks that every figure is there and is a positive number."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT


def test_bench_barrier_reports_every_figure(tmp_path):
    env = dict(os.environ, PT_BENCH_ITERS="20", PT_BENCH_JOBS="1", PT_BENCH_PEERS="",
               TMPDIR=str(tmp_path))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "barrier.py")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["bench"] == "barrier"
    m = report["metrics"]
    keys = [f"protium.barrier_{q}_us.n{n}" for q in ("p50", "p99") for n in (2, 4, 8)]
    keys += ["protium.all_gather_p50_us.n8", "protium.gang_launch_ms.n8",
             "protium.recovery_ms.n8", "limit.uds_rtt_us",
             *[f"limit.star_barrier_p50_us.n{n}" for n in (2, 4, 8)],
             "protium.barrier_p50_over_uds_rtt.n2"]
    for k in keys:
        assert m[k] > 0, k
    # No peer ran: no peer figures, no ratios against one.
    assert not [k for k in m if k.startswith(("pyspark.", "gloo.", "ratio."))]
    assert "barrier_p50_us.n8" in proc.stdout  # the table
