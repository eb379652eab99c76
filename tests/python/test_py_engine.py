"""test_py_engine.py — the Python engine API against real executors: every
Arrow type through an identity map_in_arrow, each kind of Python function,
schemas, empty data, errors with remote tracebacks, unpicklable functions,
a crashing worker retried on a fresh executor, the row and vectorized paths
agreeing, and the Arrow PyCapsule interface with pyarrow, polars and DuckDB.
One session (local[2]) serves the module, as executors are reused.
"""

from __future__ import annotations

import os
import threading
import time

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import protium as pt
from conftest import make_table


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]", conf={"task.max_failures": "2"}) as s:
        yield s


def identity(it):
    yield from it


def test_every_arrow_type_round_trips_through_map_in_arrow(session):
    table = make_table(n=300, batch_rows=70)
    ds = session.from_arrow(table).map_in_arrow(identity, schema=table.schema)
    out = ds.to_arrow()
    assert out.schema == table.schema
    assert out.equals(table)


def test_function_that_changes_the_schema(session):
    def double(it):
        for b in it:
            yield pa.record_batch([b.column(0), pc.multiply(b.column(0), 2).cast(pa.float64())],
                                  names=["id", "y"])

    ds = session.range(1000, partitions=3).map_in_arrow(double, schema="id long, y double")
    assert ds.schema.names == ["id", "y"]
    assert ds.schema.field("y").type == pa.float64()
    out = ds.to_arrow()
    assert out.column("id").to_pylist() == list(range(1000))
    assert out.column("y").to_pylist() == [2.0 * i for i in range(1000)]


def test_map_in_pandas_as_the_issue_shows_it(session):
    ds = session.range(10_000, partitions=8)
    ds = ds.map_in_pandas(lambda it: (df.assign(y=df.id * 2) for df in it),
                          schema="id long, y long")
    df = ds.to_pandas()
    assert list(df.columns) == ["id", "y"]
    assert df.id.tolist() == list(range(10_000))
    assert (df.y == df.id * 2).all()


def test_with_column_filter_and_map_rows_agree(session):
    base = session.range(5000, partitions=4)
    vec = base.with_column("z", lambda x: x * 3 + 1, columns=["id"]).filter(
        lambda z: z % 2 == 0, columns=["z"])
    arrow = base.with_column("z", lambda x: pc.add(pc.multiply(x, 3), 1), columns=["id"],
                             kind="arrow").filter(
        lambda b: pc.equal(pc.bit_wise_and(b.column("z"), 1), 0), kind="arrow")
    rows = base.map_rows(lambda r: {"id": r["id"], "z": r["id"] * 3 + 1},
                         schema="id long not null, z long").filter(
        lambda df: df.z % 2 == 0)
    expected = [{"id": i, "z": 3 * i + 1} for i in range(5000) if (3 * i + 1) % 2 == 0]
    assert vec.take(10**6) == expected
    assert arrow.take(10**6) == expected
    assert rows.take(10**6) == expected
    assert vec.count() == len(expected)


def test_pandas_functions_may_write_into_their_frames(session):
    # The frames are views of the executor's read-only buffers: pandas must
    # copy on the first write, never write into (or fail on) the engine's data.
    def write(it):
        for df in it:
            df.loc[df.id % 2 == 0, "f"] = -1.0
            df.iat[0, 0] = -7
            df["id"] += 1
            df.fillna({"f": 0.0}, inplace=True)
            yield df

    src = session.from_arrow(pa.table({"id": pa.array(range(1000), pa.int64()),
                                       "f": pa.array([i / 2 for i in range(1000)])}),
                             partitions=2)
    for _ in range(2):  # the second run sees the source unchanged
        out = src.map_in_pandas(write, schema="id long, f double").to_arrow()
        ids = [i + 1 for i in range(1000)]
        ids[0], ids[500] = -6, -6
        assert out.column("id").to_pylist() == ids
        assert out.column("f").to_pylist() == [-1.0 if i % 2 == 0 else i / 2
                                               for i in range(1000)]

    def bump(x):
        if len(x):  # (also called on an empty Series, for the type)
            x.iloc[0] = 100
        return x * 2

    out = src.with_column("z", bump, columns=["id"]).to_arrow()
    assert out.column("z").to_pylist()[:2] == [200, 2]
    assert out.column("id").to_pylist()[:2] == [0, 1]


