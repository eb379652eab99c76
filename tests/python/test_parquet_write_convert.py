"""test_parquet_write_convert.py — Arrow types Parquet has no form for, on
write: run-end encoded columns written as their values and list views as
lists (pyarrow reads back the plain columns), intervals as Parquet's
INTERVAL (12 bytes of unsigned months, days, milliseconds) when they fit,
and unions, negative or sub-millisecond intervals refused with a message
that names the column and says what to do.
"""

from __future__ import annotations

import struct

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from protium import ProtiumError
from protium.parquet import read_parquet, write_parquet


def _ree(values: pa.Array, run_type: pa.DataType = pa.int32()) -> pa.Array:
    return pc.run_end_encode(values, run_end_type=run_type)


@pytest.mark.parametrize("run_type", [pa.int16(), pa.int32(), pa.int64()])
def test_run_end_encoded_written_as_values(tmp_path, run_type):
    ints = pa.array([1, 1, 1, None, None, 7, 8, 8] * 50, pa.int64())
    strs = pa.array(["a", "a", None, "bb", "bb", "bb", "c", None] * 50)
    t = pa.table({"i": _ree(ints, run_type), "s": _ree(strs, run_type)})
    path = tmp_path / "r.parquet"
    write_parquet(t, path, row_group_rows=150)
    back = pq.read_table(path)
    assert back.schema == pa.schema([("i", pa.int64()), ("s", pa.string())])
    assert back.column("i").to_pylist() == ints.to_pylist()
    assert back.column("s").to_pylist() == strs.to_pylist()
    assert read_parquet(path).read_all().equals(back)
    # A slice starts inside a run.
    write_parquet(t.slice(4, 100), path)
    assert pq.read_table(path).column("s").to_pylist() == strs.slice(4, 100).to_pylist()


def test_run_end_encoded_inside_a_struct(tmp_path):
    vals = pa.array([0.5, 0.5, None, 2.0] * 10)
    st = pa.StructArray.from_arrays([_ree(vals), pa.array(range(40))], ["r", "n"])
    path = tmp_path / "r.parquet"
    write_parquet(pa.table({"st": st}), path)
    assert pq.read_table(path).column("st").to_pylist() == [
        {"r": v, "n": i} for i, v in enumerate(vals.to_pylist())]


@pytest.mark.parametrize("large", [False, True])
def test_list_views_written_as_lists(tmp_path, large):
    values = pa.array([1, 2, 3, None, 5, 6])
    offsets = pa.array([0, 1, 4, 0, 2, 5], pa.int64() if large else pa.int32())
    sizes = pa.array([2, 3, 2, 0, 4, 1], pa.int64() if large else pa.int32())
    cls = pa.LargeListViewArray if large else pa.ListViewArray
    lv = cls.from_arrays(offsets, sizes, values, mask=pa.array([False, False, False, True, False, False]))
    t = pa.table({"lv": lv, "x": pa.array(range(6))})
    path = tmp_path / "lv.parquet"
    write_parquet(t, path)
    back = pq.read_table(path)
    assert back.column("lv").to_pylist() == lv.to_pylist()  # overlapping views, a null row
    assert back.schema.field("lv").type == (pa.large_list(pa.int64()) if large else pa.list_(pa.int64()))
    assert read_parquet(path).read_all().column("lv").to_pylist() == lv.to_pylist()
    write_parquet(t.slice(2, 3), path)
    assert pq.read_table(path).column("lv").to_pylist() == lv.slice(2, 3).to_pylist()


def _interval_bytes(months: int, days: int, ms: int) -> bytes:
    return struct.pack("<III", months, days, ms)


def test_intervals_as_parquet_interval(tmp_path):
    mdn = pa.array([pa.MonthDayNano([1, 2, 3_000_000]), None, pa.MonthDayNano([0, 40, 0])],
                   pa.month_day_nano_interval())
    t = pa.table({"mdn": mdn})
    path = tmp_path / "i.parquet"
    write_parquet(t, path)
    f = pq.ParquetFile(path)
    assert f.schema.column(0).converted_type == "INTERVAL"
    assert f.schema.column(0).physical_type == "FIXED_LEN_BYTE_ARRAY"
    back = pq.read_table(path)
    assert back.column("mdn").to_pylist() == [_interval_bytes(1, 2, 3), None,
                                              _interval_bytes(0, 40, 0)]


def test_refused_types_name_the_column(tmp_path):
    u = pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()), [pa.array([1, 2]), pa.array(["a", "b"])])
    with pytest.raises(ProtiumError, match="column 'u': Parquet has no union type; write each member"):
        write_parquet(pa.table({"u": u}), tmp_path / "u.parquet")
    neg = pa.array([pa.MonthDayNano([-1, 0, 0])], pa.month_day_nano_interval())
    with pytest.raises(ProtiumError, match="column 'iv': row 0 has a negative interval"):
        write_parquet(pa.table({"iv": neg}), tmp_path / "n.parquet")
    sub = pa.array([pa.MonthDayNano([0, 0, 1500])], pa.month_day_nano_interval())
    with pytest.raises(ProtiumError, match="not whole milliseconds"):
        write_parquet(pa.table({"iv": sub}), tmp_path / "s.parquet")
