"""test_py_pandas_frames.py — the DataFrames map_in_pandas functions get:
views of the engine's buffers (no copy), each batch's held only as long as
the function holds its frame, writes that copy instead of failing,
columns handed back unchanged going back as the engine's arrays, and
each result let go of before the function makes the next. The
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
