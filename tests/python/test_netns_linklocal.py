"""IPv6 link-local addresses across hosts, as far as one machine allows:
three network namespaces on a bridge (in a namespace of its own), each with
one interface called pt0 and only a link-local address (fe80::1, ::2, ::3;
no other address at all). The driver listens on `fe80::1%pt0`; executors in
the two other namespaces connect to it there, report their block servers at
their own link-local address with its scope (`[fe80::2%pt0]:PORT`), and
fetch each other's shuffle blocks that way. Results exact, before and after
an executor is killed; the same over TLS.

A scope names an interface of the host that uses it, so this works where the
hosts' interfaces on the link are called alike, as here (and as eth0 on a
typical cluster). Needs root and network namespaces; skipped loudly
otherwise."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from conftest import ROOT
from netns_util import bridged_namespaces, ip

BUILD = os.environ.get("PT_BUILD_DIR", str(ROOT / "build"))
BENCH = os.path.join(BUILD, "bench", "cluster_bench")


def link_local(ns: str, dev: str, i: int) -> None:
    # One interface called pt0 with only the address given here: none made
    # from the MAC.
    ip("-n", ns, "link", "set", dev, "name", "pt0")
    ip("-n", ns, "link", "set", "pt0", "addrgenmode", "none")
    ip("-n", ns, "addr", "add", f"fe80::{i}/64", "dev", "pt0", "nodad")
    ip("-n", ns, "link", "set", "pt0", "up")


@pytest.fixture
def linklocal():
    with bridged_namespaces("pl", link_local) as names:
        yield names


def make_certs(where) -> dict:
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
         "-subj", "/CN=test-ca"],
        ["openssl", "req", *ec, "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=node"],
        ["openssl", "x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "node.pem", "-days", "1"],
    ):
        subprocess.run(cmd, cwd=where, check=True, capture_output=True)
    return {"PT_BENCH_TLS_CERT": str(where / "node.pem"),
            "PT_BENCH_TLS_KEY": str(where / "node.key"),
            "PT_BENCH_TLS_CA": str(where / "ca.pem")}


def addresses_of(ns: str) -> list[str]:
    out = subprocess.run(["ip", "-n", ns, "-6", "-o", "addr", "show", "dev", "pt0"],
                         check=True, capture_output=True, text=True).stdout
    return [line.split()[3] for line in out.splitlines()]


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_driver_and_block_servers_on_link_local_addresses(linklocal, tmp_path, transport):
    # The namespaces have nothing but their link-local address.
    for i, k in enumerate(("a", "b", "c"), start=1):
        assert addresses_of(linklocal[k]) == [f"fe80::{i}/64"]
    script = tmp_path / "executor.sh"
    script.write_text(
        "#!/bin/sh\n"
        f"if [ $((PROTIUM_EXECUTOR_ID % 2)) -eq 1 ]; then ns={linklocal['b']}; "
        f"else ns={linklocal['c']}; fi\n"
        f'exec ip netns exec "$ns" {BENCH}\n')
    script.chmod(0o755)
    env = dict(os.environ, PT_BENCH_DRIVER_HOST="fe80::1%pt0",
               PT_BENCH_EXECUTOR_COMMAND=str(script), TMPDIR=str(tmp_path))
    if transport == "tls":
        env.update(make_certs(tmp_path))
    proc = subprocess.run(["ip", "netns", "exec", linklocal["a"], BENCH, "check", transport],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["exact"] is True
    assert report["rows"] == 500000
    ex = report["executor_netns"]
    assert ex[0] != ex[1] and report["driver_netns"] not in ex, report
    assert "refused a connection" not in proc.stderr
    assert "fetch" not in proc.stderr, proc.stderr
