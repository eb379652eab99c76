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


# Six row groups of 100 rows, for "!=", "not in" and "is_not_null": k (and
# f, s: the same values as double and text) is 7 throughout in group 0; 7
# with 10 nulls in group 1; null throughout in group 2; 0..99 in group 3; 8
# throughout in group 4; 100..199 in group 5.
def _k_values() -> list:
    return ([7] * GROUP + [None if i % 10 == 0 else 7 for i in range(GROUP)] + [None] * GROUP
            + list(range(GROUP)) + [8] * GROUP + list(range(100, 100 + GROUP)))


@pytest.fixture(scope="module")
def groups_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("filter") / "groups.parquet"
    k = _k_values()
    pq.write_table(pa.table({
        "k": pa.array(k, pa.int64()),
        "f": pa.array([None if v is None else float(v) for v in k], pa.float64()),
        "s": pa.array([None if v is None else str(v) for v in k], pa.string()),
    }), path, row_group_size=GROUP)
    return path


NOT_CASES = [
    # NE: out go the group of 7 alone, the group of 7 and nulls (a null is
    # not != 7 either) and the group of nulls.
    ([("k", "!=", 7)], 3),
    ([("s", "!=", "7")], 3),
    ([("k", "!=", 8)], 4),
    ([("k", "!=", 1000)], 5),
    # Float bounds leave NaN out (NaN != 7): only the nulls go.
    ([("f", "!=", 7.0)], 5),
    ([("k", "not in", [7, 8])], 2),
    ([("k", "not in", [8, 1000])], 4),
    ([("s", "not in", ["7", "8"])], 2),
    ([("k", "not in", [])], 5),
    ([("k", "is_not_null", None)], 5),
    ([("f", "is_not_null", None)], 5),
    ([("s", "is_not_null", None)], 5),
    # Combined: IS NULL keeps the group of nulls the NE rules out.
    ([[("k", "!=", 7)], [("k", "is_null", None)]], 5),
    ([("k", "is_not_null", None), ("k", "not in", [8]), ("k", "!=", 7)], 2),
    ([("k", ">=", 7), ("k", "!=", 7)], 3),
]


def _leaf_expr(c: str, op: str, v):
    if op == "is_not_null":
        return pc.is_valid(pc.field(c))
    if op == "is_null":
        return pc.is_null(pc.field(c))
    e = pq.filters_to_expression([(c, op, v)])
    # SQL's NOT IN: a null is not outside the list. pyarrow's "not in" is
    # NOT is_in, and is_in calls a null no member: it keeps nulls.
    return e & pc.is_valid(pc.field(c)) if op == "not in" else e


def _expr(flt):
    """flt (protium's DNF) as a pyarrow expression of the same meaning."""
    conjs = flt if isinstance(flt[0], list) else [flt]
    out = None
    for conj in conjs:
        e = None
        for c, op, v in conj:
            x = _leaf_expr(c, op, v)
            e = x if e is None else e & x
        out = e if out is None else out | e
    return out


@pytest.mark.parametrize("filter,groups", NOT_CASES, ids=[str(c[0]) for c in NOT_CASES])
def test_not_ops_skip_exactly_and_match_pyarrow(groups_file: Path, filter, groups: int) -> None:
    stats: dict = {}
    got = ptq.read_parquet(groups_file, filter=filter, stats=stats).read_all()
    assert (stats["row_groups_read"], stats["row_groups_skipped"]) == (groups, 6 - groups)
    # What protium read, filtered, is what pyarrow's filters= returns.
    want = pq.read_table(groups_file, filters=_expr(filter))
    assert got.filter(_expr(filter)).equals(want)
    assert want.num_rows > 0


def test_not_ops_and_nulls_as_pyarrow_has_them(groups_file: Path) -> None:
    # "!=": a null is not != 7, in pyarrow's filters= as in SQL; protium's
    # rows filtered by pyarrow's own DNF are pyarrow's.
    flt = [("k", "!=", 7)]
    got = ptq.read_parquet(groups_file, filter=flt).read_all()
    want = pq.read_table(groups_file, filters=flt)
    assert got.filter(pq.filters_to_expression(flt)).equals(want)
    assert want.column("k").null_count == 0
    # "not in": pyarrow's filters= keeps the nulls (NOT is_in); protium's
    # is SQL's, where a null is in no list nor out of it. The rows agree
    # but for those nulls.
    flt = [("k", "not in", [7, 8])]
    got = ptq.read_parquet(groups_file, filter=flt).read_all()
    want = pq.read_table(groups_file, filters=flt)
    valid = pc.is_valid(pc.field("k"))
    assert want.column("k").null_count == GROUP + 10
    assert got.filter(_expr(flt)).equals(want.filter(valid))
    assert got.filter(_expr(flt)).column("k").null_count == 0
    # is_not_null: pyarrow's is_valid.
    got = ptq.read_parquet(groups_file, filter=[("k", "is_not_null", None)]).read_all()
    want = pq.read_table(groups_file, filters=valid)
    assert got.filter(valid).equals(want)
    assert want.num_rows == 6 * GROUP - GROUP - 10
