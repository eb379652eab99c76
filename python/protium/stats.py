"""stats.py — what a finished job did, as the engine counted it
(pt_dataset_last_job, pt_session_job_stats): JobStats and its StageStats,
whose fields are those of pt_job_stats and pt_stage_stats in protium.h.
Dataset.last_job() and Session.job_stats() return them."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field, fields
from typing import Any

from protium import _lib

# The indices of StageStats.failed_by_cause (PT_CAUSE_* of protium.h).
CAUSE_ERROR, CAUSE_TIMEOUT, CAUSE_EXECUTOR_LOST, CAUSE_FETCH_FAILED, CAUSE_KILLED = range(5)


@dataclass(frozen=True)
class StageStats:
    """One attempt of one stage (a stage runs again under a new attempt
    when a map output it reads was lost). failed_by_cause counts the failed
    task attempts by CAUSE_* index; lost_partitions names the map outputs
    lost, in order of loss."""

    stage_id: int
    attempt: int
    partitions: int
    is_map: bool
    tasks_launched: int
    tasks_succeeded: int
    tasks_failed: int
    failed_by_cause: tuple[int, ...]
    tasks_retried: int
    tasks_requeued: int
    tasks_duplicate: int
    tasks_orphaned: int
    outputs_lost: int
    lost_partitions: tuple[int, ...]
    rows_read: int
    bytes_read: int
    rows_written: int
    bytes_written: int
    task_time_us: int
    duration_us: int
    parquet_pages_read: int
    parquet_pages_skipped: int
    event_time_ms: int
    kafka_producers: int


@dataclass(frozen=True)
class JobStats:
    """A finished job (failed ones too): status is 0 (PT_OK) or the code
    its action failed with; stages are the stage attempts that launched
    tasks, in order of their first launch; total() sums them."""

    job_id: int
    status: int
    duration_us: int
    executors_lost: int
    executors_started: int
    stages: tuple[StageStats, ...]
    _total: StageStats = field(repr=False, compare=False)

    def total(self) -> StageStats:
        """The counts of every stage attempt added up (stage_id, attempt
        and partitions of the first; lost_partitions empty), as
        pt_job_stats_total gives them."""
        return self._total


def _stage(st: _lib.PtStageStats) -> StageStats:
    values: dict[str, Any] = {}
    for f in fields(StageStats):
        v = getattr(st, f.name)
        if f.name == "failed_by_cause":
            v = tuple(v)
        elif f.name == "lost_partitions":
            v = tuple(v[i] for i in range(st.outputs_lost)) if v else ()
        elif f.name == "is_map":
            v = bool(v)
        values[f.name] = v
    return StageStats(**values)


def _job(ptr: Any) -> JobStats:
    """JobStats of a pt_job_stats the caller owns (and frees)."""
    job = ptr.contents
    total = _lib.PtStageStats()
    _lib.lib().pt_job_stats_total(ptr, ctypes.byref(total))
    return JobStats(job_id=job.job_id, status=job.status, duration_us=job.duration_us,
                    executors_lost=job.executors_lost, executors_started=job.executors_started,
                    stages=tuple(_stage(job.stages[i]) for i in range(job.n_stages)),
                    _total=_stage(total))


def fetch(fn: Any, *args: Any) -> JobStats:
    """fn(*args, &out, &err) (pt_dataset_last_job or pt_session_job_stats)
    as JobStats; its errors raised as ProtiumError."""
    out = ctypes.POINTER(_lib.PtJobStats)()
    err = _lib.PtError()
    _lib.check(fn(*args, ctypes.byref(out), ctypes.byref(err)), err)
    try:
        return _job(out)
    finally:
        _lib.lib().pt_job_stats_free(out)
