"""A store of finished runs, so that a re-launched sweep only runs what is missing.

Each run lives in ``<store>/<dataset>/<task>/<model>/seed<seed>-<key>/`` where ``key`` hashes the
run's configuration minus everything that does not change its outcome (output paths, loggers,
Hydra's own settings). A directory with a ``results.json`` is finished; one with a ``failed.json``
records why a job of a sweep failed (and is retried on the next launch).
"""

from __future__ import annotations

import hashlib
import json
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ipcae.atomic import atomic_file, write_json_atomic
from ipcae.results import machine_roots, portable, read_results

IGNORED_KEYS = (
    "paths", "hydra", "logger", "store_dir", "ckpt_path", "tags", "task_name", "threads", "compile", "resume",
)  # fmt: skip
RESULTS_FILE = "results.json"
FAILED_FILE = "failed.json"
EPOCHS_FILE = "epochs.csv"


# Options added after runs were stored, left out of the hash at values that leave every outcome as
# it was, so that stored runs keep their keys. Dotted paths into the config; the value: the neutral
# values, or None for "at any value". max_noise_elements=null is the default budget, far above the
# paper's sizes; max_map_gib is a guard that refuses or allows; last_checkpoint writes last.ckpt for
# resuming; selection_images only draws; the objective is what a sweep reads, not what is computed.
NEUTRAL_OPTIONS: dict[str, tuple[object, ...] | None] = {
    "model.selector.max_noise_elements": (None,),
    "model.selector.max_map_gib": None,
    "callbacks.last_checkpoint": None,
    "callbacks.selection_images": None,
    "optimized_metric": None,
    "optimized_direction": None,
    "plots": None,
    # A table's labels file and memory mapping: absent before they existed, hashed only when set.
    "data.labels": (None,),
    "data.mmap": ("auto",),
    "data.mmap_above_gib": (1.0, 1),
}
# Options that existed when runs were stored and whose value changes how a run is kept, never what
# it computes: hashed at the value they had then, whatever they are now.
PINNED_OPTIONS: dict[str, object] = {
    "callbacks.model_checkpoint.save_last": False,
}
# Values that replaced earlier ones without changing any outcome, hashed as the earlier value:
# the progress bar that counts optimiser steps draws what the plain tqdm bar drew.
EQUIVALENT_VALUES: dict[str, dict[object, object]] = {
    "callbacks.progress_bar._target_": {
        "ipcae.callbacks.StepProgressBar": "lightning.pytorch.callbacks.TQDMProgressBar"
    },
}
# The selector's entries, as they were named before the mechanism took dotted paths.
NEUTRAL_SELECTOR_OPTIONS = {
    k.removeprefix("model.selector."): v for k, v in NEUTRAL_OPTIONS.items() if k.startswith("model.selector.")
}


def _parent(container: dict[str, Any], dotted: str) -> tuple[dict[str, Any] | None, str]:
    *path, name = dotted.split(".")
    node: Any = container
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), name


def _drop_neutral_options(container: dict[str, Any]) -> None:
    for dotted, neutral in NEUTRAL_OPTIONS.items():
        parent, name = _parent(container, dotted)
        if parent is not None and name in parent and (neutral is None or parent[name] in neutral):
            del parent[name]
    for dotted, replaced in EQUIVALENT_VALUES.items():
        parent, name = _parent(container, dotted)
        if parent is not None and name in parent and parent[name] in replaced:
            parent[name] = replaced[parent[name]]
    for dotted, value in PINNED_OPTIONS.items():
        parent, name = _parent(container, dotted)
        if parent is not None and name in parent:
            parent[name] = value


def config_key(cfg: DictConfig) -> str:
    """Hash of the unresolved config without ``IGNORED_KEYS``: identical on every machine.

    Unresolved, so that interpolated paths (``${paths.data_dir}``) hash as written, not as resolved.
    """
    container = OmegaConf.to_container(cfg, resolve=False)
    _drop_neutral_options(container)
    relevant = {k: v for k, v in container.items() if k not in IGNORED_KEYS}
    blob = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def run_dir(store: str | Path, cfg: DictConfig) -> Path:
    return Path(store) / cfg.data.name / cfg.task.name / cfg.model.name / f"seed{cfg.seed}-{config_key(cfg)}"


def finished_results(store: str | Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The stored results of this exact configuration, if a complete record exists."""
    path = run_dir(store, cfg) / RESULTS_FILE
    try:
        return read_results(path)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def compact_epochs(metrics_csv: Path) -> pd.DataFrame:
    """One row per epoch from Lightning's metrics.csv (which writes train and val on separate rows)."""
    frame = pd.read_csv(metrics_csv)
    # Test metrics live in results.json; here they would add a row after the last epoch.
    drop = [c for c in frame.columns if c == "step" or c.startswith("test/")]
    frame = frame.drop(columns=drop).dropna(how="all", subset=[c for c in frame.columns if c not in [*drop, "epoch"]])
    frame = frame.groupby("epoch", as_index=False).first()
    # The validation pass at the chosen checkpoint after fit is logged as one more "epoch".
    if "train/loss" in frame:
        frame = frame[frame["train/loss"].notna()]
    return frame.round(6)


def save_run(store: str | Path, cfg: DictConfig, results: dict[str, Any], output_dir: Path) -> Path:
    """Copy a finished run's results (and its per-epoch metrics, compacted) into the store."""
    target = run_dir(store, cfg)
    target.mkdir(parents=True, exist_ok=True)
    metrics = output_dir / "metrics.csv"
    if metrics.is_file():
        with atomic_file(target / EPOCHS_FILE) as f:
            compact_epochs(metrics).to_csv(f, index=False)
    (target / FAILED_FILE).unlink(missing_ok=True)
    # results.json last: its presence marks the run as finished.
    return write_json_atomic(target / RESULTS_FILE, results)


def record_failure(directory: Path, cfg: DictConfig, error: BaseException, **extra: object) -> Path:
    roots = machine_roots(OmegaConf.to_container(cfg.paths, resolve=True) if "paths" in cfg else None)
    record = {
        "error": f"{type(error).__name__}: {error}",
        **extra,
        "traceback": traceback.format_exception(error),
        "config": OmegaConf.to_container(cfg, resolve=False),
    }
    return write_json_atomic(directory / FAILED_FILE, portable(record, roots))
