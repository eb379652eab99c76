"""distributed.py — distributed training from Python (like PySpark's
TorchDistributor): run(train_fn, num_processes=N) runs train_fn on N ranks
as one barrier stage of the engine, with the variables torch.distributed's
env:// rendezvous reads, feeds each rank its partition of a dataset
straight from the engine, reruns every rank when one fails (resuming from
save_checkpoint's last checkpoint) and returns rank 0's return value.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pickle
import re
import signal
import subprocess
import sys
from datetime import timedelta
from typing import Any, Callable, Iterator, Optional, Union

import pyarrow as pa

from protium import context
from protium._lib import PT_EINVAL, PT_ESTATE, ProtiumError

__all__ = ["run", "get_dataset_iterator", "get_torch_dataset", "save_checkpoint",
           "load_checkpoint"]

_RESULT_SCHEMA = pa.schema([("value", pa.large_binary())])
_ENV_VARS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK",
             "LOCAL_WORLD_SIZE", "TORCHELASTIC_USE_AGENT_STORE")
_CHECKPOINT = "checkpoint.pkl"


def run(train_fn: Union[Callable[..., Any], str], *args: Any, num_processes: Any = 1,
        use_gpu: bool = False, dataset: Any = None, checkpoint_dir: Optional[str] = None,
        max_attempts: int = 4, **kwargs: Any) -> Any:
    """Runs train_fn(*args, **kwargs) on num_processes ranks, each in its
    own executor process, and returns rank 0's return value (any picklable
    value; it comes back as the job's result). train_fn may also be the path
    of a Python script, run with args as its argv (returns None).

    Every rank has MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK
    and LOCAL_WORLD_SIZE in os.environ while it runs, so
    torch.distributed.init_process_group() (gloo; nccl with use_gpu, where
    every rank also holds one gpu and CUDA_VISIBLE_DEVICES names it) works
    unchanged. dataset: a Dataset; rank i reads partition i of
    dataset.repartition(num_processes) with get_dataset_iterator() or
    get_torch_dataset(). A failure of any rank stops every rank and runs
    them all again, up to max_attempts attempts in all;
    save_checkpoint()/load_checkpoint() let the new attempt resume (in
    checkpoint_dir, or a directory the engine keeps for the job).

    num_processes=(min, max): elastic. Each attempt starts with as many
    ranks as there are free executors (with a gpu each, with use_gpu), at
    least min (it waits for them) and at most max; after a failure the next
    attempt is sized again. Checkpoints then live in checkpoint_dir (or a
    temporary directory of the call), since every attempt is a job.

    The session is the dataset's, else the one opened last
    (Session.active()), else one of max local executors opened for the
    call and closed after.
    """
    from protium.session import Session

    lo, hi = _sizes(num_processes)
    if not callable(train_fn) and not isinstance(train_fn, (str, os.PathLike)):
        raise TypeError(f"run: train_fn must be a function or a script path, got "
                        f"{type(train_fn).__name__}")
    if isinstance(train_fn, (str, os.PathLike)):
        train_fn = os.path.abspath(os.fspath(train_fn))
        if not os.path.isfile(train_fn):
            raise FileNotFoundError(f"run: no script {train_fn}")
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"run: max_attempts must be an int >= 1, not {max_attempts!r}")
    if checkpoint_dir is not None:
        # ranks run in the executors' working directory, not the caller's
        checkpoint_dir = os.path.abspath(os.fspath(checkpoint_dir))
    own: Optional[Session] = None
    session = dataset.session if dataset is not None else Session.active()
    if session is None:
        own = session = Session(f"local[{hi}]")
    job = _Job(session, train_fn, args, kwargs, use_gpu, dataset, checkpoint_dir)
    try:
        if lo == hi and not isinstance(num_processes, tuple):
            return job.run(hi, max_attempts)
        return _run_elastic(job, lo, hi, max_attempts)
    finally:
        if own is not None:
            own.close()


def _sizes(num_processes: Any) -> tuple[int, int]:
    def ok(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1

    if isinstance(num_processes, tuple) and len(num_processes) == 2 \
            and all(map(ok, num_processes)) and num_processes[0] <= num_processes[1]:
        return num_processes[0], num_processes[1]
    if ok(num_processes):
        return num_processes, num_processes
    raise ValueError(f"run: num_processes must be a positive int or (min, max) with "
                     f"1 <= min <= max, got {num_processes!r}")


class _Job:
    """One call's barrier stage, built for a number of ranks."""

    def __init__(self, session: Any, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                 use_gpu: bool, dataset: Any, checkpoint_dir: Optional[str]) -> None:
        self.session, self.fn, self.args, self.kwargs = session, fn, args, kwargs
        self.use_gpu, self.dataset, self.checkpoint_dir = use_gpu, dataset, checkpoint_dir

    def run(self, n: int, max_attempts: int) -> Any:
        from protium.resources import ResourceProfile

        eligible, _ = self.executors()
        if n > eligible:
            what = "executors with a gpu" if self.use_gpu else "executors"
            raise ProtiumError(PT_EINVAL, f"run: {n} ranks need {n} {what} (one rank per "
                               f"executor process) but the session has {eligible}; open it "
                               f"with more (local[{n}]) or ask for fewer num_processes")

        slots = int(self.session._conf.get("executor.slots", "1"))
        # One rank per executor process: each takes all of its executor's
        # slots, since os.environ and torch's default process group are the
        # process's.
        profile = ResourceProfile(cpus=slots, gpus=1 if self.use_gpu else None)
        inp = (self.dataset.repartition(n) if self.dataset is not None
               else self.session.range(n, partitions=n))
        stage = inp.with_resources(profile).barrier(max_attempts)
        plan = {"kind": "train", "fn": self.fn, "args": self.args, "kwargs": self.kwargs,
                "has_dataset": self.dataset is not None,
                "checkpoint_dir": self.checkpoint_dir, "use_gpu": self.use_gpu,
                "out_schema": _RESULT_SCHEMA}
        table = stage._map(plan, "distributed.run", whole=True).to_arrow()
        if table.num_rows == 0:
            raise ProtiumError(PT_ESTATE, "run: rank 0 returned no result")
        return pickle.loads(b"".join(v.as_py() for v in table.column("value")))

    def free_ranks(self) -> int:
        """Executors that could take a rank now: alive (with a gpu, with
        use_gpu) less one per task running in the session (a task may hold
        a slot of any executor)."""
        eligible, running = self.executors()
        return max(0, eligible - running)

    def executors(self) -> tuple[int, int]:
        """(executors that can run a rank, tasks running in the session)."""
        from protium import _lib

        infos = (_lib.PtExecutorInfo * 256)()
        n = ctypes.c_int64()
        err = _lib.PtError()
        _lib.check(_lib.lib().pt_session_executors(self.session._handle(), infos, 256,
                                                   ctypes.byref(n), ctypes.byref(err)), err)
        eligible = 0
        for i in range(min(n.value, 256)):
            ex = infos[i]
            if not ex.alive:
                continue
            if self.use_gpu and not any(ex.resources[r].name == b"gpu" and
                                        ex.resources[r].n_addresses > 0
                                        for r in range(ex.n_resources)):
                continue
            eligible += 1
        running = sum(j["tasks_running"] for j in self.session.jobs_progress())
        return eligible, running


