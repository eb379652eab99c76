"""test_train_distributed.py — protium.distributed.run against real
executors and real torch: a gloo all_reduce over two ranks, the rendezvous
variables (set while a rank runs, restored after), rank 0's return value of
any size, ranks fed their partitions of a dataset (also as a torch
IterableDataset over several epochs), a failing rank's exception with its
remote traceback, use_gpu with fake GPUs, and the examples of
docs/training.md. One session (local[2]) serves the module.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

import protium as pt

RENDEZVOUS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK",
              "LOCAL_WORLD_SIZE")


@pytest.fixture(scope="module")
def session():
    # one fake GPU per executor, for use_gpu=True
    with pt.Session("local[2]", {"resources.gpu.addresses": "0,1"}) as s:
        yield s


def all_reduce_ranks(scale):
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")  # env:// from the variables run() sets
    t = torch.tensor([float(dist.get_rank() + 1) * scale])
    dist.all_reduce(t)
    env = {k: os.environ[k] for k in RENDEZVOUS}
    return {"sum": t.item(), "world": dist.get_world_size(), "env": env,
            "pid": os.getpid()}


def test_two_ranks_all_reduce_with_gloo(session):
    out = pt.distributed.run(all_reduce_ranks, 10.0, num_processes=2)
    assert out["sum"] == 30.0  # (1 + 2) * 10 over both ranks
    assert out["world"] == 2
    env = out["env"]
    assert env["RANK"] == "0" and env["WORLD_SIZE"] == "2"
    assert env["LOCAL_RANK"] == "0" and env["LOCAL_WORLD_SIZE"] == "2"
    assert int(env["MASTER_PORT"]) > 0
    assert out["pid"] in session.executor_pids()


def test_rendezvous_variables_are_restored_after_the_run(session):
    pt.distributed.run(all_reduce_ranks, 1.0, num_processes=2)

    def leftover(it):
        for _ in it:
            pass
        yield pa.record_batch([pa.array([",".join(k for k in RENDEZVOUS if k in os.environ)])],
                              names=["set"])

    out = session.range(2, partitions=2).map_partitions(leftover, "set string").to_pandas()
    assert out["set"].tolist() == ["", ""]


def test_keyword_arguments_and_a_large_return_value(session):
    def big(n, *, fill):
        return {"rank": int(os.environ["RANK"]), "data": fill * n}

    out = pt.distributed.run(big, 24 << 20, fill=b"z", num_processes=2)
    assert out["rank"] == 0
    assert len(out["data"]) == 24 << 20 and out["data"][:3] == b"zzz"


def test_ranks_read_their_partition_of_the_dataset(session):
    ds = session.range(1000, partitions=5)

    def read():
        ids = [i for b in pt.distributed.get_dataset_iterator()
               for i in b.column("id").to_pylist()]
        return pt.BarrierTaskContext.get().all_gather(",".join(map(str, ids)))

    parts = pt.distributed.run(read, num_processes=2, dataset=ds)
    seen = [list(map(int, p.split(","))) for p in parts]
    assert all(len(p) > 0 for p in seen)
    assert sorted(seen[0] + seen[1]) == list(range(1000))


def test_torch_dataset_over_the_partition_for_several_epochs(session):
    ds = session.range(600, partitions=3).with_column("x", lambda i: i * 0.5, columns=["id"])

    def epochs():
        import torch
        from torch.utils.data import DataLoader

        data = pt.distributed.get_torch_dataset(batch_size=64)
        assert isinstance(data, torch.utils.data.IterableDataset)
        sums = []
        for _ in range(3):
            total, rows = 0.0, 0
            for item in DataLoader(data, batch_size=None):
                assert set(item) == {"id", "x"}
                assert item["x"].dtype == torch.float64 and len(item["x"]) <= 64
                total += float(item["x"].sum())
                rows += len(item["id"])
            sums.append((rows, total))
        got = pt.BarrierTaskContext.get().all_gather(repr(sums))
        return [eval(g) for g in got]  # noqa: S307 - our own repr

    per_rank = pt.distributed.run(epochs, num_processes=2, dataset=ds)
    for sums in per_rank:
        assert sums[0] == sums[1] == sums[2]  # every epoch sees the same rows
    assert sum(s[0][0] for s in per_rank) == 600
    assert sum(s[0][1] for s in per_rank) == sum(i * 0.5 for i in range(600))


def test_a_failing_rank_raises_with_its_remote_traceback(session):
    def fails_on_rank_one():
        if os.environ["RANK"] == "1":
            raise ValueError("rank one cannot train")
        pt.BarrierTaskContext.get().barrier()

    with pytest.raises(pt.TaskError) as info:
        pt.distributed.run(fails_on_rank_one, num_processes=2, max_attempts=2)
    e = info.value
    assert "failed 2 times" in e.message
    assert "ValueError: rank one cannot train" in e.remote_traceback
    assert "in fails_on_rank_one" in e.remote_traceback
    assert "partition 1 failed" in e.message


def test_outside_a_run_the_helpers_say_where_they_work():
    with pytest.raises(pt.ProtiumError, match="only inside a function run by"):
        pt.distributed.get_dataset_iterator()
    with pytest.raises(pt.ProtiumError, match="only inside a function run by"):
        pt.distributed.load_checkpoint()


def test_bad_arguments_fail_before_any_job(session):
    with pytest.raises(ValueError, match="num_processes must be a positive int"):
        pt.distributed.run(all_reduce_ranks, num_processes=0)
    with pytest.raises(TypeError, match="function or a script path"):
        pt.distributed.run(42, num_processes=2)
    with pytest.raises(FileNotFoundError, match="no script"):
        pt.distributed.run("/nonexistent/train.py", num_processes=2)


def test_the_examples_of_docs_training_md_run(session, monkeypatch, capsys):
    """Each example runs as written, except that its `pt.Session(...)` is
    this module's session (same master): a fresh one would import torch
    again in every executor, the slowest part of these tests."""
    import contextlib
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "training.md").read_text()
    blocks = re.findall(r"<!-- run by tests/python/test_train_distributed.py -->\n"
                        r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 2
    for block in blocks:
        assert 'pt.Session("local[2]")' in block
        monkeypatch.setattr(pt, "Session", lambda *a, **k: contextlib.nullcontext(session))
        exec(compile(block, "docs/training.md", "exec"), {"__name__": "training_md"})
        monkeypatch.undo()
        # each prints what its last comment says
        expected = block.rstrip().rsplit("# ", 1)[1].split(" (")[0]
        assert capsys.readouterr().out.strip().splitlines()[-1] == expected.strip()


def test_more_ranks_than_executors_fails_at_once(session):
    with pytest.raises(pt.ProtiumError, match=r"3 ranks need 3 executors .* has 2"):
        pt.distributed.run(all_reduce_ranks, 1.0, num_processes=3)
    with pytest.raises(pt.ProtiumError, match=r"3 executors with a gpu .* has 2"):
        pt.distributed.run(all_reduce_ranks, 1.0, num_processes=3, use_gpu=True)


def test_use_gpu_gives_each_rank_its_gpu(session):
    def visible():
        ctx = pt.BarrierTaskContext.get()
        mine = os.environ["CUDA_VISIBLE_DEVICES"]
        assert ctx.resources()["gpu"].addresses == [mine]
        return ctx.all_gather(mine)

    assert sorted(pt.distributed.run(visible, num_processes=2, use_gpu=True)) == ["0", "1"]

    def outside_the_run(it):
        for _ in it:
            pass
        yield pa.record_batch([pa.array([os.environ.get("CUDA_VISIBLE_DEVICES", "")])],
                              names=["env"])

    out = session.range(2, partitions=2).map_partitions(outside_the_run, "env string")
    assert out.to_pandas()["env"].tolist() == ["", ""]
