"""Continuing an interrupted run: where its last checkpoint is, and the marker of a run in progress.

A run writes ``running.json`` into its output directory (and into its store entry, with
``store_dir``) when training starts and removes it when ``results.json`` is written, so an
interrupted run leaves ``running.json`` and ``checkpoints/last.ckpt`` behind:

- ``resume=true`` with the same command and output folder (``hydra.run.dir=<dir>``) continues
  from ``<dir>/checkpoints/last.ckpt``;
- with ``store_dir``, a launch of a configuration whose store entry has a ``running.json`` whose
  run folder still holds ``last.ckpt`` continues from there (a re-launched sweep resumes the job
  it was killed in, not only the ones it never started).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from ipcae.atomic import atomic_file, write_json_atomic
from ipcae.checkpoints import LAST_CHECKPOINT, load_checkpoint
from ipcae.errors import ConfigError

RUNNING_FILE = "running.json"


@dataclass(frozen=True)
class ResumePoint:
    checkpoint: Path
    # Epochs completed before the interruption: training continues with this epoch index.
    epoch: int
    run_dir: Path


def last_checkpoint(output_dir: Path) -> Path:
    return output_dir / "checkpoints" / LAST_CHECKPOINT


def _point(checkpoint: Path, run_dir: Path) -> ResumePoint:
    epoch = int(load_checkpoint(checkpoint, what="the last checkpoint").get("epoch", -1)) + 1
    return ResumePoint(checkpoint, epoch, run_dir)


def find_resume_point(cfg: DictConfig, store_entry: Path | None) -> ResumePoint | None:
    """The checkpoint this run continues from, or None for a fresh start."""
    output_dir = Path(cfg.paths.output_dir)
    if cfg.get("resume"):
        if cfg.get("ckpt_path"):
            raise ConfigError("resume=true and ckpt_path= both name where to continue from: pass only one")
        own = last_checkpoint(output_dir)
        if own.is_file():
            return _point(own, output_dir)
        print(f"resume=true: no {own} yet, starting the run from epoch 0")
    if store_entry is not None and not cfg.get("ckpt_path"):
        marker = store_entry / RUNNING_FILE
        try:
            previous = Path(json.loads(marker.read_text())["output_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        candidate = last_checkpoint(previous)
        if candidate.is_file() and previous.resolve() != output_dir.resolve():
            point = _point(candidate, previous)
            print(f"resuming the interrupted run {previous} at epoch {point.epoch}")
            return point
    return None


def mark_running(cfg: DictConfig, store_entry: Path | None) -> None:
    record: dict[str, Any] = {
        "output_dir": str(Path(cfg.paths.output_dir).resolve()),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json_atomic(Path(cfg.paths.output_dir) / RUNNING_FILE, record)
    if store_entry is not None:
        write_json_atomic(store_entry / RUNNING_FILE, record)


def clear_running(cfg: DictConfig, store_entry: Path | None) -> None:
    for folder in (Path(cfg.paths.output_dir), store_entry):
        if folder is not None:
            (folder / RUNNING_FILE).unlink(missing_ok=True)


def trim_history(metrics_csv: Path, epoch: int) -> None:
    """Drop the rows of epochs from ``epoch`` on (logged by the interrupted run before it died)."""
    if not metrics_csv.is_file():
        return
    with metrics_csv.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "epoch" not in rows[0]:
        return
    column = rows[0].index("epoch")

    def keep(row: list[str]) -> bool:
        try:
            return int(float(row[column])) < epoch
        except (ValueError, IndexError):
            return False

    kept = [rows[0], *(r for r in rows[1:] if keep(r))]
    with atomic_file(metrics_csv) as f:
        csv.writer(f, lineterminator="\n").writerows(kept)


def _relocated(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return new + value[len(old) :] if value.startswith(old) else value
    if isinstance(value, dict):
        return {_relocated(k, old, new): _relocated(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocated(v, old, new) for v in value]
    return value


def prepare(point: ResumePoint, output_dir: Path) -> Path:
    """The checkpoint to hand to Lightning, with the interrupted run's history in ``output_dir``.

    Resuming in another folder (a store's re-launch) copies the checkpoints and the metrics log
    over and points the checkpoint callback's saved paths at the copies: Lightning drops the best
    score it tracked when its folder changed, which would change which epoch is selected.
    """
    if point.run_dir.resolve() == output_dir.resolve():
        trim_history(output_dir / "metrics.csv", point.epoch)
        return point.checkpoint
    old_ckpts, new_ckpts = point.run_dir / "checkpoints", output_dir / "checkpoints"
    new_ckpts.mkdir(parents=True, exist_ok=True)
    for path in old_ckpts.glob("*.ckpt"):
        if path.name != LAST_CHECKPOINT and not (new_ckpts / path.name).exists():
            shutil.copyfile(path, new_ckpts / path.name)
    checkpoint = load_checkpoint(point.checkpoint, what="the last checkpoint")
    old, new = os.path.realpath(old_ckpts), os.path.realpath(new_ckpts)
    checkpoint["callbacks"] = _relocated(checkpoint.get("callbacks", {}), old, new)
    target = new_ckpts / LAST_CHECKPOINT
    with atomic_file(target, binary=True) as f:
        torch.save(checkpoint, f)
    metrics = output_dir / "metrics.csv"
    if (point.run_dir / "metrics.csv").is_file() and not metrics.exists():
        shutil.copyfile(point.run_dir / "metrics.csv", metrics)
    trim_history(metrics, point.epoch)
    return target
