"""test_py_parquet_engine.py — Parquet through the Python engine API with real
executors: Session.read_parquet (projection, filters that skip row groups,
Hive directories and, in the tasks, pages) against pyarrow's reading, Dataset.write_parquet
(codecs, options) read back by pyarrow, parquet.read.threads in the tasks,
and partition_by's Hive-style
directories (escapes, nulls, every key type) read back by protium and by
pyarrow.dataset with partitioning="hive", compared row for row.
"""

from __future__ import annotations

import datetime
import os

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import protium as pt
from protium import ProtiumError


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]", conf={"parquet.partition_bytes": "20000"}) as s:
        yield s


def _sorted(table: pa.Table, *keys: str) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in keys])


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """Two files of 4000 rows each, row groups of 500 sorted by id."""
    d = tmp_path_factory.mktemp("events")
    tables = []
    for f in range(2):
        ids = list(range(f * 4000, (f + 1) * 4000))
        t = pa.table({
            "id": pa.array(ids, pa.int64()),
            "user": pa.array([f"u{i % 37}" if i % 11 else None for i in ids]),
            "score": pa.array([i * 0.5 for i in ids], pa.float64()),
        })
        pq.write_table(t, d / f"part-{f}.parquet", row_group_size=500)
        tables.append(t)
    return d, pa.concat_tables(tables)


def test_read_parquet_matches_pyarrow(session, events):
    d, table = events
    ds = session.read_parquet(d)
    assert ds.num_partitions > 1  # row groups dealt into partitions of ~20 kB
    assert ds.schema == table.schema
    assert ds.count() == 8000
    assert _sorted(ds.to_arrow(), "id").equals(_sorted(pq.read_table(d), "id"))


def test_read_parquet_threads_key(events):
    """parquet.read.threads decodes each task's row groups on that many
    threads: the same rows, in the same order; 17 is refused up front."""
    d, table = events
    with pt.Session("local[2]", conf={"parquet.partition_bytes": "20000",
                                      "parquet.read.threads": "2"}) as s:
        got = s.read_parquet(d).to_arrow()
    with pt.Session("local[2]", conf={"parquet.partition_bytes": "20000"}) as s:
        want = s.read_parquet(d).to_arrow()
    assert got.equals(want)
    assert _sorted(got, "id").equals(_sorted(pq.read_table(d), "id"))
    with pt.Session("local[1]", conf={"parquet.read.threads": "17"}) as s:
        with pytest.raises(ProtiumError) as e:
            s.read_parquet(d)
    assert str(e.value) == ("read_parquet: 17 decoding threads asked for (threads or "
                            "parquet.read.threads); give 1 to 16")


def test_read_parquet_columns_and_filter(session, events):
    d, table = events
    ds = session.read_parquet(d, columns=["score", "id"], filter=[("id", ">=", 7600)])
    out = _sorted(ds.to_arrow(), "id")
    assert out.schema.names == ["score", "id"]
    # Row groups that cannot match are not read: what is left is the last
    # row group but one (7500..7999), whole.
    assert out.num_rows == 500
    assert out.column("id").to_pylist() == list(range(7500, 8000))
    # OR of ANDs, as pyarrow takes them.
    ds = session.read_parquet(d, filter=[[("id", "<", 10)], [("id", ">", 7990)]])
    assert ds.count() == 1000


def _pages(ds: pt.Dataset) -> tuple[int, int]:
    """Data pages decoded and skipped by the last job on ds."""
    total = ds.last_job().total()
    return total.parquet_pages_read, total.parquet_pages_skipped


def test_read_parquet_tasks_skip_pages(session, tmp_path):
    """With a page index (pyarrow's write_page_index=True), the tasks pass
    over the pages the filter rules out: few pages are decoded, and the
    matching rows are exactly pyarrow's."""
    n = 60000
    table = pa.table({
        "id": pa.array(range(n), pa.int64()),
        "city": pa.array([f"c{i // 1000:03d}" for i in range(n)]),
        "v": pa.array([i * 0.25 for i in range(n)]),
    })
    path = tmp_path / "sorted.parquet"
    pq.write_table(table, path, row_group_size=30000, data_page_size=4096,
                   write_page_index=True, use_dictionary=False)
    flt = [[("id", ">=", 40000), ("id", "<", 40200)], [("city", "=", "c059")]]
    ds = session.read_parquet(path, filter=flt)
    got = ds.to_arrow()
    read, skipped = _pages(ds)
    want = pq.read_table(path, filters=flt)
    match = got.filter(((pa.compute.field("id") >= 40000) & (pa.compute.field("id") < 40200))
                       | (pa.compute.field("city") == "c059"))
    assert _sorted(match, "id").equals(_sorted(want, "id"))
    assert want.num_rows == 1200
    # The first row group is pruned by its statistics; in the second, only
    # the pages around the matches are decoded.
    assert got.num_rows < 6000
    assert skipped > 3 * read and read > 0
    # Unfiltered: every page is decoded.
    everything = session.read_parquet(path)
    assert everything.count() == n
    read_all, skipped_all = _pages(everything)
    assert skipped_all == 0 and read_all >= read + skipped


