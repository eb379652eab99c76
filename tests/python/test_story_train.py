"""The story (examples/train_and_enrich.py) at a small size, as a user runs
it: the training loss falls, the model beats the constant predictor on the
held-out events, every event comes out once with a predicted_label; and with
a rank killed mid-epoch, the stage runs again, resumes from the saved step
and ends with a model as good as the one trained without the fault."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pytest

from conftest import ROOT

pytest.importorskip("torch")

EXAMPLE = ROOT / "examples" / "train_and_enrich.py"
ROWS = 60_000
# 27,000 training rows per rank in batches of 256: 105 steps an epoch.
ARGS = ["--rows", str(ROWS), "--epochs", "2", "--batch-size", "256",
        "--checkpoint-every", "50", "--json"]


def _run(out: Path, *extra: str) -> tuple[dict, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    r = subprocess.run([sys.executable, str(EXAMPLE), *ARGS, "--out", str(out), *extra],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1]), r.stdout


def _output(out: Path) -> pa.Table:
    d = out / "enriched"
    assert (d / "_SUCCESS").exists()
    return pa.concat_tables(pa.ipc.open_file(f).read_all() for f in sorted(d.glob("*.arrow")))


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("story") / "out"
    summary, stdout = _run(out)
    return summary, stdout, out


def test_story_trains_a_model_that_beats_the_constant_and_labels_every_event(plain):
    s, stdout, out = plain
    assert s["attempt"] == 0 and s["resumed_from_step"] == 0
    assert s["steps"] == 2 * s["steps_per_epoch"] and s["steps_per_epoch"] == 105
    # The loss falls: from the first tenth of the steps to the last, and
    # from one epoch to the next.
    assert s["last_loss"] < 0.8 * s["first_loss"]
    assert s["epoch_loss"][1] < s["epoch_loss"][0]
    # The model beats the best constant clearly on events it never saw.
    assert s["holdout_rows"] == ROWS // 10
    assert s["holdout_accuracy"] > s["constant_accuracy"] + 0.1
    # Every event once, each with a 0/1 label; the accuracy the output
    # shows is the one training measured.
    table = _output(out)
    assert table.num_rows == ROWS == s["rows"] == s["labelled"]
    ids = np.sort(table.column("event_id").to_numpy())
    assert (ids == np.arange(ROWS)).all()
    labels = table.column("predicted_label")
    assert labels.null_count == 0 and set(labels.to_numpy().tolist()) <= {0, 1}
    df = table.select(["event_id", "clicked", "predicted_label"]).to_pandas()
    held = df[df.event_id % 10 == 0]
    accuracy = (held.clicked == held.predicted_label).mean()
    assert accuracy == pytest.approx(s["holdout_accuracy"], abs=1e-9)
    assert accuracy == pytest.approx(s["output_accuracy"], abs=1e-9)
    assert (out / "model.pt").exists()
    # What the user reads: the four stages and the two accuracies.
    for word in ("1. generate", "2. train", "3. enrich", "4. output", "constant predictor"):
        assert word in stdout


def test_story_survives_a_killed_rank_and_resumes_from_the_checkpoint(plain, tmp_path):
    base = plain[0]
    s, stdout = _run(tmp_path / "out", "--kill-rank-at", "130")
    # The rank died in attempt 0 at step 130; checkpoints are every 50 steps,
    # so the second attempt started from the one of step 100.
    assert s["attempt"] == 1
    assert s["resumed_from_step"] == 100
    assert s["recovery_s"] is not None and s["recovery_s"] > 0
    assert "rank 1 killed at step 130; attempt 2 resumed from step 100" in stdout
    # Same quality: the resumed run saw the batches the plain one saw.
    assert s["holdout_accuracy"] == pytest.approx(base["holdout_accuracy"], abs=0.01)
    assert s["holdout_accuracy"] > s["constant_accuracy"] + 0.1
    assert s["last_loss"] < 0.8 * s["first_loss"]
    table = _output(tmp_path / "out")
    assert table.num_rows == ROWS == s["labelled"]
    assert len(np.unique(table.column("event_id").to_numpy())) == ROWS
