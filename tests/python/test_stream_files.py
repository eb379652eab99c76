"""test_stream_files.py — streaming queries from Python over a real
directory that files arrive in, with real executors: files arriving while
the query runs reach IPC and Parquet sinks exactly once through Python
transformations, CSV files too (with the batch reader's options); a model
behind pt.cache is loaded once per executor
process across micro-batches; foreach_batch gets every batch id once; a
Python worker killed mid-batch is retried without duplicates; a failing
function stops the query with its traceback; progress and status say what
happened. One session serves the module: executors live across batches.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

import protium as pt


@pytest.fixture(scope="module")
def session():
    with pt.Session("local[2]", conf={"task.max_failures": "3",
                                      "stream.max_retry_time": "5s"}) as s:
        yield s


def put(dirname: Path, name: str, start: int, n: int, fmt: str = "ipc") -> None:
    """Events [start, start + n) with an id and a value, written under a "."
    name and renamed, as a producer should."""
    table = pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                      "x": pa.array([float(i % 7) for i in range(start, start + n)])})
    tmp = dirname / f".{name}"
    if fmt == "parquet":
        pq.write_table(table, tmp)
    else:
        feather.write_feather(table, tmp, compression="uncompressed")
    os.rename(tmp, dirname / name)


def ids_of(table: pa.Table) -> list[int]:
    return sorted(table.column("id").to_pylist())


def wait_for(cond, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def output_rows(q) -> int:
    return sum(p["output_rows"] or 0 for p in q.recent_progress())


def test_files_arriving_enriched_once_with_a_cached_model(session, tmp_path):
    src, out, ckpt, loads = (tmp_path / n for n in ("in", "out", "ckpt", "loads"))
    src.mkdir()
    loads.mkdir()

    def load_model():  # counts its runs: one file per load, named by the process
        (loads / f"{os.getpid()}-{time.monotonic_ns()}").touch()
        return np.array([2.0, 1.0])

    model = pt.cache(load_model)

    def enrich(it):
        w = model.get()
        for df in it:
            yield df.assign(label=(df.x * w[0] + w[1] > 7).astype("int64"))

    put(src, "e-000.arrow", 0, 50)
    q = (session.read_stream.files(src)
         .map_in_pandas(enrich, schema="id long, x double, label long")
         .write_stream.ipc(out).trigger(continuous=True).checkpoint(ckpt).start())
    for f in range(1, 10):
        put(src, f"e-{f:03d}.arrow", f * 50, 50)
        time.sleep(0.05)
    wait_for(lambda: output_rows(q) >= 500, "500 rows in the sink")
    q.stop()
    assert q.status()["state"] == "stopped"
    got = pa.concat_tables(feather.read_table(p) for p in sorted(out.glob("part-*.arrow")))
    assert ids_of(got) == list(range(500))
    labels = dict(zip(got.column("id").to_pylist(), got.column("label").to_pylist()))
    assert all(labels[i] == int((i % 7) * 2.0 + 1.0 > 7) for i in range(500))
    progress = q.recent_progress()
    assert len(progress) >= 2  # files came while it ran
    assert [p["batch_id"] for p in progress] == list(range(len(progress)))
    assert sum(p["records"] for p in progress) == 10
    assert sum(p["input_rows"] for p in progress) == 500
    assert all(p["latency_ms"] is not None and p["latency_ms"] > 0 for p in progress)
    assert q.last_progress == progress[-1]
    assert progress[-1]["end_offsets"] == '{"files":10}'
    # once per executor process, not once per batch
    pids = [p.name.split("-")[0] for p in loads.iterdir()]
    assert len(pids) == len(set(pids)), f"a process loaded the model twice: {pids}"
    assert 1 <= len(pids) <= 2  # two executors, more batches than that


def test_parquet_in_and_out_with_filter_and_with_column(session, tmp_path):
    src, out, ckpt = tmp_path / "in", tmp_path / "out", tmp_path / "ckpt"
    src.mkdir()
    for f in range(5):
        put(src, f"p-{f}.parquet", f * 100, 100, fmt="parquet")
    put(src, "ignored.arrow", 10_000, 10)  # not of the format
    q = (session.read_stream.files(src, format="parquet", max_files_per_trigger=2)
         .filter(lambda x: x >= 3, columns=["x"])
         .with_column("y", lambda i: i * 10, columns=["id"])
         .write_stream.parquet(out).trigger(available_now=True).checkpoint(ckpt).start())
    assert q.await_termination(60) is True
    progress = q.recent_progress()
    assert [p["records"] for p in progress] == [2, 2, 1]
    got = pq.read_table(sorted(out.glob("part-*.parquet")))
    want = [i for i in range(500) if i % 7 >= 3]
    assert ids_of(got) == want
    assert sorted(got.column("y").to_pylist()) == [i * 10 for i in want]
    assert sorted(p.name for p in out.glob("part-*"))[0].startswith("part-0000000000-")


def put_csv(dirname: Path, name: str, start: int, n: int, bad: int = -1) -> None:
    """Events as CSV with a header, ';' between fields, "-" for null; the row
    of id `bad` (if in range) has a value that is not a number."""
    lines = ["id;x;tag"]
    for i in range(start, start + n):
        x = "oops" if i == bad else str(float(i % 7))
        tag = "-" if i % 5 == 0 else f'"t;{i}"'  # quoted: the ';' is data
        lines.append(f"{i};{x};{tag}")
    tmp = dirname / f".{name}"
    tmp.write_text("\n".join(lines) + "\n")
    os.rename(tmp, dirname / name)


def test_csv_files_arriving_read_once_with_the_readers_options(session, tmp_path):
    src, out, ckpt = tmp_path / "in", tmp_path / "out", tmp_path / "ckpt"
    src.mkdir()
    put_csv(src, "c-000.csv", 0, 40)
    put(src, "ignored.arrow", 10_000, 10)  # not of the format
    q = (session.read_stream.files(src, format="csv", schema="id long, x double, tag string",
                                   header=True, delimiter=";", null_values=["-"],
                                   mode="DROPMALFORMED")
         .map_in_pandas(lambda it: (df.assign(y=df.x * 2) for df in it),
                        schema="id long, x double, tag string, y double")
         .write_stream.ipc(out).trigger(continuous=True).checkpoint(ckpt).start())
    for f in range(1, 5):
        put_csv(src, f"c-{f:03d}.csv", f * 40, 40, bad=f * 40 + 3)
    wait_for(lambda: output_rows(q) >= 196, "the CSV rows in the sink")
    q.stop()
    got = pa.concat_tables(feather.read_table(p) for p in sorted(out.glob("part-*.arrow")))
    want = [i for i in range(200) if i < 40 or i % 40 != 3]  # malformed rows dropped
    assert ids_of(got) == want
    rows = {r["id"]: r for r in got.to_pylist()}
    assert all(rows[i]["y"] == float(i % 7) * 2 for i in want)
    assert all(rows[i]["tag"] == (None if i % 5 == 0 else f"t;{i}") for i in want)
    assert sum(p["records"] for p in q.recent_progress()) == 5


def test_csv_files_need_a_schema(session, tmp_path):
    with pytest.raises(ValueError, match="needs a schema"):
        session.read_stream.files(tmp_path, format="csv")
    with pytest.raises(ValueError, match="schema is for CSV"):
        session.read_stream.files(tmp_path, format="ipc", schema="id long")
    with pytest.raises(ValueError, match="delimiter must be one byte"):
        session.read_stream.files(tmp_path, format="csv", schema="id long", delimiter=";;")


def test_foreach_batch_gets_each_batch_id_once(session, tmp_path):
    src, ckpt = tmp_path / "in", tmp_path / "ckpt"
    src.mkdir()
    for f in range(3):
        put(src, f"f-{f}.arrow", f * 10, 10)
    seen: dict[int, list[int]] = {}

    def sink(ds, batch_id):
        seen.setdefault(batch_id, []).extend(ds.to_arrow().column("id").to_pylist())

    q = (session.read_stream.files(src, max_files_per_trigger=1).write_stream
         .foreach_batch(sink).trigger(interval="50ms").checkpoint(ckpt).start())
    wait_for(lambda: len(seen) == 3, "three batches")
    q.stop()
    assert sorted(seen) == [0, 1, 2]
    assert sorted(sum(seen.values(), [])) == list(range(30))
    assert [p["input_rows"] for p in q.recent_progress()] == [10, 10, 10]


def test_python_worker_killed_mid_batch(session, tmp_path):
    src, out, ckpt, marks = (tmp_path / n for n in ("in", "out", "ckpt", "marks"))
    src.mkdir()
    marks.mkdir()
    for f in range(4):
        put(src, f"k-{f}.arrow", f * 25, 25)

    def crash_once(it):
        for df in it:
            mark = marks / f"batch-of-{int(df.id.min()) // 50}"
            if not mark.exists():  # the worker dies mid-batch, once per batch
                mark.touch()
                os.kill(os.getpid(), signal.SIGKILL)
            yield df

    q = (session.read_stream.files(src, max_files_per_trigger=2)
         .map_in_pandas(crash_once, schema="id long, x double")
         .write_stream.ipc(out).trigger(available_now=True).checkpoint(ckpt).start())
    assert q.await_termination(120)
    assert len(list(marks.iterdir())) == 2  # the fault happened in both batches
    got = pa.concat_tables(feather.read_table(p) for p in sorted(out.glob("part-*.arrow")))
    assert ids_of(got) == list(range(100))


def test_failing_function_stops_the_query_with_its_traceback(session, tmp_path):
    src, out, ckpt = tmp_path / "in", tmp_path / "out", tmp_path / "ckpt"
    src.mkdir()
    put(src, "bad.arrow", 0, 10)

    def broken_model(it):
        for df in it:
            raise ValueError("the model cannot read this event")
            yield df

    q = (session.read_stream.files(src).map_in_pandas(broken_model, schema="id long, x double")
         .write_stream.ipc(out).trigger(continuous=True).checkpoint(ckpt).start())
    with pytest.raises(pt.StreamingQueryException) as e:
        q.await_termination(60)
    assert "failed 3 times" in e.value.message  # retried like any job first
    assert "ValueError: the model cannot read this event" in e.value.message
    assert "broken_model" in e.value.remote_traceback
    st = q.status()
    assert st["state"] == "failed" and not st["is_active"]
    assert q.exception() is not None
    assert not list(out.glob("part-*"))


def test_bad_arguments(session, tmp_path):
    with pytest.raises(pt.ProtiumError, match="is not a directory"):
        session.read_stream.files(tmp_path / "missing")
    (tmp_path / "in").mkdir()
    sds = session.read_stream.files(tmp_path / "in")
    with pytest.raises(ValueError, match="format"):
        session.read_stream.files(tmp_path / "in", format="xml")
    with pytest.raises(ValueError, match="exactly one"):
        sds.write_stream.trigger(interval="1s", continuous=True)
    with pytest.raises(ValueError, match="not a duration"):
        sds.write_stream.trigger(interval="soon")
    with pytest.raises(ValueError, match="checkpoint directory is required"):
        sds.write_stream.ipc(tmp_path / "out").start()
    with pytest.raises(TypeError, match="expected a function"):
        pt.cache(42)
    q = sds.write_stream.ipc(tmp_path / "out").checkpoint(tmp_path / "ck").start()
    with pytest.raises(pt.ProtiumError, match="in use by another running query"):
        sds.write_stream.ipc(tmp_path / "out2").checkpoint(tmp_path / "ck").start()
    q.stop()
    assert q.await_termination(5) is True


def test_readme_streaming_example_is_the_example_and_runs(tmp_path):
    import re
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    blocks = re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), flags=re.S)
    example = (root / "examples" / "stream_quickstart.py").read_text()
    assert example.split('"""', 2)[2].lstrip("\n") in blocks
    env = dict(os.environ, PYTHONPATH=str(root / "python"))
    r = subprocess.run([sys.executable, str(root / "examples" / "stream_quickstart.py")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["[200, 100]", "300"]
