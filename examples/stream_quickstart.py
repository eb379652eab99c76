"""stream_quickstart.py — the README's streaming example: files arriving in
a directory, enriched by a cached model, written to Parquet exactly once."""

import os
import tempfile

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

import protium as pt

work = tempfile.mkdtemp()
os.makedirs(f"{work}/incoming")
for i in range(3):  # files arriving: written under a "." name, then renamed
    t = pa.table({"id": range(i * 100, i * 100 + 100), "x": [float(v % 7) for v in range(100)]})
    feather.write_feather(t, f"{work}/incoming/.e{i}.arrow")
    os.rename(f"{work}/incoming/.e{i}.arrow", f"{work}/incoming/e{i}.arrow")

model = pt.cache(lambda: 3.0)  # the loader runs once per executor process


def enrich(frames):
    threshold = model.get()
    for df in frames:
        yield df.assign(label=(df.x > threshold).astype("int64"))


with pt.Session("local[2]") as s:
    q = (s.read_stream.files(f"{work}/incoming", max_files_per_trigger=2)  # or .kafka(...)
           .map_in_pandas(enrich, schema="id long, x double, label long")
           .write_stream.parquet(f"{work}/enriched")  # or .ipc(dir), .kafka(...), .foreach_batch(fn)
           .trigger(available_now=True)  # or interval="200ms", continuous=True
           .checkpoint(f"{work}/checkpoint").start())
    q.await_termination()
    print([p["input_rows"] for p in q.recent_progress()])  # [200, 100]
    print(pq.read_table(f"{work}/enriched").num_rows)  # 300
