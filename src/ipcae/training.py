"""What ``src/train.py`` and ``src/eval.py`` run: build everything from a Hydra config, fit, test, record."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from ipcae.atomic import write_json_atomic
from ipcae.checkpoints import RandomState, SafeCheckpointIO, load_checkpoint
from ipcae.data import InMemoryDataModule
from ipcae.errors import ConfigError
from ipcae.loggers import finish_wandb, prepare_loggers, publish_results
from ipcae.module import FeatureSelectionModule
from ipcae.objective import metric_and_direction, objective_fields
from ipcae.plots import write_run_plots
from ipcae.results import (
    RESULTS_FILE,
    machine_roots,
    portable,
    print_summary,
    stage_metrics,
    summarize,
    write_selected_features,
)
from ipcae.resume import clear_running, find_resume_point, mark_running, prepare
from ipcae.retrain import retrain_decoder
from ipcae.selectors import check_k
from ipcae.store import finished_results, run_dir, save_run

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
    return datamodule


def model_k(cfg: DictConfig, datamodule: InMemoryDataModule) -> int:
    """K: ``model.k`` if set, else the data config's, else the dataset's registered default."""
    k = cfg.model.get("k")
    k = datamodule.k if k is None else k
    check_k(k, datamodule.num_features)  # before Hydra could wrap the error
    return k


def build_model(cfg: DictConfig, datamodule: InMemoryDataModule) -> FeatureSelectionModule:
    kwargs = OmegaConf.to_container(cfg.model, resolve=True)
    kwargs["k"] = model_k(cfg, datamodule)
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
            finish_wandb()


def best_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    path = getattr(callback, "best_model_path", "") if callback is not None else ""
    return path or None


def checkpoint_epoch(path: str | None, default: int) -> int:
    if path is None:
        return default
    return int(load_checkpoint(path)["epoch"])


def apply_process_settings(cfg: DictConfig) -> None:
    """Settings that hold for the whole process: torch threads and compiled kernels."""
    from ipcae.gumbel import set_compiled

    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    if cfg.get("compile") is not None:
        set_compiled(bool(cfg.compile))


def selection_probabilities(model: FeatureSelectionModule) -> list[float]:
    with torch.no_grad():
        return model.selector.selected_probabilities().float().cpu().tolist()


def record(cfg: DictConfig, results: dict[str, Any], probabilities: list[float] | None = None) -> dict[str, Any]:
    """Write selected_features.csv and results.json atomically (and into the store), print the summary."""
    output_dir = Path(cfg.paths.output_dir)
    write_selected_features(
        output_dir / SELECTION_FILE, results["selected_indices"], results["selected_features"], probabilities
    )
    path = write_json_atomic(output_dir / RESULTS_FILE, results)
    if cfg.get("store_dir"):
        save_run(cfg.store_dir, cfg, results, output_dir)
    clear_running(cfg, run_dir(cfg.store_dir, cfg) if cfg.get("store_dir") else None)
    print_summary(results, path)
    return results


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
    metric_and_direction(cfg)  # a bad objective is refused before any work
    apply_process_settings(cfg)
    if cfg.model.get("ranker"):
        from ipcae.ranking import train_ranker

        results = train_ranker(cfg)
        return record(cfg, {**results, **objective_fields(cfg, results)})
    # An interrupted run of this configuration (resume=true, or a store entry in progress).
    store_entry = run_dir(store, cfg) if store else None
    point = find_resume_point(cfg, store_entry)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    ckpt_path = prepare(point, Path(cfg.paths.output_dir)) if point else cfg.get("ckpt_path")
    # RandomState: the generators' states go into every checkpoint, so that a resume is exact.
    callbacks = [*build_list(cfg.get("callbacks")), RandomState()]
    loggers = build_list(cfg.get("logger"))
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[SafeCheckpointIO()]
    )
    prepare_loggers(loggers, trainer, portable_config(cfg))
    mark_running(cfg, store_entry)
    try:
        started = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        train_seconds = time.perf_counter() - started
        best = best_checkpoint(trainer)
        # Validation metrics at the selected checkpoint, for choosing hyperparameters (e.g. lambda).
        (val_metrics,) = trainer.validate(
            model, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True
        )
        (test_metrics,) = trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False, weights_only=True)
    except BaseException:
        finish_loggers(loggers)
        raise
    # What follows (the retrained decoder, results, plots) runs on rank 0 alone, outside DDP.
    leave_process_group()
    if not trainer.is_global_zero:
        finish_loggers(loggers)
        return {}
    timer = next((c for c in callbacks if hasattr(c, "epoch_seconds")), None)
    indices = model.selector.selected_indices().cpu().tolist()
    extra: dict[str, Any] = {}
    reports_retrained = model.selector.reports_retrained
    if cfg.get("retrain") or reports_retrained:
        extra["retrained"] = retrain_decoder(cfg, datamodule, indices, model.task)
    if point is not None:
        extra["resumed_from_epoch"] = point.epoch
    results = summarize(
        cfg,
        datamodule,
        model_name=model.hparams.name,
        selector_name=type(model.selector).__name__,
        task=model.task,
        indices=indices,
        test=stage_metrics(test_metrics, "test"),
        reported="retrained" if reports_retrained else "joint",
        val=stage_metrics(val_metrics, "val"),
        **extra,
        best_epoch=checkpoint_epoch(best, default=trainer.current_epoch - 1),
        epochs=trainer.current_epoch,
        train_seconds=round(train_seconds, 3),
        epoch_seconds=[round(s, 4) for s in timer.epoch_seconds] if timer else None,
        **run_scale(trainer, datamodule),
    )
    results.update(objective_fields(cfg, results))
    try:
        record(cfg, results, selection_probabilities(model))
        finish_run(cfg, results, model, datamodule, loggers)
    finally:
        finish_loggers(loggers)
    return results


def portable_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config without this machine's directories (as results.json records it)."""
    return portable(OmegaConf.to_container(cfg, resolve=True), machine_roots(cfg.get("paths")))


