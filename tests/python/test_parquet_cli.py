"""`protium cat` on Parquet files: the rows and --schema must print exactly as
for the same table written as Arrow IPC (whose output test_cli.py checks
against independent expectations), for pyarrow's files and protium's own;
corrupt Parquet fails with one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import protium.parquet as ptq
from test_cli import PROTIUM, assert_fails, cat_text, every_type_batch, expected_lines, run

pytestmark = pytest.mark.skipif(not PROTIUM.exists(), reason=f"{PROTIUM} is not built")


def flat_batch() -> pa.RecordBatch:
    """every_type_batch's columns that Parquet stores as the same Arrow type."""
    b = every_type_batch()
    keep = [
        f.name for f in b.schema
        if not (pa.types.is_nested(f.type) or pa.types.is_dictionary(f.type)
                or pa.types.is_time(f.type) or pa.types.is_date64(f.type)
                or (pa.types.is_timestamp(f.type) and f.type.unit == "s")
                or isinstance(f.type, pa.BaseExtensionType)
                or pa.types.is_string_view(f.type) or pa.types.is_binary_view(f.type)
                or pa.types.is_interval(f.type) or pa.types.is_run_end_encoded(f.type)
                or pa.types.is_union(f.type) or pa.types.is_list_view(f.type)
                or (pa.types.is_decimal(f.type) and not pa.types.is_decimal128(f.type)))
    ]
    return b.select(keep)


@pytest.mark.parametrize("writer", ["pyarrow", "protium"])
def test_cat_parquet_rows_and_schema(tmp_path: Path, writer: str) -> None:
    batch = flat_batch()
    path = tmp_path / "t.parquet"
    table = pa.Table.from_batches([batch, batch.slice(1, 3)])
    if writer == "pyarrow":
        pq.write_table(table, path, row_group_size=5)
    else:
        ptq.write_parquet(table, path, row_group_rows=5)
    read_back = pq.read_table(path)
    assert cat_text(path) == expected_lines(read_back.to_batches())
    assert cat_text(path, "--limit", "3") == expected_lines([read_back.slice(0, 3).combine_chunks().to_batches()[0]])
    ipc = tmp_path / "t.arrow"
    with pa.ipc.new_stream(str(ipc), read_back.schema) as w:
        w.write_table(read_back)
    assert cat_text(path, "--schema") == cat_text(ipc, "--schema")


def test_cat_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    data = ptq.write_parquet_buffer(pa.table({"a": list(range(100))}), codec="none")
    path.write_bytes(data[:-10] + data[-8:])  # footer shifted: corrupt
    r = run("cat", str(path))
    assert_fails(r, path)
    assert "parquet: " in r.stderr.decode()
    path.write_bytes(b"PAR1" + b"\0" * 20)
    assert_fails(run("cat", str(path)), path)