def test_read_parquet_errors(session, tmp_path):
    with pytest.raises(ProtiumError, match="does not exist"):
        session.read_parquet(tmp_path / "nope")
    with pytest.raises(ProtiumError, match="unknown filter operator"):
        session.read_parquet(tmp_path, filter=[("id", "~", 1)])


@pytest.mark.parametrize("compression", ["snappy", "zstd", "gzip", "none", "uncompressed"])
def test_write_parquet_read_back_by_pyarrow(session, events, tmp_path, compression):
    d, table = events
    out = tmp_path / "out"
    session.read_parquet(d).write_parquet(out, compression=compression, row_group_rows=300,
                                          data_page_version=2)
    names = sorted(os.listdir(out))
    assert names[0] == "_SUCCESS" and all(n.startswith("part-") for n in names[1:])
    f = pq.ParquetFile(out / names[1])
    codec = {"none": "UNCOMPRESSED", "uncompressed": "UNCOMPRESSED"}.get(
        compression, compression.upper())
    assert f.metadata.row_group(0).column(0).compression == codec
    assert f.metadata.row_group(0).num_rows <= 300
    back = pads.dataset(out, format="parquet").to_table()
    assert _sorted(back, "id").equals(_sorted(table, "id"))


def test_write_parquet_options_reach_the_executors(session, events, tmp_path):
    d, _ = events
    out = tmp_path / "out"
    session.read_parquet(d).write_parquet(out, use_dictionary=False, write_statistics=False,
                                          compression_level=9, compression="zstd")
    f = pq.ParquetFile(next(out.glob("part-*.parquet")))
    col = f.metadata.row_group(0).column(1)
    assert "RLE_DICTIONARY" not in col.encodings
    assert not col.is_stats_set


def test_write_parquet_refuses_bad_options(session, events, tmp_path):
    d, _ = events
    with pytest.raises(ProtiumError, match="unknown codec 'lzo'"):
        session.read_parquet(d).write_parquet(tmp_path / "x", compression="lzo")
    with pytest.raises(ProtiumError, match="data_page_version"):
        session.read_parquet(d).write_parquet(tmp_path / "x", data_page_version=3)
    assert not (tmp_path / "x").exists()


def _keyed_table() -> pa.Table:
    n = 600
    cities = ["Paris", "Lyon", "a/b", "x=y", "50%", "", None, "S\u00e8te", "q?#"]
    return pa.table({
        "id": pa.array(range(n), pa.int64()),
        "year": pa.array([2020 + i % 3 for i in range(n)], pa.int32()),
        "city": pa.array([cities[i % len(cities)] for i in range(n)]),
        "v": pa.array([float(i) for i in range(n)]),
    })


def test_partition_by_hive_directories_match_pyarrow(session, tmp_path):
    table = _keyed_table()
    out = tmp_path / "out"
    session.from_arrow(table, partitions=3).write_parquet(out, partition_by=["year", "city"])
    # Directory names as Hive and Spark spell them.
    dirs = {os.path.relpath(r, out) for r, _, files in os.walk(out) if files and r != str(out)}
    assert {p.split("/")[0] for p in dirs} == {"year=2020", "year=2021", "year=2022"}
    assert {p.split("/")[1] for p in dirs} == {
        "city=Paris", "city=Lyon", "city=a%2Fb", "city=x%3Dy", "city=50%25",
        "city=__HIVE_DEFAULT_PARTITION__", "city=S\u00e8te", "city=q%3F%23"}
    assert len(dirs) == 9  # i % 9 decides both keys; "" and None land in two years
    assert (out / "_SUCCESS").exists() and not (out / "_temporary").exists()
    # Each file holds the other columns only; one file per task and key.
    for r, _, files in os.walk(out):
        for f in files:
            if f.endswith(".parquet"):
                assert pq.read_schema(os.path.join(r, f)).names == ["id", "v"]
    # "" and None both become null, as in Hive and Spark.
    want = table.set_column(2, "city", pa.array(
        [c if c else None for c in table.column("city").to_pylist()]))
    # pyarrow's reading of the directories.
    ref = pads.dataset(out, format="parquet", partitioning="hive").to_table()
    ref = ref.select(["id", "year", "city", "v"])
    assert _sorted(ref, "id").equals(_sorted(want.select(["id", "year", "city", "v"]), "id"))
    # protium's reading: the same rows, keys after the file columns.
    back = session.read_parquet(out).to_arrow()
    assert back.schema.names == ["id", "v", "year", "city"]
    assert _sorted(back.select(["id", "year", "city", "v"]), "id").equals(
        _sorted(want.select(["id", "year", "city", "v"]), "id"))
    # A filter on a key reads only its directories.
    assert session.read_parquet(out, filter=[("year", "=", 2021)]).count() == 200


