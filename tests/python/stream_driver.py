"""stream_driver.py — a streaming driver for the tests that kill it: reads
the files arriving in SRC one per micro-batch, through a Python function,
into an IPC sink (or a foreach_batch sink that writes one file per batch id)
with the checkpoint CKPT.

    stream_driver.py SRC OUT CKPT MODE [BLOCK_AT]

MODE: "block-job" blocks inside the job of the batch that reads event
BLOCK_AT (after touching OUT/../reached), "block-commit" (foreach_batch sink)
blocks after the sink wrote batch BLOCK_AT's file, before the commit log;
"run" runs until killed; "finish" processes what is there (available now)
and prints the progress as JSON.
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

import protium as pt  # noqa: E402


def main() -> None:
    src, out, ckpt, mode = sys.argv[1:5]
    block_at = int(sys.argv[5]) if len(sys.argv) > 5 else -1
    reached = Path(out).parent / "reached"

    def work(it):
        for df in it:
            if mode == "block-job" and (df.id == block_at).any():
                reached.touch()
                time.sleep(600)
            if mode == "run":
                time.sleep(0.05)
            yield df

    def sink(ds, batch_id):  # idempotent per batch id: one file, replaced whole
        tmp = Path(out) / f"_tmp-{batch_id}"
        if tmp.exists():
            for p in tmp.iterdir():
                p.unlink()
            tmp.rmdir()
        ds.write_ipc(tmp)
        parts = sorted(tmp.glob("part-*.arrow"))
        for i, p in enumerate(parts):
            os.replace(p, Path(out) / f"batch-{batch_id:05d}-{i}.arrow")
        if mode == "block-commit" and batch_id == block_at:
            reached.touch()
            time.sleep(600)

    conf = {"local.dir": str(Path(ckpt).parent)}
    with pt.Session("local[2]", conf=conf, progress=False) as s:
        w = (s.read_stream.files(src, max_files_per_trigger=1)
             .map_in_pandas(work, schema="id long, x double").write_stream)
        if mode == "block-commit" or (mode == "finish" and len(sys.argv) > 5):
            Path(out).mkdir(exist_ok=True)
            w = w.foreach_batch(sink)
        else:
            w = w.ipc(out)
        trig = {"available_now": True} if mode == "finish" else {"continuous": True}
        q = w.trigger(**trig).checkpoint(ckpt).start()
        q.await_termination()
        print(json.dumps(q.recent_progress()))


if __name__ == "__main__":
    main()
