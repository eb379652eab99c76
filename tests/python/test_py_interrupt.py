"""test_py_interrupt.py — Ctrl-C (SIGINT) in a Python driver mid-job: the
driver ends with KeyboardInterrupt and no executor of its session is left
running afterwards, nor its temporary directories."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
import sys, time
sys.path.insert(0, {python!r})
import protium as pt

def slow(it):
    for b in it:
        time.sleep(60)
        yield b

with pt.Session("local[2]", conf={{"local.dir": {dir!r}}}) as s:
    print("started", *s.executor_pids(), flush=True)
    s.range(100, partitions=4).map_in_arrow(slow, schema="id long").count()
"""


def _session_processes(marker: str) -> list[int]:
    """Live processes whose environment names a socket under marker."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if state != "Z" and f"PROTIUM_EXECUTOR_SOCKET={marker}".encode() in env:
            found.append(int(entry))
    return found


def test_sigint_mid_job_leaves_no_process(tmp_path):
    script = DRIVER.format(python=str(ROOT / "python"), dir=str(tmp_path))
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert line[0] == "started" and len(line) == 3, line
    executors = [int(x) for x in line[1:]]
    time.sleep(1.0)  # the tasks are running (sleeping in the function)
    assert sorted(_session_processes(str(tmp_path))) == sorted(executors)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode != 0
    assert "KeyboardInterrupt" in err
    deadline = time.monotonic() + 10
    while _session_processes(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _session_processes(str(tmp_path)) == []
    assert list(tmp_path.iterdir()) == []  # the session's directory is gone too
    # ... and its results directory in memory (local.results_dir)
    assert list(Path("/dev/shm").glob(f"protium-{p.pid}-*")) == []
