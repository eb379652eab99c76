"""The `ipc` benchmark's script runs and reports what bench/README.md says it
does: a small run (1 MiB cases, one run, one round) of a few cases, with the
test environment's pyarrow. Nothing here looks at the speeds themselves
(timings do not belong in tests); it checks that every figure is there, is a
positive number, and that ratios are computed from the two sides."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

CASES = ["int64_16col_zstd", "utf8_1col_none", "float64_1col_lz4", "utf8_view_1col_lz4",
         "ree_16col_none"]


def test_bench_ipc_reports_every_figure(tmp_path):
    env = dict(
        os.environ,
        PT_BENCH_MIB="1",
        PT_BENCH_REPEATS="1",
        PT_BENCH_ROUNDS="1",
        PT_BENCH_CASES=",".join(CASES),
        TMPDIR=str(tmp_path),
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ipc.py")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    report = json.loads(last)
    assert report["bench"] == "ipc"
    m = report["metrics"]
    for case in CASES:
        for op in ("write", "write_reused", "read"):
            pt = m[f"protium.{op}_gb_per_s.{case}"]
            pa = m[f"pyarrow.{op}_gb_per_s.{case}"]
            assert pt > 0 and pa > 0
            # Both sides are rounded to 0.001: the ratio (of the unrounded
            # figures) agrees with theirs within what that rounding allows.
            slack = (0.0005 / pt + 0.0005 / pa) * (pt / pa) * 1.01 + 0.0015
            assert abs(m[f"ratio.{op}_gb_per_s.{case}"] - pt / pa) <= slack
    # Compressed cases report sizes; 16-column ones the codecs alone.
    assert m["protium.compression_ratio.int64_16col_zstd"] > 1
    assert m["protium.codec_gb_per_s.int64_16col_zstd"] > 0
    assert m["pyarrow.codec_gb_per_s.int64_16col_zstd"] > 0
    assert "protium.codec_gb_per_s.float64_1col_lz4" not in m
    # Uncompressed cases are read against the memcpy limit.
    assert m["protium.write_reused_over_memcpy.utf8_1col_none"] > 0
    for k in ("memcpy_gb_per_s", "memcpy_fresh_gb_per_s", "memcpy_fresh_huge_gb_per_s"):
        assert m[f"limit.{k}"] > 0
    assert "libzstd" in proc.stdout and "write*" in proc.stdout
