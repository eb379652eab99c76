"""clickstream.py — the synthetic click events of the training story
(examples/train_and_enrich.py, bench/train_story.py): their generator, the
feature transform, the model and its training loop, in one importable module
so that executors and training ranks load them by reference (and a model
loaded for inference stays cached in the worker that loaded it).

The label follows a known nonlinear rule plus noise (`click_logit`), so a
small MLP learns it and clearly beats a constant predictor, while a linear
model on the raw columns does not reach it.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterator, Optional

import numpy as np
import pandas as pd
import pyarrow as pa

# -- the events -----------------------------------------------------------

COUNTRIES = ["US", "DE", "FR", "BR", "IN", "JP", "GB", "MX"]
DEVICES = ["mobile", "desktop", "tablet"]
CATEGORIES = ["books", "music", "games", "sports", "garden", "fashion", "tech", "toys",
              "food", "travel", "beauty", "auto"]
USERS = 200_000
ITEMS = 50_000
# 2026-01-01 00:00 UTC, in microseconds; events spread over 30 days.
T0_US = 1_767_225_600_000_000
SPAN_US = 30 * 86_400 * 1_000_000
SEED = 20260101

EVENTS_SCHEMA = pa.schema([
    ("event_id", pa.int64()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("user_id", pa.int64()),
    ("user_age", pa.int32()),
    ("user_tenure_days", pa.float64()),
    ("user_country", pa.string()),
    ("device", pa.string()),
    ("item_id", pa.int64()),
    ("item_category", pa.string()),
    ("item_price", pa.float64()),
    ("item_rating", pa.float64()),
    ("position", pa.int32()),
    ("clicked", pa.int8()),
])

# Which user segments (countries) like which categories: the interaction an
# MLP finds and a sum of per-column effects cannot express. Fixed, so every
# run (and every engine in the benchmark) sees the same rule.
_AFFINITY = np.random.default_rng(7).normal(0.0, 1.2, size=(len(COUNTRIES), len(CATEGORIES)))


def _per_id(ids: np.ndarray, salt: int, modulus: int) -> np.ndarray:
    """A fixed pseudo-random attribute in [0, modulus) of each id (splitmix64),
    so that a user or an item has the same attributes in every event."""
    with np.errstate(over="ignore"):
        z = ids.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(salt + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(modulus)).astype(np.int64)


def click_logit(age: np.ndarray, tenure: np.ndarray, country: np.ndarray, device: np.ndarray,
                category: np.ndarray, price: np.ndarray, rating: np.ndarray,
                position: np.ndarray, hour: np.ndarray) -> np.ndarray:
    """The rule behind `clicked` (before the noise): codes, not strings."""
    evening = ((hour >= 18) & (hour <= 23)).astype(np.float64)
    young = (age < 35).astype(np.float64)
    return (2.0 * _AFFINITY[country, category]
            - 1.1 * np.log1p(position)
            + 1.6 * young * (rating - 3.0)
            - 1.0 * (np.log(price) - 3.0) ** 2
            + 1.4 * evening * (device == 0)
            + 0.4 * np.tanh(tenure / 365.0 - 1.0)
            + 2.3)


BLOCK = 4096


def _block(block: int) -> dict[str, np.ndarray]:
    """The columns of events block * BLOCK .. (block + 1) * BLOCK - 1, drawn
    from a generator seeded by the block: an event depends on its id alone,
    not on how the ids were cut into partitions and batches."""
    n = BLOCK
    rng = np.random.default_rng([SEED, block])
    user = rng.integers(0, USERS, n)
    item = rng.integers(0, ITEMS, n)
    ts = T0_US + rng.integers(0, SPAN_US, n)
    return {"event_id": np.arange(block * n, (block + 1) * n, dtype=np.int64), "user": user,
            "item": item, "ts": ts, "device": rng.choice(3, n, p=[0.6, 0.3, 0.1]),
            "position": rng.integers(1, 21, n).astype(np.int32),
            "noise": rng.logistic(0.0, 0.6, n)}


def events(first_id: int, n: int) -> pa.RecordBatch:
    """Events first_id .. first_id + n - 1; the same ids give the same rows."""
    first_block, last_block = first_id // BLOCK, (first_id + n - 1) // BLOCK
    blocks = [_block(b) for b in range(first_block, last_block + 1)]
    lo = first_id - first_block * BLOCK
    c = {k: np.concatenate([b[k] for b in blocks])[lo:lo + n] for k in blocks[0]}
    user, item, device, ts = c["user"], c["item"], c["device"], c["ts"]
    age = 18 + _per_id(user, 1, 63)
    tenure = _per_id(user, 2, 3650).astype(np.float64) + 0.5
    country = _per_id(user, 3, len(COUNTRIES))
    category = _per_id(item, 4, len(CATEGORIES))
    price = np.round(np.exp(1.0 + _per_id(item, 5, 4000) / 1000.0), 2)
    rating = 1.0 + _per_id(item, 6, 401) / 100.0
    hour = (ts // 3_600_000_000) % 24
    logit = click_logit(age, tenure, country, device, category, price, rating, c["position"],
                        hour)
    clicked = (logit + c["noise"] > 0).astype(np.int8)

    def strings(codes: np.ndarray, values: list[str]) -> pa.Array:
        return pa.DictionaryArray.from_arrays(codes.astype(np.int32), values).cast(pa.string())

    cols = [pa.array(c["event_id"]), pa.array(ts, pa.timestamp("us", tz="UTC")),
            pa.array(user), pa.array(age.astype(np.int32)), pa.array(tenure),
            strings(country, COUNTRIES), strings(device, DEVICES), pa.array(item),
            strings(category, CATEGORIES), pa.array(price), pa.array(rating),
            pa.array(c["position"]), pa.array(clicked)]
    return pa.RecordBatch.from_arrays(cols, schema=EVENTS_SCHEMA)


def events_of(ids: np.ndarray) -> pa.RecordBatch:
    """The events of any int64 ids, in their order (runs of consecutive ids
    are generated together)."""
    cuts = np.flatnonzero(np.diff(ids) != 1) + 1
    runs = [events(int(r[0]), len(r)) for r in np.split(ids, cuts) if len(r)]
    if len(runs) == 1:
        return runs[0]
    return pa.Table.from_batches(runs, EVENTS_SCHEMA).combine_chunks().to_batches()[0]


def generate(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """map_in_arrow over ids (the engine's range): a batch of events per
    batch of ids."""
    for b in batches:
        if b.num_rows:
            yield events_of(b.column(0).to_numpy())


def generate_batch(ids: pa.Table) -> pa.Table:
    """generate, one batch in and out (Ray Data's map_batches)."""
    return pa.Table.from_batches([events_of(ids.column(0).to_numpy())])


def write_events(session: Any, rows: int, path: str, partitions: int = 4) -> None:
    """Generates `rows` events on the session's executors and writes them
    as Arrow IPC files into directory path (one per partition)."""
    ids = session.range(rows, partitions=partitions)
    ids.map_in_arrow(generate, EVENTS_SCHEMA).write_ipc(path)


# -- features -------------------------------------------------------------

NUMERIC = ["age", "tenure", "log_price", "log_price_sq", "rating", "log_position",
           "hour_sin", "hour_cos", "evening"]
FEATURES = (NUMERIC + [f"country_{c}" for c in COUNTRIES] + [f"device_{d}" for d in DEVICES]
            + [f"category_{c}" for c in CATEGORIES])
FEATURES_SCHEMA = pa.schema([("event_id", pa.int64()), ("holdout", pa.bool_()),
                             ("clicked", pa.float32())]
                            + [(f, pa.float32()) for f in FEATURES])


def feature_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Model inputs of events: scaled numbers and one-hot categories, all
    float32. One event in ten (by id) is held out of training."""
    hour = ((df["ts"].astype("int64") // 3_600_000_000) % 24).to_numpy()
    log_price = np.log(df["item_price"].to_numpy())
    out = {
        "event_id": df["event_id"].to_numpy(),
        "holdout": (df["event_id"].to_numpy() % 10) == 0,
        "clicked": df["clicked"].to_numpy().astype(np.float32),
        "age": (df["user_age"].to_numpy() - 49.0) / 18.0,
        "tenure": (df["user_tenure_days"].to_numpy() - 1825.0) / 1054.0,
        "log_price": log_price - 3.0,
        "log_price_sq": (log_price - 3.0) ** 2 - 1.3,
        "rating": (df["item_rating"].to_numpy() - 3.0) / 1.16,
        "log_position": np.log1p(df["position"].to_numpy()) - 2.2,
        "hour_sin": np.sin(hour * (2 * np.pi / 24)),
        "hour_cos": np.cos(hour * (2 * np.pi / 24)),
        "evening": ((hour >= 18) & (hour <= 23)).astype(np.float64),
    }
    for name, col, values in (("country", "user_country", COUNTRIES),
                              ("device", "device", DEVICES),
                              ("category", "item_category", CATEGORIES)):
        codes = pd.Categorical(df[col], categories=values).codes
        one_hot = np.eye(len(values), dtype=np.float32)[codes]  # unknown (-1): last row
        one_hot[codes < 0] = 0.0
        for i, v in enumerate(values):
            out[f"{name}_{v}"] = one_hot[:, i]
    frame = pd.DataFrame(out)
    for f in FEATURES:
        frame[f] = frame[f].astype(np.float32)
    return frame


def features(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """map_in_pandas: events in, FEATURES_SCHEMA out."""
    for df in frames:
        yield feature_frame(df)


def to_arrays(batches: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, holdout) numpy arrays of an iterable of feature batches
    (pyarrow RecordBatches or pandas DataFrames)."""
    xs, ys, hs = [], [], []
    for b in batches:
        if isinstance(b, pd.DataFrame):
            b = pa.RecordBatch.from_pandas(b, preserve_index=False)
        if b.num_rows == 0:
            continue
        xs.append(np.column_stack([b.column(f).to_numpy(zero_copy_only=False)
                                   for f in FEATURES]).astype(np.float32, copy=False))
        ys.append(b.column("clicked").to_numpy(zero_copy_only=False))
        hs.append(b.column("holdout").to_numpy(zero_copy_only=False))
    if not xs:
        return (np.zeros((0, len(FEATURES)), np.float32), np.zeros(0, np.float32),
                np.zeros(0, bool))
    return np.concatenate(xs), np.concatenate(ys).astype(np.float32), np.concatenate(hs)


# -- the model ------------------------------------------------------------

HIDDEN = (64, 32)


def make_model() -> Any:
    """The MLP: len(FEATURES) -> 64 -> 32 -> 1 logit."""
    import torch

    torch.manual_seed(0)  # every rank starts from the same weights
    layers: list[Any] = []
    width = len(FEATURES)
    for h in HIDDEN:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers)


def train_loop(model: Any, optimizer: Any, x: np.ndarray, y: np.ndarray, *, batch_size: int,
               steps_per_epoch: int, epochs: int, rank: int, start_step: int = 0,
               on_step: Optional[Callable[[int, float], None]] = None,
               device: str = "cpu") -> dict[str, Any]:
    """Minibatch training from global step `start_step` to epochs *
    steps_per_epoch. The order of the rows is a fixed permutation per
    (epoch, rank), so a run resumed at a step sees the batches it would have
    seen. on_step(step, loss) runs after every step (checkpoints, faults).
    Returns the mean loss of each epoch (of the steps run here) and the
    seconds spent in the steps (forward, backward, gradient all-reduce,
    update) — the training compute the benchmark holds equal across engines."""
    import torch

    n = len(x)
    if n < batch_size:
        raise ValueError(f"rank {rank} has {n} training rows, fewer than one batch of "
                         f"{batch_size}; lower --batch-size or generate more rows")
    xt = torch.from_numpy(x).to(device)
    yt = torch.from_numpy(y).to(device)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    epoch_loss: dict[int, list[float]] = {}
    compute_s = 0.0
    total = epochs * steps_per_epoch
    step = start_step
    order = None
    order_epoch = -1
    while step < total:
        epoch, k = divmod(step, steps_per_epoch)
        if epoch != order_epoch:
            perm = np.random.default_rng([SEED, epoch, rank]).permutation(n)
            order = torch.from_numpy(perm).to(device)
            order_epoch = epoch
        idx = order[(k * batch_size) % n:(k * batch_size) % n + batch_size]
        if len(idx) < batch_size:  # wrapped: take the rest from the start
            idx = torch.cat([idx, order[:batch_size - len(idx)]])
        t = time.perf_counter()
        optimizer.zero_grad()
        loss = loss_fn(model(xt[idx]).squeeze(1), yt[idx])
        loss.backward()
        optimizer.step()
        value = float(loss.detach())
        compute_s += time.perf_counter() - t
        epoch_loss.setdefault(epoch, []).append(value)
        step += 1
        if on_step is not None:
            on_step(step, value)
    return {"epoch_loss": {e: float(np.mean(v)) for e, v in sorted(epoch_loss.items())},
            "compute_s": compute_s}


_MODELS: dict[tuple[str, float], Any] = {}
MODEL_LOADS = {"count": 0}


def load_model(path: str) -> Any:
    """The model saved at path (a state dict), loaded once per process and
    kept: inference calls this per batch, and only the first call reads."""
    import torch

    key = (path, os.stat(path).st_mtime)
    model = _MODELS.get(key)
    if model is None:
        torch.set_num_threads(1)  # one executor per core already
        model = make_model()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        model.eval()
        _MODELS[key] = model
        MODEL_LOADS["count"] += 1
    return model


def predict_frame(df: pd.DataFrame, model_path: str) -> pd.DataFrame:
    """Events in, the same events with `predicted_label` (int8) out."""
    import torch

    model = load_model(model_path)
    x, _, _ = to_arrays([feature_frame(df)])
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).squeeze(1).numpy()
    return df.assign(predicted_label=(logits > 0).astype(np.int8))


ENRICHED_SCHEMA = EVENTS_SCHEMA.append(pa.field("predicted_label", pa.int8()))


if __name__ == "__main__":
    import argparse

    import protium as pt

    parser = argparse.ArgumentParser(description="Writes synthetic click events as Arrow IPC.")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--out", required=True, help="a new or empty directory")
    args = parser.parse_args()
    with pt.Session("local[2]") as s:
        t = time.perf_counter()
        write_events(s, args.rows, args.out)
        print(f"{args.rows:,} events in {args.out} ({time.perf_counter() - t:.1f} s)")
