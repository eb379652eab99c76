"""test_py_stats.py — Dataset.last_job() and Session.job_stats(): the
engine's counts of a finished job (pt_dataset_last_job,
pt_session_job_stats) as JobStats and StageStats, against real executors:
a two-stage job's stages, a failed job's causes and retries, and the
errors before any job ran.
"""

from __future__ import annotations

import pytest

import protium as pt
from protium.stats import CAUSE_ERROR


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]", conf={"task.max_failures": "2"}) as s:
        yield s


def test_no_job_yet_is_an_error(session):
    with pytest.raises(pt.ProtiumError, match="no action has run on this dataset yet"):
        session.range(10).last_job()


def test_a_shuffle_job_has_a_map_and_a_result_stage(session):
    ds = session.range(10_000, partitions=4).repartition(3)
    assert ds.count() == 10_000
    job = ds.last_job()
    assert job.status == 0 and job.executors_lost == 0
    assert [(s.partitions, s.is_map) for s in job.stages] == [(4, True), (3, False)]
    first, second = job.stages
    assert first.tasks_launched == first.tasks_succeeded == 4
    assert first.rows_read == first.rows_written == 10_000 and first.bytes_written > 0
    assert second.rows_read == 10_000 and second.bytes_read == first.bytes_written
    assert second.tasks_failed == 0 and second.failed_by_cause == (0, 0, 0, 0, 0)
    total = job.total()
    assert total.tasks_launched == 7 and total.rows_read == 20_000
    assert total.stage_id == first.stage_id and total.lost_partitions == ()
    # the session's last job is this one, by number too
    assert session.job_stats() == job
    assert session.job_stats(job.job_id) == job


def test_a_failed_job_counts_its_failures(session):
    def boom(it):
        for b in it:
            if b.column(0)[0].as_py() == 0:
                raise ValueError("no zero")
            yield b

    ds = session.range(100, partitions=2).map_in_arrow(boom, schema=session.range(1).schema)
    with pytest.raises(pt.TaskError, match="no zero"):
        ds.count()
    job = ds.last_job()
    assert job.status != 0
    (stage,) = job.stages
    # partition 0 failed twice (task.max_failures 2), retried once
    assert stage.failed_by_cause[CAUSE_ERROR] == 2 == stage.tasks_failed
    assert stage.tasks_retried == 1
    # the next job on another dataset does not change what ds reports
    assert session.range(5).count() == 5
    assert ds.last_job() == job
    assert session.job_stats().job_id == job.job_id + 1
