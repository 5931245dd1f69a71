"""High-dimensional selection on synthetic data with a known answer: memory, time, accuracy, recovery.

    OMP_NUM_THREADS=1 python benchmarks/bench_highdim.py --d 1000,10000 --epochs 3 \\
        --out benchmarks/results/highdim.jsonl
    python benchmarks/bench_highdim.py --layout sparse --d 10000,100000,1000000 \\
        --methods ipcae_per_batch --epochs 20

Data: N training rows (plus validation and test rows) of D features; 10 of them, at indices drawn
from the data seed, are informative. ``--layout dense``: every feature N(0, 1). ``--layout
sparse``: a CSR matrix (:class:`ipcae.data.rows.SparseRows`) whose non-informative columns are
N(0, 1) in a ``--density`` fraction of the rows (1 %) and zero elsewhere, and whose 10 informative
columns are dense N(0, 1) (rare words carry no signal that N = 5,000 rows could find; a frequent
one can). The class is the sign of a non-linear function of the 10 informative features (see
:func:`target`): each one matters, none suffices.

Every (method, D) case runs in a subprocess of its own, so that each peak resident memory
(``ru_maxrss``) is that case's alone, under a wall-clock limit. Each finished (or timed out, or
failed) case appends one JSON line to ``--out`` as soon as it ends, with the machine and the
command. Training goes through the framework's own classes: the dataset is registered with
:func:`ipcae.data.registry.register` and served by :class:`ipcae.data.InMemoryDataModule`; the
model is :class:`ipcae.module.FeatureSelectionModule` with the temperature annealing callback.
As in the paper protocol, the selection and test metrics are those of the checkpoint with the lowest
validation loss (``--checkpoint best``; ``last``: after the last epoch, as records without a
``checkpoint`` field were measured); the selection after the last epoch is recorded beside it
(``informative_found_last``). Few epochs are the default.

Methods: ``<selector>_<noise>`` with selector ``ipcae`` (IndirectSelector, P = --embedding-dim,
64 by default) or ``cae`` (DirectSelector), noise ``per_example``, ``per_batch`` or ``auto``;
``stg`` (STGSelector, lambda 0.1, its reference defaults); ``lassonet`` (the lassonet package's
path through :func:`ipcae.lassonet_baseline.lassonet_ranking`, stopped at K features; its
``test_accuracy`` is null: it ranks, a decoder on its K features is not part of this benchmark).

``--steps`` limits the optimiser steps per epoch, for cases that measure memory only (the
per-example estimator at D = 10^5 takes minutes per epoch on two cores). ``data_mb`` is the
data's own size (dense: N x D float32; sparse: the CSR arrays), so that peak memory can be read
against it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import scipy.sparse  # noqa: E402

from ipcae.callbacks import EpochTimer, TemperatureAnnealing  # noqa: E402
from ipcae.data import InMemoryDataModule  # noqa: E402
from ipcae.data.registry import register  # noqa: E402
from ipcae.data.rows import SparseRows  # noqa: E402
from ipcae.data.splits import Splits  # noqa: E402
from ipcae.module import FeatureSelectionModule  # noqa: E402
from ipcae.results import machine  # noqa: E402

DATASET = "synthetic_highdim"
INFORMATIVE = 10
SELECTORS = {"ipcae": "ipcae.selectors.IndirectSelector", "cae": "ipcae.selectors.DirectSelector"}
NOISES = ("per_example", "per_batch", "auto")
OTHER_METHODS = ("stg", "lassonet")
LAYOUTS = ("dense", "sparse")
DEFAULT_METHODS = "ipcae_per_example,ipcae_per_batch,cae_per_example"


def informative_indices(d: int, seed: int) -> list[int]:
    """The 10 informative columns of the data with ``seed`` (sorted)."""
    generator = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(d, generator=generator)[:INFORMATIVE].tolist())


def target(informative: torch.Tensor) -> torch.Tensor:
    """Class 0/1 from the N x 10 informative columns: the sign of a non-linear function of all ten.

    f = sum_{i<8} tanh(1.5 x_i) + (x_8^2 - 1) + (|x_9| - 0.8) / 2, about balanced. Saturating and
    even terms: a linear model on the ten misses part of it; every feature carries some signal of
    its own, so that a selector can find it (products of pairs would hide each factor's).
    """
    z = informative
    f = torch.tanh(1.5 * z[:, :8]).sum(1) + (z[:, 8] ** 2 - 1) + (z[:, 9].abs() - 0.8) / 2
    return (f > 0).long()


def synthetic_splits(
    data_dir: Path,
    d: int = 1000,
    n_train: int = 5000,
    n_val: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
) -> Splits:
    """The dataset's loader (registered as ``synthetic_highdim``; ``data_dir`` is unused): dense
    float32 N(0, 1) features drawn in row blocks, so that no float64 copy of the matrix exists."""
    generator = torch.Generator().manual_seed(seed)
    idx = torch.tensor(informative_indices(d, seed))

    def block(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.empty(n, d)
        for start in range(0, n, 1024):
            x[start : start + 1024].normal_(generator=generator)
        return x, target(x[:, idx])

    x_train, y_train = block(n_train)
    x_val, y_val = block(n_val)
    x_test, y_test = block(n_test)
    names = [f"f{i}" for i in range(d)]
    return Splits(DATASET, x_train, y_train, x_val, y_val, x_test, y_test, names, num_classes=2)


def sparse_synthetic_splits(
    data_dir: Path,
    d: int = 1000,
    n_train: int = 5000,
    n_val: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
    density: float = 0.01,
) -> Splits:
    """The sparse layout (registered as ``synthetic_highdim_sparse``): CSR rows built block by block
    (no dense matrix, no float64 copy); informative columns dense, the others at ``density``."""
    rng = np.random.default_rng(seed)
    informative = np.asarray(informative_indices(d, seed))
    others = np.setdiff1d(np.arange(d), informative)

    def block(n: int) -> tuple[SparseRows, torch.Tensor]:
        parts, labels = [], []
        for start in range(0, n, 500):
            rows = min(500, n - start)
            nnz = rng.binomial(rows * len(others), density)
            r = rng.integers(0, rows, nnz)
            c = others[rng.integers(0, len(others), nnz)]
            v = rng.standard_normal(nnz, dtype=np.float32)
            dense = rng.standard_normal((rows, len(informative)), dtype=np.float32)
            r = np.concatenate([r, np.repeat(np.arange(rows), len(informative))])
            c = np.concatenate([c, np.tile(informative, rows)])
            v = np.concatenate([v, dense.ravel()])
            m = scipy.sparse.coo_matrix((v, (r, c)), shape=(rows, d)).tocsr()
            m.sum_duplicates()
            parts.append(m)
            labels.append(target(torch.from_numpy(dense)))
        return SparseRows.from_scipy(scipy.sparse.vstack(parts, format="csr")), torch.cat(labels)

    x_train, y_train = block(n_train)
    x_val, y_val = block(n_val)
    x_test, y_test = block(n_test)
    names = [f"f{i}" for i in range(d)]
    return Splits(DATASET + "_sparse", x_train, y_train, x_val, y_val, x_test, y_test, names, num_classes=2)


def data_megabytes(splits: Splits) -> float:
    total = 0
    for x in (splits.x_train, splits.x_val, splits.x_test):
        total += x.nbytes if isinstance(x, SparseRows) else x.element_size() * x.numel()
    return round(total / 2**20, 1)


def run_lassonet(args: argparse.Namespace, splits: Splits) -> dict[str, Any]:
    """The lassonet package's path, stopped once K features are left; its top K by importance."""
    from ipcae.lassonet_baseline import lassonet_ranking

    ranking = lassonet_ranking(splits, "classification", args.seed, stop_at=args.k, hidden_dims=[200])
    selected = [int(i) for i in ranking[: args.k]]
    return {"selected": selected, "test_accuracy": None, "epoch_seconds": []}


def run_case(args: argparse.Namespace) -> dict[str, Any]:
    """One (method, D) case, in this process: build, train, test; returns the JSON record."""
    torch.set_num_threads(args.threads)
    name = DATASET if args.layout == "dense" else DATASET + "_sparse"
    loader = synthetic_splits if args.layout == "dense" else sparse_synthetic_splits
    register(name, k=args.k, batch_size=args.batch_size, description="synthetic, 10 informative features")(loader)
    selector_name, _, noise = args.case_method.partition("_")
    d = args.case_d
    started = time.perf_counter()
    options: dict[str, Any] = {"d": d, "n_train": args.n_train, "n_val": args.n_val, "n_test": args.n_test}
    options["seed"] = args.data_seed
    if args.layout == "sparse":
        options["density"] = args.density
    datamodule = InMemoryDataModule(name, batch_size=args.batch_size, k=args.k, seed=args.seed, options=options)
    datamodule.setup("fit")
    data_seconds = time.perf_counter() - started
    data_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    common = {
        "data_rss_mb": round(data_rss / 1024, 1),
        "data_mb": data_megabytes(datamodule.load()),
        "data_seconds": round(data_seconds, 2),
        "informative_indices": informative_indices(d, args.data_seed),
    }
    L.seed_everything(args.seed, verbose=False)
    if selector_name == "lassonet":
        result = run_lassonet(args, datamodule.load())
        selected = result["selected"]
        return {
            "status": "ok",
            "resolved_noise": None,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            **common,
            "epoch_seconds": [],
            "seconds_per_epoch": None,
            "test_accuracy": None,
            "informative_found": len(set(selected) & set(common["informative_indices"])),
            "unique_selected": len(set(selected)),
            "selected_indices": selected,
        }
    if selector_name == "stg":
        selector: dict[str, Any] = {"_target_": "ipcae.selectors.STGSelector"}
    else:
        selector = {"_target_": SELECTORS[selector_name], "noise": noise}
    if selector_name == "ipcae":
        selector["embedding_dim"] = args.embedding_dim
    if args.diversity_weight and selector_name in SELECTORS:
        selector["diversity_weight"] = args.diversity_weight
    if args.max_noise_elements is not None and selector_name in SELECTORS:
        selector["max_noise_elements"] = args.max_noise_elements
    model = FeatureSelectionModule(
        num_features=d,
        num_classes=2,
        k=args.k,
        selector=selector,
        decoder={"_target_": "ipcae.decoders.MLPDecoder", "hidden_sizes": [200]},
        task="classification",
        name=selector_name,
        lr=args.lr,
        optimizer=adam(args.adam_eps),
        scheduler=lr_scheduler(args.lr_schedule, args.epochs),
    )
    timer = ProgressTimer(common["informative_indices"])
    with tempfile.TemporaryDirectory(prefix="bench_highdim_") as checkpoints:
        callbacks: list[L.Callback] = [
            TemperatureAnnealing(start=args.temperature_start, end=args.temperature_end),
            timer,
        ]
        if args.checkpoint == "best":
            # The paper protocol: the checkpoint with the lowest validation loss (hard selection).
            callbacks.append(ModelCheckpoint(dirpath=checkpoints, monitor="val/loss", save_weights_only=True))
        trainer = L.Trainer(
            max_epochs=args.epochs,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=args.checkpoint == "best",
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            callbacks=callbacks,
            limit_train_batches=args.steps if args.steps else 1.0,
        )
        trainer.fit(model, datamodule=datamodule)
        last = model.selector.selected_indices().tolist()
        ckpt_path = "best" if args.checkpoint == "best" else None
        (test,) = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path, verbose=False)
    selected = model.selector.selected_indices().tolist()
    truth = common["informative_indices"]
    losses = timer.val_loss_per_epoch
    return {
        "status": "ok",
        "resolved_noise": getattr(model.selector, "noise", noise),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **common,
        "epoch_seconds": [round(s, 3) for s in timer.epoch_seconds],
        "seconds_per_epoch": round(sum(timer.epoch_seconds) / len(timer.epoch_seconds), 3)
        if timer.epoch_seconds
        else None,
        "test_accuracy": round(float(test["test/accuracy"]), 4),
        "informative_found": len(set(selected) & set(truth)),
        "informative_found_last": len(set(last) & set(truth)),
        "informative_found_per_epoch": timer.found_per_epoch,
        "val_loss_per_epoch": losses,
        "lr_per_epoch": timer.lr_per_epoch,
        "optimizer_eps": timer.optimizer_eps,
        # ModelCheckpoint keeps the first of equal losses, as argmin does.
        "best_epoch": int(np.argmin(losses)) + 1 if args.checkpoint == "best" and losses else None,
        "unique_selected": len(set(selected)),
        "selected_indices": selected,
    }


