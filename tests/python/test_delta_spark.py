"""test_delta_spark.py — Delta Lake tables between protium and Spark's own
Delta source (PySpark with delta-spark, versions pinned in
python/requirements-spark.txt, one Spark session for the module:
spark_delta.py). Tables delta-spark writes (every type both share,
partitioned by strings, booleans, dates, timestamps and ints or not;
filters pruning files by Spark's stats and partition values; several
commits with overwrite, DELETE and UPDATE making removes;
checkpoints by delta.checkpointInterval, read with the commits before
them gone; versions by time travel) read by protium as Spark reads them;
tables protium writes (create, append, overwrite, partitioned,
replace_where; a checkpoint after protium's appends to a Spark table)
read by delta-spark as protium reads them; delta-spark appending to and deleting
from a protium table, then protium reading it; tables with deletion
vectors or column mapping refused by protium with the feature's name.
"""

from __future__ import annotations

import datetime
import decimal
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

import protium as pt
import spark_delta
from protium import ProtiumError

UTC = datetime.timezone.utc

# The columns of every_type as Spark types them.
DDL = ("id long, b boolean, i8 byte, i16 short, i32 int, f32 float, f64 double, s string, "
       "bin binary, d date, ts timestamp, tsn timestamp_ntz, dec decimal(9,2), "
       "big decimal(38,6), arr array<int>, m map<string,long>, "
       "st struct<x:int,y:string,z:array<string>>, "
       "part string, pb boolean, pd date, pts timestamp, pn timestamp_ntz, pi int")


def every_type(n: int, offset: int = 0) -> pa.Table:
    """A column of every type Delta, Spark and protium share, nulls
    included; the p* columns have few values, to partition by."""
    def nul(v, i):
        return None if i % 7 == 3 else v

    rows = range(offset, offset + n)
    return pa.table({
        "id": pa.array(list(rows), pa.int64()),
        "b": pa.array([nul(i % 2 == 0, i) for i in rows], pa.bool_()),
        "i8": pa.array([nul(i % 100 - 50, i) for i in rows], pa.int8()),
        "i16": pa.array([nul(i * 3 - 1000, i) for i in rows], pa.int16()),
        "i32": pa.array([nul(i * 100_003 - 2**31 + 5, i) for i in rows], pa.int32()),
        "f32": pa.array([nul(i / 4 - 3, i) for i in rows], pa.float32()),
        "f64": pa.array([nul(i * 1.5e200 - 3e-300, i) for i in rows], pa.float64()),
        "s": pa.array([nul(f"s{i}é中\U0001f600", i) for i in rows]),
        "bin": pa.array([nul(bytes([i % 256, 0, 255]), i) for i in rows], pa.binary()),
        "d": pa.array([nul(datetime.date(1960, 1, 1) + datetime.timedelta(days=i * 370), i)
                       for i in rows]),
        "ts": pa.array([nul(datetime.datetime(1969, 12, 31, 23, tzinfo=UTC)
                            + datetime.timedelta(seconds=i * 3607, microseconds=i), i)
                        for i in rows], pa.timestamp("us", tz="UTC")),
        "tsn": pa.array([nul(datetime.datetime(2020, 2, 29) + datetime.timedelta(minutes=i,
                                                                                microseconds=i), i)
                         for i in rows], pa.timestamp("us")),
        "dec": pa.array([nul(decimal.Decimal(i * 7 - 300) / 100, i) for i in rows],
                        pa.decimal128(9, 2)),
        "big": pa.array([nul(decimal.Decimal(10**31 * (i - 20) + i) / 10**6, i) for i in rows],
                        pa.decimal128(38, 6)),
        "arr": pa.array([nul([i, None, i + 1][: i % 4], i) for i in rows], pa.list_(pa.int32())),
        "m": pa.array([nul([(f"k{i}", i), ("z", None)][: i % 3], i) for i in rows],
                      pa.map_(pa.string(), pa.int64())),
        "st": pa.array([nul({"x": i, "y": nul(str(i), i + 1), "z": [str(i)] * (i % 3)}, i)
                        for i in rows],
                       pa.struct([("x", pa.int32()), ("y", pa.string()),
                                  ("z", pa.list_(pa.string()))])),
        "part": pa.array([["a", "b b", None, "c/d=é"][i % 4] for i in rows]),
        "pb": pa.array([[True, False, None][i % 3] for i in rows], pa.bool_()),
        "pd": pa.array([[datetime.date(2024, 1, 31), None][i % 2] for i in rows]),
        "pts": pa.array([[datetime.datetime(2024, 5, 1, 10, 30, 1, 500, tzinfo=UTC),
                          datetime.datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC), None][i % 3]
                         for i in rows], pa.timestamp("us", tz="UTC")),
        "pn": pa.array([[datetime.datetime(2024, 5, 1, 10, 30), None][i % 2] for i in rows],
                       pa.timestamp("us")),
        "pi": pa.array([[-1, 7, None][i % 3] for i in rows], pa.int32()),
    })


