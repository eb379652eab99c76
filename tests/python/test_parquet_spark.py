"""Parquet and Spark: files written by PySpark (tests/data/parquet/spark_*,
made by make_spark_files.py: INT96 timestamps, legacy two-level lists and
maps, decimals as FIXED_LEN_BYTE_ARRAY) read by protium as pyarrow reads
them; a file protium writes read back by PySpark (in the Spark
environment of the Delta tests, .venv-spark: spark_delta.py) with the
same values; files with nested (list, struct, map, list of structs),
decimal and timestamp columns in every codec and page version read by
PySpark (one session) and DuckDB value for value;
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


def _interop_table(n: int = 60) -> pa.Table:
    """Nested (list, struct, map, list of structs), decimal and timestamp
    columns with nulls at every level, for the codec x page version files."""
    return pa.table({
        "id": pa.array(range(n), pa.int64()),
        "dec": pa.array([None if i % 6 == 0 else Decimal(i * 37 - 900) / 1000 for i in range(n)],
                        pa.decimal128(12, 3)),
        "dec38": pa.array([Decimal(10**27 + i) / 10**10 for i in range(n)], pa.decimal128(38, 10)),
        "ts": pa.array([None if i % 5 == 1 else 1_700_000_000_123_456 + i * 3_600_000_001
                        for i in range(n)], pa.timestamp("us", "UTC")),
        "ts_ms": pa.array([1_600_000_000_000 + i * 86_400_123 for i in range(n)],
                          pa.timestamp("ms", "UTC")),
        "lst": pa.array([None if i % 7 == 2 else [None if j == 1 else i + j for j in range(i % 4)]
                         for i in range(n)], pa.list_(pa.int32())),
        "st": pa.array([None if i % 8 == 3 else {"a": i * 11, "b": None if i % 3 else f"s{i}"}
                        for i in range(n)], pa.struct([("a", pa.int64()), ("b", pa.string())])),
        "mp": pa.array([None if i % 9 == 4 else [(f"k{j}", None if j == 2 else i * j)
                                                 for j in range(i % 4)] for i in range(n)],
                       pa.map_(pa.string(), pa.int64())),
        "lst_st": pa.array([[{"x": i / 2 + j, "y": f"y{j}" if j else None} for j in range(i % 3)]
                            for i in range(n)],
                           pa.list_(pa.struct([("x", pa.float64()), ("y", pa.string())]))),
    })


def _norm(v):
    """A value as JSON can carry it, the same from pyarrow, PySpark and
    DuckDB: decimals as text, timestamps as UTC wall-clock text, maps as
    sorted pairs."""
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    if isinstance(v, list) and v and all(isinstance(x, tuple) and len(x) == 2 for x in v):
        return sorted([k, _norm(x)] for k, x in v)
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    return v


def _rows_of(table: pa.Table, maps: tuple = ("mp",)) -> list:
    rows = []
    for r in table.to_pylist():
        for m in maps:
            if isinstance(r[m], dict):
                r[m] = list(r[m].items())
        rows.append(_norm(r))
    return rows


SPARK_CODECS = ["none", "snappy", "gzip", "zstd", "lz4_raw"]


def test_spark_and_duckdb_read_every_codec_and_nested(tmp_path: Path) -> None:
    """Protium files with nested, decimal and timestamp columns, in every
    codec Spark reads (and brotli for DuckDB) and both page versions, read
    by PySpark (one session for all) and DuckDB value for value."""
    table = _interop_table()
    want = _rows_of(table)
    files = {}
    for codec in SPARK_CODECS + ["brotli"]:
        for version in (1, 2):
            path = tmp_path / f"{codec}-v{version}.parquet"
            ptq.write_parquet(table, path, codec=codec, data_page_version=version,
                              row_group_rows=25, page_bytes=200)
            files[(codec, version)] = path
    import duckdb

    for (codec, version), path in files.items():
        got = duckdb.sql(f"SELECT * FROM read_parquet('{path}') ORDER BY id").arrow().read_all()
        assert _rows_of(got) == want, (codec, version)
    spark_delta.require()
    spark_files = [str(p) for (codec, _), p in files.items() if codec in SPARK_CODECS]
    script = textwrap.dedent(f"""
        import json
        from pyspark.sql import SparkSession
        s = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
        def norm(v):
            from decimal import Decimal
            import datetime
            if isinstance(v, Decimal):
                return str(v)
            if isinstance(v, datetime.datetime):
                return v.strftime("%Y-%m-%d %H:%M:%S.%f")
            if isinstance(v, dict):
                return {{k: norm(x) for k, x in v.items()}}
            if isinstance(v, (list, tuple)):
                return [norm(x) for x in v]
            return v
        for path in {spark_files!r}:
            df = s.read.parquet(path)
            rows = []
            for r in df.orderBy("id").collect():
                d = r.asDict(recursive=True)
                if d["mp"] is not None:
                    d["mp"] = sorted([k, norm(x)] for k, x in d["mp"].items())
                rows.append(norm(d))
            print("FILE" + json.dumps([path, df.schema.simpleString(), rows]))
        s.stop()
    """)
    r = subprocess.run([str(SPARK_PYTHON), "-c", script], capture_output=True, text=True,
                       timeout=900, env={**__import__("os").environ, "TZ": "UTC"})
    assert r.returncode == 0, r.stderr[-2000:]
    outputs = [json.loads(line[4:]) for line in r.stdout.splitlines() if line.startswith("FILE")]
    assert [o[0] for o in outputs] == spark_files
    for path, schema, rows in outputs:
        assert schema == ("struct<id:bigint,dec:decimal(12,3),dec38:decimal(38,10),"
                          "ts:timestamp,ts_ms:timestamp,lst:array<int>,st:struct<a:bigint,"
                          "b:string>,mp:map<string,bigint>,lst_st:array<struct<x:double,"
                          "y:string>>>"), path
        assert rows == want, path
