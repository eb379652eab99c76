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
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

BUILD = os.environ.get("PT_BUILD_DIR", str(ROOT / "build"))
BENCH = os.path.join(BUILD, "bench", "cluster_bench")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def namespaces():
    tag = f"pt{os.getpid() % 100000}"
    names = {k: f"{tag}-{k}" for k in ("br", "a", "b", "c")}
    if os.geteuid() != 0 or shutil.which("ip") is None:
        msg = "NETWORK NAMESPACE TEST SKIPPED: needs root and iproute2's ip"
        print(msg, file=sys.stderr)
        pytest.skip(msg)
    try:
        ip("netns", "add", names["br"])
    except subprocess.CalledProcessError as e:
        msg = f"NETWORK NAMESPACE TEST SKIPPED: the kernel refused a namespace: {e.stderr}"
        print(msg, file=sys.stderr)
        pytest.skip(msg)
    made = [names["br"]]
    try:
        br = names["br"]
        ip("-n", br, "link", "add", "br0", "type", "bridge")
        ip("-n", br, "link", "set", "br0", "up")
        for i, k in enumerate(("a", "b", "c"), start=1):
            ns = names[k]
            ip("netns", "add", ns)
            made.append(ns)
            ip("-n", br, "link", "add", f"v{k}", "type", "veth", "peer", "name", f"v{k}-br")
            ip("-n", br, "link", "set", f"v{k}", "netns", ns)
            ip("-n", br, "link", "set", f"v{k}-br", "master", "br0")
            ip("-n", br, "link", "set", f"v{k}-br", "up")
            ip("-n", ns, "addr", "add", f"10.213.0.{i}/24", "dev", f"v{k}")
            ip("-n", ns, "link", "set", f"v{k}", "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield names
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


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