def adam(eps: float) -> dict[str, Any]:
    """The framework's Adam (conf/model/optimizer/adam.yaml) with ``eps``, its term added to the root of the
    second moment. At D = 10^6 nearly every column of IP-CAE's map gets a gradient orders of magnitude below an
    informative column's (1e-8 against 1e-6 in the first epoch at D = 10^5); Adam divides each by its own
    running size, so at torch's 1e-8 those columns move almost as fast as the informative ones, in directions
    set by chance. A larger ``eps`` leaves such gradients as small steps (``--adam-eps``)."""
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "model" / "optimizer" / "adam.yaml"))
    return {**config, "eps": eps}


def lr_scheduler(schedule: str, epochs: int) -> dict[str, Any] | None:
    """The framework's ``model/scheduler`` config for ``--lr-schedule``: ``cosine`` decays the learning
    rate to 0 over the run (conf/model/scheduler/cosine.yaml), so that a selection found early is less
    often traded late for noise columns with a chance correlation on the training rows."""
    if schedule == "constant":
        return None
    from omegaconf import OmegaConf

    # The config itself, so the benchmark measures what `model/scheduler=cosine` runs; its T_max
    # interpolates trainer.max_epochs, which this script sets to --epochs.
    config = OmegaConf.load(ROOT / "conf" / "model" / "scheduler" / f"{schedule}.yaml")
    composed = OmegaConf.merge({"trainer": {"max_epochs": epochs}}, {"scheduler": config})
    return OmegaConf.to_container(composed, resolve=True)["scheduler"]


