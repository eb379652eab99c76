"""test_py_pandas_frames.py — the DataFrames map_in_pandas functions get:
views of the engine's buffers (no copy), each batch's held only as long as
the function holds its frame, writes that copy instead of failing,
columns handed back unchanged going back as the engine's arrays, and
each result let go of before the function makes the next; every type
(nulls, strings, time zones, dictionaries, empty batches) as pyarrow's
to_pandas / from_pandas convert it, for map_in_pandas, with_column and
apply_in_pandas. The
pipeline's own generators in-process (protium._worker), then real
executors.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pyarrow as pa
import pytest

import protium as pt
from protium import _worker

OUT = pa.schema([("x", pa.int64()), ("f", pa.float64()), ("y", pa.int64())])


def _batches(n_batches: int, rows: int, refs: list):
    """Batches over numpy arrays that pyarrow wraps in place: a weak
    reference to each array tells when the last view of the batch is gone."""
    for i in range(n_batches):
        x = np.arange(i * rows, (i + 1) * rows, dtype=np.int64)
        f = x * 0.5
        refs.append((weakref.ref(x), weakref.ref(f)))
        yield pa.record_batch([pa.array(x), pa.array(f)], names=["x", "f"])


def _plan(fn):
    return {"kind": "pandas", "fn": fn, "out_schema": OUT, "what": "map_in_pandas"}


def test_frames_are_views_and_results_reuse_the_input_columns():
    seen = []

    def fn(it):
        for df in it:
            seen.append([not df[c].to_numpy().flags.writeable for c in ("x", "f")])
            yield df.assign(y=df.x * 2)

    refs: list = []
    inputs = list(_batches(3, 1000, refs))
    out = list(_worker.run_step(_plan(fn), iter(inputs)))
    assert seen == [[True, True]] * 3  # read-only: the batch's own memory
    for b_in, b_out in zip(inputs, out):
        # x and f come back as the very buffers that went in; y is new
        for i in (0, 1):
            assert b_out.column(i).buffers()[1].address == b_in.column(i).buffers()[1].address
        assert b_out.column(2).to_pylist() == [2 * v for v in b_in.column(0).to_pylist()]
    assert not _worker._origins  # nothing registered once the frames are gone


def test_each_batch_is_freed_when_the_function_lets_go_of_its_frame():
    refs: list = []
    alive_at_each_step = []

    def fn(it):
        for df in it:
            yield df.assign(y=df.x + 1)

    steps = _worker.run_step(_plan(fn), _batches(6, 1000, refs))
    for i, result in enumerate(steps):
        assert result.column(2)[0].as_py() == i * 1000 + 1
        del result
        gc.collect()
        # the earlier batches are gone: neither the frame nor the pipeline
        # keeps them for the rest of the partition
        alive_at_each_step.append(sum(r() is not None for pair in refs[:i] for r in pair))
    assert alive_at_each_step == [0] * 6


def test_a_frame_kept_past_its_batch_still_copies_on_write():
    def keep_all(it):
        frames = list(it)  # every batch's frame held past the generator's advance
        for df in frames:
            df.loc[0, "x"] = -1  # must copy, not fail on or write into the engine's data
            yield df.assign(y=df.x)

    refs: list = []
    inputs = list(_batches(3, 100, refs))
    out = list(_worker.run_step(_plan(keep_all), iter(inputs)))
    assert [b.column(2)[0].as_py() for b in out] == [-1, -1, -1]
    assert [b.column(0)[1].as_py() for b in out] == [1, 101, 201]
    assert [b.column(0)[0].as_py() for b in inputs] == [0, 100, 200]  # unchanged


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]", conf={"range.batch_rows": "500"}) as s:
        yield s


def test_columns_passed_through_keep_their_values_and_computed_ones_follow_from_pandas(session):
    # A column handed back unchanged is the engine's array, bit for bit
    # (NaN stays NaN); a column the function computed converts as
    # RecordBatch.from_pandas would (NaN is null), as does a sliced one.
    f = pa.array([0.5, float("nan"), 2.5, 3.5])
    table = pa.table({"x": pa.array([1, 2, 3, 4], pa.int64()), "f": f})

    def fn(it):
        for df in it:
            yield df.assign(g=df.f * 1, h=df.f.iloc[::-1].to_numpy()[::-1])

    out = session.from_arrow(table, partitions=1).map_in_pandas(
        fn, schema="x long, f double, g double, h double").to_arrow()
    assert out.column("x").to_pylist() == [1, 2, 3, 4]
    got = out.column("f").to_numpy(zero_copy_only=False)
    assert out.column("f").null_count == 0 and np.isnan(got[1])
    assert out.column("g").to_pylist() == [0.5, None, 2.5, 3.5]
    assert out.column("h").to_pylist() == [0.5, None, 2.5, 3.5]


def test_functions_that_keep_their_frames_get_exact_results(session):
    def keep_all(it):
        frames = list(it)  # 3 batches of 500 rows per partition
        for df in frames:
            df["id"] += 1
            df.iloc[0, 0] = -df.iloc[0, 0]
            yield df

    out = session.range(3000, partitions=2).map_in_pandas(keep_all, schema="id long")
    expected = [-(i + 1) if i % 500 == 0 else i + 1 for i in range(3000)]
    assert sorted(out.to_arrow().column("id").to_pylist()) == sorted(expected)


def _types_table(rows: int) -> pa.Table:
    """Every kind of column a pandas function meets: integers with and
    without nulls, floats with NaN and nulls, booleans, strings, timestamps
    with a time zone, dates and dictionaries (categoricals)."""
    rng = np.random.default_rng(3)
    def nulls(values, typ):
        mask = np.arange(rows) % 7 == 3
        return pa.array(values, typ, mask=mask)
    f = rng.normal(size=rows)
    f[::11] = np.nan
    words = np.array(["a", "bb", "", "ccc", "dddd"], dtype=object)[np.arange(rows) % 5]
    return pa.table({
        "i64": pa.array(np.arange(rows, dtype=np.int64)),
        "u64": pa.array(np.arange(rows, dtype=np.uint64) + np.uint64(2**63)),
        "i8": nulls(np.arange(rows) % 100, pa.int8()),
        "f64": pa.array(f),  # NaN, no nulls: passed through as it is
        "f32": nulls(f.astype(np.float32), pa.float32()),
        "b": nulls(np.arange(rows) % 3 == 0, pa.bool_()),
        "s": nulls(words, pa.string()),
        "ls": pa.array(words, pa.large_string()),
        "ts": nulls(np.arange(rows) * 1_000_003, pa.timestamp("us", tz="Europe/Paris")),
        "d": nulls(np.arange(rows, dtype=np.int32), pa.date32()),
        "cat": pa.array(words, pa.string()).dictionary_encode(),
    })


def _reference(table: pa.Table, fn, schema: pa.Schema, unchanged: tuple) -> pa.Table:
    """What pyarrow makes of the function's frames (to_pandas, then
    from_pandas with the declared schema), but for the float columns
    without nulls that the function hands back unchanged (unchanged:
    their names), which keep their NaN (docs/python.md)."""
    out = []
    for b in table.to_batches() or [pa.RecordBatch.from_pylist([], table.schema)]:
        for df in fn(iter([b.to_pandas()])):
            # (Table's: RecordBatch.from_pandas fails on an empty string column)
            got = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
            cols = []
            for i, name in enumerate(schema.names):
                col = got.column(i).combine_chunks()
                if name in unchanged and pa.types.is_floating(col.type):
                    original = b.column(name)
                    col = original if original.null_count == 0 else col
                cols.append(col)
            out.append(pa.RecordBatch.from_arrays(cols, schema=schema))
    return pa.Table.from_batches(out, schema)


def _values(column) -> list:
    """A column's values, NaN as a marker (Arrow's equals never finds NaN
    equal to NaN)."""
    return ["NaN" if isinstance(v, float) and v != v else v for v in column.to_pylist()]


def _same(a: pa.Table, b: pa.Table) -> bool:
    return a.schema == b.schema and all(_values(a.column(n)) == _values(b.column(n))
                                        for n in a.schema.names)


def _identity(it):
    yield from it


def _computed(it):
    """Some columns computed, the others passed through, in another order
    than the declared one (n comes first there)."""
    for df in it:
        yield df.assign(i64=df.i64 + 1, f64=df.f64 * 2, s=df.s.str.upper(),
                        ts=df.ts + np.timedelta64(1, "s"), n=len(df))


def _per_key(g):
    # n first here, last in the declared schema
    return g.assign(n=len(g))[["n"] + [c for c in g.columns]]


@pytest.mark.parametrize("rows", [0, 1, 1000])
def test_every_type_goes_through_map_in_pandas_as_pyarrow_converts_it(session, rows):
    table = _types_table(rows)
    src = session.from_arrow(table, partitions=1)
    got = src.map_in_pandas(_identity, schema=table.schema).to_arrow()
    assert _same(got, _reference(table, _identity, table.schema, tuple(table.schema.names)))
    out = pa.schema([("n", pa.int64())] + list(table.schema))
    got = src.map_in_pandas(_computed, schema=out).to_arrow()
    assert _same(got, _reference(table, _computed, out, ("f32",)))
    # an empty frame back, whatever came
    empty = src.map_in_pandas(lambda it: (df.iloc[:0] for df in it), schema=table.schema)
    assert empty.count() == 0


def test_every_type_goes_through_apply_in_pandas_as_pyarrow_converts_it(session):
    table = _types_table(1000)
    out = pa.schema(list(table.schema) + [("n", pa.int64())])
    got = session.from_arrow(table, partitions=3).group_by("s").apply_in_pandas(
        _per_key, schema=out, partitions=2).to_arrow()
    want = pa.concat_tables(
        [pa.Table.from_pandas(_per_key(g), schema=out, preserve_index=False)
         for _, g in table.to_pandas().groupby("s", sort=False, dropna=False)])
    assert _same(got.sort_by("i64"), want.sort_by("i64"))


@pytest.mark.parametrize("rows", [0, 1000])
def test_every_type_goes_through_with_column_as_pyarrow_converts_it(session, rows):
    table = _types_table(rows)
    src = session.from_arrow(table, partitions=1)
    for name in table.schema.names:
        typ = table.schema.field(name).type
        got = src.with_column("z", lambda x: x, columns=[name], type=typ).to_arrow()
        want = pa.array(table.column(name).to_pandas(), type=typ, from_pandas=True)
        if pa.types.is_floating(typ) and table.column(name).null_count == 0:
            want = table.column(name)  # handed back unchanged: NaN stays NaN
        assert _values(got.column("z")) == _values(want), name
        assert _same(got.select(table.schema.names), table), name


def _with_y(df, last: list):
    """df with y = id + 1, new memory as x + 1 makes; last: weak references
    to the frame and to the array that owns y's memory."""
    y = df.id + 1
    owner = y.to_numpy().base
    out = df.assign(y=y)
    if owner is None or not np.shares_memory(out.y.to_numpy(), owner):
        raise AssertionError("y's memory is not followed: nothing is tested")
    last[:] = [weakref.ref(out), weakref.ref(owner)]
    return out


def _holds_nothing_back(it):
    """Fails if the frame or the memory of the column it computed for the
    last batch is still alive when it is asked for the next one (it holds
    neither itself)."""
    last: list = []
    for df in it:
        gc.collect()
        if any(ref() is not None for ref in last):
            raise AssertionError("the last result is still held")
        yield _with_y(df, last)


def test_nothing_holds_a_result_while_the_function_makes_the_next(session):
    # A result held until the next batch is made kept its memory from the
    # allocator, which then gave every batch's new column fresh pages to
    # fault in; count() lets go of each batch as it comes.
    ds = session.range(3000, partitions=2).map_in_pandas(_holds_nothing_back,
                                                          schema="id long, y long")
    assert ds.count() == 3000
