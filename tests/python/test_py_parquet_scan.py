"""What Session.read_parquet's planning passes over, counted exactly
(Dataset.parquet_scan: files and directories pruned by partition values,
row groups skipped by statistics), and the batches it reads in
(arrow.max_records_per_batch when the read gives no batch_size).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import protium as pt


@pytest.fixture(scope="module")
def hive(tmp_path_factory) -> Path:
    # year=2022..2025 / city=a,b: 8 directories, one file each of 10 row
    # groups of 100 sorted ids (0..999).
    root = tmp_path_factory.mktemp("scan")
    for year in range(2022, 2026):
        for city in ("a", "b"):
            d = root / f"year={year}" / f"city={city}"
            d.mkdir(parents=True)
            pq.write_table(pa.table({"id": pa.array(range(1000), pa.int64())}), d / "part-0.parquet",
                           row_group_size=100)
    return root


def test_counts_exactly(hive: Path) -> None:
    with pt.Session("local[2]") as s:
        ds = s.read_parquet(hive, filter=[("year", ">=", 2024), ("id", "<", 250)])
        # 2022 and 2023 pruned (4 files in 4 directories); in the 4 files
        # left, 3 of 10 row groups may hold ids below 250.
        assert ds.parquet_scan() == {"files": 8, "files_pruned": 4, "directories_pruned": 4,
                                     "row_groups": 40, "row_groups_skipped": 28}
        got = ds.to_arrow()
        assert got.num_rows == 4 * 300
        assert sorted(set(got["year"].to_pylist())) == [2024, 2025]
        ds = s.read_parquet(hive)
        assert ds.parquet_scan() == {"files": 8, "files_pruned": 0, "directories_pruned": 0,
                                     "row_groups": 80, "row_groups_skipped": 0}
        ds = s.read_parquet(hive, filter=[("city", "=", "b"), ("id", ">=", 950)])
        assert ds.parquet_scan() == {"files": 8, "files_pruned": 4, "directories_pruned": 4,
                                     "row_groups": 40, "row_groups_skipped": 36}


def _batches(ds) -> list[pa.RecordBatch]:
    return list(pa.RecordBatchReader.from_stream(ds))


def test_batches_of_max_records_per_batch(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": pa.array(range(5000), pa.int64())}), path, row_group_size=5000)
    with pt.Session("local[1]", conf={"arrow.max_records_per_batch": "700"}) as s:
        sizes = [b.num_rows for b in _batches(s.read_parquet(path))]
        assert sizes == [700] * 7 + [100]
        # An explicit batch_size wins.
        sizes = [b.num_rows for b in _batches(s.read_parquet(path, batch_size=2000))]
        assert sizes == [2000, 2000, 1000]
    with pt.Session("local[1]") as s:  # the key's default, 0: the reader's 65536
        assert [b.num_rows for b in _batches(s.read_parquet(path))] == [5000]


@pytest.fixture(scope="module")
def hive_nulls(tmp_path_factory) -> Path:
    # city=a, city=b and city null (Hive's default partition) / year=2024:
    # 3 directories, one file each of 4 row groups of 100 ids (0..399); the
    # ids of b are null in their first row group.
    root = tmp_path_factory.mktemp("scan_nulls")
    for city in ("a", "b", "__HIVE_DEFAULT_PARTITION__"):
        d = root / f"city={city}" / "year=2024"
        d.mkdir(parents=True)
        ids = [None if city == "b" and i < 100 else i for i in range(400)]
        pq.write_table(pa.table({"id": pa.array(ids, pa.int64())}), d / "part-0.parquet",
                       row_group_size=100)
    return root


# (filter, directories pruned, row groups skipped in the files kept).
NOT_SCANS = [
    # The null city is not != "a": a and null go.
    ([("city", "!=", "a")], 2, 0),
    ([("city", "not in", ["a", "b"])], 3, 0),
    ([("city", "not in", ["z"])], 1, 0),
    ([("city", "is_not_null", None)], 1, 0),
    ([("year", "!=", 2024)], 3, 0),
    ([("year", "!=", 2023)], 0, 0),
    ([("year", "not in", [2023, 2024])], 3, 0),
    # A key and the files' column: b's first row group holds nulls alone.
    ([("city", "=", "b"), ("id", "is_not_null", None)], 2, 1),
    ([[("city", "is_null", None)], [("city", "!=", "a"), ("id", "not in", [5])]], 1, 1),
]


@pytest.mark.parametrize("filter,dirs,groups", NOT_SCANS, ids=[str(c[0]) for c in NOT_SCANS])
def test_not_ops_prune_directories_exactly(hive_nulls: Path, filter, dirs: int, groups: int) -> None:
    with pt.Session("local[1]") as s:
        ds = s.read_parquet(hive_nulls, filter=filter)
        assert ds.parquet_scan() == {"files": 3, "files_pruned": dirs, "directories_pruned": dirs,
                                     "row_groups": 4 * (3 - dirs), "row_groups_skipped": groups}
        got = ds.to_arrow()
    # What is read holds every row pyarrow's reading of the directories
    # filters to (SQL's NOT IN: a null is not outside the list).
    full = pads.dataset(hive_nulls, format="parquet", partitioning="hive").to_table()
    cols = ["id", "city", "year"]
    conj = filter if isinstance(filter[0], list) else [filter]
    expr = None
    for c in conj:
        e = None
        for col, op, v in c:
            x = (pc.is_valid(pc.field(col)) if op == "is_not_null"
                 else pc.is_null(pc.field(col)) if op == "is_null"
                 else pq.filters_to_expression([(col, op, v)]))
            if op == "not in":
                x = x & pc.is_valid(pc.field(col))
            e = x if e is None else e & x
        expr = e if expr is None else expr | e
    want = full.filter(expr).select(cols)
    mine = got.select(cols).cast(want.schema).filter(expr)
    assert sorted(mine.to_pylist(), key=repr) == sorted(want.to_pylist(), key=repr)


def test_not_equal_on_a_float32_key_compares_its_rounded_value(tmp_path: Path) -> None:
    # x=0.1 read as float32 is 0.1f, which is != 0.1 (pyarrow compares it
    # as a double); x=1.5 is 1.5 exactly. = and != each prune one way.
    for x in ("0.1", "1.5"):
        d = tmp_path / f"x={x}"
        d.mkdir()
        pq.write_table(pa.table({"id": pa.array(range(10), pa.int64())}), d / "part-0.parquet")
    schema = pa.schema([("x", pa.float32())])
    full = pads.dataset(tmp_path, format="parquet",
                        partitioning=pads.partitioning(schema, flavor="hive")).to_table()
    with pt.Session("local[1]") as s:
        for flt, pruned in (([("x", "!=", 1.5)], 1), ([("x", "!=", 0.1)], 0),
                            ([("x", "=", 0.1)], 2), ([("x", "not in", [1.5, 0.1])], 1)):
            ds = s.read_parquet(tmp_path, filter=flt, partition_schema=schema)
            assert ds.parquet_scan()["directories_pruned"] == pruned, flt
            expr = pq.filters_to_expression(flt)
            got = ds.to_arrow().filter(expr)
            assert sorted(got["x"].to_pylist()) == sorted(full.filter(expr)["x"].to_pylist()), flt
