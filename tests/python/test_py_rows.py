"""test_py_rows.py — map_rows' two row loops, libprotium_rows.so's (C over
the Python API) and the package's Python one (PT_PY_ROWS=python), against
real executors: the same results for every type they take, nulls, results
as dicts, tuples and lists, values that leave the typed fast path half-way
through a batch, the same errors; and a reused row dict, and value objects
rewritten in place, that the function can never tell from new ones.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import protium as pt
from conftest import make_table

BUILD = Path(__import__("os").environ.get("PT_BUILD_DIR", Path(__file__).parents[2] / "build"))


@pytest.fixture(scope="module")
def sessions():
    """One session per loop; PT_PY_ROWS is read by the executors, which
    inherit the driver's environment when the session starts them."""
    mp = pytest.MonkeyPatch()
    out = {}
    try:
        for loop in ("c", "python"):
            mp.setenv("PT_PY_ROWS", loop)
            out[loop] = pt.Session("local[2]", conf={"task.max_failures": "1"}).__enter__()
        yield out
    finally:
        for s in out.values():
            s.__exit__(None, None, None)
        mp.undo()


def both(sessions, make):
    """make(session) -> Dataset, run through each loop: the two results."""
    return [make(sessions[loop]).to_arrow() for loop in ("c", "python")]


def test_the_c_loop_is_built_and_used(sessions):
    assert (BUILD / "libprotium_rows.so").exists()
    flags = both(sessions, lambda s: s.range(4, partitions=1).map_rows(
        lambda r: {"c": bool(__import__("protium._worker", fromlist=["_rows_lib"])._rows_lib())},
        "c bool"))
    assert flags[0].column("c").to_pylist() == [True] * 4
    assert flags[1].column("c").to_pylist() == [False] * 4


def _typed_table(n: int) -> pa.Table:
    """Every type the C loop reads from the buffers, with nulls, and a
    string column it reads as a list; sliced so that offsets are not 0."""
    def vals(i: int, lo: int, hi: int):
        return None if i % 7 == 3 else lo + (i * 7919) % (hi - lo + 1)

    cols = {}
    for name, typ, lo, hi in (("i8", pa.int8(), -128, 127), ("i16", pa.int16(), -2**15, 2**15 - 1),
                              ("i32", pa.int32(), -2**31, 2**31 - 1),
                              ("i64", pa.int64(), -2**63, 2**63 - 1), ("u8", pa.uint8(), 0, 255),
                              ("u16", pa.uint16(), 0, 2**16 - 1), ("u32", pa.uint32(), 0, 2**32 - 1),
                              ("u64", pa.uint64(), 0, 2**64 - 1)):
        cols[name] = pa.array([vals(i, lo, hi) for i in range(n + 5)], typ)
    cols["f32"] = pa.array([None if i % 5 == 1 else i / 4 for i in range(n + 5)], pa.float32())
    cols["f64"] = pa.array([None if i % 6 == 2 else i * 0.1 for i in range(n + 5)], pa.float64())
    cols["b"] = pa.array([None if i % 9 == 4 else i % 3 == 0 for i in range(n + 5)], pa.bool_())
    cols["s"] = pa.array([None if i % 4 == 0 else f"s{i}" for i in range(n + 5)], pa.string())
    return pa.table(cols).slice(5)


def test_both_loops_give_the_same_rows_for_every_type_they_take(sessions):
    table = _typed_table(40_000)  # more than two 16,384-row chunks per batch
    got = both(sessions, lambda s: s.from_arrow(table, partitions=2).map_rows(
        lambda r: r, schema=table.schema))
    assert got[0].equals(table)
    assert got[1].equals(table)
    # computed values, by dict, tuple and list, into every typed output
    out = pa.schema([("y", pa.int64()), ("u", pa.uint64()), ("g", pa.float64()),
                     ("b", pa.bool_()), ("s", pa.string()), ("h", pa.int16())])

    def by_dict(r):
        return {"y": None if r["i32"] is None else r["i32"] * 2, "u": r["u64"],
                "g": r["f32"], "b": r["b"], "s": r["s"], "h": r["i16"]}

    expected = pa.table({
        "y": [None if v is None else v * 2 for v in table.column("i32").to_pylist()],
        "u": table.column("u64"), "g": pa.array(table.column("f32").to_pylist(), pa.float64()),
        "b": table.column("b"), "s": table.column("s"), "h": table.column("i16")}, schema=out)
    for fn in (by_dict, lambda r: tuple(by_dict(r).values()),
               lambda r: list(by_dict(r).values())):
        got = both(sessions, lambda s: s.from_arrow(table, partitions=2).map_rows(fn, out))
        assert got[0].equals(expected)
        assert got[1].equals(expected)


