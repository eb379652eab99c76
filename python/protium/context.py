"""context.py — what a running task knows of itself, from inside a Python
function on an executor: TaskContext (every stage) and BarrierTaskContext
(barrier stages: barrier(), all_gather(), task_infos()), named and behaving
as PySpark's, over the engine's pt_ctx_* services.

The executor runs each task on a thread of its own; the worker sets the
task's context in a thread-local for as long as the user function runs.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Any, Optional, Union

from protium import _lib
from protium._lib import PT_ESTATE, ProtiumError, PtError, PtTaskInfo

__all__ = ["BarrierTaskContext", "BarrierTaskInfo", "ResourceInformation", "TaskContext"]

_local = threading.local()


@dataclass(frozen=True)
class ResourceInformation:
    """A resource a task holds (PySpark's ResourceInformation): its name
    ("gpu") and the addresses the scheduler gave the task."""

    name: str
    addresses: list[str]


@dataclass(frozen=True)
class BarrierTaskInfo:
    """One task of a barrier stage attempt. `address` is "host:port" as in
    PySpark; `port` is a TCP port the engine picked for this task, free when
    the attempt started and unique within it."""

    partition_id: int
    executor_id: int
    pid: int
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class _Task:
    """The thread-local state of one running task (set by protium._worker)."""

    def __init__(self, ctx: Any, stage: dict[str, Any]) -> None:
        self.ctx = ctx  # the pt_task_context pointer, valid while the task runs
        self.stage = stage  # what the plan says of the stage: cpus, resources, barrier
        self.extra: dict[str, Any] = {}  # protium.distributed's per-task state


def _enter(ctx: Any, stage: dict[str, Any]) -> _Task:
    task = _Task(ctx, stage)
    _local.task = task
    return task


def _leave() -> None:
    _local.task = None


def _current() -> Optional[_Task]:
    return getattr(_local, "task", None)


def _check(rc: int, err: PtError) -> None:
    _lib.check(rc, err)


class TaskContext:
    """The running task's context (PySpark's TaskContext). `TaskContext.get()`
    inside a function run by the engine returns it; on the driver it returns
    None. camelCase aliases (partitionId, attemptNumber, ...) let PySpark
    code port unchanged."""

    def __init__(self, task: _Task) -> None:
        self._task = task

    @classmethod
    def get(cls) -> Optional["TaskContext"]:
        """The context of the task running on this thread: a
        BarrierTaskContext in a barrier stage; None outside a task."""
        task = _current()
        if task is None:
            return None
        if task.stage.get("barrier"):
            return BarrierTaskContext(task)
        return TaskContext(task)

    @property
    def _ctx(self) -> Any:
        if _current() is not self._task:
            raise ProtiumError(PT_ESTATE, "this task context is no longer valid: its task "
                               "ended; call TaskContext.get() inside the running function")
        return self._task.ctx

    def partition_id(self) -> int:
        """The partition this task computes (0-based)."""
        return int(_lib.lib().pt_ctx_partition_id(self._ctx))

    def num_partitions(self) -> int:
        """The number of tasks (partitions) of the stage."""
        return int(_lib.lib().pt_ctx_num_tasks(self._ctx))

    def attempt_number(self) -> int:
        """How many times this task was tried before: 0 on the first attempt."""
        return int(_lib.lib().pt_ctx_task_attempt(self._ctx))

    def stage_attempt_number(self) -> int:
        """How many times the whole stage ran before (a rerun barrier stage,
        a map stage resubmitted for lost output): 0 on the first."""
        return int(_lib.lib().pt_ctx_stage_attempt(self._ctx))

    def stage_id(self) -> int:
        """The stage's id within its job."""
        return int(ctypes.cast(self._ctx, ctypes.POINTER(_lib.PtTaskContext)).contents.stage_id)

    def cpus(self) -> int:
        """The executor slots this task takes (its resource profile's cpus;
        1 by default)."""
        return int(self._task.stage.get("cpus") or 1)

    def resources(self) -> dict[str, ResourceInformation]:
        """The resources the task holds, by name ("gpu"): each with the
        addresses the scheduler gave it. A name the task's profile asked for
        optionally and did not get is absent."""
        out: dict[str, ResourceInformation] = {}
        lib = _lib.lib()
        for name in self._task.stage.get("resource_names", ()):
            addrs = ctypes.POINTER(ctypes.c_char_p)()
            n = ctypes.c_int64()
            err = PtError()
            _check(lib.pt_ctx_resources(self._ctx, name.encode(), ctypes.byref(addrs),
                                        ctypes.byref(n), ctypes.byref(err)), err)
            if n.value > 0:
                out[name] = ResourceInformation(
                    name, [(addrs[i] or b"").decode() for i in range(n.value)])
        return out

    def checkpoint_dir(self) -> str:
        """A directory of the stage, the same in every attempt of it and
        shared by its tasks (so an attempt can resume from what a failed one
        saved); removed when the job ends."""
        path = ctypes.c_char_p()
        err = PtError()
        _check(_lib.lib().pt_ctx_checkpoint_dir(self._ctx, ctypes.byref(path),
                                                ctypes.byref(err)), err)
        return (path.value or b"").decode()

    # PySpark's names.
    partitionId = partition_id
    attemptNumber = attempt_number
    stageAttemptNumber = stage_attempt_number
    stageId = stage_id