def test_partition_by_every_key_type(session, tmp_path):
    n = 40
    table = pa.table({
        "b": pa.array([i % 2 == 0 for i in range(n)]),
        "i8": pa.array([i % 3 - 1 for i in range(n)], pa.int8()),
        "u64": pa.array([2**64 - 1 - i % 2 for i in range(n)], pa.uint64()),
        "f": pa.array([0.5 * (i % 2) + 1 for i in range(n)], pa.float64()),
        "d": pa.array([datetime.date(2024, 5, 1 + i % 2) for i in range(n)], pa.date32()),
        "ls": pa.array([f"k{i % 2}" for i in range(n)], pa.large_string()),
        "x": pa.array(range(n), pa.int64()),
    })
    out = tmp_path / "out"
    keys = ["b", "i8", "u64", "f", "d", "ls"]
    session.from_arrow(table, partitions=2).write_parquet(out, partition_by=keys)
    leaf = {os.path.relpath(r, out) for r, _, files in os.walk(out) if files and r != str(out)}
    assert "b=true/i8=-1/u64=18446744073709551615/f=1.0/d=2024-05-01/ls=k0" in leaf
    assert "b=false/i8=0/u64=18446744073709551614/f=1.5/d=2024-05-02/ls=k1" in leaf
    ref = pads.dataset(out, format="parquet", partitioning="hive").to_table()
    got = {(r["x"], str(r["b"]).lower(), r["i8"], str(r["u64"]), str(r["f"]), str(r["d"]), r["ls"])
           for r in ref.to_pylist()}
    want = {(r["x"], str(r["b"]).lower(), r["i8"], str(r["u64"]), str(r["f"]), str(r["d"]), r["ls"])
            for r in table.to_pylist()}
    assert got == want


def test_partition_by_errors(session, tmp_path):
    table = pa.table({"id": [1, 2], "l": pa.array([[1], [2]]), "k": ["a", "b"]})
    ds = session.from_arrow(table)
    with pytest.raises(ProtiumError, match="partition_by column 'nope' is not a column"):
        ds.write_parquet(tmp_path / "a", partition_by=["nope"])
    with pytest.raises(ProtiumError, match="cannot partition by column 'l' of type list"):
        ds.write_parquet(tmp_path / "a", partition_by=["l"])
    with pytest.raises(ProtiumError, match="names 'k' twice"):
        ds.write_parquet(tmp_path / "a", partition_by=["k", "k"])
    with pytest.raises(ProtiumError, match="partition_by names every column"):
        session.from_arrow(table.select(["id", "k"])).write_parquet(
            tmp_path / "a", partition_by=["id", "k"])
    assert not (tmp_path / "a").exists()
    # A single name is taken as a list of one.
    ds.write_parquet(tmp_path / "b", partition_by="k")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["_SUCCESS", "k=a", "k=b"]


