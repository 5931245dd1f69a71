"""The per-run ``results.json``: what a run selected and how well (its schema lives here)."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
from pathlib import Path
from typing import Any

import lightning
import torch
from omegaconf import DictConfig, OmegaConf

import ipcae
from ipcae.atomic import write_text_atomic
from ipcae.metrics import unique_percentage

RESULTS_FILE = "results.json"

# Overrides that do not define which cell of a comparison a run belongs to: where it runs, how it
# is logged, its seed (cells aggregate seeds), and the choices already in the cell's name
# (dataset, task, method preset, protocol). Everything else a user changes makes a variant.
NOT_CELL_DEFINING = (
    "seed", "data", "task", "model", "experiment", "protocol", "launcher", "logger", "debug", "paths", "hydra",
    "store_dir", "ckpt_path", "threads", "compile", "tags", "retrain", "callbacks.progress_bar", "trainer",
    "trainer.accelerator", "trainer.devices", "trainer.strategy", "trainer.num_nodes", "data.data_dir",
    "data.eval_batch_size", "data.steps_per_batch",
)  # fmt: skip


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "ipcae": ipcae.__version__,
    }


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or what ``platform`` knows where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What a run ran on. Recorded because CPU kernels round differently across CPU families (an
    Intel and an AMD core give a different last bit to the same matmul), so a run reproduces bit for
    bit only on the CPU it was made on."""
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "memory_gb": memory_gb, "platform": platform.platform()}


def portable(value: Any, roots: dict[str, str]) -> Any:
    """``value`` with absolute machine paths replaced by ``<name>`` placeholders.

    ``roots`` maps a placeholder name to a path (e.g. ``{"output_dir": "/home/me/ipcae/outputs/..."}``);
    longer paths are replaced first. Results are compared and committed across machines, so they
    must not carry one machine's directories.
    """
    ordered = sorted(((p, n) for n, p in roots.items() if p), key=lambda item: -len(item[0]))
    if isinstance(value, str):
        for path, name in ordered:
            value = value.replace(path, f"<{name}>")
        return value
    if isinstance(value, dict):
        return {k: portable(v, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, roots) for v in value]
    return value


def machine_roots(paths: dict[str, Any] | None = None) -> dict[str, str]:
    """The directories that ``portable`` hides: the run's paths and the user's home."""
    paths = paths or {}
    roots = {name: str(paths[name]) for name in ("output_dir", "log_dir", "data_dir", "root_dir") if paths.get(name)}
    roots["home"] = str(Path.home())
    return roots


def cell_overrides(overrides: list[str]) -> list[str]:
    """The command-line overrides that make a run a variant of its preset (sorted)."""

    keys = [o.split("=", 1)[0].lstrip("+~") for o in overrides]
    # A run given its own model.name is a method of its own: the name stands for its composition
    # (model/selector=..., model/decoder=...), and only the values set besides vary its cell.
    named = "model.name" in keys

    def defines_cell(key: str) -> bool:
        if named and (key == "model.name" or key.startswith("model/")):
            return False
        # Group choices such as model/selector=direct count; Hydra's own settings and paths do not.
        # Extra metrics are measured beside the result and do not change it.
        return key not in NOT_CELL_DEFINING and not key.startswith(
            ("hydra", "paths.", "model/metrics", "model.metrics")
        )

    return sorted(o for o, key in zip(overrides, keys, strict=True) if defines_cell(key))


def run_overrides() -> list[str]:
    """This Hydra job's task overrides, or none outside Hydra (tests, Python use)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


def summarize(
    cfg: DictConfig,
    datamodule: Any,
    *,
    model_name: str,
    selector_name: str,
    task: str,
    indices: list[int],
    test: dict[str, float],
    reported: str = "joint",
    **extra: Any,
) -> dict[str, Any]:
    """The fields of ``results.json`` (see the README)."""
    names = datamodule.feature_names
    splits = datamodule.load()
    config = OmegaConf.to_container(cfg, resolve=True)
    # Record the values the run used where the config left them to the dataset's defaults.
    config["data"].update(k=datamodule.k, batch_size=datamodule.batch_size)
    if "k" in config.get("model", {}):
        config["model"]["k"] = len(indices)
    return {
        "model": model_name,
        "selector": selector_name,
        "dataset": datamodule.label,
        "task": task,
        "k": len(indices),
        "seed": cfg.seed,
        "selected_indices": list(indices),
        "selected_features": [names[i] for i in indices],
        "unique_pct": float(unique_percentage(torch.as_tensor(indices))),
        "test": test,
        "reported": reported,
        **extra,
        "n_train": splits.sizes[0],
        "n_val": splits.sizes[1],
        "n_test": splits.sizes[2],
        "n_features": splits.num_features,
        "n_classes": splits.num_classes if task == "classification" else None,
        "class_names": splits.class_names if task == "classification" else None,
        "batch_size": datamodule.batch_size,
        "overrides": cell_overrides(run_overrides()),
        "config": portable(config, machine_roots(cfg.get("paths"))),
        "versions": versions(),
        "machine": machine(),
    }


def stage_metrics(metrics: dict[str, Any], stage: str) -> dict[str, float]:
    """``{"test/accuracy": t, ...}`` -> ``{"accuracy": float(t), ...}`` for one stage."""
    prefix = f"{stage}/"
    return {name[len(prefix) :]: float(v) for name, v in metrics.items() if name.startswith(prefix)}


def print_summary(results: dict[str, Any], path: Path) -> None:
    metrics = ", ".join(f"{name} {value:.4f}" for name, value in results["test"].items() if value is not None)
    print(f"{results['model']} on {results['dataset']} ({results['task']}, K={results['k']}, seed={results['seed']})")
    print(f"test: {metrics}; unique features: {results['unique_pct']:.0f}%")
    if results.get("retrained"):
        retrained = ", ".join(f"{n} {v:.4f}" for n, v in results["retrained"].items() if v is not None)
        print(f"test with a retrained decoder: {retrained}")
    print(f"selected: {', '.join(results['selected_features'])}")
    print(f"results: {path}")


def write_selected_features(
    path: str | Path, indices: list[int], names: list[str], probabilities: list[float] | None = None
) -> Path:
    """``selected_features.csv``: one line per selector row (row, index, name, probability), atomically.

    ``probability`` is how sure the selector is of its pick (the selector's ``selected_probabilities()``);
    empty for methods that only rank features.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "index", "name", "probability"])
    for row, (index, name) in enumerate(zip(indices, names, strict=True)):
        probability = "" if probabilities is None else f"{probabilities[row]:.6g}"
        writer.writerow([row, index, name, probability])
    return write_text_atomic(path, buffer.getvalue())


def read_results(path: str | Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)
