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


@pytest.mark.parametrize("writer", ["protium", "pyarrow"])
def test_pages_of_nulls_only(tmp_path, writer):
    """A run of 40000 nulls fills pages with nulls alone (null_pages in the
    ColumnIndex; tests/c/test_parquet_write.c checks the index itself): =
    and a comparison every value passes (>= the least int64, IS NOT NULL,
    != and NOT IN a value absent) skip them, IS NULL keeps them and skips the pages without nulls; what matches is
    what pyarrow's whole file filters to."""
    n, run = 46000, 3000
    x = [None if run <= i < n - run else i % 50 for i in range(n)]
    t = pa.table({"id": pa.array(np.arange(n)), "x": pa.array(x, pa.int64())})
    path = tmp_path / "t.parquet"
    if writer == "protium":  # pages close at 1024-row steps past page_bytes, or at 20000 rows
        write_parquet(t, path, page_bytes=800, use_dictionary=False)
    else:  # a page per batch of 1024 rows
        pq.write_table(t, path, write_page_index=True, data_page_size=1, write_batch_size=1024,
                       use_dictionary=False)
    full = pq.read_table(path)
    cases = [([("x", "=", 7)], lambda tb: pc.equal(tb["x"], 7)),
             ([("x", ">=", -2**63)], lambda tb: pc.is_valid(tb["x"])),
             ([("x", "is_null", None)], lambda tb: pc.is_null(tb["x"])),
             ([("x", "is_not_null", None)], lambda tb: pc.is_valid(tb["x"])),
             ([("x", "!=", -1)], lambda tb: pc.not_equal(tb["x"], -1)),
             ([("x", "not in", [-1, -2])],
              lambda tb: pc.and_(pc.invert(pc.is_in(tb["x"], pa.array([-1, -2]))), pc.is_valid(tb["x"])))]
    for flt, expr in cases:
        stats: dict = {}
        got = read_parquet(path, filter=flt, stats=stats).read_all()
        assert got.filter(expr(got)).equals(full.filter(expr(full))), flt
        assert stats["pages_skipped"] > 0, flt
        ids = got.column("id").to_numpy()
        if flt[0][1] == "is_null":  # every null row, and not all the values
            assert got.num_rows < n and got.column("x").null_count == n - 2 * run
        else:  # every value, and 20000 nulls or more left out (a page's limit)
            assert got.column("x").null_count <= n - 2 * run - 20000 and len(ids) >= 2 * run


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


def test_not_equal_skips_pages_of_that_value_alone(tmp_path):
    """Pages of 1024 rows (pyarrow's writer): four of 5 alone, four of
    i % 50, one of 5 and nulls, one of nulls alone. != 5 and NOT IN (5, 6)
    skip the four pages of 5, the page of 5 and nulls and the page of
    nulls (a null is not != 5)."""
    page = 1024
    c = ([5] * 4 * page + [i % 50 for i in range(4 * page)]
         + [None if i % 2 else 5 for i in range(page)] + [None] * page)
    t = pa.table({"c": pa.array(c, pa.int64())})
    path = tmp_path / "t.parquet"
    pq.write_table(t, path, write_page_index=True, data_page_size=1, write_batch_size=page,
                   use_dictionary=False)
    full = pq.read_table(path)
    for flt in ([("c", "!=", 5)], [("c", "not in", [5, 6])], [("c", "is_not_null", None)]):
        stats: dict = {}
        got = read_parquet(path, filter=flt, stats=stats).read_all()
        if flt[0][1] == "is_not_null":  # only the page of nulls goes
            assert (stats["pages_read"], stats["pages_skipped"]) == (9, 1), flt
            expr = pc.field("c").is_valid()
        else:
            assert (stats["pages_read"], stats["pages_skipped"]) == (4, 6), flt
            expr = pq.filters_to_expression(flt) & pc.field("c").is_valid()
        assert got.filter(expr).equals(full.filter(expr)), flt
        assert got.filter(expr).num_rows > 0
