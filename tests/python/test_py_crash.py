"""test_py_crash.py — a Python function that crashes its process (os._exit,
a segfault in an extension) against real executors: the result is exact,
the executor is replaced, and the job's stats (Dataset.last_job) say
what was lost. Each executor is its Python worker, so the tasks that ran
beside the crashed one in that process end with it; the executor's crash
note tells the driver which task's code ended it, so that task alone fails
(cause EXECUTOR_LOST) and the ones beside it are rerun without losing one
of their task.max_failures attempts (docs/python.md says what it costs).
"""

from __future__ import annotations

import ctypes
import os

import pytest

import protium as pt
from protium.stats import CAUSE_ERROR, CAUSE_EXECUTOR_LOST


def last_job(ds: pt.Dataset) -> dict:
    """ds.last_job(): the job's counts and its one stage's."""
    job = ds.last_job()
    assert len(job.stages) == 1
    stats = {k: v for k, v in vars(job.stages[0]).items()
             if k not in ("failed_by_cause", "lost_partitions")}
    stats["by_cause"] = list(job.stages[0].failed_by_cause)
    stats.update(status=job.status, executors_lost=job.executors_lost,
                 executors_started=job.executors_started)
    return stats


def crashing(flag: str, how: str):
    """A map_in_arrow function that crashes its process on partition 0's
    first batch, once (the flag file says it did), slowly enough that the
    other slots of its executor are busy when it does."""

    def fn(it):
        import time

        for b in it:
            time.sleep(0.2)
            if b.column(0)[0].as_py() == 0 and not os.path.exists(flag):
                open(flag, "w").close()
                if how == "exit":
                    os._exit(3)
                ctypes.string_at(0)  # a segfault, as in a broken extension
            yield b

    return fn


@pytest.mark.parametrize("how", ["exit", "segfault"])
def test_a_crash_with_one_slot_fails_only_that_task(tmp_path, how):
    conf = {"executor.slots": "1", "range.batch_rows": "100", "task.max_failures": "2"}
    with pt.Session("local[2]", conf=conf) as s:
        out = s.range(600, partitions=6).map_in_arrow(crashing(str(tmp_path / "f"), how),
                                                      schema="id long")
        assert out.to_arrow().column("id").to_pylist() == list(range(600))
        st = last_job(out)
    assert (tmp_path / "f").exists()
    assert st["status"] == 0
    assert st["executors_lost"] == 1 and st["executors_started"] == 1
    assert st["tasks_succeeded"] == 6
    assert st["tasks_failed"] == 1 and st["by_cause"][CAUSE_EXECUTOR_LOST] == 1
    assert st["tasks_launched"] == 6 + 1 + st["tasks_requeued"]


@pytest.mark.parametrize("how", ["exit", "segfault"])
def test_a_crash_with_two_slots_fails_only_that_task(tmp_path, how):
    conf = {"executor.slots": "2", "range.batch_rows": "100", "task.max_failures": "2"}
    with pt.Session("local[2]", conf=conf) as s:
        out = s.range(800, partitions=8).map_in_arrow(crashing(str(tmp_path / "f"), how),
                                                      schema="id long")
        assert out.to_arrow().column("id").to_pylist() == list(range(800))
        st = last_job(out)
        # the session goes on with a fresh executor: a second job is exact
        assert out.count() == 800
    assert st["status"] == 0 and st["executors_lost"] == 1
    assert st["tasks_succeeded"] == 8 and st["tasks_duplicate"] == 0
    # the crashed task alone failed; the one beside it was rerun uncounted
    assert st["tasks_failed"] == 1 and st["by_cause"][CAUSE_EXECUTOR_LOST] == 1
    assert st["by_cause"][CAUSE_ERROR] == 0
    assert st["tasks_requeued"] >= 1
    assert st["tasks_launched"] == 8 + 1 + st["tasks_requeued"]


def innocent_and_crashing(log: str, how: str):
    """Partition 1 fails once on its own (an exception: one counted
    failure), then runs slowly; partition 0 waits until partition 1's second
    attempt runs beside it in its process and crashes that process. Each
    call logs partition, attempt and pid."""

    def fn(it):
        import time

        ctx = pt.TaskContext.get()
        part, attempt = ctx.partition_id(), ctx.attempt_number()
        with open(log, "a") as f:
            f.write(f"{part} {attempt} {os.getpid()}\n")
        mark = f"{log}.p1-running-{os.getpid()}"
        if part == 1 and attempt == 0:
            raise ValueError("partition 1 fails once by itself")
        if part == 1 and attempt == 1:
            open(mark, "w").close()
            time.sleep(30)  # the crash beside it ends this attempt
        if part == 0 and attempt == 0:
            deadline = time.monotonic() + 20
            while not os.path.exists(mark) and time.monotonic() < deadline:
                time.sleep(0.01)
            if how == "exit":
                os._exit(3)
            ctypes.string_at(0)
        yield from it

    return fn


@pytest.mark.parametrize("how", ["exit", "segfault"])
def test_the_task_beside_a_crash_keeps_its_attempts(tmp_path, how):
    # One executor, two slots: the crash ends both tasks' process. Partition
    # 1 has already failed once, so with task.max_failures = 2 the job
    # survives only if losing it to partition 0's crash does not count.
    log = str(tmp_path / "log")
    conf = {"executor.slots": "2", "task.max_failures": "2"}
    with pt.Session("local[1]", conf=conf) as s:
        out = s.range(200, partitions=2).map_in_arrow(innocent_and_crashing(log, how),
                                                      schema="id long")
        assert sorted(out.to_arrow().column("id").to_pylist()) == list(range(200))
        st = last_job(out)
    calls = [tuple(int(v) for v in line.split()) for line in open(log)]
    attempts = {p: [(a, pid) for q, a, pid in calls if q == p] for p in (0, 1)}
    first_pid = attempts[0][0][1]
    # partition 0: crashed its first attempt, retried on a fresh executor
    assert [a for a, _ in attempts[0]] == [0, 1]
    assert attempts[0][1][1] != first_pid
    # partition 1: its own failure, the attempt lost beside the crash (in
    # the same process), and the one that succeeded on the fresh executor
    assert [a for a, _ in attempts[1]] == [0, 1, 2]
    assert attempts[1][1][1] == first_pid and attempts[1][2][1] != first_pid
    assert st["status"] == 0 and st["executors_lost"] == 1
    assert st["tasks_succeeded"] == 2
    assert st["tasks_failed"] == 2
    assert st["by_cause"][CAUSE_ERROR] == 1 and st["by_cause"][CAUSE_EXECUTOR_LOST] == 1
    assert st["tasks_requeued"] == 1
    assert st["tasks_launched"] == 5
