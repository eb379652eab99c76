"""protium — Python binding of libprotium, a data-parallel engine in C.

This package is thin: the work happens in libprotium.so (found through
PT_LIBRARY, PT_BUILD_DIR or ../build of a source checkout; see
protium._lib), and data crosses to and from pyarrow through the Arrow C Data
Interface.

    import protium as pt
    with pt.Session("local[2]") as s:
        ds = s.range(1_000_000, partitions=4)
        ds = ds.with_column("y", lambda x: x * 2, columns=["id"])
        print(ds.count(), ds.take(3))

Submodules:

    protium.session Session, Dataset, GroupedData, TaskError (the engine; also here)
    protium.schema  DDL schema strings ("id long, y double")
    protium.arrow   Arrow IPC read/write, validate, copy, slice (needs pyarrow)
    protium.parquet Parquet read (columns, row-group filters) and write (needs pyarrow)
    protium.context TaskContext, BarrierTaskContext (inside a task; also here)
    protium.resources ResourceProfile (stage-level resources; also here)
    protium.distributed run() (distributed training), its dataset and checkpoint helpers
    protium.kafka   Kafka topic offsets; Session.read_kafka, Dataset.write_kafka
    protium.stream  streaming queries (Session.read_stream) and pt.cache
    protium.stats   JobStats, StageStats (Dataset.last_job, Session.job_stats; also here)
"""

from __future__ import annotations

from protium._lib import ProtiumError, lib
from protium import distributed
from protium.context import BarrierTaskContext, BarrierTaskInfo, ResourceInformation, TaskContext
from protium.resources import ResourceProfile
from protium.schema import parse_ddl
from protium.session import Dataset, GroupedData, Session, TaskError
from protium.stats import JobStats, StageStats
from protium import kafka  # noqa: E402,F401 - adds Session.read_kafka, Dataset.write_kafka
from protium.stream import StreamingQuery, StreamingQueryException, cache

__all__ = ["BarrierTaskContext", "BarrierTaskInfo", "Dataset", "GroupedData", "JobStats",
           "ProtiumError", "ResourceInformation", "ResourceProfile", "Session", "StageStats",
           "StreamingQuery",
           "StreamingQueryException", "TaskContext", "TaskError", "cache", "distributed",
           "parse_ddl", "version"]


def version() -> str:
    """Version of the loaded libprotium, "MAJOR.MINOR.PATCH"."""
    return lib().pt_version().decode()