def _run_elastic(job: _Job, lo: int, hi: int, max_attempts: int) -> Any:
    import shutil
    import tempfile
    import time

    from protium.session import TaskError

    made = None
    if job.checkpoint_dir is None:
        made = job.checkpoint_dir = tempfile.mkdtemp(prefix="protium-elastic-")
    wait_s = _duration_s(job.session._conf.get("barrier.admission_timeout", "60s"))
    try:
        for attempt in range(max_attempts):
            deadline = time.monotonic() + wait_s
            n = min(hi, job.free_ranks())
            while n < lo and time.monotonic() < deadline:
                time.sleep(0.05)
                n = min(hi, job.free_ranks())
            try:
                # One attempt per job: the next one is sized again.
                return job.run(max(n, lo), 1)
            except TaskError:
                if attempt + 1 >= max_attempts:
                    raise
        raise AssertionError("unreachable")
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)
            job.checkpoint_dir = None


def _duration_s(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not m:
        return 60.0
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return float(m.group(1)) * scale


# ---------------------------------------------------------------------------
# On the executors: one rank.


def _task() -> context._Task:
    task = context._current()
    if task is None or "rank" not in task.extra:
        raise ProtiumError(PT_ESTATE, "this works only inside a function run by "
                           "protium.distributed.run, on one of its ranks")
    return task


def _rank_main(plan: dict[str, Any], batches: Iterator[pa.RecordBatch]
               ) -> Iterator[pa.RecordBatch]:
    """One rank: the torch.distributed environment, then train_fn; rank 0
    yields its return value, pickled, as the stage's one row."""
    ctx = context.BarrierTaskContext.get()
    task = context._current()
    assert task is not None
    infos = ctx.task_infos()
    rank, world = ctx.partition_id(), len(infos)
    me = infos[rank]
    same_host = [i for i in infos if i.host == me.host]
    local_rank = sum(1 for i in same_host if i.partition_id < rank)
    one_host = all(i.host == infos[0].host for i in infos)
    addr = "127.0.0.1" if one_host else infos[0].host
    port, store = _master_port(ctx, rank, world, addr, infos[0].port)
    env = {"MASTER_ADDR": addr, "MASTER_PORT": str(port), "RANK": str(rank),
           "WORLD_SIZE": str(world), "LOCAL_RANK": str(local_rank),
           "LOCAL_WORLD_SIZE": str(len(same_host))}
    if store is not None:
        env["TORCHELASTIC_USE_AGENT_STORE"] = "True"
    saved = {k: os.environ.get(k) for k in _ENV_VARS}
    task.extra.update(rank=rank, dataset=batches if plan["has_dataset"] else None,
                      checkpoint_dir=plan["checkpoint_dir"] or ctx.checkpoint_dir(),
                      torch_dataset=None)
    try:
        os.environ.update(env)
        if isinstance(plan["fn"], str):
            result = _run_script(plan["fn"], plan["args"], task)
        else:
            result = plan["fn"](*plan["args"], **plan["kwargs"])
        _end_torch()
        # The store rank 0 holds must outlive every rank's use of it.
        ctx.barrier()
    finally:
        _end_torch()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        del store  # rank 0 stops the rendezvous store it hosted
    if rank == 0:
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        yield pa.RecordBatch.from_arrays([pa.array([data], pa.large_binary())],
                                         schema=_RESULT_SCHEMA)


def _master_port(ctx: Any, rank: int, world: int, addr: str, engine_port: int
                 ) -> tuple[int, Any]:
    """The rendezvous port. With torch installed, rank 0 starts the c10d
    TCPStore itself on a port the kernel picks and keeps bound (no window
    between choosing and listening), and every rank learns it through
    all_gather; init_process_group() then connects to that store as
    torchelastic's agent store. Without torch: the port the engine chose
    for rank 0 (task_infos)."""
    if importlib.util.find_spec("torch") is None:
        return engine_port, None
    import torch.distributed as dist

    store = None
    port = 0
    if rank == 0:
        store = dist.TCPStore(addr, 0, world, True, timedelta(minutes=30),
                              wait_for_workers=False)
        port = store.port
    port = int(ctx.all_gather(str(port))[0])
    return port, store


def _end_torch() -> None:
    """A process group the function left behind would make the next
    init_process_group in this executor fail."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _run_script(path: str, args: tuple[Any, ...], task: context._Task) -> None:
    """The script as a child process with the rank's environment; it dies
    with the executor (PR_SET_PDEATHSIG), so stopping a rank stops it."""
    def die_with_parent() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    env = dict(os.environ)
    cmd = [sys.executable, path, *map(str, args)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, preexec_fn=die_with_parent)
    _, err = proc.communicate()
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace")[-600:]
        raise RuntimeError(f"{os.path.basename(path)} exited with status {proc.returncode} "
                           f"on rank {task.extra['rank']}:\n{tail}")
    return None


def get_dataset_iterator() -> Iterator[pa.RecordBatch]:
    """Inside run(..., dataset=ds): this rank's partition of ds, as an
    iterator of pyarrow.RecordBatch read from the engine as it goes (one
    pass; get_torch_dataset() can go over it again)."""
    task = _task()
    batches = task.extra.get("dataset")
    if batches is None:
        raise ProtiumError(PT_ESTATE, "get_dataset_iterator: run() was given no dataset; "
                           "pass dataset=ds")
    return batches


def get_torch_dataset(columns: Optional[list[str]] = None,
                      batch_size: Optional[int] = None) -> Any:
    """Inside run(..., dataset=ds): a torch.utils.data.IterableDataset over
    this rank's partition. Each item is a dict of column name ->
    torch.Tensor for a batch of rows (batch_size rows, or the engine's
    batches as they come); use DataLoader(ds, batch_size=None). The first
    pass reads from the engine and keeps the batches, so later epochs go
    over them again. columns: the columns to take (default: every numeric
    and boolean one). Tensors are copies of the engine's
    (immutable) buffers."""
    task = _task()
    cached = task.extra.get("torch_dataset")
    if cached is None:
        cached = _make_torch_dataset(get_dataset_iterator())
        task.extra["torch_dataset"] = cached
    return cached.view(columns, batch_size)


def _make_torch_dataset(batches: Iterator[pa.RecordBatch]) -> Any:
    import torch
    from torch.utils.data import IterableDataset

    class _Source:
        def __init__(self) -> None:
            self.kept: list[pa.RecordBatch] = []
            self.done = False

        def batches(self) -> Iterator[pa.RecordBatch]:
            if self.done:
                yield from self.kept
                return
            for b in batches:
                self.kept.append(b)
                yield b
            self.done = True

        def view(self, columns: Optional[list[str]], batch_size: Optional[int]) -> Any:
            return EngineBatches(self, columns, batch_size)

    class EngineBatches(IterableDataset):  # type: ignore[misc,type-arg]
        """This rank's partition as dicts of column tensors."""

        def __init__(self, source: _Source, columns: Optional[list[str]],
                     batch_size: Optional[int]) -> None:
            self.source, self.columns, self.batch_size = source, columns, batch_size

        def __iter__(self) -> Iterator[dict[str, Any]]:
            for batch in self.source.batches():
                step = self.batch_size or max(batch.num_rows, 1)
                for off in range(0, batch.num_rows, step):
                    part = batch.slice(off, step)
                    out = {}
                    for name in self.columns or part.schema.names:
                        col = part.column(name)
                        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                                or pa.types.is_boolean(col.type)):
                            if self.columns is None:
                                continue
                            raise TypeError(f"get_torch_dataset: column {name!r} is "
                                            f"{col.type}; tensors take numbers and booleans")
                        # A copy: the engine's buffers are immutable (a mapped
                        # file, for one), a tensor is writable.
                        out[name] = torch.from_numpy(col.to_numpy(zero_copy_only=False).copy())
                    yield out

    return _Source()


def save_checkpoint(state: dict[str, Any], step: int) -> None:
    """Inside run(): saves state (model and optimizer state dicts, anything
    picklable) as the checkpoint of `step`. Rank 0 writes, the others
    return at once; the file is written beside the old one and renamed
    over it, so a rank killed meanwhile leaves the previous checkpoint."""
    task = _task()
    if task.extra["rank"] != 0:
        return
    d = task.extra["checkpoint_dir"]
    os.makedirs(d, exist_ok=True)
    final = os.path.join(d, _CHECKPOINT)
    tmp = f"{final}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        pickle.dump({"step": int(step), "state": state}, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)


def load_checkpoint() -> Optional[tuple[dict[str, Any], int]]:
    """Inside run(): (state, step) of the last save_checkpoint, or None
    when there is none yet (the first attempt)."""
    task = _task()
    path = os.path.join(task.extra["checkpoint_dir"], _CHECKPOINT)
    try:
        with open(path, "rb") as f:
            saved = pickle.load(f)
    except FileNotFoundError:
        return None
    return saved["state"], saved["step"]
