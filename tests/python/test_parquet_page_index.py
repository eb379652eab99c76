"""test_parquet_page_index.py — the page index (ColumnIndex and OffsetIndex):
written by protium's writer for every column chunk (pyarrow sees it), and
used by the reader to skip the data pages a filter rules out, in files of
protium and of pyarrow (write_page_index=True): pages counted, the rows of
the pages kept returned whole, no matching row lost.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from protium.parquet import read_parquet, write_parquet

N = 60000


def _table() -> pa.Table:
    rng = np.random.default_rng(5)
    return pa.table({
        "id": pa.array(np.arange(N)),
        "s": pa.array([None if i % 9 == 0 else f"name{i % 50}" for i in range(N)]),
        "f": pa.array(rng.random(N)),
        "b": pa.array([i % 3 == 0 for i in range(N)]),
        "nul": pa.array([None] * N, pa.int32()),
        "l": pa.array([[i, i + 1] for i in range(N)]),
        "st": pa.array([{"x": i} for i in range(N)]),
    })


def test_writer_stores_a_page_index_pyarrow_sees(tmp_path):
    t = _table()
    path = tmp_path / "t.parquet"
    write_parquet(t, path, page_bytes=4096, row_group_rows=25000)
    md = pq.ParquetFile(path).metadata
    assert md.num_row_groups == 3
    for g in range(md.num_row_groups):
        for j in range(md.num_columns):
            col = md.row_group(g).column(j)
            assert col.has_offset_index, (g, col.path_in_schema)
            assert col.has_column_index, (g, col.path_in_schema)
    assert pq.read_table(path).equals(t)
    assert read_parquet(path).read_all().equals(t)
    # Without statistics there is no page index either.
    write_parquet(t, path, write_statistics=False)
    col = pq.ParquetFile(path).metadata.row_group(0).column(0)
    assert not col.has_column_index and not col.has_offset_index


@pytest.mark.parametrize("version", [1, 2])
def test_filter_skips_pages(tmp_path, version):
    t = _table().select(["id", "s", "f", "b"])
    path = tmp_path / "t.parquet"
    write_parquet(t, path, page_bytes=4096, data_page_version=version)  # one row group
    stats: dict = {}
    out = read_parquet(path, filter=[("id", ">=", 30000), ("id", "<", 30100)], stats=stats).read_all()
    assert stats["row_groups_read"] == 1
    assert stats["pages_skipped"] > 10 * stats["pages_read"]
    ids = out.column("id").to_numpy()
    # The rows of the pages kept: a run around the matches, in every column.
    assert ids[0] <= 30000 and ids[-1] >= 30099 and len(ids) < 3000
    assert out.equals(t.slice(int(ids[0]), len(ids)))
    # Nothing matches: the row group goes.
    stats = {}
    assert read_parquet(path, filter=[("id", ">", N)], stats=stats).read_all().num_rows == 0
    assert stats["row_groups_skipped"] == 1
    # OR of two ranges; IS NULL on a column with nulls everywhere: all pages.
    stats = {}
    out = read_parquet(path, filter=[[("id", "<", 10)], [("id", ">=", N - 10)]], stats=stats).read_all()
    assert pc.sum(pc.or_(pc.less(out.column("id"), 10),
                         pc.greater_equal(out.column("id"), N - 10))).as_py() == 20
    assert stats["pages_skipped"] > 0
    stats = {}
    assert read_parquet(path, filter=[("s", "is_null", None)], stats=stats).read_all().num_rows == N
    assert stats["pages_skipped"] == 0


def test_filter_on_strings_and_floats(tmp_path):
    n = 40000
    t = pa.table({"k": pa.array([f"key{i:06d}" for i in range(n)]),
                  "v": pa.array(np.linspace(-1.0, 1.0, n))})
    path = tmp_path / "t.parquet"
    write_parquet(t, path, page_bytes=4096, use_dictionary=False)
    stats: dict = {}
    out = read_parquet(path, filter=[("k", "=", "key012345")], stats=stats).read_all()
    assert "key012345" in out.column("k").to_pylist()
    assert stats["pages_skipped"] > 0 and out.num_rows < n // 10
    stats = {}
    out = read_parquet(path, filter=[("v", ">", 0.99)], stats=stats).read_all()
    assert pc.sum(pc.greater(out.column("v"), 0.99)).as_py() == int((t.column("v").to_numpy() > 0.99).sum())
    assert stats["pages_skipped"] > 0


def test_pyarrow_page_index_is_used(tmp_path):
    t = _table().select(["id", "s", "f"])
    path = tmp_path / "t.parquet"
    pq.write_table(t, path, write_page_index=True, data_page_size=4096, row_group_size=N)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).has_column_index
    stats: dict = {}
    out = read_parquet(path, filter=[("id", ">=", 12345), ("id", "<=", 12346)], stats=stats).read_all()
    ids = out.column("id").to_numpy()
    assert 12345 in ids and 12346 in ids and len(ids) < N // 5
    assert out.equals(t.slice(int(ids[0]), len(ids)))
    assert stats["pages_skipped"] > 0


def test_nested_columns_read_whole_row_groups(tmp_path):
    t = _table()
    path = tmp_path / "t.parquet"
    write_parquet(t, path, page_bytes=4096)
    stats: dict = {}
    out = read_parquet(path, filter=[("id", "<", 100)], stats=stats).read_all()
    # A list column is selected: pages are not skipped, the row group is read.
    assert stats["pages_skipped"] == 0 and out.num_rows == N
    stats = {}
    out = read_parquet(path, columns=["id", "s"], filter=[("id", "<", 100)], stats=stats).read_all()
    assert stats["pages_skipped"] > 0 and 100 <= out.num_rows < N // 5