def test_partition_keys_of_every_type_round_trip(session, tmp_path):
    """Timestamp, decimal, binary and date keys: written as Spark spells
    them, inferred as Spark infers them (dates as date32, timestamps,
    fractional decimals as doubles, binary as strings), read back exactly
    with a partition schema, and read by pyarrow.dataset the same."""
    import decimal

    n = 12
    table = pa.table({
        "x": pa.array(range(n), pa.int64()),
        "ts": pa.array([datetime.datetime(2024, 5, 1, 10, 30, i % 2, 250000 * (i % 3))
                        for i in range(n)], pa.timestamp("us")),
        "dec": pa.array([decimal.Decimal("12.34") * (i % 2) - decimal.Decimal("1.5")
                         for i in range(n)], pa.decimal128(6, 2)),
        "bin": pa.array([b"a/b" if i % 2 else b"\x01z" for i in range(n)], pa.binary()),
        "day": pa.array([datetime.date(2024, 5, 1 + i % 3) for i in range(n)], pa.date32()),
    })
    out = tmp_path / "out"
    keys = ["ts", "dec", "bin", "day"]
    session.from_arrow(table, partitions=2).write_parquet(out, partition_by=keys)
    leaf = {os.path.relpath(r, out) for r, _, files in os.walk(out) if files and r != str(out)}
    assert "ts=2024-05-01 10%3A30%3A01.25/dec=10.84/bin=a%2Fb/day=2024-05-02" in leaf
    assert "ts=2024-05-01 10%3A30%3A00/dec=-1.50/bin=%01z/day=2024-05-01" in leaf
    inferred = session.read_parquet(out).to_arrow()
    assert inferred.schema == pa.schema([("x", pa.int64()), ("ts", pa.timestamp("us")),
                                         ("dec", pa.float64()), ("bin", pa.string()),
                                         ("day", pa.date32())])
    assert _sorted(inferred, "x").column("dec").to_pylist() == [
        float(v) for v in table.column("dec").to_pylist()]
    typed = session.read_parquet(out, partition_schema=pa.schema(
        [("dec", pa.decimal128(6, 2)), ("bin", pa.binary())])).to_arrow()
    assert _sorted(typed, "x").select(table.column_names).equals(table)
    # pyarrow, told the types (it cannot parse decimals from paths: text).
    part = pads.partitioning(pa.schema([("ts", pa.timestamp("us")), ("dec", pa.string()),
                                        ("bin", pa.binary()), ("day", pa.date32())]),
                             flavor="hive")
    ref = _sorted(pads.dataset(out, format="parquet", partitioning=part).to_table(), "x")
    same = ["x", "ts", "bin", "day"]
    assert ref.select(same).equals(table.select(same))
    assert ref.column("dec").to_pylist() == [str(v) for v in table.column("dec").to_pylist()]
    # Filters on date keys take dates; on timestamps they keep everything.
    assert session.read_parquet(out, filter=[("day", ">=", datetime.date(2024, 5, 2))]).count() == 8
    assert session.read_parquet(out, filter=[("day", "=", "2024-05-03")]).count() == 4


def test_partition_inference_follows_spark(session, tmp_path):
    """Directories pyarrow writes (its own spelling of dates and
    timestamps), and Spark's rules: integers past bigint as decimal(p, 0),
    a date among timestamps widens to a timestamp, a partition schema
    overrides, and a value that does not read as its type is an error."""
    n = 6
    table = pa.table({
        "x": pa.array(range(n), pa.int64()),
        "day": pa.array([datetime.date(2023, 12, 30 + i % 2) for i in range(n)], pa.date32()),
        "big": pa.array([str(10**20 + i % 2) for i in range(n)]),
        "when": pa.array(["2024-01-01", "2024-01-01 00:00:01"] * 3),
    })
    out = tmp_path / "pa"
    pads.write_dataset(table, out, format="parquet", partitioning=["day", "big", "when"],
                       partitioning_flavor="hive")
    got = session.read_parquet(out).to_arrow()
    assert got.schema == pa.schema([("x", pa.int64()), ("day", pa.date32()),
                                    ("big", pa.decimal128(21, 0)), ("when", pa.timestamp("us"))])
    got = _sorted(got, "x")
    assert got.column("day").equals(table.column("day"))
    assert [str(v) for v in got.column("big").to_pylist()] == table.column("big").to_pylist()
    assert got.column("when").to_pylist()[:2] == [datetime.datetime(2024, 1, 1),
                                                   datetime.datetime(2024, 1, 1, 0, 0, 1)]
    as_text = session.read_parquet(out, partition_schema="day string").to_arrow()
    assert as_text.schema.field("day").type == pa.string()
    assert sorted(set(as_text.column("day").to_pylist())) == ["2023-12-30", "2023-12-31"]
    with pytest.raises(ProtiumError, match="partition key 'when' has the value '2024-01-01 00:00:01', "
                                           "which is not a date32"):
        session.read_parquet(out, partition_schema="when date")
    with pytest.raises(ProtiumError, match="names 'nope', which is not a key"):
        session.read_parquet(out, partition_schema="nope int")
