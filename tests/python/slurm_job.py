"""slurm_job.py — the driver programs test_slurm.py runs inside a Slurm
allocation (salloc ... python slurm_job.py MODE DIR): each opens
pt.Session("slurm"), runs one job and writes what it saw as JSON to
DIR/result.json.

  gpus  a barrier stage of one task per executor, each with one GPU: the
        node it ran on, the GPU Slurm gave it, task_infos' hosts
  loss  a shuffle whose reduce tasks wait (DIR/go) until the test has hurt
        a node: DIR/reducing says the map output is written
  twice two sessions in per-task mode back to back: how long the first's
        steps stay in Slurm after its close, and both sessions' start
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

import pyarrow as pa  # noqa: E402

import protium as pt  # noqa: E402

ROWS = 200_000


def gpus(s: pt.Session, n: int) -> dict:
    def record(it):
        for _ in it:
            pass
        ctx = pt.TaskContext.get()
        ctx.barrier()  # all hold their GPUs at once
        infos = ctx.task_infos()
        yield pa.RecordBatch.from_pylist([{
            "p": ctx.partition_id(),
            "node": os.environ.get("SLURMD_NODENAME", ""),
            "gpus": ",".join(ctx.resources()["gpu"].addresses),
            "env": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
            "hosts": ",".join(i.host for i in infos),
        }])

    schema = "p long, node string, gpus string, env string, hosts string"
    out = s.range(n, partitions=n).barrier().with_resources(gpus=1) \
        .map_partitions(record, schema).to_arrow()
    return {"rows": out.sort_by("p").to_pylist()}


def loss(s: pt.Session, d: Path) -> dict:
    def identity(it):
        # A map stage of Python tasks on both executors: each node then
        # holds map output a lost node takes with it.
        for b in it:
            yield b

    def reduce(it):
        (d / "reducing").touch()
        while not (d / "go").exists():
            time.sleep(0.02)
        total, n = 0, 0
        for b in it:
            total += pa.compute.sum(b.column(0)).as_py() or 0
            n += b.num_rows
        yield pa.RecordBatch.from_pylist([{"n": n, "total": total}])

    import pyarrow.compute  # noqa: F401

    out = s.range(ROWS, partitions=4).map_partitions(identity, "id long").repartition(4) \
        .map_partitions(reduce, "n long, total long").to_arrow()
    return {"n": sum(out.column("n").to_pylist()), "total": sum(out.column("total").to_pylist())}


def twice(d: Path) -> dict:
    import subprocess

    def steps() -> str:
        return subprocess.run(["squeue", "--steps", "--noheader", "--jobs",
                               os.environ["SLURM_JOB_ID"]], capture_output=True, text=True,
                              check=True).stdout.strip()

    got: dict = {"start_ms": [], "executors": []}
    for i in range(2):
        t0 = time.monotonic()
        s = pt.Session("slurm", {"slurm.executors": "task"})
        got["start_ms"].append((time.monotonic() - t0) * 1000)
        got["executors"].append(len(s.executor_pids()))
        s.close()
        if i == 0:
            t1 = time.monotonic()
            while steps() and time.monotonic() - t1 < 30:
                time.sleep(0.01)
            got["steps_gone_ms"] = (time.monotonic() - t1) * 1000
    return got


def main() -> None:
    mode, d = sys.argv[1], Path(sys.argv[2])
    if mode == "twice":
        (d / "result.json").write_text(json.dumps(twice(d)))
        return
    conf = {"executor.heartbeat_timeout": "2s", "task.max_failures": "8",
            "stage.max_attempts": "8"}
    t0 = time.monotonic()
    with pt.Session("slurm", conf) as s:
        started_ms = (time.monotonic() - t0) * 1000
        before = s.executor_pids()
        result = gpus(s, len(before)) if mode == "gpus" else loss(s, d)
        result["executors"] = len(before)
        # srun's pids: one that is not there any more is an executor lost
        result["lost"] = len(set(before) - set(s.executor_pids()))
        result["start_ms"] = started_ms
    (d / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
