"""The `cluster` benchmark's script runs and reports what bench/README.md
says it does, on a tiny run (200 tasks, 8 MiB shuffled, session start under
a real Slurm cluster). No timing is
judged; every figure must be there and positive, and the ratio must be the
one computed from the two figures it names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from conftest import ROOT


def test_bench_cluster_reports_every_figure(tmp_path):
    env = dict(os.environ, PT_BENCH_CLUSTER_TASKS="200", PT_BENCH_CLUSTER_MB="8", PT_BENCH_CLUSTER_JOBS="100",
               PT_BENCH_CLUSTER_BLOCKS_M="8",
               TMPDIR=str(tmp_path))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "cluster.py")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["bench"] == "cluster"
    m = report["metrics"]
    expected = {"protium.tasks_per_s.tcp", "protium.tasks_per_s.unix",
                "protium.launch_p50_us.tcp", "protium.launch_p50_us.unix",
                "protium.shuffle_gb_per_s.cross_host", "protium.shuffle_gb_per_s.local",
                "limit.tcp_gb_per_s", "ratio.shuffle_vs_tcp_limit",
                "protium.tasks_per_s.tls", "protium.shuffle_gb_per_s.tls",
                "protium.shuffle_blocks_per_s.cross_host", "protium.shuffle_blocks_per_s.tls",
                "protium.results_gb_per_s.local", "protium.results_gb_per_s.cross_host",
                "protium.results_gb_per_s.tls",
                "protium.collect_small_p50_us.tcp", "protium.collect_small_cpu_us.tcp",
                "protium.block_fetch_gb_per_s.tcp", "protium.block_fetch_gb_per_s.tls",
                "protium.block_fetch_cpu_s_per_gb.tcp", "protium.block_fetch_cpu_s_per_gb.tls"}
    if os.geteuid() == 0 and shutil.which("slurmctld"):
        # the test Slurm cluster starts where root and Slurm are there (CI)
        expected.add("protium.session_start_ms.slurm")
    assert set(m) == expected, sorted(set(m) ^ expected)
    for k, v in m.items():
        assert v > 0, k
    assert m["ratio.shuffle_vs_tcp_limit"] == round(
        m["limit.tcp_gb_per_s"] / m["protium.shuffle_gb_per_s.cross_host"], 3)
