"""test_py_parquet_engine.py — Parquet through the Python engine API with real
executors: Session.read_parquet (projection, filters that skip row groups,
Hive directories and, in the tasks, pages; a directory's schema metadata)
against pyarrow's reading, Dataset.write_parquet
(codecs, options) read back by pyarrow, parquet.read.threads in the tasks,
and partition_by's Hive-style
directories (escapes, nulls, every key type) read back by protium and by
pyarrow.dataset with partitioning="hive", compared row for row; the save
modes; and exactly-once under faults (an attempt killed or failing mid-file,
a job that always fails, a commit that fails part-way).
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
    with pytest.raises(ProtiumError) as e:
        ds.write_parquet(tmp_path / "a", partition_by=["l"])
    assert str(e.value) == (
        "write_parquet: cannot partition by column 'l' of type list<int64>; partition by "
        "boolean, integer, float, decimal, string, binary, date32 or timestamp columns")
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


def _files(d) -> list[str]:
    return sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)


def test_write_parquet_modes(session, tmp_path):
    """PySpark's save modes: error refuses a directory with files, ignore
    leaves it alone, append adds files beside the old ones, overwrite
    replaces them; each leaves no _temporary."""
    one = pa.table({"id": pa.array(range(10), pa.int64()), "k": ["a", "b"] * 5})
    two = pa.table({"id": pa.array(range(100, 130), pa.int64()), "k": ["b", "c", "d"] * 10})
    out = tmp_path / "out"
    session.from_arrow(one, partitions=2).write_parquet(out)
    before = _files(out)
    for mode in (None, "error", "errorifexists", "ERROR"):
        with pytest.raises(ProtiumError, match="is not empty"):
            session.from_arrow(two).write_parquet(out, mode=mode)
    session.from_arrow(two).write_parquet(out, mode="ignore")
    assert _files(out) == before
    session.from_arrow(two, partitions=3).write_parquet(out, "append")
    ids = sorted(pads.dataset(out, format="parquet").to_table().column("id").to_pylist())
    assert ids == list(range(10)) + list(range(100, 130))
    assert set(before) < set(_files(out)) and len(_files(out)) == len(before) + 3
    session.from_arrow(two, partitions=2).write_parquet(out, mode="overwrite")
    assert _files(out) == ["_SUCCESS", "part-00000.parquet", "part-00001.parquet"]
    ids = sorted(pads.dataset(out, format="parquet").to_table().column("id").to_pylist())
    assert ids == list(range(100, 130))
    # partitionBy (PySpark's spelling) with append and overwrite.
    hive = tmp_path / "hive"
    session.from_arrow(one, partitions=2).write_parquet(hive, partitionBy=["k"])
    session.from_arrow(two, partitions=2).write_parquet(hive, mode="append", partitionBy="k")
    ref = pads.dataset(hive, format="parquet", partitioning="hive").to_table()
    want = sorted([(i, k) for i, k in zip(one["id"].to_pylist(), one["k"].to_pylist())]
                  + [(i, k) for i, k in zip(two["id"].to_pylist(), two["k"].to_pylist())])
    assert sorted(zip(ref["id"].to_pylist(), ref["k"].to_pylist())) == want
    session.from_arrow(one, partitions=1).write_parquet(hive, mode="overwrite", partitionBy="k")
    assert _files(hive) == ["_SUCCESS", "k=a/part-00000.parquet", "k=b/part-00000.parquet"]
    with pytest.raises(ValueError, match="mode must be one of"):
        session.from_arrow(one).write_parquet(tmp_path / "x", mode="upsert")
    with pytest.raises(ValueError, match="not both"):
        session.from_arrow(one).write_parquet(tmp_path / "x", partition_by="k", partitionBy="k")
    assert not (tmp_path / "x").exists()


def test_write_parquet_metadata(session, tmp_path):
    """The dataset's schema metadata and the extra pairs (which win on a
    shared key) reach every file's footer through the executors, with
    partition_by too."""
    table = pa.table({"id": pa.array(range(20), pa.int64()), "k": ["a", "b"] * 10})
    table = table.replace_schema_metadata({"source": "events", "owner": "x"})
    for part in (None, ["k"]):
        out = tmp_path / f"out-{bool(part)}"
        session.from_arrow(table, partitions=2).write_parquet(
            out, partition_by=part, metadata={"job": "nightly", "owner": "ml"})
        files = [f for f in _files(out) if f.endswith(".parquet")]
        assert len(files) == (4 if part else 2)
        for f in files:
            kv = pq.read_metadata(out / f).metadata
            assert (kv[b"job"], kv[b"owner"], kv[b"source"]) == (b"nightly", b"ml", b"events")
            assert pq.read_schema(out / f).metadata[b"job"] == b"nightly"
        f = next(p for p in files if p.endswith(".parquet"))
        assert pt.parquet.read_parquet(out / f).read_all().schema.metadata[b"owner"] == b"ml"


def test_read_parquet_directory_metadata(session, tmp_path):
    """A directory's dataset carries its files' schema metadata, plain and
    Hive-partitioned, as pyarrow.dataset reads it."""
    table = pa.table({"id": pa.array(range(20), pa.int64()), "k": ["a", "b"] * 10})
    for part in (None, ["k"]):
        out = tmp_path / f"out-{bool(part)}"
        session.from_arrow(table, partitions=2).write_parquet(
            out, partition_by=part, metadata={"job": "nightly"})
        got = session.read_parquet(out).schema.metadata
        assert got == pads.dataset(out, partitioning="hive").schema.metadata
        assert got[b"job"] == b"nightly"


def test_read_parquet_directory_metadata_differs(session, tmp_path):
    """Files whose metadata differ: the first file's (by path), not merged,
    as pyarrow.dataset; a first file without any gives none."""
    t = pa.table({"x": pa.array([1, 2], pa.int64())})
    for hive in (False, True):
        for first, second in (({"k": "a", "only": "1"}, {"k": "b"}), (None, {"k": "b"})):
            d = tmp_path / f"{hive}-{first is None}"
            paths = [d / "y=1" / "p.parquet", d / "y=2" / "p.parquet"] if hive else \
                [d / "a.parquet", d / "b.parquet"]
            for p, md in zip(paths, (first, second)):
                p.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(t.replace_schema_metadata(md), p)
            got = session.read_parquet(d).schema.metadata
            want = pads.dataset(d, partitioning="hive" if hive else None).schema.metadata
            assert got == want
            assert got == ({k.encode(): v.encode() for k, v in first.items()} if first else None)


def _faulty(flag: str, how: str):
    """A map_in_arrow function adding a key column k. Partition 1's second
    batch (ids from 300; the first is already in the task's Parquet file)
    ends its attempt: once (the flag file says it did) by killing its
    executor ("exit") or raising ("raise"), or on every attempt
    ("always")."""

    def fn(it):
        import os

        import pyarrow as pa

        for b in it:
            ids = b.column(0)
            if ids[0].as_py() == 300 and (how == "always" or not os.path.exists(flag)):
                open(flag, "w").close()
                if how == "exit":
                    os._exit(3)
                raise RuntimeError(f"task fails mid-file ({how})")
            keys = pa.array([f"k{v % 3}" for v in ids.to_pylist()])
            yield pa.record_batch([ids, keys], names=["id", "k"])

    return fn


def _snapshot(d) -> dict:
    """Every file below d and its bytes."""
    return {f: (d / f).read_bytes() for f in _files(d)}


@pytest.mark.parametrize("how", ["exit", "raise"])
def test_write_parquet_exactly_once_when_an_attempt_dies_mid_file(tmp_path, how):
    """An attempt that dies after writing part of its file (its executor
    killed, or the task failing) is retried: every row is committed exactly
    once, plain and partition_by, and no attempt file is left."""
    conf = {"range.batch_rows": "100", "task.max_failures": "3"}
    with pt.Session("local[2]", conf=conf) as s:
        for part in (None, "k"):
            flag = tmp_path / f"flag-{part}"
            out = tmp_path / f"out-{part}"
            ds = s.range(600, partitions=3).map_in_arrow(_faulty(str(flag), how),
                                                         schema="id long, k string")
            ds.write_parquet(out, partition_by=part, row_group_rows=30)
            assert flag.exists()  # the fault happened
            files = _files(out)
            assert "_SUCCESS" in files and not any("_temporary" in f for f in files)
            if part:
                assert sorted(files) == ["_SUCCESS"] + [
                    f"k=k{k}/part-0000{p}.parquet" for k in range(3) for p in range(3)]
                back = pads.dataset(out, format="parquet", partitioning="hive").to_table()
            else:
                assert files == ["_SUCCESS"] + [f"part-0000{p}.parquet" for p in range(3)]
                back = pads.dataset(out, format="parquet").to_table()
            rows = sorted(zip(back["id"].to_pylist(), back["k"].to_pylist()))
            assert rows == [(i, f"k{i % 3}") for i in range(600)]
            job = ds.last_job()
            assert job.stages[0].tasks_failed >= 1


def test_write_parquet_failed_job_leaves_the_directory_as_it_was(tmp_path):
    """A job whose task always fails commits nothing in any mode; a commit
    that fails part-way (a file stands where a partition directory must go)
    takes back what it moved."""
    conf = {"range.batch_rows": "100", "task.max_failures": "2"}
    good = pa.table({"id": pa.array(range(9), pa.int64()), "k": [f"k{i % 3}" for i in range(9)]})
    with pt.Session("local[2]", conf=conf) as s:
        for part in (None, "k"):
            out = tmp_path / f"out-{part}"
            s.from_arrow(good, partitions=2).write_parquet(out, partition_by=part)
            before = _snapshot(out)
            bad = s.range(600, partitions=3).map_in_arrow(
                _faulty(str(tmp_path / "flag"), "always"), schema="id long, k string")
            for mode in ("error", "append", "overwrite", "ignore"):
                if mode == "ignore":
                    bad.write_parquet(out, mode=mode, partition_by=part)  # nothing runs
                else:
                    with pytest.raises(ProtiumError):
                        bad.write_parquet(out, mode=mode, partition_by=part)
                assert _snapshot(out) == before, mode
            with pytest.raises(ProtiumError, match="fails mid-file"):
                bad.write_parquet(tmp_path / f"new-{part}", partition_by=part)
            assert not (tmp_path / f"new-{part}").exists()
        # The commit of a partitioned append cannot make k=k1/: what it
        # moved into k=k0/ and k=k2/ is taken back.
        out = tmp_path / "blocked"
        s.from_arrow(good, partitions=2).write_parquet(out, partition_by="k")
        (out / "k=k1").rename(tmp_path / "k1-aside")
        (out / "k=k1").write_bytes(b"a file where a directory must go")
        before = _snapshot(out)
        with pytest.raises(ProtiumError, match="cannot commit partition"):
            s.from_arrow(good, partitions=2).write_parquet(out, mode="append", partitionBy="k")
        assert _snapshot(out) == before
        assert sorted(os.listdir(out)) == ["_SUCCESS", "k=k0", "k=k1", "k=k2"]