def run_scale(trainer: L.Trainer, datamodule: InMemoryDataModule) -> dict[str, int]:
    """How much work the run did and on how many processes (``data.batch_size`` is global under DDP)."""
    return {
        "steps": int(trainer.global_step),
        "world_size": trainer.world_size,
        "effective_batch_size": datamodule.batch_size,
    }


def leave_process_group() -> None:
    """End DDP on every rank once fit, validation and test are done.

    Rank 0 then trains the retrained decoder with a single-device Trainer; inside a live process
    group its metrics would wait for ranks that have already returned.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def finish_run(
    cfg: DictConfig,
    results: dict[str, Any],
    model: FeatureSelectionModule,
    datamodule: InMemoryDataModule,
    loggers: list[Any],
) -> None:
    """What a finished run adds beside results.json: dashboards' summaries and the plots."""
    output_dir = Path(cfg.paths.output_dir)
    publish_results(loggers, cfg, results, model, output_dir / RESULTS_FILE)
    if cfg.get("plots", True):
        write_run_plots(output_dir, results, model.selector, datamodule.feature_names)


def checkpoint_data(cfg: DictConfig, checkpoint: dict[str, Any]) -> DictConfig:
    """The data config to evaluate on: the checkpoint's dataset and options, unless none were saved.

    A dataset or option given on the command line that differs from the checkpoint's is refused:
    another dataset with the same D, or other preprocessing, would give numbers that look valid.
    """
    saved = checkpoint.get(InMemoryDataModule.__qualname__)
    if not isinstance(saved, dict) or "name" not in saved:
        return cfg.data  # a checkpoint from before the data options were saved: the D check below
    from ipcae.results import run_overrides

    given = {o.split("=", 1)[0].lstrip("+~") for o in run_overrides()}
    data = cfg.data.copy()
    saved_options = dict(saved.get("options") or {})
    if ("data" in given or "data.name" in given) and cfg.data.name != saved["name"]:
        raise ConfigError(
            f"data={cfg.data.name} but the checkpoint was trained on data={saved['name']}: "
            f"drop data= (the checkpoint's dataset is used) or pass data={saved['name']}"
        )
    for key in sorted(k for k in given if k.startswith("data.options.")):
        name = key.split(".", 2)[2]
        value = OmegaConf.select(cfg, key)
        if name not in saved_options or saved_options[name] != value:
            raise ConfigError(
                f"{key}={value} but the checkpoint was trained with "
                f"{'no ' + name if name not in saved_options else f'{name}={saved_options[name]}'}: "
                "drop it (the checkpoint's options are used)"
            )
    with open_dict(data):
        data.name, data.options, data.module = saved["name"], saved_options, saved.get("module")
        # K and batch size are the trained model's business, not the data's: the registry defaults do.
        data.k = None
    return data


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test a trained checkpoint on its dataset's test split and write the same results.json."""
    if not cfg.get("ckpt_path"):
        raise ConfigError("ckpt_path is not set: pass ckpt_path=<run dir>/checkpoints/<name>.ckpt")
    checkpoint = load_checkpoint(cfg.ckpt_path)
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict):
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} has no saved hyper-parameters: use a checkpoint of a training run"
        )
    data_cfg = checkpoint_data(cfg, checkpoint)
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.data = data_cfg  # results.json records the data the checkpoint was evaluated on
    datamodule: InMemoryDataModule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("test")
    # Built through the allow-list of ipcae.checkpoints: a crafted checkpoint cannot name a function.
    model = FeatureSelectionModule(**hparams)
    model.load_state_dict(checkpoint["state_dict"])
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
        model_name=model.hparams.name,
        selector_name=type(model.selector).__name__,
        task=model.task,
        indices=model.selector.selected_indices().cpu().tolist(),
        test=stage_metrics(test_metrics, "test"),
        best_epoch=int(checkpoint.get("epoch", -1)),
        epochs=None,
        train_seconds=None,
        epoch_seconds=None,
        checkpoint=str(Path(cfg.ckpt_path).resolve()),
    )
    return record(cfg, results, selection_probabilities(model))