def test_pandas_results_keep_from_pandas_semantics(session):
    # NaN is null as pandas means it, in returned and passed-through floats;
    # integer, boolean, float32 and nullable columns convert as from_pandas.
    table = pa.table({"f": pa.array([1.5, float("nan"), None, 4.0]),
                      "g": pa.array([1.0, 2.0, 3.0, 4.0], pa.float32()),
                      "b": pa.array([True, False, None, True]),
                      "i": pa.array([1, None, 3, 4], pa.int64())})

    def fn(it):
        import numpy as np

        for df in it:
            yield df.assign(h=df.g * 2, n=np.where(df.g > 2, np.nan, df.g),
                            k=df.g.astype("int32"))

    schema = "f double, g float, b boolean, i long, h float, n double, k int"
    out = session.from_arrow(table, partitions=1).map_in_pandas(fn, schema=schema).to_arrow()
    expected = pa.RecordBatch.from_pandas(fn(iter([table.to_pandas()])).__next__(),
                                          schema=out.schema, preserve_index=False)
    assert out.to_batches()[0].equals(expected)
    assert out.column("f").to_pylist() == [1.5, None, None, 4.0]
    assert out.column("n").to_pylist() == [1.0, 2.0, None, None]
    nan = session.from_arrow(table, partitions=1).with_column(
        "z", lambda f: f * 2, columns=["f"]).to_arrow()
    assert nan.column("z").to_pylist() == [3.0, None, None, 8.0]


def test_with_column_infers_its_type_and_replaces_a_column(session):
    ds = session.range(10, partitions=2).with_column("id", lambda x: x / 2, columns=["id"])
    assert ds.schema.field("id").type == pa.float64()
    assert ds.to_arrow().column("id").to_pylist() == [i / 2 for i in range(10)]


def test_empty_partitions_and_empty_datasets(session):
    empty = pa.table({"a": pa.array([], pa.int64())})
    ds = session.from_arrow(empty).map_in_arrow(identity, schema="a long")
    assert ds.count() == 0
    assert ds.to_arrow().num_rows == 0
    # 3 rows in 5 partitions: some are empty
    ds = session.from_arrow(pa.table({"a": [1, 2, 3]}), partitions=5)
    assert ds.num_partitions == 5
    out = ds.map_in_pandas(lambda it: (df[df.a > 1] for df in it), schema="a long")
    assert out.to_arrow().column("a").to_pylist() == [2, 3]
    # a function that yields nothing for a batch
    assert ds.map_in_arrow(lambda it: iter(()), schema="a long").count() == 0


def test_a_batch_larger_than_64_mib(session):
    n = 9_000_000  # 72 MB of int64 in one batch
    big = pa.table({"x": pa.array(range(n), pa.int64())})
    ds = session.from_arrow(big, partitions=1).with_column(
        "y", lambda x: pc.add(x, 1), columns=["x"], kind="arrow")
    out = ds.to_arrow()
    assert out.num_rows == n
    assert pc.sum(out.column("y")).as_py() == n * (n + 1) // 2


def test_exception_raises_task_error_with_traceback_and_partition(session):
    def boom(it):
        for b in it:
            if b.column(0)[0].as_py() >= 500:
                raise ValueError("bad row 500")
            yield b

    with pytest.raises(pt.TaskError) as info:
        session.range(1000, partitions=2).map_in_arrow(boom, schema="id long").count()
    e = info.value
    assert e.partition == 1
    assert "ValueError: bad row 500" in e.remote_traceback
    assert "in boom" in e.remote_traceback
    assert "failed 2 times" in str(e)


def test_wrong_return_type_and_schema_say_what_was_expected(session):
    ds = session.range(10, partitions=1)
    with pytest.raises(pt.TaskError, match=r"must yield pyarrow.RecordBatch, got int"):
        ds.map_in_arrow(lambda it: (1 for _ in it), schema="id long").count()
    with pytest.raises(pt.TaskError,
                       match=r"returned schema \(id int64\), expected \(id double\)"):
        ds.map_in_arrow(identity, schema="id double").count()
    with pytest.raises(pt.TaskError, match=r"expected \['id', 'q'\] \(missing \['q'\]\)"):
        ds.map_in_pandas(identity, schema="id long, q long").count()
    with pytest.raises(pt.TaskError, match=r"returned 1 values for 10 rows"):
        ds.with_column("z", lambda x: x.iloc[:1], columns=["id"], type="long").count()
    with pytest.raises(pt.TaskError, match=r"predicate returned int64, expected bool"):
        ds.filter(lambda x: x, columns=["id"]).count()


