"""test_parquet_dictionary.py — string and binary columns read as Arrow
dictionary arrays: when the file's ARROW:schema says the column was a
dictionary, and when asked (read_dictionary, as pyarrow's option), through
dictionary pages, PLAIN fallback pages, nulls, nesting and several row
groups; compared with pyarrow's reading of the same files, also through the
engine (Session.read_parquet).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import protium as pt
from protium import ProtiumError
from protium.parquet import read_parquet, write_parquet


def _values(n: int, card: int) -> list:
    return [None if i % 7 == 3 else f"v{(i * 31) % card}" for i in range(n)]


def test_dictionary_column_from_arrow_schema(tmp_path):
    t = pa.table({
        "s": pa.array(_values(5000, 50)).dictionary_encode(),
        "b": pa.array([v.encode() if v else None for v in _values(5000, 9)]).dictionary_encode(),
        "ls": pa.array(_values(5000, 20), pa.large_string()).dictionary_encode(),
        "plain": pa.array(_values(5000, 50)),
    })
    path = tmp_path / "d.parquet"
    pq.write_table(t, path, row_group_size=1200)
    ours = read_parquet(path).read_all()
    ref = pq.read_table(path)
    assert ours.schema == ref.schema
    assert ours.schema.field("s").type == pa.dictionary(pa.int32(), pa.string())
    assert ours.schema.field("plain").type == pa.string()
    assert ours.equals(ref)


@pytest.mark.parametrize("dict_limit", [1 << 20, 200])  # 200 bytes: PLAIN fallback pages
@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_read_dictionary_option(tmp_path, dict_limit, version):
    n = 6000
    t = pa.table({
        "s": pa.array(_values(n, 300)),
        "st": pa.array([{"a": v} for v in _values(n, 5)]),
        "l": pa.array([[v, v] if v else None for v in _values(n, 11)]),
        "x": pa.array(range(n)),
    })
    path = tmp_path / "d.parquet"
    pq.write_table(t, path, row_group_size=2500, dictionary_pagesize_limit=dict_limit,
                   data_page_version=version, store_schema=False)
    cols = ["s", "st.a", "l.list.element"]
    ours = read_parquet(path, read_dictionary=cols).read_all()
    ref = pq.read_table(path, read_dictionary=cols)
    assert ours.schema == ref.schema
    assert ours.schema.field("s").type == pa.dictionary(pa.int32(), pa.string())
    # The same values; the dictionaries themselves may list them in
    # another order.
    for name in ("s", "st", "l"):
        assert ours.column(name).to_pylist() == ref.column(name).to_pylist()
    for chunk in ours.column("s").chunks:
        d = chunk.dictionary.to_pylist()
        assert len(d) == len(set(d))  # each value once per row group


def test_read_dictionary_errors(tmp_path):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"s": ["a"], "x": [1]}), path)
    with pytest.raises(ProtiumError, match="column 'x' is not a string or binary column"):
        read_parquet(path, read_dictionary=["x"])
    with pytest.raises(ProtiumError, match="dictionary: no column 'nope' in the file"):
        read_parquet(path, read_dictionary=["nope"])
    # Not selected: nothing to do.
    assert read_parquet(path, columns=["x"], read_dictionary=["s"]).read_all().num_rows == 1


def test_dictionary_round_trip_through_protium_writer(tmp_path):
    t = pa.table({"s": pa.array(_values(3000, 40)).dictionary_encode()})
    path = tmp_path / "d.parquet"
    write_parquet(t, path, row_group_rows=1000)
    ours = read_parquet(path).read_all()
    assert ours.schema == t.schema
    assert ours.column("s").to_pylist() == t.column("s").to_pylist()
    assert pq.read_table(path).column("s").to_pylist() == t.column("s").to_pylist()


def test_engine_read_dictionary(tmp_path):
    path = tmp_path / "d.parquet"
    t = pa.table({"s": pa.array(_values(4000, 30)), "x": pa.array(range(4000))})
    pq.write_table(t, path, row_group_size=1000)
    with pt.Session("local[2]") as s:
        ds = s.read_parquet(path, read_dictionary=["s"])
        assert ds.schema.field("s").type == pa.dictionary(pa.int32(), pa.string())
        out = ds.to_arrow()
    assert out.schema.field("s").type == pa.dictionary(pa.int32(), pa.string())
    assert sorted(zip(out.column("x").to_pylist(), out.column("s").to_pylist())) == \
        list(zip(t.column("x").to_pylist(), t.column("s").to_pylist()))
