"""test_py_batches.py — arrow.max_records_per_batch and
arrow.max_bytes_per_batch against real executors: Python functions get
batches cut to the limits, as zero-copy slices of the engine's batch, and
every kind of function returns the same rows as without the limits.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import protium as pt


def pieces(it):
    """One row per batch received: its length, first id and data buffer.
    The function runs once per partition: it keeps every batch, so that no
    source batch's buffer is freed and reused for the next one."""
    kept = []
    for b in it:
        kept.append(b)
        col = b.column(0)
        yield pa.record_batch([pa.array([b.num_rows]), pa.array([col[0].as_py()]),
                               pa.array([col.buffers()[1].address])],
                              names=["rows", "first", "address"])


SCHEMA = "rows long, first long, address long"


def check_cut(session, limit):
    # range.batch_rows = 1000: the source makes batches of 1000, 1000 and 500
    got = session.range(2500, partitions=1).map_in_arrow(pieces, SCHEMA).to_arrow()
    rows, first = got.column("rows").to_pylist(), got.column("first").to_pylist()
    assert max(rows) == limit
    assert sum(rows) == 2500
    assert first == list(range(0, 2500, limit))
    # slices of one engine batch share its buffer: one address per source
    # batch (a later batch may reuse a freed one's address, so no more is said)
    address = got.column("address").to_pylist()
    for lo in (0, 1000, 2000):
        assert len({a for a, f in zip(address, first) if lo <= f < lo + 1000}) == 1


def same_results(session):
    base = session.range(2500, partitions=2)
    expected = [{"id": i, "z": 3 * i + 1} for i in range(2500) if i % 7]
    assert base.filter(lambda x: x % 7 != 0, columns=["id"]).with_column(
        "z", lambda x: x * 3 + 1, columns=["id"]).take(10**6) == expected
    rows = base.map_rows(lambda r: {"id": r["id"], "z": r["id"] * 3 + 1}, "id long, z long")
    assert rows.filter(lambda b: pc.not_equal(pc.bit_wise_and(b.column("id"), 0), 1),
                       kind="arrow").count() == 2500
    assert rows.filter(lambda df: df.id % 7 != 0).take(10**6) == expected
    chained = base.map_in_pandas(lambda it: (df[df.id % 7 != 0] for df in it), "id long") \
        .map_in_arrow(lambda it: (pa.record_batch([b.column(0), pc.add(pc.multiply(
            b.column(0), 3), 1)], names=["id", "z"]) for b in it), "id long, z long")
    assert chained.take(10**6) == expected


def test_max_records_per_batch_cuts_batches_into_slices():
    conf = {"range.batch_rows": "1000", "arrow.max_records_per_batch": "100"}
    with pt.Session("local[1]", conf=conf) as s:
        check_cut(s, 100)
        same_results(s)


def test_max_bytes_per_batch_cuts_by_the_average_row_size():
    # ids are int64 without nulls: 8 bytes a row, so 400 bytes are 50 rows
    conf = {"range.batch_rows": "1000", "arrow.max_bytes_per_batch": "400"}
    with pt.Session("local[1]", conf=conf) as s:
        check_cut(s, 50)
        same_results(s)


def test_without_limits_functions_get_the_source_batches():
    with pt.Session("local[1]", conf={"range.batch_rows": "1000"}) as s:
        got = s.range(2500, partitions=1).map_in_arrow(pieces, SCHEMA).to_arrow()
        assert got.column("rows").to_pylist() == [1000, 1000, 500]


@pytest.mark.parametrize("key", ["arrow.max_records_per_batch", "arrow.max_bytes_per_batch"])
def test_bad_limits_fail_the_session_cleanly(key):
    with pytest.raises(pt.ProtiumError, match=key):
        pt.Session("local[1]", conf={key: "-1"})
    with pytest.raises(pt.ProtiumError, match=key):
        pt.Session("local[1]", conf={key: "many"})
