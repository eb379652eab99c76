"""Executors on other hosts, as far as one machine allows: network
namespaces on a bridge (itself in a namespace of its own, so nothing of
the machine's own network changes). The driver runs in namespace A and
listens on 10.213.0.1; executors start in B (10.213.0.2) and C (10.213.0.3)
through executor.command (`ip netns exec`), connect over TCP, authenticate,
and fetch each other's shuffle blocks from their block servers across the
bridge. A shuffle's result is exact, an executor is killed, its replacement
starts in its namespace again, and the next shuffle is exact too.

Needs root and a kernel that allows network namespaces; where they are
refused the test is skipped, loudly."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import ROOT
from netns_util import bridged_namespaces, ip

BUILD = os.environ.get("PT_BUILD_DIR", str(ROOT / "build"))
BENCH = os.path.join(BUILD, "bench", "cluster_bench")


def ipv4(ns: str, dev: str, i: int) -> None:
    ip("-n", ns, "addr", "add", f"10.213.0.{i}/24", "dev", dev)
    ip("-n", ns, "link", "set", dev, "up")


@pytest.fixture
def namespaces():
    with bridged_namespaces("pt", ipv4) as names:
        yield names


def test_executors_in_other_namespaces_shuffle_across_the_bridge(namespaces, tmp_path):
    script = tmp_path / "executor.sh"
    script.write_text(
        "#!/bin/sh\n"
        "# odd executor ids in B, even ones in C\n"
        f"if [ $((PROTIUM_EXECUTOR_ID % 2)) -eq 1 ]; then ns={namespaces['b']}; "
        f"else ns={namespaces['c']}; fi\n"
        f'exec ip netns exec "$ns" {BENCH}\n')
    script.chmod(0o755)
    env = dict(os.environ, PT_BENCH_DRIVER_HOST="10.213.0.1",
               PT_BENCH_EXECUTOR_COMMAND=str(script), TMPDIR=str(tmp_path))
    proc = subprocess.run(["ip", "netns", "exec", namespaces["a"], BENCH, "check", "tcp"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["exact"] is True
    assert report["rows"] == 500000
    # The executors ran in B and C, not in the driver's namespace.
    ex = report["executor_netns"]
    assert report["driver_netns"].startswith("net:[")
    assert ex[0] != ex[1] and report["driver_netns"] not in ex, report
    assert "refused a connection" not in proc.stderr
