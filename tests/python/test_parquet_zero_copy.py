"""Column chunks read in place: a pyarrow-written file of one uncompressed
PLAIN page per column chunk (no dictionary, a data page as large as the
chunk) has the chunks whose values start at a multiple of their width in
the file handed out from the mapping (stats["pages_zero_copy"]), the
others copied, and reads the same as pyarrow either way. Where a chunk's
values lie is found by searching the file for them."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from protium.parquet import read_parquet

ROWS, RG = 50000, 10000


def _table() -> pa.Table:
    rng = np.random.default_rng(14)
    return pa.table({
        "i64": pa.array(rng.integers(-2**62, 2**62, ROWS), pa.int64()),
        "f64": pa.array(rng.standard_normal(ROWS), pa.float64()),
        "i32": pa.array(rng.integers(-2**31, 2**31, ROWS, dtype=np.int64).astype(np.int32)),
        "f32": pa.array(rng.standard_normal(ROWS).astype(np.float32)),
        "ts": pa.array(rng.integers(0, 2**50, ROWS), pa.timestamp("us")),
        "d": pa.array(rng.integers(0, 50000, ROWS).astype(np.int32), pa.date32()),
    })


def _in_place(path, table: pa.Table) -> int:
    """Chunks that should be read in place: their values found in the file
    at a multiple of their width."""
    data = path.read_bytes()
    n = 0
    for start in range(0, ROWS, RG):
        for col in table.columns:
            vals = col.slice(start, RG).combine_chunks()
            width = vals.type.bit_width // 8
            key = vals.buffers()[1].to_pybytes()[vals.offset * width:][:32]
            at = data.find(key)
            assert at >= 0
            n += at % width == 0
    return n


def test_pyarrow_file_in_place_where_aligned(tmp_path):
    table = _table()
    path = tmp_path / "plain.parquet"
    pq.write_table(table, path, row_group_size=RG, compression="NONE", use_dictionary=False,
                   data_page_size=1 << 30)
    stats: dict = {}
    got = read_parquet(path, stats=stats).read_all()
    assert got.equals(pq.read_table(path))
    assert stats["pages_read"] == 6 * ROWS // RG
    assert stats["pages_zero_copy"] == _in_place(path, table) > 0


def test_compressed_or_null_copied(tmp_path):
    table = _table()
    for name, kw in [("snappy", {"compression": "snappy"}),
                     ("dictionary", {"compression": "NONE"})]:
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path, row_group_size=RG, data_page_size=1 << 30, **kw)
        stats: dict = {}
        assert read_parquet(path, stats=stats).read_all().equals(pq.read_table(path))
        assert stats["pages_zero_copy"] == 0
    # A null in every row group, each of one page.
    mask = pa.array(np.arange(ROWS) % RG == 7)
    nulls = pa.table({k: pc.if_else(mask, pa.scalar(None, c.type), c)
                      for k, c in zip(table.column_names, table.columns)})
    path = tmp_path / "nulls.parquet"
    pq.write_table(nulls, path, row_group_size=RG, compression="NONE", use_dictionary=False,
                   data_page_size=1 << 30)
    stats = {}
    assert read_parquet(path, stats=stats).read_all().equals(pq.read_table(path))
    assert stats["pages_zero_copy"] == 0
