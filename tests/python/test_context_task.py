"""test_context_task.py — TaskContext and BarrierTaskContext from Python
against real executors, as PySpark documents them: get() on the driver, in
ordinary and in barrier stages; attempt numbers after a retried task and a
rerun barrier stage; barrier() with tasks arriving at different times;
all_gather order (str and bytes); task_infos; the checkpoint directory
shared across stage attempts. One session (local[2], 2 slots each) serves
the module.
"""

from __future__ import annotations

import os
import time

import pyarrow as pa
import pytest

import protium as pt


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]", {"executor.slots": "2", "task.max_failures": "3"}) as s:
        yield s


def one_row(**values):
    return pa.RecordBatch.from_pylist([values])


def drain(it):
    for _ in it:
        pass


def test_get_on_the_driver():
    assert pt.TaskContext.get() is None
    with pytest.raises(pt.ProtiumError, match="called in the driver"):
        pt.BarrierTaskContext.get()


def test_ordinary_stage_context(session):
    def fn(it):
        drain(it)
        ctx = pt.TaskContext.get()
        try:
            pt.BarrierTaskContext.get()
            barrier_error = ""
        except pt.ProtiumError as e:
            barrier_error = str(e)
        yield one_row(kind=type(ctx).__name__, p=ctx.partition_id(), pid=ctx.partitionId(),
                      n=ctx.num_partitions(), a=ctx.attempt_number(),
                      sa=ctx.stage_attempt_number(), cpus=ctx.cpus(), err=barrier_error)

    out = session.range(30, partitions=3).map_partitions(
        fn, "kind string, p long, pid long, n long, a long, sa long, cpus long, err string"
    ).to_pandas()
    assert out["kind"].tolist() == ["TaskContext"] * 3
    assert out["p"].tolist() == out["pid"].tolist() == [0, 1, 2]
    assert set(out["n"]) == {3} and set(out["a"]) == {0} and set(out["sa"]) == {0}
    assert set(out["cpus"]) == {1}
    assert all("an ordinary stage" in e for e in out["err"])


