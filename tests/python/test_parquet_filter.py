"""Predicate pushdown of the Parquet reader: row groups whose statistics
prove that no row matches are skipped, exactly those (counted), and the
result filtered after reading is the same with and without the filter.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import protium.parquet as ptq
from protium import ProtiumError
from protium._lib import PT_EINVAL

N, GROUP = 10_000, 100  # 100 row groups of 100 rows


@pytest.fixture(scope="module")
def sorted_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("filter") / "sorted.parquet"
    ids = pa.array(range(N), pa.int64())
    table = pa.table({
        "id": ids,
        "u": pa.array([2**63 + i for i in range(N)], pa.uint64()),
        "name": pa.array([f"user{i:05d}" for i in range(N)]),
        "score": pa.array([i / 10 for i in range(N)]),
        # Nulls only in row groups 10 and 20.
        "maybe": pa.array([None if i // GROUP in (10, 20) else i for i in range(N)], pa.int32()),
        "info": pa.array([{"a": i} for i in range(N)], pa.struct([("a", pa.int64())])),
    })
    pq.write_table(table, path, row_group_size=GROUP)
    return path


def run(path: Path, filter, expr) -> tuple[int, int]:
    stats: dict = {}
    got = ptq.read_parquet(path, filter=filter, stats=stats).read_all()
    full = pq.read_table(path)
    # Never changes results: filtering what was read equals filtering all.
    assert got.filter(expr(got)).equals(full.filter(expr(full)))
    return stats["row_groups_read"], stats["row_groups_skipped"]


CASES = [
    ([("id", "=", 150)], lambda t: pc.equal(t["id"], 150), 1),
    ([("id", "<", 250)], lambda t: pc.less(t["id"], 250), 3),
    ([("id", "<=", 199)], lambda t: pc.less_equal(t["id"], 199), 2),
    ([("id", ">", 9_899)], lambda t: pc.greater(t["id"], 9_899), 1),
    ([("id", ">=", 9_800)], lambda t: pc.greater_equal(t["id"], 9_800), 2),
    ([("id", "in", [5, 5_005, 99_999])], lambda t: pc.is_in(t["id"], value_set=pa.array([5, 5_005, 99_999])), 2),
    ([("id", ">=", 1_000), ("id", "<", 1_300)],
     lambda t: pc.and_(pc.greater_equal(t["id"], 1_000), pc.less(t["id"], 1_300)), 3),
    ([[("id", "<", 100)], [("id", ">=", 9_900)]],
     lambda t: pc.or_(pc.less(t["id"], 100), pc.greater_equal(t["id"], 9_900)), 2),
    ([("u", ">=", 2**63 + 9_950)], lambda t: pc.greater_equal(t["u"], pa.scalar(2**63 + 9_950, pa.uint64())), 1),
    ([("name", "=", "user04242")], lambda t: pc.equal(t["name"], "user04242"), 1),
    ([("name", "<", "user00150")], lambda t: pc.less(t["name"], "user00150"), 2),
    ([("score", ">", 989.95)], lambda t: pc.greater(t["score"], 989.95), 1),
    ([("maybe", "is_null", None)], lambda t: pc.is_null(t["maybe"]), 2),
    ([("info.a", "=", 777)], lambda t: pc.equal(pc.struct_field(t["info"], "a"), 777), 1),
    ([("id", "=", -5)], lambda t: pc.equal(t["id"], -5), 0),
]


@pytest.mark.parametrize("filter,expr,groups", CASES, ids=[str(c[0]) for c in CASES])
def test_skips_exactly(sorted_file: Path, filter, expr, groups: int) -> None:
    read, skipped = run(sorted_file, filter, expr)
    assert (read, skipped) == (groups, N // GROUP - groups)


def test_no_statistics_reads_everything(tmp_path: Path) -> None:
    path = tmp_path / "nostats.parquet"
    pq.write_table(pa.table({"id": list(range(1000))}), path, row_group_size=100,
                   write_statistics=False)
    assert run(path, [("id", "=", 5)], lambda t: pc.equal(t["id"], 5)) == (10, 0)


def test_protium_written_statistics_prune(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    ptq.write_parquet(pa.table({"id": pa.array(range(5000), pa.int64()),
                                "s": [f"k{i:04d}" for i in range(5000)]}), path, row_group_rows=500)
    assert run(path, [("id", ">=", 4500)], lambda t: pc.greater_equal(t["id"], 4500)) == (1, 9)
    assert run(path, [("s", "=", "k0042")], lambda t: pc.equal(t["s"], "k0042")) == (1, 9)


def test_bad_filters(sorted_file: Path) -> None:
    with pytest.raises(ProtiumError) as e:
        ptq.read_parquet(sorted_file, filter=[("nope", "=", 1)])
    assert e.value.code == PT_EINVAL
    assert str(e.value) == (
        f"parquet: {sorted_file}: filter: no column 'nope' in the file (name struct fields as 'a.b')"
    )
    with pytest.raises(ProtiumError):
        ptq.read_parquet(sorted_file, filter=[("id", "~", 1)])
