"""Exchange with polars and DuckDB through the Arrow PyCapsule interface
(__arrow_c_stream__): protium reads their streams, string views and list
views included, without copying a buffer, and what it hands back reads in
each of them as the data it came from. IPC written by protium from their
streams reads back in polars too.
"""

from __future__ import annotations

import io

import duckdb
import polars as pl
import pyarrow as pa
import pytest

import protium.arrow as pta


def column_addresses(batch: pa.RecordBatch) -> list[set[int]]:
    """The addresses of the buffers of each column (children's included)."""
    return [{b.address for b in col.buffers() if b is not None and b.size > 0}
            for col in batch.columns]


def assert_zero_copy(addresses: list, batches: list[pa.RecordBatch]) -> None:
    """Every buffer the result points to is one the producer handed over."""
    assert len(addresses) == len(batches)
    for produced, batch in zip(addresses, batches):
        for k, got in enumerate(column_addresses(batch)):
            assert got, f"column {batch.schema.names[k]} has no buffers to compare"
            assert got <= set(produced[k]), f"column {batch.schema.names[k]} was copied"


def polars_frame(n: int = 500) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": list(range(n)),
            "name": [None if i % 7 == 0 else ("n%d" % i) * (i % 5) for i in range(n)],
            "blob": [None if i % 11 == 0 else bytes([i % 256]) * (i % 17) for i in range(n)],
            "tags": [[("t%d" % j) * 4 for j in range(i % 4)] if i % 9 else None for i in range(n)],
            "point": [{"x": float(i), "label": "p" * (i % 15)} for i in range(n)],
        }
    )


def test_polars_views_arrive_and_are_read_without_a_copy():
    df = polars_frame()
    addresses: list = []
    reader = pta.read_stream(df, _addresses=addresses)
    assert reader.schema.field("name").type == pa.string_view()
    assert reader.schema.field("blob").type == pa.binary_view()
    batches = list(reader)
    assert sum(b.num_rows for b in batches) == df.height
    assert_zero_copy(addresses, batches)
    table = pa.Table.from_batches(batches, reader.schema)
    table.validate(full=True)
    # Back into polars: the same frame.
    assert pl.from_arrow(table).equals(df)
    assert table.equals(pa.table(df))


def test_polars_ipc_round_trips():
    df = polars_frame(300)
    for fmt in ("stream", "file"):
        data = pta.write_ipc_buffer(df, fmt, "zstd")
        back = pl.read_ipc_stream(io.BytesIO(data)) if fmt == "stream" else pl.read_ipc(io.BytesIO(data))
        assert back.equals(df)
    # What polars writes (views inside), protium reads.
    sink = io.BytesIO()
    df.write_ipc(sink, compression="lz4")
    got = pta.read_ipc_buffer(sink.getvalue()).read_all()
    assert pl.from_arrow(got).equals(df)


@pytest.fixture
def duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Views in DuckDB's Arrow output: string views and list views.
    con.execute("SET arrow_output_version = '1.5'")
    con.execute("SET produce_arrow_string_view = true")
    con.execute("SET arrow_output_list_view = true")
    return con


DUCK_QUERY = """
    SELECT i AS id,
           CASE WHEN i % 5 = 0 THEN NULL ELSE repeat('s', i % 20) || i::VARCHAR END AS name,
           CASE WHEN i % 3 = 0 THEN NULL ELSE [i, i + 1, NULL][1:(i % 4)] END AS nums,
           {'a': i * 2, 'b': 'x' || i::VARCHAR} AS st,
           (i * 1.5)::DECIMAL(18, 3) AS dec
    FROM range(3000) t(i)
"""


def test_duckdb_views_arrive_and_are_read_without_a_copy(duck):
    addresses: list = []
    reader = pta.read_stream(duck.sql(DUCK_QUERY), _addresses=addresses)
    assert reader.schema.field("name").type == pa.string_view()
    assert pa.types.is_list_view(reader.schema.field("nums").type)
    batches = list(reader)
    assert sum(b.num_rows for b in batches) == 3000
    assert_zero_copy(addresses, batches)
    table = pa.Table.from_batches(batches, reader.schema)
    table.validate(full=True)
    # Back into DuckDB: the same rows.
    want = duck.sql(DUCK_QUERY + " ORDER BY id").fetchall()
    duck.register("back", table)
    assert duck.sql("SELECT * FROM back ORDER BY id").fetchall() == want


def test_duckdb_ipc_round_trip(duck, tmp_path):
    path = tmp_path / "duck.arrow"
    pta.write_ipc(duck.sql(DUCK_QUERY), path, "file", "lz4")
    table = pta.read_ipc(path).read_all()
    assert table.num_rows == 3000
    want = duck.sql(DUCK_QUERY + " ORDER BY id").fetchall()
    duck.register("back", table)
    assert duck.sql("SELECT * FROM back ORDER BY id").fetchall() == want


def test_read_stream_refuses_other_objects():
    with pytest.raises(TypeError):
        pta.read_stream([1, 2, 3])