def write_ipc(table: pa.Table, path: Path) -> str:
    with pa.OSFile(str(path), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    return str(path)


def read_ipc(path: Path) -> pa.Table:
    with pa.OSFile(str(path), "rb") as f:
        return pa.ipc.open_file(f).read_all()


def plain(t: pa.DataType) -> str:
    """A type spelled without what differs between equal readings: large
    or small offsets, nested field names, nullability."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    if pa.types.is_map(t):
        return f"map<{plain(t.key_type)},{plain(t.item_type)}>"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{plain(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{plain(f.type)}" for f in t) + ">"
    return str(t)


def same(got: pa.Table, want: pa.Table) -> None:
    """protium's reading `got` equals Spark's `want`: the same columns in the
    same order, the same types, the same rows (by id)."""
    assert got.column_names == want.column_names
    assert [plain(f.type) for f in got.schema] == [plain(f.type) for f in want.schema]
    want = want.cast(got.schema)
    assert got.sort_by("id").to_pylist() == want.sort_by("id").to_pylist()


@pytest.fixture(scope="module")
def spark():
    spark_delta.require()
    s = spark_delta.Spark()
    yield s
    s.close()


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]") as s:
        yield s


def read(session, path, **kw) -> pa.Table:
    return session.read_delta(path, **kw).to_arrow()


# --------------------------------------------------------------------------
# Tables delta-spark writes, read by protium

PARTITIONINGS = [None, ["part", "pb"], ["pd", "pts", "pn", "pi"]]


def test_read_every_type_written_by_spark(spark, session, tmp_path):
    first = write_ipc(every_type(30), tmp_path / "first.arrow")
    second = write_ipc(every_type(20, offset=30), tmp_path / "second.arrow")
    tables = [str(tmp_path / f"t{k}") for k in range(len(PARTITIONINGS))]
    outs = [str(tmp_path / f"t{k}.arrow") for k in range(len(PARTITIONINGS))]
    schemas = spark.run(f"""
result = []
for path, parts, out in zip({tables!r}, {PARTITIONINGS!r}, {outs!r}):
    w = frame({first!r}, {DDL!r}).write.format("delta")
    (w.partitionBy(*parts) if parts else w).save(path)
    frame({second!r}, {DDL!r}).write.format("delta").mode("append").save(path)
    result.append(save_arrow(spark.read.format("delta").load(path), out))
""")
    for path, out, (schema, rows), parts in zip(tables, outs, schemas, PARTITIONINGS):
        assert rows == 50
        got = read(session, path)
        same(got, read_ipc(Path(out)))
        # The values written, in the table schema's order (partition
        # columns among the others, as Spark reads them too).
        assert got.sort_by("id") == every_type(50).cast(got.schema)
        # Files pruned by Spark's stats (timestamps in ms, strings,
        # decimals) and partition values never hold a matching row.
        want = read_ipc(Path(out)).cast(got.schema)
        for flt, expr, skips in prunings(parts):
            ds = session.read_delta(path, filter=flt)
            ids = sorted(ds.to_arrow().filter(expr)["id"].to_pylist())
            assert ids and ids == sorted(want.filter(expr)["id"].to_pylist()), flt
            assert ds.delta_scan()["files_skipped"] >= skips, flt


def prunings(parts):
    """Filters, the same as pyarrow expressions, and how many files each
    must skip at least on a table of every_type(30) then (20, offset=30)."""
    ts30 = datetime.datetime(1969, 12, 31, 23, tzinfo=UTC) + datetime.timedelta(seconds=30 * 3607,
                                                                               microseconds=30)
    f = pa.compute.field
    plain_table = not parts
    return [
        ([("id", ">=", 30)], f("id") >= 30, 1 if plain_table else 0),
        ([("ts", ">=", ts30)], f("ts") >= pa.scalar(ts30, pa.timestamp("us", tz="UTC")),
         1 if plain_table else 0),
        ([("s", "=", "s32é中\U0001f600")], f("s") == "s32é中\U0001f600", 0),
        ([("dec", ">", decimal.Decimal("0.05"))],
         f("dec") > pa.scalar(decimal.Decimal("0.05"), pa.decimal128(9, 2)),
         1 if plain_table else 0),
        ([("pd", "=", datetime.date(2024, 1, 31))],
         f("pd") == pa.scalar(datetime.date(2024, 1, 31)), 1 if parts and "pd" in parts else 0),
    ]


def test_spark_commits_with_removes_checkpoints_and_time_travel(spark, session, tmp_path):
    data = [write_ipc(every_type(20, offset=20 * k), tmp_path / f"d{k}.arrow") for k in range(3)]
    path = str(tmp_path / "t")
    versions = [1, 3, 5, 6]  # two JSON commits; after each checkpoint; the latest
    outs = {v: str(tmp_path / f"v{v}.arrow") for v in versions}
    spark.run(f"""
path = {path!r}
spark.sql(f"CREATE TABLE delta.`{{path}}` ({DDL}) USING delta PARTITIONED BY (part) "
          "TBLPROPERTIES ('delta.checkpointInterval' = '2')")                  # v0
frame({data[0]!r}, {DDL!r}).write.format("delta").mode("append").save(path)   # v1
frame({data[1]!r}, {DDL!r}).write.format("delta").mode("append").save(path)   # v2, checkpoint
frame({data[2]!r}, {DDL!r}).write.format("delta").mode("overwrite").save(path)  # v3: removes all
spark.sql(f"DELETE FROM delta.`{{path}}` WHERE id % 3 = 0")                    # v4, checkpoint
spark.sql(f"UPDATE delta.`{{path}}` SET s = 'updated', i32 = NULL WHERE id < 47")  # v5
frame({data[0]!r}, {DDL!r}).where("id < 5").write.format("delta").mode("append").save(path)  # v6
for v, out in {outs!r}.items():
    save_arrow(spark.read.format("delta").option("versionAsOf", v).load(path), out)
""")
    log = Path(path) / "_delta_log"
    assert (log / "00000000000000000002.checkpoint.parquet").exists()
    assert (log / "00000000000000000004.checkpoint.parquet").exists()
    for v in versions:  # time travel, across checkpoints, removes and rewrites
        ds = session.read_delta(path, version=v)
        assert ds.delta_scan()["version"] == v
        same(ds.to_arrow(), read_ipc(Path(outs[v])))
    latest = read(session, path)
    assert latest.num_rows == 14 + 5
    assert sorted(latest.filter(pa.compute.equal(latest["s"], "updated"))["id"].to_pylist()) == \
        [40, 41, 43, 44, 46]
    # From Spark's checkpoint alone, the commits before it gone.
    alone = tmp_path / "alone"
    shutil.copytree(path, alone)
    for v in range(5):
        (alone / "_delta_log" / f"{v:020d}.json").unlink()
    same(read(session, alone), read_ipc(Path(outs[6])))
    with pytest.raises(ProtiumError, match="missing"):
        session.read_delta(alone, version=3).count()

    # protium appends to Spark's table: version 8 is a multiple of its
    # checkpointInterval, so protium writes that checkpoint; Spark reads the
    # table from it (the commits before it gone).
    session.from_arrow(every_type(4, offset=300)).write_delta(path, mode="append")
    session.from_arrow(every_type(4, offset=400)).write_delta(path, mode="append")
    assert (log / "00000000000000000008.checkpoint.parquet").exists()
    for v in range(8):
        (log / f"{v:020d}.json").unlink()
    out = str(tmp_path / "after.arrow")
    assert spark.run(f"""
result = save_arrow(spark.read.format("delta").load({path!r}), {out!r})""")[1] == 19 + 8
    same(read(session, path), read_ipc(Path(out)))


# --------------------------------------------------------------------------
# Tables protium writes, read (and then written) by delta-spark

def test_spark_reads_and_writes_protium_tables(spark, session, tmp_path):
    plain_t, parted, replaced = (str(tmp_path / n) for n in ("plain", "parted", "replaced"))
    # Every type: a create and an append.
    session.from_arrow(every_type(30), partitions=2).write_delta(plain_t)
    session.from_arrow(every_type(20, offset=30)).write_delta(plain_t, mode="append")
    # Partitioned by every kind of key: a create, then an overwrite (removes).
    parts = ["part", "pb", "pd", "pts", "pn", "pi"]
    session.from_arrow(every_type(40)).write_delta(parted, partition_by=parts)
    session.from_arrow(every_type(25, offset=100)).write_delta(parted, mode="overwrite")
    # replace_where on a partition column and on a data column.
    session.from_arrow(every_type(40)).write_delta(replaced, partition_by=["part"])
    session.from_arrow(every_type(40).filter(pa.compute.equal(every_type(40)["part"], "a"))
                       .slice(0, 3)).write_delta(replaced, mode="overwrite",
                                                 replace_where="part = 'a'")
    fresh = every_type(4, offset=1000)
    fresh = fresh.set_column(0, "id", pa.array([1000, 1001, 1002, 1004], pa.int64()))
    fresh = fresh.set_column(fresh.column_names.index("part"), "part", pa.array(["b b"] * 4))
    session.from_arrow(fresh).write_delta(replaced, mode="overwrite",
                                          replace_where=[[("id", ">=", 1000)], [("id", "<", 6)]])

    tables = {"plain": plain_t, "plain0": plain_t, "parted": parted, "replaced": replaced}
    outs = {k: str(tmp_path / f"{k}.arrow") for k in tables}
    got = spark.run(f"""
outs = {outs!r}
result = {{}}
for name, path in {tables!r}.items():
    r = spark.read.format("delta")
    if name == "plain0":
        r = r.option("versionAsOf", 0)
    result[name] = save_arrow(r.load(path), outs[name])
""")
    assert got["plain"][1] == 50 and got["plain0"][1] == 30 and got["parted"][1] == 25
    for name, path in tables.items():
        version = 0 if name == "plain0" else None
        same(read(session, path, version=version), read_ipc(Path(outs[name])))
    # The rows replace_where left: 'a' held ids 0, 4 and 8 after the first,
    # the second took every id under 6 and added the fresh ones.
    ids = sorted(read(session, replaced)["id"].to_pylist())
    assert ids == sorted([i for i in range(6, 40) if i % 4 != 0] + [8, 1000, 1001, 1002, 1004])
    # Both readers' histories of it: the predicate and the metrics, as
    # delta-spark writes them for its own replaceWhere.
    hist = spark.run(f"""
from delta.tables import DeltaTable
h = DeltaTable.forPath(spark, {replaced!r}).history().orderBy("version").collect()
result = [[r["version"], r["operation"], dict(r["operationParameters"]),
           dict(r["operationMetrics"] or {{}})] for r in h]
""")
    assert [h[0] for h in hist] == [0, 1, 2] and {h[1] for h in hist} == {"WRITE"}
    assert hist[1][2]["predicate"] == "part = 'a'"
    assert hist[2][2]["predicate"] == "id >= 1000 OR id < 6"
    assert hist[2][2]["mode"] == "Overwrite"
    assert int(hist[2][3]["numOutputRows"]) == 4 + int(hist[2][3]["numCopiedRows"])
    deltalake = pytest.importorskip("deltalake")
    theirs = deltalake.DeltaTable(replaced).history()
    assert [h["operationParameters"].get("predicate") for h in theirs] == [
        "id >= 1000 OR id < 6", "part = 'a'", None]

    # delta-spark appends to and deletes from protium's tables; protium
    # reads what Spark reads.
    more = write_ipc(every_type(10, offset=500), tmp_path / "more.arrow")
    after = {k: str(tmp_path / f"after-{k}.arrow") for k in ("plain", "parted")}
    spark.run(f"""
for name, path in (("plain", {plain_t!r}), ("parted", {parted!r})):
    frame({more!r}, {DDL!r}).write.format("delta").mode("append").save(path)
    spark.sql(f"DELETE FROM delta.`{{path}}` WHERE id % 5 = 1")
    save_arrow(spark.read.format("delta").load(path), {after!r}[name])
""")
    for name, path in (("plain", plain_t), ("parted", parted)):
        same(read(session, path), read_ipc(Path(after[name])))
    assert read(session, plain_t).num_rows == 60 - 12
    # ... and protium appends after Spark again.
    session.from_arrow(every_type(5, offset=700)).write_delta(plain_t, mode="append")
    assert spark.run(f"result = spark.read.format('delta').load({plain_t!r}).count()") == 53


# --------------------------------------------------------------------------
# What protium refuses

def test_spark_tables_with_unsupported_reader_features_are_refused(spark, session, tmp_path):
    dv, cm = str(tmp_path / "dv"), str(tmp_path / "cm")
    spark.run(f"""
spark.sql("CREATE TABLE delta.`{dv}` (id long, s string) USING delta "
          "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
spark.range(100).selectExpr("id", "cast(id as string) s").write.format("delta").mode("append").save({dv!r})
spark.sql("DELETE FROM delta.`{dv}` WHERE id = 5")
spark.sql("CREATE TABLE delta.`{cm}` (id long, s string) USING delta "
          "TBLPROPERTIES ('delta.columnMapping.mode' = 'name')")
spark.range(10).selectExpr("id", "cast(id as string) s").write.format("delta").mode("append").save({cm!r})
""")
    with pytest.raises(ProtiumError, match="deletion vector .*reader feature deletionVectors"):
        session.read_delta(dv).count()
    with pytest.raises(ProtiumError, match="deletion vector .*reader feature deletionVectors"):
        session.from_arrow(pa.table({"id": pa.array([1], pa.int64()), "s": ["x"]})).write_delta(
            dv, mode="append")
    # Before the DELETE no file has a deletion vector; the protocol says
    # the table may have them.
    with pytest.raises(ProtiumError, match="reader feature 'deletionVectors'"):
        session.read_delta(dv, version=1).count()
    with pytest.raises(ProtiumError, match="reader feature 'columnMapping' \\(mode name\\)"):
        session.read_delta(cm).count()
    # The refused write committed nothing and left nothing behind.
    assert sorted(p.name for p in (Path(dv) / "_delta_log").glob("*.json")) == \
        [f"{v:020d}.json" for v in range(3)]
    assert not list(Path(dv).glob("_temporary*"))
