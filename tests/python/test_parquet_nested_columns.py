"""Columns named by nested paths: "s.a" and "s.t.b" (through structs: the
field as a column of its own, as pyarrow.parquet.read_table gives it) and
"l.list.element.x" (through a list: the top-level column with only the
fields asked for, as pyarrow's ParquetFile.read gives it), read with
protium.parquet.read_parquet and Session.read_parquet and compared value
for value, and type for type, with pyarrow. Only the needed leaves are
decoded: the pages counted are theirs.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import protium as pt
import protium.parquet as ptq
from protium import ProtiumError
from protium._lib import PT_EINVAL

N = 3000


def _table() -> pa.Table:
    rnd = random.Random(14)

    def maybe(v, p=0.15):
        return None if rnd.random() < p else v

    s = [maybe({"a": maybe(i), "t": maybe({"b": maybe(f"b{i}"), "c": maybe(i / 4),
                                           "u": {"d": maybe(i * 3)}})}) for i in range(N)]
    lst = [maybe([maybe({"x": maybe(i + k), "y": f"y{k}"}) for k in range(rnd.randrange(4))])
           for i in range(N)]
    t_type = pa.struct([("b", pa.string()), ("c", pa.float64()),
                        ("u", pa.struct([pa.field("d", pa.int64())]))])
    return pa.table({
        "id": pa.array(range(N), pa.int64()),
        "s": pa.array(s, pa.struct([("a", pa.int64()), ("t", t_type)])),
        "l": pa.array(lst, pa.list_(pa.struct([("x", pa.int64()), ("y", pa.string())]))),
    })


@pytest.fixture(scope="module")
def path(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("nested_cols") / "n.parquet"
    pq.write_table(_table(), p, row_group_size=700)
    return p


STRUCT_PATHS = [["s.a"], ["s.t.b"], ["s.t"], ["s.t.u.d"], ["id", "s.t.c", "s.a"], ["s.t.u"]]
LIST_PATHS = [["l.list.element.x"], ["l.list.element"], ["id", "l.list.element.y"],
              ["l.list.element.y", "l.list.element.x"]]


def _pyarrow(p: Path, columns: list[str]) -> pa.Table:
    if any(c.startswith("l.") for c in columns):
        return pq.ParquetFile(p).read(columns=columns)  # read_table refuses list paths
    return pq.read_table(p, columns=columns)


@pytest.mark.parametrize("columns", STRUCT_PATHS + LIST_PATHS, ids=str)
def test_same_as_pyarrow(path: Path, columns: list[str]) -> None:
    want = _pyarrow(path, columns)
    got = ptq.read_parquet(path, columns=columns, batch_size=500).read_all()
    assert got.schema.names == want.schema.names
    assert got.to_pylist() == want.to_pylist()
    if not any(c.startswith("l.") for c in columns):
        assert got.schema == want.schema
    else:  # pyarrow names the pruned list's element "item"
        assert [f.type.value_type if pa.types.is_list(f.type) else f.type for f in got.schema] == \
               [f.type.value_type if pa.types.is_list(f.type) else f.type for f in want.schema]


def test_only_needed_leaves_decoded(path: Path) -> None:
    # Leaves: id, s.a, s.t.b, s.t.c, s.t.u.d, l.x, l.y; one page each per row
    # group (5 row groups): "s.t.b" decodes its own 5 pages, "s.t" its 3 leaves'.
    for columns, leaves in ((["s.t.b"], 1), (["s.t"], 3), (["l.list.element.x"], 1),
                            (["id", "s.a", "l.list.element"], 4)):
        stats: dict = {}
        ptq.read_parquet(path, columns=columns, stats=stats).read_all()
        assert (stats["pages_read"], stats["pages_skipped"]) == (5 * leaves, 0)


def test_engine_same_as_pyarrow(path: Path) -> None:
    with pt.Session("local[2]", conf={"parquet.partition_bytes": "20000"}) as s:
        for columns in (["id", "s.t.c", "s.a"], ["id", "l.list.element.x"]):
            got = s.read_parquet(path, columns=columns).to_arrow().sort_by("id")
            want = _pyarrow(path, columns)
            assert got.to_pylist() == want.to_pylist()


def test_struct_path_with_page_index(tmp_path: Path) -> None:
    # A struct field read as a column is a flat column of two definition
    # levels: the page index's rows apply to it as to any flat column.
    n = 20000
    rnd = random.Random(7)
    s = [None if rnd.random() < 0.1 else {"a": None if rnd.random() < 0.1 else i, "b": f"x{i}"}
         for i in range(n)]
    p = tmp_path / "pi.parquet"
    pq.write_table(pa.table({"id": pa.array(range(n), pa.int64()), "s": pa.array(s)}), p,
                   write_page_index=True, data_page_size=2048, row_group_size=n, use_dictionary=False)
    stats: dict = {}
    got = ptq.read_parquet(p, columns=["id", "s.a"], stats=stats,
                           filter=[("id", ">=", 15000), ("id", "<", 15100)]).read_all()
    want = pq.read_table(p, columns=["id", "s.a"])
    kept = want.filter(pa.compute.is_in(want["id"], value_set=got["id"].combine_chunks()))
    assert got.to_pylist() == kept.to_pylist()
    assert 15000 in got["id"].to_pylist() and 15099 in got["id"].to_pylist()
    assert stats["pages_skipped"] > 10 * stats["pages_read"] > 0


def test_map_entry_paths(tmp_path: Path) -> None:
    # A path to a map's key or value alone: a list of structs of it, as
    # pyarrow's ParquetFile.read gives it (a map needs both).
    p = tmp_path / "m.parquet"
    m = pa.array([[("a", 1), ("b", None)], [], None], pa.map_(pa.string(), pa.int64()))
    pq.write_table(pa.table({"m": m, "z": [1, 2, 3]}), p)
    for columns in (["m.key_value.key"], ["m.key_value.value"], ["m.key_value"]):
        want = pq.ParquetFile(p).read(columns=columns)
        got = ptq.read_parquet(p, columns=columns).read_all()
        assert got.to_pylist() == want.to_pylist()


def test_unknown_paths(path: Path) -> None:
    for bad in ("s.nope", "s.a.b", "l.x", "nope.a"):
        with pytest.raises(ProtiumError) as e:
            ptq.read_parquet(path, columns=[bad])
        assert e.value.code == PT_EINVAL
        assert f"no column '{bad}' in the file" in str(e.value)
