"""test_context_resources.py — resource profiles from Python with fake GPUs
(static addresses): every task of a stage gets distinct whole addresses,
TaskContext.resources() and CUDA_VISIBLE_DEVICES match them while the task
runs (and are restored after), fractions share one address, optional
requests run without, cpus take slots, and bad requests fail with the
engine's messages.
"""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

import protium as pt

SCHEMA = "p long, gpus string, env string, cpus long"


def record(it):
    for _ in it:
        pass
    ctx = pt.TaskContext.get()
    res = ctx.resources()
    ctx_gpus = ",".join(res["gpu"].addresses) if "gpu" in res else ""
    if isinstance(ctx, pt.BarrierTaskContext):
        ctx.barrier()  # every task holds its addresses at the same time
    yield pa.RecordBatch.from_pylist([{
        "p": ctx.partition_id(), "gpus": ctx_gpus,
        "env": os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), "cpus": ctx.cpus()}])


@pytest.fixture(scope="module")
def gpu_session():
    # 4 fake GPUs dealt to 2 executors (2 each), one slot each: a task's
    # CUDA_VISIBLE_DEVICES is its own process's.
    conf = {"resources.gpu.addresses": "0,1,2,3"}
    with pt.Session("local[2]", conf) as s:
        yield s


def test_whole_gpus_are_distinct_and_visible(gpu_session):
    ds = gpu_session.range(2, partitions=2).with_resources(gpus=2).barrier()
    out = ds.map_partitions(record, SCHEMA).to_pandas()
    got = [set(g.split(",")) for g in out["gpus"]]
    assert all(len(g) == 2 for g in got)
    assert got[0].isdisjoint(got[1]) and got[0] | got[1] == {"0", "1", "2", "3"}
    assert out["env"].tolist() == out["gpus"].tolist()


def test_profile_object_with_one_gpu_each(gpu_session):
    profile = pt.ResourceProfile(gpus=1)
    out = gpu_session.range(2, partitions=2).barrier().with_resources(profile) \
        .map_partitions(record, SCHEMA).to_pandas()
    assert len(set(out["gpus"])) == 2 and all(len(g) == 1 for g in out["gpus"])
    assert out["env"].tolist() == out["gpus"].tolist()


def test_environment_is_restored_and_other_stages_hold_nothing(gpu_session):
    gpu_stage = gpu_session.range(2, partitions=2).with_resources(gpus=1) \
        .map_partitions(record, SCHEMA)
    out = gpu_stage.repartition(2).map_partitions(record, SCHEMA).to_pandas()
    assert out["gpus"].tolist() == ["", ""]
    assert out["env"].tolist() == ["<unset>", "<unset>"]


def test_fractions_share_one_address():
    conf = {"resources.gpu.addresses": "7", "executor.slots": "4"}
    with pt.Session("local[1]", conf) as s:
        ds = s.range(4, partitions=4).barrier().with_resources(gpus=0.25)
        out = ds.map_partitions(record, SCHEMA).to_pandas()
        assert out["gpus"].tolist() == ["7"] * 4  # four quarter shares, at once
        assert out["env"].tolist() == ["7"] * 4
        # half shares: two tasks at a time on the one address
        halves = s.range(4, partitions=4).with_resources(
            pt.ResourceProfile(resources={"gpu": 0.5})).map_partitions(record, SCHEMA)
        assert halves.to_pandas()["gpus"].tolist() == ["7"] * 4
        with pytest.raises(pt.TaskError, match="needs"):
            s.range(4, partitions=4).barrier().with_resources(gpus=0.5) \
                .map_partitions(record, SCHEMA).count()


def test_optional_requests_run_without_and_cpus_take_slots():
    conf = {"resources.fpga.addresses": "f0", "executor.slots": "2"}
    with pt.Session("local[1]", conf) as s:
        profile = pt.ResourceProfile(resources={"fpga": 1}, optional=True)

        def fpga(it):
            for _ in it:
                pass
            ctx = pt.BarrierTaskContext.get()
            held = ctx.resources()
            ctx.barrier()
            yield pa.RecordBatch.from_pylist([{
                "fpga": ",".join(held["fpga"].addresses) if "fpga" in held else ""}])

        out = s.range(2, partitions=2).with_resources(profile).barrier() \
            .map_partitions(fpga, "fpga string").to_pandas()
        assert sorted(out["fpga"]) == ["", "f0"]  # one got it, the other ran without
        two = s.range(2, partitions=2).with_resources(cpus=2).map_partitions(record, SCHEMA)
        assert two.to_pandas()["cpus"].tolist() == [2, 2]


def test_bad_requests_fail_with_the_engine_message(gpu_session):
    with pytest.raises(pt.ProtiumError, match="gpu"):
        pt.ResourceProfile(gpus=1.5)
    with pytest.raises(pt.ProtiumError, match="1/64"):
        pt.ResourceProfile(gpus=0.001)
    with pytest.raises(ValueError, match="does not request"):
        pt.ResourceProfile(gpus=1, optional=["fpga"])
    with pytest.raises(TypeError, match="ResourceProfile"):
        gpu_session.range(2).with_resources("gpu")
    with pytest.raises(pt.TaskError, match="gpu"):
        gpu_session.range(2, partitions=2).with_resources(gpus=3) \
            .map_partitions(record, SCHEMA).count()


def test_addresses_from_a_discovery_script(tmp_path):
    script = tmp_path / "discover.sh"
    script.write_text('#!/bin/sh\necho \'{"name": "gpu", "addresses": ["g0", "g1"]}\'\n')
    script.chmod(0o755)
    conf = {"resources.gpu.discovery_script": str(script)}
    with pt.Session("local[2]", conf) as s:
        out = s.range(2, partitions=2).with_resources(gpus=1).barrier() \
            .map_partitions(record, SCHEMA).to_pandas()
        assert sorted(out["gpus"]) == ["g0", "g1"]
        assert out["env"].tolist() == out["gpus"].tolist()

