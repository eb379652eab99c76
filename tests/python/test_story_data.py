"""The story's click events (examples/clickstream.py): written by the engine as
IPC files, the same rows whatever the partitioning, a user's and an item's
attributes fixed across events, and a label that follows the documented rule
(plus noise) so that a model has something to learn."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc

from conftest import ROOT

sys.path.insert(0, str(ROOT / "examples"))

import clickstream as cs  # noqa: E402
import protium as pt  # noqa: E402


def _read_dir(path) -> pa.Table:
    files = sorted(p for p in path.iterdir() if p.suffix == ".arrow")
    return pa.concat_tables(pa.ipc.open_file(f).read_all() for f in files)


def test_events_are_written_by_the_engine_and_do_not_depend_on_partitions(tmp_path):
    with pt.Session("local[2]") as s:
        cs.write_events(s, 20_000, str(tmp_path / "a"), partitions=4)
        cs.write_events(s, 20_000, str(tmp_path / "b"), partitions=1)
    assert (tmp_path / "a" / "_SUCCESS").exists()
    a = _read_dir(tmp_path / "a").sort_by("event_id")
    b = _read_dir(tmp_path / "b").sort_by("event_id")
    assert a.schema == cs.EVENTS_SCHEMA
    assert a.column("event_id").to_pylist() == list(range(20_000))
    assert a.equals(b)  # cut into other batches, the same rows


def test_user_and_item_attributes_are_fixed_and_the_label_follows_the_rule():
    df = cs.events(1_000, 200_000).to_pandas()
    for key, cols in (("user_id", ["user_age", "user_tenure_days", "user_country"]),
                      ("item_id", ["item_category", "item_price", "item_rating"])):
        assert (df.groupby(key)[cols].nunique() == 1).all().all(), key
    codes = {c: {v: i for i, v in enumerate(vals)} for c, vals in
             (("user_country", cs.COUNTRIES), ("device", cs.DEVICES),
              ("item_category", cs.CATEGORIES))}
    hour = ((df["ts"].astype("int64") // 3_600_000_000) % 24).to_numpy()
    logit = cs.click_logit(df.user_age.to_numpy(), df.user_tenure_days.to_numpy(),
                           df.user_country.map(codes["user_country"]).to_numpy(),
                           df.device.map(codes["device"]).to_numpy(),
                           df.item_category.map(codes["item_category"]).to_numpy(),
                           df.item_price.to_numpy(), df.item_rating.to_numpy(),
                           df.position.to_numpy(), hour)
    clicked = df["clicked"].to_numpy() == 1
    rate = clicked.mean()
    assert 0.2 < rate < 0.5
    rule_accuracy = ((logit > 0) == clicked).mean()
    constant_accuracy = max(rate, 1 - rate)
    # The rule explains the label well beyond a constant, but not perfectly
    # (the noise): a model can learn it, and cannot reach 100 %.
    assert rule_accuracy > constant_accuracy + 0.15
    assert rule_accuracy < 0.97


def test_features_are_scaled_one_hot_and_hold_out_one_in_ten():
    frame = cs.feature_frame(cs.events(0, 50_000).to_pandas())
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert table.schema.equals(cs.FEATURES_SCHEMA)
    for group, values in (("country", cs.COUNTRIES), ("device", cs.DEVICES),
                          ("category", cs.CATEGORIES)):
        total = sum(frame[f"{group}_{v}"].to_numpy() for v in values)
        assert (total == 1).all(), group
    for f in cs.NUMERIC:
        assert abs(frame[f].mean()) < 1.5 and frame[f].std() < 3, f
    assert pc.sum(table.column("holdout")).as_py() == 5_000
    x, y, holdout = cs.to_arrays(table.to_batches())
    assert x.shape == (50_000, len(cs.FEATURES)) and x.dtype == np.float32
    assert y.tolist() == frame["clicked"].tolist() and holdout.sum() == 5_000
