"""benchlib.py — what the benchmarks share: running a C driver or a peer's
Python code in a child process and taking the JSON object it prints last.
A peer that fails or times out is left out of the run (with its reason on
stderr), not a failure of the benchmark.
"""

from __future__ import annotations

import json
import subprocess
import sys


def run_json(argv: list[str], timeout: float) -> dict:
    """Runs argv (which must succeed) and returns its last stdout line as JSON."""
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=timeout)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_peer(name: str, argv: list[str], timeout: float, tail_lines: int = 15) -> dict | None:
    """Runs a peer's program; its last stdout line as JSON, or None (said on stderr)."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"{name}: timed out after {timeout}s; left out", file=sys.stderr)
        return None
    if out.returncode != 0:
        tail = "\n".join(out.stderr.strip().splitlines()[-tail_lines:])
        print(f"{name}: failed (exit {out.returncode}); left out:\n{tail}", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])
