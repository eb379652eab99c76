"""train_story.py — `bench/run train_story`: the training story
(examples/train_and_enrich.py) at a fixed size, stage by stage, against the
same pipeline in PySpark and in Ray, in the same run.

Each engine runs, on this machine, with 2 workers:
- start: protium Session("local[2]"); SparkSession local[2]; ray.init
  (num_cpus=4: Ray Data's tasks need CPUs beside the 2 training workers);
- generate: ids 0..ROWS-1 -> clickstream.generate (the same vectorized
  numpy code) -> written out: protium map_in_arrow -> write_ipc (Arrow IPC);
  Spark spark.range -> mapInArrow -> write.parquet; Ray ray.data.range ->
  map_batches(pyarrow) -> write_parquet;
- train: read the events -> clickstream.features (pandas) -> 2 ranks ->
  the same MLP, DDP over gloo, same batch size and steps, Adam:
  protium read_ipc -> map_in_pandas -> repartition(2) ->
  protium.distributed.run(dataset=...); Spark read.parquet -> mapInPandas
  -> repartition(2) -> write.parquet, then TorchDistributor(local_mode=True,
  use_gpu=False, num_processes=2).run(fn), each rank reading its share of
  the files with pyarrow (TorchDistributor has no way to feed a DataFrame);
  Ray read_parquet -> map_batches(pandas) -> TorchTrainer(ScalingConfig(
  num_workers=2), datasets={"train": ds}) with get_dataset_shard;
- enrich: read the events -> predicted_label by the model (loaded once
  per worker process) -> written out: map_in_pandas / mapInPandas /
  map_batches(pandas).

Metrics (seconds, wall clock): <engine>.{start,generate,train,enrich,
total}_s; <engine>.train_compute_s: the training steps themselves (forward,
backward, gradient all-reduce, update; timed inside clickstream.train_loop
on rank 0: the compute every engine has to do); <engine>.overhead_s = total
- train_compute_s, everything the engine adds; ratio.overhead.<peer> =
peer overhead / protium's; <engine>.holdout_accuracy (all must learn the
same); protium.recovery_s: a rank SIGKILLed mid-training (a second protium
run) -> both ranks training again from the last checkpoint.
A peer that is missing or fails is reported on stderr and left out.
Environment: PT_BUILD_DIR; PT_BENCH_ROWS (default 1,000,000),
PT_BENCH_EPOCHS (1), PT_BENCH_STEPS (steps per epoch; default: the full
batches of 512 rows of 95 % of a rank's share of the training rows),
PT_BENCH_PEERS ("pyspark,ray"), PT_BENCH_RECOVERY (1: measure recovery).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import run_json, run_peer  # noqa: E402

ROWS = int(os.environ.get("PT_BENCH_ROWS", "1000000"))
EPOCHS = int(os.environ.get("PT_BENCH_EPOCHS", "1"))
BATCH = 512
LR = 3e-3
# Every engine takes these steps: the partitions differ a little from
# engine to engine, so the count is fixed, not taken from the data.
STEPS = int(os.environ.get("PT_BENCH_STEPS", "0")) or max(1, int(ROWS * 0.9 / 2 * 0.95) // BATCH)
PEERS = [p for p in os.environ.get("PT_BENCH_PEERS", "pyspark,ray").split(",") if p]
RECOVERY = os.environ.get("PT_BENCH_RECOVERY", "1") == "1"
STAGES = ("start", "generate", "train", "enrich")
TIMEOUT_S = 1800


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "examples"), str(ROOT / "python")])
    return dict(os.environ, PYTHONPATH=path, PT_BENCH_ROWS=str(ROWS),
                PT_BENCH_EPOCHS=str(EPOCHS), PT_BENCH_STEPS=str(STEPS))


# -- protium: the example itself --------------------------------------------


def protium(work: Path, kill_at: int = 0) -> dict[str, Any]:
    out = work / ("protium-kill" if kill_at else "protium")
    argv = [sys.executable, str(ROOT / "examples" / "train_and_enrich.py"), "--rows", str(ROWS),
            "--epochs", str(EPOCHS), "--batch-size", str(BATCH), "--lr", str(LR),
            "--steps-per-epoch", str(STEPS), "--out", str(out), "--json"]
    if kill_at:
        argv += ["--kill-rank-at", str(kill_at),
                 "--checkpoint-every", str(max(1, EPOCHS * STEPS // 4))]
    r = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    if r.returncode != 0:
        sys.exit(f"protium: the story failed:\n{r.stdout}\n{r.stderr}")
    s = json.loads(r.stdout.strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    return {"start_s": s["start_s"], "generate_s": s["generate_s"], "train_s": s["train_s"],
            "enrich_s": s["enrich_s"], "train_compute_s": s["compute_s"],
            "holdout_accuracy": s["holdout_accuracy"], "recovery_s": s["recovery_s"],
            "resumed_from_step": s["resumed_from_step"], "steps": s["steps"]}


# -- the peers, each in a child process: python train_story.py --peer NAME ---


def _rank_fit(x: Any, y: Any, holdout: Any, save_to: str) -> dict[str, Any]:
    """One rank of a peer: what examples/train_and_enrich.py's train() does
    without checkpoints (the process group is initialised)."""
    import numpy as np
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    import clickstream as cs

    torch.set_num_threads(1)
    rank = dist.get_rank()
    model = cs.make_model()
    ddp = DDP(model)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=LR)
    tx, ty = x[~holdout], y[~holdout]
    r = cs.train_loop(ddp, optimizer, tx, ty, batch_size=BATCH, steps_per_epoch=STEPS,
                      epochs=EPOCHS, rank=rank)
    with torch.no_grad():
        right = ((model(torch.from_numpy(x[holdout])).squeeze(1) > 0).numpy()
                 == (y[holdout] > 0)).sum()
    sums = torch.tensor([float(right), float(holdout.sum())], dtype=torch.float64)
    dist.all_reduce(sums)
    if rank == 0:
        torch.save(model.state_dict(), save_to)
    return {"train_compute_s": r["compute_s"], "holdout_accuracy": float(sums[0] / sums[1]),
            "steps": EPOCHS * STEPS, "loss": float(np.mean(list(r["epoch_loss"].values())))}


def _spark_train(feature_dir: str, save_to: str) -> dict[str, Any]:
    import glob

    import pyarrow.parquet as pq
    import torch.distributed as dist

    import clickstream as cs

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    files = sorted(glob.glob(os.path.join(feature_dir, "part-*.parquet")))[rank::world]
    batches = [b for f in files for b in pq.ParquetFile(f).iter_batches(batch_size=65536)]
    x, y, holdout = cs.to_arrays(batches)
    out = _rank_fit(x, y, holdout, save_to)
    dist.destroy_process_group()
    return out


def _ddl(schema: Any) -> str:
    names = {"int64": "long", "int32": "int", "int8": "byte", "double": "double",
             "float": "float", "string": "string", "bool": "boolean"}
    return ", ".join(f"{f.name} {'timestamp' if str(f.type).startswith('timestamp') else names[str(f.type)]}"
                     for f in schema)


def peer_pyspark(work: Path) -> dict[str, Any]:
    import functools

    from pyspark.ml.torch.distributor import TorchDistributor
    from pyspark.sql import SparkSession

    import clickstream as cs

    t = time.time()
    spark = (SparkSession.builder.master("local[2]").appName("train_story")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.memory", "4g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.sparkContext.addPyFile(str(ROOT / "examples" / "clickstream.py"))
    m = {"start_s": time.time() - t}
    events, features, enriched = (str(work / d) for d in ("events", "features", "enriched"))
    model_path = str(work / "model.pt")

    t = time.time()
    spark.range(0, ROWS, 1, 4).mapInArrow(cs.generate, _ddl(cs.EVENTS_SCHEMA)) \
        .write.parquet(events)
    m["generate_s"] = time.time() - t

    t = time.time()
    spark.read.parquet(events).mapInPandas(cs.features, _ddl(cs.FEATURES_SCHEMA)) \
        .repartition(2).write.parquet(features)
    r = TorchDistributor(num_processes=2, local_mode=True, use_gpu=False).run(
        _spark_train, features, model_path)
    m["train_s"] = time.time() - t
    m.update(r)

    t = time.time()
    spark.read.parquet(events).mapInPandas(
        functools.partial(_predict, model_path=model_path), _ddl(cs.ENRICHED_SCHEMA)) \
        .write.parquet(enriched)
    m["enrich_s"] = time.time() - t
    rows = spark.read.parquet(enriched).count()
    spark.stop()
    if rows != ROWS:
        raise RuntimeError(f"pyspark wrote {rows} rows, not {ROWS}")
    return m


def _predict(frames: Any, model_path: str) -> Any:
    import clickstream as cs

    for df in frames:
        yield cs.predict_frame(df, model_path)


def _ray_train(config: dict[str, Any]) -> None:
    import ray.train

    import clickstream as cs

    shard = ray.train.get_dataset_shard("train")
    x, y, holdout = cs.to_arrays(shard.iter_batches(batch_format="pyarrow", batch_size=65536))
    out = _rank_fit(x, y, holdout, config["save_to"])
    if ray.train.get_context().get_world_rank() == 0:
        # Result.metrics is not kept for reports without a checkpoint: a file is.
        with open(config["result"], "w") as f:
            json.dump(out, f)


def peer_ray(work: Path) -> dict[str, Any]:
    import ray
    import ray.data
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    import clickstream as cs

    t = time.time()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    m = {"start_s": time.time() - t}
    events, enriched = str(work / "events"), str(work / "enriched")
    model_path = str(work / "model.pt")

    t = time.time()
    ray.data.range(ROWS, override_num_blocks=4).map_batches(
        cs.generate_batch, batch_format="pyarrow", batch_size=65536).write_parquet(events)
    m["generate_s"] = time.time() - t

    t = time.time()
    feats = ray.data.read_parquet(events).map_batches(cs.feature_frame, batch_format="pandas")
    result_path = str(work / "result.json")
    trainer = TorchTrainer(_ray_train,
                           train_loop_config={"save_to": model_path, "result": result_path},
                           scaling_config=ScalingConfig(num_workers=2, use_gpu=False),
                           datasets={"train": feats},
                           run_config=RunConfig(storage_path=str(work / "ray"), name="story"))
    trainer.fit()
    m["train_s"] = time.time() - t
    with open(result_path) as f:
        m.update(json.load(f))

    t = time.time()
    ray.data.read_parquet(events).map_batches(
        cs.predict_frame, fn_kwargs={"model_path": model_path}, batch_format="pandas"
    ).write_parquet(enriched)
    m["enrich_s"] = time.time() - t
    rows = ray.data.read_parquet(enriched).count()
    ray.shutdown()
    if rows != ROWS:
        raise RuntimeError(f"ray wrote {rows} rows, not {ROWS}")
    return m


def peer_main(name: str) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    work = Path(tempfile.mkdtemp(prefix=f"train-story-{name}-"))
    try:
        m = {"pyspark": peer_pyspark, "ray": peer_ray}[name](work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(m))


# -- the report ---------------------------------------------------------------


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="train-story-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        results["protium"] = protium(work)
        if RECOVERY:
            kill = protium(work, kill_at=max(2, (EPOCHS * STEPS) // 2 + 7))
            results["protium"]["recovery_s"] = kill["recovery_s"]
            results["protium"]["recovery_resumed_from_step"] = kill["resumed_from_step"]
        # The peers' workers import clickstream and run this interpreter.
        os.environ.update(_env(), PYSPARK_PYTHON=sys.executable,
                          PYSPARK_DRIVER_PYTHON=sys.executable)
        for peer in PEERS:
            r = run_peer(peer, [sys.executable, __file__, "--peer", peer], TIMEOUT_S)
            if r is not None:
                results[peer] = r
    finally:
        shutil.rmtree(work, ignore_errors=True)

    metrics: dict[str, float] = {}
    for name, r in results.items():
        total = sum(r[f"{s}_s"] for s in STAGES)
        for s in STAGES:
            metrics[f"{name}.{s}_s"] = round(r[f"{s}_s"], 3)
        metrics[f"{name}.total_s"] = round(total, 3)
        metrics[f"{name}.train_compute_s"] = round(r["train_compute_s"], 3)
        metrics[f"{name}.overhead_s"] = round(total - r["train_compute_s"], 3)
        metrics[f"{name}.holdout_accuracy"] = round(r["holdout_accuracy"], 4)
    if RECOVERY:
        metrics["protium.recovery_s"] = round(results["protium"]["recovery_s"], 3)
    for peer in PEERS:
        if peer in results:
            metrics[f"ratio.overhead.{peer}"] = round(
                metrics[f"{peer}.overhead_s"] / metrics["protium.overhead_s"], 2)
            metrics[f"ratio.total.{peer}"] = round(
                metrics[f"{peer}.total_s"] / metrics["protium.total_s"], 2)

    print(f"train_story: {ROWS:,} events, {EPOCHS} epoch(s) x {STEPS:,} steps of {BATCH} rows "
          "per rank, 2 ranks (seconds)")
    cols = ["start", "generate", "train", "enrich", "total", "train_compute", "overhead"]
    print(f"{'engine':<10}" + "".join(f"{c:>15}" for c in cols) + f"{'accuracy':>10}")
    for name in results:
        print(f"{name:<10}" + "".join(f"{metrics[f'{name}.{c}_s']:>15.2f}" for c in cols)
              + f"{metrics[f'{name}.holdout_accuracy']:>10.3f}")
    if RECOVERY:
        print(f"protium recovery (rank killed -> training again, from step "
              f"{results['protium']['recovery_resumed_from_step']}): "
              f"{metrics['protium.recovery_s']:.2f} s")
    for peer in PEERS:
        if peer in results:
            print(f"overhead {peer} / protium: {metrics[f'ratio.overhead.{peer}']:.1f}x")
    print(json.dumps({"bench": "train_story", "metrics": metrics}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--peer":
        peer_main(sys.argv[2])
    else:
        main()
