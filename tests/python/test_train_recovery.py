"""test_train_recovery.py — protium.distributed.run when things go wrong,
with real executors and real torch: a rank failing mid-training reruns
every rank, which resume from the last checkpoint (asserted by step);
max_attempts is the stage's own limit; elastic (min, max) starts with the
slots it finds while another job holds one, and after a failure is sized
again; a training script run with argv; Ctrl-C to the driver stops every
rank and the processes ranks started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

import protium as pt

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[3]") as s:
        yield s


def train_steps(steps, fail_at, marker):
    """Sums all_reduce results step by step, checkpointing each step; rank
    1 fails at fail_at in the first attempt only (a file marks it)."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    ctx = pt.BarrierTaskContext.get()
    saved = pt.distributed.load_checkpoint()
    state, start = ({"total": 0.0}, 0) if saved is None else (saved[0], saved[1] + 1)
    for step in range(start, steps):
        if step == fail_at and dist.get_rank() == 1 and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError(f"rank 1 killed at step {step}")
        t = torch.tensor([1.0])
        dist.all_reduce(t)
        state["total"] += t.item()
        pt.distributed.save_checkpoint(state, step)
        dist.barrier()
    return {"start": start, "total": state["total"], "world": dist.get_world_size(),
            "stage_attempt": ctx.stage_attempt_number()}


def test_rank_failure_reruns_all_and_resumes_from_the_checkpoint(session, tmp_path):
    out = pt.distributed.run(train_steps, 8, 5, str(tmp_path / "failed"), num_processes=2)
    assert (tmp_path / "failed").exists()  # the failure happened
    assert out["stage_attempt"] == 1  # in a second attempt of the whole stage
    assert out["start"] == 5  # which resumed after step 4, the last one saved
    assert out["total"] == 16.0  # 8 steps of 2 ranks, none lost, none twice


def test_checkpoints_in_a_directory_of_the_callers(session, tmp_path):
    ckpt = tmp_path / "ckpt"
    out = pt.distributed.run(train_steps, 4, 2, str(tmp_path / "failed"), num_processes=2,
                             checkpoint_dir=str(ckpt))
    assert out["start"] == 2 and out["total"] == 8.0
    assert sorted(os.listdir(ckpt)) == ["checkpoint.pkl"]  # no temporary file left


def test_max_attempts_is_the_limit_of_the_run(session):
    def always_fails():
        raise RuntimeError(f"rank {os.environ['RANK']} never trains")

    with pytest.raises(pt.TaskError, match="failed 2 times") as info:
        pt.distributed.run(always_fails, num_processes=2, max_attempts=2)
    assert "never trains" in info.value.remote_traceback


def hold_slot(it, release):
    for _ in it:
        pass
    while not os.path.exists(release):
        time.sleep(0.02)
    yield pa.record_batch([pa.array([1])], names=["held"])


def elastic_train(release, failed):
    import torch.distributed as dist

    dist.init_process_group("gloo")
    world = dist.get_world_size()
    saved = pt.distributed.load_checkpoint()
    if saved is None:
        pt.distributed.save_checkpoint({"worlds": [world]}, 1)
        dist.barrier()
        if dist.get_rank() == 0:
            open(release, "w").close()  # the other job lets its slot go
            # ... and has ended (the driver saw it) before this attempt fails
            while not os.path.exists(release + ".done"):
                time.sleep(0.02)
            open(failed, "w").close()
            raise RuntimeError("rank 0 fails the first attempt")
        dist.barrier()
    state, step = pt.distributed.load_checkpoint()
    return {"worlds": state["worlds"] + [world], "resumed_from": step}


def test_elastic_starts_with_free_slots_and_resizes_after_a_failure(session, tmp_path):
    release, failed = str(tmp_path / "release"), str(tmp_path / "failed")
    holder = session.range(1, partitions=1).map_partitions(
        lambda it: hold_slot(it, release), "held long")
    done = threading.Event()

    def hold():
        holder.count()
        open(release + ".done", "w").close()
        done.set()

    t = threading.Thread(target=hold)
    t.start()
    while not any(j["tasks_running"] for j in session.jobs_progress()):
        time.sleep(0.02)
    out = pt.distributed.run(elastic_train, release, failed, num_processes=(2, 3))
    t.join(30)
    assert done.is_set() and os.path.exists(failed)
    assert out["worlds"] == [2, 3]  # 2 ranks while a slot was held, 3 after
    assert out["resumed_from"] == 1


def test_bad_elastic_sizes(session):
    for bad in [(3, 2), (0, 2), (1,), (1.5, 2), True]:
        with pytest.raises(ValueError, match="num_processes"):
            pt.distributed.run(print, num_processes=bad)


SCRIPT = textwrap.dedent('''
    import os, sys
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    t = torch.tensor([float(dist.get_rank() + 1)])
    dist.all_reduce(t)
    out = sys.argv[sys.argv.index("--out") + 1]
    with open(os.path.join(out, f"rank-{dist.get_rank()}"), "w") as f:
        f.write(f"{t.item()} {os.environ['WORLD_SIZE']} {sys.argv[1:3]}")
    dist.destroy_process_group()
''')


def test_a_training_script_with_argv(session, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    assert pt.distributed.run(str(script), "--lr", 0.1, "--out", str(tmp_path),
                              num_processes=2) is None
    for rank in (0, 1):
        assert (tmp_path / f"rank-{rank}").read_text() == "3.0 2 ['--lr', '0.1']"


def test_a_failing_script_reports_its_stderr(session, tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("import sys\nsys.exit('no data for this rank')\n")
    with pytest.raises(pt.TaskError, match="no data for this rank"):
        pt.distributed.run(str(script), num_processes=2, max_attempts=1)


DRIVER = textwrap.dedent('''
    import os, sys
    sys.path.insert(0, sys.argv[1])
    import protium as pt

    out = sys.argv[2]
    script = os.path.join(out, "sleeper.py")
    with open(script, "w") as f:
        f.write("import os, time\\n"
                f"open(os.path.join({out!r}, f'child-{{os.getpid()}}'), 'w').close()\\n"
                "time.sleep(600)\\n")
    pt.distributed.run(script, num_processes=2)
''')


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state


def test_ctrl_c_stops_every_rank_and_what_they_started(tmp_path):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(ROOT / "python"),
                               str(tmp_path)], env=dict(os.environ),
                              stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    children = []
    while len(children) < 2 and time.monotonic() < deadline:
        children = [int(p.name.split("-")[1]) for p in tmp_path.glob("child-*")]
        time.sleep(0.05)
    assert len(children) == 2, driver.stderr.read().decode() if driver.poll() else ""
    executors = [int(Path(f"/proc/{c}/stat").read_text().split()[3]) for c in children]
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=30)
    assert driver.returncode != 0 and b"KeyboardInterrupt" in err
    deadline = time.monotonic() + 10
    while any(map(alive, children + executors)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(alive, children + executors))
