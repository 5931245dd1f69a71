"""What ``src/train.py`` and ``src/eval.py`` run: build everything from a Hydra config, fit, test, report."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from ipcae.data import InMemoryDataModule
from ipcae.errors import ConfigError
from ipcae.gumbel import set_compiled
from ipcae.lassonet_baseline import lassonet_ranking
from ipcae.metrics import unique_percentage
from ipcae.module import FeatureSelectionModule
from ipcae.results import machine_roots, portable, versions, write_json_atomic, write_selected_features
from ipcae.retrain import retrain_decoder
from ipcae.selectors import check_k
from ipcae.store import finished_results, run_dir, save_run

log = logging.getLogger("ipcae")
RESULTS_FILE = "results.json"
SELECTION_FILE = "selected_features.csv"


def build_datamodule(cfg: DictConfig) -> InMemoryDataModule:
    datamodule: InMemoryDataModule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    task = OmegaConf.select(cfg, "task.name")  # eval configs have no task
    if task == "regression" and not datamodule.load().y_train.is_floating_point():
        raise ConfigError(
            f"task=regression needs a numeric target, and data={datamodule.name} has class labels: "
            "use data=table data.path=FILE data.target=COLUMN, or task=classification"
        )
    if "k" in cfg.data and cfg.data.k is None:
        # K that depends on the data (a table's min(50, D)): model.k and results follow data.k.
        cfg.data.k = datamodule.k
    return datamodule


def build_model(cfg: DictConfig, datamodule: InMemoryDataModule) -> FeatureSelectionModule:
    check_k(cfg.model.k, datamodule.num_features)  # before Hydra could wrap the error
    kwargs = OmegaConf.to_container(cfg.model, resolve=True)
    model_class = get_class(kwargs.pop("_target_"))
    return model_class(
        num_features=datamodule.num_features,
        num_classes=datamodule.num_classes if cfg.task.name == "classification" else None,
        task=cfg.task.name,
        **kwargs,
    )


def build_list(section: DictConfig | None) -> list[Any]:
    """Instantiate every entry with a ``_target_`` of a config group such as ``callbacks``."""
    if not section:
        return []
    return [instantiate(c) for c in section.values() if isinstance(c, DictConfig) and "_target_" in c]


def finish_loggers(loggers: list[Any]) -> None:
    """Close wandb runs, so that each job of a multirun gets a run of its own."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            import wandb

            wandb.finish()


def best_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    path = getattr(callback, "best_model_path", "") if callback is not None else ""
    return path or None


def checkpoint_epoch(path: str | None, default: int) -> int:
    if path is None:
        return default
    return int(torch.load(path, map_location="cpu", weights_only=False)["epoch"])


def summarize(
    cfg: DictConfig,
    datamodule: InMemoryDataModule,
    *,
    model_name: str,
    selector_name: str,
    task: str,
    indices: list[int],
    test: dict[str, float],
    **extra: Any,
) -> dict[str, Any]:
    """The fields of ``results.json`` (see the README)."""
    names = datamodule.feature_names
    splits = datamodule.load()
    return {
        "model": model_name,
        "selector": selector_name,
        "dataset": datamodule.name,
        "task": task,
        "k": len(indices),
        "seed": cfg.seed,
        "selected_indices": list(indices),
        "selected_features": [names[i] for i in indices],
        "unique_pct": float(unique_percentage(torch.as_tensor(indices))),
        "test": test,
        **extra,
        "n_train": splits.sizes[0],
        "n_val": splits.sizes[1],
        "n_test": splits.sizes[2],
        "n_features": splits.num_features,
        "n_classes": splits.num_classes if task == "classification" else None,
        "class_names": splits.class_names if task == "classification" else None,
        "config": portable(OmegaConf.to_container(cfg, resolve=True), machine_roots(cfg.get("paths"))),
        "versions": versions(),
    }


def stage_metrics(metrics: dict[str, Any], stage: str) -> dict[str, float]:
    """``{"test/accuracy": t, ...}`` -> ``{"accuracy": float(t), ...}`` for one stage."""
    prefix = f"{stage}/"
    return {name[len(prefix) :]: float(v) for name, v in metrics.items() if name.startswith(prefix)}


def model_summary(model: FeatureSelectionModule) -> dict[str, Any]:
    return {
        "model_name": model.hparams.name,
        "selector_name": model.hparams.selector["_target_"].rsplit(".", 1)[-1],
        "task": model.task,
        "indices": model.selector.selected_indices().cpu().tolist(),
    }


def selection_probabilities(model: FeatureSelectionModule) -> list[float]:
    with torch.no_grad():
        return model.selector.selected_probabilities().float().cpu().tolist()


def finish(cfg: DictConfig, results: dict[str, Any], probabilities: list[float] | None = None) -> dict[str, Any]:
    """Write selected_features.csv and results.json atomically (and into the store), print the summary."""
    output_dir = Path(cfg.paths.output_dir)
    write_selected_features(
        output_dir / SELECTION_FILE, results["selected_indices"], results["selected_features"], probabilities
    )
    path = write_json_atomic(output_dir / RESULTS_FILE, results)
    if cfg.get("store_dir"):
        save_run(cfg.store_dir, cfg, results, output_dir)
    report(results, path)
    return results


