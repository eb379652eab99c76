"""Parquet and Spark: files written by PySpark (tests/data/parquet/spark_*,
made by make_spark_files.py: INT96 timestamps, legacy two-level lists and
maps, decimals as FIXED_LEN_BYTE_ARRAY) read by protium as pyarrow reads
them; and a file protium writes read back by PySpark (in the benchmark
environment, .venv-bench; skipped where it is missing) with the same values.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import protium.parquet as ptq
from conftest import ROOT
from test_parquet_read import same_values

DATA = ROOT / "tests" / "data" / "parquet"
SPARK_PYTHON = ROOT / ".venv-bench" / "bin" / "python"


@pytest.mark.parametrize("name", ["spark_default", "spark_legacy"])
def test_spark_files(name: str) -> None:
    path = DATA / f"{name}.parquet"
    got = ptq.read_parquet(path).read_all()
    want = pq.read_table(path)
    same_values(got, want)
    assert got.num_rows == 40
    assert got.schema.field("ts").type == pa.timestamp("ns")  # INT96, as pyarrow reads it
    assert got.column("tags").to_pylist()[:3] == [None, [0, 1], [0, 1, 2]]
    assert got.column("amount").to_pylist()[1] == Decimal("0.143")
    assert got.schema.metadata[b"org.apache.spark.version"]


def spark_available() -> bool:
    if not SPARK_PYTHON.exists():
        return False
    r = subprocess.run([str(SPARK_PYTHON), "-c", "import pyspark"], capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not spark_available(), reason="PySpark (.venv-bench) is not installed")
def test_spark_reads_protium_files(tmp_path: Path) -> None:
    table = pa.table({
        "id": pa.array(range(50), pa.int64()),
        "i32": pa.array([None if i % 7 == 0 else i - 25 for i in range(50)], pa.int32()),
        "score": pa.array([i / 4 for i in range(50)]),
        "name": pa.array([None if i % 5 == 0 else f"n{i % 6}" for i in range(50)]),
        "flag": pa.array([i % 3 == 0 for i in range(50)]),
        "day": pa.array(range(19000, 19050), pa.date32()),
        "ts": pa.array([1_600_000_000_000_000 + i for i in range(50)], pa.timestamp("us", "UTC")),
        "amount": pa.array([Decimal(i) / 8 for i in range(50)], pa.decimal128(10, 3)),
    })
    paths = []
    for version in (1, 2):
        paths.append(tmp_path / f"p{version}.parquet")
        ptq.write_parquet(table, paths[-1], data_page_version=version, row_group_rows=20)
    # One Spark session (its start is most of the time) reads both files.
    script = textwrap.dedent(f"""
        import json
        from pyspark.sql import SparkSession
        s = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
        for path in {[str(p) for p in paths]!r}:
            df = s.read.parquet(path)
            rows = [[r.id, r.i32, r.score, r.name, r.flag, str(r.day),
                     r.ts.strftime("%Y-%m-%d %H:%M:%S.%f"), str(r.amount)]
                    for r in df.orderBy("id").collect()]
            print("ROWS" + json.dumps(rows))
        s.stop()
    """)
    r = subprocess.run([str(SPARK_PYTHON), "-c", script], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    outputs = [line[4:] for line in r.stdout.splitlines() if line.startswith("ROWS")]
    assert len(outputs) == 2
    want = [[row["id"], row["i32"], row["score"], row["name"], row["flag"], str(row["day"]),
             row["ts"].strftime("%Y-%m-%d %H:%M:%S.%f"), str(row["amount"])]
            for row in table.to_pylist()]
    for out in outputs:
        assert json.loads(out) == want
