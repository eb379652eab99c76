"""test_py_progress.py — the console progress bar: shown on a terminal for a
job over a second (a pseudo-terminal as the driver's stderr), with the
stages and tasks; absent when stderr is not a terminal, or when the session
says progress=False."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
import sys, time
sys.path.insert(0, {python!r})
import protium as pt

def slow(it):
    for b in it:
        time.sleep(0.7)
        yield b

with pt.Session("local[2]"{extra}) as s:
    n = s.range(800, partitions=2).repartition(2).map_in_arrow(slow, schema="id long").count()
    print("rows", n, flush=True)
"""


def _run(extra: str, tty: bool) -> tuple[str, str]:
    script = DRIVER.format(python=str(ROOT / "python"), extra=extra)
    if not tty:
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout, r.stderr
    leader, follower = pty.openpty()
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                         stderr=follower, text=True)
    os.close(follower)
    err = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        err += chunk
    out = p.stdout.read()
    assert p.wait(timeout=120) == 0, err
    os.close(leader)
    return out, err.decode()


def test_progress_bar_on_a_terminal():
    out, err = _run("", tty=True)
    assert out.strip() == "rows 800"
    assert "[Stage 2/2:" in err  # the reduce stage, after the map stage
    assert ") / 4]" in err       # 2 map + 2 reduce tasks
    assert err.endswith("\r")   # erased at the end


def test_no_progress_bar_off_a_terminal_or_when_off():
    out, err = _run("", tty=False)
    assert out.strip() == "rows 800"
    assert "[Stage" not in err
    out, err = _run(", progress=False", tty=True)
    assert "[Stage" not in err
