"""The number a sweep optimises: ``optimized_metric`` of a run, in ``optimized_direction``.

Hydra's sweepers (Optuna's among them) rank jobs by what the task function returns. That must be a
validation number (the test split is for reporting, never for choosing) and its direction must be
stated: Optuna minimises unless told otherwise. A failed job returns the worst value of that
direction, so the sweeper ranks it last instead of aborting.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from omegaconf import DictConfig

from ipcae.errors import ConfigError

log = logging.getLogger("ipcae")
DEFAULT_METRIC = "val/loss"
DEFAULT_DIRECTION = "minimize"
DIRECTIONS = ("minimize", "maximize")
# Where a "<stage>/<name>" metric lives in results.json; retrained/val_loss is the validation loss of
# the decoder retrained on the K features (what a ranking method such as STG reports).
STAGES = ("val", "test", "retrained")


def metric_and_direction(cfg: DictConfig) -> tuple[str, str]:
    metric = cfg.get("optimized_metric") or DEFAULT_METRIC
    direction = cfg.get("optimized_direction") or DEFAULT_DIRECTION
    if direction not in DIRECTIONS:
        raise ConfigError(f"optimized_direction={direction!r}: use one of {', '.join(DIRECTIONS)}")
    stage = metric.split("/", 1)[0]
    if "/" not in metric or stage not in STAGES:
        raise ConfigError(
            f"optimized_metric={metric!r}: use <stage>/<name> with stage one of {', '.join(STAGES)} (e.g. val/loss)"
        )
    return metric, direction


def metric_value(results: dict[str, Any], metric: str) -> float | None:
    """``metric`` of a run's results; ``val/<name>`` is the reported model's (a retrained decoder's
    ``val_<name>`` for the methods that report one, as the report chooses STG's lambda)."""
    stage, name = metric.split("/", 1)
    retrained = results.get("retrained")
    reported_retrained = results.get("reported") == "retrained" and isinstance(retrained, dict)
    if stage == "val" and reported_retrained and retrained.get(f"val_{name}") is not None:
        return float(retrained[f"val_{name}"])
    section = results.get(stage)
    value = section.get(name) if isinstance(section, dict) else None
    return None if value is None else float(value)


def worst_value(direction: str) -> float:
    return math.inf if direction == "minimize" else -math.inf


def objective_fields(cfg: DictConfig, results: dict[str, Any]) -> dict[str, Any]:
    """The ``optimized_*`` fields of results.json; a missing or non-finite value is recorded as null."""
    metric, direction = metric_and_direction(cfg)
    value = metric_value(results, metric)
    if value is None:
        available = [f"{s}/{n}" for s in STAGES for n in (results.get(s) or {}) if isinstance(results[s], dict)]
        log.warning("optimized_metric=%s is not among this run's metrics (%s)", metric, ", ".join(available))
    return {"optimized_metric": metric, "optimized_direction": direction, "optimized_value": value}


def sweep_value(cfg: DictConfig, results: dict[str, Any] | None) -> float:
    """What the task function returns to the sweeper: the run's value, or the worst one if it failed.

    NaN (a diverged run) counts as failed too: Optuna would refuse it.
    """
    if not results:
        return worst_value("maximize" if cfg.get("optimized_direction") == "maximize" else "minimize")
    metric, direction = metric_and_direction(cfg)
    value = results.get("optimized_value")
    if value is None:  # a run finished before the field existed (from the store)
        value = metric_value(results, metric)
    if value is None or math.isnan(value):
        return worst_value(direction)
    return float(value)
