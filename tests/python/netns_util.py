"""Network namespaces on a bridge, for the tests that put a driver and its
executors on different addresses of one machine: the bridge lives in a
namespace of its own, so nothing of the machine's own network changes.
Needs root and a kernel that allows namespaces; otherwise the test is
skipped, loudly."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from typing import Callable, Iterator

import pytest


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def bridged_namespaces(prefix: str, address: Callable[[str, str, int], None]) -> Iterator[dict]:
    """Namespaces a, b and c, each with one veth end on a bridge; address(ns,
    dev, i) gives namespace ns (i = 1, 2, 3) its address on dev and brings
    it up. Yields the names by key ("br", "a", "b", "c"); all are deleted
    afterwards."""
    tag = f"{prefix}{os.getpid() % 100000}"
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
            address(ns, f"v{k}", i)
            ip("-n", ns, "link", "set", "lo", "up")
        yield names
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
