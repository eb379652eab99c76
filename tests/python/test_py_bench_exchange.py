"""The `exchange` benchmark's script runs and reports every figure of
protium's side (tiny sizes, peers left out: PySpark and Ray live in
.venv-bench, not in the test environment). No timing is judged: each figure
must be there and positive, shares within (0, 1]."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT


def test_bench_exchange_reports_every_figure(tmp_path):
    env = dict(os.environ, PT_BENCH_EXCHANGE_ROWS="20000,40000", PT_BENCH_EXCHANGE_PEERS="0",
               PT_BENCH_REPEATS="1", PT_BENCH_EXCHANGE_BATCH="8192", TMPDIR=str(tmp_path))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "exchange.py")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["bench"] == "exchange"
    m = report["metrics"]
    expected = {"limit.memcpy_gb_per_s", "ratio.c_over_memcpy.16m",
                "protium.overhead_share.pandas.16m",
                "protium.overhead_share.arrow.16m",
                "protium.copy_share.pandas.16m",
                "protium.copy_share.arrow.16m",
                "protium.outside_fn_share.pandas.16m",
                "protium.outside_fn_share.arrow.16m"}
    expected |= {f"protium.rows_per_s.{p}.{s}" for p in ("rows", "series", "pandas", "arrow", "c")
                 for s in ("2m", "16m")}
    assert set(m) == expected, sorted(set(m) ^ expected)
    for k, v in m.items():
        assert isinstance(v, (int, float)) and v > 0, (k, v)
        if "share" in k:
            assert v <= 1, (k, v)
