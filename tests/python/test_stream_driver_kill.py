"""test_stream_driver_kill.py — exactly once across a killed driver: a
streaming driver (tests/python/stream_driver.py, a real process with its own
executors) is killed with SIGKILL between the offset log and the commit
log — inside a batch's job, and after the sink committed a batch — then
restarted on the same checkpoint; the rerun batch keeps its id and offsets,
and the sink holds every event exactly once. Then the same under kills at
random moments.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather

DRIVER = Path(__file__).resolve().parent / "stream_driver.py"


def put(dirname: Path, f: int) -> None:
    table = pa.table({"id": pa.array(range(f * 100, f * 100 + 100), pa.int64()),
                      "x": pa.array([1.0] * 100)})
    feather.write_feather(table, dirname / f".e-{f:03d}.arrow", compression="uncompressed")
    os.rename(dirname / f".e-{f:03d}.arrow", dirname / f"e-{f:03d}.arrow")


def driver(*args: object) -> subprocess.Popen:
    env = dict(os.environ)
    return subprocess.Popen([sys.executable, str(DRIVER), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)


def finish(*args: object) -> list[dict]:
    p = driver(*args)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def kill(p: subprocess.Popen) -> None:
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)


def wait_for(path: Path, p: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert p.poll() is None, p.communicate()[1]
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.02)


def sink_ids(out: Path, pattern: str) -> list[int]:
    ids: list[int] = []
    for f in sorted(out.glob(pattern)):
        ids += feather.read_table(f).column("id").to_pylist()
    return sorted(ids)


def setup(tmp_path: Path, files: int) -> tuple[Path, Path, Path]:
    src, out, ckpt = tmp_path / "in", tmp_path / "out", tmp_path / "ckpt"
    src.mkdir()
    for f in range(files):
        put(src, f)
    return src, out, ckpt


def test_driver_killed_inside_a_batch_job(tmp_path):
    src, out, ckpt = setup(tmp_path, 6)
    p = driver(src, out, ckpt, "block-job", 350)  # file 3 = batch 3
    wait_for(tmp_path / "reached", p)
    assert (ckpt / "offsets" / "3").exists() and not (ckpt / "commits" / "3").exists()
    kill(p)
    progress = finish(src, out, ckpt, "finish")
    assert progress[0]["batch_id"] == 3 and progress[0]["recovered"]
    assert progress[0]["start_offsets"] == '{"files":3}'
    assert progress[0]["end_offsets"] == '{"files":4}'
    assert [b["batch_id"] for b in progress] == [3, 4, 5]
    assert sink_ids(out, "part-*.arrow") == list(range(600))


def test_driver_killed_after_the_sink_committed(tmp_path):
    src, out, ckpt = setup(tmp_path, 5)
    p = driver(src, out, ckpt, "block-commit", 2)
    wait_for(tmp_path / "reached", p)
    assert (out / "batch-00002-0.arrow").exists()  # the sink's part is done ...
    assert not (ckpt / "commits" / "2").exists()   # ... its commit is not
    kill(p)
    progress = finish(src, out, ckpt, "finish", 2)
    assert progress[0]["batch_id"] == 2 and progress[0]["recovered"]
    assert sink_ids(out, "batch-*.arrow") == list(range(500))


def test_driver_killed_at_random_moments(tmp_path):
    src, out, ckpt = setup(tmp_path, 12)
    rng = random.Random(13)
    for _ in range(3):
        p = driver(src, out, ckpt, "run")
        time.sleep(rng.uniform(1.0, 2.5))
        kill(p)
    finish(src, out, ckpt, "finish")
    assert sink_ids(out, "part-*.arrow") == list(range(1200))
