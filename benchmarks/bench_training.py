"""Seconds per training epoch: the framework against a minimal hand-written PyTorch loop.

Both sides use the same selector and decoder code on the same tensors, with the paper protocol's
batch size, order and validation pass, so their ratio is the framework's own overhead (Lightning
loop, callbacks, logging, checkpointing). The first epoch is reported separately.

    python benchmarks/bench_training.py --out benchmarks/results/training.json --markdown docs/performance.md

Needs the datasets (IPCAE_DATA_DIR) for MNIST and Mice Protein.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("IPCAE_ROOT", str(ROOT))

import lightning as L  # noqa: E402
import torch  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import open_dict  # noqa: E402

from ipcae.atomic import write_json_atomic  # noqa: E402
from ipcae.callbacks import annealed_temperature  # noqa: E402
from ipcae.results import cpu_model, versions  # noqa: E402
from ipcae.training import build_datamodule, build_model, train  # noqa: E402

CASES = {
    # name: (experiment, model, epochs timed)
    "mnist-ipcae-classification": ("paper/mnist_classification", "ipcae", 6),
    "mnist-ipcae-reconstruction": ("paper/mnist_reconstruction", "ipcae", 6),
    "mice-ipcae-classification": ("paper/mice_protein_classification", "ipcae", 200),
    "mnist-cae-classification": ("paper/mnist_classification", "cae", 6),
}


def config(experiment: str, model: str, epochs: int, output_dir: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"experiment={experiment}", f"model={model}", f"trainer.max_epochs={epochs}",
                       "retrain=false", "trainer.accelerator=cpu", *overrides],
            return_hydra_config=True,
        )  # fmt: skip
    with open_dict(cfg):
        cfg.paths.output_dir = output_dir
        cfg.paths.log_dir = output_dir
        del cfg.hydra
    return cfg


def framework_epochs(cfg) -> list[float]:
    """Epoch times of a real run (``train``: Trainer, callbacks, CSV logger, checkpointing)."""
    results = train(cfg)
    return results["epoch_seconds"]


def plain_loop_epochs(cfg) -> list[float]:
    """The same selector and decoder, Adam, batches by slicing, a validation pass per epoch."""
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    splits = datamodule.load()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.model.lr)
    bs, epochs = datamodule.batch_size, cfg.trainer.max_epochs
    n_train = len(splits.x_train) // bs * bs if cfg.data.drop_last else len(splits.x_train)
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        model.selector.set_temperature(annealed_temperature(epoch / epochs, 10.0, 0.01))
        model.train()
        for i in range(0, n_train, bs):
            x, y = splits.x_train[i : i + bs], splits.y_train[i : i + bs]
            loss = model.task_loss(model(x), x, y) + model.selector.regularization()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            n_val = len(splits.x_val) // bs * bs if cfg.data.drop_last_val else len(splits.x_val)
            x, y = splits.x_val[:n_val], splits.y_val[:n_val]
            float(model.task_loss(model(x), x, y))  # the per-epoch host sync the framework also makes
        times.append(time.perf_counter() - start)
    return times


def summarize(times: list[float]) -> dict[str, float]:
    return {"first_epoch": times[0], "median_epoch": statistics.median(times[1:]), "epochs": len(times)}


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--repeats", type=int, default=3, help="alternating framework / plain runs per case")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "training.json")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for both sides")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report = {"machine": machine(), "versions": versions(), "command": " ".join(sys.argv), "cases": {}}
    for name in args.cases:
        experiment, model, epochs = CASES[name]
        runs = {"framework": [], "plain": []}
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = config(experiment, model, epochs, tmp, args.overrides)
                runs["framework"].append(summarize(framework_epochs(cfg)))
                runs["plain"].append(summarize(plain_loop_epochs(cfg)))
        med = {side: statistics.median(r["median_epoch"] for r in rs) for side, rs in runs.items()}
        first = {side: statistics.median(r["first_epoch"] for r in rs) for side, rs in runs.items()}
        report["cases"][name] = {
            "framework_epoch_s": med["framework"],
            "plain_epoch_s": med["plain"],
            "ratio": med["framework"] / med["plain"],
            "framework_first_epoch_s": first["framework"],
            "plain_first_epoch_s": first["plain"],
            "runs": runs,
        }
        print(f"{name}: framework {med['framework']:.3f} s/epoch, plain {med['plain']:.3f} s/epoch, "
              f"ratio {med['framework'] / med['plain']:.2f}", flush=True)  # fmt: skip
        write_json_atomic(args.out, report)  # after every case, so an interrupted run keeps what it measured


if __name__ == "__main__":
    main()
