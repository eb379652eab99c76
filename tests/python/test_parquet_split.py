"""test_parquet_split.py — how Session.read_parquet deals row groups into
partitions (src/api/split.c, shared with read_delta and read_csv): a few
small files, under parquet.partition_bytes in all, give every task slot of
local[2] a partition of about the same size; data under 4 MiB stays one
partition; over the cap, the partitions come in a multiple of the slots.
The rows are pyarrow's, in the same order, whatever the partitioning.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import protium as pt

ROWS = 200_000  # a file: 3.2 MB of int64 and float64 values


def _write(d: Path, files: int, rows: int, row_group_size: int) -> None:
    d.mkdir()
    for f in range(files):
        ids = pa.array(range(f * rows, (f + 1) * rows), pa.int64())
        t = pa.table({"id": ids, "score": pa.compute.multiply(ids.cast(pa.float64()), 0.5)})
        pq.write_table(t, d / f"part-{f}.parquet", row_group_size=row_group_size)


def _uncompressed(d: Path) -> int:
    """The bytes the footers give, as the planner sums them."""
    total = 0
    for p in sorted(d.glob("*.parquet")):
        md = pq.ParquetFile(p).metadata
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            total += sum(rg.column(c).total_uncompressed_size for c in range(rg.num_columns))
    return total


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]") as s:
        yield s


@pytest.fixture(scope="module")
def small_files(tmp_path_factory) -> Path:
    """Four files of one row group each, 8 to 128 MiB in all."""
    d = tmp_path_factory.mktemp("split") / "small"
    _write(d, 4, ROWS, ROWS)
    assert 8 << 20 < _uncompressed(d) < 128 << 20
    return d


def test_small_files_give_every_slot_a_partition(session, small_files, tmp_path):
    ds = session.read_parquet(small_files)
    assert ds.num_partitions == 2
    got = ds.to_arrow()
    assert got.equals(pq.read_table(small_files))
    assert [st.tasks_succeeded for st in ds.last_job().stages] == [2]
    # Whole files in file order, two a partition: the written parts say so.
    out = tmp_path / "out"
    ds.write_parquet(out)
    parts = sorted(out.glob("part-*.parquet"))
    assert [pq.read_table(p)["id"][0].as_py() for p in parts] == [0, 2 * ROWS]
    assert [pq.ParquetFile(p).metadata.num_rows for p in parts] == [2 * ROWS, 2 * ROWS]


def test_one_big_file_is_split_between_its_row_groups(session, tmp_path):
    d = tmp_path / "big"
    _write(d, 1, 4 * ROWS, ROWS // 2)
    assert 8 << 20 < _uncompressed(d) < 128 << 20
    ds = session.read_parquet(d)
    assert ds.num_partitions == 2
    assert ds.to_arrow().equals(pq.read_table(d))


def test_under_4_mib_stays_one_partition(session, tmp_path):
    d = tmp_path / "tiny"
    _write(d, 3, 50_000, 10_000)
    assert _uncompressed(d) < 4 << 20
    ds = session.read_parquet(d)
    assert ds.num_partitions == 1
    assert ds.to_arrow().equals(pq.read_table(d))


def test_over_the_cap_a_multiple_of_the_slots(small_files, tmp_path):
    # About 14 MiB under a 6 MiB cap asks for three partitions; four are
    # made, of a file each.
    with pt.Session("local[2]", conf={"parquet.partition_bytes": str(6 << 20)}) as s:
        ds = s.read_parquet(small_files)
        assert ds.num_partitions == 4
        assert ds.to_arrow().equals(pq.read_table(small_files))
    # Row groups of a quarter file: still four partitions, of equal size
    # (filling each up to the cap would make three: 6, 6 and 4 row groups
    # of about 0.95 MiB).
    d = tmp_path / "quarters"
    _write(d, 4, ROWS, ROWS // 4)
    with pt.Session("local[2]", conf={"parquet.partition_bytes": str(6 << 20)}) as s:
        ds = s.read_parquet(d)
        assert ds.num_partitions == 4
        out = tmp_path / "out"
        ds.write_parquet(out)
        rows = [pq.ParquetFile(p).metadata.num_rows for p in sorted(out.glob("part-*.parquet"))]
        assert rows == [ROWS] * 4
        assert pq.read_table(out).equals(pq.read_table(d))
