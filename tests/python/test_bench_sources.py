"""The `sources` benchmark's script runs and reports what bench/README.md
says it does: a tiny run (20,000 rows, a 1 MiB CSV, a 20,000-row Delta
table, one run each, PySpark left out to keep it quick) against a
PostgreSQL server of its own, or in a database of its own on the test
session's shared server (PT_TEST_PG_URL, passed as PT_BENCH_PG_URL). Speeds are
not judged (timings do not belong in tests): every figure must be there and
positive, ratios included."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from sql_require import require_module, require_pg


def test_bench_sources_reports_every_figure(tmp_path):
    require_pg()
    require_module("adbc_driver_postgresql", "adbc-driver-postgresql")
    env = dict(os.environ, PT_BENCH_ROWS="20000", PT_BENCH_WRITE_ROWS="5000",
               PT_BENCH_CSV_MIB="1", PT_BENCH_DELTA_ROWS="20000", PT_BENCH_REPEATS="1",
               PT_BENCH_PARTITIONS="1,2",
               PT_BENCH_SPARK="0", TMPDIR=str(tmp_path))
    if os.environ.get("PT_TEST_PG_URL"):
        env["PT_BENCH_PG_URL"] = os.environ["PT_TEST_PG_URL"]
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "sources.py")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["bench"] == "sources"
    m = report["metrics"]
    for case in ("pg_p1", "pg_p2", "csv"):
        assert m[f"protium.read_rows_per_s.{case}"] > 0
    assert m["protium.write_rows_per_s.pg_write"] > 0
    for case in ("pg_p1", "pg_p2"):  # the ADBC driver is in the test environment too
        assert m[f"protium_adbc.read_rows_per_s.{case}"] > 0
        assert m[f"ratio.read.{case}.adbc"] > 0
    assert m["pyarrow.read_rows_per_s.csv"] > 0
    assert m["duckdb.read_rows_per_s.csv"] > 0
    assert m["ratio.read.csv.pyarrow"] > 0
    assert m["ratio.read.csv.duckdb"] > 0
    assert m["protium.read_rows_per_s.delta"] > 0
    assert m["deltalake.read_rows_per_s.delta"] > 0
    assert m["ratio.read.delta.deltalake"] > 0
    assert not any(k.startswith("pyspark.") for k in m)