def test_values_off_the_fast_path_mid_batch_go_through_pyarrow(sessions):
    # An int for a double, a float for an int, a numpy integer, a value
    # over int64 for a uint64: the C loop takes such a column to pyarrow from that row on,
    # with the values before it; pyarrow's rules decide, as in Python.
    import numpy as np

    def fn(r):
        i = r["id"]
        return {"g": 1 if i == 30_000 else i * 0.5,
                "y": 7.0 if i == 20_000 else (np.int64(i) if i == 25_000 else i),
                "z": 2.0 if i == 35_000 else -i,
                "big": 2**63 + i if i % 2 else None}

    out = pa.schema([("g", pa.float64()), ("y", pa.int64()), ("z", pa.int32()),
                     ("big", pa.uint64())])
    got = both(sessions, lambda s: s.range(40_000, partitions=1).map_rows(fn, out))
    assert got[0].equals(got[1])
    rows = got[0].to_pylist()
    assert rows[30_000]["g"] == 1.0 and rows[29_999]["g"] == 29_999 * 0.5
    assert rows[25_000]["y"] == 25_000 and rows[20_000]["y"] == 7
    assert rows[35_000]["z"] == 2 and rows[34_999]["z"] == -34_999
    assert rows[3]["big"] == 2**63 + 3 and rows[4]["big"] is None
    # and where pyarrow refuses, both fail alike
    for loop in ("c", "python"):
        for value in (2**40, True):
            bad = sessions[loop].range(40_000, partitions=1).map_rows(
                lambda r, v=value: {"z": v if r["id"] == 39_000 else r["id"]}, "z int")
            with pytest.raises(pt.TaskError, match=r"rows it returned do not fit \(z int32\)"):
                bad.count()