class ProgressTimer(EpochTimer):
    """The framework's epoch timer (validation included), also printing each epoch to stderr as it
    ends, so that a case stopped by the time limit still reports the epochs it finished.

    After each epoch (outside the timed span) it also counts the informative features the current
    selection holds: when they are found, and whether a later epoch loses them, is what tells
    settings apart at large D, where one case takes an hour."""

    def __init__(self, informative: list[int]) -> None:
        super().__init__()
        self.informative = set(informative)
        self.found_per_epoch: list[int] = []
        self.val_loss_per_epoch: list[float] = []
        self.lr_per_epoch: list[float] = []
        self.optimizer_eps: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        # The learning rate this epoch trains at (the schedule steps once per epoch).
        self.lr_per_epoch.append(float(trainer.optimizers[0].param_groups[0]["lr"]))
        # The eps the optimiser ran with, read from it rather than from --adam-eps.
        self.optimizer_eps = float(trainer.optimizers[0].param_groups[0]["eps"])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        print(f"EPOCH_SECONDS {self.epoch_seconds[-1]:.4f}", file=sys.stderr, flush=True)
        with torch.no_grad():
            selected = set(pl_module.selector.selected_indices().tolist())
        self.found_per_epoch.append(len(selected & self.informative))
        print(f"EPOCH_FOUND {self.found_per_epoch[-1]}", file=sys.stderr, flush=True)
        # Validation has run by now (Lightning calls this hook after the epoch's validation).
        loss = trainer.callback_metrics.get("val/loss")
        if loss is not None:
            self.val_loss_per_epoch.append(round(float(loss), 5))
            print(f"EPOCH_VAL_LOSS {self.val_loss_per_epoch[-1]}", file=sys.stderr, flush=True)


