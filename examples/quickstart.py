"""quickstart.py — the README's Python quick start: a range of ids through
pandas and Arrow functions on two executors, then actions."""

import pyarrow as pa
import pyarrow.compute as pc

import protium as pt


def add_score(batches):
    for b in batches:  # pyarrow.RecordBatch, the executor's buffers in place
        yield b.append_column("score", pc.multiply(b.column("y"), 0.5))


with pt.Session("local[2]") as s:
    ds = s.range(1_000_000, partitions=8)
    ds = ds.map_in_pandas(lambda it: (df.assign(y=df.id * 2) for df in it),
                          schema="id long, y long")
    ds = ds.map_in_arrow(add_score, schema="id long, y long, score double")
    ds = ds.filter(lambda y: y % 3 == 0, columns=["y"])
    print(ds.count())                      # 333334
    print(ds.take(2))                      # [{'id': 0, 'y': 0, 'score': 0.0}, {'id': 3, ...}]
    table = pa.table(ds)                   # the Arrow PyCapsule interface
    print(table.num_rows, pc.sum(table["score"]).as_py())
