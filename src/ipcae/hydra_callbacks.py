"""Hydra callbacks: a sweep reports its best trial and its failed jobs at the end (non-zero exit if any)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from ipcae.store import FAILED_FILE


def print_sweeper_result(sweep_dir: Path) -> None:
    """The best trial of an optimising sweeper (Optuna writes ``optimization_results.yaml``)."""
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return
    result = OmegaConf.load(path)
    if "best_value" in result:
        params = ", ".join(f"{k}={v}" for k, v in result.best_params.items())
        print(f"best trial: {params} with {result.best_value} ({path})", flush=True)


class SweepFailureSummary(Callback):
    """After a multirun, lists the jobs that wrote ``failed.json`` and exits with 1 if any did.

    Failed jobs do not stop the sweep (see ``ipcae.cli.run_job``), so without this a sweep with
    failures would look like a success.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        print_sweeper_result(Path(config.hydra.sweep.dir))
        failures = sorted(Path(config.hydra.sweep.dir).glob(f"*/{FAILED_FILE}"))
        if not failures:
            return
        print(f"{len(failures)} job(s) of the sweep failed:", file=sys.stderr)
        for path in failures:
            error = json.loads(path.read_text())["error"]
            print(f"  {path.parent}: {error}", file=sys.stderr)
        sys.exit(1)


class SqliteStorageFolder(Callback):
    """Creates the folder of a ``sqlite:///<path>`` sweeper storage (SQLite creates only the file)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        storage = config.hydra.sweeper.get("storage")
        prefix = "sqlite:///"
        if isinstance(storage, str) and storage.startswith(prefix):
            Path(storage[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
