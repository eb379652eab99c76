"""Results over the network, with the Python package: the driver runs in
namespace A (10.214.0.1), its executors in B and C, each also in a mount
and UTS namespace of its own, with a tmpfs over local.dir and a host name
of its own, so that no directory is shared with the driver, as on separate
hosts. `net.results = auto` then has the driver fetch every result
partition from the executors' block servers: to_arrow of several
partitions, to_pandas, take and a partition larger than one frame are
exact; an executor killed after its result task ended, before the fetch,
costs a recomputation, not a row.

Needs root and network namespaces; skipped loudly otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT
from netns_util import bridged_namespaces, ip

BUILD = os.environ.get("PT_BUILD_DIR", str(ROOT / "build"))

DRIVER = r'''
import json, os, sys
import pyarrow as pa
import pyarrow.compute as pc
import protium as pt

script, local, mode = sys.argv[1:4]
conf = {"net.transport": "tcp", "driver.host": "10.214.0.1", "local.dir": local,
        "executor.command": script + " " + pt.Session._executor_command()}
out = {}
with pt.Session("local[2]", conf) as s:
    before = set(s.executor_pids())
    ds = s.range(300_000, partitions=6).map_in_pandas(
        lambda it: (df.assign(y=df.id * 3) for df in it), schema="id long, y long")
    t = ds.to_arrow()
    out["ids_in_order"] = t.column("id").to_pylist() == list(range(300_000))
    out["y_sum"] = pc.sum(t.column("y")).as_py()
    if mode == "all":
        out["pandas_rows"] = len(ds.to_pandas())
        out["take"] = ds.take(3)
        big = s.range(9_000_000, partitions=1).to_arrow()  # 72 MB: more than one frame
        out["big_rows"] = big.num_rows
        out["big_sum"] = pc.sum(big.column("id")).as_py()
    out["killed_and_replaced"] = not before <= set(s.executor_pids())
print(json.dumps(out))
'''


def ipv4(ns: str, dev: str, i: int) -> None:
    ip("-n", ns, "addr", "add", f"10.214.0.{i}/24", "dev", dev)
    ip("-n", ns, "link", "set", dev, "up")


@pytest.fixture
def namespaces():
    with bridged_namespaces("pr", ipv4) as names:
        yield names


def run_driver(namespaces, tmp_path, mode: str, extra_env: dict) -> dict:
    if subprocess.run(["sh", "-c", "command -v unshare"], capture_output=True).returncode != 0:
        msg = "NETWORK NAMESPACE TEST SKIPPED: needs util-linux's unshare"
        print(msg, file=sys.stderr)
        pytest.skip(msg)
    local = tmp_path / "local"
    local.mkdir()
    script = tmp_path / "executor.sh"
    # Odd executor ids in B, even ones in C; each with its own host name and
    # a tmpfs over local.dir: the driver's session directory is not there.
    script.write_text(
        "#!/bin/sh\n"
        f"if [ $((PROTIUM_EXECUTOR_ID % 2)) -eq 1 ]; then ns={namespaces['b']}; "
        f"else ns={namespaces['c']}; fi\n"
        'exec ip netns exec "$ns" unshare -m -u sh -c \'hostname "pt-node-$PROTIUM_EXECUTOR_ID" '
        '&& mount -t tmpfs none "$0" && mkdir -p "$PROTIUM_EXECUTOR_DIR" && exec "$@"\' '
        f'{local} "$@"\n')
    script.chmod(0o755)
    env = dict(os.environ, PT_BUILD_DIR=BUILD, PYTHONPATH=str(ROOT / "python"), **extra_env)
    proc = subprocess.run(
        ["ip", "netns", "exec", namespaces["a"], sys.executable, "-c", DRIVER, str(script),
         str(local), mode], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_results_cross_the_bridge_without_a_shared_directory(namespaces, tmp_path):
    out = run_driver(namespaces, tmp_path, "all", {})
    n = 300_000
    assert out["ids_in_order"] is True
    assert out["y_sum"] == 3 * n * (n - 1) // 2
    assert out["pandas_rows"] == n
    assert out["take"] == [{"id": 0, "y": 0}, {"id": 1, "y": 3}, {"id": 2, "y": 6}]
    assert out["big_rows"] == 9_000_000
    assert out["big_sum"] == 9_000_000 * (9_000_000 - 1) // 2
    assert out["killed_and_replaced"] is False


def test_executor_killed_before_its_result_is_fetched(namespaces, tmp_path):
    # The driver's fault hook kills the executor of the first result fetch
    # once its task has ended, just before the fetch.
    out = run_driver(namespaces, tmp_path, "kill",
                     {"PROTIUM_FAULT_RESULT_FETCH": "kill_executor"})
    n = 300_000
    assert out["killed_and_replaced"] is True
    assert out["ids_in_order"] is True
    assert out["y_sum"] == 3 * n * (n - 1) // 2