def test_unpicklable_function_fails_at_the_call(session):
    lock = threading.Lock()
    with pytest.raises(TypeError, match=r"map_in_arrow: the function cannot be sent to "
                                        r"executors \(cloudpickle failed: TypeError: .*lock"):
        session.range(10).map_in_arrow(lambda it: (lock, it)[1], schema="id long")


def test_worker_crash_is_retried_on_a_fresh_worker(session, tmp_path):
    flag = tmp_path / "crashed"

    def crash_once(it):
        for b in it:
            if b.column(0)[0].as_py() == 0 and not flag.exists():
                flag.write_text("x")
                os._exit(3)
            yield b

    before = set(session.executor_pids())
    out = session.range(2000, partitions=4).map_in_arrow(crash_once, schema="id long")
    assert out.to_arrow().column("id").to_pylist() == list(range(2000))
    assert flag.exists()
    # the lost executor is replaced (asynchronously): two live again, one new
    deadline = time.monotonic() + 30
    while len(session.executor_pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    after = set(session.executor_pids())
    assert len(after) == 2 and len(after - before) == 1


def test_pycapsule_round_trips(session):
    polars = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    ds = session.range(100, partitions=3).with_column("y", lambda x: x * 1.5, columns=["id"])
    t = pa.table(ds)
    assert t.column("y").to_pylist() == [i * 1.5 for i in range(100)]
    pl = polars.from_arrow(pa.table(ds))
    assert pl["y"].to_list() == [i * 1.5 for i in range(100)]
    # polars and DuckDB as sources
    back = session.from_arrow(pl).to_arrow()
    assert back.column("id").to_pylist() == list(range(100))
    rel = duckdb.sql("select range::bigint as r from range(50)")
    assert session.from_arrow(rel).count() == 50
    assert duckdb.sql("select sum(y) as s from ds").fetchall()[0][0] == sum(i * 1.5 for i in range(100))


def test_sources_and_sinks(session, tmp_path):
    import pandas as pd

    df = pd.DataFrame({"k": ["a", "b", "c"], "v": [1.0, 2.0, 3.0]})
    ds = session.from_pandas(df)
    ds.write_ipc(tmp_path / "out")
    again = session.read_ipc(tmp_path / "out")
    assert again.to_pandas().equals(df)
    assert again.repartition(2, "k").count() == 3
    assert sorted(r["k"] for r in again.repartition(4).take(10)) == ["a", "b", "c"]


def test_ddl_schemas():
    s = pt.parse_ddl("id long not null, y double, t array<string>, "
                     "st struct<a: int, b: decimal(10,2)>, ts timestamp")
    assert s == pa.schema([pa.field("id", pa.int64(), nullable=False),
                           ("y", pa.float64()), ("t", pa.list_(pa.utf8())),
                           ("st", pa.struct([("a", pa.int32()), ("b", pa.decimal128(10, 2))])),
                           ("ts", pa.timestamp("us", tz="UTC"))])
    with pytest.raises(ValueError, match=r"unknown type 'lng'"):
        pt.parse_ddl("id lng")
    with pytest.raises(ValueError, match=r"expected '>'"):
        pt.parse_ddl("a array<int")


def _fit(g):
    import pandas as pd

    return pd.DataFrame({"user": [g.user.iloc[0]], "n": [len(g)], "mean": [g.v.mean()],
                         "top": [g.v.max()]})


def test_grouped_map_skewed_and_empty_groups_equals_pandas(session):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    # skewed: user 0 has half of the rows, 40 users one row each, 5 users
    # with none (empty groups never appear), some null keys
    users = np.concatenate([np.zeros(3000, np.int64), rng.integers(1, 20, 2900),
                            np.arange(100, 140)])
    v = rng.normal(size=len(users))
    df = pd.DataFrame({"user": pd.array(users, dtype="Int64"), "v": v})
    df.loc[::97, "user"] = pd.NA
    ds = session.from_pandas(df, partitions=4)
    out = ds.group_by("user").apply_in_pandas(
        _fit, schema="user long, n long, mean double, top double", partitions=3)
    got = out.to_pandas().sort_values("user", na_position="first").reset_index(drop=True)
    want = (df.groupby("user", dropna=False, sort=False)[["user", "v"]].apply(_fit)
            .reset_index(drop=True).sort_values("user", na_position="first").reset_index(drop=True))
    assert len(got) == len(want) == df.user.nunique(dropna=False)
    assert got.n.sum() == len(df)
    types = {"user": "Int64", "n": "int64", "mean": "float64", "top": "float64"}
    pd.testing.assert_frame_equal(got.astype(types), want.astype(types), check_exact=False)
    # a group_by with no rows at all
    empty = session.from_pandas(df.iloc[:0]).group_by("user").apply_in_pandas(
        _fit, schema="user long, n long, mean double, top double")
    assert empty.count() == 0


def test_group_by_errors(session):
    ds = session.range(10)
    with pytest.raises(ValueError, match=r"group_by: no column 'user'; the columns are \['id'\]"):
        ds.group_by("user")


def test_map_rows_odd_names_and_wrong_results(session):
    t = pa.table({"a b": [1, 2], "'q'": ["x", "y"], "_0": [0.5, 1.5]})
    ds = session.from_arrow(t)
    out = ds.map_rows(lambda r: {"s": f"{r['a b']}{r[chr(39) + 'q' + chr(39)]}{r['_0']}"},
                      schema="s string")
    assert out.to_arrow().column("s").to_pylist() == ["1x0.5", "2y1.5"]
    with pytest.raises(pt.TaskError, match=r"must return a dict, tuple or list per row, got int"):
        ds.map_rows(lambda r: 1, schema="s string").count()
    with pytest.raises(pt.TaskError, match=r"rows it returned do not fit \(s string\): KeyError"):
        ds.map_rows(lambda r: {"t": 1}, schema="s string").count()


def test_map_rows_returning_its_row_keeps_every_type(session):
    # The reference is pyarrow's own round trip through Python values: the
    # columns it can take back from to_pylist() must come back unchanged.
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
    assert len(keep) > 20
    table = table.select(keep)
    out = session.from_arrow(table).map_rows(lambda r: r, schema=table.schema).to_arrow()
    assert out.equals(table)
    # one input column and one output column (the loop's own shapes), in
    # batches of 40,000 rows: several chunks of the loop each
    one = session.range(80_000, partitions=2).map_rows(lambda r: {"y": r["id"] * 2}, "y long")
    assert one.to_arrow().column("y").to_pylist() == [2 * i for i in range(80_000)]
    late = session.range(80_000, partitions=2).map_rows(
        lambda r: {"y": r["id"] if r["id"] != 70_000 else "bad"}, "y long")
    with pytest.raises(pt.TaskError, match=r"rows it returned do not fit \(y int64\)"):
        late.count()


class _ArrayOnly:
    """An object that speaks only __arrow_c_array__ (as nanoarrow's arrays
    and other libraries may)."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self._batch = batch

    def __arrow_c_array__(self, requested_schema=None):
        return self._batch.__arrow_c_array__(requested_schema)


def test_from_arrow_takes_c_array_objects_and_refuses_others(session):
    batch = pa.record_batch({"a": [1, 2, 3], "b": ["x", None, "z"]})
    ds = session.from_arrow(_ArrayOnly(batch))
    assert ds.to_arrow().to_batches()[0].equals(batch)
    with pytest.raises(TypeError, match=r"from_arrow: list speaks no Arrow PyCapsule interface"):
        session.from_arrow([1, 2, 3])


def test_bad_configuration_fails_the_session_cleanly():
    with pytest.raises(pt.ProtiumError, match=r"unknown configuration key 'no.such'"):
        pt.Session("local[1]", conf={"no.such": "1"})
    with pytest.raises(pt.ProtiumError, match=r"'executor.slots': 'x' is not an integer"):
        pt.Session("local[1]", conf={"executor.slots": "x"})


def test_pt_py_profile_writes_the_executors_profiles(tmp_path, monkeypatch):
    import pstats

    monkeypatch.setenv("PT_PY_PROFILE", str(tmp_path))
    with pt.Session("local[1]") as s:
        assert s.range(100).map_in_arrow(identity, schema="id long").count() == 100
    files = list(tmp_path.glob("worker-*-*.pstats"))
    assert files
    functions = {name for f in files for (_, _, name) in pstats.Stats(str(f)).stats}
    assert "run_pipeline" in functions
