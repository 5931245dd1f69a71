"""Logger factories with behaviour the plain Lightning classes lack."""

from __future__ import annotations

import netrc
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc().authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError):
        return False
    return auth is not None


def wandb_logger(**kwargs: Any) -> WandbLogger:
    """A WandbLogger that never prompts: offline unless credentials exist or WANDB_MODE says otherwise.

    ``WANDB_MODE=offline`` or ``disabled`` is honoured; without ``WANDB_API_KEY`` or a netrc entry the
    run is written offline (``wandb sync`` uploads it later) instead of asking for a key on stdin.
    """
    mode = os.environ.get("WANDB_MODE")
    if mode is None and not wandb_has_credentials():
        kwargs["offline"] = True
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(**wandb_sweep_group(kwargs))


def wandb_sweep_group(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Inside a multirun, group the sweep's runs together and tag them with the sweep.

    W&B then shows one group per sweep (named after its folder, a timestamp) instead of mixing the
    jobs of every sweep on the same dataset.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:  # not under Hydra
        return kwargs
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return kwargs
    sweep = Path(hydra_cfg.sweep.dir).name
    tags = [*(kwargs.get("tags") or []), f"sweep:{sweep}"]
    group = f"{kwargs['group']}-{sweep}" if kwargs.get("group") else sweep
    return {**kwargs, "group": group, "tags": tags, "job_type": kwargs.get("job_type") or "sweep"}


class StepAxisTensorBoardLogger(TensorBoardLogger):
    """TensorBoard against optimiser steps.

    Lightning gives loggers its count of batches that stepped, and each batch of the in-memory data
    module holds ``data.steps_per_batch`` optimiser steps. ``step_source`` (set by the training
    code) returns the trainer's optimiser step count, which is used instead.
    """

    step_source: Callable[[], int] | None = None

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if self.step_source is not None:
            step = self.step_source()
        super().log_metrics(metrics, step)


def tensorboard_logger(**kwargs: Any) -> StepAxisTensorBoardLogger:
    return StepAxisTensorBoardLogger(**kwargs)


def prepare_loggers(loggers: list[Any], trainer: Any, config: dict[str, Any]) -> None:
    """TensorBoard against the trainer's optimiser steps; W&B gets the whole resolved config at once
    (Lightning gives it only the module's hyper-parameters), so a run that fails still shows it."""
    for logger in loggers:
        if isinstance(logger, StepAxisTensorBoardLogger):
            logger.step_source = lambda: int(trainer.global_step)
        elif isinstance(logger, WandbLogger) and rank_zero_only.rank == 0:  # set from the launcher's env
            logger.experiment.config.update(config, allow_val_change=True)


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists as strings (TensorBoard's hparams take scalars)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat_config(value, f"{prefix}{key}."))
        else:
            scalar = isinstance(value, str | int | float | bool) or value is None
            out[f"{prefix}{key}"] = value if scalar else str(value)
    return out


def summary_metrics(results: dict[str, Any]) -> dict[str, float]:
    """The run's final numbers under ``hparams/``: what TensorBoard's hparams table and W&B's summary show."""
    metrics: dict[str, float] = {}
    for stage in ("test", "val", "retrained"):
        for name, value in (results.get(stage) or {}).items():
            if isinstance(value, int | float) and value is not None:
                metrics[f"hparams/{stage}_{name}"] = float(value)
    metrics["hparams/unique_pct"] = float(results["unique_pct"])
    if results.get("optimized_value") is not None:
        metrics["hparams/optimized_value"] = float(results["optimized_value"])
    return metrics


def publish_results(loggers: list[Any], cfg: Any, results: dict[str, Any], model: Any, results_path: Path) -> None:
    """Hand a finished run's config, selection and results to the dashboards that are logging it.

    W&B: the whole resolved config, the selected features as a table, ``results.json`` as an
    artefact and the final numbers in the summary. TensorBoard: the hparams plugin with the
    flattened config against the final numbers.
    """
    config = results["config"]
    metrics = summary_metrics(results)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(flat_config(config), metrics=metrics)
            logger.save()
        elif isinstance(logger, WandbLogger):
            publish_to_wandb(logger, config, results, model, results_path, metrics)


def selection_rows(results: dict[str, Any], model: Any) -> list[list[Any]]:
    probabilities = model.selector.selected_probabilities().detach().cpu().tolist()
    return [
        [row, index, name, float(p)]
        for row, (index, name, p) in enumerate(
            zip(results["selected_indices"], results["selected_features"], probabilities, strict=True)
        )
    ]


def publish_to_wandb(
    logger: WandbLogger,
    config: dict[str, Any],
    results: dict[str, Any],
    model: Any,
    results_path: Path,
    metrics: dict[str, float],
) -> None:
    import wandb

    run = logger.experiment
    run.config.update(config, allow_val_change=True)
    table = wandb.Table(columns=["row", "index", "feature", "probability"], data=selection_rows(results, model))
    run.log({"selection/features": table})
    for name, value in metrics.items():
        run.summary[name] = value
    run.summary["selected_features"] = results["selected_features"]
    artifact = wandb.Artifact(name=f"results-{run.id}", type="results", metadata={"model": results["model"]})
    artifact.add_file(str(results_path), name="results.json")
    run.log_artifact(artifact)


def finish_wandb() -> None:
    """Close the W&B run; for an offline run, say where it is and how to upload it."""
    import wandb

    run = wandb.run
    if run is None:
        return
    offline = bool(getattr(run, "offline", False))
    directory = Path(run.dir).parent if run.dir else None
    wandb.finish()
    if offline and directory is not None:
        print(f"wandb: offline run in {directory}; upload it with: wandb sync {directory}", flush=True)