def test_context_reaches_with_column_and_filter_functions(session):
    ds = session.range(100, partitions=4).with_column(
        "p", lambda ids: ids * 0 + pt.TaskContext.get().partition_id(), columns=["id"],
        type="long")  # a type: inferring it would call the function on the driver
    ds = ds.filter(lambda df: df.id % 2 == pt.TaskContext.get().partition_id() % 2)
    rows = ds.to_arrow().to_pylist()
    assert rows and all(r["id"] // 25 == r["p"] and r["id"] % 2 == r["p"] % 2 for r in rows)


def test_attempt_number_after_a_retried_task(session):
    def flaky(it):
        drain(it)
        ctx = pt.TaskContext.get()
        if ctx.partition_id() == 1 and ctx.attempt_number() == 0:
            raise RuntimeError("first attempt of partition 1 fails")
        yield one_row(p=ctx.partition_id(), a=ctx.attempt_number())

    out = session.range(20, partitions=2).map_partitions(flaky, "p long, a long").to_pandas()
    assert out.sort_values("p")["a"].tolist() == [0, 1]


def test_context_is_invalid_after_its_task(session):
    kept = []

    def fn(it):
        drain(it)
        kept.append(pt.TaskContext.get())
        yield one_row(ok=True)

    session.range(2, partitions=1).map_partitions(fn, "ok bool").count()
    # the function ran on an executor; here, on the driver, the list is empty
    assert kept == []

    def later(it):
        ctx = pt.TaskContext.get()
        drain(it)
        yield one_row(p=ctx.partition_id())

    assert session.range(2, partitions=1).map_partitions(later, "p long").count() == 1


def test_barrier_stage_context_and_task_infos(session):
    def fn(it):
        drain(it)
        ctx = pt.TaskContext.get()
        bctx = pt.BarrierTaskContext.get()
        infos = bctx.task_infos()
        me = infos[bctx.partition_id()]
        yield one_row(kind=type(ctx).__name__, p=bctx.partition_id(),
                      ids=",".join(str(i.partition_id) for i in infos),
                      addresses=",".join(i.address for i in infos),
                      ports=",".join(str(i.port) for i in infos),
                      my_pid=me.pid == os.getpid(), n=len(bctx.getTaskInfos()))

    out = session.range(40, partitions=4).barrier().map_partitions(
        fn, "kind string, p long, ids string, addresses string, ports string, my_pid bool, "
            "n long").to_pandas()
    assert out["kind"].tolist() == ["BarrierTaskContext"] * 4
    assert out["ids"].tolist() == ["0,1,2,3"] * 4
    assert out["my_pid"].all() and set(out["n"]) == {4}
    assert len(set(out["addresses"])) == 1  # every task sees the same list
    addresses = out["addresses"][0].split(",")
    assert all(a.rsplit(":", 1)[1] == port for a, port in
               zip(addresses, out["ports"][0].split(",")))
    assert len(set(out["ports"][0].split(","))) == 4  # one port per task


def test_barrier_waits_for_tasks_arriving_at_different_times(session):
    def fn(it):
        drain(it)
        ctx = pt.BarrierTaskContext.get()
        time.sleep(0.3 * ctx.partition_id())  # partition 3 arrives last
        arrived = time.time()
        ctx.barrier()
        left = time.time()
        yield one_row(p=ctx.partition_id(), arrived=arrived, left=left)

    out = session.range(4, partitions=4).barrier().map_partitions(
        fn, "p long, arrived double, left double").to_pandas()
    # nobody leaves the barrier before the last task has reached it
    assert out["left"].min() >= out["arrived"].max()


def test_all_gather_is_ordered_by_partition(session):
    def fn(it):
        drain(it)
        ctx = pt.BarrierTaskContext.get()
        p = ctx.partition_id()
        time.sleep(0.1 * (3 - p))  # the last partition arrives first
        words = ctx.all_gather(f"from {p}")
        blobs = ctx.allGather(bytes([p]) * (p + 1))
        yield one_row(p=p, words="|".join(words),
                      blobs="|".join(b.hex() for b in blobs),
                      types=",".join(sorted({type(w).__name__ for w in words} |
                                            {type(b).__name__ for b in blobs})))

    out = session.range(4, partitions=4).barrier().map_partitions(
        fn, "p long, words string, blobs string, types string").to_pandas()
    assert set(out["words"]) == {"from 0|from 1|from 2|from 3"}
    assert set(out["blobs"]) == {"00|0101|020202|03030303"}
    assert set(out["types"]) == {"bytes,str"}


def test_all_gather_refuses_other_types(session):
    def fn(it):
        drain(it)
        pt.BarrierTaskContext.get().all_gather(42)
        yield one_row(ok=True)

    with pytest.raises(pt.TaskError, match="the message must be str or bytes"):
        session.range(2, partitions=2).barrier().map_partitions(fn, "ok bool").count()


def test_rerun_barrier_stage_numbers_its_attempt_and_keeps_its_checkpoint_dir(session):
    def fn(it):
        drain(it)
        ctx = pt.BarrierTaskContext.get()
        d = ctx.checkpoint_dir()
        mark = os.path.join(d, f"seen-{ctx.partition_id()}")
        before = os.path.exists(mark)
        open(mark, "w").close()
        ctx.barrier()
        if ctx.stage_attempt_number() == 0 and ctx.partition_id() == 1:
            raise RuntimeError("partition 1 fails the first stage attempt")
        yield one_row(p=ctx.partition_id(), sa=ctx.stage_attempt_number(),
                      a=ctx.attempt_number(), before=before, d=d)

    out = session.range(2, partitions=2).barrier().map_partitions(
        fn, "p long, sa long, a long, before bool, d string").to_pandas()
    assert out["sa"].tolist() == [1, 1]  # every task ran again, in attempt 1
    assert out["before"].all()  # and found what attempt 0 left in the directory
    assert len(set(out["d"])) == 1


def test_barrier_map_in_pandas_variant(session):
    def fn(frames):
        ctx = pt.BarrierTaskContext.get()
        total = sum(len(df) for df in frames)
        sizes = ctx.all_gather(str(total))
        import pandas as pd

        yield pd.DataFrame({"p": [ctx.partition_id()], "sizes": [",".join(sizes)]})

    out = session.range(90, partitions=3).barrier().map_partitions(
        fn, "p long, sizes string", pandas=True).to_pandas()
    assert out["sizes"].tolist() == ["30,30,30"] * 3
