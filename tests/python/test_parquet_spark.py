"""Parquet and Spark: files written by PySpark (tests/data/parquet/spark_*,
made by make_spark_files.py: INT96 timestamps, legacy two-level lists and
maps, decimals as FIXED_LEN_BYTE_ARRAY) read by protium as pyarrow reads
them; a file protium writes read back by PySpark (in the Spark
environment of the Delta tests, .venv-spark: spark_delta.py) with the
same values;
and Hive-style directories with date, timestamp and decimal keys both ways,
typed alike by Spark's inference and protium's (but for a key that is null in every
directory: Spark 4 says void, protium utf8).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import textwrap
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import protium as pt
import protium.parquet as ptq
import spark_delta
from conftest import ROOT
from test_parquet_read import same_values

DATA = ROOT / "tests" / "data" / "parquet"
SPARK_PYTHON = spark_delta.SPARK_PYTHON


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


def test_spark_reads_protium_files(tmp_path: Path) -> None:
    spark_delta.require()
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
    # Hive-style directories both ways: protium's partition_by with date,
    # timestamp and decimal keys read by Spark, and Spark's partitionBy
    # read by protium (below).
    ours, theirs, nulls = tmp_path / "ours", tmp_path / "theirs", tmp_path / "nulls"
    with pt.Session("local[1]") as s:
        s.from_arrow(table.select(["id", "day", "amount"]).slice(0, 6).append_column(
            "t", pa.array([datetime.datetime(2024, 5, 1, 10, 30, i % 2, 500000 * (i % 2))
                           for i in range(6)], pa.timestamp("us")))
        ).write_parquet(ours, partition_by=["day", "t", "amount"])
    # One Spark session (its start is most of the time) does it all.
    script = textwrap.dedent(f"""
        import json
        from decimal import Decimal
        from pyspark.sql import SparkSession, functions as F
        s = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
        for path in {[str(p) for p in paths]!r}:
            df = s.read.parquet(path)
            rows = [[r.id, r.i32, r.score, r.name, r.flag, str(r.day),
                     r.ts.strftime("%Y-%m-%d %H:%M:%S.%f"), str(r.amount)]
                    for r in df.orderBy("id").collect()]
            print("ROWS" + json.dumps(rows))
        df = s.read.parquet({str(ours)!r})
        print("OURS" + json.dumps([df.schema.simpleString()] + [
            [r.id, str(r.day), r.t.strftime("%Y-%m-%d %H:%M:%S.%f"), str(r.amount)]
            for r in df.orderBy("id").collect()]))
        df = s.createDataFrame(
            [(i, f"2024-05-0{{1 + i % 2}}", f"2024-05-01 10:30:0{{i % 2}}.5",
              Decimal(10**20 + i % 2), i * 0.5) for i in range(6)],
            "x long, d string, t string, big decimal(21,0), v double")
        df = df.withColumn("d", F.to_date("d")).withColumn("t", F.to_timestamp("t"))
        df.write.partitionBy("d", "t", "big").parquet({str(theirs)!r})
        print("THEIRS" + s.read.parquet({str(theirs)!r}).schema.simpleString())
        s.createDataFrame([(i, None) for i in range(4)], "x long, k string").write.partitionBy(
            "k").parquet({str(nulls)!r})
        print("NULLS" + s.read.parquet({str(nulls)!r}).schema.simpleString())
        s.stop()
    """)
    r = subprocess.run([str(SPARK_PYTHON), "-c", script], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    outputs = [line[4:] for line in r.stdout.splitlines() if line.startswith("ROWS")]
    assert len(outputs) == 2
    want = [[row["id"], row["i32"], row["score"], row["name"], row["flag"], str(row["day"]),
             row["ts"].strftime("%Y-%m-%d %H:%M:%S.%f"), str(row["amount"])]
            for row in table.to_pylist()]
    for out in outputs:
        assert json.loads(out) == want
    ours_out = json.loads([line[4:] for line in r.stdout.splitlines() if line.startswith("OURS")][0])
    # Spark infers what protium wrote: dates, timestamps, decimals (as
    # doubles: they have a fraction, so Spark's inference gives double).
    assert ours_out[0] == "struct<id:bigint,day:date,t:timestamp,amount:double>"
    assert ours_out[1:] == [
        [i, str(table.column("day")[i].as_py()),
         f"2024-05-01 10:30:0{i % 2}.{500000 * (i % 2):06d}",
         str(float(table.column("amount")[i].as_py()))] for i in range(6)]
    theirs_schema = [line[6:] for line in r.stdout.splitlines() if line.startswith("THEIRS")][0]
    assert theirs_schema == "struct<x:bigint,v:double,d:date,t:timestamp,big:decimal(21,0)>"
    with pt.Session("local[1]") as s:
        got = s.read_parquet(theirs).to_arrow().sort_by("x")
    assert got.schema == pa.schema([("x", pa.int64()), ("v", pa.float64()), ("d", pa.date32()),
                                    ("t", pa.timestamp("us")), ("big", pa.decimal128(21, 0))])
    assert got.column("d").to_pylist() == [datetime.date(2024, 5, 1 + i % 2) for i in range(6)]
    assert got.column("t").to_pylist() == [datetime.datetime(2024, 5, 1, 10, 30, i % 2, 500000)
                                           for i in range(6)]
    assert got.column("big").to_pylist() == [Decimal(10**20 + i % 2) for i in range(6)]
    # A key that is null in every directory (__HIVE_DEFAULT_PARTITION__):
    # Spark 4 types it void (NullType), no number; protium reads the same
    # nulls as utf8, a type that filters and partition_by can take.
    nulls_schema = [line[5:] for line in r.stdout.splitlines() if line.startswith("NULLS")][0]
    assert nulls_schema == "struct<x:bigint,k:void>"
    assert [p.name for p in nulls.iterdir() if p.is_dir()] == ["k=__HIVE_DEFAULT_PARTITION__"]
    with pt.Session("local[1]") as s:
        got = s.read_parquet(nulls).to_arrow().sort_by("x")
    assert got.schema == pa.schema([("x", pa.int64()), ("k", pa.string())])
    assert got.column("k").to_pylist() == [None] * 4