def train_ranker(cfg: DictConfig) -> dict[str, Any]:
    """Methods that output a feature ranking (LassoNet): top K, then the retrained-decoder protocol."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    check_k(cfg.model.k, datamodule.num_features)
    if cfg.model.ranker != "lassonet":
        raise ConfigError(f"model.ranker={cfg.model.ranker!r} is unknown: use lassonet")
    options = OmegaConf.to_container(cfg.model.get("options") or {}, resolve=True)
    started = time.perf_counter()
    stop_at = cfg.model.k if cfg.model.get("path_until_k") else None
    ranking = lassonet_ranking(datamodule.load(), cfg.task.name, cfg.seed, stop_at=stop_at, **options)
    rank_seconds = time.perf_counter() - started
    indices = [int(i) for i in ranking[: cfg.model.k]]
    retrained = retrain_decoder(cfg, datamodule, indices, cfg.task.name)
    results = summarize(
        cfg,
        datamodule,
        model_name=cfg.model.name,
        selector_name="LassoNet",
        task=cfg.task.name,
        indices=indices,
        test={name: value for name, value in retrained.items() if name != "val_loss"},
        val={"loss": retrained.get("val_loss")},
        retrained=retrained,
        train_seconds=round(time.perf_counter() - started, 3),
        rank_seconds=round(rank_seconds, 3),
    )
    return finish(cfg, results)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit with model selection on validation loss, test the best checkpoint, write results.json.

    With ``store_dir`` set, a configuration that already has results there is not run again, and
    a finished run is copied there.
    """
    store = cfg.get("store_dir")
    if store:
        done = finished_results(store, cfg)
        if done is not None:
            print(f"already finished: {run_dir(store, cfg)}")
            return done
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    if cfg.get("compile") is not None:
        set_compiled(bool(cfg.compile))
    if cfg.model.get("ranker"):
        return train_ranker(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    callbacks = build_list(cfg.get("callbacks"))
    loggers = build_list(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    try:
        started = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        train_seconds = time.perf_counter() - started
        best = best_checkpoint(trainer)
        # Validation metrics at the selected checkpoint, for choosing hyperparameters (e.g. lambda).
        (val_metrics,) = trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False)
        (test_metrics,) = trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)
    finally:
        finish_loggers(loggers)
    if not trainer.is_global_zero:
        return {}
    timer = next((c for c in callbacks if hasattr(c, "epoch_seconds")), None)
    summary = model_summary(model)
    extra: dict[str, Any] = {}
    if cfg.get("retrain") or getattr(model.selector, "out_features", None) != model.selector.k:
        # Methods whose decoder sees more than the K features (STG) are only comparable retrained.
        extra["retrained"] = retrain_decoder(cfg, datamodule, summary["indices"], summary["task"])
    results = summarize(
        cfg,
        datamodule,
        **summary,
        test=stage_metrics(test_metrics, "test"),
        val=stage_metrics(val_metrics, "val"),
        **extra,
        best_epoch=checkpoint_epoch(best, default=trainer.current_epoch - 1),
        epochs=trainer.current_epoch,
        train_seconds=round(train_seconds, 3),
        epoch_seconds=[round(s, 4) for s in timer.epoch_seconds] if timer else None,
    )
    return finish(cfg, results, selection_probabilities(model))


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test a trained checkpoint on a dataset's test split and write the same results.json."""
    if not cfg.get("ckpt_path") or not Path(cfg.ckpt_path).is_file():
        raise ConfigError(
            f"ckpt_path={cfg.get('ckpt_path')!r} is not a checkpoint file: "
            "pass ckpt_path=<run dir>/checkpoints/<name>.ckpt"
        )
    datamodule = build_datamodule(cfg)
    model = FeatureSelectionModule.load_from_checkpoint(cfg.ckpt_path, map_location="cpu")
    if model.hparams.num_features != datamodule.num_features:
        raise ConfigError(
            f"the checkpoint selects from {model.hparams.num_features} features but data={datamodule.name} "
            f"has {datamodule.num_features}: pass the dataset it was trained on"
        )
    trainer: L.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    (test_metrics,) = trainer.test(model, datamodule=datamodule, verbose=False)
    results = summarize(
        cfg,
        datamodule,
        **model_summary(model),
        test=stage_metrics(test_metrics, "test"),
        best_epoch=checkpoint_epoch(cfg.ckpt_path, default=-1),
        epochs=None,
        train_seconds=None,
        epoch_seconds=None,
        checkpoint=str(Path(cfg.ckpt_path).resolve()),
    )
    return finish(cfg, results, selection_probabilities(model))


def report(results: dict[str, Any], path: Path) -> None:
    metrics = ", ".join(f"{name} {value:.4f}" for name, value in results["test"].items())
    print(f"{results['model']} on {results['dataset']} ({results['task']}, K={results['k']}, seed={results['seed']})")
    print(f"test: {metrics}; unique features: {results['unique_pct']:.0f}%")
    if results.get("retrained"):
        retrained = ", ".join(f"{name} {value:.4f}" for name, value in results["retrained"].items())
        print(f"test with a retrained decoder: {retrained}")
    print(f"selected: {', '.join(results['selected_features'])}")
    print(f"results: {path}")