def test_both_loops_report_the_same_errors(sessions):
    cases = [(lambda r: 1, "s string", r"must return a dict, tuple or list per row, got int"),
             (lambda r: {"t": 1}, "s string", r"do not fit \(s string\): KeyError: 's'"),
             (lambda r: (1, 2), "s long", r"do not fit \(s int64\): IndexError: a tuple of 2 "
                                          r"values for 1 columns"),
             (lambda r: [r["id"]] * 3, "a long, b long",
              r"IndexError: a list of 3 values for 2 columns"),
             (lambda r: 1 // 0 if r["id"] == 3 else {"s": 1}, "s long", r"ZeroDivisionError")]
    for fn, schema, message in cases:
        for loop in ("c", "python"):
            with pytest.raises(pt.TaskError, match=message):
                sessions[loop].range(10, partitions=1).map_rows(fn, schema).count()


def test_a_reused_row_dict_is_invisible_to_the_function(sessions):
    def keep_and_change(it):
        # rows kept, rows changed, keys added and removed: every row the
        # function sees is the row as the batch has it, and kept rows stay
        # as they were left
        kept = []

        def fn(r):
            assert list(r) == ["id", "v"], list(r)
            assert r["v"] == r["id"] * 3
            if r["id"] % 3 == 0:
                kept.append(r)
            elif r["id"] % 3 == 1:
                del r["id"]
                r["id"] = -1  # same keys, other order
            else:
                r["extra"] = 1
                r["v"] = None
            return {"n": len(kept), "first": kept[0]["id"] if kept else None}

        return fn

    for loop in ("c", "python"):
        t = pa.table({"id": list(range(50_000)), "v": [3 * i for i in range(50_000)]})
        out = sessions[loop].from_arrow(t, partitions=1).map_rows(
            keep_and_change(None), "n long, first long").to_arrow()
        assert out.column("n").to_pylist() == [(i + 3) // 3 for i in range(50_000)]
        assert out.column("first").to_pylist() == [0] * 50_000


def test_every_type_map_rows_took_before_still_round_trips(sessions):
    table = make_table(n=300, batch_rows=70)
    keep = []
    for i, field in enumerate(table.schema):
        try:
            back = pa.array(table.column(i).to_pylist(), type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError,
                OverflowError, ValueError):
            continue
        if back.equals(table.column(i).combine_chunks()):
            keep.append(field.name)
    table = table.select(keep)
    got = both(sessions, lambda s: s.from_arrow(table).map_rows(lambda r: r, table.schema))
    assert got[0].equals(table)
    assert got[1].equals(table)


# Values around what the C loop does in place: CPython's shared small ints
# ([-5, 256]) on both sides, digit-count changes, the int64 and uint64
# ends, nulls, float32 and float64.
_EDGES = [-2**63, 2**63 - 1, -6, -5, -1, 0, 1, 256, 257, -2**30, 2**30, 2**30 - 1,
          -2**60, 2**60, 12345678901, None]


def _edge_table(n: int) -> pa.Table:
    def i64(i: int):
        return _EDGES[i % len(_EDGES)] if i % 3 else (i * 7919) ** 2 % 2**62 - 2**61

    return pa.table({
        "id": pa.array(range(n), pa.int64()),
        "i": pa.array([i64(i) for i in range(n)], pa.int64()),
        "u": pa.array([None if i % 13 == 6 else 2**64 - 1 - i * 3 if i % 2 else i
                       for i in range(n)], pa.uint64()),
        "f": pa.array([None if i % 10 == 9 else i * 0.25 - 7 for i in range(n)], pa.float64()),
        "g": pa.array([None if i % 8 == 1 else i / 8 for i in range(n)], pa.float32()),
        "s": pa.array([i % 300 - 150 for i in range(n)], pa.int16()),
    })


def test_values_the_function_keeps_are_never_rewritten(sessions):
    # The C loop writes a row's values into the objects of the row before
    # when nothing but the row holds them: objects the function kept (here
    # every 97th row's, and the first row's for the whole partition) must
    # keep their values, and every row must still read as the batch has it.
    table = _edge_table(40_000)
    cols = ["i", "u", "f", "g", "s"]

    def keeper(_):
        kept = []

        def fn(r):
            if r["id"] % 97 == 0:
                kept.append(tuple(r[c] for c in cols))
            first, last = kept[0], kept[-1]
            return {**{c: r[c] for c in cols},
                    **{f"k{c}": last[j] for j, c in enumerate(cols)},
                    **{f"z{c}": first[j] for j, c in enumerate(cols)}}

        return fn

    out = pa.schema([table.schema.field(c) for c in cols]
                    + [table.schema.field(c).with_name(f"k{c}") for c in cols]
                    + [table.schema.field(c).with_name(f"z{c}") for c in cols])
    rows = table.to_pylist()
    expected = pa.table({
        **{c: table.column(c) for c in cols},
        **{f"k{c}": pa.array([rows[i - i % 97][c] for i in range(len(rows))],
                             table.schema.field(c).type) for c in cols},
        **{f"z{c}": pa.array([rows[0][c]] * len(rows), table.schema.field(c).type)
           for c in cols}}, schema=out)
    got = both(sessions, lambda s: s.from_arrow(table, partitions=1).map_rows(keeper(None), out))
    assert got[0].equals(expected)
    assert got[1].equals(expected)


def test_values_the_function_changes_are_never_seen_by_the_next_row(sessions):
    # Stores into the row (a new value, the same value, a value kept from
    # another row, a key deleted and put back) and keeps references to
    # the row's values: each row still comes in as the batch has it.
    table = _edge_table(30_000)
    rows = table.to_pylist()

    def fn(r):
        i = r["id"]
        want = rows[i]
        for c in ("i", "u", "f", "g", "s"):
            if r[c] != want[c] or (r[c] is None) != (want[c] is None):
                raise AssertionError(f"row {i} column {c}: {r[c]!r}, expected {want[c]!r}")
        if i % 5 == 0:
            r["i"] = 7
        elif i % 5 == 1:
            r["f"] = r["f"]
        elif i % 5 == 2:
            fn.held = r["u"]
        elif i % 5 == 3:
            v = r.pop("g")
            r["g"] = v
        return (r["i"], r["f"])

    got = both(sessions, lambda s: s.from_arrow(table, partitions=1).map_rows(
        fn, "i long, f double"))
    expected = [7 if i % 5 == 0 else v for i, v in enumerate(table.column("i").to_pylist())]
    for g in got:
        assert g.column("i").to_pylist() == expected
        assert g.column("f").equals(table.column("f"))


def test_results_of_every_shape_give_the_same_columns(sessions):
    # the C loop reads a dict result whose keys are the schema's names in
    # its order in one walk, and falls back to a lookup per name for any
    # other: keys in another order, extra keys, equal but not identical
    # keys, a dict subclass; functions of every kind of callable
    import collections
    import functools

    shapes = {
        "walk": lambda r: {"y": r["id"] * 3, "z": -r["id"]},
        "order": lambda r: {"z": -r["id"], "y": r["id"] * 3},
        "extra": lambda r: {"y": r["id"] * 3, "z": -r["id"], "w": "x"},
        # "y" made at run time: equal to the schema's name, not the same object
        "copy": lambda r: {"".join(["y", ""]): r["id"] * 3, "z": -r["id"]},
        "ordered": lambda r: collections.OrderedDict(y=r["id"] * 3, z=-r["id"]),
        "partial": functools.partial(lambda k, r: {"y": r["id"] * k, "z": -r["id"]}, 3),
    }

    class Call:
        def __call__(self, r):
            return {"y": r["id"] * 3, "z": -r["id"]}

    shapes["object"] = Call()
    expected = pa.table({"y": [3 * i for i in range(20_000)], "z": [-i for i in range(20_000)]},
                        schema=pa.schema([("y", pa.int64()), ("z", pa.int64())]))
    for name, fn in shapes.items():
        got = both(sessions, lambda s: s.range(20_000, partitions=1).map_rows(
            fn, "y long, z long"))
        assert got[0].equals(expected), name
        assert got[1].equals(expected), name
    # a builtin callable: dict(r) is a copy of the row
    got = both(sessions, lambda s: s.range(20_000, partitions=1).map_rows(dict, "id long"))
    assert got[0].column("id").to_pylist() == list(range(20_000))
    assert got[1].column("id").to_pylist() == list(range(20_000))