class BarrierTaskContext(TaskContext):
    """The context of a task of a barrier stage (PySpark's
    BarrierTaskContext): every TaskContext method plus barrier(),
    all_gather() and task_infos(). A failure of any of them (another task
    failed, barrier.timeout passed) raises ProtiumError; the stage attempt
    is then stopped and runs again whole."""

    @classmethod
    def get(cls) -> "BarrierTaskContext":
        """The context of the barrier task running on this thread; raises
        ProtiumError anywhere else (on the driver, in an ordinary stage)."""
        task = _current()
        if task is None or not task.stage.get("barrier"):
            where = "the driver" if task is None else "an ordinary stage"
            raise ProtiumError(PT_ESTATE, f"BarrierTaskContext.get() called in {where}; it "
                               "exists only inside a function of a barrier stage "
                               "(ds.barrier().map_partitions(fn))")
        return BarrierTaskContext(task)

    def barrier(self) -> None:
        """Waits until every task of the stage attempt has called barrier()
        as often as this one."""
        err = PtError()
        _check(_lib.lib().pt_ctx_barrier(self._ctx, ctypes.byref(err)), err)

    def all_gather(self, message: Union[bytes, str] = "") -> list[Any]:
        """A barrier that exchanges data: every task gives a message and
        gets every task's, ordered by partition id. str messages come back
        as str, bytes as bytes."""
        is_str = isinstance(message, str)
        if not is_str and not isinstance(message, (bytes, bytearray, memoryview)):
            raise TypeError(f"all_gather: the message must be str or bytes, "
                            f"got {type(message).__name__}")
        data = message.encode() if is_str else bytes(message)
        n = self.num_partitions()
        sizes = (ctypes.c_size_t * max(n, 1))()
        out = ctypes.c_void_p()
        err = PtError()
        _check(_lib.lib().pt_ctx_all_gather(self._ctx, data, len(data), ctypes.byref(out),
                                            sizes, ctypes.byref(err)), err)
        try:
            parts: list[Any] = []
            off = 0
            for i in range(n):
                chunk = ctypes.string_at(out.value + off, sizes[i]) if sizes[i] else b""
                off += sizes[i]
                parts.append(chunk.decode() if is_str else chunk)
            return parts
        finally:
            if out.value:
                _lib.libc().free(out.value)

    def task_infos(self) -> list[BarrierTaskInfo]:
        """Every task of the stage attempt, by partition id."""
        infos = ctypes.c_void_p()
        n = ctypes.c_int64()
        err = PtError()
        _check(_lib.lib().pt_ctx_task_infos(self._ctx, ctypes.byref(infos), ctypes.byref(n),
                                            ctypes.byref(err)), err)
        arr = ctypes.cast(infos, ctypes.POINTER(PtTaskInfo))
        return [BarrierTaskInfo(int(arr[i].partition), int(arr[i].executor_id),
                                int(arr[i].pid), arr[i].host.decode(), int(arr[i].port))
                for i in range(n.value)]

    allGather = all_gather
    getTaskInfos = task_infos
