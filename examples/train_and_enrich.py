"""train_and_enrich.py — the warehouse-to-model story as one program, one
engine: click events written as Arrow IPC -> features with map_in_pandas ->
a PyTorch MLP trained with DistributedDataParallel on 2 ranks fed straight
from the engine (protium.distributed.run, retried and resumed from a
checkpoint) -> every event enriched with a predicted label -> written out.

    python examples/train_and_enrich.py [--rows N] [--epochs E] [--out DIR]
                                        [--kill-rank-at STEP] [--use-gpu]

--kill-rank-at kills the last rank (SIGKILL of its own process) at that
training step of the first attempt: the stage runs again on every rank and
resumes from the last checkpoint. --use-gpu trains with nccl, a GPU per rank.
--json adds the summary as a JSON line, for programs that run this one.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any, Iterator

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import clickstream as cs  # noqa: E402
import protium as pt  # noqa: E402
from protium import distributed  # noqa: E402


def train(*, epochs: int, batch_size: int, lr: float, checkpoint_every: int, model_path: str,
          ckpt_dir: str, kill_rank_at: int, gpu: bool, steps_per_epoch: int = 0
          ) -> dict[str, Any]:
    """One rank (run by protium.distributed.run on each): reads its
    partition of the features, trains the shared MLP with DDP, checkpoints,
    and returns (on rank 0) what the driver prints."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    started = time.time()
    torch.set_num_threads(1)  # one rank per core
    ctx = pt.BarrierTaskContext.get()
    attempt = ctx.stage_attempt_number()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = "cpu"
    if gpu:
        torch.cuda.set_device(0)  # CUDA_VISIBLE_DEVICES names this rank's GPU alone
        device = "cuda:0"
    dist.init_process_group("nccl" if gpu else "gloo")

    x, y, holdout = cs.to_arrays(distributed.get_dataset_iterator())
    loaded = time.time()
    tx, ty = x[~holdout], y[~holdout]
    # Every rank takes the same number of steps per epoch (DDP all-reduces
    # each one): as many full batches as the smallest partition holds,
    # unless told (the benchmark holds the steps equal across engines).
    counts = torch.tensor([len(tx) // batch_size], dtype=torch.int64)
    dist.all_reduce(counts, op=dist.ReduceOp.MIN)
    steps_per_epoch = steps_per_epoch or int(counts[0])
    if int(counts[0]) < 1:
        raise ValueError(f"a rank has fewer than {batch_size} training rows; "
                         "generate more rows (--rows) or lower --batch-size")

    model = cs.make_model().to(device)
    ddp = DDP(model)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=lr)
    start_step, losses, recovery_s = 0, [], None
    checkpoint = distributed.load_checkpoint()
    if checkpoint is not None:
        state, start_step = checkpoint
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        losses = state["losses"]
    killed_file = os.path.join(ckpt_dir, "killed_at")

    def on_step(step: int, loss: float) -> None:
        nonlocal recovery_s
        losses.append(loss)
        if recovery_s is None and os.path.exists(killed_file):
            with open(killed_file) as f:  # rank killed -> training running again
                recovery_s = time.time() - float(f.read())
        if step % checkpoint_every == 0:
            distributed.save_checkpoint({"model": model.state_dict(),
                                         "optimizer": optimizer.state_dict(),
                                         "losses": losses}, step)
        if step == kill_rank_at and attempt == 0 and rank == world - 1:
            os.makedirs(ckpt_dir, exist_ok=True)
            with open(killed_file, "w") as f:
                f.write(repr(time.time()))
            os.kill(os.getpid(), signal.SIGKILL)  # the fault: a rank dies mid-epoch

    result = cs.train_loop(ddp, optimizer, tx, ty, batch_size=batch_size,
                           steps_per_epoch=steps_per_epoch, epochs=epochs, rank=rank,
                           start_step=start_step, on_step=on_step, device=device)

    # Held-out accuracy of the model and of the best constant (the majority
    # class of the training labels), over every rank's held-out rows.
    model.eval()
    with torch.no_grad():
        hx = torch.from_numpy(x[holdout]).to(device)
        correct = ((model(hx).squeeze(1) > 0).cpu().numpy() == (y[holdout] > 0)).sum()
    sums = torch.tensor([float(correct), float(holdout.sum()), float(ty.sum()), float(len(ty)),
                         float(y[holdout].sum())], dtype=torch.float64)
    dist.all_reduce(sums)
    correct_n, held_n, pos_train, train_n, pos_held = sums.tolist()
    majority = 1.0 if pos_train * 2 > train_n else 0.0
    constant = (pos_held if majority else held_n - pos_held) / held_n
    if rank == 0:
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, model_path)
    total = epochs * steps_per_epoch
    epoch_loss = [float(np.mean(losses[e * steps_per_epoch:(e + 1) * steps_per_epoch]))
                  for e in range(epochs)]
    window = max(1, total // 10)
    return {"attempt": attempt, "resumed_from_step": start_step, "steps": total,
            "steps_per_epoch": steps_per_epoch, "epoch_loss": epoch_loss,
            "first_loss": float(np.mean(losses[:window])),
            "last_loss": float(np.mean(losses[-window:])),
            "holdout_accuracy": correct_n / held_n, "constant_accuracy": constant,
            "train_rows": int(train_n), "holdout_rows": int(held_n),
            "rank_started": started, "rank_data_s": loaded - started,
            "compute_s": result["compute_s"], "recovery_s": recovery_s}


def enrich(frames: Iterator[pd.DataFrame], model_path: str) -> Iterator[pd.DataFrame]:
    """map_in_pandas: each event with `predicted_label`; the model is read
    once per worker process (clickstream.load_model keeps it)."""
    for df in frames:
        yield cs.predict_frame(df, model_path)


def score(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """map_in_pandas over the written output: counts for the summary."""
    for df in frames:
        held = (df["event_id"] % 10) == 0
        right = df["predicted_label"] == df["clicked"]
        yield pd.DataFrame({"rows": [len(df)], "labelled": [int(df["predicted_label"].notna()
                                                                .sum())],
                            "holdout": [int(held.sum())], "holdout_right": [int((right & held)
                                                                               .sum())]})


def say(stage: str, text: str, seconds: float | None = None) -> None:
    """One line of the report: stage, what happened, how long it took."""
    took = f"{seconds:6.1f} s" if seconds is not None else ""
    print(f"{stage:<13}{text:<65}{took}".rstrip(), flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="events to generate")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=512, help="rows per step and rank")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps")
    p.add_argument("--steps-per-epoch", type=int, default=0,
                   help="default: the full batches of the smaller partition")
    p.add_argument("--out", help="directory for events, model and output (default: a "
                   "temporary one, removed at the end)")
    p.add_argument("--kill-rank-at", type=int, default=0, metavar="STEP",
                   help="kill the last rank at this step of the first attempt")
    p.add_argument("--use-gpu", action="store_true", help="train on GPUs with nccl")
    p.add_argument("--json", action="store_true", help="print the summary as JSON last")
    args = p.parse_args(argv)

    keep = args.out is not None
    out = os.path.abspath(args.out) if keep else tempfile.mkdtemp(prefix="protium-story-")
    os.makedirs(out, exist_ok=True)
    if os.listdir(out):
        p.error(f"--out {out} is not empty; give a new or empty directory")
    events_dir, enriched_dir = os.path.join(out, "events"), os.path.join(out, "enriched")
    model_path, ckpt_dir = os.path.join(out, "model.pt"), os.path.join(out, "checkpoints")
    conf: dict[str, Any] = {"barrier.max_attempts": 4}
    if args.use_gpu:
        conf["resources.gpu.discovery_script"] = os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "discover-gpus")
    times: dict[str, float] = {}
    print(f"protium {pt.version()}, local[2]: {args.rows:,} click events, {args.epochs} epochs, "
          f"{'nccl on GPUs' if args.use_gpu else 'gloo on CPUs'}", flush=True)
    try:
        t = time.time()
        with pt.Session("local[2]", conf) as s:
            times["start_s"] = time.time() - t
            t = time.time()
            cs.write_events(s, args.rows, events_dir)
            times["generate_s"] = time.time() - t
            files = sum(1 for f in os.listdir(events_dir) if f.endswith(".arrow"))
            say("1. generate", f"{args.rows:,} events -> {files} Arrow IPC files",
                times["generate_s"])

            features = (s.read_ipc(events_dir)
                        .map_in_pandas(cs.features, cs.FEATURES_SCHEMA)
                        .repartition(2))
            t = time.time()
            r = distributed.run(train, num_processes=2, use_gpu=args.use_gpu, dataset=features,
                                checkpoint_dir=ckpt_dir, max_attempts=4, epochs=args.epochs,
                                batch_size=args.batch_size, lr=args.lr,
                                checkpoint_every=args.checkpoint_every, model_path=model_path,
                                steps_per_epoch=args.steps_per_epoch,
                                ckpt_dir=ckpt_dir,
                                kill_rank_at=args.kill_rank_at, gpu=args.use_gpu)
            times["train_s"] = time.time() - t
            times["train_compute_s"] = r["compute_s"]
            losses = " -> ".join(f"{v:.3f}" for v in r["epoch_loss"])
            say("2. train", f"features -> repartition(2) -> DDP, 2 ranks, {r['steps']:,} steps",
                times["train_s"])
            say("", f"loss {r['first_loss']:.3f} in the first steps, by epoch {losses} "
                "(rank 0)")
            say("", f"held-out accuracy {r['holdout_accuracy']:.3f}, constant predictor "
                f"{r['constant_accuracy']:.3f}")
            if args.kill_rank_at:
                rec = r["recovery_s"]
                say("", f"rank 1 killed at step {args.kill_rank_at:,}; attempt {r['attempt'] + 1}"
                    f" resumed from step {r['resumed_from_step']:,}"
                    + (f" ({rec:.1f} s later)" if rec is not None else ""))

            t = time.time()
            (s.read_ipc(events_dir)
             .map_in_pandas(functools.partial(enrich, model_path=model_path),
                            cs.ENRICHED_SCHEMA)
             .write_ipc(enriched_dir))
            times["enrich_s"] = time.time() - t
            say("3. enrich", "predicted_label for every event, model loaded once per worker",
                times["enrich_s"])

            counts = s.read_ipc(enriched_dir).map_in_pandas(
                score, "rows long, labelled long, holdout long, holdout_right long"
            ).to_pandas().sum()
        accuracy = counts["holdout_right"] / counts["holdout"]
        total = sum(times[k] for k in ("generate_s", "train_s", "enrich_s"))
        say("4. output", f"{int(counts['rows']):,} events written, "
            f"{int(counts['labelled']):,} with predicted_label, held-out accuracy {accuracy:.3f}")
        if keep:
            say("", f"in {enriched_dir}")
        say("total", f"of which training steps {times['train_compute_s']:.1f} s", total)
        summary = {"rows": int(counts["rows"]), "labelled": int(counts["labelled"]),
                   "holdout_rows": int(counts["holdout"]), "output_accuracy": accuracy,
                   **{k: v for k, v in r.items() if k not in ("rank_started",)},
                   **{k: round(v, 3) for k, v in times.items()}}
        if args.json:
            print(json.dumps(summary))
        return summary
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
