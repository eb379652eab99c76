"""The `parquet` benchmark's script runs and reports what bench/README.md
says it does: a tiny run (1 MiB cases, one run) of a few cases and the
selective query, with the test environment's pyarrow and DuckDB. Speeds are
not judged (timings do not belong in tests): every figure must be there and
positive, and the selective query must read exactly one row group."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

CASES = ["int64_snappy", "list_struct_none", "utf8_low_zstd"]


def test_bench_parquet_reports_every_figure(tmp_path):
    env = dict(
        os.environ,
        PT_BENCH_MIB="1",
        PT_BENCH_REPEATS="1",
        PT_BENCH_CASES=",".join(CASES + ["select"]),
        TMPDIR=str(tmp_path),
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "parquet.py")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["bench"] == "parquet"
    m = report["metrics"]
    for case in CASES:
        for system in ("protium", "pyarrow", "duckdb"):
            for t in ("1t", "2t"):
                assert m[f"{system}.read_gb_per_s.{case}_{t}"] > 0
                assert m[f"{system}.read_rows_per_s.{case}_{t}"] > 0
            assert m[f"{system}.write_gb_per_s.{case}"] > 0
            assert m[f"{system}.write_gb_per_s.{case}_2t"] > 0
        assert m[f"ratio.read.{case}_1t.pyarrow"] > 0
        assert m[f"protium.read_gb_per_s.{case}_2s"] > 0
        for t in ("1t", "2t"):
            assert m[f"protium.read_cpu_ms.{case}_{t}"] > 0
            assert m[f"pyarrow.read_cpu_ms.{case}_{t}"] > 0
            assert m[f"ratio.read_cpu.{case}_{t}.pyarrow"] > 0
        # The busiest path of a one-thread read (reader and helper apart).
        assert 0 < m[f"protium.read_crit_ms.{case}_1t"] <= m[f"protium.read_cpu_ms.{case}_1t"] + 1e-6
        assert m[f"pyarrow.read_crit_ms.{case}_1t"] > 0
        assert m[f"ratio.read_crit.{case}_1t.pyarrow"] > 0
        assert m[f"ratio.write.{case}.duckdb"] > 0
        assert m[f"ratio.write.{case}_2t.pyarrow"] > 0
        assert m[f"ratio.write_cpu.{case}.pyarrow"] > 0
    assert m["protium.select_row_groups_read"] == 1
    assert m["protium.select_ms"] > 0 and m["pyarrow.select_ms"] > 0
