"""test_py_shuffle.py — where the shuffle puts each row, checked exactly
against a placement computed here with pyarrow: round robin and by key, over
every column type (the map side copies most of them column by column and
takes the rest row by row: both must agree), with nulls, sliced batches and
reduce partitions of more than one 65,536-row batch."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import protium as pt
from conftest import make_table


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]") as s:
        yield s


def round_robin_order(sizes: list[int], n: int) -> list[int]:
    """Row i of map partition p goes to (p + i) % n; a reduce partition holds
    the map partitions' rows in map order. The rows' indices in the input,
    in output order."""
    starts = np.cumsum([0] + sizes)
    order = []
    for r in range(n):
        for p, size in enumerate(sizes):
            i = np.arange(size)
            order.extend((starts[p] + i[(p + i) % n == r]).tolist())
    return order


def round_robin(batches: list[pa.RecordBatch], n: int) -> pa.Table:
    table = pa.Table.from_batches(batches)
    return table.take(pa.array(round_robin_order([b.num_rows for b in batches], n)))


def same(got: pa.Table, want: pa.Table) -> None:
    assert got.num_rows == want.num_rows
    assert got.schema.equals(want.schema, check_metadata=False)
    for name in want.column_names:
        assert got.column(name).combine_chunks().equals(want.column(name).combine_chunks()), name


def test_every_type_round_robin_exact(session, arrow_column):
    # One column at a time: a schema is copied by columns only when all of
    # its columns can be.
    table = make_table(700, seed=4, columns=[arrow_column], batch_rows=230)
    order = round_robin_order([b.num_rows for b in table.to_batches()], 3)
    got = session.from_arrow(table).repartition(3).to_arrow()
    assert got.schema.equals(table.schema, check_metadata=False)
    for name in table.column_names:
        have, want = got.column(name).combine_chunks(), table.column(name).combine_chunks()
        try:
            assert have.equals(want.take(pa.array(order))), name
        except pa.ArrowNotImplementedError:  # no take() for this type: row by row
            for k, i in enumerate(order):
                assert have.slice(k, 1).equals(want.slice(i, 1)), (name, k)


def big_table(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    nulls = rng.random(n) < 0.1
    words = np.array(["", "a", "bb", "d\u00e9j\u00e0", "x" * 40])
    return pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "i32": pa.array(rng.integers(-1000, 1000, n, dtype=np.int32), mask=nulls),
        "f": pa.array(rng.standard_normal(n)),
        "b": pa.array(rng.random(n) < 0.5, mask=rng.random(n) < 0.2),
        "s": pa.array(words[rng.integers(0, len(words), n)], pa.utf8(), mask=rng.random(n) < 0.05),
        "ls": pa.array(words[rng.integers(0, len(words), n)], pa.large_utf8()),
        "fsb": pa.array([bytes([i % 251] * 3) for i in range(n)], pa.binary(3)),
        "d": pa.array(rng.integers(0, 10**6, n), pa.int64()).cast(pa.decimal128(21, 2)),
    })


def test_many_batches_per_reduce_partition_exact(session):
    # 2 reduce partitions of ~150,000 rows: each fills several batches.
    table = big_table(300_001, seed=1)
    batches = table.to_batches(max_chunksize=100_000)
    got = session.from_arrow(pa.Table.from_batches(batches)).repartition(2).to_arrow()
    same(got, round_robin(batches, 2))


def test_sliced_batches_from_a_map(session):
    # A map that returns slices hands the sink arrays with an offset.
    table = big_table(9_000, seed=2)
    batches = table.to_batches(max_chunksize=3_000)

    def drop_first(it):
        for b in it:
            yield b.slice(7)

    got = session.from_arrow(pa.Table.from_batches(batches)).map_in_arrow(
        drop_first, table.schema).repartition(4).to_arrow()
    same(got, round_robin([b.slice(7) for b in batches], 4))


def tag_partition(it):
    part = pt.TaskContext.get().partition_id()
    for b in it:
        yield b.append_column("part", pa.array(np.full(b.num_rows, part, np.int32)))


@pytest.mark.parametrize("keys", [("i32",), ("s", "b")])
def test_by_key_keeps_rows_and_groups_keys(session, keys):
    table = big_table(120_000, seed=3)
    schema = table.schema.append(pa.field("part", pa.int32()))
    got = session.from_arrow(table, partitions=3).repartition(5, *keys).map_in_arrow(
        tag_partition, schema).to_arrow()
    same(got.drop_columns(["part"]).sort_by("id"), table)
    # Equal keys land in one partition; every partition gets some.
    per_key = got.group_by(list(keys)).aggregate([("part", "count_distinct")])
    assert per_key.column("part_count_distinct").to_pylist() == [1] * per_key.num_rows
    assert sorted(set(got.column("part").to_pylist())) == [0, 1, 2, 3, 4]
