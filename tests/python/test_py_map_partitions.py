"""test_py_map_partitions.py — map_in_arrow / map_in_pandas run once per
partition, as PySpark's mapInArrow / mapInPandas: one call sees every batch
of its partition (so a model loaded in it lasts the partition), and a
stage's chained Python functions (map_in_*, with_column, filter, map_rows)
compose into one partition function with the same results.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import protium as pt


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]", {"range.batch_rows": "100"}) as s:
        yield s


def test_map_in_pandas_is_called_once_per_partition(session):
    def summary(frames):
        batches, rows = 0, 0
        for df in frames:
            batches += 1
            rows += len(df)
        yield __import__("pandas").DataFrame({"batches": [batches], "rows": [rows]})

    out = session.range(1000, partitions=4).map_in_pandas(
        summary, "batches long, rows long").to_pandas()
    assert len(out) == 4  # one call per partition
    assert out["rows"].tolist() == [250] * 4
    assert out["batches"].tolist() == [3] * 4  # 100 + 100 + 50 rows, all in one call


def test_state_built_in_the_function_lasts_the_partition(session):
    def with_model(batches):
        model = {"loaded": pt.TaskContext.get().partition_id(), "token": object()}
        for b in batches:
            yield pa.record_batch([b.column(0), pa.array([id(model["token"])] * b.num_rows),
                                   pa.array([model["loaded"]] * b.num_rows)],
                                  names=["id", "model", "loaded_in"])

    out = session.range(600, partitions=3).map_in_arrow(
        with_model, "id long, model long, loaded_in long").to_pandas()
    assert out.groupby("loaded_in")["model"].nunique().tolist() == [1, 1, 1]
    assert sorted(out["id"]) == list(range(600))


def test_chained_functions_of_one_stage_compose(session):
    def tag(frames):
        n = 0
        for df in frames:
            n += 1
            yield df.assign(call=n)

    ds = session.range(1000, partitions=2)
    ds = ds.map_in_pandas(tag, "id long, call long")
    ds = ds.with_column("sq", lambda i: i * i, columns=["id"])
    ds = ds.filter(lambda df: df.id % 3 == 0)
    ds = ds.map_rows(lambda r: {"id": r["id"], "sq": r["sq"], "call": r["call"]},
                     "id long, sq long, call long")
    ds = ds.map_in_arrow(lambda it: (b.append_column("neg", pc.negate(b.column("id")))
                                     for b in it), "id long, sq long, call long, neg long")
    out = ds.to_pandas()
    assert out["id"].tolist() == [i for i in range(1000) if i % 3 == 0]
    assert (out["sq"] == out["id"] ** 2).all() and (out["neg"] == -out["id"]).all()
    # the first function saw the five batches of each partition in one call
    assert sorted(set(out["call"])) == [1, 2, 3, 4, 5]


def test_a_new_stage_after_a_shuffle_gets_its_own_calls(session):
    def count_calls(batches):
        rows = sum(b.num_rows for b in batches)
        yield pa.record_batch([pa.array([rows])], names=["rows"])

    ds = session.range(300, partitions=3).map_in_arrow(lambda it: it, "id long")
    out = ds.repartition(2).map_in_arrow(count_calls, "rows long").to_pandas()
    assert len(out) == 2 and out["rows"].sum() == 300


def test_errors_in_a_chained_function_name_it(session):
    ds = session.range(10, partitions=1).with_column("y", lambda i: i + 1, columns=["id"])
    ds = ds.map_in_pandas(lambda frames: (df[["nope"]] for df in frames), "id long")
    with pytest.raises(pt.TaskError, match="KeyError"):
        ds.count()