class LoadSampler:
    """Samples the 1-minute load average while a case runs: timings are comparable only between cases run
    on an equally busy machine (one case alone on its core reads about 1)."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.samples: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)
        self._thread.start()

    def _run(self, every_s: float) -> None:
        self.samples.append(os.getloadavg()[0])
        while not self._done.wait(every_s):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> float | None:
        self._done.set()
        self._thread.join()
        return round(sum(self.samples) / len(self.samples), 2) if self.samples else None


def case_command(args: argparse.Namespace, method: str, d: int) -> list[str]:
    forwarded = [
        "--epochs", str(args.epochs), "--k", str(args.k), "--batch-size", str(args.batch_size),
        "--embedding-dim", str(args.embedding_dim), "--n-train", str(args.n_train), "--n-val", str(args.n_val),
        "--n-test", str(args.n_test), "--seed", str(args.seed), "--data-seed", str(args.data_seed),
        "--threads", str(args.threads), "--layout", args.layout, "--density", str(args.density),
        "--steps", str(args.steps), "--lr", str(args.lr), "--temperature-start", str(args.temperature_start),
        "--temperature-end", str(args.temperature_end),
        "--diversity-weight", str(args.diversity_weight), "--checkpoint", args.checkpoint,
        "--lr-schedule", args.lr_schedule, "--adam-eps", str(args.adam_eps),
    ]  # fmt: skip
    if args.max_noise_elements is not None:
        forwarded += ["--max-noise-elements", str(args.max_noise_elements)]
    return [sys.executable, str(Path(__file__).resolve()), "--case-method", method, "--case-d", str(d), *forwarded]


def run_with_progress(command: list[str], env: dict[str, str], time_limit: float) -> tuple[int | None, str, str]:
    """Run one case; its EPOCH_* lines are echoed to this process's stderr as they come, so that a
    case of an hour shows its progress. Returns (exit code, or None past the time limit; stdout;
    stderr)."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    err_lines: list[str] = []

    def pump_stderr() -> None:
        for line in proc.stderr:
            err_lines.append(line)
            if line.startswith("EPOCH_"):
                print(line.rstrip(), file=sys.stderr, flush=True)

    reader = threading.Thread(target=pump_stderr, daemon=True)
    reader.start()
    out: list[str] = []
    stdout_reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    stdout_reader.start()
    try:
        returncode: int | None = proc.wait(timeout=time_limit)
    except subprocess.TimeoutExpired:
        returncode = None
    finally:
        # Past the time limit, or this process stopped (Ctrl-C, SIGTERM): the case goes with it, rather
        # than training on for an hour with nobody to read its record.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join()
    stdout_reader.join()
    return returncode, "".join(out), "".join(err_lines)


