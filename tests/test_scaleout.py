"""Scaling out: DDP end to end, sweeps that optimise the validation loss, launchers, dashboards,
Lightning's step controls counted in optimiser steps, and the plots of a run."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from ipcae.callbacks import StepProgressBar, TemperatureAnnealing
from ipcae.data import InMemoryDataModule
from ipcae.data.datamodule import per_rank_batch_size
from ipcae.errors import ConfigError
from ipcae.module import FeatureSelectionModule
from ipcae.objective import objective_fields, sweep_value
from ipcae.plots import image_shape, pixel_mask, plot_selection

ROOT = Path(__file__).resolve().parents[1]
DIGITS_STEPS_PER_EPOCH = math.ceil(1078 / 128)  # 9 optimiser steps at the dataset's batch size
SELECTOR = {"_target_": "ipcae.selectors.IndirectSelector"}
DECODER = {"_target_": "ipcae.decoders.MLPDecoder", "hidden_sizes": [16]}


def command(*args: str) -> list[str]:
    flags = [a for a in args if a == "-m"]  # Hydra's flags go before the overrides
    overrides = [a for a in args if a != "-m"]
    quiet = ["threads=1", "callbacks.progress_bar.refresh_rate=0"]
    return [sys.executable, str(ROOT / "src" / "train.py"), *flags, *quiet, *overrides]


def run(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "WANDB_MODE": "offline", **(env or {})},
        timeout=timeout,
    )


def train(tmp_path: Path, *overrides: str, env: dict[str, str] | None = None) -> dict:
    proc = run(f"hydra.run.dir={tmp_path}", *overrides, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "results.json").read_text())


# --- DDP -------------------------------------------------------------------------------------------

DDP = ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2")


def test_ddp_with_a_retrained_decoder_finishes(tmp_path: Path) -> None:
    # Rank 0 used to build the retrained decoder's Trainer inside the live process group and hang.
    proc = run(f"hydra.run.dir={tmp_path}", *DDP, "trainer.max_epochs=2", "retrain=true", timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["retrained"]) == {"accuracy", "loss", "val_loss"}
    # data.batch_size is global: 2 ranks of 64 rows take the steps one process of 128 takes.
    assert (results["world_size"], results["effective_batch_size"]) == (2, 128)
    assert results["steps"] == 2 * DIGITS_STEPS_PER_EPOCH
    assert results["n_test"] == 360 and 0 <= results["test"]["accuracy"] <= 1
    assert "sync_dist=True" not in proc.stderr  # every epoch-level log is synchronised


def test_ddp_stg_paper_preset_reports_the_retrained_decoder(tmp_path: Path, real_data_dir: Path) -> None:
    results = train(
        tmp_path, "experiment=paper/mice_protein_classification", "model=stg", *DDP, "trainer.max_epochs=3",
        env={"IPCAE_DATA_DIR": str(real_data_dir)},
    )  # fmt: skip
    assert results["reported"] == "retrained" and results["retrained"]["accuracy"] > 0
    assert results["world_size"] == 2 and results["effective_batch_size"] == 16
    assert results["steps"] == 3 * (648 // 16)  # drop_last: 40 full global batches per epoch
    assert results["optimized_value"] == pytest.approx(results["retrained"]["val_loss"])


def test_the_global_batch_is_split_over_ranks() -> None:
    assert per_rank_batch_size(128, 1) == 128
    assert per_rank_batch_size(128, 2) == 64
    with pytest.raises(ConfigError, match="multiple of 3"):
        per_rank_batch_size(128, 3)


# --- Lightning's controls in optimiser steps ---------------------------------------------------------


def test_max_steps_with_unbounded_epochs_trains_exactly_that_many_steps(tmp_path: Path) -> None:
    proc = run(f"hydra.run.dir={tmp_path}", "+trainer.max_steps=100", "trainer.max_epochs=-1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["steps"] == 100
    assert "data.steps_per_batch=32 -> 1" in proc.stdout + proc.stderr
    epochs = math.ceil(100 / DIGITS_STEPS_PER_EPOCH)
    assert results["epochs"] == epochs
    frame = pd.read_csv(tmp_path / "metrics.csv")
    temperatures = frame["train/temperature"].dropna().tolist()
    # Annealed from start to end over the run's real length, once per epoch, never rising.
    assert len(temperatures) == epochs
    assert temperatures[0] == pytest.approx(10.0)
    assert temperatures[-1] == pytest.approx(10.0 * 0.001 ** ((epochs - 1) / epochs), rel=1e-5)
    assert all(a > b for a, b in itertools.pairwise(temperatures))


def test_an_unbounded_run_is_one_clear_line(tmp_path: Path) -> None:
    proc = run(f"hydra.run.dir={tmp_path}", "trainer.max_epochs=-1")
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "max_steps" in errors[0]
    assert "Traceback" not in proc.stderr


class StepCounter(L.Callback):
    def __init__(self) -> None:
        self.temperatures: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.temperatures.append(pl_module.selector.temperature.item())


def fit(tmp_path: Path, callbacks: list[L.Callback], steps_per_batch: int = 32, **trainer_kwargs) -> L.Trainer:
    torch.manual_seed(0)
    data = InMemoryDataModule("digits", steps_per_batch=steps_per_batch)
    model = FeatureSelectionModule(64, 10, k=5, selector=SELECTOR, decoder=DECODER)
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=callbacks,
        default_root_dir=tmp_path,
        **trainer_kwargs,
    )
    trainer.fit(model, datamodule=data)
    return trainer


def test_limit_train_batches_counts_optimiser_steps(tmp_path: Path) -> None:
    trainer = fit(tmp_path, [TemperatureAnnealing()], max_epochs=2, limit_train_batches=1, enable_progress_bar=False)
    assert trainer.global_step == 2  # one optimiser step per epoch, not 32
    assert trainer.datamodule.steps_per_batch == 1


def test_max_steps_sets_the_temperature_schedule_length(tmp_path: Path) -> None:
    counter = StepCounter()
    trainer = fit(tmp_path, [TemperatureAnnealing(), counter], max_epochs=-1, max_steps=30, enable_progress_bar=False)
    assert trainer.global_step == 30
    epochs = math.ceil(30 / DIGITS_STEPS_PER_EPOCH)
    assert counter.temperatures == pytest.approx([10.0 * 0.001 ** (e / epochs) for e in range(epochs)], rel=1e-6)


def test_the_progress_bar_counts_optimiser_steps(tmp_path: Path) -> None:
    class Seen(StepProgressBar):
        def __init__(self) -> None:
            super().__init__()
            self.totals: list[tuple[int, int]] = []

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            self.totals.append((self.train_progress_bar.n, self.train_progress_bar.total))
            super().on_train_epoch_end(trainer, pl_module)

    bar = Seen()
    trainer = fit(tmp_path, [bar], max_epochs=2)
    assert trainer.datamodule.steps_per_batch == 32  # grouped: one Lightning batch per epoch
    assert bar.totals == [(DIGITS_STEPS_PER_EPOCH, DIGITS_STEPS_PER_EPOCH)] * 2


# --- The objective of a sweep ---------------------------------------------------------------------


def test_the_objective_is_the_validation_loss_and_failures_rank_worst() -> None:
    cfg = OmegaConf.create({"optimized_metric": "val/loss", "optimized_direction": "minimize"})
    results = {"val": {"loss": 0.5, "accuracy": 0.9}, "test": {"loss": 0.1, "accuracy": 0.99}, "reported": "joint"}
    fields = objective_fields(cfg, results)
    assert fields == {"optimized_metric": "val/loss", "optimized_direction": "minimize", "optimized_value": 0.5}
    assert sweep_value(cfg, {**results, **fields}) == 0.5
    assert sweep_value(cfg, None) == math.inf
    assert sweep_value(cfg, {**results, "optimized_value": float("nan")}) == math.inf
    maximize = OmegaConf.create({"optimized_metric": "val/accuracy", "optimized_direction": "maximize"})
    assert sweep_value(maximize, None) == -math.inf
    assert objective_fields(maximize, results)["optimized_value"] == 0.9
    # Methods that report a retrained decoder are ranked on its validation loss.
    retrained = {**results, "reported": "retrained", "retrained": {"val_loss": 0.7}}
    assert objective_fields(cfg, retrained)["optimized_value"] == 0.7
    with pytest.raises(ConfigError, match="optimized_direction"):
        objective_fields(OmegaConf.create({"optimized_direction": "down"}), results)


def test_results_record_the_objective_and_the_steps(tmp_path: Path) -> None:
    results = train(tmp_path, "trainer.max_epochs=2")
    assert results["optimized_metric"] == "val/loss" and results["optimized_direction"] == "minimize"
    assert results["optimized_value"] == pytest.approx(results["val"]["loss"])
    assert results["config"]["optimized_metric"] == "val/loss"
    assert (results["steps"], results["world_size"], results["effective_batch_size"]) == (18, 1, 128)
    # The plots of the run.
    assert (tmp_path / "selection.png").stat().st_size > 1000
    assert (tmp_path / "curves.png").stat().st_size > 1000


OPTUNA = ("-m", "hparams_search=optuna", "trainer.max_epochs=2", "logger=csv")


def trials(storage: Path) -> list[tuple[str, float | None]]:
    with sqlite3.connect(storage) as db:
        rows = db.execute(
            "SELECT t.state, v.value FROM trials t LEFT JOIN trial_values v ON v.trial_id = t.trial_id"
        ).fetchall()
    return rows


def test_optuna_sweep_picks_the_lowest_validation_loss(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    storage = tmp_path / "optuna" / "study.db"
    proc = run(
        *OPTUNA, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"hydra.sweeper.storage=sqlite:///{storage}", "model.lr=tag(log,interval(0.001,0.1))",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads(p.read_text()) for p in sorted((tmp_path / "sweep").glob("*/results.json"))]
    assert len(runs) == 3
    best = min(runs, key=lambda r: r["optimized_value"])
    chosen = OmegaConf.load(tmp_path / "sweep" / "optimization_results.yaml")
    assert chosen.best_value == pytest.approx(best["optimized_value"])
    assert chosen.best_params["model.lr"] == pytest.approx(best["config"]["model"]["lr"])
    assert "best trial: model.lr=" in proc.stdout
    assert sorted(v for _, v in trials(storage)) == sorted(r["optimized_value"] for r in runs)


def test_optuna_failed_trial_ranks_worst_and_the_sweep_summary_prints(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    storage = tmp_path / "study.db"
    proc = run(
        *OPTUNA, "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={tmp_path / 'sweep'}",
        f"hydra.sweeper.storage=sqlite:///{storage}", "hydra.sweeper.params=null", "model.k=choice(100,5)",
    )  # fmt: skip
    values = sorted(v for _, v in trials(storage))
    failed = values.count(math.inf)
    assert len(values) == 3 and 1 <= failed < 3  # the seeded sampler draws both values
    assert proc.returncode == 1  # a failed job fails the sweep at the end, not in the middle
    assert f"{failed} job(s) of the sweep failed" in proc.stderr
    assert "best trial: model.k=5" in proc.stdout


def test_a_killed_optuna_study_resumes(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    storage = tmp_path / "study.db"
    common = (*OPTUNA, f"hydra.sweeper.storage=sqlite:///{storage}", "hydra.sweeper.study_name=resume")
    first = subprocess.Popen(
        command(*common, "hydra.sweeper.n_trials=20", f"hydra.sweep.dir={tmp_path / 'first'}"),
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if storage.exists() and sum(state == "COMPLETE" for state, _ in trials(storage)) >= 1:
                break
            time.sleep(0.5)
        else:
            pytest.fail("no trial finished")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    done_before = [v for state, v in trials(storage) if state == "COMPLETE"]
    assert 1 <= len(done_before) < 20
    proc = run(*common, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path / 'second'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    done_after = [v for state, v in trials(storage) if state == "COMPLETE"]
    assert len(done_after) == len(done_before) + 2 and set(done_before) <= set(done_after)
    # The study's best covers the trials of both launches.
    assert OmegaConf.load(tmp_path / "second" / "optimization_results.yaml").best_value == pytest.approx(
        min(done_after)
    )


def test_submitit_local_launcher_runs_two_jobs(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    proc = run(
        "-m", "launcher=submitit_local", "seed=0,1", "trainer.max_epochs=1", "logger=none",
        f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/results.json"))]
    assert sorted(r["seed"] for r in runs) == [0, 1]
    assert list(tmp_path.glob(".submitit/*"))  # went through submitit, not the basic launcher


# --- Dashboards ------------------------------------------------------------------------------------


def wandb_records(path: Path) -> list:
    """The records of a W&B run file, read with W&B's own protobuf schema.

    The file is a LevelDB-style log: a 7-byte header (":W&B", magic 0xBEE1, version), then
    32 KiB blocks of chunks (crc32, length, type: 1 full, 2 first, 3 middle, 4 last).
    """
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert struct.unpack("<4sHB", data[:7])[:2] == (b":W&B", 0xBEE1)
    block, pos, pending, records = 32768, 7, b"", []
    while pos + 7 <= len(data):
        space = block - pos % block
        if space < 7:
            pos += space
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (2, 3):
            pending = chunk if kind == 2 else pending + chunk
            continue
        if kind not in (1, 4):
            break
        record = wandb_internal_pb2.Record()
        record.ParseFromString(chunk if kind == 1 else pending + chunk)
        records.append(record)
    return records


def test_wandb_offline_run_gets_config_selection_results_and_images(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    clean = {k: v for k, v in os.environ.items() if k not in ("WANDB_MODE", "WANDB_API_KEY")}
    env = {**clean, "HOME": str(tmp_path), "NETRC": str(tmp_path / "none"), "WANDB_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={tmp_path}", "logger=wandb",
         "trainer.max_epochs=2", "threads=1", "tags=[demo]"],
        capture_output=True, text=True, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    assert f"wandb sync {run_dir}" in proc.stdout
    records = wandb_records(next(run_dir.glob("*.wandb")))
    kinds = Counter(r.WhichOneof("record_type") for r in records)
    assert kinds["run"] == 1
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert list(run.tags) == ["demo"]
    config_keys = {item.key for r in records if r.WhichOneof("record_type") == "config" for item in r.config.update}
    assert {"data", "model", "trainer", "callbacks", "optimized_metric", "seed"} <= config_keys
    artifacts = {r.artifact.type: r.artifact for r in records if r.WhichOneof("record_type") == "artifact"}
    assert [c.path for c in artifacts["results"].manifest.contents] == ["results.json"]
    history_keys = {
        item.key or "/".join(item.nested_key)
        for r in records
        if r.WhichOneof("record_type") == "history"
        for item in r.history.item
    }
    assert "selection/features/_type" in history_keys  # the table
    assert any(k.startswith("selection/probabilities/") for k in history_keys)
    assert any(k.startswith("selection/pixels/") for k in history_keys)
    (table,) = run_dir.glob("files/media/table/selection/features_*.table.json")
    rows = json.loads(table.read_text())["data"]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [row[2] for row in rows] == results["selected_features"]
    assert len(list(run_dir.glob("files/media/images/selection/probabilities_*.png"))) == 2  # one per epoch


def test_wandb_groups_the_runs_of_a_sweep(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    proc = run("-m", "logger=wandb", "seed=0,1", "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path / 'sw'}",
               env={"WANDB_DIR": str(tmp_path)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [
        next(r.run for r in wandb_records(next(d.glob("*.wandb"))) if r.WhichOneof("record_type") == "run")
        for d in (tmp_path / "sw").glob("*/wandb/offline-run-*")
    ]
    assert len(runs) == 2
    assert {r.run_group for r in runs} == {"digits-classification-sw"}
    assert all("sweep:sw" in r.tags for r in runs)


def test_tensorboard_against_optimiser_steps_with_hparams_and_images(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    csv_only = train(tmp_path / "csv", "trainer.max_epochs=2")
    results = train(tmp_path / "tb", "logger=tensorboard", "trainer.max_epochs=2")
    # Logging never changes what is trained.
    assert results["selected_indices"] == csv_only["selected_indices"] and results["test"] == csv_only["test"]
    acc = EventAccumulator(str(tmp_path / "tb" / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert [e.step for e in acc.Scalars("train/loss")] == [DIGITS_STEPS_PER_EPOCH, 2 * DIGITS_STEPS_PER_EPOCH]
    assert [e.step for e in acc.Scalars("val/loss")][:2] == [DIGITS_STEPS_PER_EPOCH, 2 * DIGITS_STEPS_PER_EPOCH]
    assert {"selection/probabilities", "selection/pixels"} <= set(tags["images"])
    assert len(acc.Images("selection/probabilities")) == 2
    pixels = acc.Images("selection/pixels")[-1]
    assert (pixels.width, pixels.height) == (8, 8)
    hparams = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in hparams
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["model.name"].string_value == "ipcae"
    assert start.hparams["data.batch_size"].number_value == 128
    assert acc.Scalars("hparams/test_accuracy")[0].value == pytest.approx(results["test"]["accuracy"])


# --- Plots -----------------------------------------------------------------------------------------


def test_image_shape_comes_from_pixel_names() -> None:
    assert image_shape([f"px_{i // 8}_{i % 8}" for i in range(64)]) == (8, 8)
    assert image_shape([f"px_{i // 4}_{i % 4}" for i in range(12)]) == (3, 4)
    assert image_shape(["f0", "f1"]) is None
    assert image_shape(["px_0_0", "px_0_2"]) is None  # not a full grid
    mask = pixel_mask([0, 5, 5], (2, 3))
    assert mask.tolist() == [[1, 0, 0], [0, 0, 2]]


def test_non_image_selection_plot_names_the_features(tmp_path: Path) -> None:
    import numpy as np

    path = plot_selection(tmp_path / "s.png", [2, 0], [0.9, 0.4], ["alpha", "beta", "gamma"], np.eye(2, 3))
    assert path.is_file() and path.stat().st_size > 1000


# --- GPU (deselected without a CUDA device) ----------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_and_ddp_runs_with_a_retrained_decoder_finish(tmp_path: Path) -> None:
    single = train(tmp_path / "gpu", "trainer=gpu", "trainer.max_epochs=2", "retrain=true")
    assert single["retrained"]["accuracy"] > 0 and single["world_size"] == 1
    devices = min(torch.cuda.device_count(), 2)
    ddp = train(
        tmp_path / "ddp", "trainer=ddp", "trainer.accelerator=gpu", f"trainer.devices={devices}",
        "trainer.max_epochs=2", "retrain=true",
    )  # fmt: skip
    assert ddp["retrained"]["accuracy"] > 0 and ddp["world_size"] == devices
    assert ddp["steps"] == single["steps"] == 2 * DIGITS_STEPS_PER_EPOCH
