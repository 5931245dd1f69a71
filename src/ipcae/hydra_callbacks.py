"""Hydra callbacks: a sweep reports its best trial and its failed jobs at the end and exits non-zero if
any failed; output folders are checked before Hydra writes into them; a signal to a sweep's main
process ends it non-zero."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType
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

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_folder(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_folder(config, "hydra.sweep.dir")
        sweep_dir = Path(str(config.hydra.sweep.dir))

        # Jobs in this process install their own handlers (ipcae.signals) while they run; this one
        # covers the time between them and a parallel launcher's main process.
        def stop(signum: int, frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            report_sweep_failures(sweep_dir)
            print(f"error: the sweep was interrupted by {name}; re-launch it (with store_dir= to skip "
                  "the finished jobs)", file=sys.stderr, flush=True)  # fmt: skip
            raise SystemExit(128 + signum)

        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, stop)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        print_sweeper_result(Path(config.hydra.sweep.dir))
        if report_sweep_failures(Path(config.hydra.sweep.dir)):
            sys.exit(1)


def report_sweep_failures(sweep_dir: Path) -> int:
    """Print the jobs of a sweep that wrote failed.json; return how many."""
    failures = sorted(sweep_dir.glob(f"*/{FAILED_FILE}"))
    if failures:
        print(f"{len(failures)} job(s) of the sweep failed:", file=sys.stderr)
    for path in failures:
        try:
            error = json.loads(path.read_text())["error"]
        except (OSError, ValueError, KeyError):
            error = "(unreadable failed.json)"
        print(f"  {path.parent}: {error}", file=sys.stderr, flush=True)
    return len(failures)


def _check_folder(config: DictConfig, key: str) -> None:
    """Hydra creates the output folder and writes into it before the job starts: check it first."""
    from ipcae.errors import ConfigError
    from ipcae.validation import check_writable

    try:
        check_writable(str(OmegaConf.select(config, key)), key)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


class SqliteStorageFolder(Callback):
    """Creates the folder of a ``sqlite:///<path>`` sweeper storage (SQLite creates only the file)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        storage = config.hydra.sweeper.get("storage")
        prefix = "sqlite:///"
        if isinstance(storage, str) and storage.startswith(prefix):
            Path(storage[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