def progress_values(stderr: str, tag: str) -> list[float]:
    """The numbers of a case's ``<tag> <value>`` progress lines, in order (what a timed-out case keeps)."""
    return [float(line.split()[1]) for line in stderr.splitlines() if line.startswith(tag + " ")]


def run_all(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for method in methods:
        selector, _, noise = method.partition("_")
        if method not in OTHER_METHODS and (selector not in SELECTORS or noise not in NOISES):
            raise SystemExit(
                f"error: --methods {method!r} is unknown: use <ipcae|cae>_<{'|'.join(NOISES)}>, stg or lassonet"
            )
    dims = [int(float(v)) for v in args.d.split(",")]
    common = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "threads": args.threads,
        "epochs": args.epochs,
        "k": args.k,
        "batch_size": args.batch_size,
        "n_train": args.n_train,
        "n_val": args.n_val,
        "n_test": args.n_test,
        "seed": args.seed,
        "data_seed": args.data_seed,
        "max_noise_elements": args.max_noise_elements,
        "layout": args.layout,
        "density": args.density if args.layout == "sparse" else None,
        "steps_per_epoch_limit": args.steps or None,
        "lr": args.lr,
        "lr_schedule": args.lr_schedule,
        "adam_eps": args.adam_eps,
        "temperature_start": args.temperature_start,
        "temperature_end": args.temperature_end,
        "checkpoint": args.checkpoint,
        "diversity_weight": args.diversity_weight,
    }
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT / "src")}
    for d in dims:
        for method in methods:
            record: dict[str, Any] = {
                "method": method,
                "d": d,
                "embedding_dim": args.embedding_dim if method.startswith("ipcae") else None,
            }
            started = time.perf_counter()
            load = LoadSampler()
            returncode, stdout, stderr = run_with_progress(case_command(args, method, d), env, args.time_limit)
            if returncode is None:
                seconds = progress_values(stderr, "EPOCH_SECONDS")
                found = [int(n) for n in progress_values(stderr, "EPOCH_FOUND")]
                losses = progress_values(stderr, "EPOCH_VAL_LOSS")
                # An epoch counts once all its lines came: the case may be stopped between two of them.
                done = min(len(seconds), len(found), len(losses))
                seconds, found, losses = seconds[:done], found[:done], losses[:done]
                record.update(
                    status="timeout",
                    time_limit_s=args.time_limit,
                    epochs_done=len(seconds),
                    informative_found_per_epoch=found,
                    val_loss_per_epoch=losses,
                    epoch_seconds=[round(s, 3) for s in seconds],
                    seconds_per_epoch=round(sum(seconds) / len(seconds), 3) if seconds else None,
                )
            else:
                lines = [line for line in stdout.splitlines() if line.startswith("{")]
                if returncode == 0 and lines:
                    record.update(json.loads(lines[-1]))
                else:
                    record.update(status="failed", returncode=returncode, error=stderr.strip()[-2000:])
            record["wall_seconds"] = round(time.perf_counter() - started, 2)
            record["mean_load_1min"] = load.stop()
            record.update(common)
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")
            summary = {k: record.get(k) for k in ("method", "d", "status", "peak_rss_mb", "seconds_per_epoch")}
            summary.update({k: record.get(k) for k in ("test_accuracy", "informative_found")})
            print(json.dumps(summary), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", default="1000,10000,100000", help="comma-separated feature counts D")
    parser.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma-separated (default {DEFAULT_METHODS})")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--time-limit", type=float, default=1800, help="seconds per case before it is stopped")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "highdim.jsonl"))
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--embedding-dim", type=int, default=64, help="P of IP-CAE")
    parser.add_argument("--max-noise-elements", type=int, default=None, help="selector budget (default: module's)")
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--n-val", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the data and the informative indices")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per case")
    parser.add_argument("--layout", choices=LAYOUTS, default="dense")
    parser.add_argument("--density", type=float, default=0.01, help="sparse layout: non-zero fraction of noise columns")
    parser.add_argument("--steps", type=int, default=0, help="optimiser steps per epoch (0: all)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (the paper's 1e-3)")
    parser.add_argument(
        "--adam-eps", type=float, default=1e-8, help="Adam's eps (torch's default 1e-8; see adam() for a larger one)"
    )
    parser.add_argument(
        "--lr-schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="constant (the paper) or cosine decay to 0 over --epochs (model/scheduler=cosine)",
    )
    parser.add_argument("--temperature-start", type=float, default=10.0, help="the paper: 10")
    parser.add_argument("--temperature-end", type=float, default=0.01, help="the paper: 0.01")
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="selection and test metrics at the lowest validation loss (the paper protocol) or after the last epoch",
    )
    parser.add_argument(
        "--diversity-weight", type=float, default=0.0, help="IP-CAE / CAE: lambda of the GJSD diversity term (0: none)"
    )
    parser.add_argument("--case-method", help=argparse.SUPPRESS)
    parser.add_argument("--case-d", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case_method:
        print(json.dumps(run_case(args)), flush=True)
    else:
        # SIGTERM (kill, a scheduler's stop) as an exception, so that the running case is stopped too.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        run_all(args)


if __name__ == "__main__":
    main()
